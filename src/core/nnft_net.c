/* nnft_net: finite networks, backpropagation and training (see nnft_net.h). */
#include "nnft_net.h"

#include <math.h>
#include <string.h>

#include "nnft_alloc.h"

#ifdef _OPENMP
#include <omp.h>
#endif

/* ---------------------------------------------------------------------------------------------
 * Set-up */

static int layer_frozen(const nnft_net *net, size_t l) { return net->arch.layer[l].frozen; }

static size_t layer_count(const nnft_layer *ly) {
  return ly->fan_out * ly->fan_in + (ly->has_bias ? ly->fan_out : 0);
}

nnft_status nnft_net_setup(const nnft_arch *a, nnft_net *net) {
  nnft_status s = nnft_arch_check(a);
  if (s) return s;
  size_t P, bytes;
  if ((s = nnft_arch_nparams(a, &P))) return s;
  if ((s = nnft_size_mul(P, sizeof(double), &bytes))) return s;
  nnft_net tmp;
  memset(&tmp, 0, sizeof tmp);
  tmp.arch = *a;
  tmp.nparams = P;
  nnft_arch_offsets(a, tmp.w_off, tmp.b_off);
  size_t t = 0;
  tmp.first_train = a->nlayers;
  for (size_t l = 0; l < a->nlayers; l++) {
    const nnft_layer *ly = &a->layer[l];
    tmp.t_off[l] = t;
    if (!ly->frozen) {
      t += layer_count(ly); /* no overflow: bounded by P */
      if (tmp.first_train == a->nlayers) tmp.first_train = l;
    }
    int ntk = a->param == NNFT_PARAM_NTK;
    tmp.wscale[l] = ntk ? ly->sigma_w / sqrt((double)ly->fan_in) : 1.0;
    tmp.bscale[l] = ntk ? ly->sigma_b : 1.0;
    if (a->is_cosnet && l == 0) {
      if (a->freq == NNFT_FREQ_BALL) tmp.wscale[0] = 1.0;
      tmp.bscale[0] = 1.0; /* phases */
    }
  }
  tmp.ntrain = t;
  tmp.theta = nnft_alloc(bytes);
  if (!tmp.theta) return NNFT_ENOMEM;
  memset(tmp.theta, 0, bytes);
  *net = tmp;
  return NNFT_OK;
}

void nnft_net_free(nnft_net *net) {
  if (!net) return;
  nnft_free(net->theta);
  net->theta = NULL;
}

nnft_status nnft_net_copy(const nnft_net *src, nnft_net *dst) {
  nnft_net tmp;
  nnft_status s = nnft_net_setup(&src->arch, &tmp);
  if (s) return s;
  memcpy(tmp.theta, src->theta, src->nparams * sizeof(double));
  *dst = tmp;
  return NNFT_OK;
}

/* ---------------------------------------------------------------------------------------------
 * Initialisation and parameter maps */

static int is_ball_layer(const nnft_net *net, size_t l) {
  return net->arch.is_cosnet && l == 0 && net->arch.freq == NNFT_FREQ_BALL;
}
static int is_phase_layer(const nnft_net *net, size_t l) {
  return net->arch.is_cosnet && l == 0;
}

/* Standard deviation of the stored weights / biases of layer l. */
static double w_sd(const nnft_net *net, size_t l) {
  const nnft_layer *ly = &net->arch.layer[l];
  return net->arch.param == NNFT_PARAM_NTK ? 1.0 : ly->sigma_w / sqrt((double)ly->fan_in);
}
static double b_sd(const nnft_net *net, size_t l) {
  return net->arch.param == NNFT_PARAM_NTK ? 1.0 : net->arch.layer[l].sigma_b;
}

nnft_status nnft_net_init(nnft_net *net, nnft_rng *r) {
  const nnft_arch *a = &net->arch;
  nnft_status s;
  for (size_t l = 0; l < a->nlayers; l++) {
    const nnft_layer *ly = &a->layer[l];
    double *W = net->theta + net->w_off[l];
    size_t nw = ly->fan_out * ly->fan_in;
    if (is_ball_layer(net, l)) {
      nnft_mat m = {ly->fan_out, ly->fan_in, ly->fan_out, W, 0};
      if ((s = nnft_rng_ball(r, a->radius, &m))) return s;
    } else if ((s = nnft_rng_fill_normal(r, W, nw, ly->mean_w, w_sd(net, l)))) {
      return s;
    }
    if (ly->has_bias) {
      double *b = net->theta + net->b_off[l];
      if (is_phase_layer(net, l))
        s = nnft_rng_fill_phases(r, b, ly->fan_out);
      else
        s = nnft_rng_fill_normal(r, b, ly->fan_out, ly->mean_b, b_sd(net, l));
      if (s) return s;
    }
  }
  return NNFT_OK;
}

void nnft_net_scales(const nnft_net *net, double *scale) {
  for (size_t l = 0; l < net->arch.nlayers; l++) {
    const nnft_layer *ly = &net->arch.layer[l];
    size_t nw = ly->fan_out * ly->fan_in;
    for (size_t k = 0; k < nw; k++) scale[net->w_off[l] + k] = net->wscale[l];
    if (ly->has_bias)
      for (size_t k = 0; k < ly->fan_out; k++) scale[net->b_off[l] + k] = net->bscale[l];
  }
}

void nnft_net_prior(const nnft_net *net, double *mean, double *sd) {
  for (size_t l = 0; l < net->arch.nlayers; l++) {
    const nnft_layer *ly = &net->arch.layer[l];
    size_t nw = ly->fan_out * ly->fan_in;
    double mw = ly->mean_w, sw = w_sd(net, l), mb = ly->mean_b, sb = b_sd(net, l);
    if (is_ball_layer(net, l)) { /* E b_j² = R²/(d + 2) for b uniform in the d-ball */
      mw = 0.0;
      sw = net->arch.radius / sqrt((double)ly->fan_in + 2.0);
    }
    if (is_phase_layer(net, l)) { /* uniform on [-π, π) */
      mb = 0.0;
      sb = M_PI / sqrt(3.0);
    }
    for (size_t k = 0; k < nw; k++) {
      if (mean) mean[net->w_off[l] + k] = mw;
      if (sd) sd[net->w_off[l] + k] = sw;
    }
    if (ly->has_bias)
      for (size_t k = 0; k < ly->fan_out; k++) {
        if (mean) mean[net->b_off[l] + k] = mb;
        if (sd) sd[net->b_off[l] + k] = sb;
      }
  }
}

