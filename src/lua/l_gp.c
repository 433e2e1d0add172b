/* nnft.gp: Gaussian-process regression (src/core/nnft_gp.h, physics.md §5.1) — the GP userdata
 * ("nnft.GP"), nnft.gp.fit / fit_matrix and the hyperparameter search nnft.gp.optimize.
 * Documented in docs/api/gp.md.
 *
 * A GP keeps what its predictions need: the factor and α (in its nnft_gp), the kernel (a copy of
 * the root node, whose children and architecture stay alive through user value 1: the Kernel or
 * Arch it came from) and a private copy of the training points (user value 2). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "l_util.h"
#include "nnft_gp.h"
#include "nnft_kernel.h"
#include "nnft_nngp.h"

#define L_GP_NAME "nnft.GP"

enum { BIND_NONE, BIND_KERNEL, BIND_ARCH };

typedef struct l_gp {
  nnft_gp gp;
  nnft_kernel kern; /* valid when bind != BIND_NONE */
  int bind;         /* what user value 1 holds: nothing, a Kernel, an Arch */
  size_t d;         /* columns of the training points (0 for a matrix GP) */
} l_gp;

static l_gp *check_gp(lua_State *L, int idx) {
  l_gp *u = luaL_checkudata(L, idx, L_GP_NAME);
  if (!u->gp.fitted) luaL_argerror(L, idx, "GP has been released (closed)");
  return u;
}

static int gp_release(lua_State *L) {
  l_gp *u = luaL_checkudata(L, 1, L_GP_NAME);
  nnft_gp_free(&u->gp);
  return 0;
}

static l_gp *push_gp(lua_State *L) {
  l_gp *u = lua_newuserdatauv(L, sizeof *u, 2);
  memset(u, 0, sizeof *u);
  luaL_setmetatable(L, L_GP_NAME);
  return u;
}

/* Bind (before) / check (after a core call) the Lua activations of the GP's kernel. */
static void bind_kernel(lua_State *L, int gp_idx, int bind) {
  gp_idx = lua_absindex(L, gp_idx);
  l_gp *u = lua_touserdata(L, gp_idx);
  if (u->bind == BIND_NONE) return;
  lua_getiuservalue(L, gp_idx, 1);
  if (u->bind == BIND_KERNEL) l_checkkernel(L, -1);
  else l_checkarch(L, -1);
  lua_pop(L, 1);
}

static void check_custom(lua_State *L, int gp_idx, const char *fname) {
  gp_idx = lua_absindex(L, gp_idx);
  l_gp *u = lua_touserdata(L, gp_idx);
  if (u->bind == BIND_NONE) return;
  lua_getiuservalue(L, gp_idx, 1);
  if (u->bind == BIND_KERNEL) l_kernel_check_custom(L, -1, fname);
  else l_arch_check_custom(L, -1, fname);
  lua_pop(L, 1);
}

/* Targets y at idx: n rows, finite. */
static nnft_mat *arg_targets(lua_State *L, int idx, size_t n, const char *fname) {
  nnft_mat *y = l_argmat(L, idx, fname, "y");
  if (y->rows != n || y->cols == 0)
    l_error(L, "%s: y is %zu x %zu but there are %zu training points (one row per point, one "
              "column per output)", fname, y->rows, y->cols, n);
  l_check_finite(L, y, fname, "y");
  return y;
}

/* Raise for a failed allocation of a GP (n points). */
static void raise_alloc(lua_State *L, nnft_status s, size_t n, const char *fname) {
  double gib = (double)n * (double)n * 8.0 / 1073741824.0;
  if (s == NNFT_ENOMEM)
    l_error(L, "%s: cannot allocate the %zu x %zu kernel matrix (%.3g GiB): out of memory", fname,
           n, n, gib);
  l_error(L, "%s: cannot allocate the %zu x %zu kernel matrix (%.3g GiB): larger than this "
            "machine's memory (%.3g GiB)", fname, n, n, gib,
         (double)nnft_mat_max_bytes() / 1073741824.0);
}

static int raise_kernel_status(lua_State *L, nnft_status s, const nnft_kernel *k,
                               const char *fname) {
  const char *why = NULL;
  if (s == NNFT_EDOM && nnft_kernel_check_why(k, &why) && why)
    return l_error(L, "%s: %s", fname, why);
  if (s == NNFT_ENONFINITE)
    return l_error(L, "%s: the kernel produced NaN or Inf (overflow?)", fname);
  return l_status_error(L, s, fname, "evaluating the kernel matrix");
}

static int raise_fit(lua_State *L, nnft_status s, const nnft_linalg_diag *d, const char *fname) {
  if (s == NNFT_EINTR) return l_status_error(L, s, fname, NULL);
  if (s == NNFT_ENOTPD)
    return l_error(L, "%s: %s; increase noise= or check the inputs (duplicate points need "
                     "noise > 0)", fname, d->msg);
  if (d->msg[0]) return l_error(L, "%s: %s", fname, d->msg);
  return l_status_error(L, s, fname, NULL);
}

/* Fit options at idx: noise, jitter, max_tries. */
static const char *const FIT_KEYS[] = {"noise", "jitter", "max_tries", NULL};

