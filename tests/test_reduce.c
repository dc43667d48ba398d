/* tests/test_reduce.c - forward values of sum, mean, softmax and
 * log_softmax against naive double loops (every dim, keepdim, strided
 * views, both dtypes, sizes that take the parallel paths), their backward
 * on large inputs (the gradient checks only use small ones), numerically
 * extreme inputs, and every class of bad input.
 *
 * Tolerances (relative to 1 + |want|):
 *   float64: sums of <= 60000 values in [-1, 1) rounded at 2^-53 each:
 *     < 1e-11; tol 1e-10 (softmax: a few ulps, also 1e-10).
 *   float32: inputs are floats, sums are accumulated in double and rounded
 *     once to float (2^-24 = 6e-8), so tol 2e-7 for sums and means; softmax
 *     uses float exp (a few ulps): tol 1e-6.
 */
#include "check.h"
#include "tensor/ops.h"

#include <stdlib.h>

static tn_rng rng;

static tn_tensor *rand_t(tn_dtype dt, int nd, const int64_t *shape)
{
    tn_tensor *t = tn_tensor_new(dt, nd, shape);
    tn_tensor_uniform(t, &rng, -1, 1);
    return t;
}

static double tol_of(tn_dtype dt, double t32) { return dt == TN_F32 ? t32 : 1e-10; }

/* Max over elements of |got - want| / (1 + |want|). */
static double max_rel(const tn_tensor *got, const double *want)
{
    double e = 0;
    for (int64_t i = 0; i < tn_numel(got); i++) {
        double d = fabs(tn_tensor_get(got, i) - want[i]) / (1 + fabs(want[i]));
        if (d > e)
            e = d;
    }
    return e;
}

/* ---- naive references (row-major double arrays) ---- */

/* out[kept dims] = sum of x [shape] along dim d (divided by n for mean). */
static void sum_dim_naive(const double *x, int nd, const int64_t *shape, int d, bool mean,
                          double *out, int64_t nout)
{
    int64_t numel = 1;
    for (int k = 0; k < nd; k++)
        numel *= shape[k];
    for (int64_t o = 0; o < nout; o++)
        out[o] = 0;
    for (int64_t i = 0; i < numel; i++) {
        int64_t q = i, o = 0, mul = 1;
        for (int k = nd - 1; k >= 0; k--) {
            int64_t ik = q % shape[k];
            q /= shape[k];
            if (k != d) {
                o += ik * mul;
                mul *= shape[k];
            }
        }
        out[o] += x[i];
    }
    if (mean)
        for (int64_t o = 0; o < nout; o++)
            out[o] /= (double)shape[d];
}

/* y = softmax or log_softmax of x [outer, n, inner] along the middle. */
static void softmax_naive(const double *x, int64_t outer, int64_t n, int64_t inner, bool lg,
                          double *y)
{
    for (int64_t a = 0; a < outer; a++)
        for (int64_t b = 0; b < inner; b++) {
            double m = -INFINITY, z = 0;
            for (int64_t k = 0; k < n; k++)
                m = fmax(m, x[(a * n + k) * inner + b]);
            for (int64_t k = 0; k < n; k++)
                z += exp(x[(a * n + k) * inner + b] - m);
            for (int64_t k = 0; k < n; k++) {
                int64_t i = (a * n + k) * inner + b;
                y[i] = lg ? x[i] - m - log(z) : exp(x[i] - m) / z;
            }
        }
}

/* ---- sum / mean ---- */

