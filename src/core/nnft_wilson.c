/* nnft_wilson: Wilsonian RG of GP regression on a Mercer spectrum (see nnft_wilson.h). */
#include "nnft_wilson.h"

#include <math.h>

#include "nnft_alloc.h"
#include "nnft_linalg.h"

/* ---- helpers ---- */

static int is_col(const nnft_mat *m, size_t rows) {
  return m && m->data && m->cols == 1 && m->rows == rows;
}

/* Neumaier-compensated running sum. */
typedef struct { double s, c; } ksum;
static inline void ksum_add(ksum *k, double x) {
  double t = k->s + x;
  if (fabs(k->s) >= fabs(x))
    k->c += (k->s - t) + x;
  else
    k->c += (x - t) + k->s;
  k->s = t;
}
static inline double ksum_get(const ksum *k) { return k->s + k->c; }

/* λ_k clamped at 0 (the check has already refused anything beyond round-off). */
static inline double lam(const nnft_mat *lambda, size_t k) {
  double v = lambda->data[k];
  return v > 0.0 ? v : 0.0;
}

static nnft_status check_noise_eta(double sigma2, double eta) {
  if (!isfinite(sigma2) || !isfinite(eta)) return NNFT_EDOM;
  if (sigma2 < 0.0 || eta <= 0.0) return NNFT_EDOM;
  return NNFT_OK;
}

/* ηλ/(s + ηλ), 0 for 0/0. */
static inline double learnability(double eta_lam, double s) {
  double den = s + eta_lam;
  return den > 0.0 ? eta_lam / den : 0.0;
}

/* ---- spectrum ---- */

nnft_status nnft_wilson_check_spectrum(const nnft_mat *lambda, size_t *bad, double *badval) {
  if (bad) *bad = 0;
  if (badval) *badval = 0.0;
  if (!lambda || !lambda->data || lambda->cols != 1 || lambda->rows == 0) return NNFT_EDIM;
  size_t K = lambda->rows;
  double amax = 0.0;
  for (size_t k = 0; k < K; k++) {
    double v = lambda->data[k];
    if (!isfinite(v)) {
      if (bad) *bad = k + 1;
      if (badval) *badval = v;
      return NNFT_ENONFINITE;
    }
    if (fabs(v) > amax) amax = fabs(v);
  }
  double tol = NNFT_WILSON_NEG_TOL(K) * amax;
  for (size_t k = 0; k < K; k++) {
    double v = lambda->data[k];
    if (v < -tol || (k > 0 && v > lambda->data[k - 1] + tol)) {
      if (bad) *bad = k + 1;
      if (badval) *badval = v;
      return NNFT_EDOM;
    }
  }
  return NNFT_OK;
}

/* ---- targets ---- */

nnft_status nnft_wilson_targets(const nnft_mat *phi, const nnft_mat *y, nnft_mat *yk) {
  if (!phi || !phi->data || phi->rows == 0 || phi->cols == 0) return NNFT_EDIM;
  if (!is_col(y, phi->rows) || !is_col(yk, phi->cols)) return NNFT_EDIM;
  if (!nnft_mat_all_finite(phi) || !nnft_mat_all_finite(y)) return NNFT_ENONFINITE;
  return nnft_mat_gemm(1.0 / (double)phi->rows, phi, 1, y, 0, 0.0, yk);
}

/* ---- equivalent kernel ---- */

