/* examples/apps/translate.c - a sequence-to-sequence translator: an encoder-
 * decoder with attention (tensor/nn.h, tn_seq2seq) trained on sentence
 * pairs, decoded greedily or by beam search, scored by BLEU.
 *
 *   translate train  [--data FILE] [--cell gru|lstm] [--attention bahdanau|luong|general|none]
 *                    [--bidirectional] [--hidden H] [--embed E] [--layers L] [--batch B]
 *                    [--steps N] [--lr X] [--clip X] [--dropout X] [--teacher-forcing P]
 *                    [--max-len N] [--seed S] [--threads N] [--checkpoint PATH]
 *                    [--eval-every N] [--save-every N] [--log CSV] [--resume]
 *   translate sample --checkpoint PATH [--beam K | --temperature X [--top-k K] [--top-p P]
 *                    [--seed S]] [--max-len N]                     (stdin -> stdout)
 *   translate eval   --checkpoint PATH --data FILE [--beam K]     (loss <x> bleu <y>)
 *   translate attention --checkpoint PATH --text "..." --out FILE.png
 *   translate bleu   --ref FILE --hyp FILE                         (bleu <y>)
 *   translate export --checkpoint PATH --out FILE     (the model alone, PyTorch's names)
 *
 * Data: one pair a line, "source<TAB>target[<TAB>anything]". Tokens: the
 * text lowercased (ASCII and Latin-1 letters), the punctuation
 * . , ! ? ; : " ( ) « » ¿ ¡ split off as tokens of their own, then
 * whitespace-separated words (apostrophes and hyphens stay inside words).
 * Pairs with more than --max-len tokens on either side are dropped; a
 * fixed-seed shuffle holds out 5% for validation. Vocabularies (from the
 * training split) start with <pad>, <sos>, <eos>, <unk>. Without --data
 * the program makes its own task: numbers in digits to numbers in words.
 */
#define _POSIX_C_SOURCE 200809L
#include <tensor/tensor.h>

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bleu.h"
#include "cli.h"
#include "export.h"
#include "plot.h"

#include "train.h"
#include "train_dist.h"
#include "translate_model.h"

/* ---- tokens and vocabularies ---- */

static bool is_punct_cp(uint32_t c)
{
    return c < 128 ? strchr(".,!?;:\"()", (int)c) != NULL && c != 0
                   : c == 0xAB || c == 0xBB || c == 0xBF || c == 0xA1; /* « » ¿ ¡ */
}

/* Tokens of text (valid UTF-8) into buf as NUL-separated words; returns
 * their number, at most max (the rest is cut; *more set when there were
 * more). */
static int tokenize(const char *text, char *buf, size_t cap, char **tok, int max, bool *more)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t used = 0, len = strlen(text), at = 0;
    int n = 0;
    bool in_word = false;
    *more = false;
    while (at < len) {
        uint32_t c = ex_utf8_next(s, len, &at);
        if (c < 128)
            c = (uint32_t)tolower((int)c);
        else if (c >= 0xC0 && c <= 0xDE && c != 0xD7)
            c += 0x20; /* Latin-1 capitals */
        bool space = c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == 0xA0 || c == 0x202F;
        bool punct = is_punct_cp(c);
        if (space || punct) {
            if (in_word) {
                buf[used++] = '\0';
                in_word = false;
            }
            if (space)
                continue;
        }
        if (!in_word) {
            if (n == max) {
                *more = true;
                break;
            }
            if (used + 8 > cap)
                break;
            tok[n++] = buf + used;
            in_word = true;
        }
        if (used + 8 > cap)
            break;
        used += (size_t)ex_utf8_encode(c, buf + used);
        if (punct) {
            buf[used++] = '\0';
            in_word = false;
        }
    }
    if (in_word)
        buf[used++] = '\0';
    return n;
}

/* ---- data ---- */

typedef struct pairs {
    int32_t *src, *tgt; /* n x MAX_TOK ids (tgt ends with EOS), PAD after */
    int32_t *slen, *tlen;
    int64_t n;
} pairs;

static void pairs_free(pairs *p)
{
    free(p->src), free(p->tgt), free(p->slen), free(p->tlen);
    memset(p, 0, sizeof *p);
}

static int pairs_push(pairs *p, int64_t *cap)
{
    if (p->n < *cap)
        return 0;
    int64_t c = *cap ? 2 * *cap : 1024;
    int32_t *a = realloc(p->src, sizeof *a * (size_t)(c * MAX_TOK));
    if (a)
        p->src = a;
    int32_t *b = realloc(p->tgt, sizeof *b * (size_t)(c * MAX_TOK));
    if (b)
        p->tgt = b;
    int32_t *d = realloc(p->slen, sizeof *d * (size_t)c);
    if (d)
        p->slen = d;
    int32_t *e = realloc(p->tlen, sizeof *e * (size_t)c);
    if (e)
        p->tlen = e;
    if (!a || !b || !d || !e)
        return -1;
    *cap = c;
    return 0;
}

/* The generated task: n in digits -> n in English words. */
static const char *const ONES[] = {"zero",    "one",     "two",       "three",    "four",
                                   "five",    "six",     "seven",     "eight",    "nine",
                                   "ten",     "eleven",  "twelve",    "thirteen", "fourteen",
                                   "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"};
static const char *const TENS[] = {"",      "",      "twenty",  "thirty", "forty",
                                   "fifty", "sixty", "seventy", "eighty", "ninety"};

static void number_words(int n, char *out, size_t cap)
{
    out[0] = '\0';
    if (n >= 1000) {
        number_words(n / 1000, out, cap);
        strncat(out, " thousand", cap - strlen(out) - 1);
        n %= 1000;
        if (!n)
            return;
        strncat(out, " ", cap - strlen(out) - 1);
    }
    if (n >= 100) {
        strncat(out, ONES[n / 100], cap - strlen(out) - 1);
        strncat(out, " hundred", cap - strlen(out) - 1);
        n %= 100;
        if (!n)
            return;
        strncat(out, " ", cap - strlen(out) - 1);
    }
    if (n >= 20) {
        strncat(out, TENS[n / 10], cap - strlen(out) - 1);
        if (n % 10) {
            strncat(out, " ", cap - strlen(out) - 1);
            strncat(out, ONES[n % 10], cap - strlen(out) - 1);
        }
    } else {
        strncat(out, ONES[n], cap - strlen(out) - 1);
    }
}

