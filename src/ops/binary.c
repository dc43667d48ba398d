/* src/ops/binary.c - add, sub, mul, div with numpy broadcasting.
 *
 * Kernels work in a 4-D frame s (the result's shape right-aligned) with
 * per-operand strides in that frame (0 where the operand broadcasts), so
 * strided views and broadcast operands need no copies. Rows (dims 0..2) run
 * in parallel; a gradient into a broadcast operand is accumulated serially
 * because several rows add into the same element.
 */
#include "ops_internal.h"

/* Forward: y (frame s, contiguous) = a op b; a, b at strides sa, sb. */
static void binary_forward(int op, tn_tensor *y, const tn_tensor *a, const tn_tensor *b)
{
    int64_t s[4], sa[4], sb[4], sy[4];
    tn__frame(y->ndim, y->shape, s);
    tn__bstrides(a, y->ndim, y->shape, sa);
    tn__bstrides(b, y->ndim, y->shape, sb);
    tn__bstrides(y, y->ndim, y->shape, sy);
    int64_t rows = s[0] * s[1] * s[2], n = s[3];
    TN_FOR_DTYPE(y->dtype, T, {
        const T *A = TN_DATA(T, a), *B = TN_DATA(T, b);
        T *Y = TN_DATA(T, y);
        TN_OMP_FOR(rows * n > TN_PAR_MIN)
        for (int64_t r = 0; r < rows; r++) {
            const T *pa = A + tn__row_off(r, s, sa), *pb = B + tn__row_off(r, s, sb);
            T *py = Y + tn__row_off(r, s, sy);
            switch (op) {
            case TN_OP_ADD:
                for (int64_t j = 0; j < n; j++) py[j] = pa[j * sa[3]] + pb[j * sb[3]];
                break;
            case TN_OP_SUB:
                for (int64_t j = 0; j < n; j++) py[j] = pa[j * sa[3]] - pb[j * sb[3]];
                break;
            case TN_OP_MUL:
                for (int64_t j = 0; j < n; j++) py[j] = pa[j * sa[3]] * pb[j * sb[3]];
                break;
            default:
                for (int64_t j = 0; j < n; j++) py[j] = pa[j * sa[3]] / pb[j * sb[3]];
                break;
            }
        }
    });
}

/* Backward into operand `which` (0 = a, 1 = b) of y = a op b:
 *   add: da += dy, db += dy;  sub: db -= dy;  mul: da += dy*b, db += dy*a;
 *   div: da += dy/b, db -= dy*a/b^2. */
static void binary_backward(tn_tensor *y, int which)
{
    tn_tensor *a = y->src[0], *b = y->src[1], *x = y->src[which];
    if (!tn__wants(x))
        return;
    int op = y->op;
    int64_t s[4], sa[4], sb[4], sy[4], sx[4];
    tn__frame(y->ndim, y->shape, s);
    tn__bstrides(a, y->ndim, y->shape, sa);
    tn__bstrides(b, y->ndim, y->shape, sb);
    tn__bstrides(y, y->ndim, y->shape, sy);
    tn__bstrides(x, y->ndim, y->shape, sx);
    int64_t rows = s[0] * s[1] * s[2], n = s[3];
    bool par = !tn__is_broadcast(sx, s) && rows * n > TN_PAR_MIN;
    TN_FOR_DTYPE(y->dtype, T, {
        const T *A = TN_DATA(T, a), *B = TN_DATA(T, b), *DY = TN_GRAD(T, y);
        T *DX = TN_GRAD(T, x);
        TN_OMP_FOR(par)
        for (int64_t r = 0; r < rows; r++) {
            const T *pa = A + tn__row_off(r, s, sa), *pb = B + tn__row_off(r, s, sb);
            const T *dy = DY + tn__row_off(r, s, sy);
            T *dx = DX + tn__row_off(r, s, sx);
            int64_t ia = sa[3], ib = sb[3], ix = sx[3];
            if (op == TN_OP_ADD || (op == TN_OP_SUB && which == 0)) {
                for (int64_t j = 0; j < n; j++) dx[j * ix] += dy[j];
            } else if (op == TN_OP_SUB) {
                for (int64_t j = 0; j < n; j++) dx[j * ix] -= dy[j];
            } else if (op == TN_OP_MUL) {
                const T *other = which == 0 ? pb : pa;
                int64_t io = which == 0 ? ib : ia;
                for (int64_t j = 0; j < n; j++) dx[j * ix] += dy[j] * other[j * io];
            } else if (which == 0) {
                for (int64_t j = 0; j < n; j++) dx[j * ix] += dy[j] / pb[j * ib];
            } else {
                for (int64_t j = 0; j < n; j++) {
                    T bv = pb[j * ib];
                    dx[j * ix] -= dy[j] * pa[j * ia] / (bv * bv);
                }
            }
        }
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
