/* examples/common/char_model.c - char_rnn's model, vocabulary and checkpoint
 * loading (declared and documented in char_model.h), shared by char_rnn and
 * hidden_states. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "char_model.h"

#include "vocab.h"
#include "cli.h"

int64_t ex_utf8_decode(const unsigned char *s, int64_t n, uint32_t *out, int64_t cap)
{
    int64_t k = 0;
    for (size_t i = 0; i < (size_t)n;) {
        if (k == cap)
            return -1;
        out[k++] = ex_utf8_next(s, (size_t)n, &i);
    }
    return k;
}

unsigned char *ex_generated_text(int64_t *n)
{
    static const char *subj[] = {"the old man",   "a young queen", "my brother", "the king",
                                 "a quiet child", "the sailor",    "her mother", "the poet"};
    static const char *verb[] = {"loves",   "remembers", "watches", "follows",
                                 "forgets", "answers",   "carries", "finds"};
    static const char *obj[] = {"the sea",         "a golden ring",    "the long road",
                                "his own shadow",  "the winter light", "an empty house",
                                "the last letter", "the river"};
    static const char *tail[] = {" at night",       " in the morning",  "",
                                 " without a word", " again and again", " with great care"};
    size_t cap = 220000, k = 0;
    unsigned char *s = malloc(cap + 256);
    tn_rng r;
    tn_rng_seed(&r, 2024);
    while (k < cap) {
        const char *parts[4] = {subj[tn_rng_next(&r) % 8], verb[tn_rng_next(&r) % 8],
                                obj[tn_rng_next(&r) % 8], tail[tn_rng_next(&r) % 6]};
        char line[200];
        int len = snprintf(line, sizeof line, "%s %s %s%s.%s", parts[0], parts[1], parts[2],
                           parts[3], tn_rng_next(&r) % 4 == 0 ? "\n" : " ");
        line[0] = (char)(line[0] - 32 * (line[0] >= 'a' && line[0] <= 'z'));
        memcpy(s + k, line, (size_t)len);
        k += (size_t)len;
    }
    *n = (int64_t)k;
    return s;
}

int ex_text_index(const ex_text *t, uint32_t cp) { return (int)ex_chars_index(t->vocab, t->V, cp); }

int ex_text_load(ex_text *t, const unsigned char *bytes, int64_t nbytes, bool build_vocab,
                 const char *what)
{
    uint32_t *cps = malloc((size_t)(nbytes > 0 ? nbytes : 1) * sizeof *cps);
    int64_t n = ex_utf8_decode(bytes, nbytes, cps, nbytes); /* at most one per byte */
    if (build_vocab) {
        uint32_t *sorted = malloc((size_t)(n > 0 ? n : 1) * sizeof *sorted);
        memcpy(sorted, cps, (size_t)n * sizeof *sorted);
        int64_t V = ex_chars_sort(sorted, n);
        if (V > EX_CHAR_MAX_VOCAB) {
            fprintf(stderr, "char_rnn: %s has more than %d distinct characters\n", what,
                    EX_CHAR_MAX_VOCAB);
            free(sorted);
            free(cps);
            return -1;
        }
        memcpy(t->vocab, sorted, (size_t)V * sizeof *sorted);
        t->V = (int)V;
        free(sorted);
    }
    t->ids = malloc((size_t)(n > 0 ? n : 1) * sizeof *t->ids);
    t->n = n;
    for (int64_t i = 0; i < n; i++) {
        int id = ex_text_index(t, cps[i]);
        if (id < 0) {
            char enc[5] = {0};
            ex_utf8_encode(cps[i], enc);
            fprintf(stderr,
                    "char_rnn: %s: character '%s' (U+%04X) at position %" PRId64
                    " is not in the model's vocabulary\n",
                    what, enc, (unsigned)cps[i], i);
            free(cps);
            free(t->ids);
            t->ids = NULL;
            return -1;
        }
        t->ids[i] = id;
    }
    free(cps);
    return 0;
}

int ex_char_model_init(ex_lm_model *m, tn_cell cell, int64_t V, int64_t E, int64_t H, int64_t L,
                       double dropout, const char *file, tn_rng *r)
{
    ex_lm_spec s = {.cell = cell,
                    .V = V,
                    .E = E,
                    .H = H,
                    .L = L,
                    .dropout = dropout,
                    .embed_name = "embed",
                    .head_name = "head",
                    .prog = "char_rnn",
                    .file = file};
    return ex_lm_init(m, &s, r);
}

int ex_char_load_checkpoint(const char *path, ex_lm_model *m, ex_text *t, tn_meta *meta,
                            double dropout, tn_optim **opt_out, double lr)
{
    tn_rng r;
    tn_rng_seed(&r, 0);
    int64_t H, L, E;
    if (tn_load_meta(path, meta) || tn_meta_get_int(meta, "hidden", &H) ||
        tn_meta_get_int(meta, "layers", &L) || tn_meta_get_int(meta, "embed", &E)) {
        fprintf(stderr, "char_rnn: %s\n", tn_last_error());
        return -1;
    }
    const char *cell = tn_meta_get(meta, "cell"), *vocab = tn_meta_get(meta, "vocab");
    tn_cell c;
    /* The metadata sizes the model: a crafted file must get a refusal, not
     * a model of 2^60 parameters (the limits are far above any char model). */
    if (tn_cell_from_name(cell, &c) != TN_OK || !vocab || H < 1 || H > EX_CHAR_MAX_DIM || L < 1 ||
        L > TN_RNN_MAX_LAYERS || E < 1 || E > EX_CHAR_MAX_DIM) {
        fprintf(stderr,
                "char_rnn: %s: bad metadata: need a known cell, a vocab, hidden and embed in "
                "1..%d, layers in 1..%d\n",
                path, EX_CHAR_MAX_DIM, TN_RNN_MAX_LAYERS);
        return -1;
    }
    int64_t V = ex_utf8_decode((const unsigned char *)vocab, (int64_t)strlen(vocab), t->vocab,
                               EX_CHAR_MAX_VOCAB);
    if (V < 1) {
        fprintf(stderr, "char_rnn: %s: bad metadata: vocab must have 1..%d characters\n", path,
                EX_CHAR_MAX_VOCAB);
        return -1;
    }
    t->V = (int)V;
    for (int v = 1; v < t->V; v++)
        if (t->vocab[v] <= t->vocab[v - 1]) {
            fprintf(stderr, "char_rnn: %s: vocab is not sorted distinct characters\n", path);
            return -1;
        }
    if (ex_char_model_init(m, c, t->V, E, H, L, dropout, path, &r))
        return -1;
    tn_adam_opts ao = tn_adam_defaults();
    ao.lr = lr;
    if (ex_lm_load(m, path, &ao, false, meta, opt_out)) {
        ex_lm_free(m);
        return -1;
    }
    return 0;
}

int ex_char_load_model(const char *path, ex_lm_model *m, ex_text *t)
{
    tn_meta meta;
    tn_meta_init(&meta);
    int rc = ex_char_load_checkpoint(path, m, t, &meta, 0.0, NULL, 1e-3);
    tn_meta_free(&meta);
    return rc;
}
