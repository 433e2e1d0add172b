/* nnft: the interpreter (script runner + REPL), modelled on Lua 5.4's own lua.c.
 *
 *   nnft script.lua key=value ...    run a recipe (global arg, and the arguments as ...)
 *   nnft -e code / -l mod / -i / -   as lua.c
 *   nnft --sandbox recipe.lua out=d  run an untrusted recipe (lua/nnft/sandbox.lua)
 *   nnft --reproduce manifest.json   re-run a recorded recipe (lua/nnft/reproduce.lua)
 *   nnft                             the REPL if stdin is a terminal, else run stdin
 *
 * Ctrl-C raises nnft_interrupt_flag (polled by long C loops) and sets a Lua hook (as lua.c's
 * laction does) so running Lua code stops with "interrupted". The REPL uses GNU readline in its
 * callback form so that Ctrl-C at the prompt clears the line instead of killing the session. */
#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE
#endif
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <errno.h>
#include <lauxlib.h>
#include <limits.h>
#include <lua.h>
#include <lualib.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/stat.h>
#include <unistd.h>

#include <readline/history.h>
#include <readline/readline.h>

#include "nnft_config.h"
#include "nnft_status.h"

int luaopen_nnft_core(lua_State *L);

#define PROGNAME "nnft"
#define PROMPT1 "nnft> "
#define PROMPT2 "  ... "
#define HISTORY_FILE ".nnft_history"
#define HISTORY_MAX 1000
#define EOFMARK "<eof>"

/* The state the SIGINT handler hooks into (a signal carries no context pointer, as in lua.c). */
static lua_State *globalL = NULL;
/* What SIGINT does outside a protected call: default (die) for scripts, the prompt handler in
 * the REPL. */
static void (*sigint_idle)(int) = SIG_DFL;
/* Set by the prompt's SIGINT handler: the line being typed is abandoned. */
static volatile sig_atomic_t prompt_sigint = 0;

/* ---------------------------------------------------------------- signals */

/* Install handler for sig without SA_RESTART, so a blocking read returns EINTR and the REPL
 * can notice Ctrl-C at the prompt. */
static void setsignal(int sig, void (*handler)(int)) {
  struct sigaction sa;
  sa.sa_handler = handler;
  sa.sa_flags = 0;
  sigemptyset(&sa.sa_mask);
  sigaction(sig, &sa, NULL);
}

/* Hook set by the signal handler: stop the running Lua code. If a C loop has already reported
 * the interrupt (and cleared the flag), there is nothing left to stop, so the hook only removes
 * itself; otherwise it clears the flag, since it is the one reporting it. */
static void lstop(lua_State *L, lua_Debug *ar) {
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  if (nnft_interrupt_flag) {
    nnft_interrupt_flag = 0;
    luaL_error(L, "interrupted");
  }
}

/* SIGINT while Lua code runs: raise the flag for C loops and hook the Lua VM for Lua loops.
 * Running a script, a second Ctrl-C before either answers (a long C call that does not poll)
 * gets the default action, as in lua.c; in the REPL it only asks again, since Ctrl-C must cancel
 * the computation and never the session (Ctrl-\ still kills). */
static void laction(int sig) {
  int mask = LUA_MASKCALL | LUA_MASKRET | LUA_MASKLINE | LUA_MASKCOUNT;
  if (sigint_idle == SIG_DFL) setsignal(sig, SIG_DFL);
  nnft_interrupt_flag = 1;
  lua_sethook(globalL, lstop, mask, 1);
}

/* SIGINT at the REPL prompt: only note it; the reader abandons the line. */
static void on_prompt_sigint(int sig) {
  (void)sig;
  prompt_sigint = 1;
}

/* ---------------------------------------------------------------- messages and calls */

/* Print an error message (with the program name when not in the REPL) on stderr. */
static void l_message(const char *pname, const char *msg) {
  if (pname) fprintf(stderr, "%s: ", pname);
  fprintf(stderr, "%s\n", msg);
  fflush(stderr);
}

/* Report a non-OK status: the message (already carrying a traceback) is on the stack top. */
static int report(lua_State *L, int status, const char *pname) {
  if (status != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    l_message(pname, msg ? msg : "(error object is not a string)");
    lua_pop(L, 1);
  }
  return status;
}

/* Message handler: add a traceback to the error, using __tostring for non-string errors. */
static int msghandler(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) return 1;
    msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

/* Protected call with traceback and Ctrl-C handling: the one way user code is run. */
static int docall(lua_State *L, int narg, int nres) {
  int base = lua_gettop(L) - narg;
  lua_pushcfunction(L, msghandler);
  lua_insert(L, base);
  globalL = L;
  setsignal(SIGINT, laction);
  int status = lua_pcall(L, narg, nres, base);
  setsignal(SIGINT, sigint_idle);
  lua_sethook(L, NULL, 0, 0); /* an interrupt that arrived at the very end stops nothing */
  lua_remove(L, base);
  return status;
}

