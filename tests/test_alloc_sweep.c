/* tests/test_alloc_sweep.c - allocation-failure sweeps (issue 10, D3, D4,
 * D7; issue 19): scenarios run again and again with the N-th allocation of
 * the library (jansson's included: it allocates through the library's
 * hooks) failing, for every N until a run makes fewer than N allocations.
 *
 * 1. A small train step (embedding, LSTM, linear, cross-entropy, backward,
 *    clipping, Adam), a save over a good checkpoint and a load. Each time:
 *   - every failure reports TN_ERR_MEMORY (the tape's status, the returned
 *     status and tn_last_status) and says "out of memory"; nothing else;
 *   - a failed save leaves the previous checkpoint byte for byte as it was,
 *     with no temporary file left behind; a successful one loads back;
 *   - a failed load leaves the parameters untouched;
 *   - under ASan + UBSan: no report (no leak, overflow or use after free).
 *   Before the fix jansson used malloc (failures never reached it; when
 *   they did it wrote corrupt headers), a failure of the final
 *   directory-name allocation replaced the file yet returned TN_ERR_MEMORY,
 *   and tn_rnn_forward turned a failed tape into TN_ERR_STATE.
 * 2. translate's training step: tn_seq2seq_loss (LSTM, bidirectional
 *    encoder, Bahdanau attention, dropout, teacher forcing 0.5) +
 *    tn_backward + clipping + Adam on a tiny tn_seq2seq;
 * 3. word_lm's training step: an LSTM language model of two layers with the
 *    carried state as input (h0, c0), dropout, the head tied to the
 *    embedding, AdamW, the final state copied back;
 * 4. decoding: tn_seq2seq_greedy, tn_seq2seq_beam, tn_seq2seq_sample on one
 *    tape (reset after a failure, as a program going on to its next
 *    sentence would), and tn_sample on heap logits.
 * For 2-4, each time: every failure is TN_ERR_MEMORY with "out of memory"
 * (or a NULL with that as tn_last_error); every allocation the run made is
 * freed again (the hooks count them, so a leak shows without ASan too); a
 * failed training step leaves the parameters bit for bit as they were; a
 * call that succeeds in a run with a failure elsewhere gives what it gives
 * without failures (decoding: the same tokens, lengths and scores); and the
 * run after it, with no failure, works (status TN_OK, finite loss).
 * SWEEP_DEBUG=1 in the environment prints every failure where it was seen:
 * the steps' tapes outgrow their first chunk, so allocations fail inside
 * the forward and backward passes too, not only before them. */
#include "check.h"
#include "tensor/tensor.h"

#include <dirent.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include "sweep_alloc.h"

static char dir[64], path[128];

static int count_files(void)
{
    int k = 0;
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d));)
        k += e->d_name[0] != '.';
    if (d)
        closedir(d);
    return k;
}

typedef struct model {
    tn_params ps;
    tn_embedding emb;
    tn_rnn rnn;
    tn_linear head;
} model;

static void model_build(model *m, uint64_t seed)
{
    tn_rng r;
    tn_rng_seed(&r, seed);
    tn_params_init(&m->ps);
    tn_embedding_init(&m->emb, &m->ps, "embed", 7, 4, -1, TN_F32, &r);
    tn_rnn_init(&m->rnn, &m->ps, "rnn", TN_CELL_LSTM, 4, 6, 1, false, 0.0, TN_F32, &r);
    tn_linear_init(&m->head, &m->ps, "head", 6, 7, true, TN_F32, &r);
}

/* A failure must be "out of memory", reported as such. */
static void check_oom(const char *where, tn_status st)
{
    if (st == TN_OK)
        return;
    if (getenv("SWEEP_DEBUG"))
        fprintf(stderr, "DEBUG fail_at %ld: %s: %s\n", fail_at, where, tn_last_error());
    if (st != TN_ERR_MEMORY || tn_last_status() != TN_ERR_MEMORY ||
        !strstr(tn_last_error(), "out of memory")) {
        fprintf(stderr, "fail_at %ld: %s: status %s, last %s: %s\n", fail_at, where,
                tn_status_name(st), tn_status_name(tn_last_status()), tn_last_error());
        CHECK(false);
    }
}

/* One scenario; returns true when the failure was injected (the run made
 * at least fail_at allocations). */
