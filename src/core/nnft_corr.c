/* nnft_corr: correlator accumulators, Wick predictions, connected parts, the deviation metric
 * and histograms. The summation scheme that makes results thread- and chunk-independent is
 * described in nnft_corr.h. */
#include "nnft_corr.h"

#include <math.h>
#include <string.h>

#include "nnft_alloc.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
/* Vectorised for the best ISA at run time, never with FMA contraction: identical bits on every
 * machine. */
#define CORR_HOT __attribute__((optimize("O3", "fp-contract=off"), \
                                target_clones("avx512f", "avx2", "default")))
#else
#define CORR_HOT
#endif

typedef double v8d __attribute__((vector_size(64)));
#define VPB (NNFT_CORR_BLOCK / 8) /* v8d vectors per block */

/* ------------------------------------------------------------------------------------------
 * Tuples */

/* C(m, r) for small r, or 0 on overflow (m >= r assumed). */
static nnft_status binom(size_t m, size_t r, size_t *out) {
  if (r > m) {
    *out = 0;
    return NNFT_OK;
  }
  size_t c = 1;
  for (size_t i = 1; i <= r; i++) {
    /* c = c * (m - r + i) / i stays integral at each step */
    size_t f = m - r + i, g = c / i, h = c % i, t;
    /* c*f/i = g*f + h*f/i, with h*f divisible by i because the product is integral */
    if (nnft_size_mul(g, f, &t)) return NNFT_EOVERFLOW;
    size_t hf;
    if (nnft_size_mul(h, f, &hf)) return NNFT_EOVERFLOW;
    if (nnft_size_add(t, hf / i, &c)) return NNFT_EOVERFLOW;
  }
  *out = c;
  return NNFT_OK;
}

nnft_status nnft_corr_ntuples(size_t n, int k, size_t *count) {
  if (n < 1 || k < 1 || k > NNFT_CORR_MAX_ORDER) return NNFT_EDOM;
  if (n > UINT32_MAX) return NNFT_EOVERFLOW;
  return binom(n + (size_t)k - 1, (size_t)k, count);
}

nnft_status nnft_corr_tuples(size_t n, int k, uint32_t *idx) {
  size_t count;
  nnft_status s = nnft_corr_ntuples(n, k, &count);
  if (s) return s;
  uint32_t cur[NNFT_CORR_MAX_ORDER] = {0};
  for (size_t t = 0; t < count; t++) {
    memcpy(idx + t * (size_t)k, cur, (size_t)k * sizeof *cur);
    /* next sorted tuple: bump the last position that can grow, reset the rest to it */
    int j = k - 1;
    while (j >= 0 && cur[j] == n - 1) j--;
    if (j < 0) break;
    cur[j]++;
    for (int q = j + 1; q < k; q++) cur[q] = cur[j];
  }
  return NNFT_OK;
}

/* Rank of a sorted tuple (no checks). */
static size_t rank_of(size_t n, int k, const uint32_t *v) {
  size_t r = 0, prev = 0;
  for (int j = 0; j < k; j++) {
    for (size_t w = prev; w < v[j]; w++) {
      size_t c;
      binom(n - w + (size_t)(k - j - 1) - 1, (size_t)(k - j - 1), &c);
      r += c;
    }
    prev = v[j];
  }
  return r;
}

nnft_status nnft_corr_tuple_rank(size_t n, int k, const uint32_t *tuple, size_t *rank) {
  size_t count;
  nnft_status s = nnft_corr_ntuples(n, k, &count);
  if (s) return s;
  for (int j = 0; j < k; j++) {
    if (tuple[j] >= n) return NNFT_EDOM;
    if (j && tuple[j] < tuple[j - 1]) return NNFT_EDOM;
  }
  *rank = rank_of(n, k, tuple);
  return NNFT_OK;
}

/* ------------------------------------------------------------------------------------------
 * The accumulator */

