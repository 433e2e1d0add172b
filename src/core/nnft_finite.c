#include "nnft_finite.h"

#include <float.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>

#include <gsl/gsl_errno.h>
#include <gsl/gsl_sf_bessel.h>

#include "nnft_alloc.h"
#include "nnft_freeprop.h"

#define MAXN NNFT_FINITE_MAX_ORDER
#define RANK_TOL 1e-13     /* eigenvalues below RANK_TOL λ_max count as zero */
#define ARC_NODES_DEFAULT 32
#define TRAP_Z 9.0         /* trapezoid rule on [-Z, Z] per dimension */
#define TRAP_MAX 1025      /* largest adaptive trapezoid grid per dimension */
/* trapezoid step in units of 1/a_max for rank r = 1..6: ~1e-15 for erf at r <= 3, coarser
 * (and cheaper: the node count grows like (18 a / h)^r) for r = 4..6 */
static const double trap_h[MAXN + 1] = {0.0, 0.3, 0.3, 0.4, 0.5, 0.7, 0.9};

/* Default Gauss–Hermite nodes per dimension for rank r = 1..6. */
static const size_t gh_default[MAXN + 1] = {0, 64, 40, 20, 16, 10, 8}; /* kinks at r >= 4, or method GH */

nnft_finite_opts nnft_finite_defaults(void) {
  nnft_finite_opts o = {0, 0, NNFT_FINITE_AUTO};
  return o;
}

/* ---------------------------------------------------------------------------------------------
 * Quadrature rules */

/* Gauss–Hermite for the weight e^{-x²} by Newton's method on the orthonormal Hermite recurrence
 * (Golub–Welsch-quality for n up to a few hundred; the initial guesses are those of Numerical
 * Recipes' gauher). Returned for the standard normal: z = √2 x, w / √π (Σ w = 1). */
static void gauss_hermite(size_t n, double *z, double *w) {
  const double pim4 = 0.7511255444649425; /* π^{-1/4} */
  size_t m = (n + 1) / 2;
  double x = 0.0, pp = 1.0;
  for (size_t i = 0; i < m; i++) {
    if (i == 0) x = sqrt(2.0 * n + 1.0) - 1.85575 * pow(2.0 * n + 1.0, -0.16667);
    else if (i == 1) x -= 1.14 * pow((double)n, 0.426) / x;
    else if (i == 2) x = 1.86 * x - 0.86 * z[0];
    else if (i == 3) x = 1.91 * x - 0.91 * z[1];
    else x = 2.0 * x - z[i - 2];
    for (int it = 0; it < 100; it++) {
      double p1 = pim4, p2 = 0.0, p3;
      for (size_t j = 1; j <= n; j++) {
        p3 = p2;
        p2 = p1;
        p1 = x * sqrt(2.0 / (double)j) * p2 - sqrt((double)(j - 1) / (double)j) * p3;
      }
      pp = sqrt(2.0 * (double)n) * p2;
      double x1 = x;
      x = x1 - p1 / pp;
      if (fabs(x - x1) <= 1e-15 * (1.0 + fabs(x))) break;
    }
    z[i] = x; /* unscaled for the next guesses; rescaled below */
    z[n - 1 - i] = -x;
    w[i] = w[n - 1 - i] = 2.0 / (pp * pp);
  }
  if (n % 2) z[n / 2] = 0.0;
  for (size_t i = 0; i < n; i++) {
    z[i] *= M_SQRT2;
    w[i] /= sqrt(M_PI);
  }
}

/* Gauss–Legendre on [-1, 1] by Newton's method on the Legendre recurrence. */
static void gauss_legendre(size_t n, double *x, double *w) {
  size_t m = (n + 1) / 2;
  for (size_t i = 0; i < m; i++) {
    double t = cos(M_PI * ((double)i + 0.75) / ((double)n + 0.5)), pp = 1.0;
    for (int it = 0; it < 100; it++) {
      double p1 = 1.0, p2 = 0.0, p3;
      for (size_t j = 1; j <= n; j++) {
        p3 = p2;
        p2 = p1;
        p1 = ((2.0 * j - 1.0) * t * p2 - (j - 1.0) * p3) / (double)j;
      }
      pp = (double)n * (t * p1 - p2) / (t * t - 1.0);
      double t1 = t;
      t = t1 - p1 / pp;
      if (fabs(t - t1) <= 1e-16) break;
    }
    x[i] = -t;
    x[n - 1 - i] = t;
    w[i] = w[n - 1 - i] = 2.0 / ((1.0 - t * t) * pp * pp);
  }
}

/* Cyclic Jacobi eigendecomposition of a symmetric n x n (n <= 6) matrix a (column-major,
 * destroyed): eigenvalues w, eigenvectors the columns of v. Accurate to machine precision
 * relative to the largest eigenvalue; allocation-free for the tiny covariances used here. */
