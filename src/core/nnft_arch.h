/* nnft_arch: one architecture specification feeding every path of DESIGN.md §2 — the finite
 * network (nnft_net), the ensemble sampler (nnft_ensemble), the infinite-width kernel and the
 * Fisher metric — so that they can never disagree about conventions. Physics: physics.md §1.
 *
 * A fully connected network with L hidden layers (physics.md §1.1):
 *   z^1(x)     = b^1 + W^1 x                 (layer 1: fan_in = d_in)
 *   z^{l+1}(x) = b^{l+1} + W^{l+1} σ_l(z^l)  (σ_l = the activation of hidden layer l)
 *   f(x)       = z^{L+1}(x)                  (the output layer has no activation)
 * Standard parameterisation: W^l_ij ~ N(mean_w, σ_w²/fan_in), b ~ N(mean_b, σ_b²), used as drawn.
 * NTK parameterisation: W^l_ij ~ N(mean_w, 1), and the layer multiplies by σ_w/sqrt(fan_in)
 * (same function distribution for zero means; different gradients and Fisher metric).
 *
 * The cos-nets of physics.md §1.3 are one-hidden-layer networks of this shape with special
 * first-layer distributions: φ(x) = Σ_i a_i A(b_i) cos(b_i·x + c_i), so layer 1 holds the
 * frequencies b (weights) and phases c (biases, uniform on [-π, π)), the hidden activation is cos,
 * and layer 2 holds the readout a ~ N(0, σ_a²/N) (σ_w of layer 2 is σ_a), multiplied by A(b_i). */
#ifndef NNFT_ARCH_H
#define NNFT_ARCH_H

#include <stddef.h>

#include "nnft_status.h"

#define NNFT_MAX_LAYERS 64

typedef enum {
  NNFT_ACT_LINEAR,   /* σ(z) = z */
  NNFT_ACT_RELU,     /* max(0, z) */
  NNFT_ACT_STEP,     /* Θ(z): 1 for z > 0, else 0 */
  NNFT_ACT_ERF,      /* erf(z) */
  NNFT_ACT_TANH,     /* tanh(z) */
  NNFT_ACT_SIGMOID,  /* 1/(1 + e^{-z}) */
  NNFT_ACT_GELU,     /* z Φ(z) (exact, with the normal CDF) */
  NNFT_ACT_SOFTPLUS, /* log(1 + e^z) */
  NNFT_ACT_SIN,      /* sin(z) */
  NNFT_ACT_COS,      /* cos(z) */
  NNFT_ACT_EXP,      /* exp(z) */
  NNFT_ACT_GAUSSNET, /* exp(z) / sqrt(exp[2(σ_b² + σ_w² |x|²/d)]), input-normalised (§1.2); layer 1
                        only, with σ_w, σ_b those of layer 1 */
  NNFT_ACT_CUSTOM,   /* user callback (nnft_arch.custom); forces single-threaded evaluation */
  NNFT_ACT_COUNT
} nnft_act;

/* Name ("relu", "gauss-net", ...) and reverse lookup (-1 if unknown). */
const char *nnft_act_name(nnft_act a);
int nnft_act_lookup(const char *name);

/* Scalar activation and its derivative (not for GAUSSNET or CUSTOM: see nnft_arch_act_apply). */
double nnft_act_eval(nnft_act a, double z);
double nnft_act_deriv(nnft_act a, double z);

typedef enum { NNFT_PARAM_STANDARD, NNFT_PARAM_NTK } nnft_param;

typedef enum {
  NNFT_FREQ_GAUSSIAN, /* layer-1 weights as any layer (plain cos-net: b ~ N(0, σ_w²/d)) */
  NNFT_FREQ_BALL      /* b uniform in the d-ball of radius R (generalised cos-net) */
} nnft_freq;

typedef struct nnft_layer {
  size_t fan_in, fan_out; /* W is fan_out x fan_in */
  nnft_act act;           /* activation applied to this layer's output (hidden layers only) */
  double sigma_w, sigma_b;
  double mean_w, mean_b;
  int has_bias;
  int frozen;             /* excluded from training, gradients, Jacobians and Fisher metrics */
} nnft_layer;

/* User-supplied activation (the Lua escape hatch): value and derivative at z. */
typedef struct nnft_custom_act {
  double (*eval)(void *ctx, double z);
  double (*deriv)(void *ctx, double z); /* may be NULL: central finite difference then */
  void *ctx;
} nnft_custom_act;

typedef struct nnft_arch {
  size_t d_in;
  size_t nlayers;                   /* hidden layers + 1 output layer; 1 <= nlayers <= MAX */
  nnft_layer layer[NNFT_MAX_LAYERS];
  nnft_param param;
  /* cos-net extras (is_cosnet = 1): layer 1 = frequencies and phases, act cos */
  int is_cosnet;
  nnft_freq freq;
  double radius;                    /* R of NNFT_FREQ_BALL */
  double mass;                      /* m of the amplitude A(b) = C / sqrt(|b|² + m²) */
  int amplitude;                    /* 1: multiply readout by A(b_i) (generalised cos-net) */
  nnft_custom_act custom;
} nnft_arch;

/* Check an architecture: sizes > 0 and chained (layer l+1's fan_in = layer l's fan_out,
 * layer 1's fan_in = d_in, last fan_out = 1), σ's finite and >= 0, gauss-net only in layer 1 of
 * a one-hidden-layer net, cos-net parameters valid (with an amplitude: C² of nnft_arch_cos_c2
 * finite and > 0 in double precision), custom callback present when used.
 * NNFT_EDOM / NNFT_EDIM otherwise. */
nnft_status nnft_arch_check(const nnft_arch *a);

/* Number of trainable-or-not parameters P (weights then bias, layer by layer), checked. */
nnft_status nnft_arch_nparams(const nnft_arch *a, size_t *p);

/* Offsets into the flat parameter vector: layer l's W (column-major, fan_out x fan_in) starts at
 * w_off[l], its bias at b_off[l] (absent if !has_bias). */
void nnft_arch_offsets(const nnft_arch *a, size_t *w_off, size_t *b_off);

/* The cos-net amplitude normalisation C² = 2 vol(B_R) / (σ_a² (2π)^d) (physics.md §1.3). */
double nnft_arch_cos_c2(const nnft_arch *a);

#endif
