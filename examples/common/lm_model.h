/* examples/common/lm_model.h - the programs' side of the language model of
 * char_rnn and word_lm (and the model hidden_states reads): the library's
 * tn_lm (tensor/lm.h: the model, its checkpoints, training windows,
 * evaluation, streaming steps) with messages prefixed by the program, the
 * carried state of a training run, its optimizer, its several ranks and
 * its hooks for the training driver. Built into the helper library
 * tn_examples; not part of libtensor's API.
 *
 * Parameters are named as the PyTorch modules <embed> = Embedding(V, E),
 * rnn = LSTM/GRU/RNN(E, H, L, batch_first) and <head> = Linear(H, V), the
 * two names given by the program (char_rnn: "embed", "head"; word_lm, as
 * PyTorch's word_language_model: "encoder", "decoder").
 */
#ifndef TN_EXAMPLES_LM_MODEL_H
#define TN_EXAMPLES_LM_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include <tensor/tensor.h>

#include "train.h"

typedef struct ex_lm_spec {
    tn_cell cell;
    int64_t V, E, H, L;
    double dropout;    /* between recurrent layers */
    double io_dropout; /* on the embeddings and before the head (0: none) */
    bool tie;          /* the head's weight is the embedding (E must equal H) */
    double init_range; /* 0, or word_language_model's init (tn_lm_opts) */
    const char *embed_name, *head_name;
    const char *prog; /* prefix of messages */
    const char *file; /* the checkpoint the sizes come from, or NULL (a new model) */
} ex_lm_spec;

/* The library's model (tensor/lm.h: its options in lm.o, its parameters
 * in lm.ps) with the state carried from one training window to the next. */
typedef struct ex_lm_model {
    tn_lm lm;
    tn_lm_state *st; /* [L, B, H] (NULL until ex_lm_reset_state) */
    const char *prog;
} ex_lm_model;

/* A new float32 model as s describes (tn_lm_init), initialised from r as
 * PyTorch's modules; no carried state yet (ex_lm_reset_state). With
 * s->file, the sizes are first checked against that checkpoint's tensors
 * (tn_lm_open), so that crafted metadata is refused before anything is
 * allocated. Returns 0, or -1 (message printed; nothing to free). */
int ex_lm_init(ex_lm_model *m, const ex_lm_spec *s, tn_rng *r);

/* (Re)allocate the carried state for batch B, zeroed. Returns 0, or -1
 * (out of memory, message printed; no state). */
int ex_lm_reset_state(ex_lm_model *m, int64_t B);

/* Free the parameters and the carried state. */
void ex_lm_free(ex_lm_model *m);

/* A new Adam (AdamW when adamw) with options *ao over m's parameters, or
 * NULL (message printed, e.g. for --lr inf). */
tn_optim *ex_lm_optim(ex_lm_model *m, const tn_adam_opts *ao, bool adamw);

/* tn_lm_save of m, its carried state and opt's state (NULL: none) with
 * meta (plus the lm.* keys) to path. Returns 0, or -1 (message printed). */
int ex_lm_save(ex_lm_model *m, const char *path, tn_optim *opt, const tn_meta *meta);

/* Load path into m, whose parameters the caller built from the file's
 * metadata (meta: initialised by the caller, filled here). A checkpoint of
 * a training run also holds the carried state ("state.h" [L, B, H]) and the
 * optimizer's state: with opt_out (resume) both are loaded too (strictly),
 * the latter into *opt_out = ex_lm_optim(m, ao, adamw), and the carried
 * state keeps the file's batch; a file with the model's tensors only
 * (written by PyTorch) gives *opt_out = NULL. Without opt_out both are
 * skipped. A carried state that is not loaded is a zeroed batch of 1.
 * Returns 0, or -1 (message printed; m is left for the caller to free). */
int ex_lm_load(ex_lm_model *m, const char *path, const tn_adam_opts *ao, bool adamw, tn_meta *meta,
               tn_optim **opt_out);

/* tn_lm_eval of ids[0..n) (a tape of the caller's): the mean NLL, or NAN
 * for n < 2 (nothing printed: the caller says which data is short), and
 * on an error or a loss that is not finite (message printed naming `what`,
 * the checkpoint or "validation"). The carried state is not used. */
double ex_lm_eval(ex_lm_model *m, tn_tape *tp, const int32_t *ids, int64_t n, const char *what);

/* ---- several ranks (train_dist.h) ---- */

/* Collective: the carried states [L, b, H] of every rank's b streams
 * gathered into a model on rank 0: *full is m with a carried state
 * [L, b*N, H] of its own (rank r's streams at rows r*b..), for writing a checkpoint of
 * the whole run; release them with ex_lm_free_state(full). Other ranks
 * get nothing in *full. Returns 0 or -1 on every rank. */
int ex_lm_gather_state(ex_lm_model *m, ex_lm_model *full);
/* Free the state tensors of a gathered model (rank 0; nothing elsewhere). */
void ex_lm_free_state(ex_lm_model *full);
/* Collective: save a checkpoint of the whole run. The ranks' part of the
 * metadata (ex_train_meta_ranks) and the carried states (ex_lm_gather_state)
 * are gathered on rank 0, which calls write(ctx, full, meta, step) to
 * complete meta and write the file of the gathered model full; every rank
 * returns the same: 0, or -1 (message printed). */
int ex_lm_save_run(ex_lm_model *m, tn_tape *tp, int64_t step, void *ctx,
                   int (*write)(void *ctx, ex_lm_model *full, tn_meta *meta, int64_t step));
/* Keep rows [r0, r0 + b) of the carried state [L, B, H] (this rank's
 * streams of a whole run's state loaded from a checkpoint). Returns 0 or
 * -1 (out of memory; the state is unchanged). */
int ex_lm_take_rows(ex_lm_model *m, int64_t r0, int64_t b);

/* ---- training through the driver (train.h) ---- */

/* A training run of a stream language model: the ctx of the hooks below
 * (a program's own ctx may start with it and add what its save hook
 * needs). */
typedef struct ex_lm_run {
    ex_lm_model *m;
    const int32_t *ids;      /* the training split: B streams of `stream` tokens */
    int64_t stream, r0, pos; /* tokens per stream, this rank's first, the window */
    tn_tensor *x, *y;        /* the window's inputs [b, T] and targets [b*T] */
    tn_rnn_out fin;          /* the window's final state, carried to the next */
    const int32_t *val;      /* the validation tokens evaluated */
    int64_t n_val;
    /* ex_lm_run_save's writer of the gathered model's checkpoint (rank 0;
     * see ex_lm_save_run), called with the run itself as ctx */
    int (*write)(void *run, ex_lm_model *full, tn_meta *meta, int64_t step);
} ex_lm_run;

/* forward: the next window (tn_lm_window) and its mean cross-entropy.
 * stepped: the state carried, the window advanced. evaluate: val_loss
 * (ex_lm_eval of val) and val_ppl, the columns ex_lm_run_cols names. */
tn_tensor *ex_lm_run_forward(void *run, tn_tape *tp, int64_t step);
int ex_lm_run_stepped(void *run);
int ex_lm_run_evaluate(void *run, tn_tape *tp, double *values);
/* save: the whole run's checkpoint (collective), ex_lm_save_run with the
 * run's write. */
int ex_lm_run_save(void *run, tn_tape *tp, int64_t step);
extern const ex_col ex_lm_run_cols[2];

#endif
