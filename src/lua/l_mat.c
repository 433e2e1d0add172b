/* nnft.mat and the nnft.Mat userdata: dense float64 column-major matrices. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "l_util.h"
#include "nnft_alloc.h"

/* ---------------- constructors ---------------- */

/* nnft.mat(t) | nnft.mat(m) (a copy) | nnft.mat(rows, cols [, value]). */
static int mat_new(lua_State *L) {
  const int base = 1;
  if (lua_type(L, base) == LUA_TTABLE) {
    int pushed;
    nnft_mat *m = l_tomat(L, base, &pushed);
    (void)m;
    return 1;
  }
  if (l_testmat(L, base)) {
    l_pushcopy(L, l_checkmat(L, base));
    return 1;
  }
  size_t r = l_checksize(L, base, 0), c = l_checksize(L, base + 1, 0);
  double v = luaL_optnumber(L, base + 2, 0.0);
  nnft_mat *m = l_newmat(L, r, c);
  if (v != 0.0) nnft_mat_fill(m, v);
  return 1;
}

/* __call of the nnft.mat table: drop the table itself, then construct. */
static int mat_call(lua_State *L) {
  lua_remove(L, 1);
  return mat_new(L);
}

static int mat_zeros(lua_State *L) {
  size_t r = l_checksize(L, 1, 0), c = l_checksize(L, 2, 0);
  l_newmat(L, r, c);
  return 1;
}

static int mat_ones(lua_State *L) {
  size_t r = l_checksize(L, 1, 0), c = l_checksize(L, 2, 0);
  nnft_mat_fill(l_newmat(L, r, c), 1.0);
  return 1;
}

static int mat_full(lua_State *L) {
  size_t r = l_checksize(L, 1, 0), c = l_checksize(L, 2, 0);
  double v = luaL_checknumber(L, 3);
  nnft_mat_fill(l_newmat(L, r, c), v);
  return 1;
}

static int mat_eye(lua_State *L) {
  size_t r = l_checksize(L, 1, 0);
  size_t c = lua_isnoneornil(L, 2) ? r : l_checksize(L, 2, 0);
  nnft_mat_eye(l_newmat(L, r, c));
  return 1;
}

/* n equally spaced values from a to b inclusive, as an n x 1 column. */
static int mat_linspace(lua_State *L) {
  double a = luaL_checknumber(L, 1), b = luaL_checknumber(L, 2);
  size_t n = l_checksize(L, 3, 1);
  if (!isfinite(a) || !isfinite(b)) luaL_error(L, "nnft.mat.linspace: end points must be finite");
  nnft_mat *m = l_newmat(L, n, 1);
  for (size_t i = 0; i < n; i++)
    m->data[i] = n == 1 ? a : a + (b - a) * (double)i / (double)(n - 1);
  if (n > 1) m->data[n - 1] = b; /* exact end point */
  return 1;
}

/* n values 10^a ... 10^b, equally spaced in the exponent. */
static int mat_logspace(lua_State *L) {
  double a = luaL_checknumber(L, 1), b = luaL_checknumber(L, 2);
  size_t n = l_checksize(L, 3, 1);
  if (!isfinite(a) || !isfinite(b)) luaL_error(L, "nnft.mat.logspace: exponents must be finite");
  nnft_mat *m = l_newmat(L, n, 1);
  for (size_t i = 0; i < n; i++)
    m->data[i] = pow(10.0, n == 1 ? a : a + (b - a) * (double)i / (double)(n - 1));
  return 1;
}

/* Matrix whose (i, j) entry is f(i, j), 1-based. */
static int mat_fromfunction(lua_State *L) {
  size_t r = l_checksize(L, 1, 0), c = l_checksize(L, 2, 0);
  luaL_checktype(L, 3, LUA_TFUNCTION);
  nnft_mat *m = l_newmat(L, r, c);
  for (size_t j = 0; j < c; j++)
    for (size_t i = 0; i < r; i++) {
      lua_pushvalue(L, 3);
      lua_pushinteger(L, (lua_Integer)i + 1);
      lua_pushinteger(L, (lua_Integer)j + 1);
      lua_call(L, 2, 1);
      if (lua_type(L, -1) != LUA_TNUMBER)
        luaL_error(L, "nnft.mat.fromfunction: f(%I, %I) returned %s, expected a number",
                   (lua_Integer)i + 1, (lua_Integer)j + 1, luaL_typename(L, -1));
      double v = lua_tonumber(L, -1);
      NNFT_AT(m, i, j) = v;
      lua_pop(L, 1);
    }
  return 1;
}

