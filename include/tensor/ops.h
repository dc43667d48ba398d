/** @file
 * tensor/ops.h - differentiable ops and the backward engine.
 *
 * Every builder takes the tape first, checks its arguments, computes the
 * result eagerly and records itself on the tape when a gradient is wanted.
 * Results are tape tensors (valid until tn_tape_reset). On a bad argument a
 * builder returns NULL, names itself and the shapes in the message and makes
 * the tape's error sticky; builders given a NULL input (the result of an
 * earlier failure) return NULL quietly. Inputs are never modified.
 *
 * Inputs may be strided views (transpose, narrow); results are contiguous
 * unless the op is a view (reshape, transpose, narrow), whose result shares
 * the input's memory and gradient.
 *
 * Broadcasting (add, sub, mul, div, mask) follows numpy: shapes are aligned
 * on the right and a dimension of size 1 stretches to the other's size.
 */
#ifndef TENSOR_OPS_H
#define TENSOR_OPS_H

#include "tensor/core.h"
#include "tensor/op_list.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Op ids (TN_OP_NONE: a leaf), in the order of tensor/op_list.h, which
 * also gives each its name and backward (the op table, src/ops/table.c). */
#define TN__OP_ID(id, name, backward) id,
typedef enum tn_op { TN_OP_LIST(TN__OP_ID, TN__OP_ID) TN_OP_COUNT } tn_op;
#undef TN__OP_ID

/** Name of an op ("add"), or "?" for an id outside the table. */
TN_API const char *tn_op_name(int op);
/** Name of the op that made t: tn_op_name(t->op), or for a user-defined
 * op (tn_custom) its own name; "leaf" for a tensor no op made. */
TN_API const char *tn_tensor_op_name(const tn_tensor *t);

/* Loss reductions (PyTorch's 'none', 'mean', 'sum'). */
typedef enum tn_reduction {
    TN_REDUCE_MEAN = 0,
    TN_REDUCE_SUM = 1,
    TN_REDUCE_NONE = 2
} tn_reduction;

/* ---- backward engine (src/ops/backward.c) ---- */

/** Back-propagate from a scalar (numel 1) loss: seeds d loss = 1 and walks
 * the tape in reverse, accumulating (+=) into the gradients of every tensor
 * that requires grad, parameters included. Tape gradients start from zero
 * in every call (each is cleared right before the first kernel that adds
 * into it); parameter gradients are not zeroed (zero them yourself).
 * Fails (without touching any gradient) if the tape has a sticky error. */
TN_API tn_status tn_backward(tn_tape *tp, tn_tensor *loss);
/** Same, seeding the gradient of y with dy (same shape as y, any dtype). */
TN_API tn_status tn_backward_from(tn_tape *tp, tn_tensor *y, const tn_tensor *dy);

/** A function tn_backward calls once for each tensor outside the tape
 * whose gradient it accumulates (a parameter: a heap tensor that requires
 * grad, read by a recorded op directly, through views of it, or as an
 * input of tn_scan), as soon as that gradient is final for this backward:
 * right after the backward kernel of the earliest op that reads it, and
 * the products postponed into it (matmul's merged weight-gradient GEMMs)
 * done. The calls come in reverse order of first use, from the thread that
 * called tn_backward, while the sweep goes on after them: a data-parallel
 * trainer starts reducing a gradient there (tensor_dist does). The
 * function must not read or change the tape, and not change the tensor's
 * gradient before tn_backward returns. */
typedef void (*tn_grad_ready_fn)(void *ctx, tn_tensor *param);

/** Set (fn NULL: remove) tp's gradient-ready function; kept across
 * tn_tape_reset. Returns TN_OK, or TN_ERR_ARG for a NULL tape. */
TN_API tn_status tn_tape_set_grad_ready(tn_tape *tp, tn_grad_ready_fn fn, void *ctx);

/** Detach: a tensor sharing x's data that carries no gradient and no history
 * (the cut of truncated BPTT). Not an op: the result is a leaf. */
TN_API tn_tensor *tn_detach(tn_tape *tp, tn_tensor *x);

/* ---- shape.c ---- */

/** View with a new shape (same numel). x must be contiguous; otherwise a
 * contiguous copy is made first. One size may be -1 (inferred). */
