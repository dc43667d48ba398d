/* examples/common/lm_model.c - the stream language model of char_rnn and word_lm
 * (see lm_model.h). */
#include "lm_model.h"

#include "cli.h"
#include "train_dist.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The shapes of s's largest parameters against its file (see ex_lm_init). */
static int check_file(const ex_lm_spec *s)
{
    int64_t G = tn_cell_gates(s->cell);
    char embed[TN_NAME_MAX], head[TN_NAME_MAX], hh[32], sizes[160];
    snprintf(embed, sizeof embed, "%s.weight", s->embed_name);
    snprintf(head, sizeof head, "%s.weight", s->head_name);
    snprintf(hh, sizeof hh, "rnn.weight_hh_l%d", (int)s->L - 1);
    snprintf(sizes, sizeof sizes, "vocab %lld, embed %lld, hidden %lld, layers %lld",
             (long long)s->V, (long long)s->E, (long long)s->H, (long long)s->L);
    ex_shape want[4] = {{embed, s->V, s->E}, {"rnn.weight_ih_l0", G * s->H, s->E},
                         {hh, G * s->H, s->H}, {head, s->V, s->H}};
    return ex_check_shapes(s->prog, s->file, sizes, want, s->tie ? 3 : 4);
}

int ex_lm_init(ex_lm_model *m, const ex_lm_spec *s, tn_rng *r)
{
    if (s->file && check_file(s))
        return -1;
    *m = (ex_lm_model){.cell = s->cell, .V = s->V, .E = s->E, .H = s->H, .L = s->L,
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

void ex_lm_reset_state(ex_lm_model *m, int64_t B)
{
    tn_tensor_free(m->h);
    tn_tensor_free(m->c);
    int64_t shape[3] = {m->L, B, m->H};
    m->h = tn_tensor_new(TN_F32, 3, shape);
    m->c = m->cell == TN_CELL_LSTM ? tn_tensor_new(TN_F32, 3, shape) : NULL;
}

void ex_lm_free(ex_lm_model *m)
{
    tn_tensor_free(m->h);
    tn_tensor_free(m->c);
    tn_params_free(&m->ps);
    m->h = m->c = NULL;
}

/* The head's input [B*T, H] for ids [B, T]: embedding, recurrent layers
 * from the carried state (final state into *fin), dropout. */
static tn_tensor *lm_hidden(tn_tape *tp, ex_lm_model *m, tn_tensor *ids, tn_rnn_out *fin)
{
    tn_tensor *x = tn_embedding_forward(tp, &m->embed, ids); /* [B, T, E] */
    if (m->io_dropout > 0)
        x = tn_dropout(tp, x, m->io_dropout);
    if (tn_rnn_forward(tp, &m->rnn, x, m->h, m->c, NULL, fin) != TN_OK)
        return NULL;
    tn_tensor *y = fin->output; /* [B, T, H] */
    if (m->io_dropout > 0)
        y = tn_dropout(tp, y, m->io_dropout);
    return tn_reshape(tp, y, 2, (int64_t[]){-1, m->H});
}

tn_tensor *ex_lm_forward(tn_tape *tp, ex_lm_model *m, tn_tensor *ids, tn_rnn_out *fin)
{
    return tn_linear_forward(tp, &m->head, lm_hidden(tp, m, ids, fin)); /* [B*T, V] */
}

tn_tensor *ex_lm_loss(tn_tape *tp, ex_lm_model *m, tn_tensor *ids, tn_tensor *targets,
                      tn_rnn_out *fin)
{
    return tn_linear_cross_entropy(tp, lm_hidden(tp, m, ids, fin), m->head.weight, m->head.bias,
                                   targets, NULL, -1, 0.0, TN_REDUCE_MEAN);
}

void ex_lm_keep_state(ex_lm_model *m, const tn_rnn_out *fin)
{
    tn_tensor_copy(m->h, fin->h_n);
    if (m->c)
        tn_tensor_copy(m->c, fin->c_n);
}

void ex_lm_state_set(ex_lm_model *m, tn_params *st)
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

void ex_lm_window(ex_lm_model *m, const int32_t *ids, int64_t stream, int64_t r0, int64_t *pos,
               tn_tensor *x, tn_tensor *y)
{
    int64_t B = x->shape[0], T = x->shape[1];
    /* end of the streams (*pos + T + 1 > stream, written so that it cannot
     * overflow): start over from a zero state */
    if (*pos < 0 || *pos > stream - T - 1) {
        *pos = 0;
        tn_tensor_fill(m->h, 0);
        if (m->c)
            tn_tensor_fill(m->c, 0);
    }
    int32_t *xd = x->data, *yd = y->data;
    for (int64_t b = 0; b < B; b++)
        for (int64_t s = 0; s < T; s++) {
            xd[b * T + s] = ids[(r0 + b) * stream + *pos + s];
            yd[b * T + s] = ids[(r0 + b) * stream + *pos + s + 1];
        }
}

tn_optim *ex_lm_optim(ex_lm_model *m, const tn_adam_opts *ao, bool adamw)
{
    tn_optim *opt = adamw ? tn_optim_adamw(&m->ps, ao) : tn_optim_adam(&m->ps, ao);
    if (!opt)
        fprintf(stderr, "%s: %s\n", m->prog, tn_last_error());
    return opt;
}

int ex_lm_save(ex_lm_model *m, const char *path, tn_optim *opt, const tn_meta *meta)
{
    tn_params st;
    ex_lm_state_set(m, &st);
    tn_params *sets[3] = {&m->ps, tn_optim_state(opt), &st};
    tn_status s = tn_save(path, sets, 3, meta);
    if (s != TN_OK)
        fprintf(stderr, "%s: %s\n", m->prog, tn_last_error());
    free(st.items);
    return s == TN_OK ? 0 : -1;
}

int ex_lm_load(ex_lm_model *m, const char *path, const tn_adam_opts *ao, bool adamw, tn_meta *meta,
            tn_optim **opt_out)
{
    int64_t B = 1;
    bool full = false; /* the file holds a training state */
    tn_ckpt_entry *ents = NULL;
    int n = 0;
    if (tn_load_list(path, &ents, &n) == TN_OK)
        for (int i = 0; i < n; i++)
            if (strcmp(ents[i].name, "state.h") == 0) {
                full = true;
                B = ents[i].ndim == 3 ? ents[i].shape[1] : 0;
            }
    tn_ckpt_entries_free(ents, n);
    if (B < 1 || B > 65536) {
        fprintf(stderr, "%s: %s: state.h must be [layers, batch 1..65536, hidden]\n", m->prog,
                path);
        return -1;
    }
    ex_lm_reset_state(m, B);
    tn_optim *opt = full ? ex_lm_optim(m, ao, adamw) : NULL;
    if (full && !opt)
        return -1;
    tn_params st;
    ex_lm_state_set(m, &st);
    tn_params *sets[3] = {&m->ps, opt ? tn_optim_state(opt) : NULL, &st};
    tn_status s = tn_load(path, sets, full ? 3 : 1, meta);
    free(st.items);
    if (s != TN_OK) {
        fprintf(stderr, "%s: %s\n", m->prog, tn_last_error());
        tn_optim_free(opt);
        return -1;
    }
    if (opt_out) {
        *opt_out = opt;
        if (!full)
            ex_lm_reset_state(m, 1);
    } else {
        tn_optim_free(opt);
        ex_lm_reset_state(m, 1);
    }
    return 0;
}

double ex_lm_eval(ex_lm_model *m, tn_tape *tp, const int32_t *ids, int64_t n, const char *what)
{
    if (n < 2)
        return NAN;
    tn_tensor *keep_h = m->h, *keep_c = m->c;
    m->h = m->c = NULL;
    ex_lm_reset_state(m, 1);
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
        tn_tensor *loss = tn_cross_entropy(tp, ex_lm_forward(tp, m, x, &fin), y, -1,
                                           TN_REDUCE_SUM);
        if (!loss || tn_tape_error(tp)) {
            fprintf(stderr, "%s: %s: eval: %s\n", m->prog, what, tn_last_error());
            total = NAN;
            break;
        }
        /* a NaN or infinite parameter: the mean would be meaningless */
        double l = tn_tensor_get(loss, 0);
        if (!isfinite(l)) {
            fprintf(stderr, "%s: %s: eval: the loss of tokens %lld..%lld is %g: the model's "
                            "output is not finite\n",
                    m->prog, what, (long long)s + 1, (long long)(s + len), l);
            total = NAN;
            break;
        }
        ex_lm_keep_state(m, &fin);
        total += l;
    }
    tn_tape_reset(tp);
    tn_tape_set_grad(tp, was_grad);
    tn_tape_set_training(tp, was_training);
    tn_tensor_free(m->h);
    tn_tensor_free(m->c);
    m->h = keep_h, m->c = keep_c;
    return total / (double)(n - 1);
}

/* ---- several ranks ---- */

int ex_lm_gather_state(ex_lm_model *m, ex_lm_model *full)
{
    int N = ex_dist_size(), rank = ex_dist_rank();
    int64_t b = m->h->shape[1], H = m->H, L = m->L, part = L * b * H;
    *full = *m;
    full->h = full->c = NULL;
    float *all = NULL;
    int rc = 0;
    if (rank == 0) {
        ex_lm_reset_state(full, b * N);
        all = malloc(sizeof(float) * (size_t)(part * N));
        if (!all || !full->h || (m->c && !full->c))
            rc = -1;
    }
    tn_tensor *mine[2] = {m->h, m->c}, *dst[2] = {full->h, full->c};
    for (int k = 0; k < 2; k++) {
        if (!mine[k])
            continue;
        if (ex_dist_gather(mine[k]->data, all, part * (int64_t)sizeof(float)))
            rc = -1;
        for (int r = 0; rank == 0 && rc == 0 && r < N; r++) /* rank r's [L, b, H] */
            for (int64_t l = 0; l < L; l++)
                memcpy((float *)dst[k]->data + (l * b * N + r * b) * H,
                       all + r * part + l * b * H, (size_t)(b * H) * sizeof(float));
    }
    free(all);
    rc = ex_dist_agree(rc ? TN_ERR_MEMORY : TN_OK) == TN_OK ? 0 : -1;
    if (rc)
        ex_lm_free_state(full);
    return rc;
}

void ex_lm_free_state(ex_lm_model *full)
{
    tn_tensor_free(full->h);
    tn_tensor_free(full->c);
    full->h = full->c = NULL;
}

int ex_lm_save_run(ex_lm_model *m, tn_tape *tp, int64_t step, void *ctx,
                   int (*write)(void *ctx, ex_lm_model *full, tn_meta *meta, int64_t step))
{
    tn_meta meta;
    tn_meta_init(&meta);
    ex_lm_model full;
    int rc = ex_train_meta_ranks(&meta, tp) || ex_lm_gather_state(m, &full) ? -1 : 0;
    if (rc == 0 && ex_dist_rank() == 0) {
        rc = write(ctx, &full, &meta, step);
        ex_lm_free_state(&full);
    }
    tn_meta_free(&meta);
    return ex_train_agree(rc);
}

int ex_lm_take_rows(ex_lm_model *m, int64_t r0, int64_t b)
{
    tn_tensor *full[2] = {m->h, m->c};
    int64_t B = m->h->shape[1], H = m->H;
    m->h = m->c = NULL;
    ex_lm_reset_state(m, b);
    if (!m->h || (full[1] && !m->c)) {
        tn_tensor_free(m->h);
        tn_tensor_free(m->c);
        m->h = full[0], m->c = full[1];
        return -1;
    }
    tn_tensor *mine[2] = {m->h, m->c};
    for (int k = 0; k < 2; k++) {
        if (!full[k])
            continue;
        for (int64_t l = 0; l < m->L; l++)
            memcpy((float *)mine[k]->data + l * b * H, (float *)full[k]->data + (l * B + r0) * H,
                   (size_t)(b * H) * sizeof(float));
        tn_tensor_free(full[k]);
    }
    return 0;
}

/* ---- training through the driver ---- */

const ex_col ex_lm_run_cols[2] = {{"val_loss", 4}, {"val_ppl", 3}};

tn_tensor *ex_lm_run_forward(void *run, tn_tape *tp, int64_t step)
{
    (void)step;
    ex_lm_run *r = run;
    ex_lm_window(r->m, r->ids, r->stream, r->r0, &r->pos, r->x, r->y);
    return ex_lm_loss(tp, r->m, r->x, r->y, &r->fin);
}

int ex_lm_run_stepped(void *run)
{
    ex_lm_run *r = run;
    ex_lm_keep_state(r->m, &r->fin);
    r->pos += r->x->shape[1];
    return 0;
}

int ex_lm_run_evaluate(void *run, tn_tape *tp, double *values)
{
    ex_lm_run *r = run;
    values[0] = ex_lm_eval(r->m, tp, r->val, r->n_val, "validation");
    values[1] = exp(values[0]);
    return isnan(values[0]) ? -1 : 0;
}
