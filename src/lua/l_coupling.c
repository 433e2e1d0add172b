/* nnft.coupling: couplings from correlators, the input-space cutoff RG and the LPA flows of the
 * weight variance (physics.md §4; src/core/nnft_vertex.h, nnft_coupling.h). Documented in
 * docs/api/coupling.md. Every function: check arguments and options -> allocate the Lua-owned
 * results -> call the core (which cannot raise) -> raise on a bad status. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "l_util.h"
#include "nnft_corr.h"
#include "nnft_coupling.h"
#include "nnft_vertex.h"

/* The architecture at idx with a kernel the vertex integrals support. */
static const nnft_arch *check_arch(lua_State *L, int idx, const char *fname,
                                   nnft_vertex_kernel *k) {
  const nnft_arch *a = l_checkarch(L, idx);
  const char *why = NULL;
  if (nnft_vertex_kernel_init(a, k, &why)) l_error(L, "%s: %s", fname, why ? why : "bad architecture");
  return a;
}

/* A Mat (or table) argument; converted tables stay on the stack. */
static const nnft_mat *check_mat(lua_State *L, int idx, const char *fname, const char *what) {
  int pushed = 0;
  if (lua_isnoneornil(L, idx)) l_error(L, "%s: %s is missing", fname, what);
  const nnft_mat *m = l_tomat(L, idx, &pushed);
  (void)pushed;
  l_check_finite(L, m, fname, what);
  return m;
}

static const nnft_mat *check_inputs(lua_State *L, int idx, const nnft_arch *a, const char *fname) {
  const nnft_mat *X = check_mat(L, idx, fname, "X");
  if (X->cols != a->d_in)
    l_error(L, "%s: X has %zu columns but the architecture has d_in = %zu (rows are points)", fname,
           X->cols, a->d_in);
  if (X->rows == 0) l_error(L, "%s: X has no rows (no input points)", fname);
  return X;
}

/* Tuples at idx: nil = every sorted 4-tuple of n points; else a Mat/table with 4 columns of
 * 1-based indices. Returns a userdata-owned size_t array (0-based) and the count; pushes the
 * tuples Mat actually used (1-based) for the caller to return. */
static size_t *check_tuples(lua_State *L, int idx, size_t n, const char *fname, size_t *count,
                            int *tuples_idx) {
  if (lua_isnoneornil(L, idx)) {
    size_t c;
    if (nnft_corr_ntuples(n, 4, &c)) l_error(L, "%s: too many input points", fname);
    nnft_mat *T = l_newmat(L, c, 4);
    *tuples_idx = lua_gettop(L);
    size_t *out = lua_newuserdatauv(L, (c ? c : 1) * 4 * sizeof(size_t), 0);
    uint32_t *u = lua_newuserdatauv(L, (c ? c : 1) * 4 * sizeof(uint32_t), 0);
    nnft_corr_tuples(n, 4, u);
    for (size_t t = 0; t < c; t++)
      for (int j = 0; j < 4; j++) {
        out[4 * t + j] = u[4 * t + j];
        NNFT_AT(T, t, j) = (double)u[4 * t + j] + 1.0;
      }
    lua_pop(L, 1);
    *count = c;
    return out;
  }
  const nnft_mat *T = check_mat(L, idx, fname, "tuples");
  if (T->cols != 4)
    l_error(L, "%s: tuples must have 4 columns (the quartic vertex joins 4 inputs), got %zu "
              "columns; pass nil for every sorted 4-tuple", fname, T->cols);
  *tuples_idx = lua_gettop(L);
  if (!l_testmat(L, idx)) *tuples_idx = lua_gettop(L); /* the converted Mat is on top */
  else *tuples_idx = idx;
  size_t c = T->rows;
  size_t *out = lua_newuserdatauv(L, (c ? c : 1) * 4 * sizeof(size_t), 0);
  for (size_t t = 0; t < c; t++)
    for (int j = 0; j < 4; j++) {
      double v = NNFT_AT(T, t, j);
      if (v != floor(v) || v < 1 || v > (double)n)
        l_error(L, "%s: tuple %zu has index %g; indices are 1-based rows of X (1..%zu)", fname,
               t + 1, v, n);
      out[4 * t + j] = (size_t)v - 1;
    }
  *count = c;
  return out;
}

