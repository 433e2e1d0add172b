/* Tests of nnft_net: a hand-computed forward pass; Jacobians and loss gradients against central
 * finite differences for every activation (step excepted) in both parameterisations with frozen
 * layers; standard vs NTK equivalence under the parameter map; GD to the least-squares solution;
 * SGD reproducibility; Adam; cos-net initialisation; divergence; shapes; allocation failures. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nnft_net.h"
#include "test_util.h"

/* ---- helpers (independent of the code under test) ---- */

#include "test_fixtures.h"




static nnft_arch cosnet(size_t d, size_t N, int ball, nnft_param param) {
  size_t w[1] = {N};
  nnft_arch a = mlp(d, w, 1, NNFT_ACT_COS, param);
  a.is_cosnet = 1;
  a.layer[1].has_bias = 0;
  a.layer[1].sigma_w = 1.5; /* σ_a */
  if (ball) {
    a.freq = NNFT_FREQ_BALL;
    a.radius = 2.0;
    a.mass = 0.8;
    a.amplitude = 1;
  }
  return a;
}

static nnft_net make_net(const nnft_arch *a, uint64_t seed) {
  nnft_net net;
  test_alloc_fail_after(-1);
  if (nnft_net_setup(a, &net)) {
    fprintf(stderr, "cannot set up net\n");
    exit(2);
  }
  nnft_rng r;
  nnft_rng_init(&r, seed);
  CHECK_STATUS(nnft_net_init(&net, &r), NNFT_OK);
  return net;
}

/* ---- forward of a hand-computed network ---- */

static void test_forward_hand(void) {
  /* 2 -> 2 (relu) -> 1: W1 = [[1, -2], [0.5, 1]], b1 = [0.1, -0.2], W2 = [3, -1], b2 = 0.5 */
  size_t w[1] = {2};
  nnft_arch a = mlp(2, w, 1, NNFT_ACT_RELU, NNFT_PARAM_STANDARD);
  nnft_net net;
  CHECK_STATUS(nnft_net_setup(&a, &net), NNFT_OK);
  CHECK(net.nparams == 9 && net.ntrain == 9);
  double th[9] = {1, 0.5, -2, 1, 0.1, -0.2, 3, -1, 0.5}; /* W1 column-major, b1, W2, b2 */
  memcpy(net.theta, th, sizeof th);
  nnft_mat X = mat(2, 2), f = mat(2, 1);
  NNFT_AT(&X, 0, 0) = 1.0; NNFT_AT(&X, 0, 1) = 0.25; /* x = (1, 0.25) */
  NNFT_AT(&X, 1, 0) = -1.0; NNFT_AT(&X, 1, 1) = 1.0; /* x = (-1, 1) */
  CHECK_STATUS(nnft_net_forward(&net, &X, &f), NNFT_OK);
  /* x1: z = (1 - 0.5 + 0.1, 0.5 + 0.25 - 0.2) = (0.6, 0.55); f = 1.8 - 0.55 + 0.5 = 1.75
   * x2: z = (-1 - 2 + 0.1, -0.5 + 1 - 0.2) = (-2.9, 0.3); f = 0 - 0.3 + 0.5 = 0.2 */
  CHECK_NEAR(f.data[0], 1.75, 1e-14);
  CHECK_NEAR(f.data[1], 0.2, 1e-14);
  /* the same net in NTK parameterisation with σ_w = 2, σ_b = 0.5: the layer multiplies W by
   * 2/sqrt(fan_in) and b by 0.5 */
  for (size_t l = 0; l < 2; l++) {
    a.layer[l].sigma_w = 2.0;
    a.layer[l].sigma_b = 0.5;
  }
  a.param = NNFT_PARAM_NTK;
  nnft_net ntk;
  CHECK_STATUS(nnft_net_setup(&a, &ntk), NNFT_OK);
  double s = 2.0 / sqrt(2.0);
  double th2[9] = {1 / s, 0.5 / s, -2 / s, 1 / s, 0.2, -0.4, 3 / s, -1 / s, 1.0};
  memcpy(ntk.theta, th2, sizeof th2);
  CHECK_STATUS(nnft_net_forward(&ntk, &X, &f), NNFT_OK);
  CHECK_NEAR(f.data[0], 1.75, 1e-14);
  CHECK_NEAR(f.data[1], 0.2, 1e-14);
  /* the Jacobian by hand at x1: ∂f/∂W2 = h = (0.6, 0.55), ∂f/∂b2 = 1, ∂f/∂b1 = W2 ⊙ σ' = (3, -1),
   * ∂f/∂W1_ij = W2_i x_j */
  nnft_mat J = mat(2, 9);
  CHECK_STATUS(nnft_net_jacobian(&net, &X, &J, NULL), NNFT_OK);
  double want[9] = {3, -1, 0.75, -0.25, 3, -1, 0.6, 0.55, 1};
  for (int k = 0; k < 9; k++) CHECK_NEAR(NNFT_AT(&J, 0, k), want[k], 1e-14);
  /* at x2 the first unit is off: its row of W1 and its bias get no gradient */
  CHECK(NNFT_AT(&J, 1, 0) == 0.0 && NNFT_AT(&J, 1, 2) == 0.0 && NNFT_AT(&J, 1, 4) == 0.0);
  nnft_mat_free(&J);
  nnft_net_free(&net);
  nnft_net_free(&ntk);
  nnft_mat_free(&X);
  nnft_mat_free(&f);
}

/* ---- Jacobian and gradient against central differences ---- */

static double custom_eval(void *ctx, double z) { (void)ctx; return z / (1.0 + z * z); }
static double custom_deriv(void *ctx, double z) {
  (void)ctx;
  double q = 1.0 + z * z;
  return (1.0 - z * z) / (q * q);
}

/* Compare J and the MSE gradient with central differences of f and of the loss over every
 * trainable parameter; relative tolerance tol. */
