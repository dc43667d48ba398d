/** @file
 * tensor/nn.h - parameter sets and layers built from the public ops.
 *
 * Layers hold borrowed pointers to parameters that live in a tn_params set
 * (which owns them); the forward functions build ops on a tape, so
 * backpropagation through time comes from the tape with no layer backward.
 *
 * Parameter names, shapes and layouts are PyTorch's (a state_dict moves
 * between the two): Linear weight [out, in] and bias [out]; Embedding
 * weight [V, E]; RNN/LSTM/GRU weight_ih_l{k}[_reverse] [G*H, in],
 * weight_hh_l{k}[_reverse] [G*H, H], bias_ih_l{k}, bias_hh_l{k} [G*H] with
 * G = 1 (RNN), 4 (LSTM, gates i, f, g, o), 3 (GRU, gates r, z, n; b_hn
 * inside the reset product). Cells use weight_ih, weight_hh, bias_ih,
 * bias_hh. Default initialisation is PyTorch's: uniform(-k, k) with
 * k = 1/sqrt(hidden) for recurrent layers and k = 1/sqrt(in) for Linear,
 * N(0, 1) for Embedding.
 *
 * Sequence layout: batch-first everywhere, x [B, T, I] -> output [B, T, D*H]
 * (D = 2 when bidirectional), states [L*D, B, H] (PyTorch's h_n layout).
 */
#ifndef TENSOR_NN_H
#define TENSOR_NN_H

#include "tensor/ops.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- named parameter sets ---- */

#define TN_NAME_MAX 96

typedef struct tn_param {
    char name[TN_NAME_MAX]; /* e.g. "rnn.weight_ih_l0" */
    tn_tensor *t;           /* owned by the set */
} tn_param;

/* A second name of a parameter of the set (tied weights). */
typedef struct tn_param_tie {
    char name[TN_NAME_MAX]; /* e.g. "decoder.weight" */
    tn_tensor *t;           /* the parameter it names (owned by the set) */
} tn_param_tie;

typedef struct tn_params {
    tn_param *items; /* each tensor once */
    int n, cap;
    tn_param_tie *ties; /* other names of some of items' tensors */
    int nties, tcap;
} tn_params;

/** Empty set (or zero-initialise the struct). */
TN_API void tn_params_init(tn_params *ps);
/** Free every tensor of the set and the set's storage. */
TN_API void tn_params_free(tn_params *ps);
/** New parameter prefix + "." + name (or name alone when prefix is NULL or
 * ""), zero-filled, shape as given, requires_grad set. The set owns it; the
 * returned pointer stays valid until tn_params_free. NULL on error
 * (duplicate name, bad shape). */
TN_API tn_tensor *tn_params_new(tn_params *ps, const char *prefix, const char *name, tn_dtype dt,
                                int ndim, const int64_t *shape);
/** Tie weights: register prefix + "." + name (or name alone) as a second
 * name of the existing parameter target (a full name), as PyTorch's
 * `decoder.weight = encoder.weight`. The set still holds one tensor: the
 * optimizers, clipping, tn_params_numel and tn_save see it once, under
 * target's name, and the gradients of every use accumulate in it.
 * tn_params_get finds it under either name; tn_load fills it from the
 * target's entry, or from the tie's entry when the file has only that one
 * (a file with both, like a PyTorch state_dict, is read from the target's).
 * Returns the target tensor (owned by the set), or NULL on error: unknown
 * target, a name already in use, a name too long. */
TN_API tn_tensor *tn_params_tie(tn_params *ps, const char *prefix, const char *name,
                                const char *target);
/** Parameter by full name (or the name of a tie), or NULL. */
TN_API tn_tensor *tn_params_get(const tn_params *ps, const char *name);
/** Zero every gradient. */
TN_API void tn_params_zero_grad(tn_params *ps);
/** Total number of scalar parameters. */
TN_API int64_t tn_params_numel(const tn_params *ps);

/* ---- Linear, Embedding, Dropout ---- */

typedef struct tn_linear {
    int64_t in, out;
    tn_tensor *weight; /* [out, in] */
    tn_tensor *bias;   /* [out] or NULL */
} tn_linear;

/** Create weight (and bias) in ps under prefix, initialised as PyTorch's
 * nn.Linear (kaiming-uniform: both uniform(+-1/sqrt(in))) from r. */
