/* tests/test_kernels.c - the optimised kernels against their plain twins:
 *
 *  - every row-kernel table this CPU can run (rows.h: float generic, avx2,
 *    avx512; double) against tn__rows_naive, on random rows of several
 *    widths (vector tails) with gate strides wider than the rows;
 *  - the element-wise rows of the unary and binary ops (map, zip) and of
 *    softmax / log_softmax of every table against their naive twins,
 *    contiguous and strided;
 *  - the packed per-step product on BLIS's micro-kernel (tn__packed_mul)
 *    against tn__gemm_naive, over shapes that cut every tile edge, both
 *    dtypes, := and +=, packed from strided and transposed sources.
 *
 * Tolerances. Float tables: 2e-6 absolute on values of order 1: the fast
 * exp/tanh/sigmoid are within 4e-7 of libm (test_fastmath) and each output
 * is a product or sum of a few such terms rounded to float (measured worst
 * 4.2e-7); a wrong gate, stride or index is off by 1e-2 or more. Double table: 1e-13 (the same libm functions, other
 * operation order). Products: the K-term sums of values in [-1, 1] differ
 * from the double reference by rounding only: float 1e-6 * K, double
 * 1e-14 * K (several times the worst case sqrt(K) * eps growth seen).
 */
#include "check.h"

#include "../src/ops/ops_internal.h"
#include "../src/ops/rows.h"

static tn_rng rng;

static void fill(double *v, int64_t n, double lo, double hi)
{
    for (int64_t i = 0; i < n; i++)
        v[i] = lo + (hi - lo) * tn_rng_uniform(&rng);
}

/* A buffer of n values of dtype dt holding v (rounded for float). */
static void *to_dt(const double *v, int64_t n, tn_dtype dt)
{
    void *p = malloc((size_t)n * tn_dtype_size(dt));
    for (int64_t i = 0; i < n; i++)
        if (dt == TN_F32)
            ((float *)p)[i] = (float)v[i];
        else
            ((double *)p)[i] = v[i];
    return p;
}

static double val(const void *p, int64_t i, tn_dtype dt)
{
    return dt == TN_F32 ? ((const float *)p)[i] : ((const double *)p)[i];
}

/* Max |p[i] - ref[i]| over n values. */
static double maxdiff(const void *p, const double *ref, int64_t n, tn_dtype dt)
{
    double m = 0;
    for (int64_t i = 0; i < n; i++)
        m = fmax(m, fabs(val(p, i, dt) - ref[i]));
    return m;
}

/* The same inputs (rounded to dt) through table t and through the naive
 * references; the worst difference of every output. */
enum { NB = 12 }; /* buffers per case */

typedef struct kcase {
    int64_t n, ga, gp;
    double *in[NB];  /* the inputs, double */
    int64_t len[NB]; /* their lengths */
} kcase;

static double run_table(const tn__rows *t, tn_dtype dt, const kcase *c, int which)
{
    void *b[NB];
    double *ref[NB];
    for (int i = 0; i < NB; i++) {
        b[i] = to_dt(c->in[i], c->len[i], dt);
        ref[i] = malloc(sizeof(double) * (size_t)c->len[i]);
        for (int64_t k = 0; k < c->len[i]; k++) /* the reference sees the rounded inputs */
            ref[i][k] = val(b[i], k, dt);
    }
    const tn__rows *nv = &tn__rows_naive;
    int64_t n = c->n, ga = c->ga, gp = c->gp;
    /* buffers: 0 a, 1 bias, 2 p, 3 cp/hp, 4 h, 5 c/q, 6 doh, 7 doc, 8 gh, 9 gc/dp, 10 bn */
    switch (which) {
    case 0:
        t->lstm_fw(n, ga, b[0], b[1], b[2], gp, b[3], b[4], b[5]);
        nv->lstm_fw(n, ga, ref[0], ref[1], ref[2], gp, ref[3], ref[4], ref[5]);
        break;
    case 1:
        t->lstm_bw(n, ga, b[0], b[5], b[3], b[6], b[7], b[8], b[9]);
        nv->lstm_bw(n, ga, ref[0], ref[5], ref[3], ref[6], ref[7], ref[8], ref[9]);
        break;
    case 2:
        t->gru_fw(n, ga, b[0], b[1], b[2], gp, b[10], b[3], b[5], b[4]);
        nv->gru_fw(n, ga, ref[0], ref[1], ref[2], gp, ref[10], ref[3], ref[5], ref[4]);
        break;
    case 3:
        t->gru_bw(n, ga, b[0], b[5], b[3], b[6], b[8], b[9]);
        nv->gru_bw(n, ga, ref[0], ref[5], ref[3], ref[6], ref[8], ref[9]);
        break;
    case 4:
    case 5:
        t->rnn_fw(n, b[0], b[1], b[2], which == 5, b[4]);
        nv->rnn_fw(n, ref[0], ref[1], ref[2], which == 5, ref[4]);
        break;
    case 6:
    case 7:
        t->rnn_bw(n, b[0], b[4], b[6], which == 7, b[8]);
        nv->rnn_bw(n, ref[0], ref[4], ref[6], which == 7, ref[8]);
        break;
    case 8: /* column sums of a [rows = 3, n] block with row stride ga, into gc */
        t->colsum(b[0], 3, n, ga, b[9], 1);
        nv->colsum(ref[0], 3, n, ga, ref[9], 1);
        break;
    }
    double worst = 0;
    for (int i = 0; i < NB; i++) {
        worst = fmax(worst, maxdiff(b[i], ref[i], c->len[i], dt));
        free(b[i]);
        free(ref[i]);
    }
    return worst;
}