static void check_fd(nnft_net *net, const nnft_mat *X, const nnft_mat *y, double tol,
                     const char *what) {
  size_t n = X->rows, T = net->ntrain;
  nnft_mat J = mat(n, T), f = mat(n, 1), fp = mat(n, 1), fm = mat(n, 1);
  CHECK_STATUS(nnft_net_jacobian(net, X, &J, &f), NNFT_OK);
  nnft_mat f2 = mat(n, 1);
  CHECK_STATUS(nnft_net_forward(net, X, &f2), NNFT_OK);
  double df = 0;
  for (size_t a = 0; a < n; a++) df = fmax(df, fabs(f.data[a] - f2.data[a]));
  CHECK(df == 0.0);
  double *grad = malloc(T * sizeof *grad);
  double loss;
  CHECK_STATUS(nnft_net_loss_grad(net, X, y, &loss, grad), NNFT_OK);
  size_t *idx = malloc(T * sizeof *idx);
  nnft_net_trainable_index(net, idx);
  double worst_j = 0, worst_g = 0, worst_gj = 0;
  for (size_t k = 0; k < T; k++) {
    double *p = net->theta + idx[k], p0 = *p, h = 1e-5 * fmax(1.0, fabs(p0));
    double lp, lm;
    *p = p0 + h;
    nnft_net_forward(net, X, &fp);
    nnft_net_loss_grad(net, X, y, &lp, NULL);
    *p = p0 - h;
    nnft_net_forward(net, X, &fm);
    nnft_net_loss_grad(net, X, y, &lm, NULL);
    *p = p0;
    double gk = 0;
    for (size_t a = 0; a < n; a++) {
      double fd = (fp.data[a] - fm.data[a]) / (2 * h), jk = NNFT_AT(&J, a, k);
      worst_j = fmax(worst_j, fabs(fd - jk) / (1.0 + fabs(jk)));
      gk += 2.0 / (double)n * (f.data[a] - y->data[a]) * jk;
    }
    double fdl = (lp - lm) / (2 * h);
    worst_g = fmax(worst_g, fabs(fdl - grad[k]) / (1.0 + fabs(grad[k])));
    worst_gj = fmax(worst_gj, fabs(gk - grad[k]) / (1.0 + fabs(grad[k])));
  }
  if (!(worst_j < tol && worst_g < tol && worst_gj < 1e-12))
    fprintf(stderr, "%s: worst relative errors J %.3g, grad %.3g, grad vs J %.3g\n", what,
            worst_j, worst_g, worst_gj);
  CHECK(worst_j < tol);
  CHECK(worst_g < tol);
  CHECK(worst_gj < 1e-12);
  free(grad);
  free(idx);
  nnft_mat_free(&J);
  nnft_mat_free(&f);
  nnft_mat_free(&f2);
  nnft_mat_free(&fp);
  nnft_mat_free(&fm);
}

static void test_fd_all_activations(void) {
  size_t widths[2] = {4, 3};
  nnft_mat X = randmat(5, 3, 1.0), y = randmat(5, 1, 1.0);
  for (int act = 0; act < NNFT_ACT_COUNT; act++) {
    if (act == NNFT_ACT_STEP) continue;
    for (int param = 0; param < 2; param++) {
      for (int frozen = 0; frozen < 3; frozen++) {
        size_t depth = act == NNFT_ACT_GAUSSNET ? 1 : 2;
        nnft_arch a = mlp(3, widths, depth, (nnft_act)act, (nnft_param)param);
        if (act == NNFT_ACT_CUSTOM) {
          a.custom.eval = custom_eval;
          a.custom.deriv = frozen == 2 ? NULL : custom_deriv; /* the finite-difference path */
        }
        if (act == NNFT_ACT_EXP || act == NNFT_ACT_GAUSSNET)
          for (size_t l = 0; l < a.nlayers; l++) a.layer[l].sigma_w = 0.5;
        if (frozen == 1) a.layer[depth == 2 ? 1 : 0].frozen = 1; /* a middle / first layer */
        if (frozen == 2) a.layer[0].frozen = 1;
        a.layer[0].mean_b = 0.1;
        nnft_net net = make_net(&a, 11 + (uint64_t)act);
        size_t P = net.nparams, T = net.ntrain, expect = P;
        for (size_t l = 0; l < a.nlayers; l++)
          if (a.layer[l].frozen)
            expect -= a.layer[l].fan_in * a.layer[l].fan_out + a.layer[l].fan_out;
        CHECK(T == expect);
        char what[96];
        snprintf(what, sizeof what, "%s %s frozen=%d", nnft_act_name((nnft_act)act),
                 param ? "ntk" : "standard", frozen);
        /* the finite-difference derivative of a custom activation limits the accuracy */
        check_fd(&net, &X, &y, act == NNFT_ACT_CUSTOM && frozen == 2 ? 1e-5 : 1e-6, what);
        nnft_net_free(&net);
      }
    }
  }
  /* cos-nets: plain and the generalised (ball, amplitude) one, frozen frequencies or not */
  for (int ball = 0; ball < 2; ball++)
    for (int param = 0; param < 2; param++)
      for (int frozen = 0; frozen < 2; frozen++) {
        nnft_arch a = cosnet(3, 6, ball, (nnft_param)param);
        a.layer[0].frozen = frozen;
        nnft_net net = make_net(&a, 5);
        char what[64];
        snprintf(what, sizeof what, "cosnet ball=%d %s frozen=%d", ball,
                 param ? "ntk" : "standard", frozen);
        check_fd(&net, &X, &y, 1e-6, what);
        nnft_net_free(&net);
      }
  nnft_mat_free(&X);
  nnft_mat_free(&y);
}

/* ---- standard and NTK parameterisations: same function under θ_std = scale ⊙ θ_ntk ---- */