static void jacobi_eig(double *a, size_t n, double *w, double *v) {
  for (size_t i = 0; i < n; i++)
    for (size_t j = 0; j < n; j++) v[i + j * n] = i == j;
  for (int sweep = 0; sweep < 60; sweep++) {
    double off = 0.0, diag = 0.0;
    for (size_t j = 0; j < n; j++) {
      diag += a[j + j * n] * a[j + j * n];
      for (size_t i = 0; i < j; i++) off += a[i + j * n] * a[i + j * n];
    }
    if (off <= 1e-32 * diag || off == 0.0) break;
    for (size_t p = 0; p < n; p++)
      for (size_t q = p + 1; q < n; q++) {
        double apq = a[p + q * n];
        if (apq == 0.0) continue;
        double app = a[p + p * n], aqq = a[q + q * n];
        double theta = (aqq - app) / (2.0 * apq);
        double t = (theta >= 0 ? 1.0 : -1.0) / (fabs(theta) + sqrt(theta * theta + 1.0));
        double c = 1.0 / sqrt(t * t + 1.0), s = t * c;
        for (size_t k = 0; k < n; k++) { /* columns p, q */
          double akp = a[k + p * n], akq = a[k + q * n];
          a[k + p * n] = c * akp - s * akq;
          a[k + q * n] = s * akp + c * akq;
        }
        for (size_t k = 0; k < n; k++) { /* rows p, q */
          double apk = a[p + k * n], aqk = a[q + k * n];
          a[p + k * n] = c * apk - s * aqk;
          a[q + k * n] = s * apk + c * aqk;
        }
        for (size_t k = 0; k < n; k++) {
          double vkp = v[k + p * n], vkq = v[k + q * n];
          v[k + p * n] = c * vkp - s * vkq;
          v[k + q * n] = s * vkp + c * vkq;
        }
      }
  }
  for (size_t i = 0; i < n; i++) w[i] = a[i + i * n];
}

/* ---------------------------------------------------------------------------------------------
 * Architecture checks */

static int is_generalised(const nnft_arch *a) {
  return a->is_cosnet && a->freq == NNFT_FREQ_BALL && a->amplitude;
}

nnft_status nnft_finite_check_arch(const nnft_arch *a, size_t nmax, const char **why) {
  const char *w = NULL;
  nnft_status s = nnft_arch_check(a);
  if (s) {
    if (why) *why = "invalid architecture";
    return s;
  }
  if (nmax < 1 || nmax > MAXN) w = "the order n must be between 1 and 6";
  else if (a->nlayers != 2)
    w = "the exact finite-width formulas (physics.md §3.4) hold for networks with exactly one "
        "hidden layer";
  else if (a->layer[0].mean_w != 0 || a->layer[0].mean_b != 0 || a->layer[1].mean_w != 0 ||
           a->layer[1].mean_b != 0)
    w = "the exact finite-width formulas assume zero-mean weights and biases";
  else if (a->is_cosnet && a->amplitude && a->freq != NNFT_FREQ_BALL)
    w = "cos-net amplitudes A(b) are supported with frequencies uniform in a ball only";
  else if (is_generalised(a) && a->d_in > 3)
    w = "generalised cos-net moments need d <= 3 (they use the free propagator integrals)";
  else if (is_generalised(a) && a->mass == 0 && !((double)a->d_in > (double)nmax))
    w = "for m = 0 the amplitude moments E[A(b)^n cos(b.v)] diverge at b = 0 (they converge "
        "only for d > n); give the cos-net a mass m > 0";
  if (why) *why = w;
  return w ? NNFT_EDOM : NNFT_OK;
}

/* ---------------------------------------------------------------------------------------------
 * Tuples */

nnft_status nnft_finite_ntuples(size_t n_pts, size_t k, size_t *count) {
  /* C(n + k - 1, k) = Π_{i=1..k} (n + i - 1) / i, each partial product an integer */
  size_t c = 1;
  for (size_t i = 1; i <= k; i++) {
    size_t num;
    nnft_status s = nnft_size_mul(c, n_pts + i - 1, &num);
    if (s) return s;
    c = num / i;
  }
  *count = n_pts == 0 && k > 0 ? 0 : c;
  return NNFT_OK;
}

/* Next sorted tuple in lexicographic order; 0 when t was the last. */
static int next_tuple(size_t *t, size_t k, size_t n_pts) {
  for (size_t p = k; p-- > 0;)
    if (t[p] + 1 < n_pts) {
      t[p]++;
      for (size_t q = p + 1; q < k; q++) t[q] = t[p];
      return 1;
    }
  return 0;
}

nnft_status nnft_finite_tuples(size_t n_pts, size_t k, nnft_mat *tuples) {
  size_t count;
  nnft_status s = nnft_finite_ntuples(n_pts, k, &count);
  if (s) return s;
  if (k > MAXN || tuples->rows != count || tuples->cols != k) return NNFT_EDIM;
  size_t t[MAXN] = {0};
  for (size_t row = 0; row < count; row++) {
    for (size_t p = 0; p < k; p++) NNFT_AT(tuples, row, p) = (double)t[p];
    next_tuple(t, k, n_pts);
  }
  return NNFT_OK;
}

/* ---------------------------------------------------------------------------------------------
 * Workspace */

typedef struct fin_ws {
  const nnft_arch *a;
  nnft_finite_opts o;
  size_t q[MAXN + 1];
  double *ghz[MAXN + 1], *ghw[MAXN + 1];
  size_t na;
  double *glx, *glw;
  double *tz, *tw; /* trapezoid nodes and weights (TRAP_MAX each) */
  double *block;
  nnft_freeprop_ws *fp;
  nnft_status fp_status; /* first failure inside a cos-net g evaluation */
} fin_ws;

