/* src/nn/lm.c - the stream language model (see tensor/lm.h): Embedding ->
 * tn_rnn -> dropout -> Linear, its checkpoints with their configuration,
 * training windows, evaluation and streaming inference. */
#include "tensor/lm.h"

#include "../core/internal.h"
#include "nn_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LM_MAX_SIZE    INT32_MAX /* vocab, embed, hidden: far above any model */
#define LM_EVAL_WINDOW 256

/* Prefix the last error's message with fn (a copy first: tn_set_error
 * writes over the buffer tn_last_error returns). Returns its status. */
static tn_status prefix_error(const char *fn, const char *path)
{
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", tn_last_error());
    tn_status s = tn_last_status() != TN_OK ? tn_last_status() : TN_ERR_STATE;
    return path ? tn_set_error(s, "%s: %s: %s", fn, path, msg) : tn_set_error(s, "%s: %s", fn, msg);
}

tn_lm_opts tn_lm_defaults(void)
{
    tn_lm_opts o = {.cell = TN_CELL_LSTM, .layers = 1};
    snprintf(o.embed_name, sizeof o.embed_name, "embed");
    snprintf(o.head_name, sizeof o.head_name, "head");
    return o;
}

/* A parameter prefix: 1..TN_LM_NAME_MAX-1 chars, NUL-terminated in its
 * array. */
static bool name_ok(const char *s)
{
    size_t n = strnlen(s, TN_LM_NAME_MAX);
    return n > 0 && n < TN_LM_NAME_MAX;
}

/* The options' values, or TN_ERR_ARG naming fn and the option. */
static tn_status check_opts(const char *fn, const tn_lm_opts *o)
{
    if (tn_cell_gates(o->cell) == 0)
        return tn_set_error(TN_ERR_ARG, "%s: unknown cell %d", fn, (int)o->cell);
    const char *size_names[3] = {"vocab", "embed", "hidden"};
    int64_t sizes[3] = {o->vocab, o->embed, o->hidden};
    for (int i = 0; i < 3; i++)
        if (sizes[i] < 1 || sizes[i] > LM_MAX_SIZE)
            return tn_set_error(TN_ERR_ARG, "%s: %s %" PRId64 " is not in 1..%d", fn, size_names[i],
                                sizes[i], LM_MAX_SIZE);
    if (o->layers < 1 || o->layers > TN_RNN_MAX_LAYERS)
        return tn_set_error(TN_ERR_ARG, "%s: layers %d is not in 1..%d", fn, o->layers,
                            TN_RNN_MAX_LAYERS);
    if (!(o->dropout >= 0 && o->dropout < 1) || !(o->io_dropout >= 0 && o->io_dropout < 1))
        return tn_set_error(TN_ERR_ARG, "%s: dropout %g and io_dropout %g must be in [0, 1)", fn,
                            o->dropout, o->io_dropout);
    if (!(o->init_range >= 0 && isfinite(o->init_range)))
        return tn_set_error(TN_ERR_ARG, "%s: init_range %g must be finite and >= 0", fn,
                            o->init_range);
    if (o->tie && o->embed != o->hidden)
        return tn_set_error(
            TN_ERR_ARG, "%s: tied weights need embed (%" PRId64 ") equal to hidden (%" PRId64 ")",
            fn, o->embed, o->hidden);
    if (!name_ok(o->embed_name) || !name_ok(o->head_name) ||
        strcmp(o->embed_name, o->head_name) == 0 || strcmp(o->embed_name, "rnn") == 0 ||
        strcmp(o->head_name, "rnn") == 0)
        return tn_set_error(TN_ERR_ARG,
                            "%s: embed_name and head_name must be distinct, not \"rnn\", and of "
                            "1..%d characters",
                            fn, TN_LM_NAME_MAX - 1);
    return TN_OK;
}

