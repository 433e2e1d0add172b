/* nnft_linalg: Cholesky (with the jitter policy of physics.md §5.1), triangular/SPD/general
 * solves, symmetric eigenproblem, SVD, least squares, log-determinants and inverses over
 * LAPACKE. Every LAPACK call goes through a LAPACKE_*_work entry point in column-major layout,
 * after an explicit workspace query, so that all memory comes from nnft_alloc. */
#include "nnft_linalg.h"

#include <lapacke.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "nnft_alloc.h"

/* ---------------- helpers ---------------- */

static void diag_reset(nnft_linalg_diag *d) {
  d->index = 0;
  d->min_eig = NAN;
  d->max_eig = NAN;
  d->jitter = 0.0;
  d->tries = 0;
  d->msg[0] = '\0';
}

/* Record a message in d and return s. */
static nnft_status fail(nnft_linalg_diag *d, nnft_status s, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(d->msg, sizeof d->msg, fmt, ap);
  va_end(ap);
  return s;
}

static nnft_status lapack_bug(nnft_linalg_diag *d, const char *routine, int info) {
  return fail(d, NNFT_EINTERNAL,
              "LAPACKE_%s rejected argument %d (a bug in nnft; please report it)", routine,
              -info);
}

static nnft_status need_square(const nnft_mat *a, const char *name, nnft_linalg_diag *d) {
  if (a->rows != a->cols)
    return fail(d, NNFT_EDIM, "%s must be square, got %zu x %zu", name, a->rows, a->cols);
  return NNFT_OK;
}

static nnft_status need_finite(const nnft_mat *a, const char *name, nnft_linalg_diag *d) {
  if (!nnft_mat_all_finite(a)) return fail(d, NNFT_ENONFINITE, "%s contains NaN or Inf", name);
  return NNFT_OK;
}

/* Finite check of one triangle (diagonal included) of a square matrix. */
static nnft_status need_finite_tri(const nnft_mat *t, int lower, const char *name,
                                   nnft_linalg_diag *d) {
  size_t n = t->rows;
  for (size_t j = 0; j < n; j++) {
    size_t i0 = lower ? j : 0, i1 = lower ? n : j + 1;
    for (size_t i = i0; i < i1; i++)
      if (!isfinite(NNFT_AT(t, i, j)))
        return fail(d, NNFT_ENONFINITE, "%s contains NaN or Inf", name);
  }
  return NNFT_OK;
}

static nnft_status need_shape(const nnft_mat *m, size_t rows, size_t cols, const char *name,
                              nnft_linalg_diag *d) {
  if (!m || !m->data)
    return fail(d, NNFT_EDIM, "output %s is missing (needs %zu x %zu)", name, rows, cols);
  if (m->rows != rows || m->cols != cols)
    return fail(d, NNFT_EDIM, "output %s must be %zu x %zu, got %zu x %zu", name, rows, cols,
                m->rows, m->cols);
  return NNFT_OK;
}

static nnft_status need_symmetric(const nnft_mat *a, const char *name, nnft_linalg_diag *d) {
  double rel;
  nnft_status s = nnft_linalg_asymmetry(a, &rel);
  if (s) return s;
  if (rel > NNFT_LINALG_SYM_TOL)
    return fail(d, NNFT_EDOM,
                "%s is not symmetric (max |A - A^T| is %.3g of max |A|, tolerance %.0e); "
                "symmetrise it, e.g. (A + A:t()) / 2",
                name, rel, NNFT_LINALG_SYM_TOL);
  return NNFT_OK;
}

/* Do the storage ranges of a and b intersect? */
static int overlaps(const nnft_mat *a, const nnft_mat *b) {
  if (!a || !b || !a->data || !b->data || !a->rows || !a->cols || !b->rows || !b->cols)
    return 0;
  uintptr_t a0 = (uintptr_t)a->data, b0 = (uintptr_t)b->data;
  uintptr_t a1 = a0 + ((a->cols - 1) * a->ld + a->rows) * sizeof(double);
  uintptr_t b1 = b0 + ((b->cols - 1) * b->ld + b->rows) * sizeof(double);
  return a0 < b1 && b0 < a1;
}

/* An output may be exactly the right-hand side (same storage), never a partial overlap. */
static int same_storage(const nnft_mat *a, const nnft_mat *b) {
  return a->data == b->data && a->ld == b->ld;
}

static nnft_status no_alias(const nnft_mat *out, const nnft_mat *in, const char *oname,
                            const char *iname, nnft_linalg_diag *d) {
  if (overlaps(out, in))
    return fail(d, NNFT_EDOM, "output %s must not share storage with %s", oname, iname);
  return NNFT_OK;
}

static nnft_status to_int(size_t v, int *out, nnft_linalg_diag *d) {
  if (nnft_blas_int(v, out))
    return fail(d, NNFT_EOVERFLOW, "dimension %zu exceeds what LAPACK can index", v);
  return NNFT_OK;
}

/* count elements of elsize bytes from nnft_alloc (checked size). */
static nnft_status ws_alloc(size_t count, size_t elsize, void **out, nnft_linalg_diag *d) {
  size_t bytes;
  *out = NULL;
  if (nnft_size_mul(count ? count : 1, elsize, &bytes))
    return fail(d, NNFT_EOVERFLOW, "workspace of %zu elements is too large", count);
  *out = nnft_alloc(bytes);
  if (!*out)
    return fail(d, NNFT_ENOMEM, "out of memory allocating a %.1f MiB workspace",
                (double)bytes / 1048576.0);
  return NNFT_OK;
}

/* A contiguous rows x cols matrix over caller-provided storage. */
static nnft_mat wrap(double *p, size_t rows, size_t cols) {
  nnft_mat m = {rows, cols, rows ? rows : 1, p, 0};
  return m;
}

