/* Tests of nnft_rng: Philox known answers, the stream layout, reproducibility, independence of
 * streams, moments and Kolmogorov–Smirnov tests of the samplers, the GSL adapter, bad input.
 *
 * Statistical checks run at fixed seeds with tolerances of 5 standard errors (stated at each
 * check), so they are deterministic: a failure means a change of behaviour, not bad luck. */
#include <gsl/gsl_cdf.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nnft_alloc.h"
#include "nnft_rng.h"
#include "test_util.h"

#ifdef _OPENMP
#include <omp.h>
#endif

#define NSE 5.0 /* tolerance of the statistical checks, in standard errors */

static double *dalloc(size_t n) { return nnft_alloc(n * sizeof(double)); }

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Kolmogorov–Smirnov statistic sqrt(n) D of x (sorted in place) against the CDF F. */
static double ks_stat(double *x, size_t n, double (*F)(double, const void *), const void *par) {
  qsort(x, n, sizeof *x, cmp_double);
  double d = 0;
  for (size_t i = 0; i < n; i++) {
    double f = F(x[i], par);
    double lo = f - (double)i / (double)n, hi = (double)(i + 1) / (double)n - f;
    if (lo > d) d = lo;
    if (hi > d) d = hi;
  }
  return sqrt((double)n) * d;
}
/* P(sqrt(n) D > 1.95) ~ 0.001 under the null (Kolmogorov distribution). */
#define KS_CRIT 1.95

static double cdf_normal(double x, const void *p) { (void)p; return gsl_cdf_ugaussian_P(x); }
static double cdf_tail(double x, const void *p) { /* P(|z| < x | |z| > r) */
  double r = *(const double *)p;
  return 1 - gsl_cdf_ugaussian_Q(x) / gsl_cdf_ugaussian_Q(r);
}
static double cdf_radius(double x, const void *p) {
  const double *rd = p; /* R, d */
  return pow(x / rd[0], rd[1]);
}

