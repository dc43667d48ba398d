/* src/nn/attention.c - Bahdanau (additive) and Luong (dot, general)
 * attention over encoder outputs, from the public ops (tensor/nn.h).
 *
 * Shapes: query [B, Hq], keys [B, S, Hk], scores and weights [B, S],
 * context [B, Hk]. Scores of padded positions are masked in the softmax
 * (tn_softmax_masked), so their weights are exactly 0.
 */
#include "tensor/nn.h"

#include "../core/internal.h"

#include <math.h>
#include <string.h>

const char *tn_attn_kind_name(int kind)
{
    switch (kind) {
    case TN_ATTN_BAHDANAU: return "bahdanau";
    case TN_ATTN_LUONG_DOT: return "luong";
    case TN_ATTN_LUONG_GENERAL: return "general";
    default: return "none";
    }
}

tn_status tn_attn_kind_from_name(const char *name, tn_attn_kind *out)
{
    static const struct {
        const char *name;
        tn_attn_kind kind;
    } known[] = {{"bahdanau", TN_ATTN_BAHDANAU},
                 {"luong", TN_ATTN_LUONG_DOT},
                 {"dot", TN_ATTN_LUONG_DOT},
                 {"general", TN_ATTN_LUONG_GENERAL}};
    if (!out)
        return tn_set_error(TN_ERR_ARG, "tn_attn_kind_from_name: out is NULL");
    for (size_t i = 0; name && i < sizeof known / sizeof known[0]; i++)
        if (strcmp(name, known[i].name) == 0) {
            *out = known[i].kind;
            return TN_OK;
        }
    return tn_set_error(TN_ERR_ARG,
                        "tn_attn_kind_from_name: unknown attention '%s' (bahdanau, luong or dot, "
                        "general)",
                        name ? name : "(null)");
}

/* A [rows, in]-shaped nn.Linear-style parameter, uniform(+-1/sqrt(in)). */
static tn_tensor *linear_param(tn_params *ps, const char *prefix, const char *name, tn_dtype dt,
                               int nd, const int64_t *shape, int64_t in, tn_rng *r)
{
    tn_tensor *t = tn_params_new(ps, prefix, name, dt, nd, shape);
    if (t) {
        double k = 1.0 / sqrt((double)in);
        tn_tensor_uniform(t, r, -k, k);
    }
    return t;
}

tn_status tn_attention_init(tn_attention *a, tn_params *ps, const char *prefix, tn_attn_kind kind,
                            int64_t query_size, int64_t key_size, int64_t attn_size, tn_dtype dt,
                            tn_rng *r)
{
    if (!a || !ps || !r || query_size < 1 || key_size < 1 ||
        (kind == TN_ATTN_BAHDANAU && attn_size < 1) ||
        (kind != TN_ATTN_BAHDANAU && kind != TN_ATTN_LUONG_DOT && kind != TN_ATTN_LUONG_GENERAL))
        return tn_set_error(TN_ERR_ARG,
                            "tn_attention_init: bad arguments (kind %d, query %lld, key %lld, "
                            "attn %lld)",
                            (int)kind, (long long)query_size, (long long)key_size,
                            (long long)attn_size);
    if (kind == TN_ATTN_LUONG_DOT && query_size != key_size)
        return tn_set_error(TN_ERR_ARG,
                            "tn_attention_init: dot attention needs query size %lld == key size "
                            "%lld",
                            (long long)query_size, (long long)key_size);
    memset(a, 0, sizeof *a);
    a->kind = kind;
    a->query_size = query_size;
    a->key_size = key_size;
    a->attn_size = kind == TN_ATTN_BAHDANAU ? attn_size : 0;
    if (kind == TN_ATTN_BAHDANAU) {
        int64_t A = attn_size;
        /* PyTorch's registration order: key, query, v */
        a->w_key =
            linear_param(ps, prefix, "key.weight", dt, 2, (int64_t[]){A, key_size}, key_size, r);
        a->b_key = linear_param(ps, prefix, "key.bias", dt, 1, (int64_t[]){A}, key_size, r);
        a->w_query = linear_param(ps, prefix, "query.weight", dt, 2, (int64_t[]){A, query_size},
                                  query_size, r);
        a->v = linear_param(ps, prefix, "v.weight", dt, 2, (int64_t[]){1, A}, A, r);
        if (!a->w_key || !a->b_key || !a->w_query || !a->v)
            return tn_last_status();
    } else if (kind == TN_ATTN_LUONG_GENERAL) {
        a->w = linear_param(ps, prefix, "linear.weight", dt, 2, (int64_t[]){query_size, key_size},
                            key_size, r);
        if (!a->w)
            return tn_last_status();
    }
    return TN_OK;
}

static tn_status fail(tn_tape *tp)
{
    const char *e = tn_tape_error(tp);
    return e ? tn_last_status() : TN_ERR_MEMORY;
}

