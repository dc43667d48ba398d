/* src/ops/backward.c - the backward engine.
 *
 * Gradients have the same layout as the data they belong to. A view's
 * gradient is the same view of its base's gradient, so views need no
 * backward kernel: whatever is accumulated into a view lands in its base.
 */
#include "ops_internal.h"

/* Give every recorded node its gradient: views alias their base's, other
 * tape tensors get a zeroed contiguous buffer from the arena (reused when
 * backward runs twice on one tape). Nodes are visited in creation order,
 * so a base is ready before its views. */
static bool grads_prepare(tn_tape *tp)
{
    for (size_t i = 0; i < tp->n_nodes; i++) {
        tn_tensor *t = tp->nodes[i];
        size_t es = tn_dtype_size(t->dtype);
        if (t->is_view) {
            t->grad = (char *)t->src[0]->grad + t->view_offset * (int64_t)es;
            continue;
        }
        size_t nb = (size_t)tn_numel(t) * es;
        if (!t->grad && !(t->grad = tn_tape_alloc(tp, nb)))
            return false;
        memset(t->grad, 0, nb);
    }
    return true;
}

static tn_status run(tn_tape *tp, tn_tensor *y, const tn_tensor *dy, const char *fn)
{
    TN_FTZ_SCOPE; /* every backward kernel */
    if (!tp)
        return tn_set_error(TN_ERR_ARG, "%s: tape is NULL", fn);
    if (tp->err != TN_OK)
        return tn_set_error(TN_ERR_STATE, "%s: the tape has an error from an earlier op: %s", fn,
                            tp->errmsg);
    if (!y)
        return tn_set_error(TN_ERR_ARG, "%s: output tensor is NULL", fn);
    if (!y->requires_grad || y->tape != tp || y->on_heap)
        return tn_set_error(TN_ERR_STATE,
                            "%s: the output does not depend on any tensor that requires grad "
                            "on this tape (no-grad mode, a detached value, or another tape)",
                            fn);
    if (!dy && tn_numel(y) != 1)
        return tn_set_error(TN_ERR_SHAPE,
                            "%s: loss must have one element, got shape %s; use "
                            "tn_backward_from with an output gradient",
                            fn, TN_SHP(y));
    tp->n_defer = 0;
    tp->op_cache = NULL; /* the parameters may have changed since the forward */
    if (!grads_prepare(tp))
        return tn_set_error(TN_ERR_MEMORY, "%s: out of memory for gradients", fn);
    int64_t n = tn_numel(y);
    for (int64_t i = 0; i < n; i++) {
        int64_t o = tn__offset_of(y, i);
        double g = dy ? tn_tensor_get(dy, i) : 1.0;
        if (y->dtype == TN_F32)
            ((float *)y->grad)[o] += (float)g;
        else
            ((double *)y->grad)[o] += g;
    }
    for (size_t i = tp->n_nodes; i-- > 0;) {
        tn_tensor *t = tp->nodes[i];
        tn_backward_fn bw = tn__op_table[t->op].backward;
        if (t->has_deferred) /* t's gradient must be complete before use */
            tn__matmul_flush(tp, t);
        if (bw)
            bw(t);
    }
    tn__matmul_flush(tp, NULL);
    tp->op_cache = NULL; /* an optimizer step may follow */
    if (tp->err != TN_OK) /* a backward kernel failed (e.g. out of memory) */
        return tn_set_error(tp->err, "%s: %s", fn, tp->errmsg);
    return TN_OK;
}

tn_status tn_backward(tn_tape *tp, tn_tensor *loss)
{
    return run(tp, loss, NULL, "tn_backward");
}

tn_status tn_backward_from(tn_tape *tp, tn_tensor *y, const tn_tensor *dy)
{
    if (!y || !dy)
        return tn_set_error(TN_ERR_ARG, "tn_backward_from: NULL tensor");
    if (y->ndim != dy->ndim || memcmp(y->shape, dy->shape, sizeof y->shape) != 0)
        return tn_set_error(TN_ERR_SHAPE, "tn_backward_from: y is %s but dy is %s", TN_SHP(y),
                            TN_SHP(dy));
    return run(tp, y, dy, "tn_backward_from");
}
