/* nnft_kernel: covariance kernels as values — the infinite-width kernels of an architecture
 * (NNGP, NTK: physics.md §2.1–2.3, evaluated by nnft_nngp.h) and kernels by themselves (RBF,
 * Matérn, polynomial, the free cutoff propagator of §2.4), combined by sums, products and scaling,
 * so that GP regression, Mercer spectra and the RG flows work on any kernel.
 *
 * A kernel is a small tree: leaves carry their parameters, SUM/PROD nodes two children, SCALE one.
 * Every node is plain data owned by whoever holds it; children are pointers the owner keeps alive
 * (the Lua binding keeps child Kernel userdata referenced from the parent's user values).
 * Trees are at most NNFT_KERNEL_MAX_DEPTH nodes deep (the evaluation recurses).
 *
 * Leaves (x, y ∈ R^d are rows of X, Y; r = |x − y|):
 *   RBF       variance · exp(−r²/(2ℓ²))
 *   MATERN    ν = 1/2: variance · exp(−r/ℓ)
 *             ν = 3/2: variance · (1 + √3 r/ℓ) exp(−√3 r/ℓ)
 *             ν = 5/2: variance · (1 + √5 r/ℓ + 5r²/(3ℓ²)) exp(−√5 r/ℓ)
 *   POLY      variance · (x·y/d + offset)^degree        (degree a non-negative integer)
 *   FREEPROP  G(r) = ∫_{|p|<=R} d^dp/(2π)^d e^{ip·(x−y)} / (p² + m²)   (nnft_freeprop, d = 1,2,3)
 *   NNGP/NTK  K^{L+1}(x, y) and Θ^{L+1}(x, y) of `arch` (nnft_nngp)
 * Nodes: SUM left + right, PROD left · right (elementwise: a product of kernels is a kernel),
 * SCALE scale · left (scale >= 0 keeps it a covariance; any finite scale is accepted). */
#ifndef NNFT_KERNEL_H
#define NNFT_KERNEL_H

#include "nnft_arch.h"
#include "nnft_mat.h"
#include "nnft_status.h"

#define NNFT_KERNEL_MAX_DEPTH 200
/* 1 when the NNGP/NTK leaves are evaluated (nnft_nngp linked); 0: they give NNFT_EDOM */
#define NNFT_KERNEL_HAVE_NNGP 1

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
  int quad_order;        /* Gauss–Hermite nodes per dimension for activations without a closed form
                            (0: nnft_nngp's default; else 2 .. NNFT_NNGP_QUAD_MAX) */
  double variance;       /* RBF, MATERN, POLY */
  double lengthscale;    /* RBF, MATERN */
  double nu;             /* MATERN: 0.5, 1.5 or 2.5 */
  double degree, offset; /* POLY */
  double radius, mass;   /* FREEPROP */
  size_t dim;            /* FREEPROP: d; the input dimension a kernel expects (0 = any) */
  double scale;          /* SCALE */
  const struct nnft_kernel *left, *right;
} nnft_kernel;

/* Leaf constructors: a zeroed node of the type with the given parameters (not checked). */
nnft_kernel nnft_kernel_rbf(double lengthscale, double variance);
nnft_kernel nnft_kernel_matern(double nu, double lengthscale, double variance);
nnft_kernel nnft_kernel_poly(double degree, double offset, double variance);
nnft_kernel nnft_kernel_freeprop(size_t d, double R, double m);
nnft_kernel nnft_kernel_nngp(const nnft_arch *a, int ntk, int quad_order);
nnft_kernel nnft_kernel_sum(const nnft_kernel *a, const nnft_kernel *b);
nnft_kernel nnft_kernel_prod(const nnft_kernel *a, const nnft_kernel *b);
nnft_kernel nnft_kernel_scale(double c, const nnft_kernel *a);

/* Check a kernel tree's parameters (recursively). NNFT_EDOM with the first bad one. */
nnft_status nnft_kernel_check(const nnft_kernel *k);
/* As nnft_kernel_check, and *why (may be NULL) receives a static English reason on failure
 * ("Matérn nu must be 0.5, 1.5 or 2.5", ...). */