/* ---------------------------------------------------------------- facts for the Lua side */

/* __gc of the DIR holder below: close the directory if it is still open. */
static int dir_gc(lua_State *L) {
  DIR **d = (DIR **)lua_touserdata(L, 1);
  if (d && *d) {
    closedir(*d);
    *d = NULL;
  }
  return 0;
}

/* nnft.interp.listdir(dir): the names in a directory (for help, which must list docs/api without
 * lfs); nil, message on failure. The DIR lives in a userdata whose __gc closes it, so a memory
 * error while names are pushed cannot leak it. */
static int interp_listdir(lua_State *L) {
  const char *dir = luaL_checkstring(L, 1);
  DIR **d = (DIR **)lua_newuserdatauv(L, sizeof(DIR *), 0);
  *d = NULL;
  if (luaL_newmetatable(L, "nnft_interp_dir")) { /* no "nnft." prefix: not a user type */
    lua_pushcfunction(L, dir_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  *d = opendir(dir);
  if (!*d) {
    luaL_pushfail(L);
    lua_pushfstring(L, "%s: %s", dir, strerror(errno));
    return 2;
  }
  lua_newtable(L);
  lua_Integer n = 0;
  struct dirent *e;
  while ((e = readdir(*d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    lua_pushstring(L, e->d_name);
    lua_rawseti(L, -2, ++n);
  }
  closedir(*d);
  *d = NULL;
  return 1;
}

/* nnft.interp.types(): {["nnft.Mat"] = metatable, ...}: the registry's nnft metatables, for help
 * and completion of methods (Lua code cannot see the registry without the debug library). */
static int interp_types(lua_State *L) {
  lua_newtable(L);
  lua_pushnil(L);
  while (lua_next(L, LUA_REGISTRYINDEX)) {
    if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TTABLE &&
        strncmp(lua_tostring(L, -2), "nnft.", 5) == 0) {
      lua_pushvalue(L, -2);
      lua_insert(L, -2);
      lua_rawset(L, -4);
    } else {
      lua_pop(L, 1);
    }
  }
  return 1;
}

/* resolve(path): the absolute canonical path a write to `path` would touch, following symbolic
 * links (also of the final component), or nil, reason. Given to the sandbox only: the existing
 * part of the path is resolved with realpath, so "out/../../etc/x" and symlinks cannot escape
 * out=; the part that does not exist yet (new files, directories mkdir -p would create) is kept
 * as written but may not contain "." or "..". The second result is the link count of an
 * existing regular file (a hard link escapes too). */
static int sandbox_resolve(lua_State *L) {
  size_t len;
  const char *path = luaL_checklstring(L, 1, &len);
  char buf[PATH_MAX];
  struct stat st;
  if (len == 0 || strlen(path) != len) {
    luaL_pushfail(L);
    lua_pushliteral(L, "invalid path");
    return 2;
  }
  if (realpath(path, buf)) {
    lua_pushstring(L, buf);
    lua_pushinteger(L, (stat(buf, &st) == 0 && S_ISREG(st.st_mode)) ? (lua_Integer)st.st_nlink : 1);
    return 2;
  }
  if (errno != ENOENT) {
    luaL_pushfail(L);
    lua_pushstring(L, strerror(errno));
    return 2;
  }
  if (lstat(path, &st) == 0) { /* exists but does not resolve: a dangling symbolic link */
    luaL_pushfail(L);
    lua_pushliteral(L, "it is a dangling symbolic link (its target could be outside out=)");
    return 2;
  }
  /* Strip components from the right until an existing directory is left. */
  char *copy = lua_newuserdatauv(L, len + 1, 0);
  const char **rest = lua_newuserdatauv(L, (len / 2 + 2) * sizeof *rest, 0);
  size_t nrest = 0;
  memcpy(copy, path, len + 1);
  const char *dir = NULL;
  for (;;) {
    while (len > 1 && copy[len - 1] == '/') copy[--len] = '\0';
    char *slash = strrchr(copy, '/');
    const char *base = slash ? slash + 1 : copy;
    if (strcmp(base, ".") == 0 || strcmp(base, "..") == 0) {
      luaL_pushfail(L);
      lua_pushliteral(L, "'.' or '..' after a directory that does not exist");
      return 2;
    }
    if (*base) rest[nrest++] = base;
    if (!slash) { dir = "."; break; }
    if (slash == copy) { dir = "/"; break; }
    *slash = '\0';
    len = (size_t)(slash - copy);
    if (lstat(copy, &st) == 0) { dir = copy; break; }
    if (errno != ENOENT) {
      luaL_pushfail(L);
      lua_pushfstring(L, "'%s': %s", copy, strerror(errno));
      return 2;
    }
  }
  if (!realpath(dir, buf)) {
    luaL_pushfail(L);
    lua_pushfstring(L, "'%s': %s", dir, strerror(errno));
    return 2;
  }
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addstring(&b, buf);
  while (nrest > 0) {
    if (luaL_bufflen(&b) == 0 || luaL_buffaddr(&b)[luaL_bufflen(&b) - 1] != '/') luaL_addchar(&b, '/');
    luaL_addstring(&b, rest[--nrest]);
  }
  luaL_pushresult(&b);
  lua_pushinteger(L, 1);
  return 2;
}

/* mkdir_p(path): create a directory and its parents (the sandbox's out=, before lockdown). */
static int sandbox_mkdir_p(lua_State *L) {
  size_t len;
  const char *path = luaL_checklstring(L, 1, &len);
  char *p = lua_newuserdatauv(L, len + 1, 0);
  memcpy(p, path, len + 1);
  for (char *s = p + 1; *s; s++) {
    if (*s != '/') continue;
    *s = '\0';
    if (mkdir(p, 0777) != 0 && errno != EEXIST) break;
    *s = '/';
  }
  if (mkdir(p, 0777) != 0 && errno != EEXIST) {
    luaL_pushfail(L);
    lua_pushfstring(L, "cannot create directory '%s': %s", path, strerror(errno));
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* Absolute path of this executable (for --reproduce and manifests): /proc/self/exe, else argv0
 * through realpath, else argv0 itself. */
static void push_executable(lua_State *L, const char *argv0) {
  char buf[PATH_MAX];
  if (realpath("/proc/self/exe", buf) || (argv0 && strchr(argv0, '/') && realpath(argv0, buf)))
    lua_pushstring(L, buf);
  else
    lua_pushstring(L, argv0 ? argv0 : PROGNAME);
}

static const char *lua_dir(void) {
  const char *d = getenv("NNFT_LUA_DIR");
  return (d && *d) ? d : NNFT_LUA_DIR;
}

/* package.path gains nnft's Lua directory (first) and package.cpath its module directory;
 * "nnft.core" is preloaded from this executable; package.loaded["nnft.interp"] tells the Lua
 * side where things are (help finds docs/ there). */
static void setup_nnft(lua_State *L, const char *argv0) {
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, luaopen_nnft_core);
  lua_setfield(L, -2, "nnft.core");
  lua_pop(L, 1);

  const char *luadir = lua_dir();
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "path");
  lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;%s", luadir, luadir, lua_tostring(L, -1));
  lua_setfield(L, -3, "path");
  lua_pop(L, 1);
  lua_getfield(L, -1, "cpath");
  lua_pushfstring(L, "%s;%s/?.so", lua_tostring(L, -1), NNFT_MODULE_DIR);
  lua_setfield(L, -3, "cpath");
  lua_pop(L, 2);

  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lua_createtable(L, 0, 8);
  lua_pushstring(L, luadir);
  lua_setfield(L, -2, "lua_dir");
  const char *docdir = getenv("NNFT_DOC_DIR");
  lua_pushstring(L, (docdir && *docdir) ? docdir : NNFT_DOC_DIR);
  lua_setfield(L, -2, "doc_dir");
  lua_pushstring(L, NNFT_MODULE_DIR);
  lua_setfield(L, -2, "module_dir");
  push_executable(L, argv0);
  lua_setfield(L, -2, "executable");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "sandbox");
  lua_pushcfunction(L, interp_listdir);
  lua_setfield(L, -2, "listdir");
  lua_pushcfunction(L, interp_types);
  lua_setfield(L, -2, "types");
  lua_setfield(L, -2, "nnft.interp");
  lua_pop(L, 1);
}

/* ---------------------------------------------------------------- command line */

static void print_usage(FILE *f) {
  fputs("usage: nnft [options] [script [key=value ...]]\n"
        "Runs a Lua 5.4 recipe with the nnft library preloaded as the global nnft.\n"
        "Options:\n"
        "  -e code          execute the Lua string code\n"
        "  -l mod           require mod into the global mod (-l g=mod: into the global g)\n"
        "  -i               enter the REPL after running the other arguments\n"
        "  -                run standard input as the script (stop handling options)\n"
        "  --               stop handling options\n"
        "  --sandbox        run an untrusted recipe: no processes, no C modules, no debug\n"
        "                   library, no binary chunks, writes only under its out= directory\n"
        "  --reproduce M    re-run the recipe recorded in manifest M and compare its outputs\n"
        "  -v, --version    show the versions of nnft, Lua, BLAS and GSL\n"
        "  -h, --help       show this help\n"
        "With no script: the REPL if standard input is a terminal, else standard input runs.\n"
        "In the REPL, help() lists modules and help(nnft.mat.zeros) shows documentation.\n"
        "Exit status is non-zero if a chunk fails (error with traceback on stderr) or is\n"
        "interrupted by Ctrl-C.\n",
        f);
}

/* What the command line asks for. */
typedef struct options {
  int script;          /* index in argv of the script ("-" for stdin), or 0 */
  int interactive;     /* -i */
  int version;         /* -v / --version */
  int help;            /* -h / --help */
  int exec;            /* some -e or -l */
  int sandbox;         /* --sandbox */
  const char *reproduce; /* --reproduce manifest */
} options;

/* Parse options up to the script name as lua.c does; -e and -l are run later, in order.
 * Returns 0, or -1 after printing a usage error. */
static int collectargs(int argc, char **argv, options *o) {
  memset(o, 0, sizeof *o);
  int i;
  for (i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (a[0] != '-' || strcmp(a, "-") == 0) {
      o->script = i;
      break;
    }
    if (strcmp(a, "--") == 0) {
      if (i + 1 < argc) o->script = i + 1;
      break;
    }
    if (strcmp(a, "-i") == 0) o->interactive = 1;
    else if (strcmp(a, "-v") == 0 || strcmp(a, "--version") == 0) o->version = 1;
    else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) o->help = 1;
    else if (strcmp(a, "--sandbox") == 0) o->sandbox = 1;
    else if (strcmp(a, "--reproduce") == 0) {
      if (++i >= argc) { l_message(PROGNAME, "'--reproduce' needs a manifest path"); return -1; }
      o->reproduce = argv[i];
    } else if (a[1] == 'e' || a[1] == 'l') {
      o->exec = 1;
      if (a[2] == '\0' && (++i >= argc || argv[i][0] == '-')) {
        fprintf(stderr, "%s: '%s' needs an argument\n", PROGNAME, a);
        print_usage(stderr);
        return -1;
      }
    } else {
      fprintf(stderr, "%s: unrecognized option '%s'\n", PROGNAME, a);
      print_usage(stderr);
      return -1;
    }
  }
  if (o->sandbox && o->reproduce) {
    l_message(PROGNAME, "--reproduce re-runs the recorded recipe as a separate, unsandboxed "
                        "process; it cannot be combined with --sandbox");
    return -1;
  }
  return 0;
}

/* The global arg, as in lua.c: arg[0] the script, arg[1..] its arguments, negative indices the
 * interpreter and its options; with no script, arg[0] is the interpreter and arg[1..] the
 * options. */
static void createargtable(lua_State *L, char **argv, int argc, int script) {
  int narg = argc - (script + 1);
  lua_createtable(L, narg > 0 ? narg : 0, script + 1);
  for (int i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - script);
  }
  lua_setglobal(L, "arg");
}

