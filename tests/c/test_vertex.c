/* Tests of nnft_vertex (physics.md §4.1): the adaptive vertex integrals against
 *  - the Gauss-net closed form on the whole space (d = 1, 2, 3) and at a finite cutoff far out;
 *  - the ReLU polynomial in Λ at d = 1 with σ_b0 = 0 and positive inputs. Derivation: with
 *    k(x,y) = σ_w0² x y (d = 1, no bias) and x, y > 0, c = k(x,y) = sqrt(k(x,x)k(y,y)), so s = 0,
 *    θ = 0 and K_w = σ_w1²/(2π) · π c = σ_w1² σ_w0² x y / 2; for y < 0 < x, c < 0, s = 0, θ = π
 *    and K_w = 0. Hence for positive x_a only y ∈ [0, Λ] contributes and
 *        I4(Λ) = ∫_0^Λ Π_a (σ_w1² σ_w0² x_a y / 2) dy = (σ_w1² σ_w0² / 2)⁴ (Π_a x_a) Λ⁵ / 5,
 *    the Λ^{d+4} of [HMS]; a mixed-sign tuple gives I4 = 0 exactly;
 *  - brute-force dense tensor-product Gauss–Legendre at d = 2 (ReLU with its creases, erf);
 *  - the shell accumulation (a grid of cutoffs = each cutoff alone);
 * and the basis T0/T2/T_NL, the six-point diagram sum, every refusal and allocation failures. */
#include <gsl/gsl_errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nnft_corr.h"
#include "nnft_vertex.h"
#include "test_util.h"

static nnft_arch net1(size_t d, nnft_act act, double sw0, double sb0, int bias0, double sw1,
                      double sb1) {
  nnft_arch a;
  memset(&a, 0, sizeof a);
  a.d_in = d;
  a.nlayers = 2;
  a.layer[0].fan_in = d;
  a.layer[0].fan_out = 20;
  a.layer[0].act = act;
  a.layer[0].sigma_w = sw0;
  a.layer[0].sigma_b = sb0;
  a.layer[0].has_bias = bias0;
  a.layer[1].fan_in = 20;
  a.layer[1].fan_out = 1;
  a.layer[1].act = NNFT_ACT_LINEAR;
  a.layer[1].sigma_w = sw1;
  a.layer[1].sigma_b = sb1;
  a.layer[1].has_bias = 1;
  return a;
}

static nnft_mat mk(size_t r, size_t c, const double *rowmajor) {
  nnft_mat m;
  nnft_mat_alloc(r, c, &m);
  for (size_t i = 0; i < r; i++)
    for (size_t j = 0; j < c; j++) NNFT_AT(&m, i, j) = rowmajor[i * c + j];
  return m;
}

static double rel(double a, double b) { return fabs(a - b) / fmax(fabs(b), 1e-300); }

/* All sorted 4-tuples of n points as size_t. */
static size_t *all4(size_t n, size_t *count) {
  nnft_corr_ntuples(n, 4, count);
  uint32_t *u = malloc(4 * *count * sizeof *u);
  size_t *s = malloc(4 * *count * sizeof *s);
  nnft_corr_tuples(n, 4, u);
  for (size_t i = 0; i < 4 * *count; i++) s[i] = u[i];
  free(u);
  return s;
}

