#include "nnft_freeprop.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_errno.h>
#include <gsl/gsl_integration.h>
#include <gsl/gsl_sf_bessel.h>

#include "nnft_alloc.h"

#define FP_LIMIT 1000   /* subintervals per adaptive integration */
#define FP_QAWO_LEVELS 64
#define FP_MAX_POWER 16.0

struct nnft_freeprop_ws {
  gsl_integration_workspace *w;
  gsl_integration_qawo_table *t;
  /* G_s(0) of the last parameters (the accuracy scale) */
  int have_scale;
  nnft_freeprop_params last;
  double scale;
};

nnft_freeprop_params nnft_freeprop_defaults(void) {
  nnft_freeprop_params p = {1, 1.0, 1.0, 1.0, 1e-10};
  return p;
}

double nnft_ball_volume(size_t d, double R) {
  return pow(M_PI, 0.5 * (double)d) * pow(R, (double)d) / tgamma(0.5 * (double)d + 1.0);
}

nnft_status nnft_freeprop_check(const nnft_freeprop_params *p, const char **why) {
  const char *w = NULL;
  if (p->d < 1 || p->d > 3) w = "d must be 1, 2 or 3";
  else if (!(isfinite(p->R) && p->R > 0)) w = "the cutoff R must be finite and > 0";
  else if (!(isfinite(p->m) && p->m >= 0)) w = "the mass m must be finite and >= 0";
  else if (!(isfinite(p->power) && p->power > 0 && p->power <= FP_MAX_POWER))
    w = "power must be in (0, 16]";
  else if (!(p->epsrel > 0 && p->epsrel < 1)) w = "epsrel must be in (0, 1)";
  else if (p->m == 0 && !((double)p->d > 2.0 * p->power))
    w = "the momentum integral diverges at p = 0 for m = 0 (it converges only for d > 2 power); "
        "give m > 0";
  if (why) *why = w;
  return w ? NNFT_EDOM : NNFT_OK;
}

nnft_status nnft_freeprop_ws_alloc(nnft_freeprop_ws **out) {
  nnft_freeprop_ws *ws = nnft_alloc(sizeof *ws);
  if (!ws) return NNFT_ENOMEM;
  memset(ws, 0, sizeof *ws);
  ws->w = gsl_integration_workspace_alloc(FP_LIMIT);
  ws->t = gsl_integration_qawo_table_alloc(1.0, 1.0, GSL_INTEG_COSINE, FP_QAWO_LEVELS);
  if (!ws->w || !ws->t) {
    nnft_freeprop_ws_free(ws);
    return NNFT_ENOMEM;
  }
  *out = ws;
  return NNFT_OK;
}

void nnft_freeprop_ws_free(nnft_freeprop_ws *ws) {
  if (!ws) return;
  if (ws->w) gsl_integration_workspace_free(ws->w);
  if (ws->t) gsl_integration_qawo_table_free(ws->t);
  nnft_free(ws);
}

/* ---- integrands ---- */

typedef struct fp_ctx {
  size_t d;
  double m2, s, r;
} fp_ctx;

/* (p² + m²)^{-s}; 0 at the single point p = m = 0 (never a quadrature node in practice). */
static double weight(const fp_ctx *c, double p) {
  double q = p * p + c->m2;
  if (q == 0) return 0.0;
  return c->s == 1.0 ? 1.0 / q : exp(-c->s * log(q));
}

/* The whole integrand (without the prefactor), oscillating factor included. */
static double full_integrand(double p, void *vc) {
  const fp_ctx *c = vc;
  double w = weight(c, p);
  switch (c->d) {
  case 1: return cos(p * c->r) * w;
  case 2: return p * gsl_sf_bessel_J0(p * c->r) * w;
  default: return c->r > 0 ? p * sin(p * c->r) * w : p * p * w;
  }
}

/* The smooth factor for QAWO (d = 1: weight cos(rp); d = 3: weight sin(rp)). */
static double qawo_factor(double p, void *vc) {
  const fp_ctx *c = vc;
  double w = weight(c, p);
  return c->d == 1 ? w : p * w;
}

static double prefactor(size_t d, double r) {
  switch (d) {
  case 1: return 1.0 / M_PI;
  case 2: return 1.0 / (2.0 * M_PI);
  default: return r > 0 ? 1.0 / (2.0 * M_PI * M_PI * r) : 1.0 / (2.0 * M_PI * M_PI);
  }
}

/* Accept a GSL result whose routine complained if its error estimate is still usable. */
static nnft_status judge(int gsl_status, double abserr, double tol) {
  if (gsl_status == GSL_SUCCESS) return NNFT_OK;
  if (isfinite(abserr) && abserr <= tol) return NNFT_OK;
  return NNFT_ENOCONV;
}

/* G_s(0) (the scale), cached per parameter set. */
static nnft_status scale_of(nnft_freeprop_ws *ws, const nnft_freeprop_params *p, double *scale) {
  if (ws->have_scale && memcmp(&ws->last, p, sizeof *p) == 0) {
    *scale = ws->scale;
    return NNFT_OK;
  }
  fp_ctx c = {p->d, p->m * p->m, p->power, 0.0};
  gsl_function f = {full_integrand, &c};
  double res = 0, err = 0;
  int st = gsl_integration_qags(&f, 0.0, p->R, 0.0, 1e-12, FP_LIMIT, ws->w, &res, &err);
  if (judge(st, err, 1e-8 * fabs(res)) || !isfinite(res) || res <= 0) return NNFT_ENOCONV;
  ws->scale = prefactor(p->d, 0.0) * res;
  ws->last = *p;
  ws->have_scale = 1;
  *scale = ws->scale;
  return NNFT_OK;
}