TN_API tn_tensor *tn_reshape(tn_tape *tp, tn_tensor *x, int ndim, const int64_t *shape);
/** View with dims d0 and d1 swapped (negative dims count from the end). */
TN_API tn_tensor *tn_transpose(tn_tape *tp, tn_tensor *x, int d0, int d1);
/** View of x[..., start:start+len, ...] along dim. */
TN_API tn_tensor *tn_narrow(tn_tape *tp, tn_tensor *x, int dim, int64_t start, int64_t len);
/** Contiguous copy of x (a view when x already is contiguous). */
TN_API tn_tensor *tn_contiguous(tn_tape *tp, tn_tensor *x);
/** Concatenate n >= 1 tensors along dim (other dims equal). */
TN_API tn_tensor *tn_concat(tn_tape *tp, int n, tn_tensor *const *xs, int dim);
/** Stack n >= 1 equal-shaped tensors along a new dim (0..ndim). */
TN_API tn_tensor *tn_stack(tn_tape *tp, int n, tn_tensor *const *xs, int dim);

/* ---- binary.c ---- */

/** a + b, element-wise with numpy broadcasting (same dtype). */
TN_API tn_tensor *tn_add(tn_tape *tp, tn_tensor *a, tn_tensor *b);
/** a - b, element-wise with numpy broadcasting (same dtype). */
TN_API tn_tensor *tn_sub(tn_tape *tp, tn_tensor *a, tn_tensor *b);
/** a * b, element-wise with numpy broadcasting (same dtype). */
TN_API tn_tensor *tn_mul(tn_tape *tp, tn_tensor *a, tn_tensor *b);
/** a / b, element-wise with numpy broadcasting (same dtype). */
TN_API tn_tensor *tn_div(tn_tape *tp, tn_tensor *a, tn_tensor *b);

/* ---- unary.c ---- */

/** alpha * x. */
TN_API tn_tensor *tn_scale(tn_tape *tp, tn_tensor *x, double alpha);
/** -x. */
TN_API tn_tensor *tn_neg(tn_tape *tp, tn_tensor *x);
/** e^x, element-wise. */
TN_API tn_tensor *tn_exp(tn_tape *tp, tn_tensor *x);
/** Natural logarithm, element-wise (x <= 0 gives -inf or NaN, as log does). */
TN_API tn_tensor *tn_log(tn_tape *tp, tn_tensor *x);
/** 1 / (1 + e^-x), element-wise; stable for large |x|. */
TN_API tn_tensor *tn_sigmoid(tn_tape *tp, tn_tensor *x);
/** tanh(x), element-wise. */
TN_API tn_tensor *tn_tanh(tn_tape *tp, tn_tensor *x);
/** max(x, 0), element-wise. */
TN_API tn_tensor *tn_relu(tn_tape *tp, tn_tensor *x);
/** x for x >= 0, negative_slope * x below, element-wise. */
TN_API tn_tensor *tn_leaky_relu(tn_tape *tp, tn_tensor *x, double negative_slope);
/** x * Phi(x), element-wise, in the exact (erf) form. */
TN_API tn_tensor *tn_gelu(tn_tape *tp, tn_tensor *x);
/** x * sigmoid(x), element-wise. */
TN_API tn_tensor *tn_silu(tn_tape *tp, tn_tensor *x);
/** x where mask != 0, else 0. mask broadcasts to x, any float dtype or I32,
 * receives no gradient. For variable-length sequences. */
TN_API tn_tensor *tn_mask(tn_tape *tp, tn_tensor *x, tn_tensor *mask);
/** Inverted dropout with probability p in [0, 1): in training mode zeroes
 * each element with probability p (tape RNG) and scales the rest by
 * 1/(1-p); in eval mode (tn_tape_set_training false) or p == 0, returns x. */
TN_API tn_tensor *tn_dropout(tn_tape *tp, tn_tensor *x, double p);

/* ---- matmul.c (BLIS) ---- */

/** a [M, K] @ b [K, N] -> [M, N]. Transposed operands are views
 * (tn_transpose), passed to BLIS as strides without a copy. */
