/* examples/common/lm_model.h - the language model of char_rnn and word_lm (and
 * the model hidden_states reads): an embedding, recurrent layers and an
 * output layer over a stream of token ids, with the recurrent state
 * carried from one window to the next (truncated BPTT). Built into the
 * helper library tn_examples; not part of libtensor's API.
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
    const char *embed_name, *head_name;
    const char *prog; /* prefix of messages */
    const char *file; /* the checkpoint the sizes come from, or NULL (a new model) */
} ex_lm_spec;

typedef struct ex_lm_model {
    tn_cell cell;
    int64_t V, E, H, L;
    bool tied;
    double io_dropout;
    const char *prog;
    tn_params ps;
    tn_embedding embed;
    tn_rnn rnn;
    tn_linear head;
    tn_tensor *h, *c; /* carried state [L, B, H] (heap, no grad); c: LSTM only */
} ex_lm_model;

/* A new float32 model as s describes, initialised from r as PyTorch's
 * modules; no carried state yet (ex_lm_reset_state). With s->file, the sizes
 * are first checked against that checkpoint's tensors (ex_check_shapes:
 * the embedding, the first layer's input weights, the last layer's
 * recurrent weights, the untied head), so that crafted metadata is refused
 * before anything is allocated. Returns 0, or -1 (message printed; nothing
 * to free). */
int ex_lm_init(ex_lm_model *m, const ex_lm_spec *s, tn_rng *r);

/* (Re)allocate the carried state for batch B, zeroed. */
void ex_lm_reset_state(ex_lm_model *m, int64_t B);

/* Free the parameters and the carried state. */
void ex_lm_free(ex_lm_model *m);

/* Logits [B*T, V] for ids [B, T] (I32), starting from the carried state;
 * tape tensors. The final state goes to *fin (fin->output is the last
 * layer's h at every step, [B, T, H]); ex_lm_keep_state copies it into the
 * carried state once the tape no longer needs the old one (after
 * backward): the next window then starts from it with no history.
 * NULL on error (the tape's error is set). */
tn_tensor *ex_lm_forward(tn_tape *tp, ex_lm_model *m, tn_tensor *ids, tn_rnn_out *fin);

/* The mean cross-entropy of the next-token targets [B*T] (I32) after ids
 * [B, T]: ex_lm_forward with the head and the loss fused
 * (tn_linear_cross_entropy: the [B*T, V] logits are never stored whole).
 * NULL on error (the tape holds it). */
tn_tensor *ex_lm_loss(tn_tape *tp, ex_lm_model *m, tn_tensor *ids, tn_tensor *targets,
                      tn_rnn_out *fin);

/* Copy the final state of an ex_lm_forward into the carried state. */
void ex_lm_keep_state(ex_lm_model *m, const tn_rnn_out *fin);

/* The carried state as a parameter set ("state.h", "state.c") whose
 * tensors are m's h and c, so it is saved and loaded with the rest. The
 * set borrows them: release it with free(st->items), never
 * tn_params_free. */
void ex_lm_state_set(ex_lm_model *m, tn_params *st);

/* The next window of truncated BPTT over the streams r0 .. r0+B of ids
 * (each `stream` tokens long, stream b at ids + b * stream) at *pos: x
 * [B, T] (I32) gets the inputs, y [B*T] (I32) the tokens that follow them.
 * When the window would run past the streams' end, *pos restarts at 0 and
 * the carried state is zeroed. The caller advances *pos by T after the
 * step. */
void ex_lm_window(ex_lm_model *m, const int32_t *ids, int64_t stream, int64_t r0, int64_t *pos,
               tn_tensor *x, tn_tensor *y);

/* A new Adam (AdamW when adamw) with options *ao over m's parameters, or
 * NULL (message printed, e.g. for --lr inf). */
tn_optim *ex_lm_optim(ex_lm_model *m, const tn_adam_opts *ao, bool adamw);

/* Write m's parameters, opt's state and the carried state (ex_lm_state_set)
 * with meta to path (tn_save: atomic). Returns 0, or -1 (message
 * printed). */
int ex_lm_save(ex_lm_model *m, const char *path, tn_optim *opt, const tn_meta *meta);

/* Load path into m, whose parameters the caller built from the file's
 * metadata (meta: initialised by the caller, filled here). A checkpoint of
 * a training run also holds the carried state ("state.h" [L, B, H], B in
 * 1..65536) and the optimizer's state: both are loaded too (strictly), the
 * latter into ex_lm_optim(m, ao, adamw). With opt_out (resume) *opt_out gets
 * that optimizer and the carried state keeps the file's batch; a file with
 * the model's tensors only (written by PyTorch) gives *opt_out = NULL.
 * Without opt_out the optimizer is dropped and the carried state is a
 * zeroed batch of 1. Returns 0, or -1 (message printed; m is left for the
 * caller to free). */
int ex_lm_load(ex_lm_model *m, const char *path, const tn_adam_opts *ao, bool adamw, tn_meta *meta,
            tn_optim **opt_out);

/* Mean negative log-likelihood (nats per token) of ids[1..n) given the
 * tokens before, reading ids as one stream from a zero state in windows of
 * 256 with the state carried; no grad, eval mode (dropout off). The
 * carried training state is left as it was. NAN for n < 2 (nothing
 * printed: the caller says which data is short), and on an error or a loss
 * that is not finite (a broken model), message printed naming `what` (the
 * checkpoint, or "validation"). */
double ex_lm_eval(ex_lm_model *m, tn_tape *tp, const int32_t *ids, int64_t n, const char *what);

/* ---- several ranks (train_dist.h) ---- */

/* Collective: the carried states [L, b, H] of every rank's b streams
 * gathered into a model on rank 0: *full is m with h (and c) [L, b*N, H]
 * of its own (rank r's streams at rows r*b..), for writing a checkpoint of
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
} ex_lm_run;

/* forward: the next window (ex_lm_window) and its mean cross-entropy.
 * stepped: the state carried, the window advanced. evaluate: val_loss
 * (ex_lm_eval of val) and val_ppl, the columns ex_lm_run_cols names. */
tn_tensor *ex_lm_run_forward(void *run, tn_tape *tp, int64_t step);
int ex_lm_run_stepped(void *run);
int ex_lm_run_evaluate(void *run, tn_tape *tp, double *values);
extern const ex_col ex_lm_run_cols[2];

#endif
