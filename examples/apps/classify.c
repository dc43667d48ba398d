/* examples/apps/classify.c - a character-level sequence classifier: characters
 * (UTF-8 code points) -> embedding -> tn_rnn (gru|lstm|rnn, layers,
 * optionally bidirectional) over padded batches with each example's length
 * -> the last layer's final state (both directions concatenated) -> Linear
 * -> cross-entropy with class weights: in training the Linear and the loss
 * are one op (tn_linear_cross_entropy), in eval and predict the logits are
 * kept (tn_linear_forward, tn_cross_entropy) for the predictions.
 *
 *   classify train   [--data DIR] [--cell gru|lstm|rnn] [--hidden H] [--embed E]
 *                    [--layers L] [--bidirectional] [--batch B] [--steps N] [--lr X]
 *                    [--clip X] [--balance weights|sample|none] [--seed S] [--threads N]
 *                    [--checkpoint PATH] [--eval-every N] [--log CSV] [--loss-log CSV]
 *                    [--val-fraction F]
 *   classify predict --checkpoint PATH [--top K]          (stdin -> stdout)
 *   classify eval    --checkpoint PATH [--data DIR] [--split all|val] [--plot FILE.png]
 *
 * Data: DIR holds one <Label>.txt per class, one example a line (UTF-8;
 * empty lines skipped, a trailing CR dropped, examples cut to their first
 * MAX_LEN code points). Labels are the file names in byte order. Each class
 * is split on its own (stratified): a fixed-seed shuffle of its examples
 * (tn_rng seeded SPLIT_SEED, classes in label order, Fisher-Yates) puts
 * floor(F * n_c) of them in the validation set. The vocabulary is the code
 * points of the training split in ascending order after <pad> (0) and <unk>
 * (1). Without --data the program makes its own task: four invented
 * "languages" of words built from syllables of their own, 1200/600/300/150
 * words (unbalanced as real data is).
 *
 * Class imbalance: --balance weights (default) weighs class c by
 * n / (C * n_c) on the training split (scikit-learn's 'balanced'), so every
 * class carries the same total weight in the loss, which is PyTorch's
 * cross_entropy(weight=...) mean (divided by the sum of the weights of the
 * batch); --balance sample draws each batch example from a uniformly drawn
 * class instead (unweighted loss); --balance none does neither. A batch
 * draws B training examples with replacement from a tn_rng seeded
 * --seed ^ DATA_SEED_MIX; tests/torch_classify.py makes the same split,
 * vocabulary, weights and batches.
 */
#define _POSIX_C_SOURCE 200809L
#include <tensor/tensor.h>

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "export.h"
#include "plot.h"
#include "train.h"
#include "train_dist.h"
#include "vocab.h"

enum { PAD = 0, UNK = 1, MAX_LEN = 64, MAX_CLASSES = 1000, EVAL_BATCH = 256 };
#define SPLIT_SEED    20240u
#define DATA_SEED_MIX 0x5851f42d4c957f2dULL
#define PROG          "classify"

/* ---- data: labelled examples as code points ---- */

typedef struct dataset {
    char **labels; /* [C], owned */
    int C;
    int64_t n;
    int32_t *cps;   /* n x MAX_LEN code points */
    int32_t *len;   /* [n], 1..MAX_LEN */
    int32_t *label; /* [n] */
} dataset;

static void dataset_free(dataset *d)
{
    for (int c = 0; c < d->C; c++)
        free(d->labels[c]);
    free(d->labels), free(d->cps), free(d->len), free(d->label);
    memset(d, 0, sizeof *d);
}

/* Add the examples of text (one a line) as class c. Returns their number or
 * -1 when out of memory. */
static int64_t dataset_add_text(dataset *d, int64_t *cap, const char *text, int c)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t n = strlen(text), at = 0;
    int64_t added = 0;
    while (at < n) {
        size_t end = at;
        while (end < n && s[end] != '\n')
            end++;
        size_t stop = end > at && s[end - 1] == '\r' ? end - 1 : end;
        if (stop > at) {
            if (d->n == *cap) {
                int64_t nc = *cap ? 2 * *cap : 1024;
                int32_t *a = realloc(d->cps, sizeof *a * (size_t)(nc * MAX_LEN));
                if (a)
                    d->cps = a;
                int32_t *b = realloc(d->len, sizeof *b * (size_t)nc);
                if (b)
                    d->len = b;
                int32_t *e = realloc(d->label, sizeof *e * (size_t)nc);
                if (e)
                    d->label = e;
                if (!a || !b || !e)
                    return -1;
                *cap = nc;
            }
            int32_t *cp = d->cps + d->n * MAX_LEN, k = 0;
            size_t i = at;
            while (i < stop && k < MAX_LEN)
                cp[k++] = (int32_t)ex_utf8_next(s, stop, &i);
            d->len[d->n] = k;
            d->label[d->n] = c;
            d->n++;
            added++;
        }
        at = end + 1;
    }
    return added;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* What makes s (n bytes) unusable as a label, or NULL: a newline (labels
 * are saved one a line), a tab (predict's output columns), another control
 * character, or bytes that are not UTF-8 (the checkpoint's metadata is
 * UTF-8); *at gets the byte offset. Checked where labels come in (file
 * names, a checkpoint), so a run never trains on labels it cannot save. */
static const char *label_problem(const char *s, size_t n, size_t *at)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        *at = i;
        if (c == '\n' || c == '\t' || c < 0x20 || c == 0x7f)
            return c == '\n' ? "newline" : c == '\t' ? "tab" : "control character";
    }
    int64_t bad = ex_utf8_invalid_at((const unsigned char *)s, n);
    *at = (size_t)bad;
    return bad >= 0 ? "byte that is not UTF-8" : NULL;
}

