/* examples/apps/tagger.c - a part-of-speech tagger: a tag per token (aligned
 * many-to-many). Words -> embedding -> bidirectional LSTM (tn_rnn; one way
 * with --unidirectional) -> Linear(D*H, n_tags) at every position ->
 * cross-entropy over the tokens, padding ignored (tn_cross_entropy's
 * ignore_index).
 *
 *   tagger train [--data FILE] [--sentences N] [--unidirectional] [--hidden H] [--embed E]
 *                [--batch B] [--steps N] [--lr X] [--clip X] [--seed S] [--threads N]
 *                [--checkpoint PATH] [--eval-every N] [--log CSV] [--loss-log CSV]
 *   tagger eval  --checkpoint PATH [--data FILE] [--heatmap FILE.png]
 *   tagger tag   --checkpoint PATH                      (stdin -> stdout)
 *
 * Data: --data FILE holds a sentence a line, tokens "word/TAG" separated by
 * blanks (the tag is after the token's last '/'). Without it the program
 * generates sentences from a small probabilistic grammar (below) whose
 * words are ambiguous: "light" and "cold" are adjectives or nouns after a
 * determiner depending on what follows ("the light boat" / "the light
 * ..."), "near", "in", "on", "around", "outside" prepositions or adverbs
 * depending on whether a noun phrase follows; "can", "saw", "run", "fish",
 * "watch", "duck", "park" nouns or verbs depending on what precedes. The
 * sentences are a function of --seed. A fixed-seed shuffle (SPLIT_SEED)
 * holds out VAL_FRACTION of the sentences; the vocabulary is the words of
 * the training part after <pad> (0) and <unk> (1). An unknown word is
 * looked up again in ASCII lower case, then read as <unk>.
 */
#define _POSIX_C_SOURCE 200809L
#include <tensor/tensor.h>

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "export.h"
#include "plot.h"
#include "train.h"

enum { PAD = 0, UNK = 1, MAX_TAGS = 1000, EVAL_BATCH = 128 };
#define VAL_FRACTION  0.1
#define SPLIT_SEED    20250u
#define DATA_SEED_MIX 0x2545f4914f6cdd1dULL
#define PROG          "tagger"

/* ---- sorted sets of strings (vocabulary, tags) ---- */

typedef struct strset {
    char **s; /* ascending (strcmp), unique, owned */
    int n;
} strset;

static void strset_free(strset *t)
{
    for (int i = 0; i < t->n; i++)
        free(t->s[i]);
    free(t->s);
    t->s = NULL, t->n = 0;
}

static int cmp_strp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The distinct strings of items[0..n) (copied). Returns 0 or -1 (memory). */
static int strset_build(strset *t, const char *const *items, int64_t n)
{
    t->n = 0;
    t->s = malloc(sizeof *t->s * (size_t)(n + 1));
    const char **tmp = malloc(sizeof *tmp * (size_t)(n + 1));
    if (!t->s || !tmp) {
        free(tmp);
        return -1;
    }
    memcpy(tmp, items, sizeof *tmp * (size_t)n);
    qsort(tmp, (size_t)n, sizeof *tmp, cmp_strp);
    int rc = 0;
    for (int64_t i = 0; i < n && rc == 0; i++)
        if (t->n == 0 || strcmp(tmp[i], t->s[t->n - 1]) != 0) {
            if (!(t->s[t->n] = strdup(tmp[i])))
                rc = -1;
            else
                t->n++;
        }
    free(tmp);
    return rc;
}

/* Index of s in t, or -1. */
static int strset_find(const strset *t, const char *s)
{
    int lo = 0, hi = t->n - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2, c = strcmp(t->s[mid], s);
        if (c == 0)
            return mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -1;
}

