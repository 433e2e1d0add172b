/* Tests of nnft_nngp: the Gauss–Hermite rules; every closed form of V and V̇ (physics.md §2.2)
 * against an independent adaptive 2-D quadrature (GSL QAGP, nested, split at the kinks) at several
 * Σ including near-degenerate and negative c; Gauss–Hermite against the closed forms; one-hidden-
 * layer kernels against the exact finite-width G2 of nnft_finite (an independent implementation:
 * polar quadrature, trapezoid rule, closed forms) for every activation, gauss-net and cos-nets;
 * deep linear networks against their closed recursion; the analytic NTK against the empirical NTK
 * J Jᵀ of wide networks (NTK and standard parameterisations, a frozen layer, cos-nets, the
 * gauss-net); the symmetric path, the diagonal, thread-count invariance; refusals; allocation
 * failures.
 *
 * Empirical-NTK tolerances: S independent networks (seeds 1..S); the mean of J Jᵀ and its standard
 * error se = sd/√S per entry. A check passes when |analytic − mean| <= 4 se + 1e-12 |analytic|, and
 * requires the comparison to be resolved (se below 5% of sqrt(Θ_ii Θ_jj)), so that a missing factor σ_w²
 * or a wrong parameterisation (changes of tens of per cent) fails. The finite-width bias of the
 * mean, O(1/N) with N = 2000, is far below se. */
#include <gsl/gsl_errno.h>
#include <gsl/gsl_integration.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "nnft_finite.h"
#include "nnft_net.h"
#include "nnft_nngp.h"
#include "nnft_rng.h"
#include "test_util.h"

static nnft_mat mat(size_t r, size_t c, const double *v) {
  nnft_mat m;
  test_alloc_fail_after(-1);
  if (nnft_mat_alloc(r, c, &m)) exit(2);
  if (v)
    for (size_t i = 0; i < r; i++)
      for (size_t j = 0; j < c; j++) NNFT_AT(&m, i, j) = v[i * c + j]; /* v row-major */
  return m;
}

/* An MLP with hidden widths w[0..L-1] (all act), σ_w, σ_b for every layer. */
static nnft_arch mlp(size_t d, size_t L, const size_t *w, nnft_act act, double sw, double sb,
                     nnft_param param) {
  nnft_arch a;
  memset(&a, 0, sizeof a);
  a.d_in = d;
  a.nlayers = L + 1;
  a.param = param;
  size_t fan = d;
  for (size_t l = 0; l <= L; l++) {
    a.layer[l].fan_in = fan;
    a.layer[l].fan_out = l < L ? w[l] : 1;
    a.layer[l].act = l < L ? act : NNFT_ACT_LINEAR;
    a.layer[l].sigma_w = sw;
    a.layer[l].sigma_b = sb;
    a.layer[l].has_bias = 1;
    fan = a.layer[l].fan_out;
  }
  return a;
}

static nnft_arch mlp_n(size_t d, size_t L, size_t N, nnft_act act, double sw, double sb,
                       nnft_param param) {
  size_t w[NNFT_MAX_LAYERS];
  for (size_t l = 0; l < L; l++) w[l] = N;
  return mlp(d, L, w, act, sw, sb, param);
}

/* ---- independent 2-D quadrature (GSL) ---- */

typedef struct gq {
  nnft_act act;
  int deriv;
  double L11, L21, L22, z1;
  gsl_integration_workspace *wi, *wo;
} gq;

static double sig(const gq *g, double z) {
  return g->deriv ? nnft_act_deriv(g->act, z) : nnft_act_eval(g->act, z);
}

static double phi(double z) { return exp(-0.5 * z * z) / sqrt(2 * M_PI); }

static double inner_f(double z2, void *p) {
  const gq *g = p;
  return phi(z2) * sig(g, g->L21 * g->z1 + g->L22 * z2);
}

static double outer_f(double z1, void *p) {
  gq *g = p;
  double su = sig(g, g->L11 * z1);
  if (su == 0.0) return 0.0;
  double in;
  if (g->L22 == 0.0) {
    in = sig(g, g->L21 * z1);
  } else {
    g->z1 = z1;
    gsl_function F = {inner_f, g};
    double pts[3] = {-12, 0, 12}, err;
    size_t np = 2;
    double k = -g->L21 * z1 / g->L22; /* the kink of relu/step in z2 */
    if (k > -12 && k < 12) pts[1] = k, np = 3;
    if (np == 3) gsl_integration_qagp(&F, pts, 3, 1e-15, 1e-12, 1000, g->wi, &in, &err);
    else gsl_integration_qag(&F, -12, 12, 1e-15, 1e-12, 1000, GSL_INTEG_GAUSS61, g->wi, &in, &err);
  }
  return phi(z1) * su * in;
}

/* E[σ(u)σ(v)] (or σ') by nested adaptive quadrature on the Cholesky factor of Σ. */
static double gsl_expect(nnft_act act, int deriv, double q1, double q2, double c) {
  gq g;
  memset(&g, 0, sizeof g);
  g.act = act;
  g.deriv = deriv;
  g.L11 = sqrt(q1);
  g.L21 = c / g.L11;
  g.L22 = sqrt(fmax(q2 - g.L21 * g.L21, 0.0));
  g.wi = gsl_integration_workspace_alloc(1000);
  g.wo = gsl_integration_workspace_alloc(1000);
  gsl_function F = {outer_f, &g};
  /* near-degenerate Σ: for |z1| below w = 10 L22/|L21| the inner integral changes on the scale
   * of w (a smoothed kink or step at z1 = 0); give the outer rule that window explicitly */
  double w = fabs(g.L21) > 0 ? 10 * g.L22 / fabs(g.L21) : 1.0;
  double pts[5] = {-12, -w, 0, w, 12}, res, err;
  if (w > 1e-12 && w < 1.0) gsl_integration_qagp(&F, pts, 5, 1e-15, 1e-11, 1000, g.wo, &res, &err);
  else gsl_integration_qagp(&F, (double[]){-12, 0, 12}, 3, 1e-15, 1e-11, 1000, g.wo, &res, &err);
  gsl_integration_workspace_free(g.wi);
  gsl_integration_workspace_free(g.wo);
  return res;
}

