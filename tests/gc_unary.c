/* tests/gc_unary.c - gradient-check cases for the element-wise ops. */
#include "gc.h"

#define FN(name, expr)                                                \
    static tn_tensor *name(tn_tape *tp, tn_tensor *const *x, void *c) \
    {                                                                 \
        (void)c;                                                      \
        return expr;                                                  \
    }

FN(f_scale, tn_scale(tp, x[0], -2.5))
FN(f_neg, tn_neg(tp, x[0]))
FN(f_exp, tn_exp(tp, x[0]))
FN(f_log, tn_log(tp, x[0]))
FN(f_sigmoid, tn_sigmoid(tp, x[0]))
FN(f_tanh, tn_tanh(tp, x[0]))
FN(f_relu, tn_relu(tp, x[0]))
FN(f_leaky, tn_leaky_relu(tp, x[0], 0.1))
FN(f_gelu, tn_gelu(tp, x[0]))
FN(f_silu, tn_silu(tp, x[0]))
FN(f_mask, tn_mask(tp, x[0], x[1]))
FN(f_dropout, tn_dropout(tp, x[0], 0.3))
/* strided inputs: the transpose of x (inner stride > 1), and a gate of width
 * 4 narrowed out of a [3, 8] buffer (row stride 8 > row length 4) */
FN(f_scale_t, tn_scale(tp, tn_transpose(tp, x[0], 0, 1), 0.75))
FN(f_exp_t, tn_exp(tp, tn_transpose(tp, x[0], 0, 1)))
FN(f_log_t, tn_log(tp, tn_transpose(tp, x[0], 0, 1)))
FN(f_sigmoid_gate, tn_sigmoid(tp, tn_narrow(tp, x[0], 1, 2, 4)))
FN(f_tanh_gate, tn_tanh(tp, tn_narrow(tp, x[0], 1, 4, 4)))
FN(f_relu_t, tn_relu(tp, tn_transpose(tp, x[0], 0, 2)))
FN(f_leaky_gate, tn_leaky_relu(tp, tn_narrow(tp, x[0], 1, 0, 4), 0.2))
FN(f_gelu_t, tn_gelu(tp, tn_transpose(tp, x[0], 1, 2)))
FN(f_silu_gate, tn_silu(tp, tn_narrow(tp, x[0], 1, 4, 4)))
FN(f_mask_t, tn_mask(tp, tn_transpose(tp, x[0], 0, 1), x[1]))
FN(f_dropout_gate, tn_dropout(tp, tn_narrow(tp, x[0], 1, 2, 4), 0.5))
FN(f_neg_t, tn_neg(tp, tn_transpose(tp, x[0], 0, 1)))

#define IN(nd, lo, hi, ...)                     \
    {                                           \
        TN_F64, nd, {__VA_ARGS__}, true, lo, hi \
    }
#define G(nd, ...) IN(nd, -1, 1, __VA_ARGS__)
/* 0/1 mask (no gradient): integers in [0, 2) */
#define M(nd, ...)                             \
    {                                          \
        TN_I32, nd, {__VA_ARGS__}, false, 0, 2 \
    }

/* Tolerances. The gradient check's loss L = sum(w * y) carries rounding
 * noise of a few ulps of |L| ~ 1, which central differences (eps 1e-6) turn
 * into an absolute error of ~3e-10 in every numeric gradient element. The
 * relative error of an element is that over |grad|, so inputs are sampled
 * where |dy/dx| >= ~1e-2; there these smooth ops agree to ~1e-8 and tol 1e-7
 * (the usual bound) holds with margin. Hence: sigmoid in [-3, 3) (its slope
 * at large |x| is below the noise; saturation is checked in test_unary),
 * tanh in [-2, 2), and gelu and silu, whose derivatives cross zero (gelu at
 * x = -0.752, silu at x = -2.400), in two ranges either side of the zero.
 * relu and leaky_relu have a kink at 0: inputs on one side only ([0.1, 2)
 * or [-2, -0.1), 1e5 eps away), one case per side. Dropout and mask are
 * linear in x for a fixed mask (the gradient check reseeds the tape RNG for
 * every evaluation), so exact up to rounding.
 * tol32 (float32 forward vs float64, relative to 1 + |y|): float rounding of
 * the inputs (6e-8 relative) times the derivative plus a few ulps of expf,
 * erff, tanhf: 1e-6 everywhere. */
