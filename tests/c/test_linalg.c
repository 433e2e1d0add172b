/* Tests of nnft_linalg: every function against an independent identity (A = L Lᵀ, A V = V Λ,
 * U diag(s) Vt = A, normal equations, inv A = I, logdet against eigenvalues), every error
 * status provoked, and an allocation-failure loop over every function. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nnft_linalg.h"
#include "test_util.h"

/* ---- small helpers (independent of the code under test: plain loops + nnft_mat) ---- */

#include "test_fixtures.h"

/* Symmetric positive definite: G Gᵀ + n I. */
static nnft_mat spd(size_t n) {
  nnft_mat g = randmat(n, n, 1.0), a = mat(n, n);
  for (size_t i = 0; i < n; i++)
    for (size_t j = 0; j < n; j++) {
      double s = i == j ? (double)n : 0.0;
      for (size_t k = 0; k < n; k++) s += NNFT_AT(&g, i, k) * NNFT_AT(&g, j, k);
      NNFT_AT(&a, i, j) = s;
    }
  nnft_mat_free(&g);
  return a;
}

static nnft_mat symmat(size_t n) {
  nnft_mat a = randmat(n, n, 1.0);
  for (size_t j = 0; j < n; j++)
    for (size_t i = 0; i < j; i++) NNFT_AT(&a, i, j) = NNFT_AT(&a, j, i);
  return a;
}

/* c = op(a) op(b) by plain loops. */
static nnft_mat mul(const nnft_mat *a, int ta, const nnft_mat *b, int tb) {
  size_t m = ta ? a->cols : a->rows, k = ta ? a->rows : a->cols;
  size_t n = tb ? b->rows : b->cols;
  nnft_mat c = mat(m, n);
  for (size_t i = 0; i < m; i++)
    for (size_t j = 0; j < n; j++) {
      double s = 0.0;
      for (size_t p = 0; p < k; p++)
        s += (ta ? NNFT_AT(a, p, i) : NNFT_AT(a, i, p)) * (tb ? NNFT_AT(b, j, p) : NNFT_AT(b, p, j));
      NNFT_AT(&c, i, j) = s;
    }
  return c;
}

static double maxdiff(const nnft_mat *a, const nnft_mat *b) {
  if (a->rows != b->rows || a->cols != b->cols) return INFINITY;
  double m = 0.0;
  for (size_t j = 0; j < a->cols; j++)
    for (size_t i = 0; i < a->rows; i++) {
      double d = fabs(NNFT_AT(a, i, j) - NNFT_AT(b, i, j));
      if (!(d <= m)) m = d;
    }
  return m;
}

static double dist_eye(const nnft_mat *a) {
  double m = 0.0;
  for (size_t j = 0; j < a->cols; j++)
    for (size_t i = 0; i < a->rows; i++) {
      double d = fabs(NNFT_AT(a, i, j) - (i == j ? 1.0 : 0.0));
      if (d > m) m = d;
    }
  return m;
}

static nnft_mat from(size_t r, size_t c, const double *rowmajor) {
  nnft_mat m = mat(r, c);
  for (size_t i = 0; i < r; i++)
    for (size_t j = 0; j < c; j++) NNFT_AT(&m, i, j) = rowmajor[i * c + j];
  return m;
}

static void frees(nnft_mat *a, nnft_mat *b, nnft_mat *c, nnft_mat *d) {
  nnft_mat_free(a);
  nnft_mat_free(b);
  nnft_mat_free(c);
  nnft_mat_free(d);
}

/* ---- Cholesky ---- */

