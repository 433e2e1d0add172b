/* nnft_coupling: couplings, fits and LPA flows (physics.md §4). See nnft_coupling.h. */
#include "nnft_coupling.h"

#include <gsl/gsl_errno.h>
#include <gsl/gsl_odeiv2.h>
#include <lapacke.h>
#include <math.h>
#include <string.h>

#include "nnft_alloc.h"
#include "nnft_linalg.h"

nnft_status nnft_coupling_lambda(size_t count, const double *dG4, const double *dG4_err,
                                 const double *I4, nnft_coupling_conv conv, double *lam,
                                 double *lam_err, size_t *bad) {
  if (count && (!dG4 || !I4 || !lam)) return NNFT_EDOM;
  if (conv != NNFT_CONV_HMS && conv != NNFT_CONV_ELS) return NNFT_EDOM;
  double c = conv == NNFT_CONV_HMS ? 24.0 : 1.0;
  for (size_t t = 0; t < count; t++) {
    if (!isfinite(dG4[t]) || (dG4_err && isnan(dG4_err[t]))) {
      if (bad) *bad = t;
      return NNFT_ENONFINITE;
    }
    if (!(I4[t] != 0) || !isfinite(I4[t])) {
      if (bad) *bad = t;
      return NNFT_EDOM;
    }
  }
  for (size_t t = 0; t < count; t++) {
    lam[t] = -dG4[t] / (c * I4[t]);
    if (lam_err) lam_err[t] = dG4_err ? fabs(dG4_err[t] / (c * I4[t])) : NAN;
  }
  return NNFT_OK;
}

nnft_status nnft_coupling_local(size_t count, const double *lam, const double *err,
                                nnft_coupling_locality *out) {
  if (!count || !lam || !out) return NNFT_EDOM;
  double m = 0;
  for (size_t t = 0; t < count; t++) m += lam[t];
  m /= (double)count;
  double v = 0;
  for (size_t t = 0; t < count; t++) v += (lam[t] - m) * (lam[t] - m);
  out->mean = m;
  out->std = count > 1 ? sqrt(v / (double)(count - 1)) : NAN;
  out->rel_spread = out->std / fabs(m);
  out->dof = count - 1;
  out->wmean = out->wmean_err = out->chi2 = NAN;
  if (err) {
    double sw = 0, swx = 0;
    for (size_t t = 0; t < count; t++)
      if (err[t] > 0 && isfinite(err[t])) {
        double w = 1.0 / (err[t] * err[t]);
        sw += w;
        swx += w * lam[t];
      }
    if (sw > 0) {
      out->wmean = swx / sw;
      out->wmean_err = 1.0 / sqrt(sw);
      double c2 = 0;
      size_t used = 0;
      for (size_t t = 0; t < count; t++)
        if (err[t] > 0 && isfinite(err[t])) {
          double r = (lam[t] - out->wmean) / err[t];
          c2 += r * r;
          used++;
        }
      out->chi2 = c2;
      out->dof = used ? used - 1 : 0;
    }
  }
  return NNFT_OK;
}

