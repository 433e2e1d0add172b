/* nnft_shell: information shells (physics.md §7.2). See nnft_shell.h. */
#include "nnft_shell.h"

#include <math.h>
#include <string.h>

#include "nnft_alloc.h"
#include "nnft_linalg.h"

static const char *const basis_names[] = {"eigen", "diag"};
static const char *const action_names[] = {"resample", "zero", "marginalise"};

const char *nnft_shell_basis_name(nnft_shell_basis b) { return (unsigned)b < 2 ? basis_names[b] : "?"; }
const char *nnft_shell_action_name(nnft_shell_action a) {
  return (unsigned)a < 3 ? action_names[a] : "?";
}
int nnft_shell_basis_lookup(const char *name) {
  for (int i = 0; i < 2; i++)
    if (strcmp(name, basis_names[i]) == 0) return i;
  return -1;
}
int nnft_shell_action_lookup(const char *name) {
  for (int i = 0; i < 3; i++)
    if (strcmp(name, action_names[i]) == 0) return i;
  if (strcmp(name, "marginalize") == 0) return NNFT_SHELL_MARGINALISE;
  return -1;
}

size_t nnft_shell_mask(const double *lambda, size_t k, double cutoff, int strict,
                       unsigned char *sloppy) {
  size_t c = 0;
  for (size_t i = 0; i < k; i++) {
    int sl = nnft_shell_is_sloppy(lambda[i], cutoff, strict);
    if (sloppy) sloppy[i] = (unsigned char)sl;
    c += sl;
  }
  return c;
}

nnft_status nnft_shell_draw(nnft_rng *r, size_t P, double *z1, double *z2) {
  nnft_status s = nnft_rng_fill_normal(r, z1, P, 0.0, 1.0);
  if (!s && z2) s = nnft_rng_fill_normal(r, z2, P, 0.0, 1.0);
  return s;
}

static double *alloc_doubles(size_t n) {
  size_t b;
  if (nnft_size_mul(n ? n : 1, sizeof(double), &b)) return NULL;
  return nnft_alloc(b);
}

nnft_status nnft_shell_marginal_precision(const nnft_mat *A, const unsigned char *sloppy,
                                          nnft_mat *S) {
  size_t m = A->rows, q = 0, u;
  if (A->cols != m) return NNFT_EDIM;
  for (size_t i = 0; i < m; i++) q += !sloppy[i];
  u = m - q;
  if (S->rows != q || S->cols != q) return NNFT_EDIM;
  if (q == 0) return NNFT_OK;
  size_t *si = nnft_alloc(m * sizeof(size_t));
  if (!si) return NNFT_ENOMEM;
  size_t *ui = si + q, a = 0, b = 0;
  for (size_t i = 0; i < m; i++) {
    if (sloppy[i])
      ui[b++] = i;
    else
      si[a++] = i;
  }
  for (size_t j = 0; j < q; j++)
    for (size_t i = 0; i < q; i++) NNFT_AT(S, i, j) = NNFT_AT(A, si[i], si[j]);
  nnft_status s = NNFT_OK;
  if (u > 0) {
    nnft_mat Auu, Aus, X;
    memset(&Auu, 0, sizeof Auu);
    memset(&Aus, 0, sizeof Aus);
    memset(&X, 0, sizeof X);
    if ((s = nnft_mat_alloc(u, u, &Auu)) || (s = nnft_mat_alloc(u, q, &Aus)) ||
        (s = nnft_mat_alloc(u, q, &X)))
      goto out;
    for (size_t j = 0; j < u; j++)
      for (size_t i = 0; i < u; i++) NNFT_AT(&Auu, i, j) = NNFT_AT(A, ui[i], ui[j]);
    for (size_t j = 0; j < q; j++)
      for (size_t i = 0; i < u; i++) NNFT_AT(&Aus, i, j) = NNFT_AT(A, ui[i], si[j]);
    if ((s = nnft_linalg_solve_spd(&Auu, &Aus, &X, NULL))) goto out;
    /* S −= A_suᵀ... A_su = A_usᵀ: S −= A_usᵀ X */
    s = nnft_mat_gemm(-1.0, &Aus, 1, &X, 0, 1.0, S);
  out:
    nnft_mat_free(&Auu);
    nnft_mat_free(&Aus);
    nnft_mat_free(&X);
  }
  nnft_free(si);
  return s;
}

