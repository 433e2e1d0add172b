/* nnft_kernel: evaluation of kernel trees (nnft_kernel.h).
 *
 * Matrices are evaluated tile by tile (TILE x TILE). Within a tile the tree is walked once with an
 * accumulation mode: a node writes `out = f·v`, `out += f·v` or `out *= f·v` into the tile, so a
 * sum of leaves is a SET followed by ADDs, a product a SET followed by MULs, and a scaling only
 * multiplies the factor f; a temporary tile is needed only for a sum under a product (or a product
 * under a sum) and for an NNGP leaf (nnft_nngp writes a plain matrix). The squared distances and
 * dot products of the tile's point pairs are computed once per tile, from row-major copies of the
 * tile's rows of X and Y (contiguous inner loops). */
#include "nnft_kernel.h"

#include <math.h>
#include <string.h>

#include "nnft_alloc.h"
#include "nnft_freeprop.h"
#include "nnft_nngp.h"

#ifdef _OPENMP
#include <omp.h>
#endif

#define TILE 64

/* ---------------------------------------------------------------------------------------------
 * Constructors */

static nnft_kernel blank(nnft_kernel_type t) {
  nnft_kernel k;
  memset(&k, 0, sizeof k);
  k.type = t;
  return k;
}

nnft_kernel nnft_kernel_rbf(double lengthscale, double variance) {
  nnft_kernel k = blank(NNFT_KERNEL_RBF);
  k.lengthscale = lengthscale;
  k.variance = variance;
  return k;
}

nnft_kernel nnft_kernel_matern(double nu, double lengthscale, double variance) {
  nnft_kernel k = blank(NNFT_KERNEL_MATERN);
  k.nu = nu;
  k.lengthscale = lengthscale;
  k.variance = variance;
  return k;
}

nnft_kernel nnft_kernel_poly(double degree, double offset, double variance) {
  nnft_kernel k = blank(NNFT_KERNEL_POLY);
  k.degree = degree;
  k.offset = offset;
  k.variance = variance;
  return k;
}

nnft_kernel nnft_kernel_freeprop(size_t d, double R, double m) {
  nnft_kernel k = blank(NNFT_KERNEL_FREEPROP);
  k.dim = d;
  k.radius = R;
  k.mass = m;
  return k;
}

nnft_kernel nnft_kernel_nngp(const nnft_arch *a, int ntk, int quad_order) {
  nnft_kernel k = blank(ntk ? NNFT_KERNEL_NTK : NNFT_KERNEL_NNGP);
  k.arch = *a;
  k.quad_order = quad_order;
  k.dim = a->d_in;
  return k;
}

nnft_kernel nnft_kernel_sum(const nnft_kernel *a, const nnft_kernel *b) {
  nnft_kernel k = blank(NNFT_KERNEL_SUM);
  k.left = a;
  k.right = b;
  return k;
}

nnft_kernel nnft_kernel_prod(const nnft_kernel *a, const nnft_kernel *b) {
  nnft_kernel k = blank(NNFT_KERNEL_PROD);
  k.left = a;
  k.right = b;
  return k;
}

nnft_kernel nnft_kernel_scale(double c, const nnft_kernel *a) {
  nnft_kernel k = blank(NNFT_KERNEL_SCALE);
  k.scale = c;
  k.left = a;
  return k;
}

/* ---------------------------------------------------------------------------------------------
 * Checks and structure */

static int is_binary(const nnft_kernel *k) {
  return k->type == NNFT_KERNEL_SUM || k->type == NNFT_KERNEL_PROD;
}

static nnft_freeprop_params fp_params(const nnft_kernel *k) {
  nnft_freeprop_params p = nnft_freeprop_defaults();
  p.d = k->dim;
  p.R = k->radius;
  p.m = k->mass;
  p.power = 1.0;
  return p;
}

