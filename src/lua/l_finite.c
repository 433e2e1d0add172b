/* nnft.finite: exact finite-width correlators of one-hidden-layer networks (physics.md §3.4,
 * src/core/nnft_finite.h), and nnft.freeprop: the cutoff free propagator (physics.md §2.4,
 * src/core/nnft_freeprop.h). Documented in docs/api/finite.md.
 * Every function: check arguments and options -> allocate the Lua-owned results -> call the core
 * (which cannot raise) -> raise on a bad status. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>


#include "l_util.h"
#include "nnft_finite.h"
#include "nnft_freeprop.h"

/* The architecture at idx, checked for the formulas up to order nmax. */
static const nnft_arch *check_arch(lua_State *L, int idx, size_t nmax, const char *fname) {
  const nnft_arch *a = l_checkarch(L, idx);
  const char *why = NULL;
  if (nnft_finite_check_arch(a, nmax, &why)) {
    if (a->nlayers != 2 && nnft_arch_check(a) == NNFT_OK)
      l_error(L, "%s: %s; this architecture has %zu hidden layers", fname, why, a->nlayers - 1);
    l_error(L, "%s: %s", fname, why ? why : "invalid architecture");
  }
  return a;
}

/* X: a Mat or table of rows with d_in columns and finite entries. Leaves a converted table's
 * Mat on the stack (the caller's stack top grows by *pushed). */
static const nnft_mat *check_inputs(lua_State *L, int idx, const nnft_arch *a, const char *fname,
                                    int *pushed) {
  const nnft_mat *X = l_tomat(L, idx, pushed);
  if (X->cols != a->d_in)
    l_error(L, "%s: X has %zu columns but the architecture has d_in = %zu (rows are points)",
           fname, X->cols, a->d_in);
  if (X->rows == 0) l_error(L, "%s: X has no rows (no input points)", fname);
  l_check_finite(L, X, fname, "X");
  return X;
}

/* Options {order=, arc_nodes=, method=} at idx. */
static nnft_finite_opts check_opts(lua_State *L, int idx, const char *fname) {
  static const char *const keys[] = {"order", "arc_nodes", "method", NULL};
  static const char *const methods[] = {"auto", "gh", NULL};
  l_check_options(L, idx, fname, keys);
  nnft_finite_opts o = nnft_finite_defaults();
  lua_Integer q = l_opt_integer(L, idx, "order", 0);
  if (q != 0 && (q < 2 || q > NNFT_FINITE_MAX_NODES))
    l_error(L, "%s: order (quadrature nodes per dimension) must be between 2 and %d, got %lld",
           fname, NNFT_FINITE_MAX_NODES, (long long)q);
  lua_Integer na = l_opt_integer(L, idx, "arc_nodes", 0);
  if (na != 0 && (na < 2 || na > NNFT_FINITE_MAX_NODES))
    l_error(L, "%s: arc_nodes must be between 2 and %d, got %lld", fname, NNFT_FINITE_MAX_NODES,
           (long long)na);
  o.order = (size_t)q;
  o.arc_nodes = (size_t)na;
  o.method = l_opt_choice(L, idx, "method", "auto", methods) ? NNFT_FINITE_GH : NNFT_FINITE_AUTO;
  return o;
}

/* Push the tuples Mat (count x k, 1-based indices). */
static nnft_mat *push_tuples(lua_State *L, size_t npts, size_t k, size_t *count,
                             const char *fname) {
  if (nnft_finite_ntuples(npts, k, count))
    l_error(L, "%s: the number of %zu-tuples of %zu points overflows", fname, k, npts);
  return l_newmat(L, *count, k);
}

static void fill_tuples(nnft_mat *t, size_t npts, size_t k) {
  nnft_finite_tuples(npts, k, t); /* shapes were made to fit */
  for (size_t j = 0; j < t->cols; j++)
    for (size_t i = 0; i < t->rows; i++) NNFT_AT(t, i, j) += 1.0;
}

static int raise_status(lua_State *L, nnft_status s, const char *fname) {
  if (s == NNFT_ENOCONV)
    return l_status_error(L, s, fname, "the momentum integral of the cos-net amplitude did not "
                                       "converge");
  return l_status_error(L, s, fname, NULL);
}

/* nnft.finite.moments(arch, X, n [, opts]) -> tuples, values */
static int l_moments(lua_State *L) {
  const char *fname = "nnft.finite.moments";
  lua_Integer n = luaL_checkinteger(L, 3);
  if (n < 1 || n > NNFT_FINITE_MAX_ORDER)
    l_error(L, "%s: the order n must be between 1 and %d, got %lld", fname,
           NNFT_FINITE_MAX_ORDER, (long long)n);
  const nnft_arch *a = check_arch(L, 1, (size_t)n, fname);
  nnft_finite_opts o = check_opts(L, 4, fname);
  int pushed;
  const nnft_mat *X = check_inputs(L, 2, a, fname, &pushed);
  size_t count;
  nnft_mat *t = push_tuples(L, X->rows, (size_t)n, &count, fname);
  nnft_mat *v = l_newmat(L, count, 1);
  nnft_status s = nnft_finite_moments(a, X, (size_t)n, &o, v);
  l_arch_check_custom(L, 1, fname);
  if (s) raise_status(L, s, fname);
  fill_tuples(t, X->rows, (size_t)n);
  return 2;
}