/* Every table, the path it needs, and its tolerance (see the head of the
 * file); the row widths cut the vector tails of every path. */
static const struct {
    const tn__rows *t;
    tn_dtype dt;
    const char *name;
    tn_isa needs;
    double tol;
} tabs[] = {
    {&tn__rows_f32_generic, TN_F32, "f32 generic", TN_ISA_GENERIC, 2e-6},
    {&tn__rows_f32_avx2, TN_F32, "f32 avx2", TN_ISA_AVX2, 2e-6},
    {&tn__rows_f32_avx512, TN_F32, "f32 avx512", TN_ISA_AVX512, 2e-6},
    {&tn__rows_f64, TN_F64, "f64", TN_ISA_GENERIC, 1e-13},
};
static const int64_t widths[] = {1, 7, 16, 37, 64, 100};

static void test_rows(void)
{
    static const char *const kname[] = {"lstm_fw",     "lstm_bw", "gru_fw",      "gru_bw", "rnn_fw",
                                        "rnn_relu_fw", "rnn_bw",  "rnn_relu_bw", "colsum"};
    for (size_t ti = 0; ti < sizeof tabs / sizeof tabs[0]; ti++) {
        if (tabs[ti].needs > tn_isa_cpu()) {
            printf("rows %s: skipped (this CPU lacks the path)\n", tabs[ti].name);
            continue;
        }
        double worst[9] = {0};
        for (size_t wi = 0; wi < sizeof widths / sizeof widths[0]; wi++) {
            kcase c = {.n = widths[wi], .ga = widths[wi] + 3, .gp = widths[wi] + 1};
            int64_t lens[NB] = {4 * c.ga, 4 * c.ga, 4 * c.gp, c.n,      c.n, c.n,
                                c.n,      c.n,      c.n,      4 * c.ga, c.n, 1};
            for (int i = 0; i < NB; i++) {
                c.len[i] = lens[i];
                c.in[i] = malloc(sizeof(double) * (size_t)lens[i]);
                fill(c.in[i], lens[i], -2, 2);
            }
            for (int k = 0; k < 9; k++) {
                kcase ck = c;
                double *gates = malloc(sizeof(double) * (size_t)lens[0]);
                if (k == 1 || k == 3) { /* backward takes activated gates in (0, 1) */
                    fill(gates, lens[0], 0.05, 0.95);
                    ck.in[0] = gates;
                }
                if (k == 6 || k == 7) { /* h = tanh(...) in (-1, 1) */
                    double *h = malloc(sizeof(double) * (size_t)c.n);
                    fill(h, c.n, -0.95, 0.95);
                    ck.in[4] = h;
                    worst[k] = fmax(worst[k], run_table(tabs[ti].t, tabs[ti].dt, &ck, k));
                    free(h);
                } else {
                    worst[k] = fmax(worst[k], run_table(tabs[ti].t, tabs[ti].dt, &ck, k));
                }
                free(gates);
            }
            for (int i = 0; i < NB; i++)
                free(c.in[i]);
        }
        printf("rows %s vs naive:", tabs[ti].name);
        for (int k = 0; k < 9; k++) {
            printf(" %s %.2g", kname[k], worst[k]);
            CHECK(worst[k] <= tabs[ti].tol);
        }
        printf("\n");
    }
}

/* The element-wise rows (map_fw/map_bw, zip_fw/zip_bw, softmax and masked
 * softmax, mse's sqdiff) of table t against the naive ones: every
 * function, widths across the vector tails, each input contiguous and
 * strided (stride 3; 0 for a broadcast zip operand).
 * Inputs in [0.2, 2] (log and div stay well conditioned) with random signs
 * except for log. Returns the worst difference relative to max(1, |ref|). */
