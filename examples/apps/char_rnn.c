/* char_rnn - character-level language model (the project's main demo).
 *
 *   char_rnn train  [--data FILE] [--cell lstm|gru|rnn] [--hidden H] [--layers L]
 *                   [--embed E] [--batch B] [--seq T] [--steps N] [--lr X] [--clip X]
 *                   [--dropout X] [--seed S] [--threads N] [--checkpoint PATH]
 *                   [--save-every N] [--resume] [--eval-every N] [--eval-chars N]
 *                   [--log CSV] [--encoding utf-8|latin-1]
 *   char_rnn sample --checkpoint PATH [--prime TEXT] [--length N] [--temperature X]
 *                   [--top-k K] [--top-p P] [--seed S]
 *   char_rnn eval   --checkpoint PATH --data FILE [--encoding utf-8|latin-1]
 *   char_rnn --help | --version
 *
 * Options are parsed by the examples' helper (cli.h): numbers whole and
 * range-checked, output paths and a --resume checkpoint checked before any
 * training; `char_rnn --help` lists every option with its default.
 *
 * Model (PyTorch names): embed = Embedding(V, E), rnn = LSTM/GRU/RNN(E, H, L,
 * batch_first), head = Linear(H, V). Text is UTF-8; the vocabulary is the
 * sorted distinct code points of the training file; the first 90% is the
 * training split, the rest validation. Batches: B streams at evenly spaced
 * offsets of the training split, each read in consecutive windows of T with
 * the hidden state carried and detached between windows (truncated BPTT).
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <tensor/tensor.h>

#include "char_model.h"
#include "cli.h"
#include "export.h"
#include "train.h"
#include "train_dist.h"

/* ---- text ---- */

/* ---- options ---- */

typedef struct opts {
    const char *data, *checkpoint, *log, *loss_log, *curve, *prime, *cell, *encoding, *out;
    int64_t hidden, layers, embed, batch, seq, steps, save_every, eval_every, eval_chars;
    int64_t length, threads;
    double lr, clip, dropout;
    tn_sample_opts sample;
    uint64_t seed;
    bool resume;
} opts;

enum { TRAIN = 1u << 0, SAMPLE = 1u << 1, EVAL = 1u << 2, EXPORT = 1u << 3 };

/* Parse argv into *o (the defaults are set here, and --help shows them).
 * Returns EX_OK, or the exit status (0 after --help/--version, 2 when an
 * option was refused). */
