/* arch:sample -> the Ensemble userdata (streamed network ensembles, core nnft_ensemble), and
 * nnft.corr (correlator tables, Wick, connected parts, deviation; core nnft_corr). Documented in
 * docs/api/ensemble.md and docs/api/corr.md.
 *
 * An Ensemble is lazy: it records (arch, E, seed, defaults) and every method runs the sampler
 * afresh, streaming the networks in chunks; nothing but the requested results is kept.
 * Correlator results are plain tables with the metatable "nnft.Correlator":
 *   {order=, n=, E=, bags=, tuples=Mat(count x k, 1-based), values=Mat(count x 1),
 *    errors=Mat, std=Mat, bag_means=Mat(bags x count)}
 * Every binding: check arguments -> allocate Lua-owned workspaces (core objects are boxed in a
 * userdata with __gc before they exist) -> call the core -> raise on a bad status. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "l_util.h"
#include "nnft_corr.h"
#include "nnft_ensemble.h"

#define L_ENS_NAME "nnft.Ensemble"
#define L_CORR_NAME "nnft.Correlator"
#define L_BOX_NAME "nnft.EnsembleWork"

typedef struct l_ens {
  uint64_t seed;
  size_t E;
  size_t chunk;
  size_t bags;
  int threads; /* 0: OpenMP's current default at each call */
} l_ens;

/* ---- boxes: core objects owned by a Lua userdata from before they exist ---- */

typedef struct l_box {
  nnft_corr_acc *acc;
  nnft_corr_hist hist;
} l_box;

static int box_gc(lua_State *L) {
  l_box *b = luaL_checkudata(L, 1, L_BOX_NAME);
  nnft_corr_acc_free(b->acc);
  b->acc = NULL;
  nnft_corr_hist_free(&b->hist);
  return 0;
}

static l_box *push_box(lua_State *L) {
  l_box *b = lua_newuserdatauv(L, sizeof *b, 0);
  memset(b, 0, sizeof *b);
  luaL_setmetatable(L, L_BOX_NAME);
  return b;
}

/* ---- argument helpers ---- */

/* A positive integer argument or option value at idx (floats with integral values accepted,
 * so 1e5 works). */
static size_t check_posint(lua_State *L, int idx, const char *fname, const char *what) {
  int isint;
  lua_Integer v = lua_tointegerx(L, idx, &isint);
  if (lua_type(L, idx) != LUA_TNUMBER || !isint || v < 1) {
    if (lua_type(L, idx) == LUA_TNUMBER)
      l_error(L, "%s: %s must be a positive integer, got %s", fname, what,
             lua_tostring(L, idx));
    l_error(L, "%s: %s must be a positive integer, got %s", fname, what,
           luaL_typename(L, idx));
  }
  return (size_t)v;
}

/* A positive-integer option (0 when absent). */
static size_t opt_posint(lua_State *L, int opts, const char *fname, const char *key) {
  if (!lua_istable(L, opts)) return 0;
  size_t v = 0;
  if (lua_getfield(L, opts, key) != LUA_TNIL) {
    char what[64];
    snprintf(what, sizeof what, "%s=", key);
    v = check_posint(L, -1, fname, what);
  }
  lua_pop(L, 1);
  return v;
}

/* The Ensemble at idx; pushes nothing. */
static l_ens *check_ens(lua_State *L, int idx) { return luaL_checkudata(L, idx, L_ENS_NAME); }

/* The Ensemble's Arch (bound to L for a Lua activation), pushed on the stack at *aidx. */
static const nnft_arch *ens_arch(lua_State *L, int eidx, int *aidx) {
  lua_getiuservalue(L, eidx, 1);
  *aidx = lua_gettop(L);
  return l_checkarch(L, *aidx);
}

/* X at idx: a Mat or a table of rows, d_in columns, finite. */
static const nnft_mat *check_X(lua_State *L, int idx, const nnft_arch *a, const char *fname) {
  int pushed;
  const nnft_mat *X = l_tomat(L, idx, &pushed);
  if (pushed) lua_replace(L, idx); /* keep the converted Mat alive in the argument's slot */
  if (X->rows == 0) l_error(L, "%s: X has no rows (rows are input points)", fname);
  if (X->cols != a->d_in)
    l_error(L, "%s: X has %zu columns but the architecture has d_in = %zu (rows are points)",
           fname, X->cols, a->d_in);
  l_check_finite(L, X, fname, "X");
  return X;
}

/* Per-call options shared by the methods: threads=, chunk=, bags= (when allowed). */
typedef struct run_opts {
  int threads;
  size_t chunk, bags;
} run_opts;

static run_opts get_run_opts(lua_State *L, int opts, const l_ens *e, const nnft_arch *a,
                             const char *fname, int with_bags) {
  run_opts r;
  size_t t = opt_posint(L, opts, fname, "threads");
  if (t > 4096) l_error(L, "%s: threads= %zu is implausibly large (at most 4096)", fname, t);
  r.threads = nnft_ens_threads(a, t ? (int)t : e->threads);
  r.chunk = opt_posint(L, opts, fname, "chunk");
  if (!r.chunk) r.chunk = e->chunk;
  r.bags = with_bags ? opt_posint(L, opts, fname, "bags") : 0;
  if (!r.bags) r.bags = e->bags;
  if (r.bags > e->E)
    l_error(L, "%s: bags = %zu exceeds the ensemble size E = %zu (each bag needs a network)",
           fname, r.bags, e->E);
  return r;
}