TN_API tn_status tn_linear_init(tn_linear *l, tn_params *ps, const char *prefix, int64_t in,
                                int64_t out, bool bias, tn_dtype dt, tn_rng *r);
/** A Linear whose weight is the existing parameter weight_name of ps, of
 * shape [out, in] (tied weights, e.g. a language model's output layer
 * sharing the embedding [V, E] when E equals the hidden size): the weight
 * is registered as prefix.weight with tn_params_tie, and only the bias (if
 * any) is new, initialised uniform(+-1/sqrt(in)) from r as nn.Linear's.
 * Returns TN_OK, or an error (unknown weight, not 2-D, dtype other than
 * dt). */
TN_API tn_status tn_linear_init_tied(tn_linear *l, tn_params *ps, const char *prefix,
                                     const char *weight_name, bool bias, tn_dtype dt, tn_rng *r);
/** y = x W^T + b: x [N, in] or [B, T, in] (flattened over leading dims) ->
 * [N, out] or [B, T, out]. */
TN_API tn_tensor *tn_linear_forward(tn_tape *tp, const tn_linear *l, tn_tensor *x);

/* ---- LayerNorm ---- */

typedef struct tn_layernorm {
    int64_t dim; /* D, the size of the last dim it normalises */
    double eps;
    tn_tensor *weight; /* [D], or NULL without affine */
    tn_tensor *bias;   /* [D], or NULL without affine */
} tn_layernorm;

/** PyTorch's nn.LayerNorm(dim, eps, elementwise_affine=affine): with
 * affine, creates weight (ones) and bias (zeros), both [dim], in ps under
 * prefix. Returns TN_OK, or TN_ERR_ARG for dim < 1, eps <= 0 or non-finite
 * or a NULL l or ps. */
TN_API tn_status tn_layer_norm_init(tn_layernorm *l, tn_params *ps, const char *prefix, int64_t dim,
                                    double eps, bool affine, tn_dtype dt);
/** tn_layer_norm(x, weight, bias, eps) over x's last dim, which must be
 * dim (x: 1 to 4 dims). */
TN_API tn_tensor *tn_layer_norm_forward(tn_tape *tp, const tn_layernorm *l, tn_tensor *x);

/* ---- BatchNorm ---- */

typedef struct tn_batchnorm {
    int64_t channels; /* C, dim 1 of its input */
    double eps, momentum;
    tn_tensor *weight, *bias;              /* [C], or NULL without affine */
    tn_tensor *running_mean, *running_var; /* [C], or NULL without tracking */
} tn_batchnorm;

/** PyTorch's nn.BatchNorm1d / BatchNorm2d(channels, eps, momentum, affine,
 * track_running_stats): with affine, weight (ones) and bias (zeros); with
 * track, the running statistics running_mean (zeros) and running_var
 * (ones), all [channels], in ps under prefix with PyTorch's names. The
 * running statistics are entries of ps without gradient (requires_grad
 * off: optimizers and clipping leave them alone), so tn_save and tn_load
 * keep them with the model; PyTorch's num_batches_tracked is not kept
 * (load_state_dict(..., strict=False) in PyTorch). Returns TN_OK, or
 * TN_ERR_ARG for channels < 1, eps <= 0 or non-finite, momentum outside
 * [0, 1], or a NULL b or ps. */
TN_API tn_status tn_batch_norm_init(tn_batchnorm *b, tn_params *ps, const char *prefix,
                                    int64_t channels, double eps, double momentum, bool affine,
                                    bool track, tn_dtype dt);
/** tn_batch_norm of x ([N, C], [N, C, L] or [N, C, H, W], C = channels) in
 * the tape's mode (tn_tape_training): training normalises by the batch's
 * statistics and updates the running ones in place; evaluation uses the
 * running ones (the batch's without tracking). */
TN_API tn_tensor *tn_batch_norm_forward(tn_tape *tp, const tn_batchnorm *b, tn_tensor *x);

/* ---- Conv2d, Conv1d ---- */

typedef struct tn_conv2d_layer {
    int64_t in, out, kh, kw; /* channels in and out, kernel size */
    tn_conv2d_opts opts;     /* stride, padding, dilation, groups */
    tn_tensor *weight;       /* [out, in / groups, kh, kw] */
    tn_tensor *bias;         /* [out] or NULL */
} tn_conv2d_layer;

