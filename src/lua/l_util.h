/* Helpers shared by every binding (src/lua/l_*.c): the Mat userdata, argument and option
 * checking, and turning an nnft_status into a Lua error.
 *
 * The order every binding follows (docs/design.md): check all arguments -> allocate Lua-owned
 * results and workspaces -> call the core (which cannot raise) -> raise on a bad status. */
#ifndef NNFT_L_UTIL_H
#define NNFT_L_UTIL_H

#include <lauxlib.h>
#include <lua.h>

#include "nnft_arch.h"
#include "nnft_kernel.h"
#include "nnft_mat.h"
#include "nnft_net.h"
#include "nnft_status.h"

#define L_MAT_NAME "nnft.Mat"
#define L_ARCH_NAME "nnft.Arch" /* the Arch userdata (l_arch.c) */
#define L_NET_NAME "nnft.Net"   /* the Net userdata (l_arch.c) */
#define L_KERNEL_NAME "nnft.Kernel" /* the Kernel userdata (l_kernel.c) */

/* ---- the Mat userdata ---- */

/* The Mat at idx, or a type error naming fname and the argument. */
nnft_mat *l_checkmat(lua_State *L, int idx);
/* The Mat at idx, or NULL. */
nnft_mat *l_testmat(lua_State *L, int idx);
/* Push a new zero-filled rows x cols Mat (Lua owns it); raises a clear error if it cannot be
 * allocated (naming the size in MiB). */
nnft_mat *l_newmat(lua_State *L, size_t rows, size_t cols);
/* Push a Mat sharing storage with the Mat at parent_idx (kept alive through the user value). */
nnft_mat *l_pushview(lua_State *L, int parent_idx, const nnft_mat *view);
/* Push a new Mat holding a contiguous copy of m. */
nnft_mat *l_pushcopy(lua_State *L, const nnft_mat *m);
/* Accept a Mat, a number (as 1x1) or a nested table / flat table of numbers (converted to a
 * new Mat pushed in place of idx's value's copy on the stack top). Returns the Mat pointer;
 * for a converted value the new Mat is left on top of the stack (caller accounts for it). */
nnft_mat *l_tomat(lua_State *L, int idx, int *pushed);

/* ---- the Arch userdata (l_arch.c) ---- */

/* The architecture of the Arch at idx, or a type error. The pointer stays valid while the
 * userdata lives (keep it on the stack or in a user value). For an architecture with a Lua
 * activation (NNFT_ACT_CUSTOM) this also binds the callback to L, the running thread: its
 * evaluation is single-threaded and must happen within the current binding call; after the core
 * returns, call l_arch_check_custom to raise an error the callback may have raised. */
const nnft_arch *l_checkarch(lua_State *L, int idx);
/* Raise "<fname>: activation function failed: <msg>" if the Lua activation of the arch at idx
 * raised (or returned a non-number) during the last core call; clears the record. No-op for
 * built-in activations. */
void l_arch_check_custom(lua_State *L, int idx, const char *fname);
/* The network of the Net at idx (type error if not a Net, argument error if released); binds
 * its architecture's Lua activation to L like l_checkarch (then call l_net_check_custom after
 * the core returns). The pointer stays valid while the userdata lives and is not released. */
nnft_net *l_checknet(lua_State *L, int idx);
void l_net_check_custom(lua_State *L, int idx, const char *fname);
/* Add methods to the Arch / Net method tables from another binding file (arch:kernel(), ...);
 * works whatever the order of the openers. */
void l_arch_add_methods(lua_State *L, const luaL_Reg *methods);
void l_net_add_methods(lua_State *L, const luaL_Reg *methods);

/* ---- the Kernel userdata (l_kernel.c) ---- */

/* The kernel tree of the Kernel at idx (userdata "nnft.Kernel"), or a type error. Valid while
 * the userdata lives. Binds the Lua activations of the tree's architectures to L (as
 * l_checkarch): after the core returns, call l_kernel_check_custom. */
const nnft_kernel *l_checkkernel(lua_State *L, int idx);
/* Raise "<fname>: activation function failed: <msg>" if a Lua activation in the tree failed. */
void l_kernel_check_custom(lua_State *L, int idx, const char *fname);
/* Add methods to the Kernel method table from another binding file (kernel:mercer(), ...). */
void l_kernel_add_methods(lua_State *L, const luaL_Reg *methods);