/* Allocate a contiguous rows x cols scratch matrix. */
static nnft_status scratch_alloc(size_t rows, size_t cols, nnft_mat *m, nnft_linalg_diag *d) {
  size_t count;
  if (nnft_size_mul(rows, cols, &count))
    return fail(d, NNFT_EOVERFLOW, "a %zu x %zu workspace is too large", rows, cols);
  void *p;
  nnft_status s = ws_alloc(count, sizeof(double), &p, d);
  if (s) return s;
  *m = wrap(p, rows, cols);
  return NNFT_OK;
}

/* A LAPACK workspace-query result as a size (at least minimum). */
static nnft_status query_size(double q, size_t minimum, int *out, nnft_linalg_diag *d) {
  if (!(q >= 0) || q > 2147483647.0)
    return fail(d, NNFT_EOVERFLOW, "LAPACK asks for a workspace of %.3g elements", q);
  size_t v = (size_t)q;
  if (v < minimum) v = minimum;
  if (v < 1) v = 1;
  return to_int(v, out, d);
}

/* dst = lower triangle of src + jit I, strict upper triangle zeroed (square, same n). */
static void copy_lower(const nnft_mat *src, nnft_mat *dst, double jit) {
  size_t n = src->rows;
  for (size_t j = 0; j < n; j++) {
    double *c = dst->data + j * dst->ld;
    const double *s = src->data + j * src->ld;
    for (size_t i = 0; i < j; i++) c[i] = 0.0;
    c[j] = s[j] + jit;
    for (size_t i = j + 1; i < n; i++) c[i] = s[i];
  }
}

/* Fill the strict upper triangle from the lower one. */
static void mirror_lower(nnft_mat *m) {
  size_t n = m->rows;
  for (size_t j = 0; j < n; j++)
    for (size_t i = 0; i < j; i++) NNFT_AT(m, i, j) = NNFT_AT(m, j, i);
}

/* In-place transpose of a square matrix. */
static void transpose_square(nnft_mat *m) {
  size_t n = m->rows;
  for (size_t j = 0; j < n; j++)
    for (size_t i = 0; i < j; i++) {
      double t = NNFT_AT(m, i, j);
      NNFT_AT(m, i, j) = NNFT_AT(m, j, i);
      NNFT_AT(m, j, i) = t;
    }
}

/* Make the entry of largest magnitude in column j of u positive (first one on ties), flipping
 * row j of vt (may be NULL) with it. Fixes the sign freedom of eigen- and singular vectors. */
static void fix_sign(nnft_mat *u, size_t j, nnft_mat *vt) {
  double *c = u->data + j * u->ld, best = 0.0;
  size_t ib = 0;
  for (size_t i = 0; i < u->rows; i++)
    if (fabs(c[i]) > best) {
      best = fabs(c[i]);
      ib = i;
    }
  if (c[ib] >= 0.0) return;
  for (size_t i = 0; i < u->rows; i++) c[i] = -c[i];
  if (vt)
    for (size_t k = 0; k < vt->cols; k++) NNFT_AT(vt, j, k) = -NNFT_AT(vt, j, k);
}

/* Extreme eigenvalues of the symmetric matrix whose lower triangle is in c (n x n, contiguous
 * or not; overwritten), values only (dsyevr). On a LAPACK failure the values stay NaN and the
 * status is NNFT_OK: this only decorates an error message. */
static nnft_status eig_extremes(nnft_mat *c, double *lo, double *hi, nnft_linalg_diag *d) {
  *lo = *hi = NAN;
  int n, ldc, m, info, lwork, liwork, iq;
  double wq, zdummy = 0.0;
  nnft_status s;
  if ((s = to_int(c->rows, &n, d)) || (s = to_int(c->ld, &ldc, d))) return s;
  if (n == 0) return NNFT_OK;
  info = LAPACKE_dsyevr_work(LAPACK_COL_MAJOR, 'N', 'A', 'L', n, c->data, ldc, 0.0, 0.0, 0, 0,
                             0.0, &m, &zdummy, &zdummy, 1, &iq, &wq, -1, &iq, -1);
  if (info < 0) return lapack_bug(d, "dsyevr_work", info);
  if ((s = query_size(wq, 26 * (size_t)n, &lwork, d))) return s;
  if ((s = query_size(iq, 10 * (size_t)n, &liwork, d))) return s;
  double *work = NULL;
  int *iwork = NULL;
  /* doubles: n eigenvalues then lwork; ints: 2n isuppz then liwork */
  if ((s = ws_alloc((size_t)n + (size_t)lwork, sizeof(double), (void **)&work, d))) goto done;
  if ((s = ws_alloc(2 * (size_t)n + (size_t)liwork, sizeof(int), (void **)&iwork, d))) goto done;
  info = LAPACKE_dsyevr_work(LAPACK_COL_MAJOR, 'N', 'A', 'L', n, c->data, ldc, 0.0, 0.0, 0, 0,
                             0.0, &m, work, &zdummy, 1, iwork, work + n, lwork,
                             iwork + 2 * (size_t)n, liwork);
  if (info < 0) {
    s = lapack_bug(d, "dsyevr_work", info);
  } else if (info == 0 && m == n) {
    *lo = work[0];
    *hi = work[n - 1];
  }
done:
  nnft_free(work);
  nnft_free(iwork);
  return s;
}

/* The failure report of a non-PD input a (factorisation failed at leading minor k): extreme
 * eigenvalues computed on scratch (n x n, overwritten), message in d. Returns NNFT_ENOTPD, or
 * the status of the eigenvalue computation if that itself failed (e.g. NNFT_ENOMEM). */
