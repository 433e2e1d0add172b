#include "l_util.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "nnft_alloc.h"

/* The userdata: the matrix header; for a view the parent is user value 1, and `root` is the Mat
 * that owns the storage (NULL for an owner, or for a view of storage owned by another type).
 * The user-value chain keeps root's userdata alive as long as the view lives, so root may be
 * read; once root is released (:release(), <close>), its views are released with it. */
typedef struct l_mat {
  nnft_mat m;
  struct l_mat *root;
} l_mat;

/* The Mat metatable, cached in the registry under a light-userdata key: looking it up by name
 * (luaL_testudata) interns a string on every call, which dominates small operations. */
static const char mat_mt_key = 0;

static void push_mat_metatable(lua_State *L) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &mat_mt_key) != LUA_TNIL) return;
  lua_pop(L, 1);
  luaL_getmetatable(L, L_MAT_NAME);
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &mat_mt_key);
}

static l_mat *test_lmat(lua_State *L, int idx) {
  l_mat *u = lua_touserdata(L, idx);
  if (!u || !lua_getmetatable(L, idx)) return NULL;
  push_mat_metatable(L);
  int is_mat = lua_rawequal(L, -1, -2);
  lua_pop(L, 2);
  if (!is_mat) return NULL;
  if (u && u->root && !u->root->m.data && u->m.data)
    memset(&u->m, 0, sizeof u->m); /* the storage went with its owner: never read it again */
  return u;
}

nnft_mat *l_testmat(lua_State *L, int idx) {
  l_mat *u = test_lmat(L, idx);
  return u ? &u->m : NULL;
}

nnft_mat *l_checkmat(lua_State *L, int idx) {
  l_mat *u = test_lmat(L, idx);
  if (!u) luaL_typeerror(L, idx, "nnft.Mat");
  if (!u->m.data) luaL_argerror(L, idx, "matrix has been released (closed)");
  return &u->m;
}

/* A new Mat userdata with `extra` bytes after the header (for inline storage). */
static l_mat *push_userdata(lua_State *L, size_t extra) {
  l_mat *u = lua_newuserdatauv(L, sizeof *u + extra, 1);
  memset(u, 0, sizeof *u);
  push_mat_metatable(L);
  lua_setmetatable(L, -2);
  return u;
}

static l_mat *push_empty(lua_State *L) { return push_userdata(L, 0); }

/* Matrices of at most this many bytes live inside their userdata (64-byte aligned within it):
 * one Lua allocation instead of two, which matters in loops over small matrices. */
#define L_MAT_INLINE_BYTES 512

nnft_mat *l_newmat(lua_State *L, size_t rows, size_t cols) {
  if (rows <= L_MAT_INLINE_BYTES / sizeof(double) && cols <= L_MAT_INLINE_BYTES / sizeof(double) &&
      rows * cols * sizeof(double) <= L_MAT_INLINE_BYTES) {
    size_t bytes = rows * cols * sizeof(double);
    l_mat *u = push_userdata(L, bytes + NNFT_ALIGN);
    uintptr_t p = (uintptr_t)(u + 1);
    u->m.data = (double *)((p + NNFT_ALIGN - 1) / NNFT_ALIGN * NNFT_ALIGN);
    memset(u->m.data, 0, bytes);
    u->m.rows = rows;
    u->m.cols = cols;
    u->m.ld = rows ? rows : 1;
    u->m.owns = 0; /* the storage goes with the userdata */
    return &u->m;
  }
  l_mat *u = push_empty(L); /* owned by Lua before anything can fail */
  nnft_status s = nnft_mat_alloc(rows, cols, &u->m);
  if (s == NNFT_OK) return &u->m;
  /* lua_pushfstring knows neither %zu nor %.3g: format the message with snprintf. */
  char msg[200];
  double gib = (double)rows * (double)cols * 8.0 / 1073741824.0;
  if (s == NNFT_ENOMEM)
    snprintf(msg, sizeof msg, "cannot allocate a %zu x %zu matrix (%.3g GiB): out of memory",
             rows, cols, gib);
  else if (rows > 2147483647u || cols > 2147483647u)
    snprintf(msg, sizeof msg, "cannot allocate a %zu x %zu matrix: a dimension exceeds the BLAS "
             "limit of 2147483647", rows, cols);
  else
    snprintf(msg, sizeof msg, "cannot allocate a %zu x %zu matrix (%.3g GiB): larger than this "
             "machine's memory (%.3g GiB)", rows, cols, gib,
             (double)nnft_mat_max_bytes() / 1073741824.0);
  luaL_error(L, "%s", msg);
  return NULL;
}

