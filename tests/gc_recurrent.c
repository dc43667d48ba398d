/* tests/gc_recurrent.c - gradient-check cases for the recurrent op: every
 * cell, both directions, with and without initial states, biases and
 * lengths, and x as a strided view. B = 3, T = 4, I = 2, H = 2. Inputs in
 * order: x, w_ih, w_hh, b_ih, b_hh, h0, c0 (as the case needs). */
#include "gc.h"

static const int32_t lens[3] = {4, 2, 1}; /* one full, one short, one of a step */

static tn_tensor *run(tn_tape *tp, tn_cell cell, tn_tensor *const *x, bool bias, bool h0, bool c0,
                      bool use_len, bool reverse)
{
    tn_rnn_weights w = {x[1], x[2], bias ? x[3] : NULL, bias ? x[4] : NULL};
    int k = bias ? 5 : 3;
    tn_tensor *h = h0 ? x[k++] : NULL, *c = c0 ? x[k] : NULL;
    return tn_recurrent(tp, cell, &w, x[0], h, c, use_len ? lens : NULL, reverse);
}

static tn_tensor *f_lstm(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return run(tp, TN_CELL_LSTM, x, true, true, true, false, false);
}
static tn_tensor *f_lstm_rev_len(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return run(tp, TN_CELL_LSTM, x, true, true, true, true, true);
}
static tn_tensor *f_lstm_len_nostate(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return run(tp, TN_CELL_LSTM, x, true, false, false, true, false);
}
static tn_tensor *f_gru(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return run(tp, TN_CELL_GRU, x, true, true, false, false, false);
}
static tn_tensor *f_gru_rev_len(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return run(tp, TN_CELL_GRU, x, true, true, false, true, true);
}
static tn_tensor *f_gru_nobias(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return run(tp, TN_CELL_GRU, x, false, false, false, false, true);
}
static tn_tensor *f_tanh(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return run(tp, TN_CELL_RNN_TANH, x, true, true, false, false, false);
}
static tn_tensor *f_relu_rev_len(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return run(tp, TN_CELL_RNN_RELU, x, true, true, false, true, true);
}
/* x as the first two columns of [3, 4, 5] (rows of one stride, 5) */
static tn_tensor *f_lstm_xview(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    tn_tensor *v[5] = {tn_narrow(tp, x[0], 2, 1, 2), x[1], x[2], x[3], x[4]};
    return run(tp, TN_CELL_LSTM, v, true, false, false, false, false);
}
/* x as a transpose ([4, 3, 2] -> [3, 4, 2]): the op copies it */
static tn_tensor *f_gru_xt(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    tn_tensor *v[5] = {tn_transpose(tp, x[0], 0, 1), x[1], x[2], x[3], x[4]};
    return run(tp, TN_CELL_GRU, v, true, false, false, true, false);
}

#define G(nd, ...)                             \
    {                                          \
        TN_F64, nd, {__VA_ARGS__}, true, -1, 1 \
    }
#define X    G(3, 3, 4, 2)
#define W(g) G(2, g * 2, 2), G(2, g * 2, 2), G(1, g * 2), G(1, g * 2)
#define S    G(2, 3, 2)

/* Tolerance 1e-7 as for the fused cells (smooth functions of the inputs,
 * composed over 4 steps; measured worst ~1e-8). float32 forward 1e-5: the
 * float error of ~10 roundings per gate compounds over the 4 steps. The
 * relu case's inputs keep pre-activations away from the kink in practice
 * (the check would fail loudly if one fell within eps of it). */
static const gc_case cases[] = {
    {TN_OP_RECURRENT, "lstm, h0, c0", f_lstm, 7, {X, W(4), S, S}, 1e-7, 1e-5},
    {TN_OP_RECURRENT,
     "lstm reverse, lengths, h0, c0",
     f_lstm_rev_len,
     7,
     {X, W(4), S, S},
     1e-7,
     1e-5},
    {TN_OP_RECURRENT, "lstm, lengths, zero state", f_lstm_len_nostate, 5, {X, W(4)}, 1e-7, 1e-5},
    {TN_OP_RECURRENT, "gru, h0", f_gru, 6, {X, W(3), S}, 1e-7, 1e-5},
    {TN_OP_RECURRENT, "gru reverse, lengths, h0", f_gru_rev_len, 6, {X, W(3), S}, 1e-7, 1e-5},
    {TN_OP_RECURRENT,
     "gru reverse, no bias",
     f_gru_nobias,
     3,
     {X, G(2, 6, 2), G(2, 6, 2)},
     1e-7,
     1e-5},
    {TN_OP_RECURRENT, "rnn_tanh, h0", f_tanh, 6, {X, W(1), S}, 1e-7, 1e-5},
    {TN_OP_RECURRENT, "rnn_relu reverse, lengths, h0", f_relu_rev_len, 6, {X, W(1), S}, 1e-7, 1e-5},
    {TN_OP_RECURRENT, "lstm, x a column view", f_lstm_xview, 5, {G(3, 3, 4, 5), W(4)}, 1e-7, 1e-5},
    {TN_OP_RECURRENT, "gru, lengths, x transposed", f_gru_xt, 5, {G(3, 4, 3, 2), W(3)}, 1e-7, 1e-5},
};

GC_FAMILY(recurrent)
{
    *n = (int)(sizeof cases / sizeof cases[0]);
    return cases;
}
