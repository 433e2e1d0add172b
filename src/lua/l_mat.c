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
      int isnum;
      double v = lua_tonumberx(L, -1, &isnum);
      if (!isnum)
        luaL_error(L, "nnft.mat.fromfunction: f(%d, %d) returned %s, expected a number",
                   (int)i + 1, (int)j + 1, luaL_typename(L, -1));
      NNFT_AT(m, i, j) = v;
      lua_pop(L, 1);
    }
  return 1;
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

static int m_get(lua_State *L) {
  nnft_mat *m = l_checkmat(L, 1);
  size_t i = check_index(L, 2, m->rows, "row");
  size_t j = lua_isnoneornil(L, 3) && m->cols == 1 ? 0 : check_index(L, 3, m->cols, "column");
  lua_pushnumber(L, NNFT_AT(m, i, j));
  return 1;
}

static int m_set(lua_State *L) {
  nnft_mat *m = l_checkmat(L, 1);
  size_t i = check_index(L, 2, m->rows, "row");
  size_t j;
  int varg = 4;
  if (lua_gettop(L) == 3 && m->cols == 1) {
    j = 0;
    varg = 3;
  } else {
    j = check_index(L, 3, m->cols, "column");
  }
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
    luaL_error(L, "block: %zu x %zu block at (%zu, %zu) does not fit in a %zu x %zu matrix", nr,
               nc, i + 1, j + 1, m->rows, m->cols);
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
    nnft_mat_copy(src, m);
  }
  lua_settop(L, 1);
  return 1;
}

static int m_totable(lua_State *L) {
  nnft_mat *m = l_checkmat(L, 1);
  int flat = lua_toboolean(L, 2);
  if (flat) { /* column-major order; for vectors simply their entries */
    lua_createtable(L, (int)(m->rows * m->cols), 0);
    lua_Integer k = 1;
    for (size_t j = 0; j < m->cols; j++)
      for (size_t i = 0; i < m->rows; i++) {
        lua_pushnumber(L, NNFT_AT(m, i, j));
        lua_rawseti(L, -2, k++);
      }
    return 1;
  }
  lua_createtable(L, (int)m->rows, 0);
  for (size_t i = 0; i < m->rows; i++) {
    lua_createtable(L, (int)m->cols, 0);
    for (size_t j = 0; j < m->cols; j++) {
      lua_pushnumber(L, NNFT_AT(m, i, j));
      lua_rawseti(L, -2, (lua_Integer)j + 1);
    }
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  return 1;
}

/* ---------------- arithmetic ---------------- */

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
    if (a->rows != b->rows || a->cols != b->cols)
      luaL_error(L, "nnft.Mat %s: shapes do not conform (%zu x %zu vs %zu x %zu)", opname,
                 a->rows, a->cols, b->rows, b->cols);
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
  return luaL_error(L, "nnft.Mat %s: cannot combine %s with %s", opname, luaL_typename(L, 1),
                    luaL_typename(L, 2));
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
    luaL_error(L, "nnft.Mat *: inner dimensions differ (%zu x %zu times %zu x %zu)", a->rows,
               a->cols, b->rows, b->cols);
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
      int isnum;
      double v = lua_tonumberx(L, -1, &isnum);
      if (!isnum) luaL_error(L, "map: function returned %s, expected a number", luaL_typename(L, -1));
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
    luaL_error(L, "%s: needs at least %d element%s per reduction (matrix is %zu x %zu)", name,
               r == NNFT_RED_VAR ? 2 : 1, r == NNFT_RED_VAR ? "s" : "", a->rows, a->cols);
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
  int pushed;
  nnft_mat *b = l_tomat(L, 2, &pushed);
  double rtol = luaL_optnumber(L, 3, 1e-5), atol = luaL_optnumber(L, 4, 1e-8);
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

/* numpy-like: shape header, %g entries, rows/columns elided beyond 10/8 with "...". */
static int m_tostring(lua_State *L) {
  nnft_mat *m = l_testmat(L, 1);
  if (!m) return luaL_typeerror(L, 1, "nnft.Mat");
  if (!m->data) {
    lua_pushstring(L, "Mat (released)");
    return 1;
  }
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  char cell[64];
  snprintf(cell, sizeof cell, "Mat %zux%zu", m->rows, m->cols);
  luaL_addstring(&b, cell);
  const size_t RMAX = 10, CMAX = 8, EDGE_R = 4, EDGE_C = 3;
  int elide_r = m->rows > RMAX, elide_c = m->cols > CMAX;
  for (size_t i = 0; i < m->rows; i++) {
    if (elide_r && i == EDGE_R) {
      luaL_addstring(&b, "\n  ...");
      i = m->rows - EDGE_R;
    }
    luaL_addstring(&b, i == 0 ? "\n[[" : "\n [");
    for (size_t j = 0; j < m->cols; j++) {
      if (elide_c && j == EDGE_C) {
        luaL_addstring(&b, "  ...");
        j = m->cols - EDGE_C;
      }
      snprintf(cell, sizeof cell, " %11.5g", NNFT_AT(m, i, j));
      luaL_addstring(&b, cell);
    }
    luaL_addstring(&b, i + 1 == m->rows ? "]]" : "]");
  }
  if (m->rows == 0 || m->cols == 0) luaL_addstring(&b, " []");
  luaL_pushresult(&b);
  return 1;
}

static int m_release(lua_State *L) {
  nnft_mat *m = l_testmat(L, 1);
  if (m) nnft_mat_free(m); /* idempotent: a second call sees data == NULL */
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
    {"__gc", m_release}, {"__close", m_release}, {NULL, NULL}};

static const luaL_Reg mat_functions[] = {
    {"zeros", mat_zeros}, {"ones", mat_ones}, {"full", mat_full}, {"eye", mat_eye},
    {"linspace", mat_linspace}, {"logspace", mat_logspace},
    {"fromfunction", mat_fromfunction}, {"fromtable", mat_new}, {"ismat", mat_ismat},
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