TN_API tn_tensor *tn_matmul(tn_tape *tp, tn_tensor *a, tn_tensor *b);
/** Batched: a [Bt, M, K] @ b [Bt, K, N] -> [Bt, M, N]. */
TN_API tn_tensor *tn_bmm(tn_tape *tp, tn_tensor *a, tn_tensor *b);
/** bias + a @ b: a [M, K], b [K, N], bias [N] or [1, N] (broadcast over
 * rows) or [M, N] (may be a strided view, e.g. one timestep of an input
 * projection). */
TN_API tn_tensor *tn_addmm(tn_tape *tp, tn_tensor *bias, tn_tensor *a, tn_tensor *b);

/* ---- reduce.c ---- */

/** Sum of all elements -> shape [1]. */
TN_API tn_tensor *tn_sum(tn_tape *tp, tn_tensor *x);
/** Mean of all elements -> shape [1]. */
TN_API tn_tensor *tn_mean(tn_tape *tp, tn_tensor *x);
/** @{ */
/** Sum / mean along dim; keepdim keeps it with size 1, else it is removed
 * (a 1-D input then gives shape [1]). */
TN_API tn_tensor *tn_sum_dim(tn_tape *tp, tn_tensor *x, int dim, bool keepdim);
TN_API tn_tensor *tn_mean_dim(tn_tape *tp, tn_tensor *x, int dim, bool keepdim);
/** @} */

/* ---- softmax.c ---- */

/** @{ */
/** Softmax / log-softmax along dim (log-sum-exp with max subtraction). */
TN_API tn_tensor *tn_softmax(tn_tape *tp, tn_tensor *x, int dim);
TN_API tn_tensor *tn_log_softmax(tn_tape *tp, tn_tensor *x, int dim);
/** @} */
/** Softmax along dim over the elements that mask keeps: mask is int32 and
 * broadcasts to x (numpy rules; nonzero keeps). Masked elements get exactly
 * 0 and no gradient; a row with nothing kept is all zeros. For attention
 * over padded sequences: mask [B, 1, S] or [B, S] from the lengths. The
 * mask is read at the call (it may change afterwards). */
TN_API tn_tensor *tn_softmax_masked(tn_tape *tp, tn_tensor *x, int dim, tn_tensor *mask);

/* ---- select.c ---- */

/** The k largest elements of x along dim, in order (larger first; equal
 * values by lower index; NaN counts as the largest): *values (x's dtype,
 * differentiable: the gradient flows back to the chosen elements) and
 * *indices (int32 positions along dim), both of x's shape with dim of size
 * k, tape tensors. 1 <= k <= x's size along dim. Returns TN_OK, or an
 * error (both outputs NULL; the tape's error is set). */
TN_API tn_status tn_topk(tn_tape *tp, tn_tensor *x, int64_t k, int dim, tn_tensor **values,
                         tn_tensor **indices);
/** int32 positions of the largest element along dim (order as tn_topk),
 * dim removed unless keepdim (a 1-D x gives [1]). No gradient. */
TN_API tn_tensor *tn_argmax(tn_tape *tp, tn_tensor *x, int dim, bool keepdim);

/* ---- index.c ---- */

/** Embedding lookup: table [V, E], ids (I32, any shape S, each in [0, V))
 * -> S x [E] (ndim of ids + 1 <= 4). Backward scatter-adds into table.
 * Rows whose id equals padding_idx get no gradient (-1: none). */
TN_API tn_tensor *tn_gather_rows(tn_tape *tp, tn_tensor *table, tn_tensor *ids,
                                 int64_t padding_idx);

/* ---- loss.c ---- */

/** Cross-entropy over logits [N, C] with class targets (I32 [N]); targets
 * equal to ignore_index are skipped (mean divides by the rest). Fused
 * log-softmax + NLL. Result [1] (mean/sum) or [N] (none). */
TN_API tn_tensor *tn_cross_entropy(tn_tape *tp, tn_tensor *logits, tn_tensor *targets,
                                   int64_t ignore_index, tn_reduction red);