tn_status tn_lm_init(tn_lm *m, const tn_lm_opts *o, tn_dtype dt, tn_rng *r)
{
    const char *fn = "tn_lm_init";
    if (!m || !o || !r)
        return tn_set_error(TN_ERR_ARG, "%s: NULL argument", fn);
    *m = (tn_lm){0};
    if (dt != TN_F32 && dt != TN_F64)
        return tn_set_error(TN_ERR_ARG, "%s: dtype %s; a model is float32 or float64", fn,
                            tn_dtype_name(dt));
    tn_status s = check_opts(fn, o);
    if (s != TN_OK)
        return s;
    m->o = *o;
    m->dtype = dt;
    tn_params_init(&m->ps);
    char weight[TN_NAME_MAX];
    snprintf(weight, sizeof weight, "%s.weight", o->embed_name);
    s = tn_embedding_init(&m->embed, &m->ps, o->embed_name, o->vocab, o->embed, -1, dt, r);
    if (s == TN_OK)
        s = tn_rnn_init(&m->rnn, &m->ps, "rnn", o->cell, o->embed, o->hidden, o->layers, false,
                        o->dropout, dt, r);
    if (s == TN_OK)
        s = o->tie
                ? tn_linear_init_tied(&m->head, &m->ps, o->head_name, weight, true, dt, r)
                : tn_linear_init(&m->head, &m->ps, o->head_name, o->hidden, o->vocab, true, dt, r);
    if (s != TN_OK) {
        prefix_error(fn, NULL);
        tn_lm_free(m);
        return s;
    }
    if (o->init_range > 0) { /* word_language_model's init_weights */
        tn_tensor_uniform(m->embed.weight, r, -o->init_range, o->init_range);
        if (!o->tie)
            tn_tensor_uniform(m->head.weight, r, -o->init_range, o->init_range);
        tn_tensor_fill(m->head.bias, 0);
    }
    return TN_OK;
}

void tn_lm_free(tn_lm *m)
{
    if (!m)
        return;
    tn_params_free(&m->ps);
    *m = (tn_lm){0};
}

/* ---- the carried state ---- */

tn_lm_state *tn_lm_state_new(const tn_lm *m, int64_t batch)
{
    if (!m || batch < 1 || !m->ps.n) {
        tn_set_error(TN_ERR_ARG, "tn_lm_state_new: %s",
                     !m || !m->ps.n ? "no model" : "batch must be >= 1");
        return NULL;
    }
    tn_lm_state *st = tn_alloc(sizeof *st);
    if (!st) {
        tn_set_error(TN_ERR_MEMORY, "tn_lm_state_new: out of memory");
        return NULL;
    }
    int64_t shape[3] = {m->o.layers, batch, m->o.hidden};
    *st = (tn_lm_state){.h = tn_tensor_new(m->dtype, 3, shape)};
    if (m->o.cell == TN_CELL_LSTM)
        st->c = tn_tensor_new(m->dtype, 3, shape);
    if (!st->h || (m->o.cell == TN_CELL_LSTM && !st->c)) {
        prefix_error("tn_lm_state_new", NULL);
        tn_lm_state_free(st);
        return NULL;
    }
    return st;
}

void tn_lm_state_reset(tn_lm_state *st)
{
    if (!st)
        return;
    if (st->h)
        tn_tensor_fill(st->h, 0);
    if (st->c)
        tn_tensor_fill(st->c, 0);
}

tn_status tn_lm_state_copy(tn_lm_state *dst, const tn_lm_state *src)
{
    if (!dst || !src)
        return tn_set_error(TN_ERR_ARG, "tn_lm_state_copy: NULL state");
    const tn_tensor *a = dst->h, *b = src->h;
    bool same = a->dtype == b->dtype && (dst->c == NULL) == (src->c == NULL);
    for (int k = 0; same && k < 3; k++)
        same = a->shape[k] == b->shape[k];
    if (!same) {
        char x[64], y[64];
        return tn_set_error(TN_ERR_SHAPE,
                            "tn_lm_state_copy: states of other models or batches (%s%s into %s%s)",
                            tn_shape_str(b, y, sizeof y), src->c ? " with c" : "",
                            tn_shape_str(a, x, sizeof x), dst->c ? " with c" : "");
    }
    size_t bytes = (size_t)tn_numel(a) * tn_dtype_size(a->dtype);
    memcpy(dst->h->data, src->h->data, bytes);
    if (src->c)
        memcpy(dst->c->data, src->c->data, bytes);
    return TN_OK;
}

void tn_lm_state_free(tn_lm_state *st)
{
    if (!st)
        return;
    tn_tensor_free(st->h);
    tn_tensor_free(st->c);
    tn_tape_free(st->tp);
    tn_free(st);
}

tn_status tn_lm_state_keep(tn_lm_state *st, const tn_rnn_out *fin)
{
    if (!st || !fin || !st->h || !fin->h_n || (st->c && !fin->c_n))
        return tn_set_error(TN_ERR_ARG, "tn_lm_state_keep: NULL argument or no final state");
    tn_status s = tn_tensor_copy(st->h, fin->h_n);
    if (s == TN_OK && st->c)
        s = tn_tensor_copy(st->c, fin->c_n);
    return s == TN_OK ? s : prefix_error("tn_lm_state_keep", NULL);
}

