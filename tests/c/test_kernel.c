/* Tests of nnft_kernel: every leaf against its formula at hand-picked points (RBF, Matérn 1/2,
 * 3/2, 5/2, polynomial, the free propagator against nnft_freeprop, the one-hidden-layer ReLU
 * NNGP against its arc-cosine closed form and the NTK dispatch against nnft_nngp), the symmetric
 * path against the general one across tile boundaries, diag against the matrix diagonal, sums /
 * products / scalings (including the nestings that need temporaries) against elementwise
 * combinations of the parts, Matérn 1/2 = exp(−r/ℓ), positive semi-definiteness of every
 * stationary kernel on random points, the radial form, memory estimates, bad input, interrupts
 * and an allocation-failure loop. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_errno.h>

#include "nnft_freeprop.h"
#include "nnft_kernel.h"
#include "nnft_linalg.h"
#include "nnft_nngp.h"
#include "test_util.h"

#ifdef _OPENMP
#include <omp.h>
#endif

#define TEST_RNG_SEED 0x243F6A8885A308D3ull
#include "test_fixtures.h"



static double dist2(const nnft_mat *X, size_t i, const nnft_mat *Y, size_t j) {
  double s = 0;
  for (size_t k = 0; k < X->cols; k++) {
    double t = NNFT_AT(X, i, k) - NNFT_AT(Y, j, k);
    s += t * t;
  }
  return s;
}

/* max |a - b| / max(1, max |b|) */
static double reldiff(const nnft_mat *a, const nnft_mat *b) {
  double m = 0, s = 1;
  for (size_t j = 0; j < a->cols; j++)
    for (size_t i = 0; i < a->rows; i++) {
      double d = fabs(NNFT_AT(a, i, j) - NNFT_AT(b, i, j));
      if (!(d <= m)) m = d;
      if (fabs(NNFT_AT(b, i, j)) > s) s = fabs(NNFT_AT(b, i, j));
    }
  return m / s;
}

static nnft_mat kmat(const nnft_kernel *k, const nnft_mat *X, const nnft_mat *Y) {
  nnft_mat out = mat(X->rows, Y ? Y->rows : X->rows);
  nnft_status s = nnft_kernel_matrix(k, X, Y, &out);
  if (s) {
    fprintf(stderr, "kernel matrix failed: %s\n", nnft_strerror(s));
    test_failures++;
  }
  return out;
}

/* A one-hidden-layer ReLU network d -> N -> 1 (standard parameterisation). */
static nnft_arch relu_arch(size_t d, double sw1, double sb1, double sw2, double sb2) {
  nnft_arch a;
  memset(&a, 0, sizeof a);
  a.d_in = d;
  a.nlayers = 2;
  a.layer[0] = (nnft_layer){d, 50, NNFT_ACT_RELU, sw1, sb1, 0, 0, 1, 0};
  a.layer[1] = (nnft_layer){50, 1, NNFT_ACT_LINEAR, sw2, sb2, 0, 0, 1, 0};
  a.param = NNFT_PARAM_STANDARD;
  return a;
}

/* physics.md §2.3: K_ReLU = σ_b2² + (σ_w2²/2π) sqrt(k11 k22) [sin θ + (π − θ) cos θ] */
static double relu_kernel(const nnft_arch *a, const double *x, const double *y) {
  size_t d = a->d_in;
  double sw = a->layer[0].sigma_w, sb = a->layer[0].sigma_b;
  double xx = 0, yy = 0, xy = 0;
  for (size_t k = 0; k < d; k++) {
    xx += x[k] * x[k];
    yy += y[k] * y[k];
    xy += x[k] * y[k];
  }
  double k11 = sb * sb + sw * sw * xx / d, k22 = sb * sb + sw * sw * yy / d,
         k12 = sb * sb + sw * sw * xy / d;
  double th = atan2(sqrt(fmax(k11 * k22 - k12 * k12, 0)), k12);
  double s2 = a->layer[1].sigma_w, b2 = a->layer[1].sigma_b;
  return b2 * b2 + s2 * s2 / (2 * M_PI) * sqrt(k11 * k22) * (sin(th) + (M_PI - th) * cos(th));
}

