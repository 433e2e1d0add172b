/* Tests of nnft_spectrum: the closed forms at hand-computed values; the two numerical routes
 * (radial quadrature, FFT with radial binning) against the closed forms for RBF in d = 1, 2, 3 and
 * Matérn ν = 1/2, 3/2, 5/2; the spectrum of a product (no closed form) against the equivalent
 * RBF; the NNGP kernels of the plain cos-net and the Gauss-net (evaluated by nnft_nngp) against
 * their Gaussian spectra; the free propagator inverted: numerical transforms of G(r) reproduce
 * Θ(R − p)/(p² + m²) away from p = R (FFT in d = 1 and d = 3, quadrature in d = 1); bad input,
 * interrupts and allocation failures. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_errno.h>

#include "nnft_spectrum.h"
#include "test_util.h"

static nnft_mat col(const double *v, size_t n) {
  nnft_mat m;
  test_alloc_fail_after(-1);
  if (nnft_mat_alloc(n, 1, &m)) exit(2);
  memcpy(m.data, v, n * sizeof(double));
  return m;
}

/* K̃ at the n momenta by method; NAN on failure (reported). */
static nnft_status spec(const nnft_kernel *k, size_t d, nnft_spectrum_method method, size_t n,
                        double L, const double *p, size_t np, double *out) {
  nnft_spectrum_opts o = nnft_spectrum_defaults();
  o.method = method;
  o.n = n;
  o.L = L;
  nnft_mat pm = col(p, np), om = col(p, np);
  nnft_status s = nnft_spectrum(k, d, &o, &pm, &om, NULL);
  for (size_t i = 0; i < np; i++) out[i] = s ? NAN : om.data[i];
  nnft_mat_free(&pm);
  nnft_mat_free(&om);
  return s;
}

/* max over p of |num − ana| / ana(0) and the same relative to ana(p) where ana(p) > floor. */
static void compare(const nnft_kernel *k, size_t d, nnft_spectrum_method method, const double *p,
                    size_t np, double tol_rel, const char *what) {
  double a[16], v[16];
  CHECK_STATUS(spec(k, d, NNFT_SPECTRUM_ANALYTIC, 0, 0, p, np, a), NNFT_OK);
  CHECK_STATUS(spec(k, d, method, 0, 0, p, np, v), NNFT_OK);
  for (size_t i = 0; i < np; i++) {
    double err = fabs(v[i] - a[i]) / a[i];
    test_checks++;
    if (!(err <= tol_rel)) {
      test_failures++;
      fprintf(stderr, "%s d=%zu p=%g: numerical %.15g vs analytic %.15g (rel %.3g > %.3g)\n", what,
              d, p[i], v[i], a[i], err, tol_rel);
    }
  }
}

static nnft_arch one_hidden(size_t d, nnft_act act, double sw1, double sw2) {
  nnft_arch a;
  memset(&a, 0, sizeof a);
  a.d_in = d;
  a.nlayers = 2;
  a.layer[0] = (nnft_layer){d, 20, act, sw1, 0.0, 0, 0, 1, 0};
  a.layer[1] = (nnft_layer){20, 1, NNFT_ACT_LINEAR, sw2, 0.0, 0, 0, 0, 0};
  return a;
}

