/* nnft_vertex: vertex integrals of the [HMS] couplings (physics.md §4.1). See nnft_vertex.h. */
#include "nnft_vertex.h"

#include <float.h>
#include <math.h>
#include <string.h>

#include "nnft_alloc.h"
#include "nnft_corr.h"

/* ---------------------------------------------------------------------------------------------
 * The kernel */

nnft_status nnft_vertex_kernel_init(const nnft_arch *a, nnft_vertex_kernel *k, const char **why) {
  const char *w = NULL;
  if (why) *why = NULL;
  if (!a || !k) return NNFT_EDOM;
  memset(k, 0, sizeof *k);
  if (nnft_arch_check(a) != NNFT_OK) {
    w = "invalid architecture";
    goto bad;
  }
  if (a->nlayers != 2) {
    w = "vertex integrals need a network with exactly one hidden layer (physics.md §4.1)";
    goto bad;
  }
  if (a->d_in < 1 || a->d_in > NNFT_VERTEX_MAX_D) {
    w = "vertex integrals are implemented for input dimension d = 1, 2, 3";
    goto bad;
  }
  for (size_t l = 0; l < 2; l++)
    if (a->layer[l].mean_w != 0 || a->layer[l].mean_b != 0) {
      w = "vertex integrals need zero-mean weights and biases";
      goto bad;
    }
  const nnft_layer *l0 = &a->layer[0], *l1 = &a->layer[1];
  k->d = a->d_in;
  k->sw0 = l0->sigma_w;
  k->sb0 = l0->has_bias ? l0->sigma_b : 0.0;
  k->sb0_norm = l0->sigma_b;
  k->sb1sq = l1->has_bias ? l1->sigma_b * l1->sigma_b : 0.0;
  double s1sq = l1->sigma_w * l1->sigma_w;
  if (a->is_cosnet) {
    if (a->freq != NNFT_FREQ_GAUSSIAN || a->amplitude) {
      w = "vertex integrals support the plain cos-net only (Gaussian frequencies, no amplitude)";
      goto bad;
    }
    k->kind = NNFT_VK_COSNET;
    k->amp = 0.5 * s1sq;
    k->localised = 1;
    return NNFT_OK;
  }
  switch (l0->act) {
  case NNFT_ACT_RELU:
    k->kind = NNFT_VK_RELU;
    k->amp = s1sq;
    k->kinked = k->sb0 == 0.0;
    break;
  case NNFT_ACT_ERF:
    k->kind = NNFT_VK_ERF;
    k->amp = 2.0 * s1sq / M_PI;
    break;
  case NNFT_ACT_EXP:
    k->kind = NNFT_VK_EXP;
    k->amp = s1sq;
    break;
  case NNFT_ACT_GAUSSNET:
    k->kind = NNFT_VK_GAUSSNET;
    k->amp = l0->has_bias ? s1sq : s1sq * exp(-2.0 * k->sb0_norm * k->sb0_norm);
    k->localised = 1;
    break;
  default:
    w = "vertex integrals are implemented for the relu, erf, exp and gauss-net activations and "
        "the plain cos-net (physics.md §2.3)";
    goto bad;
  }
  if (k->localised && k->sw0 == 0.0) {
    w = "a localised kernel needs sigma_w > 0";
    goto bad;
  }
  return NNFT_OK;
bad:
  if (why) *why = w;
  return NNFT_EDOM;
}

/* k(x,y) = σ_b0² + σ_w0² x·y/d */
static inline double kdot(const nnft_vertex_kernel *k, const double *x, const double *y) {
  double s = 0;
  for (size_t j = 0; j < k->d; j++) s += x[j] * y[j];
  return k->sb0 * k->sb0 + k->sw0 * k->sw0 * s / (double)k->d;
}

/* K_w(x, y) given q1 = k(x,x), q2 = k(y,y). For relu, k(x,x)k(y,y) − k(x,y)² is formed without
 * cancellation: σ_b0²σ_w0²|x − y|²/d + (σ_w0²/d)² Σ_{i<j} (x_i y_j − x_j y_i)² (Lagrange's
 * identity), so that collinear inputs (always, at d = 1) give exactly s = 0 and a mixed-sign
 * pair without bias exactly K_w = 0. */
static inline double kw_xy(const nnft_vertex_kernel *k, const double *x, const double *y,
                           double q1, double q2) {
  const size_t d = k->d;
  double dot = 0, r2 = 0;
  for (size_t j = 0; j < d; j++) {
    dot += x[j] * y[j];
    r2 += (x[j] - y[j]) * (x[j] - y[j]);
  }
  double sw2 = k->sw0 * k->sw0 / (double)d;
  double c = k->sb0 * k->sb0 + sw2 * dot;
  switch (k->kind) {
  case NNFT_VK_RELU: {
    double w = 0;
    for (size_t i = 0; i < d; i++)
      for (size_t j = i + 1; j < d; j++) {
        double m = x[i] * y[j] - x[j] * y[i];
        w += m * m;
      }
    double s = sqrt(k->sb0 * k->sb0 * sw2 * r2 + sw2 * sw2 * w);
    double th = atan2(s, c);
    return k->amp * (s + (M_PI - th) * c) / (2.0 * M_PI);
  }
  case NNFT_VK_ERF:
    return k->amp * asin(2.0 * c / sqrt((1.0 + 2.0 * q1) * (1.0 + 2.0 * q2)));
  case NNFT_VK_EXP:
    return k->amp * exp(0.5 * (q1 + q2 + 2.0 * c));
  case NNFT_VK_GAUSSNET:
  case NNFT_VK_COSNET:
    return k->amp * exp(-k->sw0 * k->sw0 * r2 / (2.0 * (double)d));
  }
  return NAN;
}