static nnft_status not_pd(const nnft_mat *a, size_t k, nnft_mat *scratch, nnft_linalg_diag *d) {
  copy_lower(a, scratch, 0.0);
  nnft_status s = eig_extremes(scratch, &d->min_eig, &d->max_eig, d);
  if (s) return s;
  d->index = k;
  if (isnan(d->min_eig))
    return fail(d, NNFT_ENOTPD,
                "matrix is not positive definite (leading minor %zu of %zu is not positive)", k,
                a->rows);
  return fail(d, NNFT_ENOTPD,
              "matrix is not positive definite (leading minor %zu of %zu is not positive; "
              "smallest eigenvalue %.3g, largest %.3g)",
              k, a->rows, d->min_eig, d->max_eig);
}

/* Checks shared by the solves: square a (named aname), b with n rows, x shaped like b, finite,
 * x not overlapping a and either exactly b's storage or disjoint from it. */
static nnft_status solve_checks(const nnft_mat *a, const char *aname, const nnft_mat *b,
                                const nnft_mat *x, nnft_linalg_diag *d) {
  nnft_status s;
  if ((s = need_square(a, aname, d))) return s;
  if (b->rows != a->rows)
    return fail(d, NNFT_EDIM, "B has %zu rows but %s is %zu x %zu", b->rows, aname, a->rows,
                a->cols);
  if ((s = need_shape(x, b->rows, b->cols, "X", d))) return s;
  if ((s = need_finite(b, "B", d))) return s;
  if ((s = no_alias(x, a, "X", aname, d))) return s;
  if (!same_storage(x, b) && (s = no_alias(x, b, "X", "B", d))) return s;
  return NNFT_OK;
}

/* ---------------- public ---------------- */

nnft_status nnft_linalg_asymmetry(const nnft_mat *a, double *rel) {
  if (a->rows != a->cols) return NNFT_EDIM;
  size_t n = a->rows;
  double maxabs = 0.0, maxdiff = 0.0;
  for (size_t j = 0; j < n; j++) {
    for (size_t i = 0; i < n; i++) {
      double v = fabs(NNFT_AT(a, i, j));
      if (v > maxabs) maxabs = v;
    }
    for (size_t i = j + 1; i < n; i++) {
      double dv = fabs(NNFT_AT(a, i, j) - NNFT_AT(a, j, i));
      if (dv > maxdiff) maxdiff = dv;
    }
  }
  *rel = maxabs > 0.0 ? maxdiff / maxabs : 0.0;
  return NNFT_OK;
}

nnft_chol_opts nnft_chol_defaults(void) {
  nnft_chol_opts o = {0, 6, 1};
  return o;
}

nnft_status nnft_linalg_chol(const nnft_mat *a, const nnft_chol_opts *opts, nnft_mat *l,
                             double *jitter_used, nnft_linalg_diag *diag) {
  nnft_linalg_diag dummy;
  nnft_linalg_diag *d = diag ? diag : &dummy;
  diag_reset(d);
  if (jitter_used) *jitter_used = 0.0;
  nnft_chol_opts o = opts ? *opts : nnft_chol_defaults();
  nnft_status s;
  if ((s = need_square(a, "A", d))) return s;
  size_t n = a->rows;
  if ((s = need_shape(l, n, n, "L", d))) return s;
  if ((s = no_alias(l, a, "L", "A", d))) return s;
  if (o.jitter && o.max_tries < 1)
    return fail(d, NNFT_EDOM, "max_tries must be at least 1, got %d", o.max_tries);
  if ((s = need_finite(a, "A", d))) return s;
  if ((s = need_symmetric(a, "A", d))) return s;
  int ni, ldl;
  if ((s = to_int(n, &ni, d)) || (s = to_int(l->ld, &ldl, d))) return s;
  if (n == 0) return NNFT_OK;

  double mean = 0.0;
  for (size_t i = 0; i < n; i++) mean += NNFT_AT(a, i, i);
  mean /= (double)n;
  const double base = mean > 0.0 ? 1e-10 * mean : 1e-10;
  double jit = 0.0;
  int tries = 0, info, first_info = 0;
  for (;;) {
    copy_lower(a, l, jit);
    info = LAPACKE_dpotrf_work(LAPACK_COL_MAJOR, 'L', ni, l->data, ldl);
    if (info < 0) return lapack_bug(d, "dpotrf_work", info);
    if (info == 0) break;
    if (!first_info) first_info = info;
    if (!o.jitter || tries >= o.max_tries) break;
    if (nnft_interrupted()) return fail(d, NNFT_EINTR, "interrupted");
    jit = tries == 0 ? base : jit * 10.0;
    tries++;
  }
  d->jitter = jit;
  d->tries = tries;
  if (info > 0) {
    d->index = (size_t)info;
    if (!o.jitter) return not_pd(a, (size_t)first_info, l, d);
    copy_lower(a, l, 0.0);
    if ((s = eig_extremes(l, &d->min_eig, &d->max_eig, d))) return s;
    if (isnan(d->min_eig))
      return fail(d, NNFT_ENOTPD,
                  "matrix is not positive definite even with jitter %.3g added to the diagonal "
                  "(%d tries from %.3g)",
                  jit, tries, base);
    return fail(d, NNFT_ENOTPD,
                "matrix is not positive definite even with jitter %.3g added to the diagonal "
                "(%d tries from %.3g; smallest eigenvalue %.3g, largest %.3g)",
                jit, tries, base, d->min_eig, d->max_eig);
  }
  if (!o.lower) transpose_square(l);
  if (jitter_used) *jitter_used = jit;
  return NNFT_OK;
}

