/* Tests of nnft_mercer: empirical Mercer spectra against exact ones — the RBF kernel on a
 * Gaussian measure in d = 1 and d = 2 (GPML §4.3.1, physics.md §5.2) within their sampling error,
 * and the arc-cosine (ReLU NNGP, σ_b = 0) kernel on the circle against its Fourier coefficients —
 * the identities of the decomposition (orthonormality, reconstruction, Nyström at the training
 * points, projections), partial vs full, bad input and allocation failures. */
#include <stdlib.h>
#include <string.h>

#include "nnft_mercer.h"
#include "nnft_rng.h"
#include "test_util.h"

static nnft_mat mat(size_t r, size_t c) {
  nnft_mat m;
  test_alloc_fail_after(-1);
  if (nnft_mat_alloc(r, c, &m)) {
    fprintf(stderr, "cannot allocate test matrix\n");
    exit(2);
  }
  return m;
}

static void rbf_fill(const nnft_mat *X, const nnft_mat *Y, double ell, nnft_mat *K) {
  for (size_t i = 0; i < X->rows; i++)
    for (size_t j = 0; j < Y->rows; j++) {
      double r2 = 0.0;
      for (size_t c = 0; c < X->cols; c++) {
        double dd = NNFT_AT(X, i, c) - NNFT_AT(Y, j, c);
        r2 += dd * dd;
      }
      NNFT_AT(K, i, j) = exp(-r2 / (2.0 * ell * ell));
    }
}

/* Compare groups of (numerically) degenerate exact eigenvalues with the sums of the empirical
 * ones. To first order in the sampling fluctuation, the empirical eigenvalues of a group G of
 * exact value μ sum to μ (1/n) Σ_i Σ_{a∈G} φ_a(x_i)² (the first-order shift of each is
 * μ (⟨φ_a, φ_a⟩_n − 1)), whose standard deviation is μ sqrt(Var[Σ_a φ_a(x)²]/n), estimated from
 * the computed φ (the sum over a degenerate group does not depend on the basis chosen within it).
 * The test allows 5 of those standard deviations plus 1e-12 for rounding. */
static void check_groups(const char *label, const nnft_mercer *m, const double *exact,
                         const size_t *gsize, size_t ngroups) {
  size_t a0 = 0;
  const size_t n = m->n;
  for (size_t g = 0; g < ngroups; g++) {
    double sum = 0.0, mean = 0.0, m2 = 0.0;
    for (size_t a = a0; a < a0 + gsize[g]; a++) sum += m->values.data[a];
    for (size_t i = 0; i < n; i++) {
      double s = 0.0;
      for (size_t a = a0; a < a0 + gsize[g]; a++) s += NNFT_AT(&m->phi, i, a) * NNFT_AT(&m->phi, i, a);
      double dlt = s - mean;
      mean += dlt / (double)(i + 1);
      m2 += dlt * (s - mean);
    }
    double sd = exact[g] * sqrt(m2 / (double)(n - 1) / (double)n);
    double want = exact[g] * (double)gsize[g];
    if (!(fabs(sum - want) <= 5.0 * sd + 1e-12))
      fprintf(stderr, "%s group %zu: sum %.6g, exact %.6g, sd %.3g\n", label, g, sum, want, sd);
    CHECK(fabs(sum - want) <= 5.0 * sd + 1e-12);
    /* and the bound is not vacuous: the sampling error is small against the value */
    printf("%s group %zu: sum %.6g exact %.6g sd %.3g (%.1f%%)\n", label, g, sum, want, sd, 100 * sd / want);
    CHECK(sd < 0.1 * want);
    a0 += gsize[g];
  }
}

/* ---- RBF on N(0, s² I) ---- */