double nnft_vertex_kw(const nnft_vertex_kernel *k, const double *x, const double *y) {
  return kw_xy(k, x, y, kdot(k, x, x), kdot(k, y, y));
}

nnft_vertex_opts nnft_vertex_defaults(void) {
  nnft_vertex_opts o = {1e-9, 200000};
  return o;
}

nnft_status nnft_vertex_check_cutoffs(const nnft_vertex_kernel *k, const double *Lambda, size_t m,
                                      const char **why) {
  if (why) *why = NULL;
  if (m == 0 || !Lambda) {
    if (why) *why = "no cutoff given";
    return NNFT_EDOM;
  }
  for (size_t c = 0; c < m; c++) {
    double L = Lambda[c];
    if (isnan(L) || L <= 0) {
      if (why) *why = "every cutoff Lambda must be > 0 (the box is [-Lambda, Lambda]^d)";
      return NNFT_EDOM;
    }
    if (c > 0 && !(L > Lambda[c - 1])) {
      if (why) *why = "cutoffs must be strictly increasing";
      return NNFT_EDOM;
    }
    if (isinf(L)) {
      if (c != m - 1) {
        if (why) *why = "only the last cutoff may be infinite";
        return NNFT_EDOM;
      }
      if (!k->localised) {
        if (why)
          *why = "Lambda = inf: the vertex integral diverges for this kernel (K_w does not decay "
                 "at large |x|); only gauss-net and cos-net kernels converge on the whole space";
        return NNFT_EDOM;
      }
    }
  }
  return NNFT_OK;
}

/* ---------------------------------------------------------------------------------------------
 * The cubature engine: a vector integrand over boxes in a mapped coordinate t. */

typedef struct {
  double lo[NNFT_VERTEX_MAX_D], hi[NNFT_VERTEX_MAX_D]; /* t-space bounds */
  double anchor[NNFT_VERTEX_MAX_D];
  signed char map[NNFT_VERTEX_MAX_D]; /* 0: x = t; +1: x = anchor + t/(1−t); −1: anchor − t/(1−t) */
} vbox;

typedef struct {
  vbox box;
  double key;
} piece; /* its val, err, abs vectors live in the pool at the same slot */

#define GL_MAX 8

typedef struct {
  const nnft_vertex_kernel *k;
  size_t d, npts;
  double *P;  /* npts x d, row-major */
  double *Pq; /* k(x_i, x_i) */
  size_t n4;
  const size_t *idx4;
  int x2;
  size_t n2;
  size_t *idx2; /* 2 per pair */
  size_t nout;
  int p;                  /* nodes per dimension */
  double gx[GL_MAX], gw[GL_MAX]; /* Gauss–Legendre on [0, 1] */
  size_t nodes;           /* p^d */
  double *kv;             /* nodes x npts (node-major) */
  double *wt, *r2;        /* nodes */
  double *tmp;            /* nout: scratch for one rule */
  double *tmpa;           /* nout */
  /* pool */
  size_t cap, max_cap;
  piece *pc;
  double *val, *err, *abv; /* cap x nout */
  size_t *heap;             /* slot indices, max-heap on key */
  size_t nheap;
  size_t *freel;
  size_t nfree;
  double epsrel;
} engine;

/* Gauss–Legendre nodes and weights on [0, 1] by Newton on the Legendre recurrence. */
static void gauss_legendre01(int n, double *x, double *w) {
  for (int i = 0; i < n; i++) {
    double z = cos(M_PI * (i + 0.75) / (n + 0.5)), pp = 1;
    for (int it = 0; it < 100; it++) {
      double p1 = 1, p2 = 0;
      for (int j = 1; j <= n; j++) {
        double p3 = p2;
        p2 = p1;
        p1 = ((2.0 * j - 1) * z * p2 - (j - 1.0) * p3) / j;
      }
      pp = n * (z * p1 - p2) / (z * z - 1);
      double dz = p1 / pp;
      z -= dz;
      if (fabs(dz) < 1e-16) break;
    }
    {
      double p1 = 1, p2 = 0;
      for (int j = 1; j <= n; j++) {
        double p3 = p2;
        p2 = p1;
        p1 = ((2.0 * j - 1) * z * p2 - (j - 1.0) * p3) / j;
      }
      pp = n * (z * p1 - p2) / (z * z - 1);
    }
    x[i] = 0.5 * (1 - z);
    w[i] = 1.0 / ((1 - z * z) * pp * pp); /* 2/((1−z²)p'²) on [−1,1], halved */
  }
}