static void test_chol(void) {
  nnft_linalg_diag dg;
  nnft_mat a = spd(7), l = mat(7, 7);
  double jit = -1;
  CHECK_STATUS(nnft_linalg_chol(&a, NULL, &l, &jit, &dg), NNFT_OK);
  CHECK(jit == 0.0);
  CHECK(dg.msg[0] == '\0');
  int upper_zero = 1;
  for (size_t j = 0; j < 7; j++)
    for (size_t i = 0; i < j; i++) upper_zero &= NNFT_AT(&l, i, j) == 0.0;
  CHECK(upper_zero);
  nnft_mat llt = mul(&l, 0, &l, 1);
  CHECK_NEAR(maxdiff(&llt, &a), 0.0, 1e-12);
  nnft_mat_free(&llt);

  /* upper factor: A = Uᵀ U, lower zeroed */
  nnft_chol_opts o = nnft_chol_defaults();
  o.lower = 0;
  nnft_mat u = mat(7, 7);
  CHECK_STATUS(nnft_linalg_chol(&a, &o, &u, NULL, NULL), NNFT_OK);
  int lower_zero = 1;
  for (size_t j = 0; j < 7; j++)
    for (size_t i = j + 1; i < 7; i++) lower_zero &= NNFT_AT(&u, i, j) == 0.0;
  CHECK(lower_zero);
  nnft_mat utu = mul(&u, 1, &u, 0);
  CHECK_NEAR(maxdiff(&utu, &a), 0.0, 1e-12);
  frees(&utu, &u, &l, &a);

  /* not PD: diag(1, 2, -1, 4) fails at leading minor 3; eigenvalues -1 .. 4 */
  const double dv[] = {1, 0, 0, 0, 0, 2, 0, 0, 0, 0, -1, 0, 0, 0, 0, 4};
  a = from(4, 4, dv);
  l = mat(4, 4);
  CHECK_STATUS(nnft_linalg_chol(&a, NULL, &l, NULL, &dg), NNFT_ENOTPD);
  CHECK(dg.index == 3);
  CHECK_NEAR(dg.min_eig, -1.0, 1e-12);
  CHECK_NEAR(dg.max_eig, 4.0, 1e-12);
  CHECK(strstr(dg.msg, "leading minor 3 of 4 is not positive") != NULL);
  CHECK(strstr(dg.msg, "smallest eigenvalue -1") != NULL);
  /* jitter cannot rescue an eigenvalue of -1: exhausted after 6 tries, up to 1e-10*1.5*1e5 */
  o = nnft_chol_defaults();
  o.jitter = 1;
  CHECK_STATUS(nnft_linalg_chol(&a, &o, &l, &jit, &dg), NNFT_ENOTPD);
  CHECK(dg.tries == 6);
  CHECK_NEAR(dg.jitter, 1.5e-10 * 1e5, 1e-18);
  CHECK(jit == 0.0);
  CHECK(strstr(dg.msg, "even with jitter") != NULL);
  CHECK_NEAR(dg.min_eig, -1.0, 1e-12);
  o.max_tries = 2;
  CHECK_STATUS(nnft_linalg_chol(&a, &o, &l, &jit, &dg), NNFT_ENOTPD);
  CHECK(dg.tries == 2);
  CHECK_NEAR(dg.jitter, 1.5e-9, 1e-22);
  o.max_tries = 0;
  CHECK_STATUS(nnft_linalg_chol(&a, &o, &l, &jit, &dg), NNFT_EDOM);
  nnft_mat_free(&a);

  /* rank-1 PSD (all ones): plain Cholesky fails exactly at minor 2, jitter 1e-10 rescues it */
  a = mat(4, 4);
  nnft_mat_fill(&a, 1.0);
  CHECK_STATUS(nnft_linalg_chol(&a, NULL, &l, &jit, &dg), NNFT_ENOTPD);
  CHECK(dg.index == 2);
  CHECK_NEAR(dg.min_eig, 0.0, 1e-12);
  CHECK_NEAR(dg.max_eig, 4.0, 1e-12);
  o = nnft_chol_defaults();
  o.jitter = 1;
  CHECK_STATUS(nnft_linalg_chol(&a, &o, &l, &jit, &dg), NNFT_OK);
  CHECK(jit == 1e-10);
  CHECK(dg.jitter == 1e-10 && dg.tries == 1);
  llt = mul(&l, 0, &l, 1);
  for (size_t i = 0; i < 4; i++) NNFT_AT(&a, i, i) += jit;
  CHECK_NEAR(maxdiff(&llt, &a), 0.0, 1e-14);
  nnft_mat_free(&llt);
  /* zero matrix: mean diagonal 0, the jitter falls back to the absolute 1e-10 */
  nnft_mat_fill(&a, 0.0);
  CHECK_STATUS(nnft_linalg_chol(&a, &o, &l, &jit, &dg), NNFT_OK);
  CHECK(jit == 1e-10);
  CHECK_NEAR(NNFT_AT(&l, 0, 0), 1e-5, 1e-20);

  /* bad input */
  nnft_mat r = randmat(3, 4, 1.0), l3 = mat(3, 3);
  CHECK_STATUS(nnft_linalg_chol(&r, NULL, &l3, NULL, &dg), NNFT_EDIM);
  CHECK(strstr(dg.msg, "A must be square, got 3 x 4") != NULL);
  nnft_mat s3 = spd(3);
  CHECK_STATUS(nnft_linalg_chol(&s3, NULL, &l, NULL, &dg), NNFT_EDIM); /* L is 4 x 4 */
  CHECK_STATUS(nnft_linalg_chol(&s3, NULL, &s3, NULL, &dg), NNFT_EDOM); /* aliasing */
  NNFT_AT(&s3, 0, 2) += 1e-3;                                            /* asymmetric */
  CHECK_STATUS(nnft_linalg_chol(&s3, NULL, &l3, NULL, &dg), NNFT_EDOM);
  CHECK(strstr(dg.msg, "not symmetric") != NULL);
  NNFT_AT(&s3, 0, 2) = NNFT_AT(&s3, 2, 0) * (1 + 1e-14); /* rounding-level asymmetry is fine */
  CHECK_STATUS(nnft_linalg_chol(&s3, NULL, &l3, NULL, &dg), NNFT_OK);
  NNFT_AT(&s3, 1, 1) = NAN;
  CHECK_STATUS(nnft_linalg_chol(&s3, NULL, &l3, NULL, &dg), NNFT_ENONFINITE);
  CHECK(strstr(dg.msg, "NaN or Inf") != NULL);
  NNFT_AT(&s3, 1, 1) = INFINITY;
  CHECK_STATUS(nnft_linalg_chol(&s3, NULL, &l3, NULL, &dg), NNFT_ENONFINITE);
  nnft_mat e = mat(0, 0), le = mat(0, 0);
  CHECK_STATUS(nnft_linalg_chol(&e, NULL, &le, NULL, &dg), NNFT_OK);
  frees(&r, &l3, &s3, &a);
  frees(&l, &e, &le, NULL);
}

/* ---- solves ---- */

