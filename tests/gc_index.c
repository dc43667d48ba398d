/* tests/gc_index.c - gradient-check cases for gather_rows (embedding
 * lookup): repeated ids (scatter-add accumulation), multi-dim ids, strided
 * tables, and a padding_idx that the ids do not hit.
 *
 * A padding_idx that is hit cannot be gradient-checked: by definition its
 * row gets no gradient although the output depends on it (PyTorch's
 * semantics). test_loss checks that case directly (zero gradient). */
#include "gc.h"

static tn_tensor *f_gather(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_gather_rows(tp, x[0], x[1], -1);
}
/* padding_idx 4 while the ids are drawn from [0, 4) */
static tn_tensor *f_gather_pad(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_gather_rows(tp, x[0], x[1], 4);
}
/* table = columns 2..4 of a [4, 7] input: rows contiguous, row stride 7 */
static tn_tensor *f_gather_narrow(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_gather_rows(tp, tn_narrow(tp, x[0], 1, 2, 3), x[1], -1);
}
/* table = transpose of a [3, 5] input: column stride 5 */
static tn_tensor *f_gather_t(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return tn_gather_rows(tp, tn_transpose(tp, x[0], 0, 1), x[1], -1);
}

#define G(nd, ...)                             \
    {                                          \
        TN_F64, nd, {__VA_ARGS__}, true, -1, 1 \
    }
#define IDS(hi, nd, ...)                        \
    {                                           \
        TN_I32, nd, {__VA_ARGS__}, false, 0, hi \
    }

/* Tolerances: gather only copies values, so the check is exact up to the
 * rounding of the difference quotient; 1e-7. float32 forward is the float
 * rounding of the inputs: 1e-6. */
static const gc_case cases[] = {
    {TN_OP_GATHER_ROWS, "1-D ids", f_gather, 2, {G(2, 6, 4), IDS(6, 1, 5)}, 1e-7, 1e-6},
    /* 12 ids over 3 rows: every row repeats, gradients must accumulate */
    {TN_OP_GATHER_ROWS,
     "repeated ids, 2-D ids",
     f_gather,
     2,
     {G(2, 3, 4), IDS(3, 2, 3, 4)},
     1e-7,
     1e-6},
    {TN_OP_GATHER_ROWS, "3-D ids", f_gather, 2, {G(2, 5, 3), IDS(5, 3, 2, 2, 2)}, 1e-7, 1e-6},
    {TN_OP_GATHER_ROWS,
     "padding_idx not hit",
     f_gather_pad,
     2,
     {G(2, 5, 3), IDS(4, 1, 6)},
     1e-7,
     1e-6},
    {TN_OP_GATHER_ROWS,
     "narrowed table view",
     f_gather_narrow,
     2,
     {G(2, 4, 7), IDS(4, 2, 2, 3)},
     1e-7,
     1e-6},
    {TN_OP_GATHER_ROWS,
     "transposed table view",
     f_gather_t,
     2,
     {G(2, 3, 5), IDS(5, 1, 7)},
     1e-7,
     1e-6},
};

GC_FAMILY(index)
{
    *n = (int)(sizeof cases / sizeof cases[0]);
    return cases;
}
