/* nnft_gp: GP regression on kernel matrices (physics.md §5.1) and hyperparameter optimisation
 * with GSL multimin. See nnft_gp.h for the formulas and the storage layout. */
#include "nnft_gp.h"

/* gsl_multimin.h brings GSL's own CBLAS prototypes (gsl_cblas.h), which clash with OpenBLAS's
 * <cblas.h>; they declare the same standard functions, and the link resolves them to OpenBLAS. */
#include <gsl/gsl_cblas.h>
#include <gsl/gsl_errno.h>
#include <gsl/gsl_multimin.h>
#include <lapacke.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "nnft_alloc.h"

#define LOG_2PI 1.8378770664093454836

/* ---------------- helpers ---------------- */

static void diag_reset(nnft_linalg_diag *d) {
  d->index = 0;
  d->min_eig = NAN;
  d->max_eig = NAN;
  d->jitter = 0.0;
  d->tries = 0;
  d->msg[0] = '\0';
}

static nnft_status fail(nnft_linalg_diag *d, nnft_status s, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(d->msg, sizeof d->msg, fmt, ap);
  va_end(ap);
  return s;
}

static int same_storage(const nnft_mat *a, const nnft_mat *b) {
  return a->data == b->data && a->ld == b->ld;
}

/* Copy the strictly upper triangle of the square m into its strictly lower one (blocked). */
static void mirror_upper(nnft_mat *m) {
  const size_t n = m->rows, ld = m->ld, B = 64;
  double *a = m->data;
  for (size_t jb = 0; jb < n; jb += B)
    for (size_t ib = jb; ib < n; ib += B) {
      size_t je = jb + B < n ? jb + B : n, ie = ib + B < n ? ib + B : n;
      for (size_t j = jb; j < je; j++)
        for (size_t i = ib > j + 1 ? ib : j + 1; i < ie; i++) a[i + j * ld] = a[j + i * ld];
    }
}

static void mirror_lower(nnft_mat *m) {
  const size_t n = m->rows, ld = m->ld, B = 64;
  double *a = m->data;
  for (size_t jb = 0; jb < n; jb += B)
    for (size_t ib = jb; ib < n; ib += B) {
      size_t je = jb + B < n ? jb + B : n, ie = ib + B < n ? ib + B : n;
      for (size_t j = jb; j < je; j++)
        for (size_t i = ib > j + 1 ? ib : j + 1; i < ie; i++) a[j + i * ld] = a[i + j * ld];
    }
}

static int all_finite(const double *x, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!isfinite(x[i])) return 0;
  return 1;
}

/* ---------------- fitting ---------------- */

nnft_gp_opts nnft_gp_defaults(void) {
  nnft_gp_opts o = {1, 6};
  return o;
}

nnft_status nnft_gp_alloc(size_t n, size_t k, nnft_gp *gp) {
  memset(gp, 0, sizeof *gp);
  if (n == 0 || k == 0) return NNFT_EDOM;
  nnft_status s;
  if ((s = nnft_mat_alloc(n, n, &gp->L)) || (s = nnft_mat_alloc(n, k, &gp->alpha)) ||
      (s = nnft_mat_alloc(n, 1, &gp->kdiag))) {
    nnft_gp_free(gp);
    return s;
  }
  gp->n = n;
  gp->k = k;
  return NNFT_OK;
}

void nnft_gp_free(nnft_gp *gp) {
  if (!gp) return;
  nnft_mat_free(&gp->L);
  nnft_mat_free(&gp->alpha);
  nnft_mat_free(&gp->kdiag);
  memset(gp, 0, sizeof *gp);
}

static nnft_status check_gp(const nnft_gp *gp, nnft_linalg_diag *d) {
  if (!gp || !gp->L.data || !gp->alpha.data || !gp->kdiag.data || gp->L.rows != gp->n ||
      gp->L.cols != gp->n || gp->alpha.rows != gp->n || gp->alpha.cols != gp->k)
    return fail(d, NNFT_EDIM, "the GP's storage is not allocated (nnft_gp_alloc)");
  return NNFT_OK;
}

