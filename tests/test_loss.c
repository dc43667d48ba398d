/* tests/test_loss.c - forward values and gradients of gather_rows,
 * cross_entropy, nll and mse against naive double loops; cross-entropy
 * against the log_softmax + nll composition; ignore_index with all three
 * reductions (including every target ignored); padding_idx; logits of
 * +-1000; sizes that take the parallel paths; every class of bad input.
 *
 * Tolerances (relative to 1 + |want|, or to 1 + sum|terms| for sums):
 *   gather_rows forward copies values: exact.
 *   float64: a few ulps of sums of <= 4096 terms: 1e-12.
 *   float32: losses are accumulated in double from float inputs and
 *     rounded once (6e-8); float exp in gradients, a few ulps: 1e-6;
 *     gather_rows backward sums ~80 float terms per element: <= 80 * 6e-8
 *     = 5e-6 of sum|terms|, tol 1e-5.
 */
#include "check.h"
#include "white_box.h"
#include "tensor/ops.h"

#include <stdlib.h>

static tn_rng rng;

static tn_tensor *rand_t(tn_dtype dt, int nd, const int64_t *shape, double lo, double hi)
{
    tn_tensor *t = tn_tensor_new(dt, nd, shape);
    tn_tensor_uniform(t, &rng, lo, hi);
    return t;
}

static tn_tensor *ids_t(int nd, const int64_t *shape, const int32_t *v)
{
    return tn_tensor_from(TN_I32, nd, shape, v);
}

static double tol_of(tn_dtype dt, double t32) { return dt == TN_F32 ? t32 : 1e-12; }

/* ---- gather_rows ---- */

static void test_gather_forward(tn_dtype dt)
{
    tn_tape *tp = tn_tape_new();
    tn_tensor *table = rand_t(dt, 2, (int64_t[]){7, 5}, -1, 1);
    int32_t iv[6] = {0, 6, 3, 3, 1, 6};
    tn_tensor *ids = ids_t(2, (int64_t[]){2, 3}, iv);
    tn_tensor *y = tn_gather_rows(tp, table, ids, -1);
    CHECK(y && y->ndim == 3 && y->shape[0] == 2 && y->shape[1] == 3 && y->shape[2] == 5);
    for (int i = 0; y && i < 6; i++)
        for (int j = 0; j < 5; j++)
            CHECK(tn_tensor_get(y, i * 5 + j) == tn_tensor_get(table, iv[i] * 5 + j));
    /* strided ids: a transposed [3, 2] view of the same int32 buffer */
    tn_node idt_node = *tn__node(ids);
    tn_tensor *idt = &idt_node.pub;
    idt->shape[0] = 3;
    idt->shape[1] = 2;
    idt->stride[0] = 1;
    idt->stride[1] = 3;
    tn_tensor *yt = tn_gather_rows(tp, table, idt, -1);
    CHECK(yt && yt->shape[0] == 3 && yt->shape[1] == 2);
    for (int r = 0; yt && r < 3; r++)
        for (int c = 0; c < 2; c++)
            for (int j = 0; j < 5; j++)
                CHECK(tn_tensor_get(yt, (r * 2 + c) * 5 + j) ==
                      tn_tensor_get(table, iv[c * 3 + r] * 5 + j));
    /* narrowed table (row stride 5, columns 1..3) and transposed table */
    tn_tensor *tn = tn_narrow(tp, table, 1, 1, 3);
    tn_tensor *yn = tn_gather_rows(tp, tn, ids, -1);
    for (int i = 0; yn && i < 6; i++)
        for (int j = 0; j < 3; j++)
            CHECK(tn_tensor_get(yn, i * 3 + j) == tn_tensor_get(table, iv[i] * 5 + 1 + j));
    CHECK(yn != NULL);
    tn_tensor *tt = tn_transpose(tp, table, 0, 1); /* [5, 7], column stride 5 */
    int32_t iv2[3] = {4, 0, 4};
    tn_tensor *ids2 = ids_t(1, (int64_t[]){3}, iv2);
    tn_tensor *y2 = tn_gather_rows(tp, tt, ids2, -1);
    CHECK(y2 && y2->ndim == 2 && y2->shape[0] == 3 && y2->shape[1] == 7);
    for (int i = 0; y2 && i < 3; i++)
        for (int j = 0; j < 7; j++)
            CHECK(tn_tensor_get(y2, i * 7 + j) == tn_tensor_get(table, j * 5 + iv2[i]));
    tn_tensor_free(table);
    tn_tensor_free(ids);
    tn_tensor_free(ids2);
    tn_tape_free(tp);
}

