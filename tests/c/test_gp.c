/* Tests of nnft_gp: the posterior against a direct dense solve with an explicit inverse, the log
 * marginal likelihood against a hand computation, the jitter policy on a rank-deficient kernel,
 * the interpolation limit σ² → 0, the likelihood gradient against finite differences of log p,
 * recovery of the hyperparameters of synthetic GP data within their Fisher-information spread,
 * bad input, interrupts and allocation failures. */
#include <gsl/gsl_errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nnft_gp.h"
#include "nnft_rng.h"
#include "test_util.h"

/* ---- helpers independent of the code under test ---- */

static nnft_mat mat(size_t r, size_t c) {
  nnft_mat m;
  test_alloc_fail_after(-1);
  if (nnft_mat_alloc(r, c, &m)) {
    fprintf(stderr, "cannot allocate test matrix\n");
    exit(2);
  }
  return m;
}

static nnft_mat randn(nnft_rng *r, size_t rows, size_t cols, double sd) {
  nnft_mat m = mat(rows, cols);
  for (size_t j = 0; j < cols; j++)
    for (size_t i = 0; i < rows; i++) NNFT_AT(&m, i, j) = sd * nnft_rng_normal(r);
  return m;
}

/* RBF kernel v exp(-|x - y|²/(2ℓ²)) between the rows of X and Y, plain loops. */
static void rbf_fill(const nnft_mat *X, const nnft_mat *Y, double ell, double v, nnft_mat *K) {
  for (size_t i = 0; i < X->rows; i++)
    for (size_t j = 0; j < Y->rows; j++) {
      double r2 = 0.0;
      for (size_t c = 0; c < X->cols; c++) {
        double dd = NNFT_AT(X, i, c) - NNFT_AT(Y, j, c);
        r2 += dd * dd;
      }
      NNFT_AT(K, i, j) = v * exp(-r2 / (2.0 * ell * ell));
    }
}

static nnft_mat rbf(const nnft_mat *X, const nnft_mat *Y, double ell, double v) {
  nnft_mat K = mat(X->rows, Y->rows);
  rbf_fill(X, Y, ell, v, &K);
  return K;
}

/* Inverse by Gauss–Jordan elimination with partial pivoting; *logdet = log |det a|. */
static nnft_mat gj_inverse(const nnft_mat *a, double *logdet) {
  size_t n = a->rows;
  nnft_mat w = mat(n, n), inv = mat(n, n);
  for (size_t j = 0; j < n; j++)
    for (size_t i = 0; i < n; i++) {
      NNFT_AT(&w, i, j) = NNFT_AT(a, i, j);
      NNFT_AT(&inv, i, j) = i == j;
    }
  double ld = 0.0;
  for (size_t c = 0; c < n; c++) {
    size_t p = c;
    for (size_t i = c + 1; i < n; i++)
      if (fabs(NNFT_AT(&w, i, c)) > fabs(NNFT_AT(&w, p, c))) p = i;
    for (size_t j = 0; j < n; j++) {
      double t = NNFT_AT(&w, c, j);
      NNFT_AT(&w, c, j) = NNFT_AT(&w, p, j);
      NNFT_AT(&w, p, j) = t;
      t = NNFT_AT(&inv, c, j);
      NNFT_AT(&inv, c, j) = NNFT_AT(&inv, p, j);
      NNFT_AT(&inv, p, j) = t;
    }
    double piv = NNFT_AT(&w, c, c);
    ld += log(fabs(piv));
    for (size_t j = 0; j < n; j++) {
      NNFT_AT(&w, c, j) /= piv;
      NNFT_AT(&inv, c, j) /= piv;
    }
    for (size_t i = 0; i < n; i++) {
      if (i == c) continue;
      double f = NNFT_AT(&w, i, c);
      if (f == 0.0) continue;
      for (size_t j = 0; j < n; j++) {
        NNFT_AT(&w, i, j) -= f * NNFT_AT(&w, c, j);
        NNFT_AT(&inv, i, j) -= f * NNFT_AT(&inv, c, j);
      }
    }
  }
  if (logdet) *logdet = ld;
  nnft_mat_free(&w);
  return inv;
}

/* c = op(a) op(b) by plain loops. */
static nnft_mat mul(const nnft_mat *a, int ta, const nnft_mat *b, int tb) {
  size_t m = ta ? a->cols : a->rows, k = ta ? a->rows : a->cols, n = tb ? b->rows : b->cols;
  nnft_mat c = mat(m, n);
  for (size_t i = 0; i < m; i++)
    for (size_t j = 0; j < n; j++) {
      double s = 0.0;
      for (size_t p = 0; p < k; p++)
        s += (ta ? NNFT_AT(a, p, i) : NNFT_AT(a, i, p)) * (tb ? NNFT_AT(b, j, p) : NNFT_AT(b, p, j));
      NNFT_AT(&c, i, j) = s;
    }
  return c;
}

static double maxdiff(const nnft_mat *a, const nnft_mat *b) {
  double m = 0.0;
  for (size_t j = 0; j < a->cols; j++)
    for (size_t i = 0; i < a->rows; i++) {
      double d = fabs(NNFT_AT(a, i, j) - NNFT_AT(b, i, j));
      if (!(d <= m)) m = d;
    }
  return m;
}

