/* src/core/tape.c - the tape: arena, node list, sticky error, modes. */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>

#define TN_CHUNK_MIN ((size_t)1 << 20)

static tn_chunk *chunk_new(size_t cap)
{
    tn_chunk *c = tn_alloc(sizeof *c);
    if (!c)
        return NULL;
    c->mem = tn_alloc(cap);
    if (!c->mem) {
        tn_free(c);
        return NULL;
    }
    c->next = NULL;
    c->cap = cap;
    c->used = 0;
    return c;
}

static void chunks_free(tn_chunk *c)
{
    while (c) {
        tn_chunk *n = c->next;
        tn_free(c->mem);
        tn_free(c);
        c = n;
    }
}

tn_tape *tn_tape_new(void)
{
    tn_tape *tp = tn_alloc(sizeof *tp);
    if (!tp)
        return NULL;
    memset(tp, 0, sizeof *tp);
    tp->grad_enabled = true;
    tp->training = true;
    tp->probe_node = -1;
    tn_rng_seed(&tp->rng, 0);
    return tp;
}

void tn_tape_free(tn_tape *tp)
{
    if (!tp)
        return;
    tn_tape_free(tp->sub);
    chunks_free(tp->chunks);
    tn_free(tp->nodes);
    tn_free(tp);
}

void tn_tape_reset(tn_tape *tp)
{
    if (!tp)
        return;
    size_t used = 0, nchunks = 0;
    for (tn_chunk *c = tp->chunks; c; c = c->next) {
        used += c->used;
        nchunks++;
    }
    if (used > tp->high_water)
        tp->high_water = used;
    /* More than one chunk: the step did not fit. Replace them all by one
     * chunk large enough for the largest step seen, so that from the next
     * step on the arena never grows. */
    if (nchunks > 1) {
        size_t cap = tp->high_water + tp->high_water / 4 + TN_CHUNK_MIN;
        tn_chunk *big = chunk_new(cap);
        if (big) {
            chunks_free(tp->chunks);
            tp->chunks = big;
        }
    }
    for (tn_chunk *c = tp->chunks; c; c = c->next)
        c->used = 0;
    tp->cur = tp->chunks;
    tp->n_nodes = 0;
    tp->op_cache = NULL;
    tp->flush = NULL;
    tp->err = TN_OK;
    tp->errmsg[0] = '\0';
}

const char *tn_tape_error(const tn_tape *tp)
{
    if (!tp)
        return "tape is NULL";
    return tp->err == TN_OK ? NULL : tp->errmsg;
}

tn_status tn_tape_status(const tn_tape *tp) { return tp ? tp->err : TN_ERR_ARG; }

tn_status tn_tape_fail(tn_tape *tp, tn_status st, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    tn_set_error(st, "%s", msg);
    if (tp && tp->err == TN_OK) { /* keep the first error: it is the cause */
        tp->err = st;
        memcpy(tp->errmsg, msg, sizeof msg);
    }
    return st;
}

bool tn_tape_set_grad(tn_tape *tp, bool enabled)
{
    if (!tp)
        return false;
    bool old = tp->grad_enabled;
    tp->grad_enabled = enabled;
    return old;
}

bool tn_tape_grad_enabled(const tn_tape *tp) { return tp && tp->grad_enabled; }

tn_status tn_tape_set_training(tn_tape *tp, bool training)
{
    if (!tp)
        return tn_set_error(TN_ERR_ARG, "tn_tape_set_training: tape is NULL");
    tp->training = training;
    return TN_OK;
}

bool tn_tape_training(const tn_tape *tp) { return tp && tp->training; }

tn_status tn_tape_set_watch(tn_tape *tp, bool on)
{
    if (!tp)
        return tn_set_error(TN_ERR_ARG, "tn_tape_set_watch: tape is NULL");
    tp->watch = on;
    return TN_OK;
}

tn_rng *tn_tape_rng(tn_tape *tp) { return tp ? &tp->rng : NULL; }
size_t tn_tape_size(const tn_tape *tp) { return tp ? tp->n_nodes : 0; }