static void raise_status(lua_State *L, nnft_status s, const char *fname, int aidx) {
  l_arch_check_custom(L, aidx, fname);
  if (s == NNFT_OK) return;
  if (s == NNFT_ENOMEM)
    l_status_error(L, s, fname, "the sampler's workspace could not be allocated");
  l_status_error(L, s, fname, NULL);
}

/* ---- arch:sample ---- */

/* arch:sample(E [, {seed=, threads=, chunk=, bags=}]) -> Ensemble */
static int arch_sample(lua_State *L) {
  static const char *const allowed[] = {"seed", "threads", "chunk", "bags", NULL};
  const char *fname = "arch:sample";
  lua_settop(L, 3);
  const nnft_arch *a = l_checkarch(L, 1);
  (void)a;
  size_t E = check_posint(L, 2, fname, "E (the number of networks)");
  l_check_options(L, 3, fname, allowed);
  if (!lua_istable(L, 3))
    l_error(L, "%s: seed= is required (an integer in 0 .. 2^63-1): arch:sample(%zu, {seed = 42})",
           fname, E);
  int t = lua_getfield(L, 3, "seed");
  int isint;
  lua_Integer seed = lua_tointegerx(L, -1, &isint);
  if (t == LUA_TNIL)
    l_error(L, "%s: seed= is required (an integer in 0 .. 2^63-1): arch:sample(%zu, {seed = 42})",
           fname, E);
  if (t != LUA_TNUMBER || !isint || seed < 0)
    luaL_error(L, "%s: seed must be an integer in 0 .. 2^63-1, got %s", fname,
               luaL_tolstring(L, -1, NULL));
  lua_pop(L, 1);
  size_t threads = opt_posint(L, 3, fname, "threads");
  if (threads > 4096) l_error(L, "%s: threads= %zu is implausibly large (at most 4096)", fname,
                             threads);
  size_t chunk = opt_posint(L, 3, fname, "chunk");
  size_t bags = opt_posint(L, 3, fname, "bags");
  if (bags > E)
    l_error(L, "%s: bags = %zu exceeds the ensemble size E = %zu (each bag needs a network)",
           fname, bags, E);
  l_ens *u = lua_newuserdatauv(L, sizeof *u, 1);
  u->seed = (uint64_t)seed;
  u->E = E;
  u->chunk = chunk ? chunk : NNFT_ENS_CHUNK;
  u->bags = bags ? bags : (E < 10 ? E : 10);
  u->threads = (int)threads;
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);
  luaL_setmetatable(L, L_ENS_NAME);
  return 1;
}

/* ---- ens:outputs ---- */

/* ens:outputs(X [, {first=, count=, threads=, chunk=}]) -> count x n Mat */
static int ens_outputs(lua_State *L) {
  static const char *const allowed[] = {"first", "count", "threads", "chunk", NULL};
  const char *fname = "Ensemble:outputs";
  lua_settop(L, 3);
  l_ens *e = check_ens(L, 1);
  int aidx;
  const nnft_arch *a = ens_arch(L, 1, &aidx);
  const nnft_mat *X = check_X(L, 2, a, fname);
  l_check_options(L, 3, fname, allowed);
  run_opts r = get_run_opts(L, 3, e, a, fname, 0);
  size_t first = opt_posint(L, 3, fname, "first");
  if (!first) first = 1;
  if (first > e->E)
    l_error(L, "%s: first = %zu is beyond the ensemble (E = %zu)", fname, first, e->E);
  size_t count = opt_posint(L, 3, fname, "count");
  if (!count) count = e->E - first + 1;
  if (count > e->E - first + 1)
    l_error(L, "%s: first = %zu, count = %zu runs past the ensemble's E = %zu networks", fname,
           first, count, e->E);
  nnft_mat *F = l_newmat(L, count, X->rows); /* raises a clear error if too large */
  nnft_status s = nnft_ens_outputs(a, X, e->seed, first - 1, r.chunk, r.threads, F);
  raise_status(L, s, fname, aidx);
  return 1;
}

/* ---- correlator tables ---- */

static void set_mat_field(lua_State *L, int tidx, const char *key, size_t rows, size_t cols,
                          nnft_mat **out) {
  *out = l_newmat(L, rows, cols);
  lua_setfield(L, tidx, key);
}

/* Push the tuples Mat (count x k, 1-based) of order k over n inputs. */
static nnft_mat *push_tuples(lua_State *L, size_t n, int k, size_t count) {
  nnft_mat *T = l_newmat(L, count, (size_t)k);
  uint32_t *idx = lua_newuserdatauv(L, count * (size_t)k * sizeof(uint32_t) + 1, 0);
  nnft_corr_tuples(n, k, idx);
  for (size_t t = 0; t < count; t++)
    for (int j = 0; j < k; j++) NNFT_AT(T, t, (size_t)j) = (double)idx[t * (size_t)k + j] + 1;
  lua_pop(L, 1);
  return T;
}

