/* examples/translate_model.c - translate's vocabularies, model and
 * checkpoint loading (see translate_model.h). */
#define _POSIX_C_SOURCE 200809L
#include "translate_model.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

int vocab_find(const vocab *v, const char *w)
{
    if (!v->nslots)
        return -1;
    for (uint64_t i = hash_str(w) % (uint64_t)v->nslots;; i = (i + 1) % (uint64_t)v->nslots) {
        int s = v->slots[i];
        if (!s)
            return -1;
        if (strcmp(v->words[s - 1], w) == 0)
            return s - 1;
    }
}

/* Add w (if new); its id, or -1 when out of memory. */
int vocab_add(vocab *v, const char *w)
{
    int id = vocab_find(v, w);
    if (id >= 0)
        return id;
    if (2 * (v->n + 1) > v->nslots) { /* grow and rehash */
        int ns = v->nslots ? 2 * v->nslots : 1024;
        int *slots = calloc((size_t)ns, sizeof *slots);
        if (!slots)
            return -1;
        for (int k = 0; k < v->n; k++) {
            uint64_t i = hash_str(v->words[k]) % (uint64_t)ns;
            while (slots[i])
                i = (i + 1) % (uint64_t)ns;
            slots[i] = k + 1;
        }
        free(v->slots);
        v->slots = slots;
        v->nslots = ns;
    }
    if (v->n == v->cap) {
        int cap = v->cap ? 2 * v->cap : 256;
        char **words = realloc(v->words, sizeof *words * (size_t)cap);
        if (!words)
            return -1;
        v->words = words;
        v->cap = cap;
    }
    char *copy = strdup(w);
    if (!copy)
        return -1;
    v->words[v->n] = copy;
    uint64_t i = hash_str(w) % (uint64_t)v->nslots;
    while (v->slots[i])
        i = (i + 1) % (uint64_t)v->nslots;
    v->slots[i] = ++v->n;
    return v->n - 1;
}

int vocab_init(vocab *v)
{
    memset(v, 0, sizeof *v);
    const char *special[4] = {"<pad>", "<sos>", "<eos>", "<unk>"};
    for (int i = 0; i < 4; i++)
        if (vocab_add(v, special[i]) != i)
            return -1;
    return 0;
}

void vocab_free(vocab *v)
{
    for (int i = 0; i < v->n; i++)
        free(v->words[i]);
    free(v->words);
    free(v->slots);
    memset(v, 0, sizeof *v);
}

/* The words joined by newlines (for the checkpoint's metadata). */
char *vocab_join(const vocab *v)
{
    size_t n = 1;
    for (int i = 0; i < v->n; i++)
        n += strlen(v->words[i]) + 1;
    char *s = malloc(n), *p = s;
    if (!s)
        return NULL;
    for (int i = 0; i < v->n; i++) {
        size_t l = strlen(v->words[i]);
        memcpy(p, v->words[i], l);
        p += l;
        *p++ = '\n';
    }
    *p = '\0';
    return s;
}

int vocab_split(vocab *v, const char *s)
{
    memset(v, 0, sizeof *v);
    char *copy = strdup(s ? s : ""), *save = NULL;
    if (!copy)
        return -1;
    int rc = 0;
    for (char *w = strtok_r(copy, "\n", &save); w; w = strtok_r(NULL, "\n", &save))
        if (vocab_add(v, w) != v->n - 1) {
            rc = -1; /* a repeated word: not a vocabulary of ours */
            break;
        }
    free(copy);
    if (rc == 0 && (v->n < 4 || strcmp(v->words[PAD], "<pad>") || strcmp(v->words[SOS], "<sos>") ||
                    strcmp(v->words[EOS], "<eos>") || strcmp(v->words[UNK], "<unk>")))
        rc = -1;
    return rc;
}



void run_free(run *r)
{
    tn_params_free(&r->ps);
    vocab_free(&r->sv);
    vocab_free(&r->tv);
}

static int attention_kind(const char *name)
{
    return strcmp(name, "none") == 0 ? -1 : tn_attn_kind_from_name(name);
}

int run_build(run *r, const opts *o, tn_rng *rng)
{
    r->so = (tn_seq2seq_opts){.cell = (tn_cell)tn_cell_from_name(o->cell),
                              .src_vocab = r->sv.n, .tgt_vocab = r->tv.n, .embed = o->embed,
                              .hidden = o->hidden, .layers = (int)o->layers,
                              .bidirectional = o->bidirectional,
                              .attention = attention_kind(o->attention), .dropout = o->dropout,
                              .src_pad = PAD, .tgt_pad = PAD, .sos = SOS, .eos = EOS};
    tn_params_init(&r->ps);
    if (r->so.attention == TN_ATTN_LUONG_DOT && o->bidirectional) {
        fprintf(stderr, "translate: --attention luong (dot) needs a unidirectional encoder "
                        "(query and key sizes must match); use general or bahdanau\n");
        return -1;
    }
    if (tn_seq2seq_init(&r->m, &r->ps, NULL, &r->so, TN_F32, rng)) {
        fprintf(stderr, "translate: %s\n", tn_last_error());
        return -1;
    }
    return 0;
}