static double expect(nnft_act act, int deriv, double q1, double q2, double c,
                     nnft_nngp_method method, const nnft_gh_rule *gh) {
  double V = NAN, Vd = NAN;
  nnft_status s = nnft_nngp_expect(act, NULL, q1, q2, c, method, gh, &V, &Vd);
  if (s) fprintf(stderr, "nnft_nngp_expect: %s\n", nnft_strerror(s));
  return deriv ? Vd : V;
}

/* ---- tests ---- */

static void test_gh_rules(void) {
  size_t orders[] = {2, 3, 8, 32, 101, 256};
  for (size_t k = 0; k < sizeof orders / sizeof *orders; k++) {
    nnft_gh_rule r;
    CHECK_STATUS(nnft_gh_rule_alloc(orders[k], &r), NNFT_OK);
    double m0 = 0, m2 = 0, m4 = 0, m6 = 0, m1 = 0;
    for (size_t i = 0; i < r.n; i++) {
      double z = r.z[i], w = r.w[i];
      m0 += w, m1 += w * z, m2 += w * z * z, m4 += w * pow(z, 4), m6 += w * pow(z, 6);
      if (i) CHECK(r.z[i] > r.z[i - 1]);
    }
    CHECK_NEAR(m0, 1.0, 1e-13);
    CHECK_NEAR(m1, 0.0, 1e-13);
    if (orders[k] >= 2) CHECK_NEAR(m2, 1.0, 1e-12);
    if (orders[k] >= 3) CHECK_NEAR(m4, 3.0, 1e-11);
    if (orders[k] >= 4) CHECK_NEAR(m6, 15.0, 1e-10);
    nnft_gh_rule_free(&r);
  }
  /* a polynomial of degree 2n-1 is integrated exactly: E[z^14] = 13!! with n = 8 */
  nnft_gh_rule r;
  nnft_gh_rule_alloc(8, &r);
  double m = 0;
  for (size_t i = 0; i < 8; i++) m += r.w[i] * pow(r.z[i], 14);
  CHECK_NEAR(m / 135135.0, 1.0, 1e-12);
  nnft_gh_rule_free(&r);
  CHECK_STATUS(nnft_gh_rule_alloc(1, &r), NNFT_EDOM);
  CHECK_STATUS(nnft_gh_rule_alloc(NNFT_NNGP_QUAD_MAX + 1, &r), NNFT_EDOM);
  nnft_gh_rule_free(NULL);
}

/* Σ cases (q1, q2, c): generic, negative c, near-degenerate (c = (1 − 1e-9) sqrt(q1 q2)) of
 * either sign, exactly degenerate, independent, large variance. */
static const double sigmas[][3] = {
    {1.0, 1.0, 0.5},         {0.7, 2.3, -0.9},          {2.0, 0.5, 0.99999999900},
    {1.3, 0.8, -1.01980390}, {1.5, 1.5, 1.5},            {0.9, 1.7, 0.0},
    {4.0, 9.0, 5.9},         {0.25, 0.16, -0.19999999}};

static void test_closed_forms(void) {
  nnft_act acts[] = {NNFT_ACT_LINEAR, NNFT_ACT_RELU, NNFT_ACT_STEP, NNFT_ACT_ERF,
                     NNFT_ACT_EXP,    NNFT_ACT_SIN,  NNFT_ACT_COS};
  size_t ns = sizeof sigmas / sizeof *sigmas;
  for (size_t a = 0; a < sizeof acts / sizeof *acts; a++) {
    for (size_t k = 0; k < ns; k++) {
      double q1 = sigmas[k][0], q2 = sigmas[k][1], c = sigmas[k][2];
      if (acts[a] == NNFT_ACT_EXP && q1 + q2 > 5) continue; /* the [-12, 12] box is too small */
      for (int deriv = 0; deriv < 2; deriv++) {
        if (deriv && acts[a] == NNFT_ACT_STEP) continue; /* σ' = 0: checked below */
        double ref = gsl_expect(acts[a], deriv, q1, q2, c);
        double got = expect(acts[a], deriv, q1, q2, c, NNFT_NNGP_AUTO, NULL);
        double tol = 2e-10 * fmax(1.0, fabs(ref));
        if (fabs(got - ref) > tol)
          fprintf(stderr, "closed form %s%s at (%g, %g, %g): %.17g vs quadrature %.17g\n",
                  nnft_act_name(acts[a]), deriv ? "'" : "", q1, q2, c, got, ref);
        CHECK_NEAR(got, ref, tol);
      }
    }
  }
  /* step: V̇ = 0; relu at zero variance: V = V̇ = 0 */
  CHECK(expect(NNFT_ACT_STEP, 1, 1, 1, 0.3, NNFT_NNGP_AUTO, NULL) == 0.0);
  CHECK(expect(NNFT_ACT_RELU, 0, 0, 1, 0, NNFT_NNGP_AUTO, NULL) == 0.0);
  CHECK(expect(NNFT_ACT_RELU, 1, 1, 0, 0, NNFT_NNGP_AUTO, NULL) == 0.0);
  /* rounding past c² = q1 q2 is clamped: relu at c slightly above sqrt(q1 q2) is the diagonal */
  CHECK_NEAR(expect(NNFT_ACT_RELU, 0, 2, 2, 2 * (1 + 1e-15), NNFT_NNGP_AUTO, NULL), 1.0, 1e-14);
  CHECK(isfinite(expect(NNFT_ACT_ERF, 1, 2, 2, 2 * (1 + 1e-15), NNFT_NNGP_AUTO, NULL)));
  /* known values: relu diagonal q/2, orthogonal relu 1/(2π) sqrt(q1 q2), erf diagonal */
  CHECK_NEAR(expect(NNFT_ACT_RELU, 0, 3, 3, 3, NNFT_NNGP_AUTO, NULL), 1.5, 1e-15);
  CHECK_NEAR(expect(NNFT_ACT_RELU, 0, 1, 4, 0, NNFT_NNGP_AUTO, NULL), 2 / (2 * M_PI) * 1, 1e-15);
  CHECK_NEAR(expect(NNFT_ACT_RELU, 1, 1, 4, 0, NNFT_NNGP_AUTO, NULL), 0.25, 1e-15);
  CHECK_NEAR(expect(NNFT_ACT_RELU, 1, 1, 4, -2, NNFT_NNGP_AUTO, NULL), 0.0, 1e-15);
}

