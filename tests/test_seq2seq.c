/* tests/test_seq2seq.c - the encoder-decoder (tensor/nn.h): float64
 * gradient checks of the teacher-forced loss, beam width 1 against greedy
 * decoding (bitwise), beam search against exhaustive search on a tiny
 * vocabulary, a small reversal task that it must learn, zero heap
 * allocations in steady-state training steps, argument errors, and a
 * model with a non-finite output bias refused by every decoder.
 *
 * Tolerances. Gradient check: max relative error 1e-6 (smooth ops only,
 * central differences ~1e-9). Beam vs exhaustive: the same sequence, and
 * its score equal to the teacher-forced log-probability within 1e-9 (two
 * float64 routes through log-softmax and cross-entropy). Learning: the
 * loss must fall below a fifth of its start and greedy decoding must
 * reverse at least 90% of held-out sequences exactly (measured: see the
 * output; an untrained model gets ~0%). */
#include "check.h"

#include "tensor/tensor.h"

enum { PAD = 0, SOS = 1, EOS = 2 };

static tn_seq2seq_opts opts(tn_cell cell, int attn, bool bi, int64_t V, int64_t E, int64_t H)
{
    return (tn_seq2seq_opts){.cell = cell,
                             .src_vocab = V,
                             .tgt_vocab = V,
                             .embed = E,
                             .hidden = H,
                             .layers = 1,
                             .bidirectional = bi,
                             .attention = attn,
                             .dropout = 0,
                             .src_pad = PAD,
                             .tgt_pad = PAD,
                             .sos = SOS,
                             .eos = EOS};
}

typedef struct gcx {
    tn_seq2seq *m;
    tn_tensor *src, *tgt;
    int32_t len[4];
    tn_rng rng;
} gcx;

static tn_tensor *f_loss(tn_tape *tp, tn_tensor *const *in, void *p)
{
    (void)in;
    gcx *g = p;
    tn_tensor *loss;
    tn_rng r = g->rng; /* teacher forcing 1: the RNG is not drawn */
    return tn_seq2seq_loss(tp, g->m, g->src, g->len, g->tgt, 1.0, &r, &loss) ? NULL : loss;
}

static tn_tensor *ids(int nd, const int64_t *shape, const int32_t *v)
{
    return tn_tensor_from(TN_I32, nd, shape, v);
}

static void gradcheck(tn_cell cell, int attn, bool bi, int layers)
{
    tn_params ps;
    tn_params_init(&ps);
    tn_rng r;
    tn_rng_seed(&r, 5 + (uint64_t)attn);
    tn_seq2seq m;
    tn_seq2seq_opts o = opts(cell, attn, bi, 7, 3, 4);
    o.layers = layers;
    CHECK(tn_seq2seq_init(&m, &ps, "s2s", &o, TN_F64, &r) == TN_OK);
    /* B 2, S 5 (second source padded after 3), T 4 (second target padded) */
    int32_t sv[10] = {3, 4, 5, 6, 3, 6, 5, 4, PAD, PAD}, tv[8] = {4, 5, 6, EOS, 3, EOS, PAD, PAD};
    gcx g = {.m = &m,
             .src = ids(2, (int64_t[]){2, 5}, sv),
             .tgt = ids(2, (int64_t[]){2, 4}, tv),
             .len = {5, 3}};
    tn_rng_seed(&g.rng, 1);
    tn_tensor *in[64];
    int n = 0;
    for (int i = 0; i < ps.n && n < 64; i++)
        in[n++] = ps.items[i].t;
    tn_gradcheck_result res;
    CHECK(tn_gradcheck(f_loss, &g, n, in, 1e-6, &res) == TN_OK);
    printf("gradcheck %s attention %d%s, %d layer(s): %lld elements of %d parameters, max rel "
           "err %.3g\n",
           tn_cell_name(cell), attn, bi ? " bidirectional" : "", layers, (long long)res.n_checked,
           n, res.max_rel_err);
    CHECK(res.max_rel_err <= 1e-6);
    tn_tensor_free(g.src);
    tn_tensor_free(g.tgt);
    tn_params_free(&ps);
}

/* Greedy and beam 1 on a random model: the same tokens and scores,
 * bitwise. */
