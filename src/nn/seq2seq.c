/* src/nn/seq2seq.c - encoder-decoder with attention, teacher-forced
 * training loss, greedy and beam-search decoding (tensor/nn.h), from the
 * public ops and layers.
 *
 * Shapes: src [B, S] ids, encoder output (the attention's keys)
 * [B, S, D*H], decoder state per layer h, c [B, H], feed [B, H], logits
 * [B, V]. Decoding keeps `beam` rows per sentence (row b*beam + i); the
 * states follow their hypotheses by gathering rows (tn_gather_rows).
 */
#include "tensor/nn.h"

#include "../core/internal.h"
#include "nn_internal.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The decoder's state between steps. */
typedef struct dstate {
    tn_tensor *h[TN_RNN_MAX_LAYERS], *c[TN_RNN_MAX_LAYERS];
    tn_tensor *feed; /* [B, H]: the previous attentional output (input feeding) */
} dstate;

static bool with_attn(const tn_seq2seq *m) { return m->o.attention >= 0; }

tn_status tn_seq2seq_init(tn_seq2seq *m, tn_params *ps, const char *prefix,
                          const tn_seq2seq_opts *o, tn_dtype dt, tn_rng *r)
{
    if (!m || !ps || !o || !r)
        return tn_set_error(TN_ERR_ARG, "tn_seq2seq_init: NULL argument");
    const char *bad = NULL;
    if (o->src_vocab < 1 || o->tgt_vocab < 3)
        bad = "src_vocab >= 1 and tgt_vocab >= 3";
    else if (o->embed < 1 || o->hidden < 1)
        bad = "embed and hidden >= 1";
    else if (o->layers < 1 || o->layers > TN_RNN_MAX_LAYERS)
        bad = "layers in 1..TN_RNN_MAX_LAYERS";
    else if (o->attention < -1 || o->attention > TN_ATTN_LUONG_GENERAL)
        bad = "attention -1 (none) or a tn_attn_kind";
    else if (!(o->dropout >= 0 && o->dropout < 1))
        bad = "dropout in [0, 1)";
    else if (o->src_pad < 0 || o->src_pad >= o->src_vocab)
        bad = "src_pad in 0..src_vocab-1";
    else if (o->tgt_pad < 0 || o->tgt_pad >= o->tgt_vocab || o->sos < 0 || o->sos >= o->tgt_vocab ||
             o->eos < 0 || o->eos >= o->tgt_vocab || o->sos == o->eos || o->tgt_pad == o->eos ||
             o->tgt_pad == o->sos)
        bad = "tgt_pad, sos and eos distinct ids in 0..tgt_vocab-1";
    if (bad)
        return tn_set_error(TN_ERR_ARG, "tn_seq2seq_init: bad options: need %s", bad);
    memset(m, 0, sizeof *m);
    m->o = *o;
    int64_t E = o->embed, H = o->hidden, D = o->bidirectional ? 2 : 1;
    char pre[TN_NAME_MAX + 2], name[2 * TN_NAME_MAX + 40];
    snprintf(pre, sizeof pre, "%s%s", prefix && *prefix ? prefix : "",
             prefix && *prefix ? "." : "");
#define SUB(s) (snprintf(name, sizeof name, "%s%s", pre, s), name)
    tn_status st;
    if ((st = tn_embedding_init(&m->src_embed, ps, SUB("src_embed"), o->src_vocab, E, o->src_pad,
                                dt, r)) ||
        (st = tn_embedding_init(&m->tgt_embed, ps, SUB("tgt_embed"), o->tgt_vocab, E, o->tgt_pad,
                                dt, r)) ||
        (st = tn_rnn_init(&m->encoder, ps, SUB("encoder"), o->cell, E, H, o->layers,
                          o->bidirectional, o->dropout, dt, r)) ||
        (st = tn_linear_init(&m->bridge, ps, SUB("bridge"), D * H, H, true, dt, r)))
        return st;
    if (o->cell == TN_CELL_LSTM &&
        (st = tn_linear_init(&m->bridge_c, ps, SUB("bridge_c"), D * H, H, true, dt, r)))
        return st;
    for (int l = 0; l < o->layers; l++) {
        char cell[32];
        snprintf(cell, sizeof cell, "decoder.%d", l);
        int64_t in = l == 0 ? E + (o->attention >= 0 ? H : 0) : H;
        if ((st = tn_rnn_cell_init(&m->dec[l], ps, SUB(cell), o->cell, in, H, dt, r)))
            return st;
    }
    if (o->attention >= 0 &&
        ((st = tn_attention_init(&m->attn, ps, SUB("attn"), (tn_attn_kind)o->attention, H, D * H, H,
                                 dt, r)) ||
         (st = tn_linear_init(&m->combine, ps, SUB("combine"), H + D * H, H, false, dt, r))))
        return st;
    return tn_linear_init(&m->out, ps, SUB("out"), H, o->tgt_vocab, true, dt, r);
#undef SUB
}

/* An int32 tape tensor [n] holding ids. */
static tn_tensor *ids_tensor(tn_tape *tp, int64_t n, const int32_t *ids)
{
    tn_tensor *t = tn_tape_tensor(tp, TN_I32, 1, (int64_t[]){n});
    if (t)
        memcpy(t->data, ids, (size_t)n * sizeof *ids);
    return t;
}

/* Check src [B, S] and src_len for function fn. */
static tn_status check_src(tn_tape *tp, const char *fn, const tn_seq2seq *m, tn_tensor *src,
                           const int32_t *src_len)
{
    if (!tp || !m || !src || !src_len)
        return tn_set_error(TN_ERR_ARG, "%s: NULL argument", fn);
    if (tn_tape_error(tp))
        return tn_last_status();
    if (src->dtype != TN_I32 || src->ndim != 2) {
        char buf[64];
        return tn_tape_fail(tp, TN_ERR_SHAPE, "%s: src %s %s, expected int32 [B, S]", fn,
                            tn_dtype_name(src->dtype), tn_shape_str(src, buf, sizeof buf));
    }
    for (int64_t b = 0; b < src->shape[0]; b++)
        if (src_len[b] < 1 || src_len[b] > src->shape[1])
            return tn_tape_fail(tp, TN_ERR_INDEX, "%s: src_len[%lld] = %d outside 1..S = %lld", fn,
                                (long long)b, (int)src_len[b], (long long)src->shape[1]);
    return TN_OK;
}

/* Run the encoder; mem gets the attention's memory, st the decoder's first
 * state (feed zero). */
