/* nnft_fisher: Fisher metrics (physics.md §7.1). See nnft_fisher.h. */
#include "nnft_fisher.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nnft_alloc.h"
#include "nnft_linalg.h"

static const char *const form_names[] = {"gram", "dense", "diag", "block"};

const char *nnft_fisher_form_name(nnft_fisher_form f) {
  return (unsigned)f < 4 ? form_names[f] : "?";
}

int nnft_fisher_form_lookup(const char *name) {
  for (int i = 0; i < 4; i++)
    if (strcmp(name, form_names[i]) == 0) return i;
  return -1;
}

static int needs_jacobian(const nnft_net *net) {
  const nnft_arch *a = &net->arch;
  return a->is_cosnet && a->amplitude && !a->layer[0].frozen;
}

static size_t layer_params(const nnft_layer *ly) {
  return ly->fan_out * ly->fan_in + (ly->has_bias ? ly->fan_out : 0);
}

/* ---- memory estimate ---- */

nnft_status nnft_fisher_bytes(const nnft_net *net, size_t n, nnft_fisher_form form, size_t *bytes) {
  const nnft_arch *a = &net->arch;
  size_t P = net->ntrain, total = 0, t;
  nnft_status s;
  if (needs_jacobian(net)) {
    if ((s = nnft_size_mul(n, P, &total))) return s;
  } else {
    for (size_t l = 0; l < a->nlayers; l++) {
      if (a->layer[l].frozen) continue;
      if ((s = nnft_size_mul(n, a->layer[l].fan_in + a->layer[l].fan_out, &t))) return s;
      if ((s = nnft_size_add(total, t, &total))) return s;
    }
  }
  if ((s = nnft_size_add(total, P, &total))) return s; /* diag */
  switch (form) {
  case NNFT_FISHER_GRAM:
    if ((s = nnft_size_mul(n, n, &t))) return s;
    if ((s = nnft_size_mul(t, 2, &t))) return s; /* G and one n x n workspace */
    break;
  case NNFT_FISHER_DENSE: {
    size_t t2;
    if ((s = nnft_size_mul(P, P, &t))) return s;
    if ((s = nnft_size_mul(n, P, &t2))) return s; /* J while building */
    if ((s = nnft_size_add(t, t2, &t))) return s;
    break;
  }
  case NNFT_FISHER_BLOCK:
    t = 0;
    for (size_t l = 0; l < a->nlayers; l++) {
      if (a->layer[l].frozen) continue;
      size_t c = layer_params(&a->layer[l]), t2;
      if ((s = nnft_size_mul(c, c, &t2))) return s;
      if ((s = nnft_size_add(t, t2, &t))) return s;
    }
    break;
  default:
    t = 0;
  }
  if ((s = nnft_size_add(total, t, &total))) return s;
  return nnft_size_mul(total, sizeof(double), bytes);
}

/* ---- signals ---- */

void nnft_fisher_free(nnft_fisher *F) {
  if (!F) return;
  for (size_t k = 0; k < F->nl; k++) {
    nnft_free(F->L[k].H);
    nnft_free(F->L[k].D);
  }
  for (size_t k = 0; k < NNFT_MAX_LAYERS; k++) nnft_mat_free(&F->block[k]);
  nnft_free(F->J);
  nnft_mat_free(&F->gram);
  nnft_mat_free(&F->dense);
  nnft_free(F->diag);
  memset(F, 0, sizeof *F);
}

static double *alloc_doubles(size_t a, size_t b) {
  size_t c;
  if (nnft_size_mul(a, b, &c) || nnft_size_mul(c, sizeof(double), &c)) return NULL;
  return nnft_alloc(c);
}

typedef struct sig_ctx {
  nnft_fisher *F;
  int slot[NNFT_MAX_LAYERS];
} sig_ctx;

static nnft_status store_signals(void *ctx, size_t l, size_t r0, const nnft_mat *H,
                                 const nnft_mat *D, const double *hscale) {
  sig_ctx *c = ctx;
  nnft_fisher_layer *fl = &c->F->L[c->slot[l]];
  size_t n = c->F->n, nb = H->rows;
  for (size_t j = 0; j < fl->fan_in; j++) {
    double sc = hscale ? hscale[j] : 1.0;
    const double *src = H->data + j * H->ld;
    double *dst = fl->H + j * n + r0;
    for (size_t r = 0; r < nb; r++) dst[r] = sc * src[r];
  }
  for (size_t i = 0; i < fl->fan_out; i++)
    memcpy(fl->D + i * n + r0, D->data + i * D->ld, nb * sizeof(double));
  return NNFT_OK;
}