/* Repeated ids accumulate; the padding row gets no gradient although its
 * values are still gathered. */
static void test_gather_backward(tn_dtype dt)
{
    tn_tape *tp = tn_tape_new();
    tn_tensor *table = rand_t(dt, 2, (int64_t[]){4, 3}, -1, 1);
    tn_tensor_set_requires_grad(table, true);
    int32_t iv[5] = {1, 2, 1, 1, 0};
    tn_tensor *ids = ids_t(1, (int64_t[]){5}, iv);
    for (int pad = -1; pad <= 1; pad += 2) {
        tn_tape_reset(tp);
        tn_tensor_zero_grad(table);
        tn_tensor *y = tn_gather_rows(tp, table, ids, pad);
        CHECK(y && tn_backward(tp, tn_sum(tp, y)) == TN_OK);
        double want[4] = {1, pad == 1 ? 0 : 3, 1, 0};
        for (int r = 0; r < 4; r++)
            for (int j = 0; j < 3; j++)
                CHECK(tn_tensor_grad_get(table, r * 3 + j) == want[r]);
        for (int j = 0; y && j < 3; j++) /* padding row still gathered */
            CHECK(tn_tensor_get(y, j) == tn_tensor_get(table, 3 + j));
    }
    tn_tensor_free(table);
    tn_tensor_free(ids);
    tn_tape_free(tp);
}

/* 4096 ids over 50 rows, E = 64: the parallel column-block backward. */
static void test_gather_large(tn_dtype dt)
{
    tn_tape *tp = tn_tape_new();
    enum { V = 50, E = 64, M = 4096 };
    tn_tensor *table = rand_t(dt, 2, (int64_t[]){V, E}, -1, 1);
    tn_tensor_set_requires_grad(table, true);
    int32_t *iv = malloc(sizeof(int32_t) * M);
    for (int i = 0; i < M; i++)
        iv[i] = (int32_t)(tn_rng_next(&rng) % V);
    tn_tensor *ids = ids_t(2, (int64_t[]){64, 64}, iv);
    tn_tensor *dy = rand_t(TN_F64, 3, (int64_t[]){64, 64, E}, -1, 1);
    double *g = check_values(dy);
    double *want = calloc(V * E, sizeof(double)), *mag = calloc(V * E, sizeof(double));
    for (int i = 0; i < M; i++)
        if (iv[i] != 7)
            for (int j = 0; j < E; j++) {
                want[iv[i] * E + j] += g[i * E + j];
                mag[iv[i] * E + j] += fabs(g[i * E + j]);
            }
    tn_tensor *y = tn_gather_rows(tp, table, ids, 7);
    CHECK(y && tn_backward_from(tp, y, dy) == TN_OK);
    double err = 0;
    for (int k = 0; k < V * E; k++)
        err = fmax(err, fabs(tn_tensor_grad_get(table, k) - want[k]) / (1 + mag[k]));
    CHECK(err <= tol_of(dt, 1e-5));
    for (int j = 0; j < E; j++)
        CHECK(tn_tensor_grad_get(table, 7 * E + j) == 0);
    free(iv);
    free(g);
    free(want);
    free(mag);
    tn_tensor_free(table);
    tn_tensor_free(ids);
    tn_tensor_free(dy);
    tn_tape_free(tp);
}

