/* Tests of nnft_shell (physics.md §7.2): classification (strict / non-strict); projector
 * identities P_>² = P_>, P_<² = P_<, P_< + P_> = 1 with a rank-deficient eigenbasis (null space
 * sloppy and counted); zero/resample leave the stiff components untouched; marginalisation
 * against a direct Gaussian computation (the stiff marginal covariance [A⁻¹]_>>, in the
 * eigenbasis and with dense blocks); cumulative schedules nested with old draws kept; bad input;
 * allocation failures. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nnft_linalg.h"
#include "nnft_shell.h"
#include "test_util.h"

static uint64_t rng_state = 0x1234567887654321ull;
static double urand(void) {
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  uint64_t r = rng_state * 0x2545F4914F6CDD1Dull;
  return (double)(r >> 11) / 9007199254740992.0 * 2.0 - 1.0;
}

static nnft_mat mat(size_t r, size_t c) {
  nnft_mat m;
  test_alloc_fail_after(-1);
  if (nnft_mat_alloc(r, c, &m)) exit(2);
  return m;
}

enum { P = 9, K = 6 }; /* 9 parameters, a Fisher of rank 6 */

/* A random orthonormal basis Q (P x P) from the eigenvectors of a random symmetric matrix. */
static nnft_mat random_orthonormal(void) {
  nnft_mat A = mat(P, P), Q = mat(P, P), w = mat(P, 1);
  for (size_t j = 0; j < P; j++)
    for (size_t i = 0; i <= j; i++) NNFT_AT(&A, i, j) = NNFT_AT(&A, j, i) = urand();
  size_t m;
  nnft_linalg_eigh(&A, NULL, &w, &Q, &m, NULL);
  nnft_mat_free(&A);
  nnft_mat_free(&w);
  return Q;
}

static void base_problem(nnft_shell_problem *pb, const nnft_mat *V, double *lam, double *theta,
                         double *m0, double *sd, double *z1, double *z2) {
  memset(pb, 0, sizeof *pb);
  pb->P = P;
  pb->theta = theta;
  pb->prior_mean = m0;
  pb->prior_sd = sd;
  pb->k = K;
  pb->lambda = lam;
  pb->V = V;
  pb->z1 = z1;
  pb->z2 = z2;
}