static void test_solves(void) {
  nnft_linalg_diag dg;
  const size_t n = 7;
  nnft_mat a = spd(n), l = mat(n, n), b = randmat(n, 3, 1.0), x = mat(n, 3);
  CHECK_STATUS(nnft_linalg_chol(&a, NULL, &l, NULL, NULL), NNFT_OK);

  /* trisolve: L X = B, Lᵀ X = B, U X = B with U = Lᵀ stored upper */
  CHECK_STATUS(nnft_linalg_trisolve(&l, &b, 1, 0, &x, &dg), NNFT_OK);
  nnft_mat r = mul(&l, 0, &x, 0);
  CHECK_NEAR(maxdiff(&r, &b), 0.0, 1e-12);
  nnft_mat_free(&r);
  CHECK_STATUS(nnft_linalg_trisolve(&l, &b, 1, 1, &x, &dg), NNFT_OK);
  r = mul(&l, 1, &x, 0);
  CHECK_NEAR(maxdiff(&r, &b), 0.0, 1e-12);
  nnft_mat_free(&r);
  nnft_mat u = mat(n, n);
  nnft_mat_transpose(&l, &u);
  NNFT_AT(&u, n - 1, 0) = 12345.0; /* junk in the unreferenced triangle is ignored */
  CHECK_STATUS(nnft_linalg_trisolve(&u, &b, 0, 0, &x, &dg), NNFT_OK);
  NNFT_AT(&u, n - 1, 0) = 0.0;
  r = mul(&u, 0, &x, 0);
  CHECK_NEAR(maxdiff(&r, &b), 0.0, 1e-12);
  nnft_mat_free(&r);
  /* in place (X is B) */
  nnft_mat bc = mat(n, 3);
  nnft_mat_copy(&b, &bc);
  CHECK_STATUS(nnft_linalg_trisolve(&l, &bc, 1, 0, &bc, &dg), NNFT_OK);
  CHECK_STATUS(nnft_linalg_trisolve(&l, &b, 1, 0, &x, &dg), NNFT_OK);
  CHECK(maxdiff(&bc, &x) == 0.0);
  nnft_mat_free(&bc);
  /* zero on the diagonal */
  double keep = NNFT_AT(&u, 4, 4);
  NNFT_AT(&u, 4, 4) = 0.0;
  CHECK_STATUS(nnft_linalg_trisolve(&u, &b, 0, 0, &x, &dg), NNFT_ESINGULAR);
  CHECK(dg.index == 5);
  CHECK(strstr(dg.msg, "T(5,5) is exactly zero") != NULL);
  NNFT_AT(&u, 4, 4) = keep;
  NNFT_AT(&u, 0, 3) = NAN;
  CHECK_STATUS(nnft_linalg_trisolve(&u, &b, 0, 0, &x, &dg), NNFT_ENONFINITE);
  nnft_mat_free(&u);

  /* cholsolve: A X = B */
  CHECK_STATUS(nnft_linalg_cholsolve(&l, &b, &x, &dg), NNFT_OK);
  r = mul(&a, 0, &x, 0);
  CHECK_NEAR(maxdiff(&r, &b), 0.0, 1e-12);
  nnft_mat_free(&r);
  keep = NNFT_AT(&l, 2, 2);
  NNFT_AT(&l, 2, 2) = 0.0;
  CHECK_STATUS(nnft_linalg_cholsolve(&l, &b, &x, &dg), NNFT_ESINGULAR);
  CHECK(dg.index == 3);
  NNFT_AT(&l, 2, 2) = keep;

  /* solve_spd: A X = B, B a matrix and a column */
  CHECK_STATUS(nnft_linalg_solve_spd(&a, &b, &x, &dg), NNFT_OK);
  r = mul(&a, 0, &x, 0);
  CHECK_NEAR(maxdiff(&r, &b), 0.0, 1e-12);
  nnft_mat_free(&r);
  nnft_mat bcol = randmat(n, 1, 1.0), xcol = mat(n, 1);
  CHECK_STATUS(nnft_linalg_solve_spd(&a, &bcol, &xcol, &dg), NNFT_OK);
  r = mul(&a, 0, &xcol, 0);
  CHECK_NEAR(maxdiff(&r, &bcol), 0.0, 1e-12);
  nnft_mat_free(&r);
  nnft_mat ind = symmat(n); /* indefinite with overwhelming probability: shift to make sure */
  for (size_t i = 0; i < n; i++) NNFT_AT(&ind, i, i) -= 10.0;
  CHECK_STATUS(nnft_linalg_solve_spd(&ind, &b, &x, &dg), NNFT_ENOTPD);
  CHECK(dg.index == 1);
  CHECK(dg.min_eig < 0);
  CHECK(strstr(dg.msg, "leading minor 1 of 7") != NULL);

  /* general solve */
  nnft_mat g = randmat(n, n, 1.0);
  CHECK_STATUS(nnft_linalg_solve(&g, &b, &x, &dg), NNFT_OK);
  r = mul(&g, 0, &x, 0);
  CHECK_NEAR(maxdiff(&r, &b), 0.0, 1e-10);
  nnft_mat_free(&r);
  CHECK_STATUS(nnft_linalg_solve(&g, &bcol, &xcol, &dg), NNFT_OK);
  r = mul(&g, 0, &xcol, 0);
  CHECK_NEAR(maxdiff(&r, &bcol), 0.0, 1e-10);
  nnft_mat_free(&r);
  const double sv[] = {1, 2, 2, 4};
  nnft_mat sg = from(2, 2, sv), b2 = randmat(2, 1, 1.0), x2 = mat(2, 1);
  CHECK_STATUS(nnft_linalg_solve(&sg, &b2, &x2, &dg), NNFT_ESINGULAR);
  CHECK(dg.index == 2);
  CHECK(strstr(dg.msg, "matrix is singular: U(2,2) is exactly zero") != NULL);

  /* shape and input errors */
  nnft_mat nsq = randmat(n, n + 1, 1.0), bad = randmat(n + 1, 2, 1.0), xbad = mat(n, 2);
  CHECK_STATUS(nnft_linalg_solve(&nsq, &b, &x, &dg), NNFT_EDIM);
  CHECK(strstr(dg.msg, "A must be square, got 7 x 8") != NULL);
  CHECK_STATUS(nnft_linalg_solve(&g, &bad, &x, &dg), NNFT_EDIM);
  CHECK(strstr(dg.msg, "B has 8 rows but A is 7 x 7") != NULL);
  CHECK_STATUS(nnft_linalg_solve(&g, &b, &xbad, &dg), NNFT_EDIM);
  CHECK_STATUS(nnft_linalg_solve_spd(&a, &bad, &x, &dg), NNFT_EDIM);
  CHECK_STATUS(nnft_linalg_cholsolve(&nsq, &b, &x, &dg), NNFT_EDIM);
  CHECK_STATUS(nnft_linalg_trisolve(&l, &bad, 1, 0, &x, &dg), NNFT_EDIM);
  CHECK_STATUS(nnft_linalg_solve(&g, &b, &g, &dg), NNFT_EDIM); /* X must be shaped like B */
  nnft_mat gx = mat(n, n);
  CHECK_STATUS(nnft_linalg_solve(&g, &g, &gx, &dg), NNFT_OK);
  CHECK_NEAR(dist_eye(&gx), 0.0, 1e-10);
  CHECK_STATUS(nnft_linalg_solve(&g, &gx, &g, &dg), NNFT_EDOM); /* X would overwrite A */
  NNFT_AT(&b, 1, 1) = NAN;
  CHECK_STATUS(nnft_linalg_solve(&g, &b, &x, &dg), NNFT_ENONFINITE);
  CHECK(strstr(dg.msg, "B contains NaN or Inf") != NULL);
  CHECK_STATUS(nnft_linalg_solve_spd(&a, &b, &x, &dg), NNFT_ENONFINITE);
  CHECK_STATUS(nnft_linalg_cholsolve(&l, &b, &x, &dg), NNFT_ENONFINITE);
  NNFT_AT(&b, 1, 1) = 0.5;
  NNFT_AT(&g, 0, 0) = -INFINITY;
  CHECK_STATUS(nnft_linalg_solve(&g, &b, &x, &dg), NNFT_ENONFINITE);
  CHECK(strstr(dg.msg, "A contains NaN or Inf") != NULL);
  NNFT_AT(&a, 0, 1) += 1.0;
  CHECK_STATUS(nnft_linalg_solve_spd(&a, &b, &x, &dg), NNFT_EDOM);

  frees(&a, &l, &b, &x);
  frees(&bcol, &xcol, &ind, &g);
  frees(&sg, &b2, &x2, &nsq);
  frees(&bad, &xbad, &gx, NULL);
}