nnft_mat *l_pushview(lua_State *L, int parent_idx, const nnft_mat *view) {
  parent_idx = lua_absindex(L, parent_idx);
  l_mat *parent = luaL_testudata(L, parent_idx, L_MAT_NAME);
  l_mat *u = push_empty(L);
  u->m = *view;
  u->m.owns = 0;
  u->root = parent ? (parent->root ? parent->root : parent) : NULL;
  lua_pushvalue(L, parent_idx); /* keep the storage's owner alive */
  lua_setiuservalue(L, -2, 1);
  return &u->m;
}

nnft_mat *l_pushcopy(lua_State *L, const nnft_mat *m) {
  nnft_mat *c = l_newmat(L, m->rows, m->cols);
  nnft_mat_copy(m, c);
  return c;
}

/* Fill a new Mat from the table at idx: {{..},{..}} (rows) or {a, b, c} (a column). */
static nnft_mat *mat_from_table(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  size_t rows = lua_rawlen(L, idx), cols = 1;
  int nested = 0;
  if (rows > 0) {
    nested = lua_rawgeti(L, idx, 1) == LUA_TTABLE;
    if (nested) cols = lua_rawlen(L, -1);
    lua_pop(L, 1);
  }
  if (nested && cols == 0) luaL_error(L, "nnft.mat: row 1 is empty");
  nnft_mat *m = l_newmat(L, rows, rows ? cols : 0);
  for (size_t i = 0; i < rows; i++) {
    int t = lua_rawgeti(L, idx, (lua_Integer)i + 1);
    if (nested) {
      if (t != LUA_TTABLE)
        luaL_error(L, "nnft.mat: row %I is a %s, expected a table", (lua_Integer)i + 1,
                   luaL_typename(L, -1));
      if (lua_rawlen(L, -1) != cols)
        luaL_error(L, "nnft.mat: row %I has %I entries, row 1 has %I", (lua_Integer)i + 1,
                   (lua_Integer)lua_rawlen(L, -1), (lua_Integer)cols);
      for (size_t j = 0; j < cols; j++) {
        int isnum = lua_rawgeti(L, -1, (lua_Integer)j + 1) == LUA_TNUMBER;
        double v = lua_tonumber(L, -1);
        if (!isnum)
          luaL_error(L, "nnft.mat: entry (%I, %I) is a %s, expected a number",
                     (lua_Integer)i + 1, (lua_Integer)j + 1, luaL_typename(L, -1));
        NNFT_AT(m, i, j) = v;
        lua_pop(L, 1);
      }
    } else {
      int isnum = t == LUA_TNUMBER;
      double v = lua_tonumber(L, -1);
      if (!isnum)
        luaL_error(L, "nnft.mat: entry %I is a %s, expected a number", (lua_Integer)i + 1,
                   luaL_typename(L, -1));
      m->data[i] = v;
    }
    lua_pop(L, 1);
  }
  return m;
}

nnft_mat *l_tomat(lua_State *L, int idx, int *pushed) {
  *pushed = 0;
  nnft_mat *m = l_testmat(L, idx);
  if (m) {
    if (!m->data) luaL_argerror(L, idx, "matrix has been released (closed)");
    return m;
  }
  if (lua_type(L, idx) == LUA_TNUMBER) {
    double v = lua_tonumber(L, idx);
    m = l_newmat(L, 1, 1);
    m->data[0] = v;
    *pushed = 1;
    return m;
  }
  if (lua_type(L, idx) == LUA_TTABLE) {
    m = mat_from_table(L, idx);
    *pushed = 1;
    return m;
  }
  luaL_typeerror(L, idx, "nnft.Mat, number or table");
  return NULL;
}

int l_error(lua_State *L, const char *fmt, ...) {
  char buf[1024]; /* C's printf, not lua_pushfstring: bindings need %zu, %.3g, %e ... */
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  return luaL_error(L, "%s", buf);
}

