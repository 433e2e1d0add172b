#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE /* sysconf(_SC_PHYS_PAGES) */
#endif
#include "nnft_mat.h"

#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "nnft_alloc.h"

nnft_status nnft_mat_bytes(size_t rows, size_t cols, size_t *bytes) {
  size_t n;
  nnft_status s = nnft_size_mul(rows, cols, &n);
  if (s) return s;
  return nnft_size_mul(n, sizeof(double), bytes);
}

size_t nnft_mat_max_bytes(void) {
  long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page <= 0) return (size_t)1 << 46;
  size_t total;
  if (nnft_size_mul((size_t)pages, (size_t)page, &total)) return SIZE_MAX;
  return total;
}

nnft_status nnft_mat_alloc(size_t rows, size_t cols, nnft_mat *out) {
  size_t bytes;
  nnft_status s = nnft_mat_bytes(rows, cols, &bytes);
  if (s) return s;
  /* BLAS indexes with int: refuse what it could not address rather than fail later. */
  int tmp;
  if (nnft_blas_int(rows, &tmp) || nnft_blas_int(cols, &tmp)) return NNFT_EOVERFLOW;
  /* Never attempt a block the machine cannot hold: zero-filling it would touch every page. */
  /* sysconf costs a system call: ask only when the request could matter (> 1 GiB) */
  if (bytes > ((size_t)1 << 30) && bytes > nnft_mat_max_bytes()) return NNFT_EOVERFLOW;
  double *d = nnft_alloc(bytes);
  if (!d) return NNFT_ENOMEM;
  memset(d, 0, bytes);
  out->rows = rows;
  out->cols = cols;
  out->ld = rows ? rows : 1;
  out->data = d;
  out->owns = 1;
  return NNFT_OK;
}

void nnft_mat_free(nnft_mat *m) {
  if (!m) return;
  if (m->owns) nnft_free(m->data);
  memset(m, 0, sizeof *m);
}

nnft_status nnft_mat_view(const nnft_mat *m, size_t r0, size_t c0, size_t nr, size_t nc,
                          nnft_mat *view) {
  if (r0 > m->rows || nr > m->rows - r0 || c0 > m->cols || nc > m->cols - c0) return NNFT_EDOM;
  view->rows = nr;
  view->cols = nc;
  view->ld = m->ld;
  view->data = (nr && nc) ? m->data + r0 + c0 * m->ld : m->data;
  view->owns = 0;
  return NNFT_OK;
}

static int same_shape(const nnft_mat *a, const nnft_mat *b) {
  return a->rows == b->rows && a->cols == b->cols;
}

/* Address range [lo, hi) that m's elements occupy; empty for an empty matrix. */
static void span(const nnft_mat *m, uintptr_t *lo, uintptr_t *hi) {
  *lo = *hi = (uintptr_t)m->data;
  if (m->rows && m->cols)
    *hi = (uintptr_t)(m->data + (m->cols - 1) * m->ld + m->rows);
}

int nnft_mat_overlap(const nnft_mat *a, const nnft_mat *b) {
  uintptr_t alo, ahi, blo, bhi;
  span(a, &alo, &ahi);
  span(b, &blo, &bhi);
  return alo < ahi && blo < bhi && alo < bhi && blo < ahi;
}

static void copy_columns(const nnft_mat *src, nnft_mat *dst) {
  for (size_t j = 0; j < src->cols; j++)
    memmove(dst->data + j * dst->ld, src->data + j * src->ld, src->rows * sizeof(double));
}

nnft_status nnft_mat_copy(const nnft_mat *src, nnft_mat *dst) {
  if (!same_shape(src, dst)) return NNFT_EDIM;
  if (src->data == dst->data && src->ld == dst->ld) return NNFT_OK; /* the same elements */
  if (src->cols > 1 && nnft_mat_overlap(src, dst)) {
    /* Column-by-column copying could overwrite source values not yet read. */
    nnft_mat tmp;
    nnft_status s = nnft_mat_alloc(src->rows, src->cols, &tmp);
    if (s) return s;
    copy_columns(src, &tmp);
    copy_columns(&tmp, dst);
    nnft_mat_free(&tmp);
    return NNFT_OK;
  }
  copy_columns(src, dst); /* one column: memmove handles the overlap */
  return NNFT_OK;
}