static double opt_noise(lua_State *L, int idx, const char *fname, double def) {
  double noise = l_opt_number(L, idx, "noise", def);
  if (!isfinite(noise) || noise < 0.0)
    l_error(L, "%s: noise (the variance σ² added to the diagonal) must be finite and >= 0, got %g",
           fname, noise);
  return noise;
}

static nnft_gp_opts fit_opts(lua_State *L, int idx, const char *fname) {
  nnft_gp_opts o = nnft_gp_defaults();
  o.jitter = l_opt_boolean(L, idx, "jitter", 1);
  lua_Integer t = l_opt_integer(L, idx, "max_tries", o.max_tries);
  if (t < 1 || t > 30) l_error(L, "%s: max_tries must be between 1 and 30, got %lld", fname,
                              (long long)t);
  o.max_tries = (int)t;
  return o;
}

/* Fit the GP userdata at gp_idx (allocated, uv set) on kernel matrix K(X,X) of its kernel. */
static void fit_kernel(lua_State *L, int gp_idx, const nnft_mat *X, const nnft_mat *y,
                       double noise, const nnft_gp_opts *o, const char *fname) {
  l_gp *u = lua_touserdata(L, gp_idx);
  nnft_status s = nnft_gp_alloc(X->rows, y->cols, &u->gp);
  if (s) raise_alloc(L, s, X->rows, fname);
  bind_kernel(L, gp_idx, 1);
  s = nnft_kernel_matrix(&u->kern, X, NULL, &u->gp.L);
  check_custom(L, gp_idx, fname);
  if (s) raise_kernel_status(L, s, &u->kern, fname);
  nnft_linalg_diag d;
  s = nnft_gp_factor(y, noise, o, &u->gp, &d);
  if (s) raise_fit(L, s, &d, fname);
  u->d = X->cols;
}

/* nnft.gp.fit(kernel, X, y [, {noise=0, jitter=true, max_tries=6}]) -> GP */
static int gp_fit(lua_State *L) {
  const char *fname = "nnft.gp.fit";
  if (!luaL_testudata(L, 1, L_KERNEL_NAME))
    l_error(L, "%s: the first argument must be an nnft.Kernel (nnft.kernel.rbf{...}, "
              "arch:kernel(), ...), got %s; for a kernel matrix use nnft.gp.fit_matrix", fname,
           luaL_typename(L, 1));
  const nnft_kernel *k = l_checkkernel(L, 1);
  l_check_options(L, 4, fname, FIT_KEYS);
  const nnft_mat *X = l_argpoints(L, 2, k, fname, "X");
  const nnft_mat *y = arg_targets(L, 3, X->rows, fname);
  double noise = opt_noise(L, 4, fname, 0.0);
  nnft_gp_opts o = fit_opts(L, 4, fname);
  l_gp *u = push_gp(L);
  int gi = lua_gettop(L);
  u->kern = *k;
  u->bind = BIND_KERNEL;
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, gi, 1);
  l_pushcopy(L, X);
  lua_setiuservalue(L, gi, 2);
  fit_kernel(L, gi, X, y, noise, &o, fname);
  return 1;
}

/* nnft.gp.fit_matrix(K, y [, opts]) -> GP */
static int gp_fit_matrix(lua_State *L) {
  const char *fname = "nnft.gp.fit_matrix";
  l_check_options(L, 3, fname, FIT_KEYS);
  const nnft_mat *K = l_argmat(L, 1, fname, "K");
  if (K->rows != K->cols || K->rows == 0)
    l_error(L, "%s: K must be a square n x n kernel matrix with n >= 1, got %zu x %zu", fname,
           K->rows, K->cols);
  l_check_finite(L, K, fname, "K");
  const nnft_mat *y = arg_targets(L, 2, K->rows, fname);
  double noise = opt_noise(L, 3, fname, 0.0);
  nnft_gp_opts o = fit_opts(L, 3, fname);
  l_gp *u = push_gp(L);
  nnft_status s = nnft_gp_alloc(K->rows, y->cols, &u->gp);
  if (s) raise_alloc(L, s, K->rows, fname);
  nnft_linalg_diag d;
  s = nnft_gp_fit(K, y, noise, &o, &u->gp, &d);
  if (s) raise_fit(L, s, &d, fname);
  return 1;
}