/** PyTorch's nn.Conv2d(in, out, (kh, kw), stride, padding, dilation,
 * groups, bias) with o's geometry (NULL: tn_conv2d_defaults()): creates
 * weight [out, in / groups, kh, kw] (and bias [out]) in ps under prefix
 * with nn.Conv2d's names, both uniform(+-1/sqrt(in / groups kh kw)) from r
 * as nn.Conv2d's default init (kaiming-uniform with a = sqrt(5)). Returns
 * TN_OK, or TN_ERR_ARG naming tn_conv2d_init and the bad value (a size <
 * 1, groups not dividing in and out, stride or dilation < 1, padding < 0,
 * a NULL l, ps or r). */
TN_API tn_status tn_conv2d_init(tn_conv2d_layer *l, tn_params *ps, const char *prefix, int64_t in,
                                int64_t out, int64_t kh, int64_t kw, const tn_conv2d_opts *o,
                                bool bias, tn_dtype dt, tn_rng *r);
/** tn_conv2d(x, weight, bias, opts): x [B, in, H, W] -> [B, out, OH, OW]. */
TN_API tn_tensor *tn_conv2d_forward(tn_tape *tp, const tn_conv2d_layer *l, tn_tensor *x);

typedef struct tn_conv1d_layer {
    int64_t in, out, kernel, stride, padding, dilation, groups;
    tn_tensor *weight; /* [out, in / groups, kernel] */
    tn_tensor *bias;   /* [out] or NULL */
} tn_conv1d_layer;

/** PyTorch's nn.Conv1d(in, out, kernel, stride, padding, dilation, groups,
 * bias): weight [out, in / groups, kernel] (and bias [out]) in ps under
 * prefix, both uniform(+-1/sqrt(in / groups kernel)) from r. Returns TN_OK,
 * or TN_ERR_ARG naming tn_conv1d_init and the bad value, as
 * tn_conv2d_init. */
TN_API tn_status tn_conv1d_init(tn_conv1d_layer *l, tn_params *ps, const char *prefix, int64_t in,
                                int64_t out, int64_t kernel, int64_t stride, int64_t padding,
                                int64_t dilation, int64_t groups, bool bias, tn_dtype dt,
                                tn_rng *r);
/** tn_conv1d(x, weight, bias, ...): x [B, in, L] -> [B, out, OL]. */
TN_API tn_tensor *tn_conv1d_forward(tn_tape *tp, const tn_conv1d_layer *l, tn_tensor *x);

typedef struct tn_embedding {
    int64_t num, dim;
    int64_t padding_idx; /* -1: none */
    tn_tensor *weight;   /* [num, dim] */
} tn_embedding;

/** weight ~ N(0, 1); the padding_idx row (if >= 0) starts at zero and never
 * gets a gradient. */
TN_API tn_status tn_embedding_init(tn_embedding *e, tn_params *ps, const char *prefix, int64_t num,
                                   int64_t dim, int64_t padding_idx, tn_dtype dt, tn_rng *r);
/** ids (I32, shape S) -> S x [dim]. Out-of-range ids fail the tape. */
TN_API tn_tensor *tn_embedding_forward(tn_tape *tp, const tn_embedding *e, tn_tensor *ids);

/* ---- recurrent layers ---- */

/* tn_cell (the cell kinds) and tn_cell_name / tn_cell_from_name /
 * tn_cell_gates are declared in tensor/ops.h, with the recurrent op. */

#define TN_RNN_MAX_LAYERS 8

/* How tn_rnn_init_ex fills the weights of a recurrent layer. */
typedef enum tn_rnn_init_kind {
    /* PyTorch's default: every weight and bias uniform(+-1/sqrt(hidden)). */
    TN_RNN_INIT_UNIFORM = 0,
    /* weight_ih: Xavier/Glorot uniform (tn_init_xavier_uniform, gain 1, over
     * the whole [G*H, in] matrix: bound sqrt(6 / (in + G*H))); weight_hh:
     * each gate's [H, H] block (rows g*H .. g*H+H-1) orthogonal
     * (tn_init_orthogonal, gain 1: W_g W_g^T = I); both biases zero. */
    TN_RNN_INIT_XAVIER_ORTHOGONAL = 1,
} tn_rnn_init_kind;

/* Options of a recurrent layer (tn_rnn_init_ex). Start from
 * tn_rnn_defaults() and set at least input_size and hidden. */