/* Load mode for user chunks: text only under --sandbox. */
static const char *chunk_mode(lua_State *L) {
  lua_getfield(L, LUA_REGISTRYINDEX, "nnft.sandboxed");
  int sandboxed = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return sandboxed ? "t" : "bt";
}

static int dochunk(lua_State *L, int status) {
  if (status == LUA_OK) status = docall(L, 0, 0);
  return report(L, status, PROGNAME);
}

static int dostring(lua_State *L, const char *s, const char *name) {
  return dochunk(L, luaL_loadbufferx(L, s, strlen(s), name, chunk_mode(L)));
}

/* -l [g=]mod: require mod and store it in the global g (default: mod's name up to a '-'). */
static int dolibrary(lua_State *L, const char *spec) {
  const char *eq = strchr(spec, '=');
  const char *mod = eq ? eq + 1 : spec;
  lua_getglobal(L, "require");
  lua_pushstring(L, mod);
  int status = docall(L, 1, 1);
  if (status == LUA_OK) {
    if (eq) lua_pushlstring(L, spec, (size_t)(eq - spec));
    else {
      const char *dash = strchr(mod, '-');
      lua_pushlstring(L, mod, dash ? (size_t)(dash - mod) : strlen(mod));
    }
    lua_insert(L, -2);
    lua_setglobal(L, lua_tostring(L, -2));
    lua_pop(L, 1);
  }
  return report(L, status, PROGNAME);
}