static nnft_status check_rec(const nnft_kernel *k, size_t depth, const char **why) {
  if (!k) {
    *why = "missing child kernel";
    return NNFT_EDOM;
  }
  if (depth > NNFT_KERNEL_MAX_DEPTH) {
    *why = "kernel tree is too deep (more than 200 nested sums, products and scalings)";
    return NNFT_EDOM;
  }
  switch (k->type) {
  case NNFT_KERNEL_RBF:
  case NNFT_KERNEL_MATERN:
    if (k->type == NNFT_KERNEL_MATERN && k->nu != 0.5 && k->nu != 1.5 && k->nu != 2.5) {
      *why = "Matérn nu must be 0.5, 1.5 or 2.5 (the closed forms)";
      return NNFT_EDOM;
    }
    if (!(isfinite(k->lengthscale) && k->lengthscale > 0)) {
      *why = "lengthscale must be finite and > 0";
      return NNFT_EDOM;
    }
    if (!(isfinite(k->variance) && k->variance >= 0)) {
      *why = "variance must be finite and >= 0";
      return NNFT_EDOM;
    }
    return NNFT_OK;
  case NNFT_KERNEL_POLY:
    if (!(isfinite(k->degree) && k->degree >= 0 && k->degree <= 64 &&
          k->degree == floor(k->degree))) {
      *why = "polynomial degree must be an integer between 0 and 64";
      return NNFT_EDOM;
    }
    if (!(isfinite(k->offset) && k->offset >= 0)) {
      *why = "polynomial offset must be finite and >= 0 (a negative offset is not a kernel)";
      return NNFT_EDOM;
    }
    if (!(isfinite(k->variance) && k->variance >= 0)) {
      *why = "variance must be finite and >= 0";
      return NNFT_EDOM;
    }
    return NNFT_OK;
  case NNFT_KERNEL_FREEPROP: {
    nnft_freeprop_params p = fp_params(k);
    const char *w = NULL;
    if (nnft_freeprop_check(&p, &w)) {
      *why = w ? w : "invalid free propagator parameters";
      return NNFT_EDOM;
    }
    return NNFT_OK;
  }
  case NNFT_KERNEL_NNGP:
  case NNFT_KERNEL_NTK:
  {
    nnft_nngp_opts o = nnft_nngp_defaults();
    o.ntk = k->type == NNFT_KERNEL_NTK;
    o.quad_order = k->quad_order;
    const char *w = NULL;
    if (nnft_nngp_check(&k->arch, &o, &w)) {
      *why = w ? w : "invalid architecture";
      return NNFT_EDOM;
    }
    return NNFT_OK;
  }
  case NNFT_KERNEL_SUM:
  case NNFT_KERNEL_PROD: {
    nnft_status s = check_rec(k->left, depth + 1, why);
    return s ? s : check_rec(k->right, depth + 1, why);
  }
  case NNFT_KERNEL_SCALE:
    if (!isfinite(k->scale)) {
      *why = "scale factor must be finite";
      return NNFT_EDOM;
    }
    return check_rec(k->left, depth + 1, why);
  }
  *why = "unknown kernel type";
  return NNFT_EDOM;
}

nnft_status nnft_kernel_check_why(const nnft_kernel *k, const char **why) {
  const char *w = NULL;
  nnft_status s = check_rec(k, 1, &w);
  if (why) *why = s ? w : NULL;
  return s;
}

nnft_status nnft_kernel_check(const nnft_kernel *k) { return nnft_kernel_check_why(k, NULL); }

/* Depth, capped one beyond the maximum so that a cyclic or absurd tree terminates. */
static size_t depth_rec(const nnft_kernel *k, size_t lvl) {
  if (!k || lvl > NNFT_KERNEL_MAX_DEPTH + 1) return 0;
  size_t a = 0, b = 0;
  if (is_binary(k)) {
    a = depth_rec(k->left, lvl + 1);
    b = depth_rec(k->right, lvl + 1);
  } else if (k->type == NNFT_KERNEL_SCALE) {
    a = depth_rec(k->left, lvl + 1);
  }
  return 1 + (a > b ? a : b);
}

size_t nnft_kernel_depth(const nnft_kernel *k) { return depth_rec(k, 1); }

nnft_status nnft_kernel_input_dim(const nnft_kernel *k, size_t *dim) {
  *dim = 0;
  if (!k) return NNFT_EDOM;
  switch (k->type) {
  case NNFT_KERNEL_FREEPROP: *dim = k->dim; return NNFT_OK;
  case NNFT_KERNEL_NNGP:
  case NNFT_KERNEL_NTK: *dim = k->arch.d_in; return NNFT_OK;
  case NNFT_KERNEL_SCALE: return nnft_kernel_input_dim(k->left, dim);
  case NNFT_KERNEL_SUM:
  case NNFT_KERNEL_PROD: {
    size_t a, b;
    nnft_status s;
    if ((s = nnft_kernel_input_dim(k->left, &a))) return s;
    if ((s = nnft_kernel_input_dim(k->right, &b))) return s;
    if (a && b && a != b) return NNFT_EDIM;
    *dim = a ? a : b;
    return NNFT_OK;
  }
  default: return NNFT_OK;
  }
}

/* The NNGP kernel of a one-hidden-layer network that depends on |x − y| only (physics.md §2.3):
 * cos-nets (any frequency law) and the Gauss-net, with zero means and no readout bias. */
static int nngp_stationary(const nnft_arch *a) {
  if (a->nlayers != 2) return 0;
  const nnft_layer *l1 = &a->layer[0], *l2 = &a->layer[1];
  if (l1->mean_w != 0 || l2->mean_w != 0) return 0;
  if (l2->has_bias && (l2->sigma_b != 0 || l2->mean_b != 0)) return 0;
  if (a->is_cosnet) return l1->has_bias; /* phases c ~ U[-π, π]: without them M2 is not
                                           translation invariant */
  return l1->act == NNFT_ACT_GAUSSNET && (!l1->has_bias || l1->mean_b == 0);
}

