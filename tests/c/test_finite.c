/* Tests of nnft_finite: single-neuron moments against closed forms (the kernels of physics.md
 * §2.2-2.3, Wick's theorem for the linear activation, orthant probabilities for the step on the
 * rank-3 sphere, the exp-net closed form against Gauss–Hermite, direct Monte Carlo of neurons),
 * the exact G2, G4_c and G6_c against brute-force Monte Carlo of whole finite networks
 * (ReLU-, Erf-, Gauss-nets, plain and generalised cos-nets at N = 2..3), the exact 1/N and 1/N²
 * scalings, the tuple order, every refusal, and allocation failures.
 *
 * Monte Carlo tolerances: the ensemble is split into B = 25 bags; the estimate is the mean over
 * bags and its error bar σ = sd(bags)/√B. A test passes when |exact − MC| <= 5σ for every tuple
 * and fails if the exact value is off by a few σ: the prediction must also be resolved (largest
 * |exact| / σ above 10), so a wrong factor (3 M4 vs M4, 1/N vs 1/N², σ_W² vs σ_W⁴) fails. */
#include <gsl/gsl_errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nnft_finite.h"
#include "nnft_freeprop.h"
#include "nnft_rng.h"
#include "test_util.h"

static nnft_arch mlp1(size_t d, size_t N, nnft_act act, double sw, double sb, double sw1,
                      double sb1) {
  nnft_arch a;
  memset(&a, 0, sizeof a);
  a.d_in = d;
  a.nlayers = 2;
  a.param = NNFT_PARAM_STANDARD;
  a.layer[0].fan_in = d;
  a.layer[0].fan_out = N;
  a.layer[0].act = act;
  a.layer[0].sigma_w = sw;
  a.layer[0].sigma_b = sb;
  a.layer[0].has_bias = 1;
  a.layer[1].fan_in = N;
  a.layer[1].fan_out = 1;
  a.layer[1].act = NNFT_ACT_LINEAR;
  a.layer[1].sigma_w = sw1;
  a.layer[1].sigma_b = sb1;
  a.layer[1].has_bias = 1;
  return a;
}

/* Cos-net: plain (Gaussian frequencies, σ_w) or generalised (ball R, mass m, amplitude). */
static nnft_arch cosnet(size_t d, size_t N, int generalised, double sw, double R, double m,
                        double sa) {
  nnft_arch a = mlp1(d, N, NNFT_ACT_COS, sw, 0.0, sa, 0.0);
  a.layer[1].has_bias = 0;
  a.is_cosnet = 1;
  a.freq = generalised ? NNFT_FREQ_BALL : NNFT_FREQ_GAUSSIAN;
  a.radius = R;
  a.mass = m;
  a.amplitude = generalised;
  return a;
}

static nnft_mat mat(size_t r, size_t c, const double *v) {
  nnft_mat m;
  test_alloc_fail_after(-1);
  if (nnft_mat_alloc(r, c, &m)) exit(2);
  if (v)
    for (size_t i = 0; i < r; i++)
      for (size_t j = 0; j < c; j++) NNFT_AT(&m, i, j) = v[i * c + j]; /* v row-major */
  return m;
}

static double moment(const nnft_arch *a, const nnft_mat *X, size_t n, const size_t *idx,
                     nnft_finite_method method) {
  nnft_finite_opts o = nnft_finite_defaults();
  o.method = method;
  double m = NAN;
  nnft_status s = nnft_finite_moment(a, X, idx, n, &o, &m);
  if (s) fprintf(stderr, "nnft_finite_moment: %s\n", nnft_strerror(s));
  return m;
}

static double kern(const nnft_arch *a, const nnft_mat *X, size_t i, size_t j) {
  double dot = 0.0;
  for (size_t c = 0; c < X->cols; c++) dot += NNFT_AT(X, i, c) * NNFT_AT(X, j, c);
  const nnft_layer *l = &a->layer[0];
  return l->sigma_b * l->sigma_b + l->sigma_w * l->sigma_w * dot / (double)a->d_in;
}

/* E[relu(u) relu(v)] (arc-cosine, physics.md §2.2) */
static double relu_v(double q1, double q2, double c) {
  double th = atan2(sqrt(fmax(q1 * q2 - c * c, 0.0)), c);
  return sqrt(q1 * q2) / (2 * M_PI) * (sin(th) + (M_PI - th) * cos(th));
}

static double custom_exp(void *ctx, double z) {
  (void)ctx;
  return exp(z);
}

/* ---- brute-force Monte Carlo of finite networks ---- */

typedef struct mc_result {
  size_t count;  /* sorted 4-tuples (or 6-tuples) */
  double *mean;  /* per tuple: mean over bags of the connected function */
  double *err;   /* per tuple: sd(bags)/√B */
  double *g2m, *g2e; /* n_pts x n_pts G2 mean and error */
} mc_result;