/* Jacobian columns of trainable layer slot k into out (n x count, ld n). */
static void layer_jacobian(const nnft_fisher *F, size_t k, double *out) {
  const nnft_fisher_layer *fl = &F->L[k];
  size_t n = F->n, fo = fl->fan_out, fi = fl->fan_in;
  for (size_t j = 0; j < fi; j++) {
    const double *restrict h = fl->H + j * n;
    for (size_t i = 0; i < fo; i++) {
      const double *restrict d = fl->D + i * n;
      double *restrict o = out + (i + j * fo) * n;
      for (size_t r = 0; r < n; r++) o[r] = fl->ws * d[r] * h[r];
    }
  }
  if (fl->has_bias)
    for (size_t i = 0; i < fo; i++) {
      const double *d = fl->D + i * n;
      double *o = out + (fo * fi + i) * n;
      for (size_t r = 0; r < n; r++) o[r] = fl->bs * d[r];
    }
}

/* Columns [c0, c0 + count) of J as a matrix: a view of F->J, or built into buf. */
static nnft_mat jac_cols(const nnft_fisher *F, size_t k, double *buf) {
  size_t c0 = F->J ? 0 : F->L[k].toff, cnt = F->J ? F->P : F->L[k].count;
  nnft_mat m = {F->n, cnt, F->n, NULL, 0};
  if (F->J) {
    m.data = F->J + c0 * F->n;
  } else {
    layer_jacobian(F, k, buf);
    m.data = buf;
  }
  return m;
}

/* diag(JᵀJ) into F->diag (unscaled). */
static nnft_status compute_diag(nnft_fisher *F) {
  size_t n = F->n;
  if (F->J) {
    for (size_t c = 0; c < F->P; c++) {
      const double *col = F->J + c * n;
      double acc = 0.0;
      for (size_t r = 0; r < n; r++) acc += col[r] * col[r];
      F->diag[c] = acc;
    }
    return NNFT_OK;
  }
  for (size_t k = 0; k < F->nl; k++) {
    const nnft_fisher_layer *fl = &F->L[k];
    size_t fo = fl->fan_out, fi = fl->fan_in;
    double *h2 = alloc_doubles(n, fi), *d2 = alloc_doubles(n, fo);
    if (!h2 || !d2) {
      nnft_free(h2);
      nnft_free(d2);
      return NNFT_ENOMEM;
    }
    for (size_t e = 0; e < n * fi; e++) h2[e] = fl->H[e] * fl->H[e];
    for (size_t e = 0; e < n * fo; e++) d2[e] = fl->D[e] * fl->D[e];
    /* diag W_ij = ws² Σ_a D_ai² H_aj²: (D∘D)ᵀ (H∘H), fo x fi, lands column-major at toff */
    nnft_mat Dm = {n, fo, n, d2, 0}, Hm = {n, fi, n, h2, 0};
    nnft_mat out = {fo, fi, fo, F->diag + fl->toff, 0};
    nnft_status s = nnft_mat_gemm(fl->ws * fl->ws, &Dm, 1, &Hm, 0, 0.0, &out);
    if (!s && fl->has_bias)
      for (size_t i = 0; i < fo; i++) {
        double acc = 0.0;
        for (size_t r = 0; r < n; r++) acc += d2[i * n + r];
        F->diag[fl->toff + fo * fi + i] = fl->bs * fl->bs * acc;
      }
    nnft_free(h2);
    nnft_free(d2);
    if (s) return s;
  }
  return NNFT_OK;
}