/* The generated data as text lines "digits<TAB>words" (malloc'd). */
static char *generated_pairs(int count, uint64_t seed)
{
    size_t cap = (size_t)count * 96, used = 0;
    char *s = malloc(cap);
    if (!s)
        return NULL;
    tn_rng r;
    tn_rng_seed(&r, seed);
    for (int i = 0; i < count; i++) {
        int n = (int)(tn_rng_uniform(&r) * 100000);
        char words[160], digits[16];
        number_words(n, words, sizeof words);
        /* digits one token each: "1 2 3" */
        snprintf(digits, sizeof digits, "%d", n);
        char spaced[40];
        size_t k = 0;
        for (size_t j = 0; digits[j]; j++) {
            if (j)
                spaced[k++] = ' ';
            spaced[k++] = digits[j];
        }
        spaced[k] = '\0';
        int w = snprintf(s + used, cap - used, "%s\t%s\n", spaced, words);
        if (w < 0 || (size_t)w >= cap - used)
            break;
        used += (size_t)w;
    }
    s[used] = '\0';
    return s;
}

/* Every line of text, blank ones included (a final newline ends the last
 * line; it does not start another), as pointers into text, which is split
 * in place; *n gets their number. NULL when out of memory. Blank lines
 * count: bleu pairs its two files' lines by number (strtok skipped them,
 * and so shifted the pairs). */
static char **text_lines(char *text, int64_t *n)
{
    int64_t cap = 1;
    for (const char *c = text; *c; c++)
        cap += *c == '\n';
    char **lines = malloc(sizeof *lines * (size_t)cap);
    *n = 0;
    for (char *l = text; lines && *l;) {
        char *nl = strchr(l, '\n');
        lines[(*n)++] = l;
        if (!nl)
            break;
        *nl = '\0';
        l = nl + 1;
    }
    return lines;
}

/* The lines of text that hold a tab ("src\ttgt[\t...]"), as pointers into
 * text, which is split in place; *n gets their number. NULL when out of
 * memory. */
static char **pair_lines(char *text, int64_t *n)
{
    char **lines = text_lines(text, n);
    int64_t kept = 0;
    for (int64_t i = 0; lines && i < *n; i++)
        if (strchr(lines[i], '\t'))
            lines[kept++] = lines[i];
    *n = kept;
    return lines;
}

/* The source and target tokens of a pair line (into buf/tok; n[0], n[1]
 * their numbers); false when a side is empty or longer than max_len. */
static bool pair_tokens(const char *line, int max_len, char buf[2][4096], char *tok[2][MAX_TOK],
                        int n[2])
{
    char side[2][4096];
    const char *tab = strchr(line, '\t'), *end = strchr(tab + 1, '\t');
    size_t l0 = (size_t)(tab - line), l1 = end ? (size_t)(end - tab - 1) : strlen(tab + 1);
    if (l0 >= sizeof side[0] || l1 >= sizeof side[1])
        return false;
    memcpy(side[0], line, l0), side[0][l0] = '\0';
    memcpy(side[1], tab + 1, l1), side[1][l1] = '\0';
    bool more[2];
    for (int k = 0; k < 2; k++)
        n[k] = tokenize(side[k], buf[k], sizeof buf[k], tok[k], max_len, &more[k]);
    return !more[0] && !more[1] && n[0] >= 1 && n[1] >= 1;
}

/* Pairs from lines[order[i]] (order NULL: lines[i]), i < n, as ids through
 * sv/tv, adding words when grow is set (else unknown words are UNK). Lines
 * with more than max_len tokens on a side are dropped (counted in
 * *dropped). Returns 0, or -1 when out of memory. */
static int pairs_read(char *const *lines, const int64_t *order, int64_t n, pairs *p, ex_words *sv,
                      ex_words *tv, bool grow, int max_len, int64_t *dropped)
{
    memset(p, 0, sizeof *p);
    int64_t cap = 0;
    *dropped = 0;
    static char buf[2][4096];
    char *tok[2][MAX_TOK];
    int len[2];
    for (int64_t i = 0; i < n; i++) {
        if (!pair_tokens(lines[order ? order[i] : i], max_len, buf, tok, len)) {
            (*dropped)++;
            continue;
        }
        if (pairs_push(p, &cap))
            return -1;
        int32_t *ids[2] = {p->src + p->n * MAX_TOK, p->tgt + p->n * MAX_TOK};
        ex_words *v[2] = {sv, tv};
        for (int k = 0; k < 2; k++) {
            for (int j = 0; j < MAX_TOK; j++)
                ids[k][j] = PAD;
            for (int j = 0; j < len[k]; j++) {
                int id = grow ? ex_words_add(v[k], tok[k][j], strlen(tok[k][j]))
                              : ex_words_find(v[k], tok[k][j], strlen(tok[k][j]));
                ids[k][j] = id < 0 ? UNK : id;
            }
        }
        ids[1][len[1]] = EOS;
        p->slen[p->n] = len[0];
        p->tlen[p->n] = len[1] + 1;
        p->n++;
    }
    return 0;
}

/* ---- options ---- */

enum { TRAIN = 1, SAMPLE = 2, EVAL = 4, ATTN = 8, BLEU = 16, EXPORT = 32 };

