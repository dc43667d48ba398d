/* tests/test_unary.c - forward values of the element-wise ops against naive
 * double-precision references, dropout and mask semantics, and errors.
 *
 * Tolerances: float64 results against the double reference within
 * 1e-13 (1 + |ref|): both use the C library's exp/log/tanh/erf, the kernel
 * only rearranges the formula (stable sigmoid), costing a few ulps. float32
 * results within 1e-6 (1 + |ref|): float rounding of the inputs (6e-8
 * relative) times the slope (<= e^2.5 for exp on our inputs, relative) plus
 * a few ulps of expf, erff, tanhf.
 */
#include "check.h"
#include "tensor/ops.h"

#include <stdint.h>

/* ---- naive references ---- */

static double ref_sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }

static double ref(int op, double x, double a)
{
    switch (op) {
    case TN_OP_SCALE: return a * x;
    case TN_OP_NEG: return -x;
    case TN_OP_EXP: return exp(x);
    case TN_OP_LOG: return log(x);
    case TN_OP_SIGMOID: return ref_sigmoid(x);
    case TN_OP_TANH: return tanh(x);
    case TN_OP_RELU: return x > 0 ? x : 0;
    case TN_OP_LEAKY_RELU: return x > 0 ? x : a * x;
    case TN_OP_GELU: return 0.5 * x * (1 + erf(x / sqrt(2.0)));
    case TN_OP_SILU: return x * ref_sigmoid(x);
    default: return NAN;
    }
}

static tn_tensor *apply(tn_tape *tp, int op, tn_tensor *x, double a)
{
    switch (op) {
    case TN_OP_SCALE: return tn_scale(tp, x, a);
    case TN_OP_NEG: return tn_neg(tp, x);
    case TN_OP_EXP: return tn_exp(tp, x);
    case TN_OP_LOG: return tn_log(tp, x);
    case TN_OP_SIGMOID: return tn_sigmoid(tp, x);
    case TN_OP_TANH: return tn_tanh(tp, x);
    case TN_OP_RELU: return tn_relu(tp, x);
    case TN_OP_LEAKY_RELU: return tn_leaky_relu(tp, x, a);
    case TN_OP_GELU: return tn_gelu(tp, x);
    default: return tn_silu(tp, x);
    }
}

static const int ops[] = {TN_OP_SCALE, TN_OP_NEG,  TN_OP_EXP,        TN_OP_LOG,  TN_OP_SIGMOID,
                          TN_OP_TANH,  TN_OP_RELU, TN_OP_LEAKY_RELU, TN_OP_GELU, TN_OP_SILU};
#define N_OPS ((int)(sizeof ops / sizeof ops[0]))

/* Parameter a of op (alpha, negative_slope); log sees |x| + 0.1. */
static double param(int op) { return op == TN_OP_SCALE ? -1.75 : 0.05; }
static double input(int op, double x) { return op == TN_OP_LOG ? fabs(x) + 0.1 : x; }

static double tol_for(tn_dtype dt) { return dt == TN_F64 ? 1e-13 : 1e-6; }

/* Every op on a contiguous [4, 6] tensor of values in [-2.5, 2.5] (and 0)
 * and on two strided views of a [6, 8] base: a gate narrowed out of it
 * (columns 2..5, row stride 8) and its transpose (inner stride 8). */