/* ---- eigh ---- */

static void test_eigh(void) {
  nnft_linalg_diag dg;
  const size_t n = 8;
  nnft_mat a = symmat(n), w = mat(n, 1), v = mat(n, n);
  size_t m = 99;
  CHECK_STATUS(nnft_linalg_eigh(&a, NULL, &w, &v, &m, &dg), NNFT_OK);
  CHECK(m == n);
  int desc = 1, signs = 1;
  for (size_t i = 1; i < n; i++) desc &= w.data[i - 1] >= w.data[i];
  CHECK(desc);
  /* A V = V Λ, Vᵀ V = I, trace A = Σ λ */
  nnft_mat av = mul(&a, 0, &v, 0), vl = mat(n, n), vtv = mul(&v, 1, &v, 0);
  for (size_t j = 0; j < n; j++)
    for (size_t i = 0; i < n; i++) NNFT_AT(&vl, i, j) = NNFT_AT(&v, i, j) * w.data[j];
  CHECK_NEAR(maxdiff(&av, &vl), 0.0, 1e-12);
  CHECK_NEAR(dist_eye(&vtv), 0.0, 1e-12);
  double tr = 0.0, sw = 0.0;
  for (size_t i = 0; i < n; i++) {
    tr += NNFT_AT(&a, i, i);
    sw += w.data[i];
  }
  CHECK_NEAR(tr, sw, 1e-12);
  for (size_t j = 0; j < n; j++) { /* sign convention: largest-magnitude entry positive */
    double best = 0.0, val = 0.0;
    for (size_t i = 0; i < n; i++)
      if (fabs(NNFT_AT(&v, i, j)) > best) {
        best = fabs(NNFT_AT(&v, i, j));
        val = NNFT_AT(&v, i, j);
      }
    signs &= val > 0;
  }
  CHECK(signs);

  /* ascending order, values only */
  nnft_eigh_opts o = nnft_eigh_defaults();
  o.descending = 0;
  o.vectors = 0;
  nnft_mat w2 = mat(n, 1);
  CHECK_STATUS(nnft_linalg_eigh(&a, &o, &w2, NULL, &m, &dg), NNFT_OK);
  CHECK(m == n);
  double md = 0.0;
  for (size_t i = 0; i < n; i++) md = fmax(md, fabs(w2.data[i] - w.data[n - 1 - i]));
  CHECK_NEAR(md, 0.0, 1e-12);

  /* the 3 largest (count = 3 is index 1..3 in descending order), with vectors */
  o = nnft_eigh_defaults();
  o.select = NNFT_EIGH_INDEX;
  o.il = 1;
  o.iu = 3;
  nnft_mat w3 = mat(3, 1), v3 = mat(n, 3);
  CHECK_STATUS(nnft_linalg_eigh(&a, &o, &w3, &v3, &m, &dg), NNFT_OK);
  CHECK(m == 3);
  md = 0.0;
  for (size_t j = 0; j < 3; j++) {
    md = fmax(md, fabs(w3.data[j] - w.data[j]));
    for (size_t i = 0; i < n; i++) md = fmax(md, fabs(NNFT_AT(&v3, i, j) - NNFT_AT(&v, i, j)));
  }
  CHECK_NEAR(md, 0.0, 1e-10);
  /* the 2 smallest in ascending order */
  o.descending = 0;
  o.iu = 2;
  CHECK_STATUS(nnft_linalg_eigh(&a, &o, &w3, &v3, &m, &dg), NNFT_OK);
  CHECK(m == 2);
  CHECK_NEAR(w3.data[0], w.data[n - 1], 1e-12);
  CHECK_NEAR(w3.data[1], w.data[n - 2], 1e-12);
  /* value range (λ6, λ3] in descending numbering holds λ3, λ4, λ5 */
  o = nnft_eigh_defaults();
  o.select = NNFT_EIGH_RANGE;
  o.vl = 0.5 * (w.data[5] + w.data[6]);
  o.vu = 0.5 * (w.data[1] + w.data[2]);
  nnft_mat vr = mat(n, n);
  CHECK_STATUS(nnft_linalg_eigh(&a, &o, &w2, &vr, &m, &dg), NNFT_OK);
  CHECK(m == 4);
  md = 0.0;
  for (size_t j = 0; j < 4; j++) md = fmax(md, fabs(w2.data[j] - w.data[j + 2]));
  CHECK_NEAR(md, 0.0, 1e-10);

  /* errors */
  o = nnft_eigh_defaults();
  o.select = NNFT_EIGH_INDEX;
  o.il = 0;
  o.iu = 2;
  CHECK_STATUS(nnft_linalg_eigh(&a, &o, &w, &v, &m, &dg), NNFT_EDOM);
  o.il = 2;
  o.iu = n + 1;
  CHECK_STATUS(nnft_linalg_eigh(&a, &o, &w, &v, &m, &dg), NNFT_EDOM);
  o = nnft_eigh_defaults();
  o.select = NNFT_EIGH_RANGE;
  o.vl = 1;
  o.vu = 1;
  CHECK_STATUS(nnft_linalg_eigh(&a, &o, &w, &v, &m, &dg), NNFT_EDOM);
  CHECK_STATUS(nnft_linalg_eigh(&a, NULL, &w3, &v, &m, &dg), NNFT_EDIM); /* w too short */
  CHECK_STATUS(nnft_linalg_eigh(&a, NULL, &w, &v3, &m, &dg), NNFT_EDIM); /* V too narrow */
  nnft_mat r = randmat(3, 5, 1.0);
  CHECK_STATUS(nnft_linalg_eigh(&r, NULL, &w, &v, &m, &dg), NNFT_EDIM);
  NNFT_AT(&a, 2, 5) += 0.1;
  CHECK_STATUS(nnft_linalg_eigh(&a, NULL, &w, &v, &m, &dg), NNFT_EDOM);
  NNFT_AT(&a, 2, 5) = NAN;
  CHECK_STATUS(nnft_linalg_eigh(&a, NULL, &w, &v, &m, &dg), NNFT_ENONFINITE);

  frees(&a, &w, &v, &av);
  frees(&vl, &vtv, &w2, &w3);
  frees(&v3, &vr, &r, NULL);
}

