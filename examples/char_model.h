/* examples/char_model.h - the character language model of char_rnn: its
 * text and vocabulary, the model (embedding, recurrent layers, head), and
 * loading it from a char_rnn checkpoint. Shared by char_rnn and
 * hidden_states; built as the static library tn_char_model, not part of
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

/* Limits of the model a checkpoint's metadata may ask for. */
#define CHAR_RNN_MAX_VOCAB 4096
#define CHAR_RNN_MAX_DIM 65536

/* A text as token ids, and the vocabulary that maps them. */
typedef struct text {
    int32_t *ids; /* token ids (malloc'd; the owner frees them) */
    int64_t n;
    uint32_t vocab[CHAR_RNN_MAX_VOCAB]; /* id -> code point, sorted */
    int V;
} text;

/* UTF-8 s[0..n) decoded into out (room for cap code points); invalid
 * bytes become U+FFFD. Returns the number of code points, or -1 when there
 * are more than cap (out then holds the first cap). */
int64_t utf8_decode(const unsigned char *s, int64_t n, uint32_t *out, int64_t cap);

/* English-like prose from a small grammar with a fixed seed (about 220 KB,
 * the same every time): char_rnn's training text when no --data is given.
 * Returns a malloc'd buffer of *n bytes (not NUL-terminated; NULL when out
 * of memory); the caller frees it. */
unsigned char *generated_text(int64_t *n);

/* The id of code point cp in t's vocabulary, or -1. */
int vocab_index(const text *t, uint32_t cp);

/* Decode bytes[0..nbytes) into t->ids (malloc'd, t->n of them). With
 * build_vocab, t's vocabulary becomes the text's distinct characters
 * (refused above CHAR_RNN_MAX_VOCAB); otherwise t's vocabulary maps them
 * and a character outside it is refused, naming `what`, the character and
 * its position. Returns 0, or -1 (message printed; t->ids NULL). */
int text_load(text *t, const unsigned char *bytes, int64_t nbytes, bool build_vocab,
              const char *what);

typedef struct model {
    tn_cell cell;
    int64_t V, E, H, L;
    tn_params ps;
    tn_embedding embed;
    tn_rnn rnn;
    tn_linear head;
    tn_tensor *h, *c; /* carried state [L, B, H] (heap, no grad); c: LSTM only */
} model;

/* A new model (float32) of cell, vocabulary V, embedding E, hidden H, L
 * layers, dropout between layers, initialised from r as PyTorch's modules;
 * no carried state yet (model_reset_state). Returns 0, or -1 (message
 * printed; nothing to free). */
int model_init(model *m, tn_cell cell, int64_t V, int64_t E, int64_t H, int64_t L,
               double dropout, tn_rng *r);

/* (Re)allocate the carried state for batch B, zeroed. */
void model_reset_state(model *m, int64_t B);

/* Free the parameters and the carried state. */
void model_free(model *m);

/* Logits [B*T, V] for ids [B, T] (I32), starting from the carried state;
 * tape tensors. The final state goes to *fin (fin->output is the last
 * layer's h at every step, [B, T, H]); model_keep_state copies it into the
 * carried state once the tape no longer needs the old one (after backward):
 * the next window then starts from it with no history (truncated BPTT).
 * NULL on error (the tape's error is set). */
tn_tensor *model_forward(tn_tape *tp, model *m, tn_tensor *ids, tn_rnn_out *fin);

/* Copy the final state of a model_forward into the carried state. */
void model_keep_state(model *m, const tn_rnn_out *fin);

/* The carried state as a parameter set ("state.h", "state.c") whose
 * tensors are m's h and c, so it is saved and loaded with the rest. The
 * set borrows them: release it with free(st->items), never
 * tn_params_free. */
void state_set(model *m, tn_params *st);

/* Build the model (and t's vocabulary) from the checkpoint's metadata
 * (meta: initialised by the caller, filled here) and load its parameters.
 * A checkpoint written by PyTorch has only the model's tensors; one written
 * by char_rnn train also has optimizer state and the carried state: when
 * opt_out is non-NULL those are loaded too (resume; *opt_out gets an Adam
 * of learning rate lr, or NULL for a model-only file), otherwise the
 * carried state is a zeroed batch of 1. Crafted metadata (unknown cell,
 * sizes beyond the limits, an unsorted vocabulary) is refused. Returns 0,
 * or -1 (message printed; nothing to free but meta). */
int load_checkpoint(const char *path, model *m, text *t, tn_meta *meta, double dropout,
                    tn_optim **opt_out, double lr);

/* The model and vocabulary of a checkpoint for inference (no dropout, no
 * optimizer, carried state a zeroed batch of 1). Returns 0 or -1 (message
 * printed). */
int load_model(const char *path, model *m, text *t);

#endif