static void test_rbf_gaussian(void) {
  const double s = 1.0, ell = 1.0;
  const double a = 1.0 / (4 * s * s), b = 1.0 / (2 * ell * ell), c = sqrt(a * a + 2 * a * b);
  const double A = a + b + c, B = b / A, l0 = sqrt(2 * a / A);
  nnft_rng r;
  nnft_rng_init(&r, 77);

  /* d = 1: λ_k = sqrt(2a/A) B^k, nondegenerate */
  {
    const size_t n = 2000, k = 8;
    nnft_mat X = mat(n, 1), K = mat(n, n);
    for (size_t i = 0; i < n; i++) X.data[i] = s * nnft_rng_normal(&r);
    rbf_fill(&X, &X, ell, &K);
    nnft_mercer m;
    nnft_linalg_diag dg;
    CHECK_STATUS(nnft_mercer_alloc(n, k, &m), NNFT_OK);
    CHECK_STATUS(nnft_mercer_decompose(&K, NNFT_MERCER_AUTO, &m, &dg), NNFT_OK);
    double exact[8];
    size_t gs[8];
    for (size_t j = 0; j < k; j++) {
      exact[j] = l0 * pow(B, (double)j);
      gs[j] = 1;
    }
    check_groups("rbf d=1", &m, exact, gs, 6);
    /* Nyström through the kernel at the training points reproduces φ */
    nnft_kernel kern = nnft_kernel_rbf(ell, 1.0);
    nnft_mat ext = mat(50, k), X50;
    nnft_mat_view(&X, 0, 0, 50, 1, &X50);
    CHECK_STATUS(nnft_mercer_extend_kernel(&m, &kern, &X, &X50, &ext), NNFT_OK);
    double err = 0.0;
    for (size_t j = 0; j < 6; j++)
      for (size_t i = 0; i < 50; i++) err = fmax(err, fabs(NNFT_AT(&ext, i, j) - NNFT_AT(&m.phi, i, j)));
    CHECK(err < 1e-8);
    /* Nyström at new points approximates the continuum eigenfunction: its empirical L²(μ) norm
     * on fresh samples is 1 within sampling error for the leading modes */
    nnft_mat Xn = mat(n, 1), en = mat(n, k);
    for (size_t i = 0; i < n; i++) Xn.data[i] = s * nnft_rng_normal(&r);
    CHECK_STATUS(nnft_mercer_extend_kernel(&m, &kern, &X, &Xn, &en), NNFT_OK);
    for (size_t j = 0; j < 3; j++) {
      double nrm = 0.0;
      for (size_t i = 0; i < n; i++) nrm += NNFT_AT(&en, i, j) * NNFT_AT(&en, i, j);
      nrm /= (double)n;
      CHECK_NEAR(nrm, 1.0, 0.15);
    }
    nnft_mercer_free(&m);
    nnft_mat_free(&X);
    nnft_mat_free(&K);
    nnft_mat_free(&ext);
    nnft_mat_free(&Xn);
    nnft_mat_free(&en);
  }

  /* d = 2: λ_{k1,k2} = λ_{k1} λ_{k2}; total degree t = k1 + k2 has multiplicity t + 1 */
  {
    const size_t n = 1500, k = 10;
    nnft_mat X = mat(n, 2), K = mat(n, n);
    for (size_t i = 0; i < n; i++) {
      NNFT_AT(&X, i, 0) = s * nnft_rng_normal(&r);
      NNFT_AT(&X, i, 1) = s * nnft_rng_normal(&r);
    }
    rbf_fill(&X, &X, ell, &K);
    nnft_mercer m;
    CHECK_STATUS(nnft_mercer_alloc(n, k, &m), NNFT_OK);
    CHECK_STATUS(nnft_mercer_decompose(&K, NNFT_MERCER_PARTIAL, &m, NULL), NNFT_OK);
    double exact[4];
    size_t gs[4];
    for (size_t t = 0; t < 4; t++) {
      exact[t] = l0 * l0 * pow(B, (double)t);
      gs[t] = t + 1;
    }
    check_groups("rbf d=2", &m, exact, gs, 4);
    nnft_mercer_free(&m);
    nnft_mat_free(&X);
    nnft_mat_free(&K);
  }
}

/* ---- arc-cosine kernel on the circle ---- */

/* ReLU NNGP with one hidden layer, σ_b = 0, d = 2 on the unit circle (physics.md §2.3):
 * k(x,x') = σ_w² cos θ / 2, and K = (σ_w²/2π) (σ_w²/2) [sin θ + (π − θ) cos θ], θ ∈ [0, π]. */
static double arccos_kernel(double theta, double sw) {
  theta = fabs(remainder(theta, 2 * M_PI));
  return sw * sw / (2 * M_PI) * (sw * sw / 2) * (sin(theta) + (M_PI - theta) * cos(theta));
}

/* λ_ℓ = (1/2π) ∫ κ(θ) cos(ℓθ) dθ = (1/π) ∫_0^π κ(θ) cos(ℓθ) dθ by composite Simpson (κ is
 * analytic on [0, π]; 4000 intervals leave an error far below 1e-13). */
static double arccos_coef(int l, double sw) {
  const int N = 4000;
  double h = M_PI / N, acc = 0.0;
  for (int i = 0; i <= N; i++) {
    double t = i * h, w = (i == 0 || i == N) ? 1.0 : (i % 2 ? 4.0 : 2.0);
    acc += w * arccos_kernel(t, sw) * cos(l * t);
  }
  return acc * h / 3.0 / M_PI;
}