/* Push a new Correlator table {order, n, E, bags} with tuples; values etc. added by callers. */
static int push_corr_table(lua_State *L, size_t n, int k, size_t count) {
  lua_createtable(L, 0, 8);
  int t = lua_gettop(L);
  luaL_setmetatable(L, L_CORR_NAME);
  lua_pushinteger(L, k);
  lua_setfield(L, t, "order");
  lua_pushinteger(L, (lua_Integer)n);
  lua_setfield(L, t, "n");
  push_tuples(L, n, k, count);
  lua_setfield(L, t, "tuples");
  return t;
}

/* Push the result table of order k from a complete accumulator. */
static void push_acc_result(lua_State *L, const nnft_corr_acc *acc, int k) {
  size_t n, E, B, count;
  nnft_corr_acc_shape(acc, &n, &E, &B);
  nnft_corr_ntuples(n, k, &count);
  int t = push_corr_table(L, n, k, count);
  lua_pushinteger(L, (lua_Integer)E);
  lua_setfield(L, t, "E");
  lua_pushinteger(L, (lua_Integer)B);
  lua_setfield(L, t, "bags");
  nnft_mat *v, *err, *sd, *bm;
  set_mat_field(L, t, "values", count, 1, &v);
  set_mat_field(L, t, "errors", count, 1, &err);
  set_mat_field(L, t, "std", count, 1, &sd);
  set_mat_field(L, t, "bag_means", B, count, &bm);
  nnft_corr_acc_result(acc, k, v->data, bm->data, bm->ld, sd->data, err->data);
}

/* Orders from the table at idx: a list of distinct integers 1..6. */
static size_t check_orders(lua_State *L, int idx, const char *fname, int *orders) {
  if (lua_type(L, idx) != LUA_TTABLE)
    l_error(L, "%s: orders must be a list of integers 1 .. %d, e.g. {2, 4, 6}, got %s", fname,
           NNFT_CORR_MAX_ORDER, luaL_typename(L, idx));
  size_t m = lua_rawlen(L, idx);
  if (m == 0) l_error(L, "%s: orders is empty (give e.g. {2, 4, 6})", fname);
  if (m > NNFT_CORR_MAX_ORDER)
    l_error(L, "%s: at most %d distinct orders, got %zu", fname, NNFT_CORR_MAX_ORDER, m);
  for (size_t i = 0; i < m; i++) {
    lua_rawgeti(L, idx, (lua_Integer)i + 1);
    int isint;
    lua_Integer k = lua_tointegerx(L, -1, &isint);
    if (lua_type(L, -1) != LUA_TNUMBER || !isint || k < 1 || k > NNFT_CORR_MAX_ORDER)
      l_error(L, "%s: order must be an integer 1 .. %d, got %s", fname, NNFT_CORR_MAX_ORDER,
             luaL_tolstring(L, -1, NULL));
    for (size_t j = 0; j < i; j++)
      if (orders[j] == (int)k) l_error(L, "%s: order %d is listed twice", fname, (int)k);
    orders[i] = (int)k;
    lua_pop(L, 1);
  }
  return m;
}

/* Accumulate the orders over the ensemble; leaves the box on the stack, returns the acc. */
static nnft_corr_acc *run_corr(lua_State *L, int eidx, int xidx, int opts, const int *orders,
                               size_t norders, const char *fname) {
  static const char *const allowed[] = {"bags", "threads", "chunk", NULL};
  l_ens *e = check_ens(L, eidx);
  int aidx;
  const nnft_arch *a = ens_arch(L, eidx, &aidx);
  const nnft_mat *X = check_X(L, xidx, a, fname);
  l_check_options(L, opts, fname, allowed);
  run_opts r = get_run_opts(L, opts, e, a, fname, 1);
  for (size_t i = 0; i < norders; i++) {
    size_t c;
    if (nnft_corr_ntuples(X->rows, orders[i], &c))
      l_error(L, "%s: %zu inputs have too many %d-tuples to count", fname, X->rows, orders[i]);
  }
  l_box *b = push_box(L);
  nnft_status s = nnft_corr_acc_alloc(X->rows, orders, norders, e->E, r.bags, &b->acc);
  if (s == NNFT_ENOMEM || s == NNFT_EOVERFLOW)
    l_error(L, "%s: cannot hold the correlators of %zu inputs (%s) in %zu bags: too many tuples",
           fname, X->rows, nnft_strerror(s), r.bags);
  if (s) l_status_error(L, s, fname, NULL);
  s = nnft_ens_correlators(a, X, e->seed, r.chunk, r.threads, b->acc);
  raise_status(L, s, fname, aidx);
  return b->acc;
}