int nnft_kernel_is_stationary(const nnft_kernel *k) {
  if (!k) return 0;
  switch (k->type) {
  case NNFT_KERNEL_RBF:
  case NNFT_KERNEL_MATERN:
  case NNFT_KERNEL_FREEPROP: return 1;
  case NNFT_KERNEL_NNGP: return nngp_stationary(&k->arch);
  case NNFT_KERNEL_NTK:
  case NNFT_KERNEL_POLY: return 0;
  case NNFT_KERNEL_SCALE: return nnft_kernel_is_stationary(k->left);
  case NNFT_KERNEL_SUM:
  case NNFT_KERNEL_PROD:
    return nnft_kernel_is_stationary(k->left) && nnft_kernel_is_stationary(k->right);
  }
  return 0;
}

/* ---------------------------------------------------------------------------------------------
 * NNGP / NTK leaves: nnft_nngp (another module) evaluates them. */

/* threads: 0 = OpenMP's default (a whole matrix), 1 = a tile or a single radial value (a
 * parallel region per tile would cost more than it gains; quadratures call one r at a time). */
static nnft_status nngp_matrix(const nnft_kernel *k, const nnft_mat *X, const nnft_mat *Y,
                               nnft_mat *out, int threads) {
  nnft_nngp_opts o = nnft_nngp_defaults();
  o.ntk = k->type == NNFT_KERNEL_NTK;
  o.quad_order = k->quad_order;
  o.threads = threads;
  return nnft_nngp_eval(&k->arch, &o, X, Y, out);
}

static nnft_status nngp_diag(const nnft_kernel *k, const nnft_mat *X, nnft_mat *out,
                             int threads) {
  nnft_nngp_opts o = nnft_nngp_defaults();
  o.ntk = k->type == NNFT_KERNEL_NTK;
  o.quad_order = k->quad_order;
  o.threads = threads;
  return nnft_nngp_eval_diag(&k->arch, &o, X, out);
}

/* ---------------------------------------------------------------------------------------------
 * Tile evaluation */

typedef enum { OP_SET, OP_ADD, OP_MUL } acc_op;
typedef enum { MODE_TILE, MODE_DIAG, MODE_RADIAL } eval_mode;

/* free-propagator workspaces: one per distinct leaf; further leaves share the first */
#define MAX_FP 8

typedef struct {
  eval_mode mode;
  const nnft_mat *X, *Y; /* full inputs (Y == X for the symmetric path and diag) */
  size_t d;
  size_t i0, ni, j0, nj; /* the tile: rows i0.., columns j0.. */
  int sym_block;         /* the tile is a diagonal block of the symmetric path */
  double *xb, *yb;       /* row-major copies of the tile's points (TILE x d) */
  double *r2, *dot;      /* squared distances / dot products of the tile (TILE x TILE, ld TILE) */
  double **tmp;          /* temporary tiles by level */
  nnft_mat radial_x;     /* MODE_RADIAL: points (r, 0, ..., 0) for NNGP leaves (TILE x d) */
  nnft_mat radial_y;     /* MODE_RADIAL: the origin (1 x d) */
  const nnft_kernel *fp_leaf[MAX_FP];
  nnft_freeprop_ws *fp_ws[MAX_FP];
  size_t nfp;
} eval_ctx;

typedef struct {
  int r2, dot, fp, nngp;
} leaf_needs;

static void scan_leaves(const nnft_kernel *k, leaf_needs *n) {
  switch (k->type) {
  case NNFT_KERNEL_RBF:
  case NNFT_KERNEL_MATERN: n->r2 = 1; break;
  case NNFT_KERNEL_FREEPROP: n->r2 = 1; n->fp++; break;
  case NNFT_KERNEL_POLY: n->dot = 1; break;
  case NNFT_KERNEL_NNGP:
  case NNFT_KERNEL_NTK: n->nngp = 1; break;
  case NNFT_KERNEL_SCALE: scan_leaves(k->left, n); break;
  case NNFT_KERNEL_SUM:
  case NNFT_KERNEL_PROD:
    scan_leaves(k->left, n);
    scan_leaves(k->right, n);
    break;
  }
}

/* Temporary tiles the evaluation of k with accumulation op needs (mirrors eval below). */
static size_t temps_needed(const nnft_kernel *k, acc_op op) {
  size_t a, b;
  switch (k->type) {
  case NNFT_KERNEL_NNGP:
  case NNFT_KERNEL_NTK: return 1;
  case NNFT_KERNEL_SCALE: return temps_needed(k->left, op);
  case NNFT_KERNEL_SUM:
    if (op == OP_MUL) return 1 + temps_needed(k, OP_SET);
    a = temps_needed(k->left, op);
    b = temps_needed(k->right, OP_ADD);
    return a > b ? a : b;
  case NNFT_KERNEL_PROD:
    if (op == OP_ADD) return 1 + temps_needed(k, OP_SET);
    a = temps_needed(k->left, op);
    b = temps_needed(k->right, OP_MUL);
    return a > b ? a : b;
  default: return 0;
  }
}

