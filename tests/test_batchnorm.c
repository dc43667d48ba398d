/* tests/test_batchnorm.c - tn_batch_norm and the tn_batchnorm layer:
 *
 *  - PyTorch parity (tests/fixtures/batch_norm.bin from
 *    tests/gen_batchnorm_fixtures.py): y, dx, dweight, dbias and the
 *    updated running statistics of F.batch_norm in training (with and
 *    without running statistics) and evaluation mode, 2-D to 4-D x, and
 *    channels offset far from 0; float64 and float32;
 *  - the parallel path (C * n above the threading threshold) against the
 *    serial one, bitwise (every channel's sums run in one thread in a
 *    fixed order);
 *  - bad arguments fail the tape naming batch_norm; the layer: PyTorch's
 *    parameter names, the tape's mode, running statistics saved and loaded
 *    with the model and left alone by the optimizer.
 *
 * Tolerances, relative to 1 + |value|: float64 1e-12 (the same formulas,
 * sums in another order), 1e-9 for the offset case (means of 100 and
 * spreads of 1: x - mean cancels 2 of 16 digits); float32 1e-5 (inputs
 * rounded to float, sums in double; measured below 2e-6, 1e-5 for the
 * offset case, where the float rounding of x ~100 is 4e-6 of a spread of 1).
 */
#include "check.h"
#include "fixture_check.h"
#include "tensor/nn.h"
#include "tensor/io.h"
#include "tensor/optim.h"

static double worst_err;

static void compare(const char *name, const char *what, tn_tensor *t, bool grad,
                    const fixture_tensor *want, double tol)
{
    double e = 0;
    for (int64_t i = 0; want && i < want->numel; i++) {
        double g = grad ? tn_tensor_grad_get(t, i) : tn_tensor_get(t, i);
        double ei = fabs(g - want->data[i]) / (1 + fabs(want->data[i]));
        if (!(ei <= e))
            e = ei;
    }
    worst_err = e > worst_err ? e : worst_err;
    check_count++;
    if (!want || !(e <= tol)) {
        check_failures++;
        fprintf(stderr, "FAIL %s %s: max rel err %.3g > %.3g\n", name, what, e, tol);
    }
}

static void test_parity(const fixture *fx, const char *name, tn_dtype dt)
{
    char key[128];
    bool offset = strstr(name, "offset") != NULL;
    double tol = dt == TN_F32 ? 1e-5 : offset ? 1e-9 : 1e-12;
#define GET(v, suffix)                             \
    snprintf(key, sizeof key, "%s." suffix, name); \
    const fixture_tensor *v = fixture_get(fx, key)
    GET(fxx, "x");
    GET(fdy, "dy");
    GET(fy, "y");
    GET(fdx, "dx");
    GET(fw, "weight");
    GET(fb, "bias");
    GET(fdw, "dweight");
    GET(fdb, "dbias");
    GET(feps, "eps");
    GET(fmom, "momentum");
    GET(ftrain, "training");
    GET(frm, "running_mean");
    GET(frv, "running_var");
    GET(frm2, "running_mean_after");
    GET(frv2, "running_var_after");
#undef GET
    if (!fxx || !fdy || !fy || !fdx || !fw || !fb || !fdw || !fdb || !feps || !fmom || !ftrain) {
        CHECK(!"fixture case incomplete");
        return;
    }
    tn_tape *tp = tn_tape_new();
    tn_tensor *x = fixture_to_tensor(fxx, dt), *dy = fixture_to_tensor(fdy, dt);
    tn_tensor *w = fixture_to_tensor(fw, dt), *b = fixture_to_tensor(fb, dt);
    tn_tensor *rm = fixture_to_tensor(frm, dt), *rv = fixture_to_tensor(frv, dt);
    tn_tensor_set_requires_grad(x, true);
    tn_tensor_set_requires_grad(w, true);
    tn_tensor_set_requires_grad(b, true);
    tn_tensor *y =
        tn_batch_norm(tp, x, w, b, rm, rv, ftrain->data[0] != 0, fmom->data[0], feps->data[0]);
    CHECK(y && tn_numel(y) == fy->numel);
    if (y && tn_backward_from(tp, y, dy) == TN_OK) {
        compare(name, "y", y, false, fy, tol);
        compare(name, "dx", x, true, fdx, tol);
        compare(name, "dweight", w, true, fdw, tol);
        compare(name, "dbias", b, true, fdb, tol);
        if (rm) {
            compare(name, "running_mean", rm, false, frm2, tol);
            compare(name, "running_var", rv, false, frv2, tol);
        }
    } else {
        fprintf(stderr, "%s: %s\n", name, tn_last_error());
        CHECK(!"batch_norm or its backward failed");
    }
    tn_tensor_free(x), tn_tensor_free(dy), tn_tensor_free(w), tn_tensor_free(b);
    tn_tensor_free(rm), tn_tensor_free(rv);
    tn_tape_free(tp);
}

