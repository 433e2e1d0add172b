/* nnft.linalg: LAPACKE-backed decompositions and solves (src/core/nnft_linalg.h).
 * Every function: check arguments and options -> allocate the Lua-owned results -> call the
 * core (which never modifies its inputs and cannot raise) -> raise with the core's explanation
 * of a failure, prefixed by the function's name. Documented in docs/api/linalg.md. */
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>

#include "l_util.h"
#include "nnft_linalg.h"

/* Raise "<fname>: <what went wrong><hint>" for a failed core call. */
static int raise_failure(lua_State *L, const char *fname, nnft_status s,
                         const nnft_linalg_diag *d, const char *hint) {
  if (s == NNFT_EINTR || !d->msg[0]) return l_status_error(L, s, fname, NULL);
  return l_error(L, "%s: %s%s", fname, d->msg, hint ? hint : "");
}

static void check_square(lua_State *L, const nnft_mat *a, const char *fname, const char *name) {
  if (a->rows != a->cols)
    l_error(L, "%s: %s must be square, got %zu x %zu", fname, name, a->rows, a->cols);
}

/* A solve's operands: square matrix at 1, right-hand side at 2 with matching rows. */
static void check_solve_args(lua_State *L, const char *fname, const char *aname, nnft_mat **a,
                             nnft_mat **b) {
  *a = l_checkmat(L, 1);
  *b = l_checkmat(L, 2);
  check_square(L, *a, fname, aname);
  if ((*b)->rows != (*a)->rows)
    l_error(L, "%s: B has %zu rows but %s is %zu x %zu", fname, (*b)->rows, aname,
               (*a)->rows, (*a)->cols);
}

static const char *const NO_OPTIONS[] = {NULL};

/* Is option `key` present (non-nil) in the options table at idx? */
static int has_opt(lua_State *L, int idx, const char *key) {
  if (!lua_istable(L, idx)) return 0;
  int present = lua_getfield(L, idx, key) != LUA_TNIL;
  lua_pop(L, 1);
  return present;
}

/* nnft.linalg.chol(A [, {jitter=false, max_tries=6, lower=true}]) -> L, jitter */
static int l_chol(lua_State *L) {
  static const char *const keys[] = {"jitter", "max_tries", "lower", NULL};
  const char *fname = "nnft.linalg.chol";
  nnft_mat *a = l_checkmat(L, 1);
  l_check_options(L, 2, fname, keys);
  nnft_chol_opts o = nnft_chol_defaults();
  o.jitter = l_opt_boolean(L, 2, "jitter", 0);
  lua_Integer tries = l_opt_integer(L, 2, "max_tries", o.max_tries);
  if (tries < 1 || tries > 30)
    l_error(L, "%s: max_tries must be between 1 and 30, got %lld", fname, (long long)tries);
  o.max_tries = (int)tries;
  o.lower = l_opt_boolean(L, 2, "lower", 1);
  check_square(L, a, fname, "A");
  nnft_mat *l = l_newmat(L, a->rows, a->rows);
  nnft_linalg_diag d;
  double jit = 0.0;
  nnft_status s = nnft_linalg_chol(a, &o, l, &jit, &d);
  if (s)
    raise_failure(L, fname, s, &d,
                  s != NNFT_ENOTPD ? NULL
                  : o.jitter       ? "; add a larger ridge/noise term or check the inputs"
                                   : "; try {jitter=true}");
  lua_pushnumber(L, jit);
  return 2;
}

/* nnft.linalg.trisolve(T, B [, {lower=true, trans=false}]) -> X */
static int l_trisolve(lua_State *L) {
  static const char *const keys[] = {"lower", "trans", NULL};
  const char *fname = "nnft.linalg.trisolve";
  nnft_mat *t, *b;
  check_solve_args(L, fname, "T", &t, &b);
  l_check_options(L, 3, fname, keys);
  int lower = l_opt_boolean(L, 3, "lower", 1), trans = l_opt_boolean(L, 3, "trans", 0);
  nnft_mat *x = l_newmat(L, b->rows, b->cols);
  nnft_linalg_diag d;
  nnft_status s = nnft_linalg_trisolve(t, b, lower, trans, x, &d);
  if (s) raise_failure(L, fname, s, &d, NULL);
  return 1;
}