/* f(x_p) for p = 0..np-1 of one freshly drawn network (physics.md §1.2, §1.3). */
static void draw_net(const nnft_arch *a, const nnft_mat *X, nnft_rng *g, double *f) {
  size_t N = a->layer[0].fan_out, d = a->d_in, np = X->rows;
  const nnft_layer *l0 = &a->layer[0], *l1 = &a->layer[1];
  double b1 = l1->has_bias ? l1->sigma_b * nnft_rng_normal(g) : 0.0;
  for (size_t p = 0; p < np; p++) f[p] = b1;
  for (size_t i = 0; i < N; i++) {
    double w[8], bias, amp = 1.0;
    if (a->is_cosnet && a->freq == NNFT_FREQ_BALL) {
      nnft_mat bm;
      double buf[8];
      bm.rows = 1;
      bm.cols = d;
      bm.ld = 1;
      bm.data = buf;
      bm.owns = 0;
      nnft_rng_ball(g, a->radius, &bm);
      double b2 = 0.0;
      for (size_t c = 0; c < d; c++) {
        w[c] = buf[c];
        b2 += buf[c] * buf[c];
      }
      if (a->amplitude) amp = sqrt(nnft_arch_cos_c2(a) / (b2 + a->mass * a->mass));
    } else {
      for (size_t c = 0; c < d; c++) w[c] = l0->sigma_w / sqrt((double)d) * nnft_rng_normal(g);
    }
    if (a->is_cosnet) bias = M_PI * (2.0 * nnft_rng_uniform(g) - 1.0);
    else bias = l0->sigma_b * nnft_rng_normal(g);
    double W1 = l1->sigma_w / sqrt((double)N) * nnft_rng_normal(g) * amp;
    for (size_t p = 0; p < np; p++) {
      double u = bias, xx = 0.0;
      for (size_t c = 0; c < d; c++) {
        u += w[c] * NNFT_AT(X, p, c);
        xx += NNFT_AT(X, p, c) * NNFT_AT(X, p, c);
      }
      double h;
      if (l0->act == NNFT_ACT_GAUSSNET)
        h = exp(u - (l0->sigma_b * l0->sigma_b + l0->sigma_w * l0->sigma_w * xx / (double)d));
      else h = nnft_act_eval(l0->act, u);
      f[p] += W1 * h;
    }
  }
}

/* Connected k-point functions (k = 4 or 6) of E networks in B bags, per sorted tuple. */
static mc_result mc_connected(const nnft_arch *a, const nnft_mat *X, size_t k, size_t E, size_t B,
                              uint64_t seed) {
  size_t np = X->rows, count;
  nnft_finite_ntuples(np, k, &count);
  nnft_mat tup = mat(count, k, NULL);
  nnft_finite_tuples(np, k, &tup);
  size_t count4;
  nnft_finite_ntuples(np, 4, &count4);
  nnft_mat tup4 = mat(count4, 4, NULL);
  nnft_finite_tuples(np, 4, &tup4);
  mc_result res = {count, calloc(count, sizeof(double)), calloc(count, sizeof(double)),
                   calloc(np * np, sizeof(double)), calloc(np * np, sizeof(double))};
  double *sq = calloc(count, sizeof(double)), *g2sq = calloc(np * np, sizeof(double));
  double *g2 = calloc(np * np, sizeof(double)), *gk = calloc(count, sizeof(double));
  double *g4 = calloc(count4, sizeof(double)), f[16];
  nnft_rng root, g;
  nnft_rng_init(&root, seed);
  size_t per = E / B;
  for (size_t b = 0; b < B; b++) {
    nnft_rng_substream(&root, b, &g);
    memset(g2, 0, np * np * sizeof(double));
    memset(gk, 0, count * sizeof(double));
    memset(g4, 0, count4 * sizeof(double));
    for (size_t e = 0; e < per; e++) {
      draw_net(a, X, &g, f);
      for (size_t i = 0; i < np; i++)
        for (size_t j = 0; j < np; j++) g2[i + j * np] += f[i] * f[j];
      for (size_t t = 0; t < count; t++) {
        double p = 1.0;
        for (size_t q = 0; q < k; q++) p *= f[(size_t)NNFT_AT(&tup, t, q)];
        gk[t] += p;
      }
      if (k == 6)
        for (size_t t = 0; t < count4; t++) {
          double p = 1.0;
          for (size_t q = 0; q < 4; q++) p *= f[(size_t)NNFT_AT(&tup4, t, q)];
          g4[t] += p;
        }
    }
    for (size_t i = 0; i < np * np; i++) g2[i] /= (double)per;
    for (size_t t = 0; t < count4; t++) g4[t] /= (double)per;
    for (size_t t = 0; t < count; t++) {
      size_t x[6];
      for (size_t q = 0; q < k; q++) x[q] = (size_t)NNFT_AT(&tup, t, q);
#define G2(i, j) g2[x[i] + x[j] * np]
      double c;
      if (k == 4) {
        c = gk[t] / (double)per - G2(0, 1) * G2(2, 3) - G2(0, 2) * G2(1, 3) - G2(0, 3) * G2(1, 2);
      } else {
        /* G6_c = G6 − Σ_15 G4 G2 + 2 Σ_15 G2 G2 G2, G4 looked up by brute force */
        double s42 = 0.0, s222 = 0.0;
        for (size_t e1 = 0; e1 < 6; e1++)
          for (size_t e2 = e1 + 1; e2 < 6; e2++) {
            size_t rest[4], nr = 0;
            for (size_t q = 0; q < 6; q++)
              if (q != e1 && q != e2) rest[nr++] = x[q];
            for (size_t u = 0; u < count4; u++)
              if ((size_t)NNFT_AT(&tup4, u, 0) == rest[0] && (size_t)NNFT_AT(&tup4, u, 1) == rest[1] &&
                  (size_t)NNFT_AT(&tup4, u, 2) == rest[2] && (size_t)NNFT_AT(&tup4, u, 3) == rest[3]) {
                s42 += g4[u] * G2(e1, e2);
                break;
              }
          }
        for (size_t i1 = 1; i1 < 6; i1++) { /* matchings: 0 with i1, then the rest */
          size_t r[4], nr = 0;
          for (size_t q = 1; q < 6; q++)
            if (q != i1) r[nr++] = q;
          s222 += G2(0, i1) * (G2(r[0], r[1]) * G2(r[2], r[3]) + G2(r[0], r[2]) * G2(r[1], r[3]) +
                               G2(r[0], r[3]) * G2(r[1], r[2]));
        }
        c = gk[t] / (double)per - s42 + 2.0 * s222;
      }
#undef G2
      res.mean[t] += c;
      sq[t] += c * c;
    }
    for (size_t i = 0; i < np * np; i++) {
      res.g2m[i] += g2[i];
      g2sq[i] += g2[i] * g2[i];
    }
  }
  for (size_t t = 0; t < count; t++) {
    res.mean[t] /= (double)B;
    res.err[t] = sqrt(fmax(sq[t] / B - res.mean[t] * res.mean[t], 0.0) * B / (B - 1.0) / B);
  }
  for (size_t i = 0; i < np * np; i++) {
    res.g2m[i] /= (double)B;
    res.g2e[i] = sqrt(fmax(g2sq[i] / B - res.g2m[i] * res.g2m[i], 0.0) * B / (B - 1.0) / B);
  }
  free(sq), free(g2sq), free(g2), free(gk), free(g4);
  nnft_mat_free(&tup);
  nnft_mat_free(&tup4);
  return res;
}