static bool scenario(model *a, tn_optim *opt, const unsigned char *good, size_t ngood)
{
    n_alloc = 0;
    tn_clear_error();
    /* train step */
    tn_tape *tp = tn_tape_new();
    if (!tp) {
        check_oom("tn_tape_new", tn_last_status());
    } else {
        tn_tensor *ids = tn_tape_tensor(tp, TN_I32, 2, (int64_t[]){2, 3});
        tn_tensor *tg = tn_tape_tensor(tp, TN_I32, 1, (int64_t[]){6});
        if (ids && tg)
            for (int i = 0; i < 6; i++) {
                ((int32_t *)ids->data)[i] = i % 7;
                ((int32_t *)tg->data)[i] = (i + 1) % 7;
            }
        tn_rnn_out out;
        tn_tensor *x = tn_embedding_forward(tp, &a->emb, ids);
        tn_status st = tn_rnn_forward(tp, &a->rnn, x, NULL, NULL, NULL, &out);
        check_oom("tn_rnn_forward", st);
        tn_tensor *lg = tn_linear_forward(tp, &a->head, out.output);
        tn_tensor *loss =
            tn_cross_entropy(tp, tn_reshape(tp, lg, 2, (int64_t[]){6, 7}), tg, -1, TN_REDUCE_MEAN);
        check_oom("forward (tape status)", tn_tape_status(tp));
        if (loss) {
            tn_params_zero_grad(&a->ps);
            st = tn_backward(tp, loss);
            check_oom("tn_backward", st);
            if (st == TN_OK) {
                tn_clip_grad_norm(&a->ps, 1.0, NULL);
                CHECK(tn_optim_step(opt) == TN_OK);
            }
        }
        tn_tape_free(tp);
    }
    /* save over the good checkpoint */
    tn_status st =
        tn_save(path, (tn_params *[]){&a->ps, (tn_params *)tn_optim_state(opt)}, 2, NULL);
    check_oom("tn_save", st);
    size_t n;
    unsigned char *now = check_read_file(path, &n);
    if (st != TN_OK) {
        if (!(now && n == ngood && memcmp(now, good, n) == 0)) {
            fprintf(stderr, "fail_at %ld: failed save changed the checkpoint\n", fail_at);
            CHECK(false);
        }
    } else {
        /* load it back into a second model: equal, or untouched on failure */
        model b;
        long keep = fail_at;
        fail_at = 0;
        model_build(&b, 99);
        tn_optim *bo = tn_optim_adam(&b.ps, NULL);
        double before = tn_tensor_get(b.ps.items[0].t, 0);
        fail_at = keep;
        st = tn_load(path, (tn_params *[]){&b.ps, (tn_params *)tn_optim_state(bo)}, 2, NULL);
        check_oom("tn_load", st);
        double want = st == TN_OK ? tn_tensor_get(a->ps.items[0].t, 0) : before;
        CHECK(tn_tensor_get(b.ps.items[0].t, 0) == want); /* exact: bits are copied */
        tn_optim_free(bo);
        tn_params_free(&b.ps);
        FILE *f = fopen(path, "wb"); /* restore the good checkpoint for the next run */
        fwrite(good, 1, ngood, f);
        fclose(f);
    }
    free(now);
    if (count_files() != 1) {
        fprintf(stderr, "fail_at %ld: temporary files left behind\n", fail_at);
        CHECK(false);
    }
    return n_alloc >= fail_at;
}

/* ---- sweeps 2-4: translate's and word_lm's training steps, decoding ---- */

/* FNV-1a of every parameter's bytes: a failed step must not change them. */
static uint64_t params_hash(const tn_params *ps)
{
    uint64_t h = 1469598103934665603ULL;
    for (int i = 0; i < ps->n; i++) {
        const tn_tensor *t = ps->items[i].t;
        for (int64_t k = 0; k < tn_numel(t); k++) {
            double v = tn_tensor_get(t, k);
            unsigned char b[sizeof v];
            memcpy(b, &v, sizeof v);
            for (size_t j = 0; j < sizeof v; j++)
                h = (h ^ b[j]) * 1099511628211ULL;
        }
    }
    return h;
}

/* Batch, source and target lengths, vocabulary, embedding, hidden size,
 * decoding limit: large enough that a step's tape outgrows its first chunk
 * (1 MiB) several times, so that allocations fail in the middle of the
 * forward and backward passes, not only before them. */
enum { SB = 8, SS = 12, ST = 12, SV = 40, SE = 32, SH = 48 };
/* word_lm's: batch, window (its default --seq), hidden size; decoding: the
 * first DB sentences, at most DMAX tokens. */