/* The <Label>.txt files of dir, labels sorted. Returns 0 or -1 (message). */
static int dataset_read_dir(const char *dir, dataset *d)
{
    memset(d, 0, sizeof *d);
    DIR *dh = opendir(dir);
    if (!dh) {
        fprintf(stderr, PROG ": --data %s: %s\n", dir, strerror(errno));
        return -1;
    }
    char **names = NULL;
    int n = 0, cap = 0, rc = 0;
    for (struct dirent *e; (e = readdir(dh));) {
        size_t l = strlen(e->d_name);
        if (e->d_name[0] == '.' || l <= 4 || strcmp(e->d_name + l - 4, ".txt") != 0)
            continue;
        if (n == MAX_CLASSES) {
            fprintf(stderr, PROG ": --data %s: more than %d classes\n", dir, MAX_CLASSES);
            rc = -1;
            break;
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 32;
            char **nn = realloc(names, sizeof *nn * (size_t)cap);
            if (!nn) {
                rc = -1;
                break;
            }
            names = nn;
        }
        size_t at;
        const char *why = label_problem(e->d_name, l - 4, &at);
        if (why) {
            fprintf(stderr,
                    PROG ": --data %s: file %s: its label (the file name without .txt) "
                         "has a %s at byte %zu; a label must be one line of UTF-8 without "
                         "tabs\n",
                    dir, e->d_name, why, at);
            rc = -1;
            break;
        }
        if (!(names[n] = strndup(e->d_name, l - 4))) {
            rc = -1;
            break;
        }
        n++;
    }
    closedir(dh);
    if (rc == 0 && n < 2) {
        fprintf(stderr,
                PROG ": --data %s: %s; a class is a <Label>.txt file with one example "
                     "a line, and at least 2 classes are needed\n",
                dir, n ? "only one <Label>.txt file" : "no <Label>.txt files");
        rc = -1;
    }
    if (rc == 0)
        qsort(names, (size_t)n, sizeof *names, cmp_str);
    d->labels = names;
    d->C = n;
    int64_t dcap = 0;
    for (int c = 0; rc == 0 && c < n; c++) {
        size_t plen = strlen(dir) + strlen(names[c]) + 6, got;
        char *path = malloc(plen), *text = NULL;
        if (!path) {
            rc = -1;
            break;
        }
        snprintf(path, plen, "%s/%s.txt", dir, names[c]);
        struct stat st; /* a FIFO or device would block or never end */
        if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
            fprintf(stderr,
                    PROG ": --data %s: not a regular file (a class is a file of "
                         "examples)\n",
                    path);
            rc = -1;
        } else if (ex_read_text(PROG, "--data", path, "utf-8", &text, &got)) {
            rc = -1;
        } else if (strlen(text) != got) {
            fprintf(stderr, PROG ": --data %s: a NUL byte at offset %zu\n", path, strlen(text));
            rc = -1;
        } else {
            int64_t k = dataset_add_text(d, &dcap, text, c);
            if (k < 0) {
                fprintf(stderr, PROG ": out of memory reading %s\n", path);
                rc = -1;
            } else if (k == 0) {
                fprintf(stderr, PROG ": --data %s: no examples (every class needs one)\n", path);
                rc = -1;
            }
        }
        free(text);
        free(path);
    }
    if (rc)
        dataset_free(d);
    return rc;
}

/* The generated task: words of 2-4 syllables, each language with syllables
 * of its own (a few shared), counts 1200/600/300/150. */
static int dataset_generate(dataset *d)
{
    static const char *const names[4] = {"lirana", "kotsuk", "brundel", "oyaque"};
    static const char *const syl[4][8] = {
        {"li", "ra", "na", "mi", "el", "si", "ta", "lo"},
        {"ko", "tsu", "ki", "ha", "mo", "to", "ru", "ka"},
        {"bru", "del", "st", "ng", "ka", "orf", "ber", "sch"},
        {"oy", "que", "ai", "eu", "ou", "ia", "ll", "ta"},
    };
    static const int count[4] = {1200, 600, 300, 150};
    memset(d, 0, sizeof *d);
    d->labels = calloc(4, sizeof *d->labels);
    if (!d->labels)
        return -1;
    d->C = 4;
    tn_rng r;
    tn_rng_seed(&r, 7);
    int64_t cap = 0;
    for (int c = 0; c < 4; c++) {
        if (!(d->labels[c] = strdup(names[c])))
            return -1;
        for (int i = 0; i < count[c]; i++) {
            char w[64] = "";
            int ns = 2 + (int)(tn_rng_next(&r) % 3);
            for (int k = 0; k < ns; k++)
                strcat(w, syl[c][tn_rng_next(&r) % 8]);
            w[0] = (char)(w[0] - 'a' + 'A');
            if (dataset_add_text(d, &cap, w, c) != 1)
                return -1;
        }
    }
    return 0;
}

/* The stratified split: per class (in label order) a Fisher-Yates shuffle of
 * its examples' indices by one tn_rng seeded SPLIT_SEED; the first
 * floor(frac * n_c) go to val (in that order), the rest to train. The
 * index arrays are malloc'd. Returns 0 or -1 (out of memory). */
static int dataset_split(const dataset *d, double frac, int64_t **train, int64_t *n_train,
                         int64_t **val, int64_t *n_val)
{
    int64_t *tr = malloc(sizeof *tr * (size_t)d->n), *va = malloc(sizeof *va * (size_t)d->n);
    int64_t *cls = malloc(sizeof *cls * (size_t)d->n);
    if (!tr || !va || !cls) {
        free(tr), free(va), free(cls);
        return -1;
    }
    tn_rng r;
    tn_rng_seed(&r, SPLIT_SEED);
    *n_train = *n_val = 0;
    for (int c = 0; c < d->C; c++) {
        int64_t m = 0;
        for (int64_t i = 0; i < d->n; i++)
            if (d->label[i] == c)
                cls[m++] = i;
        for (int64_t i = m - 1; i > 0; i--) {
            int64_t j = (int64_t)(tn_rng_next(&r) % (uint64_t)(i + 1)), t = cls[i];
            cls[i] = cls[j], cls[j] = t;
        }
        int64_t nv = (int64_t)floor(frac * (double)m);
        for (int64_t i = 0; i < m; i++) {
            if (i < nv)
                va[(*n_val)++] = cls[i];
            else
                tr[(*n_train)++] = cls[i];
        }
    }
    free(cls);
    *train = tr, *val = va;
    return 0;
}

/* ---- vocabulary: code points -> ids ---- */

typedef struct vocab {
    uint32_t *cp; /* [n]: id k + 2 is code point cp[k], ascending */
    int n;
} vocab;

static int vocab_build(vocab *v, const dataset *d, const int64_t *idx, int64_t n)
{
    int64_t total = 0;
    for (int64_t i = 0; i < n; i++)
        total += d->len[idx[i]];
    v->cp = malloc(sizeof *v->cp * (size_t)(total + 1));
    v->n = 0;
    if (!v->cp)
        return -1;
    for (int64_t i = 0; i < n; i++)
        for (int k = 0; k < d->len[idx[i]]; k++)
            v->cp[v->n++] = (uint32_t)d->cps[idx[i] * MAX_LEN + k];
    v->n = (int)ex_chars_sort(v->cp, v->n);
    return 0;
}

static int32_t vocab_id(const vocab *v, int32_t cp)
{
    int64_t k = ex_chars_index(v->cp, v->n, (uint32_t)cp);
    return k < 0 ? UNK : (int32_t)k + 2;
}