/* One tensor Gauss–Legendre rule on box b: out[o] = ∫ integrand_o, outa[o] = ∫ |integrand_o|. */
static void eval_rule(engine *e, const vbox *b, double *out, double *outa) {
  const size_t d = e->d, np = e->npts;
  size_t id[NNFT_VERTEX_MAX_D] = {0, 0, 0};
  double x[NNFT_VERTEX_MAX_D];
  for (size_t q = 0; q < e->nodes; q++) {
    double w = 1, r2 = 0;
    for (size_t j = 0; j < d; j++) {
      double h = b->hi[j] - b->lo[j];
      double t = b->lo[j] + h * e->gx[id[j]];
      double wj = h * e->gw[id[j]];
      if (b->map[j]) {
        double u = 1.0 / (1.0 - t);
        double s = t * u;
        x[j] = b->map[j] > 0 ? b->anchor[j] + s : b->anchor[j] - s;
        wj *= u * u;
      } else {
        x[j] = t;
      }
      w *= wj;
      r2 += x[j] * x[j];
    }
    e->wt[q] = w;
    e->r2[q] = r2;
    double qx = kdot(e->k, x, x);
    double *kv = e->kv + q * np;
    for (size_t i = 0; i < np; i++) kv[i] = kw_xy(e->k, e->P + i * d, x, e->Pq[i], qx);
    for (size_t j = 0; j < d; j++) { /* next tensor index */
      if (++id[j] < (size_t)e->p) break;
      id[j] = 0;
    }
  }
  for (size_t t = 0; t < e->n4; t++) {
    const size_t *ix = e->idx4 + 4 * t;
    double s = 0, sa = 0, s2 = 0, s2a = 0;
    for (size_t q = 0; q < e->nodes; q++) {
      const double *kv = e->kv + q * np;
      double f = kv[ix[0]] * kv[ix[1]] * kv[ix[2]] * kv[ix[3]] * e->wt[q];
      s += f;
      sa += fabs(f);
      if (e->x2) {
        s2 += f * e->r2[q];
        s2a += fabs(f) * e->r2[q];
      }
    }
    out[t] = s;
    outa[t] = sa;
    if (e->x2) {
      out[e->n4 + t] = s2;
      outa[e->n4 + t] = s2a;
    }
  }
  size_t off = e->n4 * (e->x2 ? 2 : 1);
  for (size_t t = 0; t < e->n2; t++) {
    size_t i0 = e->idx2[2 * t], i1 = e->idx2[2 * t + 1];
    double s = 0, sa = 0;
    for (size_t q = 0; q < e->nodes; q++) {
      const double *kv = e->kv + q * np;
      double f = kv[i0] * kv[i1] * e->wt[q];
      s += f;
      sa += fabs(f);
    }
    out[off + t] = s;
    outa[off + t] = sa;
  }
}

/* Evaluate a piece: val = Σ over its 2^d halves, err = |rule(box) − val|, abs likewise. */
static void eval_piece(engine *e, const vbox *b, double *val, double *err, double *abv) {
  const size_t d = e->d, no = e->nout;
  eval_rule(e, b, e->tmp, e->tmpa);
  for (size_t o = 0; o < no; o++) {
    err[o] = e->tmp[o];
    val[o] = 0;
    abv[o] = 0;
  }
  for (size_t c = 0; c < ((size_t)1 << d); c++) {
    vbox h = *b;
    for (size_t j = 0; j < d; j++) {
      double mid = 0.5 * (b->lo[j] + b->hi[j]);
      if (c >> j & 1)
        h.lo[j] = mid;
      else
        h.hi[j] = mid;
    }
    eval_rule(e, &h, e->tmp, e->tmpa);
    for (size_t o = 0; o < no; o++) {
      val[o] += e->tmp[o];
      abv[o] += e->tmpa[o];
    }
  }
  for (size_t o = 0; o < no; o++) err[o] = fabs(err[o] - val[o]);
}

static double piece_key(const engine *e, size_t slot, const double *tol) {
  const double *er = e->err + slot * e->nout;
  double key = 0;
  for (size_t o = 0; o < e->nout; o++) {
    if (tol[o] > 0) {
      double r = er[o] / tol[o];
      if (r > key) key = r;
    } else if (er[o] > 0) {
      key = INFINITY;
    }
  }
  return key;
}

static void heap_up(engine *e, size_t i) {
  while (i > 0) {
    size_t p = (i - 1) / 2;
    if (e->pc[e->heap[p]].key >= e->pc[e->heap[i]].key) break;
    size_t t = e->heap[p];
    e->heap[p] = e->heap[i];
    e->heap[i] = t;
    i = p;
  }
}

static void heap_down(engine *e, size_t i) {
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    if (l < e->nheap && e->pc[e->heap[l]].key > e->pc[e->heap[m]].key) m = l;
    if (r < e->nheap && e->pc[e->heap[r]].key > e->pc[e->heap[m]].key) m = r;
    if (m == i) break;
    size_t t = e->heap[m];
    e->heap[m] = e->heap[i];
    e->heap[i] = t;
    i = m;
  }
}

/* Tolerances per output: epsrel · max(|base + total|, 1e-6 A) with A = abs_base + abs_total
 * (∫ |integrand|), and never below 64 ε A (rounding). */