/* Cutoffs at idx: a number or a list/Mat of numbers (math.huge allowed last). */
static double *check_cutoffs(lua_State *L, int idx, const nnft_vertex_kernel *k, const char *fname,
                             size_t *m) {
  double *v;
  if (lua_type(L, idx) == LUA_TNUMBER) {
    v = lua_newuserdatauv(L, sizeof(double), 0);
    v[0] = lua_tonumber(L, idx);
    *m = 1;
  } else {
    int pushed = 0;
    if (lua_isnoneornil(L, idx)) l_error(L, "%s: the cutoff Lambda (a number or a list) is missing", fname);
    const nnft_mat *M = l_tomat(L, idx, &pushed);
    size_t n = M->rows * M->cols;
    if (M->rows != 1 && M->cols != 1) l_error(L, "%s: Lambda must be a number or a list", fname);
    v = lua_newuserdatauv(L, (n ? n : 1) * sizeof(double), 0);
    for (size_t i = 0; i < n; i++) v[i] = M->cols == 1 ? NNFT_AT(M, i, 0) : NNFT_AT(M, 0, i);
    *m = n;
  }
  const char *why = NULL;
  if (nnft_vertex_check_cutoffs(k, v, *m, &why)) {
    for (size_t i = 0; i < *m; i++)
      if (!isinf(v[i]) && !(v[i] > 0))
        l_error(L, "%s: cutoff Lambda[%zu] = %g: every cutoff must be > 0 (the box is [-Lambda, "
                  "Lambda]^d)", fname, i + 1, v[i]);
    l_error(L, "%s: %s", fname, why ? why : "bad cutoffs");
  }
  return v;
}

static nnft_vertex_opts check_vopts(lua_State *L, int idx, const char *fname) {
  static const char *const keys[] = {"epsrel", "max_boxes", NULL};
  l_check_options(L, idx, fname, keys);
  nnft_vertex_opts o = nnft_vertex_defaults();
  o.epsrel = l_opt_number(L, idx, "epsrel", o.epsrel);
  lua_Integer mb = l_opt_integer(L, idx, "max_boxes", (lua_Integer)o.max_boxes);
  if (!(o.epsrel > 0 && o.epsrel < 1)) l_error(L, "%s: epsrel must be in (0, 1), got %g", fname, o.epsrel);
  if (mb < 16) l_error(L, "%s: max_boxes must be >= 16, got %lld", fname, (long long)mb);
  o.max_boxes = (size_t)mb;
  return o;
}

static void vertex_status(lua_State *L, nnft_status s, const char *fname, double epsrel) {
  if (s == NNFT_OK) return;
  if (s == NNFT_ENOCONV)
    l_error(L, "%s: the vertex integral did not reach epsrel = %g within max_boxes pieces; raise "
              "max_boxes= or epsrel=", fname, epsrel);
  if (s == NNFT_ENONFINITE)
    l_error(L, "%s: the vertex integral overflowed (an exp-net kernel grows like exp(|x|^2): use a "
              "smaller cutoff)", fname);
  l_status_error(L, s, fname, NULL);
}

/* nnft.coupling.vertex(arch, X, tuples, Lambda [, opts]) -> I4 (ntuples x m), err, tuples */
static int l_vertex(lua_State *L) {
  lua_settop(L, 5);
  const char *fname = "nnft.coupling.vertex";
  nnft_vertex_kernel k;
  const nnft_arch *a = check_arch(L, 1, fname, &k);
  const nnft_mat *X = check_inputs(L, 2, a, fname);
  size_t nt, m;
  int tidx;
  size_t *idx = check_tuples(L, 3, X->rows, fname, &nt, &tidx);
  double *Lam = check_cutoffs(L, 4, &k, fname, &m);
  nnft_vertex_opts o = check_vopts(L, 5, fname);
  nnft_mat *I = l_newmat(L, nt, m);
  int iI = lua_gettop(L);
  nnft_mat *E = l_newmat(L, nt, m);
  int iE = lua_gettop(L);
  nnft_status s = nnft_vertex_i4(a, X, idx, nt, Lam, m, &o, I, E);
  vertex_status(L, s, fname, o.epsrel);
  lua_pushvalue(L, iI);
  lua_pushvalue(L, iE);
  lua_pushvalue(L, tidx);
  return 3;
}

/* nnft.coupling.vertex_closed(arch, X [, tuples]) -> I4 (ntuples x 1), tuples */
static int l_vertex_closed(lua_State *L) {
  lua_settop(L, 3);
  const char *fname = "nnft.coupling.vertex_closed";
  nnft_vertex_kernel k;
  const nnft_arch *a = check_arch(L, 1, fname, &k);
  if (!k.localised)
    l_error(L, "%s: the closed form exists for the gauss-net and the plain cos-net only", fname);
  const nnft_mat *X = check_inputs(L, 2, a, fname);
  size_t nt;
  int tidx;
  size_t *idx = check_tuples(L, 3, X->rows, fname, &nt, &tidx);
  nnft_mat *I = l_newmat(L, nt, 1);
  nnft_status s = nnft_vertex_i4_closed(a, X, idx, nt, I);
  if (s) l_status_error(L, s, fname, NULL);
  lua_pushvalue(L, tidx);
  return 2;
}