static int parse_opts(int argc, char **argv, ex_translate_opts *o, int *command)
{
    *o = (ex_translate_opts){.cell = "gru",
                             .attention = "bahdanau",
                             .hidden = 256,
                             .embed = 256,
                             .layers = 1,
                             .batch = 64,
                             .steps = 2000,
                             .max_len = 10,
                             .eval_every = 500,
                             .save_every = 0,
                             .beam = 1,
                             .eval_pairs = 1000,
                             .lr = 1e-3,
                             .clip = 1.0,
                             .dropout = 0.0,
                             .teacher_forcing = 1.0,
                             .seed = 1234,
                             .sample = {.temperature = 0, .top_k = 0, .top_p = 1}};
    const ex_opt table[] = {
        {"--data", EX_STRING, &o->data, "FILE", "pairs, one a line: source<TAB>target",
         .def = "train: a generated task (numbers in digits to words); eval: required",
         .commands = TRAIN | EVAL},
        {"--cell", EX_CHOICE, &o->cell, "CELL", "encoder and decoder cell", .choices = "gru|lstm",
         .commands = TRAIN},
        {"--attention", EX_CHOICE, &o->attention, "KIND", "attention score function",
         .choices = "bahdanau|luong|general|none", .commands = TRAIN},
        {"--bidirectional", EX_FLAG, &o->bidirectional, NULL, "bidirectional encoder",
         .commands = TRAIN},
        {"--hidden", EX_INT, &o->hidden, "H", "hidden units", .imin = 1, .imax = 8192,
         .commands = TRAIN},
        {"--embed", EX_INT, &o->embed, "E", "embedding size", .imin = 1, .imax = 8192,
         .commands = TRAIN},
        {"--layers", EX_INT, &o->layers, "L", "layers of the encoder and of the decoder", .imin = 1,
         .imax = TN_RNN_MAX_LAYERS, .commands = TRAIN},
        {"--batch", EX_INT, &o->batch, "B", "pairs per step", .imin = 1, .imax = 65536,
         .commands = TRAIN},
        {"--steps", EX_INT, &o->steps, "N", "train until this step", .imin = 0,
         .imax = EX_STEPS_MAX, .commands = TRAIN},
        {"--lr", EX_REAL, &o->lr, "X", "Adam learning rate", .dmin = 0, .dmin_open = true,
         .dmax = 10, .commands = TRAIN},
        {"--clip", EX_REAL, &o->clip, "X", "clip the global gradient norm to X (0: off)", .dmin = 0,
         .dmax = 1e6, .commands = TRAIN},
        {"--dropout", EX_REAL, &o->dropout, "X", "dropout", .dmin = 0, .dmax = 1, .dmax_open = true,
         .commands = TRAIN},
        {"--sparse-embed", EX_FLAG, &o->sparse_embed, NULL,
         "sparse embedding gradients: only the batch's rows are cleared, clipped and updated "
         "(SparseAdam; PyTorch's nn.Embedding(sparse=True))",
         .commands = TRAIN},
        {"--teacher-forcing", EX_REAL, &o->teacher_forcing, "P",
         "probability of feeding the gold token at a step (else the model's)", .dmin = 0, .dmax = 1,
         .commands = TRAIN},
        {"--max-len", EX_INT, &o->max_len, "N",
         "longest sentence in tokens (train: longer pairs are dropped; decoding: output limit)",
         .imin = 1, .imax = MAX_TOK - 1, .commands = TRAIN | SAMPLE | ATTN},
        {"--seed", EX_UINT64, &o->seed, "S",
         "random seed (train: weights and batches; the split is fixed; sample: the draws)",
         .commands = TRAIN | SAMPLE},
        {"--threads", EX_INT, &o->threads, "N", "threads for OpenMP loops and BLIS", .imin = 1,
         .imax = 1024, .def = EX_THREADS_DEFAULT},
        {"--checkpoint", EX_STRING, &o->checkpoint, "PATH",
         "safetensors checkpoint to write (train) or read", .def = "train: none; else required",
         .commands = TRAIN | SAMPLE | EVAL | ATTN | EXPORT},
        {"--eval-every", EX_INT, &o->eval_every, "N",
         "validation loss and BLEU every N steps and after the last (0: after the last)", .imin = 0,
         .imax = INT64_C(1000000000000), .commands = TRAIN},
        {"--eval-pairs", EX_INT, &o->eval_pairs, "N", "validation pairs to evaluate", .imin = 1,
         .imax = INT64_C(1000000000), .commands = TRAIN},
        {"--save-every", EX_INT, &o->save_every, "N",
         "write the checkpoint every N steps (0: every --eval-every steps)", .imin = 0,
         .imax = INT64_C(1000000000000), .commands = TRAIN},
        EX_TRAIN_LOG_OPTS(&o->log, &o->loss_log, &o->curve, TRAIN),
        {"--resume", EX_FLAG, &o->resume, NULL, "continue the run saved in --checkpoint",
         .commands = TRAIN},
        {"--beam", EX_INT, &o->beam, "K", "beam width (1: greedy or sampled, see --temperature)",
         .imin = 1, .imax = 256, .commands = SAMPLE | EVAL},
        EX_SAMPLE_OPTS(&o->sample, SAMPLE),
        {"--text", EX_STRING, &o->text, "TEXT", "the sentence to translate", .commands = ATTN},
        {"--out", EX_STRING, &o->out, "FILE",
         "attention: heat map of the attention weights (PNG; CSV when gnuplot is missing); "
         "export: the model",
         .commands = ATTN | EXPORT},
        {"--ref", EX_STRING, &o->ref, "FILE", "reference translations, one a line",
         .commands = BLEU},
        {"--hyp", EX_STRING, &o->hyp, "FILE", "translations to score, one a line",
         .commands = BLEU},
    };
    static const char *const commands[] = {"train", "sample", "eval", "attention",
                                           "bleu",  "export", NULL};
    static const char *const command_help[] = {
        "train a model (and write --checkpoint)",
        "translate standard input, one sentence a line, to standard output",
        "print a checkpoint's loss and BLEU on --data",
        "draw the attention weights of one translation",
        "print the corpus BLEU-4 of --hyp against --ref (same tokens as training)",
        "write --checkpoint's model alone to --out, as the PyTorch module's state_dict "
        "(tools/torch_models.py)",
    };
    const ex_spec spec = {
        .prog = "translate",
        .summary = "sequence-to-sequence translation with attention (tn_seq2seq)",
        .commands = commands,
        .command_help = command_help,
        .opts = table,
        .n_opts = (int)(sizeof table / sizeof table[0]),
        .notes = "Data: data/eng-fra-76k.txt (Tatoeba Project, tatoeba.org, CC-BY 2.0 FR;\n"
                 "see data/README.md). Without --data, train learns to write numbers\n"
                 "in words.\n",
    };
    return ex_parse(&spec, argc, argv, command);
}