typedef struct tn_rnn_opts {
    tn_cell cell;       /* default TN_CELL_LSTM */
    int64_t input_size; /* I >= 1 (default 0: must be set) */
    int64_t hidden;     /* H >= 1 (default 0: must be set) */
    int layers;         /* 1 .. TN_RNN_MAX_LAYERS (default 1) */
    bool bidirectional; /* D = 2 when set (default false) */
    double dropout;     /* in [0, 1), between layers (default 0) */
    /* Residual (skip) connections (default false): for every layer l >= 1
     * the layer's output is its recurrent output plus its input (both
     * [B, T, D*H]; the input is what the layer ran on, i.e. after the
     * previous layer's dropout). Layer 0 has none (its input width is I),
     * so with layers == 1 the option is accepted and changes nothing. The
     * states h_n / c_n are the recurrences' own, unchanged. */
    bool residual;
    /* LayerNorm over the D*H features of every layer's output (default
     * false), after the residual add and before the dropout to the next
     * layer, the last layer included; eps 1e-5 and an affine weight (ones)
     * and bias (zeros) [D*H] per layer, named prefix.norm_l{l}.weight and
     * prefix.norm_l{l}.bias. States are not normalised. */
    bool layer_norm;
    tn_rnn_init_kind init; /* default TN_RNN_INIT_UNIFORM */
    /* LSTM only: after init, the forget gate's bias (rows H..2H) of b_ih is
     * forget_bias and of b_hh is 0, so the gate starts at
     * sigmoid(forget_bias) (Jozefowicz et al. 2015 use 1). With
     * set_forget_bias false (the default) the biases stay as init made
     * them. */
    bool set_forget_bias;
    double forget_bias;
    /* LSTM only: the layer-norm LSTM of Ba et al. 2016 (default false).
     * Per layer and direction, with LN a LayerNorm (eps 1e-5, gain ones
     * and bias zeros at init) over the features:
     *   gates = LN_ih(x W_ih^T) + LN_hh(h W_hh^T) + b_ih + b_hh   (i, f, g, o)
     *   c' = s(f) c + s(i) tanh(g),   h' = s(o) tanh(LN_c(c'))
     * Parameters prefix.ln_ih_l{l}[_reverse].weight / .bias [4H],
     * ln_hh_... [4H] and ln_c_... [H] after each direction's four. The
     * input part is one product and one layer_norm over all steps; the
     * recurrence is a tn_scan of public ops (its step uses layer_norm, so
     * it runs step by step on the tape: slower than the fused cells).
     * Lengths and both directions behave as the plain layer's. */
    bool ln_gates;
} tn_rnn_opts;

typedef struct tn_rnn {
    tn_cell cell;
    int64_t input_size, hidden;
    int layers;
    bool bidirectional;
    double dropout; /* between layers, not after the last; training mode only */
    /* [layer * D + dir]: weight_ih [G*H, in], weight_hh [G*H, H], biases [G*H] */
    tn_tensor *w_ih[2 * TN_RNN_MAX_LAYERS], *w_hh[2 * TN_RNN_MAX_LAYERS];
    tn_tensor *b_ih[2 * TN_RNN_MAX_LAYERS], *b_hh[2 * TN_RNN_MAX_LAYERS];
    bool residual;   /* see tn_rnn_opts; false: the plain stacked layer */
    bool layer_norm; /* see tn_rnn_opts; norm[l] is used only when set */
    tn_layernorm norm[TN_RNN_MAX_LAYERS];
    bool ln_gates; /* see tn_rnn_opts; ln_* [layer * D + dir] used only when set */
    tn_layernorm ln_ih[2 * TN_RNN_MAX_LAYERS], ln_hh[2 * TN_RNN_MAX_LAYERS],
        ln_c[2 * TN_RNN_MAX_LAYERS];
} tn_rnn;

/** The default options: an LSTM of 1 unidirectional layer, no dropout, no
 * residual connections, no layer norm, PyTorch's uniform initialisation;
 * input_size and hidden 0 (the caller sets them). */
TN_API tn_rnn_opts tn_rnn_defaults(void);

/** Create the parameters of a recurrent layer described by o in ps under
 * prefix, initialised from r as o->init says, in PyTorch's order (per layer
 * and direction: w_ih, w_hh, b_ih, b_hh; with layer_norm, then that layer's
 * norm_l{l}.weight and .bias). With residual and layer_norm off and the
 * uniform init it is exactly tn_rnn_init (same parameters, same draws of r,
 * and the same ops in tn_rnn_forward). Returns TN_OK, TN_ERR_ARG for a
 * NULL m, ps, o or r or a bad option (the message names tn_rnn_init_ex and
 * the option: cell, input_size, hidden, layers outside 1..TN_RNN_MAX_LAYERS,
 * dropout outside [0, 1), init), or the error of creating a parameter
 * (a name too long or in use, out of memory). Nothing aborts. */