static void tolerances(const engine *e, const double *base, const double *abase, const double *tv,
                       const double *ta, double *tol) {
  for (size_t o = 0; o < e->nout; o++) {
    double v = fabs(base[o] + tv[o]), a = 1e-6 * (abase[o] + ta[o]);
    double t = e->epsrel * (v > a ? v : a), fl = 64.0 * DBL_EPSILON * (abase[o] + ta[o]);
    tol[o] = t > fl ? t : fl;
  }
}

static void totals(const engine *e, double *tv, double *te, double *ta) {
  const size_t no = e->nout;
  for (size_t o = 0; o < no; o++) tv[o] = te[o] = ta[o] = 0;
  for (size_t h = 0; h < e->nheap; h++) {
    size_t s = e->heap[h];
    for (size_t o = 0; o < no; o++) {
      tv[o] += e->val[s * no + o];
      te[o] += e->err[s * no + o];
      ta[o] += e->abv[s * no + o];
    }
  }
}

/* A slot for a new piece (the caller checked capacity). */
static size_t take_slot(engine *e) { return e->freel[--e->nfree]; }

static void *grow_block(void *old, size_t oldn, size_t newn, size_t size) {
  size_t bytes;
  if (nnft_size_mul(newn, size, &bytes)) return NULL;
  void *p = nnft_alloc(bytes);
  if (!p) return NULL;
  if (old) memcpy(p, old, oldn * size);
  return p;
}

/* Make room for at least `need` free slots: double the pool (up to max_cap). NNFT_ENOCONV when
 * max_cap is reached, NNFT_ENOMEM. */
static nnft_status ensure_free(engine *e, size_t need) {
  if (e->nfree >= need) return NNFT_OK;
  if (e->cap >= e->max_cap) return NNFT_ENOCONV;
  size_t nc = e->cap * 2;
  if (nc > e->max_cap) nc = e->max_cap;
  if (nc - e->cap + e->nfree < need) return NNFT_ENOCONV;
  size_t no = e->nout, oc = e->cap;
  piece *pc = grow_block(e->pc, oc, nc, sizeof(piece));
  double *val = grow_block(e->val, oc * no, nc * no, sizeof(double));
  double *err = grow_block(e->err, oc * no, nc * no, sizeof(double));
  double *abv = grow_block(e->abv, oc * no, nc * no, sizeof(double));
  size_t *heap = grow_block(e->heap, e->nheap, nc, sizeof(size_t));
  size_t *freel = grow_block(e->freel, e->nfree, nc, sizeof(size_t));
  if (!pc || !val || !err || !abv || !heap || !freel) {
    nnft_free(pc);
    nnft_free(val);
    nnft_free(err);
    nnft_free(abv);
    nnft_free(heap);
    nnft_free(freel);
    return NNFT_ENOMEM;
  }
  nnft_free(e->pc);
  nnft_free(e->val);
  nnft_free(e->err);
  nnft_free(e->abv);
  nnft_free(e->heap);
  nnft_free(e->freel);
  e->pc = pc;
  e->val = val;
  e->err = err;
  e->abv = abv;
  e->heap = heap;
  e->freel = freel;
  for (size_t sl = nc; sl-- > oc;) e->freel[e->nfree++] = sl;
  e->cap = nc;
  return NNFT_OK;
}

/* Intervals of one coordinate: [lo, hi] (either end may be infinite) split at the breakpoints
 * strictly inside. Returns the count written to ivl (pairs). */
static size_t split_interval(double lo, double hi, const double *bp, size_t nbp, double *ivl) {
  size_t n = 0;
  double cur = lo;
  for (size_t i = 0; i < nbp; i++) {
    if (bp[i] > lo && bp[i] < hi && bp[i] > cur) {
      ivl[2 * n] = cur;
      ivl[2 * n + 1] = bp[i];
      n++;
      cur = bp[i];
    }
  }
  ivl[2 * n] = cur;
  ivl[2 * n + 1] = hi;
  return n + 1;
}

static void set_dim(vbox *b, size_t j, double lo, double hi) {
  if (isinf(hi)) {
    b->map[j] = 1;
    b->anchor[j] = lo;
    b->lo[j] = 0;
    b->hi[j] = 1;
  } else if (isinf(lo)) {
    b->map[j] = -1;
    b->anchor[j] = hi;
    b->lo[j] = 0;
    b->hi[j] = 1;
  } else {
    b->map[j] = 0;
    b->anchor[j] = 0;
    b->lo[j] = lo;
    b->hi[j] = hi;
  }
}

#define MAX_BP 160

/* Integrate the region {x : lo_j <= x_j <= hi_j for the slab} — here, one shell: the box
 * [−b,b]^d minus [−a,a]^d (a = 0: the whole box) — adding into acc (nout) and acc_err, acc_abs.
 * base/abase: the cumulative values so far (for the relative tolerance). */