nnft_status nnft_linalg_trisolve(const nnft_mat *t, const nnft_mat *b, int lower, int trans,
                                 nnft_mat *x, nnft_linalg_diag *diag) {
  nnft_linalg_diag dummy;
  nnft_linalg_diag *d = diag ? diag : &dummy;
  diag_reset(d);
  nnft_status s;
  if ((s = solve_checks(t, "T", b, x, d))) return s;
  if ((s = need_finite_tri(t, lower, "T", d))) return s;
  int n, k, ldt, ldx;
  if ((s = to_int(t->rows, &n, d)) || (s = to_int(b->cols, &k, d)) ||
      (s = to_int(t->ld, &ldt, d)) || (s = to_int(x->ld, &ldx, d)))
    return s;
  nnft_mat_copy(b, x);
  if (n == 0 || k == 0) return NNFT_OK;
  int info = LAPACKE_dtrtrs_work(LAPACK_COL_MAJOR, lower ? 'L' : 'U', trans ? 'T' : 'N', 'N', n,
                                 k, t->data, ldt, x->data, ldx);
  if (info < 0) return lapack_bug(d, "dtrtrs_work", info);
  if (info > 0) {
    d->index = (size_t)info;
    return fail(d, NNFT_ESINGULAR,
                "triangular matrix is singular: T(%d,%d) is exactly zero", info, info);
  }
  return NNFT_OK;
}

nnft_status nnft_linalg_cholsolve(const nnft_mat *l, const nnft_mat *b, nnft_mat *x,
                                  nnft_linalg_diag *diag) {
  nnft_linalg_diag dummy;
  nnft_linalg_diag *d = diag ? diag : &dummy;
  diag_reset(d);
  nnft_status s;
  if ((s = solve_checks(l, "L", b, x, d))) return s;
  if ((s = need_finite_tri(l, 1, "L", d))) return s;
  int n, k, ldl, ldx;
  if ((s = to_int(l->rows, &n, d)) || (s = to_int(b->cols, &k, d)) ||
      (s = to_int(l->ld, &ldl, d)) || (s = to_int(x->ld, &ldx, d)))
    return s;
  for (size_t i = 0; i < l->rows; i++)
    if (NNFT_AT(l, i, i) == 0.0) {
      d->index = i + 1;
      return fail(d, NNFT_ESINGULAR,
                  "Cholesky factor is singular: L(%zu,%zu) is exactly zero", i + 1, i + 1);
    }
  nnft_mat_copy(b, x);
  if (n == 0 || k == 0) return NNFT_OK;
  int info = LAPACKE_dpotrs_work(LAPACK_COL_MAJOR, 'L', n, k, l->data, ldl, x->data, ldx);
  if (info < 0) return lapack_bug(d, "dpotrs_work", info);
  return NNFT_OK;
}

nnft_status nnft_linalg_solve_spd(const nnft_mat *a, const nnft_mat *b, nnft_mat *x,
                                  nnft_linalg_diag *diag) {
  nnft_linalg_diag dummy;
  nnft_linalg_diag *d = diag ? diag : &dummy;
  diag_reset(d);
  nnft_status s;
  if ((s = solve_checks(a, "A", b, x, d))) return s;
  if ((s = need_finite(a, "A", d))) return s;
  if ((s = need_symmetric(a, "A", d))) return s;
  int n, k, ldx;
  if ((s = to_int(a->rows, &n, d)) || (s = to_int(b->cols, &k, d)) ||
      (s = to_int(x->ld, &ldx, d)))
    return s;
  if (n == 0) return NNFT_OK;
  nnft_mat c;
  if ((s = scratch_alloc(a->rows, a->rows, &c, d))) return s;
  copy_lower(a, &c, 0.0);
  nnft_mat_copy(b, x);
  int info = LAPACKE_dposv_work(LAPACK_COL_MAJOR, 'L', n, k, c.data, n, x->data, ldx);
  if (info < 0) s = lapack_bug(d, "dposv_work", info);
  else if (info > 0) s = not_pd(a, (size_t)info, &c, d);
  nnft_free(c.data);
  return s;
}

nnft_status nnft_linalg_solve(const nnft_mat *a, const nnft_mat *b, nnft_mat *x,
                              nnft_linalg_diag *diag) {
  nnft_linalg_diag dummy;
  nnft_linalg_diag *d = diag ? diag : &dummy;
  diag_reset(d);
  nnft_status s;
  if ((s = solve_checks(a, "A", b, x, d))) return s;
  if ((s = need_finite(a, "A", d))) return s;
  int n, k, ldx;
  if ((s = to_int(a->rows, &n, d)) || (s = to_int(b->cols, &k, d)) ||
      (s = to_int(x->ld, &ldx, d)))
    return s;
  if (n == 0) return NNFT_OK;
  nnft_mat c = {0};
  int *ipiv = NULL;
  if ((s = scratch_alloc(a->rows, a->rows, &c, d))) goto done;
  if ((s = ws_alloc(a->rows, sizeof(int), (void **)&ipiv, d))) goto done;
  nnft_mat_copy(a, &c);
  nnft_mat_copy(b, x);
  int info = LAPACKE_dgesv_work(LAPACK_COL_MAJOR, n, k, c.data, n, ipiv, x->data, ldx);
  if (info < 0) {
    s = lapack_bug(d, "dgesv_work", info);
  } else if (info > 0) {
    d->index = (size_t)info;
    s = fail(d, NNFT_ESINGULAR, "matrix is singular: U(%d,%d) is exactly zero", info, info);
  }
done:
  nnft_free(c.data);
  nnft_free(ipiv);
  return s;
}

nnft_eigh_opts nnft_eigh_defaults(void) {
  nnft_eigh_opts o = {1, NNFT_EIGH_ALL, 0, 0, 0.0, 0.0, 1};
  return o;
}