/* ---- options ---- */

typedef struct opts {
    const char *data, *cell, *checkpoint, *out, *log, *loss_log, *curve, *balance, *plot, *split,
        *init;
    bool bidirectional, residual, layer_norm, ln_gates;
    double forget_bias; /* NAN: as --init makes it */
    int64_t hidden, embed, layers, batch, steps, threads, eval_every, top;
    double lr, clip, val_fraction;
    uint64_t seed;
} opts;

enum { TRAIN = 1, PREDICT = 2, EVAL = 4, EXPORT = 8 };

static int parse_opts(int argc, char **argv, opts *o, int *command)
{
    *o = (opts){.cell = "gru",
                .balance = "weights",
                .split = "all",
                .init = "uniform",
                .forget_bias = NAN,
                .hidden = 128,
                .embed = 64,
                .layers = 1,
                .batch = 64,
                .steps = 3000,
                .eval_every = 1000,
                .top = 3,
                .lr = 3e-3,
                .clip = 1.0,
                .val_fraction = 0.1,
                .seed = 1234};
    const ex_opt table[] = {
        {"--out", EX_STRING, &o->out, "FILE", "where to write the exported model",
         .commands = EXPORT},
        {"--data", EX_STRING, &o->data, "DIR", "one <Label>.txt per class, one example a line",
         .def = "a generated task (four invented languages)", .commands = TRAIN | EVAL},
        {"--cell", EX_CHOICE, &o->cell, "CELL", "recurrent cell", .choices = "gru|lstm|rnn",
         .commands = TRAIN},
        {"--bidirectional", EX_FLAG, &o->bidirectional, NULL,
         "read both ways (the two final states are concatenated)", .commands = TRAIN},
        {"--hidden", EX_INT, &o->hidden, "H", "hidden units", .imin = 1, .imax = 8192,
         .commands = TRAIN},
        {"--embed", EX_INT, &o->embed, "E", "character embedding size", .imin = 1, .imax = 8192,
         .commands = TRAIN},
        {"--layers", EX_INT, &o->layers, "L", "recurrent layers", .imin = 1,
         .imax = TN_RNN_MAX_LAYERS, .commands = TRAIN},
        {"--residual", EX_FLAG, &o->residual, NULL,
         "skip connections between stacked layers (layer l >= 1 adds its input)",
         .commands = TRAIN},
        {"--layer-norm", EX_FLAG, &o->layer_norm, NULL,
         "LayerNorm of every layer's output sequence", .commands = TRAIN},
        {"--ln-gates", EX_FLAG, &o->ln_gates, NULL,
         "layer-norm LSTM (Ba et al. 2016): LayerNorm of the gates' two parts and of c",
         .commands = TRAIN},
        {"--init", EX_CHOICE, &o->init, "HOW",
         "recurrent weights: PyTorch's uniform, or Xavier W_ih and orthogonal W_hh, zero biases",
         .choices = "uniform|xavier-orthogonal", .commands = TRAIN},
        {"--forget-bias", EX_REAL, &o->forget_bias, "X",
         "LSTM: the forget gate's bias starts at X (1 is common)", .dmin = -100, .dmax = 100,
         .def = "as --init makes it", .commands = TRAIN},
        {"--batch", EX_INT, &o->batch, "B", "examples per step", .imin = 1, .imax = 65536,
         .commands = TRAIN},
        {"--steps", EX_INT, &o->steps, "N", "training steps", .imin = 0,
         .imax = INT64_C(1000000000000), .commands = TRAIN},
        {"--lr", EX_REAL, &o->lr, "X", "Adam learning rate", .dmin = 0, .dmin_open = true,
         .dmax = 10, .commands = TRAIN},
        {"--clip", EX_REAL, &o->clip, "X", "clip the global gradient norm to X (0: off)", .dmin = 0,
         .dmax = 1e6, .commands = TRAIN},
        {"--balance", EX_CHOICE, &o->balance, "HOW",
         "class imbalance: weights = loss weight n/(C*n_c) per class (sklearn's 'balanced'), "
         "sample = draw classes uniformly, none",
         .choices = "weights|sample|none", .commands = TRAIN},
        {"--val-fraction", EX_REAL, &o->val_fraction, "F",
         "fraction of each class held out for validation (fixed-seed, stratified)", .dmin = 0,
         .dmax = 0.9, .commands = TRAIN | EVAL},
        {"--seed", EX_UINT64, &o->seed, "S", "random seed (weights and batches; not the split)",
         .commands = TRAIN},
        {"--threads", EX_INT, &o->threads, "N", "threads for OpenMP loops and BLIS", .imin = 1,
         .imax = 1024, .def = EX_THREADS_DEFAULT},
        {"--checkpoint", EX_STRING, &o->checkpoint, "PATH",
         "safetensors checkpoint to write (train) or read", .def = "train: none; else required"},
        {"--eval-every", EX_INT, &o->eval_every, "N",
         "validation accuracy and loss every N steps and at the end (0: only at the end)",
         .imin = 0, .imax = INT64_C(1000000000000), .commands = TRAIN},
        EX_TRAIN_LOG_OPTS(&o->log, &o->loss_log, &o->curve, TRAIN),
        {"--top", EX_INT, &o->top, "K",
         "labels (with probabilities) printed per example (at most all the labels)", .imin = 1,
         .imax = MAX_CLASSES, .commands = PREDICT},
        {"--split", EX_CHOICE, &o->split, "WHICH",
         "evaluate every example, or only the validation split that train held out (same "
         "--val-fraction)",
         .choices = "all|val", .commands = EVAL},
        {"--plot", EX_STRING, &o->plot, "FILE.png",
         "draw the confusion matrix (rows normalised) as an 800x800 heat map", .commands = EVAL},
    };
    static const char *const commands[] = {"train", "predict", "eval", "export", NULL};
    static const char *const command_help[] = {
        "train a classifier (and write --checkpoint)",
        "classify standard input, one example a line: label<TAB>label1 p1<TAB>label2 p2 ...",
        "print accuracy and the confusion matrix of --checkpoint on --data",
        "write --checkpoint's model alone to --out, as the PyTorch module's state_dict "
        "(tools/torch_models.py)",
    };
    const ex_spec spec = {
        .prog = PROG,
        .summary = "character-level sequence classifier (embedding -> tn_rnn -> Linear)",
        .commands = commands,
        .command_help = command_help,
        .opts = table,
        .n_opts = (int)(sizeof table / sizeof table[0]),
        .notes = "Class imbalance (--balance weights, the default): class c weighs n/(C*n_c) in\n"
                 "the cross-entropy (n training examples, n_c of class c), as PyTorch's\n"
                 "cross_entropy(weight=...). Data: data/names in the repository (surnames of\n"
                 "18 languages; see data/README.md). Examples are cut to their first\n"
                 "64 characters; an empty line given to predict reads as one unknown one.\n",
    };
    return ex_parse(&spec, argc, argv, command);
}