static double run_elementwise(const tn__rows *t, tn_dtype dt, int64_t n)
{
    const tn__rows *nv = &tn__rows_naive;
    double worst = 0;
    int64_t len = 3 * n;
    double *x = malloc(sizeof(double) * (size_t)len), *z = malloc(sizeof(double) * (size_t)len);
    double *dy = malloc(sizeof(double) * (size_t)n), *dx0 = malloc(sizeof(double) * (size_t)len);
    fill(dx0, len, -1, 1); /* the gradient being added into */
    uint8_t *keep = malloc((size_t)n);
    fill(dy, n, -1, 1);
    for (int64_t j = 0; j < n; j++)
        keep[j] = tn_rng_uniform(&rng) < 0.7;
    for (int f = 0; f < TN__MAP_COUNT; f++)
        for (int strided = 0; strided < 2; strided++) {
            int64_t ix = strided ? 3 : 1;
            fill(x, len, 0.2, 2);
            if (f != TN__MAP_LOG)
                for (int64_t k = 0; k < len; k++)
                    x[k] *= tn_rng_uniform(&rng) < 0.5 ? -1 : 1;
            void *X = to_dt(x, len, dt), *Y = to_dt(x, n, dt), *DY = to_dt(dy, n, dt);
            void *DX = to_dt(dx0, len, dt);
            double *rx = malloc(sizeof(double) * (size_t)len),
                   *ry = malloc(sizeof(double) * (size_t)n);
            double *rdy = malloc(sizeof(double) * (size_t)n),
                   *rdx = malloc(sizeof(double) * (size_t)len);
            for (int64_t k = 0; k < len; k++)
                rx[k] = val(X, k, dt), rdx[k] = val(DX, k, dt);
            for (int64_t k = 0; k < n; k++)
                rdy[k] = val(DY, k, dt);
            double a = f == TN__MAP_DROPOUT ? 1 / 0.7 : f == TN__MAP_LEAKY_RELU ? 0.1 : 1.7;
            const uint8_t *kp = f == TN__MAP_DROPOUT ? keep : NULL;
            t->map_fw((tn__map)f, n, X, ix, a, kp, Y);
            nv->map_fw((tn__map)f, n, rx, ix, a, kp, ry);
            t->map_bw((tn__map)f, n, X, ix, Y, DY, a, kp, DX);
            nv->map_bw((tn__map)f, n, rx, ix, ry, rdy, a, kp, rdx);
            for (int64_t k = 0; k < n; k++)
                worst = fmax(worst, fabs(val(Y, k, dt) - ry[k]) / fmax(1, fabs(ry[k])));
            for (int64_t k = 0; k < len; k++)
                worst = fmax(worst, fabs(val(DX, k, dt) - rdx[k]) / fmax(1, fabs(rdx[k])));
            free(X), free(Y), free(DY), free(DX), free(rx), free(ry), free(rdy), free(rdx);
        }
    for (int op = 0; op < TN__ZIP_COUNT; op++)
        for (int v = 0; v < 4; v++) {
            int64_t ia = v & 1 ? 3 : 1, ib = v == 2 ? 0 : v == 3 ? 3 : 1, ix = v & 1 ? 3 : 1;
            fill(x, len, 0.2, 2);
            fill(z, len, 0.2, 2);
            for (int64_t k = 0; k < len; k++)
                z[k] *= tn_rng_uniform(&rng) < 0.5 ? -1 : 1;
            void *A = to_dt(x, len, dt), *B = to_dt(z, len, dt), *Y = to_dt(x, n, dt);
            void *DY = to_dt(dy, n, dt), *DX = to_dt(dx0, len, dt);
            double *ra = malloc(sizeof(double) * (size_t)len),
                   *rb = malloc(sizeof(double) * (size_t)len);
            double *ry = malloc(sizeof(double) * (size_t)n),
                   *rdy = malloc(sizeof(double) * (size_t)n);
            double *rdx = malloc(sizeof(double) * (size_t)len);
            for (int64_t k = 0; k < len; k++)
                ra[k] = val(A, k, dt), rb[k] = val(B, k, dt), rdx[k] = val(DX, k, dt);
            for (int64_t k = 0; k < n; k++)
                rdy[k] = val(DY, k, dt);
            t->zip_fw((tn__zip)op, n, A, ia, B, ib, Y);
            nv->zip_fw((tn__zip)op, n, ra, ia, rb, ib, ry);
            for (int which = 0; which < 2; which++) {
                t->zip_bw((tn__zip)op, which, n, A, ia, B, ib, DY, DX, ix);
                nv->zip_bw((tn__zip)op, which, n, ra, ia, rb, ib, rdy, rdx, ix);
            }
            for (int64_t k = 0; k < n; k++)
                worst = fmax(worst, fabs(val(Y, k, dt) - ry[k]) / fmax(1, fabs(ry[k])));
            for (int64_t k = 0; k < len; k++)
                worst = fmax(worst, fabs(val(DX, k, dt) - rdx[k]) / fmax(1, fabs(rdx[k])));
            free(A), free(B), free(Y), free(DY), free(DX), free(ra), free(rb), free(ry), free(rdy),
                free(rdx);
        }
    for (int log_out = 0; log_out < 2; log_out++) /* softmax rows, contiguous and strided */
        for (int v = 0; v < 2; v++) {
            int64_t ix = v ? 3 : 1;
            fill(x, len, -4, 4);
            void *X = to_dt(x, len, dt), *Y = to_dt(x, len, dt), *DY = to_dt(dx0, len, dt);
            void *DX = to_dt(dx0, len, dt);
            double *rx = malloc(sizeof(double) * (size_t)len),
                   *ry = malloc(sizeof(double) * (size_t)len);
            double *rdy = malloc(sizeof(double) * (size_t)len),
                   *rdx = malloc(sizeof(double) * (size_t)len);
            for (int64_t k = 0; k < len; k++)
                rx[k] = val(X, k, dt), ry[k] = val(Y, k, dt), rdy[k] = val(DY, k, dt),
                rdx[k] = val(DX, k, dt);
            t->softmax_fw(n, X, ix, log_out, Y, ix);
            nv->softmax_fw(n, rx, ix, log_out, ry, ix);
            t->softmax_bw(n, Y, DY, ix, log_out, DX, ix);
            nv->softmax_bw(n, ry, rdy, ix, log_out, rdx, ix);
            for (int64_t k = 0; k < len; k++) {
                worst = fmax(worst, fabs(val(Y, k, dt) - ry[k]) / fmax(1, fabs(ry[k])));
                worst = fmax(worst, fabs(val(DX, k, dt) - rdx[k]) / fmax(1, fabs(rdx[k])));
            }
            free(X), free(Y), free(DY), free(DX), free(rx), free(ry), free(rdy), free(rdx);
        }
    for (int v = 0; v < 2; v++) { /* masked softmax rows (forward; backward is softmax's) */
        int64_t ix = v ? 3 : 1;
        fill(x, len, -4, 4);
        int32_t *mk = malloc(sizeof(int32_t) * (size_t)len);
        for (int64_t k = 0; k < len; k++) /* every third row element kept at least */
            mk[k] = k % 3 == 0 || tn_rng_uniform(&rng) < 0.5;
        void *X = to_dt(x, len, dt), *Y = to_dt(x, len, dt);
        double *rx = malloc(sizeof(double) * (size_t)len),
               *ry = malloc(sizeof(double) * (size_t)len);
        for (int64_t k = 0; k < len; k++)
            rx[k] = val(X, k, dt), ry[k] = val(Y, k, dt);
        t->softmax_masked_fw(n, X, ix, mk, Y, ix);
        nv->softmax_masked_fw(n, rx, ix, mk, ry, ix);
        for (int64_t k = 0; k < len; k++)
            worst = fmax(worst, fabs(val(Y, k, dt) - ry[k]) / fmax(1, fabs(ry[k])));
        free(X), free(Y), free(rx), free(ry), free(mk);
    }
    for (int v = 0; v < 4; v++) { /* mse rows: sum, per element, both backwards */
        int64_t ia = v & 1 ? 3 : 1, ib = v >= 2 ? 3 : 1, ix = v == 3 ? 3 : 1;
        fill(x, len, -2, 2);
        fill(z, len, -2, 2);
        void *A = to_dt(x, len, dt), *B = to_dt(z, len, dt), *Y = to_dt(x, n, dt);
        void *DY = to_dt(dy, n, dt), *DX = to_dt(dx0, len, dt);
        double *ra = malloc(sizeof(double) * (size_t)len),
               *rb = malloc(sizeof(double) * (size_t)len);
        double *ry = malloc(sizeof(double) * (size_t)n), *rdy = malloc(sizeof(double) * (size_t)n);
        double *rdx = malloc(sizeof(double) * (size_t)len);
        for (int64_t k = 0; k < len; k++)
            ra[k] = val(A, k, dt), rb[k] = val(B, k, dt), rdx[k] = val(DX, k, dt);
        for (int64_t k = 0; k < n; k++)
            rdy[k] = val(DY, k, dt);
        double sum = t->sqdiff_fw(n, A, ia, B, ib, NULL),
               rsum = nv->sqdiff_fw(n, ra, ia, rb, ib, NULL);
        worst = fmax(worst, fabs(sum - rsum) / fmax(1, fabs(rsum)));
        t->sqdiff_fw(n, A, ia, B, ib, Y);
        nv->sqdiff_fw(n, ra, ia, rb, ib, ry);
        t->sqdiff_bw(n, 2.0, DY, A, ia, B, ib, DX, ix);
        nv->sqdiff_bw(n, 2.0, rdy, ra, ia, rb, ib, rdx, ix);
        t->sqdiff_bw(n, -0.25, NULL, A, ia, B, ib, DX, ix);
        nv->sqdiff_bw(n, -0.25, NULL, ra, ia, rb, ib, rdx, ix);
        for (int64_t k = 0; k < n; k++)
            worst = fmax(worst, fabs(val(Y, k, dt) - ry[k]) / fmax(1, fabs(ry[k])));
        for (int64_t k = 0; k < len; k++)
            worst = fmax(worst, fabs(val(DX, k, dt) - rdx[k]) / fmax(1, fabs(rdx[k])));
        free(A), free(B), free(Y), free(DY), free(DX), free(ra), free(rb), free(ry), free(rdy),
            free(rdx);
    }
    free(x), free(z), free(dy), free(dx0), free(keep);
    return worst;
}