/* nnft.coupling.basis(arch, X, tuples, Lambda [, opts]) -> T0, T2, TNL, tuples */
static int l_basis(lua_State *L) {
  lua_settop(L, 5);
  const char *fname = "nnft.coupling.basis";
  nnft_vertex_kernel k;
  const nnft_arch *a = check_arch(L, 1, fname, &k);
  const nnft_mat *X = check_inputs(L, 2, a, fname);
  size_t nt, m;
  int tidx;
  size_t *idx = check_tuples(L, 3, X->rows, fname, &nt, &tidx);
  double *Lam = check_cutoffs(L, 4, &k, fname, &m);
  if (m != 1) l_error(L, "%s: one cutoff Lambda, got %zu", fname, m);
  nnft_vertex_opts o = check_vopts(L, 5, fname);
  nnft_mat *T0 = l_newmat(L, nt, 1);
  int i0 = lua_gettop(L);
  nnft_mat *T2 = l_newmat(L, nt, 1);
  nnft_mat *TN = l_newmat(L, nt, 1);
  nnft_status s = nnft_vertex_basis(a, X, idx, nt, Lam[0], &o, T0, T2, TN);
  vertex_status(L, s, fname, o.epsrel);
  lua_pushvalue(L, i0);
  lua_pushvalue(L, i0 + 1);
  lua_pushvalue(L, i0 + 2);
  lua_pushvalue(L, tidx);
  return 4;
}

/* nnft.coupling.kernel(arch, X) -> K (n x n) = σ_b1² + K_w */
static int l_kernel(lua_State *L) {
  lua_settop(L, 2);
  const char *fname = "nnft.coupling.kernel";
  nnft_vertex_kernel k;
  const nnft_arch *a = check_arch(L, 1, fname, &k);
  const nnft_mat *X = check_inputs(L, 2, a, fname);
  nnft_mat *K = l_newmat(L, X->rows, X->rows);
  nnft_status s = nnft_vertex_kmatrix(a, X, K);
  if (s) l_status_error(L, s, fname, NULL);
  return 1;
}

/* nnft.coupling.lambda(dG4, dG4_err, I4 [, {convention=}]) -> lam, err (n x m each) */
static int l_lambda(lua_State *L) {
  lua_settop(L, 4);
  const char *fname = "nnft.coupling.lambda";
  static const char *const keys[] = {"convention", NULL};
  static const char *const convs[] = {"hms", "els", NULL};
  const nnft_mat *G = check_mat(L, 1, fname, "dG4");
  const nnft_mat *Ge = lua_isnoneornil(L, 2) ? NULL : check_mat(L, 2, fname, "dG4_err");
  const nnft_mat *I = check_mat(L, 3, fname, "I4");
  l_check_options(L, 4, fname, keys);
  int conv = l_opt_choice(L, 4, "convention", "hms", convs);
  if (G->cols != 1) l_error(L, "%s: dG4 must be a column (one value per tuple), got %zux%zu", fname, G->rows, G->cols);
  if (Ge && (Ge->rows != G->rows || Ge->cols != 1))
    l_error(L, "%s: dG4_err must match dG4 (%zux1), got %zux%zu", fname, G->rows, Ge->rows, Ge->cols);
  if (I->rows != G->rows)
    l_error(L, "%s: I4 has %zu rows but dG4 has %zu tuples", fname, I->rows, G->rows);
  size_t n = G->rows, m = I->cols;
  nnft_mat *lam = l_newmat(L, n, m);
  nnft_mat *le = l_newmat(L, n, m);
  for (size_t c = 0; c < m; c++) {
    size_t bad = 0;
    nnft_status s = nnft_coupling_lambda(n, G->data, Ge ? Ge->data : NULL, I->data + c * I->ld,
                                         conv ? NNFT_CONV_ELS : NNFT_CONV_HMS, lam->data + c * lam->ld,
                                         le->data + c * le->ld, &bad);
    if (s == NNFT_EDOM)
      l_error(L, "%s: the vertex integral of tuple %zu is zero (cutoff column %zu): its coupling is "
                "undefined (e.g. ReLU without bias at d = 1 with inputs of both signs); drop that "
                "tuple", fname, bad + 1, c + 1);
    if (s) l_status_error(L, s, fname, NULL);
  }
  return 2;
}

static void setnum(lua_State *L, const char *k, double v) {
  lua_pushnumber(L, v);
  lua_setfield(L, -2, k);
}

