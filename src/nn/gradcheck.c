/* src/nn/gradcheck.c - central-difference gradient checking. */
#include "tensor/gradcheck.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define GC_SEED 0x5eedULL
#define GC_FLOOR 1e-2

/* Weight i of the fixed projection w (1 for a scalar output). */
static double weight(tn_rng *wr, int64_t n)
{
    return n == 1 ? 1.0 : 2.0 * tn_rng_uniform(wr) - 1.0;
}

/* Run f on a reset tape; *loss = sum(w * y). */
static tn_status eval(tn_gradcheck_fn f, void *ctx, tn_tape *tp, tn_tensor *const *in,
                      double *loss, tn_tensor **y_out)
{
    tn_tape_reset(tp);
    tn_rng_seed(tn_tape_rng(tp), GC_SEED);
    tn_tensor *y = f(tp, in, ctx);
    if (!y || tn_tape_error(tp))
        return tn_set_error(TN_ERR_STATE, "tn_gradcheck: the function failed: %s",
                            tn_tape_error(tp) ? tn_tape_error(tp) : "it returned NULL");
    int64_t n = tn_numel(y);
    tn_rng wr;
    tn_rng_seed(&wr, GC_SEED + 1);
    double s = 0;
    for (int64_t i = 0; i < n; i++)
        s += weight(&wr, n) * tn_tensor_get(y, i);
    *loss = s;
    if (y_out)
        *y_out = y;
    return TN_OK;
}

tn_status tn_gradcheck(tn_gradcheck_fn f, void *ctx, int n_inputs, tn_tensor *const *inputs,
                       double eps, tn_gradcheck_result *res)
{
    if (!f || !inputs || !res || n_inputs < 1 || !(eps > 0))
        return tn_set_error(TN_ERR_ARG, "tn_gradcheck: bad arguments");
    memset(res, 0, sizeof *res);
    res->worst_input = -1;
    tn_tape *tp = tn_tape_new();
    if (!tp)
        return TN_ERR_MEMORY;
    tn_status st = TN_OK;
    double loss;
    tn_tensor *y = NULL;
    for (int k = 0; k < n_inputs; k++)
        tn_tensor_zero_grad(inputs[k]);

    /* Analytic gradients: one backward with dy = w. */
    if ((st = eval(f, ctx, tp, inputs, &loss, &y)) != TN_OK)
        goto done;
    tn_tensor *dy = tn_tensor_new(TN_F64, y->ndim, y->shape);
    if (!dy) {
        st = TN_ERR_MEMORY;
        goto done;
    }
    tn_rng wr;
    tn_rng_seed(&wr, GC_SEED + 1);
    for (int64_t i = 0, n = tn_numel(y); i < n; i++)
        tn_tensor_set(dy, i, weight(&wr, n));
    st = tn_backward_from(tp, y, dy);
    tn_tensor_free(dy);
    if (st != TN_OK)
        goto done;

    for (int k = 0; k < n_inputs; k++) {
        tn_tensor *x = inputs[k];
        if (!x || !x->requires_grad)
            continue;
        int64_t n = tn_numel(x);
        for (int64_t i = 0; i < n; i++) {
            double x0 = tn_tensor_get(x, i), lp, lm;
            tn_tensor_set(x, i, x0 + eps);
            st = eval(f, ctx, tp, inputs, &lp, NULL);
            tn_tensor_set(x, i, x0 - eps);
            if (st == TN_OK)
                st = eval(f, ctx, tp, inputs, &lm, NULL);
            tn_tensor_set(x, i, x0);
            if (st != TN_OK)
                goto done;
            double num = (lp - lm) / (2 * eps);
            double ana = tn_tensor_grad_get(x, i);
            double abs_err = fabs(ana - num);
            double den = fmax(fmax(fabs(ana), fabs(num)), GC_FLOOR);
            double rel = abs_err / den;
            if (abs_err > res->max_abs_err)
                res->max_abs_err = abs_err;
            if (rel > res->max_rel_err || res->worst_input < 0) {
                res->max_rel_err = fmax(rel, res->max_rel_err);
                res->worst_input = k;
                res->worst_index = i;
                res->worst_analytic = ana;
                res->worst_numeric = num;
            }
            res->n_checked++;
        }
        tn_tensor_zero_grad(x);
    }
done:
    tn_tape_free(tp);
    return st;
}