/* Run -e and -l in command-line order (collectargs has checked them). Returns 0 if one failed. */
static int runargs(lua_State *L, char **argv, int n) {
  for (int i = 1; i < n; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--reproduce") == 0) {
      i++;
      continue;
    }
    if (a[0] != '-' || (a[1] != 'e' && a[1] != 'l')) continue;
    const char *extra = a[2] ? a + 2 : argv[++i];
    int status = a[1] == 'e' ? dostring(L, extra, "=(command line)") : dolibrary(L, extra);
    if (status != LUA_OK) return 0;
  }
  return 1;
}

/* Run the script (argv[script], "-" for stdin) with its arguments as `...`. */
static int handle_script(lua_State *L, char **argv, int argc, int script) {
  const char *fname = argv[script];
  if (strcmp(fname, "-") == 0 && strcmp(argv[script - 1], "--") != 0) fname = NULL;
  int status = luaL_loadfilex(L, fname, chunk_mode(L));
  if (status == LUA_OK) {
    int n = argc - script - 1;
    luaL_checkstack(L, n + 2, "too many arguments to script");
    for (int i = script + 1; i < argc; i++) lua_pushstring(L, argv[i]);
    status = docall(L, n, 0);
  }
  return report(L, status, PROGNAME);
}

/* --version: nnft, git hash, Lua, BLAS and GSL, from nnft.sys.info() (the same facts manifests
 * record). */