/* nnft.coupling.locality(lam [, err]) -> table */
static int l_locality(lua_State *L) {
  lua_settop(L, 2);
  const char *fname = "nnft.coupling.locality";
  const nnft_mat *lam = check_mat(L, 1, fname, "lam");
  const nnft_mat *e = lua_isnoneornil(L, 2) ? NULL : check_mat(L, 2, fname, "err");
  if (lam->cols != 1 || lam->rows == 0) l_error(L, "%s: lam must be a non-empty column", fname);
  if (e && (e->rows != lam->rows || e->cols != 1)) l_error(L, "%s: err must match lam", fname);
  nnft_coupling_locality s;
  nnft_status st = nnft_coupling_local(lam->rows, lam->data, e ? e->data : NULL, &s);
  if (st) l_status_error(L, st, fname, NULL);
  lua_createtable(L, 0, 7);
  setnum(L, "mean", s.mean);
  setnum(L, "std", s.std);
  setnum(L, "rel_spread", s.rel_spread);
  setnum(L, "wmean", s.wmean);
  setnum(L, "wmean_err", s.wmean_err);
  setnum(L, "chi2", s.chi2);
  lua_pushinteger(L, (lua_Integer)s.dof);
  lua_setfield(L, -2, "dof");
  return 1;
}

/* nnft.coupling.fit_nonlocal(dG4, err, T0, T2, TNL [, {terms=3}]) -> table */
static int l_fit_nonlocal(lua_State *L) {
  lua_settop(L, 6);
  const char *fname = "nnft.coupling.fit_nonlocal";
  static const char *const keys[] = {"terms", NULL};
  const nnft_mat *G = check_mat(L, 1, fname, "dG4");
  const nnft_mat *e = lua_isnoneornil(L, 2) ? NULL : check_mat(L, 2, fname, "err");
  const nnft_mat *T0 = check_mat(L, 3, fname, "T0");
  l_check_options(L, 6, fname, keys);
  lua_Integer nb = l_opt_integer(L, 6, "terms", 3);
  if (nb < 1 || nb > 3) l_error(L, "%s: terms must be 1 (T0), 2 (T0, T2) or 3 (T0, T2, T_NL), got %lld", fname, (long long)nb);
  const nnft_mat *T2 = nb > 1 ? check_mat(L, 4, fname, "T2") : NULL;
  const nnft_mat *TN = nb > 2 ? check_mat(L, 5, fname, "TNL") : NULL;
  size_t n = G->rows;
  const nnft_mat *all[4] = {e, T0, T2, TN};
  const char *names[4] = {"err", "T0", "T2", "TNL"};
  if (G->cols != 1) l_error(L, "%s: dG4 must be a column", fname);
  for (int i = 0; i < 4; i++)
    if (all[i] && (all[i]->rows != n || all[i]->cols != 1))
      l_error(L, "%s: %s has shape %zux%zu, expected %zux1 like dG4", fname, names[i], all[i]->rows, all[i]->cols, n);
  if (n < (size_t)nb) l_error(L, "%s: %zu tuples cannot fit %lld terms", fname, n, (long long)nb);
  if (e)
    for (size_t t = 0; t < n; t++)
      if (!(e->data[t] > 0)) l_error(L, "%s: err[%zu] = %g; error bars must be > 0", fname, t + 1, e->data[t]);
  nnft_mat *cov = l_newmat(L, (size_t)nb, (size_t)nb);
  int icov = lua_gettop(L);
  double coef[3] = {NAN, NAN, NAN}, chi2;
  size_t rank;
  nnft_status s = nnft_coupling_fit_nonlocal(n, G->data, e ? e->data : NULL, T0->data,
                                             T2 ? T2->data : NULL, TN ? TN->data : NULL, (size_t)nb,
                                             coef, cov->data, &chi2, &rank);
  if (s) l_status_error(L, s, fname, NULL);
  lua_createtable(L, 0, 8);
  setnum(L, "l0", coef[0]);
  if (nb > 1) setnum(L, "l2", coef[1]);
  if (nb > 2) setnum(L, "l_nl", coef[2]);
  setnum(L, "chi2", chi2);
  lua_pushinteger(L, (lua_Integer)rank);
  lua_setfield(L, -2, "rank");
  lua_pushinteger(L, (lua_Integer)(n - (size_t)nb));
  lua_setfield(L, -2, "dof");
  lua_pushvalue(L, icov);
  lua_setfield(L, -2, "cov");
  setnum(L, "lambda", -coef[0]);
  return 1;
}

