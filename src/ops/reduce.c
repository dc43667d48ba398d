/* src/ops/reduce.c - sum and mean, over all elements or along one dim.
 *
 * Sums accumulate in double for both dtypes (at least as accurate as
 * PyTorch's pairwise float sums). The sum of all elements is split into at
 * most SUM_PARTS parts by a rule that depends only on the element count, the
 * parts run in parallel and are added in order, so the result is the same
 * for every thread count (within a contiguous part, 16 interleaved sums
 * added in order). Sums along a dim run in parallel over outputs.
 *
 * Node parameters: iparam[0] = reduced dim (-1: all elements), iparam[1] =
 * keepdim. Backward spreads dy over the reduced elements (divided by their
 * count for mean); every input element receives exactly one term.
 */
#include "ops_internal.h"

#define SUM_PARTS    64    /* at most this many partial sums */
#define SUM_PART_MIN 16384 /* elements per part below which parts merge */
#define SUM_LANES    16    /* interleaved partial sums within a part */

/* y [1] = (sum of every element of x) / div; x any shape, strided. */
static void sum_all_forward(tn_tensor *y, const tn_tensor *x, double div)
{
    int64_t s[4], st[4], numel = tn_numel(x);
    tn__frame(x->ndim, x->shape, s);
    tn__bstrides(x, x->ndim, x->shape, st);
    bool contig = tn_is_contiguous(x);
    int64_t parts = (numel + SUM_PART_MIN - 1) / SUM_PART_MIN;
    if (parts > SUM_PARTS)
        parts = SUM_PARTS;
    double part[SUM_PARTS];
    TN_FOR_DTYPE(x->dtype, T, {
        const T *X = TN_DATA(T, x);
        TN_PAR_FOR(parts > 1, p, 0, parts, {
            int64_t i0 = numel * p / parts, i1 = numel * (p + 1) / parts;
            double acc = 0;
            if (contig) {
                /* SUM_LANES sums, lane l of every SUM_LANES-th element from
                 * i0, then added in lane order: the loop vectorises (one
                 * chain of dependent adds ran at 4 cycles an element) and
                 * the order depends only on the element count */
                double lane[SUM_LANES] = {0};
                int64_t i = i0;
                for (; i + SUM_LANES <= i1; i += SUM_LANES)
                    for (int l = 0; l < SUM_LANES; l++)
                        lane[l] += X[i + l];
                for (; i < i1; i++)
                    acc += X[i];
                for (int l = 0; l < SUM_LANES; l++)
                    acc += lane[l];
            } else {
                /* walk the logical index i0..i1 with a 4-D odometer */
                int64_t idx[4], off = 0, q = i0;
                for (int d = 3; d >= 0; d--) {
                    idx[d] = q % s[d];
                    q /= s[d];
                    off += idx[d] * st[d];
                }
                for (int64_t i = i0; i < i1; i++) {
                    acc += X[off];
                    for (int d = 3; d >= 0; d--) {
                        off += st[d];
                        if (++idx[d] < s[d])
                            break;
                        off -= st[d] * s[d];
                        idx[d] = 0;
                    }
                }
            }
            part[p] = acc;
        });
        double total = 0;
        for (int64_t p = 0; p < parts; p++)
            total += part[p];
        TN_DATA(T, y)[0] = (T)(total / div);
    });
}

/* y [kept dims] contiguous = (sum of x along dim d) / div; x strided. */
static void sum_dim_forward(tn_tensor *y, const tn_tensor *x, int d, double div)
{
    int64_t s[4], st[4], n, sn;
    tn__split_dim(x, d, s, st, &n, &sn);
    int64_t rows = tn_numel(y);
    TN_FOR_DTYPE(x->dtype, T, {
        const T *X = TN_DATA(T, x);
        T *Y = TN_DATA(T, y);
        TN_PAR_FOR(rows > 1 && rows * n > TN_PAR_MIN, r, 0, rows, {
            const T *px = X + tn__row_off(r, s, st);
            double acc = 0;
            for (int64_t k = 0; k < n; k++)
                acc += px[k * sn];
            Y[r] = (T)(acc / div);
        });
    });
}

/* Backward of y = sum(x) / div (all elements, or along iparam[0]):
 * dx += dy / div broadcast over the reduced elements, or dx = that when
 * dx is not cleared yet (tn_node.fresh: each element is written once).
 * dx has x's strides. */