/* t's strings one a line (malloc'd), for a checkpoint's metadata. */
static char *strset_lines(const strset *t)
{
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    if (!f)
        return NULL;
    for (int i = 0; i < t->n; i++)
        fprintf(f, "%s%s", i ? "\n" : "", t->s[i]);
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

/* What makes s unusable as a word or tag of a checkpoint, or NULL: empty,
 * a blank (tokens are split at blanks), another control character. */
static const char *token_problem(const char *s)
{
    if (!*s)
        return "is empty";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (isspace(*p) || *p < 0x20 || *p == 0x7f)
            return "has a blank or control character";
    return NULL;
}

/* Split lines (a checkpoint's metadata `key` of path) into t: each line a
 * usable token, strictly ascending (so distinct). Returns 0 or -1 (message). */
static int strset_from_lines(strset *t, const char *lines, const char *path, const char *key)
{
    t->n = 0;
    size_t cap = 1;
    for (const char *p = lines; *p; p++)
        cap += *p == '\n';
    if (!(t->s = malloc(sizeof *t->s * cap)))
        return -1;
    for (const char *p = lines;;) {
        const char *e = strchr(p, '\n');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (!(t->s[t->n] = strndup(p, l)))
            return -1;
        t->n++;
        const char *why = token_problem(t->s[t->n - 1]);
        if (!why && t->n > 1 && strcmp(t->s[t->n - 2], t->s[t->n - 1]) >= 0)
            why = "is not after the one before it (the list must be ascending, no repeats)";
        if (why) {
            fprintf(stderr, PROG ": --checkpoint %s: metadata %s: entry %d \"%s\" %s\n", path, key,
                    t->n, t->s[t->n - 1], why);
            return -1;
        }
        if (!e)
            break;
        p = e + 1;
    }
    return 0;
}

/* ---- sentences ---- */

typedef struct corpus {
    char *text;         /* --data's text (the tokens point into it), or NULL */
    const char **word;  /* [ntok] */
    const char **tname; /* [ntok] tag names */
    int32_t *tag;       /* [ntok] index in tags */
    int64_t *start;     /* [n] first token of each sentence */
    int32_t *len;       /* [n] tokens of each sentence, >= 1 */
    int64_t n, ntok, cap_s, cap_t;
    strset tags;
} corpus;

static void corpus_free(corpus *c)
{
    free(c->text), free(c->word), free(c->tname), free(c->tag), free(c->start), free(c->len);
    strset_free(&c->tags);
    memset(c, 0, sizeof *c);
}

static int corpus_push(corpus *c, const char *word, const char *tag)
{
    if (c->ntok == c->cap_t) {
        int64_t nc = c->cap_t ? 2 * c->cap_t : 4096;
        const char **w = realloc(c->word, sizeof *w * (size_t)nc);
        if (w)
            c->word = w;
        const char **t = realloc(c->tname, sizeof *t * (size_t)nc);
        if (t)
            c->tname = t;
        if (!w || !t)
            return -1;
        c->cap_t = nc;
    }
    c->word[c->ntok] = word, c->tname[c->ntok] = tag;
    c->ntok++;
    return 0;
}

/* Close the sentence started at token `from` (nothing when empty). */
static int corpus_end_sentence(corpus *c, int64_t from)
{
    if (c->ntok == from)
        return 0;
    if (c->n == c->cap_s) {
        int64_t nc = c->cap_s ? 2 * c->cap_s : 1024;
        int64_t *s = realloc(c->start, sizeof *s * (size_t)nc);
        if (s)
            c->start = s;
        int32_t *l = realloc(c->len, sizeof *l * (size_t)nc);
        if (l)
            c->len = l;
        if (!s || !l)
            return -1;
        c->cap_s = nc;
    }
    if (c->ntok - from > INT32_MAX)
        return -1;
    c->start[c->n] = from, c->len[c->n] = (int32_t)(c->ntok - from);
    c->n++;
    return 0;
}

/* The tag set of the tokens and each token's index in it. */
static int corpus_index_tags(corpus *c)
{
    if (strset_build(&c->tags, c->tname, c->ntok) ||
        !(c->tag = malloc(sizeof *c->tag * (size_t)(c->ntok + 1))))
        return -1;
    for (int64_t i = 0; i < c->ntok; i++)
        c->tag[i] = strset_find(&c->tags, c->tname[i]);
    return 0;
}

/* --data FILE: a sentence a line, tokens word/TAG. Returns 0 or -1 (message). */
static int corpus_read(corpus *c, const char *path)
{
    memset(c, 0, sizeof *c);
    size_t n;
    if (ex_read_text(PROG, "--data", path, "utf-8", &c->text, &n))
        return -1;
    if (strlen(c->text) != n) {
        fprintf(stderr, PROG ": --data %s: a NUL byte at offset %zu\n", path, strlen(c->text));
        goto fail;
    }
    int64_t line = 0;
    for (char *p = c->text; *p;) {
        char *eol = strchr(p, '\n');
        if (eol)
            *eol = '\0';
        line++;
        int64_t from = c->ntok;
        for (char *save = NULL, *tok = strtok_r(p, " \t\r\f\v", &save); tok;
             tok = strtok_r(NULL, " \t\r\f\v", &save)) {
            char *slash = strrchr(tok, '/');
            if (!slash || slash == tok || !slash[1]) {
                fprintf(stderr,
                        PROG ": --data %s: line %" PRId64 ": token \"%s\" is not "
                             "word/TAG\n",
                        path, line, tok);
                goto fail;
            }
            *slash = '\0';
            const char *why = token_problem(tok);
            if (!why)
                why = token_problem(slash + 1);
            if (why) {
                fprintf(stderr, PROG ": --data %s: line %" PRId64 ": a word or tag %s\n", path,
                        line, why);
                goto fail;
            }
            if (corpus_push(c, tok, slash + 1))
                goto oom;
        }
        if (corpus_end_sentence(c, from))
            goto oom;
        if (!eol)
            break;
        p = eol + 1;
    }
    if (corpus_index_tags(c))
        goto oom;
    if (c->n < 2 || c->tags.n < 2 || c->tags.n > MAX_TAGS) {
        fprintf(stderr,
                PROG ": --data %s: %" PRId64 " sentences and %d tags; at least 2 of "
                     "each (at most %d tags) are needed\n",
                path, c->n, c->tags.n, MAX_TAGS);
        goto fail;
    }
    return 0;
oom:
    fprintf(stderr, PROG ": out of memory reading %s\n", path);
fail:
    corpus_free(c);
    return -1;
}

/* ---- the generated task: a small probabilistic grammar ----
 *
 *   S      -> CLAUSE (CONJ CLAUSE)?
 *   CLAUSE -> SUBJ PRED
 *   SUBJ   -> PRON | NP
 *   NP     -> DET ADJ{0,2} NOUN (PREP NP)?
 *   PRED   -> can BASE OBJ? TAIL | PAST OBJ? TAIL | BASE OBJ? TAIL (they/we/i/you)
 *   OBJ    -> NP | PRON_obj
 *   TAIL   -> ADV | PREP NP | nothing
 */

static const char *const DETS[] = {"the", "a", "every", "this", "my", "our"};
static const char *const ADJS[] = {"big",   "small", "red",  "old", "happy",
                                   "quiet", "light", "cold", "dark"};
static const char *const NOUNS[] = {"dog",  "cat",  "man",    "woman", "child", "house", "river",
                                    "boat", "tree", "garden", "park",  "can",   "saw",   "light",
                                    "cold", "dark", "fish",   "watch", "duck",  "run"};
static const char *const SUBJ[] = {"she", "he", "it", "they", "we", "i", "you"};
static const char *const OBJ[] = {"them", "her", "him", "us", "me", "it"};
static const char *const PAST[] = {"saw", "found", "liked", "ate", "watched", "left", "painted"};
static const char *const BASE[] = {"run", "fish", "watch", "duck",  "park",
                                   "see", "find", "like",  "paint", "leave"};
static const char *const ADVS[] = {"quickly", "slowly", "often",  "today",  "near",
                                   "in",      "on",     "around", "outside"};
static const char *const PREPS[] = {"in", "on", "near", "with", "under", "around", "outside"};
static const char *const CONJS[] = {"and", "but", "or"};
#define PICK(r, a) ((a)[tn_rng_next(r) % (sizeof(a) / sizeof((a)[0]))])

static int gen_np(corpus *c, tn_rng *r, int depth)
{
    int rc = corpus_push(c, PICK(r, DETS), "DET");
    for (int k = 0; rc == 0 && k < 2 && tn_rng_uniform(r) < (k ? 0.25 : 0.5); k++)
        rc = corpus_push(c, PICK(r, ADJS), "ADJ");
    if (rc == 0)
        rc = corpus_push(c, PICK(r, NOUNS), "NOUN");
    if (rc == 0 && depth == 0 && tn_rng_uniform(r) < 0.15)
        rc = corpus_push(c, PICK(r, PREPS), "PREP") || gen_np(c, r, 1);
    return rc;
}

static int gen_clause(corpus *c, tn_rng *r)
{
    int rc, plural = 0;
    if (tn_rng_uniform(r) < 0.4) {
        const char *s = PICK(r, SUBJ);
        plural = strcmp(s, "she") && strcmp(s, "he") && strcmp(s, "it");
        rc = corpus_push(c, s, "PRON");
    } else {
        rc = gen_np(c, r, 0);
    }
    double u = tn_rng_uniform(r);
    if (rc == 0 && u < 0.3)
        rc = corpus_push(c, "can", "VERB") || corpus_push(c, PICK(r, BASE), "VERB");
    else if (rc == 0 && plural && u < 0.6)
        rc = corpus_push(c, PICK(r, BASE), "VERB");
    else if (rc == 0)
        rc = corpus_push(c, PICK(r, PAST), "VERB");
    if (rc == 0 && tn_rng_uniform(r) < 0.6)
        rc = tn_rng_uniform(r) < 0.25 ? corpus_push(c, PICK(r, OBJ), "PRON") : gen_np(c, r, 0);
    u = tn_rng_uniform(r);
    if (rc == 0 && u < 0.35)
        rc = corpus_push(c, PICK(r, ADVS), "ADV");
    else if (rc == 0 && u < 0.7)
        rc = corpus_push(c, PICK(r, PREPS), "PREP") || gen_np(c, r, 1);
    return rc;
}

static int corpus_generate(corpus *c, int64_t n, uint64_t seed)
{
    memset(c, 0, sizeof *c);
    tn_rng r;
    tn_rng_seed(&r, seed);
    int rc = 0;
    for (int64_t i = 0; rc == 0 && i < n; i++) {
        int64_t from = c->ntok;
        rc = gen_clause(c, &r);
        if (rc == 0 && tn_rng_uniform(&r) < 0.3)
            rc = corpus_push(c, PICK(&r, CONJS), "CONJ") || gen_clause(c, &r);
        if (rc == 0)
            rc = corpus_end_sentence(c, from);
    }
    if (rc == 0)
        rc = corpus_index_tags(c);
    if (rc) {
        fprintf(stderr, PROG ": out of memory\n");
        corpus_free(c);
    }
    return rc;
}

/* The held-out split: a Fisher-Yates shuffle of the sentences by a tn_rng
 * seeded SPLIT_SEED; the first floor(VAL_FRACTION * n) (at least 1) are
 * held out. idx gets n indices (malloc'd): [0, *nva) held out, the rest
 * training. Returns 0 or -1 (memory). */
static int corpus_split(const corpus *c, int64_t **idx, int64_t *nva)
{
    int64_t *p = malloc(sizeof *p * (size_t)c->n);
    if (!p)
        return -1;
    for (int64_t i = 0; i < c->n; i++)
        p[i] = i;
    tn_rng r;
    tn_rng_seed(&r, SPLIT_SEED);
    for (int64_t i = c->n - 1; i > 0; i--) {
        int64_t j = (int64_t)(tn_rng_next(&r) % (uint64_t)(i + 1)), t = p[i];
        p[i] = p[j], p[j] = t;
    }
    *nva = (int64_t)floor(VAL_FRACTION * (double)c->n);
    if (*nva < 1)
        *nva = 1;
    *idx = p;
    return 0;
}

/* ---- options ---- */

typedef struct opts {
    const char *data, *checkpoint, *out, *heatmap, *log, *loss_log, *curve;
    bool unidirectional;
    int64_t sentences, hidden, embed, batch, steps, threads, eval_every;
    double lr, clip, unk;
    uint64_t seed;
} opts;

enum { TRAIN = 1, EVAL = 2, TAG = 4, EXPORT = 8 };

static int parse_opts(int argc, char **argv, opts *o, int *command)
{
    *o = (opts){.sentences = 3000,
                .hidden = 64,
                .embed = 32,
                .batch = 32,
                .steps = 1000,
                .eval_every = 250,
                .lr = 1e-2,
                .clip = 1.0,
                .unk = 0.05,
                .seed = 1};
    const ex_opt table[] = {
        {"--out", EX_STRING, &o->out, "FILE", "where to write the exported model",
         .commands = EXPORT},
        {"--data", EX_STRING, &o->data, "FILE",
         "a sentence a line of word/TAG tokens; eval scores its held-out sentences",
         .def = "train: the generated task; eval: the checkpoint's", .commands = TRAIN | EVAL},
        {"--sentences", EX_INT, &o->sentences, "N", "sentences of the generated task", .imin = 20,
         .imax = 10000000, .commands = TRAIN},
        {"--unidirectional", EX_FLAG, &o->unidirectional, NULL,
         "read left to right only (the baseline of the bidirectional default)", .commands = TRAIN},
        {"--hidden", EX_INT, &o->hidden, "H", "LSTM units per direction", .imin = 1, .imax = 8192,
         .commands = TRAIN},
        {"--embed", EX_INT, &o->embed, "E", "word embedding size", .imin = 1, .imax = 8192,
         .commands = TRAIN},
        {"--batch", EX_INT, &o->batch, "B", "sentences per step", .imin = 1, .imax = 65536,
         .commands = TRAIN},
        {"--steps", EX_INT, &o->steps, "N", "training steps", .imin = 0, .imax = EX_STEPS_MAX,
         .commands = TRAIN},
        {"--lr", EX_REAL, &o->lr, "X", "Adam learning rate", .dmin = 0, .dmin_open = true,
         .dmax = 10, .commands = TRAIN},
        {"--clip", EX_REAL, &o->clip, "X", "clip the global gradient norm to X (0: off)", .dmin = 0,
         .dmax = 1e6, .commands = TRAIN},
        {"--unk", EX_REAL, &o->unk, "P",
         "read each training word as <unk> with probability P (teaches <unk> for unknown words)",
         .dmin = 0, .dmax = 0.5, .commands = TRAIN},
        {"--seed", EX_UINT64, &o->seed, "S",
         "random seed: the generated sentences, the weights, the batches", .commands = TRAIN},
        {"--threads", EX_INT, &o->threads, "N", "threads for OpenMP loops and BLIS", .imin = 1,
         .imax = 1024, .def = EX_THREADS_DEFAULT},
        {"--checkpoint", EX_STRING, &o->checkpoint, "PATH",
         "safetensors checkpoint to write (train) or read", .def = "train: none; else required"},
        {"--eval-every", EX_INT, &o->eval_every, "N",
         "validation every N steps and at the end (0: only at the end)", .imin = 0,
         .imax = EX_STEPS_MAX, .commands = TRAIN},
        EX_TRAIN_LOG_OPTS(&o->log, &o->loss_log, &o->curve, TRAIN),
        {"--heatmap", EX_STRING, &o->heatmap, "FILE.png",
         "draw the confusion matrix (rows normalised) as an 800x800 heat map", .commands = EVAL},
    };
    static const char *const commands[] = {"train", "eval", "tag", "export", NULL};
    static const char *const command_help[] = {
        "train a tagger (and write --checkpoint)",
        "per-tag precision, recall and F1, micro and macro F1, token accuracy on the held-out "
        "sentences",
        "tag standard input, a sentence a line of blank-separated words: word/TAG ...",
        "write --checkpoint's model alone to --out, as the PyTorch module's state_dict "
        "(tools/torch_models.py)",
    };
    const ex_spec spec = {
        .prog = PROG,
        .summary = "part-of-speech tagger (embedding -> bidirectional LSTM -> Linear per token)",
        .commands = commands,
        .command_help = command_help,
        .opts = table,
        .n_opts = (int)(sizeof table / sizeof table[0]),
        .notes = "The generated task (without --data) is a small grammar whose ambiguous words\n"
                 "(light, cold, near, in, can, saw, run, ...) take their tag from the words\n"
                 "around them; eval reports the accuracy on them. 10% of the sentences (a\n"
                 "fixed-seed shuffle) are held out for validation and eval.\n",
    };
    return ex_parse(&spec, argc, argv, command);
}

/* ---- model and checkpoints ---- */

typedef struct model {
    tn_params ps;
    tn_embedding emb;
    tn_rnn rnn;
    tn_linear head;
    strset words, tags;
    bool bidirectional;
    int64_t hidden, embed, step, sentences;
    uint64_t seed;
    const char *data; /* "generated" or the --data path (metadata only) */
    char *data_owned;
} model;

static void model_free(model *m)
{
    tn_params_free(&m->ps);
    strset_free(&m->words);
    strset_free(&m->tags);
    free(m->data_owned);
    memset(m, 0, sizeof *m);
}

static int model_build(model *m, uint64_t seed)
{
    tn_rng r;
    tn_rng_seed(&r, seed);
    tn_params_init(&m->ps);
    int D = m->bidirectional ? 2 : 1;
    if (tn_embedding_init(&m->emb, &m->ps, "embed", m->words.n + 2, m->embed, PAD, TN_F32, &r) ||
        tn_rnn_init(&m->rnn, &m->ps, "rnn", TN_CELL_LSTM, m->embed, m->hidden, 1, m->bidirectional,
                    0.0, TN_F32, &r) ||
        tn_linear_init(&m->head, &m->ps, "head", D * m->hidden, m->tags.n, true, TN_F32, &r)) {
        fprintf(stderr, PROG ": %s\n", tn_last_error());
        return -1;
    }
    return 0;
}

/* Word id of w: itself, else its ASCII lower case, else <unk>. */
static int32_t word_id(const model *m, const char *w)
{
    int k = strset_find(&m->words, w);
    if (k < 0) {
        char *low = strdup(w);
        for (char *p = low; p && *p; p++)
            *p = (char)tolower((unsigned char)*p);
        k = low ? strset_find(&m->words, low) : -1;
        free(low);
    }
    return k < 0 ? UNK : k + 2;
}

/* logits [B*T, C] of ids [B, T] with lengths [B]. NULL on error (tape). */
static tn_tensor *model_logits(tn_tape *tp, const model *m, tn_tensor *ids, const int32_t *len)
{
    int64_t B = ids->shape[0], T = ids->shape[1];
    tn_rnn_out out;
    if (tn_rnn_forward(tp, &m->rnn, tn_embedding_forward(tp, &m->emb, ids), NULL, NULL, len,
                       &out) != TN_OK)
        return NULL;
    return tn_reshape(tp, tn_linear_forward(tp, &m->head, out.output), 2,
                      (int64_t[]){B * T, m->tags.n});
}

static int model_save(const char *path, const model *m)
{
    tn_meta meta;
    tn_meta_init(&meta);
    char *words = strset_lines(&m->words), *tags = strset_lines(&m->tags);
    tn_status s = words && tags ? TN_OK : TN_ERR_MEMORY;
    if (s == TN_OK)
        s = tn_meta_set(&meta, "format", "tagger 1");
    if (s == TN_OK)
        s = tn_meta_set(&meta, "bidirectional", m->bidirectional ? "1" : "0");
    if (s == TN_OK)
        s = tn_meta_set_int(&meta, "hidden", m->hidden);
    if (s == TN_OK)
        s = tn_meta_set_int(&meta, "embed", m->embed);
    if (s == TN_OK)
        s = tn_meta_set_int(&meta, "step", m->step);
    if (s == TN_OK)
        s = tn_meta_set_int(&meta, "sentences", m->sentences);
    char seed[32];
    snprintf(seed, sizeof seed, "%" PRIu64, m->seed);
    if (s == TN_OK)
        s = tn_meta_set(&meta, "seed", seed);
    if (s == TN_OK)
        s = tn_meta_set(&meta, "data", m->data);
    if (s == TN_OK)
        s = tn_meta_set(&meta, "words", words);
    if (s == TN_OK)
        s = tn_meta_set(&meta, "tags", tags);
    tn_params *sets[1] = {(tn_params *)&m->ps};
    if (s == TN_OK)
        s = tn_save(path, sets, 1, &meta);
    if (s != TN_OK)
        fprintf(stderr, PROG ": --checkpoint %s: %s\n", path,
                tn_last_error()[0] ? tn_last_error() : "out of memory");
    free(words), free(tags);
    tn_meta_free(&meta);
    return s == TN_OK ? 0 : -1;
}

static int model_load(const char *path, model *m)
{
    memset(m, 0, sizeof *m);
    tn_meta meta;
    tn_meta_init(&meta);
    int rc = -1;
    static const char *const keys[4] = {"hidden", "embed", "step", "sentences"};
    int64_t *const vals[4] = {&m->hidden, &m->embed, &m->step, &m->sentences};
    if (ex_checkpoint_ints(PROG, path, &meta, keys, vals, 4))
        goto done;
    const char *fmt = tn_meta_get(&meta, "format"), *bi = tn_meta_get(&meta, "bidirectional");
    const char *words = tn_meta_get(&meta, "words"), *tags = tn_meta_get(&meta, "tags");
    const char *seed = tn_meta_get(&meta, "seed"), *data = tn_meta_get(&meta, "data");
    char *end = NULL;
    errno = 0;
    m->seed = seed ? strtoull(seed, &end, 10) : 0;
    if (!fmt || strcmp(fmt, "tagger 1") || !bi || (strcmp(bi, "0") && strcmp(bi, "1")) || !words ||
        !tags || !data || !seed || !*seed || *end || errno || !isdigit(*seed) || m->hidden < 1 ||
        m->hidden > 8192 || m->embed < 1 || m->embed > 8192 || m->sentences < 20 ||
        m->sentences > 10000000) {
        fprintf(stderr,
                PROG ": --checkpoint %s: not a tagger checkpoint (bad or missing "
                     "metadata format, bidirectional, hidden, embed, sentences, seed, data, "
                     "words or tags)\n",
                path);
        goto done;
    }
    m->bidirectional = strcmp(bi, "1") == 0;
    if (!(m->data = m->data_owned = strdup(data)))
        goto done;
    if ((*words && strset_from_lines(&m->words, words, path, "words")) ||
        strset_from_lines(&m->tags, tags, path, "tags"))
        goto done;
    if (m->tags.n < 2 || m->tags.n > MAX_TAGS) {
        fprintf(stderr, PROG ": --checkpoint %s: metadata tags: %d tags (2 to %d allowed)\n", path,
                m->tags.n, MAX_TAGS);
        goto done;
    }
    /* the metadata's sizes against the file's tensors before building */
    int64_t H = m->hidden, D = m->bidirectional ? 2 : 1;
    char sizes[200];
    snprintf(sizes, sizeof sizes,
             "%d words, %d tags, embed %" PRId64 ", hidden %" PRId64 ", bidirectional %d",
             m->words.n, m->tags.n, m->embed, H, D == 2);
    ex_shape want[4] = {{"embed.weight", m->words.n + 2, m->embed},
                        {"rnn.weight_ih_l0", 4 * H, m->embed},
                        {D == 2 ? "rnn.weight_hh_l0_reverse" : "rnn.weight_hh_l0", 4 * H, H},
                        {"head.weight", m->tags.n, D * H}};
    if (ex_check_shapes(PROG, path, sizes, want, 4) == 0 && model_build(m, 0) == 0)
        rc = ex_load_params(PROG, path, &m->ps);
done:
    tn_meta_free(&meta);
    if (rc)
        model_free(m);
    return rc;
}

/* ---- batches and scores ---- */

/* ids [B, T] and targets [B*T] (-1 past each sentence) of sentences
 * idx[0..B) of c; tag ids through lab (c's tag -> model's). With drop
 * (training), each word is read as <unk> with probability p, so that <unk>
 * learns to stand for a word the context must tag. Tape tensors. */
static int make_batch(tn_tape *tp, const model *m, const corpus *c, const int *lab,
                      const int64_t *idx, int64_t B, tn_tensor **ids, tn_tensor **tg, int32_t *len,
                      tn_rng *drop, double p_unk)
{
    int64_t T = 1;
    for (int64_t b = 0; b < B; b++)
        T = c->len[idx[b]] > T ? c->len[idx[b]] : T;
    *ids = tn_tape_tensor(tp, TN_I32, 2, (int64_t[]){B, T});
    *tg = tn_tape_tensor(tp, TN_I32, 1, (int64_t[]){B * T});
    if (!*ids || !*tg)
        return -1;
    int32_t *p = (*ids)->data, *t = (*tg)->data;
    for (int64_t b = 0; b < B; b++) {
        int64_t s = c->start[idx[b]];
        len[b] = c->len[idx[b]];
        for (int64_t k = 0; k < T; k++) {
            p[b * T + k] = k < len[b] ? word_id(m, c->word[s + k]) : PAD;
            if (drop && k < len[b] && tn_rng_uniform(drop) < p_unk)
                p[b * T + k] = UNK;
            t[b * T + k] = k < len[b] ? lab[c->tag[s + k]] : -1;
        }
    }
    return 0;
}

/* What the training split says of each word: its tag counts. */
typedef struct lexicon {
    int64_t *count;     /* [(V + 2) * C]: row word id, column tag */
    int64_t *tag_total; /* [C] */
    int V, C;
} lexicon;

static int lexicon_build(lexicon *lx, const model *m, const corpus *c, const int *lab,
                         const int64_t *idx, int64_t n)
{
    lx->V = m->words.n + 2, lx->C = m->tags.n;
    lx->count = calloc((size_t)lx->V * (size_t)lx->C, sizeof *lx->count);
    lx->tag_total = calloc((size_t)lx->C, sizeof *lx->tag_total);
    if (!lx->count || !lx->tag_total)
        return -1;
    for (int64_t i = 0; i < n; i++)
        for (int64_t k = c->start[idx[i]]; k < c->start[idx[i]] + c->len[idx[i]]; k++) {
            int t = lab[c->tag[k]];
            lx->count[(int64_t)word_id(m, c->word[k]) * lx->C + t]++;
            lx->tag_total[t]++;
        }
    return 0;
}

static void lexicon_free(lexicon *lx) { free(lx->count), free(lx->tag_total); }

/* The tag seen most often with word id w in training (ties: the first), or
 * -1 for a word never seen; *kinds gets how many tags it was seen with. */
static int lexicon_best(const lexicon *lx, int32_t w, int *kinds)
{
    int best = -1;
    *kinds = 0;
    for (int t = 0; t < lx->C; t++) {
        int64_t v = lx->count[(int64_t)w * lx->C + t];
        if (v) {
            (*kinds)++;
            if (best < 0 || v > lx->count[(int64_t)w * lx->C + best])
                best = t;
        }
    }
    return best;
}

typedef struct scores {
    double loss;                   /* mean cross-entropy per token */
    int64_t tokens, right;         /* tokens, tagged right */
    int64_t amb, amb_right;        /* of them, words seen with more than one tag in training */
    int64_t base_major, base_word; /* right by the majority tag, by each word's own */
    int major;                     /* the majority tag */
    int64_t *conf;                 /* [C x C] true row, predicted column, or NULL */
} scores;

/* Score the model on sentences idx[0..n) of c (tags through lab). Returns
 * 0, or -1 (message starting with `what`) on an error or a loss that is
 * not finite. */
static int evaluate(tn_tape *tp, const model *m, const corpus *c, const int *lab, const lexicon *lx,
                    const int64_t *idx, int64_t n, const char *what, scores *sc)
{
    bool train = tn_tape_training(tp), grad = tn_tape_set_grad(tp, false);
    tn_tape_set_training(tp, false);
    int C = m->tags.n, rc = 0;
    int32_t *len = malloc(sizeof *len * EVAL_BATCH);
    double loss = 0, *lg = NULL;
    int64_t *conf = sc->conf;
    memset(sc, 0, sizeof *sc);
    sc->conf = conf;
    if (conf)
        memset(conf, 0, sizeof *conf * (size_t)C * (size_t)C);
    sc->major = 0;
    for (int t = 1; t < C; t++)
        if (lx->tag_total[t] > lx->tag_total[sc->major])
            sc->major = t;
    for (int64_t i0 = 0; rc == 0 && i0 < n; i0 += EVAL_BATCH) {
        int64_t B = n - i0 < EVAL_BATCH ? n - i0 : EVAL_BATCH;
        tn_tape_reset(tp);
        tn_tensor *ids, *tg, *logits = NULL, *l = NULL;
        if (len && make_batch(tp, m, c, lab, idx + i0, B, &ids, &tg, len, NULL, 0) == 0)
            logits = model_logits(tp, m, ids, len);
        if (logits)
            l = tn_cross_entropy(tp, logits, tg, -1, TN_REDUCE_SUM);
        double *nl = l ? realloc(lg, sizeof *lg * (size_t)tn_numel(logits)) : NULL;
        if (!nl) {
            fprintf(stderr, PROG ": %s: %s\n", what,
                    tn_last_error()[0] ? tn_last_error() : "out of memory");
            rc = -1;
            break;
        }
        lg = nl;
        if (!isfinite(tn_tensor_get(l, 0))) {
            fprintf(stderr,
                    PROG ": %s: the loss of sentences %" PRId64 "..%" PRId64 " is %g: "
                         "the model's output is not finite\n",
                    what, i0 + 1, i0 + B, tn_tensor_get(l, 0));
            rc = -1;
            break;
        }
        loss += tn_tensor_get(l, 0);
        tn_tensor_to_double(logits, lg);
        const int32_t *t = tg->data, *w = ids->data;
        for (int64_t r = 0; r < tg->shape[0]; r++) {
            if (t[r] < 0)
                continue;
            int best = 0, kinds;
            for (int k = 1; k < C; k++)
                if (lg[r * C + k] > lg[r * C + best])
                    best = k;
            int wbest = lexicon_best(lx, w[r], &kinds);
            sc->tokens++;
            sc->right += best == t[r];
            sc->base_major += sc->major == t[r];
            sc->base_word += (wbest < 0 ? sc->major : wbest) == t[r];
            if (kinds > 1)
                sc->amb++, sc->amb_right += best == t[r];
            if (conf)
                conf[(int64_t)t[r] * C + best]++;
        }
    }
    sc->loss = sc->tokens ? loss / (double)sc->tokens : NAN;
    free(len), free(lg);
    tn_tape_reset(tp);
    tn_tape_set_training(tp, train);
    tn_tape_set_grad(tp, grad);
    return rc;
}

static double ratio(int64_t a, int64_t b) { return b ? (double)a / (double)b : NAN; }

/* The data of --data, or the generated task of `sentences` from `seed`. */
static int read_data(const char *data, int64_t sentences, uint64_t seed, corpus *c)
{
    return data ? corpus_read(c, data) : corpus_generate(c, sentences, seed);
}

/* ---- train ---- */

/* A training run's state for the driver's hooks (train.h). */
typedef struct tag_run {
    model *m;
    const corpus *c;
    const opts *o;
    const int *lab;         /* the corpus's tag ids -> the model's (the same) */
    const lexicon *lx;      /* the training split's tag counts per word */
    const int64_t *tr, *va; /* the training and held-out sentences */
    int64_t ntr, nva;
    int64_t *bi; /* the batch's sentences [B] and lengths */
    int32_t *len;
    tn_rng rng; /* the batches and the <unk> drops */
} tag_run;

/* B training sentences drawn with replacement, words dropped to <unk> with
 * probability --unk, and the loss over their tokens. */
static tn_tensor *tag_forward(void *ctx, tn_tape *tp, int64_t step)
{
    (void)step;
    tag_run *r = ctx;
    int64_t B = r->o->batch;
    for (int64_t b = 0; b < B; b++)
        r->bi[b] = r->tr[tn_rng_next(&r->rng) % (uint64_t)r->ntr];
    tn_tensor *ids, *tg, *logits = NULL;
    if (make_batch(tp, r->m, r->c, r->lab, r->bi, B, &ids, &tg, r->len, &r->rng, r->o->unk) == 0)
        logits = model_logits(tp, r->m, ids, r->len);
    return logits ? tn_cross_entropy(tp, logits, tg, -1, TN_REDUCE_MEAN) : NULL;
}

static int tag_evaluate(void *ctx, tn_tape *tp, double *values)
{
    tag_run *r = ctx;
    scores sc = {.conf = NULL};
    if (evaluate(tp, r->m, r->c, r->lab, r->lx, r->va, r->nva, "validation", &sc))
        return -1;
    values[0] = sc.loss;
    values[1] = ratio(sc.right, sc.tokens);
    values[2] = ratio(sc.amb_right, sc.amb);
    values[3] = ratio(sc.base_major, sc.tokens);
    return 0;
}

static int tag_save(void *ctx, tn_tape *tp, int64_t step)
{
    (void)tp;
    tag_run *r = ctx;
    r->m->step = step;
    return model_save(r->o->checkpoint, r->m);
}

static int cmd_train(const opts *o)
{
    if (ex_train_check_outputs(PROG, o->checkpoint, o->log, o->loss_log, o->curve))
        return 2;
    corpus c;
    if (read_data(o->data, o->sentences, o->seed, &c))
        return 1;
    int64_t *idx = NULL, nva, *bi = NULL;
    model m = {0};
    lexicon lx = {0};
    tn_tape *tp = NULL;
    tn_optim *opt = NULL;
    int32_t *len = NULL;
    int *lab = malloc(sizeof *lab * (size_t)c.tags.n), rc = 1;
    if (!lab || corpus_split(&c, &idx, &nva)) {
        fprintf(stderr, PROG ": out of memory\n");
        goto done;
    }
    int64_t ntr = c.n - nva;
    const int64_t *tr = idx + nva;
    const char **tw = malloc(sizeof *tw * (size_t)(c.ntok + 1));
    int64_t nw = 0;
    for (int64_t i = 0; tw && i < ntr; i++)
        for (int k = 0; k < c.len[tr[i]]; k++)
            tw[nw++] = c.word[c.start[tr[i]] + k];
    for (int t = 0; t < c.tags.n; t++)
        lab[t] = t;
    m.bidirectional = !o->unidirectional;
    m.hidden = o->hidden, m.embed = o->embed, m.sentences = o->sentences, m.seed = o->seed;
    m.data = o->data ? o->data : "generated";
    int bad = !tw || strset_build(&m.words, tw, nw) ||
              strset_build(&m.tags, (const char *const *)c.tags.s, c.tags.n);
    free(tw);
    if (bad || lexicon_build(&lx, &m, &c, lab, tr, ntr)) {
        fprintf(stderr, PROG ": out of memory\n");
        goto done;
    }
    if (model_build(&m, o->seed))
        goto done;
    tn_adam_opts ao = tn_adam_defaults();
    ao.lr = o->lr;
    opt = tn_optim_adam(&m.ps, &ao);
    tp = tn_tape_new();
    int64_t B = o->batch;
    bi = malloc(sizeof *bi * (size_t)B);
    len = malloc(sizeof *len * (size_t)B);
    if (!opt || !tp || !bi || !len) {
        fprintf(stderr, PROG ": %s\n", tn_last_error()[0] ? tn_last_error() : "out of memory");
        goto done;
    }
    fprintf(stderr,
            PROG ": LSTM (%s), H=%" PRId64 " E=%" PRId64 "; %d tags, %d words; %" PRId64
                 " train / %" PRId64 " held-out sentences (%s); params %" PRId64 "; %d threads\n",
            m.bidirectional ? "bidirectional" : "unidirectional", o->hidden, o->embed, m.tags.n,
            m.words.n, ntr, nva, m.data, tn_params_numel(&m.ps), tn_num_threads());
    tag_run run = {.m = &m,
                   .c = &c,
                   .o = o,
                   .lab = lab,
                   .lx = &lx,
                   .tr = tr,
                   .va = idx,
                   .ntr = ntr,
                   .nva = nva,
                   .bi = bi,
                   .len = len};
    tn_rng_seed(&run.rng, o->seed ^ DATA_SEED_MIX);
    static const ex_col cols[] = {{"val_loss", 4},
                                  {"val_accuracy", 4},
                                  {"val_ambiguous_accuracy", 4},
                                  {"baseline_majority_tag", 4}};
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
                  .per_step = (double)B * (double)c.ntok / (double)c.n,
                  .unit = "tokens",
                  .ctx = &run,
                  .forward = tag_forward,
                  .evaluate = tag_evaluate,
                  .save = o->checkpoint ? tag_save : NULL,
                  .cols = cols,
                  .n_cols = 4};
    rc = ex_train_run(&t);
done:
    free(bi), free(len), free(idx), free(lab);
    lexicon_free(&lx);
    tn_optim_free(opt);
    tn_tape_free(tp);
    model_free(&m);
    corpus_free(&c);
    return rc;
}

