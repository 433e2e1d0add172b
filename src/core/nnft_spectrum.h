/* nnft_spectrum: power spectra of translation-invariant (stationary, isotropic) kernels,
 *     K̃(p) = ∫ d^dr K(r) e^{−ip·r},   K(r) = ∫ d^dp/(2π)^d K̃(p) e^{ip·r}     (physics.md §2.4)
 * as a function of |p|, in d = 1, 2, 3.
 *
 * Three routes:
 * - ANALYTIC, where a closed form exists (sums and scalings of):
 *     RBF       σ² (2πℓ²)^{d/2} exp(−ℓ²p²/2)
 *     Matérn    σ² 2^d π^{d/2} Γ(ν + d/2) (2ν)^ν / (Γ(ν) ℓ^{2ν}) · (2ν/ℓ² + p²)^{−(ν + d/2)}
 *               (the Student-t form; GPML eq. 4.15 with angular momentum p)
 *     FREEPROP  Θ(R − |p|)/(p² + m²)   (closed ball: |p| = R is inside)
 *     NNGP      plain cos-net (b ~ N(0, σ_w²/d)): (σ_a²/2)(2πd/σ_w²)^{d/2} exp(−d p²/(2σ_w²));
 *               Gauss-net without readout bias: σ_w2² (2πd/σ_w1²)^{d/2} exp(−d p²/(2σ_w1²));
 *               generalised cos-net (b uniform in B_R, amplitude A(b)): Θ(R − |p|)/(p² + m²);
 *               b uniform in B_R without amplitude: (σ_a²/2)(2π)^d Θ(R − |p|)/vol(B_R).
 *   Products have no closed form here (a convolution of spectra).
 * - QUADRATURE, radial (Hankel) transforms of K(r) (GSL), split at a = 40ℓ (ℓ =
 *   nnft_kernel_length_scale): the core [0, a] in geometric pieces [0, a·1e-5], ..., [a/10, a]
 *   (QAWO with the cos/sin weight, QAG for d = 2 and p = 0), then the tail:
 *     d = 1:  2 ∫_0^∞ K(r) cos(pr) dr          tail: QAWF (Fourier integral, cycle extrapolation)
 *     d = 2:  2π ∫_0^∞ r K(r) J0(pr) dr         tail: QAG between consecutive zeros of J0(pr),
 *                                               up to 200 of them, then Levin's u-transform
 *     d = 3:  (4π/p) ∫_0^∞ r K(r) sin(pr) dr   tail: QAWF
 *     p = 0:  the same moments, tail by QAGIU.
 *   Accuracy: relative epsrel on a scale K(0)ℓ^d (ℓ = nnft_kernel_length_scale); where K̃ is
 *   below 1e-2 of that scale a second pass asks for epsrel relative to K̃ itself, down to values
 *   of 1e-10 of the scale (smaller ones, e.g. an exactly vanishing spectrum, keep the absolute
 *   accuracy epsrel·scale).
 *   Accurate (~epsrel) for kernels that decay (RBF, Matérn, Gauss-net); the free propagator with a
 *   sharp cutoff decays like an oscillating power: ~1e-6 in d = 1, 3 (p != 0), but in d = 2 slow
 *   (seconds per p: each G(r) costs ∝ R r) and only ~1e-3 absolute; p = 0 does not converge
 *   (NNFT_ENOCONV). The FFT route suits it better.
 * - FFT: K sampled on a periodic grid of n^d points with spacing h = L/n (x = h·i, i centred),
 *   transformed with GSL's mixed-radix FFT along each axis, K̃(p_k) ≈ h^d Σ_x K(|x|) e^{−ip_k·x},
 *   p_k = 2πk/L; the grid momenta are grouped into exact shells |k|² = s (radial binning:
 *   values on a shell averaged) and the shells, mirrored to −|p| (K̃ is even), interpolated in
 *   |p| by a cubic spline. Each distinct grid radius is evaluated once. Requested p must lie
 *   below the largest complete shell, p <= (n/2 − 1)·2π/L (NNFT_EDOM otherwise). Errors: aliasing ~ K̃(2π/h − p) and truncation
 *   ~ K at L/2. Defaults: n = 4096, 256, 64 for d = 1, 2, 3; L = 2 r_tail × (16, 4, 1 in
 *   d = 1, 2, 3: a finer momentum grid where n leaves room), r_tail where |K(r)| first stays below
 *   1e-10 K(0) on [r_tail, 2 r_tail] (searched up to 500 times the kernel's length scale; 200
 *   length scales when K never decays that far, e.g. the sharp-cutoff propagator).
 *
 * GSL's workspaces are allocated by GSL (malloc); the grid and shell tables through nnft_alloc. */
#ifndef NNFT_SPECTRUM_H
#define NNFT_SPECTRUM_H

#include "nnft_kernel.h"
#include "nnft_mat.h"
#include "nnft_status.h"

typedef enum {
  NNFT_SPECTRUM_ANALYTIC,
  NNFT_SPECTRUM_QUADRATURE,
  NNFT_SPECTRUM_FFT
} nnft_spectrum_method;

typedef struct nnft_spectrum_opts {
  nnft_spectrum_method method;
  double epsrel; /* QUADRATURE: requested relative accuracy (default 1e-8) */
  size_t n;      /* FFT: grid points per dimension (0: default), even, >= 16 */
  double L;      /* FFT: box length (0: chosen from the kernel's decay) */
} nnft_spectrum_opts;

/* Defaults: ANALYTIC, epsrel 1e-8, n = 0, L = 0. */
nnft_spectrum_opts nnft_spectrum_defaults(void);

/* What a call used and found (may be passed as NULL). */
typedef struct nnft_spectrum_info {
  size_t n;        /* FFT: grid points per dimension used */
  double L;        /* FFT: box length used */
  double p_max;    /* FFT: largest momentum answered (the last complete shell) */
  double abserr;   /* QUADRATURE: largest absolute error estimate over the p values */
} nnft_spectrum_info;

/* NNFT_OK if the analytic route covers k in dimension d; NNFT_EDOM otherwise with *why (may be
 * NULL) a static reason ("a product of kernels has no closed-form spectrum", ...). */
nnft_status nnft_spectrum_has_analytic(const nnft_kernel *k, size_t d, const char **why);

/* out = K̃(p) elementwise for the momentum magnitudes in p (any shape, finite, >= 0; out the
 * same shape, not overlapping p). k must be stationary (NNFT_EDOM otherwise) and take inputs of
 * dimension d (NNFT_EDIM), 1 <= d <= 3. NNFT_ENOCONV if a quadrature fails to converge. Polls
 * the interrupt flag per p value (quadrature) or per grid line (FFT). opts NULL: defaults. */
nnft_status nnft_spectrum(const nnft_kernel *k, size_t d, const nnft_spectrum_opts *opts,
                          const nnft_mat *p, nnft_mat *out, nnft_spectrum_info *info);

#endif
