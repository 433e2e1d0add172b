/* nnft.mlp, nnft.cosnet: the Arch userdata (an architecture spec, physics.md §1, core
 * nnft_arch) and the Net userdata (one network of it: parameters, forward pass, gradients,
 * Jacobian, training; core nnft_net). docs/api/arch.md is the user's reference.
 *
 * A Lua activation (act = function) becomes the core's NNFT_ACT_CUSTOM through a trampoline that
 * calls the function under lua_pcall on the thread recorded by l_checkarch: it never raises
 * through the core; a failure is recorded and raised after the core returns. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "l_util.h"
#include "nnft_alloc.h"
#include "nnft_arch.h"
#include "nnft_net.h"

/* ---------------------------------------------------------------------------------------------
 * The Arch userdata */

typedef enum { KIND_MLP, KIND_COSNET } arch_kind;

/* For a Lua activation the functions are user values 1 (value) and 2 (derivative, optional) and
 * are also found by the trampoline through a weak-valued registry table keyed by the light
 * userdata u (value) and (char *)u + 1 (derivative). */
typedef struct l_arch {
  nnft_arch a;
  arch_kind kind;
  int has_deriv; /* a Lua derivative was given */
  int width_list, act_list; /* the constructor got lists (kept for spec and tostring) */
  lua_State *L;  /* thread the Lua activation runs on: set by l_checkarch for each call */
  int failed;    /* the Lua activation raised (or returned a non-number) in the current call */
  char errmsg[240];
} l_arch;

static const char custom_key = 'c'; /* registry: the weak table of Lua activations */

static l_arch *check_larch(lua_State *L, int idx) {
  return luaL_checkudata(L, idx, L_ARCH_NAME);
}

const nnft_arch *l_checkarch(lua_State *L, int idx) {
  l_arch *u = check_larch(L, idx);
  u->L = L;
  u->failed = 0;
  return &u->a;
}

void l_arch_check_custom(lua_State *L, int idx, const char *fname) {
  l_arch *u = check_larch(L, idx);
  if (u->failed) {
    u->failed = 0;
    luaL_error(L, "%s: activation function failed: %s", fname, u->errmsg);
  }
}

/* The trampoline: never raises (errors are recorded in u and the value is NaN). */
static double call_custom(l_arch *u, int deriv, double z) {
  lua_State *L = u->L;
  if (u->failed || !L) return NAN;
  if (!lua_checkstack(L, 4)) {
    snprintf(u->errmsg, sizeof u->errmsg, "Lua stack overflow");
    u->failed = 1;
    return NAN;
  }
  lua_rawgetp(L, LUA_REGISTRYINDEX, &custom_key);
  lua_rawgetp(L, -1, (const char *)u + deriv);
  lua_pushnumber(L, z);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    snprintf(u->errmsg, sizeof u->errmsg, "%s", msg ? msg : "(error object is not a string)");
    u->failed = 1;
    lua_pop(L, 2);
    return NAN;
  }
  int isnum;
  double v = lua_tonumberx(L, -1, &isnum);
  if (!isnum || lua_type(L, -1) != LUA_TNUMBER) {
    snprintf(u->errmsg, sizeof u->errmsg, "%s(%.17g) returned a %s, expected a number",
             deriv ? "act_deriv" : "act", z, luaL_typename(L, -1));
    u->failed = 1;
    v = NAN;
  }
  lua_pop(L, 2);
  return v;
}
static double custom_eval(void *ctx, double z) { return call_custom(ctx, 0, z); }
static double custom_deriv(void *ctx, double z) { return call_custom(ctx, 1, z); }

/* Push a new Arch userdata (zeroed, with its metatable). */
static l_arch *push_arch(lua_State *L) {
  l_arch *u = lua_newuserdatauv(L, sizeof *u, 2);
  memset(u, 0, sizeof *u);
  luaL_setmetatable(L, L_ARCH_NAME);
  return u;
}

/* ---- constructor helpers ---- */

/* A positive integer option (required when req). */
static size_t opt_posint(lua_State *L, int opts, const char *fname, const char *key, int req,
                         size_t def) {
  int t = lua_getfield(L, opts, key);
  size_t v = def;
  if (t == LUA_TNIL) {
    if (req) luaL_error(L, "%s: %s= is required (a positive integer)", fname, key);
  } else {
    int isint;
    lua_Integer i = lua_tointegerx(L, -1, &isint);
    if (t != LUA_TNUMBER || !isint)
      luaL_error(L, "%s: %s must be a positive integer, got %s", fname, key,
                 t == LUA_TNUMBER ? lua_tostring(L, -1) : luaL_typename(L, -1));
    if (i <= 0) luaL_error(L, "%s: %s must be a positive integer, got %I", fname, key, i);
    v = (size_t)i;
  }
  lua_pop(L, 1);
  return v;
}

/* Push the list of known activation names: "linear, relu, ..." */
static const char *known_acts(lua_State *L) {
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (int k = 0; k < NNFT_ACT_COUNT; k++) {
    if (k == NNFT_ACT_CUSTOM) continue;
    if (k) luaL_addstring(&b, ", ");
    luaL_addstring(&b, nnft_act_name((nnft_act)k));
  }
  luaL_addstring(&b, ", or a Lua function");
  luaL_pushresult(&b);
  return lua_tostring(L, -1);
}

/* The activation at the stack top (a name or a function): sets *act; a function is compared
 * with (or stored as) the arch's one Lua activation at user value 1 of the arch at aidx. */
static void parse_act(lua_State *L, int aidx, const char *fname, const char *what, nnft_act *act) {
  int t = lua_type(L, -1);
  if (t == LUA_TSTRING) {
    const char *name = lua_tostring(L, -1);
    int k = nnft_act_lookup(name);
    if (k < 0 || k == NNFT_ACT_CUSTOM)
      luaL_error(L, "%s: unknown activation '%s'%s (known: %s)", fname, name, what,
                 known_acts(L));
    *act = (nnft_act)k;
  } else if (t == LUA_TFUNCTION) {
    if (lua_getiuservalue(L, aidx, 1) == LUA_TFUNCTION && !lua_rawequal(L, -1, -2))
      luaL_error(L, "%s: only one Lua activation function per architecture", fname);
    lua_pop(L, 1);
    lua_pushvalue(L, -1);
    lua_setiuservalue(L, aidx, 1);
    *act = NNFT_ACT_CUSTOM;
  } else {
    luaL_error(L, "%s: act%s must be an activation name or a function, got %s", fname, what,
               luaL_typename(L, -1));
  }
}

/* A per-layer number option: a number for every layer or a list of nl numbers. */
static void opt_layer_numbers(lua_State *L, int opts, const char *fname, const char *key,
                              size_t nl, double def, int nonneg, double *out) {
  int t = lua_getfield(L, opts, key);
  if (t == LUA_TNIL) {
    for (size_t l = 0; l < nl; l++) out[l] = def;
  } else if (t == LUA_TNUMBER) {
    for (size_t l = 0; l < nl; l++) out[l] = lua_tonumber(L, -1);
  } else if (t == LUA_TTABLE) {
    size_t len = lua_rawlen(L, -1);
    if (len != nl)
      luaL_error(L, "%s: %s has %I entries, expected %I (one per layer: the hidden layers, then "
                 "the output layer)", fname, key, (lua_Integer)len, (lua_Integer)nl);
    for (size_t l = 0; l < nl; l++) {
      if (lua_rawgeti(L, -1, (lua_Integer)l + 1) != LUA_TNUMBER)
        luaL_error(L, "%s: %s[%I] must be a number, got %s", fname, key, (lua_Integer)l + 1,
                   luaL_typename(L, -1));
      out[l] = lua_tonumber(L, -1);
      lua_pop(L, 1);
    }
  } else {
    luaL_error(L, "%s: %s must be a number or a list of %I numbers, got %s", fname, key,
               (lua_Integer)nl, luaL_typename(L, -1));
  }
  for (size_t l = 0; l < nl; l++) {
    if (!isfinite(out[l]))
      luaL_error(L, "%s: %s must be finite, got %f", fname, key, (lua_Number)out[l]);
    if (nonneg && out[l] < 0)
      luaL_error(L, "%s: %s must be >= 0, got %f", fname, key, (lua_Number)out[l]);
  }
  lua_pop(L, 1);
}