static void beam1_is_greedy(tn_cell cell, int attn)
{
    tn_params ps;
    tn_params_init(&ps);
    tn_rng r;
    tn_rng_seed(&r, 17);
    tn_seq2seq m;
    tn_seq2seq_opts o = opts(cell, attn, true, 11, 8, 16);
    CHECK(tn_seq2seq_init(&m, &ps, NULL, &o, TN_F32, &r) == TN_OK);
    int32_t sv[3 * 6] = {3, 4, 5, 6, 7, 8, 9, 10, 3, PAD, PAD, PAD, 5, 5, 5, 5, 9, PAD};
    int32_t len[3] = {6, 3, 5};
    tn_tensor *src = ids(2, (int64_t[]){3, 6}, sv);
    enum { L = 12 };
    int32_t g_out[3 * L], b_out[3 * L], g_len[3], b_len[3];
    double g_sc[3], b_sc[3];
    tn_tape *tp = tn_tape_new();
    CHECK(tn_seq2seq_greedy(tp, &m, src, len, L, g_out, g_len, g_sc) == TN_OK);
    tn_tape_reset(tp);
    CHECK(tn_seq2seq_beam(tp, &m, src, len, 1, 0.7, L, b_out, b_len, b_sc) == TN_OK);
    CHECK(memcmp(g_out, b_out, sizeof g_out) == 0 && memcmp(g_len, b_len, sizeof g_len) == 0 &&
          memcmp(g_sc, b_sc, sizeof g_sc) == 0);
    printf("beam 1 vs greedy (%s, attention %d): lengths %d %d %d, scores %.6f %.6f %.6f: %s\n",
           tn_cell_name(cell), attn, g_len[0], g_len[1], g_len[2], g_sc[0], g_sc[1], g_sc[2],
           memcmp(g_sc, b_sc, sizeof g_sc) == 0 ? "identical" : "DIFFERENT");
    /* sampled decoding at temperature 0 is greedy: same tokens and lengths
     * bitwise, scores to 1e-9 (summed through another code path) */
    tn_sample_opts so = {.temperature = 0, .top_k = 0, .top_p = 1};
    int32_t s_out[3 * L], s_len[3], s2_out[3 * L], s2_len[3];
    double s_sc[3], s2_sc[3];
    tn_rng sr;
    tn_rng_seed(&sr, 3);
    tn_tape_reset(tp);
    CHECK(tn_seq2seq_sample(tp, &m, src, len, L, &so, &sr, s_out, s_len, s_sc) == TN_OK);
    CHECK(memcmp(g_out, s_out, sizeof g_out) == 0 && memcmp(g_len, s_len, sizeof g_len) == 0);
    for (int b = 0; b < 3; b++)
        CHECK_NEAR(s_sc[b], g_sc[b], 1e-9);
    /* temperature 1: the same seed draws the same sentences; tokens are
     * never pad or sos, and each score is a log-probability (<= 0) */
    so.temperature = 1;
    tn_rng_seed(&sr, 3);
    tn_tape_reset(tp);
    CHECK(tn_seq2seq_sample(tp, &m, src, len, L, &so, &sr, s_out, s_len, s_sc) == TN_OK);
    tn_rng_seed(&sr, 3);
    tn_tape_reset(tp);
    CHECK(tn_seq2seq_sample(tp, &m, src, len, L, &so, &sr, s2_out, s2_len, s2_sc) == TN_OK);
    CHECK(memcmp(s_out, s2_out, sizeof s_out) == 0 && memcmp(s_sc, s2_sc, sizeof s_sc) == 0);
    for (int b = 0; b < 3; b++) {
        CHECK(s_sc[b] <= 0);
        for (int j = 0; j < s_len[b]; j++)
            CHECK(s_out[b * L + j] != PAD && s_out[b * L + j] != SOS);
    }
    so.top_p = 0;
    CHECK(tn_seq2seq_sample(tp, &m, src, len, L, &so, &sr, s_out, s_len, s_sc) == TN_ERR_ARG);
    CHECK_MSG(tn_last_error(), "top_p");
    /* grad and training modes are restored */
    CHECK(tn_tape_grad_enabled(tp) && tn_tape_training(tp));
    tn_tape_free(tp);
    tn_tensor_free(src);
    tn_params_free(&ps);
}

/* log p(seq | src) by the teacher-forced loss: seq of n tokens (ending in
 * EOS or cut), the loss is their mean cross-entropy. */