/* gp:predict(Xs [, {var=false, cov=false}]) -> mean [, var | cov] */
static int gp_predict(lua_State *L) {
  static const char *const keys[] = {"var", "cov", NULL};
  const char *fname = "nnft.GP:predict";
  l_gp *u = check_gp(L, 1);
  if (u->bind == BIND_NONE)
    l_error(L, "%s: this GP was fitted on a kernel matrix (nnft.gp.fit_matrix); use "
              "gp:predict_matrix(K(Xs, X) [, Kss])", fname);
  l_check_options(L, 3, fname, keys);
  const nnft_mat *Xs = l_argpoints(L, 2, &u->kern, fname, "Xs");
  if (Xs->cols != u->d)
    l_error(L, "%s: Xs has %zu columns but the training points have %zu (rows are points)", fname,
           Xs->cols, u->d);
  int want_var = l_opt_boolean(L, 3, "var", 0), want_cov = l_opt_boolean(L, 3, "cov", 0);
  if (want_var && want_cov)
    l_error(L, "%s: ask for var=true or cov=true, not both (the variance is cov's diagonal)", fname);
  size_t m = Xs->rows;
  lua_getiuservalue(L, 1, 2);
  const nnft_mat *X = l_checkmat(L, -1);
  nnft_mat *mean = l_newmat(L, m, u->gp.k);
  nnft_mat *var = want_var ? l_newmat(L, m, 1) : NULL;
  nnft_mat *cov = want_cov ? l_newmat(L, m, m) : NULL;
  bind_kernel(L, 1, 1);
  nnft_status s = nnft_gp_predict_kernel(&u->gp, &u->kern, X, Xs, mean, var, cov);
  check_custom(L, 1, fname);
  if (s == NNFT_ENOMEM)
    l_error(L, "%s: out of memory for the kernel blocks (%zu new points x %zu training points)",
           fname, m, u->gp.n);
  if (s == NNFT_EDOM && !u->gp.fitted)
    l_error(L, "%s: the GP was released while the kernel was evaluated", fname);
  if (s) raise_kernel_status(L, s, &u->kern, fname);
  return want_var || want_cov ? 2 : 1;
}

/* gp:predict_matrix(Ks [, Kss]) -> mean [, var (Kss m x 1) | cov (Kss m x m)] */
static int gp_predict_matrix(lua_State *L) {
  const char *fname = "nnft.GP:predict_matrix";
  l_gp *u = check_gp(L, 1);
  const nnft_mat *Ks = l_argmat(L, 2, fname, "Ks");
  if (Ks->cols != u->gp.n)
    l_error(L, "%s: Ks = K(Xs, X) must have one column per training point (%zu), got %zu x %zu",
           fname, u->gp.n, Ks->rows, Ks->cols);
  l_check_finite(L, Ks, fname, "Ks");
  size_t m = Ks->rows;
  const nnft_mat *Kss = NULL;
  if (!lua_isnoneornil(L, 3)) {
    Kss = l_argmat(L, 3, fname, "Kss");
    if (Kss->rows != m || (Kss->cols != 1 && Kss->cols != m))
      l_error(L, "%s: Kss must be %zu x 1 (the prior variances k(x*, x*): gives the posterior "
                "variance) or %zu x %zu (K(Xs, Xs): gives the covariance), got %zu x %zu", fname,
             m, m, m, Kss->rows, Kss->cols);
    l_check_finite(L, Kss, fname, "Kss");
  }
  nnft_mat *mean = l_newmat(L, m, u->gp.k);
  nnft_status s = nnft_gp_mean(&u->gp, Ks, mean);
  if (s) l_status_error(L, s, fname, NULL);
  if (!Kss) return 1;
  nnft_mat *out = l_newmat(L, m, Kss->cols);
  /* m = 1: a 1 x 1 Kss is both; the variance is what is returned */
  s = Kss->cols == 1 ? nnft_gp_var(&u->gp, Ks, Kss, out) : nnft_gp_cov(&u->gp, Ks, Kss, out);
  if (s) l_status_error(L, s, fname, NULL);
  return 2;
}

static int gp_logml(lua_State *L) {
  lua_pushnumber(L, check_gp(L, 1)->gp.logml);
  return 1;
}

static int gp_jitter(lua_State *L) {
  lua_pushnumber(L, check_gp(L, 1)->gp.jitter);
  return 1;
}

static int gp_noise(lua_State *L) {
  lua_pushnumber(L, check_gp(L, 1)->gp.noise);
  return 1;
}

/* gp:alpha() -> n x k copy of (K + σ² I)⁻¹ y */
static int gp_alpha(lua_State *L) {
  l_pushcopy(L, &check_gp(L, 1)->gp.alpha);
  return 1;
}

/* gp:size() -> n, k */
static int gp_size(lua_State *L) {
  l_gp *u = check_gp(L, 1);
  lua_pushinteger(L, (lua_Integer)u->gp.n);
  lua_pushinteger(L, (lua_Integer)u->gp.k);
  return 2;
}

static int gp_tostring(lua_State *L) {
  l_gp *u = luaL_checkudata(L, 1, L_GP_NAME);
  char buf[200];
  if (!u->gp.fitted)
    snprintf(buf, sizeof buf, "nnft.GP (released)");
  else
    snprintf(buf, sizeof buf, "nnft.GP(n=%zu, outputs=%zu, noise=%g, jitter=%g, logml=%.6g%s)",
             u->gp.n, u->gp.k, u->gp.noise, u->gp.jitter, u->gp.logml,
             u->bind == BIND_NONE ? ", from a matrix" : "");
  lua_pushstring(L, buf);
  return 1;
}

/* ---------------------------------------------------------------------------------------------
 * nnft.gp.optimize */

enum { P_SIGMA_W, P_SIGMA_B, P_LENGTHSCALE, P_VARIANCE, P_OFFSET, P_SCALE, P_NPARAM };
static const char *const PARAM_NAMES[] = {"sigma_w", "sigma_b", "lengthscale", "variance",
                                          "offset", "scale", NULL};
