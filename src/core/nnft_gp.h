/* nnft_gp: Gaussian-process regression on kernel matrices (physics.md §5.1) and the maximisation
 * of its log marginal likelihood over hyperparameters.
 *
 * With C = K(X,X) + (σ² + δ) I, L = chol(C) (δ: the jitter actually needed, usually 0) and
 * targets y (n x k: k independent outputs sharing the kernel, e.g. one column per class):
 *   α            = C⁻¹ y                                    (n x k)
 *   mean(x*)     = K(x*,X) α
 *   cov(x*,x*')  = K(x*,x*') − V(x*)ᵀ V(x*'),  V(x*) = L⁻¹ K(X,x*)
 *   log p(y|X)   = Σ_c [ −½ y_cᵀ α_c − Σ_i log L_ii − (n/2) log 2π ]   (summed over the k columns)
 * The jitter policy is the one of nnft_linalg_chol (physics.md §5.1): the first factorisation is
 * plain; if it fails, δ starts at 1e-10 mean(diag C) and grows ×10 per try; the δ used is kept in
 * the nnft_gp and enters the mean, the covariance and the likelihood (it is part of C).
 *
 * Everything here works on matrices, so any kernel works: nnft_gp_fit takes K(X,X), the
 * predictions take K(X*,X) and K(X*,X*) (or its diagonal). nnft_gp_predict_kernel evaluates an
 * nnft_kernel in row blocks so that K(X*,X) never needs to exist whole.
 *
 * Memory: an nnft_gp holds n² + n(k + 1) doubles. The factor is computed in place: the strictly
 * upper triangle of gp->L keeps K(X,X) (the factorisation reads only the upper triangle and the
 * diagonal, kept in gp->kdiag), which lets a jittered retry start again without a second n x n
 * copy. Allocation goes through nnft_alloc; workspaces are freed before returning. */
#ifndef NNFT_GP_H
#define NNFT_GP_H

#include <stddef.h>

#include "nnft_kernel.h"
#include "nnft_linalg.h"
#include "nnft_mat.h"
#include "nnft_status.h"

typedef struct nnft_gp_opts {
  int jitter;    /* 1 (default): the jitter policy on failure; 0: a failed factorisation is final */
  int max_tries; /* jittered attempts, 1..30 (default 6: δ up to 1e-5 mean(diag C)) */
} nnft_gp_opts;

/* {jitter = 1, max_tries = 6}. */
nnft_gp_opts nnft_gp_defaults(void);

typedef struct nnft_gp {
  size_t n, k;     /* training points, target columns */
  nnft_mat L;      /* n x n: lower triangle L = chol(K + (noise + jitter) I); strictly upper
                      triangle: K(X,X) */
  nnft_mat alpha;  /* n x k: C⁻¹ y */
  nnft_mat kdiag;  /* n x 1: K(x_i, x_i) */
  double noise;    /* σ² */
  double jitter;   /* δ added on top of σ² (0 if none was needed) */
  double logdet;   /* log det C = 2 Σ log L_ii */
  double quad;     /* Σ_c y_cᵀ α_c */
  double logml;    /* log marginal likelihood, summed over the k columns */
  int fitted;      /* 1 after a successful fit */
} nnft_gp;

/* Allocate the storage of a GP with n training points and k target columns (n, k >= 1).
 * *gp is zeroed first, so nnft_gp_free is safe after a failure. NNFT_ENOMEM, NNFT_EOVERFLOW. */
nnft_status nnft_gp_alloc(size_t n, size_t k, nnft_gp *gp);
/* Release the storage; NULL and a zeroed nnft_gp are fine. */
void nnft_gp_free(nnft_gp *gp);

