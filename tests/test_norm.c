/* tests/test_norm.c - tn_layer_norm: PyTorch's values and gradients
 * (tests/fixtures/layer_norm.bin from tests/gen_norm_fixtures.py) in
 * float64 and float32, the parallel path and a strided weight against a
 * naive double loop, bad arguments, and the LayerNorm layer
 * (tn_layer_norm_init / tn_layer_norm_forward).
 *
 * Tolerances, |got - want| <= tol * (1 + |want|) unless stated:
 *   float64 against PyTorch: both compute in double, rows of <= 140
 *     elements: a few ulps times the row's condition |x - mean| / std
 *     (<= ~3 for normal data): 1e-12. Case "offset" (x ~ 100 with a spread
 *     of 0.01) loses another |mean| / std = 1e4 to the cancellation in
 *     x - mean, in PyTorch as here: 1e-9 (measured 1.8e-11).
 *   float32 against PyTorch: the inputs are rounded to float (6e-8
 *     relative), amplified by the same conditions, then a float rounding
 *     of each result: 2e-6 (measured <= 3e-7). Case "offset" is skipped in
 *     float32: rounding x ~ 100 to float moves it by 4e-6, 4e-4 of the row's
 *     spread, so float32 cannot agree with the double reference there (the
 *     op's float32 sums in double are checked on the naive case instead).
 *   naive double loop, same inputs: 1e-12 (float64; measured 6e-15),
 *     1e-6 (float32: the naive loop runs on the float inputs in double, the
 *     op sums in double too and rounds y and the gradients to float once:
 *     half an ulp, 6e-8; measured 5e-8).
 * The test prints the worst errors it measured.
 */
#include "check.h"
#include "white_box.h"
#include "fixture_check.h"
#include "tensor/nn.h"
#include "tensor/ops.h"

#include <stdlib.h>

static tn_rng rng;
/* max |got - want| / (1 + |want|) of y, dx, dweight, dbias by source */
enum { PAR64, PAR64_OFFSET, PAR32, NAIVE64, NAIVE32, NSRC };
static const char *src_name[NSRC] = {"PyTorch f64", "PyTorch f64 offset", "PyTorch f32",
                                     "naive f64", "naive f32"};
static double worst[NSRC][4];

/* layer_norm of x [rows, D] (row-major) in double; w, b may be NULL; dy
 * seeds the gradients dx [rows, D], dw [D], db [D]. */
static void ln_naive(const double *x, int64_t rows, int64_t D, const double *w, const double *b,
                     double eps, const double *dy, double *y, double *dx, double *dw, double *db)
{
    for (int64_t k = 0; k < D; k++)
        dw[k] = db[k] = 0;
    for (int64_t r = 0; r < rows; r++) {
        const double *px = x + r * D, *pd = dy + r * D;
        double mean = 0, var = 0;
        for (int64_t k = 0; k < D; k++)
            mean += px[k];
        mean /= (double)D;
        for (int64_t k = 0; k < D; k++)
            var += (px[k] - mean) * (px[k] - mean);
        double rstd = 1 / sqrt(var / (double)D + eps), mg = 0, mgx = 0;
        for (int64_t k = 0; k < D; k++) {
            double xh = (px[k] - mean) * rstd, g = pd[k] * (w ? w[k] : 1);
            y[r * D + k] = xh * (w ? w[k] : 1) + (b ? b[k] : 0);
            mg += g / (double)D;
            mgx += g * xh / (double)D;
            dw[k] += pd[k] * xh;
            db[k] += pd[k];
        }
        for (int64_t k = 0; k < D; k++) {
            double xh = (px[k] - mean) * rstd, g = pd[k] * (w ? w[k] : 1);
            dx[r * D + k] = rstd * (g - mg - xh * mgx);
        }
    }
}

/* Compare got[i] for i < n with want, recording the worst error in
 * worst[src][what]. */
static void compare(const char *what_name, int src, int what, int64_t n, const double *got,
                    const double *want, double tol)
{
    double e = 0;
    for (int64_t i = 0; i < n; i++) {
        double ei = fabs(got[i] - want[i]) / (1 + fabs(want[i]));
        if (!(ei <= e))
            e = ei;
    }
    if (e > worst[src][what])
        worst[src][what] = e;
    check_count++;
    if (!(e <= tol)) {
        check_failures++;
        fprintf(stderr, "FAIL %s (%s): max rel err %.3g > %.3g\n", what_name, src_name[src], e,
                tol);
    }
}