enum { WB = 8, WT = 35, WH = 64, DB = 2, DMAX = 6 };

typedef struct s2s {
    tn_params ps;
    tn_seq2seq m;
    tn_optim *opt;
} s2s;

/* src [SB, SS] (lengths 9..12, pad 0 after), tgt [SB, ST] (eos 2, pad 0
 * after), and word_lm's window x [SB, ST] with the words that follow, y. */
static int32_t S_SRC[SB * SS], S_LEN[SB], S_TGT[SB * ST], W_X[WB * WT], W_Y[WB * WT];

static void fill_ids(void)
{
    for (int b = 0; b < SB; b++) {
        S_LEN[b] = SS - b % 4;
        int tl = ST - 1 - b % 3; /* words before the eos */
        for (int i = 0; i < SS; i++)
            S_SRC[b * SS + i] = i < S_LEN[b] ? 3 + (b * 7 + i * 3) % (SV - 3) : 0;
        for (int t = 0; t < ST; t++)
            S_TGT[b * ST + t] = t < tl ? 3 + (b * 5 + t * 11) % (SV - 3) : t == tl ? 2 : 0;
    }
    for (int b = 0; b < WB; b++)
        for (int t = 0; t < WT; t++) {
            W_X[b * WT + t] = 1 + (b * 13 + t * 7) % (SV - 1);
            W_Y[b * WT + t] = 1 + (b * 13 + (t + 1) * 7) % (SV - 1);
        }
}

/* src and tgt as tape tensors of tp (NULL: the tape's error is set). */
static tn_tensor *ids_on(tn_tape *tp, const int32_t *ids, int64_t rows, int64_t cols)
{
    tn_tensor *t = tn_tape_tensor(tp, TN_I32, 2, (int64_t[]){rows, cols});
    if (t)
        memcpy(t->data, ids, sizeof *ids * (size_t)(rows * cols));
    return t;
}

/* tn_tape_new returned NULL: its status, checked (out of memory). */
static tn_status tape_new_failed(void)
{
    tn_status st = tn_last_status();
    check_oom("tn_tape_new", st);
    return st;
}

/* The end of a training step: *loss_out gets the loss, then backward,
 * clipping the gradients' norm to 1, the optimizer's step. TN_OK or the
 * first failure (checked: out of memory). */
static tn_status backward_step(tn_tape *tp, tn_tensor *loss, tn_params *ps, tn_optim *opt,
                               double *loss_out)
{
    *loss_out = tn_tensor_get(loss, 0);
    tn_params_zero_grad(ps);
    tn_status st = tn_backward(tp, loss);
    check_oom("tn_backward", st);
    if (st == TN_OK) {
        tn_clip_grad_norm(ps, 1.0, NULL);
        st = tn_optim_step(opt);
        check_oom("tn_optim_step", st);
    }
    return st;
}

/* One training step of translate: loss, backward, clip, Adam. TN_OK, or
 * the first failure (checked: out of memory). *loss_out: the loss. */
static tn_status s2s_step(s2s *s, double *loss_out)
{
    tn_tape *tp = tn_tape_new();
    if (!tp)
        return tape_new_failed();
    tn_rng tf;
    tn_rng_seed(&tf, 5); /* teacher forcing: the same draws every run */
    tn_tensor *src = ids_on(tp, S_SRC, SB, SS), *tgt = ids_on(tp, S_TGT, SB, ST), *loss = NULL;
    tn_status st = src && tgt ? TN_OK : tn_tape_status(tp);
    if (st == TN_OK)
        st = tn_seq2seq_loss(tp, &s->m, src, S_LEN, tgt, 0.5, &tf, &loss);
    check_oom("tn_seq2seq_loss", st);
    if (st == TN_OK)
        st = backward_step(tp, loss, &s->ps, s->opt, loss_out);
    tn_tape_free(tp);
    return st;
}

typedef struct wlm {
    tn_params ps;
    tn_embedding emb;
    tn_rnn rnn;
    tn_linear head;
    tn_tensor *h, *c; /* carried state [2, WB, WH] */
    tn_optim *opt;
} wlm;

static void wlm_free(wlm *w)
{
    tn_optim_free(w->opt);
    tn_params_free(&w->ps);
    tn_tensor_free(w->h);
    tn_tensor_free(w->c);
    w->opt = NULL, w->h = w->c = NULL;
}

/* translate's model: LSTM, bidirectional encoder, Bahdanau attention,
 * dropout 0.1, and its Adam. TN_OK, or the failure (checked: out of
 * memory; everything freed). */