/* Fit: K (n x n, symmetric: checked as nnft_linalg does, NNFT_EDOM if not), y (n x k), noise
 * σ² >= 0 and finite. Copies K into gp->L and calls nnft_gp_factor. gp from nnft_gp_alloc(n, k).
 * K must not share storage with gp. Errors: NNFT_EDIM (shapes), NNFT_EDOM (noise < 0, asymmetric
 * K), NNFT_ENONFINITE (NaN/Inf in K or y), NNFT_ENOTPD (diag filled: smallest and largest
 * eigenvalue of K + σ² I, the last jitter tried), NNFT_EINTR. O(n³/3 + n² k). */
nnft_status nnft_gp_fit(const nnft_mat *K, const nnft_mat *y, double noise,
                        const nnft_gp_opts *opts, nnft_gp *gp, nnft_linalg_diag *diag);

/* Fit in place: gp->L must hold K(X,X) in its upper triangle and diagonal (e.g. written there
 * by nnft_kernel_matrix; the lower triangle is ignored). Saves the diagonal in gp->kdiag,
 * factors with the jitter policy, solves for α, computes the likelihood. Checks finiteness of
 * the triangle read and of y, but not symmetry (only one triangle is read). On failure
 * gp->fitted = 0 and the lower triangle is unspecified (the upper one still holds K). */
nnft_status nnft_gp_factor(const nnft_mat *y, double noise, const nnft_gp_opts *opts,
                           nnft_gp *gp, nnft_linalg_diag *diag);

/* Posterior mean (m x k) = Ks α for Ks = K(X*, X) (m x n). O(m n k). */
nnft_status nnft_gp_mean(const nnft_gp *gp, const nnft_mat *Ks, nnft_mat *mean);

/* Posterior variance (m x 1): var_i = kss_i − |L⁻¹ Ks_iᵀ|², kss = diag K(X*, X*) (m x 1),
 * clamped at 0 (a negative value is rounding: at a training point with σ² → 0 the exact value
 * is 0). Blocks of b = max(64, 2^20/n) rows of Ks are transposed into a workspace (n x b
 * doubles) and solved with dtrsm. var may be kss itself.
 * O(m n²). */
nnft_status nnft_gp_var(const nnft_gp *gp, const nnft_mat *Ks, const nnft_mat *kss,
                        nnft_mat *var);

/* Posterior covariance (m x m) = Kss − (Ks L⁻ᵀ)(Ks L⁻ᵀ)ᵀ, Kss = K(X*, X*) (m x m, symmetric;
 * its lower triangle is read). cov may be Kss itself (same storage), otherwise must not overlap
 * it. Not clamped. Workspace m x n doubles. O(m n² + m² n). */
nnft_status nnft_gp_cov(const nnft_gp *gp, const nnft_mat *Ks, const nnft_mat *Kss,
                        nnft_mat *cov);

/* Predictions through a kernel: Xs (m x d) are the new points, X (n x d) the training points the
 * GP was fitted on with kernel kern. mean (m x k) is required; var (m x 1) and cov (m x m) may be
 * NULL (cov takes precedence if both are given: var is then its clamped diagonal). K(X*,X) is
 * evaluated in row blocks (at most 2^22 doubles each) unless cov is wanted (then whole).
 * Errors of nnft_kernel_matrix pass through. */
nnft_status nnft_gp_predict_kernel(const nnft_gp *gp, const nnft_kernel *kern, const nnft_mat *X,
                                   const nnft_mat *Xs, nnft_mat *mean, nnft_mat *var,
                                   nnft_mat *cov);

/* ---- hyperparameters: maximise log p(y | X, θ, σ²) ---- */

/* A kernel family: write K(X, X; θ) for the p parameters θ (all > 0) into K (n x n) — at least
 * its upper triangle and diagonal. Returns NNFT_OK or a status that aborts the optimisation
 * and is returned by it. */
typedef nnft_status (*nnft_gp_kernel_fn)(void *ctx, const double *theta, nnft_mat *K);