TN_API tn_status tn_rnn_init_ex(tn_rnn *m, tn_params *ps, const char *prefix, const tn_rnn_opts *o,
                                tn_dtype dt, tn_rng *r);

/** Create the parameters of an nn.RNN / nn.LSTM / nn.GRU equivalent (with
 * biases) in ps under prefix, initialised uniform(+-1/sqrt(hidden)) from r,
 * in PyTorch's order (per layer and direction: w_ih, w_hh, b_ih, b_hh).
 * tn_rnn_init_ex with these options and the defaults for the others. */
TN_API tn_status tn_rnn_init(tn_rnn *m, tn_params *ps, const char *prefix, tn_cell cell,
                             int64_t input_size, int64_t hidden, int layers, bool bidirectional,
                             double dropout, tn_dtype dt, tn_rng *r);

typedef struct tn_rnn_out {
    tn_tensor *output; /* [B, T, D*H], zero past each sequence's length */
    tn_tensor *h_n;    /* [L*D, B, H]: state at each sequence's own last step */
    tn_tensor *c_n;    /* [L*D, B, H] for LSTM, else NULL */
} tn_rnn_out;

/** Run the layer over x [B, T, I]. h0 (and c0 for LSTM) [L*D, B, H] or NULL
 * for zeros. lengths: NULL (all T) or B values in 1..T; steps past a
 * sequence's length leave its state unchanged and output zero, and the
 * reverse direction starts at the sequence's own last step (PyTorch's
 * packed-sequence semantics). Results are tape tensors. Returns TN_OK or the
 * tape's error.
 *
 * Each layer direction is one tn_recurrent op. With m->residual and
 * m->layer_norm, layer l's output is y_l = LN_l(r_l(x_l) + x_l) (the add for
 * l >= 1 only, LN_l only with layer_norm), where x_l is the layer's input
 * (x for l = 0, else dropout(y_{l-1})) and r_l its recurrent output; these
 * are ordinary ops between the recurrent ones. With layer_norm and lengths
 * the output is still zero past each sequence's length (masked after the
 * last norm; LN of a padded zero row would be its bias). */
TN_API tn_status tn_rnn_forward(tn_tape *tp, const tn_rnn *m, tn_tensor *x, tn_tensor *h0,
                                tn_tensor *c0, const int32_t *lengths, tn_rnn_out *out);

/* ---- sampling from logits ---- */

/* How tn_sample draws an id from a row of logits x [V]:
 *   1. temperature 0 (or top_k 1): greedy, the likeliest id (the lowest of
 *      equal ones), with probability 1;
 *   2. otherwise p_v proportional to exp(x_v / temperature);
 *   3. top_k > 0: only the top_k likeliest ids keep their p (equal values
 *      ordered by lower id, so exactly top_k remain);
 *   4. top_p < 1: of those, only the fewest likeliest whose share of the
 *      kept mass reaches top_p (nucleus sampling; at least one id);
 *   5. the kept p renormalised. */
typedef struct tn_sample_opts {
    double temperature; /* >= 0; 0: greedy */
    int64_t top_k;      /* >= 0; 0: all ids */
    double top_p;       /* in (0, 1]; 1: all ids */
} tn_sample_opts;

/** temperature 1, top_k 0, top_p 1: plain sampling from softmax(x). */
TN_API tn_sample_opts tn_sample_defaults(void);
/** One id for each row of logits (F32 or F64, [V] or [N, V], any strides)
 * into ids (1 or N values), drawn as tn_sample_opts describes with one
 * tn_rng_uniform of r per row. -inf logits have probability 0. Returns
 * TN_OK, or TN_ERR_ARG (bad options or shape), TN_ERR_NUMERIC (a NaN or
 * +inf logit, or a row of -inf; naming row and id) with ids untouched from
 * that row on. Allocates scratch of V doubles and ints per call. */
TN_API tn_status tn_sample(const tn_tensor *logits, const tn_sample_opts *o, tn_rng *r,
                           int32_t *ids);
/** The exact distribution tn_sample draws row `row` from, into probs [V]
 * (zeros outside the kept ids; sums to 1). Errors as tn_sample. */
