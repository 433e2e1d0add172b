/* nnft.rng and the nnft.Rng userdata: seeded counter-based random streams (Philox4x32-10).
 * The generator state lives inside the userdata (plain data, no C allocation), so creating
 * streams is cheap and nothing can leak. Conventions (docs/api/rng.md): seeds are integers
 * 0 .. 2^63-1; rng:stream(i) with i >= 1 is the core's substream i - 1. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "l_util.h"
#include "nnft_rng.h"

#define L_RNG_NAME "nnft.Rng"

typedef struct {
  nnft_rng r;
  int closed;
} l_rng;

/* ---------------- helpers ---------------- */

static nnft_rng *check_rng(lua_State *L, int idx) {
  l_rng *u = luaL_testudata(L, idx, L_RNG_NAME);
  if (!u) luaL_typeerror(L, idx, L_RNG_NAME);
  if (u->closed) luaL_argerror(L, idx, "Rng has been closed");
  return &u->r;
}

static l_rng *push_rng(lua_State *L) {
  l_rng *u = lua_newuserdatauv(L, sizeof *u, 0);
  memset(u, 0, sizeof *u);
  luaL_setmetatable(L, L_RNG_NAME);
  return u;
}

/* A seed: an integer (or integral float) in 0 .. 2^63-1. */
static uint64_t check_seed(lua_State *L, int arg, const char *fname) {
  if (lua_type(L, arg) != LUA_TNUMBER)
    return (uint64_t)luaL_error(L, "%s: seed must be an integer in 0 .. 2^63-1, got %s", fname,
                                lua_isnoneornil(L, arg) ? "nothing" : luaL_typename(L, arg));
  int isint;
  lua_Integer s = lua_tointegerx(L, arg, &isint);
  if (!isint)
    return (uint64_t)luaL_error(L, "%s: seed must be an integer in 0 .. 2^63-1, got %s", fname,
                                lua_tostring(L, arg));
  if (s < 0)
    return (uint64_t)luaL_error(L, "%s: seed must be an integer in 0 .. 2^63-1, got %I", fname,
                                s);
  return (uint64_t)s;
}

/* A stream index: an integer >= 1. */
static lua_Integer check_index(lua_State *L, int arg, const char *fname) {
  int isint;
  lua_Integer i = lua_tointegerx(L, arg, &isint);
  if (lua_type(L, arg) != LUA_TNUMBER || !isint) {
    const char *got = lua_type(L, arg) == LUA_TNUMBER ? lua_tostring(L, arg)
                      : lua_isnoneornil(L, arg)       ? "nothing"
                                                      : luaL_typename(L, arg);
    return luaL_error(L, "%s: stream index must be an integer >= 1, got %s", fname, got);
  }
  if (i < 1) return luaL_error(L, "%s: stream index must be an integer >= 1, got %I", fname, i);
  return i;
}

/* Options table at idx: number option `key`, required or with default def. */
static double opt_param(lua_State *L, int idx, const char *fname, const char *key, int required,
                        double def) {
  if (required) {
    int absent = !lua_istable(L, idx);
    if (!absent) {
      absent = lua_getfield(L, idx, key) == LUA_TNIL;
      lua_pop(L, 1);
    }
    if (absent) luaL_error(L, "%s: option '%s' is required", fname, key);
  }
  return l_opt_number(L, idx, key, def);
}

/* ---------------- constructors and streams ---------------- */

/* nnft.rng.new(seed) */
static int rng_new(lua_State *L) {
  uint64_t seed = check_seed(L, 1, "nnft.rng");
  l_rng *u = push_rng(L);
  nnft_rng_init(&u->r, seed);
  return 1;
}

/* __call of the nnft.rng table: drop the table itself. */
static int rng_call(lua_State *L) {
  lua_remove(L, 1);
  return rng_new(L);
}