void nnft_net_get_trainable(const nnft_net *net, double *v) {
  for (size_t l = 0; l < net->arch.nlayers; l++)
    if (!layer_frozen(net, l))
      memcpy(v + net->t_off[l], net->theta + net->w_off[l],
             layer_count(&net->arch.layer[l]) * sizeof(double));
}

void nnft_net_set_trainable(nnft_net *net, const double *v) {
  for (size_t l = 0; l < net->arch.nlayers; l++)
    if (!layer_frozen(net, l))
      memcpy(net->theta + net->w_off[l], v + net->t_off[l],
             layer_count(&net->arch.layer[l]) * sizeof(double));
}

void nnft_net_trainable_index(const nnft_net *net, size_t *idx) {
  for (size_t l = 0; l < net->arch.nlayers; l++)
    if (!layer_frozen(net, l)) {
      size_t c = layer_count(&net->arch.layer[l]);
      for (size_t k = 0; k < c; k++) idx[net->t_off[l] + k] = net->w_off[l] + k;
    }
}

/* ---------------------------------------------------------------------------------------------
 * Workspace for one block of at most nmax rows.
 * Hidden layer l (l < nlayers - 1) keeps h[l] = σ(z^l) and, when derivatives are wanted,
 * d[l] = σ'(z^l) (both nmax x fan_out, ld nmax). out = f (nmax). delta[0..1]: backward signals
 * (nmax x max fan). Cos-net amplitude: amp (A_i), weff (effective readout weights ws W2_i A_i),
 * acoef (the factor of the frequency gradient). gnorm: gauss-net normalisation per row. */
typedef struct work {
  size_t nmax;
  double *block; /* the one allocation */
  double *h[NNFT_MAX_LAYERS], *d[NNFT_MAX_LAYERS];
  double *out, *dout, *delta[2], *amp, *weff, *acoef, *gnorm;
} work;

static nnft_status work_alloc(const nnft_net *net, size_t nmax, int derivs, work *w) {
  const nnft_arch *a = &net->arch;
  memset(w, 0, sizeof *w);
  if (nmax == 0) nmax = 1;
  w->nmax = nmax;
  size_t total = 0, maxfan = a->d_in, t;
  nnft_status s;
  size_t per_layer = derivs ? 2 : 1;
  for (size_t l = 0; l < a->nlayers; l++) {
    size_t fo = a->layer[l].fan_out;
    if (fo > maxfan) maxfan = fo;
    if (l + 1 < a->nlayers) {
      if ((s = nnft_size_mul(nmax, fo, &t))) return s;
      if ((s = nnft_size_mul(t, per_layer, &t))) return s;
      if ((s = nnft_size_add(total, t, &total))) return s;
    }
  }
  size_t nd;
  if ((s = nnft_size_mul(nmax, maxfan, &nd))) return s;
  if ((s = nnft_size_mul(nd, 2, &t))) return s;
  if ((s = nnft_size_add(total, t, &total))) return s;
  if ((s = nnft_size_mul(nmax, 3, &t))) return s; /* out, dout, gnorm */
  if ((s = nnft_size_add(total, t, &total))) return s;
  size_t ncos = a->is_cosnet && a->amplitude ? a->layer[0].fan_out : 0;
  if ((s = nnft_size_mul(ncos, 3, &t))) return s;
  if ((s = nnft_size_add(total, t, &total))) return s;
  if ((s = nnft_size_mul(total, sizeof(double), &t))) return s;
  w->block = nnft_alloc(t);
  if (!w->block) return NNFT_ENOMEM;
  double *p = w->block;
  for (size_t l = 0; l + 1 < a->nlayers; l++) {
    size_t fo = a->layer[l].fan_out;
    w->h[l] = p;
    p += nmax * fo;
    if (derivs) {
      w->d[l] = p;
      p += nmax * fo;
    }
  }
  w->delta[0] = p;
  p += nd;
  w->delta[1] = p;
  p += nd;
  w->out = p;
  p += nmax;
  w->gnorm = p;
  p += nmax;
  w->dout = p;
  p += nmax;
  if (ncos) {
    w->amp = p;
    w->weff = p + ncos;
    w->acoef = p + 2 * ncos;
  }
  return NNFT_OK;
}

static void work_free(work *w) {
  nnft_free(w->block);
  w->block = NULL;
}

/* Matrix header of W^l (fan_out x fan_in) inside θ. */
static nnft_mat weight_mat(const nnft_net *net, size_t l) {
  const nnft_layer *ly = &net->arch.layer[l];
  nnft_mat m = {ly->fan_out, ly->fan_in, ly->fan_out, net->theta + net->w_off[l], 0};
  return m;
}

/* Cos-net amplitude: A_i = C/sqrt(|b_i|² + m²) with b_i = ws_1 W^1_{i,:}; the effective readout
 * weights weff_i = ws_2 W^2_i A_i; and acoef_i = −weff_i ws_1 / (|b_i|² + m²), so that
 * ∂(weff_i)/∂W^1_ij = acoef_i b_ij. O(N d). */
