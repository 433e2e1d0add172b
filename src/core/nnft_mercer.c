/* nnft_mercer: empirical Mercer decomposition (physics.md §5.2); see nnft_mercer.h. */
#include "nnft_mercer.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "nnft_alloc.h"

static nnft_status fail(nnft_linalg_diag *d, nnft_status s, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(d->msg, sizeof d->msg, fmt, ap);
  va_end(ap);
  return s;
}

nnft_status nnft_mercer_alloc(size_t n, size_t k, nnft_mercer *m) {
  memset(m, 0, sizeof *m);
  if (n == 0 || k == 0 || k > n) return NNFT_EDOM;
  nnft_status s;
  if ((s = nnft_mat_alloc(k, 1, &m->values)) || (s = nnft_mat_alloc(n, k, &m->phi))) {
    nnft_mercer_free(m);
    return s;
  }
  m->n = n;
  m->k = k;
  return NNFT_OK;
}

void nnft_mercer_free(nnft_mercer *m) {
  if (!m) return;
  nnft_mat_free(&m->values);
  nnft_mat_free(&m->phi);
  memset(m, 0, sizeof *m);
}

nnft_status nnft_mercer_decompose(const nnft_mat *K, nnft_mercer_method method, nnft_mercer *m,
                                  nnft_linalg_diag *diag) {
  nnft_linalg_diag dummy;
  nnft_linalg_diag *d = diag ? diag : &dummy;
  d->msg[0] = '\0';
  if (!m || !m->phi.data || !m->values.data)
    return fail(d, NNFT_EDIM, "the modes' storage is not allocated (nnft_mercer_alloc)");
  const size_t n = m->n, k = m->k;
  if (K->rows != K->cols)
    return fail(d, NNFT_EDIM, "kernel matrix must be square, got %zu x %zu", K->rows, K->cols);
  if (K->rows != n)
    return fail(d, NNFT_EDIM, "kernel matrix is %zu x %zu but the modes are for %zu points",
                K->rows, K->cols, n);
  if (method != NNFT_MERCER_AUTO && method != NNFT_MERCER_PARTIAL && method != NNFT_MERCER_FULL)
    return fail(d, NNFT_EDOM, "unknown Mercer method %d", (int)method);
  nnft_eigh_opts eo = nnft_eigh_defaults();
  eo.descending = 1;
  nnft_status s;
  size_t got = 0;
  if (method == NNFT_MERCER_FULL && k < n) {
    nnft_mat w = {0}, z = {0};
    if (!(s = nnft_mat_alloc(n, 1, &w)) && !(s = nnft_mat_alloc(n, n, &z)) &&
        !(s = nnft_linalg_eigh(K, &eo, &w, &z, &got, d))) {
      memcpy(m->values.data, w.data, k * sizeof(double));
      for (size_t j = 0; j < k; j++)
        memcpy(m->phi.data + j * m->phi.ld, z.data + j * z.ld, n * sizeof(double));
    }
    nnft_mat_free(&w);
    nnft_mat_free(&z);
  } else {
    if (k < n) {
      eo.select = NNFT_EIGH_INDEX;
      eo.il = 1;
      eo.iu = k;
    }
    s = nnft_linalg_eigh(K, &eo, &m->values, &m->phi, &got, d);
  }
  if (s) {
    if (s == NNFT_ENOMEM && !d->msg[0])
      fail(d, s, "out of memory for the eigendecomposition of a %zu x %zu kernel matrix", n, n);
    return s;
  }
  if (got != k && !(method == NNFT_MERCER_FULL && got == n))
    return fail(d, NNFT_ENOCONV, "the eigensolver returned %zu of %zu modes", got, k);
  const double inv_n = 1.0 / (double)n, sq = sqrt((double)n);
  for (size_t j = 0; j < k; j++) {
    m->values.data[j] *= inv_n;
    double *c = m->phi.data + j * m->phi.ld;
    for (size_t i = 0; i < n; i++) c[i] *= sq;
  }
  return NNFT_OK;
}

/* Scale column j of out by 1/(n λ_j) (0 for λ_j <= 0). */
static void nystrom_scale(const nnft_mercer *m, nnft_mat *out) {
  for (size_t j = 0; j < m->k; j++) {
    double lam = m->values.data[j];
    double f = lam > 0.0 ? 1.0 / ((double)m->n * lam) : 0.0;
    double *c = out->data + j * out->ld;
    for (size_t i = 0; i < out->rows; i++) c[i] *= f;
  }
}

nnft_status nnft_mercer_extend(const nnft_mercer *m, const nnft_mat *Ks, nnft_mat *out) {
  if (!m || !m->phi.data) return NNFT_EDOM;
  if (Ks->cols != m->n || out->rows != Ks->rows || out->cols != m->k) return NNFT_EDIM;
  if (!nnft_mat_all_finite(Ks)) return NNFT_ENONFINITE;
  nnft_status s = nnft_mat_gemm(1.0, Ks, 0, &m->phi, 0, 0.0, out);
  if (s) return s;
  nystrom_scale(m, out);
  return NNFT_OK;
}

#define EXTEND_BLOCK_DOUBLES ((size_t)1 << 22)

nnft_status nnft_mercer_extend_kernel(const nnft_mercer *m, const nnft_kernel *kern,
                                      const nnft_mat *X, const nnft_mat *Xnew, nnft_mat *out) {
  if (!m || !m->phi.data) return NNFT_EDOM;
  const size_t n = m->n, r = Xnew->rows;
  if (X->rows != n || Xnew->cols != X->cols || out->rows != r || out->cols != m->k)
    return NNFT_EDIM;
  if (r == 0) return NNFT_OK;
  size_t B = EXTEND_BLOCK_DOUBLES / n;
  if (B < 1) B = 1;
  if (B > r) B = r;
  nnft_mat Ks;
  nnft_status s = nnft_mat_alloc(B, n, &Ks);
  if (s) return s;
  for (size_t r0 = 0; r0 < r && !s; r0 += B) {
    size_t b = r - r0 < B ? r - r0 : B;
    nnft_mat xs, kb, ob;
    nnft_mat_view(Xnew, r0, 0, b, Xnew->cols, &xs);
    nnft_mat_view(&Ks, 0, 0, b, n, &kb);
    nnft_mat_view(out, r0, 0, b, m->k, &ob);
    if ((s = nnft_kernel_matrix(kern, &xs, X, &kb))) break;
    s = nnft_mercer_extend(m, &kb, &ob);
    if (!s && nnft_interrupted()) s = NNFT_EINTR;
  }
  nnft_mat_free(&Ks);
  return s;
}

nnft_status nnft_mercer_project(const nnft_mercer *m, const nnft_mat *y, nnft_mat *out) {
  if (!m || !m->phi.data) return NNFT_EDOM;
  if (y->rows != m->n || out->rows != m->k || out->cols != y->cols) return NNFT_EDIM;
  if (!nnft_mat_all_finite(y)) return NNFT_ENONFINITE;
  return nnft_mat_gemm(1.0 / (double)m->n, &m->phi, 1, y, 0, 0.0, out);
}
