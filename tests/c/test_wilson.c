/* Tests of nnft_wilson (Wilsonian RG of GP regression, physics.md §6):
 * - the ridge flow and its stopping point against the closed forms on the exact geometric spectrum
 *   of the RBF kernel on Gaussian inputs (physics.md §5.2);
 * - learnability, the EK mean and EK test error against direct GP computations (Cholesky solves
 *   on the kernel matrix) where the EK is exact: the training set's own empirical measure, η = n;
 * - the reduced GP (eigenbasis diagonal algebra) against the weighted (weight-space) solve and,
 *   at κ = K, against the full GP at new points through the Nyström extension;
 * - with Gaussian features by design: the reduced GP with the renormalised ridge σ²(κ) reproduces
 *   the full GP within a tolerance derived from the discarded spectrum (first-order variance
 *   Σ_{k>κ} λ_k² times computable weights), while the bare ridge does not;
 * - the input-dependent ridge against brute force, and its mean against σ²(κ);
 * - the power-law fit, Gaussianity diagnostics, histogram; bad input; allocation failures. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_cdf.h>

#include "nnft_linalg.h"
#include "nnft_wilson.h"
#include "test_util.h"

/* ---- helpers independent of the code under test ---- */

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;
static double urand01(void) {
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  uint64_t r = rng_state * 0x2545F4914F6CDD1Dull;
  return ((double)(r >> 11) + 0.5) / 9007199254740992.0;
}
static double nrand(void) { /* Box–Muller */
  return sqrt(-2.0 * log(urand01())) * cos(6.283185307179586 * urand01());
}

static nnft_mat mat(size_t r, size_t c) {
  nnft_mat m;
  test_alloc_fail_after(-1);
  if (nnft_mat_alloc(r, c, &m)) {
    fprintf(stderr, "cannot allocate test matrix\n");
    exit(2);
  }
  return m;
}

static double maxabs(const nnft_mat *a) {
  double m = 0;
  for (size_t j = 0; j < a->cols; j++)
    for (size_t i = 0; i < a->rows; i++)
      if (fabs(NNFT_AT(a, i, j)) > m) m = fabs(NNFT_AT(a, i, j));
  return m;
}

static double maxdiff(const nnft_mat *a, const nnft_mat *b) {
  double m = 0;
  for (size_t j = 0; j < a->cols; j++)
    for (size_t i = 0; i < a->rows; i++) {
      double d = fabs(NNFT_AT(a, i, j) - NNFT_AT(b, i, j));
      if (!(d <= m)) m = d;
    }
  return m;
}

/* Laplace kernel exp(-|x - y|) between rows (well conditioned, no tiny eigenvalues). */
static nnft_mat laplace(const nnft_mat *X, const nnft_mat *Y) {
  nnft_mat k = mat(X->rows, Y->rows);
  for (size_t i = 0; i < X->rows; i++)
    for (size_t j = 0; j < Y->rows; j++) {
      double s = 0;
      for (size_t c = 0; c < X->cols; c++) {
        double d = NNFT_AT(X, i, c) - NNFT_AT(Y, j, c);
        s += d * d;
      }
      NNFT_AT(&k, i, j) = exp(-sqrt(s));
    }
  return k;
}

/* GP mean K(X*, X)(K + s I)^{-1} y by an SPD solve. */
static nnft_mat gp_mean(const nnft_mat *Kxx, const nnft_mat *Ksx, const nnft_mat *y, double s) {
  size_t n = Kxx->rows;
  nnft_mat A = mat(n, n), a = mat(n, 1), out = mat(Ksx->rows, 1);
  nnft_mat_copy(Kxx, &A);
  for (size_t i = 0; i < n; i++) NNFT_AT(&A, i, i) += s;
  CHECK_STATUS(nnft_linalg_solve_spd(&A, y, &a, NULL), NNFT_OK);
  CHECK_STATUS(nnft_mat_gemm(1.0, Ksx, 0, &a, 0, 0.0, &out), NNFT_OK);
  nnft_mat_free(&A);
  nnft_mat_free(&a);
  return out;
}

/* ---- 1. the ridge flow on the exact RBF-on-Gaussian spectrum ---- */

