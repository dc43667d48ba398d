/* tests/gc_conv.c - gradient-check cases for conv2d (and conv1d, which
 * records conv2d between reshapes) and the pools: stride 2, padding,
 * dilation, groups 2 and depthwise, 1x1 kernels (the path without columns
 * and the strided one), non-square kernels, strides and inputs, no bias,
 * a strided x, and the 1-D forms. */
#include "gc.h"

/* conv2d with the geometry in ctx-free form: one function per case */
#define CONV2D_FN(fname, bias_arg, ...)                                \
    static tn_tensor *fname(tn_tape *tp, tn_tensor *const *x, void *c) \
    {                                                                  \
        (void)c;                                                       \
        tn_conv2d_opts o = {__VA_ARGS__};                              \
        return tn_conv2d(tp, x[0], x[1], bias_arg, &o);                \
    }
/* stride_h, stride_w, padding_h, padding_w, dilation_h, dilation_w, groups */
CONV2D_FN(f_plain, x[2], 1, 1, 0, 0, 1, 1, 1)
CONV2D_FN(f_s2p1, x[2], 2, 2, 1, 1, 1, 1, 1)
CONV2D_FN(f_dil, x[2], 1, 2, 2, 1, 2, 3, 1)
CONV2D_FN(f_groups, x[2], 1, 1, 1, 1, 1, 1, 2)
CONV2D_FN(f_1x1, x[2], 1, 1, 0, 0, 1, 1, 1)
CONV2D_FN(f_1x1_s2, x[2], 2, 2, 1, 0, 1, 1, 1)
CONV2D_FN(f_nobias, NULL, 2, 1, 0, 2, 1, 1, 1)
CONV2D_FN(f_depthwise, x[2], 1, 1, 1, 1, 1, 1, 3)

/* x given as the transpose of its last two dims (a strided view) */
static tn_tensor *f_strided(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    tn_conv2d_opts o = tn_conv2d_defaults();
    o.padding_h = 1;
    return tn_conv2d(tp, tn_transpose(tp, x[0], 2, 3), x[1], x[2], &o);
}
static tn_tensor *f_conv1d(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_conv1d(tp, x[0], x[1], x[2], 2, 1, 2, 2);
}
static tn_tensor *f_conv1d_k1(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_conv1d(tp, x[0], x[1], NULL, 1, 0, 1, 1);
}

static tn_tensor *f_max_k2(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_max_pool2d(tp, x[0], 2, 2, 0);
}
static tn_tensor *f_max_k3p1(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_max_pool2d(tp, x[0], 3, 2, 1);
}
static tn_tensor *f_max1d(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_max_pool1d(tp, x[0], 3, 1, 1);
}
static tn_tensor *f_avg_incl(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_avg_pool2d(tp, x[0], 3, 2, 1, true);
}
static tn_tensor *f_avg_excl(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_avg_pool2d(tp, x[0], 3, 2, 1, false);
}
static tn_tensor *f_avg_k2s1(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_avg_pool2d(tp, x[0], 2, 1, 0, true);
}
static tn_tensor *f_avg1d(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_avg_pool1d(tp, x[0], 4, 3, 2, false);
}
static tn_tensor *f_adapt_32(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_adaptive_avg_pool2d(tp, x[0], 3, 2);
}
static tn_tensor *f_adapt_11(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_adaptive_avg_pool2d(tp, x[0], 1, 1);
}
static tn_tensor *f_adapt_up(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_adaptive_avg_pool2d(tp, x[0], 5, 4);
}

#define G(nd, ...)                             \
    {                                          \
        TN_F64, nd, {__VA_ARGS__}, true, -1, 1 \
    }

/* Tolerance 1e-7 as for the other smooth ops (the averages are linear in
 * each input; max pooling is linear where the inputs have no ties, and
 * uniform random inputs have none within the 1e-6 step), 5e-7 for conv2d:
 * its 50-100 outputs of magnitude up to ~5 make L = sum(w y) of order 10,
 * whose central differences carry ~1e-16 |L| / eps = 1e-9 of rounding
 * noise, i.e. up to ~3e-7 against the 1e-2 floor (measured 2.6e-7, max
 * abs 4e-9; the same gradients agree with the naive loop of test_conv to
 * 1e-12).
 * float32 forward 1e-6: a window of at most 24 products of values in
 * [-1, 1], each rounded to float (6e-8 relative), gives errors of a few
 * 1e-7 against outputs of order 1. */