tn_status tn_attention_prepare(tn_tape *tp, const tn_attention *a, tn_tensor *keys,
                               const int32_t *lengths, tn_attn_memory *m)
{
    if (!tp || !a || !m)
        return tn_set_error(TN_ERR_ARG, "tn_attention_prepare: NULL argument");
    memset(m, 0, sizeof *m);
    if (tn_tape_error(tp))
        return tn_last_status();
    if (!keys || keys->ndim != 3 || keys->shape[2] != a->key_size) {
        char buf[64];
        return tn_tape_fail(
            tp, TN_ERR_SHAPE, "tn_attention_prepare: keys %s, expected [B, S, %lld]",
            keys ? tn_shape_str(keys, buf, sizeof buf) : "NULL", (long long)a->key_size);
    }
    int64_t B = keys->shape[0], S = keys->shape[1];
    tn_tensor *mask = tn_tape_tensor(tp, TN_I32, 2, (int64_t[]){B, S});
    if (!mask)
        return fail(tp);
    int32_t *mk = mask->data;
    for (int64_t b = 0; b < B; b++) {
        if (lengths && (lengths[b] < 1 || lengths[b] > S))
            return tn_tape_fail(tp, TN_ERR_INDEX,
                                "tn_attention_prepare: lengths[%lld] = %d outside 1..S = %lld",
                                (long long)b, (int)lengths[b], (long long)S);
        for (int64_t s = 0; s < S; s++)
            mk[b * S + s] = !lengths || s < lengths[b];
    }
    m->keys = keys;
    m->mask = mask;
    if (a->kind == TN_ATTN_BAHDANAU) {
        int64_t A = a->attn_size;
        tn_tensor *k2 = tn_reshape(tp, keys, 2, (int64_t[]){B * S, a->key_size});
        tn_tensor *p = tn_addmm(tp, a->b_key, k2, tn_transpose(tp, a->w_key, 0, 1));
        m->proj = tn_reshape(tp, p, 3, (int64_t[]){B, S, A});
        if (!m->proj)
            return fail(tp);
    }
    return TN_OK;
}

tn_status tn_attention_forward(tn_tape *tp, const tn_attention *a, const tn_attn_memory *m,
                               tn_tensor *query, tn_tensor **context, tn_tensor **weights)
{
    if (context)
        *context = NULL;
    if (weights)
        *weights = NULL;
    if (!tp || !a || !m || !m->keys)
        return tn_set_error(TN_ERR_ARG, "tn_attention_forward: NULL argument or unprepared memory");
    if (tn_tape_error(tp))
        return tn_last_status();
    tn_tensor *keys = m->keys;
    int64_t B = keys->shape[0], S = keys->shape[1], Hk = a->key_size;
    if (!query || query->ndim != 2 || query->shape[0] != B || query->shape[1] != a->query_size) {
        char buf[64];
        return tn_tape_fail(tp, TN_ERR_SHAPE,
                            "tn_attention_forward: query %s, expected [%lld, %lld]",
                            query ? tn_shape_str(query, buf, sizeof buf) : "NULL", (long long)B,
                            (long long)a->query_size);
    }
    tn_tensor *scores; /* [B, S] */
    if (a->kind == TN_ATTN_BAHDANAU) {
        int64_t A = a->attn_size;
        tn_tensor *qp = tn_matmul(tp, query, tn_transpose(tp, a->w_query, 0, 1)); /* [B, A] */
        tn_tensor *e =
            tn_tanh(tp, tn_add(tp, m->proj, tn_reshape(tp, qp, 3, (int64_t[]){B, 1, A})));
        tn_tensor *sc = tn_matmul(tp, tn_reshape(tp, e, 2, (int64_t[]){B * S, A}),
                                  tn_transpose(tp, a->v, 0, 1)); /* [B*S, 1] */
        scores = tn_reshape(tp, sc, 2, (int64_t[]){B, S});
    } else {
        tn_tensor *q = a->kind == TN_ATTN_LUONG_GENERAL ? tn_matmul(tp, query, a->w) : query;
        tn_tensor *sc = tn_bmm(tp, keys, tn_reshape(tp, q, 3, (int64_t[]){B, Hk, 1}));
        scores = tn_reshape(tp, sc, 2, (int64_t[]){B, S});
    }
    tn_tensor *w = tn_softmax_masked(tp, scores, 1, m->mask);
    tn_tensor *ctx = tn_bmm(tp, tn_reshape(tp, w, 3, (int64_t[]){B, 1, S}), keys);
    ctx = tn_reshape(tp, ctx, 2, (int64_t[]){B, Hk});
    if (!ctx)
        return fail(tp);
    if (context)
        *context = ctx;
    if (weights)
        *weights = w;
    return TN_OK;
}
