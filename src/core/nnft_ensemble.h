/* nnft_ensemble: streamed ensembles of independently initialised networks (physics.md §1, §3;
 * DESIGN.md §5). E networks of one architecture are evaluated at n inputs without ever holding
 * more than one chunk of them: the sampler draws each network's parameters, evaluates it, and
 * hands each chunk's outputs (m networks x n inputs) to a consumer (correlator accumulators,
 * histograms, an output matrix).
 *
 * Reproducibility contract. Network e (0-based) of seed s depends only on (s, e): its parameters
 * come from its own generator G_e, seeded from the Philox substream e of nnft_rng_init(s) (the
 * first 36 64-bit words of that substream: 32 for the eight lanes of the normal stream, 4 for
 * the scalar stream). So the results are bit-identical for any thread count and chunk size.
 *   - Normal stream: eight interleaved xoshiro256++ generators (Blackman & Vigna 2018); step t
 *     of lane l is raw word 8t + l. Words are turned into standard normals by the 256-layer
 *     ziggurat of nnft_rng (same tables, same fast-path formula x = j w[i]), 256 at a time; a
 *     word rejected by the fast path is resolved, in buffer order, by the ziggurat's tail and
 *     wedge steps drawing from the scalar stream. Consumed in order as one sequence.
 *   - Scalar stream: one xoshiro256++ generator for uniforms (53 bits, [0, 1)): cos-net phases
 *     and ball radii, and the ziggurat's rare slow path.
 * Parameters are drawn layer by layer: W^l in column-major order (fan_out x fan_in; W^1's column
 * c holds the weights of input coordinate c), then b^l. A weight or bias whose standard deviation
 * is 0 is its mean and draws nothing (a ReLU net with σ_b = 0 draws no biases). Standard
 * parameterisation: W = mean_w + (σ_w/sqrt(fan_in)) z; NTK: W = (σ_w/sqrt(fan_in)) (mean_w + z)
 * (the forward pass of the same function); b = mean_b + σ_b z.
 * Cos-nets (nnft_arch.is_cosnet): frequencies of layer 1 are Gaussian as above or, for
 * NNFT_FREQ_BALL, uniform in the d-ball of radius R (per neuron: d normals from the normal
 * stream for the direction, redrawn while all zero, then radius R U^{1/d} with U from the scalar
 * stream); phases are uniform on [-π, π) from the scalar stream (N draws, after the
 * frequencies); the readout a ~ N(0, σ_a²/N) is multiplied by A(b_i) = C/sqrt(|b_i|² + m²)
 * when nnft_arch.amplitude is set (physics.md §1.3).
 * Gauss-net (NNFT_ACT_GAUSSNET): h = exp(z − σ_b² − σ_w²|x|²/d), the input-dependent
 * normalisation of physics.md §1.2 written as one exponential.
 *
 * One-hidden-layer networks with a single output take a fused path (hidden layer, activation
 * and readout for eight neurons at a time in registers) that performs the same floating-point
 * operations in the same order as the layer-by-layer path, so its results are identical; the
 * environment variable NNFT_ENS_NOFUSE=1 switches it off (for tests and comparisons).
 *
 * Threads: OpenMP over chunks; per-chunk work is independent, and the consumer's merge step runs
 * serially in chunk order (see nnft_ens_consumer), so any consumer whose merge is deterministic
 * gives thread-independent results. No BLAS is called inside the parallel region. */
#ifndef NNFT_ENSEMBLE_H
#define NNFT_ENSEMBLE_H

#include <stddef.h>
#include <stdint.h>

#include "nnft_arch.h"
#include "nnft_corr.h"
#include "nnft_mat.h"
#include "nnft_status.h"

#define NNFT_ENS_CHUNK 256 /* default networks per chunk */

/* What the sampler hands each chunk to. Both callbacks must not raise (they are core code) and
 * return NNFT_OK or an error status that stops the run. The chunks are processed in windows of
 * nnft_ens_window(threads) consecutive chunks: chunk q of the window starting at chunk w0 uses
 * slot q - w0.
 *   chunk(ctx, tid, slot, e0, F): in parallel; F (m x n, column-major, network index fastest)
 *     holds the outputs of networks e0 .. e0+m-1 at the n inputs; valid only during the call.
 *     tid is the thread number in [0, threads), slot in [0, window): per-thread state (indexed
 *     by tid) or per-slot state (by slot) prepared by the caller.
 *   merge(ctx, slot, e0, m): after all chunks of a window, serially, in increasing e0 order:
 *     fold that chunk's partial result (kept in its slot) into the total. May be NULL.
 * Only the end of each window synchronises the threads. */
