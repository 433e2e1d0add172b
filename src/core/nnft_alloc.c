#include "nnft_alloc.h"

void *nnft_alloc(size_t bytes) { return nnft__aligned_block(bytes); }

void nnft_free(void *p) { free(p); }
