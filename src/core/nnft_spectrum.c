/* nnft_spectrum: power spectra of stationary kernels (nnft_spectrum.h). */
#include "nnft_spectrum.h"

#include <math.h>
#include <string.h>

#include <gsl/gsl_errno.h>
#include <gsl/gsl_fft_complex.h>
#include <gsl/gsl_integration.h>
#include <gsl/gsl_interp.h>
#include <gsl/gsl_sf_bessel.h>
#include <gsl/gsl_sum.h>

#include "nnft_alloc.h"
#include "nnft_freeprop.h"

nnft_spectrum_opts nnft_spectrum_defaults(void) {
  nnft_spectrum_opts o = {NNFT_SPECTRUM_ANALYTIC, 1e-8, 0, 0.0};
  return o;
}

/* ---------------------------------------------------------------------------------------------
 * Closed forms */

static double gaussian_spectrum(double amp, double ell, size_t d, double p) {
  return amp * pow(2.0 * M_PI * ell * ell, 0.5 * (double)d) * exp(-0.5 * ell * ell * p * p);
}

static double matern_spectrum(const nnft_kernel *k, size_t d, double p) {
  double nu = k->nu, l = k->lengthscale, hd = 0.5 * (double)d;
  double logc = (double)d * log(2.0) + hd * log(M_PI) + lgamma(nu + hd) + nu * log(2.0 * nu) -
                lgamma(nu) - 2.0 * nu * log(l);
  return k->variance * exp(logc - (nu + hd) * log(2.0 * nu / (l * l) + p * p));
}

static double ball_spectrum(double R, double m, double p) {
  return p <= R ? 1.0 / (p * p + m * m) : 0.0;
}

/* Which closed form an NNGP leaf has: 0 none, 1 plain cos-net, 2 Gauss-net, 3 ball cos-net with
 * amplitude, 4 ball cos-net without. */
static int nngp_form(const nnft_kernel *k) {
  if (k->type != NNFT_KERNEL_NNGP || !nnft_kernel_is_stationary(k)) return 0;
  const nnft_arch *a = &k->arch;
  if (!a->is_cosnet) return 2;
  if (a->freq == NNFT_FREQ_GAUSSIAN) return a->amplitude ? 0 : 1;
  return a->amplitude ? 3 : 4;
}

static nnft_status analytic_check(const nnft_kernel *k, const char **why) {
  switch (k->type) {
  case NNFT_KERNEL_RBF:
  case NNFT_KERNEL_MATERN:
  case NNFT_KERNEL_FREEPROP: return NNFT_OK;
  case NNFT_KERNEL_NNGP:
    if (nngp_form(k)) return NNFT_OK;
    *why = "the NNGP kernel of this architecture is not translation invariant";
    return NNFT_EDOM;
  case NNFT_KERNEL_NTK:
  case NNFT_KERNEL_POLY: *why = "the kernel is not translation invariant"; return NNFT_EDOM;
  case NNFT_KERNEL_PROD:
    *why = "a product of kernels has no closed-form spectrum (it is a convolution of spectra)";
    return NNFT_EDOM;
  case NNFT_KERNEL_SCALE: return analytic_check(k->left, why);
  case NNFT_KERNEL_SUM: {
    nnft_status s = analytic_check(k->left, why);
    return s ? s : analytic_check(k->right, why);
  }
  }
  *why = "unknown kernel type";
  return NNFT_EDOM;
}

nnft_status nnft_spectrum_has_analytic(const nnft_kernel *k, size_t d, const char **why) {
  const char *w = NULL;
  nnft_status s = nnft_kernel_check_why(k, &w);
  size_t dim;
  if (!s && (d < 1 || d > 3)) {
    w = "d must be 1, 2 or 3";
    s = NNFT_EDOM;
  }
  if (!s && (nnft_kernel_input_dim(k, &dim) || (dim && dim != d))) {
    w = "the kernel takes points of another dimension";
    s = NNFT_EDIM;
  }
  if (!s) s = analytic_check(k, &w);
  if (why) *why = s ? w : NULL;
  return s;
}

