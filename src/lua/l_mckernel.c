/* Monte Carlo kernels (docs/api/nngp.md): the empirical NNGP kernel of an ensemble,
 * arch:mc_kernel and its running estimate arch:mc_kernel_running (core: nnft_ensemble's sampler
 * with the order-2 correlator accumulator of nnft_corr), and the empirical NTK of a network,
 * net:ntk = J Jᵀ, and of an ensemble, arch:mc_ntk (core: nnft_fisher's Gram form, which builds
 * J Jᵀ layer by layer without forming J).
 *
 * Every binding: check all arguments -> allocate Lua-owned results and workspaces (core objects
 * live in a box userdata with __gc from before they exist) -> call the core -> raise on a bad
 * status. Inputs are copied into Lua-owned matrices first, so that a Lua activation function
 * releasing them mid-call cannot pull the data from under the core. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "l_util.h"
#include "nnft_corr.h"
#include "nnft_ensemble.h"
#include "nnft_fisher.h"
#include "nnft_net.h"
#include "nnft_rng.h"

#define L_MCBOX_NAME "nnft.MCKernelWork"
#define MC_MAX_GRID 64

/* ---- the box: core objects owned by Lua ---- */

typedef struct mc_box {
  nnft_corr_acc *acc;
  nnft_net net;
  nnft_fisher F;
} mc_box;

static void box_release(mc_box *b) {
  nnft_corr_acc_free(b->acc);
  b->acc = NULL;
  nnft_net_free(&b->net);
  nnft_fisher_free(&b->F);
}

static int box_gc(lua_State *L) {
  box_release(luaL_checkudata(L, 1, L_MCBOX_NAME));
  return 0;
}

static mc_box *push_box(lua_State *L) {
  mc_box *b = lua_newuserdatauv(L, sizeof *b, 0);
  memset(b, 0, sizeof *b);
  luaL_setmetatable(L, L_MCBOX_NAME);
  return b;
}

/* ---- argument helpers ---- */

/* A positive integer at idx (floats with integral values accepted: 1e5 works). */
static size_t check_posint(lua_State *L, int idx, const char *fname, const char *what) {
  int isint;
  lua_Integer v = lua_tointegerx(L, idx, &isint);
  if (lua_type(L, idx) != LUA_TNUMBER || !isint || v < 1)
    l_error(L, "%s: %s must be a positive integer, got %s", fname, what,
           lua_type(L, idx) == LUA_TNUMBER ? lua_tostring(L, idx) : luaL_typename(L, idx));
  return (size_t)v;
}

/* A positive-integer option (0 when absent). */
static size_t opt_posint(lua_State *L, int opts, const char *fname, const char *key) {
  size_t v = 0;
  if (lua_istable(L, opts) && lua_getfield(L, opts, key) != LUA_TNIL) {
    char what[64];
    snprintf(what, sizeof what, "%s=", key);
    v = check_posint(L, -1, fname, what);
  }
  if (lua_istable(L, opts)) lua_pop(L, 1);
  return v;
}

/* seed= (required): an integer 0 .. 2^63-1. */
static uint64_t opt_seed(lua_State *L, int opts, const char *fname, const char *example) {
  int t = lua_istable(L, opts) ? lua_getfield(L, opts, "seed") : LUA_TNIL;
  if (t == LUA_TNIL)
    l_error(L, "%s: seed= is required (an integer in 0 .. 2^63-1): %s", fname, example);
  int isint;
  lua_Integer s = lua_tointegerx(L, -1, &isint);
  if (t != LUA_TNUMBER || !isint || s < 0)
    l_error(L, "%s: seed must be an integer in 0 .. 2^63-1, got %s", fname,
           luaL_tolstring(L, -1, NULL));
  lua_pop(L, 1);
  return (uint64_t)s;
}

/* Inputs at idx (a Mat or a table of rows) with d columns, finite, at least one row: a
 * Lua-owned copy replaces the argument. */
static nnft_mat *check_points(lua_State *L, int idx, size_t d, const char *fname,
                              const char *what) {
  int pushed;
  nnft_mat *X = l_tomat(L, idx, &pushed);
  if (X->rows == 0) l_error(L, "%s: %s has no rows (rows are input points)", fname, what);
  if (X->cols != d)
    l_error(L, "%s: %s has %zu columns but the architecture has d_in = %zu (rows are points)",
           fname, what, X->cols, d);
  l_check_finite(L, X, fname, what);
  nnft_mat *c = l_pushcopy(L, X);
  lua_replace(L, idx);
  if (pushed) lua_pop(L, 1);
  return c;
}

