/* nnft_vertex: the input-space vertex integrals of the [HMS] couplings (physics.md §4.1).
 *
 * For a one-hidden-layer network (physics.md §1.2, §2.3) write K_w := K − σ_b1² for the part of
 * the kernel carried by the hidden layer (σ_b1 = the readout bias, counted only if the readout
 * has one). With k(x,x') = [σ_b0²] + σ_w0² x·x'/d (σ_b0² only if layer 1 has a bias):
 *   relu       K_w = σ_w1² /(2π) [ s + (π − θ) c ],   c = k(x,x'), s = sqrt(max(k(x,x)k(x',x') − c², 0)),
 *              θ = atan2(s, c)           (= σ_w1²/(2π) sqrt(k k') [sin θ + (π − θ) cos θ])
 *   erf        K_w = (2σ_w1²/π) asin(2c / sqrt((1 + 2k(x,x))(1 + 2k(x',x'))))
 *   exp        K_w = σ_w1² exp((k(x,x) + k(x',x') + 2c)/2)
 *   gauss-net  K_w = σ_w1² exp(−σ_w0² |x − x'|²/(2d)) [· e^{−2σ_b0²} when layer 1 has no bias: the
 *              input normalisation uses σ_b0 regardless, as nnft_finite and the sampler do]
 *   cos-net    (plain: Gaussian frequencies, no amplitude) K_w = (σ_a²/2) exp(−σ_w0²|x − x'|²/(2d))
 * The vertex integral of a 4-tuple of inputs (physics.md §4.1),
 *   I4(Λ) = ∫_{[−Λ,Λ]^d} d^dx Π_{a=1}^4 K_w(x_a, x),
 * the weighted one I4x2(Λ) = ∫ |x|² Π K_w (for T2) and the pair integral I2(a,b) = ∫ K_w(x_a,x)K_w(x_b,x)
 * (for T_NL) are computed for d = 1, 2, 3 by one vector-valued adaptive cubature whose integrand
 * holds every requested tuple at once: at each node x the kernels K_w(x_j, x) of all input
 * points are evaluated once and the tuples are products of them.
 *
 * Cutoffs Λ_1 < Λ_2 < ... < Λ_m (the last may be +∞ when the integral converges: gauss-net and
 * cos-net; relu, erf and exp are refused) are done together: the box [−Λ_1,Λ_1]^d and then each
 * shell [−Λ_k,Λ_k]^d \ [−Λ_{k−1},Λ_{k−1}]^d (2d slabs) is integrated once and accumulated, so
 * I4(Λ_k) = I4(Λ_{k−1}) + shell_k and a grid of cutoffs costs what its largest one costs.
 * Every slab is split at the breakpoints of each coordinate: 0 always (the ReLU kernel with
 * σ_b0 = 0 has its kink there), and for the localised kernels (gauss-net, cos-net) the input
 * coordinates, a grid of spacing w = sqrt(d)/σ_w0 between the smallest and largest and a ladder
 * w·2^j (j = 0..5) outside them, so that no peak falls between nodes. Infinite intervals are
 * mapped to [0, 1) by x = a ± t/(1 − t). On each piece a tensor Gauss–Legendre rule (8, 6, 5
 * nodes per dimension for d = 1, 2, 3) is compared with the sum over the piece's 2^d halves;
 * the piece with the largest error relative to its tuple's running total is bisected next
 * (a global priority queue per shell, as in GSL's qag) until, for every tuple, the summed error
 * is below epsrel · max(|I(Λ_k)|, 1e-6 ∫|integrand|) — relative to the cumulative value, so
 * far shells that add nothing cost nothing. Error estimates are returned per tuple and cutoff.
 *
 * Cost: a few thousand nodes per slab for smooth kernels at d = 1 (126 tuples × 21 cutoffs of
 * the ReLU flow: milliseconds); more at d = 2, 3 where K_w has C² creases along x ∥ ±x_a.
 * Memory: about (3 nout + 10) doubles per live piece (nout = number of integrals), at most
 * max_boxes pieces; the pool grows by doubling, through nnft_alloc. */
#ifndef NNFT_VERTEX_H
#define NNFT_VERTEX_H

#include <stddef.h>

#include "nnft_arch.h"
#include "nnft_mat.h"
#include "nnft_status.h"

#define NNFT_VERTEX_MAX_D 3

typedef enum {
  NNFT_VK_RELU,
  NNFT_VK_ERF,
  NNFT_VK_EXP,
  NNFT_VK_GAUSSNET,
  NNFT_VK_COSNET
} nnft_vertex_kind;

/* The scalar kernel K_w of a one-hidden-layer architecture, with its constants unpacked. */
typedef struct nnft_vertex_kernel {
  nnft_vertex_kind kind;
  size_t d;
  double sw0, sb0;  /* layer 1: σ_w0, and σ_b0 as it enters k (0 without a bias) */
  double sb0_norm;  /* gauss-net: σ_b0 of the layer whatever the bias (input normalisation) */
  double amp;       /* prefactor: σ_w1² (relu, exp, gauss-net: times e^{−2σ_b0²} without bias),
                       2σ_w1²/π (erf), σ_a²/2 (cos-net) */
  double sb1sq;     /* σ_b1² of the readout (0 without a bias): K = sb1sq + K_w */
  int kinked;       /* relu with σ_b0 = 0: kinks at x = 0 */
  int localised;    /* gauss-net, cos-net: K_w → 0 at infinity, Λ = ∞ allowed */
} nnft_vertex_kernel;

