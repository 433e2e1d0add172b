/* nnft_nngp: NNGP and NTK kernels of an architecture. Formulas and conventions in nnft_nngp.h and
 * docs/api/nngp.md. */
#include "nnft_nngp.h"

#include <gsl/gsl_sf_bessel.h>
#include <lapacke.h>
#include <math.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "nnft_alloc.h"
#include "nnft_freeprop.h"

/* Vector variants of libm (glibc >= 2.35 libmvec on x86-64): declaring the functions SIMD-capable
 * lets the activation loops below (marked `omp simd`) call them two or four at a time. */
#if defined(_OPENMP) && defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && \
    defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 35))
#define NNGP_SIMD __attribute__((simd("notinbranch")))
NNGP_SIMD extern double erf(double);
NNGP_SIMD extern double erfc(double);
NNGP_SIMD extern double exp(double);
NNGP_SIMD extern double tanh(double);
NNGP_SIMD extern double log1p(double);
NNGP_SIMD extern double sin(double);
NNGP_SIMD extern double cos(double);
NNGP_SIMD extern double expm1(double);
NNGP_SIMD extern double asin(double);
NNGP_SIMD extern double atan2(double, double);
#endif


#ifdef _OPENMP
#define NNGP_PRAGMA_SIMD _Pragma("omp simd")
#else
#define NNGP_PRAGMA_SIMD
#endif

/* Hot loops: compiled for AVX-512, AVX2 and the baseline, picked at run time. The file is
 * compiled without FMA contraction (CMakeLists.txt), so the dot products are the same bits in
 * every clone (a point's norm and its dot products agree exactly on any machine); the libm
 * vector variants of each clone may differ from each other in the last bit. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define NNGP_HOT __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define NNGP_HOT
#endif

#define NNGP_PI 3.14159265358979323846
#define NNGP_TILE NNFT_NNGP_TILE

/* ------------------------------------------------------------------------------------------
 * Gauss–Hermite rules */

void nnft_gh_rule_free(nnft_gh_rule *r) {
  if (!r) return;
  nnft_free(r->z);
  nnft_free(r->w);
  r->z = r->w = NULL;
  r->n = 0;
}

/* Orthonormal Hermite polynomials (for the standard normal) at x: *pn = p_n(x), *pn1 = p_{n-1}(x)
 * and *sum = Σ_{k<n} p_k(x)². */
static void herm_orthonormal(size_t n, double x, double *pn, double *pn1, double *sum) {
  double p0 = 1.0, p1 = x, s = 1.0;
  if (n == 0) {
    *pn = 1.0, *pn1 = 0.0, *sum = 0.0;
    return;
  }
  for (size_t k = 1; k < n; k++) { /* p1 = p_k, p0 = p_{k-1} */
    s += p1 * p1;
    double p2 = (x * p1 - sqrt((double)k) * p0) / sqrt((double)k + 1.0);
    p0 = p1;
    p1 = p2;
  }
  *pn = p1, *pn1 = p0, *sum = s;
}

nnft_status nnft_gh_rule_alloc(size_t n, nnft_gh_rule *r) {
  if (n < 2 || n > NNFT_NNGP_QUAD_MAX) return NNFT_EDOM;
  memset(r, 0, sizeof *r);
  double *d = nnft_alloc(n * sizeof *d), *e = nnft_alloc(n * sizeof *e);
  double *v = nnft_alloc(n * n * sizeof *v), *work = nnft_alloc(2 * n * sizeof *work);
  r->z = nnft_alloc(n * sizeof *r->z);
  r->w = nnft_alloc(n * sizeof *r->w);
  nnft_status s = NNFT_OK;
  if (!d || !e || !v || !work || !r->z || !r->w) {
    s = NNFT_ENOMEM;
    goto done;
  }
  /* Jacobi matrix of the probabilists' Hermite polynomials: zero diagonal, off-diagonal √k. */
  for (size_t k = 0; k < n; k++) d[k] = 0.0, e[k] = sqrt((double)k + 1.0);
  int info = LAPACKE_dstev_work(LAPACK_COL_MAJOR, 'V', (lapack_int)n, d, e, v, (lapack_int)n,
                                work);
  if (info != 0) {
    s = info < 0 ? NNFT_EINTERNAL : NNFT_ENOCONV;
    goto done;
  }
  for (size_t k = 0; k < n; k++) {
    double x = d[k], pn, pn1, sum;
    for (int it = 0; it < 3; it++) { /* Newton on p_n, p_n' = √n p_{n-1} */
      herm_orthonormal(n, x, &pn, &pn1, &sum);
      if (pn1 == 0.0 || !isfinite(pn) || !isfinite(pn1)) break;
      double dx = pn / (sqrt((double)n) * pn1);
      if (!isfinite(dx) || fabs(dx) > 1e-6 * (1.0 + fabs(x))) break;
      x -= dx;
    }
    herm_orthonormal(n, x, &pn, &pn1, &sum);
    r->z[k] = x;
    /* Christoffel number 1/Σ p_k²; the eigenvector's first component where that overflows */
    r->w[k] = isfinite(sum) && sum > 0 ? 1.0 / sum : v[(size_t)k * n] * v[(size_t)k * n];
  }
  /* exact symmetry of the rule */
  for (size_t k = 0; k < n / 2; k++) {
    double z = 0.5 * (r->z[n - 1 - k] - r->z[k]), w = 0.5 * (r->w[k] + r->w[n - 1 - k]);
    r->z[k] = -z, r->z[n - 1 - k] = z;
    r->w[k] = r->w[n - 1 - k] = w;
  }
  if (n % 2) r->z[n / 2] = 0.0;
  r->n = n;
done:
  nnft_free(d);
  nnft_free(e);
  nnft_free(v);
  nnft_free(work);
  if (s) nnft_gh_rule_free(r);
  return s;
}

/* ------------------------------------------------------------------------------------------
 * Activations on arrays (vectorisable loops) */

/* Special "activations" of one-hidden-layer networks, beyond nnft_act. */
enum { ACT_COSPHASE = NNFT_ACT_COUNT + 1 };

static double custom_deriv(const nnft_custom_act *c, double z) {
  if (c->deriv) return c->deriv(c->ctx, z);
  double h = 6e-6 * (fabs(z) > 1.0 ? fabs(z) : 1.0);
  return (c->eval(c->ctx, z + h) - c->eval(c->ctx, z - h)) / (2.0 * h);
}