nnft_status nnft_gp_fit(const nnft_mat *K, const nnft_mat *y, double noise,
                        const nnft_gp_opts *opts, nnft_gp *gp, nnft_linalg_diag *diag) {
  nnft_linalg_diag dummy;
  nnft_linalg_diag *d = diag ? diag : &dummy;
  diag_reset(d);
  nnft_status s;
  if ((s = check_gp(gp, d))) return s;
  gp->fitted = 0;
  size_t n = gp->n;
  if (K->rows != K->cols)
    return fail(d, NNFT_EDIM, "kernel matrix must be square, got %zu x %zu", K->rows, K->cols);
  if (K->rows != n)
    return fail(d, NNFT_EDIM, "kernel matrix is %zu x %zu but the GP has %zu training points",
                K->rows, K->cols, n);
  if (nnft_mat_overlap(K, &gp->L))
    return fail(d, NNFT_EDIM, "kernel matrix shares storage with the GP");
  if (!nnft_mat_all_finite(K)) return fail(d, NNFT_ENONFINITE, "kernel matrix contains NaN or Inf");
  double rel;
  nnft_linalg_asymmetry(K, &rel);
  if (rel > NNFT_LINALG_SYM_TOL)
    return fail(d, NNFT_EDOM,
                "kernel matrix is not symmetric (max |K - K^T| is %.3g of max |K|); symmetrise "
                "it, e.g. (K + K:t()) / 2",
                rel);
  for (size_t j = 0; j < n; j++)
    memcpy(gp->L.data + j * gp->L.ld, K->data + j * K->ld, n * sizeof(double));
  return nnft_gp_factor(y, noise, opts, gp, diag);
}

/* Extreme eigenvalues of K + noise I (restored into the lower triangle of gp->L); NaN when they
 * cannot be computed (this only decorates an error message). */
static void failure_eigs(nnft_gp *gp, double noise, nnft_linalg_diag *d) {
  size_t n = gp->n;
  mirror_upper(&gp->L);
  for (size_t j = 0; j < n; j++) NNFT_AT(&gp->L, j, j) = gp->kdiag.data[j] + noise;
  nnft_mat w = {0};
  if (nnft_mat_alloc(n, 1, &w)) return;
  nnft_eigh_opts eo = nnft_eigh_defaults();
  eo.vectors = 0;
  size_t m = 0;
  nnft_linalg_diag ed;
  if (nnft_linalg_eigh(&gp->L, &eo, &w, NULL, &m, &ed) == NNFT_OK && m == n) {
    d->max_eig = w.data[0];
    d->min_eig = w.data[n - 1];
  }
  nnft_mat_free(&w);
}

nnft_status nnft_gp_factor(const nnft_mat *y, double noise, const nnft_gp_opts *opts,
                           nnft_gp *gp, nnft_linalg_diag *diag) {
  nnft_linalg_diag dummy;
  nnft_linalg_diag *d = diag ? diag : &dummy;
  diag_reset(d);
  nnft_status s;
  if ((s = check_gp(gp, d))) return s;
  gp->fitted = 0;
  nnft_gp_opts o = opts ? *opts : nnft_gp_defaults();
  const size_t n = gp->n, k = gp->k;
  if (y->rows != n || y->cols != k)
    return fail(d, NNFT_EDIM, "targets y are %zu x %zu but the GP expects %zu x %zu", y->rows,
                y->cols, n, k);
  if (!isfinite(noise) || noise < 0.0)
    return fail(d, NNFT_EDOM, "noise variance must be finite and >= 0, got %g", noise);
  if (o.jitter && (o.max_tries < 1 || o.max_tries > 30))
    return fail(d, NNFT_EDOM, "max_tries must be between 1 and 30, got %d", o.max_tries);
  if (!nnft_mat_all_finite(y)) return fail(d, NNFT_ENONFINITE, "targets y contain NaN or Inf");
  if (nnft_mat_overlap(y, &gp->L) || nnft_mat_overlap(y, &gp->alpha))
    return fail(d, NNFT_EDIM, "targets y share storage with the GP");
  nnft_mat *L = &gp->L;
  for (size_t j = 0; j < n; j++)
    if (!all_finite(L->data + j * L->ld, n))
      return fail(d, NNFT_ENONFINITE, "kernel matrix contains NaN or Inf");
  int ni, ldl, ki, lda;
  if ((s = nnft_blas_int(n, &ni)) || (s = nnft_blas_int(L->ld, &ldl)) ||
      (s = nnft_blas_int(k, &ki)) || (s = nnft_blas_int(gp->alpha.ld, &lda)))
    return fail(d, s, "GP too large for LAPACK");

  double mean = 0.0;
  for (size_t j = 0; j < n; j++) {
    gp->kdiag.data[j] = NNFT_AT(L, j, j);
    mean += gp->kdiag.data[j] + noise;
  }
  mean /= (double)n;
  const double base = mean > 0.0 ? 1e-10 * mean : 1e-10;
  double jit = 0.0;
  int tries = 0, info;
  for (;;) {
    if (tries > 0) mirror_upper(L); /* the first try reads K's lower triangle as it is */
    for (size_t j = 0; j < n; j++) NNFT_AT(L, j, j) = gp->kdiag.data[j] + noise + jit;
    info = LAPACKE_dpotrf_work(LAPACK_COL_MAJOR, 'L', ni, L->data, ldl);
    if (info < 0) return fail(d, NNFT_EINTERNAL, "LAPACKE_dpotrf rejected argument %d", -info);
    if (info == 0) break;
    if (!o.jitter || tries >= o.max_tries) break;
    if (nnft_interrupted()) {
      mirror_upper(L);
      return fail(d, NNFT_EINTR, "interrupted");
    }
    jit = tries == 0 ? base : jit * 10.0;
    tries++;
  }
  d->jitter = jit;
  d->tries = tries;
  if (info > 0) {
    d->index = (size_t)info;
    failure_eigs(gp, noise, d);
    char eig[96] = "";
    if (!isnan(d->min_eig))
      snprintf(eig, sizeof eig, "smallest eigenvalue %.3g, largest %.3g", d->min_eig, d->max_eig);
    if (!o.jitter)
      return fail(d, NNFT_ENOTPD,
                  "kernel matrix + noise is not positive definite (leading minor %d of %zu is "
                  "not positive%s%s)",
                  info, n, eig[0] ? "; " : "", eig);
    return fail(d, NNFT_ENOTPD,
                "kernel matrix + noise is not positive definite even with jitter %.3g added to "
                "the diagonal (%d tries from %.3g%s%s)",
                jit, tries, base, eig[0] ? "; " : "", eig);
  }
  /* α = C⁻¹ y */
  for (size_t c = 0; c < k; c++)
    memcpy(gp->alpha.data + c * gp->alpha.ld, y->data + c * y->ld, n * sizeof(double));
  info = LAPACKE_dpotrs_work(LAPACK_COL_MAJOR, 'L', ni, ki, L->data, ldl, gp->alpha.data, lda);
  if (info < 0) return fail(d, NNFT_EINTERNAL, "LAPACKE_dpotrs rejected argument %d", -info);
  double logdet = 0.0, quad = 0.0;
  for (size_t i = 0; i < n; i++) logdet += log(NNFT_AT(L, i, i));
  logdet *= 2.0;
  for (size_t c = 0; c < k; c++)
    quad += cblas_ddot(ni, y->data + c * y->ld, 1, gp->alpha.data + c * gp->alpha.ld, 1);
  gp->noise = noise;
  gp->jitter = jit;
  gp->logdet = logdet;
  gp->quad = quad;
  gp->logml = -0.5 * quad - 0.5 * (double)k * logdet - 0.5 * (double)(n * k) * LOG_2PI;
  if (!isfinite(gp->logml))
    return fail(d, NNFT_ENONFINITE,
                "log marginal likelihood is not finite (kernel values overflow?)");
  gp->fitted = 1;
  return NNFT_OK;
}