/* ens:npoint(X, k [, {bags=, threads=, chunk=}]) -> Correlator */
static int ens_npoint(lua_State *L) {
  const char *fname = "Ensemble:npoint";
  lua_settop(L, 4);
  check_ens(L, 1);
  int isint;
  lua_Integer k = lua_tointegerx(L, 3, &isint);
  if (lua_type(L, 3) != LUA_TNUMBER || !isint || k < 1 || k > NNFT_CORR_MAX_ORDER)
    l_error(L, "%s: order k must be an integer 1 .. %d, got %s", fname, NNFT_CORR_MAX_ORDER,
           luaL_tolstring(L, 3, NULL));
  int o = (int)k;
  nnft_corr_acc *acc = run_corr(L, 1, 2, 4, &o, 1, fname);
  push_acc_result(L, acc, o);
  return 1;
}

/* ens:npoints(X, {k1, k2, ...} [, opts]) -> {[k1] = Correlator, ...}, one pass */
static int ens_npoints(lua_State *L) {
  const char *fname = "Ensemble:npoints";
  lua_settop(L, 4);
  check_ens(L, 1);
  int orders[NNFT_CORR_MAX_ORDER];
  size_t m = check_orders(L, 3, fname, orders);
  nnft_corr_acc *acc = run_corr(L, 1, 2, 4, orders, m, fname);
  lua_createtable(L, NNFT_CORR_MAX_ORDER, 0);
  for (size_t i = 0; i < m; i++) {
    push_acc_result(L, acc, orders[i]);
    lua_rawseti(L, -2, orders[i]);
  }
  return 1;
}

/* ---- ens:histogram ---- */

/* ens:histogram(X [, {bins=, range={lo, hi}, threads=, chunk=}]) ->
 *   {edges=Mat(bins+1 x 1), counts=Mat(bins x n), under=, over=, nan= (Mat 1 x n), range=} */
static int ens_histogram(lua_State *L) {
  static const char *const allowed[] = {"bins", "range", "threads", "chunk", NULL};
  const char *fname = "Ensemble:histogram";
  lua_settop(L, 3);
  l_ens *e = check_ens(L, 1);
  int aidx;
  const nnft_arch *a = ens_arch(L, 1, &aidx);
  const nnft_mat *X = check_X(L, 2, a, fname);
  l_check_options(L, 3, fname, allowed);
  run_opts r = get_run_opts(L, 3, e, a, fname, 0);
  size_t bins = opt_posint(L, 3, fname, "bins");
  if (!bins) bins = 50;
  if (bins > 100000000) l_error(L, "%s: bins = %zu is too many", fname, bins);
  double lo = NAN, hi = NAN;
  int has_range = 0;
  if (lua_istable(L, 3)) {
    int t = lua_getfield(L, 3, "range");
    if (t != LUA_TNIL) {
      if (t != LUA_TTABLE || lua_rawlen(L, -1) != 2 || lua_rawgeti(L, -1, 1) != LUA_TNUMBER ||
          lua_rawgeti(L, -2, 2) != LUA_TNUMBER)
        l_error(L, "%s: range must be a pair of numbers {lo, hi}", fname);
      lo = lua_tonumber(L, -2);
      hi = lua_tonumber(L, -1);
      if (!(isfinite(lo) && isfinite(hi) && lo < hi && isfinite(hi - lo)))
        l_error(L, "%s: range must be finite with lo < hi (and hi - lo finite), got {%g, %g}",
               fname, lo, hi);
      has_range = 1;
      lua_pop(L, 2);
    }
    lua_pop(L, 1);
  }
  l_box *b = push_box(L);
  nnft_status s;
  if (!has_range) { /* one extra pass for the exact range */
    double *lh = lua_newuserdatauv(L, 2 * X->rows * sizeof(double), 0);
    s = nnft_ens_range(a, X, e->seed, e->E, r.chunk, r.threads, lh, lh + X->rows);
    raise_status(L, s, fname, aidx);
    lo = INFINITY;
    hi = -INFINITY;
    for (size_t k = 0; k < X->rows; k++) {
      if (lh[k] < lo) lo = lh[k];
      if (lh[X->rows + k] > hi) hi = lh[X->rows + k];
    }
    lua_pop(L, 1);
    if (!(isfinite(lo) && isfinite(hi) && isfinite(hi - lo)))
      l_error(L, "%s: the outputs are not finite (or span more than the largest double: %g .. "
             "%g); give range = {lo, hi}", fname, lo, hi);
    if (lo == hi) { /* all outputs equal: a unit-width range around them */
      lo -= 0.5;
      hi += 0.5;
    }
  }
  s = nnft_corr_hist_alloc(bins, X->rows, lo, hi, &b->hist);
  if (s) l_status_error(L, s, fname, "histogram");
  s = nnft_ens_histogram(a, X, e->seed, e->E, r.chunk, r.threads, &b->hist);
  raise_status(L, s, fname, aidx);
  lua_createtable(L, 0, 6);
  int t = lua_gettop(L);
  nnft_mat *edges, *counts, *under, *over, *nanc;
  set_mat_field(L, t, "edges", bins + 1, 1, &edges);
  set_mat_field(L, t, "counts", bins, X->rows, &counts);
  set_mat_field(L, t, "under", 1, X->rows, &under);
  set_mat_field(L, t, "over", 1, X->rows, &over);
  set_mat_field(L, t, "nan", 1, X->rows, &nanc);
  for (size_t i = 0; i <= bins; i++)
    edges->data[i] = i == bins ? hi : lo + (hi - lo) * (double)i / (double)bins;
  for (size_t k = 0; k < X->rows; k++) {
    for (size_t i = 0; i < bins; i++)
      NNFT_AT(counts, i, k) = (double)b->hist.counts[i + k * bins];
    under->data[k] = (double)b->hist.under[k];
    over->data[k] = (double)b->hist.over[k];
    nanc->data[k] = (double)b->hist.nan[k];
  }
  lua_createtable(L, 2, 0);
  lua_pushnumber(L, lo);
  lua_rawseti(L, -2, 1);
  lua_pushnumber(L, hi);
  lua_rawseti(L, -2, 2);
  lua_setfield(L, t, "range");
  lua_pushinteger(L, (lua_Integer)e->E);
  lua_setfield(L, t, "E");
  return 1;
}

