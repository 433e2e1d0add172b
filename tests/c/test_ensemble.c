/* Tests of nnft_ensemble: empirical two-point functions of sampled one-hidden-layer networks
 * against the closed-form kernels of physics.md §2.3 (ReLU, Erf, Gauss-net, cos-nets) and a deep
 * linear net against its exact kernel, within the measured error bars; thread-count and
 * chunk-size invariance (bit-identical); the documented parameter draws (nnft_ens_params through
 * nnft_net reproduces the sampled outputs); bad input; consumer errors; interrupts; allocation
 * failures. */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "nnft_ensemble.h"
#include "nnft_net.h"
#include "test_util.h"

#define PI 3.14159265358979323846

static nnft_arch one_layer(size_t d, size_t N, nnft_act act, double sw, double sb) {
  nnft_arch a;
  memset(&a, 0, sizeof a);
  a.d_in = d;
  a.nlayers = 2;
  a.layer[0] = (nnft_layer){d, N, act, sw, sb, 0, 0, 1, 0};
  a.layer[1] = (nnft_layer){N, 1, NNFT_ACT_LINEAR, sw, sb, 0, 0, 1, 0};
  return a;
}

typedef double (*kernel_fn)(const double *x, const double *y, size_t d, double sw, double sb);

static double dot(const double *x, const double *y, size_t d) {
  double s = 0;
  for (size_t i = 0; i < d; i++) s += x[i] * y[i];
  return s;
}

static double k_relu(const double *x, const double *y, size_t d, double sw, double sb) {
  double kxx = sb * sb + sw * sw * dot(x, x, d) / d, kyy = sb * sb + sw * sw * dot(y, y, d) / d;
  double kxy = sb * sb + sw * sw * dot(x, y, d) / d;
  double th = atan2(sqrt(fmax(kxx * kyy - kxy * kxy, 0)), kxy);
  return sb * sb + sw * sw / (2 * PI) * sqrt(kxx * kyy) * (sin(th) + (PI - th) * cos(th));
}

static double k_erf(const double *x, const double *y, size_t d, double sw, double sb) {
  double kxx = sb * sb + sw * sw * dot(x, x, d) / d, kyy = sb * sb + sw * sw * dot(y, y, d) / d;
  double kxy = sb * sb + sw * sw * dot(x, y, d) / d;
  return sb * sb + 2 * sw * sw / PI * asin(2 * kxy / sqrt((1 + 2 * kxx) * (1 + 2 * kyy)));
}

static double k_gauss(const double *x, const double *y, size_t d, double sw, double sb) {
  double r2 = 0;
  for (size_t i = 0; i < d; i++) r2 += (x[i] - y[i]) * (x[i] - y[i]);
  return sb * sb + sw * sw * exp(-sw * sw * r2 / (2.0 * d));
}

/* Measured G2 over all sorted pairs of the rows of X against the kernel: count the tuples
 * outside `nsig` error bars. Also returns the largest |Δ|/err. */
static int g2_outliers(const nnft_arch *a, const nnft_mat *X, size_t E, size_t B, uint64_t seed,
                       const double *Kwant, double nsig, double *worst) {
  const int o[1] = {2};
  nnft_corr_acc *acc;
  nnft_corr_acc_alloc(X->rows, o, 1, E, B, &acc);
  nnft_status s = nnft_ens_correlators(a, X, seed, 256, 2, acc);
  CHECK_STATUS(s, NNFT_OK);
  size_t cnt;
  nnft_corr_ntuples(X->rows, 2, &cnt);
  double *G = malloc(cnt * 8), *err = malloc(cnt * 8);
  nnft_corr_acc_result(acc, 2, G, NULL, 0, NULL, err);
  int bad = 0;
  *worst = 0;
  for (size_t t = 0; t < cnt; t++) {
    double z = fabs(G[t] - Kwant[t]) / err[t];
    if (!(z < nsig)) bad++;
    if (z > *worst) *worst = z;
  }
  free(G);
  free(err);
  nnft_corr_acc_free(acc);
  return bad;
}

