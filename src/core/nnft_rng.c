/* nnft_rng: Philox4x32-10 streams, ziggurat normals, bulk fills, the GSL adapter.
 * See nnft_rng.h for the stream layout and the reproducibility contract. */
#include "nnft_rng.h"

#include <math.h>
#include <string.h>

#include <gsl/gsl_randist.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define NNFT_RNG_AVX2 1
#endif

/* ---------------- Philox4x32-10 ---------------- */

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u /* golden ratio */
#define PHILOX_W1 0xBB67AE85u /* sqrt(3) - 1 */
#define PHILOX_ROUNDS 10

/* Domain separation for deriving nested substreams: "nnft" "strm". */
#define DERIVE_K0 0x6e6e6674u
#define DERIVE_K1 0x7374726du

/* One Philox4x32 round on (x0..x3) with key (k0, k1). */
#define PHILOX_ROUND(x0, x1, x2, x3, k0, k1)                                   \
  do {                                                                         \
    uint64_t p0_ = (uint64_t)PHILOX_M0 * (x0), p1_ = (uint64_t)PHILOX_M1 * (x2); \
    uint32_t y0_ = (uint32_t)(p1_ >> 32) ^ (x1) ^ (k0);                        \
    uint32_t y2_ = (uint32_t)(p0_ >> 32) ^ (x3) ^ (k1);                        \
    (x1) = (uint32_t)p1_;                                                      \
    (x3) = (uint32_t)p0_;                                                      \
    (x0) = y0_;                                                                \
    (x2) = y2_;                                                                \
  } while (0)

static inline void philox_block(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0,
                                uint32_t k1, uint32_t *out) {
  for (int r = 0; r < PHILOX_ROUNDS; r++) {
    PHILOX_ROUND(c0, c1, c2, c3, k0, k1);
    k0 += PHILOX_W0;
    k1 += PHILOX_W1;
  }
  out[0] = c0;
  out[1] = c1;
  out[2] = c2;
  out[3] = c3;
}

void nnft_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
  philox_block(ctr[0], ctr[1], ctr[2], ctr[3], key[0], key[1], out);
}

/* Blocks [block, block + NNFT_RNG_BLOCKS) of stream sid into out (4 words a block). */
static void blocks_scalar(const uint32_t key[2], uint64_t sid, uint64_t block, uint32_t *out) {
  for (int b = 0; b < NNFT_RNG_BLOCKS; b++) {
    uint64_t c = block + (uint64_t)b;
    philox_block((uint32_t)c, (uint32_t)(c >> 32), (uint32_t)sid, (uint32_t)(sid >> 32), key[0],
                 key[1], out + 4 * b);
  }
}

#ifdef NNFT_RNG_AVX2
/* The same with AVX2: each 64-bit lane holds one 32-bit word of one block, so vpmuludq gives
 * the full 64-bit products; 4 blocks a vector, 8 vectors interleaved to hide the multiply
 * latency. Integer arithmetic only: bitwise identical to blocks_scalar. */
#define AVX_GROUPS (NNFT_RNG_BLOCKS / 4)
__attribute__((target("avx2"))) static void blocks_avx2(const uint32_t key[2], uint64_t sid,
                                                        uint64_t block, uint32_t *out) {
  const __m256i mask = _mm256_set1_epi64x(0xffffffffLL);
  const __m256i m0 = _mm256_set1_epi64x(PHILOX_M0), m1 = _mm256_set1_epi64x(PHILOX_M1);
  __m256i x0[AVX_GROUPS], x1[AVX_GROUPS], x2[AVX_GROUPS], x3[AVX_GROUPS];
  for (int g = 0; g < AVX_GROUPS; g++) {
    long long lo[4], hi[4];
    for (int j = 0; j < 4; j++) {
      uint64_t c = block + (uint64_t)(4 * g + j);
      lo[j] = (long long)(c & 0xffffffffu);
      hi[j] = (long long)(c >> 32);
    }
    x0[g] = _mm256_set_epi64x(lo[3], lo[2], lo[1], lo[0]);
    x1[g] = _mm256_set_epi64x(hi[3], hi[2], hi[1], hi[0]);
    x2[g] = _mm256_set1_epi64x((long long)(sid & 0xffffffffu));
    x3[g] = _mm256_set1_epi64x((long long)(sid >> 32));
  }
  uint32_t k0 = key[0], k1 = key[1];
  for (int r = 0; r < PHILOX_ROUNDS; r++) {
    const __m256i kk0 = _mm256_set1_epi64x(k0), kk1 = _mm256_set1_epi64x(k1);
    for (int g = 0; g < AVX_GROUPS; g++) {
      __m256i p0 = _mm256_mul_epu32(x0[g], m0), p1 = _mm256_mul_epu32(x2[g], m1);
      __m256i y0 = _mm256_xor_si256(_mm256_xor_si256(_mm256_srli_epi64(p1, 32), x1[g]), kk0);
      __m256i y2 = _mm256_xor_si256(_mm256_xor_si256(_mm256_srli_epi64(p0, 32), x3[g]), kk1);
      x1[g] = _mm256_and_si256(p1, mask);
      x3[g] = _mm256_and_si256(p0, mask);
      x0[g] = y0;
      x2[g] = y2;
    }
    k0 += PHILOX_W0;
    k1 += PHILOX_W1;
  }
  for (int g = 0; g < AVX_GROUPS; g++) {
    /* lane j of t01 = w0 | w1 << 32 of block 4g+j; of t23 = w2 | w3 << 32 */
    __m256i t01 = _mm256_or_si256(x0[g], _mm256_slli_epi64(x1[g], 32));
    __m256i t23 = _mm256_or_si256(x2[g], _mm256_slli_epi64(x3[g], 32));
    __m256i a = _mm256_unpacklo_epi64(t01, t23); /* blocks 0 | 2 */
    __m256i b = _mm256_unpackhi_epi64(t01, t23); /* blocks 1 | 3 */
    _mm256_storeu_si256((__m256i *)(out + 16 * g), _mm256_permute2x128_si256(a, b, 0x20));
    _mm256_storeu_si256((__m256i *)(out + 16 * g + 8), _mm256_permute2x128_si256(a, b, 0x31));
  }
}
#endif

