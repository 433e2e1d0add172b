/* nnft.fisher (the Fisher userdata, nnft.fisher.kl/distance/gp) and nnft.shell (coarse_grain,
 * schedule): Fisher metrics and information shells, physics.md §7. Core: nnft_fisher, nnft_shell.
 * Documented in docs/api/fisher.md, docs/api/shell.md and the guide docs/brg.md.
 *
 * Every binding: check all arguments -> allocate Lua-owned results and workspaces (the core Fisher
 * lives inside its userdata, whose __gc frees it) -> call the core -> raise on a bad status. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "l_util.h"
#include "nnft_fisher.h"
#include "nnft_shell.h"

#define L_FISHER_NAME "nnft.Fisher"
#define DEFAULT_MAX_MEMORY 4294967296.0 /* bytes: 4 GiB */

typedef struct l_fisher {
  nnft_fisher F;
} l_fisher;

/* An options argument: a table, or absent/nil (replaced by an empty table so getters work). */
static void opts_table(lua_State *L, int idx) {
  if (lua_isnoneornil(L, idx)) {
    lua_settop(L, idx > lua_gettop(L) ? idx : lua_gettop(L));
    lua_newtable(L);
    lua_replace(L, idx);
  } else {
    luaL_checktype(L, idx, LUA_TTABLE);
  }
}

static nnft_fisher *check_fisher(lua_State *L, int idx) {
  l_fisher *u = luaL_checkudata(L, idx, L_FISHER_NAME);
  if (!u->F.diag) luaL_argerror(L, idx, "Fisher metric has been released (closed)");
  return &u->F;
}

/* A P x 1 (or 1 x P) vector argument: Mat or table. Leaves a converted Mat on the stack. */
static nnft_mat *check_vec(lua_State *L, int idx, size_t P, const char *fname, const char *what) {
  int pushed;
  nnft_mat *m = l_tomat(L, idx, &pushed);
  if (!((m->cols == 1 && m->rows == P) || (m->rows == 1 && m->cols == P)))
    l_error(L, "%s: %s must have %zu entries (one per trainable parameter), got a %zu x %zu matrix",
           fname, what, P, m->rows, m->cols);
  if (m->rows == 1 && m->cols > 1 && m->ld != 1 && P > 1) {
    /* a row view with ld > 1: copy to contiguous storage */
    nnft_mat *c = l_newmat(L, P, 1);
    for (size_t i = 0; i < P; i++) c->data[i] = m->data[i * m->ld];
    m = c;
  }
  l_check_finite(L, m, fname, what);
  return m;
}

/* ---- nnft.fisher(net, X [, opts]) ---- */

