#include "nnft_status.h"

#include <limits.h>
#include <stdint.h>

volatile sig_atomic_t nnft_interrupt_flag = 0;

const char *nnft_strerror(nnft_status s) {
  switch (s) {
  case NNFT_OK: return "success";
  case NNFT_ENOMEM: return "out of memory";
  case NNFT_EOVERFLOW: return "size too large";
  case NNFT_EDIM: return "shapes do not conform";
  case NNFT_EDOM: return "argument out of range";
  case NNFT_ENONFINITE: return "NaN or Inf in input";
  case NNFT_ENOTPD: return "matrix is not positive definite";
  case NNFT_ESINGULAR: return "matrix is singular";
  case NNFT_ENOCONV: return "algorithm did not converge";
  case NNFT_EIO: return "input/output error";
  case NNFT_EFORMAT: return "bad file format";
  case NNFT_EINTR: return "interrupted";
  case NNFT_EINTERNAL: return "internal error (a bug in nnft)";
  }
  return "unknown status";
}

nnft_status nnft_size_mul(size_t a, size_t b, size_t *out) {
  if (a != 0 && b > SIZE_MAX / a) return NNFT_EOVERFLOW;
  *out = a * b;
  return NNFT_OK;
}

nnft_status nnft_size_add(size_t a, size_t b, size_t *out) {
  if (b > SIZE_MAX - a) return NNFT_EOVERFLOW;
  *out = a + b;
  return NNFT_OK;
}

nnft_status nnft_blas_int(size_t n, int *out) {
  if (n > (size_t)INT_MAX) return NNFT_EOVERFLOW;
  *out = (int)n;
  return NNFT_OK;
}