/* Apply a tile of values v (ld TILE) to out (ld ldo) with op and factor f. */
static void apply_tile(double *out, size_t ldo, const double *v, size_t ni, size_t nj, acc_op op,
                       double f) {
  for (size_t j = 0; j < nj; j++) {
    double *restrict o = out + j * ldo;
    const double *restrict w = v + j * TILE;
    if (op == OP_SET)
      for (size_t i = 0; i < ni; i++) o[i] = f * w[i];
    else if (op == OP_ADD)
      for (size_t i = 0; i < ni; i++) o[i] += f * w[i];
    else
      for (size_t i = 0; i < ni; i++) o[i] *= f * w[i];
  }
}

/* One stationary leaf's value at squared distance s. */
static inline double stationary_value(const nnft_kernel *k, double s) {
  double l = k->lengthscale, v = k->variance;
  if (k->type == NNFT_KERNEL_RBF) return v * exp(-0.5 * s / (l * l));
  double r = sqrt(s) / l;
  if (k->nu == 0.5) return v * exp(-r);
  if (k->nu == 1.5) {
    double a = sqrt(3.0) * r;
    return v * (1.0 + a) * exp(-a);
  }
  double a = sqrt(5.0) * r;
  return v * (1.0 + a + a * a / 3.0) * exp(-a);
}

static nnft_freeprop_ws *fp_ws_for(eval_ctx *c, const nnft_kernel *k) {
  for (size_t i = 0; i < c->nfp; i++)
    if (c->fp_leaf[i] == k) return c->fp_ws[i];
  if (c->nfp < MAX_FP && c->fp_ws[c->nfp]) {
    c->fp_leaf[c->nfp] = k;
    return c->fp_ws[c->nfp++];
  }
  return c->fp_ws[0]; /* more distinct leaves than workspaces: share (still correct) */
}

/* NNGP leaf on the tile into tmp (ld TILE). */
static nnft_status nngp_tile(eval_ctx *c, const nnft_kernel *k, double *tmp) {
  nnft_mat out = {c->ni, c->nj, TILE, tmp, 0};
  nnft_mat xv, yv;
  nnft_status s;
  if (c->mode == MODE_RADIAL) {
    nnft_mat rx;
    if ((s = nnft_mat_view(&c->radial_x, 0, 0, c->ni, c->d, &rx))) return s;
    out.rows = c->ni;
    out.cols = 1;
    return nngp_matrix(k, &rx, &c->radial_y, &out, 1);
  }
  if ((s = nnft_mat_view(c->X, c->i0, 0, c->ni, c->d, &xv))) return s;
  if (c->mode == MODE_DIAG) {
    out.cols = 1;
    return nngp_diag(k, &xv, &out, 1);
  }
  if (c->sym_block) return nngp_matrix(k, &xv, NULL, &out, 1);
  if ((s = nnft_mat_view(c->Y, c->j0, 0, c->nj, c->d, &yv))) return s;
  return nngp_matrix(k, &xv, &yv, &out, 1);
}

/* out (ni x nj, ld ldo) op= f · k(tile). Temporaries from level `lvl` on. */
static nnft_status eval(eval_ctx *c, const nnft_kernel *k, double *out, size_t ldo, acc_op op,
                        double f, size_t lvl) {
  size_t ni = c->ni, nj = c->nj;
  nnft_status s;
  switch (k->type) {
  case NNFT_KERNEL_RBF:
  case NNFT_KERNEL_MATERN:
    for (size_t j = 0; j < nj; j++) {
      double *restrict o = out + j * ldo;
      const double *restrict r2 = c->r2 + j * TILE;
      if (op == OP_SET)
        for (size_t i = 0; i < ni; i++) o[i] = f * stationary_value(k, r2[i]);
      else if (op == OP_ADD)
        for (size_t i = 0; i < ni; i++) o[i] += f * stationary_value(k, r2[i]);
      else
        for (size_t i = 0; i < ni; i++) o[i] *= f * stationary_value(k, r2[i]);
    }
    return NNFT_OK;
  case NNFT_KERNEL_POLY: {
    double inv_d = 1.0 / (double)c->d, v = k->variance, off = k->offset;
    int deg = (int)k->degree;
    for (size_t j = 0; j < nj; j++) {
      double *restrict o = out + j * ldo;
      const double *restrict dt = c->dot + j * TILE;
      for (size_t i = 0; i < ni; i++) {
        double b = dt[i] * inv_d + off, p = 1.0;
        for (int e = deg; e; e >>= 1, b *= b) /* exact integer power by squaring */
          if (e & 1) p *= b;
        p *= v * f;
        if (op == OP_SET) o[i] = p;
        else if (op == OP_ADD) o[i] += p;
        else o[i] *= p;
      }
    }
    return NNFT_OK;
  }
  case NNFT_KERNEL_FREEPROP: {
    nnft_freeprop_params p = fp_params(k);
    nnft_freeprop_ws *ws = fp_ws_for(c, k);
    for (size_t j = 0; j < nj; j++) {
      double *o = out + j * ldo;
      const double *r2 = c->r2 + j * TILE;
      for (size_t i = 0; i < ni; i++) {
        double g;
        if ((s = nnft_freeprop_eval(ws, &p, sqrt(r2[i]), &g))) return s;
        if (op == OP_SET) o[i] = f * g;
        else if (op == OP_ADD) o[i] += f * g;
        else o[i] *= f * g;
      }
    }
    return NNFT_OK;
  }
  case NNFT_KERNEL_NNGP:
  case NNFT_KERNEL_NTK:
    if ((s = nngp_tile(c, k, c->tmp[lvl]))) return s;
    apply_tile(out, ldo, c->tmp[lvl], ni, nj, op, f);
    return NNFT_OK;
  case NNFT_KERNEL_SCALE: return eval(c, k->left, out, ldo, op, f * k->scale, lvl);
  case NNFT_KERNEL_SUM:
    if (op == OP_MUL) {
      if ((s = eval(c, k, c->tmp[lvl], TILE, OP_SET, f, lvl + 1))) return s;
      apply_tile(out, ldo, c->tmp[lvl], ni, nj, OP_MUL, 1.0);
      return NNFT_OK;
    }
    if ((s = eval(c, k->left, out, ldo, op, f, lvl))) return s;
    return eval(c, k->right, out, ldo, OP_ADD, f, lvl);
  case NNFT_KERNEL_PROD:
    if (op == OP_ADD) {
      if ((s = eval(c, k, c->tmp[lvl], TILE, OP_SET, f, lvl + 1))) return s;
      apply_tile(out, ldo, c->tmp[lvl], ni, nj, OP_ADD, 1.0);
      return NNFT_OK;
    }
    if ((s = eval(c, k->left, out, ldo, op, f, lvl))) return s;
    return eval(c, k->right, out, ldo, OP_MUL, 1.0, lvl);
  }
  return NNFT_EINTERNAL;
}

