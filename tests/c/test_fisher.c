/* Tests of nnft_fisher (physics.md §7.1, §7.3, §7.4): the Gram form built from per-layer signals
 * against J Jᵀ from nnft_net_jacobian; J v against central finite differences of the forward pass;
 * dense vs Gram vs diagonal vs block forms; eigenvectors mapped back through the Gram form satisfy
 * I v = λ v; mvp; rank; distance; Gaussian KL; GP hyperparameter Fisher against finite differences
 * of the expected log-likelihood; the infinite-width random-feature check (readout Fisher =
 * eig(K_emp)/(n σ²) exactly, and close to the closed-form ReLU NNGP spectrum within the spread
 * over seeds); the generalised cos-net readout Fisher λ(b) ∝ 1/(b² + m²); bad input; allocation
 * failures. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nnft_fisher.h"
#include "nnft_linalg.h"
#include "nnft_net.h"
#include "nnft_rng.h"
#include "test_util.h"

#include "test_fixtures.h"




static nnft_net make_net(const nnft_arch *a, uint64_t seed) {
  nnft_net net;
  nnft_rng r;
  test_alloc_fail_after(-1);
  if (nnft_net_setup(a, &net)) {
    fprintf(stderr, "bad test architecture\n");
    exit(2);
  }
  nnft_rng_init(&r, seed);
  nnft_net_init(&net, &r);
  return net;
}

static double max_abs_diff(const double *a, const double *b, size_t n) {
  double m = 0.0;
  for (size_t i = 0; i < n; i++) {
    double d = fabs(a[i] - b[i]);
    if (!(d <= m)) m = d;
  }
  return m;
}

static double max_abs(const double *a, size_t n) {
  double m = 0.0;
  for (size_t i = 0; i < n; i++)
    if (fabs(a[i]) > m) m = fabs(a[i]);
  return m;
}

/* G_ref = J Jᵀ with J from nnft_net_jacobian; compare with nnft_fisher_gram of every form. */
static void check_against_jacobian(const nnft_net *net, const nnft_mat *X, double sigma,
                                   double eps) {
  size_t n = X->rows, P = net->ntrain;
  nnft_mat J = mat(n, P), G = mat(n, n), I = mat(P, P);
  CHECK_STATUS(nnft_net_jacobian(net, X, &J, NULL), NNFT_OK);
  nnft_mat_syrk(&J, 0, &G);
  nnft_mat_syrk(&J, 1, &I);
  double sc = 1.0 / ((double)n * sigma * sigma);
  for (size_t j = 0; j < P; j++) {
    for (size_t i = 0; i < P; i++) NNFT_AT(&I, i, j) *= sc;
    NNFT_AT(&I, j, j) += eps;
  }
  double gmax = max_abs(G.data, n * n), imax = max_abs(I.data, P * P);
  nnft_fisher F[4];
  for (int f = 0; f < 4; f++) {
    CHECK_STATUS(nnft_fisher_compute(net, X, sigma, eps, (nnft_fisher_form)f, 0, &F[f]), NNFT_OK);
    nnft_mat g = mat(n, n);
    CHECK_STATUS(nnft_fisher_gram(&F[f], &g), NNFT_OK);
    CHECK(max_abs_diff(g.data, G.data, n * n) <= 1e-12 * gmax);
    /* diag form = diag of the dense matrix, in every form */
    double dd = 0.0;
    for (size_t c = 0; c < P; c++) {
      double d = fabs(F[f].diag[c] - NNFT_AT(&I, c, c));
      if (d > dd) dd = d;
    }
    CHECK(dd <= 1e-12 * imax);
    nnft_mat_free(&g);
  }
  /* dense form equals the reference matrix */
  CHECK(max_abs_diff(F[NNFT_FISHER_DENSE].dense.data, I.data, P * P) <= 1e-12 * imax);
  /* block form: the layer blocks of the reference */
  nnft_fisher *B = &F[NNFT_FISHER_BLOCK];
  size_t nb = B->J ? 1 : B->nl;
  for (size_t b = 0; b < nb; b++) {
    size_t o = B->J ? 0 : B->L[b].toff, m = B->block[b].rows;
    double d = 0.0;
    for (size_t j = 0; j < m; j++)
      for (size_t i = 0; i < m; i++) {
        double e = fabs(NNFT_AT(&B->block[b], i, j) - NNFT_AT(&I, o + i, o + j));
        if (e > d) d = e;
      }
    CHECK(d <= 1e-12 * imax);
  }
  /* mvp of gram and dense agree with I v; block and diag with their approximations */
  double *v = malloc(P * sizeof(double)), *w1 = malloc(P * sizeof(double)),
         *w2 = malloc(P * sizeof(double)), *wr = malloc(P * sizeof(double));
  for (size_t c = 0; c < P; c++) v[c] = urand();
  nnft_mat vm = {P, 1, P, v, 0}, wm = {P, 1, P, wr, 0};
  nnft_mat_gemm(1.0, &I, 0, &vm, 0, 0.0, &wm);
  double wmax = max_abs(wr, P);
  CHECK_STATUS(nnft_fisher_mvp(&F[NNFT_FISHER_GRAM], v, w1), NNFT_OK);
  CHECK_STATUS(nnft_fisher_mvp(&F[NNFT_FISHER_DENSE], v, w2), NNFT_OK);
  CHECK(max_abs_diff(w1, wr, P) <= 1e-11 * wmax);
  CHECK(max_abs_diff(w2, wr, P) <= 1e-11 * wmax);
  CHECK_STATUS(nnft_fisher_mvp(&F[NNFT_FISHER_DIAG], v, w1), NNFT_OK);
  for (size_t c = 0; c < P; c++) CHECK_NEAR(w1[c], NNFT_AT(&I, c, c) * v[c], 1e-12 * wmax);
  /* distance ½ vᵀ I v */
  double dist = 0.0, ref = 0.0;
  for (size_t c = 0; c < P; c++) ref += 0.5 * v[c] * wr[c];
  CHECK_STATUS(nnft_fisher_distance(&F[NNFT_FISHER_GRAM], v, &dist), NNFT_OK);
  CHECK_NEAR(dist, ref, 1e-11 * fabs(ref));
  /* spectra: non-zero spectrum of dense = Gram spectrum; vectors from Gram satisfy I v = λ v */
  size_t r = 0;
  CHECK_STATUS(nnft_fisher_rank(&F[NNFT_FISHER_GRAM], &r), NNFT_OK);
  size_t rd = 0;
  CHECK_STATUS(nnft_fisher_rank(&F[NNFT_FISHER_DENSE], &rd), NNFT_OK);
  CHECK(r == rd);
  CHECK(r <= (n < P ? n : P));
  size_t k = n < P ? n : P, found = 0, fd = 0;
  double *lg = malloc(k * sizeof(double)), *ld = malloc(k * sizeof(double));
  nnft_mat Vg = mat(P, k), Vd = mat(P, k);
  CHECK_STATUS(nnft_fisher_eigen(&F[NNFT_FISHER_GRAM], k, lg, &Vg, &found), NNFT_OK);
  CHECK(found == r);
  CHECK_STATUS(nnft_fisher_eigen(&F[NNFT_FISHER_DENSE], k, ld, &Vd, &fd), NNFT_OK);
  CHECK(fd == k);
  for (size_t i = 0; i < found; i++) CHECK_NEAR(lg[i], ld[i], 1e-10 * ld[0]);
  for (size_t i = 0; i < found; i++) {
    double *col = Vg.data + i * Vg.ld, nrm = 0.0;
    for (size_t c = 0; c < P; c++) nrm += col[c] * col[c];
    CHECK_NEAR(nrm, 1.0, 1e-9);
    CHECK_STATUS(nnft_fisher_mvp(&F[NNFT_FISHER_DENSE], col, w1), NNFT_OK);
    double e = 0.0;
    for (size_t c = 0; c < P; c++) e = fmax(e, fabs(w1[c] - lg[i] * col[c]));
    CHECK(e <= 1e-9 * lg[0]);
  }
  /* diag-form spectrum = sorted diagonal */
  CHECK_STATUS(nnft_fisher_eigen(&F[NNFT_FISHER_DIAG], 3, lg, NULL, &found), NNFT_OK);
  double dmax = 0;
  for (size_t c = 0; c < P; c++) dmax = fmax(dmax, F[NNFT_FISHER_DIAG].diag[c]);
  CHECK(found == 3 && lg[0] == dmax && lg[1] <= lg[0] && lg[2] <= lg[1]);
  /* block-form eigenvectors: B v = λ v */
  CHECK_STATUS(nnft_fisher_eigen(B, 2, lg, &Vd, &found), NNFT_OK);
  for (size_t i = 0; i < found; i++) {
    double *col = Vd.data + i * Vd.ld;
    CHECK_STATUS(nnft_fisher_mvp(B, col, w1), NNFT_OK);
    double e = 0.0;
    for (size_t c = 0; c < P; c++) e = fmax(e, fabs(w1[c] - lg[i] * col[c]));
    CHECK(e <= 1e-9 * lg[0]);
  }
  free(v);
  free(w1);
  free(w2);
  free(wr);
  free(lg);
  free(ld);
  nnft_mat_free(&Vg);
  nnft_mat_free(&Vd);
  for (int f = 0; f < 4; f++) nnft_fisher_free(&F[f]);
  nnft_mat_free(&J);
  nnft_mat_free(&G);
  nnft_mat_free(&I);
}