static void cos_amplitude(const nnft_net *net, work *w) {
  const nnft_arch *a = &net->arch;
  size_t N = a->layer[0].fan_out, d = a->layer[0].fan_in;
  const double *W1 = net->theta + net->w_off[0], *W2 = net->theta + net->w_off[1];
  double C = sqrt(nnft_arch_cos_c2(a)), ws1 = net->wscale[0], ws2 = net->wscale[1];
  double m2 = a->mass * a->mass;
  for (size_t i = 0; i < N; i++) {
    double b2 = 0.0;
    for (size_t j = 0; j < d; j++) {
      double b = ws1 * W1[i + j * N];
      b2 += b * b;
    }
    double q = b2 + m2;
    w->amp[i] = C / sqrt(q);
    w->weff[i] = ws2 * W2[i] * w->amp[i];
    w->acoef[i] = -w->weff[i] * ws1 / q;
  }
}

/* Apply the activation of hidden layer l in place: z (nb x fo, ld nmax) -> h = σ(z), and
 * d = σ'(z) if d != NULL (computed from z before it is overwritten). */
static void activate(const nnft_net *net, size_t l, const work *w, size_t nb, double *z,
                     double *d) {
  const nnft_arch *a = &net->arch;
  size_t fo = a->layer[l].fan_out, ld = w->nmax;
  nnft_act act = a->layer[l].act;
  for (size_t i = 0; i < fo; i++) {
    double *restrict zc = z + i * ld;
    double *restrict dc = d ? d + i * ld : NULL;
    switch (act) {
    case NNFT_ACT_LINEAR:
      if (dc)
        for (size_t r = 0; r < nb; r++) dc[r] = 1.0;
      break;
    case NNFT_ACT_RELU:
      if (dc)
        for (size_t r = 0; r < nb; r++) dc[r] = zc[r] > 0 ? 1.0 : 0.0;
      for (size_t r = 0; r < nb; r++) zc[r] = zc[r] > 0 ? zc[r] : (zc[r] == zc[r] ? 0.0 : zc[r]);
      break;
    case NNFT_ACT_GAUSSNET:
      for (size_t r = 0; r < nb; r++) {
        zc[r] = exp(zc[r] - w->gnorm[r]);
        if (dc) dc[r] = zc[r];
      }
      break;
    case NNFT_ACT_EXP:
      for (size_t r = 0; r < nb; r++) {
        zc[r] = exp(zc[r]);
        if (dc) dc[r] = zc[r];
      }
      break;
    case NNFT_ACT_CUSTOM: {
      const nnft_custom_act *c = &a->custom;
      for (size_t r = 0; r < nb; r++) {
        double zz = zc[r];
        if (dc) {
          if (c->deriv) {
            dc[r] = c->deriv(c->ctx, zz);
          } else {
            double hstep = 6e-6 * (fabs(zz) > 1.0 ? fabs(zz) : 1.0);
            dc[r] = (c->eval(c->ctx, zz + hstep) - c->eval(c->ctx, zz - hstep)) / (2.0 * hstep);
          }
        }
        zc[r] = c->eval(c->ctx, zz);
      }
      break;
    }
    default:
      if (dc)
        for (size_t r = 0; r < nb; r++) dc[r] = nnft_act_deriv(act, zc[r]);
      for (size_t r = 0; r < nb; r++) zc[r] = nnft_act_eval(act, zc[r]);
      break;
    }
  }
}

/* Input of layer l for the block: X rows (a view) for l = 0, else h[l-1]. */
static nnft_mat layer_input(const nnft_net *net, const work *w, const nnft_mat *Xb, size_t l,
                            size_t nb) {
  if (l == 0) return *Xb;
  nnft_mat m = {nb, net->arch.layer[l - 1].fan_out, w->nmax, w->h[l - 1], 0};
  return m;
}

/* Forward pass on the block Xb (nb rows) through the first nl layers: fills h (and d when
 * derivs), and w->out = f when nl is every layer. */
static nnft_status forward_layers(const nnft_net *net, work *w, const nnft_mat *Xb, int derivs,
                                  size_t nl) {
  const nnft_arch *a = &net->arch;
  size_t nb = Xb->rows, L = a->nlayers;
  nnft_status s;
  if (a->layer[0].act == NNFT_ACT_GAUSSNET && L > 1) {
    double sw = a->layer[0].sigma_w, sb = a->layer[0].sigma_b, dd = (double)a->d_in;
    for (size_t r = 0; r < nb; r++) {
      double x2 = 0.0;
      for (size_t j = 0; j < a->d_in; j++) x2 += NNFT_AT(Xb, r, j) * NNFT_AT(Xb, r, j);
      w->gnorm[r] = sb * sb + sw * sw * x2 / dd;
    }
  }
  for (size_t l = 0; l < nl; l++) {
    const nnft_layer *ly = &a->layer[l];
    nnft_mat in = layer_input(net, w, Xb, l, nb);
    int last = l + 1 == L;
    nnft_mat z = {nb, ly->fan_out, w->nmax, last ? w->out : w->h[l], 0};
    if (last && a->is_cosnet && a->amplitude) {
      nnft_mat we = {1, ly->fan_in, 1, w->weff, 0};
      s = nnft_mat_gemm(1.0, &in, 0, &we, 1, 0.0, &z);
    } else {
      nnft_mat W = weight_mat(net, l);
      s = nnft_mat_gemm(net->wscale[l], &in, 0, &W, 1, 0.0, &z);
    }
    if (s) return s;
    if (ly->has_bias) {
      const double *b = net->theta + net->b_off[l];
      double bs = net->bscale[l];
      for (size_t i = 0; i < ly->fan_out; i++) {
        double bi = bs * b[i];
        double *zc = z.data + i * w->nmax;
        for (size_t r = 0; r < nb; r++) zc[r] += bi;
      }
    }
    if (!last) activate(net, l, w, nb, z.data, derivs ? w->d[l] : NULL);
  }
  return NNFT_OK;
}

static nnft_status forward_block(const nnft_net *net, work *w, const nnft_mat *Xb, int derivs) {
  return forward_layers(net, w, Xb, derivs, net->arch.nlayers);
}

/* Backward pass on the block after forward_block(derivs = 1), with output signal
 * delta_out[r] = ∂loss/∂f(x_r) (NULL: 1, for the Jacobian). For every non-frozen layer either writes
 * the Jacobian rows r0 .. r0+nb-1 (J != NULL) or accumulates the gradient into grad. */