/* Row-major copy of rows r0 .. r0+nr of A into buf (nr x d). */
static void pack_rows(const nnft_mat *A, size_t r0, size_t nr, size_t d, double *buf) {
  for (size_t k = 0; k < d; k++) {
    const double *col = A->data + k * A->ld + r0;
    for (size_t i = 0; i < nr; i++) buf[i * d + k] = col[i];
  }
}

/* Fill the tile's squared distances and dot products. */
static void tile_geometry(eval_ctx *c, const leaf_needs *need) {
  size_t d = c->d, ni = c->ni, nj = c->nj;
  if (c->mode == MODE_DIAG) {
    pack_rows(c->X, c->i0, ni, d, c->xb);
    for (size_t i = 0; i < ni; i++) {
      const double *x = c->xb + i * d;
      double s = 0;
      for (size_t k = 0; k < d; k++) s += x[k] * x[k];
      if (need->r2) c->r2[i] = 0.0;
      if (need->dot) c->dot[i] = s;
    }
    return;
  }
  pack_rows(c->X, c->i0, ni, d, c->xb);
  pack_rows(c->Y, c->j0, nj, d, c->yb);
  for (size_t j = 0; j < nj; j++) {
    const double *restrict y = c->yb + j * d;
    for (size_t i = 0; i < ni; i++) {
      const double *restrict x = c->xb + i * d;
      if (need->r2) {
        double s = 0;
        for (size_t k = 0; k < d; k++) {
          double t = x[k] - y[k];
          s += t * t;
        }
        c->r2[i + j * TILE] = s;
      }
      if (need->dot) {
        double s = 0;
        for (size_t k = 0; k < d; k++) s += x[k] * y[k];
        c->dot[i + j * TILE] = s;
      }
    }
  }
}

/* Allocate the context's workspaces for tree k and inputs of dimension d. */
static nnft_status ctx_alloc(eval_ctx *c, const nnft_kernel *k, size_t d, leaf_needs *need) {
  memset(c, 0, sizeof *c);
  memset(need, 0, sizeof *need);
  scan_leaves(k, need);
  c->d = d;
  size_t nt = temps_needed(k, OP_SET), rowbytes, tilebytes = TILE * TILE * sizeof(double);
  nnft_status s;
  if ((s = nnft_size_mul(TILE * sizeof(double), d ? d : 1, &rowbytes))) return s;
  c->xb = nnft_alloc(rowbytes);
  c->yb = nnft_alloc(rowbytes);
  c->r2 = nnft_alloc(tilebytes);
  c->dot = nnft_alloc(tilebytes);
  c->tmp = nnft_alloc((nt + 1) * sizeof(double *));
  if (!c->xb || !c->yb || !c->r2 || !c->dot || !c->tmp) return NNFT_ENOMEM;
  for (size_t i = 0; i <= nt; i++) c->tmp[i] = NULL;
  for (size_t i = 0; i < nt; i++)
    if (!(c->tmp[i] = nnft_alloc(tilebytes))) return NNFT_ENOMEM;
  size_t nfp = need->fp < MAX_FP ? (size_t)need->fp : MAX_FP;
  for (size_t i = 0; i < nfp; i++)
    if ((s = nnft_freeprop_ws_alloc(&c->fp_ws[i]))) return s;
  return NNFT_OK;
}