/* ---- checkpoints (loading: translate_model.c) ---- */

/* Write the checkpoint of the run; meta holds the ranks' part
 * (ex_train_meta_ranks) and is completed here. */
static int save_run(const char *path, ex_translate_run *r, const ex_translate_opts *o,
                    tn_optim *opt, int64_t step, const tn_rng *data_rng, tn_meta *meta)
{
    char *sv = ex_words_join(&r->sv), *tv = ex_words_join(&r->tv);
    /* the model's options: the library's s2s.* keys (tn_seq2seq_save) */
    tn_meta_set(meta, "format", "translate 2");
    tn_meta_set_int(meta, "max_len", o->max_len);
    tn_meta_set_int(meta, "batch", o->batch);
    tn_meta_set_int(meta, "step", step);
    tn_meta_set(meta, "sparse_embed", o->sparse_embed ? "1" : "0");
    tn_meta_set_rng(meta, "data_rng", data_rng);
    tn_status s = sv && tv ? tn_meta_set(meta, "src_vocab", sv) : TN_ERR_MEMORY;
    if (s == TN_OK)
        s = tn_meta_set(meta, "tgt_vocab", tv);
    tn_params *state = opt ? tn_optim_state(opt) : NULL;
    if (s == TN_OK)
        s = tn_seq2seq_save(path, &r->m, &r->ps, &state, opt ? 1 : 0, meta);
    if (s != TN_OK)
        fprintf(stderr, "translate: %s\n", tn_last_error());
    free(sv), free(tv);
    return s == TN_OK ? 0 : -1;
}

/* ---- training ---- */

/* Copy pairs idx[0..B) into src [B, S] / tgt [B, T] (S, T: the longest
 * of the batch) and lengths. The tensors are tape tensors of tp (valid
 * until its next reset: a training step allocates nothing), or heap
 * tensors when tp is NULL (free them). */
static void make_batch(tn_tape *tp, const pairs *p, const int64_t *idx, int64_t B, tn_tensor **src,
                       tn_tensor **tgt, int32_t *len)
{
    int64_t S = 1, T = 1;
    for (int64_t b = 0; b < B; b++) {
        S = p->slen[idx[b]] > S ? p->slen[idx[b]] : S;
        T = p->tlen[idx[b]] > T ? p->tlen[idx[b]] : T;
    }
    *src = tp ? tn_tape_tensor(tp, TN_I32, 2, (int64_t[]){B, S})
              : tn_tensor_new(TN_I32, 2, (int64_t[]){B, S});
    *tgt = tp ? tn_tape_tensor(tp, TN_I32, 2, (int64_t[]){B, T})
              : tn_tensor_new(TN_I32, 2, (int64_t[]){B, T});
    if (!*src || !*tgt)
        return;
    for (int64_t b = 0; b < B; b++) {
        memcpy((int32_t *)(*src)->data + b * S, p->src + idx[b] * MAX_TOK,
               sizeof(int32_t) * (size_t)S);
        memcpy((int32_t *)(*tgt)->data + b * T, p->tgt + idx[b] * MAX_TOK,
               sizeof(int32_t) * (size_t)T);
        len[b] = p->slen[idx[b]];
    }
}

/* Mean loss (teacher forcing 1, eval mode) and corpus BLEU (decoding with
 * beam k) over pairs [0, n) of p, in batches of B. Returns 0, or -1
 * (message printed, starting with `what`) when the loss or a decoding
 * fails, or the loss is not finite (a broken model: its numbers would mean
 * nothing). */
static int evaluate(ex_translate_run *r, tn_tape *tp, const pairs *p, int64_t n, int64_t B,
                    int beam, int64_t max_len, const char *what, double *loss_out, double *bleu_out)
{
    int rc = 0;
    bool train = tn_tape_training(tp);
    tn_tape_set_training(tp, false);
    double loss = 0;
    int64_t count = 0;
    int32_t **hyp = calloc((size_t)n, sizeof *hyp), *hn = calloc((size_t)n, sizeof *hn);
    const int32_t **ref = calloc((size_t)n, sizeof *ref);
    int32_t *rn = calloc((size_t)n, sizeof *rn), *len = calloc((size_t)B, sizeof *len);
    int32_t *out = calloc((size_t)(B * max_len), sizeof *out),
            *olen = calloc((size_t)B, sizeof *olen);
    double *sc = calloc((size_t)B, sizeof *sc);
    int64_t *idx = calloc((size_t)B, sizeof *idx);
    if (!hyp || !hn || !ref || !rn || !len || !out || !olen || !sc || !idx) {
        fprintf(stderr, "translate: %s: out of memory (%" PRId64 " pairs)\n", what, n);
        rc = -1;
    }
    for (int64_t i0 = 0; rc == 0 && i0 < n; i0 += B) {
        int64_t b = n - i0 < B ? n - i0 : B;
        for (int64_t k = 0; k < b; k++)
            idx[k] = i0 + k;
        tn_tensor *src, *tgt;
        make_batch(NULL, p, idx, b, &src, &tgt, len);
        tn_tape_reset(tp);
        bool g = tn_tape_set_grad(tp, false);
        tn_tensor *l;
        tn_rng rng;
        tn_rng_seed(&rng, 1);
        tn_status s = !src || !tgt ? tn_set_error(TN_ERR_MEMORY, "out of memory")
                                   : tn_seq2seq_loss(tp, &r->m, src, len, tgt, 1.0, &rng, &l);
        if (s == TN_OK && !isfinite(tn_tensor_get(l, 0)))
            s = tn_set_error(TN_ERR_NUMERIC,
                             "the loss of pairs %" PRId64 "..%" PRId64 " is %g: "
                             "the model's output is not finite",
                             i0 + 1, i0 + b, tn_tensor_get(l, 0));
        if (s == TN_OK) {
            int64_t tokens = 0;
            for (int64_t k = 0; k < b; k++)
                tokens += p->tlen[i0 + k];
            loss += tn_tensor_get(l, 0) * (double)tokens;
            count += tokens;
        }
        tn_tape_set_grad(tp, g);
        tn_tape_reset(tp);
        if (s == TN_OK)
            s = tn_seq2seq_beam(tp, &r->m, src, len, beam, 1.0, max_len, out, olen, sc);
        if (s != TN_OK) {
            fprintf(stderr, "translate: %s: %s\n", what, tn_last_error());
            rc = -1;
        }
        if (s == TN_OK)
            for (int64_t k = 0; k < b; k++) {
                hyp[i0 + k] = malloc(sizeof(int32_t) * (size_t)(olen[k] + 1));
                if (hyp[i0 + k])
                    memcpy(hyp[i0 + k], out + k * max_len, sizeof(int32_t) * (size_t)olen[k]);
                hn[i0 + k] = hyp[i0 + k] ? olen[k] : 0;
                ref[i0 + k] = p->tgt + (i0 + k) * MAX_TOK;
                rn[i0 + k] = p->tlen[i0 + k] - 1; /* without the eos */
            }
        tn_tensor_free(src);
        tn_tensor_free(tgt);
    }
    *loss_out = count ? loss / (double)count : NAN;
    bool ok = rc == 0;
    for (int64_t i = 0; ok && i < n; i++)
        ok = ref[i] != NULL;
    *bleu_out = ok ? 100 * ex_bleu(n, (const int32_t *const *)hyp, hn, ref, rn) : NAN;
    if (ok && isnan(*bleu_out)) {
        fprintf(stderr, "translate: %s: BLEU: out of memory\n", what);
        rc = -1;
    }
    for (int64_t i = 0; hyp && i < n; i++)
        free(hyp[i]);
    free(hyp), free(hn), free(ref), free(rn), free(len), free(out), free(olen), free(sc), free(idx);
    tn_tape_reset(tp);
    tn_tape_set_training(tp, train);
    return rc;
}