/* ---- Philox known-answer vectors (Random123 kat_vectors, philox4x32 10) ---- */
static void test_kat(void) {
  static const uint32_t v[3][10] = {
      {0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
      {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0x408f276d,
       0x41c83b0e, 0xa20bc7c6, 0x6d5451fd},
      {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, 0xd16cfe09,
       0x94fdcceb, 0x5001e420, 0x24126ea1}};
  for (int t = 0; t < 3; t++) {
    uint32_t out[4];
    nnft_philox4x32_10(v[t], v[t] + 4, out);
    for (int k = 0; k < 4; k++) CHECK(out[k] == v[t][6 + k]);
  }
  /* The same vectors through a generator: KAT 3 is key = seed 0x299f31d0a4093822, stream id
   * 0x0370734413198a2e, block 0x85a308d3243f6a88; reach it with seek (buffered, and vectorised
   * where AVX2 exists, so this also checks the bulk path against the reference). */
  nnft_rng r;
  nnft_rng_init(&r, 0x299f31d0a4093822ull);
  r.sid = 0x0370734413198a2eull;
  r.next_block = 0x85a308d3243f6a88ull; /* beyond what a word index can address: set directly */
  r.pos = NNFT_RNG_WORDS;
  for (int k = 0; k < 4; k++) CHECK(nnft_rng_u32(&r) == v[2][6 + k]);
  nnft_rng_init(&r, 0);
  for (int k = 0; k < 4; k++) CHECK(nnft_rng_u32(&r) == v[0][6 + k]);
}

/* ---- both block implementations (scalar, AVX2) agree with the reference ---- */
static void test_impls(void) {
  const uint32_t key[2] = {0xa4093822, 0x299f31d0};
  const uint64_t sids[2] = {0, 0x0370734413198a2eull};
  const uint64_t starts[3] = {0, 0xffffffffull - 5, UINT64_MAX - 7}; /* carries and wrap */
  for (int impl = 0; impl < 2; impl++)
    for (int a = 0; a < 2; a++)
      for (int b = 0; b < 3; b++) {
        uint32_t out[4 * NNFT_RNG_BLOCKS];
        if (!nnft__rng_blocks(key, sids[a], starts[b], impl, out)) {
          printf("test_rng: block implementation %d not available here\n", impl);
          continue;
        }
        int ok = 1;
        for (int k = 0; k < NNFT_RNG_BLOCKS; k++) {
          uint64_t n = starts[b] + (uint64_t)k;
          uint32_t c[4] = {(uint32_t)n, (uint32_t)(n >> 32), (uint32_t)sids[a],
                           (uint32_t)(sids[a] >> 32)}, w[4];
          nnft_philox4x32_10(c, key, w);
          ok &= memcmp(w, out + 4 * k, sizeof w) == 0;
        }
        CHECK(ok);
      }
}

/* ---- the documented stream layout ---- */
static void test_layout(void) {
  const uint64_t seed = 0x0123456789abcdefull;
  const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
  nnft_rng root, s;
  nnft_rng_init(&root, seed);
  CHECK_STATUS(nnft_rng_substream(&root, 6, &s), NNFT_OK); /* Lua's stream(7) */
  /* many blocks, across refills and across the 2^32 boundary of the block index */
  const uint64_t starts[3] = {0, 1000, 0xfffffff0ull};
  for (int t = 0; t < 3; t++) {
    nnft_rng a = root, b = s;
    nnft_rng_seek(&a, starts[t] * 4);
    nnft_rng_seek(&b, starts[t] * 4);
    int ok = 1;
    for (uint64_t n = starts[t]; n < starts[t] + 100; n++) {
      uint32_t c0[4] = {(uint32_t)n, (uint32_t)(n >> 32), 0, 0}, c1[4] = {(uint32_t)n,
                                                                       (uint32_t)(n >> 32), 7, 0};
      uint32_t w0[4], w1[4];
      nnft_philox4x32_10(c0, key, w0);
      nnft_philox4x32_10(c1, key, w1);
      for (int k = 0; k < 4; k++) {
        ok &= nnft_rng_u32(&a) == w0[k];
        ok &= nnft_rng_u32(&b) == w1[k];
      }
    }
    CHECK(ok);
  }
  /* u64 = w[k] | w[k+1] << 32, and tell/seek count words */
  nnft_rng a = root, b = root;
  uint32_t w0 = nnft_rng_u32(&a), w1 = nnft_rng_u32(&a);
  CHECK(nnft_rng_u64(&b) == ((uint64_t)w0 | (uint64_t)w1 << 32));
  CHECK(nnft_rng_tell(&b) == 2);
  nnft_rng_init(&a, seed);
  CHECK(nnft_rng_tell(&a) == 0);
  for (int k = 0; k < 301; k++) nnft_rng_u32(&a);
  CHECK(nnft_rng_tell(&a) == 301);
  uint32_t next = nnft_rng_u32(&a);
  nnft_rng_seek(&b, 301);
  CHECK(nnft_rng_u32(&b) == next);
  /* uniform: the top 53 bits */
  nnft_rng_init(&a, 5);
  nnft_rng_init(&b, 5);
  CHECK(nnft_rng_uniform(&a) == (double)(nnft_rng_u64(&b) >> 11) * 0x1.0p-53);
  /* depth, path, seed bookkeeping */
  nnft_rng c;
  nnft_rng_substream(&s, 2, &c);
  CHECK(c.depth == 2 && c.path[0] == 6 && c.path[1] == 2 && c.seed == seed);
  CHECK_STATUS(nnft_rng_substream(&root, UINT64_MAX, &c), NNFT_EDOM);
  CHECK_STATUS(nnft_rng_substream(&s, UINT64_MAX, &c), NNFT_OK); /* nested: any index */
  /* nested: (key', sid') = Philox_{key ^ ("nnft", "strm")}(sid_lo, sid_hi, j_lo, j_hi), at the
   * start of its stream */
  {
    uint32_t ctr[4] = {7, 0, 2, 0}, k2[2] = {key[0] ^ 0x6e6e6674u, key[1] ^ 0x7374726du}, d[4];
    nnft_philox4x32_10(ctr, k2, d);
    nnft_rng_substream(&s, 2, &c);
    CHECK(c.key[0] == d[0] && c.key[1] == d[1]);
    CHECK(c.sid == ((uint64_t)d[2] | (uint64_t)d[3] << 32));
    uint32_t c0[4] = {0, 0, d[2], d[3]}, w[4];
    nnft_philox4x32_10(c0, d, w);
    nnft_rng cc = c;
    int same = 1;
    for (int k = 0; k < 4; k++) same &= nnft_rng_u32(&cc) == w[k];
    CHECK(same);
  }
  /* in place (child aliases parent) */
  nnft_rng in = root, ref;
  nnft_rng_substream(&root, 6, &ref);
  nnft_rng_substream(&in, 6, &in);
  CHECK(nnft_rng_u64(&in) == nnft_rng_u64(&ref));
}

/* ---- reproducibility: same seed and path, same numbers, whatever else happened ---- */
static void test_reproducible(void) {
  enum { N = 1001 };
  double x[N], y[N];
  nnft_rng a, b;
  nnft_rng_init(&a, 42);
  nnft_rng_init(&b, 42);
  nnft_rng_fill_normal(&a, x, N, 0, 1);
  nnft_rng_fill_normal(&b, y, N, 0, 1);
  CHECK(memcmp(x, y, sizeof x) == 0);

  /* bulk fills = the corresponding single draws, in order, even from an odd word position */
  nnft_rng_init(&a, 9);
  nnft_rng_init(&b, 9);
  nnft_rng_u32(&a);
  nnft_rng_u32(&b);
  nnft_rng_fill_normal(&a, x, N, 1.5, 2);
  int ok = 1;
  for (int i = 0; i < N; i++) ok &= x[i] == 1.5 + 2 * nnft_rng_normal(&b);
  nnft_rng_fill_uniform(&a, x, N, -1, 3);
  for (int i = 0; i < N; i++) ok &= x[i] == -1 + 4 * nnft_rng_uniform(&b);
  CHECK(ok);
  CHECK(nnft_rng_tell(&a) == nnft_rng_tell(&b));

  /* stream(i) does not depend on the parent's position or on creation order */
  nnft_rng root, s1, s2, t1, t2;
  nnft_rng_init(&root, 42);
  nnft_rng_substream(&root, 17, &s1);
  nnft_rng_fill_normal(&root, x, N, 0, 1); /* the parent draws */
  nnft_rng_substream(&root, 3, &t1);
  nnft_rng_substream(&root, 17, &s2);
  nnft_rng_fill_uniform(&s1, x, N, 0, 1);
  nnft_rng_fill_uniform(&s2, y, N, 0, 1);
  CHECK(memcmp(x, y, sizeof x) == 0);
  /* nested: stream 17 -> 5, built two ways */
  nnft_rng_substream(&s1, 5, &t1); /* s1 has drawn, s2 has drawn the same */
  nnft_rng_init(&root, 42);
  nnft_rng_substream(&root, 17, &s2);
  nnft_rng_substream(&s2, 5, &t2);
  nnft_rng_fill_normal(&t1, x, N, 0, 1);
  nnft_rng_fill_normal(&t2, y, N, 0, 1);
  CHECK(memcmp(x, y, sizeof x) == 0);

  /* parallel: 64 streams filled by a team of threads = filled one by one */
#ifdef _OPENMP
  enum { S = 64, M = 500 };
  double *par = dalloc(S * M), *ser = dalloc(S * M);
  nnft_rng_init(&root, 2024);
#pragma omp parallel for num_threads(2) schedule(dynamic, 1)
  for (int i = 0; i < S; i++) {
    nnft_rng si;
    nnft_rng_substream(&root, (uint64_t)i, &si);
    nnft_rng_fill_normal(&si, par + (size_t)i * M, M, 0, 1);
  }
  for (int i = S - 1; i >= 0; i--) {
    nnft_rng si;
    nnft_rng_substream(&root, (uint64_t)i, &si);
    nnft_rng_fill_normal(&si, ser + (size_t)i * M, M, 0, 1);
  }
  CHECK(memcmp(par, ser, S * M * sizeof(double)) == 0);
  nnft_free(par);
  nnft_free(ser);
#endif
}

/* Pearson correlation of two samples. */
static double corr(const double *x, const double *y, size_t n) {
  double mx = 0, my = 0, sxy = 0, sxx = 0, syy = 0;
  for (size_t i = 0; i < n; i++) { mx += x[i]; my += y[i]; }
  mx /= (double)n;
  my /= (double)n;
  for (size_t i = 0; i < n; i++) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) * (x[i] - mx);
    syy += (y[i] - my) * (y[i] - my);
  }
  return sxy / sqrt(sxx * syy);
}

