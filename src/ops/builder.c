/* src/ops/builder.c - helpers shared by all op builders, and detach. */
#include "ops_internal.h"

bool tn__check(tn_tape *tp, const char *name, int n, tn_tensor *const *xs)
{
    if (!tp) {
        tn_set_error(TN_ERR_ARG, "%s: tape is NULL", name);
        return false;
    }
    if (tp->err != TN_OK)
        return false;
    tn_dtype dt = TN_I32;
    for (int i = 0; i < n; i++) {
        if (!xs[i]) {
            tn_tape_fail(tp, TN_ERR_ARG, "%s: input %d is NULL", name, i);
            return false;
        }
        if (xs[i]->dtype == TN_I32) {
            tn_tape_fail(tp, TN_ERR_DTYPE, "%s: input %d is int32; a float tensor is needed", name,
                         i);
            return false;
        }
        if (dt != TN_I32 && xs[i]->dtype != dt) {
            tn_tape_fail(tp, TN_ERR_DTYPE, "%s: mixed dtypes %s and %s (input %d)", name,
                         tn_dtype_name(dt), tn_dtype_name(xs[i]->dtype), i);
            return false;
        }
        dt = xs[i]->dtype;
    }
    if (tn_runtime_init() != TN_OK) {
        tn_tape_fail(tp, TN_ERR_ARG, "%s: %s", name, tn_runtime_error());
        return false;
    }
    return true;
}

static bool src_wants(const tn_tensor *x) { return x && x->dtype != TN_I32 && x->requires_grad; }

static tn_tensor *node_new(tn_tape *tp, int op, int n, tn_tensor *const *srcs)
{
    tn_node *nd = tn_tape_alloc(tp, sizeof *nd);
    if (!nd)
        return NULL;
    memset(nd, 0, sizeof *nd);
    nd->tape = tp;
    nd->op = op;
    tn_tensor *y = &nd->pub;
    bool wants = false;
    for (int i = 0; i < n; i++) {
        tn__node(y)->src[i] = srcs[i];
        wants = wants || src_wants(srcs[i]);
    }
    y->requires_grad = tp->grad_enabled && wants;
    if (y->requires_grad && !tn__tape_record(tp, y))
        return NULL;
    return y;
}

tn_tensor *tn__result_n(tn_tape *tp, int op, tn_dtype dt, int ndim, const int64_t *shape, bool zero,
                        int n, tn_tensor *const *srcs)
{
    tn_tensor tmp = {0};
    int64_t numel = tn__set_contiguous(&tmp, ndim, shape, dt);
    if (numel < 0) {
        char msg[200];
        tn_tape_fail(tp, TN_ERR_SHAPE, "%s: result %s", tn_op_name(op),
                     tn__shape_problem(numel, ndim, shape, dt, msg, sizeof msg));
        return NULL;
    }
    void *data = tn_tape_alloc(tp, (size_t)numel * tn_dtype_size(dt));
    if (!data)
        return NULL;
    if (zero)
        memset(data, 0, (size_t)numel * tn_dtype_size(dt));
    tn_tensor *y = node_new(tp, op, n, srcs);
    if (!y)
        return NULL;
    memcpy(y->shape, tmp.shape, sizeof y->shape);
    memcpy(y->stride, tmp.stride, sizeof y->stride);
    y->ndim = ndim;
    y->dtype = dt;
    y->data = data;
    return y;
}

tn_tensor *tn__result(tn_tape *tp, int op, tn_dtype dt, int ndim, const int64_t *shape, bool zero,
                      tn_tensor *a, tn_tensor *b, tn_tensor *c)
{
    return tn__result_n(tp, op, dt, ndim, shape, zero, 3, (tn_tensor *[3]){a, b, c});
}

tn_tensor *tn__view(tn_tape *tp, int op, tn_tensor *base, int ndim, const int64_t *shape,
                    const int64_t *stride, int64_t offset)
{
    tn_tensor *y = node_new(tp, op, 1, &base);
    if (!y)
        return NULL;
    y->ndim = ndim;
    y->dtype = base->dtype;
    for (int d = 0; d < TN_MAX_DIMS; d++) {
        y->shape[d] = d < ndim ? shape[d] : 1;
        y->stride[d] = d < ndim ? stride[d] : 1;
    }
    tn__node(y)->is_view = true;
    tn__node(y)->view_offset = offset;
    y->data = (char *)base->data + offset * (int64_t)tn_dtype_size(base->dtype);
    return y;
}

