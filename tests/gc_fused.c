/* tests/gc_fused.c - gradient-check cases for the fused LSTM and GRU cell
 * ops, with strided (narrowed) inputs as the layers pass them. */
#include "gc.h"

static tn_tensor *f_lstm(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_lstm_cell(tp, x[0], x[1]);
}
static tn_tensor *f_lstm_noc(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_lstm_cell(tp, x[0], NULL);
}
/* gates as a row-strided view (one timestep of [B, T*4H]), c transposed */
static tn_tensor *f_lstm_view(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_lstm_cell(tp, tn_narrow(tp, x[0], 1, 8, 8), tn_transpose(tp, x[1], 0, 1));
}
static tn_tensor *f_gru(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_gru_cell(tp, x[0], x[1], x[2]);
}
/* h = 0: hg is the 1-D bias b_hh broadcast over rows */
static tn_tensor *f_gru_noh(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_gru_cell(tp, x[0], x[1], NULL);
}
static tn_tensor *f_gru_view(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_gru_cell(tp, tn_narrow(tp, x[0], 1, 6, 6), x[1], tn_transpose(tp, x[2], 0, 1));
}

#define G(nd, ...)                             \
    {                                          \
        TN_F64, nd, {__VA_ARGS__}, true, -2, 2 \
    }

/* Tolerance 1e-7 as for the unary ops these fuse (smooth: sigmoid, tanh,
 * products); float32 forward 1e-6 (a few float roundings per element). */
static const gc_case cases[] = {
    {TN_OP_LSTM_CELL, "gates and c", f_lstm, 2, {G(2, 3, 8), G(2, 3, 2)}, 1e-7, 1e-6},
    {TN_OP_LSTM_CELL, "c = NULL", f_lstm_noc, 1, {G(2, 3, 8)}, 1e-7, 1e-6},
    {TN_OP_LSTM_CELL,
     "strided gates, transposed c",
     f_lstm_view,
     2,
     {G(2, 3, 24), G(2, 2, 3)},
     1e-7,
     1e-6},
    {TN_OP_GRU_CELL, "xg, hg, h", f_gru, 3, {G(2, 3, 6), G(2, 3, 6), G(2, 3, 2)}, 1e-7, 1e-6},
    {TN_OP_GRU_CELL, "h = NULL, 1-D hg", f_gru_noh, 2, {G(2, 3, 6), G(1, 6)}, 1e-7, 1e-6},
    {TN_OP_GRU_CELL,
     "strided xg, transposed h",
     f_gru_view,
     3,
     {G(2, 3, 18), G(2, 3, 6), G(2, 2, 3)},
     1e-7,
     1e-6},
};

GC_FAMILY(fused)
{
    *n = (int)(sizeof cases / sizeof cases[0]);
    return cases;
}