/** Cross-entropy with class weights, as torch.nn.functional.cross_entropy's
 * weight=: logits [N, C], targets I32 [N], weight [C] (logits' dtype,
 * finite, >= 0, not requiring grad; read during the call only, it need not
 * outlive it) or NULL (all 1: tn_cross_entropy). Row i's loss is
 * w[t_i] * (logsumexp(x_i) - x_i[t_i]), 0 when t_i == ignore_index; 'mean'
 * divides the sum by the sum of w[t_i] over the rows not ignored (NaN when
 * that is 0, as PyTorch), 'sum' does not, 'none' gives the [N] weighted
 * losses. A bad weight fails the tape naming cross_entropy (TN_ERR_DTYPE,
 * TN_ERR_SHAPE, or TN_ERR_ARG for a negative, non-finite or grad-requiring
 * weight). Returns NULL on error. */
TN_API tn_tensor *tn_cross_entropy_weighted(tn_tape *tp, tn_tensor *logits, tn_tensor *targets,
                                            tn_tensor *weight, int64_t ignore_index,
                                            tn_reduction red);
/** Negative log-likelihood of log-probabilities logp [N, C]; as above. */
TN_API tn_tensor *tn_nll(tn_tape *tp, tn_tensor *logp, tn_tensor *targets, int64_t ignore_index,
                         tn_reduction red);
/** Mean squared error of a and b (same shape). Result [1], or a's shape for
 * TN_REDUCE_NONE. */
TN_API tn_tensor *tn_mse(tn_tape *tp, tn_tensor *a, tn_tensor *b, tn_reduction red);

/* ---- linear_loss.c ---- */

/** Output layer and cross-entropy in one op, without the [N, V] logits:
 * F.cross_entropy(h @ weight^T + bias, targets, weight=class_weight,
 * ignore_index=ignore_index, label_smoothing=label_smoothing,
 * reduction=red) of PyTorch, where
 *   h [N, H]       the features (float; may be a view BLIS can take),
 *   weight [V, H]  the output layer's weight (nn.Linear's layout),
 *   bias [V]       or NULL (no bias),
 *   targets        int32 [N], each in [0, V) or equal to ignore_index,
 *   class_weight   [V] or NULL (all 1): finite, >= 0, not requiring grad,
 *                  read during the call only (copied),
 *   label_smoothing in [0, 1]: the target of row i is (1 - e) onehot(t_i)
 *                  + e / V (uniform over all V classes).
 * With w the class weights and lse_i = logsumexp of row i's logits x_i,
 * row i's loss is (0 when t_i == ignore_index)
 *   (1 - e) w[t_i] (lse_i - x_i[t_i]) + (e / V) sum_c w[c] (lse_i - x_i[c]);
 * 'sum' adds them, 'mean' divides that sum by the sum of w[t_i] over the
 * rows not ignored (NaN when it is 0, as PyTorch), 'none' gives the [N]
 * losses. Gradients reach h, weight and bias (those requiring grad).
 *
 * Rows whose target is ignore_index cost nothing: when there are some,
 * the other rows of h are copied into a compact matrix (N' H values of
 * tape memory) that the rest works on, and their gradient rows are added
 * back to h's, so a padded batch pays for its real rows only (N below
 * counts those).
 * The rows are processed in blocks of as many as 32 MiB of logits hold
 * (at least 16 rows): one GEMM makes a block's logits, then each row's
 * log-sum-exp and loss. For 'mean'
 * and 'sum' with gradients recorded, the forward also turns the block into
 * d loss / d logits and adds its products into dh [N, H], dweight [V, H]
 * and dbias [V] kept in the op's tape memory, which backward scales by the
 * upstream gradient (3 GEMMs per block in all, and the forward costs them
 * even if no backward follows) - unless the vocabulary is small
 * (N V <= (N + V) H): then d loss / d logits [N, V] is kept whole and
 * backward makes the products. 'none' recomputes each block's logits in
 * backward (its row gradients are only known then: 4 GEMMs). In no-grad
 * mode only the logits GEMM runs. Tape memory, in values of h's dtype: a
 * block of logits (at most 32 MiB, or 16 V values); with the gradients of a scalar loss,
 * either the whole N V instead or (N + V) H + V more.
 * Result [1] (mean, sum) or [N] (none), a tape tensor; NULL on error (the
 * tape fails naming linear_cross_entropy and the shapes). */
TN_API tn_tensor *tn_linear_cross_entropy(tn_tape *tp, tn_tensor *h, tn_tensor *weight,
                                          tn_tensor *bias, tn_tensor *targets,
                                          tn_tensor *class_weight, int64_t ignore_index,
                                          double label_smoothing, tn_reduction red);