/* Compute the buffer for blocks starting at r->next_block. */
static void refill(nnft_rng *r) {
#ifdef NNFT_RNG_AVX2
  if (__builtin_cpu_supports("avx2"))
    blocks_avx2(r->key, r->sid, r->next_block, r->buf);
  else
#endif
    blocks_scalar(r->key, r->sid, r->next_block, r->buf);
  r->next_block += NNFT_RNG_BLOCKS;
  r->pos = 0;
}

/* Private, for the unit test: blocks [block, block + NNFT_RNG_BLOCKS) by implementation impl
 * (0 scalar, 1 AVX2); returns 0 if impl is not available on this machine. */
int nnft__rng_blocks(const uint32_t key[2], uint64_t sid, uint64_t block, int impl,
                     uint32_t *out) {
  if (impl == 0) {
    blocks_scalar(key, sid, block, out);
    return 1;
  }
#ifdef NNFT_RNG_AVX2
  if (impl == 1 && __builtin_cpu_supports("avx2")) {
    blocks_avx2(key, sid, block, out);
    return 1;
  }
#endif
  return 0;
}

/* ---------------- generator state ---------------- */

void nnft_rng_init(nnft_rng *r, uint64_t seed) {
  memset(r, 0, sizeof *r);
  r->key[0] = (uint32_t)seed;
  r->key[1] = (uint32_t)(seed >> 32);
  r->sid = 0;
  r->seed = seed;
  r->next_block = 0;
  r->pos = NNFT_RNG_WORDS;
}

nnft_status nnft_rng_substream(const nnft_rng *parent, uint64_t i, nnft_rng *child) {
  if (parent->depth == 0 && i == UINT64_MAX) return NNFT_EDOM;
  nnft_rng c;
  memset(&c, 0, sizeof c);
  c.seed = parent->seed;
  c.depth = parent->depth + 1;
  memcpy(c.path, parent->path, sizeof c.path);
  if (parent->depth < NNFT_RNG_PATH_MAX) c.path[parent->depth] = i;
  if (parent->depth == 0) {
    c.key[0] = parent->key[0];
    c.key[1] = parent->key[1];
    c.sid = i + 1;
  } else {
    uint32_t out[4];
    philox_block((uint32_t)parent->sid, (uint32_t)(parent->sid >> 32), (uint32_t)i,
                 (uint32_t)(i >> 32), parent->key[0] ^ DERIVE_K0, parent->key[1] ^ DERIVE_K1, out);
    c.key[0] = out[0];
    c.key[1] = out[1];
    c.sid = (uint64_t)out[2] | (uint64_t)out[3] << 32;
  }
  c.next_block = 0;
  c.pos = NNFT_RNG_WORDS;
  *child = c;
  return NNFT_OK;
}

uint64_t nnft_rng_tell(const nnft_rng *r) {
  return (r->next_block - NNFT_RNG_BLOCKS) * 4 + r->pos; /* modulo 2^64, exact at the start */
}

void nnft_rng_seek(nnft_rng *r, uint64_t word) {
  r->next_block = word / 4;
  refill(r);
  r->pos = (uint32_t)(word % 4);
}

static inline uint32_t next_u32(nnft_rng *r) {
  if (r->pos >= NNFT_RNG_WORDS) refill(r);
  return r->buf[r->pos++];
}

static inline uint64_t next_u64(nnft_rng *r) {
  if (r->pos <= NNFT_RNG_WORDS - 2) {
    uint64_t v = (uint64_t)r->buf[r->pos] | (uint64_t)r->buf[r->pos + 1] << 32;
    r->pos += 2;
    return v;
  }
  uint64_t lo = next_u32(r);
  return lo | (uint64_t)next_u32(r) << 32;
}

/* 53 random bits in [0, 1). */
static inline double u53(uint64_t v) { return (double)(int64_t)(v >> 11) * 0x1.0p-53; }

uint32_t nnft_rng_u32(nnft_rng *r) { return next_u32(r); }
uint64_t nnft_rng_u64(nnft_rng *r) { return next_u64(r); }
double nnft_rng_uniform(nnft_rng *r) { return u53(next_u64(r)); }

/* The 128-bit product a b as (high, low) 64-bit halves. */
static inline uint64_t mul_64x64(uint64_t a, uint64_t b, uint64_t *lo) {
#ifdef __SIZEOF_INT128__
  unsigned __int128 m = (unsigned __int128)a * b;
  *lo = (uint64_t)m;
  return (uint64_t)(m >> 64);
#else
  uint64_t a0 = (uint32_t)a, a1 = a >> 32, b0 = (uint32_t)b, b1 = b >> 32;
  uint64_t p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
  uint64_t mid = (p00 >> 32) + (uint32_t)p01 + (uint32_t)p10;
  *lo = (mid << 32) | (uint32_t)p00;
  return p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32);
#endif
}

uint64_t nnft_rng_below(nnft_rng *r, uint64_t n) {
  if (n == 0) return next_u64(r);
  uint64_t low, high = mul_64x64(next_u64(r), n, &low);
  if (low < n) {
    uint64_t t = (0 - n) % n; /* 2^64 mod n: the biased low products */
    while (low < t) high = mul_64x64(next_u64(r), n, &low);
  }
  return high;
}

/* ---------------- ziggurat normals ----------------
 * 256 layers of equal area v under f(x) = exp(-x^2/2): x[1] = r = 3.6541528853610088,
 * x[i+1] = f^-1(f(x[i]) + v / x[i]), x[256] = 0, and the base layer's virtual width
 * x[0] = v / f(r), with v = r f(r) + sqrt(pi/2) erfc(r/sqrt 2) = 0.004928673233974655.
 * Tables computed in long double (tests/c/test_rng.c recomputes them). A draw: u64 u,
 * layer i = u & 255, sign = bit 8, j = u >> 12 (52 bits), x = j zig_w[i]; accept at once if
 * j < zig_k[i] (x inside the next layer's width); otherwise the tail (i = 0) or the wedge test. */