/* Tolerance: relative to max(1, |value|), float 2e-6 (the fast exp, tanh
 * and sigmoid are within 4e-7 of libm, erff/logf within an ulp, and each
 * output is one or two more roundings; a wrong function, stride or
 * operand is off by 1e-2 or more), double 1e-13 (libm both sides, another
 * order of operations). */
static void test_elementwise(void)
{
    for (size_t ti = 0; ti < sizeof tabs / sizeof tabs[0]; ti++) {
        if (tabs[ti].needs > tn_isa_cpu()) {
            printf("element-wise %s: skipped (this CPU lacks the path)\n", tabs[ti].name);
            continue;
        }
        double worst = 0;
        for (size_t wi = 0; wi < sizeof widths / sizeof widths[0]; wi++)
            worst = fmax(worst, run_elementwise(tabs[ti].t, tabs[ti].dt, widths[wi]));
        printf("element-wise %s vs naive: worst relative difference %.2g\n", tabs[ti].name, worst);
        CHECK(worst <= tabs[ti].tol);
    }
}

/* The float tables' cross-entropy row kernels against double loops: the
 * maximum exactly (it is one of the values, whatever the order; with a
 * NaN first it stays NaN, NaNs later are passed over), the exps and their
 * sum within the fast exp's error (2e-6 relative each: a sum of positive
 * terms has at most the largest relative error of its terms; a lane mixed
 * up or a tail dropped is off by a whole term, >= 1e-3 here). */