static tn_status encode(tn_tape *tp, const tn_seq2seq *m, tn_tensor *src, const int32_t *src_len,
                        tn_attn_memory *mem, dstate *st)
{
    const tn_seq2seq_opts *o = &m->o;
    int64_t B = src->shape[0], H = o->hidden, D = o->bidirectional ? 2 : 1;
    tn_tensor *x = tn_dropout(tp, tn_embedding_forward(tp, &m->src_embed, src), o->dropout);
    tn_rnn_out enc;
    tn_status s = tn_rnn_forward(tp, &m->encoder, x, NULL, NULL, src_len, &enc);
    if (s)
        return s;
    memset(st, 0, sizeof *st);
    memset(mem, 0, sizeof *mem);
    if (with_attn(m) && (s = tn_attention_prepare(tp, &m->attn, enc.output, src_len, mem)))
        return s;
    for (int l = 0; l < o->layers; l++) {
        tn_tensor *parts[2][2];
        for (int64_t d = 0; d < D; d++) {
            parts[0][d] =
                tn_reshape(tp, tn_narrow(tp, enc.h_n, 0, l * D + d, 1), 2, (int64_t[]){B, H});
            if (enc.c_n)
                parts[1][d] =
                    tn_reshape(tp, tn_narrow(tp, enc.c_n, 0, l * D + d, 1), 2, (int64_t[]){B, H});
        }
        st->h[l] =
            tn_tanh(tp, tn_linear_forward(tp, &m->bridge,
                                          D == 1 ? parts[0][0] : tn_concat(tp, 2, parts[0], 1)));
        if (enc.c_n)
            st->c[l] = tn_tanh(
                tp, tn_linear_forward(tp, &m->bridge_c,
                                      D == 1 ? parts[1][0] : tn_concat(tp, 2, parts[1], 1)));
    }
    st->feed = with_attn(m) ? tn_tape_tensor(tp, m->out.weight->dtype, 2, (int64_t[]){B, H}) : NULL;
    return tn_tape_error(tp) ? tn_last_status() : TN_OK;
}

/* One decoder step from y_prev (int32 [B]): updates st; returns the
 * output layer's input [B, H], dropout applied (and the attention weights
 * [B, S] in *w when w is not NULL). */
static tn_tensor *decode_features(tn_tape *tp, const tn_seq2seq *m, const tn_attn_memory *mem,
                                  tn_tensor *y_prev, dstate *st, tn_tensor **w)
{
    const tn_seq2seq_opts *o = &m->o;
    tn_tensor *x = tn_dropout(tp, tn_embedding_forward(tp, &m->tgt_embed, y_prev), o->dropout);
    if (with_attn(m))
        x = tn_concat(tp, 2, (tn_tensor *[]){x, st->feed}, 1);
    for (int l = 0; l < o->layers; l++) {
        if (l > 0)
            x = tn_dropout(tp, x, o->dropout);
        tn_tensor *c_out = NULL;
        st->h[l] = tn_rnn_cell_forward(tp, &m->dec[l], x, st->h[l], st->c[l], &c_out);
        st->c[l] = c_out;
        x = st->h[l];
    }
    tn_tensor *top = x;
    if (with_attn(m)) {
        tn_tensor *ctx = NULL;
        if (tn_attention_forward(tp, &m->attn, mem, top, &ctx, w))
            return NULL;
        top = tn_tanh(
            tp, tn_linear_forward(tp, &m->combine, tn_concat(tp, 2, (tn_tensor *[]){top, ctx}, 1)));
        st->feed = top;
    }
    return tn_dropout(tp, top, o->dropout);
}

/* The same step's logits [B, V]. */
static tn_tensor *decode_step(tn_tape *tp, const tn_seq2seq *m, const tn_attn_memory *mem,
                              tn_tensor *y_prev, dstate *st, tn_tensor **w)
{
    tn_tensor *top = decode_features(tp, m, mem, y_prev, st, w);
    return top ? tn_linear_forward(tp, &m->out, top) : NULL;
}

tn_status tn_seq2seq_loss(tn_tape *tp, const tn_seq2seq *m, tn_tensor *src, const int32_t *src_len,
                          tn_tensor *tgt, double teacher_forcing, tn_rng *rng, tn_tensor **loss)
{
    if (loss)
        *loss = NULL;
    tn_status s = check_src(tp, "tn_seq2seq_loss", m, src, src_len);
    if (s)
        return s;
    if (!loss || !rng || !tgt)
        return tn_set_error(TN_ERR_ARG, "tn_seq2seq_loss: NULL argument");
    int64_t B = src->shape[0];
    if (tgt->dtype != TN_I32 || tgt->ndim != 2 || tgt->shape[0] != B) {
        char buf[64];
        return tn_tape_fail(tp, TN_ERR_SHAPE, "tn_seq2seq_loss: tgt %s, expected int32 [%lld, T]",
                            tn_shape_str(tgt, buf, sizeof buf), (long long)B);
    }
    if (!(teacher_forcing >= 0 && teacher_forcing <= 1))
        return tn_tape_fail(tp, TN_ERR_ARG, "tn_seq2seq_loss: teacher_forcing %g outside [0, 1]",
                            teacher_forcing);
    int64_t T = tgt->shape[1], V = m->o.tgt_vocab;
    const int32_t *Y = tgt->data;
    for (int64_t i = 0; i < B * T; i++)
        if (Y[i] < 0 || Y[i] >= V)
            return tn_tape_fail(tp, TN_ERR_INDEX, "tn_seq2seq_loss: tgt[%lld] = %d outside 0..%lld",
                                (long long)i, (int)Y[i], (long long)V - 1);
    tn_attn_memory mem;
    dstate st;
    if ((s = encode(tp, m, src, src_len, &mem, &st)))
        return s;
    /* With every step fed the gold token, no step needs the previous one's
     * logits: the output layer then runs once over all B*T rows (one large
     * product instead of T small ones against the same [V, H] weight);
     * otherwise per step, for the argmax that feeds the next one. */
    bool all_forced = teacher_forcing >= 1;
    tn_tensor **outs = tn_tape_alloc(tp, (size_t)T * sizeof *outs);
    int32_t *prev = tn_tape_alloc(tp, (size_t)B * sizeof *prev);
    if (!outs || !prev)
        return tn_last_status();
    for (int64_t b = 0; b < B; b++)
        prev[b] = m->o.sos;
    for (int64_t t = 0; t < T; t++) {
        tn_tensor *ids = ids_tensor(tp, B, prev);
        tn_tensor *y = all_forced ? decode_features(tp, m, &mem, ids, &st, NULL)
                                  : decode_step(tp, m, &mem, ids, &st, NULL);
        if (!y)
            return tn_last_status();
        outs[t] = y;
        bool forced = all_forced || tn_rng_uniform(rng) < teacher_forcing;
        tn_tensor *am = forced ? NULL : tn_argmax(tp, y, 1, false);
        if (!forced && !am)
            return tn_last_status();
        for (int64_t b = 0; b < B; b++)
            prev[b] = forced ? Y[b * T + t] : ((const int32_t *)am->data)[b];
    }
    /* in the targets' order: features [B, T, H] (all forced) or logits [B, T, V] */
    tn_tensor *all = tn_stack(tp, (int)T, outs, 1);
    tn_tensor *flat = tn_tape_tensor(tp, TN_I32, 1, (int64_t[]){B * T});
    if (!all || !flat)
        return tn_last_status();
    memcpy(flat->data, Y, (size_t)(B * T) * sizeof *Y);
    if (all_forced) /* the output layer and the loss in one op: no [B*T, V] logits kept */
        *loss = tn_linear_cross_entropy(tp, tn_reshape(tp, all, 2, (int64_t[]){B * T, m->o.hidden}),
                                        m->out.weight, m->out.bias, flat, NULL, m->o.tgt_pad, 0.0,
                                        TN_REDUCE_MEAN);
    else
        *loss = tn_cross_entropy(tp, tn_reshape(tp, all, 2, (int64_t[]){B * T, V}), flat,
                                 m->o.tgt_pad, TN_REDUCE_MEAN);
    return *loss ? TN_OK : tn_last_status();
}

