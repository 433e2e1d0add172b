/* Tests of nnft_freeprop: the cutoff propagator G_s(r) against closed forms (r = 0 at finite R,
 * the R -> ∞ limits e^{-mr}/(2m), K0(mr)/(2π), e^{-mr}/(4πr), the massless d = 3 form
 * Si(Rr)/(2π² r) at finite R, the squared propagator (1 + mr) e^{-mr}/(4m³) in d = 1), against
 * a plain composite Simpson rule at moderate R, the momentum form, every bad input, and the
 * allocation failure path. */
#include <gsl/gsl_errno.h>
#include <gsl/gsl_sf_bessel.h>
#include <gsl/gsl_sf_expint.h>
#include <math.h>
#include <stdlib.h>

#include "nnft_freeprop.h"
#include "test_util.h"

static nnft_freeprop_params params(size_t d, double R, double m, double s) {
  nnft_freeprop_params p = nnft_freeprop_defaults();
  p.d = d;
  p.R = R;
  p.m = m;
  p.power = s;
  return p;
}

static double eval(const nnft_freeprop_params *p, double r) {
  nnft_freeprop_ws *ws;
  double g = NAN;
  if (nnft_freeprop_ws_alloc(&ws)) return NAN;
  nnft_status s = nnft_freeprop_eval(ws, p, r, &g);
  nnft_freeprop_ws_free(ws);
  return s ? NAN : g;
}

/* Composite Simpson with 2n intervals of the defining integral (independent of the code). */
static double simpson(const nnft_freeprop_params *p, double r, size_t n) {
  double h = p->R / (2.0 * n), sum = 0.0;
  for (size_t i = 0; i <= 2 * n; i++) {
    double q = i * h, w = pow(q * q + p->m * p->m, -p->power), f;
    if (p->d == 1) f = cos(q * r) * w / M_PI;
    else if (p->d == 2) f = q * gsl_sf_bessel_J0(q * r) * w / (2 * M_PI);
    else f = (r > 0 ? q * sin(q * r) / r : q * q) * w / (2 * M_PI * M_PI);
    sum += (i == 0 || i == 2 * n ? 1.0 : i % 2 ? 4.0 : 2.0) * f;
  }
  return sum * h / 3.0;
}