static void print_version(lua_State *L) {
  int top = lua_gettop(L);
  lua_getglobal(L, "nnft");
  lua_getfield(L, -1, "sys");
  if (lua_istable(L, -1)) {
    lua_getfield(L, -1, "info");
    if (lua_isfunction(L, -1) && lua_pcall(L, 0, 1, 0) == LUA_OK && lua_istable(L, -1)) {
      const char *keys[] = {"version", "git", "lua", "blas", "gsl", "threads"};
      const char *v[6];
      for (int i = 0; i < 6; i++) {
        lua_getfield(L, -1 - i, keys[i]);
        v[i] = lua_tostring(L, -1);
        if (!v[i]) v[i] = "?";
      }
      printf("nnft %s (git %s)\n%s\nBLAS: %s\nGSL %s\nthreads: %s\n", v[0], v[1], v[2], v[3],
             v[4], v[5]);
      lua_settop(L, top);
      return;
    }
  }
  lua_settop(L, top);
  printf("nnft %s (git %s)\n%s\n", NNFT_VERSION, NNFT_GIT_HASH, LUA_RELEASE);
}

/* ---------------------------------------------------------------- sandbox and reproduce */

/* --sandbox: require("nnft.sandbox").install{...} before any user code runs. The recipe's
 * arguments give out=; the C helpers go to install only (never into a table the recipe sees). */
static int install_sandbox(lua_State *L, char **argv, int argc, int script) {
  lua_getglobal(L, "require");
  lua_pushliteral(L, "nnft.sandbox");
  if (report(L, docall(L, 1, 1), PROGNAME) != LUA_OK) return 0;
  lua_getfield(L, -1, "install");
  lua_remove(L, -2);
  lua_createtable(L, 0, 6);
  lua_createtable(L, argc, 0);
  if (script) {
    for (int i = script + 1; i < argc; i++) {
      lua_pushstring(L, argv[i]);
      lua_rawseti(L, -2, i - script);
    }
  }
  lua_setfield(L, -2, "args");
  if (script && strcmp(argv[script], "-") != 0) {
    lua_pushstring(L, argv[script]);
    lua_setfield(L, -2, "script");
  }
  lua_pushstring(L, lua_dir());
  lua_setfield(L, -2, "lua_dir");
  lua_pushcfunction(L, sandbox_resolve);
  lua_setfield(L, -2, "resolve");
  lua_pushcfunction(L, sandbox_mkdir_p);
  lua_setfield(L, -2, "mkdir");
  if (report(L, docall(L, 1, 0), PROGNAME) != LUA_OK) return 0;
  lua_pushboolean(L, 1);
  lua_setfield(L, LUA_REGISTRYINDEX, "nnft.sandboxed");
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lua_getfield(L, -1, "nnft.interp");
  if (lua_istable(L, -1)) {
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "sandbox");
  }
  lua_pop(L, 2);
  return 1;
}

/* --reproduce: require("nnft.reproduce").run(path, {interpreter = this executable}); true means
 * the outputs were reproduced. */
static int do_reproduce(lua_State *L, const char *path, const char *argv0) {
  lua_getglobal(L, "require");
  lua_pushliteral(L, "nnft.reproduce");
  if (report(L, docall(L, 1, 1), PROGNAME) != LUA_OK) return 0;
  lua_getfield(L, -1, "run");
  lua_remove(L, -2);
  if (!lua_isfunction(L, -1)) {
    l_message(PROGNAME, "nnft.reproduce has no function 'run'");
    lua_pop(L, 1);
    return 0;
  }
  lua_pushstring(L, path);
  lua_createtable(L, 0, 1);
  push_executable(L, argv0);
  lua_setfield(L, -2, "interpreter");
  if (report(L, docall(L, 2, 1), PROGNAME) != LUA_OK) return 0;
  int ok = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return ok;
}

/* ---------------------------------------------------------------- REPL: reading lines */

static int tty_input = 0;      /* stdin is a terminal: readline, prompts, history */
static char *history_path = NULL;
static char *rl_line = NULL;   /* the line readline's callback handed over */
static int rl_line_done = 0;

