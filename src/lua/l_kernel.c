/* nnft.kernel: the Kernel userdata — covariance kernels as values (core nnft_kernel.h), their
 * power spectra (nnft_spectrum.h), and arch:kernel() / arch:ntk_kernel(). docs/api/kernel.md is
 * the user's reference.
 *
 * A Kernel userdata holds one nnft_kernel node. Its children (SUM, PROD: two; SCALE: one) are
 * other Kernel userdata kept alive through user values 1 and 2, whose nodes the core reaches
 * through the left/right pointers (userdata never move). An NNGP/NTK leaf keeps its Arch in user
 * value 1 (the architecture is copied into the node; the Arch keeps a Lua activation alive and is
 * bound to the running thread before each evaluation). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <gsl/gsl_errno.h>

#include "l_util.h"
#include "nnft_kernel.h"
#include "nnft_nngp.h"
#include "nnft_spectrum.h"

typedef struct l_kernel {
  nnft_kernel k;
  size_t nodes; /* nodes of the tree counted with repeats (k + k shares one child twice): what
                   every walk over the tree (check, evaluation, printing) costs */
} l_kernel;

/* A bound on nodes: `for i = 1, 60 do k = k + k end` is 60 deep but 2^60 nodes to walk. */
#define L_KERNEL_MAX_NODES 10000

static l_kernel *test_lkernel(lua_State *L, int idx) {
  return luaL_testudata(L, idx, L_KERNEL_NAME);
}

static l_kernel *check_lkernel(lua_State *L, int idx) {
  return luaL_checkudata(L, idx, L_KERNEL_NAME);
}

static int has_arch(const nnft_kernel *k) {
  return k->type == NNFT_KERNEL_NNGP || k->type == NNFT_KERNEL_NTK;
}

static int nchildren(const nnft_kernel *k) {
  return k->type == NNFT_KERNEL_SUM || k->type == NNFT_KERNEL_PROD ? 2
         : k->type == NNFT_KERNEL_SCALE                           ? 1
                                                                  : 0;
}

/* Walk the tree of the Kernel at idx: for every Arch of an NNGP/NTK leaf call l_checkarch
 * (bind == 1) or l_arch_check_custom (bind == 0, raising fname's error). */
static void walk_archs(lua_State *L, int idx, int bind, const char *fname) {
  idx = lua_absindex(L, idx);
  l_kernel *u = lua_touserdata(L, idx);
  luaL_checkstack(L, 4, "kernel tree too deep");
  if (has_arch(&u->k)) {
    lua_getiuservalue(L, idx, 1);
    if (bind) l_checkarch(L, -1);
    else l_arch_check_custom(L, -1, fname);
    lua_pop(L, 1);
    return;
  }
  for (int c = 1; c <= nchildren(&u->k); c++) {
    lua_getiuservalue(L, idx, c);
    walk_archs(L, -1, bind, fname);
    lua_pop(L, 1);
  }
}

const nnft_kernel *l_checkkernel(lua_State *L, int idx) {
  l_kernel *u = check_lkernel(L, idx);
  walk_archs(L, idx, 1, NULL);
  return &u->k;
}

void l_kernel_check_custom(lua_State *L, int idx, const char *fname) {
  check_lkernel(L, idx);
  walk_archs(L, idx, 0, fname);
}

/* Push a new Kernel holding k (children/arch to be set by the caller as user values). */
static l_kernel *push_kernel(lua_State *L, const nnft_kernel *k) {
  l_kernel *u = lua_newuserdatauv(L, sizeof *u, 2);
  u->k = *k;
  u->nodes = 1;
  luaL_setmetatable(L, L_KERNEL_NAME);
  return u;
}

/* Check a freshly built node and raise with its reason. */
static void check_node(lua_State *L, const nnft_kernel *k, const char *fname) {
  const char *why = NULL;
  if (nnft_kernel_check_why(k, &why)) l_error(L, "%s: %s", fname, why ? why : "invalid kernel");
}

/* ---------------------------------------------------------------------------------------------
 * Constructors */