tn_tensor *tn__finish(tn_tape *tp, tn_tensor *y)
{
    if (!y)
        return NULL;
    if (tp->probe_node >= 0 && (size_t)tp->probe_node + 1 == tp->n_nodes &&
        tp->nodes[tp->n_nodes - 1] == y && tp->probe_index < tn_numel(y))
        tn_tensor_set(y, tp->probe_index, tn_tensor_get(y, tp->probe_index) + tp->probe_delta);
    if (!tp->watch)
        return y;
    int64_t n = tn_numel(y);
    for (int64_t i = 0; i < n; i++) {
        double v = tn_tensor_get(y, i);
        if (!isfinite(v)) {
            tn_tape_fail(tp, TN_ERR_NUMERIC,
                         "%s: produced a non-finite value (%g) at element %lld of its %s output",
                         tn_op_name(tn__node(y)->op), v, (long long)i, TN_SHP(y));
            return NULL;
        }
    }
    return y;
}

int tn__dim(int dim, int ndim)
{
    if (dim < 0)
        dim += ndim;
    return dim >= 0 && dim < ndim ? dim : -1;
}

int tn__dim_of(tn_tape *tp, const char *name, int dim, const tn_tensor *x)
{
    int d = tn__dim(dim, x->ndim);
    if (d < 0)
        tn_tape_fail(tp, TN_ERR_ARG, "%s: dim %d is out of range for a %d-D input %s", name, dim,
                     x->ndim, TN_SHP(x));
    return d;
}

bool tn__broadcast_shape(const tn_tensor *a, const tn_tensor *b, int *nd, int64_t shape[4])
{
    int n = a->ndim > b->ndim ? a->ndim : b->ndim;
    for (int k = 0; k < n; k++) { /* k counts from the right */
        int64_t sa = k < a->ndim ? a->shape[a->ndim - 1 - k] : 1;
        int64_t sb = k < b->ndim ? b->shape[b->ndim - 1 - k] : 1;
        if (sa != sb && sa != 1 && sb != 1)
            return false;
        shape[n - 1 - k] = sa > sb ? sa : sb;
    }
    *nd = n;
    return true;
}

void tn__frame(int nd, const int64_t *shape, int64_t s[4])
{
    for (int k = 0; k < 4; k++)
        s[3 - k] = k < nd ? shape[nd - 1 - k] : 1;
}

void tn__bstrides(const tn_tensor *t, int nd, const int64_t *shape, int64_t st[4])
{
    for (int k = 0; k < 4; k++) {
        int64_t size = k < nd ? shape[nd - 1 - k] : 1;
        bool has = k < t->ndim;
        int64_t ts = has ? t->shape[t->ndim - 1 - k] : 1;
        st[3 - k] = (has && ts == size && ts != 1) ? t->stride[t->ndim - 1 - k] : 0;
    }
}

bool tn__is_broadcast(const int64_t st[4], const int64_t s[4])
{
    for (int d = 0; d < 4; d++)
        if (st[d] == 0 && s[d] > 1)
            return true;
    return false;
}

void tn__split_dim(const tn_tensor *x, int d, int64_t s[4], int64_t st[4], int64_t *n, int64_t *sn)
{
    for (int k = 0; k < 4; k++) {
        s[k] = 1;
        st[k] = 0;
    }
    int k = 2;
    for (int i = x->ndim - 1; i >= 0; i--) {
        if (i == d)
            continue;
        s[k] = x->shape[i];
        st[k] = x->stride[i];
        k--;
    }
    *n = x->shape[d];
    *sn = x->stride[d];
}

tn_tensor *tn_detach(tn_tape *tp, tn_tensor *x)
{
    if (!tn__check(tp, "detach", 1, &x))
        return NULL;
    tn_node *nd = tn_tape_alloc(tp, sizeof *nd);
    if (!nd)
        return NULL;
    *nd = *tn__node(x);
    nd->on_heap = false;
    nd->tape = tp;
    nd->op = TN_OP_NONE;
    memset(nd->src, 0, sizeof nd->src);
    nd->is_view = false;
    nd->pub.requires_grad = false;
    nd->pub.grad = NULL;
    return &nd->pub;
}