/* All eigenpairs by divide and conquer (dsyevd): for the full spectrum with vectors it is faster
 * than MRRR (dsyevr) on OpenBLAS, and it is what numpy's eigh uses. The vectors overwrite the
 * scratch copy c, then go to z in the requested order with the sign convention applied. */
static nnft_status eigh_all_dsyevd(const nnft_mat *a, int descending, nnft_mat *c, nnft_mat *w,
                                   nnft_mat *z, size_t *m, nnft_linalg_diag *d) {
  size_t n = a->rows;
  int ni = (int)n, lwork, liwork, iq, info;
  double wq;
  double *work = NULL;
  int *iwork = NULL;
  nnft_status s = NNFT_OK;
  info = LAPACKE_dsyevd_work(LAPACK_COL_MAJOR, 'V', 'L', ni, c->data, ni, w->data, &wq, -1, &iq,
                             -1);
  if (info < 0) return lapack_bug(d, "dsyevd_work", info);
  if ((s = query_size(wq, 1 + 6 * n + 2 * n * n, &lwork, d)) ||
      (s = query_size(iq, 3 + 5 * n, &liwork, d)))
    return s;
  /* doubles: n ascending eigenvalues then lwork; ints: liwork */
  if ((s = ws_alloc(n + (size_t)lwork, sizeof(double), (void **)&work, d))) goto done;
  if ((s = ws_alloc((size_t)liwork, sizeof(int), (void **)&iwork, d))) goto done;
  copy_lower(a, c, 0.0);
  info = LAPACKE_dsyevd_work(LAPACK_COL_MAJOR, 'V', 'L', ni, c->data, ni, work, work + n, lwork,
                             iwork, liwork);
  if (info < 0) {
    s = lapack_bug(d, "dsyevd_work", info);
    goto done;
  }
  if (info > 0) {
    s = fail(d, NNFT_ENOCONV, "the symmetric eigensolver (dsyevd) failed to converge (info %d)",
             info);
    goto done;
  }
  for (size_t j = 0; j < n; j++) {
    size_t src = descending ? n - 1 - j : j;
    w->data[j] = work[src];
    memcpy(z->data + j * z->ld, c->data + src * c->ld, n * sizeof(double));
    fix_sign(z, j, NULL);
  }
  *m = n;
done:
  nnft_free(work);
  nnft_free(iwork);
  return s;
}

nnft_status nnft_linalg_eigh(const nnft_mat *a, const nnft_eigh_opts *opts, nnft_mat *w,
                             nnft_mat *z, size_t *m, nnft_linalg_diag *diag) {
  nnft_linalg_diag dummy;
  nnft_linalg_diag *d = diag ? diag : &dummy;
  diag_reset(d);
  *m = 0;
  nnft_eigh_opts o = opts ? *opts : nnft_eigh_defaults();
  nnft_status s;
  if ((s = need_square(a, "A", d))) return s;
  size_t n = a->rows, cap = n;
  char range = 'A';
  switch (o.select) {
  case NNFT_EIGH_ALL: break;
  case NNFT_EIGH_INDEX:
    if (o.il < 1 || o.iu > n || o.il > o.iu + 1)
      return fail(d, NNFT_EDOM,
                  "eigenvalue index range %zu..%zu is not within 1..%zu", o.il, o.iu, n);
    cap = o.iu + 1 - o.il;
    range = 'I';
    break;
  case NNFT_EIGH_RANGE:
    if (!isfinite(o.vl) || !isfinite(o.vu) || !(o.vl < o.vu))
      return fail(d, NNFT_EDOM, "eigenvalue range (%g, %g] must be finite with lo < hi", o.vl,
                  o.vu);
    range = 'V';
    break;
  default: return fail(d, NNFT_EDOM, "unknown eigenvalue selection %d", (int)o.select);
  }
  if (!w || !w->data || w->cols != 1 || w->rows < cap)
    return fail(d, NNFT_EDIM, "output w must be a column with at least %zu rows", cap);
  if (o.vectors && (!z || !z->data || z->rows != n || z->cols < cap))
    return fail(d, NNFT_EDIM, "output V must be %zu x (at least %zu)", n, cap);
  if ((s = no_alias(w, a, "w", "A", d))) return s;
  if (o.vectors && ((s = no_alias(z, a, "V", "A", d)) || (s = no_alias(z, w, "V", "w", d))))
    return s;
  if ((s = need_finite(a, "A", d))) return s;
  if ((s = need_symmetric(a, "A", d))) return s;
  int ni, ldz = 1, mi = 0, il = 0, iu = 0, info, lwork, liwork, iq;
  if ((s = to_int(n, &ni, d))) return s;
  if (o.vectors && (s = to_int(z->ld, &ldz, d))) return s;
  if (n == 0 || cap == 0) return NNFT_OK;
  if (range == 'I') {
    /* LAPACK counts in ascending order */
    size_t lo = o.descending ? n + 1 - o.iu : o.il, hi = o.descending ? n + 1 - o.il : o.iu;
    il = (int)lo;
    iu = (int)hi;
  }
  char jobz = o.vectors ? 'V' : 'N';
  double zdummy = 0.0, wq;
  double *zdata = o.vectors ? z->data : &zdummy;
  const double abstol = LAPACKE_dlamch_work('S');
  nnft_mat c = {0};
  double *work = NULL;
  int *iwork = NULL;
  if ((s = scratch_alloc(n, n, &c, d))) goto done;
  if (range == 'A' && o.vectors) {
    s = eigh_all_dsyevd(a, o.descending, &c, w, z, m, d);
    goto done;
  }
  info = LAPACKE_dsyevr_work(LAPACK_COL_MAJOR, jobz, range, 'L', ni, c.data, ni, o.vl, o.vu, il,
                             iu, abstol, &mi, &zdummy, zdata, ldz, &iq, &wq, -1, &iq, -1);
  if (info < 0) {
    s = lapack_bug(d, "dsyevr_work", info);
    goto done;
  }
  if ((s = query_size(wq, 26 * n, &lwork, d)) || (s = query_size(iq, 10 * n, &liwork, d)))
    goto done;
  /* doubles: n eigenvalues (dsyevr may use all n) then lwork; ints: 2n isuppz then liwork */
  if ((s = ws_alloc(n + (size_t)lwork, sizeof(double), (void **)&work, d))) goto done;
  if ((s = ws_alloc(2 * n + (size_t)liwork, sizeof(int), (void **)&iwork, d))) goto done;
  copy_lower(a, &c, 0.0);
  info = LAPACKE_dsyevr_work(LAPACK_COL_MAJOR, jobz, range, 'L', ni, c.data, ni, o.vl, o.vu, il,
                             iu, abstol, &mi, work, zdata, ldz, iwork, work + n, lwork,
                             iwork + 2 * n, liwork);
  if (info < 0) {
    s = lapack_bug(d, "dsyevr_work", info);
    goto done;
  }
  if (info > 0) {
    s = fail(d, NNFT_ENOCONV, "the symmetric eigensolver (dsyevr) failed internally (info %d)",
             info);
    goto done;
  }
  size_t mm = (size_t)mi;
  for (size_t i = 0; i < mm; i++) w->data[i] = work[o.descending ? mm - 1 - i : i];
  if (o.vectors) {
    if (o.descending)
      for (size_t j = 0; j < mm / 2; j++) {
        double *p = z->data + j * z->ld, *q = z->data + (mm - 1 - j) * z->ld;
        for (size_t i = 0; i < n; i++) {
          double t = p[i];
          p[i] = q[i];
          q[i] = t;
        }
      }
    for (size_t j = 0; j < mm; j++) fix_sign(z, j, NULL);
  }
  *m = mm;
done:
  nnft_free(c.data);
  nnft_free(work);
  nnft_free(iwork);
  return s;
}