/* ---- model and checkpoints ---- */

typedef struct model {
    tn_params ps;
    tn_embedding emb;
    tn_rnn rnn;
    tn_linear head;
    char **labels; /* [C] owned */
    int C;
    vocab v;
    const char *cell;
    bool bidirectional, residual, layer_norm, ln_gates;
    const char *init;   /* a new model's (not in checkpoints) */
    double forget_bias; /* a new model's; NAN: as init makes it */
    int64_t hidden, embed, layers;
} model;

static void model_free(model *m)
{
    tn_params_free(&m->ps);
    for (int c = 0; c < m->C; c++)
        free(m->labels[c]);
    free(m->labels);
    free(m->v.cp);
    memset(m, 0, sizeof *m);
}

static int model_build(model *m, uint64_t seed)
{
    tn_rng r;
    tn_rng_seed(&r, seed);
    tn_params_init(&m->ps);
    int D = m->bidirectional ? 2 : 1;
    tn_rnn_opts ro = tn_rnn_defaults();
    ro.cell = ex_cell(m->cell), ro.input_size = m->embed, ro.hidden = m->hidden;
    ro.layers = (int)m->layers, ro.bidirectional = m->bidirectional;
    ro.residual = m->residual, ro.layer_norm = m->layer_norm, ro.ln_gates = m->ln_gates;
    ro.init = m->init && strcmp(m->init, "xavier-orthogonal") == 0 ? TN_RNN_INIT_XAVIER_ORTHOGONAL
                                                                   : TN_RNN_INIT_UNIFORM;
    ro.set_forget_bias = !isnan(m->forget_bias), ro.forget_bias = m->forget_bias;
    if (tn_embedding_init(&m->emb, &m->ps, "embed", m->v.n + 2, m->embed, PAD, TN_F32, &r) ||
        tn_rnn_init_ex(&m->rnn, &m->ps, "rnn", &ro, TN_F32, &r) ||
        tn_linear_init(&m->head, &m->ps, "head", D * m->hidden, m->C, true, TN_F32, &r)) {
        fprintf(stderr, PROG ": %s\n", tn_last_error());
        return -1;
    }
    return 0;
}

/* The head's input [B, D*H]: the last layer's final state of each
 * example (both directions); NULL on error (the tape has it). */
static tn_tensor *model_features(tn_tape *tp, const model *m, tn_tensor *ids, const int32_t *len)
{
    int64_t B = ids->shape[0], D = m->bidirectional ? 2 : 1, L = m->layers;
    tn_rnn_out out;
    if (tn_rnn_forward(tp, &m->rnn, tn_embedding_forward(tp, &m->emb, ids), NULL, NULL, len,
                       &out) != TN_OK)
        return NULL;
    /* h_n [L*D, B, H]: the last layer's D rows -> [B, D*H] (forward first,
     * as torch.cat([h_n[-2], h_n[-1]], 1)) */
    tn_tensor *last = tn_narrow(tp, out.h_n, 0, (L - 1) * D, D);
    return tn_reshape(tp, tn_transpose(tp, last, 0, 1), 2, (int64_t[]){B, D * m->hidden});
}

/* logits [B, C] of ids [B, T] with lengths [B]. NULL on error (tape). */
static tn_tensor *model_logits(tn_tape *tp, const model *m, tn_tensor *ids, const int32_t *len)
{
    return tn_linear_forward(tp, &m->head, model_features(tp, m, ids, len));
}

static char *join_lines(char *const *s, int n)
{
    size_t total = 1;
    for (int i = 0; i < n; i++)
        total += strlen(s[i]) + 1;
    char *out = malloc(total), *p = out;
    for (int i = 0; out && i < n; i++) {
        size_t l = strlen(s[i]);
        memcpy(p, s[i], l);
        p += l;
        *p++ = '\n';
    }
    if (out)
        *p = '\0';
    return out;
}

static int model_save(const char *path, const model *m, const opts *o, int64_t step)
{
    tn_meta meta;
    tn_meta_init(&meta);
    char *labels = join_lines(m->labels, m->C);
    char *chars = malloc((size_t)m->v.n * 4 + 1);
    size_t k = 0;
    for (int i = 0; chars && i < m->v.n; i++)
        k += (size_t)ex_utf8_encode(m->v.cp[i], chars + k);
    if (chars)
        chars[k] = '\0';
    tn_meta_set(&meta, "format", "classify 1");
    tn_meta_set(&meta, "cell", m->cell);
    tn_meta_set(&meta, "bidirectional", m->bidirectional ? "1" : "0");
    tn_meta_set(&meta, "residual", m->residual ? "1" : "0");
    tn_meta_set(&meta, "layer_norm", m->layer_norm ? "1" : "0");
    tn_meta_set(&meta, "ln_gates", m->ln_gates ? "1" : "0");
    tn_meta_set_int(&meta, "hidden", m->hidden);
    tn_meta_set_int(&meta, "embed", m->embed);
    tn_meta_set_int(&meta, "layers", m->layers);
    tn_meta_set_int(&meta, "step", step);
    tn_meta_set(&meta, "balance", o->balance);
    tn_status s = labels && chars ? tn_meta_set(&meta, "labels", labels) : TN_ERR_MEMORY;
    if (s == TN_OK)
        s = tn_meta_set(&meta, "chars", chars);
    tn_params *sets[1] = {(tn_params *)&m->ps};
    if (s == TN_OK)
        s = tn_save(path, sets, 1, &meta);
    if (s != TN_OK)
        fprintf(stderr, PROG ": %s\n", tn_last_error());
    free(labels), free(chars);
    tn_meta_free(&meta);
    return s == TN_OK ? 0 : -1;
}

/* Split s (a checkpoint's labels, of path) at newlines into m->labels.
 * Returns 0 or -1; a label that is unusable (label_problem) or repeated is
 * refused with a message (predict's answer would be ambiguous). */