static int parse_opts(int argc, char **argv, opts *o, int *command)
{
    *o = (opts){.hidden = 256,
                .layers = 2,
                .embed = 64,
                .batch = 32,
                .seq = 64,
                .steps = 1000,
                .eval_every = 200,
                .eval_chars = 20000,
                .save_every = 0,
                .length = 500,
                .threads = 0,
                .lr = 2e-3,
                .clip = 1.0,
                .dropout = 0.0,
                .sample = {.temperature = 0.8, .top_k = 0, .top_p = 1},
                .seed = 1337,
                .prime = "",
                .cell = "lstm",
                .encoding = "utf-8"};
    const ex_opt table[] = {
        {"--data", EX_STRING, &o->data, "FILE", "text to train on / to evaluate",
         .def = "train: generated English-like text; eval: required", .commands = TRAIN | EVAL},
        {"--encoding", EX_CHOICE, &o->encoding, "ENC",
         "encoding of --data (anything but valid UTF-8 is refused unless latin-1)",
         .choices = "utf-8|latin-1", .commands = TRAIN | EVAL},
        {"--cell", EX_CHOICE, &o->cell, "CELL", "recurrent cell", .choices = "lstm|gru|rnn",
         .commands = TRAIN},
        {"--hidden", EX_INT, &o->hidden, "H", "hidden units per layer", .imin = 1, .imax = 16384,
         .commands = TRAIN},
        {"--layers", EX_INT, &o->layers, "L", "stacked recurrent layers", .imin = 1,
         .imax = TN_RNN_MAX_LAYERS, .commands = TRAIN},
        {"--embed", EX_INT, &o->embed, "E", "embedding size", .imin = 1, .imax = 16384,
         .commands = TRAIN},
        {"--batch", EX_INT, &o->batch, "B", "streams per batch", .imin = 1, .imax = 65536,
         .commands = TRAIN},
        {"--seq", EX_INT, &o->seq, "T", "characters per window (truncated BPTT)", .imin = 1,
         .imax = 1000000, .commands = TRAIN},
        {"--steps", EX_INT, &o->steps, "N", "train until this step", .imin = 0,
         .imax = EX_STEPS_MAX, .commands = TRAIN},
        {"--lr", EX_REAL, &o->lr, "X", "Adam learning rate", .dmin = 0, .dmin_open = true,
         .dmax = 10, .commands = TRAIN},
        {"--clip", EX_REAL, &o->clip, "X", "clip the global gradient norm to X (0: off)", .dmin = 0,
         .dmax = 1e6, .commands = TRAIN},
        {"--dropout", EX_REAL, &o->dropout, "X", "dropout between layers", .dmin = 0, .dmax = 1,
         .dmax_open = true, .commands = TRAIN},
        {"--checkpoint", EX_STRING, &o->checkpoint, "PATH",
         "safetensors checkpoint to write (train) or read (sample, eval)",
         .def = "train: none; sample, eval: required"},
        {"--save-every", EX_INT, &o->save_every, "N",
         "write the checkpoint every N steps (0: every --eval-every steps)", .imin = 0,
         .imax = INT64_C(1000000000000), .commands = TRAIN},
        {"--resume", EX_FLAG, &o->resume, NULL,
         "continue the run saved in --checkpoint (which must exist)", .commands = TRAIN},
        {"--eval-every", EX_INT, &o->eval_every, "N",
         "validation loss every N steps and after the last (0: after the last)", .imin = 0,
         .imax = INT64_C(1000000000000), .commands = TRAIN},
        {"--eval-chars", EX_INT, &o->eval_chars, "N",
         "characters of the validation split to evaluate", .imin = 2,
         .imax = INT64_C(1000000000000), .commands = TRAIN},
        EX_TRAIN_LOG_OPTS(&o->log, &o->loss_log, &o->curve, TRAIN),
        {"--prime", EX_STRING, &o->prime, "TEXT", "text to start sampling from (UTF-8)",
         .commands = SAMPLE},
        {"--length", EX_INT, &o->length, "N", "characters to sample", .imin = 0, .imax = 1000000000,
         .commands = SAMPLE},
        EX_SAMPLE_OPTS(&o->sample, SAMPLE),
        {"--out", EX_STRING, &o->out, "PATH", "the model-only safetensors file to write",
         .commands = EXPORT},
        {"--seed", EX_UINT64, &o->seed, "S", "random seed (initial weights, dropout, sampling)",
         .commands = TRAIN | SAMPLE},
        {"--threads", EX_INT, &o->threads, "N", "threads for OpenMP loops and BLIS", .imin = 1,
         .imax = 1024, .def = EX_THREADS_DEFAULT},
    };
    static const char *const commands[] = {"train", "sample", "eval", "export", NULL};
    static const char *const command_help[] = {
        "train a model (and write --checkpoint)",
        "print text sampled from a checkpoint's model",
        "print a checkpoint's loss (nats/char) and perplexity on --data",
        "write the model of --checkpoint alone to --out: the state_dict of the PyTorch module",
    };
    const ex_spec spec = {
        .prog = "char_rnn",
        .summary = "character-level language model (Embedding -> LSTM/GRU/RNN -> Linear)",
        .commands = commands,
        .command_help = command_help,
        .opts = table,
        .n_opts = (int)(sizeof table / sizeof table[0]),
        .notes = "Without --data, train uses about 200 KB of English-like text it generates.\n"
                 "Example, on tinyshakespeare (works of Shakespeare, public domain) from the\n"
                 "repository's data/ (data/README.md lists the sources):\n"
                 "  char_rnn train --data data/tinyshakespeare.txt --steps 1000 \\\n"
                 "      --checkpoint lm.safetensors --log curve.csv\n"
                 "  char_rnn sample --checkpoint lm.safetensors --prime \"ROMEO:\" --top-k 20\n",
    };
    return ex_parse(&spec, argc, argv, command);
}

/* ---- the model ---- */

static void print_cp(uint32_t cp)
{
    char enc[4];
    int k = ex_utf8_encode(cp, enc);
    fwrite(enc, 1, (size_t)k, stdout);
}

/* Print prime, then `length` sampled characters (messages name path, the
 * checkpoint). */