static double analytic_at(const nnft_kernel *k, size_t d, double p) {
  switch (k->type) {
  case NNFT_KERNEL_RBF: return gaussian_spectrum(k->variance, k->lengthscale, d, p);
  case NNFT_KERNEL_MATERN: return matern_spectrum(k, d, p);
  case NNFT_KERNEL_FREEPROP: return ball_spectrum(k->radius, k->mass, p);
  case NNFT_KERNEL_NNGP: {
    const nnft_arch *a = &k->arch;
    double s1 = a->layer[0].sigma_w, s2 = a->layer[1].sigma_w, dd = (double)d;
    switch (nngp_form(k)) {
    case 1: /* (σ_a²/2) exp(−σ_w² r²/(2d)): a Gaussian with ℓ² = d/σ_w² */
      return gaussian_spectrum(0.5 * s2 * s2, sqrt(dd) / s1, d, p);
    case 2: return gaussian_spectrum(s2 * s2, sqrt(dd) / s1, d, p);
    case 3: return ball_spectrum(a->radius, a->mass, p);
    case 4:
      return p <= a->radius
                 ? 0.5 * s2 * s2 * pow(2.0 * M_PI, dd) / nnft_ball_volume(d, a->radius)
                 : 0.0;
    default: return NAN;
    }
  }
  case NNFT_KERNEL_SCALE: return k->scale * analytic_at(k->left, d, p);
  case NNFT_KERNEL_SUM: return analytic_at(k->left, d, p) + analytic_at(k->right, d, p);
  default: return NAN;
  }
}

/* ---------------------------------------------------------------------------------------------
 * Radial quadrature */

#define Q_LIMIT 1000

typedef struct {
  nnft_kernel_radial_ws *kw;
  double p;
  int power;    /* integrand r^power K(r) (× J0(pr) for d = 2) */
  int bessel;
  nnft_status status; /* first failure of a kernel evaluation */
} q_ctx;

static double q_integrand(double r, void *vc) {
  q_ctx *c = vc;
  double v;
  if (c->status) return 0.0;
  if (nnft_interrupted()) { /* GSL cannot be stopped: make it finish fast, report after */
    c->status = NNFT_EINTR;
    return 0.0;
  }
  nnft_status s = nnft_kernel_radial_eval(c->kw, &r, 1, &v);
  if (s) {
    if (!c->status) c->status = s;
    return 0.0;
  }
  if (c->power >= 1) v *= r;
  if (c->power >= 2) v *= r;
  if (c->bessel) v *= gsl_sf_bessel_J0(c->p * r);
  return v;
}

typedef struct {
  gsl_integration_workspace *w, *cw;
  gsl_integration_qawo_table *t, *t2; /* QAWF's table; the core pieces' QAWO table */
  gsl_sum_levin_utrunc_workspace *lev;
  double *terms;
} q_ws;

#define D2_MAX_TERMS 200 /* J0 half-periods summed beyond the core before Levin */

static void q_ws_free(q_ws *q) {
  if (q->w) gsl_integration_workspace_free(q->w);
  if (q->cw) gsl_integration_workspace_free(q->cw);
  if (q->t) gsl_integration_qawo_table_free(q->t);
  if (q->t2) gsl_integration_qawo_table_free(q->t2);
  if (q->lev) gsl_sum_levin_utrunc_free(q->lev);
  nnft_free(q->terms);
}

/* A GSL status is acceptable if the error estimate is within `accept`. */
static int q_failed(int st, double err, double accept) {
  return !(isfinite(err)) || (st && !(err <= accept));
}