static nnft_status integrate_shell(engine *e, double a, double b, const double *bp, size_t nbp,
                                   double *acc, double *acc_err, double *acc_abs, double *work) {
  const size_t d = e->d, no = e->nout;
  double *tv = work, *te = work + no, *ta = work + 2 * no, *tol = work + 3 * no;
  double ivl[NNFT_VERTEX_MAX_D][2][2 * (MAX_BP + 2)];
  size_t niv[NNFT_VERTEX_MAX_D][2];
  e->nheap = 0;
  e->nfree = e->cap;
  for (size_t s = 0; s < e->cap; s++) e->freel[s] = e->cap - 1 - s;
  nnft_status st = NNFT_OK;
  int grown_out = 0;
  /* slabs: j = coordinate outside [−a, a]; a = 0 means the single box */
  size_t nslab = a > 0 ? d : 1;
  for (size_t j = 0; j < nslab && st == NNFT_OK; j++) {
    for (int side = 0; side < (a > 0 ? 2 : 1); side++) {
      /* per-dimension interval lists */
      size_t cnt[NNFT_VERTEX_MAX_D];
      for (size_t i = 0; i < d; i++) {
        double lo, hi;
        if (a > 0 && i < j) {
          lo = -a;
          hi = a;
        } else if (a > 0 && i == j) {
          lo = side ? a : -b;
          hi = side ? b : -a;
        } else {
          lo = -b;
          hi = b;
        }
        cnt[i] = split_interval(lo, hi, bp + i * MAX_BP, nbp, ivl[i][0]);
        niv[i][0] = cnt[i];
      }
      size_t total = 1;
      for (size_t i = 0; i < d; i++) total *= cnt[i];
      for (size_t c = 0; c < total; c++) {
        if ((st = ensure_free(e, 1))) return st;
        vbox bx;
        memset(&bx, 0, sizeof bx);
        size_t r = c;
        for (size_t i = 0; i < d; i++) {
          size_t k = r % cnt[i];
          r /= cnt[i];
          set_dim(&bx, i, ivl[i][0][2 * k], ivl[i][0][2 * k + 1]);
        }
        size_t s = take_slot(e);
        e->pc[s].box = bx;
        eval_piece(e, &bx, e->val + s * no, e->err + s * no, e->abv + s * no);
        e->heap[e->nheap++] = s;
      }
    }
  }
  (void)niv;
  (void)grown_out;
  totals(e, tv, te, ta);
  tolerances(e, acc, acc_abs, tv, ta, tol);
  for (size_t h = 0; h < e->nheap; h++) e->pc[e->heap[h]].key = piece_key(e, e->heap[h], tol);
  for (size_t h = e->nheap; h-- > 0;) heap_down(e, h);
  size_t nchild = (size_t)1 << d;
  for (size_t it = 0;; it++) {
    int done = 1;
    for (size_t o = 0; o < no; o++)
      if (te[o] > tol[o]) {
        done = 0;
        break;
      }
    if (done) break;
    if ((it & 63) == 0 && nnft_interrupted()) {
      st = NNFT_EINTR;
      break;
    }
    if ((st = ensure_free(e, nchild - 1))) break;
    size_t s = e->heap[0];
    e->heap[0] = e->heap[--e->nheap];
    heap_down(e, 0);
    vbox pb = e->pc[s].box;
    for (size_t o = 0; o < no; o++) {
      tv[o] -= e->val[s * no + o];
      te[o] -= e->err[s * no + o];
      ta[o] -= e->abv[s * no + o];
    }
    e->freel[e->nfree++] = s;
    for (size_t c = 0; c < nchild; c++) {
      vbox h = pb;
      for (size_t j = 0; j < d; j++) {
        double mid = 0.5 * (pb.lo[j] + pb.hi[j]);
        if (c >> j & 1)
          h.lo[j] = mid;
        else
          h.hi[j] = mid;
      }
      size_t cs = take_slot(e);
      e->pc[cs].box = h;
      eval_piece(e, &h, e->val + cs * no, e->err + cs * no, e->abv + cs * no);
      for (size_t o = 0; o < no; o++) {
        tv[o] += e->val[cs * no + o];
        te[o] += e->err[cs * no + o];
        ta[o] += e->abv[cs * no + o];
      }
      e->pc[cs].key = piece_key(e, cs, tol);
      e->heap[e->nheap++] = cs;
      heap_up(e, e->nheap - 1);
    }
    if ((it & 255) == 255) totals(e, tv, te, ta);
    for (size_t o = 0; o < no; o++) if (te[o] < 0) te[o] = 0;
    tolerances(e, acc, acc_abs, tv, ta, tol);
  }
  totals(e, tv, te, ta);
  for (size_t o = 0; o < no; o++) {
    acc[o] += tv[o];
    acc_err[o] += te[o];
    acc_abs[o] += ta[o];
    if (!isfinite(acc[o])) return NNFT_ENONFINITE;
  }
  return st;
}

/* Breakpoints per coordinate (MAX_BP per dimension, sorted, the same count for all: padded by
 * repeating the last, which split_interval ignores). */