/* ---- norm.c ---- */

/** Layer normalisation over the last dim, PyTorch's F.layer_norm(x,
 * (D,), weight, bias, eps): each row of D = x.shape[-1] elements becomes
 * y = (x - mean) / sqrt(var + eps) * weight + bias, var biased (divided by
 * D). x has 1 to 4 dims, any strides; weight and bias are [D] of x's dtype
 * (any stride) or NULL (ones, zeros). Returns x's shape, contiguous. Means
 * and variances are summed in double; the per-row mean and 1/sqrt(var +
 * eps) stay in the tape's arena for backward, which gives x, weight and
 * bias their gradients. A shape or dtype mismatch, x with 0 or more than 4
 * dims or an empty last dim, or eps <= 0 or non-finite fails the tape
 * naming layer_norm and the shapes (TN_ERR_SHAPE, TN_ERR_DTYPE,
 * TN_ERR_ARG). Returns NULL on error. */
TN_API tn_tensor *tn_layer_norm(tn_tape *tp, tn_tensor *x, tn_tensor *weight, tn_tensor *bias,
                                double eps);

/** Batch normalisation, PyTorch's F.batch_norm(x, running_mean,
 * running_var, weight, bias, training, momentum, eps): x [N, C], [N, C, L]
 * or [N, C, H, W] (any strides) is normalised per channel c over the N *
 * L (or N * H * W) elements of channel c, y = (x - mean_c) / sqrt(var_c +
 * eps) * weight_c + bias_c, weight and bias [C] or NULL (ones, zeros).
 * With training true, or without running statistics (running_mean and
 * running_var NULL), mean_c and var_c are the batch's (var biased) and the
 * gradient flows through them; with training true and running statistics
 * given, those are updated in place, as PyTorch does: running = (1 -
 * momentum) * running + momentum * batch, the variance unbiased (times n /
 * (n - 1), n the elements per channel). With training false and running
 * statistics, they normalise (constants for backward). running_mean and
 * running_var are [C] contiguous tensors of x's dtype (not on a tape),
 * both or neither; n must be at least 2 in training mode. Statistics are
 * summed in double. Failures (shapes, dtypes, eps <= 0, momentum outside
 * [0, 1]) fail the tape naming batch_norm. Returns NULL on error. */
TN_API tn_tensor *tn_batch_norm(tn_tape *tp, tn_tensor *x, tn_tensor *weight, tn_tensor *bias,
                                tn_tensor *running_mean, tn_tensor *running_var, bool training,
                                double momentum, double eps);

/* ---- conv.c: convolution (PyTorch's F.conv1d / F.conv2d) ---- */

/** The geometry of a 2-D convolution (torch.nn.Conv2d's arguments). */
typedef struct tn_conv2d_opts {
    int64_t stride_h, stride_w;     /* >= 1 (default 1) */
    int64_t padding_h, padding_w;   /* >= 0 zeros on each side (default 0) */
    int64_t dilation_h, dilation_w; /* >= 1 (default 1) */
    int64_t groups;                 /* >= 1, divides C_in and C_out (default 1) */
} tn_conv2d_opts;

/** The defaults: stride 1, padding 0, dilation 1, groups 1. */
TN_API tn_conv2d_opts tn_conv2d_defaults(void);

/** 2-D convolution (cross-correlation), PyTorch's F.conv2d(x, weight,
 * bias, stride, padding, dilation, groups) with nn.Conv2d's weight layout,
 * so its state_dict tensors load as they are:
 *   x [B, C_in, H, W], weight [C_out, C_in / groups, KH, KW],
 *   bias [C_out] or NULL, o: the geometry (NULL: tn_conv2d_defaults()).
 * Returns y [B, C_out, OH, OW] with
 *   OH = (H + 2 padding_h - dilation_h (KH - 1) - 1) / stride_h + 1
 * (rounded down; OW likewise), and
 *   y[b, o, i, j] = bias[o] + sum over c in o's group, p < KH, q < KW of
 *     weight[o, c, p, q] x[b, g C_in/groups + c, i s_h - pad_h + p d_h,
 *                                                 j s_w - pad_w + q d_w]
 * (zero outside x), g = o / (C_out / groups). Gradients reach x, weight
 * and bias. Computed per image and group as products with the im2col
 * columns [C_in/groups KH KW, OH OW], packed panel by panel straight from
 * x for BLIS's micro-kernel (never made whole), images split over the
 * threads; backward packs them again (nothing but the op's geometry is
 * kept) and makes the input gradient by col2im. Strided x or weight are copied (tn_contiguous)
 * first; bias may have any stride. A bad geometry (wrong dims, channels
 * not matching weight x groups or not divisible by groups, a bias not
 * [C_out], stride or dilation < 1, padding < 0, an output size < 1) or a
 * dtype mismatch fails the tape naming conv2d and the shapes
 * (TN_ERR_SHAPE, TN_ERR_ARG, TN_ERR_DTYPE). Returns NULL on error. */
