/* Unit tests of src/core/nnft_mat.[ch]: every function against hand-computed values, every
 * error status provoked, allocation failure for every allocating function, size overflow. */
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "nnft_mat.h"
#include "test_util.h"

/* A matrix from a row-major literal (easier to read in a test). */
static nnft_mat from_rows(size_t r, size_t c, const double *v) {
  nnft_mat m;
  if (nnft_mat_alloc(r, c, &m)) {
    memset(&m, 0, sizeof m);
    return m;
  }
  for (size_t i = 0; i < r; i++)
    for (size_t j = 0; j < c; j++) NNFT_AT(&m, i, j) = v[i * c + j];
  return m;
}

/* 1 if m equals the row-major literal v within tol. */
static int equals(const nnft_mat *m, size_t r, size_t c, const double *v, double tol) {
  if (m->rows != r || m->cols != c) return 0;
  for (size_t i = 0; i < r; i++)
    for (size_t j = 0; j < c; j++)
      if (!(fabs(NNFT_AT(m, i, j) - v[i * c + j]) <= tol)) return 0;
  return 1;
}

/* A header that pretends to be huge: only its shape is read by the functions given it. */
static nnft_mat fake(size_t rows, size_t cols, size_t ld) {
  static double dummy[1];
  nnft_mat m = {rows, cols, ld, dummy, 0};
  return m;
}

static void test_alloc_and_free(void) {
  size_t bytes;
  CHECK_STATUS(nnft_mat_bytes(3, 4, &bytes), NNFT_OK);
  CHECK(bytes == 96);
  CHECK_STATUS(nnft_mat_bytes(SIZE_MAX / 2, 3, &bytes), NNFT_EOVERFLOW);
  CHECK_STATUS(nnft_mat_bytes(SIZE_MAX / 8 + 1, 1, &bytes), NNFT_EOVERFLOW);

  nnft_mat m;
  CHECK_STATUS(nnft_mat_alloc(3, 2, &m), NNFT_OK);
  CHECK(m.rows == 3 && m.cols == 2 && m.ld == 3 && m.owns == 1 && m.data != NULL);
  CHECK(((uintptr_t)m.data % 64) == 0); /* 64-byte aligned */
  int zero = 1;
  for (size_t k = 0; k < 6; k++) zero &= m.data[k] == 0.0;
  CHECK(zero);
  nnft_mat_free(&m);
  CHECK(m.data == NULL && m.rows == 0 && m.owns == 0);
  nnft_mat_free(&m); /* twice is fine */
  nnft_mat_free(NULL);

  /* Empty shapes are valid matrices with ld >= 1. */
  CHECK_STATUS(nnft_mat_alloc(0, 0, &m), NNFT_OK);
  CHECK(m.ld == 1 && m.data != NULL);
  nnft_mat_free(&m);
  CHECK_STATUS(nnft_mat_alloc(0, 5, &m), NNFT_OK);
  CHECK(m.rows == 0 && m.cols == 5 && m.ld == 1);
  nnft_mat_free(&m);

  /* Size refusal happens before any allocation, and leaves *out untouched. */
  nnft_mat sentinel = {7, 7, 7, NULL, 0};
  m = sentinel;
  CHECK_STATUS(nnft_mat_alloc(SIZE_MAX / 2, 4, &m), NNFT_EOVERFLOW);   /* bytes overflow */
  CHECK_STATUS(nnft_mat_alloc((size_t)1 << 40, 1, &m), NNFT_EOVERFLOW); /* > BLAS int */
  CHECK_STATUS(nnft_mat_alloc(1, (size_t)INT_MAX + 1, &m), NNFT_EOVERFLOW);
  CHECK_STATUS(nnft_mat_alloc(0, (size_t)INT_MAX + 1, &m), NNFT_EOVERFLOW); /* even if empty */
  CHECK_STATUS(nnft_mat_alloc(1000000000, 1000000000, &m), NNFT_EOVERFLOW); /* 8e18 bytes */
  CHECK_STATUS(nnft_mat_alloc((size_t)1 << 20, (size_t)1 << 20, &m), NNFT_EOVERFLOW); /* 8 TiB */
  CHECK(m.rows == 7 && m.cols == 7 && m.data == NULL);
  CHECK(nnft_mat_max_bytes() >= ((size_t)1 << 20)); /* this machine has some memory */

  /* The allocator failing gives ENOMEM and leaves *out untouched. */
  test_alloc_fail_after(0);
  m = sentinel;
  CHECK_STATUS(nnft_mat_alloc(2, 2, &m), NNFT_ENOMEM);
  CHECK(m.rows == 7 && m.data == NULL);
  test_alloc_fail_after(-1);
}