/* The options table at idx (absent allowed when !required). */
static void opts_table(lua_State *L, int idx, const char *fname, const char *const keys[],
                       const char *usage) {
  if (!lua_isnoneornil(L, idx) && !lua_istable(L, idx))
    l_error(L, "%s: expected an options table %s, got %s", fname, usage, luaL_typename(L, idx));
  l_check_options(L, idx, fname, keys);
}

static int opt_present(lua_State *L, int idx, const char *key) {
  if (!lua_istable(L, idx)) return 0;
  int t = lua_getfield(L, idx, key);
  lua_pop(L, 1);
  return t != LUA_TNIL;
}

/* nnft.kernel.rbf{lengthscale=1, variance=1} */
static int k_rbf(lua_State *L) {
  static const char *const keys[] = {"lengthscale", "variance", NULL};
  const char *fname = "nnft.kernel.rbf";
  opts_table(L, 1, fname, keys, "{lengthscale=, variance=}");
  nnft_kernel k = nnft_kernel_rbf(l_opt_number(L, 1, "lengthscale", 1.0),
                                  l_opt_number(L, 1, "variance", 1.0));
  check_node(L, &k, fname);
  push_kernel(L, &k);
  return 1;
}

/* nnft.kernel.matern{nu=1.5, lengthscale=1, variance=1} */
static int k_matern(lua_State *L) {
  static const char *const keys[] = {"nu", "lengthscale", "variance", NULL};
  const char *fname = "nnft.kernel.matern";
  opts_table(L, 1, fname, keys, "{nu=, lengthscale=, variance=}");
  double nu = l_opt_number(L, 1, "nu", 1.5);
  if (nu != 0.5 && nu != 1.5 && nu != 2.5)
    l_error(L, "%s: nu must be 0.5, 1.5 or 2.5 (the closed forms), got %g", fname, nu);
  nnft_kernel k = nnft_kernel_matern(nu, l_opt_number(L, 1, "lengthscale", 1.0),
                                     l_opt_number(L, 1, "variance", 1.0));
  check_node(L, &k, fname);
  push_kernel(L, &k);
  return 1;
}

/* nnft.kernel.poly{degree=2, offset=1, variance=1} */
static int k_poly(lua_State *L) {
  static const char *const keys[] = {"degree", "offset", "variance", NULL};
  const char *fname = "nnft.kernel.poly";
  opts_table(L, 1, fname, keys, "{degree=, offset=, variance=}");
  double deg = l_opt_number(L, 1, "degree", 2.0);
  if (!(deg >= 0 && deg <= 64 && deg == floor(deg)))
    l_error(L, "%s: degree must be an integer between 0 and 64, got %g", fname, deg);
  nnft_kernel k = nnft_kernel_poly(deg, l_opt_number(L, 1, "offset", 1.0),
                                   l_opt_number(L, 1, "variance", 1.0));
  check_node(L, &k, fname);
  push_kernel(L, &k);
  return 1;
}

/* nnft.kernel.freeprop{d=1, R=, m=} */
static int k_freeprop(lua_State *L) {
  static const char *const keys[] = {"d", "R", "m", NULL};
  const char *fname = "nnft.kernel.freeprop";
  if (!lua_istable(L, 1))
    l_error(L, "%s: expected an options table {R=, m= [, d=1]}, got %s", fname,
           luaL_typename(L, 1));
  l_check_options(L, 1, fname, keys);
  if (!opt_present(L, 1, "R") || !opt_present(L, 1, "m"))
    l_error(L, "%s: the cutoff R= and the mass m= are required", fname);
  lua_Integer d = l_opt_integer(L, 1, "d", 1);
  if (d < 1 || d > 3) l_error(L, "%s: d must be 1, 2 or 3, got %lld", fname, (long long)d);
  nnft_kernel k = nnft_kernel_freeprop((size_t)d, l_opt_number(L, 1, "R", 1.0),
                                       l_opt_number(L, 1, "m", 1.0));
  const char *why = NULL;
  if (nnft_kernel_check_why(&k, &why))
    l_error(L, "%s: %s (d=%zu, R=%g, m=%g)", fname, why, k.dim, k.radius, k.mass);
  push_kernel(L, &k);
  return 1;
}