/* frozen = {layer indices, 1-based}. */
static void opt_frozen(lua_State *L, int opts, const char *fname, nnft_arch *a) {
  int t = lua_getfield(L, opts, "frozen");
  if (t == LUA_TTABLE) {
    size_t len = lua_rawlen(L, -1);
    for (size_t k = 1; k <= len; k++) {
      int isint;
      lua_rawgeti(L, -1, (lua_Integer)k);
      lua_Integer i = lua_tointegerx(L, -1, &isint);
      if (lua_type(L, -1) != LUA_TNUMBER || !isint || i < 1 || (size_t)i > a->nlayers)
        luaL_error(L, "%s: frozen[%I] must be a layer index 1 .. %I (hidden layers, then the "
                   "output layer %I), got %s", fname, (lua_Integer)k, (lua_Integer)a->nlayers,
                   (lua_Integer)a->nlayers, luaL_tolstring(L, -1, NULL));
      a->layer[i - 1].frozen = 1;
      lua_pop(L, 1);
    }
  } else if (t != LUA_TNIL) {
    luaL_error(L, "%s: frozen must be a list of layer indices, got %s", fname,
               luaL_typename(L, -1));
  }
  lua_pop(L, 1);
}

static nnft_param opt_param(lua_State *L, int opts) {
  static const char *const names[] = {"standard", "ntk", NULL};
  return l_opt_choice(L, opts, "param", "standard", names) ? NNFT_PARAM_NTK
                                                           : NNFT_PARAM_STANDARD;
}

/* The kind= key spec() writes: accepted when it names this constructor. */
static void opt_kind(lua_State *L, int opts, const char *fname, const char *kind) {
  const char *k = l_opt_string(L, opts, "kind", kind);
  if (strcmp(k, kind) != 0)
    luaL_error(L, "%s: kind='%s' does not match (this constructor builds kind='%s')", fname, k,
               kind);
}

/* The final guard: the core's own check. */
static void check_arch_core(lua_State *L, const nnft_arch *a, const char *fname) {
  nnft_status s = nnft_arch_check(a);
  if (s) l_status_error(L, s, fname, "invalid architecture");
  size_t P;
  if ((s = nnft_arch_nparams(a, &P)))
    l_status_error(L, s, fname, "the parameter count overflows");
}

/* nnft.mlp{d_in=, width=, depth=, act=, act_deriv=, sigma_w=, sigma_b=, mean_w=, mean_b=,
 *          bias=, frozen=, param=} */