/* J v from the signals against a central finite difference of the forward pass. */
static void check_jv_fd(nnft_net *net, const nnft_mat *X) {
  size_t n = X->rows, P = net->ntrain;
  nnft_fisher F;
  CHECK_STATUS(nnft_fisher_compute(net, X, 1.0, 0.0, NNFT_FISHER_DIAG, 0, &F), NNFT_OK);
  double *v = malloc(P * sizeof(double)), *t0 = malloc(P * sizeof(double)),
         *t = malloc(P * sizeof(double)), *jv = malloc(n * sizeof(double));
  for (size_t c = 0; c < P; c++) v[c] = urand();
  CHECK_STATUS(nnft_fisher_jv(&F, v, jv), NNFT_OK);
  nnft_mat fp = mat(n, 1), fm = mat(n, 1);
  double h = 1e-6;
  nnft_net_get_trainable(net, t0);
  for (size_t c = 0; c < P; c++) t[c] = t0[c] + h * v[c];
  nnft_net_set_trainable(net, t);
  nnft_net_forward(net, X, &fp);
  for (size_t c = 0; c < P; c++) t[c] = t0[c] - h * v[c];
  nnft_net_set_trainable(net, t);
  nnft_net_forward(net, X, &fm);
  nnft_net_set_trainable(net, t0);
  double scale = max_abs(jv, n) + 1e-300;
  for (size_t a = 0; a < n; a++) {
    double fd = (fp.data[a] - fm.data[a]) / (2 * h);
    CHECK(fabs(fd - jv[a]) <= 1e-6 * scale);
  }
  free(v);
  free(t0);
  free(t);
  free(jv);
  nnft_mat_free(&fp);
  nnft_mat_free(&fm);
  nnft_fisher_free(&F);
}