static void frees(nnft_mat *a, nnft_mat *b, nnft_mat *c, nnft_mat *d) {
  nnft_mat_free(a);
  if (b) nnft_mat_free(b);
  if (c) nnft_mat_free(c);
  if (d) nnft_mat_free(d);
}

static nnft_mat add_noise(const nnft_mat *K, double s) {
  nnft_mat C = mat(K->rows, K->cols);
  nnft_mat_copy(K, &C);
  for (size_t i = 0; i < K->rows; i++) NNFT_AT(&C, i, i) += s;
  return C;
}

/* ---- posterior vs explicit inverse ---- */

static void test_posterior(void) {
  nnft_rng r;
  nnft_rng_init(&r, 11);
  const size_t n = 14, m = 6, k = 2, d = 2;
  const double noise = 0.05;
  nnft_mat X = randn(&r, n, d, 1.0), Xs = randn(&r, m, d, 1.0), y = randn(&r, n, k, 1.0);
  nnft_mat K = rbf(&X, &X, 0.8, 1.3), Ks = rbf(&Xs, &X, 0.8, 1.3), Kss = rbf(&Xs, &Xs, 0.8, 1.3);
  nnft_mat C = add_noise(&K, noise);
  double logdet;
  nnft_mat Ci = gj_inverse(&C, &logdet);
  nnft_mat a = mul(&Ci, 0, &y, 0), mean_ref = mul(&Ks, 0, &a, 0);
  nnft_mat KsCi = mul(&Ks, 0, &Ci, 0), red = mul(&KsCi, 0, &Ks, 1);
  nnft_mat cov_ref = mat(m, m);
  for (size_t j = 0; j < m; j++)
    for (size_t i = 0; i < m; i++) NNFT_AT(&cov_ref, i, j) = NNFT_AT(&Kss, i, j) - NNFT_AT(&red, i, j);
  double lml_ref = 0.0;
  for (size_t c = 0; c < k; c++) {
    double q = 0.0;
    for (size_t i = 0; i < n; i++) q += NNFT_AT(&y, i, c) * NNFT_AT(&a, i, c);
    lml_ref += -0.5 * q - 0.5 * logdet - 0.5 * (double)n * log(2.0 * M_PI);
  }

  nnft_gp gp;
  nnft_linalg_diag dg;
  CHECK_STATUS(nnft_gp_alloc(n, k, &gp), NNFT_OK);
  CHECK_STATUS(nnft_gp_fit(&K, &y, noise, NULL, &gp, &dg), NNFT_OK);
  CHECK(gp.fitted && gp.jitter == 0.0 && gp.noise == noise);
  double amax = 0.0;
  for (size_t i = 0; i < n * k; i++) amax = fmax(amax, fabs(a.data[i]));
  CHECK(maxdiff(&gp.alpha, &a) < 1e-9 * (1.0 + amax));
  CHECK_NEAR(gp.logml, lml_ref, 1e-9 * fabs(lml_ref));
  CHECK_NEAR(gp.logdet, logdet, 1e-10 * (1.0 + fabs(logdet)));
  /* the strict upper triangle keeps K and kdiag its diagonal */
  CHECK(NNFT_AT(&gp.L, 2, 7) == NNFT_AT(&K, 2, 7) && gp.kdiag.data[3] == NNFT_AT(&K, 3, 3));

  nnft_mat mean = mat(m, k), var = mat(m, 1), cov = mat(m, m), kss = mat(m, 1);
  for (size_t i = 0; i < m; i++) kss.data[i] = NNFT_AT(&Kss, i, i);
  CHECK_STATUS(nnft_gp_mean(&gp, &Ks, &mean), NNFT_OK);
  CHECK(maxdiff(&mean, &mean_ref) < 1e-9);
  CHECK_STATUS(nnft_gp_var(&gp, &Ks, &kss, &var), NNFT_OK);
  double vmax = 0.0;
  for (size_t i = 0; i < m; i++) {
    double dv = fabs(var.data[i] - fmax(NNFT_AT(&cov_ref, i, i), 0.0));
    if (!(dv <= vmax)) vmax = dv;
  }
  CHECK(vmax < 1e-10);
  CHECK_STATUS(nnft_gp_cov(&gp, &Ks, &Kss, &cov), NNFT_OK);
  CHECK(maxdiff(&cov, &cov_ref) < 1e-10);
  /* cov in place over Kss */
  nnft_mat Kss2 = mat(m, m);
  nnft_mat_copy(&Kss, &Kss2);
  CHECK_STATUS(nnft_gp_cov(&gp, &Ks, &Kss2, &Kss2), NNFT_OK);
  CHECK(maxdiff(&Kss2, &cov_ref) < 1e-10);
  /* var may overwrite kss */
  CHECK_STATUS(nnft_gp_var(&gp, &Ks, &kss, &kss), NNFT_OK);
  CHECK(maxdiff(&kss, &var) == 0.0);

  /* predictions through an nnft_kernel agree with the matrix path */
  nnft_kernel kern = nnft_kernel_rbf(0.8, 1.3);
  nnft_mat mean2 = mat(m, k), var2 = mat(m, 1), cov2 = mat(m, m);
  CHECK_STATUS(nnft_gp_predict_kernel(&gp, &kern, &X, &Xs, &mean2, &var2, NULL), NNFT_OK);
  CHECK(maxdiff(&mean2, &mean_ref) < 1e-9);
  CHECK(maxdiff(&var2, &var) < 1e-10);
  nnft_mat_fill(&var2, -1.0);
  CHECK_STATUS(nnft_gp_predict_kernel(&gp, &kern, &X, &Xs, &mean2, &var2, &cov2), NNFT_OK);
  CHECK(maxdiff(&cov2, &cov_ref) < 1e-10);
  CHECK(maxdiff(&var2, &var) < 1e-10);

  /* refitting the same storage with another noise */
  CHECK_STATUS(nnft_gp_fit(&K, &y, 0.5, NULL, &gp, &dg), NNFT_OK);
  CHECK(gp.noise == 0.5);

  nnft_gp_free(&gp);
  nnft_gp_free(&gp); /* idempotent */
  frees(&X, &Xs, &y, &K);
  frees(&Ks, &Kss, &C, &Ci);
  frees(&a, &mean_ref, &KsCi, &red);
  frees(&cov_ref, &mean, &var, &cov);
  frees(&kss, &Kss2, &mean2, &var2);
  frees(&cov2, NULL, NULL, NULL);
}