static size_t breakpoints(const nnft_vertex_kernel *k, const nnft_mat *X, double *bp) {
  const size_t d = k->d, n = X->rows;
  size_t nb = 0;
  size_t counts[NNFT_VERTEX_MAX_D];
  for (size_t j = 0; j < d; j++) {
    double *b = bp + j * MAX_BP;
    size_t c = 0;
    b[c++] = 0.0;
    if (k->localised) {
      double w = sqrt((double)d) / k->sw0;
      double lo = INFINITY, hi = -INFINITY;
      for (size_t i = 0; i < n; i++) {
        double v = NNFT_AT(X, i, j);
        if (v < lo) lo = v;
        if (v > hi) hi = v;
        if (c < 40) b[c++] = v;
      }
      size_t ng = (size_t)ceil((hi - lo) / w);
      if (ng > 64) ng = 64;
      for (size_t g = 1; g < ng; g++) b[c++] = lo + (hi - lo) * (double)g / (double)ng;
      for (int l = 0; l < 6; l++) {
        b[c++] = lo - w * ldexp(1.0, l);
        b[c++] = hi + w * ldexp(1.0, l);
      }
    }
    /* sort, unique */
    for (size_t i = 1; i < c; i++) {
      double v = b[i];
      size_t m = i;
      while (m > 0 && b[m - 1] > v) {
        b[m] = b[m - 1];
        m--;
      }
      b[m] = v;
    }
    size_t u = 0;
    for (size_t i = 0; i < c; i++)
      if (u == 0 || b[i] != b[u - 1]) b[u++] = b[i];
    counts[j] = u;
    if (u > nb) nb = u;
  }
  for (size_t j = 0; j < d; j++)
    for (size_t i = counts[j]; i < nb; i++) bp[j * MAX_BP + i] = bp[j * MAX_BP + counts[j] - 1];
  return nb;
}

static void engine_free(engine *e) {
  nnft_free(e->P);
  nnft_free(e->Pq);
  nnft_free(e->idx2);
  nnft_free(e->kv);
  nnft_free(e->wt);
  nnft_free(e->r2);
  nnft_free(e->tmp);
  nnft_free(e->tmpa);
  nnft_free(e->pc);
  nnft_free(e->val);
  nnft_free(e->err);
  nnft_free(e->abv);
  nnft_free(e->heap);
  nnft_free(e->freel);
}

static void *alloc_n(size_t n, size_t size, nnft_status *st) {
  size_t bytes;
  if (*st) return NULL;
  if (nnft_size_mul(n ? n : 1, size, &bytes)) {
    *st = NNFT_EOVERFLOW;
    return NULL;
  }
  void *p = nnft_alloc(bytes);
  if (!p) *st = NNFT_ENOMEM;
  return p;
}

/* Set up the engine for npairs of pairs (all pairs i <= j of the points when want_pairs). */
static nnft_status engine_init(engine *e, const nnft_vertex_kernel *k, const nnft_mat *X,
                               const size_t *idx4, size_t n4, int x2, int want_pairs,
                               const nnft_vertex_opts *o) {
  memset(e, 0, sizeof *e);
  const size_t d = k->d, n = X->rows;
  nnft_status st = NNFT_OK;
  e->k = k;
  e->d = d;
  e->npts = n;
  e->n4 = n4;
  e->idx4 = idx4;
  e->x2 = x2;
  e->n2 = want_pairs ? n * (n + 1) / 2 : 0;
  e->nout = n4 * (x2 ? 2 : 1) + e->n2;
  e->p = d == 1 ? 8 : d == 2 ? 6 : 5;
  gauss_legendre01(e->p, e->gx, e->gw);
  e->nodes = 1;
  for (size_t j = 0; j < d; j++) e->nodes *= (size_t)e->p;
  e->epsrel = o->epsrel;
  e->max_cap = o->max_boxes;
  e->cap = o->max_boxes < 1024 ? o->max_boxes : 1024;
  e->P = alloc_n(n * d, sizeof(double), &st);
  e->Pq = alloc_n(n, sizeof(double), &st);
  e->idx2 = alloc_n(2 * e->n2 + 1, sizeof(size_t), &st);
  e->kv = alloc_n(e->nodes * n, sizeof(double), &st);
  e->wt = alloc_n(e->nodes, sizeof(double), &st);
  e->r2 = alloc_n(e->nodes, sizeof(double), &st);
  e->tmp = alloc_n(e->nout, sizeof(double), &st);
  e->tmpa = alloc_n(e->nout, sizeof(double), &st);
  e->pc = alloc_n(e->cap, sizeof(piece), &st);
  size_t cn = 0;
  if (!st && nnft_size_mul(e->cap, e->nout, &cn)) st = NNFT_EOVERFLOW;
  e->val = alloc_n(cn, sizeof(double), &st);
  e->err = alloc_n(cn, sizeof(double), &st);
  e->abv = alloc_n(cn, sizeof(double), &st);
  e->heap = alloc_n(e->cap, sizeof(size_t), &st);
  e->freel = alloc_n(e->cap, sizeof(size_t), &st);
  if (st) {
    engine_free(e);
    return st;
  }
  for (size_t i = 0; i < n; i++) {
    for (size_t j = 0; j < d; j++) e->P[i * d + j] = NNFT_AT(X, i, j);
    e->Pq[i] = kdot(k, e->P + i * d, e->P + i * d);
  }
  size_t t = 0;
  for (size_t i = 0; i < e->n2 && i < n; i++)
    for (size_t j = i; j < n; j++) {
      e->idx2[2 * t] = i;
      e->idx2[2 * t + 1] = j;
      t++;
    }
  return NNFT_OK;
}

