/* nnft_freeprop: the free scalar propagator with a sharp momentum cutoff (physics.md §2.4), the
 * two-point function of the generalised cos-net of physics.md §1.3.
 *
 * Momentum space:  G̃_s(p) = (p² + m²)^{-s}  for |p| <= R,  0 for |p| > R   (closed ball: the
 *                  cos-net samples frequencies in the closed ball, nnft_rng_ball)
 * Position space:  G_s(r)  = ∫_{|p|<=R} d^dp/(2π)^d e^{ip·x} G̃_s(p),   r = |x|
 *   d = 1:  (1/π)        ∫_0^R cos(pr) (p²+m²)^{-s} dp
 *   d = 2:  (1/2π)       ∫_0^R p J0(pr) (p²+m²)^{-s} dp
 *   d = 3:  (1/(2π² r))  ∫_0^R p sin(pr) (p²+m²)^{-s} dp     (r = 0: (1/2π²) ∫_0^R p² ... dp)
 * s = 1 is the propagator itself; s = 2, 3 give the kernels E_b[A(b)^4 cos(b·v)],
 * E_b[A(b)^6 cos(b·v)] that the exact finite-width 4- and 6-point functions of the generalised
 * cos-net need (nnft_finite.h). Limits (s = 1, R -> ∞): d = 1 e^{-mr}/(2m), d = 3 e^{-mr}/(4πr),
 * d = 2 K0(mr)/(2π).
 *
 * Quadrature (GSL): for each r the range [0, R] is split at p0 = min(R, π/r) (at most half an
 * oscillation). [0, p0] is integrated with QAGS (adaptive Gauss–Kronrod with extrapolation, which
 * also copes with the integrable p^{-2s} singularity when m = 0); [p0, R] with QAWO (d = 1, 3:
 * Clenshaw–Curtis with the cos/sin weight folded into Chebyshev moments, cost independent of the
 * number of oscillations) or, for d = 2, QAG over chunks of length π/r (cost proportional to
 * R r). Requested accuracy: relative epsrel (default 1e-10) or absolute 1e-13 G_s(0); results
 * are typically good to ~1e-12 relative to G_s(0).
 *
 * GSL's integration workspaces are allocated by GSL (malloc), not through nnft_alloc; a failed
 * GSL allocation is reported as NNFT_ENOMEM. GSL's error handler must be off (the interpreter
 * and the Lua module switch it off); the status codes returned are checked here. */
#ifndef NNFT_FREEPROP_H
#define NNFT_FREEPROP_H

#include <stddef.h>

#include "nnft_mat.h"
#include "nnft_status.h"

typedef struct nnft_freeprop_params {
  size_t d;      /* dimension, 1..3 */
  double R;      /* cutoff, 0 < R < ∞ */
  double m;      /* mass, m >= 0 (m = 0 only where the integral converges: d > 2s) */
  double power;  /* s > 0 (default 1): the propagator raised to this power, s <= 16 */
  double epsrel; /* requested relative accuracy (default 1e-10; 0 < epsrel < 1) */
} nnft_freeprop_params;

/* Defaults: d = 1, R = 1, m = 1, power = 1, epsrel = 1e-10. */
nnft_freeprop_params nnft_freeprop_defaults(void);

/* NNFT_OK if the parameters are valid; NNFT_EDOM otherwise, with *why (may be NULL) set to a
 * static English reason ("d must be 1, 2 or 3", "the integral diverges at p = 0 for m = 0 ..."). */
nnft_status nnft_freeprop_check(const nnft_freeprop_params *p, const char **why);

/* Opaque workspace: GSL integration workspaces and a cache of G_s(0) for the last parameters. */
typedef struct nnft_freeprop_ws nnft_freeprop_ws;
nnft_status nnft_freeprop_ws_alloc(nnft_freeprop_ws **ws);
void nnft_freeprop_ws_free(nnft_freeprop_ws *ws); /* NULL is fine */

/* *g = G_s(r) for one r >= 0 (finite). NNFT_EDOM for invalid parameters or r, NNFT_ENOCONV if
 * the quadrature failed to reach a usable accuracy (error above 1e-6 G_s(0)). */
nnft_status nnft_freeprop_eval(nnft_freeprop_ws *ws, const nnft_freeprop_params *p, double r,
                               double *g);

/* out = G_s(r) elementwise for every element of r (any shape; out the same shape, may be r
 * itself). Elements must be finite and >= 0 (NNFT_ENONFINITE, NNFT_EDOM otherwise, checked
 * before anything is computed). Polls the interrupt flag per element (NNFT_EINTR). Allocates
 * one workspace. Cost: a few hundred integrand evaluations per r for d = 1, 3; for d = 2 about
 * 21 R r / π Bessel evaluations. */
nnft_status nnft_freeprop_position(const nnft_freeprop_params *p, const nnft_mat *r,
                                   nnft_mat *out);

/* out = G̃_s(|p|) elementwise (p >= 0 magnitudes; Inf at p = 0 when m = 0). Same shape rules. */
nnft_status nnft_freeprop_momentum(const nnft_freeprop_params *p, const nnft_mat *k,
                                   nnft_mat *out);

/* Volume of the d-ball of radius R, π^{d/2} R^d / Γ(d/2 + 1). */
double nnft_ball_volume(size_t d, double R);

#endif
