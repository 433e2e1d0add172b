/* nnft_nngp: the infinite-width kernels of an architecture — the NNGP kernel K^{L+1} and the
 * neural tangent kernel Θ^{L+1} of physics.md §2.1–2.3, for any depth, per-layer σ_w, σ_b and
 * activation, both parameterisations. docs/api/nngp.md has the physics and the conventions.
 *
 * NNGP (physics.md §2.1). For hidden layers l = 1..L with activations σ_l and the layers' σ_w, σ_b
 * (σ_b counts only where the layer has a bias):
 *   K^1(x,x')     = σ_b1² + σ_w1² x·x'/d
 *   K^{l+1}(x,x') = σ_b,l+1² + σ_w,l+1² V_l(Σ^l),   V_l(Σ) = E_{(u,v)~N(0,Σ)}[σ_l(u) σ_l(v)],
 *   Σ^l = [[K^l(x,x), K^l(x,x')], [K^l(x,x'), K^l(x',x')]],  f = z^{L+1}: the kernel is K^{L+1}.
 * An architecture with no hidden layer (nlayers = 1, a linear model) has K = K^1.
 *
 * NTK. With V̇_l(Σ) = E[σ_l'(u) σ_l'(v)] and n_l the width of hidden layer l (n_0 = d), the tangent
 * kernel Θ = Σ_θ ∂f(x)/∂θ ∂f(x')/∂θ over the trainable parameters (frozen layers contribute no term
 * of their own) obeys
 *   Θ^1 = T^1,   Θ^{l+1} = T^{l+1} + σ_w,l+1² V̇_l(Σ^l) Θ^l,
 * where T^l is the contribution of layer l's own parameters (0 for a frozen layer):
 *   NTK parameterisation (z = σ_b b + (σ_w/√n_{l−1}) W h, W, b ~ N(0,1); nnft_net.h):
 *     T^l = K^l, i.e. T^1 = σ_b1² + σ_w1² x·x'/d, T^{l+1} = σ_b² + σ_w² V_l —
 *     Jacot et al.'s NTK, the N → ∞ limit of the empirical NTK J Jᵀ (physics.md §2.1 verbatim).
 *   standard parameterisation (z = b + W h, W ~ N(0, σ_w²/n_{l−1}), gradients w.r.t. W, b as drawn):
 *     T^1 = [bias] + x·x',  T^{l+1} = [bias] + n_l V_l  ([bias] = 1 if the layer has one, else 0).
 *   This Θ grows with the widths (its weight terms are n_l times the NNGP's): it is the mean
 *   empirical NTK at initialisation to leading order in 1/n — exactly, for one hidden layer — and
 *   depends on the architecture's widths, which the NNGP does not.
 *
 * Gaussian expectations (physics.md §2.2), with q1 = Σ11, q2 = Σ22, c = Σ12:
 *   linear   V = c, V̇ = 1
 *   relu     V = sqrt(q1 q2)/(2π) [sin θ + (π − θ) cos θ], V̇ = (π − θ)/(2π),
 *            θ = atan2(sqrt(max(q1 q2 − c², 0)), c)     (arc-cosine kernels of order 1 and 0)
 *   step     V = (π − θ)/(2π), V̇ = 0                     (σ' = 0 almost everywhere)
 *   erf      V = (2/π) asin(2c / sqrt((1 + 2q1)(1 + 2q2))), V̇ = (4/π)/sqrt((1+2q1)(1+2q2) − 4c²)
 *   exp      V = V̇ = exp((q1 + q2 + 2c)/2)
 *   sin      V = ½ [e^{−(q1+q2−2c)/2} − e^{−(q1+q2+2c)/2}], V̇ = the cos formula
 *   cos      V = ½ [e^{−(q1+q2−2c)/2} + e^{−(q1+q2+2c)/2}], V̇ = the sin formula
 *            (a deterministic argument: for the random phase of a cos-net see below)
 *   tanh, sigmoid, gelu, softplus, custom: two-dimensional Gauss–Hermite quadrature on the
 *            Cholesky factor of Σ, u = √q1 z1, v = (c/√q1) z1 + sqrt(max(q2 − c²/q1, 0)) z2,
 *            with u the variable of smaller variance (this makes the rule exactly symmetric,
 *            K(x,x') = K(x',x)), quad_order nodes per dimension (the derivative kernel likewise, with σ'; a custom
 *            activation without a derivative uses the central difference of nnft_net.h).
 *   With q1 = 0 or q2 = 0 (an input with zero variance: x = 0 without bias) the closed forms are
 *   continued by the exact degenerate expectation (relu, step: σ(0) = 0, σ'(0) = 0).
 * One-hidden-layer special networks (physics.md §2.3):
 *   gauss-net  V = exp(½(k11 + k22 + 2 k12) − s(x) − s(x')), s(x) = σ_b1² + σ_w1² |x|²/d (the
 *              input normalisation as the sampler applies it, with σ_b1 even without a bias);
 *              V̇ = V (σ' = σ). With a bias, K = σ_b2² + σ_w2² exp(−σ_w1² |x − x'|²/(2d)).
 *   cos-net    plain (Gaussian frequencies b ~ N(0, σ_w²/d), random phase): V = ½ exp(−σ_w²
 *              |x − x'|²/(2d)), K = [σ_b2²] + σ_a² V. Generalised (ball of radius R, amplitude
 *              A(b), mass m): K = [σ_b2²] + G_1(|x − x'|), the free cutoff propagator
 *              (nnft_freeprop, d <= 3). Without phases (layer 1 without bias, C API only) the
 *              x + x' term joins: V = ½ [g(x − x') + g(x + x')]. NTK: Gaussian frequencies only
 *              (phases count as a bias whose T^1 term is 1 in both parameterisations;
 *              frequencies as first-layer weights).
 *
 * Requirements (nnft_nngp_check): a valid architecture (nnft_arch_check) whose parameter means
 * are all zero; for the NTK not a generalised cos-net; for a generalised cos-net d <= 3 and a mass
 * for which the propagator converges (m > 0 unless d = 3).
 *
 * Evaluation. Per point, the diagonal recursion q^l(x) = K^l(x,x) first (n L values); then every
 * pair runs the off-diagonal recursion through all layers on its own, starting from x·x' (summed
 * in coordinate order for every pair and every norm alike, so that a row repeated in X and Y gives
 * exactly the diagonal value, and the general path at Y = X the symmetric one). Pairs are processed in tiles of NNFT_NNGP_TILE x
 * NNFT_NNGP_TILE, in parallel with OpenMP for built-in activations (custom ones run on one thread)
 * and polling the interrupt flag per tile; every value is computed by the same code whatever the
 * thread count, so results are bit-identical for any number of threads. The symmetric path
 * (Y = NULL) evaluates the tiles on and above the diagonal and mirrors them, and takes the
 * diagonal from the diagonal recursion, so K(X,X) is exactly symmetric and its diagonal equals
 * nnft_nngp_diag bit for bit. Cost: O(n m d) for x·x' plus O(n m L) closed-form evaluations,
 * or O(n m L q²) activation evaluations (q = quad_order) for quadrature. No BLAS is called.
 * Allocation: O((n + m) L) doubles plus one tile workspace per thread, through nnft_alloc. */