static void ctx_free(eval_ctx *c) {
  nnft_free(c->xb);
  nnft_free(c->yb);
  nnft_free(c->r2);
  nnft_free(c->dot);
  if (c->tmp)
    for (size_t i = 0; c->tmp[i]; i++) nnft_free(c->tmp[i]);
  nnft_free(c->tmp);
  for (size_t i = 0; i < MAX_FP; i++) nnft_freeprop_ws_free(c->fp_ws[i]);
  nnft_free(c->radial_x.data);
  nnft_free(c->radial_y.data);
}

/* Shapes, finiteness and the tree. */
static nnft_status check_inputs(const nnft_kernel *k, const nnft_mat *X, const nnft_mat *Y) {
  nnft_status s;
  if ((s = nnft_kernel_check(k))) return s;
  if (!X || !X->data) return NNFT_EDIM;
  if (X->cols == 0) return NNFT_EDIM;
  if (Y && (!Y->data || Y->cols != X->cols)) return NNFT_EDIM;
  size_t dim;
  if ((s = nnft_kernel_input_dim(k, &dim))) return s;
  if (dim && dim != X->cols) return NNFT_EDIM;
  if (!nnft_mat_all_finite(X) || (Y && !nnft_mat_all_finite(Y))) return NNFT_ENONFINITE;
  return NNFT_OK;
}

/* Copy the strictly lower triangle of the nb x nb block at out(r0, r0) to its upper one. */
static void mirror_diag_block(nnft_mat *out, size_t r0, size_t nb) {
  for (size_t j = 0; j < nb; j++)
    for (size_t i = j + 1; i < nb; i++) NNFT_AT(out, r0 + j, r0 + i) = NNFT_AT(out, r0 + i, r0 + j);
}

/* 1 if an NNGP/NTK leaf has a user (Lua) activation: its callback must run on one thread. */
static int has_custom(const nnft_kernel *k) {
  if (!k) return 0;
  if (k->type == NNFT_KERNEL_NNGP || k->type == NNFT_KERNEL_NTK) {
    for (size_t l = 0; l < k->arch.nlayers && l < NNFT_MAX_LAYERS; l++)
      if (k->arch.layer[l].act == NNFT_ACT_CUSTOM) return 1;
    return 0;
  }
  if (k->type == NNFT_KERNEL_SCALE) return has_custom(k->left);
  if (is_binary(k)) return has_custom(k->left) || has_custom(k->right);
  return 0;
}

/* One tile of the matrix (and its mirror on the symmetric path). */
static nnft_status matrix_tile(eval_ctx *c, const leaf_needs *need, const nnft_kernel *k,
                               size_t i0, size_t j0, int sym, nnft_mat *out) {
  size_t n = out->rows, m = out->cols;
  c->i0 = i0;
  c->j0 = j0;
  c->ni = n - i0 < TILE ? n - i0 : TILE;
  c->nj = m - j0 < TILE ? m - j0 : TILE;
  c->sym_block = sym && i0 == j0;
  tile_geometry(c, need);
  nnft_status s = eval(c, k, &NNFT_AT(out, i0, j0), out->ld, OP_SET, 1.0, 0);
  if (s || !sym) return s;
  if (i0 == j0) {
    mirror_diag_block(out, i0, c->ni);
  } else {
    for (size_t j = 0; j < c->nj; j++)
      for (size_t i = 0; i < c->ni; i++)
        NNFT_AT(out, j0 + j, i0 + i) = NNFT_AT(out, i0 + i, j0 + j);
  }
  return NNFT_OK;
}