static void test_values(tn_dtype dt)
{
    tn_tape *tp = tn_tape_new();
    for (int k = 0; k < N_OPS; k++) {
        int op = ops[k];
        double a = param(op), tol = tol_for(dt);
        int64_t shp[2] = {4, 6}, bshp[2] = {6, 8};
        tn_tensor *x = tn_tensor_new(dt, 2, shp), *base = tn_tensor_new(dt, 2, bshp);
        for (int64_t i = 0; i < 24; i++)
            tn_tensor_set(x, i, input(op, -2.5 + 5.0 * (double)i / 23.0));
        tn_tensor_set(x, 0, input(op, 0.0));
        for (int64_t i = 0; i < 48; i++)
            tn_tensor_set(base, i, input(op, 2.5 * sin(0.7 * (double)i + 0.3)));
        tn_tensor *views[3] = {x, tn_narrow(tp, base, 1, 2, 4), tn_transpose(tp, base, 0, 1)};
        for (int v = 0; v < 3; v++) {
            tn_tensor *in = views[v];
            CHECK(in != NULL);
            tn_tensor *y = apply(tp, op, in, a);
            CHECK(y && y->dtype == dt && y->ndim == in->ndim && tn_is_contiguous(y));
            if (!y)
                continue;
            CHECK(y->shape[0] == in->shape[0] && y->shape[1] == in->shape[1]);
            for (int64_t i = 0; i < tn_numel(in); i++) {
                double want = ref(op, tn_tensor_get(in, i), a);
                CHECK_NEAR(tn_tensor_get(y, i), want, tol * (1 + fabs(want)));
            }
        }
        tn_tensor_free(x);
        tn_tensor_free(base);
    }
    CHECK(tn_tape_error(tp) == NULL);
    tn_tape_free(tp);
}

/* Above TN_PAR_MIN elements the row loop runs in parallel: every op on a
 * [300, 200] gate narrowed out of a [300, 256] buffer, and the backward of
 * sigmoid (y (1 - y)) and tanh (1 - y^2) into that buffer's gradient. */
static void test_parallel(void)
{
    tn_tape *tp = tn_tape_new();
    int64_t bshp[2] = {300, 256};
    tn_tensor *base = tn_tensor_new(TN_F64, 2, bshp);
    for (int64_t i = 0; i < 300 * 256; i++)
        tn_tensor_set(base, i, 2.0 * sin(0.01 * (double)i) + 2.2);
    tn_tensor_set_requires_grad(base, true);
    int64_t yshp[2] = {300, 200};
    tn_tensor *ones = tn_tensor_full(TN_F64, 2, yshp, 1.0);
    for (int k = 0; k < N_OPS; k++) {
        tn_tape_reset(tp);
        tn_tensor *v = tn_narrow(tp, base, 1, 40, 200);
        tn_tensor *y = apply(tp, ops[k], v, param(ops[k]));
        CHECK(y != NULL);
        bool ok = y != NULL;
        for (int64_t i = 0; ok && i < 60000; i++) {
            double want = ref(ops[k], tn_tensor_get(v, i), param(ops[k]));
            ok = fabs(tn_tensor_get(y, i) - want) <= 1e-13 * (1 + fabs(want));
        }
        CHECK(ok);
        if (!ok)
            fprintf(stderr, "  (forward of %s)\n", tn_op_name(ops[k]));
        if (ops[k] != TN_OP_SIGMOID && ops[k] != TN_OP_TANH)
            continue;
        tn_tensor_zero_grad(base);
        CHECK(tn_backward_from(tp, y, ones) == TN_OK);
        for (int64_t r = 0; ok && r < 300; r++)
            for (int64_t c = 0; ok && c < 256; c++) {
                double g = tn_tensor_grad_get(base, r * 256 + c), want = 0;
                if (c >= 40 && c < 240) {
                    double yv = tn_tensor_get(y, r * 200 + c - 40);
                    want = ops[k] == TN_OP_SIGMOID ? yv * (1 - yv) : 1 - yv * yv;
                }
                ok = fabs(g - want) <= 1e-15;
            }
        CHECK(ok);
        if (!ok)
            fprintf(stderr, "  (backward of %s)\n", tn_op_name(ops[k]));
    }
    tn_tensor_free(ones);
    tn_tensor_free(base);
    tn_tape_free(tp);
}