/* arch:kernel{quad_order=, ntk=false}, arch:ntk_kernel{quad_order=} */
static int make_arch_kernel(lua_State *L, int ntk, const char *fname) {
  static const char *const keys[] = {"quad_order", "ntk", NULL};
  static const char *const keys_ntk[] = {"quad_order", NULL};
  const nnft_arch *a = l_checkarch(L, 1);
  opts_table(L, 2, fname, ntk ? keys_ntk : keys, ntk ? "{quad_order=}" : "{quad_order=, ntk=}");
  if (!ntk) ntk = l_opt_boolean(L, 2, "ntk", 0);
  lua_Integer q = l_opt_integer(L, 2, "quad_order", 0);
  if (q != 0 && (q < 2 || q > NNFT_NNGP_QUAD_MAX))
    l_error(L, "%s: quad_order (Gauss-Hermite nodes per dimension) must be between 2 and %d, "
              "got %lld", fname, NNFT_NNGP_QUAD_MAX, (long long)q);
  nnft_kernel k = nnft_kernel_nngp(a, ntk, (int)q);
  check_node(L, &k, fname);
  push_kernel(L, &k);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);
  return 1;
}

static int arch_kernel(lua_State *L) { return make_arch_kernel(L, 0, "nnft.Arch:kernel"); }
static int arch_ntk_kernel(lua_State *L) {
  return make_arch_kernel(L, 1, "nnft.Arch:ntk_kernel");
}

/* ---------------------------------------------------------------------------------------------
 * Combinators: k1 + k2, k1 * k2, c * k, k * c */

static void check_nodes(lua_State *L, size_t nodes, const char *fname) {
  if (nodes > L_KERNEL_MAX_NODES)
    l_error(L, "%s: kernel tree too large (%zu nodes counting repeated subtrees, at most %d): "
              "k + k doubles the work of every evaluation; use 2 * k", fname, nodes,
           L_KERNEL_MAX_NODES);
}

static int combine(lua_State *L, nnft_kernel_type t, const char *fname) {
  l_kernel *a = test_lkernel(L, 1), *b = test_lkernel(L, 2);
  if (t == NNFT_KERNEL_SUM && (!a || !b)) {
    int bad = a ? 2 : 1;
    if (lua_type(L, bad) == LUA_TNUMBER)
      l_error(L, "%s: cannot add a number to a kernel; a constant kernel c is "
                "nnft.kernel.poly{degree=0, variance=c}", fname);
    l_error(L, "%s: cannot add a %s to a kernel", fname, luaL_typename(L, bad));
  }
  if (t == NNFT_KERNEL_PROD && (!a || !b)) {
    int kidx = a ? 1 : 2, cidx = a ? 2 : 1;
    if (!test_lkernel(L, kidx) || lua_type(L, cidx) != LUA_TNUMBER)
      l_error(L, "%s: a kernel can be multiplied by a kernel or a number, not a %s", fname,
             luaL_typename(L, a ? 2 : 1));
    double c = lua_tonumber(L, cidx);
    if (!isfinite(c)) l_error(L, "%s: the scale factor must be finite, got %g", fname, c);
    l_kernel *child = test_lkernel(L, kidx);
    nnft_kernel k = nnft_kernel_scale(c, &child->k);
    check_nodes(L, child->nodes + 1, fname);
    if (nnft_kernel_depth(&k) > NNFT_KERNEL_MAX_DEPTH)
      l_error(L, "%s: kernel tree too deep (more than %d nested sums, products and scalings)",
             fname, NNFT_KERNEL_MAX_DEPTH);
    push_kernel(L, &k)->nodes = child->nodes + 1;
    lua_pushvalue(L, kidx);
    lua_setiuservalue(L, -2, 1);
    return 1;
  }
  nnft_kernel k = t == NNFT_KERNEL_SUM ? nnft_kernel_sum(&a->k, &b->k)
                                       : nnft_kernel_prod(&a->k, &b->k);
  size_t nodes = a->nodes + b->nodes + 1; /* each <= L_KERNEL_MAX_NODES: no overflow */
  check_nodes(L, nodes, fname);
  if (nnft_kernel_depth(&k) > NNFT_KERNEL_MAX_DEPTH)
    l_error(L, "%s: kernel tree too deep (more than %d nested sums, products and scalings)",
           fname, NNFT_KERNEL_MAX_DEPTH);
  size_t da, db;
  if (nnft_kernel_input_dim(&k, &da) == NNFT_EDIM) {
    nnft_kernel_input_dim(&a->k, &da);
    nnft_kernel_input_dim(&b->k, &db);
    l_error(L, "%s: the kernels take inputs of different dimensions (%zu and %zu)", fname, da, db);
  }
  push_kernel(L, &k)->nodes = nodes;
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);
  lua_pushvalue(L, 2);
  lua_setiuservalue(L, -2, 2);
  return 1;
}