/* rng:stream(i [, j, ...]): substream i (1-based), then its substream j, ... */
static int r_stream(lua_State *L) {
  nnft_rng *r = check_rng(L, 1);
  int top = lua_gettop(L);
  if (top < 2) check_index(L, 2, "rng:stream"); /* raises: an index is required */
  for (int a = 2; a <= top; a++) check_index(L, a, "rng:stream");
  l_rng *u = push_rng(L);
  u->r = *r;
  for (int a = 2; a <= top; a++) {
    lua_Integer i = lua_tointeger(L, a);
    nnft_status s = nnft_rng_substream(&u->r, (uint64_t)(i - 1), &u->r);
    if (s) return l_status_error(L, s, "rng:stream", "index too large");
  }
  return 1;
}

/* rng:copy(): an independent generator at the same stream and position. */
static int r_copy(lua_State *L) {
  nnft_rng *r = check_rng(L, 1);
  l_rng *u = push_rng(L);
  u->r = *r;
  return 1;
}

static int r_seed(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)check_rng(L, 1)->seed);
  return 1;
}

/* rng:path(): the 1-based stream indices from the root (at most the first 8), and the depth. */
static int r_path(lua_State *L) {
  nnft_rng *r = check_rng(L, 1);
  unsigned n = r->depth < NNFT_RNG_PATH_MAX ? r->depth : NNFT_RNG_PATH_MAX;
  lua_createtable(L, (int)n, 0);
  for (unsigned k = 0; k < n; k++) {
    lua_pushinteger(L, (lua_Integer)(r->path[k] + 1));
    lua_rawseti(L, -2, (lua_Integer)k + 1);
  }
  lua_pushinteger(L, (lua_Integer)r->depth);
  return 2;
}

/* rng:tell() -> words consumed; rng:seek(w) moves to word w (0-based) of the stream. */
static int r_tell(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)nnft_rng_tell(check_rng(L, 1)));
  return 1;
}

static int r_seek(lua_State *L) {
  nnft_rng *r = check_rng(L, 1);
  lua_Integer w = luaL_checkinteger(L, 2);
  if (w < 0) return luaL_error(L, "rng:seek: position must be >= 0, got %I", w);
  nnft_rng_seek(r, (uint64_t)w);
  lua_settop(L, 1);
  return 1;
}

/* ---------------- scalars ---------------- */

static int r_number(lua_State *L) {
  lua_pushnumber(L, nnft_rng_uniform(check_rng(L, 1)));
  return 1;
}

/* rng:integer(lo, hi): uniform in lo .. hi inclusive; rng:integer(n): 1 .. n. */
static int r_integer(lua_State *L) {
  nnft_rng *r = check_rng(L, 1);
  lua_Integer lo, hi;
  if (lua_isnoneornil(L, 3)) {
    lo = 1;
    hi = luaL_checkinteger(L, 2);
  } else {
    lo = luaL_checkinteger(L, 2);
    hi = luaL_checkinteger(L, 3);
  }
  if (lo > hi) return luaL_error(L, "rng:integer: empty range %I .. %I", lo, hi);
  lua_Unsigned range = (lua_Unsigned)hi - (lua_Unsigned)lo; /* hi - lo, exact mod 2^64 */
  uint64_t off = nnft_rng_below(r, range == UINT64_MAX ? 0 : (uint64_t)range + 1);
  lua_pushinteger(L, (lua_Integer)((lua_Unsigned)lo + off));
  return 1;
}