/* out columns for θ = e_i (or η = e_i) build the projector matrices */
static void test_projectors(void) {
  nnft_mat Q = random_orthonormal();
  nnft_mat V = {P, K, Q.ld, Q.data, 0};
  double lam[K] = {5.0, 0.2, 3.0, 0.01, 1.0, 0.5}, theta[P], m0[P] = {0}, sd[P], z1[P], z2[P],
         out[P];
  for (size_t i = 0; i < P; i++) sd[i] = 1.0;
  nnft_shell_problem pb;
  base_problem(&pb, &V, lam, theta, m0, sd, z1, z2);
  nnft_shell_opts o = {NNFT_SHELL_EIGEN, NNFT_SHELL_ZERO, 1, 1.0};
  nnft_mat Pg = mat(P, P), Pl = mat(P, P), T = mat(P, P);
  double cut = 0.75; /* sloppy: 0.2, 0.01, 0.5 and the 3-dimensional null space */
  size_t ns = 0, nn = 0;
  for (size_t j = 0; j < P; j++) {
    for (size_t i = 0; i < P; i++) theta[i] = i == j, z1[i] = 0.0;
    o.action = NNFT_SHELL_ZERO;
    CHECK_STATUS(nnft_shell_apply(&pb, cut, &o, out, &ns, &nn), NNFT_OK);
    memcpy(Pg.data + j * P, out, sizeof out);
    for (size_t i = 0; i < P; i++) theta[i] = 0.0, z1[i] = i == j; /* η = e_j */
    o.action = NNFT_SHELL_RESAMPLE;
    CHECK_STATUS(nnft_shell_apply(&pb, cut, &o, out, &ns, &nn), NNFT_OK);
    memcpy(Pl.data + j * P, out, sizeof out);
  }
  CHECK(ns == 3 + (P - K));
  CHECK(nn == P - K);
  /* P_>² = P_>, P_<² = P_<, P_> + P_< = 1, symmetric; rank P_> = 3 (trace) */
  double e1 = 0, e2 = 0, e3 = 0, e4 = 0, tr = 0;
  nnft_mat_gemm(1.0, &Pg, 0, &Pg, 0, 0.0, &T);
  for (size_t i = 0; i < P * P; i++) e1 = fmax(e1, fabs(T.data[i] - Pg.data[i]));
  nnft_mat_gemm(1.0, &Pl, 0, &Pl, 0, 0.0, &T);
  for (size_t i = 0; i < P * P; i++) e2 = fmax(e2, fabs(T.data[i] - Pl.data[i]));
  for (size_t j = 0; j < P; j++) {
    tr += NNFT_AT(&Pg, j, j);
    for (size_t i = 0; i < P; i++) {
      e3 = fmax(e3, fabs(NNFT_AT(&Pg, i, j) + NNFT_AT(&Pl, i, j) - (i == j)));
      e4 = fmax(e4, fabs(NNFT_AT(&Pg, i, j) - NNFT_AT(&Pg, j, i)));
    }
  }
  CHECK(e1 < 1e-13 && e2 < 1e-13 && e3 < 1e-13 && e4 < 1e-13);
  CHECK_NEAR(tr, 3.0, 1e-12);
  /* strictness: a cutoff equal to an eigenvalue */
  CHECK(nnft_shell_mask(lam, K, 0.5, 1, NULL) == 2);
  CHECK(nnft_shell_mask(lam, K, 0.5, 0, NULL) == 3);
  o.action = NNFT_SHELL_ZERO;
  o.strict = 0;
  CHECK_STATUS(nnft_shell_apply(&pb, 0.5, &o, out, &ns, NULL), NNFT_OK);
  CHECK(ns == 3 + (P - K));
  /* Λ = 0 strict: nothing sloppy (not even the null space), θ returned */
  o.strict = 1;
  for (size_t i = 0; i < P; i++) theta[i] = urand();
  CHECK_STATUS(nnft_shell_apply(&pb, 0.0, &o, out, &ns, NULL), NNFT_OK);
  CHECK(ns == 0);
  double e = 0;
  for (size_t i = 0; i < P; i++) e = fmax(e, fabs(out[i] - theta[i]));
  CHECK(e < 1e-14);
  /* resample and zero leave stiff components untouched: V_>ᵀ out = V_>ᵀ θ */
  for (size_t i = 0; i < P; i++) z1[i] = urand(), m0[i] = 0.1 * urand(), sd[i] = 0.5 + 0.1 * i;
  for (int act = 0; act < 2; act++) {
    o.action = act ? NNFT_SHELL_ZERO : NNFT_SHELL_RESAMPLE;
    CHECK_STATUS(nnft_shell_apply(&pb, cut, &o, out, NULL, NULL), NNFT_OK);
    for (size_t a = 0; a < K; a++) {
      double c1 = 0, c2 = 0, c3 = 0;
      for (size_t i = 0; i < P; i++) {
        c1 += NNFT_AT(&V, i, a) * out[i];
        c2 += NNFT_AT(&V, i, a) * theta[i];
        c3 += NNFT_AT(&V, i, a) * (act ? 0.0 : m0[i] + sd[i] * z1[i]);
      }
      if (lam[a] >= cut)
        CHECK_NEAR(c1, c2, 1e-13);
      else
        CHECK_NEAR(c1, c3, 1e-13); /* sloppy: the prior draw's component */
    }
  }
  /* diag basis: stiff entries exactly θ, sloppy ones 0 or m + s z1 */
  double dg[P];
  for (size_t i = 0; i < P; i++) dg[i] = 0.1 * (double)i;
  pb.diag = dg;
  o.basis = NNFT_SHELL_DIAG;
  for (int act = 0; act < 2; act++) {
    o.action = act ? NNFT_SHELL_ZERO : NNFT_SHELL_RESAMPLE;
    CHECK_STATUS(nnft_shell_apply(&pb, 0.35, &o, out, &ns, &nn), NNFT_OK);
    CHECK(ns == 4 && nn == 0);
    for (size_t i = 0; i < P; i++)
      CHECK(out[i] == (dg[i] < 0.35 ? (act ? 0.0 : m0[i] + sd[i] * z1[i]) : theta[i]));
  }
  nnft_mat_free(&Q), nnft_mat_free(&Pg), nnft_mat_free(&Pl), nnft_mat_free(&T);
}