static nnft_status backward_block(const nnft_net *net, work *w, const nnft_mat *Xb,
                                  const double *delta_out, nnft_mat *J, size_t r0, double *grad) {
  const nnft_arch *a = &net->arch;
  size_t nb = Xb->rows, L = a->nlayers, ld = w->nmax;
  nnft_status s;
  int cur = 0;
  if (delta_out)
    memcpy(w->delta[cur], delta_out, nb * sizeof(double));
  else
    for (size_t r = 0; r < nb; r++) w->delta[cur][r] = 1.0;
  int amp = a->is_cosnet && a->amplitude;
  for (size_t l = L; l-- > net->first_train;) {
    const nnft_layer *ly = &a->layer[l];
    size_t fo = ly->fan_out, fi = ly->fan_in;
    nnft_mat in = layer_input(net, w, Xb, l, nb);
    nnft_mat dl = {nb, fo, ld, w->delta[cur], 0};
    /* readout of an amplitude cos-net: ∂f/∂W2_i = ws2 A_i h_i */
    double ws = net->wscale[l], bs = net->bscale[l];
    int amp_readout = amp && l == 1;
    if (!ly->frozen) {
      size_t toff = net->t_off[l];
      if (J) {
        /* layer 0 of an amplitude cos-net: the amplitude term (written while visiting layer 1)
         * is already in J's frequency columns, so add to them */
        int add = amp && l == 0;
        for (size_t j = 0; j < fi; j++) {
          const double *restrict xin = in.data + j * in.ld;
          for (size_t i = 0; i < fo; i++) {
            double c = amp_readout ? ws * w->amp[j] : ws; /* j: the neuron */
            const double *restrict di = dl.data + i * ld;
            double *restrict jc = J->data + (toff + i + j * fo) * J->ld + r0;
            if (add)
              for (size_t r = 0; r < nb; r++) jc[r] += c * di[r] * xin[r];
            else
              for (size_t r = 0; r < nb; r++) jc[r] = c * di[r] * xin[r];
          }
        }
        if (ly->has_bias)
          for (size_t i = 0; i < fo; i++) {
            const double *restrict di = dl.data + i * ld;
            double *restrict jc = J->data + (toff + fo * fi + i) * J->ld + r0;
            for (size_t r = 0; r < nb; r++) jc[r] = bs * di[r];
          }
      } else {
        nnft_mat G = {fo, fi, fo, grad + toff, 0};
        if (amp_readout) { /* G_i = ws A_i Σ_r δ_r h_ri */
          for (size_t i = 0; i < fi; i++) {
            const double *hi = in.data + i * in.ld;
            double acc = 0.0;
            for (size_t r = 0; r < nb; r++) acc += dl.data[r] * hi[r];
            G.data[i] += ws * w->amp[i] * acc;
          }
        } else if ((s = nnft_mat_gemm(ws, &dl, 1, &in, 0, 1.0, &G))) {
          return s;
        }
        if (ly->has_bias)
          for (size_t i = 0; i < fo; i++) {
            const double *di = dl.data + i * ld;
            double acc = 0.0;
            for (size_t r = 0; r < nb; r++) acc += di[r];
            grad[toff + fo * fi + i] += bs * acc;
          }
      }
    }
    if (amp_readout && !a->layer[0].frozen) {
      /* frequency gradient through A(b_i): ∂f/∂W1_ij += δ_r h_ri acoef_i b_ij */
      size_t N = fi, d = a->d_in, toff0 = net->t_off[0];
      const double *W1 = net->theta + net->w_off[0];
      double ws1 = net->wscale[0];
      for (size_t i = 0; i < N; i++) {
        const double *hi = in.data + i * in.ld;
        for (size_t j = 0; j < d; j++) {
          double c = w->acoef[i] * ws1 * W1[i + j * N];
          if (J) {
            double *jc = J->data + (toff0 + i + j * N) * J->ld + r0;
            for (size_t r = 0; r < nb; r++) jc[r] = c * dl.data[r] * hi[r];
          } else {
            double acc = 0.0;
            for (size_t r = 0; r < nb; r++) acc += dl.data[r] * hi[r];
            grad[toff0 + i + j * N] += c * acc;
          }
        }
      }
    }
    if (l == net->first_train) break;
    /* δ^{l-1} = (δ^l W^l ws) ⊙ σ'(z^{l-1}) */
    nnft_mat dn = {nb, fi, ld, w->delta[1 - cur], 0};
    if (amp_readout) {
      nnft_mat we = {1, fi, 1, w->weff, 0};
      s = nnft_mat_gemm(1.0, &dl, 0, &we, 0, 0.0, &dn);
    } else {
      nnft_mat W = weight_mat(net, l);
      s = nnft_mat_gemm(ws, &dl, 0, &W, 0, 0.0, &dn);
    }
    if (s) return s;
    const double *dprev = w->d[l - 1];
    for (size_t j = 0; j < fi; j++) {
      double *restrict dc = dn.data + j * ld;
      const double *restrict sc = dprev + j * ld;
      for (size_t r = 0; r < nb; r++) dc[r] *= sc[r];
    }
    cur = 1 - cur;
  }
  return NNFT_OK;
}

/* ---------------------------------------------------------------------------------------------
 * Public passes */

static size_t min_size(size_t a, size_t b) { return a < b ? a : b; }

static int has_amp(const nnft_net *net) { return net->arch.is_cosnet && net->arch.amplitude; }

/* Rows r0 .. r0+nb-1 of X as a view. */
static nnft_mat row_block(const nnft_mat *X, size_t r0, size_t nb) {
  nnft_mat v = {nb, X->cols, X->ld, X->data + r0, 0};
  return v;
}