nnft_status nnft_kernel_matrix(const nnft_kernel *k, const nnft_mat *X, const nnft_mat *Y,
                               nnft_mat *out) {
  nnft_status s;
  if ((s = check_inputs(k, X, Y))) return s;
  size_t n = X->rows, m = Y ? Y->rows : n;
  if (!out || !out->data || out->rows != n || out->cols != m) return NNFT_EDIM;
  if (nnft_mat_overlap(out, X) || (Y && nnft_mat_overlap(out, Y))) return NNFT_EDOM;
  if (n == 0 || m == 0) return NNFT_OK;
  if (k->type == NNFT_KERNEL_NNGP || k->type == NNFT_KERNEL_NTK)
    return nngp_matrix(k, X, Y, out, 0);

  size_t nbi = (n + TILE - 1) / TILE, nbj = (m + TILE - 1) / TILE;
  long long ntiles = (long long)(nbi * nbj);
  int sym = Y == NULL, nt = 1;
#ifdef _OPENMP
  if (!has_custom(k) && ntiles >= 4) nt = omp_get_max_threads(); /* a team for < 4 tiles costs more than it saves */
  if ((long long)nt > ntiles) nt = (int)ntiles;
  if (nt < 1) nt = 1;
#endif
  /* one context per thread, allocated before the parallel region */
  eval_ctx *ctx = nnft_alloc((size_t)nt * sizeof *ctx);
  if (!ctx) return NNFT_ENOMEM;
  memset(ctx, 0, (size_t)nt * sizeof *ctx);
  leaf_needs need;
  for (int t = 0; t < nt; t++) {
    if ((s = ctx_alloc(&ctx[t], k, X->cols, &need))) goto done;
    ctx[t].mode = MODE_TILE;
    ctx[t].X = X;
    ctx[t].Y = Y ? Y : X;
  }
  int stop = 0;
  nnft_status first = NNFT_OK;
  long long first_tile = ntiles;
  /* every tile is computed by the same code whatever thread runs it: bit-identical results for
   * any thread count; on failure the status of the lowest failing tile index is returned */
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1) if (nt > 1)
#endif
  for (long long t = 0; t < ntiles; t++) {
    size_t bi = (size_t)t % nbi, bj = (size_t)t / nbi;
    if (sym && bj > bi) continue; /* symmetric path: tiles on and below the diagonal */
    int tid = 0, halt;
#ifdef _OPENMP
    tid = omp_get_thread_num();
#pragma omp atomic read
#endif
    halt = stop;
    if (halt) continue;
    nnft_status st = nnft_interrupted() ? NNFT_EINTR : NNFT_OK;
    if (!st) st = matrix_tile(&ctx[tid], &need, k, bi * TILE, bj * TILE, sym, out);
    if (st) {
#ifdef _OPENMP
#pragma omp critical(nnft_kernel_err)
#endif
      {
        if (t < first_tile) {
          first_tile = t;
          first = st;
        }
      }
#ifdef _OPENMP
#pragma omp atomic write
#endif
      stop = 1;
    }
  }
  s = first;
done:
  for (int t = 0; t < nt; t++) ctx_free(&ctx[t]);
  nnft_free(ctx);
  return s;
}

nnft_status nnft_kernel_diag(const nnft_kernel *k, const nnft_mat *X, nnft_mat *out) {
  nnft_status s;
  if ((s = check_inputs(k, X, NULL))) return s;
  size_t n = X->rows;
  if (!out || !out->data || out->rows != n || out->cols != 1) return NNFT_EDIM;
  if (nnft_mat_overlap(out, X)) return NNFT_EDOM;
  if (n == 0) return NNFT_OK;
  if (k->type == NNFT_KERNEL_NNGP || k->type == NNFT_KERNEL_NTK)
    return nngp_diag(k, X, out, 0);
  eval_ctx c;
  leaf_needs need;
  if ((s = ctx_alloc(&c, k, X->cols, &need))) goto done;
  c.mode = MODE_DIAG;
  c.X = c.Y = X;
  for (size_t i0 = 0; i0 < n; i0 += TILE) {
    if (nnft_interrupted()) {
      s = NNFT_EINTR;
      goto done;
    }
    c.i0 = c.j0 = i0;
    c.ni = n - i0 < TILE ? n - i0 : TILE;
    c.nj = 1;
    tile_geometry(&c, &need);
    if ((s = eval(&c, k, out->data + i0, out->ld, OP_SET, 1.0, 0))) goto done;
  }
done:
  ctx_free(&c);
  return s;
}

struct nnft_kernel_radial_ws {
  const nnft_kernel *k;
  eval_ctx c;
  leaf_needs need;
};

nnft_status nnft_kernel_radial_ws_alloc(const nnft_kernel *k, size_t d,
                                        nnft_kernel_radial_ws **out) {
  nnft_status s;
  *out = NULL;
  if ((s = nnft_kernel_check(k))) return s;
  if (!nnft_kernel_is_stationary(k)) return NNFT_EDOM;
  size_t dim;
  if ((s = nnft_kernel_input_dim(k, &dim))) return s;
  if (d == 0 || (dim && dim != d)) return NNFT_EDIM;
  nnft_kernel_radial_ws *w = nnft_alloc(sizeof *w);
  if (!w) return NNFT_ENOMEM;
  w->k = k;
  if ((s = ctx_alloc(&w->c, k, d, &w->need))) goto fail;
  w->c.mode = MODE_RADIAL;
  if (w->need.nngp) {
    if ((s = nnft_mat_alloc(TILE, d, &w->c.radial_x))) goto fail;
    if ((s = nnft_mat_alloc(1, d, &w->c.radial_y))) goto fail;
  }
  *out = w;
  return NNFT_OK;
fail:
  ctx_free(&w->c);
  nnft_free(w);
  return s;
}

void nnft_kernel_radial_ws_free(nnft_kernel_radial_ws *w) {
  if (!w) return;
  ctx_free(&w->c);
  nnft_free(w);
}

