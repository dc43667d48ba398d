/* tests/gc_loss.c - gradient-check cases for cross_entropy, nll and mse:
 * all three reductions, ignore_index (outside and inside [0, C)), strided
 * inputs, class weights (tn_cross_entropy_weighted). */
#include "gc.h"

/* Targets fixed on the tape, so that ignored rows are certain to occur. */
static tn_tensor *fixed_targets(tn_tape *tp, int64_t n, const int *v)
{
    tn_tensor *t = tn_tape_tensor(tp, TN_I32, 1, &n);
    for (int64_t i = 0; t && i < n; i++)
        tn_tensor_set(t, i, v[i]);
    return t;
}
static const int tg_neg[6] = {0, 2, -100, 1, -100, 3}; /* ignore_index -100 */
static const int tg_in[6] = {2, 0, 2, 3, 1, 2};        /* ignore_index 2 */

static tn_tensor *f_ce_mean(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_cross_entropy(tp, x[0], x[1], -100, TN_REDUCE_MEAN);
}
static tn_tensor *f_ce_sum(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_cross_entropy(tp, x[0], x[1], -100, TN_REDUCE_SUM);
}
static tn_tensor *f_ce_none(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_cross_entropy(tp, x[0], x[1], -100, TN_REDUCE_NONE);
}
static tn_tensor *f_ce_ign(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_cross_entropy(tp, x[0], fixed_targets(tp, 6, tg_neg), -100, TN_REDUCE_MEAN);
}
static tn_tensor *f_ce_ign_in(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_cross_entropy(tp, x[0], fixed_targets(tp, 6, tg_in), 2, TN_REDUCE_NONE);
}
/* logits = transpose of a [C, N] input */
static tn_tensor *f_ce_view(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_cross_entropy(tp, tn_transpose(tp, x[0], 0, 1), x[1], -100, TN_REDUCE_SUM);
}
/* class weights x[2] [C] (no gradient): every reduction, with ignored rows */
static tn_tensor *f_cew_mean(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_cross_entropy_weighted(tp, x[0], x[1], x[2], -100, TN_REDUCE_MEAN);
}
static tn_tensor *f_cew_sum(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_cross_entropy_weighted(tp, x[0], x[1], x[2], -100, TN_REDUCE_SUM);
}
static tn_tensor *f_cew_none(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_cross_entropy_weighted(tp, x[0], x[1], x[2], -100, TN_REDUCE_NONE);
}
static tn_tensor *f_cew_ign(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_cross_entropy_weighted(tp, x[0], fixed_targets(tp, 6, tg_neg), x[1], -100,
                                     TN_REDUCE_MEAN);
}
static tn_tensor *f_cew_view(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_cross_entropy_weighted(tp, tn_transpose(tp, x[0], 0, 1), x[1], x[2], -100,
                                     TN_REDUCE_MEAN);
}
static tn_tensor *f_nll_mean(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_nll(tp, x[0], x[1], -100, TN_REDUCE_MEAN);
}
static tn_tensor *f_nll_sum(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_nll(tp, x[0], x[1], -100, TN_REDUCE_SUM);
}
static tn_tensor *f_nll_ign(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_nll(tp, x[0], fixed_targets(tp, 6, tg_in), 2, TN_REDUCE_NONE);
}
/* the unfused composition cross_entropy replaces */
static tn_tensor *f_nll_lsm(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_nll(tp, tn_log_softmax(tp, x[0], -1), fixed_targets(tp, 6, tg_neg), -100,
                  TN_REDUCE_MEAN);
}
static tn_tensor *f_mse_mean(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_mse(tp, x[0], x[1], TN_REDUCE_MEAN);
}
static tn_tensor *f_mse_sum(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_mse(tp, x[0], x[1], TN_REDUCE_SUM);
}
static tn_tensor *f_mse_none(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_mse(tp, x[0], x[1], TN_REDUCE_NONE);
}
static tn_tensor *f_mse_view(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_mse(tp, tn_transpose(tp, x[0], 0, 1), tn_narrow(tp, x[1], 1, 1, 3), TN_REDUCE_MEAN);
}

/* logits in [-1.5, 1.5): wider ranges push the difference quotient of a
 * summed loss (|L| ~ 10) to its rounding noise, ~|L| * 2^-52 / eps = 2e-9
 * absolute; test_loss covers logits of +-1000 directly. */
#define L(nd, ...)                                 \
    {                                              \
        TN_F64, nd, {__VA_ARGS__}, true, -1.5, 1.5 \
    }
#define LOGP(nd, ...)                             \
    {                                             \
        TN_F64, nd, {__VA_ARGS__}, true, -4, -0.1 \
    }
