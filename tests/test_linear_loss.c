/* tests/test_linear_loss.c - tn_linear_cross_entropy (the fused output
 * layer + cross-entropy):
 *   1. against the unfused ops (tn_addmm, then tn_cross_entropy_weighted;
 *      for label smoothing also log_softmax, mul, mask, sum) on N 300,
 *      H 64, V 1000 (gradient buffers; one block of all rows, then with
 *      the block limit lowered blocks of 256 rows (float32) or 128
 *      (float64) and a ragged 44) and V 50 (the gradient of the logits
 *      kept whole): loss and
 *      the gradients of h, weight and bias, every reduction, float32 and
 *      float64, an upstream gradient other than 1, a frozen bias, no-grad
 *      mode; two backward passes through one result with other upstream
 *      gradients;
 *   2. PyTorch's F.cross_entropy(F.linear(...), label_smoothing=...)
 *      (tests/fixtures/linear_loss.bin from tests/gen_linear_loss_fixtures.py);
 *   3. every counted row ignored (mean NaN, zero gradients, as PyTorch);
 *   4. every refused argument: the tape fails naming the op and shapes.
 *
 * Tolerances, as max |got - want| / max |want| over a tensor (so that small
 * gradient entries are not held to a bound relative to themselves):
 *   float64: both sides sum the same products in other orders (blocked
 *     GEMMs, per-block weight-gradient sums): ~1e-15 relative each, 1e-12
 *     with margin.
 *   float32: logits from float GEMMs of 64 terms blocked differently, float
 *     exps (2 ulp), the weight gradient summed over 2 blocks vs one GEMM:
 *     a few 1e-7 measured, bound 1e-5.
 * PyTorch parity: float64 1e-12 as above (PyTorch's own float64 kernels);
 * float32 against the float64 reference: the inputs rounded to float
 * (6e-8 relative) and the float logits (|x| <~ 10, H <= 16 terms): 1e-5.
 */
#include "check.h"
#include "white_box.h"
#include "../src/ops/ops_internal.h"
#include "fixture_check.h"
#include "tensor/ops.h"

#include <stdlib.h>

static tn_rng rng;

/* max |got - want| / max |want| over n values of got (a tensor's data, or
 * its gradient when grad) against want. */
static double rel_err(const tn_tensor *got, bool grad, const double *want, int64_t n)
{
    double e = 0, m = 0;
    for (int64_t i = 0; i < n; i++) {
        double g = grad ? tn_tensor_grad_get(got, i) : tn_tensor_get(got, i);
        e = fmax(e, fabs(g - want[i]));
        m = fmax(m, fabs(want[i]));
        if (isnan(g) != isnan(want[i]))
            return INFINITY;
    }
    return m > 0 ? e / m : e;
}

static double worst[2]; /* per dtype, over the unfused comparisons */

typedef struct setup {
    tn_reduction red;
    bool bias, bias_grad, cw;
    double eps;
    double g;     /* upstream gradient of a scalar loss (scale), or 0: tn_backward */
    bool no_grad; /* forward only, in no-grad mode */
    int64_t v;    /* classes: 1000 (blocks and gradient buffers) or 50 (G kept whole) */
} setup;

/* The unfused reference: logits = b + h W^T (addmm), then
 * (1 - e) CE_w(logits) + (e / V) sum over counted rows i and classes c of
 * -w[c] log_softmax(logits)[i, c], reduced like the op (mean: / sum of
 * w[t_i]; none only with e = 0). */
static tn_tensor *unfused(tn_tape *tp, tn_tensor *h, tn_tensor *w, tn_tensor *b, tn_tensor *tg,
                          tn_tensor *cw, tn_tensor *rowmask, int64_t ignore, const setup *su,
                          double div)
{
    int64_t v = w->shape[0];
    tn_tensor *zero = NULL;
    if (!b) {
        zero = tn_tape_tensor(tp, h->dtype, 1, &v);
        b = zero;
    }
    tn_tensor *x = tn_addmm(tp, b, h, tn_transpose(tp, w, 0, 1));
    if (su->eps == 0)
        return tn_cross_entropy_weighted(tp, x, tg, cw, ignore, su->red);
    tn_tensor *ce = tn_cross_entropy_weighted(tp, x, tg, cw, ignore, TN_REDUCE_SUM);
    tn_tensor *lsm = tn_log_softmax(tp, x, 1);
    if (cw)
        lsm = tn_mul(tp, lsm, cw);
    tn_tensor *sm = tn_sum(tp, tn_mask(tp, lsm, rowmask));
    double d = su->red == TN_REDUCE_MEAN ? div : 1.0;
    return tn_add(tp, tn_scale(tp, ce, (1 - su->eps) / d),
                  tn_scale(tp, sm, -su->eps / (double)v / d));
}