TN_API tn_status tn_sample_probs(const tn_tensor *logits, int64_t row, const tn_sample_opts *o,
                                 double *probs);

/* ---- attention over encoder outputs ---- */

/* Score functions, for query q [B, Hq] and keys k [B, S, Hk]:
 *   BAHDANAU       (additive) v^T tanh(W_k k_s + b_k + W_q q); parameters
 *                  key.weight [A, Hk], key.bias [A], query.weight [A, Hq],
 *                  v.weight [1, A] (nn.Linear names; A = attn_size)
 *   LUONG_DOT      q . k_s (Hq == Hk, no parameters)
 *   LUONG_GENERAL  q^T W k_s; parameter linear.weight [Hq, Hk] (an
 *                  nn.Linear(Hk, Hq, bias=False) applied to the keys)
 * The weights are the softmax of the scores over each sequence's own
 * source positions: padded positions (s >= lengths[b]) get exactly 0. */
typedef enum tn_attn_kind {
    TN_ATTN_BAHDANAU = 0,
    TN_ATTN_LUONG_DOT = 1,
    TN_ATTN_LUONG_GENERAL = 2,
} tn_attn_kind;

typedef struct tn_attention {
    tn_attn_kind kind;
    int64_t query_size, key_size, attn_size;
    tn_tensor *w_key, *b_key, *w_query, *v; /* Bahdanau */
    tn_tensor *w;                           /* Luong general */
} tn_attention;

/** Create the parameters of kind in ps under prefix (attn_size is used by
 * Bahdanau only; LUONG_DOT needs query_size == key_size), initialised as
 * nn.Linear's (uniform(+-1/sqrt(in))) from r. "bahdanau", "luong" (dot)
 * and "general" name the kinds in tn_attn_kind_from_name. */
TN_API tn_status tn_attention_init(tn_attention *a, tn_params *ps, const char *prefix,
                                   tn_attn_kind kind, int64_t query_size, int64_t key_size,
                                   int64_t attn_size, tn_dtype dt, tn_rng *r);
/** *out gets the kind named "bahdanau", "luong" (or "dot") or "general";
 * any other name (or NULL) is TN_ERR_ARG with a message listing them (*out
 * unchanged). */
TN_API tn_status tn_attn_kind_from_name(const char *name, tn_attn_kind *out);
/** The name tn_attn_kind_from_name reads for kind ("bahdanau", "luong",
 * "general"), and "none" for anything else (-1: no attention). A static
 * string. */
TN_API const char *tn_attn_kind_name(int kind);

/* What the score function needs of the keys, made once per source batch
 * and reused at every decoder step (tape tensors, valid until the tape is
 * reset). */
typedef struct tn_attn_memory {
    tn_tensor *keys; /* [B, S, Hk] as given */
    tn_tensor *proj; /* Bahdanau: W_k k + b_k [B, S, A]; else NULL */
    tn_tensor *mask; /* int32 [B, S]: 1 where s < lengths[b] */
} tn_attn_memory;

/** keys [B, S, Hk] (e.g. an encoder's output); lengths: NULL (all S) or B
 * values in 1..S. Returns TN_OK or the tape's error. */
TN_API tn_status tn_attention_prepare(tn_tape *tp, const tn_attention *a, tn_tensor *keys,
                                      const int32_t *lengths, tn_attn_memory *m);
/** One query q [B, Hq] -> *context [B, Hk] = sum_s w[b, s] k[b, s] and
 * *weights [B, S] (either pointer may be NULL when not wanted). Returns
 * TN_OK or the tape's error. */
TN_API tn_status tn_attention_forward(tn_tape *tp, const tn_attention *a, const tn_attn_memory *m,
                                      tn_tensor *query, tn_tensor **context, tn_tensor **weights);

/* A single step: nn.RNNCell / nn.LSTMCell / nn.GRUCell. */
typedef struct tn_rnn_cell {
    tn_cell cell;
    int64_t input_size, hidden;
    tn_tensor *w_ih, *w_hh, *b_ih, *b_hh;
} tn_rnn_cell;

/** Create a cell's parameters in ps, named as PyTorch's cells under prefix
 * (prefix.weight_ih [G*H, I], weight_hh [G*H, H], bias_ih, bias_hh [G*H];
 * G = 1, 4 or 3 for RNN, LSTM, GRU), initialised uniform in +-1/sqrt(H)
 * from r. Returns TN_OK or an error (bad sizes, out of memory). */