typedef struct nnft_ens_consumer {
  void *ctx;
  nnft_status (*chunk)(void *ctx, int tid, size_t slot, size_t e0, const nnft_mat *F);
  nnft_status (*merge)(void *ctx, size_t slot, size_t e0, size_t m);
} nnft_ens_consumer;

/* The thread count a run with `requested` threads uses: requested if >= 1, else
 * omp_get_max_threads(); 1 without OpenMP, and 1 for architectures with a custom activation
 * (user callbacks are not assumed to be thread-safe). Prepare per-thread consumer state for
 * this many threads. */
int nnft_ens_threads(const nnft_arch *a, int requested);

/* A partition of the networks into chunks: chunk q < count is networks [lo, hi) as set by
 * range(ctx, q, &lo, &hi), with lo < hi <= lo + max, chunks in increasing order. */
typedef struct nnft_ens_chunks {
  size_t count, max;
  void (*range)(const void *ctx, size_t q, size_t *lo, size_t *hi);
  const void *ctx;
} nnft_ens_chunks;

/* Chunks per window for a run on `threads` threads (16 per thread). */
size_t nnft_ens_window(int threads);

/* Check that X (n x d_in, n >= 1) can be fed to a: NNFT_EDIM if X's column count differs from
 * d_in or X is empty, NNFT_ENONFINITE if X has NaN or Inf, and nnft_arch_check's status. */
nnft_status nnft_ens_check(const nnft_arch *a, const nnft_mat *X);

/* Run networks of seed `seed` at the inputs X (rows are points) chunk by chunk, on `threads`
 * threads (as returned by nnft_ens_threads), feeding every chunk to the consumer. The chunks are
 * `chunks` (count >= 1), or with chunks = NULL [0, E) cut every `chunk` networks (E >= 1,
 * chunk >= 1). Work space per thread: one chunk of outputs (max x n) plus two layer activations
 * (width x n) and a few KiB, allocated here. Polls the interrupt flag per network (NNFT_EINTR).
 * Errors: nnft_ens_check's, NNFT_EDOM for bad chunks or E = 0, NNFT_ENOMEM, NNFT_EOVERFLOW, or
 * the first error a consumer returned. Cost per network: one normal per random parameter plus a
 * forward pass, O(P n). */
nnft_status nnft_ens_run(const nnft_arch *a, const nnft_mat *X, uint64_t seed, size_t E,
                         size_t chunk, const nnft_ens_chunks *chunks, int threads,
                         const nnft_ens_consumer *c);

/* The outputs of networks e0 .. e0 + F->rows - 1 at X into F (rows x n): nnft_ens_run with a
 * consumer that copies (one thread per chunk, `threads` as for nnft_ens_threads). */
nnft_status nnft_ens_outputs(const nnft_arch *a, const nnft_mat *X, uint64_t seed, size_t e0,
                             size_t chunk, int threads, nnft_mat *F);

/* Correlators of networks 0 .. E-1 (E and the bags as acc was made for, n = X->rows) into the
 * empty accumulator acc: the sampler with chunks of whole blocks (nnft_corr_acc_chunks) and one
 * nnft_corr_part per thread, merged in order. Results depend on (arch, X, seed, E, bags) only.
 * NNFT_EDOM if acc is not empty or its n differs from X->rows. */
nnft_status nnft_ens_correlators(const nnft_arch *a, const nnft_mat *X, uint64_t seed,
                                 size_t chunk, int threads, nnft_corr_acc *acc);

/* Histograms of the outputs of networks 0 .. E-1 at the inputs X into h (h->ncols = X->rows;
 * h set up by nnft_corr_hist_alloc, counts added to what it holds). Per-thread histograms,
 * merged at the end (integer counts: thread-independent). */
nnft_status nnft_ens_histogram(const nnft_arch *a, const nnft_mat *X, uint64_t seed, size_t E,
                               size_t chunk, int threads, nnft_corr_hist *h);

/* lo[k], hi[k] = the smallest and largest output at input k over networks 0 .. E-1 (NaN outputs
 * ignored; NaN if all are). */
nnft_status nnft_ens_range(const nnft_arch *a, const nnft_mat *X, uint64_t seed, size_t E,
                           size_t chunk, int threads, double *lo, double *hi);

/* The parameters of network e of seed `seed` as they are drawn (see the contract above), in the
 * flat layout of nnft_arch_offsets (each layer's W column-major, then its bias): for the
 * standard parameterisation the weights as used, for NTK the raw N(mean_w, 1) weights that the
 * forward pass scales by σ_w/sqrt(fan_in). Cos-net phases are layer 1's bias; the amplitude
 * A(b) is not a parameter and is not applied. theta has room for nnft_arch_nparams values.
 * Lets a single network of an ensemble be rebuilt and trained. O(P). */
nnft_status nnft_ens_params(const nnft_arch *a, uint64_t seed, size_t e, double *theta);

#endif
