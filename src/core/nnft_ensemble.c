/* nnft_ensemble: the streamed ensemble sampler. The reproducibility contract, the parameter
 * draw order and the threading model are in nnft_ensemble.h. */
#include "nnft_ensemble.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "nnft_alloc.h"
#include "nnft_rng.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#include <immintrin.h>
#define ENS_X86 1
/* Hot loops: vectorised for the best ISA at run time, but never with FMA contraction, so every
 * clone computes bit-identical results (reproducibility across machines, not only threads). */
#define ENS_HOT __attribute__((optimize("O3", "fp-contract=off"), \
                               target_clones("avx512f", "avx2", "default")))
#else
#define ENS_HOT
#endif

#define ENS_PI 3.14159265358979323846

/* ------------------------------------------------------------------------------------------
 * The per-network generator: eight xoshiro256++ lanes for normals, one for uniforms. */

#define ENS_LANES 8
#define ENS_NBUF 256 /* normals produced per refill: 32 steps of the 8 lanes */

typedef uint64_t ens_v8u __attribute__((vector_size(64)));

typedef struct ens_stream {
  ens_v8u s0, s1, s2, s3; /* lane states */
  uint64_t t[4];          /* scalar stream */
  double buf[ENS_NBUF];   /* normals [pos, ENS_NBUF) not yet used */
  uint64_t raw[ENS_NBUF]; /* the words of the current buffer (rejected ones are re-read) */
  uint64_t rej[ENS_NBUF / 64]; /* bitmap: word i was rejected by the fast path */
  unsigned pos;
  const uint64_t *zk; /* nnft_rng's ziggurat tables */
  const double *zw, *zf;
} ens_stream;

#define ZIG_R 3.6541528853610088