int l_status_error(lua_State *L, nnft_status s, const char *fname, const char *detail) {
  if (s == NNFT_EINTR) nnft_interrupt_flag = 0;
  if (detail && *detail) return luaL_error(L, "%s: %s: %s", fname, nnft_strerror(s), detail);
  return luaL_error(L, "%s: %s", fname, nnft_strerror(s));
}

size_t l_checksize(lua_State *L, int arg, int positive) {
  int isint;
  lua_Integer v = lua_tointegerx(L, arg, &isint);
  if (!isint) {
    if (lua_type(L, arg) == LUA_TNUMBER)
      luaL_argerror(L, arg, lua_pushfstring(L, "expected an integer size, got %f",
                                            lua_tonumber(L, arg)));
    luaL_typeerror(L, arg, "integer");
  }
  if (v < 0 || (positive && v == 0))
    luaL_argerror(L, arg, lua_pushfstring(L, "size must be %s, got %I",
                                          positive ? "positive" : "non-negative", v));
  return (size_t)v;
}

void l_check_finite(lua_State *L, const nnft_mat *m, const char *fname, const char *what) {
  if (nnft_mat_all_finite(m)) return;
  for (size_t j = 0; j < m->cols; j++)
    for (size_t i = 0; i < m->rows; i++)
      if (!isfinite(NNFT_AT(m, i, j)))
        l_error(L, "%s: %s contains NaN or Inf (row %zu, column %zu)", fname, what, i + 1, j + 1);
}

nnft_mat *l_argmat(lua_State *L, int idx, const char *fname, const char *name) {
  int pushed;
  if (lua_isnoneornil(L, idx)) l_error(L, "%s: %s is required", fname, name);
  if (!l_testmat(L, idx) && lua_type(L, idx) != LUA_TTABLE && lua_type(L, idx) != LUA_TNUMBER)
    l_error(L, "%s: %s must be an nnft.Mat or a table of rows, got %s", fname, name,
            luaL_typename(L, idx));
  nnft_mat *m = l_tomat(L, idx, &pushed);
  if (pushed) lua_replace(L, idx);
  return m;
}

nnft_mat *l_argpoints(lua_State *L, int idx, const nnft_kernel *k, const char *fname,
                      const char *name) {
  nnft_mat *X = l_argmat(L, idx, fname, name);
  if (X->rows == 0 || X->cols == 0)
    l_error(L, "%s: %s is %zu x %zu; rows are points and there must be at least one", fname,
            name, X->rows, X->cols);
  size_t dim = 0;
  if (k && nnft_kernel_input_dim(k, &dim) == NNFT_OK && dim && X->cols != dim)
    l_error(L, "%s: %s has %zu columns but the kernel takes points of dimension %zu (rows are "
               "points)", fname, name, X->cols, dim);
  l_check_finite(L, X, fname, name);
  return X;
}

void l_check_same_shape(lua_State *L, const nnft_mat *a, const nnft_mat *b, const char *fname) {
  if (a->rows != b->rows || a->cols != b->cols)
    luaL_error(L, "%s: shapes do not conform (%I x %I vs %I x %I)", fname, (lua_Integer)a->rows,
               (lua_Integer)a->cols, (lua_Integer)b->rows, (lua_Integer)b->cols);
}

void l_check_options(lua_State *L, int idx, const char *fname, const char *const allowed[]) {
  if (lua_isnoneornil(L, idx)) return;
  idx = lua_absindex(L, idx);
  if (!lua_istable(L, idx)) luaL_error(L, "%s: options must be a table, got %s", fname,
                                       luaL_typename(L, idx));
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    int ok = 0;
    if (lua_type(L, -1) == LUA_TSTRING) {
      const char *k = lua_tostring(L, -1);
      for (const char *const *a = allowed; *a; a++)
        if (strcmp(*a, k) == 0) { ok = 1; break; }
    }
    if (!ok) {
      const char *key = luaL_tolstring(L, -1, NULL); /* key stays below the buffer */
      luaL_Buffer b;
      luaL_buffinit(L, &b);
      for (const char *const *a = allowed; *a; a++) {
        if (a != allowed) luaL_addstring(&b, ", ");
        luaL_addstring(&b, *a);
      }
      if (!allowed[0]) luaL_addstring(&b, "none");
      luaL_pushresult(&b);
      luaL_error(L, "%s: unknown option '%s' (allowed: %s)", fname, key, lua_tostring(L, -1));
    }
  }
}