static void test_gaussnet_closed(void) {
  static const double X1[] = {-0.5, 0.1, 0.4, 1.2};
  static const double X2[] = {0.2, -0.3, 0.5, 0.5, -0.8, 0.1, 1.0, 0.9};
  static const double X3[] = {0.2, -0.3, 0.1, 0.5, 0.5, -0.2, -0.8, 0.1, 0.3};
  const double *Xs[3] = {X1, X2, X3};
  size_t np[3] = {4, 4, 3};
  for (size_t d = 1; d <= 3; d++) {
    for (int bias = 0; bias < 2; bias++) {
      nnft_arch a = net1(d, NNFT_ACT_GAUSSNET, 1.3, 0.7, bias, 0.9, 1.0);
      nnft_mat X = mk(np[d - 1], d, Xs[d - 1]);
      size_t nt;
      size_t *idx = all4(np[d - 1], &nt);
      nnft_mat I = {0}, E = {0}, C = {0}, If = {0};
      nnft_mat_alloc(nt, 1, &I);
      nnft_mat_alloc(nt, 1, &E);
      nnft_mat_alloc(nt, 1, &C);
      nnft_mat_alloc(nt, 2, &If);
      double Linf = INFINITY, Lf[2] = {0.8, 40.0};
      CHECK_STATUS(nnft_vertex_i4(&a, &X, idx, nt, &Linf, 1, NULL, &I, &E), NNFT_OK);
      CHECK_STATUS(nnft_vertex_i4_closed(&a, &X, idx, nt, &C), NNFT_OK);
      CHECK_STATUS(nnft_vertex_i4(&a, &X, idx, nt, Lf, 2, NULL, &If, NULL), NNFT_OK);
      double worst = 0, worstf = 0, worste = 0;
      for (size_t t = 0; t < nt; t++) {
        worst = fmax(worst, rel(I.data[t], C.data[t]));
        worstf = fmax(worstf, rel(NNFT_AT(&If, t, 1), C.data[t]));
        worste = fmax(worste, E.data[t] / C.data[t]);
        CHECK(NNFT_AT(&If, t, 0) < C.data[t]); /* the small box misses mass */
      }
      CHECK(worst < 1e-8);
      CHECK(worstf < 1e-8);
      CHECK(worste < 1e-8);
      if (worst >= 1e-8) fprintf(stderr, "gauss-net d=%zu bias=%d rel err %g\n", d, bias, worst);
      /* the closed form with σ_W0 = σ_W1 = σ_W is [HMS]'s σ_W⁸ (π d/(2σ_W²))^{d/2} exp(...) */
      if (d == 1 && bias) {
        nnft_arch b = net1(1, NNFT_ACT_GAUSSNET, 2.0, 1.0, 1, 2.0, 1.0);
        size_t t0[4] = {0, 1, 2, 3};
        nnft_mat C1 = {0};
        nnft_mat_alloc(1, 1, &C1);
        CHECK_STATUS(nnft_vertex_i4_closed(&b, &X, t0, 1, &C1), NNFT_OK);
        double sq = 0, S = 0;
        for (int q = 0; q < 4; q++) {
          sq += X1[q] * X1[q];
          S += X1[q];
        }
        double want = pow(2.0, 8) * sqrt(M_PI / 8.0) * exp(-(4.0 / 2.0) * (sq - S * S / 4));
        CHECK(rel(C1.data[0], want) < 1e-14);
        nnft_mat_free(&C1);
      }
      nnft_mat_free(&I);
      nnft_mat_free(&E);
      nnft_mat_free(&C);
      nnft_mat_free(&If);
      nnft_mat_free(&X);
      free(idx);
    }
  }
}

static void test_relu_polynomial(void) {
  static const double Xp[] = {0.2, 0.5, 0.9, 1.7, -0.6};
  nnft_mat X = mk(5, 1, Xp);
  nnft_arch a = net1(1, NNFT_ACT_RELU, 1.4, 0.0, 1, 0.8, 1.0); /* σ_b0 = 0: kink at 0 */
  static const double L[21] = {7, 10, 15, 20, 30, 40, 50, 70, 100, 200, 500, 1e3,
                               2e3, 5e3, 7e3, 1e4, 2e4, 4e4, 6e4, 8e4, 1e5};
  size_t nt;
  size_t *idx = all4(5, &nt);
  nnft_mat I = {0};
  nnft_mat_alloc(nt, 21, &I);
  CHECK_STATUS(nnft_vertex_i4(&a, &X, idx, nt, L, 21, NULL, &I, NULL), NNFT_OK);
  double c = pow(0.8 * 0.8 * 1.4 * 1.4 / 2.0, 4);
  double worst = 0;
  size_t nzero = 0;
  for (size_t t = 0; t < nt; t++) {
    const size_t *x = idx + 4 * t;
    int has_neg = x[3] == 4; /* point 4 is the negative one (sorted tuples) */
    double px = Xp[x[0]] * Xp[x[1]] * Xp[x[2]] * Xp[x[3]];
    for (size_t k = 0; k < 21; k++) {
      if (has_neg) {
        /* all-negative tuple (4,4,4,4): the mirror image of the positive formula */
        int allneg = x[0] == 4;
        double want = allneg ? c * px * pow(L[k], 5) / 5 : 0.0;
        if (!allneg) {
          CHECK(NNFT_AT(&I, t, k) == 0.0);
          nzero++;
        } else
          worst = fmax(worst, rel(NNFT_AT(&I, t, k), want));
      } else {
        worst = fmax(worst, rel(NNFT_AT(&I, t, k), c * px * pow(L[k], 5) / 5));
      }
    }
  }
  CHECK(worst < 1e-12);
  CHECK(nzero > 0);
  /* shell accumulation = each cutoff alone */
  nnft_mat J = {0};
  nnft_mat_alloc(nt, 1, &J);
  CHECK_STATUS(nnft_vertex_i4(&a, &X, idx, nt, &L[9], 1, NULL, &J, NULL), NNFT_OK);
  for (size_t t = 0; t < nt; t++)
    CHECK(fabs(J.data[t] - NNFT_AT(&I, t, 9)) <= 1e-12 * fabs(J.data[t]) + 1e-300);
  nnft_mat_free(&J);
  nnft_mat_free(&I);
  nnft_mat_free(&X);
  free(idx);
}