/* ---- svd, lstsq ---- */

static void check_svd(size_t m, size_t n) {
  nnft_linalg_diag dg;
  size_t k = m < n ? m : n;
  nnft_mat a = randmat(m, n, 1.0), u = mat(m, k), s = mat(k, 1), vt = mat(k, n);
  CHECK_STATUS(nnft_linalg_svd(&a, 1, 0, &u, &s, &vt, &dg), NNFT_OK);
  /* U diag(s) Vt = A, orthonormal columns/rows, s descending and non-negative */
  nnft_mat us = mat(m, k);
  for (size_t j = 0; j < k; j++)
    for (size_t i = 0; i < m; i++) NNFT_AT(&us, i, j) = NNFT_AT(&u, i, j) * s.data[j];
  nnft_mat rec = mul(&us, 0, &vt, 0), utu = mul(&u, 1, &u, 0), vvt = mul(&vt, 0, &vt, 1);
  CHECK_NEAR(maxdiff(&rec, &a), 0.0, 1e-12);
  CHECK_NEAR(dist_eye(&utu), 0.0, 1e-12);
  CHECK_NEAR(dist_eye(&vvt), 0.0, 1e-12);
  int ok = s.data[k - 1] >= 0;
  for (size_t i = 1; i < k; i++) ok &= s.data[i - 1] >= s.data[i];
  CHECK(ok);
  /* s² are the eigenvalues of the k x k Gram matrix (independent route through eigh) */
  nnft_mat gram = m <= n ? mul(&a, 0, &a, 1) : mul(&a, 1, &a, 0), w = mat(k, 1);
  size_t cnt;
  nnft_eigh_opts eo = nnft_eigh_defaults();
  eo.vectors = 0;
  CHECK_STATUS(nnft_linalg_eigh(&gram, &eo, &w, NULL, &cnt, &dg), NNFT_OK);
  double md = 0.0;
  for (size_t i = 0; i < k; i++) md = fmax(md, fabs(s.data[i] * s.data[i] - w.data[i]));
  CHECK_NEAR(md, 0.0, 1e-12);
  /* values only agree */
  nnft_mat s2 = mat(k, 1);
  CHECK_STATUS(nnft_linalg_svd(&a, 0, 0, NULL, &s2, NULL, &dg), NNFT_OK);
  CHECK_NEAR(maxdiff(&s2, &s), 0.0, 1e-12);
  /* full: square orthogonal U and Vt, same reconstruction from the leading blocks */
  nnft_mat uf = mat(m, m), vf = mat(n, n);
  CHECK_STATUS(nnft_linalg_svd(&a, 1, 1, &uf, &s2, &vf, &dg), NNFT_OK);
  nnft_mat ufu = mul(&uf, 1, &uf, 0), vfv = mul(&vf, 0, &vf, 1);
  CHECK_NEAR(dist_eye(&ufu), 0.0, 1e-12);
  CHECK_NEAR(dist_eye(&vfv), 0.0, 1e-12);
  nnft_mat ub, vb;
  nnft_mat_view(&uf, 0, 0, m, k, &ub);
  nnft_mat_view(&vf, 0, 0, k, n, &vb);
  CHECK_NEAR(maxdiff(&ub, &u), 0.0, 1e-10); /* same signs by the sign convention */
  CHECK_NEAR(maxdiff(&vb, &vt), 0.0, 1e-10);
  /* wrong output shapes */
  CHECK_STATUS(nnft_linalg_svd(&a, 1, 1, &u, &s, &vt, &dg), m == n ? NNFT_OK : NNFT_EDIM);
  frees(&a, &u, &s, &vt);
  frees(&us, &rec, &utu, &vvt);
  frees(&gram, &w, &s2, &uf);
  frees(&vf, &ufu, &vfv, NULL);
}