/* Gauss–Hermite: converges to the closed forms (fast for smooth erf, slowly on relu's kink),
 * and to the adaptive quadrature for the activations without one. */
static void test_quadrature(void) {
  nnft_gh_rule g32, g128, g256;
  nnft_gh_rule_alloc(32, &g32);
  nnft_gh_rule_alloc(128, &g128);
  nnft_gh_rule_alloc(256, &g256);
  size_t ns = sizeof sigmas / sizeof *sigmas;
  for (size_t k = 0; k < ns; k++) {
    double q1 = sigmas[k][0], q2 = sigmas[k][1], c = sigmas[k][2];
    for (int deriv = 0; deriv < 2; deriv++) {
      double ex = expect(NNFT_ACT_ERF, deriv, q1, q2, c, NNFT_NNGP_AUTO, NULL);
      double e32 = expect(NNFT_ACT_ERF, deriv, q1, q2, c, NNFT_NNGP_QUADRATURE, &g32);
      double e256 = expect(NNFT_ACT_ERF, deriv, q1, q2, c, NNFT_NNGP_QUADRATURE, &g256);
      double rx = expect(NNFT_ACT_RELU, deriv, q1, q2, c, NNFT_NNGP_AUTO, NULL);
      double r32 = expect(NNFT_ACT_RELU, deriv, q1, q2, c, NNFT_NNGP_QUADRATURE, &g32);
      double r256 = expect(NNFT_ACT_RELU, deriv, q1, q2, c, NNFT_NNGP_QUADRATURE, &g256);
      if (getenv("NNGP_VERBOSE"))
        fprintf(stderr, "GH at (%g, %g, %g)%s: erf 32 %.2g 256 %.2g | relu 32 %.2g 256 %.2g\n",
                q1, q2, c, deriv ? " deriv" : "", e32 - ex, e256 - ex, r32 - rx, r256 - rx);
      /* erf is entire: GH converges exponentially, slower for larger variances (scale √q) */
      double big = fmax(q1, q2) > 3;
      CHECK_NEAR(e256, ex, (big ? 1e-8 : 1e-12) * fmax(1.0, fabs(ex)));
      CHECK(fabs(e256 - ex) <= fabs(e32 - ex) + 1e-15);
      /* relu has a kink (V) and σ' a jump (V̇): algebraic convergence only */
      double scale = deriv ? 1.0 : sqrt(q1 * q2);
      CHECK_NEAR(r256, rx, (deriv ? 3e-2 : 1e-3) * scale);
    }
  }
  /* for the value the kink costs accuracy like 1/q: 32 -> 256 nodes gains > 5x */
  {
    double rx = expect(NNFT_ACT_RELU, 0, 1.0, 1.0, 0.5, NNFT_NNGP_AUTO, NULL);
    double r32 = expect(NNFT_ACT_RELU, 0, 1.0, 1.0, 0.5, NNFT_NNGP_QUADRATURE, &g32);
    double r256 = expect(NNFT_ACT_RELU, 0, 1.0, 1.0, 0.5, NNFT_NNGP_QUADRATURE, &g256);
    CHECK(fabs(r256 - rx) * 5 < fabs(r32 - rx));
  }
  /* activations without a closed form against the adaptive quadrature at variances <= 2.3: gelu,
   * softplus, sigmoid to 1e-10 with q = 128 and 1e-6 with the default q = 32; tanh 1e-8, 1e-3 */
  nnft_act acts[] = {NNFT_ACT_TANH, NNFT_ACT_GELU, NNFT_ACT_SOFTPLUS, NNFT_ACT_SIGMOID};
  for (size_t a = 0; a < 4; a++)
    for (size_t k = 0; k < 3; k++) {
      double q1 = sigmas[k][0], q2 = sigmas[k][1], c = sigmas[k][2];
      for (int deriv = 0; deriv < 2; deriv++) {
        double ref = gsl_expect(acts[a], deriv, q1, q2, c);
        double v128 = expect(acts[a], deriv, q1, q2, c, NNFT_NNGP_AUTO, &g128);
        double v32 = expect(acts[a], deriv, q1, q2, c, NNFT_NNGP_AUTO, &g32);
        if (getenv("NNGP_VERBOSE"))
          fprintf(stderr, "GH %s%s at (%g, %g, %g): q=32 %.2g, q=128 %.2g off\n",
                  nnft_act_name(acts[a]), deriv ? "'" : "", q1, q2, c, v32 - ref, v128 - ref);
        /* tanh's poles at ±iπ/2 are closest to the real axis: slowest convergence */
        int t = acts[a] == NNFT_ACT_TANH;
        CHECK_NEAR(v128, ref, t ? 1e-8 : 1e-10);
        CHECK_NEAR(v32, ref, t ? 1e-3 : 1e-6);
      }
    }
  nnft_gh_rule_free(&g32);
  nnft_gh_rule_free(&g128);
  nnft_gh_rule_free(&g256);
}

