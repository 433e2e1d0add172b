/* luaopen_nnft_core: the C half of `require "nnft"` (lua/nnft/init.lua loads it as
 * "nnft.core"). Each binding file adds its functions to the table built here. */
#include <lauxlib.h>
#include <lua.h>
#include <gsl/gsl_errno.h>

#include "l_util.h"

int luaopen_nnft_core(lua_State *L) {
  /* GSL must report errors as status codes, never abort: the core checks them. This is the one
   * place both the interpreter and a stock lua5.4 loading the module pass through. */
  gsl_set_error_handler_off();
  lua_newtable(L);
  l_open_mat(L);
  l_open_linalg(L);
  l_open_rng(L);
  l_open_sys(L);
  l_open_io(L);
  l_open_arch(L);
  l_open_finite(L);
  l_open_ensemble(L);
  l_open_kernel(L);
  l_open_coupling(L);
  l_open_wilson(L);
  l_open_mckernel(L);
  l_open_fisher(L);
  l_open_gp(L);
  l_open_mercer(L);
  return 1;
}
