/* src/nn/rnn.c - RNN (tanh/relu), LSTM and GRU cells and sequence layers,
 * built from the public ops only: backpropagation through time is the
 * tape's.
 *
 * A sequence layer is, per layer and direction, one recurrent op
 * (tn_recurrent: the whole time loop, structured as docs/design.md section 3
 * describes), then concat of the directions, optionally a residual add of
 * the layer's input and a LayerNorm (tn_rnn_opts), and dropout between
 * layers; without those options the op sequence is the plain stacked one.
 * The layer-norm LSTM (ln_gates) replaces the recurrent op by a tn_scan of
 * generic ops (run_direction_ln).
 * The single-step cell API composes addmm and the fused cell ops.
 */
#include "tensor/nn.h"

#include "../core/internal.h"
#include "tensor/optim.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static bool cell_valid(tn_cell c) { return tn_cell_gates(c) > 0; }

/* Create w_ih, w_hh, b_ih, b_hh named weight_ih<sfx> etc. (zero-filled). */
static tn_status make_weights(tn_params *ps, const char *prefix, const char *sfx, int64_t gh,
                              int64_t in, int64_t hidden, tn_dtype dt, tn_tensor **w_ih,
                              tn_tensor **w_hh, tn_tensor **b_ih, tn_tensor **b_hh)
{
    char name[TN_NAME_MAX];
    snprintf(name, sizeof name, "weight_ih%s", sfx);
    *w_ih = tn_params_new(ps, prefix, name, dt, 2, (int64_t[]){gh, in});
    snprintf(name, sizeof name, "weight_hh%s", sfx);
    *w_hh = tn_params_new(ps, prefix, name, dt, 2, (int64_t[]){gh, hidden});
    snprintf(name, sizeof name, "bias_ih%s", sfx);
    *b_ih = tn_params_new(ps, prefix, name, dt, 1, (int64_t[]){gh});
    snprintf(name, sizeof name, "bias_hh%s", sfx);
    *b_hh = tn_params_new(ps, prefix, name, dt, 1, (int64_t[]){gh});
    if (!*w_ih || !*w_hh || !*b_ih || !*b_hh)
        return tn_last_status();
    return TN_OK;
}

/* PyTorch's default: each of the four uniform(+-1/sqrt(H)), in order. */
static void init_uniform(tn_tensor *const all[4], int64_t hidden, tn_rng *r)
{
    double k = 1.0 / sqrt((double)hidden);
    for (int i = 0; i < 4; i++)
        tn_tensor_uniform(all[i], r, -k, k);
}

/* Xavier-uniform w_ih, each gate block of w_hh ([G*H, H], contiguous)
 * orthogonal, zero biases. */
static tn_status init_xavier_orthogonal(tn_tensor *const all[4], int64_t hidden, tn_rng *r)
{
    tn_status st = tn_init_xavier_uniform(all[0], r, 1.0);
    tn_tensor *w = all[1];
    int64_t gates = w->shape[0] / hidden;
    size_t block = (size_t)(hidden * w->stride[0]) * tn_dtype_size(w->dtype);
    for (int64_t g = 0; g < gates && st == TN_OK; g++) {
        tn_node rows = *tn__node(w); /* rows g*H .. g*H+H-1: a local view, data only */
        rows.pub.shape[0] = hidden;
        rows.pub.data = (char *)w->data + (size_t)g * block;
        rows.pub.grad = NULL;
        st = tn_init_orthogonal(&rows.pub, r, 1.0);
    }
    tn_tensor_fill(all[2], 0.0);
    tn_tensor_fill(all[3], 0.0);
    return st;
}

static bool init_kind_valid(tn_rnn_init_kind k)
{
    return k == TN_RNN_INIT_UNIFORM || k == TN_RNN_INIT_XAVIER_ORTHOGONAL;
}

tn_rnn_opts tn_rnn_defaults(void)
{
    return (tn_rnn_opts){.cell = TN_CELL_LSTM, .layers = 1, .init = TN_RNN_INIT_UNIFORM};
}