/* ---- PyTorch parity ---- */

static void test_parity(const fixture *fx, const char *name, tn_dtype dt)
{
    char key[128];
    bool transposed = strcmp(name, "transposed") == 0, offset = strcmp(name, "offset") == 0;
    if (offset && dt == TN_F32)
        return; /* see the tolerances above */
    double tol = dt == TN_F32 ? 2e-6 : offset ? 1e-9 : 1e-12;
    int src = dt == TN_F32 ? PAR32 : offset ? PAR64_OFFSET : PAR64;
#define GET(v, suffix, need)                       \
    snprintf(key, sizeof key, "%s." suffix, name); \
    const fixture_tensor *v = need ? fixture_need(fx, key) : fixture_get(fx, key)
    GET(fxx, "x", 1);
    GET(feps, "eps", 1);
    GET(fdy, "dy", 1);
    GET(fy, "y", 1);
    GET(fdx, "dx", 1);
    GET(fw, "weight", 0);
    GET(fb, "bias", 0);
    GET(fdw, "dweight", 0);
    GET(fdb, "dbias", 0);
#undef GET
    if (!fxx || !feps || !fdy || !fy || !fdx || (fw && !fdw) || (fb && !fdb))
        return;
    tn_tape *tp = tn_tape_new();
    tn_tensor *x = fixture_to_tensor(fxx, dt), *w = fixture_to_tensor(fw, dt);
    tn_tensor *b = fixture_to_tensor(fb, dt), *dy = fixture_to_tensor(fdy, dt);
    tn_tensor_set_requires_grad(x, true);
    if (w)
        tn_tensor_set_requires_grad(w, true);
    if (b)
        tn_tensor_set_requires_grad(b, true);
    tn_tensor *xin = transposed ? tn_transpose(tp, x, 0, 1) : x;
    tn_tensor *y = tn_layer_norm(tp, xin, w, b, feps->data[0]);
    CHECK(y && tn_numel(y) == fy->numel && y->ndim == fy->ndim);
    if (y && tn_backward_from(tp, y, dy) == TN_OK) {
        int64_t n = fy->numel, D = fy->shape[fy->ndim - 1];
        double *got = malloc(sizeof(double) * (size_t)n);
        for (int64_t i = 0; i < n; i++)
            got[i] = tn_tensor_get(y, i);
        snprintf(key, sizeof key, "%s y", name);
        compare(key, src, 0, n, got, fy->data, tol);
        for (int64_t i = 0; i < n; i++) /* x's grad in the layout of y */
            got[i] = tn_tensor_grad_get(x, transposed ? (i % D) * (n / D) + i / D : i);
        snprintf(key, sizeof key, "%s dx", name);
        compare(key, src, 1, n, got, fdx->data, tol);
        for (int k = 0; k < 2; k++) {
            tn_tensor *p = k ? b : w;
            const fixture_tensor *fg = k ? fdb : fdw;
            if (!p)
                continue;
            for (int64_t i = 0; i < D; i++)
                got[i] = tn_tensor_grad_get(p, i);
            snprintf(key, sizeof key, "%s %s", name, k ? "dbias" : "dweight");
            compare(key, src, 2 + k, D, got, fg->data, tol);
        }
        free(got);
    } else {
        CHECK(!"layer_norm or its backward failed");
    }
    tn_tensor_free(x), tn_tensor_free(w), tn_tensor_free(b), tn_tensor_free(dy);
    tn_tape_free(tp);
}

/* The fixture's cases in both dtypes; 77 (skip) without TN_FIXTURES. */
static int run_parity(void)
{
    fixture f = {0};
    int rc = fixture_open(&f, "layer_norm.bin", "test_norm");
    if (rc)
        return rc;
    const char *cases[] = {"small",     "seq",    "plain", "weight_only",
                           "bias_only", "offset", "wide",  "transposed"};
    const tn_dtype dts[2] = {TN_F64, TN_F32};
    for (int d = 0; d < 2; d++)
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
            test_parity(&f, cases[c], dts[d]);
    fixture_free(&f);
    return 0;
}

