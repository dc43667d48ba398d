/* tests/fuzz/fuzz_lm.c - libFuzzer target for the library's language-model
 * checkpoints (issue 21): every input is written to a scratch file and
 * loaded with tn_lm_load (src/nn/lm.c: the lm.* metadata parsed and
 * checked, the sizes checked against the file's tensors, the model built,
 * then tn_lm_load_params reads the parameters and the carried state).
 * A model that loads must be what its options say (the embedding [V, E],
 * the carried state [L, B, H] with c for an LSTM only) and must take one
 * step of tn_lm_step (from the file's state, or a new one of batch 1).
 * Built with ASan + UBSan: any report, leak, crash or abort is a finding;
 * so is a loaded model that breaks those promises. With the environment
 * variable TN_FUZZ_LM_EXPECT_LOAD set, an input that does not load is a
 * finding too (the ctest fuzz_lm_valid_seeds runs the valid seeds so).
 * Seeds: tests/fuzz/corpus_lm (make_lm_corpus.py). */
#include "fuzz_common.h"
#include "tensor/tensor.h"

#include <stdbool.h>
#include <stdlib.h>

static bool expect_load;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    tn_runtime_init();
    expect_load = getenv("TN_FUZZ_LM_EXPECT_LOAD") != NULL;
    return 0;
}

/* Whether t is a [d0, d1, d2] tensor of dtype dt. */
static bool shaped(const tn_tensor *t, tn_dtype dt, int64_t d0, int64_t d1, int64_t d2)
{
    return t && t->dtype == dt && t->ndim == 3 && t->shape[0] == d0 && t->shape[1] == d1 &&
           t->shape[2] == d2;
}

/* What tn_lm_load promises about a model and state it returns; then one
 * streaming step through them. */
static void check_model(const tn_lm *m, tn_lm_state *st)
{
    const tn_lm_opts *o = &m->o;
    const tn_tensor *w = m->embed.weight;
    if (!w || w->ndim != 2 || w->shape[0] != o->vocab || w->shape[1] != o->embed ||
        w->dtype != m->dtype)
        abort();
    if (st) {
        int64_t b = st->h ? st->h->shape[1] : 0;
        if (!shaped(st->h, m->dtype, o->layers, b, o->hidden) ||
            (o->cell == TN_CELL_LSTM ? !shaped(st->c, m->dtype, o->layers, b, o->hidden)
                                     : st->c != NULL))
            abort();
    }
    tn_lm_state *own = st ? NULL : tn_lm_state_new(m, 1);
    tn_lm_state *s = st ? st : own;
    if (!s)
        return; /* out of memory */
    int64_t b = s->h->shape[1];
    int32_t *ids = malloc(sizeof *ids * (size_t)b);
    float *logits = malloc(sizeof *logits * (size_t)(b * o->vocab));
    if (ids && logits) {
        for (int64_t i = 0; i < b; i++)
            ids[i] = (int32_t)(i % o->vocab);
        if (tn_lm_step(m, s, ids, logits) != TN_OK && tn_last_status() != TN_ERR_MEMORY)
            abort();
    }
    free(ids);
    free(logits);
    tn_lm_state_free(own);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file("lm", data, size);
    if (!path)
        return 0;
    tn_lm m;
    tn_lm_state *st = NULL;
    tn_meta meta;
    tn_meta_init(&meta);
    tn_status rc = tn_lm_load(path, &m, &st, &meta);
    if (rc == TN_OK) {
        check_model(&m, st);
        tn_lm_state_free(st);
        tn_lm_free(&m);
    } else if (expect_load) {
        fprintf(stderr, "fuzz_lm: %s\n", tn_last_error());
        abort();
    }
    tn_meta_free(&meta);
    unlink(path);
    return 0;
}