/* nnft.finite.g2(arch, X [, opts]) -> K (n x n) */
static int l_g2(lua_State *L) {
  const char *fname = "nnft.finite.g2";
  const nnft_arch *a = check_arch(L, 1, 2, fname);
  nnft_finite_opts o = check_opts(L, 3, fname);
  int pushed;
  const nnft_mat *X = check_inputs(L, 2, a, fname, &pushed);
  nnft_mat *K = l_newmat(L, X->rows, X->rows);
  nnft_status s = nnft_finite_g2(a, X, &o, K);
  l_arch_check_custom(L, 1, fname);
  if (s) raise_status(L, s, fname);
  return 1;
}

/* nnft.finite.g4c / g6c(arch, X [, opts]) -> tuples, values */
static int connected(lua_State *L, size_t k, const char *fname) {
  const nnft_arch *a = check_arch(L, 1, k, fname);
  nnft_finite_opts o = check_opts(L, 3, fname);
  int pushed;
  const nnft_mat *X = check_inputs(L, 2, a, fname, &pushed);
  size_t count;
  nnft_mat *t = push_tuples(L, X->rows, k, &count, fname);
  nnft_mat *v = l_newmat(L, count, 1);
  nnft_status s = k == 4 ? nnft_finite_g4c(a, X, &o, v) : nnft_finite_g6c(a, X, &o, v);
  l_arch_check_custom(L, 1, fname);
  if (s) raise_status(L, s, fname);
  fill_tuples(t, X->rows, k);
  return 2;
}

static int l_g4c(lua_State *L) { return connected(L, 4, "nnft.finite.g4c"); }
static int l_g6c(lua_State *L) { return connected(L, 6, "nnft.finite.g6c"); }

/* nnft.freeprop(r, {d=, R=, m=, power=, space=, epsrel=}) -> Mat (or a number for a number) */
static int l_freeprop(lua_State *L) {
  static const char *const keys[] = {"d", "R", "m", "power", "space", "epsrel", NULL};
  static const char *const spaces[] = {"position", "momentum", NULL};
  const char *fname = "nnft.freeprop";
  int scalar = lua_type(L, 1) == LUA_TNUMBER;
  if (lua_isnoneornil(L, 2) || !lua_istable(L, 2))
    l_error(L, "%s: expected an options table {R=, m= [, d=1, power=1, space='position']} as "
              "argument 2", fname);
  l_check_options(L, 2, fname, keys);
  nnft_freeprop_params p = nnft_freeprop_defaults();
  lua_Integer d = l_opt_integer(L, 2, "d", 1);
  if (d < 1 || d > 3) l_error(L, "%s: d must be 1, 2 or 3, got %lld", fname, (long long)d);
  lua_getfield(L, 2, "R");
  lua_getfield(L, 2, "m");
  if (lua_isnil(L, -2) || lua_isnil(L, -1))
    l_error(L, "%s: the cutoff R= and the mass m= are required", fname);
  lua_pop(L, 2);
  p.d = (size_t)d;
  p.R = l_opt_number(L, 2, "R", 1.0);
  p.m = l_opt_number(L, 2, "m", 1.0);
  p.power = l_opt_number(L, 2, "power", 1.0);
  p.epsrel = l_opt_number(L, 2, "epsrel", p.epsrel);
  int momentum = l_opt_choice(L, 2, "space", "position", spaces);
  const char *why = NULL;
  if (nnft_freeprop_check(&p, &why))
    l_error(L, "%s: %s (d=%zu, R=%g, m=%g, power=%g)", fname, why, p.d, p.R, p.m, p.power);
  int pushed;
  const nnft_mat *r = l_tomat(L, 1, &pushed);
  const char *what = momentum ? "p" : "r";
  for (size_t j = 0; j < r->cols; j++)
    for (size_t i = 0; i < r->rows; i++) {
      double v = NNFT_AT(r, i, j);
      if (!isfinite(v))
        l_error(L, "%s: %s contains NaN or Inf (element %zu, %zu)", fname, what, i + 1, j + 1);
      if (v < 0)
        l_error(L, "%s: %s must be >= 0 (a distance |x - y| or a momentum |p|), got %g at "
                  "element %zu, %zu", fname, what, v, i + 1, j + 1);
    }
  nnft_mat *out = l_newmat(L, r->rows, r->cols);
  nnft_status s = momentum ? nnft_freeprop_momentum(&p, r, out) : nnft_freeprop_position(&p, r, out);
  if (s == NNFT_ENOCONV)
    l_error(L, "%s: the momentum integral did not converge (d=%zu, R=%g, m=%g); try a larger "
              "epsrel=", fname, p.d, p.R, p.m);
  if (s) l_status_error(L, s, fname, NULL);
  if (scalar) lua_pushnumber(L, out->data[0]);
  return 1;
}

void l_open_finite(lua_State *L) {
  static const luaL_Reg fns[] = {{"moments", l_moments}, {"g2", l_g2},     {"g4c", l_g4c},
                                 {"g6c", l_g6c},         {NULL, NULL}};
  luaL_newlib(L, fns);
  lua_setfield(L, -2, "finite");
  lua_pushcfunction(L, l_freeprop);
  lua_setfield(L, -2, "freeprop");
}