static int fisher_new(lua_State *L) {
  static const char *fname = "nnft.fisher";
  static const char *const allowed[] = {"sigma", "form", "damping", "max_memory", NULL};
  static const char *const forms[] = {"gram", "dense", "diag", "block", NULL};
  /* called as nnft.fisher(...) through __call: argument 1 is the nnft.fisher table */
  lua_remove(L, 1);
  nnft_net *net = l_checknet(L, 1);
  nnft_mat *X = l_checkmat(L, 2);
  opts_table(L, 3);
  l_check_options(L, 3, fname, allowed);
  double sigma = l_opt_number(L, 3, "sigma", 1.0);
  int form = l_opt_choice(L, 3, "form", "gram", forms);
  double damping = l_opt_number(L, 3, "damping", 0.0);
  double maxmem = l_opt_number(L, 3, "max_memory", DEFAULT_MAX_MEMORY);
  if (!(sigma > 0) || !isfinite(sigma))
    l_error(L, "%s: sigma (the noise σ_ε) must be positive and finite, got %g", fname, sigma);
  if (!(damping >= 0) || !isfinite(damping))
    l_error(L, "%s: damping must be >= 0 and finite, got %g", fname, damping);
  if (!(maxmem > 0)) l_error(L, "%s: max_memory must be a positive number of bytes", fname);
  if (X->cols != net->arch.d_in)
    l_error(L, "%s: X has %zu columns but the network takes d_in = %zu inputs (rows of X are "
           "points)", fname, X->cols, net->arch.d_in);
  if (X->rows == 0) l_error(L, "%s: X has no rows (need at least one Fisher input)", fname);
  if (net->ntrain == 0)
    l_error(L, "%s: the network has no trainable parameters (every layer is frozen)", fname);
  l_check_finite(L, X, fname, "X");
  size_t bytes = 0;
  nnft_status s = nnft_fisher_bytes(net, X->rows, (nnft_fisher_form)form, &bytes);
  if (s || (double)bytes > maxmem)
    l_error(L, "%s: form='%s' needs %.3g GiB (n = %zu inputs, P = %zu trainable parameters), "
           "above max_memory = %.3g GiB; use form='gram' (n x n) or 'diag', fewer inputs, or "
           "raise max_memory=", fname, forms[form], s ? INFINITY : (double)bytes / 1073741824.0,
           X->rows, net->ntrain, maxmem / 1073741824.0);
  l_fisher *u = lua_newuserdatauv(L, sizeof *u, 0);
  memset(u, 0, sizeof *u);
  luaL_setmetatable(L, L_FISHER_NAME);
  s = nnft_fisher_compute(net, X, sigma, damping, (nnft_fisher_form)form, 0, &u->F);
  l_net_check_custom(L, 1, fname);
  if (s == NNFT_ENONFINITE)
    return l_error(L, "%s: the network's parameters or its Jacobian contain NaN or Inf (diverged "
                  "training?)", fname);
  if (s) return l_status_error(L, s, fname, NULL);
  return 1;
}

/* ---- Fisher methods ---- */

static int fisher_eigen(lua_State *L) {
  static const char *fname = "Fisher:eigen";
  static const char *const allowed[] = {"count", "vectors", NULL};
  nnft_fisher *F = check_fisher(L, 1);
  opts_table(L, 2);
  l_check_options(L, 2, fname, allowed);
  size_t maxk = F->form == NNFT_FISHER_GRAM ? (F->n < F->P ? F->n : F->P) : F->P;
  lua_Integer k = l_opt_integer(L, 2, "count", (lua_Integer)maxk);
  int vectors = l_opt_boolean(L, 2, "vectors", 1);
  if (k < 1 || (size_t)k > maxk)
    l_error(L, "%s: count must be in 1 .. %zu (%s), got %lld", fname, maxk,
           F->form == NNFT_FISHER_GRAM ? "the Gram form has at most min(n, P) non-zero modes"
                                       : "the number of trainable parameters",
           (long long)k);
  nnft_mat *w = l_newmat(L, (size_t)k, 1);
  nnft_mat *V = vectors ? l_newmat(L, F->P, (size_t)k) : NULL;
  size_t found = 0;
  nnft_status s = nnft_fisher_eigen(F, (size_t)k, w->data, V, &found);
  if (s) return l_status_error(L, s, fname, NULL);
  if (found < (size_t)k) { /* Gram form beyond the rank: trim to the non-zero modes */
    nnft_mat wv = {found, 1, w->ld, w->data, 0};
    l_pushcopy(L, &wv);
    if (V) {
      nnft_mat Vv = {F->P, found, V->ld, V->data, 0};
      l_pushcopy(L, &Vv);
    }
  }
  return vectors ? 2 : 1;
}

static int fisher_diag(lua_State *L) {
  nnft_fisher *F = check_fisher(L, 1);
  nnft_mat *d = l_newmat(L, F->P, 1);
  memcpy(d->data, F->diag, F->P * sizeof(double));
  return 1;
}

static int fisher_matrix(lua_State *L) {
  nnft_fisher *F = check_fisher(L, 1);
  if (F->form != NNFT_FISHER_DENSE)
    return l_error(L, "Fisher:matrix: only the dense form holds the P x P matrix (this one is "
                  "form='%s'); compute nnft.fisher(net, X, {form='dense'}) or use F:mvp(v)",
                  nnft_fisher_form_name(F->form));
  l_pushcopy(L, &F->dense);
  return 1;
}

