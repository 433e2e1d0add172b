/* nnft_finite: exact finite-width correlators of one-hidden-layer networks (physics.md §3.4).
 *
 * Write f(x) = b1 + Σ_{i=1}^N W1_i h_i(x), W1_i ~ N(0, σ_W²/N), b1 ~ N(0, σ_b1²) (σ_W, σ_b1 =
 * the readout layer's σ_w, σ_b), with i.i.d. neurons h_i(x) = σ(W0_i·x + b0_i). The single-neuron
 * moments M_n(x_1..x_n) = E[Π_j h(x_j)] determine every correlator exactly at every N:
 *   G2(x1,x2)     = σ_b1² + σ_W² M2(x1,x2)
 *   G4_c(x1..x4)  = (σ_W⁴/N) [3 M4 − (M2(12)M2(34) + M2(13)M2(24) + M2(14)M2(23))]
 *   G6_c(x1..x6)  = (σ_W⁶/N²) [15 M6 − 3 Σ_15 M4 M2 + 2 Σ_15 M2 M2 M2]
 * (N times the fourth / sixth cumulant of one term W1 h; E[W1^{2k}] = (2k−1)!! (σ_W²/N)^k.)
 *
 * The preactivations u_j = W0·x_j + b0 are jointly Gaussian with zero mean and covariance
 * k_ij = σ_b0² + σ_w0² x_i·x_j/d (σ_b0² only if layer 1 has a bias), of rank r <= min(n, d+1).
 * M_n is computed on the rank-r factor u = L z, z ~ N(0, I_r), L = V_r Λ_r^{1/2} from the
 * eigendecomposition of the n x n covariance (eigenvalues below 1e-13 λ_max count as zero):
 *  - exp:        M_n = exp(½ Σ_ij k_ij)                                  (closed form)
 *  - gauss-net:  M_n = exp(½ Σ_ij k_ij − Σ_j s_j), h = e^u / sqrt(e^{2 s(x)}) with
 *                s(x) = σ_b0² + σ_w0² |x|²/d (physics §1.2; σ_b0 of the layer even when it has no
 *                bias, as the sampler normalises), so that with a bias M2 = e^{−σ_w0²|x−x'|²/(2d)}
 *  - relu, step: positively homogeneous of degree p (p = n, 0): in polar coordinates z = ρω the
 *                radial integral is Γ-function exact, and the angular integral over the sphere
 *                S^{r−1} is split at the kinks (the great circles a_j·ω = 0) into pieces on which
 *                the integrand is a trigonometric polynomial: r = 1 two points, r = 2 arcs with
 *                Gauss–Legendre, r = 3 an outer θ integral split at every tangency and crossing
 *                of the kink circles (quadratically clustered Gauss–Legendre) times inner φ arcs.
 *                Accuracy ~1e-15 relative (measured, r <= 3). r >= 4 falls back to
 *                Gauss–Hermite with 16, 10, 8 nodes per dimension for r = 4, 5, 6 (algebraic
 *                convergence on the kinks: ~1e-3 relative).
 *  - any other activation (erf, tanh, gelu, sigmoid, softplus, sin, cos, linear, custom):
 *                tensor trapezoid rule on [−9, 9]^r pruned to the ball |z| <= 9, step
 *                h = c_r / a with a = max(1, max_j sqrt(k_jj)) and c_r = 0.3, 0.3, 0.4, 0.5, 0.7,
 *                0.9 for r = 1..6 (at most 1025 nodes per dimension). For Gaussian-weighted entire
 *                integrands the trapezoid rule converges exponentially in 1/h² (Trefethen &
 *                Weideman, SIAM Rev. 56 (2014) 385); with the step tied to the activation's scale
 *                1/a it reaches ~1e-15 for erf and gelu at r <= 3 whatever σ_w |x| (tanh, with
 *                poles at ±iπ/2, ~1e-11 at r = 3), ~1e-7 at r = 4. Gauss–Hermite with q nodes
 *                resolves z = 0 only to π/sqrt(2q): erf(1.4 z) needs q ≈ 128 for 1e-14 (q = 40
 *                gives 7e-6) and at r = 4 q = 12 is off by 5%; it remains available (method GH).
 *                The grid stops at |z| = 9: for activations growing exponentially (a custom exp)
 *                use method GH.
 *    Cost: n × (nodes per dimension)^r activation evaluations per tuple, times the ball's share of
 *    the cube (π/4, π/6, π²/32 ... for r = 2, 3, 4): about 6000 n at r = 2 for a <= 1.4,
 *    1.3e5 n at r = 3, 1.5e6 n at r = 4. opts.order fixes the nodes per dimension of whichever
 *    tensor rule is used.
 *  - cos-nets (arch->is_cosnet: h = A(b) cos(b·x + c), c ~ U[−π,π]): with
 *    g_n(v) = E_b[A(b)^n cos(b·v)], M_n = 2^{1−n} Σ_{signs s, s_1 = 1, Σ s = 0} g_n(Σ_j s_j x_j)
 *    (3 terms for n = 4, 10 for n = 6; all 2^{n−1} sign patterns when there is no phase).
 *      plain (Gaussian b ~ N(0, σ_w²/d), A = 1):  g_n(v) = exp(−σ_w² |v|² / (2d))
 *      uniform in the ball B_R, A = 1:            g_n(v) = Γ(d/2+1) (2/R|v|)^{d/2} J_{d/2}(R|v|)
 *      generalised (ball, A = C/sqrt(|b|²+m²)):   g_n(v) = C^n (2π)^d / vol(B_R) · G_{n/2}(|v|)
 *    with G_s the cutoff propagator to the power s of nnft_freeprop.h (d <= 3). In particular
 *    G2 = σ_a² M2 = G_1(|x1 − x2|): the free propagator, exactly at every N.
 *
 * Requirements (nnft_finite_check_arch): a valid one-hidden-layer architecture (nlayers = 2),
 * all parameter means zero, order <= 6; for generalised cos-nets d <= 3 and m > 0 unless the
 * momentum integrals converge (m = 0 is allowed for d = 3 and n = 2 only); no amplitude with
 * Gaussian frequencies.
 *
 * Tuples: all sorted index tuples i_1 <= ... <= i_n of the n_pts rows of X, in lexicographic
 * order ((0,0,0,0), (0,0,0,1), ...): C(n_pts + n − 1, n) of them (126 for n_pts = 6, n = 4).
 * This is the order of nnft_corr (the ensemble's n-point functions). Indices here are 0-based. */