static void test_arccos_circle(void) {
  /* Equispaced points are a quadrature of the uniform measure: K/n is circulant and its
   * eigenvalues are the discrete Fourier sums (1/n) Σ_j κ(2πj/n) cos(2πℓj/n) = Σ_m λ_{ℓ+mn}
   * (aliasing). The tolerance is the aliasing bound 2 Σ_{j >= n/2} |λ_j| computed from the
   * exact coefficients, plus rounding. */
  const size_t n = 256;
  const double sw = 1.3;
  const int L = 2000;
  double *lam = malloc((size_t)(L + 1) * sizeof(double));
  for (int l = 0; l <= L; l++) lam[l] = arccos_coef(l, sw);
  double alias = 0.0;
  for (int l = (int)n / 2; l <= L; l++) alias += 2.0 * fabs(lam[l]);
  alias += 2.0 * fabs(lam[L]) * L / 3.0; /* the |λ_l| ~ l^-4 tail beyond L */
  /* known structure: λ_ℓ = 0 for odd ℓ >= 3 */
  CHECK(fabs(lam[3]) < 1e-12 && fabs(lam[5]) < 1e-12);
  CHECK(lam[0] > lam[1] && lam[1] > lam[2] && lam[2] > lam[4] && lam[4] > lam[6]);
  nnft_mat K = mat(n, n);
  for (size_t i = 0; i < n; i++)
    for (size_t j = 0; j < n; j++)
      NNFT_AT(&K, i, j) = arccos_kernel(2 * M_PI * ((double)i - (double)j) / (double)n, sw);
  nnft_mercer m;
  const size_t k = 9; /* ℓ = 0, (1, 1), (2, 2), (4, 4), (6, 6) */
  CHECK_STATUS(nnft_mercer_alloc(n, k, &m), NNFT_OK);
  CHECK_STATUS(nnft_mercer_decompose(&K, NNFT_MERCER_AUTO, &m, NULL), NNFT_OK);
  const int ell[9] = {0, 1, 1, 2, 2, 4, 4, 6, 6};
  for (size_t j = 0; j < k; j++) {
    printf("circle mode %zu (l = %d): lambda %.10f exact %.10f\n", j, ell[j], m.values.data[j],
           lam[ell[j]]);
    CHECK_NEAR(m.values.data[j], lam[ell[j]], alias + 1e-13);
  }
  printf("circle aliasing bound %.3g\n", alias);
  /* the modes are the Fourier harmonics: φ_0 = ±1, and each ℓ pair spans √2 cos ℓθ, √2 sin ℓθ */
  for (size_t i = 0; i < n; i++) CHECK_NEAR(fabs(NNFT_AT(&m.phi, i, 0)), 1.0, 1e-9);
  for (size_t j = 1; j < k; j += 2) {
    /* projection of √2 cos and √2 sin onto the pair: each has unit norm inside the span */
    for (int f = 0; f < 2; f++) {
      double nrm = 0.0;
      for (size_t a = j; a < j + 2; a++) {
        double dot = 0.0;
        for (size_t i = 0; i < n; i++) {
          double t = 2 * M_PI * (double)i / (double)n;
          dot += NNFT_AT(&m.phi, i, a) * sqrt(2.0) * (f ? sin(ell[j] * t) : cos(ell[j] * t));
        }
        dot /= (double)n;
        nrm += dot * dot;
      }
      CHECK_NEAR(nrm, 1.0, 1e-8);
    }
  }
  nnft_mercer_free(&m);
  nnft_mat_free(&K);
  free(lam);
}

/* ---- identities ---- */

