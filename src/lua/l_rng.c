/* nnft.rng: seeded counter-based generators with independent streams (being written). */
#include "l_util.h"

void l_open_rng(lua_State *L) {
  lua_newtable(L);
  lua_setfield(L, -2, "rng");
}