/* [A⁻¹]_>> directly (inverse, then sub-block) for the stiff set */
static void direct_marginal_cov(const nnft_mat *A, const unsigned char *sl, nnft_mat *C) {
  size_t m = A->rows;
  nnft_mat Ai = mat(m, m);
  nnft_linalg_inv_spd(A, &Ai, NULL);
  size_t a = 0;
  for (size_t j = 0; j < m; j++) {
    if (sl[j]) continue;
    size_t b = 0;
    for (size_t i = 0; i < m; i++) {
      if (sl[i]) continue;
      NNFT_AT(C, b, a) = NNFT_AT(&Ai, i, j);
      b++;
    }
    a++;
  }
  nnft_mat_free(&Ai);
}

static void test_marginal(void) {
  /* Schur complement vs the direct inverse */
  size_t m = 7;
  nnft_mat B = mat(m, m), A = mat(m, m);
  for (size_t j = 0; j < m; j++)
    for (size_t i = 0; i < m; i++) NNFT_AT(&B, i, j) = urand();
  nnft_mat_syrk(&B, 1, &A);
  for (size_t i = 0; i < m; i++) NNFT_AT(&A, i, i) += 0.5;
  unsigned char sl[7] = {1, 0, 0, 1, 0, 1, 0};
  nnft_mat S = mat(4, 4), Si = mat(4, 4), C = mat(4, 4);
  CHECK_STATUS(nnft_shell_marginal_precision(&A, sl, &S), NNFT_OK);
  nnft_linalg_inv_spd(&S, &Si, NULL);
  direct_marginal_cov(&A, sl, &C);
  double e = 0, cm = 0;
  for (size_t i = 0; i < 16; i++) e = fmax(e, fabs(Si.data[i] - C.data[i])), cm = fmax(cm, fabs(C.data[i]));
  CHECK(e <= 1e-11 * cm);
  /* the conditional is a different thing: [A_>>]⁻¹ differs from the marginal here */
  for (long k = 0;; k++) {
    test_alloc_fail_after(k);
    nnft_status st = nnft_shell_marginal_precision(&A, sl, &S);
    test_alloc_fail_after(-1);
    if (!st) break;
    CHECK_STATUS(st, NNFT_ENOMEM);
  }

  /* DIAG basis with a dense block: the stiff fluctuation is the linear map z2 -> δ; its
   * covariance M Mᵀ must be [A⁻¹]_>> with A = T·F + diag(1/s²) */
  double theta[P] = {0}, m0[P] = {0}, sd[P], z1[P] = {0}, z2[P], out[P], dg[P];
  nnft_mat Fb = mat(P, P), Bp = mat(P, P);
  for (size_t j = 0; j < P; j++)
    for (size_t i = 0; i < P; i++) NNFT_AT(&Bp, i, j) = urand();
  nnft_mat_syrk(&Bp, 1, &Fb);
  for (size_t i = 0; i < P; i++) sd[i] = 0.6 + 0.05 * i, dg[i] = NNFT_AT(&Fb, i, i);
  double T = 3.0, cut = 0;
  { /* cutoff: the median diagonal entry */
    double s[P];
    memcpy(s, dg, sizeof s);
    for (size_t i = 0; i < P; i++)
      for (size_t j = i + 1; j < P; j++)
        if (s[j] < s[i]) { double t = s[i]; s[i] = s[j]; s[j] = t; }
    cut = s[P / 2];
  }
  unsigned char slp[P];
  size_t q = P - nnft_shell_mask(dg, P, cut, 1, slp);
  size_t boff[1] = {0};
  nnft_shell_problem pb;
  memset(&pb, 0, sizeof pb);
  pb.P = P, pb.theta = theta, pb.prior_mean = m0, pb.prior_sd = sd, pb.diag = dg;
  pb.nblocks = 1, pb.boff = boff, pb.blocks = &Fb, pb.z1 = z1, pb.z2 = z2;
  nnft_shell_opts o = {NNFT_SHELL_DIAG, NNFT_SHELL_MARGINALISE, 1, T};
  nnft_mat M = mat(q, P);
  for (size_t j = 0; j < P; j++) {
    for (size_t i = 0; i < P; i++) z2[i] = i == j;
    CHECK_STATUS(nnft_shell_apply(&pb, cut, &o, out, NULL, NULL), NNFT_OK);
    for (size_t i = 0, a = 0; i < P; i++) {
      if (slp[i]) {
        CHECK(out[i] == 0.0); /* sloppy: prior mean 0 + sd · z1 = 0 */
        continue;
      }
      NNFT_AT(&M, a++, j) = out[i];
    }
  }
  nnft_mat Acov = mat(P, P), Cd = mat(q, q), MM = mat(q, q);
  for (size_t j = 0; j < P; j++) {
    for (size_t i = 0; i < P; i++) NNFT_AT(&Acov, i, j) = T * NNFT_AT(&Fb, i, j);
    NNFT_AT(&Acov, j, j) += 1.0 / (sd[j] * sd[j]);
  }
  direct_marginal_cov(&Acov, slp, &Cd);
  nnft_mat_syrk(&M, 0, &MM);
  e = 0, cm = 0;
  for (size_t i = 0; i < q * q; i++) e = fmax(e, fabs(MM.data[i] - Cd.data[i])), cm = fmax(cm, fabs(Cd.data[i]));
  CHECK(e <= 1e-11 * cm);
  for (long k = 0;; k++) {
    test_alloc_fail_after(k);
    nnft_status st = nnft_shell_apply(&pb, cut, &o, out, NULL, NULL);
    test_alloc_fail_after(-1);
    if (!st) break;
    CHECK_STATUS(st, NNFT_ENOMEM);
  }
  /* diagonal metric (no blocks): variance 1/(T I_ii + 1/s_i²) */
  pb.nblocks = 0;
  for (size_t i = 0; i < P; i++) z2[i] = 1.0;
  CHECK_STATUS(nnft_shell_apply(&pb, cut, &o, out, NULL, NULL), NNFT_OK);
  for (size_t i = 0; i < P; i++)
    if (!slp[i]) CHECK_NEAR(out[i], 1.0 / sqrt(T * dg[i] + 1.0 / (sd[i] * sd[i])), 1e-15);

  /* EIGEN basis, isotropic prior: covariance of the fluctuation = P_> A⁻¹ P_>, A = T V Λ Vᵀ + 1/s² */
  nnft_mat Q = mat(P, P), wv = mat(P, 1);
  {
    size_t mm;
    nnft_linalg_eigh(&Fb, NULL, &wv, &Q, &mm, NULL);
  }
  nnft_mat V = {P, K, Q.ld, Q.data, 0};
  double lam[K], s0 = 0.8;
  for (size_t a = 0; a < K; a++) lam[a] = wv.data[a];
  for (size_t i = 0; i < P; i++) sd[i] = s0;
  double cutE = 0.5 * (lam[2] + lam[3]); /* 3 stiff */
  pb.k = K, pb.V = &V, pb.lambda = lam;
  o.basis = NNFT_SHELL_EIGEN;
  nnft_mat Me = mat(P, P), Ce = mat(P, P), Ae = mat(P, P), Aei = mat(P, P), Pg = mat(P, P), Tm = mat(P, P);
  for (size_t j = 0; j < P; j++) {
    for (size_t i = 0; i < P; i++) z2[i] = i == j;
    CHECK_STATUS(nnft_shell_apply(&pb, cutE, &o, out, NULL, NULL), NNFT_OK);
    memcpy(Me.data + j * P, out, sizeof out);
  }
  nnft_mat_syrk(&Me, 0, &Ce);
  for (size_t j = 0; j < P; j++)
    for (size_t i = 0; i < P; i++) {
      double acc = 0, pg = 0;
      for (size_t a = 0; a < K; a++) acc += T * lam[a] * NNFT_AT(&V, i, a) * NNFT_AT(&V, j, a);
      for (size_t a = 0; a < 3; a++) pg += NNFT_AT(&V, i, a) * NNFT_AT(&V, j, a);
      NNFT_AT(&Ae, i, j) = acc + (i == j) / (s0 * s0);
      NNFT_AT(&Pg, i, j) = pg;
    }
  nnft_linalg_inv_spd(&Ae, &Aei, NULL);
  nnft_mat_gemm(1.0, &Pg, 0, &Aei, 0, 0.0, &Tm);
  nnft_mat_gemm(1.0, &Tm, 0, &Pg, 0, 0.0, &Acov);
  e = 0, cm = 0;
  for (size_t i = 0; i < P * P; i++) e = fmax(e, fabs(Ce.data[i] - Acov.data[i])), cm = fmax(cm, fabs(Acov.data[i]));
  CHECK(e <= 1e-12 * cm);
  /* non-isotropic prior refused in the eigenbasis */
  sd[2] = 0.5;
  CHECK_STATUS(nnft_shell_apply(&pb, cutE, &o, out, NULL, NULL), NNFT_EDOM);
  nnft_mat_free(&B), nnft_mat_free(&A), nnft_mat_free(&S), nnft_mat_free(&Si), nnft_mat_free(&C);
  nnft_mat_free(&Fb), nnft_mat_free(&Bp), nnft_mat_free(&M), nnft_mat_free(&Acov);
  nnft_mat_free(&Cd), nnft_mat_free(&MM), nnft_mat_free(&Q), nnft_mat_free(&wv);
  nnft_mat_free(&Me), nnft_mat_free(&Ce), nnft_mat_free(&Ae), nnft_mat_free(&Aei);
  nnft_mat_free(&Pg), nnft_mat_free(&Tm);
}

