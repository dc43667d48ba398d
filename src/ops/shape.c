/* src/ops/shape.c - reshape, transpose, narrow (views), contiguous, concat,
 * stack (copies). Views share their base's data and, at backward, its
 * gradient, so they have no backward kernel. */
#include "ops_internal.h"

/* A strided block in a 4-D frame: element (i0,i1,i2,i3) at
 * p + i0*st[0] + i1*st[1] + i2*st[2] + i3*st[3]. */
typedef struct block {
    char *p;
    int64_t s[4], st[4];
} block;

/* Block of t's data (or gradient) in t's own frame; with an extra size-1
 * dim inserted at `ins` (0..ndim) when ins >= 0 (stack's view of inputs). */
static block block_of(const tn_tensor *t, void *base, int ins)
{
    int64_t shape[5], stride[5];
    int nd = 0;
    for (int d = 0; d <= t->ndim; d++) {
        if (d == ins) {
            shape[nd] = 1;
            stride[nd++] = 0;
        }
        if (d < t->ndim) {
            shape[nd] = t->shape[d];
            stride[nd++] = t->stride[d];
        }
    }
    block b = {base, {1, 1, 1, 1}, {0, 0, 0, 0}};
    for (int k = 0; k < nd && k < 4; k++) {
        b.s[3 - k] = shape[nd - 1 - k];
        b.st[3 - k] = stride[nd - 1 - k];
    }
    return b;
}

/* dst (+)= src elementwise over dst's frame; both blocks of the same shape.
 * es = element size; acc adds instead of copying (float dtypes). */
static void block_copy(block dst, block src, tn_dtype dt, bool acc)
{
    int64_t rows = dst.s[0] * dst.s[1] * dst.s[2], n = dst.s[3];
    TN_FOR_DTYPE(dt, T, {
        TN_PAR_FOR(rows * n > TN_PAR_MIN, r, 0, rows, {
            T *d = (T *)dst.p + tn__row_off(r, dst.s, dst.st);
            const T *s = (const T *)src.p + tn__row_off(r, dst.s, src.st);
            if (acc)
                for (int64_t j = 0; j < n; j++)
                    d[j * dst.st[3]] += s[j * src.st[3]];
            else
                for (int64_t j = 0; j < n; j++)
                    d[j * dst.st[3]] = s[j * src.st[3]];
        });
    });
}

/* ---- views ---- */

tn_tensor *tn_reshape(tn_tape *tp, tn_tensor *x, int ndim, const int64_t *shape)
{
    if (!tn__check(tp, "reshape", 1, &x))
        return NULL;
    if (ndim < 1 || ndim > TN_MAX_DIMS || !shape) {
        tn_tape_fail(tp, TN_ERR_ARG, "reshape: ndim %d outside 1..4", ndim);
        return NULL;
    }
    int64_t sh[4], known = 1, n = tn_numel(x);
    int infer = -1;
    for (int d = 0; d < ndim; d++) {
        sh[d] = shape[d];
        if (sh[d] == -1 && infer < 0)
            infer = d;
        else if (sh[d] < 1) {
            tn_tape_fail(tp, TN_ERR_SHAPE, "reshape: invalid size %lld at dim %d", (long long)sh[d],
                         d);
            return NULL;
        } else if (__builtin_mul_overflow(known, sh[d], &known)) {
            tn_tape_fail(tp, TN_ERR_SHAPE,
                         "reshape: target shape of %s overflows int64 at dim %d (size %lld)",
                         TN_SHP(x), d, (long long)sh[d]);
            return NULL;
        }
    }
    if (infer >= 0)
        sh[infer] = known > 0 && n % known == 0 ? n / known : -1;
    if ((infer >= 0 && sh[infer] < 1) || (infer < 0 && known != n)) {
        tn_tape_fail(tp, TN_ERR_SHAPE, "reshape: cannot view %s (%lld elements) as %d-D shape",
                     TN_SHP(x), (long long)n, ndim);
        return NULL;
    }
    tn_tensor *c = tn_contiguous(tp, x);
    if (!c)
        return NULL;
    tn_tensor tmp = {0};
    tn__set_contiguous(&tmp, ndim, sh, x->dtype); /* numel n: valid */
    return tn__view(tp, TN_OP_RESHAPE, c, ndim, tmp.shape, tmp.stride, 0);
}

