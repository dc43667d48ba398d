/* examples/apps/word_lm.c - a word-level language model (seed 001 section 8),
 * with the data handling of PyTorch's word_language_model example.
 *
 *   word_lm train [--data FILE] [--cell lstm|gru|rnn] [--hidden H] [--embed E]
 *                 [--layers L] [--dropout X] [--tie-weights] [--batch B] [--seq T]
 *                 [--steps N] [--lr X] [--weight-decay X] [--clip X] [--min-count N]
 *                 [--seed S] [--threads N] [--checkpoint PATH] [--eval-every N]
 *                 [--save-every N] [--log CSV] [--vectors FILE] [--freeze-embedding]
 *                 [--resume]
 *   word_lm eval --checkpoint PATH --data FILE
 *   word_lm sample --checkpoint PATH [--prime TEXT] [--words N] [--temperature X]
 *                  [--top-k K] [--top-p P] [--seed S]
 *   word_lm vectors --checkpoint PATH --out FILE
 *   word_lm export --checkpoint PATH --out FILE
 *
 * Tokens: the words of each line (separated by spaces, tabs, \r, \v, \f),
 * then "<eos>" for the line's end (every line, empty ones too). The first
 * 90% of the lines train, the rest validate. Vocabulary: "<unk>" (id 0),
 * "<eos>" (id 1), then the training split's words seen at least --min-count
 * times, in order of first appearance; every other word reads as <unk>.
 * Without --data it trains on sentences of a small grammar it generates.
 *
 * Model (PyTorch's names, so a state_dict moves between the two):
 * encoder (Embedding V x E, uniform(+-0.1)) -> dropout -> rnn (L layers,
 * dropout between them) -> dropout -> decoder (Linear H -> V, weight
 * uniform(+-0.1), bias 0). --tie-weights makes decoder.weight the
 * encoder's weight (E must equal H; saved once). --vectors initialises the
 * encoder from a GloVe or word2vec text file; --freeze-embedding keeps it
 * fixed (no update, no weight decay; with --tie-weights the decoder's
 * weight is then fixed too).
 *
 * Training: truncated BPTT over B streams (the training ids cut into B
 * equal pieces, each read in consecutive windows of T with the state
 * carried between windows and reset at the end), mean cross-entropy,
 * gradient-norm clipping, Adam (AdamW with --weight-decay). Validation:
 * the mean loss in nats per word over the validation split read as one
 * stream, and its perplexity exp(loss).
 */
#include <tensor/tensor.h>

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "export.h"
#include "lm_model.h"
#include "train.h"
#include "train_dist.h"
#include "word_model.h"

enum { TRAIN = 1, EVAL = 2, SAMPLE = 4, VECTORS = 8, EXPORT = 16 };

typedef struct opts {
    const char *data, *cell, *checkpoint, *log, *loss_log, *curve, *vectors, *prime, *out;
    int64_t hidden, embed, layers, batch, seq, steps, eval_every, save_every, min_count, words,
        threads;
    double dropout, lr, weight_decay, clip;
    bool tie, freeze, resume;
    uint64_t seed;
    tn_sample_opts sample;
} opts;