nnft_status nnft_net_forward(const nnft_net *net, const nnft_mat *X, nnft_mat *f) {
  if (X->cols != net->arch.d_in || f->rows != X->rows || f->cols != 1) return NNFT_EDIM;
  size_t n = X->rows;
  if (n == 0) return NNFT_OK;
  work w;
  nnft_status s = work_alloc(net, min_size(n, NNFT_NET_BLOCK), 0, &w);
  if (s) return s;
  if (has_amp(net)) cos_amplitude(net, &w);
  for (size_t r0 = 0; r0 < n && !s; r0 += NNFT_NET_BLOCK) {
    if (nnft_interrupted()) {
      s = NNFT_EINTR;
      break;
    }
    size_t nb = min_size(NNFT_NET_BLOCK, n - r0);
    nnft_mat Xb = row_block(X, r0, nb);
    if ((s = forward_block(net, &w, &Xb, 0))) break;
    memcpy(f->data + r0, w.out, nb * sizeof(double));
  }
  work_free(&w);
  return s;
}

nnft_status nnft_net_jacobian(const nnft_net *net, const nnft_mat *X, nnft_mat *J, nnft_mat *f) {
  size_t n = X->rows;
  if (X->cols != net->arch.d_in || J->rows != n || J->cols != net->ntrain) return NNFT_EDIM;
  if (f && (f->rows != n || f->cols != 1)) return NNFT_EDIM;
  if (n == 0) return NNFT_OK;
  work w;
  nnft_status s = work_alloc(net, min_size(n, NNFT_NET_BLOCK), 1, &w);
  if (s) return s;
  if (has_amp(net)) cos_amplitude(net, &w);
  for (size_t r0 = 0; r0 < n; r0 += NNFT_NET_BLOCK) {
    if (nnft_interrupted()) {
      s = NNFT_EINTR;
      break;
    }
    size_t nb = min_size(NNFT_NET_BLOCK, n - r0);
    nnft_mat Xb = row_block(X, r0, nb);
    if ((s = forward_block(net, &w, &Xb, 1))) break;
    if (f) memcpy(f->data + r0, w.out, nb * sizeof(double));
    if (net->ntrain && (s = backward_block(net, &w, &Xb, NULL, J, r0, NULL))) break;
  }
  work_free(&w);
  return s;
}

/* Σ_a (f(x_a) − y_a)² over the rows of X and, if grad != NULL, grad += scale Σ_a (f − y) ∇f
 * (scale = 2/|batch| for the gradient of the batch MSE). Amplitudes must be current. */
static nnft_status sse_grad(const nnft_net *net, work *w, const nnft_mat *X, const nnft_mat *y,
                            double scale, double *grad, double *sse) {
  size_t n = X->rows;
  double acc = 0.0;
  nnft_status s = NNFT_OK;
  for (size_t r0 = 0; r0 < n; r0 += w->nmax) {
    size_t nb = min_size(w->nmax, n - r0);
    nnft_mat Xb = row_block(X, r0, nb);
    if ((s = forward_block(net, w, &Xb, grad != NULL))) return s;
    for (size_t r = 0; r < nb; r++) {
      double e = w->out[r] - y->data[r0 + r];
      acc += e * e;
      w->dout[r] = scale * e;
    }
    if (grad && net->ntrain && (s = backward_block(net, w, &Xb, w->dout, NULL, 0, grad)))
      return s;
  }
  *sse = acc;
  return NNFT_OK;
}

nnft_status nnft_net_loss_grad(const nnft_net *net, const nnft_mat *X, const nnft_mat *y,
                               double *loss, double *grad) {
  size_t n = X->rows;
  if (X->cols != net->arch.d_in || y->rows != n || y->cols != 1) return NNFT_EDIM;
  if (n == 0) return NNFT_EDOM;
  work w;
  nnft_status s = work_alloc(net, min_size(n, NNFT_NET_BLOCK), grad != NULL, &w);
  if (s) return s;
  if (has_amp(net)) cos_amplitude(net, &w);
  if (grad) memset(grad, 0, net->ntrain * sizeof(double));
  double sse = 0.0;
  s = sse_grad(net, &w, X, y, 2.0 / (double)n, grad, &sse);
  if (!s && loss) *loss = sse / (double)n;
  work_free(&w);
  return s;
}

/* ---------------------------------------------------------------------------------------------
 * Training */

size_t nnft_train_nrecords(size_t epochs, size_t record) {
  if (record == 0) record = 1;
  return 1 + epochs / record + (epochs % record ? 1 : 0);
}

size_t nnft_train_record_epoch(size_t epochs, size_t record, size_t k) {
  if (record == 0) record = 1;
  size_t e = k * record;
  return e > epochs ? epochs : e;
}

static int trainable_finite(const nnft_net *net) {
  for (size_t l = 0; l < net->arch.nlayers; l++) {
    if (net->arch.layer[l].frozen) continue;
    const double *p = net->theta + net->w_off[l];
    size_t c = layer_count(&net->arch.layer[l]);
    int ok = 1;
    for (size_t k = 0; k < c; k++) ok &= isfinite(p[k]) != 0;
    if (!ok) return 0;
  }
  return 1;
}

/* θ_train -= lr g (gd, sgd) or the Adam step t (1-based) with moments m, v. */
static void apply_step(nnft_net *net, const nnft_train_opts *o, const double *g, double *m,
                       double *v, size_t t) {
  double c1 = 1.0, c2 = 1.0;
  if (o->optimizer == NNFT_OPT_ADAM) {
    c1 = 1.0 - pow(o->beta1, (double)t);
    c2 = 1.0 - pow(o->beta2, (double)t);
  }
  for (size_t l = 0; l < net->arch.nlayers; l++) {
    if (net->arch.layer[l].frozen) continue;
    double *restrict p = net->theta + net->w_off[l];
    size_t off = net->t_off[l], c = layer_count(&net->arch.layer[l]);
    const double *restrict gl = g + off;
    if (o->optimizer != NNFT_OPT_ADAM) {
      for (size_t k = 0; k < c; k++) p[k] -= o->lr * gl[k];
    } else {
      double *restrict ml = m + off, *restrict vl = v + off;
      double b1 = o->beta1, b2 = o->beta2;
      for (size_t k = 0; k < c; k++) {
        ml[k] = b1 * ml[k] + (1.0 - b1) * gl[k];
        vl[k] = b2 * vl[k] + (1.0 - b2) * gl[k] * gl[k];
        p[k] -= o->lr * (ml[k] / c1) / (sqrt(vl[k] / c2) + o->eps);
      }
    }
  }
}