static void test_forms(void) {
  size_t w[2] = {5, 4};
  nnft_mat X = randmat(7, 3, 1.0), Xbig = randmat(300, 3, 1.0); /* 300 rows: two signal blocks */
  for (int param = 0; param < 2; param++) {
    nnft_arch a = mlp(3, w, 2, NNFT_ACT_TANH, (nnft_param)param);
    a.layer[1].act = NNFT_ACT_RELU;
    nnft_net net = make_net(&a, 11 + param);
    check_against_jacobian(&net, &X, 0.7, 0.0);
    check_against_jacobian(&net, &X, 1.0, 0.05);
    check_jv_fd(&net, &X);
    nnft_net_free(&net);
    a.layer[0].frozen = 1; /* frozen first layer, and one frozen in the middle */
    net = make_net(&a, 13);
    check_against_jacobian(&net, &X, 1.0, 0.0);
    check_jv_fd(&net, &X);
    nnft_net_free(&net);
    a.layer[0].frozen = 0;
    a.layer[1].frozen = 1;
    a.layer[2].has_bias = 0;
    net = make_net(&a, 17);
    check_against_jacobian(&net, &X, 1.0, 0.0);
    check_against_jacobian(&net, &Xbig, 1.0, 0.0); /* P < n: full rank P */
    check_jv_fd(&net, &X);
    nnft_net_free(&net);
  }
  /* generalised cos-net: readout only (signals with the amplitude) and trainable frequencies
   * (explicit Jacobian fallback) */
  size_t wc[1] = {6};
  nnft_arch c = mlp(2, wc, 1, NNFT_ACT_COS, NNFT_PARAM_STANDARD);
  c.is_cosnet = 1;
  c.layer[1].has_bias = 0;
  c.freq = NNFT_FREQ_BALL;
  c.radius = 2.0;
  c.mass = 0.8;
  c.amplitude = 1;
  nnft_mat X2 = randmat(5, 2, 2.0);
  nnft_net net = make_net(&c, 5);
  check_against_jacobian(&net, &X2, 1.0, 0.0);
  check_jv_fd(&net, &X2);
  nnft_net_free(&net);
  c.layer[0].frozen = 1;
  net = make_net(&c, 6);
  check_against_jacobian(&net, &X2, 0.5, 0.0);
  check_jv_fd(&net, &X2);
  nnft_net_free(&net);
  nnft_mat_free(&X);
  nnft_mat_free(&Xbig);
  nnft_mat_free(&X2);
}