/* ---- training and evaluation ---- */

/* The head's input [B*T, H] for ids [B, T]: embedding, recurrent layers
 * from st (final state into *fin), dropout. */
static tn_tensor *lm_hidden(tn_tape *tp, const tn_lm *m, const tn_lm_state *st, tn_tensor *ids,
                            tn_rnn_out *fin)
{
    if (!tp)
        return NULL;
    if (!m || !ids || !fin) {
        tn_tape_fail(tp, TN_ERR_ARG, "tn_lm_forward: NULL argument");
        return NULL;
    }
    tn_tensor *x = tn_embedding_forward(tp, &m->embed, ids); /* [B, T, E] */
    if (m->o.io_dropout > 0)
        x = tn_dropout(tp, x, m->o.io_dropout);
    if (tn_rnn_forward(tp, &m->rnn, x, st ? st->h : NULL, st ? st->c : NULL, NULL, fin) != TN_OK)
        return NULL;
    tn_tensor *y = fin->output; /* [B, T, H] */
    if (m->o.io_dropout > 0)
        y = tn_dropout(tp, y, m->o.io_dropout);
    return tn_reshape(tp, y, 2, (int64_t[]){-1, m->o.hidden});
}

tn_tensor *tn_lm_forward(tn_tape *tp, const tn_lm *m, const tn_lm_state *st, tn_tensor *ids,
                         tn_rnn_out *fin)
{
    tn_tensor *hid = lm_hidden(tp, m, st, ids, fin);
    return hid ? tn_linear_forward(tp, &m->head, hid) : NULL; /* [B*T, V] */
}

tn_tensor *tn_lm_loss(tn_tape *tp, const tn_lm *m, const tn_lm_state *st, tn_tensor *ids,
                      tn_tensor *targets, tn_rnn_out *fin)
{
    tn_tensor *hid = lm_hidden(tp, m, st, ids, fin);
    return hid ? tn_linear_cross_entropy(tp, hid, m->head.weight, m->head.bias, targets, NULL, -1,
                                         0.0, TN_REDUCE_MEAN)
               : NULL;
}

tn_status tn_lm_window(tn_lm_state *st, const int32_t *ids, int64_t stream, int64_t r0,
                       int64_t *pos, tn_tensor *x, tn_tensor *y)
{
    if (!ids || !pos || !x || !y || x->dtype != TN_I32 || y->dtype != TN_I32 || x->ndim != 2 ||
        y->ndim != 1 || !tn_is_contiguous(x) || !tn_is_contiguous(y) ||
        y->shape[0] != x->shape[0] * x->shape[1] || r0 < 0 || stream < x->shape[1] + 1)
        return tn_set_error(TN_ERR_ARG,
                            "tn_lm_window: need x [B, T] and y [B*T] (contiguous int32), "
                            "stream >= T + 1 and r0 >= 0");
    int64_t B = x->shape[0], T = x->shape[1];
    /* end of the streams (*pos + T + 1 > stream, written so that it cannot
     * overflow): start over from a zero state */
    if (*pos < 0 || *pos > stream - T - 1) {
        *pos = 0;
        tn_lm_state_reset(st);
    }
    int32_t *xd = x->data, *yd = y->data;
    for (int64_t b = 0; b < B; b++)
        for (int64_t s = 0; s < T; s++) {
            xd[b * T + s] = ids[(r0 + b) * stream + *pos + s];
            yd[b * T + s] = ids[(r0 + b) * stream + *pos + s + 1];
        }
    return TN_OK;
}

/* The summed cross-entropy of eval's windows, from a zero state st. */
static tn_status eval_windows(const tn_lm *m, tn_tape *tp, tn_lm_state *st, const int32_t *ids,
                              int64_t n, double *total)
{
    *total = 0;
    for (int64_t s = 0; s + 1 < n; s += LM_EVAL_WINDOW) {
        int64_t len = n - 1 - s < LM_EVAL_WINDOW ? n - 1 - s : LM_EVAL_WINDOW;
        tn_tape_reset(tp);
        tn_tensor *x = tn_tape_tensor(tp, TN_I32, 2, (int64_t[]){1, len});
        tn_tensor *y = tn_tape_tensor(tp, TN_I32, 1, (int64_t[]){len});
        if (!x || !y)
            return tn_set_error(tn_tape_status(tp), "tn_lm_eval: %s", tn_tape_error(tp));
        memcpy(x->data, ids + s, (size_t)len * sizeof(int32_t));
        memcpy(y->data, ids + s + 1, (size_t)len * sizeof(int32_t));
        tn_rnn_out fin;
        tn_tensor *loss =
            tn_cross_entropy(tp, tn_lm_forward(tp, m, st, x, &fin), y, -1, TN_REDUCE_SUM);
        if (!loss || tn_tape_error(tp))
            return tn_set_error(tn_tape_status(tp) != TN_OK ? tn_tape_status(tp) : TN_ERR_STATE,
                                "tn_lm_eval: %s", tn_tape_error(tp) ? tn_tape_error(tp) : "");
        /* a NaN or infinite parameter: the mean would be meaningless */
        double l = tn_tensor_get(loss, 0);
        if (!isfinite(l))
            return tn_set_error(TN_ERR_NUMERIC,
                                "tn_lm_eval: the loss of tokens %" PRId64 "..%" PRId64
                                " is %g: the model's output is not finite",
                                s + 1, s + len, l);
        tn_status k = tn_lm_state_keep(st, &fin);
        if (k != TN_OK)
            return k;
        *total += l;
    }
    return TN_OK;
}