static void test_gather_errors(void)
{
    tn_tape *tp = tn_tape_new();
    tn_tensor *table = tn_tensor_new(TN_F32, 2, (int64_t[]){7, 5});
    int32_t bad[6] = {0, 1, -1, 2, 3, 4}, big[3] = {6, 7, 0};
    tn_tensor *ids = ids_t(2, (int64_t[]){2, 3}, bad), *ids2 = ids_t(1, (int64_t[]){3}, big);

    CHECK(tn_gather_rows(tp, table, ids, -1) == NULL);
    CHECK_MSG(tn_tape_error(tp), "gather_rows");
    CHECK_MSG(tn_tape_error(tp), "id -1");
    CHECK_MSG(tn_tape_error(tp), "[0, 2]"); /* position */
    CHECK_MSG(tn_tape_error(tp), "[0, 7)"); /* V */
    CHECK(tn_last_status() == TN_ERR_INDEX);
    tn_tape_reset(tp);
    CHECK(tn_gather_rows(tp, table, ids2, -1) == NULL);
    CHECK_MSG(tn_tape_error(tp), "gather_rows: id 7 at position [1]");
    CHECK(tn_last_status() == TN_ERR_INDEX);
    tn_tape_reset(tp);

    tn_tensor *fids = tn_tensor_new(TN_F32, 1, (int64_t[]){3});
    CHECK(tn_gather_rows(tp, table, fids, -1) == NULL);
    CHECK_MSG(tn_tape_error(tp), "gather_rows");
    CHECK(tn_last_status() == TN_ERR_DTYPE);
    tn_tape_reset(tp);
    tn_tensor *itab = tn_tensor_new(TN_I32, 2, (int64_t[]){7, 5});
    CHECK(tn_gather_rows(tp, itab, ids2, -1) == NULL);
    CHECK_MSG(tn_tape_error(tp), "gather_rows");
    CHECK(tn_last_status() == TN_ERR_DTYPE);
    tn_tape_reset(tp);
    tn_tensor *t3 = tn_tensor_new(TN_F32, 3, (int64_t[]){7, 5, 1});
    CHECK(tn_gather_rows(tp, t3, ids2, -1) == NULL);
    CHECK_MSG(tn_tape_error(tp), "gather_rows");
    CHECK_MSG(tn_tape_error(tp), "[7, 5, 1]");
    CHECK(tn_last_status() == TN_ERR_SHAPE);
    tn_tape_reset(tp);
    tn_tensor *ids4 = tn_tensor_new(TN_I32, 4, (int64_t[]){1, 2, 1, 2});
    CHECK(tn_gather_rows(tp, table, ids4, -1) == NULL);
    CHECK_MSG(tn_tape_error(tp), "gather_rows");
    CHECK(tn_last_status() == TN_ERR_SHAPE);
    tn_tape_reset(tp);
    CHECK(tn_gather_rows(tp, table, ids2, 7) == NULL);
    CHECK_MSG(tn_tape_error(tp), "padding_idx 7");
    tn_tape_reset(tp);
    CHECK(tn_gather_rows(tp, table, fids, -2) == NULL); /* first error: the dtype */
    CHECK_MSG(tn_tape_error(tp), "int32");
    tn_tape_reset(tp);
    CHECK(tn_gather_rows(tp, table, NULL, -1) == NULL);
    CHECK_MSG(tn_tape_error(tp), "gather_rows");
    CHECK(tn_last_status() == TN_ERR_ARG);
    /* after a failure, NULL inputs are quiet and the cause stays */
    CHECK(tn_gather_rows(tp, NULL, NULL, -1) == NULL);
    CHECK_MSG(tn_tape_error(tp), "ids is NULL");
    tn_tensor_free(table);
    tn_tensor_free(ids);
    tn_tensor_free(ids2);
    tn_tensor_free(fids);
    tn_tensor_free(itab);
    tn_tensor_free(t3);
    tn_tensor_free(ids4);
    tn_tape_free(tp);
}

/* ---- cross_entropy / nll ---- */

/* li [n] = lse(x_i) - x_i[t_i] (or -x_i[t_i] for nll), 0 when ignored; the
 * reduced value follows PyTorch. */
static double class_loss_naive(const double *x, int64_t n, int64_t c, const int32_t *t,
                               int64_t ignore, tn_reduction red, bool nll, double *li)
{
    double s = 0;
    int64_t cnt = 0;
    for (int64_t i = 0; i < n; i++) {
        li[i] = 0;
        if (t[i] == ignore)
            continue;
        li[i] = nll ? -x[i * c + t[i]] : check_logsumexp(x + i * c, c) - x[i * c + t[i]];
        s += li[i];
        cnt++;
    }
    return red == TN_REDUCE_MEAN ? s / (double)cnt : s;
}