/* The kernel over the sorted pairs of the rows of X. */
static void kernel_pairs(const nnft_mat *X, kernel_fn k, double sw, double sb, double *out) {
  size_t n = X->rows, d = X->cols, t = 0;
  double x[8], y[8];
  for (size_t i = 0; i < n; i++)
    for (size_t j = i; j < n; j++) {
      for (size_t c = 0; c < d; c++) {
        x[c] = NNFT_AT(X, i, c);
        y[c] = NNFT_AT(X, j, c);
      }
      out[t++] = k(x, y, d, sw, sb);
    }
}

static void test_kernels(void) {
  const size_t E = 20000, B = 20;
  double worst;
  /* ReLU, σ_b = 0, d = 1 at the [HMS] inputs 0.2 .. 1.2 */
  nnft_mat X1;
  nnft_mat_alloc(6, 1, &X1);
  for (int i = 0; i < 6; i++) X1.data[i] = 0.2 * (i + 1);
  double K[64];
  nnft_arch a = one_layer(1, 50, NNFT_ACT_RELU, 1.0, 0.0);
  kernel_pairs(&X1, k_relu, 1.0, 0.0, K);
  CHECK(g2_outliers(&a, &X1, E, B, 1, K, 5, &worst) == 0);
  /* ReLU in d = 2 with angles between the inputs, σ_w = 1.5 */
  nnft_mat X2;
  nnft_mat_alloc(5, 2, &X2);
  const double pts[10] = {1.0, 0.3, -0.5, 0.8, -1.1, 0.0, 0.2, -0.9, 0.7, 0.7};
  for (int i = 0; i < 5; i++) {
    NNFT_AT(&X2, i, 0) = pts[2 * i];
    NNFT_AT(&X2, i, 1) = pts[2 * i + 1];
  }
  a = one_layer(2, 30, NNFT_ACT_RELU, 1.5, 0.0);
  kernel_pairs(&X2, k_relu, 1.5, 0.0, K);
  CHECK(g2_outliers(&a, &X2, E, B, 2, K, 5, &worst) == 0);
  /* and a wrong kernel is detected: σ_w mismatched by 10% */
  kernel_pairs(&X2, k_relu, 1.65, 0.0, K);
  CHECK(g2_outliers(&a, &X2, E, B, 2, K, 5, &worst) > 0);
  /* Erf, σ_w = σ_b = 1 */
  a = one_layer(2, 20, NNFT_ACT_ERF, 1.0, 1.0);
  kernel_pairs(&X2, k_erf, 1.0, 1.0, K);
  CHECK(g2_outliers(&a, &X2, E, B, 3, K, 5, &worst) == 0);
  /* Gauss-net (input-normalised exponential), σ_w = 1, σ_b = 0.5, d = 2 */
  a = one_layer(2, 20, NNFT_ACT_GAUSSNET, 1.0, 0.5);
  nnft_mat Xg;
  nnft_mat_alloc(4, 2, &Xg);
  const double gp[8] = {0.1, 0.2, -0.3, 0.4, 0.5, -0.5, 0.0, 0.0};
  for (int i = 0; i < 4; i++) {
    NNFT_AT(&Xg, i, 0) = gp[2 * i];
    NNFT_AT(&Xg, i, 1) = gp[2 * i + 1];
  }
  kernel_pairs(&Xg, k_gauss, 1.0, 0.5, K);
  CHECK(g2_outliers(&a, &Xg, E, B, 4, K, 5, &worst) == 0);
  /* Gauss-net in d = 3: the normalisation uses |x|²/d */
  a = one_layer(3, 10, NNFT_ACT_GAUSSNET, 1.2, 0.0);
  nnft_mat X3;
  nnft_mat_alloc(3, 3, &X3);
  const double p3[9] = {0.3, -0.2, 0.5, 0.0, 0.4, 0.1, -0.3, 0.2, 0.2};
  for (int i = 0; i < 3; i++)
    for (int c = 0; c < 3; c++) NNFT_AT(&X3, i, c) = p3[3 * i + c];
  kernel_pairs(&X3, k_gauss, 1.2, 0.0, K);
  CHECK(g2_outliers(&a, &X3, E, B, 5, K, 5, &worst) == 0);

  /* plain cos-net (d = 1): K = (σ_a²/2) exp(-σ_w² Δ²/2) */
  a = one_layer(1, 40, NNFT_ACT_COS, 1.3, 0.0);
  a.is_cosnet = 1;
  a.freq = NNFT_FREQ_GAUSSIAN;
  a.layer[1].sigma_w = 0.8;
  a.layer[1].has_bias = 0;
  size_t t = 0;
  for (int i = 0; i < 6; i++)
    for (int j = i; j < 6; j++) {
      double dl = X1.data[i] - X1.data[j];
      K[t++] = 0.5 * 0.64 * exp(-1.69 * dl * dl / 2);
    }
  CHECK(g2_outliers(&a, &X1, E, B, 6, K, 5, &worst) == 0);
  /* generalised cos-net, ball of radius R, mass m (d = 1): K(Δ) = (1/π)∫_0^R cos(pΔ)/(p²+m²) dp */
  a.freq = NNFT_FREQ_BALL;
  a.radius = 3.0;
  a.mass = 1.0;
  a.amplitude = 1;
  t = 0;
  for (int i = 0; i < 6; i++)
    for (int j = i; j < 6; j++) {
      double dl = X1.data[i] - X1.data[j], s = 0;
      const int M = 20000; /* midpoint rule, smooth integrand */
      for (int q = 0; q < M; q++) {
        double p = (q + 0.5) * 3.0 / M;
        s += cos(p * dl) / (p * p + 1.0);
      }
      K[t++] = s * 3.0 / M / PI;
    }
  CHECK_NEAR(K[0], atan(3.0) / PI, 1e-8);
  CHECK(g2_outliers(&a, &X1, E, B, 7, K, 5, &worst) == 0);

  /* deep linear net, NTK parameterisation, widths 7 and 5, biases: exact kernel
   * K1 = σb² + σw² x·y/d, K_{l+1} = σb² + σw² K_l at every width */
  nnft_arch dl;
  memset(&dl, 0, sizeof dl);
  dl.d_in = 2;
  dl.nlayers = 3;
  dl.param = NNFT_PARAM_NTK;
  dl.layer[0] = (nnft_layer){2, 7, NNFT_ACT_LINEAR, 1.2, 0.3, 0, 0, 1, 0};
  dl.layer[1] = (nnft_layer){7, 5, NNFT_ACT_LINEAR, 0.9, 0.5, 0, 0, 1, 0};
  dl.layer[2] = (nnft_layer){5, 1, NNFT_ACT_LINEAR, 1.1, 0.2, 0, 0, 1, 0};
  t = 0;
  for (int i = 0; i < 5; i++)
    for (int j = i; j < 5; j++) {
      double k1 = 0.09 + 1.44 * (pts[2 * i] * pts[2 * j] + pts[2 * i + 1] * pts[2 * j + 1]) / 2;
      double k2 = 0.25 + 0.81 * k1;
      K[t++] = 0.04 + 1.21 * k2;
    }
  CHECK(g2_outliers(&dl, &X2, E, B, 8, K, 5, &worst) == 0);
  nnft_mat_free(&X1);
  nnft_mat_free(&X2);
  nnft_mat_free(&X3);
  nnft_mat_free(&Xg);
}

