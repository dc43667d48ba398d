/* src/ops/select.c - choosing elements along a dim: top-k (values with a
 * gradient, indices) and argmax (indices only), for decoding (greedy and
 * beam search) and sampling.
 *
 * Order: larger values first; equal values by lower index; NaN counts as
 * larger than any number (as in PyTorch's topk), so a NaN is never hidden.
 * Node parameters (topk): iparam[0] = dim, iparam[1] = k; the indices
 * (int32, the values' shape) are y->aux and the result's companion.
 */
#include "ops_internal.h"

#include <math.h>

/* a (at index ia) comes before b (at ib) in the order above. */
static bool before(double a, int64_t ia, double b, int64_t ib)
{
    if (isnan(a) || isnan(b))
        return isnan(a) && (!isnan(b) || ia < ib);
    return a > b || (a == b && ia < ib);
}

/* For every row of x along d (n elements, stride sn), the indices of its k
 * first elements in order into idx (layout of a contiguous tensor of x's
 * shape with dim d of size k; its stride along d is si), and their values
 * into val (same layout; NULL: not wanted). Selection by insertion into a
 * sorted prefix: O(n k), fine for the small k of decoding. */
static void select_rows(const tn_tensor *x, int d, int64_t k, int32_t *idx, void *val,
                        const int64_t s[4], const int64_t sy[4], int64_t si)
{
    int64_t sx[4], n, sn, s2[4];
    tn__split_dim(x, d, s2, sx, &n, &sn);
    int64_t rows = tn_numel(x) / n;
    TN_FOR_DTYPE(x->dtype, T, {
        const T *X = TN_DATA(T, x);
        T *V = val;
        TN_PAR_FOR(rows > 1 && rows * n * k > TN_PAR_MIN, r, 0, rows, {
            const T *px = X + tn__row_off(r, s, sx);
            int64_t oy = tn__row_off(r, s, sy);
            int32_t *pi = idx + oy;
            int64_t have = 0;
            for (int64_t j = 0; j < n; j++) {
                T v = px[j * sn];
                if (have == k && !before(v, j, px[pi[(k - 1) * si] * sn], pi[(k - 1) * si]))
                    continue;
                int64_t q = have < k ? have++ : k - 1; /* slot to fill, then bubble up */
                while (q > 0 && before(v, j, px[pi[(q - 1) * si] * sn], pi[(q - 1) * si])) {
                    pi[q * si] = pi[(q - 1) * si];
                    q--;
                }
                pi[q * si] = (int32_t)j;
            }
            if (V)
                for (int64_t q = 0; q < k; q++)
                    V[oy + q * si] = px[pi[q * si] * sn];
        });
    });
}

/* Shape of x with dim d of size k. */
static void shape_with(const tn_tensor *x, int d, int64_t k, int64_t shape[4])
{
    for (int i = 0; i < x->ndim; i++)
        shape[i] = i == d ? k : x->shape[i];
}

tn_status tn_topk(tn_tape *tp, tn_tensor *x, int64_t k, int dim, tn_tensor **values,
                  tn_tensor **indices)
{
    if (values)
        *values = NULL;
    if (indices)
        *indices = NULL;
    if (!values || !indices) {
        if (tp)
            return tn_tape_fail(tp, TN_ERR_ARG, "topk: values and indices must not be NULL");
        return tn_set_error(TN_ERR_ARG, "topk: values and indices must not be NULL");
    }
    if (!tn__check(tp, "topk", 1, &x))
        return tp ? tp->err : tn_last_status();
    int d = tn__dim_of(tp, "topk", dim, x);
    if (d < 0)
        return tp->err;
    if (k < 1 || k > x->shape[d] || k > INT32_MAX)
        return tn_tape_fail(tp, TN_ERR_ARG, "topk: k = %lld outside 1..%lld (dim %d of x %s)",
                            (long long)k, (long long)x->shape[d], d, TN_SHP(x));
    if (x->shape[d] > INT32_MAX)
        return tn_tape_fail(tp, TN_ERR_SHAPE, "topk: dim %d of x %s is too long for int32 indices",
                            d, TN_SHP(x));
    int64_t shape[4];
    shape_with(x, d, k, shape);
    tn_tensor *ix = tn_tape_tensor(tp, TN_I32, x->ndim, shape);
    tn_tensor *y =
        ix ? tn__result(tp, TN_OP_TOPK, x->dtype, x->ndim, shape, false, x, NULL, NULL) : NULL;
    if (!y)
        return tp->err != TN_OK ? tp->err : tn_tape_fail(tp, TN_ERR_MEMORY, "topk: out of memory");
    tn__node(y)->iparam[0] = d;
    tn__node(y)->iparam[1] = k;
    tn__node(y)->aux = ix->data;
    int64_t s[4], sy[4], n, si;
    tn__split_dim(y, d, s, sy, &n, &si);
    select_rows(x, d, k, ix->data, y->data, s, sy, si);
    if (!tn__finish(tp, y))
        return tp->err;
    *values = y;
    *indices = ix;
    return TN_OK;
}

/* dx[row, idx[q]] += dy[row, q]. */
void tn__bw_topk(tn_tensor *y)
{
    tn_tensor *x = tn__node(y)->src[0];
    if (!tn__wants(x))
        return;
    int d = (int)tn__node(y)->iparam[0];
    int64_t k = tn__node(y)->iparam[1];
    int64_t s[4], sy[4], sx[4], n, si, sn, s2[4];
    tn__split_dim(y, d, s, sy, &n, &si);
    tn__split_dim(x, d, s2, sx, &n, &sn);
    int64_t rows = tn_numel(y) / k;
    const int32_t *ids = tn__node(y)->aux;
    TN_FOR_DTYPE(x->dtype, T, {
        const T *DY = TN_GRAD(T, y);
        T *DX = TN_GRAD(T, x);
        for (int64_t r = 0; r < rows; r++) {
            int64_t oy = tn__row_off(r, s, sy);
            T *dx = DX + tn__row_off(r, s, sx);
            for (int64_t q = 0; q < k; q++)
                dx[ids[oy + q * si] * sn] += DY[oy + q * si];
        }
    });
}

tn_tensor *tn_argmax(tn_tape *tp, tn_tensor *x, int dim, bool keepdim)
{
    if (!tn__check(tp, "argmax", 1, &x))
        return NULL;
    int d = tn__dim_of(tp, "argmax", dim, x);
    if (d < 0)
        return NULL;
    if (x->shape[d] > INT32_MAX) {
        tn_tape_fail(tp, TN_ERR_SHAPE, "argmax: dim %d of x %s is too long for int32 indices", d,
                     TN_SHP(x));
        return NULL;
    }
    int64_t shape[4];
    shape_with(x, d, 1, shape);
    tn_tensor *ix = tn_tape_tensor(tp, TN_I32, x->ndim, shape);
    if (!ix)
        return NULL;
    int64_t s[4], sy[4], n, si;
    tn__split_dim(ix, d, s, sy, &n, &si);
    select_rows(x, d, 1, ix->data, NULL, s, sy, si);
    if (keepdim || x->ndim == 1)
        return ix;
    /* dropping a dim of size 1 keeps the row-major layout */
    int64_t out[4];
    int m = 0;
    for (int i = 0; i < x->ndim; i++)
        if (i != d)
            out[m++] = x->shape[i];
    tn__set_contiguous(ix, m, out, TN_I32);
    return ix;
}