/* Brute force: tensor Gauss–Legendre with n nodes per dimension on each of the four quadrants
 * of [−Λ, Λ]² (the kink of ReLU at the origin falls on a corner). */
static void gl(int n, double *x, double *w) {
  for (int i = 0; i < n; i++) {
    double z = cos(M_PI * (i + 0.75) / (n + 0.5)), pp = 1, p1 = 1, p2 = 0;
    for (int it = 0; it < 100; it++) {
      p1 = 1;
      p2 = 0;
      for (int j = 1; j <= n; j++) {
        double p3 = p2;
        p2 = p1;
        p1 = ((2.0 * j - 1) * z * p2 - (j - 1.0) * p3) / j;
      }
      pp = n * (z * p1 - p2) / (z * z - 1);
      double dz = p1 / pp;
      z -= dz;
      if (fabs(dz) < 1e-15) break;
    }
    x[i] = 0.5 * (1 - z);
    w[i] = 1.0 / ((1 - z * z) * pp * pp);
  }
}

static void brute2(const nnft_arch *a, const nnft_mat *X, const size_t *idx, size_t nt,
                   double L, int n, double *out) {
  nnft_vertex_kernel k;
  nnft_vertex_kernel_init(a, &k, NULL);
  double *x = malloc(n * sizeof *x), *w = malloc(n * sizeof *w);
  gl(n, x, w);
  for (size_t t = 0; t < nt; t++) out[t] = 0;
  size_t np = X->rows;
  double kv[16];
  for (int q = 0; q < 4; q++)
    for (int i = 0; i < n; i++)
      for (int j = 0; j < n; j++) {
        double y[2] = {(q & 1 ? 1 : -1) * L * x[i], (q & 2 ? 1 : -1) * L * x[j]};
        double ww = L * L * w[i] * w[j];
        for (size_t p = 0; p < np; p++) {
          double xp[2] = {NNFT_AT(X, p, 0), NNFT_AT(X, p, 1)};
          kv[p] = nnft_vertex_kw(&k, xp, y);
        }
        for (size_t t = 0; t < nt; t++) {
          const size_t *s = idx + 4 * t;
          out[t] += ww * kv[s[0]] * kv[s[1]] * kv[s[2]] * kv[s[3]];
        }
      }
  free(x);
  free(w);
}

static void test_brute_d2(void) {
  static const double Xv[] = {0.3, 0.4, -0.5, 0.2, 0.7, -0.6, 0.1, 0.9};
  nnft_mat X = mk(4, 2, Xv);
  size_t nt;
  size_t *idx = all4(4, &nt);
  double *bf = malloc(nt * sizeof *bf);
  nnft_arch as[3] = {net1(2, NNFT_ACT_RELU, 1.0, 0.0, 0, 1.0, 0.0),
                     net1(2, NNFT_ACT_RELU, 1.2, 0.5, 1, 0.7, 1.0),
                     net1(2, NNFT_ACT_ERF, 1.5, 0.3, 1, 1.0, 1.0)};
  double tol[3] = {2e-7, 1e-8, 1e-8};
  for (int v = 0; v < 3; v++) {
    double L = 3.0;
    nnft_mat I = {0}, E = {0};
    nnft_mat_alloc(nt, 1, &I);
    nnft_mat_alloc(nt, 1, &E);
    CHECK_STATUS(nnft_vertex_i4(&as[v], &X, idx, nt, &L, 1, NULL, &I, &E), NNFT_OK);
    brute2(&as[v], &X, idx, nt, L, 400, bf);
    double worst = 0;
    for (size_t t = 0; t < nt; t++) worst = fmax(worst, rel(I.data[t], bf[t]));
    if (worst >= tol[v]) fprintf(stderr, "d=2 brute variant %d: rel %g\n", v, worst);
    CHECK(worst < tol[v]);
    nnft_mat_free(&I);
    nnft_mat_free(&E);
  }
  free(bf);
  free(idx);
  nnft_mat_free(&X);
}