/* nnft.coupling.six_point(lambda, I4all, K [, {G6=, G6_GP=}]) -> dG6 [, ratio_gp, ratio_corrected] */
static int l_six_point(lua_State *L) {
  lua_settop(L, 4);
  const char *fname = "nnft.coupling.six_point";
  static const char *const keys[] = {"G6", "G6_GP", NULL};
  double lam = luaL_checknumber(L, 1);
  const nnft_mat *I = check_mat(L, 2, fname, "I4all");
  const nnft_mat *K = check_mat(L, 3, fname, "K");
  l_check_options(L, 4, fname, keys);
  if (K->rows != K->cols) l_error(L, "%s: K must be square (the kernel of the n inputs)", fname);
  size_t n = K->rows, c4, c6;
  if (nnft_corr_ntuples(n, 4, &c4) || nnft_corr_ntuples(n, 6, &c6)) l_error(L, "%s: bad size", fname);
  if (I->rows != c4 || I->cols != 1)
    l_error(L, "%s: I4all must hold the %zu sorted 4-tuples of %zu inputs (one cutoff), got %zux%zu",
           fname, c4, n, I->rows, I->cols);
  const nnft_mat *G6 = NULL, *GP = NULL;
  if (lua_istable(L, 4)) {
    lua_getfield(L, 4, "G6");
    if (!lua_isnil(L, -1)) G6 = check_mat(L, lua_gettop(L), fname, "G6");
    lua_getfield(L, 4, "G6_GP");
    if (!lua_isnil(L, -1)) GP = check_mat(L, lua_gettop(L), fname, "G6_GP");
    if ((G6 == NULL) != (GP == NULL)) l_error(L, "%s: give both G6= and G6_GP= for the ratios", fname);
    if (G6 && (G6->rows != c6 || GP->rows != c6 || G6->cols != 1 || GP->cols != 1))
      l_error(L, "%s: G6 and G6_GP must have the %zu sorted 6-tuples", fname, c6);
  }
  nnft_mat *S6 = l_newmat(L, c6, 1);
  nnft_status s = nnft_vertex_six(n, I, K, S6);
  if (s) l_status_error(L, s, fname, NULL);
  nnft_coupling_six_point(c6, lam, S6->data, S6->data);
  if (!G6) return 1;
  nnft_mat *r1 = l_newmat(L, c6, 1);
  nnft_mat *r2 = l_newmat(L, c6, 1);
  for (size_t t = 0; t < c6; t++) {
    r1->data[t] = GP->data[t] / G6->data[t];
    r2->data[t] = (GP->data[t] + S6->data[t]) / G6->data[t];
  }
  return 3;
}

/* nnft.coupling.loglog(x, y) -> {slope, intercept, slope_err, r2, used} */
static void push_fit(lua_State *L, const nnft_coupling_loglog *f) {
  setnum(L, "slope", f->slope);
  setnum(L, "intercept", f->intercept);
  setnum(L, "slope_err", f->slope_err);
  setnum(L, "r2", f->r2);
  lua_pushinteger(L, (lua_Integer)f->used);
  lua_setfield(L, -2, "used");
}

static int l_loglog(lua_State *L) {
  lua_settop(L, 2);
  const char *fname = "nnft.coupling.loglog";
  const nnft_mat *x = check_mat(L, 1, fname, "x");
  const nnft_mat *y = check_mat(L, 2, fname, "y");
  if (x->rows * x->cols != y->rows * y->cols || (x->cols != 1 && x->rows != 1) ||
      (y->cols != 1 && y->rows != 1))
    l_error(L, "%s: x and y must be lists of the same length", fname);
  nnft_mat *cx = l_pushcopy(L, x), *cy = l_pushcopy(L, y);
  nnft_coupling_loglog f;
  nnft_status s = nnft_coupling_loglog_fit(cx->rows * cx->cols, cx->data, cy->data, &f);
  if (s) l_error(L, "%s: need at least 3 points with x > 0 and y != 0 (got %zu)", fname, f.used);
  lua_createtable(L, 0, 5);
  push_fit(L, &f);
  return 1;
}