/* Same seed: 1 vs 2 threads and several chunk sizes give bit-identical outputs and
 * correlators (values, bag means, errors). */
static void test_invariance(void) {
  nnft_arch a = one_layer(1, 37, NNFT_ACT_TANH, 1.0, 0.7);
  nnft_mat X;
  nnft_mat_alloc(4, 1, &X);
  for (int i = 0; i < 4; i++) X.data[i] = -0.5 + 0.4 * i;
  const size_t E = 3000, B = 7;
  const int orders[3] = {2, 4, 6};
  size_t c6;
  nnft_corr_ntuples(4, 6, &c6);
  double *ref = NULL;
  struct { int threads; size_t chunk; } runs[5] = {{1, 256}, {2, 256}, {2, 64}, {1, 1000}, {2, 1}};
  for (int r = 0; r < 5; r++) {
#ifdef _OPENMP
    omp_set_num_threads(runs[r].threads);
#endif
    nnft_corr_acc *acc;
    nnft_corr_acc_alloc(4, orders, 3, E, B, &acc);
    int th = nnft_ens_threads(&a, 0);
#ifdef _OPENMP
    CHECK(th == runs[r].threads);
#endif
    CHECK_STATUS(nnft_ens_correlators(&a, &X, 99, runs[r].chunk, th, acc), NNFT_OK);
    double *res = malloc(c6 * (B + 2) * sizeof(double));
    nnft_corr_acc_result(acc, 6, res, res + c6, B, NULL, res + c6 * (B + 1));
    if (!ref) ref = res;
    else {
      CHECK(memcmp(ref, res, c6 * (B + 2) * sizeof(double)) == 0);
      free(res);
    }
    nnft_corr_acc_free(acc);
  }
  free(ref);
  /* outputs: a window e0 .. gives the same rows as the full run */
  nnft_mat F1, F2, F3;
  nnft_mat_alloc(500, 4, &F1);
  nnft_mat_alloc(500, 4, &F2);
  nnft_mat_alloc(100, 4, &F3);
  CHECK_STATUS(nnft_ens_outputs(&a, &X, 99, 0, 256, 1, &F1), NNFT_OK);
  CHECK_STATUS(nnft_ens_outputs(&a, &X, 99, 0, 13, 2, &F2), NNFT_OK);
  CHECK_STATUS(nnft_ens_outputs(&a, &X, 99, 321, 7, 2, &F3), NNFT_OK);
  CHECK(memcmp(F1.data, F2.data, 500 * 4 * sizeof(double)) == 0);
  int same = 1;
  for (int i = 0; i < 100; i++)
    for (int k = 0; k < 4; k++)
      if (NNFT_AT(&F3, i, k) != NNFT_AT(&F1, 321 + i, k)) same = 0;
  CHECK(same);
  /* another seed differs */
  CHECK_STATUS(nnft_ens_outputs(&a, &X, 100, 0, 256, 1, &F2), NNFT_OK);
  CHECK(F1.data[0] != F2.data[0]);
  nnft_mat_free(&F1);
  nnft_mat_free(&F2);
  nnft_mat_free(&F3);
  nnft_mat_free(&X);
#ifdef _OPENMP
  omp_set_num_threads(2);
#endif
}