/* The core [0, a] in geometric pieces [0, a·1e-5], [a·1e-5, a·1e-4], ..., [a/10, a]: an adaptive
 * rule started on one long interval can miss a kernel concentrated near r = 0 (its first nodes
 * all see ~0 and it "converges" to 0). With an oscillatory weight (weight != 0, p > 0) each piece
 * goes to QAWO (Chebyshev moments of cos/sin(pr)), otherwise to QAG (the integrand then carries
 * J0(pr) for d = 2). Adds to *res, *err. */
#define CORE_PIECES 6
static nnft_status q_core(q_ws *q, q_ctx *c, double a, int weight, double tol, double epsrel,
                          double *res, double *err) {
  gsl_function f = {q_integrand, c};
  double lo = 0.0;
  for (int k = CORE_PIECES - 1; k >= 0; k--) {
    double hi = k ? a * pow(10.0, -(double)k) : a, t = 0, e = 0;
    int st;
    if (weight) {
      gsl_integration_qawo_table_set(q->t2, c->p, hi - lo,
                                     weight == 1 ? GSL_INTEG_COSINE : GSL_INTEG_SINE);
      st = gsl_integration_qawo(&f, lo, tol / CORE_PIECES, epsrel, Q_LIMIT, q->w, q->t2, &t, &e);
    } else {
      st = gsl_integration_qag(&f, lo, hi, tol / CORE_PIECES, epsrel, Q_LIMIT, GSL_INTEG_GAUSS31,
                               q->w, &t, &e);
    }
    if (c->status) return c->status;
    if (q_failed(st, e, 100.0 * tol / CORE_PIECES + 1e-6 * fabs(t))) return NNFT_ENOCONV;
    *res += t;
    *err += e;
    lo = hi;
  }
  return NNFT_OK;
}

/* The transform at one p >= 0: raw integral times the prefactor. epsabs on K̃ itself; a is the
 * core radius (40 length scales) beyond which the tail methods take over. */
static nnft_status q_one(q_ws *q, q_ctx *c, size_t d, double p, double a, double epsabs,
                         double epsrel, double *val, double *abserr) {
  gsl_function f = {q_integrand, c};
  double res = 0, err = 0, pre, t = 0, e = 0;
  nnft_status s;
  int st;
  c->p = p;
  c->status = NNFT_OK;
  c->bessel = 0;
  if (p == 0) {
    c->power = (int)d - 1;
    pre = d == 1 ? 2.0 : d == 2 ? 2.0 * M_PI : 4.0 * M_PI;
    double tol = epsabs / pre;
    if ((s = q_core(q, c, a, 0, 0.5 * tol, epsrel, &res, &err))) return s;
    st = gsl_integration_qagiu(&f, a, 0.5 * tol, epsrel, Q_LIMIT, q->w, &t, &e);
    if (c->status) return c->status;
    if (q_failed(st, e, 100.0 * tol + 1e-6 * fabs(t))) return NNFT_ENOCONV;
    res += t;
    err += e;
  } else if (d == 1 || d == 3) {
    c->power = d == 1 ? 0 : 1;
    pre = d == 1 ? 2.0 : 4.0 * M_PI / p;
    double tol = epsabs / pre;
    if ((s = q_core(q, c, a, d == 1 ? 1 : 2, 0.5 * tol, epsrel, &res, &err))) return s;
    gsl_integration_qawo_table_set(q->t, p, 1.0, d == 1 ? GSL_INTEG_COSINE : GSL_INTEG_SINE);
    st = gsl_integration_qawf(&f, a, 0.5 * tol, Q_LIMIT, q->w, q->cw, q->t, &t, &e);
    if (c->status) return c->status;
    if (q_failed(st, e, 100.0 * tol + 1e-6 * fabs(t))) return NNFT_ENOCONV;
    res += t;
    err += e;
  } else {
    /* d = 2: the core, then pieces between the zeros of J0(pr) beyond a, summed (Levin
     * u-transform when the terms do not die out: a slowly decaying K). */
    c->power = 1;
    c->bessel = 1;
    pre = 2.0 * M_PI;
    double tol = epsabs / pre, sum = 0.0;
    if ((s = q_core(q, c, a, 0, 0.5 * tol, epsrel, &res, &err))) return s;
    /* the first zero beyond a: j_{0,s} ≈ (s − 1/4)π */
    unsigned s0 = (unsigned)fmax(1.0, floor(a * p / M_PI + 0.25) - 1.0);
    while (gsl_sf_bessel_zero_J0(s0) / p <= a) s0++;
    size_t nt = 0, small = 0;
    int done = 0;
    double lo = a;
    for (unsigned z = s0; z < s0 + D2_MAX_TERMS; z++) {
      if (nnft_interrupted()) return NNFT_EINTR;
      double hi = gsl_sf_bessel_zero_J0(z) / p;
      st = gsl_integration_qag(&f, lo, hi, 0.05 * tol, epsrel, Q_LIMIT, GSL_INTEG_GAUSS31, q->w,
                               &t, &e);
      if (c->status) return c->status;
      if (q_failed(st, e, tol + 1e-6 * fabs(t))) return NNFT_ENOCONV;
      q->terms[nt++] = t;
      sum += t;
      err += e;
      lo = hi;
      small = fabs(t) <= 0.005 * tol ? small + 1 : 0;
      if (small >= 3) {
        done = 1;
        break;
      }
    }
    if (done) {
      res += sum;
    } else {
      double acc, aerr;
      gsl_sum_levin_utrunc_accel(q->terms, nt, q->lev, &acc, &aerr);
      if (!(isfinite(acc) && aerr <= 100.0 * tol + 1e-4 * fabs(acc))) return NNFT_ENOCONV;
      res += acc;
      err += aerr;
    }
  }
  *val = pre * res;
  *abserr = pre * err;
  return NNFT_OK;
}