nnft_status nnft_wilson_ek(const nnft_mat *lambda, const nnft_mat *yk, double sigma2, double eta,
                           nnft_mat *learn, nnft_mat *fbar, nnft_mat *bias2, nnft_mat *var,
                           nnft_wilson_ek_totals *tot) {
  nnft_status s = nnft_wilson_check_spectrum(lambda, NULL, NULL);
  if (s) return s;
  if ((s = check_noise_eta(sigma2, eta))) return s;
  size_t K = lambda->rows;
  if (yk && !is_col(yk, K)) return NNFT_EDIM;
  if (!yk && (fbar || bias2)) return NNFT_EDIM;
  if ((learn && !is_col(learn, K)) || (fbar && !is_col(fbar, K)) ||
      (bias2 && !is_col(bias2, K)) || (var && !is_col(var, K)))
    return NNFT_EDIM;
  if (yk && !nnft_mat_all_finite(yk)) return NNFT_ENONFINITE;
  ksum b = {0, 0}, v = {0, 0}, l = {0, 0};
  for (size_t k = 0; k < K; k++) {
    double lk = lam(lambda, k);
    double L = learnability(eta * lk, sigma2);
    double vk = lk * (1.0 - L);
    if (learn) learn->data[k] = L;
    if (var) var->data[k] = vk;
    ksum_add(&v, vk);
    ksum_add(&l, L);
    if (yk) {
      double y = yk->data[k], r = (1.0 - L) * y;
      if (fbar) fbar->data[k] = L * y;
      if (bias2) bias2->data[k] = r * r;
      ksum_add(&b, r * r);
    }
  }
  if (tot) {
    tot->bias2 = yk ? ksum_get(&b) : NAN;
    tot->var = ksum_get(&v);
    tot->err = tot->bias2 + tot->var;
    tot->learned = ksum_get(&l);
  }
  return NNFT_OK;
}

/* ---- the flow ---- */

nnft_status nnft_wilson_flow(const nnft_mat *lambda, const nnft_mat *yk, double sigma2,
                             double eta, int include_target, nnft_mat *tail, nnft_mat *ttail,
                             nnft_mat *ridge, nnft_mat *learn) {
  nnft_status s = nnft_wilson_check_spectrum(lambda, NULL, NULL);
  if (s) return s;
  if ((s = check_noise_eta(sigma2, eta))) return s;
  size_t K = lambda->rows;
  if (yk && !is_col(yk, K)) return NNFT_EDIM;
  if (!yk && (ttail || include_target)) return NNFT_EDIM;
  if ((tail && !is_col(tail, K)) || (ttail && !is_col(ttail, K)) ||
      (ridge && !is_col(ridge, K)) || (learn && !is_col(learn, K)))
    return NNFT_EDIM;
  if (yk && !nnft_mat_all_finite(yk)) return NNFT_ENONFINITE;
  ksum t = {0, 0}, ty = {0, 0};
  for (size_t k = K; k-- > 0;) { /* row k holds κ = k + 1: sums over modes > κ, i.e. rows > k */
    double tk = ksum_get(&t), tyk = yk ? ksum_get(&ty) : 0.0;
    double r = sigma2 + tk + (include_target ? tyk : 0.0);
    if (tail) tail->data[k] = tk;
    if (ttail) ttail->data[k] = tyk;
    if (ridge) ridge->data[k] = r;
    if (learn) learn->data[k] = learnability(eta * lam(lambda, k), r);
    ksum_add(&t, lam(lambda, k));
    if (yk) ksum_add(&ty, yk->data[k] * yk->data[k]);
  }
  return NNFT_OK;
}

nnft_status nnft_wilson_stop(const nnft_mat *lambda, const nnft_mat *yk, double sigma2,
                             double eta, int include_target, double threshold, size_t *kstar) {
  nnft_status s = nnft_wilson_check_spectrum(lambda, NULL, NULL);
  if (s) return s;
  if ((s = check_noise_eta(sigma2, eta))) return s;
  if (!(threshold > 0.0 && threshold < 1.0) || !kstar) return NNFT_EDOM;
  size_t K = lambda->rows;
  if (yk && !is_col(yk, K)) return NNFT_EDIM;
  if (!yk && include_target) return NNFT_EDIM;
  if (yk && !nnft_mat_all_finite(yk)) return NNFT_ENONFINITE;
  ksum t = {0, 0};
  *kstar = 0;
  for (size_t k = K; k-- > 0;) {
    double r = sigma2 + ksum_get(&t);
    if (learnability(eta * lam(lambda, k), r) >= threshold) {
      *kstar = k + 1;
      return NNFT_OK;
    }
    ksum_add(&t, lam(lambda, k));
    if (include_target) ksum_add(&t, yk->data[k] * yk->data[k]);
  }
  return NNFT_OK;
}

/* ---- input-dependent ridge ---- */

