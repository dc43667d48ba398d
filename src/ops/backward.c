/* src/ops/backward.c - the backward engine.
 *
 * Gradients have the same layout as the data they belong to. A view's
 * gradient is the same view of its base's gradient, so views need no
 * backward kernel: whatever is accumulated into a view lands in its base.
 */
#include "ops_internal.h"
#include "rows.h"

#include <stdlib.h>

/* Give every recorded node its gradient: views alias their base's, other
 * tape tensors get a contiguous buffer from the arena (reused when
 * backward runs twice on one tape), not yet zeroed (see zmap). Nodes are
 * visited in creation order, so a base is ready before its views. */
static bool grads_prepare(tn_tape *tp)
{
    for (size_t i = 0; i < tp->n_nodes; i++) {
        tn_tensor *t = tp->nodes[i];
        size_t es = tn_dtype_size(t->dtype);
        if (tn__node(t)->is_view) {
            t->grad = (char *)tn__node(t)->src[0]->grad + tn__node(t)->view_offset * (int64_t)es;
            continue;
        }
        size_t nb = (size_t)tn_numel(t) * es;
        if (!t->grad && !(t->grad = tn_tape_alloc(tp, nb)))
            return false;
    }
    return true;
}

/* Gradients are zeroed when first needed rather than all at the start: a
 * node's buffer is cleared right before the first backward kernel that
 * may add into it (one of its consumers, or its own when it has none), so
 * the zeroes are still in cache when the sums arrive, and a step touches
 * each gradient once instead of clearing the whole tape's first. zmap
 * records which nodes (by their non-view root) are cleared: an open
 * addressing set in the arena, built per backward. */
typedef struct zmap {
    tn_tensor **key;
    bool *done;
    size_t mask;
} zmap;

static size_t zmap_slot(const zmap *z, const tn_tensor *t)
{
    size_t i = ((uintptr_t)t >> 6) * 0x9E3779B97F4A7C15u & z->mask;
    while (z->key[i] && z->key[i] != t)
        i = (i + 1) & z->mask;
    return i;
}

static bool zmap_build(tn_tape *tp, zmap *z)
{
    size_t cap = 16;
    while (cap < 2 * tp->n_nodes)
        cap *= 2;
    z->key = tn_tape_alloc(tp, cap * sizeof *z->key);
    z->done = z->key ? tn_tape_alloc(tp, cap * sizeof *z->done) : NULL;
    if (!z->done)
        return false;
    memset(z->key, 0, cap * sizeof *z->key);
    memset(z->done, 0, cap * sizeof *z->done);
    z->mask = cap - 1;
    for (size_t i = 0; i < tp->n_nodes; i++)
        if (!tn__node(tp->nodes[i])->is_view)
            z->key[zmap_slot(z, tp->nodes[i])] = tp->nodes[i];
    return true;
}

/* Clear n bytes at p; from 1 MiB on split over the OpenMP team in 64 KB
 * pieces, so that the other threads do not wait while one clears. */
static void clear_bytes(void *p, size_t n)
{
    enum { PIECE = 1 << 16 };
    int64_t np = (int64_t)((n + PIECE - 1) / PIECE);
    TN_PAR_FOR(n >= ((size_t)1 << 20), i, 0, np, {
        size_t a = (size_t)i * PIECE;
        memset((char *)p + a, 0, n - a < PIECE ? n - a : PIECE);
    });
}

/* Clear t's gradient (its root's, for a view) unless done already or t is
 * not a node of this backward (a parameter, a leaf: never cleared here). */
static void zero_once(zmap *z, tn_tensor *t)
{
    if (!t)
        return;
    while (tn__node(t)->is_view)
        t = tn__node(t)->src[0];
    size_t i = zmap_slot(z, t);
    if (z->key[i] == t && !z->done[i]) {
        clear_bytes(t->grad, (size_t)tn_numel(t) * tn_dtype_size(t->dtype));
        z->done[i] = true;
    }
}

/* The ops whose backward clears an input's gradient itself, a block at a
 * time right before adding into it, or writes every element of it, when
 * the engine leaves it uncleared (tn_node.fresh): the element-wise maps
 * (unary.c) and two-input ops (binary.c), conv2d's x and the sum and mean
 * reductions. A whole-tensor clear of a gradient larger than the caches
 * goes to memory and is read back by the kernel; cleared a block at a
 * time the zeroes are still in cache when the sums arrive. */
static bool clears_inputs(int op)
{
    return tn__map_of(op) != TN__MAP_COUNT || tn__zip_of(op) != TN__ZIP_COUNT || op == TN_OP_MASK ||
           op == TN_OP_CONV2D || op == TN_OP_SUM || op == TN_OP_MEAN;
}