/* The loops below keep libm away from subnormal results (whose slow paths cost ~100x): where a
 * value or derivative is below 1e-290 in magnitude the argument is clamped first (gelu, erf',
 * sigmoid, softplus, exp), which changes nothing above that size. */
#define CLAMP_LO(x, lo) ((x) > (lo) ? (x) : (lo))
#define CLAMP_HI(x, hi) ((x) < (hi) ? (x) : (hi))

/* y[k] = σ(x[k]) for k < n. */
NNGP_HOT static void act_values(int act, const nnft_custom_act *cu, size_t n, const double *restrict x,
                       double *restrict y) {
  switch (act) {
  case NNFT_ACT_LINEAR:
    memcpy(y, x, n * sizeof *y);
    break;
  case NNFT_ACT_RELU:
    NNGP_PRAGMA_SIMD
    for (size_t k = 0; k < n; k++) y[k] = x[k] > 0 ? x[k] : 0.0;
    break;
  case NNFT_ACT_STEP:
    NNGP_PRAGMA_SIMD
    for (size_t k = 0; k < n; k++) y[k] = x[k] > 0 ? 1.0 : 0.0;
    break;
  case NNFT_ACT_ERF:
    NNGP_PRAGMA_SIMD
    for (size_t k = 0; k < n; k++) y[k] = erf(x[k]);
    break;
  case NNFT_ACT_TANH:
    NNGP_PRAGMA_SIMD
    for (size_t k = 0; k < n; k++) y[k] = tanh(x[k]);
    break;
  case NNFT_ACT_SIGMOID:
    NNGP_PRAGMA_SIMD
    for (size_t k = 0; k < n; k++) y[k] = 1.0 / (1.0 + exp(CLAMP_HI(-x[k], 700.0)));
    break;
  case NNFT_ACT_GELU: /* z Φ(z); Φ(−37) ~ 1e-300 */
    NNGP_PRAGMA_SIMD
    for (size_t k = 0; k < n; k++) {
      double z = CLAMP_LO(x[k], -37.0);
      y[k] = x[k] > -37.0 ? 0.5 * z * erfc(-z * M_SQRT1_2) : 0.0;
    }
    break;
  case NNFT_ACT_SOFTPLUS: /* max(z, 0) + log(1 + e^{−|z|}) */
    NNGP_PRAGMA_SIMD
    for (size_t k = 0; k < n; k++) {
      double ax = x[k] > 0 ? x[k] : -x[k];
      y[k] = (x[k] > 0 ? x[k] : 0.0) + log1p(exp(-CLAMP_HI(ax, 700.0)));
    }
    break;
  case NNFT_ACT_SIN:
    NNGP_PRAGMA_SIMD
    for (size_t k = 0; k < n; k++) y[k] = sin(x[k]);
    break;
  case NNFT_ACT_COS:
    NNGP_PRAGMA_SIMD
    for (size_t k = 0; k < n; k++) y[k] = cos(x[k]);
    break;
  case NNFT_ACT_EXP:
    NNGP_PRAGMA_SIMD
    for (size_t k = 0; k < n; k++) y[k] = exp(CLAMP_LO(x[k], -700.0));
    break;
  case NNFT_ACT_CUSTOM:
    for (size_t k = 0; k < n; k++) y[k] = cu->eval(cu->ctx, x[k]);
    break;
  default:
    for (size_t k = 0; k < n; k++) y[k] = NAN;
  }
}

/* y[k] = σ'(x[k]) for k < n. */
NNGP_HOT static void act_derivs(int act, const nnft_custom_act *cu, size_t n, const double *restrict x,
                       double *restrict y) {
  switch (act) {
  case NNFT_ACT_LINEAR:
    for (size_t k = 0; k < n; k++) y[k] = 1.0;
    break;
  case NNFT_ACT_RELU:
    NNGP_PRAGMA_SIMD
    for (size_t k = 0; k < n; k++) y[k] = x[k] > 0 ? 1.0 : 0.0;
    break;
  case NNFT_ACT_STEP:
    for (size_t k = 0; k < n; k++) y[k] = 0.0;
    break;
  case NNFT_ACT_ERF:
    NNGP_PRAGMA_SIMD
    for (size_t k = 0; k < n; k++) y[k] = M_2_SQRTPI * exp(-CLAMP_HI(x[k] * x[k], 660.0));
    break;
  case NNFT_ACT_TANH:
    NNGP_PRAGMA_SIMD
    for (size_t k = 0; k < n; k++) {
      double t = tanh(x[k]);
      y[k] = 1.0 - t * t;
    }
    break;
  case NNFT_ACT_SIGMOID:
  case NNFT_ACT_SOFTPLUS: /* softplus' = sigmoid */
    NNGP_PRAGMA_SIMD
    for (size_t k = 0; k < n; k++) {
      double e = exp(-CLAMP_HI(x[k] > 0 ? x[k] : -x[k], 700.0)); /* e^{−|z|} */
      double s = x[k] > 0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
      y[k] = act == NNFT_ACT_SIGMOID ? e / ((1.0 + e) * (1.0 + e)) : s;
    }
    break;
  case NNFT_ACT_GELU: /* Φ(z) + z φ(z) */
    NNGP_PRAGMA_SIMD
    for (size_t k = 0; k < n; k++) {
      double z = CLAMP_LO(x[k], -37.0);
      double v = 0.5 * erfc(-z * M_SQRT1_2) +
                 z * exp(-0.5 * CLAMP_HI(z * z, 1320.0)) * (0.5 * M_2_SQRTPI * M_SQRT1_2);
      y[k] = x[k] > -37.0 ? v : 0.0;
    }
    break;
  case NNFT_ACT_SIN:
    NNGP_PRAGMA_SIMD
    for (size_t k = 0; k < n; k++) y[k] = cos(x[k]);
    break;
  case NNFT_ACT_COS:
    NNGP_PRAGMA_SIMD
    for (size_t k = 0; k < n; k++) y[k] = -sin(x[k]);
    break;
  case NNFT_ACT_EXP:
    NNGP_PRAGMA_SIMD
    for (size_t k = 0; k < n; k++) y[k] = exp(CLAMP_LO(x[k], -700.0));
    break;
  case NNFT_ACT_CUSTOM:
    for (size_t k = 0; k < n; k++) y[k] = custom_deriv(cu, x[k]);
    break;
  default:
    for (size_t k = 0; k < n; k++) y[k] = NAN;
  }
}