/* rng:permutation(n): a table holding a random ordering of 1 .. n. */
static int r_permutation(lua_State *L) {
  nnft_rng *r = check_rng(L, 1);
  size_t n = l_checksize(L, 2, 0), bytes;
  if (nnft_size_mul(n, sizeof(size_t), &bytes) || n > (size_t)INT32_MAX)
    return luaL_error(L, "rng:permutation: n = %zu is too large", n);
  size_t *perm = lua_newuserdatauv(L, bytes ? bytes : 1, 0); /* Lua-owned workspace */
  nnft_rng_permutation(r, n, perm);
  lua_createtable(L, (int)n, 0);
  for (size_t i = 0; i < n; i++) {
    lua_pushinteger(L, (lua_Integer)perm[i] + 1);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  return 1;
}

/* ---------------- matrices ---------------- */

static const char *const normal_opts[] = {"mean", "sd", NULL};
static const char *const uniform_opts[] = {"low", "high", NULL};
static const char *const no_opts[] = {NULL};

/* mean and sd from the options at idx, checked. */
static void normal_params(lua_State *L, int idx, const char *fname, double *mean, double *sd) {
  l_check_options(L, idx, fname, normal_opts);
  *mean = l_opt_number(L, idx, "mean", 0.0);
  *sd = l_opt_number(L, idx, "sd", 1.0);
  if (!isfinite(*mean)) luaL_error(L, "%s: mean must be finite, got %f", fname, *mean);
  if (!(*sd >= 0) || !isfinite(*sd))
    luaL_error(L, "%s: sd must be finite and >= 0, got %f", fname, *sd);
}

static void uniform_params(lua_State *L, int idx, const char *fname, double *lo, double *hi) {
  l_check_options(L, idx, fname, uniform_opts);
  *lo = l_opt_number(L, idx, "low", 0.0);
  *hi = l_opt_number(L, idx, "high", 1.0);
  if (!isfinite(*lo) || !isfinite(*hi) || !isfinite(*hi - *lo))
    luaL_error(L, "%s: low and high must be finite (and high - low too), got %f and %f", fname,
               *lo, *hi);
  if (!(*lo < *hi)) luaL_error(L, "%s: need low < high, got low = %f, high = %f", fname, *lo, *hi);
}

/* rng:normal(rows, cols [, {mean = 0, sd = 1}]) */
static int r_normal(lua_State *L) {
  nnft_rng *r = check_rng(L, 1);
  size_t rows = l_checksize(L, 2, 0), cols = l_checksize(L, 3, 0);
  double mean, sd;
  normal_params(L, 4, "rng:normal", &mean, &sd);
  nnft_mat *m = l_newmat(L, rows, cols);
  nnft_status s = nnft_rng_mat_normal(r, m, mean, sd);
  if (s) return l_status_error(L, s, "rng:normal", NULL);
  return 1;
}

/* rng:uniform(rows, cols [, {low = 0, high = 1}]) */
static int r_uniform(lua_State *L) {
  nnft_rng *r = check_rng(L, 1);
  size_t rows = l_checksize(L, 2, 0), cols = l_checksize(L, 3, 0);
  double lo, hi;
  uniform_params(L, 4, "rng:uniform", &lo, &hi);
  nnft_mat *m = l_newmat(L, rows, cols);
  nnft_status s = nnft_rng_mat_uniform(r, m, lo, hi);
  if (s) return l_status_error(L, s, "rng:uniform", NULL);
  return 1;
}

/* rng:phases(rows, cols): uniform in [-pi, pi). */
static int r_phases(lua_State *L) {
  nnft_rng *r = check_rng(L, 1);
  size_t rows = l_checksize(L, 2, 0), cols = l_checksize(L, 3, 0);
  l_check_options(L, 4, "rng:phases", no_opts);
  nnft_mat *m = l_newmat(L, rows, cols);
  nnft_status s = nnft_rng_mat_phases(r, m);
  if (s) return l_status_error(L, s, "rng:phases", NULL);
  return 1;
}

/* rng:ball(n, d, R): n points uniform in the d-ball of radius R, one per row. */
static int r_ball(lua_State *L) {
  nnft_rng *r = check_rng(L, 1);
  size_t n = l_checksize(L, 2, 0);
  int isint;
  lua_Integer d = lua_tointegerx(L, 3, &isint);
  if (lua_type(L, 3) != LUA_TNUMBER || !isint || d < 1)
    return luaL_error(L, "rng:ball: dimension d must be an integer >= 1, got %s",
                      lua_isnoneornil(L, 3) ? "nothing" : luaL_tolstring(L, 3, NULL));
  double R = luaL_checknumber(L, 4);
  if (!(R > 0) || !isfinite(R))
    return luaL_error(L, "rng:ball: radius R must be finite and > 0, got %f", R);
  nnft_mat *m = l_newmat(L, n, (size_t)d);
  nnft_status s = nnft_rng_ball(r, R, m);
  if (s) return l_status_error(L, s, "rng:ball", NULL);
  return 1;
}

/* rng:fill_normal(M [, {mean, sd}]) and rng:fill_uniform(M [, {low, high}]): in place,
 * column-major order; return M. */
static int r_fill_normal(lua_State *L) {
  nnft_rng *r = check_rng(L, 1);
  nnft_mat *m = l_checkmat(L, 2);
  double mean, sd;
  normal_params(L, 3, "rng:fill_normal", &mean, &sd);
  nnft_status s = nnft_rng_mat_normal(r, m, mean, sd);
  if (s) return l_status_error(L, s, "rng:fill_normal", NULL);
  lua_settop(L, 2);
  return 1;
}

static int r_fill_uniform(lua_State *L) {
  nnft_rng *r = check_rng(L, 1);
  nnft_mat *m = l_checkmat(L, 2);
  double lo, hi;
  uniform_params(L, 3, "rng:fill_uniform", &lo, &hi);
  nnft_status s = nnft_rng_mat_uniform(r, m, lo, hi);
  if (s) return l_status_error(L, s, "rng:fill_uniform", NULL);
  lua_settop(L, 2);
  return 1;
}

/* ---------------- GSL distributions ---------------- */

/* One distribution method: its name, options (first p1, then p2), requiredness, defaults and
 * domain (p1 > 0 etc.). */
typedef struct {
  const char *fname;
  nnft_rng_dist dist;
  const char *opts[3];
  int required[2];
  double def[2];
  const char *domain[2]; /* "> 0", ">= 0" or NULL (any finite) */
} dist_spec;

static const dist_spec dists[] = {
    {"rng:gamma", NNFT_RNG_GAMMA, {"shape", "scale", NULL}, {1, 0}, {0, 1}, {"> 0", "> 0"}},
    {"rng:beta", NNFT_RNG_BETA, {"a", "b", NULL}, {1, 1}, {0, 0}, {"> 0", "> 0"}},
    {"rng:poisson", NNFT_RNG_POISSON, {"mean", NULL, NULL}, {1, 0}, {0, 0}, {">= 0", NULL}},
    {"rng:chisq", NNFT_RNG_CHISQ, {"df", NULL, NULL}, {1, 0}, {0, 0}, {"> 0", NULL}},
    {"rng:student_t", NNFT_RNG_STUDENT_T, {"df", NULL, NULL}, {1, 0}, {0, 0}, {"> 0", NULL}},
    {"rng:exponential", NNFT_RNG_EXPONENTIAL, {"mean", NULL, NULL}, {0, 0}, {1, 0},
     {"> 0", NULL}},
    {"rng:cauchy", NNFT_RNG_CAUCHY, {"scale", NULL, NULL}, {0, 0}, {1, 0}, {"> 0", NULL}},
    {"rng:laplace", NNFT_RNG_LAPLACE, {"scale", NULL, NULL}, {0, 0}, {1, 0}, {"> 0", NULL}},
    {"rng:lognormal", NNFT_RNG_LOGNORMAL, {"mu", "sigma", NULL}, {0, 0}, {0, 1},
     {NULL, ">= 0"}},
};

/* rng:<dist>(rows, cols [, opts]); the spec is upvalue 1 (a light userdata). */
static int r_dist(lua_State *L) {
  const dist_spec *d = lua_touserdata(L, lua_upvalueindex(1));
  nnft_rng *r = check_rng(L, 1);
  size_t rows = l_checksize(L, 2, 0), cols = l_checksize(L, 3, 0);
  l_check_options(L, 4, d->fname, d->opts);
  double p[2] = {0, 0};
  for (int k = 0; k < 2 && d->opts[k]; k++) {
    p[k] = opt_param(L, 4, d->fname, d->opts[k], d->required[k], d->def[k]);
    const char *dom = d->domain[k];
    int ok = isfinite(p[k]) && (!dom || (dom[1] == '=' ? p[k] >= 0 : p[k] > 0));
    if (!ok)
      return luaL_error(L, "%s: %s must be finite%s%s, got %f", d->fname, d->opts[k],
                        dom ? " and " : "", dom ? dom : "", p[k]);
  }
  if (d->dist == NNFT_RNG_POISSON && p[0] > 1e9)
    return luaL_error(L, "rng:poisson: mean must be <= 1e9, got %f", p[0]);
  nnft_mat *m = l_newmat(L, rows, cols);
  nnft_status s = nnft_rng_mat_dist(r, d->dist, p[0], p[1], m);
  if (s) return l_status_error(L, s, d->fname, NULL);
  return 1;
}

/* ---------------- metamethods ---------------- */

static int r_tostring(lua_State *L) {
  l_rng *u = luaL_checkudata(L, 1, L_RNG_NAME);
  if (u->closed) {
    lua_pushstring(L, "nnft.Rng (closed)");
    return 1;
  }
  const nnft_rng *r = &u->r;
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  char part[64];
  snprintf(part, sizeof part, "nnft.Rng(seed=%llu", (unsigned long long)r->seed);
  luaL_addstring(&b, part);
  if (r->depth > 0) {
    luaL_addstring(&b, ", stream=");
    unsigned n = r->depth < NNFT_RNG_PATH_MAX ? r->depth : NNFT_RNG_PATH_MAX;
    for (unsigned k = 0; k < n; k++) {
      snprintf(part, sizeof part, "%s%llu", k ? "." : "", (unsigned long long)r->path[k] + 1);
      luaL_addstring(&b, part);
    }
    if (r->depth > n) {
      snprintf(part, sizeof part, "... (depth %u)", r->depth);
      luaL_addstring(&b, part);
    }
  }
  luaL_addstring(&b, ")");
  luaL_pushresult(&b);
  return 1;
}

static int r_close(lua_State *L) {
  l_rng *u = luaL_testudata(L, 1, L_RNG_NAME);
  if (u) u->closed = 1; /* idempotent; the state holds no C memory */
  return 0;
}

static const luaL_Reg rng_methods[] = {
    {"stream", r_stream}, {"copy", r_copy}, {"seed", r_seed}, {"path", r_path},
    {"tell", r_tell}, {"seek", r_seek}, {"number", r_number}, {"integer", r_integer},
    {"permutation", r_permutation}, {"normal", r_normal}, {"uniform", r_uniform},
    {"phases", r_phases}, {"ball", r_ball}, {"fill_normal", r_fill_normal},
    {"fill_uniform", r_fill_uniform}, {"close", r_close}, {NULL, NULL}};

static const luaL_Reg rng_meta[] = {
    {"__tostring", r_tostring}, {"__gc", r_close}, {"__close", r_close}, {NULL, NULL}};

void l_open_rng(lua_State *L) {
  l_newclass(L, L_RNG_NAME, rng_methods, rng_meta);
  /* the GSL distributions: one closure each, sharing r_dist */
  luaL_getmetatable(L, L_RNG_NAME);
  lua_getfield(L, -1, "__index");
  for (size_t k = 0; k < sizeof dists / sizeof dists[0]; k++) {
    lua_pushlightuserdata(L, (void *)&dists[k]);
    lua_pushcclosure(L, r_dist, 1);
    lua_setfield(L, -2, dists[k].fname + 4); /* skip "rng:" */
  }
  lua_pop(L, 2);

  lua_createtable(L, 0, 1); /* nnft.rng, callable as a constructor */
  lua_pushcfunction(L, rng_new);
  lua_setfield(L, -2, "new");
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, rng_call);
  lua_setfield(L, -2, "__call");
  lua_setmetatable(L, -2);
  lua_setfield(L, -2, "rng");
}