static void test_flow_geometric(void) {
  /* GPML §4.3.1: ℓ = 0.5, s = 1 -> a = 1/4, b = 2; λ_k = sqrt(2a/A) B^(k-1), k = 1.. */
  double a = 0.25, b = 2.0, c = sqrt(a * a + 2 * a * b), A = a + b + c, B = b / A;
  double c0 = sqrt(2 * a / A);
  size_t K = 60;
  nnft_mat lam = mat(K, 1), tail = mat(K, 1), ridge = mat(K, 1), learn = mat(K, 1);
  for (size_t k = 0; k < K; k++) lam.data[k] = c0 * pow(B, (double)k);
  double s2 = 1e-3, eta = 200;
  CHECK_STATUS(nnft_wilson_flow(&lam, NULL, s2, eta, 0, &tail, NULL, &ridge, &learn), NNFT_OK);
  double worst = 0;
  for (size_t kap = 1; kap <= K; kap++) {
    /* closed form of the finite geometric tail Σ_{k=κ+1}^{K} c0 B^(k-1) */
    double t = c0 * (pow(B, (double)kap) - pow(B, (double)K)) / (1 - B);
    double r = s2 + t;
    double rel = fabs(ridge.data[kap - 1] - r) / r;
    if (rel > worst) worst = rel;
    CHECK_NEAR(tail.data[kap - 1], t, 1e-14 * (t + c0 * pow(B, (double)kap)) + 1e-300);
    double lk = c0 * pow(B, (double)kap - 1);
    CHECK_NEAR(learn.data[kap - 1], eta * lk / (r + eta * lk), 1e-14);
  }
  CHECK(worst < 1e-14);
  CHECK(tail.data[K - 1] == 0.0 && ridge.data[K - 1] == s2);
  /* discrete flow: σ²_{κ-1} = σ²_κ + λ_κ */
  for (size_t kap = 2; kap <= K; kap++)
    CHECK_NEAR(ridge.data[kap - 2], ridge.data[kap - 1] + lam.data[kap - 1],
               1e-15 * ridge.data[kap - 2]);

  /* Stopping point vs the closed form (K large enough that B^K is far below round-off):
   * L_κ >= T  <=>  η c0 B^(κ-1) >= t (σ² + c0 B^κ/(1-B)), t = T/(1-T)
   *           <=>  κ <= 1 + log(t σ² / (c0 (η - t B/(1-B)))) / log B. */
  size_t K2 = 400;
  nnft_mat lam2 = mat(K2, 1);
  for (size_t k = 0; k < K2; k++) lam2.data[k] = c0 * pow(B, (double)k);
  double Ts[] = {0.5, 0.2, 0.9};
  double etas[] = {10, 100, 1e3, 1e4, 1e5, 1e6};
  for (size_t it = 0; it < 3; it++) {
    size_t prev = 0;
    for (size_t ie = 0; ie < 6; ie++) {
      double T = Ts[it], t = T / (1 - T), e = etas[ie];
      size_t ks;
      CHECK_STATUS(nnft_wilson_stop(&lam2, NULL, s2, e, 0, T, &ks), NNFT_OK);
      double x = 1 + log(t * s2 / (c0 * (e - t * B / (1 - B)))) / log(B);
      size_t want = x < 1 ? 0 : (size_t)floor(x);
      /* away from ties (x within 1e-9 of an integer would be a rounding coin toss) */
      if (fabs(x - floor(x + 0.5)) > 1e-9) CHECK(ks == want);
      CHECK(ks >= prev); /* more data, more learnable modes */
      prev = ks;
    }
  }
  /* With σ² = 0 every mode with λ > 0 is learnable: κ* = K. */
  size_t ks;
  CHECK_STATUS(nnft_wilson_stop(&lam, NULL, 0.0, 1.0, 0, 0.5, &ks), NNFT_OK);
  CHECK(ks == K);
  /* include_target: extra noise Σ y_k² can only lower κ*. */
  nnft_mat yk = mat(K2, 1);
  for (size_t k = 0; k < K2; k++) yk.data[k] = sqrt(lam2.data[k]);
  size_t k0, k1;
  CHECK_STATUS(nnft_wilson_stop(&lam2, &yk, s2, 1e3, 0, 0.5, &k0), NNFT_OK);
  CHECK_STATUS(nnft_wilson_stop(&lam2, &yk, s2, 1e3, 1, 0.5, &k1), NNFT_OK);
  CHECK(k1 <= k0 && k1 >= 1);
  nnft_mat tt = mat(K2, 1), rr = mat(K2, 1), tl = mat(K2, 1);
  CHECK_STATUS(nnft_wilson_flow(&lam2, &yk, s2, 1e3, 1, &tl, &tt, &rr, NULL), NNFT_OK);
  CHECK_NEAR(rr.data[9], s2 + tl.data[9] + tt.data[9], 1e-16);
  CHECK_NEAR(tt.data[9], tl.data[9], 1e-15); /* y_k² = λ_k here */
  nnft_mat_free(&lam);
  nnft_mat_free(&tail);
  nnft_mat_free(&ridge);
  nnft_mat_free(&learn);
  nnft_mat_free(&lam2);
  nnft_mat_free(&yk);
  nnft_mat_free(&tt);
  nnft_mat_free(&rr);
  nnft_mat_free(&tl);
}

/* ---- 2. EK and reduced GP against direct GP computations (EK exact regime) ---- */

