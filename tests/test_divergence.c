/* tests/test_divergence.c - divergence is an error, not a result (issue 10,
 * D9): clipping reports a non-finite norm as TN_ERR_NUMERIC naming the
 * gradient and leaves the gradients alone; optimizers refuse infinite and
 * NaN learning rates (at creation and in tn_optim_set_lr); with skipping
 * on, a step with a NaN or Inf gradient changes nothing and is counted.
 * Before: clipping returned the NaN norm without an error, set_lr accepted
 * +inf, and Adam wrote NaN into the parameters and both moments. All
 * comparisons are exact: a skipped step must leave the bits unchanged. */
#include "check.h"
#include "tensor/tensor.h"

static void set_grads(tn_params *ps, double v)
{
    for (int i = 0; i < ps->n; i++) {
        tn_tensor *t = ps->items[i].t;
        for (int64_t k = 0; k < tn_numel(t); k++)
            ((float *)t->grad)[k] = (float)v;
    }
}

int main(void)
{
    tn_params ps;
    tn_params_init(&ps);
    tn_tensor *w = tn_params_new(&ps, "lin", "weight", TN_F32, 2, (int64_t[]){3, 4});
    tn_tensor *b = tn_params_new(&ps, "lin", "bias", TN_F32, 1, (int64_t[]){3});
    tn_tensor_fill(w, 0.5);
    tn_tensor_fill(b, -0.25);

    /* clipping */
    set_grads(&ps, 1.0);
    ((float *)b->grad)[1] = NAN;
    double norm = 0;
    CHECK(tn_clip_grad_norm(&ps, 1.0, &norm) == TN_ERR_NUMERIC && isnan(norm));
    CHECK_MSG(tn_last_error(), "tn_clip_grad_norm");
    CHECK_MSG(tn_last_error(), "lin.bias");
    CHECK(((float *)w->grad)[0] == 1.0f); /* unchanged, not scaled by NaN */
    tn_clear_error();
    CHECK(tn_clip_grad_norm(&ps, 1.0, NULL) == TN_ERR_NUMERIC &&
          tn_last_status() == TN_ERR_NUMERIC);
    ((float *)b->grad)[1] = INFINITY;
    CHECK(tn_clip_grad_norm(&ps, 1.0, &norm) == TN_ERR_NUMERIC && isinf(norm));
    set_grads(&ps, 1.0);
    CHECK(tn_clip_grad_norm(&ps, 1.0, &norm) == TN_OK);
    CHECK(norm == sqrt(15.0)); /* 15 ones, summed exactly in double */
    CHECK(tn_clip_grad_norm(&ps, -1.0, NULL) == TN_ERR_ARG);

    /* learning rates */
    tn_adam_opts ao = tn_adam_defaults();
    ao.lr = INFINITY;
    CHECK(tn_optim_adam(&ps, &ao) == NULL && tn_last_status() == TN_ERR_ARG);
    tn_sgd_opts so = tn_sgd_defaults();
    so.lr = NAN;
    CHECK(tn_optim_sgd(&ps, &so) == NULL && tn_last_status() == TN_ERR_ARG);
    tn_optim *o = tn_optim_adam(&ps, NULL);
    CHECK(o != NULL);
    CHECK(tn_optim_set_lr(o, INFINITY) == TN_ERR_ARG && tn_optim_get_lr(o) == 1e-3);
    CHECK_MSG(tn_last_error(), "tn_optim_set_lr");
    CHECK(tn_optim_set_lr(o, NAN) == TN_ERR_ARG && tn_optim_get_lr(o) == 1e-3);
    CHECK(tn_optim_set_lr(o, -1.0) == TN_ERR_ARG && tn_optim_get_lr(o) == 1e-3);
    CHECK(tn_optim_set_lr(o, 2e-3) == TN_OK && tn_optim_get_lr(o) == 2e-3);

    /* skipping steps with non-finite gradients */
    tn_optim_set_skip_nonfinite(o, true);
    set_grads(&ps, 1.0);
    CHECK(tn_optim_step(o) == TN_OK && tn_optim_get_step(o) == 1);
    float w1 = ((float *)w->data)[0];
    CHECK(w1 != 0.5f); /* the finite step moved the weight */
    const tn_params *st = tn_optim_state(o);
    float m1 = ((float *)st->items[0].t->data)[0];
    ((float *)w->grad)[5] = NAN;
    CHECK(tn_optim_step(o) == TN_OK);
    CHECK(tn_optim_skipped(o) == 1 && tn_optim_get_step(o) == 1);
    CHECK(((float *)w->data)[0] == w1 && ((float *)st->items[0].t->data)[0] == m1);
    ((float *)w->grad)[5] = -INFINITY;
    CHECK(tn_optim_step(o) == TN_OK && tn_optim_skipped(o) == 2 && tn_optim_get_step(o) == 1);
    for (int i = 0; i < ps.n; i++) /* nothing became non-finite */
        for (int64_t k = 0; k < tn_numel(ps.items[i].t); k++)
            CHECK(isfinite(tn_tensor_get(ps.items[i].t, k)));
    set_grads(&ps, 1.0);
    CHECK(tn_optim_step(o) == TN_OK && tn_optim_get_step(o) == 2 && tn_optim_skipped(o) == 2);
    /* off (the default): the NaN goes through, as documented */
    tn_optim_set_skip_nonfinite(o, false);
    ((float *)w->grad)[0] = NAN;
    CHECK(tn_optim_step(o) == TN_OK && isnan(((float *)w->data)[0]));
    tn_optim_free(o);
    tn_params_free(&ps);
    return check_report("test_divergence");
}
