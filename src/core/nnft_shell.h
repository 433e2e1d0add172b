/* nnft_shell: information-shell coarse graining of a trained network (the Bayesian RG,
 * physics.md §7.2; [HKMS] arXiv:2405.17538, Berman–Klinger–Stapleton arXiv:2305.10491).
 *
 * Given Fisher eigenvalues λ_A with orthonormal eigenvectors v_A (basis EIGEN), or the diagonal
 * entries I_ii (basis DIAG, parameter by parameter), and a cutoff Λ >= 0, a direction is sloppy
 * when λ < Λ (strict, BRG-NNFT, the default) or λ <= Λ (non-strict, Bayesian Renormalization), and
 * stiff otherwise. In the EIGEN basis every direction orthogonal to the given vectors (the null
 * space of a rank-deficient Fisher, given as a Gram-form spectrum) has λ = 0 + damping and is
 * classified by the same rule, so for any Λ > 0 (strict) it is sloppy; with P_> = V_> V_>ᵀ the
 * stiff projector, P_< = 1 − P_>.
 *
 * Actions on the trainable vector θ* (length P):
 *   ZERO         θ_Λ = P_> θ*                         (DIAG: sloppy θ_i set to 0)
 *   RESAMPLE     θ_Λ = P_> θ* + P_< η,  η = m + s ⊙ z1 a draw from the prior N(m, s²)
 *                (= θ* − P_<θ* + V_< ξ, ξ ~ N(0, s² 1) for an isotropic zero-mean prior)
 *                (DIAG: sloppy θ_i = m_i + s_i z1_i)
 *   MARGINALISE  the Laplace posterior N(θ*, A⁻¹), A = T·I + diag(1/s²) (T = opts.data, the
 *                number of data the per-example Fisher stands for), integrated over the sloppy
 *                directions: the stiff coordinates are drawn from their exact marginal
 *                N(θ*_>, [A⁻¹]_>>), the sloppy ones from the prior as in RESAMPLE.
 *                EIGEN (isotropic prior s, m = 0 required): stiff coefficient
 *                v_Aᵀθ* + (v_Aᵀ z2) / sqrt(T λ_A + 1/s²).
 *                DIAG with a diagonal metric: θ_i + z2_i / sqrt(T I_ii + 1/s_i²).
 *                DIAG with dense metric blocks (DENSE/BLOCK forms): per block, the stiff
 *                marginal precision is the Schur complement S = A_>> − A_>< A_<<⁻¹ A_<>
 *                (nnft_shell_marginal_precision), and δ_> = L⁻ᵀ z2_> with S = L Lᵀ.
 * The standard normals z1, z2 (length P each) are drawn once by the caller and passed in, so
 * that a cumulative schedule over ascending Λ keeps every direction's draw once it is made
 * (a direction once sloppy stays sloppy and is never re-drawn: nnft_shell_schedule). */
#ifndef NNFT_SHELL_H
#define NNFT_SHELL_H

#include <stddef.h>

#include "nnft_mat.h"
#include "nnft_rng.h"
#include "nnft_status.h"

typedef enum { NNFT_SHELL_EIGEN, NNFT_SHELL_DIAG } nnft_shell_basis;
typedef enum { NNFT_SHELL_RESAMPLE, NNFT_SHELL_ZERO, NNFT_SHELL_MARGINALISE } nnft_shell_action;

/* Names ("eigen", "diag"; "resample", "zero", "marginalise") and lookups (-1 if unknown;
 * "marginalize" is accepted too). */
const char *nnft_shell_basis_name(nnft_shell_basis b);
int nnft_shell_basis_lookup(const char *name);
const char *nnft_shell_action_name(nnft_shell_action a);
int nnft_shell_action_lookup(const char *name);

/* 1 if λ is sloppy at cutoff Λ: λ < Λ (strict) or λ <= Λ. NaN is never sloppy. */
static inline int nnft_shell_is_sloppy(double lambda, double cutoff, int strict) {
  return strict ? lambda < cutoff : lambda <= cutoff;
}