/* Mercer modes of K/n on the training set: lam (descending), phi = sqrt(n) U. */
static void mercer(const nnft_mat *Kxx, nnft_mat *lam, nnft_mat *phi) {
  size_t n = Kxx->rows, m;
  nnft_mat Kn = mat(n, n);
  nnft_mat_scalar_op(NNFT_OP_DIV, Kxx, (double)n, 0, &Kn);
  *lam = mat(n, 1);
  *phi = mat(n, n);
  CHECK_STATUS(nnft_linalg_eigh(&Kn, NULL, lam, phi, &m, NULL), NNFT_OK);
  for (size_t j = 0; j < n; j++)
    for (size_t i = 0; i < n; i++) NNFT_AT(phi, i, j) *= sqrt((double)n);
  nnft_mat_free(&Kn);
}

static void test_ek_exact(void) {
  size_t n = 40, m = 7, d = 2;
  nnft_mat X = mat(n, d), Xs = mat(m, d), y = mat(n, 1);
  for (size_t i = 0; i < n; i++)
    for (size_t c = 0; c < d; c++) NNFT_AT(&X, i, c) = nrand();
  for (size_t i = 0; i < m; i++)
    for (size_t c = 0; c < d; c++) NNFT_AT(&Xs, i, c) = nrand();
  for (size_t i = 0; i < n; i++) y.data[i] = sin(2 * NNFT_AT(&X, i, 0)) + 0.1 * nrand();
  nnft_mat Kxx = laplace(&X, &X), Ksx = laplace(&Xs, &X);
  nnft_mat lam, phi;
  mercer(&Kxx, &lam, &phi);
  CHECK_STATUS(nnft_wilson_check_spectrum(&lam, NULL, NULL), NNFT_OK);
  double s2 = 0.05;
  nnft_mat yk = mat(n, 1), L = mat(n, 1), fb = mat(n, 1), b2 = mat(n, 1), v = mat(n, 1);
  CHECK_STATUS(nnft_wilson_targets(&phi, &y, &yk), NNFT_OK);
  nnft_wilson_ek_totals tot;
  CHECK_STATUS(nnft_wilson_ek(&lam, &yk, s2, (double)n, &L, &fb, &b2, &v, &tot), NNFT_OK);

  /* EK mean at training points = GP posterior mean there */
  nnft_mat mtr = gp_mean(&Kxx, &Kxx, &y, s2), ek = mat(n, 1);
  CHECK_STATUS(nnft_mat_gemm(1.0, &phi, 0, &fb, 0, 0.0, &ek), NNFT_OK);
  CHECK(maxdiff(&ek, &mtr) < 1e-11 * (1 + maxabs(&mtr)));
  /* EK test error at the training measure = Parseval of the residual */
  double mse = 0;
  for (size_t i = 0; i < n; i++) mse += (mtr.data[i] - y.data[i]) * (mtr.data[i] - y.data[i]);
  mse /= (double)n;
  CHECK_NEAR(tot.bias2, mse, 1e-11 * mse);
  /* learnability = projection of the GP's reconstruction of mode k onto mode k */
  size_t ks[] = {0, 3, 17, 39};
  for (size_t t = 0; t < 4; t++) {
    size_t k = ks[t];
    nnft_mat target = mat(n, 1);
    for (size_t i = 0; i < n; i++) target.data[i] = NNFT_AT(&phi, i, k);
    nnft_mat rec = gp_mean(&Kxx, &Kxx, &target, s2);
    double p = 0;
    for (size_t i = 0; i < n; i++) p += rec.data[i] * target.data[i];
    CHECK_NEAR(p / (double)n, L.data[k], 1e-11);
    nnft_mat_free(&target);
    nnft_mat_free(&rec);
  }
  /* EK posterior variance: Σ_k v_k = (1/n) Σ_i [K - K (K+σ²)^{-1} K]_ii (μ-averaged) */
  nnft_mat A = mat(n, n), KA = mat(n, n);
  nnft_mat_copy(&Kxx, &A);
  for (size_t i = 0; i < n; i++) NNFT_AT(&A, i, i) += s2;
  CHECK_STATUS(nnft_linalg_solve_spd(&A, &Kxx, &KA, NULL), NNFT_OK);
  double pv = 0;
  for (size_t i = 0; i < n; i++) {
    double s = NNFT_AT(&Kxx, i, i);
    for (size_t j = 0; j < n; j++) s -= NNFT_AT(&Kxx, i, j) * NNFT_AT(&KA, j, i);
    pv += s;
  }
  CHECK_NEAR(tot.var, pv / (double)n, 1e-11);

  /* Nyström extension φ_k(x*) = (1/(nλ_k)) K(x*,X) φ_k; reduced GP at κ = K, ridge σ² = full GP */
  nnft_mat phis = mat(m, n);
  CHECK_STATUS(nnft_mat_gemm(1.0, &Ksx, 0, &phi, 0, 0.0, &phis), NNFT_OK);
  for (size_t k = 0; k < n; k++)
    for (size_t i = 0; i < m; i++) NNFT_AT(&phis, i, k) /= (double)n * lam.data[k];
  nnft_mat mts = gp_mean(&Kxx, &Ksx, &y, s2);
  size_t kap[] = {n, 5, 20, 1};
  double rid[] = {s2, 0.3, 0.1, 2.0};
  nnft_mat red = mat(m, 4);
  CHECK_STATUS(nnft_wilson_reduced(&lam, &yk, n, &phis, kap, rid, 4, &red), NNFT_OK);
  nnft_mat c0;
  nnft_mat_view(&red, 0, 0, m, 1, &c0);
  CHECK(maxdiff(&c0, &mts) < 1e-10 * (1 + maxabs(&mts)));
  /* every column against the weighted solve with a constant ridge (independent algebra) */
  nnft_mat dd = mat(n, 1), w = mat(m, 1);
  for (size_t j = 0; j < 4; j++) {
    nnft_mat_fill(&dd, rid[j]);
    CHECK_STATUS(nnft_wilson_reduced_weighted(&lam, &phi, &y, &dd, &phis, kap[j], &w), NNFT_OK);
    nnft_mat cj;
    nnft_mat_view(&red, 0, j, m, 1, &cj);
    CHECK(maxdiff(&cj, &w) < 1e-10 * (1 + maxabs(&w)));
  }

  nnft_mat *all[] = {&X, &Xs, &y, &Kxx, &Ksx, &lam, &phi, &yk, &L, &fb, &b2, &v, &mtr, &ek,
                     &A, &KA, &phis, &mts, &red, &dd, &w};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++) nnft_mat_free(all[i]);
}