/* Whether t's backward may clear src[k]'s gradient itself: a tape node of
 * this backward whose gradient is not cleared yet (t is its first
 * consumer in the backward order), not a view, contiguous, and no other
 * input of t (nor t). Marks it cleared: the kernel will. */
static bool leave_to_kernel(zmap *z, tn_tensor *t, int k)
{
    tn_tensor *x = tn__node(t)->src[k];
    if (!x || x == t || tn__node(x)->is_view || !tn_is_contiguous(x))
        return false;
    for (int j = 0; j < TN_MAX_SRC; j++)
        if (j != k && tn__node(t)->src[j] == x)
            return false;
    size_t i = zmap_slot(z, x);
    if (z->key[i] != x || z->done[i])
        return false;
    z->done[i] = true;
    return true;
}

/* Before t's backward: its own gradient and every gradient it adds into
 * (its inputs; concat and stack keep theirs in aux, iparam[1] of them,
 * scan in its record), except the inputs left to t's kernel (fresh). */
static void zero_for(zmap *z, tn_tensor *t)
{
    zero_once(z, t);
    bool own = clears_inputs(tn__node(t)->op);
    tn__node(t)->fresh = 0;
    for (int k = 0; k < TN_MAX_SRC; k++) {
        if (own && leave_to_kernel(z, t, k))
            tn__node(t)->fresh |= (uint8_t)(1u << k);
        else
            zero_once(z, tn__node(t)->src[k]);
    }
    if (tn__node(t)->op == TN_OP_CONCAT || tn__node(t)->op == TN_OP_STACK) {
        tn_tensor **xs = tn__node(t)->aux;
        for (int64_t k = 0; k < tn__node(t)->iparam[1]; k++)
            zero_once(z, xs[k]);
    } else if (tn__node(t)->op == TN_OP_SCAN) {
        tn_tensor *const *xs;
        int n;
        tn__scan_inputs(t, &xs, &n);
        for (int k = 0; k < n; k++)
            zero_once(z, xs[k]);
    }
}

/* ---- gradient-ready calls (tn_tape_set_grad_ready) ---- */

/* When each parameter's gradient is final: the parameters the nodes read
 * (directly, as concat/stack/scan inputs, or through views) with the
 * position of the earliest node that reads them, sorted latest first, so
 * that the sweep reports them in one pass. */
typedef struct ready_list {
    tn_tensor **param; /* [n] */
    size_t *at;        /* [n]: the earliest reader's node position */
    size_t n, next;    /* next: the first not yet reported */
} ready_list;

/* Record that node i reads x (a view's reads count for its base). Nodes
 * are visited latest first, so the last write of a position is the
 * earliest reader. A parameter is a heap tensor that requires grad. */
static void ready_note(ready_list *r, tn_tensor *x, size_t i, size_t cap)
{
    while (x && tn__node(x)->is_view && !tn__node(x)->on_heap)
        x = tn__node(x)->src[0];
    if (!x || !tn__node(x)->on_heap || !x->requires_grad || !x->grad)
        return;
    for (size_t k = 0; k < r->n; k++)
        if (r->param[k] == x) {
            r->at[k] = i;
            return;
        }
    if (r->n < cap) {
        r->param[r->n] = x;
        r->at[r->n++] = i;
    }
}

static int ready_cmp(const void *a, const void *b)
{
    const size_t *x = a, *y = b; /* (at, index) pairs: latest first */
    return (x[0] < y[0]) - (x[0] > y[0]);
}

/* Build r for tp's nodes. Parameters are few (tens), so the search of
 * ready_note is linear. Returns false when out of memory. */
static bool ready_build(tn_tape *tp, ready_list *r)
{
    size_t cap = 64;
    memset(r, 0, sizeof *r);
    for (;;) {
        r->param = tn_tape_alloc(tp, cap * sizeof *r->param);
        r->at = r->param ? tn_tape_alloc(tp, cap * sizeof *r->at) : NULL;
        if (!r->at)
            return false;
        r->n = 0;
        for (size_t i = tp->n_nodes; i-- > 0;) {
            tn_tensor *t = tp->nodes[i];
            for (int k = 0; k < TN_MAX_SRC; k++)
                ready_note(r, tn__node(t)->src[k], i, cap);
            tn_tensor *const *xs = NULL;
            int nx = 0;
            if (tn__node(t)->op == TN_OP_CONCAT || tn__node(t)->op == TN_OP_STACK)
                xs = tn__node(t)->aux, nx = (int)tn__node(t)->iparam[1];
            else if (tn__node(t)->op == TN_OP_SCAN)
                tn__scan_inputs(t, &xs, &nx);
            for (int k = 0; k < nx; k++)
                ready_note(r, xs[k], i, cap);
        }
        if (r->n < cap)
            break;
        cap *= 4; /* full: there may be more; count again with room */
    }
    /* sort by position, latest first (pairs of at and index) */
    size_t *pairs = tn_tape_alloc(tp, 2 * r->n * sizeof *pairs);
    tn_tensor **sorted = tn_tape_alloc(tp, (r->n ? r->n : 1) * sizeof *sorted);
    if (!pairs || !sorted)
        return false;
    for (size_t k = 0; k < r->n; k++)
        pairs[2 * k] = r->at[k], pairs[2 * k + 1] = k;
    qsort(pairs, r->n, 2 * sizeof *pairs, ready_cmp);
    for (size_t k = 0; k < r->n; k++) {
        sorted[k] = r->param[pairs[2 * k + 1]];
        r->at[k] = pairs[2 * k];
    }
    r->param = sorted;
    return true;
}