/* ---- different streams and seeds differ and are uncorrelated ---- */
static void test_independent(void) {
  enum { N = 100000 };
  double *x = dalloc(N), *y = dalloc(N);
  const double tol = NSE / sqrt((double)N); /* SE of a correlation coefficient ~ 1/sqrt(n) */
  nnft_rng root, a, b, c, d;
  nnft_rng_init(&root, 1);
  struct { const char *what; nnft_rng p, q; } cases[5];
  nnft_rng_substream(&root, 0, &a);
  nnft_rng_substream(&root, 1, &b);
  cases[0].p = a; cases[0].q = b; cases[0].what = "streams 0, 1";
  cases[1].p = root; cases[1].q = a; cases[1].what = "root, stream 0";
  nnft_rng_substream(&a, 0, &c);
  nnft_rng_substream(&a, 1, &d);
  cases[2].p = c; cases[2].q = d; cases[2].what = "nested siblings";
  nnft_rng_substream(&b, 0, &d);
  cases[3].p = c; cases[3].q = d; cases[3].what = "nested cousins";
  nnft_rng_init(&c, 2);
  cases[4].p = root; cases[4].q = c; cases[4].what = "seeds 1, 2";
  for (int t = 0; t < 5; t++) {
    nnft_rng_fill_normal(&cases[t].p, x, N, 0, 1);
    nnft_rng_fill_normal(&cases[t].q, y, N, 0, 1);
    CHECK(memcmp(x, y, 64 * sizeof(double)) != 0);
    double rho = corr(x, y, N);
    if (!(fabs(rho) < tol)) fprintf(stderr, "correlation %s: %g\n", cases[t].what, rho);
    CHECK(fabs(rho) < tol);
    /* lag-1 autocorrelation within a stream */
    CHECK(fabs(corr(x, x + 1, N - 1)) < tol);
  }
  nnft_free(x);
  nnft_free(y);
}