#define ZIG_R 3.6541528853610088
/* ki[i] = floor(2^52 x[i+1]/x[i]) */
static const uint64_t zig_k[256] = {
    0xef33d8025ef65ULL, 0xf1a5a4b331c49ULL, 0xf66c5f7f0302cULL, 0xf89fa48a41dfbULL,
    0xf9e971e014597ULL, 0xfac40582a2873ULL, 0xfb606c4005433ULL, 0xfbd6581c0b839ULL,
    0xfc32b2f1e22ecULL, 0xfc7d26ecd2d22ULL, 0xfcba8d85e11b1ULL, 0xfcee204761f9eULL,
    0xfd1a1a7b4c7acULL, 0xfd40149e2f011ULL, 0xfd613adbd650bULL, 0xfd7e6ef48cf04ULL,
    0xfd985e1b2ba75ULL, 0xfdaf8f82e0282ULL, 0xfdc46e529bf12ULL, 0xfdd7509c63bfdULL,
    0xfde87c57efeaaULL, 0xfdf82b02b71aaULL, 0xfe068c4ee67afULL, 0xfe13c82788314ULL,
    0xfe20003995557ULL, 0xfe2b5122fe4fdULL, 0xfe35d35eeb19bULL, 0xfe3f9bffd1e37ULL,
    0xfe48bd436f457ULL, 0xfe51470977280ULL, 0xfe5947338f742ULL, 0xfe60c9f38307dULL,
    0xfe67da0b6abd8ULL, 0xfe6e8102aa201ULL, 0xfe74c751f6aa5ULL, 0xfe7ab488233bfULL,
    0xfe804f690a93fULL, 0xfe859e07ab1eaULL, 0xfe8aa5dc4e8e6ULL, 0xfe8f6bd76c5d6ULL,
    0xfe93f471d4728ULL, 0xfe9843ba947a3ULL, 0xfe9c5d62f563aULL, 0xfea044c8dd9f6ULL,
    0xfea3fcffd73e5ULL, 0xfea788d8ee326ULL, 0xfeaaeae992256ULL, 0xfeae2591a02e8ULL,
    0xfeb13b00b2d4bULL, 0xfeb42d3ad1f9eULL, 0xfeb6fe1c98542ULL, 0xfeb9af5ee0cdcULL,
    0xfebc429a0b691ULL, 0xfebeb948e6fd0ULL, 0xfec114cb4b334ULL, 0xfec356686c961ULL,
    0xfec57f50f31fdULL, 0xfec790a0da978ULL, 0xfec98b61230c0ULL, 0xfecb708956eb4ULL,
    0xfecd4100eb7b8ULL, 0xfecefda07fe33ULL, 0xfed0a732fe643ULL, 0xfed23e76a2fd7ULL,
    0xfed3c41dea422ULL, 0xfed538d06adffULL, 0xfed69d2b9c02aULL, 0xfed7f1c38a836ULL,
    0xfed937237e98cULL, 0xfeda6dce938c9ULL, 0xfedb964042cf3ULL, 0xfedcb0ece39d3ULL,
    0xfeddbe422047dULL, 0xfedebea76216cULL, 0xfedfb27e349cbULL, 0xfee09a22a1447ULL,
    0xfee175eb83c59ULL, 0xfee2462ad8204ULL, 0xfee30b2e02ad7ULL, 0xfee3c53e12c4fULL,
    0xfee474a0006ceULL, 0xfee51994e57b5ULL, 0xfee5b45a32888ULL, 0xfee64529e007fULL,
    0xfee6cc3a9bd5eULL, 0xfee749bff37ffULL, 0xfee7bdea7b887ULL, 0xfee828e7f3dfcULL,
    0xfee88ae369c79ULL, 0xfee8e40557515ULL, 0xfee93473c0a39ULL, 0xfee97c524f2e3ULL,
    0xfee9bbc26af2eULL, 0xfee9f2e352024ULL, 0xfeea21d22e4d9ULL, 0xfeea48aa29e82ULL,
    0xfeea678481d24ULL, 0xfeea7e7897653ULL, 0xfeea8d9c0075dULL, 0xfeea95029640fULL,
    0xfeea94be8333bULL, 0xfeea8ce04fa0aULL, 0xfeea7d76ed6f9ULL, 0xfeea668fc2d71ULL,
    0xfeea4836b42abULL, 0xfeea22762ccaeULL, 0xfee9f557273f3ULL, 0xfee9c0e13485bULL,
    0xfee9851a829ebULL, 0xfee94207e25daULL, 0xfee8f7accc851ULL, 0xfee8a60b66342ULL,
    0xfee84d2484ab2ULL, 0xfee7ecf7b06b9ULL, 0xfee7858327b81ULL, 0xfee716c3e077aULL,
    0xfee6a0b5897f0ULL, 0xfee623528b42dULL, 0xfee59e9407f41ULL, 0xfee51271db086ULL,
    0xfee47ee2982f3ULL, 0xfee3e3db89b3cULL, 0xfee34150ae4bbULL, 0xfee29734b6524ULL,
    0xfee1e579006dfULL, 0xfee12c0d95a06ULL, 0xfee06ae124bc4ULL, 0xfedfa1e0fd413ULL,
    0xfeded0f90997fULL, 0xfeddf813c8ad2ULL, 0xfedd171a46e52ULL, 0xfedc2df416652ULL,
    0xfedb3c8746ab3ULL, 0xfeda42b85b704ULL, 0xfed9406a42cc8ULL, 0xfed8357e4a981ULL,
    0xfed721d414fe8ULL, 0xfed605498c3dcULL, 0xfed4dfbad586dULL, 0xfed3b10242f4cULL,
    0xfed278f844903ULL, 0xfed1377358528ULL, 0xfecfec47f91b7ULL, 0xfece97488c8b3ULL,
    0xfecd38454fb15ULL, 0xfecbcf0c427feULL, 0xfeca5b6911f10ULL, 0xfec8dd2500cb4ULL,
    0xfec75406ceef4ULL, 0xfec5bfd29f196ULL, 0xfec42049dafd3ULL, 0xfec2752b15a14ULL,
    0xfec0be31ebde8ULL, 0xfebefb16e2e3dULL, 0xfebd2b8f449cfULL, 0xfebb4f4cf9d7cULL,
    0xfeb965fe62013ULL, 0xfeb76f4e284f9ULL, 0xfeb56ae3162b4ULL, 0xfeb3585fe2a4aULL,
    0xfeb13762fec12ULL, 0xfeaf07865e63cULL, 0xfeacc85f3d91fULL, 0xfeaa797de1cefULL,
    0xfea81a6d57419ULL, 0xfea5aab32952cULL, 0xfea329cf166a4ULL, 0xfea0973abe67bULL,
    0xfe9df2694b6d5ULL, 0xfe9b3ac714865ULL, 0xfe986fb939aa1ULL, 0xfe95909d388eaULL,
    0xfe929cc879b1cULL, 0xfe8f9387d4ef6ULL, 0xfe8c741f0cebcULL, 0xfe893dc840864ULL,
    0xfe85efb35173bULL, 0xfe8289053f08cULL, 0xfe7f08d774242ULL, 0xfe7b6e37070a1ULL,
    0xfe77b823e9e39ULL, 0xfe73e5900a701ULL, 0xfe6ff55e5f4f2ULL, 0xfe6be661e11aaULL,
    0xfe67b75c6d578ULL, 0xfe6366fd91077ULL, 0xfe5ef3e138689ULL, 0xfe5a5c8e41212ULL,
    0xfe559f74ebc77ULL, 0xfe50baed29524ULL, 0xfe4bad34c095bULL, 0xfe46746d47734ULL,
    0xfe410e99ead7eULL, 0xfe3b799d0002aULL, 0xfe35b33558d4aULL, 0xfe2fb8fb54186ULL,
    0xfe29885da1b91ULL, 0xfe231e9db1ca9ULL, 0xfe1c78cbc3f98ULL, 0xfe1593c28b84bULL,
    0xfe0e6c225a258ULL, 0xfe06fe4bc24f1ULL, 0xfdff46599ed3eULL, 0xfdf7401a6b42eULL,
    0xfdeee708d514eULL, 0xfde6364369f63ULL, 0xfddd288342f8fULL, 0xfdd3b8118729dULL,
    0xfdc9debb99a7dULL, 0xfdbf95c5bfcd0ULL, 0xfdb4d5dc02e1fULL, 0xfda9970105e8bULL,
    0xfd9dd07a7add2ULL, 0xfd9178bad2c8bULL, 0xfd848547b08e8ULL, 0xfd76ea9c8e832ULL,
    0xfd689c08e99ecULL, 0xfd598b8920f52ULL, 0xfd49a9990b479ULL, 0xfd38e4ff0c91eULL,
    0xfd272a8e2f450ULL, 0xfd1464dd6c4e5ULL, 0xfd007bf1dc930ULL, 0xfceb54d8fec99ULL,
    0xfcd4d12f839c4ULL, 0xfcbcce902231aULL, 0xfca325e4bde85ULL, 0xfc87aa92896a4ULL,
    0xfc6a2977aee30ULL, 0xfc4a67ae25bd1ULL, 0xfc2821037a248ULL, 0xfc03060ff6c57ULL,
    0xfbdab9d040bedULL, 0xfbaece9a1e50cULL, 0xfb7ec2366fe77ULL, 0xfb49f8d5374c5ULL,
    0xfb0fb6718b90eULL, 0xfacf160d354dbULL, 0xfa86fde5b4bf8ULL, 0xfa360f581fa72ULL,
    0xf9da907dbf508ULL, 0xf9724c74dd0daULL, 0xf8fa6578325ddULL, 0xf86f10c6357d2ULL,
    0xf7cb2ec28449bULL, 0xf707a755396a4ULL, 0xf61a5e41ba396ULL, 0xf4f469561255bULL,
    0xf37ed61ffcb17ULL, 0xf19470afa44abULL, 0xeef4b817ecab8ULL, 0xeb255e9d3f77eULL,
    0xe51f67ec1eeecULL, 0xda354fabd8146ULL, 0xc08be98fbc6b6ULL, 0x0000000000000ULL,
};
/* wi[i] = x[i] 2^-52 */
static const double zig_w[256] = {
    8.683627060801315e-16, 8.1138493376564842e-16, 7.6589363708055718e-16,
    7.3724243017987979e-16, 7.1599949348306632e-16, 6.98971833638762e-16,
    6.8468034175642588e-16, 6.7231504625055856e-16, 6.6138278850976632e-16,
    6.5156033173449926e-16, 6.4262396595480544e-16, 6.344122407127505e-16,
    6.2680469633012834e-16, 6.1970898945816256e-16, 6.1305272087252806e-16,
    6.0677804093334485e-16, 6.0083796962719083e-16, 5.9519381496414451e-16,
    5.8981331764779004e-16, 5.84669289345548e-16, 5.7973859457245946e-16,
    5.7500137689198962e-16, 5.7044046212913901e-16, 5.6604089200824232e-16,
    5.6178955535554167e-16, 5.5767489329265775e-16, 5.536866612467876e-16,
    5.4981573508928141e-16, 5.4605395190747804e-16, 5.4239397822017123e-16,
    5.3882920013340532e-16, 5.3535363118164969e-16, 5.3196183453384004e-16,
    5.2864885695049451e-16, 5.2541017241775973e-16, 5.2224163380002343e-16,
    5.1913943117576996e-16, 5.1610005577432282e-16, 5.1312026863067837e-16,
    5.1019707323415618e-16, 5.0732769157335421e-16, 5.0450954308187285e-16,
    5.0174022607180904e-16, 4.9901750130918225e-16, 4.9633927744039873e-16,
    4.9370359802403355e-16, 4.9110862995952705e-16, 4.8855265313536044e-16,
    4.8603405114508129e-16, 4.8355130294115271e-16, 4.8110297531474192e-16,
    4.7868771610487248e-16, 4.7630424805331393e-16, 4.7395136323258691e-16,
    4.7162791798383533e-16, 4.6933282830933299e-16, 4.6706506567126326e-16,
    4.6482365315432084e-16, 4.6260766195478467e-16, 4.6041620816311538e-16,
    4.5824844981095677e-16, 4.561035841567423e-16, 4.539808451870034e-16,
    4.5187950131300588e-16, 4.4979885324455497e-16, 4.4773823202475339e-16,
    4.4569699721120431e-16, 4.4367453519065673e-16, 4.4167025761542035e-16,
    4.3968359995105214e-16, 4.3771402012585875e-16, 4.357609972736849e-16,
    4.3382403056227908e-16, 4.3190263810026294e-16, 4.2999635591638323e-16,
    4.2810473700531167e-16, 4.2622735043477981e-16, 4.2436378050930775e-16,
    4.2251362598620484e-16, 4.2067649933990141e-16, 4.1885202607101108e-16,
    4.1703984405683144e-16, 4.1523960294026869e-16, 4.134509635544235e-16,
    4.1167359738030247e-16, 4.0990718603532659e-16, 4.0815142079049387e-16,
    4.0640600211422504e-16, 4.04670639241075e-16, 4.0294504976363279e-16,
    4.0122895924606291e-16, 3.995221008578565e-16, 3.9782421502646826e-16,
    3.9613504910761354e-16, 3.9445435707208771e-16, 3.927818992080542e-16,
    3.9111744183782054e-16, 3.8946075704819262e-16, 3.8781162243355867e-16,
    3.8616982085091493e-16, 3.8453514018609596e-16, 3.8290737313052437e-16,
    3.8128631696783779e-16, 3.7967177336979448e-16, 3.7806354820089609e-16,
    3.7646145133120292e-16, 3.7486529645684892e-16, 3.7327490092779445e-16,
    3.7169008558238235e-16, 3.7011067458828993e-16, 3.685364952894915e-16,
    3.6696737805887024e-16, 3.6540315615613714e-16, 3.6384366559073459e-16,
    3.6228874498941935e-16, 3.6073823546823529e-16, 3.5919198050860314e-16,
    3.5764982583726515e-16, 3.5611161930983894e-16, 3.5457721079774367e-16,
    3.5304645207827406e-16, 3.5151919672760749e-16, 3.499953000165382e-16,
    3.4847461880874147e-16, 3.4695701146137845e-16, 3.4544233772785845e-16,
    3.4393045866258318e-16, 3.4242123652750187e-16, 3.4091453470031265e-16,
    3.3941021758414901e-16, 3.3790815051859503e-16, 3.3640819969187656e-16,
    3.3491023205407789e-16, 3.3341411523123725e-16, 3.3191971744017523e-16,
    3.3042690740391289e-16, 3.2893555426753702e-16, 3.2744552751437072e-16,
    3.2595669688230789e-16, 3.2446893228016983e-16, 3.2298210370394161e-16,
    3.2149608115274475e-16, 3.2001073454440119e-16, 3.1852593363044075e-16,
    3.1704154791040295e-16, 3.1555744654528016e-16, 3.1407349826994472e-16,
    3.1258957130439999e-16, 3.111055332636894e-16, 3.0962125106629235e-16,
    3.0813659084082982e-16, 3.0665141783089555e-16, 3.0516559629782197e-16,
    3.0367898942118023e-16, 3.0219145919680625e-16, 3.0070286633213315e-16,
    2.9921307013860136e-16, 2.9772192842090294e-16, 2.962292973628067e-16,
    2.9473503140929354e-16, 2.9323898314471826e-16, 2.917410031666946e-16,
    2.9024093995538428e-16, 2.8873863973784824e-16, 2.8723394634709804e-16,
    2.857267010754602e-16, 2.8421674252184071e-16, 2.8270390643244797e-16,
    2.8118802553450217e-16, 2.796689293624231e-16, 2.7814644407595451e-16,
    2.7662039226963913e-16, 2.7509059277301681e-16, 2.7355686044086806e-16,
    2.7201900593277335e-16, 2.7047683548119962e-16, 2.6893015064726169e-16,
    2.6737874806323648e-16, 2.6582241916083083e-16, 2.642609498841191e-16,
    2.6269412038597266e-16, 2.6112170470670204e-16, 2.5954347043351712e-16,
    2.5795917833928682e-16, 2.5636858199893978e-16, 2.5477142738169457e-16,
    2.5316745241713597e-16, 2.5155638653296593e-16, 2.4993795016204544e-16,
    2.4831185421610892e-16, 2.466777995232707e-16, 2.4503547622614969e-16,
    2.4338456313711043e-16, 2.4172472704675035e-16, 2.4005562198135073e-16,
    2.3837688840454258e-16, 2.3668815235791619e-16, 2.3498902453470975e-16,
    2.3327909928004376e-16, 2.3155795351040818e-16, 2.2982514554424704e-16,
    2.280802138345019e-16, 2.2632267559285693e-16, 2.245520252941437e-16,
    2.2276773304789563e-16, 2.209692428223533e-16, 2.1915597050427281e-16,
    2.1732730177564377e-16, 2.1548258978581468e-16, 2.1362115259449878e-16,
    2.1174227035760352e-16, 2.0984518222370362e-16, 2.0792908290414027e-16,
    2.0599311887403719e-16, 2.0403638415480222e-16, 2.0205791562071661e-16,
    2.000566877627334e-16, 1.9803160683128186e-16, 1.9598150426628837e-16,
    1.9390512930625121e-16, 1.9180114064838635e-16, 1.8966809700774774e-16,
    1.8750444639373896e-16, 1.8530851388618034e-16, 1.8307848764826765e-16,
    1.8081240285799165e-16, 1.7850812316976745e-16, 1.7616331923001011e-16,
    1.7377544365864874e-16, 1.7134170176559673e-16, 1.6885901708676611e-16,
    1.663239905842085e-16, 1.637328520396987e-16, 1.6108140175274945e-16,
    1.5836494009290903e-16, 1.5557818169460781e-16, 1.5271515003596215e-16,
    1.4976904668391052e-16, 1.4673208742364434e-16, 1.4359529452056958e-16,
    1.4034823001242394e-16, 1.3697864842571216e-16, 1.3347203736824135e-16,
    1.2981099886264044e-16, 1.2597439914637105e-16, 1.2193617278714378e-16,
    1.1766359457022938e-16, 1.1311470196109048e-16, 1.08234302884477e-16,
    1.0294750314241035e-16, 9.7148600765677816e-17, 9.0680604050595008e-17,
    8.3293668157931182e-17, 7.454870481247716e-17, 6.3543524174052845e-17,
    4.7793301757277738e-17,
};
/* fi[i] = exp(-x[i]^2/2) */
static const double zig_f[257] = {
    0.00047746776460938755, 0.0012602859304985975, 0.0026090727461021632,
    0.0040379725933630305, 0.0055224032992509976, 0.0070508754713732268,
    0.0086165827693987316, 0.010214971439701471, 0.011842757857907889,
    0.01349745060173988, 0.015177088307935327, 0.01688008315254317,
    0.018605121275724647, 0.020351096230044521, 0.022117062707308868,
    0.023902203305795882, 0.025705804008548896, 0.027527235669603085,
    0.029365939758133317, 0.031221417191920248, 0.033093219458578522,
    0.034980941461716084, 0.036884215688567291, 0.03880270740452612,
    0.040736110655940933, 0.042684144916474438, 0.04464655225129445,
    0.046623094901930368, 0.048613553215868528, 0.050617723860947768,
    0.052635418276792183, 0.054666461324888921, 0.056710690106202902,
    0.058767952920933765, 0.060838108349539871, 0.062921024437758127,
    0.065016577971242856, 0.067124653827788497, 0.069245144397006769,
    0.071377949058890375, 0.073522973713981268, 0.075680130358927081,
    0.077849336702096053, 0.080030515814663056, 0.082223595813202863,
    0.084428509570353374, 0.086645194450557961, 0.088873592068275803,
    0.091113648066373634, 0.093365311912690874, 0.095628536713008833,
    0.097903279038862298, 0.10018949876880982, 0.10248715894193509,
    0.1047962256224869, 0.10711666777468365, 0.10944845714681165,
    0.11179156816383801, 0.11414597782783836, 0.11651166562561081,
    0.11888861344290999, 0.12127680548479022, 0.12367622820159656,
    0.12608687022018586, 0.12850872227999954, 0.13094177717364433,
    0.13338602969166913, 0.13584147657125373, 0.13830811644855073,
    0.1407859498144447, 0.14327497897351343, 0.14577520800599406,
    0.14828664273257455, 0.1508092906818457, 0.15334316106026286,
    0.15588826472447923, 0.15844461415592431, 0.16101222343751109,
    0.16359110823236572, 0.16618128576448207, 0.16878277480121151,
    0.17139559563750595, 0.17401977008183878, 0.176655321443735,
    0.17930227452284767, 0.18196065559952257, 0.18463049242679927,
    0.18731181422380028, 0.19000465167046499, 0.19270903690358915,
    0.19542500351413428, 0.19815258654577514, 0.20089182249465659,
    0.20364274931033488, 0.20640540639788074, 0.20917983462112502,
    0.21196607630703018, 0.21476417525117361, 0.21757417672433116,
    0.22039612748015197, 0.22323007576391746, 0.22607607132238022,
    0.22893416541468026, 0.23180441082433861, 0.23468686187232993,
    0.23758157443123798, 0.24048860594050042, 0.24340801542275015,
    0.24633986350126366, 0.24928421241852827, 0.25224112605594196,
    0.25521066995466168, 0.25819291133761896, 0.26118791913272088,
    0.2641957639972608, 0.26721651834356114, 0.27025025636587524,
    0.27329705406857691, 0.2763569892956681, 0.27943014176163777,
    0.28251659308370747, 0.28561642681550159, 0.28872972848218276,
    0.29185658561709504, 0.2949970877999617, 0.29815132669668537,
    0.30131939610080294, 0.30450139197664983, 0.30769741250429195,
    0.31090755812628634, 0.31413193159633712, 0.3173706380299135,
    0.32062378495690536, 0.32389148237639109, 0.32717384281360135,
    0.33047098137916342, 0.33378301583071829, 0.33711006663700593,
    0.3404522570445217, 0.3438097131468506, 0.34718256395679353,
    0.35057094148140594, 0.35397498080007661, 0.35739482014578028,
    0.36083060098964781, 0.36428246812900378, 0.36775056977903231,
    0.37123505766823928, 0.37473608713789092, 0.37825381724561896,
    0.38178841087339344, 0.38534003484007712, 0.3889088600187886,
    0.3924950614593154, 0.39609881851583223, 0.39972031498019706,
    0.40335973922111434, 0.40701728432947321, 0.41069314827018805,
    0.41438753404089096, 0.418100649837848, 0.42183270922949578,
    0.42558393133802186, 0.42935454102944132, 0.43314476911265215,
    0.43695485254798538, 0.44078503466580382, 0.44463556539573917,
    0.44850670150720279, 0.4523987068618483, 0.45631185267871616,
    0.46024641781284253, 0.46420268904817402, 0.46818096140569326,
    0.47218153846772981, 0.47620473271950553, 0.48025086590904648,
    0.48432026942668294, 0.48841328470545764, 0.4925302636438682,
    0.49667156905248938, 0.50083757512614846, 0.5050286679434679,
    0.50924524599574761, 0.51348772074732663, 0.51775651722975591,
    0.52205207467232151, 0.52637484717168403, 0.53072530440366161,
    0.53510393238045717, 0.53951123425695169, 0.54394773119002582,
    0.54841396325526548, 0.55291049042583196, 0.55743789361876561,
    0.56199677581452401, 0.566587763256164, 0.57121150673525278,
    0.57586868297235327, 0.58055999610079045, 0.5852861792633709,
    0.59004799633282556, 0.594846243767987, 0.59968175261912493,
    0.60455539069746744, 0.6094680649257731, 0.61442072388891356,
    0.6194143606058341, 0.62445001554702617, 0.62952877992483636,
    0.63465179928762327, 0.63982027745305625, 0.64503548082082207,
    0.65029874311081648, 0.65561147057969704, 0.66097514777666289,
    0.66639134390874988, 0.67186171989708177, 0.67738803621877308,
    0.68297216164499441, 0.68861608300467136, 0.69432191612611638,
    0.70009191813651128, 0.70592850133275387, 0.71183424887824809,
    0.71781193263072163, 0.72386453346862978, 0.72999526456147579,
    0.73620759812686232, 0.74250529634015072, 0.74889244721915649,
    0.75537350650709578, 0.76195334683679494, 0.76863731579848582,
    0.77543130498118673, 0.78234183265480206, 0.78937614356602415,
    0.79654233042295863, 0.80384948317096394, 0.81130787431265594,
    0.81892919160370203, 0.82672683394622104, 0.83471629298688321,
    0.84291565311220396, 0.85134625845867773, 0.8600336211963312,
    0.86900868803685671, 0.87830965580891707, 0.88798466075583304,
    0.89809592189834309, 0.90872644005213055, 0.91999150503934668,
    0.93206007595923013, 0.94519895344229932, 0.95987909180010633,
    0.97710170126767126, 1,
};