/* ---- 3. Gaussian features: reduced GP with σ²(κ) vs the full GP ---- */

static void test_gaussian_features(void) {
  /* Spectrum: nlow = 300 > n power-law modes 0.5 k^-1.5 (so the ridge matters for the reduced
   * GP), then a flat bulk of M = 20000 modes of ε = 1e-5 each (tail 0.2 = 20 σ²). Features
   * φ_k(x) i.i.d. N(0, 1) per point: jointly Gaussian by construction, ∫dμ φ_k φ_l = δ_kl.
   * The bulk's fluctuations about tail·I are relatively O(sqrt(n/M)). */
  size_t nlow = 300, M = 20000, K = nlow + M, n = 100, m = 40, N = n + m;
  double eps = 1e-5, s2 = 0.01;
  nnft_mat lam = mat(K, 1), Phi = mat(N, K), y = mat(n, 1);
  for (size_t k = 0; k < K; k++) lam.data[k] = k < nlow ? 0.5 * pow((double)k + 1, -1.5) : eps;
  for (size_t k = 0; k < K; k++)
    for (size_t i = 0; i < N; i++) NNFT_AT(&Phi, i, k) = nrand();
  nnft_mat Ptr, Pte;
  nnft_mat_view(&Phi, 0, 0, n, K, &Ptr);
  nnft_mat_view(&Phi, n, 0, m, K, &Pte);
  /* y = f(x) + noise with f drawn from the prior */
  for (size_t i = 0; i < n; i++) {
    double f = 0;
    for (size_t k = 0; k < nlow; k++) f += sqrt(lam.data[k]) * NNFT_AT(&Ptr, i, k) * nrand();
    y.data[i] = f + sqrt(s2) * nrand();
  }
  /* full GP: K = Φ Λ Φᵀ */
  nnft_mat PL = mat(N, K), Kall = mat(N, N);
  for (size_t k = 0; k < K; k++)
    for (size_t i = 0; i < N; i++) NNFT_AT(&PL, i, k) = NNFT_AT(&Phi, i, k) * sqrt(lam.data[k]);
  CHECK_STATUS(nnft_mat_syrk(&PL, 0, &Kall), NNFT_OK);
  nnft_mat Kxx, Ksx;
  nnft_mat_view(&Kall, 0, 0, n, n, &Kxx);
  nnft_mat_view(&Kall, n, 0, m, n, &Ksx);
  nnft_mat full = gp_mean(&Kxx, &Ksx, &y, s2);

  nnft_mat ridge = mat(K, 1), tail = mat(K, 1);
  CHECK_STATUS(nnft_wilson_flow(&lam, NULL, s2, (double)n, 0, &tail, NULL, &ridge, NULL), NNFT_OK);
  size_t kaps[] = {300, 200};
  for (size_t t = 0; t < 2; t++) {
    size_t kap = kaps[t];
    double r = ridge.data[kap - 1];
    nnft_mat d = mat(n, 1), red = mat(m, 1), bare = mat(m, 1);
    nnft_mat_fill(&d, r);
    CHECK_STATUS(nnft_wilson_reduced_weighted(&lam, &Ptr, &y, &d, &Pte, kap, &red), NNFT_OK);
    nnft_mat_fill(&d, s2);
    CHECK_STATUS(nnft_wilson_reduced_weighted(&lam, &Ptr, &y, &d, &Pte, kap, &bare), NNFT_OK);
    /* First-order prediction of δf = full − reduced from the discarded modes (see the file
     * header): with A = K_<(X,X) + σ²(κ) I, u = A⁻¹K_<(X,x*), v = A⁻¹y and s_> = Σ_{k>κ} λ_k²,
     *   E[δf(x*)²] ≈ s_> (|v|² + |u|²|v|² + (u·v)²)
     * (the entries of K_>(X,X) − tail·I and of K_>(x*,X) are uncorrelated with variance s_>,
     * 2 s_> on the diagonal). */
    double sg = 0;
    for (size_t k = kap; k < K; k++) sg += lam.data[k] * lam.data[k];
    nnft_mat Kl = mat(N, N), PLk;
    nnft_mat_view(&PL, 0, 0, N, kap, &PLk);
    CHECK_STATUS(nnft_mat_syrk(&PLk, 0, &Kl), NNFT_OK);
    nnft_mat A = mat(n, n), V = mat(n, 1), U = mat(n, m), Kxs = mat(n, m);
    for (size_t j = 0; j < n; j++)
      for (size_t i = 0; i < n; i++) NNFT_AT(&A, i, j) = NNFT_AT(&Kl, i, j) + (i == j ? r : 0);
    for (size_t j = 0; j < m; j++)
      for (size_t i = 0; i < n; i++) NNFT_AT(&Kxs, i, j) = NNFT_AT(&Kl, i, n + j);
    CHECK_STATUS(nnft_linalg_solve_spd(&A, &y, &V, NULL), NNFT_OK);
    CHECK_STATUS(nnft_linalg_solve_spd(&A, &Kxs, &U, NULL), NNFT_OK);
    double vv = 0;
    for (size_t i = 0; i < n; i++) vv += V.data[i] * V.data[i];
    double pred = 0, got = 0, got_bare = 0;
    for (size_t j = 0; j < m; j++) {
      double uu = 0, uv = 0;
      for (size_t i = 0; i < n; i++) {
        uu += NNFT_AT(&U, i, j) * NNFT_AT(&U, i, j);
        uv += NNFT_AT(&U, i, j) * V.data[i];
      }
      pred += sg * (vv + uu * vv + uv * uv);
      got += (full.data[j] - red.data[j]) * (full.data[j] - red.data[j]);
      got_bare += (full.data[j] - bare.data[j]) * (full.data[j] - bare.data[j]);
    }
    pred /= (double)m;
    got /= (double)m;
    got_bare /= (double)m;
    /* The mean of m = 40 squared near-Gaussian deviations: relative sd about sqrt(2/40) = 0.22;
     * a factor 2 is ~4.5 sd (plus second-order terms, (|E|/σ²(κ))² ~ 5%). */
    if (!(got <= 2.0 * pred))
      fprintf(stderr, "kappa=%zu: mean sq diff %g, first-order prediction %g\n", kap, got, pred);
    CHECK(got <= 2.0 * pred);
    CHECK(got >= 0.25 * pred); /* the discarded modes do matter at this order */
    CHECK(got_bare > 20.0 * pred); /* and the renormalisation is what makes it work */
    nnft_mat *fr[] = {&d, &red, &bare, &Kl, &A, &V, &U, &Kxs};
    for (size_t i = 0; i < sizeof fr / sizeof *fr; i++) nnft_mat_free(fr[i]);
  }

  /* local ridge: brute force, and its mean over points = σ²(κ) within 5 sd */
  size_t kl[] = {K, 300, 3, 300};
  nnft_mat lr = mat(n, 4);
  CHECK_STATUS(nnft_wilson_local_ridge(&lam, &Ptr, s2, kl, 4, &lr), NNFT_OK);
  for (size_t j = 0; j < 4; j++) {
    double mean = 0, sg = 0;
    for (size_t k = kl[j]; k < K; k++) sg += 2 * lam.data[k] * lam.data[k];
    for (size_t i = 0; i < n; i += 13) {
      double s = s2;
      for (size_t k = kl[j]; k < K; k++) s += lam.data[k] * NNFT_AT(&Ptr, i, k) * NNFT_AT(&Ptr, i, k);
      CHECK_NEAR(NNFT_AT(&lr, i, j), s, 1e-12 * s);
    }
    for (size_t i = 0; i < n; i++) mean += NNFT_AT(&lr, i, j) / (double)n;
    CHECK_NEAR(mean, ridge.data[kl[j] - 1], 5 * sqrt(sg / (double)n) + 1e-15);
  }
  CHECK(NNFT_AT(&lr, 0, 0) == s2);
  /* all κ at once agrees with the list */
  nnft_mat lall = mat(n, K);
  CHECK_STATUS(nnft_wilson_local_ridge(&lam, &Ptr, s2, NULL, K, &lall), NNFT_OK);
  CHECK(NNFT_AT(&lall, 5, 299) == NNFT_AT(&lr, 5, 1) && NNFT_AT(&lall, 7, 2) == NNFT_AT(&lr, 7, 2));

  /* Gaussian features are Gaussian: kurtosis within 5 sd (sd sqrt(24/N)), tail ~ 0.0027 */
  nnft_mat kurt = mat(K, 1), tl = mat(K, 1);
  CHECK_STATUS(nnft_wilson_gaussianity(&Phi, &kurt, &tl), NNFT_OK);
  double mk = 0, mt = 0;
  for (size_t k = 0; k < K; k++) {
    mk += kurt.data[k] / (double)K;
    mt += tl.data[k] / (double)K;
  }
  CHECK(fabs(kurt.data[0]) < 5 * sqrt(24.0 / (double)N));
  /* the mean over K modes of the (biased) estimator: E ≈ -6/(N+1); sd ≈ sqrt(24/N/K) */
  CHECK_NEAR(mk, -6.0 / (double)(N + 1), 5 * sqrt(24.0 / (double)N / (double)K));
  /* For normal samples (x_i − x̄)²/Σ_j(x_j − x̄)² ~ Beta(1/2, (N−2)/2)·(N−1)/N, so the expected
   * fraction beyond 3 (1/N-)sd is Q_Beta(9/(N−1); 1/2, (N−2)/2) (0.0027 only as N → ∞). */
  double pt = gsl_cdf_beta_Q(9.0 / (double)(N - 1), 0.5, 0.5 * (double)(N - 2));
  CHECK_NEAR(mt, pt, 5 * sqrt(pt / (double)N / (double)K));

  nnft_mat *all[] = {&lam, &Phi, &y, &PL, &Kall, &full, &ridge, &tail, &lr, &lall, &kurt, &tl};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++) nnft_mat_free(all[i]);
}

