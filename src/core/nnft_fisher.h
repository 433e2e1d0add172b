/* nnft_fisher: Fisher information metrics of a network for Gaussian regression (physics.md §7.1),
 * the Fisher of a Gaussian-process family on its hyperparameters, distinguishability and the
 * Gaussian KL divergence. [HKMS] arXiv:2405.17538.
 *
 * Convention (physics.md §7.1: the per-example mean, as in the BRG authors' numerics, so that
 * their cutoffs Λ are in these units with σ_ε = 1):
 *   I = (1/(n σ_ε²)) Σ_a J_aᵀ J_a + ε 1,   J_a = ∇_θ f_θ(x_a)
 * over the trainable (non-frozen) parameters only, in the parameterisation of the net (standard
 * or NTK: nnft_net.h; the metric depends on it). ε >= 0 is the optional damping.
 *
 * Forms (what the object holds and which metric its operations use):
 *   GRAM   G = J Jᵀ (n x n), computed layer by layer as Σ_l ws_l² (D_l D_lᵀ) ⊙ (H_l H_lᵀ)
 *          + bs_l² D_l D_lᵀ from the per-layer signals of nnft_net_signals (backward signals D
 *          times forward activations H) without forming J. The non-zero spectrum of I − ε1 is
 *          that of G/(n σ_ε²); eigenvectors map back as v = Jᵀu / sqrt(μ) (μ the eigenvalue of
 *          G), with Jᵀu computed layer by layer. Exact metric.  Memory O(n² + n Σ widths).
 *   DENSE  the P x P matrix (dsyrk on J). Exact. Memory O(P² + nP): refused beyond max_bytes.
 *   DIAG   the diagonal I_ii only (mvp and eigen use the diagonal metric). Memory O(P + n Σw).
 *   BLOCK  one dense block per trainable layer (weights and bias of the layer), the rest zero
 *          (mvp and eigen use the block-diagonal metric). Memory O(Σ_l P_l²).
 * Every form also keeps the per-layer signals (or, for an amplitude cos-net with trainable
 * frequencies, whose Jacobian is not of the signal form, J itself), so J v, Jᵀ u, the Gram matrix
 * and the diagonal are available in every form. */
#ifndef NNFT_FISHER_H
#define NNFT_FISHER_H

#include <stddef.h>

#include "nnft_mat.h"
#include "nnft_net.h"
#include "nnft_status.h"

typedef enum { NNFT_FISHER_GRAM, NNFT_FISHER_DENSE, NNFT_FISHER_DIAG, NNFT_FISHER_BLOCK } nnft_fisher_form;

/* Name ("gram", "dense", "diag", "block") and reverse lookup (-1 if unknown). */
const char *nnft_fisher_form_name(nnft_fisher_form f);
int nnft_fisher_form_lookup(const char *name);

typedef struct nnft_fisher_layer {
  size_t layer;           /* index of the layer in the architecture (0-based) */
  size_t fan_in, fan_out;
  size_t toff;            /* offset of its W in the trainable vector (b follows W) */
  size_t count;           /* its parameters: fan_out fan_in (+ fan_out with a bias) */
  int has_bias;
  double ws, bs;          /* parameterisation scales (nnft_net.h) */
  double *H;              /* n x fan_in, ld n: layer input (times A(b_j) for a cos-net readout) */
  double *D;              /* n x fan_out, ld n: backward signal ∂f/∂z^l */
} nnft_fisher_layer;

typedef struct nnft_fisher {
  nnft_fisher_form form;
  size_t n, P;            /* Fisher inputs, trainable parameters */
  double sigma, damping;  /* σ_ε > 0, ε >= 0 */
  double scale;           /* 1/(n σ_ε²) */
  size_t nl;              /* trainable layers (signals), 0 when J is held instead */
  nnft_fisher_layer L[NNFT_MAX_LAYERS];
  double *J;              /* n x P (ld n) explicit Jacobian, or NULL (signals used) */
  nnft_mat gram;          /* GRAM: G = J Jᵀ, n x n (undamped, unscaled); else unallocated */
  nnft_mat dense;         /* DENSE: I (scaled, damped), P x P; else unallocated */
  nnft_mat block[NNFT_MAX_LAYERS]; /* BLOCK: layer blocks of I (scaled, damped) */
  double *diag;           /* P: diag(I) (scaled, damped), every form */
} nnft_fisher;

/* Bytes nnft_fisher_compute will hold for this net, n inputs and form (checked: NNFT_EOVERFLOW).
 * The binding compares it with its memory limit before computing. */