static int parse_opts(int argc, char **argv, opts *o, int *command)
{
    *o = (opts){.cell = "lstm",
                .hidden = 256,
                .embed = 256,
                .layers = 2,
                .batch = 32,
                .seq = 35,
                .steps = 1000,
                .eval_every = 250,
                .min_count = 1,
                .words = 100,
                .dropout = 0.2,
                .lr = 2e-3,
                .clip = 0.25,
                .seed = 1,
                .prime = "",
                .sample = {.temperature = 1.0, .top_k = 0, .top_p = 1}};
    static const char *const commands[] = {"train", "eval", "sample", "vectors", "export", NULL};
    static const char *const command_help[] = {
        "train a model (on --data, or on a generated grammar)",
        "print `loss <nats/word> ppl <x>` of a checkpoint over a whole file",
        "print text sampled from a checkpoint",
        "write a checkpoint's word embeddings as a word2vec text file (--out)",
        "write a checkpoint's model alone to --out, as the PyTorch module's state_dict "
        "(tools/torch_models.py)",
    };
    const ex_opt table[] = {
        {"--data", EX_STRING, &o->data, "FILE",
         "text; lines of whitespace-separated words (train: first 90% train, the rest "
         "validates; eval: all of it)",
         .def = "train: a generated grammar", .commands = TRAIN | EVAL},
        {"--cell", EX_CHOICE, &o->cell, "CELL", "recurrent cell", .choices = "lstm|gru|rnn",
         .commands = TRAIN},
        {"--hidden", EX_INT, &o->hidden, "H", "hidden units per layer", .imin = 1,
         .imax = EX_WORD_MAX_DIM, .commands = TRAIN},
        {"--embed", EX_INT, &o->embed, "E", "word embedding size", .imin = 1,
         .imax = EX_WORD_MAX_DIM, .commands = TRAIN},
        {"--layers", EX_INT, &o->layers, "L", "recurrent layers", .imin = 1,
         .imax = TN_RNN_MAX_LAYERS, .commands = TRAIN},
        {"--dropout", EX_REAL, &o->dropout, "X",
         "dropout on the embeddings, between layers and before the decoder", .dmin = 0, .dmax = 1,
         .dmax_open = true, .commands = TRAIN},
        {"--tie-weights", EX_FLAG, &o->tie, NULL,
         "the decoder's weight is the embedding (needs --embed equal to --hidden)",
         .commands = TRAIN},
        {"--batch", EX_INT, &o->batch, "B", "streams per batch", .imin = 1, .imax = 65536,
         .commands = TRAIN},
        {"--seq", EX_INT, &o->seq, "T", "words per window (truncated BPTT)", .imin = 1,
         .imax = 65536, .commands = TRAIN},
        {"--steps", EX_INT, &o->steps, "N", "training steps (with --resume: the total)", .imin = 0,
         .imax = EX_STEPS_MAX, .commands = TRAIN},
        {"--lr", EX_REAL, &o->lr, "X", "Adam learning rate", .dmin = 0, .dmin_open = true,
         .dmax = 10, .commands = TRAIN},
        {"--weight-decay", EX_REAL, &o->weight_decay, "X",
         "decoupled weight decay (AdamW; 0: Adam)", .dmin = 0, .dmax = 1, .commands = TRAIN},
        {"--clip", EX_REAL, &o->clip, "X", "gradient norm limit (0: none)", .dmin = 0, .dmax = 1e9,
         .commands = TRAIN},
        {"--min-count", EX_INT, &o->min_count, "N",
         "words seen fewer times in the training split read as <unk>", .imin = 1, .imax = INT32_MAX,
         .commands = TRAIN},
        {"--vectors", EX_STRING, &o->vectors, "FILE",
         "initialise the embedding from word vectors (GloVe / word2vec text: `word v1 .. vE` "
         "a line)",
         .commands = TRAIN},
        {"--freeze-embedding", EX_FLAG, &o->freeze, NULL,
         "keep the embedding fixed (no update, no weight decay)", .commands = TRAIN},
        {"--checkpoint", EX_STRING, &o->checkpoint, "PATH",
         "safetensors checkpoint (train: written at --save-every and at the end)",
         .def = "train: none; otherwise required"},
        {"--resume", EX_FLAG, &o->resume, NULL,
         "continue the run saved in --checkpoint exactly (its model options win)",
         .commands = TRAIN},
        {"--eval-every", EX_INT, &o->eval_every, "N",
         "validate every N steps and at the end (0: only at the end)", .imin = 0,
         .imax = INT64_MAX / 2, .commands = TRAIN},
        {"--save-every", EX_INT, &o->save_every, "N", "checkpoint every N steps", .imin = 0,
         .imax = INT64_MAX / 2, .def = "--eval-every", .commands = TRAIN},
        EX_TRAIN_LOG_OPTS(&o->log, &o->loss_log, &o->curve, TRAIN),
        {"--prime", EX_STRING, &o->prime, "TEXT", "words to start from", .commands = SAMPLE},
        {"--words", EX_INT, &o->words, "N", "words to sample", .imin = 0, .imax = 100000000,
         .commands = SAMPLE},
        EX_SAMPLE_OPTS(&o->sample, SAMPLE),
        {"--out", EX_STRING, &o->out, "FILE", "where to write the vectors or the model",
         .commands = VECTORS | EXPORT},
        {"--seed", EX_UINT64, &o->seed, "S", "random seed (weights, dropout, sampling)",
         .commands = TRAIN | SAMPLE},
        {"--threads", EX_INT, &o->threads, "N", "threads for OpenMP loops and BLIS", .imin = 1,
         .imax = 1024, .def = EX_THREADS_DEFAULT},
    };
    const ex_spec spec = {
        .prog = "word_lm",
        .summary = "word-level language model: train, evaluate, sample",
        .commands = commands,
        .command_help = command_help,
        .opts = table,
        .n_opts = (int)(sizeof table / sizeof table[0]),
        .notes = "Examples:\n"
                 "  word_lm train --data data/tinyshakespeare.txt --steps 2000 \\\n"
                 "      --checkpoint wlm.safetensors --log curve.csv\n"
                 "  word_lm eval --checkpoint wlm.safetensors --data held_out.txt\n"
                 "  word_lm sample --checkpoint wlm.safetensors --prime \"KING HENRY\" "
                 "--top-p 0.9\n",
    };
    return ex_parse(&spec, argc, argv, command);
}