/* One hidden layer: K = σ_b2² + σ_w2² M2 is nnft_finite_g2's exact G2 (independent code). */
static void test_one_layer_vs_finite(void) {
  const double xv[] = {0.3, -0.8, 1.1, 0.9, 0.2, -0.4, -1.2, 0.5, 0.7, 0.31, -0.79, 1.12};
  nnft_mat X = mat(4, 3, xv), K = mat(4, 4, NULL), G = mat(4, 4, NULL);
  nnft_act acts[] = {NNFT_ACT_RELU, NNFT_ACT_ERF,     NNFT_ACT_TANH, NNFT_ACT_GELU,
                     NNFT_ACT_EXP,  NNFT_ACT_SOFTPLUS, NNFT_ACT_SIN,  NNFT_ACT_COS,
                     NNFT_ACT_STEP, NNFT_ACT_GAUSSNET, NNFT_ACT_LINEAR};
  for (size_t k = 0; k < sizeof acts / sizeof *acts; k++) {
    nnft_arch a = mlp_n(3, 1, 10, acts[k], 1.3, 0.6, NNFT_PARAM_STANDARD);
    a.layer[1].sigma_w = 0.9;
    a.layer[1].sigma_b = 0.2;
    nnft_nngp_opts o = nnft_nngp_defaults();
    o.quad_order = 128;
    CHECK_STATUS(nnft_nngp_eval(&a, &o, &X, NULL, &K), NNFT_OK);
    CHECK_STATUS(nnft_finite_g2(&a, &X, NULL, &G), NNFT_OK);
    double err;
    nnft_mat_max_abs_diff(&K, &G, &err);
    if (err > 1e-9) fprintf(stderr, "one layer %s: max |K - G2| = %g\n", nnft_act_name(acts[k]), err);
    CHECK(err <= 1e-9);
  }
  /* gauss-net with a bias: the translation-invariant closed form of physics.md §2.3 */
  nnft_arch a = mlp_n(3, 1, 10, NNFT_ACT_GAUSSNET, 1.3, 0.6, NNFT_PARAM_STANDARD);
  CHECK_STATUS(nnft_nngp_matrix(&a, 0, 0, &X, NULL, &K), NNFT_OK);
  for (size_t i = 0; i < 4; i++)
    for (size_t j = 0; j < 4; j++) {
      double r2 = 0;
      for (size_t c = 0; c < 3; c++) r2 += pow(NNFT_AT(&X, i, c) - NNFT_AT(&X, j, c), 2);
      CHECK_NEAR(NNFT_AT(&K, i, j), 0.36 + 1.69 * exp(-1.69 * r2 / 6.0), 1e-14);
    }
  /* cos-nets: plain (Gaussian frequencies) and generalised (the cutoff propagator, d = 1, 3) */
  for (int gen = 0; gen < 2; gen++)
    for (size_t d = 1; d <= 3; d += 2) {
      nnft_arch c = mlp_n(d, 1, 10, NNFT_ACT_COS, 1.4, 0.0, NNFT_PARAM_STANDARD);
      c.is_cosnet = 1;
      c.layer[1].has_bias = 0;
      c.layer[1].sigma_w = 0.8;
      if (gen) c.freq = NNFT_FREQ_BALL, c.radius = 3.0, c.mass = 0.7, c.amplitude = 1;
      nnft_mat Xd, Kd = mat(4, 4, NULL), Gd = mat(4, 4, NULL);
      nnft_mat_view(&X, 0, 0, 4, d, &Xd);
      CHECK_STATUS(nnft_nngp_matrix(&c, 0, 0, &Xd, NULL, &Kd), NNFT_OK);
      CHECK_STATUS(nnft_finite_g2(&c, &Xd, NULL, &Gd), NNFT_OK);
      double err;
      nnft_mat_max_abs_diff(&Kd, &Gd, &err);
      CHECK(err <= 1e-9 * fabs(NNFT_AT(&Gd, 0, 0)));
      if (!gen) CHECK_NEAR(NNFT_AT(&Kd, 0, 0), 0.32, 1e-15);
      /* without phases the x + x' term joins (nnft_finite: all sign patterns) */
      c.layer[0].has_bias = 0;
      CHECK_STATUS(nnft_nngp_matrix(&c, 0, 0, &Xd, NULL, &Kd), NNFT_OK);
      CHECK_STATUS(nnft_finite_g2(&c, &Xd, NULL, &Gd), NNFT_OK);
      nnft_mat_max_abs_diff(&Kd, &Gd, &err);
      CHECK(err <= 1e-9 * fabs(NNFT_AT(&Gd, 0, 0)));
      nnft_mat_free(&Kd);
      nnft_mat_free(&Gd);
    }
  nnft_mat_free(&X);
  nnft_mat_free(&K);
  nnft_mat_free(&G);
}

/* Deep linear networks: K^{l+1} = σ_b² + σ_w² K^l, Θ^{l+1} = K^{l+1} + σ_w² Θ^l. Per-layer σ's
 * and a layer without bias. */
