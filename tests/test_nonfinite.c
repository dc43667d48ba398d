/* tests/test_nonfinite.c - NaN and +-Inf through every fast float path
 * (issue 10, D6): the fast exp/tanh/sigmoid of src/ops/fastmath.h, the
 * point-wise ops that use them, softmax, cross-entropy, the fused LSTM/GRU
 * gate kernels and the recurrent op, forward and backward. Under the
 * sanitizer build (UBSan, -fno-sanitize-recover) any undefined behaviour
 * aborts the test; in every build, NaN in must give NaN out at the same
 * place (an exact property: no tolerance). Before the fix tn__expf
 * converted NaN to int32 and UBSan stopped here. */
#include "check.h"
#include "tensor/tensor.h"

#include "../src/ops/fastmath.h"

#include <float.h>

static const float special[] = {NAN,     -NAN,     INFINITY, -INFINITY, 0.0f,   -0.0f,
                                1.0f,    -1.0f,    88.5f,    -88.5f,    1e-40f, -1e-40f,
                                FLT_MAX, -FLT_MAX, 3e38f,    1e30f,     -1e30f, 0.25f};
#define NSPECIAL ((int)(sizeof special / sizeof special[0]))

static void scalar_kernels(void)
{
    for (int i = 0; i < NSPECIAL; i++) {
        float x = special[i];
        float e = tn__expf(x), s = tn__sigmoidf(x), t = tn__tanhf(x);
        if (isnan(x)) {
            CHECK(isnan(e) && isnan(s) && isnan(t));
            continue;
        }
        CHECK(!isnan(e) && !isnan(s) && !isnan(t));
        CHECK(e >= 0 && s >= 0 && s <= 1 && t >= -1 && t <= 1);
    }
    CHECK(tn__expf(-INFINITY) == 0.0f);
    CHECK(tn__sigmoidf(INFINITY) == 1.0f && tn__sigmoidf(-INFINITY) == 0.0f);
    CHECK(tn__tanhf(INFINITY) == 1.0f && tn__tanhf(-INFINITY) == -1.0f);
}

/* x [rows, NSPECIAL] holding the special values in every row, with
 * requires_grad so backward runs the backward kernels too. */
static tn_tensor *special_param(int64_t rows)
{
    tn_tensor *x = tn_tensor_new(TN_F32, 2, (int64_t[]){rows, NSPECIAL});
    for (int64_t r = 0; r < rows; r++)
        for (int i = 0; i < NSPECIAL; i++)
            tn_tensor_set(x, r * NSPECIAL + i, special[i]);
    tn_tensor_set_requires_grad(x, true);
    return x;
}

typedef tn_tensor *(*unary_fn)(tn_tape *, tn_tensor *);

/* Point-wise ops: y[i] is NaN wherever x[i] is; forward and backward run
 * on every special value. rows 4096 makes the loops take their threaded
 * (vectorised) paths as well as the scalar ones. */
static void pointwise(const char *name, unary_fn f, int64_t rows)
{
    tn_tape *tp = tn_tape_new();
    tn_tensor *x = special_param(rows);
    tn_tensor *y = f(tp, x);
    CHECK(y != NULL);
    if (y) {
        for (int64_t i = 0; i < tn_numel(x); i++)
            if (isnan(tn_tensor_get(x, i)) && !isnan(tn_tensor_get(y, i))) {
                fprintf(stderr, "%s: NaN in at %lld gave %g\n", name, (long long)i,
                        tn_tensor_get(y, i));
                CHECK(false);
                break;
            }
        CHECK(tn_backward(tp, tn_sum(tp, y)) == TN_OK);
        /* the NaN input's gradient; relu' = [y > 0] is 0 there, as PyTorch's */
        CHECK(f == tn_relu || isnan(tn_tensor_grad_get(x, 0)));
    }
    tn_tape_free(tp);
    tn_tensor_free(x);
}

static void softmax_and_loss(int64_t rows)
{
    tn_tape *tp = tn_tape_new();
    tn_tensor *x = special_param(rows);
    tn_tensor *sm = tn_softmax(tp, x, 1), *lsm = tn_log_softmax(tp, x, 1);
    CHECK(sm && lsm);
    if (sm && lsm) /* every row has a NaN: the whole row is NaN */
        for (int i = 0; i < NSPECIAL; i++)
            CHECK(isnan(tn_tensor_get(sm, i)) && isnan(tn_tensor_get(lsm, i)));
    tn_tensor *tg = tn_tape_tensor(tp, TN_I32, 1, (int64_t[]){rows});
    for (int64_t r = 0; r < rows; r++)
        ((int32_t *)tg->data)[r] = (int32_t)(r % NSPECIAL);
    tn_tensor *ce = tn_cross_entropy(tp, x, tg, -1, TN_REDUCE_MEAN);
    CHECK(ce && isnan(tn_tensor_get(ce, 0)));
    tn_tensor *loss = tn_add(tp, tn_add(tp, tn_sum(tp, sm), tn_sum(tp, lsm)), ce);
    CHECK(tn_backward(tp, loss) == TN_OK);
    CHECK(isnan(tn_tensor_grad_get(x, 0)));
    tn_tape_free(tp);
    tn_tensor_free(x);
}