/* The first bad option of o, as an error naming fn and the option. */
static tn_status check_opts(const char *fn, const tn_rnn_opts *o)
{
    if (!cell_valid(o->cell))
        return tn_set_error(TN_ERR_ARG, "%s: cell %d is not a tn_cell", fn, (int)o->cell);
    if (o->input_size < 1 || o->hidden < 1)
        return tn_set_error(TN_ERR_ARG, "%s: input_size %lld and hidden %lld must be >= 1", fn,
                            (long long)o->input_size, (long long)o->hidden);
    if (o->layers < 1 || o->layers > TN_RNN_MAX_LAYERS)
        return tn_set_error(TN_ERR_ARG, "%s: layers %d outside 1..%d (TN_RNN_MAX_LAYERS)", fn,
                            o->layers, TN_RNN_MAX_LAYERS);
    if (!(o->dropout >= 0 && o->dropout < 1))
        return tn_set_error(TN_ERR_ARG, "%s: dropout %g outside [0, 1)", fn, o->dropout);
    if (!init_kind_valid(o->init))
        return tn_set_error(TN_ERR_ARG, "%s: init %d is not a tn_rnn_init_kind", fn, (int)o->init);
    if (o->set_forget_bias && (o->cell != TN_CELL_LSTM || !isfinite(o->forget_bias)))
        return tn_set_error(TN_ERR_ARG, "%s: forget_bias %g needs an LSTM and a finite value", fn,
                            o->forget_bias);
    if (o->ln_gates && o->cell != TN_CELL_LSTM)
        return tn_set_error(TN_ERR_ARG,
                            "%s: ln_gates (the layer-norm LSTM) needs the LSTM cell, "
                            "not %s",
                            fn, tn_cell_name(o->cell));
    return TN_OK;
}

/* A LayerNorm over dim features (eps 1e-5, affine) under prefix.sub. */
static tn_status make_norm(tn_layernorm *n, tn_params *ps, const char *prefix, const char *sub,
                           int64_t dim, tn_dtype dt)
{
    char name[TN_NAME_MAX];
    int len = prefix && *prefix ? snprintf(name, sizeof name, "%s.%s", prefix, sub)
                                : snprintf(name, sizeof name, "%s", sub);
    if (len < 0 || len >= (int)sizeof name)
        return tn_set_error(TN_ERR_ARG, "tn_rnn_init_ex: prefix \"%s\" too long", prefix);
    return tn_layer_norm_init(n, ps, name, dim, 1e-5, true, dt);
}

static tn_status rnn_init(const char *fn, tn_rnn *m, tn_params *ps, const char *prefix,
                          const tn_rnn_opts *o, tn_dtype dt, tn_rng *r)
{
    if (!m || !ps || !o || !r)
        return tn_set_error(TN_ERR_ARG, "%s: NULL argument (m, ps, options or rng)", fn);
    tn_status st = check_opts(fn, o);
    if (st != TN_OK)
        return st;
    memset(m, 0, sizeof *m);
    m->cell = o->cell;
    m->input_size = o->input_size;
    m->hidden = o->hidden;
    m->layers = o->layers;
    m->bidirectional = o->bidirectional;
    m->dropout = o->dropout;
    m->residual = o->residual;
    m->layer_norm = o->layer_norm;
    m->ln_gates = o->ln_gates;
    int D = o->bidirectional ? 2 : 1;
    int64_t gh = tn_cell_gates(o->cell) * o->hidden;
    for (int l = 0; l < o->layers; l++) {
        for (int d = 0; d < D; d++) {
            char sfx[32];
            snprintf(sfx, sizeof sfx, "_l%d%s", l, d ? "_reverse" : "");
            int k = l * D + d;
            int64_t in = l == 0 ? o->input_size : D * o->hidden;
            st = make_weights(ps, prefix, sfx, gh, in, o->hidden, dt, &m->w_ih[k], &m->w_hh[k],
                              &m->b_ih[k], &m->b_hh[k]);
            if (st != TN_OK)
                return st;
            tn_tensor *all[4] = {m->w_ih[k], m->w_hh[k], m->b_ih[k], m->b_hh[k]};
            if (o->init == TN_RNN_INIT_UNIFORM)
                init_uniform(all, o->hidden, r);
            else if ((st = init_xavier_orthogonal(all, o->hidden, r)) != TN_OK)
                return st;
            for (int64_t j = o->hidden; o->set_forget_bias && j < 2 * o->hidden; j++) {
                tn_tensor_set(m->b_ih[k], j, o->forget_bias); /* rows of f: i, f, g, o */
                tn_tensor_set(m->b_hh[k], j, 0.0);
            }
            char sub[3][48];
            snprintf(sub[0], sizeof sub[0], "ln_ih%s", sfx);
            snprintf(sub[1], sizeof sub[1], "ln_hh%s", sfx);
            snprintf(sub[2], sizeof sub[2], "ln_c%s", sfx);
            if (o->ln_gates &&
                ((st = make_norm(&m->ln_ih[k], ps, prefix, sub[0], gh, dt)) != TN_OK ||
                 (st = make_norm(&m->ln_hh[k], ps, prefix, sub[1], gh, dt)) != TN_OK ||
                 (st = make_norm(&m->ln_c[k], ps, prefix, sub[2], o->hidden, dt)) != TN_OK))
                return st;
        }
        char sub[32];
        snprintf(sub, sizeof sub, "norm_l%d", l);
        if (o->layer_norm &&
            (st = make_norm(&m->norm[l], ps, prefix, sub, D * o->hidden, dt)) != TN_OK)
            return st;
    }
    return TN_OK;
}

