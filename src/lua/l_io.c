/* nnft._io: the C half of nnft.io, nnft.plot, nnft.progress and nnft.reproduce (internal; the
 * user-facing functions live in lua/nnft/io.lua and friends). NPY read/write, SHA-256, atomic
 * writes, mkdir -p, and the few POSIX facts the Lua layer needs (isatty, a monotonic clock,
 * realpath, host name, mkdtemp).
 *
 * Functions that can fail on a file take an optional last argument `fname`, the user-facing
 * function name put in front of the error message (default "nnft.io.<name>"). */
#ifndef _XOPEN_SOURCE
#define _XOPEN_SOURCE 700 /* realpath, gethostname, mkdtemp, clock_gettime */
#endif
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "l_util.h"
#include "nnft_io.h"

#define WHY_LEN 1024

static const char *fname_arg(lua_State *L, int idx, const char *def) {
  return luaL_optstring(L, idx, def);
}

/* Raise "<fname>: <why>" (or the status text when why is empty). */
static int io_raise(lua_State *L, nnft_status s, const char *fname, const char *why) {
  if (why[0]) return luaL_error(L, "%s: %s", fname, why);
  return l_status_error(L, s, fname, NULL);
}

/* _io.write_npy(path, mat [, fname]) */
static int io_write_npy(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  const char *fname = fname_arg(L, 3, "nnft.io.write_npy");
  int pushed;
  nnft_mat *m = l_tomat(L, 2, &pushed);
  char why[WHY_LEN] = "";
  nnft_status s = nnft_io_npy_write(path, m, why, sizeof why);
  if (s) return io_raise(L, s, fname, why);
  return 0;
}

/* _io.read_npy(path [, fname]) -> Mat */
static int io_read_npy(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  const char *fname = fname_arg(L, 2, "nnft.io.read_npy");
  char why[WHY_LEN] = "";
  nnft_npy_header h;
  nnft_status s = nnft_io_npy_read_header(path, &h, why, sizeof why);
  if (s) return io_raise(L, s, fname, why);
  nnft_mat *m = l_newmat(L, h.rows, h.cols);
  s = nnft_io_npy_read(path, m, why, sizeof why);
  if (s) return io_raise(L, s, fname, why);
  return 1;
}

/* _io.npy_header(path) -> {rows=, cols=, ndim=, fortran_order=} */
static int io_npy_header(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  const char *fname = fname_arg(L, 2, "nnft.io.npy_header");
  char why[WHY_LEN] = "";
  nnft_npy_header h;
  nnft_status s = nnft_io_npy_read_header(path, &h, why, sizeof why);
  if (s) return io_raise(L, s, fname, why);
  lua_createtable(L, 0, 4);
  lua_pushinteger(L, (lua_Integer)h.rows);
  lua_setfield(L, -2, "rows");
  lua_pushinteger(L, (lua_Integer)h.cols);
  lua_setfield(L, -2, "cols");
  lua_pushinteger(L, h.ndim);
  lua_setfield(L, -2, "ndim");
  lua_pushboolean(L, h.fortran_order);
  lua_setfield(L, -2, "fortran_order");
  return 1;
}

/* _io.sha256(string) -> hex */
static int io_sha256(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  char hex[65];
  nnft_sha256_hex(s, n, hex);
  lua_pushstring(L, hex);
  return 1;
}

/* _io.sha256_file(path [, fname]) -> hex */
static int io_sha256_file(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  const char *fname = fname_arg(L, 2, "nnft.io.sha256");
  char why[WHY_LEN] = "", hex[65];
  nnft_status s = nnft_io_sha256_file(path, hex, why, sizeof why);
  if (s) return io_raise(L, s, fname, why);
  lua_pushstring(L, hex);
  return 1;
}

/* _io.write_file(path, string [, fname]): atomic write. */
static int io_write_file(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  size_t n;
  const char *data = luaL_checklstring(L, 2, &n);
  const char *fname = fname_arg(L, 3, "nnft.io.write_file");
  char why[WHY_LEN] = "";
  nnft_status s = nnft_io_write_atomic(path, data, n, why, sizeof why);
  if (s) return io_raise(L, s, fname, why);
  return 0;
}

/* _io.mkdir_p(path [, fname]) */
static int io_mkdir_p(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  const char *fname = fname_arg(L, 2, "nnft.io.mkdir");
  char why[WHY_LEN] = "";
  nnft_status s = nnft_io_mkdir_p(path, why, sizeof why);
  if (s) return io_raise(L, s, fname, why);
  return 0;
}

/* _io.stat(path) -> "file" | "directory" | "other" | nil, size */
static int io_stat(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  struct stat st;
  if (stat(path, &st) != 0) {
    lua_pushnil(L);
    return 1;
  }
  lua_pushstring(L, S_ISREG(st.st_mode) ? "file" : S_ISDIR(st.st_mode) ? "directory" : "other");
  lua_pushinteger(L, (lua_Integer)st.st_size);
  return 2;
}

