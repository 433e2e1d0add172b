/* nnft_net: one finite network of an nnft_arch (physics.md §1): its parameters in one flat vector,
 * forward passes on a batch of inputs with BLAS, per-example gradients and the Jacobian by
 * backpropagation, the gradient of the mean squared error, and training (GD, SGD, Adam).
 *
 * Parameters. θ holds every parameter, layer by layer, W^l (fan_out x fan_in, column-major) then
 * b^l, at the offsets of nnft_arch_offsets. The parameters of the non-frozen layers, in the same
 * order, form the trainable vector (length P_train): gradients, Jacobian columns and training
 * updates refer to it; frozen layers are excluded from all three.
 *
 * Parameterisation. Layer l computes z = ws_l W^l h + bs_l b^l with
 *   standard: ws_l = 1, bs_l = 1 (parameters used as drawn: W ~ N(mean_w, σ_w²/fan_in),
 *             b ~ N(mean_b, σ_b²));
 *   NTK:      ws_l = σ_w/sqrt(fan_in), bs_l = σ_b, W ~ N(mean_w, 1), b ~ N(mean_b, 1)
 *             (Jacot et al.: the NTK recursion of physics.md §2.1 with Θ^1 = K^1 is the NTK of
 *             this parameterisation). Gradients are with respect to the stored W, b.
 * A standard-parameterised net and an NTK net compute the same function when
 * θ_std = (ws, bs) ⊙ θ_ntk (nnft_net_scales gives the factors).
 *
 * Cos-nets (arch.is_cosnet, physics.md §1.3): layer 1 holds the frequencies b_i (rows of W^1)
 * and the phases c_i (its bias), drawn uniform in [-π, π); frequencies are drawn N(0, σ_w²/d)
 * (NNFT_FREQ_GAUSSIAN, scaled like any layer) or uniform in the ball of radius R
 * (NNFT_FREQ_BALL: used as drawn in both parameterisations, ws_1 = 1); phases are always used as
 * drawn (bs_1 = 1). With arch.amplitude the readout weight of neuron i is multiplied by
 * A(b_i) = C / sqrt(|b_i|² + m²), C² = nnft_arch_cos_c2, and gradients with respect to the
 * frequencies include the derivative of A.
 *
 * Gauss-net (NNFT_ACT_GAUSSNET, layer 1 only): σ(z; x) = exp(z − σ_b² − σ_w² |x|²/d) with the
 * σ's of layer 1 (physics.md §1.2); its z-derivative is itself.
 *
 * Custom activations (NNFT_ACT_CUSTOM) call arch.custom.eval (and .deriv, or a central
 * difference with step 6e-6 max(1, |z|) when it is NULL) once per element: single-threaded.
 *
 * Loss. Every loss reported is the mean squared error MSE = (1/n) Σ_a (f(x_a) − y_a)² (no ½);
 * a step on a batch B minimises (1/|B|) Σ_{a∈B} (f(x_a) − y_a)², so per-sample SGD (batch 1)
 * descends (f − y)² as in physics.md §7.5, with gradient 2 (f − y) ∇f.
 *
 * Inputs X are n x d_in matrices (rows are points, any leading dimension). Large batches are
 * processed NNFT_NET_BLOCK rows at a time, so workspace memory is bounded by the block size times
 * the total width, not by n. Results are deterministic; they do not depend on thread counts. */
#ifndef NNFT_NET_H
#define NNFT_NET_H

#include <stddef.h>

#include "nnft_arch.h"
#include "nnft_mat.h"
#include "nnft_rng.h"
#include "nnft_status.h"

#define NNFT_NET_BLOCK 256 /* rows per forward/backward block */

typedef struct nnft_net {
  nnft_arch arch;                       /* a copy of the specification */
  size_t nparams;                       /* P */
  size_t ntrain;                        /* P_train: parameters of non-frozen layers */
  size_t w_off[NNFT_MAX_LAYERS];        /* offsets of W^l and b^l in θ */
  size_t b_off[NNFT_MAX_LAYERS];
  size_t t_off[NNFT_MAX_LAYERS];        /* offset of layer l's W^l in the trainable vector
                                           (its b^l follows W^l); unused for frozen layers */
  double wscale[NNFT_MAX_LAYERS];       /* ws_l, bs_l of the header comment */
  double bscale[NNFT_MAX_LAYERS];
  size_t first_train;                   /* lowest non-frozen layer (nlayers if all frozen) */
  double *theta;                        /* P parameters, owned (nnft_alloc) */
} nnft_net;

