/* Tests of nnft_corr: tuple enumeration, the streamed accumulator against direct sums, bags and
 * error bars, chunk invariance, Wick's theorem, connected parts, the deviation metric,
 * histograms, bad input and allocation failures. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nnft_corr.h"
#include "nnft_rng.h"
#include "test_util.h"

/* ---- tuples ---- */
static void test_tuples(void) {
  size_t c;
  CHECK_STATUS(nnft_corr_ntuples(6, 2, &c), NNFT_OK);
  CHECK(c == 21);
  CHECK_STATUS(nnft_corr_ntuples(6, 4, &c), NNFT_OK);
  CHECK(c == 126);
  CHECK_STATUS(nnft_corr_ntuples(6, 6, &c), NNFT_OK);
  CHECK(c == 462);
  CHECK_STATUS(nnft_corr_ntuples(6, 1, &c), NNFT_OK);
  CHECK(c == 6);
  CHECK_STATUS(nnft_corr_ntuples(1, 6, &c), NNFT_OK);
  CHECK(c == 1);
  CHECK_STATUS(nnft_corr_ntuples(3, 3, &c), NNFT_OK);
  CHECK(c == 10);
  CHECK_STATUS(nnft_corr_ntuples(6, 7, &c), NNFT_EDOM);
  CHECK_STATUS(nnft_corr_ntuples(6, 0, &c), NNFT_EDOM);
  CHECK_STATUS(nnft_corr_ntuples(0, 2, &c), NNFT_EDOM);

  uint32_t t[6 * 2];
  CHECK_STATUS(nnft_corr_tuples(3, 2, t), NNFT_OK);
  const uint32_t want[12] = {0, 0, 0, 1, 0, 2, 1, 1, 1, 2, 2, 2};
  CHECK(memcmp(t, want, sizeof want) == 0);

  /* every order for n = 5: sorted, strictly increasing lexicographically, rank round trip,
   * and the count equals the number of sorted tuples found by brute force */
  for (int k = 1; k <= 6; k++) {
    size_t cnt;
    nnft_corr_ntuples(5, k, &cnt);
    uint32_t *tu = malloc(cnt * (size_t)k * sizeof *tu);
    CHECK_STATUS(nnft_corr_tuples(5, k, tu), NNFT_OK);
    int ok = 1;
    for (size_t i = 0; i < cnt; i++) {
      const uint32_t *v = tu + i * (size_t)k;
      for (int j = 1; j < k; j++)
        if (v[j] < v[j - 1]) ok = 0;
      if (i) {
        const uint32_t *u = v - k;
        int j = 0;
        while (j < k && u[j] == v[j]) j++;
        if (j == k || u[j] > v[j]) ok = 0;
      }
      size_t r = 99999;
      if (nnft_corr_tuple_rank(5, k, v, &r) || r != i) ok = 0;
    }
    CHECK(ok);
    size_t brute = 0, total = 1;
    for (int j = 0; j < k; j++) total *= 5;
    for (size_t code = 0; code < total; code++) {
      size_t x = code, prev = 0;
      int sorted = 1;
      for (int j = 0; j < k; j++) {
        size_t d = x % 5;
        x /= 5;
        if (j && d < prev) sorted = 0;
        prev = d;
      }
      brute += sorted;
    }
    CHECK(brute == cnt);
    free(tu);
  }
  uint32_t bad[2] = {2, 1};
  size_t r;
  CHECK_STATUS(nnft_corr_tuple_rank(3, 2, bad, &r), NNFT_EDOM);
  uint32_t out_of_range[2] = {1, 3};
  CHECK_STATUS(nnft_corr_tuple_rank(3, 2, out_of_range, &r), NNFT_EDOM);
}

/* ---- the accumulator against direct sums ---- */

/* Direct: mean over e of prod_j F(e, tuple_j), in long double; per bag too. */
static void direct(const nnft_mat *F, size_t B, int k, const uint32_t *tu, size_t cnt,
                   double *mean, double *bag) {
  size_t E = F->rows;
  for (size_t t = 0; t < cnt; t++) {
    long double tot = 0;
    for (size_t b = 0; b < B; b++) {
      size_t lo = nnft_corr_bag_start(E, B, b), hi = nnft_corr_bag_start(E, B, b + 1);
      long double s = 0;
      for (size_t e = lo; e < hi; e++) {
        long double p = 1;
        for (int j = 0; j < k; j++) p *= NNFT_AT(F, e, tu[t * (size_t)k + (size_t)j]);
        s += p;
      }
      tot += s;
      bag[b + t * B] = (double)(s / (long double)(hi - lo));
    }
    mean[t] = (double)(tot / (long double)E);
  }
}