/* nnft.mat.fromtable(t): only tables (nnft.mat(...) also takes sizes and matrices). */
static int mat_fromtable(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  return mat_new(L);
}

static int mat_ismat(lua_State *L) {
  lua_pushboolean(L, l_testmat(L, 1) != NULL);
  return 1;
}

static int cat_impl(lua_State *L, int vertical) {
  int n = lua_gettop(L);
  const char *fname = vertical ? "nnft.mat.vcat" : "nnft.mat.hcat";
  if (n == 1 && lua_istable(L, 1) && !l_testmat(L, 1)) { /* a list of matrices */
    int len = (int)lua_rawlen(L, 1);
    luaL_checkstack(L, len, fname);
    for (int k = 1; k <= len; k++) lua_rawgeti(L, 1, k);
    lua_remove(L, 1);
    n = len;
  }
  if (n == 0) luaL_error(L, "%s: nothing to concatenate", fname);
  const nnft_mat **parts = lua_newuserdatauv(L, sizeof *parts * (size_t)n, 0);
  for (int k = 0; k < n; k++) parts[k] = l_checkmat(L, k + 1);
  size_t r, c;
  nnft_status s = nnft_mat_cat_shape(parts, (size_t)n, vertical, &r, &c);
  if (s == NNFT_EDIM)
    luaL_error(L, "%s: every part must have the same number of %s", fname,
               vertical ? "columns" : "rows");
  if (s) l_status_error(L, s, fname, NULL);
  nnft_mat *out = l_newmat(L, r, c);
  s = vertical ? nnft_mat_vcat(parts, (size_t)n, out) : nnft_mat_hcat(parts, (size_t)n, out);
  if (s) l_status_error(L, s, fname, NULL);
  return 1;
}
static int mat_hcat(lua_State *L) { return cat_impl(L, 0); }
static int mat_vcat(lua_State *L) { return cat_impl(L, 1); }

/* ---------------- shape and elements ---------------- */

static int m_rows(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)l_checkmat(L, 1)->rows);
  return 1;
}
static int m_cols(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)l_checkmat(L, 1)->cols);
  return 1;
}
static int m_shape(lua_State *L) {
  nnft_mat *m = l_checkmat(L, 1);
  lua_pushinteger(L, (lua_Integer)m->rows);
  lua_pushinteger(L, (lua_Integer)m->cols);
  return 2;
}
static int m_size(lua_State *L) {
  nnft_mat *m = l_checkmat(L, 1);
  lua_pushinteger(L, (lua_Integer)(m->rows * m->cols));
  return 1;
}

/* 1-based index argument within [1, n]; returns it 0-based. */
static size_t check_index(lua_State *L, int arg, size_t n, const char *what) {
  lua_Integer i = luaL_checkinteger(L, arg);
  if (i < 1 || (size_t)i > n)
    luaL_argerror(L, arg, lua_pushfstring(L, "%s index %I out of range 1..%I", what, i,
                                          (lua_Integer)n));
  return (size_t)(i - 1);
}

/* Element (i, j), 0-based, from the index arguments at 2 (and 3): m:get(i, j), or m:get(k) on a
 * vector (one column or one row). Returns the argument where the value of :set sits. */
static int check_element(lua_State *L, nnft_mat *m, int nargs, size_t *i, size_t *j,
                         const char *usage) {
  if (nargs == 1 && (m->cols == 1 || m->rows == 1)) {
    size_t k = check_index(L, 2, m->rows * m->cols, "element");
    *i = m->cols == 1 ? k : 0;
    *j = m->cols == 1 ? 0 : k;
    return 3;
  }
  if (nargs == 1)
    luaL_error(L, "%s: one index needs a vector (n x 1 or 1 x n); this matrix is %I x %I, "
                  "use %s", usage, (lua_Integer)m->rows, (lua_Integer)m->cols, usage);
  *i = check_index(L, 2, m->rows, "row");
  *j = check_index(L, 3, m->cols, "column");
  return 4;
}

