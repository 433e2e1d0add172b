/* nnft_kernel: covariance kernels as values — the infinite-width kernels of an architecture
 * (NNGP, NTK: physics.md §2.1–2.3, evaluated by nnft_nngp.h) and kernels by themselves (RBF,
 * Matérn, polynomial, the free cutoff propagator of §2.4), combined by sums, products and scaling,
 * so that GP regression, Mercer spectra and the RG flows work on any kernel.
 *
 * A kernel is a small tree: leaves carry their parameters, SUM/PROD nodes two children, SCALE one.
 * Every node is plain data owned by whoever holds it; children are pointers the owner keeps alive
 * (the Lua binding keeps child Kernel userdata referenced from the parent's user values). */
#ifndef NNFT_KERNEL_H
#define NNFT_KERNEL_H

#include "nnft_arch.h"
#include "nnft_mat.h"
#include "nnft_status.h"

typedef enum {
  NNFT_KERNEL_NNGP,     /* infinite-width NNGP kernel of `arch` (K^{L+1} of §2.1) */
  NNFT_KERNEL_NTK,      /* neural tangent kernel of `arch` (Θ^{L+1} of §2.1) */
  NNFT_KERNEL_RBF,      /* variance · exp(−|x − y|²/(2 ℓ²)) */
  NNFT_KERNEL_MATERN,   /* Matérn ν ∈ {1/2, 3/2, 5/2} with lengthscale ℓ and variance */
  NNFT_KERNEL_POLY,     /* variance · (x·y/d + offset)^degree */
  NNFT_KERNEL_FREEPROP, /* free scalar propagator with cutoff R and mass m in d = 1, 2, 3 (§2.4) */
  NNFT_KERNEL_SUM,      /* left + right */
  NNFT_KERNEL_PROD,     /* left · right (elementwise) */
  NNFT_KERNEL_SCALE     /* scale · left */
} nnft_kernel_type;

typedef struct nnft_kernel {
  nnft_kernel_type type;
  nnft_arch arch;        /* NNGP / NTK: a copy of the architecture */
  int quad_order;        /* Gauss–Hermite nodes per dimension for activations without a closed form */
  double variance;       /* RBF, MATERN, POLY */
  double lengthscale;    /* RBF, MATERN */
  double nu;             /* MATERN: 0.5, 1.5 or 2.5 */
  double degree, offset; /* POLY */
  double radius, mass;   /* FREEPROP */
  size_t dim;            /* FREEPROP: d; the input dimension a kernel expects (0 = any) */
  double scale;          /* SCALE */
  const struct nnft_kernel *left, *right;
} nnft_kernel;

/* Check a kernel tree's parameters (recursively). NNFT_EDOM with the first bad one. */
nnft_status nnft_kernel_check(const nnft_kernel *k);

/* out = K(X, Y): X is n x d, Y is m x d (rows are points), out n x m. Y == NULL means Y = X and
 * takes the symmetric path (half the evaluations, exactly symmetric result). Polls the interrupt
 * flag between blocks. NNFT_EDIM on shape mismatch, NNFT_ENONFINITE on NaN/Inf inputs. */
nnft_status nnft_kernel_matrix(const nnft_kernel *k, const nnft_mat *X, const nnft_mat *Y,
                               nnft_mat *out);

/* out (n x 1) = K(x_i, x_i) for the rows of X, without forming the matrix. */
nnft_status nnft_kernel_diag(const nnft_kernel *k, const nnft_mat *X, nnft_mat *out);

/* Bytes an n x m kernel matrix (plus evaluation workspace) needs: for refusing in advance. */
nnft_status nnft_kernel_bytes(const nnft_kernel *k, size_t n, size_t m, size_t *bytes);

#endif