static int threads_opt(lua_State *L, int opts, const char *fname, const nnft_arch *a) {
  size_t t = opt_posint(L, opts, fname, "threads");
  if (t > 4096) l_error(L, "%s: threads= %zu is implausibly large (at most 4096)", fname, t);
  return nnft_ens_threads(a, (int)t);
}

static void raise_status(lua_State *L, nnft_status s, const char *fname, int aidx,
                         const char *nomem) {
  l_arch_check_custom(L, aidx, fname);
  if (s == NNFT_OK) return;
  if (s == NNFT_ENOMEM) l_status_error(L, s, fname, nomem);
  l_status_error(L, s, fname, NULL);
}

/* ---- the Monte Carlo NNGP kernel ---- */

/* Accumulate G2 over networks 0 .. E-1 into a fresh accumulator in box b. */
static nnft_status mc_run(const nnft_arch *a, const nnft_mat *X, uint64_t seed, size_t E,
                          size_t B, size_t chunk, int threads, mc_box *b) {
  int order = 2;
  nnft_corr_acc_free(b->acc);
  b->acc = NULL;
  nnft_status s = nnft_corr_acc_alloc(X->rows, &order, 1, E, B, &b->acc);
  if (s) return s;
  return nnft_ens_correlators(a, X, seed, chunk, threads, b->acc);
}

/* K, err (n x n) from the accumulator's sorted pairs (i <= j, lexicographic). */
static void mc_fill(const nnft_corr_acc *acc, size_t n, double *mean, double *err, nnft_mat *K,
                    nnft_mat *Kerr) {
  nnft_corr_acc_result(acc, 2, mean, NULL, 0, NULL, err);
  size_t t = 0;
  for (size_t i = 0; i < n; i++)
    for (size_t j = i; j < n; j++, t++) {
      NNFT_AT(K, i, j) = NNFT_AT(K, j, i) = mean[t];
      NNFT_AT(Kerr, i, j) = NNFT_AT(Kerr, j, i) = err[t];
    }
}

/* Check bags against E and the pair count against memory; returns B. */
static size_t mc_bags(lua_State *L, int opts, const char *fname, size_t E, size_t n) {
  size_t B = opt_posint(L, opts, fname, "bags");
  if (!B) B = E < 10 ? E : 10;
  if (B < 2)
    l_error(L, "%s: error bars need at least 2 bags (bags = %zu, E = %zu): use E >= 2", fname,
           B, E);
  if (B > E)
    l_error(L, "%s: bags = %zu exceeds the number of networks E = %zu (each bag needs one)",
           fname, B, E);
  size_t count;
  if (nnft_corr_ntuples(n, 2, &count))
    l_error(L, "%s: %zu inputs have too many pairs to count", fname, n);
  return B;
}

/* scratch doubles for the sorted pairs, owned by Lua */
static double *push_scratch(lua_State *L, size_t count) {
  nnft_mat *m = l_newmat(L, count, 2);
  return m->data;
}

/* arch:mc_kernel(X, {E=, seed=, bags=, threads=, chunk=}) -> K, err */
static int arch_mc_kernel(lua_State *L) {
  static const char *const allowed[] = {"E", "seed", "bags", "threads", "chunk", NULL};
  const char *fname = "arch:mc_kernel";
  lua_settop(L, 3);
  const nnft_arch *a = l_checkarch(L, 1);
  nnft_mat *X = check_points(L, 2, a->d_in, fname, "X");
  l_check_options(L, 3, fname, allowed);
  if (!lua_istable(L, 3))
    l_error(L, "%s: options E= and seed= are required: arch:mc_kernel(X, {E = 10000, seed = 1})",
           fname);
  size_t E = opt_posint(L, 3, fname, "E");
  if (!E) l_error(L, "%s: E= (the number of networks) is required", fname);
  uint64_t seed = opt_seed(L, 3, fname, "arch:mc_kernel(X, {E = 10000, seed = 1})");
  size_t n = X->rows, B = mc_bags(L, 3, fname, E, n), count;
  size_t chunk = opt_posint(L, 3, fname, "chunk");
  int threads = threads_opt(L, 3, fname, a);
  nnft_corr_ntuples(n, 2, &count);
  nnft_mat *K = l_newmat(L, n, n);    /* 4 */
  nnft_mat *Kerr = l_newmat(L, n, n); /* 5 */
  double *mean = push_scratch(L, count), *err = mean + count; /* 6 */
  mc_box *b = push_box(L);                                    /* 7 */
  nnft_status s = mc_run(a, X, seed, E, B, chunk ? chunk : NNFT_ENS_CHUNK, threads, b);
  if (s == NNFT_EOVERFLOW || (s == NNFT_ENOMEM && !b->acc))
    l_error(L, "%s: cannot hold the pair sums of %zu inputs in %zu bags (%s); use fewer inputs "
              "or bags", fname, n, B, nnft_strerror(s));
  raise_status(L, s, fname, 1, "the sampler's workspace could not be allocated");
  mc_fill(b->acc, n, mean, err, K, Kerr);
  box_release(b);
  lua_pushvalue(L, 4);
  lua_pushvalue(L, 5);
  return 2;
}