static nnft_status check_train_opts(const nnft_train_opts *o, size_t n, const nnft_rng *rng,
                                    size_t *batch) {
  if (!(isfinite(o->lr) && o->lr > 0) || o->record == 0) return NNFT_EDOM;
  size_t B = o->batch;
  switch (o->optimizer) {
  case NNFT_OPT_GD:
    if (B != 0 && B != n) return NNFT_EDOM;
    B = n;
    break;
  case NNFT_OPT_SGD:
    if (B == 0) B = 1;
    break;
  case NNFT_OPT_ADAM:
    if (!(o->beta1 >= 0 && o->beta1 < 1 && o->beta2 >= 0 && o->beta2 < 1 && o->eps > 0 &&
          isfinite(o->eps)))
      return NNFT_EDOM;
    if (B == 0) B = n;
    break;
  default: return NNFT_EDOM;
  }
  if (o->shuffle && !rng) return NNFT_EDOM;
  *batch = B < n ? B : n;
  return NNFT_OK;
}

/* Frozen-prefix cache. When layers 1 .. k (k = first_train >= 1) are frozen, their output on the
 * training inputs does not change during training: compute it once (H, n x fan_out of layer k)
 * and train the suffix network (layers k+1 .. L, a view sharing θ) on H. Not for amplitude
 * cos-nets (the readout depends on layer 1) nor when H would exceed NNFT_NET_CACHE doubles. */
#define NNFT_NET_CACHE ((size_t)1 << 23)

static nnft_status train_impl(nnft_net *net, const nnft_mat *X, const nnft_mat *y,
                              const nnft_train_opts *o, nnft_rng *rng, double *history,
                              size_t *epochs_done);

/* The suffix network of layers k .. L-1 (0-based) as a view of net's parameters. */
static void suffix_view(const nnft_net *net, size_t k, nnft_net *sub) {
  const nnft_arch *a = &net->arch;
  memset(sub, 0, sizeof *sub);
  sub->arch = *a;
  sub->arch.nlayers = a->nlayers - k;
  sub->arch.d_in = a->layer[k].fan_in;
  sub->arch.is_cosnet = 0;
  sub->arch.amplitude = 0;
  size_t base = net->w_off[k];
  for (size_t l = 0; l < sub->arch.nlayers; l++) {
    sub->arch.layer[l] = a->layer[l + k];
    sub->w_off[l] = net->w_off[l + k] - base;
    sub->b_off[l] = net->b_off[l + k] - base;
    sub->t_off[l] = net->t_off[l + k];
    sub->wscale[l] = net->wscale[l + k];
    sub->bscale[l] = net->bscale[l + k];
  }
  sub->nparams = net->nparams - base;
  sub->ntrain = net->ntrain;
  sub->first_train = net->first_train - k;
  sub->theta = net->theta + base;
}

nnft_status nnft_net_features(const nnft_net *net, const nnft_mat *X, nnft_mat *H) {
  size_t n = X->rows, k = net->first_train;
  if (k >= net->arch.nlayers) return NNFT_EDOM; /* nothing trainable: no suffix */
  if (k > 0 && has_amp(net)) return NNFT_EDOM;
  size_t fo = net->arch.layer[k].fan_in;
  if (X->cols != net->arch.d_in || H->rows != n || H->cols != fo) return NNFT_EDIM;
  if (k == 0) return nnft_mat_copy(X, H);
  if (n == 0) return NNFT_OK;
  work w;
  nnft_status s = work_alloc(net, min_size(n, NNFT_NET_BLOCK), 0, &w);
  if (s) return s;
  for (size_t r0 = 0; r0 < n && !s; r0 += NNFT_NET_BLOCK) {
    size_t nb = min_size(NNFT_NET_BLOCK, n - r0);
    nnft_mat Xb = row_block(X, r0, nb);
    if ((s = forward_layers(net, &w, &Xb, 0, k))) break;
    for (size_t j = 0; j < fo; j++)
      memcpy(H->data + j * H->ld + r0, w.h[k - 1] + j * w.nmax, nb * sizeof(double));
  }
  work_free(&w);
  return s;
}

nnft_status nnft_net_suffix(const nnft_net *net, nnft_net *sub) {
  size_t k = net->first_train;
  if (k >= net->arch.nlayers || (k > 0 && has_amp(net))) return NNFT_EDOM;
  if (k == 0) {
    *sub = *net;
    sub->theta = net->theta; /* a view: the caller must not free it */
    return NNFT_OK;
  }
  suffix_view(net, k, sub);
  return NNFT_OK;
}

nnft_status nnft_net_train(nnft_net *net, const nnft_mat *X, const nnft_mat *y,
                           const nnft_train_opts *o, nnft_rng *rng, double *history,
                           size_t *epochs_done) {
  size_t n = X->rows, k = net->first_train, L = net->arch.nlayers;
  if (epochs_done) *epochs_done = 0;
  if (X->cols != net->arch.d_in || y->rows != n || y->cols != 1) return NNFT_EDIM;
  if (k == 0 || k >= L || n == 0 || has_amp(net) || o->epochs == 0)
    return train_impl(net, X, y, o, rng, history, epochs_done);
  size_t fo = net->arch.layer[k - 1].fan_out, nh;
  if (nnft_size_mul(n, fo, &nh) || nh > NNFT_NET_CACHE)
    return train_impl(net, X, y, o, rng, history, epochs_done);
  /* the frozen prefix is computed once; training runs on the trainable suffix */
  nnft_mat H;
  nnft_status s = nnft_mat_alloc(n, fo, &H);
  if (s) return s;
  if (!(s = nnft_net_features(net, X, &H))) {
    nnft_net sub;
    suffix_view(net, k, &sub);
    s = train_impl(&sub, &H, y, o, rng, history, epochs_done);
  }
  nnft_mat_free(&H);
  return s;
}

