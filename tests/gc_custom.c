/* tests/gc_custom.c - gradient-check cases for a user-defined op
 * (tn_custom): y = a * tanh(b) element-wise, written as a user would, with
 * one input strided (tn_custom hands the callbacks a contiguous copy). */
#include "gc.h"

#include <math.h>

/* Element i of a contiguous float or double buffer. */
static double at(const tn_tensor *t, const void *p, int64_t i)
{
    return t->dtype == TN_F32 ? ((const float *)p)[i] : ((const double *)p)[i];
}
static void put(const tn_tensor *t, void *p, int64_t i, double v)
{
    if (t->dtype == TN_F32)
        ((float *)p)[i] = (float)v;
    else
        ((double *)p)[i] = v;
}

static tn_status gate_fw(tn_tensor *y, tn_tensor *const *in, int n_in, void *ctx)
{
    (void)n_in, (void)ctx;
    for (int64_t i = 0; i < tn_numel(y); i++)
        put(y, y->data, i, at(in[0], in[0]->data, i) * tanh(at(in[1], in[1]->data, i)));
    return TN_OK;
}

/* da += dy tanh(b), db += dy a (1 - tanh(b)^2) */
static void gate_bw(const tn_tensor *y, tn_tensor *const *in, int n_in, void *ctx)
{
    (void)n_in, (void)ctx;
    for (int64_t i = 0; i < tn_numel(y); i++) {
        double dy = at(y, y->grad, i), a = at(in[0], in[0]->data, i);
        double t = tanh(at(in[1], in[1]->data, i));
        if (in[0]->grad)
            put(in[0], in[0]->grad, i, at(in[0], in[0]->grad, i) + dy * t);
        if (in[1]->grad)
            put(in[1], in[1]->grad, i, at(in[1], in[1]->grad, i) + dy * a * (1 - t * t));
    }
}

static const tn_custom_op gate = {"gate", gate_fw, gate_bw};

static tn_tensor *f_gate(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_custom(tp, &gate, NULL, 2, x, x[0]->ndim, x[0]->shape);
}
/* b as a transposed view: the callbacks get a contiguous copy */
static tn_tensor *f_gate_view(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    tn_tensor *in[2] = {x[0], tn_transpose(tp, x[1], 0, 1)};
    return tn_custom(tp, &gate, NULL, 2, in, 2, x[0]->shape);
}

#define G(nd, ...)                             \
    {                                          \
        TN_F64, nd, {__VA_ARGS__}, true, -2, 2 \
    }

/* Tolerance 1e-7 as for tanh (smooth, central differences at eps 1e-6);
 * float32 forward 1e-6 (a tanh and a product rounded to float). */
static const gc_case cases[] = {
    {TN_OP_CUSTOM, "a * tanh(b)", f_gate, 2, {G(2, 3, 4), G(2, 3, 4)}, 1e-7, 1e-6},
    {TN_OP_CUSTOM, "transposed b", f_gate_view, 2, {G(2, 3, 4), G(2, 4, 3)}, 1e-7, 1e-6},
};

GC_FAMILY(custom)
{
    *n = (int)(sizeof cases / sizeof cases[0]);
    return cases;
}