/* Gather rows of every state tensor by rows [n]. */
static void state_gather(tn_tape *tp, const tn_seq2seq *m, dstate *st, tn_tensor *rows)
{
    for (int l = 0; l < m->o.layers; l++) {
        st->h[l] = tn_gather_rows(tp, st->h[l], rows, -1);
        if (st->c[l])
            st->c[l] = tn_gather_rows(tp, st->c[l], rows, -1);
    }
    if (st->feed)
        st->feed = tn_gather_rows(tp, st->feed, rows, -1);
}

/* The attention memory of B sentences repeated k times (row b*k + i);
 * rows [B*k] holds b for each. */
static tn_status memory_repeat(tn_tape *tp, tn_attn_memory *mem, int64_t B, int k, tn_tensor *rows)
{
    if (!mem->keys || k == 1)
        return TN_OK;
    int64_t S = mem->keys->shape[1];
    tn_tensor *src[2] = {mem->keys, mem->proj};
    for (int i = 0; i < 2; i++) {
        if (!src[i])
            continue;
        int64_t F = src[i]->shape[2];
        tn_tensor *flat = tn_reshape(tp, tn_contiguous(tp, src[i]), 2, (int64_t[]){B, S * F});
        tn_tensor *rep =
            tn_reshape(tp, tn_gather_rows(tp, flat, rows, -1), 3, (int64_t[]){B * k, S, F});
        if (i == 0)
            mem->keys = rep;
        else
            mem->proj = rep;
    }
    tn_tensor *mask = tn_tape_tensor(tp, TN_I32, 2, (int64_t[]){B * k, S});
    if (!mask || tn_tape_error(tp))
        return tn_last_status();
    for (int64_t r = 0; r < B * k; r++)
        memcpy((int32_t *)mask->data + r * S, (const int32_t *)mem->mask->data + (r / k) * S,
               (size_t)S * sizeof(int32_t));
    mem->mask = mask;
    return TN_OK;
}

/* A hypothesis of the beam: tokens so far (in the shared token store),
 * the sum of their log-probabilities. */
typedef struct hyp {
    int32_t *tok;
    int64_t len;
    double score;
} hyp;

/* A candidate extension: beam i with token v. */
typedef struct cand {
    double score;
    int i;
    int32_t v;
} cand;

/* a before b: higher score, then lower beam, then lower token (so that
 * width 1 picks greedy's argmax, whose ties go to the lower id). */
static bool cand_before(const cand *a, const cand *b)
{
    if (a->score != b->score)
        return a->score > b->score;
    return a->i != b->i ? a->i < b->i : a->v < b->v;
}

/* The search's host memory (through the allocator hooks): n = B*k rows of
 * live and next hypotheses, the best finished one per sentence, and the
 * candidates of one sentence at a step. */
typedef struct search {
    int64_t B, n, max_len, V;
    int k;
    double alpha;
    hyp *live, *next, *best; /* [n], [n], [B] */
    int *nlive, *nfin;       /* [B]: live and finished hypotheses per sentence */
    double *bestnorm;        /* [B]: the best finished one's length-normalised score */
    int32_t *store;          /* the tokens of live, next and best: (2n + B) * max_len */
    int32_t *prev, *parent;  /* [n]: each row's last token and the row it extends */
    cand *cands, *top;       /* [k*V] candidates of a sentence, its [k] best */
    double *logp;            /* [V]: one row's log-probabilities */
} search;

static void search_free(search *S)
{
    tn_free(S->live), tn_free(S->next), tn_free(S->best), tn_free(S->nlive), tn_free(S->nfin);
    tn_free(S->bestnorm), tn_free(S->store), tn_free(S->prev), tn_free(S->parent);
    tn_free(S->cands), tn_free(S->top), tn_free(S->logp);
}

/* Allocate S for B sentences, beam k, vocabulary V and max_len steps, with
 * every hypothesis empty: the live rows of sentence b start from its
 * encoder row b with <sos>. The sizes are the caller's, so they are
 * multiplied without overflow (a wrapped product gave a tiny store written
 * far past). Returns TN_OK or the error (S freed). */