TN_API tn_status tn_rnn_cell_init(tn_rnn_cell *c, tn_params *ps, const char *prefix, tn_cell cell,
                                  int64_t input_size, int64_t hidden, tn_dtype dt, tn_rng *r);
/** x [B, I], h [B, H] (NULL: zeros), c [B, H] for LSTM (NULL: zeros).
 * Returns h' [B, H]; for LSTM also stores c' in *c_out (may be NULL for
 * other cells). NULL on error (tape error set). */
TN_API tn_tensor *tn_rnn_cell_forward(tn_tape *tp, const tn_rnn_cell *c, tn_tensor *x, tn_tensor *h,
                                      tn_tensor *cs, tn_tensor **c_out);

/* ---- encoder-decoder (seq2seq) ---- */

/* An encoder over padded source ids and a decoder of step-wise cells with
 * attention and input feeding (Luong et al. 2015's architecture; the score
 * function is any tn_attn_kind):
 *   encoder   embed (src_vocab, E) -> tn_rnn (cell, H, layers, optionally
 *             bidirectional) over the sources with their lengths
 *   bridge    decoder layer l starts at tanh(bridge(h_n of encoder layer l,
 *             directions concatenated)); LSTM's c likewise (bridge_c)
 *   decoder   per step: x = [embed(y_prev); feed] -> cells (layers) -> h;
 *             with attention: c = attention(h over the encoder outputs),
 *             feed = tanh(combine([h; c])); without: feed = h;
 *             logits = out(feed)
 * Parameters (PyTorch-style names): src_embed.weight, tgt_embed.weight,
 * encoder.weight_ih_l0..., bridge.weight/bias, bridge_c.* (LSTM),
 * decoder.<l>.weight_ih..., attn.* (tn_attention), combine.weight (no
 * bias), out.weight/bias. Ids: sources padded with src_pad; targets are
 * [B, T] ending with eos and padded with tgt_pad; the decoder's first input
 * is sos. */
typedef struct tn_seq2seq_opts {
    tn_cell cell; /* TN_CELL_GRU or TN_CELL_LSTM (RNN cells work too) */
    int64_t src_vocab, tgt_vocab, embed, hidden;
    int layers;         /* of the encoder, and of the decoder */
    bool bidirectional; /* encoder */
    int attention;      /* a tn_attn_kind, or -1 for none */
    double dropout;     /* on embeddings, between layers and before out */
    int32_t src_pad, tgt_pad, sos, eos;
} tn_seq2seq_opts;

typedef struct tn_seq2seq {
    tn_seq2seq_opts o;
    tn_embedding src_embed, tgt_embed;
    tn_rnn encoder;
    tn_linear bridge, bridge_c;
    tn_rnn_cell dec[TN_RNN_MAX_LAYERS];
    tn_attention attn;
    tn_linear combine, out;
} tn_seq2seq;

/** Create the model's parameters in ps under prefix (NULL: none),
 * initialised as PyTorch's modules from r. Bad options give TN_ERR_ARG
 * naming the option. */
TN_API tn_status tn_seq2seq_init(tn_seq2seq *m, tn_params *ps, const char *prefix,
                                 const tn_seq2seq_opts *o, tn_dtype dt, tn_rng *r);

/** Training loss: src [B, S] int32 ids with src_len (B values in 1..S),
 * tgt [B, T] int32 ids (eos-terminated, tgt_pad after); at each step the
 * decoder's next input is the gold token with probability teacher_forcing
 * (one draw per step from rng; otherwise the model's own argmax). *loss =
 * mean cross-entropy over the target tokens that are not tgt_pad. Returns
 * TN_OK or the tape's error. */
TN_API tn_status tn_seq2seq_loss(tn_tape *tp, const tn_seq2seq *m, tn_tensor *src,
                                 const int32_t *src_len, tn_tensor *tgt, double teacher_forcing,
                                 tn_rng *rng, tn_tensor **loss);

/** @{ */
/** Decoding, in no-grad and eval mode on tp (restored after), for a batch
 * of B sources: out [B, max_len] gets each sentence's tokens (eos not
 * included, tgt_pad after), out_len [B] their number, score [B] the sum of
 * the log-probabilities of the tokens and of the eos (if one was chosen
 * before max_len). pad and sos are never chosen. Beam search keeps `beam`
 * hypotheses per sentence and returns the finished one with the best
 * score / length^len_alpha (length counting the eos; len_alpha 0: raw
 * sum). Beam width 1 is greedy decoding exactly. Returns TN_OK or an error:
 * TN_ERR_NUMERIC (naming token, sentence and step) when a log-probability
 * the search would use is not finite (a model with a NaN or infinite
 * parameter), with out, out_len and score unspecified. */