static nnft_status gram_into(const nnft_fisher *F, nnft_mat *G) {
  size_t n = F->n;
  nnft_status s;
  if (G->rows != n || G->cols != n) return NNFT_EDIM;
  if (F->J) {
    nnft_mat Jm = {n, F->P, n, F->J, 0};
    return nnft_mat_syrk(&Jm, 0, G);
  }
  nnft_mat T1, T2;
  if ((s = nnft_mat_alloc(n, n, &T1))) return s;
  if ((s = nnft_mat_alloc(n, n, &T2))) {
    nnft_mat_free(&T1);
    return s;
  }
  nnft_mat_fill(G, 0.0);
  for (size_t k = 0; k < F->nl && !s; k++) {
    if (nnft_interrupted()) {
      s = NNFT_EINTR;
      break;
    }
    const nnft_fisher_layer *fl = &F->L[k];
    nnft_mat Dm = {n, fl->fan_out, n, fl->D, 0}, Hm = {n, fl->fan_in, n, fl->H, 0};
    if ((s = nnft_mat_syrk(&Dm, 0, &T1))) break;
    if ((s = nnft_mat_syrk(&Hm, 0, &T2))) break;
    double w2 = fl->ws * fl->ws, b2 = fl->has_bias ? fl->bs * fl->bs : 0.0;
    for (size_t j = 0; j < n; j++)
      for (size_t i = 0; i < n; i++) {
        double dd = NNFT_AT(&T1, i, j);
        NNFT_AT(G, i, j) += dd * (w2 * NNFT_AT(&T2, i, j) + b2);
      }
  }
  nnft_mat_free(&T1);
  nnft_mat_free(&T2);
  return s;
}

nnft_status nnft_fisher_gram(const nnft_fisher *F, nnft_mat *g) {
  if (g->rows != F->n || g->cols != F->n) return NNFT_EDIM;
  if (F->form == NNFT_FISHER_GRAM) return nnft_mat_copy(&F->gram, g);
  return gram_into(F, g);
}

static int all_finite(const double *x, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!isfinite(x[i])) return 0;
  return 1;
}

nnft_status nnft_fisher_compute(const nnft_net *net, const nnft_mat *X, double sigma,
                                double damping, nnft_fisher_form form, size_t max_bytes,
                                nnft_fisher *F) {
  memset(F, 0, sizeof *F);
  const nnft_arch *a = &net->arch;
  size_t n = X->rows, P = net->ntrain, bytes;
  nnft_status s;
  if (X->cols != a->d_in) return NNFT_EDIM;
  if (!(sigma > 0) || !isfinite(sigma) || !(damping >= 0) || !isfinite(damping) || n == 0 ||
      P == 0 || (unsigned)form > NNFT_FISHER_BLOCK)
    return NNFT_EDOM;
  if (!nnft_mat_all_finite(X) || !all_finite(net->theta, net->nparams)) return NNFT_ENONFINITE;
  if ((s = nnft_fisher_bytes(net, n, form, &bytes))) return s;
  if (max_bytes && bytes > max_bytes) return NNFT_ENOMEM;
  int dummy;
  if ((s = nnft_blas_int(n, &dummy)) || (s = nnft_blas_int(P, &dummy))) return s;
  F->form = form;
  F->n = n;
  F->P = P;
  F->sigma = sigma;
  F->damping = damping;
  F->scale = 1.0 / ((double)n * sigma * sigma);
  if (!(F->diag = alloc_doubles(P, 1))) {
    s = NNFT_ENOMEM;
    goto fail;
  }
  if (needs_jacobian(net)) {
    if (!(F->J = alloc_doubles(n, P))) {
      s = NNFT_ENOMEM;
      goto fail;
    }
    nnft_mat Jm = {n, P, n, F->J, 0};
    if ((s = nnft_net_jacobian(net, X, &Jm, NULL))) goto fail;
  } else {
    sig_ctx ctx;
    ctx.F = F;
    for (size_t l = 0; l < a->nlayers; l++) {
      const nnft_layer *ly = &a->layer[l];
      if (ly->frozen) continue;
      nnft_fisher_layer *fl = &F->L[F->nl];
      fl->layer = l;
      fl->fan_in = ly->fan_in;
      fl->fan_out = ly->fan_out;
      fl->toff = net->t_off[l];
      fl->count = layer_params(ly);
      fl->has_bias = ly->has_bias;
      fl->ws = net->wscale[l];
      fl->bs = net->bscale[l];
      ctx.slot[l] = (int)F->nl;
      F->nl++;
      fl->H = alloc_doubles(n, ly->fan_in);
      fl->D = alloc_doubles(n, ly->fan_out);
      if (!fl->H || !fl->D) {
        s = NNFT_ENOMEM;
        goto fail;
      }
    }
    if ((s = nnft_net_signals(net, X, store_signals, &ctx))) goto fail;
  }
  if ((s = compute_diag(F))) goto fail;
  for (size_t c = 0; c < P; c++) F->diag[c] = F->scale * F->diag[c] + damping;
  if (!all_finite(F->diag, P)) {
    s = NNFT_ENONFINITE;
    goto fail;
  }
  if (form == NNFT_FISHER_GRAM) {
    if ((s = nnft_mat_alloc(n, n, &F->gram))) goto fail;
    if ((s = gram_into(F, &F->gram))) goto fail;
  } else if (form == NNFT_FISHER_DENSE) {
    if ((s = nnft_mat_alloc(P, P, &F->dense))) goto fail;
    double *buf = F->J ? NULL : alloc_doubles(n, P);
    if (!F->J && !buf) {
      s = NNFT_ENOMEM;
      goto fail;
    }
    if (!F->J)
      for (size_t k = 0; k < F->nl; k++) layer_jacobian(F, k, buf + F->L[k].toff * n);
    nnft_mat Jm = {n, P, n, F->J ? F->J : buf, 0};
    s = nnft_mat_syrk(&Jm, 1, &F->dense);
    nnft_free(buf);
    if (s) goto fail;
    for (size_t j = 0; j < P; j++) {
      for (size_t i = 0; i < P; i++) NNFT_AT(&F->dense, i, j) *= F->scale;
      NNFT_AT(&F->dense, j, j) += damping;
    }
  } else if (form == NNFT_FISHER_BLOCK) {
    size_t nb = F->J ? 1 : F->nl;
    for (size_t k = 0; k < nb; k++) {
      size_t cnt = F->J ? P : F->L[k].count;
      if ((s = nnft_mat_alloc(cnt, cnt, &F->block[k]))) goto fail;
    }
    for (size_t k = 0; k < nb; k++) {
      if (nnft_interrupted()) {
        s = NNFT_EINTR;
        goto fail;
      }
      double *buf = F->J ? NULL : alloc_doubles(n, F->L[k].count);
      if (!F->J && !buf) {
        s = NNFT_ENOMEM;
        goto fail;
      }
      nnft_mat Jm = jac_cols(F, k, buf);
      s = nnft_mat_syrk(&Jm, 1, &F->block[k]);
      nnft_free(buf);
      if (s) goto fail;
      nnft_mat *B = &F->block[k];
      for (size_t j = 0; j < B->cols; j++) {
        for (size_t i = 0; i < B->rows; i++) NNFT_AT(B, i, j) *= F->scale;
        NNFT_AT(B, j, j) += damping;
      }
    }
  }
  return NNFT_OK;
fail:
  nnft_fisher_free(F);
  return s;
}