/* LSTM and GRU gate kernels, and a whole recurrent layer with NaN in its
 * input: the outputs that depend on the NaN are NaN; nothing traps. */
static void gates_and_recurrent(void)
{
    tn_tape *tp = tn_tape_new();
    int64_t B = 3, H = NSPECIAL;
    tn_tensor *g4 = tn_tensor_new(TN_F32, 2, (int64_t[]){B, 4 * H});
    tn_tensor *g3 = tn_tensor_new(TN_F32, 2, (int64_t[]){B, 3 * H});
    tn_tensor *h3 = tn_tensor_new(TN_F32, 2, (int64_t[]){B, 3 * H});
    tn_tensor *c = tn_tensor_new(TN_F32, 2, (int64_t[]){B, H});
    for (int64_t i = 0; i < tn_numel(g4); i++)
        tn_tensor_set(g4, i, special[i % NSPECIAL]);
    for (int64_t i = 0; i < tn_numel(g3); i++) {
        tn_tensor_set(g3, i, special[i % NSPECIAL]);
        tn_tensor_set(h3, i, special[(i + 5) % NSPECIAL]);
    }
    for (int64_t i = 0; i < tn_numel(c); i++)
        tn_tensor_set(c, i, special[(i + 3) % NSPECIAL]);
    tn_tensor *ps[] = {g4, g3, h3, c};
    for (int i = 0; i < 4; i++)
        tn_tensor_set_requires_grad(ps[i], true);
    tn_tensor *l = tn_lstm_cell(tp, g4, c), *g = tn_gru_cell(tp, g3, h3, c);
    CHECK(l && g);
    if (l && g) {
        /* unit 0 of batch 0: gate i is NaN, so c' and h' are NaN */
        CHECK(isnan(tn_tensor_get(l, 0)) && isnan(tn_tensor_get(l, H)));
        CHECK(isnan(tn_tensor_get(g, 0))); /* r, z and n of unit 0 are NaN */
        CHECK(tn_backward(tp, tn_add(tp, tn_sum(tp, l), tn_sum(tp, g))) == TN_OK);
    }
    tn_tape_reset(tp);

    for (int cell = TN_CELL_RNN_TANH; cell <= TN_CELL_GRU; cell++) {
        tn_params ps;
        tn_params_init(&ps);
        tn_rnn m;
        tn_rng r;
        tn_rng_seed(&r, 1);
        CHECK(tn_rnn_init(&m, &ps, "rnn", (tn_cell)cell, 4, 8, 1, false, 0.0, TN_F32, &r) == TN_OK);
        tn_tensor *x = tn_tensor_new(TN_F32, 3, (int64_t[]){2, 5, 4});
        for (int64_t i = 0; i < tn_numel(x); i++)
            tn_tensor_set(x, i, special[i % NSPECIAL]);
        tn_tensor_set_requires_grad(x, true);
        tn_rnn_out out;
        CHECK(tn_rnn_forward(tp, &m, x, NULL, NULL, NULL, &out) == TN_OK);
        if (out.output) {
            if (!isnan(tn_tensor_get(out.output, 0))) /* x[0, 0, 0] is NaN */
                fprintf(stderr, "%s: NaN input gave %g\n", tn_cell_name((tn_cell)cell),
                        tn_tensor_get(out.output, 0));
            CHECK(isnan(tn_tensor_get(out.output, 0)));
            CHECK(tn_backward(tp, tn_sum(tp, out.output)) == TN_OK);
        }
        tn_tape_reset(tp);
        tn_tensor_free(x);
        tn_params_free(&ps);
    }
    for (int i = 0; i < 4; i++)
        tn_tensor_free(ps[i]);
    tn_tape_free(tp);
}

int main(void)
{
    scalar_kernels();
    static const struct {
        const char *name;
        unary_fn f;
    } ops[] = {{"exp", tn_exp},   {"sigmoid", tn_sigmoid}, {"tanh", tn_tanh}, {"relu", tn_relu},
               {"gelu", tn_gelu}, {"silu", tn_silu},       {"log", tn_log}};
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
        pointwise(ops[k].name, ops[k].f, 1);
        pointwise(ops[k].name, ops[k].f, 4096);
    }
    softmax_and_loss(2);
    softmax_and_loss(4096);
    gates_and_recurrent();
    return check_report("test_nonfinite");
}