nnft_status nnft_wilson_local_ridge(const nnft_mat *lambda, const nnft_mat *phi, double sigma2,
                                    const size_t *kappa, size_t nk, nnft_mat *out) {
  nnft_status s = nnft_wilson_check_spectrum(lambda, NULL, NULL);
  if (s) return s;
  if (!isfinite(sigma2) || sigma2 < 0.0) return NNFT_EDOM;
  size_t K = lambda->rows;
  if (!phi || !phi->data || phi->cols != K) return NNFT_EDIM;
  size_t m = phi->rows;
  if (!kappa && nk != K) return NNFT_EDIM;
  if (!out || !out->data || out->rows != m || out->cols != nk) return NNFT_EDIM;
  if (kappa)
    for (size_t j = 0; j < nk; j++)
      if (kappa[j] < 1 || kappa[j] > K) return NNFT_EDOM;
  if (!nnft_mat_all_finite(phi)) return NNFT_ENONFINITE;
  if (nnft_mat_overlap(phi, out)) return NNFT_EDIM;
  if (m == 0 || nk == 0) return NNFT_OK;
  size_t bytes;
  if ((s = nnft_size_mul(m, sizeof(double), &bytes))) return s;
  double *acc = nnft_alloc(bytes);
  if (!acc) return NNFT_ENOMEM;
  for (size_t i = 0; i < m; i++) acc[i] = 0.0;
  /* Plain (uncompensated) accumulation per point: terms are non-negative, so the relative
   * error is at most K ε. */
  for (size_t k = K; k-- > 0;) { /* state: acc = Σ_{modes > k+1} λ φ² = the tail at κ = k + 1 */
    if (nnft_interrupted()) {
      nnft_free(acc);
      return NNFT_EINTR;
    }
    size_t kap = k + 1;
    if (kappa) {
      for (size_t j = 0; j < nk; j++)
        if (kappa[j] == kap) {
          double *o = &NNFT_AT(out, 0, j);
          for (size_t i = 0; i < m; i++) o[i] = sigma2 + acc[i];
        }
    } else {
      double *o = &NNFT_AT(out, 0, k);
      for (size_t i = 0; i < m; i++) o[i] = sigma2 + acc[i];
    }
    double lk = lam(lambda, k);
    const double *restrict p = &NNFT_AT(phi, 0, k);
    for (size_t i = 0; i < m; i++) acc[i] += lk * p[i] * p[i];
  }
  nnft_free(acc);
  return NNFT_OK;
}

/* ---- reduced GP ---- */

nnft_status nnft_wilson_reduced(const nnft_mat *lambda, const nnft_mat *yk, size_t n,
                                const nnft_mat *phi_test, const size_t *kappa,
                                const double *ridge, size_t nk, nnft_mat *out) {
  nnft_status s = nnft_wilson_check_spectrum(lambda, NULL, NULL);
  if (s) return s;
  size_t K = lambda->rows;
  if (n == 0) return NNFT_EDOM;
  if (!is_col(yk, K)) return NNFT_EDIM;
  if (!phi_test || !phi_test->data || phi_test->cols != K) return NNFT_EDIM;
  size_t m = phi_test->rows;
  if (!out || !out->data || out->rows != m || out->cols != nk) return NNFT_EDIM;
  if (nk > 0 && (!kappa || !ridge)) return NNFT_EDIM;
  size_t kmax = 0;
  for (size_t j = 0; j < nk; j++) {
    if (kappa[j] < 1 || kappa[j] > K) return NNFT_EDOM;
    if (!isfinite(ridge[j]) || ridge[j] < 0.0) return NNFT_EDOM;
    if (kappa[j] > kmax) kmax = kappa[j];
  }
  if (!nnft_mat_all_finite(yk) || !nnft_mat_all_finite(phi_test)) return NNFT_ENONFINITE;
  if (nnft_mat_overlap(phi_test, out)) return NNFT_EDIM;
  if (m == 0 || nk == 0) return NNFT_OK;
  nnft_mat c;
  if ((s = nnft_mat_alloc(kmax, nk, &c))) return s; /* zero-filled */
  for (size_t j = 0; j < nk; j++) {
    double sn = ridge[j] / (double)n;
    for (size_t k = 0; k < kappa[j]; k++) {
      double lk = lam(lambda, k), den = lk + sn;
      NNFT_AT(&c, k, j) = den > 0.0 ? lk * yk->data[k] / den : 0.0;
    }
  }
  nnft_mat pv;
  if (!(s = nnft_mat_view(phi_test, 0, 0, m, kmax, &pv)))
    s = nnft_mat_gemm(1.0, &pv, 0, &c, 0, 0.0, out);
  nnft_mat_free(&c);
  return s;
}

