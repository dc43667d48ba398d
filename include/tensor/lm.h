/** @file
 * tensor/lm.h - a stream language model: Embedding -> recurrent layers ->
 * (dropout) -> Linear head over token ids, with its configuration saved in
 * the checkpoint, streaming inference one token at a time, truncated-BPTT
 * training windows with the state carried between them, and evaluation.
 *
 * The model is PyTorch's
 *
 *   <embed> = nn.Embedding(V, E)
 *   rnn     = nn.LSTM / nn.GRU / nn.RNN(E, H, L, dropout=dropout, batch_first=True)
 *   <head>  = nn.Linear(H, V)            (weight tied to <embed>.weight: E == H)
 *   logits  = head(drop(rnn(drop(embed(ids)), state)))   drop: io_dropout
 *
 * with <embed> and <head> the names of the options ("embed" / "head" by
 * default; "encoder" / "decoder" for PyTorch's word_language_model
 * example), so the parameters are that module's state_dict: <embed>.weight
 * [V, E], rnn.weight_ih_l{k}, rnn.weight_hh_l{k}, rnn.bias_ih_l{k},
 * rnn.bias_hh_l{k}, <head>.weight [V, H] (absent from a file when tied:
 * saved once, as <embed>.weight), <head>.bias [V].
 *
 * Checkpoint metadata written by tn_lm_save (the keys it owns, all decimal
 * or plain strings):
 *
 *   lm.format      "1" (this layout)
 *   lm.cell        "lstm", "gru", "rnn_tanh" or "rnn_relu" (tn_cell_name)
 *   lm.vocab       V     lm.embed  E     lm.hidden  H     lm.layers  L
 *   lm.dropout     between recurrent layers ("%.17g")
 *   lm.io_dropout  on the embeddings and the head's input ("%.17g")
 *   lm.tie         "1" when the head's weight is the embedding, else "0"
 *   lm.embed_name  lm.head_name: the two parameter prefixes
 *
 * and the carried state of a training run, when given, as tensors
 * "state.h" (and "state.c" for an LSTM) [L, B, H].
 *
 * Errors: every function returns a status (or NULL) and records a message
 * naming itself (and the file, and the metadata key, for checkpoints);
 * nothing exits or aborts.
 */
#ifndef TENSOR_LM_H
#define TENSOR_LM_H

#include "tensor/io.h"
#include "tensor/nn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Longest parameter prefix (embed_name, head_name) plus its NUL. */
#define TN_LM_NAME_MAX 48

/* The options of a tn_lm. Start from tn_lm_defaults() and set at least
 * vocab, embed and hidden. */
typedef struct tn_lm_opts {
    tn_cell cell;      /* default TN_CELL_LSTM */
    int64_t vocab;     /* V >= 1 (default 0: must be set) */
    int64_t embed;     /* E >= 1 (default 0: must be set) */
    int64_t hidden;    /* H >= 1 (default 0: must be set) */
    int layers;        /* L, 1..TN_RNN_MAX_LAYERS (default 1) */
    double dropout;    /* between recurrent layers, in [0, 1) (default 0) */
    double io_dropout; /* on the embeddings and the head's input, [0, 1) (default 0) */
    bool tie;          /* head weight = embedding weight (needs embed == hidden) */
    /* 0 (default): every module initialised as PyTorch's defaults.
     * > 0: afterwards, as word_language_model's init_weights: the embedding
     * and (untied) head weights uniform(+-init_range), the head bias 0.
     * Not saved (it only chooses the first values). */
    double init_range;
    char embed_name[TN_LM_NAME_MAX]; /* default "embed" */
    char head_name[TN_LM_NAME_MAX];  /* default "head" */
} tn_lm_opts;

/* A language model. Every field is set by tn_lm_init (or tn_lm_open) and
 * read-only afterwards; the parameters live in ps. */
typedef struct tn_lm {
    tn_lm_opts o;       /* the options it was built with */
    tn_dtype dtype;     /* of every parameter and state */
    tn_params ps;       /* owns the parameters (optimizers take &m->ps) */
    tn_embedding embed; /* borrowed from ps */
    tn_rnn rnn;
    tn_linear head;
} tn_lm;

/* The recurrent state carried along B streams: heap tensors [L, B, H]
 * owned by the state (c only for an LSTM, else NULL), plus the no-grad
 * tape of tn_lm_step (created on its first call). A state made by hand
 * ({.h = ..., .c = ...}, tp NULL) works with tn_lm_forward, tn_lm_loss,
 * tn_lm_state_keep and tn_lm_window; tn_lm_state_free must not be called
 * on it (after a tn_lm_step, its owner frees st->tp with tn_tape_free). */
typedef struct tn_lm_state {
    tn_tensor *h, *c;
    tn_tape *tp;
} tn_lm_state;

/** LSTM, 1 layer, no dropout, untied, PyTorch's initialisation, names
 * "embed" and "head"; vocab, embed and hidden 0 (the caller sets them). */
TN_API tn_lm_opts tn_lm_defaults(void);