static void test_param_map(void) {
  size_t widths[2] = {5, 4};
  nnft_mat X = randmat(7, 2, 1.0);
  nnft_act acts[3] = {NNFT_ACT_TANH, NNFT_ACT_RELU, NNFT_ACT_ERF};
  for (int k = 0; k < 3; k++) {
    nnft_arch an = mlp(2, widths, 2, acts[k], NNFT_PARAM_NTK);
    nnft_arch as = an;
    as.param = NNFT_PARAM_STANDARD;
    nnft_net ntk = make_net(&an, 3), std;
    CHECK_STATUS(nnft_net_setup(&as, &std), NNFT_OK);
    double *scale = malloc(ntk.nparams * sizeof *scale);
    nnft_net_scales(&ntk, scale);
    /* spot-check the factors: W^1 σ_w/sqrt(d), b^1 σ_b */
    CHECK_NEAR(scale[0], 1.3 / sqrt(2.0), 1e-15);
    CHECK_NEAR(scale[ntk.b_off[0]], 0.7, 1e-15);
    for (size_t p = 0; p < ntk.nparams; p++) std.theta[p] = scale[p] * ntk.theta[p];
    nnft_mat f1 = mat(7, 1), f2 = mat(7, 1);
    CHECK_STATUS(nnft_net_forward(&ntk, &X, &f1), NNFT_OK);
    CHECK_STATUS(nnft_net_forward(&std, &X, &f2), NNFT_OK);
    for (size_t a = 0; a < 7; a++) CHECK_NEAR(f1.data[a], f2.data[a], 1e-12);
    /* chain rule: J_ntk = J_std ⊙ scale */
    nnft_mat J1 = mat(7, ntk.ntrain), J2 = mat(7, ntk.ntrain);
    CHECK_STATUS(nnft_net_jacobian(&ntk, &X, &J1, NULL), NNFT_OK);
    CHECK_STATUS(nnft_net_jacobian(&std, &X, &J2, NULL), NNFT_OK);
    double worst = 0;
    for (size_t p = 0; p < ntk.ntrain; p++)
      for (size_t a = 0; a < 7; a++)
        worst = fmax(worst, fabs(NNFT_AT(&J1, a, p) - scale[p] * NNFT_AT(&J2, a, p)));
    CHECK(worst < 1e-12);
    /* standard init: stored weights have the fan-in variance (statistical, loose) */
    nnft_net big;
    size_t wb[1] = {2000};
    nnft_arch ab = mlp(4, wb, 1, acts[k], NNFT_PARAM_STANDARD);
    big = make_net(&ab, 9);
    double ss = 0;
    for (size_t p = 0; p < 8000; p++) ss += big.theta[p] * big.theta[p];
    CHECK_NEAR(ss / 8000, 1.3 * 1.3 / 4, 0.05);
    nnft_net_free(&big);
    free(scale);
    nnft_mat_free(&f1);
    nnft_mat_free(&f2);
    nnft_mat_free(&J1);
    nnft_mat_free(&J2);
    nnft_net_free(&ntk);
    nnft_net_free(&std);
  }
  nnft_mat_free(&X);
}

/* ---- training ---- */

/* Solve the 4x4 system A x = b by Gaussian elimination with partial pivoting (in place). */
static void solve4(double A[4][4], double b[4], double x[4]) {
  for (int c = 0; c < 4; c++) {
    int p = c;
    for (int r = c + 1; r < 4; r++)
      if (fabs(A[r][c]) > fabs(A[p][c])) p = r;
    for (int k = 0; k < 4; k++) {
      double t = A[c][k];
      A[c][k] = A[p][k];
      A[p][k] = t;
    }
    double t = b[c];
    b[c] = b[p];
    b[p] = t;
    for (int r = c + 1; r < 4; r++) {
      double m = A[r][c] / A[c][c];
      for (int k = c; k < 4; k++) A[r][k] -= m * A[c][k];
      b[r] -= m * b[c];
    }
  }
  for (int c = 3; c >= 0; c--) {
    double s = b[c];
    for (int k = c + 1; k < 4; k++) s -= A[c][k] * x[k];
    x[c] = s / A[c][c];
  }
}