static void ws_free(fin_ws *w) {
  nnft_free(w->block);
  nnft_freeprop_ws_free(w->fp);
  w->block = NULL;
  w->fp = NULL;
}

static nnft_status ws_init(fin_ws *w, const nnft_arch *a, const nnft_finite_opts *opts) {
  memset(w, 0, sizeof *w);
  w->a = a;
  w->o = opts ? *opts : nnft_finite_defaults();
  if (w->o.order == 1 || w->o.order > NNFT_FINITE_MAX_NODES || w->o.arc_nodes > NNFT_FINITE_MAX_NODES ||
      (w->o.method != NNFT_FINITE_AUTO && w->o.method != NNFT_FINITE_GH))
    return NNFT_EDOM;
  w->na = w->o.arc_nodes ? w->o.arc_nodes : ARC_NODES_DEFAULT;
  size_t total = 2 * w->na + 2 * TRAP_MAX;
  for (size_t r = 1; r <= MAXN; r++) {
    w->q[r] = w->o.order ? w->o.order : gh_default[r];
    total += 2 * w->q[r];
  }
  w->block = nnft_alloc(total * sizeof(double));
  if (!w->block) return NNFT_ENOMEM;
  double *p = w->block;
  for (size_t r = 1; r <= MAXN; r++) {
    w->ghz[r] = p;
    w->ghw[r] = p + w->q[r];
    p += 2 * w->q[r];
    /* ranks share rules of equal size: compute each distinct size once */
    size_t same = 0;
    for (size_t s = 1; s < r; s++)
      if (w->q[s] == w->q[r]) same = s;
    if (same) {
      memcpy(w->ghz[r], w->ghz[same], w->q[r] * sizeof(double));
      memcpy(w->ghw[r], w->ghw[same], w->q[r] * sizeof(double));
    } else {
      gauss_hermite(w->q[r], w->ghz[r], w->ghw[r]);
    }
  }
  w->glx = p;
  w->glw = p + w->na;
  w->tz = p + 2 * w->na;
  w->tw = w->tz + TRAP_MAX;
  gauss_legendre(w->na, w->glx, w->glw);
  if (is_generalised(a)) {
    nnft_status s = nnft_freeprop_ws_alloc(&w->fp);
    if (s) {
      ws_free(w);
      return s;
    }
  }
  return NNFT_OK;
}

static double act(const fin_ws *w, double z) {
  const nnft_arch *a = w->a;
  if (a->layer[0].act == NNFT_ACT_CUSTOM) return a->custom.eval(a->custom.ctx, z);
  return nnft_act_eval(a->layer[0].act, z);
}

/* ---------------------------------------------------------------------------------------------
 * Moments of ordinary one-hidden-layer networks */

/* Preactivation covariance k_ij of the n points (n x n, column-major). */
static void covariance(const nnft_arch *a, const nnft_mat *X, const size_t *idx, size_t n,
                       double *k) {
  const nnft_layer *l0 = &a->layer[0];
  double sb2 = l0->has_bias ? l0->sigma_b * l0->sigma_b : 0.0;
  double sw2 = l0->sigma_w * l0->sigma_w / (double)a->d_in;
  for (size_t i = 0; i < n; i++)
    for (size_t j = 0; j <= i; j++) {
      double dot = 0.0;
      for (size_t c = 0; c < X->cols; c++) dot += NNFT_AT(X, idx[i], c) * NNFT_AT(X, idx[j], c);
      k[i + j * n] = k[j + i * n] = sb2 + sw2 * dot;
    }
}

/* Tensor-product rule with nodes z[0..q) and weights wt (normalised for N(0,1)) per dimension:
 * E[Π_j σ(Σ_k L_jk z_k)], z ~ N(0, I_r), over nodes with |z|² <= prune2. n q^r evaluations at
 * most. Polls the interrupt flag every 2^20 nodes (*intr = 1 when set). */
static double tensor_moment(const fin_ws *w, const double *L, size_t n, size_t r, const double *z,
                            const double *wt, size_t q, double prune2, int *intr) {
  size_t id[MAXN] = {0}, visited = 0;
  double sum = 0.0, comp = 0.0;
  for (;;) {
    double wp = 1.0, u[MAXN] = {0}, z2 = 0.0;
    for (size_t k = 0; k < r; k++) {
      double zk = z[id[k]];
      z2 += zk * zk;
      wp *= wt[id[k]];
      for (size_t j = 0; j < n; j++) u[j] += L[j + k * n] * zk;
    }
    if (z2 <= prune2) {
      double term = wp;
      for (size_t j = 0; j < n && term != 0.0; j++) term *= act(w, u[j]);
      double y = term - comp, t = sum + y; /* Kahan */
      comp = (t - sum) - y;
      sum = t;
    }
    if ((++visited & 0xFFFFF) == 0 && nnft_interrupted()) {
      *intr = 1;
      return NAN;
    }
    size_t k = 0;
    while (k < r && ++id[k] == q) id[k++] = 0;
    if (k == r) break;
  }
  return sum;
}