nnft_status nnft_linalg_svd(const nnft_mat *a, int vectors, int full, nnft_mat *u, nnft_mat *s,
                            nnft_mat *vt, nnft_linalg_diag *diag) {
  nnft_linalg_diag dummy;
  nnft_linalg_diag *d = diag ? diag : &dummy;
  diag_reset(d);
  nnft_status st;
  size_t m = a->rows, n = a->cols, k = m < n ? m : n, mx = m < n ? n : m;
  if ((st = need_shape(s, k, 1, "s", d))) return st;
  if (vectors) {
    if ((st = need_shape(u, m, full ? m : k, "U", d))) return st;
    if ((st = need_shape(vt, full ? n : k, n, "Vt", d))) return st;
    if ((st = no_alias(u, a, "U", "A", d)) || (st = no_alias(vt, a, "Vt", "A", d)) ||
        (st = no_alias(u, s, "U", "s", d)) || (st = no_alias(vt, s, "Vt", "s", d)) ||
        (st = no_alias(u, vt, "U", "Vt", d)))
      return st;
  }
  if ((st = no_alias(s, a, "s", "A", d))) return st;
  if ((st = need_finite(a, "A", d))) return st;
  int mi, ni, ldu = 1, ldvt = 1, lwork, info, iq;
  if ((st = to_int(m, &mi, d)) || (st = to_int(n, &ni, d))) return st;
  if (vectors && ((st = to_int(u->ld, &ldu, d)) || (st = to_int(vt->ld, &ldvt, d)))) return st;
  if (k == 0) {
    if (vectors && full) {
      nnft_mat_eye(u);
      nnft_mat_eye(vt);
    }
    return NNFT_OK;
  }
  char jobz = vectors ? (full ? 'A' : 'S') : 'N';
  double dummyd = 0.0, wq;
  double *ud = vectors ? u->data : &dummyd, *vtd = vectors ? vt->data : &dummyd;
  /* LAPACK's documented minimum, in case a query underestimates */
  size_t kk, minwork;
  if (nnft_size_mul(k, k, &kk) || nnft_size_mul(kk, 4, &kk))
    return fail(d, NNFT_EOVERFLOW, "SVD workspace for min(m, n) = %zu is too large", k);
  minwork = vectors ? kk + 6 * k + mx : 3 * k + (mx > 7 * k ? mx : 7 * k);
  nnft_mat c = {0};
  double *work = NULL;
  int *iwork = NULL;
  if ((st = scratch_alloc(m, n, &c, d))) goto done;
  info = LAPACKE_dgesdd_work(LAPACK_COL_MAJOR, jobz, mi, ni, c.data, mi, s->data, ud, ldu, vtd,
                             ldvt, &wq, -1, &iq);
  if (info < 0) {
    st = lapack_bug(d, "dgesdd_work", info);
    goto done;
  }
  if ((st = query_size(wq, minwork, &lwork, d))) goto done;
  if ((st = ws_alloc((size_t)lwork, sizeof(double), (void **)&work, d))) goto done;
  if ((st = ws_alloc(8 * k, sizeof(int), (void **)&iwork, d))) goto done;
  nnft_mat_copy(a, &c);
  info = LAPACKE_dgesdd_work(LAPACK_COL_MAJOR, jobz, mi, ni, c.data, mi, s->data, ud, ldu, vtd,
                             ldvt, work, lwork, iwork);
  if (info < 0) {
    st = lapack_bug(d, "dgesdd_work", info);
    goto done;
  }
  if (info > 0) {
    st = fail(d, NNFT_ENOCONV,
              "the SVD did not converge (the bidiagonal divide-and-conquer solver failed, "
              "info %d)",
              info);
    goto done;
  }
  if (vectors)
    for (size_t j = 0; j < k; j++) fix_sign(u, j, vt);
done:
  nnft_free(c.data);
  nnft_free(work);
  nnft_free(iwork);
  return st;
}

