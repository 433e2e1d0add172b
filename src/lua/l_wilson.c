/* nnft._rg: the C primitives of the Wilsonian RG of GP regression (src/core/nnft_wilson.h,
 * physics.md §6). The public API is nnft.rg (lua/nnft/rg.lua, docs/api/rg.md): it checks the
 * option tables and unpacks Modes; these functions take matrices positionally, with the public
 * function's name first (for error messages), and check every argument again themselves.
 * Every function: check arguments -> allocate the Lua-owned results -> call the core -> raise. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "l_util.h"
#include "nnft_wilson.h"

/* A spectrum: a finite, non-increasing, non-negative (up to round-off) column. */
static const nnft_mat *check_lambda(lua_State *L, int idx, const char *fname) {
  const nnft_mat *lam = l_checkmat(L, idx);
  if (lam->cols != 1 || lam->rows == 0)
    l_error(L, "%s: the spectrum lambda must be a non-empty column (K x 1), got %zu x %zu", fname,
           lam->rows, lam->cols);
  size_t bad;
  double bv;
  nnft_status s = nnft_wilson_check_spectrum(lam, &bad, &bv);
  if (s == NNFT_ENONFINITE)
    l_error(L, "%s: eigenvalue %zu of the spectrum is %g (NaN or Inf)", fname, bad, bv);
  if (s == NNFT_EDOM) {
    if (bv < 0 && (bad == 1 || bv <= lam->data[bad - 2]))
      l_error(L, "%s: eigenvalue %zu of the spectrum is %g, negative beyond round-off "
                "(tolerance %.3g x max|lambda|); the kernel matrix is not positive semi-definite "
                "(check the kernel and the inputs)", fname, bad, bv,
             NNFT_WILSON_NEG_TOL(lam->rows));
    l_error(L, "%s: the spectrum must be sorted decreasing (mode index = momentum), but "
              "lambda[%zu] = %g > lambda[%zu] = %g", fname, bad, bv, bad - 1, lam->data[bad - 2]);
  }
  return lam;
}

static void check_col(lua_State *L, const nnft_mat *m, size_t rows, const char *fname,
                      const char *what, const char *shape) {
  if (m->cols != 1 || m->rows != rows)
    l_error(L, "%s: %s must be %s (%zu x 1), got %zu x %zu", fname, what, shape, rows, m->rows,
           m->cols);
  l_check_finite(L, m, fname, what);
}

static double check_noise(lua_State *L, int idx, const char *fname) {
  double s2 = luaL_checknumber(L, idx);
  if (!isfinite(s2) || s2 < 0)
    l_error(L, "%s: noise (the ridge sigma^2) must be a finite number >= 0, got %g", fname, s2);
  return s2;
}

static double check_eta(lua_State *L, int idx, const char *fname) {
  double eta = luaL_checknumber(L, idx);
  if (!isfinite(eta) || eta <= 0)
    l_error(L, "%s: n (the dataset size eta) must be a finite number > 0, got %g", fname, eta);
  return eta;
}

/* Optional yk (nil allowed) at idx. */
static const nnft_mat *opt_yk(lua_State *L, int idx, size_t K, const char *fname) {
  if (lua_isnoneornil(L, idx)) return NULL;
  const nnft_mat *yk = l_checkmat(L, idx);
  check_col(L, yk, K, fname, "the target coefficients yk", "one per mode");
  return yk;
}

/* A list of cutoffs (Mat or table of integers) at idx, each in 1..K: a userdata-owned size_t
 * array pushed on the stack. */
static size_t *check_kappas(lua_State *L, int idx, size_t K, size_t *nk, const char *fname) {
  int pushed;
  const nnft_mat *m = l_tomat(L, idx, &pushed);
  size_t n = m->rows * m->cols;
  size_t *k = lua_newuserdatauv(L, (n ? n : 1) * sizeof *k, 0);
  for (size_t j = 0; j < m->cols; j++)
    for (size_t i = 0; i < m->rows; i++) {
      double v = NNFT_AT(m, i, j);
      if (!(v >= 1 && v <= (double)K && v == floor(v)))
        l_error(L, "%s: the cutoff kappa must be an integer between 1 and K = %zu (the number of "
                  "modes), got %g", fname, K, v);
      k[i + j * m->rows] = (size_t)v;
    }
  *nk = n;
  return k;
}

static void raise_status(lua_State *L, nnft_status s, const char *fname) {
  if (s == NNFT_EINTR) l_check_interrupt(L);
  l_status_error(L, s, fname, NULL);
}