static tn_status search_new(search *S, const tn_seq2seq *m, int64_t B, int k, double alpha,
                            int64_t max_len, const char *fn)
{
    int64_t V = m->o.tgt_vocab, n, seqs, slots, nc_max;
    memset(S, 0, sizeof *S);
    if (__builtin_mul_overflow(B, (int64_t)k, &n) || __builtin_mul_overflow(n, 2, &seqs) ||
        __builtin_add_overflow(seqs, B, &seqs) || __builtin_mul_overflow(seqs, max_len, &slots) ||
        __builtin_mul_overflow((int64_t)k, V, &nc_max))
        return tn_set_error(TN_ERR_MEMORY,
                            "%s: beam %d, batch %lld, max_len %lld, vocab %lld: "
                            "the search's memory is beyond the address space",
                            fn, k, (long long)B, (long long)max_len, (long long)V);
    *S = (search){.B = B, .n = n, .max_len = max_len, .V = V, .k = k, .alpha = alpha};
    S->live = tn__alloc_array((size_t)n, sizeof *S->live);
    S->next = tn__alloc_array((size_t)n, sizeof *S->next);
    S->best = tn__alloc_array((size_t)B, sizeof *S->best);
    S->nlive = tn__alloc_array((size_t)B, sizeof *S->nlive);
    S->nfin = tn__alloc_array((size_t)B, sizeof *S->nfin);
    S->bestnorm = tn__alloc_array((size_t)B, sizeof *S->bestnorm);
    S->store = tn__alloc_array((size_t)slots, sizeof *S->store);
    S->prev = tn__alloc_array((size_t)n, sizeof *S->prev);
    S->parent = tn__alloc_array((size_t)n, sizeof *S->parent);
    S->cands = tn__alloc_array((size_t)nc_max, sizeof *S->cands);
    S->top = tn__alloc_array((size_t)k, sizeof *S->top);
    S->logp = tn__alloc_array((size_t)V, sizeof *S->logp);
    if (!S->live || !S->next || !S->best || !S->nlive || !S->nfin || !S->bestnorm || !S->store ||
        !S->prev || !S->parent || !S->cands || !S->top || !S->logp) {
        search_free(S);
        return tn_set_error(TN_ERR_MEMORY, "%s: out of memory (beam %d, batch %lld, vocab %lld)",
                            fn, k, (long long)B, (long long)V);
    }
    int32_t *live_tok = S->store, *next_tok = S->store + n * max_len;
    int32_t *best_tok = S->store + 2 * n * max_len;
    for (int64_t r = 0; r < n; r++) {
        S->live[r].tok = live_tok + r * max_len;
        S->next[r].tok = next_tok + r * max_len;
        S->prev[r] = m->o.sos;
        S->parent[r] = (int32_t)(r / k); /* every beam of sentence b starts from its row b */
    }
    for (int64_t b = 0; b < B; b++) {
        S->nlive[b] = 1;
        S->best[b].tok = best_tok + b * max_len;
        S->bestnorm[b] = -INFINITY;
        S->best[b].score = -INFINITY;
    }
    return TN_OK;
}

/* The candidates of sentence b at step t: every live hypothesis extended
 * by every token but <pad> and <sos>, scored with the log-probabilities lp
 * [n, V]; their number. A log-probability that is not finite (a broken
 * model: a non-finite parameter or input) would make every comparison of
 * the search false, so that no hypothesis finishes and the output is
 * silently empty: it fails instead (-1, error set). */
static int sentence_candidates(search *S, const tn_seq2seq *m, const tn_tensor *lp, int64_t b,
                               int64_t t, const char *fn)
{
    int nc = 0, k = S->k;
    for (int i = 0; i < S->nlive[b]; i++) {
        const hyp *h = &S->live[b * k + i];
        for (int64_t v = 0; v < S->V; v++)
            S->logp[v] = tn_tensor_get(lp, (b * k + i) * S->V + v);
        for (int64_t v = 0; v < S->V; v++) {
            if (v == m->o.tgt_pad || v == m->o.sos)
                continue;
            if (!isfinite(S->logp[v])) {
                tn_set_error(TN_ERR_NUMERIC,
                             "%s: log-probability of token %lld for sentence %lld at step %lld "
                             "is %s: the decoder's output is not finite",
                             fn, (long long)v, (long long)b, (long long)t,
                             isnan(S->logp[v]) ? "nan"
                             : S->logp[v] > 0  ? "inf"
                                               : "-inf");
                return -1;
            }
            S->cands[nc++] = (cand){h->score + S->logp[v], i, (int32_t)v};
        }
    }
    return nc;
}

/* The k best of the nc candidates into S->top, in order (selection: k is
 * small); their number. */
static int select_top(search *S, int nc)
{
    int nt = 0, k = S->k;
    for (int c = 0; c < nc; c++) {
        if (nt == k && !cand_before(&S->cands[c], &S->top[k - 1]))
            continue;
        int q = nt < k ? nt++ : k - 1;
        while (q > 0 && cand_before(&S->cands[c], &S->top[q - 1])) {
            S->top[q] = S->top[q - 1];
            q--;
        }
        S->top[q] = S->cands[c];
    }
    return nt;
}

/* Sentence b after step t from its nt best candidates: those ending with
 * <eos>, or cut at max_len, finish (the best by length-normalised score is
 * kept); the others become the next live hypotheses, their rows' parents
 * and last tokens set for the decoder. Once k have finished the sentence
 * is done. Idle rows decode <eos> from any state. Returns whether any
 * hypothesis of b is still live. */
static bool sentence_advance(search *S, const tn_seq2seq *m, int64_t b, int64_t t, int nt)
{
    int k = S->k, nl = 0;
    for (int q = 0; q < nt; q++) {
        const cand *c = &S->top[q];
        const hyp *h = &S->live[b * k + c->i];
        bool eos = c->v == m->o.eos, last = t + 1 == S->max_len;
        if (eos || last) {            /* finished: with its eos, or cut at max_len */
            int64_t len = h->len + 1; /* the eos, or the token cut at */
            double norm = S->alpha == 0 ? c->score : c->score / pow((double)len, S->alpha);
            if (S->nfin[b] < k && norm > S->bestnorm[b]) {
                hyp *best = &S->best[b];
                S->bestnorm[b] = norm;
                best->score = c->score;
                best->len = eos ? h->len : h->len + 1;
                memcpy(best->tok, h->tok, (size_t)h->len * sizeof *h->tok);
                if (!eos)
                    best->tok[h->len] = c->v;
            }
            S->nfin[b]++;
            continue;
        }
        hyp *d = &S->next[b * k + nl];
        memcpy(d->tok, h->tok, (size_t)h->len * sizeof *h->tok);
        d->tok[h->len] = c->v;
        d->len = h->len + 1;
        d->score = c->score;
        S->parent[b * k + nl] = (int32_t)(b * k + c->i);
        S->prev[b * k + nl] = c->v;
        nl++;
    }
    if (S->nfin[b] >= k)
        nl = 0; /* k finished: done */
    for (int i = nl; i < k; i++) {
        S->parent[b * k + i] = (int32_t)(b * k);
        S->prev[b * k + i] = m->o.eos;
    }
    S->nlive[b] = nl;
    return nl > 0;
}

/* The core of both decoders. weights: NULL, or [max_len, S] for sentence 0
 * (greedy only). */
