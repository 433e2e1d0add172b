/* nnft: the interpreter (script runner + REPL), modelled on Lua's lua.c. */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nnft_config.h"
#include "nnft_status.h"

int luaopen_nnft_core(lua_State *L);

static int msghandler(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL) msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  luaL_traceback(L, L, msg, 1);
  return 1;
}

static int report(lua_State *L, int status) {
  if (status != LUA_OK) {
    fprintf(stderr, "nnft: %s\n", lua_tostring(L, -1));
    lua_pop(L, 1);
  }
  return status;
}

static int docall(lua_State *L, int narg, int nres) {
  int base = lua_gettop(L) - narg;
  lua_pushcfunction(L, msghandler);
  lua_insert(L, base);
  int status = lua_pcall(L, narg, nres, base);
  lua_remove(L, base);
  return status;
}

/* package.path/cpath gain nnft's Lua directory, and "nnft.core" is preloaded. */
static void setup_nnft(lua_State *L) {
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, luaopen_nnft_core);
  lua_setfield(L, -2, "nnft.core");
  lua_pop(L, 1);
  lua_getglobal(L, "package");
  const char *luadir = getenv("NNFT_LUA_DIR");
  if (!luadir) luadir = NNFT_LUA_DIR;
  lua_getfield(L, -1, "path");
  lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;%s", luadir, luadir, lua_tostring(L, -1));
  lua_setfield(L, -3, "path");
  lua_pop(L, 2);
}

static int pmain(lua_State *L) {
  int argc = (int)lua_tointeger(L, 1);
  char **argv = (char **)lua_touserdata(L, 2);
  luaL_openlibs(L);
  setup_nnft(L);
  lua_getglobal(L, "require");
  lua_pushstring(L, "nnft");
  if (report(L, docall(L, 1, 1))) return 0;
  lua_setglobal(L, "nnft");
  if (argc < 2) {
    fprintf(stderr, "usage: nnft script.lua [key=value ...]\n");
    return 0;
  }
  if (strcmp(argv[1], "--version") == 0) {
    printf("nnft %s (%s)\n", NNFT_VERSION, NNFT_GIT_HASH);
    lua_pushboolean(L, 1);
    return 1;
  }
  int script = 1;
  if (strcmp(argv[1], "-e") == 0 && argc > 2) {
    if (report(L, luaL_loadstring(L, argv[2]) || docall(L, 0, 0))) return 0;
    lua_pushboolean(L, 1);
    return 1;
  }
  lua_createtable(L, argc - script - 1, script + 1);
  for (int i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - script);
  }
  lua_setglobal(L, "arg");
  if (report(L, luaL_loadfile(L, argv[script]))) return 0;
  for (int i = script + 1; i < argc; i++) lua_pushstring(L, argv[i]);
  if (report(L, docall(L, argc - script - 1, 0))) return 0;
  lua_pushboolean(L, 1);
  return 1;
}

int main(int argc, char **argv) {
  lua_State *L = luaL_newstate();
  if (!L) {
    fprintf(stderr, "nnft: cannot create Lua state: not enough memory\n");
    return EXIT_FAILURE;
  }
  lua_pushcfunction(L, pmain);
  lua_pushinteger(L, argc);
  lua_pushlightuserdata(L, argv);
  int status = lua_pcall(L, 2, 1, 0);
  int ok = lua_toboolean(L, -1);
  report(L, status);
  lua_close(L);
  return (status == LUA_OK && ok) ? EXIT_SUCCESS : EXIT_FAILURE;
}