struct nnft_corr_acc {
  size_t n, E, B;
  int maxk;
  int want[NNFT_CORR_MAX_ORDER + 1];
  size_t count[NNFT_CORR_MAX_ORDER + 1];
  size_t off[NNFT_CORR_MAX_ORDER + 1]; /* order k's tuples start at off[k] of the T */
  size_t T;
  double *S, *C;      /* B x T, bag-major: S[b T + t] */
  size_t nblocks;
  size_t *bag_block;  /* B + 1: the first block of each bag (bag_block[B] = nblocks) */
  size_t next_block;  /* the next block merge expects */
};

struct nnft_corr_part {
  size_t n, T, maxblocks;
  size_t first, nblk; /* blocks of the last computed chunk */
  size_t *bag;        /* maxblocks: their bags */
  double *sums;       /* maxblocks x T */
  v8d *fb;            /* n x VPB: the block's outputs, zero-padded */
  v8d *prod;          /* MAX_ORDER x VPB */
};

size_t nnft_corr_bag_start(size_t E, size_t B, size_t b) {
  /* floor(b E / B) without overflow */
  size_t q = E / B, r = E % B;
  return b * q + (b * r) / B;
}

nnft_status nnft_corr_acc_alloc(size_t n, const int *orders, size_t norders, size_t E, size_t B,
                                nnft_corr_acc **out) {
  *out = NULL;
  if (n < 1 || norders < 1 || norders > NNFT_CORR_MAX_ORDER || E < 1 || B < 1 || B > E)
    return NNFT_EDOM;
  nnft_corr_acc a;
  memset(&a, 0, sizeof a);
  a.n = n;
  a.E = E;
  a.B = B;
  for (size_t i = 0; i < norders; i++) {
    int k = orders[i];
    if (k < 1 || k > NNFT_CORR_MAX_ORDER || a.want[k]) return NNFT_EDOM;
    a.want[k] = 1;
    if (k > a.maxk) a.maxk = k;
  }
  nnft_status s;
  for (int k = 1; k <= NNFT_CORR_MAX_ORDER; k++) {
    a.off[k] = a.T;
    if (!a.want[k]) continue;
    if ((s = nnft_corr_ntuples(n, k, &a.count[k]))) return s;
    if ((s = nnft_size_add(a.T, a.count[k], &a.T))) return s;
  }
  size_t bt, bytes;
  if ((s = nnft_size_mul(B, a.T, &bt)) || (s = nnft_size_mul(bt, sizeof(double), &bytes)))
    return s;
  if (bytes > nnft_mat_max_bytes() / 2) return NNFT_EOVERFLOW; /* S and C: beyond memory */
  nnft_corr_acc *p = nnft_alloc(sizeof *p);
  if (!p) return NNFT_ENOMEM;
  *p = a;
  p->S = nnft_alloc(bytes);
  p->C = nnft_alloc(bytes);
  p->bag_block = nnft_alloc((B + 1) * sizeof(size_t));
  if (!p->S || !p->C || !p->bag_block) {
    nnft_corr_acc_free(p);
    return NNFT_ENOMEM;
  }
  memset(p->S, 0, bytes);
  memset(p->C, 0, bytes);
  size_t q = 0;
  for (size_t b = 0; b < B; b++) {
    size_t sz = nnft_corr_bag_start(E, B, b + 1) - nnft_corr_bag_start(E, B, b);
    p->bag_block[b] = q;
    q += sz / NNFT_CORR_BLOCK + (sz % NNFT_CORR_BLOCK != 0);
  }
  p->bag_block[B] = q;
  p->nblocks = q;
  *out = p;
  return NNFT_OK;
}

void nnft_corr_acc_free(nnft_corr_acc *acc) {
  if (!acc) return;
  nnft_free(acc->S);
  nnft_free(acc->C);
  nnft_free(acc->bag_block);
  nnft_free(acc);
}

static size_t blocks_per_chunk(size_t chunk) {
  size_t per = chunk / NNFT_CORR_BLOCK + (chunk % NNFT_CORR_BLOCK != 0);
  return per < 1 ? 1 : per;
}

size_t nnft_corr_acc_nblocks(const nnft_corr_acc *acc) { return acc->nblocks; }