/* ---------------- prediction ---------------- */

static nnft_status check_fitted(const nnft_gp *gp) {
  if (!gp || !gp->fitted) return NNFT_EDOM;
  return NNFT_OK;
}

nnft_status nnft_gp_mean(const nnft_gp *gp, const nnft_mat *Ks, nnft_mat *mean) {
  if (check_fitted(gp)) return NNFT_EDOM;
  if (Ks->cols != gp->n || mean->rows != Ks->rows || mean->cols != gp->k) return NNFT_EDIM;
  if (!nnft_mat_all_finite(Ks)) return NNFT_ENONFINITE;
  return nnft_mat_gemm(1.0, Ks, 0, &gp->alpha, 0, 0.0, mean);
}

/* Columns per block of the variance: at most 2^20 doubles of workspace, at least 64 columns
 * (dtrsm runs at full speed from a few hundred right-hand sides on). */
#define VAR_BLOCK_DOUBLES ((size_t)1 << 20)

nnft_status nnft_gp_var(const nnft_gp *gp, const nnft_mat *Ks, const nnft_mat *kss,
                        nnft_mat *var) {
  if (check_fitted(gp)) return NNFT_EDOM;
  const size_t n = gp->n, m = Ks->rows;
  if (Ks->cols != n || kss->rows != m || kss->cols != 1 || var->rows != m || var->cols != 1)
    return NNFT_EDIM;
  if (!nnft_mat_all_finite(Ks) || !nnft_mat_all_finite(kss)) return NNFT_ENONFINITE;
  if (m == 0) return NNFT_OK;
  int ni, ldl, bi;
  nnft_status s;
  if ((s = nnft_blas_int(n, &ni)) || (s = nnft_blas_int(gp->L.ld, &ldl))) return s;
  size_t B = VAR_BLOCK_DOUBLES / n, bytes;
  if (B < 64) B = 64;
  if (B > m) B = m;
  if ((s = nnft_size_mul(B * sizeof(double), n, &bytes))) return s;
  double *W = nnft_alloc(bytes);
  if (!W) return NNFT_ENOMEM;
  for (size_t r0 = 0; r0 < m; r0 += B) {
    size_t b = m - r0 < B ? m - r0 : B;
    /* W (n x b) = Ks_blockᵀ, transposed in 32 x 32 tiles */
    for (size_t jb = 0; jb < n; jb += 32)
      for (size_t ib = 0; ib < b; ib += 32) {
        size_t je = jb + 32 < n ? jb + 32 : n, ie = ib + 32 < b ? ib + 32 : b;
        for (size_t i = ib; i < ie; i++)
          for (size_t j = jb; j < je; j++) W[j + i * n] = Ks->data[r0 + i + j * Ks->ld];
      }
    bi = (int)b;
    /* L V = Ks_blockᵀ: column i of V is L⁻¹ K(X, x*_i) */
    cblas_dtrsm(CblasColMajor, CblasLeft, CblasLower, CblasNoTrans, CblasNonUnit, ni, bi, 1.0,
                gp->L.data, ldl, W, ni);
    for (size_t i = 0; i < b; i++) {
      double v = kss->data[r0 + i] - cblas_ddot(ni, W + i * n, 1, W + i * n, 1);
      var->data[r0 + i] = v > 0.0 ? v : 0.0;
    }
    if (nnft_interrupted()) {
      nnft_free(W);
      return NNFT_EINTR;
    }
  }
  nnft_free(W);
  return NNFT_OK;
}