tn_status tn_rnn_init_ex(tn_rnn *m, tn_params *ps, const char *prefix, const tn_rnn_opts *o,
                         tn_dtype dt, tn_rng *r)
{
    return rnn_init("tn_rnn_init_ex", m, ps, prefix, o, dt, r);
}

tn_status tn_rnn_init(tn_rnn *m, tn_params *ps, const char *prefix, tn_cell cell,
                      int64_t input_size, int64_t hidden, int layers, bool bidirectional,
                      double dropout, tn_dtype dt, tn_rng *r)
{
    /* the plain layer: no residual, no norm, PyTorch's init */
    tn_rnn_opts o = {.cell = cell,
                     .input_size = input_size,
                     .hidden = hidden,
                     .layers = layers,
                     .bidirectional = bidirectional,
                     .dropout = dropout,
                     .init = TN_RNN_INIT_UNIFORM};
    return rnn_init("tn_rnn_init", m, ps, prefix, &o, dt, r);
}

tn_status tn_rnn_cell_init(tn_rnn_cell *c, tn_params *ps, const char *prefix, tn_cell cell,
                           int64_t input_size, int64_t hidden, tn_dtype dt, tn_rng *r)
{
    if (!c || !ps || !r || !cell_valid(cell) || input_size < 1 || hidden < 1)
        return tn_set_error(TN_ERR_ARG,
                            "tn_rnn_cell_init: bad arguments (cell %d, input %lld, hidden %lld)",
                            (int)cell, (long long)input_size, (long long)hidden);
    c->cell = cell;
    c->input_size = input_size;
    c->hidden = hidden;
    tn_status st = make_weights(ps, prefix, "", tn_cell_gates(cell) * hidden, input_size, hidden,
                                dt, &c->w_ih, &c->w_hh, &c->b_ih, &c->b_hh);
    if (st == TN_OK)
        init_uniform((tn_tensor *[]){c->w_ih, c->w_hh, c->b_ih, c->b_hh}, hidden, r);
    return st;
}

/* One step of a cell.
 *   xg   [B, G*H]  input projection of this step (may be a strided view);
 *                  includes b_ih, and b_hh too except for GRU
 *   h    [B, H]    previous state, or NULL for zeros (skips the GEMM)
 *   c    [B, H]    previous LSTM cell state, or NULL for zeros
 *   whT  [H, G*H] W_hh^T, b_hh [G*H] (GRU only)
 * Returns h' [B, H]; *c_out = c' for LSTM. */