/* nnft.coupling.flow(Lambda, I4, lam) -> {beta, dlog, mean, slope, ...} */
static int l_flow(lua_State *L) {
  lua_settop(L, 3);
  const char *fname = "nnft.coupling.flow";
  const nnft_mat *Lm = check_mat(L, 1, fname, "Lambda");
  const nnft_mat *I = check_mat(L, 2, fname, "I4");
  const nnft_mat *lam = check_mat(L, 3, fname, "lam");
  nnft_mat *Lc = l_pushcopy(L, Lm);
  size_t m = Lc->rows * Lc->cols;
  if (Lm->rows != 1 && Lm->cols != 1) l_error(L, "%s: Lambda must be a list", fname);
  if (I->cols != m || lam->cols != m || lam->rows != I->rows)
    l_error(L, "%s: I4 and lam must both be ntuples x %zu (one column per cutoff), got %zux%zu and %zux%zu",
           fname, m, I->rows, I->cols, lam->rows, lam->cols);
  if (m < 3) l_error(L, "%s: a flow needs at least 3 cutoffs, got %zu", fname, m);
  size_t n = I->rows;
  nnft_mat *beta = l_newmat(L, n, m);
  int ib = lua_gettop(L);
  nnft_mat *dl = l_newmat(L, n, m);
  nnft_mat *mean = l_newmat(L, m, 1);
  double *row = lua_newuserdatauv(L, 2 * m * sizeof(double), 0), *drow = row + m;
  for (size_t t = 0; t < n; t++) {
    for (size_t c = 0; c < m; c++) row[c] = NNFT_AT(I, t, c);
    nnft_status s = nnft_coupling_dlog(m, Lc->data, row, drow);
    if (s)
      l_error(L, "%s: tuple %zu: cutoffs must be finite, > 0 and increasing and I4 non-zero", fname, t + 1);
    for (size_t c = 0; c < m; c++) {
      NNFT_AT(dl, t, c) = drow[c];
      NNFT_AT(beta, t, c) = -NNFT_AT(lam, t, c) * drow[c];
    }
  }
  for (size_t c = 0; c < m; c++) {
    double s = 0;
    for (size_t t = 0; t < n; t++) s += NNFT_AT(lam, t, c);
    mean->data[c] = n ? s / (double)n : NAN;
  }
  nnft_coupling_loglog f;
  nnft_status s = nnft_coupling_loglog_fit(m, Lc->data, mean->data, &f);
  lua_createtable(L, 0, 8);
  lua_pushvalue(L, ib);
  lua_setfield(L, -2, "beta");
  lua_pushvalue(L, ib + 1);
  lua_setfield(L, -2, "dlog");
  lua_pushvalue(L, ib + 2);
  lua_setfield(L, -2, "mean");
  if (s == NNFT_OK) push_fit(L, &f);
  return 1;
}

/* ---- LPA ---- */

static double check_d(lua_State *L, int idx, const char *fname) {
  double d = luaL_checknumber(L, idx);
  if (!(d > 0 && d <= 8)) l_error(L, "%s: dimension d must be in (0, 8], got %g", fname, d);
  return d;
}

static void check_u(lua_State *L, int idx, const char *fname, double *u) {
  const nnft_mat *m = check_mat(L, idx, fname, "u");
  if (m->rows * m->cols != 3 || (m->rows != 1 && m->cols != 1))
    l_error(L, "%s: u must be the three couplings {u2, u4, u6}", fname);
  for (int i = 0; i < 3; i++) u[i] = m->cols == 1 ? NNFT_AT(m, i, 0) : NNFT_AT(m, 0, i);
}

static void push3(lua_State *L, const double *v) {
  lua_createtable(L, 3, 0);
  for (int i = 0; i < 3; i++) {
    lua_pushnumber(L, v[i]);
    lua_rawseti(L, -2, i + 1);
  }
}

static int l_lpa_beta(lua_State *L) {
  lua_settop(L, 2);
  double u[3], f[3];
  check_u(L, 1, "nnft.coupling.lpa.beta", u);
  double d = check_d(L, 2, "nnft.coupling.lpa.beta");
  nnft_lpa_rhs(d, u, f);
  push3(L, f);
  return 1;
}

static int l_lpa_jacobian(lua_State *L) {
  lua_settop(L, 2);
  double u[3], J[9];
  check_u(L, 1, "nnft.coupling.lpa.jacobian", u);
  double d = check_d(L, 2, "nnft.coupling.lpa.jacobian");
  nnft_lpa_jacobian(d, u, J);
  nnft_mat *M = l_newmat(L, 3, 3);
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 3; j++) NNFT_AT(M, i, j) = J[i + 3 * j];
  return 1;
}

static int l_lpa_vd(lua_State *L) {
  lua_pushnumber(L, nnft_lpa_vd(check_d(L, 1, "nnft.coupling.lpa.vd")));
  return 1;
}