/* readline callback: a complete line (NULL on EOF). */
static void on_rl_line(char *line) {
  rl_line = line;
  rl_line_done = 1;
  rl_callback_handler_remove();
}

/* Read one line with readline's callback interface, so that Ctrl-C (a signal interrupting the
 * wait for input) abandons the line and gives a fresh prompt, as shells do. SIGINT is blocked
 * except inside pselect, so a Ctrl-C that arrives while readline processes a key is seen at the
 * next wait rather than lost. Returns 1 with *out malloc'd, 0 on EOF, -1 when Ctrl-C abandoned
 * the line. */
static int read_tty(const char *prompt, char **out) {
  int fd = fileno(rl_instream ? rl_instream : stdin);
  int result = 1;
  sigset_t block, orig;
  sigemptyset(&block);
  sigaddset(&block, SIGINT);
  sigprocmask(SIG_BLOCK, &block, &orig);
  rl_line = NULL;
  rl_line_done = 0;
  prompt_sigint = 0;
  rl_callback_handler_install(prompt, on_rl_line);
  while (!rl_line_done) {
    if (prompt_sigint) {
      prompt_sigint = 0;
      rl_free_line_state();
      rl_callback_sigcleanup();
      rl_replace_line("", 0);
      rl_callback_handler_remove();
      fputs("^C\n", stdout);
      fflush(stdout);
      result = -1;
      break;
    }
    fd_set fds;
    FD_ZERO(&fds);
    FD_SET(fd, &fds);
    int r = pselect(fd + 1, &fds, NULL, NULL, NULL, &orig);
    if (r < 0) {
      if (errno == EINTR) continue;
      rl_callback_handler_remove();
      result = 0;
      break;
    }
    rl_callback_read_char();
  }
  sigprocmask(SIG_SETMASK, &orig, NULL);
  if (result != 1) return result;
  if (!rl_line) return 0;
  *out = rl_line;
  return 1;
}

/* Read one plain line from a non-terminal stdin (tests pipe input): no prompt, no editing.
 * Same results as read_tty. */
static int read_plain(char **out) {
  size_t cap = 256, len = 0;
  char *buf = malloc(cap);
  if (!buf) return 0;
  prompt_sigint = 0;
  for (;;) {
    if (prompt_sigint) { /* Ctrl-C between two reads */
      prompt_sigint = 0;
      free(buf);
      return -1;
    }
    int c = getc(stdin);
    if (c == EOF) {
      if (ferror(stdin) && errno == EINTR) {
        clearerr(stdin);
        if (prompt_sigint) { prompt_sigint = 0; free(buf); return -1; }
        continue;
      }
      if (len == 0) { free(buf); return 0; }
      break;
    }
    if (c == '\n') break;
    if (len + 1 >= cap) {
      char *nb = realloc(buf, cap *= 2);
      if (!nb) { free(buf); return 0; }
      buf = nb;
    }
    buf[len++] = (char)c;
  }
  buf[len] = '\0';
  *out = buf;
  return 1;
}

/* The prompt: the global _PROMPT / _PROMPT2 if set (as in lua.c), else nnft's. Leaves one
 * value on the stack (keeping the string alive); the caller pops it. */
static const char *get_prompt(lua_State *L, int firstline) {
  if (lua_getglobal(L, firstline ? "_PROMPT" : "_PROMPT2") == LUA_TNIL) {
    lua_pop(L, 1);
    return lua_pushstring(L, firstline ? PROMPT1 : PROMPT2);
  }
  const char *p = luaL_tolstring(L, -1, NULL);
  lua_remove(L, -2);
  return p;
}

/* Push the next input line (without its newline). Returns 1, 0 on EOF, -1 on Ctrl-C. */
static int pushline(lua_State *L, int firstline) {
  char *b = NULL;
  int r;
  if (tty_input) {
    const char *prompt = get_prompt(L, firstline);
    r = read_tty(prompt, &b);
    lua_pop(L, 1);
  } else {
    r = read_plain(&b);
  }
  if (r <= 0) return r;
  size_t l = strlen(b);
  if (l > 0 && b[l - 1] == '\r') b[--l] = '\0';
  if (tty_input && l > 0) {
    add_history(b);
    if (history_path) append_history(1, history_path);
  }
  lua_pushlstring(L, b, l);
  free(b);
  return 1;
}

/* Try the line as "return <line>" first, so that expressions print their values. */
static int addreturn(lua_State *L) {
  const char *line = lua_tostring(L, -1);
  const char *retline = lua_pushfstring(L, "return %s;", line);
  int status = luaL_loadbufferx(L, retline, strlen(retline), "=stdin", chunk_mode(L));
  if (status == LUA_OK) lua_remove(L, -2); /* remove the modified line */
  else lua_pop(L, 2);                      /* remove the result and the modified line */
  return status;
}