/* ---- 4. power law, Gaussianity of a non-Gaussian mode, histogram ---- */

static void test_misc(void) {
  size_t K = 200;
  nnft_mat lam = mat(K, 1);
  for (size_t k = 0; k < K; k++) lam.data[k] = 3.0 * pow((double)k + 1, -1.7);
  double al, lc, r2;
  CHECK_STATUS(nnft_wilson_fit_power(&lam, 5, 150, &al, &lc, &r2), NNFT_OK);
  CHECK_NEAR(al, 0.7, 1e-12);
  CHECK_NEAR(lc, log(3.0), 1e-12);
  CHECK_NEAR(r2, 1.0, 1e-12);
  /* a bent spectrum fits worse */
  for (size_t k = 0; k < K; k++) lam.data[k] = exp(-0.05 * (double)k);
  CHECK_STATUS(nnft_wilson_fit_power(&lam, 1, 200, &al, &lc, &r2), NNFT_OK);
  CHECK(r2 < 0.9);

  /* uniform on [-1,1]: excess kurtosis -1.2, no 3σ tail; Laplace-like heavy tail: +3 */
  size_t n = 20000;
  nnft_mat phi = mat(n, 2), ku = mat(2, 1), tl = mat(2, 1);
  for (size_t i = 0; i < n; i++) {
    NNFT_AT(&phi, i, 0) = 2 * urand01() - 1;
    double e = -log(urand01());
    NNFT_AT(&phi, i, 1) = urand01() < 0.5 ? e : -e;
  }
  CHECK_STATUS(nnft_wilson_gaussianity(&phi, &ku, &tl), NNFT_OK);
  CHECK_NEAR(ku.data[0], -1.2, 5 * sqrt(0.1 / (double)n) * 3); /* sd of kurtosis est. ~ small */
  CHECK(tl.data[0] == 0.0);
  CHECK_NEAR(ku.data[1], 3.0, 1.0);   /* Laplace: estimator sd ~ sqrt(~500/n) ≈ 0.16 */
  /* P(|L| > 3 sd) = exp(-3 sqrt 2) = 0.0144 for the Laplace law */
  CHECK_NEAR(tl.data[1], exp(-3 * sqrt(2.0)), 5 * sqrt(0.0144 / (double)n));
  /* constant mode: NaN */
  nnft_mat cst = mat(5, 1), k1 = mat(1, 1);
  nnft_mat_fill(&cst, 2.0);
  CHECK_STATUS(nnft_wilson_gaussianity(&cst, &k1, NULL), NNFT_OK);
  CHECK(isnan(k1.data[0]));

  nnft_mat h = mat(8, 8);
  size_t out;
  CHECK_STATUS(nnft_wilson_hist2d(&phi, 1, 2, -1.0, 1.0, &h, &out), NNFT_OK);
  double tot = 0;
  for (size_t i = 0; i < 64; i++) tot += h.data[i];
  CHECK(tot + (double)out == (double)n);
  CHECK((double)out / n > 0.3 && (double)out / n < 0.45); /* P(|L|>1) = e^-1 = 0.37 */
  /* the uniform marginal: each row of bins holds ~1/8 of the points inside */
  double row0 = 0;
  for (size_t j = 0; j < 8; j++) row0 += NNFT_AT(&h, 0, j);
  CHECK_NEAR(row0 / tot, 0.125, 5 * sqrt(0.125 / tot));

  nnft_mat_free(&lam);
  nnft_mat_free(&phi);
  nnft_mat_free(&ku);
  nnft_mat_free(&tl);
  nnft_mat_free(&cst);
  nnft_mat_free(&k1);
  nnft_mat_free(&h);
}

