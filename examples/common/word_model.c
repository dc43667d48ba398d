/* examples/common/word_model.c - word_lm's vocabulary, model, --vectors reader
 * and checkpoint loading (see word_model.h). */
#include "word_model.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

bool ex_is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

/* ex_lm_model named as PyTorch's word_language_model (encoder, rnn, decoder)
 * and initialised as it does: encoder and decoder weights uniform(+-0.1),
 * decoder bias 0. Returns 0 or -1 (message printed). */
int ex_word_model_init(ex_lm_model *m, tn_cell cell, int64_t V, int64_t E, int64_t H, int64_t L,
                       double dropout, bool tie, const char *file, tn_rng *r)
{
    ex_lm_spec s = {.cell = cell,
                    .V = V,
                    .E = E,
                    .H = H,
                    .L = L,
                    .dropout = dropout,
                    .io_dropout = dropout,
                    .tie = tie,
                    .init_range = 0.1,
                    .embed_name = "encoder",
                    .head_name = "decoder",
                    .prog = "word_lm",
                    .file = file};
    return ex_lm_init(m, &s, r);
}

/* Set the embedding rows of the words of v found in the GloVe / word2vec
 * text file path (a first line of two integers is word2vec's header).
 * Every line must hold a word and E finite numbers; a word given twice
 * takes its first vector. Returns the number of
 * vocabulary words found, or -1 (message printed). */
int64_t ex_load_vectors(const char *path, const ex_words *v, tn_tensor *weight)
{
    unsigned char *buf;
    size_t n;
    if (ex_read_file("word_lm", "--vectors", path, &buf, &n))
        return -1;
    int64_t E = weight->shape[1], found = 0, line = 0;
    float *row = malloc(sizeof *row * (size_t)E);
    bool *seen = calloc((size_t)v->n, sizeof *seen);
    char *s = (char *)buf, *end = s + n;
    int64_t rc = row && seen ? 0 : -1;
    while (s < end && rc == 0) {
        char *eol = memchr(s, '\n', (size_t)(end - s));
        if (!eol)
            eol = end;
        *eol = '\0'; /* the buffer is ours: lines become strings */
        line++;
        if (strlen(s) != (size_t)(eol - s)) { /* the rest would be ignored */
            fprintf(stderr, "word_lm: --vectors %s line %" PRId64 ": a NUL byte at byte %zu\n",
                    path, line, strlen(s));
            rc = -1;
            break;
        }
        char *w = s;
        while (*w && ex_is_space(*w))
            w++;
        char *we = w;
        while (*we && !ex_is_space(*we))
            we++;
        char *p = we;
        int64_t k = 0;
        bool bad = false;
        while (!bad) {
            char *q;
            errno = 0;
            double x = strtod(p, &q);
            if (q == p)
                break;
            bad = !isfinite(x) || (k < E && !isfinite((float)x));
            if (k < E)
                row[k] = (float)x;
            k++;
            p = q;
        }
        while (*p && (ex_is_space(*p) || *p == '\n'))
            p++;
        /* word2vec's header: two integers */
        bool header =
            line == 1 && k == 1 && we > w && strspn(w, "0123456789") == (size_t)(we - w) &&
            strspn(we + strspn(we, " \t"), "0123456789") > 0 && !strpbrk(we, ".eE+-") && !*p;
        if (we == w && k == 0) { /* blank line */
        } else if (header) {
        } else if (bad || *p || k != E) {
            fprintf(stderr,
                    "word_lm: --vectors %s line %" PRId64 ": %s; expected a word and %" PRId64
                    " finite numbers (the embedding size)\n",
                    path, line,
                    bad  ? "a value is not a finite float"
                    : *p ? "not a number"
                         : "wrong number of values",
                    E);
            rc = -1;
        } else {
            int32_t id = ex_words_find(v, w, (size_t)(we - w));
            if (id >= 0 && !seen[id]) { /* a repeated word: its first vector */
                for (int64_t j = 0; j < E; j++)
                    tn_tensor_set(weight, id * E + j, row[j]);
                seen[id] = true;
                found++;
            }
        }
        s = eol + 1;
    }
    if (!row || !seen)
        fprintf(stderr, "word_lm: out of memory reading --vectors\n");
    free(row);
    free(seen);
    free(buf);
    return rc ? -1 : found;
}

/* Build the model and vocabulary a checkpoint describes and load it; with
 * opt_out (resume) also the optimizer and the carried state. */
int ex_word_load_checkpoint(const char *path, ex_lm_model *m, ex_words *v, tn_meta *meta,
                            tn_optim **opt_out, const tn_adam_opts *ao)
{
    int64_t H, L, E;
    if (tn_load_meta(path, meta) || tn_meta_get_int(meta, "hidden", &H) ||
        tn_meta_get_int(meta, "layers", &L) || tn_meta_get_int(meta, "embed", &E)) {
        fprintf(stderr, "word_lm: %s\n", tn_last_error());
        return -1;
    }
    const char *cell = tn_meta_get(meta, "cell"), *words = tn_meta_get(meta, "vocab");
    const char *tie = tn_meta_get(meta, "tie_weights"), *dr = tn_meta_get(meta, "dropout");
    const char *fmt = tn_meta_get(meta, "format");
    tn_cell c;
    if (!fmt || strcmp(fmt, "word_lm 1") != 0 || tn_cell_from_name(cell, &c) != TN_OK || !words ||
        H < 1 || H > EX_WORD_MAX_DIM || L < 1 || L > TN_RNN_MAX_LAYERS || E < 1 ||
        E > EX_WORD_MAX_DIM) {
        fprintf(stderr,
                "word_lm: %s: not a word_lm checkpoint (format \"word_lm 1\", a known cell, a "
                "vocab, hidden and embed in 1..%d, layers in 1..%d)\n",
                path, EX_WORD_MAX_DIM, TN_RNN_MAX_LAYERS);
        return -1;
    }
    static const char *const special[] = {"<unk>", "<eos>"}; /* ids UNK, EOS */
    if (ex_words_split(v, words, EX_WORD_MAX_VOCAB, special, 2)) {
        fprintf(stderr,
                "word_lm: %s: bad vocab (an empty or repeated word, too many, or not "
                "starting <unk>, <eos>)\n",
                path);
        return -1;
    }
    tn_rng r;
    tn_rng_seed(&r, 0);
    double dropout = dr ? atof(dr) : 0;
    if (!(dropout >= 0 && dropout < 1))
        dropout = 0;
    if (ex_word_model_init(m, c, v->n, E, H, L, dropout, tie && strcmp(tie, "1") == 0, path, &r)) {
        ex_words_free(v);
        return -1;
    }
    tn_optim *opt = NULL;
    if (ex_lm_load(m, path, ao, ao->weight_decay > 0, meta, opt_out ? &opt : NULL)) {
        ex_lm_free(m), ex_words_free(v);
        return -1;
    }
    if (opt_out && !opt) {
        fprintf(stderr, "word_lm: %s: cannot resume: the file has no training state\n", path);
        ex_lm_free(m), ex_words_free(v);
        return -1;
    }
    tn_status s = TN_OK;
    const char *fr = tn_meta_get(meta, "freeze_embedding");
    if (s == TN_OK && fr && strcmp(fr, "1") == 0)
        s = tn_tensor_set_requires_grad(m->lm.embed.weight, false);
    if (s != TN_OK) {
        fprintf(stderr, "word_lm: %s\n", tn_last_error());
        tn_optim_free(opt);
        ex_lm_free(m), ex_words_free(v);
        return -1;
    }
    if (opt_out)
        *opt_out = opt;
    return 0;
}
