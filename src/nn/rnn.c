/* src/nn/rnn.c - RNN (tanh/relu), LSTM and GRU cells and sequence layers,
 * built from the public ops only: backpropagation through time is the
 * tape's.
 *
 * Structure (DESIGN.md section 5): the input projection of all timesteps is
 * one GEMM, xp = x [B*T, I] @ W_ih^T + bias -> [B*T, G*H]; step t reads the
 * row-strided view xp[:, t, :] ([B, G*H], row stride T*G*H) without a copy,
 * adds h @ W_hh^T into it with one addmm, and takes the gates as column
 * views of that [B, G*H] buffer. For RNN and LSTM b_hh is folded into the
 * input projection's bias; for GRU it cannot be (b_hn sits inside the reset
 * product), so it goes with the per-step recurrent product.
 */
#include "tensor/nn.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

const char *tn_cell_name(tn_cell c)
{
    switch (c) {
    case TN_CELL_RNN_TANH: return "rnn_tanh";
    case TN_CELL_RNN_RELU: return "rnn_relu";
    case TN_CELL_LSTM: return "lstm";
    case TN_CELL_GRU: return "gru";
    }
    return "?";
}

int tn_cell_from_name(const char *name)
{
    if (!name)
        return -1;
    if (strcmp(name, "rnn") == 0 || strcmp(name, "rnn_tanh") == 0)
        return TN_CELL_RNN_TANH;
    if (strcmp(name, "rnn_relu") == 0)
        return TN_CELL_RNN_RELU;
    if (strcmp(name, "lstm") == 0)
        return TN_CELL_LSTM;
    if (strcmp(name, "gru") == 0)
        return TN_CELL_GRU;
    return -1;
}

int tn_cell_gates(tn_cell c)
{
    return c == TN_CELL_LSTM ? 4 : c == TN_CELL_GRU ? 3 : 1;
}

static bool cell_valid(tn_cell c)
{
    return c == TN_CELL_RNN_TANH || c == TN_CELL_RNN_RELU || c == TN_CELL_LSTM || c == TN_CELL_GRU;
}

/* Create w_ih, w_hh, b_ih, b_hh named weight_ih<sfx> etc., U(+-1/sqrt(H)). */
static tn_status make_weights(tn_params *ps, const char *prefix, const char *sfx, int64_t gh,
                              int64_t in, int64_t hidden, tn_dtype dt, tn_rng *r,
                              tn_tensor **w_ih, tn_tensor **w_hh, tn_tensor **b_ih,
                              tn_tensor **b_hh)
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
    double k = 1.0 / sqrt((double)hidden);
    tn_tensor *all[4] = {*w_ih, *w_hh, *b_ih, *b_hh};
    for (int i = 0; i < 4; i++)
        tn_tensor_uniform(all[i], r, -k, k);
    return TN_OK;
}