/* ---- small methods ---- */

/* ens:info() -> {E=, seed=, bags=, chunk=, threads=} */
static int ens_info(lua_State *L) {
  l_ens *e = check_ens(L, 1);
  lua_createtable(L, 0, 5);
  lua_pushinteger(L, (lua_Integer)e->E);
  lua_setfield(L, -2, "E");
  lua_pushinteger(L, (lua_Integer)e->seed);
  lua_setfield(L, -2, "seed");
  lua_pushinteger(L, (lua_Integer)e->bags);
  lua_setfield(L, -2, "bags");
  lua_pushinteger(L, (lua_Integer)e->chunk);
  lua_setfield(L, -2, "chunk");
  lua_pushinteger(L, e->threads);
  lua_setfield(L, -2, "threads");
  return 1;
}

static int ens_arch_m(lua_State *L) {
  check_ens(L, 1);
  lua_getiuservalue(L, 1, 1);
  return 1;
}

static int ens_len(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)check_ens(L, 1)->E);
  return 1;
}

static int ens_tostring(lua_State *L) {
  l_ens *e = check_ens(L, 1);
  char buf[160];
  snprintf(buf, sizeof buf, "Ensemble(E=%zu, seed=%llu, bags=%zu, chunk=%zu)", e->E,
           (unsigned long long)e->seed, e->bags, e->chunk);
  lua_pushstring(L, buf);
  return 1;
}

/* ---- nnft.corr ---- */

/* The Mat field `key` of the table at idx (or NULL when absent and !required). */
static nnft_mat *field_mat(lua_State *L, int idx, const char *key, const char *fname,
                           const char *what, int required) {
  lua_getfield(L, idx, key);
  nnft_mat *m = l_testmat(L, -1);
  if (!m || !m->data) {
    if (!required && lua_isnil(L, -1)) {
      lua_pop(L, 1);
      return NULL;
    }
    l_error(L, "%s: %s has no %s Mat (expected a correlator table from ens:npoint)", fname, what,
           key);
  }
  lua_pop(L, 1); /* the table keeps it alive */
  return m;
}

/* A correlator table of order k over all sorted tuples; returns n, the values and (optional)
 * bag means (bags x count). */
static size_t check_corr(lua_State *L, int idx, int k, const char *fname, const char *what,
                         nnft_mat **values, nnft_mat **bag_means) {
  if (!lua_istable(L, idx))
    l_error(L, "%s: %s must be a correlator table (from ens:npoint), got %s", fname, what,
           luaL_typename(L, idx));
  lua_getfield(L, idx, "order");
  int isint;
  lua_Integer o = lua_tointegerx(L, -1, &isint);
  lua_getfield(L, idx, "n");
  lua_Integer n = lua_tointegerx(L, -1, NULL);
  lua_pop(L, 2);
  if (!isint || o != k)
    l_error(L, "%s: %s must be a %d-point table, got order %s", fname, what, k,
           isint ? lua_pushfstring(L, "%I", o) : "missing");
  if (n < 1) l_error(L, "%s: %s has no input count n", fname, what);
  size_t count;
  if (nnft_corr_ntuples((size_t)n, k, &count))
    l_error(L, "%s: %s has n = %lld inputs: too many %d-tuples to count", fname, what,
           (long long)n, k);
  *values = field_mat(L, idx, "values", fname, what, 1);
  if ((*values)->rows != count || (*values)->cols != 1)
    l_error(L, "%s: %s.values is %zu x %zu, expected %zu x 1 (all sorted %d-tuples of %lld "
           "inputs)", fname, what, (*values)->rows, (*values)->cols, count, k, (long long)n);
  if (bag_means) {
    *bag_means = field_mat(L, idx, "bag_means", fname, what, 0);
    if (*bag_means && (*bag_means)->cols != count) *bag_means = NULL;
  }
  return (size_t)n;
}

/* Tuples (0-based, count x k) from the Mat or table at idx (1-based indices < n). Leaves a
 * userdata holding them on the stack. */