static int kernel_add(lua_State *L) { return combine(L, NNFT_KERNEL_SUM, "nnft.Kernel.__add"); }
static int kernel_mul(lua_State *L) { return combine(L, NNFT_KERNEL_PROD, "nnft.Kernel.__mul"); }

/* ---------------------------------------------------------------------------------------------
 * tostring and spec */

static void push_number(lua_State *L, double v) {
  char buf[40];
  snprintf(buf, sizeof buf, "%.14g", v);
  lua_pushstring(L, buf);
}

/* Push the text of the Kernel at idx; parenthesised when it is a sum and paren_sum is set. */
static void push_text(lua_State *L, int idx, int paren_sum) {
  idx = lua_absindex(L, idx);
  const nnft_kernel *k = &((l_kernel *)lua_touserdata(L, idx))->k;
  luaL_checkstack(L, 8, "kernel tree too deep");
  int top = lua_gettop(L);
  char buf[200];
  switch (k->type) {
  case NNFT_KERNEL_RBF:
    snprintf(buf, sizeof buf, "rbf{lengthscale=%.14g, variance=%.14g}", k->lengthscale,
             k->variance);
    lua_pushstring(L, buf);
    return;
  case NNFT_KERNEL_MATERN:
    snprintf(buf, sizeof buf, "matern{nu=%.14g, lengthscale=%.14g, variance=%.14g}", k->nu,
             k->lengthscale, k->variance);
    lua_pushstring(L, buf);
    return;
  case NNFT_KERNEL_POLY:
    snprintf(buf, sizeof buf, "poly{degree=%.14g, offset=%.14g, variance=%.14g}", k->degree,
             k->offset, k->variance);
    lua_pushstring(L, buf);
    return;
  case NNFT_KERNEL_FREEPROP:
    snprintf(buf, sizeof buf, "freeprop{d=%zu, R=%.14g, m=%.14g}", k->dim, k->radius, k->mass);
    lua_pushstring(L, buf);
    return;
  case NNFT_KERNEL_NNGP:
  case NNFT_KERNEL_NTK:
    lua_pushstring(L, k->type == NNFT_KERNEL_NNGP ? "nngp(" : "ntk(");
    lua_getiuservalue(L, idx, 1);
    luaL_tolstring(L, -1, NULL);
    lua_remove(L, -2);
    if (k->quad_order) lua_pushfstring(L, ", quad_order=%d)", k->quad_order);
    else lua_pushstring(L, ")");
    lua_concat(L, 3);
    return;
  case NNFT_KERNEL_SCALE:
    push_number(L, k->scale);
    lua_pushstring(L, " * ");
    lua_getiuservalue(L, idx, 1);
    push_text(L, -1, 1);
    lua_remove(L, -2);
    lua_concat(L, 3);
    return;
  case NNFT_KERNEL_SUM:
  case NNFT_KERNEL_PROD: {
    int sum = k->type == NNFT_KERNEL_SUM;
    if (sum && paren_sum) lua_pushstring(L, "(");
    lua_getiuservalue(L, idx, 1);
    push_text(L, -1, !sum);
    lua_remove(L, -2);
    lua_pushstring(L, sum ? " + " : " * ");
    lua_getiuservalue(L, idx, 2);
    push_text(L, -1, 1); /* right operand: a + (b + c) keeps its shape */
    lua_remove(L, -2);
    if (sum && paren_sum) lua_pushstring(L, ")");
    lua_concat(L, lua_gettop(L) - top);
    return;
  }
  }
  lua_pushstring(L, "?");
}

static int kernel_tostring(lua_State *L) {
  check_lkernel(L, 1);
  push_text(L, 1, 0);
  return 1;
}