TN_API tn_tensor *tn_conv2d(tn_tape *tp, tn_tensor *x, tn_tensor *weight, tn_tensor *bias,
                            const tn_conv2d_opts *o);

/** 1-D convolution, PyTorch's F.conv1d(x, weight, bias, stride, padding,
 * dilation, groups): x [B, C_in, L], weight [C_out, C_in / groups, K]
 * (nn.Conv1d's layout), bias [C_out] or NULL -> y [B, C_out, OL],
 * OL = (L + 2 padding - dilation (K - 1) - 1) / stride + 1. Runs as
 * tn_conv2d on [B, C_in, 1, L] and [C_out, C_in / groups, 1, K] views (y
 * is a [B, C_out, OL] view of its result, so the tape shows conv2d between
 * reshapes); errors name conv1d and the 3-D shapes, as tn_conv2d's. */
TN_API tn_tensor *tn_conv1d(tn_tape *tp, tn_tensor *x, tn_tensor *weight, tn_tensor *bias,
                            int64_t stride, int64_t padding, int64_t dilation, int64_t groups);

/* ---- pool.c: pooling over the last two dims of x [B, C, H, W] ---- */

/** Max pooling, PyTorch's F.max_pool2d(x, kernel, stride, padding) (no
 * dilation, ceil_mode False): square windows of kernel x kernel at steps
 * of stride, x padded with -inf by padding on each side; y [B, C, OH, OW],
 * OH = (H + 2 padding - kernel) / stride + 1 (rounded down). The gradient
 * of each output goes to its window's maximum, the first in row-major
 * order on ties (a NaN counts as the maximum: the window's last NaN), as
 * PyTorch's CPU kernel; the positions
 * are kept (int64, one per output) for backward. kernel >= 1, stride >= 1,
 * 0 <= padding <= kernel / 2 (PyTorch's limit), output sizes >= 1, else
 * the tape fails naming max_pool2d and x's shape. Returns NULL on error. */
TN_API tn_tensor *tn_max_pool2d(tn_tape *tp, tn_tensor *x, int64_t kernel, int64_t stride,
                                int64_t padding);
/** Average pooling, PyTorch's F.avg_pool2d(x, kernel, stride, padding,
 * ceil_mode=False, count_include_pad): windows and sizes as
 * tn_max_pool2d, x padded with zeros; each output is its window's sum
 * divided by kernel^2 (window cut at the padded edge) when
 * count_include_pad, else by the number of elements of x in it. Same
 * argument rules, errors naming avg_pool2d. */
TN_API tn_tensor *tn_avg_pool2d(tn_tape *tp, tn_tensor *x, int64_t kernel, int64_t stride,
                                int64_t padding, bool count_include_pad);
/** Adaptive average pooling, PyTorch's F.adaptive_avg_pool2d(x, (out_h,
 * out_w)): y [B, C, out_h, out_w], output (i, j) the mean of x's rows
 * floor(i H / out_h) .. ceil((i + 1) H / out_h) - 1 and columns likewise.
 * out_h, out_w >= 1 (larger than H, W is allowed: windows then overlap),
 * else the tape fails naming adaptive_avg_pool2d. Returns NULL on error. */
TN_API tn_tensor *tn_adaptive_avg_pool2d(tn_tape *tp, tn_tensor *x, int64_t out_h, int64_t out_w);
/** @{ */
/** 1-D max / average pooling of x [B, C, L] (F.max_pool1d, F.avg_pool1d):
 * the 2-D ops on a [B, C, 1, L] view with windows 1 x kernel, errors
 * naming max_pool1d / avg_pool1d; y [B, C, OL] (a view of the 2-D op's
 * result). */