/* Gauss–Hermite with q[r] nodes per dimension. */
static double gh_moment(const fin_ws *w, const double *L, size_t n, size_t r, int *intr) {
  return tensor_moment(w, L, n, r, w->ghz[r], w->ghw[r], w->q[r], INFINITY, intr);
}

/* Trapezoid rule on [−Z, Z]^r pruned to the ball |z| <= Z (Z = 9: e^{−Z²/2} = 3e-18), step
 * h = trap_h[r] / max(1, a_max) with a_max = max_j sqrt(k_jj): exponentially accurate for
 * Gaussian-weighted entire integrands (Trefethen & Weideman, SIAM Rev. 56 (2014) 385), and unlike
 * Gauss–Hermite its resolution near z = 0 follows the activation's scale 1/a_max. */
static double trap_moment(fin_ws *w, const double *L, size_t n, size_t r, double amax,
                          int *intr) {
  size_t q = w->o.order;
  if (!q) {
    double h = trap_h[r] / (amax > 1.0 ? amax : 1.0);
    double half = ceil(TRAP_Z / h);
    q = half * 2.0 + 1.0 > (double)TRAP_MAX ? TRAP_MAX : 2 * (size_t)half + 1;
  }
  double h = 2.0 * TRAP_Z / (double)(q - 1);
  for (size_t k = 0; k < q; k++) {
    double z = -TRAP_Z + (double)k * h;
    w->tz[k] = z;
    w->tw[k] = h * exp(-0.5 * z * z) / sqrt(2.0 * M_PI);
  }
  return tensor_moment(w, L, n, r, w->tz, w->tw, q, TRAP_Z * TRAP_Z * (1.0 + 1e-12), intr);
}

/* Π_j σ(a_j·ω) for unit ω in R^r (rows a_j of L). */
static double ang_integrand(const fin_ws *w, const double *L, size_t n, size_t r,
                            const double *om) {
  double prod = 1.0;
  for (size_t j = 0; j < n && prod != 0.0; j++) {
    double u = 0.0;
    for (size_t k = 0; k < r; k++) u += L[j + k * n] * om[k];
    prod *= act(w, u);
  }
  return prod;
}

static int cmp_double(const void *x, const void *y) {
  double a = *(const double *)x, b = *(const double *)y;
  return (a > b) - (a < b);
}

/* Reduce an angle to [0, 2π). */
static double wrap2pi(double t) {
  t = fmod(t, 2.0 * M_PI);
  return t < 0 ? t + 2.0 * M_PI : t;
}

/* ∫ over φ in [0, 2π) of Π_j σ(A_j + B_j cos(φ − ψ_j)) (the integrand on the circle of the
 * sphere at fixed θ, or the whole circle S^1 with A = 0), split at the sign changes. */
static double circle_integral(const fin_ws *w, const double *A, const double *B,
                              const double *psi, size_t n) {
  double br[4 * MAXN + 2];
  size_t nb = 0;
  br[nb++] = 0.0;
  br[nb++] = 2.0 * M_PI;
  for (size_t j = 0; j < n; j++)
    if (B[j] > 0 && fabs(A[j]) < B[j]) {
      double d = acos(-A[j] / B[j]);
      br[nb++] = wrap2pi(psi[j] + d);
      br[nb++] = wrap2pi(psi[j] - d);
    }
  qsort(br, nb, sizeof(double), cmp_double);
  double total = 0.0;
  for (size_t k = 0; k + 1 < nb; k++) {
    double lo = br[k], hi = br[k + 1];
    if (!(hi > lo)) continue;
    double mid = 0.5 * (lo + hi), half = 0.5 * (hi - lo);
    /* signs are constant on the piece: skip it if the product vanishes there */
    double pm = 1.0;
    for (size_t j = 0; j < n && pm != 0.0; j++) pm *= act(w, A[j] + B[j] * cos(mid - psi[j]));
    if (pm == 0.0) continue;
    double s = 0.0;
    for (size_t i = 0; i < w->na; i++) {
      double phi = mid + half * w->glx[i], p = 1.0;
      for (size_t j = 0; j < n; j++) p *= act(w, A[j] + B[j] * cos(phi - psi[j]));
      s += w->glw[i] * p;
    }
    total += half * s;
  }
  return total;
}

/* E[Π σ(a_j·z)] for positively homogeneous σ of degree p (relu: 1 per factor, step: 0) by polar
 * coordinates: c_{p,r} ∫_{S^{r−1}} Π σ(a_j·ω) dω, c = (2π)^{−r/2} 2^{(p+r)/2−1} Γ((p+r)/2). */