/* Build the model of a checkpoint (options into *o) and load it; with
 * opt_out the Adam state too. */
int load_run(const char *path, run *r, opts *o, tn_meta *meta, tn_optim **opt_out)
{
    memset(r, 0, sizeof *r);
    int64_t H, E, L, ml;
    if (tn_load_meta(path, meta) || tn_meta_get_int(meta, "hidden", &H) ||
        tn_meta_get_int(meta, "embed", &E) || tn_meta_get_int(meta, "layers", &L) ||
        tn_meta_get_int(meta, "max_len", &ml)) {
        fprintf(stderr, "translate: %s\n", tn_last_error());
        return -1;
    }
    const char *cell = tn_meta_get(meta, "cell"), *att = tn_meta_get(meta, "attention");
    const char *bi = tn_meta_get(meta, "bidirectional"), *dr = tn_meta_get(meta, "dropout");
    /* a dropout that train's --dropout could not have saved (NaN, 1, -1)
     * was refused only when the model was built, naming neither the file
     * nor the metadata */
    double dropout = dr ? atof(dr) : 0;
    if (!cell || (strcmp(cell, "gru") && strcmp(cell, "lstm")) || !att ||
        (attention_kind(att) < 0 && strcmp(att, "none")) || !bi || H < 1 || H > 8192 ||
        E < 1 || E > 8192 || L < 1 || L > TN_RNN_MAX_LAYERS || ml < 1 || ml >= MAX_TOK ||
        !(dropout >= 0 && dropout < 1) ||
        vocab_split(&r->sv, tn_meta_get(meta, "src_vocab")) ||
        vocab_split(&r->tv, tn_meta_get(meta, "tgt_vocab"))) {
        fprintf(stderr, "translate: %s: bad metadata (cell, attention, sizes, dropout, "
                        "vocabularies)\n", path);
        vocab_free(&r->sv);
        vocab_free(&r->tv);
        return -1;
    }
    o->cell = strcmp(cell, "gru") == 0 ? "gru" : "lstm";
    static char att_buf[16];
    snprintf(att_buf, sizeof att_buf, "%s", att);
    o->attention = att_buf;
    o->bidirectional = strcmp(bi, "1") == 0;
    o->hidden = H, o->embed = E, o->layers = L;
    if (!o->max_len || o->max_len > ml)
        o->max_len = ml;
    o->dropout = dropout;
    /* the sizes against the file's tensors before the model is built from
     * them: both embeddings, the encoder's first input and last recurrent
     * weights, the output layer */
    int64_t G = tn_cell_gates((tn_cell)tn_cell_from_name(o->cell));
    char hh[32], sizes[160];
    snprintf(hh, sizeof hh, "encoder.weight_hh_l%d", (int)L - 1);
    snprintf(sizes, sizeof sizes, "vocabularies %d and %d, embed %" PRId64 ", hidden %" PRId64
             ", layers %" PRId64, r->sv.n, r->tv.n, E, H, L);
    cli_shape want[5] = {{"src_embed.weight", r->sv.n, E}, {"tgt_embed.weight", r->tv.n, E},
                         {"encoder.weight_ih_l0", G * H, E}, {hh, G * H, H},
                         {"out.weight", r->tv.n, H}};
    tn_rng rng;
    tn_rng_seed(&rng, 0);
    if (cli_check_shapes("translate", path, sizes, want, 5) || run_build(r, o, &rng)) {
        vocab_free(&r->sv), vocab_free(&r->tv);
        return -1;
    }
    /* a checkpoint of train also holds the Adam state: loaded for --resume,
     * read and dropped otherwise */
    bool has_state = false;
    tn_ckpt_entry *ents = NULL;
    int ne = 0;
    if (tn_load_list(path, &ents, &ne) == TN_OK)
        for (int i = 0; i < ne; i++)
            has_state = has_state || strstr(ents[i].name, ".exp_avg") != NULL;
    tn_ckpt_entries_free(ents, ne);
    if (opt_out && !has_state) {
        fprintf(stderr, "translate: %s has no optimizer state to resume\n", path);
        run_free(r);
        return -1;
    }
    tn_optim *opt = NULL;
    if (has_state) {
        tn_adam_opts ao = tn_adam_defaults();
        ao.lr = o->lr;
        opt = tn_optim_adam(&r->ps, &ao);
    }
    tn_params *sets[2] = {&r->ps, opt ? (tn_params *)tn_optim_state(opt) : NULL};
    if (tn_load(path, sets, opt ? 2 : 1, meta) != TN_OK) {
        fprintf(stderr, "translate: %s\n", tn_last_error());
        tn_optim_free(opt);
        run_free(r);
        return -1;
    }
    if (opt_out)
        *opt_out = opt;
    else
        tn_optim_free(opt);
    return 0;
}