/* The fused one-hidden-layer path and the layer-by-layer path give identical bits. */
static void check_fused(const nnft_arch *a, const nnft_mat *X) {
  nnft_mat F1, F2;
  nnft_mat_alloc(70, X->rows, &F1);
  nnft_mat_alloc(70, X->rows, &F2);
  CHECK_STATUS(nnft_ens_outputs(a, X, 77, 0, 16, 2, &F1), NNFT_OK);
  setenv("NNFT_ENS_NOFUSE", "1", 1);
  CHECK_STATUS(nnft_ens_outputs(a, X, 77, 0, 16, 2, &F2), NNFT_OK);
  unsetenv("NNFT_ENS_NOFUSE");
  CHECK(memcmp(F1.data, F2.data, 70 * X->rows * sizeof(double)) == 0);
  nnft_mat_free(&F1);
  nnft_mat_free(&F2);
}

static void test_fused(void) {
  nnft_mat X1, X2;
  nnft_mat_alloc(6, 1, &X1);
  for (int i = 0; i < 6; i++) X1.data[i] = -1.0 + 0.45 * i;
  nnft_mat_alloc(5, 2, &X2);
  for (int i = 0; i < 10; i++) X2.data[i] = sin(1.7 * i);
  const nnft_act acts[7] = {NNFT_ACT_RELU, NNFT_ACT_LINEAR, NNFT_ACT_STEP, NNFT_ACT_ERF,
                            NNFT_ACT_TANH, NNFT_ACT_GAUSSNET, NNFT_ACT_SOFTPLUS};
  const size_t widths[3] = {1, 13, 64};
  for (int q = 0; q < 7; q++)
    for (int w = 0; w < 3; w++) {
      nnft_arch a = one_layer(1, widths[w], acts[q], 1.1, q % 2 ? 0.0 : 0.6);
      check_fused(&a, &X1);
      a = one_layer(2, widths[w], acts[q], 0.9, 0.4);
      a.param = w == 1 ? NNFT_PARAM_NTK : NNFT_PARAM_STANDARD;
      a.layer[1].mean_w = 0.1 * w;
      check_fused(&a, &X2);
    }
  /* d = 5: the layer-1 product runs four input columns per pass, then one */
  nnft_mat X5;
  nnft_mat_alloc(3, 5, &X5);
  for (int i = 0; i < 15; i++) X5.data[i] = cos(0.9 * i);
  nnft_arch a5 = one_layer(5, 19, NNFT_ACT_RELU, 1.2, 0.3);
  check_fused(&a5, &X5);
  a5 = one_layer(5, 16, NNFT_ACT_ERF, 0.8, 0.0);
  check_fused(&a5, &X5);
  nnft_mat_free(&X5);
  nnft_mat_free(&X1);
  nnft_mat_free(&X2);
}