static inline uint64_t rotl64(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static inline uint64_t scalar_u64(ens_stream *st) {
  uint64_t *s = st->t;
  uint64_t r = rotl64(s[0] + s[3], 23) + s[0], t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl64(s[3], 45);
  return r;
}

static inline double scalar_uniform(ens_stream *st) {
  return (double)(scalar_u64(st) >> 11) * 0x1.0p-53;
}

/* Seed the lanes and the scalar stream from Philox substream e of root. */
static nnft_status stream_init(ens_stream *st, const nnft_rng *root, size_t e) {
  nnft_rng sub;
  nnft_status s = nnft_rng_substream(root, (uint64_t)e, &sub);
  if (s) return s;
  uint64_t w[ENS_LANES][4];
  for (int l = 0; l < ENS_LANES; l++) {
    for (int k = 0; k < 4; k++) w[l][k] = nnft_rng_u64(&sub);
    if ((w[l][0] | w[l][1] | w[l][2] | w[l][3]) == 0) w[l][0] = 1; /* p = 2^-256 */
  }
  for (int l = 0; l < ENS_LANES; l++) {
    st->s0[l] = w[l][0];
    st->s1[l] = w[l][1];
    st->s2[l] = w[l][2];
    st->s3[l] = w[l][3];
  }
  for (int k = 0; k < 4; k++) st->t[k] = nnft_rng_u64(&sub);
  if ((st->t[0] | st->t[1] | st->t[2] | st->t[3]) == 0) st->t[0] = 1;
  st->pos = ENS_NBUF;
  nnft__rng_zig_tables(&st->zk, &st->zw, &st->zf);
  return NNFT_OK;
}

/* One step of the eight lanes: returns their outputs. */
#define XOSHIRO_STEP(out, a, b, c, d)                                  \
  do {                                                                 \
    ens_v8u r_ = (a) + (d);                                            \
    (out) = ((r_ << 23) | (r_ >> 41)) + (a);                           \
    ens_v8u t_ = (b) << 17;                                            \
    (c) ^= (a);                                                        \
    (d) ^= (b);                                                        \
    (b) ^= (c);                                                        \
    (a) ^= (d);                                                        \
    (c) ^= t_;                                                         \
    (d) = ((d) << 45) | ((d) >> 19);                                   \
  } while (0)

/* Fill raw[] with the next ENS_NBUF lane words, buf[] with the ziggurat fast-path values and
 * rej[] with the fast-path rejections. Three implementations computing identical bits: the
 * conversion of j < 2^52 to double is exact, the one product j w[i] is a single rounding. */
static void refill_scalar(ens_stream *st) {
  ens_v8u a = st->s0, b = st->s1, c = st->s2, d = st->s3;
  memset(st->rej, 0, sizeof st->rej);
  for (int t = 0; t < ENS_NBUF / ENS_LANES; t++) {
    ens_v8u o;
    XOSHIRO_STEP(o, a, b, c, d);
    for (int l = 0; l < ENS_LANES; l++) {
      int i = t * ENS_LANES + l;
      uint64_t u = o[l];
      unsigned id = (unsigned)(u & 0xff);
      uint64_t j = u >> 12;
      double x = (double)j * st->zw[id];
      st->raw[i] = u;
      st->buf[i] = (u & 0x100) ? -x : x;
      if (j >= st->zk[id]) st->rej[i >> 6] |= (uint64_t)1 << (i & 63);
    }
  }
  st->s0 = a;
  st->s1 = b;
  st->s2 = c;
  st->s3 = d;
}

#ifdef ENS_X86
__attribute__((target("avx512f"))) static void refill_avx512(ens_stream *st) {
  ens_v8u a = st->s0, b = st->s1, c = st->s2, d = st->s3;
  const __m512i m255 = _mm512_set1_epi64(255), expo = _mm512_set1_epi64(0x4330000000000000LL),
                sbit = _mm512_set1_epi64(0x100);
  const __m512d two52 = _mm512_set1_pd(4503599627370496.0);
  uint64_t rej[ENS_NBUF / 64] = {0};
  for (int t = 0; t < ENS_NBUF / ENS_LANES; t++) {
    ens_v8u o;
    XOSHIRO_STEP(o, a, b, c, d);
    __m512i u = (__m512i)o;
    __m512i id = _mm512_and_si512(u, m255), j = _mm512_srli_epi64(u, 12);
    __m512d w = _mm512_i64gather_pd(id, st->zw, 8);
    __m512i k = _mm512_i64gather_epi64(id, (const long long *)st->zk, 8);
    __m512d jd = _mm512_sub_pd(_mm512_castsi512_pd(_mm512_or_si512(j, expo)), two52);
    __m512d x = _mm512_mul_pd(jd, w);
    __m512i sg = _mm512_slli_epi64(_mm512_and_si512(u, sbit), 55);
    x = _mm512_castsi512_pd(_mm512_xor_si512(_mm512_castpd_si512(x), sg));
    _mm512_storeu_si512((void *)(st->raw + 8 * t), u);
    _mm512_storeu_pd(st->buf + 8 * t, x);
    __mmask8 bad = _mm512_cmpge_epu64_mask(j, k);
    rej[t >> 3] |= (uint64_t)bad << (8 * (t & 7));
  }
  memcpy(st->rej, rej, sizeof rej);
  st->s0 = a;
  st->s1 = b;
  st->s2 = c;
  st->s3 = d;
}

__attribute__((target("avx2"))) static void refill_avx2(ens_stream *st) {
  ens_v8u a = st->s0, b = st->s1, c = st->s2, d = st->s3;
  const __m256i m255 = _mm256_set1_epi64x(255), expo = _mm256_set1_epi64x(0x4330000000000000LL),
                sbit = _mm256_set1_epi64x(0x100);
  const __m256d two52 = _mm256_set1_pd(4503599627370496.0);
  uint64_t rej[ENS_NBUF / 64] = {0};
  for (int t = 0; t < ENS_NBUF / ENS_LANES; t++) {
    ens_v8u o;
    XOSHIRO_STEP(o, a, b, c, d);
    for (int h = 0; h < 2; h++) {
      __m256i u;
      memcpy(&u, (const char *)&o + 32 * h, 32);
      __m256i id = _mm256_and_si256(u, m255), j = _mm256_srli_epi64(u, 12);
      __m256d w = _mm256_i64gather_pd(st->zw, id, 8);
      __m256i k = _mm256_i64gather_epi64((const long long *)st->zk, id, 8);
      __m256d jd = _mm256_sub_pd(_mm256_castsi256_pd(_mm256_or_si256(j, expo)), two52);
      __m256d x = _mm256_mul_pd(jd, w);
      __m256i sg = _mm256_slli_epi64(_mm256_and_si256(u, sbit), 55);
      x = _mm256_castsi256_pd(_mm256_xor_si256(_mm256_castpd_si256(x), sg));
      int i = 8 * t + 4 * h;
      _mm256_storeu_si256((__m256i *)(st->raw + i), u);
      _mm256_storeu_pd(st->buf + i, x);
      /* j, k < 2^52: the signed comparison is the unsigned one */
      int bad = ~_mm256_movemask_pd(_mm256_castsi256_pd(_mm256_cmpgt_epi64(k, j))) & 15;
      rej[i >> 6] |= (uint64_t)bad << (i & 63);
    }
  }
  memcpy(st->rej, rej, sizeof rej);
  st->s0 = a;
  st->s1 = b;
  st->s2 = c;
  st->s3 = d;
}
#endif

/* The ziggurat's slow path for a word u the fast path rejected (nnft_rng.c's algorithm): the
 * tail beyond R, the wedges, and retries, all drawing from the scalar stream. */
static double zig_slow(ens_stream *st, uint64_t u) {
  for (;;) {
    unsigned i = (unsigned)(u & 0xff);
    uint64_t j = u >> 12;
    double sign = (u & 0x100) ? -1.0 : 1.0;
    double x = (double)j * st->zw[i];
    if (j < st->zk[i]) return sign * x;
    if (i == 0) {
      double xx, yy;
      do {
        xx = -log1p(-scalar_uniform(st)) / ZIG_R;
        yy = -log1p(-scalar_uniform(st));
      } while (yy + yy < xx * xx);
      return sign * (ZIG_R + xx);
    }
    double y = st->zf[i] + scalar_uniform(st) * (st->zf[i + 1] - st->zf[i]);
    if (y < exp(-0.5 * x * x)) return sign * x;
    u = scalar_u64(st);
  }
}

static void refill(ens_stream *st) {
#ifdef ENS_X86
  if (__builtin_cpu_supports("avx512f"))
    refill_avx512(st);
  else if (__builtin_cpu_supports("avx2"))
    refill_avx2(st);
  else
#endif
    refill_scalar(st);
  for (int q = 0; q < ENS_NBUF / 64; q++) {
    uint64_t m = st->rej[q];
    while (m) {
      int i = 64 * q + __builtin_ctzll(m);
      st->buf[i] = zig_slow(st, st->raw[i]);
      m &= m - 1;
    }
  }
  st->pos = 0;
}

/* x[0..n) = standard normals, the next n of the normal stream. */
static void stream_normals(ens_stream *st, double *restrict x, size_t n) {
  while (n) {
    if (st->pos == ENS_NBUF) refill(st);
    size_t m = ENS_NBUF - st->pos;
    if (m > n) m = n;
    memcpy(x, st->buf + st->pos, m * sizeof *x);
    st->pos += (unsigned)m;
    x += m;
    n -= m;
  }
}

/* ------------------------------------------------------------------------------------------
 * The forward pass of one freshly drawn network. */

typedef struct ens_ws {
  double *xt;    /* d x n: the inputs as columns */
  double *xsq;   /* n: |x_k|^2 (gauss-net) */
  double *za;    /* maxw x n */
  double *zb;    /* maxw x n */
  double *w;     /* maxcol: one weight column (or the readout row) */
  double *bias;  /* maxw */
  double *amp;   /* layer-1 fan_out: cos-net amplitudes A(b_i) */
  double *F;     /* chunk x n outputs */
  double *w0;    /* fused path: layer-1 weights (N x d) */
  double *acc;   /* fused path: 8 x n partial sums */
  double *shift; /* n: gauss-net normalisation exponents */
  ens_stream *st;
} ens_ws;

typedef struct ens_shape {
  size_t n, d, maxw, maxcol, chunk;
} ens_shape;

/* w[0..m) = parameters with mean `mean` and effective standard deviation `sd` (nnft_net's
 * conventions): standard w = mean + sd z; NTK as used in the forward pass (ntk = 1, raw = 0)
 * w = sd (mean + z); NTK as stored (raw = 1) w = mean + z; z the next m normals. sd = 0 draws
 * nothing (the parameter is then its mean, or 0 when NTK-scaled). */
/* w = a + b z (mode 0) or b (a + z) (mode 1) for m values. */
ENS_HOT static void affine(const double *restrict z, double *restrict w, size_t m, double a,
                           double b, int mode) {
  if (mode == 0 && a == 0)
    for (size_t i = 0; i < m; i++) w[i] = b * z[i];
  else if (mode == 0)
    for (size_t i = 0; i < m; i++) w[i] = a + b * z[i];
  else
    for (size_t i = 0; i < m; i++) w[i] = b * (a + z[i]);
}

static void draw_param(ens_stream *st, double *restrict w, size_t m, double mean, double sd,
                       int ntk, int raw) {
  if (sd == 0) {
    double v = (ntk && !raw) ? 0.0 : mean;
    for (size_t i = 0; i < m; i++) w[i] = v;
    return;
  }
  double a = mean, b = sd;
  int mode = 0;
  if (ntk && raw) b = 1;    /* mean + z */
  else if (ntk) mode = 1;   /* sd (mean + z) */
  while (m) {
    if (st->pos == ENS_NBUF) refill(st);
    size_t k = ENS_NBUF - st->pos;
    if (k > m) k = m;
    affine(st->buf + st->pos, w, k, a, b, mode);
    st->pos += (unsigned)k;
    w += k;
    m -= k;
  }
}

/* Draw the N frequencies of a ball cos-net into W (N x d column-major, ld N). */
static void draw_ball(ens_stream *st, double R, size_t N, size_t d, double *restrict W) {
  double g[64];
  const double inv_d = 1.0 / (double)d, R2 = R * R;
  for (size_t i = 0; i < N; i++) {
    double s2;
    do {
      s2 = 0;
      for (size_t j0 = 0; j0 < d; j0 += 64) { /* d may exceed the stack buffer */
        size_t m = d - j0 < 64 ? d - j0 : 64;
        stream_normals(st, g, m);
        for (size_t j = 0; j < m; j++) {
          W[i + (j0 + j) * N] = g[j];
          s2 += g[j] * g[j];
        }
      }
    } while (s2 == 0);
    double u = scalar_uniform(st);
    double rad = d == 1 ? R * u : R * pow(u, inv_d);
    double scale = rad / sqrt(s2);
    double r2 = 0;
    for (size_t j = 0; j < d; j++) {
      W[i + j * N] *= scale;
      r2 += W[i + j * N] * W[i + j * N];
    }
    if (r2 > R2) { /* rounding put it a hair outside: pull it in */
      double f = R / sqrt(r2) * (1 - 0x1.0p-50);
      for (size_t j = 0; j < d; j++) W[i + j * N] *= f;
    }
  }
}

/* z[k] = Σ_c w[c] h[c + k ldh] for k < n: eight fixed partial sums (c mod 8) combined as
 * ((0+4)+(2+6))+((1+5)+(3+7)), so the result does not depend on the vector width. */
ENS_HOT static void dot_cols(size_t fi, size_t n, const double *restrict w,
                             const double *restrict h, size_t ldh, double *restrict z) {
  for (size_t k = 0; k < n; k++) {
    const double *hk = h + k * ldh;
    double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    size_t c = 0;
    for (; c + 8 <= fi; c += 8)
      for (int l = 0; l < 8; l++) acc[l] += w[c + l] * hk[c + l];
    for (int l = 0; c + (size_t)l < fi; l++) acc[l] += w[c + l] * hk[c + l];
    z[k] = ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
  }
}

/* z[:, k] += w * h[c, k] for every input k (one weight column into fan_out rows); with
 * first set, z[:, k] = w * h[c, k]. */
ENS_HOT static void axpy_cols(size_t fo, size_t n, const double *restrict w,
                              const double *restrict hrow, size_t ldh, double *restrict z,
                              int first) {
  for (size_t k = 0; k < n; k++) {
    double s = hrow[k * ldh];
    double *zk = z + k * fo;
    if (first)
      for (size_t i = 0; i < fo; i++) zk[i] = w[i] * s;
    else
      for (size_t i = 0; i < fo; i++) zk[i] += w[i] * s;
  }
}

/* The same for cb <= 4 consecutive columns (w holds them one after another, fo each): every
 * element of z gets the column products added in column order, exactly as cb calls of
 * axpy_cols would, with one pass over z instead of cb. */
ENS_HOT static void axpy_cols4(size_t fo, size_t n, size_t cb, const double *restrict w,
                               const double *restrict hrow, size_t ldh, double *restrict z,
                               int first) {
  if (cb < 4) {
    for (size_t j = 0; j < cb; j++)
      axpy_cols(fo, n, w + j * fo, hrow + j, ldh, z, first && j == 0);
    return;
  }
  const double *w0 = w, *w1 = w + fo, *w2 = w + 2 * fo, *w3 = w + 3 * fo;
  for (size_t k = 0; k < n; k++) {
    const double s0 = hrow[k * ldh], s1 = hrow[1 + k * ldh], s2 = hrow[2 + k * ldh],
                 s3 = hrow[3 + k * ldh];
    double *zk = z + k * fo;
    if (first)
      for (size_t i = 0; i < fo; i++) {
        double v = w0[i] * s0;
        v += w1[i] * s1;
        v += w2[i] * s2;
        zk[i] = v + w3[i] * s3;
      }
    else
      for (size_t i = 0; i < fo; i++) {
        double v = zk[i] + w0[i] * s0;
        v += w1[i] * s1;
        v += w2[i] * s2;
        zk[i] = v + w3[i] * s3;
      }
  }
}

/* Activation in place on m values (column k of a layer). */
ENS_HOT static void act_inplace(nnft_act act, double *restrict z, size_t m, double shift,
                                const nnft_custom_act *cu) {
  switch (act) {
  case NNFT_ACT_LINEAR: break;
  case NNFT_ACT_RELU:
    for (size_t i = 0; i < m; i++) z[i] = (z[i] > 0 || z[i] != z[i]) ? z[i] : 0.0;
    break;
  case NNFT_ACT_STEP:
    for (size_t i = 0; i < m; i++) z[i] = z[i] > 0 ? 1.0 : (z[i] != z[i] ? z[i] : 0.0);
    break;
  case NNFT_ACT_GAUSSNET:
    for (size_t i = 0; i < m; i++) z[i] = exp(z[i] - shift);
    break;
  case NNFT_ACT_CUSTOM:
    for (size_t i = 0; i < m; i++) z[i] = cu->eval(cu->ctx, z[i]);
    break;
  default:
    for (size_t i = 0; i < m; i++) z[i] = nnft_act_eval(act, z[i]);
    break;
  }
}

/* Multiply by the cos-net amplitude and the hidden layer. */
ENS_HOT static void mul_vec(double *restrict w, const double *restrict a, size_t m) {
  for (size_t i = 0; i < m; i++) w[i] *= a[i];
}

/* The fused one-hidden-layer path (readout of fan_out 1, no cos-net): for eight neurons at a
 * time, z = W0 x + b0, h = σ(z), acc += w1 h, all in registers. It performs exactly the
 * operations of the layer-by-layer path in the same order (first column product, then the
 * other columns, then the bias; the readout's eight partial sums by neuron index mod 8), so
 * both paths give identical bits; it only avoids storing the hidden layer. */

typedef double ens_v8d __attribute__((vector_size(64)));
typedef int64_t ens_v8i __attribute__((vector_size(64)));

/* The eight-neuron blocks of fused1 for one activation (a statement computing h from z). */
#define FUSED_BLOCKS(ACT)                                                  \
  for (; i0 + 8 <= N; i0 += 8) {                                           \
    ens_v8d w1v;                                                           \
    memcpy(&w1v, w1 + i0, sizeof w1v);                                     \
    for (size_t k = 0; k < n; k++) {                                       \
      ens_v8d z, wc, h;                                                    \
      memcpy(&wc, W0 + i0, sizeof wc);                                     \
      z = wc * xt[k * d];                                                  \
      for (size_t c = 1; c < d; c++) {                                     \
        memcpy(&wc, W0 + i0 + c * N, sizeof wc);                           \
        z += wc * xt[c + k * d];                                           \
      }                                                                    \
      if (b0) {                                                            \
        ens_v8d bv;                                                        \
        memcpy(&bv, b0 + i0, sizeof bv);                                   \
        z += bv;                                                           \
      }                                                                    \
      ACT;                                                                 \
      ens_v8d a;                                                           \
      memcpy(&a, acc + 8 * k, sizeof a);                                   \
      a += w1v * h;                                                        \
      memcpy(acc + 8 * k, &a, sizeof a);                                   \
    }                                                                      \
  }

ENS_HOT static void fused1(size_t N, size_t d, size_t n, const double *restrict W0,
                           const double *restrict b0, const double *restrict w1,
                           const double *restrict xt, nnft_act act,
                           const double *restrict shift, double *restrict acc,
                           double *restrict out) {
  for (size_t q = 0; q < 8 * n; q++) acc[q] = 0;
  size_t i0 = 0;
  const ens_v8i absmask = (ens_v8i){0} + INT64_MAX;
  switch (act) {
  case NNFT_ACT_RELU:
    /* relu(z) = (z + |z|) / 2, exactly (z + z and the halving are exact; 0 for z <= 0); z is
       never NaN here: finite inputs, weights and biases */
    FUSED_BLOCKS(h = 0.5 * (z + (ens_v8d)((ens_v8i)z & absmask)));
    break;
  case NNFT_ACT_LINEAR:
    FUSED_BLOCKS(h = z);
    break;
  case NNFT_ACT_GAUSSNET:
    FUSED_BLOCKS(for (int l = 0; l < 8; l++) h[l] = exp(z[l] - shift[k]));
    break;
  default:
    FUSED_BLOCKS(for (int l = 0; l < 8; l++) h[l] = nnft_act_eval(act, z[l]));
    break;
  }
  for (size_t k = 0; k < n; k++) {
    double *ak = acc + 8 * k;
    for (size_t l = 0; i0 + l < N; l++) {
      size_t i = i0 + l;
      double z = W0[i] * xt[k * d];
      for (size_t c = 1; c < d; c++) z += W0[i + c * N] * xt[c + k * d];
      if (b0) z += b0[i];
      double h;
      switch (act) {
      case NNFT_ACT_RELU: h = (z > 0 || z != z) ? z : 0.0; break;
      case NNFT_ACT_LINEAR: h = z; break;
      case NNFT_ACT_STEP: h = z > 0 ? 1.0 : (z != z ? z : 0.0); break;
      case NNFT_ACT_GAUSSNET: h = exp(z - shift[k]); break;
      default: h = nnft_act_eval(act, z); break;
      }
      ak[l] += w1[i] * h;
    }
    out[k] = ((ak[0] + ak[4]) + (ak[2] + ak[6])) + ((ak[1] + ak[5]) + (ak[3] + ak[7]));
  }
}

/* 1 if forward() may use fused1 for a. */
static int fusable(const nnft_arch *a) {
  return a->nlayers == 2 && !a->is_cosnet && a->layer[1].fan_out == 1 &&
         a->layer[0].act != NNFT_ACT_CUSTOM;
}

static void forward_fused(const nnft_arch *a, const ens_shape *sh, ens_ws *ws, double *f,
                          size_t ldf) {
  const size_t n = sh->n, d = sh->d;
  ens_stream *st = ws->st;
  const int ntk = a->param == NNFT_PARAM_NTK;
  const nnft_layer *L0 = &a->layer[0], *L1 = &a->layer[1];
  const size_t N = L0->fan_out;
  draw_param(st, ws->w0, N * d, L0->mean_w, L0->sigma_w / sqrt((double)d), ntk, 0);
  const double *b0 = NULL;
  if (L0->has_bias && !(L0->sigma_b == 0 && (ntk || L0->mean_b == 0))) {
    draw_param(st, ws->bias, N, L0->mean_b, L0->sigma_b, ntk, 0);
    b0 = ws->bias;
  }
  draw_param(st, ws->w, N, L1->mean_w, L1->sigma_w / sqrt((double)N), ntk, 0);
  double out[64], *o = n <= 64 ? out : ws->za;
  fused1(N, d, n, ws->w0, b0, ws->w, ws->xt, L0->act, ws->shift, ws->acc, o);
  if (L1->has_bias && !(L1->sigma_b == 0 && (ntk || L1->mean_b == 0))) {
    double b1;
    draw_param(st, &b1, 1, L1->mean_b, L1->sigma_b, ntk, 0);
    for (size_t k = 0; k < n; k++) o[k] += b1;
  }
  for (size_t k = 0; k < n; k++) f[k * ldf] = o[k];
}

/* Network drawn from st at the inputs; outputs f[k * ldf]. */
static void forward(const nnft_arch *a, const ens_shape *sh, ens_ws *ws, double *f,
                    size_t ldf) {
  const size_t n = sh->n, d = sh->d, L = a->nlayers;
  ens_stream *st = ws->st;
  const double *h = ws->xt; /* fan_in x n, ld fan_in */
  size_t ldh = d;
  double *z = NULL;
  for (size_t l = 0; l < L; l++) {
    const nnft_layer *Ly = &a->layer[l];
    const size_t fo = Ly->fan_out, fi = Ly->fan_in;
    z = (l % 2 == 0) ? ws->za : ws->zb;
    const int ntk = a->param == NNFT_PARAM_NTK;
    const double sd = Ly->sigma_w / sqrt((double)fi);
    const int cos1 = a->is_cosnet && l == 0;
    const int amp2 = a->is_cosnet && a->amplitude && l == 1;
    if (cos1) { /* frequencies (fo x d), kept whole for the amplitude */
      double *W = ws->w;
      if (a->freq == NNFT_FREQ_BALL)
        draw_ball(st, a->radius, fo, d, W);
      else
        draw_param(st, W, fo * d, Ly->mean_w, sd, ntk, 0);
      for (size_t c = 0; c < fi; c++) axpy_cols(fo, n, W + c * fo, h + c, ldh, z, c == 0);
      if (a->amplitude) {
        const double C = sqrt(nnft_arch_cos_c2(a)), m2 = a->mass * a->mass;
        for (size_t i = 0; i < fo; i++) {
          double b2 = 0;
          for (size_t c = 0; c < d; c++) b2 += W[i + c * fo] * W[i + c * fo];
          ws->amp[i] = C / sqrt(b2 + m2);
        }
      }
    } else if (fo == 1) {
      draw_param(st, ws->w, fi, Ly->mean_w, sd, ntk, 0);
      if (amp2) mul_vec(ws->w, ws->amp, fi);
      dot_cols(fi, n, ws->w, h, ldh, z);
    } else {
      for (size_t c = 0; c < fi; c += 4) { /* four weight columns per pass over z */
        size_t cb = fi - c < 4 ? fi - c : 4;
        draw_param(st, ws->w, cb * fo, Ly->mean_w, sd, ntk, 0);
        axpy_cols4(fo, n, cb, ws->w, h + c, ldh, z, c == 0);
      }
    }
    /* bias (cos-net layer 1: the phases) */
    if (Ly->has_bias && cos1) {
      for (size_t i = 0; i < fo; i++) ws->bias[i] = ENS_PI * (2.0 * scalar_uniform(st) - 1.0);
      for (size_t k = 0; k < n; k++)
        for (size_t i = 0; i < fo; i++) z[i + k * fo] += ws->bias[i];
    } else if (Ly->has_bias && !(Ly->sigma_b == 0 && (ntk || Ly->mean_b == 0))) {
      draw_param(st, ws->bias, fo, Ly->mean_b, Ly->sigma_b, ntk, 0);
      for (size_t k = 0; k < n; k++)
        for (size_t i = 0; i < fo; i++) z[i + k * fo] += ws->bias[i];
    }
    if (l + 1 < L) {
      for (size_t k = 0; k < n; k++) {
        double shift = 0;
        if (Ly->act == NNFT_ACT_GAUSSNET)
          shift = Ly->sigma_b * Ly->sigma_b + Ly->sigma_w * Ly->sigma_w * ws->xsq[k] / (double)d;
        act_inplace(Ly->act, z + k * fo, fo, shift, &a->custom);
      }
      h = z;
      ldh = fo;
    }
  }
  for (size_t k = 0; k < n; k++) f[k * ldf] = z[k];
}

/* ------------------------------------------------------------------------------------------
 * Checks, workspaces, the parallel run. */

int nnft_ens_threads(const nnft_arch *a, int requested) {
#ifdef _OPENMP
  int t = requested >= 1 ? requested : omp_get_max_threads();
#else
  int t = 1;
  (void)requested;
#endif
  if (t < 1) t = 1;
  if (a) {
    for (size_t l = 0; l + 1 < a->nlayers && l < NNFT_MAX_LAYERS; l++)
      if (a->layer[l].act == NNFT_ACT_CUSTOM) return 1;
  }
  return t;
}

nnft_status nnft_ens_check(const nnft_arch *a, const nnft_mat *X) {
  nnft_status s = nnft_arch_check(a);
  if (s) return s;
  if (!X || X->rows == 0 || X->cols != a->d_in) return NNFT_EDIM;
  if (!nnft_mat_all_finite(X)) return NNFT_ENONFINITE;
  return NNFT_OK;
}

static void shape_of(const nnft_arch *a, const nnft_mat *X, size_t maxchunk, ens_shape *sh) {
  sh->n = X->rows;
  sh->d = a->d_in;
  sh->maxw = 1;
  sh->maxcol = 1;
  for (size_t l = 0; l < a->nlayers; l++) {
    const nnft_layer *Ly = &a->layer[l];
    if (Ly->fan_out > sh->maxw) sh->maxw = Ly->fan_out;
    size_t col = Ly->fan_out == 1 ? Ly->fan_in : Ly->fan_out;
    if (col > sh->maxcol) sh->maxcol = col;
  }
  sh->chunk = maxchunk;
}

static void ws_free(ens_ws *w) {
  if (!w) return;
  nnft_free(w->xt);
  nnft_free(w->xsq);
  nnft_free(w->za);
  nnft_free(w->zb);
  nnft_free(w->w);
  nnft_free(w->bias);
  nnft_free(w->amp);
  nnft_free(w->F);
  nnft_free(w->w0);
  nnft_free(w->acc);
  nnft_free(w->shift);
  nnft_free(w->st);
  memset(w, 0, sizeof *w);
}

static nnft_status ws_alloc(const nnft_arch *a, const nnft_mat *X, const ens_shape *sh,
                            ens_ws *w) {
  memset(w, 0, sizeof *w);
  size_t dn, wn, fn, ball = 0;
  if (nnft_size_mul(sh->d, sh->n, &dn) || nnft_size_mul(sh->maxw, sh->n, &wn) ||
      nnft_size_mul(sh->chunk, sh->n, &fn))
    return NNFT_EOVERFLOW;
  if (a->is_cosnet && nnft_size_mul(a->layer[0].fan_out, sh->d, &ball))
    return NNFT_EOVERFLOW;
  size_t wcol;
  if (nnft_size_mul(sh->maxcol, 4, &wcol)) return NNFT_EOVERFLOW; /* four columns at a time */
  if (ball > wcol) wcol = ball;
  size_t bytes[8] = {dn, sh->n, wn, wn, wcol, sh->maxw, a->layer[0].fan_out, fn};
  for (int i = 0; i < 8; i++)
    if (nnft_size_mul(bytes[i], sizeof(double), &bytes[i])) return NNFT_EOVERFLOW;
  w->xt = nnft_alloc(bytes[0]);
  w->xsq = nnft_alloc(bytes[1]);
  w->za = nnft_alloc(bytes[2]);
  w->zb = nnft_alloc(bytes[3]);
  w->w = nnft_alloc(bytes[4]);
  w->bias = nnft_alloc(bytes[5]);
  w->amp = nnft_alloc(bytes[6]);
  w->F = nnft_alloc(bytes[7]);
  size_t w0n = 1, accn;
  if (fusable(a) && nnft_size_mul(a->layer[0].fan_out, sh->d, &w0n)) return NNFT_EOVERFLOW;
  if (nnft_size_mul(w0n, sizeof(double), &w0n) || nnft_size_mul(sh->n, 8 * sizeof(double), &accn))
    return NNFT_EOVERFLOW;
  w->w0 = nnft_alloc(w0n);
  w->acc = nnft_alloc(accn);
  w->shift = nnft_alloc(bytes[1]);
  w->st = nnft_alloc(sizeof(ens_stream));
  if (!w->xt || !w->xsq || !w->za || !w->zb || !w->w || !w->bias || !w->amp || !w->F ||
      !w->w0 || !w->acc || !w->shift || !w->st) {
    ws_free(w);
    return NNFT_ENOMEM;
  }
  for (size_t k = 0; k < sh->n; k++) {
    double s2 = 0;
    for (size_t c = 0; c < sh->d; c++) {
      double v = NNFT_AT(X, k, c);
      w->xt[c + k * sh->d] = v;
      s2 += v * v;
    }
    w->xsq[k] = s2;
    const nnft_layer *L0 = &a->layer[0];
    w->shift[k] = L0->sigma_b * L0->sigma_b + L0->sigma_w * L0->sigma_w * s2 / (double)sh->d;
  }
  for (size_t i = 0; i < a->layer[0].fan_out; i++) w->amp[i] = 1;
  return NNFT_OK;
}

size_t nnft_ens_window(int threads) { return 16 * (size_t)(threads < 1 ? 1 : threads); }

static void chunk_range(const nnft_ens_chunks *ch, size_t chunk, size_t E, size_t q,
                        size_t *lo, size_t *hi) {
  if (ch) {
    ch->range(ch->ctx, q, lo, hi);
  } else {
    *lo = q * chunk;
    *hi = *lo + chunk < E ? *lo + chunk : E;
  }
}

nnft_status nnft_ens_run(const nnft_arch *a, const nnft_mat *X, uint64_t seed, size_t E,
                         size_t chunk, const nnft_ens_chunks *chunks, int threads,
                         const nnft_ens_consumer *c) {
  nnft_status s = nnft_ens_check(a, X);
  if (s) return s;
  if (!c || !c->chunk) return NNFT_EDOM;
  size_t maxchunk, nchunks;
  if (chunks) {
    if (chunks->count == 0 || chunks->max == 0 || !chunks->range) return NNFT_EDOM;
    nchunks = chunks->count;
    maxchunk = chunks->max;
  } else {
    if (E == 0 || chunk == 0) return NNFT_EDOM;
    nchunks = E / chunk + (E % chunk != 0);
    maxchunk = chunk < E ? chunk : E;
  }
  if (threads < 1) threads = 1;
  if ((size_t)threads > nchunks) threads = (int)nchunks;

  ens_shape sh;
  shape_of(a, X, maxchunk, &sh);
  ens_ws *ws = nnft_alloc((size_t)threads * sizeof *ws);
  if (!ws) return NNFT_ENOMEM;
  memset(ws, 0, (size_t)threads * sizeof *ws);
  for (int t = 0; t < threads && !s; t++) s = ws_alloc(a, X, &sh, &ws[t]);
  if (s) {
    for (int t = 0; t < threads; t++) ws_free(&ws[t]);
    nnft_free(ws);
    return s;
  }
  nnft_rng root;
  nnft_rng_init(&root, seed);

  /* Windows of nnft_ens_window(threads) chunks: the chunks of a window run in parallel, each
   * handing its outputs to the consumer's slot (q - w0); then the window's merges run serially
   * in chunk order. No thread ever waits for another except at the end of a window, which
   * keeps busy-waiting out of the hot loop (it costs dearly on a shared machine). */
  const size_t W = nnft_ens_window(threads);
  const int fused = fusable(a) && !getenv("NNFT_ENS_NOFUSE");
  nnft_status err = NNFT_OK;
  for (size_t w0 = 0; w0 < nchunks && !err; w0 += W) {
    const long long w1 = (long long)(nchunks - w0 < W ? nchunks : w0 + W);
    int failed = 0;
    nnft_status first_err = NNFT_OK;
#ifdef _OPENMP
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
#endif
    for (long long q = (long long)w0; q < w1; q++) {
      int tid = 0;
#ifdef _OPENMP
      tid = omp_get_thread_num();
#endif
      ens_ws *w = &ws[tid];
      size_t lo, hi;
      chunk_range(chunks, chunk, E, (size_t)q, &lo, &hi);
      size_t m = hi - lo;
      nnft_status st = NNFT_OK;
      int stop;
#ifdef _OPENMP
#pragma omp atomic read
#endif
      stop = failed;
      if (stop) continue; /* an earlier error ends the run */
      if (nnft_interrupted()) st = NNFT_EINTR;
      if (!(lo < hi && m <= maxchunk)) st = NNFT_EDOM; /* a bad partition */
      for (size_t e = lo; e < hi && !st; e++) {
        if (nnft_interrupted()) { /* per network too: one network may be big */
          st = NNFT_EINTR;
          break;
        }
        st = stream_init(w->st, &root, e);
        if (!st) {
        if (fused) forward_fused(a, &sh, w, w->F + (e - lo), m);
        else forward(a, &sh, w, w->F + (e - lo), m);
      }
      }
      if (!st) {
        nnft_mat F = {m, X->rows, m, w->F, 0};
        st = c->chunk(c->ctx, tid, (size_t)q - w0, lo, &F);
      }
      if (st) {
#ifdef _OPENMP
#pragma omp critical(nnft_ens_err)
#endif
        if (!failed) {
          first_err = st;
#ifdef _OPENMP
#pragma omp atomic write
#endif
          failed = 1;
        }
      }
    }
    err = first_err;
    for (size_t q = w0; q < (size_t)w1 && !err && c->merge; q++) {
      size_t lo, hi;
      chunk_range(chunks, chunk, E, q, &lo, &hi);
      err = c->merge(c->ctx, q - w0, lo, hi - lo);
    }
  }
  for (int t = 0; t < threads; t++) ws_free(&ws[t]);
  nnft_free(ws);
  return err;
}

/* ---- outputs into a matrix ---- */

typedef struct out_ctx {
  nnft_mat *F;
  size_t e0, chunk;
} out_ctx;

static void out_range(const void *ctx, size_t q, size_t *lo, size_t *hi) {
  const out_ctx *o = ctx;
  *lo = o->e0 + q * o->chunk;
  *hi = *lo + o->chunk < o->e0 + o->F->rows ? *lo + o->chunk : o->e0 + o->F->rows;
}

static nnft_status out_chunk(void *ctx, int tid, size_t slot, size_t e0, const nnft_mat *F) {
  out_ctx *o = ctx;
  (void)tid;
  (void)slot;
  for (size_t k = 0; k < F->cols; k++)
    memcpy(o->F->data + (e0 - o->e0) + k * o->F->ld, F->data + k * F->ld,
           F->rows * sizeof(double));
  return NNFT_OK;
}

nnft_status nnft_ens_outputs(const nnft_arch *a, const nnft_mat *X, uint64_t seed, size_t e0,
                             size_t chunk, int threads, nnft_mat *F) {
  nnft_status s = nnft_ens_check(a, X);
  if (s) return s;
  if (!F || F->rows == 0 || F->cols != X->rows) return NNFT_EDIM;
  if (chunk == 0) return NNFT_EDOM;
  if (F->rows > SIZE_MAX - e0) return NNFT_EOVERFLOW;
  size_t E = F->rows;
  out_ctx o = {F, e0, chunk};
  nnft_ens_chunks ch = {E / chunk + (E % chunk != 0), chunk < E ? chunk : E, out_range, &o};
  nnft_ens_consumer c = {&o, out_chunk, NULL};
  return nnft_ens_run(a, X, seed, E, chunk, &ch, threads, &c);
}

/* ---- correlators ---- */

typedef struct corr_ctx {
  const nnft_corr_acc *cacc;
  nnft_corr_acc *acc;
  nnft_corr_part **parts;
  size_t chunk;
} corr_ctx;

static void corr_range(const void *ctx, size_t q, size_t *lo, size_t *hi) {
  const corr_ctx *c = ctx;
  nnft_corr_acc_chunk(c->cacc, c->chunk, q, lo, hi);
}

static nnft_status corr_chunk(void *ctx, int tid, size_t slot, size_t e0, const nnft_mat *F) {
  corr_ctx *c = ctx;
  (void)tid;
  return nnft_corr_part_compute(c->cacc, e0, F, c->parts[slot]);
}

static nnft_status corr_merge(void *ctx, size_t slot, size_t e0, size_t m) {
  corr_ctx *c = ctx;
  (void)e0;
  (void)m;
  return nnft_corr_part_merge(c->acc, c->parts[slot]);
}

nnft_status nnft_ens_correlators(const nnft_arch *a, const nnft_mat *X, uint64_t seed,
                                 size_t chunk, int threads, nnft_corr_acc *acc) {
  nnft_status s = nnft_ens_check(a, X);
  if (s) return s;
  size_t n, E, B;
  nnft_corr_acc_shape(acc, &n, &E, &B);
  if (n != X->rows || nnft_corr_acc_count(acc) != 0 || chunk == 0) return NNFT_EDOM;
  size_t nch = nnft_corr_acc_nchunks(acc, chunk);
  if (threads < 1) threads = 1;
  if ((size_t)threads > nch) threads = (int)nch;
  size_t W = nnft_ens_window(threads);
  if (W > nch) W = nch;
  nnft_corr_part **parts = nnft_alloc(W * sizeof *parts);
  if (!parts) return NNFT_ENOMEM;
  for (size_t t = 0; t < W; t++) parts[t] = NULL;
  for (size_t t = 0; t < W && !s; t++) s = nnft_corr_part_alloc(acc, chunk, &parts[t]);
  if (!s) {
    corr_ctx c = {acc, acc, parts, chunk};
    size_t per = chunk / NNFT_CORR_BLOCK + (chunk % NNFT_CORR_BLOCK != 0);
    nnft_ens_chunks ch = {nch, per * NNFT_CORR_BLOCK, corr_range, &c};
    nnft_ens_consumer con = {&c, corr_chunk, corr_merge};
    s = nnft_ens_run(a, X, seed, E, chunk, &ch, threads, &con);
  }
  for (size_t t = 0; t < W; t++) nnft_corr_part_free(parts[t]);
  nnft_free(parts);
  return s;
}

/* ---- histograms and ranges ---- */

typedef struct hist_ctx {
  nnft_corr_hist *h; /* one per thread */
} hist_ctx;

static nnft_status hist_chunk(void *ctx, int tid, size_t slot, size_t e0, const nnft_mat *F) {
  hist_ctx *c = ctx;
  (void)slot;
  (void)e0;
  return nnft_corr_hist_add(&c->h[tid], F, NULL);
}

nnft_status nnft_ens_histogram(const nnft_arch *a, const nnft_mat *X, uint64_t seed, size_t E,
                               size_t chunk, int threads, nnft_corr_hist *h) {
  nnft_status s = nnft_ens_check(a, X);
  if (s) return s;
  if (h->ncols != X->rows) return NNFT_EDIM;
  if (E == 0 || chunk == 0) return NNFT_EDOM;
  if (threads < 1) threads = 1;
  nnft_corr_hist *hs = nnft_alloc((size_t)threads * sizeof *hs);
  if (!hs) return NNFT_ENOMEM;
  memset(hs, 0, (size_t)threads * sizeof *hs);
  for (int t = 0; t < threads && !s; t++)
    s = nnft_corr_hist_alloc(h->bins, h->ncols, h->lo, h->hi, &hs[t]);
  if (!s) {
    hist_ctx c = {hs};
    nnft_ens_consumer con = {&c, hist_chunk, NULL};
    s = nnft_ens_run(a, X, seed, E, chunk, NULL, threads, &con);
  }
  for (int t = 0; t < threads && !s; t++) s = nnft_corr_hist_merge(h, &hs[t]);
  for (int t = 0; t < threads; t++) nnft_corr_hist_free(&hs[t]);
  nnft_free(hs);
  return s;
}

typedef struct range_ctx {
  size_t n;
  double *lo, *hi; /* threads x n */
} range_ctx;

static nnft_status range_chunk(void *ctx, int tid, size_t slot, size_t e0, const nnft_mat *F) {
  range_ctx *c = ctx;
  (void)slot;
  (void)e0;
  double *lo = c->lo + (size_t)tid * c->n, *hi = c->hi + (size_t)tid * c->n;
  for (size_t k = 0; k < F->cols; k++)
    for (size_t r = 0; r < F->rows; r++) {
      double v = F->data[r + k * F->ld];
      if (v < lo[k] || isnan(lo[k])) lo[k] = v; /* NaN v never replaces a number */
      if (v > hi[k] || isnan(hi[k])) hi[k] = v;
    }
  return NNFT_OK;
}

nnft_status nnft_ens_range(const nnft_arch *a, const nnft_mat *X, uint64_t seed, size_t E,
                           size_t chunk, int threads, double *lo, double *hi) {
  nnft_status s = nnft_ens_check(a, X);
  if (s) return s;
  if (E == 0 || chunk == 0) return NNFT_EDOM;
  if (threads < 1) threads = 1;
  size_t n = X->rows, tn;
  if (nnft_size_mul(n, (size_t)threads, &tn) || nnft_size_mul(tn, 2 * sizeof(double), &tn))
    return NNFT_EOVERFLOW;
  double *buf = nnft_alloc(tn);
  if (!buf) return NNFT_ENOMEM;
  range_ctx c = {n, buf, buf + n * (size_t)threads};
  for (size_t i = 0; i < 2 * n * (size_t)threads; i++) buf[i] = NAN;
  nnft_ens_consumer con = {&c, range_chunk, NULL};
  s = nnft_ens_run(a, X, seed, E, chunk, NULL, threads, &con);
  if (!s) {
    for (size_t k = 0; k < n; k++) {
      lo[k] = hi[k] = NAN;
      for (int t = 0; t < threads; t++) {
        double l = c.lo[(size_t)t * n + k], h = c.hi[(size_t)t * n + k];
        if (!isnan(l) && (isnan(lo[k]) || l < lo[k])) lo[k] = l;
        if (!isnan(h) && (isnan(hi[k]) || h > hi[k])) hi[k] = h;
      }
    }
  }
  nnft_free(buf);
  return s;
}

/* ---- the parameters of one network ---- */

nnft_status nnft_ens_params(const nnft_arch *a, uint64_t seed, size_t e, double *theta) {
  nnft_status s = nnft_arch_check(a);
  if (s) return s;
  size_t w_off[NNFT_MAX_LAYERS], b_off[NNFT_MAX_LAYERS];
  nnft_arch_offsets(a, w_off, b_off);
  ens_stream *st = nnft_alloc(sizeof *st);
  if (!st) return NNFT_ENOMEM;
  nnft_rng root;
  nnft_rng_init(&root, seed);
  s = stream_init(st, &root, e);
  const int ntk = a->param == NNFT_PARAM_NTK;
  for (size_t l = 0; l < a->nlayers && !s; l++) {
    const nnft_layer *Ly = &a->layer[l];
    double *W = theta + w_off[l];
    size_t fo = Ly->fan_out, fi = Ly->fan_in;
    if (a->is_cosnet && l == 0 && a->freq == NNFT_FREQ_BALL)
      draw_ball(st, a->radius, fo, fi, W);
    else
      draw_param(st, W, fo * fi, Ly->mean_w, Ly->sigma_w / sqrt((double)fi), ntk, 1);
    if (!Ly->has_bias) continue;
    if (a->is_cosnet && l == 0) {
      for (size_t i = 0; i < fo; i++)
        theta[b_off[l] + i] = ENS_PI * (2.0 * scalar_uniform(st) - 1.0);
    } else {
      draw_param(st, theta + b_off[l], fo, Ly->mean_b, Ly->sigma_b, ntk, 1);
    }
  }
  nnft_free(st);
  return s;
}