nnft_status nnft_mat_transpose(const nnft_mat *src, nnft_mat *dst) {
  if (dst->rows != src->cols || dst->cols != src->rows) return NNFT_EDIM;
  enum { B = 32 };
  for (size_t jb = 0; jb < src->cols; jb += B)
    for (size_t ib = 0; ib < src->rows; ib += B) {
      size_t je = jb + B < src->cols ? jb + B : src->cols;
      size_t ie = ib + B < src->rows ? ib + B : src->rows;
      for (size_t j = jb; j < je; j++)
        for (size_t i = ib; i < ie; i++) NNFT_AT(dst, j, i) = NNFT_AT(src, i, j);
    }
  return NNFT_OK;
}

void nnft_mat_fill(nnft_mat *m, double v) {
  for (size_t j = 0; j < m->cols; j++) {
    double *c = m->data + j * m->ld;
    for (size_t i = 0; i < m->rows; i++) c[i] = v;
  }
}

void nnft_mat_eye(nnft_mat *m) {
  nnft_mat_fill(m, 0.0);
  size_t k = m->rows < m->cols ? m->rows : m->cols;
  for (size_t i = 0; i < k; i++) NNFT_AT(m, i, i) = 1.0;
}

int nnft_mat_all_finite(const nnft_mat *m) {
  for (size_t j = 0; j < m->cols; j++) {
    const double *c = m->data + j * m->ld;
    for (size_t i = 0; i < m->rows; i++)
      if (!isfinite(c[i])) return 0;
  }
  return 1;
}

static double apply_binop(nnft_binop op, double x, double y) {
  switch (op) {
  case NNFT_OP_ADD: return x + y;
  case NNFT_OP_SUB: return x - y;
  case NNFT_OP_MUL: return x * y;
  case NNFT_OP_DIV: return x / y;
  case NNFT_OP_POW: return pow(x, y);
  }
  return NAN;
}

nnft_status nnft_mat_binop(nnft_binop op, const nnft_mat *a, const nnft_mat *b, nnft_mat *c) {
  if (b->rows == 1 && b->cols == 1) return nnft_mat_scalar_op(op, a, b->data[0], 0, c);
  if (!same_shape(a, b) || !same_shape(a, c)) return NNFT_EDIM;
  for (size_t j = 0; j < a->cols; j++) {
    const double *x = a->data + j * a->ld, *y = b->data + j * b->ld;
    double *z = c->data + j * c->ld;
    switch (op) { /* per-op loops so the compiler vectorises the common cases */
    case NNFT_OP_ADD: for (size_t i = 0; i < a->rows; i++) z[i] = x[i] + y[i]; break;
    case NNFT_OP_SUB: for (size_t i = 0; i < a->rows; i++) z[i] = x[i] - y[i]; break;
    case NNFT_OP_MUL: for (size_t i = 0; i < a->rows; i++) z[i] = x[i] * y[i]; break;
    case NNFT_OP_DIV: for (size_t i = 0; i < a->rows; i++) z[i] = x[i] / y[i]; break;
    default: for (size_t i = 0; i < a->rows; i++) z[i] = apply_binop(op, x[i], y[i]);
    }
  }
  return NNFT_OK;
}

nnft_status nnft_mat_scalar_op(nnft_binop op, const nnft_mat *a, double s, int scalar_first,
                               nnft_mat *c) {
  if (!same_shape(a, c)) return NNFT_EDIM;
  for (size_t j = 0; j < a->cols; j++) {
    const double *x = a->data + j * a->ld;
    double *z = c->data + j * c->ld;
    if (scalar_first)
      for (size_t i = 0; i < a->rows; i++) z[i] = apply_binop(op, s, x[i]);
    else if (op == NNFT_OP_ADD)
      for (size_t i = 0; i < a->rows; i++) z[i] = x[i] + s;
    else if (op == NNFT_OP_MUL)
      for (size_t i = 0; i < a->rows; i++) z[i] = x[i] * s;
    else
      for (size_t i = 0; i < a->rows; i++) z[i] = apply_binop(op, x[i], s);
  }
  return NNFT_OK;
}

