#include "nnft_arch.h"

#include <math.h>
#include <string.h>

static const char *const act_names[NNFT_ACT_COUNT] = {
    "linear", "relu", "step", "erf", "tanh", "sigmoid", "gelu",
    "softplus", "sin", "cos", "exp", "gauss-net", "custom"};

const char *nnft_act_name(nnft_act a) {
  return (unsigned)a < NNFT_ACT_COUNT ? act_names[a] : "?";
}

int nnft_act_lookup(const char *name) {
  for (int k = 0; k < NNFT_ACT_COUNT; k++)
    if (strcmp(name, act_names[k]) == 0) return k;
  if (strcmp(name, "gaussnet") == 0 || strcmp(name, "gauss") == 0) return NNFT_ACT_GAUSSNET;
  if (strcmp(name, "identity") == 0) return NNFT_ACT_LINEAR;
  return -1;
}

double nnft_act_eval(nnft_act a, double z) {
  switch (a) {
  case NNFT_ACT_LINEAR: return z;
  case NNFT_ACT_RELU: return z > 0 ? z : 0.0;
  case NNFT_ACT_STEP: return z > 0 ? 1.0 : 0.0;
  case NNFT_ACT_ERF: return erf(z);
  case NNFT_ACT_TANH: return tanh(z);
  case NNFT_ACT_SIGMOID: return z >= 0 ? 1.0 / (1.0 + exp(-z)) : exp(z) / (1.0 + exp(z));
  case NNFT_ACT_GELU: return 0.5 * z * erfc(-z / M_SQRT2);
  case NNFT_ACT_SOFTPLUS: return z > 30 ? z + log1p(exp(-z)) : log1p(exp(z));
  case NNFT_ACT_SIN: return sin(z);
  case NNFT_ACT_COS: return cos(z);
  case NNFT_ACT_EXP:
  case NNFT_ACT_GAUSSNET: return exp(z); /* gauss-net: times the input normalisation */
  case NNFT_ACT_CUSTOM:
  case NNFT_ACT_COUNT: break;
  }
  return NAN;
}

double nnft_act_deriv(nnft_act a, double z) {
  switch (a) {
  case NNFT_ACT_LINEAR: return 1.0;
  case NNFT_ACT_RELU: return z > 0 ? 1.0 : 0.0;
  case NNFT_ACT_STEP: return 0.0;
  case NNFT_ACT_ERF: return M_2_SQRTPI * exp(-z * z);
  case NNFT_ACT_TANH: {
    double t = tanh(z);
    return 1.0 - t * t;
  }
  case NNFT_ACT_SIGMOID: {
    double s = nnft_act_eval(NNFT_ACT_SIGMOID, z);
    return s * (1.0 - s);
  }
  case NNFT_ACT_GELU: /* Φ(z) + z φ(z) */
    return 0.5 * erfc(-z / M_SQRT2) + z * exp(-0.5 * z * z) / sqrt(2.0 * M_PI);
  case NNFT_ACT_SOFTPLUS: return nnft_act_eval(NNFT_ACT_SIGMOID, z);
  case NNFT_ACT_SIN: return cos(z);
  case NNFT_ACT_COS: return -sin(z);
  case NNFT_ACT_EXP:
  case NNFT_ACT_GAUSSNET: return exp(z);
  case NNFT_ACT_CUSTOM:
  case NNFT_ACT_COUNT: break;
  }
  return NAN;
}

static int finite_nonneg(double v) { return isfinite(v) && v >= 0.0; }

nnft_status nnft_arch_check(const nnft_arch *a) {
  if (a->d_in == 0 || a->nlayers < 1 || a->nlayers > NNFT_MAX_LAYERS) return NNFT_EDOM;
  if (a->param != NNFT_PARAM_STANDARD && a->param != NNFT_PARAM_NTK) return NNFT_EDOM;
  size_t fan = a->d_in;
  for (size_t l = 0; l < a->nlayers; l++) {
    const nnft_layer *ly = &a->layer[l];
    if (ly->fan_in != fan || ly->fan_out == 0) return NNFT_EDIM;
    if (!finite_nonneg(ly->sigma_w) || !finite_nonneg(ly->sigma_b)) return NNFT_EDOM;
    if (!isfinite(ly->mean_w) || !isfinite(ly->mean_b)) return NNFT_EDOM;
    int hidden = l + 1 < a->nlayers;
    if (hidden) {
      if ((unsigned)ly->act >= NNFT_ACT_COUNT) return NNFT_EDOM;
      if (ly->act == NNFT_ACT_GAUSSNET && !(l == 0 && a->nlayers == 2)) return NNFT_EDOM;
      if (ly->act == NNFT_ACT_CUSTOM && !a->custom.eval) return NNFT_EDOM;
    }
    fan = ly->fan_out;
  }
  if (fan != 1) return NNFT_EDIM;
  if (a->is_cosnet) {
    if (a->nlayers != 2 || a->layer[0].act != NNFT_ACT_COS) return NNFT_EDOM;
    if (a->freq != NNFT_FREQ_GAUSSIAN && a->freq != NNFT_FREQ_BALL) return NNFT_EDOM;
    if (a->freq == NNFT_FREQ_BALL && !(isfinite(a->radius) && a->radius > 0)) return NNFT_EDOM;
    if (a->amplitude && !(finite_nonneg(a->mass) && (a->mass > 0 || a->freq == NNFT_FREQ_BALL)))
      return NNFT_EDOM;
    if (a->amplitude && !(a->layer[1].sigma_w > 0)) return NNFT_EDOM;
    /* E[A(b)²] ∝ ∫_{B_R} d^d b /(|b|² + m²) diverges at b = 0 for m = 0 in d <= 2 */
    if (a->amplitude && a->mass == 0.0 && a->d_in <= 2) return NNFT_EDOM;
    if (a->amplitude) { /* C² must be a number: vol(B_R) and (2π)^d overflow for large d */
      double c2 = nnft_arch_cos_c2(a);
      if (!(isfinite(c2) && c2 > 0)) return NNFT_EDOM;
    }
  }
  return NNFT_OK;
}

nnft_status nnft_arch_nparams(const nnft_arch *a, size_t *p) {
  size_t total = 0, w;
  nnft_status s;
  for (size_t l = 0; l < a->nlayers; l++) {
    const nnft_layer *ly = &a->layer[l];
    if ((s = nnft_size_mul(ly->fan_out, ly->fan_in, &w))) return s;
    if ((s = nnft_size_add(total, w, &total))) return s;
    if (ly->has_bias && (s = nnft_size_add(total, ly->fan_out, &total))) return s;
  }
  *p = total;
  return NNFT_OK;
}

void nnft_arch_offsets(const nnft_arch *a, size_t *w_off, size_t *b_off) {
  size_t off = 0;
  for (size_t l = 0; l < a->nlayers; l++) {
    const nnft_layer *ly = &a->layer[l];
    w_off[l] = off;
    off += ly->fan_out * ly->fan_in;
    b_off[l] = off;
    if (ly->has_bias) off += ly->fan_out;
  }
}

/* Volume of the d-ball of radius R: π^{d/2} R^d / Γ(d/2 + 1). */
static double ball_volume(size_t d, double R) {
  return pow(M_PI, 0.5 * (double)d) * pow(R, (double)d) / tgamma(0.5 * (double)d + 1.0);
}

double nnft_arch_cos_c2(const nnft_arch *a) {
  double sa = a->layer[1].sigma_w;
  return 2.0 * ball_volume(a->d_in, a->radius) / (sa * sa * pow(2.0 * M_PI, (double)a->d_in));
}
