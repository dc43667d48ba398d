/* tests/test_fused.c - the fused cell ops against the same math composed of
 * the generic ops (each checked on its own in test_unary / test_gradcheck):
 * forward values and input gradients, float64 and float32, plus errors.
 * Tolerances: float64 1e-14 (same formulas, different association: a few
 * ulps); float32 2e-6 (a few float roundings on values of order 1). */
#include "check.h"

#include "tensor/tensor.h"

enum { B = 5, H = 7 };

static tn_tensor *rand_param(tn_dtype dt, int nd, const int64_t *shape, tn_rng *r)
{
    tn_tensor *t = tn_tensor_new(dt, nd, shape);
    tn_tensor_uniform(t, r, -2, 2);
    tn_tensor_set_requires_grad(t, true);
    return t;
}

/* max |a - b| over two same-shaped tensors' values (grads when g). */
static double maxdiff(const tn_tensor *a, const tn_tensor *b, bool g)
{
    double m = 0;
    for (int64_t i = 0; i < tn_numel(a); i++) {
        double x = g ? tn_tensor_grad_get(a, i) : tn_tensor_get(a, i);
        double y = g ? tn_tensor_grad_get(b, i) : tn_tensor_get(b, i);
        m = fmax(m, fabs(x - y));
    }
    return m;
}

static tn_tensor *gate(tn_tape *tp, tn_tensor *g, int k, int64_t h)
{
    return tn_narrow(tp, g, 1, k * h, h);
}

static void check_lstm(tn_dtype dt, double tol)
{
    tn_rng r;
    tn_rng_seed(&r, 1);
    tn_tensor *g1 = rand_param(dt, 2, (int64_t[]){B, 4 * H}, &r);
    tn_tensor *c1 = rand_param(dt, 2, (int64_t[]){B, H}, &r);
    tn_tensor *w = rand_param(dt, 2, (int64_t[]){B, 2 * H}, &r);
    tn_tensor *g2 = tn_tensor_new(dt, 2, (int64_t[]){B, 4 * H});
    tn_tensor *c2 = tn_tensor_new(dt, 2, (int64_t[]){B, H});
    tn_tensor_copy(g2, g1);
    tn_tensor_copy(c2, c1);
    tn_tensor_set_requires_grad(g2, true);
    tn_tensor_set_requires_grad(c2, true);
    tn_tape *tp = tn_tape_new();
    tn_tensor *fused = tn_lstm_cell(tp, g1, c1);
    tn_tensor *i = tn_sigmoid(tp, gate(tp, g2, 0, H)), *f = tn_sigmoid(tp, gate(tp, g2, 1, H));
    tn_tensor *gg = tn_tanh(tp, gate(tp, g2, 2, H)), *o = tn_sigmoid(tp, gate(tp, g2, 3, H));
    tn_tensor *c = tn_add(tp, tn_mul(tp, f, c2), tn_mul(tp, i, gg));
    tn_tensor *h = tn_mul(tp, o, tn_tanh(tp, c));
    tn_tensor *ref = tn_concat(tp, 2, (tn_tensor *[]){h, c}, 1);
    CHECK(fused && ref);
    CHECK(maxdiff(fused, ref, false) <= tol);
    tn_tensor *loss = tn_add(tp, tn_sum(tp, tn_mul(tp, fused, w)), tn_sum(tp, tn_mul(tp, ref, w)));
    CHECK(tn_backward(tp, loss) == TN_OK);
    CHECK(maxdiff(g1, g2, true) <= tol);
    CHECK(maxdiff(c1, c2, true) <= tol);
    printf("lstm_cell %s: forward %.3g, dgates %.3g, dc %.3g\n", tn_dtype_name(dt),
           maxdiff(fused, ref, false), maxdiff(g1, g2, true), maxdiff(c1, c2, true));
    tn_tensor *all[5] = {g1, c1, w, g2, c2};
    for (int k = 0; k < 5; k++)
        tn_tensor_free(all[k]);
    tn_tape_free(tp);
}