/* number of blocks of the BLOCK form and the offset/size of block k */
static size_t nblocks(const nnft_fisher *F) { return F->J ? 1 : F->nl; }
static size_t block_off(const nnft_fisher *F, size_t k) { return F->J ? 0 : F->L[k].toff; }

/* ---- products ---- */

static size_t max_width(const nnft_fisher *F) {
  size_t w = 1;
  for (size_t k = 0; k < F->nl; k++) {
    if (F->L[k].fan_in > w) w = F->L[k].fan_in;
    if (F->L[k].fan_out > w) w = F->L[k].fan_out;
  }
  return w;
}

nnft_status nnft_fisher_jv(const nnft_fisher *F, const double *v, double *out) {
  size_t n = F->n;
  if (F->J) {
    nnft_mat Jm = {n, F->P, n, F->J, 0}, vm = {F->P, 1, F->P, (double *)v, 0},
             om = {n, 1, n, out, 0};
    return nnft_mat_gemm(1.0, &Jm, 0, &vm, 0, 0.0, &om);
  }
  double *T = alloc_doubles(n, max_width(F));
  if (!T) return NNFT_ENOMEM;
  memset(out, 0, n * sizeof(double));
  nnft_status s = NNFT_OK;
  for (size_t k = 0; k < F->nl && !s; k++) {
    const nnft_fisher_layer *fl = &F->L[k];
    size_t fo = fl->fan_out, fi = fl->fan_in;
    /* (J v)_a = ws Σ_i D_ai (H Vᵀ)_ai + bs Σ_i D_ai b_i, V = v's W block as fo x fi */
    nnft_mat Hm = {n, fi, n, fl->H, 0}, Vm = {fo, fi, fo, (double *)v + fl->toff, 0},
             Tm = {n, fo, n, T, 0};
    if ((s = nnft_mat_gemm(1.0, &Hm, 0, &Vm, 1, 0.0, &Tm))) break;
    const double *bv = v + fl->toff + fo * fi;
    for (size_t i = 0; i < fo; i++) {
      const double *restrict d = fl->D + i * n, *restrict t = T + i * n;
      double bb = fl->has_bias ? fl->bs * bv[i] : 0.0;
      for (size_t r = 0; r < n; r++) out[r] += d[r] * (fl->ws * t[r] + bb);
    }
  }
  nnft_free(T);
  return s;
}

