/* src/ops/binary.c - add, sub, mul, div with numpy broadcasting.
 *
 * Kernels work in a 4-D frame s (the result's shape right-aligned) with
 * per-operand strides in that frame (0 where the operand broadcasts), so
 * strided views and broadcast operands need no copies. Rows (dims 0..2) run
 * in parallel; a gradient into a broadcast operand is accumulated serially
 * because several rows add into the same element.
 */
#include "ops_internal.h"
#include "rows.h"

/* Forward: y (frame s, contiguous) = a op b; a, b at strides sa, sb; a row
 * at a time through the row kernels of the active path (rows.h: zip_fw). */
static void binary_forward(int op, tn_tensor *y, const tn_tensor *a, const tn_tensor *b)
{
    int64_t s[4], sa[4], sb[4], sy[4];
    tn__frame(y->ndim, y->shape, s);
    tn__bstrides(a, y->ndim, y->shape, sa);
    tn__bstrides(b, y->ndim, y->shape, sb);
    tn__bstrides(y, y->ndim, y->shape, sy);
    int64_t rows = s[0] * s[1] * s[2], n = s[3], es = (int64_t)tn_dtype_size(y->dtype);
    const tn__rows *kr = tn__rows_get(y->dtype);
    tn__zip z = tn__zip_of(op);
    TN_FTZ_SCOPE;
    TN_PAR_FOR(rows > 1 && rows * n > TN_PAR_MIN, r, 0, rows, {
        kr->zip_fw(z, n, (const char *)a->data + tn__row_off(r, s, sa) * es, sa[3],
                   (const char *)b->data + tn__row_off(r, s, sb) * es, sb[3],
                   (char *)y->data + tn__row_off(r, s, sy) * es);
    });
}

/* Backward into operand `which` (0 = a, 1 = b) of y = a op b (rows.h:
 * zip_bw). A broadcast operand's rows add into the same elements, so its
 * gradient is accumulated serially. */
static void binary_backward(tn_tensor *y, int which)
{
    tn_tensor *a = tn__node(y)->src[0], *b = tn__node(y)->src[1], *x = tn__node(y)->src[which];
    if (!tn__wants(x))
        return;
    int64_t s[4], sa[4], sb[4], sy[4], sx[4];
    tn__frame(y->ndim, y->shape, s);
    tn__bstrides(a, y->ndim, y->shape, sa);
    tn__bstrides(b, y->ndim, y->shape, sb);
    tn__bstrides(y, y->ndim, y->shape, sy);
    tn__bstrides(x, y->ndim, y->shape, sx);
    int64_t rows = s[0] * s[1] * s[2], n = s[3], es = (int64_t)tn_dtype_size(y->dtype);
    bool bcast = tn__is_broadcast(sx, s);
    /* x's gradient not cleared yet (tn_node.fresh; x contiguous): a
     * broadcast x's (smaller) whole gradient now, else each block of rows
     * (the same rows of y's frame) right before its sums */
    bool fresh = tn__fresh(y, which), clear = fresh && !bcast;
    if (fresh && bcast)
        memset(x->grad, 0, (size_t)(tn_numel(x) * es));
    int64_t blk = TN_BW_BLOCK_BYTES / (n * es) + 1; /* rows per block */
    bool par = rows > blk && !bcast && rows * n > TN_PAR_MIN;
    const tn__rows *kr = tn__rows_get(y->dtype);
    tn__zip z = tn__zip_of(tn__node(y)->op);
    TN_FTZ_SCOPE;
    TN_PAR_FOR(par, q, 0, (rows + blk - 1) / blk, {
        int64_t r0 = q * blk, r1 = r0 + blk < rows ? r0 + blk : rows;
        if (clear)
            memset((char *)x->grad + r0 * n * es, 0, (size_t)((r1 - r0) * n * es));
        for (int64_t r = r0; r < r1; r++)
            kr->zip_bw(z, which, n, (const char *)a->data + tn__row_off(r, s, sa) * es, sa[3],
                       (const char *)b->data + tn__row_off(r, s, sb) * es, sb[3],
                       (const char *)y->grad + tn__row_off(r, s, sy) * es,
                       (char *)x->grad + tn__row_off(r, s, sx) * es, sx[3]);
    });
}

static tn_tensor *binary(tn_tape *tp, int op, tn_tensor *a, tn_tensor *b)
{
    tn_tensor *in[2] = {a, b};
    if (!tn__check(tp, tn_op_name(op), 2, in))
        return NULL;
    int nd;
    int64_t shape[4];
    if (!tn__broadcast_shape(a, b, &nd, shape)) {
        tn_tape_fail(tp, TN_ERR_SHAPE, "%s: shapes %s and %s do not broadcast", tn_op_name(op),
                     TN_SHP(a), TN_SHP(b));
        return NULL;
    }
    tn_tensor *y = tn__result(tp, op, a->dtype, nd, shape, false, a, b, NULL);
    if (!y)
        return NULL;
    binary_forward(op, y, a, b);
    return tn__finish(tp, y);
}

tn_tensor *tn_add(tn_tape *tp, tn_tensor *a, tn_tensor *b) { return binary(tp, TN_OP_ADD, a, b); }
tn_tensor *tn_sub(tn_tape *tp, tn_tensor *a, tn_tensor *b) { return binary(tp, TN_OP_SUB, a, b); }
tn_tensor *tn_mul(tn_tape *tp, tn_tensor *a, tn_tensor *b) { return binary(tp, TN_OP_MUL, a, b); }
tn_tensor *tn_div(tn_tape *tp, tn_tensor *a, tn_tensor *b) { return binary(tp, TN_OP_DIV, a, b); }

/* Both operands; when a and b are the same tensor (x * x) each pass adds its
 * own term into the one gradient, which is the product rule. */
static void bw_both(tn_tensor *y)
{
    binary_backward(y, 0);
    binary_backward(y, 1);
}

void tn__bw_add(tn_tensor *y) { bw_both(y); }
void tn__bw_sub(tn_tensor *y) { bw_both(y); }
void tn__bw_mul(tn_tensor *y) { bw_both(y); }
void tn__bw_div(tn_tensor *y) { bw_both(y); }