static void fill_normal(nnft_mat *m, uint64_t seed) {
  nnft_rng r;
  nnft_rng_init(&r, seed);
  nnft_rng_mat_normal(&r, m, 0.3, 1.0);
}

/* Feed F through chunks of `chunk` networks (parts merged in order). */
static nnft_status feed(nnft_corr_acc *acc, const nnft_mat *F, size_t chunk) {
  size_t nch = nnft_corr_acc_nchunks(acc, chunk), prev = 0;
  nnft_corr_part *p;
  nnft_status s = nnft_corr_part_alloc(acc, chunk, &p);
  for (size_t q = 0; q < nch && !s; q++) {
    size_t lo, hi;
    nnft_corr_acc_chunk(acc, chunk, q, &lo, &hi);
    CHECK(lo == prev && hi > lo); /* a partition of 0 .. E */
    prev = hi;
    nnft_mat v;
    nnft_mat_view(F, lo, 0, hi - lo, F->cols, &v);
    s = nnft_corr_part_compute(acc, lo, &v, p);
    if (!s) s = nnft_corr_part_merge(acc, p);
  }
  if (!s) CHECK(prev == F->rows);
  nnft_corr_part_free(p);
  return s;
}

static void test_accumulator(void) {
  const size_t E = 1000, n = 4, B = 7;
  nnft_mat F;
  nnft_mat_alloc(E, n, &F);
  fill_normal(&F, 11);
  const int orders[6] = {3, 1, 6, 2, 5, 4}; /* any order, odd ones too */
  nnft_corr_acc *acc;
  CHECK_STATUS(nnft_corr_acc_alloc(n, orders, 6, E, B, &acc), NNFT_OK);
  CHECK_STATUS(feed(acc, &F, 256), NNFT_OK);
  CHECK(nnft_corr_acc_count(acc) == E);
  for (int k = 1; k <= 6; k++) {
    size_t cnt;
    nnft_corr_ntuples(n, k, &cnt);
    uint32_t *tu = malloc(cnt * (size_t)k * sizeof *tu);
    nnft_corr_tuples(n, k, tu);
    double *mean = malloc(cnt * sizeof(double)), *bag = malloc(cnt * B * sizeof(double));
    double *dm = malloc(cnt * sizeof(double)), *db = malloc(cnt * B * sizeof(double));
    double *sd = malloc(cnt * sizeof(double)), *err = malloc(cnt * sizeof(double));
    CHECK_STATUS(nnft_corr_acc_result(acc, k, mean, bag, B, sd, err), NNFT_OK);
    direct(&F, B, k, tu, cnt, dm, db);
    double worst = 0, worst_bag = 0, worst_sd = 0;
    for (size_t t = 0; t < cnt; t++) {
      double scale = 1 + fabs(dm[t]);
      if (fabs(mean[t] - dm[t]) / scale > worst) worst = fabs(mean[t] - dm[t]) / scale;
      double mb = 0, v = 0;
      for (size_t b = 0; b < B; b++) {
        double d = fabs(bag[b + t * B] - db[b + t * B]) / (1 + fabs(db[b + t * B]));
        if (d > worst_bag) worst_bag = d;
        mb += db[b + t * B];
      }
      mb /= (double)B;
      for (size_t b = 0; b < B; b++) v += (db[b + t * B] - mb) * (db[b + t * B] - mb);
      double want_sd = sqrt(v / (double)(B - 1));
      double dsd = fabs(sd[t] - want_sd) / (1e-300 + want_sd);
      if (dsd > worst_sd) worst_sd = dsd;
      CHECK_NEAR(err[t], sd[t] / sqrt((double)B), 1e-15 * (1 + sd[t]));
    }
    CHECK(worst < 1e-13);
    CHECK(worst_bag < 1e-13);
    CHECK(worst_sd < 1e-9);
    free(tu);
    free(mean);
    free(bag);
    free(dm);
    free(db);
    free(sd);
    free(err);
  }
  /* result for an order not accumulated */
  nnft_corr_acc *acc2;
  const int o2[1] = {2};
  nnft_corr_acc_alloc(n, o2, 1, E, B, &acc2);
  double tmp[64];
  CHECK_STATUS(nnft_corr_acc_result(acc2, 2, tmp, NULL, 0, NULL, NULL), NNFT_EDOM); /* empty */
  CHECK_STATUS(feed(acc2, &F, 100), NNFT_OK);
  CHECK_STATUS(nnft_corr_acc_result(acc2, 4, tmp, NULL, 0, NULL, NULL), NNFT_EDOM);
  CHECK_STATUS(nnft_corr_acc_result(acc2, 2, tmp, tmp, 3, NULL, NULL), NNFT_EDOM); /* ld < B */
  nnft_corr_acc_free(acc2);
  nnft_corr_acc_free(acc);
  nnft_mat_free(&F);
}