/* ---- Gaussian KL ---- */
static void test_kl(void) {
  nnft_mat m1 = mat(2, 1), m2 = mat(2, 1), S1 = mat(2, 2), S2 = mat(2, 2);
  /* diagonal: closed form per coordinate */
  m1.data[0] = 0.3, m1.data[1] = -1.0, m2.data[0] = 1.1, m2.data[1] = 0.5;
  NNFT_AT(&S1, 0, 0) = 2.0, NNFT_AT(&S1, 1, 1) = 0.5;
  NNFT_AT(&S2, 0, 0) = 1.5, NNFT_AT(&S2, 1, 1) = 3.0;
  double kl = 0, ref = 0;
  double v1[2] = {2.0, 0.5}, v2[2] = {1.5, 3.0}, d[2] = {0.8, 1.5};
  for (int i = 0; i < 2; i++)
    ref += 0.5 * (v1[i] / v2[i] + d[i] * d[i] / v2[i] - 1 + log(v2[i] / v1[i]));
  CHECK_STATUS(nnft_fisher_kl(&m1, &S1, &m2, &S2, &kl), NNFT_OK);
  CHECK_NEAR(kl, ref, 1e-13);
  /* KL(p‖p) = 0; correlated case against a rotated diagonal one (KL is invariant) */
  CHECK_STATUS(nnft_fisher_kl(&m1, &S1, &m1, &S1, &kl), NNFT_OK);
  CHECK_NEAR(kl, 0.0, 1e-14);
  double c = cos(0.4), s = sin(0.4);
  nnft_mat R1 = mat(2, 2), R2 = mat(2, 2), n1 = mat(2, 1), n2 = mat(2, 1);
  double Rm[2][2] = {{c, -s}, {s, c}};
  for (int i = 0; i < 2; i++) {
    n1.data[i] = Rm[i][0] * m1.data[0] + Rm[i][1] * m1.data[1];
    n2.data[i] = Rm[i][0] * m2.data[0] + Rm[i][1] * m2.data[1];
    for (int j = 0; j < 2; j++) {
      NNFT_AT(&R1, i, j) = Rm[i][0] * Rm[j][0] * v1[0] + Rm[i][1] * Rm[j][1] * v1[1];
      NNFT_AT(&R2, i, j) = Rm[i][0] * Rm[j][0] * v2[0] + Rm[i][1] * Rm[j][1] * v2[1];
    }
  }
  CHECK_STATUS(nnft_fisher_kl(&n1, &R1, &n2, &R2, &kl), NNFT_OK);
  CHECK_NEAR(kl, ref, 1e-12);
  /* not PD / wrong shape */
  NNFT_AT(&S2, 1, 1) = -1.0;
  CHECK_STATUS(nnft_fisher_kl(&m1, &S1, &m2, &S2, &kl), NNFT_ENOTPD);
  CHECK_STATUS(nnft_fisher_kl(&m1, &S1, &S1, &S1, &kl), NNFT_EDIM);
  for (long k = 0;; k++) {
    NNFT_AT(&S2, 1, 1) = 3.0;
    test_alloc_fail_after(k);
    nnft_status st = nnft_fisher_kl(&n1, &R1, &n2, &R2, &kl);
    test_alloc_fail_after(-1);
    if (st == NNFT_OK) break;
    CHECK_STATUS(st, NNFT_ENOMEM);
  }
  nnft_mat_free(&m1), nnft_mat_free(&m2), nnft_mat_free(&S1), nnft_mat_free(&S2);
  nnft_mat_free(&R1), nnft_mat_free(&R2), nnft_mat_free(&n1), nnft_mat_free(&n2);
}