static const char *const unary_names[NNFT_FN_COUNT] = {
    "exp", "log", "sqrt", "abs", "erf", "tanh", "sin", "cos", "square", "relu", "sign",
    "sigmoid", "log1p", "expm1", "floor", "ceil", "neg"};

const char *nnft_unary_name(nnft_unary_fn f) {
  return (unsigned)f < NNFT_FN_COUNT ? unary_names[f] : "?";
}

int nnft_unary_lookup(const char *name) {
  for (int k = 0; k < NNFT_FN_COUNT; k++)
    if (strcmp(name, unary_names[k]) == 0) return k;
  return -1;
}

static double apply_unary(nnft_unary_fn f, double x) {
  switch (f) {
  case NNFT_FN_EXP: return exp(x);
  case NNFT_FN_LOG: return log(x);
  case NNFT_FN_SQRT: return sqrt(x);
  case NNFT_FN_ABS: return fabs(x);
  case NNFT_FN_ERF: return erf(x);
  case NNFT_FN_TANH: return tanh(x);
  case NNFT_FN_SIN: return sin(x);
  case NNFT_FN_COS: return cos(x);
  case NNFT_FN_SQUARE: return x * x;
  case NNFT_FN_RELU: return x > 0 || isnan(x) ? x : 0.0;
  case NNFT_FN_SIGN: return isnan(x) ? x : (double)((x > 0) - (x < 0));
  case NNFT_FN_SIGMOID: return x >= 0 ? 1.0 / (1.0 + exp(-x)) : exp(x) / (1.0 + exp(x));
  case NNFT_FN_LOG1P: return log1p(x);
  case NNFT_FN_EXPM1: return expm1(x);
  case NNFT_FN_FLOOR: return floor(x);
  case NNFT_FN_CEIL: return ceil(x);
  case NNFT_FN_NEG: return -x;
  case NNFT_FN_COUNT: break;
  }
  return NAN;
}

nnft_status nnft_mat_map(nnft_unary_fn f, const nnft_mat *src, nnft_mat *dst) {
  if ((unsigned)f >= NNFT_FN_COUNT) return NNFT_EDOM;
  if (!same_shape(src, dst)) return NNFT_EDIM;
  for (size_t j = 0; j < src->cols; j++) {
    const double *x = src->data + j * src->ld;
    double *z = dst->data + j * dst->ld;
    for (size_t i = 0; i < src->rows; i++) z[i] = apply_unary(f, x[i]);
  }
  return NNFT_OK;
}