static tn_tensor *cell_step(tn_tape *tp, tn_cell cell, int64_t H, tn_tensor *xg, tn_tensor *h,
                            tn_tensor *c, tn_tensor *whT, tn_tensor *b_hh, tn_tensor **c_out)
{
    if (cell == TN_CELL_GRU) /* gh = h W_hh^T + b_hh; with h = 0 it is b_hh */
        return tn_gru_cell(tp, xg, h ? tn_addmm(tp, b_hh, h, whT) : b_hh, h);
    tn_tensor *pre = h ? tn_addmm(tp, xg, h, whT) : xg;
    if (cell == TN_CELL_RNN_TANH)
        return tn_tanh(tp, pre);
    if (cell == TN_CELL_RNN_RELU)
        return tn_relu(tp, pre);
    tn_tensor *hc = tn_lstm_cell(tp, pre, c); /* [B, 2H] = [h' | c'] */
    *c_out = tn_narrow(tp, hc, 1, H, H);
    return tn_narrow(tp, hc, 1, 0, H);
}

/* Bias of the input projection: b_ih + b_hh (RNN, LSTM) or b_ih (GRU). */
static tn_tensor *input_bias(tn_tape *tp, tn_cell cell, tn_tensor *b_ih, tn_tensor *b_hh)
{
    return cell == TN_CELL_GRU ? b_ih : tn_add(tp, b_ih, b_hh);
}

tn_tensor *tn_rnn_cell_forward(tn_tape *tp, const tn_rnn_cell *c, tn_tensor *x, tn_tensor *h,
                               tn_tensor *cs, tn_tensor **c_out)
{
    if (!tp || !c || !x || tn_tape_error(tp))
        return NULL;
    int64_t B = x->shape[0], H = c->hidden;
    char a[64], b[64];
    if (x->ndim != 2 || x->shape[1] != c->input_size ||
        (h && (h->ndim != 2 || h->shape[0] != B || h->shape[1] != H)) ||
        (cs && (cs->ndim != 2 || cs->shape[0] != B || cs->shape[1] != H))) {
        tn_tape_fail(
            tp, TN_ERR_SHAPE,
            "tn_rnn_cell_forward (%s): x %s, h %s; expected x [B, %lld] and states [B, %lld]",
            tn_cell_name(c->cell), tn_shape_str(x, a, sizeof a),
            h ? tn_shape_str(h, b, sizeof b) : "none", (long long)c->input_size, (long long)H);
        return NULL;
    }
    tn_tensor *xg =
        tn_addmm(tp, input_bias(tp, c->cell, c->b_ih, c->b_hh), x, tn_transpose(tp, c->w_ih, 0, 1));
    tn_tensor *c2 = NULL;
    tn_tensor *h2 =
        cell_step(tp, c->cell, H, xg, h, cs, tn_transpose(tp, c->w_hh, 0, 1), c->b_hh, &c2);
    if (c_out)
        *c_out = c2;
    return h2;
}

/* State k ([B, H]) of a [L*D, B, H] tensor, or NULL. */
static tn_tensor *state_of(tn_tape *tp, tn_tensor *s, int k, int64_t B, int64_t H)
{
    if (!s)
        return NULL;
    return tn_reshape(tp, tn_narrow(tp, s, 0, k, 1), 2, (int64_t[]){B, H});
}

/* Final state k of one direction from its result o [S, B, T, H]: the
 * state after the last step each sequence ran, t = lengths[b] - 1 forward
 * (or T - 1), t = 0 in reverse. fin[k] = h [B, H], fin[LD + k] = c. */
static void final_state(tn_tape *tp, tn_tensor *o, const int32_t *len, bool reverse,
                        tn_tensor **fin, int k, int64_t LD)
{
    int64_t S = o->shape[0], B = o->shape[1], T = o->shape[2], H = o->shape[3];
    tn_tensor *last; /* [S*B, H] */
    if (len && !reverse) {
        tn_tensor *ids = tn_tape_tensor(tp, TN_I32, 1, (int64_t[]){S * B});
        if (!ids)
            return;
        int32_t *id = ids->data;
        for (int64_t s = 0; s < S; s++)
            for (int64_t b = 0; b < B; b++)
                id[s * B + b] = (int32_t)((s * B + b) * T + len[b] - 1);
        last = tn_gather_rows(tp, tn_reshape(tp, o, 2, (int64_t[]){S * B * T, H}), ids, -1);
    } else {
        last =
            tn_reshape(tp, tn_narrow(tp, o, 2, reverse ? 0 : T - 1, 1), 2, (int64_t[]){S * B, H});
    }
    fin[k] = tn_narrow(tp, last, 0, 0, B);
    if (S == 2)
        fin[LD + k] = tn_narrow(tp, last, 0, B, B);
}