static tn_status s2s_init(s2s *s, tn_rng *r)
{
    tn_params_init(&s->ps);
    s->opt = NULL;
    tn_seq2seq_opts so = {.cell = TN_CELL_LSTM,
                          .src_vocab = SV,
                          .tgt_vocab = SV,
                          .embed = SE,
                          .hidden = SH,
                          .layers = 1,
                          .bidirectional = true,
                          .attention = TN_ATTN_BAHDANAU,
                          .dropout = 0.1,
                          .src_pad = 0,
                          .tgt_pad = 0,
                          .sos = 1,
                          .eos = 2};
    tn_status st = tn_seq2seq_init(&s->m, &s->ps, NULL, &so, TN_F32, r);
    check_oom("tn_seq2seq_init", st);
    if (st == TN_OK && !(s->opt = tn_optim_adam(&s->ps, NULL)))
        check_oom("tn_optim_adam", st = tn_last_status());
    if (st != TN_OK)
        tn_params_free(&s->ps);
    return st;
}

static void s2s_free(s2s *s)
{
    tn_optim_free(s->opt);
    tn_params_free(&s->ps);
}

/* word_lm's model: embedding, LSTM of two layers (dropout 0.2), head tied
 * to the embedding, AdamW, the carried state. As s2s_init. */
static tn_status wlm_init(wlm *w, tn_rng *r)
{
    memset(w, 0, sizeof *w);
    tn_params_init(&w->ps);
    tn_adam_opts ao = tn_adamw_defaults();
    tn_status st = tn_embedding_init(&w->emb, &w->ps, "encoder", SV, WH, -1, TN_F32, r);
    if (st == TN_OK)
        st = tn_rnn_init(&w->rnn, &w->ps, "rnn", TN_CELL_LSTM, WH, WH, 2, false, 0.2, TN_F32, r);
    if (st == TN_OK)
        st = tn_linear_init_tied(&w->head, &w->ps, "decoder", "encoder.weight", true, TN_F32, r);
    check_oom("word LM layers", st);
    if (st == TN_OK && !(w->opt = tn_optim_adamw(&w->ps, &ao)))
        check_oom("tn_optim_adamw", st = tn_last_status());
    if (st == TN_OK && (!(w->h = tn_tensor_new(TN_F32, 3, (int64_t[]){2, WB, WH})) ||
                        !(w->c = tn_tensor_new(TN_F32, 3, (int64_t[]){2, WB, WH}))))
        check_oom("tn_tensor_new", st = tn_last_status());
    if (st != TN_OK)
        wlm_free(w);
    return st;
}

/* Sweep 5: both models built and freed (every parameter tensor, the
 * optimizers' state). */
static tn_status build_models(void)
{
    s2s s;
    wlm w;
    tn_rng r;
    tn_rng_seed(&r, 4);
    tn_status st = s2s_init(&s, &r);
    if (st == TN_OK) {
        st = wlm_init(&w, &r);
        if (st == TN_OK)
            wlm_free(&w);
        s2s_free(&s);
    }
    return st;
}

/* One training step of word_lm over a window of ids [WB, WT]: dropout on
 * the embeddings and the last layer's output, tied head, mean
 * cross-entropy, backward, clip, AdamW, final state kept. */
static tn_status wlm_step(wlm *w, double *loss_out)
{
    tn_tape *tp = tn_tape_new();
    if (!tp)
        return tape_new_failed();
    tn_tensor *x = ids_on(tp, W_X, WB, WT);
    tn_tensor *y = tn_tape_tensor(tp, TN_I32, 1, (int64_t[]){WB * WT});
    if (y)
        memcpy(y->data, W_Y, sizeof W_Y);
    tn_rnn_out fin;
    tn_status st = x && y ? TN_OK : tn_tape_status(tp);
    if (st == TN_OK)
        st = tn_rnn_forward(tp, &w->rnn, tn_dropout(tp, tn_embedding_forward(tp, &w->emb, x), 0.2),
                            w->h, w->c, NULL, &fin);
    tn_tensor *loss = NULL;
    if (st == TN_OK) {
        tn_tensor *lg = tn_linear_forward(tp, &w->head, tn_dropout(tp, fin.output, 0.2));
        loss =
            tn_cross_entropy(tp, tn_reshape(tp, lg, 2, (int64_t[]){-1, SV}), y, -1, TN_REDUCE_MEAN);
        st = tn_tape_status(tp);
    }
    check_oom("word LM forward", st);
    if (st == TN_OK)
        st = backward_step(tp, loss, &w->ps, w->opt, loss_out);
    if (st == TN_OK) { /* the next window starts from this one's final state */
        tn_tensor_copy(w->h, fin.h_n);
        tn_tensor_copy(w->c, fin.c_n);
    }
    tn_tape_free(tp);
    return st;
}