/** Build the model *o describes, parameters of dtype dt (TN_F32 or TN_F64)
 * initialised from r as PyTorch's modules (in the order embedding, rnn,
 * head, as the equivalent nn.Module's constructor draws them; then
 * o->init_range's redraws). *m is overwritten (not freed first). Returns
 * TN_OK, or TN_ERR_ARG naming tn_lm_init and the option (sizes below 1,
 * layers or dropouts out of range, tie with embed != hidden, an empty name
 * or one of TN_LM_NAME_MAX chars or more), or a parameter's error; on
 * error nothing is left to free (*m is zeroed). */
TN_API tn_status tn_lm_init(tn_lm *m, const tn_lm_opts *o, tn_dtype dt, tn_rng *r);

/** Free the parameters; m is zeroed and may be initialised again. Any
 * layer pointer into it (and an optimizer over m->ps) becomes invalid.
 * NULL is a no-op. */
TN_API void tn_lm_free(tn_lm *m);

/* ---- the carried state ---- */

/** A new zeroed state of `batch` streams for m (h, and c for an LSTM,
 * [L, batch, H] of m's dtype). The caller owns it (tn_lm_state_free); it
 * borrows nothing from m, but is only meaningful with models of the same
 * cell, layers, hidden size and dtype. NULL on error (batch < 1, out of
 * memory; message naming tn_lm_state_new). */
TN_API tn_lm_state *tn_lm_state_new(const tn_lm *m, int64_t batch);
/** Zero h and c in place (the start of new streams). NULL is a no-op. */
TN_API void tn_lm_state_reset(tn_lm_state *st);
/** Free h, c, the step tape and st itself. NULL is a no-op. */
TN_API void tn_lm_state_free(tn_lm_state *st);
/** Copy src's h (and c) into dst, e.g. to branch a stream (try two
 * continuations from one point) or to keep a checkpoint of it. The states
 * are values, never tied to a tape (tn_lm_step records nothing;
 * tn_lm_state_keep copies a forward's final states out of the tape, which
 * is PyTorch's detach), so a copy is a detached copy. Returns TN_OK, or
 * TN_ERR_SHAPE (dst untouched) when the two were not made for models of
 * the same shape and batch, TN_ERR_ARG for NULL. */
TN_API tn_status tn_lm_state_copy(tn_lm_state *dst, const tn_lm_state *src);

/* ---- training and evaluation ---- */

/** Logits [B*T, V] (tape tensors, row b*T + t for stream b, step t) for ids
 * [B, T] (I32) starting from the carried state st ([L, B, H]; NULL: zeros).
 * Dropout follows the tape's training mode. st is only read, and the
 * tape keeps referring to it until backward is done: the final state goes
 * to *fin (fin->h_n, fin->c_n [L, B, H]; fin->output the last layer's
 * outputs [B, T, H], before io_dropout), and tn_lm_state_keep copies it
 * into st after tn_backward (before tn_tape_reset). NULL on error (the
 * tape's error is set; ids out of 0..V-1 fail it). */
TN_API tn_tensor *tn_lm_forward(tn_tape *tp, const tn_lm *m, const tn_lm_state *st, tn_tensor *ids,
                                tn_rnn_out *fin);

/** The mean cross-entropy of targets [B*T] (I32, the tokens following
 * ids) under tn_lm_forward's logits, with the head and the loss as one op
 * (tn_linear_cross_entropy: the [B*T, V] logits are never stored). Same
 * state contract as tn_lm_forward. NULL on error (the tape holds it). */
TN_API tn_tensor *tn_lm_loss(tn_tape *tp, const tn_lm *m, const tn_lm_state *st, tn_tensor *ids,
                             tn_tensor *targets, tn_rnn_out *fin);

/** Copy the final state of a tn_lm_forward / tn_lm_loss (fin, tape
 * tensors: call before tn_tape_reset) into st in place, cutting the
 * history: the next window starts from it. Returns TN_OK, or TN_ERR_ARG
 * (NULL arguments, shapes that differ). */
TN_API tn_status tn_lm_state_keep(tn_lm_state *st, const tn_rnn_out *fin);

/** The next window of truncated BPTT over streams r0 .. r0+B-1 of ids
 * (the caller's array of at least (r0 + B) * stream tokens; stream s is
 * ids[s*stream .. (s+1)*stream)), at position *pos: x [B, T] (contiguous
 * I32) gets the inputs, y [B*T] (contiguous I32) the tokens following
 * them. When the window would run past the streams' end (or *pos < 0),
 * *pos becomes 0 and st (if not NULL) is zeroed. The caller advances *pos
 * by T after the step. Returns TN_OK, or TN_ERR_ARG (wrong shapes or
 * dtypes, stream < T + 1, r0 < 0; nothing changed). */
TN_API tn_status tn_lm_window(tn_lm_state *st, const int32_t *ids, int64_t stream, int64_t r0,
                              int64_t *pos, tn_tensor *x, tn_tensor *y);