/* ---- GP Fisher: I_ij = −∂_i∂_j E_{y~N(0,C(η0))}[log N(y; 0, C(η))] at η0 ---- */
static void gp_cov(const double *x, size_t n, double amp, double ell, nnft_mat *C) {
  for (size_t j = 0; j < n; j++)
    for (size_t i = 0; i < n; i++) {
      double r = x[i] - x[j];
      NNFT_AT(C, i, j) = amp * exp(-r * r / (2 * ell * ell)) + (i == j ? 0.1 : 0.0);
    }
}

static double expected_ll(const double *x, size_t n, double amp, double ell, const nnft_mat *C0) {
  nnft_mat C = mat(n, n), X = mat(n, n);
  gp_cov(x, n, amp, ell, &C);
  nnft_linalg_solve_spd(&C, C0, &X, NULL);
  double tr = 0, ld = 0;
  for (size_t i = 0; i < n; i++) tr += NNFT_AT(&X, i, i);
  nnft_linalg_logdet_spd(&C, &ld, NULL);
  nnft_mat_free(&C);
  nnft_mat_free(&X);
  return -0.5 * (tr + ld);
}

static void test_gp(void) {
  size_t n = 6;
  double x[6] = {-1.0, -0.4, 0.1, 0.5, 1.2, 2.0}, amp = 1.3, ell = 0.7;
  nnft_mat C = mat(n, n), d1 = mat(n, n), d2 = mat(n, n), I = mat(2, 2);
  gp_cov(x, n, amp, ell, &C);
  for (size_t j = 0; j < n; j++)
    for (size_t i = 0; i < n; i++) {
      double r = x[i] - x[j], e = exp(-r * r / (2 * ell * ell));
      NNFT_AT(&d1, i, j) = e;
      NNFT_AT(&d2, i, j) = amp * e * r * r / (ell * ell * ell);
    }
  const nnft_mat *dC[2] = {&d1, &d2};
  CHECK_STATUS(nnft_fisher_gp(&C, dC, 2, &I), NNFT_OK);
  double h = 1e-3, p0[2] = {amp, ell};
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 2; j++) {
      double acc = 0;
      for (int si = -1; si <= 1; si += 2)
        for (int sj = -1; sj <= 1; sj += 2) {
          double p[2] = {p0[0], p0[1]};
          p[i] += si * h;
          p[j] += sj * h;
          acc += si * sj * expected_ll(x, n, p[0], p[1], &C);
        }
      double hess = acc / (4 * h * h);
      CHECK_NEAR(NNFT_AT(&I, i, j), -hess, 1e-5 * (1 + fabs(hess)));
    }
  CHECK(NNFT_AT(&I, 0, 1) == NNFT_AT(&I, 1, 0));
  for (long k = 0;; k++) {
    test_alloc_fail_after(k);
    nnft_status st = nnft_fisher_gp(&C, dC, 2, &I);
    test_alloc_fail_after(-1);
    if (st == NNFT_OK) break;
    CHECK_STATUS(st, NNFT_ENOMEM);
  }
  nnft_mat_free(&C), nnft_mat_free(&d1), nnft_mat_free(&d2), nnft_mat_free(&I);
}