/* nnft.linalg.cholsolve(L, B) -> X with L Lᵀ X = B */
static int l_cholsolve(lua_State *L) {
  const char *fname = "nnft.linalg.cholsolve";
  nnft_mat *l, *b;
  check_solve_args(L, fname, "L", &l, &b);
  l_check_options(L, 3, fname, NO_OPTIONS);
  nnft_mat *x = l_newmat(L, b->rows, b->cols);
  nnft_linalg_diag d;
  nnft_status s = nnft_linalg_cholsolve(l, b, x, &d);
  if (s) raise_failure(L, fname, s, &d, NULL);
  return 1;
}

/* nnft.linalg.solve_spd(A, B) -> X */
static int l_solve_spd(lua_State *L) {
  const char *fname = "nnft.linalg.solve_spd";
  nnft_mat *a, *b;
  check_solve_args(L, fname, "A", &a, &b);
  l_check_options(L, 3, fname, NO_OPTIONS);
  nnft_mat *x = l_newmat(L, b->rows, b->cols);
  nnft_linalg_diag d;
  nnft_status s = nnft_linalg_solve_spd(a, b, x, &d);
  if (s)
    raise_failure(L, fname, s, &d,
                  s == NNFT_ENOTPD ? "; use nnft.linalg.solve for general matrices" : NULL);
  return 1;
}

/* nnft.linalg.solve(A, B) -> X */
static int l_solve(lua_State *L) {
  const char *fname = "nnft.linalg.solve";
  nnft_mat *a, *b;
  check_solve_args(L, fname, "A", &a, &b);
  l_check_options(L, 3, fname, NO_OPTIONS);
  nnft_mat *x = l_newmat(L, b->rows, b->cols);
  nnft_linalg_diag d;
  nnft_status s = nnft_linalg_solve(a, b, x, &d);
  if (s)
    raise_failure(L, fname, s, &d,
                  s == NNFT_ESINGULAR ? "; nnft.linalg.lstsq gives a least-squares solution"
                                      : NULL);
  return 1;
}

/* Read option `key` (a table {p, q} of two numbers) of the options table at idx. Returns 0 if
 * the option is absent. */
