/* nnft_coupling: couplings from correlators and their flows (physics.md §4).
 *
 * Conventions (physics.md §4.1). The [HMS] action S = S_GP + ∫ d^dx λ f(x)⁴ (no 1/4!) gives at
 * tree level ΔG4 := G4 − G4_GP = −24 λ I4(Λ), so per input tuple
 *   λ(Λ) = −ΔG4 / (24 I4(Λ))                       (NNFT_CONV_HMS, "hms")
 * and the [ELS] action u4 f⁴/4! gives u4 = 24 λ = −ΔG4 / I4   (NNFT_CONV_ELS, "els").
 * Error bars: σ_λ = σ_ΔG4 / (24 |I4|) (the quadrature error of I4 is far smaller and ignored).
 *
 * Flows: β(λ) = Λ dλ/dΛ at fixed ΔG4 is −λ d ln I4 / d ln Λ; log–log fits of |λ| against Λ (or
 * |u4| against σ_W) give the slope, its standard error and R².
 *
 * The Wetterich equation in the local potential approximation with the Litim regulator
 * (physics.md §4.2), U = u2 φ²/2 + u4 φ⁴/4! + u6 φ⁶/6!, V_d = 1/(2^d π^{d/2} Γ(d/2 + 1)),
 * dimensionless ū2 = u2/k², ū4 = u4 k^{d−4}, ū6 = u6 k^{2d−6}, t = ln k:
 *   β2 = −V_d ū4 / (1 + ū2)²
 *   β4 =  V_d (1 + ū2)^{−2} (−ū6 + 6 ū4² / (1 + ū2))
 *   β6 =  V_d ū4 (1 + ū2)^{−3} (30 ū6 − 90 ū4² / (1 + ū2))
 *   dū2/dt = −2ū2 + β2,  dū4/dt = (d − 4)ū4 + β4,  dū6/dt = (2d − 6)ū6 + β6    (dimensionless)
 *   du2/dt = k² β2,      du4/dt = k^{4−d} β4,      du6/dt = k^{6−2d} β6         (dimensionful)
 * integrated with GSL's odeiv2 (msbdf by default, or rk4imp; the Jacobian by central
 * differences). The passive protocol [ELS]: start at k0 with u2 = 2σ_W0²/d, u4 = the measured
 * coupling, u6 chosen; integrate the dimensionful form; read σ_W(k) = sqrt(d u2(k)/2). */
#ifndef NNFT_COUPLING_H
#define NNFT_COUPLING_H

#include <stddef.h>

#include "nnft_mat.h"
#include "nnft_status.h"

typedef enum { NNFT_CONV_HMS, NNFT_CONV_ELS } nnft_coupling_conv;

/* lam[t] = −dG4[t]/(c I4[t]) with c = 24 (HMS) or 1 (ELS); lam_err[t] = dG4_err[t]/(c |I4[t]|)
 * (dG4_err and lam_err may be NULL). NNFT_EDOM when some I4[t] is zero or non-finite (*bad, may
 * be NULL, gets the first such t), NNFT_ENONFINITE for NaN/Inf in dG4 (likewise). O(count). */
nnft_status nnft_coupling_lambda(size_t count, const double *dG4, const double *dG4_err,
                                 const double *I4, nnft_coupling_conv conv, double *lam,
                                 double *lam_err, size_t *bad);

/* Locality of a coupling measured on many tuples (a constant, local coupling has a small
 * spread). err may be NULL (then the weighted quantities are NaN). */
typedef struct nnft_coupling_locality {
  double mean, std;   /* plain mean and sample standard deviation over tuples */
  double rel_spread;  /* std / |mean| */
  double wmean, wmean_err; /* inverse-variance weighted mean and its standard error */
  double chi2;        /* Σ ((λ_t − wmean)/σ_t)²: consistency with one constant */
  size_t dof;         /* count − 1 */
} nnft_coupling_locality;

/* count >= 1 (NNFT_EDOM otherwise); tuples with a zero or non-finite error are left out of the
 * weighted quantities. */
nnft_status nnft_coupling_local(size_t count, const double *lam, const double *err,
                                nnft_coupling_locality *out);