static void test_svd(void) {
  check_svd(7, 4);
  check_svd(4, 7);
  check_svd(5, 5);
  nnft_linalg_diag dg;
  nnft_mat a = randmat(3, 2, 1.0), u = mat(3, 2), s = mat(2, 1), vt = mat(2, 2);
  NNFT_AT(&a, 2, 1) = NAN;
  CHECK_STATUS(nnft_linalg_svd(&a, 1, 0, &u, &s, &vt, &dg), NNFT_ENONFINITE);
  nnft_mat e = mat(0, 3), s0 = mat(0, 1), u0 = mat(0, 0), v0 = mat(3, 3);
  CHECK_STATUS(nnft_linalg_svd(&e, 1, 1, &u0, &s0, &v0, &dg), NNFT_OK);
  CHECK_NEAR(dist_eye(&v0), 0.0, 0.0);
  frees(&a, &u, &s, &vt);
  frees(&e, &s0, &u0, &v0);
}

static void test_lstsq(void) {
  nnft_linalg_diag dg;
  /* overdetermined, full rank: Aᵀ (A X - B) = 0 */
  size_t m = 9, n = 4, k = 2, rank = 0;
  nnft_mat a = randmat(m, n, 1.0), b = randmat(m, k, 1.0), x = mat(n, k), s = mat(n, 1);
  CHECK_STATUS(nnft_linalg_lstsq(&a, &b, -1.0, &x, &s, &rank, &dg), NNFT_OK);
  CHECK(rank == n);
  nnft_mat ax = mul(&a, 0, &x, 0);
  for (size_t j = 0; j < k; j++)
    for (size_t i = 0; i < m; i++) NNFT_AT(&ax, i, j) -= NNFT_AT(&b, i, j);
  nnft_mat ne = mul(&a, 1, &ax, 0);
  double md = maxdiff(&ne, &(nnft_mat){n, k, n, (double[8]){0}, 0});
  CHECK_NEAR(md, 0.0, 1e-12);
  frees(&ax, &ne, NULL, NULL);
  /* s matches the SVD */
  nnft_mat s2 = mat(n, 1);
  CHECK_STATUS(nnft_linalg_svd(&a, 0, 0, NULL, &s2, NULL, &dg), NNFT_OK);
  CHECK_NEAR(maxdiff(&s, &s2), 0.0, 1e-12);
  frees(&a, &x, &s, &s2);

  /* rank deficient: column 3 duplicates column 1; the minimum-norm solution splits evenly */
  a = randmat(m, n, 1.0);
  for (size_t i = 0; i < m; i++) NNFT_AT(&a, i, 2) = NNFT_AT(&a, i, 0);
  x = mat(n, k);
  s = mat(n, 1);
  CHECK_STATUS(nnft_linalg_lstsq(&a, &b, 1e-10, &x, &s, &rank, &dg), NNFT_OK);
  CHECK(rank == 3);
  CHECK_NEAR(NNFT_AT(&x, 0, 0), NNFT_AT(&x, 2, 0), 1e-10);
  CHECK_NEAR(NNFT_AT(&x, 0, 1), NNFT_AT(&x, 2, 1), 1e-10);
  ax = mul(&a, 0, &x, 0);
  for (size_t j = 0; j < k; j++)
    for (size_t i = 0; i < m; i++) NNFT_AT(&ax, i, j) -= NNFT_AT(&b, i, j);
  ne = mul(&a, 1, &ax, 0);
  md = 0.0;
  for (size_t j = 0; j < k; j++)
    for (size_t i = 0; i < n; i++) md = fmax(md, fabs(NNFT_AT(&ne, i, j)));
  CHECK_NEAR(md, 0.0, 1e-10);
  frees(&a, &x, &s, &b);
  frees(&ax, &ne, NULL, NULL);

  /* underdetermined: exact fit, X = Aᵀ (A Aᵀ)⁻¹ B (minimum norm) */
  m = 3;
  n = 5;
  a = randmat(m, n, 1.0);
  b = randmat(m, 1, 1.0);
  x = mat(n, 1);
  s = mat(m, 1);
  CHECK_STATUS(nnft_linalg_lstsq(&a, &b, -1.0, &x, &s, &rank, &dg), NNFT_OK);
  CHECK(rank == 3);
  nnft_mat aat = mul(&a, 0, &a, 1), y = mat(m, 1);
  CHECK_STATUS(nnft_linalg_solve_spd(&aat, &b, &y, &dg), NNFT_OK);
  nnft_mat xmn = mul(&a, 1, &y, 0);
  CHECK_NEAR(maxdiff(&x, &xmn), 0.0, 1e-10);
  /* errors */
  nnft_mat bbad = randmat(4, 1, 1.0);
  CHECK_STATUS(nnft_linalg_lstsq(&a, &bbad, -1.0, &x, &s, &rank, &dg), NNFT_EDIM);
  CHECK(strstr(dg.msg, "B has 4 rows but A is 3 x 5") != NULL);
  CHECK_STATUS(nnft_linalg_lstsq(&a, &b, NAN, &x, &s, &rank, &dg), NNFT_EDOM);
  NNFT_AT(&b, 0, 0) = NAN;
  CHECK_STATUS(nnft_linalg_lstsq(&a, &b, -1.0, &x, &s, &rank, &dg), NNFT_ENONFINITE);
  frees(&a, &b, &x, &s);
  frees(&aat, &y, &xmn, &bbad);
}

/* ---- determinants, inverses ---- */