/* _rg.targets(fname, phi, y) -> yk */
static int l_targets(lua_State *L) {
  const char *fname = luaL_checkstring(L, 1);
  const nnft_mat *phi = l_checkmat(L, 2), *y = l_checkmat(L, 3);
  if (phi->rows == 0 || phi->cols == 0) l_error(L, "%s: phi is empty (%zu x %zu)", fname,
                                               phi->rows, phi->cols);
  check_col(L, y, phi->rows, fname, "y", "one target per point of phi");
  l_check_finite(L, phi, fname, "phi");
  nnft_mat *yk = l_newmat(L, phi->cols, 1);
  nnft_status s = nnft_wilson_targets(phi, y, yk);
  if (s) raise_status(L, s, fname);
  return 1;
}

/* _rg.ek(fname, lambda, yk|nil, noise, eta) -> learn, var, fbar|nil, bias2|nil, totals */
static int l_ek(lua_State *L) {
  const char *fname = luaL_checkstring(L, 1);
  const nnft_mat *lam = check_lambda(L, 2, fname);
  size_t K = lam->rows;
  const nnft_mat *yk = opt_yk(L, 3, K, fname);
  double s2 = check_noise(L, 4, fname), eta = check_eta(L, 5, fname);
  nnft_mat *learn = l_newmat(L, K, 1);
  nnft_mat *var = l_newmat(L, K, 1);
  nnft_mat *fbar = NULL, *bias2 = NULL;
  if (yk) {
    fbar = l_newmat(L, K, 1);
    bias2 = l_newmat(L, K, 1);
  } else {
    lua_pushnil(L);
    lua_pushnil(L);
  }
  nnft_wilson_ek_totals t;
  nnft_status s = nnft_wilson_ek(lam, yk, s2, eta, learn, fbar, bias2, var, &t);
  if (s) raise_status(L, s, fname);
  lua_createtable(L, 0, 4);
  if (yk) {
    lua_pushnumber(L, t.bias2);
    lua_setfield(L, -2, "bias2");
    lua_pushnumber(L, t.err);
    lua_setfield(L, -2, "err");
  }
  lua_pushnumber(L, t.var);
  lua_setfield(L, -2, "var");
  lua_pushnumber(L, t.learned);
  lua_setfield(L, -2, "learned");
  return 5;
}

/* _rg.flow(fname, lambda, yk|nil, noise, eta, include_target) -> tail, ttail|nil, ridge, learn */
static int l_flow(lua_State *L) {
  const char *fname = luaL_checkstring(L, 1);
  const nnft_mat *lam = check_lambda(L, 2, fname);
  size_t K = lam->rows;
  const nnft_mat *yk = opt_yk(L, 3, K, fname);
  double s2 = check_noise(L, 4, fname), eta = check_eta(L, 5, fname);
  int inc = lua_toboolean(L, 6);
  if (inc && !yk)
    l_error(L, "%s: include_target=true needs the targets (y= or yk=)", fname);
  nnft_mat *tail = l_newmat(L, K, 1);
  nnft_mat *ttail = NULL;
  if (yk)
    ttail = l_newmat(L, K, 1);
  else
    lua_pushnil(L);
  nnft_mat *ridge = l_newmat(L, K, 1);
  nnft_mat *learn = l_newmat(L, K, 1);
  nnft_status s = nnft_wilson_flow(lam, yk, s2, eta, inc, tail, ttail, ridge, learn);
  if (s) raise_status(L, s, fname);
  return 4;
}

/* _rg.stop(fname, lambda, yk|nil, noise, etas (Mat/table/number), include_target, threshold)
 * -> Mat of κ* (same shape as etas) */
static int l_stop(lua_State *L) {
  const char *fname = luaL_checkstring(L, 1);
  const nnft_mat *lam = check_lambda(L, 2, fname);
  size_t K = lam->rows;
  const nnft_mat *yk = opt_yk(L, 3, K, fname);
  double s2 = check_noise(L, 4, fname);
  int inc = lua_toboolean(L, 6);
  double T = luaL_checknumber(L, 7);
  if (!(T > 0 && T < 1))
    l_error(L, "%s: threshold (a learnability) must be strictly between 0 and 1, got %g", fname, T);
  if (inc && !yk) l_error(L, "%s: include_target=true needs the targets (y= or yk=)", fname);
  int pushed;
  const nnft_mat *etas = l_tomat(L, 5, &pushed);
  for (size_t j = 0; j < etas->cols; j++)
    for (size_t i = 0; i < etas->rows; i++) {
      double e = NNFT_AT(etas, i, j);
      if (!isfinite(e) || e <= 0)
        l_error(L, "%s: n (the dataset size eta) must be finite and > 0, got %g", fname, e);
    }
  nnft_mat *out = l_newmat(L, etas->rows, etas->cols);
  for (size_t j = 0; j < etas->cols; j++)
    for (size_t i = 0; i < etas->rows; i++) {
      size_t ks;
      nnft_status s = nnft_wilson_stop(lam, yk, s2, NNFT_AT(etas, i, j), inc, T, &ks);
      if (s) raise_status(L, s, fname);
      NNFT_AT(out, i, j) = (double)ks;
    }
  return 1;
}