static int labels_split(model *m, const char *s, const char *path)
{
    m->C = 0;
    int cap = 0;
    for (const char *p = s; *p;) {
        const char *e = strchr(p, '\n');
        size_t l = e ? (size_t)(e - p) : strlen(p), at;
        if (l == 0 || m->C == MAX_CLASSES)
            return -1;
        const char *why = label_problem(p, l, &at);
        for (int c = 0; !why && c < m->C; c++)
            if (strlen(m->labels[c]) == l && memcmp(m->labels[c], p, l) == 0)
                why = "twice";
        if (why) {
            fprintf(stderr, PROG ": --checkpoint %s: label %.*s %s%s\n", path, (int)l, p,
                    strcmp(why, "twice") ? "has a " : "", why);
            return -1;
        }
        if (m->C == cap) {
            cap = cap ? 2 * cap : 32;
            char **nl = realloc(m->labels, sizeof *nl * (size_t)cap);
            if (!nl)
                return -1;
            m->labels = nl;
        }
        if (!(m->labels[m->C] = strndup(p, l)))
            return -1;
        m->C++;
        p += l + (e ? 1 : 0);
    }
    return m->C >= 2 ? 0 : -1;
}

static int model_load(const char *path, model *m)
{
    memset(m, 0, sizeof *m);
    tn_meta meta;
    tn_meta_init(&meta);
    int rc = -1;
    static const char *const keys[3] = {"hidden", "embed", "layers"};
    int64_t *const vals[3] = {&m->hidden, &m->embed, &m->layers};
    if (ex_checkpoint_ints(PROG, path, &meta, keys, vals, 3))
        goto done;
    const char *fmt = tn_meta_get(&meta, "format"), *cell = tn_meta_get(&meta, "cell");
    const char *bi = tn_meta_get(&meta, "bidirectional"), *labels = tn_meta_get(&meta, "labels");
    const char *chars = tn_meta_get(&meta, "chars");
    static const char *const cells[3] = {"gru", "lstm", "rnn"};
    for (int k = 0; cell && k < 3; k++)
        if (strcmp(cell, cells[k]) == 0)
            m->cell = cells[k];
    if (!fmt || strcmp(fmt, "classify 1") || !m->cell || !bi || !labels || !chars ||
        m->hidden < 1 || m->hidden > 8192 || m->embed < 1 || m->embed > 8192 || m->layers < 1 ||
        m->layers > TN_RNN_MAX_LAYERS || labels_split(m, labels, path) ||
        ex_utf8_invalid_at((const unsigned char *)chars, strlen(chars)) >= 0) {
        fprintf(stderr,
                PROG ": --checkpoint %s: not a classify checkpoint (bad or missing "
                     "format, cell, sizes, labels or chars)\n",
                path);
        goto done;
    }
    m->bidirectional = strcmp(bi, "1") == 0;
    /* absent in checkpoints older than the options: plain stacked layers */
    const char *res = tn_meta_get(&meta, "residual"), *ln = tn_meta_get(&meta, "layer_norm");
    m->residual = res && strcmp(res, "1") == 0;
    m->layer_norm = ln && strcmp(ln, "1") == 0;
    const char *lg = tn_meta_get(&meta, "ln_gates");
    m->ln_gates = lg && strcmp(lg, "1") == 0;
    m->forget_bias = NAN;
    size_t n = strlen(chars), at = 0;
    m->v.cp = malloc(sizeof *m->v.cp * (n + 1));
    if (!m->v.cp)
        goto done;
    while (at < n) {
        uint32_t cp = ex_utf8_next((const unsigned char *)chars, n, &at);
        if (m->v.n && cp <= m->v.cp[m->v.n - 1]) {
            fprintf(stderr, PROG ": --checkpoint %s: chars not in ascending order\n", path);
            goto done;
        }
        m->v.cp[m->v.n++] = cp;
    }
    /* the sizes against the file's tensors before the model is built from
     * them: the embedding, the first input and last recurrent weights, the
     * head */
    int64_t G = tn_cell_gates(ex_cell(m->cell)), H = m->hidden;
    char hh[32], sizes[160];
    snprintf(hh, sizeof hh, "rnn.weight_hh_l%d", (int)m->layers - 1);
    snprintf(sizes, sizeof sizes,
             "%d labels, %d chars, embed %" PRId64 ", hidden %" PRId64 ", layers %" PRId64, m->C,
             m->v.n, m->embed, H, m->layers);
    ex_shape want[4] = {{"embed.weight", m->v.n + 2, m->embed},
                        {"rnn.weight_ih_l0", G * H, m->embed},
                        {hh, G * H, H},
                        {"head.weight", m->C, (m->bidirectional ? 2 : 1) * H}};
    if (ex_check_shapes(PROG, path, sizes, want, 4) == 0 && model_build(m, 0) == 0)
        rc = ex_load_params(PROG, path, &m->ps);
done:
    tn_meta_free(&meta);
    if (rc)
        model_free(m);
    return rc;
}

/* ---- batches and evaluation ---- */

/* ids [B, T] (T: the longest of the batch; PAD after each example) and
 * targets [B] of examples idx[0..B) of d; tape tensors of tp (valid until
 * its next reset: a training step allocates nothing). */
static void make_batch(tn_tape *tp, const model *m, const dataset *d, const int64_t *idx, int64_t B,
                       tn_tensor **ids, tn_tensor **tg, int32_t *len)
{
    int64_t T = 1;
    for (int64_t b = 0; b < B; b++)
        T = d->len[idx[b]] > T ? d->len[idx[b]] : T;
    *ids = tn_tape_tensor(tp, TN_I32, 2, (int64_t[]){B, T});
    *tg = tn_tape_tensor(tp, TN_I32, 1, &B);
    if (!*ids || !*tg)
        return;
    int32_t *p = (*ids)->data, *t = (*tg)->data;
    for (int64_t b = 0; b < B; b++) {
        const int32_t *cp = d->cps + idx[b] * MAX_LEN;
        len[b] = d->len[idx[b]];
        for (int64_t k = 0; k < T; k++)
            p[b * T + k] = k < len[b] ? vocab_id(&m->v, cp[k]) : PAD;
        t[b] = d->label[idx[b]];
    }
}

typedef struct scores {
    double loss;     /* mean cross-entropy (unweighted) */
    double accuracy; /* fraction right */
    double balanced; /* mean over classes of the fraction right (classes seen) */
} scores;

/* Scores of the model on examples idx[0..n) of d whose labels are the
 * model's label ids (lab: d's label -> model's, NULL for the same);
 * confusion [C x C] (true row, predicted column) is filled when not NULL.
 * Returns 0, or -1 (message printed, starting with `what`) on an error or
 * a loss that is not finite (a broken model: its scores would mean
 * nothing). */