static void test_identities(void) {
  nnft_rng r;
  nnft_rng_init(&r, 4);
  const size_t n = 60;
  nnft_mat X = mat(n, 3), K = mat(n, n), y = mat(n, 2);
  for (size_t i = 0; i < n * 3; i++) X.data[i] = nnft_rng_normal(&r);
  for (size_t i = 0; i < n * 2; i++) y.data[i] = nnft_rng_normal(&r);
  rbf_fill(&X, &X, 1.5, &K);
  nnft_mercer full, part, fk;
  nnft_linalg_diag dg;
  CHECK_STATUS(nnft_mercer_alloc(n, n, &full), NNFT_OK);
  CHECK_STATUS(nnft_mercer_decompose(&K, NNFT_MERCER_AUTO, &full, &dg), NNFT_OK);
  /* orthonormality (1/n) Σ_i φ_k φ_l = δ_kl */
  double err = 0.0;
  for (size_t a = 0; a < n; a++)
    for (size_t b = 0; b < n; b++) {
      double s = 0.0;
      for (size_t i = 0; i < n; i++) s += NNFT_AT(&full.phi, i, a) * NNFT_AT(&full.phi, i, b);
      err = fmax(err, fabs(s / (double)n - (a == b)));
    }
  CHECK(err < 1e-12);
  /* reconstruction K = Σ λ_k φ_k φ_kᵀ */
  err = 0.0;
  for (size_t i = 0; i < n; i++)
    for (size_t j = 0; j < n; j++) {
      double s = 0.0;
      for (size_t a = 0; a < n; a++)
        s += full.values.data[a] * NNFT_AT(&full.phi, i, a) * NNFT_AT(&full.phi, j, a);
      err = fmax(err, fabs(s - NNFT_AT(&K, i, j)));
    }
  CHECK(err < 1e-12);
  /* descending; trace: Σ λ = tr K / n = 1 */
  double tr = 0.0;
  for (size_t a = 0; a < n; a++) {
    tr += full.values.data[a];
    if (a) CHECK(full.values.data[a] <= full.values.data[a - 1]);
  }
  CHECK_NEAR(tr, 1.0, 1e-12);
  /* Nyström at the training points = φ for the modes well above rounding */
  nnft_mat ext = mat(n, n);
  CHECK_STATUS(nnft_mercer_extend(&full, &K, &ext), NNFT_OK);
  for (size_t a = 0; a < n; a++) {
    if (full.values.data[a] < 1e-6) continue;
    double e = 0.0;
    for (size_t i = 0; i < n; i++) e = fmax(e, fabs(NNFT_AT(&ext, i, a) - NNFT_AT(&full.phi, i, a)));
    CHECK(e < 1e-14 * full.values.data[0] / full.values.data[a] * 100.0);
  }
  /* modes with λ <= 0 extend to zero */
  double saved = full.values.data[n - 1];
  full.values.data[n - 1] = -1e-17;
  CHECK_STATUS(nnft_mercer_extend(&full, &K, &ext), NNFT_OK);
  for (size_t i = 0; i < n; i++) CHECK(NNFT_AT(&ext, i, n - 1) == 0.0);
  full.values.data[n - 1] = saved;
  /* projections: y = Σ_k y_k φ_k with all modes, and y_k = (1/n) φ_kᵀ y */
  nnft_mat yk = mat(n, 2);
  CHECK_STATUS(nnft_mercer_project(&full, &y, &yk), NNFT_OK);
  err = 0.0;
  for (size_t c = 0; c < 2; c++)
    for (size_t i = 0; i < n; i++) {
      double s = 0.0;
      for (size_t a = 0; a < n; a++) s += NNFT_AT(&yk, a, c) * NNFT_AT(&full.phi, i, a);
      err = fmax(err, fabs(s - NNFT_AT(&y, i, c)));
    }
  CHECK(err < 1e-12);
  /* partial (top 7) = full's leading 7; FULL method with k < n likewise */
  CHECK_STATUS(nnft_mercer_alloc(n, 7, &part), NNFT_OK);
  CHECK_STATUS(nnft_mercer_alloc(n, 7, &fk), NNFT_OK);
  CHECK_STATUS(nnft_mercer_decompose(&K, NNFT_MERCER_PARTIAL, &part, &dg), NNFT_OK);
  CHECK_STATUS(nnft_mercer_decompose(&K, NNFT_MERCER_FULL, &fk, &dg), NNFT_OK);
  err = 0.0;
  for (size_t a = 0; a < 7; a++) {
    err = fmax(err, fabs(part.values.data[a] - full.values.data[a]));
    err = fmax(err, fabs(fk.values.data[a] - full.values.data[a]));
    for (size_t i = 0; i < n; i++) {
      err = fmax(err, fabs(NNFT_AT(&part.phi, i, a) - NNFT_AT(&full.phi, i, a)));
      err = fmax(err, fabs(NNFT_AT(&fk.phi, i, a) - NNFT_AT(&full.phi, i, a)));
    }
  }
  CHECK(err < 1e-9);
  nnft_mercer_free(&full);
  nnft_mercer_free(&part);
  nnft_mercer_free(&fk);
  nnft_mat_free(&X);
  nnft_mat_free(&K);
  nnft_mat_free(&y);
  nnft_mat_free(&ext);
  nnft_mat_free(&yk);
}

/* ---- bad input ---- */