nnft_status nnft_fisher_jtu(const nnft_fisher *F, const double *u, double *out) {
  size_t n = F->n;
  if (F->J) {
    nnft_mat Jm = {n, F->P, n, F->J, 0}, um = {n, 1, n, (double *)u, 0},
             om = {F->P, 1, F->P, out, 0};
    return nnft_mat_gemm(1.0, &Jm, 1, &um, 0, 0.0, &om);
  }
  double *T = alloc_doubles(n, max_width(F));
  if (!T) return NNFT_ENOMEM;
  nnft_status s = NNFT_OK;
  for (size_t k = 0; k < F->nl && !s; k++) {
    const nnft_fisher_layer *fl = &F->L[k];
    size_t fo = fl->fan_out, fi = fl->fan_in;
    /* W block = ws Dᵀ diag(u) H (fo x fi); bias = bs Dᵀ u */
    for (size_t j = 0; j < fi; j++)
      for (size_t r = 0; r < n; r++) T[j * n + r] = u[r] * fl->H[j * n + r];
    nnft_mat Dm = {n, fo, n, fl->D, 0}, Tm = {n, fi, n, T, 0},
             Om = {fo, fi, fo, out + fl->toff, 0};
    if ((s = nnft_mat_gemm(fl->ws, &Dm, 1, &Tm, 0, 0.0, &Om))) break;
    if (fl->has_bias)
      for (size_t i = 0; i < fo; i++) {
        double acc = 0.0;
        for (size_t r = 0; r < n; r++) acc += fl->D[i * n + r] * u[r];
        out[fl->toff + fo * fi + i] = fl->bs * acc;
      }
  }
  nnft_free(T);
  return s;
}

nnft_status nnft_fisher_mvp(const nnft_fisher *F, const double *v, double *out) {
  size_t P = F->P;
  nnft_status s = NNFT_OK;
  switch (F->form) {
  case NNFT_FISHER_GRAM: {
    double *t = alloc_doubles(F->n, 1);
    if (!t) return NNFT_ENOMEM;
    if (!(s = nnft_fisher_jv(F, v, t))) {
      for (size_t r = 0; r < F->n; r++) t[r] *= F->scale;
      s = nnft_fisher_jtu(F, t, out);
    }
    nnft_free(t);
    if (!s)
      for (size_t c = 0; c < P; c++) out[c] += F->damping * v[c];
    return s;
  }
  case NNFT_FISHER_DENSE: {
    nnft_mat vm = {P, 1, P, (double *)v, 0}, om = {P, 1, P, out, 0};
    return nnft_mat_gemm(1.0, &F->dense, 0, &vm, 0, 0.0, &om);
  }
  case NNFT_FISHER_DIAG:
    for (size_t c = 0; c < P; c++) out[c] = F->diag[c] * v[c];
    return NNFT_OK;
  case NNFT_FISHER_BLOCK:
    for (size_t k = 0; k < nblocks(F) && !s; k++) {
      size_t o = block_off(F, k), m = F->block[k].rows;
      nnft_mat vm = {m, 1, m, (double *)v + o, 0}, om = {m, 1, m, out + o, 0};
      s = nnft_mat_gemm(1.0, &F->block[k], 0, &vm, 0, 0.0, &om);
    }
    return s;
  }
  return NNFT_EINTERNAL;
}

nnft_status nnft_fisher_distance(const nnft_fisher *F, const double *dtheta, double *d) {
  double *t = alloc_doubles(F->P, 1);
  if (!t) return NNFT_ENOMEM;
  nnft_status s = nnft_fisher_mvp(F, dtheta, t);
  if (!s) {
    double acc = 0.0;
    for (size_t c = 0; c < F->P; c++) acc += dtheta[c] * t[c];
    *d = 0.5 * acc;
  }
  nnft_free(t);
  return s;
}