/* Decoding results: greedy, beam, sampled (tokens, lengths, scores), and
 * tn_sample's ids. */
typedef struct decoded {
    int32_t out[3][DB * DMAX], len[3][DB], ids[3];
    double score[3][DB];
    tn_status st[4];
} decoded;

static void decode_all(const s2s *s, const tn_tensor *logits, decoded *d)
{
    memset(d, 0, sizeof *d);
    tn_tape *tp = tn_tape_new();
    if (!tp) {
        check_oom("tn_tape_new", tn_last_status());
        for (int k = 0; k < 4; k++)
            d->st[k] = tn_last_status();
        return;
    }
    tn_sample_opts so = {.temperature = 0.8, .top_k = 5, .top_p = 0.9};
    tn_rng r;
    tn_rng_seed(&r, 11);
    for (int k = 0; k < 3; k++) {
        tn_tape_reset(tp); /* a failure on the tape is over: the next call starts clean */
        tn_tensor *src = ids_on(tp, S_SRC, DB, SS);
        tn_status st = src ? TN_OK : tn_tape_status(tp);
        if (st == TN_OK)
            st = k == 0   ? tn_seq2seq_greedy(tp, &s->m, src, S_LEN, DMAX, d->out[k], d->len[k],
                                              d->score[k])
                 : k == 1 ? tn_seq2seq_beam(tp, &s->m, src, S_LEN, 3, 0.7, DMAX, d->out[k],
                                            d->len[k], d->score[k])
                          : tn_seq2seq_sample(tp, &s->m, src, S_LEN, DMAX, &so, &r, d->out[k],
                                              d->len[k], d->score[k]);
        check_oom(k == 0   ? "tn_seq2seq_greedy"
                  : k == 1 ? "tn_seq2seq_beam"
                           : "tn_seq2seq_sample",
                  st);
        d->st[k] = st;
    }
    tn_tape_free(tp);
    tn_rng_seed(&r, 12); /* not what the sampled decoding drew before a failure */
    d->st[3] = tn_sample(logits, &so, &r, d->ids);
    check_oom("tn_sample", d->st[3]);
}

/* What a decoding call that succeeded must equal: the run without failures. */
static void check_decoded(const decoded *d, const decoded *ref)
{
    for (int k = 0; k < 3; k++)
        if (d->st[k] == TN_OK && (memcmp(d->out[k], ref->out[k], sizeof d->out[k]) ||
                                  memcmp(d->len[k], ref->len[k], sizeof d->len[k]) ||
                                  memcmp(d->score[k], ref->score[k], sizeof d->score[k]))) {
            fprintf(stderr, "fail_at %ld: decoding %d succeeded with other results\n", fail_at, k);
            CHECK(false);
        }
    if (d->st[3] == TN_OK && memcmp(d->ids, ref->ids, sizeof d->ids)) {
        fprintf(stderr, "fail_at %ld: tn_sample succeeded with other ids\n", fail_at);
        CHECK(false);
    }
}

typedef struct models {
    s2s s;
    wlm w;
    tn_tensor *logits; /* [3, SV] for tn_sample */
    decoded ref;
} models;

/* One run of scenario k (2, 3 or 4) with allocation fail_at failing, then
 * the checks above and a run without failure. Returns true when the
 * failure was injected. */