/* The bag holding block q < nblocks (binary search over the bags' first blocks). */
static size_t block_bag(const nnft_corr_acc *acc, size_t q) {
  size_t lo = 0, hi = acc->B; /* last b with bag_block[b] <= q */
  while (hi - lo > 1) {
    size_t mid = lo + (hi - lo) / 2;
    if (acc->bag_block[mid] <= q) lo = mid;
    else hi = mid;
  }
  return lo;
}

/* First network of block q (E for q = nblocks). */
static size_t block_start(const nnft_corr_acc *acc, size_t q) {
  if (q >= acc->nblocks) return acc->E;
  size_t b = block_bag(acc, q);
  return nnft_corr_bag_start(acc->E, acc->B, b) + NNFT_CORR_BLOCK * (q - acc->bag_block[b]);
}

size_t nnft_corr_acc_nchunks(const nnft_corr_acc *acc, size_t chunk) {
  size_t per = blocks_per_chunk(chunk);
  return acc->nblocks / per + (acc->nblocks % per != 0);
}

void nnft_corr_acc_chunk(const nnft_corr_acc *acc, size_t chunk, size_t q, size_t *lo,
                         size_t *hi) {
  size_t per = blocks_per_chunk(chunk), q0 = q * per, q1 = q0 + per;
  *lo = block_start(acc, q0);
  *hi = block_start(acc, q1 < acc->nblocks ? q1 : acc->nblocks);
}

void nnft_corr_acc_shape(const nnft_corr_acc *acc, size_t *n, size_t *E, size_t *B) {
  if (n) *n = acc->n;
  if (E) *E = acc->E;
  if (B) *B = acc->B;
}

size_t nnft_corr_acc_count(const nnft_corr_acc *acc) {
  return block_start(acc, acc->next_block);
}

static nnft_status part_alloc(const nnft_corr_acc *acc, size_t mb, nnft_corr_part **out) {
  *out = NULL;
  size_t bytes, fbn;
  if (mb > acc->nblocks) mb = acc->nblocks;
  if (nnft_size_mul(mb, acc->T, &bytes) || nnft_size_mul(bytes, sizeof(double), &bytes) ||
      nnft_size_mul(acc->n, sizeof(v8d) * VPB, &fbn))
    return NNFT_EOVERFLOW;
  nnft_corr_part *p = nnft_alloc(sizeof *p);
  if (!p) return NNFT_ENOMEM;
  memset(p, 0, sizeof *p);
  p->n = acc->n;
  p->T = acc->T;
  p->maxblocks = mb;
  p->sums = nnft_alloc(bytes);
  p->bag = nnft_alloc(mb * sizeof(size_t) + 1);
  p->fb = nnft_alloc(fbn);
  p->prod = nnft_alloc(NNFT_CORR_MAX_ORDER * VPB * sizeof(v8d));
  if (!p->sums || !p->bag || !p->fb || !p->prod) {
    nnft_corr_part_free(p);
    return NNFT_ENOMEM;
  }
  *out = p;
  return NNFT_OK;
}

nnft_status nnft_corr_part_alloc(const nnft_corr_acc *acc, size_t chunk, nnft_corr_part **out) {
  return part_alloc(acc, blocks_per_chunk(chunk), out);
}

void nnft_corr_part_free(nnft_corr_part *p) {
  if (!p) return;
  nnft_free(p->sums);
  nnft_free(p->bag);
  nnft_free(p->fb);
  nnft_free(p->prod);
  nnft_free(p);
}

/* Index of the block starting at network e (nblocks for e = E), or nblocks + 1 if no block
 * starts there. */
static size_t find_block(const nnft_corr_acc *acc, size_t e) {
  if (e >= acc->E) return e == acc->E ? acc->nblocks : acc->nblocks + 1;
  size_t lo = 0, hi = acc->B; /* the bag b with start(b) <= e < start(b+1) */
  while (hi - lo > 1) {
    size_t mid = lo + (hi - lo) / 2;
    if (nnft_corr_bag_start(acc->E, acc->B, mid) <= e) lo = mid;
    else hi = mid;
  }
  size_t off = e - nnft_corr_bag_start(acc->E, acc->B, lo);
  if (off % NNFT_CORR_BLOCK) return acc->nblocks + 1;
  return acc->bag_block[lo] + off / NNFT_CORR_BLOCK;
}