#define MAX_PARAMS 16

enum { B_ARCH, B_KERNEL, B_FUNCTION };

typedef struct opt_ctx {
  lua_State *L;
  int kind;
  nnft_kernel base;      /* B_ARCH / B_KERNEL: the kernel whose parameters move */
  const nnft_mat *X;
  size_t p;
  int which[MAX_PARAMS]; /* B_ARCH / B_KERNEL: P_* of each kernel parameter */
  int fn_idx;            /* B_FUNCTION: stack index of the builder */
  int names_idx;         /* B_FUNCTION: stack index of the array of kernel parameter names */
  int errors;            /* B_FUNCTION: a builder error is on the stack top */
} opt_ctx;

static int param_id(const char *name) {
  for (int i = 0; PARAM_NAMES[i]; i++)
    if (strcmp(name, PARAM_NAMES[i]) == 0) return i;
  return -1;
}

/* Which P_* the kernel node k exposes (bitmask). */
static unsigned kernel_params(const nnft_kernel *k) {
  switch (k->type) {
  case NNFT_KERNEL_NNGP:
  case NNFT_KERNEL_NTK: return 1u << P_SIGMA_W | 1u << P_SIGMA_B;
  case NNFT_KERNEL_RBF:
  case NNFT_KERNEL_MATERN: return 1u << P_LENGTHSCALE | 1u << P_VARIANCE;
  case NNFT_KERNEL_POLY: return 1u << P_VARIANCE | 1u << P_OFFSET;
  case NNFT_KERNEL_SCALE: return 1u << P_SCALE;
  default: return 0;
  }
}

/* Current value of parameter id in k (arch σ's: layer 1's; all layers are checked equal). */
static double kernel_param_get(const nnft_kernel *k, int id) {
  switch (id) {
  case P_SIGMA_W: return k->arch.layer[0].sigma_w;
  case P_SIGMA_B:
    for (size_t l = 0; l < k->arch.nlayers; l++)
      if (k->arch.layer[l].has_bias) return k->arch.layer[l].sigma_b;
    return 0.0;
  case P_LENGTHSCALE: return k->lengthscale;
  case P_VARIANCE: return k->variance;
  case P_OFFSET: return k->offset;
  case P_SCALE: return k->scale;
  default: return NAN;
  }
}

static void kernel_param_set(nnft_kernel *k, int id, double v) {
  switch (id) {
  case P_SIGMA_W:
    for (size_t l = 0; l < k->arch.nlayers; l++) k->arch.layer[l].sigma_w = v;
    break;
  case P_SIGMA_B:
    for (size_t l = 0; l < k->arch.nlayers; l++) k->arch.layer[l].sigma_b = v;
    break;
  case P_LENGTHSCALE: k->lengthscale = v; break;
  case P_VARIANCE: k->variance = v; break;
  case P_OFFSET: k->offset = v; break;
  case P_SCALE: k->scale = v; break;
  default: break;
  }
}

/* The kernel of ctx at parameters theta. */
static nnft_kernel ctx_kernel(const opt_ctx *c, const double *theta) {
  nnft_kernel k = c->base;
  for (size_t j = 0; j < c->p; j++) kernel_param_set(&k, c->which[j], theta[j]);
  return k;
}

/* Protected part of a function builder call: args (fn, names, theta lightuserdata, p, K
 * lightuserdata, X lightuserdata, call count). Calls fn{name = value, ...} and writes K(X,X). */
static int builder_call(lua_State *L) {
  const double *theta = lua_touserdata(L, 3);
  size_t p = (size_t)lua_tointeger(L, 4);
  nnft_mat *K = lua_touserdata(L, 5);
  const nnft_mat *X = lua_touserdata(L, 6);
  lua_settop(L, 6);
  lua_pushvalue(L, 1);
  lua_createtable(L, 0, (int)p);
  for (size_t j = 0; j < p; j++) {
    lua_rawgeti(L, 2, (lua_Integer)j + 1);
    lua_pushnumber(L, theta[j]);
    lua_rawset(L, -3);
  }
  lua_call(L, 1, 1);
  int r = lua_gettop(L);
  if (l_testmat(L, r)) {
    const nnft_mat *M = l_testmat(L, r);
    if (M->rows != K->rows || M->cols != K->cols)
      return luaL_error(L, "the builder returned a %d x %d matrix; K(X, X) is %d x %d",
                        (int)M->rows, (int)M->cols, (int)K->rows, (int)K->cols);
    nnft_status s = nnft_mat_copy(M, K);
    if (s) return luaL_error(L, "%s", nnft_strerror(s));
    return 0;
  }
  if (!luaL_testudata(L, r, L_KERNEL_NAME))
    return luaL_error(L, "the builder must return an nnft.Kernel or the n x n matrix K(X, X), "
                         "got %s", luaL_typename(L, r));
  const nnft_kernel *k = l_checkkernel(L, r);
  size_t dim = 0;
  if (nnft_kernel_input_dim(k, &dim) == NNFT_OK && dim && dim != X->cols)
    return luaL_error(L, "the builder's kernel takes points of dimension %d but X has %d columns",
                      (int)dim, (int)X->cols);
  nnft_status s = nnft_kernel_matrix(k, X, NULL, K);
  l_kernel_check_custom(L, r, "builder kernel");
  if (s) {
    const char *why = NULL;
    if (s == NNFT_EDOM && nnft_kernel_check_why(k, &why) && why) return luaL_error(L, "%s", why);
    return luaL_error(L, "evaluating the builder's kernel: %s", nnft_strerror(s));
  }
  return 0;
}