/* ---- naive loop: the parallel path, a strided weight, values ~100 ---- */

static void test_naive(tn_dtype dt, int64_t rows, int64_t D, double offset, bool strided_w)
{
    tn_tape *tp = tn_tape_new();
    tn_tensor *x = tn_tensor_new(dt, 2, (int64_t[]){rows, D});
    tn_tensor_uniform(x, &rng, offset - 2, offset + 2);
    tn_tensor_set_requires_grad(x, true);
    /* weight: every other element of a [2D] heap tensor when strided_w */
    tn_tensor *w2 = tn_tensor_new(dt, 1, (int64_t[]){strided_w ? 2 * D : D});
    tn_tensor_uniform(w2, &rng, 0.5, 1.5);
    tn_tensor_set_requires_grad(w2, true);
    tn_tensor_zero_grad(w2);
    tn_node wview_node = *tn__node(w2);
    tn_tensor *wview = &wview_node.pub; /* shares w2's data and (allocated) grad */
    if (strided_w) {
        wview->shape[0] = D;
        wview->stride[0] = 2;
    }
    tn_tensor *w = strided_w ? wview : w2;
    tn_tensor *b = tn_tensor_new(dt, 1, (int64_t[]){D});
    tn_tensor_uniform(b, &rng, -1, 1);
    tn_tensor_set_requires_grad(b, true);
    tn_tensor *dy = tn_tensor_new(dt, 2, (int64_t[]){rows, D});
    tn_tensor_uniform(dy, &rng, -1, 1);
    double *xv = check_values(x), *dyv = check_values(dy), *bv = check_values(b);
    double *w2v = check_values(w2), *wv = malloc(sizeof(double) * (size_t)D);
    for (int64_t k = 0; k < D; k++)
        wv[k] = w2v[strided_w ? 2 * k : k];
    size_t nb = sizeof(double) * (size_t)(rows * D);
    double *y = malloc(nb), *dx = malloc(nb), *dw = malloc(sizeof(double) * (size_t)D);
    double *db = malloc(sizeof(double) * (size_t)D), *got = malloc(nb);
    ln_naive(xv, rows, D, wv, bv, 1e-5, dyv, y, dx, dw, db);
    tn_tensor *out = tn_layer_norm(tp, x, w, b, 1e-5);
    tn_status st = out ? tn_backward_from(tp, out, dy) : TN_ERR_ARG;
    CHECK(st == TN_OK);
    if (st != TN_OK)
        fprintf(stderr, "test_naive: %s\n", tn_tape_error(tp));
    if (st == TN_OK) {
        double tol = dt == TN_F32 ? 1e-6 : 1e-12;
        int src = dt == TN_F32 ? NAIVE32 : NAIVE64;
        for (int64_t i = 0; i < rows * D; i++)
            got[i] = tn_tensor_get(out, i);
        compare("naive y", src, 0, rows * D, got, y, tol);
        for (int64_t i = 0; i < rows * D; i++)
            got[i] = tn_tensor_grad_get(x, i);
        compare("naive dx", src, 1, rows * D, got, dx, tol);
        for (int64_t k = 0; k < D; k++)
            got[k] = tn_tensor_grad_get(w2, strided_w ? 2 * k : k);
        compare("naive dweight", src, 2, D, got, dw, tol);
        for (int64_t k = 0; strided_w && k < D; k++) /* the skipped elements get nothing */
            CHECK(tn_tensor_grad_get(w2, 2 * k + 1) == 0);
        for (int64_t k = 0; k < D; k++)
            got[k] = tn_tensor_grad_get(b, k);
        compare("naive dbias", src, 3, D, got, db, tol);
    }
    free(xv), free(dyv), free(bv), free(w2v), free(wv), free(y), free(dx), free(dw), free(db);
    free(got);
    tn_tensor_free(x), tn_tensor_free(w2), tn_tensor_free(b), tn_tensor_free(dy);
    tn_tape_free(tp);
}

/* ---- bad arguments ---- */