nnft_status nnft_gp_cov(const nnft_gp *gp, const nnft_mat *Ks, const nnft_mat *Kss,
                        nnft_mat *cov) {
  if (check_fitted(gp)) return NNFT_EDOM;
  const size_t n = gp->n, m = Ks->rows;
  if (Ks->cols != n || Kss->rows != m || Kss->cols != m || cov->rows != m || cov->cols != m)
    return NNFT_EDIM;
  if (!same_storage(cov, Kss) && nnft_mat_overlap(cov, Kss)) return NNFT_EDIM;
  if (!nnft_mat_all_finite(Ks) || !nnft_mat_all_finite(Kss)) return NNFT_ENONFINITE;
  if (m == 0) return NNFT_OK;
  int ni, mi, ldl, ldc;
  nnft_status s;
  if ((s = nnft_blas_int(n, &ni)) || (s = nnft_blas_int(m, &mi)) ||
      (s = nnft_blas_int(gp->L.ld, &ldl)) || (s = nnft_blas_int(cov->ld, &ldc)))
    return s;
  size_t bytes;
  if ((s = nnft_size_mul(m * sizeof(double), n, &bytes))) return s;
  double *W = nnft_alloc(bytes);
  if (!W) return NNFT_ENOMEM;
  for (size_t j = 0; j < n; j++) memcpy(W + j * m, Ks->data + j * Ks->ld, m * sizeof(double));
  cblas_dtrsm(CblasColMajor, CblasRight, CblasLower, CblasTrans, CblasNonUnit, mi, ni, 1.0,
              gp->L.data, ldl, W, mi);
  if (!same_storage(cov, Kss))
    for (size_t j = 0; j < m; j++)
      for (size_t i = j; i < m; i++) NNFT_AT(cov, i, j) = NNFT_AT(Kss, i, j);
  cblas_dsyrk(CblasColMajor, CblasLower, CblasNoTrans, mi, ni, -1.0, W, mi, 1.0, cov->data, ldc);
  mirror_lower(cov);
  nnft_free(W);
  return NNFT_OK;
}

#define PREDICT_BLOCK_DOUBLES ((size_t)1 << 22)

nnft_status nnft_gp_predict_kernel(const nnft_gp *gp, const nnft_kernel *kern, const nnft_mat *X,
                                   const nnft_mat *Xs, nnft_mat *mean, nnft_mat *var,
                                   nnft_mat *cov) {
  if (check_fitted(gp)) return NNFT_EDOM;
  const size_t n = gp->n, m = Xs->rows;
  if (X->rows != n || Xs->cols != X->cols || mean->rows != m || mean->cols != gp->k)
    return NNFT_EDIM;
  if (var && (var->rows != m || var->cols != 1)) return NNFT_EDIM;
  if (cov && (cov->rows != m || cov->cols != m)) return NNFT_EDIM;
  if (m == 0) return NNFT_OK;
  nnft_status s;
  nnft_mat Ks = {0};
  if (cov) {
    if ((s = nnft_mat_alloc(m, n, &Ks))) return s;
    if (!(s = nnft_kernel_matrix(kern, Xs, X, &Ks)) && !(s = nnft_gp_mean(gp, &Ks, mean)) &&
        !(s = nnft_kernel_matrix(kern, Xs, NULL, cov)) && !(s = nnft_gp_cov(gp, &Ks, cov, cov)) &&
        var)
      for (size_t i = 0; i < m; i++) {
        double v = NNFT_AT(cov, i, i);
        var->data[i] = v > 0.0 ? v : 0.0;
      }
    nnft_mat_free(&Ks);
    return s;
  }
  size_t B = PREDICT_BLOCK_DOUBLES / n;
  if (B < 1) B = 1;
  if (B > m) B = m;
  if ((s = nnft_mat_alloc(B, n, &Ks))) return s;
  for (size_t r0 = 0; r0 < m && !s; r0 += B) {
    size_t b = m - r0 < B ? m - r0 : B;
    nnft_mat xs, kb, mb, vb;
    nnft_mat_view(Xs, r0, 0, b, Xs->cols, &xs);
    nnft_mat_view(&Ks, 0, 0, b, n, &kb);
    nnft_mat_view(mean, r0, 0, b, gp->k, &mb);
    if ((s = nnft_kernel_matrix(kern, &xs, X, &kb)) || (s = nnft_gp_mean(gp, &kb, &mb))) break;
    if (var) {
      nnft_mat_view(var, r0, 0, b, 1, &vb);
      if ((s = nnft_kernel_diag(kern, &xs, &vb)) || (s = nnft_gp_var(gp, &kb, &vb, &vb))) break;
    }
    if (nnft_interrupted()) s = NNFT_EINTR;
  }
  nnft_mat_free(&Ks);
  return s;
}