/* (the vocabulary, the model, --vectors and loading a checkpoint:
 * word_model.c) */

/* ---- the corpus: text -> word ids ---- */

static int64_t count_lines(const char *s, size_t n)
{
    int64_t lines = 0;
    for (size_t i = 0; i < n; i++)
        lines += s[i] == '\n';
    return lines + (n > 0 && s[n - 1] != '\n');
}

/* Call f(ctx, word, len) for each word of the lines [0, nlines) of s, and
 * f(ctx, NULL, 0) at each line's end. Returns -1 as soon as f does. */
static int each_word(const char *s, size_t n, int64_t nlines,
                     int (*f)(void *ctx, const char *w, size_t len), void *ctx)
{
    size_t i = 0;
    for (int64_t line = 0; line < nlines; line++) {
        while (i < n && s[i] != '\n') {
            while (i < n && ex_is_space(s[i]))
                i++;
            size_t b = i;
            while (i < n && s[i] != '\n' && !ex_is_space(s[i]))
                i++;
            if (i > b && f(ctx, s + b, i - b))
                return -1;
        }
        if (f(ctx, NULL, 0))
            return -1;
        i++; /* past the '\n' */
    }
    return 0;
}

static int count_word(void *ctx, const char *w, size_t len)
{
    if (!w)
        return 0;
    if (len > EX_WORD_LEN_MAX) {
        fprintf(stderr, "word_lm: a word of %zu bytes (more than %d): is this text?\n", len,
                EX_WORD_LEN_MAX);
        return -1;
    }
    ex_words *v = ctx;
    int32_t id = ex_words_add(v, w, len);
    if (id < 0) {
        fprintf(stderr, "word_lm: out of memory for the vocabulary\n");
        return -1;
    }
    v->count[id]++;
    return 0;
}

typedef struct id_list {
    const ex_words *v;
    int32_t *ids;
    int64_t n, cap;
} id_list;

static int append_id(void *ctx, const char *w, size_t len)
{
    id_list *l = ctx;
    if (l->n == l->cap) {
        int64_t cap = l->cap ? 2 * l->cap : 65536;
        int32_t *p = realloc(l->ids, sizeof *p * (size_t)cap);
        if (!p) {
            fprintf(stderr, "word_lm: out of memory for %" PRId64 " words\n", cap);
            return -1;
        }
        l->ids = p, l->cap = cap;
    }
    int32_t id = w ? ex_words_find(l->v, w, len) : EOS;
    l->ids[l->n++] = id < 0 ? UNK : id;
    return 0;
}