/* Run the fused op (k = 0) and the reference (k = 1) on the same inputs
 * and compare loss and gradients. */
static void compare(tn_dtype dt, const setup *su)
{
    enum { N = 300, H = 64 };
    const int64_t ignore = -100, V = su->v;
    tn_tape *tp = tn_tape_new();
    tn_tensor *h = tn_tensor_new(dt, 2, (int64_t[]){N, H});
    tn_tensor *w = tn_tensor_new(dt, 2, (int64_t[]){V, H});
    tn_tensor *b = su->bias ? tn_tensor_new(dt, 1, (int64_t[]){V}) : NULL;
    tn_tensor *cw = su->cw ? tn_tensor_new(dt, 1, (int64_t[]){V}) : NULL;
    tn_tensor *dy = tn_tensor_new(dt, 1, (int64_t[]){N});
    tn_tensor_uniform(h, &rng, -2, 2);
    tn_tensor_uniform(w, &rng, -0.4, 0.4);
    tn_tensor_uniform(dy, &rng, -1, 1);
    if (b)
        tn_tensor_uniform(b, &rng, -1, 1);
    if (cw)
        tn_tensor_uniform(cw, &rng, 0.2, 3);
    int32_t tv[N], mv[N];
    double div = 0;
    for (int i = 0; i < N; i++) {
        tv[i] = i % 7 == 3 ? (int32_t)ignore : (int32_t)(tn_rng_next(&rng) % V);
        mv[i] = tv[i] != ignore;
        div += mv[i] ? (cw ? tn_tensor_get(cw, tv[i]) : 1.0) : 0.0;
    }
    tn_tensor *tg = tn_tensor_from(TN_I32, 1, (int64_t[]){N}, tv);
    tn_tensor *rowmask = tn_tensor_from(TN_I32, 2, (int64_t[]){N, 1}, mv);
    tn_tensor_set_requires_grad(h, true);
    tn_tensor_set_requires_grad(w, true);
    if (b)
        tn_tensor_set_requires_grad(b, su->bias_grad);
    int64_t ny = su->red == TN_REDUCE_NONE ? N : 1;
    double *want[4] = {0}; /* y, dh, dw, db of the reference */
    tn_tensor *src[4] = {NULL, h, w, b};
    int64_t num[4] = {ny, N * H, V * H, V};
    for (int k = 1; k >= 0; k--) {
        tn_tape_reset(tp);
        tn_tensor_zero_grad(h), tn_tensor_zero_grad(w);
        if (b && su->bias_grad)
            tn_tensor_zero_grad(b);
        if (su->no_grad)
            tn_tape_set_grad(tp, false);
        tn_tensor *y = k ? unfused(tp, h, w, b, tg, cw, rowmask, ignore, su, div)
                         : tn_linear_cross_entropy(tp, h, w, b, tg, cw, ignore, su->eps, su->red);
        CHECK(y && tn_numel(y) == ny);
        if (!y) {
            fprintf(stderr, "  %s\n", tn_tape_error(tp));
            break;
        }
        tn_status st = TN_OK;
        if (su->no_grad)
            CHECK(!y->requires_grad);
        else if (su->red == TN_REDUCE_NONE)
            st = tn_backward_from(tp, y, dy);
        else
            st = tn_backward(tp, su->g != 0 ? tn_scale(tp, y, su->g) : y);
        CHECK(st == TN_OK);
        src[0] = y;
        for (int q = 0; q < 4; q++) {
            bool has = src[q] && (q == 0 || (!su->no_grad && src[q]->requires_grad));
            if (!has)
                continue;
            if (k) {
                want[q] = malloc(sizeof(double) * (size_t)num[q]);
                for (int64_t i = 0; i < num[q]; i++)
                    want[q][i] = q ? tn_tensor_grad_get(src[q], i) : tn_tensor_get(y, i);
            } else {
                double e = rel_err(src[q], q > 0, want[q], num[q]);
                double tol = dt == TN_F32 ? 1e-5 : 1e-12;
                CHECK(e <= tol);
                if (!(e <= tol))
                    fprintf(stderr, "  %s red %d eps %g bias %d cw %d: %s rel err %.3g > %g\n",
                            tn_dtype_name(dt), (int)su->red, su->eps, su->bias, su->cw,
                            (const char *[]){"loss", "dh", "dweight", "dbias"}[q], e, tol);
                worst[dt == TN_F32] = fmax(worst[dt == TN_F32], e);
            }
        }
        tn_tape_set_grad(tp, true);
    }
    if (b && !su->bias_grad) /* a frozen bias got no gradient buffer */
        CHECK(b->grad == NULL);
    for (int q = 0; q < 4; q++)
        free(want[q]);
    tn_tensor_free(h), tn_tensor_free(w), tn_tensor_free(b), tn_tensor_free(cw);
    tn_tensor_free(dy), tn_tensor_free(tg), tn_tensor_free(rowmask);
    tn_tape_free(tp);
}