/* The fixed-shape sum of one zero-padded block: eight lanes summed over the block in order,
 * then ((0+4)+(2+6))+((1+5)+(3+7)). */
#define BLOCK_SUM(out, v)                                                            \
  do {                                                                               \
    v8d a_ = (v)[0];                                                                 \
    for (int r_ = 1; r_ < VPB; r_++) a_ += (v)[r_];                                  \
    (out) = ((a_[0] + a_[4]) + (a_[2] + a_[6])) + ((a_[1] + a_[5]) + (a_[3] + a_[7])); \
  } while (0)

/* Every product of every sorted tuple of order <= maxk, depth first (lexicographic within each
 * order); the block sums of the wanted orders go to sums[off[k] + rank]. */
CORR_HOT static void block_tuples(size_t n, int maxk, const int *want, const size_t *off,
                                  const v8d *fb, v8d *prod, double *sums) {
  size_t slot[NNFT_CORR_MAX_ORDER + 1];
  size_t idx[NNFT_CORR_MAX_ORDER];
  for (int k = 0; k <= NNFT_CORR_MAX_ORDER; k++) slot[k] = off[k];
  int d = 1;
  idx[0] = 0;
  for (;;) {
    v8d *p = prod + (size_t)(d - 1) * VPB;
    const v8d *f = fb + idx[d - 1] * VPB;
    if (d == 1)
      for (int r = 0; r < VPB; r++) p[r] = f[r];
    else {
      const v8d *q = p - VPB;
      for (int r = 0; r < VPB; r++) p[r] = q[r] * f[r];
    }
    if (want[d]) BLOCK_SUM(sums[slot[d]++], p);
    if (d < maxk) {
      idx[d] = idx[d - 1];
      d++;
      continue;
    }
    for (;;) {
      if (++idx[d - 1] < n) break;
      if (--d == 0) return;
    }
  }
}

nnft_status nnft_corr_part_compute(const nnft_corr_acc *acc, size_t e0, const nnft_mat *F,
                                   nnft_corr_part *p) {
  if (F->cols != acc->n) return NNFT_EDIM;
  size_t m = F->rows;
  if (m == 0 || e0 > acc->E || m > acc->E - e0) return NNFT_EDOM;
  size_t q0 = find_block(acc, e0), q1 = find_block(acc, e0 + m);
  if (q0 > acc->nblocks || q1 > acc->nblocks || q1 - q0 > p->maxblocks) return NNFT_EDOM;
  const size_t n = acc->n, T = acc->T;
  size_t b = q0 < acc->nblocks ? block_bag(acc, q0) : 0;
  for (size_t q = q0; q < q1; q++) {
    while (acc->bag_block[b + 1] <= q) b++;
    size_t lo = nnft_corr_bag_start(acc->E, acc->B, b) +
                NNFT_CORR_BLOCK * (q - acc->bag_block[b]);
    size_t hiq = q + 1 < acc->bag_block[b + 1] ? lo + NNFT_CORR_BLOCK
                                                : nnft_corr_bag_start(acc->E, acc->B, b + 1);
    size_t sz = hiq - lo;
    p->bag[q - q0] = b;
    double *fb = (double *)p->fb;
    for (size_t i = 0; i < n; i++) {
      double *col = fb + i * NNFT_CORR_BLOCK;
      const double *src = F->data + (lo - e0) + i * F->ld;
      memcpy(col, src, sz * sizeof(double));
      for (size_t r = sz; r < NNFT_CORR_BLOCK; r++) col[r] = 0.0;
    }
    block_tuples(n, acc->maxk, acc->want, acc->off, p->fb, p->prod,
                 p->sums + (q - q0) * T);
  }
  p->first = q0;
  p->nblk = q1 - q0;
  return NNFT_OK;
}