static double seq_logp(tn_seq2seq *m, tn_tensor *src, int32_t len, const int32_t *seq, int n)
{
    tn_tape *tp = tn_tape_new();
    tn_tensor *tgt = ids(2, (int64_t[]){1, n}, seq), *loss = NULL;
    tn_rng r;
    tn_rng_seed(&r, 1);
    tn_tape_set_training(tp, false);
    double lp = NAN;
    if (tn_seq2seq_loss(tp, m, src, &len, tgt, 1.0, &r, &loss) == TN_OK)
        lp = -tn_tensor_get(loss, 0) * n;
    tn_tape_free(tp);
    tn_tensor_free(tgt);
    return lp;
}

/* Tokens a = 3, b = 4; max_len 3: every hypothesis is [eos], [x eos],
 * [x y eos] or [x y z] (cut). A beam of 16 keeps them all, so it must
 * find the best raw score (len_alpha 0) that enumeration finds. */
static void beam_vs_exhaustive(void)
{
    tn_params ps;
    tn_params_init(&ps);
    tn_rng r;
    tn_rng_seed(&r, 23);
    tn_seq2seq m;
    tn_seq2seq_opts o = opts(TN_CELL_GRU, TN_ATTN_LUONG_GENERAL, false, 5, 4, 6);
    CHECK(tn_seq2seq_init(&m, &ps, NULL, &o, TN_F64, &r) == TN_OK);
    for (int trial = 0; trial < 3; trial++) {
        /* scale the output layer so that the distributions are peaked and
         * different per trial */
        tn_tensor_uniform(m.out.weight, &r, -1.5, 1.5);
        tn_tensor_set(m.out.bias, EOS, -1.5 * trial); /* longer answers win in later trials */
        int32_t sv[3] = {3, 4, 3};
        tn_tensor *src = ids(2, (int64_t[]){1, 3}, sv);
        int32_t best_seq[3] = {0}, bn = 0;
        double best = -INFINITY;
        /* k free tokens from {a, b} (bits of code), then eos; or 3 cut */
        for (int k = 0; k <= 3; k++)
            for (int code = 0; code < 1 << k; code++) {
                int32_t seq[4];
                for (int j = 0; j < k; j++)
                    seq[j] = 3 + (code >> j & 1);
                int n = k;
                if (k < 3)
                    seq[n++] = EOS;
                double lp = seq_logp(&m, src, 3, seq, n);
                if (lp > best) {
                    best = lp;
                    bn = k;
                    memcpy(best_seq, seq, sizeof best_seq);
                }
            }
        int32_t out[3], olen;
        double sc;
        tn_tape *tp = tn_tape_new();
        CHECK(tn_seq2seq_beam(tp, &m, src, (int32_t[]){3}, 16, 0.0, 3, out, &olen, &sc) == TN_OK);
        bool same = olen == bn && memcmp(out, best_seq, sizeof(int32_t) * (size_t)bn) == 0;
        printf("beam 16 vs exhaustive, trial %d: best length %d, score %.9f vs %.9f: %s\n", trial,
               bn, sc, best, same ? "same" : "DIFFERENT");
        CHECK(same && fabs(sc - best) <= 1e-9);
        tn_tape_free(tp);
        tn_tensor_free(src);
    }
    tn_params_free(&ps);
}

static int64_t n_allocs;
static void *count_alloc(size_t n)
{
    n_allocs++;
    return malloc(n);
}

/* A batch of src [B, S] sequences of 3..6 symbols (ids 3..8), lengths,
 * and tgt [B, T] their reversals, eos, padding. */
static void reversal_batch(tn_tensor *src, tn_tensor *tgt, int32_t *len, tn_rng *r)
{
    int64_t B = src->shape[0], S = src->shape[1], T = tgt->shape[1];
    int32_t *sv = src->data, *tv = tgt->data;
    for (int64_t b = 0; b < B; b++) {
        len[b] = 3 + (int32_t)(tn_rng_uniform(r) * 4);
        for (int64_t j = 0; j < S; j++)
            sv[b * S + j] = j < len[b] ? 3 + (int32_t)(tn_rng_uniform(r) * 6) : PAD;
        for (int64_t j = 0; j < T; j++)
            tv[b * T + j] = j < len[b] ? sv[b * S + len[b] - 1 - j] : j == len[b] ? EOS : PAD;
    }
}