/* ---- checks ---- */

/* Raise an error with C printf formatting (%zu, %.3g, ... which luaL_error lacks); the message
 * should start with the function's name ("nnft.gp.fit: ..."). Never returns. */
int l_error(lua_State *L, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Raise a Lua error for status s: "<fname>: <nnft_strerror(s)>[: detail]". */
int l_status_error(lua_State *L, nnft_status s, const char *fname, const char *detail);
/* Size argument: a non-negative integer (positive if positive != 0) that fits in size_t. */
size_t l_checksize(lua_State *L, int arg, int positive);
/* Raise if m has NaN or Inf: "<fname>: <what> contains NaN or Inf (row i, column j)". */
void l_check_finite(lua_State *L, const nnft_mat *m, const char *fname, const char *what);
/* The matrix argument at idx (a Mat, or a number or table converted in place), named in errors. */
nnft_mat *l_argmat(lua_State *L, int idx, const char *fname, const char *name);
/* Points (rows) at idx for kernel k (NULL: any dimension): at least one row, the kernel's input
 * dimension, finite. */
nnft_mat *l_argpoints(lua_State *L, int idx, const nnft_kernel *k, const char *fname,
                      const char *name);
/* Raise unless a and b have the same shape. */
void l_check_same_shape(lua_State *L, const nnft_mat *a, const nnft_mat *b, const char *fname);

/* ---- option tables ---- */

/* Check that the table at idx (absent/nil allowed) has only keys in the NULL-terminated list
 * `allowed`; otherwise raise "fname: unknown option 'key' (allowed: a, b, c)". */
void l_check_options(lua_State *L, int idx, const char *fname, const char *const allowed[]);
/* Option getters: the field of the options table at idx, or def when absent/nil. Type errors
 * name the option. */
double l_opt_number(lua_State *L, int idx, const char *key, double def);
lua_Integer l_opt_integer(lua_State *L, int idx, const char *key, lua_Integer def);
int l_opt_boolean(lua_State *L, int idx, const char *key, int def);
const char *l_opt_string(lua_State *L, int idx, const char *key, const char *def);
/* An option whose value must be one of `choices` (NULL-terminated); returns its index. */
int l_opt_choice(lua_State *L, int idx, const char *key, const char *def,
                 const char *const choices[]);

/* ---- registration ---- */

/* Each binding file exports one opener that adds its functions to the nnft table on top of the
 * stack (and registers its metatables). Listed in l_nnft.c. */
void l_open_mat(lua_State *L);
void l_open_linalg(lua_State *L);
void l_open_rng(lua_State *L);
void l_open_sys(lua_State *L);
void l_open_io(lua_State *L);
void l_open_arch(lua_State *L);
void l_open_finite(lua_State *L); /* nnft.finite, nnft.freeprop (l_finite.c) */
void l_open_ensemble(lua_State *L); /* arch:sample, Ensemble, nnft.corr (l_ensemble.c) */
void l_open_kernel(lua_State *L); /* nnft.kernel, Kernel, arch:kernel (l_kernel.c) */
void l_open_coupling(lua_State *L); /* nnft.coupling, nnft.coupling.lpa (l_coupling.c) */
void l_open_wilson(lua_State *L); /* nnft._rg, the C half of nnft.rg (l_wilson.c) */
void l_open_mckernel(lua_State *L); /* arch:mc_kernel, mc_kernel_running, mc_ntk, net:ntk (l_mckernel.c) */
void l_open_fisher(lua_State *L); /* nnft.fisher, Fisher, nnft.shell (l_fisher.c) */
void l_open_gp(lua_State *L);     /* nnft.gp, GP (l_gp.c) */
void l_open_mercer(lua_State *L); /* nnft.mercer, kernel:mercer, Modes (l_mercer.c) */

/* Register a metatable `tname` with methods (an __index table), metamethods, and __name. */
void l_newclass(lua_State *L, const char *tname, const luaL_Reg *methods,
                const luaL_Reg *metamethods);

/* Poll the interrupt flag from a binding: if set, clear it and raise "interrupted". */
void l_check_interrupt(lua_State *L);

#endif