/* ---- spectra ---- */

static nnft_status eigh_all(const nnft_mat *A, double *w, nnft_mat *Z) {
  nnft_eigh_opts o = nnft_eigh_defaults();
  o.vectors = Z != NULL;
  nnft_mat wm = {A->rows, 1, A->rows ? A->rows : 1, w, 0};
  size_t m;
  return nnft_linalg_eigh(A, &o, &wm, Z, &m, NULL);
}

typedef struct { double v; size_t i; } vi_pair;

static int cmp_desc(const void *a, const void *b) {
  const vi_pair *x = a, *y = b;
  if (x->v > y->v) return -1;
  if (x->v < y->v) return 1;
  return x->i < y->i ? -1 : x->i > y->i;
}

nnft_status nnft_fisher_eigen(const nnft_fisher *F, size_t k, double *values, nnft_mat *V,
                              size_t *found) {
  size_t P = F->P, n = F->n;
  nnft_status s = NNFT_OK;
  *found = 0;
  if (k > P || (F->form == NNFT_FISHER_GRAM && k > n)) return NNFT_EDOM;
  if (V && (V->rows != P || V->cols < k)) return NNFT_EDIM;
  if (k == 0) return NNFT_OK;
  if (F->form == NNFT_FISHER_GRAM || F->form == NNFT_FISHER_DENSE) {
    const nnft_mat *A = F->form == NNFT_FISHER_GRAM ? &F->gram : &F->dense;
    size_t m = A->rows;
    nnft_eigh_opts o = nnft_eigh_defaults();
    o.select = NNFT_EIGH_INDEX;
    o.il = 1;
    o.iu = k;
    nnft_mat U = {0, 0, 1, NULL, 0};
    int want = V != NULL || F->form == NNFT_FISHER_GRAM;
    o.vectors = V != NULL;
    double *w = alloc_doubles(m, 1);
    if (!w) return NNFT_ENOMEM;
    nnft_mat wm = {m, 1, m, w, 0};
    size_t got = 0;
    if (V && F->form == NNFT_FISHER_GRAM) {
      if ((s = nnft_mat_alloc(n, k, &U))) {
        nnft_free(w);
        return s;
      }
    }
    nnft_mat *Z = !V ? NULL : F->form == NNFT_FISHER_GRAM ? &U : V;
    if (!V) o.vectors = 0;
    (void)want;
    s = nnft_linalg_eigh(A, &o, &wm, Z, &got, NULL);
    if (!s && F->form == NNFT_FISHER_DENSE) {
      for (size_t i = 0; i < got; i++) values[i] = w[i];
      *found = got;
    } else if (!s) {
      /* the top eigenvalue bounds the tolerance; with k = 1 it is w[0] itself */
      double mx = got ? w[0] : 0.0, tol = (double)(n > P ? n : P) * DBL_EPSILON * mx;
      size_t r = 0;
      while (r < got && w[r] > tol && w[r] > 0) r++;
      double *col = NULL;
      for (size_t i = 0; i < r && !s; i++) {
        values[i] = F->scale * w[i] + F->damping;
        if (V) {
          col = V->data + i * V->ld;
          if ((s = nnft_fisher_jtu(F, U.data + i * U.ld, col))) break;
          double inv = 1.0 / sqrt(w[i]);
          for (size_t c = 0; c < P; c++) col[c] *= inv;
        }
      }
      if (!s) *found = r;
    }
    nnft_mat_free(&U);
    nnft_free(w);
    return s;
  }
  /* DIAG and BLOCK: eigenpairs of the (block) diagonal, merged */
  vi_pair *pr = nnft_alloc(P * sizeof(vi_pair));
  if (!pr) return NNFT_ENOMEM;
  nnft_mat Z[NNFT_MAX_LAYERS];
  double *w = NULL;
  size_t nbk = F->form == NNFT_FISHER_BLOCK ? nblocks(F) : 0;
  memset(Z, 0, sizeof Z);
  if (F->form == NNFT_FISHER_DIAG) {
    for (size_t c = 0; c < P; c++) pr[c] = (vi_pair){F->diag[c], c};
  } else {
    if (!(w = alloc_doubles(P, 1))) {
      s = NNFT_ENOMEM;
      goto out;
    }
    for (size_t b = 0; b < nbk && !s; b++) {
      size_t o = block_off(F, b), m = F->block[b].rows;
      if (V && (s = nnft_mat_alloc(m, m, &Z[b]))) break;
      if ((s = eigh_all(&F->block[b], w + o, V ? &Z[b] : NULL))) break;
      for (size_t i = 0; i < m; i++) pr[o + i] = (vi_pair){w[o + i], o + i};
    }
    if (s) goto out;
  }
  qsort(pr, P, sizeof *pr, cmp_desc);
  for (size_t i = 0; i < k; i++) {
    values[i] = pr[i].v;
    if (!V) continue;
    double *col = V->data + i * V->ld;
    memset(col, 0, P * sizeof(double));
    if (F->form == NNFT_FISHER_DIAG) {
      col[pr[i].i] = 1.0;
    } else {
      size_t b = 0;
      while (b + 1 < nbk && block_off(F, b + 1) <= pr[i].i) b++;
      size_t o = block_off(F, b), m = F->block[b].rows, j = pr[i].i - o;
      memcpy(col + o, Z[b].data + j * Z[b].ld, m * sizeof(double));
    }
  }
  *found = k;
out:
  for (size_t b = 0; b < NNFT_MAX_LAYERS; b++) nnft_mat_free(&Z[b]);
  nnft_free(w);
  nnft_free(pr);
  return s;
}