static void test_ce_rows(void)
{
    for (size_t ti = 0; ti < sizeof tabs / sizeof tabs[0]; ti++) {
        if (tabs[ti].dt != TN_F32 || tabs[ti].needs > tn_isa_cpu())
            continue;
        const tn__rows *t = tabs[ti].t;
        double worst = 0;
        bool max_ok = true;
        for (int64_t n = 1; n <= 300; n += n < 40 ? 1 : 37) {
            float *x = malloc(sizeof(float) * (size_t)n), *e = malloc(sizeof(float) * (size_t)n);
            double *r = malloc(sizeof(double) * (size_t)n);
            fill(r, n, -6, 6);
            for (int64_t k = 0; k < n; k++)
                x[k] = (float)r[k];
            float m = x[0];
            for (int64_t k = 1; k < n; k++)
                m = x[k] > m ? x[k] : m;
            max_ok = max_ok && t->row_max(n, x) == m;
            double s = t->exp_sum(n, x, m, e), rs = 0;
            for (int64_t k = 0; k < n; k++) {
                double ek = exp((double)x[k] - (double)m);
                rs += ek;
                worst = fmax(worst, fabs(e[k] - ek) / ek);
            }
            worst = fmax(worst, fabs(s - rs) / rs);
            x[0] = NAN; /* a NaN first stays; a NaN later is passed over */
            max_ok = max_ok && isnan(t->row_max(n, x));
            if (n > 1) {
                x[0] = -100, x[n - 1] = NAN;
                float m2 = x[0];
                for (int64_t k = 1; k < n; k++)
                    m2 = x[k] > m2 ? x[k] : m2;
                max_ok = max_ok && t->row_max(n, x) == m2;
            }
            free(x), free(e), free(r);
        }
        printf("cross-entropy rows %s: max %s, exp_sum worst relative difference %.2g\n",
               tabs[ti].name, max_ok ? "exact" : "WRONG", worst);
        CHECK(max_ok);
        CHECK(worst <= 2e-6);
    }
}

