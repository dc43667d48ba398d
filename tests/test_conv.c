/* tests/test_conv.c - tn_conv2d, tn_conv1d and the pools: PyTorch's values
 * and gradients (tests/fixtures/conv.bin from tests/gen_conv_fixtures.py)
 * in float64 and float32, the GEMM kernels against their naive direct-loop
 * twins (tn__conv2d_naive, tn__conv2d_backward_naive) on every path
 * (images split over threads, images in turn on BLIS's threads, 1x1
 * without columns, groups, 1 and 2 threads), bad arguments, a small CNN
 * into an RNN-shaped [B, T, C], an allocation-failure sweep over a CNN
 * step (SWEEP_DEBUG=1 prints where each failure was seen), and no heap
 * allocation in a CNN's steady-state training step; the Conv2d / Conv1d
 * layers (tn_conv2d_init, tn_conv1d_init): shapes, names, nn.Conv2d's
 * init bound, their forward = the op, their argument checks.
 *
 * Tolerances, |got - want| <= tol * (1 + |want|):
 *   float64 against PyTorch: both sum at most a few hundred products in
 *     double, in other orders: 1e-12 (measured ~1e-15).
 *   float32 against PyTorch's float64 results (the fixture's inputs are
 *     float32 values, so both dtypes start from the same numbers): the
 *     only difference is float accumulation in the GEMMs, sums of up to
 *     144 (forward), 216 (dx) and 200 (dweight) products of normal values,
 *     whose rounding grows like sqrt(K) eps |partial sums|; PyTorch's own
 *     float32 results are up to 3e-6 from its float64 ones on these cases
 *     (printed by the generator), so 1e-5 (measured: printed below).
 *     The max-pool tie case uses small integers: exact in both dtypes.
 *   naive twin, same inputs: float64 1e-12 (measured ~5e-14); float32
 *     5e-5: float sums (BLIS) against double ones (the naive loop) of up
 *     to 1600 products of values in [-1, 1] (the one-image case's weight
 *     gradient sums over 40 x 40 positions): rounding of order
 *     sqrt(K) eps |partial sums| ~ 1e-5 against gradients of order 10
 *     (measured 1.2e-5); a wrong index or a missed term is off by O(1).
 */
#include "check.h"
#include "white_box.h"
#include "fixture_check.h"
#include "sweep_alloc.h"
#include "tensor/nn.h"
#include "tensor/ops.h"

#include "../src/ops/ops_internal.h"

#include <omp.h>

static tn_rng rng;
/* worst max |got - want| / (1 + |want|) by source */
enum { PAR64, PAR32, NAIVE64, NAIVE32, NSRC };
static const char *src_name[NSRC] = {"PyTorch f64", "PyTorch f32", "naive f64", "naive f32"};
static double worst[NSRC];

/* Compare n values of got with want, counting a check; on failure name what. */
static void compare(const char *what, int src, int64_t n, const double *got, const double *want,
                    double tol)
{
    double e = 0;
    for (int64_t i = 0; i < n; i++) {
        double ei = fabs(got[i] - want[i]) / (1 + fabs(want[i]));
        if (!(ei <= e))
            e = ei;
    }
    if (e > worst[src])
        worst[src] = e;
    check_count++;
    if (!(e <= tol)) {
        check_failures++;
        fprintf(stderr, "FAIL %s (%s): max rel err %.3g > %.3g\n", what, src_name[src], e, tol);
    }
}

/* t's values (grad: its gradient's) against want (n values). */
static void compare_t(const char *what, int src, const tn_tensor *t, bool grad, const double *want,
                      int64_t n, double tol)
{
    CHECK(t && tn_numel(t) == n);
    if (!t || tn_numel(t) != n)
        return;
    double *got = malloc(sizeof(double) * (size_t)n);
    for (int64_t i = 0; i < n; i++)
        got[i] = grad ? tn_tensor_grad_get(t, i) : tn_tensor_get(t, i);
    compare(what, src, n, got, want, tol);
    free(got);
}

/* ---- PyTorch parity ---- */

static const char *conv_cases[] = {"basic", "s2p1",      "dilated", "groups", "depthwise", "k1",
                                   "k1_s2", "nonsquare", "wide",    "conv1d", "conv1d_k1"};
static const char *pool_cases[] = {"max_k2",      "max_k3s2p1",  "max_ties",   "max1d",
                                   "avg_incl",    "avg_excl",    "avg_k2s1",   "avg1d",
                                   "adaptive_32", "adaptive_11", "adaptive_up"};

/* fx's tensor "<name>.<what>" (NULL when absent; a failed check when need). */
static const fixture_tensor *get(const fixture *fx, const char *name, const char *what, bool need)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", name, what);
    return need ? fixture_need(fx, key) : fixture_get(fx, key);
}

/* A heap tensor of fixture tensor f (NULL for NULL) that requires grad. */
static tn_tensor *param(const fixture_tensor *f, tn_dtype dt)
{
    tn_tensor *t = fixture_to_tensor(f, dt);
    if (t)
        tn_tensor_set_requires_grad(t, true);
    return t;
}

/* Run case name (conv when conv, else a pool) in dtype dt and compare y and
 * the gradients with the fixture. */