/* Hand-computed values (PyTorch / closed forms). */
static void test_known(void)
{
    tn_tape *tp = tn_tape_new();
    int64_t shp[1] = {3};
    double xs[3] = {-1, 0, 1};
    tn_tensor *x = tn_tensor_from(TN_F64, 1, shp, xs);
    tn_tensor *g = tn_gelu(tp, x), *s = tn_silu(tp, x), *sg = tn_sigmoid(tp, x);
    tn_tensor *l = tn_leaky_relu(tp, x, 0.01), *r = tn_relu(tp, x);
    /* gelu(-1) = -Phi(-1), gelu(1) = Phi(1): torch.nn.GELU() prints these */
    CHECK_NEAR(tn_tensor_get(g, 0), -0.15865525393145707, 1e-15);
    CHECK_NEAR(tn_tensor_get(g, 1), 0.0, 0);
    CHECK_NEAR(tn_tensor_get(g, 2), 0.8413447460685429, 1e-15);
    CHECK_NEAR(tn_tensor_get(s, 0), -0.2689414213699951, 1e-15);
    CHECK_NEAR(tn_tensor_get(s, 2), 0.7310585786300049, 1e-15);
    CHECK_NEAR(tn_tensor_get(sg, 1), 0.5, 0);
    CHECK_NEAR(tn_tensor_get(l, 0), -0.01, 1e-17);
    CHECK_NEAR(tn_tensor_get(l, 2), 1.0, 0);
    CHECK_NEAR(tn_tensor_get(r, 0), 0.0, 0);
    CHECK_NEAR(tn_tensor_get(r, 2), 1.0, 0);
    tn_tensor_free(x);
    tn_tape_free(tp);
}

/* Sigmoid and silu stay finite and exact at large |x| in both dtypes; the
 * sigmoid gradient there is y (1 - y), finite and non-negative. */
static void test_saturation(tn_dtype dt)
{
    tn_tape *tp = tn_tape_new();
    int64_t shp[1] = {6};
    double xs[6] = {-1000, -745, -50, 50, 710, 1000};
    tn_tensor *x = tn_tensor_new(dt, 1, shp);
    for (int i = 0; i < 6; i++)
        tn_tensor_set(x, i, xs[i]);
    tn_tensor_set_requires_grad(x, true);
    tn_tensor *y = tn_sigmoid(tp, x), *s = tn_silu(tp, x);
    CHECK(y && s);
    for (int i = 0; i < 6; i++) {
        double v = tn_tensor_get(y, i);
        CHECK(isfinite(v) && v >= 0 && v <= 1);
        CHECK(isfinite(tn_tensor_get(s, i)));
    }
    CHECK_NEAR(tn_tensor_get(y, 0), 0.0, 0);
    CHECK_NEAR(tn_tensor_get(y, 5), 1.0, 0);
    CHECK_NEAR(tn_tensor_get(s, 0), 0.0, 0);
    CHECK_NEAR(tn_tensor_get(s, 5), 1000.0, 0);
    if (dt == TN_F64) /* e^-50 is far from underflow: relative accuracy */
        CHECK_NEAR(tn_tensor_get(y, 2), exp(-50.0), 1e-14 * exp(-50.0));
    tn_tensor *ones = tn_tensor_full(TN_F64, 1, shp, 1.0);
    CHECK(tn_backward_from(tp, y, ones) == TN_OK);
    for (int i = 0; i < 6; i++) {
        double gr = tn_tensor_grad_get(x, i);
        CHECK(isfinite(gr) && gr >= 0 && gr <= 0.25);
    }
    tn_tensor_free(ones);
    tn_tensor_free(x);
    tn_tape_free(tp);
}

/* y = x where mask != 0 (mask broadcast, any dtype), masked NaN gives 0;
 * dx = dy where mask != 0; the mask gets no gradient. */