static double polar_moment(const fin_ws *w, const double *L, size_t n, size_t r, double p) {
  double c = pow(2.0 * M_PI, -0.5 * r) * pow(2.0, 0.5 * (p + r) - 1.0) * tgamma(0.5 * (p + r));
  if (r == 1) {
    double om = 1.0, s = ang_integrand(w, L, n, 1, &om);
    om = -1.0;
    return c * (s + ang_integrand(w, L, n, 1, &om));
  }
  if (r == 2) {
    double A[MAXN], B[MAXN], psi[MAXN];
    for (size_t j = 0; j < n; j++) {
      A[j] = 0.0;
      B[j] = hypot(L[j], L[j + n]);
      psi[j] = atan2(L[j + n], L[j]);
    }
    return c * circle_integral(w, A, B, psi, n);
  }
  /* r = 3: ω = (cos θ, sin θ cos φ, sin θ sin φ), dω = sin θ dθ dφ */
  double al[MAXN], rho[MAXN], psi[MAXN];
  double br[2 * MAXN + MAXN * (MAXN - 1) + 2];
  size_t nb = 0;
  br[nb++] = 0.0;
  br[nb++] = M_PI;
  for (size_t j = 0; j < n; j++) {
    al[j] = L[j];
    rho[j] = hypot(L[j + n], L[j + 2 * n]);
    psi[j] = atan2(L[j + 2 * n], L[j + n]);
    if (al[j] != 0 || rho[j] != 0) { /* tangency of the kink circle to the latitude circles */
      double ts = atan2(fabs(al[j]), rho[j]);
      br[nb++] = ts;
      br[nb++] = M_PI - ts;
    }
  }
  for (size_t i = 0; i < n; i++) /* crossings of two kink circles: ±(a_i × a_j) */
    for (size_t j = i + 1; j < n; j++) {
      double ai[3] = {L[i], L[i + n], L[i + 2 * n]}, aj[3] = {L[j], L[j + n], L[j + 2 * n]};
      double cr[3] = {ai[1] * aj[2] - ai[2] * aj[1], ai[2] * aj[0] - ai[0] * aj[2],
                      ai[0] * aj[1] - ai[1] * aj[0]};
      double nc = sqrt(cr[0] * cr[0] + cr[1] * cr[1] + cr[2] * cr[2]);
      double na = sqrt(ai[0] * ai[0] + ai[1] * ai[1] + ai[2] * ai[2]);
      double nbj = sqrt(aj[0] * aj[0] + aj[1] * aj[1] + aj[2] * aj[2]);
      if (!(nc > 1e-12 * na * nbj)) continue;
      double c0 = cr[0] / nc;
      if (c0 > 1) c0 = 1;
      if (c0 < -1) c0 = -1;
      double t = acos(c0);
      br[nb++] = t;
      br[nb++] = M_PI - t;
    }
  qsort(br, nb, sizeof(double), cmp_double);
  double total = 0.0;
  double A[MAXN], B[MAXN];
  for (size_t k = 0; k + 1 < nb; k++) {
    double lo = br[k], hi = br[k + 1];
    if (!(hi - lo > 1e-15)) continue;
    double mid = 0.5 * (lo + hi), half = 0.5 * (hi - lo), s = 0.0;
    /* θ = mid + half (3t − t³)/2: nodes cluster quadratically at both ends, which turns the
     * (θ − θ*)^{k/2} behaviour at tangencies into a smooth function of t */
    for (size_t i = 0; i < w->na; i++) {
      double t = w->glx[i];
      double th = mid + half * 0.5 * t * (3.0 - t * t);
      double jac = half * 1.5 * (1.0 - t * t);
      double ct = cos(th), st = sin(th);
      for (size_t j = 0; j < n; j++) {
        A[j] = al[j] * ct;
        B[j] = rho[j] * st;
      }
      s += w->glw[i] * jac * st * circle_integral(w, A, B, psi, n);
    }
    total += s;
  }
  return c * total;
}

/* M_n of an ordinary (non-cos-net) one-hidden-layer network. */
static double mlp_moment(fin_ws *w, const nnft_mat *X, const size_t *idx, size_t n,
                         nnft_status *status) {
  const nnft_arch *a = w->a;
  nnft_act f = a->layer[0].act;
  double k[MAXN * MAXN];
  covariance(a, X, idx, n, k);
  if (f == NNFT_ACT_EXP || f == NNFT_ACT_GAUSSNET) {
    /* gauss-net: h(x) = e^u / e^{σ_b² + σ_w² |x|²/d} with the layer's σ_b even without a bias,
     * as the sampler and nnft_net apply it (physics.md §1.2) */
    const nnft_layer *l0 = &a->layer[0];
    double s = 0.0, shift = 0.0;
    for (size_t i = 0; i < n; i++) {
      double xx = 0.0;
      for (size_t c = 0; c < X->cols; c++) xx += NNFT_AT(X, idx[i], c) * NNFT_AT(X, idx[i], c);
      shift += l0->sigma_b * l0->sigma_b + l0->sigma_w * l0->sigma_w * xx / (double)a->d_in;
      for (size_t j = 0; j < n; j++) s += k[i + j * n];
    }
    return exp(0.5 * s - (f == NNFT_ACT_GAUSSNET ? shift : 0.0));
  }
  double ev[MAXN], V[MAXN * MAXN], kc[MAXN * MAXN], kmax = 0.0;
  memcpy(kc, k, n * n * sizeof(double));
  jacobi_eig(kc, n, ev, V);
  for (size_t i = 0; i < n; i++)
    if (ev[i] > kmax) kmax = ev[i];
  /* L = V_r Λ_r^{1/2}: the columns of V with eigenvalues above the rank threshold */
  double L[MAXN * MAXN];
  size_t r = 0;
  for (size_t i = 0; i < n; i++)
    if (ev[i] > RANK_TOL * kmax && ev[i] > 0) {
      double s = sqrt(ev[i]);
      for (size_t j = 0; j < n; j++) L[j + r * n] = V[j + i * n] * s;
      r++;
    }
  /* a point with exactly zero variance has u ≡ 0: no rounding noise may make it random */
  for (size_t j = 0; j < n; j++)
    if (k[j + j * n] == 0.0)
      for (size_t c = 0; c < r; c++) L[j + c * n] = 0.0;
  if (r == 0) {
    double p = 1.0;
    for (size_t j = 0; j < n; j++) p *= act(w, 0.0);
    return p;
  }
  int intr = 0;
  double m;
  int kinked = f == NNFT_ACT_RELU || f == NNFT_ACT_STEP;
  if (w->o.method == NNFT_FINITE_GH || (kinked && r > 3)) m = gh_moment(w, L, n, r, &intr);
  else if (kinked) m = polar_moment(w, L, n, r, f == NNFT_ACT_RELU ? (double)n : 0.0);
  else {
    double amax = 0.0;
    for (size_t j = 0; j < n; j++)
      if (k[j + j * n] > amax) amax = k[j + j * n];
    m = trap_moment(w, L, n, r, sqrt(amax), &intr);
  }
  if (intr) *status = NNFT_EINTR;
  return m;
}