nnft_status nnft_fisher_rank(const nnft_fisher *F, size_t *rank) {
  size_t P = F->P, n = F->n, r = 0;
  double big = (double)(n > P ? n : P) * DBL_EPSILON;
  nnft_status s = NNFT_OK;
  *rank = 0;
  if (F->form == NNFT_FISHER_DIAG) {
    double mx = 0.0;
    for (size_t c = 0; c < P; c++)
      if (F->diag[c] - F->damping > mx) mx = F->diag[c] - F->damping;
    for (size_t c = 0; c < P; c++) r += F->diag[c] - F->damping > big * mx && mx > 0;
    *rank = r;
    return NNFT_OK;
  }
  if (F->form == NNFT_FISHER_BLOCK) {
    double *w = alloc_doubles(P, 1);
    if (!w) return NNFT_ENOMEM;
    double mx = 0.0;
    for (size_t b = 0; b < nblocks(F) && !s; b++) {
      size_t o = block_off(F, b);
      s = eigh_all(&F->block[b], w + o, NULL);
    }
    if (!s) {
      for (size_t c = 0; c < P; c++)
        if (w[c] - F->damping > mx) mx = w[c] - F->damping;
      for (size_t c = 0; c < P; c++) r += w[c] - F->damping > big * mx && mx > 0;
      *rank = r;
    }
    nnft_free(w);
    return s;
  }
  /* GRAM and DENSE: rank(J) from the Gram matrix (the smaller side when P > n) */
  int use_gram = F->form == NNFT_FISHER_GRAM || n < P;
  nnft_mat G = {0, 0, 1, NULL, 0};
  const nnft_mat *A;
  if (F->form == NNFT_FISHER_GRAM) {
    A = &F->gram;
  } else if (use_gram) {
    if ((s = nnft_mat_alloc(n, n, &G))) return s;
    if ((s = gram_into(F, &G))) {
      nnft_mat_free(&G);
      return s;
    }
    A = &G;
  } else {
    A = &F->dense;
  }
  size_t m = A->rows;
  double *w = alloc_doubles(m, 1);
  if (!w) {
    nnft_mat_free(&G);
    return NNFT_ENOMEM;
  }
  s = eigh_all(A, w, NULL);
  if (!s) {
    double off = A == &F->dense ? F->damping : 0.0, mx = m ? w[0] - off : 0.0;
    for (size_t i = 0; i < m; i++) r += w[i] - off > big * mx && mx > 0;
    *rank = r;
  }
  nnft_free(w);
  nnft_mat_free(&G);
  return s;
}

/* ---- Gaussian families ---- */