/* The ids of the lines [first, first + nlines) of s, by v. */
static int32_t *text_ids(const ex_words *v, const char *s, size_t n, int64_t first, int64_t nlines,
                         int64_t *count)
{
    size_t start = 0;
    for (int64_t l = 0; l < first; l++)
        start = (size_t)((const char *)memchr(s + start, '\n', n - start) - s) + 1;
    id_list list = {.v = v, .ids = malloc(sizeof(int32_t)), .cap = 1};
    if (!list.ids || each_word(s + start, n - start, nlines, append_id, &list)) {
        free(list.ids);
        return NULL;
    }
    *count = list.n;
    return list.ids;
}

/* <unk>, <eos>, then the words of the first nlines lines of s seen at least
 * min_count times, in order of first appearance. */
static int vocab_build(ex_words *v, const char *s, size_t n, int64_t nlines, int64_t min_count)
{
    ex_words all = {0};
    memset(v, 0, sizeof *v);
    int rc = each_word(s, n, nlines, count_word, &all);
    if (rc == 0 && (ex_words_add(v, "<unk>", 5) != UNK || ex_words_add(v, "<eos>", 5) != EOS))
        rc = -1;
    for (int32_t i = 0; rc == 0 && i < all.n; i++)
        if (all.count[i] >= min_count && ex_words_find(v, all.words[i], strlen(all.words[i])) < 0 &&
            ex_words_add(v, all.words[i], strlen(all.words[i])) < 0)
            rc = -1;
    ex_words_free(&all);
    return rc;
}

/* Sentences of a small grammar, for training on a fresh machine. */
static char *generated_text(size_t *n)
{
    static const char *const subj[] = {"the cat",     "the dog", "a bird", "my friend",
                                       "the old man", "she",     "he",     "the children"};
    static const char *const verb[] = {"sees", "likes", "follows", "finds", "hears", "calls"};
    static const char *const obj[] = {"the river",      "a small house", "the moon",  "her brother",
                                      "the green hill", "a song",        "the garden"};
    static const char *const tail[] = {"", " in the morning", " at night", " every day", " again"};
    tn_rng r;
    tn_rng_seed(&r, 7);
    size_t cap = 1 << 20, k = 0;
    char *s = malloc(cap);
    if (!s)
        return NULL;
    for (int line = 0; line < 4000; line++) {
        int parts = 1 + (int)(tn_rng_next(&r) % 2);
        for (int p = 0; p < parts; p++)
            k += (size_t)snprintf(s + k, cap - k, "%s%s %s %s%s", p ? " and " : "",
                                  subj[tn_rng_next(&r) % 8], verb[tn_rng_next(&r) % 6],
                                  obj[tn_rng_next(&r) % 7], tail[tn_rng_next(&r) % 5]);
        k += (size_t)snprintf(s + k, cap - k, " .\n");
    }
    *n = k;
    return s;
}

/* ---- --data ---- */

/* --data's text (valid UTF-8) into *text, *n. A NUL byte is refused: the
 * vocabulary is saved as NUL-terminated strings, so a word holding one
 * would be cut and the checkpoint would not load. Returns 0 or -1 (message
 * printed). */
static int read_data(const char *path, char **text, size_t *n)
{
    if (ex_read_text("word_lm", "--data", path, "utf-8", text, n))
        return -1;
    size_t len = strlen(*text);
    if (len != *n) {
        fprintf(stderr, "word_lm: --data %s: a NUL byte at offset %zu\n", path, len);
        free(*text);
        return -1;
    }
    return 0;
}

/* ---- checkpoints (loading: word_model.c) ---- */