static int evaluate(tn_tape *tp, const model *m, const dataset *d, const int *lab,
                    const int64_t *idx, int64_t n, const char *what, scores *sc, int64_t *confusion)
{
    bool train = tn_tape_training(tp), grad = tn_tape_set_grad(tp, false);
    tn_tape_set_training(tp, false);
    int C = m->C;
    int64_t *conf = confusion ? confusion : calloc((size_t)C * (size_t)C, sizeof *conf);
    int64_t *bi = malloc(sizeof *bi * EVAL_BATCH);
    int32_t *len = malloc(sizeof *len * EVAL_BATCH);
    double *lg = malloc(sizeof *lg * (size_t)EVAL_BATCH * (size_t)C), loss = 0;
    int rc = conf && bi && len && lg ? 0 : -1;
    if (confusion)
        memset(conf, 0, sizeof *conf * (size_t)C * (size_t)C);
    for (int64_t i0 = 0; rc == 0 && i0 < n; i0 += EVAL_BATCH) {
        int64_t B = n - i0 < EVAL_BATCH ? n - i0 : EVAL_BATCH;
        memcpy(bi, idx + i0, sizeof *bi * (size_t)B);
        tn_tape_reset(tp);
        tn_tensor *ids, *tg, *logits = NULL;
        make_batch(tp, m, d, bi, B, &ids, &tg, len);
        for (int64_t b = 0; tg && lab && b < B; b++)
            ((int32_t *)tg->data)[b] = lab[((int32_t *)tg->data)[b]];
        if (ids && tg)
            logits = model_logits(tp, m, ids, len);
        tn_tensor *l = logits ? tn_cross_entropy(tp, logits, tg, -1, TN_REDUCE_SUM) : NULL;
        if (!l) {
            fprintf(stderr, PROG ": %s: %s\n", what, tn_last_error());
            rc = -1;
            break;
        }
        if (!isfinite(tn_tensor_get(l, 0))) {
            fprintf(stderr,
                    PROG ": %s: the loss of examples %" PRId64 "..%" PRId64 " is %g: the "
                         "model's output is not finite\n",
                    what, i0 + 1, i0 + B, tn_tensor_get(l, 0));
            rc = -1;
            break;
        }
        loss += tn_tensor_get(l, 0);
        tn_tensor_to_double(logits, lg);
        for (int64_t b = 0; b < B; b++) {
            int best = 0;
            for (int c = 1; c < C; c++)
                if (lg[b * C + c] > lg[b * C + best])
                    best = c;
            conf[(int64_t)((int32_t *)tg->data)[b] * C + best]++;
        }
    }
    if (rc == 0) {
        int64_t right = 0, seen = 0;
        double recall = 0;
        for (int c = 0; c < C; c++) {
            int64_t row = 0;
            for (int k = 0; k < C; k++)
                row += conf[(int64_t)c * C + k];
            right += conf[(int64_t)c * C + c];
            if (row) {
                recall += (double)conf[(int64_t)c * C + c] / (double)row;
                seen++;
            }
        }
        sc->loss = n ? loss / (double)n : NAN;
        sc->accuracy = n ? (double)right / (double)n : NAN;
        sc->balanced = seen ? recall / (double)seen : NAN;
    }
    if (!confusion)
        free(conf);
    free(bi), free(len), free(lg);
    tn_tape_reset(tp);
    tn_tape_set_training(tp, train);
    tn_tape_set_grad(tp, grad);
    return rc;
}

/* The data of --data, or the generated task. */
static int read_data(const opts *o, dataset *d)
{
    if (o->data)
        return dataset_read_dir(o->data, d);
    if (dataset_generate(d)) {
        fprintf(stderr, PROG ": out of memory\n");
        dataset_free(d);
        return -1;
    }
    return 0;
}

/* ---- train ---- */

/* A training run's state for the driver's hooks (train.h). */
typedef struct class_run {
    const model *m;
    const dataset *d;
    const opts *o;
    const int64_t *tr, *va; /* the training and validation examples */
    int64_t ntr, nva;
    int64_t *const *cls_idx; /* per class its training examples (--balance sample) */
    const int64_t *cls_count;
    tn_tensor *weight; /* the class weights, or NULL (unweighted) */
    bool sampled;
    int64_t *idx; /* the global batch's examples [B], this rank's lengths */
    int32_t *len;
    int64_t r0, b; /* this rank's rows of the global batch */
    tn_rng rng;    /* the batches (the same on every rank) */
} class_run;

/* A batch of B training examples drawn with replacement (from a uniformly
 * drawn class with --balance sample) and its weighted loss. */
static tn_tensor *class_forward(void *ctx, tn_tape *tp, int64_t step)
{
    (void)step;
    class_run *r = ctx;
    int64_t B = r->o->batch;
    for (int64_t b = 0; b < B; b++) {
        if (r->sampled) {
            int c = (int)(tn_rng_next(&r->rng) % (uint64_t)r->m->C);
            r->idx[b] = r->cls_idx[c][tn_rng_next(&r->rng) % (uint64_t)r->cls_count[c]];
        } else {
            r->idx[b] = r->tr[tn_rng_next(&r->rng) % (uint64_t)r->ntr];
        }
    }
    tn_tensor *ids, *tg;
    make_batch(tp, r->m, r->d, r->idx + r->r0, r->b, &ids, &tg, r->len);
    tn_tensor *feat = ids && tg ? model_features(tp, r->m, ids, r->len) : NULL;
    return feat ? tn_linear_cross_entropy(tp, feat, r->m->head.weight, r->m->head.bias, tg,
                                          r->weight, -1, 0.0, TN_REDUCE_MEAN)
                : NULL;
}

static int class_evaluate(void *ctx, tn_tape *tp, double *values)
{
    class_run *r = ctx;
    scores sc;
    if (evaluate(tp, r->m, r->d, NULL, r->va, r->nva, "validation", &sc, NULL))
        return -1;
    values[0] = sc.loss, values[1] = sc.accuracy, values[2] = sc.balanced;
    return 0;
}

static int class_save(void *ctx, tn_tape *tp, int64_t step)
{
    (void)tp;
    class_run *r = ctx;
    /* rank 0 writes the file */
    return ex_train_agree(ex_dist_rank() == 0 ? model_save(r->o->checkpoint, r->m, r->o, step) : 0);
}

