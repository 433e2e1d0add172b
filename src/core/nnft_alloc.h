/* The core's allocator: 64-byte aligned blocks. Linked as its own object so that tests can
 * substitute an allocator that fails on the k-th call (tests/c/fail_alloc.c). */
#ifndef NNFT_ALLOC_H
#define NNFT_ALLOC_H

#include <stddef.h>

#define NNFT_ALIGN 64

/* Aligned block of `bytes` bytes (0 gives a valid minimal block), or NULL. */
void *nnft_alloc(size_t bytes);
/* Free a block from nnft_alloc; NULL is fine. */
void nnft_free(void *p);

#include <stdlib.h>
/* The aligned allocation itself, shared by nnft_alloc.c and the test allocator. */
static inline void *nnft__aligned_block(size_t bytes) {
  size_t rounded = (bytes + NNFT_ALIGN - 1) / NNFT_ALIGN * NNFT_ALIGN;
  if (rounded < bytes) return NULL; /* wrapped */
  if (rounded == 0) rounded = NNFT_ALIGN;
  return aligned_alloc(NNFT_ALIGN, rounded);
}

#endif