/* ---------------- hyperparameters ---------------- */

nnft_gp_optimize_opts nnft_gp_optimize_defaults(void) {
  nnft_gp_optimize_opts o;
  o.method = NNFT_GP_BFGS;
  o.fit_noise = 1;
  o.max_iter = 200;
  o.gtol = 1e-5;
  o.xtol = 1e-4;
  o.step = 0.1;
  o.fd_step = 1e-4;
  o.fit = nnft_gp_defaults();
  return o;
}

/* Workspaces of a likelihood evaluation. */
typedef struct lml_ws {
  nnft_gp_kernel_fn fn;
  void *ctx;
  size_t n, p, k;
  const nnft_mat *y;
  nnft_gp gp;      /* K and its factor */
  nnft_mat A;      /* n x n: K at a shifted parameter */
  double *theta;   /* p: shifted kernel parameters */
  double fd_step;
  nnft_gp_opts fit;
  int evaluations;
  nnft_linalg_diag *diag;
} lml_ws;

static nnft_status ws_init(lml_ws *w, nnft_gp_kernel_fn fn, void *ctx, size_t n, size_t p,
                           const nnft_mat *y, double fd_step, const nnft_gp_opts *fit,
                           nnft_linalg_diag *d) {
  memset(w, 0, sizeof *w);
  w->fn = fn;
  w->ctx = ctx;
  w->n = n;
  w->p = p;
  w->k = y->cols;
  w->y = y;
  w->fd_step = fd_step;
  w->fit = fit ? *fit : nnft_gp_defaults();
  w->diag = d;
  nnft_status s;
  if ((s = nnft_gp_alloc(n, y->cols, &w->gp))) return s;
  if (p > 0) {
    if ((s = nnft_mat_alloc(n, n, &w->A))) return s;
    if (!(w->theta = nnft_alloc(p * sizeof(double)))) return NNFT_ENOMEM;
  }
  return NNFT_OK;
}

static void ws_free(lml_ws *w) {
  nnft_gp_free(&w->gp);
  nnft_mat_free(&w->A);
  nnft_free(w->theta);
  w->theta = NULL;
}

/* Σ over the full symmetric matrices of W_ij A_ij, with W in the lower triangle of wl and A
 * read in its lower triangle; Neumaier-compensated. */
static double sym_dot(const nnft_mat *wl, const nnft_mat *a) {
  const size_t n = wl->rows;
  double sum = 0.0, comp = 0.0;
  for (size_t j = 0; j < n; j++) {
    const double *wc = wl->data + j * wl->ld, *ac = a->data + j * a->ld;
    double col = 0.5 * wc[j] * ac[j], cc = 0.0;
    for (size_t i = j + 1; i < n; i++) { /* compensated within the column too */
      double t = wc[i] * ac[i], u = col + t;
      cc += fabs(col) >= fabs(t) ? (col - u) + t : (t - u) + col;
      col = u;
    }
    col += cc;
    double u = sum + col;
    comp += fabs(sum) >= fabs(col) ? (sum - u) + col : (col - u) + sum;
    sum = u;
  }
  return 2.0 * (sum + comp);
}