static void test_basis_six(void) {
  /* T0 = 24 I4; T_NL from pair integrals: for the gauss-net on the whole line, I2(a,b) has the
   * closed form amp² sqrt(π d/σ²) exp(−σ²|x_a − x_b|²/(4d)); T2 against the Gaussian moment. */
  static const double Xv[] = {-0.4, 0.3, 0.8};
  nnft_mat X = mk(3, 1, Xv);
  nnft_arch a = net1(1, NNFT_ACT_GAUSSNET, 1.1, 0.5, 1, 1.3, 0.0);
  size_t nt;
  size_t *idx = all4(3, &nt);
  nnft_mat T0 = {0}, T2 = {0}, TN = {0}, C = {0};
  nnft_mat_alloc(nt, 1, &T0);
  nnft_mat_alloc(nt, 1, &T2);
  nnft_mat_alloc(nt, 1, &TN);
  nnft_mat_alloc(nt, 1, &C);
  double L = INFINITY;
  CHECK_STATUS(nnft_vertex_basis(&a, &X, idx, nt, L, NULL, &T0, &T2, &TN), NNFT_OK);
  nnft_vertex_i4_closed(&a, &X, idx, nt, &C);
  double s2 = 1.1 * 1.1, amp = 1.3 * 1.3;
  for (size_t t = 0; t < nt; t++) {
    const size_t *x = idx + 4 * t;
    CHECK(rel(T0.data[t], 24 * C.data[t]) < 1e-8);
    /* Π K_w ∝ exp(−(4σ²/2)(y − m)²), m = S/4: ∫ y² = I4 (m² + 1/(4σ²)) */
    double m = (Xv[x[0]] + Xv[x[1]] + Xv[x[2]] + Xv[x[3]]) / 4;
    CHECK(rel(T2.data[t], 24 * C.data[t] * (m * m + 1.0 / (4 * s2))) < 1e-8);
#define I2(i, j) (amp * amp * sqrt(M_PI / s2) * exp(-s2 * (Xv[i] - Xv[j]) * (Xv[i] - Xv[j]) / 4))
    double want = 8 * (I2(x[0], x[1]) * I2(x[2], x[3]) + I2(x[0], x[2]) * I2(x[1], x[3]) +
                       I2(x[0], x[3]) * I2(x[1], x[2]));
#undef I2
    CHECK(rel(TN.data[t], want) < 1e-8);
  }
  /* six-point diagram sum: I4 ≡ 1 and K ≡ 1 give 15 splits */
  size_t c6;
  nnft_corr_ntuples(3, 6, &c6);
  nnft_mat one4 = {0}, K = {0}, S6 = {0};
  nnft_mat_alloc(nt, 1, &one4);
  nnft_mat_alloc(3, 3, &K);
  nnft_mat_alloc(c6, 1, &S6);
  nnft_mat_fill(&one4, 1.0);
  nnft_mat_fill(&K, 1.0);
  CHECK_STATUS(nnft_vertex_six(3, &one4, &K, &S6), NNFT_OK);
  for (size_t t = 0; t < c6; t++) CHECK(S6.data[t] == 15.0);
  /* a structured check: K = e_0 e_0ᵀ (only K(0,0) = 1), I4 = 1 for every tuple: S6 of a tuple
   * = the number of (e,f) position pairs with both indices 0 = C(#zeros, 2) */
  nnft_mat_fill(&K, 0.0);
  NNFT_AT(&K, 0, 0) = 1.0;
  CHECK_STATUS(nnft_vertex_six(3, &one4, &K, &S6), NNFT_OK);
  uint32_t *u6 = malloc(6 * c6 * sizeof *u6);
  nnft_corr_tuples(3, 6, u6);
  for (size_t t = 0; t < c6; t++) {
    int z = 0;
    for (int i = 0; i < 6; i++) z += u6[6 * t + i] == 0;
    CHECK(S6.data[t] == z * (z - 1) / 2);
  }
  free(u6);
  /* kmatrix = σ_b1² + K_w (K is already 3 x 3) */
  nnft_arch b = net1(1, NNFT_ACT_GAUSSNET, 1.1, 0.5, 1, 1.3, 0.6);
  CHECK_STATUS(nnft_vertex_kmatrix(&b, &X, &K), NNFT_OK);
  CHECK(fabs(NNFT_AT(&K, 0, 1) - (0.36 + amp * exp(-s2 * 0.49 / 2))) < 1e-14);
  CHECK_STATUS(nnft_vertex_six(4, &one4, &K, &S6), NNFT_EDIM);
  nnft_mat_free(&one4);
  nnft_mat_free(&K);
  nnft_mat_free(&S6);
  nnft_mat_free(&T0);
  nnft_mat_free(&T2);
  nnft_mat_free(&TN);
  nnft_mat_free(&C);
  nnft_mat_free(&X);
  free(idx);
}

