/** @file
 * tensor/gradcheck.h - gradient checking by central differences.
 *
 * Compares the gradients that the tape computes with central differences
 * (f(x + eps) - f(x - eps)) / (2 eps), element by element, for any function
 * of tensors. Non-scalar outputs are reduced to L = sum(w * y) with a fixed
 * pseudo-random w in [-1, 1), so every output direction is checked. Run it
 * in float64; float32 differences are too coarse for a tight comparison.
 */
#ifndef TENSOR_GRADCHECK_H
#define TENSOR_GRADCHECK_H

#include "tensor/ops.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The function under test: build an output from inputs on tape tp. Called
 * many times on a freshly reset tape whose RNG is reseeded to the same value
 * each time (so dropout masks repeat). Return NULL on failure. */
typedef tn_tensor *(*tn_gradcheck_fn)(tn_tape *tp, tn_tensor *const *inputs, void *ctx);

typedef struct tn_gradcheck_result {
    double max_abs_err;  /* max |analytic - numeric| */
    double max_rel_err;  /* max |analytic - numeric| / max(|analytic|, |numeric|, 1e-2) */
    int worst_input;     /* input holding the worst (relative) element */
    int64_t worst_index; /* its row-major index */
    double worst_analytic, worst_numeric;
    int64_t n_checked; /* elements compared */
} tn_gradcheck_result;

/** Check f at inputs. Inputs are heap tensors; those with requires_grad set
 * are checked (others, e.g. int32 ids, are constants). The relative error
 * uses floor = 1e-2 in its denominator: central differences carry an
 * absolute rounding noise of ~1e-16 * |L| / eps ~ 1e-10, so for gradients
 * below 1e-2 the error is judged against 1e-2 (a wrong gradient still shows
 * as an error of order its own size / 1e-2), not against the gradient.
 * Input values are restored exactly afterwards; parameter gradients are left
 * zeroed. Returns TN_OK, or an error if f fails or an argument is bad. */
TN_API tn_status tn_gradcheck(tn_gradcheck_fn f, void *ctx, int n_inputs, tn_tensor *const *inputs,
                              double eps, tn_gradcheck_result *res);

/* Which op's backward is wrong (tn_gradcheck_blame). */
typedef struct tn_gradcheck_report {
    bool found;       /* a gradient disagrees with central differences */
    int64_t position; /* tape position of the op whose backward is blamed, -1 if none */
    char op[64];      /* its name (tn_tensor_op_name: a tn_custom op's own name) */
    int64_t tensor;   /* tape position of the tensor whose gradient it got wrong; -1: an input */
    int input;        /* that input's index when tensor is -1, else -1 */
    int64_t index;    /* the element of that gradient (row-major) */
    double analytic, numeric;
    int64_t n_checked; /* gradient elements compared */
    char message[512]; /* all of the above in one line (empty when none found) */
} tn_gradcheck_report;

/** Find the first op whose backward disagrees with central differences.
 * Runs f once and back-propagates (as tn_gradcheck), then checks the
 * gradient reaching every recorded tensor, from the output towards the
 * inputs, by perturbing that tensor alone as the op that made it computes
 * it (tn_tape_set_probe) and re-running f: up to 8 elements of each tensor
 * (all when it has fewer), then the inputs (those with requires_grad). The
 * first tensor whose gradient is wrong, all of whose later tensors'
 * gradients were right, got it from the backward of an op that consumes it:
 * that op is blamed (when several ops consume it, the message names them
 * all and position is the last of them). An element is wrong when
 * |analytic - numeric| / max(|analytic|, |numeric|, 1e-2) > tol (see
 * tn_gradcheck for the floor; 1e-6 suits float64 with eps 1e-6). f must
 * record the same ops on every call. Inputs are restored exactly and their
 * gradients left zeroed. Returns TN_OK (res->found says whether a culprit
 * was found) or an error if f fails or an argument is bad. */
TN_API tn_status tn_gradcheck_blame(tn_gradcheck_fn f, void *ctx, int n_inputs,
                                    tn_tensor *const *inputs, double eps, double tol,
                                    tn_gradcheck_report *res);

#ifdef __cplusplus
}
#endif
#endif