nnft_status nnft_coupling_fit_nonlocal(size_t count, const double *dG4, const double *err,
                                       const double *T0, const double *T2, const double *TNL,
                                       size_t nb, double *coef, double *cov, double *chi2,
                                       size_t *rank) {
  if (nb < 1 || nb > 3 || count < nb || !dG4 || !T0 || (nb > 1 && !T2) || (nb > 2 && !TNL) ||
      !coef)
    return NNFT_EDOM;
  const double *T[3] = {T0, T2, TNL};
  for (size_t t = 0; t < count; t++) {
    if (err && !(err[t] > 0 && isfinite(err[t]))) return NNFT_EDOM;
    if (!isfinite(dG4[t])) return NNFT_ENONFINITE;
    for (size_t j = 0; j < nb; j++)
      if (!isfinite(T[j][t])) return NNFT_ENONFINITE;
  }
  nnft_mat A = {0}, b = {0}, x = {0}, s = {0}, G = {0}, Gi = {0};
  nnft_status st;
  if ((st = nnft_mat_alloc(count, nb, &A)) || (st = nnft_mat_alloc(count, 1, &b)) ||
      (st = nnft_mat_alloc(nb, 1, &x)) || (st = nnft_mat_alloc(nb, 1, &s)) ||
      (st = nnft_mat_alloc(nb, nb, &G)) || (st = nnft_mat_alloc(nb, nb, &Gi)))
    goto done;
  /* Column scaling makes the problem well conditioned whatever the units of T. */
  double scale[3] = {0, 0, 0};
  for (size_t t = 0; t < count; t++) {
    double w = err ? 1.0 / err[t] : 1.0;
    b.data[t] = w * dG4[t];
    for (size_t j = 0; j < nb; j++) {
      NNFT_AT(&A, t, j) = w * T[j][t];
      scale[j] += NNFT_AT(&A, t, j) * NNFT_AT(&A, t, j);
    }
  }
  for (size_t j = 0; j < nb; j++) {
    scale[j] = scale[j] > 0 ? 1.0 / sqrt(scale[j]) : 1.0;
    for (size_t t = 0; t < count; t++) NNFT_AT(&A, t, j) *= scale[j];
  }
  size_t rk = 0;
  if ((st = nnft_linalg_lstsq(&A, &b, -1.0, &x, &s, &rk, NULL))) goto done;
  double c2 = 0;
  for (size_t t = 0; t < count; t++) {
    double r = b.data[t];
    for (size_t j = 0; j < nb; j++) r -= NNFT_AT(&A, t, j) * x.data[j];
    c2 += r * r;
  }
  for (size_t j = 0; j < nb; j++) coef[j] = x.data[j] * scale[j];
  if (chi2) *chi2 = c2;
  if (rank) *rank = rk;
  if (cov) {
    for (size_t i = 0; i < nb; i++)
      for (size_t j = 0; j < nb; j++) {
        double g = 0;
        for (size_t t = 0; t < count; t++) g += NNFT_AT(&A, t, i) * NNFT_AT(&A, t, j);
        NNFT_AT(&G, i, j) = g;
      }
    double f = err ? 1.0 : (count > nb ? c2 / (double)(count - nb) : NAN);
    if (rk == nb && nnft_linalg_inv_spd(&G, &Gi, NULL) == NNFT_OK) {
      for (size_t i = 0; i < nb; i++)
        for (size_t j = 0; j < nb; j++) cov[i + nb * j] = f * NNFT_AT(&Gi, i, j) * scale[i] * scale[j];
    } else {
      for (size_t i = 0; i < nb * nb; i++) cov[i] = NAN;
    }
  }
done:
  nnft_mat_free(&A);
  nnft_mat_free(&b);
  nnft_mat_free(&x);
  nnft_mat_free(&s);
  nnft_mat_free(&G);
  nnft_mat_free(&Gi);
  return st;
}

void nnft_coupling_six_point(size_t count, double lambda, const double *S6, double *dG6) {
  for (size_t t = 0; t < count; t++) dG6[t] = -24.0 * lambda * S6[t];
}

nnft_status nnft_coupling_loglog_fit(size_t n, const double *x, const double *y,
                                     nnft_coupling_loglog *out) {
  if (!out || (n && (!x || !y))) return NNFT_EDOM;
  double sx = 0, sy = 0;
  size_t m = 0;
  for (size_t i = 0; i < n; i++)
    if (x[i] > 0 && isfinite(x[i]) && y[i] != 0 && isfinite(y[i])) {
      sx += log(x[i]);
      sy += log(fabs(y[i]));
      m++;
    }
  out->used = m;
  if (m < 3) return NNFT_EDOM;
  double mx = sx / (double)m, my = sy / (double)m, sxx = 0, sxy = 0, syy = 0;
  for (size_t i = 0; i < n; i++)
    if (x[i] > 0 && isfinite(x[i]) && y[i] != 0 && isfinite(y[i])) {
      double u = log(x[i]) - mx, v = log(fabs(y[i])) - my;
      sxx += u * u;
      sxy += u * v;
      syy += v * v;
    }
  if (!(sxx > 0)) return NNFT_EDOM;
  double a = sxy / sxx, b = my - a * mx;
  double rss = syy - a * sxy;
  if (rss < 0) rss = 0;
  out->slope = a;
  out->intercept = b;
  out->slope_err = sqrt(rss / (double)(m - 2) / sxx);
  out->r2 = syy > 0 ? 1.0 - rss / syy : 1.0;
  return NNFT_OK;
}