/* log p at params = (σ², θ) and, if grad, its gradient w.r.t. the logs. */
static nnft_status lml_eval(lml_ws *w, const double *params, double *logml, double *grad) {
  nnft_status s;
  const size_t n = w->n, p = w->p, k = w->k;
  if ((s = w->fn(w->ctx, params + 1, &w->gp.L))) {
    if (w->diag && !w->diag->msg[0]) fail(w->diag, s, "kernel function failed: %s", nnft_strerror(s));
    return s;
  }
  w->evaluations++;
  if ((s = nnft_gp_factor(w->y, params[0], &w->fit, &w->gp, w->diag))) return s;
  *logml = w->gp.logml;
  if (!grad) return NNFT_OK;
  int ni, ldl, ki, lda;
  if ((s = nnft_blas_int(n, &ni)) || (s = nnft_blas_int(w->gp.L.ld, &ldl)) ||
      (s = nnft_blas_int(k, &ki)) || (s = nnft_blas_int(w->gp.alpha.ld, &lda)))
    return s;
  /* lower(L) <- C⁻¹, then W = α αᵀ − k C⁻¹ */
  int info = LAPACKE_dpotri_work(LAPACK_COL_MAJOR, 'L', ni, w->gp.L.data, ldl);
  if (info < 0) return fail(w->diag, NNFT_EINTERNAL, "LAPACKE_dpotri rejected argument %d", -info);
  if (info > 0) return fail(w->diag, NNFT_ESINGULAR, "Cholesky factor is singular");
  double trinv = 0.0, aa = 0.0;
  for (size_t i = 0; i < n; i++) trinv += NNFT_AT(&w->gp.L, i, i);
  for (size_t c = 0; c < k; c++) {
    const double *ac = w->gp.alpha.data + c * w->gp.alpha.ld;
    aa += cblas_ddot(ni, ac, 1, ac, 1);
  }
  grad[0] = 0.5 * params[0] * (aa - (double)k * trinv);
  if (p == 0) return NNFT_OK;
  cblas_dsyrk(CblasColMajor, CblasLower, CblasNoTrans, ni, ki, 1.0, w->gp.alpha.data, lda,
              -(double)k, w->gp.L.data, ldl);
  const double h = w->fd_step;
  for (size_t j = 0; j < p; j++) {
    double sp, sm;
    memcpy(w->theta, params + 1, p * sizeof(double));
    w->theta[j] = params[1 + j] * exp(h);
    if ((s = w->fn(w->ctx, w->theta, &w->A))) return s;
    mirror_upper(&w->A);
    sp = sym_dot(&w->gp.L, &w->A);
    w->theta[j] = params[1 + j] * exp(-h);
    if ((s = w->fn(w->ctx, w->theta, &w->A))) return s;
    mirror_upper(&w->A);
    sm = sym_dot(&w->gp.L, &w->A);
    w->evaluations += 2;
    grad[1 + j] = 0.5 * (sp - sm) / (2.0 * h);
    if (nnft_interrupted()) return NNFT_EINTR;
  }
  return NNFT_OK;
}

static nnft_status check_params(size_t p, const double *params, int noise_positive,
                                nnft_linalg_diag *d) {
  if (!isfinite(params[0]) || params[0] < 0.0 || (noise_positive && params[0] == 0.0))
    return fail(d, NNFT_EDOM, "noise variance must be %s, got %g",
                noise_positive ? "positive (optimised on a log scale)" : "finite and >= 0",
                params[0]);
  for (size_t j = 0; j < p; j++)
    if (!isfinite(params[1 + j]) || params[1 + j] <= 0.0)
      return fail(d, NNFT_EDOM,
                  "kernel parameter %zu must be positive (optimised on a log scale), got %g",
                  j + 1, params[1 + j]);
  return NNFT_OK;
}

nnft_status nnft_gp_logml_grad(nnft_gp_kernel_fn fn, void *ctx, size_t n, size_t p,
                               const nnft_mat *y, const double *params, double fd_step,
                               const nnft_gp_opts *fit, double *logml, double *grad,
                               nnft_linalg_diag *diag) {
  nnft_linalg_diag dummy;
  nnft_linalg_diag *d = diag ? diag : &dummy;
  diag_reset(d);
  nnft_status s;
  if (y->rows != n || y->cols == 0)
    return fail(d, NNFT_EDIM, "targets y are %zu x %zu for %zu training points", y->rows,
                y->cols, n);
  if (n == 0) return fail(d, NNFT_EDIM, "no training points");
  if (!(fd_step > 0.0 && fd_step < 1.0))
    return fail(d, NNFT_EDOM, "fd_step must be in (0, 1), got %g", fd_step);
  if ((s = check_params(p, params, 0, d))) return s;
  lml_ws w;
  if (!(s = ws_init(&w, fn, ctx, n, p, y, fd_step, fit, d))) {
    s = lml_eval(&w, params, logml, grad);
    if (s == NNFT_EINTR) fail(d, s, "interrupted");
  } else if (s == NNFT_ENOMEM) {
    fail(d, s, "out of memory for the %zu x %zu kernel workspaces", n, n);
  }
  ws_free(&w);
  return s;
}

