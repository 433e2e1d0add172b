/* nnft_linalg: dense linear algebra over LAPACKE (column-major, float64).
 *
 * Conventions shared by every function here:
 * - Inputs are const and never modified: LAPACK works on copies (the outputs, or workspaces).
 * - Outputs are allocated by the caller with the documented shapes (checked: NNFT_EDIM).
 *   An output may share storage with the right-hand side B where noted, never with A.
 * - Workspaces are allocated with nnft_alloc (after an explicit LAPACK workspace query) and freed
 *   before returning, so a failing allocator reaches every path; the LAPACKE_*_work entry points
 *   with LAPACK_COL_MAJOR allocate nothing themselves.
 * - Inputs with NaN or Inf give NNFT_ENONFINITE; non-square input where a square one is needed
 *   gives NNFT_EDIM; a clearly non-symmetric input to a symmetric routine (max |A - Aᵀ| above
 *   NNFT_LINALG_SYM_TOL times max |A|) gives NNFT_EDOM. LAPACK info < 0 is NNFT_EINTERNAL (a bug
 *   in nnft); info > 0 becomes NNFT_ENOTPD, NNFT_ESINGULAR or NNFT_ENOCONV.
 * - `diag` (may be NULL) receives the numerical details of a failure: a 1-based index (leading
 *   minor or pivot), the extreme eigenvalues of a non-PD input, and a ready English message
 *   ("matrix is not positive definite (leading minor 3 of 5 is not positive; smallest
 *   eigenvalue -0.12, largest 4.1)") that the bindings prefix with the function's name.
 * Costs are O(n³) for n x n inputs unless stated. */
#ifndef NNFT_LINALG_H
#define NNFT_LINALG_H

#include <stddef.h>

#include "nnft_mat.h"
#include "nnft_status.h"

/* Relative asymmetry above which symmetric routines refuse their input. */
#define NNFT_LINALG_SYM_TOL 1e-10

typedef struct nnft_linalg_diag {
  size_t index;     /* 1-based failing leading minor (ENOTPD) or zero pivot (ESINGULAR); 0: none */
  double min_eig;   /* ENOTPD: smallest eigenvalue of the input (NaN when not computed) */
  double max_eig;   /* ENOTPD: largest eigenvalue of the input (NaN when not computed) */
  double jitter;    /* chol: jitter used (success) or the last one tried (failure) */
  int tries;        /* chol: jittered factorisations attempted */
  char msg[320];    /* what went wrong, in words; "" on success */
} nnft_linalg_diag;

/* Relative asymmetry max_ij |a_ij - a_ji| / max_ij |a_ij| of a square matrix (0 for a zero
 * matrix). NNFT_EDIM if a is not square. O(n²). */
nnft_status nnft_linalg_asymmetry(const nnft_mat *a, double *rel);

/* ---- Cholesky ---- */

typedef struct nnft_chol_opts {
  int jitter;    /* 0: plain factorisation; 1: on failure retry with jitter (physics.md §5.1) */
  int max_tries; /* jittered attempts (>= 1; default 6) */
  int lower;     /* 1: A = L Lᵀ, return L (upper zeroed); 0: A = Uᵀ U, return U (lower zeroed) */
} nnft_chol_opts;

/* Default options: {jitter = 0, max_tries = 6, lower = 1}. */
nnft_chol_opts nnft_chol_defaults(void);

/* Cholesky factor of the symmetric positive definite n x n matrix a (its lower triangle is
 * read; symmetry is checked) into l (n x n, not sharing a's storage). With opts->jitter, a
 * failed factorisation is retried on a + δ I with δ = 1e-10 mean(diag a) (1e-10 if that mean is
 * not positive), growing ×10 per try for opts->max_tries tries; *jitter_used (may be NULL)
 * receives the δ that succeeded (0 if none was needed). On failure returns NNFT_ENOTPD and fills
 * diag with the failing minor and the extreme eigenvalues of a (one extra dsyevr, values only,
 * on the failure path only). opts NULL means defaults. Polls the interrupt flag between tries. */
nnft_status nnft_linalg_chol(const nnft_mat *a, const nnft_chol_opts *opts, nnft_mat *l,
                             double *jitter_used, nnft_linalg_diag *diag);

/* ---- solves ---- */

/* x = op(T)⁻¹ b for the n x n triangular t (only its lower (lower != 0) or upper triangle is
 * read), op(T) = Tᵀ when trans != 0. b is n x k; x is n x k and may share b's storage.
 * An exactly zero diagonal entry gives NNFT_ESINGULAR. LAPACK dtrtrs, O(n² k). */
nnft_status nnft_linalg_trisolve(const nnft_mat *t, const nnft_mat *b, int lower, int trans,
                                 nnft_mat *x, nnft_linalg_diag *diag);

/* x = (L Lᵀ)⁻¹ b for a lower Cholesky factor l (n x n; the lower triangle is read), b and x
 * n x k (x may share b's storage). A zero on L's diagonal gives NNFT_ESINGULAR. dpotrs, O(n² k). */
nnft_status nnft_linalg_cholsolve(const nnft_mat *l, const nnft_mat *b, nnft_mat *x,
                                  nnft_linalg_diag *diag);

/* x = a⁻¹ b for symmetric positive definite a (n x n), b and x n x k (x may share b's
 * storage). Non-PD a gives NNFT_ENOTPD with diag filled as in nnft_linalg_chol. dposv;
 * workspace n² doubles. */
nnft_status nnft_linalg_solve_spd(const nnft_mat *a, const nnft_mat *b, nnft_mat *x,
                                  nnft_linalg_diag *diag);