/* The text of an input file (valid UTF-8, no NUL byte) or NULL (message
 * printed). */
static char *read_all(const char *opt, const char *path)
{
    char *s;
    size_t n;
    if (ex_read_text("translate", opt, path, "utf-8", &s, &n))
        return NULL;
    if (strlen(s) != n) {
        fprintf(stderr, "translate: %s %s: a NUL byte at offset %zu\n", opt, path, strlen(s));
        free(s);
        return NULL;
    }
    return s;
}

/* A training run for the driver's hooks (train.h). */
typedef struct tr_run {
    ex_translate_run *r;
    const ex_translate_opts *o;
    tn_optim *opt;
    tn_rng data_rng; /* batches (and teacher forcing's coin), saved in checkpoints */
    pairs trn, val;
    int64_t *idx;   /* [B]: the global batch's pairs */
    int32_t *len;   /* this rank's source lengths */
    int64_t r0, b;  /* this rank's rows of the global batch */
    int64_t n_eval; /* validation pairs evaluated */
} tr_run;

static tn_tensor *tr_forward(void *ctx, tn_tape *tp, int64_t step)
{
    (void)step;
    tr_run *t = ctx;
    int64_t B = t->o->batch;
    for (int64_t b = 0; b < B; b++)
        t->idx[b] = (int64_t)(tn_rng_next(&t->data_rng) % (uint64_t)t->trn.n);
    /* teacher forcing's coins: their number depends on the rank's rows, so
     * they come from a generator of their own, seeded from data_rng (which
     * then stays the same on every rank) */
    tn_rng coins = t->data_rng;
    if (t->o->teacher_forcing < 1)
        tn_rng_seed(&coins, tn_rng_next(&t->data_rng));
    tn_tensor *src, *tgt, *loss = NULL;
    make_batch(tp, &t->trn, t->idx + t->r0, t->b, &src, &tgt, t->len);
    if (tn_seq2seq_loss(tp, &t->r->m, src, t->len, tgt, t->o->teacher_forcing, &coins, &loss) !=
        TN_OK)
        return NULL;
    return loss;
}

static int tr_evaluate(void *ctx, tn_tape *tp, double *values)
{
    tr_run *t = ctx;
    return evaluate(t->r, tp, &t->val, t->n_eval, t->o->batch, 1, t->o->max_len, "validation",
                    &values[0], &values[1]);
}

static int tr_save(void *ctx, tn_tape *tp, int64_t step)
{
    tr_run *t = ctx;
    tn_meta meta;
    tn_meta_init(&meta);
    int rc = ex_train_meta_ranks(&meta, tp); /* collective */
    if (rc == 0 && ex_dist_rank() == 0)      /* rank 0 writes the file */
        rc = save_run(t->o->checkpoint, t->r, t->o, t->opt, step, &t->data_rng, &meta);
    tn_meta_free(&meta);
    return ex_train_agree(rc);
}

/* Resume: the model, optimizer and training state of --checkpoint into
 * r, *opt, *step, the generators. Returns 0 or -1 (message printed;
 * nothing to free). */
static int resume_run(ex_translate_opts *o, ex_translate_run *r, tn_optim **opt, int64_t *step,
                      tn_rng *data_rng, tn_tape *tp)
{
    tn_meta meta;
    tn_meta_init(&meta);
    int rc = ex_translate_load_run(o->checkpoint, r, o, &meta, opt);
    bool loaded = rc == 0;
    if (rc == 0 &&
        (tn_meta_get_int(&meta, "step", step) || tn_meta_get_rng(&meta, "data_rng", data_rng))) {
        fprintf(stderr, "translate: %s has no training state to resume\n", o->checkpoint);
        rc = -1;
    } else if (rc == 0 && (ex_check_range("translate", o->checkpoint, "step", *step, 0,
                                          EX_STEPS_MAX, "the steps --steps allows") ||
                           ex_train_resume_ranks("translate", o->checkpoint, &meta, tp))) {
        rc = -1;
    }
    if (rc && loaded) { /* loaded, then refused: ex_translate_load_run freed nothing */
        tn_optim_free(*opt);
        *opt = NULL;
        ex_translate_run_free(r);
    }
    tn_meta_free(&meta);
    if (rc == 0)
        tn_optim_set_step(*opt, *step);
    return rc;
}

/* The usable pairs of text (at most --max-len tokens a side), split by a
 * fixed-seed shuffle: 5% validation. A new run's vocabularies come from
 * the training pairs only (grow); a resumed run's are the checkpoint's.
 * Returns 0 or -1 (message printed; t->trn and t->val to free either
 * way). */