static tn_status beam_search(tn_tape *tp, const tn_seq2seq *m, tn_tensor *src,
                             const int32_t *src_len, int k, double alpha, int64_t max_len,
                             int32_t *out, int32_t *out_len, double *score, double *weights,
                             const char *fn)
{
    tn_status s = check_src(tp, fn, m, src, src_len);
    if (s)
        return s;
    if (!out || !out_len || !score)
        return tn_set_error(TN_ERR_ARG, "%s: NULL output", fn);
    if (k < 1 || max_len < 1 || !(alpha >= 0))
        return tn_set_error(TN_ERR_ARG,
                            "%s: beam %d, max_len %lld, len_alpha %g: need beam >= 1, "
                            "max_len >= 1, len_alpha >= 0",
                            fn, k, (long long)max_len, alpha);
    int64_t B = src->shape[0], L = src->shape[1];
    search S;
    if ((s = search_new(&S, m, B, k, alpha, max_len, fn)))
        return s;
    bool grad = tn_tape_set_grad(tp, false), train = tn_tape_training(tp);
    tn_tape_set_training(tp, false);
    if (weights)
        memset(weights, 0, sizeof(double) * (size_t)(max_len * L));
    tn_attn_memory mem;
    dstate st;
    if ((s = encode(tp, m, src, src_len, &mem, &st)))
        goto done;
    tn_tensor *rows = ids_tensor(tp, S.n, S.parent);
    if (!rows || (s = memory_repeat(tp, &mem, B, k, rows)))
        goto done;
    if (k > 1)
        state_gather(tp, m, &st, rows);
    for (int64_t t = 0; t < max_len; t++) {
        tn_tensor *w = NULL;
        tn_tensor *lg =
            decode_step(tp, m, &mem, ids_tensor(tp, S.n, S.prev), &st, weights ? &w : NULL);
        tn_tensor *lp = tn_log_softmax(tp, lg, 1);
        if (!lp) {
            s = tn_last_status();
            goto done;
        }
        if (weights && w)
            for (int64_t j = 0; j < L; j++)
                weights[t * L + j] = tn_tensor_get(w, j);
        bool any = false;
        for (int64_t b = 0; b < B; b++) {
            int nc = sentence_candidates(&S, m, lp, b, t, fn);
            if (nc < 0) {
                s = tn_last_status();
                goto done;
            }
            any = sentence_advance(&S, m, b, t, select_top(&S, nc)) || any;
        }
        hyp *sw = S.live;
        S.live = S.next;
        S.next = sw;
        if (!any)
            break;
        tn_tensor *pr = ids_tensor(tp, S.n, S.parent);
        if (!pr) {
            s = tn_last_status();
            goto done;
        }
        state_gather(tp, m, &st, pr);
    }
    for (int64_t b = 0; b < B; b++) {
        out_len[b] = (int32_t)S.best[b].len;
        score[b] = S.best[b].score;
        for (int64_t j = 0; j < max_len; j++)
            out[b * max_len + j] = j < S.best[b].len ? S.best[b].tok[j] : m->o.tgt_pad;
    }
    if (weights)
        for (int64_t t = out_len[0] + 1; t < max_len; t++)
            memset(weights + t * L, 0, sizeof(double) * (size_t)L);
    s = tn_tape_error(tp) ? tn_last_status() : TN_OK;
done:
    tn_tape_set_grad(tp, grad);
    tn_tape_set_training(tp, train);
    search_free(&S);
    return s;
}

tn_status tn_seq2seq_greedy(tn_tape *tp, const tn_seq2seq *m, tn_tensor *src,
                            const int32_t *src_len, int64_t max_len, int32_t *out, int32_t *out_len,
                            double *score)
{
    return beam_search(tp, m, src, src_len, 1, 0.0, max_len, out, out_len, score, NULL,
                       "tn_seq2seq_greedy");
}

tn_status tn_seq2seq_beam(tn_tape *tp, const tn_seq2seq *m, tn_tensor *src, const int32_t *src_len,
                          int beam, double len_alpha, int64_t max_len, int32_t *out,
                          int32_t *out_len, double *score)
{
    return beam_search(tp, m, src, src_len, beam, len_alpha, max_len, out, out_len, score, NULL,
                       "tn_seq2seq_beam");
}

tn_status tn_seq2seq_sample(tn_tape *tp, const tn_seq2seq *m, tn_tensor *src,
                            const int32_t *src_len, int64_t max_len, const tn_sample_opts *so,
                            tn_rng *r, int32_t *out, int32_t *out_len, double *score)
{
    const char *fn = "tn_seq2seq_sample";
    tn_status s = check_src(tp, fn, m, src, src_len);
    if (s)
        return s;
    if (!so || !r || !out || !out_len || !score)
        return tn_set_error(TN_ERR_ARG, "%s: NULL argument", fn);
    if (max_len < 1)
        return tn_set_error(TN_ERR_ARG, "%s: max_len %lld must be >= 1", fn, (long long)max_len);
    int64_t B = src->shape[0], V = m->o.tgt_vocab;
    int32_t *prev = tn__alloc_array((size_t)B, sizeof *prev);
    int32_t *next = tn__alloc_array((size_t)B, sizeof *next);
    bool *done = tn__alloc_array((size_t)B, sizeof *done);
    if (!prev || !next || !done) {
        tn_free(prev), tn_free(next), tn_free(done);
        return tn_set_error(TN_ERR_MEMORY, "%s: out of memory (batch %lld)", fn, (long long)B);
    }
    bool grad = tn_tape_set_grad(tp, false), train = tn_tape_training(tp);
    tn_tape_set_training(tp, false);
    for (int64_t b = 0; b < B; b++) {
        prev[b] = m->o.sos, out_len[b] = 0, score[b] = 0;
        for (int64_t j = 0; j < max_len; j++)
            out[b * max_len + j] = m->o.tgt_pad;
    }
    tn_attn_memory mem;
    dstate st;
    s = encode(tp, m, src, src_len, &mem, &st);
    for (int64_t t = 0; s == TN_OK && t < max_len; t++) {
        tn_tensor *lg = decode_step(tp, m, &mem, ids_tensor(tp, B, prev), &st, NULL);
        if (!lg) {
            s = tn_last_status();
            break;
        }
        tn_tensor *lp = tn_log_softmax(tp, lg, 1); /* the scores: the model's own */
        if (!lp) {
            s = tn_last_status();
            break;
        }
        for (int64_t b = 0; b < B; b++) { /* pad and sos are never drawn */
            tn_tensor_set(lg, b * V + m->o.tgt_pad, -INFINITY);
            tn_tensor_set(lg, b * V + m->o.sos, -INFINITY);
        }
        if ((s = tn_sample(lg, so, r, next)) != TN_OK)
            break;
        bool all = true;
        for (int64_t b = 0; b < B; b++) {
            if (done[b]) {
                prev[b] = m->o.eos; /* finished rows idle on eos */
                continue;
            }
            /* tn_sample refuses a non-finite logit among those it may
             * draw, but a NaN in pad's or sos's (masked to -inf above)
             * still makes every log-probability NaN: a broken model, whose
             * score would be NaN. */
            double lpv = tn_tensor_get(lp, b * V + next[b]);
            if (!isfinite(lpv)) {
                s = tn_set_error(TN_ERR_NUMERIC,
                                 "%s: log-probability of token %d for sentence %lld at step %lld "
                                 "is %s: the decoder's output is not finite",
                                 fn, (int)next[b], (long long)b, (long long)t,
                                 isnan(lpv) ? "nan"
                                 : lpv > 0  ? "inf"
                                            : "-inf");
                break;
            }
            score[b] += lpv;
            done[b] = next[b] == m->o.eos;
            if (!done[b])
                out[b * max_len + out_len[b]++] = next[b];
            prev[b] = next[b];
            all = all && done[b];
        }
        if (all)
            break;
    }
    if (s == TN_OK && tn_tape_error(tp))
        s = tn_last_status();
    tn_tape_set_grad(tp, grad);
    tn_tape_set_training(tp, train);
    tn_free(prev), tn_free(next), tn_free(done);
    return s;
}