int main(void) {
  gsl_set_error_handler_off();
  test_alloc_fail_after(-1);

  /* r = 0 at finite R (s = 1): closed forms */
  {
    double R = 7.0, m = 1.3;
    nnft_freeprop_params p1 = params(1, R, m, 1), p2 = params(2, R, m, 1),
                         p3 = params(3, R, m, 1);
    CHECK_NEAR(eval(&p1, 0.0), atan(R / m) / (M_PI * m), 1e-13);
    CHECK_NEAR(eval(&p2, 0.0), log1p(R * R / (m * m)) / (4 * M_PI), 1e-13);
    CHECK_NEAR(eval(&p3, 0.0), (R - m * atan(R / m)) / (2 * M_PI * M_PI), 1e-13);
  }

  /* d = 1, R -> ∞: e^{-mr}/(2m). The neglected tail (1/π)∫_R^∞ cos(pr)/(p²+m²) is bounded by
   * 2/(π r R²) (one integration by parts), 6e-9 at R = 1e4, r = 1. */
  {
    double m = 0.8, R = 1e4;
    nnft_freeprop_params p = params(1, R, m, 1);
    double rs[] = {0.3, 1.0, 2.5, 6.0};
    for (int i = 0; i < 4; i++) {
      double r = rs[i];
      CHECK_NEAR(eval(&p, r), exp(-m * r) / (2 * m), 2.0 / (M_PI * r * R * R) + 1e-12);
    }
    /* squared propagator: (1/π)∫_0^∞ cos(pr)/(p²+m²)² dp = (1 + mr) e^{-mr}/(4m³) */
    nnft_freeprop_params p2 = params(1, 1e3, m, 2); /* tail <= 1/(π r R⁴) */
    for (int i = 0; i < 4; i++) {
      double r = rs[i];
      CHECK_NEAR(eval(&p2, r), (1 + m * r) * exp(-m * r) / (4 * m * m * m), 1e-8);
    }
  }

  /* d = 3, R -> ∞: e^{-mr}/(4πr); tail bounded by 1/(π² r² R) (integration by parts). */
  {
    double m = 1.1, R = 1e5;
    nnft_freeprop_params p = params(3, R, m, 1);
    double rs[] = {0.2, 1.0, 3.0};
    for (int i = 0; i < 3; i++) {
      double r = rs[i];
      CHECK_NEAR(eval(&p, r), exp(-m * r) / (4 * M_PI * r), 1.0 / (M_PI * M_PI * r * r * R) + 1e-12);
    }
    /* massless d = 3 at finite R: exactly Si(R r)/(2π² r) */
    nnft_freeprop_params p0 = params(3, 12.0, 0.0, 1);
    for (int i = 0; i < 3; i++) {
      double r = rs[i];
      CHECK_NEAR(eval(&p0, r), gsl_sf_Si(12.0 * r) / (2 * M_PI * M_PI * r), 1e-12);
    }
  }

  /* d = 2, R -> ∞: K0(mr)/(2π); tail ~ (2/π)^{1/2}/(2π) (rR)^{-1/2} / (R r) */
  {
    double m = 1.0, R = 2e3;
    nnft_freeprop_params p = params(2, R, m, 1);
    double rs[] = {0.5, 1.0, 2.0};
    for (int i = 0; i < 3; i++) {
      double r = rs[i];
      double tail = 1.0 / (2 * M_PI) * sqrt(2.0 / (M_PI * r * R)) / (r * R);
      CHECK_NEAR(eval(&p, r), gsl_sf_bessel_K0(m * r) / (2 * M_PI), 2 * tail + 1e-12);
    }
  }

  /* moderate R: against a composite Simpson rule (h = R/4e5, error ~1e-12 here), s = 1 and 2 */
  for (size_t d = 1; d <= 3; d++)
    for (int sp = 1; sp <= 2; sp++) {
      nnft_freeprop_params p = params(d, 6.0, 0.7, sp);
      double rs[] = {0.0, 0.4, 1.7, 5.3, 11.0};
      for (int i = 0; i < 5; i++) {
        double ref = simpson(&p, rs[i], 200000);
        CHECK_NEAR(eval(&p, rs[i]), ref, 1e-10 * fabs(simpson(&p, 0.0, 200000)));
      }
    }

  /* vectorised form = scalar evaluations; momentum form */
  {
    nnft_mat r, out, k, ko;
    CHECK_STATUS(nnft_mat_alloc(3, 2, &r), NNFT_OK);
    CHECK_STATUS(nnft_mat_alloc(3, 2, &out), NNFT_OK);
    for (size_t i = 0; i < 6; i++) r.data[i] = 0.5 * i;
    nnft_freeprop_params p = params(2, 5.0, 0.5, 1);
    CHECK_STATUS(nnft_freeprop_position(&p, &r, &out), NNFT_OK);
    for (size_t i = 0; i < 6; i++) CHECK_NEAR(out.data[i], eval(&p, 0.5 * i), 1e-15);
    CHECK_STATUS(nnft_mat_alloc(1, 4, &k), NNFT_OK);
    CHECK_STATUS(nnft_mat_alloc(1, 4, &ko), NNFT_OK);
    k.data[0] = 0.0; k.data[1] = 1.0; k.data[2] = 5.0; k.data[3] = 5.5;
    CHECK_STATUS(nnft_freeprop_momentum(&p, &k, &ko), NNFT_OK);
    CHECK_NEAR(ko.data[0], 4.0, 1e-15);
    CHECK_NEAR(ko.data[1], 1.0 / 1.25, 1e-15);
    CHECK_NEAR(ko.data[2], 1.0 / 25.25, 1e-15); /* closed ball: |p| = R included */
    CHECK_NEAR(ko.data[3], 0.0, 0.0);
    /* bad inputs */
    r.data[2] = -1.0;
    CHECK_STATUS(nnft_freeprop_position(&p, &r, &out), NNFT_EDOM);
    r.data[2] = NAN;
    CHECK_STATUS(nnft_freeprop_position(&p, &r, &out), NNFT_ENONFINITE);
    r.data[2] = 1.0;
    k.data[1] = -0.1;
    CHECK_STATUS(nnft_freeprop_momentum(&p, &k, &ko), NNFT_EDOM);
    CHECK_STATUS(nnft_freeprop_position(&p, &r, &ko), NNFT_EDIM);
    nnft_freeprop_params bad = p;
    const char *why = NULL;
    bad.d = 0;
    CHECK_STATUS(nnft_freeprop_check(&bad, &why), NNFT_EDOM);
    CHECK(why != NULL);
    bad.d = 4;
    CHECK_STATUS(nnft_freeprop_position(&bad, &r, &out), NNFT_EDOM);
    bad = p; bad.R = 0.0;
    CHECK_STATUS(nnft_freeprop_position(&bad, &r, &out), NNFT_EDOM);
    bad.R = -2.0;
    CHECK_STATUS(nnft_freeprop_check(&bad, NULL), NNFT_EDOM);
    bad.R = INFINITY;
    CHECK_STATUS(nnft_freeprop_check(&bad, NULL), NNFT_EDOM);
    bad = p; bad.m = -0.1;
    CHECK_STATUS(nnft_freeprop_check(&bad, NULL), NNFT_EDOM);
    bad.m = 0.0; /* d = 2, s = 1: infrared divergent */
    CHECK_STATUS(nnft_freeprop_check(&bad, &why), NNFT_EDOM);
    bad.d = 3; /* converges */
    CHECK_STATUS(nnft_freeprop_check(&bad, NULL), NNFT_OK);
    bad.power = 2.0; /* diverges again */
    CHECK_STATUS(nnft_freeprop_check(&bad, NULL), NNFT_EDOM);
    bad = p; bad.power = 0.0;
    CHECK_STATUS(nnft_freeprop_check(&bad, NULL), NNFT_EDOM);
    bad = p; bad.epsrel = 0.0;
    CHECK_STATUS(nnft_freeprop_check(&bad, NULL), NNFT_EDOM);
    /* allocation failure */
    test_alloc_fail_after(0);
    CHECK_STATUS(nnft_freeprop_position(&p, &r, &out), NNFT_ENOMEM);
    test_alloc_fail_after(-1);
    nnft_mat_free(&r);
    nnft_mat_free(&out);
    nnft_mat_free(&k);
    nnft_mat_free(&ko);
  }
  return test_report("test_freeprop");
}