static int split_pairs(char *text, const ex_translate_opts *o, ex_translate_run *r, bool grow,
                       tr_run *t)
{
    int64_t nl, n = 0, dropped = 0;
    char **lines = pair_lines(text, &nl);
    static char buf[2][4096];
    char *tok[2][MAX_TOK];
    int len2[2];
    for (int64_t i = 0; lines && i < nl; i++)
        if (pair_tokens(lines[i], (int)o->max_len, buf, tok, len2))
            lines[n++] = lines[i];
        else
            dropped++;
    int64_t n_val = n / 20, n_train = n - n_val;
    if (!lines || n_train < 1 || n_val < 1) {
        fprintf(stderr,
                "translate: %" PRId64 " usable pairs (%" PRId64 " dropped for --max-len "
                "%" PRId64 "): too few to train and validate\n",
                n, dropped, o->max_len);
        free(lines);
        return -1;
    }
    int64_t *perm = malloc(sizeof *perm * (size_t)n);
    int rc = perm ? 0 : -1;
    tn_rng split;
    tn_rng_seed(&split, 20240);
    for (int64_t i = 0; perm && i < n; i++)
        perm[i] = i;
    for (int64_t i = n - 1; perm && i > 0; i--) {
        int64_t j = (int64_t)(tn_rng_next(&split) % (uint64_t)(i + 1));
        int64_t k = perm[i];
        perm[i] = perm[j], perm[j] = k;
    }
    if (rc == 0 && (pairs_read(lines, perm, n_train, &t->trn, &r->sv, &r->tv, grow, (int)o->max_len,
                               &dropped) ||
                    pairs_read(lines, perm + n_train, n_val, &t->val, &r->sv, &r->tv, false,
                               (int)o->max_len, &dropped)))
        rc = -1;
    if (rc)
        fprintf(stderr, "translate: out of memory reading the pairs\n");
    free(perm);
    free(lines);
    return rc;
}

static int cmd_train(ex_translate_opts *o)
{
    if ((o->checkpoint && ex_check_output("translate", "--checkpoint", o->checkpoint)) ||
        (o->log && ex_check_output("translate", "--log", o->log)) ||
        (o->loss_log && ex_check_output("translate", "--loss-log", o->loss_log)) ||
        (o->curve && ex_check_output("translate", "--plot", o->curve)))
        return 2;
    if (o->resume && (!o->checkpoint || access(o->checkpoint, R_OK) != 0)) {
        fprintf(stderr, "translate: --resume needs an existing --checkpoint\n");
        return 2;
    }
    char *text = o->data ? read_all("--data", o->data) : generated_pairs(20000, 7);
    if (!text)
        return 1;
    ex_translate_run r;
    memset(&r, 0, sizeof r);
    tr_run t = {.r = &r, .o = o};
    tn_tape *tp = tn_tape_new();
    tn_rng_seed(&t.data_rng, o->seed ^ 0x5851f42d4c957f2dULL);
    int64_t step = 0, B = o->batch;
    int rc = 1;
    if (!tp)
        goto done;
    if (o->resume) {
        if (resume_run(o, &r, &t.opt, &step, &t.data_rng, tp))
            goto done;
    } else if (ex_translate_words_init(&r.sv) || ex_translate_words_init(&r.tv)) {
        fprintf(stderr, "translate: out of memory\n");
        goto done;
    }
    if (split_pairs(text, o, &r, !o->resume, &t))
        goto done;
    if (!o->resume) {
        tn_rng wr;
        tn_rng_seed(&wr, o->seed);
        if (ex_translate_run_build(&r, o, &wr))
            goto done;
        tn_adam_opts ao = tn_adam_defaults();
        ao.lr = o->lr;
        if (!(t.opt = tn_optim_adam(&r.ps, &ao))) {
            fprintf(stderr, "translate: %s\n", tn_last_error());
            goto done;
        }
        ex_train_seed_tape(tp, o->seed);
    }
    if (ex_train_split("translate", B, t.trn.n, &t.r0, &t.b) || ex_dist_attach(&r.ps))
        goto done;
    if (ex_dist_rank() == 0)
        fprintf(stderr,
                "translate: %s encoder%s, attention %s, H=%" PRId64 " E=%" PRId64 " L=%" PRId64
                "; vocab %d -> %d; %" PRId64 " train / %" PRId64 " val pairs; params %" PRId64
                "; %d threads\n",
                o->cell, o->bidirectional ? " (bidirectional)" : "", o->attention, o->hidden,
                o->embed, o->layers, r.sv.n, r.tv.n, t.trn.n, t.val.n, tn_params_numel(&r.ps),
                tn_num_threads());
    t.idx = malloc(sizeof *t.idx * (size_t)B);
    t.len = malloc(sizeof *t.len * (size_t)B);
    if (!t.idx || !t.len) {
        fprintf(stderr, "translate: out of memory\n");
        goto done;
    }
    t.n_eval = t.val.n < o->eval_pairs ? t.val.n : o->eval_pairs;
    static const ex_col cols[] = {{"val_loss", 4}, {"val_bleu", 2}};
    ex_train tr = {.prog = "translate",
                   .tp = tp,
                   .ps = &r.ps,
                   .opt = t.opt,
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
                   .per_step = (double)B,
                   .unit = "pairs",
                   .ctx = &t,
                   .forward = tr_forward,
                   .evaluate = tr_evaluate,
                   .save = o->checkpoint ? tr_save : NULL,
                   .cols = cols,
                   .n_cols = 2};
    rc = ex_train_run(&tr);
done:
    free(t.idx), free(t.len);
    pairs_free(&t.trn), pairs_free(&t.val);
    tn_optim_free(t.opt);
    ex_translate_run_free(&r);
    tn_tape_free(tp);
    free(text);
    return rc;
}

/* ---- decoding commands ---- */

/* The model of --checkpoint for decoding (no optimizer state). */
static int open_run(ex_translate_opts *o, ex_translate_run *r)
{
    tn_meta meta;
    tn_meta_init(&meta);
    int rc = ex_translate_load_run(o->checkpoint, r, o, &meta, NULL);
    tn_meta_free(&meta);
    return rc;
}

