/* tests/gc_matmul.c - gradient-check cases for matmul, bmm, addmm,
 * including transposed and narrowed (strided) views passed to BLIS as
 * strides, and degenerate M/N/K = 1 shapes. */
#include "gc.h"

#define UNUSED (void)c

static tn_tensor *f_mm(tn_tape *tp, tn_tensor *const *x, void *c)
{
    UNUSED;
    return tn_matmul(tp, x[0], x[1]);
}
static tn_tensor *f_bmm(tn_tape *tp, tn_tensor *const *x, void *c)
{
    UNUSED;
    return tn_bmm(tp, x[0], x[1]);
}
static tn_tensor *f_addmm(tn_tape *tp, tn_tensor *const *x, void *c)
{
    UNUSED;
    return tn_addmm(tp, x[0], x[1], x[2]);
}

/* x[0] [K, M] and x[1] [N, K], both transposed: a^T @ b^T */
static tn_tensor *f_mm_tt(tn_tape *tp, tn_tensor *const *x, void *c)
{
    UNUSED;
    return tn_matmul(tp, tn_transpose(tp, x[0], 0, 1), tn_transpose(tp, x[1], 0, 1));
}
/* a^T @ b: x[0] [K, M] */
static tn_tensor *f_mm_tn(tn_tape *tp, tn_tensor *const *x, void *c)
{
    UNUSED;
    return tn_matmul(tp, tn_transpose(tp, x[0], 0, 1), x[1]);
}
/* a @ b^T: x[1] [N, K] (the Linear layer's x @ W^T) */
static tn_tensor *f_mm_nt(tn_tape *tp, tn_tensor *const *x, void *c)
{
    UNUSED;
    return tn_matmul(tp, x[0], tn_transpose(tp, x[1], 0, 1));
}
/* Narrowed views: a = columns 2..5 of x[0] [3, 7] (row stride 7), b = rows
 * 1..4 and columns 1..5 of x[1] [6, 6]. */
static tn_tensor *f_mm_narrow(tn_tape *tp, tn_tensor *const *x, void *c)
{
    UNUSED;
    tn_tensor *a = tn_narrow(tp, x[0], 1, 2, 4);
    tn_tensor *b = tn_narrow(tp, tn_narrow(tp, x[1], 0, 1, 4), 1, 1, 5);
    return tn_matmul(tp, a, b);
}
/* x @ x^T: both operands' gradients land in one buffer. */
static tn_tensor *f_mm_gram(tn_tape *tp, tn_tensor *const *x, void *c)
{
    UNUSED;
    return tn_matmul(tp, x[0], tn_transpose(tp, x[0], 0, 1));
}
/* Transposed narrowed column: a = (column 3 of x[0] [4, 5])^T -> [1, 4]
 * with column stride 5, times x[1] [4, 3]. */
static tn_tensor *f_mm_col(tn_tape *tp, tn_tensor *const *x, void *c)
{
    UNUSED;
    return tn_matmul(tp, tn_transpose(tp, tn_narrow(tp, x[0], 1, 3, 1), 0, 1), x[1]);
}
/* bmm with transposed views: a = x[0] [2, 4, 3] with dims 1,2 swapped;
 * b = x[1] [5, 4, 2] with dims 0,2 swapped -> [2, 4, 5] (batch stride 1). */
static tn_tensor *f_bmm_views(tn_tape *tp, tn_tensor *const *x, void *c)
{
    UNUSED;
    return tn_bmm(tp, tn_transpose(tp, x[0], 1, 2), tn_transpose(tp, x[1], 0, 2));
}
/* bmm of a batch narrowed along M and K: x[0] [3, 5, 6] -> [3, 2, 4]. */
static tn_tensor *f_bmm_narrow(tn_tape *tp, tn_tensor *const *x, void *c)
{
    UNUSED;
    return tn_bmm(tp, tn_narrow(tp, tn_narrow(tp, x[0], 1, 1, 2), 2, 2, 4), x[1]);
}
/* addmm with a transposed weight, as in Linear: bias [N] + x @ W^T. */
static tn_tensor *f_addmm_linear(tn_tape *tp, tn_tensor *const *x, void *c)
{
    UNUSED;
    return tn_addmm(tp, x[0], x[1], tn_transpose(tp, x[2], 0, 1));
}
/* addmm with a [M, N] bias that is a narrowed view of x[0] [3, 8]. */
static tn_tensor *f_addmm_narrow_bias(tn_tape *tp, tn_tensor *const *x, void *c)
{
    UNUSED;
    return tn_addmm(tp, tn_narrow(tp, x[0], 1, 3, 5), x[1], x[2]);
}

#define G(nd, ...)                             \
    {                                          \
        TN_F64, nd, {__VA_ARGS__}, true, -1, 1 \
    }