nnft_status nnft_wilson_reduced_weighted(const nnft_mat *lambda, const nnft_mat *phi_train,
                                         const nnft_mat *y, const nnft_mat *d,
                                         const nnft_mat *phi_test, size_t kappa, nnft_mat *out) {
  nnft_status s = nnft_wilson_check_spectrum(lambda, NULL, NULL);
  if (s) return s;
  size_t K = lambda->rows;
  if (!phi_train || !phi_train->data || phi_train->cols != K || phi_train->rows == 0)
    return NNFT_EDIM;
  size_t n = phi_train->rows;
  if (!is_col(y, n) || !is_col(d, n)) return NNFT_EDIM;
  if (!phi_test || !phi_test->data || phi_test->cols != K) return NNFT_EDIM;
  size_t m = phi_test->rows;
  if (!is_col(out, m)) return NNFT_EDIM;
  if (kappa < 1 || kappa > K) return NNFT_EDOM;
  if (!nnft_mat_all_finite(phi_train) || !nnft_mat_all_finite(y) ||
      !nnft_mat_all_finite(phi_test) || !nnft_mat_all_finite(d))
    return NNFT_ENONFINITE;
  for (size_t i = 0; i < n; i++)
    if (!(d->data[i] > 0.0)) return NNFT_EDOM;
  if (nnft_mat_overlap(phi_test, out)) return NNFT_EDIM;
  nnft_mat B = {0}, A = {0}, r = {0};
  if ((s = nnft_mat_alloc(kappa, n, &B))) goto done;
  if ((s = nnft_mat_alloc(kappa, kappa, &A))) goto done;
  if ((s = nnft_mat_alloc(kappa, 1, &r))) goto done;
  /* B = Λ^{1/2} Φ_κᵀ D^{-1/2};  r = B D^{-1/2} y */
  for (size_t i = 0; i < n; i++) {
    if ((i & 255) == 0 && nnft_interrupted()) {
      s = NNFT_EINTR;
      goto done;
    }
    double w = 1.0 / sqrt(d->data[i]);
    for (size_t k = 0; k < kappa; k++)
      NNFT_AT(&B, k, i) = sqrt(lam(lambda, k)) * NNFT_AT(phi_train, i, k) * w;
  }
  for (size_t k = 0; k < kappa; k++) {
    ksum acc = {0, 0};
    for (size_t i = 0; i < n; i++)
      ksum_add(&acc, NNFT_AT(&B, k, i) * y->data[i] / sqrt(d->data[i]));
    r.data[k] = ksum_get(&acc);
  }
  if ((s = nnft_mat_syrk(&B, 0, &A))) goto done;
  for (size_t k = 0; k < kappa; k++) NNFT_AT(&A, k, k) += 1.0;
  if (nnft_interrupted()) {
    s = NNFT_EINTR;
    goto done;
  }
  if ((s = nnft_linalg_solve_spd(&A, &r, &r, NULL))) {
    if (s == NNFT_ENOTPD) s = NNFT_EINTERNAL; /* I + BBᵀ is PD by construction */
    goto done;
  }
  for (size_t k = 0; k < kappa; k++) r.data[k] *= sqrt(lam(lambda, k));
  if (m > 0) {
    nnft_mat pv;
    if (!(s = nnft_mat_view(phi_test, 0, 0, m, kappa, &pv)))
      s = nnft_mat_gemm(1.0, &pv, 0, &r, 0, 0.0, out);
  }
done:
  nnft_mat_free(&B);
  nnft_mat_free(&A);
  nnft_mat_free(&r);
  return s;
}

/* ---- Gaussianity ---- */