tn_tensor *tn_transpose(tn_tape *tp, tn_tensor *x, int d0, int d1)
{
    if (!tn__check(tp, "transpose", 1, &x))
        return NULL;
    int a = tn__dim(d0, x->ndim), b = tn__dim(d1, x->ndim);
    if (a < 0 || b < 0) {
        tn_tape_fail(tp, TN_ERR_ARG, "transpose: dims %d, %d out of range for %s", d0, d1,
                     TN_SHP(x));
        return NULL;
    }
    int64_t sh[4], st[4];
    memcpy(sh, x->shape, sizeof sh);
    memcpy(st, x->stride, sizeof st);
    sh[a] = x->shape[b], sh[b] = x->shape[a];
    st[a] = x->stride[b], st[b] = x->stride[a];
    return tn__view(tp, TN_OP_TRANSPOSE, x, x->ndim, sh, st, 0);
}

tn_tensor *tn_narrow(tn_tape *tp, tn_tensor *x, int dim, int64_t start, int64_t len)
{
    if (!tn__check(tp, "narrow", 1, &x))
        return NULL;
    int d = tn__dim_of(tp, "narrow", dim, x);
    if (d < 0)
        return NULL;
    if (start < 0 || len < 1 || start >= x->shape[d] || len > x->shape[d] - start) {
        tn_tape_fail(tp, TN_ERR_INDEX,
                     "narrow: start %lld, length %lld out of range for dim %d of %s",
                     (long long)start, (long long)len, d, TN_SHP(x));
        return NULL;
    }
    int64_t sh[4];
    memcpy(sh, x->shape, sizeof sh);
    sh[d] = len;
    return tn__view(tp, TN_OP_NARROW, x, x->ndim, sh, x->stride, start * x->stride[d]);
}

/* ---- copies ---- */

tn_tensor *tn_contiguous(tn_tape *tp, tn_tensor *x)
{
    if (!tn__check(tp, "contiguous", 1, &x))
        return NULL;
    if (tn_is_contiguous(x))
        return x;
    tn_tensor *y =
        tn__result(tp, TN_OP_CONTIGUOUS, x->dtype, x->ndim, x->shape, false, x, NULL, NULL);
    if (!y)
        return NULL;
    block_copy(block_of(y, y->data, -1), block_of(x, x->data, -1), x->dtype, false);
    return tn__finish(tp, y);
}

void tn__bw_contiguous(tn_tensor *y)
{
    tn_tensor *x = tn__node(y)->src[0];
    if (tn__wants(x))
        block_copy(block_of(x, x->grad, -1), block_of(y, y->grad, -1), y->dtype, true);
}

/* Inputs of concat/stack live in y->aux (there may be more than TN_MAX_SRC).
 * iparam[0] = dim of y along which they are laid, iparam[1] = n,
 * iparam[2] = 1 for stack (inputs lack that dim). */