/* meta: the ranks' part (ex_train_meta_ranks), completed here. */
static int save_checkpoint(const char *path, ex_lm_model *m, const ex_words *v, tn_optim *opt,
                           tn_meta *meta, int64_t step, int64_t pos, const opts *o)
{
    char *vs = ex_words_join(v), buf[64];
    tn_status s = vs ? TN_OK : TN_ERR_MEMORY;
    const tn_lm_opts *lo = &m->lm.o;
    const char *cell = lo->cell == TN_CELL_LSTM ? "lstm" : lo->cell == TN_CELL_GRU ? "gru" : "rnn";
    if (s == TN_OK)
        s = tn_meta_set(meta, "format", "word_lm 1") || tn_meta_set(meta, "cell", cell) ||
                    tn_meta_set_int(meta, "hidden", lo->hidden) ||
                    tn_meta_set_int(meta, "layers", lo->layers) ||
                    tn_meta_set_int(meta, "embed", lo->embed) ||
                    tn_meta_set(meta, "tie_weights", lo->tie ? "1" : "0") ||
                    tn_meta_set(meta, "freeze_embedding",
                                m->lm.embed.weight->requires_grad ? "0" : "1") ||
                    tn_meta_set(meta, "vocab", vs) || tn_meta_set_int(meta, "step", step) ||
                    tn_meta_set_int(meta, "data_pos", pos) ||
                    tn_meta_set_int(meta, "batch", o->batch) ||
                    tn_meta_set_int(meta, "seq", o->seq) ||
                    tn_meta_set_int(meta, "min_count", o->min_count)
                ? tn_last_status()
                : TN_OK;
    snprintf(buf, sizeof buf, "%.17g", lo->io_dropout);
    if (s == TN_OK)
        s = tn_meta_set(meta, "dropout", buf);
    int rc = -1;
    if (s != TN_OK)
        fprintf(stderr, "word_lm: %s: %s\n", path, tn_last_error());
    else
        rc = ex_lm_save(m, path, opt, meta);
    free(vs);
    return rc;
}

/* The optimizer's options: Adam, or AdamW with --weight-decay. */
static tn_adam_opts adam_opts(const opts *o)
{
    tn_adam_opts ao = o->weight_decay > 0 ? tn_adamw_defaults() : tn_adam_defaults();
    ao.lr = o->lr;
    ao.weight_decay = o->weight_decay;
    return ao;
}

/* ---- commands ---- */

/* A training run for the driver's hooks (train.h): the language model's
 * run and what its checkpoints need. */
typedef struct wl_run {
    ex_lm_run lm;
    const ex_words *v;
    tn_optim *opt;
    const opts *o;
} wl_run;

/* ex_lm_run's writer (rank 0): the checkpoint of the gathered model; ctx is
 * the run (its ex_lm_run comes first). */
static int wl_save_write(void *ctx, ex_lm_model *full, tn_meta *meta, int64_t step)
{
    wl_run *r = ctx;
    return save_checkpoint(r->o->checkpoint, full, r->v, r->opt, meta, step, r->lm.pos, r->o);
}