static nnft_status spectrum_quadrature(const nnft_kernel *k, size_t d, double epsrel,
                                       const nnft_mat *p, nnft_mat *out,
                                       nnft_spectrum_info *info) {
  q_ws q;
  memset(&q, 0, sizeof q);
  q_ctx c = {NULL, 0, 0, 0, NNFT_OK};
  nnft_status s = nnft_kernel_radial_ws_alloc(k, d, &c.kw);
  if (s) return s;
  q.w = gsl_integration_workspace_alloc(Q_LIMIT);
  q.cw = gsl_integration_workspace_alloc(Q_LIMIT);
  q.t = gsl_integration_qawo_table_alloc(1.0, 1.0, GSL_INTEG_COSINE, 30);
  q.t2 = gsl_integration_qawo_table_alloc(1.0, 1.0, GSL_INTEG_COSINE, 30);
  q.lev = gsl_sum_levin_utrunc_alloc(D2_MAX_TERMS);
  q.terms = nnft_alloc(D2_MAX_TERMS * sizeof(double));
  if (!q.w || !q.cw || !q.t || !q.t2 || !q.lev || !q.terms) {
    s = NNFT_ENOMEM;
    goto done;
  }
  /* the accuracy scale: |K(0)| ℓ^d, about K̃(0) for a kernel of length scale ℓ */
  double zero = 0.0, k0, ell = nnft_kernel_length_scale(k);
  if ((s = nnft_kernel_radial_eval(c.kw, &zero, 1, &k0))) goto done;
  if (!(ell > 0 && isfinite(ell))) ell = 1.0;
  double scale = fabs(k0) * pow(ell, (double)d), core = 40.0 * ell;
  if (!(scale > 0)) scale = 1.0;
  double maxerr = 0;
  for (size_t j = 0; j < p->cols; j++)
    for (size_t i = 0; i < p->rows; i++) {
      if (nnft_interrupted()) {
        s = NNFT_EINTR;
        goto done;
      }
      double pv = NNFT_AT(p, i, j), v, e;
      if ((s = q_one(&q, &c, d, pv, core, epsrel * scale, epsrel, &v, &e))) goto done;
      /* far in the tail: once more, to the result's own relative accuracy (down to 1e-10 of
       * the scale; below, an absolute accuracy epsrel·scale is all a zero spectrum can have) */
      if (fabs(v) < 1e-2 * scale && fabs(v) > 1e-10 * scale) {
        double eps2 = epsrel * fabs(v);
        if ((s = q_one(&q, &c, d, pv, core, eps2, epsrel, &v, &e))) goto done;
      }
      NNFT_AT(out, i, j) = v;
      if (e > maxerr) maxerr = e;
    }
  if (info) info->abserr = maxerr;
done:
  q_ws_free(&q);
  nnft_kernel_radial_ws_free(c.kw);
  return s;
}