/* Set up *net for architecture a (checked with nnft_arch_check): offsets, scales, and θ
 * allocated and zero-filled. *net owns θ afterwards (release with nnft_net_free); on failure
 * *net holds nothing to free. NNFT_EDOM/NNFT_EDIM for a bad architecture, NNFT_EOVERFLOW,
 * NNFT_ENOMEM. O(P). */
nnft_status nnft_net_setup(const nnft_arch *a, nnft_net *net);
/* Release θ; NULL and a never set-up (zeroed) net are fine. */
void nnft_net_free(nnft_net *net);
/* dst = a deep copy of src (dst set up afresh; release with nnft_net_free). */
nnft_status nnft_net_copy(const nnft_net *src, nnft_net *dst);

/* Draw θ from the initialisation distribution of the spec (header comment), from r: layer by
 * layer, W^l column by column then b^l (ball frequencies: one point per neuron, nnft_rng_ball;
 * phases: nnft_rng_fill_phases). O(P). */
nnft_status nnft_net_init(nnft_net *net, nnft_rng *r);

/* Per-parameter multipliers (ws_l for W^l, bs_l for b^l; length P): the effective parameter is
 * scale ⊙ θ. Prior mean and standard deviation of each stored parameter (length P each; either may
 * be NULL): what nnft_net_init draws from (ball frequencies and phases: mean 0 and the sd of
 * the uniform law). */
void nnft_net_scales(const nnft_net *net, double *scale);
void nnft_net_prior(const nnft_net *net, double *mean, double *sd);

/* Gather the trainable parameters into v (length P_train), or scatter v back into θ. */
void nnft_net_get_trainable(const nnft_net *net, double *v);
void nnft_net_set_trainable(nnft_net *net, const double *v);
/* idx[k] = position in θ (0-based) of trainable parameter k, k < P_train. */
void nnft_net_trainable_index(const nnft_net *net, size_t *idx);

/* f = net(X): f is n x 1 (any view). NNFT_EDIM on shape mismatch. O(n P). */
nnft_status nnft_net_forward(const nnft_net *net, const nnft_mat *X, nnft_mat *f);

/* Frozen-prefix features: H = the input of the first trainable layer k at the rows of X
 * (n x fan_in of layer k; X itself when k = 0), so that everything downstream — forward, loss,
 * training — can run on the trainable suffix (nnft_net_suffix) without recomputing the frozen
 * layers. NNFT_EDOM for an amplitude cos-net with a frozen prefix (its readout also depends on
 * the frozen frequencies), NNFT_EDIM on shape mismatch. O(n P_frozen). */
nnft_status nnft_net_features(const nnft_net *net, const nnft_mat *X, nnft_mat *H);
/* sub = the network of layers k .. L-1 (k = the first trainable layer), a view sharing net's
 * parameters (owns nothing; valid while net lives and is not reshaped). NNFT_EDOM as above. */
nnft_status nnft_net_suffix(const nnft_net *net, nnft_net *sub);

/* The Jacobian J_{a,k} = ∂f(x_a)/∂θ_k over the trainable parameters (J is n x P_train), and
 * optionally f (n x 1, or NULL). O(n P). */
nnft_status nnft_net_jacobian(const nnft_net *net, const nnft_mat *X, nnft_mat *J, nnft_mat *f);

/* MSE = (1/n) Σ_a (f(x_a) − y_a)² (loss may be NULL) and its gradient over the trainable
 * parameters, grad = (2/n) Σ_a (f(x_a) − y_a) ∇f(x_a) (length P_train, may be NULL), without
 * forming J. y is n x 1. n = 0 is NNFT_EDOM. O(n P). */
nnft_status nnft_net_loss_grad(const nnft_net *net, const nnft_mat *X, const nnft_mat *y,
                               double *loss, double *grad);

typedef enum { NNFT_OPT_GD, NNFT_OPT_SGD, NNFT_OPT_ADAM } nnft_optimizer;

typedef struct nnft_train_opts {
  nnft_optimizer optimizer;
  double lr;              /* learning rate, > 0 and finite */
  size_t epochs;          /* passes over the data (0 is fine: nothing changes) */
  size_t batch;           /* rows per step; 0: n for gd and adam, 1 for sgd. gd requires n */
  int shuffle;            /* 0: batches in data order; 1: a fresh permutation from rng per epoch */
  double beta1, beta2, eps; /* Adam (Kingma & Ba 2015); 0.9, 0.999, 1e-8 are usual */
  size_t record;          /* record the training MSE every `record` epochs (>= 1) */
} nnft_train_opts;