static uint32_t *check_tuples(lua_State *L, int idx, size_t n, int k, size_t *count,
                              const char *fname) {
  int pushed;
  const nnft_mat *T = l_tomat(L, idx, &pushed);
  if (pushed) lua_replace(L, idx);
  if (T->cols != (size_t)k)
    l_error(L, "%s: tuples has %zu columns, expected k = %d", fname, T->cols, k);
  *count = T->rows;
  uint32_t *idxs = lua_newuserdatauv(L, T->rows * (size_t)k * sizeof(uint32_t) + 1, 0);
  for (size_t t = 0; t < T->rows; t++)
    for (int j = 0; j < k; j++) {
      double v = NNFT_AT(T, t, (size_t)j);
      if (!(v >= 1 && v <= (double)n && v == floor(v)))
        l_error(L, "%s: tuples[%zu][%d] = %g is not an input index 1 .. %zu", fname, t + 1,
               j + 1, v, n);
      idxs[t * (size_t)k + (size_t)j] = (uint32_t)v - 1;
    }
  return idxs;
}

/* nnft.corr.wick(K, k [, tuples]) -> Correlator {order, n, tuples, values} */
static int corr_wick(lua_State *L) {
  const char *fname = "nnft.corr.wick";
  lua_settop(L, 3);
  int pushed;
  const nnft_mat *K = l_tomat(L, 1, &pushed);
  if (pushed) lua_replace(L, 1);
  if (K->rows != K->cols || K->rows == 0)
    l_error(L, "%s: K must be a square kernel matrix, got %zu x %zu", fname, K->rows, K->cols);
  l_check_finite(L, K, fname, "K");
  int isint;
  lua_Integer k = lua_tointegerx(L, 2, &isint);
  if (lua_type(L, 2) != LUA_TNUMBER || !isint || k < 1 || k > NNFT_CORR_MAX_ORDER)
    l_error(L, "%s: order k must be an integer 1 .. %d, got %s", fname, NNFT_CORR_MAX_ORDER,
           luaL_tolstring(L, 2, NULL));
  size_t n = K->rows, count;
  if (nnft_corr_ntuples(n, (int)k, &count)) l_error(L, "%s: too many tuples", fname);
  if (!lua_isnoneornil(L, 3)) {
    if (lua_istable(L, 3) && !l_testmat(L, 3) && lua_getfield(L, 3, "tuples") != LUA_TNIL)
      lua_replace(L, 3); /* a correlator table: use its tuples */
    else if (lua_istable(L, 3) && !l_testmat(L, 3))
      lua_pop(L, 1);
    uint32_t *idx = check_tuples(L, 3, n, (int)k, &count, fname);
    lua_createtable(L, 0, 4);
    int t = lua_gettop(L);
    luaL_setmetatable(L, L_CORR_NAME);
    lua_pushinteger(L, k);
    lua_setfield(L, t, "order");
    lua_pushinteger(L, (lua_Integer)n);
    lua_setfield(L, t, "n");
    lua_pushvalue(L, 3);
    lua_setfield(L, t, "tuples");
    nnft_mat *v;
    set_mat_field(L, t, "values", count, 1, &v);
    nnft_corr_wick(K, (int)k, idx, count, v->data);
    return 1;
  }
  int t = push_corr_table(L, n, (int)k, count); /* its tuples Mat: count x k fits in memory */
  uint32_t *idx = lua_newuserdatauv(L, count * (size_t)k * sizeof(uint32_t) + 1, 0);
  nnft_corr_tuples(n, (int)k, idx); /* idx stays on the stack (alive) until we return */
  nnft_mat *v;
  set_mat_field(L, t, "values", count, 1, &v);
  nnft_corr_wick(K, (int)k, idx, count, v->data);
  lua_pushvalue(L, t);
  return 1;
}

/* The connected tables' error bars: bag by bag. */
static void connected_bags(lua_State *L, int t, size_t n, int order, size_t count,
                           const nnft_mat *b2, const nnft_mat *b4, const nnft_mat *b6) {
  size_t B = b2->rows;
  size_t c2, c4;
  nnft_corr_ntuples(n, 2, &c2);
  nnft_corr_ntuples(n, 4, &c4);
  nnft_mat *bm, *sd, *err;
  set_mat_field(L, t, "bag_means", B, count, &bm);
  set_mat_field(L, t, "std", count, 1, &sd);
  set_mat_field(L, t, "errors", count, 1, &err);
  double *g2 = lua_newuserdatauv(L, (c2 + c4 + 2 * count) * sizeof(double), 0);
  double *g4 = g2 + c2, *g6 = g4 + c4, *out = g6 + count;
  for (size_t b = 0; b < B; b++) {
    for (size_t i = 0; i < c2; i++) g2[i] = NNFT_AT(b2, b, i);
    for (size_t i = 0; i < c4; i++) g4[i] = NNFT_AT(b4, b, i);
    if (order == 4) {
      nnft_corr_connected4(n, g2, g4, out);
    } else {
      for (size_t i = 0; i < count; i++) g6[i] = NNFT_AT(b6, b, i);
      nnft_corr_connected6(n, g2, g4, g6, out);
    }
    for (size_t i = 0; i < count; i++) NNFT_AT(bm, b, i) = out[i];
  }
  lua_pop(L, 1);
  for (size_t i = 0; i < count; i++) {
    double m = 0, v = 0;
    for (size_t b = 0; b < B; b++) m += NNFT_AT(bm, b, i);
    m /= (double)B;
    for (size_t b = 0; b < B; b++) v += (NNFT_AT(bm, b, i) - m) * (NNFT_AT(bm, b, i) - m);
    sd->data[i] = B > 1 ? sqrt(v / (double)(B - 1)) : NAN;
    err->data[i] = sd->data[i] / sqrt((double)B);
  }
  lua_pushinteger(L, (lua_Integer)B);
  lua_setfield(L, t, "bags");
}