/** Mean negative log-likelihood (nats per token) of ids[1..n) given the
 * tokens before them, reading ids as one stream from a zero state, in
 * windows of 256 tokens with the state carried, in no-grad and eval mode
 * (dropout off). tp: a tape to use (reset several times; its grad and
 * training settings are restored, its contents are lost), or NULL for one
 * of its own. *nll is set on success only. Returns TN_OK, TN_ERR_ARG
 * (n < 2, NULL arguments), an op's error (e.g. an id out of range), or
 * TN_ERR_NUMERIC when a window's loss is not finite (a model with a NaN or
 * infinite parameter: the message names the tokens and the value). */
TN_API tn_status tn_lm_eval(const tn_lm *m, tn_tape *tp, const int32_t *ids, int64_t n,
                            double *nll);

/* ---- streaming inference ---- */

/** One token per stream: ids [B] (st's batch B) go through the model from
 * st's state, st advances in place, and logits_out [B, V] (row-major,
 * converted to float) gets the next-token logits. Eval mode, no gradient:
 * the step runs on st's own tape (st->tp, created on the first call), so
 * the caller manages no tape; m is only read, so several states (in
 * several threads, one state per thread) may share one model. The same
 * logits as tn_lm_forward over the same tokens in eval mode. Returns
 * TN_OK, or an error (NULL arguments, a state of another shape, an id out
 * of 0..V-1, out of memory) with st and logits_out unchanged. */
TN_API tn_status tn_lm_step(const tn_lm *m, tn_lm_state *st, const int32_t *ids, float *logits_out);

/* ---- checkpoints ---- */

/** Write m's parameters (a tied weight once, under <embed>.weight), the
 * carried state st ("state.h", "state.c"; NULL: none), the nextra sets
 * extra (e.g. tn_optim_state(opt); NULL entries are skipped) and the
 * metadata meta (NULL: none) plus the lm.* keys above (which replace
 * meta's keys of those names; meta itself is not changed) to path, with
 * tn_save (atomic). A file of the model alone (no st, no extra) is the
 * state_dict of the equivalent nn.Module, loadable by its load_state_dict
 * (tied: strict=False, or copy <embed>.weight to <head>.weight first).
 * Returns TN_OK or tn_save's error (message naming tn_save and the file). */
TN_API tn_status tn_lm_save(const char *path, const tn_lm *m, const tn_lm_state *st,
                            tn_params *const *extra, int nextra, const tn_meta *meta);

/** Build the model of checkpoint path without loading its values (they
 * are initialised from a fixed seed): from o, or when o is NULL from the
 * file's lm.* metadata (every key required, values checked: a known cell,
 * sizes >= 1, layers 1..TN_RNN_MAX_LAYERS, dropouts in [0, 1), tie "0" or
 * "1", names 1..TN_LM_NAME_MAX-1 chars). Before any parameter is
 * allocated, the sizes are checked against the file's tensors (<embed>.weight
 * [V, E], rnn.weight_ih_l0 [G*H, E], rnn.weight_hh_l{L-1} [G*H, H], and
 * <head>.weight [V, H] unless tied), so crafted metadata cannot make a
 * model larger than the file. meta_out (NULL, or an initialised map) gets
 * the file's metadata. Returns TN_OK, or TN_ERR_FORMAT with a message
 * naming tn_lm_open, the file and the key or tensor, or another error of
 * reading the file or of tn_lm_init; *m is zeroed on error (nothing to
 * free). Use it with tn_lm_load_params when an optimizer's state must be
 * loaded too (the optimizer is made over m->ps in between). */
TN_API tn_status tn_lm_open(const char *path, tn_lm *m, const tn_lm_opts *o, tn_meta *meta_out);

/** Load the values of path into m (built by tn_lm_open or tn_lm_init with
 * the file's options), and optionally the carried state and extra sets:
 * - every parameter of m must be in the file, with its shape; a tensor of
 *   the file named as a parameter of m's modules (<embed>.x, rnn.x,
 *   <head>.x with x without a dot) must be one of m's (e.g. not a deeper
 *   layer than m has);
 * - st_out NULL: the file's "state.h"/"state.c" are skipped. Otherwise
 *   *st_out gets a new state holding the file's carried state (its batch,
 *   [L, B, H] checked against m), or NULL when the file has none;
 * - nextra 0: the file's other tensors (an optimizer's state, ...) are
 *   skipped; otherwise they must be exactly the tensors of the extra sets
 *   (tn_load's strict rules).
 * The file is validated before anything is written: on error m, the
 * extra sets and meta_out are unchanged and *st_out is NULL. meta_out as
 * tn_load's. Returns TN_OK or an error naming tn_lm_load_params (or
 * tn_load) and the file. */
TN_API tn_status tn_lm_load_params(const char *path, tn_lm *m, tn_lm_state **st_out,
                                   tn_params *const *extra, int nextra, tn_meta *meta_out);

/** A model from a checkpoint written by tn_lm_save: tn_lm_open from the
 * file's metadata alone, then tn_lm_load_params (the carried state into
 * *st_out as described there; st_out NULL: skipped; any optimizer state
 * skipped). The caller frees m with tn_lm_free (and *st_out with
 * tn_lm_state_free). On error nothing is left to free. */
TN_API tn_status tn_lm_load(const char *path, tn_lm *m, tn_lm_state **st_out, tn_meta *meta_out);

#ifdef __cplusplus
}
#endif
#endif
