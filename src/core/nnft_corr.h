/* nnft_corr: n-point correlators of network ensembles (physics.md §3): streamed, compensated
 * accumulation of G^(k)(x_i1, ..., x_ik) = (1/E) Σ_networks Π_j f(x_ij) over all sorted index
 * tuples with bag (batch) error bars; Wick (GP) predictions from a kernel matrix; connected
 * parts; the [HMS] deviation metric; histograms of outputs.
 *
 * Tuples. The distinct k-point correlators of n inputs are indexed by the sorted tuples
 * i1 <= i2 <= ... <= ik (0-based here, 1-based in Lua), C(n+k-1, k) of them (21, 126, 462 for
 * n = 6 and k = 2, 4, 6), enumerated in lexicographic order: (0,0), (0,1), ..., (0,n-1),
 * (1,1), ... Orders 1 .. NNFT_CORR_MAX_ORDER, odd ones included.
 *
 * Bags and blocks. The E networks are split into B bags, bag b holding the networks
 * [floor(bE/B), floor((b+1)E/B)) in index order. Within a bag, networks are summed in blocks of
 * NNFT_CORR_BLOCK consecutive networks starting at the bag's first network (the last block of a
 * bag may be shorter). A block's sum is a fixed-shape sum of its terms; the blocks of a bag are
 * added in order with Neumaier's compensated summation; the bags' totals likewise. The result is
 * therefore a function of the outputs, E and B only: the sampler's chunks must consist of whole
 * blocks (nnft_corr_acc_chunk gives them), and partial results are merged in block order,
 * which makes correlators bit-identical for any thread count and chunk size.
 *
 * Error bars: the bag means m_b; std = the sample standard deviation of the m_b (B - 1 in the
 * denominator; NaN for B = 1), err = std / sqrt(B) (the standard error of the mean). */
#ifndef NNFT_CORR_H
#define NNFT_CORR_H

#include <stddef.h>
#include <stdint.h>

#include "nnft_mat.h"
#include "nnft_status.h"

#define NNFT_CORR_MAX_ORDER 6
#define NNFT_CORR_BLOCK 64

/* ---- tuples ---- */

/* *count = C(n+k-1, k), the number of sorted k-tuples of n indices. NNFT_EDOM unless n >= 1 and
 * 1 <= k <= NNFT_CORR_MAX_ORDER; NNFT_EOVERFLOW if it does not fit. O(k). */
nnft_status nnft_corr_ntuples(size_t n, int k, size_t *count);
/* idx[t*k + j] = index j of tuple t (0-based), all count tuples in lexicographic order. idx has
 * room for count*k entries. Errors as nnft_corr_ntuples. O(count k). */
nnft_status nnft_corr_tuples(size_t n, int k, uint32_t *idx);
/* The position of a sorted tuple in that order (NNFT_EDOM if not sorted or out of range). O(k n). */
nnft_status nnft_corr_tuple_rank(size_t n, int k, const uint32_t *tuple, size_t *rank);

/* ---- the streamed accumulator ---- */

typedef struct nnft_corr_acc nnft_corr_acc;   /* totals per bag and tuple */
typedef struct nnft_corr_part nnft_corr_part; /* one thread's block sums for one chunk */

/* An accumulator for n inputs, the orders orders[0 .. norders-1] (distinct, each in 1..6, any
 * order), E networks in B bags (1 <= B <= E). Memory: 2 B T doubles, T = the total number of
 * tuples of the orders, plus B + 1 block indices (nothing per network or block). NNFT_EDOM for
 * bad orders, n, E or B; NNFT_EOVERFLOW (also when the totals would exceed the machine's
 * memory); NNFT_ENOMEM. Release with nnft_corr_acc_free (NULL is fine). */
nnft_status nnft_corr_acc_alloc(size_t n, const int *orders, size_t norders, size_t E, size_t B,
                                nnft_corr_acc **out);
void nnft_corr_acc_free(nnft_corr_acc *acc);

/* Chunks for the sampler: consecutive runs of ceil(chunk/NNFT_CORR_BLOCK) whole blocks (at
 * least one, so at most that many times 64 networks; the last run may be shorter): how many
 * there are, and chunk q's networks [*lo, *hi). Computed on the fly, O(log B): nothing is
 * stored per block, so E may be as large as size_t allows. */
size_t nnft_corr_acc_nblocks(const nnft_corr_acc *acc);
size_t nnft_corr_acc_nchunks(const nnft_corr_acc *acc, size_t chunk);
void nnft_corr_acc_chunk(const nnft_corr_acc *acc, size_t chunk, size_t q, size_t *lo,
                         size_t *hi);

/* Per-thread partial for the chunks of nnft_corr_acc_chunk(acc, chunk, ...).
 * NNFT_ENOMEM/NNFT_EOVERFLOW. Memory: ceil(chunk/64) T doubles plus a 64 x (n + 6) buffer. */
nnft_status nnft_corr_part_alloc(const nnft_corr_acc *acc, size_t chunk, nnft_corr_part **out);
void nnft_corr_part_free(nnft_corr_part *p);