/* The multimin problem: minimise f(x) = −log p / (n k) over x = (log σ² if free, log θ). */
typedef struct opt_state {
  lml_ws w;
  int fit_noise;
  double *params; /* 1 + p: current full parameter vector */
  double *grad;   /* 1 + p */
  double scale;   /* 1 / (n k) */
  nnft_status err;
} opt_state;

static void x_to_params(const opt_state *st, const gsl_vector *x) {
  size_t q = 0;
  if (st->fit_noise) st->params[0] = exp(gsl_vector_get(x, q++));
  for (size_t j = 0; j < st->w.p; j++) st->params[1 + j] = exp(gsl_vector_get(x, q++));
}

static double opt_f(const gsl_vector *x, void *vst) {
  opt_state *st = vst;
  if (st->err) return GSL_NAN;
  x_to_params(st, x);
  double lml;
  nnft_status s = lml_eval(&st->w, st->params, &lml, NULL);
  if (s) {
    st->err = s;
    return GSL_NAN;
  }
  return -lml * st->scale;
}

static void opt_fdf(const gsl_vector *x, void *vst, double *f, gsl_vector *g) {
  opt_state *st = vst;
  if (st->err) {
    *f = GSL_NAN;
    gsl_vector_set_all(g, GSL_NAN);
    return;
  }
  x_to_params(st, x);
  double lml;
  nnft_status s = lml_eval(&st->w, st->params, &lml, st->grad);
  if (s) {
    st->err = s;
    *f = GSL_NAN;
    gsl_vector_set_all(g, GSL_NAN);
    return;
  }
  *f = -lml * st->scale;
  size_t q = 0;
  if (st->fit_noise) gsl_vector_set(g, q++, -st->grad[0] * st->scale);
  for (size_t j = 0; j < st->w.p; j++) gsl_vector_set(g, q++, -st->grad[1 + j] * st->scale);
}

static void opt_df(const gsl_vector *x, void *vst, gsl_vector *g) {
  double f;
  opt_fdf(x, vst, &f, g);
}