static void test_mask(void)
{
    tn_tape *tp = tn_tape_new();
    int64_t xs[3] = {2, 3, 4}, m1[2] = {3, 1}, m2[1] = {4}, m3[3] = {2, 3, 4};
    tn_tensor *x = tn_tensor_new(TN_F32, 3, xs);
    for (int64_t i = 0; i < 24; i++)
        tn_tensor_set(x, i, 1.0 + (double)i);
    tn_tensor_set(x, 0, NAN);
    tn_tensor_set_requires_grad(x, true);
    tn_tensor *mi = tn_tensor_new(TN_I32, 2, m1), *mf = tn_tensor_new(TN_F32, 1, m2);
    tn_tensor *md = tn_tensor_new(TN_F64, 3, m3);
    int32_t mv[3] = {0, 1, 7};
    for (int i = 0; i < 3; i++)
        tn_tensor_set(mi, i, mv[i]);
    tn_tensor_set(mf, 1, 0.5);
    tn_tensor_set(mf, 3, -2);
    for (int64_t i = 0; i < 24; i++)
        tn_tensor_set(md, i, (double)(i % 3 == 0));
    tn_tensor_set_requires_grad(md, true); /* still no gradient for it */
    tn_tensor *masks[3] = {mi, mf, md};
    for (int k = 0; k < 3; k++) {
        tn_tape_reset(tp);
        tn_tensor_zero_grad(x);
        tn_tensor *y = tn_mask(tp, x, masks[k]);
        CHECK(y && y->dtype == TN_F32 && y->ndim == 3);
        if (!y)
            continue;
        tn_tensor *dy = tn_tensor_full(TN_F64, 3, xs, 0);
        for (int64_t i = 0; i < 24; i++)
            tn_tensor_set(dy, i, 0.5 * (double)i - 3);
        CHECK(tn_backward_from(tp, y, dy) == TN_OK);
        for (int64_t i = 0; i < 24; i++) {
            int64_t j = (i / 4) % 3, c = i % 4; /* row within [3, *], column */
            bool on = k == 0 ? mv[j] != 0 : k == 1 ? (c == 1 || c == 3) : i % 3 == 0;
            double want = on ? tn_tensor_get(x, i) : 0.0;
            if (on && i == 0)
                CHECK(isnan(tn_tensor_get(y, i)));
            else
                CHECK_NEAR(tn_tensor_get(y, i), want, 0);
            CHECK_NEAR(tn_tensor_grad_get(x, i), on ? tn_tensor_get(dy, i) : 0.0, 0);
        }
        tn_tensor_free(dy);
    }
    for (int64_t i = 0; i < 24; i++)
        CHECK_NEAR(tn_tensor_grad_get(md, i), 0.0, 0);

    /* only the mask requires grad: y records nothing */
    tn_tape_reset(tp);
    tn_tensor *xc = tn_tensor_full(TN_F64, 3, xs, 2.0);
    tn_tensor *y = tn_mask(tp, xc, md);
    CHECK(y && !y->requires_grad && tn_tape_size(tp) == 0);
    tn_tensor_free(xc);
    tn_tensor_free(x);
    tn_tensor_free(mi);
    tn_tensor_free(mf);
    tn_tensor_free(md);
    tn_tape_free(tp);
}

/* Dropout: keep iff u >= p with u the tape RNG's uniforms in row-major
 * order; kept values scaled by 1/(1-p), gradient likewise; eval mode and
 * p = 0 return x itself. */