tn_status tn_lm_eval(const tn_lm *m, tn_tape *tp, const int32_t *ids, int64_t n, double *nll)
{
    if (!m || !ids || !nll || n < 2)
        return tn_set_error(TN_ERR_ARG, "tn_lm_eval: %s",
                            n < 2 ? "fewer than 2 tokens" : "NULL argument");
    tn_tape *own = tp ? NULL : tn_tape_new();
    if (!tp && !own)
        return tn_set_error(TN_ERR_MEMORY, "tn_lm_eval: out of memory");
    if (own)
        tp = own;
    tn_lm_state *st = tn_lm_state_new(m, 1);
    if (!st) {
        tn_tape_free(own);
        return tn_last_status();
    }
    bool was_grad = tn_tape_set_grad(tp, false), was_training = tn_tape_training(tp);
    tn_tape_set_training(tp, false);
    double total;
    tn_status s = eval_windows(m, tp, st, ids, n, &total);
    tn_tape_reset(tp);
    tn_tape_set_grad(tp, was_grad);
    tn_tape_set_training(tp, was_training);
    tn_lm_state_free(st);
    tn_tape_free(own);
    if (s == TN_OK)
        *nll = total / (double)(n - 1);
    return s;
}

/* ---- streaming inference ---- */

tn_status tn_lm_step(const tn_lm *m, tn_lm_state *st, const int32_t *ids, float *logits_out)
{
    const char *fn = "tn_lm_step";
    if (!m || !st || !st->h || !ids || !logits_out)
        return tn_set_error(TN_ERR_ARG, "%s: NULL argument", fn);
    if (!st->tp) {
        if (!(st->tp = tn_tape_new()))
            return tn_set_error(TN_ERR_MEMORY, "%s: out of memory", fn);
        tn_tape_set_grad(st->tp, false);
        tn_tape_set_training(st->tp, false);
    }
    tn_tape *tp = st->tp;
    int64_t B = st->h->shape[1], V = m->o.vocab;
    tn_tape_reset(tp);
    tn_tensor *x = tn_tape_tensor(tp, TN_I32, 2, (int64_t[]){B, 1});
    if (x)
        memcpy(x->data, ids, (size_t)B * sizeof *ids);
    tn_rnn_out fin;
    tn_tensor *logits = x ? tn_lm_forward(tp, m, st, x, &fin) : NULL; /* [B, V] */
    if (!logits || tn_tape_error(tp)) {
        tn_status s = tn_tape_status(tp) != TN_OK ? tn_tape_status(tp) : TN_ERR_STATE;
        tn_set_error(s, "%s: %s", fn, tn_tape_error(tp) ? tn_tape_error(tp) : "");
        tn_tape_reset(tp);
        return s;
    }
    if (logits->dtype == TN_F32 && tn_is_contiguous(logits))
        memcpy(logits_out, logits->data, (size_t)(B * V) * sizeof(float));
    else
        for (int64_t i = 0; i < B * V; i++)
            logits_out[i] = (float)tn_tensor_get(logits, i);
    tn_status s = tn_lm_state_keep(st, &fin); /* the forward is done with st */
    tn_tape_reset(tp);
    return s;
}

/* ---- checkpoints ---- */

#define KEY_FORMAT     "lm.format"
#define KEY_CELL       "lm.cell"
#define KEY_VOCAB      "lm.vocab"
#define KEY_EMBED      "lm.embed"
#define KEY_HIDDEN     "lm.hidden"
#define KEY_LAYERS     "lm.layers"
#define KEY_DROPOUT    "lm.dropout"
#define KEY_IO_DROPOUT "lm.io_dropout"
#define KEY_TIE        "lm.tie"
#define KEY_EMBED_NAME "lm.embed_name"
#define KEY_HEAD_NAME  "lm.head_name"