tn_status tn_seq2seq_attention_map(tn_tape *tp, const tn_seq2seq *m, tn_tensor *src,
                                   int32_t src_len, int64_t max_len, int32_t *out, int32_t *out_len,
                                   double *weights)
{
    if (!m || !weights)
        return tn_set_error(TN_ERR_ARG, "tn_seq2seq_attention_map: NULL argument");
    if (!with_attn(m))
        return tn_set_error(TN_ERR_ARG, "tn_seq2seq_attention_map: the model has no attention");
    if (!src || src->ndim != 2 || src->shape[0] != 1)
        return tn_set_error(TN_ERR_ARG, "tn_seq2seq_attention_map: src must be [1, S]");
    double score;
    return beam_search(tp, m, src, &src_len, 1, 0.0, max_len, out, out_len, &score, weights,
                       "tn_seq2seq_attention_map");
}

/* ---- streaming decoding ---- */

struct tn_seq2seq_state {
    tn_tape *tp;       /* no grad, eval mode; reset after every call */
    int64_t B, L;      /* sources, decoder layers */
    tn_tensor *mem[3]; /* keys, proj, mask (heap copies; NULL when absent) */
    tn_tensor *h[TN_RNN_MAX_LAYERS], *c[TN_RNN_MAX_LAYERS], *feed; /* heap copies */
};

/* A heap copy of t (NULL for NULL); *ok false when out of memory. */
static tn_tensor *heap_copy(const tn_tensor *t, bool *ok)
{
    if (!t)
        return NULL;
    tn_tensor *h = tn_tensor_new(t->dtype, t->ndim, t->shape);
    if (!h || tn_tensor_copy(h, t) != TN_OK) {
        tn_tensor_free(h);
        *ok = false;
        return NULL;
    }
    return h;
}

void tn_seq2seq_state_free(tn_seq2seq_state *st)
{
    if (!st)
        return;
    for (int k = 0; k < 3; k++)
        tn_tensor_free(st->mem[k]);
    for (int l = 0; l < TN_RNN_MAX_LAYERS; l++)
        tn_tensor_free(st->h[l]), tn_tensor_free(st->c[l]);
    tn_tensor_free(st->feed);
    tn_tape_free(st->tp);
    tn_free(st);
}

/* The state's decoder tensors in a fixed order (2L + 1 of them). */
static int state_parts(tn_seq2seq_state *st, tn_tensor **parts)
{
    int n = 0;
    for (int l = 0; l < st->L; l++)
        parts[n++] = st->h[l], parts[n++] = st->c[l];
    parts[n++] = st->feed;
    return n;
}

tn_seq2seq_state *tn_seq2seq_state_new(const tn_seq2seq *m, const int32_t *src,
                                       const int32_t *src_len, int64_t B, int64_t S)
{
    const char *fn = "tn_seq2seq_state_new";
    if (!m || !src || !src_len || B < 1 || S < 1) {
        tn_set_error(TN_ERR_ARG, "%s: NULL argument or B, S < 1", fn);
        return NULL;
    }
    tn_seq2seq_state *st = tn_alloc(sizeof *st);
    if (!st) {
        tn_set_error(TN_ERR_MEMORY, "%s: out of memory", fn);
        return NULL;
    }
    memset(st, 0, sizeof *st);
    st->B = B, st->L = m->o.layers;
    if (!(st->tp = tn_tape_new())) {
        tn_free(st);
        tn_set_error(TN_ERR_MEMORY, "%s: out of memory", fn);
        return NULL;
    }
    tn_tape_set_grad(st->tp, false);
    tn_tape_set_training(st->tp, false);
    tn_tensor *x = tn_tape_tensor(st->tp, TN_I32, 2, (int64_t[]){B, S});
    if (x)
        memcpy(x->data, src, (size_t)(B * S) * sizeof *src);
    tn_attn_memory mem;
    dstate ds;
    tn_status s = x ? check_src(st->tp, fn, m, x, src_len) : TN_ERR_MEMORY;
    for (int64_t i = 0; s == TN_OK && i < B * S; i++)
        if (src[i] < 0 || src[i] >= m->o.src_vocab)
            s = tn_set_error(TN_ERR_INDEX, "%s: src id %d at %lld outside 0..%lld", fn, (int)src[i],
                             (long long)i, (long long)m->o.src_vocab - 1);
    if (s == TN_OK)
        s = encode(st->tp, m, x, src_len, &mem, &ds);
    bool ok = s == TN_OK;
    if (ok) {
        st->mem[0] = heap_copy(mem.keys, &ok), st->mem[1] = heap_copy(mem.proj, &ok);
        st->mem[2] = heap_copy(mem.mask, &ok);
        for (int l = 0; l < st->L; l++)
            st->h[l] = heap_copy(ds.h[l], &ok), st->c[l] = heap_copy(ds.c[l], &ok);
        st->feed = heap_copy(ds.feed, &ok);
        if (!ok)
            tn_set_error(TN_ERR_MEMORY, "%s: out of memory", fn);
    }
    tn_tape_reset(st->tp);
    if (!ok) {
        tn_seq2seq_state_free(st);
        return NULL;
    }
    return st;
}