/* Reverse sequences of 3..6 symbols: train, then decode new ones. */
static void learns_reversal(void)
{
    enum { B = 32, S = 6, T = 7, STEPS = 200 };
    tn_params ps;
    tn_params_init(&ps);
    tn_rng r;
    tn_rng_seed(&r, 2024);
    tn_seq2seq m;
    tn_seq2seq_opts o = opts(TN_CELL_GRU, TN_ATTN_BAHDANAU, true, 9, 16, 32);
    CHECK(tn_seq2seq_init(&m, &ps, "s2s", &o, TN_F32, &r) == TN_OK);
    tn_adam_opts ao = tn_adam_defaults();
    ao.lr = 1e-2;
    tn_optim *opt = tn_optim_adam(&ps, &ao);
    tn_tensor *src = tn_tensor_new(TN_I32, 2, (int64_t[]){B, S});
    tn_tensor *tgt = tn_tensor_new(TN_I32, 2, (int64_t[]){B, T});
    int32_t len[B];
    tn_tape *tp = tn_tape_new();
    double first = 0, last = 0;
    for (int step = 0; step < STEPS; step++) {
        if (step == STEPS - 5)
            n_allocs = 0; /* the last steps: steady state */
        reversal_batch(src, tgt, len, &r);
        tn_tape_reset(tp);
        tn_optim_zero_grad(opt);
        tn_tensor *loss;
        if (tn_seq2seq_loss(tp, &m, src, len, tgt, 0.9, &r, &loss) || tn_backward(tp, loss)) {
            fprintf(stderr, "learns_reversal: %s\n", tn_last_error());
            CHECK(!"train step");
            break;
        }
        tn_clip_grad_norm(&ps, 1.0, NULL);
        tn_optim_step(opt);
        double l = tn_tensor_get(loss, 0);
        if (step == 0)
            first = l;
        last = l;
    }
    int64_t steady = n_allocs;
    reversal_batch(src, tgt, len, &r); /* new sequences */
    int32_t out[B * 8], olen[B];
    double sc[B];
    CHECK(tn_seq2seq_beam(tp, &m, src, len, 3, 1.0, 8, out, olen, sc) == TN_OK);
    int right = 0;
    for (int b = 0; b < B; b++) {
        bool ok = olen[b] == len[b];
        for (int j = 0; ok && j < len[b]; j++)
            ok = out[b * 8 + j] == ((int32_t *)tgt->data)[b * T + j];
        right += ok;
    }
    printf("reversal: loss %.4f -> %.4f after %d steps; beam 3 reverses %d of %d exactly; "
           "allocations in the last 5 steps: %lld\n",
           first, last, STEPS, right, B, (long long)steady);
    CHECK(last < first / 5);
    CHECK(right >= B * 9 / 10);
    CHECK(steady == 0);
    tn_tape_free(tp);
    tn_optim_free(opt);
    tn_tensor_free(src);
    tn_tensor_free(tgt);
    tn_params_free(&ps);
}

static void errors(void)
{
    tn_params ps;
    tn_params_init(&ps);
    tn_rng r;
    tn_rng_seed(&r, 1);
    tn_seq2seq m;
    tn_seq2seq_opts o = opts(TN_CELL_GRU, -1, false, 6, 4, 4);
    o.eos = PAD;
    CHECK(tn_seq2seq_init(&m, &ps, NULL, &o, TN_F32, &r) == TN_ERR_ARG);
    CHECK_MSG(tn_last_error(), "tgt_pad, sos and eos distinct");
    o = opts(TN_CELL_GRU, -1, false, 6, 4, 4);
    CHECK(tn_seq2seq_init(&m, &ps, NULL, &o, TN_F32, &r) == TN_OK);
    tn_tensor *src = ids(2, (int64_t[]){1, 3}, (int32_t[]){3, 4, 5});
    tn_tensor *tgt = ids(2, (int64_t[]){1, 2}, (int32_t[]){4, 9});
    tn_tape *tp = tn_tape_new();
    tn_tensor *loss;
    CHECK(tn_seq2seq_loss(tp, &m, src, (int32_t[]){4}, tgt, 1.0, &r, &loss) == TN_ERR_INDEX);
    CHECK_MSG(tn_last_error(), "src_len[0] = 4 outside 1..S = 3");
    tn_tape_free(tp);
    tp = tn_tape_new();
    CHECK(tn_seq2seq_loss(tp, &m, src, (int32_t[]){3}, tgt, 1.0, &r, &loss) == TN_ERR_INDEX);
    CHECK_MSG(tn_last_error(), "tgt[1] = 9 outside 0..5");
    tn_tape_free(tp);
    tp = tn_tape_new();
    int32_t out[4], olen;
    double sc;
    CHECK(tn_seq2seq_beam(tp, &m, src, (int32_t[]){3}, 0, 1.0, 4, out, &olen, &sc) == TN_ERR_ARG);
    CHECK_MSG(tn_last_error(), "need beam >= 1");
    double w[12];
    CHECK(tn_seq2seq_attention_map(tp, &m, src, 3, 4, out, &olen, w) == TN_ERR_ARG);
    CHECK_MSG(tn_last_error(), "no attention");
    tn_tape_free(tp);
    tn_tensor_free(src);
    tn_tensor_free(tgt);
    tn_params_free(&ps);
}