/* Same outputs, different chunkings and feeding patterns: bit-identical results. */
static void test_chunk_invariance(void) {
  const size_t E = 2345, n = 3, B = 10;
  nnft_mat F;
  nnft_mat_alloc(E, n, &F);
  fill_normal(&F, 5);
  for (size_t i = 0; i < E; i++) NNFT_AT(&F, i, 1) = exp(2 * NNFT_AT(&F, i, 1)); /* heavy tail */
  const int orders[3] = {2, 4, 6};
  double *ref = NULL;
  size_t chunks[5] = {1, 64, 100, 256, 5000};
  size_t c6;
  nnft_corr_ntuples(n, 6, &c6);
  for (int ci = 0; ci < 5; ci++) {
    nnft_corr_acc *acc;
    nnft_corr_acc_alloc(n, orders, 3, E, B, &acc);
    CHECK_STATUS(feed(acc, &F, chunks[ci]), NNFT_OK);
    double *res = malloc(c6 * (B + 2) * sizeof(double));
    CHECK_STATUS(nnft_corr_acc_result(acc, 6, res, res + c6, B, res + c6 * (B + 1), NULL),
                 NNFT_OK);
    if (!ref) ref = res;
    else {
      CHECK(memcmp(ref, res, c6 * (B + 2) * sizeof(double)) == 0);
      free(res);
    }
    nnft_corr_acc_free(acc);
  }
  free(ref);

  /* misuse: merging out of order, a range that is not whole blocks */
  nnft_corr_acc *acc;
  nnft_corr_acc_alloc(n, orders, 3, E, B, &acc);
  nnft_corr_part *p;
  CHECK_STATUS(nnft_corr_part_alloc(acc, 64, &p), NNFT_OK);
  nnft_mat v;
  nnft_mat_view(&F, 64, 0, 64, n, &v);
  CHECK_STATUS(nnft_corr_part_compute(acc, 64, &v, p), NNFT_OK);
  CHECK_STATUS(nnft_corr_part_merge(acc, p), NNFT_EDOM); /* block 0 not merged yet */
  nnft_mat_view(&F, 0, 0, 50, n, &v);
  CHECK_STATUS(nnft_corr_part_compute(acc, 0, &v, p), NNFT_EDOM); /* half a block */
  nnft_mat_view(&F, 0, 0, 128, n, &v);
  CHECK_STATUS(nnft_corr_part_compute(acc, 0, &v, p), NNFT_EDOM); /* two blocks, room for one */
  nnft_mat_view(&F, 0, 0, 64, 2, &v);
  CHECK_STATUS(nnft_corr_part_compute(acc, 0, &v, p), NNFT_EDIM);
  nnft_corr_part_free(p);
  nnft_corr_acc_free(acc);

  /* bad accumulator arguments */
  const int bad1[2] = {2, 2}, bad2[1] = {7}, bad3[1] = {0};
  CHECK_STATUS(nnft_corr_acc_alloc(n, bad1, 2, E, B, &acc), NNFT_EDOM);
  CHECK_STATUS(nnft_corr_acc_alloc(n, bad2, 1, E, B, &acc), NNFT_EDOM);
  CHECK_STATUS(nnft_corr_acc_alloc(n, bad3, 1, E, B, &acc), NNFT_EDOM);
  CHECK_STATUS(nnft_corr_acc_alloc(n, orders, 3, E, E + 1, &acc), NNFT_EDOM); /* bags > E */
  CHECK_STATUS(nnft_corr_acc_alloc(n, orders, 3, E, 0, &acc), NNFT_EDOM);
  CHECK_STATUS(nnft_corr_acc_alloc(n, orders, 3, 0, 1, &acc), NNFT_EDOM);
  CHECK_STATUS(nnft_corr_acc_alloc(0, orders, 3, E, B, &acc), NNFT_EDOM);
  CHECK(acc == NULL);

  /* one network per bag (blocks of one network) still works */
  nnft_corr_acc_alloc(n, orders, 1, 10, 10, &acc);
  nnft_mat_view(&F, 0, 0, 10, n, &v);
  CHECK_STATUS(feed(acc, &v, 256), NNFT_OK);
  double m[6], bags[60], sd[6];
  CHECK_STATUS(nnft_corr_acc_result(acc, 2, m, bags, 10, sd, NULL), NNFT_OK);
  CHECK_NEAR(bags[0], NNFT_AT(&F, 0, 0) * NNFT_AT(&F, 0, 0), 1e-15);
  CHECK_NEAR(bags[10 + 3], NNFT_AT(&F, 3, 0) * NNFT_AT(&F, 3, 1), 1e-15);
  nnft_corr_acc_free(acc);
  nnft_mat_free(&F);
}