/* ---- moments of the normal and uniform samplers ---- */
static void test_moments(void) {
  enum { N = 2000000 };
  double *x = dalloc(N);
  nnft_rng r;
  nnft_rng_init(&r, 12345);
  CHECK_STATUS(nnft_rng_fill_normal(&r, x, N, 0, 1), NNFT_OK);
  double m1 = 0, m2 = 0, m3 = 0, m4 = 0, m6 = 0;
  for (size_t i = 0; i < N; i++) {
    double z = x[i], z2 = z * z;
    m1 += z; m2 += z2; m3 += z2 * z; m4 += z2 * z2; m6 += z2 * z2 * z2;
  }
  const double n = N;
  /* E z = 0 (var 1), E z^2 = 1 (var 2), E z^3 = 0 (var 15), E z^4 = 3 (var 105 - 9 = 96),
   * E z^6 = 15 (var 10395 - 225 = 10170): each within NSE standard errors */
  CHECK_NEAR(m1 / n, 0, NSE * sqrt(1 / n));
  CHECK_NEAR(m2 / n, 1, NSE * sqrt(2 / n));
  CHECK_NEAR(m3 / n, 0, NSE * sqrt(15 / n));
  CHECK_NEAR(m4 / n, 3, NSE * sqrt(96 / n));
  CHECK_NEAR(m6 / n, 15, NSE * sqrt(10170 / n));

  /* mean and sd are applied: N(3, 0.5^2) */
  CHECK_STATUS(nnft_rng_fill_normal(&r, x, 100000, 3, 0.5), NNFT_OK);
  double s = 0, ss = 0;
  for (size_t i = 0; i < 100000; i++) { s += x[i]; ss += (x[i] - 3) * (x[i] - 3); }
  CHECK_NEAR(s / 1e5, 3, NSE * 0.5 / sqrt(1e5));
  CHECK_NEAR(ss / 1e5, 0.25, NSE * 0.25 * sqrt(2 / 1e5));
  /* sd = 0 gives the mean exactly */
  nnft_rng_fill_normal(&r, x, 10, -2, 0);
  CHECK(x[0] == -2 && x[9] == -2);

  /* uniform on [-1, 3): mean 1 (var 16/12), E (u - 1)^2 = 16/12 (var 16^2/180) */
  CHECK_STATUS(nnft_rng_fill_uniform(&r, x, N, -1, 3), NNFT_OK);
  double mu = 0, v = 0, lo = INFINITY, hi = -INFINITY;
  for (size_t i = 0; i < N; i++) {
    mu += x[i];
    v += (x[i] - 1) * (x[i] - 1);
    if (x[i] < lo) lo = x[i];
    if (x[i] > hi) hi = x[i];
  }
  CHECK_NEAR(mu / n, 1, NSE * sqrt(16.0 / 12 / n));
  CHECK_NEAR(v / n, 16.0 / 12, NSE * sqrt(256.0 / 180 / n));
  CHECK(lo >= -1 && hi < 3);
  CHECK(lo < -1 + 1e-4 && hi > 3 - 1e-4);
  /* a tiny interval: values stay in [a, b) despite rounding */
  const double a = 1, b = 1 + 0x1.0p-51;
  nnft_rng_fill_uniform(&r, x, 1000, a, b);
  int in = 1;
  for (int i = 0; i < 1000; i++) in &= x[i] >= a && x[i] < b;
  CHECK(in);
  nnft_free(x);
}

/* ---- normal: KS test and the tails (the ziggurat's tail and wedge algorithms) ---- */
static void test_normal_distribution(void) {
  enum { N = 200000 };
  double *x = dalloc(N);
  nnft_rng r;
  nnft_rng_init(&r, 777);
  nnft_rng_fill_normal(&r, x, N, 0, 1);
  double k = ks_stat(x, N, cdf_normal, NULL);
  if (!(k < KS_CRIT)) fprintf(stderr, "normal KS sqrt(n) D = %g\n", k);
  CHECK(k < KS_CRIT);

  /* Tail counts in 3 10^7 draws vs n P(bin), each within NSE Poisson standard errors. The
   * ziggurat's base layer ends at r = 3.654; beyond it the tail algorithm takes over, so the
   * draws beyond r (about 7700) also get a KS test against the conditional tail CDF
   * 1 - Q(x)/Q(r). */
  const size_t M = 30000000;
  const double zr = 3.6541528853610088;
  const double edges[5] = {3.0, zr, 4.0, 4.5, INFINITY};
  double count[4] = {0, 0, 0, 0}, zmax = 0;
  size_t ntail = 0, tail_cap = 20000;
  double *tail = dalloc(tail_cap);
  nnft_rng_init(&r, 778);
  for (size_t done = 0; done < M; done += N) {
    nnft_rng_fill_normal(&r, x, N, 0, 1);
    for (size_t i = 0; i < N; i++) {
      double z = fabs(x[i]);
      if (z < 3.0) continue;
      if (z > zmax) zmax = z;
      for (int b = 0; b < 4; b++)
        if (z >= edges[b] && z < edges[b + 1]) count[b]++;
      if (z >= zr && ntail < tail_cap) tail[ntail++] = z;
    }
  }
  for (int b = 0; b < 4; b++) {
    double p = 2 * (gsl_cdf_ugaussian_Q(edges[b]) -
                    (isinf(edges[b + 1]) ? 0 : gsl_cdf_ugaussian_Q(edges[b + 1])));
    double e = (double)M * p;
    if (!(fabs(count[b] - e) <= NSE * sqrt(e)))
      fprintf(stderr, "tail bin [%g, %g): %g draws, expected %g\n", edges[b], edges[b + 1],
              count[b], e);
    CHECK(fabs(count[b] - e) <= NSE * sqrt(e));
  }
  CHECK(zmax > 4.5 && zmax < 7); /* ~ 5.5 expected in 3 10^7 draws */
  CHECK(ntail > 5000 && ntail < tail_cap);
  k = ks_stat(tail, ntail, cdf_tail, &zr);
  if (!(k < KS_CRIT)) fprintf(stderr, "normal tail KS sqrt(n) D = %g (n = %zu)\n", k, ntail);
  CHECK(k < KS_CRIT);
  nnft_free(tail);
  nnft_free(x);
}