static void test_gd_least_squares(void) {
  /* a linear model f = w·x + b (one layer), noisy targets: GD converges to the LS solution */
  nnft_arch a = mlp(3, NULL, 0, NNFT_ACT_LINEAR, NNFT_PARAM_STANDARD);
  nnft_net net = make_net(&a, 1);
  size_t n = 40;
  nnft_mat X = randmat(n, 3, 1.0), y = mat(n, 1);
  for (size_t r = 0; r < n; r++)
    y.data[r] = 0.5 * NNFT_AT(&X, r, 0) - 1.5 * NNFT_AT(&X, r, 1) + 2 * NNFT_AT(&X, r, 2) + 0.3 +
                0.2 * urand();
  double A[4][4] = {{0}}, b[4] = {0}, x[4];
  for (size_t r = 0; r < n; r++) {
    double row[4] = {NNFT_AT(&X, r, 0), NNFT_AT(&X, r, 1), NNFT_AT(&X, r, 2), 1.0};
    for (int i = 0; i < 4; i++) {
      b[i] += row[i] * y.data[r];
      for (int j = 0; j < 4; j++) A[i][j] += row[i] * row[j];
    }
  }
  solve4(A, b, x);
  nnft_train_opts o = {NNFT_OPT_GD, 0.3, 3000, 0, 0, 0.9, 0.999, 1e-8, 1000};
  size_t nrec = nnft_train_nrecords(o.epochs, o.record), done = 0;
  CHECK(nrec == 4);
  CHECK(nnft_train_nrecords(10, 3) == 5 && nnft_train_record_epoch(10, 3, 4) == 10);
  double hist[4];
  CHECK_STATUS(nnft_net_train(&net, &X, &y, &o, NULL, hist, &done), NNFT_OK);
  CHECK(done == 3000);
  for (int i = 0; i < 4; i++) CHECK_NEAR(net.theta[i], x[i], 1e-9);
  CHECK(hist[3] < hist[0]);
  double loss;
  CHECK_STATUS(nnft_net_loss_grad(&net, &X, &y, &loss, NULL), NNFT_OK);
  CHECK_NEAR(hist[3], loss, 1e-15);
  /* one GD step by hand: θ1 = θ0 − lr ∇MSE */
  nnft_net n1 = make_net(&a, 2);
  double g[4], th0[4];
  memcpy(th0, n1.theta, sizeof th0);
  CHECK_STATUS(nnft_net_loss_grad(&n1, &X, &y, NULL, g), NNFT_OK);
  o.epochs = 1;
  o.record = 1;
  CHECK_STATUS(nnft_net_train(&n1, &X, &y, &o, NULL, NULL, NULL), NNFT_OK);
  for (int i = 0; i < 4; i++) CHECK_NEAR(n1.theta[i], th0[i] - 0.3 * g[i], 1e-15);
  /* divergence: a huge learning rate is reported and the parameters are restored */
  memcpy(n1.theta, th0, sizeof th0);
  o.lr = 1e200;
  o.epochs = 5;
  CHECK_STATUS(nnft_net_train(&n1, &X, &y, &o, NULL, NULL, &done), NNFT_ENONFINITE);
  for (int i = 0; i < 4; i++) CHECK(isfinite(n1.theta[i]));
  /* bad options */
  o.lr = -1;
  CHECK_STATUS(nnft_net_train(&n1, &X, &y, &o, NULL, NULL, NULL), NNFT_EDOM);
  o.lr = 0.1;
  o.batch = 3; /* gd is full-batch */
  CHECK_STATUS(nnft_net_train(&n1, &X, &y, &o, NULL, NULL, NULL), NNFT_EDOM);
  o.optimizer = NNFT_OPT_SGD;
  o.shuffle = 1; /* shuffling needs a generator */
  CHECK_STATUS(nnft_net_train(&n1, &X, &y, &o, NULL, NULL, NULL), NNFT_EDOM);
  nnft_net_free(&n1);
  nnft_net_free(&net);
  nnft_mat_free(&X);
  nnft_mat_free(&y);
}

static void test_sgd_adam(void) {
  size_t widths[1] = {8};
  nnft_arch a = mlp(1, widths, 1, NNFT_ACT_TANH, NNFT_PARAM_STANDARD);
  size_t n = 12;
  nnft_mat X = randmat(n, 1, 2.0), y = mat(n, 1);
  for (size_t r = 0; r < n; r++) y.data[r] = sin(2 * X.data[r]);
  nnft_net base = make_net(&a, 4), n1, n2;
  nnft_train_opts o = {NNFT_OPT_SGD, 0.05, 20, 0, 1, 0.9, 0.999, 1e-8, 5};
  nnft_rng r1, r2;
  /* shuffled: same seed -> bit-identical; another seed -> different */
  CHECK_STATUS(nnft_net_copy(&base, &n1), NNFT_OK);
  CHECK_STATUS(nnft_net_copy(&base, &n2), NNFT_OK);
  nnft_rng_init(&r1, 77);
  nnft_rng_init(&r2, 77);
  double h1[5], h2[5];
  CHECK_STATUS(nnft_net_train(&n1, &X, &y, &o, &r1, h1, NULL), NNFT_OK);
  CHECK_STATUS(nnft_net_train(&n2, &X, &y, &o, &r2, h2, NULL), NNFT_OK);
  CHECK(memcmp(n1.theta, n2.theta, base.nparams * sizeof(double)) == 0);
  CHECK(memcmp(h1, h2, sizeof h1) == 0);
  CHECK(h1[4] < h1[0]);
  memcpy(n2.theta, base.theta, base.nparams * sizeof(double));
  nnft_rng_init(&r2, 78);
  CHECK_STATUS(nnft_net_train(&n2, &X, &y, &o, &r2, NULL, NULL), NNFT_OK);
  CHECK(memcmp(n1.theta, n2.theta, base.nparams * sizeof(double)) != 0);
  /* fixed order: reproducible, different from shuffled, and equal to per-sample steps by hand */
  o.shuffle = 0;
  o.epochs = 2;
  memcpy(n1.theta, base.theta, base.nparams * sizeof(double));
  memcpy(n2.theta, base.theta, base.nparams * sizeof(double));
  CHECK_STATUS(nnft_net_train(&n1, &X, &y, &o, NULL, NULL, NULL), NNFT_OK);
  double *g = malloc(base.ntrain * sizeof *g);
  for (int e = 0; e < 2; e++)
    for (size_t r = 0; r < n; r++) {
      nnft_mat xr = {1, 1, X.ld, X.data + r, 0}, yr = {1, 1, 1, y.data + r, 0};
      nnft_net_loss_grad(&n2, &xr, &yr, NULL, g); /* ∇(f − y)² */
      for (size_t p = 0; p < base.ntrain; p++) n2.theta[p] -= 0.05 * g[p];
    }
  double worst = 0;
  for (size_t p = 0; p < base.nparams; p++) worst = fmax(worst, fabs(n1.theta[p] - n2.theta[p]));
  CHECK(worst < 1e-13);
  /* Adam decreases the loss */
  o.optimizer = NNFT_OPT_ADAM;
  o.lr = 0.01;
  o.epochs = 200;
  o.record = 200;
  double ha[2];
  memcpy(n1.theta, base.theta, base.nparams * sizeof(double));
  CHECK_STATUS(nnft_net_train(&n1, &X, &y, &o, NULL, ha, NULL), NNFT_OK);
  CHECK(ha[1] < 0.5 * ha[0]);
  /* Adam with mini-batches, shuffled */
  o.batch = 5;
  o.shuffle = 1;
  o.epochs = 50;
  o.record = 50;
  nnft_rng_init(&r1, 3);
  CHECK_STATUS(nnft_net_train(&n1, &X, &y, &o, &r1, ha, NULL), NNFT_OK);
  CHECK(ha[1] <= ha[0]);
  free(g);
  nnft_net_free(&n1);
  nnft_net_free(&n2);
  nnft_net_free(&base);
  nnft_mat_free(&X);
  nnft_mat_free(&y);
}