static void reduce_backward(tn_tensor *y, bool mean)
{
    tn_tensor *x = tn__node(y)->src[0];
    if (!tn__wants(x))
        return;
    bool set = tn__fresh(y, 0);
    int d = (int)tn__node(y)->iparam[0];
    if (d < 0) {
        /* x any shape (frame s, strides st), dy [1] */
        int64_t s[4], st[4];
        tn__frame(x->ndim, x->shape, s);
        tn__bstrides(x, x->ndim, x->shape, st);
        int64_t rows = s[0] * s[1] * s[2], n = s[3];
        double div = mean ? (double)tn_numel(x) : 1.0;
        TN_FOR_DTYPE(x->dtype, T, {
            T g = (T)(TN_GRAD(T, y)[0] / div);
            T *DX = TN_GRAD(T, x);
            TN_PAR_FOR(rows * n > TN_PAR_MIN, r, 0, rows, {
                T *dx = DX + tn__row_off(r, s, st);
                if (set)
                    for (int64_t j = 0; j < n; j++)
                        dx[j * st[3]] = g;
                else
                    for (int64_t j = 0; j < n; j++)
                        dx[j * st[3]] += g;
            });
        });
        return;
    }
    /* dy [kept dims] contiguous, dx strided with dim d of size n */
    int64_t s[4], st[4], n, sn;
    tn__split_dim(x, d, s, st, &n, &sn);
    int64_t rows = tn_numel(y);
    double div = mean ? (double)n : 1.0;
    TN_FOR_DTYPE(x->dtype, T, {
        const T *DY = TN_GRAD(T, y);
        T *DX = TN_GRAD(T, x);
        TN_PAR_FOR(rows > 1 && rows * n > TN_PAR_MIN, r, 0, rows, {
            T *dx = DX + tn__row_off(r, s, st);
            T g = (T)(DY[r] / div);
            if (set)
                for (int64_t k = 0; k < n; k++)
                    dx[k * sn] = g;
            else
                for (int64_t k = 0; k < n; k++)
                    dx[k * sn] += g;
        });
    });
}

static tn_tensor *reduce_all(tn_tape *tp, int op, tn_tensor *x)
{
    if (!tn__check(tp, tn_op_name(op), 1, &x))
        return NULL;
    int64_t one = 1;
    tn_tensor *y = tn__result(tp, op, x->dtype, 1, &one, false, x, NULL, NULL);
    if (!y)
        return NULL;
    tn__node(y)->iparam[0] = -1;
    tn__node(y)->iparam[1] = 0;
    sum_all_forward(y, x, op == TN_OP_MEAN ? (double)tn_numel(x) : 1.0);
    return tn__finish(tp, y);
}

static tn_tensor *reduce_dim(tn_tape *tp, int op, const char *name, tn_tensor *x, int dim,
                             bool keepdim)
{
    if (!tn__check(tp, name, 1, &x))
        return NULL;
    int d = tn__dim_of(tp, name, dim, x);
    if (d < 0)
        return NULL;
    int64_t shape[TN_MAX_DIMS];
    int nd = 0;
    for (int i = 0; i < x->ndim; i++) {
        if (i != d)
            shape[nd++] = x->shape[i];
        else if (keepdim)
            shape[nd++] = 1;
    }
    if (nd == 0)
        shape[nd++] = 1; /* a 1-D input reduces to [1] */
    tn_tensor *y = tn__result(tp, op, x->dtype, nd, shape, false, x, NULL, NULL);
    if (!y)
        return NULL;
    tn__node(y)->iparam[0] = d;
    tn__node(y)->iparam[1] = keepdim;
    sum_dim_forward(y, x, d, op == TN_OP_MEAN ? (double)x->shape[d] : 1.0);
    return tn__finish(tp, y);
}

tn_tensor *tn_sum(tn_tape *tp, tn_tensor *x) { return reduce_all(tp, TN_OP_SUM, x); }
tn_tensor *tn_mean(tn_tape *tp, tn_tensor *x) { return reduce_all(tp, TN_OP_MEAN, x); }

tn_tensor *tn_sum_dim(tn_tape *tp, tn_tensor *x, int dim, bool keepdim)
{
    return reduce_dim(tp, TN_OP_SUM, "sum_dim", x, dim, keepdim);
}

tn_tensor *tn_mean_dim(tn_tape *tp, tn_tensor *x, int dim, bool keepdim)
{
    return reduce_dim(tp, TN_OP_MEAN, "mean_dim", x, dim, keepdim);
}

void tn__bw_sum(tn_tensor *y) { reduce_backward(y, false); }
void tn__bw_mean(tn_tensor *y) { reduce_backward(y, true); }