static void test_dropout(tn_dtype dt)
{
    tn_tape *tp = tn_tape_new();
    int64_t shp[2] = {100, 100};
    tn_tensor *x = tn_tensor_new(dt, 2, shp);
    for (int64_t i = 0; i < 10000; i++)
        tn_tensor_set(x, i, 1.0 + 0.001 * (double)i);
    tn_tensor_set_requires_grad(x, true);
    double p = 0.3, sc = 1.0 / (1.0 - p), tol = dt == TN_F64 ? 1e-15 : 1e-6;
    tn_rng_seed(tn_tape_rng(tp), 42);
    tn_rng r;
    tn_rng_seed(&r, 42);
    tn_tensor *y = tn_dropout(tp, x, p);
    CHECK(y && y != x && y->dtype == dt);
    tn_tensor *ones = tn_tensor_full(TN_F64, 2, shp, 1.0);
    CHECK(tn_backward_from(tp, y, ones) == TN_OK);
    int64_t dropped = 0;
    bool same = true;
    for (int64_t i = 0; i < 10000; i++) {
        bool keep = tn_rng_uniform(&r) >= p;
        double xv = tn_tensor_get(x, i), yv = tn_tensor_get(y, i);
        double want = keep ? xv * sc : 0.0;
        same = same && fabs(yv - want) <= tol * (1 + fabs(want));
        same = same && fabs(tn_tensor_grad_get(x, i) - (keep ? sc : 0.0)) <= tol * sc;
        dropped += !keep;
    }
    CHECK(same);
    /* 10000 Bernoulli(0.3) draws: sd 0.0046, allow 6 sd */
    CHECK_NEAR((double)dropped / 10000.0, p, 0.028);

    size_t n0 = tn_tape_size(tp);
    CHECK(tn_dropout(tp, x, 0.0) == x);
    tn_tape_set_training(tp, false);
    CHECK(tn_dropout(tp, x, 0.5) == x);
    CHECK(tn_tape_size(tp) == n0);
    tn_tape_set_training(tp, true);

    /* strided input: the same stream, row-major over the view */
    tn_tape_reset(tp);
    tn_rng_seed(tn_tape_rng(tp), 9);
    tn_rng_seed(&r, 9);
    tn_tensor *v = tn_narrow(tp, tn_transpose(tp, x, 0, 1), 0, 10, 5);
    tn_tensor *yv = tn_dropout(tp, v, 0.5);
    CHECK(yv && yv->shape[0] == 5 && yv->shape[1] == 100);
    same = true;
    for (int64_t i = 0; yv && i < 500; i++) {
        bool keep = tn_rng_uniform(&r) >= 0.5;
        double want = keep ? 2.0 * tn_tensor_get(v, i) : 0.0;
        same = same && fabs(tn_tensor_get(yv, i) - want) <= tol * (1 + fabs(want));
    }
    CHECK(same);
    tn_tensor_free(ones);
    tn_tensor_free(x);
    tn_tape_free(tp);
}

/* No-grad mode: results computed, nothing recorded. */
static void test_no_grad(void)
{
    tn_tape *tp = tn_tape_new();
    int64_t shp[1] = {5};
    tn_tensor *x = tn_tensor_full(TN_F32, 1, shp, 0.5);
    tn_tensor_set_requires_grad(x, true);
    tn_tape_set_grad(tp, false);
    tn_tensor *y = tn_dropout(tp, tn_tanh(tp, x), 0.2);
    CHECK(y && !y->requires_grad && tn_tape_size(tp) == 0);
    tn_tape_set_grad(tp, true);
    y = tn_tanh(tp, x);
    CHECK(y && y->requires_grad && tn_tape_size(tp) == 1);
    tn_tensor_free(x);
    tn_tape_free(tp);
}