tn_status tn_seq2seq_step(const tn_seq2seq *m, tn_seq2seq_state *st, const int32_t *tokens,
                          float *logits)
{
    const char *fn = "tn_seq2seq_step";
    if (!m || !st || !tokens || !logits)
        return tn_set_error(TN_ERR_ARG, "%s: NULL argument", fn);
    int64_t B = st->B, V = m->o.tgt_vocab;
    for (int64_t b = 0; b < B; b++)
        if (tokens[b] < 0 || tokens[b] >= V)
            return tn_set_error(TN_ERR_INDEX, "%s: token %d of sentence %lld outside 0..%lld", fn,
                                (int)tokens[b], (long long)b, (long long)V - 1);
    tn_tape *tp = st->tp;
    tn_tape_reset(tp);
    tn_attn_memory mem = {st->mem[0], st->mem[1], st->mem[2]};
    dstate ds;
    memset(&ds, 0, sizeof ds);
    for (int l = 0; l < st->L; l++)
        ds.h[l] = st->h[l], ds.c[l] = st->c[l];
    ds.feed = st->feed;
    tn_tensor *y = ids_tensor(tp, B, tokens);
    tn_tensor *out = y ? decode_step(tp, m, &mem, y, &ds, NULL) : NULL; /* [B, V] */
    if (!out || tn_tape_error(tp)) {
        tn_status s = tn_tape_status(tp) != TN_OK ? tn_tape_status(tp) : TN_ERR_MEMORY;
        tn_set_error(s, "%s: %s", fn, tn_tape_error(tp) ? tn_tape_error(tp) : "out of memory");
        tn_tape_reset(tp);
        return s;
    }
    if (out->dtype == TN_F32 && tn_is_contiguous(out))
        memcpy(logits, out->data, (size_t)(B * V) * sizeof *logits);
    else
        for (int64_t i = 0; i < B * V; i++)
            logits[i] = (float)tn_tensor_get(out, i);
    /* the new state into the state's own tensors (same shapes) */
    tn_tensor *dst[2 * TN_RNN_MAX_LAYERS + 1], *src[2 * TN_RNN_MAX_LAYERS + 1];
    int n = state_parts(st, dst);
    for (int l = 0, k = 0; l < st->L; l++)
        src[k++] = ds.h[l], src[k++] = ds.c[l];
    src[n - 1] = ds.feed;
    for (int k = 0; k < n; k++)
        if (dst[k] && dst[k] != src[k])
            tn_tensor_copy(dst[k], src[k]);
    tn_tape_reset(tp);
    return TN_OK;
}

tn_status tn_seq2seq_state_copy(tn_seq2seq_state *dst, const tn_seq2seq_state *src)
{
    if (!dst || !src)
        return tn_set_error(TN_ERR_ARG, "tn_seq2seq_state_copy: NULL state");
    tn_tensor *a[2 * TN_RNN_MAX_LAYERS + 1], *b[2 * TN_RNN_MAX_LAYERS + 1];
    int n = dst->L == src->L && dst->B == src->B ? state_parts(dst, a) : -1;
    if (n >= 0)
        state_parts((tn_seq2seq_state *)src, b);
    for (int k = 0; n >= 0 && k < n; k++)
        if ((a[k] == NULL) != (b[k] == NULL) ||
            (a[k] && (a[k]->dtype != b[k]->dtype || tn_numel(a[k]) != tn_numel(b[k]))))
            n = -1;
    if (n < 0)
        return tn_set_error(TN_ERR_SHAPE,
                            "tn_seq2seq_state_copy: states of other models or batches");
    for (int k = 0; k < n; k++)
        if (a[k])
            tn_tensor_copy(a[k], b[k]);
    return TN_OK;
}

/* ---- checkpoints ---- */

#define S2S_OPEN "tn_seq2seq_open"
#define S2S_SAVE "tn_seq2seq_save"
#define S2S_MAX  ((int64_t)1 << 24) /* sizes and vocabularies read from a file */

tn_status tn_seq2seq_save(const char *path, const tn_seq2seq *m, const tn_params *ps,
                          tn_params *const *extra, int nextra, const tn_meta *meta)
{
    if (!path || !m || !ps || nextra < 0 || (nextra > 0 && !extra))
        return tn_set_error(TN_ERR_ARG, S2S_SAVE ": NULL argument or a bad nextra");
    const tn_seq2seq_opts *o = &m->o;
    tn_params **sets = tn_alloc((size_t)(nextra + 1) * sizeof *sets);
    tn_meta all;
    tn_meta_init(&all);
    tn_status s = sets ? TN_OK : tn_set_error(TN_ERR_MEMORY, S2S_SAVE ": out of memory");
    for (int i = 0; s == TN_OK && meta && i < meta->n; i++)
        s = tn_meta_set(&all, meta->keys[i], meta->values[i]);
    const struct {
        const char *key;
        int64_t v;
    } ints[] = {{"s2s.bidirectional", o->bidirectional},
                {"s2s.src_vocab", o->src_vocab},
                {"s2s.tgt_vocab", o->tgt_vocab},
                {"s2s.embed", o->embed},
                {"s2s.hidden", o->hidden},
                {"s2s.layers", o->layers},
                {"s2s.src_pad", o->src_pad},
                {"s2s.tgt_pad", o->tgt_pad},
                {"s2s.sos", o->sos},
                {"s2s.eos", o->eos}};
    for (size_t i = 0; s == TN_OK && i < sizeof ints / sizeof ints[0]; i++)
        s = tn_meta_set_int(&all, ints[i].key, ints[i].v);
    if (s == TN_OK)
        s = tn_meta_set(&all, "s2s.format", "1");
    if (s == TN_OK)
        s = tn_meta_set(&all, "s2s.cell", tn_cell_name(o->cell));
    if (s == TN_OK)
        s = tn_meta_set(&all, "s2s.attention", tn_attn_kind_name(o->attention));
    if (s == TN_OK)
        s = tn__meta_set_double(&all, "s2s.dropout", o->dropout);
    if (s == TN_OK) { /* the prefix: the part of the first name before "src_embed" */
        const char *first = ps->n ? ps->items[0].name : "";
        const char *at = strstr(first, "src_embed.weight");
        char pre[TN_NAME_MAX] = "";
        if (at && at > first) /* "<prefix>.src_embed.weight": without the dot */
            snprintf(pre, sizeof pre, "%.*s", (int)(at - first - 1), first);
        s = tn_meta_set(&all, "s2s.prefix", pre);
    }
    if (s == TN_OK) {
        int n = 0;
        sets[n++] = (tn_params *)ps; /* tn_save only reads the sets */
        for (int i = 0; i < nextra; i++)
            if (extra[i])
                sets[n++] = extra[i];
        s = tn_save(path, sets, n, &all);
    }
    tn_meta_free(&all);
    tn_free(sets);
    return s;
}