tn_status tn_rnn_init(tn_rnn *m, tn_params *ps, const char *prefix, tn_cell cell,
                      int64_t input_size, int64_t hidden, int layers, bool bidirectional,
                      double dropout, tn_dtype dt, tn_rng *r)
{
    if (!m || !ps || !r || !cell_valid(cell) || input_size < 1 || hidden < 1 || layers < 1 ||
        layers > TN_RNN_MAX_LAYERS || !(dropout >= 0 && dropout < 1))
        return tn_set_error(TN_ERR_ARG,
                            "tn_rnn_init: bad arguments (cell %d, input %lld, hidden %lld, "
                            "layers %d (max %d), dropout %g)",
                            (int)cell, (long long)input_size, (long long)hidden, layers,
                            TN_RNN_MAX_LAYERS, dropout);
    memset(m, 0, sizeof *m);
    m->cell = cell;
    m->input_size = input_size;
    m->hidden = hidden;
    m->layers = layers;
    m->bidirectional = bidirectional;
    m->dropout = dropout;
    int D = bidirectional ? 2 : 1;
    int64_t gh = tn_cell_gates(cell) * hidden;
    for (int l = 0; l < layers; l++) {
        for (int d = 0; d < D; d++) {
            char sfx[32];
            snprintf(sfx, sizeof sfx, "_l%d%s", l, d ? "_reverse" : "");
            int k = l * D + d;
            int64_t in = l == 0 ? input_size : D * hidden;
            tn_status st = make_weights(ps, prefix, sfx, gh, in, hidden, dt, r, &m->w_ih[k],
                                        &m->w_hh[k], &m->b_ih[k], &m->b_hh[k]);
            if (st != TN_OK)
                return st;
        }
    }
    return TN_OK;
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
    return make_weights(ps, prefix, "", tn_cell_gates(cell) * hidden, input_size, hidden, dt, r,
                        &c->w_ih, &c->w_hh, &c->b_ih, &c->b_hh);
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
        tn_tape_fail(tp, TN_ERR_SHAPE,
                     "%s cell: x %s, h %s; expected x [B, %lld] and states [B, %lld]",
                     tn_cell_name(c->cell), tn_shape_str(x, a, sizeof a),
                     h ? tn_shape_str(h, b, sizeof b) : "none", (long long)c->input_size,
                     (long long)H);
        return NULL;
    }
    tn_tensor *xg = tn_addmm(tp, input_bias(tp, c->cell, c->b_ih, c->b_hh), x,
                             tn_transpose(tp, c->w_ih, 0, 1));
    tn_tensor *c2 = NULL;
    tn_tensor *h2 = cell_step(tp, c->cell, H, xg, h, cs, tn_transpose(tp, c->w_hh, 0, 1),
                              c->b_hh, &c2);
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

/* Per-step masks for variable lengths: keep[t] [B, 1] = 1 where t < len
 * (else 0), drop[t] = 1 - keep[t]. Tape tensors, no gradient. */
static bool make_masks(tn_tape *tp, tn_dtype dt, const int32_t *len, int64_t B, int64_t T,
                       tn_tensor **keep, tn_tensor **drop)
{
    for (int64_t t = 0; t < T; t++) {
        keep[t] = tn_tape_tensor(tp, dt, 2, (int64_t[]){B, 1});
        drop[t] = tn_tape_tensor(tp, dt, 2, (int64_t[]){B, 1});
        if (!keep[t] || !drop[t])
            return false;
        for (int64_t b = 0; b < B; b++) {
            tn_tensor_set(keep[t], b, t < len[b] ? 1.0 : 0.0);
            tn_tensor_set(drop[t], b, t < len[b] ? 0.0 : 1.0);
        }
    }
    return true;
}

/* Where keep: new, else old (old may be NULL = zeros). */
static tn_tensor *blend(tn_tape *tp, tn_tensor *nw, tn_tensor *old, tn_tensor *keep,
                        tn_tensor *drop)
{
    tn_tensor *k = tn_mask(tp, nw, keep);
    return old ? tn_add(tp, k, tn_mask(tp, old, drop)) : k;
}

/* One direction of one layer over the whole sequence.
 *   xin [B, T, I] -> returns output [B, T, H]; *hT, *cT final states [B, H].
 * keep/drop: per-step masks or NULL (all sequences full length). */