static void test_det_inv(void) {
  nnft_linalg_diag dg;
  const size_t n = 6;
  nnft_mat a = spd(n), w = mat(n, 1);
  size_t m;
  double ld = 0, sign = 0, ld2 = 0;
  CHECK_STATUS(nnft_linalg_logdet_spd(&a, &ld, &dg), NNFT_OK);
  nnft_eigh_opts eo = nnft_eigh_defaults();
  eo.vectors = 0;
  CHECK_STATUS(nnft_linalg_eigh(&a, &eo, &w, NULL, &m, &dg), NNFT_OK);
  double sl = 0.0;
  for (size_t i = 0; i < n; i++) sl += log(w.data[i]);
  CHECK_NEAR(ld, sl, 1e-10);
  CHECK_STATUS(nnft_linalg_logdet(&a, &ld2, &sign, &dg), NNFT_OK);
  CHECK_NEAR(ld2, sl, 1e-10);
  CHECK(sign == 1.0);

  /* general: log|det G| = ½ log det(GᵀG); sign from known determinants */
  nnft_mat g = randmat(n, n, 1.0), gtg = mul(&g, 1, &g, 0);
  CHECK_STATUS(nnft_linalg_logdet(&g, &ld, &sign, &dg), NNFT_OK);
  CHECK_STATUS(nnft_linalg_logdet_spd(&gtg, &ld2, &dg), NNFT_OK);
  CHECK_NEAR(ld, 0.5 * ld2, 1e-10);
  CHECK(sign == 1.0 || sign == -1.0);
  const double p[] = {0, 1, 0, 1, 0, 0, 0, 0, 1}; /* one swap: det -1 */
  nnft_mat pm = from(3, 3, p);
  CHECK_STATUS(nnft_linalg_logdet(&pm, &ld, &sign, &dg), NNFT_OK);
  CHECK_NEAR(ld, 0.0, 1e-15);
  CHECK(sign == -1.0);
  const double t[] = {-2, 5, 1, 0, 3, 7, 0, 0, 0.5}; /* det -3 */
  nnft_mat tm = from(3, 3, t);
  CHECK_STATUS(nnft_linalg_logdet(&tm, &ld, &sign, &dg), NNFT_OK);
  CHECK_NEAR(ld, log(3.0), 1e-14);
  CHECK(sign == -1.0);
  const double sv[] = {1, 2, 2, 4};
  nnft_mat sg = from(2, 2, sv);
  CHECK_STATUS(nnft_linalg_logdet(&sg, &ld, &sign, &dg), NNFT_OK);
  CHECK(ld == -INFINITY && sign == 0.0);
  CHECK_STATUS(nnft_linalg_logdet_spd(&sg, &ld, &dg), NNFT_ENOTPD);
  CHECK(dg.index == 2);

  /* inverses */
  nnft_mat gi = mat(n, n), ai = mat(n, n);
  CHECK_STATUS(nnft_linalg_inv(&g, &gi, &dg), NNFT_OK);
  nnft_mat i1 = mul(&gi, 0, &g, 0), i2 = mul(&g, 0, &gi, 0);
  CHECK_NEAR(dist_eye(&i1), 0.0, 1e-10);
  CHECK_NEAR(dist_eye(&i2), 0.0, 1e-10);
  CHECK_STATUS(nnft_linalg_inv_spd(&a, &ai, &dg), NNFT_OK);
  nnft_mat i3 = mul(&ai, 0, &a, 0);
  CHECK_NEAR(dist_eye(&i3), 0.0, 1e-12);
  double asym = 1;
  CHECK_STATUS(nnft_linalg_asymmetry(&ai, &asym), NNFT_OK);
  CHECK(asym == 0.0);
  nnft_mat s2i = mat(2, 2);
  CHECK_STATUS(nnft_linalg_inv(&sg, &s2i, &dg), NNFT_ESINGULAR);
  CHECK(strstr(dg.msg, "U(2,2) is exactly zero") != NULL);
  CHECK_STATUS(nnft_linalg_inv_spd(&sg, &s2i, &dg), NNFT_ENOTPD);
  CHECK(strstr(dg.msg, "leading minor 2 of 2") != NULL);
  CHECK_NEAR(dg.min_eig, 0.0, 1e-12);
  CHECK_NEAR(dg.max_eig, 5.0, 1e-12);

  /* errors */
  nnft_mat r = randmat(2, 3, 1.0);
  CHECK_STATUS(nnft_linalg_logdet(&r, &ld, &sign, &dg), NNFT_EDIM);
  CHECK_STATUS(nnft_linalg_logdet_spd(&r, &ld, &dg), NNFT_EDIM);
  CHECK_STATUS(nnft_linalg_inv(&r, &s2i, &dg), NNFT_EDIM);
  CHECK_STATUS(nnft_linalg_inv_spd(&r, &s2i, &dg), NNFT_EDIM);
  CHECK_STATUS(nnft_linalg_inv(&g, &s2i, &dg), NNFT_EDIM);
  CHECK_STATUS(nnft_linalg_asymmetry(&r, &asym), NNFT_EDIM);
  NNFT_AT(&g, 1, 1) = NAN;
  CHECK_STATUS(nnft_linalg_logdet(&g, &ld, &sign, &dg), NNFT_ENONFINITE);
  CHECK_STATUS(nnft_linalg_inv(&g, &gi, &dg), NNFT_ENONFINITE);
  NNFT_AT(&a, 1, 0) += 1.0;
  CHECK_STATUS(nnft_linalg_inv_spd(&a, &ai, &dg), NNFT_EDOM);
  CHECK_STATUS(nnft_linalg_logdet_spd(&a, &ld, &dg), NNFT_EDOM);
  nnft_mat e = mat(0, 0);
  CHECK_STATUS(nnft_linalg_logdet(&e, &ld, &sign, &dg), NNFT_OK);
  CHECK(ld == 0.0 && sign == 1.0);

  frees(&a, &w, &g, &gtg);
  frees(&pm, &tm, &sg, &gi);
  frees(&ai, &i1, &i2, &i3);
  frees(&s2i, &r, &e, NULL);
}