/* ---------------------------------------------------------------------------------------------
 * Cos-nets */

/* E[cos(b·v)] for b uniform in the d-ball of radius R, as a function of x = R|v|:
 * Γ(d/2+1) (2/x)^{d/2} J_{d/2}(x). */
static double ball_charfn(size_t d, double x) {
  if (x < 1e-4) return 1.0 - x * x / (2.0 * ((double)d + 2.0));
  if (d == 1) return sin(x) / x;
  if (d == 3) return 3.0 * (sin(x) - x * cos(x)) / (x * x * x);
  gsl_sf_result res;
  double nu = 0.5 * (double)d;
  if (gsl_sf_bessel_Jnu_e(nu, x, &res)) return NAN;
  return tgamma(nu + 1.0) * pow(2.0 / x, nu) * res.val;
}

/* g_n(v) = E_b[A(b)^n cos(b·v)] at |v| = vn. */
static double cos_g(fin_ws *w, size_t n, double vn) {
  const nnft_arch *a = w->a;
  size_t d = a->d_in;
  if (a->freq == NNFT_FREQ_GAUSSIAN) {
    double s2 = a->layer[0].sigma_w * a->layer[0].sigma_w / (double)d;
    return exp(-0.5 * s2 * vn * vn);
  }
  if (!a->amplitude) return ball_charfn(d, a->radius * vn);
  nnft_freeprop_params p = nnft_freeprop_defaults();
  p.d = d;
  p.R = a->radius;
  p.m = a->mass;
  p.power = 0.5 * (double)n;
  double G = NAN;
  nnft_status s = nnft_freeprop_eval(w->fp, &p, vn, &G);
  if (s && !w->fp_status) w->fp_status = s;
  double c2 = nnft_arch_cos_c2(a);
  return pow(c2, 0.5 * (double)n) * pow(2.0 * M_PI, (double)d) / nnft_ball_volume(d, a->radius) *
         G;
}

/* M_n = 2^{1−n} Σ_{s_1 = 1, s_2..s_n = ±1 (balanced if there are phases)} g_n(|Σ s_j x_j|). */
static double cos_moment(fin_ws *w, const nnft_mat *X, const size_t *idx, size_t n) {
  int phase = w->a->layer[0].has_bias;
  double total = 0.0;
  for (unsigned bits = 0; bits < (1u << (n - 1)); bits++) {
    int sum = 1;
    double vn = 0.0;
    for (size_t j = 1; j < n; j++) sum += (bits >> (j - 1)) & 1 ? 1 : -1;
    if (phase && sum != 0) continue;
    for (size_t c = 0; c < X->cols; c++) { /* v = Σ_j s_j x_j */
      double s = NNFT_AT(X, idx[0], c);
      for (size_t j = 1; j < n; j++)
        s += ((bits >> (j - 1)) & 1 ? 1.0 : -1.0) * NNFT_AT(X, idx[j], c);
      vn += s * s;
    }
    total += cos_g(w, n, sqrt(vn));
  }
  return ldexp(total, 1 - (int)n);
}

static nnft_status moment(fin_ws *w, const nnft_mat *X, const size_t *idx, size_t n, double *m) {
  nnft_status s = NNFT_OK;
  *m = w->a->is_cosnet ? cos_moment(w, X, idx, n) : mlp_moment(w, X, idx, n, &s);
  if (w->fp_status) return w->fp_status;
  return s;
}

/* ---------------------------------------------------------------------------------------------
 * Public entry points */

static nnft_status check_inputs(const nnft_arch *a, const nnft_mat *X, size_t nmax) {
  nnft_status s = nnft_finite_check_arch(a, nmax, NULL);
  if (s) return s;
  if (X->cols != a->d_in) return NNFT_EDIM;
  if (!nnft_mat_all_finite(X)) return NNFT_ENONFINITE;
  return NNFT_OK;
}