/* ------------------------------------------------------------------------------------------
 * Gaussian expectations of one pair */

/* Scratch for quadrature: arguments and values at the q + q² nodes. */
typedef struct gh_scratch {
  double *arg, *val, *dval;
} gh_scratch;

static int has_closed_form(int act) {
  switch (act) {
  case NNFT_ACT_LINEAR: case NNFT_ACT_RELU: case NNFT_ACT_STEP: case NNFT_ACT_ERF:
  case NNFT_ACT_EXP: case NNFT_ACT_SIN: case NNFT_ACT_COS: case ACT_COSPHASE:
    return 1;
  default:
    return 0;
  }
}

/* The closed-form loops take square roots of clamped (non-negative) arguments and select
 * values: the file is compiled with -fno-math-errno -fno-trapping-math (CMakeLists.txt), so GCC
 * vectorises them (sqrt inline, atan2 and asin from libmvec). */
/* Closed forms of the header for a tile: V[i + j ni], Vd[i + j ni] from q1[i], q2[j] and
 * c[i + j ni]. Written as branch-free loops over i (vectorised with libmvec where available). */
NNGP_HOT static void closed_tile(int act, size_t ni, size_t nj, const double *restrict q1,
                        const double *restrict q2, const double *restrict c, double *restrict V,
                        double *restrict Vd) {
  const double pi = NNGP_PI, inv2pi = 1.0 / (2.0 * NNGP_PI);
  for (size_t j = 0; j < nj; j++) {
    const double b = q2[j];
    const double *restrict cj = c + j * ni;
    double *restrict Vj = V + j * ni, *restrict Dj = Vd + j * ni;
    switch (act) {
    case NNFT_ACT_LINEAR:
      for (size_t i = 0; i < ni; i++) Vj[i] = cj[i], Dj[i] = 1.0;
      break;
    case NNFT_ACT_RELU:
    case NNFT_ACT_STEP: {
      /* θ = atan2(sqrt(max(q1 q2 − c², 0)), c); relu: V = (sqrt(q1 q2 − c²) + (π − θ) c)/(2π)
       * (= sqrt(q1 q2)/(2π) [sin θ + (π − θ) cos θ]); step: V = (π − θ)/(2π) = relu's V̇;
       * σ(0) = σ'(0) = 0 when a variance vanishes */
      if (act == NNFT_ACT_RELU) {
        NNGP_PRAGMA_SIMD
        for (size_t i = 0; i < ni; i++) {
          double a = q1[i], cc = cj[i], d = a * b - cc * cc;
          double sd = sqrt(d > 0 ? d : 0.0), th = atan2(sd, cc);
          double t = (pi - th) * inv2pi, v = (sd + (pi - th) * cc) * inv2pi;
          int pos = (a > 0) & (b > 0);
          Vj[i] = v;
          Dj[i] = pos ? t : 0.0;
        }
      } else {
        NNGP_PRAGMA_SIMD
        for (size_t i = 0; i < ni; i++) {
          double a = q1[i], cc = cj[i], d = a * b - cc * cc;
          double sd = sqrt(d > 0 ? d : 0.0), th = atan2(sd, cc);
          double t = (pi - th) * inv2pi;
          int pos = (a > 0) & (b > 0);
          Vj[i] = pos ? t : 0.0;
          Dj[i] = 0.0;
        }
      }
      break;
    }
    case NNFT_ACT_ERF:
      NNGP_PRAGMA_SIMD
      for (size_t i = 0; i < ni; i++) {
        double a = q1[i], cc = cj[i], d = a * b - cc * cc;
        double r = 2.0 * cc / sqrt((1.0 + 2.0 * a) * (1.0 + 2.0 * b));
        r = r > 1.0 ? 1.0 : r;
        r = r < -1.0 ? -1.0 : r;
        Vj[i] = (2.0 / pi) * asin(r);
        /* (1+2q1)(1+2q2) − 4c² = 1 + 2(q1 + q2) + 4(q1 q2 − c²), without cancellation */
        Dj[i] = (4.0 / pi) / sqrt(1.0 + 2.0 * (a + b) + 4.0 * (d > 0 ? d : 0.0));
      }
      break;
    case NNFT_ACT_EXP:
      NNGP_PRAGMA_SIMD
      for (size_t i = 0; i < ni; i++) Vj[i] = Dj[i] = exp(0.5 * (q1[i] + b) + cj[i]);
      break;
    case NNFT_ACT_SIN:
    case NNFT_ACT_COS: {
      /* E[sin u sin v] = ½(e^{−(q1+q2−2c)/2} − e^{−(q1+q2+2c)/2}), E[cos u cos v] with +;
       * written with |c| and expm1 so that neither cancels nor overflows */
      int sn = act == NNFT_ACT_SIN;
      NNGP_PRAGMA_SIMD
      for (size_t i = 0; i < ni; i++) {
        double ac = cj[i] > 0 ? cj[i] : -cj[i], big = 0.5 * exp(-0.5 * (q1[i] + b) + ac);
        double vs = -big * expm1(-2.0 * ac), vc = big * (1.0 + exp(-2.0 * ac));
        vs = cj[i] < 0 ? -vs : vs;
        Vj[i] = sn ? vs : vc;
        Dj[i] = sn ? vc : vs;
      }
      break;
    }
    case ACT_COSPHASE: /* cos(u + phase), phase ~ U[−π, π]: ½ E cos(u − v); σ' likewise */
      NNGP_PRAGMA_SIMD
      for (size_t i = 0; i < ni; i++) Vj[i] = Dj[i] = 0.5 * exp(-0.5 * (q1[i] + b) + cj[i]);
      break;
    default:
      for (size_t i = 0; i < ni; i++) Vj[i] = Dj[i] = NAN;
    }
  }
}

static void expect_closed(int act, double q1, double q2, double c, double *V, double *Vd) {
  double vd;
  closed_tile(act, 1, 1, &q1, &q2, &c, V, &vd);
  if (Vd) *Vd = vd;
}