TN_API tn_tensor *tn_max_pool1d(tn_tape *tp, tn_tensor *x, int64_t kernel, int64_t stride,
                                int64_t padding);
TN_API tn_tensor *tn_avg_pool1d(tn_tape *tp, tn_tensor *x, int64_t kernel, int64_t stride,
                                int64_t padding, bool count_include_pad);
/** @} */

/* ---- fused.c: point-wise recurrent cells ---- */

/** LSTM cell point-wise math in one pass. gates [B, 4H]: pre-activations of
 * the gates i, f, g, o (PyTorch's order; e.g. x W_ih^T + h W_hh^T + biases,
 * may be a strided view); c [B, H] previous cell state or NULL (zeros).
 * Returns [B, 2H] = [h' | c'] with c' = s(f) c + s(i) tanh(g) and
 * h' = s(o) tanh(c'); take each half with tn_narrow (dim 1). */
TN_API tn_tensor *tn_lstm_cell(tn_tape *tp, tn_tensor *gates, tn_tensor *c);
/** GRU cell point-wise math in one pass. xg [B, 3H]: input parts of the
 * gates r, z, n (x W_ih^T + b_ih); hg [B, 3H]: recurrent parts
 * (h W_hh^T + b_hh), or [3H] (just b_hh) when h is zeros; h [B, H] or NULL
 * (zeros). Returns h' = (1 - z) n + z h with r = s(xr + hr),
 * z = s(xz + hz), n = tanh(xn + r hn) (b_hn inside the reset product, as
 * PyTorch). */
TN_API tn_tensor *tn_gru_cell(tn_tape *tp, tn_tensor *xg, tn_tensor *hg, tn_tensor *h);

/* ---- recurrent.c: one direction of a recurrent layer as one op ---- */

typedef enum tn_cell {
    TN_CELL_RNN_TANH = 0,
    TN_CELL_RNN_RELU = 1,
    TN_CELL_LSTM = 2,
    TN_CELL_GRU = 3,
} tn_cell;

/** @{ */
/** "rnn_tanh", "rnn_relu", "lstm", "gru"; and back: *out gets the cell
 * of name ("rnn" is rnn_tanh), or TN_ERR_ARG with a message listing the
 * names (*out unchanged). */
TN_API const char *tn_cell_name(tn_cell c);
TN_API tn_status tn_cell_from_name(const char *name, tn_cell *out);
/** @} */
/** Gates per cell: 1, 1, 4, 3; 0 for an unknown cell. */
TN_API int tn_cell_gates(tn_cell c);

/* The weights of one layer direction, PyTorch's names and layouts, G gates
 * (1 for RNN, 4 for LSTM (i, f, g, o), 3 for GRU (r, z, n)):
 * w_ih [G*H, I], w_hh [G*H, H], b_ih and b_hh [G*H] or NULL (no bias). */
typedef struct tn_rnn_weights {
    tn_tensor *w_ih, *w_hh, *b_ih, *b_hh;
} tn_rnn_weights;

/** Run a cell over a whole sequence, as PyTorch's single-layer,
 * single-direction RNN/LSTM/GRU with batch_first = True:
 *   x [B, T, I]; h0, c0 [B, H] or NULL (zeros; c0 for LSTM only);
 *   lengths: B values in 1..T or NULL (all T), copied; step t of sequence b
 *   runs only when t < lengths[b] (a packed sequence): later outputs are
 *   zero and the state carries over unchanged;
 *   reverse: process t = T-1 .. 0 (the backward direction of a
 *   bidirectional layer; with lengths each sequence starts at its own end).
 * Returns [S, B, T, H]: S = 1 for RNN and GRU (the h of every step), S = 2
 * for LSTM ([0] h, [1] c of every step). The final state is the one at
 * t = lengths[b] - 1 (forward) or t = 0 (reverse).
 *
 * x may be a view whose [B*T, I] rows have one stride (e.g. the h part of
 * an earlier layer's result); other layouts fail (use tn_contiguous).
 * Internally one GEMM makes the input projection of all steps, each step
 * adds h W_hh^T into its rows and applies the gates in one pass, and
 * backward makes each weight gradient with one GEMM over all B*T rows.
 * Only the activations are kept (in the op's tape memory), and backward
 * overwrites them with their gradients: like PyTorch without retain_graph,
 * a second backward through the same result fails the tape. */
