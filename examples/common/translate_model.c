/* examples/common/translate_model.c - translate's vocabularies, model and
 * checkpoint loading (see translate_model.h). */
#define _POSIX_C_SOURCE 200809L
#include "translate_model.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char *const special[4] = {"<pad>", "<sos>", "<eos>", "<unk>"};

int ex_translate_words_init(ex_words *v)
{
    memset(v, 0, sizeof *v);
    for (int i = 0; i < 4; i++)
        if (ex_words_add(v, special[i], strlen(special[i])) != i) {
            ex_words_free(v);
            return -1;
        }
    return 0;
}

int ex_translate_words_split(ex_words *v, const char *s)
{
    return ex_words_split(v, s, INT32_MAX, special, 4);
}

void ex_translate_run_free(ex_translate_run *r)
{
    tn_params_free(&r->ps);
    ex_words_free(&r->sv);
    ex_words_free(&r->tv);
}

/* The attention kind of a name (tn_seq2seq_opts.attention), -1 for "none"
 * and for a name that is not a kind. */
static int attention_kind(const char *name)
{
    tn_attn_kind k;
    return strcmp(name, "none") != 0 && tn_attn_kind_from_name(name, &k) == TN_OK ? (int)k : -1;
}

int ex_translate_run_build(ex_translate_run *r, const ex_translate_opts *o, tn_rng *rng)
{
    r->so = (tn_seq2seq_opts){.cell = ex_cell(o->cell),
                              .src_vocab = r->sv.n,
                              .tgt_vocab = r->tv.n,
                              .embed = o->embed,
                              .hidden = o->hidden,
                              .layers = (int)o->layers,
                              .bidirectional = o->bidirectional,
                              .attention = attention_kind(o->attention),
                              .dropout = o->dropout,
                              .src_pad = PAD,
                              .tgt_pad = PAD,
                              .sos = SOS,
                              .eos = EOS};
    tn_params_init(&r->ps);
    if (r->so.attention == TN_ATTN_LUONG_DOT && o->bidirectional) {
        fprintf(stderr, "translate: --attention luong (dot) needs a unidirectional encoder "
                        "(query and key sizes must match); use general or bahdanau\n");
        return -1;
    }
    if (tn_seq2seq_init(&r->m, &r->ps, NULL, &r->so, TN_F32, rng) ||
        (o->sparse_embed && (tn_tensor_set_sparse_grad(r->m.src_embed.weight, true) ||
                             tn_tensor_set_sparse_grad(r->m.tgt_embed.weight, true)))) {
        fprintf(stderr, "translate: %s\n", tn_last_error());
        return -1;
    }
    return 0;
}

/* o's model options (and *out the library's) from the s2s.* keys of path
 * (tn_seq2seq_open, which checks them and the file's tensors); translate's
 * own ids and cells only. */
static int s2s_options(const char *path, ex_translate_opts *o, tn_seq2seq_opts *out)
{
    tn_seq2seq_opts so;
    char pre[TN_NAME_MAX];
    if (tn_seq2seq_open(path, &so, pre, NULL))
        return -1;
    *out = so;
    if (*pre || (so.cell != TN_CELL_GRU && so.cell != TN_CELL_LSTM) || so.src_pad != PAD ||
        so.tgt_pad != PAD || so.sos != SOS || so.eos != EOS) {
        tn_set_error(TN_ERR_FORMAT,
                     "%s: metadata s2s.*: not a translate model (a prefix, another cell, or "
                     "other ids for pad, sos, eos)",
                     path);
        return -1;
    }
    o->cell = tn_cell_name(so.cell);
    o->attention = tn_attn_kind_name(so.attention);
    o->bidirectional = so.bidirectional;
    o->hidden = so.hidden, o->embed = so.embed, o->layers = so.layers;
    o->dropout = so.dropout;
    return 0;
}