static int cmd_train(const opts *o)
{
    if (ex_train_check_outputs(PROG, o->checkpoint, o->log, o->loss_log, o->curve))
        return 2;
    dataset d;
    if (read_data(o, &d))
        return 1;
    int64_t *tr = NULL, *va = NULL, ntr, nva;
    model m = {0};
    tn_tape *tp = NULL;
    tn_optim *opt = NULL;
    tn_tensor *weight = NULL;
    int64_t *cls_count = calloc((size_t)d.C, sizeof *cls_count), *idx = NULL;
    int64_t **cls_idx = calloc((size_t)d.C, sizeof *cls_idx);
    int32_t *len = NULL;
    int rc = 1;
    if (!cls_count || !cls_idx || dataset_split(&d, o->val_fraction, &tr, &ntr, &va, &nva)) {
        fprintf(stderr, PROG ": out of memory\n");
        goto done;
    }
    for (int64_t i = 0; i < ntr; i++)
        cls_count[d.label[tr[i]]]++;
    for (int c = 0; c < d.C; c++)
        if (cls_count[c] == 0) {
            fprintf(stderr, PROG ": class %s has no training examples (lower --val-fraction)\n",
                    d.labels[c]);
            goto done;
        }
    /* the model: labels and vocabulary of the training split */
    m.labels = d.labels, m.C = d.C;
    d.labels = NULL, d.C = 0;
    m.cell = o->cell, m.bidirectional = o->bidirectional;
    m.residual = o->residual, m.layer_norm = o->layer_norm, m.ln_gates = o->ln_gates;
    m.init = o->init, m.forget_bias = o->forget_bias;
    m.hidden = o->hidden, m.embed = o->embed, m.layers = o->layers;
    if (vocab_build(&m.v, &d, tr, ntr)) {
        fprintf(stderr, PROG ": out of memory\n");
        goto done;
    }
    if (model_build(&m, o->seed))
        goto done;
    tn_adam_opts ao = tn_adam_defaults();
    ao.lr = o->lr;
    opt = tn_optim_adam(&m.ps, &ao);
    tp = tn_tape_new();
    /* class weights n / (C * n_c) */
    weight = tn_tensor_new(TN_F32, 1, (int64_t[]){m.C});
    for (int c = 0; weight && c < m.C; c++)
        tn_tensor_set(weight, c, (double)ntr / ((double)m.C * (double)cls_count[c]));
    /* per class, its training examples (for --balance sample) */
    for (int c = 0; c < m.C; c++) {
        cls_idx[c] = malloc(sizeof **cls_idx * (size_t)cls_count[c]);
        if (!cls_idx[c]) {
            fprintf(stderr, PROG ": out of memory\n");
            goto done;
        }
        cls_count[c] = 0;
    }
    for (int64_t i = 0; i < ntr; i++) {
        int c = d.label[tr[i]];
        cls_idx[c][cls_count[c]++] = tr[i];
    }
    int64_t B = o->batch, r0, b;
    if (ex_train_split(PROG, B, ntr, &r0, &b) || ex_dist_attach(&m.ps))
        goto done;
    idx = malloc(sizeof *idx * (size_t)B);
    len = malloc(sizeof *len * (size_t)B);
    if (!opt || !tp || !weight || !idx || !len) {
        fprintf(stderr, PROG ": %s\n", tn_last_error()[0] ? tn_last_error() : "out of memory");
        goto done;
    }
    if (ex_dist_rank() == 0)
        fprintf(stderr,
                PROG ": %s%s, H=%" PRId64 " E=%" PRId64 " L=%" PRId64
                     "; %d classes, %d characters; "
                     "%" PRId64 " train / %" PRId64 " val examples; balance %s; params %" PRId64
                     "; %d threads\n",
                o->cell, o->bidirectional ? " (bidirectional)" : "", o->hidden, o->embed, o->layers,
                m.C, m.v.n, ntr, nva, o->balance, tn_params_numel(&m.ps), tn_num_threads());
    class_run run = {.m = &m,
                     .d = &d,
                     .o = o,
                     .tr = tr,
                     .va = va,
                     .ntr = ntr,
                     .nva = nva,
                     .cls_idx = cls_idx,
                     .cls_count = cls_count,
                     .weight = strcmp(o->balance, "weights") == 0 ? weight : NULL,
                     .sampled = strcmp(o->balance, "sample") == 0,
                     .idx = idx,
                     .len = len,
                     .r0 = r0,
                     .b = b};
    tn_rng_seed(&run.rng, o->seed ^ DATA_SEED_MIX);
    static const ex_col cols[] = {
        {"val_loss", 4}, {"val_accuracy", 4}, {"val_balanced_accuracy", 4}};
    ex_train t = {.prog = PROG,
                  .tp = tp,
                  .ps = &m.ps,
                  .opt = opt,
                  .steps = o->steps,
                  .clip = o->clip,
                  .eval_every = o->eval_every,
                  .log = o->log,
                  .loss_log = o->loss_log,
                  .curve = o->curve,
                  .per_step = (double)B,
                  .unit = "examples",
                  .ctx = &run,
                  .forward = class_forward,
                  .evaluate = nva ? class_evaluate : NULL,
                  .save = o->checkpoint ? class_save : NULL,
                  .cols = cols,
                  .n_cols = 3};
    rc = ex_train_run(&t);
done:
    for (int c = 0; cls_idx && c < m.C; c++)
        free(cls_idx[c]);
    free(cls_idx), free(cls_count), free(idx), free(len), free(tr), free(va);
    tn_tensor_free(weight);
    tn_optim_free(opt);
    tn_tape_free(tp);
    model_free(&m);
    dataset_free(&d);
    return rc;
}

/* ---- predict ---- */

static int cmd_predict(const opts *o)
{
    model m;
    if (model_load(o->checkpoint, &m))
        return 1;
    tn_tape *tp = tn_tape_new();
    tn_tape_set_grad(tp, false);
    tn_tape_set_training(tp, false);
    int C = m.C, K = o->top < C ? (int)o->top : C, rc = 0;
    double *p = malloc(sizeof *p * (size_t)C);
    int *order = malloc(sizeof *order * (size_t)C);
    dataset one = {0};
    int64_t cap = 0, zero = 0, lineno = 0;
    char *line = NULL;
    size_t lcap = 0;
    size_t got;
    for (int r; tp && p && order && (r = ex_read_line(PROG, stdin, &line, &lcap, &got, &lineno));) {
        if (r < 0) {
            rc = 1;
            break;
        }
        one.n = 0;
        if (dataset_add_text(&one, &cap, line, 0) < 0) {
            rc = 1;
            break;
        }
        if (one.n == 0) { /* an empty line: one unknown character */
            if (dataset_add_text(&one, &cap, "\xEF\xBF\xBD", 0) != 1) {
                rc = 1;
                break;
            }
            one.cps[0] = -1;
        }
        tn_tape_reset(tp);
        tn_tensor *ids, *tg;
        int32_t len;
        make_batch(tp, &m, &one, &zero, 1, &ids, &tg, &len);
        tn_tensor *logits = ids ? model_logits(tp, &m, ids, &len) : NULL;
        tn_tensor *prob = logits ? tn_softmax(tp, logits, 1) : NULL;
        if (!prob) {
            fprintf(stderr, PROG ": %s\n", tn_last_error());
            rc = 1;
            break;
        }
        tn_tensor_to_double(prob, p);
        for (int c = 0; c < C && rc == 0; c++)
            if (!isfinite(p[c])) { /* a broken model: its ranking would mean nothing */
                fprintf(stderr,
                        PROG ": --checkpoint %s: standard input line %" PRId64
                             ": the probability of %s is %g: the model's output is not "
                             "finite\n",
                        o->checkpoint, lineno, m.labels[c], p[c]);
                rc = 1;
            }
        if (rc)
            break;
        for (int c = 0; c < C; c++)
            order[c] = c;
        for (int k = 0; k < K; k++) /* partial selection sort: ties keep label order */
            for (int c = k + 1; c < C; c++)
                if (p[order[c]] > p[order[k]]) {
                    int t = order[k];
                    order[k] = order[c], order[c] = t;
                }
        fputs(m.labels[order[0]], stdout);
        for (int k = 0; k < K; k++)
            printf("\t%s %.4f", m.labels[order[k]], p[order[k]]);
        putchar('\n');
    }
    if (!tp || !p || !order) {
        fprintf(stderr, PROG ": out of memory\n");
        rc = 1;
    }
    free(line), free(p), free(order);
    dataset_free(&one);
    tn_tape_free(tp);
    model_free(&m);
    return rc;
}

