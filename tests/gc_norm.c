/* tests/gc_norm.c - gradient-check cases for layer_norm: with and without
 * weight and bias, 1-D to 4-D x, strided views of x. */
#include "gc.h"

#define EPS 1e-5

static tn_tensor *f_ln_wb(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_layer_norm(tp, x[0], x[1], x[2], EPS);
}
static tn_tensor *f_ln_plain(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_layer_norm(tp, x[0], NULL, NULL, EPS);
}
static tn_tensor *f_ln_w(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_layer_norm(tp, x[0], x[1], NULL, EPS);
}
static tn_tensor *f_ln_b(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_layer_norm(tp, x[0], NULL, x[1], 0.5);
}
/* x [5, 3] transposed to [3, 5] (last-dim stride 3) */
static tn_tensor *f_ln_view(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_layer_norm(tp, tn_transpose(tp, x[0], 0, 1), x[1], x[2], EPS);
}
/* x a narrow of [2, 3, 9] along the last dim: [2, 3, 4], row stride 9 */
static tn_tensor *f_ln_narrow(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_layer_norm(tp, tn_narrow(tp, x[0], 2, 3, 4), x[1], x[2], EPS);
}

#define G(nd, ...) {TN_F64, nd, {__VA_ARGS__}, true, -2, 2}

/* Tolerance 1e-7 as for the other smooth ops (central differences, eps
 * 1e-6), 3e-7 for the 4-D case: its 72 outputs, each depending on its
 * whole row, give the differences a rounding noise of ~1e-9 absolute
 * (measured 1.4e-7 relative at eps 1e-6, 3e-9 at eps 1e-5, so noise, not
 * a wrong gradient). float32 forward 1e-6: sums in double, a few float
 * roundings per element. */
static const gc_case cases[] = {
    {TN_OP_LAYER_NORM, "2-D x, weight and bias", f_ln_wb, 3, {G(2, 3, 5), G(1, 5), G(1, 5)}, 1e-7, 1e-6},
    {TN_OP_LAYER_NORM, "3-D x, weight and bias", f_ln_wb, 3, {G(3, 2, 3, 4), G(1, 4), G(1, 4)}, 1e-7, 1e-6},
    {TN_OP_LAYER_NORM, "4-D x, no weight or bias", f_ln_plain, 1, {G(4, 2, 2, 3, 6)}, 3e-7, 1e-6},
    {TN_OP_LAYER_NORM, "1-D x, weight only", f_ln_w, 2, {G(1, 7), G(1, 7)}, 1e-7, 1e-6},
    {TN_OP_LAYER_NORM, "3-D x, bias only, eps 0.5", f_ln_b, 2, {G(3, 3, 2, 5), G(1, 5)}, 1e-7, 1e-6},
    {TN_OP_LAYER_NORM, "transposed x", f_ln_view, 3, {G(2, 5, 3), G(1, 5), G(1, 5)}, 1e-7, 1e-6},
    {TN_OP_LAYER_NORM, "x narrowed along the last dim", f_ln_narrow, 3, {G(3, 2, 3, 9), G(1, 4), G(1, 4)}, 1e-7, 1e-6},
};

GC_FAMILY(norm)
{
    *n = (int)(sizeof cases / sizeof cases[0]);
    return cases;
}
