/* nnft.io's C half (being written): NPY read/write, checksums. */
#include "l_util.h"

void l_open_io(lua_State *L) {
  lua_newtable(L);
  lua_setfield(L, -2, "iocore");
}