static void test_deep_linear(void) {
  const double xv[] = {0.5, -1.0, 2.0, 0.25, -0.3, 0.8};
  nnft_mat X = mat(3, 2, xv), K = mat(3, 3, NULL), T = mat(3, 3, NULL);
  size_t w[3] = {5, 6, 7};
  nnft_arch a = mlp(2, 3, w, NNFT_ACT_LINEAR, 1.0, 1.0, NNFT_PARAM_NTK);
  double sw[4] = {1.2, 0.7, 1.5, 0.9}, sb[4] = {0.3, 0.0, 0.5, 0.2};
  for (int l = 0; l < 4; l++) a.layer[l].sigma_w = sw[l], a.layer[l].sigma_b = sb[l];
  a.layer[2].has_bias = 0;
  CHECK_STATUS(nnft_nngp_matrix(&a, 0, 0, &X, NULL, &K), NNFT_OK);
  CHECK_STATUS(nnft_nngp_matrix(&a, 1, 0, &X, NULL, &T), NNFT_OK);
  for (size_t i = 0; i < 3; i++)
    for (size_t j = 0; j < 3; j++) {
      double dot = NNFT_AT(&X, i, 0) * NNFT_AT(&X, j, 0) + NNFT_AT(&X, i, 1) * NNFT_AT(&X, j, 1);
      double k = sb[0] * sb[0] + sw[0] * sw[0] * dot / 2, th = k;
      for (int l = 1; l < 4; l++) {
        k = (l == 2 ? 0 : sb[l] * sb[l]) + sw[l] * sw[l] * k;
        th = k + sw[l] * sw[l] * th;
      }
      CHECK_NEAR(NNFT_AT(&K, i, j), k, 1e-13 * fabs(k));
      CHECK_NEAR(NNFT_AT(&T, i, j), th, 1e-13 * fabs(th));
    }
  /* no hidden layer: K = K^1 */
  nnft_arch lin = mlp(2, 0, w, NNFT_ACT_LINEAR, 1.1, 0.4, NNFT_PARAM_STANDARD);
  CHECK_STATUS(nnft_nngp_matrix(&lin, 0, 0, &X, NULL, &K), NNFT_OK);
  CHECK_NEAR(NNFT_AT(&K, 0, 1), 0.16 + 1.21 * (0.5 * 2.0 - 1.0 * 0.25) / 2, 1e-15);
  nnft_mat_free(&X);
  nnft_mat_free(&K);
  nnft_mat_free(&T);
}

/* Mean and standard error over S networks of J Jᵀ (n x n) at X. */
static void empirical_ntk(const nnft_arch *a, const nnft_mat *X, size_t S, nnft_mat *mean,
                          nnft_mat *se) {
  size_t n = X->rows;
  nnft_mat sum = mat(n, n, NULL), sum2 = mat(n, n, NULL), G = mat(n, n, NULL);
  for (size_t s = 1; s <= S; s++) {
    nnft_net net;
    nnft_rng r;
    if (nnft_net_setup(a, &net)) exit(3);
    nnft_rng_init(&r, 1000 + s);
    nnft_net_init(&net, &r);
    nnft_mat J = mat(n, net.ntrain, NULL);
    CHECK_STATUS(nnft_net_jacobian(&net, X, &J, NULL), NNFT_OK);
    nnft_mat_syrk(&J, 0, &G);
    for (size_t i = 0; i < n * n; i++) {
      sum.data[i] += G.data[i];
      sum2.data[i] += G.data[i] * G.data[i];
    }
    nnft_mat_free(&J);
    nnft_net_free(&net);
  }
  for (size_t i = 0; i < n * n; i++) {
    double m = sum.data[i] / (double)S;
    mean->data[i] = m;
    se->data[i] = sqrt(fmax(sum2.data[i] / (double)S - m * m, 0) * (double)S / (double)(S - 1) /
                       (double)S);
  }
  nnft_mat_free(&sum);
  nnft_mat_free(&sum2);
  nnft_mat_free(&G);
}

static void compare_ntk(const char *what, const nnft_arch *a, const nnft_mat *X, size_t S) {
  size_t n = X->rows;
  nnft_mat T = mat(n, n, NULL), M = mat(n, n, NULL), E = mat(n, n, NULL);
  CHECK_STATUS(nnft_nngp_matrix(a, 1, 0, X, NULL, &T), NNFT_OK);
  empirical_ntk(a, X, S, &M, &E);
  for (size_t i = 0; i < n; i++)
    for (size_t j = i; j < n; j++) {
      double t = NNFT_AT(&T, i, j), m = NNFT_AT(&M, i, j), e = NNFT_AT(&E, i, j);
      double scale = sqrt(NNFT_AT(&T, i, i) * NNFT_AT(&T, j, j));
      int ok = fabs(t - m) <= 4 * e + 1e-12 * scale && e <= 0.05 * scale;
      if (!ok)
        fprintf(stderr, "%s NTK(%zu,%zu): analytic %.6g, empirical %.6g +- %.2g\n", what, i, j,
                t, m, e);
      CHECK(ok);
    }
  nnft_mat_free(&T);
  nnft_mat_free(&M);
  nnft_mat_free(&E);
}

static void test_empirical_ntk(void) {
  const double xv[] = {0.6, -0.3, 0.9, -0.2, 0.4, 0.8, 0.5, -0.2, 1.0};
  nnft_mat X = mat(3, 3, xv);
  /* NTK parameterisation, two hidden layers of 2000: relu and erf, per-layer σ's */
  nnft_arch a = mlp_n(3, 2, 2000, NNFT_ACT_RELU, 1.4, 0.3, NNFT_PARAM_NTK);
  a.layer[2].sigma_w = 0.8;
  a.layer[1].sigma_b = 0.5;
  compare_ntk("relu ntk-param", &a, &X, 6);
  a = mlp_n(3, 2, 2000, NNFT_ACT_ERF, 1.6, 0.2, NNFT_PARAM_NTK);
  compare_ntk("erf ntk-param", &a, &X, 6);
  /* a frozen middle layer: its own term drops out */
  a.layer[1].frozen = 1;
  compare_ntk("erf frozen", &a, &X, 6);
  /* standard parameterisation, one hidden layer (exact in expectation at every width) */
  a = mlp_n(3, 1, 2000, NNFT_ACT_TANH, 1.2, 0.4, NNFT_PARAM_STANDARD);
  compare_ntk("tanh standard", &a, &X, 4);
  /* two hidden layers, standard: gelu (quadrature) */
  a = mlp_n(3, 2, 1500, NNFT_ACT_GELU, 1.3, 0.3, NNFT_PARAM_STANDARD);
  compare_ntk("gelu standard", &a, &X, 6);
  /* plain cos-net, NTK parameterisation: frequencies, phases and readout all trained */
  a = mlp_n(3, 1, 4000, NNFT_ACT_COS, 1.1, 0.0, NNFT_PARAM_NTK);
  a.is_cosnet = 1;
  a.layer[1].has_bias = 0;
  a.layer[1].sigma_w = 0.9;
  compare_ntk("cos-net", &a, &X, 4);
  a.param = NNFT_PARAM_STANDARD;
  compare_ntk("cos-net standard", &a, &X, 4);
  /* gauss-net (σ' = σ), NTK parameterisation */
  a = mlp_n(3, 1, 4000, NNFT_ACT_GAUSSNET, 1.0, 0.5, NNFT_PARAM_NTK);
  compare_ntk("gauss-net", &a, &X, 4);
  nnft_mat_free(&X);
}