static int fisher_gram(lua_State *L) {
  nnft_fisher *F = check_fisher(L, 1);
  nnft_mat *g = l_newmat(L, F->n, F->n);
  nnft_status s = nnft_fisher_gram(F, g);
  if (s) return l_status_error(L, s, "Fisher:gram", NULL);
  return 1;
}

static int fisher_mvp(lua_State *L) {
  nnft_fisher *F = check_fisher(L, 1);
  nnft_mat *v = check_vec(L, 2, F->P, "Fisher:mvp", "v");
  nnft_mat *o = l_newmat(L, F->P, 1);
  nnft_status s = nnft_fisher_mvp(F, v->data, o->data);
  if (s) return l_status_error(L, s, "Fisher:mvp", NULL);
  return 1;
}

static int fisher_rank(lua_State *L) {
  nnft_fisher *F = check_fisher(L, 1);
  size_t r = 0;
  nnft_status s = nnft_fisher_rank(F, &r);
  if (s) return l_status_error(L, s, "Fisher:rank", NULL);
  lua_pushinteger(L, (lua_Integer)r);
  return 1;
}

static int fisher_info(lua_State *L) {
  nnft_fisher *F = check_fisher(L, 1);
  lua_createtable(L, 0, 5);
  lua_pushstring(L, nnft_fisher_form_name(F->form));
  lua_setfield(L, -2, "form");
  lua_pushinteger(L, (lua_Integer)F->n);
  lua_setfield(L, -2, "n");
  lua_pushinteger(L, (lua_Integer)F->P);
  lua_setfield(L, -2, "P");
  lua_pushnumber(L, F->sigma);
  lua_setfield(L, -2, "sigma");
  lua_pushnumber(L, F->damping);
  lua_setfield(L, -2, "damping");
  return 1;
}

static int fisher_gc(lua_State *L) {
  l_fisher *u = luaL_checkudata(L, 1, L_FISHER_NAME);
  nnft_fisher_free(&u->F);
  return 0;
}

static int fisher_tostring(lua_State *L) {
  l_fisher *u = luaL_checkudata(L, 1, L_FISHER_NAME);
  if (!u->F.diag) {
    lua_pushstring(L, "nnft.Fisher (released)");
    return 1;
  }
  char buf[200];
  snprintf(buf, sizeof buf, "nnft.Fisher(form=%s, n=%zu, P=%zu, sigma=%g, damping=%g)",
           nnft_fisher_form_name(u->F.form), u->F.n, u->F.P, u->F.sigma, u->F.damping);
  lua_pushstring(L, buf);
  return 1;
}

/* ---- nnft.fisher.distance / kl / gp ---- */

static int fisher_distance(lua_State *L) {
  nnft_fisher *F = check_fisher(L, 1);
  nnft_mat *v = check_vec(L, 2, F->P, "nnft.fisher.distance", "dtheta");
  double d = 0;
  nnft_status s = nnft_fisher_distance(F, v->data, &d);
  if (s) return l_status_error(L, s, "nnft.fisher.distance", NULL);
  lua_pushnumber(L, d);
  return 1;
}

static nnft_mat *check_gauss(lua_State *L, int idx, int vec, const char *what) {
  int pushed;
  nnft_mat *m = l_tomat(L, idx, &pushed);
  if (pushed) lua_replace(L, idx);
  m = l_testmat(L, idx);
  if (vec && m->cols != 1 && m->rows == 1) { /* accept a row: view as a column */
    nnft_mat *c = l_newmat(L, m->cols, 1);
    for (size_t i = 0; i < m->cols; i++) c->data[i] = m->data[i * m->ld];
    lua_replace(L, idx);
    m = l_testmat(L, idx);
  }
  l_check_finite(L, m, "nnft.fisher.kl", what);
  return m;
}