/* After node i's backward: report the parameters whose earliest reader it
 * was (with every earlier node: all of them at the end, i = 0). */
static void ready_report(tn_tape *tp, ready_list *r, size_t i)
{
    for (; r->next < r->n && r->at[r->next] >= i; r->next++) {
        tn_tensor *p = r->param[r->next];
        if (tp->flush) /* products postponed into p's gradient */
            tp->flush(tp, p);
        tp->grad_ready(tp->grad_ready_ctx, p);
    }
}

/* A sparse-gradient parameter (tn_tensor_set_sparse_grad) read by t's op
 * other than as gather_rows' table may get a gradient in any row: every
 * row counts until its next zero_grad. */
static void mark_dense_reads(const tn_tensor *t)
{
    const tn_node *nd = tn__node(t);
    for (int k = 0; k < TN_MAX_SRC; k++) {
        const tn_tensor *s = nd->src[k];
        if (s && tn__node(s)->rows && !(nd->op == TN_OP_GATHER_ROWS && k == 0))
            tn__node(s)->rows->dense = true;
    }
    if (nd->op == TN_OP_SCAN) { /* its parameters are inputs beyond src */
        tn_tensor *const *in;
        int n;
        tn__scan_inputs(t, &in, &n);
        for (int k = 0; k < n; k++)
            if (in[k] && tn__node(in[k])->rows)
                tn__node(in[k])->rows->dense = true;
    }
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
    if (!y->requires_grad || tn__node(y)->tape != tp || tn__node(y)->on_heap)
        return tn_set_error(TN_ERR_STATE,
                            "%s: the output does not depend on any tensor that requires grad "
                            "on this tape (no-grad mode, a detached value, or another tape)",
                            fn);
    if (!dy && tn_numel(y) != 1)
        return tn_set_error(TN_ERR_SHAPE,
                            "%s: loss must have one element, got shape %s; use "
                            "tn_backward_from with an output gradient",
                            fn, TN_SHP(y));
    tp->op_cache = NULL; /* the parameters may have changed since the forward */
    tp->flush = NULL;
    zmap z;
    ready_list rl;
    if (!grads_prepare(tp) || !zmap_build(tp, &z) || (tp->grad_ready && !ready_build(tp, &rl)))
        return tn_set_error(TN_ERR_MEMORY, "%s: out of memory for gradients", fn);
    zero_once(&z, y);
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
        tn_backward_fn bw = tn__op_table[tn__node(t)->op].backward;
        mark_dense_reads(t);
        zero_for(&z, t);
        if (tp->flush) /* work postponed into t's gradient is done before use */
            tp->flush(tp, t);
        if (bw)
            bw(t);
        if (tp->grad_ready && tp->err == TN_OK)
            ready_report(tp, &rl, i);
    }
    if (tp->flush)
        tp->flush(tp, NULL);
    tp->flush = NULL;
    tp->op_cache = NULL;  /* an optimizer step may follow */
    if (tp->err != TN_OK) /* a backward kernel failed (e.g. out of memory) */
        return tn_set_error(tp->err, "%s: %s", fn, tp->errmsg);
    return TN_OK;
}

tn_status tn_backward(tn_tape *tp, tn_tensor *loss) { return run(tp, loss, NULL, "tn_backward"); }

tn_status tn_backward_from(tn_tape *tp, tn_tensor *y, const tn_tensor *dy)
{
    if (!y || !dy)
        return tn_set_error(TN_ERR_ARG, "tn_backward_from: NULL tensor");
    if (y->ndim != dy->ndim || memcmp(y->shape, dy->shape, sizeof y->shape) != 0)
        return tn_set_error(TN_ERR_SHAPE, "tn_backward_from: y is %s but dy is %s", TN_SHP(y),
                            TN_SHP(dy));
    return run(tp, y, dy, "tn_backward_from");
}

tn_status tn_tape_set_grad_ready(tn_tape *tp, tn_grad_ready_fn fn, void *ctx)
{
    if (!tp)
        return tn_set_error(TN_ERR_ARG, "tn_tape_set_grad_ready: tape is NULL");
    tp->grad_ready = fn;
    tp->grad_ready_ctx = ctx;
    return TN_OK;
}