#ifndef NNFT_NNGP_H
#define NNFT_NNGP_H

#include <stddef.h>

#include "nnft_arch.h"
#include "nnft_mat.h"
#include "nnft_status.h"

#define NNFT_NNGP_QUAD_DEFAULT 32 /* Gauss–Hermite nodes per dimension when quad_order = 0 */
#define NNFT_NNGP_QUAD_MAX 256    /* largest quad_order accepted */
#define NNFT_NNGP_TILE 32         /* pairs per tile side */

/* ---- Gauss–Hermite rules for the standard normal ---- */

/* E[g(z)] ≈ Σ_k w[k] g(z[k]) for z ~ N(0, 1), exact for polynomials of degree <= 2n − 1
 * (probabilists' Gauss–Hermite; nodes ascending, weights summing to 1). */
typedef struct nnft_gh_rule {
  size_t n;
  double *z, *w; /* n each, owned (nnft_alloc) */
} nnft_gh_rule;

/* Nodes and weights by the Golub–Welsch eigenproblem of the Jacobi matrix (LAPACK dstev), each
 * node polished by Newton steps on the orthonormal recurrence. 2 <= n <= NNFT_NNGP_QUAD_MAX
 * (NNFT_EDOM otherwise), NNFT_ENOMEM; *r holds nothing to free on failure. O(n²). */
nnft_status nnft_gh_rule_alloc(size_t n, nnft_gh_rule *r);
void nnft_gh_rule_free(nnft_gh_rule *r); /* NULL and a zeroed rule are fine */