nnft_status nnft_wilson_gaussianity(const nnft_mat *phi, nnft_mat *kurt, nnft_mat *tail) {
  if (!phi || !phi->data || phi->cols == 0) return NNFT_EDIM;
  size_t n = phi->rows, K = phi->cols;
  if (n < 2) return NNFT_EDIM;
  if ((kurt && !is_col(kurt, K)) || (tail && !is_col(tail, K))) return NNFT_EDIM;
  if (!nnft_mat_all_finite(phi)) return NNFT_ENONFINITE;
  for (size_t k = 0; k < K; k++) {
    if ((k & 63) == 0 && nnft_interrupted()) return NNFT_EINTR;
    const double *p = &NNFT_AT(phi, 0, k);
    double mean = nnft_sum_compensated(p, n, 1) / (double)n;
    ksum s2 = {0, 0}, s4 = {0, 0};
    for (size_t i = 0; i < n; i++) {
      double c = p[i] - mean, c2 = c * c;
      ksum_add(&s2, c2);
      ksum_add(&s4, c2 * c2);
    }
    double m2 = ksum_get(&s2) / (double)n, m4 = ksum_get(&s4) / (double)n;
    if (!(m2 > 0.0)) {
      if (kurt) kurt->data[k] = NAN;
      if (tail) tail->data[k] = NAN;
      continue;
    }
    if (kurt) kurt->data[k] = m4 / (m2 * m2) - 3.0;
    if (tail) {
      double cut = 3.0 * sqrt(m2);
      size_t cnt = 0;
      for (size_t i = 0; i < n; i++) cnt += fabs(p[i] - mean) > cut;
      tail->data[k] = (double)cnt / (double)n;
    }
  }
  return NNFT_OK;
}

nnft_status nnft_wilson_hist2d(const nnft_mat *phi, size_t k, size_t l, double lo, double hi,
                               nnft_mat *out, size_t *outside) {
  if (!phi || !phi->data) return NNFT_EDIM;
  if (k < 1 || l < 1 || k > phi->cols || l > phi->cols) return NNFT_EDOM;
  if (!isfinite(lo) || !isfinite(hi) || !(lo < hi)) return NNFT_EDOM;
  if (!out || !out->data || out->rows == 0 || out->rows != out->cols) return NNFT_EDIM;
  if (!nnft_mat_all_finite(phi)) return NNFT_ENONFINITE;
  size_t bins = out->rows, n = phi->rows, off = 0;
  nnft_mat_fill(out, 0.0);
  double scale = (double)bins / (hi - lo);
  for (size_t i = 0; i < n; i++) {
    double a = NNFT_AT(phi, i, k - 1), b = NNFT_AT(phi, i, l - 1);
    if (a < lo || a >= hi || b < lo || b >= hi) {
      off++;
      continue;
    }
    size_t ia = (size_t)((a - lo) * scale), ib = (size_t)((b - lo) * scale);
    if (ia >= bins) ia = bins - 1; /* rounding at the upper edge */
    if (ib >= bins) ib = bins - 1;
    NNFT_AT(out, ia, ib) += 1.0;
  }
  if (outside) *outside = off;
  return NNFT_OK;
}

/* ---- scaling ---- */

nnft_status nnft_wilson_fit_power(const nnft_mat *lambda, size_t kmin, size_t kmax, double *alpha,
                                  double *logc, double *r2) {
  if (!lambda || !lambda->data || lambda->cols != 1) return NNFT_EDIM;
  if (kmin < 1 || kmax > lambda->rows || kmax <= kmin) return NNFT_EDOM;
  size_t cnt = kmax - kmin + 1;
  double mx = 0.0, my = 0.0;
  for (size_t k = kmin; k <= kmax; k++) {
    double v = lambda->data[k - 1];
    if (!isfinite(v)) return NNFT_ENONFINITE;
    if (!(v > 0.0)) return NNFT_EDOM;
    mx += log((double)k);
    my += log(v);
  }
  mx /= (double)cnt;
  my /= (double)cnt;
  double sxx = 0.0, sxy = 0.0, syy = 0.0;
  for (size_t k = kmin; k <= kmax; k++) {
    double dx = log((double)k) - mx, dy = log(lambda->data[k - 1]) - my;
    sxx += dx * dx;
    sxy += dx * dy;
    syy += dy * dy;
  }
  double slope = sxy / sxx, icpt = my - slope * mx;
  double sse = 0.0;
  for (size_t k = kmin; k <= kmax; k++) {
    double e = log(lambda->data[k - 1]) - (icpt + slope * log((double)k));
    sse += e * e;
  }
  if (alpha) *alpha = -slope - 1.0;
  if (logc) *logc = icpt;
  if (r2) *r2 = syy > 0.0 ? 1.0 - sse / syy : 1.0;
  return NNFT_OK;
}