static nnft_status opt_kernel_fn(void *vctx, const double *theta, nnft_mat *K) {
  opt_ctx *c = vctx;
  lua_State *L = c->L;
  if (c->kind != B_FUNCTION) {
    nnft_kernel k = ctx_kernel(c, theta);
    return nnft_kernel_matrix(&k, c->X, NULL, K);
  }
  if (c->errors) return NNFT_EINTERNAL;
  if (!lua_checkstack(L, 8)) return NNFT_ENOMEM;
  lua_pushcfunction(L, builder_call);
  lua_pushvalue(L, c->fn_idx);
  lua_pushvalue(L, c->names_idx);
  lua_pushlightuserdata(L, (void *)theta);
  lua_pushinteger(L, (lua_Integer)c->p);
  lua_pushlightuserdata(L, K);
  lua_pushlightuserdata(L, (void *)c->X);
  if (lua_pcall(L, 6, 0, 0) != LUA_OK) {
    c->errors = 1; /* the error object stays on the stack top */
    return NNFT_EINTERNAL;
  }
  return NNFT_OK;
}

/* Read the parameter names at option `params` into names (stack index of a new array table
 * pushed by this function) — validated for the builder kind. Returns the count. */
static size_t read_params(lua_State *L, int opts, int kind, const nnft_kernel *base,
                          const char *fname, int *fit_noise, int *which, int *names_idx) {
  *fit_noise = 0;
  lua_newtable(L); /* kernel parameter names, in order */
  *names_idx = lua_gettop(L);
  size_t p = 0;
  int t = lua_istable(L, opts) ? lua_getfield(L, opts, "params") : LUA_TNIL;
  if (t == LUA_TNIL) {
    if (lua_istable(L, opts)) lua_pop(L, 1);
    /* defaults: noise and every positive parameter of the builder */
    *fit_noise = 1;
    if (kind == B_FUNCTION) {
      int st = lua_istable(L, opts) ? lua_getfield(L, opts, "start") : LUA_TNIL;
      if (st == LUA_TTABLE) {
        lua_pushnil(L);
        while (lua_next(L, -2)) {
          lua_pop(L, 1);
          if (lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), "noise") != 0) {
            if (p >= MAX_PARAMS) l_error(L, "%s: at most %d parameters", fname, MAX_PARAMS);
            lua_pushvalue(L, -1);
            lua_rawseti(L, *names_idx, (lua_Integer)++p);
          }
        }
      }
      if (st != LUA_TNIL) lua_pop(L, 1);
      /* table traversal order is not reproducible: sort the names */
      for (size_t i = 2; i <= p; i++)
        for (size_t j = i; j > 1; j--) {
          lua_rawgeti(L, *names_idx, (lua_Integer)j - 1);
          lua_rawgeti(L, *names_idx, (lua_Integer)j);
          if (strcmp(lua_tostring(L, -2), lua_tostring(L, -1)) <= 0) {
            lua_pop(L, 2);
            break;
          }
          lua_rawseti(L, *names_idx, (lua_Integer)j - 1);
          lua_rawseti(L, *names_idx, (lua_Integer)j);
        }
      return p;
    }
    unsigned mask = kernel_params(base);
    for (int id = 0; id < P_NPARAM; id++)
      if (mask & (1u << id) && kernel_param_get(base, id) > 0.0) {
        which[p] = id;
        lua_pushstring(L, PARAM_NAMES[id]);
        lua_rawseti(L, *names_idx, (lua_Integer)++p);
      }
    return p;
  }
  if (t != LUA_TTABLE)
    l_error(L, "%s: params must be a list of names such as {\"noise\", \"sigma_w\"}, got %s", fname,
           luaL_typename(L, -1));
  int pt = lua_gettop(L);
  lua_Integer len = (lua_Integer)lua_rawlen(L, pt);
  unsigned mask = kind == B_FUNCTION ? 0 : kernel_params(base);
  for (lua_Integer i = 1; i <= len; i++) {
    lua_rawgeti(L, pt, i);
    if (lua_type(L, -1) != LUA_TSTRING)
      l_error(L, "%s: params[%lld] must be a parameter name, got %s", fname, (long long)i,
             luaL_typename(L, -1));
    const char *name = lua_tostring(L, -1);
    for (lua_Integer j = 1; j < i; j++) {
      lua_rawgeti(L, pt, j);
      if (lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), name) == 0)
        l_error(L, "%s: parameter '%s' is listed twice in params", fname, name);
      lua_pop(L, 1);
    }
    if (strcmp(name, "noise") == 0) {
      *fit_noise = 1;
      lua_pop(L, 1);
      continue;
    }
    if (p >= MAX_PARAMS) l_error(L, "%s: at most %d parameters", fname, MAX_PARAMS);
    if (kind != B_FUNCTION) {
      int id = param_id(name);
      if (id < 0 || !(mask & (1u << id))) {
        luaL_Buffer b;
        luaL_buffinit(L, &b);
        luaL_addstring(&b, "noise");
        for (int q = 0; q < P_NPARAM; q++)
          if (mask & (1u << q)) {
            luaL_addstring(&b, ", ");
            luaL_addstring(&b, PARAM_NAMES[q]);
          }
        luaL_pushresult(&b);
        l_error(L, "%s: unknown parameter '%s' for this %s (allowed: %s)", fname, name,
               kind == B_ARCH ? "architecture" : "kernel", lua_tostring(L, -1));
      }
      which[p] = id;
    }
    lua_rawseti(L, *names_idx, (lua_Integer)++p);
  }
  lua_pop(L, 1);
  return p;
}