/* ---- §7.3: wide random-feature readout ---- */
static double relu_kernel(const double *x, const double *y, size_t d, double sw) {
  double q1 = 0, q2 = 0, c = 0;
  for (size_t i = 0; i < d; i++) q1 += x[i] * x[i], q2 += y[i] * y[i], c += x[i] * y[i];
  q1 *= sw * sw / d, q2 *= sw * sw / d, c *= sw * sw / d;
  double th = atan2(sqrt(fmax(q1 * q2 - c * c, 0.0)), c);
  return sw * sw * sqrt(q1 * q2) / (2 * M_PI) * (sin(th) + (M_PI - th) * cos(th));
}

static void test_infinite_width(void) {
  size_t n = 12, d = 2, N = 2000, nseeds = 8, ktop = 3;
  double sw = 1.4, sigma = 0.5;
  nnft_mat X = randmat(n, d, 1.5);
  /* exact NNGP Mercer spectrum on the empirical measure: eig(K)/n */
  nnft_mat K = mat(n, n), w = mat(n, 1);
  for (size_t j = 0; j < n; j++)
    for (size_t i = 0; i < n; i++) {
      double xi[2] = {NNFT_AT(&X, i, 0), NNFT_AT(&X, i, 1)}, xj[2] = {NNFT_AT(&X, j, 0), NNFT_AT(&X, j, 1)};
      NNFT_AT(&K, i, j) = relu_kernel(xi, xj, d, sw);
    }
  nnft_eigh_opts eo = nnft_eigh_defaults();
  eo.vectors = 0;
  size_t m;
  nnft_linalg_eigh(&K, &eo, &w, NULL, &m, NULL);
  double mean[3] = {0}, sq[3] = {0};
  size_t wd[1] = {N};
  nnft_arch a = mlp(d, wd, 1, NNFT_ACT_RELU, NNFT_PARAM_NTK);
  for (size_t l = 0; l < 2; l++) a.layer[l].sigma_w = sw, a.layer[l].has_bias = 0;
  a.layer[0].frozen = 1;
  for (size_t s = 0; s < nseeds; s++) {
    nnft_net net = make_net(&a, 100 + s);
    nnft_fisher F;
    CHECK_STATUS(nnft_fisher_compute(&net, &X, sigma, 0.0, NNFT_FISHER_GRAM, 0, &F), NNFT_OK);
    /* K_emp = σ_w² h hᵀ / N from the first layer's features */
    nnft_mat H = mat(n, N), Ke = mat(n, n), we = mat(n, 1);
    nnft_mat Xh = X;
    nnft_mat W1 = {N, d, N, net.theta + net.w_off[0], 0};
    nnft_mat_gemm(sw / sqrt((double)d), &Xh, 0, &W1, 1, 0.0, &H);
    for (size_t e = 0; e < n * N; e++) H.data[e] = H.data[e] > 0 ? H.data[e] : 0.0;
    nnft_mat_syrk(&H, 0, &Ke);
    for (size_t e = 0; e < n * n; e++) Ke.data[e] *= sw * sw / (double)N;
    nnft_linalg_eigh(&Ke, &eo, &we, NULL, &m, NULL);
    double lam[12];
    size_t found;
    CHECK_STATUS(nnft_fisher_eigen(&F, n, lam, NULL, &found), NNFT_OK);
    CHECK(found == n);
    for (size_t i = 0; i < found; i++)
      CHECK_NEAR(lam[i], we.data[i] / (n * sigma * sigma), 1e-11 * lam[0]);
    for (size_t i = 0; i < ktop; i++) {
      double kap = lam[i] * sigma * sigma; /* κ = eig(K_emp)/n */
      mean[i] += kap / nseeds;
      sq[i] += kap * kap / nseeds;
    }
    nnft_mat_free(&H), nnft_mat_free(&Ke), nnft_mat_free(&we);
    nnft_fisher_free(&F);
    nnft_net_free(&net);
  }
  for (size_t i = 0; i < ktop; i++) {
    double exact = w.data[i] / n, sd = sqrt(fmax(sq[i] - mean[i] * mean[i], 0.0) * nseeds / (nseeds - 1));
    double se = sd / sqrt((double)nseeds);
    printf("  NNGP mode %zu: exact %.6g, finite-N mean %.6g ± %.2g (sd over seeds %.2g)\n", i + 1,
           exact, mean[i], se, sd);
    CHECK(fabs(mean[i] - exact) <= 4 * se + 1e-3 * exact);
    CHECK(sd <= 0.1 * exact); /* O(1/sqrt(N)) spread */
  }
  nnft_mat_free(&X), nnft_mat_free(&K), nnft_mat_free(&w);
}