static int run_parity(void)
{
    fixture f = {0};
    int rc = fixture_open(&f, "batch_norm.bin", "test_batchnorm");
    if (rc)
        return rc;
    const char *cases[] = {"train_2d",         "train_3d", "train_4d",
                           "train_no_running", "eval_4d",  "train_offset"};
    const tn_dtype dts[2] = {TN_F64, TN_F32};
    for (int d = 0; d < 2; d++)
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
            test_parity(&f, cases[c], dts[d]);
    printf("PyTorch parity: worst relative error %.3g\n", worst_err);
    fixture_free(&f);
    return 0;
}

/* 1 thread against 2 on a case large enough for the parallel path (C * n =
 * 8 * 64 * 100): values and gradients bitwise equal. */
static void test_threads(void)
{
    tn_rng r;
    tn_rng_seed(&r, 5);
    int64_t shape[3] = {64, 8, 100};
    tn_tensor *x = tn_tensor_new(TN_F32, 3, shape), *dy = tn_tensor_new(TN_F32, 3, shape);
    tn_tensor_normal(x, &r, 1.0, 2.0);
    tn_tensor_normal(dy, &r, 0.0, 1.0);
    tn_tensor_set_requires_grad(x, true);
    float *out[2][2];
    for (int k = 0; k < 2; k++) {
        CHECK(tn_set_num_threads(k + 1) == TN_OK);
        tn_tape *tp = tn_tape_new();
        tn_tensor_zero_grad(x);
        tn_tensor *y = tn_batch_norm(tp, x, NULL, NULL, NULL, NULL, true, 0.1, 1e-5);
        CHECK(y && tn_backward_from(tp, y, dy) == TN_OK);
        size_t bytes = (size_t)tn_numel(x) * sizeof(float);
        out[k][0] = malloc(bytes), out[k][1] = malloc(bytes);
        memcpy(out[k][0], y ? y->data : x->data, bytes);
        memcpy(out[k][1], x->grad, bytes);
        tn_tape_free(tp);
    }
    size_t bytes = (size_t)tn_numel(x) * sizeof(float);
    CHECK(memcmp(out[0][0], out[1][0], bytes) == 0 && memcmp(out[0][1], out[1][1], bytes) == 0);
    for (int k = 0; k < 2; k++)
        free(out[k][0]), free(out[k][1]);
    tn_tensor_free(x), tn_tensor_free(dy);
}