static void test_parity(const fixture *fx, const char *name, bool conv, tn_dtype dt)
{
    const fixture_tensor *fxx = get(fx, name, "x", 1), *fdy = get(fx, name, "dy", 1);
    const fixture_tensor *fy = get(fx, name, "y", 1), *fdx = get(fx, name, "dx", 1);
    const fixture_tensor *fg = get(fx, name, "geom", 1);
    const fixture_tensor *fw = conv ? get(fx, name, "weight", 1) : NULL;
    const fixture_tensor *fdw = conv ? get(fx, name, "dweight", 1) : NULL;
    const fixture_tensor *fb = get(fx, name, "bias", 0), *fdb = get(fx, name, "dbias", 0);
    if (!fxx || !fdy || !fy || !fdx || !fg || (conv && (!fw || !fdw)) || (fb && !fdb))
        return;
    double tol = dt == TN_F32 ? 1e-5 : 1e-12;
    int src = dt == TN_F32 ? PAR32 : PAR64;
    tn_tape *tp = tn_tape_new();
    tn_tensor *x = param(fxx, dt), *w = param(fw, dt), *b = param(fb, dt);
    tn_tensor *dy = fixture_to_tensor(fdy, dt), *y = NULL;
    const double *a = fg->data;
    bool one_d = fxx->ndim == 3;
    if (conv && one_d) {
        y = tn_conv1d(tp, x, w, b, (int64_t)a[1], (int64_t)a[3], (int64_t)a[5], (int64_t)a[6]);
    } else if (conv) {
        tn_conv2d_opts o = {(int64_t)a[0], (int64_t)a[1], (int64_t)a[2], (int64_t)a[3],
                            (int64_t)a[4], (int64_t)a[5], (int64_t)a[6]};
        y = tn_conv2d(tp, x, w, b, &o);
    } else if (strncmp(name, "max", 3) == 0) {
        y = (one_d ? tn_max_pool1d : tn_max_pool2d)(tp, x, (int64_t)a[0], (int64_t)a[1],
                                                    (int64_t)a[2]);
    } else if (strncmp(name, "avg", 3) == 0) {
        y = (one_d ? tn_avg_pool1d : tn_avg_pool2d)(tp, x, (int64_t)a[0], (int64_t)a[1],
                                                    (int64_t)a[2], a[3] != 0);
    } else {
        y = tn_adaptive_avg_pool2d(tp, x, (int64_t)a[0], (int64_t)a[1]);
    }
    CHECK(y && y->ndim == fy->ndim);
    if (y && tn_backward_from(tp, y, dy) == TN_OK) {
        char what[160];
        snprintf(what, sizeof what, "%s y", name);
        compare_t(what, src, y, false, fy->data, fy->numel, tol);
        snprintf(what, sizeof what, "%s dx", name);
        compare_t(what, src, x, true, fdx->data, fdx->numel, tol);
        if (w) {
            snprintf(what, sizeof what, "%s dweight", name);
            compare_t(what, src, w, true, fdw->data, fdw->numel, tol);
        }
        if (b) {
            snprintf(what, sizeof what, "%s dbias", name);
            compare_t(what, src, b, true, fdb->data, fdb->numel, tol);
        }
    } else {
        fprintf(stderr, "%s: %s\n", name, tn_last_error());
        CHECK(!"the op or its backward failed");
    }
    tn_tensor_free(x), tn_tensor_free(w), tn_tensor_free(b), tn_tensor_free(dy);
    tn_tape_free(tp);
}

static int run_parity(void)
{
    fixture f = {0};
    int rc = fixture_open(&f, "conv.bin", "test_conv");
    if (rc)
        return rc;
    const tn_dtype dts[2] = {TN_F64, TN_F32};
    for (int d = 0; d < 2; d++) {
        for (size_t c = 0; c < sizeof conv_cases / sizeof conv_cases[0]; c++)
            test_parity(&f, conv_cases[c], true, dts[d]);
        for (size_t c = 0; c < sizeof pool_cases / sizeof pool_cases[0]; c++)
            test_parity(&f, pool_cases[c], false, dts[d]);
    }
    fixture_free(&f);
    return 0;
}

/* ---- the GEMM path against the naive twin ---- */

/* A heap tensor of shape with uniform values in [-1, 1), requiring grad
 * when grad. */
static tn_tensor *rand_t(tn_dtype dt, int nd, const int64_t *shape, bool grad)
{
    tn_tensor *t = tn_tensor_new(dt, nd, shape);
    tn_tensor_uniform(t, &rng, -1, 1);
    if (grad)
        tn_tensor_set_requires_grad(t, true);
    return t;
}

/* The raw values of t (contiguous) as a malloc'd buffer of its dtype. */
static void *raw(const tn_tensor *t)
{
    size_t n = (size_t)tn_numel(t) * tn_dtype_size(t->dtype);
    void *p = malloc(n);
    memcpy(p, t->data, n);
    return p;
}

/* The n values of a buffer of dtype dt as doubles (malloc'd). */
static double *widen(const void *p, int64_t n, tn_dtype dt)
{
    double *v = malloc(sizeof(double) * (size_t)n);
    for (int64_t i = 0; i < n; i++)
        v[i] = dt == TN_F32 ? ((const float *)p)[i] : ((const double *)p)[i];
    return v;
}

/* conv2d of geometry g (B, C, H, W, O, KH, KW and the options; OH, OW are
 * computed) through the op and through the naive twin, on nthreads; bias
 * as a stride-2 view when with_bias, weight frozen unless wgrad. */