/* Raise "bad option 'key' to 'fn' (msg)", naming the running C function as luaL_argerror does. */
static int opt_error(lua_State *L, const char *key, const char *fmt, ...) {
  lua_Debug ar;
  const char *fn = "?";
  if (lua_getstack(L, 0, &ar) && lua_getinfo(L, "n", &ar) && ar.name) fn = ar.name;
  va_list ap;
  va_start(ap, fmt);
  const char *msg = lua_pushvfstring(L, fmt, ap);
  va_end(ap);
  return luaL_error(L, "bad option '%s' to '%s' (%s)", key, fn, msg);
}

/* Push the option `key` of the table at idx (nil when there is no table). */
static int get_opt(lua_State *L, int idx, const char *key) {
  if (!lua_istable(L, idx)) {
    lua_pushnil(L);
    return LUA_TNIL;
  }
  return lua_getfield(L, idx, key);
}

double l_opt_number(lua_State *L, int idx, const char *key, double def) {
  idx = lua_absindex(L, idx);
  int t = get_opt(L, idx, key);
  double v = def;
  if (t != LUA_TNIL) {
    int isnum;
    v = lua_tonumberx(L, -1, &isnum);
    if (!isnum || t != LUA_TNUMBER)
      opt_error(L, key, "number expected, got %s", luaL_typename(L, -1));
  }
  lua_pop(L, 1);
  return v;
}

lua_Integer l_opt_integer(lua_State *L, int idx, const char *key, lua_Integer def) {
  idx = lua_absindex(L, idx);
  int t = get_opt(L, idx, key);
  lua_Integer v = def;
  if (t != LUA_TNIL) {
    int isint;
    v = lua_tointegerx(L, -1, &isint);
    if (!isint || t != LUA_TNUMBER)
      opt_error(L, key, "integer expected, got %s",
                t == LUA_TNUMBER ? lua_tostring(L, -1) : luaL_typename(L, -1));
  }
  lua_pop(L, 1);
  return v;
}

int l_opt_boolean(lua_State *L, int idx, const char *key, int def) {
  idx = lua_absindex(L, idx);
  int t = get_opt(L, idx, key);
  int v = def;
  if (t != LUA_TNIL) {
    if (t != LUA_TBOOLEAN)
      opt_error(L, key, "boolean expected, got %s", luaL_typename(L, -1));
    v = lua_toboolean(L, -1);
  }
  lua_pop(L, 1);
  return v;
}

const char *l_opt_string(lua_State *L, int idx, const char *key, const char *def) {
  idx = lua_absindex(L, idx);
  int t = get_opt(L, idx, key);
  const char *v = def;
  if (t != LUA_TNIL) {
    if (t != LUA_TSTRING)
      opt_error(L, key, "string expected, got %s", luaL_typename(L, -1));
    v = lua_tostring(L, -1); /* the options table keeps the string alive */
  }
  lua_pop(L, 1);
  return v;
}

int l_opt_choice(lua_State *L, int idx, const char *key, const char *def,
                 const char *const choices[]) {
  const char *v = l_opt_string(L, idx, key, def);
  for (int k = 0; choices[k]; k++)
    if (strcmp(v, choices[k]) == 0) return k;
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (int k = 0; choices[k]; k++) {
    if (k) luaL_addstring(&b, ", ");
    luaL_addstring(&b, choices[k]);
  }
  luaL_pushresult(&b);
  opt_error(L, key, "one of %s expected, got '%s'", lua_tostring(L, -1), v);
  return -1;
}

void l_newclass(lua_State *L, const char *tname, const luaL_Reg *methods,
                const luaL_Reg *metamethods) {
  if (!luaL_newmetatable(L, tname)) { /* already registered (module loaded twice) */
    lua_pop(L, 1);
    return;
  }
  luaL_setfuncs(L, metamethods, 0);
  lua_newtable(L);
  luaL_setfuncs(L, methods, 0);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
}

void l_check_interrupt(lua_State *L) {
  if (nnft_interrupted()) {
    nnft_interrupt_flag = 0;
    luaL_error(L, "interrupted");
  }
}