static int l_lpa_fixed_point(lua_State *L) {
  lua_settop(L, 2);
  const char *fname = "nnft.coupling.lpa.fixed_point";
  double g[3], u[3];
  check_u(L, 1, fname, g);
  double d = check_d(L, 2, fname);
  int it = 0;
  nnft_status s = nnft_lpa_fixed_point(d, g, u, &it);
  if (s == NNFT_ENOCONV || s == NNFT_ESINGULAR)
    l_error(L, "%s: Newton's method from {%g, %g, %g} did not converge (%s); try another guess",
           fname, g[0], g[1], g[2], nnft_strerror(s));
  if (s) l_status_error(L, s, fname, NULL);
  push3(L, u);
  lua_pushinteger(L, it);
  return 2;
}

static int l_lpa_exponents(lua_State *L) {
  lua_settop(L, 2);
  const char *fname = "nnft.coupling.lpa.exponents";
  double u[3], re[3], im[3];
  check_u(L, 1, fname, u);
  double d = check_d(L, 2, fname);
  nnft_status s = nnft_lpa_exponents(d, u, re, im);
  if (s == NNFT_EDOM) l_error(L, "%s: u2 <= -1 is beyond the pole of the flow", fname);
  if (s) l_status_error(L, s, fname, NULL);
  push3(L, re);
  push3(L, im);
  return 2;
}

/* The k grid of an options table: k= list, or k0=, k1=, n= (log-spaced). */
static nnft_mat *k_grid(lua_State *L, int o, const char *fname, double k0def, double k1def) {
  lua_getfield(L, o, "k");
  if (!lua_isnil(L, -1)) {
    const nnft_mat *k = check_mat(L, lua_gettop(L), fname, "k");
    if (k->rows != 1 && k->cols != 1) l_error(L, "%s: k must be a list", fname);
    return l_pushcopy(L, k);
  }
  lua_pop(L, 1);
  double k0 = l_opt_number(L, o, "k0", k0def), k1 = l_opt_number(L, o, "k1", k1def);
  lua_Integer n = l_opt_integer(L, o, "n", 50);
  if (isnan(k0) || isnan(k1)) l_error(L, "%s: give k0= and k1= (or k=)", fname);
  if (!(k0 > 0) || !(k1 > 0) || k0 == k1 || !isfinite(k0) || !isfinite(k1))
    l_error(L, "%s: k0 and k1 must be finite, > 0 and different, got %g and %g", fname, k0, k1);
  if (n < 2 || n > 1000000) l_error(L, "%s: n must be between 2 and 1e6, got %lld", fname, (long long)n);
  nnft_mat *k = l_newmat(L, (size_t)n, 1);
  for (lua_Integer i = 0; i < n; i++) k->data[i] = k0 * pow(k1 / k0, (double)i / (double)(n - 1));
  k->data[n - 1] = k1;
  return k;
}

static nnft_lpa_opts lpa_opts(lua_State *L, int o, const char *fname) {
  static const char *const methods[] = {"msbdf", "rk4imp", NULL};
  nnft_lpa_opts p = nnft_lpa_defaults();
  p.method = l_opt_choice(L, o, "method", "msbdf", methods) ? NNFT_LPA_RK4IMP : NNFT_LPA_MSBDF;
  p.epsabs = l_opt_number(L, o, "epsabs", p.epsabs);
  p.epsrel = l_opt_number(L, o, "epsrel", p.epsrel);
  if (!(p.epsabs >= 0) || !(p.epsrel >= 0) || p.epsabs + p.epsrel == 0)
    l_error(L, "%s: epsabs and epsrel must be >= 0, not both 0", fname);
  return p;
}

/* U: the nk x ncol result, whose rows the core leaves NaN beyond the last k reached. */
static void lpa_status(lua_State *L, nnft_status s, const char *fname, const double *k, size_t nk,
                       const nnft_mat *U) {
  if (s == NNFT_OK) return;
  if (s == NNFT_ENOCONV) {
    size_t last = 0; /* row 0 (the start) is always set */
    while (last + 1 < nk && !isnan(NNFT_AT(U, last + 1, U->cols - 1))) last++;
    l_error(L, "%s: the ODE solver stopped after k = %g (grid point %zu of %zu): the flow reached "
              "the pole u2/k^2 = -1 or blew up; end the k range before that point or change the "
              "start", fname, k[last], last + 1, nk);
  }
  if (s == NNFT_EDOM)
    l_error(L, "%s: bad flow set-up: k must be > 0 and strictly monotone, and the start must have "
              "u2/k0^2 > -1", fname);
  l_status_error(L, s, fname, NULL);
}