static const char *type_name(nnft_kernel_type t) {
  switch (t) {
  case NNFT_KERNEL_NNGP: return "nngp";
  case NNFT_KERNEL_NTK: return "ntk";
  case NNFT_KERNEL_RBF: return "rbf";
  case NNFT_KERNEL_MATERN: return "matern";
  case NNFT_KERNEL_POLY: return "poly";
  case NNFT_KERNEL_FREEPROP: return "freeprop";
  case NNFT_KERNEL_SUM: return "sum";
  case NNFT_KERNEL_PROD: return "prod";
  case NNFT_KERNEL_SCALE: return "scale";
  }
  return "?";
}

static void set_num(lua_State *L, const char *key, double v) {
  lua_pushnumber(L, v);
  lua_setfield(L, -2, key);
}

/* Push the spec table of the Kernel at idx. */
static void push_spec(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  const nnft_kernel *k = &((l_kernel *)lua_touserdata(L, idx))->k;
  luaL_checkstack(L, 6, "kernel tree too deep");
  lua_createtable(L, 0, 4);
  lua_pushstring(L, type_name(k->type));
  lua_setfield(L, -2, "type");
  switch (k->type) {
  case NNFT_KERNEL_RBF:
    set_num(L, "lengthscale", k->lengthscale);
    set_num(L, "variance", k->variance);
    break;
  case NNFT_KERNEL_MATERN:
    set_num(L, "nu", k->nu);
    set_num(L, "lengthscale", k->lengthscale);
    set_num(L, "variance", k->variance);
    break;
  case NNFT_KERNEL_POLY:
    lua_pushinteger(L, (lua_Integer)k->degree);
    lua_setfield(L, -2, "degree");
    set_num(L, "offset", k->offset);
    set_num(L, "variance", k->variance);
    break;
  case NNFT_KERNEL_FREEPROP:
    lua_pushinteger(L, (lua_Integer)k->dim);
    lua_setfield(L, -2, "d");
    set_num(L, "R", k->radius);
    set_num(L, "m", k->mass);
    break;
  case NNFT_KERNEL_NNGP:
  case NNFT_KERNEL_NTK:
    lua_getiuservalue(L, idx, 1);
    lua_setfield(L, -2, "arch");
    lua_pushinteger(L, k->quad_order);
    lua_setfield(L, -2, "quad_order");
    break;
  case NNFT_KERNEL_SCALE:
    set_num(L, "scale", k->scale);
    lua_getiuservalue(L, idx, 1);
    push_spec(L, -1);
    lua_remove(L, -2);
    lua_setfield(L, -2, "kernel");
    break;
  case NNFT_KERNEL_SUM:
  case NNFT_KERNEL_PROD:
    lua_getiuservalue(L, idx, 1);
    push_spec(L, -1);
    lua_remove(L, -2);
    lua_setfield(L, -2, "left");
    lua_getiuservalue(L, idx, 2);
    push_spec(L, -1);
    lua_remove(L, -2);
    lua_setfield(L, -2, "right");
    break;
  }
}

static int kernel_spec(lua_State *L) {
  check_lkernel(L, 1);
  push_spec(L, 1);
  return 1;
}

static int kernel_is_stationary(lua_State *L) {
  l_kernel *u = check_lkernel(L, 1);
  lua_pushboolean(L, nnft_kernel_is_stationary(&u->k));
  return 1;
}

/* Kernel:dim() -> the input dimension the kernel requires, or nil if any */
static int kernel_dim(lua_State *L) {
  l_kernel *u = check_lkernel(L, 1);
  size_t d = 0;
  nnft_kernel_input_dim(&u->k, &d);
  if (d) lua_pushinteger(L, (lua_Integer)d);
  else lua_pushnil(L);
  return 1;
}

/* ---------------------------------------------------------------------------------------------
 * Evaluation */