/* ---- §7.4: generalised cos-net readout Fisher ---- */
static int cmp_desc(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? 1 : x > y ? -1 : 0;
}

static void test_cosnet(void) {
  size_t N = 24, n = 2000;
  double R = 5.0, mass = 0.7, sa = 1.0, sigma = 1.0, L = 250.0;
  size_t wd[1] = {N};
  nnft_arch a = mlp(1, wd, 1, NNFT_ACT_COS, NNFT_PARAM_NTK);
  a.is_cosnet = 1;
  a.layer[1].has_bias = 0;
  a.layer[1].sigma_w = sa;
  a.freq = NNFT_FREQ_BALL;
  a.radius = R;
  a.mass = mass;
  a.amplitude = 1;
  a.layer[0].frozen = 1;
  nnft_net net = make_net(&a, 3);
  /* well-separated frequencies b_i = (i + 1) R/(N + 1) */
  double *lam_th = malloc(N * sizeof(double));
  for (size_t i = 0; i < N; i++) {
    double b = (double)(i + 1) * R / (double)(N + 1);
    net.theta[net.w_off[0] + i] = b;
    /* λ(b) = vol(B_R) / (N σ² (2π) (b² + m²)), T = 1 (per-example Fisher), vol(B_R) = 2R */
    lam_th[i] = 2 * R / ((double)N * sigma * sigma * 2 * M_PI * (b * b + mass * mass));
  }
  qsort(lam_th, N, sizeof(double), cmp_desc);
  nnft_mat X = mat(n, 1);
  for (size_t a2 = 0; a2 < n; a2++) X.data[a2] = -L + 2 * L * ((double)a2 + 0.5) / (double)n;
  nnft_fisher F;
  CHECK_STATUS(nnft_fisher_compute(&net, &X, sigma, 0.0, NNFT_FISHER_GRAM, 0, &F), NNFT_OK);
  double *lam = malloc(N * sizeof(double)), *rel = malloc(N * sizeof(double));
  size_t found;
  CHECK_STATUS(nnft_fisher_eigen(&F, N, lam, NULL, &found), NNFT_OK);
  CHECK(found == N);
  for (size_t i = 0; i < N; i++) rel[i] = fabs(lam[i] / lam_th[i] - 1);
  qsort(rel, N, sizeof(double), cmp_desc);
  double med = rel[N / 2], worst = rel[0];
  printf("  cos-net readout Fisher vs λ(b): median rel. error %.3g, max %.3g (N = %zu, box %g)\n",
         med, worst, N, 2 * L);
  CHECK(med <= 0.02);
  CHECK(worst <= 0.1);
  free(lam), free(rel), free(lam_th);
  nnft_fisher_free(&F);
  nnft_net_free(&net);
  nnft_mat_free(&X);
}