static void test_naive(tn_dtype dt, tn__conv_geom g, bool with_bias, bool wgrad, int nthreads,
                       const char *what)
{
    tn_set_num_threads(nthreads);
    g.OH = (g.H + 2 * g.ph - g.dh * (g.KH - 1) - 1) / g.sh + 1;
    g.OW = (g.W + 2 * g.pw - g.dw * (g.KW - 1) - 1) / g.sw + 1;
    int64_t xs[4] = {g.B, g.C, g.H, g.W}, ws[4] = {g.O, g.C / g.G, g.KH, g.KW};
    int64_t ys[4] = {g.B, g.O, g.OH, g.OW};
    tn_tensor *x = rand_t(dt, 4, xs, true), *w = rand_t(dt, 4, ws, wgrad);
    tn_tensor *b2 = rand_t(dt, 1, (int64_t[]){2 * g.O}, true), *dy = rand_t(dt, 4, ys, false);
    tn_node bview_node = *tn__node(b2);
    tn_tensor *bview = &bview_node.pub; /* every other element of b2: shares its data and grad */
    bview->shape[0] = g.O;
    bview->stride[0] = 2;
    tn_tape *tp = tn_tape_new();
    tn_conv2d_opts o = {g.sh, g.sw, g.ph, g.pw, g.dh, g.dw, g.G};
    tn_tensor *y = tn_conv2d(tp, x, w, with_bias ? bview : NULL, &o);
    CHECK(y && tn_backward_from(tp, y, dy) == TN_OK);
    if (!y) {
        fprintf(stderr, "%s: %s\n", what, tn_last_error());
        goto done;
    }
    int64_t nx = tn_numel(x), nw = tn_numel(w), ny = tn_numel(y);
    size_t es = tn_dtype_size(dt);
    /* the naive twin on the same values (bias gathered from the view) */
    void *bias = malloc((size_t)g.O * es), *yn = malloc((size_t)ny * es);
    for (int64_t k = 0; k < g.O; k++)
        memcpy((char *)bias + k * es, (char *)b2->data + 2 * k * es, es);
    void *dxn = calloc((size_t)nx, es), *dwn = calloc((size_t)nw, es),
         *dbn = calloc((size_t)g.O, es);
    void *xr = raw(x), *wr = raw(w), *dyr = raw(dy);
    tn__conv2d_naive(dt, &g, xr, wr, with_bias ? bias : NULL, yn);
    tn__conv2d_backward_naive(dt, &g, xr, wr, dyr, dxn, dwn, dbn);
    double tol = dt == TN_F32 ? 5e-5 : 1e-12;
    int src = dt == TN_F32 ? NAIVE32 : NAIVE64;
    char m[200];
    double *want = widen(yn, ny, dt);
    snprintf(m, sizeof m, "%s: y", what);
    compare_t(m, src, y, false, want, ny, tol);
    free(want);
    want = widen(dxn, nx, dt);
    snprintf(m, sizeof m, "%s: dx", what);
    compare_t(m, src, x, true, want, nx, tol);
    free(want);
    if (wgrad) {
        want = widen(dwn, nw, dt);
        snprintf(m, sizeof m, "%s: dweight", what);
        compare_t(m, src, w, true, want, nw, tol);
        free(want);
    } else {
        CHECK(w->grad == NULL);
    }
    if (with_bias) {
        double *db = widen(dbn, g.O, dt), *got = malloc(sizeof(double) * (size_t)g.O);
        for (int64_t k = 0; k < g.O; k++) {
            got[k] = tn_tensor_grad_get(b2, 2 * k);
            CHECK(tn_tensor_grad_get(b2, 2 * k + 1) == 0); /* skipped by the view */
        }
        snprintf(m, sizeof m, "%s: dbias", what);
        compare(m, src, g.O, got, db, tol);
        free(db), free(got);
    }
    free(bias), free(yn), free(dxn), free(dwn), free(dbn), free(xr), free(wr), free(dyr);
done:
    tn_tape_free(tp);
    tn_tensor_free(x), tn_tensor_free(w), tn_tensor_free(b2), tn_tensor_free(dy);
}