nnft_status nnft_mat_gemm(double alpha, const nnft_mat *a, int trans_a, const nnft_mat *b,
                          int trans_b, double beta, nnft_mat *c) {
  size_t m = trans_a ? a->cols : a->rows, k = trans_a ? a->rows : a->cols;
  size_t kb = trans_b ? b->cols : b->rows, n = trans_b ? b->rows : b->cols;
  if (k != kb || c->rows != m || c->cols != n) return NNFT_EDIM;
  int im, in, ik, lda, ldb, ldc;
  if (nnft_blas_int(m, &im) || nnft_blas_int(n, &in) || nnft_blas_int(k, &ik) ||
      nnft_blas_int(a->ld, &lda) || nnft_blas_int(b->ld, &ldb) || nnft_blas_int(c->ld, &ldc))
    return NNFT_EOVERFLOW;
  if (m == 0 || n == 0) return NNFT_OK;
  if (k == 0) { /* BLAS leaves C untouched when k = 0 only if beta = 1; make it explicit */
    if (beta == 0.0) nnft_mat_fill(c, 0.0);
    else nnft_mat_scalar_op(NNFT_OP_MUL, c, beta, 0, c);
    return NNFT_OK;
  }
  if (m <= 16 && n <= 16 && k <= 16) { /* tiny products: BLAS's call overhead exceeds the work */
    for (size_t j = 0; j < n; j++)
      for (size_t i = 0; i < m; i++) {
        double acc = 0.0;
        if (!trans_a && !trans_b)
          for (size_t p = 0; p < k; p++) acc += NNFT_AT(a, i, p) * NNFT_AT(b, p, j);
        else if (trans_a && !trans_b)
          for (size_t p = 0; p < k; p++) acc += NNFT_AT(a, p, i) * NNFT_AT(b, p, j);
        else if (!trans_a)
          for (size_t p = 0; p < k; p++) acc += NNFT_AT(a, i, p) * NNFT_AT(b, j, p);
        else
          for (size_t p = 0; p < k; p++) acc += NNFT_AT(a, p, i) * NNFT_AT(b, j, p);
        NNFT_AT(c, i, j) = alpha * acc + (beta == 0.0 ? 0.0 : beta * NNFT_AT(c, i, j));
      }
    return NNFT_OK;
  }
  /* Vector shapes through level-1/2 BLAS: dgemm's set-up cost dominates them (per-sample SGD
   * steps are dot products and rank-1 updates). Row 1 of A is strided by lda, column 1 of Aᵀ too. */
  if (m == 1 && n == 1) {
    double dot = cblas_ddot(ik, a->data, trans_a ? 1 : lda, b->data, trans_b ? ldb : 1);
    c->data[0] = alpha * dot + (beta == 0.0 ? 0.0 : beta * c->data[0]);
    return NNFT_OK;
  }
  if (n == 1) { /* c = α op(A) x + β c, x = column 1 of op(B) */
    cblas_dgemv(CblasColMajor, trans_a ? CblasTrans : CblasNoTrans, (int)a->rows, (int)a->cols,
                alpha, a->data, lda, b->data, trans_b ? ldb : 1, beta, c->data, 1);
    return NNFT_OK;
  }
  if (m == 1) { /* row c = α x op(B) + β c, i.e. cᵀ = α op(B)ᵀ xᵀ + β cᵀ, x = row 1 of op(A) */
    cblas_dgemv(CblasColMajor, trans_b ? CblasNoTrans : CblasTrans, (int)b->rows, (int)b->cols,
                alpha, b->data, ldb, a->data, trans_a ? 1 : lda, beta, c->data, ldc);
    return NNFT_OK;
  }
  cblas_dgemm(CblasColMajor, trans_a ? CblasTrans : CblasNoTrans,
              trans_b ? CblasTrans : CblasNoTrans, im, in, ik, alpha, a->data, lda, b->data, ldb,
              beta, c->data, ldc);
  return NNFT_OK;
}

nnft_status nnft_mat_syrk(const nnft_mat *a, int trans, nnft_mat *c) {
  size_t n = trans ? a->cols : a->rows, k = trans ? a->rows : a->cols;
  if (c->rows != n || c->cols != n) return NNFT_EDIM;
  int in, ik, lda, ldc;
  if (nnft_blas_int(n, &in) || nnft_blas_int(k, &ik) || nnft_blas_int(a->ld, &lda) ||
      nnft_blas_int(c->ld, &ldc))
    return NNFT_EOVERFLOW;
  if (n == 0) return NNFT_OK;
  if (k == 0) {
    nnft_mat_fill(c, 0.0);
    return NNFT_OK;
  }
  cblas_dsyrk(CblasColMajor, CblasLower, trans ? CblasTrans : CblasNoTrans, in, ik, 1.0, a->data,
              lda, 0.0, c->data, ldc);
  for (size_t j = 1; j < n; j++) /* mirror the lower triangle into the upper */
    for (size_t i = 0; i < j; i++) NNFT_AT(c, i, j) = NNFT_AT(c, j, i);
  return NNFT_OK;
}