/* A set that borrows st's tensors under the names "state.h", "state.c"
 * (items from tn_alloc: release with tn_free(set->items), never
 * tn_params_free). TN_ERR_MEMORY when out of memory. */
static tn_status state_set(const tn_lm_state *st, tn_params *set)
{
    tn_params_init(set);
    set->items = tn_alloc(2 * sizeof *set->items);
    if (!set->items)
        return tn_set_error(TN_ERR_MEMORY, "tn_lm: out of memory");
    set->n = set->cap = st->c ? 2 : 1;
    memset(set->items, 0, 2 * sizeof *set->items);
    snprintf(set->items[0].name, TN_NAME_MAX, "state.h");
    set->items[0].t = st->h;
    if (st->c) {
        snprintf(set->items[1].name, TN_NAME_MAX, "state.c");
        set->items[1].t = st->c;
    }
    return TN_OK;
}

/* meta plus m's lm.* keys. */
static tn_status lm_meta(const tn_lm *m, tn_meta *meta)
{
    const tn_lm_opts *o = &m->o;
    tn_status s = tn_meta_set(meta, KEY_FORMAT, "1");
    if (s == TN_OK)
        s = tn_meta_set(meta, KEY_CELL, tn_cell_name(o->cell));
    if (s == TN_OK)
        s = tn_meta_set_int(meta, KEY_VOCAB, o->vocab);
    if (s == TN_OK)
        s = tn_meta_set_int(meta, KEY_EMBED, o->embed);
    if (s == TN_OK)
        s = tn_meta_set_int(meta, KEY_HIDDEN, o->hidden);
    if (s == TN_OK)
        s = tn_meta_set_int(meta, KEY_LAYERS, o->layers);
    if (s == TN_OK)
        s = tn__meta_set_double(meta, KEY_DROPOUT, o->dropout);
    if (s == TN_OK)
        s = tn__meta_set_double(meta, KEY_IO_DROPOUT, o->io_dropout);
    if (s == TN_OK)
        s = tn_meta_set(meta, KEY_TIE, o->tie ? "1" : "0");
    if (s == TN_OK)
        s = tn_meta_set(meta, KEY_EMBED_NAME, o->embed_name);
    if (s == TN_OK)
        s = tn_meta_set(meta, KEY_HEAD_NAME, o->head_name);
    return s;
}

tn_status tn_lm_save(const char *path, const tn_lm *m, const tn_lm_state *st,
                     tn_params *const *extra, int nextra, const tn_meta *meta)
{
    const char *fn = "tn_lm_save";
    if (!path || !m || !m->ps.n || nextra < 0 || (nextra > 0 && !extra) || (st && !st->h))
        return tn_set_error(TN_ERR_ARG, "%s: NULL argument, no model or a bad nextra", fn);
    tn_params **sets = tn_alloc((size_t)(nextra + 2) * sizeof *sets);
    tn_meta all;
    tn_meta_init(&all);
    tn_params sset;
    tn_params_init(&sset);
    tn_status s = sets ? TN_OK : tn_set_error(TN_ERR_MEMORY, "%s: out of memory", fn);
    for (int i = 0; s == TN_OK && meta && i < meta->n; i++)
        s = tn_meta_set(&all, meta->keys[i], meta->values[i]);
    if (s == TN_OK)
        s = lm_meta(m, &all);
    if (s == TN_OK && st)
        s = state_set(st, &sset);
    if (s == TN_OK) {
        int n = 0;
        sets[n++] = (tn_params *)&m->ps; /* tn_save only reads the sets */
        if (st)
            sets[n++] = &sset;
        for (int i = 0; i < nextra; i++)
            if (extra[i])
                sets[n++] = extra[i];
        s = tn_save(path, sets, n, &all);
    }
    tn_free(sset.items);
    tn_meta_free(&all);
    tn_free(sets);
    return s;
}

/* ---- building a model from a file ---- */

static tn_status meta_error(const char *path, const char *key, const char *value, const char *want)
{
    return tn__meta_error("tn_lm_open", "tn_lm_save", path, key, value, want);
}

static tn_status meta_int(const char *path, const tn_meta *meta, const char *key, int64_t lo,
                          int64_t hi, int64_t *out)
{
    return tn__meta_int("tn_lm_open", "tn_lm_save", path, meta, key, lo, hi, out);
}