static void run_naive(void)
{
    /* B, C, H, W, O, KH, KW, OH, OW (computed), sh, sw, ph, pw, dh, dw, G */
    static const struct {
        tn__conv_geom g;
        const char *what;
    } geo[] = {
        /* 4 x 32 x 144 x 256 = 4.7M multiply-adds: images split over threads */
        {{4, 16, 16, 16, 32, 3, 3, 0, 0, 1, 1, 1, 1, 1, 1, 1}, "images over threads, 3x3 pad 1"},
        /* one image: its output panels split over the threads */
        {{1, 32, 40, 40, 16, 3, 3, 0, 0, 1, 1, 1, 1, 1, 1, 1}, "one image, 3x3 pad 1"},
        {{3, 8, 9, 11, 6, 3, 2, 0, 0, 2, 1, 2, 1, 2, 3, 2}, "groups 2, stride, dilation, padding"},
        {{5, 64, 16, 16, 64, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 1},
         "1x1 (no columns), images over threads"},
        {{2, 6, 7, 5, 6, 3, 3, 0, 0, 1, 2, 1, 0, 1, 1, 6}, "depthwise, non-square"},
        {{3, 4, 1, 13, 8, 1, 3, 0, 0, 1, 2, 0, 1, 1, 2, 2}, "conv1d shape"},
        /* stride 1, dilation 1, at least 12 channels: float's forward, dx
         * and dW through the kernel table's conv_fw and conv_dw; short
         * blocks of channels and taps, odd sizes */
        {{2, 26, 7, 9, 28, 3, 5, 0, 0, 1, 1, 1, 2, 1, 1, 2},
         "groups 2 of 13 -> 14, 3x5 pad (1, 2)"},
        {{3, 13, 6, 10, 37, 2, 4, 0, 0, 1, 1, 0, 0, 1, 1, 1}, "13 -> 37, 2x4 no padding"},
        {{2, 12, 5, 5, 4, 3, 3, 0, 0, 1, 1, 1, 1, 1, 1, 1}, "12 -> 4 (direct dx only)"},
        {{2, 16, 5, 7, 16, 3, 3, 0, 0, 1, 1, 2, 0, 1, 1, 1},
         "16 -> 16, padding (2, 0): wider than the kernel's half"},
    };
    for (int dti = 0; dti < 2; dti++) {
        tn_dtype dt = dti ? TN_F32 : TN_F64;
        for (size_t k = 0; k < sizeof geo / sizeof geo[0]; k++)
            for (int nt = 1; nt <= 2; nt++)
                test_naive(dt, geo[k].g, k % 2 == 0, k != 4, nt, geo[k].what);
        /* from inside the caller's own parallel region: the library's
         * nested teams have one thread where it asked for two, and every
         * image must still be computed (the first and fourth split them) */
        for (size_t k = 0; k < 4; k += 3)
#pragma omp parallel num_threads(2)
            if (omp_get_thread_num() == 0)
                test_naive(dt, geo[k].g, true, true, 2, "in a parallel region");
    }
    tn_set_num_threads(2);
}

/* ---- bad arguments ---- */