/* Run the engine over the cutoffs; cum (m x nout, cutoff-major), cerr likewise. */
static nnft_status engine_run(engine *e, const nnft_mat *X, const double *Lambda, size_t m,
                              double *cum, double *cerr) {
  const size_t no = e->nout;
  nnft_status st = NNFT_OK;
  double bp[NNFT_VERTEX_MAX_D * MAX_BP];
  size_t nbp = breakpoints(e->k, X, bp);
  double *acc = alloc_n(6 * no, sizeof(double), &st);
  if (st) return st;
  double *aerr = acc + no, *aabs = acc + 2 * no, *work = acc + 3 * no; /* work: 4 no? see below */
  double *work4 = alloc_n(4 * no, sizeof(double), &st);
  if (st) {
    nnft_free(acc);
    return st;
  }
  (void)work;
  for (size_t o = 0; o < no; o++) acc[o] = aerr[o] = aabs[o] = 0;
  for (size_t c = 0; c < m && (st == NNFT_OK || st == NNFT_ENOCONV); c++) {
    double a = c ? Lambda[c - 1] : 0.0, b = Lambda[c];
    nnft_status s2 = integrate_shell(e, a, b, bp, nbp, acc, aerr, aabs, work4);
    if (s2 != NNFT_OK && (st == NNFT_OK || s2 != NNFT_ENOCONV)) st = s2;
    for (size_t o = 0; o < no; o++) {
      cum[c * no + o] = acc[o];
      cerr[c * no + o] = aerr[o];
    }
  }
  nnft_free(work4);
  nnft_free(acc);
  return st;
}

static nnft_status check_common(const nnft_arch *a, const nnft_mat *X, const size_t *idx,
                                size_t ntuples, nnft_vertex_kernel *k) {
  nnft_status st = nnft_vertex_kernel_init(a, k, NULL);
  if (st) return st;
  if (!X || X->cols != k->d || X->rows == 0) return NNFT_EDIM;
  if (!nnft_mat_all_finite(X)) return NNFT_ENONFINITE;
  if (ntuples && !idx) return NNFT_EDOM;
  for (size_t t = 0; t < 4 * ntuples; t++)
    if (idx[t] >= X->rows) return NNFT_EDOM;
  return NNFT_OK;
}

nnft_status nnft_vertex_i4(const nnft_arch *a, const nnft_mat *X, const size_t *idx,
                           size_t ntuples, const double *Lambda, size_t m,
                           const nnft_vertex_opts *opts, nnft_mat *out, nnft_mat *err) {
  nnft_vertex_kernel k;
  nnft_status st = check_common(a, X, idx, ntuples, &k);
  if (st) return st;
  if ((st = nnft_vertex_check_cutoffs(&k, Lambda, m, NULL))) return st;
  nnft_vertex_opts o = opts ? *opts : nnft_vertex_defaults();
  if (!(o.epsrel > 0) || o.max_boxes < 16) return NNFT_EDOM;
  if (!out || out->rows != ntuples || out->cols != m) return NNFT_EDIM;
  if (err && (err->rows != ntuples || err->cols != m)) return NNFT_EDIM;
  if (ntuples == 0) return NNFT_OK;
  engine e;
  if ((st = engine_init(&e, &k, X, idx, ntuples, 0, 0, &o))) return st;
  size_t cm;
  double *cum = NULL, *cerr = NULL;
  if (nnft_size_mul(m, e.nout, &cm)) st = NNFT_EOVERFLOW;
  cum = alloc_n(cm, sizeof(double), &st);
  cerr = alloc_n(cm, sizeof(double), &st);
  if (!st || st == NNFT_ENOCONV) {
    st = engine_run(&e, X, Lambda, m, cum, cerr);
    if (st == NNFT_OK || st == NNFT_ENOCONV)
      for (size_t c = 0; c < m; c++)
        for (size_t t = 0; t < ntuples; t++) {
          NNFT_AT(out, t, c) = cum[c * e.nout + t];
          if (err) NNFT_AT(err, t, c) = cerr[c * e.nout + t];
        }
  }
  nnft_free(cum);
  nnft_free(cerr);
  engine_free(&e);
  return st;
}