/* Words of ids (no eos) joined with spaces, punctuation attached to the
 * word before it (opening marks to the word after). */
static void detokenize(const ex_words *tv, const int32_t *ids, int n, FILE *f)
{
    bool glue = true;
    for (int i = 0; i < n; i++) {
        const char *w = ids[i] >= 0 && ids[i] < tv->n ? tv->words[ids[i]] : "<unk>";
        size_t len = strlen(w), at = 0;
        uint32_t c = ex_utf8_next((const unsigned char *)w, len, &at);
        bool mark = is_punct_cp(c) && at == len; /* a punctuation token */
        bool opening = c == '(' || c == 0xAB || c == 0xBF || c == 0xA1;
        if (!glue && !(mark && !opening && c != '"'))
            fputc(' ', f);
        fputs(w, f);
        glue = mark && opening;
    }
    fputc('\n', f);
}

/* Source sentence -> ids [1, S]; S = its token count (at least 1). */
static tn_tensor *encode_sentence(const ex_translate_run *r, const char *line, int32_t *len)
{
    static char buf[8192];
    char *tok[MAX_TOK];
    bool more;
    int n = tokenize(line, buf, sizeof buf, tok, MAX_TOK - 1, &more);
    int32_t ids[MAX_TOK];
    for (int i = 0; i < n; i++) {
        int id = ex_words_find(&r->sv, tok[i], strlen(tok[i]));
        ids[i] = id < 0 ? UNK : id;
    }
    if (n == 0)
        ids[n++] = UNK;
    *len = n;
    return tn_tensor_from(TN_I32, 2, (int64_t[]){1, n}, ids);
}

static int cmd_sample(ex_translate_opts *o)
{
    ex_translate_run r;
    if (o->beam > 1 && o->sample.temperature > 0) {
        fprintf(stderr, "translate: --beam searches; --temperature, --top-k and --top-p sample: "
                        "give one or the other\n");
        return 2;
    }
    if (open_run(o, &r))
        return 1;
    tn_tape *tp = tn_tape_new();
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    int rc = 0;
    int32_t out[MAX_TOK], olen;
    double sc;
    int64_t lineno = 0;
    tn_rng rng;
    tn_rng_seed(&rng, o->seed);
    while ((got = getline(&line, &cap, stdin)) >= 0) {
        lineno++;
        if (strlen(line) != (size_t)got) { /* the rest of the line would be dropped */
            fprintf(stderr, "translate: standard input line %" PRId64 ": a NUL byte at byte %zu\n",
                    lineno, strlen(line));
            rc = 1;
            break;
        }
        if (ex_utf8_invalid_at((const unsigned char *)line, (size_t)got) >= 0) {
            fprintf(stderr, "translate: standard input line %" PRId64 ": not valid UTF-8\n",
                    lineno);
            rc = 1;
            break;
        }
        int32_t len;
        tn_tensor *src = encode_sentence(&r, line, &len);
        tn_tape_reset(tp);
        tn_status st = !src          ? tn_last_status()
                       : o->beam > 1 ? tn_seq2seq_beam(tp, &r.m, src, &len, (int)o->beam, 1.0,
                                                       o->max_len, out, &olen, &sc)
                                     : tn_seq2seq_sample(tp, &r.m, src, &len, o->max_len,
                                                         &o->sample, &rng, out, &olen, &sc);
        if (st != TN_OK) { /* a decoding error (e.g. a broken model) names the checkpoint */
            fprintf(stderr, "translate: %s%s%s\n", src ? o->checkpoint : "", src ? ": " : "",
                    tn_last_error());
            tn_tensor_free(src);
            rc = 1;
            break;
        }
        detokenize(&r.tv, out, olen, stdout);
        tn_tensor_free(src);
    }
    free(line);
    tn_tape_free(tp);
    ex_translate_run_free(&r);
    return rc;
}

static int cmd_eval(ex_translate_opts *o)
{
    char *text = read_all("--data", o->data);
    if (!text)
        return 1;
    ex_translate_run r;
    if (open_run(o, &r)) {
        free(text);
        return 1;
    }
    pairs p = {0};
    int64_t dropped, nl;
    char **lines = pair_lines(text, &nl);
    int rc = !lines || pairs_read(lines, NULL, nl, &p, &r.sv, &r.tv, false, MAX_TOK - 1, &dropped);
    free(lines);
    free(text);
    if (rc || p.n == 0) {
        fprintf(stderr, "translate: --data %s: no pairs (source<TAB>target lines)\n", o->data);
        pairs_free(&p);
        ex_translate_run_free(&r);
        return 1;
    }
    tn_tape *tp = tn_tape_new();
    double loss, b;
    rc = evaluate(&r, tp, &p, p.n, 64, (int)o->beam, o->max_len, o->checkpoint, &loss, &b) ? 1 : 0;
    if (rc == 0)
        printf("loss %.6f bleu %.4f\n", loss, b);
    tn_tape_free(tp);
    pairs_free(&p);
    ex_translate_run_free(&r);
    return rc;
}

static int cmd_attention(ex_translate_opts *o)
{
    if (!o->text || !o->out) {
        fprintf(stderr, "translate: attention needs --text and --out\n");
        return 2;
    }
    if (ex_check_output("translate", "--out", o->out))
        return 2;
    ex_translate_run r;
    if (open_run(o, &r))
        return 1;
    int rc = 0;
    int32_t len, out[MAX_TOK], olen;
    tn_tensor *src = encode_sentence(&r, o->text, &len);
    double *w = calloc((size_t)(o->max_len * len), sizeof *w);
    tn_tape *tp = tn_tape_new();
    if (!src || !w ||
        tn_seq2seq_attention_map(tp, &r.m, src, len, o->max_len, out, &olen, w) != TN_OK) {
        fprintf(stderr, "translate: %s%s%s\n", src && w ? o->checkpoint : "", src && w ? ": " : "",
                tn_last_error());
        rc = 1;
        goto done;
    }
    /* rows: target tokens (and <eos>), columns: source tokens */
    int rows = olen < o->max_len ? olen + 1 : olen;
    const char *slab[MAX_TOK], *tlab[MAX_TOK + 1];
    for (int s = 0; s < len; s++) {
        int id = ((int32_t *)src->data)[s];
        slab[s] = id < r.sv.n ? r.sv.words[id] : "?";
    }
    for (int t = 0; t < rows; t++)
        tlab[t] = t < olen ? r.tv.words[out[t]] : "<eos>";
    if (ex_plot_heatmap("translate", o->out, w, rows, len, tlab, slab, NULL, 0, 1, 800, 600) ==
        PLOT_ERROR) {
        rc = 1;
        goto done;
    }
    detokenize(&r.tv, out, olen, stdout);
done:
    tn_tape_free(tp);
    tn_tensor_free(src);
    free(w);
    ex_translate_run_free(&r);
    return rc;
}