static void check_loss(tn_tensor *y, tn_reduction red, double want, const double *li, int64_t n,
                       double tol)
{
    CHECK(y);
    if (!y)
        return;
    if (red == TN_REDUCE_NONE) {
        CHECK(y->ndim == 1 && y->shape[0] == n);
        for (int64_t i = 0; i < n; i++)
            CHECK_NEAR(tn_tensor_get(y, i), li[i], tol * (1 + fabs(li[i])));
    } else {
        CHECK(y->ndim == 1 && y->shape[0] == 1);
        CHECK_NEAR(tn_tensor_get(y, 0), want, tol * (1 + fabs(want)));
    }
}

static void test_class_losses(tn_dtype dt)
{
    tn_tape *tp = tn_tape_new();
    enum { N = 6, C = 5 };
    tn_tensor *x = rand_t(dt, 2, (int64_t[]){N, C}, -4, 4);
    tn_tensor *lp = rand_t(dt, 2, (int64_t[]){N, C}, -5, 0);
    double *xv = check_values(x), *lv = check_values(lp), li[N];
    int32_t tv[N] = {0, 4, -100, 2, 2, -100}, tin[N] = {3, 1, 3, 0, 4, 3};
    tn_tensor *tg = ids_t(1, (int64_t[]){N}, tv), *tgi = ids_t(1, (int64_t[]){N}, tin);
    for (int r = 0; r < 3; r++) {
        tn_reduction red = (tn_reduction)r;
        double w = class_loss_naive(xv, N, C, tv, -100, red, false, li);
        check_loss(tn_cross_entropy(tp, x, tg, -100, red), red, w, li, N, tol_of(dt, 1e-6));
        w = class_loss_naive(xv, N, C, tin, 3, red, false, li); /* ignore a class */
        check_loss(tn_cross_entropy(tp, x, tgi, 3, red), red, w, li, N, tol_of(dt, 1e-6));
        w = class_loss_naive(lv, N, C, tv, -100, red, true, li);
        check_loss(tn_nll(tp, lp, tg, -100, red), red, w, li, N, tol_of(dt, 1e-6));
        w = class_loss_naive(lv, N, C, tin, 3, red, true, li);
        check_loss(tn_nll(tp, lp, tgi, 3, red), red, w, li, N, tol_of(dt, 1e-6));
    }
    /* transposed logits view */
    tn_tensor *xt = rand_t(dt, 2, (int64_t[]){C, N}, -4, 4);
    tn_tensor *xtv = tn_transpose(tp, xt, 0, 1), *xtc = tn_contiguous(tp, xtv);
    double *cv = check_values(xtc);
    double w = class_loss_naive(cv, N, C, tv, -100, TN_REDUCE_MEAN, false, li);
    check_loss(tn_cross_entropy(tp, xtv, tg, -100, TN_REDUCE_MEAN), TN_REDUCE_MEAN, w, li, N,
               tol_of(dt, 1e-6));
    free(xv);
    free(lv);
    free(cv);
    tn_tensor_free(x);
    tn_tensor_free(lp);
    tn_tensor_free(xt);
    tn_tensor_free(tg);
    tn_tensor_free(tgi);
    tn_tape_free(tp);
}

/* The fused op equals log_softmax + nll in value and gradient, for every
 * reduction, with ignored rows; 'none' is seeded with a varied dy. */