static bool model_run(models *md, int k)
{
    tn_params *ps = k == 3 ? &md->w.ps : &md->s.ps;
    uint64_t before = params_hash(ps);
    long live = n_live;
    n_alloc = 0;
    tn_clear_error();
    double loss = NAN;
    tn_status st = TN_OK;
    decoded d;
    if (k == 2)
        st = s2s_step(&md->s, &loss);
    else if (k == 3)
        st = wlm_step(&md->w, &loss);
    else if (k == 4)
        decode_all(&md->s, md->logits, &d), check_decoded(&d, &md->ref);
    else
        st = build_models();
    bool injected = n_alloc >= fail_at;
    long made = n_alloc;
    if (n_live != live) {
        fprintf(stderr, "sweep %d fail_at %ld: %ld allocations not freed\n", k, fail_at,
                n_live - live);
        CHECK(false);
    }
    if (st != TN_OK && params_hash(ps) != before) {
        fprintf(stderr, "sweep %d fail_at %ld: a failed step changed the parameters\n", k, fail_at);
        CHECK(false);
    }
    if (st == TN_OK && k <= 3 && !isfinite(loss)) {
        fprintf(stderr, "sweep %d fail_at %ld: loss %g\n", k, fail_at, loss);
        CHECK(false);
    }
    /* the next step, with no failure, works */
    long keep = fail_at;
    fail_at = 0;
    tn_clear_error();
    if (k == 2)
        CHECK(s2s_step(&md->s, &loss) == TN_OK && isfinite(loss));
    else if (k == 3)
        CHECK(wlm_step(&md->w, &loss) == TN_OK && isfinite(loss));
    else if (k == 4) {
        decode_all(&md->s, md->logits, &d);
        CHECK(d.st[0] == TN_OK && d.st[1] == TN_OK && d.st[2] == TN_OK && d.st[3] == TN_OK);
        check_decoded(&d, &md->ref);
    } else
        CHECK(build_models() == TN_OK);
    fail_at = keep;
    n_alloc = made; /* what the run with the failure made (reported at the end) */
    return injected;
}

static void sweep_models(void)
{
    models md;
    memset(&md, 0, sizeof md);
    fail_at = 0;
    fill_ids();
    tn_rng r;
    tn_rng_seed(&r, 3);
    CHECK(s2s_init(&md.s, &r) == TN_OK);
    CHECK(wlm_init(&md.w, &r) == TN_OK);
    md.logits = tn_tensor_new(TN_F32, 2, (int64_t[]){3, SV});
    CHECK(md.logits != NULL);
    tn_tensor_uniform(md.logits, &r, -2, 2);
    static const char *const what[] = {"translate training step", "word LM training step",
                                       "decoding", "building the models"};
    for (int k = 2; k <= 5; k++) {
        if (k == 4) { /* the reference, without failures, of the model as trained */
            decode_all(&md.s, md.logits, &md.ref);
            CHECK(md.ref.st[0] == TN_OK && md.ref.st[1] == TN_OK && md.ref.st[2] == TN_OK &&
                  md.ref.st[3] == TN_OK);
        }
        long runs = 0;
        double t0 = (double)clock() / CLOCKS_PER_SEC;
        for (fail_at = 1; model_run(&md, k); fail_at++)
            runs++;
        fail_at = 0;
        printf("test_alloc_sweep: sweep %d (%s): %ld runs, each failing one allocation (of %ld "
               "per run; %.1f s)\n",
               k, what[k - 2], runs, n_alloc, (double)clock() / CLOCKS_PER_SEC - t0);
        CHECK(runs >= 5); /* the scenario really allocates: the sweep is not empty */
    }
    s2s_free(&md.s);
    wlm_free(&md.w);
    tn_tensor_free(md.logits);
}

int main(void)
{
    strcpy(dir, "/tmp/tn_test_sweep.XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(path, sizeof path, "%s/ckpt.safetensors", dir);
    tn_params none = {0};
    if (tn_save(path, (tn_params *[]){&none}, 1, NULL) != TN_OK &&
        strstr(tn_last_error(), "built without jansson")) {
        printf("test_alloc_sweep: %s: skipping\n", tn_last_error());
        rmdir(dir);
        return 77;
    }
    tn_runtime_init();
    tn_set_allocator(sweep_alloc, sweep_free); /* before any library object exists */
    model a;
    model_build(&a, 1);
    tn_optim *opt = tn_optim_adam(&a.ps, NULL);
    CHECK(tn_save(path, (tn_params *[]){&a.ps, (tn_params *)tn_optim_state(opt)}, 2, NULL) ==
          TN_OK);
    size_t ngood = 0;
    unsigned char *good = check_read_file(path, &ngood);
    long runs = 0;
    for (fail_at = 1; scenario(&a, opt, good, ngood); fail_at++)
        runs++;
    fail_at = 0;
    printf("test_alloc_sweep: %ld runs, each failing one allocation (of %ld per run)\n", runs,
           n_alloc);
    CHECK(runs > 100); /* the scenario really allocates: the sweep is not empty */
    free(good);
    tn_optim_free(opt);
    tn_params_free(&a.ps);
    unlink(path);
    rmdir(dir);
    sweep_models();
    tn_set_allocator(NULL, NULL);
    return check_report("test_alloc_sweep");
}