static void test_schedule(void) {
  enum { NP = 40, NC = 6 };
  double theta[NP], m0[NP], sd[NP], z1[NP], dg[NP];
  for (size_t i = 0; i < NP; i++) {
    theta[i] = urand(), m0[i] = 0.0, sd[i] = 1.0, dg[i] = exp(4 * urand());
  }
  nnft_rng r;
  nnft_rng_init(&r, 42);
  CHECK_STATUS(nnft_shell_draw(&r, NP, z1, NULL), NNFT_OK);
  nnft_shell_problem pb;
  memset(&pb, 0, sizeof pb);
  pb.P = NP, pb.theta = theta, pb.prior_mean = m0, pb.prior_sd = sd, pb.diag = dg, pb.z1 = z1;
  nnft_shell_opts o = {NNFT_SHELL_DIAG, NNFT_SHELL_RESAMPLE, 1, 1.0};
  double cuts[NC] = {0.0, 0.1, 0.5, 0.5, 3.0, 100.0};
  nnft_mat out = mat(NP, NC);
  size_t counts[NC];
  CHECK_STATUS(nnft_shell_schedule(&pb, cuts, NC, &o, &out, counts), NNFT_OK);
  CHECK(counts[0] == 0 && counts[NC - 1] == NP);
  for (size_t j = 1; j < NC; j++) {
    CHECK(counts[j] >= counts[j - 1]);
    for (size_t i = 0; i < NP; i++) {
      int was = NNFT_AT(&out, i, j - 1) != theta[i], is = NNFT_AT(&out, i, j) != theta[i];
      CHECK(!was || is);                                                   /* nested */
      if (was) CHECK(NNFT_AT(&out, i, j) == NNFT_AT(&out, i, j - 1));      /* draw kept */
    }
  }
  /* the whole schedule equals independent applications with the same draws */
  double one[NP];
  for (size_t j = 0; j < NC; j++) {
    nnft_shell_apply(&pb, cuts[j], &o, one, NULL, NULL);
    CHECK(memcmp(one, out.data + j * out.ld, sizeof one) == 0);
  }
  /* bad schedules and cutoffs */
  double bad[3] = {0.1, 0.05, 1.0}, neg[2] = {-1.0, 1.0};
  nnft_mat o3 = mat(NP, 3), o2 = mat(NP, 2);
  CHECK_STATUS(nnft_shell_schedule(&pb, bad, 3, &o, &o3, NULL), NNFT_EDOM);
  CHECK_STATUS(nnft_shell_schedule(&pb, neg, 2, &o, &o2, NULL), NNFT_EDOM);
  CHECK_STATUS(nnft_shell_schedule(&pb, neg, 2, &o, &o3, NULL), NNFT_EDIM);
  CHECK_STATUS(nnft_shell_apply(&pb, -0.1, &o, one, NULL, NULL), NNFT_EDOM);
  CHECK_STATUS(nnft_shell_apply(&pb, NAN, &o, one, NULL, NULL), NNFT_EDOM);
  nnft_shell_opts ob = o;
  ob.action = (nnft_shell_action)9;
  CHECK_STATUS(nnft_shell_apply(&pb, 1.0, &ob, one, NULL, NULL), NNFT_EDOM);
  ob = o;
  ob.action = NNFT_SHELL_MARGINALISE; /* needs z2 */
  CHECK_STATUS(nnft_shell_apply(&pb, 1.0, &ob, one, NULL, NULL), NNFT_EDOM);
  ob.basis = NNFT_SHELL_EIGEN; /* needs V */
  ob.action = NNFT_SHELL_ZERO;
  CHECK_STATUS(nnft_shell_apply(&pb, 1.0, &ob, one, NULL, NULL), NNFT_EDIM);
  sd[3] = 0.0;
  CHECK_STATUS(nnft_shell_apply(&pb, 1.0, &o, one, NULL, NULL), NNFT_EDOM);
  CHECK(nnft_shell_basis_lookup("eigen") == NNFT_SHELL_EIGEN);
  CHECK(nnft_shell_basis_lookup("fourier") == -1);
  CHECK(nnft_shell_action_lookup("marginalize") == NNFT_SHELL_MARGINALISE);
  CHECK(nnft_shell_action_lookup("drop") == -1);
  nnft_mat_free(&out), nnft_mat_free(&o3), nnft_mat_free(&o2);

  /* eigen basis schedule: sloppy coefficients keep their first draw */
  nnft_mat Q = mat(P, P), A = mat(P, P), w = mat(P, 1);
  for (size_t j = 0; j < P; j++)
    for (size_t i = 0; i <= j; i++) NNFT_AT(&A, i, j) = NNFT_AT(&A, j, i) = urand();
  size_t mm;
  nnft_linalg_eigh(&A, NULL, &w, &Q, &mm, NULL);
  nnft_mat V = {P, K, Q.ld, Q.data, 0};
  double lam[K] = {9, 4, 2, 1, 0.5, 0.1}, th[P], mz[P] = {0}, s1[P], zz[P];
  for (size_t i = 0; i < P; i++) th[i] = urand(), s1[i] = 1.0;
  nnft_shell_draw(&r, P, zz, NULL);
  nnft_shell_problem pe;
  memset(&pe, 0, sizeof pe);
  pe.P = P, pe.theta = th, pe.prior_mean = mz, pe.prior_sd = s1, pe.k = K, pe.lambda = lam, pe.V = &V,
  pe.z1 = zz;
  nnft_shell_opts oe = {NNFT_SHELL_EIGEN, NNFT_SHELL_RESAMPLE, 1, 1.0};
  double ce[4] = {0.0, 0.3, 1.5, 5.0};
  nnft_mat oute = mat(P, 4);
  size_t cnt[4];
  CHECK_STATUS(nnft_shell_schedule(&pe, ce, 4, &oe, &oute, cnt), NNFT_OK);
  CHECK(cnt[0] == 0 && cnt[1] == 1 + P - K && cnt[2] == 3 + P - K && cnt[3] == 5 + P - K);
  for (size_t a = 0; a < K; a++) {
    double cz = 0, cth = 0;
    for (size_t i = 0; i < P; i++) cz += NNFT_AT(&V, i, a) * zz[i], cth += NNFT_AT(&V, i, a) * th[i];
    for (size_t j = 0; j < 4; j++) {
      double c = 0;
      for (size_t i = 0; i < P; i++) c += NNFT_AT(&V, i, a) * NNFT_AT(&oute, i, j);
      CHECK_NEAR(c, lam[a] < ce[j] ? cz : cth, 1e-13);
    }
  }
  for (long k = 0;; k++) {
    test_alloc_fail_after(k);
    nnft_status st = nnft_shell_schedule(&pe, ce, 4, &oe, &oute, cnt);
    test_alloc_fail_after(-1);
    if (!st) break;
    CHECK_STATUS(st, NNFT_ENOMEM);
  }
  nnft_mat_free(&Q), nnft_mat_free(&A), nnft_mat_free(&w), nnft_mat_free(&oute);
}

int main(void) {
  test_projectors();
  test_marginal();
  test_schedule();
  return test_report("test_shell");
}