#define C(nd, ...)                              \
    {                                           \
        TN_F64, nd, {__VA_ARGS__}, false, -1, 1 \
    }

/* Tolerances. The products are linear in each operand (quadratic in x for
 * x @ x^T), so central differences have no truncation error, only rounding:
 * the checked loss L = sum(w * y) is computed to ~1e-16 * |L|, which eps
 * 1e-6 turns into ~1e-10 absolute noise per numeric derivative (max abs
 * errors seen: 2e-11 .. 5e-10). Divided by max(|derivative|, floor 1e-2)
 * that is at most ~5e-8 relative (worst seen: matmul 2.4e-9, bmm 2e-8,
 * addmm 1.5e-8), so 1e-7 everywhere. float32 forward vs float64: each
 * output sums K <= 8 products of values in [-1, 1), float rounding is a few
 * 1e-7 of (1 + |y|); 1e-5 leaves margin. */
static const gc_case cases[] = {
    {TN_OP_MATMUL, "plain", f_mm, 2, {G(2, 3, 4), G(2, 4, 5)}, 1e-7, 1e-5},
    {TN_OP_MATMUL, "a^T @ b^T views", f_mm_tt, 2, {G(2, 4, 3), G(2, 5, 4)}, 1e-7, 1e-5},
    {TN_OP_MATMUL, "a^T @ b", f_mm_tn, 2, {G(2, 4, 3), G(2, 4, 5)}, 1e-7, 1e-5},
    {TN_OP_MATMUL, "a @ b^T", f_mm_nt, 2, {G(2, 3, 4), G(2, 5, 4)}, 1e-7, 1e-5},
    {TN_OP_MATMUL, "narrowed views", f_mm_narrow, 2, {G(2, 3, 7), G(2, 6, 6)}, 1e-7, 1e-5},
    {TN_OP_MATMUL, "x @ x^T", f_mm_gram, 1, {G(2, 3, 4)}, 1e-7, 1e-5},
    {TN_OP_MATMUL, "M = 1, strided column", f_mm_col, 2, {G(2, 4, 5), G(2, 4, 3)}, 1e-7, 1e-5},
    {TN_OP_MATMUL, "N = 1", f_mm, 2, {G(2, 3, 4), G(2, 4, 1)}, 1e-7, 1e-5},
    {TN_OP_MATMUL, "K = 1", f_mm, 2, {G(2, 3, 1), G(2, 1, 5)}, 1e-7, 1e-5},
    {TN_OP_MATMUL, "1 x 1 x 1", f_mm, 2, {G(2, 1, 1), G(2, 1, 1)}, 1e-7, 1e-5},
    {TN_OP_MATMUL, "b constant", f_mm, 2, {G(2, 3, 4), C(2, 4, 2)}, 1e-7, 1e-5},
    {TN_OP_BMM, "plain", f_bmm, 2, {G(3, 2, 3, 4), G(3, 2, 4, 5)}, 1e-7, 1e-5},
    {TN_OP_BMM, "transposed views", f_bmm_views, 2, {G(3, 2, 4, 3), G(3, 5, 4, 2)}, 1e-7, 1e-5},
    {TN_OP_BMM, "narrowed a", f_bmm_narrow, 2, {G(3, 3, 5, 6), G(3, 3, 4, 2)}, 1e-7, 1e-5},
    {TN_OP_BMM, "M = N = 1", f_bmm, 2, {G(3, 3, 1, 4), G(3, 3, 4, 1)}, 1e-7, 1e-5},
    {TN_OP_ADDMM, "bias [N]", f_addmm, 3, {G(1, 5), G(2, 3, 4), G(2, 4, 5)}, 1e-7, 1e-5},
    {TN_OP_ADDMM, "bias [M, N]", f_addmm, 3, {G(2, 3, 5), G(2, 3, 4), G(2, 4, 5)}, 1e-7, 1e-5},
    {TN_OP_ADDMM, "bias [1, N]", f_addmm, 3, {G(2, 1, 5), G(2, 3, 4), G(2, 4, 5)}, 1e-7, 1e-5},
    {TN_OP_ADDMM,
     "linear: x @ W^T",
     f_addmm_linear,
     3,
     {G(1, 6), G(2, 4, 3), G(2, 6, 3)},
     1e-7,
     1e-5},
    {TN_OP_ADDMM,
     "narrowed bias view",
     f_addmm_narrow_bias,
     3,
     {G(2, 3, 8), G(2, 3, 2), G(2, 2, 5)},
     1e-7,
     1e-5},
    {TN_OP_ADDMM, "M = 1, K = 1", f_addmm, 3, {G(1, 4), G(2, 1, 1), G(2, 1, 4)}, 1e-7, 1e-5},
};

GC_FAMILY(matmul)
{
    *n = (int)(sizeof cases / sizeof cases[0]);
    return cases;
}