static void test_ce_vs_composition(tn_dtype dt)
{
    tn_tape *tp = tn_tape_new();
    tn_tensor *x = rand_t(dt, 2, (int64_t[]){5, 4}, -3, 3);
    tn_tensor_set_requires_grad(x, true);
    int32_t tv[5] = {1, -100, 3, 0, 3};
    tn_tensor *tg = ids_t(1, (int64_t[]){5}, tv);
    tn_tensor *dy = tn_tensor_from(TN_F64, 1, (int64_t[]){5}, (double[]){0.5, -1, 2, 1.5, -0.25});
    double g1[20];
    for (int r = 0; r < 3; r++) {
        tn_reduction red = (tn_reduction)r;
        for (int pass = 0; pass < 2; pass++) {
            tn_tape_reset(tp);
            tn_tensor_zero_grad(x);
            tn_tensor *y = pass ? tn_nll(tp, tn_log_softmax(tp, x, 1), tg, -100, red)
                                : tn_cross_entropy(tp, x, tg, -100, red);
            CHECK(y);
            if (!y)
                continue;
            CHECK((red == TN_REDUCE_NONE ? tn_backward_from(tp, y, dy) : tn_backward(tp, y)) ==
                  TN_OK);
            for (int i = 0; i < 20; i++) {
                if (!pass)
                    g1[i] = tn_tensor_grad_get(x, i);
                else
                    CHECK_NEAR(g1[i], tn_tensor_grad_get(x, i), tol_of(dt, 1e-6));
            }
            for (int i = 1; i < 4; i++) /* ignored row 1: no gradient */
                CHECK(tn_tensor_grad_get(x, 4 + i) == 0);
        }
    }
    /* values of the two forms */
    tn_tape_reset(tp);
    tn_tensor *a = tn_cross_entropy(tp, x, tg, -100, TN_REDUCE_NONE);
    tn_tensor *b = tn_nll(tp, tn_log_softmax(tp, x, -1), tg, -100, TN_REDUCE_NONE);
    for (int i = 0; a && b && i < 5; i++)
        CHECK_NEAR(tn_tensor_get(a, i), tn_tensor_get(b, i), tol_of(dt, 1e-6));
    tn_tensor_free(x);
    tn_tensor_free(tg);
    tn_tensor_free(dy);
    tn_tape_free(tp);
}

/* Every target ignored: mean is NaN (0/0, as PyTorch), sum 0, none zeros;
 * the gradient is zero. */
static void test_all_ignored(tn_dtype dt)
{
    tn_tape *tp = tn_tape_new();
    tn_tensor *x = rand_t(dt, 2, (int64_t[]){3, 4}, -1, 1);
    tn_tensor_set_requires_grad(x, true);
    tn_tensor *tg = ids_t(1, (int64_t[]){3}, (int32_t[]){-100, -100, -100});
    for (int nll = 0; nll < 2; nll++) {
        tn_tape_reset(tp);
        tn_tensor_zero_grad(x);
        tn_tensor *m = nll ? tn_nll(tp, x, tg, -100, TN_REDUCE_MEAN)
                           : tn_cross_entropy(tp, x, tg, -100, TN_REDUCE_MEAN);
        tn_tensor *s = nll ? tn_nll(tp, x, tg, -100, TN_REDUCE_SUM)
                           : tn_cross_entropy(tp, x, tg, -100, TN_REDUCE_SUM);
        tn_tensor *n = nll ? tn_nll(tp, x, tg, -100, TN_REDUCE_NONE)
                           : tn_cross_entropy(tp, x, tg, -100, TN_REDUCE_NONE);
        CHECK(m && s && n);
        if (!m || !s || !n)
            continue;
        CHECK(isnan(tn_tensor_get(m, 0)));
        CHECK(tn_tensor_get(s, 0) == 0);
        for (int i = 0; i < 3; i++)
            CHECK(tn_tensor_get(n, i) == 0);
        CHECK(tn_backward(tp, m) == TN_OK);
        for (int i = 0; i < 12; i++)
            CHECK(tn_tensor_grad_get(x, i) == 0);
    }
    tn_tensor_free(x);
    tn_tensor_free(tg);
    tn_tape_free(tp);
}

/* Logits of +-1000: finite, exact losses and gradients. */
static void test_ce_extreme(tn_dtype dt)
{
    tn_tape *tp = tn_tape_new();
    tn_tensor *x = tn_tensor_from(TN_F64, 2, (int64_t[]){3, 3},
                                  (double[]){1000, -1000, 0, -1000, 1000, 1000, 1000, -1000, 0});
    tn_tensor *xd = tn_tensor_new(dt, 2, (int64_t[]){3, 3});
    tn_tensor_copy(xd, x);
    tn_tensor_set_requires_grad(xd, true);
    tn_tensor *tg = ids_t(1, (int64_t[]){3}, (int32_t[]){0, 1, 1});
    tn_tensor *y = tn_cross_entropy(tp, xd, tg, -100, TN_REDUCE_NONE);
    double want[3] = {0, log(2.0), 2000};
    for (int i = 0; y && i < 3; i++) {
        CHECK(isfinite(tn_tensor_get(y, i)));
        CHECK_NEAR(tn_tensor_get(y, i), want[i], 1e-6 * (1 + want[i]));
    }
    tn_tensor *s = tn_sum(tp, y);
    CHECK(s && tn_backward(tp, s) == TN_OK);
    double gw[9] = {0, 0, 0, 0, -0.5, 0.5, 1, -1, 0}; /* softmax - onehot */
    for (int i = 0; i < 9; i++) {
        CHECK(isfinite(tn_tensor_grad_get(xd, i)));
        CHECK_NEAR(tn_tensor_grad_get(xd, i), gw[i], 1e-6);
    }
    tn_tensor_free(x);
    tn_tensor_free(xd);
    tn_tensor_free(tg);
    tn_tape_free(tp);
}