/* ---- log marginal likelihood by hand on two points ---- */

static void test_logml_two_points(void) {
  /* K = [[1, ρ], [ρ, 1]], σ² = s, y = (1, -2):
   * det C = (1+s)² − ρ², yᵀC⁻¹y = ((1+s)(y1² + y2²) − 2ρ y1 y2)/det C,
   * log p = −½ yᵀC⁻¹y − ½ log det C − log 2π. */
  const double rho = 0.5, s = 0.25, y1 = 1.0, y2 = -2.0;
  const double det = (1 + s) * (1 + s) - rho * rho;
  const double quad = ((1 + s) * (y1 * y1 + y2 * y2) - 2 * rho * y1 * y2) / det;
  const double want = -0.5 * quad - 0.5 * log(det) - log(2 * M_PI);
  nnft_mat K = mat(2, 2), y = mat(2, 1);
  NNFT_AT(&K, 0, 0) = NNFT_AT(&K, 1, 1) = 1.0;
  NNFT_AT(&K, 0, 1) = NNFT_AT(&K, 1, 0) = rho;
  y.data[0] = y1;
  y.data[1] = y2;
  nnft_gp gp;
  CHECK_STATUS(nnft_gp_alloc(2, 1, &gp), NNFT_OK);
  CHECK_STATUS(nnft_gp_fit(&K, &y, s, NULL, &gp, NULL), NNFT_OK);
  CHECK_NEAR(gp.logml, want, 1e-14);
  CHECK_NEAR(gp.quad, quad, 1e-14);
  /* α = C⁻¹ y by hand */
  CHECK_NEAR(gp.alpha.data[0], ((1 + s) * y1 - rho * y2) / det, 1e-14);
  CHECK_NEAR(gp.alpha.data[1], ((1 + s) * y2 - rho * y1) / det, 1e-14);
  nnft_gp_free(&gp);
  frees(&K, &y, NULL, NULL);
}

/* ---- jitter on a rank-deficient kernel; interpolation as σ² → 0 ---- */