/* Neumaier: (s, c) += x elementwise over T entries. */
CORR_HOT static void neumaier_add(double *restrict s, double *restrict c,
                                  const double *restrict x, size_t T) {
  for (size_t t = 0; t < T; t++) {
    double a = s[t], b = x[t], u = a + b;
    double corr = fabs(a) >= fabs(b) ? (a - u) + b : (b - u) + a;
    c[t] += corr;
    s[t] = u;
  }
}

nnft_status nnft_corr_part_merge(nnft_corr_acc *acc, const nnft_corr_part *p) {
  if (p->first != acc->next_block || p->nblk == 0) return NNFT_EDOM;
  const size_t T = acc->T;
  for (size_t j = 0; j < p->nblk; j++) {
    size_t b = p->bag[j];
    neumaier_add(acc->S + b * T, acc->C + b * T, p->sums + j * T, T);
  }
  acc->next_block += p->nblk;
  return NNFT_OK;
}

nnft_status nnft_corr_acc_add(nnft_corr_acc *acc, size_t e0, const nnft_mat *F) {
  if (e0 > acc->E || F->rows > acc->E - e0) return NNFT_EDOM;
  size_t q0 = find_block(acc, e0), q1 = find_block(acc, e0 + F->rows);
  if (q0 > acc->nblocks || q1 > acc->nblocks || q1 <= q0) return NNFT_EDOM;
  nnft_corr_part *p;
  nnft_status s = part_alloc(acc, q1 - q0, &p);
  if (s) return s;
  s = nnft_corr_part_compute(acc, e0, F, p);
  if (!s) s = nnft_corr_part_merge(acc, p);
  nnft_corr_part_free(p);
  return s;
}

nnft_status nnft_corr_acc_result(const nnft_corr_acc *acc, int k, double *mean,
                                 double *bagmeans, size_t ld, double *std, double *err) {
  if (k < 1 || k > NNFT_CORR_MAX_ORDER || !acc->want[k]) return NNFT_EDOM;
  if (acc->next_block != acc->nblocks) return NNFT_EDOM;
  if (bagmeans && ld < acc->B) return NNFT_EDOM;
  const size_t B = acc->B, T = acc->T, cnt = acc->count[k], off = acc->off[k];
  for (size_t t = 0; t < cnt; t++) {
    double s = 0, c = 0;
    for (size_t b = 0; b < B; b++) { /* bags in order, compensated */
      double x = acc->S[b * T + off + t] + acc->C[b * T + off + t];
      double u = s + x;
      c += fabs(s) >= fabs(x) ? (s - u) + x : (x - u) + s;
      s = u;
    }
    double mu = (s + c) / (double)acc->E;
    if (mean) mean[t] = mu;
    double bm_mean = 0;
    for (size_t b = 0; b < B; b++) {
      double size = (double)(nnft_corr_bag_start(acc->E, B, b + 1) -
                             nnft_corr_bag_start(acc->E, B, b));
      double bm = (acc->S[b * T + off + t] + acc->C[b * T + off + t]) / size;
      if (bagmeans) bagmeans[b + t * ld] = bm;
      bm_mean += bm;
    }
    bm_mean /= (double)B;
    double sd = NAN;
    if (B > 1) {
      double v = 0;
      for (size_t b = 0; b < B; b++) {
        double size = (double)(nnft_corr_bag_start(acc->E, B, b + 1) -
                               nnft_corr_bag_start(acc->E, B, b));
        double dv = (acc->S[b * T + off + t] + acc->C[b * T + off + t]) / size - bm_mean;
        v += dv * dv;
      }
      sd = sqrt(v / (double)(B - 1));
    }
    if (std) std[t] = sd;
    if (err) err[t] = sd / sqrt((double)B);
  }
  return NNFT_OK;
}

/* ------------------------------------------------------------------------------------------
 * Wick, connected parts, deviation */

/* Σ over perfect matchings of v[0..k) of Π K(v_a, v_b). */
static double matchings(const nnft_mat *K, const uint32_t *v, int k) {
  if (k == 0) return 1.0;
  double s = 0;
  uint32_t rest[NNFT_CORR_MAX_ORDER];
  for (int j = 1; j < k; j++) {
    int r = 0;
    for (int q = 1; q < k; q++)
      if (q != j) rest[r++] = v[q];
    s += NNFT_AT(K, v[0], v[j]) * matchings(K, rest, k - 2);
  }
  return s;
}

