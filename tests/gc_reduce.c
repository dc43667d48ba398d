/* tests/gc_reduce.c - gradient-check cases for sum and mean (all elements
 * and along a dim, with and without keepdim, on strided views). */
#include "gc.h"

static tn_tensor *f_sum(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_sum(tp, x[0]);
}
static tn_tensor *f_mean(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_mean(tp, x[0]);
}
/* the all-element sum of a transposed (non-contiguous) view, weighted by a
 * second input so that a wrong element mapping changes the gradient */
static tn_tensor *f_sum_view(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_sum(tp, tn_mul(tp, tn_transpose(tp, x[0], 0, 2), x[1]));
}
static tn_tensor *f_mean_narrow(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_mean(tp, tn_narrow(tp, x[0], 1, 1, 3));
}
static tn_tensor *f_sum_d1(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_sum_dim(tp, x[0], 1, false);
}
static tn_tensor *f_sum_dlast_keep(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_sum_dim(tp, x[0], -1, true);
}
static tn_tensor *f_sum_1d(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_sum_dim(tp, x[0], 0, false);
}
static tn_tensor *f_sum_dim_view(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_sum_dim(tp, tn_transpose(tp, x[0], 0, 1), 0, false);
}
static tn_tensor *f_mean_d0_keep(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_mean_dim(tp, x[0], 0, true);
}
static tn_tensor *f_mean_4d(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_mean_dim(tp, x[0], -2, false);
}
static tn_tensor *f_mean_dim_view(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_mean_dim(tp, tn_narrow(tp, tn_transpose(tp, x[0], 1, 2), 2, 1, 2), 1, true);
}

#define G(nd, ...)                             \
    {                                          \
        TN_F64, nd, {__VA_ARGS__}, true, -1, 1 \
    }

/* Tolerances: sums are linear, so central differences are exact up to the
 * rounding of the quotient (~1e-10 relative); 1e-7 leaves margin. float32
 * forward: inputs rounded to float (2^-24 relative each) and summed exactly
 * in double, so |y32 - y64| <= n * 6e-8 for n <= 60 summed values in
 * [-1, 1) (3.6e-6 worst case, ~5e-7 typical); 4e-6 covers the worst case. */
static const gc_case cases[] = {
    {TN_OP_SUM, "all, 3-D", f_sum, 1, {G(3, 2, 3, 4)}, 1e-7, 4e-6},
    {TN_OP_SUM,
     "all of a weighted transposed view",
     f_sum_view,
     2,
     {G(3, 2, 3, 4), G(3, 4, 3, 2)},
     1e-7,
     4e-6},
    {TN_OP_SUM, "dim 1", f_sum_d1, 1, {G(3, 2, 3, 4)}, 1e-7, 4e-6},
    {TN_OP_SUM, "dim -1 keepdim", f_sum_dlast_keep, 1, {G(3, 2, 3, 4)}, 1e-7, 4e-6},
    {TN_OP_SUM, "1-D to [1]", f_sum_1d, 1, {G(1, 7)}, 1e-7, 4e-6},
    {TN_OP_SUM, "dim 0 of a transposed view", f_sum_dim_view, 1, {G(2, 3, 5)}, 1e-7, 4e-6},
    {TN_OP_MEAN, "all, 2-D", f_mean, 1, {G(2, 4, 5)}, 1e-7, 4e-6},
    {TN_OP_MEAN, "all of a narrowed view", f_mean_narrow, 1, {G(2, 3, 5)}, 1e-7, 4e-6},
    {TN_OP_MEAN, "dim 0 keepdim", f_mean_d0_keep, 1, {G(2, 4, 3)}, 1e-7, 4e-6},
    {TN_OP_MEAN, "4-D dim -2", f_mean_4d, 1, {G(4, 2, 3, 4, 2)}, 1e-7, 4e-6},
    {TN_OP_MEAN,
     "dim 1 keepdim of transposed+narrowed view",
     f_mean_dim_view,
     1,
     {G(3, 2, 4, 3)},
     1e-7,
     4e-6},
};

GC_FAMILY(reduce)
{
    *n = (int)(sizeof cases / sizeof cases[0]);
    return cases;
}