static void test_jitter_and_interpolation(void) {
  nnft_rng r;
  nnft_rng_init(&r, 5);
  const size_t n = 8;
  /* rank 2: a linear kernel on 2-d inputs */
  nnft_mat X = randn(&r, n, 2, 1.0), y = randn(&r, n, 1, 1.0), Xs = randn(&r, 3, 2, 1.0);
  nnft_mat K = mul(&X, 0, &X, 1), Ks = mul(&Xs, 0, &X, 1), kss = mat(3, 1);
  for (size_t i = 0; i < 3; i++)
    kss.data[i] = NNFT_AT(&Xs, i, 0) * NNFT_AT(&Xs, i, 0) + NNFT_AT(&Xs, i, 1) * NNFT_AT(&Xs, i, 1);
  nnft_gp gp;
  nnft_linalg_diag dg;
  CHECK_STATUS(nnft_gp_alloc(n, 1, &gp), NNFT_OK);
  CHECK_STATUS(nnft_gp_fit(&K, &y, 0.0, NULL, &gp, &dg), NNFT_OK);
  CHECK(gp.jitter > 0.0 && dg.jitter == gp.jitter && dg.tries >= 1);
  CHECK(isfinite(gp.logml));
  nnft_mat mean = mat(3, 1), var = mat(3, 1);
  CHECK_STATUS(nnft_gp_mean(&gp, &Ks, &mean), NNFT_OK);
  CHECK_STATUS(nnft_gp_var(&gp, &Ks, &kss, &var), NNFT_OK);
  CHECK(nnft_mat_all_finite(&mean) && nnft_mat_all_finite(&var));
  for (size_t i = 0; i < 3; i++) CHECK(var.data[i] >= 0.0);
  /* without the policy the same matrix is refused, with the smallest eigenvalue reported */
  nnft_gp_opts nj = nnft_gp_defaults();
  nj.jitter = 0;
  CHECK_STATUS(nnft_gp_fit(&K, &y, 0.0, &nj, &gp, &dg), NNFT_ENOTPD);
  CHECK(!gp.fitted && strstr(dg.msg, "not positive definite") && strstr(dg.msg, "smallest"));
  CHECK(fabs(dg.min_eig) < 1e-12 && dg.max_eig > 0.0);
  CHECK_STATUS(nnft_gp_mean(&gp, &Ks, &mean), NNFT_EDOM); /* not fitted */
  nnft_gp_free(&gp);

  /* interpolation: distinct points, σ² → 0: mean(x_i) = y_i, var(x_i) = 0, var >= 0 elsewhere */
  const size_t n2 = 10, m2 = 40;
  nnft_mat X2 = mat(n2, 1), Xg = mat(m2, 1), y2 = randn(&r, n2, 1, 1.0);
  for (size_t i = 0; i < n2; i++) X2.data[i] = -2.0 + 4.0 * (double)i / (double)(n2 - 1);
  for (size_t i = 0; i < m2; i++) Xg.data[i] = -3.0 + 6.0 * (double)i / (double)(m2 - 1);
  nnft_mat K2 = rbf(&X2, &X2, 0.6, 1.0), Kg = rbf(&Xg, &X2, 0.6, 1.0), kg = mat(m2, 1);
  nnft_mat_fill(&kg, 1.0);
  nnft_mat m_tr = mat(n2, 1), v_tr = mat(n2, 1), kd = mat(n2, 1), vg = mat(m2, 1);
  nnft_mat_fill(&kd, 1.0);
  CHECK_STATUS(nnft_gp_alloc(n2, 1, &gp), NNFT_OK);
  for (int e = 6; e <= 12; e += 3) {
    double s2 = pow(10.0, -e);
    CHECK_STATUS(nnft_gp_fit(&K2, &y2, s2, NULL, &gp, &dg), NNFT_OK);
    CHECK_STATUS(nnft_gp_mean(&gp, &K2, &m_tr), NNFT_OK);
    CHECK_STATUS(nnft_gp_var(&gp, &K2, &kd, &v_tr), NNFT_OK);
    /* exact: var(x_i) = σ² − σ⁴ (C⁻¹)_ii ∈ [0, σ²]; mean error = σ² α_i */
    double vmax = 0.0, merr = 0.0, amax = 0.0;
    for (size_t i = 0; i < n2; i++) {
      vmax = fmax(vmax, v_tr.data[i]);
      merr = fmax(merr, fabs(m_tr.data[i] - y2.data[i]));
      amax = fmax(amax, fabs(gp.alpha.data[i]));
    }
    CHECK(vmax <= s2 + 1e-13);
    CHECK(merr <= 1.01 * s2 * amax + 1e-10);
    CHECK_STATUS(nnft_gp_var(&gp, &Kg, &kg, &vg), NNFT_OK);
    for (size_t i = 0; i < m2; i++) CHECK(vg.data[i] >= 0.0 && vg.data[i] <= 1.0);
  }
  nnft_gp_free(&gp);
  frees(&X, &y, &Xs, &K);
  frees(&Ks, &kss, &mean, &var);
  frees(&X2, &Xg, &y2, &K2);
  frees(&Kg, &kg, &m_tr, &v_tr);
  frees(&kd, &vg, NULL, NULL);
}

/* ---- the variance in several blocks (2^20 / n rows each) equals the one-row and cov paths ---- */

static void test_var_blocks(void) {
  nnft_rng r;
  nnft_rng_init(&r, 31);
  const size_t n = 2000, m = 1100; /* blocks of 524 rows: three */
  nnft_mat X = randn(&r, n, 3, 1.0), Xs = randn(&r, m, 3, 1.0), y = randn(&r, n, 1, 1.0);
  nnft_mat K = rbf(&X, &X, 1.0, 1.0), Ks = rbf(&Xs, &X, 1.0, 1.0), kss = mat(m, 1);
  nnft_mat var = mat(m, 1), v1 = mat(1, 1), k1 = mat(1, 1);
  nnft_mat_fill(&kss, 1.0);
  nnft_mat_fill(&k1, 1.0);
  nnft_gp gp;
  CHECK_STATUS(nnft_gp_alloc(n, 1, &gp), NNFT_OK);
  CHECK_STATUS(nnft_gp_fit(&K, &y, 0.1, NULL, &gp, NULL), NNFT_OK);
  CHECK_STATUS(nnft_gp_var(&gp, &Ks, &kss, &var), NNFT_OK);
  double err = 0.0;
  const size_t rows[6] = {0, 523, 524, 1047, 1048, 1099};
  for (int t = 0; t < 6; t++) {
    nnft_mat row;
    nnft_mat_view(&Ks, rows[t], 0, 1, n, &row);
    CHECK_STATUS(nnft_gp_var(&gp, &row, &k1, &v1), NNFT_OK);
    err = fmax(err, fabs(v1.data[0] - var.data[rows[t]]));
  }
  CHECK(err < 1e-12);
  /* the last block against the covariance's diagonal */
  nnft_mat blk, cov = mat(52, 52), Kss = mat(52, 52);
  nnft_mat_view(&Ks, 1048, 0, 52, n, &blk);
  nnft_mat Xb;
  nnft_mat_view(&Xs, 1048, 0, 52, 3, &Xb);
  rbf_fill(&Xb, &Xb, 1.0, 1.0, &Kss);
  CHECK_STATUS(nnft_gp_cov(&gp, &blk, &Kss, &cov), NNFT_OK);
  err = 0.0;
  for (size_t i = 0; i < 52; i++) err = fmax(err, fabs(NNFT_AT(&cov, i, i) - var.data[1048 + i]));
  CHECK(err < 1e-12);
  nnft_gp_free(&gp);
  frees(&X, &Xs, &y, &K);
  frees(&Ks, &kss, &var, &v1);
  frees(&k1, &cov, &Kss, NULL);
}

