/* Minimal C unit-test harness shared by tests/c/test_*.c. */
#ifndef NNFT_TEST_UTIL_H
#define NNFT_TEST_UTIL_H

#include <math.h>
#include <stdio.h>

void test_alloc_fail_after(long k); /* fail_alloc.c: -1 disables failures */

static int test_failures = 0;
static int test_checks = 0;

#define CHECK(cond)                                                                   \
  do {                                                                                \
    test_checks++;                                                                    \
    if (!(cond)) {                                                                    \
      test_failures++;                                                                \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);        \
    }                                                                                 \
  } while (0)

#define CHECK_STATUS(expr, want)                                                      \
  do {                                                                                \
    int got_ = (int)(expr);                                                           \
    test_checks++;                                                                    \
    if (got_ != (int)(want)) {                                                        \
      test_failures++;                                                                \
      fprintf(stderr, "%s:%d: %s returned %d, expected %s\n", __FILE__, __LINE__,    \
              #expr, got_, #want);                                                    \
    }                                                                                 \
  } while (0)

#define CHECK_NEAR(a, b, tol)                                                         \
  do {                                                                                \
    double a_ = (a), b_ = (b);                                                        \
    test_checks++;                                                                    \
    if (!(fabs(a_ - b_) <= (tol))) {                                                  \
      test_failures++;                                                                \
      fprintf(stderr, "%s:%d: %s = %.17g, expected %.17g (tol %g)\n", __FILE__,      \
              __LINE__, #a, a_, b_, (double)(tol));                                   \
    }                                                                                 \
  } while (0)

/* Print the plain closing line and return the process status. */
static inline int test_report(const char *name) {
  printf("%s: %d passed, %d failed\n", name, test_checks - test_failures, test_failures);
  return test_failures ? 1 : 0;
}

#endif