/* Gauss–Hermite on the Cholesky factor: u = L11 z1, v = L21 z1 + L22 z2, with u the variable of
 * smaller variance (V is symmetric in u, v; the canonical order makes the finite rule symmetric
 * too, so that K(x, x') = K(x', x) exactly). */
static void expect_gh(int act, const nnft_custom_act *cu, const nnft_gh_rule *gh, gh_scratch *s,
                      double q1, double q2, double c, double *V, double *Vd) {
  if (q1 > q2) {
    double t = q1;
    q1 = q2;
    q2 = t;
  }
  size_t n = gh->n;
  const double *z = gh->z, *w = gh->w;
  double L11 = sqrt(q1 > 0 ? q1 : 0.0), L21 = 0.0, L22;
  if (L11 > 0) {
    L21 = c / L11;
    double r = q2 - L21 * L21;
    L22 = r > 0 ? sqrt(r) : 0.0;
  } else {
    L22 = sqrt(q2 > 0 ? q2 : 0.0);
  }
  double *a = s->arg;
  for (size_t i = 0; i < n; i++) a[i] = L11 * z[i];
  for (size_t i = 0; i < n; i++) {
    double t = L21 * z[i];
    double *ai = a + n + i * n;
    for (size_t j = 0; j < n; j++) ai[j] = t + L22 * z[j];
  }
  size_t tot = n + n * n;
  act_values(act, cu, tot, a, s->val);
  double acc = 0.0;
  for (size_t i = 0; i < n; i++) {
    const double *vi = s->val + n + i * n;
    double in = 0.0;
    for (size_t j = 0; j < n; j++) in += w[j] * vi[j];
    acc += w[i] * s->val[i] * in;
  }
  *V = acc;
  if (Vd) {
    act_derivs(act, cu, tot, a, s->dval);
    acc = 0.0;
    for (size_t i = 0; i < n; i++) {
      const double *vi = s->dval + n + i * n;
      double in = 0.0;
      for (size_t j = 0; j < n; j++) in += w[j] * vi[j];
      acc += w[i] * s->dval[i] * in;
    }
    *Vd = acc;
  }
}

static nnft_status scratch_alloc(size_t n, gh_scratch *s) {
  size_t tot = n + n * n;
  s->arg = nnft_alloc(tot * sizeof(double));
  s->val = nnft_alloc(tot * sizeof(double));
  s->dval = nnft_alloc(tot * sizeof(double));
  return s->arg && s->val && s->dval ? NNFT_OK : NNFT_ENOMEM;
}

static void scratch_free(gh_scratch *s) {
  nnft_free(s->arg);
  nnft_free(s->val);
  nnft_free(s->dval);
  s->arg = s->val = s->dval = NULL;
}

nnft_status nnft_nngp_expect(nnft_act act, const nnft_custom_act *custom, double q1, double q2,
                             double c, nnft_nngp_method method, const nnft_gh_rule *gh,
                             double *V, double *Vd) {
  if ((unsigned)act >= NNFT_ACT_COUNT || act == NNFT_ACT_GAUSSNET) return NNFT_EDOM;
  if (!isfinite(q1) || !isfinite(q2) || !isfinite(c) || q1 < 0 || q2 < 0) return NNFT_EDOM;
  if (method != NNFT_NNGP_AUTO && method != NNFT_NNGP_QUADRATURE) return NNFT_EDOM;
  if (act == NNFT_ACT_CUSTOM && (!custom || !custom->eval)) return NNFT_EDOM;
  if (method == NNFT_NNGP_AUTO && has_closed_form(act)) {
    expect_closed(act, q1, q2, c, V, Vd);
    return NNFT_OK;
  }
  if (!gh || gh->n < 2 || !gh->z || !gh->w) return NNFT_EDOM;
  gh_scratch s;
  nnft_status st = scratch_alloc(gh->n, &s);
  if (!st) expect_gh(act, custom, gh, &s, q1, q2, c, V, Vd);
  scratch_free(&s);
  return st;
}

/* ------------------------------------------------------------------------------------------
 * The plan: per-layer coefficients of the recursion */

typedef enum { KIND_MLP, KIND_COS_BALL } plan_kind;

typedef struct plan {
  const nnft_arch *a;
  int ntk;
  plan_kind kind;
  size_t L;                  /* hidden layers */
  double b2[NNFT_MAX_LAYERS]; /* K^{l+1} = b2[l] + w2[l] V_l (layer 0: b2[0] + w2[0] x·x') */
  double w2[NNFT_MAX_LAYERS];
  double tb[NNFT_MAX_LAYERS]; /* T^{l+1} = tb[l] + tw[l] V_l (layer 0: tb[0] + tw[0] x·x') */
  double tw[NNFT_MAX_LAYERS];
  int act[NNFT_MAX_LAYERS];   /* activation of hidden layer l+1 (index l) */
  int quad[NNFT_MAX_LAYERS];  /* 1 if that layer's expectation is by quadrature */
  int gaussnet;               /* layer 1 is a gauss-net: V needs s(x) */
  double gs_b, gs_w;          /* s(x) = gs_b + gs_w |x|² */
  int any_quad;
  size_t q;                   /* quadrature order */
  nnft_freeprop_params fp;    /* generalised cos-net */
  int ball_plain;             /* ball frequencies without amplitude */
  int cos_phase;              /* cos-net with random phases (else the x + x' term too) */
  int threads;
} plan;

nnft_nngp_opts nnft_nngp_defaults(void) {
  nnft_nngp_opts o = {0, 0, 0, NNFT_NNGP_AUTO};
  return o;
}

static nnft_status why_fail(const char **why, const char *msg, nnft_status s) {
  if (why) *why = msg;
  return s;
}