/* Compensation: a huge value cancelling exactly leaves the small ones intact. */
static void test_compensation(void) {
  const size_t E = 256;
  nnft_mat F;
  nnft_mat_alloc(E, 1, &F);
  for (size_t e = 0; e < E; e++) F.data[e] = 1.0;
  F.data[64] = 1e8;   /* block 1: square 1e16 */
  F.data[128] = 1e8;  /* block 2 */
  F.data[192] = -1e8; /* the first order cancels */
  const int o[1] = {1};
  nnft_corr_acc *acc;
  nnft_corr_acc_alloc(1, o, 1, E, 1, &acc);
  feed(acc, &F, 64);
  double m;
  nnft_corr_acc_result(acc, 1, &m, NULL, 0, NULL, NULL);
  CHECK_NEAR(m * (double)E, 1e8 + 253.0, 1e-6);
  nnft_corr_acc_free(acc);
  nnft_mat_free(&F);
}

/* ---- Wick ---- */
static void random_spd(size_t n, uint64_t seed, nnft_mat *K) {
  nnft_mat A;
  nnft_mat_alloc(n, n, &A);
  fill_normal(&A, seed);
  nnft_mat_alloc(n, n, K);
  for (size_t i = 0; i < n; i++)
    for (size_t j = 0; j < n; j++) {
      double s = i == j ? 0.5 : 0;
      for (size_t q = 0; q < n; q++) s += NNFT_AT(&A, i, q) * NNFT_AT(&A, j, q);
      NNFT_AT(K, i, j) = s / (double)n;
    }
  nnft_mat_free(&A);
}