/* ---------------------------------------------------------------------------------------------
 * FFT on a grid with radial binning */

static size_t default_n(size_t d) { return d == 1 ? 4096 : d == 2 ? 256 : 64; }

/* L = 2 r_tail × pad: |K| below 1e-10 K(0) at r, 1.5 r and 2 r; searched up to 500 ℓ (200 ℓ
 * when it never decays). The padding (16, 4, 1 in d = 1, 2, 3) refines the momentum grid
 * 2π/L where the default n leaves room. */
static nnft_status default_box(nnft_kernel_radial_ws *kw, const nnft_kernel *k, size_t d,
                               double *L) {
  double pad = d == 1 ? 16.0 : d == 2 ? 4.0 : 1.0;
  double ell = nnft_kernel_length_scale(k), zero = 0.0, k0;
  if (!(ell > 0 && isfinite(ell))) ell = 1.0;
  nnft_status s = nnft_kernel_radial_eval(kw, &zero, 1, &k0);
  if (s) return s;
  double tol = 1e-10 * fabs(k0);
  for (double r = 0.25 * ell; r <= 500.0 * ell; r *= 1.2) {
    double rs[3] = {r, 1.5 * r, 2.0 * r}, v[3];
    if ((s = nnft_kernel_radial_eval(kw, rs, 3, v))) return s;
    if (fabs(v[0]) <= tol && fabs(v[1]) <= tol && fabs(v[2]) <= tol) {
      *L = 2.0 * r * pad;
      return NNFT_OK;
    }
  }
  *L = 200.0 * ell;
  return NNFT_OK;
}

/* Centred index of grid position i in 0..n-1. */
static inline long centred(size_t i, size_t n) {
  return i < n / 2 ? (long)i : (long)i - (long)n;
}