/* ---- the Gaussian expectations V, V̇ of one activation ---- */

typedef enum {
  NNFT_NNGP_AUTO,      /* closed form where the header lists one, else quadrature */
  NNFT_NNGP_QUADRATURE /* Gauss–Hermite for every activation (to check the closed forms) */
} nnft_nngp_method;

/* *V = E[σ(u)σ(v)] and, if Vd != NULL, *Vd = E[σ'(u)σ'(v)] for (u,v) ~ N(0, [[q1,c],[c,q2]])
 * (q1, q2 >= 0, c² <= q1 q2 up to rounding: larger |c| is clamped by the formulas). act is any
 * activation except GAUSSNET (which needs the inputs: see the header); custom is used for
 * NNFT_ACT_CUSTOM (may be NULL otherwise); gh is needed for quadrature (may be NULL when a closed
 * form is used). NNFT_EDOM for a bad activation, q1 or q2 < 0 or non-finite arguments, or a
 * missing rule or callback. */
nnft_status nnft_nngp_expect(nnft_act act, const nnft_custom_act *custom, double q1, double q2,
                             double c, nnft_nngp_method method, const nnft_gh_rule *gh,
                             double *V, double *Vd);

/* ---- kernels of an architecture ---- */

typedef struct nnft_nngp_opts {
  int ntk;                 /* 0: NNGP K^{L+1}; 1: NTK Θ^{L+1} (header comment) */
  int quad_order;          /* Gauss–Hermite nodes per dimension; 0 = NNFT_NNGP_QUAD_DEFAULT */
  int threads;             /* OpenMP threads; <= 0 = the OpenMP default (1 for custom acts) */
  nnft_nngp_method method; /* NNFT_NNGP_AUTO, or quadrature even where a closed form exists */
} nnft_nngp_opts;

/* {ntk = 0, quad_order = 0, threads = 0, method = AUTO}. */
nnft_nngp_opts nnft_nngp_defaults(void);

/* NNFT_OK if the kernel of a can be evaluated (the Requirements of the header comment) with
 * these options (quad_order 0 or 2 .. NNFT_NNGP_QUAD_MAX); otherwise NNFT_EDOM/NNFT_EDIM with
 * *why (may be NULL) a static English reason. */
nnft_status nnft_nngp_check(const nnft_arch *a, const nnft_nngp_opts *o, const char **why);

/* out (n x m) = K(X, Y) or Θ(X, Y): X is n x d_in, Y is m x d_in (rows are points); Y == NULL
 * means Y = X and takes the symmetric path. out must not overlap X or Y. Errors: those of
 * nnft_nngp_check, NNFT_EDIM for shapes, NNFT_ENONFINITE for NaN/Inf in X or Y (checked before
 * anything is computed) or for a kernel value that overflowed (out is then unspecified),
 * NNFT_ENOMEM, NNFT_EINTR (out partly written), NNFT_ENOCONV from the cos-net propagator. */
nnft_status nnft_nngp_eval(const nnft_arch *a, const nnft_nngp_opts *o, const nnft_mat *X,
                           const nnft_mat *Y, nnft_mat *out);

/* out (n x 1) = K(x_i, x_i) or Θ(x_i, x_i) for the rows of X, without the pairs. O(n (d + L q)). */
nnft_status nnft_nngp_eval_diag(const nnft_arch *a, const nnft_nngp_opts *o, const nnft_mat *X,
                                nnft_mat *out);

/* The simple forms the kernel dispatch (nnft_kernel.h) calls: ntk 0/1, quad_order 0 = default,
 * OpenMP's default thread count, closed forms where they exist. */
nnft_status nnft_nngp_matrix(const nnft_arch *a, int ntk, int quad_order, const nnft_mat *X,
                             const nnft_mat *Y, nnft_mat *out);
nnft_status nnft_nngp_diag(const nnft_arch *a, int ntk, int quad_order, const nnft_mat *X,
                           nnft_mat *out);

/* Bytes of workspace (not counting out) an n x m evaluation allocates with `threads` threads
 * (<= 0: the OpenMP default), for refusing in advance. NNFT_EOVERFLOW. */
nnft_status nnft_nngp_workspace_bytes(const nnft_arch *a, const nnft_nngp_opts *o, size_t n,
                                      size_t m, size_t *bytes);

#endif