static tn_tensor *run_direction(tn_tape *tp, const tn_rnn *m, int k, bool reverse,
                                tn_tensor *xin, tn_tensor *h, tn_tensor *c, tn_tensor **keep,
                                tn_tensor **drop, tn_tensor **hs, tn_tensor **hT,
                                tn_tensor **cT)
{
    int64_t B = xin->shape[0], T = xin->shape[1], I = xin->shape[2], H = m->hidden;
    int64_t G = tn_cell_gates(m->cell) * H;
    tn_tensor *x2 = tn_reshape(tp, xin, 2, (int64_t[]){B * T, I});
    tn_tensor *xp = tn_addmm(tp, input_bias(tp, m->cell, m->b_ih[k], m->b_hh[k]), x2,
                             tn_transpose(tp, m->w_ih[k], 0, 1)); /* [B*T, G] */
    tn_tensor *xrow = tn_reshape(tp, xp, 2, (int64_t[]){B, T * G}); /* view */
    /* W_hh^T made contiguous once per sequence: BLIS packs a row-major
     * operand much faster than a transposed view, at every step. */
    tn_tensor *whT = tn_contiguous(tp, tn_transpose(tp, m->w_hh[k], 0, 1));
    for (int64_t s = 0; s < T && !tn_tape_error(tp); s++) {
        int64_t t = reverse ? T - 1 - s : s;
        tn_tensor *xg = tn_narrow(tp, xrow, 1, t * G, G); /* [B, G], row stride T*G */
        tn_tensor *c2 = NULL;
        tn_tensor *h2 = cell_step(tp, m->cell, H, xg, h, c, whT, m->b_hh[k], &c2);
        if (keep) {
            hs[t] = tn_mask(tp, h2, keep[t]);
            h2 = blend(tp, h2, h, keep[t], drop[t]);
            if (m->cell == TN_CELL_LSTM)
                c2 = blend(tp, c2, c, keep[t], drop[t]);
        } else {
            hs[t] = h2;
        }
        h = h2;
        c = c2;
    }
    *hT = h;
    *cT = c;
    return tn_stack(tp, (int)T, hs, 1);
}

tn_status tn_rnn_forward(tn_tape *tp, const tn_rnn *m, tn_tensor *x, tn_tensor *h0,
                         tn_tensor *c0, const int32_t *lengths, tn_rnn_out *out)
{
    if (!tp || !m || !out)
        return tn_set_error(TN_ERR_ARG, "rnn: NULL argument");
    memset(out, 0, sizeof *out);
    if (tn_tape_error(tp))
        return TN_ERR_STATE;
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
                                i ? "c0" : "h0", tn_shape_str(st[i], b, sizeof b),
                                (long long)LD, (long long)B, (long long)H);
    if (c0 && m->cell != TN_CELL_LSTM)
        return tn_tape_fail(tp, TN_ERR_ARG, "%s: c0 given, but only LSTM has a cell state", name);
    if (lengths)
        for (int64_t i = 0; i < B; i++)
            if (lengths[i] < 1 || lengths[i] > T)
                return tn_tape_fail(tp, TN_ERR_INDEX, "%s: lengths[%lld] = %d outside 1..T=%lld",
                                    name, (long long)i, (int)lengths[i], (long long)T);

    /* Scratch arrays from the arena: per-step outputs and masks. */
    tn_tensor **hs = tn_tape_alloc(tp, (size_t)T * sizeof *hs);
    tn_tensor **fin = tn_tape_alloc(tp, (size_t)(2 * LD) * sizeof *fin);
    tn_tensor **keep = NULL, **drop = NULL;
    if (!hs || !fin)
        return TN_ERR_MEMORY;
    if (lengths) {
        keep = tn_tape_alloc(tp, (size_t)T * sizeof *keep);
        drop = tn_tape_alloc(tp, (size_t)T * sizeof *drop);
        if (!keep || !drop || !make_masks(tp, x->dtype, lengths, B, T, keep, drop))
            return TN_ERR_MEMORY;
    }
    tn_tensor *in = x;
    for (int l = 0; l < m->layers; l++) {
        tn_tensor *dir_out[2];
        for (int d = 0; d < D; d++) {
            int k = l * D + d;
            dir_out[d] = run_direction(tp, m, k, d == 1, in, state_of(tp, h0, k, B, H),
                                       state_of(tp, c0, k, B, H), keep, drop, hs, &fin[k],
                                       &fin[LD + k]);
        }
        in = D == 2 ? tn_concat(tp, 2, dir_out, 2) : dir_out[0];
        if (l + 1 < m->layers && m->dropout > 0)
            in = tn_dropout(tp, in, m->dropout);
    }
    out->output = in;
    out->h_n = tn_stack(tp, (int)LD, fin, 0);
    if (m->cell == TN_CELL_LSTM)
        out->c_n = tn_stack(tp, (int)LD, fin + LD, 0);
    return tn_tape_error(tp) ? tn_last_status() : TN_OK;
}