/* _rg.local_ridge(fname, lambda, phi, noise, kappas|nil) -> Mat (points x #kappas or K) */
static int l_local_ridge(lua_State *L) {
  const char *fname = luaL_checkstring(L, 1);
  const nnft_mat *lam = check_lambda(L, 2, fname);
  size_t K = lam->rows;
  const nnft_mat *phi = l_checkmat(L, 3);
  if (phi->cols != K)
    l_error(L, "%s: phi has %zu columns but the spectrum has K = %zu modes (phi is points x "
              "modes)", fname, phi->cols, K);
  l_check_finite(L, phi, fname, "phi");
  double s2 = check_noise(L, 4, fname);
  size_t nk = K, *kap = NULL;
  if (!lua_isnoneornil(L, 5)) kap = check_kappas(L, 5, K, &nk, fname);
  nnft_mat *out = l_newmat(L, phi->rows, nk);
  nnft_status s = nnft_wilson_local_ridge(lam, phi, s2, kap, nk, out);
  if (s) raise_status(L, s, fname);
  return 1;
}

/* _rg.reduced(fname, lambda, yk, n, phi_test, kappas, ridges) -> Mat (m x #kappas) */
static int l_reduced(lua_State *L) {
  const char *fname = luaL_checkstring(L, 1);
  const nnft_mat *lam = check_lambda(L, 2, fname);
  size_t K = lam->rows;
  const nnft_mat *yk = l_checkmat(L, 3);
  check_col(L, yk, K, fname, "the target coefficients yk", "one per mode");
  size_t n = l_checksize(L, 4, 1);
  const nnft_mat *pt = l_checkmat(L, 5);
  if (pt->cols != K)
    l_error(L, "%s: phi has %zu columns but the spectrum has K = %zu modes (phi is points x "
              "modes: the Nystrom extension of the modes to the test points)", fname, pt->cols,
           K);
  l_check_finite(L, pt, fname, "phi");
  size_t nk;
  size_t *kap = check_kappas(L, 6, K, &nk, fname);
  int pushed;
  const nnft_mat *rm = l_tomat(L, 7, &pushed);
  if (rm->rows * rm->cols != nk)
    l_error(L, "%s: %zu ridges for %zu cutoffs", fname, rm->rows * rm->cols, nk);
  double *rid = lua_newuserdatauv(L, (nk ? nk : 1) * sizeof *rid, 0);
  for (size_t j = 0; j < nk; j++) {
    rid[j] = NNFT_AT(rm, j % rm->rows, j / rm->rows);
    if (!isfinite(rid[j]) || rid[j] < 0)
      l_error(L, "%s: a ridge must be finite and >= 0, got %g", fname, rid[j]);
  }
  nnft_mat *out = l_newmat(L, pt->rows, nk);
  nnft_status s = nnft_wilson_reduced(lam, yk, n, pt, kap, rid, nk, out);
  if (s) raise_status(L, s, fname);
  return 1;
}

/* _rg.reduced_weighted(fname, lambda, phi_train, y, d, phi_test, kappa) -> Mat (m x 1) */
static int l_reduced_weighted(lua_State *L) {
  const char *fname = luaL_checkstring(L, 1);
  const nnft_mat *lam = check_lambda(L, 2, fname);
  size_t K = lam->rows;
  const nnft_mat *ptr = l_checkmat(L, 3);
  if (ptr->cols != K || ptr->rows == 0)
    l_error(L, "%s: the training modes phi have %zu x %zu entries but the spectrum has K = %zu "
              "modes", fname, ptr->rows, ptr->cols, K);
  l_check_finite(L, ptr, fname, "phi (training points)");
  const nnft_mat *y = l_checkmat(L, 4), *d = l_checkmat(L, 5);
  check_col(L, y, ptr->rows, fname, "y", "one target per training point");
  check_col(L, d, ptr->rows, fname, "the per-point ridge", "one per training point");
  for (size_t i = 0; i < d->rows; i++)
    if (!(d->data[i] > 0))
      l_error(L, "%s: the per-point ridge must be > 0 (use noise > 0), got %g at point %zu",
             fname, d->data[i], i + 1);
  const nnft_mat *pt = l_checkmat(L, 6);
  if (pt->cols != K)
    l_error(L, "%s: phi has %zu columns but the spectrum has K = %zu modes", fname, pt->cols, K);
  l_check_finite(L, pt, fname, "phi");
  lua_Integer kap = luaL_checkinteger(L, 7);
  if (kap < 1 || (lua_Unsigned)kap > K)
    l_error(L, "%s: the cutoff kappa must be between 1 and K = %zu, got %lld", fname, K,
           (long long)kap);
  nnft_mat *out = l_newmat(L, pt->rows, 1);
  nnft_status s = nnft_wilson_reduced_weighted(lam, ptr, y, d, pt, (size_t)kap, out);
  if (s) raise_status(L, s, fname);
  return 1;
}