/* ---- ball: inside, radii KS, centred ---- */
static void test_ball(void) {
  const size_t n = 20000;
  const size_t dims[3] = {1, 3, 10};
  const double R = 2.5;
  nnft_rng r;
  nnft_rng_init(&r, 31);
  for (int t = 0; t < 3; t++) {
    size_t d = dims[t];
    nnft_mat P;
    CHECK_STATUS(nnft_mat_alloc(n, d, &P), NNFT_OK);
    CHECK_STATUS(nnft_rng_ball(&r, R, &P), NNFT_OK);
    double *rad = dalloc(n);
    int inside = 1;
    for (size_t i = 0; i < n; i++) {
      double s2 = 0;
      for (size_t j = 0; j < d; j++) s2 += NNFT_AT(&P, i, j) * NNFT_AT(&P, i, j);
      inside &= s2 <= R * R;
      rad[i] = sqrt(s2);
    }
    CHECK(inside);
    const double par[2] = {R, (double)d};
    double k = ks_stat(rad, n, cdf_radius, par);
    if (!(k < KS_CRIT)) fprintf(stderr, "ball d=%zu radius KS sqrt(n) D = %g\n", d, k);
    CHECK(k < KS_CRIT);
    /* each coordinate has mean 0 and variance R^2 / (d + 2) */
    for (size_t j = 0; j < d; j++) {
      double m = 0, v = 0;
      for (size_t i = 0; i < n; i++) m += NNFT_AT(&P, i, j);
      m /= (double)n;
      for (size_t i = 0; i < n; i++) v += NNFT_AT(&P, i, j) * NNFT_AT(&P, i, j);
      v /= (double)n;
      double var = R * R / (double)(d + 2);
      CHECK_NEAR(m, 0, NSE * sqrt(var / (double)n));
      /* var of p^2 <= E p^4 <= R^2 var: a conservative standard error */
      CHECK_NEAR(v, var, NSE * sqrt(R * R * var / (double)n));
    }
    nnft_free(rad);
    nnft_mat_free(&P);
  }
  /* a point at the boundary scale: R huge or tiny keeps points inside */
  nnft_mat P;
  nnft_mat_alloc(1000, 4, &P);
  CHECK_STATUS(nnft_rng_ball(&r, 1e-300, &P), NNFT_OK);
  int ok = 1;
  for (size_t i = 0; i < 1000; i++) {
    double s2 = 0;
    for (size_t j = 0; j < 4; j++) s2 += NNFT_AT(&P, i, j) * NNFT_AT(&P, i, j);
    ok &= sqrt(s2) <= 1e-300 * (1 + 1e-15);
  }
  CHECK(ok);
  CHECK_STATUS(nnft_rng_ball(&r, 0, &P), NNFT_EDOM);
  CHECK_STATUS(nnft_rng_ball(&r, -1, &P), NNFT_EDOM);
  CHECK_STATUS(nnft_rng_ball(&r, INFINITY, &P), NNFT_EDOM);
  CHECK_STATUS(nnft_rng_ball(&r, NAN, &P), NNFT_EDOM);
  nnft_mat_free(&P);
  nnft_mat_alloc(5, 0, &P);
  CHECK_STATUS(nnft_rng_ball(&r, 1, &P), NNFT_EDOM); /* d < 1 */
  nnft_mat_free(&P);
}

