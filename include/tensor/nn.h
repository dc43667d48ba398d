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

typedef struct tn_params {
    tn_param *items;
    int n, cap;
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
/** Parameter by full name, or NULL. */
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
/** y = x W^T + b: x [N, in] or [B, T, in] (flattened over leading dims) ->
 * [N, out] or [B, T, out]. */
TN_API tn_tensor *tn_linear_forward(tn_tape *tp, const tn_linear *l, tn_tensor *x);

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

typedef struct tn_rnn {
    tn_cell cell;
    int64_t input_size, hidden;
    int layers;
    bool bidirectional;
    double dropout; /* between layers, not after the last; training mode only */
    /* [layer * D + dir]: weight_ih [G*H, in], weight_hh [G*H, H], biases [G*H] */
    tn_tensor *w_ih[2 * TN_RNN_MAX_LAYERS], *w_hh[2 * TN_RNN_MAX_LAYERS];
    tn_tensor *b_ih[2 * TN_RNN_MAX_LAYERS], *b_hh[2 * TN_RNN_MAX_LAYERS];
} tn_rnn;

/** Create the parameters of an nn.RNN / nn.LSTM / nn.GRU equivalent (with
 * biases) in ps under prefix, initialised uniform(+-1/sqrt(hidden)) from r,
 * in PyTorch's order (per layer and direction: w_ih, w_hh, b_ih, b_hh). */
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
 * tape's error. */
TN_API tn_status tn_rnn_forward(tn_tape *tp, const tn_rnn *m, tn_tensor *x, tn_tensor *h0,
                                tn_tensor *c0, const int32_t *lengths, tn_rnn_out *out);

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

#ifdef __cplusplus
}
#endif
#endif