/* A model whose output bias holds a NaN (or +inf) gives non-finite
 * log-probabilities: beam search, greedy decoding, sampled decoding and the
 * attention map must return TN_ERR_NUMERIC naming what was not finite
 * (before issue 19 the beam kept no hypothesis and returned TN_OK with an
 * empty output), and leave the tape's modes as they were. The third case
 * puts the NaN in pad's logit, which is never chosen but makes every
 * log-probability NaN (sampling then drew a token with a NaN score). */
/* A float32 model of 7 words, embed 4, hidden 5, unidirectional, into ps
 * (initialised here) from seed. */
static void small_model(tn_params *ps, tn_seq2seq *m, tn_cell cell, int attn, uint64_t seed)
{
    tn_params_init(ps);
    tn_rng r;
    tn_rng_seed(&r, seed);
    tn_seq2seq_opts o = opts(cell, attn, false, 7, 4, 5);
    CHECK(tn_seq2seq_init(m, ps, NULL, &o, TN_F32, &r) == TN_OK);
}

static void nonfinite_model(void)
{
    tn_params ps;
    tn_seq2seq m;
    small_model(&ps, &m, TN_CELL_GRU, TN_ATTN_BAHDANAU, 3);
    tn_tensor *src = ids(2, (int64_t[]){2, 3}, (int32_t[]){3, 4, 5, 6, 3, PAD});
    tn_tensor *src1 = ids(2, (int64_t[]){1, 3}, (int32_t[]){3, 4, 5});
    int32_t len[2] = {3, 2}, out[2 * 6], olen[2];
    double sc[2], w[6 * 3];
    const double bad[3] = {NAN, INFINITY, NAN};
    const int64_t at[3] = {4, 4, PAD};
    tn_sample_opts so = tn_sample_defaults();
    so.temperature = 0;
    tn_rng sr;
    tn_rng_seed(&sr, 5);
    for (int i = 0; i < 3; i++) {
        tn_tensor_set(m.out.bias, 4, 0);
        tn_tensor_set(m.out.bias, at[i], bad[i]);
        tn_tape *tp = tn_tape_new();
        CHECK(tn_seq2seq_beam(tp, &m, src, len, 3, 1.0, 6, out, olen, sc) == TN_ERR_NUMERIC);
        CHECK_MSG(tn_last_error(), "tn_seq2seq_beam: log-probability");
        CHECK_MSG(tn_last_error(), "is nan"); /* +inf logit: log-softmax gives nan */
        CHECK(tn_tape_grad_enabled(tp) && tn_tape_training(tp));
        tn_tape_reset(tp);
        CHECK(tn_seq2seq_greedy(tp, &m, src, len, 6, out, olen, sc) == TN_ERR_NUMERIC);
        CHECK_MSG(tn_last_error(), "tn_seq2seq_greedy: log-probability");
        tn_tape_reset(tp);
        CHECK(tn_seq2seq_sample(tp, &m, src, len, 6, &so, &sr, out, olen, sc) == TN_ERR_NUMERIC);
        /* tn_sample's message names the logit; else the log-probability */
        CHECK_MSG(tn_last_error(), i == 1 ? "is inf" : "is nan");
        tn_tape_reset(tp);
        CHECK(tn_seq2seq_attention_map(tp, &m, src1, 3, 6, out, olen, w) == TN_ERR_NUMERIC);
        CHECK_MSG(tn_last_error(), "tn_seq2seq_attention_map: log-probability");
        tn_tape_free(tp);
    }
    tn_tensor_free(src);
    tn_tensor_free(src1);
    tn_params_free(&ps);
}