/* int32 [B, T, 1]: 1 where t < lengths[b] (NULL when out of memory). */
static tn_tensor *length_mask(tn_tape *tp, const int32_t *lengths, int64_t B, int64_t T)
{
    tn_tensor *mask = tn_tape_tensor(tp, TN_I32, 3, (int64_t[]){B, T, 1});
    if (!mask)
        return NULL;
    int32_t *v = mask->data;
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < T; t++)
            v[b * T + t] = t < lengths[b];
    return mask;
}

/* ---- the layer-norm LSTM (tn_rnn_opts.ln_gates) ---- */

typedef struct ln_step_ctx {
    const tn_layernorm *hh, *c;
    tn_tensor *whT; /* W_hh^T [H, 4H] */
    int64_t H;
    bool masked; /* x[1] is the step's length mask [B, 1] */
} ln_step_ctx;

/* One step: x[0] [B, 4H] = LN_ih(x W_ih^T) + b_ih + b_hh of this step,
 * states h, c [B, H] -> next h', c'; with the mask m, s' = s + m (s_new -
 * s), so a finished sequence keeps its state. */
static tn_status ln_step(tn_tape *tp, void *ctx, tn_tensor *const *x, tn_tensor *const *s,
                         tn_tensor **next)
{
    const ln_step_ctx *k = ctx;
    int64_t H = k->H;
    tn_tensor *h = s[0], *c = s[1];
    tn_tensor *g = tn_add(tp, x[0], tn_layer_norm_forward(tp, k->hh, tn_matmul(tp, h, k->whT)));
    tn_tensor *i = tn_sigmoid(tp, tn_narrow(tp, g, 1, 0, H));
    tn_tensor *f = tn_sigmoid(tp, tn_narrow(tp, g, 1, H, H));
    tn_tensor *u = tn_tanh(tp, tn_narrow(tp, g, 1, 2 * H, H));
    tn_tensor *o = tn_sigmoid(tp, tn_narrow(tp, g, 1, 3 * H, H));
    tn_tensor *c2 = tn_add(tp, tn_mul(tp, f, c), tn_mul(tp, i, u));
    tn_tensor *h2 = tn_mul(tp, o, tn_tanh(tp, tn_layer_norm_forward(tp, k->c, c2)));
    if (k->masked) {
        h2 = tn_add(tp, h, tn_mul(tp, x[1], tn_sub(tp, h2, h)));
        c2 = tn_add(tp, c, tn_mul(tp, x[1], tn_sub(tp, c2, c)));
    }
    next[0] = h2;
    next[1] = c2;
    return tn_tape_status(tp);
}

/* The step t' that step t of a direction reads for sequence b: t, or in
 * reverse len - 1 - t within the sequence's length (len = T without
 * lengths) and t past it. An involution. */
static int64_t ln_time(int64_t t, int64_t len, bool reverse)
{
    return reverse && t < len ? len - 1 - t : t;
}

/* rows [B*T or T*B] int32 ids mapping the rows of one layout to the other:
 * to time-major (row t B + b from batch-major row b T + t'), or back. */
static tn_tensor *ln_ids(tn_tape *tp, int64_t B, int64_t T, const int32_t *len, bool reverse,
                         bool to_time)
{
    tn_tensor *ids = tn_tape_tensor(tp, TN_I32, 1, (int64_t[]){B * T});
    if (!ids)
        return NULL;
    int32_t *id = ids->data;
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < T; t++) {
            int64_t tt = ln_time(t, len ? len[b] : T, reverse);
            if (to_time)
                id[t * B + b] = (int32_t)(b * T + tt);
            else
                id[b * T + t] = (int32_t)(tt * B + b);
        }
    return ids;
}