/* ---- 5. bad input ---- */

static void test_errors(void) {
  size_t K = 5, n = 4;
  nnft_mat lam = mat(K, 1), phi = mat(n, K), out = mat(n, 1), yk = mat(K, 1), r = mat(K, 1);
  for (size_t k = 0; k < K; k++) lam.data[k] = 1.0 / (double)(k + 1);
  for (size_t i = 0; i < n * K; i++) phi.data[i] = nrand();
  size_t bad, ks;
  double bv;
  /* κ out of range */
  size_t k0 = 0, k6 = 6;
  CHECK_STATUS(nnft_wilson_local_ridge(&lam, &phi, 0.1, &k0, 1, &out), NNFT_EDOM);
  CHECK_STATUS(nnft_wilson_local_ridge(&lam, &phi, 0.1, &k6, 1, &out), NNFT_EDOM);
  double rr = 0.1;
  CHECK_STATUS(nnft_wilson_reduced(&lam, &yk, n, &phi, &k6, &rr, 1, &out), NNFT_EDOM);
  CHECK_STATUS(nnft_wilson_reduced(&lam, &yk, n, &phi, &k0, &rr, 1, &out), NNFT_EDOM);
  nnft_mat d = mat(n, 1), y = mat(n, 1);
  nnft_mat_fill(&d, 1.0);
  CHECK_STATUS(nnft_wilson_reduced_weighted(&lam, &phi, &y, &d, &phi, 0, &out), NNFT_EDOM);
  CHECK_STATUS(nnft_wilson_reduced_weighted(&lam, &phi, &y, &d, &phi, 6, &out), NNFT_EDOM);
  d.data[2] = 0.0;
  CHECK_STATUS(nnft_wilson_reduced_weighted(&lam, &phi, &y, &d, &phi, 2, &out), NNFT_EDOM);
  /* η <= 0, σ² < 0, NaN */
  CHECK_STATUS(nnft_wilson_flow(&lam, NULL, 0.1, 0.0, 0, NULL, NULL, &r, NULL), NNFT_EDOM);
  CHECK_STATUS(nnft_wilson_flow(&lam, NULL, 0.1, -3.0, 0, NULL, NULL, &r, NULL), NNFT_EDOM);
  CHECK_STATUS(nnft_wilson_flow(&lam, NULL, -1e-3, 10.0, 0, NULL, NULL, &r, NULL), NNFT_EDOM);
  CHECK_STATUS(nnft_wilson_flow(&lam, NULL, NAN, 10.0, 0, NULL, NULL, &r, NULL), NNFT_EDOM);
  CHECK_STATUS(nnft_wilson_ek(&lam, NULL, 0.1, 0.0, &r, NULL, NULL, NULL, NULL), NNFT_EDOM);
  CHECK_STATUS(nnft_wilson_ek(&lam, NULL, -0.1, 1.0, &r, NULL, NULL, NULL, NULL), NNFT_EDOM);
  CHECK_STATUS(nnft_wilson_stop(&lam, NULL, 0.1, 0.0, 0, 0.5, &ks), NNFT_EDOM);
  CHECK_STATUS(nnft_wilson_stop(&lam, NULL, 0.1, 1.0, 0, 1.0, &ks), NNFT_EDOM);
  CHECK_STATUS(nnft_wilson_stop(&lam, NULL, 0.1, 1.0, 0, 0.0, &ks), NNFT_EDOM);
  CHECK_STATUS(nnft_wilson_flow(&lam, NULL, 0.1, 1.0, 1, NULL, NULL, &r, NULL), NNFT_EDIM);
  /* spectra: round-off negatives are fine, real ones are refused with their index */
  lam.data[4] = -1e-17;
  CHECK_STATUS(nnft_wilson_check_spectrum(&lam, &bad, &bv), NNFT_OK);
  CHECK_STATUS(nnft_wilson_flow(&lam, NULL, 0.1, 1.0, 0, NULL, NULL, &r, NULL), NNFT_OK);
  CHECK(r.data[3] == 0.1); /* clamped at 0 */
  lam.data[4] = -1e-6;
  CHECK_STATUS(nnft_wilson_check_spectrum(&lam, &bad, &bv), NNFT_EDOM);
  CHECK(bad == 5 && bv == -1e-6);
  CHECK_STATUS(nnft_wilson_flow(&lam, NULL, 0.1, 1.0, 0, NULL, NULL, &r, NULL), NNFT_EDOM);
  CHECK_STATUS(nnft_wilson_local_ridge(&lam, &phi, 0.1, NULL, K, &phi), NNFT_EDOM);
  lam.data[4] = 0.2;
  lam.data[1] = 0.9; /* 1, 0.9, 0.333, 0.25, 0.2: fine; now unsorted: */
  lam.data[2] = 0.95;
  CHECK_STATUS(nnft_wilson_check_spectrum(&lam, &bad, &bv), NNFT_EDOM);
  CHECK(bad == 3);
  lam.data[2] = NAN;
  CHECK_STATUS(nnft_wilson_check_spectrum(&lam, &bad, &bv), NNFT_ENONFINITE);
  CHECK(bad == 3);
  lam.data[2] = 0.5;
  /* shapes */
  nnft_mat wrong = mat(K + 1, 1);
  CHECK_STATUS(nnft_wilson_flow(&lam, NULL, 0.1, 1.0, 0, NULL, NULL, &wrong, NULL), NNFT_EDIM);
  CHECK_STATUS(nnft_wilson_targets(&phi, &wrong, &yk), NNFT_EDIM);
  CHECK_STATUS(nnft_wilson_check_spectrum(&phi, NULL, NULL), NNFT_EDIM);
  CHECK_STATUS(nnft_wilson_fit_power(&lam, 3, 3, NULL, NULL, NULL), NNFT_EDOM);
  CHECK_STATUS(nnft_wilson_fit_power(&lam, 1, 6, NULL, NULL, NULL), NNFT_EDOM);
  lam.data[4] = 0.0;
  CHECK_STATUS(nnft_wilson_fit_power(&lam, 1, 5, NULL, NULL, NULL), NNFT_EDOM);
  nnft_mat h = mat(3, 3);
  CHECK_STATUS(nnft_wilson_hist2d(&phi, 1, 6, -1, 1, &h, NULL), NNFT_EDOM);
  CHECK_STATUS(nnft_wilson_hist2d(&phi, 1, 2, 1, 1, &h, NULL), NNFT_EDOM);
  /* interrupts */
  nnft_interrupt_flag = 1;
  CHECK_STATUS(nnft_wilson_local_ridge(&lam, &phi, 0.1, NULL, K, &(nnft_mat){0}), NNFT_EDIM);
  nnft_mat lr = mat(n, K);
  CHECK_STATUS(nnft_wilson_local_ridge(&lam, &phi, 0.1, NULL, K, &lr), NNFT_EINTR);
  nnft_interrupt_flag = 0;
  nnft_mat *all[] = {&lam, &phi, &out, &yk, &r, &d, &y, &wrong, &h, &lr};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++) nnft_mat_free(all[i]);
}

