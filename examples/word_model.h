/* examples/word_model.h - word_lm's vocabulary, model, --vectors reader
 * and checkpoint loading. Built as the static library tn_word_model for
 * word_lm and the fuzz targets tests/fuzz/fuzz_word_lm and
 * fuzz_word_vectors; not part of libtensor's API. Messages are printed to
 * stderr prefixed "word_lm:".
 */
#ifndef TN_EXAMPLES_WORD_MODEL_H
#define TN_EXAMPLES_WORD_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tensor/tensor.h>

#include "lm_model.h"

enum { UNK = 0, EOS = 1 };
/* Limits of the model a checkpoint may ask for, and of a word's length. */
enum { WORD_LM_MAX_DIM = 16384, WORD_LM_MAX_VOCAB = 4000000, WORD_MAX = 1024 };

/* ---- vocabulary: words and a hash table of them ---- */

typedef struct vocab {
    char **words; /* id -> word (owned) */
    int64_t *count;
    int32_t n, cap;
    int32_t *slots; /* open addressing: id + 1, 0 = empty */
    int64_t nslots;
} vocab;

/* The id of word s[0..n), or -1. */
int32_t vocab_find(const vocab *v, const char *s, size_t n);
/* The id of s[0..n), added (count 0) when new; -1 when out of memory. */
int32_t vocab_add(vocab *v, const char *s, size_t n);
void vocab_free(vocab *v);

/* Whitespace within a line: space, tab, CR, VT, FF. */
bool is_space(char c);

/* lm_model named as PyTorch's word_language_model (encoder, rnn, decoder)
 * and initialised as it does; file: the checkpoint the sizes come from
 * (checked against its tensors first, see lm_init), or NULL. Returns 0 or
 * -1 (message printed; nothing to free). */
int model_init(lm_model *m, tn_cell cell, int64_t V, int64_t E, int64_t H, int64_t L,
               double dropout, bool tie, const char *file, tn_rng *r);

/* Set the embedding rows (weight [V, E]) of the words of v found in the
 * GloVe / word2vec text file path (--vectors). Returns the number of
 * vocabulary words found, or -1 (message printed). */
int64_t load_vectors(const char *path, const vocab *v, tn_tensor *weight);

/* Build the model and vocabulary a word_lm checkpoint describes and load
 * it (meta: initialised by the caller, filled here); crafted metadata
 * (format, cell, sizes, vocabulary, sizes that do not match the file's
 * tensors) is refused before anything large is allocated. With opt_out
 * (resume) also the optimizer (Adam with *ao, AdamW when its weight decay
 * is positive; the file must hold its state) and the carried state.
 * Returns 0, or -1 (message printed; nothing to free but meta). */
int load_checkpoint(const char *path, lm_model *m, vocab *v, tn_meta *meta, tn_optim **opt_out,
                    const tn_adam_opts *ao);

#endif
