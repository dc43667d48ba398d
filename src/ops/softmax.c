/* src/ops/softmax.c - softmax and log-softmax along any dim.
 *
 * The input is seen as rows of n elements along dim (stride sn) indexed by
 * the other dims; each row is independent, so rows run in parallel.
 * Forward subtracts the row maximum before exp (no overflow for logits like
 * 1000) and sums the exponentials in double. Backward uses the output:
 *   softmax:     dx += y * (dy - sum(dy * y))
 *   log_softmax: dx += dy - exp(y) * sum(dy)
 * Node parameters: iparam[0] = dim (normalised).
 *
 * softmax_masked takes an int32 mask broadcastable to x (nonzero keeps an
 * element): masked elements get exactly 0 and no gradient, the others the
 * softmax of the kept ones (what masked_fill(-inf) then softmax gives in
 * PyTorch); a row with nothing kept is all zeros (PyTorch: NaN). The mask,
 * expanded to x's shape, is kept in y->aux; backward is softmax's (y = 0
 * where masked, so those gradients are 0).
 */
#include "ops_internal.h"
#include "rows.h"

/* y (x's shape, contiguous) = softmax or log_softmax of x (strided) along
 * dim d; keep (y's layout, or NULL) masks softmax's elements. */
static void softmax_forward(tn_tensor *y, const tn_tensor *x, int d, bool log_out,
                            const int32_t *keep)
{
    int64_t s[4], sx[4], sy[4], n, snx, sny;
    tn__split_dim(x, d, s, sx, &n, &snx);
    tn__split_dim(y, d, s, sy, &n, &sny);
    int64_t rows = tn_numel(x) / n, es = (int64_t)tn_dtype_size(x->dtype);
    const tn__rows *kr = tn__rows_get(x->dtype); /* the row kernels of the active path */
    TN_FTZ_SCOPE;
    TN_PAR_FOR(rows > 1 && rows * n > TN_PAR_MIN, r, 0, rows, {
        const char *px = (const char *)x->data + tn__row_off(r, s, sx) * es;
        int64_t oy = tn__row_off(r, s, sy);
        char *py = (char *)y->data + oy * es;
        if (keep)
            kr->softmax_masked_fw(n, px, snx, keep + oy, py, sny);
        else
            kr->softmax_fw(n, px, snx, log_out, py, sny);
    });
}

/* dx (x's strides) += backward of y = softmax / log_softmax along iparam[0];
 * y and dy contiguous. */
static void softmax_backward(tn_tensor *y, bool log_out)
{
    tn_tensor *x = tn__node(y)->src[0];
    if (!tn__wants(x))
        return;
    int d = (int)tn__node(y)->iparam[0];
    int64_t s[4], sx[4], sy[4], n, snx, sny;
    tn__split_dim(x, d, s, sx, &n, &snx);
    tn__split_dim(y, d, s, sy, &n, &sny);
    int64_t rows = tn_numel(x) / n, es = (int64_t)tn_dtype_size(x->dtype);
    const tn__rows *kr = tn__rows_get(x->dtype);
    TN_FTZ_SCOPE;
    TN_PAR_FOR(rows > 1 && rows * n > TN_PAR_MIN, r, 0, rows, {
        int64_t oy = tn__row_off(r, s, sy) * es;
        kr->softmax_bw(n, (const char *)y->data + oy, (const char *)y->grad + oy, sny, log_out,
                       (char *)x->grad + tn__row_off(r, s, sx) * es, snx);
    });
}

static tn_tensor *softmax_op(tn_tape *tp, int op, tn_tensor *x, int dim)
{
    const char *name = tn_op_name(op);
    if (!tn__check(tp, name, 1, &x))
        return NULL;
    int d = tn__dim_of(tp, name, dim, x);
    if (d < 0)
        return NULL;
    tn_tensor *y = tn__result(tp, op, x->dtype, x->ndim, x->shape, false, x, NULL, NULL);
    if (!y)
        return NULL;
    tn__node(y)->iparam[0] = d;
    softmax_forward(y, x, d, op == TN_OP_LOG_SOFTMAX, NULL);
    return tn__finish(tp, y);
}

tn_tensor *tn_softmax_masked(tn_tape *tp, tn_tensor *x, int dim, tn_tensor *mask)
{
    if (!tn__check(tp, "softmax_masked", 1, &x))
        return NULL;
    if (!mask) {
        tn_tape_fail(tp, TN_ERR_ARG, "softmax_masked: mask is NULL");
        return NULL;
    }
    if (mask->dtype != TN_I32) {
        tn_tape_fail(tp, TN_ERR_DTYPE, "softmax_masked: mask %s must be int32, got %s",
                     TN_SHP(mask), tn_dtype_name(mask->dtype));
        return NULL;
    }
    int nd;
    int64_t shape[4];
    if (!tn__broadcast_shape(x, mask, &nd, shape) || nd != x->ndim ||
        memcmp(shape, x->shape, sizeof(int64_t) * (size_t)nd) != 0) {
        tn_tape_fail(tp, TN_ERR_SHAPE, "softmax_masked: mask %s does not broadcast to x %s",
                     TN_SHP(mask), TN_SHP(x));
        return NULL;
    }
    int d = tn__dim_of(tp, "softmax_masked", dim, x);
    if (d < 0)
        return NULL;
    int64_t n = tn_numel(x);
    int32_t *keep = tn_tape_alloc(tp, (size_t)n * sizeof *keep);
    tn_tensor *y = keep ? tn__result(tp, TN_OP_SOFTMAX_MASKED, x->dtype, x->ndim, x->shape, false,
                                     x, mask, NULL)
                        : NULL;
    if (!y)
        return NULL;
    /* the mask expanded to x's shape, in y's (row-major) order */
    int64_t f[4], st[4];
    tn__frame(x->ndim, x->shape, f);
    tn__bstrides(mask, x->ndim, x->shape, st);
    const int32_t *M = mask->data;
    int64_t i = 0;
    for (int64_t a = 0; a < f[0]; a++)
        for (int64_t b = 0; b < f[1]; b++)
            for (int64_t c = 0; c < f[2]; c++)
                for (int64_t e = 0; e < f[3]; e++)
                    keep[i++] = M[a * st[0] + b * st[1] + c * st[2] + e * st[3]] != 0;
    tn__node(y)->aux = keep;
    tn__node(y)->iparam[0] = d;
    softmax_forward(y, x, d, false, keep);
    return tn__finish(tp, y);
}

tn_tensor *tn_softmax(tn_tape *tp, tn_tensor *x, int dim)
{
    return softmax_op(tp, TN_OP_SOFTMAX, x, dim);
}

tn_tensor *tn_log_softmax(tn_tape *tp, tn_tensor *x, int dim)
{
    return softmax_op(tp, TN_OP_LOG_SOFTMAX, x, dim);
}

void tn__bw_softmax(tn_tensor *y) { softmax_backward(y, false); }
void tn__bw_softmax_masked(tn_tensor *y) { softmax_backward(y, false); }
void tn__bw_log_softmax(tn_tensor *y) { softmax_backward(y, true); }