static void test_sum_all(tn_dtype dt)
{
    tn_tape *tp = tn_tape_new();
    int64_t shape[3] = {3, 4, 5};
    tn_tensor *x = rand_t(dt, 3, shape);
    double *v = check_values(x), want = 0;
    for (int i = 0; i < 60; i++)
        want += v[i];
    tn_tensor *s = tn_sum(tp, x), *m = tn_mean(tp, x);
    CHECK(s && s->ndim == 1 && s->shape[0] == 1 && s->dtype == dt);
    CHECK(m && m->ndim == 1 && m->shape[0] == 1);
    CHECK_NEAR(tn_tensor_get(s, 0), want, tol_of(dt, 2e-7) * (1 + fabs(want)));
    CHECK_NEAR(tn_tensor_get(m, 0), want / 60, tol_of(dt, 2e-7));

    /* non-contiguous and large: a transposed [300, 200] view, 60000
     * elements, the parallel parts with the strided odometer walk */
    tn_tensor *big = rand_t(dt, 2, (int64_t[]){300, 200});
    double *bv = check_values(big), bw = 0;
    for (int i = 0; i < 60000; i++)
        bw += bv[i];
    tn_tensor *bt = tn_transpose(tp, big, 0, 1);
    CHECK(bt && !tn_is_contiguous(bt));
    tn_tensor *bs = tn_sum(tp, bt), *bm = tn_mean(tp, tn_narrow(tp, bt, 1, 0, 300));
    CHECK(bs && bm);
    if (bs && bm) {
        CHECK_NEAR(tn_tensor_get(bs, 0), bw, tol_of(dt, 2e-7) * (1 + fabs(bw)));
        CHECK_NEAR(tn_tensor_get(bm, 0), bw / 60000, tol_of(dt, 2e-7));
    }
    /* narrowed (gappy) view: columns 50..149 of every row */
    tn_tensor *nv = tn_narrow(tp, big, 1, 50, 100);
    double nw = 0;
    for (int r = 0; r < 300; r++)
        for (int c = 50; c < 150; c++)
            nw += bv[r * 200 + c];
    tn_tensor *ns = tn_sum(tp, nv);
    CHECK(ns);
    if (ns)
        CHECK_NEAR(tn_tensor_get(ns, 0), nw, tol_of(dt, 2e-7) * (1 + fabs(nw)));
    free(v);
    free(bv);
    tn_tensor_free(x);
    tn_tensor_free(big);
    tn_tape_free(tp);
}

/* float32 sums accumulate in double: 1e6 copies of 0.1f sum to within one
 * float ulp (0.0078 at 1e5) of the exact value, where a float accumulator
 * is off by ~1000. */
static void test_sum_f32_accuracy(void)
{
    tn_tape *tp = tn_tape_new();
    tn_tensor *x = tn_tensor_full(TN_F32, 1, (int64_t[]){1000000}, 0.1);
    double exact = 1e6 * (double)0.1f;
    tn_tensor *s = tn_sum(tp, x), *m = tn_mean(tp, x);
    CHECK(s && m);
    CHECK_NEAR(tn_tensor_get(s, 0), exact, 0.0079);
    CHECK_NEAR(tn_tensor_get(m, 0), (double)0.1f, 1e-8);
    tn_tensor_free(x);
    tn_tape_free(tp);
}

static void test_sum_dim(tn_dtype dt)
{
    tn_tape *tp = tn_tape_new();
    int64_t shape[4] = {2, 3, 4, 5};
    tn_tensor *x = rand_t(dt, 4, shape);
    double *v = check_values(x), want[120];
    for (int d = -4; d < 4; d++) {
        int dd = d < 0 ? d + 4 : d;
        for (int keep = 0; keep < 2; keep++)
            for (int mean = 0; mean < 2; mean++) {
                tn_tensor *y = mean ? tn_mean_dim(tp, x, d, keep) : tn_sum_dim(tp, x, d, keep);
                CHECK(y);
                if (!y)
                    continue;
                CHECK(y->ndim == (keep ? 4 : 3));
                for (int k = 0, j = 0; k < 4; k++) {
                    if (k == dd && !keep)
                        continue;
                    CHECK(y->shape[j] == (k == dd ? 1 : shape[k]));
                    j++;
                }
                sum_dim_naive(v, 4, shape, dd, mean, want, 120 / shape[dd]);
                CHECK(tn_numel(y) == 120 / shape[dd]);
                CHECK(max_rel(y, want) <= tol_of(dt, 2e-7));
            }
    }
    /* 1-D input reduces to [1] */
    tn_tensor *x1 = rand_t(dt, 1, (int64_t[]){7});
    tn_tensor *y1 = tn_sum_dim(tp, x1, 0, false), *y1k = tn_mean_dim(tp, x1, -1, true);
    CHECK(y1 && y1->ndim == 1 && y1->shape[0] == 1);
    CHECK(y1k && y1k->ndim == 1 && y1k->shape[0] == 1);
    double s1 = 0;
    for (int i = 0; i < 7; i++)
        s1 += tn_tensor_get(x1, i);
    if (y1 && y1k) {
        CHECK_NEAR(tn_tensor_get(y1, 0), s1, tol_of(dt, 2e-7) * (1 + fabs(s1)));
        CHECK_NEAR(tn_tensor_get(y1k, 0), s1 / 7, tol_of(dt, 2e-7));
    }
    /* strided view: transpose of [2, 3, 4, 5] dims 1 and 3 -> [2, 5, 4, 3] */
    tn_tensor *xt = tn_transpose(tp, x, 1, 3);
    tn_tensor *ct = tn_contiguous(tp, xt);
    CHECK(xt && ct);
    if (xt && ct) {
        double *cv = check_values(ct);
        for (int d = 0; d < 4; d++) {
            tn_tensor *y = tn_sum_dim(tp, xt, d, false);
            sum_dim_naive(cv, 4, xt->shape, d, false, want, 120 / xt->shape[d]);
            CHECK(y && max_rel(y, want) <= tol_of(dt, 2e-7));
        }
        free(cv);
    }
    free(v);
    tn_tensor_free(x);
    tn_tensor_free(x1);
    tn_tape_free(tp);
}

