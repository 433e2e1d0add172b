/* nnft.linalg: LAPACKE-backed decompositions and solves (being written). */
#include "l_util.h"

void l_open_linalg(lua_State *L) {
  lua_newtable(L);
  lua_setfield(L, -2, "linalg");
}