static double min_eig_ratio(const nnft_mat *K) {
  size_t n = K->rows, m;
  nnft_mat w = mat(n, 1);
  nnft_eigh_opts o = nnft_eigh_defaults();
  o.vectors = 0;
  double r = NAN;
  if (nnft_linalg_eigh(K, &o, &w, NULL, &m, NULL) == NNFT_OK && m == n)
    r = w.data[n - 1] / w.data[0]; /* descending: smallest / largest */
  nnft_mat_free(&w);
  return r;
}

int main(void) {
  gsl_set_error_handler_off();
  test_alloc_fail_after(-1);

  /* ---- leaves at hand-picked points ---- */
  {
    nnft_mat X = mat(2, 2), Y = mat(3, 2);
    double xs[2][2] = {{0.3, -1.0}, {2.0, 0.5}}, ys[3][2] = {{1.1, 0.4}, {0.3, -1.0}, {-2, 3}};
    for (int i = 0; i < 2; i++)
      for (int k = 0; k < 2; k++) NNFT_AT(&X, i, k) = xs[i][k];
    for (int i = 0; i < 3; i++)
      for (int k = 0; k < 2; k++) NNFT_AT(&Y, i, k) = ys[i][k];
    /* (0.3,-1) - (1.1,0.4): r² = 0.64 + 1.96 = 2.6 */
    nnft_kernel rbf = nnft_kernel_rbf(1.5, 2.0);
    nnft_mat K = kmat(&rbf, &X, &Y);
    CHECK_NEAR(NNFT_AT(&K, 0, 0), 2.0 * exp(-2.6 / (2 * 2.25)), 1e-15);
    CHECK_NEAR(NNFT_AT(&K, 0, 1), 2.0, 1e-15); /* same point */
    CHECK_NEAR(NNFT_AT(&K, 1, 2), 2.0 * exp(-(16.0 + 6.25) / 4.5), 1e-15);
    nnft_mat_free(&K);

    double r = sqrt(2.6), l = 0.7, v = 1.3;
    nnft_kernel m12 = nnft_kernel_matern(0.5, l, v), m32 = nnft_kernel_matern(1.5, l, v),
                m52 = nnft_kernel_matern(2.5, l, v);
    K = kmat(&m12, &X, &Y);
    CHECK_NEAR(NNFT_AT(&K, 0, 0), v * exp(-r / l), 1e-15);
    CHECK_NEAR(NNFT_AT(&K, 0, 1), v, 1e-15);
    nnft_mat_free(&K);
    K = kmat(&m32, &X, &Y);
    CHECK_NEAR(NNFT_AT(&K, 0, 0), v * (1 + sqrt(3) * r / l) * exp(-sqrt(3) * r / l), 1e-15);
    nnft_mat_free(&K);
    K = kmat(&m52, &X, &Y);
    CHECK_NEAR(NNFT_AT(&K, 0, 0),
               v * (1 + sqrt(5) * r / l + 5 * r * r / (3 * l * l)) * exp(-sqrt(5) * r / l), 1e-15);
    nnft_mat_free(&K);

    /* poly: variance (x·y/d + offset)^degree; (0.3,-1)·(-2,3) = -3.6 */
    nnft_kernel poly = nnft_kernel_poly(3, 0.5, 1.2);
    K = kmat(&poly, &X, &Y);
    CHECK_NEAR(NNFT_AT(&K, 0, 2), 1.2 * pow(-3.6 / 2 + 0.5, 3), 1e-14);
    CHECK_NEAR(NNFT_AT(&K, 1, 0), 1.2 * pow((2.2 + 0.2) / 2 + 0.5, 3), 1e-14);
    nnft_kernel poly0 = nnft_kernel_poly(0, 0, 0.7); /* the constant kernel */
    nnft_mat_free(&K);
    K = kmat(&poly0, &X, &Y);
    CHECK_NEAR(NNFT_AT(&K, 1, 2), 0.7, 0);
    nnft_mat_free(&K);

    /* the free propagator in d = 2 against nnft_freeprop directly */
    nnft_kernel fp = nnft_kernel_freeprop(2, 4.0, 0.8);
    K = kmat(&fp, &X, &Y);
    nnft_freeprop_params pp = nnft_freeprop_defaults();
    pp.d = 2;
    pp.R = 4.0;
    pp.m = 0.8;
    nnft_freeprop_ws *ws;
    CHECK_STATUS(nnft_freeprop_ws_alloc(&ws), NNFT_OK);
    for (size_t i = 0; i < 2; i++)
      for (size_t j = 0; j < 3; j++) {
        double g = NAN;
        nnft_freeprop_eval(ws, &pp, sqrt(dist2(&X, i, &Y, j)), &g);
        CHECK_NEAR(NNFT_AT(&K, i, j), g, 1e-15);
      }
    nnft_freeprop_ws_free(ws);
    /* and its r = 0 closed form log(1 + R²/m²)/(4π) */
    CHECK_NEAR(NNFT_AT(&K, 0, 1), log1p(16.0 / 0.64) / (4 * M_PI), 1e-13);
    nnft_mat_free(&K);

    /* the ReLU NNGP against the arc-cosine closed form */
    nnft_arch a = relu_arch(2, 1.4, 0.3, 0.9, 0.2);
    nnft_kernel ng = nnft_kernel_nngp(&a, 0, 0);
    K = kmat(&ng, &X, &Y);
    for (size_t i = 0; i < 2; i++)
      for (size_t j = 0; j < 3; j++) {
        double x[2] = {NNFT_AT(&X, i, 0), NNFT_AT(&X, i, 1)};
        double y[2] = {NNFT_AT(&Y, j, 0), NNFT_AT(&Y, j, 1)};
        CHECK_NEAR(NNFT_AT(&K, i, j), relu_kernel(&a, x, y), 1e-13);
      }
    nnft_mat_free(&K);
    /* the NTK leaf is nnft_nngp's NTK */
    nnft_kernel nt = nnft_kernel_nngp(&a, 1, 0);
    nnft_mat K2 = mat(2, 3);
    K = kmat(&nt, &X, &Y);
    CHECK_STATUS(nnft_nngp_matrix(&a, 1, 0, &X, &Y, &K2), NNFT_OK);
    CHECK(reldiff(&K, &K2) == 0);
    nnft_mat_free(&K);
    nnft_mat_free(&K2);
    nnft_mat_free(&X);
    nnft_mat_free(&Y);
  }

  /* ---- Matérn 1/2 = exp(−r/ℓ) on a whole matrix ---- */
  {
    nnft_mat X = randmat(70, 3, 2.0);
    nnft_kernel m = nnft_kernel_matern(0.5, 0.9, 1.0);
    nnft_mat K = kmat(&m, &X, NULL);
    double worst = 0;
    for (size_t j = 0; j < 70; j++)
      for (size_t i = 0; i < 70; i++)
        worst = fmax(worst, fabs(NNFT_AT(&K, i, j) - exp(-sqrt(dist2(&X, i, &X, j)) / 0.9)));
    CHECK(worst < 1e-15);
    nnft_mat_free(&K);
    nnft_mat_free(&X);
  }

  /* ---- trees: sums, products, scalings against elementwise combinations ---- */
  {
    size_t n = 150, m = 83; /* several 64-tiles, ragged edges */
    nnft_mat X = randmat(n, 2, 1.5), Y = randmat(m, 2, 1.5);
    nnft_arch a = relu_arch(2, 1.1, 0.5, 1.0, 0.0);
    nnft_kernel rbf = nnft_kernel_rbf(0.8, 1.5), mat32 = nnft_kernel_matern(1.5, 1.2, 0.7),
                poly = nnft_kernel_poly(2, 1.0, 0.3), ng = nnft_kernel_nngp(&a, 0, 0);
    nnft_mat A = kmat(&rbf, &X, &Y), B = kmat(&mat32, &X, &Y), C = kmat(&poly, &X, &Y),
             D = kmat(&ng, &X, &Y);
    /* t1 = 0.5 rbf + matern · poly */
    nnft_kernel s1 = nnft_kernel_scale(0.5, &rbf), p1 = nnft_kernel_prod(&mat32, &poly),
                t1 = nnft_kernel_sum(&s1, &p1);
    /* t2 = (rbf + matern) · poly: a sum under a product */
    nnft_kernel s2 = nnft_kernel_sum(&rbf, &mat32), t2 = nnft_kernel_prod(&s2, &poly);
    /* t3 = 3 · (nngp · rbf + poly · (matern + 2 nngp)) */
    nnft_kernel p3 = nnft_kernel_prod(&ng, &rbf), sc = nnft_kernel_scale(2.0, &ng),
                s3 = nnft_kernel_sum(&mat32, &sc), p4 = nnft_kernel_prod(&poly, &s3),
                s4 = nnft_kernel_sum(&p3, &p4), t3 = nnft_kernel_scale(3.0, &s4);
    /* t4 = poly · (rbf · (matern + rbf)) · nngp: products of sums of products */
    nnft_kernel s5 = nnft_kernel_sum(&mat32, &rbf), p5 = nnft_kernel_prod(&rbf, &s5),
                p6 = nnft_kernel_prod(&poly, &p5), t4 = nnft_kernel_prod(&p6, &ng);
    nnft_mat K1 = kmat(&t1, &X, &Y), K2 = kmat(&t2, &X, &Y), K3 = kmat(&t3, &X, &Y),
             K4 = kmat(&t4, &X, &Y);
    nnft_mat E1 = mat(n, m), E2 = mat(n, m), E3 = mat(n, m), E4 = mat(n, m);
    for (size_t j = 0; j < m; j++)
      for (size_t i = 0; i < n; i++) {
        double a_ = NNFT_AT(&A, i, j), b = NNFT_AT(&B, i, j), c = NNFT_AT(&C, i, j),
               d = NNFT_AT(&D, i, j);
        NNFT_AT(&E1, i, j) = 0.5 * a_ + b * c;
        NNFT_AT(&E2, i, j) = (a_ + b) * c;
        NNFT_AT(&E3, i, j) = 3 * (d * a_ + c * (b + 2 * d));
        NNFT_AT(&E4, i, j) = c * (a_ * (b + a_)) * d;
      }
    CHECK(reldiff(&K1, &E1) < 1e-14);
    CHECK(reldiff(&K2, &E2) < 1e-14);
    CHECK(reldiff(&K3, &E3) < 1e-14);
    CHECK(reldiff(&K4, &E4) < 1e-14);
    CHECK_STATUS(nnft_kernel_depth(&t3), 6); /* 3·(…+ poly·(matern + 2·nngp)) */
    { /* a chain one beyond the maximum reports a depth beyond the maximum */
      static nnft_kernel chain[NNFT_KERNEL_MAX_DEPTH + 1];
      chain[0] = rbf;
      for (size_t i = 1; i <= NNFT_KERNEL_MAX_DEPTH; i++) chain[i] = nnft_kernel_scale(2, &chain[i - 1]);
      CHECK(nnft_kernel_depth(&chain[NNFT_KERNEL_MAX_DEPTH - 1]) == NNFT_KERNEL_MAX_DEPTH);
      CHECK(nnft_kernel_depth(&chain[NNFT_KERNEL_MAX_DEPTH]) > NNFT_KERNEL_MAX_DEPTH);
      CHECK_STATUS(nnft_kernel_check(&chain[NNFT_KERNEL_MAX_DEPTH]), NNFT_EDOM);
    }
    CHECK(nnft_kernel_is_stationary(&s2) && !nnft_kernel_is_stationary(&t2) &&
          !nnft_kernel_is_stationary(&ng));

    /* symmetric path = general path; diag = the diagonal */
    nnft_kernel *trees[] = {&t1, &t2, &t3, &t4, &rbf, &ng};
    for (int t = 0; t < 6; t++) {
      nnft_mat S = kmat(trees[t], &X, NULL), G = kmat(trees[t], &X, &X), dg = mat(n, 1);
      CHECK(reldiff(&S, &G) < 1e-14);
      int sym = 1;
      for (size_t j = 0; j < n; j++)
        for (size_t i = 0; i < j; i++) sym &= NNFT_AT(&S, i, j) == NNFT_AT(&S, j, i);
      CHECK(sym);
      CHECK_STATUS(nnft_kernel_diag(trees[t], &X, &dg), NNFT_OK);
      double worst = 0;
      for (size_t i = 0; i < n; i++)
        worst = fmax(worst, fabs(dg.data[i] - NNFT_AT(&S, i, i)) / fmax(1, fabs(dg.data[i])));
      CHECK(worst < 1e-14);
      nnft_mat_free(&S);
      nnft_mat_free(&G);
      nnft_mat_free(&dg);
    }
    nnft_mat *all[] = {&X, &Y, &A, &B, &C, &D, &K1, &K2, &K3, &K4, &E1, &E2, &E3, &E4};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) nnft_mat_free(all[i]);
  }

  /* ---- bit-identical for any number of threads ---- */