nnft_status nnft_finite_moment(const nnft_arch *a, const nnft_mat *X, const size_t *idx, size_t n,
                               const nnft_finite_opts *opts, double *m) {
  nnft_status s = check_inputs(a, X, n);
  if (s) return s;
  for (size_t j = 0; j < n; j++)
    if (idx[j] >= X->rows) return NNFT_EDOM;
  fin_ws w;
  if ((s = ws_init(&w, a, opts))) return s;
  s = moment(&w, X, idx, n, m);
  ws_free(&w);
  return s;
}

nnft_status nnft_finite_moments(const nnft_arch *a, const nnft_mat *X, size_t n,
                                const nnft_finite_opts *opts, nnft_mat *values) {
  nnft_status s = check_inputs(a, X, n);
  if (s) return s;
  size_t count;
  if ((s = nnft_finite_ntuples(X->rows, n, &count))) return s;
  if (values->rows != count || values->cols != 1) return NNFT_EDIM;
  fin_ws w;
  if ((s = ws_init(&w, a, opts))) return s;
  size_t t[MAXN] = {0};
  for (size_t row = 0; row < count; row++) {
    if (nnft_interrupted()) {
      s = NNFT_EINTR;
      break;
    }
    double m;
    if ((s = moment(&w, X, t, n, &m))) break;
    NNFT_AT(values, row, 0) = m;
    next_tuple(t, n, X->rows);
  }
  ws_free(&w);
  return s;
}

/* Readout variances: σ_W² (weights, variance σ_W²/N each) and σ_b1² (0 without readout bias). */
static void readout(const nnft_arch *a, double *sw2, double *sb2) {
  const nnft_layer *l1 = &a->layer[1];
  *sw2 = l1->sigma_w * l1->sigma_w;
  *sb2 = l1->has_bias ? l1->sigma_b * l1->sigma_b : 0.0;
}

/* All M2(x_i, x_j) into m2 (n_pts x n_pts, column-major). */
static nnft_status all_m2(fin_ws *w, const nnft_mat *X, double *m2) {
  size_t n = X->rows;
  for (size_t j = 0; j < n; j++) {
    if (nnft_interrupted()) return NNFT_EINTR;
    for (size_t i = 0; i <= j; i++) {
      size_t id[2] = {i, j};
      double m;
      nnft_status s = moment(w, X, id, 2, &m);
      if (s) return s;
      m2[i + j * n] = m2[j + i * n] = m;
    }
  }
  return NNFT_OK;
}

nnft_status nnft_finite_g2(const nnft_arch *a, const nnft_mat *X, const nnft_finite_opts *opts,
                           nnft_mat *K) {
  nnft_status s = check_inputs(a, X, 2);
  if (s) return s;
  size_t n = X->rows, nn;
  if (K->rows != n || K->cols != n) return NNFT_EDIM;
  if ((s = nnft_size_mul(n, n, &nn)) || (s = nnft_size_mul(nn, sizeof(double), &nn))) return s;
  double *m2 = nnft_alloc(nn);
  if (!m2) return NNFT_ENOMEM;
  fin_ws w;
  if ((s = ws_init(&w, a, opts))) {
    nnft_free(m2);
    return s;
  }
  if (!(s = all_m2(&w, X, m2))) {
    double sw2, sb2;
    readout(a, &sw2, &sb2);
    for (size_t j = 0; j < n; j++)
      for (size_t i = 0; i < n; i++) NNFT_AT(K, i, j) = sb2 + sw2 * m2[i + j * n];
  }
  ws_free(&w);
  nnft_free(m2);
  return s;
}

/* Rank of a sorted k-tuple among all sorted k-tuples of n_pts points (lexicographic), with
 * mc[v * (k + 1) + m] = C(n_pts − v + m − 1, m), the number of sorted m-tuples over v..n_pts−1. */
static size_t tuple_rank(const size_t *t, size_t k, const size_t *mc) {
  size_t rank = 0, lo = 0;
  for (size_t p = 0; p < k; p++) {
    for (size_t v = lo; v < t[p]; v++) rank += mc[v * (k + 1) + (k - p - 1)];
    lo = t[p];
  }
  return rank;
}

/* The 4-point bracket 3 M4 − Σ_3 M2 M2 for the points t[0..3] (M2 from the table). */
static double bracket4(double m4, const double *m2, size_t n, const size_t *t) {
#define M2(i, j) m2[t[i] + t[j] * n]
  return 3.0 * m4 - (M2(0, 1) * M2(2, 3) + M2(0, 2) * M2(1, 3) + M2(0, 3) * M2(1, 2));
#undef M2
}

