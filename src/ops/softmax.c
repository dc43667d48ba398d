/* src/ops/softmax.c - softmax and log-softmax along any dim.
 *
 * The input is seen as rows of n elements along dim (stride sn) indexed by
 * the other dims; each row is independent, so rows run in parallel.
 * Forward subtracts the row maximum before exp (no overflow for logits like
 * 1000) and sums the exponentials in double. Backward uses the output:
 *   softmax:     dx += y * (dy - sum(dy * y))
 *   log_softmax: dx += dy - exp(y) * sum(dy)
 * Node parameters: iparam[0] = dim (normalised).
 */
#include "ops_internal.h"

/* y (x's shape, contiguous) = softmax or log_softmax of x (strided) along
 * dim d. */
static void softmax_forward(tn_tensor *y, const tn_tensor *x, int d, bool log_out)
{
    int64_t s[4], sx[4], sy[4], n, snx, sny;
    tn__split_dim(x, d, s, sx, &n, &snx);
    tn__split_dim(y, d, s, sy, &n, &sny);
    int64_t rows = tn_numel(x) / n;
    TN_FOR_DTYPE(x->dtype, T, {
        const T *X = TN_DATA(T, x);
        T *Y = TN_DATA(T, y);
        TN_OMP_FOR(rows > 1 && rows * n > TN_PAR_MIN)
        for (int64_t r = 0; r < rows; r++) {
            const T *px = X + tn__row_off(r, s, sx);
            T *py = Y + tn__row_off(r, s, sy);
            T m = px[0];
            for (int64_t k = 1; k < n; k++)
                if (px[k * snx] > m)
                    m = px[k * snx];
            double z = 0;
            if (log_out) {
                for (int64_t k = 0; k < n; k++)
                    z += exp(px[k * snx] - m);
                T lz = (T)log(z);
                for (int64_t k = 0; k < n; k++)
                    py[k * sny] = (px[k * snx] - m) - lz;
            } else {
                for (int64_t k = 0; k < n; k++) {
                    T e = exp(px[k * snx] - m);
                    py[k * sny] = e;
                    z += e;
                }
                T inv = (T)(1.0 / z);
                for (int64_t k = 0; k < n; k++)
                    py[k * sny] *= inv;
            }
        }
    });
}

/* dx (x's strides) += backward of y = softmax / log_softmax along iparam[0];
 * y and dy contiguous. */
static void softmax_backward(tn_tensor *y, bool log_out)
{
    tn_tensor *x = y->src[0];
    if (!tn__wants(x))
        return;
    int d = (int)y->iparam[0];
    int64_t s[4], sx[4], sy[4], n, snx, sny;
    tn__split_dim(x, d, s, sx, &n, &snx);
    tn__split_dim(y, d, s, sy, &n, &sny);
    int64_t rows = tn_numel(x) / n;
    TN_FOR_DTYPE(x->dtype, T, {
        const T *Y = TN_DATA(T, y), *DY = TN_GRAD(T, y);
        T *DX = TN_GRAD(T, x);
        TN_OMP_FOR(rows > 1 && rows * n > TN_PAR_MIN)
        for (int64_t r = 0; r < rows; r++) {
            int64_t oy = tn__row_off(r, s, sy);
            const T *py = Y + oy, *dy = DY + oy;
            T *dx = DX + tn__row_off(r, s, sx);
            double acc = 0;
            if (log_out) {
                for (int64_t k = 0; k < n; k++)
                    acc += dy[k * sny];
                T sum = (T)acc;
                for (int64_t k = 0; k < n; k++)
                    dx[k * snx] += dy[k * sny] - exp(py[k * sny]) * sum;
            } else {
                for (int64_t k = 0; k < n; k++)
                    acc += (double)dy[k * sny] * py[k * sny];
                T dot = (T)acc;
                for (int64_t k = 0; k < n; k++)
                    dx[k * snx] += py[k * sny] * (dy[k * sny] - dot);
            }
        }
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
    y->iparam[0] = d;
    softmax_forward(y, x, d, op == TN_OP_LOG_SOFTMAX);
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
void tn__bw_log_softmax(tn_tensor *y) { softmax_backward(y, true); }