double nnft_sum_compensated(const double *x, size_t n, size_t stride) {
  double s = 0.0, comp = 0.0;
  for (size_t i = 0; i < n; i++) {
    double v = x[i * stride], t = s + v;
    comp += fabs(s) >= fabs(v) ? (s - t) + v : (v - t) + s; /* Neumaier */
    s = t;
  }
  /* Once s is Inf or NaN the compensation is NaN (Inf - Inf); the plain sum is the answer. */
  return isfinite(s) ? s + comp : s;
}

/* Reduce n values x[0], x[stride], ... */
static nnft_status reduce_strided(nnft_reduce r, const double *x, size_t n, size_t stride,
                                  double *out) {
  if (n == 0) {
    if (r == NNFT_RED_SUM) { *out = 0.0; return NNFT_OK; }
    return NNFT_EDOM;
  }
  switch (r) {
  case NNFT_RED_SUM: *out = nnft_sum_compensated(x, n, stride); return NNFT_OK;
  case NNFT_RED_MEAN: *out = nnft_sum_compensated(x, n, stride) / (double)n; return NNFT_OK;
  case NNFT_RED_VAR: {
    if (n < 2) return NNFT_EDOM;
    double mean = nnft_sum_compensated(x, n, stride) / (double)n, ss = 0.0, sd = 0.0;
    for (size_t i = 0; i < n; i++) {
      double d = x[i * stride] - mean;
      ss += d * d;
      sd += d;
    }
    *out = (ss - sd * sd / (double)n) / (double)(n - 1); /* corrected two-pass */
    return NNFT_OK;
  }
  case NNFT_RED_MIN:
  case NNFT_RED_MAX: {
    double best = x[0];
    for (size_t i = 1; i < n; i++) {
      double v = x[i * stride];
      if (isnan(v) || isnan(best)) best = NAN;
      else if (r == NNFT_RED_MIN ? v < best : v > best) best = v;
    }
    *out = best;
    return NNFT_OK;
  }
  }
  return NNFT_EDOM;
}

/* Whole-matrix reduction of a view whose columns are not contiguous in memory. */
static nnft_status reduce_all_strided(nnft_reduce r, const nnft_mat *m, size_t n, double *out) {
  if (n == 0) return reduce_strided(r, m->data, 0, 1, out);
  double acc = 0.0, comp = 0.0;
  for (size_t j = 0; j < m->cols; j++) { /* Neumaier across all elements */
    for (size_t i = 0; i < m->rows; i++) {
      double v = NNFT_AT(m, i, j), t = acc + v;
      comp += fabs(acc) >= fabs(v) ? (acc - t) + v : (v - t) + acc;
      acc = t;
    }
  }
  double sum = isfinite(acc) ? acc + comp : acc, mean = sum / (double)n;
  if (r == NNFT_RED_SUM) { *out = sum; return NNFT_OK; }
  if (r == NNFT_RED_MEAN) { *out = mean; return NNFT_OK; }
  if (r == NNFT_RED_VAR) {
    if (n < 2) return NNFT_EDOM;
    double ss = 0.0, sd = 0.0;
    for (size_t j = 0; j < m->cols; j++)
      for (size_t i = 0; i < m->rows; i++) {
        double d = NNFT_AT(m, i, j) - mean;
        ss += d * d;
        sd += d;
      }
    *out = (ss - sd * sd / (double)n) / (double)(n - 1);
    return NNFT_OK;
  }
  double best = m->data[0]; /* min / max: reduce each column, then the column results */
  for (size_t j = 0; j < m->cols; j++) {
    double v;
    reduce_strided(r, m->data + j * m->ld, m->rows, 1, &v);
    if (isnan(v) || isnan(best)) best = NAN;
    else if (r == NNFT_RED_MIN ? v < best : v > best) best = v;
  }
  *out = best;
  return NNFT_OK;
}