/* start value of `name` from opts.start, or def (NaN: required). */
static double start_value(lua_State *L, int opts, const char *name, double def,
                          const char *fname) {
  double v = def;
  if (lua_istable(L, opts) && lua_getfield(L, opts, "start") != LUA_TNIL) {
    if (!lua_istable(L, -1))
      l_error(L, "%s: start must be a table {name = value}, got %s", fname, luaL_typename(L, -1));
    if (lua_getfield(L, -1, name) != LUA_TNIL) {
      if (lua_type(L, -1) != LUA_TNUMBER)
        l_error(L, "%s: start.%s must be a number, got %s", fname, name, luaL_typename(L, -1));
      v = lua_tonumber(L, -1);
    }
    lua_pop(L, 1);
  }
  if (lua_istable(L, opts)) lua_pop(L, 1);
  if (isnan(v))
    l_error(L, "%s: start.%s is required (the builder function's parameters have no default)",
           fname, name);
  return v;
}

/* nnft.gp.optimize(builder, X, y [, opts]) -> result table */
static int gp_optimize(lua_State *L) {
  static const char *const keys[] = {"params", "start", "method", "noise", "kernel",
                                     "quad_order", "max_iter", "gtol", "xtol", "step",
                                     "fd_step", "jitter", "max_tries", NULL};
  static const char *const methods[] = {"bfgs", "cg", "nm", NULL};
  static const char *const kinds[] = {"nngp", "ntk", NULL};
  const char *fname = "nnft.gp.optimize";
  lua_settop(L, 4);
  l_check_options(L, 4, fname, keys);
  opt_ctx c;
  memset(&c, 0, sizeof c);
  c.L = L;
  const nnft_kernel *kcheck = NULL;
  if (luaL_testudata(L, 1, L_ARCH_NAME)) {
    c.kind = B_ARCH;
    const nnft_arch *a = l_checkarch(L, 1);
    int ntk = l_opt_choice(L, 4, "kernel", "nngp", kinds);
    lua_Integer q = l_opt_integer(L, 4, "quad_order", 0);
    if (q != 0 && (q < 2 || q > NNFT_NNGP_QUAD_MAX))
      l_error(L, "%s: quad_order must be between 2 and %d, got %lld", fname, NNFT_NNGP_QUAD_MAX,
             (long long)q);
    c.base = nnft_kernel_nngp(a, ntk, (int)q);
    const char *why = NULL;
    if (nnft_kernel_check_why(&c.base, &why)) l_error(L, "%s: %s", fname, why ? why : "bad arch");
    kcheck = &c.base;
  } else if (luaL_testudata(L, 1, L_KERNEL_NAME)) {
    c.kind = B_KERNEL;
    c.base = *l_checkkernel(L, 1);
    kcheck = &c.base;
    if (lua_istable(L, 4)) {
      lua_getfield(L, 4, "kernel");
      lua_getfield(L, 4, "quad_order");
      if (!lua_isnil(L, -1) || !lua_isnil(L, -2))
        l_error(L, "%s: kernel= and quad_order= apply to an architecture builder only", fname);
      lua_pop(L, 2);
    }
  } else if (lua_isfunction(L, 1)) {
    c.kind = B_FUNCTION;
    c.fn_idx = 1;
  } else {
    return l_error(L, "%s: the builder must be an nnft.Arch, an nnft.Kernel or a function "
                     "(params) -> Kernel, got %s", fname, luaL_typename(L, 1));
  }
  const nnft_mat *X = l_argpoints(L, 2, kcheck, fname, "X");
  const nnft_mat *y = arg_targets(L, 3, X->rows, fname);
  c.X = X;
  const size_t n = X->rows;
  int fit_noise;
  c.p = read_params(L, 4, c.kind, &c.base, fname, &fit_noise, c.which, &c.names_idx);
  if (c.kind == B_ARCH || (c.kind == B_KERNEL && kernel_params(&c.base) & (1u << P_SIGMA_W)))
    for (size_t j = 0; j < c.p; j++) {
      int id = c.which[j];
      if (id != P_SIGMA_W && id != P_SIGMA_B) continue;
      double v0 = kernel_param_get(&c.base, id);
      for (size_t l = 0; l < c.base.arch.nlayers; l++) {
        const nnft_layer *ly = &c.base.arch.layer[l];
        double v = id == P_SIGMA_W ? ly->sigma_w : ly->sigma_b;
        if ((id == P_SIGMA_W || ly->has_bias) && v != v0)
          l_error(L, "%s: the layers of this architecture have different %s (%g and %g); "
                    "optimising one shared %s would overwrite them — use a builder function",
                 fname, PARAM_NAMES[id], v0, v, PARAM_NAMES[id]);
      }
    }
  /* every key of start= must name a parameter (a typo must not be ignored) */
  if (lua_istable(L, 4) && lua_getfield(L, 4, "start") == LUA_TTABLE) {
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      lua_pop(L, 1);
      int known = lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), "noise") == 0;
      for (size_t j = 0; j < c.p && !known; j++) {
        lua_rawgeti(L, c.names_idx, (lua_Integer)j + 1);
        known = lua_rawequal(L, -1, -2);
        lua_pop(L, 1);
      }
      if (!known)
        l_error(L, "%s: start.%s is not one of the parameters being optimised (params=)", fname,
               luaL_tolstring(L, -1, NULL));
    }
  }
  if (lua_istable(L, 4)) lua_pop(L, 1);
  /* start values: params[0] = noise, then the kernel parameters */
  double params[1 + MAX_PARAMS];
  double noise_def;
  {
    double vy = 0.0;
    for (size_t cc = 0; cc < y->cols; cc++) {
      double m = 0.0, m2 = 0.0;
      for (size_t i = 0; i < n; i++) m += NNFT_AT(y, i, cc);
      m /= (double)n;
      for (size_t i = 0; i < n; i++) m2 += (NNFT_AT(y, i, cc) - m) * (NNFT_AT(y, i, cc) - m);
      vy += n > 1 ? m2 / (double)(n - 1) : 0.0;
    }
    vy /= (double)y->cols;
    noise_def = fit_noise ? (vy > 0.0 ? 0.1 * vy : 0.1) : 0.0;
  }
  noise_def = opt_noise(L, 4, fname, noise_def);
  params[0] = start_value(L, 4, "noise", noise_def, fname);
  for (size_t j = 0; j < c.p; j++) {
    lua_rawgeti(L, c.names_idx, (lua_Integer)j + 1);
    const char *name = lua_tostring(L, -1);
    double def = c.kind == B_FUNCTION ? NAN : kernel_param_get(&c.base, c.which[j]);
    params[1 + j] = start_value(L, 4, name, def, fname);
    if (!isfinite(params[1 + j]) || params[1 + j] <= 0.0)
      l_error(L, "%s: the start value of %s must be positive (parameters are optimised on a log "
                "scale), got %g%s", fname, name, params[1 + j],
             c.kind != B_FUNCTION && params[1 + j] == 0.0 ? "; leave it out of params= to keep it "
                                                           "at 0, or give start= a positive value"
                                                         : "");
    lua_pop(L, 1);
  }
  if (fit_noise && !(params[0] > 0.0))
    l_error(L, "%s: the start value of noise must be positive (optimised on a log scale), got %g",
           fname, params[0]);
  if (!isfinite(params[0]) || params[0] < 0.0)
    l_error(L, "%s: noise must be finite and >= 0, got %g", fname, params[0]);

  nnft_gp_optimize_opts o = nnft_gp_optimize_defaults();
  o.fit_noise = fit_noise;
  o.method = (nnft_gp_method)l_opt_choice(L, 4, "method", "bfgs", methods);
  lua_Integer mi = l_opt_integer(L, 4, "max_iter", o.max_iter);
  if (mi < 0 || mi > 1000000) l_error(L, "%s: max_iter must be between 0 and 1e6, got %lld", fname,
                                     (long long)mi);
  o.max_iter = (int)mi;
  o.gtol = l_opt_number(L, 4, "gtol", o.gtol);
  o.xtol = l_opt_number(L, 4, "xtol", o.xtol);
  o.step = l_opt_number(L, 4, "step", o.step);
  o.fd_step = l_opt_number(L, 4, "fd_step", o.fd_step);
  if (!(o.gtol > 0.0) || !(o.xtol > 0.0) || !(o.step > 0.0) || !isfinite(o.step) ||
      !(o.fd_step > 0.0 && o.fd_step < 1.0))
    l_error(L, "%s: gtol, xtol and step must be positive and fd_step in (0, 1)", fname);
  o.fit = fit_opts(L, 4, fname);

  /* the result GP is allocated before the search: Lua owns it whatever happens */
  l_gp *u = push_gp(L);
  int gi = lua_gettop(L);
  nnft_gp_optimize_result res;
  nnft_linalg_diag d;
  if (c.kind == B_ARCH) l_checkarch(L, 1);
  if (c.kind == B_KERNEL) l_checkkernel(L, 1);
  int top = lua_gettop(L);
  nnft_status s = nnft_gp_optimize(opt_kernel_fn, &c, n, c.p, y, &o, params, &res, &d);
  if (c.kind == B_ARCH) l_arch_check_custom(L, 1, fname);
  if (c.kind == B_KERNEL) l_kernel_check_custom(L, 1, fname);
  if (c.errors) {
    const char *msg = lua_tostring(L, -1);
    return l_error(L, "%s: the builder failed: %s", fname, msg ? msg : "(error object)");
  }
  lua_settop(L, top);
  if (s == NNFT_EINTR) return l_status_error(L, s, fname, NULL);
  if (s == NNFT_ENOTPD)
    return l_error(L, "%s: at noise %g: %s; restrict the parameters or start elsewhere", fname,
                  params[0], d.msg);
  if (s == NNFT_ENOMEM || s == NNFT_EOVERFLOW) raise_alloc(L, s, n, fname);
  if (s && c.kind != B_FUNCTION) raise_kernel_status(L, s, &c.base, fname);
  if (s) return l_error(L, "%s: %s", fname, d.msg[0] ? d.msg : nnft_strerror(s));

  /* result table */
  lua_createtable(L, 0, 8);
  int rt = lua_gettop(L);
  lua_createtable(L, 0, (int)c.p + 1);
  lua_pushnumber(L, params[0]);
  lua_setfield(L, -2, "noise");
  for (size_t j = 0; j < c.p; j++) {
    lua_rawgeti(L, c.names_idx, (lua_Integer)j + 1);
    lua_pushnumber(L, params[1 + j]);
    lua_rawset(L, -3);
  }
  lua_setfield(L, rt, "params");
  lua_pushnumber(L, res.logml);
  lua_setfield(L, rt, "logml");
  lua_pushinteger(L, res.iterations);
  lua_setfield(L, rt, "iterations");
  lua_pushinteger(L, res.evaluations);
  lua_setfield(L, rt, "evaluations");
  lua_pushboolean(L, res.converged);
  lua_setfield(L, rt, "converged");
  lua_pushnumber(L, res.grad_norm);
  lua_setfield(L, rt, "grad_norm");
  lua_pushnumber(L, res.jitter);
  lua_setfield(L, rt, "jitter");

  /* the GP at the optimum */
  l_pushcopy(L, X);
  lua_setiuservalue(L, gi, 2);
  if (c.kind == B_FUNCTION) {
    lua_pushvalue(L, 1);
    lua_createtable(L, 0, (int)c.p);
    for (size_t j = 0; j < c.p; j++) {
      lua_rawgeti(L, c.names_idx, (lua_Integer)j + 1);
      lua_pushnumber(L, params[1 + j]);
      lua_rawset(L, -3);
    }
    lua_call(L, 1, 1);
    int r = lua_gettop(L);
    if (luaL_testudata(L, r, L_KERNEL_NAME)) {
      u->kern = *l_checkkernel(L, r);
      u->bind = BIND_KERNEL;
      lua_pushvalue(L, r);
      lua_setiuservalue(L, gi, 1);
      lua_pushvalue(L, r);
      lua_setfield(L, rt, "kernel");
      fit_kernel(L, gi, X, y, params[0], &o.fit, fname);
    } else {
      const nnft_mat *K = l_testmat(L, r);
      if (!K || K->rows != n || K->cols != n)
        return l_error(L, "%s: the builder returned something else at the optimum", fname);
      nnft_status s2 = nnft_gp_alloc(n, y->cols, &u->gp);
      if (s2) raise_alloc(L, s2, n, fname);
      s2 = nnft_gp_fit(K, y, params[0], &o.fit, &u->gp, &d);
      if (s2) raise_fit(L, s2, &d, fname);
    }
  } else {
    u->kern = ctx_kernel(&c, params + 1);
    u->bind = c.kind == B_ARCH ? BIND_ARCH : BIND_KERNEL;
    lua_pushvalue(L, 1);
    lua_setiuservalue(L, gi, 1);
    fit_kernel(L, gi, X, y, params[0], &o.fit, fname);
  }
  lua_pushvalue(L, gi);
  lua_setfield(L, rt, "gp");
  lua_pushvalue(L, rt);
  return 1;
}

/* ---------------------------------------------------------------------------------------------
 * registration */

static const luaL_Reg gp_methods[] = {{"predict", gp_predict},
                                      {"predict_matrix", gp_predict_matrix},
                                      {"logml", gp_logml},
                                      {"jitter", gp_jitter},
                                      {"noise", gp_noise},
                                      {"alpha", gp_alpha},
                                      {"size", gp_size},
                                      {"release", gp_release},
                                      {NULL, NULL}};
static const luaL_Reg gp_meta[] = {{"__tostring", gp_tostring},
                                   {"__gc", gp_release},
                                   {"__close", gp_release},
                                   {NULL, NULL}};

void l_open_gp(lua_State *L) {
  static const luaL_Reg fns[] = {{"fit", gp_fit},
                                 {"fit_matrix", gp_fit_matrix},
                                 {"optimize", gp_optimize},
                                 {NULL, NULL}};
  l_newclass(L, L_GP_NAME, gp_methods, gp_meta);
  lua_newtable(L);
  luaL_setfuncs(L, fns, 0);
  lua_setfield(L, -2, "gp");
}