static int m_get(lua_State *L) {
  nnft_mat *m = l_checkmat(L, 1);
  size_t i, j;
  check_element(L, m, lua_isnoneornil(L, 3) ? 1 : 2, &i, &j, "m:get(row, column)");
  lua_pushnumber(L, NNFT_AT(m, i, j));
  return 1;
}

static int m_set(lua_State *L) {
  nnft_mat *m = l_checkmat(L, 1);
  size_t i, j;
  int varg = check_element(L, m, lua_gettop(L) == 3 ? 1 : 2, &i, &j, "m:set(row, column, value)");
  NNFT_AT(m, i, j) = luaL_checknumber(L, varg);
  lua_settop(L, 1);
  return 1;
}

static int m_row(lua_State *L) {
  nnft_mat *m = l_checkmat(L, 1), v;
  size_t i = check_index(L, 2, m->rows, "row");
  nnft_mat_view(m, i, 0, 1, m->cols, &v);
  l_pushview(L, 1, &v);
  return 1;
}

static int m_col(lua_State *L) {
  nnft_mat *m = l_checkmat(L, 1), v;
  size_t j = check_index(L, 2, m->cols, "column");
  nnft_mat_view(m, 0, j, m->rows, 1, &v);
  l_pushview(L, 1, &v);
  return 1;
}

static int m_block(lua_State *L) {
  nnft_mat *m = l_checkmat(L, 1), v;
  size_t i = check_index(L, 2, m->rows, "row"), j = check_index(L, 3, m->cols, "column");
  size_t nr = l_checksize(L, 4, 0), nc = l_checksize(L, 5, 0);
  if (nnft_mat_view(m, i, j, nr, nc, &v))
    luaL_error(L, "block: a %I x %I block at (%I, %I) does not fit in a %I x %I matrix",
               (lua_Integer)nr, (lua_Integer)nc, (lua_Integer)i + 1, (lua_Integer)j + 1,
               (lua_Integer)m->rows, (lua_Integer)m->cols);
  l_pushview(L, 1, &v);
  return 1;
}

static int m_copy(lua_State *L) {
  l_pushcopy(L, l_checkmat(L, 1));
  return 1;
}

static int m_transpose(lua_State *L) {
  nnft_mat *m = l_checkmat(L, 1);
  nnft_mat *t = l_newmat(L, m->cols, m->rows);
  nnft_mat_transpose(m, t);
  return 1;
}

static int m_fill(lua_State *L) {
  nnft_mat *m = l_checkmat(L, 1);
  nnft_mat_fill(m, luaL_checknumber(L, 2));
  lua_settop(L, 1);
  return 1;
}

/* m:assign(src): copy src's values into m (same shape), e.g. into a view. */
static int m_assign(lua_State *L) {
  nnft_mat *m = l_checkmat(L, 1);
  int pushed;
  nnft_mat *src = l_tomat(L, 2, &pushed);
  if (src->rows == 1 && src->cols == 1) nnft_mat_fill(m, src->data[0]);
  else {
    l_check_same_shape(L, m, src, "assign");
    nnft_status s = nnft_mat_copy(src, m); /* overlapping blocks go through a temporary */
    if (s) l_status_error(L, s, "assign", NULL);
  }
  lua_settop(L, 1);
  return 1;
}

