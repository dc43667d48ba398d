/* tests/fuzz/fuzz_translate.c - libFuzzer target for translate's checkpoint
 * loading (issue 19): every input is written to a scratch file and loaded
 * with ex_translate_load_run (examples/common/translate_model.c, the function translate's
 * sample, eval, attention and train --resume call): the metadata's cell,
 * attention, sizes and two vocabularies are parsed and checked, the sizes
 * against the file's tensors (ex_check_shapes), then the model is built
 * and its parameters (and Adam state, when the file holds it) are loaded.
 * An input that loads is loaded again as train --resume does (opt_out).
 * Built with ASan + UBSan: any report, leak, crash or abort is a finding;
 * so is a loaded model whose vocabularies or sizes differ from the
 * metadata's checks (the program would index out of them). Refusals print
 * a message on stderr (run with -close_fd_mask=2 to keep the run quiet).
 * Seeds: tests/fuzz/corpus_translate (make_corpus.py), the crafted
 * checkpoints of tests/test_translate.sh among them. */
#include "fuzz_common.h"
#include "translate_model.h"

#include <stdlib.h>

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    tn_runtime_init();
    return 0;
}

/* What ex_translate_load_run promises the decoding commands about a model it returns. */
static void check_run(const ex_translate_run *r, const ex_translate_opts *o)
{
    if (r->sv.n < 4 || r->tv.n < 4 || r->so.src_vocab != r->sv.n || r->so.tgt_vocab != r->tv.n ||
        o->hidden < 1 || o->embed < 1 || o->layers < 1 || o->max_len < 1 || o->max_len >= MAX_TOK)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file("translate", data, size);
    if (!path)
        return 0;
    for (int resume = 0; resume < 2; resume++) {
        ex_translate_opts o = {.lr = 1e-3};
        ex_translate_run r;
        tn_meta meta;
        tn_meta_init(&meta);
        tn_optim *opt = NULL;
        int rc = ex_translate_load_run(path, &r, &o, &meta, resume ? &opt : NULL);
        tn_meta_free(&meta);
        if (rc != 0)
            break; /* refused: resuming would be refused too */
        check_run(&r, &o);
        tn_optim_free(opt);
        ex_translate_run_free(&r);
    }
    unlink(path);
    return 0;
}