static int l_mlp(lua_State *L) {
  static const char *const allowed[] = {"d_in", "width", "depth", "act", "act_deriv", "sigma_w",
                                        "sigma_b", "mean_w", "mean_b", "bias", "frozen",
                                        "param", "kind", NULL};
  const char *fname = "nnft.mlp";
  luaL_checktype(L, 1, LUA_TTABLE);
  l_check_options(L, 1, fname, allowed);
  lua_settop(L, 1);
  l_arch *u = push_arch(L); /* index 2 */
  nnft_arch *a = &u->a;
  u->kind = KIND_MLP;
  opt_kind(L, 1, fname, "mlp");
  a->d_in = opt_posint(L, 1, fname, "d_in", 1, 0);
  /* width: a number (with depth=) or a list (its length is the depth) */
  size_t widths[NNFT_MAX_LAYERS], depth;
  int t = lua_getfield(L, 1, "width");
  if (t == LUA_TTABLE) {
    depth = lua_rawlen(L, -1);
    if (depth == 0) luaL_error(L, "%s: width is an empty list (depth must be >= 1)", fname);
    if (depth >= NNFT_MAX_LAYERS)
      luaL_error(L, "%s: %I hidden layers, at most %d are supported", fname,
                 (lua_Integer)depth, NNFT_MAX_LAYERS - 1);
    for (size_t l = 0; l < depth; l++) {
      int isint;
      lua_rawgeti(L, -1, (lua_Integer)l + 1);
      lua_Integer w = lua_tointegerx(L, -1, &isint);
      if (lua_type(L, -1) != LUA_TNUMBER || !isint || w <= 0)
        luaL_error(L, "%s: width[%I] must be a positive integer, got %s", fname,
                   (lua_Integer)l + 1, luaL_tolstring(L, -1, NULL));
      widths[l] = (size_t)w;
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
    u->width_list = 1;
    lua_getfield(L, 1, "depth");
    if (!lua_isnil(L, -1)) {
      int isint;
      lua_Integer dd = lua_tointegerx(L, -1, &isint);
      if (!isint || (size_t)dd != depth)
        luaL_error(L, "%s: depth=%s disagrees with the %I entries of width", fname,
                   luaL_tolstring(L, -1, NULL), (lua_Integer)depth);
    }
    lua_pop(L, 1);
  } else {
    lua_pop(L, 1);
    size_t w = opt_posint(L, 1, fname, "width", 1, 0);
    depth = opt_posint(L, 1, fname, "depth", 0, 1);
    if (depth >= NNFT_MAX_LAYERS)
      luaL_error(L, "%s: depth=%I, at most %d hidden layers are supported", fname,
                 (lua_Integer)depth, NNFT_MAX_LAYERS - 1);
    for (size_t l = 0; l < depth; l++) widths[l] = w;
  }
  size_t nl = depth + 1;
  a->nlayers = nl;
  size_t fan = a->d_in;
  for (size_t l = 0; l < nl; l++) {
    a->layer[l].fan_in = fan;
    a->layer[l].fan_out = l < depth ? widths[l] : 1;
    a->layer[l].act = NNFT_ACT_LINEAR;
    fan = a->layer[l].fan_out;
  }
  /* act: a name, a function, or a list of depth of them */
  t = lua_getfield(L, 1, "act");
  if (t == LUA_TNIL) {
    for (size_t l = 0; l < depth; l++) a->layer[l].act = NNFT_ACT_RELU;
  } else if (t == LUA_TTABLE) {
    size_t len = lua_rawlen(L, -1);
    if (len != depth)
      luaL_error(L, "%s: act has %I entries, expected %I (one per hidden layer)", fname,
                 (lua_Integer)len, (lua_Integer)depth);
    u->act_list = 1;
    for (size_t l = 0; l < depth; l++) {
      char what[40];
      snprintf(what, sizeof what, " in act[%zu]", l + 1);
      lua_rawgeti(L, -1, (lua_Integer)l + 1);
      parse_act(L, 2, fname, what, &a->layer[l].act);
      lua_pop(L, 1);
    }
  } else {
    nnft_act act;
    parse_act(L, 2, fname, "", &act);
    for (size_t l = 0; l < depth; l++) a->layer[l].act = act;
  }
  lua_pop(L, 1);
  int custom = lua_getiuservalue(L, 2, 1) == LUA_TFUNCTION;
  lua_pop(L, 1);
  t = lua_getfield(L, 1, "act_deriv");
  if (t != LUA_TNIL) {
    if (t != LUA_TFUNCTION)
      luaL_error(L, "%s: act_deriv must be a function, got %s", fname, luaL_typename(L, -1));
    if (!custom) luaL_error(L, "%s: act_deriv= is only meaningful with act = a Lua function",
                            fname);
    lua_setiuservalue(L, 2, 2);
    u->has_deriv = 1;
  } else {
    lua_pop(L, 1);
  }
  for (size_t l = 0; l < depth; l++)
    if (a->layer[l].act == NNFT_ACT_GAUSSNET && !(l == 0 && depth == 1))
      luaL_error(L, "%s: gauss-net is defined for the hidden layer of a one-hidden-layer "
                 "network only (depth=1), physics.md §1.2", fname);
  double v[NNFT_MAX_LAYERS];
  opt_layer_numbers(L, 1, fname, "sigma_w", nl, 1.0, 1, v);
  for (size_t l = 0; l < nl; l++) a->layer[l].sigma_w = v[l];
  opt_layer_numbers(L, 1, fname, "sigma_b", nl, 1.0, 1, v);
  for (size_t l = 0; l < nl; l++) a->layer[l].sigma_b = v[l];
  opt_layer_numbers(L, 1, fname, "mean_w", nl, 0.0, 0, v);
  for (size_t l = 0; l < nl; l++) a->layer[l].mean_w = v[l];
  opt_layer_numbers(L, 1, fname, "mean_b", nl, 0.0, 0, v);
  for (size_t l = 0; l < nl; l++) a->layer[l].mean_b = v[l];
  t = lua_getfield(L, 1, "bias");
  for (size_t l = 0; l < nl; l++) {
    if (t == LUA_TNIL) {
      a->layer[l].has_bias = 1;
    } else if (t == LUA_TBOOLEAN) {
      a->layer[l].has_bias = lua_toboolean(L, -1);
    } else if (t == LUA_TTABLE) {
      if (lua_rawlen(L, -1) != nl)
        luaL_error(L, "%s: bias has %I entries, expected %I (one per layer)", fname,
                   (lua_Integer)lua_rawlen(L, -1), (lua_Integer)nl);
      if (lua_rawgeti(L, -1, (lua_Integer)l + 1) != LUA_TBOOLEAN)
        luaL_error(L, "%s: bias[%I] must be a boolean, got %s", fname, (lua_Integer)l + 1,
                   luaL_typename(L, -1));
      a->layer[l].has_bias = lua_toboolean(L, -1);
      lua_pop(L, 1);
    } else {
      luaL_error(L, "%s: bias must be a boolean or a list of booleans, got %s", fname,
                 luaL_typename(L, -1));
    }
  }
  lua_pop(L, 1);
  opt_frozen(L, 1, fname, a);
  a->param = opt_param(L, 1);
  if (custom) {
    a->custom.eval = custom_eval;
    a->custom.deriv = u->has_deriv ? custom_deriv : NULL;
    a->custom.ctx = u;
    lua_rawgetp(L, LUA_REGISTRYINDEX, &custom_key);
    lua_getiuservalue(L, 2, 1);
    lua_rawsetp(L, -2, u);
    lua_getiuservalue(L, 2, 2);
    lua_rawsetp(L, -2, (const char *)u + 1);
    lua_pop(L, 1);
  }
  check_arch_core(L, a, fname);
  lua_settop(L, 2);
  return 1;
}

/* nnft.cosnet{d_in=, width=, sigma_a=, sigma_w= | radius=, mass=, frozen=, param=} */
static int l_cosnet(lua_State *L) {
  static const char *const allowed[] = {"d_in", "width", "sigma_a", "sigma_w", "radius", "mass",
                                        "frozen", "param", "kind", NULL};
  const char *fname = "nnft.cosnet";
  luaL_checktype(L, 1, LUA_TTABLE);
  l_check_options(L, 1, fname, allowed);
  lua_settop(L, 1);
  l_arch *u = push_arch(L);
  nnft_arch *a = &u->a;
  u->kind = KIND_COSNET;
  opt_kind(L, 1, fname, "cosnet");
  a->d_in = opt_posint(L, 1, fname, "d_in", 1, 0);
  size_t N = opt_posint(L, 1, fname, "width", 1, 0);
  double sa = l_opt_number(L, 1, "sigma_a", 1.0);
  if (!(isfinite(sa) && sa > 0))
    luaL_error(L, "%s: sigma_a must be positive and finite, got %f", fname, (lua_Number)sa);
  lua_getfield(L, 1, "radius");
  int generalised = !lua_isnil(L, -1);
  lua_getfield(L, 1, "mass");
  int has_mass = !lua_isnil(L, -1);
  lua_getfield(L, 1, "sigma_w");
  int has_sw = !lua_isnil(L, -1);
  lua_pop(L, 3);
  a->nlayers = 2;
  a->is_cosnet = 1;
  a->layer[0] = (nnft_layer){a->d_in, N, NNFT_ACT_COS, 1.0, 0.0, 0.0, 0.0, 1, 0};
  a->layer[1] = (nnft_layer){N, 1, NNFT_ACT_LINEAR, sa, 0.0, 0.0, 0.0, 0, 0};
  if (generalised) {
    if (has_sw)
      luaL_error(L, "%s: sigma_w= (Gaussian frequencies) and radius= (frequencies uniform in "
                 "the ball) exclude each other", fname);
    double R = l_opt_number(L, 1, "radius", 1.0), m = l_opt_number(L, 1, "mass", 0.0);
    if (!(isfinite(R) && R > 0))
      luaL_error(L, "%s: radius must be positive and finite, got %f", fname, (lua_Number)R);
    if (!(isfinite(m) && m >= 0))
      luaL_error(L, "%s: mass must be finite and >= 0, got %f", fname, (lua_Number)m);
    if (m == 0.0 && a->d_in <= 2)
      luaL_error(L, "%s: mass=0 makes the two-point function infrared divergent in d_in = %I "
                 "(the integral of 1/|b|^2 over the ball diverges at b = 0 for d <= 2); give "
                 "mass= > 0", fname, (lua_Integer)a->d_in);
    a->freq = NNFT_FREQ_BALL;
    a->radius = R;
    a->mass = m;
    a->amplitude = 1;
    double c2 = nnft_arch_cos_c2(a);
    if (!(isfinite(c2) && c2 > 0))
      luaL_error(L, "%s: the amplitude normalisation C^2 = 2 vol(B_R)/(sigma_a^2 (2 pi)^d) = %f "
                 "is not representable in double precision for d_in = %I, radius = %f, "
                 "sigma_a = %f; use a smaller d_in or a radius nearer 2 pi", fname,
                 (lua_Number)c2, (lua_Integer)a->d_in, (lua_Number)R, (lua_Number)sa);
  } else {
    if (has_mass)
      luaL_error(L, "%s: mass= needs radius= (the generalised cos-net: frequencies uniform in "
                 "the ball of that radius)", fname);
    double sw = l_opt_number(L, 1, "sigma_w", 1.0);
    if (!(isfinite(sw) && sw >= 0))
      luaL_error(L, "%s: sigma_w must be finite and >= 0, got %f", fname, (lua_Number)sw);
    a->freq = NNFT_FREQ_GAUSSIAN;
    a->layer[0].sigma_w = sw;
  }
  opt_frozen(L, 1, fname, a);
  a->param = opt_param(L, 1);
  check_arch_core(L, a, fname);
  lua_settop(L, 2);
  return 1;
}

/* ---- spec and tostring ---- */

static int all_equal_d(const double *v, size_t n) {
  for (size_t k = 1; k < n; k++)
    if (v[k] != v[0]) return 0;
  return 1;
}

/* Set t[key] (t at -1) to v[0] when all entries agree (and !force_list), else a list. */
static void set_numbers(lua_State *L, const char *key, const double *v, size_t n,
                        int force_list) {
  if (!force_list && all_equal_d(v, n)) {
    lua_pushnumber(L, v[0]);
  } else {
    lua_createtable(L, (int)n, 0);
    for (size_t k = 0; k < n; k++) {
      lua_pushnumber(L, v[k]);
      lua_rawseti(L, -2, (lua_Integer)k + 1);
    }
  }
  lua_setfield(L, -2, key);
}

static void get_field(const nnft_arch *a, int which, double *v) {
  for (size_t l = 0; l < a->nlayers; l++) {
    const nnft_layer *ly = &a->layer[l];
    v[l] = which == 0 ? ly->sigma_w : which == 1 ? ly->sigma_b : which == 2 ? ly->mean_w
           : which == 3 ? ly->mean_b : (double)ly->fan_out;
  }
}

/* Push the activation of layer l: its name, or the Lua function (arch at aidx). */
static void push_act(lua_State *L, int aidx, const nnft_arch *a, size_t l) {
  if (a->layer[l].act == NNFT_ACT_CUSTOM)
    lua_getiuservalue(L, aidx, 1);
  else
    lua_pushstring(L, nnft_act_name(a->layer[l].act));
}

/* Push the plain table arch:spec() returns for the Arch at aidx. */
static void push_spec(lua_State *L, int aidx) {
  aidx = lua_absindex(L, aidx);
  l_arch *u = check_larch(L, aidx);
  const nnft_arch *a = &u->a;
  size_t nl = a->nlayers, depth = nl - 1;
  double v[NNFT_MAX_LAYERS];
  lua_newtable(L);
  lua_pushstring(L, u->kind == KIND_MLP ? "mlp" : "cosnet");
  lua_setfield(L, -2, "kind");
  lua_pushinteger(L, (lua_Integer)a->d_in);
  lua_setfield(L, -2, "d_in");
  if (u->kind == KIND_COSNET) {
    lua_pushinteger(L, (lua_Integer)a->layer[0].fan_out);
    lua_setfield(L, -2, "width");
    lua_pushnumber(L, a->layer[1].sigma_w);
    lua_setfield(L, -2, "sigma_a");
    if (a->freq == NNFT_FREQ_BALL) {
      lua_pushnumber(L, a->radius);
      lua_setfield(L, -2, "radius");
      lua_pushnumber(L, a->mass);
      lua_setfield(L, -2, "mass");
    } else {
      lua_pushnumber(L, a->layer[0].sigma_w);
      lua_setfield(L, -2, "sigma_w");
    }
  } else {
    if (u->width_list) {
      lua_createtable(L, (int)depth, 0);
      for (size_t l = 0; l < depth; l++) {
        lua_pushinteger(L, (lua_Integer)a->layer[l].fan_out);
        lua_rawseti(L, -2, (lua_Integer)l + 1);
      }
    } else {
      lua_pushinteger(L, (lua_Integer)a->layer[0].fan_out);
    }
    lua_setfield(L, -2, "width");
    lua_pushinteger(L, (lua_Integer)depth);
    lua_setfield(L, -2, "depth");
    int acts_equal = 1;
    for (size_t l = 1; l < depth; l++) acts_equal &= a->layer[l].act == a->layer[0].act;
    if (u->act_list || !acts_equal) {
      lua_createtable(L, (int)depth, 0);
      for (size_t l = 0; l < depth; l++) {
        push_act(L, aidx, a, l);
        lua_rawseti(L, -2, (lua_Integer)l + 1);
      }
    } else {
      push_act(L, aidx, a, 0);
    }
    lua_setfield(L, -2, "act");
    if (u->has_deriv) {
      lua_getiuservalue(L, aidx, 2);
      lua_setfield(L, -2, "act_deriv");
    }
    static const char *const keys[4] = {"sigma_w", "sigma_b", "mean_w", "mean_b"};
    for (int k = 0; k < 4; k++) {
      get_field(a, k, v);
      set_numbers(L, keys[k], v, nl, 0);
    }
    int bias_equal = 1;
    for (size_t l = 1; l < nl; l++) bias_equal &= a->layer[l].has_bias == a->layer[0].has_bias;
    if (bias_equal) {
      lua_pushboolean(L, a->layer[0].has_bias);
    } else {
      lua_createtable(L, (int)nl, 0);
      for (size_t l = 0; l < nl; l++) {
        lua_pushboolean(L, a->layer[l].has_bias);
        lua_rawseti(L, -2, (lua_Integer)l + 1);
      }
    }
    lua_setfield(L, -2, "bias");
  }
  lua_newtable(L);
  lua_Integer k = 0;
  for (size_t l = 0; l < nl; l++)
    if (a->layer[l].frozen) {
      lua_pushinteger(L, (lua_Integer)l + 1);
      lua_rawseti(L, -2, ++k);
    }
  lua_setfield(L, -2, "frozen");
  lua_pushstring(L, a->param == NNFT_PARAM_NTK ? "ntk" : "standard");
  lua_setfield(L, -2, "param");
}

static int arch_spec(lua_State *L) {
  check_larch(L, 1);
  push_spec(L, 1);
  return 1;
}

/* Replace the spec value at the top by its display string: numbers as %.14g, lists in braces,
 * functions as <function>. */
static void to_display(lua_State *L) {
  char num[48];
  switch (lua_type(L, -1)) {
  case LUA_TNUMBER:
    if (lua_isinteger(L, -1))
      snprintf(num, sizeof num, "%lld", (long long)lua_tointeger(L, -1));
    else
      snprintf(num, sizeof num, "%.14g", lua_tonumber(L, -1));
    lua_pop(L, 1);
    lua_pushstring(L, num);
    break;
  case LUA_TBOOLEAN: {
    int v = lua_toboolean(L, -1);
    lua_pop(L, 1);
    lua_pushstring(L, v ? "true" : "false");
    break;
  }
  case LUA_TFUNCTION:
    lua_pop(L, 1);
    lua_pushstring(L, "<function>");
    break;
  case LUA_TTABLE: {
    int n = (int)lua_rawlen(L, -1), list = lua_gettop(L);
    luaL_checkstack(L, 2 * n + 4, "architecture too large to display");
    lua_pushstring(L, "{");
    for (int k = 1; k <= n; k++) {
      if (k > 1) lua_pushstring(L, ", ");
      lua_rawgeti(L, list, k);
      to_display(L);
    }
    lua_pushstring(L, "}");
    lua_concat(L, lua_gettop(L) - list);
    lua_remove(L, list);
    break;
  }
  default: luaL_tolstring(L, -1, NULL); lua_remove(L, -2); break;
  }
}

/* "nnft.mlp{d_in=1, width=1000, depth=1, act=relu, sigma_w=1, sigma_b=0, param=standard}",
 * with mean_w, mean_b, bias, frozen, act_deriv only when not the defaults. */
static void push_tostring(lua_State *L, int aidx) {
  aidx = lua_absindex(L, aidx);
  l_arch *u = check_larch(L, aidx);
  push_spec(L, aidx);
  int spec = lua_gettop(L);
  static const char *const mlp_keys[] = {"d_in", "width", "depth", "act", "act_deriv",
                                         "sigma_w", "sigma_b", "mean_w", "mean_b", "bias",
                                         "frozen", "param", NULL};
  static const char *const cos_keys[] = {"d_in", "width", "sigma_a", "sigma_w", "radius",
                                         "mass", "frozen", "param", NULL};
  const char *const *keys = u->kind == KIND_MLP ? mlp_keys : cos_keys;
  luaL_checkstack(L, 40, NULL);
  lua_pushstring(L, u->kind == KIND_MLP ? "nnft.mlp{" : "nnft.cosnet{");
  int first = 1;
  for (int k = 0; keys[k]; k++) {
    int t = lua_getfield(L, spec, keys[k]);
    int skip = t == LUA_TNIL;
    if (!skip && (strcmp(keys[k], "mean_w") == 0 || strcmp(keys[k], "mean_b") == 0))
      skip = t == LUA_TNUMBER && lua_tonumber(L, -1) == 0;
    if (!skip && strcmp(keys[k], "bias") == 0) skip = t == LUA_TBOOLEAN && lua_toboolean(L, -1);
    if (!skip && strcmp(keys[k], "frozen") == 0) skip = lua_rawlen(L, -1) == 0;
    if (skip) {
      lua_pop(L, 1);
      continue;
    }
    to_display(L);
    lua_pushfstring(L, "%s%s=", first ? "" : ", ", keys[k]);
    lua_insert(L, -2);
    lua_concat(L, 3); /* the string so far, "key=", value */
    first = 0;
  }
  lua_pushstring(L, "}");
  lua_concat(L, 2);
  lua_remove(L, spec);
}

static int arch_tostring(lua_State *L) {
  push_tostring(L, 1);
  return 1;
}
/* ---------------------------------------------------------------------------------------------
 * The Net userdata: the network, and its Arch as user value 1 (keeps the Lua activation and the
 * trampoline's context alive). busy counts core calls in progress that may run Lua code (a Lua
 * activation): release, set_params and train refuse then. */

typedef struct l_net {
  nnft_net net;
  int busy;
} l_net;

static l_net *check_lnet(lua_State *L, int idx) {
  l_net *u = luaL_checkudata(L, idx, L_NET_NAME);
  if (!u->net.theta) luaL_argerror(L, idx, "network has been released (closed)");
  return u;
}

/* Push the Net's Arch, bind its Lua activation to L; returns the Arch's stack index. */
static int bind_arch(lua_State *L, int nidx) {
  lua_getiuservalue(L, nidx, 1);
  l_checkarch(L, -1);
  return lua_gettop(L);
}

nnft_net *l_checknet(lua_State *L, int idx) {
  l_net *u = check_lnet(L, idx);
  bind_arch(L, idx);
  lua_pop(L, 1); /* the Net's user value keeps the Arch alive */
  return &u->net;
}

void l_net_check_custom(lua_State *L, int idx, const char *fname) {
  check_lnet(L, idx);
  lua_getiuservalue(L, idx, 1);
  l_arch_check_custom(L, -1, fname);
  lua_pop(L, 1);
}

static void check_not_busy(lua_State *L, l_net *u, const char *fname) {
  if (u->busy)
    luaL_error(L, "%s: the network is in use (called from its own activation function)", fname);
}

/* Push a new, empty Net userdata whose Arch is the value at aidx. */
static l_net *push_net(lua_State *L, int aidx) {
  aidx = lua_absindex(L, aidx);
  l_net *u = lua_newuserdatauv(L, sizeof *u, 1);
  memset(u, 0, sizeof *u);
  luaL_setmetatable(L, L_NET_NAME);
  lua_pushvalue(L, aidx);
  lua_setiuservalue(L, -2, 1);
  return u;
}

/* A seed: an integer 0 .. 2^63-1 (option key of the table at opts). */
static int opt_seed(lua_State *L, int opts, const char *fname, uint64_t *seed) {
  int t = lua_getfield(L, opts, "seed");
  if (t == LUA_TNIL) {
    lua_pop(L, 1);
    return 0;
  }
  int isint;
  lua_Integer s = lua_tointegerx(L, -1, &isint);
  if (t != LUA_TNUMBER || !isint || s < 0)
    luaL_error(L, "%s: seed must be an integer in 0 .. 2^63-1, got %s", fname,
               luaL_tolstring(L, -1, NULL));
  lua_pop(L, 1);
  *seed = (uint64_t)s;
  return 1;
}

static void raise_net_status(lua_State *L, nnft_status s, const char *fname) {
  if (s == NNFT_ENOMEM)
    l_status_error(L, s, fname, "the network's workspace could not be allocated");
  l_status_error(L, s, fname, NULL);
}

/* arch:init{seed=, stream=} -> Net */
static int arch_init(lua_State *L) {
  static const char *const allowed[] = {"seed", "stream", NULL};
  const char *fname = "arch:init";
  const nnft_arch *a = l_checkarch(L, 1);
  l_check_options(L, 2, fname, allowed);
  if (!lua_istable(L, 2))
    luaL_error(L, "%s: seed= is required (an integer in 0 .. 2^63-1): arch:init{seed = 7}",
               fname);
  uint64_t seed;
  if (!opt_seed(L, 2, fname, &seed))
    luaL_error(L, "%s: seed= is required (an integer in 0 .. 2^63-1)", fname);
  lua_Integer stream = l_opt_integer(L, 2, "stream", 0);
  if (stream < 0) luaL_error(L, "%s: stream must be an integer >= 1, got %I", fname, stream);
  nnft_rng r;
  nnft_rng_init(&r, seed);
  if (stream > 0) nnft_rng_substream(&r, (uint64_t)stream - 1, &r);
  l_net *u = push_net(L, 1);
  nnft_status s = nnft_net_setup(a, &u->net);
  if (s) raise_net_status(L, s, fname);
  if ((s = nnft_net_init(&u->net, &r))) raise_net_status(L, s, fname);
  return 1;
}

static int arch_nparams(lua_State *L) {
  const nnft_arch *a = l_checkarch(L, 1);
  size_t P = 0;
  nnft_arch_nparams(a, &P); /* checked at construction */
  lua_pushinteger(L, (lua_Integer)P);
  return 1;
}

/* X at idx: a Mat (or table) with d_in columns and finite entries. */
static const nnft_mat *check_X(lua_State *L, int idx, const nnft_net *net, const char *fname) {
  int t = lua_type(L, idx);
  if (!l_testmat(L, idx) && t != LUA_TTABLE && t != LUA_TNUMBER)
    luaL_error(L, "%s: X must be an nnft.Mat (one point per row) or a table, got %s", fname,
               luaL_typename(L, idx));
  int pushed;
  nnft_mat *X = l_tomat(L, idx, &pushed);
  if (pushed) lua_replace(L, idx);
  if (X->cols != net->arch.d_in)
    luaL_error(L, "%s: X is %I x %I, but the network takes d_in = %I columns (rows of X "
               "are points)", fname, (lua_Integer)X->rows, (lua_Integer)X->cols,
               (lua_Integer)net->arch.d_in);
  l_check_finite(L, X, fname, "X");
  return X;
}

/* y at idx: n x 1 (a column, or a table of numbers), finite. */
static const nnft_mat *check_y(lua_State *L, int idx, size_t n, const char *fname) {
  int t = lua_type(L, idx);
  if (!l_testmat(L, idx) && t != LUA_TTABLE && t != LUA_TNUMBER)
    luaL_error(L, "%s: y must be an nnft.Mat (n x 1) or a table of numbers, got %s", fname,
               luaL_typename(L, idx));
  int pushed;
  nnft_mat *y = l_tomat(L, idx, &pushed);
  if (pushed) lua_replace(L, idx);
  if (y->rows != n || y->cols != 1)
    luaL_error(L, "%s: y is %I x %I, expected %I x 1 (one target per row of X)", fname,
               (lua_Integer)y->rows, (lua_Integer)y->cols, (lua_Integer)n);
  l_check_finite(L, y, fname, "y");
  return y;
}

/* Run after a core call on the Net at nidx (Arch bound at aidx): custom errors, then status. */
static void finish_call(lua_State *L, l_net *u, int aidx, nnft_status s, const char *fname) {
  u->busy--;
  l_arch_check_custom(L, aidx, fname);
  if (s) raise_net_status(L, s, fname);
}

/* The network forward/loss run on: net itself, or with {features=true} its trainable suffix, whose
 * input is net:features(X) (the frozen prefix computed once by the caller). */
static const nnft_net *input_net(lua_State *L, l_net *u, int opt_idx, nnft_net *sub,
                                 const char *fname) {
  static const char *const allowed[] = {"features", NULL};
  l_check_options(L, opt_idx, fname, allowed);
  if (!l_opt_boolean(L, opt_idx, "features", 0)) return &u->net;
  if (nnft_net_suffix(&u->net, sub))
    luaL_error(L, "%s: {features=true} needs a network with trainable layers and, for a "
               "generalised cos-net, no frozen prefix", fname);
  return sub;
}

/* net:forward(X [, {features=true}]) -> n x 1 Mat */
static int net_forward(lua_State *L) {
  const char *fname = "net:forward";
  l_net *u = check_lnet(L, 1);
  lua_settop(L, 3);
  nnft_net sub;
  const nnft_net *net = input_net(L, u, 3, &sub, fname);
  const nnft_mat *X = check_X(L, 2, net, fname);
  nnft_mat *f = l_newmat(L, X->rows, 1);
  int aidx = bind_arch(L, 1);
  u->busy++;
  nnft_status s = nnft_net_forward(net, X, f);
  finish_call(L, u, aidx, s, fname);
  lua_pop(L, 1);
  return 1;
}

/* net:features(X) -> H, the input of the first trainable layer at the rows of X */
static int net_features(lua_State *L) {
  const char *fname = "net:features";
  l_net *u = check_lnet(L, 1);
  lua_settop(L, 2);
  const nnft_mat *X = check_X(L, 2, &u->net, fname);
  nnft_net sub;
  if (nnft_net_suffix(&u->net, &sub))
    luaL_error(L, "%s: needs a network with trainable layers and, for a generalised cos-net, no "
               "frozen prefix (its readout also depends on the frozen frequencies)", fname);
  nnft_mat *H = l_newmat(L, X->rows, sub.arch.d_in);
  int aidx = bind_arch(L, 1);
  u->busy++;
  nnft_status s = nnft_net_features(&u->net, X, H);
  finish_call(L, u, aidx, s, fname);
  lua_pop(L, 1);
  return 1;
}

/* net:jacobian(X) -> J (n x P_train), f (n x 1) */
static int net_jacobian(lua_State *L) {
  const char *fname = "net:jacobian";
  l_net *u = check_lnet(L, 1);
  lua_settop(L, 2);
  const nnft_mat *X = check_X(L, 2, &u->net, fname);
  nnft_mat *J = l_newmat(L, X->rows, u->net.ntrain);
  nnft_mat *f = l_newmat(L, X->rows, 1);
  int aidx = bind_arch(L, 1);
  u->busy++;
  nnft_status s = nnft_net_jacobian(&u->net, X, J, f);
  finish_call(L, u, aidx, s, fname);
  lua_pop(L, 1);
  return 2;
}

/* net:grad(X, y) -> gradient of the MSE (P_train x 1), MSE */
static int net_grad(lua_State *L) {
  const char *fname = "net:grad";
  l_net *u = check_lnet(L, 1);
  lua_settop(L, 3);
  const nnft_mat *X = check_X(L, 2, &u->net, fname);
  const nnft_mat *y = check_y(L, 3, X->rows, fname);
  if (X->rows == 0) luaL_error(L, "%s: X has no rows", fname);
  nnft_mat *g = l_newmat(L, u->net.ntrain, 1);
  int aidx = bind_arch(L, 1);
  double loss = 0;
  u->busy++;
  nnft_status s = nnft_net_loss_grad(&u->net, X, y, &loss, g->data);
  finish_call(L, u, aidx, s, fname);
  lua_pop(L, 1);
  lua_pushnumber(L, loss);
  return 2;
}

/* net:loss(X, y [, {features=true}]) -> MSE */
static int net_loss(lua_State *L) {
  const char *fname = "net:loss";
  l_net *u = check_lnet(L, 1);
  lua_settop(L, 4);
  nnft_net sub;
  const nnft_net *net = input_net(L, u, 4, &sub, fname);
  const nnft_mat *X = check_X(L, 2, net, fname);
  const nnft_mat *y = check_y(L, 3, X->rows, fname);
  if (X->rows == 0) luaL_error(L, "%s: X has no rows", fname);
  int aidx = bind_arch(L, 1);
  double loss = 0;
  u->busy++;
  nnft_status s = nnft_net_loss_grad(net, X, y, &loss, NULL);
  finish_call(L, u, aidx, s, fname);
  lua_pushnumber(L, loss);
  return 1;
}

static int opt_trainable(lua_State *L, int idx, const char *fname) {
  static const char *const allowed[] = {"trainable", NULL};
  l_check_options(L, idx, fname, allowed);
  return l_opt_boolean(L, idx, "trainable", 0);
}

/* net:params{trainable=false} -> P x 1 (or P_train x 1) copy */
static int net_params(lua_State *L) {
  l_net *u = check_lnet(L, 1);
  int tr = opt_trainable(L, 2, "net:params");
  if (tr) {
    nnft_mat *v = l_newmat(L, u->net.ntrain, 1);
    nnft_net_get_trainable(&u->net, v->data);
  } else {
    nnft_mat *v = l_newmat(L, u->net.nparams, 1);
    memcpy(v->data, u->net.theta, u->net.nparams * sizeof(double));
  }
  return 1;
}

/* net:set_params(v, {trainable=false}) -> self */
static int net_set_params(lua_State *L) {
  const char *fname = "net:set_params";
  l_net *u = check_lnet(L, 1);
  lua_settop(L, 3);
  int tr = opt_trainable(L, 3, fname);
  check_not_busy(L, u, fname);
  int pushed;
  nnft_mat *v = l_tomat(L, 2, &pushed);
  size_t want = tr ? u->net.ntrain : u->net.nparams;
  if ((v->cols != 1 && v->rows != 1) || v->rows * v->cols != want)
    luaL_error(L, "%s: v is %I x %I, expected a vector of %I %sparameters", fname,
               (lua_Integer)v->rows, (lua_Integer)v->cols, (lua_Integer)want,
               tr ? "trainable " : "");
  l_check_finite(L, v, fname, "v");
  /* a vector: contiguous when a column, stride ld when a row */
  size_t stride = v->cols == 1 ? 1 : v->ld;
  if (tr) {
    size_t *idx = lua_newuserdatauv(L, (want ? want : 1) * sizeof(size_t), 0);
    nnft_net_trainable_index(&u->net, idx);
    for (size_t k = 0; k < want; k++) u->net.theta[idx[k]] = v->data[k * stride];
  } else {
    for (size_t k = 0; k < want; k++) u->net.theta[k] = v->data[k * stride];
  }
  lua_settop(L, 1);
  return 1;
}

/* net:nparams() -> P, P_train */
static int net_nparams(lua_State *L) {
  l_net *u = check_lnet(L, 1);
  lua_pushinteger(L, (lua_Integer)u->net.nparams);
  lua_pushinteger(L, (lua_Integer)u->net.ntrain);
  return 2;
}

/* net:trainable() -> P_train x 1 Mat of the (1-based) positions in params() */
static int net_trainable(lua_State *L) {
  l_net *u = check_lnet(L, 1);
  size_t T = u->net.ntrain;
  size_t *idx = lua_newuserdatauv(L, (T ? T : 1) * sizeof(size_t), 0);
  nnft_mat *v = l_newmat(L, T, 1);
  nnft_net_trainable_index(&u->net, idx);
  for (size_t k = 0; k < T; k++) v->data[k] = (double)idx[k] + 1.0;
  return 1;
}

static int net_arch(lua_State *L) {
  check_lnet(L, 1);
  lua_getiuservalue(L, 1, 1);
  return 1;
}

static int net_copy(lua_State *L) {
  l_net *u = check_lnet(L, 1);
  lua_getiuservalue(L, 1, 1);
  l_net *c = push_net(L, -1);
  nnft_status s = nnft_net_copy(&u->net, &c->net);
  if (s) raise_net_status(L, s, "net:copy");
  return 1;
}

/* The training options of the table at opts (X and y already checked, n rows): fills *o, the
 * shuffling generator *rng (seed=, stream=). */
static void parse_train_opts(lua_State *L, int opts, const char *fname, size_t n,
                             nnft_train_opts *o, nnft_rng *rng) {
  static const char *const optimizers[] = {"gd", "sgd", "adam", NULL};
  static const char *const orders[] = {"fixed", "shuffled", NULL};
  memset(o, 0, sizeof *o);
  int opt = l_opt_choice(L, opts, "optimizer", "sgd", optimizers);
  o->optimizer = opt == 0 ? NNFT_OPT_GD : opt == 1 ? NNFT_OPT_SGD : NNFT_OPT_ADAM;
  lua_getfield(L, opts, "lr");
  if (lua_isnil(L, -1)) luaL_error(L, "%s: lr= is required (the learning rate)", fname);
  lua_pop(L, 1);
  o->lr = l_opt_number(L, opts, "lr", 0);
  if (!(isfinite(o->lr) && o->lr > 0))
    luaL_error(L, "%s: lr must be positive and finite, got %f", fname, (lua_Number)o->lr);
  lua_Integer epochs = l_opt_integer(L, opts, "epochs", 1);
  if (epochs < 0) luaL_error(L, "%s: epochs must be >= 0, got %I", fname, epochs);
  o->epochs = (size_t)epochs;
  lua_Integer defrec = epochs / 100 > 1 ? epochs / 100 : 1;
  lua_Integer record = l_opt_integer(L, opts, "record", defrec);
  if (record < 1)
    luaL_error(L, "%s: record must be >= 1 (epochs between records), got %I", fname, record);
  o->record = (size_t)record;
  lua_Integer batch = l_opt_integer(L, opts, "batch", 0);
  lua_getfield(L, opts, "batch");
  int has_batch = !lua_isnil(L, -1);
  lua_pop(L, 1);
  if (has_batch && batch < 1)
    luaL_error(L, "%s: batch must be a positive integer, got %I", fname, batch);
  if (has_batch && o->optimizer == NNFT_OPT_GD && (size_t)batch != n)
    luaL_error(L, "%s: optimizer='gd' is full-batch (batch = %I rows); use optimizer='sgd' or "
               "'adam' with batch=%I", fname, (lua_Integer)n, batch);
  o->batch = (size_t)batch;
  o->shuffle = l_opt_choice(L, opts, "order", "fixed", orders);
  o->beta1 = l_opt_number(L, opts, "beta1", 0.9);
  o->beta2 = l_opt_number(L, opts, "beta2", 0.999);
  o->eps = l_opt_number(L, opts, "eps", 1e-8);
  if (!(o->beta1 >= 0 && o->beta1 < 1))
    luaL_error(L, "%s: beta1 must be in [0, 1), got %f", fname, (lua_Number)o->beta1);
  if (!(o->beta2 >= 0 && o->beta2 < 1))
    luaL_error(L, "%s: beta2 must be in [0, 1), got %f", fname, (lua_Number)o->beta2);
  if (!(isfinite(o->eps) && o->eps > 0))
    luaL_error(L, "%s: eps must be positive and finite, got %f", fname, (lua_Number)o->eps);
  uint64_t seed = 0;
  int has_seed = opt_seed(L, opts, fname, &seed);
  size_t B = o->batch ? o->batch : (o->optimizer == NNFT_OPT_SGD ? 1 : n);
  if (o->shuffle && B < n && !has_seed)
    luaL_error(L, "%s: order='shuffled' needs seed= (the stream the shuffles are drawn from)",
               fname);
  nnft_rng_init(rng, seed);
  lua_Integer stream = l_opt_integer(L, opts, "stream", 0); /* only where allowed */
  if (stream < 0) luaL_error(L, "%s: stream must be an integer >= 1, got %I", fname, stream);
  if (stream > 0) nnft_rng_substream(rng, (uint64_t)stream - 1, rng);
}

/* Push {epoch = {...}, loss = {...}} from the first nw of the records h. */
static void push_history(lua_State *L, const nnft_train_opts *o, const double *h, size_t nw) {
  lua_createtable(L, 0, 2);
  lua_createtable(L, (int)nw, 0);
  lua_createtable(L, (int)nw, 0);
  for (size_t k = 0; k < nw; k++) {
    lua_pushinteger(L, (lua_Integer)nnft_train_record_epoch(o->epochs, o->record, k));
    lua_rawseti(L, -3, (lua_Integer)k + 1);
    lua_pushnumber(L, h[k]);
    lua_rawseti(L, -2, (lua_Integer)k + 1);
  }
  lua_setfield(L, -3, "loss");
  lua_setfield(L, -2, "epoch");
}

/* net:train{X=, y=, optimizer=, lr=, epochs=, order=, seed=, stream=, record=, batch=, beta1=,
 *           beta2=, eps=} -> self, history {epoch = {...}, loss = {...}} */
static int net_train(lua_State *L) {
  static const char *const allowed[] = {"X", "y", "optimizer", "lr", "epochs", "order", "seed",
                                        "stream", "record", "batch", "beta1", "beta2", "eps",
                                        NULL};
  const char *fname = "net:train";
  l_net *u = check_lnet(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  l_check_options(L, 2, fname, allowed);
  check_not_busy(L, u, fname);
  lua_settop(L, 2);
  if (lua_getfield(L, 2, "X") == LUA_TNIL) luaL_error(L, "%s: X= is required", fname);
  if (lua_getfield(L, 2, "y") == LUA_TNIL) luaL_error(L, "%s: y= is required", fname);
  const nnft_mat *X = check_X(L, 3, &u->net, fname);
  const nnft_mat *y = check_y(L, 4, X->rows, fname);
  size_t n = X->rows;
  if (n == 0) luaL_error(L, "%s: X has no rows", fname);
  nnft_train_opts o;
  nnft_rng rng;
  parse_train_opts(L, 2, fname, n, &o, &rng);
  size_t nrec = nnft_train_nrecords(o.epochs, o.record);
  nnft_mat *hist = l_newmat(L, nrec, 1); /* Lua-owned workspace, index 5 */
  int aidx = bind_arch(L, 1);
  size_t done = 0;
  u->busy++;
  nnft_status s = nnft_net_train(&u->net, X, y, &o, &rng, hist->data, &done);
  u->busy--;
  l_arch_check_custom(L, aidx, fname);
  if (s == NNFT_ENONFINITE)
    luaL_error(L, "%s: training diverged in epoch %I (a parameter became NaN or Inf; the "
               "parameters are those before that epoch): lower lr= (now %f)", fname,
               (lua_Integer)done + 1, (lua_Number)o.lr);
  if (s == NNFT_EINTR) {
    nnft_interrupt_flag = 0;
    luaL_error(L, "%s: interrupted after %I of %I epochs (the parameters are those after the "
               "last completed epoch)", fname, (lua_Integer)done, (lua_Integer)o.epochs);
  }
  if (s) raise_net_status(L, s, fname);
  lua_pushvalue(L, 1);
  push_history(L, &o, hist->data, nrec);
  return 2;
}

/* arch:init_many{count=, seed=} -> {net_1, ..., net_count}, net_i = arch:init{seed=, stream=i} */
static int arch_init_many(lua_State *L) {
  static const char *const allowed[] = {"count", "seed", NULL};
  const char *fname = "arch:init_many";
  const nnft_arch *a = l_checkarch(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  l_check_options(L, 2, fname, allowed);
  uint64_t seed;
  if (!opt_seed(L, 2, fname, &seed))
    luaL_error(L, "%s: seed= is required (an integer in 0 .. 2^63-1)", fname);
  lua_getfield(L, 2, "count");
  if (lua_isnil(L, -1)) luaL_error(L, "%s: count= is required (a positive integer)", fname);
  lua_pop(L, 1);
  lua_Integer count = l_opt_integer(L, 2, "count", 0);
  if (count < 1 || count > INT32_MAX)
    luaL_error(L, "%s: count must be a positive integer, got %I", fname, count);
  nnft_rng root;
  nnft_rng_init(&root, seed);
  lua_createtable(L, (int)count, 0);
  for (lua_Integer i = 1; i <= count; i++) {
    nnft_rng r;
    nnft_rng_substream(&root, (uint64_t)i - 1, &r);
    l_net *u = push_net(L, 1);
    nnft_status s = nnft_net_setup(a, &u->net);
    if (s) raise_net_status(L, s, fname);
    if ((s = nnft_net_init(&u->net, &r))) raise_net_status(L, s, fname);
    lua_rawseti(L, -2, i);
  }
  return 1;
}

/* nnft.train_ensemble(nets, {X=, y=, ..., seed=, threads=}) -> nets, histories */
static int l_train_ensemble(lua_State *L) {
  static const char *const allowed[] = {"X", "y", "optimizer", "lr", "epochs", "order", "seed",
                                        "record", "batch", "beta1", "beta2", "eps", "threads",
                                        NULL};
  const char *fname = "nnft.train_ensemble";
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checktype(L, 2, LUA_TTABLE);
  l_check_options(L, 2, fname, allowed);
  lua_settop(L, 2);
  size_t count = lua_rawlen(L, 1);
  if (count == 0) luaL_error(L, "%s: the list of networks is empty", fname);
  /* index 3: the pointer array, 4: X, 5: y; a set of the nets seen, to refuse duplicates */
  nnft_net **nets = lua_newuserdatauv(L, count * sizeof *nets, 0);
  lua_createtable(L, 0, (int)count);
  for (size_t i = 0; i < count; i++) {
    lua_rawgeti(L, 1, (lua_Integer)i + 1);
    lua_pushvalue(L, -1);
    if (lua_rawget(L, -3) != LUA_TNIL)
      luaL_error(L, "%s: nets[%I] appears twice in the list (nets[%I])", fname,
                 (lua_Integer)i + 1, lua_tointeger(L, -1));
    lua_pop(L, 1);
    lua_pushvalue(L, -1);
    lua_pushinteger(L, (lua_Integer)i + 1);
    lua_rawset(L, -4);
    l_net *u = luaL_testudata(L, -1, L_NET_NAME);
    if (!u) luaL_error(L, "%s: nets[%I] is a %s, expected an nnft.Net", fname,
                       (lua_Integer)i + 1, luaL_typename(L, -1));
    if (!u->net.theta) luaL_error(L, "%s: nets[%I] has been released", fname, (lua_Integer)i + 1);
    check_not_busy(L, u, fname);
    nets[i] = &u->net;
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  if (lua_getfield(L, 2, "X") == LUA_TNIL) luaL_error(L, "%s: X= is required", fname);
  if (lua_getfield(L, 2, "y") == LUA_TNIL) luaL_error(L, "%s: y= is required", fname);
  const nnft_mat *X = check_X(L, 4, nets[0], fname);
  const nnft_mat *y = check_y(L, 5, X->rows, fname);
  size_t n = X->rows;
  if (n == 0) luaL_error(L, "%s: X has no rows", fname);
  for (size_t i = 1; i < count; i++)
    if (nets[i]->arch.d_in != nets[0]->arch.d_in)
      luaL_error(L, "%s: nets[%I] takes d_in = %I inputs, nets[1] takes %I", fname,
                 (lua_Integer)i + 1, (lua_Integer)nets[i]->arch.d_in,
                 (lua_Integer)nets[0]->arch.d_in);
  nnft_train_opts o;
  nnft_rng root;
  parse_train_opts(L, 2, fname, n, &o, &root);
  lua_Integer threads = l_opt_integer(L, 2, "threads", 0);
  if (threads < 0) luaL_error(L, "%s: threads must be >= 0 (0: the default), got %I", fname,
                              threads);
  size_t nrec = nnft_train_nrecords(o.epochs, o.record);
  nnft_mat *hist = l_newmat(L, nrec, count);                       /* 6 */
  nnft_status *st = lua_newuserdatauv(L, count * sizeof *st, 0);   /* 7 */
  size_t *done = lua_newuserdatauv(L, count * sizeof *done, 0);    /* 8 */
  for (size_t i = 0; i < count; i++) { /* bind Lua activations to this thread */
    lua_rawgeti(L, 1, (lua_Integer)i + 1);
    lua_getiuservalue(L, -1, 1);
    l_checkarch(L, -1);
    ((l_net *)lua_touserdata(L, -2))->busy++;
    lua_pop(L, 2);
  }
  nnft_status s = nnft_net_train_many(nets, count, X, y, &o, &root,
                                      threads > INT32_MAX ? INT32_MAX : (int)threads,
                                      hist->data, st, done);
  for (size_t i = 0; i < count; i++) {
    lua_rawgeti(L, 1, (lua_Integer)i + 1);
    ((l_net *)lua_touserdata(L, -1))->busy--;
    lua_pop(L, 1);
  }
  for (size_t i = 0; i < count; i++) {
    lua_rawgeti(L, 1, (lua_Integer)i + 1);
    lua_getiuservalue(L, -1, 1);
    l_arch_check_custom(L, -1, fname);
    lua_pop(L, 2);
  }
  if (s == NNFT_EINTR) {
    nnft_interrupt_flag = 0;
    luaL_error(L, "%s: interrupted (each network keeps the parameters of its last completed "
               "epoch)", fname);
  }
  if (s && s != NNFT_ENONFINITE) raise_net_status(L, s, fname);
  lua_pushvalue(L, 1);
  lua_createtable(L, (int)count, 0);
  for (size_t i = 0; i < count; i++) {
    size_t nw = nrec;
    if (st[i] == NNFT_ENONFINITE) /* records of the completed epochs only */
      nw = 1 + done[i] / o.record;
    push_history(L, &o, hist->data + i * nrec, nw);
    if (st[i] == NNFT_ENONFINITE) {
      lua_pushinteger(L, (lua_Integer)done[i] + 1);
      lua_setfield(L, -2, "diverged");
    }
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  return 2;
}

static int net_release(lua_State *L) {
  l_net *u = luaL_checkudata(L, 1, L_NET_NAME);
  if (u->busy)
    return luaL_error(L, "net:release: the network is in use (called from its own activation "
                      "function)");
  nnft_net_free(&u->net);
  return 0;
}

static int net_gc(lua_State *L) {
  l_net *u = luaL_checkudata(L, 1, L_NET_NAME);
  nnft_net_free(&u->net);
  return 0;
}

static int net_tostring(lua_State *L) {
  l_net *u = luaL_checkudata(L, 1, L_NET_NAME);
  if (!u->net.theta) {
    lua_pushstring(L, "nnft.Net (released)");
    return 1;
  }
  lua_getiuservalue(L, 1, 1);
  push_tostring(L, -1);
  lua_pushfstring(L, "nnft.Net(P=%I, trainable=%I) of %s", (lua_Integer)u->net.nparams,
                  (lua_Integer)u->net.ntrain, lua_tostring(L, -1));
  return 1;
}

/* ---------------------------------------------------------------------------------------------
 * Registration */

static const luaL_Reg arch_methods[] = {{"init", arch_init},
                                        {"init_many", arch_init_many},
                                        {"spec", arch_spec},
                                        {"nparams", arch_nparams},
                                        {NULL, NULL}};
static const luaL_Reg arch_meta[] = {{"__tostring", arch_tostring}, {NULL, NULL}};
static const luaL_Reg net_methods[] = {
    {"forward", net_forward}, {"features", net_features}, {"jacobian", net_jacobian},
    {"grad", net_grad},
    {"loss", net_loss},       {"params", net_params},     {"set_params", net_set_params},
    {"nparams", net_nparams}, {"trainable", net_trainable}, {"arch", net_arch},
    {"copy", net_copy},       {"train", net_train},       {"release", net_release},
    {NULL, NULL}};
static const luaL_Reg net_meta[] = {{"__tostring", net_tostring}, {"__gc", net_gc},
                                    {"__close", net_gc}, {NULL, NULL}};

/* Register both classes and the weak table of Lua activations (idempotent). */
static void ensure_classes(lua_State *L) {
  l_newclass(L, L_ARCH_NAME, arch_methods, arch_meta);
  l_newclass(L, L_NET_NAME, net_methods, net_meta);
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &custom_key) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_createtable(L, 0, 1);
    lua_pushstring(L, "v");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &custom_key);
  } else {
    lua_pop(L, 1);
  }
}

static void add_methods(lua_State *L, const char *tname, const luaL_Reg *methods) {
  ensure_classes(L);
  luaL_getmetatable(L, tname);
  lua_getfield(L, -1, "__index");
  luaL_setfuncs(L, methods, 0);
  lua_pop(L, 2);
}

void l_arch_add_methods(lua_State *L, const luaL_Reg *methods) {
  add_methods(L, L_ARCH_NAME, methods);
}
void l_net_add_methods(lua_State *L, const luaL_Reg *methods) {
  add_methods(L, L_NET_NAME, methods);
}

void l_open_arch(lua_State *L) {
  ensure_classes(L);
  lua_pushcfunction(L, l_mlp);
  lua_setfield(L, -2, "mlp");
  lua_pushcfunction(L, l_cosnet);
  lua_setfield(L, -2, "cosnet");
  lua_pushcfunction(L, l_train_ensemble);
  lua_setfield(L, -2, "train_ensemble");
}