static void test_unfused(void)
{
    const setup s[] = {
        {TN_REDUCE_MEAN, true, true, true, 0.0, 0, false, 1000},
        {TN_REDUCE_SUM, false, false, false, 0.0, 1.7, false, 1000},
        {TN_REDUCE_NONE, true, true, true, 0.0, 0, false, 1000},
        {TN_REDUCE_MEAN, true, true, true, 0.1, -0.6, false, 1000},
        {TN_REDUCE_SUM, true, false, false, 0.2, 0, false, 1000}, /* frozen bias */
        {TN_REDUCE_MEAN, true, true, true, 0.1, 0, true, 1000},   /* no-grad mode */
        {TN_REDUCE_MEAN, true, true, true, 0.1, -0.6, false, 50},
        {TN_REDUCE_SUM, false, false, false, 0.0, 1.7, false, 50},
        {TN_REDUCE_NONE, true, true, true, 0.0, 0, false, 50},
    };
    const tn_dtype dts[2] = {TN_F64, TN_F32};
    for (int d = 0; d < 2; d++)
        for (size_t k = 0; k < sizeof s / sizeof s[0]; k++)
            compare(dts[d], &s[k]);
    printf("fused vs unfused, worst relative error: float64 %.3g, float32 %.3g\n", worst[0],
           worst[1]);
}

/* Two backward passes over one recording, upstream 2.5 and then 1 (the
 * kept G is rescaled in place): the gradients of each equal a fresh
 * recording's times the upstream gradient. Both ways compute the same
 * products of the same G scaled once by 2.5 (float64): 1e-14. */
static void test_twice(int64_t v)
{
    tn_tape *tp = tn_tape_new(), *tp1 = tn_tape_new();
    tn_tensor *h = tn_tensor_new(TN_F64, 2, (int64_t[]){20, 8});
    tn_tensor *w = tn_tensor_new(TN_F64, 2, (int64_t[]){v, 8});
    tn_tensor *b = tn_tensor_new(TN_F64, 1, (int64_t[]){v});
    tn_tensor_uniform(h, &rng, -1, 1), tn_tensor_uniform(w, &rng, -1, 1);
    tn_tensor_set_requires_grad(h, true), tn_tensor_set_requires_grad(w, true);
    tn_tensor_set_requires_grad(b, true);
    int32_t tv[20];
    for (int i = 0; i < 20; i++)
        tv[i] = (int32_t)((5 * i + 2) % v);
    tn_tensor *tg = tn_tensor_from(TN_I32, 1, (int64_t[]){20}, tv);
    tn_tensor *src[3] = {h, w, b};
    double *ref[3];
    tn_tensor *y1 = tn_linear_cross_entropy(tp1, h, w, b, tg, NULL, -100, 0.1, TN_REDUCE_MEAN);
    CHECK(y1 && tn_backward(tp1, y1) == TN_OK);
    for (int q = 0; q < 3; q++) {
        ref[q] = malloc(sizeof(double) * (size_t)tn_numel(src[q]));
        for (int64_t i = 0; i < tn_numel(src[q]); i++)
            ref[q][i] = tn_tensor_grad_get(src[q], i);
    }
    tn_tensor *y = tn_linear_cross_entropy(tp, h, w, b, tg, NULL, -100, 0.1, TN_REDUCE_MEAN);
    tn_tensor *y2 = tn_scale(tp, y, 2.5);
    for (int pass = 0; pass < 2; pass++) {
        for (int q = 0; q < 3; q++)
            tn_tensor_zero_grad(src[q]);
        CHECK(tn_backward(tp, pass ? y : y2) == TN_OK);
        double f = pass ? 1.0 : 2.5;
        for (int q = 0; q < 3; q++)
            for (int64_t i = 0; i < tn_numel(src[q]); i++)
                CHECK_NEAR(tn_tensor_grad_get(src[q], i), f * ref[q][i],
                           1e-14 * (1 + fabs(f * ref[q][i])));
    }
    for (int q = 0; q < 3; q++)
        free(ref[q]), tn_tensor_free(src[q]);
    tn_tensor_free(tg);
    tn_tape_free(tp), tn_tape_free(tp1);
}

