/* tests/test_blame.c - tn_gradcheck_blame names the op whose backward is
 * wrong, by its tape position, and finds nothing in a correct model.
 *
 * The model is a small recurrent step repeated three times, as a student
 * would write it: h = tanh(x_t W + softsign(h) U). softsign(v) = v / (1 +
 * |v|) is a user-defined op (tn_custom); its derivative is 1 / (1 + |v|)^2.
 * A planted bug (the derivative written 1 / (1 + |v|)) must be reported as
 * the backward of 'softsign' at the position of its first use from the
 * output (the last step), and with the right backward nothing is found.
 * Tolerance 1e-6 on the relative error of float64 central differences at
 * eps 1e-6 (their error here is below 1e-8; the planted bug is off by a
 * factor (1 + |v|), tens of percent).
 */
#include "check.h"
#include "tensor/gradcheck.h"

#include <math.h>

static bool planted; /* the softsign backward is wrong */

static tn_status softsign_fw(tn_tensor *y, tn_tensor *const *in, int n_in, void *ctx)
{
    (void)n_in, (void)ctx;
    const double *x = in[0]->data;
    double *out = y->data;
    for (int64_t i = 0; i < tn_numel(y); i++)
        out[i] = x[i] / (1 + fabs(x[i]));
    return TN_OK;
}

static void softsign_bw(const tn_tensor *y, tn_tensor *const *in, int n_in, void *ctx)
{
    (void)n_in, (void)ctx;
    const double *x = in[0]->data, *dy = y->grad;
    double *dx = in[0]->grad;
    if (!dx)
        return;
    for (int64_t i = 0; i < tn_numel(y); i++) {
        double d = 1 + fabs(x[i]);
        dx[i] += dy[i] / (planted ? d : d * d);
    }
}

static const tn_custom_op softsign = {"softsign", softsign_fw, softsign_bw};

/* inputs: x [3, 2, 4] (steps, batch, features), W [4, 5], U [5, 5] */
static tn_tensor *model(tn_tape *tp, tn_tensor *const *in, void *ctx)
{
    (void)ctx;
    tn_tensor *h = tn_tape_tensor(tp, TN_F64, 2, (int64_t[]){2, 5});
    for (int t = 0; t < 3; t++) {
        tn_tensor *xt = tn_reshape(tp, tn_narrow(tp, in[0], 0, t, 1), 2, (int64_t[]){2, 4});
        tn_tensor *s = tn_custom(tp, &softsign, NULL, 1, &h, 2, (int64_t[]){2, 5});
        h = tn_tanh(tp, tn_add(tp, tn_matmul(tp, xt, in[1]), tn_matmul(tp, s, in[2])));
    }
    return h;
}

int main(void)
{
    tn_rng r;
    tn_rng_seed(&r, 3);
    tn_tensor *in[3] = {tn_tensor_new(TN_F64, 3, (int64_t[]){3, 2, 4}),
                        tn_tensor_new(TN_F64, 2, (int64_t[]){4, 5}),
                        tn_tensor_new(TN_F64, 2, (int64_t[]){5, 5})};
    for (int k = 0; k < 3; k++) {
        tn_tensor_uniform(in[k], &r, -1, 1);
        tn_tensor_set_requires_grad(in[k], true);
    }

    tn_gradcheck_report rep;
    planted = false;
    CHECK(tn_gradcheck_blame(model, NULL, 3, in, 1e-6, 1e-6, &rep) == TN_OK);
    CHECK(!rep.found && rep.position == -1 && rep.n_checked > 50);
    printf("correct model: %lld gradient elements checked, nothing blamed\n",
           (long long)rep.n_checked);

    planted = true;
    CHECK(tn_gradcheck_blame(model, NULL, 3, in, 1e-6, 1e-6, &rep) == TN_OK);
    printf("planted bug: %s\n", rep.message);
    CHECK(rep.found);
    CHECK(strcmp(rep.op, "softsign") == 0);
    CHECK_MSG(rep.message, "'softsign'");
    /* the blamed op is the last step's softsign: the one latest on the tape */
    tn_tape *tp = tn_tape_new();
    model(tp, in, NULL);
    int64_t last = -1;
    for (size_t i = 0; i < tn_tape_size(tp); i++)
        if (strcmp(tn_tensor_op_name(tn_tape_node(tp, i)), "softsign") == 0)
            last = (int64_t)i;
    CHECK(last >= 0 && rep.position == last);
    CHECK(rep.tensor >= 0 && rep.tensor < rep.position); /* the h it consumed */
    CHECK(fabs(rep.analytic - rep.numeric) > 1e-3);
    tn_tape_free(tp);

    /* tn_custom refuses bad arguments naming the op; a failing forward
     * fails the tape with the op's name */
    tp = tn_tape_new();
    tn_custom_op nofw = {"broken", NULL, NULL};
    CHECK(tn_custom(tp, &nofw, NULL, 1, in, 2, (int64_t[]){4, 5}) == NULL);
    CHECK_MSG(tn_tape_error(tp), "forward must be given");
    tn_tape_reset(tp);
    CHECK(tn_custom(tp, &softsign, NULL, 0, in, 2, (int64_t[]){4, 5}) == NULL);
    CHECK_MSG(tn_tape_error(tp), "softsign (tn_custom): needs 1 to");
    tn_tape_free(tp);
    for (int k = 0; k < 3; k++)
        tn_tensor_free(in[k]);
    CHECK(tn_gradcheck_blame(NULL, NULL, 3, in, 1e-6, 1e-6, &rep) == TN_ERR_ARG);
    return check_report("test_blame");
}