/* Symmetric = general path, diag = matrix diagonal (bitwise), thread-count invariance. */
static void test_paths(void) {
  size_t n = 70, m = 45, d = 5; /* several tiles, ragged edges */
  nnft_mat X = mat(n, d, NULL), Y = mat(m, d, NULL);
  nnft_rng r;
  nnft_rng_init(&r, 5);
  nnft_rng_mat_normal(&r, &X, 0, 1);
  nnft_rng_mat_normal(&r, &Y, 0, 1);
  nnft_act acts[] = {NNFT_ACT_RELU, NNFT_ACT_GELU};
  for (int ntk = 0; ntk < 2; ntk++)
    for (size_t k = 0; k < 2; k++) {
      size_t w[3] = {10, 20, 30};
      nnft_arch a = mlp(d, 3, w, acts[k], 1.5, 0.2, NNFT_PARAM_NTK);
      a.layer[1].act = NNFT_ACT_TANH;
      nnft_nngp_opts o = nnft_nngp_defaults();
      o.ntk = ntk;
      o.quad_order = 12;
      nnft_mat S = mat(n, n, NULL), G = mat(n, n, NULL), D = mat(n, 1, NULL);
      o.threads = 1;
      CHECK_STATUS(nnft_nngp_eval(&a, &o, &X, NULL, &S), NNFT_OK);
      CHECK_STATUS(nnft_nngp_eval(&a, &o, &X, &X, &G), NNFT_OK);
      CHECK_STATUS(nnft_nngp_eval_diag(&a, &o, &X, &D), NNFT_OK);
      double err, scale = fabs(NNFT_AT(&S, 0, 0));
      nnft_mat_max_abs_diff(&S, &G, &err);
      if (err > 1e-12 * scale) fprintf(stderr, "sym vs general %s ntk=%d: %g (scale %g)\n", nnft_act_name(acts[k]), ntk, err, scale);
      CHECK(err <= 1e-12 * scale);
      int sym = 1, diag = 1;
      for (size_t i = 0; i < n; i++) {
        diag &= NNFT_AT(&S, i, i) == NNFT_AT(&D, i, 0);
        for (size_t j = 0; j < n; j++) sym &= NNFT_AT(&S, i, j) == NNFT_AT(&S, j, i);
      }
      CHECK(sym);
      CHECK(diag);
      /* rectangular, and thread counts 1, 2, 3 bit for bit */
      nnft_mat R1 = mat(n, m, NULL), R2 = mat(n, m, NULL), S3 = mat(n, n, NULL);
      CHECK_STATUS(nnft_nngp_eval(&a, &o, &X, &Y, &R1), NNFT_OK);
      o.threads = 2;
      CHECK_STATUS(nnft_nngp_eval(&a, &o, &X, &Y, &R2), NNFT_OK);
      o.threads = 3;
      CHECK_STATUS(nnft_nngp_eval(&a, &o, &X, NULL, &S3), NNFT_OK);
      CHECK(memcmp(R1.data, R2.data, n * m * sizeof(double)) == 0);
      CHECK(memcmp(S.data, S3.data, n * n * sizeof(double)) == 0);
      /* rows of the rectangular result agree with single-point evaluations */
      nnft_mat x1, y1, one = mat(1, 1, NULL);
      nnft_mat_view(&X, 7, 0, 1, d, &x1);
      nnft_mat_view(&Y, 40, 0, 1, d, &y1);
      CHECK_STATUS(nnft_nngp_eval(&a, &o, &x1, &y1, &one), NNFT_OK);
      CHECK_NEAR(one.data[0], NNFT_AT(&R1, 7, 40), 1e-13 * fabs(one.data[0]));
      nnft_mat_free(&one);
      nnft_mat_free(&S);
      nnft_mat_free(&G);
      nnft_mat_free(&D);
      nnft_mat_free(&R1);
      nnft_mat_free(&R2);
      nnft_mat_free(&S3);
    }
  nnft_mat_free(&X);
  nnft_mat_free(&Y);
}

static double custom_tanh(void *ctx, double z) {
  (void)ctx;
  return tanh(z);
}

static void test_custom(void) {
  const double xv[] = {0.3, 1.0, -0.5, 0.2, 0.9, 0.9};
  nnft_mat X = mat(3, 2, xv), A = mat(3, 3, NULL), B = mat(3, 3, NULL);
  nnft_arch a = mlp_n(2, 2, 8, NNFT_ACT_TANH, 1.2, 0.3, NNFT_PARAM_NTK);
  for (int ntk = 0; ntk < 2; ntk++) {
    CHECK_STATUS(nnft_nngp_matrix(&a, ntk, 24, &X, NULL, &A), NNFT_OK);
    nnft_arch c = a;
    c.layer[0].act = c.layer[1].act = NNFT_ACT_CUSTOM;
    c.custom.eval = custom_tanh; /* no derivative: central differences */
    CHECK_STATUS(nnft_nngp_matrix(&c, ntk, 24, &X, NULL, &B), NNFT_OK);
    double err;
    nnft_mat_max_abs_diff(&A, &B, &err);
    CHECK(err <= (ntk ? 1e-8 : 1e-14));
  }
  nnft_mat_free(&X);
  nnft_mat_free(&A);
  nnft_mat_free(&B);
}