nnft_status nnft_fisher_bytes(const nnft_net *net, size_t n, nnft_fisher_form form, size_t *bytes);

/* Compute the Fisher metric of net at its current θ on the inputs X (n x d_in, n >= 1) with noise
 * sigma > 0 and damping >= 0 (NNFT_EDOM otherwise; NNFT_EDOM too when the net has no trainable
 * parameters; NNFT_EDIM for X of the wrong width; NNFT_ENONFINITE for NaN/Inf in X, θ or the
 * result). Refuses with NNFT_ENOMEM, before allocating, when nnft_fisher_bytes exceeds max_bytes
 * (0: no limit). *F owns everything afterwards (nnft_fisher_free); on failure *F holds nothing.
 * Cost: signals O(n P); GRAM O(n² Σ_l (fan_in + fan_out)); DENSE O(n P²); DIAG O(n P);
 * BLOCK O(n Σ_l P_l²). Polls the interrupt flag. */
nnft_status nnft_fisher_compute(const nnft_net *net, const nnft_mat *X, double sigma,
                                double damping, nnft_fisher_form form, size_t max_bytes,
                                nnft_fisher *F);
/* Release; NULL and a zeroed struct are fine. */
void nnft_fisher_free(nnft_fisher *F);

/* out = J v (v: P, out: n), layer by layer. Workspace n max(width). */
nnft_status nnft_fisher_jv(const nnft_fisher *F, const double *v, double *out);
/* out = Jᵀ u (u: n, out: P), layer by layer. Workspace n max(width). */
nnft_status nnft_fisher_jtu(const nnft_fisher *F, const double *u, double *out);
/* out = I v with the metric of the form (GRAM: (1/(nσ²)) Jᵀ(J v) + ε v; DENSE: the matrix;
 * DIAG: diag ⊙ v; BLOCK: block by block). out must not alias v. */
nnft_status nnft_fisher_mvp(const nnft_fisher *F, const double *v, double *out);
/* The n x n Gram matrix G = J Jᵀ (undamped, unscaled) into g (copied in the GRAM form, computed
 * from the signals otherwise). */
nnft_status nnft_fisher_gram(const nnft_fisher *F, nnft_mat *g);

/* The k largest eigenpairs of the form's metric, descending: values (length k) and, if V is not
 * NULL, orthonormal eigenvectors in V's first columns (V is P x k). *found receives how many:
 * k, except in the GRAM form, which returns only the non-zero spectrum (eigenvalues μ of G above
 * the rank tolerance max(n,P) ε_mach μ_max; at most n): values scale μ + ε, vectors Jᵀu/sqrt(μ).
 * DIAG: the sorted diagonal with unit vectors; BLOCK: the merged block spectra, vectors zero
 * outside their block. NNFT_EDOM if k > P (or k > n in the GRAM form). */
nnft_status nnft_fisher_eigen(const nnft_fisher *F, size_t k, double *values, nnft_mat *V,
                              size_t *found);

/* Numerical rank of the undamped metric of the form: eigenvalues above max(n,P) ε_mach λ_max.
 * GRAM and DENSE give rank(J) <= min(n, P). */
nnft_status nnft_fisher_rank(const nnft_fisher *F, size_t *rank);

/* Distinguishability D ≈ ½ δθᵀ I δθ (physics.md §7.1) with the form's metric. */
nnft_status nnft_fisher_distance(const nnft_fisher *F, const double *dtheta, double *d);

/* Kullback–Leibler divergence D_KL(N(mu1, S1) ‖ N(mu2, S2)) =
 *   ½ [tr(S2⁻¹ S1) + (mu2 − mu1)ᵀ S2⁻¹ (mu2 − mu1) − k + log det S2 − log det S1]
 * (mu: k x 1, S: k x k symmetric positive definite; NNFT_ENOTPD otherwise). O(k³). */
nnft_status nnft_fisher_kl(const nnft_mat *mu1, const nnft_mat *S1, const nnft_mat *mu2,
                           const nnft_mat *S2, double *kl);

/* Fisher metric of a zero-mean Gaussian family N(0, C(η)) on its hyperparameters η
 * (physics.md §7.1): I_ij = ½ tr(C⁻¹ ∂_iC C⁻¹ ∂_jC), given C (n x n, SPD) and its m derivatives
 * dC[i] (n x n symmetric). I is m x m. O(m n³ + m² n²); workspace (m + 1) n². */
nnft_status nnft_fisher_gp(const nnft_mat *C, const nnft_mat *const *dC, size_t m, nnft_mat *I);

#endif
