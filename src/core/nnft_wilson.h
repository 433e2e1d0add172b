/* nnft_wilson: Wilsonian RG of (NN)GP regression [HJMR] (physics.md §6) on a Mercer spectrum.
 *
 * Everything here works on the Mercer decomposition of a kernel on a data measure μ
 * (physics.md §5.2; nnft_mercer computes it): eigenvalues λ_k (K x 1, decreasing: mode index k
 * plays the role of momentum, large k = UV), eigenfunctions evaluated at points, φ (points x K,
 * φ[i, k] = φ_k(x_i), normalised so that ∫dμ φ_k φ_l = δ_kl), and target coefficients
 * y_k = ∫dμ y φ_k. The noise (ridge) is σ² >= 0 and the (mean) dataset size η > 0.
 * Mode indices κ in the API are 1-based (κ = 1 .. K), as in physics.md and in Lua.
 *
 * Spectra: λ must be finite and non-increasing up to round-off; eigenvalues below zero by at most
 * NNFT_WILSON_NEG_TOL(K) · max|λ| (what an eigensolver leaves on a PSD matrix) count as 0;
 * anything more negative is NNFT_EDOM (nnft_wilson_check_spectrum says where).
 *
 * Nothing here recomputes a decomposition: the flow is one pass of cumulative sums over κ, and the
 * reduced GP is diagonal algebra in the eigenbasis (or a κ x κ solve for the input-dependent
 * ridge). All functions poll the interrupt flag in their outer loops (NNFT_EINTR). */
#ifndef NNFT_WILSON_H
#define NNFT_WILSON_H

#include <float.h>
#include <stddef.h>

#include "nnft_mat.h"
#include "nnft_status.h"

/* Relative round-off tolerance for negative eigenvalues of a K-mode spectrum. */
#define NNFT_WILSON_NEG_TOL(K) (64.0 * (double)((K) > 0 ? (K) : 1) * DBL_EPSILON)

/* Check a spectrum (a column, K >= 1 rows): finite, non-increasing within
 * NNFT_WILSON_NEG_TOL(K)·max|λ|, no eigenvalue below −NNFT_WILSON_NEG_TOL(K)·max|λ|.
 * On failure *bad (may be NULL) receives the 1-based offending index and *badval its value:
 * NNFT_ENONFINITE (NaN/Inf), NNFT_EDOM (negative beyond round-off, or λ_k > λ_{k−1}: not sorted
 * decreasing), NNFT_EDIM (not a non-empty column). O(K). */
nnft_status nnft_wilson_check_spectrum(const nnft_mat *lambda, size_t *bad, double *badval);

/* Target coefficients on the empirical measure of the n points: y_k = (1/n) Σ_i φ_k(x_i) y_i.
 * phi n x K, y n x 1, yk K x 1. O(nK). */
nnft_status nnft_wilson_targets(const nnft_mat *phi, const nnft_mat *y, nnft_mat *yk);

/* Totals of the equivalent-kernel (EK) predictions, summed over the K modes. */
typedef struct nnft_wilson_ek_totals {
  double bias2;    /* Σ_k (1 − L_k)² y_k²: test MSE of the EK mean against the target (noise-free) */
  double var;      /* Σ_k λ_k (1 − L_k): μ-averaged EK posterior variance */
  double err;      /* bias2 + var: Bayesian (posterior-averaged) test error */
  double learned;  /* Σ_k L_k: effective number of learned modes */
} nnft_wilson_ek_totals;

/* Mode analysis of the dataset-averaged (equivalent-kernel) action
 *   S_EK[f] = Σ_k [ f_k²/(2λ_k) + (η/(2σ²)) (f_k − y_k)² ]           (physics.md §6)
 * per mode k: learnability L_k = ηλ_k/(σ² + ηλ_k) (0 when σ² = λ_k = 0), EK mean
 * f̄_k = L_k y_k, squared bias b_k = (1 − L_k)² y_k² and posterior variance v_k = λ_k(1 − L_k)
 * = λ_k σ²/(σ² + ηλ_k) (Sollich & Williams 2005; Cohen, Malka & Ringel, PRR 3, 023034 (2021)).
 * The EK predicted test MSE of the posterior mean is Σ b_k (add the test targets' own noise
 * variance when they are noisy); Σ (b_k + v_k) is the Bayesian error. Exact (not an
 * approximation) when μ is the training set's empirical measure and η = n: then f̄ is the GP
 * posterior mean at the training points and, through the Nyström extension, everywhere.
 * lambda (checked), yk K x 1 (may be NULL: fbar and bias2 must then be NULL); outputs K x 1, any
 * may be NULL; tot may be NULL. NNFT_EDOM for σ² < 0 or η <= 0 (or non-finite). O(K). */
nnft_status nnft_wilson_ek(const nnft_mat *lambda, const nnft_mat *yk, double sigma2, double eta,
                           nnft_mat *learn, nnft_mat *fbar, nnft_mat *bias2, nnft_mat *var,
                           nnft_wilson_ek_totals *tot);

/* The Wilsonian ridge flow for Gaussian features (physics.md §6), κ = 1 .. K in row κ − 1:
 *   tail[κ]   = Σ_{k>κ} λ_k                   (integrated-out prior power; tail[K] = 0)
 *   ttail[κ]  = Σ_{k>κ} y_k²                  (unlearned target power; needs yk)
 *   ridge[κ]  = σ² + tail[κ] (+ ttail[κ] if include_target)     so ridge[κ−1] = ridge[κ] + λ_κ(+y_κ²)
 *   learn[κ]  = ηλ_κ/(ridge[κ] + ηλ_κ)        (learnability of mode κ at the renormalised ridge)
 * One reverse pass with compensated sums (O(K)). yk may be NULL (then ttail must be NULL and
 * include_target 0). Any output may be NULL; all are K x 1. */