/* Every counted row ignored: mean NaN (0/0, PyTorch too), sum 0, zero
 * gradients. */
static void test_all_ignored(void)
{
    tn_tape *tp = tn_tape_new();
    tn_tensor *h = tn_tensor_new(TN_F64, 2, (int64_t[]){3, 2});
    tn_tensor *w = tn_tensor_new(TN_F64, 2, (int64_t[]){4, 2});
    tn_tensor_uniform(h, &rng, -1, 1), tn_tensor_uniform(w, &rng, -1, 1);
    tn_tensor_set_requires_grad(h, true), tn_tensor_set_requires_grad(w, true);
    tn_tensor *tg = tn_tensor_from(TN_I32, 1, (int64_t[]){3}, (int32_t[]){-1, -1, -1});
    tn_tensor *m = tn_linear_cross_entropy(tp, h, w, NULL, tg, NULL, -1, 0.1, TN_REDUCE_MEAN);
    tn_tensor *s = tn_linear_cross_entropy(tp, h, w, NULL, tg, NULL, -1, 0.1, TN_REDUCE_SUM);
    CHECK(m && s && isnan(tn_tensor_get(m, 0)) && tn_tensor_get(s, 0) == 0);
    CHECK(m && tn_backward(tp, m) == TN_OK);
    for (int i = 0; i < 6; i++)
        CHECK(tn_tensor_grad_get(h, i) == 0);
    for (int i = 0; i < 8; i++)
        CHECK(tn_tensor_grad_get(w, i) == 0);
    tn_tensor_free(h), tn_tensor_free(w), tn_tensor_free(tg);
    tn_tape_free(tp);
}

