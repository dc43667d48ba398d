/* tests/gc_linear_loss.c - gradient-check cases for linear_cross_entropy
 * (tn_linear_cross_entropy): with and without bias, class weights,
 * ignore_index rows (outside [0, V) and a class), label smoothing, every
 * reduction ('none' takes the recomputing backward), strided h and weight
 * views, and 260 rows (blocks of 256 and a ragged 4); the scalar losses
 * both with the logits' gradient kept whole (N V <= (N + V) H, the small
 * cases) and with gradient buffers (V > H, and 260 rows). */
#include "gc.h"

/* Targets on the tape: row i gets (3 i + 1) mod v, and every row with
 * i % every == every - 1 gets `ignore` (every 0: none ignored). */
static tn_tensor *pattern_targets(tn_tape *tp, int64_t n, int64_t v, int every, int ignore)
{
    tn_tensor *t = tn_tape_tensor(tp, TN_I32, 1, &n);
    for (int64_t i = 0; t && i < n; i++)
        tn_tensor_set(t, i, every && i % every == every - 1 ? ignore : (3 * i + 1) % v);
    return t;
}

/* x = {h [N, H], weight [V, H], bias [V] or class weight [V] ...}: the
 * argument lists differ per case, spelled out in each function. */
static tn_tensor *f_mean(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_linear_cross_entropy(tp, x[0], x[1], x[2], pattern_targets(tp, 5, 4, 0, -100), NULL,
                                   -100, 0.0, TN_REDUCE_MEAN);
}
static tn_tensor *f_sum_nobias(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_linear_cross_entropy(tp, x[0], x[1], NULL, pattern_targets(tp, 5, 4, 0, -100), NULL,
                                   -100, 0.0, TN_REDUCE_SUM);
}
static tn_tensor *f_none(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_linear_cross_entropy(tp, x[0], x[1], x[2], pattern_targets(tp, 6, 4, 3, -100), NULL,
                                   -100, 0.0, TN_REDUCE_NONE);
}
/* x[3] class weights */
static tn_tensor *f_cw_ign_mean(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_linear_cross_entropy(tp, x[0], x[1], x[2], pattern_targets(tp, 6, 4, 3, -100), x[3],
                                   -100, 0.0, TN_REDUCE_MEAN);
}
static tn_tensor *f_ls_cw_ign_mean(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_linear_cross_entropy(tp, x[0], x[1], x[2], pattern_targets(tp, 6, 4, 3, -100), x[3],
                                   -100, 0.1, TN_REDUCE_MEAN);
}
/* ignore_index 2 is a class: rows with target 2 are skipped */
static tn_tensor *f_ls_ign_class_sum(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_linear_cross_entropy(tp, x[0], x[1], NULL, pattern_targets(tp, 6, 4, 0, 2), NULL, 2,
                                   0.25, TN_REDUCE_SUM);
}
/* x[2] class weights, no bias */
static tn_tensor *f_ls_cw_none(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_linear_cross_entropy(tp, x[0], x[1], NULL, pattern_targets(tp, 6, 4, 4, -100), x[2],
                                   -100, 0.3, TN_REDUCE_NONE);
}
/* h = narrow of a [5, 6] input (columns 1..3), weight = transpose of [3, 4] */
static tn_tensor *f_views(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_linear_cross_entropy(tp, tn_narrow(tp, x[0], 1, 1, 3), tn_transpose(tp, x[1], 0, 1),
                                   x[2], pattern_targets(tp, 5, 4, 0, -100), x[3], -100, 0.1,
                                   TN_REDUCE_MEAN);
}
/* V 12 > H 2: the gradient-buffer path on a small case (the others up to
 * here keep G [N, V] whole: N V <= (N + V) H) */
static tn_tensor *f_buffers_sum(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_linear_cross_entropy(tp, x[0], x[1], NULL, pattern_targets(tp, 6, 12, 4, -100), NULL,
                                   -100, 0.15, TN_REDUCE_SUM);
}
/* 260 rows: blocks of 256 and 4 */
static tn_tensor *f_blocks(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_linear_cross_entropy(tp, x[0], x[1], x[2], pattern_targets(tp, 260, 5, 6, -100), x[3],
                                   -100, 0.1, TN_REDUCE_MEAN);
}
static tn_tensor *f_blocks_none(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_linear_cross_entropy(tp, x[0], x[1], x[2], pattern_targets(tp, 260, 5, 6, -100), x[3],
                                   -100, 0.1, TN_REDUCE_NONE);
}