typedef enum {
  NNFT_GP_BFGS, /* gsl_multimin_fdfminimizer_vector_bfgs2 (default) */
  NNFT_GP_CG,   /* gsl_multimin_fdfminimizer_conjugate_pr */
  NNFT_GP_NM    /* gsl_multimin_fminimizer_nmsimplex2 (no gradients) */
} nnft_gp_method;

typedef struct nnft_gp_optimize_opts {
  nnft_gp_method method;
  int fit_noise;    /* 1 (default): σ² is free; 0: fixed at its start value */
  int max_iter;     /* default 200 */
  double gtol;      /* BFGS/CG: stop when |∇ log p| <= gtol · n · k (w.r.t. log-parameters);
                       default 1e-5 */
  double xtol;      /* NM: stop when the simplex size (log-parameter units) <= xtol; 1e-4 */
  double step;      /* first step / simplex size in log-parameter units; default 0.1 */
  double fd_step;   /* central-difference step h in log θ for ∂K/∂θ; default 1e-4 */
  nnft_gp_opts fit; /* jitter policy for every factorisation */
} nnft_gp_optimize_opts;

/* {BFGS, fit_noise = 1, max_iter = 200, gtol = 1e-5, xtol = 1e-4, step = 0.1, fd_step = 1e-4,
 *  fit = nnft_gp_defaults()}. */
nnft_gp_optimize_opts nnft_gp_optimize_defaults(void);

typedef struct nnft_gp_optimize_result {
  double logml;     /* at the optimum */
  double grad_norm; /* |∇ log p| there (log-parameters; NaN for NM) */
  double jitter;    /* jitter of the last factorisation at the optimum */
  int iterations;   /* minimiser iterations */
  int evaluations;  /* likelihood evaluations (kernel builds: 1 + 2p more with a gradient) */
  int converged;    /* 1 if the tolerance was met; 0: max_iter reached or no further progress */
} nnft_gp_optimize_result;

/* log p and its gradient with respect to (log σ², log θ_1, ..., log θ_p):
 *   ∂ log p / ∂ log s = (s/2) tr((Σ_c α_c α_cᵀ − k C⁻¹) ∂C/∂s),
 * with ∂C/∂σ² = I in closed form and ∂K/∂ log θ_j by the central difference
 * (K(θ_j e^h) − K(θ_j e^{−h}))/(2h), h = fd_step (error O(h²)). params = (σ², θ_1..θ_p) with
 * σ² >= 0 and θ_j > 0 (at σ² = 0 the noise component, σ² ∂/∂σ², is 0). grad (1 + p) may be
 * NULL (then only log p: one kernel build and one factorisation). Workspaces 2 n² + n(k+1)
 * doubles (n² + n(k+1) when p = 0). Errors: those of the kernel function, nnft_gp_factor (NNFT_ENOTPD with diag). */
nnft_status nnft_gp_logml_grad(nnft_gp_kernel_fn fn, void *ctx, size_t n, size_t p,
                               const nnft_mat *y, const double *params, double fd_step,
                               const nnft_gp_opts *fit, double *logml, double *grad,
                               nnft_linalg_diag *diag);

/* Maximise log p over log σ² (if opts->fit_noise) and log θ_1..θ_p with GSL multimin, starting
 * from params = (σ², θ_1..θ_p) (all > 0), which receives the optimum. A non-positive-definite C
 * at a trial point (beyond the jitter policy) ends the search with NNFT_ENOTPD (diag filled).
 * Polls the interrupt flag per iteration (NNFT_EINTR; params then hold the best point so far).
 * NNFT_EDOM for non-positive start values or bad options; NNFT_ENOMEM. */
nnft_status nnft_gp_optimize(nnft_gp_kernel_fn fn, void *ctx, size_t n, size_t p,
                             const nnft_mat *y, const nnft_gp_optimize_opts *opts,
                             double *params, nnft_gp_optimize_result *res,
                             nnft_linalg_diag *diag);

#endif
