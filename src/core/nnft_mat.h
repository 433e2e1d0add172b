/* nnft_mat: dense float64 matrices, column-major with a leading dimension.
 * Element (i, j) (0-based) lives at data[i + j*ld]. A matrix either owns its data (allocated by
 * nnft_mat_alloc, 64-byte aligned) or is a view into another matrix's storage. */
#ifndef NNFT_MAT_H
#define NNFT_MAT_H

#include <stddef.h>

#include "nnft_status.h"

typedef struct nnft_mat {
  size_t rows, cols;
  size_t ld;    /* leading dimension, >= max(rows, 1) */
  double *data; /* NULL only for an unallocated matrix */
  int owns;     /* 1: data came from nnft_mat_alloc and is freed by nnft_mat_free */
} nnft_mat;

#define NNFT_AT(m, i, j) ((m)->data[(i) + (j) * (m)->ld])

/* Allocate rows x cols (zero-filled); *out owns the storage (release with nnft_mat_free).
 * NNFT_EOVERFLOW, before any allocation is attempted, when the byte count overflows, when rows or
 * cols exceed the BLAS integer (INT_MAX), or when the block is larger than nnft_mat_max_bytes();
 * NNFT_ENOMEM when the allocator fails. *out is untouched on failure. O(rows*cols). */
nnft_status nnft_mat_alloc(size_t rows, size_t cols, nnft_mat *out);
/* The largest block nnft_mat_alloc attempts: this machine's physical memory (a zero-filled
 * matrix touches every page, so anything larger could only end in the OOM killer), or 64 TiB
 * when the system cannot tell. */
size_t nnft_mat_max_bytes(void);
/* Release owned storage and reset *m; views and NULL are fine. */
void nnft_mat_free(nnft_mat *m);
/* Bytes needed for a rows x cols matrix, or NNFT_EOVERFLOW. */
nnft_status nnft_mat_bytes(size_t rows, size_t cols, size_t *bytes);

/* View of the block starting at (r0, c0) of size nr x nc; shares m's storage, owns nothing. */
nnft_status nnft_mat_view(const nnft_mat *m, size_t r0, size_t c0, size_t nr, size_t nc,
                          nnft_mat *view);

/* dst = src (same shape). src and dst may overlap (e.g. two blocks of one matrix): the copy then
 * goes through a temporary, so it can fail with NNFT_ENOMEM; otherwise it allocates nothing. */
nnft_status nnft_mat_copy(const nnft_mat *src, nnft_mat *dst);
/* 1 if the memory spans of a and b intersect (conservative: spans, not exact element sets). */
int nnft_mat_overlap(const nnft_mat *a, const nnft_mat *b);
/* dst = srcᵀ (dst is src.cols x src.rows); blocked for cache. dst must not overlap src. */
nnft_status nnft_mat_transpose(const nnft_mat *src, nnft_mat *dst);
/* Every element = v. */
void nnft_mat_fill(nnft_mat *m, double v);
/* m = identity (square or not: ones on the main diagonal). */
void nnft_mat_eye(nnft_mat *m);
/* 1 if every element is finite. */
int nnft_mat_all_finite(const nnft_mat *m);

/* Elementwise binary operations c = a op b (op: + - * / pow). b may be a 1x1 matrix (broadcast
 * scalar). c may be a or b itself, but must not otherwise overlap them. */
typedef enum { NNFT_OP_ADD, NNFT_OP_SUB, NNFT_OP_MUL, NNFT_OP_DIV, NNFT_OP_POW } nnft_binop;
nnft_status nnft_mat_binop(nnft_binop op, const nnft_mat *a, const nnft_mat *b, nnft_mat *c);
/* c = a op s (or s op a when scalar_first is set). */
nnft_status nnft_mat_scalar_op(nnft_binop op, const nnft_mat *a, double s, int scalar_first,
                               nnft_mat *c);