/* The decoders' host scratch comes through the allocator hooks, its sizes
 * overflow-checked (issue 19: calloc, and (2n+B)*max_len unchecked). Once
 * the tape's arena has grown in a first call, a second call allocates only
 * its scratch: with a hook that refuses, each decoder returns
 * TN_ERR_MEMORY (before, they succeeded). A max_len whose token store
 * overflows size_t (5 rows x 3689348814741910324 ids: 2^64 + 4, wrapping to
 * 4) must be refused, not wrap to a 16-byte store written far past. */
static bool refuse_alloc;
static void *refusing_alloc(size_t n) { return refuse_alloc ? NULL : malloc(n); }

static void scratch_hooked(void)
{
    tn_params ps;
    tn_seq2seq m;
    small_model(&ps, &m, TN_CELL_LSTM, TN_ATTN_LUONG_DOT, 4);
    tn_rng r;
    tn_rng_seed(&r, 4);
    tn_tensor *src = ids(2, (int64_t[]){1, 3}, (int32_t[]){3, 4, 5});
    int32_t len = 3, out[6], olen;
    double sc, w[6 * 3];
    tn_sample_opts so = tn_sample_defaults();
    tn_tape *tp = tn_tape_new();
    tn_set_allocator(refusing_alloc, NULL);
    for (int pass = 0; pass < 2; pass++) { /* pass 0 grows the arena */
        refuse_alloc = pass == 1;
        tn_tape_reset(tp);
        CHECK(tn_seq2seq_beam(tp, &m, src, &len, 2, 1.0, 6, out, &olen, &sc) ==
              (pass ? TN_ERR_MEMORY : TN_OK));
        tn_tape_reset(tp);
        CHECK(tn_seq2seq_greedy(tp, &m, src, &len, 6, out, &olen, &sc) ==
              (pass ? TN_ERR_MEMORY : TN_OK));
        tn_tape_reset(tp);
        CHECK(tn_seq2seq_attention_map(tp, &m, src, 3, 6, out, &olen, w) ==
              (pass ? TN_ERR_MEMORY : TN_OK));
        tn_tape_reset(tp);
        CHECK(tn_seq2seq_sample(tp, &m, src, &len, 6, &so, &r, out, &olen, &sc) ==
              (pass ? TN_ERR_MEMORY : TN_OK));
    }
    refuse_alloc = false;
    tn_tape_reset(tp);
    CHECK(tn_seq2seq_beam(tp, &m, src, &len, 2, 1.0, INT64_C(3689348814741910324), out, &olen,
                          &sc) == TN_ERR_MEMORY);
    CHECK_MSG(tn_last_error(), "tn_seq2seq_beam: ");
    tn_set_allocator(NULL, NULL);
    tn_tape_free(tp);
    tn_tensor_free(src);
    tn_params_free(&ps);
}

/* tn_seq2seq_save / tn_seq2seq_open: the options come back equal (with a
 * prefix, two layers, LSTM, general attention, dropout), the parameters
 * load bit for bit into a model built from them; a file without the keys
 * and crafted keys are refused naming the file and the key. */
