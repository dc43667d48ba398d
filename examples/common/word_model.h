/* examples/common/word_model.h - word_lm's vocabulary, model, --vectors reader
 * and checkpoint loading. Built as the helper library tn_examples for
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
#include "vocab.h"

enum { UNK = 0, EOS = 1 };
/* Limits of the model a checkpoint may ask for, and of a word's length. */
enum { EX_WORD_MAX_DIM = 16384, EX_WORD_MAX_VOCAB = 4000000, EX_WORD_LEN_MAX = 1024 };

/* Whitespace within a line: space, tab, CR, VT, FF. */
bool ex_is_space(char c);

/* ex_lm_model named as PyTorch's word_language_model (encoder, rnn, decoder)
 * and initialised as it does; file: the checkpoint the sizes come from
 * (checked against its tensors first, see ex_lm_init), or NULL. Returns 0 or
 * -1 (message printed; nothing to free). */
int ex_word_model_init(ex_lm_model *m, tn_cell cell, int64_t V, int64_t E, int64_t H, int64_t L,
                       double dropout, bool tie, const char *file, tn_rng *r);

/* Set the embedding rows (weight [V, E]) of the words of v found in the
 * GloVe / word2vec text file path (--vectors). Returns the number of
 * vocabulary words found, or -1 (message printed). */
int64_t ex_load_vectors(const char *path, const ex_words *v, tn_tensor *weight);

/* Build the model and vocabulary a word_lm checkpoint describes and load
 * it (meta: initialised by the caller, filled here); crafted metadata
 * (format, cell, sizes, vocabulary, sizes that do not match the file's
 * tensors) is refused before anything large is allocated. With opt_out
 * (resume) also the optimizer (Adam with *ao, AdamW when its weight decay
 * is positive; the file must hold its state) and the carried state.
 * Returns 0, or -1 (message printed; nothing to free but meta). */
int ex_word_load_checkpoint(const char *path, ex_lm_model *m, ex_words *v, tn_meta *meta,
                            tn_optim **opt_out, const tn_adam_opts *ao);

#endif
