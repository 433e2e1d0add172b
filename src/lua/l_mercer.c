/* nnft.mercer: Mercer modes of a kernel on the empirical measure of the data (src/core/
 * nnft_mercer.h, physics.md §5.2) — the Modes userdata ("nnft.Modes"), nnft.mercer(kernel, X),
 * kernel:mercer(X) and nnft.mercer_matrix(K). Documented in docs/api/mercer.md.
 *
 * Modes from a kernel keep the kernel (user value 1) and a private copy of the points (user
 * value 2) for the Nyström extension to new points; modes from a matrix extend K(Xnew, X). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "l_util.h"
#include "nnft_kernel.h"
#include "nnft_mercer.h"

#define L_MODES_NAME "nnft.Modes"
#define L_WORK_NAME "nnft.MercerWorkspace"

typedef struct l_modes {
  nnft_mercer m;
  nnft_kernel kern; /* valid when has_kernel */
  int has_kernel;
  size_t d; /* columns of the points */
} l_modes;

static l_modes *check_modes(lua_State *L, int idx) {
  l_modes *u = luaL_checkudata(L, idx, L_MODES_NAME);
  if (!u->m.phi.data) luaL_argerror(L, idx, "Modes have been released (closed)");
  return u;
}

static int modes_release(lua_State *L) {
  l_modes *u = luaL_checkudata(L, 1, L_MODES_NAME);
  nnft_mercer_free(&u->m);
  return 0;
}

/* A workspace matrix owned by a userdata (freed by __gc, or at once with work_free). */
static int work_gc(lua_State *L) {
  nnft_mat_free(luaL_checkudata(L, 1, L_WORK_NAME));
  return 0;
}

static nnft_mat *push_work(lua_State *L, size_t rows, size_t cols, const char *fname) {
  nnft_mat *w = lua_newuserdatauv(L, sizeof *w, 0);
  memset(w, 0, sizeof *w);
  luaL_setmetatable(L, L_WORK_NAME);
  nnft_status s = nnft_mat_alloc(rows, cols, w);
  if (s) {
    double gib = (double)rows * (double)cols * 8.0 / 1073741824.0;
    l_error(L, "%s: cannot allocate the %zu x %zu kernel matrix (%.3g GiB): %s", fname, rows, cols,
           gib, s == NNFT_ENOMEM ? "out of memory" : "larger than this machine's memory");
  }
  return w;
}

/* Options {k=n, method="auto"} at idx for n points: k and the method. */
static size_t read_opts(lua_State *L, int idx, size_t n, const char *fname,
                        nnft_mercer_method *method) {
  static const char *const keys[] = {"k", "method", NULL};
  static const char *const methods[] = {"auto", "partial", "full", NULL};
  l_check_options(L, idx, fname, keys);
  lua_Integer k = l_opt_integer(L, idx, "k", (lua_Integer)n);
  if (k < 1 || (size_t)k > n)
    l_error(L, "%s: k (the number of modes) must be between 1 and the number of points %zu, got "
              "%lld", fname, n, (long long)k);
  int mi = l_opt_choice(L, idx, "method", "auto", methods);
  *method = mi == 0 ? NNFT_MERCER_AUTO : mi == 1 ? NNFT_MERCER_PARTIAL : NNFT_MERCER_FULL;
  return (size_t)k;
}

static l_modes *push_modes(lua_State *L) {
  l_modes *u = lua_newuserdatauv(L, sizeof *u, 2);
  memset(u, 0, sizeof *u);
  luaL_setmetatable(L, L_MODES_NAME);
  return u;
}

/* Decompose K into the modes userdata u (allocated here). */
static void decompose(lua_State *L, l_modes *u, const nnft_mat *K, size_t k,
                      nnft_mercer_method method, const char *fname) {
  nnft_status s = nnft_mercer_alloc(K->rows, k, &u->m);
  if (s)
    l_error(L, "%s: cannot allocate %zu modes of %zu points: %s", fname, k, K->rows,
           nnft_strerror(s));
  nnft_linalg_diag d;
  s = nnft_mercer_decompose(K, method, &u->m, &d);
  if (s) {
    nnft_mercer_free(&u->m);
    if (s == NNFT_EINTR) l_status_error(L, s, fname, NULL);
    l_error(L, "%s: %s", fname, d.msg[0] ? d.msg : nnft_strerror(s));
  }
}