/* The points at idx (Mat or table of rows), checked against the kernel's input dimension. */
static const nnft_mat *check_points(lua_State *L, int idx, const nnft_kernel *k, const char *name,
                                    const char *fname) {
  int pushed;
  const nnft_mat *X = l_tomat(L, idx, &pushed);
  if (pushed) lua_replace(L, idx); /* keep the converted Mat in the argument's slot */
  size_t dim = 0;
  nnft_kernel_input_dim(k, &dim);
  if (X->cols == 0) l_error(L, "%s: %s has no columns (rows are points)", fname, name);
  if (dim && X->cols != dim)
    l_error(L, "%s: %s has %zu columns but the kernel takes points of dimension %zu (rows are "
              "points)", fname, name, X->cols, dim);
  for (size_t j = 0; j < X->cols; j++)
    for (size_t i = 0; i < X->rows; i++)
      if (!isfinite(NNFT_AT(X, i, j)))
        l_error(L, "%s: %s contains NaN or Inf (row %zu, column %zu)", fname, name, i + 1, j + 1);
  return X;
}

/* 1 if the tree has an NNGP/NTK leaf and nnft_nngp is not in this build. */
static int nngp_unavailable(const nnft_kernel *k) {
  if (!k) return 0;
  if (has_arch(k)) return !NNFT_KERNEL_HAVE_NNGP;
  return nngp_unavailable(k->left) || nngp_unavailable(k->right);
}

static int raise_status(lua_State *L, nnft_status s, const nnft_kernel *k, const char *fname) {
  if (s == NNFT_EDOM) {
    const char *why = NULL;
    if (nnft_kernel_check_why(k, &why)) return l_error(L, "%s: %s", fname, why);
    if (nngp_unavailable(k))
      return l_error(L, "%s: the NNGP/NTK kernels of an architecture are not available in this "
                       "build", fname);
  }
  if (s == NNFT_ENOCONV)
    return l_status_error(L, s, fname, "the momentum integral of the free propagator did not "
                                       "converge");
  if (s == NNFT_ENONFINITE) /* the points were checked finite: the values overflowed */
    return l_error(L, "%s: the kernel produced NaN or Inf (overflow? exp activations, large "
                      "sigma_w or many layers)", fname);
  return l_status_error(L, s, fname, NULL);
}

/* Refuse an n x m matrix that cannot fit in memory. */
static void check_fits(lua_State *L, const nnft_kernel *k, size_t n, size_t m, const char *fname) {
  size_t bytes;
  double gib = (double)n * (double)m * 8.0 / 1073741824.0;
  double mem = (double)nnft_mat_max_bytes() / 1073741824.0;
  if (nnft_kernel_bytes(k, n, m, &bytes) || bytes > nnft_mat_max_bytes())
    l_error(L, "%s: a %zu x %zu kernel matrix needs %.3g GiB, more than this machine's memory "
              "(%.3g GiB); use fewer points, or evaluate blocks K:matrix(X1, X2) of rows",
           fname, n, m, gib, mem);
}

static int eval_matrix(lua_State *L, const nnft_kernel *k, const char *fname) {
  const nnft_mat *X = check_points(L, 2, k, "X", fname);
  const nnft_mat *Y = NULL;
  if (!lua_isnoneornil(L, 3)) {
    Y = check_points(L, 3, k, "Y", fname);
    if (Y->cols != X->cols)
      l_error(L, "%s: X has %zu columns but Y has %zu (rows are points)", fname, X->cols, Y->cols);
  }
  size_t n = X->rows, m = Y ? Y->rows : n;
  check_fits(L, k, n, m, fname);
  nnft_mat *out = l_newmat(L, n, m);
  walk_archs(L, 1, 1, NULL);
  nnft_status s = nnft_kernel_matrix(k, X, Y, out);
  walk_archs(L, 1, 0, fname);
  if (s) raise_status(L, s, k, fname);
  return 1;
}

/* Kernel:matrix(X [, Y]) -> n x m Mat */
static int kernel_matrix(lua_State *L) {
  l_kernel *u = check_lkernel(L, 1);
  return eval_matrix(L, &u->k, "nnft.Kernel:matrix");
}

/* Kernel:ntk(X [, Y]) -> the NTK of the kernel's architecture */
static int kernel_ntk(lua_State *L) {
  const char *fname = "nnft.Kernel:ntk";
  l_kernel *u = check_lkernel(L, 1);
  if (!has_arch(&u->k))
    l_error(L, "%s: only the kernel of an architecture (arch:kernel()) has an NTK; this is %s",
           fname, type_name(u->k.type));
  nnft_kernel ntk = u->k;
  ntk.type = NNFT_KERNEL_NTK;
  return eval_matrix(L, &ntk, fname);
}