/* The float tables' conv_dw (a stride-1 convolution's weight gradient as
 * correlations, rows.h) against a double loop over the same data, on
 * shapes that leave short blocks everywhere: Og not a multiple of any
 * vector width (a last block of fewer vectors, zero columns up to ldd),
 * KW 1 to 5 (blocks of 3 taps and a rest of 1 or 2), n not a multiple of
 * the m chunks; dw starts nonzero (the kernel adds). Tolerance: 1e-5 of
 * the sum of |terms| of each element (float sums of up to 700 products,
 * each rounding within 6e-8 of that sum per addition, far below; a
 * wrong tap, channel or block is off by a whole term, >= 1e-3 of it
 * here). */
static void test_conv_dw_rows(void)
{
    static const int64_t shapes[][5] = {/* Og, Cg, KH, KW, n */
                                        {5, 3, 3, 3, 700},
                                        {37, 2, 2, 5, 301},
                                        {16, 4, 1, 1, 64},
                                        {64, 1, 3, 4, 530},
                                        {3, 3, 3, 2, 17}};
    for (size_t ti = 0; ti < sizeof tabs / sizeof tabs[0]; ti++) {
        if (tabs[ti].dt != TN_F32 || tabs[ti].needs > tn_isa_cpu())
            continue;
        double worst = 0;
        for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
            int64_t Og = shapes[si][0], Cg = shapes[si][1], KH = shapes[si][2], KW = shapes[si][3];
            int64_t n = shapes[si][4], Wp = 7 + KW, ldd = (Og + 15) / 16 * 16;
            int64_t ldx = (KH - 1) * Wp + KW - 1 + n + 3, nx = Cg * ldx, nw = KH * KW * Cg * ldd;
            double *r = malloc(sizeof(double) * (size_t)(n * ldd + nx + nw));
            float *dy = malloc(sizeof(float) * (size_t)(n * ldd)),
                  *x = malloc(sizeof(float) * (size_t)nx);
            float *dw = malloc(sizeof(float) * (size_t)nw);
            fill(r, n * ldd + nx + nw, -1, 1);
            for (int64_t k = 0; k < n * ldd; k++)
                dy[k] = k % ldd < Og ? (float)r[k] : 0;
            for (int64_t k = 0; k < nx; k++)
                x[k] = (float)r[n * ldd + k];
            for (int64_t k = 0; k < nw; k++)
                dw[k] = (float)r[n * ldd + nx + k];
            tabs[ti].t->conv_dw(Og, Cg, KH, KW, n, dy, ldd, x, ldx, Wp, dw, ldd);
            for (int64_t c = 0; c < Cg; c++)
                for (int64_t p = 0; p < KH; p++)
                    for (int64_t q = 0; q < KW; q++)
                        for (int64_t o = 0; o < Og; o++) {
                            int64_t at = ((p * KW + q) * Cg + c) * ldd + o;
                            double want = (float)r[n * ldd + nx + at], mag = fabs(want);
                            for (int64_t m = 0; m < n; m++) {
                                double t = (double)dy[m * ldd + o] * x[c * ldx + p * Wp + q + m];
                                want += t, mag += fabs(t);
                            }
                            worst = fmax(worst, fabs(dw[at] - want) / mag);
                        }
            free(r), free(dy), free(x), free(dw);
        }
        printf("conv_dw %s vs double: worst difference %.2g of the sum of |terms|\n", tabs[ti].name,
               worst);
        CHECK(worst <= 1e-5);
    }
}

/* The float tables' conv_fw (a convolution's output as correlations,
 * rows.h) against a double loop: taps at arbitrary offsets (as conv.c's
 * table gives them), Og leaving short blocks, n a multiple of the
 * kernels' 6 positions, Kc over more than one chunk of taps (200 taps of
 * 48 columns, 600 of 16: the partial sums kept in y between chunks); y's
 * old contents must not matter (it is filled with NaN first). Tolerance
 * as for conv_dw: 1e-5 of each element's sum of |terms|. */