nnft_status nnft_linalg_lstsq(const nnft_mat *a, const nnft_mat *b, double rcond, nnft_mat *x,
                              nnft_mat *s, size_t *rank, nnft_linalg_diag *diag) {
  nnft_linalg_diag dummy;
  nnft_linalg_diag *d = diag ? diag : &dummy;
  diag_reset(d);
  *rank = 0;
  nnft_status st;
  size_t m = a->rows, n = a->cols, k = b->cols, mn = m < n ? m : n, mx = m < n ? n : m;
  if (mx < 1) mx = 1;
  if (b->rows != m)
    return fail(d, NNFT_EDIM, "B has %zu rows but A is %zu x %zu", b->rows, m, n);
  if ((st = need_shape(x, n, k, "X", d)) || (st = need_shape(s, mn, 1, "s", d))) return st;
  if ((st = no_alias(x, a, "X", "A", d)) || (st = no_alias(x, b, "X", "B", d)) ||
      (st = no_alias(s, a, "s", "A", d)) || (st = no_alias(s, b, "s", "B", d)) ||
      (st = no_alias(s, x, "s", "X", d)))
    return st;
  if ((st = need_finite(a, "A", d)) || (st = need_finite(b, "B", d))) return st;
  if (isnan(rcond)) return fail(d, NNFT_EDOM, "rcond is NaN");
  int mi, ni, ki, ldb, info, lwork, liwork, iq = 0, ranki = 0;
  if ((st = to_int(m, &mi, d)) || (st = to_int(n, &ni, d)) || (st = to_int(k, &ki, d)) ||
      (st = to_int(mx, &ldb, d)))
    return st;
  if (mn == 0) { /* x = 0 solves every empty problem with minimum norm */
    nnft_mat_fill(x, 0.0);
    return NNFT_OK;
  }
  double wq;
  nnft_mat c = {0}, bb = {0};
  double *work = NULL;
  int *iwork = NULL;
  if ((st = scratch_alloc(m, n, &c, d))) goto done;
  if ((st = scratch_alloc(mx, k, &bb, d))) goto done;
  info = LAPACKE_dgelsd_work(LAPACK_COL_MAJOR, mi, ni, ki, c.data, mi, bb.data, ldb, s->data,
                             rcond, &ranki, &wq, -1, &iq);
  if (info < 0) {
    st = lapack_bug(d, "dgelsd_work", info);
    goto done;
  }
  if ((st = query_size(wq, 1, &lwork, d)) || (st = query_size(iq, 1, &liwork, d))) goto done;
  if ((st = ws_alloc((size_t)lwork, sizeof(double), (void **)&work, d))) goto done;
  if ((st = ws_alloc((size_t)liwork, sizeof(int), (void **)&iwork, d))) goto done;
  nnft_mat_copy(a, &c);
  nnft_mat_fill(&bb, 0.0);
  for (size_t j = 0; j < k; j++) memcpy(bb.data + j * bb.ld, b->data + j * b->ld, m * sizeof(double));
  info = LAPACKE_dgelsd_work(LAPACK_COL_MAJOR, mi, ni, ki, c.data, mi, bb.data, ldb, s->data,
                             rcond, &ranki, work, lwork, iwork);
  if (info < 0) {
    st = lapack_bug(d, "dgelsd_work", info);
    goto done;
  }
  if (info > 0) {
    st = fail(d, NNFT_ENOCONV,
              "the SVD inside the least-squares solve did not converge (%d off-diagonal "
              "elements did not reach zero)",
              info);
    goto done;
  }
  for (size_t j = 0; j < k; j++)
    memcpy(x->data + j * x->ld, bb.data + j * bb.ld, n * sizeof(double));
  *rank = (size_t)ranki;
done:
  nnft_free(c.data);
  nnft_free(bb.data);
  nnft_free(work);
  nnft_free(iwork);
  return st;
}

nnft_status nnft_linalg_logdet_spd(const nnft_mat *a, double *logdet, nnft_linalg_diag *diag) {
  nnft_linalg_diag dummy;
  nnft_linalg_diag *d = diag ? diag : &dummy;
  diag_reset(d);
  *logdet = NAN;
  nnft_status s;
  if ((s = need_square(a, "A", d)) || (s = need_finite(a, "A", d)) ||
      (s = need_symmetric(a, "A", d)))
    return s;
  size_t n = a->rows;
  int ni;
  if ((s = to_int(n, &ni, d))) return s;
  if (n == 0) {
    *logdet = 0.0;
    return NNFT_OK;
  }
  nnft_mat c;
  if ((s = scratch_alloc(n, n, &c, d))) return s;
  copy_lower(a, &c, 0.0);
  int info = LAPACKE_dpotrf_work(LAPACK_COL_MAJOR, 'L', ni, c.data, ni);
  if (info < 0) {
    s = lapack_bug(d, "dpotrf_work", info);
  } else if (info > 0) {
    s = not_pd(a, (size_t)info, &c, d);
  } else {
    double sum = 0.0, comp = 0.0; /* Neumaier */
    for (size_t i = 0; i < n; i++) {
      double v = log(NNFT_AT(&c, i, i)), t = sum + v;
      comp += fabs(sum) >= fabs(v) ? (sum - t) + v : (v - t) + sum;
      sum = t;
    }
    *logdet = 2.0 * (sum + comp);
  }
  nnft_free(c.data);
  return s;
}