nnft_status nnft_coupling_dlog(size_t m, const double *Lambda, const double *Iv, double *dlog) {
  if (m < 2 || !Lambda || !Iv || !dlog) return NNFT_EDOM;
  for (size_t c = 0; c < m; c++) {
    if (!(Lambda[c] > 0) || !isfinite(Lambda[c]) || (c && !(Lambda[c] > Lambda[c - 1])))
      return NNFT_EDOM;
    if (!(Iv[c] != 0) || !isfinite(Iv[c])) return NNFT_EDOM;
  }
  for (size_t c = 0; c < m; c++) {
    /* three-point derivative of y(s) = ln|Iv| in s = ln Λ on a non-uniform grid */
    size_t i0 = c == 0 ? 0 : (c == m - 1 ? (m >= 3 ? m - 3 : 0) : c - 1);
    if (m == 2) {
      dlog[c] = (log(fabs(Iv[1])) - log(fabs(Iv[0]))) / (log(Lambda[1]) - log(Lambda[0]));
      continue;
    }
    double s0 = log(Lambda[i0]), s1 = log(Lambda[i0 + 1]), s2 = log(Lambda[i0 + 2]);
    double y0 = log(fabs(Iv[i0])), y1 = log(fabs(Iv[i0 + 1])), y2 = log(fabs(Iv[i0 + 2]));
    double s = log(Lambda[c]);
    /* derivative of the Lagrange interpolant at s */
    dlog[c] = y0 * ((s - s1) + (s - s2)) / ((s0 - s1) * (s0 - s2)) +
              y1 * ((s - s0) + (s - s2)) / ((s1 - s0) * (s1 - s2)) +
              y2 * ((s - s0) + (s - s1)) / ((s2 - s0) * (s2 - s1));
  }
  return NNFT_OK;
}

/* ---- LPA ---- */

double nnft_lpa_vd(double d) { return 1.0 / (pow(2.0, d) * pow(M_PI, 0.5 * d) * tgamma(0.5 * d + 1.0)); }

/* The loop parts β2, β4, β6. */
static void lpa_loops(double d, const double *u, double *b) {
  double V = nnft_lpa_vd(d), a = 1.0 + u[0], u4 = u[1], u6 = u[2];
  b[0] = -V * u4 / (a * a);
  b[1] = V / (a * a) * (-u6 + 6.0 * u4 * u4 / a);
  b[2] = V * u4 / (a * a * a) * (30.0 * u6 - 90.0 * u4 * u4 / a);
}

void nnft_lpa_rhs(double d, const double *u, double *du) {
  double b[3];
  lpa_loops(d, u, b);
  du[0] = -2.0 * u[0] + b[0];
  du[1] = (d - 4.0) * u[1] + b[1];
  du[2] = (2.0 * d - 6.0) * u[2] + b[2];
}

void nnft_lpa_jacobian(double d, const double *u, double *J) {
  double V = nnft_lpa_vd(d), a = 1.0 + u[0], u4 = u[1], u6 = u[2];
  double a2 = a * a, a3 = a2 * a, a4 = a3 * a, a5 = a4 * a;
  J[0 + 3 * 0] = -2.0 + 2.0 * V * u4 / a3;
  J[0 + 3 * 1] = -V / a2;
  J[0 + 3 * 2] = 0.0;
  J[1 + 3 * 0] = 2.0 * V * u6 / a3 - 18.0 * V * u4 * u4 / a4;
  J[1 + 3 * 1] = (d - 4.0) + 12.0 * V * u4 / a3;
  J[1 + 3 * 2] = -V / a2;
  J[2 + 3 * 0] = -90.0 * V * u4 * u6 / a4 + 360.0 * V * u4 * u4 * u4 / a5;
  J[2 + 3 * 1] = 30.0 * V * u6 / a3 - 270.0 * V * u4 * u4 / a4;
  J[2 + 3 * 2] = (2.0 * d - 6.0) + 30.0 * V * u4 / a3;
}

nnft_status nnft_lpa_fixed_point(double d, const double *guess, double *u, int *iters) {
  if (!(d > 0 && d <= 8) || !guess || !u) return NNFT_EDOM;
  double x[3] = {guess[0], guess[1], guess[2]};
  for (int it = 0; it < 100; it++) {
    if (!(1.0 + x[0] > 0)) return NNFT_ENOCONV;
    double f[3], J[9];
    nnft_lpa_rhs(d, x, f);
    double nf = fabs(f[0]) + fabs(f[1]) + fabs(f[2]);
    double sc = 1.0 + fabs(x[0]) + fabs(x[1]) + fabs(x[2]);
    if (nf <= 1e-13 * sc) {
      memcpy(u, x, sizeof x);
      if (iters) *iters = it;
      return NNFT_OK;
    }
    nnft_lpa_jacobian(d, x, J);
    /* solve J δ = −f (3 x 3, partial pivoting via LAPACK dgesv) */
    lapack_int ipiv[3];
    double rhs[3] = {-f[0], -f[1], -f[2]};
    lapack_int info = LAPACKE_dgesv(LAPACK_COL_MAJOR, 3, 1, J, 3, ipiv, rhs, 3);
    if (info < 0) return NNFT_EINTERNAL;
    if (info > 0) return NNFT_ESINGULAR;
    /* damp steps that would cross the pole ū2 = −1 */
    double lam = 1.0;
    while (1.0 + x[0] + lam * rhs[0] <= 0 && lam > 1e-6) lam *= 0.5;
    for (int i = 0; i < 3; i++) x[i] += lam * rhs[i];
  }
  return NNFT_ENOCONV;
}