static void checkpoint_round_trip(void)
{
    tn_seq2seq_opts o = opts(TN_CELL_LSTM, TN_ATTN_LUONG_GENERAL, true, 9, 5, 6);
    o.tgt_vocab = 11, o.layers = 2, o.dropout = 0.25;
    tn_params ps, ps2;
    tn_params_init(&ps), tn_params_init(&ps2);
    tn_rng r;
    tn_rng_seed(&r, 3);
    tn_seq2seq m, m2;
    CHECK(tn_seq2seq_init(&m, &ps, "mt", &o, TN_F64, &r) == TN_OK);
    tn_meta extra;
    tn_meta_init(&extra);
    tn_meta_set(&extra, "note", "kept");
    const char *path = "test_seq2seq.safetensors";
    CHECK(tn_seq2seq_save(path, &m, &ps, NULL, 0, &extra) == TN_OK);
    tn_seq2seq_opts back;
    char prefix[TN_NAME_MAX];
    tn_meta meta;
    tn_meta_init(&meta);
    CHECK(tn_seq2seq_open(path, &back, prefix, &meta) == TN_OK);
    CHECK(back.cell == o.cell && back.src_vocab == o.src_vocab && back.tgt_vocab == o.tgt_vocab &&
          back.embed == o.embed && back.hidden == o.hidden && back.layers == o.layers &&
          back.bidirectional == o.bidirectional && back.attention == o.attention &&
          back.dropout == o.dropout && back.src_pad == o.src_pad && back.tgt_pad == o.tgt_pad &&
          back.sos == o.sos && back.eos == o.eos);
    CHECK(strcmp(prefix, "mt") == 0);
    CHECK(tn_meta_get(&meta, "note") && strcmp(tn_meta_get(&meta, "note"), "kept") == 0);
    tn_rng_seed(&r, 99); /* other values, replaced by the file's */
    CHECK(tn_seq2seq_init(&m2, &ps2, prefix, &back, TN_F64, &r) == TN_OK);
    tn_params *sets[1] = {&ps2};
    CHECK(tn_load(path, sets, 1, NULL) == TN_OK);
    bool same = ps.n == ps2.n;
    for (int i = 0; same && i < ps.n; i++)
        same = memcmp(ps.items[i].t->data, ps2.items[i].t->data,
                      (size_t)tn_numel(ps.items[i].t) * sizeof(double)) == 0;
    CHECK(same);
    /* crafted: an unknown cell, a vocabulary larger than the file's tensors */
    tn_meta bad;
    tn_meta_init(&bad);
    tn_meta_set(&bad, "s2s.cell", "transformer");
    CHECK(tn_seq2seq_save(path, &m, &ps, NULL, 0, NULL) == TN_OK);
    tn_params *one[1] = {&ps};
    tn_meta_free(&meta);
    tn_meta_init(&meta);
    CHECK(tn_load(path, one, 1, &meta) == TN_OK);
    tn_meta_set(&meta, "s2s.cell", "transformer");
    CHECK(tn_save(path, one, 1, &meta) == TN_OK);
    CHECK(tn_seq2seq_open(path, &back, prefix, NULL) == TN_ERR_FORMAT &&
          strstr(tn_last_error(), path) && strstr(tn_last_error(), "s2s.cell"));
    tn_meta_set(&meta, "s2s.cell", "lstm");
    tn_meta_set(&meta, "s2s.src_vocab", "900000");
    CHECK(tn_save(path, one, 1, &meta) == TN_OK);
    CHECK(tn_seq2seq_open(path, &back, prefix, NULL) == TN_ERR_FORMAT &&
          strstr(tn_last_error(), "s2s.src_vocab 900000") &&
          strstr(tn_last_error(), "mt.src_embed.weight"));
    CHECK(tn_save(path, one, 1, NULL) == TN_OK); /* no s2s.* keys at all */
    CHECK(tn_seq2seq_open(path, &back, prefix, NULL) == TN_ERR_FORMAT &&
          strstr(tn_last_error(), "s2s.format: missing"));
    remove(path);
    tn_meta_free(&meta), tn_meta_free(&bad), tn_meta_free(&extra);
    tn_params_free(&ps), tn_params_free(&ps2);
}

/* tn_seq2seq_state / tn_seq2seq_step: greedy decoding by steps (argmax
 * over the logits, pad and sos excluded, stop at eos) chooses exactly what
 * tn_seq2seq_greedy chooses; a copied state steps to the same logits bit
 * for bit, and warm steps allocate nothing; a bad token is refused. */