static const gc_case cases[] = {
    {TN_OP_SCALE, "alpha -2.5", f_scale, 1, {G(2, 3, 4)}, 1e-7, 1e-6},
    {TN_OP_SCALE, "transposed view", f_scale_t, 1, {G(2, 4, 3)}, 1e-7, 1e-6},
    {TN_OP_NEG, "3-D", f_neg, 1, {G(3, 2, 3, 4)}, 1e-7, 1e-6},
    {TN_OP_NEG, "transposed view", f_neg_t, 1, {G(2, 4, 3)}, 1e-7, 1e-6},
    {TN_OP_EXP, "[-2, 2)", f_exp, 1, {IN(2, -2, 2, 3, 4)}, 1e-7, 1e-6},
    {TN_OP_EXP, "transposed view", f_exp_t, 1, {IN(2, -2, 2, 5, 3)}, 1e-7, 1e-6},
    {TN_OP_LOG, "[0.2, 3)", f_log, 1, {IN(2, 0.2, 3, 3, 4)}, 1e-7, 1e-6},
    {TN_OP_LOG, "transposed view", f_log_t, 1, {IN(2, 0.5, 2, 4, 3)}, 1e-7, 1e-6},
    {TN_OP_SIGMOID, "[-3, 3)", f_sigmoid, 1, {IN(2, -3, 3, 4, 5)}, 1e-7, 1e-6},
    {TN_OP_SIGMOID,
     "gate narrowed from [3, 8]",
     f_sigmoid_gate,
     1,
     {IN(2, -3, 3, 3, 8)},
     1e-7,
     1e-6},
    {TN_OP_TANH, "[-2, 2) 4-D", f_tanh, 1, {IN(4, -2, 2, 2, 2, 3, 2)}, 1e-7, 1e-6},
    {TN_OP_TANH, "gate narrowed from [3, 8]", f_tanh_gate, 1, {IN(2, -2, 2, 3, 8)}, 1e-7, 1e-6},
    {TN_OP_RELU, "positive side", f_relu, 1, {IN(2, 0.1, 2, 3, 4)}, 1e-7, 1e-6},
    {TN_OP_RELU, "negative side", f_relu, 1, {IN(2, -2, -0.1, 3, 4)}, 1e-7, 1e-6},
    {TN_OP_RELU, "positive, 3-D transposed", f_relu_t, 1, {IN(3, 0.1, 2, 2, 3, 4)}, 1e-7, 1e-6},
    {TN_OP_LEAKY_RELU, "positive side", f_leaky, 1, {IN(2, 0.1, 2, 3, 4)}, 1e-7, 1e-6},
    {TN_OP_LEAKY_RELU, "negative side", f_leaky, 1, {IN(2, -2, -0.1, 3, 4)}, 1e-7, 1e-6},
    {TN_OP_LEAKY_RELU,
     "negative, gate narrowed",
     f_leaky_gate,
     1,
     {IN(2, -2, -0.1, 3, 8)},
     1e-7,
     1e-6},
    {TN_OP_GELU, "[-0.55, 3)", f_gelu, 1, {IN(2, -0.55, 3, 4, 5)}, 1e-7, 1e-6},
    {TN_OP_GELU, "[-3, -1), 3-D transposed", f_gelu_t, 1, {IN(3, -3, -1, 2, 3, 4)}, 1e-7, 1e-6},
    {TN_OP_SILU, "[-2, 4)", f_silu, 1, {IN(2, -2, 4, 4, 5)}, 1e-7, 1e-6},
    {TN_OP_SILU, "[-6, -2.8), gate narrowed", f_silu_gate, 1, {IN(2, -6, -2.8, 3, 8)}, 1e-7, 1e-6},
    {TN_OP_MASK, "same shape", f_mask, 2, {G(2, 3, 4), M(2, 3, 4)}, 1e-7, 1e-6},
    {TN_OP_MASK, "mask [3, 1] over [2, 3, 4]", f_mask, 2, {G(3, 2, 3, 4), M(2, 3, 1)}, 1e-7, 1e-6},
    {TN_OP_MASK, "row mask over transposed view", f_mask_t, 2, {G(2, 5, 3), M(1, 5)}, 1e-7, 1e-6},
    {TN_OP_DROPOUT, "p 0.3", f_dropout, 1, {G(2, 6, 7)}, 1e-7, 1e-6},
    {TN_OP_DROPOUT, "p 0.5, gate narrowed", f_dropout_gate, 1, {G(2, 3, 8)}, 1e-7, 1e-6},
};

GC_FAMILY(unary)
{
    *n = (int)(sizeof cases / sizeof cases[0]);
    return cases;
}