/* Is one SGD step on a single example a dot product and an axpy? (A lone trainable linear
 * readout — what remains after a frozen prefix — trained one sample at a time.) */
static int readout_sgd(const nnft_net *net, const nnft_train_opts *o, size_t B) {
  const nnft_layer *ly = &net->arch.layer[0];
  return net->arch.nlayers == 1 && !ly->frozen && ly->fan_out == 1 &&
         o->optimizer == NNFT_OPT_SGD && B == 1 && !has_amp(net);
}

/* One SGD step of the loss (f − y)² for a lone linear readout on the example x (d contiguous
 * values): f = s_w w·x + s_b b, then w −= lr·2(f − y)·s_w·x and b −= lr·2(f − y)·s_b. */
static void readout_sgd_step(nnft_net *net, const double *restrict x, double y, double lr) {
  const nnft_layer *ly = &net->arch.layer[0];
  size_t d = ly->fan_in;
  double *restrict w = net->theta + net->w_off[0];
  double ws = net->wscale[0], bs = net->bscale[0], f = 0.0;
  for (size_t j = 0; j < d; j++) f += w[j] * x[j];
  f *= ws;
  if (ly->has_bias) f += bs * net->theta[net->b_off[0]];
  double g = 2.0 * (f - y);
  for (size_t j = 0; j < d; j++) w[j] -= lr * (g * ws * x[j]);
  if (ly->has_bias) net->theta[net->b_off[0]] -= lr * (g * bs);
}

static nnft_status train_impl(nnft_net *net, const nnft_mat *X, const nnft_mat *y,
                              const nnft_train_opts *o, nnft_rng *rng, double *history,
                              size_t *epochs_done) {
  size_t n = X->rows, d = net->arch.d_in, B, P = net->nparams, T = net->ntrain;
  if (epochs_done) *epochs_done = 0;
  if (X->cols != d || y->rows != n || y->cols != 1) return NNFT_EDIM;
  if (n == 0) return NNFT_EDOM;
  nnft_status s = check_train_opts(o, n, rng, &B);
  if (s) return s;
  int shuffle = o->shuffle && B < n; /* a full batch in any order is the same batch */
  int adam = o->optimizer == NNFT_OPT_ADAM;
  int fast = readout_sgd(net, o, B); /* then xt holds X row by row (each example contiguous) */
  /* doubles: grad T, backup P, Adam 2T, gathered batch B d + B; perm n size_t */
  size_t nd = 0, t;
  if ((s = nnft_size_add(nd, T, &nd)) || (s = nnft_size_add(nd, P, &nd))) return s;
  if (adam && ((s = nnft_size_mul(T, 2, &t)) || (s = nnft_size_add(nd, t, &nd)))) return s;
  if (shuffle && ((s = nnft_size_mul(B, d + 1, &t)) || (s = nnft_size_add(nd, t, &nd))))
    return s;
  if (fast && ((s = nnft_size_mul(n, d, &t)) || (s = nnft_size_add(nd, t, &nd)))) return s;
  size_t bytes, pbytes = 0;
  if ((s = nnft_size_mul(nd, sizeof(double), &bytes))) return s;
  if (shuffle && (s = nnft_size_mul(n, sizeof(size_t), &pbytes))) return s;
  work w;
  if ((s = work_alloc(net, min_size(B, NNFT_NET_BLOCK), 1, &w))) return s;
  double *buf = nnft_alloc(bytes);
  size_t *perm = shuffle ? nnft_alloc(pbytes) : NULL;
  if (!buf || (shuffle && !perm)) {
    nnft_free(buf);
    nnft_free(perm);
    work_free(&w);
    return NNFT_ENOMEM;
  }
  double *grad = buf, *backup = grad + T, *m = backup + P, *v = m + (adam ? T : 0);
  double *xg = v + (adam ? T : 0), *yg = xg + (shuffle ? B * d : 0);
  double *xt = yg + (shuffle ? B : 0);
  if (adam) memset(m, 0, 2 * T * sizeof(double));
  if (fast)
    for (size_t r = 0; r < n; r++)
      for (size_t j = 0; j < d; j++) xt[r * d + j] = NNFT_AT(X, r, j);
  int amp = has_amp(net);
  size_t rec = 0, done = 0, step = 0;
  double sse;
  if (amp) cos_amplitude(net, &w);
  if ((s = sse_grad(net, &w, X, y, 0.0, NULL, &sse))) goto out;
  if (history) history[rec++] = sse / (double)n;
  for (size_t e = 1; e <= o->epochs; e++) {
    if (nnft_interrupted()) {
      s = NNFT_EINTR;
      break;
    }
    memcpy(backup, net->theta, P * sizeof(double));
    if (shuffle) nnft_rng_permutation(rng, n, perm);
    for (size_t k0 = 0; k0 < n; k0 += B) {
      if (fast) {
        size_t src = shuffle ? perm[k0] : k0;
        readout_sgd_step(net, xt + src * d, y->data[src], o->lr);
        if (++step % 4096 == 0 && nnft_interrupted()) {
          memcpy(net->theta, backup, P * sizeof(double));
          s = NNFT_EINTR;
          goto out;
        }
        continue;
      }
      size_t nbat = min_size(B, n - k0);
      nnft_mat Xb, yb;
      if (shuffle) {
        for (size_t r = 0; r < nbat; r++) {
          size_t src = perm[k0 + r];
          for (size_t j = 0; j < d; j++) xg[r + j * B] = NNFT_AT(X, src, j);
          yg[r] = y->data[src];
        }
        Xb = (nnft_mat){nbat, d, B, xg, 0};
        yb = (nnft_mat){nbat, 1, B, yg, 0};
      } else {
        Xb = row_block(X, k0, nbat);
        yb = row_block(y, k0, nbat);
      }
      if (amp) cos_amplitude(net, &w);
      memset(grad, 0, T * sizeof(double));
      if ((s = sse_grad(net, &w, &Xb, &yb, 2.0 / (double)nbat, grad, &sse))) goto out;
      apply_step(net, o, grad, m, v, ++step);
      if (step % 4096 == 0 && nnft_interrupted()) {
        memcpy(net->theta, backup, P * sizeof(double));
        s = NNFT_EINTR;
        goto out;
      }
    }
    if (!trainable_finite(net)) {
      memcpy(net->theta, backup, P * sizeof(double));
      s = NNFT_ENONFINITE;
      goto out;
    }
    done = e;
    if (history && (e % o->record == 0 || e == o->epochs)) {
      if (amp) cos_amplitude(net, &w);
      if ((s = sse_grad(net, &w, X, y, 0.0, NULL, &sse))) goto out;
      history[rec++] = sse / (double)n;
    }
  }
out:
  if (epochs_done) *epochs_done = done;
  nnft_free(perm);
  nnft_free(buf);
  work_free(&w);
  return s;
}