/* x = a⁻¹ b for a general square a (n x n) by LU with partial pivoting, b and x n x k (x may
 * share b's storage). An exactly zero pivot U(k,k) gives NNFT_ESINGULAR (diag->index = k).
 * dgesv; workspace n² doubles and n ints. */
nnft_status nnft_linalg_solve(const nnft_mat *a, const nnft_mat *b, nnft_mat *x,
                              nnft_linalg_diag *diag);

/* ---- symmetric eigenproblem ---- */

typedef enum {
  NNFT_EIGH_ALL,   /* every eigenvalue */
  NNFT_EIGH_INDEX, /* eigenvalues number il..iu (1-based) in the requested order */
  NNFT_EIGH_RANGE  /* eigenvalues in the half-open interval (vl, vu] */
} nnft_eigh_select;

typedef struct nnft_eigh_opts {
  int vectors;            /* compute eigenvectors (default 1) */
  nnft_eigh_select select;
  size_t il, iu;          /* NNFT_EIGH_INDEX: 1 <= il <= iu <= n, or il = iu + 1 (none) */
  double vl, vu;          /* NNFT_EIGH_RANGE: vl < vu */
  int descending;         /* 1 (default): largest first; 0: smallest first */
} nnft_eigh_opts;

/* Default options: all eigenpairs, vectors, descending. */
nnft_eigh_opts nnft_eigh_defaults(void);

/* Eigen-decomposition a = V diag(w) Vᵀ of the symmetric n x n matrix a (lower triangle read;
 * symmetry checked) by dsyevr (MRRR). w must be a column with at least as many rows as the
 * selection can return (n for ALL and RANGE, iu - il + 1 for INDEX) — all eigenpairs with
 * vectors go through dsyevd (divide and conquer, faster for the full spectrum); z (ignored when
 * !opts->vectors, may then be NULL) must be n x (at least that many) columns. *m receives the
 * number found; w[0..m) and z's first m columns hold them, in the requested order. Sign
 * convention: the entry of largest magnitude in each eigenvector is positive. Workspace: a
 * copy of a plus dsyevr's queried work. NNFT_ENOCONV if dsyevr reports an internal failure. */
nnft_status nnft_linalg_eigh(const nnft_mat *a, const nnft_eigh_opts *opts, nnft_mat *w,
                             nnft_mat *z, size_t *m, nnft_linalg_diag *diag);

/* ---- SVD and least squares ---- */

/* Singular value decomposition a = U diag(s) Vt of the m x n matrix a by dgesdd
 * (divide and conquer), k = min(m, n), s descending (k x 1). With vectors: u is m x k and vt is
 * k x n (full = 0), or m x m and n x n (full != 0); without, u and vt are ignored (may be NULL).
 * Sign convention: the entry of largest magnitude in each of the first k columns of U is
 * positive (the matching row of Vt flips with it). NNFT_ENOCONV if the bidiagonal solver fails.
 * Workspace: a copy of a plus the queried work. O(m n k). */
nnft_status nnft_linalg_svd(const nnft_mat *a, int vectors, int full, nnft_mat *u, nnft_mat *s,
                            nnft_mat *vt, nnft_linalg_diag *diag);

/* Minimum-norm least-squares solution x = argmin ||a x - b||₂ (then min ||x||₂) for the m x n
 * a and m x k b, by dgelsd (SVD). Singular values s_i <= rcond s_1 count as zero (rcond < 0:
 * machine precision). x is n x k, s is min(m, n) x 1 (a's singular values, descending), *rank
 * the effective rank. Workspace: copies of a and b (max(m,n) x k) plus the queried work. */
nnft_status nnft_linalg_lstsq(const nnft_mat *a, const nnft_mat *b, double rcond, nnft_mat *x,
                              nnft_mat *s, size_t *rank, nnft_linalg_diag *diag);

/* ---- determinants and inverses ---- */

/* log det a = 2 Σ log L_ii for symmetric positive definite a, via Cholesky (no jitter).
 * Non-PD gives NNFT_ENOTPD (diag as in nnft_linalg_chol). Workspace n² doubles. */
nnft_status nnft_linalg_logdet_spd(const nnft_mat *a, double *logdet, nnft_linalg_diag *diag);

/* log |det a| and sign(det a) ∈ {-1, 0, 1} for a general square a via LU (dgetrf):
 * det = Π U_ii × (-1)^(row swaps). An exactly singular a is not an error: *logabsdet = -inf,
 * *sign = 0 (as numpy's slogdet). The empty matrix has det 1. Workspace n² doubles, n ints. */
nnft_status nnft_linalg_logdet(const nnft_mat *a, double *logabsdet, double *sign,
                               nnft_linalg_diag *diag);

/* ainv = a⁻¹ for a general square a (dgetrf + dgetri), n x n, not sharing a's storage.
 * Exactly zero pivot: NNFT_ESINGULAR (diag->index = k). Workspace n ints + queried work. */
nnft_status nnft_linalg_inv(const nnft_mat *a, nnft_mat *ainv, nnft_linalg_diag *diag);

/* ainv = a⁻¹ for symmetric positive definite a (dpotrf + dpotri), both triangles filled.
 * Non-PD: NNFT_ENOTPD with diag as in nnft_linalg_chol. No workspace beyond ainv (except on the
 * failure path, for the eigenvalues). */
nnft_status nnft_linalg_inv_spd(const nnft_mat *a, nnft_mat *ainv, nnft_linalg_diag *diag);

#endif