nnft_status nnft_fisher_kl(const nnft_mat *mu1, const nnft_mat *S1, const nnft_mat *mu2,
                           const nnft_mat *S2, double *kl) {
  size_t k = mu1->rows;
  if (mu1->cols != 1 || mu2->cols != 1 || mu2->rows != k || S1->rows != k || S1->cols != k ||
      S2->rows != k || S2->cols != k)
    return NNFT_EDIM;
  if (!nnft_mat_all_finite(mu1) || !nnft_mat_all_finite(mu2) || !nnft_mat_all_finite(S1) ||
      !nnft_mat_all_finite(S2))
    return NNFT_ENONFINITE;
  nnft_mat L2, B;
  nnft_status s;
  if ((s = nnft_mat_alloc(k, k, &L2))) return s;
  if ((s = nnft_mat_alloc(k, k + 1, &B))) {
    nnft_mat_free(&L2);
    return s;
  }
  double ld1 = 0, ld2 = 0;
  if ((s = nnft_linalg_chol(S2, NULL, &L2, NULL, NULL))) goto out;
  if ((s = nnft_linalg_logdet_spd(S1, &ld1, NULL))) goto out;
  for (size_t i = 0; i < k; i++) ld2 += 2.0 * log(NNFT_AT(&L2, i, i));
  /* B = [S1 | mu2 − mu1]; X = S2⁻¹ B */
  for (size_t j = 0; j < k; j++)
    for (size_t i = 0; i < k; i++) NNFT_AT(&B, i, j) = NNFT_AT(S1, i, j);
  for (size_t i = 0; i < k; i++) NNFT_AT(&B, i, k) = NNFT_AT(mu2, i, 0) - NNFT_AT(mu1, i, 0);
  double maha = 0.0, tr = 0.0;
  {
    double *dm = alloc_doubles(k ? k : 1, 1);
    if (!dm) {
      s = NNFT_ENOMEM;
      goto out;
    }
    for (size_t i = 0; i < k; i++) dm[i] = NNFT_AT(&B, i, k);
    s = nnft_linalg_cholsolve(&L2, &B, &B, NULL);
    if (!s) {
      for (size_t i = 0; i < k; i++) tr += NNFT_AT(&B, i, i);
      for (size_t i = 0; i < k; i++) maha += dm[i] * NNFT_AT(&B, i, k);
    }
    nnft_free(dm);
    if (s) goto out;
  }
  *kl = 0.5 * (tr + maha - (double)k + ld2 - ld1);
out:
  nnft_mat_free(&L2);
  nnft_mat_free(&B);
  return s;
}

nnft_status nnft_fisher_gp(const nnft_mat *C, const nnft_mat *const *dC, size_t m, nnft_mat *I) {
  size_t n = C->rows;
  if (C->cols != n || I->rows != m || I->cols != m) return NNFT_EDIM;
  for (size_t i = 0; i < m; i++)
    if (dC[i]->rows != n || dC[i]->cols != n) return NNFT_EDIM;
  if (!nnft_mat_all_finite(C)) return NNFT_ENONFINITE;
  for (size_t i = 0; i < m; i++)
    if (!nnft_mat_all_finite(dC[i])) return NNFT_ENONFINITE;
  nnft_mat Lc = {0, 0, 1, NULL, 0};
  nnft_mat *A = nnft_alloc((m ? m : 1) * sizeof(nnft_mat));
  if (!A) return NNFT_ENOMEM;
  memset(A, 0, (m ? m : 1) * sizeof(nnft_mat));
  nnft_status s = nnft_mat_alloc(n, n, &Lc);
  if (!s) s = nnft_linalg_chol(C, NULL, &Lc, NULL, NULL);
  for (size_t i = 0; i < m && !s; i++) {
    if ((s = nnft_mat_alloc(n, n, &A[i]))) break;
    s = nnft_linalg_cholsolve(&Lc, dC[i], &A[i], NULL); /* A_i = C⁻¹ ∂_iC */
  }
  if (!s) {
    /* I_ij = ½ tr(A_i A_j) = ½ Σ_ab (A_i)_ab (A_j)_ba */
    for (size_t i = 0; i < m; i++)
      for (size_t j = 0; j <= i; j++) {
        double acc = 0.0;
        for (size_t b = 0; b < n; b++)
          for (size_t a = 0; a < n; a++) acc += NNFT_AT(&A[i], a, b) * NNFT_AT(&A[j], b, a);
        NNFT_AT(I, i, j) = NNFT_AT(I, j, i) = 0.5 * acc;
      }
  }
  for (size_t i = 0; i < m; i++) nnft_mat_free(&A[i]);
  nnft_free(A);
  nnft_mat_free(&Lc);
  return s;
}
