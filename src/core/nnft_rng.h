/* nnft_rng: seeded counter-based random streams (Philox4x32-10, Salmon et al., SC11, "Parallel
 * random numbers: as easy as 1, 2, 3"; the Random123 library).
 *
 * Philox4x32-10 is a keyed bijection of a 128-bit counter (4 x 32-bit words) under a 64-bit key
 * (2 x 32-bit words). A generator is (key, stream id, position):
 *   key      = the 64-bit seed (word 0 = low half, word 1 = high half),
 *   counter  = (pos_lo, pos_hi, sid_lo, sid_hi): words 0-1 the 64-bit block index within the
 *              stream, words 2-3 the 64-bit stream id.
 * Block n of a stream yields the 32-bit words 4n .. 4n+3; every draw consumes whole words from
 * this sequence in order, so a stream is one reproducible sequence of words whatever mixture of
 * single and bulk draws reads it. A 64-bit draw is w[k] | w[k+1] << 32.
 *
 * Streams. The root generator of a seed has stream id 0. Its substream i (0-based) keeps the key
 * and has stream id i + 1, so top-level streams are exactly Philox with key = seed and
 * counter = (n_lo, n_hi, i + 1, 0...): never overlapping, and each reproducible by any Philox
 * implementation. A substream j of a substream (nested, depth >= 2) gets a new key and id,
 * (key', sid') = Philox_{key ^ K}(sid_lo, sid_hi, j_lo, j_hi) with a fixed domain-separation
 * constant K: siblings are distinct by bijectivity, other collisions have probability 2^-128.
 * A substream depends only on the parent's identity (seed and path), never on how much the
 * parent has drawn, so any split of work over threads gives bit-identical numbers.
 *
 * No global mutable state: everything lives in the nnft_rng struct (plain data; copy it to fork
 * a generator at its current position). The words are buffered NNFT_RNG_BLOCKS blocks at a time;
 * on x86-64 with AVX2 the blocks are computed four at a time with vector instructions (bitwise
 * identical to the scalar path). */
#ifndef NNFT_RNG_H
#define NNFT_RNG_H

#include <stddef.h>
#include <stdint.h>

#include <gsl/gsl_rng.h>

#include "nnft_mat.h"
#include "nnft_status.h"

#define NNFT_RNG_BLOCKS 32                  /* Philox blocks computed per refill */
#define NNFT_RNG_WORDS (4 * NNFT_RNG_BLOCKS) /* 32-bit words buffered */
#define NNFT_RNG_PATH_MAX 8                 /* stream path components kept for display */

typedef struct nnft_rng {
  uint32_t buf[NNFT_RNG_WORDS]; /* words of blocks [next_block - NNFT_RNG_BLOCKS, next_block) */
  uint32_t key[2];              /* Philox key */
  uint64_t sid;                 /* stream id: counter words 2-3 */
  uint64_t next_block;          /* block index at which the next refill starts */
  uint32_t pos;                 /* next unread word of buf; NNFT_RNG_WORDS = empty */
  uint32_t depth;               /* number of substream steps from the root */
  uint64_t seed;                /* the root seed */
  uint64_t path[NNFT_RNG_PATH_MAX]; /* the first NNFT_RNG_PATH_MAX substream indices (0-based) */
} nnft_rng;

/* The Philox4x32-10 bijection itself: out = Philox_key(ctr). For known-answer tests and for
 * users who want to reproduce a stream elsewhere. O(1). */
void nnft_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

/* Root generator of `seed` (any 64-bit value; the Lua API admits 0 .. 2^63-1), at position 0. */
void nnft_rng_init(nnft_rng *r, uint64_t seed);

/* child = substream i (0-based) of parent's stream, at position 0 (see the header comment for
 * the mapping). Depends only on parent's seed and path, not on its position. child may alias
 * parent. NNFT_EDOM for i = UINT64_MAX at the top level (its id would wrap to the root's). O(1)
 * (one Philox block for nested streams). */
nnft_status nnft_rng_substream(const nnft_rng *parent, uint64_t i, nnft_rng *child);

/* Position of the next unread 32-bit word within the stream (word 4n+k is word k of block n);
 * nnft_rng_seek moves there. O(1) (seek recomputes one buffer). */
uint64_t nnft_rng_tell(const nnft_rng *r);
void nnft_rng_seek(nnft_rng *r, uint64_t word);

/* Single draws. u32/u64: raw words; uniform: (u64 >> 11) 2^-53, 53 bits in [0, 1);
 * normal: standard normal by a 256-layer ziggurat (Marsaglia & Tsang 2000) with 52-bit
 * magnitudes and Marsaglia's exact tail beyond r = 3.654; consumes one u64 per try (99.3% of
 * draws take one); below(n): uniform integer in [0, n) without bias (Lemire's multiply-and-reject;
 * n = 0 means the full 2^64 range). */