/* Kernel:diag(X) -> n x 1 Mat of K(x_i, x_i) */
static int kernel_diag(lua_State *L) {
  const char *fname = "nnft.Kernel:diag";
  l_kernel *u = check_lkernel(L, 1);
  const nnft_mat *X = check_points(L, 2, &u->k, "X", fname);
  nnft_mat *out = l_newmat(L, X->rows, 1);
  walk_archs(L, 1, 1, NULL);
  nnft_status s = nnft_kernel_diag(&u->k, X, out);
  walk_archs(L, 1, 0, fname);
  if (s) raise_status(L, s, &u->k, fname);
  return 1;
}

/* Kernel:spectrum(p [, {method=, d=, epsrel=, n=, L=}]) */
static int kernel_spectrum(lua_State *L) {
  static const char *const keys[] = {"method", "d", "epsrel", "n", "L", NULL};
  static const char *const methods[] = {"analytic", "quadrature", "fft", NULL};
  const char *fname = "nnft.Kernel:spectrum";
  l_kernel *u = check_lkernel(L, 1);
  const nnft_kernel *k = &u->k;
  opts_table(L, 3, fname, keys, "{method=, d=, epsrel=, n=, L=}");
  if (!nnft_kernel_is_stationary(k))
    l_error(L, "%s: the power spectrum is defined for translation-invariant kernels (K depends "
              "on |x - y| only); %s is not", fname, type_name(k->type));
  int method = l_opt_choice(L, 3, "method", "analytic", methods);
  size_t dim = 0;
  nnft_kernel_input_dim(k, &dim);
  lua_Integer d = l_opt_integer(L, 3, "d", (lua_Integer)dim);
  if (d == 0)
    l_error(L, "%s: this kernel works in any dimension: say which with d= (1, 2 or 3)", fname);
  if (d < 1 || d > 3) l_error(L, "%s: d must be 1, 2 or 3, got %lld", fname, (long long)d);
  if (dim && (size_t)d != dim)
    l_error(L, "%s: d=%lld but the kernel takes points of dimension %zu", fname, (long long)d,
           dim);
  nnft_spectrum_opts o = nnft_spectrum_defaults();
  o.method = method == 0 ? NNFT_SPECTRUM_ANALYTIC
             : method == 1 ? NNFT_SPECTRUM_QUADRATURE
                           : NNFT_SPECTRUM_FFT;
  o.epsrel = l_opt_number(L, 3, "epsrel", o.epsrel);
  if (!(o.epsrel > 0 && o.epsrel < 1))
    l_error(L, "%s: epsrel must be between 0 and 1, got %g", fname, o.epsrel);
  lua_Integer n = l_opt_integer(L, 3, "n", 0);
  if (n != 0 && (n < 16 || n > (d == 1 ? (1 << 24) : d == 2 ? 4096 : 256)))
    l_error(L, "%s: n (grid points per dimension) must be between 16 and %d in d = %lld, got "
              "%lld", fname, d == 1 ? (1 << 24) : d == 2 ? 4096 : 256, (long long)d,
           (long long)n);
  if (n % 2)
    l_error(L, "%s: n (grid points per dimension) must be even, got %lld", fname, (long long)n);
  o.n = (size_t)n;
  o.L = l_opt_number(L, 3, "L", 0.0);
  if (!(isfinite(o.L) && o.L >= 0))
    l_error(L, "%s: L (the box length of the fft grid) must be > 0, got %g", fname, o.L);
  if (o.method == NNFT_SPECTRUM_ANALYTIC) {
    const char *why = NULL;
    if (nnft_spectrum_has_analytic(k, (size_t)d, &why) != NNFT_OK)
      l_error(L, "%s: no closed form for this kernel (%s); use method=\"quadrature\" or "
                "method=\"fft\"", fname, why ? why : "?");
  }
  int scalar = lua_type(L, 2) == LUA_TNUMBER;
  int pushed;
  const nnft_mat *p = l_tomat(L, 2, &pushed);
  if (pushed) lua_replace(L, 2);
  for (size_t j = 0; j < p->cols; j++)
    for (size_t i = 0; i < p->rows; i++) {
      double v = NNFT_AT(p, i, j);
      if (!isfinite(v))
        l_error(L, "%s: p contains NaN or Inf (element %zu, %zu)", fname, i + 1, j + 1);
      if (v < 0)
        l_error(L, "%s: p must be >= 0 (momentum magnitudes |p|), got %g at element %zu, %zu",
               fname, v, i + 1, j + 1);
    }
  nnft_mat *out = l_newmat(L, p->rows, p->cols);
  walk_archs(L, 1, 1, NULL);
  nnft_spectrum_info info;
  nnft_status s = nnft_spectrum(k, (size_t)d, &o, p, out, &info);
  walk_archs(L, 1, 0, fname);
  if (s == NNFT_ENOCONV)
    l_error(L, "%s: the %s transform did not converge to epsrel=%g; try a larger epsrel= or "
              "method=\"fft\"", fname, methods[method], o.epsrel);
  if (s == NNFT_EOVERFLOW && o.method == NNFT_SPECTRUM_FFT)
    l_error(L, "%s: an fft grid of %zu^%lld points does not fit in memory; use a smaller n=",
           fname, o.n, (long long)d);
  if (s == NNFT_EDOM) {
    const char *why = NULL;
    if (nnft_kernel_check_why(k, &why)) l_error(L, "%s: %s", fname, why);
    if (o.method == NNFT_SPECTRUM_FFT)
      l_error(L, "%s: p beyond the fft grid's reach: the grid (n=%zu, L=%g) resolves |p| <= %g; "
                "increase n= or decrease L=", fname, info.n, info.L, info.p_max);
    if (nngp_unavailable(k))
      l_error(L, "%s: the NNGP kernel of an architecture is not available in this build", fname);
    l_error(L, "%s: cannot compute this spectrum with method=\"%s\" in d = %lld", fname,
           methods[method], (long long)d);
  }
  if (s) l_status_error(L, s, fname, NULL);
  if (scalar) lua_pushnumber(L, out->data[0]);
  return 1;
}