static tn_status meta_name(const char *path, const tn_meta *meta, const char *key, char *out)
{
    const char *v = tn_meta_get(meta, key);
    if (!v || !*v || strlen(v) >= TN_LM_NAME_MAX || strcmp(v, "rnn") == 0)
        return meta_error(path, key, v, "not a parameter prefix of 1..47 characters");
    snprintf(out, TN_LM_NAME_MAX, "%s", v);
    return TN_OK;
}

/* The options the lm.* keys of meta (read from path) describe. */
static tn_status opts_from_meta(const char *path, const tn_meta *meta, tn_lm_opts *o)
{
    *o = tn_lm_defaults();
    const char *fmt = tn_meta_get(meta, KEY_FORMAT), *cell = tn_meta_get(meta, KEY_CELL);
    const char *tie = tn_meta_get(meta, KEY_TIE);
    if (!fmt || strcmp(fmt, "1") != 0)
        return meta_error(path, KEY_FORMAT, fmt, "unknown (this library reads \"1\")");
    /* the names tn_lm_save writes (tn_cell_name), and "rnn" for rnn_tanh */
    int c = cell && strcmp(cell, "rnn") == 0 ? TN_CELL_RNN_TANH : -1;
    for (int k = TN_CELL_RNN_TANH; cell && c < 0 && k <= TN_CELL_GRU; k++)
        if (strcmp(cell, tn_cell_name((tn_cell)k)) == 0)
            c = k;
    if (c < 0)
        return meta_error(path, KEY_CELL, cell, "not lstm, gru, rnn_tanh, rnn_relu or rnn");
    o->cell = (tn_cell)c;
    int64_t L;
    tn_status s = meta_int(path, meta, KEY_VOCAB, 1, LM_MAX_SIZE, &o->vocab);
    if (s == TN_OK)
        s = meta_int(path, meta, KEY_EMBED, 1, LM_MAX_SIZE, &o->embed);
    if (s == TN_OK)
        s = meta_int(path, meta, KEY_HIDDEN, 1, LM_MAX_SIZE, &o->hidden);
    if (s == TN_OK)
        s = meta_int(path, meta, KEY_LAYERS, 1, TN_RNN_MAX_LAYERS, &L);
    if (s == TN_OK)
        s = tn__meta_fraction("tn_lm_open", "tn_lm_save", path, meta, KEY_DROPOUT, &o->dropout);
    if (s == TN_OK)
        s = tn__meta_fraction("tn_lm_open", "tn_lm_save", path, meta, KEY_IO_DROPOUT,
                              &o->io_dropout);
    if (s == TN_OK && (!tie || (strcmp(tie, "0") != 0 && strcmp(tie, "1") != 0)))
        s = meta_error(path, KEY_TIE, tie, "not 0 or 1");
    if (s == TN_OK)
        s = meta_name(path, meta, KEY_EMBED_NAME, o->embed_name);
    if (s == TN_OK)
        s = meta_name(path, meta, KEY_HEAD_NAME, o->head_name);
    if (s != TN_OK)
        return s;
    o->layers = (int)L;
    o->tie = strcmp(tie, "1") == 0;
    if (o->tie && o->embed != o->hidden)
        return meta_error(path, KEY_TIE, tie, "but lm.embed differs from lm.hidden");
    if (strcmp(o->embed_name, o->head_name) == 0)
        return meta_error(path, KEY_HEAD_NAME, o->head_name, "the same as lm.embed_name");
    return TN_OK;
}

/* The sizes of o against the tensors of path (listed in ents): the
 * embedding, the first input weights, the last recurrent weights and the
 * untied head, so that the model is no larger than the file. keys: the
 * options came from the lm.* metadata keys (named so in the message). */