/* nnft.mercer(kernel, X [, {k=, method=}]) and kernel:mercer(X [, opts]) -> Modes */
static int mercer_kernel(lua_State *L) {
  const char *fname = "nnft.mercer";
  if (!luaL_testudata(L, 1, L_KERNEL_NAME))
    l_error(L, "%s: the first argument must be an nnft.Kernel (nnft.kernel.rbf{...}, "
              "arch:kernel(), ...), got %s; for a kernel matrix use nnft.mercer_matrix", fname,
           luaL_typename(L, 1));
  const nnft_kernel *kern = l_checkkernel(L, 1);
  const nnft_mat *X = l_argpoints(L, 2, kern, fname, "X");
  const size_t n = X->rows;
  nnft_mercer_method method;
  size_t k = read_opts(L, 3, n, fname, &method);
  l_modes *u = push_modes(L);
  int mi = lua_gettop(L);
  u->kern = *kern;
  u->has_kernel = 1;
  u->d = X->cols;
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, mi, 1);
  l_pushcopy(L, X);
  lua_setiuservalue(L, mi, 2);
  nnft_mat *K = push_work(L, n, n, fname);
  l_checkkernel(L, 1);
  nnft_status s = nnft_kernel_matrix(kern, X, NULL, K);
  l_kernel_check_custom(L, 1, fname);
  if (s) {
    const char *why = NULL;
    if (s == NNFT_EDOM && nnft_kernel_check_why(kern, &why) && why)
      return l_error(L, "%s: %s", fname, why);
    if (s == NNFT_ENONFINITE) /* the points were checked finite: the values overflowed */
      return l_error(L, "%s: the kernel produced NaN or Inf (overflow?)", fname);
    return l_status_error(L, s, fname, "evaluating the kernel matrix");
  }
  decompose(L, u, K, k, method, fname);
  nnft_mat_free(K); /* now, not at the next collection */
  lua_settop(L, mi);
  return 1;
}

/* nnft.mercer_matrix(K [, {k=, method=}]) -> Modes */
static int mercer_matrix(lua_State *L) {
  const char *fname = "nnft.mercer_matrix";
  const nnft_mat *K = l_argmat(L, 1, fname, "K");
  if (K->rows != K->cols || K->rows == 0)
    l_error(L, "%s: K must be a square n x n kernel matrix with n >= 1, got %zu x %zu", fname,
           K->rows, K->cols);
  l_check_finite(L, K, fname, "K");
  nnft_mercer_method method;
  size_t k = read_opts(L, 2, K->rows, fname, &method);
  l_modes *u = push_modes(L);
  decompose(L, u, K, k, method, fname);
  return 1;
}

/* modes:values() -> k x 1 copy of λ (descending) */
static int modes_values(lua_State *L) {
  l_pushcopy(L, &check_modes(L, 1)->m.values);
  return 1;
}

/* modes:functions() -> n x k copy of φ_k(x_i) */
static int modes_functions(lua_State *L) {
  l_pushcopy(L, &check_modes(L, 1)->m.phi);
  return 1;
}

/* modes:count() -> k;  modes:size() -> n, k */
static int modes_count(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)check_modes(L, 1)->m.k);
  return 1;
}

static int modes_size(lua_State *L) {
  l_modes *u = check_modes(L, 1);
  lua_pushinteger(L, (lua_Integer)u->m.n);
  lua_pushinteger(L, (lua_Integer)u->m.k);
  return 2;
}