static int m_totable(lua_State *L) {
  nnft_mat *m = l_checkmat(L, 1);
  int flat = lua_toboolean(L, 2);
  if (flat) { /* column-major order; for vectors simply their entries */
    size_t n = m->rows * m->cols;
    lua_createtable(L, n > 1u << 30 ? 0 : (int)n, 0);
    lua_Integer k = 1;
    for (size_t j = 0; j < m->cols; j++)
      for (size_t i = 0; i < m->rows; i++) {
        lua_pushnumber(L, NNFT_AT(m, i, j));
        lua_rawseti(L, -2, k++);
      }
    return 1;
  }
  lua_createtable(L, m->rows > 1u << 30 ? 0 : (int)m->rows, 0);
  for (size_t i = 0; i < m->rows; i++) {
    lua_createtable(L, m->cols > 1u << 30 ? 0 : (int)m->cols, 0);
    for (size_t j = 0; j < m->cols; j++) {
      lua_pushnumber(L, NNFT_AT(m, i, j));
      lua_rawseti(L, -2, (lua_Integer)j + 1);
    }
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  return 1;
}

/* ---------------- arithmetic ---------------- */

/* "nnft.Mat" or another userdata's __name, else the basic type name. */
static const char *type_name(lua_State *L, int idx) {
  if (l_testmat(L, idx)) return "nnft.Mat";
  int t = luaL_getmetafield(L, idx, "__name"); /* pushes nothing when absent */
  if (t == LUA_TSTRING) {
    const char *n = lua_tostring(L, -1); /* the metatable keeps it alive */
    lua_pop(L, 1);
    return n;
  }
  if (t != LUA_TNIL) lua_pop(L, 1);
  return luaL_typename(L, idx);
}

static int arith(lua_State *L, nnft_binop op, const char *opname) {
  nnft_mat *a = l_testmat(L, 1), *b = l_testmat(L, 2);
  if (a && !a->data) luaL_argerror(L, 1, "matrix has been released (closed)");
  if (b && !b->data) luaL_argerror(L, 2, "matrix has been released (closed)");
  if (a && b) {
    if (b->rows == 1 && b->cols == 1 && !(a->rows == 1 && a->cols == 1)) {
      nnft_mat *c = l_newmat(L, a->rows, a->cols);
      nnft_mat_scalar_op(op, a, b->data[0], 0, c);
      return 1;
    }
    if (a->rows == 1 && a->cols == 1 && !(b->rows == 1 && b->cols == 1)) {
      nnft_mat *c = l_newmat(L, b->rows, b->cols);
      nnft_mat_scalar_op(op, b, a->data[0], 1, c);
      return 1;
    }
    if (a->rows != b->rows || a->cols != b->cols)
      luaL_error(L, "nnft.Mat %s: shapes do not conform (%I x %I vs %I x %I)", opname,
                 (lua_Integer)a->rows, (lua_Integer)a->cols, (lua_Integer)b->rows,
                 (lua_Integer)b->cols);
    nnft_mat *c = l_newmat(L, a->rows, a->cols);
    nnft_mat_binop(op, a, b, c);
    return 1;
  }
  if (a && lua_type(L, 2) == LUA_TNUMBER) {
    double s = lua_tonumber(L, 2);
    nnft_mat *c = l_newmat(L, a->rows, a->cols);
    nnft_mat_scalar_op(op, a, s, 0, c);
    return 1;
  }
  if (b && lua_type(L, 1) == LUA_TNUMBER) {
    double s = lua_tonumber(L, 1);
    nnft_mat *c = l_newmat(L, b->rows, b->cols);
    nnft_mat_scalar_op(op, b, s, 1, c);
    return 1;
  }
  return luaL_error(L, "nnft.Mat %s: cannot combine %s with %s", opname, type_name(L, 1),
                    type_name(L, 2));
}

static int m_add(lua_State *L) { return arith(L, NNFT_OP_ADD, "+"); }
static int m_sub(lua_State *L) { return arith(L, NNFT_OP_SUB, "-"); }

static int m_div(lua_State *L) {
  if (l_testmat(L, 2) && l_testmat(L, 1))
    return luaL_error(L, "nnft.Mat /: matrix / matrix is ambiguous; use a:ediv(b) for "
                         "elementwise division or nnft.linalg.solve(b, a) for a solve");
  return arith(L, NNFT_OP_DIV, "/");
}

static int m_emul(lua_State *L) { return arith(L, NNFT_OP_MUL, "emul"); }
static int m_ediv(lua_State *L) { return arith(L, NNFT_OP_DIV, "ediv"); }
static int m_epow(lua_State *L) { return arith(L, NNFT_OP_POW, "^"); }

/* a * b: matrix product (BLAS) for two matrices, scaling otherwise. */
static int m_mul(lua_State *L) {
  nnft_mat *a = l_testmat(L, 1), *b = l_testmat(L, 2);
  if (!(a && b)) return arith(L, NNFT_OP_MUL, "*");
  if (!a->data || !b->data) luaL_error(L, "nnft.Mat *: matrix has been released (closed)");
  if (a->cols != b->rows)
    luaL_error(L, "nnft.Mat *: inner dimensions differ (%I x %I times %I x %I); * is the matrix "
                  "product, a:emul(b) the elementwise one", (lua_Integer)a->rows,
               (lua_Integer)a->cols, (lua_Integer)b->rows, (lua_Integer)b->cols);
  nnft_mat *c = l_newmat(L, a->rows, b->cols);
  nnft_status s = nnft_mat_gemm(1.0, a, 0, b, 0, 0.0, c);
  if (s) l_status_error(L, s, "nnft.Mat *", NULL);
  return 1;
}

static int m_unm(lua_State *L) {
  nnft_mat *a = l_checkmat(L, 1);
  nnft_mat *c = l_newmat(L, a->rows, a->cols);
  nnft_mat_map(NNFT_FN_NEG, a, c);
  return 1;
}

/* a:ata() = aᵀa and a:aat() = aaᵀ, symmetric, through BLAS dsyrk. */
static int syrk_impl(lua_State *L, int trans) {
  nnft_mat *a = l_checkmat(L, 1);
  size_t n = trans ? a->cols : a->rows;
  nnft_mat *c = l_newmat(L, n, n);
  nnft_status s = nnft_mat_syrk(a, trans, c);
  if (s) l_status_error(L, s, trans ? "ata" : "aat", NULL);
  return 1;
}
static int m_ata(lua_State *L) { return syrk_impl(L, 1); }
static int m_aat(lua_State *L) { return syrk_impl(L, 0); }

/* ---------------- elementwise functions ---------------- */

static int map_by_index(lua_State *L, int fn) {
  nnft_mat *a = l_checkmat(L, 1);
  nnft_mat *c = l_newmat(L, a->rows, a->cols);
  nnft_mat_map((nnft_unary_fn)fn, a, c);
  return 1;
}

static int m_map_upvalue(lua_State *L) {
  return map_by_index(L, (int)lua_tointeger(L, lua_upvalueindex(1)));
}

/* m:map(name) or m:map(function): elementwise function, by name (C) or a Lua function. */
static int m_map(lua_State *L) {
  nnft_mat *a = l_checkmat(L, 1);
  if (lua_type(L, 2) == LUA_TSTRING) {
    int fn = nnft_unary_lookup(lua_tostring(L, 2));
    if (fn < 0) luaL_argerror(L, 2, lua_pushfstring(L, "unknown function '%s'", lua_tostring(L, 2)));
    return map_by_index(L, fn);
  }
  luaL_checktype(L, 2, LUA_TFUNCTION);
  nnft_mat *c = l_newmat(L, a->rows, a->cols);
  for (size_t j = 0; j < a->cols; j++)
    for (size_t i = 0; i < a->rows; i++) {
      lua_pushvalue(L, 2);
      lua_pushnumber(L, NNFT_AT(a, i, j));
      lua_call(L, 1, 1);
      if (!l_testmat(L, 1)->data) /* f released A (or the matrix A is a view of) */
        luaL_error(L, "map: the matrix was released by the function while being mapped");
      if (lua_type(L, -1) != LUA_TNUMBER)
        luaL_error(L, "map: function returned %s for entry (%I, %I), expected a number",
                   luaL_typename(L, -1), (lua_Integer)i + 1, (lua_Integer)j + 1);
      double v = lua_tonumber(L, -1);
      NNFT_AT(c, i, j) = v;
      lua_pop(L, 1);
    }
  return 1;
}

/* ---------------- reductions and comparisons ---------------- */

static int reduce_impl(lua_State *L, nnft_reduce r, const char *name) {
  nnft_mat *a = l_checkmat(L, 1);
  lua_Integer dim = luaL_optinteger(L, 2, 0);
  if (dim < 0 || dim > 2)
    luaL_argerror(L, 2, "dim must be 1 (down the rows, per column) or 2 (across columns, per row)");
  nnft_mat *out;
  if (dim == 0) out = l_newmat(L, 1, 1);
  else if (dim == 1) out = l_newmat(L, 1, a->cols);
  else out = l_newmat(L, a->rows, 1);
  nnft_status s = nnft_mat_reduce(r, a, (int)dim, out);
  if (s == NNFT_EDOM)
    luaL_error(L, "%s: needs at least %d element%s per reduction (matrix is %I x %I)", name,
               r == NNFT_RED_VAR ? 2 : 1, r == NNFT_RED_VAR ? "s" : "", (lua_Integer)a->rows,
               (lua_Integer)a->cols);
  if (s) l_status_error(L, s, name, NULL);
  if (dim == 0) lua_pushnumber(L, out->data[0]);
  return 1;
}

static int m_sum(lua_State *L) { return reduce_impl(L, NNFT_RED_SUM, "sum"); }
static int m_mean(lua_State *L) { return reduce_impl(L, NNFT_RED_MEAN, "mean"); }
static int m_var(lua_State *L) { return reduce_impl(L, NNFT_RED_VAR, "var"); }
static int m_min(lua_State *L) { return reduce_impl(L, NNFT_RED_MIN, "min"); }
static int m_max(lua_State *L) { return reduce_impl(L, NNFT_RED_MAX, "max"); }

static int m_maxabsdiff(lua_State *L) {
  nnft_mat *a = l_checkmat(L, 1);
  int pushed;
  nnft_mat *b = l_tomat(L, 2, &pushed);
  l_check_same_shape(L, a, b, "maxabsdiff");
  double d;
  nnft_mat_max_abs_diff(a, b, &d);
  lua_pushnumber(L, d);
  return 1;
}

static int m_allclose(lua_State *L) {
  nnft_mat *a = l_checkmat(L, 1);
  double rtol = luaL_optnumber(L, 3, 1e-5), atol = luaL_optnumber(L, 4, 1e-8);
  int pushed;
  nnft_mat *b = l_tomat(L, 2, &pushed); /* may push a converted value: read options first */
  l_check_same_shape(L, a, b, "allclose");
  if (!(rtol >= 0) || !(atol >= 0)) luaL_error(L, "allclose: rtol and atol must be >= 0");
  int ok;
  nnft_mat_allclose(a, b, rtol, atol, &ok);
  lua_pushboolean(L, ok);
  return 1;
}

static int m_isfinite(lua_State *L) {
  lua_pushboolean(L, nnft_mat_all_finite(l_checkmat(L, 1)));
  return 1;
}

/* ---------------- printing and lifetime ---------------- */

/* numpy-like: a shape header, then the rows, entries in %.6g right-aligned to one common width
 * (the widest entry shown); beyond 10 rows / 8 columns only the first and last 4 rows / 3 columns
 * are shown, with "..." between. */
static int m_tostring(lua_State *L) {
  nnft_mat *m = l_testmat(L, 1);
  if (!m) return luaL_typeerror(L, 1, "nnft.Mat");
  if (!m->data) {
    lua_pushstring(L, "Mat (released)");
    return 1;
  }
  enum { RMAX = 10, CMAX = 8, EDGE_R = 4, EDGE_C = 3, CELL = 32 };
  size_t ri[RMAX], ci[CMAX], nr = 0, nc = 0; /* the rows and columns shown */
  int elide_r = m->rows > RMAX, elide_c = m->cols > CMAX;
  for (size_t i = 0; i < m->rows && nr < RMAX; i++) {
    if (elide_r && i == EDGE_R) i = m->rows - EDGE_R;
    ri[nr++] = i;
  }
  for (size_t j = 0; j < m->cols && nc < CMAX; j++) {
    if (elide_c && j == EDGE_C) j = m->cols - EDGE_C;
    ci[nc++] = j;
  }
  char cells[RMAX][CMAX][CELL];
  int width = elide_c ? 3 : 1; /* as wide as "..." when columns are elided */
  for (size_t a = 0; a < nr; a++)
    for (size_t b = 0; b < nc; b++) {
      int w = snprintf(cells[a][b], CELL, "%.6g", NNFT_AT(m, ri[a], ci[b]));
      if (w > width) width = w;
    }
  luaL_Buffer buf;
  luaL_buffinit(L, &buf);
  char line[64];
  snprintf(line, sizeof line, "Mat %zux%zu", m->rows, m->cols);
  luaL_addstring(&buf, line);
  if (nr == 0 || nc == 0) {
    luaL_addstring(&buf, " []");
    luaL_pushresult(&buf);
    return 1;
  }
  for (size_t a = 0; a < nr; a++) {
    if (elide_r && a == EDGE_R) luaL_addstring(&buf, "\n  ...");
    luaL_addstring(&buf, a == 0 ? "\n[[" : "\n [");
    for (size_t b = 0; b < nc; b++) {
      if (elide_c && b == EDGE_C) {
        snprintf(line, sizeof line, " %*s", width, "...");
        luaL_addstring(&buf, line);
      }
      snprintf(line, sizeof line, " %*s", width, cells[a][b]);
      luaL_addstring(&buf, line);
    }
    luaL_addstring(&buf, a + 1 == nr ? "]]" : "]");
  }
  luaL_pushresult(&buf);
  return 1;
}

/* 1 if the function at stack level `level` was called by the collector as a __gc finalizer. */
static int called_as_gc(lua_State *L, int level) {
  lua_Debug ar;
  return lua_getstack(L, level, &ar) && lua_getinfo(L, "n", &ar) && ar.name && ar.namewhat &&
         strcmp(ar.name, "__gc") == 0 && strcmp(ar.namewhat, "metamethod") == 0;
}

/* __close and m:release() share this idempotent release (a second call sees data NULL).
 * A finalizer (__gc of any object) can run inside any Lua allocation, e.g. while a binding
 * allocates its result with its inputs already checked; if that finalizer released one of those
 * inputs, the binding would go on to read freed memory. So an explicit release or close that
 * runs inside a finalizer is deferred: the matrix stays valid and is freed when it is itself
 * collected (by m_gc below). */
static int m_release(lua_State *L) {
  nnft_mat *m = l_testmat(L, 1);
  if (!m || !m->data) return 0;
  lua_Debug ar;
  for (int level = 1; lua_getstack(L, level, &ar); level++)
    if (called_as_gc(L, level)) return 0; /* inside a finalizer: defer to collection */
  nnft_mat_free(m);
  return 0;
}

/* __gc: the matrix is unreachable, so nothing can be using it: free at once (no stack walk). */
static int m_gc(lua_State *L) {
  nnft_mat *m = l_testmat(L, 1);
  if (m) nnft_mat_free(m);
  return 0;
}

static int m_len(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)l_checkmat(L, 1)->rows);
  return 1;
}