static void test_errors(void)
{
    tn_tape *tp = tn_tape_new();
    tn_tensor *x = tn_tensor_new(TN_F32, 4, (int64_t[]){2, 4, 5, 5});
    tn_tensor *w = tn_tensor_new(TN_F32, 4, (int64_t[]){6, 2, 3, 3});
    tn_tensor *w3 = tn_tensor_new(TN_F32, 3, (int64_t[]){6, 4, 3});
    tn_tensor *b6 = tn_tensor_new(TN_F32, 1, (int64_t[]){6});
    tn_tensor *b5 = tn_tensor_new(TN_F32, 1, (int64_t[]){5});
    tn_tensor *w64 = tn_tensor_new(TN_F64, 4, (int64_t[]){6, 2, 3, 3});
    tn_tensor *x3 = tn_tensor_new(TN_F32, 3, (int64_t[]){2, 4, 9});
    tn_tensor *big = tn_tensor_new(TN_F32, 4, (int64_t[]){6, 2, 7, 7});
    tn_conv2d_opts g2 = tn_conv2d_defaults();
    g2.groups = 2;
    struct {
        tn_tensor *x, *w, *b;
        tn_conv2d_opts o;
        tn_status st;
        const char *msg[2];
    } bad[] = {
        /* groups 1: weight takes 2 channels, x has 4 */
        {x,
         w,
         NULL,
         {1, 1, 0, 0, 1, 1, 1},
         TN_ERR_SHAPE,
         {"x [2, 4, 5, 5] has C_in = 4", "weight [6, 2, 3, 3] with groups 1 takes 2 x 1 = 2"}},
        {x,
         w,
         NULL,
         {1, 1, 0, 0, 1, 1, 3},
         TN_ERR_SHAPE,
         {"groups 3 must divide C_in 4 and C_out 6", "x [2, 4, 5, 5], weight [6, 2, 3, 3]"}},
        {x,
         w,
         b5,
         {1, 1, 0, 0, 1, 1, 2},
         TN_ERR_SHAPE,
         {"bias [5] must be [C_out] = [6]", "weight [6, 2, 3, 3]"}},
        {x,
         w3,
         NULL,
         {1, 1, 0, 0, 1, 1, 1},
         TN_ERR_SHAPE,
         {"x [2, 4, 5, 5] must be [B, C_in, H, W]", "weight [6, 4, 3]"}},
        {x3,
         w,
         NULL,
         {1, 1, 0, 0, 1, 1, 2},
         TN_ERR_SHAPE,
         {"x [2, 4, 9] must be", "weight [6, 2, 3, 3]"}},
        {x,
         w,
         NULL,
         {0, 1, 0, 0, 1, 1, 2},
         TN_ERR_ARG,
         {"stride (0, 1)", "x [2, 4, 5, 5], weight [6, 2, 3, 3]"}},
        {x,
         w,
         NULL,
         {1, 1, 0, 0, 1, -1, 2},
         TN_ERR_ARG,
         {"dilation (1, -1) must be >= 1", "x [2, 4, 5, 5]"}},
        {x,
         w,
         NULL,
         {1, 1, -1, 0, 1, 1, 2},
         TN_ERR_ARG,
         {"padding (-1, 0) >= 0", "x [2, 4, 5, 5]"}},
        {x, w, NULL, {1, 1, 0, 0, 1, 1, 0}, TN_ERR_ARG, {"groups 0 >= 1", "weight [6, 2, 3, 3]"}},
        {x,
         w,
         NULL,
         {1, 1, 0, 0, 3, 1, 2},
         TN_ERR_SHAPE,
         {"output would be empty: x [2, 4, 5, 5], weight [6, 2, 3, 3]", "dilation (3, 1)"}},
        {x,
         big,
         NULL,
         {1, 1, 0, 0, 1, 1, 2},
         TN_ERR_SHAPE,
         {"output would be empty", "weight [6, 2, 7, 7]"}},
        {x, w64, NULL, {1, 1, 0, 0, 1, 1, 2}, TN_ERR_DTYPE, {"mixed dtypes", "float32"}},
        {x,
         w,
         NULL,
         {(int64_t)1 << 40, 1, 0, 0, 1, 1, 2},
         TN_ERR_ARG,
         {"stride (1099511627776, 1)", "at most 2^30"}},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        tn_tape_reset(tp);
        CHECK(tn_conv2d(tp, bad[k].x, bad[k].w, bad[k].b, &bad[k].o) == NULL);
        CHECK(tn_last_status() == bad[k].st);
        CHECK_MSG(tn_tape_error(tp), "conv2d: ");
        CHECK_MSG(tn_tape_error(tp), bad[k].msg[0]);
        CHECK_MSG(tn_tape_error(tp), bad[k].msg[1]);
    }
    /* a good call after the errors, with the defaults (o NULL) */
    tn_tape_reset(tp);
    tn_tensor *wg = tn_tensor_new(TN_F32, 4, (int64_t[]){6, 4, 3, 3});
    tn_tensor *y = tn_conv2d(tp, x, wg, b6, NULL);
    CHECK(y && y->ndim == 4 && y->shape[1] == 6 && y->shape[2] == 3 && y->shape[3] == 3);
    y = tn_conv2d(tp, x, w, b6, &g2);
    CHECK(y && y->shape[1] == 6);

    /* conv1d names itself and the 3-D shapes */
    tn_tensor *w1 = tn_tensor_new(TN_F32, 3, (int64_t[]){6, 2, 3});
    struct {
        tn_tensor *x;
        int64_t s, p, d, g;
        const char *msg;
    } b1[] = {
        {x3, 1, 0, 1, 1, "conv1d: x [2, 4, 9] has C_in = 4 channels, weight [6, 2, 3]"},
        {x3, 0, 0, 1, 2, "conv1d: stride 0 and dilation 1 must be >= 1"},
        {x3, 1, 0, 5, 2, "conv1d: the output would be empty: x [2, 4, 9], weight [6, 2, 3]"},
        {x, 1, 0, 1, 2, "conv1d: x [2, 4, 5, 5] must be [B, C_in, L]"},
    };
    for (size_t k = 0; k < sizeof b1 / sizeof b1[0]; k++) {
        tn_tape_reset(tp);
        CHECK(tn_conv1d(tp, b1[k].x, w1, NULL, b1[k].s, b1[k].p, b1[k].d, b1[k].g) == NULL);
        CHECK_MSG(tn_tape_error(tp), b1[k].msg);
    }
    tn_tape_reset(tp);
    y = tn_conv1d(tp, x3, w1, b6, 2, 1, 1, 2);
    CHECK(y && y->ndim == 3 && y->shape[0] == 2 && y->shape[1] == 6 && y->shape[2] == 5);

    /* pools */
    struct {
        int which; /* 0 max2d, 1 avg2d, 2 max1d, 3 avg1d */
        tn_tensor *x;
        int64_t k, s, p;
        tn_status st;
        const char *msg;
    } pb[] = {
        {0, x, 0, 1, 0, TN_ERR_ARG,
         "max_pool2d: kernel 0 and stride 1 must be 1 to 2^30, padding 0 0 to kernel / 2 (x [2, 4, "
         "5, 5])"},
        {0, x, 3, 0, 0, TN_ERR_ARG, "max_pool2d: kernel 3 and stride 0"},
        {1, x, 3, 1, 2, TN_ERR_ARG,
         "avg_pool2d: kernel 3 and stride 1 must be 1 to 2^30, padding 2 0 to kernel / 2"},
        {1, x, 3, 1, -1, TN_ERR_ARG, "padding -1"},
        {0, x, 6, 1, 0, TN_ERR_SHAPE,
         "max_pool2d: the output would be empty: x [2, 4, 5, 5] with kernel 6, padding 0"},
        {0, x3, 2, 2, 0, TN_ERR_SHAPE, "max_pool2d: x [2, 4, 9] must be [B, C, H, W]"},
        {2, x, 2, 2, 0, TN_ERR_SHAPE, "max_pool1d: x [2, 4, 5, 5] must be [B, C, L]"},
        {3, x3, 10, 1, 0, TN_ERR_SHAPE,
         "avg_pool1d: the output would be empty: x [2, 4, 9] with kernel 10"},
    };
    for (size_t k = 0; k < sizeof pb / sizeof pb[0]; k++) {
        tn_tape_reset(tp);
        tn_tensor *r =
            pb[k].which == 0   ? tn_max_pool2d(tp, pb[k].x, pb[k].k, pb[k].s, pb[k].p)
            : pb[k].which == 1 ? tn_avg_pool2d(tp, pb[k].x, pb[k].k, pb[k].s, pb[k].p, true)
            : pb[k].which == 2 ? tn_max_pool1d(tp, pb[k].x, pb[k].k, pb[k].s, pb[k].p)
                               : tn_avg_pool1d(tp, pb[k].x, pb[k].k, pb[k].s, pb[k].p, false);
        CHECK(r == NULL);
        CHECK(tn_last_status() == pb[k].st);
        CHECK_MSG(tn_tape_error(tp), pb[k].msg);
    }
    tn_tape_reset(tp);
    CHECK(tn_adaptive_avg_pool2d(tp, x, 0, 2) == NULL);
    CHECK(tn_last_status() == TN_ERR_ARG);
    CHECK_MSG(tn_tape_error(tp),
              "adaptive_avg_pool2d: output size (0, 2) must be 1 to 2^30 (x [2, 4, 5, 5])");
    tn_tape_reset(tp);
    CHECK(tn_adaptive_avg_pool2d(tp, x3, 2, 2) == NULL);
    CHECK_MSG(tn_tape_error(tp), "adaptive_avg_pool2d: x [2, 4, 9] must be [B, C, H, W]");
    /* NULL inputs fail naming the op; a failed tape makes later calls NULL quietly */
    tn_tape_reset(tp);
    CHECK(tn_conv2d(tp, NULL, w, NULL, NULL) == NULL);
    CHECK_MSG(tn_tape_error(tp), "conv2d: input 0 is NULL");
    CHECK(tn_max_pool2d(tp, x, 2, 2, 0) == NULL);
    tn_tape_reset(tp);
    CHECK(tn_max_pool2d(tp, NULL, 2, 2, 0) == NULL);
    CHECK_MSG(tn_tape_error(tp), "max_pool2d: input 0 is NULL");
    tn_tensor *fr[] = {x, w, w3, b6, b5, w64, x3, big, wg, w1};
    for (size_t k = 0; k < sizeof fr / sizeof fr[0]; k++)
        tn_tensor_free(fr[k]);
    tn_tape_free(tp);
}