static int cmd_train(const opts *o)
{
    if ((o->checkpoint && ex_check_output("word_lm", "--checkpoint", o->checkpoint)) ||
        (o->log && ex_check_output("word_lm", "--log", o->log)) ||
        (o->loss_log && ex_check_output("word_lm", "--loss-log", o->loss_log)) ||
        (o->curve && ex_check_output("word_lm", "--plot", o->curve)))
        return 2;
    if (o->resume && !o->checkpoint) {
        fprintf(stderr, "word_lm: --resume needs --checkpoint\n");
        return 2;
    }
    if (o->tie && o->embed != o->hidden) {
        fprintf(stderr,
                "word_lm: --tie-weights needs --embed (%" PRId64 ") equal to --hidden (%" PRId64
                ")\n",
                o->embed, o->hidden);
        return 2;
    }
    char *text;
    size_t nbytes;
    if (o->data) {
        if (read_data(o->data, &text, &nbytes))
            return 1;
    } else if (!(text = generated_text(&nbytes))) {
        fprintf(stderr, "word_lm: out of memory\n");
        return 1;
    } else {
        fprintf(stderr, "word_lm: no --data given: training on %zu bytes of a generated grammar\n",
                nbytes);
    }
    int64_t nlines = count_lines(text, nbytes), ntrain_lines = nlines * 9 / 10;
    ex_lm_model m = {0};
    ex_words v = {0};
    tn_optim *opt = NULL;
    tn_tape *tp = tn_tape_new();
    int32_t *train = NULL, *val = NULL;
    int64_t ntrain = 0, nval = 0, step = 0, pos = 0, B = o->batch, T = o->seq;
    tn_tensor *x = NULL, *y = NULL;
    int rc = 1;
    if (o->resume) {
        tn_meta meta;
        tn_meta_init(&meta);
        tn_adam_opts ao = adam_opts(o);
        int bad = ex_word_load_checkpoint(o->checkpoint, &m, &v, &meta, &opt, &ao);
        int64_t b = 0, t = 0;
        if (!bad &&
            (tn_meta_get_int(&meta, "step", &step) || tn_meta_get_int(&meta, "data_pos", &pos) ||
             tn_meta_get_int(&meta, "batch", &b) || tn_meta_get_int(&meta, "seq", &t))) {
            fprintf(stderr, "word_lm: %s: %s\n", o->checkpoint, tn_last_error());
            bad = 1;
        }
        if (!bad && (b != B || t != T)) {
            fprintf(stderr,
                    "word_lm: %s was trained with --batch %" PRId64 " --seq %" PRId64
                    "; resume with the same\n",
                    o->checkpoint, b, t);
            bad = 1;
        }
        if (!bad && (ex_check_range("word_lm", o->checkpoint, "step", step, 0, EX_STEPS_MAX,
                                    "the steps --steps allows") ||
                     ex_train_resume_ranks("word_lm", o->checkpoint, &meta, tp)))
            bad = 1;
        tn_meta_free(&meta);
        if (bad)
            goto done;
        tn_optim_set_step(opt, step);
        if (ex_dist_rank() == 0)
            fprintf(stderr, "word_lm: resumed %s at step %" PRId64 "\n", o->checkpoint, step);
    } else {
        tn_rng r;
        tn_rng_seed(&r, o->seed);
        if (vocab_build(&v, text, nbytes, ntrain_lines, o->min_count) ||
            ex_word_model_init(&m, ex_cell(o->cell), v.n, o->embed, o->hidden, o->layers,
                               o->dropout, o->tie, NULL, &r))
            goto done;
        if (o->vectors) {
            int64_t found = ex_load_vectors(o->vectors, &v, m.lm.embed.weight);
            if (found < 0)
                goto done;
            fprintf(stderr, "word_lm: --vectors: %" PRId64 " of %d words found\n", found, v.n);
        }
        if (o->freeze && tn_tensor_set_requires_grad(m.lm.embed.weight, false) != TN_OK)
            goto done;
        tn_adam_opts ao = adam_opts(o);
        if (ex_lm_reset_state(&m, B) || !(opt = ex_lm_optim(&m, &ao, o->weight_decay > 0)))
            goto done;
        ex_train_seed_tape(tp, o->seed); /* dropout masks */
    }
    train = text_ids(&v, text, nbytes, 0, ntrain_lines, &ntrain);
    val = text_ids(&v, text, nbytes, ntrain_lines, nlines - ntrain_lines, &nval);
    if (!train || !val)
        goto done;
    int64_t stream = ntrain / B;
    if (stream < T + 1) {
        fprintf(stderr,
                "word_lm: the training split (%" PRId64 " words) is too short for %" PRId64
                " streams of %" PRId64 "+1 words\n",
                ntrain, B, T);
        goto done;
    }
    /* a resumed window start must lie in the streams (tn_lm_window indexes the
     * words with it) */
    if (o->resume && ex_check_range("word_lm", o->checkpoint, "data_pos", pos, 0, stream - 1,
                                    "the positions in a stream of this training split"))
        goto done;
    /* this rank trains streams [r0, r0 + Bl) of the B */
    int64_t r0, Bl;
    if (ex_train_split("word_lm", B, ntrain, &r0, &Bl) || ex_dist_attach(&m.lm.ps) ||
        (Bl < B && ex_lm_take_rows(&m, r0, Bl)))
        goto done;
    if (ex_dist_rank() == 0)
        fprintf(stderr,
                "word_lm: %s H=%" PRId64 " L=%" PRId64 " E=%" PRId64 " V=%" PRId64
                "%s%s params=%" PRId64 "; B=%" PRId64 " T=%" PRId64 "; %" PRId64 " train / %" PRId64
                " val words; %d threads\n",
                tn_cell_name(m.lm.o.cell), m.lm.o.hidden, (int64_t)m.lm.o.layers, m.lm.o.embed,
                m.lm.o.vocab, m.lm.o.tie ? " tied" : "",
                m.lm.embed.weight->requires_grad ? "" : " frozen-embedding",
                tn_params_numel(&m.lm.ps), B, T, ntrain, nval, tn_num_threads());
    wl_run run = {.lm = {.m = &m,
                         .ids = train,
                         .stream = stream,
                         .r0 = r0,
                         .pos = pos,
                         .val = val,
                         .n_val = nval,
                         .write = wl_save_write},
                  .v = &v,
                  .opt = opt,
                  .o = o};
    ex_lm_run *lm = &run.lm;
    lm->x = x = tn_tensor_new(TN_I32, 2, (int64_t[]){Bl, T});
    lm->y = y = tn_tensor_new(TN_I32, 1, (int64_t[]){Bl * T});
    ex_train tr = {.prog = "word_lm",
                   .tp = tp,
                   .ps = &m.lm.ps,
                   .opt = opt,
                   .step = step,
                   .steps = o->steps,
                   .clip = o->clip,
                   .eval_every = o->eval_every,
                   .save_every = o->save_every ? o->save_every : o->eval_every,
                   .log = o->log,
                   .loss_log = o->loss_log,
                   .curve = o->curve,
                   .append = o->resume,
                   .checkpoint = o->checkpoint,
                   .per_step = (double)(B * T),
                   .unit = "words",
                   .ctx = &run,
                   .forward = ex_lm_run_forward,
                   .stepped = ex_lm_run_stepped,
                   .evaluate = nval > 1 ? ex_lm_run_evaluate : NULL,
                   .save = o->checkpoint ? ex_lm_run_save : NULL,
                   .cols = ex_lm_run_cols,
                   .n_cols = 2};
    rc = x && y ? ex_train_run(&tr) : 1;
done:
    tn_tensor_free(x);
    tn_tensor_free(y);
    tn_optim_free(opt);
    ex_lm_free(&m);
    ex_words_free(&v);
    tn_tape_free(tp);
    free(train);
    free(val);
    free(text);
    return rc;
}