#define G(nd, ...)                             \
    {                                          \
        TN_F64, nd, {__VA_ARGS__}, true, -1, 1 \
    }
/* class weights: no gradient, in [0.2, 3) */
#define W(n)                          \
    {                                 \
        TN_F64, 1, {n}, false, 0.2, 3 \
    }

/* Tolerances: the loss is log-sum-exp of bilinear logits (|x| <= 3 here),
 * smooth: central differences agree to ~1e-9 relative, 1e-7 is the bound
 * of the other losses. float32 forward: logits from a float GEMM of <= 6
 * terms (a few ulps, 1e-7 relative), losses summed in double: 1e-6
 * relative to 1 + |y|, as cross_entropy. The 260-row 'none' case checks
 * L = sum_i w_i loss_i over 260 rows (|L| ~ 3e2): rounding noise of L,
 * ~1e-15 relative, over 2 eps = 2e-6 is a few 1e-9 absolute in the
 * quotient, a few 1e-7 against the checker's 1e-2 floor (measured
 * 3.3e-7): 1e-6 there. */
static const gc_case cases[] = {
    {TN_OP_LINEAR_CROSS_ENTROPY,
     "bias, mean",
     f_mean,
     3,
     {G(2, 5, 3), G(2, 4, 3), G(1, 4)},
     1e-7,
     1e-6},
    {TN_OP_LINEAR_CROSS_ENTROPY,
     "no bias, sum",
     f_sum_nobias,
     2,
     {G(2, 5, 3), G(2, 4, 3)},
     1e-7,
     1e-6},
    {TN_OP_LINEAR_CROSS_ENTROPY,
     "bias, ignore_index -100, none",
     f_none,
     3,
     {G(2, 6, 3), G(2, 4, 3), G(1, 4)},
     1e-7,
     1e-6},
    {TN_OP_LINEAR_CROSS_ENTROPY,
     "class weights, ignore_index -100, mean",
     f_cw_ign_mean,
     4,
     {G(2, 6, 3), G(2, 4, 3), G(1, 4), W(4)},
     1e-7,
     1e-6},
    {TN_OP_LINEAR_CROSS_ENTROPY,
     "label smoothing 0.1, class weights, ignore_index -100, mean",
     f_ls_cw_ign_mean,
     4,
     {G(2, 6, 3), G(2, 4, 3), G(1, 4), W(4)},
     1e-7,
     1e-6},
    {TN_OP_LINEAR_CROSS_ENTROPY,
     "label smoothing 0.25, no bias, ignore_index 2 (a class), sum",
     f_ls_ign_class_sum,
     2,
     {G(2, 6, 3), G(2, 4, 3)},
     1e-7,
     1e-6},
    {TN_OP_LINEAR_CROSS_ENTROPY,
     "label smoothing 0.3, class weights, no bias, none",
     f_ls_cw_none,
     3,
     {G(2, 6, 3), G(2, 4, 3), W(4)},
     1e-7,
     1e-6},
    {TN_OP_LINEAR_CROSS_ENTROPY,
     "narrowed h, transposed weight, smoothing, class weights, mean",
     f_views,
     4,
     {G(2, 5, 6), G(2, 3, 4), G(1, 4), W(4)},
     1e-7,
     1e-6},
    {TN_OP_LINEAR_CROSS_ENTROPY,
     "V > H: gradient buffers, no bias, smoothing, sum",
     f_buffers_sum,
     2,
     {G(2, 6, 2), G(2, 12, 2)},
     1e-7,
     1e-6},
    {TN_OP_LINEAR_CROSS_ENTROPY,
     "260 rows (blocks of 256 and 4), smoothing, class weights, mean",
     f_blocks,
     4,
     {G(2, 260, 3), G(2, 5, 3), G(1, 5), W(5)},
     1e-7,
     1e-6},
    {TN_OP_LINEAR_CROSS_ENTROPY,
     "260 rows (blocks of 256 and 4), smoothing, class weights, none",
     f_blocks_none,
     4,
     {G(2, 260, 3), G(2, 5, 3), G(1, 5), W(5)},
     1e-6,
     1e-6},
};

GC_FAMILY(linear_loss)
{
    *n = (int)(sizeof cases / sizeof cases[0]);
    return cases;
}