nnft_status nnft_nngp_check(const nnft_arch *a, const nnft_nngp_opts *o, const char **why) {
  if (why) *why = "";
  if (!a) return why_fail(why, "no architecture", NNFT_EDOM);
  if (a->nlayers < 1 || a->nlayers > NNFT_MAX_LAYERS)
    return why_fail(why, "the architecture has no layers", NNFT_EDOM);
  nnft_status s = nnft_arch_check(a);
  if (s) return why_fail(why, "invalid architecture", s);
  for (size_t l = 0; l < a->nlayers; l++)
    if (a->layer[l].mean_w != 0.0 || a->layer[l].mean_b != 0.0)
      return why_fail(why,
                      "the NNGP/NTK kernels are those of zero-mean parameters (physics.md §2.1); "
                      "this architecture has a non-zero mean_w or mean_b",
                      NNFT_EDOM);
  if (o) {
    if (o->ntk != 0 && o->ntk != 1) return why_fail(why, "ntk must be 0 or 1", NNFT_EDOM);
    if (o->quad_order != 0 && (o->quad_order < 2 || o->quad_order > NNFT_NNGP_QUAD_MAX))
      return why_fail(why, "quad_order must be between 2 and 256 nodes per dimension",
                      NNFT_EDOM);
    if (o->method != NNFT_NNGP_AUTO && o->method != NNFT_NNGP_QUADRATURE)
      return why_fail(why, "unknown method", NNFT_EDOM);
  }
  if (a->is_cosnet) {
    if (a->freq == NNFT_FREQ_GAUSSIAN && a->amplitude)
      return why_fail(why, "a cos-net with Gaussian frequencies and an amplitude A(b) has no "
                           "kernel formula here",
                      NNFT_EDOM);
    if (a->freq == NNFT_FREQ_BALL) {
      if (o && o->ntk)
        return why_fail(why, "the NTK of a cos-net with frequencies in a ball (generalised "
                             "cos-net) is not implemented; only the plain cos-net's",
                        NNFT_EDOM);
      if (a->amplitude) {
        nnft_freeprop_params p = nnft_freeprop_defaults();
        p.d = a->d_in;
        p.R = a->radius;
        p.m = a->mass;
        const char *fw;
        if (a->d_in > 3)
          return why_fail(why, "the generalised cos-net's kernel (the cutoff propagator) is "
                               "available for d_in = 1, 2, 3 only",
                          NNFT_EDOM);
        if (nnft_freeprop_check(&p, &fw))
          return why_fail(why, fw, NNFT_EDOM);
      }
    }
  }
  return NNFT_OK;
}

static nnft_status plan_make(const nnft_arch *a, const nnft_nngp_opts *o, plan *p) {
  nnft_status s = nnft_nngp_check(a, o, NULL);
  if (s) return s;
  memset(p, 0, sizeof *p);
  p->a = a;
  p->ntk = o->ntk;
  p->L = a->nlayers - 1;
  p->q = o->quad_order ? (size_t)o->quad_order : NNFT_NNGP_QUAD_DEFAULT;
  int ntkp = a->param == NNFT_PARAM_NTK;
  for (size_t l = 0; l < a->nlayers; l++) {
    const nnft_layer *ly = &a->layer[l];
    double sw2 = ly->sigma_w * ly->sigma_w, sb2 = ly->has_bias ? ly->sigma_b * ly->sigma_b : 0;
    p->b2[l] = sb2;
    p->w2[l] = l == 0 ? sw2 / (double)a->d_in : sw2;
    if (ly->frozen) {
      p->tb[l] = p->tw[l] = 0.0;
    } else if (ntkp) {
      p->tb[l] = p->b2[l];
      p->tw[l] = p->w2[l];
    } else {
      p->tb[l] = ly->has_bias ? 1.0 : 0.0;
      p->tw[l] = l == 0 ? 1.0 : (double)ly->fan_in;
    }
    if (l < p->L) {
      p->act[l] = ly->act;
      p->quad[l] = ly->act != NNFT_ACT_GAUSSNET &&
                   (o->method == NNFT_NNGP_QUADRATURE || !has_closed_form(ly->act));
      p->any_quad |= p->quad[l];
    }
  }
  p->threads = 1;
#ifdef _OPENMP
  p->threads = o->threads >= 1 ? o->threads : omp_get_max_threads();
  if (p->threads < 1) p->threads = 1;
#endif
  for (size_t l = 0; l < p->L; l++)
    if (p->act[l] == NNFT_ACT_CUSTOM) p->threads = 1;
  if (p->L == 1 && p->act[0] == NNFT_ACT_GAUSSNET) {
    const nnft_layer *l0 = &a->layer[0];
    p->gaussnet = 1;
    p->gs_b = l0->sigma_b * l0->sigma_b; /* the sampler's normalisation, bias or not */
    p->gs_w = l0->sigma_w * l0->sigma_w / (double)a->d_in;
  }
  if (a->is_cosnet) {
    /* phases are not a Gaussian bias: K^1 = σ_w² x·x'/d, V = ½ e^{−(q1+q2−2c)/2}; the phase
     * gradient contributes 1 to T^1 in both parameterisations (used as drawn) */
    int phase = a->layer[0].has_bias; /* without phases: E[cos u cos v], the MLP cos formula */
    p->b2[0] = 0.0;
    p->tb[0] = a->layer[0].frozen || !phase ? 0.0 : 1.0;
    p->act[0] = phase ? ACT_COSPHASE : NNFT_ACT_COS;
    p->cos_phase = phase;
    p->quad[0] = 0;
    p->any_quad = 0;
    if (a->freq == NNFT_FREQ_BALL) {
      p->kind = KIND_COS_BALL;
      p->ball_plain = !a->amplitude;
      p->fp = nnft_freeprop_defaults();
      p->fp.d = a->d_in;
      p->fp.R = a->radius;
      p->fp.m = a->mass;
    }
  }
  return NNFT_OK;
}

/* ------------------------------------------------------------------------------------------
 * Per-thread workspace and the element recursion */

typedef struct nngp_ws {
  double *k, *th, *V, *Vd, *g; /* one tile each */
  gh_scratch gs;
  nnft_freeprop_ws *fp;
} nngp_ws;

static void ws_free(nngp_ws *w) {
  nnft_free(w->k);
  nnft_free(w->th);
  nnft_free(w->V);
  nnft_free(w->Vd);
  nnft_free(w->g);
  scratch_free(&w->gs);
  nnft_freeprop_ws_free(w->fp);
  memset(w, 0, sizeof *w);
}