TN_API tn_status tn_seq2seq_greedy(tn_tape *tp, const tn_seq2seq *m, tn_tensor *src,
                                   const int32_t *src_len, int64_t max_len, int32_t *out,
                                   int32_t *out_len, double *score);
TN_API tn_status tn_seq2seq_beam(tn_tape *tp, const tn_seq2seq *m, tn_tensor *src,
                                 const int32_t *src_len, int beam, double len_alpha,
                                 int64_t max_len, int32_t *out, int32_t *out_len, double *score);
/** @} */
/** Streaming decoding: a state holds B sources' encoding (the attention's
 * memory) and the decoder's state, and tn_seq2seq_step feeds one target
 * token per sentence and returns the next token's logits, with no tape of
 * the caller's and no heap allocation per step once warm (the state owns a
 * no-grad, eval-mode tape that it resets). For decoding with your own
 * search (constraints, a user in the loop) or to score a target token by
 * token. tn_seq2seq_state_new encodes src ([B, S] int32 ids, B lengths in
 * 1..S; the first token to feed is o.sos); NULL on error (the message names
 * the function). The state borrows nothing from m but is only meaningful
 * with m. */
typedef struct tn_seq2seq_state tn_seq2seq_state;
/** A new streaming state of B sources src [B, S] (int32 ids) with lengths
 * src_len [B] in 1..S, encoded; the caller frees it with
 * tn_seq2seq_state_free. NULL on error, the message naming
 * tn_seq2seq_state_new. */
TN_API tn_seq2seq_state *tn_seq2seq_state_new(const tn_seq2seq *m, const int32_t *src,
                                              const int32_t *src_len, int64_t B, int64_t S);
/** Feed tokens [B] (ids of the target vocabulary) and write the logits of
 * the next ones into logits [B, tgt_vocab] (float); advances st in place.
 * Greedy decoding through it chooses what tn_seq2seq_greedy chooses.
 * Returns TN_OK, or an error (TN_ERR_INDEX for an id out of range) with st
 * unchanged. */
TN_API tn_status tn_seq2seq_step(const tn_seq2seq *m, tn_seq2seq_state *st, const int32_t *tokens,
                                 float *logits);
/** Copy src's decoder state into dst (a state of the same model and
 * sources: branch a hypothesis). TN_ERR_SHAPE when they differ, dst
 * untouched. */
TN_API tn_status tn_seq2seq_state_copy(tn_seq2seq_state *dst, const tn_seq2seq_state *src);
/** Free the state. NULL is a no-op. */
TN_API void tn_seq2seq_state_free(tn_seq2seq_state *st);

/** Sampled decoding: as tn_seq2seq_greedy, but each sentence's next token
 * is drawn with tn_sample (so: temperature, top-k, top-p; one draw of r
 * per sentence and step) from the decoder's distribution with pad and sos
 * excluded; score sums the model's log-probabilities of the drawn tokens
 * (and eos), as tn_seq2seq_greedy's does. Temperature 0 is greedy decoding exactly.
 * Returns TN_OK or an error (tn_sample's on bad options or a non-finite
 * logit; TN_ERR_NUMERIC when a drawn token's log-probability is not finite). */
TN_API tn_status tn_seq2seq_sample(tn_tape *tp, const tn_seq2seq *m, tn_tensor *src,
                                   const int32_t *src_len, int64_t max_len,
                                   const tn_sample_opts *so, tn_rng *r, int32_t *out,
                                   int32_t *out_len, double *score);
/** The decoder's attention weights while decoding one sentence greedily
 * (src [1, S]): weights [max_len, S] (row t for output token t; rows past
 * out_len are 0). For attention plots. Returns TN_OK or an error
 * (TN_ERR_ARG without attention; TN_ERR_NUMERIC as tn_seq2seq_greedy). */
TN_API tn_status tn_seq2seq_attention_map(tn_tape *tp, const tn_seq2seq *m, tn_tensor *src,
                                          int32_t src_len, int64_t max_len, int32_t *out,
                                          int32_t *out_len, double *weights);

#ifdef __cplusplus
}
#endif
#endif