/* A frozen prefix leaves a lone linear readout, trained per sample by a dot product and an
 * axpy: the steps must equal per-sample gradient steps taken by hand (both parameterisations,
 * fixed and shuffled order). */
static void test_readout_sgd(void) {
  size_t widths[2] = {7, 30};
  for (int param = 0; param < 2; param++)
    for (int shuffled = 0; shuffled < 2; shuffled++) {
      nnft_arch a = mlp(2, widths, 2, NNFT_ACT_RELU, param ? NNFT_PARAM_NTK : NNFT_PARAM_STANDARD);
      a.layer[0].frozen = 1;
      a.layer[1].frozen = 1;
      nnft_net n1 = make_net(&a, 21), n2;
      CHECK_STATUS(nnft_net_copy(&n1, &n2), NNFT_OK);
      size_t n = 9;
      nnft_mat X = randmat(n, 2, 1.5), y = randmat(n, 1, 1.0);
      nnft_train_opts o = {NNFT_OPT_SGD, 0.02, 3, 1, shuffled, 0.9, 0.999, 1e-8, 3};
      nnft_rng r1, r2;
      nnft_rng_init(&r1, 5);
      nnft_rng_init(&r2, 5);
      CHECK_STATUS(nnft_net_train(&n1, &X, &y, &o, shuffled ? &r1 : NULL, NULL, NULL), NNFT_OK);
      size_t *perm = malloc(n * sizeof *perm);
      double *g = malloc(n2.ntrain * sizeof *g), *t = n2.theta + n2.w_off[2];
      for (int e = 0; e < 3; e++) {
        if (shuffled) nnft_rng_permutation(&r2, n, perm);
        for (size_t k = 0; k < n; k++) {
          size_t r = shuffled ? perm[k] : k;
          nnft_mat xr = {1, 2, X.ld, X.data + r, 0}, yr = {1, 1, 1, y.data + r, 0};
          nnft_net_loss_grad(&n2, &xr, &yr, NULL, g); /* ∇(f − y)² over the readout */
          for (size_t p = 0; p < n2.ntrain; p++) t[p] -= 0.02 * g[p];
        }
      }
      double worst = 0;
      for (size_t p = 0; p < n1.nparams; p++) worst = fmax(worst, fabs(n1.theta[p] - n2.theta[p]));
      CHECK(worst < 1e-13);
      free(perm);
      free(g);
      nnft_net_free(&n1);
      nnft_net_free(&n2);
      nnft_mat_free(&X);
      nnft_mat_free(&y);
    }
}

static double max_abs_diff(const nnft_mat *a, const nnft_mat *b) {
  double d;
  return nnft_mat_max_abs_diff(a, b, &d) ? INFINITY : d;
}

/* The frozen prefix's features and the trainable suffix reproduce the full network. */
static void test_features_suffix(void) {
  size_t widths[2] = {6, 9};
  for (int param = 0; param < 2; param++) {
    nnft_arch a = mlp(3, widths, 2, NNFT_ACT_TANH, param ? NNFT_PARAM_NTK : NNFT_PARAM_STANDARD);
    a.layer[0].frozen = 1;
    nnft_net net = make_net(&a, 31), sub;
    nnft_mat X = randmat(7, 3, 1.0), H = mat(7, 6), f = mat(7, 1), g = mat(7, 1), bad = mat(7, 5);
    CHECK_STATUS(nnft_net_features(&net, &X, &H), NNFT_OK);
    CHECK_STATUS(nnft_net_suffix(&net, &sub), NNFT_OK);
    CHECK(sub.arch.d_in == 6 && sub.arch.nlayers == 2 && sub.theta == net.theta + net.w_off[1]);
    CHECK_STATUS(nnft_net_forward(&net, &X, &f), NNFT_OK);
    CHECK_STATUS(nnft_net_forward(&sub, &H, &g), NNFT_OK);
    CHECK(max_abs_diff(&f, &g) < 1e-13);
    CHECK_STATUS(nnft_net_features(&net, &X, &bad), NNFT_EDIM);
    /* nothing frozen: the features are X itself */
    net.arch.layer[0].frozen = 0;
    net.first_train = 0;
    nnft_mat H0 = mat(7, 3);
    CHECK_STATUS(nnft_net_features(&net, &X, &H0), NNFT_OK);
    CHECK(max_abs_diff(&H0, &X) == 0);
    nnft_net_free(&net);
    nnft_mat_free(&X); nnft_mat_free(&H); nnft_mat_free(&f); nnft_mat_free(&g);
    nnft_mat_free(&bad); nnft_mat_free(&H0);
  }
  /* everything frozen: no suffix */
  nnft_arch z = mlp(2, widths, 1, NNFT_ACT_RELU, NNFT_PARAM_STANDARD);
  z.layer[0].frozen = z.layer[1].frozen = 1;
  nnft_net zn = make_net(&z, 2), zs;
  nnft_mat X2 = randmat(3, 2, 1.0), H2 = mat(3, 6);
  CHECK_STATUS(nnft_net_suffix(&zn, &zs), NNFT_EDOM);
  CHECK_STATUS(nnft_net_features(&zn, &X2, &H2), NNFT_EDOM);
  nnft_net_free(&zn);
  nnft_mat_free(&X2); nnft_mat_free(&H2);
}