/* ---- bad input ---- */

static void test_bad_input(void) {
  nnft_rng r;
  nnft_rng_init(&r, 3);
  const size_t n = 5;
  nnft_mat X = randn(&r, n, 1, 1.0), y = randn(&r, n, 1, 1.0), K = rbf(&X, &X, 1.0, 1.0);
  nnft_mat ybad = mat(n + 1, 1), Kr = mat(n, n + 1), Ks = mat(2, n + 1), out = mat(2, 1);
  nnft_gp gp;
  nnft_linalg_diag dg;
  CHECK_STATUS(nnft_gp_alloc(0, 1, &gp), NNFT_EDOM);
  CHECK_STATUS(nnft_gp_alloc(n, 1, &gp), NNFT_OK);
  CHECK_STATUS(nnft_gp_fit(&K, &ybad, 0.1, NULL, &gp, &dg), NNFT_EDIM);
  CHECK(strstr(dg.msg, "targets") != NULL);
  CHECK_STATUS(nnft_gp_fit(&Kr, &y, 0.1, NULL, &gp, &dg), NNFT_EDIM);
  CHECK_STATUS(nnft_gp_fit(&K, &y, -0.1, NULL, &gp, &dg), NNFT_EDOM);
  CHECK(strstr(dg.msg, "noise") != NULL);
  CHECK_STATUS(nnft_gp_fit(&K, &y, NAN, NULL, &gp, &dg), NNFT_EDOM);
  y.data[2] = NAN;
  CHECK_STATUS(nnft_gp_fit(&K, &y, 0.1, NULL, &gp, &dg), NNFT_ENONFINITE);
  y.data[2] = 0.5;
  double kv = NNFT_AT(&K, 1, 3);
  NNFT_AT(&K, 1, 3) = INFINITY;
  CHECK_STATUS(nnft_gp_fit(&K, &y, 0.1, NULL, &gp, &dg), NNFT_ENONFINITE);
  NNFT_AT(&K, 1, 3) = kv + 0.1; /* asymmetric */
  CHECK_STATUS(nnft_gp_fit(&K, &y, 0.1, NULL, &gp, &dg), NNFT_EDOM);
  CHECK(strstr(dg.msg, "symmetric") != NULL);
  NNFT_AT(&K, 1, 3) = kv;
  /* indefinite beyond the jitter policy: eigenvalue -1 */
  nnft_mat B = mat(2, 2), yb = mat(2, 1);
  NNFT_AT(&B, 0, 0) = NNFT_AT(&B, 1, 1) = 1.0;
  NNFT_AT(&B, 0, 1) = NNFT_AT(&B, 1, 0) = 2.0;
  nnft_gp g2;
  CHECK_STATUS(nnft_gp_alloc(2, 1, &g2), NNFT_OK);
  CHECK_STATUS(nnft_gp_fit(&B, &yb, 0.0, NULL, &g2, &dg), NNFT_ENOTPD);
  CHECK_NEAR(dg.min_eig, -1.0, 1e-12);
  CHECK_NEAR(dg.max_eig, 3.0, 1e-12);
  CHECK(dg.tries == 6 && strstr(dg.msg, "even with jitter"));
  /* the same with noise: eigenvalues shift */
  CHECK_STATUS(nnft_gp_fit(&B, &yb, 0.5, NULL, &g2, &dg), NNFT_ENOTPD);
  CHECK_NEAR(dg.min_eig, -0.5, 1e-12);
  nnft_gp_free(&g2);
  /* prediction shapes */
  CHECK_STATUS(nnft_gp_fit(&K, &y, 0.1, NULL, &gp, &dg), NNFT_OK);
  CHECK_STATUS(nnft_gp_mean(&gp, &Ks, &out), NNFT_EDIM);
  CHECK_STATUS(nnft_gp_var(&gp, &Ks, &out, &out), NNFT_EDIM);
  nnft_gp_free(&gp);
  frees(&X, &y, &K, &ybad);
  frees(&Kr, &Ks, &out, &B);
  frees(&yb, NULL, NULL, NULL);
}

/* ---- hyperparameters ---- */

typedef struct rbf_ctx {
  const nnft_mat *X;
  int calls;
} rbf_ctx;

/* θ = (lengthscale, variance) */
static nnft_status rbf_family(void *ctx, const double *theta, nnft_mat *K) {
  rbf_ctx *c = ctx;
  c->calls++;
  rbf_fill(c->X, c->X, theta[0], theta[1], K);
  return NNFT_OK;
}

/* θ = () : a fixed kernel */
static nnft_status rbf_fixed(void *ctx, const double *theta, nnft_mat *K) {
  (void)theta;
  rbf_fill(((rbf_ctx *)ctx)->X, ((rbf_ctx *)ctx)->X, 0.7, 1.0, K);
  return NNFT_OK;
}

static nnft_status failing_family(void *ctx, const double *theta, nnft_mat *K) {
  (void)ctx;
  (void)theta;
  (void)K;
  return NNFT_EIO;
}