tn_tensor *tn_tape_node(const tn_tape *tp, size_t i)
{
    return tp && i < tp->n_nodes ? tp->nodes[i] : NULL;
}

tn_status tn_tape_set_probe(tn_tape *tp, int64_t node, int64_t index, double delta)
{
    if (!tp)
        return tn_set_error(TN_ERR_ARG, "tn_tape_set_probe: tape is NULL");
    tp->probe_node = node < 0 ? -1 : node;
    tp->probe_index = index;
    tp->probe_delta = delta;
    return TN_OK;
}

size_t tn_tape_arena_capacity(const tn_tape *tp)
{
    size_t cap = 0;
    for (tn_chunk *c = tp ? tp->chunks : NULL; c; c = c->next)
        cap += c->cap;
    return cap;
}

void *tn_tape_alloc(tn_tape *tp, size_t nbytes)
{
    if (nbytes > (size_t)TN_MAX_BYTES) {
        tn_tape_fail(tp, TN_ERR_MEMORY, "tape arena: %zu bytes is beyond the limit of 2^60",
                     nbytes);
        return NULL;
    }
    nbytes = (nbytes + 63) & ~(size_t)63; /* cannot overflow below 2^60 */
    while (tp->cur && tp->cur->used + nbytes > tp->cur->cap)
        tp->cur = tp->cur->next;
    if (!tp->cur) {
        size_t cap = nbytes > TN_CHUNK_MIN ? 2 * nbytes : TN_CHUNK_MIN;
        tn_chunk *c = chunk_new(cap);
        if (!c) {
            tn_tape_fail(tp, TN_ERR_MEMORY, "tape arena: out of memory allocating %zu bytes",
                         nbytes);
            return NULL;
        }
        if (!tp->chunks) {
            tp->chunks = c;
        } else {
            tn_chunk *last = tp->chunks;
            while (last->next)
                last = last->next;
            last->next = c;
        }
        tp->cur = c;
    }
    void *p = tp->cur->mem + tp->cur->used;
    tp->cur->used += nbytes;
    return p;
}

tn_tensor *tn_tape_tensor(tn_tape *tp, tn_dtype dt, int ndim, const int64_t *shape)
{
    if (!tp) {
        tn_set_error(TN_ERR_ARG, "tn_tape_tensor: tape is NULL");
        return NULL;
    }
    tn_node tmp = {0};
    int64_t n = tn__set_contiguous(&tmp.pub, ndim, shape, dt);
    if (n < 0) {
        char msg[200];
        tn_tape_fail(tp, TN_ERR_SHAPE, "tn_tape_tensor: %s",
                     tn__shape_problem(n, ndim, shape, dt, msg, sizeof msg));
        return NULL;
    }
    tn_node *nd = tn_tape_alloc(tp, sizeof *nd);
    void *data = nd ? tn_tape_alloc(tp, (size_t)n * tn_dtype_size(dt)) : NULL;
    if (!data)
        return NULL;
    *nd = tmp;
    nd->pub.dtype = dt;
    nd->tape = tp;
    nd->pub.data = data;
    memset(data, 0, (size_t)n * tn_dtype_size(dt));
    return &nd->pub;
}

bool tn__tape_record(tn_tape *tp, tn_tensor *t)
{
    if (tp->n_nodes == tp->cap_nodes) {
        size_t cap = tp->cap_nodes ? 2 * tp->cap_nodes : 256;
        tn_tensor **nodes = tn_alloc(cap * sizeof *nodes);
        if (!nodes) {
            tn_tape_fail(tp, TN_ERR_MEMORY, "tape: out of memory recording op");
            return false;
        }
        if (tp->n_nodes)
            memcpy(nodes, tp->nodes, tp->n_nodes * sizeof *nodes);
        tn_free(tp->nodes);
        tp->nodes = nodes;
        tp->cap_nodes = cap;
    }
    tp->nodes[tp->n_nodes++] = t;
    return true;
}