/* modes:extend(Xnew) (kernel modes) or modes:extend(Ks) (matrix modes) -> r x k */
static int modes_extend(lua_State *L) {
  const char *fname = "nnft.Modes:extend";
  l_modes *u = check_modes(L, 1);
  nnft_status s;
  if (!u->has_kernel) {
    const nnft_mat *Ks = l_argmat(L, 2, fname, "Ks");
    if (Ks->cols != u->m.n)
      l_error(L, "%s: these modes come from a kernel matrix: pass Ks = K(Xnew, X) with one column "
                "per point (%zu), got %zu x %zu", fname, u->m.n, Ks->rows, Ks->cols);
    l_check_finite(L, Ks, fname, "Ks");
    nnft_mat *out = l_newmat(L, Ks->rows, u->m.k);
    s = nnft_mercer_extend(&u->m, Ks, out);
    if (s) l_status_error(L, s, fname, NULL);
    return 1;
  }
  lua_getiuservalue(L, 1, 1);
  int ki = lua_gettop(L);
  l_checkkernel(L, ki);
  const nnft_mat *Xn = l_argpoints(L, 2, &u->kern, fname, "Xnew");
  if (Xn->cols != u->d)
    l_error(L, "%s: Xnew has %zu columns but the modes' points have %zu (rows are points)", fname,
           Xn->cols, u->d);
  lua_getiuservalue(L, 1, 2);
  const nnft_mat *X = l_checkmat(L, -1);
  nnft_mat *out = l_newmat(L, Xn->rows, u->m.k);
  l_checkkernel(L, ki);
  s = nnft_mercer_extend_kernel(&u->m, &u->kern, X, Xn, out);
  l_kernel_check_custom(L, ki, fname);
  if (s == NNFT_ENOMEM)
    l_error(L, "%s: out of memory for the kernel blocks (%zu new points x %zu points)", fname,
           Xn->rows, u->m.n);
  if (s == NNFT_ENONFINITE) /* the points were checked finite: the values overflowed */
    l_error(L, "%s: the kernel produced NaN or Inf (overflow?)", fname);
  if (s == NNFT_EDOM && !u->m.phi.data)
    l_error(L, "%s: the modes were released while the kernel was evaluated", fname);
  if (s) l_status_error(L, s, fname, "evaluating the kernel");
  return 1;
}

/* modes:project(y) -> k x c target coefficients y_k = (1/n) Σ_i y_i φ_k(x_i) */
static int modes_project(lua_State *L) {
  const char *fname = "nnft.Modes:project";
  l_modes *u = check_modes(L, 1);
  const nnft_mat *y = l_argmat(L, 2, fname, "y");
  if (y->rows != u->m.n || y->cols == 0)
    l_error(L, "%s: y is %zu x %zu but the modes are on %zu points (one row per point)", fname,
           y->rows, y->cols, u->m.n);
  l_check_finite(L, y, fname, "y");
  nnft_mat *out = l_newmat(L, u->m.k, y->cols);
  nnft_status s = nnft_mercer_project(&u->m, y, out);
  if (s) l_status_error(L, s, fname, NULL);
  return 1;
}

static int modes_tostring(lua_State *L) {
  l_modes *u = luaL_checkudata(L, 1, L_MODES_NAME);
  char buf[200];
  if (!u->m.phi.data)
    snprintf(buf, sizeof buf, "nnft.Modes (released)");
  else
    snprintf(buf, sizeof buf, "nnft.Modes(n=%zu, k=%zu, lambda_1=%.6g, lambda_k=%.6g%s)", u->m.n,
             u->m.k, u->m.values.data[0], u->m.values.data[u->m.k - 1],
             u->has_kernel ? "" : ", from a matrix");
  lua_pushstring(L, buf);
  return 1;
}

static const luaL_Reg modes_methods[] = {{"values", modes_values},
                                         {"lambda", modes_values},
                                         {"functions", modes_functions},
                                         {"phi", modes_functions},
                                         {"count", modes_count},
                                         {"size", modes_size},
                                         {"extend", modes_extend},
                                         {"project", modes_project},
                                         {"release", modes_release},
                                         {NULL, NULL}};
static const luaL_Reg modes_meta[] = {{"__tostring", modes_tostring},
                                      {"__gc", modes_release},
                                      {"__close", modes_release},
                                      {NULL, NULL}};

void l_open_mercer(lua_State *L) {
  static const luaL_Reg work_meta[] = {{"__gc", work_gc}, {NULL, NULL}};
  static const luaL_Reg no_methods[] = {{NULL, NULL}};
  static const luaL_Reg kernel_methods[] = {{"mercer", mercer_kernel}, {NULL, NULL}};
  l_newclass(L, L_MODES_NAME, modes_methods, modes_meta);
  l_newclass(L, L_WORK_NAME, no_methods, work_meta);
  l_kernel_add_methods(L, kernel_methods);
  lua_pushcfunction(L, mercer_kernel);
  lua_setfield(L, -2, "mercer");
  lua_pushcfunction(L, mercer_matrix);
  lua_setfield(L, -2, "mercer_matrix");
}