/* Statistics of K − R over all entries: max |K − R|, ‖K − R‖_F / ‖R‖_F, mean |K − R| / err,
 * ‖err‖_F / ‖R‖_F. */
static void deviations(const nnft_mat *K, const nnft_mat *Kerr, const nnft_mat *R, double *maxd,
                       double *rel, double *meanz, double *relerr) {
  double md = 0, d2 = 0, r2 = 0, zs = 0, e2 = 0;
  size_t nz = 0;
  for (size_t j = 0; j < K->cols; j++)
    for (size_t i = 0; i < K->rows; i++) {
      double d = NNFT_AT(K, i, j) - NNFT_AT(R, i, j), e = NNFT_AT(Kerr, i, j);
      double r = NNFT_AT(R, i, j);
      if (fabs(d) > md) md = fabs(d);
      d2 += d * d, r2 += r * r, e2 += e * e;
      if (e > 0) zs += fabs(d) / e, nz++;
    }
  *maxd = md;
  *rel = r2 > 0 ? sqrt(d2 / r2) : NAN;
  *meanz = nz ? zs / (double)nz : NAN;
  *relerr = r2 > 0 ? sqrt(e2 / r2) : NAN;
}

/* arch:mc_kernel_running(X, {grid=, seed=, bags=, reference=, threads=, chunk=}) -> table */
static int arch_mc_kernel_running(lua_State *L) {
  static const char *const allowed[] = {"grid", "seed", "bags", "reference", "threads",
                                        "chunk", NULL};
  const char *fname = "arch:mc_kernel_running";
  const char *example = "arch:mc_kernel_running(X, {grid = {100, 1000, 10000}, seed = 1})";
  lua_settop(L, 3);
  const nnft_arch *a = l_checkarch(L, 1);
  nnft_mat *X = check_points(L, 2, a->d_in, fname, "X");
  size_t n = X->rows;
  l_check_options(L, 3, fname, allowed);
  if (!lua_istable(L, 3)) l_error(L, "%s: options grid= and seed= are required: %s", fname, example);
  size_t grid[MC_MAX_GRID], ng;
  if (lua_getfield(L, 3, "grid") != LUA_TTABLE)
    l_error(L, "%s: grid= must be an increasing list of ensemble sizes, e.g. {100, 1000, 10000}",
           fname);
  ng = lua_rawlen(L, -1);
  if (ng == 0 || ng > MC_MAX_GRID)
    l_error(L, "%s: grid= must list 1 .. %d ensemble sizes, got %zu", fname, MC_MAX_GRID, ng);
  for (size_t k = 0; k < ng; k++) {
    char what[40];
    snprintf(what, sizeof what, "grid[%zu]", k + 1);
    lua_rawgeti(L, -1, (lua_Integer)k + 1);
    grid[k] = check_posint(L, -1, fname, what);
    lua_pop(L, 1);
    if (k && grid[k] <= grid[k - 1])
      l_error(L, "%s: grid= must increase (grid[%zu] = %zu after %zu)", fname, k + 1, grid[k],
             grid[k - 1]);
  }
  lua_pop(L, 1);
  uint64_t seed = opt_seed(L, 3, fname, example);
  size_t B = mc_bags(L, 3, fname, grid[0], n), count;
  size_t chunk = opt_posint(L, 3, fname, "chunk");
  int threads = threads_opt(L, 3, fname, a);
  nnft_mat *R = NULL;
  if (lua_getfield(L, 3, "reference") != LUA_TNIL) {
    int pushed;
    nnft_mat *r = l_tomat(L, -1, &pushed);
    if (r->rows != n || r->cols != n)
      l_error(L, "%s: reference= is %zu x %zu, expected %zu x %zu (the kernel at the rows of X)",
             fname, r->rows, r->cols, n, n);
    l_check_finite(L, r, fname, "reference");
    R = l_pushcopy(L, r);
    lua_replace(L, 3 + 1); /* keep the copy at index 4 */
    if (pushed) lua_pop(L, 1);
  } else {
    lua_pop(L, 1);
    lua_pushnil(L); /* index 4 */
  }
  lua_settop(L, 4);
  nnft_corr_ntuples(n, 2, &count);
  /* the result table and every Mat in it, before the core runs */
  lua_createtable(L, 0, 8); /* 5 */
  nnft_mat *Es = l_newmat(L, ng, 1);
  lua_setfield(L, 5, "E");
  lua_createtable(L, (int)ng, 0);
  lua_setfield(L, 5, "K");
  lua_createtable(L, (int)ng, 0);
  lua_setfield(L, 5, "err");
  nnft_mat *Ks[MC_MAX_GRID], *Kerrs[MC_MAX_GRID];
  lua_getfield(L, 5, "K");
  lua_getfield(L, 5, "err");
  for (size_t k = 0; k < ng; k++) {
    Ks[k] = l_newmat(L, n, n);
    lua_rawseti(L, -3, (lua_Integer)k + 1);
    Kerrs[k] = l_newmat(L, n, n);
    lua_rawseti(L, -2, (lua_Integer)k + 1);
    Es->data[k] = (double)grid[k];
  }
  lua_pop(L, 2);
  nnft_mat *dev[4] = {NULL, NULL, NULL, NULL};
  static const char *const dev_names[4] = {"max_dev", "rel_dev", "mean_z", "rel_err"};
  if (R)
    for (int q = 0; q < 4; q++) {
      dev[q] = l_newmat(L, ng, 1);
      lua_setfield(L, 5, dev_names[q]);
    }
  lua_pushinteger(L, (lua_Integer)B);
  lua_setfield(L, 5, "bags");
  double *mean = push_scratch(L, count), *err = mean + count; /* 6 */
  mc_box *b = push_box(L);                                    /* 7 */
  for (size_t k = 0; k < ng; k++) {
    nnft_status s = mc_run(a, X, seed, grid[k], B, chunk ? chunk : NNFT_ENS_CHUNK, threads, b);
    if (s == NNFT_EOVERFLOW || (s == NNFT_ENOMEM && !b->acc))
      l_error(L, "%s: cannot hold the pair sums of %zu inputs in %zu bags (%s)", fname, n, B,
             nnft_strerror(s));
    raise_status(L, s, fname, 1, "the sampler's workspace could not be allocated");
    mc_fill(b->acc, n, mean, err, Ks[k], Kerrs[k]);
    if (R)
      deviations(Ks[k], Kerrs[k], R, &dev[0]->data[k], &dev[1]->data[k], &dev[2]->data[k],
                 &dev[3]->data[k]);
  }
  box_release(b);
  lua_settop(L, 5);
  return 1;
}