static nnft_status check(const nnft_shell_problem *pb, double cutoff, const nnft_shell_opts *o) {
  if (!(cutoff >= 0) || (unsigned)o->basis > NNFT_SHELL_DIAG ||
      (unsigned)o->action > NNFT_SHELL_MARGINALISE)
    return NNFT_EDOM;
  if (o->action != NNFT_SHELL_ZERO && !pb->z1) return NNFT_EDOM;
  if (o->action == NNFT_SHELL_MARGINALISE && (!pb->z2 || !(o->data > 0) || !isfinite(o->data)))
    return NNFT_EDOM;
  for (size_t i = 0; i < pb->P; i++)
    if (!(pb->prior_sd[i] > 0) || !isfinite(pb->prior_sd[i])) return NNFT_EDOM;
  if (o->basis == NNFT_SHELL_EIGEN) {
    if (!pb->V || !pb->lambda || pb->V->rows != pb->P || pb->V->cols < pb->k || pb->k > pb->P)
      return NNFT_EDIM;
    if (o->action == NNFT_SHELL_MARGINALISE)
      for (size_t i = 0; i < pb->P; i++)
        if (pb->prior_sd[i] != pb->prior_sd[0] || pb->prior_mean[i] != 0.0) return NNFT_EDOM;
  } else if (!pb->diag) {
    return NNFT_EDIM;
  }
  return NNFT_OK;
}

static nnft_status apply_eigen(const nnft_shell_problem *pb, double cutoff,
                               const nnft_shell_opts *o, double *out, size_t *nsloppy) {
  size_t P = pb->P, k = pb->k;
  const nnft_mat *V = pb->V;
  int null_sloppy = nnft_shell_is_sloppy(pb->damping, cutoff, o->strict);
  double *eta = alloc_doubles(P), *r = alloc_doubles(P), *c = alloc_doubles(k);
  nnft_status s = NNFT_OK;
  if (!eta || !r || !c) {
    s = NNFT_ENOMEM;
    goto out;
  }
  for (size_t i = 0; i < P; i++)
    eta[i] = o->action == NNFT_SHELL_ZERO ? 0.0 : pb->prior_mean[i] + pb->prior_sd[i] * pb->z1[i];
  for (size_t i = 0; i < P; i++) r[i] = pb->theta[i] - eta[i];
  /* c = Vᵀ r */
  nnft_mat Vk = {P, k, V->ld, V->data, 0}, rm = {P, 1, P, r, 0}, cm = {k, 1, k, c, 0};
  if (k && (s = nnft_mat_gemm(1.0, &Vk, 1, &rm, 0, 0.0, &cm))) goto out;
  size_t ns = null_sloppy ? P - k : 0;
  /* out = η + P_> r,  P_> r = Σ_{stiff A} v_A c_A + [null stiff] (r − V c) */
  if (!null_sloppy) {
    memcpy(out, pb->theta, P * sizeof(double)); /* η + r */
    for (size_t a = 0; a < k; a++) {
      const double *v = V->data + a * V->ld;
      for (size_t i = 0; i < P; i++) out[i] -= v[i] * c[a]; /* remove V c: the null part remains */
    }
  } else {
    memcpy(out, eta, P * sizeof(double));
  }
  for (size_t a = 0; a < k; a++) {
    const double *v = V->data + a * V->ld;
    if (nnft_shell_is_sloppy(pb->lambda[a], cutoff, o->strict)) {
      ns++;
      continue;
    }
    for (size_t i = 0; i < P; i++) out[i] += v[i] * c[a];
  }
  if (o->action == NNFT_SHELL_MARGINALISE) {
    double s2 = pb->prior_sd[0] * pb->prior_sd[0], T = o->data;
    /* stiff fluctuations: Σ_{stiff A} v_A (v_Aᵀ z2)/sqrt(T λ_A + 1/s²) (+ null part if stiff) */
    nnft_mat zm = {P, 1, P, (double *)pb->z2, 0};
    if (k && (s = nnft_mat_gemm(1.0, &Vk, 1, &zm, 0, 0.0, &cm))) goto out;
    if (!null_sloppy) {
      double f = 1.0 / sqrt(T * pb->damping + 1.0 / s2);
      for (size_t i = 0; i < P; i++) out[i] += f * pb->z2[i];
      for (size_t a = 0; a < k; a++) {
        const double *v = V->data + a * V->ld;
        for (size_t i = 0; i < P; i++) out[i] -= f * v[i] * c[a];
      }
    }
    for (size_t a = 0; a < k; a++) {
      if (nnft_shell_is_sloppy(pb->lambda[a], cutoff, o->strict)) continue;
      double f = 1.0 / sqrt(T * pb->lambda[a] + 1.0 / s2);
      const double *v = V->data + a * V->ld;
      for (size_t i = 0; i < P; i++) out[i] += f * v[i] * c[a];
    }
  }
  if (nsloppy) *nsloppy = ns;
out:
  nnft_free(eta);
  nnft_free(r);
  nnft_free(c);
  return s;
}