nnft_status nnft_corr_wick(const nnft_mat *K, int k, const uint32_t *idx, size_t count,
                           double *out) {
  if (K->rows != K->cols) return NNFT_EDIM;
  if (k < 1 || k > NNFT_CORR_MAX_ORDER) return NNFT_EDOM;
  for (size_t t = 0; t < count * (size_t)k; t++)
    if (idx[t] >= K->rows) return NNFT_EDOM;
  for (size_t t = 0; t < count; t++)
    out[t] = (k % 2) ? 0.0 : matchings(K, idx + t * (size_t)k, k);
  return NNFT_OK;
}

/* Rank of the sorted version of k indices. */
static size_t rank_sorted(size_t n, int k, const uint32_t *v) {
  uint32_t s[NNFT_CORR_MAX_ORDER];
  memcpy(s, v, (size_t)k * sizeof *s);
  for (int i = 1; i < k; i++) /* insertion sort */
    for (int j = i; j > 0 && s[j - 1] > s[j]; j--) {
      uint32_t t = s[j];
      s[j] = s[j - 1];
      s[j - 1] = t;
    }
  return rank_of(n, k, s);
}

nnft_status nnft_corr_connected4(size_t n, const double *G2, const double *G4, double *G4c) {
  size_t c4;
  nnft_status s = nnft_corr_ntuples(n, 4, &c4);
  if (s) return s;
  uint32_t *tu = nnft_alloc(c4 * 4 * sizeof *tu);
  if (!tu) return NNFT_ENOMEM;
  nnft_corr_tuples(n, 4, tu);
  for (size_t t = 0; t < c4; t++) {
    const uint32_t *v = tu + 4 * t;
    static const int pairs[3][4] = {{0, 1, 2, 3}, {0, 2, 1, 3}, {0, 3, 1, 2}};
    double w = 0;
    for (int p = 0; p < 3; p++) {
      uint32_t a[2] = {v[pairs[p][0]], v[pairs[p][1]]}, b[2] = {v[pairs[p][2]], v[pairs[p][3]]};
      w += G2[rank_sorted(n, 2, a)] * G2[rank_sorted(n, 2, b)];
    }
    G4c[t] = G4[t] - w;
  }
  nnft_free(tu);
  return NNFT_OK;
}

nnft_status nnft_corr_connected6(size_t n, const double *G2, const double *G4, const double *G6,
                                 double *G6c) {
  size_t c6;
  nnft_status s = nnft_corr_ntuples(n, 6, &c6);
  if (s) return s;
  uint32_t *tu = nnft_alloc(c6 * 6 * sizeof *tu);
  if (!tu) return NNFT_ENOMEM;
  nnft_corr_tuples(n, 6, tu);
  for (size_t t = 0; t < c6; t++) {
    const uint32_t *v = tu + 6 * t;
    double s42 = 0, s222 = 0;
    /* 15 splits (pair | rest of 4) */
    for (int i = 0; i < 6; i++)
      for (int j = i + 1; j < 6; j++) {
        uint32_t pr[2] = {v[i], v[j]}, rest[4];
        int r = 0;
        for (int q = 0; q < 6; q++)
          if (q != i && q != j) rest[r++] = v[q];
        double g2 = G2[rank_sorted(n, 2, pr)];
        s42 += G4[rank_sorted(n, 4, rest)] * g2;
        /* matchings with 0 paired first: {0,j} then the 3 matchings of the rest */
        if (i == 0) {
          static const int m3[3][4] = {{0, 1, 2, 3}, {0, 2, 1, 3}, {0, 3, 1, 2}};
          for (int p = 0; p < 3; p++) {
            uint32_t a[2] = {rest[m3[p][0]], rest[m3[p][1]]};
            uint32_t b[2] = {rest[m3[p][2]], rest[m3[p][3]]};
            s222 += g2 * G2[rank_sorted(n, 2, a)] * G2[rank_sorted(n, 2, b)];
          }
        }
      }
    G6c[t] = G6[t] - s42 + 2.0 * s222;
  }
  nnft_free(tu);
  return NNFT_OK;
}