/* sloppy[i] = nnft_shell_is_sloppy(lambda[i], ...) for i < k (sloppy may be NULL); returns the
 * count. O(k). */
size_t nnft_shell_mask(const double *lambda, size_t k, double cutoff, int strict,
                       unsigned char *sloppy);

typedef struct nnft_shell_problem {
  size_t P;                  /* trainable parameters */
  const double *theta;       /* θ* (P) */
  const double *prior_mean;  /* m (P) */
  const double *prior_sd;    /* s (P), > 0 */
  /* EIGEN basis: k eigenpairs (any order), V P x k with orthonormal columns */
  size_t k;
  const double *lambda;
  const nnft_mat *V;
  /* DIAG basis: the diagonal of the metric (P), and for MARGINALISE optionally dense blocks of
   * the metric: nblocks blocks, block b covering parameters [boff[b], boff[b] + rows) in order
   * (nblocks = 0: the metric is diagonal) */
  const double *diag;
  size_t nblocks;
  const size_t *boff;
  const nnft_mat *blocks;
  double damping;            /* ε (already included in lambda/diag/blocks): the null-space λ */
  /* the draws: P standard normals each (z2 used by MARGINALISE only; may be NULL otherwise) */
  const double *z1, *z2;
} nnft_shell_problem;

typedef struct nnft_shell_opts {
  nnft_shell_basis basis;
  nnft_shell_action action;
  int strict;                /* 1: λ < Λ sloppy (default); 0: λ <= Λ */
  double data;               /* T of MARGINALISE (> 0) */
} nnft_shell_opts;

/* Coarse-grain: out (P) = θ_Λ of the header comment for cutoff Λ >= 0 (NNFT_EDOM for Λ < 0 or
 * NaN, a bad option, a non-positive prior sd, T <= 0 for MARGINALISE, or a non-isotropic or
 * non-zero-mean prior for EIGEN MARGINALISE). *nsloppy (may be NULL) receives the number of sloppy
 * directions (EIGEN: the sloppy given ones plus the null-space dimension P − k when it is sloppy),
 * *nnull (may be NULL) P − k (EIGEN) or 0 (DIAG). out may not alias theta.
 * O(P k) (EIGEN), O(P) (DIAG), O(Σ_b m_b³) with blocks. */
nnft_status nnft_shell_apply(const nnft_shell_problem *pb, double cutoff, const nnft_shell_opts *o,
                             double *out, size_t *nsloppy, size_t *nnull);

/* Cumulative schedule over m ascending cutoffs (non-decreasing, each >= 0; NNFT_EDOM otherwise):
 * column j of out (P x m) is nnft_shell_apply at cutoffs[j] with the same draws, counts[j] (may be
 * NULL) its number of sloppy directions. Since the draws are shared and the sloppy sets grow
 * with Λ, the sloppy sets are nested and each direction keeps its one draw. Polls the interrupt
 * flag between cutoffs. */
nnft_status nnft_shell_schedule(const nnft_shell_problem *pb, const double *cutoffs, size_t m,
                                const nnft_shell_opts *o, nnft_mat *out, size_t *counts);

/* Stiff marginal precision of a Gaussian with precision A (m x m SPD): with the index set
 * sloppy[i] != 0 integrated out, S = A_>> − A_>< A_<<⁻¹ A_<> (q x q, q = number of stiff indices,
 * in index order), so that the marginal covariance of the stiff coordinates is S⁻¹ = [A⁻¹]_>>.
 * S must be q x q. NNFT_ENOTPD if A_<< is not positive definite. O(m³). */
nnft_status nnft_shell_marginal_precision(const nnft_mat *A, const unsigned char *sloppy,
                                          nnft_mat *S);

/* Draw z1 and z2 (each P standard normals, z2 may be NULL) from r, in that order. */
nnft_status nnft_shell_draw(nnft_rng *r, size_t P, double *z1, double *z2);

#endif