nnft_status nnft_wilson_flow(const nnft_mat *lambda, const nnft_mat *yk, double sigma2,
                             double eta, int include_target, nnft_mat *tail, nnft_mat *ttail,
                             nnft_mat *ridge, nnft_mat *learn);

/* Stopping point of the flow: κ* = the largest κ whose renormalised learnability
 * ηλ_κ/(ridge[κ] + ηλ_κ) >= threshold (0 if no mode reaches it). threshold = 1/2 is the
 * criterion λ_κ* ≈ σ²(κ*)/η (ηλ_κ >= σ²(κ)). Walks down from the UV and stops at the first
 * learnable mode: O(K − κ*). yk / include_target as in nnft_wilson_flow. 0 < threshold < 1. */
nnft_status nnft_wilson_stop(const nnft_mat *lambda, const nnft_mat *yk, double sigma2,
                             double eta, int include_target, double threshold, size_t *kstar);

/* Input-dependent ridge (physics.md §6, non-Gaussian features):
 *   out[i, j] = σ² + Σ_{k>κ_j} λ_k φ_k(x_i)²
 * for the points of phi (m x K: training points, or new points through the Nyström extension)
 * and the cutoffs kappa[0..nk) (1-based, each in 1..K, any order, repeats allowed); kappa NULL
 * means every κ = 1..K (nk must then be K). out is m x nk. One reverse pass over k
 * (O(mK + K nk)); workspace m doubles. NNFT_EDOM for a κ out of range. */
nnft_status nnft_wilson_local_ridge(const nnft_mat *lambda, const nnft_mat *phi, double sigma2,
                                    const size_t *kappa, size_t nk, nnft_mat *out);

/* Reduced GP in the eigenbasis (validation, physics.md §6): the GP whose kernel keeps the modes
 * k <= κ_j, with ridge[j], trained on n points on whose empirical measure the φ_k are
 * orthonormal (the Mercer modes of those points, target coefficients yk from them). Its
 * prediction at the points of phi_test (m x K) is
 *   out[i, j] = Σ_{k<=κ_j} φ_k(x_i) λ_k y_k / (λ_k + ridge[j]/n)
 * (K_κ(X,X) = n U_κ Λ U_κᵀ, so (K_κ + s I)⁻¹ is diagonal in the eigenbasis: no refactorisation per
 * κ). With κ = K and ridge σ² this is the full GP's posterior mean. ridge[j] >= 0 (a mode with
 * λ_k = ridge = 0 contributes nothing). One gemm: O(m K nk). out m x nk. */
nnft_status nnft_wilson_reduced(const nnft_mat *lambda, const nnft_mat *yk, size_t n,
                                const nnft_mat *phi_test, const size_t *kappa,
                                const double *ridge, size_t nk, nnft_mat *out);

/* Reduced GP with a per-point (input-dependent) ridge, i.e. a weighted likelihood: features
 * φ_k, k <= κ, with prior weights w ~ N(0, Λ_κ) and noise variance d_i at training point i:
 *   f(x) = Σ_{k<=κ} φ_k(x) λ_k^{1/2} v_k,  (I + B Bᵀ) v = B D^{-1/2} y,  B = Λ_κ^{1/2} Φ_κᵀ D^{-1/2}
 * (the weight-space form of K_κ(x,X)(K_κ(X,X) + D)⁻¹y; no orthonormality of φ on X needed, so it
 * also serves any feature map). phi_train n x K, y n x 1, d n x 1 (all > 0), phi_test m x K,
 * 1 <= kappa <= K, out m x 1. Workspace O(nκ + κ²); cost O(nκ² + κ³) per call. NNFT_EDOM for a
 * d_i <= 0. */
nnft_status nnft_wilson_reduced_weighted(const nnft_mat *lambda, const nnft_mat *phi_train,
                                         const nnft_mat *y, const nnft_mat *d,
                                         const nnft_mat *phi_test, size_t kappa, nnft_mat *out);

/* Per-mode Gaussianity of φ_k over the points of phi (n x K, n >= 2): excess kurtosis
 * m4/m2² − 3 of the centred values and tail weight, the fraction of points with
 * |φ_k − mean| > 3 sd (Gaussian: 0 and 0.0027). A mode with zero variance gets NaN for both.
 * kurt, tail K x 1 (either may be NULL). O(nK). */
nnft_status nnft_wilson_gaussianity(const nnft_mat *phi, nnft_mat *kurt, nnft_mat *tail);

/* Joint histogram of (φ_k(x_i), φ_l(x_i)) over the points of phi (k, l 1-based): out is
 * bins x bins, out[a, b] = number of points with φ_k in bin a and φ_l in bin b of the equal bins
 * of [lo, hi) (both axes); *outside (may be NULL) receives the number of points outside the
 * square. lo < hi finite, bins >= 1. O(n). */
nnft_status nnft_wilson_hist2d(const nnft_mat *phi, size_t k, size_t l, double lo, double hi,
                               nnft_mat *out, size_t *outside);

/* Power-law fit λ_k ≈ c k^{−(1+α)} over kmin <= k <= kmax (1-based, at least two modes) by least
 * squares of log λ_k on log k: *alpha = −slope − 1, *logc the intercept, *r2 the coefficient of
 * determination. The predicted learning-curve exponent (test MSE ∝ η^{−α/(1+α)} for a target
 * drawn from the prior, physics.md §6) is α/(1+α). NNFT_EDOM for a non-positive λ in range or a
 * bad range. O(kmax − kmin). */
nnft_status nnft_wilson_fit_power(const nnft_mat *lambda, size_t kmin, size_t kmax, double *alpha,
                                  double *logc, double *r2);

#endif