/* ---- empirical NTK ---- */

/* G = J_Z J_Zᵀ for the net in b->net at the rows of Z, into the n x n (or n x m block) out. */
static nnft_status gram(mc_box *b, const nnft_mat *Z, size_t n, nnft_mat *out) {
  nnft_fisher_free(&b->F);
  memset(&b->F, 0, sizeof b->F);
  if (b->net.ntrain == 0) { /* everything frozen: Θ = 0 */
    nnft_mat_fill(out, 0.0);
    return NNFT_OK;
  }
  nnft_status s = nnft_fisher_compute(&b->net, Z, 1.0, 0.0, NNFT_FISHER_GRAM, 0, &b->F);
  if (s) return s;
  nnft_mat blk;
  if ((s = nnft_mat_view(&b->F.gram, 0, out->cols == Z->rows ? 0 : n, n, out->cols, &blk)))
    return s;
  s = nnft_mat_copy(&blk, out);
  nnft_fisher_free(&b->F);
  memset(&b->F, 0, sizeof b->F);
  return s;
}

/* Z = [X; Y] (or X) as a Lua-owned Mat pushed on the stack. */
static nnft_mat *push_stack(lua_State *L, const nnft_mat *X, const nnft_mat *Y) {
  if (!Y) return l_pushcopy(L, X);
  nnft_mat *Z = l_newmat(L, X->rows + Y->rows, X->cols);
  for (size_t c = 0; c < X->cols; c++) {
    for (size_t i = 0; i < X->rows; i++) NNFT_AT(Z, i, c) = NNFT_AT(X, i, c);
    for (size_t i = 0; i < Y->rows; i++) NNFT_AT(Z, X->rows + i, c) = NNFT_AT(Y, i, c);
  }
  return Z;
}

static void raise_ntk(lua_State *L, nnft_status s, const char *fname) {
  if (s == NNFT_ENONFINITE)
    l_status_error(L, s, fname, "the network's parameters or outputs are not finite");
  if (s == NNFT_ENOMEM)
    l_status_error(L, s, fname, "the per-layer Jacobian signals could not be allocated");
  l_status_error(L, s, fname, NULL);
}