static int model_sample(ex_lm_model *m, const char *path, const ex_text *vocab, const char *prime,
                        int64_t length, const tn_sample_opts *so, uint64_t seed)
{
    tn_rng r;
    tn_rng_seed(&r, seed);
    ex_text pt = *vocab;
    pt.ids = NULL;
    if (ex_text_load(&pt, (const unsigned char *)prime, (int64_t)strlen(prime), false, "--prime"))
        return -1;
    if (pt.n == 0) { /* no prime: start from a newline if known, else id 0 */
        int nl = ex_text_index(vocab, '\n');
        pt.ids[0] = nl >= 0 ? nl : 0;
        pt.n = 1;
    } else {
        for (int64_t i = 0; i < pt.n; i++)
            print_cp(vocab->vocab[pt.ids[i]]);
    }
    bool printed = pt.n > 0 && *prime;
    /* one character at a time through the carried state (tn_lm_step) */
    tn_tensor *logits = tn_tensor_new(TN_F32, 1, (int64_t[]){m->lm.o.vocab});
    int32_t next = pt.ids[0];
    int rc = logits ? ex_lm_reset_state(m, 1) : -1;
    if (!logits)
        fprintf(stderr, "char_rnn: out of memory\n");
    for (int64_t i = 0; rc == 0 && i < pt.n - 1 + length; i++) {
        int32_t cur = i < pt.n ? pt.ids[i] : next;
        if (tn_lm_step(&m->lm, m->st, &cur, tn_tensor_data_f32(logits)) != TN_OK) {
            fprintf(stderr, "char_rnn: %s: sample: %s\n", path, tn_last_error());
            rc = -1;
            break;
        }
        if (i + 1 < pt.n)
            continue; /* still reading the prime */
        if (tn_sample(logits, so, &r, &next) != TN_OK) {
            fprintf(stderr, "char_rnn: %s: sample: %s\n", path, tn_last_error());
            rc = -1;
            break;
        }
        print_cp(vocab->vocab[next]);
        printed = true;
    }
    if (rc == 0 || printed) /* end the text; a failure before any prints nothing */
        printf("\n");
    tn_tensor_free(logits);
    free(pt.ids);
    return rc;
}

/* ---- checkpoints ---- */

static void vocab_string(const ex_text *t, char *out, size_t cap)
{
    size_t k = 0;
    for (int v = 0; v < t->V && k + 5 < cap; v++)
        k += (size_t)ex_utf8_encode(t->vocab[v], out + k);
    out[k] = '\0';
}

/* Whether every parameter value is finite (an update with finite
 * gradients can still overflow them). */
static bool params_finite(const tn_params *ps)
{
    for (int i = 0; i < ps->n; i++)
        for (int64_t k = 0; k < tn_numel(ps->items[i].t); k++)
            if (!isfinite(tn_tensor_get(ps->items[i].t, k)))
                return false;
    return true;
}

/* Save everything needed to resume; a model whose parameters are no longer
 * finite is never written over the last good checkpoint. */
/* meta: the ranks' part (ex_train_meta_ranks), completed here. */
static int save_checkpoint(const char *path, ex_lm_model *m, const ex_text *t, tn_optim *opt,
                           tn_meta *meta, int64_t step, int64_t pos, const opts *o)
{
    if (!params_finite(&m->lm.ps)) {
        fprintf(stderr,
                "\nchar_rnn: training diverged at step %" PRId64 ": a parameter is not finite; "
                "stopping; the last good checkpoint %s is kept\n",
                step, path);
        return -1;
    }
    char *vs = malloc((size_t)t->V * 4 + 8);
    vocab_string(t, vs, (size_t)t->V * 4 + 8);
    tn_meta_set(meta, "format", "char_rnn 1");
    const tn_lm_opts *lo = &m->lm.o;
    tn_meta_set(meta, "cell", tn_cell_name(lo->cell)[0] == 'r' ? "rnn" : tn_cell_name(lo->cell));
    tn_meta_set_int(meta, "hidden", lo->hidden);
    tn_meta_set_int(meta, "layers", lo->layers);
    tn_meta_set_int(meta, "embed", lo->embed);
    tn_meta_set(meta, "vocab", vs);
    tn_meta_set_int(meta, "step", step);
    tn_meta_set_int(meta, "data_pos", pos);
    tn_meta_set_int(meta, "batch", o->batch);
    tn_meta_set_int(meta, "seq", o->seq);
    char buf[64];
    snprintf(buf, sizeof buf, "%.17g", o->lr);
    tn_meta_set(meta, "lr", buf);
    snprintf(buf, sizeof buf, "%.17g", o->dropout);
    tn_meta_set(meta, "dropout", buf);
    int rc = ex_lm_save(m, path, opt, meta);
    free(vs);
    return rc;
}

