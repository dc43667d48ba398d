/* tests/gc_binary.c - gradient-check cases for add, sub, mul, div. */
#include "gc.h"

static tn_tensor *f_add(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_add(tp, x[0], x[1]);
}
static tn_tensor *f_sub(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_sub(tp, x[0], x[1]);
}
static tn_tensor *f_mul(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_mul(tp, x[0], x[1]);
}
static tn_tensor *f_div(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_div(tp, x[0], x[1]);
}
static tn_tensor *f_square(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_mul(tp, x[0], x[0]);
}
/* a strided view (transpose) on the left, broadcast column on the right */
static tn_tensor *f_mul_view(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_mul(tp, tn_transpose(tp, x[0], 0, 1), x[1]);
}

#define F64G(nd, ...)                          \
    {                                          \
        TN_F64, nd, {__VA_ARGS__}, true, -1, 1 \
    }
#define POS(nd, ...)                            \
    {                                           \
        TN_F64, nd, {__VA_ARGS__}, true, 0.5, 2 \
    }

/* Tolerances: these ops are exact up to rounding, so central differences
 * with eps 1e-6 agree to ~1e-9 relative; 1e-7 leaves margin. float32 forward
 * within 1e-6 relative (a few float ulps). */
static const gc_case cases[] = {
    {TN_OP_ADD, "same shape", f_add, 2, {F64G(2, 3, 4), F64G(2, 3, 4)}, 1e-7, 1e-6},
    {TN_OP_ADD, "row vector over rows", f_add, 2, {F64G(2, 3, 4), F64G(1, 4)}, 1e-7, 1e-6},
    {TN_OP_ADD,
     "4-D broadcast both",
     f_add,
     2,
     {F64G(4, 2, 1, 3, 1), F64G(3, 1, 3, 4)},
     1e-7,
     1e-6},
    {TN_OP_SUB, "broadcast column", f_sub, 2, {F64G(2, 3, 4), F64G(2, 3, 1)}, 1e-7, 1e-6},
    {TN_OP_MUL, "broadcast 3-D", f_mul, 2, {F64G(3, 2, 3, 4), F64G(2, 3, 1)}, 1e-7, 1e-6},
    {TN_OP_MUL, "x * x", f_square, 1, {F64G(2, 3, 4)}, 1e-7, 1e-6},
    {TN_OP_MUL, "transposed view", f_mul_view, 2, {F64G(2, 4, 3), F64G(2, 3, 1)}, 1e-7, 1e-6},
    {TN_OP_DIV, "broadcast row", f_div, 2, {F64G(2, 3, 4), POS(1, 4)}, 1e-7, 1e-6},
};

GC_FAMILY(binary)
{
    *n = (int)(sizeof cases / sizeof cases[0]);
    return cases;
}