static void test_wick(void) {
  nnft_mat K;
  random_spd(6, 3, &K);
#define Kx(a, b) NNFT_AT(&K, a, b)
  uint32_t t4[8] = {0, 1, 2, 3, 1, 1, 1, 1};
  double out[2];
  CHECK_STATUS(nnft_corr_wick(&K, 4, t4, 2, out), NNFT_OK);
  CHECK_NEAR(out[0], Kx(0, 1) * Kx(2, 3) + Kx(0, 2) * Kx(1, 3) + Kx(0, 3) * Kx(1, 2), 1e-14);
  CHECK_NEAR(out[1], 3 * Kx(1, 1) * Kx(1, 1), 1e-14);
  /* k = 6 against the 15 matchings written out */
  uint32_t t6[6] = {0, 1, 2, 3, 4, 5};
  double w6;
  CHECK_STATUS(nnft_corr_wick(&K, 6, t6, 1, &w6), NNFT_OK);
  double h = Kx(0, 1) * (Kx(2, 3) * Kx(4, 5) + Kx(2, 4) * Kx(3, 5) + Kx(2, 5) * Kx(3, 4)) +
             Kx(0, 2) * (Kx(1, 3) * Kx(4, 5) + Kx(1, 4) * Kx(3, 5) + Kx(1, 5) * Kx(3, 4)) +
             Kx(0, 3) * (Kx(1, 2) * Kx(4, 5) + Kx(1, 4) * Kx(2, 5) + Kx(1, 5) * Kx(2, 4)) +
             Kx(0, 4) * (Kx(1, 2) * Kx(3, 5) + Kx(1, 3) * Kx(2, 5) + Kx(1, 5) * Kx(2, 3)) +
             Kx(0, 5) * (Kx(1, 2) * Kx(3, 4) + Kx(1, 3) * Kx(2, 4) + Kx(1, 4) * Kx(2, 3));
  CHECK_NEAR(w6, h, 1e-13);
  uint32_t t6b[6] = {2, 2, 2, 2, 2, 2};
  CHECK_STATUS(nnft_corr_wick(&K, 6, t6b, 1, &w6), NNFT_OK);
  CHECK_NEAR(w6, 15 * pow(Kx(2, 2), 3), 1e-13);
  uint32_t t2[2] = {4, 1};
  CHECK_STATUS(nnft_corr_wick(&K, 2, t2, 1, &w6), NNFT_OK);
  CHECK(w6 == Kx(4, 1));
  uint32_t t3[3] = {0, 1, 2};
  CHECK_STATUS(nnft_corr_wick(&K, 3, t3, 1, &w6), NNFT_OK);
  CHECK(w6 == 0);
  uint32_t oob[2] = {0, 6};
  CHECK_STATUS(nnft_corr_wick(&K, 2, oob, 1, &w6), NNFT_EDOM);
  CHECK_STATUS(nnft_corr_wick(&K, 8, t6, 1, &w6), NNFT_EDOM);
  nnft_mat R;
  nnft_mat_alloc(2, 3, &R);
  CHECK_STATUS(nnft_corr_wick(&R, 2, t2, 1, &w6), NNFT_EDIM);
  nnft_mat_free(&R);
#undef Kx
  nnft_mat_free(&K);
}

/* ---- connected parts ---- */

/* Exact Gaussian tables: G2 = K, G4 = wick(K), G6 = wick(K) give zero connected parts; one
 * variable with hand-made moments gives the textbook cumulants. */
static void test_connected_exact(void) {
  const size_t n = 4;
  nnft_mat K;
  random_spd(n, 8, &K);
  size_t c2, c4, c6;
  nnft_corr_ntuples(n, 2, &c2);
  nnft_corr_ntuples(n, 4, &c4);
  nnft_corr_ntuples(n, 6, &c6);
  uint32_t *t2 = malloc(c2 * 2 * 4), *t4 = malloc(c4 * 4 * 4), *t6 = malloc(c6 * 6 * 4);
  nnft_corr_tuples(n, 2, t2);
  nnft_corr_tuples(n, 4, t4);
  nnft_corr_tuples(n, 6, t6);
  double *G2 = malloc(c2 * 8), *G4 = malloc(c4 * 8), *G6 = malloc(c6 * 8);
  double *G4c = malloc(c4 * 8), *G6c = malloc(c6 * 8);
  nnft_corr_wick(&K, 2, t2, c2, G2);
  nnft_corr_wick(&K, 4, t4, c4, G4);
  nnft_corr_wick(&K, 6, t6, c6, G6);
  CHECK_STATUS(nnft_corr_connected4(n, G2, G4, G4c), NNFT_OK);
  CHECK_STATUS(nnft_corr_connected6(n, G2, G4, G6, G6c), NNFT_OK);
  double w4 = 0, w6 = 0;
  for (size_t t = 0; t < c4; t++) w4 = fmax(w4, fabs(G4c[t]) / (1e-3 + fabs(G4[t])));
  for (size_t t = 0; t < c6; t++) w6 = fmax(w6, fabs(G6c[t]) / (1e-3 + fabs(G6[t])));
  CHECK(w4 < 1e-13);
  CHECK(w6 < 1e-13);

  /* a non-Gaussian table changes exactly the cumulant: add δ to G4 at one tuple -> G4c = δ
   * there; G6c moves by -δ G2 over the splits containing that 4-tuple */
  G4[5] += 0.25;
  nnft_corr_connected4(n, G2, G4, G4c);
  CHECK_NEAR(G4c[5], 0.25, 1e-14);
  CHECK_NEAR(G4c[4], 0.0, 1e-14);

  /* one variable: moments of a non-Gaussian law, m2 = 2, m4 = 20, m6 = 300 */
  double g2 = 2, g4 = 20, g6 = 300, c4v, c6v;
  nnft_corr_connected4(1, &g2, &g4, &c4v);
  CHECK_NEAR(c4v, 20 - 3 * 4, 1e-13);
  nnft_corr_connected6(1, &g2, &g4, &g6, &c6v);
  CHECK_NEAR(c6v, 300 - 15 * 20 * 2 + 30 * 8, 1e-12);
  free(t2);
  free(t4);
  free(t6);
  free(G2);
  free(G4);
  free(G6);
  free(G4c);
  free(G6c);
  nnft_mat_free(&K);
}