static void test_errors(void)
{
    tn_tape *tp = tn_tape_new();
    tn_tensor *h = tn_tensor_new(TN_F32, 2, (int64_t[]){4, 3});
    tn_tensor *h1 = tn_tensor_new(TN_F32, 1, (int64_t[]){12});
    tn_tensor *w = tn_tensor_new(TN_F32, 2, (int64_t[]){5, 3});
    tn_tensor *w4 = tn_tensor_new(TN_F32, 2, (int64_t[]){5, 4});
    tn_tensor *w64 = tn_tensor_new(TN_F64, 2, (int64_t[]){5, 3});
    tn_tensor *b = tn_tensor_new(TN_F32, 1, (int64_t[]){5});
    tn_tensor *b4 = tn_tensor_new(TN_F32, 1, (int64_t[]){4});
    tn_tensor *tg = tn_tensor_from(TN_I32, 1, (int64_t[]){4}, (int32_t[]){0, 4, -100, 1});
    tn_tensor *tg5 = tn_tensor_from(TN_I32, 1, (int64_t[]){5}, (int32_t[]){0, 4, 1, 1, 2});
    tn_tensor *tgbad = tn_tensor_from(TN_I32, 1, (int64_t[]){4}, (int32_t[]){0, 5, 1, 1});
    tn_tensor *tgf = tn_tensor_new(TN_F32, 1, (int64_t[]){4});
    tn_tensor *cw = tn_tensor_new(TN_F32, 1, (int64_t[]){5});
    tn_tensor *cw3 = tn_tensor_new(TN_F32, 1, (int64_t[]){3});
    tn_tensor *cwg = tn_tensor_new(TN_F32, 1, (int64_t[]){5});
    tn_tensor *cwneg = tn_tensor_from(TN_F32, 1, (int64_t[]){5}, (float[]){1, 1, -2, 1, 1});
    tn_tensor *cwnan = tn_tensor_from(TN_F32, 1, (int64_t[]){5}, (float[]){1, NAN, 1, 1, 1});
    tn_tensor_fill(cw, 1), tn_tensor_fill(cwg, 1);
    tn_tensor_set_requires_grad(cwg, true);
    /* a weight view whose rows overlap (row stride 1, column stride 1):
     * no BLIS layout */
    tn_node wbad_node = *tn__node(w);
    tn_tensor *wbad = &wbad_node.pub;
    wbad->stride[0] = 1;
    struct {
        tn_tensor *h, *w, *b, *tg, *cw;
        double eps;
        int red;
        tn_status st;
        const char *msg;
    } bad[] = {
        {h, w, b, NULL, NULL, 0, 0, TN_ERR_ARG, "targets is NULL"},
        {h1, w, b, tg, NULL, 0, 0, TN_ERR_SHAPE, "h [12] must be [N, H] and weight [5, 3]"},
        {h, w4, b, tg, NULL, 0, 0, TN_ERR_SHAPE, "h [4, 3] must be [N, H] and weight [5, 4]"},
        {h, w64, b, tg, NULL, 0, 0, TN_ERR_DTYPE, "mixed dtypes"},
        {h, w, b4, tg, NULL, 0, 0, TN_ERR_SHAPE, "bias [4] must be [V] = [5] for weight [5, 3]"},
        {h, w, b, tgf, NULL, 0, 0, TN_ERR_DTYPE, "targets [4] must be int32, got float32"},
        {h, w, b, tg5, NULL, 0, 0, TN_ERR_SHAPE, "targets [5] must be [N] = [4] for h [4, 3]"},
        {h, w, b, tgbad, NULL, 0, 0, TN_ERR_INDEX, "target 5 at position 1 is out of range [0, 5)"},
        {h, w, b, tg, cw3, 0, 0, TN_ERR_SHAPE, "class_weight [3] must be [V] = [5]"},
        {h, w, b, tg, cwg, 0, 0, TN_ERR_ARG, "class_weight [5] requires grad"},
        {h, w, b, tg, cwneg, 0, 0, TN_ERR_ARG, "class_weight[2] = -2"},
        {h, w, b, tg, cwnan, 0, 0, TN_ERR_ARG, "class_weight[1] = nan"},
        {h, w, b, tg, cw, -0.1, 0, TN_ERR_ARG, "label_smoothing -0.1 is outside [0, 1] (h [4, 3])"},
        {h, w, b, tg, cw, 1.5, 0, TN_ERR_ARG, "label_smoothing 1.5 is outside [0, 1]"},
        {h, w, b, tg, cw, NAN, 0, TN_ERR_ARG, "label_smoothing nan is outside [0, 1]"},
        {h, w, b, tg, cw, 0, 7, TN_ERR_ARG, "unknown reduction 7"},
        {h, wbad, b, tg, cw, 0, 0, TN_ERR_ARG, "layout BLIS cannot take"},
        {NULL, w, b, tg, cw, 0, 0, TN_ERR_ARG, "input 0 is NULL"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        tn_tape_reset(tp);
        tn_clear_error();
        CHECK(tn_linear_cross_entropy(tp, bad[k].h, bad[k].w, bad[k].b, bad[k].tg, bad[k].cw, -100,
                                      bad[k].eps, (tn_reduction)bad[k].red) == NULL);
        CHECK(tn_tape_status(tp) == bad[k].st);
        CHECK_MSG(tn_tape_error(tp), "linear_cross_entropy: ");
        CHECK_MSG(tn_tape_error(tp), bad[k].msg);
    }
    /* after a failure a NULL input is quiet: the first error stays */
    tn_tape_reset(tp);
    CHECK(tn_linear_cross_entropy(tp, h, w, b4, tg, NULL, -100, 0, TN_REDUCE_MEAN) == NULL);
    CHECK(tn_linear_cross_entropy(tp, NULL, w, b, tg, NULL, -100, 0, TN_REDUCE_MEAN) == NULL);
    CHECK_MSG(tn_tape_error(tp), "bias [4]");
    /* and a NULL tape fails without a tape */
    CHECK(tn_linear_cross_entropy(NULL, h, w, b, tg, NULL, -100, 0, TN_REDUCE_MEAN) == NULL);
    CHECK_MSG(tn_last_error(), "linear_cross_entropy: tape is NULL");
    tn_tensor *all[] = {h, h1, w, w4, w64, b, b4, tg, tg5, tgbad, tgf, cw, cw3, cwg, cwneg, cwnan};
    for (size_t k = 0; k < sizeof all / sizeof all[0]; k++)
        tn_tensor_free(all[k]);
    tn_tape_free(tp);
}

/* ---- PyTorch parity ---- */

static void test_parity(const fixture *fx, const char *name, tn_dtype dt)
{
    char key[128];
#define FX(field) (snprintf(key, sizeof key, "%s." field, name), fixture_get(fx, key))
    const fixture_tensor *fh = FX("h"), *fw = FX("weight"), *fb = FX("bias"), *ft = FX("targets");
    const fixture_tensor *fc = FX("class_weight"), *fi = FX("ignore"), *fe = FX("smoothing");
    const fixture_tensor *fdy = FX("dy");
#undef FX
    CHECK(fh && fw && ft && fi && fe && fdy);
    if (!fh || !fw || !ft || !fi || !fe || !fdy)
        return;
    tn_tape *tp = tn_tape_new();
    tn_tensor *h = fixture_to_tensor(fh, dt), *w = fixture_to_tensor(fw, dt),
              *b = fixture_to_tensor(fb, dt);
    tn_tensor *tg = fixture_to_tensor(ft, TN_I32), *cw = fixture_to_tensor(fc, dt);
    tn_tensor *dy = fixture_to_tensor(fdy, dt);
    tn_tensor_set_requires_grad(h, true), tn_tensor_set_requires_grad(w, true);
    if (b)
        tn_tensor_set_requires_grad(b, true);
    const char *reds[3] = {"mean", "sum", "none"};
    double tol = dt == TN_F32 ? 1e-5 : 1e-12, worst_e = 0;
    for (int r = 0; r < 3; r++) {
        tn_tape_reset(tp);
        tn_tensor_zero_grad(h), tn_tensor_zero_grad(w);
        if (b)
            tn_tensor_zero_grad(b);
        tn_reduction red = r == 0 ? TN_REDUCE_MEAN : r == 1 ? TN_REDUCE_SUM : TN_REDUCE_NONE;
        tn_tensor *y =
            tn_linear_cross_entropy(tp, h, w, b, tg, cw, (int64_t)fi->data[0], fe->data[0], red);
        CHECK(y);
        if (!y)
            continue;
        CHECK((r == 2 ? tn_backward_from(tp, y, dy) : tn_backward(tp, y)) == TN_OK);
        const char *parts[4] = {"", ".dh", ".dweight", ".dbias"};
        tn_tensor *got[4] = {y, h, w, b};
        for (int q = 0; q < 4; q++) {
            snprintf(key, sizeof key, "%s.%s%s", name, reds[r], parts[q]);
            const fixture_tensor *f = q == 3 && !b ? NULL : fixture_need(fx, key);
            if (!f)
                continue;
            CHECK(tn_numel(got[q]) == f->numel);
            double e = rel_err(got[q], q > 0, f->data, f->numel);
            worst_e = fmax(worst_e, e);
            CHECK(e <= tol);
            if (!(e <= tol))
                fprintf(stderr, "  parity %s %s: %s rel err %.3g > %g\n", tn_dtype_name(dt), name,
                        key, e, tol);
        }
    }
    printf("PyTorch parity %s %s: worst relative error %.3g\n", name, tn_dtype_name(dt), worst_e);
    tn_tensor_free(h), tn_tensor_free(w), tn_tensor_free(b), tn_tensor_free(tg);
    tn_tensor_free(cw), tn_tensor_free(dy);
    tn_tape_free(tp);
}

/* The fixture's cases in both dtypes; 77 (skip) without TN_FIXTURES. */
static int run_parity(void)
{
    fixture f = {0};
    int rc = fixture_open(&f, "linear_loss.bin", "test_linear_loss");
    if (rc)
        return rc;
    const char *cases[3] = {"wls", "cls", "full"};
    const tn_dtype dts[2] = {TN_F64, TN_F32};
    for (int k = 0; k < 6; k++)
        test_parity(&f, cases[k % 3], dts[k / 3]);
    fixture_free(&f);
    return 0;
}

int main(void)
{
    tn_rng_seed(&rng, 22);
    test_unfused(); /* V 1000: one block of 300 rows */
    /* the block loop's edges from these small shapes: 256 * 1000 floats
     * a block, so at V 1000 blocks of 256 rows (float32) or 128 (float64) */
    tn__lce_block_bytes = 256 * 1000 * 4;
    test_unfused();
    test_twice(6);   /* G kept: 20 x 6 <= (20 + 6) x 8 */
    test_twice(300); /* gradient buffers */
    test_all_ignored();
    test_errors();
    int parity = run_parity();
    int rc = check_report("test_linear_loss");
    return rc ? rc : parity;
}