/* Large inputs take the parallel loops: forward and backward. */
static void test_reduce_large(tn_dtype dt)
{
    tn_tape *tp = tn_tape_new();
    int64_t shape[2] = {256, 300};
    tn_tensor *x = rand_t(dt, 2, shape);
    tn_tensor_set_requires_grad(x, true);
    double *v = check_values(x);
    double *want = malloc(sizeof(double) * 300);
    for (int d = 0; d < 2; d++) {
        tn_tape_reset(tp);
        tn_tensor_zero_grad(x);
        tn_tensor *y = tn_mean_dim(tp, x, d, true);
        int64_t nout = 76800 / shape[d];
        sum_dim_naive(v, 2, shape, d, true, want, nout);
        CHECK(y && max_rel(y, want) <= tol_of(dt, 2e-7));
        /* backward with dy = 1, 2, 3, ...: dx[i, j] = dy[kept index] / n */
        tn_tensor *dy = tn_tensor_new(TN_F64, 2, y->shape);
        for (int64_t o = 0; o < nout; o++)
            tn_tensor_set(dy, o, (double)(o + 1));
        CHECK(tn_backward_from(tp, y, dy) == TN_OK);
        double err = 0;
        for (int64_t i = 0; i < 256; i++)
            for (int64_t j = 0; j < 300; j++) {
                double w = (double)((d == 0 ? j : i) + 1) / (double)shape[d];
                err = fmax(err, fabs(tn_tensor_grad_get(x, i * 300 + j) - w) / w);
            }
        CHECK(err <= tol_of(dt, 2e-7));
        tn_tensor_free(dy);
    }
    /* all-element sum backward: every dx is dy = 1 */
    tn_tape_reset(tp);
    tn_tensor_zero_grad(x);
    tn_tensor *s = tn_sum(tp, tn_transpose(tp, x, 0, 1));
    CHECK(s && tn_backward(tp, s) == TN_OK);
    double err = 0;
    for (int64_t i = 0; i < 76800; i++)
        err = fmax(err, fabs(tn_tensor_grad_get(x, i) - 1));
    CHECK(err == 0);
    free(v);
    free(want);
    tn_tensor_free(x);
    tn_tape_free(tp);
}

static void test_reduce_errors(void)
{
    tn_tape *tp = tn_tape_new();
    tn_tensor *x = tn_tensor_new(TN_F32, 3, (int64_t[]){2, 3, 4});
    tn_tensor *ix = tn_tensor_new(TN_I32, 1, (int64_t[]){4});

    CHECK(tn_sum_dim(tp, x, 3, false) == NULL);
    CHECK_MSG(tn_tape_error(tp), "sum_dim");
    CHECK_MSG(tn_tape_error(tp), "dim 3");
    CHECK_MSG(tn_tape_error(tp), "[2, 3, 4]");
    CHECK(tn_last_status() == TN_ERR_ARG);
    /* sticky: a later valid op returns NULL quietly, keeping the cause */
    CHECK(tn_sum(tp, x) == NULL);
    CHECK_MSG(tn_tape_error(tp), "sum_dim");
    tn_tape_reset(tp);

    CHECK(tn_mean_dim(tp, x, -4, true) == NULL);
    CHECK_MSG(tn_tape_error(tp), "mean_dim");
    CHECK_MSG(tn_tape_error(tp), "dim -4");
    tn_tape_reset(tp);
    CHECK(tn_mean_dim(tp, x, -3, true) != NULL); /* -3 is dim 0: valid */
    tn_tape_reset(tp);

    CHECK(tn_sum(tp, ix) == NULL);
    CHECK_MSG(tn_tape_error(tp), "sum");
    CHECK(tn_last_status() == TN_ERR_DTYPE);
    tn_tape_reset(tp);
    CHECK(tn_mean(tp, ix) == NULL);
    CHECK_MSG(tn_tape_error(tp), "mean");
    tn_tape_reset(tp);
    CHECK(tn_sum(tp, NULL) == NULL);
    CHECK_MSG(tn_tape_error(tp), "sum");
    CHECK(tn_last_status() == TN_ERR_ARG);
    tn_tape_reset(tp);
    CHECK(tn_sum(NULL, x) == NULL);
    CHECK_MSG(tn_last_error(), "sum");

    tn_tensor_free(x);
    tn_tensor_free(ix);
    tn_tape_free(tp);
}