static nnft_status spectrum_fft(const nnft_kernel *k, size_t d, const nnft_spectrum_opts *o,
                                const nnft_mat *p, nnft_mat *out, nnft_spectrum_info *info) {
  size_t n = o->n ? o->n : default_n(d);
  if (n < 16 || n % 2) return NNFT_EDOM;
  nnft_kernel_radial_ws *kw = NULL;
  nnft_status s = nnft_kernel_radial_ws_alloc(k, d, &kw);
  if (s) return s;
  double *grid = NULL, *rad = NULL, *kval = NULL, *ssum = NULL, *ps = NULL, *vs = NULL;
  size_t *scount = NULL;
  gsl_fft_complex_wavetable *wt = NULL;
  gsl_fft_complex_workspace *fw = NULL;
  gsl_interp *interp = NULL;
  gsl_interp_accel *acc = NULL;
  double L = o->L;
  if (L == 0 && (s = default_box(kw, k, d, &L))) goto done;
  double h = L / (double)n;
  /* sizes: n^d complex points; radius keys 0..kmax (|k| for d = 1, |k|² otherwise) */
  size_t total = 1, half = n / 2, kmax, bytes;
  for (size_t a = 0; a < d; a++)
    if ((s = nnft_size_mul(total, n, &total))) goto done;
  if ((s = nnft_size_mul(total, 2 * sizeof(double), &bytes))) goto done;
  if (bytes > nnft_mat_max_bytes()) {
    s = NNFT_EOVERFLOW;
    goto done;
  }
  kmax = d == 1 ? half : d * half * half;
  grid = nnft_alloc(bytes);
  rad = nnft_alloc((kmax + 1) * sizeof(double));
  kval = nnft_alloc((kmax + 1) * sizeof(double));
  size_t smax = d == 1 ? half : (half - 1) * (half - 1); /* shells kept */
  ssum = nnft_alloc((smax + 1) * sizeof(double));
  scount = nnft_alloc((smax + 1) * sizeof(size_t));
  ps = nnft_alloc((2 * smax + 1) * sizeof(double));
  vs = nnft_alloc((2 * smax + 1) * sizeof(double));
  if (!grid || !rad || !kval || !ssum || !scount || !ps || !vs) {
    s = NNFT_ENOMEM;
    goto done;
  }
  /* K at every possible grid radius (keys that do not occur cost one evaluation each) */
  for (size_t key = 0; key <= kmax; key++)
    rad[key] = d == 1 ? h * (double)key : h * sqrt((double)key);
  if ((s = nnft_kernel_radial_eval(kw, rad, kmax + 1, kval))) goto done;
  for (size_t idx = 0; idx < total; idx++) {
    size_t rem = idx, key = 0;
    for (size_t a = 0; a < d; a++) {
      long c = centred(rem % n, n);
      rem /= n;
      key += d == 1 ? (size_t)labs(c) : (size_t)(c * c);
    }
    grid[2 * idx] = kval[key];
    grid[2 * idx + 1] = 0.0;
  }
  /* FFT along each axis */
  wt = gsl_fft_complex_wavetable_alloc(n);
  fw = gsl_fft_complex_workspace_alloc(n);
  if (!wt || !fw) {
    s = NNFT_ENOMEM;
    goto done;
  }
  for (size_t a = 0, stride = 1; a < d; a++, stride *= n) {
    for (size_t line = 0; line < total / n; line++) {
      if ((line & 255) == 0 && nnft_interrupted()) {
        s = NNFT_EINTR;
        goto done;
      }
      /* the line's base: index with axis a's digit zero */
      size_t lo = line % stride, hi = line / stride, base = lo + hi * stride * n;
      if (gsl_fft_complex_forward(grid + 2 * base, stride, n, wt, fw)) {
        s = NNFT_EINTERNAL;
        goto done;
      }
    }
  }
  /* radial binning into exact shells |k|² = s (|k|_i < n/2, |k| <= n/2 − 1) */
  memset(ssum, 0, (smax + 1) * sizeof(double));
  memset(scount, 0, (smax + 1) * sizeof(size_t));
  double hd = pow(h, (double)d);
  for (size_t idx = 0; idx < total; idx++) {
    size_t rem = idx, key = 0;
    int ok = 1;
    for (size_t a = 0; a < d; a++) {
      long c = centred(rem % n, n);
      rem /= n;
      if (labs(c) >= (long)half) ok = 0;
      key += d == 1 ? (size_t)labs(c) : (size_t)(c * c);
    }
    if (!ok || key > smax) continue;
    ssum[key] += hd * grid[2 * idx];
    scount[key]++;
  }
  /* shells in increasing |p|, mirrored to negative |p| (K̃ is even in p: the spline then needs
   * no boundary condition at p = 0) */
  size_t nshell = 0, ns;
  double dp = 2.0 * M_PI / L;
  for (size_t key = 0; key <= smax; key++) nshell += scount[key] != 0;
  if (info) {
    info->n = n;
    info->L = L;
  }
  if (nshell < 3) {
    s = NNFT_EDOM;
    goto done;
  }
  ns = 2 * nshell - 1;
  for (size_t key = 0, at = nshell - 1; key <= smax; key++)
    if (scount[key]) {
      ps[at] = dp * (d == 1 ? (double)key : sqrt((double)key));
      vs[at] = ssum[key] / (double)scount[key];
      ps[2 * (nshell - 1) - at] = -ps[at];
      vs[2 * (nshell - 1) - at] = vs[at];
      at++;
    }
  if (info) info->p_max = ps[ns - 1];
  for (size_t j = 0; j < p->cols; j++)
    for (size_t i = 0; i < p->rows; i++)
      if (NNFT_AT(p, i, j) > ps[ns - 1]) {
        s = NNFT_EDOM; /* beyond the grid's reach */
        goto done;
      }
  interp = gsl_interp_alloc(gsl_interp_cspline, ns);
  acc = gsl_interp_accel_alloc();
  if (!interp || !acc) {
    s = NNFT_ENOMEM;
    goto done;
  }
  if (gsl_interp_init(interp, ps, vs, ns)) {
    s = NNFT_EINTERNAL;
    goto done;
  }
  for (size_t j = 0; j < p->cols; j++)
    for (size_t i = 0; i < p->rows; i++)
      NNFT_AT(out, i, j) = gsl_interp_eval(interp, ps, vs, NNFT_AT(p, i, j), acc);
done:
  if (interp) gsl_interp_free(interp);
  if (acc) gsl_interp_accel_free(acc);
  if (wt) gsl_fft_complex_wavetable_free(wt);
  if (fw) gsl_fft_complex_workspace_free(fw);
  nnft_free(grid);
  nnft_free(rad);
  nnft_free(kval);
  nnft_free(ssum);
  nnft_free(scount);
  nnft_free(ps);
  nnft_free(vs);
  nnft_kernel_radial_ws_free(kw);
  return s;
}