/* ---- phases, integers, permutations ---- */
static void test_phases_integers(void) {
  enum { N = 1000000 };
  double *x = dalloc(N);
  nnft_rng r;
  nnft_rng_init(&r, 4);
  nnft_rng_fill_phases(&r, x, N);
  double m = 0, v = 0, lo = INFINITY, hi = -INFINITY;
  for (size_t i = 0; i < N; i++) {
    m += x[i];
    v += x[i] * x[i];
    if (x[i] < lo) lo = x[i];
    if (x[i] > hi) hi = x[i];
  }
  const double pi = 3.14159265358979323846, var = pi * pi / 3;
  CHECK(lo >= -pi && hi < pi);
  CHECK_NEAR(m / N, 0, NSE * sqrt(var / N));
  CHECK_NEAR(v / N, var, NSE * sqrt(pi * pi * pi * pi * 4.0 / 45 / N)); /* var x^2 = 4pi^4/45 */
  nnft_free(x);

  /* below(n): in range and uniform (chi-square over 7 cells, 70000 draws: 6 df, mean 6,
   * sd sqrt 12; accept below 6 + NSE sqrt 12) */
  double cnt[7] = {0};
  for (int i = 0; i < 70000; i++) cnt[nnft_rng_below(&r, 7)]++;
  double chi = 0;
  for (int k = 0; k < 7; k++) chi += (cnt[k] - 10000) * (cnt[k] - 10000) / 10000;
  CHECK(chi < 6 + NSE * sqrt(12));
  int ok = 1;
  const uint64_t big = (1ull << 63) + 12345;
  for (int i = 0; i < 1000; i++) ok &= nnft_rng_below(&r, big) < big;
  for (int i = 0; i < 1000; i++) ok &= nnft_rng_below(&r, 1) == 0;
  CHECK(ok);
  /* n = 3 2^62: a third of the values are >= 2^63 (300 draws: 100 +- NSE sqrt(200/3)) */
  int high = 0;
  for (int i = 0; i < 300; i++) high += nnft_rng_below(&r, 3ull << 62) >= (1ull << 63);
  CHECK(fabs(high - 100.0) < NSE * sqrt(200.0 / 3));

  /* permutations of 5: all 120 orders equally likely (chi-square, 119 df: mean 119, sd
   * sqrt 238) */
  double pc[120] = {0};
  size_t p[5];
  for (int t = 0; t < 60000; t++) {
    nnft_rng_permutation(&r, 5, p);
    int seen = 0, code = 0;
    for (int k = 0; k < 5; k++) seen |= 1 << p[k];
    ok &= seen == 31;
    /* Lehmer code */
    for (int k = 0; k < 5; k++) {
      int smaller = 0;
      for (int l = k + 1; l < 5; l++) smaller += p[l] < p[k];
      code = code * (5 - k) + smaller;
    }
    pc[code]++;
  }
  CHECK(ok);
  chi = 0;
  for (int k = 0; k < 120; k++) chi += (pc[k] - 500) * (pc[k] - 500) / 500;
  CHECK(chi < 119 + NSE * sqrt(238));
  nnft_rng_permutation(&r, 0, p); /* empty is fine */
  nnft_rng_permutation(&r, 1, p);
  CHECK(p[0] == 0);
}