/* ---- softmax / log_softmax ---- */

static void test_softmax_values(tn_dtype dt)
{
    tn_tape *tp = tn_tape_new();
    int64_t shape[3] = {3, 4, 5};
    tn_tensor *x = tn_tensor_new(dt, 3, shape);
    tn_tensor_uniform(x, &rng, -4, 4);
    double *v = check_values(x), want[60];
    for (int d = -3; d < 3; d++) {
        int dd = d < 0 ? d + 3 : d;
        int64_t outer = 1, inner = 1;
        for (int k = 0; k < dd; k++)
            outer *= shape[k];
        for (int k = dd + 1; k < 3; k++)
            inner *= shape[k];
        for (int lg = 0; lg < 2; lg++) {
            tn_tensor *y = lg ? tn_log_softmax(tp, x, d) : tn_softmax(tp, x, d);
            CHECK(y && y->ndim == 3 && y->shape[0] == 3 && y->shape[2] == 5 && y->dtype == dt);
            softmax_naive(v, outer, shape[dd], inner, lg, want);
            CHECK(y && max_rel(y, want) <= tol_of(dt, 1e-6));
        }
    }
    /* rows of a softmax sum to 1 */
    tn_tensor *p = tn_softmax(tp, x, 1), *ps = tn_sum_dim(tp, p, 1, false);
    for (int64_t i = 0; ps && i < tn_numel(ps); i++)
        CHECK_NEAR(tn_tensor_get(ps, i), 1.0, tol_of(dt, 1e-6));
    /* strided view: softmax along dim 0 of a transposed [5, 4, 3] view */
    tn_tensor *xt = tn_transpose(tp, x, 0, 2), *ct = tn_contiguous(tp, xt);
    CHECK(xt && ct);
    if (xt && ct) {
        double *cv = check_values(ct);
        for (int lg = 0; lg < 2; lg++) {
            tn_tensor *y = lg ? tn_log_softmax(tp, xt, 0) : tn_softmax(tp, xt, 0);
            softmax_naive(cv, 1, 5, 12, lg, want);
            CHECK(y && tn_is_contiguous(y) && max_rel(y, want) <= tol_of(dt, 1e-6));
        }
        free(cv);
    }
    free(v);
    tn_tensor_free(x);
    tn_tape_free(tp);
}

/* Logits of +-1000 overflow a naive exp: the results must stay exact. */
static void test_softmax_extreme(tn_dtype dt)
{
    tn_tape *tp = tn_tape_new();
    double xv[6] = {1000, -1000, 0, -1000, 1000, 1000};
    tn_tensor *x = tn_tensor_from(TN_F64, 2, (int64_t[]){2, 3}, xv);
    tn_tensor *xd = tn_tensor_new(dt, 2, (int64_t[]){2, 3});
    tn_tensor_copy(xd, x);
    tn_tensor *p = tn_softmax(tp, xd, -1), *lp = tn_log_softmax(tp, xd, -1);
    CHECK(p && lp);
    if (p && lp) {
        double wp[6] = {1, 0, 0, 0, 0.5, 0.5};
        double wl[6] = {0, -2000, -1000, -2000 - log(2.0), -log(2.0), -log(2.0)};
        for (int i = 0; i < 6; i++) {
            CHECK(isfinite(tn_tensor_get(p, i)) && isfinite(tn_tensor_get(lp, i)));
            CHECK_NEAR(tn_tensor_get(p, i), wp[i], 1e-7);
            CHECK_NEAR(tn_tensor_get(lp, i), wl[i], 1e-7 * (1 + fabs(wl[i])));
        }
    }
    /* -inf entries (masked positions) get probability 0 */
    double mv[3] = {-INFINITY, 0, 0};
    tn_tensor *m = tn_tensor_from(TN_F64, 1, (int64_t[]){3}, mv);
    tn_tensor *md = tn_tensor_new(dt, 1, (int64_t[]){3});
    tn_tensor_copy(md, m);
    tn_tensor *pm = tn_softmax(tp, md, 0);
    CHECK(pm && tn_tensor_get(pm, 0) == 0);
    if (pm)
        CHECK_NEAR(tn_tensor_get(pm, 1), 0.5, 1e-7);
    tn_tensor_free(x);
    tn_tensor_free(xd);
    tn_tensor_free(m);
    tn_tensor_free(md);
    tn_tape_free(tp);
}

