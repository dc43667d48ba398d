/* examples/common/lm_model.c - the programs' side of the stream language model
 * of char_rnn and word_lm, over the library's tn_lm (see lm_model.h). */
#include "lm_model.h"

#include "cli.h"
#include "train_dist.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ex_lm_init(ex_lm_model *m, const ex_lm_spec *s, tn_rng *r)
{
    *m = (ex_lm_model){.prog = s->prog};
    tn_lm_opts o = tn_lm_defaults();
    o.cell = s->cell;
    o.vocab = s->V, o.embed = s->E, o.hidden = s->H, o.layers = (int)s->L;
    o.dropout = s->dropout, o.io_dropout = s->io_dropout, o.tie = s->tie;
    o.init_range = s->init_range;
    snprintf(o.embed_name, sizeof o.embed_name, "%s", s->embed_name);
    snprintf(o.head_name, sizeof o.head_name, "%s", s->head_name);
    /* L beyond int is refused as layers beyond TN_RNN_MAX_LAYERS */
    if (s->L > TN_RNN_MAX_LAYERS)
        o.layers = TN_RNN_MAX_LAYERS + 1;
    tn_status st =
        s->file ? tn_lm_open(s->file, &m->lm, &o, NULL) : tn_lm_init(&m->lm, &o, TN_F32, r);
    if (st != TN_OK) {
        fprintf(stderr, "%s: %s\n", s->prog, tn_last_error());
        return -1;
    }
    return 0;
}

int ex_lm_reset_state(ex_lm_model *m, int64_t B)
{
    tn_lm_state_free(m->st);
    if (!(m->st = tn_lm_state_new(&m->lm, B))) {
        fprintf(stderr, "%s: %s\n", m->prog, tn_last_error());
        return -1;
    }
    return 0;
}

void ex_lm_free(ex_lm_model *m)
{
    tn_lm_state_free(m->st);
    tn_lm_free(&m->lm);
    m->st = NULL;
}

tn_optim *ex_lm_optim(ex_lm_model *m, const tn_adam_opts *ao, bool adamw)
{
    tn_optim *opt = adamw ? tn_optim_adamw(&m->lm.ps, ao) : tn_optim_adam(&m->lm.ps, ao);
    if (!opt)
        fprintf(stderr, "%s: %s\n", m->prog, tn_last_error());
    return opt;
}

int ex_lm_save(ex_lm_model *m, const char *path, tn_optim *opt, const tn_meta *meta)
{
    tn_params *os = tn_optim_state(opt);
    if (tn_lm_save(path, &m->lm, m->st, &os, 1, meta) != TN_OK) {
        fprintf(stderr, "%s: %s\n", m->prog, tn_last_error());
        return -1;
    }
    return 0;
}

/* Whether path holds a carried state (a training run's checkpoint). */
static bool has_state(const char *path)
{
    bool full = false;
    tn_ckpt_entry *ents = NULL;
    int n = 0;
    if (tn_load_list(path, &ents, &n) == TN_OK)
        for (int i = 0; i < n; i++)
            full = full || strcmp(ents[i].name, "state.h") == 0;
    tn_ckpt_entries_free(ents, n);
    return full;
}

int ex_lm_load(ex_lm_model *m, const char *path, const tn_adam_opts *ao, bool adamw, tn_meta *meta,
               tn_optim **opt_out)
{
    bool full = opt_out && has_state(path); /* resume a training run */
    tn_optim *opt = full ? ex_lm_optim(m, ao, adamw) : NULL;
    if (full && !opt)
        return -1;
    tn_params *os = tn_optim_state(opt);
    tn_lm_state *st = NULL;
    if (tn_lm_load_params(path, &m->lm, opt ? &st : NULL, &os, opt ? 1 : 0, meta) != TN_OK) {
        fprintf(stderr, "%s: %s\n", m->prog, tn_last_error());
        tn_optim_free(opt);
        return -1;
    }
    if (opt_out)
        *opt_out = opt;
    if (st) {
        tn_lm_state_free(m->st);
        m->st = st;
    } else if (ex_lm_reset_state(m, 1)) {
        tn_optim_free(opt);
        if (opt_out)
            *opt_out = NULL;
        return -1;
    }
    return 0;
}

