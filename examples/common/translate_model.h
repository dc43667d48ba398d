/* examples/common/translate_model.h - translate's vocabularies, options and
 * model, and the loading of its checkpoints (metadata, vocabularies, sizes
 * checked against the file's tensors, then the parameters). Built as the
 * helper library tn_examples for translate and the fuzz target
 * tests/fuzz/fuzz_translate; not part of libtensor's API. Messages are
 * printed to stderr prefixed "translate:".
 */
#ifndef TN_EXAMPLES_TRANSLATE_MODEL_H
#define TN_EXAMPLES_TRANSLATE_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include <tensor/tensor.h>

#include "vocab.h"

enum { PAD = 0, SOS = 1, EOS = 2, UNK = 3, MAX_TOK = 64 };

/* An empty vocabulary but for <pad>, <sos>, <eos>, <unk> (ids PAD, SOS,
 * EOS, UNK). Returns 0 or -1 (out of memory; v freed). */
int ex_translate_words_init(ex_words *v);
/* The vocabulary of a checkpoint's metadata s (ex_words_join's text; NULL
 * reads as empty) into v. Returns 0, or -1 for an empty or repeated word or
 * a vocabulary not starting <pad>, <sos>, <eos>, <unk> (v freed). */
int ex_translate_words_split(ex_words *v, const char *s);

/* translate's options (ex_parse fills them; a checkpoint sets the
 * model's). */
typedef struct ex_translate_opts {
    const char *data, *cell, *attention, *checkpoint, *log, *loss_log, *curve, *text, *out, *ref,
        *hyp;
    bool bidirectional, resume, sparse_embed;
    int64_t hidden, embed, layers, batch, steps, max_len, threads, eval_every, save_every, beam;
    int64_t eval_pairs;
    double lr, clip, dropout, teacher_forcing;
    uint64_t seed;
    tn_sample_opts sample; /* sample without --beam */
} ex_translate_opts;

typedef struct ex_translate_run {
    tn_seq2seq m;
    tn_params ps;
    ex_words sv, tv;
    tn_seq2seq_opts so;
} ex_translate_run;

void ex_translate_run_free(ex_translate_run *r);

/* A new model of o's sizes over r's vocabularies, initialised from rng.
 * Returns 0, or -1 (message printed; free r->ps). */
int ex_translate_run_build(ex_translate_run *r, const ex_translate_opts *o, tn_rng *rng);

/* Build the model of the checkpoint path (its options into *o) and load it
 * (meta: initialised by the caller, filled here): the metadata's cell,
 * attention, sizes, dropout and vocabularies are checked, and the sizes
 * against the file's tensors (ex_check_shapes) before anything is built;
 * with opt_out the Adam state too (learning rate o->lr), which the file
 * must hold.
 * Returns 0, or -1 (message printed; nothing to free but meta). */
int ex_translate_load_run(const char *path, ex_translate_run *r, ex_translate_opts *o,
                          tn_meta *meta, tn_optim **opt_out);

#endif