/* ---- eval ---- */

static int cmd_eval(const opts *o)
{
    if (o->heatmap && ex_check_output(PROG, "--heatmap", o->heatmap))
        return 2;
    model m;
    if (model_load(o->checkpoint, &m))
        return 1;
    corpus c;
    if (!o->data && strcmp(m.data, "generated") != 0) {
        fprintf(stderr, PROG ": --checkpoint %s was trained on %s: give eval --data\n",
                o->checkpoint, m.data);
        model_free(&m);
        return 2;
    }
    if (read_data(o->data, m.sentences, m.seed, &c)) {
        model_free(&m);
        return 1;
    }
    int rc = 1, C = m.tags.n;
    int *lab = malloc(sizeof *lab * (size_t)c.tags.n);
    int64_t *idx = NULL, nva, *conf = malloc(sizeof *conf * (size_t)C * (size_t)C);
    double *norm = malloc(sizeof *norm * (size_t)C * (size_t)C);
    tn_tape *tp = tn_tape_new();
    lexicon lx = {0};
    if (!lab || !conf || !norm || !tp || corpus_split(&c, &idx, &nva)) {
        fprintf(stderr, PROG ": out of memory\n");
        goto done;
    }
    for (int t = 0; t < c.tags.n; t++)
        if ((lab[t] = strset_find(&m.tags, c.tags.s[t])) < 0) {
            fprintf(stderr, PROG ": --data %s: tag %s is not one of the checkpoint's %d tags\n",
                    o->data, c.tags.s[t], C);
            goto done;
        }
    if (lexicon_build(&lx, &m, &c, lab, idx + nva, c.n - nva)) {
        fprintf(stderr, PROG ": out of memory\n");
        goto done;
    }
    scores sc = {.conf = conf};
    if (evaluate(tp, &m, &c, lab, &lx, idx, nva, o->checkpoint, &sc))
        goto done;
    int w = 4;
    for (int t = 0; t < C; t++)
        w = (int)strlen(m.tags.s[t]) > w ? (int)strlen(m.tags.s[t]) : w;
    printf("%-*s precision recall     f1 support\n", w, "tag");
    double macro = 0;
    int seen = 0;
    for (int t = 0; t < C; t++) {
        int64_t tp_ = conf[(int64_t)t * C + t], row = 0, col = 0;
        for (int k = 0; k < C; k++)
            row += conf[(int64_t)t * C + k], col += conf[(int64_t)k * C + t];
        double p = ratio(tp_, col), r = ratio(tp_, row);
        double f = tp_ ? 2 * p * r / (p + r) : 0;
        printf("%-*s %9.4f %6.4f %6.4f %7" PRId64 "\n", w, m.tags.s[t], col ? p : 0, r, f, row);
        if (row || col) /* tags that occur in the data or the predictions */
            macro += f, seen++;
        for (int k = 0; k < C; k++)
            norm[(int64_t)t * C + k] = row ? (double)conf[(int64_t)t * C + k] / (double)row : 0;
    }
    /* one label per token: micro precision = recall = F1 = accuracy */
    printf("micro_f1 %.4f\nmacro_f1 %.4f\ntoken_accuracy %.4f\n", ratio(sc.right, sc.tokens),
           seen ? macro / seen : NAN, ratio(sc.right, sc.tokens));
    printf("ambiguous_accuracy %.4f (%" PRId64 " tokens of words seen with more than one tag in "
           "training)\n",
           ratio(sc.amb_right, sc.amb), sc.amb);
    printf("baseline_majority_tag %.4f (always %s)\n", ratio(sc.base_major, sc.tokens),
           m.tags.s[sc.major]);
    printf("baseline_word_majority %.4f (each word's most frequent training tag)\n",
           ratio(sc.base_word, sc.tokens));
    printf("loss %.6f\nsentences %" PRId64 "\ntokens %" PRId64 "\n", sc.loss, nva, sc.tokens);
    rc = 0;
    if (o->heatmap &&
        ex_plot_heatmap(PROG, o->heatmap, norm, C, C, (const char *const *)m.tags.s,
                        (const char *const *)m.tags.s,
                        "tag confusion (rows: true tag, normalised; columns: predicted)", 0, 1, 800,
                        800) == PLOT_ERROR)
        rc = 1;
done:
    free(lab), free(conf), free(norm), free(idx);
    lexicon_free(&lx);
    tn_tape_free(tp);
    corpus_free(&c);
    model_free(&m);
    return rc;
}