static void test_bad_input(void) {
  const size_t n = 6;
  nnft_mat K = mat(n, n), Kr = mat(n, n + 1), y = mat(n + 1, 1), out = mat(3, 3), Ks = mat(3, n + 1);
  for (size_t i = 0; i < n; i++) NNFT_AT(&K, i, i) = 1.0;
  nnft_mercer m;
  nnft_linalg_diag dg;
  CHECK_STATUS(nnft_mercer_alloc(n, 0, &m), NNFT_EDOM);
  CHECK_STATUS(nnft_mercer_alloc(n, n + 1, &m), NNFT_EDOM);
  CHECK_STATUS(nnft_mercer_alloc(0, 0, &m), NNFT_EDOM);
  CHECK_STATUS(nnft_mercer_alloc(n, 3, &m), NNFT_OK);
  CHECK_STATUS(nnft_mercer_decompose(&Kr, NNFT_MERCER_AUTO, &m, &dg), NNFT_EDIM);
  CHECK(strstr(dg.msg, "square") != NULL);
  NNFT_AT(&K, 2, 1) = NAN;
  CHECK_STATUS(nnft_mercer_decompose(&K, NNFT_MERCER_AUTO, &m, &dg), NNFT_ENONFINITE);
  NNFT_AT(&K, 2, 1) = 0.5;
  CHECK_STATUS(nnft_mercer_decompose(&K, NNFT_MERCER_AUTO, &m, &dg), NNFT_EDOM); /* asymmetric */
  NNFT_AT(&K, 1, 2) = 0.5;
  CHECK_STATUS(nnft_mercer_decompose(&K, (nnft_mercer_method)42, &m, &dg), NNFT_EDOM);
  CHECK_STATUS(nnft_mercer_decompose(&K, NNFT_MERCER_AUTO, &m, &dg), NNFT_OK);
  CHECK_STATUS(nnft_mercer_project(&m, &y, &out), NNFT_EDIM);
  CHECK_STATUS(nnft_mercer_extend(&m, &Ks, &out), NNFT_EDIM);
  nnft_mercer_free(&m);
  nnft_mercer_free(&m);
  nnft_mat_free(&K);
  nnft_mat_free(&Kr);
  nnft_mat_free(&y);
  nnft_mat_free(&out);
  nnft_mat_free(&Ks);
}

/* ---- allocation failures ---- */

static nnft_status alloc_and_decompose(const nnft_mat *K, size_t k, nnft_mercer_method meth) {
  nnft_mercer m;
  nnft_status s = nnft_mercer_alloc(K->rows, k, &m);
  if (!s) s = nnft_mercer_decompose(K, meth, &m, NULL);
  nnft_mercer_free(&m);
  return s;
}

static void test_alloc_failures(void) {
  nnft_rng r;
  nnft_rng_init(&r, 8);
  const size_t n = 40;
  nnft_mat X = mat(n, 1), K = mat(n, n), Xn = mat(10, 1), out = mat(10, 5);
  for (size_t i = 0; i < n; i++) X.data[i] = nnft_rng_normal(&r);
  for (size_t i = 0; i < 10; i++) Xn.data[i] = nnft_rng_normal(&r);
  rbf_fill(&X, &X, 1.0, &K);
  nnft_kernel kern = nnft_kernel_rbf(1.0, 1.0);
  const nnft_mercer_method meths[3] = {NNFT_MERCER_AUTO, NNFT_MERCER_FULL, NNFT_MERCER_PARTIAL};
  for (int t = 0; t < 3; t++) {
    long k;
    nnft_status s = NNFT_ENOMEM;
    for (k = 0; k < 64 && s == NNFT_ENOMEM; k++) {
      test_alloc_fail_after(k);
      s = alloc_and_decompose(&K, 5, meths[t]);
      test_alloc_fail_after(-1);
    }
    CHECK_STATUS(s, NNFT_OK);
  }
  nnft_mercer m;
  CHECK_STATUS(nnft_mercer_alloc(n, 5, &m), NNFT_OK);
  CHECK_STATUS(nnft_mercer_decompose(&K, NNFT_MERCER_AUTO, &m, NULL), NNFT_OK);
  long k;
  nnft_status s = NNFT_ENOMEM;
  for (k = 0; k < 64 && s == NNFT_ENOMEM; k++) {
    test_alloc_fail_after(k);
    s = nnft_mercer_extend_kernel(&m, &kern, &X, &Xn, &out);
    test_alloc_fail_after(-1);
  }
  CHECK_STATUS(s, NNFT_OK);
  nnft_mercer_free(&m);
  nnft_mat_free(&X);
  nnft_mat_free(&K);
  nnft_mat_free(&Xn);
  nnft_mat_free(&out);
}

int main(void) {
  test_rbf_gaussian();
  test_arccos_circle();
  test_identities();
  test_bad_input();
  test_alloc_failures();
  return test_report("test_mercer");
}