static void test_errors(void)
{
    tn_tape *tp = tn_tape_new();
    tn_tensor *x = tn_tensor_new(TN_F32, 2, (int64_t[]){2, 3});
    tn_tensor_fill(x, 1);
    tn_tensor *w3 = tn_tensor_new(TN_F32, 1, (int64_t[]){3});
    tn_tensor *w4 = tn_tensor_new(TN_F32, 1, (int64_t[]){4});
    tn_tensor *w2d = tn_tensor_new(TN_F32, 2, (int64_t[]){1, 3});
    tn_tensor *w64 = tn_tensor_new(TN_F64, 1, (int64_t[]){3});
    tn_tensor *xi = tn_tensor_new(TN_I32, 2, (int64_t[]){2, 3});
    struct {
        tn_tensor *x, *w, *b;
        double eps;
        tn_status st;
        const char *msg[2];
    } bad[] = {
        {x, w4, NULL, 1e-5, TN_ERR_SHAPE, {"weight [4] must be [D] = [3]", "x [2, 3]"}},
        {x, NULL, w4, 1e-5, TN_ERR_SHAPE, {"bias [4] must be [D] = [3]", "x [2, 3]"}},
        {x, w2d, NULL, 1e-5, TN_ERR_SHAPE, {"weight [1, 3]", "x [2, 3]"}},
        {x, w3, w64, 1e-5, TN_ERR_DTYPE, {"bias [3] is float64", "x [2, 3] is float32"}},
        {x, w64, NULL, 1e-5, TN_ERR_DTYPE, {"weight [3] is float64", "x [2, 3]"}},
        {x, w3, NULL, 0, TN_ERR_ARG, {"eps = 0 must be finite and > 0", "x [2, 3]"}},
        {x, w3, NULL, -1e-5, TN_ERR_ARG, {"eps = -1e-05", "x [2, 3]"}},
        {x, w3, NULL, NAN, TN_ERR_ARG, {"eps = nan", "x [2, 3]"}},
        {x, w3, NULL, INFINITY, TN_ERR_ARG, {"eps = inf", "x [2, 3]"}},
        {xi, NULL, NULL, 1e-5, TN_ERR_DTYPE, {"", ""}},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        tn_tape_reset(tp);
        CHECK(tn_layer_norm(tp, bad[k].x, bad[k].w, bad[k].b, bad[k].eps) == NULL);
        CHECK(tn_last_status() == bad[k].st);
        CHECK_MSG(tn_tape_error(tp), "layer_norm");
        CHECK_MSG(tn_tape_error(tp), bad[k].msg[0]);
        CHECK_MSG(tn_tape_error(tp), bad[k].msg[1]);
    }
    /* x NULL fails; on a failed tape the call returns NULL quietly */
    tn_tape_reset(tp);
    CHECK(tn_layer_norm(tp, NULL, NULL, NULL, 1e-5) == NULL);
    CHECK_MSG(tn_tape_error(tp), "layer_norm");
    CHECK(tn_layer_norm(tp, x, w3, NULL, 1e-5) == NULL);
    /* 1-D x works; a good call after a reset */
    tn_tape_reset(tp);
    tn_tensor *x1 = tn_tensor_from(TN_F32, 1, (int64_t[]){4}, (float[]){1, 2, 3, 4});
    tn_tensor *y = tn_layer_norm(tp, x1, NULL, NULL, 1e-5);
    CHECK(y && y->ndim == 1 && y->shape[0] == 4);
    if (y)
        CHECK_NEAR(tn_tensor_get(y, 0), -1.5 / sqrt(1.25 + 1e-5), 1e-6);
    tn_tensor_free(x), tn_tensor_free(w3), tn_tensor_free(w4), tn_tensor_free(w2d);
    tn_tensor_free(w64), tn_tensor_free(xi), tn_tensor_free(x1);
    tn_tape_free(tp);
}

/* ---- the layer ---- */

/* Parameters named as nn.LayerNorm's, ones and zeros; forward is the op on
 * them exactly; gradients reach them; without affine none; bad arguments. */
