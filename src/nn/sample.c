/* src/nn/sample.c - drawing ids from logits: greedy, temperature, top-k and
 * top-p (nucleus) sampling, for the decoders of language models and
 * translators. Plain loops in double; rows are read through tn_tensor_get,
 * so any strides and both float dtypes work. */
#include "tensor/nn.h"

#include "../core/internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

tn_sample_opts tn_sample_defaults(void)
{
    return (tn_sample_opts){.temperature = 1.0, .top_k = 0, .top_p = 1.0};
}

/* An id and its weight, for sorting by likelihood. */
typedef struct ranked {
    double w;
    int32_t id;
} ranked;

/* Scratch of one row: weights w [V] and the ids in order of likelihood. */
typedef struct scratch {
    double *w;
    ranked *order;
} scratch;

/* Larger weight first; equal weights by lower id. */
static int by_weight(const void *a, const void *b)
{
    const ranked *x = a, *y = b;
    if (x->w != y->w)
        return x->w > y->w ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

static tn_status check_args(const char *fn, const tn_tensor *logits, const tn_sample_opts *o,
                            int64_t *rows, int64_t *V)
{
    if (!logits || !o)
        return tn_set_error(TN_ERR_ARG, "%s: NULL argument", fn);
    if (logits->dtype == TN_I32 || logits->ndim < 1 || logits->ndim > 2) {
        char buf[64];
        return tn_set_error(TN_ERR_ARG, "%s: logits are %s %s; expected float [V] or [N, V]", fn,
                            tn_dtype_name(logits->dtype), tn_shape_str(logits, buf, sizeof buf));
    }
    if (!(o->temperature >= 0) || !isfinite(o->temperature))
        return tn_set_error(TN_ERR_ARG, "%s: temperature %g must be finite and >= 0", fn,
                            o->temperature);
    if (o->top_k < 0)
        return tn_set_error(TN_ERR_ARG, "%s: top_k %lld must be >= 0 (0: all)", fn,
                            (long long)o->top_k);
    if (!(o->top_p > 0 && o->top_p <= 1))
        return tn_set_error(TN_ERR_ARG, "%s: top_p %g must be in (0, 1] (1: all)", fn, o->top_p);
    *V = logits->shape[logits->ndim - 1];
    *rows = logits->ndim == 2 ? logits->shape[0] : 1;
    if (*V > INT32_MAX)
        return tn_set_error(TN_ERR_ARG, "%s: %lld classes do not fit int32 ids", fn, (long long)*V);
    return TN_OK;
}

/* The distribution of row r into s->w (unnormalised: the caller divides by
 * the returned total), or a negative total with the error set. */
static double row_weights(const char *fn, const tn_tensor *logits, int64_t r, int64_t V,
                          const tn_sample_opts *o, scratch *s)
{
    double mx = -INFINITY;
    int64_t best = -1;
    for (int64_t v = 0; v < V; v++) {
        double x = tn_tensor_get(logits, r * V + v);
        if (isnan(x) || x == INFINITY) {
            tn_set_error(TN_ERR_NUMERIC, "%s: logit %lld of row %lld is %g", fn, (long long)v,
                         (long long)r, x);
            return -1;
        }
        s->w[v] = x;
        if (x > mx)
            mx = x, best = v;
    }
    if (best < 0) {
        tn_set_error(TN_ERR_NUMERIC, "%s: every logit of row %lld is -inf", fn, (long long)r);
        return -1;
    }
    if (o->temperature == 0 || o->top_k == 1) { /* greedy: the first likeliest id */
        memset(s->w, 0, (size_t)V * sizeof *s->w);
        s->w[best] = 1;
        return 1;
    }
    double total = 0;
    for (int64_t v = 0; v < V; v++)
        total += s->w[v] = exp((s->w[v] - mx) / o->temperature);
    bool top_k = o->top_k > 0 && o->top_k < V;
    if (!top_k && o->top_p >= 1)
        return total;
    for (int64_t v = 0; v < V; v++)
        s->order[v] = (ranked){s->w[v], (int32_t)v};
    qsort(s->order, (size_t)V, sizeof *s->order, by_weight);
    int64_t keep = top_k ? o->top_k : V;
    if (o->top_p < 1) { /* the fewest likeliest ids whose share reaches top_p */
        double kept = 0, head = 0;
        for (int64_t i = 0; i < keep; i++)
            kept += s->order[i].w;
        int64_t n = 0;
        while (n < keep && head < o->top_p * kept)
            head += s->order[n++].w;
        keep = n;
    }
    total = 0;
    for (int64_t i = 0; i < V; i++) {
        if (i < keep)
            total += s->order[i].w;
        else
            s->w[s->order[i].id] = 0;
    }
    return total;
}

static tn_status scratch_new(const char *fn, int64_t V, scratch *s)
{
    /* through the allocator hooks, as all of the library's memory */
    s->w = tn__alloc_array((size_t)V, sizeof *s->w);
    s->order = tn__alloc_array((size_t)V, sizeof *s->order);
    if (!s->w || !s->order) {
        tn_free(s->w), tn_free(s->order);
        return tn_set_error(TN_ERR_MEMORY, "%s: out of memory for %lld classes", fn, (long long)V);
    }
    return TN_OK;
}

tn_status tn_sample_probs(const tn_tensor *logits, int64_t row, const tn_sample_opts *o,
                          double *probs)
{
    const char *fn = "tn_sample_probs";
    int64_t rows = 0, V = 0;
    tn_status st = check_args(fn, logits, o, &rows, &V);
    if (st != TN_OK)
        return st;
    if (!probs || row < 0 || row >= rows)
        return tn_set_error(TN_ERR_ARG, "%s: %s", fn, probs ? "row out of range" : "probs is NULL");
    scratch s;
    if ((st = scratch_new(fn, V, &s)) != TN_OK)
        return st;
    double total = row_weights(fn, logits, row, V, o, &s);
    if (total < 0) {
        st = tn_last_status();
    } else {
        for (int64_t v = 0; v < V; v++)
            probs[v] = s.w[v] / total;
    }
    tn_free(s.w), tn_free(s.order);
    return st;
}

tn_status tn_sample(const tn_tensor *logits, const tn_sample_opts *o, tn_rng *r, int32_t *ids)
{
    const char *fn = "tn_sample";
    int64_t rows = 0, V = 0;
    tn_status st = check_args(fn, logits, o, &rows, &V);
    if (st != TN_OK)
        return st;
    if (!r || !ids)
        return tn_set_error(TN_ERR_ARG, "%s: NULL argument", fn);
    scratch s;
    if ((st = scratch_new(fn, V, &s)) != TN_OK)
        return st;
    for (int64_t b = 0; b < rows && st == TN_OK; b++) {
        double total = row_weights(fn, logits, b, V, o, &s);
        if (total < 0) {
            st = tn_last_status();
            break;
        }
        /* the first id whose running sum passes u (ids in index order) */
        double u = tn_rng_uniform(r) * total;
        int64_t id = -1;
        for (int64_t v = 0; v < V; v++) {
            if (s.w[v] > 0)
                id = v;
            u -= s.w[v];
            if (u < 0 && s.w[v] > 0)
                break;
        }
        ids[b] = (int32_t)id;
    }
    tn_free(s.w), tn_free(s.order);
    return st;
}