#ifdef _OPENMP
  {
    nnft_mat X = randmat(100, 1, 2.0), Y = randmat(20, 1, 2.0);
    nnft_arch a = relu_arch(1, 1.2, 0.3, 1.0, 0.1);
    nnft_kernel ng = nnft_kernel_nngp(&a, 0, 0), fp = nnft_kernel_freeprop(1, 4.0, 1.0),
                rbf = nnft_kernel_rbf(0.5, 1.0), s1 = nnft_kernel_sum(&fp, &ng),
                t = nnft_kernel_prod(&s1, &rbf);
    int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    nnft_mat S1 = kmat(&t, &X, NULL), G1 = kmat(&t, &X, &Y);
    omp_set_num_threads(3);
    nnft_mat S3 = kmat(&t, &X, NULL), G3 = kmat(&t, &X, &Y);
    omp_set_num_threads(saved);
    CHECK(reldiff(&S1, &S3) == 0);
    CHECK(reldiff(&G1, &G3) == 0);
    /* an interrupt in a threaded evaluation */
    omp_set_num_threads(2);
    nnft_interrupt_flag = 1;
    CHECK_STATUS(nnft_kernel_matrix(&t, &X, NULL, &S3), NNFT_EINTR);
    nnft_interrupt_flag = 0;
    omp_set_num_threads(saved);
    nnft_mat *all[] = {&X, &Y, &S1, &G1, &S3, &G3};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) nnft_mat_free(all[i]);
  }
