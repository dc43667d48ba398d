/* examples/translate_model.h - translate's vocabularies, options and
 * model, and the loading of its checkpoints (metadata, vocabularies, sizes
 * checked against the file's tensors, then the parameters). Built as the
 * static library tn_translate_model for translate and the fuzz target
 * tests/fuzz/fuzz_translate; not part of libtensor's API. Messages are
 * printed to stderr prefixed "translate:".
 */
#ifndef TN_EXAMPLES_TRANSLATE_MODEL_H
#define TN_EXAMPLES_TRANSLATE_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include <tensor/tensor.h>

enum { PAD = 0, SOS = 1, EOS = 2, UNK = 3, MAX_TOK = 64 };

typedef struct vocab {
    char **words; /* id -> word (owned) */
    int n, cap;
    /* open addressing: word -> id + 1 */
    int *slots;
    int nslots;
} vocab;

/* The id of w, or -1. */
int vocab_find(const vocab *v, const char *w);
/* Add w (if new); its id, or -1 when out of memory. */
int vocab_add(vocab *v, const char *w);
/* An empty vocabulary but for <pad>, <sos>, <eos>, <unk>. Returns 0 or -1
 * (out of memory). */
int vocab_init(vocab *v);
void vocab_free(vocab *v);
/* The words joined by newlines (for the checkpoint's metadata); malloc'd,
 * NULL when out of memory. */
char *vocab_join(const vocab *v);
/* The vocabulary of a checkpoint's metadata s (words joined by newlines;
 * NULL reads as empty) into v. Returns 0, or -1 for a repeated word, a
 * vocabulary not starting <pad>, <sos>, <eos>, <unk>, or out of memory
 * (free v either way). */
int vocab_split(vocab *v, const char *s);

/* translate's options (cli_parse fills them; a checkpoint sets the
 * model's). */
typedef struct opts {
    const char *data, *cell, *attention, *checkpoint, *log, *text, *out, *ref, *hyp;
    bool bidirectional, resume;
    int64_t hidden, embed, layers, batch, steps, max_len, threads, eval_every, save_every, beam;
    int64_t eval_pairs;
    double lr, clip, dropout, teacher_forcing;
    uint64_t seed;
    tn_sample_opts sample; /* sample without --beam */
} opts;

typedef struct run {
    tn_seq2seq m;
    tn_params ps;
    vocab sv, tv;
    tn_seq2seq_opts so;
} run;

void run_free(run *r);

/* A new model of o's sizes over r's vocabularies, initialised from rng.
 * Returns 0, or -1 (message printed; free r->ps). */
int run_build(run *r, const opts *o, tn_rng *rng);

/* Build the model of the checkpoint path (its options into *o) and load it
 * (meta: initialised by the caller, filled here): the metadata's cell,
 * attention, sizes, dropout and vocabularies are checked, and the sizes
 * against the file's tensors (cli_check_shapes) before anything is built;
 * with opt_out the Adam state too (learning rate o->lr), which the file
 * must hold.
 * Returns 0, or -1 (message printed; nothing to free but meta). */
int load_run(const char *path, run *r, opts *o, tn_meta *meta, tn_optim **opt_out);

#endif