/* Elementwise math functions; dst may alias src. NaN propagates through every function
 * (sign(NaN) and relu(NaN) are NaN). */
typedef enum {
  NNFT_FN_EXP, NNFT_FN_LOG, NNFT_FN_SQRT, NNFT_FN_ABS, NNFT_FN_ERF, NNFT_FN_TANH,
  NNFT_FN_SIN, NNFT_FN_COS, NNFT_FN_SQUARE, NNFT_FN_RELU, NNFT_FN_SIGN, NNFT_FN_SIGMOID,
  NNFT_FN_LOG1P, NNFT_FN_EXPM1, NNFT_FN_FLOOR, NNFT_FN_CEIL, NNFT_FN_NEG,
  NNFT_FN_COUNT
} nnft_unary_fn;
/* Name of a unary function ("exp", ...) and the reverse lookup (-1 if unknown). */
const char *nnft_unary_name(nnft_unary_fn f);
int nnft_unary_lookup(const char *name);
nnft_status nnft_mat_map(nnft_unary_fn f, const nnft_mat *src, nnft_mat *dst);

/* C = alpha op(A) op(B) + beta C with BLAS dgemm (dgemv when op(B) is one column); op(X) is X or
 * Xᵀ (trans_x != 0). A and B may be views (any ld); C must not overlap A or B. With k = 0 the
 * product is zero, so C = beta C. O(m n k). */
nnft_status nnft_mat_gemm(double alpha, const nnft_mat *a, int trans_a, const nnft_mat *b,
                          int trans_b, double beta, nnft_mat *c);
/* C = Aᵀ A (trans = 1) or A Aᵀ (trans = 0), both triangles filled; BLAS dsyrk. C must not
 * overlap A. About half the flops of the equivalent gemm. */
nnft_status nnft_mat_syrk(const nnft_mat *a, int trans, nnft_mat *c);

/* Reductions. dim 0: over all elements (out is 1x1); dim 1: over rows, one value per column
 * (out is 1 x cols); dim 2: over columns, one value per row (out is rows x 1).
 * Sums use Neumaier-compensated accumulation; var is the unbiased (n-1) variance by
 * a two-pass algorithm. Empty reductions: sum 0, others NNFT_EDOM (var needs 2 values).
 * NaN: sum, mean and var propagate it (IEEE arithmetic); min and max return NaN when any value
 * reduced is NaN (numpy's min/max, not nanmin/nanmax). Any dim other than 0, 1, 2: NNFT_EDOM. */
typedef enum { NNFT_RED_SUM, NNFT_RED_MEAN, NNFT_RED_VAR, NNFT_RED_MIN, NNFT_RED_MAX } nnft_reduce;
nnft_status nnft_mat_reduce(nnft_reduce r, const nnft_mat *m, int dim, nnft_mat *out);

/* Neumaier-compensated sum of n doubles with stride (an Inf or NaN term gives the IEEE sum). */
double nnft_sum_compensated(const double *x, size_t n, size_t stride);

/* max |a - b| over all elements (NaN if any pair involves NaN). */
nnft_status nnft_mat_max_abs_diff(const nnft_mat *a, const nnft_mat *b, double *out);
/* 1 if |a - b| <= atol + rtol |b| elementwise (numpy's allclose). */
nnft_status nnft_mat_allclose(const nnft_mat *a, const nnft_mat *b, double rtol, double atol,
                              int *out);

/* Concatenate: horizontally (side by side, equal rows) or vertically (equal cols). */
nnft_status nnft_mat_hcat(const nnft_mat *const *parts, size_t nparts, nnft_mat *out);
nnft_status nnft_mat_vcat(const nnft_mat *const *parts, size_t nparts, nnft_mat *out);

/* Sizes of concatenation results (checked), so callers can allocate before calling. */
nnft_status nnft_mat_cat_shape(const nnft_mat *const *parts, size_t nparts, int vertical,
                               size_t *rows, size_t *cols);

#endif