/* ---- the GSL adapter ---- */
static void test_gsl(void) {
  enum { N = 400000 };
  nnft_rng r;
  nnft_rng_init(&r, 99);
  nnft_mat m;
  nnft_mat_alloc(N, 1, &m);
  const double n = N;

  /* gamma(k = 2.5, theta = 1.5): mean k theta, var k theta^2; var of the sample variance
   * ~ sigma^4 (2 + 6/k) / n */
  const double k = 2.5, th = 1.5, mean = k * th, var = k * th * th;
  CHECK_STATUS(nnft_rng_mat_dist(&r, NNFT_RNG_GAMMA, k, th, &m), NNFT_OK);
  double s = 0, ss = 0;
  for (size_t i = 0; i < N; i++) s += m.data[i];
  s /= n;
  for (size_t i = 0; i < N; i++) ss += (m.data[i] - s) * (m.data[i] - s);
  ss /= n - 1;
  CHECK_NEAR(s, mean, NSE * sqrt(var / n));
  CHECK_NEAR(ss, var, NSE * var * sqrt((2 + 6 / k) / n));

  /* Poisson(4.2): mean = var = 4.2; integer values */
  CHECK_STATUS(nnft_rng_mat_dist(&r, NNFT_RNG_POISSON, 4.2, 0, &m), NNFT_OK);
  s = 0;
  ss = 0;
  int ints = 1;
  for (size_t i = 0; i < N; i++) { s += m.data[i]; ints &= m.data[i] == floor(m.data[i]); }
  s /= n;
  for (size_t i = 0; i < N; i++) ss += (m.data[i] - s) * (m.data[i] - s);
  ss /= n - 1;
  CHECK(ints);
  CHECK_NEAR(s, 4.2, NSE * sqrt(4.2 / n));
  CHECK_NEAR(ss, 4.2, NSE * sqrt((4.2 + 2 * 4.2 * 4.2) / n)); /* mu4 - sigma^4 = mu + 2 mu^2 */

  /* chi-square(3): mean 3, var 6; exponential(mean 2): mean 2; beta(2, 3): mean 0.4 */
  nnft_rng_mat_dist(&r, NNFT_RNG_CHISQ, 3, 0, &m);
  s = 0;
  for (size_t i = 0; i < N; i++) s += m.data[i];
  CHECK_NEAR(s / n, 3, NSE * sqrt(6 / n));
  nnft_rng_mat_dist(&r, NNFT_RNG_EXPONENTIAL, 2, 0, &m);
  s = 0;
  for (size_t i = 0; i < N; i++) s += m.data[i];
  CHECK_NEAR(s / n, 2, NSE * sqrt(4 / n));
  nnft_rng_mat_dist(&r, NNFT_RNG_BETA, 2, 3, &m);
  s = 0;
  for (size_t i = 0; i < N; i++) s += m.data[i];
  CHECK_NEAR(s / n, 0.4, NSE * sqrt(0.04 / n)); /* var = ab/((a+b)^2 (a+b+1)) = 0.04 */
  /* student t(5): var 5/3; lognormal(0, 0.5): mean exp(1/8) */
  nnft_rng_mat_dist(&r, NNFT_RNG_STUDENT_T, 5, 0, &m);
  ss = 0;
  for (size_t i = 0; i < N; i++) ss += m.data[i] * m.data[i];
  CHECK_NEAR(ss / n, 5.0 / 3, NSE * sqrt((25 - 25.0 / 9) / n)); /* E t^4 = 25 */
  nnft_rng_mat_dist(&r, NNFT_RNG_LOGNORMAL, 0, 0.5, &m);
  s = 0;
  for (size_t i = 0; i < N; i++) s += m.data[i];
  double lm = exp(0.125), lv = (exp(0.25) - 1) * exp(0.25);
  CHECK_NEAR(s / n, lm, NSE * sqrt(lv / n));
  /* Cauchy, Laplace: medians 0 (fraction positive 1/2, SE 1/(2 sqrt n)) */
  const nnft_rng_dist sym[2] = {NNFT_RNG_CAUCHY, NNFT_RNG_LAPLACE};
  for (int t = 0; t < 2; t++) {
    nnft_rng_mat_dist(&r, sym[t], 1.5, 0, &m);
    double pos = 0;
    for (size_t i = 0; i < N; i++) pos += m.data[i] > 0;
    CHECK_NEAR(pos / n, 0.5, NSE * 0.5 / sqrt(n));
  }

  /* the adapter draws from the stream: a GSL sampler through it = GSL on the same words */
  nnft_rng a, b;
  nnft_rng_init(&a, 5);
  nnft_rng_init(&b, 5);
  gsl_rng g;
  nnft_rng_as_gsl(&a, &g);
  CHECK(gsl_rng_get(&g) == nnft_rng_u32(&b));
  CHECK(gsl_rng_uniform(&g) == nnft_rng_uniform(&b));
  CHECK(strcmp(gsl_rng_name(&g), "nnft-philox4x32-10") == 0);
  CHECK(gsl_rng_max(&g) == 0xffffffffUL && gsl_rng_min(&g) == 0);
  /* a GSL-allocated generator of this type: gsl_rng_set seeds it like nnft_rng_init */
  gsl_rng *ga = gsl_rng_alloc(nnft_rng_gsl_type);
  CHECK(ga != NULL);
  if (ga) {
    gsl_rng_set(ga, 77);
    nnft_rng_init(&b, 77);
    CHECK(gsl_rng_get(ga) == nnft_rng_u32(&b));
    gsl_rng_free(ga);
  }

  /* domains */
  CHECK_STATUS(nnft_rng_mat_dist(&r, NNFT_RNG_GAMMA, 0, 1, &m), NNFT_EDOM);
  CHECK_STATUS(nnft_rng_mat_dist(&r, NNFT_RNG_GAMMA, 1, -1, &m), NNFT_EDOM);
  CHECK_STATUS(nnft_rng_mat_dist(&r, NNFT_RNG_POISSON, -1, 0, &m), NNFT_EDOM);
  CHECK_STATUS(nnft_rng_mat_dist(&r, NNFT_RNG_POISSON, 2e9, 0, &m), NNFT_EDOM);
  CHECK_STATUS(nnft_rng_mat_dist(&r, NNFT_RNG_CHISQ, NAN, 0, &m), NNFT_EDOM);
  CHECK_STATUS(nnft_rng_mat_dist(&r, NNFT_RNG_STUDENT_T, 0, 0, &m), NNFT_EDOM);
  CHECK_STATUS(nnft_rng_mat_dist(&r, NNFT_RNG_EXPONENTIAL, INFINITY, 0, &m), NNFT_EDOM);
  CHECK_STATUS(nnft_rng_mat_dist(&r, NNFT_RNG_LOGNORMAL, 0, -1, &m), NNFT_EDOM);
  nnft_mat_free(&m);
}

