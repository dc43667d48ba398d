/* tests/test_lm.c - the stream language model (tensor/lm.h): parameters
 * and names, save/load round trips (bit for bit), streaming steps against
 * the windowed forward, evaluation, crafted metadata, and PyTorch parity
 * (fixtures from tests/gen_lm_fixtures.py).
 *
 * Tolerances: tn_lm_step against tn_lm_forward over the same tokens
 * (float32; the same ops on one step instead of T, so only the order of
 * the GEMMs' sums differs): |a - b| <= 1e-6 * max(1, |b|). tn_lm_eval against
 * the per-step log-softmax summed in double: 1e-6 relative. PyTorch
 * (float64 reference of the float32 weights) against tn_lm_step and
 * tn_lm_forward: |a - b| <= 1e-5 * max(1, |b|). Round trips, and streams
 * run in two threads on one model against the same streams run in turn,
 * are exact. */
#include "check.h"
#include "fixture.h"
#include "tensor/tensor.h"

#include <inttypes.h>
#include <pthread.h>
#include <unistd.h>

static char tmpdir[64];

static const char *tmp(const char *name)
{
    static char buf[4][160];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

static bool close_rel(double a, double b, double tol)
{
    return fabs(a - b) <= tol * fmax(1.0, fabs(b));
}

static tn_lm_opts char_opts(tn_cell cell)
{
    tn_lm_opts o = tn_lm_defaults();
    o.cell = cell;
    o.vocab = 10;
    o.embed = 4;
    o.hidden = 6;
    o.layers = 2;
    return o;
}

static tn_lm_opts word_opts(void)
{
    tn_lm_opts o = tn_lm_defaults();
    o.cell = TN_CELL_GRU;
    o.vocab = 9;
    o.embed = o.hidden = 5;
    o.layers = 1;
    o.tie = true;
    o.dropout = 0.25;
    o.io_dropout = 0.5;
    o.init_range = 0.1;
    snprintf(o.embed_name, sizeof o.embed_name, "encoder");
    snprintf(o.head_name, sizeof o.head_name, "decoder");
    return o;
}

static bool same_values(const tn_tensor *a, const tn_tensor *b)
{
    if (!a || !b || tn_numel(a) != tn_numel(b) || a->dtype != b->dtype)
        return false;
    return memcmp(a->data, b->data, (size_t)tn_numel(a) * tn_dtype_size(a->dtype)) == 0;
}

static bool same_params(const tn_params *a, const tn_params *b)
{
    if (a->n != b->n)
        return false;
    for (int i = 0; i < a->n; i++)
        if (strcmp(a->items[i].name, b->items[i].name) != 0 ||
            !same_values(a->items[i].t, b->items[i].t))
            return false;
    return true;
}

/* m built from o with float32 parameters drawn from a generator seeded
 * with seed; returns the generator after the draws. */
static tn_rng new_model(tn_lm *m, tn_lm_opts o, uint64_t seed)
{
    tn_rng r;
    tn_rng_seed(&r, seed);
    CHECK(tn_lm_init(m, &o, TN_F32, &r) == TN_OK);
    return r;
}

/* ---- 1. parameters, names, options ---- */

static void test_init(void)
{
    tn_lm m;
    tn_lm_opts o = char_opts(TN_CELL_LSTM);
    tn_rng r = new_model(&m, o, 1);
    /* PyTorch's state_dict order and shapes */
    const char *names[] = {"embed.weight",     "rnn.weight_ih_l0", "rnn.weight_hh_l0",
                           "rnn.bias_ih_l0",   "rnn.bias_hh_l0",   "rnn.weight_ih_l1",
                           "rnn.weight_hh_l1", "rnn.bias_ih_l1",   "rnn.bias_hh_l1",
                           "head.weight",      "head.bias"};
    int64_t shapes[][2] = {{10, 4}, {24, 4}, {24, 6}, {24, 1}, {24, 1}, {24, 6},
                           {24, 6}, {24, 1}, {24, 1}, {10, 6}, {10, 1}};
    CHECK(m.ps.n == 11);
    for (int i = 0; i < m.ps.n && i < 11; i++) {
        const tn_tensor *t = m.ps.items[i].t;
        CHECK(strcmp(m.ps.items[i].name, names[i]) == 0);
        CHECK(t->shape[0] == shapes[i][0] && t->shape[1] == shapes[i][1] && t->dtype == TN_F32);
    }
    CHECK(m.embed.weight == tn_params_get(&m.ps, "embed.weight"));
    CHECK(m.head.weight == tn_params_get(&m.ps, "head.weight"));
    tn_lm_free(&m);
    CHECK(m.ps.n == 0);

    /* word_language_model: encoder/decoder, tied, init_range */
    tn_lm w;
    o = word_opts();
    CHECK(tn_lm_init(&w, &o, TN_F64, &r) == TN_OK);
    CHECK(w.ps.n == 6); /* encoder.weight, 4 rnn tensors, decoder.bias */
    CHECK(tn_params_get(&w.ps, "decoder.weight") == w.embed.weight);
    CHECK(w.head.weight == w.embed.weight && w.dtype == TN_F64);
    bool in_range = true;
    for (int64_t i = 0; i < tn_numel(w.embed.weight); i++)
        in_range = in_range && fabs(tn_tensor_get(w.embed.weight, i)) <= 0.1;
    CHECK(in_range);
    CHECK(tn_tensor_get(w.head.bias, 0) == 0 && tn_tensor_get(w.head.bias, 8) == 0);
    tn_lm_free(&w);

    /* bad options: refused naming tn_lm_init and the option */
    struct {
        const char *what;
        tn_lm_opts o;
    } bad[6];
    for (int i = 0; i < 6; i++)
        bad[i].o = char_opts(TN_CELL_GRU);
    bad[0].what = "vocab", bad[0].o.vocab = 0;
    bad[1].what = "layers", bad[1].o.layers = TN_RNN_MAX_LAYERS + 1;
    bad[2].what = "dropout", bad[2].o.dropout = 1;
    bad[3].what = "tied", bad[3].o.tie = true;
    bad[4].what = "head_name", snprintf(bad[4].o.head_name, TN_LM_NAME_MAX, "embed");
    bad[5].what = "hidden", bad[5].o.hidden = -3;
    for (int i = 0; i < 6; i++) {
        tn_lm b;
        CHECK(tn_lm_init(&b, &bad[i].o, TN_F32, &r) == TN_ERR_ARG);
        CHECK_MSG(tn_last_error(), "tn_lm_init");
        CHECK_MSG(tn_last_error(), bad[i].what);
        CHECK(b.ps.n == 0);
    }
    CHECK(tn_lm_init(&m, NULL, TN_F32, &r) == TN_ERR_ARG);
    CHECK(tn_lm_state_new(NULL, 1) == NULL);
}

/* ---- 2. streaming steps against the windowed forward ---- */

/* Logits [B*T, V] of tn_lm_forward over ids [B, T] from a zero state, in
 * eval mode, into out; the final h into h_out [L*B*H]. */
static void forward_logits(const tn_lm *m, const int32_t *ids, int64_t B, int64_t T, double *out,
                           double *h_out)
{
    tn_tape *tp = tn_tape_new();
    tn_tape_set_grad(tp, false);
    tn_tape_set_training(tp, false);
    tn_tensor *x = tn_tape_tensor(tp, TN_I32, 2, (int64_t[]){B, T});
    memcpy(x->data, ids, sizeof(int32_t) * (size_t)(B * T));
    tn_rnn_out fin;
    tn_tensor *y = tn_lm_forward(tp, m, NULL, x, &fin);
    CHECK(y && y->shape[0] == B * T && y->shape[1] == m->o.vocab);
    if (y)
        tn_tensor_to_double(y, out);
    if (y && h_out)
        tn_tensor_to_double(fin.h_n, h_out);
    tn_tape_free(tp);
}

/* tn_lm_step over ids [B, T] (column t at step t) from st against want
 * [B*T, V]: the largest |got - want| / max(1, |want|). st advances. */
static double step_worst(const tn_lm *m, tn_lm_state *st, const int32_t *ids, int64_t B, int64_t T,
                         const double *want)
{
    int64_t V = m->o.vocab;
    float *got = malloc(sizeof(float) * (size_t)(B * V));
    int32_t *col = malloc(sizeof(int32_t) * (size_t)B);
    double worst = 0;
    for (int64_t t = 0; t < T; t++) {
        for (int64_t b = 0; b < B; b++)
            col[b] = ids[b * T + t];
        CHECK(tn_lm_step(m, st, col, got) == TN_OK);
        for (int64_t b = 0; b < B; b++)
            for (int64_t v = 0; v < V; v++) {
                double w = want[(b * T + t) * V + v];
                worst = fmax(worst, fabs(got[b * V + v] - w) / fmax(1.0, fabs(w)));
            }
    }
    free(got), free(col);
    return worst;
}

/* step_worst against forward_logits, the final states included. */
static double step_vs_forward(const tn_lm *m, const int32_t *ids, int64_t B, int64_t T)
{
    int64_t V = m->o.vocab, L = m->o.layers, H = m->o.hidden;
    double *want = malloc(sizeof(double) * (size_t)(B * T * V));
    double *hw = malloc(sizeof(double) * (size_t)(L * B * H));
    double *hg = malloc(sizeof(double) * (size_t)(L * B * H));
    forward_logits(m, ids, B, T, want, hw);
    tn_lm_state *st = tn_lm_state_new(m, B);
    double worst = step_worst(m, st, ids, B, T, want);
    tn_tensor_to_double(st->h, hg);
    for (int64_t i = 0; i < L * B * H; i++)
        worst = fmax(worst, fabs(hg[i] - hw[i]) / fmax(1.0, fabs(hw[i])));
    tn_lm_state_free(st);
    free(want), free(hw), free(hg);
    return worst;
}

static void test_step(void)
{
    tn_cell cells[3] = {TN_CELL_LSTM, TN_CELL_GRU, TN_CELL_RNN_TANH};
    for (int c = 0; c < 3; c++) {
        tn_rng r;
        tn_rng_seed(&r, 10 + (uint64_t)c);
        tn_lm m;
        tn_lm_opts o = char_opts(cells[c]);
        o.dropout = 0.3, o.io_dropout = 0.2; /* off in eval mode */
        CHECK(tn_lm_init(&m, &o, TN_F32, &r) == TN_OK);
        enum { B = 3, T = 11 };
        int32_t ids[B * T];
        for (int i = 0; i < B * T; i++)
            ids[i] = (int32_t)(tn_rng_next(&r) % 10);
        double worst = step_vs_forward(&m, ids, B, T);
        CHECK(worst <= 1e-6);
        if (worst > 1e-6)
            fprintf(stderr, "step vs forward (%s): %g\n", tn_cell_name(cells[c]), worst);

        /* errors leave the state alone and do not abort */
        tn_lm_state *st = tn_lm_state_new(&m, B);
        float out[B * 10];
        int32_t badids[B] = {1, 10, 2};
        CHECK(tn_lm_step(&m, st, badids, out) != TN_OK);
        CHECK_MSG(tn_last_error(), "tn_lm_step");
        CHECK(tn_tensor_get(st->h, 0) == 0);
        CHECK(tn_lm_step(&m, st, NULL, out) == TN_ERR_ARG);

        /* a copy branches the streams: stepping the copy and the original
         * with the same ids gives the same logits, bit for bit; a state of
         * another batch is refused and left alone */
        int32_t some[B] = {1, 2, 3}, more[B] = {4, 5, 6};
        float o1[B * 10], o2[B * 10];
        CHECK(tn_lm_step(&m, st, some, out) == TN_OK);
        tn_lm_state *br = tn_lm_state_new(&m, B), *other = tn_lm_state_new(&m, B + 1);
        CHECK(br && other && tn_lm_state_copy(br, st) == TN_OK);
        CHECK(tn_lm_step(&m, st, more, o1) == TN_OK && tn_lm_step(&m, br, more, o2) == TN_OK);
        CHECK(memcmp(o1, o2, sizeof o1) == 0);
        CHECK(tn_lm_state_copy(other, st) == TN_ERR_SHAPE);
        CHECK_MSG(tn_last_error(), "tn_lm_state_copy");
        CHECK(tn_tensor_get(other->h, 0) == 0);
        CHECK(tn_lm_state_copy(NULL, st) == TN_ERR_ARG);
        tn_lm_state_free(br);
        tn_lm_state_free(other);
        tn_lm_state_free(st);
        tn_lm_free(&m);
    }
}

/* One thread's stream through a shared model: T steps of 1 stream. */
typedef struct stream_job {
    const tn_lm *m;
    int32_t ids[16];
    float logits[16 * 10];
    int rc;
} stream_job;

static void *run_stream(void *arg)
{
    stream_job *j = arg;
    tn_lm_state *st = tn_lm_state_new(j->m, 1);
    j->rc = st ? 0 : -1;
    for (int t = 0; j->rc == 0 && t < 16; t++)
        j->rc = tn_lm_step(j->m, st, &j->ids[t], &j->logits[t * 10]) == TN_OK ? 0 : -1;
    tn_lm_state_free(st);
    return NULL;
}

/* Two threads, each with its own state, share one model: the same logits
 * as the streams run one after the other, bit for bit. */
static void test_threads(void)
{
    tn_lm m;
    tn_rng r = new_model(&m, char_opts(TN_CELL_LSTM), 12);
    stream_job seq[2], par[2];
    for (int k = 0; k < 2; k++) {
        seq[k] = (stream_job){.m = &m};
        for (int t = 0; t < 16; t++)
            seq[k].ids[t] = (int32_t)(tn_rng_next(&r) % 10);
        par[k] = seq[k];
        run_stream(&seq[k]);
    }
    pthread_t th[2];
    for (int k = 0; k < 2; k++)
        CHECK(pthread_create(&th[k], NULL, run_stream, &par[k]) == 0);
    for (int k = 0; k < 2; k++) {
        pthread_join(th[k], NULL);
        CHECK(seq[k].rc == 0 && par[k].rc == 0);
        CHECK(memcmp(seq[k].logits, par[k].logits, sizeof seq[k].logits) == 0);
    }
    tn_lm_free(&m);
}

/* ---- 3. training windows: loss, backward, carried state ---- */

static void test_window(void)
{
    tn_lm m;
    new_model(&m, char_opts(TN_CELL_LSTM), 3);
    enum { B = 2, T = 4, S = 11 }; /* 2 streams of 11 tokens: windows at 0, 4, then wrap */
    int32_t ids[B * S];
    for (int i = 0; i < B * S; i++)
        ids[i] = i % 10;
    tn_lm_state *st = tn_lm_state_new(&m, B);
    tn_tensor *x = tn_tensor_new(TN_I32, 2, (int64_t[]){B, T});
    tn_tensor *y = tn_tensor_new(TN_I32, 1, (int64_t[]){B * T});
    tn_tape *tp = tn_tape_new();
    tn_tape_set_training(tp, false);
    int64_t pos = 0;
    for (int step = 0; step < 3; step++) {
        CHECK(tn_lm_window(st, ids, S, 0, &pos, x, y) == TN_OK);
        CHECK(pos == (step == 2 ? 0 : 4 * step));
        CHECK(tn_tensor_get(x, T) == ids[S + pos] && tn_tensor_get(y, T) == ids[S + pos + 1]);
        if (step == 2) /* the wrap zeroed the carried state */
            CHECK(tn_tensor_get(st->h, 0) == 0 && tn_tensor_get(st->c, 5) == 0);
        tn_tape_reset(tp);
        tn_rnn_out fin, fin2;
        tn_tensor *loss = tn_lm_loss(tp, &m, st, x, y, &fin);
        /* the fused loss against cross-entropy of the logits */
        tn_tensor *ce =
            tn_cross_entropy(tp, tn_lm_forward(tp, &m, st, x, &fin2), y, -1, TN_REDUCE_MEAN);
        CHECK(loss && ce && close_rel(tn_tensor_get(loss, 0), tn_tensor_get(ce, 0), 1e-6));
        tn_params_zero_grad(&m.ps);
        CHECK(tn_backward(tp, loss) == TN_OK);
        CHECK(tn_tensor_grad_get(m.rnn.w_hh[0], 0) != 0 || step == 0);
        CHECK(tn_lm_state_keep(st, &fin) == TN_OK);
        CHECK(same_values(st->h, fin.h_n) || tn_is_contiguous(fin.h_n) == false);
        pos += T;
    }
    tn_tensor *bad = tn_tensor_new(TN_I32, 2, (int64_t[]){B, 12});
    CHECK(tn_lm_window(st, ids, S, 0, &pos, bad, y) == TN_ERR_ARG);
    CHECK_MSG(tn_last_error(), "tn_lm_window");
    tn_tensor_free(bad);
    tn_tape_free(tp);
    tn_tensor_free(x);
    tn_tensor_free(y);
    tn_lm_state_free(st);
    tn_lm_free(&m);
}

/* ---- 4. evaluation ---- */

static void test_eval(void)
{
    tn_lm m;
    tn_lm_opts o = char_opts(TN_CELL_GRU);
    tn_rng r = new_model(&m, o, 4);
    enum { N = 600 }; /* three windows of eval */
    int32_t *ids = malloc(sizeof(int32_t) * N);
    for (int i = 0; i < N; i++)
        ids[i] = (int32_t)(tn_rng_next(&r) % 10);
    double nll = NAN;
    CHECK(tn_lm_eval(&m, NULL, ids, N, &nll) == TN_OK);
    /* reference: tn_lm_step's logits, log-softmax in double */
    tn_lm_state *st = tn_lm_state_new(&m, 1);
    double sum = 0;
    float lg[10];
    for (int i = 0; i + 1 < N; i++) {
        CHECK(tn_lm_step(&m, st, &ids[i], lg) == TN_OK);
        double x[10];
        for (int v = 0; v < 10; v++)
            x[v] = lg[v];
        sum += check_logsumexp(x, 10) - x[ids[i + 1]];
    }
    CHECK(close_rel(nll, sum / (N - 1), 1e-6));
    tn_lm_state_free(st);
    /* the caller's tape: settings restored */
    tn_tape *tp = tn_tape_new();
    double nll2 = NAN;
    CHECK(tn_lm_eval(&m, tp, ids, N, &nll2) == TN_OK && nll2 == nll);
    CHECK(tn_tape_grad_enabled(tp) && tn_tape_training(tp));
    double keep = 7;
    CHECK(tn_lm_eval(&m, tp, ids, 1, &keep) == TN_ERR_ARG && keep == 7);
    ids[300] = 10; /* out of the vocabulary */
    CHECK(tn_lm_eval(&m, tp, ids, N, &keep) != TN_OK && keep == 7);
    CHECK_MSG(tn_last_error(), "tn_lm_eval");
    ids[300] = 1;
    tn_tensor_set(m.head.weight, 3, NAN);
    CHECK(tn_lm_eval(&m, tp, ids, N, &keep) == TN_ERR_NUMERIC && keep == 7);
    CHECK_MSG(tn_last_error(), "not finite");
    tn_tape_free(tp);
    free(ids);
    tn_lm_free(&m);
}

/* ---- 5. save and load ---- */

static void test_roundtrip(void)
{
    tn_lm m;
    tn_lm_opts o = char_opts(TN_CELL_LSTM);
    o.dropout = 0.125;
    tn_rng r = new_model(&m, o, 5);
    tn_lm_state *st = tn_lm_state_new(&m, 3);
    tn_tensor_uniform(st->h, &r, -1, 1);
    tn_tensor_uniform(st->c, &r, -1, 1);
    tn_optim *opt = tn_optim_adam(&m.ps, NULL);
    tn_params *os = tn_optim_state(opt);
    for (int i = 0; i < os->n; i++)
        tn_tensor_uniform(os->items[i].t, &r, 0, 1);
    tn_meta meta;
    tn_meta_init(&meta);
    tn_meta_set(&meta, "program", "test_lm");
    tn_meta_set(&meta, "lm.hidden", "999"); /* replaced by the model's */
    const char *full = tmp("full.st"), *model = tmp("model.st");
    CHECK(tn_lm_save(full, &m, st, (tn_params *[]){os}, 1, &meta) == TN_OK);
    CHECK(strcmp(tn_meta_get(&meta, "lm.hidden"), "999") == 0); /* meta not changed */
    CHECK(tn_lm_save(model, &m, NULL, NULL, 0, NULL) == TN_OK);

    /* from the metadata alone; optimizer and state skipped */
    tn_lm a;
    tn_meta got;
    tn_meta_init(&got);
    CHECK(tn_lm_load(full, &a, NULL, &got) == TN_OK);
    CHECK(same_params(&a.ps, &m.ps) && a.o.layers == 2 && a.o.dropout == 0.125);
    CHECK(memcmp(&a.o, &m.o, sizeof a.o) == 0);
    CHECK(tn_meta_get(&got, "program") && strcmp(tn_meta_get(&got, "lm.hidden"), "6") == 0);
    CHECK(strcmp(tn_meta_get(&got, "lm.cell"), "lstm") == 0);
    /* and the same outputs, bit for bit */
    tn_lm_state *s1 = tn_lm_state_new(&m, 1), *s2 = tn_lm_state_new(&a, 1);
    float l1[10], l2[10];
    for (int32_t t = 0; t < 5; t++) {
        CHECK(tn_lm_step(&m, s1, &t, l1) == TN_OK && tn_lm_step(&a, s2, &t, l2) == TN_OK);
        CHECK(memcmp(l1, l2, sizeof l1) == 0);
    }
    tn_lm_state_free(s1);
    tn_lm_state_free(s2);
    tn_lm_free(&a);

    /* with the carried state */
    tn_lm_state *st2 = NULL;
    CHECK(tn_lm_load(full, &a, &st2, NULL) == TN_OK);
    CHECK(st2 && same_values(st2->h, st->h) && same_values(st2->c, st->c));
    tn_lm_state_free(st2);
    tn_lm_free(&a);
    CHECK(tn_lm_load(model, &a, &st2, NULL) == TN_OK && st2 == NULL);
    tn_lm_free(&a);

    /* resume: open, an optimizer over the new model, its state loaded */
    CHECK(tn_lm_open(full, &a, NULL, NULL) == TN_OK);
    tn_optim *opt2 = tn_optim_adam(&a.ps, NULL);
    CHECK(tn_lm_load_params(full, &a, &st2, (tn_params *[]){tn_optim_state(opt2)}, 1, NULL) ==
          TN_OK);
    CHECK(same_params(tn_optim_state(opt2), os) && same_params(&a.ps, &m.ps));
    CHECK(st2 && same_values(st2->c, st->c));
    tn_lm_state_free(st2);
    /* an optimizer set whose tensors the file lacks: tn_load's strict error */
    CHECK(tn_lm_load_params(model, &a, NULL, (tn_params *[]){tn_optim_state(opt2)}, 1, NULL) ==
          TN_ERR_FORMAT);
    tn_optim_free(opt2);
    tn_lm_free(&a);

    /* a file without the lm.* keys (a program's older checkpoint): refused
     * by tn_lm_load naming the key, loaded with the options given */
    const char *plain = tmp("plain.st");
    CHECK(tn_save(plain, (tn_params *[]){&m.ps}, 1, NULL) == TN_OK);
    CHECK(tn_lm_load(plain, &a, NULL, NULL) == TN_ERR_FORMAT && a.ps.n == 0);
    CHECK_MSG(tn_last_error(), "lm.format");
    CHECK(tn_lm_open(plain, &a, &o, NULL) == TN_OK);
    CHECK(tn_lm_load_params(plain, &a, &st2, NULL, 0, NULL) == TN_OK && st2 == NULL);
    CHECK(same_params(&a.ps, &m.ps));
    tn_lm_free(&a);
    o.hidden = 7; /* options the file's tensors do not have */
    CHECK(tn_lm_open(plain, &a, &o, NULL) == TN_ERR_FORMAT && a.ps.n == 0);
    CHECK_MSG(tn_last_error(), "metadata (vocab 10, embed 4, hidden 7, layers 2)");

    /* a tied model: the weight saved once, loaded back tied */
    tn_lm w, w2;
    o = word_opts();
    CHECK(tn_lm_init(&w, &o, TN_F32, &r) == TN_OK);
    const char *tied = tmp("tied.st");
    CHECK(tn_lm_save(tied, &w, NULL, NULL, 0, NULL) == TN_OK);
    tn_ckpt_entry *ents = NULL;
    int n = 0;
    CHECK(tn_load_list(tied, &ents, &n) == TN_OK && n == 6);
    for (int i = 0; i < n; i++)
        CHECK(strcmp(ents[i].name, "decoder.weight") != 0);
    tn_ckpt_entries_free(ents, n);
    CHECK(tn_lm_load(tied, &w2, NULL, NULL) == TN_OK);
    CHECK(w2.o.tie && w2.head.weight == w2.embed.weight && same_params(&w.ps, &w2.ps));
    CHECK(strcmp(w2.o.embed_name, "encoder") == 0 && w2.o.io_dropout == 0.5);
    tn_lm_free(&w2);
    tn_lm_free(&w);

    tn_meta_free(&got);
    tn_meta_free(&meta);
    tn_optim_free(opt);
    tn_lm_state_free(st);
    tn_lm_free(&m);
}

/* ---- 6. crafted metadata and files ---- */

/* A copy of m's checkpoint (with st when given) whose metadata key is
 * value (NULL: removed), written with tn_save. */
static const char *crafted(const tn_lm *m, const tn_lm_state *st, const char *key,
                           const char *value)
{
    const char *src = tmp("src.st"), *dst = tmp("crafted.st");
    CHECK(tn_lm_save(src, m, st, NULL, 0, NULL) == TN_OK);
    tn_meta meta, edited;
    tn_meta_init(&meta);
    tn_meta_init(&edited);
    CHECK(tn_load_meta(src, &meta) == TN_OK);
    for (int i = 0; i < meta.n; i++)
        if (strcmp(meta.keys[i], key) != 0)
            tn_meta_set(&edited, meta.keys[i], meta.values[i]);
    if (value)
        tn_meta_set(&edited, key, value);
    tn_lm full = *m; /* its tensors plus the state's, as tn_lm_save writes them */
    tn_params sp;
    tn_params_init(&sp);
    if (st) {
        tn_params_new(&sp, NULL, "state.h", TN_F32, 3, st->h->shape);
        if (st->c)
            tn_params_new(&sp, NULL, "state.c", TN_F32, 3, st->c->shape);
    }
    CHECK(tn_save(dst, (tn_params *[]){&full.ps, &sp}, 2, &edited) == TN_OK);
    tn_params_free(&sp);
    tn_meta_free(&meta);
    tn_meta_free(&edited);
    return dst;
}

static void refused(const char *path, const char *key, bool with_state)
{
    tn_lm m;
    memset(&m, 0x5a, sizeof m);
    tn_lm_state *st = (tn_lm_state *)&m;
    tn_status s = tn_lm_load(path, &m, with_state ? &st : NULL, NULL);
    CHECK(s == TN_ERR_FORMAT);
    CHECK(m.ps.n == 0 && m.ps.items == NULL);
    CHECK(!with_state || st == NULL);
    CHECK_MSG(tn_last_error(), path);
    CHECK_MSG(tn_last_error(), key);
    if (s == TN_OK)
        tn_lm_free(&m);
}

static void test_crafted(void)
{
    tn_lm m;
    tn_lm_opts o = char_opts(TN_CELL_LSTM);
    tn_rng r = new_model(&m, o, 6);
    struct {
        const char *key, *value;
    } bad[] = {
        {"lm.hidden", "1048576"}, /* sizes the tensors do not have: before any allocation */
        {"lm.embed", "1024"},        {"lm.vocab", "4611686018427387904"},
        {"lm.layers", "3"},          {"lm.layers", "9"},
        {"lm.hidden", "abc"},        {"lm.hidden", NULL},
        {"lm.cell", "transformer"},  {"lm.format", "2"},
        {"lm.dropout", "1.5"},       {"lm.io_dropout", "nan"},
        {"lm.tie", "yes"},           {"lm.tie", "1"}, /* embed != hidden */
        {"lm.embed_name", ""},       {"lm.head_name", "embed"},
        {"lm.head_name", "decoder"}, /* no decoder.weight in the file */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *p = crafted(&m, NULL, bad[i].key, bad[i].value);
        refused(p,
                strcmp(bad[i].value ? bad[i].value : "", "decoder") == 0 ? "decoder.weight"
                                                                         : bad[i].key,
                false);
    }
    CHECK_MSG(tn_last_error(), "metadata");

    /* fewer layers in the metadata than in the file: the extra layer's
     * tensors are named (tn_lm_load_params) */
    const char *p = crafted(&m, NULL, "lm.layers", "1");
    tn_lm a;
    CHECK(tn_lm_open(p, &a, NULL, NULL) == TN_OK); /* layer 0's shapes match */
    CHECK(tn_lm_load_params(p, &a, NULL, NULL, 0, NULL) == TN_ERR_FORMAT);
    CHECK_MSG(tn_last_error(), "rnn.weight_ih_l1");
    CHECK_MSG(tn_last_error(), p);
    tn_lm_free(&a);

    /* a carried state of another shape */
    tn_lm_opts o1 = o;
    o1.hidden = 7;
    tn_lm other;
    CHECK(tn_lm_init(&other, &o1, TN_F32, &r) == TN_OK);
    tn_lm_state *st = tn_lm_state_new(&other, 2);
    p = crafted(&m, st, "program", "x");
    refused(p, "state.h", true);
    CHECK(tn_lm_load(p, &a, NULL, NULL) == TN_OK); /* skipped without st_out */
    tn_lm_free(&a);
    tn_lm_state_free(st);
    tn_lm_free(&other);

    /* not a checkpoint at all */
    FILE *f = fopen(tmp("junk.st"), "wb");
    fputs("not a safetensors file", f);
    fclose(f);
    CHECK(tn_lm_load(tmp("junk.st"), &a, NULL, NULL) != TN_OK && a.ps.n == 0);
    CHECK(tn_lm_load(tmp("missing.st"), &a, NULL, NULL) == TN_ERR_IO);
    tn_lm_free(&m);
}

/* ---- 7. PyTorch parity ---- */

static void test_torch(const char *dir, const char *name)
{
    char path[512], epath[512], file[128];
    snprintf(file, sizeof file, "lm_%s.safetensors", name);
    fixture_path(path, sizeof path, dir, file);
    snprintf(file, sizeof file, "lm_%s_expected.bin", name);
    fixture_path(epath, sizeof epath, dir, file);
    fixture fx;
    if (fixture_load(&fx, epath) != 0) {
        fprintf(stderr, "%s\n", fx.error);
        CHECK(0);
        return;
    }
    const fixture_tensor *fid = fixture_get(&fx, "ids"), *flg = fixture_get(&fx, "logits");
    tn_lm m;
    CHECK(fid && flg && tn_lm_load(path, &m, NULL, NULL) == TN_OK);
    if (!fid || !flg || !m.ps.n) {
        fprintf(stderr, "%s: %s\n", path, tn_last_error());
        fixture_free(&fx);
        return;
    }
    int64_t B = fid->shape[0], T = fid->shape[1], V = m.o.vocab;
    CHECK(flg->shape[2] == V);
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)(B * T));
    for (int64_t i = 0; i < B * T; i++)
        ids[i] = (int32_t)fid->data[i];
    /* streaming, one token per stream */
    tn_lm_state *st = tn_lm_state_new(&m, B);
    double worst = step_worst(&m, st, ids, B, T, flg->data);
    CHECK(worst <= 1e-5);
    /* the windowed forward */
    double *fw = malloc(sizeof(double) * (size_t)(B * T * V));
    forward_logits(&m, ids, B, T, fw, NULL);
    double worst_fw = 0;
    for (int64_t i = 0; i < B * T * V; i++)
        worst_fw = fmax(worst_fw, fabs(fw[i] - flg->data[i]) / fmax(1.0, fabs(flg->data[i])));
    CHECK(worst_fw <= 1e-5);
    printf("torch %s: %s L=%d V=%" PRId64 "%s: step %.2g, forward %.2g (tol 1e-5)\n", name,
           tn_cell_name(m.o.cell), m.o.layers, V, m.o.tie ? " tied" : "", worst, worst_fw);
    /* a model-only file of it for PyTorch (gen_lm_fixtures.py --check) */
    const char *out = getenv("TN_LM_TORCH_OUT");
    if (out && strcmp(name, "char_lstm") == 0)
        CHECK(tn_lm_save(out, &m, NULL, NULL, 0, NULL) == TN_OK);
    free(fw), free(ids);
    tn_lm_state_free(st);
    tn_lm_free(&m);
    fixture_free(&fx);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_lm_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_init();
    test_step();
    test_threads();
    test_window();
    test_eval();
    tn_lm m; /* checkpoints need jansson (not with -DTN_CHECKPOINTS=OFF) */
    new_model(&m, char_opts(TN_CELL_GRU), 8);
    bool io = tn_lm_save(tmp("model.st"), &m, NULL, NULL, 0, NULL) == TN_OK ||
              !strstr(tn_last_error(), "built without jansson");
    tn_lm_free(&m);
    if (io) {
        test_roundtrip();
        test_crafted();
    } else {
        printf("%s: checkpoint tests skipped\n", tn_last_error());
    }
    const char *dir = io ? fixture_dir() : NULL;
    if (dir) {
        test_torch(dir, "char_lstm");
        test_torch(dir, "word_gru_tied");
        test_torch(dir, "rnn_tanh");
    } else {
        printf("TN_FIXTURES not set, or no checkpoints: PyTorch parity skipped\n");
    }
    const char *names[] = {"full.st",    "model.st", "tied.st", "src.st",
                           "crafted.st", "junk.st",  "plain.st"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        unlink(tmp(names[i]));
    rmdir(tmpdir);
    printf("%d checks, %d failures\n", check_count, check_failures);
    return check_failures ? 1 : 0;
}
