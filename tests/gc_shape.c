/* tests/gc_shape.c - gradient-check cases for views and copies. Outputs
 * are multiplied by a second input where the op alone would be linear with
 * unit weights, so a wrong index mapping shows as a wrong gradient. */
#include "gc.h"

static tn_tensor *f_reshape(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_mul(tp, tn_reshape(tp, x[0], 2, (int64_t[]){4, -1}), x[1]);
}
/* non-contiguous input: reshape copies through contiguous */
static tn_tensor *f_reshape_t(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_mul(tp, tn_reshape(tp, tn_transpose(tp, x[0], 0, 2), 2, (int64_t[]){4, 6}), x[1]);
}
static tn_tensor *f_transpose(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_mul(tp, tn_transpose(tp, x[0], -1, 0), x[1]);
}
static tn_tensor *f_narrow(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_mul(tp, tn_narrow(tp, x[0], 1, 1, 2), x[1]);
}
/* narrow of narrow, then contiguous */
static tn_tensor *f_contiguous(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    tn_tensor *v = tn_narrow(tp, tn_narrow(tp, x[0], 1, 1, 3), 0, 1, 2);
    return tn_mul(tp, tn_contiguous(tp, v), x[1]);
}
static tn_tensor *f_concat(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    tn_tensor *xs[3] = {x[0], tn_transpose(tp, x[1], 0, 1), x[0]};
    return tn_mul(tp, tn_concat(tp, 3, xs, 1), x[2]);
}
static tn_tensor *f_stack(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    tn_tensor *xs[2] = {x[0], tn_transpose(tp, x[1], 0, 1)};
    return tn_mul(tp, tn_stack(tp, 2, xs, 1), x[2]);
}

#define G(nd, ...)                             \
    {                                          \
        TN_F64, nd, {__VA_ARGS__}, true, -1, 1 \
    }

/* Tolerances: all these ops only move values, so the check is exact up to
 * the rounding of the difference quotient (~1e-10); 1e-7 as for the
 * arithmetic ops. float32 forward: one float rounding, 1e-6. */
static const gc_case cases[] = {
    {TN_OP_RESHAPE,
     "contiguous, -1 inferred",
     f_reshape,
     2,
     {G(3, 2, 3, 4), G(2, 4, 6)},
     1e-7,
     1e-6},
    {TN_OP_RESHAPE,
     "of a transposed view",
     f_reshape_t,
     2,
     {G(3, 2, 3, 4), G(2, 4, 6)},
     1e-7,
     1e-6},
    {TN_OP_TRANSPOSE,
     "3-D, negative dim",
     f_transpose,
     2,
     {G(3, 2, 3, 4), G(3, 4, 3, 2)},
     1e-7,
     1e-6},
    {TN_OP_NARROW, "middle columns", f_narrow, 2, {G(2, 3, 5), G(2, 3, 2)}, 1e-7, 1e-6},
    {TN_OP_CONTIGUOUS, "narrow of narrow", f_contiguous, 2, {G(2, 4, 5), G(2, 2, 3)}, 1e-7, 1e-6},
    {TN_OP_CONCAT,
     "dim 1, repeated input, view",
     f_concat,
     3,
     {G(2, 3, 2), G(2, 4, 3), G(2, 3, 8)},
     1e-7,
     1e-6},
    {TN_OP_STACK,
     "new middle dim, view",
     f_stack,
     3,
     {G(2, 3, 4), G(2, 4, 3), G(3, 3, 2, 4)},
     1e-7,
     1e-6},
};

GC_FAMILY(shape)
{
    *n = (int)(sizeof cases / sizeof cases[0]);
    return cases;
}