/* ---- 6. allocation failures: every allocation path returns ENOMEM and leaks nothing ---- */

static void test_alloc(void) {
  size_t K = 6, n = 5;
  nnft_mat lam = mat(K, 1), phi = mat(n, K), y = mat(n, 1), d = mat(n, 1), yk = mat(K, 1);
  nnft_mat o1 = mat(n, 2), o2 = mat(n, 1);
  for (size_t k = 0; k < K; k++) lam.data[k] = 1.0 / (double)(k + 1);
  for (size_t i = 0; i < n * K; i++) phi.data[i] = nrand();
  for (size_t i = 0; i < n; i++) y.data[i] = nrand();
  nnft_mat_fill(&d, 0.3);
  size_t kap[] = {2, 5};
  double rid[] = {0.1, 0.2};
  int ok_seen[3] = {0, 0, 0};
  for (long f = 0; f < 40; f++) {
    nnft_status s;
    test_alloc_fail_after(f);
    s = nnft_wilson_local_ridge(&lam, &phi, 0.1, kap, 2, &o1);
    CHECK(s == NNFT_OK || s == NNFT_ENOMEM);
    if (s == NNFT_OK) ok_seen[0] = 1;
    test_alloc_fail_after(f);
    s = nnft_wilson_reduced(&lam, &yk, n, &phi, kap, rid, 2, &o1);
    CHECK(s == NNFT_OK || s == NNFT_ENOMEM);
    if (s == NNFT_OK) ok_seen[1] = 1;
    test_alloc_fail_after(f);
    s = nnft_wilson_reduced_weighted(&lam, &phi, &y, &d, &phi, 4, &o2);
    CHECK(s == NNFT_OK || s == NNFT_ENOMEM);
    if (s == NNFT_OK) ok_seen[2] = 1;
  }
  test_alloc_fail_after(0);
  CHECK_STATUS(nnft_wilson_local_ridge(&lam, &phi, 0.1, kap, 2, &o1), NNFT_ENOMEM);
  CHECK_STATUS(nnft_wilson_reduced(&lam, &yk, n, &phi, kap, rid, 2, &o1), NNFT_ENOMEM);
  CHECK_STATUS(nnft_wilson_reduced_weighted(&lam, &phi, &y, &d, &phi, 4, &o2), NNFT_ENOMEM);
  test_alloc_fail_after(-1);
  CHECK(ok_seen[0] && ok_seen[1] && ok_seen[2]);
  nnft_mat *all[] = {&lam, &phi, &y, &d, &yk, &o1, &o2};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++) nnft_mat_free(all[i]);
}

int main(void) {
  test_flow_geometric();
  test_ek_exact();
  test_gaussian_features();
  test_misc();
  test_errors();
  test_alloc();
  return test_report("test_wilson");
}