static tn_status check_sizes(const char *path, const tn_ckpt_entry *ents, int n,
                             const tn_lm_opts *o, bool keys)
{
    int64_t GH = tn_cell_gates(o->cell) * o->hidden;
    char embed[TN_NAME_MAX], head[TN_NAME_MAX], hh[32], sizes[200];
    snprintf(embed, sizeof embed, "%s.weight", o->embed_name);
    snprintf(head, sizeof head, "%s.weight", o->head_name);
    snprintf(hh, sizeof hh, "rnn.weight_hh_l%d", o->layers - 1);
    const char *p = keys ? "lm." : "";
    snprintf(sizes, sizeof sizes,
             "%svocab %" PRId64 ", %sembed %" PRId64 ", %shidden %" PRId64 ", %slayers %d", p,
             o->vocab, p, o->embed, p, o->hidden, p, o->layers);
    struct {
        const char *name;
        int64_t rows, cols;
    } want[4] = {{embed, o->vocab, o->embed},
                 {"rnn.weight_ih_l0", GH, o->embed},
                 {hh, GH, o->hidden},
                 {head, o->vocab, o->hidden}};
    for (int i = 0; i < (o->tie ? 3 : 4); i++) {
        const tn_ckpt_entry *e = tn__ckpt_find(ents, n, want[i].name);
        if (e && e->ndim == 2 && e->shape[0] == want[i].rows && e->shape[1] == want[i].cols)
            continue;
        char has[96] = "no such tensor";
        if (e) { /* tn_shape_str reads only ndim and shape */
            tn_tensor like = {.ndim = e->ndim};
            memcpy(like.shape, e->shape, sizeof like.shape);
            tn_shape_str(&like, has, sizeof has);
        }
        return tn_set_error(TN_ERR_FORMAT,
                            "tn_lm_open: %s: metadata (%s) needs tensor %s of [%" PRId64
                            ", %" PRId64 "]; the file has %s",
                            path, sizes, want[i].name, want[i].rows, want[i].cols, has);
    }
    return TN_OK;
}

tn_status tn_lm_open(const char *path, tn_lm *m, const tn_lm_opts *o, tn_meta *meta_out)
{
    const char *fn = "tn_lm_open";
    if (!path || !m)
        return tn_set_error(TN_ERR_ARG, "%s: NULL argument", fn);
    *m = (tn_lm){0};
    tn_meta meta;
    tn_meta_init(&meta);
    tn_lm_opts opts;
    tn_status s = TN_OK;
    if (!o || meta_out)
        s = tn_load_meta(path, &meta);
    if (s == TN_OK && o) {
        opts = *o;
        s = check_opts(fn, &opts);
    } else if (s == TN_OK) {
        s = opts_from_meta(path, &meta, &opts);
    }
    tn_ckpt_entry *ents = NULL;
    int n = 0;
    if (s == TN_OK)
        s = tn_load_list(path, &ents, &n);
    if (s == TN_OK)
        s = check_sizes(path, ents, n, &opts, !o);
    tn_dtype dt = TN_F32; /* the file's embedding's: F64 stays F64 */
    if (s == TN_OK) {
        char embed[TN_NAME_MAX];
        snprintf(embed, sizeof embed, "%s.weight", opts.embed_name);
        dt = tn__ckpt_find(ents, n, embed)->dtype;
    }
    tn_ckpt_entries_free(ents, n);
    if (s == TN_OK) {
        tn_rng r;
        tn_rng_seed(&r, 0);
        s = tn_lm_init(m, &opts, dt, &r);
    }
    if (s == TN_OK && meta_out) {
        tn_meta_free(meta_out);
        *meta_out = meta;
    } else {
        tn_meta_free(&meta);
    }
    return s;
}

/* Whether name is that of a parameter of m's modules (<module>.<x>, x
 * without a dot), whether or not m has it. */
static bool module_param_name(const tn_lm *m, const char *name)
{
    const char *mods[3] = {m->o.embed_name, "rnn", m->o.head_name};
    for (int i = 0; i < 3; i++) {
        size_t k = strlen(mods[i]);
        if (strncmp(name, mods[i], k) == 0 && name[k] == '.' && !strchr(name + k + 1, '.'))
            return true;
    }
    return false;
}

/* Add a new tensor shaped as e to the scratch set skip (tensors of the
 * file nobody asked for: tn_load is strict). */
static tn_status skip_entry(const char *path, tn_params *skip, const tn_ckpt_entry *e)
{
    if (e->ndim < 1 || strlen(e->name) >= TN_NAME_MAX)
        return tn_set_error(TN_ERR_FORMAT,
                            "tn_lm_load_params: %s: cannot skip tensor %s "
                            "(a scalar, or a name too long)",
                            path, e->name);
    if (skip->n == skip->cap) {
        int cap = skip->cap ? 2 * skip->cap : 8;
        tn_param *items = tn_alloc((size_t)cap * sizeof *items);
        if (!items)
            return tn_set_error(TN_ERR_MEMORY, "tn_lm_load_params: out of memory");
        if (skip->n)
            memcpy(items, skip->items, (size_t)skip->n * sizeof *items);
        tn_free(skip->items);
        skip->items = items;
        skip->cap = cap;
    }
    tn_tensor *t = tn_tensor_new(e->dtype, e->ndim, e->shape);
    if (!t)
        return prefix_error("tn_lm_load_params", path);
    snprintf(skip->items[skip->n].name, TN_NAME_MAX, "%s", e->name);
    skip->items[skip->n++].t = t;
    return TN_OK;
}