nnft_status nnft_kernel_check_why(const nnft_kernel *k, const char **why);

/* Depth of the tree (a leaf is 1). */
size_t nnft_kernel_depth(const nnft_kernel *k);

/* The input dimension the kernel requires: 0 if any (RBF, Matérn, poly alone), d_in of an
 * architecture, d of a free propagator. NNFT_EDIM if two leaves require different dimensions. */
nnft_status nnft_kernel_input_dim(const nnft_kernel *k, size_t *dim);

/* 1 if K(x, y) depends on |x − y| only (isotropic and translation invariant): RBF, Matérn,
 * FREEPROP, sums/products/scalings of such, and the NNGP kernels of the one-hidden-layer nets whose
 * kernel is translation invariant (physics.md §2.3): the cos-nets (plain and generalised, with no
 * readout bias) and the Gauss-net with no readout bias (zero parameter means). */
int nnft_kernel_is_stationary(const nnft_kernel *k);

/* out = K(X, Y): X is n x d, Y is m x d (rows are points), out n x m. Y == NULL means Y = X and
 * takes the symmetric path (half the evaluations, exactly symmetric result). Polls the interrupt
 * flag between blocks. NNFT_EDIM on shape mismatch, NNFT_ENONFINITE on NaN/Inf inputs.
 * Evaluated in 64 x 64 tiles; sums, products and scalings combine in place (a temporary tile only
 * for a sum inside a product or a product inside a sum). Tiles are distributed over OpenMP's
 * default number of threads (one thread when an NNGP leaf has a user activation); every tile is
 * computed by the same code whatever thread runs it, so results are bit-identical for any thread
 * count. Workspace O(threads · (depth · 64² + 64 d)). A tree that is a single NNGP/NTK leaf is
 * handed to nnft_nngp_matrix whole (NNGP leaves inside a tree run one tile at a time, in the
 * tile's thread). out must not overlap X, Y. */
nnft_status nnft_kernel_matrix(const nnft_kernel *k, const nnft_mat *X, const nnft_mat *Y,
                               nnft_mat *out);

/* out (n x 1) = K(x_i, x_i) for the rows of X, without forming the matrix. */
nnft_status nnft_kernel_diag(const nnft_kernel *k, const nnft_mat *X, nnft_mat *out);

/* out[i] = k(r[i]) for a stationary kernel evaluated at distance r[i] >= 0 in dimension d
 * (points (r, 0, ..., 0) and 0). NNFT_EDOM if the kernel is not stationary, NNFT_EDIM if it
 * requires another dimension, NNFT_ENONFINITE / NNFT_EDOM for a NaN / negative r. n values; out
 * may be r. Allocates a workspace per call: for many calls use the workspace form below. */
nnft_status nnft_kernel_radial(const nnft_kernel *k, size_t d, const double *r, size_t n,
                               double *out);

/* The same with a workspace kept between calls (what the spectral transforms use: one kernel
 * value per quadrature node). The workspace refers to k, which must outlive it. */
typedef struct nnft_kernel_radial_ws nnft_kernel_radial_ws;
nnft_status nnft_kernel_radial_ws_alloc(const nnft_kernel *k, size_t d,
                                        nnft_kernel_radial_ws **ws);
void nnft_kernel_radial_ws_free(nnft_kernel_radial_ws *ws); /* NULL is fine */
nnft_status nnft_kernel_radial_eval(nnft_kernel_radial_ws *ws, const double *r, size_t n,
                                    double *out);

/* A length beyond which the kernel has essentially decayed or oscillates (the largest of the
 * leaves' scales: ℓ of RBF/Matérn, 1/m and 1/R of a propagator, √d/σ_w of a Gauss-net or plain
 * cos-net, 1/R of a ball cos-net); used to choose grids. 0 for a non-stationary kernel. */
double nnft_kernel_length_scale(const nnft_kernel *k);

/* Bytes an n x m kernel matrix (plus evaluation workspace) needs: for refusing in advance. */
nnft_status nnft_kernel_bytes(const nnft_kernel *k, size_t n, size_t m, size_t *bytes);

#endif