/* Gaussian samples f = L z with K = L Lᵀ: connected 4- and 6-point functions vanish within
 * their error bars (bag by bag), and G4 agrees with Wick(K). */
static void test_connected_gaussian(void) {
  const size_t n = 3, E = 40000, B = 20;
  nnft_mat K;
  nnft_mat_alloc(n, n, &K);
  double x[3] = {0.2, 0.7, 1.5};
  for (size_t i = 0; i < n; i++)
    for (size_t j = 0; j < n; j++)
      NNFT_AT(&K, i, j) = 0.3 + exp(-0.5 * (x[i] - x[j]) * (x[i] - x[j]));
  /* Cholesky by hand */
  double Lc[9] = {0};
  for (size_t j = 0; j < n; j++) {
    double s = NNFT_AT(&K, j, j);
    for (size_t q = 0; q < j; q++) s -= Lc[j + q * n] * Lc[j + q * n];
    Lc[j + j * n] = sqrt(s);
    for (size_t i = j + 1; i < n; i++) {
      double t = NNFT_AT(&K, i, j);
      for (size_t q = 0; q < j; q++) t -= Lc[i + q * n] * Lc[j + q * n];
      Lc[i + j * n] = t / Lc[j + j * n];
    }
  }
  nnft_mat Z, F;
  nnft_mat_alloc(E, n, &Z);
  nnft_mat_alloc(E, n, &F);
  nnft_rng r;
  nnft_rng_init(&r, 2024);
  nnft_rng_mat_normal(&r, &Z, 0, 1);
  for (size_t e = 0; e < E; e++)
    for (size_t i = 0; i < n; i++) {
      double s = 0;
      for (size_t q = 0; q <= i; q++) s += Lc[i + q * n] * NNFT_AT(&Z, e, q);
      NNFT_AT(&F, e, i) = s;
    }
  const int orders[3] = {2, 4, 6};
  nnft_corr_acc *acc;
  nnft_corr_acc_alloc(n, orders, 3, E, B, &acc);
  CHECK_STATUS(feed(acc, &F, 512), NNFT_OK);
  size_t c2, c4, c6;
  nnft_corr_ntuples(n, 2, &c2);
  nnft_corr_ntuples(n, 4, &c4);
  nnft_corr_ntuples(n, 6, &c6);
  double *G2 = malloc(c2 * 8), *G4 = malloc(c4 * 8), *G6 = malloc(c6 * 8);
  double *B2 = malloc(c2 * B * 8), *B4 = malloc(c4 * B * 8), *B6 = malloc(c6 * B * 8);
  double *err4 = malloc(c4 * 8);
  nnft_corr_acc_result(acc, 2, G2, B2, B, NULL, NULL);
  nnft_corr_acc_result(acc, 4, G4, B4, B, NULL, err4);
  nnft_corr_acc_result(acc, 6, G6, B6, B, NULL, NULL);
  double *G4c = malloc(c4 * 8), *G6c = malloc(c6 * 8);
  nnft_corr_connected4(n, G2, G4, G4c);
  nnft_corr_connected6(n, G2, G4, G6, G6c);
  /* bag-wise connected parts give the error bars */
  double *b2 = malloc(c2 * 8), *b4 = malloc(c4 * 8), *b6 = malloc(c6 * 8);
  double *s4 = calloc(c4, 8), *s6 = calloc(c6, 8), *q4 = malloc(c4 * 8), *q6 = malloc(c6 * 8);
  double *ss4 = calloc(c4, 8), *ss6 = calloc(c6, 8);
  for (size_t b = 0; b < B; b++) {
    for (size_t t = 0; t < c2; t++) b2[t] = B2[b + t * B];
    for (size_t t = 0; t < c4; t++) b4[t] = B4[b + t * B];
    for (size_t t = 0; t < c6; t++) b6[t] = B6[b + t * B];
    nnft_corr_connected4(n, b2, b4, q4);
    nnft_corr_connected6(n, b2, b4, b6, q6);
    for (size_t t = 0; t < c4; t++) {
      s4[t] += q4[t];
      ss4[t] += q4[t] * q4[t];
    }
    for (size_t t = 0; t < c6; t++) {
      s6[t] += q6[t];
      ss6[t] += q6[t] * q6[t];
    }
  }
  int bad4 = 0, bad6 = 0, badw = 0;
  uint32_t *t4 = malloc(c4 * 16);
  nnft_corr_tuples(n, 4, t4);
  double *w4 = malloc(c4 * 8);
  nnft_corr_wick(&K, 4, t4, c4, w4);
  for (size_t t = 0; t < c4; t++) {
    double m = s4[t] / B, e = sqrt((ss4[t] / B - m * m) * B / (B - 1) / B);
    if (!(fabs(G4c[t]) < 5 * e)) bad4++;
    if (!(fabs(G4[t] - w4[t]) < 5 * err4[t])) badw++;
  }
  for (size_t t = 0; t < c6; t++) {
    double m = s6[t] / B, e = sqrt((ss6[t] / B - m * m) * B / (B - 1) / B);
    if (!(fabs(G6c[t]) < 5 * e)) bad6++;
  }
  CHECK(bad4 == 0);
  CHECK(bad6 == 0);
  CHECK(badw == 0);
  /* and the non-Gaussian control: squares of Gaussians have a clearly non-zero G4c */
  for (size_t e = 0; e < E; e++)
    for (size_t i = 0; i < n; i++) NNFT_AT(&F, e, i) = NNFT_AT(&F, e, i) * NNFT_AT(&F, e, i) - 1;
  nnft_corr_acc_free(acc);
  nnft_corr_acc_alloc(n, orders, 3, E, B, &acc);
  feed(acc, &F, 512);
  nnft_corr_acc_result(acc, 2, G2, NULL, 0, NULL, NULL);
  nnft_corr_acc_result(acc, 4, G4, NULL, 0, NULL, err4);
  nnft_corr_connected4(n, G2, G4, G4c);
  CHECK(fabs(G4c[0]) > 5 * err4[0]); /* about 7 sigma at this seed */
  nnft_corr_acc_free(acc);
  free(G2);
  free(G4);
  free(G6);
  free(B2);
  free(B4);
  free(B6);
  free(err4);
  free(G4c);
  free(G6c);
  free(b2);
  free(b4);
  free(b6);
  free(s4);
  free(s6);
  free(q4);
  free(q6);
  free(ss4);
  free(ss6);
  free(t4);
  free(w4);
  nnft_mat_free(&Z);
  nnft_mat_free(&F);
  nnft_mat_free(&K);
}