/* A small CNN feeding a recurrent layer's input shape: conv -> relu ->
 * max pool -> adaptive pool -> [B, C, 1, T] -> [B, T, C], forward and
 * backward run and reach the weights (the features-into-an-RNN use). */
static void test_pipeline(void)
{
    tn_tape *tp = tn_tape_new();
    tn_tensor *x = rand_t(TN_F32, 4, (int64_t[]){2, 1, 16, 20}, false);
    tn_tensor *w = rand_t(TN_F32, 4, (int64_t[]){8, 1, 3, 3}, true);
    tn_tensor *b = rand_t(TN_F32, 1, (int64_t[]){8}, true);
    tn_conv2d_opts o = tn_conv2d_defaults();
    o.padding_h = o.padding_w = 1;
    tn_tensor *h = tn_max_pool2d(tp, tn_relu(tp, tn_conv2d(tp, x, w, b, &o)), 2, 2, 0);
    tn_tensor *f = tn_adaptive_avg_pool2d(tp, h, 1, 10); /* [2, 8, 1, 10] */
    tn_tensor *seq = tn_transpose(tp, tn_reshape(tp, f, 3, (int64_t[]){2, 8, 10}), 1, 2);
    CHECK(seq && seq->shape[0] == 2 && seq->shape[1] == 10 && seq->shape[2] == 8);
    tn_tensor *loss = tn_sum(tp, tn_mul(tp, seq, seq));
    CHECK(loss && tn_backward(tp, loss) == TN_OK);
    double gw = 0;
    for (int64_t i = 0; i < tn_numel(w); i++)
        gw += fabs(tn_tensor_grad_get(w, i));
    CHECK(gw > 0);
    tn_tensor_free(x), tn_tensor_free(w), tn_tensor_free(b);
    tn_tape_free(tp);
}

/* ---- out of memory ---- */

/* A CNN step (conv2d with groups, relu, max pool, conv 1x1, conv 7x7, avg
 * pool, adaptive pool, mean, backward) with the N-th allocation failing, for
 * every N until a step makes fewer: its tape outgrows the arena's first
 * 1 MiB chunk, so the failures land inside the forward and the backward
 * (the columns, the per-thread weight gradients). Every failure must be
 * TN_ERR_MEMORY saying "out of memory", and everything is freed again. */