/* A syntax error ending at <eof> means the chunk is incomplete: read more lines. */
static int incomplete(lua_State *L, int status) {
  if (status == LUA_ERRSYNTAX) {
    size_t lmsg;
    const char *msg = lua_tolstring(L, -1, &lmsg);
    size_t lmark = sizeof(EOFMARK) - 1;
    if (lmsg >= lmark && strcmp(msg + lmsg - lmark, EOFMARK) == 0) {
      lua_pop(L, 1);
      return 1;
    }
  }
  return 0;
}

#define LINE_CANCELLED (-2)

/* Read lines until they form a complete chunk (or a real syntax error). The joined text is at
 * stack index 1 on entry. */
static int multiline(lua_State *L) {
  for (;;) {
    size_t len;
    const char *line = lua_tolstring(L, 1, &len);
    int status = luaL_loadbufferx(L, line, len, "=stdin", chunk_mode(L));
    if (!incomplete(L, status)) return status;
    int r = pushline(L, 0);
    if (r == 0) { /* EOF inside a chunk: report it as lua.c does */
      return luaL_loadbufferx(L, line, len, "=stdin", chunk_mode(L));
    }
    if (r < 0) return LINE_CANCELLED;
    lua_pushliteral(L, "\n");
    lua_insert(L, -2);
    lua_concat(L, 3);
  }
}

/* Read and compile the next chunk. Returns a load status with the function (or message) on the
 * stack, -1 at EOF, LINE_CANCELLED after Ctrl-C at the prompt. */
static int loadline(lua_State *L) {
  lua_settop(L, 0);
  nnft_interrupt_flag = 0; /* a stale Ctrl-C must not cancel the next line */
  lua_sethook(L, NULL, 0, 0);
  int r = pushline(L, 1);
  if (r == 0) return -1;
  if (r < 0) return LINE_CANCELLED;
  int status = addreturn(L);
  if (status != LUA_OK) status = multiline(L);
  if (status == LINE_CANCELLED) { lua_settop(L, 0); return status; }
  lua_remove(L, 1);
  return status;
}

/* Print the values on the stack with the global print (matrices through their __tostring). */
static void l_print(lua_State *L) {
  int n = lua_gettop(L);
  if (n > 0) {
    luaL_checkstack(L, LUA_MINSTACK, "too many results to print");
    lua_getglobal(L, "print");
    lua_insert(L, 1);
    if (lua_pcall(L, n, 0, 0) != LUA_OK)
      l_message(NULL, lua_pushfstring(L, "error calling 'print' (%s)", lua_tostring(L, -1)));
  }
}

/* ---------------------------------------------------------------- REPL: completion */

static lua_State *completionL = NULL;
static int completion_table = 0; /* stack index of the candidates during one completion */

/* readline generator: the candidates nnft.help.complete returned, one per call. */
static char *completion_generator(const char *text, int state) {
  static lua_Integer next;
  (void)text;
  if (state == 0) next = 1;
  lua_State *L = completionL;
  if (!completion_table) return NULL;
  lua_rawgeti(L, completion_table, next++);
  const char *s = lua_tostring(L, -1);
  char *r = s ? strdup(s) : NULL;
  lua_pop(L, 1);
  return r;
}

/* Tab: ask nnft.help.complete (stored in the registry at REPL start) for the candidates of the
 * word before the cursor: globals, a.b.c fields, m:methods. Never file names. */
static char **nnft_completion(const char *text, int start, int end) {
  (void)start;
  (void)end;
  lua_State *L = completionL;
  rl_attempted_completion_over = 1;
  rl_completion_append_character = '\0';
  int top = lua_gettop(L);
  char **matches = NULL;
  lua_getfield(L, LUA_REGISTRYINDEX, "nnft.complete");
  if (lua_isfunction(L, -1)) {
    lua_pushstring(L, text);
    if (lua_pcall(L, 1, 1, 0) == LUA_OK && lua_istable(L, -1)) {
      completion_table = lua_gettop(L);
      matches = rl_completion_matches(text, completion_generator);
      completion_table = 0;
    }
  }
  lua_settop(L, top);
  return matches;
}

/* Readline set-up: our signal handling, completion, and persistent history in ~/.nnft_history
 * (none when HOME is unset). */
