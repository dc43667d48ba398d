/* tests/gc_scan.c - gradient-check cases for tn_scan: a small recurrent
 * step captured as one op (products against a transposed weight, the
 * step's input as addmm's bias, a vector broadcast over the rows, a narrow
 * view), and one that is not captured (a softmax), run eagerly. */
#include "gc.h"

/* h' = tanh(z_a) * sigmoid(z_b + h * p), z = x + h U^T split in halves a, b */
static tn_status step(tn_tape *tp, void *ctx, tn_tensor *const *x, tn_tensor *const *st,
                      tn_tensor **next)
{
    tn_tensor *const *w = ctx; /* U [2H, H], p [H] */
    int64_t H = st[0]->shape[1];
    tn_tensor *z = tn_addmm(tp, x[0], st[0], tn_transpose(tp, w[0], 0, 1));
    tn_tensor *b = tn_add(tp, tn_narrow(tp, z, 1, H, H), tn_mul(tp, st[0], w[1]));
    next[0] = tn_mul(tp, tn_tanh(tp, tn_narrow(tp, z, 1, 0, H)), tn_sigmoid(tp, b));
    return TN_OK;
}

static tn_status step_softmax(tn_tape *tp, void *ctx, tn_tensor *const *x, tn_tensor *const *st,
                              tn_tensor **next)
{
    tn_tensor *const *w = ctx;
    int64_t H = st[0]->shape[1];
    tn_tensor *z = tn_addmm(tp, x[0], st[0], tn_transpose(tp, w[0], 0, 1));
    next[0] = tn_softmax(tp, tn_narrow(tp, z, 1, 0, H), 1);
    return TN_OK;
}

/* inputs: x [T, B, 2H], h0 [B, H], U [2H, H], p [H] */
static tn_tensor *f_scan(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    tn_tensor *w[2] = {x[2], x[3]};
    return tn_scan(tp, step, w, 1, &x[0], 1, &x[1]);
}
static tn_tensor *f_scan_eager(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    tn_tensor *w[2] = {x[2], x[3]};
    return tn_scan(tp, step_softmax, w, 1, &x[0], 1, &x[1]);
}

#define G(nd, ...)                             \
    {                                          \
        TN_F64, nd, {__VA_ARGS__}, true, -1, 1 \
    }

/* Tolerance 1e-7 as for the unary ops the step is made of (smooth: tanh,
 * sigmoid, products), float32 forward 1e-5 (four steps of a few float
 * roundings each, fed back through the state). */
static const gc_case cases[] = {
    {TN_OP_SCAN,
     "captured step",
     f_scan,
     4,
     {G(3, 4, 3, 6), G(2, 3, 3), G(2, 6, 3), G(1, 3)},
     1e-7,
     1e-5},
    {TN_OP_SCAN,
     "eager step (softmax)",
     f_scan_eager,
     4,
     {G(3, 4, 3, 6), G(2, 3, 3), G(2, 6, 3), G(1, 3)},
     1e-7,
     1e-5},
};

GC_FAMILY(scan)
{
    *n = (int)(sizeof cases / sizeof cases[0]);
    return cases;
}