/* ---- commands ---- */

/* The bytes of --data as UTF-8 (ex_read_text: a readable file, valid
 * UTF-8 or converted with --encoding latin-1). The caller frees *bytes. */
static int read_text(const opts *o, unsigned char **bytes, int64_t *nbytes)
{
    char *text;
    size_t n;
    if (ex_read_text("char_rnn", "--data", o->data, o->encoding, &text, &n))
        return -1;
    *bytes = (unsigned char *)text;
    *nbytes = (int64_t)n;
    return 0;
}

static int load_training_text(const opts *o, ex_text *t)
{
    unsigned char *bytes;
    int64_t nbytes;
    if (o->data) {
        if (read_text(o, &bytes, &nbytes))
            return -1;
    } else {
        bytes = ex_generated_text(&nbytes);
        fprintf(stderr,
                "char_rnn: no --data given: training on %" PRId64
                " bytes of generated English-like text\n",
                nbytes);
    }
    int rc = ex_text_load(t, bytes, nbytes, true, o->data ? o->data : "generated text");
    free(bytes);
    return rc;
}

/* Before any work: the paths train writes (checkpoint directory writable,
 * log file creatable) and the checkpoint --resume reads. Returns 0 or -1
 * (message printed). */
static int check_train_paths(const opts *o)
{
    if (o->resume && !o->checkpoint) {
        fprintf(stderr, "char_rnn: --resume needs --checkpoint PATH (the run to continue)\n");
        return -1;
    }
    if (o->checkpoint && ex_check_output("char_rnn", "--checkpoint", o->checkpoint))
        return -1;
    if (o->resume && access(o->checkpoint, R_OK) != 0) {
        fprintf(stderr,
                "char_rnn: --resume: checkpoint %s: %s (without --resume, train starts a new "
                "run)\n",
                o->checkpoint, strerror(errno));
        return -1;
    }
    if ((o->log && ex_check_output("char_rnn", "--log", o->log)) ||
        (o->loss_log && ex_check_output("char_rnn", "--loss-log", o->loss_log)) ||
        (o->curve && ex_check_output("char_rnn", "--plot", o->curve)))
        return -1;
    return 0;
}

/* A training run for the driver's hooks (train.h): the language model's
 * run and what its checkpoints need. */
typedef struct char_run {
    ex_lm_run lm;
    const ex_text *t;
    tn_optim *opt;
    const opts *o;
} char_run;

/* ex_lm_run's writer (rank 0): the checkpoint of the gathered model; ctx is
 * the run (its ex_lm_run comes first). */
static int char_save_write(void *ctx, ex_lm_model *full, tn_meta *meta, int64_t step)
{
    char_run *r = ctx;
    return save_checkpoint(r->o->checkpoint, full, r->t, r->opt, meta, step, r->lm.pos, r->o);
}