static nnft_status ws_alloc(const plan *p, const nnft_gh_rule *gh, nngp_ws *w) {
  memset(w, 0, sizeof *w);
  size_t T = (size_t)NNGP_TILE * NNGP_TILE * sizeof(double);
  w->k = nnft_alloc(T);
  w->th = nnft_alloc(T);
  w->V = nnft_alloc(T);
  w->Vd = nnft_alloc(T);
  w->g = nnft_alloc(T);
  if (!w->k || !w->th || !w->V || !w->Vd || !w->g) return NNFT_ENOMEM;
  if (p->any_quad) {
    nnft_status s = scratch_alloc(gh->n, &w->gs);
    if (s) return s;
  }
  if (p->kind == KIND_COS_BALL && !p->ball_plain) {
    nnft_status s = nnft_freeprop_ws_alloc(&w->fp);
    if (s) return s;
  }
  return NNFT_OK;
}

/* Per-point data: q[l * n + i] = K^{l+1}(x_i, x_i) for l < L (the preactivation variances),
 * nrm[i] = |x_i|², and the final K, Θ on the diagonal. */
typedef struct points {
  size_t n;
  double *q, *nrm, *kd, *thd;
} points;

/* The expectation of hidden layer l for cnt pairs: q1[i], q2[j] from rows/cols of a tile. */
static void expect_tile(const plan *p, const nnft_gh_rule *gh, nngp_ws *w, size_t l, size_t ni,
                        size_t nj, const double *q1, const double *q2, const double *n1,
                        const double *n2, const double *c, double *V, double *Vd) {
  int act = p->act[l];
  const nnft_custom_act *cu = &p->a->custom;
  if (p->gaussnet) { /* V = exp(½(q1 + q2 + 2c) − s1 − s2), s = gs_b + gs_w |x|² */
    for (size_t j = 0; j < nj; j++) {
      double s2 = p->gs_b + p->gs_w * n2[j];
      for (size_t i = 0; i < ni; i++) {
        size_t e = i + j * ni;
        double s1 = p->gs_b + p->gs_w * n1[i];
        V[e] = exp(0.5 * (q1[i] + q2[j]) + c[e] - s1 - s2);
        if (Vd) Vd[e] = V[e];
      }
    }
    return;
  }
  if (p->quad[l]) {
    for (size_t j = 0; j < nj; j++)
      for (size_t i = 0; i < ni; i++) {
        size_t e = i + j * ni;
        expect_gh(act, cu, gh, &w->gs, q1[i], q2[j], c[e], &V[e], Vd ? &Vd[e] : NULL);
      }
    return;
  }
  closed_tile(act, ni, nj, q1, q2, c, V, Vd ? Vd : w->Vd);
}

/* Characteristic function of the uniform law in the unit d-ball at radius-scaled argument x:
 * Γ(d/2+1) (2/x)^{d/2} J_{d/2}(x). */
static double ball_charfn(size_t d, double x) {
  if (x < 1e-4) return 1.0 - x * x / (2.0 * ((double)d + 2.0));
  if (d == 1) return sin(x) / x;
  if (d == 3) return 3.0 * (sin(x) - x * cos(x)) / (x * x * x);
  double nu = 0.5 * (double)d;
  return tgamma(nu + 1.0) * pow(2.0 / x, nu) * gsl_sf_bessel_Jnu(nu, x);
}

/* σ_a² E_b[A(b)² cos(b·v)]/2 of a ball cos-net at |v| = r. */
static nnft_status cos_ball_g(const plan *p, nngp_ws *w, double r, double *g) {
  const nnft_arch *a = p->a;
  double sa2 = a->layer[1].sigma_w * a->layer[1].sigma_w;
  if (p->ball_plain) {
    *g = 0.5 * sa2 * ball_charfn(a->d_in, a->radius * r);
    return NNFT_OK;
  }
  return nnft_freeprop_eval(w->fp, &p->fp, r, g); /* σ_a² C² (2π)^d/vol · G_1 / 2 = G_1 */
}

/* K of a ball cos-net for the pair (x, y): with phases the x − y term only, without them also
 * the x + y term (E[cos(b·x) cos(b·y)] = ½ E[cos b·(x−y) + cos b·(x+y)]). */
static nnft_status cos_ball_value(const plan *p, nngp_ws *w, const nnft_mat *X, size_t i,
                                  const nnft_mat *Y, size_t j, double *K) {
  double dm = 0.0, dp = 0.0, g, h = 0.0;
  for (size_t c = 0; c < X->cols; c++) {
    double x = NNFT_AT(X, i, c), y = NNFT_AT(Y, j, c);
    dm += (x - y) * (x - y);
    dp += (x + y) * (x + y);
  }
  nnft_status s = cos_ball_g(p, w, sqrt(dm), &g);
  if (!s && !p->cos_phase) s = cos_ball_g(p, w, sqrt(dp), &h);
  *K = p->b2[1] + g + h;
  return s;
}

/* g[i + j ni] = x_{i0+i}·y_{j0+j}, summed in coordinate order: the same arithmetic for every
 * pair, so a point's |x|² and its product with an identical row agree bit for bit (and the
 * general path at Y = X reproduces the symmetric one). */
NNGP_HOT static void tile_dots(const nnft_mat *X, size_t i0, size_t ni, const nnft_mat *Y, size_t j0,
                      size_t nj, double *restrict g) {
  const size_t d = X->cols, lx = X->ld, ly = Y->ld;
  const double *xb = X->data + i0, *yb = Y->data + j0;
  size_t i = 0;
  for (; i + 8 <= ni; i += 8) { /* 8 x 4 blocks: 32 sums in registers, each in coordinate order */
    size_t j = 0;
    for (; j + 4 <= nj; j += 4) {
      double a[4][8] = {{0}};
      for (size_t c = 0; c < d; c++) {
        const double *xc = xb + c * lx + i, *yc = yb + c * ly + j;
        for (int q = 0; q < 4; q++) {
          NNGP_PRAGMA_SIMD
          for (int p = 0; p < 8; p++) a[q][p] += xc[p] * yc[q];
        }
      }
      for (int q = 0; q < 4; q++)
        for (int p = 0; p < 8; p++) g[i + p + (j + q) * ni] = a[q][p];
    }
    for (; j < nj; j++)
      for (size_t p = i; p < i + 8; p++) {
        double s = 0.0;
        for (size_t c = 0; c < d; c++) s += xb[c * lx + p] * yb[c * ly + j];
        g[p + j * ni] = s;
      }
  }
  for (; i < ni; i++)
    for (size_t j = 0; j < nj; j++) {
      double s = 0.0;
      for (size_t c = 0; c < d; c++) s += xb[c * lx + i] * yb[c * ly + j];
      g[i + j * ni] = s;
    }
}

