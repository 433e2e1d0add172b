/* nnft_status: the one error type of the numerical core.
 * Every fallible core function returns an nnft_status; none prints, exits or aborts. */
#ifndef NNFT_STATUS_H
#define NNFT_STATUS_H

#include <signal.h>
#include <stddef.h>

typedef enum nnft_status {
  NNFT_OK = 0,
  NNFT_ENOMEM,      /* an allocation failed */
  NNFT_EOVERFLOW,   /* a size computation overflowed, or exceeds what BLAS/LAPACK can index */
  NNFT_EDIM,        /* operand shapes do not conform */
  NNFT_EDOM,        /* an argument is outside its domain (negative size, bad option value) */
  NNFT_ENONFINITE,  /* NaN or Inf where finite values are required */
  NNFT_ENOTPD,      /* matrix is not (numerically) positive definite */
  NNFT_ESINGULAR,   /* matrix is singular (exact zero pivot) */
  NNFT_ENOCONV,     /* an iterative algorithm did not converge */
  NNFT_EIO,         /* reading or writing a file failed */
  NNFT_EFORMAT,     /* a file is not in the expected format */
  NNFT_EINTR,       /* interrupted by the user (Ctrl-C) */
  NNFT_EINTERNAL    /* a bug in nnft (e.g. LAPACK reported an illegal argument) */
} nnft_status;

/* Short English description of a status; never NULL. */
const char *nnft_strerror(nnft_status s);

/* The one piece of process-wide mutable state: set asynchronously by the interpreter's SIGINT
 * handler, polled by long loops (which then return NNFT_EINTR), cleared by whoever reports it.
 * A signal cannot carry a context pointer, hence a global (docs/design.md). */
extern volatile sig_atomic_t nnft_interrupt_flag;

/* Non-zero if an interrupt is pending. Cheap: call it once per outer iteration. */
static inline int nnft_interrupted(void) { return nnft_interrupt_flag != 0; }

/* Checked size arithmetic: return NNFT_EOVERFLOW instead of wrapping. */
nnft_status nnft_size_mul(size_t a, size_t b, size_t *out);
nnft_status nnft_size_add(size_t a, size_t b, size_t *out);
/* The one conversion from size_t to the BLAS/LAPACK integer (int here). */
nnft_status nnft_blas_int(size_t n, int *out);

#endif