/* Every class of bad input: NULL, a message naming the op, sticky error. */
static void test_errors(void)
{
    tn_tape *tp = tn_tape_new();
    int64_t s234[3] = {2, 3, 4}, s33[2] = {3, 3}, s1234[4] = {1, 2, 3, 4}, s4[1] = {4};
    tn_tensor *x = tn_tensor_full(TN_F32, 3, s234, 1.0);
    tn_tensor *ids = tn_tensor_new(TN_I32, 3, s234);
    tn_tensor *m33 = tn_tensor_new(TN_I32, 2, s33), *m4d = tn_tensor_new(TN_I32, 4, s1234);
    tn_tensor *m4 = tn_tensor_new(TN_F64, 1, s4);

    /* int32 input to every float op */
    for (int k = 0; k < N_OPS; k++) {
        tn_tape_reset(tp);
        CHECK(apply(tp, ops[k], ids, 0.5) == NULL);
        CHECK(tn_last_status() == TN_ERR_DTYPE);
        CHECK_MSG(tn_tape_error(tp), tn_op_name(ops[k]));
        CHECK_MSG(tn_tape_error(tp), "int32");
    }
    tn_tape_reset(tp);
    CHECK(tn_dropout(tp, ids, 0.5) == NULL);
    CHECK_MSG(tn_tape_error(tp), "dropout");
    tn_tape_reset(tp);
    CHECK(tn_mask(tp, ids, m4) == NULL);
    CHECK_MSG(tn_tape_error(tp), "mask");

    /* NULL input on a clean tape is an error; after a failure, quiet */
    tn_tape_reset(tp);
    CHECK(tn_exp(tp, NULL) == NULL);
    CHECK(tn_last_status() == TN_ERR_ARG);
    CHECK_MSG(tn_tape_error(tp), "exp");
    CHECK(tn_tanh(tp, x) == NULL); /* sticky */
    CHECK_MSG(tn_tape_error(tp), "exp");
    tn_tape_reset(tp);
    CHECK(tn_mask(tp, x, NULL) == NULL);
    CHECK_MSG(tn_tape_error(tp), "mask");

    /* bad parameters */
    tn_tape_reset(tp);
    CHECK(tn_scale(tp, x, NAN) == NULL);
    CHECK(tn_last_status() == TN_ERR_ARG);
    CHECK_MSG(tn_tape_error(tp), "scale");
    CHECK_MSG(tn_tape_error(tp), "alpha");
    tn_tape_reset(tp);
    CHECK(tn_leaky_relu(tp, x, INFINITY) == NULL);
    CHECK_MSG(tn_tape_error(tp), "leaky_relu");
    CHECK_MSG(tn_tape_error(tp), "negative_slope");
    double bad_p[4] = {1.0, -0.1, 1.5, NAN};
    for (int i = 0; i < 4; i++) {
        tn_tape_reset(tp);
        tn_tape_set_training(tp, i % 2 == 0); /* checked in eval mode too */
        CHECK(tn_dropout(tp, x, bad_p[i]) == NULL);
        CHECK(tn_last_status() == TN_ERR_ARG);
        CHECK_MSG(tn_tape_error(tp), "dropout");
        CHECK_MSG(tn_tape_error(tp), "[0, 1)");
    }
    tn_tape_set_training(tp, true);

    /* mask shapes that do not broadcast to x */
    tn_tensor *bad_masks[2] = {m33, m4d};
    const char *bad_shapes[2] = {"[3, 3]", "[1, 2, 3, 4]"};
    for (int i = 0; i < 2; i++) {
        tn_tape_reset(tp);
        CHECK(tn_mask(tp, x, bad_masks[i]) == NULL);
        CHECK(tn_last_status() == TN_ERR_SHAPE);
        CHECK_MSG(tn_tape_error(tp), "mask");
        CHECK_MSG(tn_tape_error(tp), bad_shapes[i]);
        CHECK_MSG(tn_tape_error(tp), "[2, 3, 4]");
    }

    /* watch mode names the op that made a non-finite value */
    tn_tape_reset(tp);
    tn_tape_set_watch(tp, true);
    tn_tensor *z = tn_tensor_full(TN_F64, 1, s4, 0.0);
    CHECK(tn_exp(tp, z) != NULL);
    CHECK(tn_log(tp, z) == NULL);
    CHECK(tn_last_status() == TN_ERR_NUMERIC);
    CHECK_MSG(tn_tape_error(tp), "log");
    tn_tape_set_watch(tp, false);

    tn_tensor_free(z);
    tn_tensor_free(x);
    tn_tensor_free(ids);
    tn_tensor_free(m33);
    tn_tensor_free(m4d);
    tn_tensor_free(m4);
    tn_tape_free(tp);
}

int main(void)
{
    test_values(TN_F64);
    test_values(TN_F32);
    test_parallel();
    test_known();
    test_saturation(TN_F64);
    test_saturation(TN_F32);
    test_mask();
    test_dropout(TN_F64);
    test_dropout(TN_F32);
    test_no_grad();
    test_errors();
    return check_report("test_unary");
}
