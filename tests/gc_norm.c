/* tests/gc_norm.c - gradient-check cases for layer_norm (with and without
 * weight and bias, 1-D to 4-D x, strided views of x) and batch_norm
 * (training with batch statistics, with and without running statistics to
 * update; evaluation with running statistics, and without them; 2-D to
 * 4-D x, a transposed x). */
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

/* batch_norm: x[0] and optional weight x[1], bias x[2]; running mean and
 * variance (no gradient) after them where the case has them */
static tn_tensor *f_bn_train(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_batch_norm(tp, x[0], x[1], x[2], NULL, NULL, true, 0.1, EPS);
}
static tn_tensor *f_bn_train_running(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c; /* the running statistics change at every call; y does not read them */
    return tn_batch_norm(tp, x[0], x[1], x[2], x[3], x[4], true, 0.1, EPS);
}
static tn_tensor *f_bn_plain(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_batch_norm(tp, x[0], NULL, NULL, NULL, NULL, true, 0.1, EPS);
}
static tn_tensor *f_bn_eval(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_batch_norm(tp, x[0], x[1], x[2], x[3], x[4], false, 0.1, EPS);
}
static tn_tensor *f_bn_eval_batch(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c; /* evaluation without running statistics: the batch's */
    return tn_batch_norm(tp, x[0], x[1], NULL, NULL, NULL, false, 0.1, 0.5);
}
/* x [3, 6] transposed: [6, 3], the channels of stride 1 */
static tn_tensor *f_bn_view(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_batch_norm(tp, tn_transpose(tp, x[0], 0, 1), x[1], x[2], NULL, NULL, true, 0.1, EPS);
}

#define G(nd, ...)                             \
    {                                          \
        TN_F64, nd, {__VA_ARGS__}, true, -2, 2 \
    }
/* running statistics: no gradient; means in [-1, 1), variances in [0.5, 2) */
#define RM(c)                        \
    {                                \
        TN_F64, 1, {c}, false, -1, 1 \
    }
#define RV(c)                         \
    {                                 \
        TN_F64, 1, {c}, false, 0.5, 2 \
    }

/* Tolerance 1e-7 as for the other smooth ops (central differences, eps
 * 1e-6), 3e-7 for the 4-D case: its 72 outputs, each depending on its
 * whole row, give the differences a rounding noise of ~1e-9 absolute
 * (measured 1.4e-7 relative at eps 1e-6, 3e-9 at eps 1e-5, so noise, not
 * a wrong gradient); 5e-7 for batch_norm's [N, C, L] case, whose every
 * output depends on its channel's 20 inputs: measured 3.3e-7 relative on a
 * gradient element of 6e-3, 3e-9 absolute, the same noise. float32 forward
 * 1e-6: sums in double, a few float roundings per element. */
static const gc_case cases[] = {
    {TN_OP_LAYER_NORM,
     "2-D x, weight and bias",
     f_ln_wb,
     3,
     {G(2, 3, 5), G(1, 5), G(1, 5)},
     1e-7,
     1e-6},
    {TN_OP_LAYER_NORM,
     "3-D x, weight and bias",
     f_ln_wb,
     3,
     {G(3, 2, 3, 4), G(1, 4), G(1, 4)},
     1e-7,
     1e-6},
    {TN_OP_LAYER_NORM, "4-D x, no weight or bias", f_ln_plain, 1, {G(4, 2, 2, 3, 6)}, 3e-7, 1e-6},
    {TN_OP_LAYER_NORM, "1-D x, weight only", f_ln_w, 2, {G(1, 7), G(1, 7)}, 1e-7, 1e-6},
    {TN_OP_LAYER_NORM,
     "3-D x, bias only, eps 0.5",
     f_ln_b,
     2,
     {G(3, 3, 2, 5), G(1, 5)},
     1e-7,
     1e-6},
    {TN_OP_LAYER_NORM, "transposed x", f_ln_view, 3, {G(2, 5, 3), G(1, 5), G(1, 5)}, 1e-7, 1e-6},
    {TN_OP_LAYER_NORM,
     "x narrowed along the last dim",
     f_ln_narrow,
     3,
     {G(3, 2, 3, 9), G(1, 4), G(1, 4)},
     1e-7,
     1e-6},
    {TN_OP_BATCH_NORM,
     "training, [N, C], weight and bias",
     f_bn_train,
     3,
     {G(2, 6, 3), G(1, 3), G(1, 3)},
     1e-7,
     1e-6},
    {TN_OP_BATCH_NORM,
     "training, [N, C, L], running statistics updated",
     f_bn_train_running,
     5,
     {G(3, 4, 3, 5), G(1, 3), G(1, 3), RM(3), RV(3)},
     5e-7,
     1e-6},
    {TN_OP_BATCH_NORM,
     "training, [N, C, H, W], no weight or bias",
     f_bn_plain,
     1,
     {G(4, 3, 2, 3, 4)},
     3e-7,
     1e-6},
    {TN_OP_BATCH_NORM,
     "evaluation with running statistics",
     f_bn_eval,
     5,
     {G(4, 2, 3, 2, 2), G(1, 3), G(1, 3), RM(3), RV(3)},
     1e-7,
     1e-6},
    {TN_OP_BATCH_NORM,
     "evaluation without running statistics, eps 0.5",
     f_bn_eval_batch,
     2,
     {G(3, 4, 2, 3), G(1, 2)},
     1e-7,
     1e-6},
    {TN_OP_BATCH_NORM, "transposed x", f_bn_view, 3, {G(2, 3, 6), G(1, 3), G(1, 3)}, 1e-7, 1e-6},
};

GC_FAMILY(norm)
{
    *n = (int)(sizeof cases / sizeof cases[0]);
    return cases;
}