static void test_gradient(void) {
  nnft_rng r;
  nnft_rng_init(&r, 21);
  const size_t n = 30;
  nnft_mat X = randn(&r, n, 2, 1.0), y = randn(&r, n, 2, 1.0);
  rbf_ctx c = {&X, 0};
  const double params[3] = {0.3, 0.9, 1.7};
  double lml, grad[3];
  nnft_linalg_diag dg;
  CHECK_STATUS(nnft_gp_logml_grad(rbf_family, &c, n, 2, &y, params, 1e-4, NULL, &lml, grad, &dg),
               NNFT_OK);
  CHECK(c.calls == 5); /* K, then ± for each of the two parameters */
  /* finite differences of log p itself in the log-parameters (step 1e-4, error ~1e-8 rel.) */
  for (int j = 0; j < 3; j++) {
    double pp[3], pm[3], lp, lm;
    memcpy(pp, params, sizeof pp);
    memcpy(pm, params, sizeof pm);
    pp[j] *= exp(1e-4);
    pm[j] *= exp(-1e-4);
    CHECK_STATUS(nnft_gp_logml_grad(rbf_family, &c, n, 2, &y, pp, 1e-4, NULL, &lp, NULL, NULL),
                 NNFT_OK);
    CHECK_STATUS(nnft_gp_logml_grad(rbf_family, &c, n, 2, &y, pm, 1e-4, NULL, &lm, NULL, NULL),
                 NNFT_OK);
    double fd = (lp - lm) / 2e-4;
    CHECK_NEAR(grad[j], fd, 1e-6 * (fabs(fd) + 1.0));
  }
  /* the variance is a pure scale: ∂K/∂log v = K, so ∂ log p/∂ log v = ½ tr(W K) by hand */
  {
    nnft_mat K = rbf(&X, &X, params[1], params[2]), C = add_noise(&K, params[0]);
    nnft_mat Ci = gj_inverse(&C, NULL), a = mul(&Ci, 0, &y, 0);
    double t = 0.0;
    for (size_t i = 0; i < n; i++)
      for (size_t j = 0; j < n; j++) {
        double w = NNFT_AT(&a, i, 0) * NNFT_AT(&a, j, 0) + NNFT_AT(&a, i, 1) * NNFT_AT(&a, j, 1) -
                   2.0 * NNFT_AT(&Ci, i, j);
        t += w * NNFT_AT(&K, i, j);
      }
    CHECK_NEAR(grad[2], 0.5 * t, 1e-7 * (fabs(t) + 1.0));
    frees(&K, &C, &Ci, &a);
  }
  /* errors from the kernel function and bad parameters */
  CHECK_STATUS(nnft_gp_logml_grad(failing_family, NULL, n, 2, &y, params, 1e-4, NULL, &lml, grad,
                                  &dg),
               NNFT_EIO);
  double bad[3] = {0.3, -1.0, 1.0};
  CHECK_STATUS(nnft_gp_logml_grad(rbf_family, &c, n, 2, &y, bad, 1e-4, NULL, &lml, grad, &dg),
               NNFT_EDOM);
  CHECK(strstr(dg.msg, "positive") != NULL);
  frees(&X, &y, NULL, NULL);
}

/* Fisher information of (σ², ℓ, v) for the RBF family: I_ij = ½ tr(C⁻¹ D_i C⁻¹ D_j),
 * D_σ² = I, D_ℓ = K ⊙ r²/ℓ³, D_v = K/v. Returns the standard deviations sqrt((I⁻¹)_ii). */
static void fisher_sd(const nnft_mat *X, double s2, double ell, double v, size_t nfree,
                      double *sd) {
  size_t n = X->rows;
  nnft_mat K = rbf(X, X, ell, v), C = add_noise(&K, s2), Ci = gj_inverse(&C, NULL);
  nnft_mat D[3] = {mat(n, n), mat(n, n), mat(n, n)}, P[3];
  for (size_t j = 0; j < n; j++)
    for (size_t i = 0; i < n; i++) {
      double r2 = 0.0;
      for (size_t c = 0; c < X->cols; c++) {
        double dd = NNFT_AT(X, i, c) - NNFT_AT(X, j, c);
        r2 += dd * dd;
      }
      NNFT_AT(&D[0], i, j) = i == j;
      NNFT_AT(&D[1], i, j) = NNFT_AT(&K, i, j) * r2 / (ell * ell * ell);
      NNFT_AT(&D[2], i, j) = NNFT_AT(&K, i, j) / v;
    }
  for (int a = 0; a < 3; a++) {
    P[a] = mat(n, n);
    nnft_mat_gemm(1.0, &Ci, 0, &D[a], 0, 0.0, &P[a]);
  }
  nnft_mat F = mat(nfree, nfree);
  for (size_t a = 0; a < nfree; a++)
    for (size_t b = 0; b < nfree; b++) {
      double t = 0.0;
      for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) t += NNFT_AT(&P[a], i, j) * NNFT_AT(&P[b], j, i);
      NNFT_AT(&F, a, b) = 0.5 * t;
    }
  nnft_mat Fi = gj_inverse(&F, NULL);
  for (size_t a = 0; a < nfree; a++) sd[a] = sqrt(NNFT_AT(&Fi, a, a));
  frees(&K, &C, &Ci, &F);
  frees(&Fi, &D[0], &D[1], &D[2]);
  frees(&P[0], &P[1], &P[2], NULL);
}