/* One tile of out: K or Θ for the rows i0.. of X and j0.. of Y. */
static nnft_status tile_eval(const plan *p, const nnft_gh_rule *gh, nngp_ws *w,
                             const nnft_mat *X, const points *px, size_t i0, size_t ni,
                             const nnft_mat *Y, const points *py, size_t j0, size_t nj,
                             int mirror, nnft_mat *out) {
  size_t cnt = ni * nj;
  double *k = w->k, *th = w->th, *V = w->V, *Vd = p->ntk ? w->Vd : NULL, *g = w->g;
  if (p->kind == KIND_COS_BALL) {
    for (size_t j = 0; j < nj; j++)
      for (size_t i = 0; i < ni; i++) {
        nnft_status s = cos_ball_value(p, w, X, i0 + i, Y, j0 + j, &k[i + j * ni]);
        if (s) return s;
      }
  } else {
    tile_dots(X, i0, ni, Y, j0, nj, g);
    for (size_t e = 0; e < cnt; e++) {
      k[e] = p->b2[0] + p->w2[0] * g[e];
      th[e] = p->tb[0] + p->tw[0] * g[e];
    }
    for (size_t l = 0; l < p->L; l++) {
      expect_tile(p, gh, w, l, ni, nj, px->q + l * px->n + i0, py->q + l * py->n + j0,
                  px->nrm + i0, py->nrm + j0, k, V, Vd);
      double b2 = p->b2[l + 1], w2 = p->w2[l + 1], tb = p->tb[l + 1], tw = p->tw[l + 1];
      if (p->ntk)
        for (size_t e = 0; e < cnt; e++) th[e] = tb + tw * V[e] + w2 * Vd[e] * th[e];
      for (size_t e = 0; e < cnt; e++) k[e] = b2 + w2 * V[e];
    }
  }
  const double *res = p->ntk ? th : k;
  int finite = 1;
  for (size_t e = 0; e < cnt; e++) finite &= isfinite(res[e]);
  if (!finite) return NNFT_ENONFINITE;
  for (size_t j = 0; j < nj; j++)
    for (size_t i = 0; i < ni; i++) NNFT_AT(out, i0 + i, j0 + j) = res[i + j * ni];
  if (mirror) /* symmetric path: the transposed tile (strictly lower triangle of out) */
    for (size_t i = 0; i < ni; i++)
      for (size_t j = 0; j < nj; j++)
        if (j0 + j < i0 + i || i0 != j0) NNFT_AT(out, j0 + j, i0 + i) = res[i + j * ni];
  return NNFT_OK;
}

/* The diagonal recursion for the rows of X into pts (allocated here). */
static nnft_status points_eval(const plan *p, const nnft_gh_rule *gh, nngp_ws *w,
                               const nnft_mat *X, points *pts) {
  size_t n = X->rows, L = p->L, qn;
  memset(pts, 0, sizeof *pts);
  pts->n = n;
  nnft_status s = nnft_size_mul(L ? L : 1, n, &qn);
  if (s) return s;
  if ((s = nnft_size_mul(qn, sizeof(double), &qn))) return s;
  pts->q = nnft_alloc(qn);
  pts->nrm = nnft_alloc(n * sizeof(double));
  pts->kd = nnft_alloc(n * sizeof(double));
  pts->thd = nnft_alloc(n * sizeof(double));
  if (!pts->q || !pts->nrm || !pts->kd || !pts->thd) return NNFT_ENOMEM;
  for (size_t i = 0; i < n; i++) tile_dots(X, i, 1, X, i, 1, &pts->nrm[i]);
  for (size_t i = 0; i < n; i++) {
    if ((i & 255) == 0 && nnft_interrupted()) return NNFT_EINTR;
    if (p->kind == KIND_COS_BALL) {
      if ((s = cos_ball_value(p, w, X, i, X, i, &pts->kd[i]))) return s;
      pts->thd[i] = NAN;
      continue;
    }
    double g = pts->nrm[i];
    double k = p->b2[0] + p->w2[0] * g, th = p->tb[0] + p->tw[0] * g;
    for (size_t l = 0; l < L; l++) {
      double V, Vd;
      pts->q[l * n + i] = k;
      expect_tile(p, gh, w, l, 1, 1, &k, &k, &pts->nrm[i], &pts->nrm[i], &k, &V,
                  p->ntk ? &Vd : NULL);
      if (p->ntk) th = p->tb[l + 1] + p->tw[l + 1] * V + p->w2[l + 1] * Vd * th;
      k = p->b2[l + 1] + p->w2[l + 1] * V;
    }
    pts->kd[i] = k;
    pts->thd[i] = th;
  }
  return NNFT_OK;
}

static void points_free(points *pts) {
  nnft_free(pts->q);
  nnft_free(pts->nrm);
  nnft_free(pts->kd);
  nnft_free(pts->thd);
  memset(pts, 0, sizeof *pts);
}

static nnft_status check_inputs(const nnft_arch *a, const nnft_mat *X) {
  if (!X || X->cols != a->d_in) return NNFT_EDIM;
  if (!nnft_mat_all_finite(X)) return NNFT_ENONFINITE;
  return NNFT_OK;
}