#endif

  /* ---- positive semi-definiteness of stationary kernels on random points ---- */
  {
    nnft_mat X3 = randmat(120, 3, 2.0), X1 = randmat(40, 1, 3.0), X2 = randmat(30, 2, 2.0),
             X3s = randmat(30, 3, 2.0);
    nnft_kernel rbf = nnft_kernel_rbf(0.6, 1.0), m12 = nnft_kernel_matern(0.5, 1.0, 2.0),
                m32 = nnft_kernel_matern(1.5, 0.5, 1.0), m52 = nnft_kernel_matern(2.5, 0.8, 1.0);
    nnft_kernel sum = nnft_kernel_sum(&rbf, &m12), prod = nnft_kernel_prod(&m32, &m52);
    nnft_kernel *ks[] = {&rbf, &m12, &m32, &m52, &sum, &prod};
    for (int t = 0; t < 6; t++) {
      nnft_mat K = kmat(ks[t], &X3, NULL);
      double r = min_eig_ratio(&K);
      CHECK(r >= -1e-10);
      nnft_mat_free(&K);
    }
    nnft_kernel f1 = nnft_kernel_freeprop(1, 5.0, 1.0), f2 = nnft_kernel_freeprop(2, 3.0, 1.0),
                f3 = nnft_kernel_freeprop(3, 3.0, 0.5);
    nnft_mat K = kmat(&f1, &X1, NULL);
    CHECK(min_eig_ratio(&K) >= -1e-10);
    nnft_mat_free(&K);
    K = kmat(&f2, &X2, NULL);
    CHECK(min_eig_ratio(&K) >= -1e-10);
    nnft_mat_free(&K);
    K = kmat(&f3, &X3s, NULL);
    CHECK(min_eig_ratio(&K) >= -1e-10);
    nnft_mat_free(&K);

    /* radial form = matrix values (points at distance r from the origin) */
    double r[5] = {0, 0.3, 1.0, 2.2, 4.0}, kr[5];
    nnft_kernel big = nnft_kernel_sum(&sum, &prod);
    CHECK_STATUS(nnft_kernel_radial(&big, 3, r, 5, kr), NNFT_OK);
    nnft_mat P = mat(5, 3), O = mat(1, 3), Kp = mat(5, 1);
    for (int i = 0; i < 5; i++) NNFT_AT(&P, i, 1) = r[i];
    CHECK_STATUS(nnft_kernel_matrix(&big, &P, &O, &Kp), NNFT_OK);
    for (int i = 0; i < 5; i++) CHECK_NEAR(kr[i], Kp.data[i], 1e-15);
    CHECK_STATUS(nnft_kernel_radial(&f3, 3, r, 5, kr), NNFT_OK);
    CHECK_NEAR(kr[0], (3.0 - 0.5 * atan(3.0 / 0.5)) / (2 * M_PI * M_PI), 1e-13);
    CHECK_STATUS(nnft_kernel_radial(&f3, 2, r, 5, kr), NNFT_EDIM);
    nnft_kernel poly = nnft_kernel_poly(2, 1, 1);
    CHECK_STATUS(nnft_kernel_radial(&poly, 2, r, 5, kr), NNFT_EDOM);
    double neg = -1;
    CHECK_STATUS(nnft_kernel_radial(&rbf, 2, &neg, 1, kr), NNFT_EDOM);
    nnft_mat *all[] = {&X3, &X1, &X2, &X3s, &P, &O, &Kp};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) nnft_mat_free(all[i]);
  }

  /* ---- stationarity of NNGP kernels, input dimensions, length scales ---- */
  {
    nnft_arch a = relu_arch(2, 1, 0, 1, 0);
    nnft_kernel ng = nnft_kernel_nngp(&a, 0, 0), fp = nnft_kernel_freeprop(3, 1, 1),
                rbf = nnft_kernel_rbf(2, 1);
    CHECK(!nnft_kernel_is_stationary(&ng));
    nnft_arch g = a;
    g.layer[0].act = NNFT_ACT_GAUSSNET;
    nnft_kernel gk = nnft_kernel_nngp(&g, 0, 0), gt = nnft_kernel_nngp(&g, 1, 0);
    CHECK(nnft_kernel_is_stationary(&gk) && !nnft_kernel_is_stationary(&gt));
    g.layer[1].sigma_b = 0.5; /* a readout bias: a constant added, no power spectrum */
    gk = nnft_kernel_nngp(&g, 0, 0);
    CHECK(!nnft_kernel_is_stationary(&gk));
    size_t dim;
    CHECK_STATUS(nnft_kernel_input_dim(&ng, &dim), NNFT_OK);
    CHECK(dim == 2);
    nnft_kernel bad = nnft_kernel_sum(&ng, &fp), ok = nnft_kernel_prod(&rbf, &fp);
    CHECK_STATUS(nnft_kernel_input_dim(&bad, &dim), NNFT_EDIM);
    CHECK_STATUS(nnft_kernel_input_dim(&ok, &dim), NNFT_OK);
    CHECK(dim == 3);
    CHECK_NEAR(nnft_kernel_length_scale(&ok), 2.0, 0);
  }

  /* ---- memory estimate ---- */
  {
    nnft_kernel rbf = nnft_kernel_rbf(1, 1);
    size_t b;
    CHECK_STATUS(nnft_kernel_bytes(&rbf, 1000, 500, &b), NNFT_OK);
    CHECK(b >= 1000 * 500 * 8 && b < 1000 * 500 * 8 + (1 << 20));
    CHECK_STATUS(nnft_kernel_bytes(&rbf, 10000000, 10000000, &b), NNFT_OK);
    CHECK(b > nnft_mat_max_bytes()); /* 800 TB: what the binding refuses */
    CHECK_STATUS(nnft_kernel_bytes(&rbf, SIZE_MAX / 2, 3, &b), NNFT_EOVERFLOW);
    nnft_arch a = relu_arch(2, 1, 0, 1, 0);
    nnft_kernel ng = nnft_kernel_nngp(&a, 0, 0);
    size_t b2;
    CHECK_STATUS(nnft_kernel_bytes(&ng, 1000, 500, &b2), NNFT_OK);
    CHECK(b2 >= 1000 * 500 * 8);
  }

  /* ---- bad input ---- */
  {
    nnft_mat X = randmat(5, 2, 1), Y = randmat(4, 3, 1), out = mat(5, 5), out2 = mat(5, 4);
    nnft_kernel rbf = nnft_kernel_rbf(1, 1);
    CHECK_STATUS(nnft_kernel_matrix(&rbf, &X, &Y, &out2), NNFT_EDIM); /* columns differ */
    CHECK_STATUS(nnft_kernel_matrix(&rbf, &X, NULL, &out2), NNFT_EDIM); /* out's shape */
    nnft_kernel fp = nnft_kernel_freeprop(3, 1, 1);
    CHECK_STATUS(nnft_kernel_matrix(&fp, &X, NULL, &out), NNFT_EDIM); /* d = 3 vs 2 columns */
    NNFT_AT(&X, 2, 1) = NAN;
    CHECK_STATUS(nnft_kernel_matrix(&rbf, &X, NULL, &out), NNFT_ENONFINITE);
    nnft_mat dg = mat(5, 1);
    CHECK_STATUS(nnft_kernel_diag(&rbf, &X, &dg), NNFT_ENONFINITE);
    NNFT_AT(&X, 2, 1) = 0.5;
    CHECK_STATUS(nnft_kernel_matrix(&rbf, &X, NULL, &X), NNFT_EDIM);
    const char *why = NULL;
    nnft_kernel bads[] = {nnft_kernel_rbf(0, 1),           nnft_kernel_rbf(1, -1),
                          nnft_kernel_rbf(NAN, 1),         nnft_kernel_matern(1.0, 1, 1),
                          nnft_kernel_matern(0.5, -2, 1),  nnft_kernel_poly(1.5, 1, 1),
                          nnft_kernel_poly(2, -1, 1),      nnft_kernel_poly(100, 0, 1),
                          nnft_kernel_freeprop(4, 1, 1),   nnft_kernel_freeprop(1, -1, 1),
                          nnft_kernel_freeprop(1, 1, 0)};
    for (size_t i = 0; i < sizeof bads / sizeof *bads; i++) {
      CHECK_STATUS(nnft_kernel_check_why(&bads[i], &why), NNFT_EDOM);
      CHECK(why && *why);
      CHECK_STATUS(nnft_kernel_matrix(&bads[i], &X, NULL, &out), NNFT_EDOM);
    }
    nnft_kernel inf_scale = nnft_kernel_scale(INFINITY, &rbf), orphan = nnft_kernel_sum(&rbf, NULL);
    CHECK_STATUS(nnft_kernel_check(&inf_scale), NNFT_EDOM);
    CHECK_STATUS(nnft_kernel_check(&orphan), NNFT_EDOM);
    nnft_arch a = relu_arch(2, 1, 0, 1, 0);
    a.layer[0].mean_w = 0.5; /* nnft_nngp needs zero means */
    nnft_kernel ng = nnft_kernel_nngp(&a, 0, 0);
    CHECK_STATUS(nnft_kernel_check_why(&ng, &why), NNFT_EDOM);
    CHECK(why && *why);
    /* a chain deeper than the maximum */
    static nnft_kernel chain[NNFT_KERNEL_MAX_DEPTH + 2];
    chain[0] = rbf;
    for (int i = 1; i < NNFT_KERNEL_MAX_DEPTH + 2; i++)
      chain[i] = nnft_kernel_scale(1.0, &chain[i - 1]);
    CHECK_STATUS(nnft_kernel_check(&chain[NNFT_KERNEL_MAX_DEPTH - 1]), NNFT_OK);
    CHECK_STATUS(nnft_kernel_check(&chain[NNFT_KERNEL_MAX_DEPTH + 1]), NNFT_EDOM);
    /* interrupts */
    nnft_interrupt_flag = 1;
    CHECK_STATUS(nnft_kernel_matrix(&rbf, &X, NULL, &out), NNFT_EINTR);
    nnft_interrupt_flag = 0;
    CHECK_STATUS(nnft_kernel_matrix(&rbf, &X, NULL, &out), NNFT_OK);
    /* empty inputs */
    nnft_mat E = mat(0, 2), Eo = mat(0, 0), Eo2 = mat(0, 5);
    CHECK_STATUS(nnft_kernel_matrix(&rbf, &E, NULL, &Eo), NNFT_OK);
    CHECK_STATUS(nnft_kernel_matrix(&rbf, &E, &X, &Eo2), NNFT_OK);
    nnft_mat *all[] = {&X, &Y, &out, &out2, &dg, &E, &Eo, &Eo2};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) nnft_mat_free(all[i]);
  }

  /* ---- allocation failures: every allocation of a tree with NNGP, propagator, temporaries ---- */
  {
    nnft_mat X = randmat(70, 1, 1), Y = randmat(3, 1, 1), out = mat(70, 3), outs = mat(70, 70),
             dg = mat(70, 1);
    nnft_arch a = relu_arch(1, 1, 0.2, 1, 0);
    nnft_kernel ng = nnft_kernel_nngp(&a, 0, 0), fp = nnft_kernel_freeprop(1, 2.0, 1.0),
                rbf = nnft_kernel_rbf(1, 1), poly = nnft_kernel_poly(1, 1, 1);
    nnft_kernel s1 = nnft_kernel_sum(&rbf, &fp), p1 = nnft_kernel_prod(&s1, &ng),
                p2 = nnft_kernel_prod(&poly, &rbf), t = nnft_kernel_sum(&p1, &p2);
    int ok = 0;
    for (long k = 0; k < 200 && !ok; k++) {
      test_alloc_fail_after(k);
      nnft_status s = nnft_kernel_matrix(&t, &X, &Y, &out);
      test_alloc_fail_after(-1);
      if (s == NNFT_OK) ok = 1;
      else CHECK_STATUS(s, NNFT_ENOMEM);
    }
    CHECK(ok);
    for (int which = 0; which < 3; which++) {
      ok = 0;
      for (long k = 0; k < 200 && !ok; k++) {
        test_alloc_fail_after(k);
        nnft_status s;
        if (which == 0) s = nnft_kernel_matrix(&p2, &X, NULL, &outs);
        else if (which == 1) s = nnft_kernel_diag(&t, &X, &dg);
        else {
          double r[3] = {0, 1, 2}, v[3];
          s = nnft_kernel_radial(&s1, 1, r, 3, v);
        }
        test_alloc_fail_after(-1);
        if (s == NNFT_OK) ok = 1;
        else CHECK_STATUS(s, NNFT_ENOMEM);
      }
      CHECK(ok);
    }
    nnft_mat *all[] = {&X, &Y, &out, &outs, &dg};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) nnft_mat_free(all[i]);
  }

  return test_report("test_kernel");
}
