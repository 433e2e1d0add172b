/* nnft_mercer: Mercer decomposition of a kernel with respect to the empirical measure of n data
 * points (physics.md §5.2).
 *
 *   K(X,X)/n = U diag(λ) Uᵀ,   λ_1 >= λ_2 >= ...   (the mode index plays the role of momentum)
 *   φ_k(x_i) = √n U_ik          so that (1/n) Σ_i φ_k(x_i) φ_l(x_i) = δ_kl
 *                               and K(x_i, x_j) = Σ_k λ_k φ_k(x_i) φ_k(x_j) (all n modes)
 *   φ_k(x)   = (1/(n λ_k)) Σ_i K(x, x_i) φ_k(x_i)     (Nyström extension to new points x)
 *   y_k      = (1/n) Σ_i y_i φ_k(x_i)                (target coefficients ∫ dμ y φ_k)
 *
 * The top k eigenpairs come from LAPACK dsyevr (MRRR) with an index range, so only k vectors are
 * computed and back-transformed (the tridiagonal reduction, 4n³/3 flops, is shared by any
 * method). Eigenvalues are not clamped: rounding leaves modes of a positive semi-definite kernel
 * at about ±1e-16 λ_1; a clearly negative one means the matrix is not a kernel matrix. Signs
 * follow nnft_linalg_eigh: the entry of largest magnitude of each φ_k is positive.
 * Allocation through nnft_alloc; workspaces are freed before returning. */
#ifndef NNFT_MERCER_H
#define NNFT_MERCER_H

#include <stddef.h>

#include "nnft_kernel.h"
#include "nnft_linalg.h"
#include "nnft_mat.h"
#include "nnft_status.h"

typedef struct nnft_mercer {
  size_t n, k;     /* data points, modes kept */
  nnft_mat values; /* k x 1: λ_1 >= ... >= λ_k, the eigenvalues of K/n */
  nnft_mat phi;    /* n x k: φ_k(x_i) */
} nnft_mercer;

typedef enum {
  NNFT_MERCER_AUTO,    /* = PARTIAL */
  NNFT_MERCER_PARTIAL, /* dsyevr with the index range 1..k: k eigenvectors */
  NNFT_MERCER_FULL     /* every eigenpair (dsyevr), then the top k kept: for checking PARTIAL */
} nnft_mercer_method;

/* Storage for k modes of n points, 1 <= k <= n. *m is zeroed first (nnft_mercer_free is safe
 * after a failure). NNFT_EDOM for bad sizes, NNFT_ENOMEM, NNFT_EOVERFLOW. */
nnft_status nnft_mercer_alloc(size_t n, size_t k, nnft_mercer *m);
void nnft_mercer_free(nnft_mercer *m); /* NULL and a zeroed struct are fine */

/* Decompose the symmetric n x n kernel matrix K (lower triangle read, symmetry and finiteness
 * checked as in nnft_linalg_eigh) into the m->k leading modes. Errors: NNFT_EDIM (K not n x n),
 * NNFT_EDOM (asymmetric), NNFT_ENONFINITE, NNFT_ENOCONV, NNFT_ENOMEM; diag explains them.
 * Workspace: a copy of K plus dsyevr's (and, for FULL with k < n, n² for all vectors).
 * O(4n³/3 + n² k). */
nnft_status nnft_mercer_decompose(const nnft_mat *K, nnft_mercer_method method, nnft_mercer *m,
                                  nnft_linalg_diag *diag);

/* Nyström extension: out (r x k) = Ks φ diag(1/(n λ)) for Ks = K(Xnew, X) (r x n). Modes with
 * λ_k <= 0 (numerically null: their extension is undefined) give a zero column. At the training
 * points (Ks = K(X,X)) it reproduces φ exactly for every mode with λ_k > 0, up to rounding
 * amplified by λ_1/λ_k. O(r n k). */
nnft_status nnft_mercer_extend(const nnft_mercer *m, const nnft_mat *Ks, nnft_mat *out);

/* The same through a kernel: Xnew (r x d), X (n x d) the points the modes were computed on;
 * K(Xnew, X) is evaluated in row blocks of at most 2^22 doubles. */
nnft_status nnft_mercer_extend_kernel(const nnft_mercer *m, const nnft_kernel *kern,
                                      const nnft_mat *X, const nnft_mat *Xnew, nnft_mat *out);

/* Target coefficients: out (k x c) = (1/n) φᵀ y for y (n x c). O(n k c). */
nnft_status nnft_mercer_project(const nnft_mercer *m, const nnft_mat *y, nnft_mat *out);

#endif