nnft_status nnft_kernel_radial_eval(nnft_kernel_radial_ws *w, const double *r, size_t n,
                                    double *out) {
  eval_ctx *c = &w->c;
  nnft_status s;
  for (size_t i = 0; i < n; i++)
    if (!isfinite(r[i])) return NNFT_ENONFINITE;
    else if (r[i] < 0) return NNFT_EDOM;
  for (size_t i0 = 0; i0 < n; i0 += TILE) {
    if (n > TILE && nnft_interrupted()) return NNFT_EINTR;
    double buf[TILE];
    c->i0 = c->j0 = 0;
    c->ni = n - i0 < TILE ? n - i0 : TILE;
    c->nj = 1;
    for (size_t i = 0; i < c->ni; i++) {
      c->r2[i] = r[i0 + i] * r[i0 + i];
      if (w->need.nngp) NNFT_AT(&c->radial_x, i, 0) = r[i0 + i];
    }
    if ((s = eval(c, w->k, buf, TILE, OP_SET, 1.0, 0))) return s;
    memcpy(out + i0, buf, c->ni * sizeof(double));
  }
  return NNFT_OK;
}

nnft_status nnft_kernel_radial(const nnft_kernel *k, size_t d, const double *r, size_t n,
                               double *out) {
  nnft_kernel_radial_ws *w;
  nnft_status s = nnft_kernel_radial_ws_alloc(k, d, &w);
  if (s) return s;
  s = nnft_kernel_radial_eval(w, r, n, out);
  nnft_kernel_radial_ws_free(w);
  return s;
}

double nnft_kernel_length_scale(const nnft_kernel *k) {
  if (!k || !nnft_kernel_is_stationary(k)) return 0.0;
  switch (k->type) {
  case NNFT_KERNEL_RBF:
  case NNFT_KERNEL_MATERN: return k->lengthscale;
  case NNFT_KERNEL_FREEPROP: {
    double a = 1.0 / k->radius, b = k->mass > 0 ? 1.0 / k->mass : 0.0;
    return a > b ? a : b;
  }
  case NNFT_KERNEL_NNGP: {
    const nnft_arch *a = &k->arch;
    if (a->is_cosnet && a->freq == NNFT_FREQ_BALL) {
      double l = 1.0 / a->radius;
      if (a->amplitude && a->mass > 0 && 1.0 / a->mass > l) l = 1.0 / a->mass;
      return l;
    }
    double sw = a->layer[0].sigma_w;
    return sw > 0 ? sqrt((double)a->d_in) / sw : 1.0; /* σ_w = 0: a constant kernel */
  }
  case NNFT_KERNEL_SCALE: return nnft_kernel_length_scale(k->left);
  case NNFT_KERNEL_SUM:
  case NNFT_KERNEL_PROD: {
    double a = nnft_kernel_length_scale(k->left), b = nnft_kernel_length_scale(k->right);
    return a > b ? a : b;
  }
  default: return 0.0;
  }
}

/* The largest nnft_nngp workspace over the tree's NNGP/NTK leaves for nb x mb evaluations. */
static nnft_status nngp_bytes(const nnft_kernel *k, size_t nb, size_t mb, size_t *bytes) {
  nnft_status s;
  size_t a = 0, b = 0;
  switch (k->type) {
  case NNFT_KERNEL_NNGP:
  case NNFT_KERNEL_NTK: {
    nnft_nngp_opts o = nnft_nngp_defaults();
    o.ntk = k->type == NNFT_KERNEL_NTK;
    o.quad_order = k->quad_order;
    return nnft_nngp_workspace_bytes(&k->arch, &o, nb, mb, bytes);
  }
  case NNFT_KERNEL_SCALE: return nngp_bytes(k->left, nb, mb, bytes);
  case NNFT_KERNEL_SUM:
  case NNFT_KERNEL_PROD:
    if ((s = nngp_bytes(k->left, nb, mb, &a))) return s;
    if ((s = nngp_bytes(k->right, nb, mb, &b))) return s;
    *bytes = a > b ? a : b;
    return NNFT_OK;
  default: *bytes = 0; return NNFT_OK;
  }
}

nnft_status nnft_kernel_bytes(const nnft_kernel *k, size_t n, size_t m, size_t *bytes) {
  nnft_status s;
  if ((s = nnft_kernel_check(k))) return s;
  size_t total, ws;
  if ((s = nnft_mat_bytes(n, m, &total))) return s;
  size_t tiles = temps_needed(k, OP_SET) + 2, nt = 1;
#ifdef _OPENMP
  nt = (size_t)(omp_get_max_threads() > 0 ? omp_get_max_threads() : 1);
#endif
  ws = nt * tiles * TILE * TILE * sizeof(double);
  leaf_needs need = {0, 0, 0, 0};
  scan_leaves(k, &need);
  if (need.nngp) {
    /* nnft_nngp's own workspace: whole matrices for a lone leaf, tiles inside a tree */
    size_t nb = k->type == NNFT_KERNEL_NNGP || k->type == NNFT_KERNEL_NTK ? n : TILE;
    size_t mb = k->type == NNFT_KERNEL_NNGP || k->type == NNFT_KERNEL_NTK ? m : TILE;
    size_t w = 0;
    if ((s = nngp_bytes(k, nb, mb, &w))) return s;
    if ((s = nnft_size_add(ws, w, &ws))) return s;
  }
  return nnft_size_add(total, ws, bytes);
}