/* nnft_ens_params gives the parameters the sampler used: a Net built from them computes the
 * same outputs (to rounding: BLAS sums in another order). */
static void check_params(const nnft_arch *a, const nnft_mat *X, uint64_t seed) {
  nnft_net net;
  CHECK_STATUS(nnft_net_setup(a, &net), NNFT_OK);
  nnft_mat F, f;
  nnft_mat_alloc(20, X->rows, &F);
  nnft_mat_alloc(X->rows, 1, &f);
  CHECK_STATUS(nnft_ens_outputs(a, X, seed, 0, 8, 1, &F), NNFT_OK);
  double worst = 0;
  for (size_t e = 0; e < 20; e++) {
    CHECK_STATUS(nnft_ens_params(a, seed, e, net.theta), NNFT_OK);
    nnft_net_forward(&net, X, &f);
    for (size_t k = 0; k < X->rows; k++) {
      double d = fabs(f.data[k] - NNFT_AT(&F, e, k)) / (1 + fabs(f.data[k]));
      if (d > worst) worst = d;
    }
  }
  CHECK(worst < 1e-12);
  nnft_mat_free(&F);
  nnft_mat_free(&f);
  nnft_net_free(&net);
}

static void test_params(void) {
  nnft_mat X;
  nnft_mat_alloc(3, 2, &X);
  const double p[6] = {0.3, -1.0, 0.5, 0.5, -0.7, 0.1};
  for (int i = 0; i < 3; i++) {
    NNFT_AT(&X, i, 0) = p[2 * i];
    NNFT_AT(&X, i, 1) = p[2 * i + 1];
  }
  nnft_arch a = one_layer(2, 11, NNFT_ACT_ERF, 1.3, 0.4);
  a.layer[0].mean_w = 0.2;
  a.layer[1].mean_b = -0.1;
  check_params(&a, &X, 5);
  a.param = NNFT_PARAM_NTK;
  check_params(&a, &X, 6);
  a.layer[0].sigma_b = 0; /* no draws for that bias */
  check_params(&a, &X, 7);
  /* deep, several activations, a layer without bias */
  nnft_arch d;
  memset(&d, 0, sizeof d);
  d.d_in = 2;
  d.nlayers = 4;
  d.layer[0] = (nnft_layer){2, 9, NNFT_ACT_RELU, 1.4, 0.1, 0, 0, 1, 0};
  d.layer[1] = (nnft_layer){9, 6, NNFT_ACT_SIGMOID, 1.0, 0.3, 0, 0, 0, 0};
  d.layer[2] = (nnft_layer){6, 4, NNFT_ACT_GELU, 1.1, 0.2, 0.05, 0, 1, 0};
  d.layer[3] = (nnft_layer){4, 1, NNFT_ACT_LINEAR, 1.0, 0.0, 0, 0, 1, 0};
  check_params(&d, &X, 8);
  /* gauss-net and cos-nets */
  a = one_layer(2, 8, NNFT_ACT_GAUSSNET, 1.0, 0.6);
  check_params(&a, &X, 9);
  a = one_layer(2, 8, NNFT_ACT_COS, 1.0, 0.0);
  a.is_cosnet = 1;
  a.freq = NNFT_FREQ_BALL;
  a.radius = 2.5;
  a.mass = 0.5;
  a.amplitude = 1;
  a.layer[1].has_bias = 0;
  check_params(&a, &X, 10);
  a.freq = NNFT_FREQ_GAUSSIAN;
  check_params(&a, &X, 11);
  nnft_mat_free(&X);
}

