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

#ifdef __cplusplus
}
#endif
#endif