nnft_status nnft_finite_g4c(const nnft_arch *a, const nnft_mat *X, const nnft_finite_opts *opts,
                            nnft_mat *values) {
  nnft_status s = check_inputs(a, X, 4);
  if (s) return s;
  size_t n = X->rows, count, nn;
  if ((s = nnft_finite_ntuples(n, 4, &count))) return s;
  if (values->rows != count || values->cols != 1) return NNFT_EDIM;
  if ((s = nnft_size_mul(n, n, &nn)) || (s = nnft_size_mul(nn, sizeof(double), &nn))) return s;
  double *m2 = nnft_alloc(nn);
  if (!m2) return NNFT_ENOMEM;
  fin_ws w;
  if ((s = ws_init(&w, a, opts))) {
    nnft_free(m2);
    return s;
  }
  if (!(s = all_m2(&w, X, m2))) {
    double sw2, sb2, N = (double)a->layer[0].fan_out;
    readout(a, &sw2, &sb2);
    double pre = sw2 * sw2 / N;
    size_t t[4] = {0};
    for (size_t row = 0; row < count; row++) {
      if (nnft_interrupted()) {
        s = NNFT_EINTR;
        break;
      }
      double m4;
      if ((s = moment(&w, X, t, 4, &m4))) break;
      NNFT_AT(values, row, 0) = pre * bracket4(m4, m2, n, t);
      next_tuple(t, 4, n);
    }
  }
  ws_free(&w);
  nnft_free(m2);
  return s;
}

/* The 15 perfect matchings of 6 positions. */
static const unsigned char match6[15][6] = {
    {0, 1, 2, 3, 4, 5}, {0, 1, 2, 4, 3, 5}, {0, 1, 2, 5, 3, 4}, {0, 2, 1, 3, 4, 5},
    {0, 2, 1, 4, 3, 5}, {0, 2, 1, 5, 3, 4}, {0, 3, 1, 2, 4, 5}, {0, 3, 1, 4, 2, 5},
    {0, 3, 1, 5, 2, 4}, {0, 4, 1, 2, 3, 5}, {0, 4, 1, 3, 2, 5}, {0, 4, 1, 5, 2, 3},
    {0, 5, 1, 2, 3, 4}, {0, 5, 1, 3, 2, 4}, {0, 5, 1, 4, 2, 3}};

nnft_status nnft_finite_g6c(const nnft_arch *a, const nnft_mat *X, const nnft_finite_opts *opts,
                            nnft_mat *values) {
  nnft_status s = check_inputs(a, X, 6);
  if (s) return s;
  size_t n = X->rows, count, count4, nn, b4, bmc;
  if ((s = nnft_finite_ntuples(n, 6, &count)) || (s = nnft_finite_ntuples(n, 4, &count4)))
    return s;
  if (values->rows != count || values->cols != 1) return NNFT_EDIM;
  if ((s = nnft_size_mul(n, n, &nn)) || (s = nnft_size_mul(nn, sizeof(double), &nn)) ||
      (s = nnft_size_mul(count4, sizeof(double), &b4)) ||
      (s = nnft_size_mul(n + 1, 5 * sizeof(size_t), &bmc)))
    return s;
  double *m2 = nnft_alloc(nn), *m4 = nnft_alloc(b4);
  size_t *mc = nnft_alloc(bmc);
  fin_ws w;
  w.block = NULL;
  w.fp = NULL;
  if (!m2 || !m4 || !mc) s = NNFT_ENOMEM;
  else s = ws_init(&w, a, opts);
  if (!s) s = all_m2(&w, X, m2);
  if (!s) { /* every M4, indexed by rank */
    size_t t[4] = {0};
    for (size_t row = 0; row < count4; row++) {
      if (nnft_interrupted()) {
        s = NNFT_EINTR;
        break;
      }
      if ((s = moment(&w, X, t, 4, &m4[row]))) break;
      next_tuple(t, 4, n);
    }
  }
  if (!s) {
    for (size_t v = 0; v <= n; v++)
      for (size_t m = 0; m <= 4; m++) {
        size_t c = 0;
        nnft_finite_ntuples(n - v, m, &c); /* fits: <= count4 */
        mc[v * 5 + m] = c;
      }
    double sw2, sb2, N = (double)a->layer[0].fan_out;
    readout(a, &sw2, &sb2);
    double pre = sw2 * sw2 * sw2 / (N * N);
    size_t t[6] = {0};
    for (size_t row = 0; row < count; row++) {
      if (nnft_interrupted()) {
        s = NNFT_EINTR;
        break;
      }
      double m6;
      if ((s = moment(&w, X, t, 6, &m6))) break;
      double s42 = 0.0, s222 = 0.0;
      for (size_t e = 0; e < 6; e++)
        for (size_t f = e + 1; f < 6; f++) {
          size_t rest[4], nr = 0;
          for (size_t p = 0; p < 6; p++)
            if (p != e && p != f) rest[nr++] = t[p];
          s42 += m4[tuple_rank(rest, 4, mc)] * m2[t[e] + t[f] * n];
        }
      for (size_t k = 0; k < 15; k++) {
        const unsigned char *mt = match6[k];
        s222 += m2[t[mt[0]] + t[mt[1]] * n] * m2[t[mt[2]] + t[mt[3]] * n] *
                m2[t[mt[4]] + t[mt[5]] * n];
      }
      NNFT_AT(values, row, 0) = pre * (15.0 * m6 - 3.0 * s42 + 2.0 * s222);
      next_tuple(t, 6, n);
    }
  }
  ws_free(&w);
  nnft_free(m2);
  nnft_free(m4);
  nnft_free(mc);
  return s;
}