static int cmd_train(const opts *o)
{
    if (check_train_paths(o))
        return 2;
    ex_text t = {0};
    if (load_training_text(o, &t))
        return 1;
    int64_t n_train = t.n * 9 / 10, B = o->batch, T = o->seq;
    int64_t stream = n_train / B; /* characters per batch stream */
    /* With N ranks, this rank trains streams [r0, r0 + Bl) of the B. */
    /* this rank trains streams [r0, r0 + Bl) of the B */
    int N = ex_dist_size();
    bool lead = ex_dist_rank() == 0;
    int64_t Bl, r0;
    if (ex_train_split("char_rnn", B, t.n * 4096 + t.V, &r0, &Bl)) {
        free(t.ids);
        return 1;
    }
    if (stream < T + 1) {
        fprintf(stderr,
                "char_rnn: training split (%" PRId64 " chars) too short for %" PRId64
                " streams of %" PRId64 "+1 characters\n",
                n_train, B, T);
        free(t.ids);
        return 1;
    }
    ex_lm_model m;
    tn_optim *opt = NULL;
    tn_tape *tp = tn_tape_new();
    int64_t step = 0, pos = 0;
    bool resumed = false;
    if (o->resume && o->checkpoint && access(o->checkpoint, F_OK) == 0) {
        ex_text ck = {0};
        tn_meta meta;
        tn_meta_init(&meta);
        int rc = ex_char_load_checkpoint(o->checkpoint, &m, &ck, &meta, o->dropout, &opt, o->lr);
        bool loaded = rc == 0;
        if (rc == 0 && (ck.V != t.V || memcmp(ck.vocab, t.vocab, (size_t)t.V * 4) != 0)) {
            fprintf(stderr, "char_rnn: %s was trained on another vocabulary\n", o->checkpoint);
            rc = -1;
        }
        int64_t seq = -1;
        if (rc == 0 &&
            (!opt || tn_meta_get_int(&meta, "step", &step) ||
             tn_meta_get_int(&meta, "data_pos", &pos) || tn_meta_get_int(&meta, "seq", &seq) ||
             tn_meta_get_rng(&meta, "rng", tn_tape_rng(tp)) || m.st->h->shape[1] != B ||
             seq != T)) {
            fprintf(stderr,
                    "char_rnn: %s cannot resume this run (no training state, or "
                    "another --batch or --seq)\n",
                    o->checkpoint);
            rc = -1;
        }
        /* the window start must lie in the streams (tn_lm_window indexes the
         * text with it) */
        if (rc == 0 && (ex_check_range("char_rnn", o->checkpoint, "step", step, 0, EX_STEPS_MAX,
                                       "the steps --steps allows") ||
                        ex_check_range("char_rnn", o->checkpoint, "data_pos", pos, 0, stream - 1,
                                       "the positions in a stream of this training split")))
            rc = -1;
        if (rc == 0 && ex_train_resume_ranks("char_rnn", o->checkpoint, &meta, tp))
            rc = -1;
        tn_meta_free(&meta);
        if (rc) {
            if (loaded) { /* loaded, then refused: the model and optimizer are ours */
                tn_optim_free(opt);
                ex_lm_free(&m);
            }
            free(t.ids);
            tn_tape_free(tp);
            return 1;
        }
        if (N > 1 && ex_lm_take_rows(&m, r0, Bl)) {
            tn_optim_free(opt);
            ex_lm_free(&m);
            free(t.ids);
            tn_tape_free(tp);
            return 1;
        }
        tn_optim_set_step(opt, step);
        resumed = true;
        if (lead)
            fprintf(stderr, "char_rnn: resumed %s at step %" PRId64 "\n", o->checkpoint, step);
    } else {
        tn_rng r;
        tn_rng_seed(&r, o->seed);
        if (ex_char_model_init(&m, ex_cell(o->cell), t.V, o->embed, o->hidden, o->layers,
                               o->dropout, NULL, &r)) {
            free(t.ids);
            tn_tape_free(tp);
            return 1;
        }
        tn_adam_opts ao = tn_adam_defaults();
        ao.lr = o->lr;
        if (ex_lm_reset_state(&m, Bl) == 0)
            opt = ex_lm_optim(&m, &ao, false);
        if (!opt) { /* e.g. --lr inf */
            ex_lm_free(&m);
            free(t.ids);
            tn_tape_free(tp);
            return 1;
        }
        /* dropout masks: one stream of random numbers per rank */
        ex_train_seed_tape(tp, o->seed);
    }
    if (ex_dist_attach(&m.lm.ps)) {
        tn_optim_free(opt);
        ex_lm_free(&m);
        free(t.ids);
        tn_tape_free(tp);
        return 1;
    }
    if (lead)
        fprintf(stderr,
                "char_rnn: %s H=%" PRId64 " L=%" PRId64 " E=%" PRId64 " V=%" PRId64
                " params=%" PRId64 "; B=%" PRId64 " T=%" PRId64 "; %" PRId64 " train / %" PRId64
                " val chars; %d rank(s) x %d threads, BLIS %s\n",
                tn_cell_name(m.lm.o.cell), m.lm.o.hidden, (int64_t)m.lm.o.layers, m.lm.o.embed,
                m.lm.o.vocab, tn_params_numel(&m.lm.ps), B, T, n_train, t.n - n_train, N,
                tn_num_threads(), tn_blis_config());
    char_run run = {.lm = {.m = &m,
                           .ids = t.ids,
                           .stream = stream,
                           .r0 = r0,
                           .pos = pos,
                           .val = t.ids + n_train,
                           .n_val = t.n - n_train < o->eval_chars ? t.n - n_train : o->eval_chars,
                           .write = char_save_write},
                    .t = &t,
                    .opt = opt,
                    .o = o};
    ex_lm_run *lm = &run.lm;
    lm->x = tn_tensor_new(TN_I32, 2, (int64_t[]){Bl, T});
    lm->y = tn_tensor_new(TN_I32, 1, (int64_t[]){Bl * T});
    ex_train tr = {.prog = "char_rnn",
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
                   .append = resumed,
                   .checkpoint = o->checkpoint,
                   .per_step = (double)(B * T),
                   .unit = "tok",
                   .ctx = &run,
                   .forward = ex_lm_run_forward,
                   .stepped = ex_lm_run_stepped,
                   .evaluate = lm->n_val > 1 ? ex_lm_run_evaluate : NULL,
                   .save = o->checkpoint ? ex_lm_run_save : NULL,
                   .cols = ex_lm_run_cols,
                   .n_cols = 2};
    int rc = lm->x && lm->y ? ex_train_run(&tr) : 1;
    tn_tensor_free(lm->x);
    tn_tensor_free(lm->y);
    tn_optim_free(opt);
    ex_lm_free(&m);
    tn_tape_free(tp);
    free(t.ids);
    return rc;
}