/* The tables, for tests/c/test_rng.c to check against their definition. */
void nnft__rng_zig_tables(const uint64_t **k, const double **w, const double **f) {
  *k = zig_k;
  *w = zig_w;
  *f = zig_f;
}

static double zig_slow(nnft_rng *r, uint64_t u);

static inline double zig_normal(nnft_rng *r) {
  uint64_t u = next_u64(r);
  unsigned i = (unsigned)(u & 0xff);
  uint64_t j = u >> 12;
  if (j < zig_k[i]) {
    static const double sign[2] = {1.0, -1.0};
    return sign[(u >> 8) & 1] * ((double)(int64_t)j * zig_w[i]);
  }
  return zig_slow(r, u);
}

/* The rare paths (0.7% of draws): Marsaglia's tail beyond r, the wedges, and retries. */
static double zig_slow(nnft_rng *r, uint64_t u) {
  for (;;) {
    unsigned i = (unsigned)(u & 0xff);
    uint64_t j = u >> 12;
    double sign = (u & 0x100) ? -1.0 : 1.0;
    double x = (double)(int64_t)j * zig_w[i];
    if (j < zig_k[i]) return sign * x;
    if (i == 0) { /* tail x > r: exponential proposal, accepted with prob exp(-xx^2/2) */
      double xx, yy;
      do {
        xx = -log1p(-nnft_rng_uniform(r)) / ZIG_R; /* -log(U), U in (0, 1] */
        yy = -log1p(-nnft_rng_uniform(r));
      } while (yy + yy < xx * xx);
      return sign * (ZIG_R + xx);
    }
    /* wedge of layer i: y uniform between f(x[i]) and f(x[i+1]) */
    double y = zig_f[i] + nnft_rng_uniform(r) * (zig_f[i + 1] - zig_f[i]);
    if (y < exp(-0.5 * x * x)) return sign * x;
    u = next_u64(r);
  }
}