/* frozen layers do not move in training */
static void test_frozen_training(void) {
  size_t widths[2] = {6, 5};
  nnft_arch a = mlp(2, widths, 2, NNFT_ACT_RELU, NNFT_PARAM_STANDARD);
  a.layer[0].frozen = 1;
  a.layer[1].frozen = 1;
  nnft_net net = make_net(&a, 8);
  CHECK(net.ntrain == 6 && net.first_train == 2);
  double *before = malloc(net.nparams * sizeof *before);
  memcpy(before, net.theta, net.nparams * sizeof *before);
  nnft_mat X = randmat(10, 2, 1.0), y = randmat(10, 1, 1.0);
  nnft_train_opts o = {NNFT_OPT_SGD, 0.01, 10, 0, 0, 0.9, 0.999, 1e-8, 10};
  CHECK_STATUS(nnft_net_train(&net, &X, &y, &o, NULL, NULL, NULL), NNFT_OK);
  CHECK(memcmp(before, net.theta, net.w_off[2] * sizeof(double)) == 0);
  CHECK(memcmp(before + net.w_off[2], net.theta + net.w_off[2], 6 * sizeof(double)) != 0);
  /* the frozen-prefix cache gives the per-sample steps computed through the whole network */
  nnft_net byhand;
  CHECK_STATUS(nnft_net_copy(&net, &byhand), NNFT_OK);
  memcpy(net.theta, before, net.nparams * sizeof(double));
  memcpy(byhand.theta, before, net.nparams * sizeof(double));
  o.epochs = 3;
  CHECK_STATUS(nnft_net_train(&net, &X, &y, &o, NULL, NULL, NULL), NNFT_OK);
  double gh[6];
  for (int e = 0; e < 3; e++)
    for (size_t r = 0; r < 10; r++) {
      nnft_mat xr = {1, 2, X.ld, X.data + r, 0}, yr = {1, 1, 1, y.data + r, 0};
      nnft_net_loss_grad(&byhand, &xr, &yr, NULL, gh);
      for (int k = 0; k < 6; k++) byhand.theta[byhand.w_off[2] + k] -= 0.01 * gh[k];
    }
  double worst = 0;
  for (size_t p = 0; p < net.nparams; p++)
    worst = fmax(worst, fabs(net.theta[p] - byhand.theta[p]));
  CHECK(worst < 1e-14);
  nnft_net_free(&byhand);
  /* get/set trainable round trip */
  double v[6], v2[6];
  nnft_net_get_trainable(&net, v);
  for (int k = 0; k < 6; k++) v2[k] = v[k] + 1;
  nnft_net_set_trainable(&net, v2);
  CHECK(net.theta[net.w_off[2]] == v[0] + 1 && net.theta[net.nparams - 1] == v[5] + 1);
  free(before);
  nnft_net_free(&net);
  nnft_mat_free(&X);
  nnft_mat_free(&y);
}

/* ---- cos-net initialisation ---- */

static void test_cosnet_init(void) {
  nnft_arch a = cosnet(3, 500, 1, NNFT_PARAM_STANDARD);
  nnft_net net = make_net(&a, 21);
  size_t N = 500;
  int inside = 1, phases = 1;
  double maxr = 0;
  for (size_t i = 0; i < N; i++) {
    double r2 = 0;
    for (size_t j = 0; j < 3; j++) r2 += net.theta[i + j * N] * net.theta[i + j * N];
    inside &= r2 <= 4.0;
    maxr = fmax(maxr, sqrt(r2));
    double c = net.theta[net.b_off[0] + i];
    phases &= c >= -M_PI && c < M_PI;
  }
  CHECK(inside && phases);
  CHECK(maxr > 1.8); /* the ball is filled out to its radius */
  CHECK(net.nparams == 500 * 3 + 500 + 500);
  /* readout ~ N(0, σ_a²/N) */
  double ss = 0;
  for (size_t i = 0; i < N; i++) ss += net.theta[net.w_off[1] + i] * net.theta[net.w_off[1] + i];
  CHECK_NEAR(ss / N, 1.5 * 1.5 / 500, 0.3 * 1.5 * 1.5 / 500);
  /* amplitude: f(x) = Σ a_i A(b_i) cos(b_i·x + c_i) by hand at one point */
  nnft_mat X = randmat(1, 3, 1.0), f = mat(1, 1);
  CHECK_STATUS(nnft_net_forward(&net, &X, &f), NNFT_OK);
  double C = sqrt(nnft_arch_cos_c2(&a)), sum = 0;
  for (size_t i = 0; i < N; i++) {
    double b2 = 0, dot = net.theta[net.b_off[0] + i];
    for (size_t j = 0; j < 3; j++) {
      double b = net.theta[i + j * N];
      b2 += b * b;
      dot += b * X.data[j];
    }
    sum += net.theta[net.w_off[1] + i] * C / sqrt(b2 + 0.64) * cos(dot);
  }
  CHECK_NEAR(f.data[0], sum, 1e-10 * (1 + fabs(sum)));
  nnft_mat_free(&X);
  nnft_mat_free(&f);
  nnft_net_free(&net);
}

/* ---- shapes and bad architectures ---- */

