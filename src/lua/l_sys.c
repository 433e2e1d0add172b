/* nnft.sys: build and runtime facts (versions, BLAS, threads) for --version and manifests. */
#include <gsl/gsl_version.h>
#include <string.h>

#include "l_util.h"
#include "nnft_config.h"

#ifdef _OPENMP
#include <omp.h>
#endif

char *openblas_get_config(void);
int openblas_get_num_threads(void);
void openblas_set_num_threads(int);

static int sys_info(lua_State *L) {
  lua_createtable(L, 0, 8);
  lua_pushstring(L, NNFT_VERSION);
  lua_setfield(L, -2, "version");
  lua_pushstring(L, NNFT_GIT_HASH);
  lua_setfield(L, -2, "git");
  lua_pushstring(L, LUA_RELEASE);
  lua_setfield(L, -2, "lua");
  lua_pushstring(L, openblas_get_config());
  lua_setfield(L, -2, "blas");
  lua_pushstring(L, gsl_version);
  lua_setfield(L, -2, "gsl");
#ifdef _OPENMP
  lua_pushinteger(L, omp_get_max_threads());
#else
  lua_pushinteger(L, 1);
#endif
  lua_setfield(L, -2, "threads");
  lua_pushinteger(L, openblas_get_num_threads());
  lua_setfield(L, -2, "blas_threads");
  return 1;
}

/* nnft.sys.set_threads(n): threads for nnft's parallel loops and for BLAS. */
static int sys_set_threads(lua_State *L) {
  size_t n = l_checksize(L, 1, 1);
  if (n > 1024) luaL_argerror(L, 1, "at most 1024 threads");
#ifdef _OPENMP
  omp_set_num_threads((int)n);
#endif
  openblas_set_num_threads((int)n);
  return 0;
}

/* nnft.sys.interrupt(): raise the interrupt flag (as Ctrl-C does); for tests of cancellation. */
static int sys_interrupt(lua_State *L) {
  nnft_interrupt_flag = 1;
  return 0;
}

/* nnft.sys.check_interrupt(): raise "interrupted" if Ctrl-C was pressed; long Lua loops call it. */
static int sys_check_interrupt(lua_State *L) {
  l_check_interrupt(L);
  return 0;
}

static const luaL_Reg sys_functions[] = {{"info", sys_info},
                                         {"set_threads", sys_set_threads},
                                         {"interrupt", sys_interrupt},
                                         {"check_interrupt", sys_check_interrupt},
                                         {NULL, NULL}};

void l_open_sys(lua_State *L) {
  luaL_newlib(L, sys_functions);
  lua_setfield(L, -2, "sys");
}