nnft_status nnft_linalg_logdet(const nnft_mat *a, double *logabsdet, double *sign,
                               nnft_linalg_diag *diag) {
  nnft_linalg_diag dummy;
  nnft_linalg_diag *d = diag ? diag : &dummy;
  diag_reset(d);
  *logabsdet = NAN;
  *sign = NAN;
  nnft_status s;
  if ((s = need_square(a, "A", d)) || (s = need_finite(a, "A", d))) return s;
  size_t n = a->rows;
  int ni;
  if ((s = to_int(n, &ni, d))) return s;
  if (n == 0) {
    *logabsdet = 0.0;
    *sign = 1.0;
    return NNFT_OK;
  }
  nnft_mat c = {0};
  int *ipiv = NULL;
  if ((s = scratch_alloc(n, n, &c, d))) goto done;
  if ((s = ws_alloc(n, sizeof(int), (void **)&ipiv, d))) goto done;
  nnft_mat_copy(a, &c);
  int info = LAPACKE_dgetrf_work(LAPACK_COL_MAJOR, ni, ni, c.data, ni, ipiv);
  if (info < 0) {
    s = lapack_bug(d, "dgetrf_work", info);
  } else if (info > 0) {
    d->index = (size_t)info;
    *logabsdet = -INFINITY;
    *sign = 0.0;
  } else {
    double sum = 0.0, comp = 0.0, sg = 1.0;
    for (size_t i = 0; i < n; i++) {
      double u = NNFT_AT(&c, i, i), v = log(fabs(u)), t = sum + v;
      comp += fabs(sum) >= fabs(v) ? (sum - t) + v : (v - t) + sum;
      sum = t;
      if (u < 0) sg = -sg;
      if (ipiv[i] != (int)i + 1) sg = -sg;
    }
    *logabsdet = sum + comp;
    *sign = sg;
  }
done:
  nnft_free(c.data);
  nnft_free(ipiv);
  return s;
}

nnft_status nnft_linalg_inv(const nnft_mat *a, nnft_mat *ainv, nnft_linalg_diag *diag) {
  nnft_linalg_diag dummy;
  nnft_linalg_diag *d = diag ? diag : &dummy;
  diag_reset(d);
  nnft_status s;
  if ((s = need_square(a, "A", d))) return s;
  size_t n = a->rows;
  if ((s = need_shape(ainv, n, n, "Ainv", d)) || (s = no_alias(ainv, a, "Ainv", "A", d)) ||
      (s = need_finite(a, "A", d)))
    return s;
  int ni, ld, info, lwork;
  if ((s = to_int(n, &ni, d)) || (s = to_int(ainv->ld, &ld, d))) return s;
  if (n == 0) return NNFT_OK;
  int *ipiv = NULL;
  double *work = NULL, wq;
  if ((s = ws_alloc(n, sizeof(int), (void **)&ipiv, d))) goto done;
  nnft_mat_copy(a, ainv);
  info = LAPACKE_dgetrf_work(LAPACK_COL_MAJOR, ni, ni, ainv->data, ld, ipiv);
  if (info < 0) {
    s = lapack_bug(d, "dgetrf_work", info);
    goto done;
  }
  if (info > 0) {
    d->index = (size_t)info;
    s = fail(d, NNFT_ESINGULAR, "matrix is singular: U(%d,%d) is exactly zero", info, info);
    goto done;
  }
  info = LAPACKE_dgetri_work(LAPACK_COL_MAJOR, ni, ainv->data, ld, ipiv, &wq, -1);
  if (info < 0) {
    s = lapack_bug(d, "dgetri_work", info);
    goto done;
  }
  if ((s = query_size(wq, n, &lwork, d))) goto done;
  if ((s = ws_alloc((size_t)lwork, sizeof(double), (void **)&work, d))) goto done;
  info = LAPACKE_dgetri_work(LAPACK_COL_MAJOR, ni, ainv->data, ld, ipiv, work, lwork);
  if (info < 0) {
    s = lapack_bug(d, "dgetri_work", info);
  } else if (info > 0) {
    d->index = (size_t)info;
    s = fail(d, NNFT_ESINGULAR, "matrix is singular: U(%d,%d) is exactly zero", info, info);
  }
done:
  nnft_free(ipiv);
  nnft_free(work);
  return s;
}

nnft_status nnft_linalg_inv_spd(const nnft_mat *a, nnft_mat *ainv, nnft_linalg_diag *diag) {
  nnft_linalg_diag dummy;
  nnft_linalg_diag *d = diag ? diag : &dummy;
  diag_reset(d);
  nnft_status s;
  if ((s = need_square(a, "A", d))) return s;
  size_t n = a->rows;
  if ((s = need_shape(ainv, n, n, "Ainv", d)) || (s = no_alias(ainv, a, "Ainv", "A", d)) ||
      (s = need_finite(a, "A", d)) || (s = need_symmetric(a, "A", d)))
    return s;
  int ni, ld;
  if ((s = to_int(n, &ni, d)) || (s = to_int(ainv->ld, &ld, d))) return s;
  if (n == 0) return NNFT_OK;
  copy_lower(a, ainv, 0.0);
  int info = LAPACKE_dpotrf_work(LAPACK_COL_MAJOR, 'L', ni, ainv->data, ld);
  if (info < 0) return lapack_bug(d, "dpotrf_work", info);
  if (info > 0) return not_pd(a, (size_t)info, ainv, d);
  info = LAPACKE_dpotri_work(LAPACK_COL_MAJOR, 'L', ni, ainv->data, ld);
  if (info < 0) return lapack_bug(d, "dpotri_work", info);
  if (info > 0) {
    d->index = (size_t)info;
    return fail(d, NNFT_ENOTPD, "matrix is not positive definite (L(%d,%d) is zero)", info, info);
  }
  mirror_lower(ainv);
  return NNFT_OK;
}