static void test_oom(void)
{
    tn_set_allocator(sweep_alloc, sweep_free);
    long failures = 0;
    for (long target = 1;; target++) {
        n_alloc = 0;
        fail_at = 0; /* the heap tensors: no failure */
        tn_tensor *x = rand_t(TN_F32, 4, (int64_t[]){16, 4, 32, 32}, true);
        tn_tensor *w1 = rand_t(TN_F32, 4, (int64_t[]){16, 2, 3, 3}, true);
        tn_tensor *b1 = rand_t(TN_F32, 1, (int64_t[]){16}, true);
        /* 16 -> 16: the direct forward, dx and dW's scratch too */
        tn_tensor *w2 = rand_t(TN_F32, 4, (int64_t[]){16, 16, 1, 1}, true);
        tn_tensor *w3 = rand_t(TN_F32, 4, (int64_t[]){2, 16, 7, 7}, true);
        n_alloc = 0;
        fail_at = target;
        tn_tape *tp = tn_tape_new();
        tn_status st = tp ? TN_OK : tn_last_status();
        if (tp) {
            tn_conv2d_opts o = tn_conv2d_defaults();
            o.padding_h = o.padding_w = 1;
            o.groups = 2;
            tn_tensor *h = tn_max_pool2d(tp, tn_relu(tp, tn_conv2d(tp, x, w1, b1, &o)), 2, 2, 0);
            h = tn_conv2d(tp, h, w2, NULL, NULL);
            o.padding_h = o.padding_w = 3;
            o.groups = 1; /* columns of 392 rows: the backward's need a chunk of their own */
            h = tn_avg_pool2d(tp, tn_conv2d(tp, h, w3, NULL, &o), 3, 1, 1, false);
            tn_tensor *loss = tn_mean(tp, tn_adaptive_avg_pool2d(tp, h, 2, 3));
            st = loss ? tn_backward(tp, loss) : tn_last_status();
            if (st != TN_OK) {
                if (getenv("SWEEP_DEBUG"))
                    printf("allocation %ld: %s\n", target, tn_last_error());
                CHECK(st == TN_ERR_MEMORY);
                CHECK_MSG(tn_last_error(), "out of memory");
            }
            tn_tape_free(tp);
        } else {
            CHECK(st == TN_ERR_MEMORY);
        }
        bool done = n_alloc < target;
        failures += st != TN_OK;
        fail_at = 0;
        tn_tensor_free(x), tn_tensor_free(w1), tn_tensor_free(b1), tn_tensor_free(w2);
        tn_tensor_free(w3);
        CHECK(n_live == 0);
        if (done || target > 10000) {
            CHECK(st == TN_OK && done);
            break;
        }
    }
    tn_set_allocator(NULL, NULL);
    printf("out of memory: %ld failing steps, all reported\n", failures);
    CHECK(failures >= 3);
}

/* The same CNN's training steps (zero_grad, forward, backward) make no
 * heap allocation once the tape's arena has settled (after two steps). */
static void test_steady(void)
{
    tn_set_allocator(sweep_alloc, sweep_free);
    fail_at = 0;
    /* the first conv: 4.7M multiply-adds, the images split over threads */
    tn_tensor *x = rand_t(TN_F32, 4, (int64_t[]){8, 16, 16, 16}, false);
    tn_tensor *w1 = rand_t(TN_F32, 4, (int64_t[]){16, 16, 3, 3}, true);
    tn_tensor *w2 = rand_t(TN_F32, 4, (int64_t[]){8, 16, 3, 3}, true);
    tn_tensor *b2 = rand_t(TN_F32, 1, (int64_t[]){8}, true);
    tn_tape *tp = tn_tape_new();
    tn_conv2d_opts o = tn_conv2d_defaults();
    o.padding_h = o.padding_w = 1;
    long per_step[4] = {0};
    for (int step = 0; step < 4; step++) {
        n_alloc = 0;
        tn_tape_reset(tp);
        tn_tensor_zero_grad(w1), tn_tensor_zero_grad(w2), tn_tensor_zero_grad(b2);
        tn_tensor *h = tn_max_pool2d(tp, tn_relu(tp, tn_conv2d(tp, x, w1, NULL, &o)), 2, 2, 0);
        h = tn_avg_pool2d(tp, tn_conv2d(tp, h, w2, b2, &o), 2, 2, 0, true);
        tn_tensor *loss = tn_mean(tp, tn_adaptive_avg_pool2d(tp, h, 1, 1));
        CHECK(loss && tn_backward(tp, loss) == TN_OK);
        per_step[step] = n_alloc;
    }
    CHECK(per_step[2] == 0 && per_step[3] == 0);
    printf("heap allocations per CNN step: %ld %ld %ld %ld\n", per_step[0], per_step[1],
           per_step[2], per_step[3]);
    tn_tape_free(tp);
    tn_tensor_free(x), tn_tensor_free(w1), tn_tensor_free(w2), tn_tensor_free(b2);
    CHECK(n_live == 0);
    tn_set_allocator(NULL, NULL);
}

/* Largest |value| of t, and whether every value is within bound. */
static double max_abs(const tn_tensor *t)
{
    double m = 0;
    for (int64_t i = 0; i < tn_numel(t); i++)
        m = fmax(m, fabs(tn_tensor_get(t, i)));
    return m;
}

/* The layers: weight [out, in / groups, k...] and bias [out] under the
 * prefix, uniform within +-1/sqrt(fan_in) and reaching past 0.9 of it (72
 * and 40 values: a wrong fan_in, e.g. in instead of in / groups, gives a
 * bound 0.71 or less of the right one, so the largest value would fall
 * short), the forward equal to the op bit for bit, bad arguments refused
 * naming the function. */