#ifndef NNFT_FINITE_H
#define NNFT_FINITE_H

#include <stddef.h>

#include "nnft_arch.h"
#include "nnft_mat.h"
#include "nnft_status.h"

#define NNFT_FINITE_MAX_ORDER 6
#define NNFT_FINITE_MAX_NODES 150 /* Gauss–Hermite's recurrence overflows beyond ~180 nodes */

typedef enum {
  NNFT_FINITE_AUTO, /* closed forms, polar quadrature for relu/step, trapezoid otherwise */
  NNFT_FINITE_GH    /* Gauss–Hermite for every non-closed-form activation (for comparisons) */
} nnft_finite_method;

typedef struct nnft_finite_opts {
  size_t order;     /* nodes per dimension of the tensor rule (trapezoid or Gauss–Hermite);
                       0 = the defaults above, else 2..NNFT_FINITE_MAX_NODES */
  size_t arc_nodes; /* Gauss–Legendre nodes per angular piece for relu/step (0 = 32) */
  nnft_finite_method method;
} nnft_finite_opts;

/* {order = 0, arc_nodes = 0, method = AUTO}. */
nnft_finite_opts nnft_finite_defaults(void);

/* NNFT_OK if the formulas apply to a for moments up to order nmax; NNFT_EDOM (or the status of
 * nnft_arch_check) otherwise, with *why (may be NULL) a static English reason. */
nnft_status nnft_finite_check_arch(const nnft_arch *a, size_t nmax, const char **why);

/* Number of sorted k-tuples of n_pts points, C(n_pts + k − 1, k) (checked: NNFT_EOVERFLOW). */
nnft_status nnft_finite_ntuples(size_t n_pts, size_t k, size_t *count);
/* tuples (count x k): row t = the t-th sorted tuple, 0-based indices stored as doubles. */
nnft_status nnft_finite_tuples(size_t n_pts, size_t k, nnft_mat *tuples);

/* *m = M_n(x_{idx[0]}, ..., x_{idx[n−1]}) for one tuple (any order, repeats allowed), X the
 * n_pts x d input rows. Allocates its own workspace. */
nnft_status nnft_finite_moment(const nnft_arch *a, const nnft_mat *X, const size_t *idx, size_t n,
                               const nnft_finite_opts *opts, double *m);

/* values (count x 1) = M_n for every sorted n-tuple; 1 <= n <= 6. Polls the interrupt flag per
 * tuple. opts NULL means defaults. */
nnft_status nnft_finite_moments(const nnft_arch *a, const nnft_mat *X, size_t n,
                                const nnft_finite_opts *opts, nnft_mat *values);

/* K (n_pts x n_pts) = G2(x_i, x_j) = σ_b1² + σ_W² M2(x_i, x_j), exact at every width. */
nnft_status nnft_finite_g2(const nnft_arch *a, const nnft_mat *X, const nnft_finite_opts *opts,
                           nnft_mat *K);

/* values (count x 1) = the exact connected 4-point function G4_c (order 1/N) for every sorted
 * 4-tuple; N = a->layer[0].fan_out. Cost: n_pts² M2 plus C(n_pts+3, 4) M4. */
nnft_status nnft_finite_g4c(const nnft_arch *a, const nnft_mat *X, const nnft_finite_opts *opts,
                            nnft_mat *values);

/* values (count x 1) = the exact connected 6-point function G6_c (order 1/N²) for every sorted
 * 6-tuple. Keeps every M4 (C(n_pts+3, 4) doubles). */
nnft_status nnft_finite_g6c(const nnft_arch *a, const nnft_mat *X, const nnft_finite_opts *opts,
                            nnft_mat *values);

#endif