/* [512, 65] (the benchmark's vocabulary): parallel forward and backward
 * against softmax - onehot, with some rows ignored. */
static void test_ce_large(tn_dtype dt)
{
    tn_tape *tp = tn_tape_new();
    enum { N = 512, C = 65 };
    tn_tensor *x = rand_t(dt, 2, (int64_t[]){N, C}, -5, 5);
    tn_tensor_set_requires_grad(x, true);
    int32_t *tv = malloc(sizeof(int32_t) * N);
    for (int i = 0; i < N; i++)
        tv[i] = i % 17 == 0 ? -1 : (int32_t)(tn_rng_next(&rng) % C);
    tn_tensor *tg = ids_t(1, (int64_t[]){N}, tv);
    double *xv = check_values(x), *li = malloc(sizeof(double) * N);
    double want = class_loss_naive(xv, N, C, tv, -1, TN_REDUCE_MEAN, false, li);
    int64_t cnt = N - (N + 16) / 17;
    tn_tensor *y = tn_cross_entropy(tp, x, tg, -1, TN_REDUCE_MEAN);
    check_loss(y, TN_REDUCE_MEAN, want, li, N, tol_of(dt, 1e-6));
    CHECK(y && tn_backward(tp, y) == TN_OK);
    double err = 0;
    for (int i = 0; i < N; i++) {
        double lse = check_logsumexp(xv + i * C, C);
        for (int k = 0; k < C; k++) {
            double g = tv[i] == -1 ? 0 : (exp(xv[i * C + k] - lse) - (k == tv[i])) / (double)cnt;
            err = fmax(err, fabs(tn_tensor_grad_get(x, i * C + k) - g));
        }
    }
    CHECK(err <= tol_of(dt, 1e-6) / cnt);
    free(tv);
    free(xv);
    free(li);
    tn_tensor_free(x);
    tn_tensor_free(tg);
    tn_tape_free(tp);
}