/* nnft.coupling.lpa.integrate{d=, u0=, k0=, k1=, n= | k=, dimensionful=, method=, epsabs=, epsrel=} */
static int l_lpa_integrate(lua_State *L) {
  lua_settop(L, 1);
  const char *fname = "nnft.coupling.lpa.integrate";
  static const char *const keys[] = {"d", "u0", "k", "k0", "k1", "n", "dimensionful", "method",
                                     "epsabs", "epsrel", NULL};
  luaL_checktype(L, 1, LUA_TTABLE);
  l_check_options(L, 1, fname, keys);
  double d = l_opt_number(L, 1, "d", NAN);
  if (!(d > 0 && d <= 8)) l_error(L, "%s: d= (dimension in (0, 8]) is required", fname);
  lua_getfield(L, 1, "u0");
  if (lua_isnil(L, -1)) l_error(L, "%s: u0= {u2, u4, u6} is required", fname);
  double u0[3];
  check_u(L, lua_gettop(L), fname, u0);
  nnft_lpa_opts p = lpa_opts(L, 1, fname);
  p.dimensionful = l_opt_boolean(L, 1, "dimensionful", 0);
  nnft_mat *k = k_grid(L, 1, fname, NAN, NAN);
  int ik = lua_gettop(L);
  size_t nk = k->rows * k->cols;
  nnft_mat *U = l_newmat(L, nk, 3);
  nnft_status s = nnft_lpa_integrate(d, u0, nk, k->data, &p, U);
  lpa_status(L, s, fname, k->data, nk, U);
  lua_pushvalue(L, ik);
  lua_pushvalue(L, ik + 1);
  return 2;
}

/* nnft.coupling.passive{d=, sigma0=, u4=, u6=0, k0=1e-3, k1=100, n=50 | k=, ...} */
static int l_passive(lua_State *L) {
  lua_settop(L, 1);
  const char *fname = "nnft.coupling.passive";
  static const char *const keys[] = {"d", "sigma0", "u4", "u6", "k", "k0", "k1", "n", "method",
                                     "epsabs", "epsrel", NULL};
  luaL_checktype(L, 1, LUA_TTABLE);
  l_check_options(L, 1, fname, keys);
  double d = l_opt_number(L, 1, "d", NAN), s0 = l_opt_number(L, 1, "sigma0", NAN);
  double u4 = l_opt_number(L, 1, "u4", NAN), u6 = l_opt_number(L, 1, "u6", 0.0);
  if (!(d > 0 && d <= 8)) l_error(L, "%s: d= (dimension in (0, 8]) is required", fname);
  if (!(s0 > 0) || !isfinite(s0)) l_error(L, "%s: sigma0= (> 0, the starting sigma_W) is required", fname);
  if (!isfinite(u4)) l_error(L, "%s: u4= (the measured [ELS] coupling at sigma0) is required", fname);
  if (!isfinite(u6)) l_error(L, "%s: u6 must be finite", fname);
  nnft_lpa_opts p = lpa_opts(L, 1, fname);
  nnft_mat *k = k_grid(L, 1, fname, 1e-3, 100);
  int ik = lua_gettop(L);
  size_t nk = k->rows * k->cols;
  nnft_mat *R = l_newmat(L, nk, 4);
  nnft_status s = nnft_lpa_passive(d, s0, u4, u6, nk, k->data, &p, R);
  lpa_status(L, s, fname, k->data, nk, R);
  lua_createtable(L, 0, 5);
  lua_pushvalue(L, ik);
  lua_setfield(L, -2, "k");
  const char *names[4] = {"sigma_w", "u2", "u4", "u6"};
  for (int j = 0; j < 4; j++) {
    nnft_mat *c = l_newmat(L, nk, 1);
    for (size_t i = 0; i < nk; i++) c->data[i] = NNFT_AT(R, i, j);
    lua_setfield(L, -2, names[j]);
  }
  return 1;
}

void l_open_coupling(lua_State *L) {
  static const luaL_Reg fns[] = {{"vertex", l_vertex},
                                 {"vertex_closed", l_vertex_closed},
                                 {"basis", l_basis},
                                 {"kernel", l_kernel},
                                 {"lambda", l_lambda},
                                 {"locality", l_locality},
                                 {"fit_nonlocal", l_fit_nonlocal},
                                 {"six_point", l_six_point},
                                 {"loglog", l_loglog},
                                 {"flow", l_flow},
                                 {"passive", l_passive},
                                 {NULL, NULL}};
  static const luaL_Reg lpa[] = {{"beta", l_lpa_beta},
                                 {"jacobian", l_lpa_jacobian},
                                 {"vd", l_lpa_vd},
                                 {"fixed_point", l_lpa_fixed_point},
                                 {"exponents", l_lpa_exponents},
                                 {"integrate", l_lpa_integrate},
                                 {NULL, NULL}};
  luaL_newlib(L, fns);
  luaL_newlib(L, lpa);
  lua_setfield(L, -2, "lpa");
  lua_setfield(L, -2, "coupling");
}