static int opt_pair(lua_State *L, int idx, const char *fname, const char *key, int integers,
                    double *p, double *q) {
  if (!lua_istable(L, idx)) return 0;
  int t = lua_getfield(L, idx, key);
  if (t == LUA_TNIL) {
    lua_pop(L, 1);
    return 0;
  }
  const char *want = integers ? "{first, last} of two integers" : "{lo, hi} of two numbers";
  if (t != LUA_TTABLE || lua_rawlen(L, -1) != 2)
    l_error(L, "%s: option %s must be a table %s", fname, key, want);
  double v[2];
  for (int k = 0; k < 2; k++) {
    lua_rawgeti(L, -1, k + 1);
    int isnum = lua_type(L, -1) == LUA_TNUMBER;
    if (integers) {
      lua_Integer iv = lua_tointegerx(L, -1, &isnum);
      v[k] = (double)iv;
    } else {
      v[k] = lua_tonumber(L, -1);
    }
    if (!isnum) l_error(L, "%s: option %s must be a table %s", fname, key, want);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  *p = v[0];
  *q = v[1];
  return 1;
}

/* nnft.linalg.eigh(A [, {vectors=true, count=, range=, index=, order="desc"}]) -> w [, V] */
static int l_eigh(lua_State *L) {
  static const char *const keys[] = {"vectors", "count", "range", "index", "order", NULL};
  static const char *const orders[] = {"desc", "asc", NULL};
  const char *fname = "nnft.linalg.eigh";
  nnft_mat *a = l_checkmat(L, 1);
  l_check_options(L, 2, fname, keys);
  check_square(L, a, fname, "A");
  size_t n = a->rows, cap = n;
  nnft_eigh_opts o = nnft_eigh_defaults();
  o.vectors = l_opt_boolean(L, 2, "vectors", 1);
  o.descending = l_opt_choice(L, 2, "order", "desc", orders) == 0;
  int nsel = 0;
  if (has_opt(L, 2, "count")) {
    lua_Integer count = l_opt_integer(L, 2, "count", 0);
    nsel++;
    if (count < 0 || (size_t)count > n)
      l_error(L, "%s: count must be between 0 and %zu (A is %zu x %zu), got %lld", fname, n, n,
                 n, (long long)count);
    o.select = NNFT_EIGH_INDEX;
    o.il = 1;
    o.iu = (size_t)count;
  }
  double p, q;
  if (opt_pair(L, 2, fname, "index", 1, &p, &q)) {
    nsel++;
    if (p < 1 || q > (double)n || p > q)
      l_error(L, "%s: index = {%g, %g} must satisfy 1 <= first <= last <= %zu", fname, p, q, n);
    o.select = NNFT_EIGH_INDEX;
    o.il = (size_t)p;
    o.iu = (size_t)q;
  }
  if (opt_pair(L, 2, fname, "range", 0, &p, &q)) {
    nsel++;
    if (!isfinite(p) || !isfinite(q) || !(p < q))
      l_error(L, "%s: range = {%g, %g} must be finite with lo < hi", fname, p, q);
    o.select = NNFT_EIGH_RANGE;
    o.vl = p;
    o.vu = q;
  }
  if (nsel > 1) l_error(L, "%s: give at most one of count, index and range", fname);
  if (o.select == NNFT_EIGH_INDEX) cap = o.iu + 1 - o.il;
  int top = lua_gettop(L);
  nnft_mat *w = l_newmat(L, cap, 1);
  nnft_mat *z = o.vectors ? l_newmat(L, n, cap) : NULL;
  size_t m = 0;
  nnft_linalg_diag d;
  nnft_status s = nnft_linalg_eigh(a, &o, w, z, &m, &d);
  if (s) raise_failure(L, fname, s, &d, NULL);
  if (m == cap) return o.vectors ? 2 : 1;
  /* a value range found fewer than the capacity: return exactly m */
  nnft_mat wv, zv;
  nnft_mat_view(w, 0, 0, m, 1, &wv);
  l_pushcopy(L, &wv);
  if (o.vectors) {
    nnft_mat_view(z, 0, 0, n, m, &zv);
    l_pushcopy(L, &zv);
  }
  int nres = o.vectors ? 2 : 1;
  for (int k = 0; k < nres; k++) lua_remove(L, top + 1); /* drop the oversized results */
  return nres;
}

/* nnft.linalg.svd(A [, {vectors=true, full=false}]) -> U, s, Vt  (or s) */
static int l_svd(lua_State *L) {
  static const char *const keys[] = {"vectors", "full", NULL};
  const char *fname = "nnft.linalg.svd";
  nnft_mat *a = l_checkmat(L, 1);
  l_check_options(L, 2, fname, keys);
  int vectors = l_opt_boolean(L, 2, "vectors", 1), full = l_opt_boolean(L, 2, "full", 0);
  size_t m = a->rows, n = a->cols, k = m < n ? m : n;
  nnft_mat *u = NULL, *vt = NULL, *s;
  if (vectors) {
    u = l_newmat(L, m, full ? m : k);
    s = l_newmat(L, k, 1);
    vt = l_newmat(L, full ? n : k, n);
  } else {
    s = l_newmat(L, k, 1);
  }
  nnft_linalg_diag d;
  nnft_status st = nnft_linalg_svd(a, vectors, full, u, s, vt, &d);
  if (st) raise_failure(L, fname, st, &d, NULL);
  return vectors ? 3 : 1;
}

/* nnft.linalg.lstsq(A, B [, {rcond=eps*max(m,n)}]) -> X, rank, s */
static int l_lstsq(lua_State *L) {
  static const char *const keys[] = {"rcond", NULL};
  const char *fname = "nnft.linalg.lstsq";
  nnft_mat *a = l_checkmat(L, 1), *b = l_checkmat(L, 2);
  l_check_options(L, 3, fname, keys);
  size_t m = a->rows, n = a->cols, mn = m < n ? m : n, mx = m < n ? n : m;
  double rcond = l_opt_number(L, 3, "rcond", DBL_EPSILON * (double)(mx ? mx : 1));
  if (!isfinite(rcond)) l_error(L, "%s: rcond must be a finite number, got %g", fname, rcond);
  if (b->rows != m)
    l_error(L, "%s: B has %zu rows but A is %zu x %zu", fname, b->rows, m, n);
  nnft_mat *x = l_newmat(L, n, b->cols);
  int xidx = lua_gettop(L);
  nnft_mat *s = l_newmat(L, mn, 1);
  size_t rank = 0;
  nnft_linalg_diag d;
  nnft_status st = nnft_linalg_lstsq(a, b, rcond, x, s, &rank, &d);
  if (st) raise_failure(L, fname, st, &d, NULL);
  lua_pushinteger(L, (lua_Integer)rank);
  lua_rotate(L, xidx + 1, 1); /* X, rank, s */
  return 3;
}

/* nnft.linalg.logdet_spd(A) -> log det A */
static int l_logdet_spd(lua_State *L) {
  const char *fname = "nnft.linalg.logdet_spd";
  nnft_mat *a = l_checkmat(L, 1);
  l_check_options(L, 2, fname, NO_OPTIONS);
  check_square(L, a, fname, "A");
  double ld;
  nnft_linalg_diag d;
  nnft_status s = nnft_linalg_logdet_spd(a, &ld, &d);
  if (s)
    raise_failure(L, fname, s, &d,
                  s == NNFT_ENOTPD ? "; nnft.linalg.logdet handles general matrices" : NULL);
  lua_pushnumber(L, ld);
  return 1;
}

/* nnft.linalg.logdet(A) -> log|det A|, sign */
static int l_logdet(lua_State *L) {
  const char *fname = "nnft.linalg.logdet";
  nnft_mat *a = l_checkmat(L, 1);
  l_check_options(L, 2, fname, NO_OPTIONS);
  check_square(L, a, fname, "A");
  double ld, sign;
  nnft_linalg_diag d;
  nnft_status s = nnft_linalg_logdet(a, &ld, &sign, &d);
  if (s) raise_failure(L, fname, s, &d, NULL);
  lua_pushnumber(L, ld);
  lua_pushinteger(L, (lua_Integer)sign);
  return 2;
}

/* nnft.linalg.inv(A) -> A⁻¹ */
static int l_inv(lua_State *L) {
  const char *fname = "nnft.linalg.inv";
  nnft_mat *a = l_checkmat(L, 1);
  l_check_options(L, 2, fname, NO_OPTIONS);
  check_square(L, a, fname, "A");
  nnft_mat *ai = l_newmat(L, a->rows, a->rows);
  nnft_linalg_diag d;
  nnft_status s = nnft_linalg_inv(a, ai, &d);
  if (s) raise_failure(L, fname, s, &d, NULL);
  return 1;
}

/* nnft.linalg.inv_spd(A) -> A⁻¹ (symmetric, both triangles) */
static int l_inv_spd(lua_State *L) {
  const char *fname = "nnft.linalg.inv_spd";
  nnft_mat *a = l_checkmat(L, 1);
  l_check_options(L, 2, fname, NO_OPTIONS);
  check_square(L, a, fname, "A");
  nnft_mat *ai = l_newmat(L, a->rows, a->rows);
  nnft_linalg_diag d;
  nnft_status s = nnft_linalg_inv_spd(a, ai, &d);
  if (s) raise_failure(L, fname, s, &d, NULL);
  return 1;
}

/* nnft.linalg.asymmetry(A) -> max |A - Aᵀ| / max |A| */
static int l_asymmetry(lua_State *L) {
  const char *fname = "nnft.linalg.asymmetry";
  nnft_mat *a = l_checkmat(L, 1);
  l_check_options(L, 2, fname, NO_OPTIONS);
  check_square(L, a, fname, "A");
  l_check_finite(L, a, fname, "A");
  double rel = 0.0;
  nnft_linalg_asymmetry(a, &rel);
  lua_pushnumber(L, rel);
  return 1;
}

void l_open_linalg(lua_State *L) {
  static const luaL_Reg fns[] = {
      {"chol", l_chol},         {"trisolve", l_trisolve},     {"cholsolve", l_cholsolve},
      {"solve_spd", l_solve_spd}, {"solve", l_solve},         {"eigh", l_eigh},
      {"svd", l_svd},           {"lstsq", l_lstsq},           {"logdet_spd", l_logdet_spd},
      {"logdet", l_logdet},     {"inv", l_inv},               {"inv_spd", l_inv_spd},
      {"asymmetry", l_asymmetry}, {NULL, NULL}};
  luaL_newlib(L, fns);
  lua_setfield(L, -2, "linalg");
}