/* translate bleu: both files tokenised as training does, ids from one
 * vocabulary built on the fly. */
static int cmd_bleu(ex_translate_opts *o)
{
    if (!o->ref || !o->hyp) {
        fprintf(stderr, "translate: bleu needs --ref and --hyp\n");
        return 2;
    }
    char *rt = read_all("--ref", o->ref), *ht = rt ? read_all("--hyp", o->hyp) : NULL;
    if (!rt || !ht) {
        free(rt);
        return 1;
    }
    /* line i of --hyp against line i of --ref, blank lines included (an
     * empty hypothesis is what sample prints for an immediate eos) */
    char *texts[2] = {rt, ht};
    const char *opt[2] = {"--ref", "--hyp"}, *path[2] = {o->ref, o->hyp};
    int64_t nl[2];
    char **lines[2] = {text_lines(rt, &nl[0]), text_lines(ht, &nl[1])};
    int64_t n = lines[0] && lines[1] ? nl[0] : 0;
    int32_t **ids[2] = {calloc((size_t)n + 1, sizeof(int32_t *)),
                        calloc((size_t)n + 1, sizeof(int32_t *))};
    int32_t *cnt[2] = {calloc((size_t)n + 1, sizeof(int32_t)),
                       calloc((size_t)n + 1, sizeof(int32_t))};
    ex_words v;
    ex_translate_words_init(&v);
    int rc = 0;
    if (!lines[0] || !lines[1] || !ids[0] || !ids[1] || !cnt[0] || !cnt[1]) {
        fprintf(stderr, "translate: bleu: out of memory\n");
        rc = 1;
    } else if (nl[0] != nl[1]) {
        fprintf(stderr, "translate: --ref %s has %" PRId64 " lines, --hyp %s %" PRId64 "\n", o->ref,
                nl[0], o->hyp, nl[1]);
        rc = 1;
    }
    for (int64_t i = 0; rc == 0 && i < n; i++)
        for (int k = 0; rc == 0 && k < 2; k++) {
            /* room for every token of the line: valid UTF-8 re-encodes to
             * at most its own bytes, plus one NUL per token (<= 2 bytes a
             * byte), and tokenize wants 8 bytes of slack */
            size_t len = strlen(lines[k][i]);
            char *buf = malloc(2 * len + 16);
            char **tok = malloc(sizeof *tok * (len + 1));
            ids[k][i] = malloc(sizeof(int32_t) * (len + 1));
            bool more = false;
            int m = buf && tok && ids[k][i] && len < INT_MAX
                        ? tokenize(lines[k][i], buf, 2 * len + 16, tok, (int)len + 1, &more)
                        : -1;
            for (int j = 0; j < m; j++)
                if ((ids[k][i][j] = ex_words_add(&v, tok[j], strlen(tok[j]))) < 0)
                    m = -1;
            if (m < 0 || more) {
                fprintf(stderr, "translate: %s %s line %" PRId64 ": %s\n", opt[k], path[k], i + 1,
                        m < 0 ? "out of memory" : "cannot be tokenised whole");
                rc = 1;
            }
            cnt[k][i] = m;
            free(buf);
            free(tok);
        }
    double score = rc ? NAN
                      : ex_bleu(n, (const int32_t *const *)ids[1], cnt[1],
                                (const int32_t *const *)ids[0], cnt[0]);
    if (rc == 0 && isnan(score)) {
        fprintf(stderr, "translate: bleu: out of memory\n");
        rc = 1;
    } else if (rc == 0) {
        printf("bleu %.4f\n", 100 * score);
    }
    for (int k = 0; k < 2; k++) {
        for (int64_t i = 0; ids[k] && i < n; i++)
            free(ids[k][i]);
        free(ids[k]);
        free(cnt[k]);
        free(lines[k]);
        free(texts[k]);
    }
    ex_words_free(&v);
    return rc;
}

/* The model of --checkpoint alone (export.h): no optimizer state, its
 * parameters named as the PyTorch module's state_dict
 * (tools/torch_models.py); the metadata keeps the options and
 * vocabularies. */
static int cmd_export(ex_translate_opts *o)
{
    int rc = ex_export_check("translate", o->checkpoint, o->out);
    if (rc)
        return rc;
    ex_translate_run r;
    if (open_run(o, &r))
        return 1;
    rc = ex_export_write("translate", o->checkpoint, o->out, NULL, &r.ps);
    ex_translate_run_free(&r);
    return rc;
}

int main(int argc, char **argv)
{
    ex_translate_opts o;
    int command, rc = parse_opts(argc, argv, &o, &command);
    if (rc != EX_OK)
        return rc == EX_DONE ? 0 : 2;
    if (command != 0 && command != 4 && !o.checkpoint) {
        fprintf(stderr, "translate: --checkpoint is required\n");
        return 2;
    }
    if (command == 2 && !o.data) {
        fprintf(stderr, "translate: eval needs --data\n");
        return 2;
    }
    if (ex_start("translate", &argc, &argv, o.threads, command == 0))
        return 1;
    rc = command == 0   ? cmd_train(&o)
         : command == 1 ? cmd_sample(&o)
         : command == 2 ? cmd_eval(&o)
         : command == 3 ? cmd_attention(&o)
         : command == 4 ? cmd_bleu(&o)
                        : cmd_export(&o);
    ex_stop();
    return rc;
}
