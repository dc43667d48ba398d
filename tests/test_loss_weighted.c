/* tests/test_loss_weighted.c - cross-entropy with class weights
 * (tn_cross_entropy_weighted, PyTorch's weight=): forward values and
 * gradients against a naive double loop for every reduction with ignored
 * rows, NULL weight and all-ones weights equal to tn_cross_entropy
 * exactly, a class of weight 0, every counted weight 0 (mean NaN as
 * PyTorch), bad weights, and PyTorch's own values
 * (tests/fixtures/loss_weighted.bin from tests/gen_loss_fixtures.py).
 *
 * Tolerances (relative to 1 + |want|):
 *   float64: sums of <= 100 terms, a few ulps each: 1e-12.
 *   float32: the loss is accumulated in double from float logits and
 *     weights and rounded once; gradients use float exp (a few ulps) times
 *     a float weight: 1e-6, as test_loss.
 *   NULL / all-ones weights against tn_cross_entropy: one code path,
 *     multiplications by 1.0: exactly equal.
 */
#include "check.h"
#include "white_box.h"
#include "fixture_check.h"
#include "tensor/ops.h"

#include <stdlib.h>

static tn_rng rng;

static double tol_of(tn_dtype dt) { return dt == TN_F32 ? 1e-6 : 1e-12; }

/* Naive weighted cross-entropy: li [n] = w[t_i] (lse(x_i) - x_i[t_i]) (0
 * when ignored); g [n, c] = d loss / d x for the reduction (none: seeded
 * with dy). Returns the reduced loss. */
static double ce_naive(const double *x, int64_t n, int64_t c, const int32_t *t, const double *w,
                       int64_t ignore, tn_reduction red, const double *dy, double *li, double *g)
{
    double s = 0, ws = 0;
    for (int64_t i = 0; i < n; i++) {
        li[i] = 0;
        if (t[i] == ignore)
            continue;
        li[i] = w[t[i]] * (check_logsumexp(x + i * c, c) - x[i * c + t[i]]);
        s += li[i];
        ws += w[t[i]];
    }
    double out = red == TN_REDUCE_MEAN ? s / ws : s;
    for (int64_t i = 0; i < n; i++) {
        double lse = check_logsumexp(x + i * c, c);
        double gi = t[i] == ignore          ? 0
                    : red == TN_REDUCE_NONE ? dy[i] * w[t[i]]
                    : red == TN_REDUCE_MEAN ? w[t[i]] / ws
                                            : w[t[i]];
        for (int64_t k = 0; k < c; k++)
            g[i * c + k] = gi * (exp(x[i * c + k] - lse) - (k == t[i]));
    }
    return out;
}

/* Run the op on x (requires grad) and compare value and gradient. */
static void check_against(tn_tape *tp, tn_tensor *x, tn_tensor *tg, tn_tensor *w, int64_t ignore,
                          tn_reduction red, tn_tensor *dy, double want, const double *li,
                          const double *g, double tol)
{
    tn_tape_reset(tp);
    tn_tensor_zero_grad(x);
    int64_t n = x->shape[0], c = x->shape[1];
    tn_tensor *y = tn_cross_entropy_weighted(tp, x, tg, w, ignore, red);
    CHECK(y);
    if (!y)
        return;
    if (red == TN_REDUCE_NONE) {
        CHECK(y->ndim == 1 && y->shape[0] == n);
        for (int64_t i = 0; i < n; i++)
            CHECK_NEAR(tn_tensor_get(y, i), li[i], tol * (1 + fabs(li[i])));
        CHECK(tn_backward_from(tp, y, dy) == TN_OK);
    } else {
        CHECK(y->ndim == 1 && y->shape[0] == 1);
        CHECK_NEAR(tn_tensor_get(y, 0), want, tol * (1 + fabs(want)));
        CHECK(tn_backward(tp, y) == TN_OK);
    }
    for (int64_t i = 0; i < n * c; i++)
        CHECK_NEAR(tn_tensor_grad_get(x, i), g[i], tol * (1 + fabs(g[i])));
}

/* Every reduction, ignored rows (ignore_index outside and inside [0, C)),
 * a class of weight 0, a strided weight view, large N on the parallel path. */