static int open_model(const opts *o, ex_lm_model *m, ex_words *v)
{
    if (!o->checkpoint) {
        fprintf(stderr, "word_lm: --checkpoint PATH is required\n");
        return 2;
    }
    tn_meta meta;
    tn_meta_init(&meta);
    tn_adam_opts ao = adam_opts(o);
    int rc = ex_word_load_checkpoint(o->checkpoint, m, v, &meta, NULL, &ao);
    tn_meta_free(&meta);
    return rc ? 1 : 0;
}

static int cmd_eval(const opts *o)
{
    if (!o->data) {
        fprintf(stderr, "word_lm eval: --data FILE is required\n");
        return 2;
    }
    ex_lm_model m;
    ex_words v;
    int rc = open_model(o, &m, &v);
    if (rc)
        return rc;
    char *text;
    size_t n;
    int32_t *ids = NULL;
    int64_t count = 0;
    tn_tape *tp = tn_tape_new();
    if (read_data(o->data, &text, &n) == 0) {
        ids = text_ids(&v, text, n, 0, count_lines(text, n), &count);
        free(text);
    }
    rc = 1;
    if (ids && count < 2) {
        fprintf(stderr, "word_lm eval: %s has fewer than 2 words\n", o->data);
    } else if (ids) {
        double loss = ex_lm_eval(&m, tp, ids, count, o->checkpoint);
        if (isfinite(loss)) {
            printf("loss %.6f ppl %.6f\n", loss, exp(loss));
            rc = 0;
        }
    }
    free(ids);
    tn_tape_free(tp);
    ex_lm_free(&m);
    ex_words_free(&v);
    return rc;
}