/* Unpack a's kernel. NNFT_EDOM (with *why, may be NULL, a static English reason) unless a is a
 * valid one-hidden-layer network (nlayers = 2) with zero parameter means, 1 <= d_in <= 3, and a
 * hidden activation relu, erf, exp, gauss-net or a plain cos-net. */
nnft_status nnft_vertex_kernel_init(const nnft_arch *a, nnft_vertex_kernel *k, const char **why);

/* K_w(x, y) for d-vectors x, y (either order: K_w is symmetric). O(d). */
double nnft_vertex_kw(const nnft_vertex_kernel *k, const double *x, const double *y);

typedef struct nnft_vertex_opts {
  double epsrel;    /* relative accuracy per integral (default 1e-9) */
  size_t max_boxes; /* pieces alive per shell before giving up (default 200000; the pool
                       starts at 1024 and doubles as needed) */
} nnft_vertex_opts;

nnft_vertex_opts nnft_vertex_defaults(void);

/* Check a cutoff list: m >= 1, every Λ > 0, strictly increasing, finite except possibly the last
 * = +∞, which needs a localised kernel. NNFT_EDOM with *why otherwise. */
nnft_status nnft_vertex_check_cutoffs(const nnft_vertex_kernel *k, const double *Lambda, size_t m,
                                      const char **why);

/* I4 (ntuples x m): I4[t, c] = ∫_{[−Λ_c,Λ_c]^d} Π_{a<4} K_w(x_{idx[4t+a]}, x) d^dx for the rows
 * of X (n_pts x d, finite) and the 0-based 4-tuples idx (any order, repeats allowed, each index
 * < n_pts). err (may be NULL) gets the estimated absolute errors, same shape. opts NULL =
 * defaults. Errors: those of nnft_vertex_kernel_init and nnft_vertex_check_cutoffs (NNFT_EDOM),
 * NNFT_EDIM for shapes, NNFT_EDOM for an index out of range, NNFT_ENONFINITE for NaN/Inf in X or an
 * integral that overflows (exp-net at large Λ), NNFT_ENOCONV when epsrel was not reached within
 * max_boxes (out then holds the best estimates and err says how good), NNFT_ENOMEM, NNFT_EINTR. */
nnft_status nnft_vertex_i4(const nnft_arch *a, const nnft_mat *X, const size_t *idx,
                           size_t ntuples, const double *Lambda, size_t m,
                           const nnft_vertex_opts *opts, nnft_mat *out, nnft_mat *err);

/* The basis of the non-local fit (physics.md §4.1) at one cutoff Λ (may be ∞ as above), per
 * 4-tuple (a,b,c,d) = idx[4t..4t+3]:
 *   T0 = 24 ∫ Π K_w,   T2 = 24 ∫ |x|² Π K_w,
 *   T_NL = 8 [I2(a,b) I2(c,d) + I2(a,c) I2(b,d) + I2(a,d) I2(b,c)],  I2(a,b) = ∫ K_w(x,x_a)K_w(x,x_b)
 * T0, T2, TNL are ntuples x 1. Errors as nnft_vertex_i4. */
nnft_status nnft_vertex_basis(const nnft_arch *a, const nnft_mat *X, const size_t *idx,
                              size_t ntuples, double Lambda, const nnft_vertex_opts *opts,
                              nnft_mat *T0, nnft_mat *T2, nnft_mat *TNL);

/* The Gauss-net closed form on the whole space (physics.md §4.1), general σ's:
 *   I4 = amp⁴ (π d/(2σ_w0²))^{d/2} exp(−(σ_w0²/(2d)) (Σ|x_a|² − |Σ x_a|²/4))
 * (amp = σ_w1² with a bias in layer 1; = [HMS]'s σ_W⁸ prefactor for σ_w0 = σ_w1 = σ_W), for the
 * gauss-net and the plain cos-net (amp = σ_a²/2). out is ntuples x 1. NNFT_EDOM for another kernel. */
nnft_status nnft_vertex_i4_closed(const nnft_arch *a, const nnft_mat *X, const size_t *idx,
                                  size_t ntuples, nnft_mat *out);

/* The six-point diagram sum of physics.md §4.1 for every sorted 6-tuple of n_pts inputs:
 *   S6[t] = Σ_{15 splits (abcd|ef)} I4(x_a,x_b,x_c,x_d) K(x_e,x_f)
 * from I4all (C(n_pts+3,4) x 1: the I4 of every sorted 4-tuple in nnft_corr order, at one
 * cutoff) and the full kernel K (n_pts x n_pts, K = σ_b1² + K_w). Then ΔG6 = −24 λ S6.
 * S6 is C(n_pts+5,6) x 1. NNFT_EDIM for shapes. O(15 · 6 n) per tuple. */
nnft_status nnft_vertex_six(size_t n_pts, const nnft_mat *I4all, const nnft_mat *K, nnft_mat *S6);

/* The full kernel matrix K(x_i, x_j) = σ_b1² + K_w of the rows of X (n_pts x n_pts). */
nnft_status nnft_vertex_kmatrix(const nnft_arch *a, const nnft_mat *X, nnft_mat *K);

#endif