nnft_status nnft_lpa_exponents(double d, const double *u, double *re, double *im) {
  if (!(d > 0 && d <= 8) || !u || !re || !im) return NNFT_EDOM;
  if (!(1.0 + u[0] > 0)) return NNFT_EDOM;
  double J[9], vl[1], vr[1];
  nnft_lpa_jacobian(d, u, J);
  lapack_int info = LAPACKE_dgeev(LAPACK_COL_MAJOR, 'N', 'N', 3, J, 3, re, im, vl, 1, vr, 1);
  if (info < 0) return NNFT_EINTERNAL;
  if (info > 0) return NNFT_ENOCONV;
  for (int i = 1; i < 3; i++) /* insertion sort by real part */
    for (int j = i; j > 0 && re[j] < re[j - 1]; j--) {
      double t = re[j];
      re[j] = re[j - 1];
      re[j - 1] = t;
      t = im[j];
      im[j] = im[j - 1];
      im[j - 1] = t;
    }
  return NNFT_OK;
}

nnft_lpa_opts nnft_lpa_defaults(void) {
  nnft_lpa_opts o = {0, NNFT_LPA_MSBDF, 1e-12, 1e-10};
  return o;
}

typedef struct {
  double d;
  int dimensionful;
} lpa_ctx;

static int lpa_func(double t, const double y[], double f[], void *params) {
  const lpa_ctx *c = params;
  if (!c->dimensionful) {
    if (!(1.0 + y[0] > 0)) return GSL_EBADFUNC;
    nnft_lpa_rhs(c->d, y, f);
  } else {
    double k = exp(t), d = c->d, ub[3], b[3];
    ub[0] = y[0] / (k * k);
    ub[1] = y[1] * pow(k, d - 4.0);
    ub[2] = y[2] * pow(k, 2.0 * d - 6.0);
    if (!(1.0 + ub[0] > 0)) return GSL_EBADFUNC;
    lpa_loops(d, ub, b);
    f[0] = k * k * b[0];
    f[1] = pow(k, 4.0 - d) * b[1];
    f[2] = pow(k, 6.0 - 2.0 * d) * b[2];
  }
  for (int i = 0; i < 3; i++)
    if (!isfinite(f[i])) return GSL_EBADFUNC;
  return GSL_SUCCESS;
}

/* Jacobian by central differences (dimensionful form) or analytic (dimensionless). */
static int lpa_jac(double t, const double y[], double *dfdy, double dfdt[], void *params) {
  const lpa_ctx *c = params;
  double f0[3];
  int s = lpa_func(t, y, f0, params);
  if (s) return s;
  if (!c->dimensionful) {
    double J[9];
    nnft_lpa_jacobian(c->d, y, J);
    for (int i = 0; i < 3; i++)
      for (int j = 0; j < 3; j++) dfdy[i * 3 + j] = J[i + 3 * j]; /* GSL: row-major */
    dfdt[0] = dfdt[1] = dfdt[2] = 0;
    return GSL_SUCCESS;
  }
  for (int j = 0; j < 3; j++) {
    double h = 1e-6 * (fabs(y[j]) + 1e-6), yp[3], ym[3], fp[3], fm[3];
    memcpy(yp, y, sizeof yp);
    memcpy(ym, y, sizeof ym);
    yp[j] += h;
    ym[j] -= h;
    if (lpa_func(t, yp, fp, params) || lpa_func(t, ym, fm, params)) return GSL_EBADFUNC;
    for (int i = 0; i < 3; i++) dfdy[i * 3 + j] = (fp[i] - fm[i]) / (2 * h);
  }
  double ht = 1e-6, fp[3], fm[3];
  if (lpa_func(t + ht, y, fp, params) || lpa_func(t - ht, y, fm, params)) return GSL_EBADFUNC;
  for (int i = 0; i < 3; i++) dfdt[i] = (fp[i] - fm[i]) / (2 * ht);
  return GSL_SUCCESS;
}