nnft_status nnft_mat_reduce(nnft_reduce r, const nnft_mat *m, int dim, nnft_mat *out) {
  nnft_status s;
  if (dim == 0) {
    if (out->rows != 1 || out->cols != 1) return NNFT_EDIM;
    size_t n;
    if ((s = nnft_size_mul(m->rows, m->cols, &n))) return s;
    if (m->ld == m->rows || m->cols <= 1) return reduce_strided(r, m->data, n, 1, out->data);
    return reduce_all_strided(r, m, n, out->data);
  }
  if (dim == 1) {
    if (out->rows != 1 || out->cols != m->cols) return NNFT_EDIM;
    for (size_t j = 0; j < m->cols; j++)
      if ((s = reduce_strided(r, m->data + j * m->ld, m->rows, 1, &NNFT_AT(out, 0, j)))) return s;
    return NNFT_OK;
  }
  if (dim == 2) {
    if (out->rows != m->rows || out->cols != 1) return NNFT_EDIM;
    for (size_t i = 0; i < m->rows; i++)
      if ((s = reduce_strided(r, m->data + i, m->cols, m->ld, &out->data[i]))) return s;
    return NNFT_OK;
  }
  return NNFT_EDOM;
}

nnft_status nnft_mat_max_abs_diff(const nnft_mat *a, const nnft_mat *b, double *out) {
  if (!same_shape(a, b)) return NNFT_EDIM;
  double mx = 0.0;
  for (size_t j = 0; j < a->cols; j++)
    for (size_t i = 0; i < a->rows; i++) {
      double d = fabs(NNFT_AT(a, i, j) - NNFT_AT(b, i, j));
      if (isnan(d)) { *out = NAN; return NNFT_OK; }
      if (d > mx) mx = d;
    }
  *out = mx;
  return NNFT_OK;
}

nnft_status nnft_mat_allclose(const nnft_mat *a, const nnft_mat *b, double rtol, double atol,
                              int *out) {
  if (!same_shape(a, b)) return NNFT_EDIM;
  if (!(rtol >= 0) || !(atol >= 0)) return NNFT_EDOM;
  for (size_t j = 0; j < a->cols; j++)
    for (size_t i = 0; i < a->rows; i++) {
      double x = NNFT_AT(a, i, j), y = NNFT_AT(b, i, j);
      if (!(fabs(x - y) <= atol + rtol * fabs(y)) && !(x == y)) { *out = 0; return NNFT_OK; }
    }
  *out = 1;
  return NNFT_OK;
}

nnft_status nnft_mat_cat_shape(const nnft_mat *const *parts, size_t nparts, int vertical,
                               size_t *rows, size_t *cols) {
  if (nparts == 0) return NNFT_EDOM;
  size_t r = parts[0]->rows, c = parts[0]->cols;
  for (size_t p = 1; p < nparts; p++) {
    nnft_status s;
    if (vertical) {
      if (parts[p]->cols != c) return NNFT_EDIM;
      if ((s = nnft_size_add(r, parts[p]->rows, &r))) return s;
    } else {
      if (parts[p]->rows != r) return NNFT_EDIM;
      if ((s = nnft_size_add(c, parts[p]->cols, &c))) return s;
    }
  }
  *rows = r;
  *cols = c;
  return NNFT_OK;
}

static nnft_status cat(const nnft_mat *const *parts, size_t nparts, int vertical, nnft_mat *out) {
  size_t r, c;
  nnft_status s = nnft_mat_cat_shape(parts, nparts, vertical, &r, &c);
  if (s) return s;
  if (out->rows != r || out->cols != c) return NNFT_EDIM;
  size_t off = 0;
  for (size_t p = 0; p < nparts; p++) {
    nnft_mat dst;
    const nnft_mat *src = parts[p];
    if (vertical) s = nnft_mat_view(out, off, 0, src->rows, c, &dst);
    else s = nnft_mat_view(out, 0, off, r, src->cols, &dst);
    if (s || (s = nnft_mat_copy(src, &dst))) return s;
    off += vertical ? src->rows : src->cols;
  }
  return NNFT_OK;
}

nnft_status nnft_mat_hcat(const nnft_mat *const *parts, size_t nparts, nnft_mat *out) {
  return cat(parts, nparts, 0, out);
}

nnft_status nnft_mat_vcat(const nnft_mat *const *parts, size_t nparts, nnft_mat *out) {
  return cat(parts, nparts, 1, out);
}