/* _io.isatty(fd) -> boolean */
static int io_isatty(lua_State *L) {
  lua_Integer fd = luaL_checkinteger(L, 1);
  lua_pushboolean(L, fd >= 0 && fd <= INT_MAX && isatty((int)fd));
  return 1;
}

/* _io.clock() -> seconds on a monotonic clock (for wall times and rates). */
static int io_clock(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  lua_pushnumber(L, (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec);
  return 1;
}

/* _io.realpath(path) -> absolute canonical path, or nil, message */
static int io_realpath(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  char buf[PATH_MAX];
  if (!realpath(path, buf)) {
    luaL_pushfail(L);
    lua_pushfstring(L, "%s: %s", path, strerror(errno));
    return 2;
  }
  lua_pushstring(L, buf);
  return 1;
}

/* _io.getcwd() -> the current directory */
static int io_getcwd(lua_State *L) {
  char buf[PATH_MAX];
  if (!getcwd(buf, sizeof buf)) return luaL_error(L, "getcwd: %s", strerror(errno));
  lua_pushstring(L, buf);
  return 1;
}

/* _io.hostname() -> string */
static int io_hostname(lua_State *L) {
  char buf[256];
  if (gethostname(buf, sizeof buf) != 0) {
    lua_pushstring(L, "unknown");
    return 1;
  }
  buf[sizeof buf - 1] = '\0';
  lua_pushstring(L, buf);
  return 1;
}

/* _io.mkdtemp(prefix) -> a new private directory "<TMPDIR or /tmp>/<prefix>XXXXXX" */
static int io_mkdtemp(lua_State *L) {
  const char *prefix = luaL_optstring(L, 1, "nnft-");
  const char *dir = getenv("TMPDIR");
  if (!dir || !*dir) dir = "/tmp";
  lua_pushfstring(L, "%s/%sXXXXXX", dir, prefix);
  size_t n;
  const char *tmpl = lua_tolstring(L, -1, &n);
  char *buf = lua_newuserdatauv(L, n + 1, 0); /* Lua-owned scratch */
  memcpy(buf, tmpl, n + 1);
  if (!mkdtemp(buf)) return luaL_error(L, "cannot create a temporary directory '%s': %s", tmpl,
                                       strerror(errno));
  lua_pushstring(L, buf);
  return 1;
}

/* _io.fmt(x) -> shortest text that reads back as exactly x ("nan", "inf", "-inf"). */
static int io_fmt(lua_State *L) {
  if (lua_isinteger(L, 1)) {
    lua_pushfstring(L, "%I", lua_tointeger(L, 1));
    return 1;
  }
  double x = luaL_checknumber(L, 1);
  char buf[32];
  size_t n = nnft_io_format_double(x, buf);
  lua_pushlstring(L, buf, n);
  return 1;
}

/* _io.mat_csv(mat, sep) -> the rows of mat as text lines, fields joined by sep. */
static int io_mat_csv(lua_State *L) {
  nnft_mat *m = l_checkmat(L, 1);
  size_t seplen;
  const char *sep = luaL_optlstring(L, 2, ",", &seplen);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  char num[32];
  for (size_t i = 0; i < m->rows; i++) {
    for (size_t j = 0; j < m->cols; j++) {
      if (j) luaL_addlstring(&b, sep, seplen);
      size_t n = nnft_io_format_double(NNFT_AT(m, i, j), num);
      luaL_addlstring(&b, num, n);
    }
    luaL_addchar(&b, '\n');
  }
  luaL_pushresult(&b);
  return 1;
}

static const luaL_Reg io_functions[] = {
    {"write_npy", io_write_npy},     {"read_npy", io_read_npy},   {"npy_header", io_npy_header},
    {"sha256", io_sha256},           {"sha256_file", io_sha256_file},
    {"write_file", io_write_file},   {"mkdir_p", io_mkdir_p},     {"stat", io_stat},
    {"isatty", io_isatty},           {"clock", io_clock},         {"realpath", io_realpath},
    {"getcwd", io_getcwd},           {"hostname", io_hostname},   {"mkdtemp", io_mkdtemp},
    {"fmt", io_fmt},                 {"mat_csv", io_mat_csv},     {NULL, NULL}};

/* nnft._io: internal, used by lua/nnft/{io,plot,progress,reproduce}.lua. */
void l_open_io(lua_State *L) {
  luaL_newlib(L, io_functions);
  /* _io.state: a table kept in the Lua registry, the state nnft.io and nnft.args share (active
   * runs, the last parsed arguments). Living in the registry, it survives the Lua modules being
   * loaded twice (busted's insulation unloads them between spec files). A table, not a
   * function: nothing for the sandbox to guard. */
  luaL_getsubtable(L, LUA_REGISTRYINDEX, "nnft.io.state");
  lua_setfield(L, -2, "state");
  lua_setfield(L, -2, "_io");
}