nnft_status nnft_lpa_integrate(double d, const double *u0, size_t nk, const double *k,
                               const nnft_lpa_opts *opts, nnft_mat *out) {
  nnft_lpa_opts o = opts ? *opts : nnft_lpa_defaults();
  if (!(d > 0 && d <= 8) || !u0 || nk < 1 || !k || !out) return NNFT_EDOM;
  if (out->rows != nk || out->cols != 3) return NNFT_EDIM;
  if (!(o.epsabs >= 0) || !(o.epsrel >= 0) || (o.epsabs == 0 && o.epsrel == 0)) return NNFT_EDOM;
  int dir = 0;
  for (size_t i = 0; i < nk; i++) {
    if (!(k[i] > 0) || !isfinite(k[i])) return NNFT_EDOM;
    if (i > 0) {
      int s = k[i] > k[i - 1] ? 1 : (k[i] < k[i - 1] ? -1 : 0);
      if (s == 0 || (dir && s != dir)) return NNFT_EDOM;
      dir = s;
    }
  }
  for (int i = 0; i < 3; i++)
    if (!isfinite(u0[i])) return NNFT_ENONFINITE;
  lpa_ctx c = {d, o.dimensionful};
  gsl_odeiv2_system sys = {lpa_func, lpa_jac, 3, &c};
  const gsl_odeiv2_step_type *T =
      o.method == NNFT_LPA_RK4IMP ? gsl_odeiv2_step_rk4imp : gsl_odeiv2_step_msbdf;
  double y[3] = {u0[0], u0[1], u0[2]};
  for (size_t i = 0; i < nk; i++)
    for (int j = 0; j < 3; j++) NNFT_AT(out, i, j) = NAN;
  for (int j = 0; j < 3; j++) NNFT_AT(out, 0, j) = y[j];
  {
    double f[3];
    if (lpa_func(log(k[0]), y, f, &c)) return NNFT_EDOM; /* starts at or beyond the pole */
  }
  if (nk == 1) return NNFT_OK;
  double t = log(k[0]);
  double h0 = dir * 1e-3;
  gsl_odeiv2_driver *drv = gsl_odeiv2_driver_alloc_y_new(&sys, T, h0, o.epsabs, o.epsrel);
  if (!drv) return NNFT_ENOMEM;
  gsl_odeiv2_driver_set_nmax(drv, 1000000);
  nnft_status st = NNFT_OK;
  for (size_t i = 1; i < nk; i++) {
    if (nnft_interrupted()) {
      st = NNFT_EINTR;
      break;
    }
    int s = gsl_odeiv2_driver_apply(drv, &t, log(k[i]), y);
    if (s != GSL_SUCCESS) {
      st = NNFT_ENOCONV;
      break;
    }
    for (int j = 0; j < 3; j++) NNFT_AT(out, i, j) = y[j];
  }
  gsl_odeiv2_driver_free(drv);
  return st;
}

nnft_status nnft_lpa_passive(double d, double sigma0, double u4_0, double u6_0, size_t nk,
                             const double *k, const nnft_lpa_opts *opts, nnft_mat *out) {
  if (!(sigma0 > 0) || !isfinite(sigma0) || !out) return NNFT_EDOM;
  if (out->rows != nk || out->cols != 4) return NNFT_EDIM;
  nnft_lpa_opts o = opts ? *opts : nnft_lpa_defaults();
  o.dimensionful = 1;
  double u0[3] = {2.0 * sigma0 * sigma0 / d, u4_0, u6_0};
  nnft_mat v = {0};
  nnft_status st = nnft_mat_alloc(nk, 3, &v);
  if (st) return st;
  st = nnft_lpa_integrate(d, u0, nk, k, &o, &v);
  if (st == NNFT_OK || st == NNFT_ENOCONV || st == NNFT_EINTR)
    for (size_t i = 0; i < nk; i++) {
      double u2 = NNFT_AT(&v, i, 0);
      NNFT_AT(out, i, 0) = u2 >= 0 ? sqrt(d * u2 / 2.0) : NAN;
      for (int j = 0; j < 3; j++) NNFT_AT(out, i, j + 1) = NNFT_AT(&v, i, j);
    }
  nnft_mat_free(&v);
  return st;
}