static void test_naive(tn_dtype dt)
{
    tn_tape *tp = tn_tape_new();
    enum { N = 9, C = 5, NL = 600, CL = 18 };
    tn_tensor *x = tn_tensor_new(dt, 2, (int64_t[]){N, C});
    tn_tensor_uniform(x, &rng, -4, 4);
    tn_tensor_set_requires_grad(x, true);
    double wv[C] = {0.5, 2.0, 0.0, 1.25, 3.0};
    tn_tensor *w = tn_tensor_new(dt, 1, (int64_t[]){C});
    for (int k = 0; k < C; k++)
        tn_tensor_set(w, k, wv[k]);
    int32_t tv[N] = {0, 4, -100, 2, 1, -100, 3, 4, 1}, tin[N] = {3, 1, 3, 0, 4, 2, 3, 1, 0};
    tn_tensor *tg = tn_tensor_from(TN_I32, 1, (int64_t[]){N}, tv);
    tn_tensor *tgi = tn_tensor_from(TN_I32, 1, (int64_t[]){N}, tin);
    tn_tensor *dy = tn_tensor_new(TN_F64, 1, (int64_t[]){N});
    tn_tensor_uniform(dy, &rng, -2, 2);
    double *xv = check_values(x), *dyv = check_values(dy), wr[C], li[N], g[N * C];
    for (int k = 0; k < C; k++)
        wr[k] = tn_tensor_get(w, k); /* the weights as rounded to dt */
    for (int r = 0; r < 3; r++) {
        tn_reduction red = (tn_reduction)r;
        double want = ce_naive(xv, N, C, tv, wr, -100, red, dyv, li, g);
        check_against(tp, x, tg, w, -100, red, dy, want, li, g, tol_of(dt));
        want = ce_naive(xv, N, C, tin, wr, 3, red, dyv, li, g);
        check_against(tp, x, tgi, w, 3, red, dy, want, li, g, tol_of(dt));
    }
    /* weight as a strided view: every other element of a [2C] tensor */
    tn_tensor *w2 = tn_tensor_new(dt, 1, (int64_t[]){2 * C});
    for (int k = 0; k < C; k++) {
        tn_tensor_set(w2, 2 * k, wv[k]);
        tn_tensor_set(w2, 2 * k + 1, -1); /* would be refused if read */
    }
    tn_node wview_node = *tn__node(w2);
    tn_tensor *wview = &wview_node.pub;
    wview->shape[0] = C;
    wview->stride[0] = 2;
    double want = ce_naive(xv, N, C, tv, wr, -100, TN_REDUCE_MEAN, dyv, li, g);
    check_against(tp, x, tg, wview, -100, TN_REDUCE_MEAN, dy, want, li, g, tol_of(dt));

    /* [600, 18]: the parallel forward and backward */
    tn_tensor *xl = tn_tensor_new(dt, 2, (int64_t[]){NL, CL});
    tn_tensor_uniform(xl, &rng, -5, 5);
    tn_tensor_set_requires_grad(xl, true);
    tn_tensor *wl = tn_tensor_new(dt, 1, (int64_t[]){CL});
    tn_tensor_uniform(wl, &rng, 0.05, 4);
    int32_t *tl = malloc(sizeof(int32_t) * NL);
    for (int i = 0; i < NL; i++)
        tl[i] = i % 13 == 0 ? -1 : (int32_t)(tn_rng_next(&rng) % CL);
    tn_tensor *tgl = tn_tensor_from(TN_I32, 1, (int64_t[]){NL}, tl);
    double *xlv = check_values(xl), *wlv = check_values(wl), *lil = malloc(sizeof(double) * NL);
    double *gl = malloc(sizeof(double) * NL * CL);
    want = ce_naive(xlv, NL, CL, tl, wlv, -1, TN_REDUCE_MEAN, NULL, lil, gl);
    check_against(tp, xl, tgl, wl, -1, TN_REDUCE_MEAN, NULL, want, lil, gl, tol_of(dt));

    free(xv), free(dyv), free(tl), free(xlv), free(wlv), free(lil), free(gl);
    tn_tensor_free(x), tn_tensor_free(w), tn_tensor_free(w2), tn_tensor_free(tg);
    tn_tensor_free(tgi), tn_tensor_free(dy), tn_tensor_free(xl), tn_tensor_free(wl);
    tn_tensor_free(tgl);
    tn_tape_free(tp);
}

/* NULL and all-ones weights give tn_cross_entropy's values and gradients
 * exactly. */