/* The options of meta's s2s.* keys (read from path). */
static tn_status s2s_opts(const char *path, const tn_meta *meta, tn_seq2seq_opts *o, char *prefix)
{
    const char *fmt = tn_meta_get(meta, "s2s.format"), *cell = tn_meta_get(meta, "s2s.cell");
    const char *att = tn_meta_get(meta, "s2s.attention"), *pre = tn_meta_get(meta, "s2s.prefix");
    if (!fmt || strcmp(fmt, "1") != 0)
        return tn__meta_error(S2S_OPEN, S2S_SAVE, path, "s2s.format", fmt,
                              "unknown (this library reads \"1\")");
    tn_cell c;
    if (!cell || tn_cell_from_name(cell, &c) != TN_OK)
        return tn__meta_error(S2S_OPEN, S2S_SAVE, path, "s2s.cell", cell,
                              "not gru, lstm, rnn_tanh or rnn_relu");
    int kind = -2;
    for (int k = -1; att && kind == -2 && k <= TN_ATTN_LUONG_GENERAL; k++)
        if (strcmp(att, tn_attn_kind_name(k)) == 0)
            kind = k;
    if (kind == -2)
        return tn__meta_error(S2S_OPEN, S2S_SAVE, path, "s2s.attention", att,
                              "not none, bahdanau, luong or general");
    if (!pre || strlen(pre) >= TN_NAME_MAX - 32)
        return tn__meta_error(S2S_OPEN, S2S_SAVE, path, "s2s.prefix", pre, "too long");
    int64_t v[10];
    const struct {
        const char *key;
        int64_t lo, hi;
    } ints[] = {{"s2s.bidirectional", 0, 1},   {"s2s.src_vocab", 1, S2S_MAX},
                {"s2s.tgt_vocab", 3, S2S_MAX}, {"s2s.embed", 1, S2S_MAX},
                {"s2s.hidden", 1, S2S_MAX},    {"s2s.layers", 1, TN_RNN_MAX_LAYERS},
                {"s2s.src_pad", 0, S2S_MAX},   {"s2s.tgt_pad", 0, S2S_MAX},
                {"s2s.sos", 0, S2S_MAX},       {"s2s.eos", 0, S2S_MAX}};
    tn_status s = TN_OK;
    for (int i = 0; s == TN_OK && i < 10; i++)
        s = tn__meta_int(S2S_OPEN, S2S_SAVE, path, meta, ints[i].key, ints[i].lo, ints[i].hi,
                         &v[i]);
    double dropout = 0;
    if (s == TN_OK)
        s = tn__meta_fraction(S2S_OPEN, S2S_SAVE, path, meta, "s2s.dropout", &dropout);
    if (s != TN_OK)
        return s;
    *o = (tn_seq2seq_opts){.cell = c,
                           .bidirectional = v[0] == 1,
                           .src_vocab = v[1],
                           .tgt_vocab = v[2],
                           .embed = v[3],
                           .hidden = v[4],
                           .layers = (int)v[5],
                           .attention = kind,
                           .dropout = dropout,
                           .src_pad = (int32_t)v[6],
                           .tgt_pad = (int32_t)v[7],
                           .sos = (int32_t)v[8],
                           .eos = (int32_t)v[9]};
    snprintf(prefix, TN_NAME_MAX, "%s", pre);
    return TN_OK;
}

/* o's sizes against the file's tensors (listed in ents). */
static tn_status s2s_sizes(const char *path, const tn_ckpt_entry *ents, int n,
                           const tn_seq2seq_opts *o, const char *pre)
{
    int64_t GH = tn_cell_gates(o->cell) * o->hidden;
    char dot[TN_NAME_MAX + 2];
    snprintf(dot, sizeof dot, "%s%s", pre, *pre ? "." : "");
    pre = dot;
    char names[4][TN_NAME_MAX + 48];
    snprintf(names[0], sizeof names[0], "%ssrc_embed.weight", pre);
    snprintf(names[1], sizeof names[1], "%stgt_embed.weight", pre);
    snprintf(names[2], sizeof names[2], "%sencoder.weight_hh_l%d", pre, o->layers - 1);
    snprintf(names[3], sizeof names[3], "%sout.weight", pre);
    const int64_t want[4][2] = {{o->src_vocab, o->embed},
                                {o->tgt_vocab, o->embed},
                                {GH, o->hidden},
                                {o->tgt_vocab, o->hidden}};
    for (int i = 0; i < 4; i++) {
        const tn_ckpt_entry *e = tn__ckpt_find(ents, n, names[i]);
        if (e && e->ndim == 2 && e->shape[0] == want[i][0] && e->shape[1] == want[i][1])
            continue;
        return tn_set_error(
            TN_ERR_FORMAT,
            S2S_OPEN ": %s: the metadata (s2s.src_vocab %" PRId64 ", s2s.tgt_vocab %" PRId64
                     ", s2s.embed %" PRId64 ", s2s.hidden %" PRId64
                     ", s2s.layers %d) needs tensor %s of [%" PRId64 ", %" PRId64 "]; the file %s",
            path, o->src_vocab, o->tgt_vocab, o->embed, o->hidden, o->layers, names[i], want[i][0],
            want[i][1], e ? "has another shape" : "has no such tensor");
    }
    return TN_OK;
}

tn_status tn_seq2seq_open(const char *path, tn_seq2seq_opts *o, char *prefix, tn_meta *meta_out)
{
    if (!path || !o || !prefix)
        return tn_set_error(TN_ERR_ARG, S2S_OPEN ": NULL argument");
    tn_meta meta;
    tn_meta_init(&meta);
    tn_seq2seq_opts opts;
    char pre[TN_NAME_MAX];
    tn_status s = tn_load_meta(path, &meta);
    if (s == TN_OK)
        s = s2s_opts(path, &meta, &opts, pre);
    tn_ckpt_entry *ents = NULL;
    int n = 0;
    if (s == TN_OK)
        s = tn_load_list(path, &ents, &n);
    if (s == TN_OK)
        s = s2s_sizes(path, ents, n, &opts, pre);
    tn_ckpt_entries_free(ents, n);
    if (s == TN_OK) {
        *o = opts;
        snprintf(prefix, TN_NAME_MAX, "%s", pre);
    }
    if (s == TN_OK && meta_out) {
        tn_meta_free(meta_out);
        *meta_out = meta;
    } else {
        tn_meta_free(&meta);
    }
    return s;
}