/* ---- allocation failures: each call fails cleanly (NNFT_ENOMEM) until it has enough ---- */

#define ALLOC_LOOP(label, want, call, min_allocs)                                                        \
  do {                                                                                       \
    long k_;                                                                                 \
    nnft_status st_ = NNFT_ENOMEM;                                                           \
    int bad_ = 0;                                                                            \
    for (k_ = 0; k_ < 64; k_++) {                                                            \
      test_alloc_fail_after(k_);                                                             \
      st_ = (call);                                                                          \
      test_alloc_fail_after(-1);                                                             \
      if (st_ != NNFT_ENOMEM) break;                                                         \
    }                                                                                        \
    if (st_ != (want)) bad_ = 1;                                                             \
    if (bad_) fprintf(stderr, "alloc loop %s: ended with status %d\n", label, (int)st_);    \
    CHECK(!bad_);                                                                            \
    CHECK(k_ < 64);                                                                          \
    if (k_ < (min_allocs)) fprintf(stderr, "alloc loop %s: only %ld allocations\n", label, k_); \
    CHECK(k_ >= (min_allocs));                                                               \
  } while (0)

static void test_alloc_failures(void) {
  nnft_linalg_diag dg;
  const size_t n = 5;
  nnft_mat a = spd(n), g = randmat(n, n, 1.0), b = randmat(n, 2, 1.0), x = mat(n, 2), l = mat(n, n);
  nnft_mat w = mat(n, 1), v = mat(n, n), r = randmat(n + 2, n, 1.0), rb = randmat(n + 2, 2, 1.0);
  nnft_mat u = mat(n + 2, n), s = mat(n, 1), vt = mat(n, n), uf = mat(n + 2, n + 2);
  size_t m;
  double d1, d2;
  nnft_chol_opts jo = nnft_chol_defaults();
  jo.jitter = 1;
  CHECK_STATUS(nnft_linalg_chol(&a, NULL, &l, NULL, &dg), NNFT_OK);

  ALLOC_LOOP("chol", NNFT_OK, nnft_linalg_chol(&a, &jo, &l, &d1, &dg), 0);
  ALLOC_LOOP("trisolve", NNFT_OK, nnft_linalg_trisolve(&l, &b, 1, 1, &x, &dg), 0);
  ALLOC_LOOP("cholsolve", NNFT_OK, nnft_linalg_cholsolve(&l, &b, &x, &dg), 0);
  ALLOC_LOOP("solve_spd", NNFT_OK, nnft_linalg_solve_spd(&a, &b, &x, &dg), 1);
  ALLOC_LOOP("solve", NNFT_OK, nnft_linalg_solve(&g, &b, &x, &dg), 2);
  ALLOC_LOOP("eigh", NNFT_OK, nnft_linalg_eigh(&a, NULL, &w, &v, &m, &dg), 3);
  ALLOC_LOOP("svd", NNFT_OK, nnft_linalg_svd(&r, 1, 0, &u, &s, &vt, &dg), 3);
  ALLOC_LOOP("svd full", NNFT_OK, nnft_linalg_svd(&r, 1, 1, &uf, &s, &vt, &dg), 3);
  ALLOC_LOOP("svd values", NNFT_OK, nnft_linalg_svd(&r, 0, 0, NULL, &s, NULL, &dg), 3);
  ALLOC_LOOP("lstsq", NNFT_OK, nnft_linalg_lstsq(&r, &rb, -1.0, &x, &s, &m, &dg), 4);
  ALLOC_LOOP("logdet_spd", NNFT_OK, nnft_linalg_logdet_spd(&a, &d1, &dg), 1);
  ALLOC_LOOP("logdet", NNFT_OK, nnft_linalg_logdet(&g, &d1, &d2, &dg), 2);
  ALLOC_LOOP("inv", NNFT_OK, nnft_linalg_inv(&g, &v, &dg), 2);
  ALLOC_LOOP("inv_spd", NNFT_OK, nnft_linalg_inv_spd(&a, &v, &dg), 0);

  /* failure paths allocate too (the eigenvalues for the message) */
  nnft_mat ind = symmat(n);
  for (size_t i = 0; i < n; i++) NNFT_AT(&ind, i, i) -= 10.0;
  ALLOC_LOOP("chol not PD", NNFT_ENOTPD, nnft_linalg_chol(&ind, NULL, &l, NULL, &dg), 2);
  CHECK(!isnan(dg.min_eig));
  ALLOC_LOOP("chol jitter exhausted", NNFT_ENOTPD, nnft_linalg_chol(&ind, &jo, &l, NULL, &dg),
             2);
  CHECK(dg.tries == 6);
  ALLOC_LOOP("solve_spd not PD", NNFT_ENOTPD, nnft_linalg_solve_spd(&ind, &b, &x, &dg), 3);
  ALLOC_LOOP("logdet_spd not PD", NNFT_ENOTPD, nnft_linalg_logdet_spd(&ind, &d1, &dg), 3);
  ALLOC_LOOP("inv_spd not PD", NNFT_ENOTPD, nnft_linalg_inv_spd(&ind, &v, &dg), 2);

  frees(&a, &g, &b, &x);
  frees(&l, &w, &v, &r);
  frees(&rb, &u, &s, &vt);
  frees(&uf, &ind, NULL, NULL);
}

int main(void) {
  test_chol();
  test_solves();
  test_eigh();
  test_svd();
  test_lstsq();
  test_det_inv();
  test_alloc_failures();
  return test_report("test_linalg");
}