nnft_status nnft_freeprop_eval(nnft_freeprop_ws *ws, const nnft_freeprop_params *p, double r,
                               double *g) {
  nnft_status s;
  if ((s = nnft_freeprop_check(p, NULL))) return s;
  if (!(isfinite(r) && r >= 0)) return NNFT_EDOM;
  double scale;
  if ((s = scale_of(ws, p, &scale))) return s;
  if (r == 0) {
    *g = scale;
    return NNFT_OK;
  }
  fp_ctx c = {p->d, p->m * p->m, p->power, r};
  double pre = prefactor(p->d, r);
  /* absolute tolerances on the raw integral, so that the result is good to 1e-13 G_s(0) */
  double epsabs = 1e-13 * scale / pre, accept = 1e-6 * scale / pre;
  double p0 = M_PI / r < p->R ? M_PI / r : p->R;
  double total = 0, res = 0, err = 0;
  gsl_function f = {full_integrand, &c};
  int st = gsl_integration_qags(&f, 0.0, p0, epsabs, p->epsrel, FP_LIMIT, ws->w, &res, &err);
  if (judge(st, err, accept)) return NNFT_ENOCONV;
  total = res;
  if (p0 < p->R) {
    double L = p->R - p0;
    if (p->d == 2) {
      /* chunks of half a period of J0's asymptotic oscillation */
      double h = M_PI / r;
      double nch = ceil(L / h);
      if (!(nch < 1e9)) return NNFT_EDOM; /* R r beyond any sensible use */
      size_t n = (size_t)nch;
      for (size_t k = 0; k < n; k++) {
        double a = p0 + (double)k * h, b = k + 1 == n ? p->R : a + h;
        st = gsl_integration_qag(&f, a, b, epsabs / (double)n, p->epsrel, FP_LIMIT,
                                 GSL_INTEG_GAUSS21, ws->w, &res, &err);
        if (judge(st, err, accept / (double)n)) return NNFT_ENOCONV;
        total += res;
        if ((k & 1023) == 1023 && nnft_interrupted()) return NNFT_EINTR;
      }
    } else {
      gsl_function fq = {qawo_factor, &c};
      if (gsl_integration_qawo_table_set(ws->t, r, L,
                                         p->d == 1 ? GSL_INTEG_COSINE : GSL_INTEG_SINE))
        return NNFT_EINTERNAL;
      st = gsl_integration_qawo(&fq, p0, epsabs, p->epsrel, FP_LIMIT, ws->w, ws->t, &res, &err);
      if (judge(st, err, accept)) return NNFT_ENOCONV;
      total += res;
    }
  }
  *g = pre * total;
  return NNFT_OK;
}

nnft_status nnft_freeprop_position(const nnft_freeprop_params *p, const nnft_mat *r,
                                   nnft_mat *out) {
  nnft_status s;
  if ((s = nnft_freeprop_check(p, NULL))) return s;
  if (out->rows != r->rows || out->cols != r->cols) return NNFT_EDIM;
  for (size_t j = 0; j < r->cols; j++)
    for (size_t i = 0; i < r->rows; i++) {
      double v = NNFT_AT(r, i, j);
      if (!isfinite(v)) return NNFT_ENONFINITE;
      if (v < 0) return NNFT_EDOM;
    }
  nnft_freeprop_ws *ws;
  if ((s = nnft_freeprop_ws_alloc(&ws))) return s;
  for (size_t j = 0; j < r->cols && !s; j++)
    for (size_t i = 0; i < r->rows; i++) {
      if (nnft_interrupted()) {
        s = NNFT_EINTR;
        break;
      }
      double g;
      if ((s = nnft_freeprop_eval(ws, p, NNFT_AT(r, i, j), &g))) break;
      NNFT_AT(out, i, j) = g;
    }
  nnft_freeprop_ws_free(ws);
  return s;
}

nnft_status nnft_freeprop_momentum(const nnft_freeprop_params *p, const nnft_mat *k,
                                   nnft_mat *out) {
  nnft_status s;
  if ((s = nnft_freeprop_check(p, NULL))) return s;
  if (out->rows != k->rows || out->cols != k->cols) return NNFT_EDIM;
  for (size_t j = 0; j < k->cols; j++)
    for (size_t i = 0; i < k->rows; i++) {
      double v = NNFT_AT(k, i, j);
      if (!isfinite(v)) return NNFT_ENONFINITE;
      if (v < 0) return NNFT_EDOM;
    }
  for (size_t j = 0; j < k->cols; j++)
    for (size_t i = 0; i < k->rows; i++) {
      double v = NNFT_AT(k, i, j), q = v * v + p->m * p->m;
      NNFT_AT(out, i, j) = v > p->R ? 0.0 : q == 0 ? INFINITY : pow(q, -p->power);
    }
  return NNFT_OK;
}