/* DIAG MARGINALISE with dense blocks: stiff θ_i += (L⁻ᵀ z2_>)_i per block. */
static nnft_status marginal_blocks(const nnft_shell_problem *pb, double cutoff,
                                   const nnft_shell_opts *o, double *out) {
  nnft_status s = NNFT_OK;
  for (size_t b = 0; b < pb->nblocks && !s; b++) {
    const nnft_mat *B = &pb->blocks[b];
    size_t m = B->rows, o0 = pb->boff[b], q = 0;
    if (B->cols != m || o0 + m > pb->P) return NNFT_EDIM;
    unsigned char *sl = nnft_alloc(m ? m : 1);
    nnft_mat A, S, Lf, z;
    memset(&A, 0, sizeof A);
    memset(&S, 0, sizeof S);
    memset(&Lf, 0, sizeof Lf);
    memset(&z, 0, sizeof z);
    if (!sl) return NNFT_ENOMEM;
    for (size_t i = 0; i < m; i++) {
      sl[i] = (unsigned char)nnft_shell_is_sloppy(pb->diag[o0 + i], cutoff, o->strict);
      q += !sl[i];
    }
    if (q == 0) goto next;
    if ((s = nnft_mat_alloc(m, m, &A)) || (s = nnft_mat_alloc(q, q, &S)) ||
        (s = nnft_mat_alloc(q, q, &Lf)) || (s = nnft_mat_alloc(q, 1, &z)))
      goto next;
    for (size_t j = 0; j < m; j++) {
      for (size_t i = 0; i < m; i++) NNFT_AT(&A, i, j) = o->data * NNFT_AT(B, i, j);
      double sd = pb->prior_sd[o0 + j];
      NNFT_AT(&A, j, j) += 1.0 / (sd * sd);
    }
    if ((s = nnft_shell_marginal_precision(&A, sl, &S))) goto next;
    if ((s = nnft_linalg_chol(&S, NULL, &Lf, NULL, NULL))) goto next;
    for (size_t i = 0, a = 0; i < m; i++)
      if (!sl[i]) z.data[a++] = pb->z2[o0 + i];
    if ((s = nnft_linalg_trisolve(&Lf, &z, 1, 1, &z, NULL))) goto next;
    for (size_t i = 0, a = 0; i < m; i++)
      if (!sl[i]) out[o0 + i] += z.data[a++];
  next:
    nnft_mat_free(&A);
    nnft_mat_free(&S);
    nnft_mat_free(&Lf);
    nnft_mat_free(&z);
    nnft_free(sl);
  }
  return s;
}

nnft_status nnft_shell_apply(const nnft_shell_problem *pb, double cutoff, const nnft_shell_opts *o,
                             double *out, size_t *nsloppy, size_t *nnull) {
  nnft_status s = check(pb, cutoff, o);
  if (s) return s;
  size_t P = pb->P;
  if (nnull) *nnull = o->basis == NNFT_SHELL_EIGEN ? P - pb->k : 0;
  if (o->basis == NNFT_SHELL_EIGEN) return apply_eigen(pb, cutoff, o, out, nsloppy);
  size_t ns = 0;
  int blocks = o->action == NNFT_SHELL_MARGINALISE && pb->nblocks > 0;
  for (size_t i = 0; i < P; i++) {
    if (nnft_shell_is_sloppy(pb->diag[i], cutoff, o->strict)) {
      ns++;
      out[i] = o->action == NNFT_SHELL_ZERO ? 0.0 : pb->prior_mean[i] + pb->prior_sd[i] * pb->z1[i];
    } else {
      out[i] = pb->theta[i];
      if (o->action == NNFT_SHELL_MARGINALISE && !blocks) {
        double sd = pb->prior_sd[i];
        out[i] += pb->z2[i] / sqrt(o->data * pb->diag[i] + 1.0 / (sd * sd));
      }
    }
  }
  if (blocks && (s = marginal_blocks(pb, cutoff, o, out))) return s;
  if (nsloppy) *nsloppy = ns;
  return NNFT_OK;
}

nnft_status nnft_shell_schedule(const nnft_shell_problem *pb, const double *cutoffs, size_t m,
                                const nnft_shell_opts *o, nnft_mat *out, size_t *counts) {
  if (out->rows != pb->P || out->cols != m) return NNFT_EDIM;
  for (size_t j = 0; j < m; j++)
    if (!(cutoffs[j] >= 0) || (j > 0 && !(cutoffs[j] >= cutoffs[j - 1]))) return NNFT_EDOM;
  for (size_t j = 0; j < m; j++) {
    if (nnft_interrupted()) return NNFT_EINTR;
    nnft_status s =
        nnft_shell_apply(pb, cutoffs[j], o, out->data + j * out->ld, counts ? counts + j : NULL, NULL);
    if (s) return s;
  }
  return NNFT_OK;
}