nnft_status nnft_corr_deviation(size_t count, const double *G, const double *P,
                                const double *spread, double *m, double *bg, size_t *used) {
  double sm = 0, sb = 0;
  size_t u = 0;
  for (size_t t = 0; t < count; t++) {
    double p = fabs(P[t]);
    if (p == 0 || isnan(p)) continue;
    sm += fabs(G[t] - P[t]) / p;
    if (spread) sb += spread[t] / p;
    u++;
  }
  *m = u ? sm / (double)u : NAN;
  *bg = (u && spread) ? sb / (double)u : NAN;
  if (used) *used = u;
  return NNFT_OK;
}

/* ------------------------------------------------------------------------------------------
 * Histograms */

nnft_status nnft_corr_hist_alloc(size_t bins, size_t ncols, double lo, double hi,
                                 nnft_corr_hist *h) {
  memset(h, 0, sizeof *h);
  if (bins < 1 || ncols < 1 || !isfinite(lo) || !isfinite(hi) || !(lo < hi) ||
      !isfinite(hi - lo))
    return NNFT_EDOM;
  size_t nb, bytes;
  if (nnft_size_mul(bins, ncols, &nb) || nnft_size_mul(nb, sizeof(uint64_t), &bytes))
    return NNFT_EOVERFLOW;
  h->counts = nnft_alloc(bytes);
  h->under = nnft_alloc(ncols * sizeof(uint64_t));
  h->over = nnft_alloc(ncols * sizeof(uint64_t));
  h->nan = nnft_alloc(ncols * sizeof(uint64_t));
  if (!h->counts || !h->under || !h->over || !h->nan) {
    nnft_corr_hist_free(h);
    return NNFT_ENOMEM;
  }
  memset(h->counts, 0, bytes);
  memset(h->under, 0, ncols * sizeof(uint64_t));
  memset(h->over, 0, ncols * sizeof(uint64_t));
  memset(h->nan, 0, ncols * sizeof(uint64_t));
  h->bins = bins;
  h->ncols = ncols;
  h->lo = lo;
  h->hi = hi;
  return NNFT_OK;
}

void nnft_corr_hist_free(nnft_corr_hist *h) {
  if (!h) return;
  nnft_free(h->counts);
  nnft_free(h->under);
  nnft_free(h->over);
  nnft_free(h->nan);
  memset(h, 0, sizeof *h);
}

nnft_status nnft_corr_hist_add(nnft_corr_hist *h, const nnft_mat *F, const size_t *cols) {
  const double scale = (double)h->bins / (h->hi - h->lo);
  for (size_t j = 0; j < h->ncols; j++) {
    size_t c = cols ? cols[j] : j;
    if (c >= F->cols) return NNFT_EDIM;
  }
  for (size_t j = 0; j < h->ncols; j++) {
    size_t c = cols ? cols[j] : j;
    const double *x = F->data + c * F->ld;
    uint64_t *cnt = h->counts + j * h->bins;
    for (size_t r = 0; r < F->rows; r++) {
      double v = x[r];
      if (isnan(v)) h->nan[j]++;
      else if (v < h->lo) h->under[j]++;
      else if (v > h->hi) h->over[j]++;
      else {
        double q = (v - h->lo) * scale;
        size_t b = q >= (double)h->bins ? h->bins - 1 : (size_t)q;
        cnt[b]++;
      }
    }
  }
  return NNFT_OK;
}

nnft_status nnft_corr_hist_merge(nnft_corr_hist *dst, const nnft_corr_hist *src) {
  if (dst->bins != src->bins || dst->ncols != src->ncols) return NNFT_EDIM;
  for (size_t i = 0; i < dst->bins * dst->ncols; i++) dst->counts[i] += src->counts[i];
  for (size_t j = 0; j < dst->ncols; j++) {
    dst->under[j] += src->under[j];
    dst->over[j] += src->over[j];
    dst->nan[j] += src->nan[j];
  }
  return NNFT_OK;
}