/* Number of history entries nnft_net_train writes: the MSE before training, after every
 * record-th epoch, and after the last epoch if that is not a multiple of record. */
size_t nnft_train_nrecords(size_t epochs, size_t record);
/* Epoch number of history entry k (0 for the initial loss). */
size_t nnft_train_record_epoch(size_t epochs, size_t record, size_t k);

/* Train the trainable parameters of net on (X, y) by minimising the MSE (header comment):
 * each epoch visits the rows once in batches of o->batch rows (the last batch may be shorter),
 * each batch making one step: gd/sgd θ -= lr g; adam with bias-corrected moments. rng (needed only
 * when o->shuffle) supplies one permutation per epoch (nnft_rng_permutation). history (length
 * nnft_train_nrecords, may be NULL) receives the training MSE at the recorded epochs;
 * *epochs_done (may be NULL) the number of completed epochs.
 * Polls the interrupt flag once per epoch and every 4096 steps: NNFT_EINTR leaves the
 * parameters of the last completed epoch. If a parameter becomes NaN or Inf during an epoch
 * (divergence: the learning rate is too large), θ is restored to the start of that epoch and
 * NNFT_ENONFINITE is returned. NNFT_EDOM for bad options, NNFT_EDIM for shapes.
 * When layers 1 .. k are frozen (k >= 1, not an amplitude cos-net), their output on X is
 * computed once and the remaining layers are trained on it (n x fan_out of layer k doubles, up
 * to 2^23 of them; beyond that every step runs the whole network): the same steps, much cheaper
 * for a trained readout on frozen features (physics.md §7.5). O(epochs n P_suffix + n P). */
nnft_status nnft_net_train(nnft_net *net, const nnft_mat *X, const nnft_mat *y,
                           const nnft_train_opts *o, nnft_rng *rng, double *history,
                           size_t *epochs_done);

/* Train count networks independently with the same options and data (an ensemble trained from
 * its initialisation, e.g. physics.md §7.5): member i (0-based) draws its shuffles from
 * substream i of root (nnft_rng_substream), so it gets exactly what nnft_net_train gives with
 * that substream. Members run in parallel on `threads` OpenMP threads (<= 0: the OpenMP default;
 * 1 whenever a member has a custom activation); results are bit-identical for any thread count.
 * Per member i (each array may be NULL): history + i * nnft_train_nrecords(...) receives its
 * records, status[i] its nnft_net_train status, epochs_done[i] its completed epochs. A member
 * that diverges (NNFT_ENONFINITE) does not stop the others. Returns NNFT_OK when every member
 * trained; otherwise the status of the first member (by index) that did not, preferring
 * NNFT_EINTR (an interrupt stops every member at its next epoch) and errors other than
 * NNFT_ENONFINITE. O(count epochs n P / threads). */
nnft_status nnft_net_train_many(nnft_net *const *nets, size_t count, const nnft_mat *X,
                                const nnft_mat *y, const nnft_train_opts *o,
                                const nnft_rng *root, int threads, double *history,
                                nnft_status *status, size_t *epochs_done);

/* Per-layer Jacobian signals (physics.md §7.1; used by nnft_fisher). For every block of at most
 * NNFT_NET_BLOCK rows of X (rows r0 .. r0+nb-1) and every non-frozen layer l, from the output
 * down, calls fn(ctx, l, r0, H, D, hscale) with H (nb x fan_in) the layer's input (the rows of X
 * for l = 0, else σ(z^{l-1})) and D (nb x fan_out) the backward signal δ_ai = ∂f(x_a)/∂z^l_i, so
 * that the Jacobian columns of layer l are
 *   ∂f(x_a)/∂W^l_ij = ws_l D_ai H_aj hscale_j,   ∂f(x_a)/∂b^l_i = bs_l D_ai
 * with hscale NULL (read as 1) except for the readout of an amplitude cos-net (hscale_j = A(b_j)).
 * H and D are workspace views valid during the call only. A non-OK status from fn stops the
 * pass and is returned. NNFT_EDOM for an amplitude cos-net with trainable frequencies (their
 * Jacobian has an extra term: use nnft_net_jacobian), NNFT_EDIM on shape mismatch, NNFT_EINTR
 * between blocks. O(n P). */
typedef nnft_status (*nnft_net_signal_fn)(void *ctx, size_t l, size_t r0, const nnft_mat *H,
                                          const nnft_mat *D, const double *hscale);
nnft_status nnft_net_signals(const nnft_net *net, const nnft_mat *X, nnft_net_signal_fn fn,
                             void *ctx);

#endif