double nnft_rng_normal(nnft_rng *r) { return zig_normal(r); }

/* ---------------- bulk fills ---------------- */

#define POLL_EVERY 65536
#define NNFT_PI 3.14159265358979323846

static int bad_uniform(double a, double b) {
  return !(isfinite(a) && isfinite(b) && a < b && isfinite(b - a));
}

/* The hot loops read 64-bit draws straight from the buffer: m = the number of whole draws
 * (word pairs) readable in place, at most `want`; 0 when fewer than two words are left (then one
 * draw goes through next_u64, which refills). Same words in the same order as next_u64. */
static inline size_t pairs_in_place(const nnft_rng *r, size_t want) {
  size_t m = (NNFT_RNG_WORDS - r->pos) / 2;
  return m < want ? m : want;
}

static inline uint64_t pair_at(const uint32_t *w, size_t t) {
  return (uint64_t)w[2 * t] | (uint64_t)w[2 * t + 1] << 32;
}

nnft_status nnft_rng_fill_uniform(nnft_rng *r, double *x, size_t n, double a, double b) {
  if (bad_uniform(a, b)) return NNFT_EDOM;
  const double w = b - a, top = nextafter(b, a);
  size_t k = 0;
  while (k < n) {
    if (k % POLL_EVERY < NNFT_RNG_BLOCKS * 2 && nnft_interrupted()) return NNFT_EINTR;
    size_t m = pairs_in_place(r, n - k);
    if (m == 0) {
      double v = a + w * u53(next_u64(r));
      x[k++] = v < top ? v : top;
      continue;
    }
    const uint32_t *src = r->buf + r->pos;
    double *restrict dst = x + k;
    for (size_t t = 0; t < m; t++) {
      double v = a + w * u53(pair_at(src, t));
      dst[t] = v < top ? v : top;
    }
    r->pos += (uint32_t)(2 * m);
    k += m;
  }
  return NNFT_OK;
}

