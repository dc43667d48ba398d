/* tests/fuzz/fuzz_word_vectors.c - libFuzzer target for word_lm's --vectors
 * reader (issue 19): every input is written to a scratch file and read
 * with ex_load_vectors (examples/common/word_model.c) as GloVe / word2vec text into
 * the embedding [7, 4] of a fixed vocabulary (<unk>, <eos>, the, cat,
 * sees, moon, "."), as word_lm train --vectors does. Built with ASan +
 * UBSan: any report, leak, crash or abort is a finding; so is a count of
 * words found outside -1..7, a value not finite left in the embedding, or
 * an accepted file that found no word yet changed it. Refusals print a
 * message on stderr (run with -close_fd_mask=2 to keep the run quiet).
 * Seeds: tests/fuzz/corpus_vectors (make_corpus.py), the files of
 * tests/test_word_lm.sh's --vectors cases among them. */
#include "fuzz_common.h"
#include "word_model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static ex_words v;
static tn_tensor *w;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    static const char *const words[] = {"<unk>", "<eos>", "the", "cat", "sees", "moon", "."};
    for (int i = 0; i < 7; i++)
        if (ex_words_add(&v, words[i], strlen(words[i])) != i)
            abort();
    w = tn_tensor_new(TN_F32, 2, (int64_t[]){7, 4});
    if (!w)
        abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file("vectors", data, size);
    if (!path)
        return 0;
    tn_tensor_fill(w, 0.25);
    int64_t found = ex_load_vectors(path, &v, w);
    if (found < -1 || found > v.n)
        abort();
    for (int64_t i = 0; i < 7 * 4; i++) {
        double x = tn_tensor_get(w, i);
        if (!isfinite(x) || (found == 0 && x != 0.25))
            abort();
    }
    unlink(path);
    return 0;
}