/* nnft.corr.connected(G2, G4 [, G6]) -> G4c [, G6c] */
static int corr_connected(lua_State *L) {
  const char *fname = "nnft.corr.connected";
  lua_settop(L, 3);
  nnft_mat *v2, *v4, *v6 = NULL, *b2, *b4, *b6 = NULL;
  size_t n = check_corr(L, 1, 2, fname, "G2", &v2, &b2);
  size_t n4 = check_corr(L, 2, 4, fname, "G4", &v4, &b4);
  if (n4 != n) l_error(L, "%s: G2 has %zu inputs, G4 has %zu", fname, n, n4);
  int six = !lua_isnoneornil(L, 3);
  if (six) {
    size_t n6 = check_corr(L, 3, 6, fname, "G6", &v6, &b6);
    if (n6 != n) l_error(L, "%s: G2 has %zu inputs, G6 has %zu", fname, n, n6);
  }
  int bags = b2 && b4 && b2->rows == b4->rows && (!six || (b6 && b6->rows == b2->rows));
  size_t c4, c6 = 0;
  nnft_corr_ntuples(n, 4, &c4);
  int t4 = push_corr_table(L, n, 4, c4);
  nnft_mat *r4;
  set_mat_field(L, t4, "values", c4, 1, &r4);
  nnft_status s = nnft_corr_connected4(n, v2->data, v4->data, r4->data);
  if (s) l_status_error(L, s, fname, NULL);
  if (bags) connected_bags(L, t4, n, 4, c4, b2, b4, NULL);
  if (!six) return 1;
  nnft_corr_ntuples(n, 6, &c6);
  int t6 = push_corr_table(L, n, 6, c6);
  nnft_mat *r6;
  set_mat_field(L, t6, "values", c6, 1, &r6);
  s = nnft_corr_connected6(n, v2->data, v4->data, v6->data, r6->data);
  if (s) l_status_error(L, s, fname, NULL);
  if (bags) connected_bags(L, t6, n, 6, c6, b2, b4, b6);
  return 2;
}

/* Values (count x 1) from a correlator table or a Mat at idx. */
static const nnft_mat *values_of(lua_State *L, int idx, const char *fname, const char *what) {
  nnft_mat *m = l_testmat(L, idx);
  if (m) {
    if (!m->data) l_error(L, "%s: %s has been released", fname, what);
    return m;
  }
  if (lua_istable(L, idx)) return field_mat(L, idx, "values", fname, what, 1);
  l_error(L, "%s: %s must be a correlator table or a Mat of values, got %s", fname, what,
         luaL_typename(L, idx));
  return NULL;
}

/* nnft.corr.deviation(G, Gpred) -> m, background, used */
static int corr_deviation(lua_State *L) {
  const char *fname = "nnft.corr.deviation";
  lua_settop(L, 2);
  const nnft_mat *G = values_of(L, 1, fname, "G");
  const nnft_mat *P = values_of(L, 2, fname, "Gpred");
  if (G->cols != 1 || P->cols != 1 || G->rows != P->rows)
    l_error(L, "%s: G has %zu x %zu values, Gpred %zu x %zu (they must match tuple by tuple)",
           fname, G->rows, G->cols, P->rows, P->cols);
  const nnft_mat *S = NULL;
  if (lua_istable(L, 1) && !l_testmat(L, 1)) {
    S = field_mat(L, 1, "std", fname, "G", 0);
    if (S && (S->rows != G->rows || S->cols != 1)) S = NULL;
  }
  if (lua_istable(L, 1) && !l_testmat(L, 1) && lua_istable(L, 2) && !l_testmat(L, 2)) {
    lua_getfield(L, 1, "order");
    lua_getfield(L, 2, "order");
    if (!lua_isnil(L, -1) && !lua_isnil(L, -2) && !lua_rawequal(L, -1, -2))
      l_error(L, "%s: G is of order %s, Gpred of order %s", fname, lua_tostring(L, -2),
             lua_tostring(L, -1));
    lua_pop(L, 2);
  }
  double m, bg;
  size_t used;
  nnft_corr_deviation(G->rows, G->data, P->data, S ? S->data : NULL, &m, &bg, &used);
  lua_pushnumber(L, m);
  lua_pushnumber(L, bg);
  lua_pushinteger(L, (lua_Integer)used);
  return 3;
}