/* ---- bad input and allocation failures ---- */
static void test_errors(void) {
  size_t w[1] = {4};
  nnft_arch a = mlp(2, w, 1, NNFT_ACT_TANH, NNFT_PARAM_STANDARD);
  nnft_net net = make_net(&a, 1);
  nnft_mat X = randmat(5, 2, 1.0), Xbad = randmat(5, 3, 1.0);
  nnft_fisher F;
  CHECK_STATUS(nnft_fisher_compute(&net, &Xbad, 1.0, 0.0, NNFT_FISHER_GRAM, 0, &F), NNFT_EDIM);
  CHECK_STATUS(nnft_fisher_compute(&net, &X, 1.0, -1e-3, NNFT_FISHER_GRAM, 0, &F), NNFT_EDOM);
  CHECK_STATUS(nnft_fisher_compute(&net, &X, 0.0, 0.0, NNFT_FISHER_GRAM, 0, &F), NNFT_EDOM);
  CHECK_STATUS(nnft_fisher_compute(&net, &X, NAN, 0.0, NNFT_FISHER_GRAM, 0, &F), NNFT_EDOM);
  CHECK_STATUS(nnft_fisher_compute(&net, &X, 1.0, 0.0, (nnft_fisher_form)7, 0, &F), NNFT_EDOM);
  CHECK_STATUS(nnft_fisher_compute(&net, &X, 1.0, 0.0, NNFT_FISHER_DENSE, 64, &F), NNFT_ENOMEM);
  CHECK(nnft_fisher_form_lookup("dense") == NNFT_FISHER_DENSE);
  CHECK(nnft_fisher_form_lookup("sparse") == -1);
  X.data[3] = NAN;
  CHECK_STATUS(nnft_fisher_compute(&net, &X, 1.0, 0.0, NNFT_FISHER_GRAM, 0, &F), NNFT_ENONFINITE);
  X.data[3] = 0.2;
  nnft_mat X0 = {0, 2, 1, X.data, 0};
  CHECK_STATUS(nnft_fisher_compute(&net, &X0, 1.0, 0.0, NNFT_FISHER_GRAM, 0, &F), NNFT_EDOM);
  CHECK_STATUS(nnft_fisher_compute(&net, &X, 1.0, 0.0, NNFT_FISHER_GRAM, 0, &F), NNFT_OK);
  double vals[6];
  size_t found;
  CHECK_STATUS(nnft_fisher_eigen(&F, 6, vals, NULL, &found), NNFT_EDOM); /* k > n in Gram form */
  nnft_fisher_free(&F);
  nnft_fisher_free(&F); /* idempotent */
  nnft_net_free(&net);
  a.layer[0].frozen = a.layer[1].frozen = 1; /* nothing trainable */
  net = make_net(&a, 2);
  CHECK_STATUS(nnft_fisher_compute(&net, &X, 1.0, 0.0, NNFT_FISHER_GRAM, 0, &F), NNFT_EDOM);
  nnft_net_free(&net);
  /* allocation failures: every path of every form and operation */
  a.layer[0].frozen = a.layer[1].frozen = 0;
  net = make_net(&a, 3);
  size_t P = net.ntrain;
  double *v = malloc(P * sizeof(double)), *o = malloc(P * sizeof(double));
  for (size_t c = 0; c < P; c++) v[c] = urand();
  for (int f = 0; f < 4; f++) {
    int reached = 0;
    for (long k = 0; k < 1000; k++) {
      test_alloc_fail_after(k);
      nnft_status st = nnft_fisher_compute(&net, &X, 1.0, 0.1, (nnft_fisher_form)f, 0, &F);
      nnft_mat V = {0, 0, 1, NULL, 0};
      if (st == NNFT_OK) {
        test_alloc_fail_after(-1);
        nnft_mat_alloc(P, 3, &V);
        test_alloc_fail_after(k);
        size_t r;
        st = nnft_fisher_eigen(&F, 3, vals, &V, &found);
        if (!st) st = nnft_fisher_mvp(&F, v, o);
        if (!st) st = nnft_fisher_rank(&F, &r);
        if (!st) st = nnft_fisher_jtu(&F, v, o);
        if (!st) st = nnft_fisher_distance(&F, v, vals);
        test_alloc_fail_after(-1);
        nnft_mat_free(&V);
        nnft_fisher_free(&F);
        if (st == NNFT_OK) {
          reached = 1;
          break;
        }
      }
      test_alloc_fail_after(-1);
      CHECK_STATUS(st, NNFT_ENOMEM);
    }
    CHECK(reached);
  }
  free(v), free(o);
  nnft_net_free(&net);
  nnft_mat_free(&X), nnft_mat_free(&Xbad);
}

int main(void) {
  test_forms();
  test_kl();
  test_gp();
  test_infinite_width();
  test_cosnet();
  test_errors();
  return test_report("test_fisher");
}