static int has_custom(const nnft_net *net) {
  for (size_t l = 0; l + 1 < net->arch.nlayers; l++)
    if (net->arch.layer[l].act == NNFT_ACT_CUSTOM) return 1;
  return 0;
}

nnft_status nnft_net_train_many(nnft_net *const *nets, size_t count, const nnft_mat *X,
                                const nnft_mat *y, const nnft_train_opts *o,
                                const nnft_rng *root, int threads, double *history,
                                nnft_status *status, size_t *epochs_done) {
  size_t nrec = nnft_train_nrecords(o->epochs, o->record);
  if (count == 0) return NNFT_OK;
  if (nrec > SIZE_MAX / count) return NNFT_EOVERFLOW;
#ifdef _OPENMP
  if (threads <= 0) threads = omp_get_max_threads();
#endif
  if (threads < 1) threads = 1;
  if ((size_t)threads > count) threads = (int)count;
  for (size_t i = 0; i < count; i++)
    if (has_custom(nets[i])) threads = 1;
  nnft_status first = NNFT_OK, first_bad = NNFT_OK;
  size_t first_i = SIZE_MAX, bad_i = SIZE_MAX;
  long long cnt = (long long)count;
#ifdef _OPENMP
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
#endif
  for (long long q = 0; q < cnt; q++) {
    size_t i = (size_t)q, done = 0;
    nnft_rng r;
    nnft_status s = nnft_rng_substream(root, (uint64_t)i, &r);
    if (!s)
      s = nnft_net_train(nets[i], X, y, o, &r, history ? history + i * nrec : NULL, &done);
    if (status) status[i] = s;
    if (epochs_done) epochs_done[i] = done;
    if (s) {
#ifdef _OPENMP
#pragma omp critical(nnft_net_train_many)
#endif
      {
        if (i < first_i) {
          first_i = i;
          first = s;
        }
        if (s != NNFT_ENONFINITE && (bad_i == SIZE_MAX || s == NNFT_EINTR || i < bad_i) &&
            first_bad != NNFT_EINTR) {
          bad_i = i;
          first_bad = s;
        }
      }
    }
  }
  return bad_i != SIZE_MAX ? first_bad : first;
}

/* ---------------------------------------------------------------------------------------------
 * Per-layer Jacobian signals (nnft_fisher) */

nnft_status nnft_net_signals(const nnft_net *net, const nnft_mat *X, nnft_net_signal_fn fn,
                             void *ctx) {
  const nnft_arch *a = &net->arch;
  if (X->cols != a->d_in) return NNFT_EDIM;
  int amp = has_amp(net);
  if (amp && !a->layer[0].frozen) return NNFT_EDOM;
  size_t n = X->rows, L = a->nlayers;
  if (n == 0 || net->ntrain == 0) return NNFT_OK;
  work w;
  nnft_status s = work_alloc(net, min_size(n, NNFT_NET_BLOCK), 1, &w);
  if (s) return s;
  if (amp) cos_amplitude(net, &w);
  for (size_t r0 = 0; r0 < n && !s; r0 += NNFT_NET_BLOCK) {
    if (nnft_interrupted()) {
      s = NNFT_EINTR;
      break;
    }
    size_t nb = min_size(NNFT_NET_BLOCK, n - r0), ld = w.nmax;
    nnft_mat Xb = row_block(X, r0, nb);
    if ((s = forward_block(net, &w, &Xb, 1))) break;
    int cur = 0;
    for (size_t r = 0; r < nb; r++) w.delta[cur][r] = 1.0;
    for (size_t l = L; l-- > net->first_train;) {
      const nnft_layer *ly = &a->layer[l];
      size_t fo = ly->fan_out, fi = ly->fan_in;
      nnft_mat in = layer_input(net, &w, &Xb, l, nb);
      nnft_mat dl = {nb, fo, ld, w.delta[cur], 0};
      if (!ly->frozen && (s = fn(ctx, l, r0, &in, &dl, amp && l == 1 ? w.amp : NULL))) break;
      if (l == net->first_train) break;
      /* δ^{l-1} = (δ^l W^l ws) ⊙ σ'(z^{l-1}); never through an amplitude readout here (its
       * frequencies are frozen, so first_train >= 1 and the loop stopped above) */
      nnft_mat dn = {nb, fi, ld, w.delta[1 - cur], 0};
      nnft_mat W = weight_mat(net, l);
      if ((s = nnft_mat_gemm(net->wscale[l], &dl, 0, &W, 0, 0.0, &dn))) break;
      const double *dprev = w.d[l - 1];
      for (size_t j = 0; j < fi; j++) {
        double *restrict dc = dn.data + j * ld;
        const double *restrict sc = dprev + j * ld;
        for (size_t r = 0; r < nb; r++) dc[r] *= sc[r];
      }
      cur = 1 - cur;
    }
  }
  work_free(&w);
  return s;
}