/* The block sums of networks e0 .. e0 + F->rows - 1 whose outputs are the rows of F (n
 * columns): only reads acc. The range must consist of whole blocks (NNFT_EDOM otherwise), at
 * most as many as the part was made for; NNFT_EDIM if F has not n columns. Cost per network: one multiply per
 * tuple of every order up to the highest requested, one add per requested tuple. */
nnft_status nnft_corr_part_compute(const nnft_corr_acc *acc, size_t e0, const nnft_mat *F,
                                   nnft_corr_part *p);
/* Fold p (the last chunk computed into it) into acc. Chunks must be merged in increasing network
 * order, each exactly once. O(blocks T). */
nnft_status nnft_corr_part_merge(nnft_corr_acc *acc, const nnft_corr_part *p);

/* Sequential convenience: compute and merge networks e0 .. e0 + F->rows - 1 (whole blocks,
 * in order) through a temporary part. */
nnft_status nnft_corr_acc_add(nnft_corr_acc *acc, size_t e0, const nnft_mat *F);

/* Number of networks merged so far (E when complete). */
size_t nnft_corr_acc_count(const nnft_corr_acc *acc);
/* The accumulator's n, E and number of bags. */
void nnft_corr_acc_shape(const nnft_corr_acc *acc, size_t *n, size_t *E, size_t *B);

/* Results for order k (one of the accumulator's orders, NNFT_EDOM otherwise), for the
 * count = C(n+k-1, k) tuples: mean over all E networks, the B bag means (bagmeans is B x count,
 * column-major with leading dimension ld >= B; may be NULL), std and err of the header comment
 * (either may be NULL). NNFT_EDOM if not all E networks have been merged. O(B count). */
nnft_status nnft_corr_acc_result(const nnft_corr_acc *acc, int k, double *mean,
                                 double *bagmeans, size_t ld, double *std, double *err);

/* The bag boundaries: networks [nnft_corr_bag_start(E, B, b), nnft_corr_bag_start(E, B, b+1)). */
size_t nnft_corr_bag_start(size_t E, size_t B, size_t b);

/* ---- Gaussian (Wick) predictions, connected parts, deviation ---- */

/* out[t] = Σ over the (k-1)!! perfect matchings of the k indices of tuple t of Π K(i_a, i_b)
 * (physics.md §3.2), for count tuples idx[t*k ..] (0-based, any order within a tuple, each
 * < K->rows). Odd k: 0 (zero-mean Gaussian). K square. NNFT_EDOM for k outside 1..6 or an index
 * out of range; NNFT_EDIM if K is not square. O(count (k-1)!! k). */
nnft_status nnft_corr_wick(const nnft_mat *K, int k, const uint32_t *idx, size_t count,
                           double *out);

/* Connected 4-point function of zero-mean fields from the full tables over all sorted tuples of
 * n inputs (physics.md §3.3): G4c = G4 − Σ_3 G2 G2. G2 has C(n+1,2) entries, G4 and G4c
 * C(n+3,4). O(C(n+3,4)). */
nnft_status nnft_corr_connected4(size_t n, const double *G2, const double *G4, double *G4c);
/* G6c = G6 − Σ_15 G4 G2 + 2 Σ_15 G2 G2 G2 over the C(n+5,6) sorted 6-tuples. */
nnft_status nnft_corr_connected6(size_t n, const double *G2, const double *G4, const double *G6,
                                 double *G6c);

/* The [HMS] deviation metric (physics.md §3.1) over count tuples:
 *   m  = mean_t |G_t − P_t| / |P_t|,     bg = mean_t spread_t / |P_t|
 * with spread the std over bags of the measured correlator (may be NULL: bg = NaN). Tuples whose
 * prediction P_t is 0 are skipped (*used counts those kept; NaN results when none is). */
nnft_status nnft_corr_deviation(size_t count, const double *G, const double *P,
                                const double *spread, double *m, double *bg, size_t *used);

/* ---- histograms ---- */

/* Counts of values in `bins` equal bins over [lo, hi) (the last bin includes hi), one histogram
 * per selected input column: counts is bins x ncols (column-major, ld = bins), under/over the
 * values below lo / above hi, nan the NaN values (per column). Integer counts, so merging
 * per-thread histograms in any order gives the same result. */
typedef struct nnft_corr_hist {
  size_t bins, ncols;
  double lo, hi;
  uint64_t *counts;        /* bins x ncols */
  uint64_t *under, *over, *nan;
} nnft_corr_hist;

/* Set up an empty histogram (bins >= 1, lo < hi finite: NNFT_EDOM otherwise). */
nnft_status nnft_corr_hist_alloc(size_t bins, size_t ncols, double lo, double hi,
                                 nnft_corr_hist *h);
void nnft_corr_hist_free(nnft_corr_hist *h);
/* Add the values F[:, cols[j]] to histogram column j (cols NULL: column j of F). */
nnft_status nnft_corr_hist_add(nnft_corr_hist *h, const nnft_mat *F, const size_t *cols);
/* dst += src (same shape, else NNFT_EDIM). */
nnft_status nnft_corr_hist_merge(nnft_corr_hist *dst, const nnft_corr_hist *src);

#endif