/* run_direction for the layer-norm LSTM, through tn_scan: the input part
 * of all steps at once, gathered into time-major order (reversed within
 * each length for the reverse direction), the scan, and its h and c
 * gathered back. o [2, B, T, H] as the recurrent op's (h, c), the output h
 * zeroed past each length. */
static tn_tensor *run_direction_ln(tn_tape *tp, const tn_rnn *m, int k, bool reverse,
                                   tn_tensor *xin, tn_tensor *h0, tn_tensor *c0, const int32_t *len,
                                   tn_tensor **fin, int64_t LD)
{
    int64_t B = xin->shape[0], T = xin->shape[1], I = xin->shape[2], H = m->hidden;
    tn_dtype dt = m->w_ih[k]->dtype;
    tn_tensor *xg = tn_matmul(tp, tn_reshape(tp, tn_contiguous(tp, xin), 2, (int64_t[]){B * T, I}),
                              tn_transpose(tp, m->w_ih[k], 0, 1));
    xg = tn_add(tp, tn_layer_norm_forward(tp, &m->ln_ih[k], xg),
                tn_add(tp, m->b_ih[k], m->b_hh[k])); /* [B*T, 4H] */
    tn_tensor *xs[2] = {tn_reshape(tp,
                                   tn_gather_rows(tp, xg, ln_ids(tp, B, T, len, reverse, true), -1),
                                   3, (int64_t[]){T, B, 4 * H}),
                        NULL};
    if (len) { /* [T, B, 1]: 1 while sequence b runs */
        xs[1] = tn_tape_tensor(tp, dt, 3, (int64_t[]){T, B, 1});
        for (int64_t t = 0; xs[1] && t < T; t++)
            for (int64_t b = 0; b < B; b++)
                tn_tensor_set(xs[1], t * B + b, t < len[b] ? 1.0 : 0.0);
    }
    tn_tensor *init[2] = {h0 ? h0 : tn_tape_tensor(tp, dt, 2, (int64_t[]){B, H}),
                          c0 ? c0 : tn_tape_tensor(tp, dt, 2, (int64_t[]){B, H})};
    ln_step_ctx ctx = {&m->ln_hh[k], &m->ln_c[k], tn_transpose(tp, m->w_hh[k], 0, 1), H,
                       len != NULL};
    tn_tensor *y = tn_scan(tp, ln_step, &ctx, len ? 2 : 1, xs, 2, init); /* [T, B, 2H] */
    if (!y)
        return NULL;
    tn_tensor *hc = tn_reshape(tp,
                               tn_gather_rows(tp, tn_reshape(tp, y, 2, (int64_t[]){T * B, 2 * H}),
                                              ln_ids(tp, B, T, len, reverse, false), -1),
                               3, (int64_t[]){B, T, 2 * H});
    tn_tensor *hs[2] = {tn_narrow(tp, hc, 2, 0, H), tn_narrow(tp, hc, 2, H, H)};
    tn_tensor *o = tn_stack(tp, 2, hs, 0);
    if (!o)
        return NULL;
    final_state(tp, o, len, reverse, fin, k, LD);
    return len ? tn_mask(tp, hs[0], length_mask(tp, len, B, T)) : hs[0];
}

/* One direction of one layer over the whole sequence (one recurrent op):
 *   xin [B, T, I] -> output [B, T, H]; final states into fin (see above). */
static tn_tensor *run_direction(tn_tape *tp, const tn_rnn *m, int k, bool reverse, tn_tensor *xin,
                                tn_tensor *h0, tn_tensor *c0, const int32_t *len, tn_tensor **fin,
                                int64_t LD)
{
    if (m->ln_gates)
        return run_direction_ln(tp, m, k, reverse, xin, h0, c0, len, fin, LD);
    int64_t B = xin->shape[0], T = xin->shape[1], H = m->hidden;
    tn_rnn_weights w = {m->w_ih[k], m->w_hh[k], m->b_ih[k], m->b_hh[k]};
    tn_tensor *o = tn_recurrent(tp, m->cell, &w, xin, h0, c0, len, reverse);
    if (!o)
        return NULL;
    final_state(tp, o, len, reverse, fin, k, LD);
    return tn_reshape(tp, tn_narrow(tp, o, 0, 0, 1), 3, (int64_t[]){B, T, H});
}