nnft_status nnft_rng_fill_normal(nnft_rng *r, double *x, size_t n, double mean, double sd) {
  if (!isfinite(mean) || !(sd >= 0) || !isfinite(sd)) return NNFT_EDOM;
  size_t k = 0;
  while (k < n) {
    if (k % POLL_EVERY < NNFT_RNG_BLOCKS * 2 && nnft_interrupted()) return NNFT_EINTR;
    size_t m = pairs_in_place(r, n - k);
    if (m == 0) {
      x[k++] = mean + sd * zig_normal(r);
      continue;
    }
    const uint32_t *src = r->buf + r->pos;
    double *restrict dst = x + k;
    const double sds[2] = {sd, -sd}; /* indexed by the sign bit: no unpredictable branch */
    size_t t = 0;
    for (; t < m; t++) { /* the ziggurat's fast path, inline */
      uint64_t u = pair_at(src, t);
      unsigned i = (unsigned)(u & 0xff);
      uint64_t j = u >> 12;
      if (j >= zig_k[i]) break;
      double z = (double)(int64_t)j * zig_w[i];
      dst[t] = mean + sds[(u >> 8) & 1] * z;
    }
    if (t < m) { /* a rare rejection: the slow path draws more from the stream */
      r->pos += (uint32_t)(2 * (t + 1));
      dst[t] = mean + sd * zig_slow(r, pair_at(src, t));
      k += t + 1;
    } else {
      r->pos += (uint32_t)(2 * m);
      k += m;
    }
  }
  return NNFT_OK;
}

