/* tests/gc_softmax.c - gradient-check cases for softmax and log_softmax
 * along the last, first and a middle dim, on strided views. */
#include "gc.h"

static tn_tensor *f_sm_last(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_softmax(tp, x[0], -1);
}
static tn_tensor *f_sm_d0(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_softmax(tp, x[0], 0);
}
static tn_tensor *f_sm_mid_view(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_softmax(tp, tn_transpose(tp, x[0], 0, 2), 1);
}
static tn_tensor *f_lsm_last(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_log_softmax(tp, x[0], -1);
}
static tn_tensor *f_lsm_mid(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_log_softmax(tp, x[0], 1);
}
static tn_tensor *f_lsm_view(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_log_softmax(tp, tn_narrow(tp, tn_transpose(tp, x[0], 0, 1), 1, 1, 2), -1);
}
/* masked: x [2, 3, 5] with a random 0/1 mask [2, 1, 5] broadcast over dim
 * 1 (rows with nothing kept give zeros), and one along dim 0 of a
 * transposed view with a full-shape mask */
static tn_tensor *f_smm_last(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_softmax_masked(tp, x[0], -1, x[1]);
}
static tn_tensor *f_smm_view(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_softmax_masked(tp, tn_transpose(tp, x[0], 0, 1), 0, x[1]);
}

#define G(nd, ...)                             \
    {                                          \
        TN_F64, nd, {__VA_ARGS__}, true, -1, 1 \
    }
#define MASK(nd, ...)                          \
    {                                          \
        TN_I32, nd, {__VA_ARGS__}, false, 0, 2 \
    }
#define WIDE(nd, ...)                          \
    {                                          \
        TN_F64, nd, {__VA_ARGS__}, true, -6, 6 \
    }

/* Tolerances: smooth ops, central differences with eps 1e-6 agree to
 * ~1e-9 relative (measured <= 5e-8); 1e-7 is the usual bound. float32
 * forward: outputs are in (0, 1) or moderate logs, computed with float
 * exp/log (a few ulps) from float-rounded inputs: 1e-6 relative to
 * 1 + |y|. */
static const gc_case cases[] = {
    {TN_OP_SOFTMAX, "last dim", f_sm_last, 1, {G(2, 3, 5)}, 1e-7, 1e-6},
    {TN_OP_SOFTMAX, "dim 0, wide range", f_sm_d0, 1, {WIDE(2, 4, 3)}, 1e-7, 1e-6},
    {TN_OP_SOFTMAX,
     "middle dim of a transposed view",
     f_sm_mid_view,
     1,
     {G(3, 4, 3, 2)},
     1e-7,
     1e-6},
    {TN_OP_LOG_SOFTMAX, "last dim, wide range", f_lsm_last, 1, {WIDE(2, 3, 5)}, 1e-7, 1e-6},
    {TN_OP_LOG_SOFTMAX, "middle dim, 4-D", f_lsm_mid, 1, {G(4, 2, 3, 2, 2)}, 1e-7, 1e-6},
    {TN_OP_LOG_SOFTMAX,
     "last dim of transposed+narrowed view",
     f_lsm_view,
     1,
     {G(2, 3, 5)},
     1e-7,
     1e-6},
    {TN_OP_SOFTMAX_MASKED,
     "last dim, mask broadcast over dim 1",
     f_smm_last,
     2,
     {WIDE(3, 2, 3, 5), MASK(3, 2, 1, 5)},
     1e-7,
     1e-6},
    {TN_OP_SOFTMAX_MASKED,
     "dim 0 of a transposed view, full mask",
     f_smm_view,
     2,
     {G(2, 3, 4), MASK(2, 4, 3)},
     1e-7,
     1e-6},
};

GC_FAMILY(softmax)
{
    *n = (int)(sizeof cases / sizeof cases[0]);
    return cases;
}