nnft_status nnft_gp_optimize(nnft_gp_kernel_fn fn, void *ctx, size_t n, size_t p,
                             const nnft_mat *y, const nnft_gp_optimize_opts *opts,
                             double *params, nnft_gp_optimize_result *res,
                             nnft_linalg_diag *diag) {
  nnft_linalg_diag dummy;
  nnft_linalg_diag *d = diag ? diag : &dummy;
  diag_reset(d);
  nnft_gp_optimize_opts o = opts ? *opts : nnft_gp_optimize_defaults();
  res->logml = NAN;
  res->grad_norm = NAN;
  res->jitter = 0.0;
  res->iterations = res->evaluations = res->converged = 0;
  nnft_status s;
  if (n == 0) return fail(d, NNFT_EDIM, "no training points");
  if (y->rows != n || y->cols == 0)
    return fail(d, NNFT_EDIM, "targets y are %zu x %zu for %zu training points", y->rows,
                y->cols, n);
  if (o.method != NNFT_GP_BFGS && o.method != NNFT_GP_CG && o.method != NNFT_GP_NM)
    return fail(d, NNFT_EDOM, "unknown optimisation method %d", (int)o.method);
  if (o.max_iter < 0) return fail(d, NNFT_EDOM, "max_iter must be >= 0, got %d", o.max_iter);
  if (!(o.gtol > 0.0) || !(o.xtol > 0.0) || !(o.step > 0.0) || !isfinite(o.step) ||
      !(o.fd_step > 0.0 && o.fd_step < 1.0))
    return fail(d, NNFT_EDOM, "tolerances and steps must be positive (fd_step below 1)");
  if ((s = check_params(p, params, o.fit_noise, d))) return s;
  const size_t q = (o.fit_noise ? 1 : 0) + p;

  opt_state st;
  memset(&st, 0, sizeof st);
  st.fit_noise = o.fit_noise;
  st.scale = 1.0 / ((double)n * (double)y->cols);
  gsl_vector *x = NULL, *step = NULL;
  gsl_multimin_fdfminimizer *g = NULL;
  gsl_multimin_fminimizer *nm = NULL;
  if ((s = ws_init(&st.w, fn, ctx, n, p, y, o.fd_step, &o.fit, d))) goto done;
  st.params = nnft_alloc((1 + p) * sizeof(double));
  st.grad = nnft_alloc((1 + p) * sizeof(double));
  if (!st.params || !st.grad) {
    s = NNFT_ENOMEM;
    goto done;
  }
  memcpy(st.params, params, (1 + p) * sizeof(double));
  if (q == 0) { /* nothing free: evaluate at the start */
    res->converged = 1;
    goto final;
  }
  if (!(x = gsl_vector_alloc(q))) {
    s = NNFT_ENOMEM;
    goto done;
  }
  {
    size_t i = 0;
    if (o.fit_noise) gsl_vector_set(x, i++, log(params[0]));
    for (size_t j = 0; j < p; j++) gsl_vector_set(x, i++, log(params[1 + j]));
  }
  int iter = 0, status = GSL_CONTINUE;
  if (o.method == NNFT_GP_NM) {
    gsl_multimin_function fun = {opt_f, q, &st};
    if (!(nm = gsl_multimin_fminimizer_alloc(gsl_multimin_fminimizer_nmsimplex2, q)) ||
        !(step = gsl_vector_alloc(q))) {
      s = NNFT_ENOMEM;
      goto done;
    }
    gsl_vector_set_all(step, o.step);
    gsl_multimin_fminimizer_set(nm, &fun, x, step);
    if (st.err) {
      s = st.err;
      goto done;
    }
    while (iter < o.max_iter) {
      if (nnft_interrupted()) {
        s = NNFT_EINTR;
        break;
      }
      iter++;
      status = gsl_multimin_fminimizer_iterate(nm);
      if (st.err) break;
      if (status) break;
      if (gsl_multimin_test_size(gsl_multimin_fminimizer_size(nm), o.xtol) == GSL_SUCCESS) {
        res->converged = 1;
        break;
      }
    }
    gsl_vector_memcpy(x, gsl_multimin_fminimizer_x(nm));
  } else {
    gsl_multimin_function_fdf fun = {opt_f, opt_df, opt_fdf, q, &st};
    const gsl_multimin_fdfminimizer_type *T = o.method == NNFT_GP_BFGS
                                                  ? gsl_multimin_fdfminimizer_vector_bfgs2
                                                  : gsl_multimin_fdfminimizer_conjugate_pr;
    if (!(g = gsl_multimin_fdfminimizer_alloc(T, q))) {
      s = NNFT_ENOMEM;
      goto done;
    }
    gsl_multimin_fdfminimizer_set(g, &fun, x, o.step, 0.1);
    if (st.err) {
      s = st.err;
      goto done;
    }
    if (gsl_multimin_test_gradient(gsl_multimin_fdfminimizer_gradient(g), o.gtol) ==
        GSL_SUCCESS)
      res->converged = 1;
    int restarts = 0;
    double f_restart = GSL_POSINF;
    while (!res->converged && iter < o.max_iter) {
      if (nnft_interrupted()) {
        s = NNFT_EINTR;
        break;
      }
      iter++;
      status = gsl_multimin_fdfminimizer_iterate(g);
      if (st.err) break;
      if (gsl_multimin_test_gradient(gsl_multimin_fdfminimizer_gradient(g), o.gtol) ==
          GSL_SUCCESS)
        res->converged = 1;
      if (status && !res->converged) {
        /* GSL_ENOPROG: the line search made no progress along the quasi-Newton direction.
         * Restart from the current point along the steepest descent (the curvature model may
         * be stale); give up when a restart does not lower f or after a few restarts. */
        double f = gsl_multimin_fdfminimizer_minimum(g);
        if (restarts >= 5 || !(f < f_restart)) break;
        f_restart = f;
        restarts++;
        gsl_multimin_fdfminimizer_restart(g);
      }
    }
    gsl_vector_memcpy(x, gsl_multimin_fdfminimizer_x(g));
    const gsl_vector *gv = gsl_multimin_fdfminimizer_gradient(g);
    res->grad_norm = cblas_dnrm2((int)q, gv->data, (int)gv->stride) / st.scale;
  }
  res->iterations = iter;
  if (st.err) {
    s = st.err;
    st.err = NNFT_OK;
    x_to_params(&st, x); /* the best point so far */
    memcpy(params, st.params, (1 + p) * sizeof(double));
    goto done;
  }
  x_to_params(&st, x);
  memcpy(params, st.params, (1 + p) * sizeof(double));
  if (s) goto done; /* interrupted: params hold the best point so far */
final : {
  double lml;
  if ((s = lml_eval(&st.w, st.params, &lml, NULL))) goto done;
  res->logml = lml;
  res->jitter = st.w.gp.jitter;
}
done:
  res->evaluations = st.w.evaluations;
  if (s == NNFT_EINTR) fail(d, s, "interrupted");
  if (s == NNFT_ENOMEM && !d->msg[0]) fail(d, s, "out of memory");
  if (g) gsl_multimin_fdfminimizer_free(g);
  if (nm) gsl_multimin_fminimizer_free(nm);
  if (x) gsl_vector_free(x);
  if (step) gsl_vector_free(step);
  nnft_free(st.params);
  nnft_free(st.grad);
  ws_free(&st.w);
  return s;
}