static void repl_init(lua_State *L) {
  completionL = L;
  rl_readline_name = "nnft";
  rl_catch_signals = 0; /* we handle SIGINT ourselves (read_tty) */
  rl_attempted_completion_function = nnft_completion;
  rl_basic_word_break_characters = " \t\n\"\\'`@$><=;|&{(+-*/%^~#,[])}";
  rl_completer_word_break_characters = rl_basic_word_break_characters;
  const char *home = getenv("HOME");
  if (home && *home) {
    size_t n = strlen(home) + sizeof(HISTORY_FILE) + 2;
    history_path = malloc(n);
    if (history_path) {
      snprintf(history_path, n, "%s/%s", home, HISTORY_FILE);
      using_history();
      if (read_history(history_path) != 0) write_history(history_path); /* create it */
    }
  }
  /* the completion function lives in Lua (nnft.help.complete), so it can be tested */
  lua_getglobal(L, "require");
  lua_pushliteral(L, "nnft.help");
  if (lua_pcall(L, 1, 1, 0) == LUA_OK && lua_istable(L, -1)) {
    lua_getfield(L, -1, "complete");
    lua_setfield(L, LUA_REGISTRYINDEX, "nnft.complete");
  }
  lua_settop(L, 0);
}

/* Keep the history file bounded on exit (lines were appended as they were entered). */
static void repl_finish(void) {
  if (history_path) {
    history_truncate_file(history_path, HISTORY_MAX);
    free(history_path);
    history_path = NULL;
  }
}

/* The read-eval-print loop: each chunk runs protected; errors and Ctrl-C end that chunk only. */
static void doREPL(lua_State *L) {
  int status;
  tty_input = isatty(STDIN_FILENO);
  sigint_idle = on_prompt_sigint;
  setsignal(SIGINT, sigint_idle);
  if (tty_input) {
    print_version(L);
    printf("help() for help, Tab completes, Ctrl-C cancels, Ctrl-D leaves.\n");
    repl_init(L);
  }
  while ((status = loadline(L)) != -1) {
    if (status == LINE_CANCELLED) continue;
    if (status == LUA_OK) status = docall(L, 0, LUA_MULTRET);
    if (status == LUA_OK) l_print(L);
    else report(L, status, NULL);
  }
  lua_settop(L, 0);
  if (tty_input) {
    fputs("\n", stdout);
    fflush(stdout);
    repl_finish();
  }
  sigint_idle = SIG_DFL;
  setsignal(SIGINT, SIG_DFL);
}

/* ---------------------------------------------------------------- main */

/* The global help (the nnft.help module, callable), set after any sandbox is in place. */
static int set_help_global(lua_State *L) {
  lua_getglobal(L, "require");
  lua_pushliteral(L, "nnft.help");
  int status = lua_pcall(L, 1, 1, 0);
  if (status != LUA_OK) { /* help is a convenience: a broken help.lua must not stop recipes */
    lua_pop(L, 1);
    return 0;
  }
  lua_setglobal(L, "help");
  return 1;
}

static int pmain(lua_State *L) {
  int argc = (int)lua_tointeger(L, 1);
  char **argv = (char **)lua_touserdata(L, 2);
  options o;
  if (collectargs(argc, argv, &o) != 0) return 0;
  if (o.help) {
    print_usage(stdout);
    lua_pushboolean(L, 1);
    return 1;
  }
  luaL_checkversion(L);
  luaL_openlibs(L);
  setup_nnft(L, argv[0]);
  createargtable(L, argv, argc, o.script);
  lua_gc(L, LUA_GCRESTART);
  lua_gc(L, LUA_GCGEN, 0, 0);

  lua_getglobal(L, "require");
  lua_pushliteral(L, "nnft");
  if (report(L, docall(L, 1, 1), PROGNAME) != LUA_OK) return 0;
  lua_setglobal(L, "nnft");

  if (o.version) print_version(L);
  if (o.reproduce) {
    lua_pushboolean(L, do_reproduce(L, o.reproduce, argv[0]));
    return 1;
  }
  if (o.sandbox && !install_sandbox(L, argv, argc, o.script)) return 0;
  set_help_global(L);

  int optend = o.script ? o.script : argc;
  if (!runargs(L, argv, optend)) return 0;
  if (o.script && handle_script(L, argv, argc, o.script) != LUA_OK) return 0;
  if (o.interactive) {
    doREPL(L);
  } else if (o.script == 0 && !o.exec && !o.version) {
    if (isatty(STDIN_FILENO)) {
      doREPL(L);
    } else if (dochunk(L, luaL_loadfilex(L, NULL, chunk_mode(L))) != LUA_OK) {
      return 0;
    }
  }
  lua_pushboolean(L, 1);
  return 1;
}

int main(int argc, char **argv) {
  lua_State *L = luaL_newstate();
  if (!L) {
    l_message(PROGNAME, "cannot create Lua state: not enough memory");
    return EXIT_FAILURE;
  }
  lua_gc(L, LUA_GCSTOP);
  lua_pushcfunction(L, pmain);
  lua_pushinteger(L, argc);
  lua_pushlightuserdata(L, argv);
  int status = lua_pcall(L, 2, 1, 0);
  int ok = lua_toboolean(L, -1);
  report(L, status, PROGNAME);
  lua_close(L);
  return (status == LUA_OK && ok) ? EXIT_SUCCESS : EXIT_FAILURE;
}
