/** @file
 * tensor/op_list.h - the one list of ops, from which enum tn_op
 * (tensor/ops.h), the backward prototypes (src/ops/ops_internal.h) and the
 * op table (src/ops/table.c) are generated, so that an op cannot be in one
 * and missing from another.
 */
#ifndef TENSOR_OP_LIST_H
#define TENSOR_OP_LIST_H

/** The ops in id order (the leaf entry first): one macro call per op,
 *
 *   OP(TN_OP_<NAME>, "<name>", tn__bw_<name>)   an op with a backward
 *   VIEW(TN_OP_<NAME>, "<name>", NULL)           no backward: a view (its
 *                                                gradient aliases its base's)
 *                                                or the leaf entry
 *
 * The first argument is the id's name in enum tn_op, the second the name
 * tn_op_name returns, the third the backward (in the op's family file of
 * src/ops/). Op ids are part of the ABI: add a new op at the end, never
 * reorder or remove one. Adding an op: one line here, the builder and
 * kernels and tn__bw_<name> in its family file, and a gradient-check case
 * in tests/. */
#define TN_OP_LIST(OP, VIEW)                                                            \
    VIEW(TN_OP_NONE, "leaf", NULL) /* not an op: a tensor with no history */            \
    /* shape.c: views and copies */                                                     \
    VIEW(TN_OP_RESHAPE, "reshape", NULL)                                                \
    VIEW(TN_OP_TRANSPOSE, "transpose", NULL)                                            \
    VIEW(TN_OP_NARROW, "narrow", NULL)                                                  \
    OP(TN_OP_CONTIGUOUS, "contiguous", tn__bw_contiguous)                               \
    OP(TN_OP_CONCAT, "concat", tn__bw_concat)                                           \
    OP(TN_OP_STACK, "stack", tn__bw_stack)                                              \
    /* binary.c: broadcasting arithmetic */                                             \
    OP(TN_OP_ADD, "add", tn__bw_add)                                                    \
    OP(TN_OP_SUB, "sub", tn__bw_sub)                                                    \
    OP(TN_OP_MUL, "mul", tn__bw_mul)                                                    \
    OP(TN_OP_DIV, "div", tn__bw_div)                                                    \
    /* unary.c: element-wise */                                                         \
    OP(TN_OP_SCALE, "scale", tn__bw_scale)                                              \
    OP(TN_OP_NEG, "neg", tn__bw_neg)                                                    \
    OP(TN_OP_EXP, "exp", tn__bw_exp)                                                    \
    OP(TN_OP_LOG, "log", tn__bw_log)                                                    \
    OP(TN_OP_SIGMOID, "sigmoid", tn__bw_sigmoid)                                        \
    OP(TN_OP_TANH, "tanh", tn__bw_tanh)                                                 \
    OP(TN_OP_RELU, "relu", tn__bw_relu)                                                 \
    OP(TN_OP_LEAKY_RELU, "leaky_relu", tn__bw_leaky_relu)                               \
    OP(TN_OP_GELU, "gelu", tn__bw_gelu)                                                 \
    OP(TN_OP_SILU, "silu", tn__bw_silu)                                                 \
    OP(TN_OP_MASK, "mask", tn__bw_mask)                                                 \
    OP(TN_OP_DROPOUT, "dropout", tn__bw_dropout)                                        \
    /* matmul.c: BLIS products */                                                       \
    OP(TN_OP_MATMUL, "matmul", tn__bw_matmul)                                           \
    OP(TN_OP_BMM, "bmm", tn__bw_bmm)                                                    \
    OP(TN_OP_ADDMM, "addmm", tn__bw_addmm)                                              \
    /* reduce.c */                                                                      \
    OP(TN_OP_SUM, "sum", tn__bw_sum)                                                    \
    OP(TN_OP_MEAN, "mean", tn__bw_mean)                                                 \
    /* softmax.c */                                                                     \
    OP(TN_OP_SOFTMAX, "softmax", tn__bw_softmax)                                        \
    OP(TN_OP_LOG_SOFTMAX, "log_softmax", tn__bw_log_softmax)                            \
    OP(TN_OP_SOFTMAX_MASKED, "softmax_masked", tn__bw_softmax_masked)                   \
    /* select.c */                                                                      \
    OP(TN_OP_TOPK, "topk", tn__bw_topk)                                                 \
    /* index.c */                                                                       \
    OP(TN_OP_GATHER_ROWS, "gather_rows", tn__bw_gather_rows)                            \
    /* loss.c */                                                                        \
    OP(TN_OP_CROSS_ENTROPY, "cross_entropy", tn__bw_cross_entropy)                      \
    OP(TN_OP_NLL, "nll", tn__bw_nll)                                                    \
    OP(TN_OP_MSE, "mse", tn__bw_mse)                                                    \
    /* fused.c: point-wise recurrent cells */                                           \
    OP(TN_OP_LSTM_CELL, "lstm_cell", tn__bw_lstm_cell)                                  \
    OP(TN_OP_GRU_CELL, "gru_cell", tn__bw_gru_cell)                                     \
    /* recurrent.c: a whole recurrent layer direction */                                \
    OP(TN_OP_RECURRENT, "recurrent", tn__bw_recurrent)                                  \
    /* custom.c: an op given by the user's callbacks (tn_custom) */                     \
    OP(TN_OP_CUSTOM, "custom", tn__bw_custom)                                           \
    /* scan.c: a recurrence captured from a step function (tn_scan) */                  \
    OP(TN_OP_SCAN, "scan", tn__bw_scan)                                                 \
    /* linear_loss.c: output layer and cross-entropy in one op */                       \
    OP(TN_OP_LINEAR_CROSS_ENTROPY, "linear_cross_entropy", tn__bw_linear_cross_entropy) \
    /* norm.c: layer normalisation over the last dim */                                 \
    OP(TN_OP_LAYER_NORM, "layer_norm", tn__bw_layer_norm)                               \
    /* norm.c: batch normalisation over dim 1 (the channels) */                         \
    OP(TN_OP_BATCH_NORM, "batch_norm", tn__bw_batch_norm)                               \
    /* conv.c: convolution (conv1d runs as conv2d on [B, C, 1, L] views) */             \
    OP(TN_OP_CONV2D, "conv2d", tn__bw_conv2d)                                           \
    /* pool.c: pooling over the last two dims (the 1-D pools as their 2-D forms) */     \
    OP(TN_OP_MAX_POOL2D, "max_pool2d", tn__bw_max_pool2d)                               \
    OP(TN_OP_AVG_POOL2D, "avg_pool2d", tn__bw_avg_pool2d)                               \
    OP(TN_OP_ADAPTIVE_AVG_POOL2D, "adaptive_avg_pool2d", tn__bw_adaptive_avg_pool2d)

#endif
