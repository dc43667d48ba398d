/* examples/common/char_model.h - the character language model of char_rnn: its
 * text and vocabulary, the model (embedding, recurrent layers, head), and
 * loading it from a char_rnn checkpoint. Shared by char_rnn and
 * hidden_states; built as the helper library tn_examples, not part of
 * libtensor's API. Messages are printed to stderr prefixed "char_rnn:"
 * (the checkpoint format's name).
 *
 * Model (PyTorch names): embed = Embedding(V, E), rnn = LSTM/GRU/RNN(E, H,
 * L, batch_first), head = Linear(H, V). The vocabulary is the sorted
 * distinct code points of the training text.
 */
#ifndef TN_EXAMPLES_CHAR_MODEL_H
#define TN_EXAMPLES_CHAR_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include <tensor/tensor.h>

#include "lm_model.h"

/* Limits of the model a checkpoint's metadata may ask for. */
#define EX_CHAR_MAX_VOCAB 4096
#define EX_CHAR_MAX_DIM   65536

/* A text as token ids, and the vocabulary that maps them. */
typedef struct ex_text {
    int32_t *ids; /* token ids (malloc'd; the owner frees them) */
    int64_t n;
    uint32_t vocab[EX_CHAR_MAX_VOCAB]; /* id -> code point, sorted */
    int V;
} ex_text;

/* UTF-8 s[0..n) decoded into out (room for cap code points); invalid
 * bytes become U+FFFD. Returns the number of code points, or -1 when there
 * are more than cap (out then holds the first cap). */
int64_t ex_utf8_decode(const unsigned char *s, int64_t n, uint32_t *out, int64_t cap);

/* English-like prose from a small grammar with a fixed seed (about 220 KB,
 * the same every time): char_rnn's training text when no --data is given.
 * Returns a malloc'd buffer of *n bytes (not NUL-terminated; NULL when out
 * of memory); the caller frees it. */
unsigned char *ex_generated_text(int64_t *n);

/* The id of code point cp in t's vocabulary, or -1. */
int ex_text_index(const ex_text *t, uint32_t cp);

/* Decode bytes[0..nbytes) into t->ids (malloc'd, t->n of them). With
 * build_vocab, t's vocabulary becomes the text's distinct characters
 * (refused above EX_CHAR_MAX_VOCAB); otherwise t's vocabulary maps them
 * and a character outside it is refused, naming `what`, the character and
 * its position. Returns 0, or -1 (message printed; t->ids NULL). */
int ex_text_load(ex_text *t, const unsigned char *bytes, int64_t nbytes, bool build_vocab,
                 const char *what);

/* char_rnn's model: ex_lm_model with the names embed and head, messages
 * prefixed "char_rnn:", initialised from r as PyTorch's modules; no
 * carried state yet (ex_lm_reset_state). file: the checkpoint the sizes come
 * from (checked against its tensors first, see ex_lm_init), or NULL. Returns
 * 0, or -1 (message printed; nothing to free). */
int ex_char_model_init(ex_lm_model *m, tn_cell cell, int64_t V, int64_t E, int64_t H, int64_t L,
                       double dropout, const char *file, tn_rng *r);

/* Build the model (and t's vocabulary) from the checkpoint's metadata
 * (meta: initialised by the caller, filled here) and load its parameters.
 * A checkpoint written by PyTorch has only the model's tensors; one written
 * by char_rnn train also has optimizer state and the carried state: when
 * opt_out is non-NULL those are loaded too (resume; *opt_out gets an Adam
 * of learning rate lr, or NULL for a model-only file), otherwise the
 * carried state is a zeroed batch of 1. Crafted metadata (unknown cell,
 * sizes beyond the limits, an unsorted vocabulary) is refused. Returns 0,
 * or -1 (message printed; nothing to free but meta). */
int ex_char_load_checkpoint(const char *path, ex_lm_model *m, ex_text *t, tn_meta *meta,
                            double dropout, tn_optim **opt_out, double lr);

/* The model and vocabulary of a checkpoint for inference (no dropout, no
 * optimizer, carried state a zeroed batch of 1). Returns 0 or -1 (message
 * printed). */
int ex_char_load_model(const char *path, ex_lm_model *m, ex_text *t);

#endif