static void test_unweighted_same(tn_dtype dt)
{
    tn_tape *tp = tn_tape_new();
    tn_tensor *x = tn_tensor_new(dt, 2, (int64_t[]){6, 4});
    tn_tensor_uniform(x, &rng, -3, 3);
    tn_tensor_set_requires_grad(x, true);
    tn_tensor *tg = tn_tensor_from(TN_I32, 1, (int64_t[]){6}, (int32_t[]){1, -100, 3, 0, 3, 2});
    tn_tensor *ones = tn_tensor_new(dt, 1, (int64_t[]){4});
    tn_tensor_fill(ones, 1);
    for (int r = 0; r < 3; r++) {
        tn_reduction red = (tn_reduction)r;
        double v[3][6], g[3][24];
        for (int k = 0; k < 3; k++) {
            tn_tape_reset(tp);
            tn_tensor_zero_grad(x);
            tn_tensor *y =
                k == 0 ? tn_cross_entropy(tp, x, tg, -100, red)
                       : tn_cross_entropy_weighted(tp, x, tg, k == 1 ? NULL : ones, -100, red);
            CHECK(y && tn_backward(tp, tn_sum(tp, y)) == TN_OK);
            for (int64_t i = 0; y && i < tn_numel(y); i++)
                v[k][i] = tn_tensor_get(y, i);
            for (int i = 0; i < 24; i++)
                g[k][i] = tn_tensor_grad_get(x, i);
        }
        int64_t ny = red == TN_REDUCE_NONE ? 6 : 1;
        for (int k = 1; k < 3; k++) {
            CHECK(memcmp(v[0], v[k], sizeof(double) * (size_t)ny) == 0);
            CHECK(memcmp(g[0], g[k], sizeof g[0]) == 0);
        }
    }
    tn_tensor_free(x), tn_tensor_free(tg), tn_tensor_free(ones);
    tn_tape_free(tp);
}

/* Every counted target has weight 0: mean is 0/0 = NaN (PyTorch gives NaN
 * too), sum 0; the gradient is zero. */
static void test_zero_weight_sum(void)
{
    tn_tape *tp = tn_tape_new();
    tn_tensor *x = tn_tensor_new(TN_F64, 2, (int64_t[]){3, 3});
    tn_tensor_uniform(x, &rng, -1, 1);
    tn_tensor_set_requires_grad(x, true);
    tn_tensor *tg = tn_tensor_from(TN_I32, 1, (int64_t[]){3}, (int32_t[]){1, -100, 1});
    tn_tensor *w = tn_tensor_from(TN_F64, 1, (int64_t[]){3}, (double[]){1, 0, 1});
    tn_tensor *m = tn_cross_entropy_weighted(tp, x, tg, w, -100, TN_REDUCE_MEAN);
    tn_tensor *s = tn_cross_entropy_weighted(tp, x, tg, w, -100, TN_REDUCE_SUM);
    CHECK(m && s && isnan(tn_tensor_get(m, 0)) && tn_tensor_get(s, 0) == 0);
    CHECK(m && tn_backward(tp, m) == TN_OK);
    for (int i = 0; i < 9; i++)
        CHECK(tn_tensor_grad_get(x, i) == 0);
    tn_tensor_free(x), tn_tensor_free(tg), tn_tensor_free(w);
    tn_tape_free(tp);
}

