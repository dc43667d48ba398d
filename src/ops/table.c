/* src/ops/table.c - the op table: name and backward of every op.
 * Adding an op: one enum entry in tensor/ops.h, one line here, the builder
 * and kernels in its family file, and a gradient-check case in tests/. */
#include "ops_internal.h"

void tn__bw_contiguous(tn_tensor *y);
void tn__bw_concat(tn_tensor *y);
void tn__bw_stack(tn_tensor *y);
void tn__bw_add(tn_tensor *y);
void tn__bw_sub(tn_tensor *y);
void tn__bw_mul(tn_tensor *y);
void tn__bw_div(tn_tensor *y);
void tn__bw_scale(tn_tensor *y);
void tn__bw_neg(tn_tensor *y);
void tn__bw_exp(tn_tensor *y);
void tn__bw_log(tn_tensor *y);
void tn__bw_sigmoid(tn_tensor *y);
void tn__bw_tanh(tn_tensor *y);
void tn__bw_relu(tn_tensor *y);
void tn__bw_leaky_relu(tn_tensor *y);
void tn__bw_gelu(tn_tensor *y);
void tn__bw_silu(tn_tensor *y);
void tn__bw_mask(tn_tensor *y);
void tn__bw_dropout(tn_tensor *y);
void tn__bw_matmul(tn_tensor *y);
void tn__bw_bmm(tn_tensor *y);
void tn__bw_addmm(tn_tensor *y);
void tn__bw_sum(tn_tensor *y);
void tn__bw_mean(tn_tensor *y);
void tn__bw_softmax(tn_tensor *y);
void tn__bw_log_softmax(tn_tensor *y);
void tn__bw_softmax_masked(tn_tensor *y);
void tn__bw_topk(tn_tensor *y);
void tn__bw_gather_rows(tn_tensor *y);
void tn__bw_cross_entropy(tn_tensor *y);
void tn__bw_nll(tn_tensor *y);
void tn__bw_mse(tn_tensor *y);
void tn__bw_lstm_cell(tn_tensor *y);
void tn__bw_gru_cell(tn_tensor *y);
void tn__bw_recurrent(tn_tensor *y);
void tn__bw_custom(tn_tensor *y);
void tn__bw_scan(tn_tensor *y);
void tn__bw_linear_cross_entropy(tn_tensor *y);

const tn_op_def tn__op_table[TN_OP_COUNT] = {
    [TN_OP_NONE] = {"leaf", NULL},
    [TN_OP_RESHAPE] = {"reshape", NULL},
    [TN_OP_TRANSPOSE] = {"transpose", NULL},
    [TN_OP_NARROW] = {"narrow", NULL},
    [TN_OP_CONTIGUOUS] = {"contiguous", tn__bw_contiguous},
    [TN_OP_CONCAT] = {"concat", tn__bw_concat},
    [TN_OP_STACK] = {"stack", tn__bw_stack},
    [TN_OP_ADD] = {"add", tn__bw_add},
    [TN_OP_SUB] = {"sub", tn__bw_sub},
    [TN_OP_MUL] = {"mul", tn__bw_mul},
    [TN_OP_DIV] = {"div", tn__bw_div},
    [TN_OP_SCALE] = {"scale", tn__bw_scale},
    [TN_OP_NEG] = {"neg", tn__bw_neg},
    [TN_OP_EXP] = {"exp", tn__bw_exp},
    [TN_OP_LOG] = {"log", tn__bw_log},
    [TN_OP_SIGMOID] = {"sigmoid", tn__bw_sigmoid},
    [TN_OP_TANH] = {"tanh", tn__bw_tanh},
    [TN_OP_RELU] = {"relu", tn__bw_relu},
    [TN_OP_LEAKY_RELU] = {"leaky_relu", tn__bw_leaky_relu},
    [TN_OP_GELU] = {"gelu", tn__bw_gelu},
    [TN_OP_SILU] = {"silu", tn__bw_silu},
    [TN_OP_MASK] = {"mask", tn__bw_mask},
    [TN_OP_DROPOUT] = {"dropout", tn__bw_dropout},
    [TN_OP_MATMUL] = {"matmul", tn__bw_matmul},
    [TN_OP_BMM] = {"bmm", tn__bw_bmm},
    [TN_OP_ADDMM] = {"addmm", tn__bw_addmm},
    [TN_OP_SUM] = {"sum", tn__bw_sum},
    [TN_OP_MEAN] = {"mean", tn__bw_mean},
    [TN_OP_SOFTMAX] = {"softmax", tn__bw_softmax},
    [TN_OP_LOG_SOFTMAX] = {"log_softmax", tn__bw_log_softmax},
    [TN_OP_SOFTMAX_MASKED] = {"softmax_masked", tn__bw_softmax_masked},
    [TN_OP_TOPK] = {"topk", tn__bw_topk},
    [TN_OP_GATHER_ROWS] = {"gather_rows", tn__bw_gather_rows},
    [TN_OP_CROSS_ENTROPY] = {"cross_entropy", tn__bw_cross_entropy},
    [TN_OP_NLL] = {"nll", tn__bw_nll},
    [TN_OP_MSE] = {"mse", tn__bw_mse},
    [TN_OP_LSTM_CELL] = {"lstm_cell", tn__bw_lstm_cell},
    [TN_OP_GRU_CELL] = {"gru_cell", tn__bw_gru_cell},
    [TN_OP_RECURRENT] = {"recurrent", tn__bw_recurrent},
    [TN_OP_CUSTOM] = {"custom", tn__bw_custom},
    [TN_OP_SCAN] = {"scan", tn__bw_scan},
    [TN_OP_LINEAR_CROSS_ENTROPY] = {"linear_cross_entropy", tn__bw_linear_cross_entropy},
};

const char *tn_op_name(int op)
{
    if (op < 0 || op >= TN_OP_COUNT || !tn__op_table[op].name)
        return "?";
    return tn__op_table[op].name;
}