static void test_layer(void)
{
    tn_params ps;
    tn_params_init(&ps);
    tn_layernorm ln, plain;
    CHECK(tn_layer_norm_init(&ln, &ps, "ln", 6, 1e-5, true, TN_F32) == TN_OK);
    CHECK(tn_layer_norm_init(&plain, &ps, "plain", 6, 1e-3, false, TN_F32) == TN_OK);
    CHECK(ln.weight == tn_params_get(&ps, "ln.weight") && ln.weight);
    CHECK(ln.bias == tn_params_get(&ps, "ln.bias") && ln.bias);
    CHECK(!plain.weight && !plain.bias && tn_params_numel(&ps) == 12);
    for (int64_t k = 0; ln.weight && ln.bias && k < 6; k++)
        CHECK(tn_tensor_get(ln.weight, k) == 1 && tn_tensor_get(ln.bias, k) == 0);
    if (!ln.weight || !ln.bias) {
        tn_params_free(&ps);
        return;
    }
    tn_tensor_uniform(ln.weight, &rng, 0.5, 1.5);
    tn_tensor_uniform(ln.bias, &rng, -1, 1);
    tn_tape *tp = tn_tape_new();
    tn_tensor *x = tn_tensor_new(TN_F32, 3, (int64_t[]){2, 3, 6});
    tn_tensor_uniform(x, &rng, -2, 2);
    tn_tensor *y = tn_layer_norm_forward(tp, &ln, x);
    tn_tensor *want = tn_layer_norm(tp, x, ln.weight, ln.bias, 1e-5);
    tn_tensor *yp = tn_layer_norm_forward(tp, &plain, x);
    tn_tensor *wantp = tn_layer_norm(tp, x, NULL, NULL, 1e-3);
    CHECK(y && want && yp && wantp);
    if (y && want && yp && wantp) {
        CHECK(y->ndim == 3 && y->shape[2] == 6);
        CHECK(memcmp(y->data, want->data, sizeof(float) * 36) == 0);
        CHECK(memcmp(yp->data, wantp->data, sizeof(float) * 36) == 0);
        CHECK(tn_backward(tp, tn_sum(tp, tn_mul(tp, y, y))) == TN_OK);
        double gw = 0, gb = 0;
        for (int64_t k = 0; k < 6; k++)
            gw += fabs(tn_tensor_grad_get(ln.weight, k)),
                gb += fabs(tn_tensor_grad_get(ln.bias, k));
        CHECK(gw > 0 && gb > 0);
    }
    /* a last dim other than dim fails the tape naming layer_norm */
    tn_tape_reset(tp);
    tn_tensor *x5 = tn_tensor_new(TN_F32, 2, (int64_t[]){2, 5});
    CHECK(tn_layer_norm_forward(tp, &plain, x5) == NULL);
    CHECK(tn_last_status() == TN_ERR_SHAPE);
    CHECK_MSG(tn_tape_error(tp), "tn_layer_norm_forward: input [2, 5], expected a last dim of 6");
    tn_layernorm bad;
    CHECK(tn_layer_norm_init(&bad, &ps, "bad", 0, 1e-5, true, TN_F32) == TN_ERR_ARG);
    CHECK(tn_layer_norm_init(&bad, &ps, "bad", 4, 0, true, TN_F32) == TN_ERR_ARG);
    CHECK(tn_layer_norm_init(&bad, &ps, "bad", 4, NAN, false, TN_F32) == TN_ERR_ARG);
    CHECK_MSG(tn_last_error(), "tn_layer_norm_init");
    tn_tensor_free(x), tn_tensor_free(x5);
    tn_tape_free(tp);
    tn_params_free(&ps);
}

int main(void)
{
    tn_rng_seed(&rng, 23);
    const tn_dtype dts[2] = {TN_F64, TN_F32};
    for (int k = 0; k < 2; k++) {
        test_naive(dts[k], 300, 130, 0, false);  /* 39000 elements: the parallel path */
        test_naive(dts[k], 7, 70, 0, true);      /* strided weight, two column blocks */
        test_naive(dts[k], 300, 130, 100, true); /* values ~100, parallel */
    }
    test_errors();
    test_layer();
    int parity = run_parity();
    const char *what[4] = {"y", "dx", "dweight", "dbias"};
    printf("%-20s %10s %10s %10s %10s  (max |got - want| / (1 + |want|))\n", "against", what[0],
           what[1], what[2], what[3]);
    for (int d = 0; d < NSRC; d++)
        printf("%-20s %10.3g %10.3g %10.3g %10.3g\n", src_name[d], worst[d][0], worst[d][1],
               worst[d][2], worst[d][3]);
    int rc = check_report("test_norm");
    return rc ? rc : parity;
}