static void test_conv_fw_rows(void)
{
    static const int64_t shapes[][3] = {{5, 27, 96}, {37, 200, 60}, {64, 9, 12}, {16, 600, 30}};
    for (size_t ti = 0; ti < sizeof tabs / sizeof tabs[0]; ti++) {
        if (tabs[ti].dt != TN_F32 || tabs[ti].needs > tn_isa_cpu())
            continue;
        double worst = 0;
        for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
            int64_t Og = shapes[si][0], Kc = shapes[si][1], n = shapes[si][2];
            int64_t ld = (Og + 15) / 16 * 16, nx = 3 * Kc + n + 8;
            double *r = malloc(sizeof(double) * (size_t)(nx + Kc * ld));
            float *x = malloc(sizeof(float) * (size_t)nx),
                  *w = malloc(sizeof(float) * (size_t)(Kc * ld));
            float *y = malloc(sizeof(float) * (size_t)(n * ld));
            int64_t *off = malloc(sizeof(int64_t) * (size_t)Kc);
            fill(r, nx + Kc * ld, -1, 1);
            for (int64_t k = 0; k < nx; k++)
                x[k] = (float)r[k];
            for (int64_t k = 0; k < Kc * ld; k++)
                w[k] = k % ld < Og ? (float)r[nx + k] : 0;
            for (int64_t k = 0; k < Kc; k++)
                off[k] = (k * 7) % (3 * Kc); /* out of order, some repeated */
            for (int64_t k = 0; k < n * ld; k++)
                y[k] = NAN;
            tabs[ti].t->conv_fw(Og, Kc, off, n, x, w, ld, y, ld);
            for (int64_t m = 0; m < n; m++)
                for (int64_t o = 0; o < Og; o++) {
                    double want = 0, mag = 0;
                    for (int64_t k = 0; k < Kc; k++) {
                        double t = (double)x[off[k] + m] * w[k * ld + o];
                        want += t, mag += fabs(t);
                    }
                    double d = fabs(y[m * ld + o] - want) / fmax(mag, 1e-30);
                    worst = isnan(d) ? INFINITY : fmax(worst, d);
                }
            free(r), free(x), free(w), free(y), free(off);
        }
        printf("conv_fw %s vs double: worst difference %.2g of the sum of |terms|\n", tabs[ti].name,
               worst);
        CHECK(worst <= 1e-5);
    }
}

/* The float tables' transpose (conv.c's) against the definition, exactly
 * (copies and one addition each): sizes with whole tiles of every path's
 * width and edges in rows, columns or both, strides wider than the
 * sizes, := and +=. */
static void test_transpose_rows(void)
{
    static const int64_t shapes[][2] = {{16, 16}, {64, 32}, {37, 48}, {32, 21}, {5, 3}, {1, 17}};
    for (size_t ti = 0; ti < sizeof tabs / sizeof tabs[0]; ti++) {
        if (tabs[ti].dt != TN_F32 || tabs[ti].needs > tn_isa_cpu())
            continue;
        bool ok = true;
        for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
            for (int add = 0; add < 2; add++) {
                int64_t nr = shapes[si][0], nc = shapes[si][1], sr = nr + 3, dr = nc + 5;
                double *r = malloc(sizeof(double) * (size_t)(nc * sr + nr * dr));
                float *src = malloc(sizeof(float) * (size_t)(nc * sr));
                float *dst = malloc(sizeof(float) * (size_t)(nr * dr));
                float *old = malloc(sizeof(float) * (size_t)(nr * dr));
                fill(r, nc * sr + nr * dr, -1, 1);
                for (int64_t k = 0; k < nc * sr; k++)
                    src[k] = (float)r[k];
                for (int64_t k = 0; k < nr * dr; k++)
                    old[k] = dst[k] = (float)r[nc * sr + k];
                tabs[ti].t->transpose(src, sr, dst, dr, nr, nc, add);
                for (int64_t i = 0; i < nr; i++)
                    for (int64_t j = 0; j < dr; j++) {
                        float want = j >= nc ? old[i * dr + j] /* outside: untouched */
                                             : (add ? old[i * dr + j] : 0) + src[j * sr + i];
                        ok = ok && dst[i * dr + j] == want;
                    }
                free(r), free(src), free(dst), free(old);
            }
        printf("transpose %s: %s\n", tabs[ti].name, ok ? "exact" : "WRONG");
        CHECK(ok);
    }
}

/* C [M, N] (+)= A [M, K] @ W, W packed from a strided source in two column
 * pieces (as the recurrent op packs gate blocks); compared with the naive
 * product. step: the geometry of the time loops (tn__packed_geometry_step:
 * the active path's step_mul where it has one), else BLIS's. Returns the
 * max difference. */