/* Least-squares fit ΔG4 ≈ l0 T0 + l2 T2 + l_NL T_NL (physics.md §4.1) by LAPACK dgelsd on the
 * nb = 1..3 first basis columns (T0 alone, T0 and T2, or all three); with err (may be NULL) the
 * rows are weighted by 1/err (err > 0 required). A local [HMS] coupling has l0 = −λ.
 * coef (nb), cov (nb x nb, column-major, may be NULL: (Aᵀ W A)^{-1} scaled by χ²/(count − nb)
 * when err is NULL), *chi2 (weighted residual sum of squares), *rank. count >= nb. */
nnft_status nnft_coupling_fit_nonlocal(size_t count, const double *dG4, const double *err,
                                       const double *T0, const double *T2, const double *TNL,
                                       size_t nb, double *coef, double *cov, double *chi2,
                                       size_t *rank);

/* dG6[t] = −24 λ S6[t] (the O(λ) six-point prediction from nnft_vertex_six). */
void nnft_coupling_six_point(size_t count, double lambda, const double *S6, double *dG6);

/* Least squares y = a x + b on (log x_i, log |y_i|) over the points with x_i > 0 and y_i != 0
 * finite (*used counts them; at least 3 needed: NNFT_EDOM). slope_err is the standard error of
 * the slope; r2 the coefficient of determination. */
typedef struct nnft_coupling_loglog {
  double slope, intercept, slope_err, r2;
  size_t used;
} nnft_coupling_loglog;
nnft_status nnft_coupling_loglog_fit(size_t n, const double *x, const double *y,
                                     nnft_coupling_loglog *out);

/* d ln|I| / d ln Λ at each of the m cutoffs (second-order finite differences on the non-uniform
 * log grid; one-sided at the ends), for one row of a vertex table; β = −λ times it.
 * m >= 2, Λ > 0 finite increasing, I non-zero (NNFT_EDOM otherwise). */
nnft_status nnft_coupling_dlog(size_t m, const double *Lambda, const double *Iv, double *dlog);

/* ---- LPA ---- */

double nnft_lpa_vd(double d);

/* The dimensionless right-hand side dū/dt for u = (ū2, ū4, ū6). */
void nnft_lpa_rhs(double d, const double *u, double *du);
/* Its Jacobian J[i + 3 j] = ∂(dū_i/dt)/∂ū_j (analytic). */
void nnft_lpa_jacobian(double d, const double *u, double *J);

/* A fixed point of the dimensionless system by Newton's method from guess; *iters (may be NULL)
 * the iterations used. NNFT_ENOCONV if |rhs| does not fall below 1e-13 in 100 steps or a step
 * hits the pole ū2 = −1; NNFT_ESINGULAR for a singular Jacobian. */
nnft_status nnft_lpa_fixed_point(double d, const double *guess, double *u, int *iters);

/* Eigenvalues (re, im; sorted by real part ascending) of the Jacobian at u: the linearised flow
 * δū ∝ k^{eig}; critical exponents θ = −eig (relevant directions have eig < 0). */
nnft_status nnft_lpa_exponents(double d, const double *u, double *re, double *im);

typedef enum { NNFT_LPA_MSBDF, NNFT_LPA_RK4IMP } nnft_lpa_method;

typedef struct nnft_lpa_opts {
  int dimensionful;       /* 0: ū (dimensionless), 1: u (dimensionful) */
  nnft_lpa_method method;
  double epsabs, epsrel;  /* GSL step control (defaults 1e-12, 1e-10) */
} nnft_lpa_opts;
nnft_lpa_opts nnft_lpa_defaults(void);

/* Integrate from k[0] (u0 given there, in the chosen form) through k[1..nk−1] (monotone, > 0,
 * either direction). out is nk x 3: row i = (u2, u4, u6) at k[i]. NNFT_EDOM for bad k or d
 * outside (0, 8]; NNFT_ENOCONV when the solver fails (e.g. the flow hits the pole ū2 = −1: the
 * rows reached are filled, the rest NaN), NNFT_ENOMEM (GSL's own allocation), NNFT_EINTR. */
nnft_status nnft_lpa_integrate(double d, const double *u0, size_t nk, const double *k,
                               const nnft_lpa_opts *opts, nnft_mat *out);

/* The passive protocol: u0 = (2σ_W0²/d, u4_0, u6_0) dimensionful at k[0]; out is nk x 4 with
 * rows (σ_W(k), u2, u4, u6); σ_W = NaN where u2 < 0. Errors as nnft_lpa_integrate. */
nnft_status nnft_lpa_passive(double d, double sigma0, double u4_0, double u6_0, size_t nk,
                             const double *k, const nnft_lpa_opts *opts, nnft_mat *out);

#endif
