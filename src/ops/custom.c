/* src/ops/custom.c - user-defined ops (tn_custom): the user's forward and
 * backward callbacks recorded and called like the library's own kernels.
 *
 * Inputs live in src[] like any op's (so the backward engine clears their
 * gradients before the backward adds into them); the op and its context
 * are kept in y->aux. Strided inputs are made contiguous first (a recorded
 * copy, so their gradients flow back through it), which lets callbacks
 * index data and gradients row-major.
 */
#include "ops_internal.h"

typedef struct custom_rec {
    const tn_custom_op *op;
    void *ctx;
    int n_in;
} custom_rec;

tn_tensor *tn_custom(tn_tape *tp, const tn_custom_op *op, void *ctx, int n_in, tn_tensor *const *in,
                     int ndim, const int64_t *shape)
{
    if (!tp) {
        tn_set_error(TN_ERR_ARG, "tn_custom: tape is NULL");
        return NULL;
    }
    if (!op || !op->name || !op->forward) {
        tn_tape_fail(tp, TN_ERR_ARG, "tn_custom: op, its name and its forward must be given");
        return NULL;
    }
    if (n_in < 1 || n_in > TN_MAX_SRC || !in || !shape) {
        tn_tape_fail(tp, TN_ERR_ARG, "%s (tn_custom): needs 1 to %d inputs and a shape, got %d",
                     op->name, TN_MAX_SRC, n_in);
        return NULL;
    }
    if (!tn__check(tp, op->name, n_in, in))
        return NULL;
    tn_tensor *xs[TN_MAX_SRC];
    for (int k = 0; k < n_in; k++)
        if (!(xs[k] = tn_is_contiguous(in[k]) ? in[k] : tn_contiguous(tp, in[k])))
            return NULL;
    custom_rec *rec = tn_tape_alloc(tp, sizeof *rec);
    if (!rec)
        return NULL;
    *rec = (custom_rec){op, ctx, n_in};
    tn_tensor *y = tn__result_n(tp, TN_OP_CUSTOM, in[0]->dtype, ndim, shape, false, n_in, xs);
    if (!y)
        return NULL;
    tn__node(y)->aux = rec;
    tn_status st = op->forward(y, xs, n_in, ctx);
    if (st != TN_OK) {
        tn_tape_fail(tp, st, "%s (tn_custom): forward failed: %s", op->name, tn_last_error());
        return NULL;
    }
    return tn__finish(tp, y);
}

/* The user's backward, given only the inputs that want a gradient (the
 * others' grad pointers are hidden as NULL, as its contract says). */
void tn__bw_custom(tn_tensor *y)
{
    const custom_rec *rec = tn__node(y)->aux;
    if (!rec->op->backward)
        return;
    tn_node views[TN_MAX_SRC]; /* whole nodes: the user may pass them to the library */
    tn_tensor *xs[TN_MAX_SRC];
    for (int k = 0; k < rec->n_in; k++) {
        views[k] = *tn__node(tn__node(y)->src[k]);
        if (!tn__wants(tn__node(y)->src[k]))
            views[k].pub.grad = NULL;
        xs[k] = &views[k].pub;
    }
    TN_FTZ_SCOPE;
    rec->op->backward(y, xs, rec->n_in, rec->ctx);
}

const char *tn_tensor_op_name(const tn_tensor *t)
{
    if (!t)
        return "?";
    if (tn__node(t)->op == TN_OP_CUSTOM && tn__node(t)->aux)
        return ((const custom_rec *)tn__node(t)->aux)->op->name;
    return tn_op_name(tn__node(t)->op);
}