#define G(nd, ...)                             \
    {                                          \
        TN_F64, nd, {__VA_ARGS__}, true, -1, 1 \
    }
#define TG(hi, n)                    \
    {                                \
        TN_I32, 1, {n}, false, 0, hi \
    }
/* class weights: no gradient, in [0.2, 3) */
#define W(n)                          \
    {                                 \
        TN_F64, 1, {n}, false, 0.2, 3 \
    }

/* Tolerances: cross-entropy is smooth (log-sum-exp), nll and mse are linear
 * and quadratic: central differences agree to ~1e-9 relative; 1e-7 is the
 * usual bound. float32 forward: cross-entropy sums exp in double from
 * float-rounded logits, nll copies values, mse squares float differences:
 * all within a few float ulps, 1e-6 relative to 1 + |y|. Class weights
 * only scale rows by constants (float32: weights rounded to float, 6e-8
 * relative), so the same bounds hold. */
static const gc_case cases[] = {
    {TN_OP_CROSS_ENTROPY, "mean", f_ce_mean, 2, {L(2, 5, 4), TG(4, 5)}, 1e-7, 1e-6},
    {TN_OP_CROSS_ENTROPY, "sum", f_ce_sum, 2, {L(2, 5, 4), TG(4, 5)}, 1e-7, 1e-6},
    {TN_OP_CROSS_ENTROPY, "none", f_ce_none, 2, {L(2, 5, 4), TG(4, 5)}, 1e-7, 1e-6},
    {TN_OP_CROSS_ENTROPY, "ignore_index -100, mean", f_ce_ign, 1, {L(2, 6, 4)}, 1e-7, 1e-6},
    {TN_OP_CROSS_ENTROPY,
     "ignore_index 2 (a class), none",
     f_ce_ign_in,
     1,
     {L(2, 6, 4)},
     1e-7,
     1e-6},
    {TN_OP_CROSS_ENTROPY,
     "transposed logits view, sum",
     f_ce_view,
     2,
     {L(2, 4, 5), TG(4, 5)},
     1e-7,
     1e-6},
    {TN_OP_CROSS_ENTROPY,
     "class weights, mean",
     f_cew_mean,
     3,
     {L(2, 5, 4), TG(4, 5), W(4)},
     1e-7,
     1e-6},
    {TN_OP_CROSS_ENTROPY,
     "class weights, sum",
     f_cew_sum,
     3,
     {L(2, 5, 4), TG(4, 5), W(4)},
     1e-7,
     1e-6},
    {TN_OP_CROSS_ENTROPY,
     "class weights, none",
     f_cew_none,
     3,
     {L(2, 5, 4), TG(4, 5), W(4)},
     1e-7,
     1e-6},
    {TN_OP_CROSS_ENTROPY,
     "class weights, ignore_index -100, mean",
     f_cew_ign,
     2,
     {L(2, 6, 4), W(4)},
     1e-7,
     1e-6},
    {TN_OP_CROSS_ENTROPY,
     "class weights, transposed logits view, mean",
     f_cew_view,
     3,
     {L(2, 4, 5), TG(4, 5), W(4)},
     1e-7,
     1e-6},
    {TN_OP_NLL, "mean", f_nll_mean, 2, {LOGP(2, 5, 4), TG(4, 5)}, 1e-7, 1e-6},
    {TN_OP_NLL, "sum", f_nll_sum, 2, {LOGP(2, 5, 4), TG(4, 5)}, 1e-7, 1e-6},
    {TN_OP_NLL, "ignore_index 2 (a class), none", f_nll_ign, 1, {LOGP(2, 6, 4)}, 1e-7, 1e-6},
    {TN_OP_NLL,
     "after log_softmax, ignore_index -100, mean",
     f_nll_lsm,
     1,
     {L(2, 6, 4)},
     1e-7,
     1e-6},
    {TN_OP_MSE, "mean", f_mse_mean, 2, {G(2, 3, 4), G(2, 3, 4)}, 1e-7, 1e-6},
    {TN_OP_MSE, "sum", f_mse_sum, 2, {G(3, 2, 3, 2), G(3, 2, 3, 2)}, 1e-7, 1e-6},
    {TN_OP_MSE, "none", f_mse_none, 2, {G(2, 3, 4), G(2, 3, 4)}, 1e-7, 1e-6},
    {TN_OP_MSE,
     "transposed and narrowed views",
     f_mse_view,
     2,
     {G(2, 3, 4), G(2, 4, 5)},
     1e-7,
     1e-6},
};

GC_FAMILY(loss)
{
    *n = (int)(sizeof cases / sizeof cases[0]);
    return cases;
}