static void test_bad_input(void) {
  size_t widths[1] = {3};
  nnft_arch a = mlp(2, widths, 1, NNFT_ACT_RELU, NNFT_PARAM_STANDARD);
  nnft_net net = make_net(&a, 1), bad;
  nnft_mat X = mat(4, 3), f = mat(4, 1), X2 = mat(4, 2), f3 = mat(3, 1), J = mat(4, 5);
  CHECK_STATUS(nnft_net_forward(&net, &X, &f), NNFT_EDIM);
  CHECK_STATUS(nnft_net_forward(&net, &X2, &f3), NNFT_EDIM);
  CHECK_STATUS(nnft_net_jacobian(&net, &X2, &J, NULL), NNFT_EDIM);
  CHECK_STATUS(nnft_net_loss_grad(&net, &X2, &f3, NULL, NULL), NNFT_EDIM);
  nnft_mat X0 = {0, 2, 1, X2.data, 0}, y0 = {0, 1, 1, f.data, 0};
  CHECK_STATUS(nnft_net_loss_grad(&net, &X0, &y0, NULL, NULL), NNFT_EDOM);
  CHECK_STATUS(nnft_net_forward(&net, &X0, &y0), NNFT_OK);
  a.layer[0].fan_out = 0;
  CHECK_STATUS(nnft_net_setup(&a, &bad), NNFT_EDIM);
  a.layer[0].fan_out = 3;
  a.layer[0].sigma_w = -1;
  CHECK_STATUS(nnft_net_setup(&a, &bad), NNFT_EDOM);
  /* generalised cos-net in high dimension: C² = 2 vol(B_R)/(σ_a² (2π)^d) overflows (inf, and
   * the amplitudes with it) or underflows to 0 (every output 0): refused */
  nnft_arch c = cosnet(200, 3, 1, NNFT_PARAM_STANDARD);
  c.radius = 1e3;
  CHECK(!isfinite(nnft_arch_cos_c2(&c)));
  CHECK_STATUS(nnft_arch_check(&c), NNFT_EDOM);
  c = cosnet(400, 3, 1, NNFT_PARAM_STANDARD);
  c.radius = 1.0;
  CHECK(nnft_arch_cos_c2(&c) == 0);
  CHECK_STATUS(nnft_net_setup(&c, &bad), NNFT_EDOM);
  c = cosnet(100, 3, 1, NNFT_PARAM_STANDARD);
  CHECK_STATUS(nnft_arch_check(&c), NNFT_OK);
  nnft_net_free(NULL);
  nnft_net_free(&net);
  nnft_mat_free(&X);
  nnft_mat_free(&f);
  nnft_mat_free(&X2);
  nnft_mat_free(&f3);
  nnft_mat_free(&J);
}

/* ---- allocation failures: every allocation of every function fails in turn ---- */

static void test_alloc_failures(void) {
  size_t widths[2] = {4, 3};
  nnft_arch a = mlp(2, widths, 2, NNFT_ACT_TANH, NNFT_PARAM_STANDARD);
  nnft_arch c = cosnet(2, 5, 1, NNFT_PARAM_NTK);
  const nnft_arch *archs[2] = {&a, &c};
  nnft_mat X = randmat(6, 2, 1.0), y = randmat(6, 1, 1.0), f = mat(6, 1);
  for (int which = 0; which < 2; which++) {
    nnft_net ref = make_net(archs[which], 2);
    nnft_mat J = mat(6, ref.ntrain);
    double *g = malloc(ref.ntrain * sizeof *g);
    for (int fn = 0; fn < 7; fn++) {
      int ok = 0;
      for (long k = 0; k < 20 && !ok; k++) {
        nnft_status s = NNFT_OK;
        nnft_net tmp;
        nnft_rng r;
        nnft_rng_init(&r, 1);
        nnft_train_opts o = {NNFT_OPT_ADAM, 0.01, 2, 2, 1, 0.9, 0.999, 1e-8, 1};
        double hist[3];
        test_alloc_fail_after(k);
        switch (fn) {
        case 0:
          s = nnft_net_setup(archs[which], &tmp);
          if (!s) nnft_net_free(&tmp);
          break;
        case 1:
          s = nnft_net_copy(&ref, &tmp);
          if (!s) nnft_net_free(&tmp);
          break;
        case 2: s = nnft_net_forward(&ref, &X, &f); break;
        case 3: s = nnft_net_jacobian(&ref, &X, &J, &f); break;
        case 4: s = nnft_net_loss_grad(&ref, &X, &y, NULL, g); break;
        case 5: s = nnft_net_train(&ref, &X, &y, &o, &r, hist, NULL); break;
        case 6: {
          nnft_net *one = &ref;
          s = nnft_net_train_many(&one, 1, &X, &y, &o, &r, 1, hist, NULL, NULL);
          break;
        }
        }
        test_alloc_fail_after(-1);
        if (s == NNFT_OK) ok = 1;
        else CHECK_STATUS(s, NNFT_ENOMEM);
      }
      CHECK(ok);
    }
    free(g);
    nnft_mat_free(&J);
    nnft_net_free(&ref);
  }
  nnft_mat_free(&X);
  nnft_mat_free(&y);
  nnft_mat_free(&f);
}

/* ---- big batches go through several row blocks ---- */

static void test_blocks(void) {
  size_t widths[1] = {7};
  nnft_arch a = mlp(2, widths, 1, NNFT_ACT_SIN, NNFT_PARAM_STANDARD);
  nnft_net net = make_net(&a, 6);
  size_t n = 2 * NNFT_NET_BLOCK + 17;
  nnft_mat X = randmat(n, 2, 1.0), y = randmat(n, 1, 1.0), f = mat(n, 1), J = mat(n, net.ntrain);
  CHECK_STATUS(nnft_net_forward(&net, &X, &f), NNFT_OK);
  CHECK_STATUS(nnft_net_jacobian(&net, &X, &J, NULL), NNFT_OK);
  /* row by row agrees */
  nnft_mat f1 = mat(1, 1), J1 = mat(1, net.ntrain);
  double worst = 0;
  for (size_t r = 0; r < n; r += 37) {
    nnft_mat xr = {1, 2, X.ld, X.data + r, 0};
    nnft_net_forward(&net, &xr, &f1);
    nnft_net_jacobian(&net, &xr, &J1, NULL);
    worst = fmax(worst, fabs(f1.data[0] - f.data[r]));
    for (size_t p = 0; p < net.ntrain; p++) worst = fmax(worst, fabs(J1.data[p] - NNFT_AT(&J, r, p)));
  }
  CHECK(worst < 1e-14);
  /* the gradient of the MSE is (2/n) Jᵀ (f − y) */
  double *g = malloc(net.ntrain * sizeof *g), loss;
  CHECK_STATUS(nnft_net_loss_grad(&net, &X, &y, &loss, g), NNFT_OK);
  worst = 0;
  for (size_t p = 0; p < net.ntrain; p++) {
    double s = 0;
    for (size_t r = 0; r < n; r++) s += NNFT_AT(&J, r, p) * (f.data[r] - y.data[r]);
    worst = fmax(worst, fabs(2 * s / n - g[p]));
  }
  CHECK(worst < 1e-12);
  free(g);
  nnft_mat_free(&X);
  nnft_mat_free(&y);
  nnft_mat_free(&f);
  nnft_mat_free(&J);
  nnft_mat_free(&f1);
  nnft_mat_free(&J1);
  nnft_net_free(&net);
}

