/* examples/lm_model.c - the stream language model of char_rnn and word_lm
 * (see lm_model.h). */
#include "lm_model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int lm_init(lm_model *m, const lm_spec *s, tn_rng *r)
{
    *m = (lm_model){.cell = s->cell, .V = s->V, .E = s->E, .H = s->H, .L = s->L,
                    .tied = s->tie, .io_dropout = s->io_dropout, .prog = s->prog};
    tn_params_init(&m->ps);
    char weight[TN_NAME_MAX];
    snprintf(weight, sizeof weight, "%s.weight", s->embed_name);
    if (tn_embedding_init(&m->embed, &m->ps, s->embed_name, s->V, s->E, -1, TN_F32, r) ||
        tn_rnn_init(&m->rnn, &m->ps, "rnn", s->cell, s->E, s->H, (int)s->L, false, s->dropout,
                    TN_F32, r) ||
        (s->tie ? tn_linear_init_tied(&m->head, &m->ps, s->head_name, weight, true, TN_F32, r)
                : tn_linear_init(&m->head, &m->ps, s->head_name, s->H, s->V, true, TN_F32, r))) {
        fprintf(stderr, "%s: %s\n", s->prog, tn_last_error());
        tn_params_free(&m->ps);
        return -1;
    }
    if (s->tie && s->E != s->H) { /* the tied head's input is E wide */
        fprintf(stderr, "%s: tied weights need the embedding size (%lld) equal to the hidden "
                        "size (%lld)\n", s->prog, (long long)s->E, (long long)s->H);
        tn_params_free(&m->ps);
        return -1;
    }
    return 0;
}

void lm_reset_state(lm_model *m, int64_t B)
{
    tn_tensor_free(m->h);
    tn_tensor_free(m->c);
    int64_t shape[3] = {m->L, B, m->H};
    m->h = tn_tensor_new(TN_F32, 3, shape);
    m->c = m->cell == TN_CELL_LSTM ? tn_tensor_new(TN_F32, 3, shape) : NULL;
}

void lm_free(lm_model *m)
{
    tn_tensor_free(m->h);
    tn_tensor_free(m->c);
    tn_params_free(&m->ps);
    m->h = m->c = NULL;
}

tn_tensor *lm_forward(tn_tape *tp, lm_model *m, tn_tensor *ids, tn_rnn_out *fin)
{
    tn_tensor *x = tn_embedding_forward(tp, &m->embed, ids); /* [B, T, E] */
    if (m->io_dropout > 0)
        x = tn_dropout(tp, x, m->io_dropout);
    if (tn_rnn_forward(tp, &m->rnn, x, m->h, m->c, NULL, fin) != TN_OK)
        return NULL;
    tn_tensor *y = fin->output; /* [B, T, H] */
    if (m->io_dropout > 0)
        y = tn_dropout(tp, y, m->io_dropout);
    tn_tensor *logits = tn_linear_forward(tp, &m->head, y); /* [B, T, V] */
    return tn_reshape(tp, logits, 2, (int64_t[]){-1, m->V});
}

void lm_keep_state(lm_model *m, const tn_rnn_out *fin)
{
    tn_tensor_copy(m->h, fin->h_n);
    if (m->c)
        tn_tensor_copy(m->c, fin->c_n);
}

void lm_state_set(lm_model *m, tn_params *st)
{
    tn_params_init(st);
    st->cap = st->n = m->c ? 2 : 1;
    st->items = calloc(2, sizeof *st->items);
    snprintf(st->items[0].name, TN_NAME_MAX, "state.h");
    st->items[0].t = m->h;
    if (m->c) {
        snprintf(st->items[1].name, TN_NAME_MAX, "state.c");
        st->items[1].t = m->c;
    }
}

double lm_eval(lm_model *m, tn_tape *tp, const int32_t *ids, int64_t n)
{
    if (n < 2)
        return NAN;
    tn_tensor *keep_h = m->h, *keep_c = m->c;
    m->h = m->c = NULL;
    lm_reset_state(m, 1);
    bool was_grad = tn_tape_set_grad(tp, false), was_training = tn_tape_training(tp);
    tn_tape_set_training(tp, false);
    const int64_t chunk = 256;
    double total = 0;
    for (int64_t s = 0; s + 1 < n; s += chunk) {
        int64_t len = n - 1 - s < chunk ? n - 1 - s : chunk;
        tn_tape_reset(tp);
        tn_tensor *x = tn_tape_tensor(tp, TN_I32, 2, (int64_t[]){1, len});
        tn_tensor *y = tn_tape_tensor(tp, TN_I32, 1, (int64_t[]){len});
        memcpy(x->data, ids + s, (size_t)len * sizeof(int32_t));
        memcpy(y->data, ids + s + 1, (size_t)len * sizeof(int32_t));
        tn_rnn_out fin;
        tn_tensor *loss = tn_cross_entropy(tp, lm_forward(tp, m, x, &fin), y, -1,
                                           TN_REDUCE_SUM);
        if (!loss || tn_tape_error(tp)) {
            fprintf(stderr, "%s: eval: %s\n", m->prog, tn_last_error());
            total = NAN;
            break;
        }
        lm_keep_state(m, &fin);
        total += tn_tensor_get(loss, 0);
    }
    tn_tape_reset(tp);
    tn_tape_set_grad(tp, was_grad);
    tn_tape_set_training(tp, was_training);
    tn_tensor_free(m->h);
    tn_tensor_free(m->c);
    m->h = keep_h, m->c = keep_c;
    return total / (double)(n - 1);
}