static void test_errors(void)
{
    tn_tape *tp = tn_tape_new();
    tn_tensor *x = tn_tensor_new(TN_F32, 3, (int64_t[]){2, 3, 4});
    tn_tensor *x1 = tn_tensor_new(TN_F32, 1, (int64_t[]){3});
    tn_tensor *one = tn_tensor_new(TN_F32, 2, (int64_t[]){1, 3});
    tn_tensor *c3 = tn_tensor_new(TN_F32, 1, (int64_t[]){3});
    tn_tensor *c4 = tn_tensor_new(TN_F32, 1, (int64_t[]){4});
    tn_tensor *c3d = tn_tensor_new(TN_F64, 1, (int64_t[]){3});
    tn_tensor_fill(x, 1), tn_tensor_fill(one, 1);
    struct {
        tn_tensor *x, *w, *rm, *rv;
        bool training;
        double momentum, eps;
        const char *msg;
    } bad[] = {
        {x1, NULL, NULL, NULL, true, 0.1, 1e-5, "x [3] must be [N, C]"},
        {x, c4, NULL, NULL, true, 0.1, 1e-5, "weight [4] (float32) must be [C] = [3]"},
        {x, c3d, NULL, NULL, true, 0.1, 1e-5,
         "weight [3] (float64) must be [C] = [3] of x's dtype float32"},
        {x, NULL, c3, NULL, true, 0.1, 1e-5,
         "running_mean and running_var must be given both or neither"},
        {x, NULL, c4, c4, true, 0.1, 1e-5, "running_mean [4]"},
        {x, NULL, NULL, NULL, true, 1.5, 1e-5, "momentum = 1.5 in [0, 1]"},
        {x, NULL, NULL, NULL, true, 0.1, 0, "eps = 0 must be finite and > 0"},
        {one, NULL, NULL, NULL, true, 0.1, 1e-5, "1 value per channel; training needs at least 2"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        tn_tape_reset(tp);
        CHECK(tn_batch_norm(tp, bad[k].x, bad[k].w, NULL, bad[k].rm, bad[k].rv, bad[k].training,
                            bad[k].momentum, bad[k].eps) == NULL);
        CHECK_MSG(tn_tape_error(tp), "batch_norm");
        CHECK_MSG(tn_tape_error(tp), bad[k].msg);
    }
    /* one value per channel is fine in evaluation (the running statistics) */
    tn_tape_reset(tp);
    tn_tensor *rv = tn_tensor_new(TN_F32, 1, (int64_t[]){3});
    tn_tensor_fill(c3, 0), tn_tensor_fill(rv, 4);
    tn_tensor *y = tn_batch_norm(tp, one, NULL, NULL, c3, rv, false, 0.1, 0);
    CHECK(y == NULL); /* eps 0 is refused in every mode */
    tn_tape_reset(tp);
    y = tn_batch_norm(tp, one, NULL, NULL, c3, rv, false, 0.1, 1e-5);
    CHECK(y && fabs(tn_tensor_get(y, 0) - 1 / sqrt(4 + 1e-5)) < 1e-6);
    tn_tensor_free(x), tn_tensor_free(x1), tn_tensor_free(one), tn_tensor_free(c3);
    tn_tensor_free(c4), tn_tensor_free(c3d), tn_tensor_free(rv);
    tn_tape_free(tp);
}

/* The layer: nn.BatchNorm2d's names; the tape's mode picks batch or
 * running statistics; Adam leaves the running statistics alone (they have
 * no gradient) and they are saved and loaded with the model. */
static void test_layer(void)
{
    tn_params ps;
    tn_params_init(&ps);
    tn_batchnorm bn;
    CHECK(tn_batch_norm_init(&bn, &ps, "bn", 3, 1e-5, 0.1, true, true, TN_F32) == TN_OK);
    CHECK(ps.n == 4 && tn_params_get(&ps, "bn.weight") && tn_params_get(&ps, "bn.bias") &&
          tn_params_get(&ps, "bn.running_mean") && tn_params_get(&ps, "bn.running_var"));
    CHECK(!bn.running_mean->requires_grad && bn.weight->requires_grad);
    CHECK(tn_tensor_get(bn.running_var, 1) == 1 && tn_tensor_get(bn.weight, 2) == 1);
    tn_rng r;
    tn_rng_seed(&r, 9);
    tn_tensor *x = tn_tensor_new(TN_F32, 4, (int64_t[]){4, 3, 2, 2});
    tn_tensor_normal(x, &r, 3.0, 1.0);
    tn_optim *opt = tn_optim_adam(&ps, NULL);
    tn_tape *tp = tn_tape_new();
    tn_tensor *y = tn_batch_norm_forward(tp, &bn, x);
    CHECK(y && tn_backward(tp, tn_sum(tp, tn_mul(tp, y, y))) == TN_OK);
    double rm1 = tn_tensor_get(bn.running_mean, 0); /* 0.9 * 0 + 0.1 * ~3 */
    CHECK(rm1 > 0.1 && rm1 < 0.5);
    CHECK(tn_optim_step(opt) == TN_OK);
    CHECK(tn_tensor_get(bn.running_mean, 0) == rm1); /* not a trained parameter */
    /* evaluation: the running statistics, no update */
    tn_tape_reset(tp);
    tn_tape_set_training(tp, false);
    y = tn_batch_norm_forward(tp, &bn, x);
    CHECK(y && tn_tensor_get(bn.running_mean, 0) == rm1);
    double want = (tn_tensor_get(x, 0) - rm1) / sqrt(tn_tensor_get(bn.running_var, 0) + 1e-5) *
                      tn_tensor_get(bn.weight, 0) +
                  tn_tensor_get(bn.bias, 0);
    CHECK(y && fabs(tn_tensor_get(y, 0) - want) < 1e-5 * (1 + fabs(want)));
    /* saved and loaded with the model */
    const char *path = "test_batchnorm.safetensors";
    tn_params *sets[1] = {&ps};
    CHECK(tn_save(path, sets, 1, NULL) == TN_OK);
    tn_params ps2;
    tn_params_init(&ps2);
    tn_batchnorm bn2;
    CHECK(tn_batch_norm_init(&bn2, &ps2, "bn", 3, 1e-5, 0.1, true, true, TN_F32) == TN_OK);
    tn_params *sets2[1] = {&ps2};
    CHECK(tn_load(path, sets2, 1, NULL) == TN_OK);
    CHECK(tn_tensor_get(bn2.running_mean, 0) == rm1);
    remove(path);
    /* a wrong input */
    tn_tape_reset(tp);
    tn_tensor *x24 = tn_tensor_new(TN_F32, 2, (int64_t[]){2, 4});
    CHECK(tn_batch_norm_forward(tp, &bn, x24) == NULL);
    tn_tensor_free(x24);
    CHECK_MSG(tn_tape_error(tp), "tn_batch_norm_forward: input [2, 4], expected [N, 3]");
    CHECK(tn_batch_norm_init(&bn2, &ps2, "bad", 0, 1e-5, 0.1, true, true, TN_F32) == TN_ERR_ARG);
    CHECK_MSG(tn_last_error(), "tn_batch_norm_init: bad arguments (channels 0");
    tn_tape_free(tp);
    tn_optim_free(opt);
    tn_tensor_free(x);
    tn_params_free(&ps);
    tn_params_free(&ps2);
}

int main(void)
{
    tn_runtime_init();
    int rc = run_parity();
    test_threads();
    test_errors();
    test_layer();
    printf("%d checks, %d failed\n", check_count, check_failures);
    return check_failures ? 1 : rc;
}