/* ---- interrupts: training stops at the next epoch and keeps the last completed one ---- */

static void test_interrupt(void) {
  size_t widths[1] = {4};
  nnft_arch a = mlp(1, widths, 1, NNFT_ACT_TANH, NNFT_PARAM_STANDARD);
  nnft_net net = make_net(&a, 3);
  nnft_mat X = randmat(5, 1, 1.0), y = randmat(5, 1, 1.0), f = mat(5, 1);
  double *before = malloc(net.nparams * sizeof *before);
  memcpy(before, net.theta, net.nparams * sizeof *before);
  nnft_train_opts o = {NNFT_OPT_SGD, 0.1, 10, 0, 0, 0.9, 0.999, 1e-8, 1};
  size_t done = 99;
  nnft_interrupt_flag = 1;
  CHECK_STATUS(nnft_net_train(&net, &X, &y, &o, NULL, NULL, &done), NNFT_EINTR);
  CHECK(done == 0);
  CHECK(memcmp(before, net.theta, net.nparams * sizeof *before) == 0);
  CHECK_STATUS(nnft_net_forward(&net, &X, &f), NNFT_EINTR);
  nnft_interrupt_flag = 0;
  CHECK_STATUS(nnft_net_forward(&net, &X, &f), NNFT_OK);
  free(before);
  nnft_net_free(&net);
  nnft_mat_free(&X);
  nnft_mat_free(&y);
  nnft_mat_free(&f);
}

/* ---- ensembles of trainings: thread-count invariant, member i = substream i ---- */

static void test_train_many(void) {
  size_t widths[1] = {6};
  nnft_arch a = mlp(1, widths, 1, NNFT_ACT_TANH, NNFT_PARAM_STANDARD);
  size_t n = 9, count = 5;
  nnft_mat X = randmat(n, 1, 2.0), y = mat(n, 1);
  for (size_t r = 0; r < n; r++) y.data[r] = cos(X.data[r]);
  nnft_train_opts o = {NNFT_OPT_SGD, 0.05, 6, 2, 1, 0.9, 0.999, 1e-8, 3};
  size_t nrec = nnft_train_nrecords(o.epochs, o.record);
  nnft_net nets1[5], nets2[5], ref;
  nnft_net *p1[5], *p2[5];
  for (size_t i = 0; i < count; i++) {
    nets1[i] = make_net(&a, 100 + i);
    nets2[i] = make_net(&a, 100 + i);
    p1[i] = &nets1[i];
    p2[i] = &nets2[i];
  }
  nnft_rng root;
  nnft_rng_init(&root, 31);
  double h1[5 * 3], h2[5 * 3];
  nnft_status st[5];
  size_t done[5];
  CHECK(nrec == 3);
  CHECK_STATUS(nnft_net_train_many(p1, count, &X, &y, &o, &root, 1, h1, st, done), NNFT_OK);
  CHECK_STATUS(nnft_net_train_many(p2, count, &X, &y, &o, &root, 2, h2, NULL, NULL), NNFT_OK);
  CHECK(memcmp(h1, h2, sizeof h1) == 0);
  for (size_t i = 0; i < count; i++) {
    CHECK(st[i] == NNFT_OK && done[i] == 6);
    CHECK(memcmp(nets1[i].theta, nets2[i].theta, nets1[i].nparams * sizeof(double)) == 0);
    /* member i is nnft_net_train with substream i */
    ref = make_net(&a, 100 + i);
    nnft_rng r;
    nnft_rng_substream(&root, i, &r);
    double hr[3];
    CHECK_STATUS(nnft_net_train(&ref, &X, &y, &o, &r, hr, NULL), NNFT_OK);
    CHECK(memcmp(ref.theta, nets1[i].theta, ref.nparams * sizeof(double)) == 0);
    CHECK(memcmp(hr, h1 + 3 * i, sizeof hr) == 0);
    nnft_net_free(&ref);
  }
  /* one member diverges: the others train, and the status says which */
  for (size_t i = 0; i < count; i++) nets1[i].theta[0] = 0.1;
  nets1[3].theta[0] = 1e300;
  o.lr = 1e10;
  CHECK_STATUS(nnft_net_train_many(p1, count, &X, &y, &o, &root, 2, NULL, st, done),
               NNFT_ENONFINITE);
  CHECK(st[3] == NNFT_ENONFINITE);
  for (size_t i = 0; i < count; i++) {
    nnft_net_free(&nets1[i]);
    nnft_net_free(&nets2[i]);
  }
  nnft_mat_free(&X);
  nnft_mat_free(&y);
}

int main(void) {
  test_forward_hand();
  test_fd_all_activations();
  test_param_map();
  test_gd_least_squares();
  test_sgd_adam();
  test_readout_sgd();
  test_features_suffix();
  test_frozen_training();
  test_cosnet_init();
  test_bad_input();
  test_alloc_failures();
  test_blocks();
  test_train_many();
  test_interrupt();
  return test_report("test_net");
}
