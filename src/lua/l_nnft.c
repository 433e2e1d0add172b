/* luaopen_nnft_core: the C half of `require "nnft"` (lua/nnft/init.lua loads it as
 * "nnft.core"). Each binding file adds its functions to the table built here. */
#include <lauxlib.h>
#include <lua.h>

#include "l_util.h"

int luaopen_nnft_core(lua_State *L) {
  lua_newtable(L);
  l_open_mat(L);
  l_open_linalg(L);
  l_open_rng(L);
  l_open_sys(L);
  l_open_io(L);
  l_open_arch(L);
  l_open_finite(L);
  l_open_ensemble(L);
  return 1;
}