/* _rg.gaussianity(fname, phi) -> kurtosis (K x 1), tail (K x 1) */
static int l_gaussianity(lua_State *L) {
  const char *fname = luaL_checkstring(L, 1);
  const nnft_mat *phi = l_checkmat(L, 2);
  if (phi->rows < 2 || phi->cols == 0)
    l_error(L, "%s: phi needs at least 2 points and 1 mode, got %zu x %zu", fname, phi->rows,
           phi->cols);
  l_check_finite(L, phi, fname, "phi");
  nnft_mat *k = l_newmat(L, phi->cols, 1), *t = l_newmat(L, phi->cols, 1);
  nnft_status s = nnft_wilson_gaussianity(phi, k, t);
  if (s) raise_status(L, s, fname);
  return 2;
}

/* _rg.hist2d(fname, phi, k, l, lo, hi, bins) -> counts (bins x bins), outside */
static int l_hist2d(lua_State *L) {
  const char *fname = luaL_checkstring(L, 1);
  const nnft_mat *phi = l_checkmat(L, 2);
  lua_Integer k = luaL_checkinteger(L, 3), l = luaL_checkinteger(L, 4);
  double lo = luaL_checknumber(L, 5), hi = luaL_checknumber(L, 6);
  lua_Integer bins = luaL_checkinteger(L, 7);
  if (k < 1 || l < 1 || (lua_Unsigned)k > phi->cols || (lua_Unsigned)l > phi->cols)
    l_error(L, "%s: modes k = %lld, l = %lld must be between 1 and %zu", fname, (long long)k,
           (long long)l, phi->cols);
  if (!(isfinite(lo) && isfinite(hi) && lo < hi))
    l_error(L, "%s: the range must be finite with lo < hi, got [%g, %g)", fname, lo, hi);
  if (bins < 1 || bins > 10000)
    l_error(L, "%s: bins must be between 1 and 10000, got %lld", fname, (long long)bins);
  l_check_finite(L, phi, fname, "phi");
  nnft_mat *h = l_newmat(L, (size_t)bins, (size_t)bins);
  size_t off;
  nnft_status s = nnft_wilson_hist2d(phi, (size_t)k, (size_t)l, lo, hi, h, &off);
  if (s) raise_status(L, s, fname);
  lua_pushinteger(L, (lua_Integer)off);
  return 2;
}

/* _rg.fit_power(fname, lambda, kmin, kmax) -> alpha, logc, r2 */
static int l_fit_power(lua_State *L) {
  const char *fname = luaL_checkstring(L, 1);
  const nnft_mat *lam = l_checkmat(L, 2);
  if (lam->cols != 1) l_error(L, "%s: the spectrum must be a column", fname);
  lua_Integer a = luaL_checkinteger(L, 3), b = luaL_checkinteger(L, 4);
  if (a < 1 || b <= a || (lua_Unsigned)b > lam->rows)
    l_error(L, "%s: the fit range must satisfy 1 <= kmin < kmax <= K = %zu, got kmin = %lld, "
              "kmax = %lld", fname, lam->rows, (long long)a, (long long)b);
  for (lua_Integer k = a; k <= b; k++) {
    double v = lam->data[k - 1];
    if (!(v > 0) || !isfinite(v))
      l_error(L, "%s: lambda[%lld] = %g; a power-law fit needs positive eigenvalues in the range "
                "(lower kmax=)", fname, (long long)k, v);
  }
  double al, lc, r2;
  nnft_status s = nnft_wilson_fit_power(lam, (size_t)a, (size_t)b, &al, &lc, &r2);
  if (s) raise_status(L, s, fname);
  lua_pushnumber(L, al);
  lua_pushnumber(L, lc);
  lua_pushnumber(L, r2);
  return 3;
}

void l_open_wilson(lua_State *L) {
  static const luaL_Reg fns[] = {{"targets", l_targets},
                                 {"ek", l_ek},
                                 {"flow", l_flow},
                                 {"stop", l_stop},
                                 {"local_ridge", l_local_ridge},
                                 {"reduced", l_reduced},
                                 {"reduced_weighted", l_reduced_weighted},
                                 {"gaussianity", l_gaussianity},
                                 {"hist2d", l_hist2d},
                                 {"fit_power", l_fit_power},
                                 {NULL, NULL}};
  luaL_newlib(L, fns);
  lua_setfield(L, -2, "_rg");
}