static tn_tensor *join(tn_tape *tp, int op, int n, tn_tensor *const *xs, int dim)
{
    const char *name = tn_op_name(op);
    bool stack = op == TN_OP_STACK;
    if (!tp) {
        tn_set_error(TN_ERR_ARG, "%s: tape is NULL", name);
        return NULL;
    }
    if (n < 1 || !xs) {
        tn_tape_fail(tp, TN_ERR_ARG, "%s: needs at least one tensor (n = %d)", name, n);
        return NULL;
    }
    if (!tn__check(tp, name, n, xs))
        return NULL;
    tn_tensor *x0 = xs[0];
    int nd = x0->ndim + (stack ? 1 : 0);
    int d = tn__dim(dim, nd);
    if (d < 0 || nd > TN_MAX_DIMS) {
        tn_tape_fail(tp, TN_ERR_ARG, "%s: dim %d out of range for %d inputs of shape %s", name, dim,
                     n, TN_SHP(x0));
        return NULL;
    }
    int64_t total = 0;
    for (int k = 0; k < n; k++) {
        const tn_tensor *x = xs[k];
        bool ok = x->ndim == x0->ndim;
        for (int e = 0; ok && e < x0->ndim; e++)
            ok = (!stack && e == d) || x->shape[e] == x0->shape[e];
        if (!ok) {
            tn_tape_fail(tp, TN_ERR_SHAPE, "%s: input %d has shape %s, input 0 has %s", name, k,
                         TN_SHP(x), TN_SHP(x0));
            return NULL;
        }
        if (__builtin_add_overflow(total, stack ? 1 : x->shape[d], &total)) {
            tn_tape_fail(tp, TN_ERR_SHAPE, "%s: the sizes of %d inputs overflow int64", name, n);
            return NULL;
        }
    }
    int64_t sh[4];
    for (int e = 0; e < nd; e++)
        sh[e] = e == d ? total : x0->shape[stack && e > d ? e - 1 : e];
    tn_tensor **keep = tn_tape_alloc(tp, (size_t)n * sizeof *keep);
    tn_tensor *y = keep ? tn__result(tp, op, x0->dtype, nd, sh, false, NULL, NULL, NULL) : NULL;
    if (!y)
        return NULL;
    memcpy(keep, xs, (size_t)n * sizeof *keep);
    tn__node(y)->aux = keep;
    tn__node(y)->iparam[0] = d;
    tn__node(y)->iparam[1] = n;
    bool wants = false;
    for (int k = 0; k < n; k++)
        wants = wants || xs[k]->requires_grad;
    if (wants && tp->grad_enabled) {
        y->requires_grad = true;
        if (!tn__tape_record(tp, y))
            return NULL;
    }
    int64_t off = 0;
    for (int k = 0; k < n; k++) {
        block dst = block_of(
            y, (char *)y->data + off * y->stride[d] * (int64_t)tn_dtype_size(y->dtype), -1);
        int64_t len = stack ? 1 : xs[k]->shape[d];
        dst.s[4 - nd + d] = len;
        block_copy(dst, block_of(xs[k], xs[k]->data, stack ? d : -1), y->dtype, false);
        off += len;
    }
    return tn__finish(tp, y);
}

static void join_backward(tn_tensor *y)
{
    tn_tensor **xs = tn__node(y)->aux;
    int d = (int)tn__node(y)->iparam[0], n = (int)tn__node(y)->iparam[1], nd = y->ndim;
    bool stack = tn__node(y)->op == TN_OP_STACK;
    size_t es = tn_dtype_size(y->dtype);
    int64_t off = 0;
    for (int k = 0; k < n; k++) {
        int64_t len = stack ? 1 : xs[k]->shape[d];
        if (tn__wants(xs[k])) {
            block src = block_of(y, (char *)y->grad + off * y->stride[d] * (int64_t)es, -1);
            src.s[4 - nd + d] = len;
            block dst = block_of(xs[k], xs[k]->grad, stack ? d : -1);
            block_copy(dst, src, y->dtype, true);
        }
        off += len;
    }
}

tn_tensor *tn_concat(tn_tape *tp, int n, tn_tensor *const *xs, int dim)
{
    return join(tp, TN_OP_CONCAT, n, xs, dim);
}

tn_tensor *tn_stack(tn_tape *tp, int n, tn_tensor *const *xs, int dim)
{
    return join(tp, TN_OP_STACK, n, xs, dim);
}

void tn__bw_concat(tn_tensor *y) { join_backward(y); }
void tn__bw_stack(tn_tensor *y) { join_backward(y); }