/* ---- eval ---- */

static int cmd_eval(const opts *o)
{
    if (o->plot && ex_check_output(PROG, "--plot", o->plot))
        return 2;
    model m;
    if (model_load(o->checkpoint, &m))
        return 1;
    dataset d;
    if (read_data(o, &d)) {
        model_free(&m);
        return 1;
    }
    int rc = 1, C = m.C;
    int *lab = malloc(sizeof *lab * (size_t)d.C);
    int64_t *conf = malloc(sizeof *conf * (size_t)C * (size_t)C), *tr = NULL, *va = NULL, ntr, nva;
    double *norm = malloc(sizeof *norm * (size_t)C * (size_t)C);
    tn_tape *tp = tn_tape_new();
    if (!lab || !conf || !norm || !tp || dataset_split(&d, o->val_fraction, &tr, &ntr, &va, &nva)) {
        fprintf(stderr, PROG ": out of memory\n");
        goto done;
    }
    for (int c = 0; c < d.C; c++) {
        lab[c] = -1;
        for (int k = 0; k < C; k++)
            if (strcmp(d.labels[c], m.labels[k]) == 0)
                lab[c] = k;
        if (lab[c] < 0) {
            fprintf(stderr, PROG ": --data: class %s is not one of the checkpoint's %d labels\n",
                    d.labels[c], C);
            goto done;
        }
    }
    int64_t n = d.n;
    const int64_t *idx = va;
    if (strcmp(o->split, "val") == 0) {
        if (nva == 0) {
            fprintf(stderr, PROG ": --split val: no validation examples (--val-fraction %g)\n",
                    o->val_fraction);
            goto done;
        }
        n = nva;
    } else {
        for (int64_t i = 0; i < n; i++)
            tr[i] = i;
        idx = tr;
    }
    scores sc;
    if (evaluate(tp, &m, &d, lab, idx, n, o->checkpoint, &sc, conf))
        goto done;
    printf("accuracy %.4f\nbalanced_accuracy %.4f\nloss %.6f\nexamples %" PRId64 "\n", sc.accuracy,
           sc.balanced, sc.loss, n);
    /* the confusion matrix: rows true labels, columns predicted (numbered
     * as the rows) */
    int w = 5, lw = 5;
    for (int c = 0; c < C; c++) {
        int64_t v = 0;
        for (int k = 0; k < C; k++)
            v = conf[(int64_t)c * C + k] > v ? conf[(int64_t)c * C + k] : v;
        int digits = snprintf(NULL, 0, "%" PRId64, v) + 1;
        w = digits > w ? digits : w;
        int l = (int)strlen(m.labels[c]);
        lw = l > lw ? l : lw;
    }
    printf("confusion (rows: true label, columns: predicted, numbered as the rows)\n");
    printf("%*s %*s", 3, "", lw, "");
    for (int k = 0; k < C; k++)
        printf("%*d", w, k);
    printf("\n");
    for (int c = 0; c < C; c++) {
        int64_t row = 0;
        printf("%3d %-*s", c, lw, m.labels[c]);
        for (int k = 0; k < C; k++) {
            printf("%*" PRId64, w, conf[(int64_t)c * C + k]);
            row += conf[(int64_t)c * C + k];
        }
        printf("\n");
        for (int k = 0; k < C; k++)
            norm[(int64_t)c * C + k] = row ? (double)conf[(int64_t)c * C + k] / (double)row : 0;
    }
    rc = 0;
    if (o->plot &&
        ex_plot_heatmap(PROG, o->plot, norm, C, C, (const char *const *)m.labels,
                        (const char *const *)m.labels,
                        "confusion matrix (rows: true label, normalised; columns: predicted)", 0, 1,
                        800, 800) == PLOT_ERROR)
        rc = 1;
done:
    free(lab), free(conf), free(norm), free(tr), free(va);
    tn_tape_free(tp);
    dataset_free(&d);
    model_free(&m);
    return rc;
}

/* The model of --checkpoint alone (export.h), its parameters named as
 * the PyTorch module's state_dict (tools/torch_models.py); the metadata
 * keeps what classify needs to read it back. */
static int cmd_export(const opts *o)
{
    int rc = ex_export_check(PROG, o->checkpoint, o->out);
    if (rc)
        return rc;
    model m;
    if (model_load(o->checkpoint, &m))
        return 1;
    rc = ex_export_write(PROG, o->checkpoint, o->out, NULL, &m.ps);
    model_free(&m);
    return rc;
}

int main(int argc, char **argv)
{
    opts o;
    int command, rc = parse_opts(argc, argv, &o, &command);
    if (rc != EX_OK)
        return rc == EX_DONE ? 0 : 2;
    if ((command == 1 || command == 2) && !o.checkpoint) {
        fprintf(stderr, PROG ": %s needs --checkpoint\n", command == 1 ? "predict" : "eval");
        return 2;
    }
    if (ex_start(PROG, &argc, &argv, o.threads, command == 0))
        return 1;
    rc = command == 0   ? cmd_train(&o)
         : command == 1 ? cmd_predict(&o)
         : command == 2 ? cmd_eval(&o)
                        : cmd_export(&o);
    ex_stop();
    return rc;
}