static void test_layers(void)
{
    tn_params ps;
    tn_params_init(&ps);
    tn_conv2d_opts o = tn_conv2d_defaults();
    o.groups = 2, o.padding_h = 1, o.stride_w = 2;
    tn_conv2d_layer c2;
    CHECK(tn_conv2d_init(&c2, &ps, "enc.0", 6, 4, 3, 2, &o, true, TN_F64, &rng) == TN_OK);
    CHECK(c2.weight == tn_params_get(&ps, "enc.0.weight") &&
          c2.bias == tn_params_get(&ps, "enc.0.bias"));
    CHECK(c2.weight->ndim == 4 && c2.weight->shape[0] == 4 && c2.weight->shape[1] == 3 &&
          c2.weight->shape[2] == 3 && c2.weight->shape[3] == 2 && c2.bias->shape[0] == 4);
    double b2 = 1 / sqrt(3.0 * 3 * 2);
    CHECK(max_abs(c2.weight) <= b2 && max_abs(c2.weight) > 0.9 * b2 && max_abs(c2.bias) <= b2);
    tn_conv1d_layer c1;
    CHECK(tn_conv1d_init(&c1, &ps, "enc.1", 4, 8, 5, 2, 2, 1, 1, false, TN_F64, &rng) == TN_OK);
    CHECK(c1.weight->ndim == 3 && c1.weight->shape[0] == 8 && c1.weight->shape[1] == 4 &&
          c1.weight->shape[2] == 5 && c1.bias == NULL && !tn_params_get(&ps, "enc.1.bias"));
    double b1 = 1 / sqrt(4.0 * 5);
    CHECK(max_abs(c1.weight) <= b1 && max_abs(c1.weight) > 0.9 * b1);

    tn_tape *tp = tn_tape_new();
    tn_tensor *x = rand_t(TN_F64, 4, (int64_t[]){2, 6, 5, 7}, false);
    tn_tensor *y = tn_conv2d_forward(tp, &c2, x), *want = tn_conv2d(tp, x, c2.weight, c2.bias, &o);
    CHECK(y && want && y->shape[2] == 5 && y->shape[3] == 3 &&
          memcmp(y->data, want->data, (size_t)tn_numel(y) * sizeof(double)) == 0);
    tn_tensor *x1 = rand_t(TN_F64, 3, (int64_t[]){2, 4, 9}, false);
    tn_tensor *y1 = tn_conv1d_forward(tp, &c1, x1),
              *w1 = tn_conv1d(tp, x1, c1.weight, NULL, 2, 2, 1, 1);
    CHECK(y1 && w1 && y1->shape[2] == 5 &&
          memcmp(y1->data, w1->data, (size_t)tn_numel(y1) * sizeof(double)) == 0);
    tn_tape_free(tp);
    tn_tensor_free(x), tn_tensor_free(x1);

    tn_conv2d_layer bad;
    int n0 = ps.n;
    CHECK(tn_conv2d_init(&bad, &ps, "b", 6, 5, 3, 3, &o, true, TN_F32, &rng) == TN_ERR_ARG &&
          strstr(tn_last_error(), "tn_conv2d_init") && strstr(tn_last_error(), "groups 2"));
    o.stride_h = 0;
    CHECK(tn_conv2d_init(&bad, &ps, "b", 6, 4, 3, 3, &o, true, TN_F32, &rng) == TN_ERR_ARG &&
          strstr(tn_last_error(), "stride 0"));
    CHECK(tn_conv2d_init(&bad, NULL, "b", 6, 4, 3, 3, NULL, true, TN_F32, &rng) == TN_ERR_ARG);
    CHECK(tn_conv1d_init(&c1, &ps, "b", 4, 8, 0, 1, 0, 1, 1, true, TN_F32, &rng) == TN_ERR_ARG &&
          strstr(tn_last_error(), "tn_conv1d_init") && strstr(tn_last_error(), "kernel 0"));
    CHECK(tn_conv1d_init(&c1, &ps, "b", 4, 8, 3, 1, -1, 1, 1, true, TN_F32, &rng) == TN_ERR_ARG);
    CHECK(ps.n == n0); /* nothing registered by a refused layer */
    tn_params_free(&ps);
}

/* max_pool2d's window maximum with NaNs and ties, as PyTorch's CPU kernel
 * (it takes v > best || isnan(v) in scan order): a window with a NaN gives
 * NaN and its gradient goes to the window's last NaN; ties go to the
 * first maximum. Exact checks (a selection, no arithmetic). */
static void test_pool_nan(void)
{
    tn_tape *tp = tn_tape_new();
    tn_tensor *x = tn_tensor_new(TN_F32, 4, (int64_t[]){1, 1, 2, 4});
    /* window 0: 1 NaN 3 NaN (last NaN at 3: row 1, col 1 -> flat 5);
     * window 1: 2 7 7 -1 (first 7 at col 3 -> flat 3) */
    const float v[8] = {1, NAN, 2, 7, 3, NAN, 7, -1};
    for (int k = 0; k < 8; k++)
        tn_tensor_set(x, k, v[k]);
    tn_tensor_set_requires_grad(x, true);
    tn_tensor *y = tn_max_pool2d(tp, x, 2, 2, 0);
    tn_tensor *l = y ? tn_sum(tp, y) : NULL;
    CHECK(l && isnan(tn_tensor_get(y, 0)));
    CHECK(y && tn_tensor_get(y, 1) == 7);
    tn_tensor_zero_grad(x);
    /* the loss is NaN; its gradient (1 per output) still goes to the positions */
    CHECK(l && tn_backward(tp, l) == TN_OK);
    const float *g = x->grad;
    for (int k = 0; k < 8; k++)
        CHECK(g && g[k] == (k == 5 || k == 3 ? 1.0f : 0.0f));
    tn_tape_free(tp);
    tn_tensor_free(x);
}

int main(void)
{
    tn_rng_seed(&rng, 42);
    run_naive();
    test_errors();
    test_pipeline();
    test_oom();
    test_steady();
    test_layers();
    test_pool_nan();
    int rc = run_parity();
    for (int s = 0; s < NSRC; s++)
        printf("worst %-12s %.3g\n", src_name[s], worst[s]);
    int r = check_report("test_conv");
    return r ? r : rc == 77 ? 77 : rc;
}