/* Print --prime, then --words sampled words (<eos> as a line end). */
static int cmd_sample(const opts *o)
{
    ex_lm_model m;
    ex_words v;
    int rc = open_model(o, &m, &v);
    if (rc)
        return rc;
    int64_t nprime = 0;
    int32_t *prime = text_ids(&v, o->prime, strlen(o->prime), 0, 1, &nprime);
    /* one word at a time through the carried state (tn_lm_step) */
    tn_tensor *logits = tn_tensor_new(TN_F32, 1, (int64_t[]){m.lm.o.vocab});
    tn_rng r;
    tn_rng_seed(&r, o->seed);
    rc = prime && logits ? 0 : 1;
    if (prime && !logits)
        fprintf(stderr, "word_lm: out of memory\n");
    /* the prime's words, then its line end is dropped: sampling goes on
     * from its last word (an empty prime starts after a line end) */
    int64_t given = nprime - 1;
    if (prime && given == 0)
        prime[0] = EOS, given = 1;
    int32_t next = 0;
    bool line_start = true, printed = false;
    for (int64_t i = 0; rc == 0 && i < given - 1 + o->words; i++) {
        int32_t cur = i < given ? prime[i] : next;
        if (i < given && strlen(o->prime)) {
            printf("%s%s", line_start ? "" : " ", cur == EOS ? "" : v.words[cur]);
            line_start = false;
            printed = true;
        }
        if (tn_lm_step(&m.lm, m.st, &cur, tn_tensor_data_f32(logits)) != TN_OK ||
            (i + 1 >= given && tn_sample(logits, &o->sample, &r, &next))) {
            fprintf(stderr, "word_lm: %s: sample: %s\n", o->checkpoint, tn_last_error());
            rc = 1;
            break;
        }
        if (i + 1 < given)
            continue;
        if (next == EOS) {
            printf("\n");
            line_start = true;
        } else {
            printf("%s%s", line_start ? "" : " ", v.words[next]);
            line_start = false;
        }
        printed = true;
    }
    if (rc == 0 || printed) /* end the text; a failure before any prints nothing */
        printf("\n");
    free(prime);
    tn_tensor_free(logits);
    ex_lm_free(&m);
    ex_words_free(&v);
    return rc;
}

/* The embedding as word2vec text: a header "V E", then `word v1 .. vE` a
 * line, each value printed so that it reads back as the same float. */
static int cmd_vectors(const opts *o)
{
    if (!o->out) {
        fprintf(stderr, "word_lm vectors: --out FILE is required\n");
        return 2;
    }
    if (ex_check_output("word_lm", "--out", o->out))
        return 2;
    ex_lm_model m;
    ex_words v;
    int rc = open_model(o, &m, &v);
    if (rc)
        return rc;
    FILE *f = fopen(o->out, "w");
    if (f) {
        int64_t V = m.lm.o.vocab, E = m.lm.o.embed;
        fprintf(f, "%" PRId64 " %" PRId64 "\n", V, E);
        for (int64_t i = 0; i < V; i++) {
            fputs(v.words[i], f);
            for (int64_t j = 0; j < E; j++)
                fprintf(f, " %.9g", tn_tensor_get(m.lm.embed.weight, i * E + j));
            fputc('\n', f);
        }
    }
    if (!f || fclose(f) != 0) {
        fprintf(stderr, "word_lm: --out %s: %s\n", o->out, strerror(errno));
        rc = 1;
    }
    ex_lm_free(&m);
    ex_words_free(&v);
    return rc;
}

/* The model of --checkpoint alone (export.h): encoder, rnn, decoder as
 * PyTorch's word_language_model; the metadata keeps the vocabulary and
 * sizes (word_lm and tn_lm_load read the file back). */
static int cmd_export(const opts *o)
{
    int rc = ex_export_check("word_lm", o->checkpoint, o->out);
    if (rc)
        return rc;
    ex_lm_model m;
    ex_words v;
    if (open_model(o, &m, &v))
        return 1;
    rc = ex_export_write("word_lm", o->checkpoint, o->out, &m.lm, NULL);
    ex_lm_free(&m);
    ex_words_free(&v);
    return rc;
}

int main(int argc, char **argv)
{
    opts o;
    int command = 0;
    int pr = parse_opts(argc, argv, &o, &command);
    if (pr != EX_OK)
        return pr == EX_DONE ? 0 : pr;
    if (ex_start("word_lm", &argc, &argv, o.threads, command == 0))
        return 1;
    int rc = command == 0   ? cmd_train(&o)
             : command == 1 ? cmd_eval(&o)
             : command == 2 ? cmd_sample(&o)
             : command == 3 ? cmd_vectors(&o)
                            : cmd_export(&o);
    ex_stop();
    return rc;
}