static int fisher_kl(lua_State *L) {
  static const char *fname = "nnft.fisher.kl";
  lua_settop(L, 4);
  nnft_mat *m1 = check_gauss(L, 1, 1, "mu1"), *S1 = check_gauss(L, 2, 0, "S1");
  nnft_mat *m2 = check_gauss(L, 3, 1, "mu2"), *S2 = check_gauss(L, 4, 0, "S2");
  size_t k = m1->rows;
  if (m1->cols != 1 || m2->cols != 1 || m2->rows != k || S1->rows != k || S1->cols != k ||
      S2->rows != k || S2->cols != k)
    return l_error(L, "%s: shapes do not conform: mu1 %zu x %zu, S1 %zu x %zu, mu2 %zu x %zu, "
                  "S2 %zu x %zu (want k x 1 means and k x k covariances)", fname, m1->rows,
                  m1->cols, S1->rows, S1->cols, m2->rows, m2->cols, S2->rows, S2->cols);
  double kl = 0;
  nnft_status s = nnft_fisher_kl(m1, S1, m2, S2, &kl);
  if (s == NNFT_ENOTPD)
    return l_error(L, "%s: a covariance (S1 or S2) is not positive definite", fname);
  if (s == NNFT_ENONFINITE) /* the inputs were checked finite: an intermediate overflowed */
    return l_error(L, "%s: overflow (mu2 - mu1 or S2^-1 S1 exceeds the double range); rescale "
                  "the means and covariances", fname);
  if (s) return l_status_error(L, s, fname, NULL);
  lua_pushnumber(L, kl);
  return 1;
}