static const gc_case cases[] = {
    {TN_OP_CONV2D,
     "3x3, bias",
     f_plain,
     3,
     {G(4, 2, 3, 5, 5), G(4, 4, 3, 3, 3), G(1, 4)},
     5e-7,
     1e-6},
    {TN_OP_CONV2D,
     "stride 2, padding 1",
     f_s2p1,
     3,
     {G(4, 2, 2, 7, 6), G(4, 3, 2, 3, 3), G(1, 3)},
     5e-7,
     1e-6},
    {TN_OP_CONV2D,
     "dilation (2, 3), padding (2, 1), stride (1, 2), 3x2 kernel",
     f_dil,
     3,
     {G(4, 1, 2, 7, 9), G(4, 2, 2, 3, 2), G(1, 2)},
     5e-7,
     1e-6},
    {TN_OP_CONV2D,
     "groups 2, padding 1",
     f_groups,
     3,
     {G(4, 2, 4, 5, 4), G(4, 6, 2, 3, 3), G(1, 6)},
     5e-7,
     1e-6},
    {TN_OP_CONV2D,
     "1x1 kernel (no columns)",
     f_1x1,
     3,
     {G(4, 2, 3, 4, 5), G(4, 5, 3, 1, 1), G(1, 5)},
     5e-7,
     1e-6},
    {TN_OP_CONV2D,
     "1x1 kernel, stride 2, padding (1, 0)",
     f_1x1_s2,
     3,
     {G(4, 2, 3, 5, 4), G(4, 2, 3, 1, 1), G(1, 2)},
     5e-7,
     1e-6},
    {TN_OP_CONV2D,
     "no bias, stride (2, 1), padding (0, 2), 2x4 kernel",
     f_nobias,
     2,
     {G(4, 2, 2, 6, 3), G(4, 3, 2, 2, 4)},
     5e-7,
     1e-6},
    {TN_OP_CONV2D,
     "depthwise (groups 3)",
     f_depthwise,
     3,
     {G(4, 1, 3, 5, 5), G(4, 3, 1, 3, 3), G(1, 3)},
     5e-7,
     1e-6},
    {TN_OP_CONV2D,
     "strided x (transposed view)",
     f_strided,
     3,
     {G(4, 2, 2, 4, 5), G(4, 3, 2, 3, 3), G(1, 3)},
     5e-7,
     1e-6},
    {TN_OP_CONV2D,
     "conv1d: stride 2, padding 1, dilation 2, groups 2",
     f_conv1d,
     3,
     {G(3, 2, 4, 9), G(3, 6, 2, 3), G(1, 6)},
     5e-7,
     1e-6},
    {TN_OP_CONV2D,
     "conv1d: K 1, no bias",
     f_conv1d_k1,
     2,
     {G(3, 3, 2, 5), G(3, 4, 2, 1)},
     5e-7,
     1e-6},
    {TN_OP_MAX_POOL2D, "kernel 2, stride 2", f_max_k2, 1, {G(4, 2, 2, 6, 5)}, 1e-7, 1e-6},
    {TN_OP_MAX_POOL2D,
     "kernel 3, stride 2, padding 1",
     f_max_k3p1,
     1,
     {G(4, 2, 3, 7, 6)},
     1e-7,
     1e-6},
    {TN_OP_MAX_POOL2D,
     "max_pool1d: kernel 3, stride 1, padding 1",
     f_max1d,
     1,
     {G(3, 2, 3, 7)},
     1e-7,
     1e-6},
    {TN_OP_AVG_POOL2D,
     "kernel 3, stride 2, padding 1, padding counted",
     f_avg_incl,
     1,
     {G(4, 2, 2, 7, 6)},
     1e-7,
     1e-6},
    {TN_OP_AVG_POOL2D,
     "kernel 3, stride 2, padding 1, padding not counted",
     f_avg_excl,
     1,
     {G(4, 2, 2, 7, 6)},
     1e-7,
     1e-6},
    {TN_OP_AVG_POOL2D,
     "kernel 2, stride 1 (overlapping)",
     f_avg_k2s1,
     1,
     {G(4, 1, 3, 4, 5)},
     1e-7,
     1e-6},
    {TN_OP_AVG_POOL2D,
     "avg_pool1d: kernel 4, stride 3, padding 2",
     f_avg1d,
     1,
     {G(3, 2, 2, 10)},
     1e-7,
     1e-6},
    {TN_OP_ADAPTIVE_AVG_POOL2D, "7x5 -> 3x2", f_adapt_32, 1, {G(4, 2, 3, 7, 5)}, 1e-7, 1e-6},
    {TN_OP_ADAPTIVE_AVG_POOL2D, "global (1x1)", f_adapt_11, 1, {G(4, 2, 3, 4, 6)}, 1e-7, 1e-6},
    {TN_OP_ADAPTIVE_AVG_POOL2D,
     "3x3 -> 5x4 (overlapping windows)",
     f_adapt_up,
     1,
     {G(4, 1, 2, 3, 3)},
     1e-7,
     1e-6},
};

GC_FAMILY(conv)
{
    *n = (int)(sizeof cases / sizeof cases[0]);
    return cases;
}