nnft_status nnft_rng_fill_phases(nnft_rng *r, double *x, size_t n) {
  /* 2u - 1 is exact; |pi (2u - 1)| < pi after rounding, so the range is [-pi, pi) */
  size_t k = 0;
  while (k < n) {
    if (k % POLL_EVERY < NNFT_RNG_BLOCKS * 2 && nnft_interrupted()) return NNFT_EINTR;
    size_t m = pairs_in_place(r, n - k);
    if (m == 0) {
      x[k++] = NNFT_PI * (2.0 * u53(next_u64(r)) - 1.0);
      continue;
    }
    const uint32_t *src = r->buf + r->pos;
    double *restrict dst = x + k;
    for (size_t t = 0; t < m; t++) dst[t] = NNFT_PI * (2.0 * u53(pair_at(src, t)) - 1.0);
    r->pos += (uint32_t)(2 * m);
    k += m;
  }
  return NNFT_OK;
}

nnft_status nnft_rng_mat_uniform(nnft_rng *r, nnft_mat *m, double a, double b) {
  if (bad_uniform(a, b)) return NNFT_EDOM;
  for (size_t j = 0; j < m->cols; j++) {
    nnft_status s = nnft_rng_fill_uniform(r, m->data + j * m->ld, m->rows, a, b);
    if (s) return s;
  }
  return NNFT_OK;
}