double ex_lm_eval(ex_lm_model *m, tn_tape *tp, const int32_t *ids, int64_t n, const char *what)
{
    double nll = NAN;
    if (n >= 2 && tn_lm_eval(&m->lm, tp, ids, n, &nll) != TN_OK)
        fprintf(stderr, "%s: %s: eval: %s\n", m->prog, what, tn_last_error());
    return nll;
}

/* ---- several ranks ---- */

int ex_lm_gather_state(ex_lm_model *m, ex_lm_model *full)
{
    int N = ex_dist_size(), rank = ex_dist_rank();
    int64_t b = m->st->h->shape[1], H = m->lm.o.hidden, L = m->lm.o.layers, part = L * b * H;
    *full = *m;
    full->st = NULL;
    float *all = NULL;
    int rc = 0;
    if (rank == 0) {
        full->st = tn_lm_state_new(&m->lm, b * N);
        all = malloc(sizeof(float) * (size_t)(part * N));
        if (!all || !full->st)
            rc = -1;
    }
    tn_tensor *mine[2] = {m->st->h, m->st->c};
    tn_tensor *dst[2] = {full->st ? full->st->h : NULL, full->st ? full->st->c : NULL};
    for (int k = 0; k < 2; k++) {
        if (!mine[k])
            continue;
        if (ex_dist_gather(mine[k]->data, all, part * (int64_t)sizeof(float)))
            rc = -1;
        for (int r = 0; rank == 0 && rc == 0 && r < N; r++) /* rank r's [L, b, H] */
            for (int64_t l = 0; l < L; l++)
                memcpy((float *)dst[k]->data + (l * b * N + r * b) * H, all + r * part + l * b * H,
                       (size_t)(b * H) * sizeof(float));
    }
    free(all);
    rc = ex_dist_agree(rc ? TN_ERR_MEMORY : TN_OK) == TN_OK ? 0 : -1;
    if (rc)
        ex_lm_free_state(full);
    return rc;
}

void ex_lm_free_state(ex_lm_model *full)
{
    tn_lm_state_free(full->st);
    full->st = NULL;
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
    tn_lm_state *mine = tn_lm_state_new(&m->lm, b);
    if (!mine)
        return -1;
    int64_t B = m->st->h->shape[1], H = m->lm.o.hidden;
    tn_tensor *from[2] = {m->st->h, m->st->c}, *to[2] = {mine->h, mine->c};
    for (int k = 0; k < 2; k++)
        for (int64_t l = 0; from[k] && l < m->lm.o.layers; l++)
            memcpy((float *)to[k]->data + l * b * H, (float *)from[k]->data + (l * B + r0) * H,
                   (size_t)(b * H) * sizeof(float));
    tn_lm_state_free(m->st);
    m->st = mine;
    return 0;
}

/* ---- training through the driver ---- */

const ex_col ex_lm_run_cols[2] = {{"val_loss", 4}, {"val_ppl", 3}};

tn_tensor *ex_lm_run_forward(void *run, tn_tape *tp, int64_t step)
{
    (void)step;
    ex_lm_run *r = run;
    if (tn_lm_window(r->m->st, r->ids, r->stream, r->r0, &r->pos, r->x, r->y) != TN_OK)
        return NULL; /* the driver reports tn_last_error() */
    return tn_lm_loss(tp, &r->m->lm, r->m->st, r->x, r->y, &r->fin);
}

int ex_lm_run_stepped(void *run)
{
    ex_lm_run *r = run;
    if (tn_lm_state_keep(r->m->st, &r->fin) != TN_OK) {
        fprintf(stderr, "%s: %s\n", r->m->prog, tn_last_error());
        return -1;
    }
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

int ex_lm_run_save(void *run, tn_tape *tp, int64_t step)
{
    ex_lm_run *r = run;
    return ex_lm_save_run(r->m, tp, step, r, r->write);
}