nnft_status nnft_nngp_eval(const nnft_arch *a, const nnft_nngp_opts *o, const nnft_mat *X,
                           const nnft_mat *Y, nnft_mat *out) {
  nnft_nngp_opts def = nnft_nngp_defaults();
  if (!o) o = &def;
  plan p;
  nnft_status s = plan_make(a, o, &p);
  if (s) return s;
  int sym = Y == NULL;
  if (sym) Y = X;
  if ((s = check_inputs(a, X)) || (s = check_inputs(a, Y))) return s;
  if (!out || out->rows != X->rows || out->cols != Y->rows) return NNFT_EDIM;
  if (nnft_mat_overlap(out, X) || nnft_mat_overlap(out, Y)) return NNFT_EDOM;
  size_t n = X->rows, m = Y->rows;
  if (n == 0 || m == 0) return NNFT_OK;

  nnft_gh_rule gh = {0, NULL, NULL};
  points px = {0}, py = {0};
  int nt = p.threads;
  /* a team for a handful of tiles costs more than it saves (and its idle threads spin-wait,
   * stealing the core from BLAS and from callers that evaluate many small matrices) */
  if ((n + NNGP_TILE - 1) / NNGP_TILE * ((m + NNGP_TILE - 1) / NNGP_TILE) < 4) nt = 1;
  nngp_ws *ws = nnft_alloc((size_t)nt * sizeof *ws);
  if (!ws) return NNFT_ENOMEM;
  memset(ws, 0, (size_t)nt * sizeof *ws);
  if (p.any_quad && (s = nnft_gh_rule_alloc(p.q, &gh))) goto done;
  for (int t = 0; t < nt && !s; t++) s = ws_alloc(&p, &gh, &ws[t]);
  if (s) goto done;
  if ((s = points_eval(&p, &gh, &ws[0], X, &px))) goto done;
  if (!sym && (s = points_eval(&p, &gh, &ws[0], Y, &py))) goto done;
  const points *pyp = sym ? &px : &py;

  size_t nbi = (n + NNGP_TILE - 1) / NNGP_TILE, nbj = (m + NNGP_TILE - 1) / NNGP_TILE;
  long long ntiles = (long long)(nbi * nbj);
  int stop = 0;
  nnft_status first = NNFT_OK;
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1) if (nt > 1)
#endif
  for (long long t = 0; t < ntiles; t++) {
    size_t bi = (size_t)t % nbi, bj = (size_t)t / nbi;
    if (sym && bj < bi) continue;
    int tid = 0;
#ifdef _OPENMP
    tid = omp_get_thread_num();
#endif
    int halt;
#ifdef _OPENMP
#pragma omp atomic read
#endif
    halt = stop;
    if (halt) continue;
    nnft_status st = nnft_interrupted() ? NNFT_EINTR : NNFT_OK;
    size_t i0 = bi * NNGP_TILE, j0 = bj * NNGP_TILE;
    size_t ni = n - i0 < NNGP_TILE ? n - i0 : NNGP_TILE;
    size_t nj = m - j0 < NNGP_TILE ? m - j0 : NNGP_TILE;
    if (!st) st = tile_eval(&p, &gh, &ws[tid], X, &px, i0, ni, Y, pyp, j0, nj, sym, out);
    if (st) {
#ifdef _OPENMP
#pragma omp critical(nnft_nngp_err)
#endif
      {
        if (!first) first = st;
      }
#ifdef _OPENMP
#pragma omp atomic write
#endif
      stop = 1;
    }
  }
  s = first;
  if (s) goto done;
  if (sym) /* the diagonal from the diagonal recursion (the tiles mirrored themselves) */
    for (size_t i = 0; i < n; i++) NNFT_AT(out, i, i) = o->ntk ? px.thd[i] : px.kd[i];
done:
  for (int t = 0; t < nt; t++) ws_free(&ws[t]);
  nnft_free(ws);
  points_free(&px);
  points_free(&py);
  nnft_gh_rule_free(&gh);
  return s;
}

nnft_status nnft_nngp_eval_diag(const nnft_arch *a, const nnft_nngp_opts *o, const nnft_mat *X,
                                nnft_mat *out) {
  nnft_nngp_opts def = nnft_nngp_defaults();
  if (!o) o = &def;
  plan p;
  nnft_status s = plan_make(a, o, &p);
  if (s) return s;
  if ((s = check_inputs(a, X))) return s;
  if (!out || out->rows != X->rows || out->cols != 1) return NNFT_EDIM;
  if (nnft_mat_overlap(out, X)) return NNFT_EDOM;
  if (X->rows == 0) return NNFT_OK;
  nnft_gh_rule gh = {0, NULL, NULL};
  nngp_ws w;
  points px = {0};
  memset(&w, 0, sizeof w);
  if (p.any_quad && (s = nnft_gh_rule_alloc(p.q, &gh))) goto done;
  if ((s = ws_alloc(&p, &gh, &w))) goto done;
  if ((s = points_eval(&p, &gh, &w, X, &px))) goto done;
  for (size_t i = 0; i < X->rows; i++) NNFT_AT(out, i, 0) = o->ntk ? px.thd[i] : px.kd[i];
  if (!nnft_mat_all_finite(out)) s = NNFT_ENONFINITE;
done:
  ws_free(&w);
  points_free(&px);
  nnft_gh_rule_free(&gh);
  return s;
}

nnft_status nnft_nngp_matrix(const nnft_arch *a, int ntk, int quad_order, const nnft_mat *X,
                             const nnft_mat *Y, nnft_mat *out) {
  nnft_nngp_opts o = nnft_nngp_defaults();
  o.ntk = ntk;
  o.quad_order = quad_order;
  return nnft_nngp_eval(a, &o, X, Y, out);
}

nnft_status nnft_nngp_diag(const nnft_arch *a, int ntk, int quad_order, const nnft_mat *X,
                           nnft_mat *out) {
  nnft_nngp_opts o = nnft_nngp_defaults();
  o.ntk = ntk;
  o.quad_order = quad_order;
  return nnft_nngp_eval_diag(a, &o, X, out);
}

nnft_status nnft_nngp_workspace_bytes(const nnft_arch *a, const nnft_nngp_opts *o, size_t n,
                                      size_t m, size_t *bytes) {
  nnft_nngp_opts def = nnft_nngp_defaults();
  if (!o) o = &def;
  plan p;
  nnft_status s = plan_make(a, o, &p);
  if (s) return s;
  size_t per = 5 * (size_t)NNGP_TILE * NNGP_TILE * sizeof(double), tot, pts, L1 = p.L ? p.L : 1;
  if (p.any_quad) per += 3 * (p.q + p.q * p.q) * sizeof(double) + 2 * p.q * sizeof(double);
  if ((s = nnft_size_mul(per, (size_t)p.threads, &tot))) return s;
  if ((s = nnft_size_add(n, m, &pts))) return s;
  if ((s = nnft_size_mul(pts, (L1 + 3) * sizeof(double), &pts))) return s;
  if ((s = nnft_size_add(tot, pts, &tot))) return s;
  *bytes = tot;
  return NNFT_OK;
}