nnft_status nnft_rng_mat_normal(nnft_rng *r, nnft_mat *m, double mean, double sd) {
  if (!isfinite(mean) || !(sd >= 0) || !isfinite(sd)) return NNFT_EDOM;
  for (size_t j = 0; j < m->cols; j++) {
    nnft_status s = nnft_rng_fill_normal(r, m->data + j * m->ld, m->rows, mean, sd);
    if (s) return s;
  }
  return NNFT_OK;
}

nnft_status nnft_rng_mat_phases(nnft_rng *r, nnft_mat *m) {
  for (size_t j = 0; j < m->cols; j++) {
    nnft_status s = nnft_rng_fill_phases(r, m->data + j * m->ld, m->rows);
    if (s) return s;
  }
  return NNFT_OK;
}

nnft_status nnft_rng_ball(nnft_rng *r, double R, nnft_mat *out) {
  const size_t n = out->rows, d = out->cols, ld = out->ld;
  if (!(R > 0) || !isfinite(R) || d < 1) return NNFT_EDOM;
  const double inv_d = 1.0 / (double)d, R2 = R * R;
  double *p = out->data;
  for (size_t i = 0; i < n; i++) {
    if (i % 4096 == 0 && nnft_interrupted()) return NNFT_EINTR;
    double s2;
    do {
      s2 = 0;
      for (size_t j = 0; j < d; j++) {
        double g = zig_normal(r);
        p[i + j * ld] = g;
        s2 += g * g;
      }
    } while (s2 == 0);
    double u = nnft_rng_uniform(r);
    double rad = d == 1 ? R * u : R * pow(u, inv_d);
    double scale = rad / sqrt(s2);
    for (;;) { /* rounding must never put a point outside the ball */
      double t2 = 0;
      for (size_t j = 0; j < d; j++) {
        double v = p[i + j * ld] * scale;
        t2 += v * v;
      }
      if (t2 <= R2) break;
      scale *= 1 - 0x1.0p-50;
    }
    for (size_t j = 0; j < d; j++) p[i + j * ld] *= scale;
  }
  return NNFT_OK;
}

void nnft_rng_permutation(nnft_rng *r, size_t n, size_t *perm) {
  for (size_t i = 0; i < n; i++) perm[i] = i;
  for (size_t i = n; i > 1; i--) {
    size_t k = (size_t)nnft_rng_below(r, (uint64_t)i);
    size_t t = perm[i - 1];
    perm[i - 1] = perm[k];
    perm[k] = t;
  }
}

/* ---------------- GSL adapter ---------------- */

static void gsl_set(void *state, unsigned long seed) { nnft_rng_init(state, (uint64_t)seed); }
static unsigned long gsl_get(void *state) { return next_u32(state); }
static double gsl_get_double(void *state) { return nnft_rng_uniform(state); }

static const gsl_rng_type gsl_philox = {"nnft-philox4x32-10", 0xffffffffUL, 0, sizeof(nnft_rng),
                                        gsl_set, gsl_get, gsl_get_double};
const gsl_rng_type *nnft_rng_gsl_type = &gsl_philox;

void nnft_rng_as_gsl(nnft_rng *r, gsl_rng *g) {
  g->type = &gsl_philox;
  g->state = r;
}

static int dist_params_ok(nnft_rng_dist dist, double p1, double p2) {
  if (!isfinite(p1) || !isfinite(p2)) return 0;
  switch (dist) {
  case NNFT_RNG_GAMMA:
  case NNFT_RNG_BETA: return p1 > 0 && p2 > 0;
  case NNFT_RNG_POISSON: return p1 >= 0 && p1 <= 1e9;
  case NNFT_RNG_CHISQ:
  case NNFT_RNG_STUDENT_T:
  case NNFT_RNG_EXPONENTIAL:
  case NNFT_RNG_CAUCHY:
  case NNFT_RNG_LAPLACE: return p1 > 0;
  case NNFT_RNG_LOGNORMAL: return p2 >= 0;
  }
  return 0;
}

static double dist_draw(gsl_rng *g, nnft_rng_dist dist, double p1, double p2) {
  switch (dist) {
  case NNFT_RNG_GAMMA: return gsl_ran_gamma(g, p1, p2);
  case NNFT_RNG_BETA: return gsl_ran_beta(g, p1, p2);
  case NNFT_RNG_POISSON: return (double)gsl_ran_poisson(g, p1);
  case NNFT_RNG_CHISQ: return gsl_ran_chisq(g, p1);
  case NNFT_RNG_STUDENT_T: return gsl_ran_tdist(g, p1);
  case NNFT_RNG_EXPONENTIAL: return gsl_ran_exponential(g, p1);
  case NNFT_RNG_CAUCHY: return gsl_ran_cauchy(g, p1);
  case NNFT_RNG_LAPLACE: return gsl_ran_laplace(g, p1);
  case NNFT_RNG_LOGNORMAL: return gsl_ran_lognormal(g, p1, p2);
  }
  return NAN;
}

nnft_status nnft_rng_mat_dist(nnft_rng *r, nnft_rng_dist dist, double p1, double p2,
                              nnft_mat *m) {
  if (!dist_params_ok(dist, p1, p2)) return NNFT_EDOM;
  gsl_rng g;
  nnft_rng_as_gsl(r, &g);
  for (size_t j = 0; j < m->cols; j++) {
    if (nnft_interrupted()) return NNFT_EINTR;
    double *col = m->data + j * m->ld;
    for (size_t i = 0; i < m->rows; i++) {
      if (i % POLL_EVERY == POLL_EVERY - 1 && nnft_interrupted()) return NNFT_EINTR;
      col[i] = dist_draw(&g, dist, p1, p2);
    }
  }
  return NNFT_OK;
}