static void test_optimize(void) {
  nnft_rng r;
  nnft_rng_init(&r, 2024);
  const size_t n = 250;
  const double s2 = 0.2, ell = 0.7, v = 1.0;
  nnft_mat X = mat(n, 1);
  for (size_t i = 0; i < n; i++) X.data[i] = -4.0 + 8.0 * nnft_rng_uniform(&r);
  /* y ~ N(0, K + σ² I): y = L z */
  nnft_mat K = rbf(&X, &X, ell, v), C = add_noise(&K, s2), L = mat(n, n);
  CHECK_STATUS(nnft_linalg_chol(&C, NULL, &L, NULL, NULL), NNFT_OK);
  nnft_mat z = randn(&r, n, 1, 1.0), y = mul(&L, 0, &z, 0);
  rbf_ctx c = {&X, 0};
  nnft_linalg_diag dg;
  nnft_gp_optimize_result res;

  /* 1. noise only, the kernel fixed at the truth: σ̂² within 4 sd of σ², sd from the Fisher
   *    information ½ tr(C⁻²) at the truth */
  double sd[3];
  fisher_sd(&X, s2, ell, v, 1, sd);
  double p1[1] = {1.0};
  nnft_gp_optimize_opts o = nnft_gp_optimize_defaults();
  CHECK_STATUS(nnft_gp_optimize(rbf_fixed, &c, n, 0, &y, &o, p1, &res, &dg), NNFT_OK);
  CHECK(res.converged && res.iterations > 0 && isfinite(res.logml));
  printf("noise only: sigma2 = %.4f (truth %.3f, sd %.4f), %d iterations, %d evaluations\n",
         p1[0], s2, sd[0], res.iterations, res.evaluations);
  CHECK(fabs(p1[0] - s2) < 4.0 * sd[0]);
  /* stationarity at the optimum, checked with an explicit inverse: αᵀα = tr C⁻¹ */
  {
    nnft_mat Co = add_noise(&K, p1[0]), Ci = gj_inverse(&Co, NULL), a = mul(&Ci, 0, &y, 0);
    double aa = 0.0, tr = 0.0;
    for (size_t i = 0; i < n; i++) {
      aa += a.data[i] * a.data[i];
      tr += NNFT_AT(&Ci, i, i);
    }
    CHECK_NEAR(aa, tr, 1e-4 * tr);
    frees(&Co, &Ci, &a, NULL);
  }

  /* 2. all three free, from a distant start: each within 4.5 sd of the truth (joint Fisher) */
  fisher_sd(&X, s2, ell, v, 3, sd);
  double p3[3] = {1.0, 2.0, 0.3};
  CHECK_STATUS(nnft_gp_optimize(rbf_family, &c, n, 2, &y, &o, p3, &res, &dg), NNFT_OK);
  printf("BFGS: sigma2 = %.4f (sd %.4f), ell = %.4f (sd %.4f), v = %.4f (sd %.4f); logml %.6f, "
         "%d iterations, |grad| %.2g\n",
         p3[0], sd[0], p3[1], sd[1], p3[2], sd[2], res.logml, res.iterations, res.grad_norm);
  CHECK(res.converged);
  CHECK(fabs(p3[0] - s2) < 4.5 * sd[0]);
  CHECK(fabs(p3[1] - ell) < 4.5 * sd[1]);
  CHECK(fabs(p3[2] - v) < 4.5 * sd[2]);
  double lml_bfgs = res.logml;
  /* the optimum is a maximum: log p there is at least that of the truth */
  double truth[3] = {s2, ell, v}, lml_truth;
  CHECK_STATUS(nnft_gp_logml_grad(rbf_family, &c, n, 2, &y, truth, 1e-4, NULL, &lml_truth, NULL,
                                  NULL),
               NNFT_OK);
  CHECK(lml_bfgs >= lml_truth);

  /* 3. the other methods reach the same optimum */
  double pc[3] = {1.0, 2.0, 0.3}, pn[3] = {1.0, 2.0, 0.3};
  o.method = NNFT_GP_CG;
  o.max_iter = 500;
  CHECK_STATUS(nnft_gp_optimize(rbf_family, &c, n, 2, &y, &o, pc, &res, &dg), NNFT_OK);
  CHECK_NEAR(res.logml, lml_bfgs, 1e-5 * fabs(lml_bfgs));
  o.method = NNFT_GP_NM;
  o.xtol = 1e-6;
  CHECK_STATUS(nnft_gp_optimize(rbf_family, &c, n, 2, &y, &o, pn, &res, &dg), NNFT_OK);
  CHECK(res.converged && isnan(res.grad_norm));
  CHECK_NEAR(res.logml, lml_bfgs, 1e-6 * fabs(lml_bfgs));
  for (int j = 0; j < 3; j++) CHECK_NEAR(log(pn[j]), log(p3[j]), 1e-3);

  /* 4. fixed noise: only the kernel parameters move */
  double pf[3] = {s2, 1.5, 2.0};
  o = nnft_gp_optimize_defaults();
  o.fit_noise = 0;
  CHECK_STATUS(nnft_gp_optimize(rbf_family, &c, n, 2, &y, &o, pf, &res, &dg), NNFT_OK);
  CHECK(pf[0] == s2 && res.converged);

  /* 5. errors: bad start, a failing kernel, max_iter 0 evaluates the start, interrupts */
  double p0[3] = {0.0, 1.0, 1.0};
  o = nnft_gp_optimize_defaults();
  CHECK_STATUS(nnft_gp_optimize(rbf_family, &c, n, 2, &y, &o, p0, &res, &dg), NNFT_EDOM);
  CHECK(strstr(dg.msg, "noise") != NULL);
  double pe[3] = {0.1, 1.0, 1.0};
  CHECK_STATUS(nnft_gp_optimize(failing_family, NULL, n, 2, &y, &o, pe, &res, &dg), NNFT_EIO);
  o.max_iter = 0;
  CHECK_STATUS(nnft_gp_optimize(rbf_family, &c, n, 2, &y, &o, pe, &res, &dg), NNFT_OK);
  CHECK_NEAR(pe[0], 0.1, 1e-15);
  CHECK_NEAR(pe[1], 1.0, 1e-15);
  CHECK(res.iterations == 0 && !res.converged && isfinite(res.logml));
  o.max_iter = 200;
  nnft_interrupt_flag = 1;
  CHECK_STATUS(nnft_gp_optimize(rbf_family, &c, n, 2, &y, &o, pe, &res, &dg), NNFT_EINTR);
  nnft_interrupt_flag = 0;
  frees(&X, &K, &C, &L);
  frees(&z, &y, NULL, NULL);
}