/* [64, 1024]: the parallel forward and backward against the formulas. */
static void test_softmax_large(tn_dtype dt)
{
    tn_tape *tp = tn_tape_new();
    int64_t shape[2] = {64, 1024};
    int64_t n = 64 * 1024;
    tn_tensor *x = tn_tensor_new(dt, 2, shape);
    tn_tensor_uniform(x, &rng, -5, 5);
    tn_tensor_set_requires_grad(x, true);
    tn_tensor *dy = tn_tensor_new(TN_F64, 2, shape);
    tn_tensor_uniform(dy, &rng, -1, 1);
    double *v = check_values(x), *g = check_values(dy);
    double *y = malloc(sizeof(double) * (size_t)n);
    for (int lg = 0; lg < 2; lg++) {
        tn_tape_reset(tp);
        tn_tensor_zero_grad(x);
        tn_tensor *out = lg ? tn_log_softmax(tp, x, 1) : tn_softmax(tp, x, 1);
        softmax_naive(v, 64, 1024, 1, lg, y);
        CHECK(out && max_rel(out, y) <= tol_of(dt, 1e-6));
        CHECK(out && tn_backward_from(tp, out, dy) == TN_OK);
        double err = 0;
        for (int64_t r = 0; r < 64; r++) {
            double acc = 0;
            for (int64_t k = 0; k < 1024; k++)
                acc += lg ? g[r * 1024 + k] : g[r * 1024 + k] * y[r * 1024 + k];
            for (int64_t k = 0; k < 1024; k++) {
                int64_t i = r * 1024 + k;
                double want = lg ? g[i] - exp(y[i]) * acc : y[i] * (g[i] - acc);
                err = fmax(err, fabs(tn_tensor_grad_get(x, i) - want) / (1 + fabs(want)));
            }
        }
        CHECK(err <= tol_of(dt, 1e-6));
    }
    free(v);
    free(g);
    free(y);
    tn_tensor_free(x);
    tn_tensor_free(dy);
    tn_tape_free(tp);
}

static void test_softmax_errors(void)
{
    tn_tape *tp = tn_tape_new();
    tn_tensor *x = tn_tensor_new(TN_F64, 2, (int64_t[]){2, 3});
    tn_tensor *ix = tn_tensor_new(TN_I32, 2, (int64_t[]){2, 3});
    CHECK(tn_softmax(tp, x, 2) == NULL);
    CHECK_MSG(tn_tape_error(tp), "softmax");
    CHECK_MSG(tn_tape_error(tp), "[2, 3]");
    tn_tape_reset(tp);
    CHECK(tn_log_softmax(tp, x, -3) == NULL);
    CHECK_MSG(tn_tape_error(tp), "log_softmax");
    CHECK(tn_last_status() == TN_ERR_ARG);
    tn_tape_reset(tp);
    CHECK(tn_softmax(tp, ix, 0) == NULL);
    CHECK_MSG(tn_tape_error(tp), "softmax");
    CHECK(tn_last_status() == TN_ERR_DTYPE);
    tn_tape_reset(tp);
    CHECK(tn_log_softmax(tp, NULL, 0) == NULL);
    CHECK_MSG(tn_tape_error(tp), "log_softmax");
    tn_tensor_free(x);
    tn_tensor_free(ix);
    tn_tape_free(tp);
}

int main(void)
{
    tn_rng_seed(&rng, 42);
    for (int k = 0; k < 2; k++) {
        tn_dtype dt = k ? TN_F32 : TN_F64;
        test_sum_all(dt);
        test_sum_dim(dt);
        test_reduce_large(dt);
        test_softmax_values(dt);
        test_softmax_extreme(dt);
        test_softmax_large(dt);
    }
    test_sum_f32_accuracy();
    test_reduce_errors();
    test_softmax_errors();
    return check_report("test_reduce");
}