/* net:ntk(X [, Y]) -> Θ = J_X J_Yᵀ (n x m; J_X J_Xᵀ without Y) */
static int net_ntk(lua_State *L) {
  const char *fname = "net:ntk";
  lua_settop(L, 3);
  nnft_net *net = l_checknet(L, 1);
  size_t d = net->arch.d_in;
  nnft_mat *X = check_points(L, 2, d, fname, "X");
  nnft_mat *Y = lua_isnil(L, 3) ? NULL : check_points(L, 3, d, fname, "Y");
  size_t n = X->rows, m = Y ? Y->rows : n;
  nnft_mat *out = l_newmat(L, n, m); /* 4 */
  nnft_mat *Z = push_stack(L, X, Y); /* 5 */
  mc_box *b = push_box(L);           /* 6 */
  nnft_status s = nnft_net_copy(net, &b->net);
  if (!s) s = gram(b, Z, n, out);
  l_net_check_custom(L, 1, fname);
  if (s) raise_ntk(L, s, fname);
  box_release(b);
  lua_settop(L, 4);
  return 1;
}

/* arch:mc_ntk(X, {E=, seed=} [, Y]) -> mean NTK over networks 1..E, its standard error */
static int arch_mc_ntk(lua_State *L) {
  static const char *const allowed[] = {"E", "seed", "Y", NULL};
  const char *fname = "arch:mc_ntk";
  const char *example = "arch:mc_ntk(X, {E = 8, seed = 1})";
  lua_settop(L, 3);
  const nnft_arch *a = l_checkarch(L, 1);
  nnft_mat *X = check_points(L, 2, a->d_in, fname, "X");
  l_check_options(L, 3, fname, allowed);
  if (!lua_istable(L, 3)) l_error(L, "%s: options E= and seed= are required: %s", fname, example);
  size_t E = opt_posint(L, 3, fname, "E");
  if (E < 2) l_error(L, "%s: E= (the number of networks, >= 2 for an error bar) is required",
                    fname);
  uint64_t seed = opt_seed(L, 3, fname, example);
  nnft_mat *Y = NULL;
  if (lua_getfield(L, 3, "Y") != LUA_TNIL) {
    Y = check_points(L, 4, a->d_in, fname, "Y");
  }
  lua_settop(L, 4);
  size_t n = X->rows, m = Y ? Y->rows : n;
  nnft_mat *mean = l_newmat(L, n, m); /* 5 */
  nnft_mat *se = l_newmat(L, n, m);   /* 6 */
  nnft_mat *G = l_newmat(L, n, m);    /* 7 */
  nnft_mat *Z = push_stack(L, X, Y);  /* 8 */
  mc_box *b = push_box(L);            /* 9 */
  nnft_status s = nnft_net_setup(a, &b->net);
  nnft_rng root;
  nnft_rng_init(&root, seed);
  /* Welford over networks e = 1..E, network e as arch:init{seed = seed, stream = e} */
  for (size_t e = 0; e < E && !s; e++) {
    nnft_rng r;
    if ((s = nnft_rng_substream(&root, e, &r))) break;
    if ((s = nnft_net_init(&b->net, &r))) break;
    if ((s = gram(b, Z, n, G))) break;
    for (size_t k = 0; k < n * m; k++) {
      double x = G->data[k], dlt = x - mean->data[k];
      mean->data[k] += dlt / (double)(e + 1);
      se->data[k] += dlt * (x - mean->data[k]);
    }
  }
  l_arch_check_custom(L, 1, fname);
  if (s) raise_ntk(L, s, fname);
  for (size_t k = 0; k < n * m; k++) se->data[k] = sqrt(se->data[k] / (double)(E - 1) / (double)E);
  box_release(b);
  lua_settop(L, 6);
  return 2;
}

void l_open_mckernel(lua_State *L) {
  static const luaL_Reg box_meta[] = {{"__gc", box_gc}, {NULL, NULL}};
  static const luaL_Reg arch_methods[] = {{"mc_kernel", arch_mc_kernel},
                                          {"mc_kernel_running", arch_mc_kernel_running},
                                          {"mc_ntk", arch_mc_ntk},
                                          {NULL, NULL}};
  static const luaL_Reg net_methods[] = {{"ntk", net_ntk}, {NULL, NULL}};
  if (luaL_newmetatable(L, L_MCBOX_NAME)) luaL_setfuncs(L, box_meta, 0);
  lua_pop(L, 1);
  l_arch_add_methods(L, arch_methods);
  l_net_add_methods(L, net_methods);
}
