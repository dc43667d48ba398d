/* tests/gc_select.c - gradient-check cases for topk's values (the
 * gradient goes to the chosen elements; the others get none). Inputs are
 * uniform on [-1, 1), so neighbours in the order are ~1e-2 apart and the
 * eps 1e-6 perturbations never reorder them. */
#include "gc.h"

static tn_tensor *topk_values(tn_tape *tp, tn_tensor *x, int64_t k, int dim)
{
    tn_tensor *v, *ix;
    return tn_topk(tp, x, k, dim, &v, &ix) == TN_OK ? v : NULL;
}
static tn_tensor *f_top3_last(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return topk_values(tp, x[0], 3, -1);
}
static tn_tensor *f_top2_d0(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return topk_values(tp, x[0], 2, 0);
}
static tn_tensor *f_top_all_view(tn_tape *tp, tn_tensor *const *x, void *c)
{
    (void)c;
    return topk_values(tp, tn_transpose(tp, x[0], 0, 2), 4, 1);
}

#define G(nd, ...)                             \
    {                                          \
        TN_F64, nd, {__VA_ARGS__}, true, -1, 1 \
    }

/* Tolerances: topk copies values, so the check is exact up to the rounding
 * of the difference quotient; 1e-7. float32 forward: the rounding of the
 * inputs, 1e-6. */
static const gc_case cases[] = {
    {TN_OP_TOPK, "k 3 of 7, last dim", f_top3_last, 1, {G(2, 3, 7)}, 1e-7, 1e-6},
    {TN_OP_TOPK, "k 2 of 5, dim 0", f_top2_d0, 1, {G(3, 5, 2, 3)}, 1e-7, 1e-6},
    {TN_OP_TOPK, "k = n of a transposed view", f_top_all_view, 1, {G(3, 2, 4, 3)}, 1e-7, 1e-6},
};

GC_FAMILY(select)
{
    *n = (int)(sizeof cases / sizeof cases[0]);
    return cases;
}