int main(void) {
  gsl_set_error_handler_off();
  test_alloc_fail_after(-1);

  /* ---- closed forms at hand-computed values ---- */
  {
    double p[3] = {0.0, 1.0, 2.5}, v[3];
    nnft_kernel rbf = nnft_kernel_rbf(0.5, 2.0);
    /* d = 1: σ² √(2π) ℓ exp(−ℓ²p²/2) */
    CHECK_STATUS(spec(&rbf, 1, NNFT_SPECTRUM_ANALYTIC, 0, 0, p, 3, v), NNFT_OK);
    CHECK_NEAR(v[0], 2.0 * sqrt(2 * M_PI) * 0.5, 1e-14);
    CHECK_NEAR(v[2], 2.0 * sqrt(2 * M_PI) * 0.5 * exp(-0.125 * 6.25), 1e-14);
    /* Matérn 1/2 = e^{−r/ℓ}: 2ℓ/(1 + ℓ²p²) in d = 1, 2πℓ²/(1 + ℓ²p²)^{3/2} in d = 2,
     * 8πℓ³/(1 + ℓ²p²)² in d = 3 */
    double l = 1.7;
    nnft_kernel m = nnft_kernel_matern(0.5, l, 1.0);
    for (size_t d = 1; d <= 3; d++) {
      CHECK_STATUS(spec(&m, d, NNFT_SPECTRUM_ANALYTIC, 0, 0, p, 3, v), NNFT_OK);
      for (int i = 0; i < 3; i++) {
        double q = 1 + l * l * p[i] * p[i];
        double want = d == 1 ? 2 * l / q : d == 2 ? 2 * M_PI * l * l / pow(q, 1.5)
                                                  : 8 * M_PI * l * l * l / (q * q);
        CHECK_NEAR(v[i], want, 1e-13 * want);
      }
    }
    /* Matérn 3/2 in d = 1: 4 a³/(a² + p²)², a = √3/ℓ */
    nnft_kernel m3 = nnft_kernel_matern(1.5, l, 1.0);
    CHECK_STATUS(spec(&m3, 1, NNFT_SPECTRUM_ANALYTIC, 0, 0, p, 3, v), NNFT_OK);
    double a = sqrt(3) / l;
    for (int i = 0; i < 3; i++) {
      double want = 4 * a * a * a / pow(a * a + p[i] * p[i], 2);
      CHECK_NEAR(v[i], want, 1e-13 * want);
    }
    /* the free propagator: Θ(R − p)/(p² + m²), the closed ball */
    nnft_kernel fp = nnft_kernel_freeprop(2, 1.0, 0.5);
    double pf[3] = {0.5, 1.0, 1.0000001};
    CHECK_STATUS(spec(&fp, 2, NNFT_SPECTRUM_ANALYTIC, 0, 0, pf, 3, v), NNFT_OK);
    CHECK_NEAR(v[0], 2.0, 1e-15);
    CHECK_NEAR(v[1], 1.0 / 1.25, 1e-15);
    CHECK(v[2] == 0.0);
    /* linearity: 3 rbf + matern */
    nnft_kernel s3 = nnft_kernel_scale(3.0, &rbf), sum = nnft_kernel_sum(&s3, &m);
    double vs[3], vr[3], vm[3];
    CHECK_STATUS(spec(&sum, 2, NNFT_SPECTRUM_ANALYTIC, 0, 0, p, 3, vs), NNFT_OK);
    spec(&rbf, 2, NNFT_SPECTRUM_ANALYTIC, 0, 0, p, 3, vr);
    spec(&m, 2, NNFT_SPECTRUM_ANALYTIC, 0, 0, p, 3, vm);
    for (int i = 0; i < 3; i++) CHECK_NEAR(vs[i], 3 * vr[i] + vm[i], 1e-14 * vs[i]);
  }

  /* ---- numerical routes vs closed forms: RBF in d = 1, 2, 3 ---- */
  {
    double p[6] = {0.0, 0.4, 1.1, 2.0, 3.3, 5.0};
    nnft_kernel rbf = nnft_kernel_rbf(0.7, 1.3);
    for (size_t d = 1; d <= 3; d++) {
      compare(&rbf, d, NNFT_SPECTRUM_QUADRATURE, p, 6, 1e-7, "rbf quadrature");
      compare(&rbf, d, NNFT_SPECTRUM_FFT, p, 5, d == 3 ? 1e-3 : 1e-6, "rbf fft");
    }
  }

  /* ---- tiny momenta: the oscillation is slower than the kernel's whole extent (an adaptive
   * rule started on one cycle of length π/p would miss the kernel near r = 0) ---- */
  {
    double p[3] = {1e-6, 1e-3, 0.02};
    nnft_kernel rbf = nnft_kernel_rbf(0.7, 1.3), m = nnft_kernel_matern(1.5, 0.3, 1.0);
    for (size_t d = 1; d <= 3; d++) {
      compare(&rbf, d, NNFT_SPECTRUM_QUADRATURE, p, 3, 1e-7, "rbf quadrature, small p");
      compare(&m, d, NNFT_SPECTRUM_QUADRATURE, p, 3, 1e-7, "matern quadrature, small p");
    }
  }

  /* ---- Matérn ν = 1/2, 3/2, 5/2 ---- */
  {
    double p[5] = {0.0, 0.5, 1.3, 2.7, 4.0};
    double nus[3] = {0.5, 1.5, 2.5};
    for (int i = 0; i < 3; i++) {
      nnft_kernel m = nnft_kernel_matern(nus[i], 0.8, 1.1);
      for (size_t d = 1; d <= 3; d++)
        compare(&m, d, NNFT_SPECTRUM_QUADRATURE, p, 5, 1e-7, "matern quadrature");
    }
    /* the FFT of the smooth ones (ν = 1/2 has a cusp at r = 0: O(h²) and a slowly decaying
     * spectrum; it is documented as inaccurate on the default grid) */
    nnft_kernel m52 = nnft_kernel_matern(2.5, 0.8, 1.1), m32 = nnft_kernel_matern(1.5, 0.8, 1.1);
    compare(&m52, 1, NNFT_SPECTRUM_FFT, p, 5, 1e-5, "matern 5/2 fft");
    compare(&m52, 3, NNFT_SPECTRUM_FFT, p, 5, 2e-3, "matern 5/2 fft");
    compare(&m32, 1, NNFT_SPECTRUM_FFT, p, 5, 5e-4, "matern 3/2 fft");
  }

  /* ---- a product (no closed form) = an RBF: 1/ℓ² = 1/ℓ1² + 1/ℓ2², σ² = σ1² σ2² ---- */
  {
    nnft_kernel r1 = nnft_kernel_rbf(1.0, 2.0), r2 = nnft_kernel_rbf(2.0, 0.5),
                pr = nnft_kernel_prod(&r1, &r2), eq = nnft_kernel_rbf(sqrt(0.8), 1.0);
    const char *why = NULL;
    CHECK_STATUS(nnft_spectrum_has_analytic(&pr, 2, &why), NNFT_EDOM);
    CHECK(why && strstr(why, "product"));
    double p[4] = {0.0, 0.7, 1.5, 3.0}, a[4], q[4], f[4];
    spec(&eq, 2, NNFT_SPECTRUM_ANALYTIC, 0, 0, p, 4, a);
    CHECK_STATUS(spec(&pr, 2, NNFT_SPECTRUM_ANALYTIC, 0, 0, p, 4, q), NNFT_EDOM);
    CHECK_STATUS(spec(&pr, 2, NNFT_SPECTRUM_QUADRATURE, 0, 0, p, 4, q), NNFT_OK);
    CHECK_STATUS(spec(&pr, 2, NNFT_SPECTRUM_FFT, 0, 0, p, 4, f), NNFT_OK);
    for (int i = 0; i < 4; i++) {
      CHECK_NEAR(q[i], a[i], 1e-7 * a[i]);
      CHECK_NEAR(f[i], a[i], 1e-6 * a[i]);
    }
  }

  /* ---- NNGP kernels of the translation-invariant nets (values from nnft_nngp) ---- */
  {
    double p[4] = {0.0, 0.6, 1.5, 2.5};
    nnft_arch c = one_hidden(2, NNFT_ACT_COS, 1.7, 1.3);
    c.is_cosnet = 1;
    c.freq = NNFT_FREQ_GAUSSIAN;
    nnft_kernel kc = nnft_kernel_nngp(&c, 0, 0);
    CHECK(nnft_kernel_is_stationary(&kc));
    compare(&kc, 2, NNFT_SPECTRUM_QUADRATURE, p, 4, 1e-7, "cos-net quadrature");
    compare(&kc, 2, NNFT_SPECTRUM_FFT, p, 4, 1e-6, "cos-net fft");
    double v[1], z = 0.0;
    spec(&kc, 2, NNFT_SPECTRUM_ANALYTIC, 0, 0, &z, 1, v); /* (σ_a²/2)(2πd/σ_w²)^{d/2} */
    CHECK_NEAR(v[0], 0.5 * 1.69 * (4 * M_PI / (1.7 * 1.7)), 1e-13);
    nnft_arch g = one_hidden(3, NNFT_ACT_GAUSSNET, 1.2, 0.9);
    g.layer[1].has_bias = 1; /* a readout bias of zero variance is no bias */
    nnft_kernel kg = nnft_kernel_nngp(&g, 0, 0);
    CHECK(nnft_kernel_is_stationary(&kg));
    compare(&kg, 3, NNFT_SPECTRUM_QUADRATURE, p, 4, 1e-7, "gauss-net quadrature");
  }

  /* ---- the free propagator inverted: transforms of G(r) give Θ(R − p)/(p² + m²) ---- */
  {
    double R = 3.0, m = 1.0;
    double p[6] = {0.3, 1.2, 2.0, 2.6, 3.5, 4.5}; /* away from p = R */
    nnft_kernel f1 = nnft_kernel_freeprop(1, R, m), f3 = nnft_kernel_freeprop(3, R, m);
    double v[6];
    CHECK_STATUS(spec(&f1, 1, NNFT_SPECTRUM_FFT, 2048, 400.0, p, 6, v), NNFT_OK);
    for (int i = 0; i < 6; i++)
      CHECK_NEAR(v[i], p[i] <= R ? 1 / (p[i] * p[i] + m * m) : 0.0, 5e-4); /* truncation at L/2 */
    double pq[3] = {0.5, 2.0, 3.5};
    CHECK_STATUS(spec(&f1, 1, NNFT_SPECTRUM_QUADRATURE, 0, 0, pq, 3, v), NNFT_OK);
    for (int i = 0; i < 3; i++)
      CHECK_NEAR(v[i], pq[i] <= R ? 1 / (pq[i] * pq[i] + m * m) : 0.0, 1e-6);
    double p3[4] = {0.3, 1.6, 2.2, 2.6};
    CHECK_STATUS(spec(&f3, 3, NNFT_SPECTRUM_FFT, 48, 40.0, p3, 4, v), NNFT_OK);
    for (int i = 0; i < 4; i++) CHECK_NEAR(v[i], 1 / (p3[i] * p3[i] + m * m), 3e-3);
  }

  /* ---- bad input ---- */
  {
    double p[2] = {0.5, 1.0}, v[2];
    nnft_kernel poly = nnft_kernel_poly(2, 1, 1), rbf = nnft_kernel_rbf(1, 1),
                fp = nnft_kernel_freeprop(2, 1, 1), bad = nnft_kernel_rbf(-1, 1);
    CHECK_STATUS(spec(&poly, 1, NNFT_SPECTRUM_QUADRATURE, 0, 0, p, 2, v), NNFT_EDOM);
    CHECK_STATUS(spec(&rbf, 4, NNFT_SPECTRUM_ANALYTIC, 0, 0, p, 2, v), NNFT_EDOM);
    CHECK_STATUS(spec(&rbf, 0, NNFT_SPECTRUM_ANALYTIC, 0, 0, p, 2, v), NNFT_EDOM);
    CHECK_STATUS(spec(&fp, 3, NNFT_SPECTRUM_ANALYTIC, 0, 0, p, 2, v), NNFT_EDIM);
    CHECK_STATUS(spec(&bad, 1, NNFT_SPECTRUM_ANALYTIC, 0, 0, p, 2, v), NNFT_EDOM);
    double neg[1] = {-1}, nan_[1] = {NAN}, far[1] = {100.0};
    CHECK_STATUS(spec(&rbf, 1, NNFT_SPECTRUM_ANALYTIC, 0, 0, neg, 1, v), NNFT_EDOM);
    CHECK_STATUS(spec(&rbf, 1, NNFT_SPECTRUM_ANALYTIC, 0, 0, nan_, 1, v), NNFT_ENONFINITE);
    /* beyond the FFT grid's reach: p_max reported */
    nnft_spectrum_opts o = nnft_spectrum_defaults();
    o.method = NNFT_SPECTRUM_FFT;
    o.n = 64;
    o.L = 20.0;
    nnft_spectrum_info info;
    nnft_mat pm = col(far, 1), om = col(far, 1);
    CHECK_STATUS(nnft_spectrum(&rbf, 1, &o, &pm, &om, &info), NNFT_EDOM);
    CHECK_NEAR(info.p_max, 31 * 2 * M_PI / 20.0, 1e-12);
    CHECK(info.n == 64 && info.L == 20.0);
    o.n = 63; /* odd */
    CHECK_STATUS(nnft_spectrum(&rbf, 1, &o, &pm, &om, NULL), NNFT_EDOM);
    CHECK_STATUS(nnft_spectrum(&rbf, 1, &o, &pm, &pm, NULL), NNFT_EDOM); /* out = p */
    /* a massless propagator in d = 3 at p = 0: ∫ r² G dr diverges */
    nnft_kernel f0 = nnft_kernel_freeprop(3, 2.0, 0.0);
    double zero[1] = {0.0};
    CHECK_STATUS(spec(&f0, 3, NNFT_SPECTRUM_ANALYTIC, 0, 0, zero, 1, v), NNFT_OK);
    CHECK(isinf(v[0]));
    nnft_status s = spec(&f0, 3, NNFT_SPECTRUM_QUADRATURE, 0, 0, zero, 1, v);
    CHECK(s == NNFT_ENOCONV);
    /* interrupts */
    nnft_interrupt_flag = 1;
    CHECK_STATUS(spec(&rbf, 1, NNFT_SPECTRUM_QUADRATURE, 0, 0, p, 2, v), NNFT_EINTR);
    CHECK_STATUS(spec(&rbf, 2, NNFT_SPECTRUM_FFT, 0, 0, p, 2, v), NNFT_EINTR);
    nnft_interrupt_flag = 0;
    nnft_mat_free(&pm);
    nnft_mat_free(&om);
  }

  /* ---- allocation failures ---- */
  {
    double p[2] = {0.5, 1.0};
    nnft_kernel r1 = nnft_kernel_rbf(1, 1), m = nnft_kernel_matern(1.5, 1, 1),
                pr = nnft_kernel_prod(&r1, &m);
    for (int method = 1; method <= 2; method++) {
      int ok = 0;
      nnft_mat pm = col(p, 2), om = col(p, 2);
      nnft_spectrum_opts o = nnft_spectrum_defaults();
      o.method = method == 1 ? NNFT_SPECTRUM_QUADRATURE : NNFT_SPECTRUM_FFT;
      o.n = 64;
      for (long k = 0; k < 100 && !ok; k++) {
        test_alloc_fail_after(k);
        nnft_status s = nnft_spectrum(&pr, 2, &o, &pm, &om, NULL);
        test_alloc_fail_after(-1);
        if (s == NNFT_OK) ok = 1;
        else CHECK_STATUS(s, NNFT_ENOMEM);
      }
      CHECK(ok);
      nnft_mat_free(&pm);
      nnft_mat_free(&om);
    }
  }

  return test_report("test_spectrum");
}