static void check_gru(tn_dtype dt, double tol)
{
    tn_rng r;
    tn_rng_seed(&r, 2);
    tn_tensor *x1 = rand_param(dt, 2, (int64_t[]){B, 3 * H}, &r);
    tn_tensor *q1 = rand_param(dt, 2, (int64_t[]){B, 3 * H}, &r);
    tn_tensor *h1 = rand_param(dt, 2, (int64_t[]){B, H}, &r);
    tn_tensor *w = rand_param(dt, 2, (int64_t[]){B, H}, &r);
    tn_tensor *x2 = tn_tensor_new(dt, 2, (int64_t[]){B, 3 * H});
    tn_tensor *q2 = tn_tensor_new(dt, 2, (int64_t[]){B, 3 * H});
    tn_tensor *h2 = tn_tensor_new(dt, 2, (int64_t[]){B, H});
    tn_tensor_copy(x2, x1);
    tn_tensor_copy(q2, q1);
    tn_tensor_copy(h2, h1);
    tn_tensor *cp[3] = {x2, q2, h2};
    for (int k = 0; k < 3; k++)
        tn_tensor_set_requires_grad(cp[k], true);
    tn_tape *tp = tn_tape_new();
    tn_tensor *fused = tn_gru_cell(tp, x1, q1, h1);
    tn_tensor *rr = tn_sigmoid(tp, tn_add(tp, gate(tp, x2, 0, H), gate(tp, q2, 0, H)));
    tn_tensor *z = tn_sigmoid(tp, tn_add(tp, gate(tp, x2, 1, H), gate(tp, q2, 1, H)));
    tn_tensor *n = tn_tanh(tp, tn_add(tp, gate(tp, x2, 2, H), tn_mul(tp, rr, gate(tp, q2, 2, H))));
    tn_tensor *ref = tn_add(tp, n, tn_mul(tp, z, tn_sub(tp, h2, n)));
    CHECK(fused && ref);
    CHECK(maxdiff(fused, ref, false) <= tol);
    tn_tensor *loss = tn_add(tp, tn_sum(tp, tn_mul(tp, fused, w)), tn_sum(tp, tn_mul(tp, ref, w)));
    CHECK(tn_backward(tp, loss) == TN_OK);
    CHECK(maxdiff(x1, x2, true) <= tol);
    CHECK(maxdiff(q1, q2, true) <= tol);
    CHECK(maxdiff(h1, h2, true) <= tol);
    printf("gru_cell %s: forward %.3g, dxg %.3g, dhg %.3g, dh %.3g\n", tn_dtype_name(dt),
           maxdiff(fused, ref, false), maxdiff(x1, x2, true), maxdiff(q1, q2, true),
           maxdiff(h1, h2, true));
    tn_tensor *all[7] = {x1, q1, h1, w, x2, q2, h2};
    for (int k = 0; k < 7; k++)
        tn_tensor_free(all[k]);
    tn_tape_free(tp);
}

static void check_errors(void)
{
    tn_tape *tp = tn_tape_new();
    tn_tensor *g = tn_tape_tensor(tp, TN_F32, 2, (int64_t[]){3, 10});
    CHECK(tn_lstm_cell(tp, g, NULL) == NULL);
    CHECK_MSG(tn_tape_error(tp), "lstm_cell: gates [3, 10]");
    tn_tape_reset(tp);
    tn_tensor *x = tn_tape_tensor(tp, TN_F32, 2, (int64_t[]){3, 6});
    tn_tensor *q = tn_tape_tensor(tp, TN_F32, 2, (int64_t[]){2, 6});
    CHECK(tn_gru_cell(tp, x, q, NULL) == NULL);
    CHECK_MSG(tn_tape_error(tp), "gru_cell: xg [3, 6], hg [2, 6]");
    tn_tape_free(tp);
}

int main(void)
{
    check_lstm(TN_F64, 1e-14);
    check_lstm(TN_F32, 2e-6);
    check_gru(TN_F64, 1e-14);
    check_gru(TN_F32, 2e-6);
    check_errors();
    return check_report("test_fused");
}
