/* Fixtures shared by the C tests: a deterministic uniform generator independent of the code under
 * test, matrices that abort the test (not the checks) when they cannot be allocated, random
 * matrices, and a small MLP. Define TEST_RNG_SEED before including to pick another stream. */
#ifndef NNFT_TEST_FIXTURES_H
#define NNFT_TEST_FIXTURES_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nnft_arch.h"
#include "nnft_mat.h"
#include "test_util.h"

#ifndef TEST_RNG_SEED
#define TEST_RNG_SEED 0x9E3779B97F4A7C15ull
#endif

static uint64_t rng_state = TEST_RNG_SEED;

/* Uniform in [-1, 1), xorshift64*. */
static inline double urand(void) {
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  uint64_t r = rng_state * 0x2545F4914F6CDD1Dull;
  return (double)(r >> 11) / 9007199254740992.0 * 2.0 - 1.0;
}

/* A zero r x c matrix (allocation failures switched off first). */
static inline nnft_mat mat(size_t r, size_t c) {
  nnft_mat m;
  test_alloc_fail_after(-1);
  if (nnft_mat_alloc(r, c, &m)) {
    fprintf(stderr, "cannot allocate test matrix\n");
    exit(2);
  }
  return m;
}

/* An r x c matrix of scale * urand(). */
static inline nnft_mat randmat(size_t r, size_t c, double scale) {
  nnft_mat m = mat(r, c);
  for (size_t j = 0; j < c; j++)
    for (size_t i = 0; i < r; i++) NNFT_AT(&m, i, j) = scale * urand();
  return m;
}

/* An MLP d_in -> widths[0] -> ... -> widths[depth-1] -> 1 with σ_w = 1.3, σ_b = 0.7, biases. */
static inline nnft_arch mlp(size_t d_in, const size_t *widths, size_t depth, nnft_act act,
                            nnft_param param) {
  nnft_arch a;
  memset(&a, 0, sizeof a);
  a.d_in = d_in;
  a.nlayers = depth + 1;
  a.param = param;
  size_t fan = d_in;
  for (size_t l = 0; l <= depth; l++) {
    nnft_layer *ly = &a.layer[l];
    ly->fan_in = fan;
    ly->fan_out = l < depth ? widths[l] : 1;
    ly->act = act;
    ly->sigma_w = 1.3;
    ly->sigma_b = 0.7;
    ly->has_bias = 1;
    fan = ly->fan_out;
  }
  return a;
}

#endif