/* ---------------------------------------------------------------------------------------------
 * Entry point */

nnft_status nnft_spectrum(const nnft_kernel *k, size_t d, const nnft_spectrum_opts *opts,
                          const nnft_mat *p, nnft_mat *out, nnft_spectrum_info *info) {
  nnft_spectrum_opts o = opts ? *opts : nnft_spectrum_defaults();
  nnft_status s;
  if (info) memset(info, 0, sizeof *info);
  if ((s = nnft_kernel_check(k))) return s;
  if (d < 1 || d > 3) return NNFT_EDOM;
  size_t dim;
  if ((s = nnft_kernel_input_dim(k, &dim))) return s;
  if (dim && dim != d) return NNFT_EDIM;
  if (!nnft_kernel_is_stationary(k)) return NNFT_EDOM;
  if (!p || !out || !p->data || !out->data || out->rows != p->rows || out->cols != p->cols)
    return NNFT_EDIM;
  if (nnft_mat_overlap(p, out)) return NNFT_EDOM;
  if (!nnft_mat_all_finite(p)) return NNFT_ENONFINITE;
  for (size_t j = 0; j < p->cols; j++)
    for (size_t i = 0; i < p->rows; i++)
      if (NNFT_AT(p, i, j) < 0) return NNFT_EDOM;
  if (!(o.epsrel > 0 && o.epsrel < 1) || !(isfinite(o.L) && o.L >= 0)) return NNFT_EDOM;
  if (p->rows == 0 || p->cols == 0) return NNFT_OK;
  switch (o.method) {
  case NNFT_SPECTRUM_ANALYTIC: {
    const char *why;
    if ((s = analytic_check(k, &why))) return s;
    for (size_t j = 0; j < p->cols; j++)
      for (size_t i = 0; i < p->rows; i++) NNFT_AT(out, i, j) = analytic_at(k, d, NNFT_AT(p, i, j));
    return NNFT_OK;
  }
  case NNFT_SPECTRUM_QUADRATURE: return spectrum_quadrature(k, d, o.epsrel, p, out, info);
  case NNFT_SPECTRUM_FFT: return spectrum_fft(k, d, &o, p, out, info);
  }
  return NNFT_EDOM;
}
