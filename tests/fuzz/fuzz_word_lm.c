/* tests/fuzz/fuzz_word_lm.c - libFuzzer target for word_lm's checkpoint
 * loading (issue 19): every input is written to a scratch file and loaded
 * with ex_word_load_checkpoint (examples/common/word_model.c, the function word_lm's eval,
 * sample, vectors and train --resume call): the metadata's format, cell,
 * sizes and vocabulary are parsed and checked, the sizes against the
 * file's tensors (ex_lm_init, tn_lm_open), then the model is built and
 * ex_lm_load reads the parameters, the carried state and the optimizer's
 * state. An input that loads is loaded again as train --resume does
 * (opt_out). Built with ASan + UBSan: any report, leak, crash or abort is
 * a finding; so is a loaded model whose vocabulary or carried state does
 * not match its sizes (the program would index out of them). Refusals
 * print a message on stderr (run with -close_fd_mask=2 to keep the run
 * quiet). Seeds: tests/fuzz/corpus_word_lm (make_corpus.py), the crafted
 * checkpoints of tests/test_word_lm.sh among them. */
#include "fuzz_common.h"
#include "word_model.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    tn_runtime_init();
    return 0;
}

/* What ex_word_load_checkpoint promises the commands about a model it returns. */
static void check_model(const ex_lm_model *m, const ex_words *v)
{
    const tn_tensor *h = m->st ? m->st->h : NULL;
    if (v->n < 2 || m->lm.o.vocab != v->n || strcmp(v->words[UNK], "<unk>") ||
        strcmp(v->words[EOS], "<eos>") || !h || h->ndim != 3 || h->shape[0] != m->lm.o.layers ||
        h->shape[2] != m->lm.o.hidden || m->lm.embed.weight->shape[0] != v->n)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file("word_lm", data, size);
    if (!path)
        return 0;
    tn_adam_opts ao = tn_adam_defaults();
    for (int resume = 0; resume < 2; resume++) {
        ex_lm_model m;
        ex_words v;
        tn_meta meta;
        tn_meta_init(&meta);
        tn_optim *opt = NULL;
        int rc = ex_word_load_checkpoint(path, &m, &v, &meta, resume ? &opt : NULL, &ao);
        tn_meta_free(&meta);
        if (rc != 0)
            break; /* refused: resuming would be refused too */
        check_model(&m, &v);
        tn_optim_free(opt);
        ex_lm_free(&m);
        ex_words_free(&v);
    }
    unlink(path);
    return 0;
}