static void test_class_errors(void)
{
    tn_tape *tp = tn_tape_new();
    tn_tensor *x = tn_tensor_new(TN_F32, 2, (int64_t[]){4, 4});
    tn_tensor *tg = ids_t(1, (int64_t[]){4}, (int32_t[]){0, 1, 4, 2});
    tn_tensor *tneg = ids_t(1, (int64_t[]){4}, (int32_t[]){0, -1, 1, 2});
    tn_tensor *tok = ids_t(1, (int64_t[]){4}, (int32_t[]){0, 1, 3, 2});
    tn_tensor *t5 = ids_t(1, (int64_t[]){5}, (int32_t[]){0, 1, 3, 2, 0});
    tn_tensor *tf = tn_tensor_new(TN_F32, 1, (int64_t[]){4});
    tn_tensor *x3 = tn_tensor_new(TN_F32, 3, (int64_t[]){4, 4, 1});
    const char *names[2] = {"cross_entropy", "nll"};
    for (int k = 0; k < 2; k++) {
#define LOSS(a, b, ig, red) (k ? tn_nll(tp, a, b, ig, red) : tn_cross_entropy(tp, a, b, ig, red))
        CHECK(LOSS(x, tg, -100, TN_REDUCE_MEAN) == NULL);
        CHECK_MSG(tn_tape_error(tp), names[k]);
        CHECK_MSG(tn_tape_error(tp), "target 4 at position 2");
        CHECK(tn_last_status() == TN_ERR_INDEX);
        tn_tape_reset(tp);
        CHECK(LOSS(x, tneg, -100, TN_REDUCE_SUM) == NULL);
        CHECK_MSG(tn_tape_error(tp), "target -1 at position 1");
        tn_tape_reset(tp);
        CHECK(LOSS(x, tneg, -1, TN_REDUCE_SUM) != NULL); /* -1 ignored: fine */
        tn_tape_reset(tp);
        CHECK(LOSS(x, tf, -100, TN_REDUCE_MEAN) == NULL);
        CHECK_MSG(tn_tape_error(tp), names[k]);
        CHECK(tn_last_status() == TN_ERR_DTYPE);
        tn_tape_reset(tp);
        CHECK(LOSS(tok, tok, -100, TN_REDUCE_MEAN) == NULL); /* int32 logits */
        CHECK_MSG(tn_tape_error(tp), names[k]);
        CHECK(tn_last_status() == TN_ERR_DTYPE);
        tn_tape_reset(tp);
        CHECK(LOSS(x, t5, -100, TN_REDUCE_MEAN) == NULL);
        CHECK_MSG(tn_tape_error(tp), names[k]);
        CHECK_MSG(tn_tape_error(tp), "[5]");
        CHECK(tn_last_status() == TN_ERR_SHAPE);
        tn_tape_reset(tp);
        CHECK(LOSS(x3, tok, -100, TN_REDUCE_MEAN) == NULL);
        CHECK_MSG(tn_tape_error(tp), "[4, 4, 1]");
        CHECK(tn_last_status() == TN_ERR_SHAPE);
        tn_tape_reset(tp);
        CHECK(LOSS(x, tok, -100, (tn_reduction)7) == NULL);
        CHECK_MSG(tn_tape_error(tp), names[k]);
        CHECK(tn_last_status() == TN_ERR_ARG);
        tn_tape_reset(tp);
        CHECK(LOSS(x, NULL, -100, TN_REDUCE_MEAN) == NULL);
        CHECK_MSG(tn_tape_error(tp), names[k]);
        CHECK(tn_last_status() == TN_ERR_ARG);
        tn_tape_reset(tp);
#undef LOSS
    }
    tn_tensor_free(x);
    tn_tensor_free(tg);
    tn_tensor_free(tneg);
    tn_tensor_free(tok);
    tn_tensor_free(t5);
    tn_tensor_free(tf);
    tn_tensor_free(x3);
    tn_tape_free(tp);
}

/* ---- mse ---- */

static void test_mse(tn_dtype dt)
{
    tn_tape *tp = tn_tape_new();
    int64_t shape[2] = {300, 200}; /* 60000 elements: parallel paths */
    tn_tensor *a = rand_t(dt, 2, shape, -1, 1), *bt = rand_t(dt, 2, (int64_t[]){200, 300}, -1, 1);
    tn_tensor_set_requires_grad(a, true);
    tn_tensor_set_requires_grad(bt, true);
    double *av = check_values(a), *bv = check_values(bt);
    int64_t n = 60000;
    double *d = malloc(sizeof(double) * n), sum = 0;
    for (int64_t i = 0; i < 300; i++)
        for (int64_t j = 0; j < 200; j++) {
            d[i * 200 + j] = av[i * 200 + j] - bv[j * 300 + i]; /* b = transpose(bt) */
            sum += d[i * 200 + j] * d[i * 200 + j];
        }
    for (int r = 0; r < 3; r++) {
        tn_reduction red = (tn_reduction)r;
        tn_tape_reset(tp);
        tn_tensor_zero_grad(a);
        tn_tensor_zero_grad(bt);
        tn_tensor *y = tn_mse(tp, a, tn_transpose(tp, bt, 0, 1), red);
        CHECK(y);
        if (!y)
            continue;
        if (red == TN_REDUCE_NONE) {
            CHECK(y->ndim == 2 && y->shape[0] == 300 && y->shape[1] == 200);
            double err = 0;
            for (int64_t i = 0; i < n; i++)
                err = fmax(err, fabs(tn_tensor_get(y, i) - d[i] * d[i]) / (1 + d[i] * d[i]));
            CHECK(err <= tol_of(dt, 1e-6));
        } else {
            double w = red == TN_REDUCE_MEAN ? sum / (double)n : sum;
            CHECK(y->ndim == 1 && y->shape[0] == 1);
            CHECK_NEAR(tn_tensor_get(y, 0), w, tol_of(dt, 2e-7) * (1 + w));
        }
        /* dL/da = 2 d g, dL/db = -2 d g with g = 1 (sum), 1/n (mean), and
         * for none a seed dy = 1 everywhere */
        tn_tensor *s = red == TN_REDUCE_NONE ? tn_sum(tp, y) : y;
        CHECK(tn_backward(tp, s) == TN_OK);
        double g = red == TN_REDUCE_MEAN ? 1.0 / (double)n : 1.0, err = 0;
        for (int64_t i = 0; i < 300; i++)
            for (int64_t j = 0; j < 200; j++) {
                double want = 2 * d[i * 200 + j] * g;
                double den = g * (1 + fabs(2 * d[i * 200 + j]));
                err = fmax(err, fabs(tn_tensor_grad_get(a, i * 200 + j) - want) / den);
                err = fmax(err, fabs(tn_tensor_grad_get(bt, j * 300 + i) + want) / den);
            }
        CHECK(err <= tol_of(dt, 1e-6));
    }
    /* same tensor twice: zero loss, zero gradient */
    tn_tape_reset(tp);
    tn_tensor_zero_grad(a);
    tn_tensor *z = tn_mse(tp, a, a, TN_REDUCE_SUM);
    CHECK(z && tn_tensor_get(z, 0) == 0 && tn_backward(tp, z) == TN_OK);
    CHECK(tn_tensor_grad_get(a, 123) == 0);
    free(av);
    free(bv);
    free(d);
    tn_tensor_free(a);
    tn_tensor_free(bt);
    tn_tape_free(tp);
}