static void mc_free(mc_result *r) { free(r->mean), free(r->err), free(r->g2m), free(r->g2e); }

/* Compare the exact G2 and connected k-point function with Monte Carlo (see the header). */
static void check_against_mc(const char *name, const nnft_arch *a, const nnft_mat *X, size_t k,
                             size_t E, uint64_t seed) {
  mc_result mc = mc_connected(a, X, k, E, 25, seed);
  nnft_mat ex = mat(mc.count, 1, NULL), K = mat(X->rows, X->rows, NULL);
  CHECK_STATUS(k == 4 ? nnft_finite_g4c(a, X, NULL, &ex) : nnft_finite_g6c(a, X, NULL, &ex),
               NNFT_OK);
  CHECK_STATUS(nnft_finite_g2(a, X, NULL, &K), NNFT_OK);
  double zmax = 0.0, resolved = 0.0, zmax2 = 0.0;
  for (size_t t = 0; t < mc.count; t++) {
    double z = fabs(ex.data[t] - mc.mean[t]) / mc.err[t];
    if (z > zmax) zmax = z;
    if (fabs(ex.data[t]) / mc.err[t] > resolved) resolved = fabs(ex.data[t]) / mc.err[t];
  }
  for (size_t i = 0; i < X->rows * X->rows; i++) {
    double z = fabs(K.data[i] - mc.g2m[i]) / mc.g2e[i];
    if (z > zmax2) zmax2 = z;
  }
  printf("  %-28s G%zu_c: max |exact - MC|/err = %.2f, max |exact|/err = %.1f; G2: max z = %.2f\n",
         name, k, zmax, resolved, zmax2);
  CHECK(zmax <= 5.0);
  CHECK(resolved >= 10.0);
  CHECK(zmax2 <= 5.0);
  nnft_mat_free(&ex);
  nnft_mat_free(&K);
  mc_free(&mc);
}