/* ---- tag ---- */

static int cmd_tag(const opts *o)
{
    model m;
    if (model_load(o->checkpoint, &m))
        return 1;
    tn_tape *tp = tn_tape_new();
    int rc = tp ? 0 : 1, C = m.tags.n;
    int lab[1] = {0};
    if (tp) {
        tn_tape_set_grad(tp, false);
        tn_tape_set_training(tp, false);
    }
    corpus one = {0};
    double *lg = NULL;
    char *line = NULL;
    size_t lcap = 0;
    size_t got;
    int64_t lineno = 0, zero = 0;
    for (int r; rc == 0 && (r = ex_read_line(PROG, stdin, &line, &lcap, &got, &lineno));) {
        if (r < 0) {
            rc = 1;
            break;
        }
        one.n = one.ntok = 0;
        for (char *save = NULL, *tok = strtok_r(line, " \t\r\n\f\v", &save); tok && rc == 0;
             tok = strtok_r(NULL, " \t\r\n\f\v", &save))
            rc = corpus_push(&one, tok, "");
        if (rc || corpus_end_sentence(&one, 0)) {
            fprintf(stderr, PROG ": out of memory\n");
            rc = 1;
            break;
        }
        if (one.n == 0) {
            putchar('\n');
            continue;
        }
        free(one.tag);
        if (!(one.tag = calloc((size_t)one.ntok, sizeof *one.tag))) {
            rc = 1;
            break;
        }
        tn_tape_reset(tp);
        tn_tensor *ids, *tg, *logits = NULL;
        int32_t len;
        if (make_batch(tp, &m, &one, lab, &zero, 1, &ids, &tg, &len, NULL, 0) == 0)
            logits = model_logits(tp, &m, ids, &len);
        double *nl = logits ? realloc(lg, sizeof *lg * (size_t)tn_numel(logits)) : NULL;
        if (!nl) {
            fprintf(stderr, PROG ": %s\n", tn_last_error()[0] ? tn_last_error() : "out of memory");
            rc = 1;
            break;
        }
        lg = nl;
        tn_tensor_to_double(logits, lg);
        for (int64_t k = 0; k < one.ntok * C; k++)
            if (!isfinite(lg[k])) { /* a broken model: its tags would mean nothing */
                fprintf(stderr,
                        PROG ": --checkpoint %s: standard input line %" PRId64
                             ": the model's output is %g (not finite)\n",
                        o->checkpoint, lineno, lg[k]);
                rc = 1;
                break;
            }
        for (int64_t k = 0; k < one.ntok && rc == 0; k++) {
            int best = 0;
            for (int t = 1; t < C; t++)
                if (lg[k * C + t] > lg[k * C + best])
                    best = t;
            printf("%s%s/%s", k ? " " : "", one.word[k], m.tags.s[best]);
        }
        if (rc == 0)
            putchar('\n');
    }
    free(line), free(lg);
    corpus_free(&one);
    tn_tape_free(tp);
    model_free(&m);
    return rc;
}

/* The model of --checkpoint alone (export.h), its parameters named as
 * the PyTorch module's state_dict (tools/torch_models.py); the metadata
 * keeps what tagger needs to read it back. */
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
        fprintf(stderr, PROG ": %s needs --checkpoint\n", command == 1 ? "eval" : "tag");
        return 2;
    }
    static int (*const run[4])(const opts *) = {cmd_train, cmd_eval, cmd_tag, cmd_export};
    return ex_runtime(PROG, o.threads) ? 1 : run[command](&o);
}