static void test_mse_errors(void)
{
    tn_tape *tp = tn_tape_new();
    tn_tensor *a = tn_tensor_new(TN_F32, 2, (int64_t[]){2, 3});
    tn_tensor *b = tn_tensor_new(TN_F32, 2, (int64_t[]){3, 2});
    tn_tensor *c = tn_tensor_new(TN_F32, 1, (int64_t[]){6});
    tn_tensor *d = tn_tensor_new(TN_F64, 2, (int64_t[]){2, 3});
    tn_tensor *i = tn_tensor_new(TN_I32, 2, (int64_t[]){2, 3});
    CHECK(tn_mse(tp, a, b, TN_REDUCE_MEAN) == NULL);
    CHECK_MSG(tn_tape_error(tp), "mse: shapes [2, 3] and [3, 2] differ");
    CHECK(tn_last_status() == TN_ERR_SHAPE);
    tn_tape_reset(tp);
    CHECK(tn_mse(tp, a, c, TN_REDUCE_SUM) == NULL); /* same numel, other shape */
    CHECK(tn_last_status() == TN_ERR_SHAPE);
    tn_tape_reset(tp);
    CHECK(tn_mse(tp, a, d, TN_REDUCE_MEAN) == NULL);
    CHECK_MSG(tn_tape_error(tp), "mse");
    CHECK(tn_last_status() == TN_ERR_DTYPE);
    tn_tape_reset(tp);
    CHECK(tn_mse(tp, a, i, TN_REDUCE_MEAN) == NULL);
    CHECK(tn_last_status() == TN_ERR_DTYPE);
    tn_tape_reset(tp);
    CHECK(tn_mse(tp, a, a, (tn_reduction)-1) == NULL);
    CHECK_MSG(tn_tape_error(tp), "mse: unknown reduction");
    CHECK(tn_last_status() == TN_ERR_ARG);
    tn_tensor_free(a);
    tn_tensor_free(b);
    tn_tensor_free(c);
    tn_tensor_free(d);
    tn_tensor_free(i);
    tn_tape_free(tp);
}

int main(void)
{
    tn_rng_seed(&rng, 7);
    for (int k = 0; k < 2; k++) {
        tn_dtype dt = k ? TN_F32 : TN_F64;
        test_gather_forward(dt);
        test_gather_backward(dt);
        test_gather_large(dt);
        test_class_losses(dt);
        test_ce_vs_composition(dt);
        test_all_ignored(dt);
        test_ce_extreme(dt);
        test_ce_large(dt);
        test_mse(dt);
    }
    test_gather_errors();
    test_class_errors();
    test_mse_errors();
    return check_report("test_loss");
}