static void test_refusals(void) {
  static const double Xv[] = {0.1, 0.5};
  nnft_mat X = mk(2, 1, Xv);
  size_t idx[4] = {0, 0, 1, 1}, bad[4] = {0, 0, 1, 2};
  nnft_mat I = {0};
  nnft_mat_alloc(1, 1, &I);
  nnft_arch relu = net1(1, NNFT_ACT_RELU, 1, 0, 0, 1, 0);
  const char *why = NULL;
  nnft_vertex_kernel k;
  CHECK_STATUS(nnft_vertex_kernel_init(&relu, &k, &why), NNFT_OK);
  double L0 = 0.0, Lneg = -1.0, Linf = INFINITY, Lnan = NAN, Ldesc[2] = {5, 3};
  CHECK_STATUS(nnft_vertex_i4(&relu, &X, idx, 1, &L0, 1, NULL, &I, NULL), NNFT_EDOM);
  CHECK_STATUS(nnft_vertex_i4(&relu, &X, idx, 1, &Lneg, 1, NULL, &I, NULL), NNFT_EDOM);
  CHECK_STATUS(nnft_vertex_i4(&relu, &X, idx, 1, &Lnan, 1, NULL, &I, NULL), NNFT_EDOM);
  CHECK_STATUS(nnft_vertex_check_cutoffs(&k, &Linf, 1, &why), NNFT_EDOM);
  CHECK(why && strstr(why, "diverges"));
  CHECK_STATUS(nnft_vertex_i4(&relu, &X, idx, 1, &Linf, 1, NULL, &I, NULL), NNFT_EDOM);
  CHECK_STATUS(nnft_vertex_check_cutoffs(&k, Ldesc, 2, &why), NNFT_EDOM);
  CHECK(why && strstr(why, "increasing"));
  double L1 = 1.0;
  CHECK_STATUS(nnft_vertex_i4(&relu, &X, bad, 1, &L1, 1, NULL, &I, NULL), NNFT_EDOM);
  nnft_mat I2 = {0};
  nnft_mat_alloc(2, 1, &I2);
  CHECK_STATUS(nnft_vertex_i4(&relu, &X, idx, 1, &L1, 1, NULL, &I2, NULL), NNFT_EDIM);
  nnft_arch tanh_net = net1(1, NNFT_ACT_TANH, 1, 1, 1, 1, 1);
  CHECK_STATUS(nnft_vertex_kernel_init(&tanh_net, &k, &why), NNFT_EDOM);
  CHECK(why && strstr(why, "relu"));
  nnft_arch deep = net1(1, NNFT_ACT_RELU, 1, 0, 1, 1, 0);
  deep.nlayers = 3;
  deep.layer[1].fan_out = 20;
  deep.layer[1].act = NNFT_ACT_RELU;
  deep.layer[2] = deep.layer[1];
  deep.layer[2].fan_out = 1;
  CHECK_STATUS(nnft_vertex_kernel_init(&deep, &k, &why), NNFT_EDOM);
  CHECK(why && strstr(why, "one hidden layer"));
  nnft_arch gn = net1(1, NNFT_ACT_GAUSSNET, 1, 1, 1, 1, 1);
  CHECK_STATUS(nnft_vertex_i4_closed(&relu, &X, idx, 1, &I), NNFT_EDOM);
  CHECK_STATUS(nnft_vertex_i4(&gn, &X, idx, 1, &Linf, 1, NULL, &I, NULL), NNFT_OK);
  NNFT_AT(&X, 1, 0) = NAN;
  CHECK_STATUS(nnft_vertex_i4(&gn, &X, idx, 1, &Linf, 1, NULL, &I, NULL), NNFT_ENONFINITE);
  NNFT_AT(&X, 1, 0) = 0.5;
  /* exp-net overflows at a large cutoff */
  nnft_arch ex = net1(1, NNFT_ACT_EXP, 1, 1, 1, 1, 1);
  double Lbig = 60.0;
  CHECK_STATUS(nnft_vertex_i4(&ex, &X, idx, 1, &Lbig, 1, NULL, &I, NULL), NNFT_ENONFINITE);
  /* too few boxes for the accuracy asked */
  nnft_arch r2 = net1(1, NNFT_ACT_ERF, 3, 1, 1, 1, 1);
  nnft_vertex_opts o = nnft_vertex_defaults();
  o.max_boxes = 16;
  o.epsrel = 1e-15;
  double L50 = 50;
  CHECK_STATUS(nnft_vertex_i4(&r2, &X, idx, 1, &L50, 1, &o, &I, NULL), NNFT_ENOCONV);
  nnft_mat_free(&I);
  nnft_mat_free(&I2);
  nnft_mat_free(&X);
}