static void streaming(tn_cell cell, int attn, int layers)
{
    enum { B = 3, S = 5, T = 7, V = 13 };
    tn_seq2seq_opts o = opts(cell, attn, attn != TN_ATTN_LUONG_DOT, V, 6, 8);
    o.layers = layers;
    tn_params ps;
    tn_params_init(&ps);
    tn_rng r;
    tn_rng_seed(&r, 21 + (uint64_t)layers);
    tn_seq2seq m;
    CHECK(tn_seq2seq_init(&m, &ps, NULL, &o, TN_F32, &r) == TN_OK);
    int32_t src[B * S], len[B] = {5, 3, 1};
    for (int i = 0; i < B * S; i++)
        src[i] = 3 + (int32_t)(tn_rng_next(&r) % (V - 3));
    tn_tape *tp = tn_tape_new();
    tn_tensor *x = tn_tensor_from(TN_I32, 2, (int64_t[]){B, S}, src);
    int32_t want[B * T], want_len[B];
    double score[B];
    CHECK(tn_seq2seq_greedy(tp, &m, x, len, T, want, want_len, score) == TN_OK);
    tn_seq2seq_state *st = tn_seq2seq_state_new(&m, src, len, B, S);
    tn_seq2seq_state *br = tn_seq2seq_state_new(&m, src, len, B, S);
    CHECK(st && br);
    float logits[B * V], l2[B * V];
    int32_t tok[B] = {SOS, SOS, SOS}, got[B * T], got_len[B] = {0, 0, 0};
    bool done[B] = {false, false, false}, same = true;
    for (int t = 0; st && br && t < T; t++) {
        if (t == 2)
            n_allocs = 0; /* warm: the steps allocate nothing from here (count_alloc) */
        CHECK(tn_seq2seq_state_copy(br, st) == TN_OK);
        CHECK(tn_seq2seq_step(&m, st, tok, logits) == TN_OK);
        CHECK(tn_seq2seq_step(&m, br, tok, l2) == TN_OK);
        same = same && memcmp(logits, l2, sizeof logits) == 0;
        for (int b = 0; b < B; b++) {
            int best = -1;
            for (int v = 0; v < V; v++)
                if (v != PAD && v != SOS && (best < 0 || logits[b * V + v] > logits[b * V + best]))
                    best = v;
            if (!done[b] && best == EOS)
                done[b] = true;
            else if (!done[b])
                got[b * T + got_len[b]++] = best;
            tok[b] = best;
        }
    }
    CHECK(same);
    CHECK(n_allocs == 0);
    for (int b = 0; b < B; b++) {
        CHECK(got_len[b] == want_len[b]);
        for (int t = 0; t < got_len[b] && t < want_len[b]; t++)
            CHECK(got[b * T + t] == want[b * T + t]);
    }
    int32_t bad[B] = {SOS, V, SOS};
    CHECK(st && tn_seq2seq_step(&m, st, bad, logits) == TN_ERR_INDEX);
    CHECK(strstr(tn_last_error(), "tn_seq2seq_step"));
    tn_seq2seq_state *other = tn_seq2seq_state_new(&m, src, len, 2, S);
    CHECK(other && tn_seq2seq_state_copy(other, st) == TN_ERR_SHAPE);
    CHECK(tn_seq2seq_state_new(&m, src, (int32_t[]){5, 6, 1}, B, S) == NULL);
    tn_seq2seq_state_free(other);
    tn_seq2seq_state_free(st);
    tn_seq2seq_state_free(br);
    tn_tensor_free(x);
    tn_tape_free(tp);
    tn_params_free(&ps);
}

int main(void)
{
    errors();
    checkpoint_round_trip();
    tn_set_allocator(count_alloc, NULL); /* streaming counts its steps' allocations */
    streaming(TN_CELL_GRU, TN_ATTN_BAHDANAU, 1);
    streaming(TN_CELL_LSTM, TN_ATTN_LUONG_GENERAL, 2);
    streaming(TN_CELL_GRU, -1, 2);
    tn_set_allocator(NULL, NULL);
    nonfinite_model();
    scratch_hooked();
    gradcheck(TN_CELL_GRU, TN_ATTN_BAHDANAU, true, 1);
    gradcheck(TN_CELL_LSTM, TN_ATTN_LUONG_GENERAL, false, 2);
    gradcheck(TN_CELL_LSTM, TN_ATTN_LUONG_DOT, false, 1);
    gradcheck(TN_CELL_GRU, -1, false, 1);
    beam1_is_greedy(TN_CELL_GRU, TN_ATTN_BAHDANAU);
    beam1_is_greedy(TN_CELL_LSTM, -1);
    beam_vs_exhaustive();
    tn_set_allocator(count_alloc, NULL);
    learns_reversal();
    tn_set_allocator(NULL, NULL);
    return check_report("test_seq2seq");
}