/* o's model options from the keys of a "translate 1" checkpoint. */
static int old_options(const tn_meta *meta, ex_translate_opts *o)
{
    int64_t H, E, L;
    const char *cell = tn_meta_get(meta, "cell"), *att = tn_meta_get(meta, "attention");
    const char *bi = tn_meta_get(meta, "bidirectional"), *dr = tn_meta_get(meta, "dropout");
    /* a dropout that train's --dropout could not have saved (NaN, 1, -1)
     * was refused only when the model was built, naming neither the file
     * nor the metadata */
    double dropout = dr ? atof(dr) : 0;
    if (tn_meta_get_int(meta, "hidden", &H) || tn_meta_get_int(meta, "embed", &E) ||
        tn_meta_get_int(meta, "layers", &L) || !cell ||
        (strcmp(cell, "gru") && strcmp(cell, "lstm")) || !att ||
        (attention_kind(att) < 0 && strcmp(att, "none")) || !bi || H < 1 || H > 8192 || E < 1 ||
        E > 8192 || L < 1 || L > TN_RNN_MAX_LAYERS || !(dropout >= 0 && dropout < 1))
        return -1;
    o->cell = strcmp(cell, "gru") == 0 ? "gru" : "lstm";
    static char att_buf[16];
    snprintf(att_buf, sizeof att_buf, "%s", att);
    o->attention = att_buf;
    o->bidirectional = strcmp(bi, "1") == 0;
    o->hidden = H, o->embed = E, o->layers = L;
    o->dropout = dropout;
    return 0;
}

/* Build the model of a checkpoint (options into *o) and load it; with
 * opt_out the Adam state too. */
int ex_translate_load_run(const char *path, ex_translate_run *r, ex_translate_opts *o,
                          tn_meta *meta, tn_optim **opt_out)
{
    memset(r, 0, sizeof *r);
    int64_t ml;
    bool s2s; /* the library's s2s.* keys, or those of "translate 1" files */
    if (tn_load_meta(path, meta) || tn_meta_get_int(meta, "max_len", &ml) ||
        ((s2s = tn_meta_get(meta, "s2s.format") != NULL) && s2s_options(path, o, &r->so))) {
        fprintf(stderr, "translate: %s\n", tn_last_error());
        return -1;
    }
    if (ml < 1 || ml >= MAX_TOK || (!s2s && old_options(meta, o)) ||
        ex_translate_words_split(&r->sv, tn_meta_get(meta, "src_vocab")) ||
        ex_translate_words_split(&r->tv, tn_meta_get(meta, "tgt_vocab")) ||
        (s2s && (r->sv.n != r->so.src_vocab || r->tv.n != r->so.tgt_vocab))) {
        fprintf(stderr,
                "translate: %s: bad metadata (cell, attention, sizes, dropout, max_len, "
                "vocabularies)\n",
                path);
        ex_words_free(&r->sv);
        ex_words_free(&r->tv);
        return -1;
    }
    if (!o->max_len || o->max_len > ml)
        o->max_len = ml;
    const char *se = tn_meta_get(meta, "sparse_embed"); /* absent before the option: off */
    o->sparse_embed = se && strcmp(se, "1") == 0;
    /* the sizes against the file's tensors before the model is built from
     * them (tn_seq2seq_open did it for s2s.* keys): both embeddings, the
     * encoder's first input and last recurrent weights, the output layer */
    int64_t E = o->embed, H = o->hidden, L = o->layers;
    int64_t G = tn_cell_gates(ex_cell(o->cell));
    char hh[32], sizes[160];
    snprintf(hh, sizeof hh, "encoder.weight_hh_l%d", (int)L - 1);
    snprintf(sizes, sizeof sizes,
             "vocabularies %d and %d, embed %" PRId64 ", hidden %" PRId64 ", layers %" PRId64,
             r->sv.n, r->tv.n, E, H, L);
    ex_shape want[5] = {{"src_embed.weight", r->sv.n, E},
                        {"tgt_embed.weight", r->tv.n, E},
                        {"encoder.weight_ih_l0", G * H, E},
                        {hh, G * H, H},
                        {"out.weight", r->tv.n, H}};
    tn_rng rng;
    tn_rng_seed(&rng, 0);
    if ((!s2s && ex_check_shapes("translate", path, sizes, want, 5)) ||
        ex_translate_run_build(r, o, &rng)) {
        ex_words_free(&r->sv), ex_words_free(&r->tv);
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
        ex_translate_run_free(r);
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
        ex_translate_run_free(r);
        return -1;
    }
    if (opt_out)
        *opt_out = opt;
    else
        tn_optim_free(opt);
    return 0;
}