static const luaL_Reg mat_methods[] = {
    {"rows", m_rows}, {"cols", m_cols}, {"shape", m_shape}, {"size", m_size},
    {"get", m_get}, {"set", m_set}, {"row", m_row}, {"col", m_col}, {"block", m_block},
    {"copy", m_copy}, {"t", m_transpose}, {"fill", m_fill}, {"assign", m_assign},
    {"totable", m_totable}, {"emul", m_emul}, {"ediv", m_ediv}, {"epow", m_epow},
    {"ata", m_ata}, {"aat", m_aat}, {"map", m_map}, {"sum", m_sum}, {"mean", m_mean},
    {"var", m_var}, {"min", m_min}, {"max", m_max}, {"maxabsdiff", m_maxabsdiff},
    {"allclose", m_allclose}, {"isfinite", m_isfinite}, {"release", m_release},
    {NULL, NULL}};

static const luaL_Reg mat_meta[] = {
    {"__add", m_add}, {"__sub", m_sub}, {"__mul", m_mul}, {"__div", m_div},
    {"__unm", m_unm}, {"__pow", m_epow}, {"__len", m_len}, {"__tostring", m_tostring},
    {"__gc", m_gc}, {"__close", m_release}, {NULL, NULL}};

static const luaL_Reg mat_functions[] = {
    {"zeros", mat_zeros}, {"ones", mat_ones}, {"full", mat_full}, {"eye", mat_eye},
    {"linspace", mat_linspace}, {"logspace", mat_logspace},
    {"fromfunction", mat_fromfunction}, {"fromtable", mat_fromtable}, {"ismat", mat_ismat},
    {"hcat", mat_hcat}, {"vcat", mat_vcat}, {NULL, NULL}};

void l_open_mat(lua_State *L) {
  l_newclass(L, L_MAT_NAME, mat_methods, mat_meta);
  /* one method per elementwise function: m:exp(), m:erf(), ... */
  luaL_getmetatable(L, L_MAT_NAME);
  lua_getfield(L, -1, "__index");
  for (int k = 0; k < NNFT_FN_COUNT; k++) {
    lua_pushinteger(L, k);
    lua_pushcclosure(L, m_map_upvalue, 1);
    lua_setfield(L, -2, nnft_unary_name((nnft_unary_fn)k));
  }
  lua_pop(L, 2);

  luaL_newlib(L, mat_functions); /* nnft.mat, callable as a constructor */
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, mat_call);
  lua_setfield(L, -2, "__call");
  lua_setmetatable(L, -2);
  lua_setfield(L, -2, "mat");
}