/* nnft.corr.tuples(n, k) -> count x k Mat (1-based) */
static int corr_tuples(lua_State *L) {
  const char *fname = "nnft.corr.tuples";
  size_t n = check_posint(L, 1, fname, "n (the number of inputs)");
  int isint;
  lua_Integer k = lua_tointegerx(L, 2, &isint);
  if (lua_type(L, 2) != LUA_TNUMBER || !isint || k < 1 || k > NNFT_CORR_MAX_ORDER)
    l_error(L, "%s: order k must be an integer 1 .. %d, got %s", fname, NNFT_CORR_MAX_ORDER,
           luaL_tolstring(L, 2, NULL));
  size_t count;
  if (nnft_corr_ntuples(n, (int)k, &count)) l_error(L, "%s: too many tuples", fname);
  push_tuples(L, n, (int)k, count);
  return 1;
}

/* Correlator:value(i1, ..., ik) -> value, error */
static int corrtab_value(lua_State *L) {
  const char *fname = "Correlator:value";
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_getfield(L, 1, "order");
  lua_getfield(L, 1, "n");
  int k = (int)lua_tointeger(L, -2);
  lua_Integer n = lua_tointeger(L, -1);
  lua_pop(L, 2);
  if (k < 1 || k > NNFT_CORR_MAX_ORDER || n < 1) l_error(L, "%s: not a correlator table", fname);
  if (lua_gettop(L) - 1 != k)
    l_error(L, "%s: a %d-point function takes %d indices, got %d", fname, k, k,
           lua_gettop(L) - 1);
  uint32_t v[NNFT_CORR_MAX_ORDER];
  for (int j = 0; j < k; j++) {
    lua_Integer i = luaL_checkinteger(L, j + 2);
    if (i < 1 || i > n) l_error(L, "%s: index %lld is not in 1 .. %lld", fname, (long long)i,
                               (long long)n);
    v[j] = (uint32_t)(i - 1);
  }
  for (int i = 1; i < k; i++) /* sort: correlators are symmetric */
    for (int j = i; j > 0 && v[j - 1] > v[j]; j--) {
      uint32_t t = v[j];
      v[j] = v[j - 1];
      v[j - 1] = t;
    }
  size_t r;
  if (nnft_corr_tuple_rank((size_t)n, k, v, &r))
    l_error(L, "%s: the table's n = %lld inputs have too many %d-tuples to count", fname,
           (long long)n, k);
  nnft_mat *vals = field_mat(L, 1, "values", fname, "the table", 1);
  if (r >= vals->rows) l_error(L, "%s: values has only %zu rows", fname, vals->rows);
  lua_pushnumber(L, vals->data[r]);
  nnft_mat *err = field_mat(L, 1, "errors", fname, "the table", 0);
  if (err && r < err->rows) lua_pushnumber(L, err->data[r]);
  else lua_pushnil(L);
  return 2;
}

static int corrtab_tostring(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_getfield(L, 1, "order");
  lua_getfield(L, 1, "n");
  lua_getfield(L, 1, "E");
  lua_getfield(L, 1, "bags");
  char buf[200];
  if (lua_isinteger(L, -2))
    snprintf(buf, sizeof buf, "Correlator(order %lld over %lld inputs, E=%lld, bags=%lld)",
             (long long)lua_tointeger(L, -4), (long long)lua_tointeger(L, -3),
             (long long)lua_tointeger(L, -2), (long long)lua_tointeger(L, -1));
  else
    snprintf(buf, sizeof buf, "Correlator(order %lld over %lld inputs)",
             (long long)lua_tointeger(L, -4), (long long)lua_tointeger(L, -3));
  lua_pushstring(L, buf);
  return 1;
}

void l_open_ensemble(lua_State *L) {
  static const luaL_Reg ens_methods[] = {
      {"outputs", ens_outputs}, {"npoint", ens_npoint},     {"npoints", ens_npoints},
      {"histogram", ens_histogram}, {"info", ens_info},     {"arch", ens_arch_m},
      {NULL, NULL}};
  static const luaL_Reg ens_meta[] = {{"__tostring", ens_tostring}, {"__len", ens_len},
                                      {NULL, NULL}};
  static const luaL_Reg box_meta[] = {{"__gc", box_gc}, {"__close", box_gc}, {NULL, NULL}};
  static const luaL_Reg no_methods[] = {{NULL, NULL}};
  static const luaL_Reg corr_methods[] = {{"value", corrtab_value}, {NULL, NULL}};
  static const luaL_Reg corr_meta[] = {{"__tostring", corrtab_tostring}, {NULL, NULL}};
  static const luaL_Reg arch_methods[] = {{"sample", arch_sample}, {NULL, NULL}};
  static const luaL_Reg corr_funcs[] = {{"wick", corr_wick},           {"connected", corr_connected},
                                        {"deviation", corr_deviation}, {"tuples", corr_tuples},
                                        {NULL, NULL}};
  l_newclass(L, L_ENS_NAME, ens_methods, ens_meta);
  l_newclass(L, L_BOX_NAME, no_methods, box_meta);
  l_newclass(L, L_CORR_NAME, corr_methods, corr_meta);
  l_arch_add_methods(L, arch_methods);
  lua_newtable(L);
  luaL_setfuncs(L, corr_funcs, 0);
  lua_setfield(L, -2, "corr");
}