/* ---------------------------------------------------------------------------------------------
 * Registration */

static const luaL_Reg kernel_methods[] = {{"matrix", kernel_matrix},
                                          {"ntk", kernel_ntk},
                                          {"diag", kernel_diag},
                                          {"spectrum", kernel_spectrum},
                                          {"is_stationary", kernel_is_stationary},
                                          {"dim", kernel_dim},
                                          {"spec", kernel_spec},
                                          {NULL, NULL}};
static const luaL_Reg kernel_meta[] = {{"__tostring", kernel_tostring},
                                       {"__add", kernel_add},
                                       {"__mul", kernel_mul},
                                       {NULL, NULL}};

void l_kernel_add_methods(lua_State *L, const luaL_Reg *methods) {
  l_newclass(L, L_KERNEL_NAME, kernel_methods, kernel_meta); /* idempotent */
  luaL_getmetatable(L, L_KERNEL_NAME);
  lua_getfield(L, -1, "__index");
  luaL_setfuncs(L, methods, 0);
  lua_pop(L, 2);
}

void l_open_kernel(lua_State *L) {
  static const luaL_Reg fns[] = {{"rbf", k_rbf},
                                 {"matern", k_matern},
                                 {"poly", k_poly},
                                 {"freeprop", k_freeprop},
                                 {NULL, NULL}};
  static const luaL_Reg arch_methods[] = {{"kernel", arch_kernel},
                                          {"ntk_kernel", arch_ntk_kernel},
                                          {NULL, NULL}};
  gsl_set_error_handler_off(); /* the quadratures check GSL's status codes (idempotent) */
  l_newclass(L, L_KERNEL_NAME, kernel_methods, kernel_meta);
  l_arch_add_methods(L, arch_methods);
  /* nnft.kernel: keep functions another binding may have added first */
  if (lua_getfield(L, -1, "kernel") != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
  }
  luaL_setfuncs(L, fns, 0);
  lua_setfield(L, -2, "kernel");
}