static int fisher_gp(lua_State *L) {
  static const char *fname = "nnft.fisher.gp";
  nnft_mat *C = l_checkmat(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  size_t n = C->rows, m = (size_t)lua_rawlen(L, 2);
  if (C->cols != n) return l_error(L, "%s: C must be square, got %zu x %zu", fname, C->rows, C->cols);
  if (m == 0) return l_error(L, "%s: dC_list is empty (give one n x n derivative per parameter)", fname);
  l_check_finite(L, C, fname, "C");
  const nnft_mat **dC = lua_newuserdatauv(L, m * sizeof *dC, 0);
  for (size_t i = 0; i < m; i++) {
    lua_rawgeti(L, 2, (lua_Integer)i + 1);
    nnft_mat *d = l_testmat(L, -1);
    if (!d) return l_error(L, "%s: dC_list[%zu] is not an nnft.Mat", fname, i + 1);
    if (d->rows != n || d->cols != n)
      return l_error(L, "%s: dC_list[%zu] is %zu x %zu but C is %zu x %zu", fname, i + 1, d->rows,
                    d->cols, n, n);
    l_check_finite(L, d, fname, "dC_list entry");
    dC[i] = d;
    lua_pop(L, 1); /* kept alive by the list */
  }
  nnft_mat *I = l_newmat(L, m, m);
  nnft_status s = nnft_fisher_gp(C, dC, m, I);
  if (s == NNFT_ENOTPD)
    return l_error(L, "%s: C is not positive definite (add the noise σ² I to the kernel matrix)",
                  fname);
  if (s) return l_status_error(L, s, fname, NULL);
  return 1;
}

/* ---- nnft.shell ---- */

typedef struct shell_args {
  nnft_shell_opts o;
  uint64_t seed;
  double prior_sd; /* <= 0: the net's prior */
  int have_data;
} shell_args;

static void parse_shell_opts(lua_State *L, int idx, const char *fname, const nnft_fisher *F,
                             shell_args *a) {
  static const char *const allowed[] = {"basis", "action", "strict", "seed", "prior_sd", "data",
                                        NULL};
  static const char *const bases[] = {"eigen", "diag", NULL};
  static const char *const actions[] = {"resample", "zero", "marginalise", "marginalize", NULL};
  opts_table(L, idx);
  l_check_options(L, idx, fname, allowed);
  memset(a, 0, sizeof *a);
  a->o.basis = (nnft_shell_basis)l_opt_choice(L, idx, "basis", "eigen", bases);
  int act = l_opt_choice(L, idx, "action", "resample", actions);
  a->o.action = act == 3 ? NNFT_SHELL_MARGINALISE : (nnft_shell_action)act;
  a->o.strict = l_opt_boolean(L, idx, "strict", 1);
  lua_Integer seed = l_opt_integer(L, idx, "seed", 0);
  if (seed < 0) l_error(L, "%s: seed must be an integer in 0 .. 2^63-1", fname);
  a->seed = (uint64_t)seed;
  a->prior_sd = l_opt_number(L, idx, "prior_sd", 0.0);
  lua_getfield(L, idx, "prior_sd");
  int has_sd = !lua_isnil(L, -1);
  lua_pop(L, 1);
  if (has_sd && !(a->prior_sd > 0 && isfinite(a->prior_sd)))
    l_error(L, "%s: prior_sd must be positive and finite, got %g", fname, a->prior_sd);
  a->o.data = l_opt_number(L, idx, "data", (double)F->n);
  if (!(a->o.data > 0) || !isfinite(a->o.data))
    l_error(L, "%s: data (the number of data points T) must be positive, got %g", fname, a->o.data);
  if (a->o.action == NNFT_SHELL_MARGINALISE && a->o.basis == NNFT_SHELL_DIAG &&
      F->form == NNFT_FISHER_GRAM)
    l_error(L, "%s: action='marginalise' in basis='diag' needs the metric's dense blocks; compute "
           "the Fisher with form='dense', 'block' or 'diag' (the Gram form has no P x P blocks)",
           fname);
}

static void check_cutoff(lua_State *L, double c, const char *fname) {
  if (!(c >= 0) || !isfinite(c))
    l_error(L, "%s: the cutoff Λ must be a finite number >= 0 (in units of the per-example Fisher "
           "with σ_ε), got %g", fname, c);
}

/* The shell problem for net and F: allocates (as Lua userdata on the stack) θ*, prior, draws, and
 * in the eigen basis the eigenpairs. */
static void build_problem(lua_State *L, nnft_net *net, const nnft_fisher *F, shell_args *a,
                          nnft_shell_problem *pb, const char *fname) {
  size_t P = F->P, NP = net->nparams;
  memset(pb, 0, sizeof *pb);
  pb->P = P;
  double *buf = lua_newuserdatauv(L, (5 * P + 2 * NP + 1) * sizeof(double), 0);
  size_t *idx = lua_newuserdatauv(L, (P ? P : 1) * sizeof(size_t), 0);
  double *theta = buf, *mean = buf + P, *sd = buf + 2 * P, *z1 = buf + 3 * P, *z2 = buf + 4 * P;
  double *fm = buf + 5 * P, *fs = fm + NP;
  nnft_net_get_trainable(net, theta);
  nnft_net_trainable_index(net, idx);
  nnft_net_prior(net, fm, fs);
  for (size_t i = 0; i < P; i++) {
    mean[i] = a->prior_sd > 0 ? 0.0 : fm[idx[i]];
    sd[i] = a->prior_sd > 0 ? a->prior_sd : fs[idx[i]];
  }
  nnft_rng r;
  nnft_rng_init(&r, a->seed);
  nnft_shell_draw(&r, P, z1, z2);
  pb->theta = theta;
  pb->prior_mean = mean;
  pb->prior_sd = sd;
  pb->z1 = z1;
  pb->z2 = z2;
  pb->damping = F->damping;
  pb->diag = F->diag;
  if (a->o.basis == NNFT_SHELL_EIGEN && F->form == NNFT_FISHER_DIAG)
    a->o.basis = NNFT_SHELL_DIAG; /* the eigenbasis of a diagonal metric is the parameter basis */
  if (a->o.action == NNFT_SHELL_MARGINALISE) {
    int iso = 1;
    for (size_t i = 0; i < P; i++) iso &= sd[i] == sd[0] && mean[i] == 0.0;
    if (a->o.basis == NNFT_SHELL_EIGEN && !iso)
      l_error(L, "%s: action='marginalise' in the eigenbasis needs an isotropic zero-mean prior; "
             "the network's trainable parameters have different prior sds or non-zero means: "
             "pass prior_sd=", fname);
    for (size_t i = 0; i < P; i++)
      if (!(sd[i] > 0))
        l_error(L, "%s: parameter %zu has prior sd 0 (sigma_w or sigma_b = 0): pass prior_sd=",
               fname, i + 1);
  } else if (a->o.action == NNFT_SHELL_RESAMPLE) {
    for (size_t i = 0; i < P; i++)
      if (!(sd[i] > 0)) sd[i] = 1e-300; /* a point-mass prior: resampling returns its mean */
  } else {
    for (size_t i = 0; i < P; i++) sd[i] = 1.0; /* unused by 'zero' */
  }
  if (a->o.basis == NNFT_SHELL_EIGEN) {
    size_t k = F->form == NNFT_FISHER_GRAM ? (F->n < P ? F->n : P) : P;
    nnft_mat *w = l_newmat(L, k, 1);
    nnft_mat *V = l_newmat(L, P, k);
    size_t found = 0;
    nnft_status s = nnft_fisher_eigen(F, k, w->data, V, &found);
    if (s) l_status_error(L, s, fname, "eigendecomposition of the Fisher metric");
    pb->k = found;
    pb->lambda = w->data;
    pb->V = V;
  } else if (a->o.action == NNFT_SHELL_MARGINALISE) {
    if (F->form == NNFT_FISHER_DENSE || F->form == NNFT_FISHER_BLOCK) {
      size_t nb = F->form == NNFT_FISHER_DENSE ? 1 : (F->J ? 1 : F->nl);
      size_t *boff = lua_newuserdatauv(L, nb * sizeof(size_t), 0);
      nnft_mat *bl = lua_newuserdatauv(L, nb * sizeof(nnft_mat), 0);
      for (size_t b = 0; b < nb; b++) {
        boff[b] = F->form == NNFT_FISHER_DENSE || F->J ? 0 : F->L[b].toff;
        bl[b] = F->form == NNFT_FISHER_DENSE ? F->dense : F->block[b];
      }
      pb->nblocks = nb;
      pb->boff = boff;
      pb->blocks = bl;
    }
  }
}

/* A copy of the Net at nidx with trainable parameters v: pushed. */
static void push_net_with(lua_State *L, int nidx, const double *v, const char *fname) {
  lua_getfield(L, nidx, "copy");
  lua_pushvalue(L, nidx);
  lua_call(L, 1, 1);
  nnft_net *c = l_checknet(L, -1);
  nnft_net_set_trainable(c, v);
  (void)fname;
}

static void check_pair(lua_State *L, nnft_net *net, const nnft_fisher *F, const char *fname) {
  if (net->ntrain != F->P)
    l_error(L, "%s: the Fisher metric has %zu parameters but the network has %zu trainable ones "
           "(compute the Fisher of this network)", fname, F->P, net->ntrain);
}

static int shell_coarse_grain(lua_State *L) {
  static const char *fname = "nnft.shell.coarse_grain";
  nnft_net *net = l_checknet(L, 1);
  const nnft_fisher *F = check_fisher(L, 2);
  double cut = luaL_checknumber(L, 3);
  lua_settop(L, 4);
  check_pair(L, net, F, fname);
  check_cutoff(L, cut, fname);
  shell_args a;
  parse_shell_opts(L, 4, fname, F, &a);
  nnft_shell_problem pb;
  build_problem(L, net, F, &a, &pb, fname);
  double *out = lua_newuserdatauv(L, (F->P ? F->P : 1) * sizeof(double), 0);
  size_t ns = 0, nn = 0;
  nnft_status s = nnft_shell_apply(&pb, cut, &a.o, out, &ns, &nn);
  if (s) return l_status_error(L, s, fname, NULL);
  push_net_with(L, 1, out, fname);
  lua_createtable(L, 0, 3);
  lua_pushinteger(L, (lua_Integer)ns);
  lua_setfield(L, -2, "sloppy");
  lua_pushinteger(L, (lua_Integer)(F->P - ns));
  lua_setfield(L, -2, "stiff");
  lua_pushinteger(L, (lua_Integer)nn);
  lua_setfield(L, -2, "null");
  return 2;
}

static int shell_schedule(lua_State *L) {
  static const char *fname = "nnft.shell.schedule";
  nnft_net *net = l_checknet(L, 1);
  const nnft_fisher *F = check_fisher(L, 2);
  luaL_checktype(L, 3, LUA_TTABLE);
  lua_settop(L, 4);
  check_pair(L, net, F, fname);
  size_t m = (size_t)lua_rawlen(L, 3);
  if (m == 0) return l_error(L, "%s: the list of cutoffs is empty", fname);
  shell_args a;
  parse_shell_opts(L, 4, fname, F, &a);
  double *cuts = lua_newuserdatauv(L, m * sizeof(double), 0);
  for (size_t j = 0; j < m; j++) {
    lua_rawgeti(L, 3, (lua_Integer)j + 1);
    if (!lua_isnumber(L, -1))
      return l_error(L, "%s: cutoff %zu is not a number", fname, j + 1);
    cuts[j] = lua_tonumber(L, -1);
    lua_pop(L, 1);
    check_cutoff(L, cuts[j], fname);
    if (j > 0 && cuts[j] < cuts[j - 1])
      return l_error(L, "%s: cutoffs must be ascending (cutoff %zu = %g < cutoff %zu = %g): a "
                    "schedule coarse-grains cumulatively", fname, j + 1, cuts[j], j, cuts[j - 1]);
  }
  nnft_shell_problem pb;
  build_problem(L, net, F, &a, &pb, fname);
  nnft_mat *out = l_newmat(L, F->P, m);
  size_t *counts = lua_newuserdatauv(L, m * sizeof(size_t), 0);
  nnft_status s = nnft_shell_schedule(&pb, cuts, m, &a.o, out, counts);
  if (s) return l_status_error(L, s, fname, NULL);
  lua_createtable(L, (int)m, 0); /* nets */
  int nets = lua_gettop(L);
  lua_createtable(L, (int)m, 0); /* counts */
  int cnt = lua_gettop(L);
  for (size_t j = 0; j < m; j++) {
    push_net_with(L, 1, out->data + j * out->ld, fname);
    lua_rawseti(L, nets, (lua_Integer)j + 1);
    lua_pushinteger(L, (lua_Integer)counts[j]);
    lua_rawseti(L, cnt, (lua_Integer)j + 1);
  }
  return 2;
}

/* ---- registration ---- */

static const luaL_Reg fisher_methods[] = {
    {"eigen", fisher_eigen}, {"diag", fisher_diag}, {"matrix", fisher_matrix},
    {"gram", fisher_gram},   {"mvp", fisher_mvp},   {"rank", fisher_rank},
    {"info", fisher_info},   {"release", fisher_gc}, {NULL, NULL}};
static const luaL_Reg fisher_meta[] = {
    {"__gc", fisher_gc}, {"__close", fisher_gc}, {"__tostring", fisher_tostring}, {NULL, NULL}};
static const luaL_Reg fisher_funcs[] = {
    {"kl", fisher_kl}, {"distance", fisher_distance}, {"gp", fisher_gp}, {NULL, NULL}};
static const luaL_Reg shell_funcs[] = {
    {"coarse_grain", shell_coarse_grain}, {"schedule", shell_schedule}, {NULL, NULL}};

void l_open_fisher(lua_State *L) {
  l_newclass(L, L_FISHER_NAME, fisher_methods, fisher_meta);
  lua_newtable(L); /* nnft.fisher: callable table */
  luaL_setfuncs(L, fisher_funcs, 0);
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, fisher_new);
  lua_setfield(L, -2, "__call");
  lua_setmetatable(L, -2);
  lua_setfield(L, -2, "fisher");
  lua_newtable(L);
  luaL_setfuncs(L, shell_funcs, 0);
  lua_setfield(L, -2, "shell");
}