static void test_view(void) {
  const double v[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  nnft_mat a = from_rows(3, 4, v), w, ww;
  CHECK_STATUS(nnft_mat_view(&a, 1, 1, 2, 3, &w), NNFT_OK);
  CHECK(w.rows == 2 && w.cols == 3 && w.ld == 3 && w.owns == 0);
  const double wv[] = {6, 7, 8, 10, 11, 12};
  CHECK(equals(&w, 2, 3, wv, 0));
  NNFT_AT(&w, 0, 0) = 60; /* shares storage */
  CHECK(NNFT_AT(&a, 1, 1) == 60);
  /* View of a view. */
  CHECK_STATUS(nnft_mat_view(&w, 1, 2, 1, 1, &ww), NNFT_OK);
  CHECK(ww.data[0] == 12 && ww.ld == 3);
  /* Freeing a view releases nothing (ASan would see a double free otherwise). */
  nnft_mat_free(&ww);
  CHECK(ww.data == NULL);
  /* Empty views at the edges are fine; anything past the edge is EDOM. */
  CHECK_STATUS(nnft_mat_view(&a, 3, 4, 0, 0, &w), NNFT_OK);
  CHECK_STATUS(nnft_mat_view(&a, 0, 4, 3, 0, &w), NNFT_OK);
  CHECK_STATUS(nnft_mat_view(&a, 0, 0, 3, 4, &w), NNFT_OK);
  CHECK_STATUS(nnft_mat_view(&a, 0, 0, 4, 1, &w), NNFT_EDOM);
  CHECK_STATUS(nnft_mat_view(&a, 0, 0, 1, 5, &w), NNFT_EDOM);
  CHECK_STATUS(nnft_mat_view(&a, 4, 0, 0, 0, &w), NNFT_EDOM);
  CHECK_STATUS(nnft_mat_view(&a, 0, 5, 0, 0, &w), NNFT_EDOM);
  CHECK_STATUS(nnft_mat_view(&a, 2, 0, SIZE_MAX, 1, &w), NNFT_EDOM); /* no wrap-around */
  CHECK_STATUS(nnft_mat_view(&a, 0, 3, 1, SIZE_MAX, &w), NNFT_EDOM);
  nnft_mat_free(&a);
}

static void test_copy_transpose_fill(void) {
  const double v[] = {1, 2, 3, 4, 5, 6};
  nnft_mat a = from_rows(2, 3, v), b, t, big, w;
  nnft_mat_alloc(2, 3, &b);
  CHECK_STATUS(nnft_mat_copy(&a, &b), NNFT_OK);
  CHECK(equals(&b, 2, 3, v, 0));
  CHECK_STATUS(nnft_mat_copy(&a, &a), NNFT_OK); /* identical: no-op */
  CHECK(equals(&a, 2, 3, v, 0));
  nnft_mat_alloc(3, 2, &t);
  CHECK_STATUS(nnft_mat_copy(&a, &t), NNFT_EDIM);
  CHECK_STATUS(nnft_mat_transpose(&a, &t), NNFT_OK);
  const double tv[] = {1, 4, 2, 5, 3, 6};
  CHECK(equals(&t, 3, 2, tv, 0));
  CHECK_STATUS(nnft_mat_transpose(&a, &b), NNFT_EDIM);

  /* Copy into and from views with different leading dimensions. */
  nnft_mat_alloc(4, 5, &big);
  nnft_mat_view(&big, 1, 2, 2, 3, &w);
  CHECK_STATUS(nnft_mat_copy(&a, &w), NNFT_OK);
  CHECK(NNFT_AT(&big, 1, 2) == 1 && NNFT_AT(&big, 2, 4) == 6 && NNFT_AT(&big, 0, 2) == 0 &&
        NNFT_AT(&big, 3, 4) == 0);
  nnft_mat_fill(&b, -1);
  CHECK_STATUS(nnft_mat_copy(&w, &b), NNFT_OK);
  CHECK(equals(&b, 2, 3, v, 0));

  /* Transpose of a view, large enough to cross the 32-blocking. */
  nnft_mat s, st;
  nnft_mat_alloc(70, 40, &s);
  for (size_t j = 0; j < 40; j++)
    for (size_t i = 0; i < 70; i++) NNFT_AT(&s, i, j) = (double)(i * 100 + j);
  nnft_mat sv;
  nnft_mat_view(&s, 3, 2, 65, 37, &sv);
  nnft_mat_alloc(37, 65, &st);
  CHECK_STATUS(nnft_mat_transpose(&sv, &st), NNFT_OK);
  int ok = 1;
  for (size_t j = 0; j < 65; j++)
    for (size_t i = 0; i < 37; i++) ok &= NNFT_AT(&st, i, j) == (double)((j + 3) * 100 + i + 2);
  CHECK(ok);

  /* fill and eye (non-square too), on a view: the rest of the parent untouched. */
  nnft_mat_fill(&big, 9);
  nnft_mat_fill(&w, 2);
  CHECK(NNFT_AT(&big, 1, 2) == 2 && NNFT_AT(&big, 0, 0) == 9 && NNFT_AT(&big, 2, 4) == 2 &&
        NNFT_AT(&big, 3, 4) == 9);
  nnft_mat_eye(&w);
  const double ev[] = {1, 0, 0, 0, 1, 0};
  CHECK(equals(&w, 2, 3, ev, 0));
  CHECK(NNFT_AT(&big, 0, 2) == 9);
  nnft_mat e3;
  nnft_mat_alloc(3, 2, &e3);
  nnft_mat_eye(&e3);
  const double e3v[] = {1, 0, 0, 1, 0, 0};
  CHECK(equals(&e3, 3, 2, e3v, 0));

  /* all_finite */
  CHECK(nnft_mat_all_finite(&a));
  NNFT_AT(&a, 1, 2) = NAN;
  CHECK(!nnft_mat_all_finite(&a));
  NNFT_AT(&a, 1, 2) = -INFINITY;
  CHECK(!nnft_mat_all_finite(&a));
  NNFT_AT(&big, 0, 0) = NAN; /* outside the view w: not seen */
  CHECK(nnft_mat_all_finite(&w));

  nnft_mat_free(&a); nnft_mat_free(&b); nnft_mat_free(&t); nnft_mat_free(&big);
  nnft_mat_free(&s); nnft_mat_free(&st); nnft_mat_free(&e3);
}

/* Copies between overlapping blocks of one matrix behave as if through a temporary. */
static void test_copy_overlap(void) {
  nnft_mat a, src, dst;
  nnft_mat_alloc(4, 4, &a);
  for (size_t k = 0; k < 16; k++) a.data[k] = (double)k; /* a(i,j) = i + 4j */
  nnft_mat_view(&a, 0, 0, 3, 3, &src);
  nnft_mat_view(&a, 1, 1, 3, 3, &dst);
  CHECK(nnft_mat_overlap(&src, &dst));
  CHECK_STATUS(nnft_mat_copy(&src, &dst), NNFT_OK);
  int ok = 1;
  for (size_t j = 0; j < 3; j++)
    for (size_t i = 0; i < 3; i++) ok &= NNFT_AT(&a, i + 1, j + 1) == (double)(i + 4 * j);
  CHECK(ok);
  /* the other direction */
  for (size_t k = 0; k < 16; k++) a.data[k] = (double)k;
  CHECK_STATUS(nnft_mat_copy(&dst, &src), NNFT_OK);
  ok = 1;
  for (size_t j = 0; j < 3; j++)
    for (size_t i = 0; i < 3; i++) ok &= NNFT_AT(&a, i, j) == (double)(i + 1 + 4 * (j + 1));
  CHECK(ok);
  /* one column shifted within itself: memmove, no allocation */
  for (size_t k = 0; k < 16; k++) a.data[k] = (double)k;
  nnft_mat c0, c1;
  nnft_mat_view(&a, 0, 0, 3, 1, &c0);
  nnft_mat_view(&a, 1, 0, 3, 1, &c1);
  test_alloc_fail_after(0);
  CHECK_STATUS(nnft_mat_copy(&c0, &c1), NNFT_OK);
  test_alloc_fail_after(-1);
  CHECK(a.data[0] == 0 && a.data[1] == 0 && a.data[2] == 1 && a.data[3] == 2);
  /* overlap predicate */
  nnft_mat l, r, e;
  nnft_mat_view(&a, 0, 0, 4, 2, &l);
  nnft_mat_view(&a, 0, 2, 4, 2, &r);
  nnft_mat_view(&a, 0, 0, 0, 0, &e);
  CHECK(!nnft_mat_overlap(&l, &r));
  CHECK(!nnft_mat_overlap(&e, &a));
  CHECK(nnft_mat_overlap(&a, &r));
  /* the temporary's allocation failing is reported and leaves dst unchanged */
  for (size_t k = 0; k < 16; k++) a.data[k] = (double)k;
  test_alloc_fail_after(0);
  CHECK_STATUS(nnft_mat_copy(&src, &dst), NNFT_ENOMEM);
  test_alloc_fail_after(-1);
  ok = 1;
  for (size_t k = 0; k < 16; k++) ok &= a.data[k] == (double)k;
  CHECK(ok);
  nnft_mat_free(&a);
}

static void test_binop(void) {
  const double av[] = {1, 2, 3, 4}, bv[] = {2, 4, 8, 16};
  nnft_mat a = from_rows(2, 2, av), b = from_rows(2, 2, bv), c, s, w3;
  nnft_mat_alloc(2, 2, &c);
  CHECK_STATUS(nnft_mat_binop(NNFT_OP_ADD, &a, &b, &c), NNFT_OK);
  const double add[] = {3, 6, 11, 20};
  CHECK(equals(&c, 2, 2, add, 0));
  CHECK_STATUS(nnft_mat_binop(NNFT_OP_SUB, &a, &b, &c), NNFT_OK);
  const double sub[] = {-1, -2, -5, -12};
  CHECK(equals(&c, 2, 2, sub, 0));
  CHECK_STATUS(nnft_mat_binop(NNFT_OP_MUL, &a, &b, &c), NNFT_OK);
  const double mul[] = {2, 8, 24, 64};
  CHECK(equals(&c, 2, 2, mul, 0));
  CHECK_STATUS(nnft_mat_binop(NNFT_OP_DIV, &a, &b, &c), NNFT_OK);
  const double dv[] = {0.5, 0.5, 0.375, 0.25};
  CHECK(equals(&c, 2, 2, dv, 0));
  CHECK_STATUS(nnft_mat_binop(NNFT_OP_POW, &a, &b, &c), NNFT_OK);
  const double pw[] = {1, 16, 6561, 4294967296.0};
  CHECK(equals(&c, 2, 2, pw, 0));
  /* a 1x1 b broadcasts */
  const double sv[] = {10};
  s = from_rows(1, 1, sv);
  CHECK_STATUS(nnft_mat_binop(NNFT_OP_SUB, &a, &s, &c), NNFT_OK);
  const double s10[] = {-9, -8, -7, -6};
  CHECK(equals(&c, 2, 2, s10, 0));
  /* c may be a */
  CHECK_STATUS(nnft_mat_binop(NNFT_OP_ADD, &a, &a, &a), NNFT_OK);
  const double twice[] = {2, 4, 6, 8};
  CHECK(equals(&a, 2, 2, twice, 0));
  /* shape errors */
  nnft_mat_alloc(2, 3, &w3);
  CHECK_STATUS(nnft_mat_binop(NNFT_OP_ADD, &a, &w3, &c), NNFT_EDIM);
  CHECK_STATUS(nnft_mat_binop(NNFT_OP_ADD, &a, &b, &w3), NNFT_EDIM);
  CHECK_STATUS(nnft_mat_binop(NNFT_OP_ADD, &a, &s, &w3), NNFT_EDIM);
  /* binop on views of a bigger matrix */
  nnft_mat big, va, vb, vc;
  nnft_mat_alloc(5, 5, &big);
  for (size_t k = 0; k < 25; k++) big.data[k] = (double)k;
  nnft_mat_view(&big, 0, 0, 2, 2, &va);
  nnft_mat_view(&big, 3, 3, 2, 2, &vb);
  CHECK_STATUS(nnft_mat_binop(NNFT_OP_MUL, &va, &vb, &c), NNFT_OK);
  const double vm[] = {0 * 18, 5 * 23, 1 * 19, 6 * 24};
  CHECK(equals(&c, 2, 2, vm, 0));
  nnft_mat_view(&big, 2, 0, 2, 2, &vc); /* result written into a view */
  CHECK_STATUS(nnft_mat_binop(NNFT_OP_ADD, &va, &vb, &vc), NNFT_OK);
  CHECK(NNFT_AT(&big, 2, 0) == 18 && NNFT_AT(&big, 3, 1) == 6 + 24 && NNFT_AT(&big, 4, 0) == 4);

  /* scalar ops, both orders */
  nnft_mat_free(&a);
  a = from_rows(2, 2, av);
  CHECK_STATUS(nnft_mat_scalar_op(NNFT_OP_ADD, &a, 1, 0, &c), NNFT_OK);
  const double p1[] = {2, 3, 4, 5};
  CHECK(equals(&c, 2, 2, p1, 0));
  CHECK_STATUS(nnft_mat_scalar_op(NNFT_OP_MUL, &a, -2, 1, &c), NNFT_OK);
  const double m2[] = {-2, -4, -6, -8};
  CHECK(equals(&c, 2, 2, m2, 0));
  CHECK_STATUS(nnft_mat_scalar_op(NNFT_OP_SUB, &a, 1, 0, &c), NNFT_OK);
  const double s1[] = {0, 1, 2, 3};
  CHECK(equals(&c, 2, 2, s1, 0));
  CHECK_STATUS(nnft_mat_scalar_op(NNFT_OP_SUB, &a, 1, 1, &c), NNFT_OK);
  const double s1r[] = {0, -1, -2, -3};
  CHECK(equals(&c, 2, 2, s1r, 0));
  CHECK_STATUS(nnft_mat_scalar_op(NNFT_OP_DIV, &a, 2, 0, &c), NNFT_OK);
  const double d2[] = {0.5, 1, 1.5, 2};
  CHECK(equals(&c, 2, 2, d2, 0));
  CHECK_STATUS(nnft_mat_scalar_op(NNFT_OP_DIV, &a, 12, 1, &c), NNFT_OK);
  const double d12[] = {12, 6, 4, 3};
  CHECK(equals(&c, 2, 2, d12, 0));
  CHECK_STATUS(nnft_mat_scalar_op(NNFT_OP_POW, &a, 2, 0, &c), NNFT_OK);
  const double sq[] = {1, 4, 9, 16};
  CHECK(equals(&c, 2, 2, sq, 0));
  CHECK_STATUS(nnft_mat_scalar_op(NNFT_OP_POW, &a, 2, 1, &c), NNFT_OK);
  const double ex[] = {2, 4, 8, 16};
  CHECK(equals(&c, 2, 2, ex, 0));
  CHECK_STATUS(nnft_mat_scalar_op(NNFT_OP_ADD, &a, 1, 0, &w3), NNFT_EDIM);
  /* division by zero is IEEE, not an error */
  CHECK_STATUS(nnft_mat_scalar_op(NNFT_OP_DIV, &a, 0, 0, &c), NNFT_OK);
  CHECK(isinf(c.data[0]) && c.data[0] > 0);

  nnft_mat_free(&a); nnft_mat_free(&b); nnft_mat_free(&c); nnft_mat_free(&s);
  nnft_mat_free(&w3); nnft_mat_free(&big);
}

static void test_unary(void) {
  CHECK(strcmp(nnft_unary_name(NNFT_FN_EXP), "exp") == 0);
  CHECK(strcmp(nnft_unary_name(NNFT_FN_NEG), "neg") == 0);
  CHECK(strcmp(nnft_unary_name((nnft_unary_fn)NNFT_FN_COUNT), "?") == 0);
  CHECK(strcmp(nnft_unary_name((nnft_unary_fn)-1), "?") == 0);
  CHECK(nnft_unary_lookup("erf") == NNFT_FN_ERF);
  CHECK(nnft_unary_lookup("sigmoid") == NNFT_FN_SIGMOID);
  CHECK(nnft_unary_lookup("nope") == -1);
  CHECK(nnft_unary_lookup("") == -1);
  for (int k = 0; k < NNFT_FN_COUNT; k++) /* names and lookup agree */
    CHECK(nnft_unary_lookup(nnft_unary_name((nnft_unary_fn)k)) == k);

  const double xv[] = {-1.5, 0, 0.5, 2};
  nnft_mat x = from_rows(1, 4, xv), y, bad;
  nnft_mat_alloc(1, 4, &y);
  struct {
    nnft_unary_fn f;
    double want[4];
  } cases[] = {
      {NNFT_FN_EXP, {exp(-1.5), 1, exp(0.5), exp(2)}},
      {NNFT_FN_SQRT, {NAN, 0, sqrt(0.5), sqrt(2)}},
      {NNFT_FN_ABS, {1.5, 0, 0.5, 2}},
      {NNFT_FN_ERF, {-0.96610514647531076, 0, 0.52049987781304654, 0.99532226501895273}},
      {NNFT_FN_TANH, {tanh(-1.5), 0, tanh(0.5), tanh(2)}},
      {NNFT_FN_SIN, {sin(-1.5), 0, sin(0.5), sin(2)}},
      {NNFT_FN_COS, {cos(-1.5), 1, cos(0.5), cos(2)}},
      {NNFT_FN_SQUARE, {2.25, 0, 0.25, 4}},
      {NNFT_FN_RELU, {0, 0, 0.5, 2}},
      {NNFT_FN_SIGN, {-1, 0, 1, 1}},
      {NNFT_FN_SIGMOID, {1 / (1 + exp(1.5)), 0.5, 1 / (1 + exp(-0.5)), 1 / (1 + exp(-2))}},
      {NNFT_FN_LOG1P, {NAN, 0, log(1.5), log(3)}},
      {NNFT_FN_EXPM1, {exp(-1.5) - 1, 0, exp(0.5) - 1, exp(2) - 1}},
      {NNFT_FN_FLOOR, {-2, 0, 0, 2}},
      {NNFT_FN_CEIL, {-1, 0, 1, 2}},
      {NNFT_FN_NEG, {1.5, 0, -0.5, -2}},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    CHECK_STATUS(nnft_mat_map(cases[c].f, &x, &y), NNFT_OK);
    for (int k = 0; k < 4; k++) {
      if (isnan(cases[c].want[k])) CHECK(isnan(y.data[k]));
      else CHECK_NEAR(y.data[k], cases[c].want[k], 1e-15 * (1 + fabs(cases[c].want[k])));
    }
  }
  /* log: log(0) = -inf, log(negative) = NaN */
  CHECK_STATUS(nnft_mat_map(NNFT_FN_LOG, &x, &y), NNFT_OK);
  CHECK(isnan(y.data[0]) && isinf(y.data[1]) && y.data[1] < 0);
  CHECK_NEAR(y.data[3], log(2), 1e-15);
  /* sigmoid is stable at both ends */
  const double ends[] = {-800, 800, NAN, -INFINITY};
  nnft_mat e = from_rows(1, 4, ends);
  CHECK_STATUS(nnft_mat_map(NNFT_FN_SIGMOID, &e, &y), NNFT_OK);
  CHECK(y.data[0] == 0 && y.data[1] == 1 && isnan(y.data[2]) && y.data[3] == 0);
  /* NaN propagates through every function */
  const double nanv[] = {NAN};
  nnft_mat n1 = from_rows(1, 1, nanv), n2;
  nnft_mat_alloc(1, 1, &n2);
  for (int k = 0; k < NNFT_FN_COUNT; k++) {
    CHECK_STATUS(nnft_mat_map((nnft_unary_fn)k, &n1, &n2), NNFT_OK);
    CHECK(isnan(n2.data[0]));
  }
  /* in place, errors */
  CHECK_STATUS(nnft_mat_map(NNFT_FN_SQUARE, &x, &x), NNFT_OK);
  CHECK(x.data[0] == 2.25 && x.data[3] == 4);
  nnft_mat_alloc(4, 1, &bad);
  CHECK_STATUS(nnft_mat_map(NNFT_FN_EXP, &x, &bad), NNFT_EDIM);
  CHECK_STATUS(nnft_mat_map((nnft_unary_fn)NNFT_FN_COUNT, &x, &y), NNFT_EDOM);
  CHECK_STATUS(nnft_mat_map((nnft_unary_fn)-1, &x, &y), NNFT_EDOM);
  nnft_mat_free(&x); nnft_mat_free(&y); nnft_mat_free(&bad); nnft_mat_free(&e);
  nnft_mat_free(&n1); nnft_mat_free(&n2);
}

/* Reference product of (possibly transposed) views, naive triple loop. */
static void naive_gemm(double alpha, const nnft_mat *a, int ta, const nnft_mat *b, int tb,
                       double beta, nnft_mat *c) {
  size_t k = ta ? a->rows : a->cols;
  for (size_t i = 0; i < c->rows; i++)
    for (size_t j = 0; j < c->cols; j++) {
      double s = 0;
      for (size_t l = 0; l < k; l++)
        s += (ta ? NNFT_AT(a, l, i) : NNFT_AT(a, i, l)) * (tb ? NNFT_AT(b, j, l) : NNFT_AT(b, l, j));
      NNFT_AT(c, i, j) = alpha * s + beta * NNFT_AT(c, i, j);
    }
}

static double max_diff(const nnft_mat *a, const nnft_mat *b) {
  double d;
  if (nnft_mat_max_abs_diff(a, b, &d)) return INFINITY;
  return d;
}

static void test_gemm(void) {
  const double av[] = {1, 2, 3, 4, 5, 6}, bv[] = {7, 8, 9, 10, 11, 12};
  nnft_mat a = from_rows(2, 3, av), b = from_rows(3, 2, bv), c, c3, c2x3;
  nnft_mat_alloc(2, 2, &c);
  CHECK_STATUS(nnft_mat_gemm(1, &a, 0, &b, 0, 0, &c), NNFT_OK);
  const double ab[] = {58, 64, 139, 154};
  CHECK(equals(&c, 2, 2, ab, 0));
  /* alpha and beta */
  CHECK_STATUS(nnft_mat_gemm(2, &a, 0, &b, 0, -1, &c), NNFT_OK);
  const double ab2[] = {58, 64, 139, 154};
  CHECK(equals(&c, 2, 2, ab2, 0)); /* 2ab - ab = ab */
  /* a aᵀ via trans_b, aᵀ a via trans_a */
  CHECK_STATUS(nnft_mat_gemm(1, &a, 0, &a, 1, 0, &c), NNFT_OK);
  const double aat[] = {14, 32, 32, 77};
  CHECK(equals(&c, 2, 2, aat, 0));
  nnft_mat_alloc(3, 3, &c3);
  CHECK_STATUS(nnft_mat_gemm(1, &a, 1, &a, 0, 0, &c3), NNFT_OK);
  const double ata[] = {17, 22, 27, 22, 29, 36, 27, 36, 45};
  CHECK(equals(&c3, 3, 3, ata, 0));
  /* bᵀ aᵀ = (ab)ᵀ with both transposed */
  CHECK_STATUS(nnft_mat_gemm(1, &b, 1, &a, 1, 0, &c), NNFT_OK);
  const double abt[] = {58, 139, 64, 154};
  CHECK(equals(&c, 2, 2, abt, 0));
  /* matrix-vector: dgemv path, plain and transposed */
  const double xv[] = {1, -1, 2};
  nnft_mat x = from_rows(3, 1, xv), y, y3;
  nnft_mat_alloc(2, 1, &y);
  CHECK_STATUS(nnft_mat_gemm(1, &a, 0, &x, 0, 0, &y), NNFT_OK);
  const double ax[] = {5, 11};
  CHECK(equals(&y, 2, 1, ax, 0));
  nnft_mat_alloc(3, 1, &y3);
  const double yv[] = {1, 2};
  nnft_mat yy = from_rows(2, 1, yv);
  CHECK_STATUS(nnft_mat_gemm(1, &a, 1, &yy, 0, 0, &y3), NNFT_OK);
  const double aty[] = {9, 12, 15};
  CHECK(equals(&y3, 3, 1, aty, 0));
  /* row vector times matrix (trans_b with one column: not the gemv path) */
  nnft_mat r, r2;
  nnft_mat_alloc(1, 2, &r2);
  const double rv[] = {1, 1, 1};
  r = from_rows(1, 3, rv);
  CHECK_STATUS(nnft_mat_gemm(1, &r, 0, &b, 0, 0, &r2), NNFT_OK);
  const double rb[] = {27, 30};
  CHECK(equals(&r2, 1, 2, rb, 0));
  /* shape errors */
  nnft_mat_alloc(2, 3, &c2x3);
  CHECK_STATUS(nnft_mat_gemm(1, &a, 0, &a, 0, 0, &c), NNFT_EDIM);   /* inner 3 vs 2 */
  CHECK_STATUS(nnft_mat_gemm(1, &a, 0, &b, 0, 0, &c2x3), NNFT_EDIM); /* wrong output */
  CHECK_STATUS(nnft_mat_gemm(1, &a, 1, &b, 0, 0, &c), NNFT_EDIM);
  /* dimensions BLAS cannot index */
  nnft_mat huge_a = fake((size_t)INT_MAX + 1, 1, (size_t)INT_MAX + 1), h1 = fake(1, 1, 1),
           hc = fake((size_t)INT_MAX + 1, 1, (size_t)INT_MAX + 1);
  CHECK_STATUS(nnft_mat_gemm(1, &huge_a, 0, &h1, 0, 0, &hc), NNFT_EOVERFLOW);
  nnft_mat ld_a = fake(1, 1, (size_t)INT_MAX + 1);
  CHECK_STATUS(nnft_mat_gemm(1, &ld_a, 0, &h1, 0, 0, &h1), NNFT_EOVERFLOW);

  /* k = 0: the product is empty, so C = beta C */
  nnft_mat e0, e1;
  nnft_mat_alloc(2, 0, &e0);
  nnft_mat_alloc(0, 2, &e1);
  nnft_mat_fill(&c, 3);
  CHECK_STATUS(nnft_mat_gemm(1, &e0, 0, &e1, 0, 2, &c), NNFT_OK);
  const double six[] = {6, 6, 6, 6};
  CHECK(equals(&c, 2, 2, six, 0));
  c.data[0] = NAN; /* beta = 0 overwrites, even NaN */
  CHECK_STATUS(nnft_mat_gemm(1, &e0, 0, &e1, 0, 0, &c), NNFT_OK);
  const double zero4[] = {0, 0, 0, 0};
  CHECK(equals(&c, 2, 2, zero4, 0));
  /* m = 0 or n = 0: nothing to do */
  nnft_mat z0;
  nnft_mat_alloc(0, 0, &z0);
  CHECK_STATUS(nnft_mat_gemm(1, &e1, 1, &e1, 0, 0, &c), NNFT_OK); /* 2x0 * 0x2 */
  CHECK_STATUS(nnft_mat_gemm(1, &e1, 0, &e0, 0, 0, &z0), NNFT_OK); /* 0x2 * 2x0 */

  /* Views with leading dimensions: blocks of bigger matrices, every transpose combination,
   * against the naive product; also with C itself a view. */
  nnft_mat P, Q, R, pa, qb, rc, ref;
  nnft_mat_alloc(9, 8, &P);
  nnft_mat_alloc(7, 10, &Q);
  nnft_mat_alloc(6, 9, &R);
  for (size_t k = 0; k < 72; k++) P.data[k] = sin((double)k);
  for (size_t k = 0; k < 70; k++) Q.data[k] = cos(0.7 * (double)k);
  for (int ta = 0; ta < 2; ta++)
    for (int tb = 0; tb < 2; tb++)
      for (size_t n = 1; n <= 4; n += 3) { /* n = 1 exercises the gemv path */
        size_t m = 4, k = 5;
        nnft_mat_view(&P, 2, 1, ta ? k : m, ta ? m : k, &pa);
        nnft_mat_view(&Q, 1, 3, tb ? n : k, tb ? k : n, &qb);
        nnft_mat_fill(&R, 0.25);
        nnft_mat_view(&R, 1, 2, m, n, &rc);
        nnft_mat_alloc(m, n, &ref);
        nnft_mat_fill(&ref, 0.25);
        naive_gemm(1.5, &pa, ta, &qb, tb, -0.5, &ref);
        CHECK_STATUS(nnft_mat_gemm(1.5, &pa, ta, &qb, tb, -0.5, &rc), NNFT_OK);
        CHECK(max_diff(&rc, &ref) < 1e-13);
        CHECK(NNFT_AT(&R, 0, 2) == 0.25 && NNFT_AT(&R, 5, 8) == 0.25); /* outside untouched */
        nnft_mat_free(&ref);
      }
  nnft_mat_free(&P); nnft_mat_free(&Q); nnft_mat_free(&R);

  /* Every dispatch path (tiny loop, ddot, the two gemv forms, dgemm) on strided views, in every
   * transpose combination, against the naive product. */
  const size_t shapes[][3] = {{3, 3, 3}, {1, 1, 40}, {30, 1, 40}, {1, 30, 40}, {20, 25, 30}};
  nnft_mat_alloc(50, 50, &P);
  nnft_mat_alloc(50, 50, &Q);
  nnft_mat_alloc(50, 50, &R);
  for (size_t k = 0; k < 2500; k++) P.data[k] = sin(0.37 * (double)k), Q.data[k] = cos(0.11 * k);
  for (size_t sh = 0; sh < sizeof shapes / sizeof shapes[0]; sh++)
    for (int ta = 0; ta < 2; ta++)
      for (int tb = 0; tb < 2; tb++) {
        size_t m = shapes[sh][0], n = shapes[sh][1], k = shapes[sh][2];
        nnft_mat_view(&P, 3, 2, ta ? k : m, ta ? m : k, &pa);
        nnft_mat_view(&Q, 1, 4, tb ? n : k, tb ? k : n, &qb);
        nnft_mat_fill(&R, 0.5);
        nnft_mat_view(&R, 2, 3, m, n, &rc);
        nnft_mat_alloc(m, n, &ref);
        nnft_mat_fill(&ref, 0.5);
        naive_gemm(0.75, &pa, ta, &qb, tb, 2.0, &ref);
        CHECK_STATUS(nnft_mat_gemm(0.75, &pa, ta, &qb, tb, 2.0, &rc), NNFT_OK);
        CHECK(max_diff(&rc, &ref) < 1e-12);
        CHECK(NNFT_AT(&R, 1, 3) == 0.5 && NNFT_AT(&R, 2, 2) == 0.5); /* outside untouched */
        nnft_mat_free(&ref);
      }
  nnft_mat_free(&P); nnft_mat_free(&Q); nnft_mat_free(&R);
  nnft_mat_free(&a); nnft_mat_free(&b); nnft_mat_free(&c); nnft_mat_free(&c3);
  nnft_mat_free(&c2x3); nnft_mat_free(&x); nnft_mat_free(&y); nnft_mat_free(&y3);
  nnft_mat_free(&yy); nnft_mat_free(&r); nnft_mat_free(&r2); nnft_mat_free(&e0);
  nnft_mat_free(&e1); nnft_mat_free(&z0);
}

static void test_syrk(void) {
  const double av[] = {1, 2, 3, 4, 5, 6};
  nnft_mat a = from_rows(2, 3, av), c2, c3;
  nnft_mat_alloc(2, 2, &c2);
  nnft_mat_alloc(3, 3, &c3);
  CHECK_STATUS(nnft_mat_syrk(&a, 0, &c2), NNFT_OK);
  const double aat[] = {14, 32, 32, 77};
  CHECK(equals(&c2, 2, 2, aat, 0));
  CHECK_STATUS(nnft_mat_syrk(&a, 1, &c3), NNFT_OK);
  const double ata[] = {17, 22, 27, 22, 29, 36, 27, 36, 45};
  CHECK(equals(&c3, 3, 3, ata, 0));
  CHECK_STATUS(nnft_mat_syrk(&a, 0, &c3), NNFT_EDIM);
  CHECK_STATUS(nnft_mat_syrk(&a, 1, &c2), NNFT_EDIM);
  /* view input and view output */
  nnft_mat big, v, cbig, cv, ref;
  nnft_mat_alloc(6, 7, &big);
  for (size_t k = 0; k < 42; k++) big.data[k] = (double)(k % 5) - 2.0;
  nnft_mat_view(&big, 1, 2, 4, 3, &v);
  nnft_mat_alloc(5, 5, &cbig);
  nnft_mat_fill(&cbig, 7);
  nnft_mat_view(&cbig, 1, 1, 3, 3, &cv);
  CHECK_STATUS(nnft_mat_syrk(&v, 1, &cv), NNFT_OK);
  nnft_mat_alloc(3, 3, &ref);
  naive_gemm(1, &v, 1, &v, 0, 0, &ref);
  CHECK(max_diff(&cv, &ref) == 0);
  CHECK(NNFT_AT(&cbig, 0, 0) == 7 && NNFT_AT(&cbig, 4, 4) == 7 && NNFT_AT(&cbig, 0, 2) == 7);
  /* k = 0: zero matrix */
  nnft_mat e;
  nnft_mat_alloc(0, 3, &e);
  nnft_mat_fill(&c3, 5);
  CHECK_STATUS(nnft_mat_syrk(&e, 1, &c3), NNFT_OK);
  const double z9[9] = {0};
  CHECK(equals(&c3, 3, 3, z9, 0));
  nnft_mat z0;
  nnft_mat_alloc(0, 0, &z0);
  CHECK_STATUS(nnft_mat_syrk(&e, 0, &z0), NNFT_OK); /* n = 0 */
  nnft_mat ha = fake(1, 1, (size_t)INT_MAX + 1), hc = fake(1, 1, 1);
  CHECK_STATUS(nnft_mat_syrk(&ha, 0, &hc), NNFT_EOVERFLOW);
  nnft_mat_free(&a); nnft_mat_free(&c2); nnft_mat_free(&c3); nnft_mat_free(&big);
  nnft_mat_free(&cbig); nnft_mat_free(&ref); nnft_mat_free(&e); nnft_mat_free(&z0);
}

static void test_reduce(void) {
  /* a = [1 2 3; 4 5 9] */
  const double av[] = {1, 2, 3, 4, 5, 9};
  nnft_mat a = from_rows(2, 3, av), s, r1, r2, bad;
  nnft_mat_alloc(1, 1, &s);
  nnft_mat_alloc(1, 3, &r1);
  nnft_mat_alloc(2, 1, &r2);
  CHECK_STATUS(nnft_mat_reduce(NNFT_RED_SUM, &a, 0, &s), NNFT_OK);
  CHECK(s.data[0] == 24);
  CHECK_STATUS(nnft_mat_reduce(NNFT_RED_MEAN, &a, 0, &s), NNFT_OK);
  CHECK(s.data[0] == 4);
  CHECK_STATUS(nnft_mat_reduce(NNFT_RED_VAR, &a, 0, &s), NNFT_OK);
  CHECK_NEAR(s.data[0], 8.0, 1e-14); /* deviations -3 -2 -1 0 1 5: 40 / 5 */
  CHECK_STATUS(nnft_mat_reduce(NNFT_RED_MIN, &a, 0, &s), NNFT_OK);
  CHECK(s.data[0] == 1);
  CHECK_STATUS(nnft_mat_reduce(NNFT_RED_MAX, &a, 0, &s), NNFT_OK);
  CHECK(s.data[0] == 9);
  /* dim 1: per column */
  CHECK_STATUS(nnft_mat_reduce(NNFT_RED_SUM, &a, 1, &r1), NNFT_OK);
  const double cs[] = {5, 7, 12};
  CHECK(equals(&r1, 1, 3, cs, 0));
  CHECK_STATUS(nnft_mat_reduce(NNFT_RED_MEAN, &a, 1, &r1), NNFT_OK);
  const double cm[] = {2.5, 3.5, 6};
  CHECK(equals(&r1, 1, 3, cm, 0));
  CHECK_STATUS(nnft_mat_reduce(NNFT_RED_VAR, &a, 1, &r1), NNFT_OK);
  const double cvv[] = {4.5, 4.5, 18};
  CHECK(equals(&r1, 1, 3, cvv, 1e-14));
  CHECK_STATUS(nnft_mat_reduce(NNFT_RED_MIN, &a, 1, &r1), NNFT_OK);
  const double cmin[] = {1, 2, 3};
  CHECK(equals(&r1, 1, 3, cmin, 0));
  CHECK_STATUS(nnft_mat_reduce(NNFT_RED_MAX, &a, 1, &r1), NNFT_OK);
  const double cmax[] = {4, 5, 9};
  CHECK(equals(&r1, 1, 3, cmax, 0));
  /* dim 2: per row */
  CHECK_STATUS(nnft_mat_reduce(NNFT_RED_SUM, &a, 2, &r2), NNFT_OK);
  const double rs[] = {6, 18};
  CHECK(equals(&r2, 2, 1, rs, 0));
  CHECK_STATUS(nnft_mat_reduce(NNFT_RED_MEAN, &a, 2, &r2), NNFT_OK);
  const double rm[] = {2, 6};
  CHECK(equals(&r2, 2, 1, rm, 0));
  CHECK_STATUS(nnft_mat_reduce(NNFT_RED_VAR, &a, 2, &r2), NNFT_OK);
  const double rv[] = {1, 7};
  CHECK(equals(&r2, 2, 1, rv, 1e-14));
  CHECK_STATUS(nnft_mat_reduce(NNFT_RED_MIN, &a, 2, &r2), NNFT_OK);
  const double rmin[] = {1, 4};
  CHECK(equals(&r2, 2, 1, rmin, 0));
  CHECK_STATUS(nnft_mat_reduce(NNFT_RED_MAX, &a, 2, &r2), NNFT_OK);
  const double rmax[] = {3, 9};
  CHECK(equals(&r2, 2, 1, rmax, 0));
  /* output shape and dim errors */
  CHECK_STATUS(nnft_mat_reduce(NNFT_RED_SUM, &a, 0, &r1), NNFT_EDIM);
  CHECK_STATUS(nnft_mat_reduce(NNFT_RED_SUM, &a, 1, &r2), NNFT_EDIM);
  CHECK_STATUS(nnft_mat_reduce(NNFT_RED_SUM, &a, 2, &r1), NNFT_EDIM);
  CHECK_STATUS(nnft_mat_reduce(NNFT_RED_SUM, &a, 3, &s), NNFT_EDOM);
  CHECK_STATUS(nnft_mat_reduce(NNFT_RED_SUM, &a, -1, &s), NNFT_EDOM);
  CHECK_STATUS(nnft_mat_reduce((nnft_reduce)99, &a, 0, &s), NNFT_EDOM);

  /* Non-contiguous view: block (2..3, 2..4) of a 4x5 matrix b(i,j) = 10 i + j (1-based). */
  nnft_mat b, v, v1, v2;
  nnft_mat_alloc(4, 5, &b);
  for (size_t j = 0; j < 5; j++)
    for (size_t i = 0; i < 4; i++) NNFT_AT(&b, i, j) = 10.0 * (double)(i + 1) + (double)(j + 1);
  NNFT_AT(&b, 0, 0) = 1000; /* outside the view: must not leak into reductions */
  NNFT_AT(&b, 3, 4) = -1000;
  nnft_mat_view(&b, 1, 1, 2, 3, &v); /* [22 23 24; 32 33 34] */
  nnft_mat_alloc(1, 3, &v1);
  nnft_mat_alloc(2, 1, &v2);
  CHECK_STATUS(nnft_mat_reduce(NNFT_RED_SUM, &v, 0, &s), NNFT_OK);
  CHECK(s.data[0] == 168);
  CHECK_STATUS(nnft_mat_reduce(NNFT_RED_MEAN, &v, 0, &s), NNFT_OK);
  CHECK(s.data[0] == 28);
  CHECK_STATUS(nnft_mat_reduce(NNFT_RED_VAR, &v, 0, &s), NNFT_OK);
  CHECK_NEAR(s.data[0], 154.0 / 5.0, 1e-12); /* deviations +-4, +-5, +-6 */
  CHECK_STATUS(nnft_mat_reduce(NNFT_RED_MIN, &v, 0, &s), NNFT_OK);
  CHECK(s.data[0] == 22);
  CHECK_STATUS(nnft_mat_reduce(NNFT_RED_MAX, &v, 0, &s), NNFT_OK);
  CHECK(s.data[0] == 34);
  CHECK_STATUS(nnft_mat_reduce(NNFT_RED_SUM, &v, 1, &v1), NNFT_OK);
  const double vs1[] = {54, 56, 58};
  CHECK(equals(&v1, 1, 3, vs1, 0));
  CHECK_STATUS(nnft_mat_reduce(NNFT_RED_MAX, &v, 2, &v2), NNFT_OK);
  const double vm2[] = {24, 34};
  CHECK(equals(&v2, 2, 1, vm2, 0));
  CHECK_STATUS(nnft_mat_reduce(NNFT_RED_VAR, &v, 2, &v2), NNFT_OK);
  const double vv2[] = {1, 1};
  CHECK(equals(&v2, 2, 1, vv2, 1e-14));
  /* a row view (1 x n, ld 4) */
  nnft_mat row;
  nnft_mat_view(&b, 2, 0, 1, 5, &row);
  CHECK_STATUS(nnft_mat_reduce(NNFT_RED_SUM, &row, 0, &s), NNFT_OK);
  CHECK(s.data[0] == 165);
  CHECK_STATUS(nnft_mat_reduce(NNFT_RED_MIN, &row, 0, &s), NNFT_OK);
  CHECK(s.data[0] == 31);

  /* Empty reductions: sum 0, everything else EDOM; var needs 2 values. */
  nnft_mat e, e1, one;
  nnft_mat_alloc(0, 3, &e);
  nnft_mat_alloc(1, 3, &e1);
  CHECK_STATUS(nnft_mat_reduce(NNFT_RED_SUM, &e, 0, &s), NNFT_OK);
  CHECK(s.data[0] == 0);
  CHECK_STATUS(nnft_mat_reduce(NNFT_RED_SUM, &e, 1, &e1), NNFT_OK);
  CHECK(e1.data[0] == 0 && e1.data[2] == 0);
  CHECK_STATUS(nnft_mat_reduce(NNFT_RED_MEAN, &e, 0, &s), NNFT_EDOM);
  CHECK_STATUS(nnft_mat_reduce(NNFT_RED_MIN, &e, 0, &s), NNFT_EDOM);
  CHECK_STATUS(nnft_mat_reduce(NNFT_RED_MAX, &e, 1, &e1), NNFT_EDOM);
  CHECK_STATUS(nnft_mat_reduce(NNFT_RED_VAR, &e, 0, &s), NNFT_EDOM);
  const double ov[] = {5};
  one = from_rows(1, 1, ov);
  CHECK_STATUS(nnft_mat_reduce(NNFT_RED_VAR, &one, 0, &s), NNFT_EDOM);
  CHECK_STATUS(nnft_mat_reduce(NNFT_RED_VAR, &a, 2, &r2), NNFT_OK); /* 3 per row: fine */
  nnft_mat a1, a1r;
  nnft_mat_view(&a, 0, 0, 1, 3, &a1);
  nnft_mat_alloc(1, 3, &a1r);
  CHECK_STATUS(nnft_mat_reduce(NNFT_RED_VAR, &a1, 1, &a1r), NNFT_EDOM); /* 1 per column */

  /* NaN: sum/mean/var propagate; min/max return NaN wherever NaN sits (first, middle, last) */
  for (size_t pos = 0; pos < 6; pos++) {
    nnft_mat c;
    nnft_mat_alloc(2, 3, &c);
    nnft_mat_copy(&a, &c);
    c.data[pos] = NAN;
    for (int r = NNFT_RED_SUM; r <= NNFT_RED_MAX; r++) {
      CHECK_STATUS(nnft_mat_reduce((nnft_reduce)r, &c, 0, &s), NNFT_OK);
      CHECK(isnan(s.data[0]));
    }
    CHECK_STATUS(nnft_mat_reduce(NNFT_RED_MIN, &c, 1, &r1), NNFT_OK);
    CHECK(isnan(r1.data[pos / 2]) && !isnan(r1.data[(pos / 2 + 1) % 3]));
    CHECK_STATUS(nnft_mat_reduce(NNFT_RED_MAX, &c, 2, &r2), NNFT_OK);
    CHECK(isnan(r2.data[pos % 2]) && !isnan(r2.data[1 - pos % 2]));
    nnft_mat_free(&c);
  }
  /* Inf: sums are IEEE (compensation must not turn Inf into NaN) */
  const double infv[] = {INFINITY, 1, 2, 3};
  nnft_mat inf = from_rows(4, 1, infv), infr;
  CHECK_STATUS(nnft_mat_reduce(NNFT_RED_SUM, &inf, 0, &s), NNFT_OK);
  CHECK(isinf(s.data[0]) && s.data[0] > 0);
  CHECK_STATUS(nnft_mat_reduce(NNFT_RED_MAX, &inf, 0, &s), NNFT_OK);
  CHECK(isinf(s.data[0]));
  CHECK_STATUS(nnft_mat_reduce(NNFT_RED_MIN, &inf, 0, &s), NNFT_OK);
  CHECK(s.data[0] == 1);
  nnft_mat_alloc(1, 4, &infr);
  nnft_mat_transpose(&inf, &infr);
  nnft_mat infv_, infcol;
  nnft_mat_alloc(3, 4, &infv_);
  nnft_mat_view(&infv_, 1, 0, 1, 4, &infcol); /* strided path */
  nnft_mat_copy(&infr, &infcol);
  CHECK_STATUS(nnft_mat_reduce(NNFT_RED_SUM, &infcol, 0, &s), NNFT_OK);
  CHECK(isinf(s.data[0]) && s.data[0] > 0);
  CHECK_STATUS(nnft_mat_reduce(NNFT_RED_MEAN, &infcol, 0, &s), NNFT_OK);
  CHECK(isinf(s.data[0]));
  CHECK(isinf(nnft_sum_compensated(infv, 4, 1)));
  const double pm[] = {INFINITY, -INFINITY};
  CHECK(isnan(nnft_sum_compensated(pm, 2, 1)));

  /* Compensation: 1e16 + 1 + 1 + ... - 1e16 is exact */
  double cx[102];
  cx[0] = 1e16;
  for (int k = 1; k <= 100; k++) cx[k] = 1.0;
  cx[101] = -1e16;
  CHECK(nnft_sum_compensated(cx, 102, 1) == 100.0);
  CHECK(nnft_sum_compensated(cx, 51, 2) == 1e16 + 50.0); /* stride 2: 1e16 and 50 ones */
  CHECK(nnft_sum_compensated(cx, 0, 1) == 0.0);
  /* var of values with a huge common offset stays accurate (two-pass) */
  const double off[] = {1e9 + 4, 1e9 + 7, 1e9 + 13, 1e9 + 16};
  nnft_mat o = from_rows(4, 1, off);
  CHECK_STATUS(nnft_mat_reduce(NNFT_RED_VAR, &o, 0, &s), NNFT_OK);
  CHECK_NEAR(s.data[0], 30.0, 1e-6);

  nnft_mat_alloc(2, 2, &bad);
  CHECK_STATUS(nnft_mat_reduce(NNFT_RED_SUM, &a, 1, &bad), NNFT_EDIM);
  nnft_mat_free(&a); nnft_mat_free(&s); nnft_mat_free(&r1); nnft_mat_free(&r2);
  nnft_mat_free(&bad); nnft_mat_free(&b); nnft_mat_free(&v1); nnft_mat_free(&v2);
  nnft_mat_free(&e); nnft_mat_free(&e1); nnft_mat_free(&one); nnft_mat_free(&a1r);
  nnft_mat_free(&inf); nnft_mat_free(&infr); nnft_mat_free(&infv_); nnft_mat_free(&o);
}

static void test_compare(void) {
  const double av[] = {1, 2, 3, 4}, bv[] = {1, 2.5, 3, 3};
  nnft_mat a = from_rows(2, 2, av), b = from_rows(2, 2, bv), w;
  double d;
  int ok;
  CHECK_STATUS(nnft_mat_max_abs_diff(&a, &b, &d), NNFT_OK);
  CHECK(d == 1);
  CHECK_STATUS(nnft_mat_max_abs_diff(&a, &a, &d), NNFT_OK);
  CHECK(d == 0);
  nnft_mat_alloc(2, 3, &w);
  CHECK_STATUS(nnft_mat_max_abs_diff(&a, &w, &d), NNFT_EDIM);
  CHECK_STATUS(nnft_mat_allclose(&a, &w, 0, 0, &ok), NNFT_EDIM);
  CHECK_STATUS(nnft_mat_allclose(&a, &b, 0, 1, &ok), NNFT_OK);
  CHECK(ok == 1);
  CHECK_STATUS(nnft_mat_allclose(&a, &b, 0, 0.99, &ok), NNFT_OK);
  CHECK(ok == 0);
  CHECK_STATUS(nnft_mat_allclose(&a, &b, 0.34, 0, &ok), NNFT_OK); /* |4-3| <= 0.34*3 */
  CHECK(ok == 1);
  CHECK_STATUS(nnft_mat_allclose(&a, &b, 0.33, 0, &ok), NNFT_OK);
  CHECK(ok == 0);
  CHECK_STATUS(nnft_mat_allclose(&a, &b, -1, 0, &ok), NNFT_EDOM);
  CHECK_STATUS(nnft_mat_allclose(&a, &b, 0, NAN, &ok), NNFT_EDOM);
  /* Inf equals Inf; NaN is never close; max_abs_diff with NaN is NaN */
  a.data[0] = b.data[0] = INFINITY;
  CHECK_STATUS(nnft_mat_allclose(&a, &b, 0, 1, &ok), NNFT_OK);
  CHECK(ok == 1);
  a.data[0] = NAN;
  CHECK_STATUS(nnft_mat_allclose(&a, &a, 1, 1, &ok), NNFT_OK);
  CHECK(ok == 0);
  CHECK_STATUS(nnft_mat_max_abs_diff(&a, &b, &d), NNFT_OK);
  CHECK(isnan(d));
  nnft_mat_free(&a); nnft_mat_free(&b); nnft_mat_free(&w);
}

static void test_cat(void) {
  const double av[] = {1, 2, 3, 4}, bv[] = {5, 6}, cv[] = {7, 8};
  nnft_mat a = from_rows(2, 2, av), b = from_rows(2, 1, bv), c = from_rows(1, 2, cv), out;
  size_t r, k;
  const nnft_mat *hp[] = {&a, &b}, *vp[] = {&a, &c}, *bad[] = {&a, &c, &b};
  CHECK_STATUS(nnft_mat_cat_shape(hp, 2, 0, &r, &k), NNFT_OK);
  CHECK(r == 2 && k == 3);
  nnft_mat_alloc(2, 3, &out);
  CHECK_STATUS(nnft_mat_hcat(hp, 2, &out), NNFT_OK);
  const double h[] = {1, 2, 5, 3, 4, 6};
  CHECK(equals(&out, 2, 3, h, 0));
  CHECK_STATUS(nnft_mat_vcat(hp, 2, &out), NNFT_EDIM); /* b has 1 column */
  nnft_mat_free(&out);
  CHECK_STATUS(nnft_mat_cat_shape(vp, 2, 1, &r, &k), NNFT_OK);
  CHECK(r == 3 && k == 2);
  nnft_mat_alloc(3, 2, &out);
  CHECK_STATUS(nnft_mat_vcat(vp, 2, &out), NNFT_OK);
  const double vv[] = {1, 2, 3, 4, 7, 8};
  CHECK(equals(&out, 3, 2, vv, 0));
  CHECK_STATUS(nnft_mat_hcat(vp, 2, &out), NNFT_EDIM);
  CHECK_STATUS(nnft_mat_cat_shape(bad, 3, 0, &r, &k), NNFT_EDIM);
  CHECK_STATUS(nnft_mat_cat_shape(bad, 3, 1, &r, &k), NNFT_EDIM);
  CHECK_STATUS(nnft_mat_cat_shape(hp, 0, 0, &r, &k), NNFT_EDOM);
  CHECK_STATUS(nnft_mat_hcat(hp, 0, &out), NNFT_EDOM);
  /* wrong output shape */
  CHECK_STATUS(nnft_mat_hcat(hp, 1, &out), NNFT_EDIM);
  /* views as parts, empty parts, one part */
  nnft_mat big, vw, e;
  nnft_mat_alloc(4, 4, &big);
  for (size_t q = 0; q < 16; q++) big.data[q] = (double)q;
  nnft_mat_view(&big, 1, 1, 2, 2, &vw); /* [5 9; 6 10] */
  nnft_mat_alloc(2, 0, &e);
  const nnft_mat *hv[] = {&e, &vw, &e, &a};
  nnft_mat o2;
  nnft_mat_alloc(2, 4, &o2);
  CHECK_STATUS(nnft_mat_hcat(hv, 4, &o2), NNFT_OK);
  const double hvv[] = {5, 9, 1, 2, 6, 10, 3, 4};
  CHECK(equals(&o2, 2, 4, hvv, 0));
  /* size overflow in the result shape */
  nnft_mat f1 = fake(1, SIZE_MAX / 2 + 1, 1), f2 = fake(1, SIZE_MAX / 2 + 1, 1);
  const nnft_mat *fp[] = {&f1, &f2};
  CHECK_STATUS(nnft_mat_cat_shape(fp, 2, 0, &r, &k), NNFT_EOVERFLOW);
  nnft_mat g1 = fake(SIZE_MAX / 2 + 1, 1, SIZE_MAX / 2 + 1), g2 = g1;
  const nnft_mat *gp[] = {&g1, &g2};
  CHECK_STATUS(nnft_mat_cat_shape(gp, 2, 1, &r, &k), NNFT_EOVERFLOW);
  nnft_mat_free(&a); nnft_mat_free(&b); nnft_mat_free(&c); nnft_mat_free(&out);
  nnft_mat_free(&big); nnft_mat_free(&e); nnft_mat_free(&o2);
}

/* Every allocating function, with the allocator failing at each of its allocations in turn:
 * ENOMEM is returned, nothing leaks (LeakSanitizer checks in the sanitizer build), and once
 * allocations succeed the result is right. */
static void test_alloc_failure_loops(void) {
  /* nnft_mat_alloc: one allocation */
  int saw_enomem = 0, saw_ok = 0;
  for (long k = 0; k < 10 && !saw_ok; k++) {
    nnft_mat m;
    test_alloc_fail_after(k);
    nnft_status s = nnft_mat_alloc(3, 3, &m);
    test_alloc_fail_after(-1);
    if (s == NNFT_ENOMEM) saw_enomem = 1;
    else if (s == NNFT_OK) { saw_ok = 1; nnft_mat_free(&m); }
    else CHECK(0);
  }
  CHECK(saw_enomem && saw_ok);
  /* nnft_mat_copy between overlapping blocks: one temporary */
  saw_enomem = saw_ok = 0;
  for (long k = 0; k < 10 && !saw_ok; k++) {
    nnft_mat a, src, dst;
    nnft_mat_alloc(3, 3, &a);
    for (size_t q = 0; q < 9; q++) a.data[q] = (double)q;
    nnft_mat_view(&a, 0, 0, 2, 2, &src);
    nnft_mat_view(&a, 1, 1, 2, 2, &dst);
    test_alloc_fail_after(k);
    nnft_status s = nnft_mat_copy(&src, &dst);
    test_alloc_fail_after(-1);
    if (s == NNFT_ENOMEM) {
      saw_enomem = 1;
      CHECK(a.data[4] == 4 && a.data[8] == 8); /* unchanged */
    } else if (s == NNFT_OK) {
      saw_ok = 1;
      CHECK(a.data[4] == 0 && a.data[5] == 1 && a.data[7] == 3 && a.data[8] == 4);
    } else CHECK(0);
    nnft_mat_free(&a);
  }
  CHECK(saw_enomem && saw_ok);
  /* The other functions allocate nothing: they succeed with the allocator failing. */
  const double av[] = {1, 2, 3, 4};
  nnft_mat a = from_rows(2, 2, av), b, c, s11, big, pa, pb;
  nnft_mat_alloc(2, 2, &b);
  nnft_mat_alloc(2, 2, &c);
  nnft_mat_alloc(1, 1, &s11);
  nnft_mat_alloc(2, 4, &big);
  const nnft_mat *parts[] = {&a, &b};
  double d;
  int ok;
  test_alloc_fail_after(0);
  CHECK_STATUS(nnft_mat_copy(&a, &b), NNFT_OK);
  CHECK_STATUS(nnft_mat_transpose(&a, &c), NNFT_OK);
  CHECK_STATUS(nnft_mat_binop(NNFT_OP_ADD, &a, &b, &c), NNFT_OK);
  CHECK_STATUS(nnft_mat_scalar_op(NNFT_OP_ADD, &a, 1, 0, &c), NNFT_OK);
  CHECK_STATUS(nnft_mat_map(NNFT_FN_EXP, &a, &c), NNFT_OK);
  CHECK_STATUS(nnft_mat_gemm(1, &a, 0, &b, 0, 0, &c), NNFT_OK);
  CHECK_STATUS(nnft_mat_syrk(&a, 0, &c), NNFT_OK);
  CHECK_STATUS(nnft_mat_reduce(NNFT_RED_VAR, &a, 0, &s11), NNFT_OK);
  CHECK_STATUS(nnft_mat_max_abs_diff(&a, &b, &d), NNFT_OK);
  CHECK_STATUS(nnft_mat_allclose(&a, &b, 0, 0, &ok), NNFT_OK);
  CHECK_STATUS(nnft_mat_hcat(parts, 2, &big), NNFT_OK);
  nnft_mat_view(&big, 0, 0, 2, 2, &pa);
  nnft_mat_view(&big, 0, 2, 2, 2, &pb);
  CHECK_STATUS(nnft_mat_copy(&pa, &pb), NNFT_OK); /* adjacent, not overlapping */
  test_alloc_fail_after(-1);
  nnft_mat_free(&a); nnft_mat_free(&b); nnft_mat_free(&c); nnft_mat_free(&s11);
  nnft_mat_free(&big);
}

int main(void) {
  test_alloc_and_free();
  test_view();
  test_copy_transpose_fill();
  test_copy_overlap();
  test_binop();
  test_unary();
  test_gemm();
  test_syrk();
  test_reduce();
  test_compare();
  test_cat();
  test_alloc_failure_loops();
  return test_report("test_mat");
}