TN_API tn_tensor *tn_recurrent(tn_tape *tp, tn_cell cell, const tn_rnn_weights *w, tn_tensor *x,
                               tn_tensor *h0, tn_tensor *c0, const int32_t *lengths, bool reverse);

/* ---- user-defined ops (src/ops/custom.c) ---- */

/* An op written by the user: a forward and a backward callback that the
 * tape records and calls like its own kernels, so that a model can use an
 * operation the library lacks and still get its gradient from the tape,
 * and tn_gradcheck / tn_gradcheck_blame check it by name. */
typedef struct tn_custom_op {
    /* Name in messages and in tn_gradcheck_blame's report (not copied: a
     * string that outlives every tape using the op, e.g. a literal). */
    const char *name;
    /* Compute y from in[0 .. n_in-1]. y is contiguous with the shape given
     * to tn_custom and its data uninitialised; every input is contiguous
     * (tn_custom makes a copy of a strided one). Return TN_OK, or a status
     * after tn_set_error: the tape then fails naming the op. */
    tn_status (*forward)(tn_tensor *y, tn_tensor *const *in, int n_in, void *ctx);
    /* Add (+=) dL/d in[k] into in[k]->grad for every input whose grad is not
     * NULL (others need none), from y's data and dL/dy in y->grad; every
     * buffer is contiguous, of the op's dtype. May be NULL for an op that
     * passes no gradient. */
    void (*backward)(const tn_tensor *y, tn_tensor *const *in, int n_in, void *ctx);
} tn_custom_op;

/** Record a user-defined op: y (dtype of in[0], shape [ndim] shape) :=
 * op->forward(in). 1 <= n_in <= TN_MAX_SRC float inputs of one dtype; op
 * and ctx must stay valid until the tape is reset (backward calls them).
 * y requires grad when an input does (and the tape records gradients).
 * NULL on error: bad arguments or a failing forward fail the tape with a
 * message naming op->name. */
TN_API tn_tensor *tn_custom(tn_tape *tp, const tn_custom_op *op, void *ctx, int n_in,
                            tn_tensor *const *in, int ndim, const int64_t *shape);

/* ---- a recurrence from a step function (src/ops/scan.c) ---- */

/* One step of a recurrent cell written with tape ops: from the step's
 * inputs x[j] ([B, G_j]) and the states state[k] ([B, H_k]), build the next
 * states into next[k] (same shapes). Return TN_OK, or an error status
 * (after tn_set_error or with the tape failed). It must record the same ops
 * whatever the values (no branching on data). */
typedef tn_status (*tn_step_fn)(tn_tape *tp, void *ctx, tn_tensor *const *x,
                                tn_tensor *const *state, tn_tensor **next);

/** Run step over T steps: x[j] are the sequences [T, B, G_j] (1 <= n_x <=
 * 8), init[k] the initial states [B, H_k] (1 <= n_state <= 8; zeros are
 * a tape tensor of zeros), all of one float dtype. Returns y [T, B, S], S =
 * sum H_k: y[t] holds the states after step t side by side (state k in
 * columns from H_0 + ... + H_{k-1}), so the final states are y[T-1]; the
 * gradients reach x, init and every parameter the step uses.
 *
 * The step is recorded once and replayed as one op when it is made of
 * products against parameters (tn_matmul or tn_addmm whose right operand
 * is a parameter or a view of one), element-wise ops on [B, n] values or
 * on parameters [n] broadcast over the rows, and narrow views along the
 * last dim, with B <= 256: runs of element-wise ops are then executed row
 * by row, the rows split over the threads, and the weight gradients summed
 * as one product over all steps. Any other step runs eagerly, calling step
 * at every t on tp, with the same result within float rounding. ctx is
 * passed to step; it need not outlive the call. NULL on error (the tape
 * names tn_scan or the failing op). */
TN_API tn_tensor *tn_scan(tn_tape *tp, tn_step_fn step, void *ctx, int n_x, tn_tensor *const *x,
                          int n_state, tn_tensor *const *init);

#ifdef __cplusplus
}
#endif
#endif