/* ---- allocation failures ---- */

#define ALLOC_LOOP(label, want, call)                                                       \
  do {                                                                                      \
    long k_;                                                                                \
    nnft_status st_ = NNFT_ENOMEM;                                                          \
    for (k_ = 0; k_ < 64; k_++) {                                                           \
      test_alloc_fail_after(k_);                                                            \
      st_ = (call);                                                                         \
      test_alloc_fail_after(-1);                                                            \
      if (st_ != NNFT_ENOMEM) break;                                                        \
    }                                                                                       \
    if (st_ != (want)) fprintf(stderr, "alloc loop %s: ended with status %d\n", label, (int)st_); \
    CHECK(st_ == (want));                                                                   \
    CHECK(k_ < 64);                                                                         \
  } while (0)

static nnft_status alloc_and_fit(const nnft_mat *K, const nnft_mat *y, double noise) {
  nnft_gp gp;
  nnft_status s = nnft_gp_alloc(K->rows, y->cols, &gp);
  if (!s) s = nnft_gp_fit(K, y, noise, NULL, &gp, NULL);
  nnft_gp_free(&gp);
  return s;
}

static void test_alloc_failures(void) {
  nnft_rng r;
  nnft_rng_init(&r, 9);
  const size_t n = 300, m = 300;
  nnft_mat X = randn(&r, n, 1, 1.0), Xs = randn(&r, m, 1, 1.0), y = randn(&r, n, 1, 1.0);
  nnft_mat K = rbf(&X, &X, 1.0, 1.0), Ks = rbf(&Xs, &X, 1.0, 1.0), kss = mat(m, 1);
  nnft_mat Kss = rbf(&Xs, &Xs, 1.0, 1.0), mean = mat(m, 1), var = mat(m, 1), cov = mat(m, m);
  nnft_mat_fill(&kss, 1.0);
  nnft_kernel kern = nnft_kernel_rbf(1.0, 1.0);
  nnft_gp gp;
  test_alloc_fail_after(-1);
  CHECK_STATUS(nnft_gp_alloc(n, 1, &gp), NNFT_OK);
  CHECK_STATUS(nnft_gp_fit(&K, &y, 0.1, NULL, &gp, NULL), NNFT_OK);
  ALLOC_LOOP("alloc+fit", NNFT_OK, alloc_and_fit(&K, &y, 0.1));
  nnft_mat B = mat(2, 2), yb = mat(2, 1);
  NNFT_AT(&B, 0, 0) = NNFT_AT(&B, 1, 1) = 1.0;
  NNFT_AT(&B, 0, 1) = NNFT_AT(&B, 1, 0) = 2.0;
  ALLOC_LOOP("fit not PD", NNFT_ENOTPD, alloc_and_fit(&B, &yb, 0.0));
  ALLOC_LOOP("var", NNFT_OK, nnft_gp_var(&gp, &Ks, &kss, &var));
  ALLOC_LOOP("cov", NNFT_OK, nnft_gp_cov(&gp, &Ks, &Kss, &cov));
  ALLOC_LOOP("predict", NNFT_OK, nnft_gp_predict_kernel(&gp, &kern, &X, &Xs, &mean, &var, NULL));
  ALLOC_LOOP("predict cov",
             NNFT_OK, nnft_gp_predict_kernel(&gp, &kern, &X, &Xs, &mean, &var, &cov));
  rbf_ctx c = {&X, 0};
  double params[3] = {0.1, 1.0, 1.0}, lml, grad[3];
  ALLOC_LOOP("logml_grad",
             NNFT_OK, nnft_gp_logml_grad(rbf_family, &c, n, 2, &y, params, 1e-4, NULL, &lml, grad,
                                         NULL));
  nnft_gp_optimize_opts o = nnft_gp_optimize_defaults();
  o.max_iter = 2;
  nnft_gp_optimize_result res;
  ALLOC_LOOP("optimize", NNFT_OK, nnft_gp_optimize(rbf_family, &c, n, 2, &y, &o, params, &res,
                                                   NULL));
  nnft_gp_free(&gp);
  frees(&X, &Xs, &y, &K);
  frees(&Ks, &kss, &Kss, &mean);
  frees(&var, &cov, &B, &yb);
}

int main(void) {
  gsl_set_error_handler_off();
  test_posterior();
  test_logml_two_points();
  test_jitter_and_interpolation();
  test_var_blocks();
  test_bad_input();
  test_gradient();
  test_optimize();
  test_alloc_failures();
  return test_report("test_gp");
}