int main(void) {
  gsl_set_error_handler_off();
  test_alloc_fail_after(-1);

  /* ---- tuples: counts and lexicographic order ---- */
  {
    size_t c;
    CHECK_STATUS(nnft_finite_ntuples(6, 2, &c), NNFT_OK);
    CHECK(c == 21);
    CHECK_STATUS(nnft_finite_ntuples(6, 4, &c), NNFT_OK);
    CHECK(c == 126);
    CHECK_STATUS(nnft_finite_ntuples(6, 6, &c), NNFT_OK);
    CHECK(c == 462);
    CHECK_STATUS(nnft_finite_ntuples(0, 4, &c), NNFT_OK);
    CHECK(c == 0);
    CHECK_STATUS(nnft_finite_ntuples((size_t)1 << 40, 6, &c), NNFT_EOVERFLOW);
    nnft_mat t = mat(126, 4, NULL);
    CHECK_STATUS(nnft_finite_tuples(6, 4, &t), NNFT_OK);
    int sorted = 1, lex = 1;
    for (size_t r = 0; r < 126; r++) {
      for (size_t q = 0; q + 1 < 4; q++) sorted &= NNFT_AT(&t, r, q) <= NNFT_AT(&t, r, q + 1);
      if (r > 0) { /* strictly increasing lexicographically */
        size_t q = 0;
        while (q < 4 && NNFT_AT(&t, r, q) == NNFT_AT(&t, r - 1, q)) q++;
        lex &= q < 4 && NNFT_AT(&t, r, q) > NNFT_AT(&t, r - 1, q);
      }
    }
    CHECK(sorted && lex);
    CHECK(NNFT_AT(&t, 0, 3) == 0 && NNFT_AT(&t, 1, 3) == 1 && NNFT_AT(&t, 125, 0) == 5);
    nnft_mat bad = mat(125, 4, NULL);
    CHECK_STATUS(nnft_finite_tuples(6, 4, &bad), NNFT_EDIM);
    nnft_mat_free(&t);
    nnft_mat_free(&bad);
  }

  /* ---- moments against closed forms ---- */
  double xs[] = {-1.0, -0.6, -0.2, 0.2, 0.6, 1.0};
  nnft_mat X1 = mat(6, 1, xs);
  {
    /* linear: Wick's theorem exactly (Gauss–Hermite is exact for polynomials) */
    nnft_arch lin = mlp1(1, 3, NNFT_ACT_LINEAR, 1.3, 0.7, 1.0, 1.0);
    size_t id4[4] = {0, 2, 3, 5};
    double k[6][6];
    for (size_t i = 0; i < 6; i++)
      for (size_t j = 0; j < 6; j++) k[i][j] = kern(&lin, &X1, i, j);
    CHECK_NEAR(moment(&lin, &X1, 4, id4, NNFT_FINITE_AUTO),
               k[0][2] * k[3][5] + k[0][3] * k[2][5] + k[0][5] * k[2][3], 1e-13);
    size_t id2[2] = {1, 4};
    CHECK_NEAR(moment(&lin, &X1, 2, id2, NNFT_FINITE_AUTO), k[1][4], 1e-14);
    size_t id3[3] = {1, 4, 4};
    CHECK_NEAR(moment(&lin, &X1, 3, id3, NNFT_FINITE_AUTO), 0.0, 1e-14);

    /* relu M2 (rank 2 with a bias) against the arc-cosine kernel: polar quadrature, and the
     * slower Gauss–Hermite for comparison */
    nnft_arch relu = mlp1(1, 3, NNFT_ACT_RELU, 1.0, 0.5, 1.0, 0.0);
    double worst = 0.0, worst_gh = 0.0;
    for (size_t i = 0; i < 6; i++)
      for (size_t j = i; j < 6; j++) {
        size_t id[2] = {i, j};
        double ex = relu_v(kern(&relu, &X1, i, i), kern(&relu, &X1, j, j), kern(&relu, &X1, i, j));
        double e1 = fabs(moment(&relu, &X1, 2, id, NNFT_FINITE_AUTO) / ex - 1);
        double e2 = fabs(moment(&relu, &X1, 2, id, NNFT_FINITE_GH) / ex - 1);
        if (e1 > worst) worst = e1;
        if (e2 > worst_gh) worst_gh = e2;
      }
    printf("  relu M2 vs arc-cosine: polar max rel err %.2e, Gauss-Hermite(40) %.2e\n", worst,
           worst_gh);
    CHECK(worst < 1e-12);
    CHECK(worst_gh < 1e-2);

    /* erf M2 against the arcsin kernel (Gauss–Hermite, rank 2) */
    nnft_arch erfn = mlp1(1, 3, NNFT_ACT_ERF, 1.0, 1.0, 1.0, 1.0);
    worst = 0.0;
    for (size_t i = 0; i < 6; i++)
      for (size_t j = i; j < 6; j++) {
        size_t id[2] = {i, j};
        double q1 = kern(&erfn, &X1, i, i), q2 = kern(&erfn, &X1, j, j), c = kern(&erfn, &X1, i, j);
        double ex = 2 / M_PI * asin(2 * c / sqrt((1 + 2 * q1) * (1 + 2 * q2)));
        double e = fabs(moment(&erfn, &X1, 2, id, NNFT_FINITE_AUTO) - ex);
        if (e > worst) worst = e;
      }
    printf("  erf M2 vs arcsin kernel: max abs err %.2e\n", worst);
    CHECK(worst < 1e-13);

    /* exp-net closed form against Gauss–Hermite (a custom exp activation; method GH because the
     * default trapezoid grid stops at |z| = 9, too early for exponentially growing integrands) */
    nnft_arch expn = mlp1(1, 3, NNFT_ACT_EXP, 1.0, 0.6, 1.0, 1.0);
    nnft_arch expc = expn;
    expc.layer[0].act = NNFT_ACT_CUSTOM;
    expc.custom.eval = custom_exp;
    size_t id[4] = {0, 1, 4, 5};
    double cf = moment(&expn, &X1, 4, id, NNFT_FINITE_AUTO);
    double ks = 0.0;
    for (size_t i = 0; i < 4; i++)
      for (size_t j = 0; j < 4; j++) ks += kern(&expn, &X1, id[i], id[j]);
    CHECK_NEAR(cf, exp(0.5 * ks), 1e-12 * cf);
    CHECK_NEAR(moment(&expc, &X1, 4, id, NNFT_FINITE_GH), cf, 1e-11 * cf);
    /* physics.md §3.4: M_n = exp(n²σ_b²/2 + σ_W² (Σ x)²/(2d)) */
    double sx = xs[0] + xs[1] + xs[4] + xs[5];
    CHECK_NEAR(cf, exp(16 * 0.36 / 2 + sx * sx / 2), 1e-12 * cf);

    /* gauss-net: M2 = exp(−σ_W² |x − x'|² / (2d)) whatever σ_b (K_Gauss, §2.3) */
    nnft_arch gn = mlp1(1, 3, NNFT_ACT_GAUSSNET, 1.4, 0.9, 1.0, 0.0);
    size_t i2[2] = {0, 4};
    CHECK_NEAR(moment(&gn, &X1, 2, i2, NNFT_FINITE_AUTO), exp(-1.96 * 1.6 * 1.6 / 2), 1e-14);

    /* step: M2 = (π − θ)/(2π); M3 on a rank-3 factor (d = 2 with bias) is the trivariate
     * orthant probability 1/8 + (asin ρ12 + asin ρ13 + asin ρ23)/(4π) */
    nnft_arch st = mlp1(2, 3, NNFT_ACT_STEP, 1.2, 0.8, 1.0, 0.0);
    double x2[] = {0.3, -0.5, 1.0, 0.4, -0.7, -0.2, 2.0, 1.0};
    nnft_mat X2 = mat(4, 2, x2);
    double rho[4][4];
    for (size_t i = 0; i < 4; i++)
      for (size_t j = 0; j < 4; j++)
        rho[i][j] = kern(&st, &X2, i, j) / sqrt(kern(&st, &X2, i, i) * kern(&st, &X2, j, j));
    size_t s2[2] = {0, 1};
    CHECK_NEAR(moment(&st, &X2, 2, s2, NNFT_FINITE_AUTO), (M_PI - acos(rho[0][1])) / (2 * M_PI),
               1e-14);
    for (size_t c = 0; c < 4; c++) { /* the four 3-subsets */
      size_t s3[3], q = 0;
      for (size_t i = 0; i < 4; i++)
        if (i != c) s3[q++] = i;
      double ex = 0.125 + (asin(rho[s3[0]][s3[1]]) + asin(rho[s3[0]][s3[2]]) +
                           asin(rho[s3[1]][s3[2]])) / (4 * M_PI);
      double got = moment(&st, &X2, 3, s3, NNFT_FINITE_AUTO);
      printf("  step M3 (rank 3) vs orthant probability: %.3e\n", fabs(got - ex));
      CHECK_NEAR(got, ex, 1e-10);
    }

    /* relu M4 on a rank-3 factor and cos-net moments against direct Monte Carlo of one
     * neuron (2e6 draws, 5σ) */
    nnft_arch rl = mlp1(2, 3, NNFT_ACT_RELU, 1.2, 0.8, 1.0, 0.0);
    nnft_arch gc = cosnet(1, 3, 1, 1.0, 4.0, 0.7, 1.0);
    nnft_arch pc = cosnet(2, 3, 0, 1.5, 0.0, 0.0, 1.0);
    double cx[] = {-0.4, 0.1, 0.5, 1.3};
    nnft_mat Xc = mat(4, 1, cx);
    double px[] = {0.2, -0.1, 0.6, 0.3, -0.5, 0.4, 0.1, 0.1};
    nnft_mat Xp = mat(4, 2, px);
    size_t id4b[4] = {0, 1, 2, 3}, id4c[4] = {0, 0, 2, 3};
    double ex_r = moment(&rl, &X2, 4, id4b, NNFT_FINITE_AUTO);
    double ex_g = moment(&gc, &Xc, 4, id4b, NNFT_FINITE_AUTO);
    double ex_g2 = moment(&gc, &Xc, 4, id4c, NNFT_FINITE_AUTO);
    double ex_p = moment(&pc, &Xp, 4, id4b, NNFT_FINITE_AUTO);
    nnft_rng g;
    nnft_rng_init(&g, 2024);
    size_t E = 2000000;
    double s[4] = {0}, s2s[4] = {0}, C = sqrt(nnft_arch_cos_c2(&gc));
    for (size_t e = 0; e < E; e++) {
      double v[4], p;
      /* relu neuron in d = 2 */
      double w0 = 1.2 / M_SQRT2 * nnft_rng_normal(&g), w1 = 1.2 / M_SQRT2 * nnft_rng_normal(&g);
      double b = 0.8 * nnft_rng_normal(&g);
      p = 1.0;
      for (size_t j = 0; j < 4; j++) p *= fmax(0.0, b + w0 * x2[2 * j] + w1 * x2[2 * j + 1]);
      v[0] = p;
      /* generalised cos-net neuron: b uniform in [−R, R], A = C / sqrt(b² + m²) */
      double fb = 4.0 * (2.0 * nnft_rng_uniform(&g) - 1.0), ph = M_PI * (2.0 * nnft_rng_uniform(&g) - 1.0);
      double A = C / sqrt(fb * fb + 0.49);
      p = A * A * A * A;
      for (size_t j = 0; j < 4; j++) p *= cos(fb * cx[j] + ph);
      v[1] = p;
      p = A * A * A * A * cos(fb * cx[0] + ph) * cos(fb * cx[0] + ph);
      v[2] = p * cos(fb * cx[2] + ph) * cos(fb * cx[3] + ph);
      /* plain cos-net neuron in d = 2: b ~ N(0, σ_w²/d) */
      double q0 = 1.5 / M_SQRT2 * nnft_rng_normal(&g), q1 = 1.5 / M_SQRT2 * nnft_rng_normal(&g);
      ph = M_PI * (2.0 * nnft_rng_uniform(&g) - 1.0);
      p = 1.0;
      for (size_t j = 0; j < 4; j++) p *= cos(q0 * px[2 * j] + q1 * px[2 * j + 1] + ph);
      v[3] = p;
      for (int k = 0; k < 4; k++) {
        s[k] += v[k];
        s2s[k] += v[k] * v[k];
      }
    }
    double exv[4] = {ex_r, ex_g, ex_g2, ex_p};
    const char *nm[4] = {"relu M4 (rank 3)", "generalised cos-net M4", "generalised cos-net M4 (repeat)",
                         "plain cos-net M4 (d=2)"};
    for (int k = 0; k < 4; k++) {
      double mean = s[k] / E, err = sqrt((s2s[k] / E - mean * mean) / E);
      printf("  %-32s exact %.6g  MC %.6g +- %.2g  (z = %.2f)\n", nm[k], exv[k], mean, err,
             (exv[k] - mean) / err);
      CHECK(fabs(exv[k] - mean) <= 5 * err);
    }
    /* relu on a rank-3 factor: the polar quadrature is converged (default vs doubled nodes) */
    nnft_finite_opts fine = nnft_finite_defaults();
    fine.arc_nodes = 64;
    double ex_rf = NAN;
    CHECK_STATUS(nnft_finite_moment(&rl, &X2, id4b, 4, &fine, &ex_rf), NNFT_OK);
    CHECK_NEAR(ex_r, ex_rf, 1e-13 * ex_rf);

    /* cos-net M6 (10 balanced sign patterns) and M3 = 0 against direct Monte Carlo */
    size_t id6[6] = {0, 1, 1, 2, 3, 3}, idc3[3] = {0, 1, 2};
    double ex6 = moment(&pc, &Xp, 6, id6, NNFT_FINITE_AUTO);
    CHECK_NEAR(moment(&pc, &Xp, 3, idc3, NNFT_FINITE_AUTO), 0.0, 1e-16);
    double s6 = 0, s66 = 0;
    for (size_t e = 0; e < E / 2; e++) {
      double q0 = 1.5 / M_SQRT2 * nnft_rng_normal(&g), q1 = 1.5 / M_SQRT2 * nnft_rng_normal(&g);
      double ph = M_PI * (2.0 * nnft_rng_uniform(&g) - 1.0), p = 1.0;
      for (size_t j = 0; j < 6; j++) p *= cos(q0 * px[2 * id6[j]] + q1 * px[2 * id6[j] + 1] + ph);
      s6 += p;
      s66 += p * p;
    }
    double mean6 = s6 / (E / 2), err6 = sqrt((s66 / (E / 2) - mean6 * mean6) / (E / 2));
    printf("  %-32s exact %.6g  MC %.6g +- %.2g  (z = %.2f)\n", "plain cos-net M6 (d=2)", ex6, mean6,
           err6, (ex6 - mean6) / err6);
    CHECK(fabs(ex6 - mean6) <= 5 * err6);
    nnft_mat_free(&X2);
    nnft_mat_free(&Xc);
    nnft_mat_free(&Xp);
  }

  /* ---- exact G2, G4_c (and G6_c) against brute-force Monte Carlo of finite networks ---- */
  {
    double rx[] = {0.2, 0.6, 1.0, 1.2};
    nnft_mat Xr = mat(4, 1, rx);
    nnft_arch relu = mlp1(1, 2, NNFT_ACT_RELU, 1.0, 0.0, 1.0, 0.0); /* [HMS] ReLU-net, N = 2 */
    check_against_mc("ReLU-net N=2 (sigma_b=0)", &relu, &Xr, 4, 400000, 11);
    nnft_arch relub = mlp1(1, 3, NNFT_ACT_RELU, 1.0, 1.0, 1.0, 1.0);
    double rbx[] = {-0.8, 0.1, 0.7};
    nnft_mat Xrb = mat(3, 1, rbx);
    check_against_mc("ReLU-net N=3 (sigma_b=1)", &relub, &Xrb, 4, 400000, 12);
    nnft_arch erfn = mlp1(1, 2, NNFT_ACT_ERF, 1.0, 1.0, 1.0, 1.0);
    double ex[] = {-1.0, -0.2, 0.6, 1.0};
    nnft_mat Xe = mat(4, 1, ex);
    check_against_mc("Erf-net N=2", &erfn, &Xe, 4, 400000, 13);
    nnft_arch gn = mlp1(1, 3, NNFT_ACT_GAUSSNET, 1.0, 0.3, 1.0, 0.0);
    double gx[] = {-0.5, 0.1, 0.9};
    nnft_mat Xg = mat(3, 1, gx);
    check_against_mc("Gauss-net N=3", &gn, &Xg, 4, 400000, 14);
    nnft_arch pc = cosnet(1, 2, 0, 2.0, 0.0, 0.0, 1.0);
    double cx[] = {-0.5, 0.0, 0.4, 1.1};
    nnft_mat Xc = mat(4, 1, cx);
    check_against_mc("plain cos-net N=2", &pc, &Xc, 4, 400000, 15);
    nnft_arch gc = cosnet(1, 2, 1, 0.0, 3.0, 1.0, 1.0);
    check_against_mc("generalised cos-net N=2", &gc, &Xc, 4, 400000, 16);
    nnft_arch gc3 = cosnet(3, 3, 1, 0.0, 2.0, 0.5, 1.0);
    double c3[] = {0.1, 0.2, -0.3, 0.5, -0.4, 0.2, -0.6, 0.0, 0.3};
    nnft_mat Xc3 = mat(3, 3, c3);
    check_against_mc("generalised cos-net d=3 N=3", &gc3, &Xc3, 4, 400000, 17);
    nnft_arch erf1 = mlp1(1, 1, NNFT_ACT_ERF, 1.0, 1.0, 1.0, 0.0);
    double e6[] = {-0.7, 0.5, 1.0};
    nnft_mat Xe6 = mat(3, 1, e6);
    check_against_mc("Erf-net N=1 (G6_c)", &erf1, &Xe6, 6, 400000, 18);

    /* generalised cos-net: G2 is the cutoff free propagator at every N */
    nnft_mat K = mat(4, 4, NULL);
    CHECK_STATUS(nnft_finite_g2(&gc, &Xc, NULL, &K), NNFT_OK);
    nnft_freeprop_params fp = nnft_freeprop_defaults();
    fp.d = 1;
    fp.R = 3.0;
    fp.m = 1.0;
    nnft_mat r = mat(1, 1, NULL), gr = mat(1, 1, NULL);
    r.data[0] = fabs(cx[3] - cx[0]);
    CHECK_STATUS(nnft_freeprop_position(&fp, &r, &gr), NNFT_OK);
    CHECK_NEAR(NNFT_AT(&K, 0, 3), gr.data[0], 1e-13);
    nnft_mat_free(&r);
    nnft_mat_free(&gr);
    nnft_mat_free(&K);

    /* exact 1/N scaling of G4_c and 1/N² of G6_c; G2 independent of N */
    nnft_arch e2 = mlp1(1, 2, NNFT_ACT_ERF, 1.0, 1.0, 1.0, 1.0), e7 = e2;
    e7.layer[0].fan_out = e7.layer[1].fan_in = 7;
    nnft_mat a2 = mat(35, 1, NULL), a7 = mat(35, 1, NULL), b2 = mat(28, 1, NULL),
             b7 = mat(28, 1, NULL);
    CHECK_STATUS(nnft_finite_g4c(&e2, &Xe, NULL, &a2), NNFT_OK);
    CHECK_STATUS(nnft_finite_g4c(&e7, &Xe, NULL, &a7), NNFT_OK);
    CHECK_STATUS(nnft_finite_g6c(&e2, &Xg, NULL, &b2), NNFT_OK);
    nnft_arch g7 = e7;
    CHECK_STATUS(nnft_finite_g6c(&g7, &Xg, NULL, &b7), NNFT_OK);
    double dev = 0.0, dev6 = 0.0;
    for (size_t t = 0; t < 35; t++) dev = fmax(dev, fabs(7 * a7.data[t] - 2 * a2.data[t]));
    for (size_t t = 0; t < 28; t++) dev6 = fmax(dev6, fabs(49 * b7.data[t] - 4 * b2.data[t]));
    CHECK(dev < 1e-15 && dev6 < 1e-15);
    nnft_mat_free(&a2), nnft_mat_free(&a7), nnft_mat_free(&b2), nnft_mat_free(&b7);

    /* G6_c for linear activation, no first-layer bias: exactly 120 σ0⁶ σ1⁶ Π x / N² */
    nnft_arch lin = mlp1(1, 3, NNFT_ACT_LINEAR, 1.1, 0.0, 0.9, 0.4);
    lin.layer[0].has_bias = 0;
    nnft_mat g6 = mat(462, 1, NULL), tup = mat(462, 6, NULL);
    CHECK_STATUS(nnft_finite_g6c(&lin, &X1, NULL, &g6), NNFT_OK);
    nnft_finite_tuples(6, 6, &tup);
    dev = 0.0;
    for (size_t t = 0; t < 462; t++) {
      double p = 120 * pow(1.1 * 0.9, 6) / 9.0;
      for (size_t q = 0; q < 6; q++) p *= xs[(size_t)NNFT_AT(&tup, t, q)];
      dev = fmax(dev, fabs(g6.data[t] - p));
    }
    CHECK(dev < 1e-12);
    nnft_mat_free(&g6), nnft_mat_free(&tup);
    nnft_mat_free(&Xr), nnft_mat_free(&Xrb), nnft_mat_free(&Xe), nnft_mat_free(&Xg);
    nnft_mat_free(&Xc), nnft_mat_free(&Xc3), nnft_mat_free(&Xe6);
  }

  /* ---- refusals ---- */
  {
    nnft_arch a = mlp1(1, 3, NNFT_ACT_ERF, 1.0, 1.0, 1.0, 1.0);
    nnft_mat v = mat(126, 1, NULL), v2 = mat(6, 6, NULL);
    const char *why = NULL;
    CHECK_STATUS(nnft_finite_check_arch(&a, 7, &why), NNFT_EDOM);
    CHECK(why && strstr(why, "between 1 and 6"));
    CHECK_STATUS(nnft_finite_moments(&a, &X1, 0, NULL, &v), NNFT_EDOM);
    CHECK_STATUS(nnft_finite_moments(&a, &X1, 7, NULL, &v), NNFT_EDOM);
    nnft_arch deep = a;
    deep.nlayers = 3;
    deep.layer[1].fan_out = 3;
    deep.layer[1].act = NNFT_ACT_ERF;
    deep.layer[2] = a.layer[1];
    CHECK_STATUS(nnft_arch_check(&deep), NNFT_OK);
    CHECK_STATUS(nnft_finite_check_arch(&deep, 4, &why), NNFT_EDOM);
    CHECK(why && strstr(why, "one hidden layer"));
    CHECK_STATUS(nnft_finite_g4c(&deep, &X1, NULL, &v), NNFT_EDOM);
    nnft_arch mean = a;
    mean.layer[1].mean_w = 0.1;
    CHECK_STATUS(nnft_finite_g4c(&mean, &X1, NULL, &v), NNFT_EDOM);
    nnft_mat X2 = mat(6, 2, NULL);
    CHECK_STATUS(nnft_finite_g4c(&a, &X2, NULL, &v), NNFT_EDIM);
    nnft_mat Xn = mat(6, 1, xs);
    Xn.data[3] = NAN;
    CHECK_STATUS(nnft_finite_g2(&a, &Xn, NULL, &v2), NNFT_ENONFINITE);
    nnft_mat w = mat(125, 1, NULL);
    CHECK_STATUS(nnft_finite_g4c(&a, &X1, NULL, &w), NNFT_EDIM);
    nnft_finite_opts o = nnft_finite_defaults();
    o.order = NNFT_FINITE_MAX_NODES + 1;
    CHECK_STATUS(nnft_finite_g4c(&a, &X1, &o, &v), NNFT_EDOM);
    nnft_arch m0 = cosnet(3, 2, 1, 0.0, 2.0, 0.0, 1.0);
    CHECK_STATUS(nnft_finite_check_arch(&m0, 2, NULL), NNFT_OK); /* d = 3 > 2 converges */
    CHECK_STATUS(nnft_finite_check_arch(&m0, 4, &why), NNFT_EDOM);
    nnft_arch d4 = cosnet(4, 2, 1, 0.0, 2.0, 1.0, 1.0);
    CHECK_STATUS(nnft_finite_check_arch(&d4, 4, NULL), NNFT_EDOM);
    size_t bad_idx[2] = {0, 6};
    double m;
    CHECK_STATUS(nnft_finite_moment(&a, &X1, bad_idx, 2, NULL, &m), NNFT_EDOM);
    nnft_mat_free(&v), nnft_mat_free(&v2), nnft_mat_free(&X2), nnft_mat_free(&Xn);
    nnft_mat_free(&w);
  }

  /* ---- allocation failures: every allocation of every entry point, in turn ---- */
  {
    nnft_arch gc = cosnet(1, 2, 1, 0.0, 3.0, 1.0, 1.0);
    nnft_arch er = mlp1(1, 2, NNFT_ACT_ERF, 1.0, 1.0, 1.0, 1.0);
    nnft_mat X3 = mat(3, 1, xs), v4 = mat(15, 1, NULL), v6 = mat(28, 1, NULL),
             K = mat(3, 3, NULL), vm = mat(6, 1, NULL);
    const nnft_arch *archs[2] = {&gc, &er};
    int all_ok = 1;
    for (int ai = 0; ai < 2; ai++)
      for (int fn = 0; fn < 4; fn++) {
        nnft_status s = NNFT_ENOMEM;
        long k;
        for (k = 0; k < 50 && s == NNFT_ENOMEM; k++) {
          test_alloc_fail_after(k);
          switch (fn) {
          case 0: s = nnft_finite_g2(archs[ai], &X3, NULL, &K); break;
          case 1: s = nnft_finite_g4c(archs[ai], &X3, NULL, &v4); break;
          case 2: s = nnft_finite_g6c(archs[ai], &X3, NULL, &v6); break;
          default: s = nnft_finite_moments(archs[ai], &X3, 2, NULL, &vm); break;
          }
        }
        test_alloc_fail_after(-1);
        if (s != NNFT_OK || k < 2) all_ok = 0;
      }
    CHECK(all_ok);
    nnft_mat_free(&X3), nnft_mat_free(&v4), nnft_mat_free(&v6), nnft_mat_free(&K);
    nnft_mat_free(&vm);
  }
  nnft_mat_free(&X1);
  return test_report("test_finite");
}