/* ---- deviation ---- */
static void test_deviation(void) {
  double G[4] = {1.1, 2.0, 5.0, 3.0}, P[4] = {1.0, -2.5, 0.0, 3.0}, S[4] = {0.1, 0.5, 9, 0.3};
  double m, bg;
  size_t used;
  CHECK_STATUS(nnft_corr_deviation(4, G, P, S, &m, &bg, &used), NNFT_OK);
  CHECK(used == 3); /* P = 0 skipped */
  CHECK_NEAR(m, (0.1 / 1.0 + 4.5 / 2.5 + 0.0) / 3, 1e-15);
  CHECK_NEAR(bg, (0.1 / 1.0 + 0.5 / 2.5 + 0.3 / 3.0) / 3, 1e-15);
  CHECK_STATUS(nnft_corr_deviation(4, G, P, NULL, &m, &bg, NULL), NNFT_OK);
  CHECK(isnan(bg));
  double Z[1] = {0};
  CHECK_STATUS(nnft_corr_deviation(1, G, Z, S, &m, &bg, &used), NNFT_OK);
  CHECK(used == 0 && isnan(m));
}

/* ---- histograms ---- */
static void test_hist(void) {
  nnft_corr_hist h, h2;
  CHECK_STATUS(nnft_corr_hist_alloc(4, 2, 0.0, 1.0, &h), NNFT_OK);
  nnft_mat F;
  nnft_mat_alloc(7, 3, &F);
  double col0[7] = {0.0, 0.1, 0.25, 0.5, 0.99, 1.0, 1.5};
  double col2[7] = {-0.1, NAN, 0.3, 0.3, 0.3, 0.8, 0.7};
  for (int i = 0; i < 7; i++) {
    NNFT_AT(&F, i, 0) = col0[i];
    NNFT_AT(&F, i, 2) = col2[i];
  }
  size_t cols[2] = {0, 2};
  CHECK_STATUS(nnft_corr_hist_add(&h, &F, cols), NNFT_OK);
  CHECK(h.counts[0] == 2 && h.counts[1] == 1 && h.counts[2] == 1 && h.counts[3] == 2);
  CHECK(h.over[0] == 1 && h.under[0] == 0 && h.nan[0] == 0);
  CHECK(h.counts[4] == 0 && h.counts[5] == 3 && h.counts[6] == 1 && h.counts[7] == 1);
  CHECK(h.under[1] == 1 && h.nan[1] == 1 && h.over[1] == 0);
  CHECK_STATUS(nnft_corr_hist_alloc(4, 2, 0.0, 1.0, &h2), NNFT_OK);
  nnft_corr_hist_add(&h2, &F, cols);
  CHECK_STATUS(nnft_corr_hist_merge(&h, &h2), NNFT_OK);
  CHECK(h.counts[0] == 4 && h.over[0] == 2 && h.nan[1] == 2);
  size_t badcol[2] = {0, 3};
  CHECK_STATUS(nnft_corr_hist_add(&h, &F, badcol), NNFT_EDIM);
  nnft_corr_hist_free(&h2);
  CHECK_STATUS(nnft_corr_hist_alloc(3, 2, 0.0, 1.0, &h2), NNFT_OK);
  CHECK_STATUS(nnft_corr_hist_merge(&h, &h2), NNFT_EDIM);
  nnft_corr_hist_free(&h2);
  nnft_corr_hist_free(&h);
  nnft_corr_hist_free(&h); /* idempotent */
  CHECK_STATUS(nnft_corr_hist_alloc(0, 1, 0, 1, &h), NNFT_EDOM);
  CHECK_STATUS(nnft_corr_hist_alloc(2, 1, 1, 1, &h), NNFT_EDOM);
  CHECK_STATUS(nnft_corr_hist_alloc(2, 1, 0, INFINITY, &h), NNFT_EDOM);
  nnft_mat_free(&F);
}