/* ---- bad input, consumer errors, interrupts, allocation failures ---- */

static nnft_status failing_chunk(void *ctx, int tid, size_t slot, size_t e0,
                                 const nnft_mat *F) {
  (void)ctx;
  (void)tid;
  (void)slot;
  (void)F;
  return e0 >= 512 ? NNFT_EDIM : NNFT_OK;
}
static nnft_status count_chunk(void *ctx, int tid, size_t slot, size_t e0,
                               const nnft_mat *F) {
  (void)tid;
  (void)slot;
  (void)e0;
  if (F->rows > 0) __atomic_add_fetch((int *)ctx, 1, __ATOMIC_RELAXED);
  return NNFT_OK;
}
static nnft_status interrupting_chunk(void *ctx, int tid, size_t slot, size_t e0,
                                      const nnft_mat *F) {
  (void)ctx;
  (void)tid;
  (void)slot;
  (void)F;
  if (e0 == 0) nnft_interrupt_flag = 1;
  return NNFT_OK;
}

static void bounds_range(const void *ctx, size_t q, size_t *lo, size_t *hi) {
  const size_t *b = ctx;
  *lo = b[q];
  *hi = b[q + 1];
}

static void test_bad_input(void) {
  nnft_arch a = one_layer(2, 5, NNFT_ACT_RELU, 1, 0);
  nnft_mat X, Xbad;
  nnft_mat_alloc(3, 2, &X);
  nnft_mat_alloc(3, 3, &Xbad);
  nnft_mat F;
  nnft_mat_alloc(10, 3, &F);
  CHECK_STATUS(nnft_ens_outputs(&a, &Xbad, 1, 0, 4, 1, &F), NNFT_EDIM);
  X.data[4] = NAN;
  CHECK_STATUS(nnft_ens_outputs(&a, &X, 1, 0, 4, 1, &F), NNFT_ENONFINITE);
  X.data[4] = INFINITY;
  CHECK_STATUS(nnft_ens_check(&a, &X), NNFT_ENONFINITE);
  for (int i = 0; i < 6; i++) X.data[i] = 0.3 * i - 0.7;
  CHECK_STATUS(nnft_ens_check(&a, &X), NNFT_OK);
  CHECK_STATUS(nnft_ens_outputs(&a, &X, 1, 0, 0, 1, &F), NNFT_EDOM); /* chunk 0 */
  nnft_mat F2;
  nnft_mat_alloc(10, 2, &F2);
  CHECK_STATUS(nnft_ens_outputs(&a, &X, 1, 0, 4, 1, &F2), NNFT_EDIM);
  nnft_mat_free(&F2);
  nnft_arch bad = a;
  bad.layer[1].fan_in = 4;
  CHECK_STATUS(nnft_ens_outputs(&bad, &X, 1, 0, 4, 1, &F), NNFT_EDIM);
  bad = a;
  bad.layer[0].sigma_w = -1;
  CHECK_STATUS(nnft_ens_outputs(&bad, &X, 1, 0, 4, 1, &F), NNFT_EDOM);

  int calls = 0;
  nnft_ens_consumer cnt = {&calls, count_chunk, NULL};
  CHECK_STATUS(nnft_ens_run(&a, &X, 1, 0, 4, NULL, 1, &cnt), NNFT_EDOM); /* E = 0 */
  CHECK_STATUS(nnft_ens_run(&a, &X, 1, 10, 4, NULL, 2, &cnt), NNFT_OK);
  CHECK(calls == 3);
  size_t bnd[3] = {0, 5, 5};
  nnft_ens_chunks bad_chunks = {2, 5, bounds_range, bnd};
  CHECK_STATUS(nnft_ens_run(&a, &X, 1, 0, 0, &bad_chunks, 1, &cnt), NNFT_EDOM); /* empty */
  bnd[2] = 12;
  CHECK_STATUS(nnft_ens_run(&a, &X, 1, 0, 0, &bad_chunks, 1, &cnt), NNFT_EDOM); /* > max */
  bad_chunks.count = 0;
  CHECK_STATUS(nnft_ens_run(&a, &X, 1, 0, 0, &bad_chunks, 1, &cnt), NNFT_EDOM);
  nnft_ens_consumer fail = {NULL, failing_chunk, NULL};
  CHECK_STATUS(nnft_ens_run(&a, &X, 1, 2000, 256, NULL, 2, &fail), NNFT_EDIM);
  nnft_ens_consumer intr = {NULL, interrupting_chunk, NULL};
  CHECK_STATUS(nnft_ens_run(&a, &X, 1, 5000, 256, NULL, 1, &intr), NNFT_EINTR);
  nnft_interrupt_flag = 0;

  /* correlators: accumulator for the wrong n, or used twice */
  const int o[1] = {2};
  nnft_corr_acc *acc;
  nnft_corr_acc_alloc(4, o, 1, 100, 4, &acc);
  CHECK_STATUS(nnft_ens_correlators(&a, &X, 1, 64, 1, acc), NNFT_EDOM);
  nnft_corr_acc_free(acc);
  nnft_corr_acc_alloc(3, o, 1, 100, 4, &acc);
  CHECK_STATUS(nnft_ens_correlators(&a, &X, 1, 64, 1, acc), NNFT_OK);
  CHECK_STATUS(nnft_ens_correlators(&a, &X, 1, 64, 1, acc), NNFT_EDOM);
  nnft_corr_acc_free(acc);

  /* allocation failures: every path returns ENOMEM and frees what it had */
  int saw_ok = 0;
  for (long k = 0; k < 60 && !saw_ok; k++) {
    nnft_corr_acc_alloc(3, o, 1, 300, 3, &acc);
    test_alloc_fail_after(k);
    nnft_status s = nnft_ens_correlators(&a, &X, 1, 64, 2, acc);
    test_alloc_fail_after(-1);
    CHECK(s == NNFT_OK || s == NNFT_ENOMEM);
    saw_ok = s == NNFT_OK;
    nnft_corr_acc_free(acc);
  }
  CHECK(saw_ok);

  /* histogram and range */
  nnft_corr_hist h;
  double lo[3], hi[3];
  CHECK_STATUS(nnft_ens_range(&a, &X, 3, 1000, 256, 2, lo, hi), NNFT_OK);
  CHECK(lo[0] < hi[0]);
  CHECK_STATUS(nnft_corr_hist_alloc(10, 3, lo[0], hi[0], &h), NNFT_OK);
  CHECK_STATUS(nnft_ens_histogram(&a, &X, 3, 1000, 256, 2, &h), NNFT_OK);
  uint64_t tot = h.under[0] + h.over[0] + h.nan[0];
  for (int b = 0; b < 10; b++) tot += h.counts[b];
  CHECK(tot == 1000 && h.under[0] == 0 && h.over[0] == 0 && h.counts[9] >= 1);
  nnft_corr_hist h1;
  nnft_corr_hist_alloc(10, 3, lo[0], hi[0], &h1);
  CHECK_STATUS(nnft_ens_histogram(&a, &X, 3, 1000, 100, 1, &h1), NNFT_OK);
  CHECK(memcmp(h.counts, h1.counts, 30 * sizeof(uint64_t)) == 0);
  nnft_corr_hist_free(&h);
  nnft_corr_hist_free(&h1);
  nnft_mat_free(&X);
  nnft_mat_free(&Xbad);
  nnft_mat_free(&F);
}

int main(void) {
  test_kernels();
  test_invariance();
  test_params();
  test_fused();
  test_bad_input();
  return test_report("test_ensemble");
}