/* ---- the ziggurat tables match their definition ---- */
static void test_tables(void) {
  const uint64_t *k;
  const double *w, *f;
  nnft__rng_zig_tables(&k, &w, &f);
  const double r = 3.6541528853610088;
  const double v = r * exp(-r * r / 2) + sqrt(M_PI / 2) * erfc(r / sqrt(2));
  double x[257];
  x[0] = v / exp(-r * r / 2);
  x[1] = r;
  for (int i = 1; i < 255; i++) x[i + 1] = sqrt(-2 * log(v / x[i] + exp(-x[i] * x[i] / 2)));
  x[256] = 0;
  /* the recurrence closes: the top layer has area v */
  CHECK_NEAR(x[255] * (1 - exp(-x[255] * x[255] / 2)), v, 1e-9);
  int ok = 1;
  for (int i = 0; i < 256; i++) {
    ok &= fabs(w[i] * 0x1.0p52 - x[i]) <= 1e-9 * x[i];
    ok &= fabs(f[i] - exp(-x[i] * x[i] / 2)) <= 1e-9;
    ok &= fabs((double)k[i] * 0x1.0p-52 - x[i + 1] / x[i]) <= 1e-9;
  }
  CHECK(ok);
  CHECK(f[256] == 1 && k[255] == 0);
}

/* ---- bad input and interrupts ---- */
static void test_errors(void) {
  nnft_rng r;
  nnft_rng_init(&r, 1);
  double x[4];
  CHECK_STATUS(nnft_rng_fill_normal(&r, x, 4, 0, -1), NNFT_EDOM);
  CHECK_STATUS(nnft_rng_fill_normal(&r, x, 4, NAN, 1), NNFT_EDOM);
  CHECK_STATUS(nnft_rng_fill_normal(&r, x, 4, 0, INFINITY), NNFT_EDOM);
  CHECK_STATUS(nnft_rng_fill_uniform(&r, x, 4, 1, 1), NNFT_EDOM);
  CHECK_STATUS(nnft_rng_fill_uniform(&r, x, 4, 2, 1), NNFT_EDOM);
  CHECK_STATUS(nnft_rng_fill_uniform(&r, x, 4, -1e308, 1e308), NNFT_EDOM); /* b - a = Inf */
  nnft_mat m;
  nnft_mat_alloc(3, 3, &m);
  CHECK_STATUS(nnft_rng_mat_normal(&r, &m, 0, -0.5), NNFT_EDOM);
  CHECK_STATUS(nnft_rng_mat_uniform(&r, &m, 0, NAN), NNFT_EDOM);
  /* empty matrices are fine */
  nnft_mat e;
  nnft_mat_alloc(0, 5, &e);
  CHECK_STATUS(nnft_rng_mat_normal(&r, &e, 0, 1), NNFT_OK);
  CHECK_STATUS(nnft_rng_ball(&r, 1, &e), NNFT_OK);
  nnft_mat_free(&e);
  /* a view is filled in column-major order, the rest untouched */
  nnft_mat big, view;
  nnft_mat_alloc(4, 4, &big);
  nnft_mat_view(&big, 1, 1, 2, 2, &view);
  nnft_rng a, b;
  nnft_rng_init(&a, 3);
  nnft_rng_init(&b, 3);
  nnft_rng_mat_normal(&a, &view, 0, 1);
  CHECK(NNFT_AT(&big, 1, 1) == nnft_rng_normal(&b) && NNFT_AT(&big, 2, 1) == nnft_rng_normal(&b));
  CHECK(NNFT_AT(&big, 1, 2) == nnft_rng_normal(&b) && NNFT_AT(&big, 2, 2) == nnft_rng_normal(&b));
  CHECK(NNFT_AT(&big, 0, 0) == 0 && NNFT_AT(&big, 3, 3) == 0 && NNFT_AT(&big, 0, 1) == 0);
  nnft_mat_free(&big);
  /* interrupts */
  double *y = dalloc(200000);
  nnft_interrupt_flag = 1;
  CHECK_STATUS(nnft_rng_fill_normal(&r, y, 200000, 0, 1), NNFT_EINTR);
  CHECK_STATUS(nnft_rng_mat_dist(&r, NNFT_RNG_GAMMA, 1, 1, &m), NNFT_EINTR);
  nnft_interrupt_flag = 0;
  CHECK_STATUS(nnft_rng_fill_normal(&r, y, 200000, 0, 1), NNFT_OK);
  nnft_free(y);
  nnft_mat_free(&m);
}

int main(void) {
  test_alloc_fail_after(-1);
  test_kat();
  test_impls();
  test_layout();
  test_reproducible();
  test_independent();
  test_moments();
  test_normal_distribution();
  test_ball();
  test_phases_integers();
  test_gsl();
  test_tables();
  test_errors();
  return test_report("test_rng");
}