static int cmd_sample(const opts *o)
{
    if (!o->checkpoint) {
        fprintf(stderr, "char_rnn sample: --checkpoint PATH is required\n");
        return 2;
    }
    int64_t bad = ex_utf8_invalid_at((const unsigned char *)o->prime, strlen(o->prime));
    if (bad >= 0) {
        fprintf(stderr, "char_rnn: --prime: not valid UTF-8 at byte offset %" PRId64 "\n", bad);
        return 2;
    }
    ex_lm_model m;
    ex_text t = {0};
    if (ex_char_load_model(o->checkpoint, &m, &t))
        return 1;
    int rc = model_sample(&m, o->checkpoint, &t, o->prime, o->length, &o->sample, o->seed);
    ex_lm_free(&m);
    return rc ? 1 : 0;
}

/* The model of --checkpoint alone (export.h): tensors named and shaped
 * as the PyTorch module's state_dict (embed, rnn, head); the metadata
 * keeps what char_rnn needs to read it back (format, sizes, vocabulary)
 * and tn_lm_load's lm.* keys. */
static int cmd_export(const opts *o)
{
    int rc = ex_export_check("char_rnn", o->checkpoint, o->out);
    if (rc)
        return rc;
    ex_lm_model m;
    ex_text t = {0};
    if (ex_char_load_model(o->checkpoint, &m, &t))
        return 1;
    rc = ex_export_write("char_rnn", o->checkpoint, o->out, &m.lm, NULL);
    ex_lm_free(&m);
    return rc;
}

static int cmd_eval(const opts *o)
{
    if (!o->checkpoint || !o->data) {
        fprintf(stderr, "char_rnn eval: --checkpoint PATH and --data FILE are required\n");
        return 2;
    }
    unsigned char *bytes = NULL; /* the data first: a bad file is refused before the model */
    int64_t nbytes;
    if (read_text(o, &bytes, &nbytes))
        return 1;
    ex_lm_model m;
    ex_text t = {0};
    if (ex_char_load_model(o->checkpoint, &m, &t)) {
        free(bytes);
        return 1;
    }
    int rc = ex_text_load(&t, bytes, nbytes, false, o->data);
    free(bytes);
    if (rc) {
        ex_lm_free(&m);
        return 1;
    }
    tn_tape *tp = tn_tape_new();
    double loss = t.n < 2 ? NAN : ex_lm_eval(&m, tp, t.ids, t.n, o->checkpoint);
    if (t.n < 2) {
        fprintf(stderr, "char_rnn eval: %s has fewer than 2 characters\n", o->data);
        rc = 1;
    } else if (isnan(loss)) { /* message printed */
        rc = 1;
    } else {
        printf("loss %.6f ppl %.6f\n", loss, exp(loss));
    }
    tn_tape_free(tp);
    free(t.ids);
    ex_lm_free(&m);
    return rc;
}

int main(int argc, char **argv)
{
    opts o;
    int command, rc = parse_opts(argc, argv, &o, &command);
    if (rc != EX_OK)
        return rc == EX_DONE ? 0 : 2;
    if (ex_start("char_rnn", &argc, &argv, o.threads, command == 0))
        return 1;
    rc = command == 0   ? cmd_train(&o)
         : command == 1 ? cmd_sample(&o)
         : command == 2 ? cmd_eval(&o)
                        : cmd_export(&o);
    ex_stop();
    return rc;
}