static void test_errors(void)
{
    tn_tape *tp = tn_tape_new();
    tn_tensor *x = tn_tensor_new(TN_F32, 2, (int64_t[]){4, 3});
    tn_tensor *tg = tn_tensor_from(TN_I32, 1, (int64_t[]){4}, (int32_t[]){0, 1, 2, 1});
    tn_tensor *w64 = tn_tensor_new(TN_F64, 1, (int64_t[]){3});
    tn_tensor *w4 = tn_tensor_new(TN_F32, 1, (int64_t[]){4});
    tn_tensor *w2d = tn_tensor_new(TN_F32, 2, (int64_t[]){1, 3});
    tn_tensor *wi = tn_tensor_new(TN_I32, 1, (int64_t[]){3});
    tn_tensor *w = tn_tensor_from(TN_F32, 1, (int64_t[]){3}, (float[]){1, 1, 1});
    struct {
        tn_tensor *w;
        tn_status st;
        const char *msg;
    } bad[] = {
        {w64, TN_ERR_DTYPE, "weight [3] is float64"},
        {wi, TN_ERR_DTYPE, "int32"},
        {w4, TN_ERR_SHAPE, "weight [4] must be [C] = [3]"},
        {w2d, TN_ERR_SHAPE, "weight [1, 3]"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        tn_tape_reset(tp);
        CHECK(tn_cross_entropy_weighted(tp, x, tg, bad[k].w, -100, TN_REDUCE_MEAN) == NULL);
        CHECK(tn_last_status() == bad[k].st);
        CHECK_MSG(tn_tape_error(tp), "cross_entropy");
        CHECK_MSG(tn_tape_error(tp), bad[k].msg);
    }
    double values[3] = {-0.5, NAN, INFINITY};
    const char *msgs[3] = {"weight[1] = -0.5", "weight[1] = nan", "weight[1] = inf"};
    for (int k = 0; k < 3; k++) {
        tn_tape_reset(tp);
        tn_tensor_set(w, 1, values[k]);
        CHECK(tn_cross_entropy_weighted(tp, x, tg, w, -100, TN_REDUCE_SUM) == NULL);
        CHECK(tn_last_status() == TN_ERR_ARG);
        CHECK_MSG(tn_tape_error(tp), msgs[k]);
        CHECK_MSG(tn_tape_error(tp), "finite and >= 0");
    }
    tn_tensor_set(w, 1, 1);
    tn_tensor_set_requires_grad(w, true);
    tn_tape_reset(tp);
    CHECK(tn_cross_entropy_weighted(tp, x, tg, w, -100, TN_REDUCE_SUM) == NULL);
    CHECK(tn_last_status() == TN_ERR_ARG);
    CHECK_MSG(tn_tape_error(tp), "requires grad");
    tn_tensor_set_requires_grad(w, false);
    /* the targets are still checked first, with cross_entropy's message */
    tn_tape_reset(tp);
    tn_tensor *tbad = tn_tensor_from(TN_I32, 1, (int64_t[]){4}, (int32_t[]){0, 3, 2, 1});
    CHECK(tn_cross_entropy_weighted(tp, x, tbad, w, -100, TN_REDUCE_SUM) == NULL);
    CHECK_MSG(tn_tape_error(tp), "target 3 at position 1");
    tn_tensor_free(x), tn_tensor_free(tg), tn_tensor_free(w64), tn_tensor_free(w4);
    tn_tensor_free(w2d), tn_tensor_free(wi), tn_tensor_free(w), tn_tensor_free(tbad);
    tn_tape_free(tp);
}

/* ---- PyTorch parity ---- */

static void test_parity(const fixture *fx, const char *name, tn_dtype dt)
{
    char key[128];
    const fixture_tensor *fl, *ft, *fw, *fi, *fdy;
    snprintf(key, sizeof key, "%s.logits", name), fl = fixture_need(fx, key);
    snprintf(key, sizeof key, "%s.targets", name), ft = fixture_need(fx, key);
    snprintf(key, sizeof key, "%s.weight", name), fw = fixture_need(fx, key);
    snprintf(key, sizeof key, "%s.ignore", name), fi = fixture_need(fx, key);
    snprintf(key, sizeof key, "%s.dy", name), fdy = fixture_need(fx, key);
    if (!fl || !ft || !fw || !fi || !fdy)
        return;
    tn_tape *tp = tn_tape_new();
    tn_tensor *x = fixture_to_tensor(fl, dt), *tg = fixture_to_tensor(ft, TN_I32),
              *w = fixture_to_tensor(fw, dt);
    tn_tensor *dy = fixture_to_tensor(fdy, dt);
    tn_tensor_set_requires_grad(x, true);
    const char *reds[3] = {"mean", "sum", "none"};
    for (int r = 0; r < 3; r++) {
        const fixture_tensor *fy, *fg;
        snprintf(key, sizeof key, "%s.%s", name, reds[r]), fy = fixture_need(fx, key);
        snprintf(key, sizeof key, "%s.%s.grad", name, reds[r]), fg = fixture_need(fx, key);
        if (!fy || !fg)
            continue;
        tn_tape_reset(tp);
        tn_tensor_zero_grad(x);
        tn_tensor *y = tn_cross_entropy_weighted(tp, x, tg, w, (int64_t)fi->data[0],
                                                 (tn_reduction)(r == 0   ? TN_REDUCE_MEAN
                                                                : r == 1 ? TN_REDUCE_SUM
                                                                         : TN_REDUCE_NONE));
        CHECK(y && tn_numel(y) == fy->numel);
        if (!y)
            continue;
        for (int64_t i = 0; i < fy->numel; i++)
            CHECK_NEAR(tn_tensor_get(y, i), fy->data[i], tol_of(dt) * (1 + fabs(fy->data[i])));
        CHECK((r == 2 ? tn_backward_from(tp, y, dy) : tn_backward(tp, y)) == TN_OK);
        for (int64_t i = 0; i < fg->numel; i++)
            CHECK_NEAR(tn_tensor_grad_get(x, i), fg->data[i], tol_of(dt) * (1 + fabs(fg->data[i])));
    }
    tn_tensor_free(x), tn_tensor_free(tg), tn_tensor_free(w), tn_tensor_free(dy);
    tn_tape_free(tp);
}

/* The fixture's cases in both dtypes; 77 (skip) without TN_FIXTURES. */
static int run_parity(void)
{
    fixture f = {0};
    int rc = fixture_open(&f, "loss_weighted.bin", "test_loss_weighted");
    if (rc)
        return rc;
    const tn_dtype dts[2] = {TN_F64, TN_F32};
    for (int k = 0; k < 4; k++)
        test_parity(&f, k % 2 ? "wide" : "small", dts[k / 2]);
    fixture_free(&f);
    return 0;
}

int main(void)
{
    tn_rng_seed(&rng, 11);
    const tn_dtype dts[2] = {TN_F64, TN_F32};
    for (int k = 0; k < 2; k++) {
        test_naive(dts[k]);
        test_unweighted_same(dts[k]);
    }
    test_zero_weight_sum();
    test_errors();
    int parity = run_parity();
    int rc = check_report("test_loss_weighted");
    return rc ? rc : parity;
}