static void test_refusals(void) {
  const double xv[] = {0.3, 1.0, -0.5, 0.2};
  nnft_mat X = mat(2, 2, xv), K = mat(2, 2, NULL), W = mat(2, 3, NULL), D = mat(2, 1, NULL);
  nnft_arch a = mlp_n(2, 2, 8, NNFT_ACT_RELU, 1.2, 0.3, NNFT_PARAM_NTK);
  nnft_mat X3 = mat(2, 3, NULL);
  const char *why = NULL;
  CHECK_STATUS(nnft_nngp_matrix(&a, 0, 0, &X3, NULL, &K), NNFT_EDIM); /* wrong column count */
  CHECK_STATUS(nnft_nngp_matrix(&a, 0, 0, &X, &X3, &W), NNFT_EDIM);
  CHECK_STATUS(nnft_nngp_matrix(&a, 0, 0, &X, NULL, &W), NNFT_EDIM);  /* wrong out shape */
  CHECK_STATUS(nnft_nngp_diag(&a, 0, 0, &X3, &D), NNFT_EDIM);
  CHECK_STATUS(nnft_nngp_diag(&a, 0, 0, &X, &K), NNFT_EDIM);
  CHECK_STATUS(nnft_nngp_matrix(&a, 0, 0, &X, NULL, NULL), NNFT_EDIM);
  NNFT_AT(&X, 1, 0) = NAN;
  CHECK_STATUS(nnft_nngp_matrix(&a, 0, 0, &X, NULL, &K), NNFT_ENONFINITE);
  CHECK_STATUS(nnft_nngp_diag(&a, 1, 0, &X, &D), NNFT_ENONFINITE);
  NNFT_AT(&X, 1, 0) = INFINITY;
  CHECK_STATUS(nnft_nngp_matrix(&a, 0, 0, &X, NULL, &K), NNFT_ENONFINITE);
  NNFT_AT(&X, 1, 0) = -0.5;
  CHECK_STATUS(nnft_nngp_matrix(&a, 0, 1, &X, NULL, &K), NNFT_EDOM); /* quad_order < 2 */
  CHECK_STATUS(nnft_nngp_matrix(&a, 0, -3, &X, NULL, &K), NNFT_EDOM);
  CHECK_STATUS(nnft_nngp_matrix(&a, 0, NNFT_NNGP_QUAD_MAX + 1, &X, NULL, &K), NNFT_EDOM);
  CHECK_STATUS(nnft_nngp_matrix(&a, 2, 0, &X, NULL, &K), NNFT_EDOM);
  nnft_nngp_opts o = nnft_nngp_defaults();
  o.quad_order = 1;
  CHECK_STATUS(nnft_nngp_check(&a, &o, &why), NNFT_EDOM);
  CHECK(why && strstr(why, "quad_order"));
  nnft_arch b = a;
  b.nlayers = 0; /* depth 0 with no output layer: invalid */
  CHECK_STATUS(nnft_nngp_matrix(&b, 0, 0, &X, NULL, &K), NNFT_EDOM);
  b = a;
  b.layer[1].fan_in = 7; /* not chained */
  CHECK_STATUS(nnft_nngp_matrix(&b, 0, 0, &X, NULL, &K), NNFT_EDIM);
  b = a;
  b.layer[1].mean_w = 0.1;
  CHECK_STATUS(nnft_nngp_check(&b, NULL, &why), NNFT_EDOM);
  CHECK(strstr(why, "mean") != NULL);
  CHECK_STATUS(nnft_nngp_matrix(&b, 0, 0, &X, NULL, &K), NNFT_EDOM);
  b = a;
  b.layer[0].sigma_w = NAN;
  CHECK_STATUS(nnft_nngp_matrix(&b, 0, 0, &X, NULL, &K), NNFT_EDOM);
  b = a;
  b.layer[0].act = NNFT_ACT_CUSTOM; /* no callback */
  CHECK_STATUS(nnft_nngp_matrix(&b, 0, 0, &X, NULL, &K), NNFT_EDOM);
  /* generalised cos-net: no NTK; d_in = 4 has no propagator; m = 0 in d = 1 diverges */
  nnft_arch c = mlp_n(2, 1, 10, NNFT_ACT_COS, 1.0, 0.0, NNFT_PARAM_STANDARD);
  c.is_cosnet = 1, c.layer[1].has_bias = 0, c.freq = NNFT_FREQ_BALL, c.radius = 2, c.mass = 1;
  c.amplitude = 1;
  CHECK_STATUS(nnft_nngp_matrix(&c, 0, 0, &X, NULL, &K), NNFT_OK);
  CHECK_STATUS(nnft_nngp_matrix(&c, 1, 0, &X, NULL, &K), NNFT_EDOM);
  c.mass = 0;
  CHECK_STATUS(nnft_nngp_check(&c, NULL, &why), NNFT_EDOM);
  nnft_arch c4 = mlp_n(4, 1, 10, NNFT_ACT_COS, 1.0, 0.0, NNFT_PARAM_STANDARD);
  c4.is_cosnet = 1, c4.layer[1].has_bias = 0, c4.freq = NNFT_FREQ_BALL, c4.radius = 2;
  c4.mass = 1, c4.amplitude = 1;
  CHECK_STATUS(nnft_nngp_check(&c4, NULL, &why), NNFT_EDOM);
  CHECK(strstr(why, "d_in") != NULL);
  /* overflow: deep exp network */
  nnft_arch e = mlp_n(2, 6, 8, NNFT_ACT_EXP, 3.0, 1.0, NNFT_PARAM_STANDARD);
  CHECK_STATUS(nnft_nngp_matrix(&e, 0, 0, &X, NULL, &K), NNFT_ENONFINITE);
  /* out overlapping X */
  nnft_mat big = mat(2, 4, NULL), inX, inK;
  nnft_mat_view(&big, 0, 0, 2, 2, &inX);
  nnft_mat_view(&big, 0, 1, 2, 2, &inK);
  CHECK_STATUS(nnft_nngp_matrix(&a, 0, 0, &inX, NULL, &inK), NNFT_EDOM);
  /* expect: bad arguments */
  double V;
  CHECK_STATUS(nnft_nngp_expect(NNFT_ACT_RELU, NULL, -1, 1, 0, NNFT_NNGP_AUTO, NULL, &V, NULL),
               NNFT_EDOM);
  CHECK_STATUS(nnft_nngp_expect(NNFT_ACT_TANH, NULL, 1, 1, 0, NNFT_NNGP_AUTO, NULL, &V, NULL),
               NNFT_EDOM); /* quadrature without a rule */
  CHECK_STATUS(nnft_nngp_expect(NNFT_ACT_GAUSSNET, NULL, 1, 1, 0, NNFT_NNGP_AUTO, NULL, &V, NULL),
               NNFT_EDOM);
  /* empty inputs are fine */
  nnft_mat E0 = {0, 2, 1, NULL, 0}, K0 = {0, 0, 1, NULL, 0};
  CHECK_STATUS(nnft_nngp_matrix(&a, 0, 0, &E0, NULL, &K0), NNFT_OK);
  nnft_mat_free(&big);
  nnft_mat_free(&X);
  nnft_mat_free(&X3);
  nnft_mat_free(&K);
  nnft_mat_free(&W);
  nnft_mat_free(&D);
}