static double run_product(tn_dtype dt, int64_t M, int64_t K, int64_t N, bool transposed, bool acc,
                          bool step)
{
    int64_t lda = K + 2, ldc = N + 5;
    double *a = malloc(sizeof(double) * (size_t)(M * lda));
    double *w = malloc(sizeof(double) * (size_t)(K * N));
    double *c = malloc(sizeof(double) * (size_t)(M * ldc));
    fill(a, M * lda, -1, 1);
    fill(w, K * N, -1, 1);
    fill(c, M * ldc, -1, 1);
    void *A = to_dt(a, M * lda, dt), *W = to_dt(w, K * N, dt), *C = to_dt(c, M * ldc, dt);
    void *R = to_dt(c, M * ldc, dt);
    /* W element (k, j): row-major [K, N], or stored transposed [N, K] */
    int64_t rs = transposed ? 1 : N, cs = transposed ? K : 1;
    tn__packed p;
    if (step)
        tn__packed_geometry_step(&p, dt, K, N);
    else
        tn__packed_geometry(&p, dt, K, N);
    p.w = aligned_alloc(64, (size_t)tn__packed_bytes(&p));
    void *scratch = aligned_alloc(64, (size_t)tn__packed_scratch_bytes(&p, M));
    tn__packed_zero(&p);
    int64_t half = N / 2;
    size_t es = tn_dtype_size(dt);
    tn__packed_set(&p, 0, half, W, rs, cs);
    tn__packed_set(&p, half, N - half, (char *)W + (size_t)(half * cs) * es, rs, cs);
    tn__packed_mul(&p, M, A, lda, C, ldc, acc, scratch);
    tn__gemm_naive(dt, M, N, K, A, lda, W, rs, cs, R, ldc, acc);
    double worst = 0;
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < ldc; j++) /* columns past N must stay untouched */
            worst = fmax(worst, fabs(val(C, i * ldc + j, dt) - val(R, i * ldc + j, dt)));
    free(p.w), free(scratch);
    free(a), free(w), free(c), free(A), free(W), free(C), free(R);
    return worst;
}

/* Both geometries on float and double. The sizes cut every block: M
 * around the step kernels' 8 and 4 rows (and BLIS's 6 and 12) and past
 * their 64-row chunks, N around their 48 (AVX-512) and 24 (AVX2) columns
 * and 16 / 8 lanes. Tolerance
 * 1e-6 K (1e-14 K for double) absolute: the terms are products of values
 * in [-1, 1], so a sum of K of them rounds by far less; a wrong element
 * or block is off by a whole term. Columns past N must stay as they were. */
static void test_product(void)
{
    int64_t Ms[] = {1, 5, 6, 7, 12, 15, 16, 32, 33, 64, 150};
    int64_t Ks[] = {1, 16, 128, 130};
    int64_t Ns[] = {1, 12, 16, 17, 23, 47, 48, 49, 100, 256};
    for (int d = 0; d < 4; d++) {
        tn_dtype dt = d & 1 ? TN_F64 : TN_F32;
        bool step = d & 2;
        int bad = 0, runs = 0;
        double worst_rel = 0;
        for (size_t mi = 0; mi < sizeof Ms / sizeof Ms[0]; mi++)
            for (size_t ki = 0; ki < sizeof Ks / sizeof Ks[0]; ki++)
                for (size_t ni = 0; ni < sizeof Ns / sizeof Ns[0]; ni++)
                    for (int v = 0; v < 4; v++) {
                        int64_t K = Ks[ki];
                        double e = run_product(dt, Ms[mi], K, Ns[ni], v & 1, v & 2, step);
                        double tol = (dt == TN_F32 ? 1e-6 : 1e-14) * (double)K;
                        worst_rel = fmax(worst_rel, e / tol);
                        runs++;
                        if (e > tol) {
                            bad++;
                            fprintf(stderr, "product %s%s M %lld K %lld N %lld v %d: diff %.3g\n",
                                    tn_dtype_name(dt), step ? " step" : "", (long long)Ms[mi],
                                    (long long)K, (long long)Ns[ni], v, e);
                        }
                    }
        const tn__rows *kr = tn__rows_get(dt);
        printf("packed product %s (%s): %d shapes, worst diff %.3g of its tolerance\n",
               tn_dtype_name(dt),
               step && kr->step_mul ? tn_isa_name(tn_isa_active()) : tn_blis_config(), runs,
               worst_rel);
        CHECK(bad == 0);
    }
}

int main(void)
{
    tn_rng_seed(&rng, 7);
    if (tn_runtime_init() != TN_OK) {
        fprintf(stderr, "test_kernels: %s\n", tn_last_error());
        return 1;
    }
    printf("kernel path %s, cpu %s, BLIS %s\n", tn_isa_name(tn_isa_active()),
           tn_isa_name(tn_isa_cpu()), tn_blis_config());
    test_rows();
    test_elementwise();
    test_ce_rows();
    test_conv_dw_rows();
    test_conv_fw_rows();
    test_transpose_rows();
    test_product();
    return check_report("test_kernels");
}