/* ---- allocation failures: every allocation path reports ENOMEM and leaks nothing ---- */
static void test_alloc_fail(void) {
  const int orders[2] = {2, 4};
  nnft_mat F;
  nnft_mat_alloc(200, 3, &F);
  fill_normal(&F, 1);
  int saw_ok = 0;
  for (long k = 0; k < 20 && !saw_ok; k++) {
    test_alloc_fail_after(k);
    nnft_corr_acc *acc = NULL;
    nnft_status s = nnft_corr_acc_alloc(3, orders, 2, 200, 4, &acc);
    if (!s) s = nnft_corr_acc_add(acc, 0, &F);
    test_alloc_fail_after(-1);
    CHECK(s == NNFT_OK || s == NNFT_ENOMEM);
    if (s == NNFT_OK) saw_ok = 1;
    nnft_corr_acc_free(acc);
  }
  CHECK(saw_ok);
  for (long k = 0; k < 6; k++) {
    test_alloc_fail_after(k);
    nnft_corr_hist h;
    nnft_status s = nnft_corr_hist_alloc(5, 2, 0, 1, &h);
    test_alloc_fail_after(-1);
    CHECK(s == NNFT_OK || s == NNFT_ENOMEM);
    nnft_corr_hist_free(&h);
  }
  nnft_mat_free(&F);
}

int main(void) {
  test_tuples();
  test_accumulator();
  test_chunk_invariance();
  test_compensation();
  test_wick();
  test_connected_exact();
  test_connected_gaussian();
  test_deviation();
  test_hist();
  test_alloc_fail();
  return test_report("test_corr");
}