/* Interrupts: a pending flag stops the evaluation. */
static void test_interrupt(void) {
  const double xv[] = {0.3, 1.0, -0.5, 0.2};
  nnft_mat X = mat(2, 2, xv), K = mat(2, 2, NULL);
  nnft_arch a = mlp_n(2, 2, 8, NNFT_ACT_RELU, 1.2, 0.3, NNFT_PARAM_NTK);
  nnft_interrupt_flag = 1;
  CHECK_STATUS(nnft_nngp_matrix(&a, 0, 0, &X, NULL, &K), NNFT_EINTR);
  nnft_interrupt_flag = 0;
  CHECK_STATUS(nnft_nngp_matrix(&a, 0, 0, &X, NULL, &K), NNFT_OK);
  nnft_mat_free(&X);
  nnft_mat_free(&K);
}

/* Every allocation of the evaluation can fail: NNFT_ENOMEM, nothing leaked (LeakSanitizer). */
static void test_alloc_failures(void) {
  size_t n = 40, d = 3;
  nnft_mat X = mat(n, d, NULL), Y = mat(n - 5, d, NULL);
  nnft_rng r;
  nnft_rng_init(&r, 9);
  nnft_rng_mat_normal(&r, &X, 0, 1);
  nnft_rng_mat_normal(&r, &Y, 0, 1);
  nnft_mat K = mat(n, n, NULL), R = mat(n, n - 5, NULL), D = mat(n, 1, NULL);
  nnft_arch archs[3];
  archs[0] = mlp_n(d, 2, 8, NNFT_ACT_GELU, 1.2, 0.3, NNFT_PARAM_NTK);
  archs[1] = mlp_n(d, 3, 8, NNFT_ACT_RELU, 1.2, 0.3, NNFT_PARAM_STANDARD);
  archs[2] = mlp_n(1, 1, 8, NNFT_ACT_COS, 1.0, 0.0, NNFT_PARAM_STANDARD);
  archs[2].is_cosnet = 1, archs[2].layer[1].has_bias = 0, archs[2].freq = NNFT_FREQ_BALL;
  archs[2].radius = 2, archs[2].mass = 1, archs[2].amplitude = 1;
  nnft_mat X1, Y1;
  nnft_mat_view(&X, 0, 0, n, 1, &X1);
  nnft_mat_view(&Y, 0, 0, n - 5, 1, &Y1);
  for (int which = 0; which < 3; which++)
    for (int call = 0; call < 3; call++) {
      const nnft_arch *a = &archs[which];
      const nnft_mat *x = which == 2 ? &X1 : &X, *y = which == 2 ? &Y1 : &Y;
      nnft_nngp_opts o = nnft_nngp_defaults();
      o.ntk = which == 0;
      o.quad_order = 6;
      o.threads = 2;
      int done = 0;
      for (long k = 0; k < 200 && !done; k++) {
        test_alloc_fail_after(k);
        nnft_status s = call == 0   ? nnft_nngp_eval(a, &o, x, NULL, &K)
                        : call == 1 ? nnft_nngp_eval(a, &o, x, y, &R)
                                    : nnft_nngp_eval_diag(a, &o, x, &D);
        test_alloc_fail_after(-1);
        if (s == NNFT_OK) done = 1;
        else CHECK_STATUS(s, NNFT_ENOMEM);
      }
      CHECK(done);
    }
  nnft_gh_rule g;
  for (long k = 0; k < 10; k++) {
    test_alloc_fail_after(k);
    nnft_status s = nnft_gh_rule_alloc(20, &g);
    test_alloc_fail_after(-1);
    if (!s) {
      nnft_gh_rule_free(&g);
      break;
    }
    CHECK_STATUS(s, NNFT_ENOMEM);
  }
  nnft_mat_free(&X);
  nnft_mat_free(&Y);
  nnft_mat_free(&K);
  nnft_mat_free(&R);
  nnft_mat_free(&D);
}

int main(void) {
  gsl_set_error_handler_off();
  test_gh_rules();
  test_closed_forms();
  test_quadrature();
  test_one_layer_vs_finite();
  test_deep_linear();
  test_paths();
  test_custom();
  test_refusals();
  test_interrupt();
  test_alloc_failures();
  test_empirical_ntk();
  return test_report("test_nngp");
}
