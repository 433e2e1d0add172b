/* Test allocator: behaves like nnft_alloc.c until the countdown set by
 * test_alloc_fail_after(k) reaches zero, then fails every call, so each allocation path of a
 * core function can be made to fail in turn. */
#include "nnft_alloc.h"
#include "test_util.h"

#include <stdlib.h>

static long countdown = -1; /* -1: never fail */

void test_alloc_fail_after(long k) { countdown = k; }

void *nnft_alloc(size_t bytes) {
  if (countdown == 0) return NULL;
  if (countdown > 0) countdown--;
  return nnft__aligned_block(bytes);
}

void nnft_free(void *p) { free(p); }