tn_status tn_rnn_forward(tn_tape *tp, const tn_rnn *m, tn_tensor *x, tn_tensor *h0, tn_tensor *c0,
                         const int32_t *lengths, tn_rnn_out *out)
{
    if (!tp || !m || !out)
        return tn_set_error(TN_ERR_ARG, "tn_rnn_forward: NULL argument");
    memset(out, 0, sizeof *out);
    if (tn_tape_error(tp)) /* an earlier op failed: its status is the cause */
        return tn_tape_status(tp);
    const char *name = tn_cell_name(m->cell);
    if (!x)
        return tn_tape_fail(tp, TN_ERR_ARG, "%s: input x is NULL", name);
    int D = m->bidirectional ? 2 : 1;
    int64_t B = x->shape[0], T = x->shape[1], H = m->hidden, LD = (int64_t)m->layers * D;
    char a[64], b[64];
    if (x->ndim != 3 || x->shape[2] != m->input_size)
        return tn_tape_fail(tp, TN_ERR_SHAPE, "%s: input %s, expected [B, T, %lld] (batch first)",
                            name, tn_shape_str(x, a, sizeof a), (long long)m->input_size);
    tn_tensor *st[2] = {h0, c0};
    for (int i = 0; i < 2; i++)
        if (st[i] && (st[i]->ndim != 3 || st[i]->shape[0] != LD || st[i]->shape[1] != B ||
                      st[i]->shape[2] != H))
            return tn_tape_fail(tp, TN_ERR_SHAPE, "%s: %s %s, expected [%lld, %lld, %lld]", name,
                                i ? "c0" : "h0", tn_shape_str(st[i], b, sizeof b), (long long)LD,
                                (long long)B, (long long)H);
    if (c0 && m->cell != TN_CELL_LSTM)
        return tn_tape_fail(tp, TN_ERR_ARG, "%s: c0 given, but only LSTM has a cell state", name);
    if (lengths)
        for (int64_t i = 0; i < B; i++)
            if (lengths[i] < 1 || lengths[i] > T)
                return tn_tape_fail(tp, TN_ERR_INDEX, "%s: lengths[%lld] = %d outside 1..T=%lld",
                                    name, (long long)i, (int)lengths[i], (long long)T);

    tn_tensor **fin = tn_tape_alloc(tp, (size_t)(2 * LD) * sizeof *fin);
    if (!fin)
        return TN_ERR_MEMORY;
    tn_tensor *in = x;
    for (int l = 0; l < m->layers; l++) {
        tn_tensor *dir_out[2];
        for (int d = 0; d < D; d++) {
            int k = l * D + d;
            dir_out[d] = run_direction(tp, m, k, d == 1, in, state_of(tp, h0, k, B, H),
                                       state_of(tp, c0, k, B, H), lengths, fin, LD);
        }
        tn_tensor *y = D == 2 ? tn_concat(tp, 2, dir_out, 2) : dir_out[0];
        if (m->residual && l > 0)
            y = tn_add(tp, y, in);
        if (m->layer_norm)
            y = tn_layer_norm_forward(tp, &m->norm[l], y);
        in = l + 1 < m->layers && m->dropout > 0 ? tn_dropout(tp, y, m->dropout) : y;
    }
    if (m->layer_norm && lengths) /* LN made the padded rows its bias: zero them */
        in = tn_mask(tp, in, length_mask(tp, lengths, B, T));
    out->output = in;
    out->h_n = tn_stack(tp, (int)LD, fin, 0);
    if (m->cell == TN_CELL_LSTM)
        out->c_n = tn_stack(tp, (int)LD, fin + LD, 0);
    return tn_tape_status(tp);
}