static void test_alloc_failures(void) {
  static const double Xv[] = {0.1, 0.5, -0.3};
  nnft_mat X = mk(3, 1, Xv);
  size_t nt;
  size_t *idx = all4(3, &nt);
  nnft_arch a = net1(1, NNFT_ACT_GAUSSNET, 1, 1, 1, 1, 1);
  double L[2] = {1.0, INFINITY};
  nnft_mat I = {0}, T0 = {0}, T2 = {0}, TN = {0}, K = {0}, S6 = {0};
  nnft_mat_alloc(nt, 2, &I);
  nnft_mat_alloc(nt, 1, &T0);
  nnft_mat_alloc(nt, 1, &T2);
  nnft_mat_alloc(nt, 1, &TN);
  nnft_mat_alloc(3, 3, &K);
  size_t c6;
  nnft_corr_ntuples(3, 6, &c6);
  nnft_mat_alloc(c6, 1, &S6);
  int ok = 0;
  for (long k = 0; k < 200 && !ok; k++) {
    test_alloc_fail_after(k);
    nnft_status s = nnft_vertex_i4(&a, &X, idx, nt, L, 2, NULL, &I, NULL);
    test_alloc_fail_after(-1);
    if (s == NNFT_OK) ok = 1;
    else CHECK_STATUS(s, NNFT_ENOMEM);
  }
  CHECK(ok);
  ok = 0;
  for (long k = 0; k < 200 && !ok; k++) {
    test_alloc_fail_after(k);
    nnft_status s = nnft_vertex_basis(&a, &X, idx, nt, 2.0, NULL, &T0, &T2, &TN);
    test_alloc_fail_after(-1);
    if (s == NNFT_OK) ok = 1;
    else CHECK_STATUS(s, NNFT_ENOMEM);
  }
  CHECK(ok);
  nnft_mat one = {0};
  nnft_mat_alloc(nt, 1, &one);
  ok = 0;
  for (long k = 0; k < 20 && !ok; k++) {
    test_alloc_fail_after(k);
    nnft_status s = nnft_vertex_six(3, &one, &K, &S6);
    test_alloc_fail_after(-1);
    if (s == NNFT_OK) ok = 1;
    else CHECK_STATUS(s, NNFT_ENOMEM);
  }
  CHECK(ok);
  nnft_mat_free(&one);
  nnft_mat_free(&I);
  nnft_mat_free(&T0);
  nnft_mat_free(&T2);
  nnft_mat_free(&TN);
  nnft_mat_free(&K);
  nnft_mat_free(&S6);
  nnft_mat_free(&X);
  free(idx);
}

int main(void) {
  gsl_set_error_handler_off();
  test_gaussnet_closed();
  test_relu_polynomial();
  test_brute_d2();
  test_basis_six();
  test_refusals();
  test_alloc_failures();
  return test_report("test_vertex");
}