/* The file's carried state (state.h at e, state.c at ec or NULL) checked
 * against m: a new state for it in *st. */
static tn_status file_state(const char *path, const tn_lm *m, const tn_ckpt_entry *e,
                            const tn_ckpt_entry *ec, tn_lm_state **st)
{
    bool lstm = m->o.cell == TN_CELL_LSTM;
    bool ok = e->ndim == 3 && e->shape[0] == m->o.layers && e->shape[2] == m->o.hidden &&
              e->shape[1] >= 1 && (lstm == (ec != NULL));
    for (int d = 0; ok && ec && d < 3; d++)
        ok = ec->ndim == 3 && ec->shape[d] == e->shape[d];
    if (!ok)
        return tn_set_error(TN_ERR_FORMAT,
                            "tn_lm_load_params: %s: the carried state must be state.h%s "
                            "[layers %d, batch, hidden %" PRId64 "]",
                            path, lstm ? " and state.c" : " alone", m->o.layers, m->o.hidden);
    *st = tn_lm_state_new(m, e->shape[1]);
    return *st ? TN_OK : tn_last_status();
}

tn_status tn_lm_load_params(const char *path, tn_lm *m, tn_lm_state **st_out,
                            tn_params *const *extra, int nextra, tn_meta *meta_out)
{
    const char *fn = "tn_lm_load_params";
    if (st_out)
        *st_out = NULL;
    if (!path || !m || !m->ps.n || nextra < 0 || (nextra > 0 && !extra))
        return tn_set_error(TN_ERR_ARG, "%s: NULL argument, no model or a bad nextra", fn);
    tn_ckpt_entry *ents = NULL;
    int n = 0;
    tn_status s = tn_load_list(path, &ents, &n);
    if (s != TN_OK)
        return s;
    tn_params skip, sset;
    tn_params_init(&skip);
    tn_params_init(&sset);
    tn_lm_state *st = NULL;
    const tn_ckpt_entry *eh = tn__ckpt_find(ents, n, "state.h"),
                        *ec = tn__ckpt_find(ents, n, "state.c");
    if (st_out && eh)
        s = file_state(path, m, eh, ec, &st);
    if (s == TN_OK && st)
        s = state_set(st, &sset);
    for (int i = 0; s == TN_OK && i < n; i++) {
        const char *name = ents[i].name;
        bool is_state = strcmp(name, "state.h") == 0 || strcmp(name, "state.c") == 0;
        if (tn_params_get(&m->ps, name) || (is_state && st))
            continue;
        if (module_param_name(m, name))
            s = tn_set_error(TN_ERR_FORMAT,
                             "%s: %s: tensor %s is not a parameter of this model (%s, %d "
                             "layer(s), vocab %" PRId64 ", embed %" PRId64 ", hidden %" PRId64
                             "%s)",
                             fn, path, name, tn_cell_name(m->o.cell), m->o.layers, m->o.vocab,
                             m->o.embed, m->o.hidden, m->o.tie ? ", tied" : "");
        else if (is_state || nextra == 0)
            s = skip_entry(path, &skip, &ents[i]);
    }
    tn_ckpt_entries_free(ents, n);
    tn_params **sets = NULL;
    if (s == TN_OK && !(sets = tn_alloc((size_t)(nextra + 3) * sizeof *sets)))
        s = tn_set_error(TN_ERR_MEMORY, "%s: out of memory", fn);
    if (s == TN_OK) {
        int k = 0;
        sets[k++] = &m->ps;
        if (st)
            sets[k++] = &sset;
        for (int i = 0; i < nextra; i++)
            if (extra[i])
                sets[k++] = extra[i];
        if (skip.n)
            sets[k++] = &skip;
        s = tn_load(path, sets, k, meta_out);
    }
    tn_free(sets);
    tn_free(sset.items);
    tn_params_free(&skip);
    if (s != TN_OK)
        tn_lm_state_free(st);
    else if (st_out)
        *st_out = st;
    return s;
}

tn_status tn_lm_load(const char *path, tn_lm *m, tn_lm_state **st_out, tn_meta *meta_out)
{
    if (st_out)
        *st_out = NULL;
    tn_status s = tn_lm_open(path, m, NULL, NULL);
    if (s == TN_OK && (s = tn_lm_load_params(path, m, st_out, NULL, 0, meta_out)) != TN_OK)
        tn_lm_free(m);
    return s;
}