nnft_status nnft_vertex_basis(const nnft_arch *a, const nnft_mat *X, const size_t *idx,
                              size_t ntuples, double Lambda, const nnft_vertex_opts *opts,
                              nnft_mat *T0, nnft_mat *T2, nnft_mat *TNL) {
  nnft_vertex_kernel k;
  nnft_status st = check_common(a, X, idx, ntuples, &k);
  if (st) return st;
  if ((st = nnft_vertex_check_cutoffs(&k, &Lambda, 1, NULL))) return st;
  nnft_vertex_opts o = opts ? *opts : nnft_vertex_defaults();
  if (!(o.epsrel > 0) || o.max_boxes < 16) return NNFT_EDOM;
  const nnft_mat *outs[3] = {T0, T2, TNL};
  for (int i = 0; i < 3; i++)
    if (!outs[i] || outs[i]->rows != ntuples || outs[i]->cols != 1) return NNFT_EDIM;
  if (ntuples == 0) return NNFT_OK;
  engine e;
  if ((st = engine_init(&e, &k, X, idx, ntuples, 1, 1, &o))) return st;
  double *cum = alloc_n(2 * e.nout, sizeof(double), &st);
  if (!st) {
    st = engine_run(&e, X, &Lambda, 1, cum, cum + e.nout);
    if (st == NNFT_OK || st == NNFT_ENOCONV) {
      const size_t n = X->rows, off = 2 * ntuples;
      /* pair index of (i, j), i <= j, in the row-wise upper triangle */
#define PIDX(i, j) ((i) <= (j) ? (i) * n - (i) * ((i) - 1) / 2 + ((j) - (i)) \
                               : (j) * n - (j) * ((j) - 1) / 2 + ((i) - (j)))
      for (size_t t = 0; t < ntuples; t++) {
        const size_t *x = idx + 4 * t;
        T0->data[t] = 24.0 * cum[t];
        T2->data[t] = 24.0 * cum[ntuples + t];
        double s = cum[off + PIDX(x[0], x[1])] * cum[off + PIDX(x[2], x[3])] +
                   cum[off + PIDX(x[0], x[2])] * cum[off + PIDX(x[1], x[3])] +
                   cum[off + PIDX(x[0], x[3])] * cum[off + PIDX(x[1], x[2])];
        TNL->data[t] = 8.0 * s;
      }
#undef PIDX
    }
  }
  nnft_free(cum);
  engine_free(&e);
  return st;
}

nnft_status nnft_vertex_i4_closed(const nnft_arch *a, const nnft_mat *X, const size_t *idx,
                                  size_t ntuples, nnft_mat *out) {
  nnft_vertex_kernel k;
  nnft_status st = check_common(a, X, idx, ntuples, &k);
  if (st) return st;
  if (!k.localised) return NNFT_EDOM;
  if (!out || out->rows != ntuples || out->cols != 1) return NNFT_EDIM;
  const size_t d = k.d;
  double s2 = k.sw0 * k.sw0, dd = (double)d;
  double pre = pow(k.amp, 4) * pow(M_PI * dd / (2.0 * s2), 0.5 * dd);
  for (size_t t = 0; t < ntuples; t++) {
    double sq = 0, S[NNFT_VERTEX_MAX_D] = {0, 0, 0};
    for (int q = 0; q < 4; q++)
      for (size_t j = 0; j < d; j++) {
        double v = NNFT_AT(X, idx[4 * t + q], j);
        sq += v * v;
        S[j] += v;
      }
    double S2 = 0;
    for (size_t j = 0; j < d; j++) S2 += S[j] * S[j];
    out->data[t] = pre * exp(-(s2 / (2.0 * dd)) * (sq - 0.25 * S2));
  }
  return NNFT_OK;
}

nnft_status nnft_vertex_kmatrix(const nnft_arch *a, const nnft_mat *X, nnft_mat *K) {
  nnft_vertex_kernel k;
  nnft_status st = check_common(a, X, NULL, 0, &k);
  if (st) return st;
  const size_t n = X->rows, d = k.d;
  if (!K || K->rows != n || K->cols != n) return NNFT_EDIM;
  for (size_t i = 0; i < n; i++)
    for (size_t j = 0; j < n; j++) {
      double x[NNFT_VERTEX_MAX_D], y[NNFT_VERTEX_MAX_D];
      for (size_t q = 0; q < d; q++) {
        x[q] = NNFT_AT(X, i, q);
        y[q] = NNFT_AT(X, j, q);
      }
      NNFT_AT(K, i, j) = k.sb1sq + nnft_vertex_kw(&k, x, y);
    }
  return NNFT_OK;
}

nnft_status nnft_vertex_six(size_t n, const nnft_mat *I4all, const nnft_mat *K, nnft_mat *S6) {
  size_t c4, c6;
  nnft_status st;
  if ((st = nnft_corr_ntuples(n, 4, &c4)) || (st = nnft_corr_ntuples(n, 6, &c6))) return st;
  if (!I4all || I4all->rows != c4 || I4all->cols != 1) return NNFT_EDIM;
  if (!K || K->rows != n || K->cols != n) return NNFT_EDIM;
  if (!S6 || S6->rows != c6 || S6->cols != 1) return NNFT_EDIM;
  uint32_t *idx = alloc_n(6 * c6, sizeof(uint32_t), &st);
  if (st) return st;
  nnft_corr_tuples(n, 6, idx);
  for (size_t t = 0; t < c6; t++) {
    const uint32_t *x = idx + 6 * t;
    double s = 0;
    for (int e = 0; e < 6; e++)
      for (int f = e + 1; f < 6; f++) {
        uint32_t q[4];
        int m = 0;
        for (int i = 0; i < 6; i++)
          if (i != e && i != f) q[m++] = x[i]; /* x sorted, so q is sorted */
        size_t r = 0;
        nnft_corr_tuple_rank(n, 4, q, &r);
        s += I4all->data[r] * NNFT_AT(K, x[e], x[f]);
      }
    S6->data[t] = s;
  }
  nnft_free(idx);
  return NNFT_OK;
}