uint32_t nnft_rng_u32(nnft_rng *r);
uint64_t nnft_rng_u64(nnft_rng *r);
double nnft_rng_uniform(nnft_rng *r);
double nnft_rng_normal(nnft_rng *r);
uint64_t nnft_rng_below(nnft_rng *r, uint64_t n);

/* Bulk fills of x[0 .. n-1], element by element in order, each element exactly the value the
 * corresponding single draw would give (uniform: a + (b - a) u, clamped below b; normal:
 * mean + sd z; phases: pi (2u - 1) in [-pi, pi)). They poll the interrupt flag every 65536
 * elements. NNFT_EDOM: uniform unless a < b with a, b and b - a finite; normal unless mean
 * finite and 0 <= sd < Inf. NNFT_EINTR when interrupted (x partly filled). O(n). */
nnft_status nnft_rng_fill_uniform(nnft_rng *r, double *x, size_t n, double a, double b);
nnft_status nnft_rng_fill_normal(nnft_rng *r, double *x, size_t n, double mean, double sd);
nnft_status nnft_rng_fill_phases(nnft_rng *r, double *x, size_t n);

/* The same on a matrix (or view), in column-major order: column 1 top to bottom, then column 2. */
nnft_status nnft_rng_mat_uniform(nnft_rng *r, nnft_mat *m, double a, double b);
nnft_status nnft_rng_mat_normal(nnft_rng *r, nnft_mat *m, double mean, double sd);
nnft_status nnft_rng_mat_phases(nnft_rng *r, nnft_mat *m);

/* Points uniform in the closed d-ball of radius R, one per row of out (n x d, d = out->cols >= 1):
 * for each point in turn, a direction g/|g| from d standard normals (redrawn if g = 0), then a
 * radius R U^(1/d). Every point satisfies sum_j p_j^2 <= R^2 as computed. NNFT_EDOM unless
 * 0 < R < Inf and d >= 1. O(n d). */
nnft_status nnft_rng_ball(nnft_rng *r, double R, nnft_mat *out);

/* Fisher–Yates shuffle: perm[0 .. n-1] = a uniformly random permutation of 0 .. n-1
 * (n - 1 draws of nnft_rng_below). O(n). */
void nnft_rng_permutation(nnft_rng *r, size_t n, size_t *perm);

/* ---- GSL adapter: GSL's samplers drawing from a Philox stream ----
 * nnft_rng_gsl_type is a gsl_rng_type (name "nnft-philox4x32-10", get: one 32-bit word,
 * get_double: nnft_rng_uniform, set: nnft_rng_init). nnft_rng_as_gsl wraps an existing generator
 * without allocating: g->state points at r, so draws through g advance r. */
extern const gsl_rng_type *nnft_rng_gsl_type;
void nnft_rng_as_gsl(nnft_rng *r, gsl_rng *g);

/* Distributions from GSL drawn through the adapter, filling a matrix in column-major order.
 * Parameters (p1, p2) and their domains (NNFT_EDOM otherwise):
 *   GAMMA        shape k > 0, scale theta > 0     (mean k theta, variance k theta^2)
 *   BETA         a > 0, b > 0
 *   POISSON      mean mu, 0 <= mu <= 1e9          (values are integers stored as doubles)
 *   CHISQ        degrees of freedom nu > 0
 *   STUDENT_T    degrees of freedom nu > 0
 *   EXPONENTIAL  mean mu > 0
 *   CAUCHY       scale a > 0 (location 0)
 *   LAPLACE      scale a > 0 (location 0)
 *   LOGNORMAL    mu (finite), sigma >= 0          (exp of N(mu, sigma^2))
 * All parameters must be finite. O(elements). */
typedef enum {
  NNFT_RNG_GAMMA, NNFT_RNG_BETA, NNFT_RNG_POISSON, NNFT_RNG_CHISQ, NNFT_RNG_STUDENT_T,
  NNFT_RNG_EXPONENTIAL, NNFT_RNG_CAUCHY, NNFT_RNG_LAPLACE, NNFT_RNG_LOGNORMAL
} nnft_rng_dist;
nnft_status nnft_rng_mat_dist(nnft_rng *r, nnft_rng_dist dist, double p1, double p2,
                              nnft_mat *m);

/* Private: the ziggurat tables (256 k, 256 w, 257 f entries), for the unit test. */
void nnft__rng_zig_tables(const uint64_t **k, const double **w, const double **f);
/* Private: NNFT_RNG_BLOCKS blocks from `block` by implementation impl (0 scalar, 1 AVX2) into
 * out[4 NNFT_RNG_BLOCKS]; 0 if impl is unavailable here. For the unit test. */
int nnft__rng_blocks(const uint32_t key[2], uint64_t sid, uint64_t block, int impl,
                     uint32_t *out);

#endif
