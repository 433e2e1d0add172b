/* nnft.mlp, nnft.cosnet: the Arch userdata (an architecture spec, physics.md §1) and the Net
 * userdata (one network: parameters, forward, gradients, Jacobians, training). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "l_util.h"
#include "nnft_arch.h"

/* The Arch userdata. For a Lua activation (act = function) the function is the userdata's user
 * value 1 and is also found through a weak-valued registry table keyed by the light userdata
 * &u->a (the trampoline's ctx), so the core can call it without a stack index. */
typedef struct l_arch {
  nnft_arch a;
  lua_State *L; /* thread the Lua activation runs on: set by l_checkarch for each call */
  int failed;   /* the Lua activation raised (or returned a non-number) in the current call */
  char errmsg[200];
} l_arch;

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

static int arch_tostring(lua_State *L) {
  const nnft_arch *a = l_checkarch(L, 1);
  lua_pushfstring(L, "nnft.Arch (d_in=%I, %I layers)", (lua_Integer)a->d_in,
                  (lua_Integer)a->nlayers);
  return 1;
}

void l_open_arch(lua_State *L) {
  static const luaL_Reg methods[] = {{NULL, NULL}};
  static const luaL_Reg meta[] = {{"__tostring", arch_tostring}, {NULL, NULL}};
  l_newclass(L, L_ARCH_NAME, methods, meta);
}
