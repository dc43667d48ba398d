/* tests/test_matmul.c - forward (and float32 backward) values of matmul,
 * bmm and addmm against a naive triple loop in double, over every
 * transpose combination, narrowed (row-strided) views, M/N/K = 1, both
 * dtypes; and every class of bad input.
 *
 * Tolerances: a computed sum of n products differs from the exact one by at
 * most about n*u*sum|a_i*b_i| (u = 2^-24 in float32, 2^-53 in float64), so
 * every comparison is |got - want| <= tol * (1 + sum|terms|):
 *   float32, sums of <= 64 terms: 64 * 6e-8 = 3.8e-6, tol 1e-5;
 *   float32, sums of <= 200 terms (backward checks): 1.2e-5, tol 3e-5;
 *   float64: 200 * 1.1e-16 = 2.2e-14, tol 1e-12.
 */
#include "check.h"
#include "tensor/ops.h"

#include <stdlib.h>

/* ---- the reference ---- */

/* c [m, n] = a [m, k] @ b [k, n] (row-major, double); mag [m, n] gets
 * sum_k |a_ik * b_kj|, the scale of the rounding error. */
static void matmul_naive(const double *a, const double *b, double *c, double *mag, int64_t m,
                         int64_t k, int64_t n)
{
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double s = 0, g = 0;
            for (int64_t p = 0; p < k; p++) {
                s += a[i * k + p] * b[p * n + j];
                g += fabs(a[i * k + p] * b[p * n + j]);
            }
            c[i * n + j] = s;
            mag[i * n + j] = g;
        }
}

/* Row-major [r, c] -> [c, r]. */
static void transpose_naive(const double *x, double *y, int64_t r, int64_t c)
{
    for (int64_t i = 0; i < r; i++)
        for (int64_t j = 0; j < c; j++)
            y[j * r + i] = x[i * c + j];
}

/* ---- helpers ---- */

static tn_rng rng;

static tn_tensor *rand_t(tn_dtype dt, int nd, int64_t s0, int64_t s1, int64_t s2)
{
    int64_t shape[3] = {s0, s1, s2};
    tn_tensor *t = tn_tensor_new(dt, nd, shape);
    tn_tensor_uniform(t, &rng, -1, 1);
    return t;
}

static double tol_of(tn_dtype dt, int64_t terms)
{
    if (dt == TN_F64)
        return 1e-12;
    return terms <= 64 ? 1e-5 : 3e-5;
}

/* got (n values, row-major logical) against want with error scale mag. */
static void check_close(const double *got, const double *want, const double *mag, int64_t n,
                        double tol, const char *what)
{
    double worst = 0;
    int64_t at = 0;
    for (int64_t i = 0; i < n; i++) {
        double e = fabs(got[i] - want[i]) / (1 + mag[i]);
        if (!(e <= worst)) {
            worst = e;
            at = i;
        }
    }
    check_count++;
    if (!(worst <= tol)) {
        check_failures++;
        fprintf(stderr, "FAIL %s: element %lld = %.17g, want %.17g (scaled err %.3g > tol %.3g)\n",
                what, (long long)at, got[at], want[at], worst, tol);
    }
}

static void check_tensor(const tn_tensor *y, const double *want, const double *mag, double tol,
                         const char *what)
{
    CHECK(y != NULL);
    if (!y)
        return;
    double *got = check_values(y);
    check_close(got, want, mag, tn_numel(y), tol, what);
    free(got);
}

/* An operand [r, c] in one of four layouts of a heap tensor base: 0
 * contiguous, 1 transposed view of a [c, r] tensor, 2 narrowed view of a
 * wider and taller tensor (row stride > c), 3 transpose of a narrowed view.
 * operand_again makes the view of an existing base (views made after
 * requires_grad is set carry it); operand makes a fresh random base too
 * (*base receives it; caller frees). */
static tn_tensor *operand_again(tn_tape *tp, tn_tensor *base, int layout, int64_t r, int64_t c)
{
    switch (layout) {
    case 0: return base;
    case 1: return tn_transpose(tp, base, 0, 1);
    case 2: return tn_narrow(tp, tn_narrow(tp, base, 0, 1, r), 1, 3, c);
    default: return tn_transpose(tp, tn_narrow(tp, tn_narrow(tp, base, 0, 2, c), 1, 1, r), 0, 1);
    }
}

static tn_tensor *operand(tn_tape *tp, tn_dtype dt, int layout, int64_t r, int64_t c,
                          tn_tensor **base)
{
    static const int64_t grow[4][2] = {{0, 0}, {0, 0}, {2, 5}, {3, 4}};
    bool t = layout & 1; /* the base is stored transposed */
    *base = rand_t(dt, 2, (t ? c : r) + grow[layout][0], (t ? r : c) + grow[layout][1], 1);
    return operand_again(tp, *base, layout, r, c);
}

static const char *layout_name[4] = {"contiguous", "transposed", "narrowed", "narrowed^T"};

/* ---- forward ---- */

static const int64_t sizes[][3] = {
    {1, 1, 1},  {1, 7, 1}, {1, 1, 9},    {5, 1, 7},    {1, 13, 6},
    {6, 13, 1}, {4, 3, 5}, {37, 53, 29}, {64, 64, 64}, {130, 64, 97},
};
#define N_SIZES (sizeof sizes / sizeof sizes[0])

static void test_matmul_forward(tn_dtype dt)
{
    for (size_t s = 0; s < N_SIZES; s++) {
        int64_t M = sizes[s][0], K = sizes[s][1], N = sizes[s][2];
        for (int la = 0; la < 4; la++)
            for (int lb = 0; lb < 4; lb++) {
                tn_tape *tp = tn_tape_new();
                tn_tensor *A0, *B0;
                tn_tensor *a = operand(tp, dt, la, M, K, &A0), *b = operand(tp, dt, lb, K, N, &B0);
                tn_tensor *y = tn_matmul(tp, a, b);
                double *av = check_values(a), *bv = check_values(b);
                double *want = malloc(sizeof(double) * (size_t)(M * N));
                double *mag = malloc(sizeof(double) * (size_t)(M * N));
                matmul_naive(av, bv, want, mag, M, K, N);
                char what[128];
                snprintf(what, sizeof what, "matmul %s [%lld,%lld,%lld] a %s b %s",
                         tn_dtype_name(dt), (long long)M, (long long)K, (long long)N,
                         layout_name[la], layout_name[lb]);
                CHECK(y && y->ndim == 2 && y->shape[0] == M && y->shape[1] == N);
                check_tensor(y, want, mag, tol_of(dt, K), what);
                free(av), free(bv), free(want), free(mag);
                tn_tape_free(tp);
                tn_tensor_free(A0);
                tn_tensor_free(B0);
            }
    }
}

/* bias layouts: 0 [N], 1 [M, N], 2 [1, N], 3 [M, N] narrowed from [M, N+4] */
static void test_addmm_forward(tn_dtype dt)
{
    static const int64_t sz[][3] = {{1, 1, 1}, {3, 1, 4}, {1, 5, 1}, {33, 17, 70}, {200, 48, 200}};
    for (size_t s = 0; s < sizeof sz / sizeof sz[0]; s++) {
        int64_t M = sz[s][0], K = sz[s][1], N = sz[s][2];
        for (int lbias = 0; lbias < 4; lbias++)
            for (int la = 0; la < 4; la += 3) {
                tn_tape *tp = tn_tape_new();
                tn_tensor *A0, *B0, *bias0, *bias;
                tn_tensor *a = operand(tp, dt, la, M, K, &A0), *b = operand(tp, dt, 1, K, N, &B0);
                if (lbias == 0)
                    bias = bias0 = rand_t(dt, 1, N, 1, 1);
                else if (lbias == 1)
                    bias = bias0 = rand_t(dt, 2, M, N, 1);
                else if (lbias == 2)
                    bias = bias0 = rand_t(dt, 2, 1, N, 1);
                else
                    bias = tn_narrow(tp, bias0 = rand_t(dt, 2, M, N + 4, 1), 1, 2, N);
                tn_tensor *y = tn_addmm(tp, bias, a, b);
                double *av = check_values(a), *bv = check_values(b), *cv = check_values(bias);
                double *want = malloc(sizeof(double) * (size_t)(M * N));
                double *mag = malloc(sizeof(double) * (size_t)(M * N));
                matmul_naive(av, bv, want, mag, M, K, N);
                for (int64_t i = 0; i < M; i++)
                    for (int64_t j = 0; j < N; j++) {
                        double bij = lbias == 0 || lbias == 2 ? cv[j] : cv[i * N + j];
                        want[i * N + j] += bij;
                        mag[i * N + j] += fabs(bij);
                    }
                char what[128];
                snprintf(what, sizeof what, "addmm %s [%lld,%lld,%lld] bias layout %d a %s",
                         tn_dtype_name(dt), (long long)M, (long long)K, (long long)N, lbias,
                         layout_name[la]);
                check_tensor(y, want, mag, tol_of(dt, K + 1), what);
                free(av), free(bv), free(cv), free(want), free(mag);
                tn_tape_free(tp);
                tn_tensor_free(A0);
                tn_tensor_free(B0);
                tn_tensor_free(bias0);
            }
    }
}

/* bmm: a [Bt, M, K] plain or a transposed view of [Bt, K, M]; b [Bt, K, N]
 * plain, a view of [N, K, Bt] with dims 0,2 swapped (batch stride 1), or
 * narrowed along K and N. */
static void test_bmm_forward(tn_dtype dt)
{
    static const int64_t sz[][4] = {{1, 1, 1, 1}, {3, 1, 4, 1}, {2, 5, 1, 3}, {4, 19, 33, 21}};
    for (size_t s = 0; s < sizeof sz / sizeof sz[0]; s++) {
        int64_t Bt = sz[s][0], M = sz[s][1], K = sz[s][2], N = sz[s][3];
        for (int la = 0; la < 2; la++)
            for (int lb = 0; lb < 3; lb++) {
                tn_tape *tp = tn_tape_new();
                tn_tensor *A0 = la ? rand_t(dt, 3, Bt, K, M) : rand_t(dt, 3, Bt, M, K);
                tn_tensor *a = la ? tn_transpose(tp, A0, 1, 2) : A0;
                tn_tensor *B0, *b;
                if (lb == 0) {
                    b = B0 = rand_t(dt, 3, Bt, K, N);
                } else if (lb == 1) {
                    B0 = rand_t(dt, 3, N, K, Bt);
                    b = tn_transpose(tp, B0, 0, 2);
                } else {
                    B0 = rand_t(dt, 3, Bt, K + 2, N + 3);
                    b = tn_narrow(tp, tn_narrow(tp, B0, 1, 2, K), 2, 1, N);
                }
                tn_tensor *y = tn_bmm(tp, a, b);
                double *av = check_values(a), *bv = check_values(b);
                double *want = malloc(sizeof(double) * (size_t)(Bt * M * N));
                double *mag = malloc(sizeof(double) * (size_t)(Bt * M * N));
                for (int64_t i = 0; i < Bt; i++)
                    matmul_naive(av + i * M * K, bv + i * K * N, want + i * M * N, mag + i * M * N,
                                 M, K, N);
                char what[128];
                snprintf(what, sizeof what, "bmm %s [%lld,%lld,%lld,%lld] a layout %d b layout %d",
                         tn_dtype_name(dt), (long long)Bt, (long long)M, (long long)K, (long long)N,
                         la, lb);
                CHECK(y && y->ndim == 3 && y->shape[0] == Bt && y->shape[1] == M &&
                      y->shape[2] == N);
                check_tensor(y, want, mag, tol_of(dt, K), what);
                free(av), free(bv), free(want), free(mag);
                tn_tape_free(tp);
                tn_tensor_free(A0);
                tn_tensor_free(B0);
            }
    }
}

/* ---- backward against the naive formulas (float32 BLIS path included) ---- */

/* y = bias + a @ b with a = A0^T (A0 [K, M]) and b narrowed out of
 * B0 [K+3, N+4]; seed dy; check dA0, dB0 (zero outside the view), dbias. */
static void test_backward(tn_dtype dt, bool with_bias, int bias_2d)
{
    const int64_t M = 200, K = 48, N = 150;
    tn_tape *tp = tn_tape_new();
    tn_tensor *A0 = rand_t(dt, 2, K, M, 1), *B0 = rand_t(dt, 2, K + 3, N + 4, 1);
    tn_tensor *bias = bias_2d ? rand_t(dt, 2, M, N, 1) : rand_t(dt, 1, N, 1, 1);
    tn_tensor *dy = rand_t(dt, 2, M, N, 1);
    tn_tensor_set_requires_grad(A0, true);
    tn_tensor_set_requires_grad(B0, true);
    tn_tensor_set_requires_grad(bias, true);
    tn_tensor *a = tn_transpose(tp, A0, 0, 1);
    tn_tensor *b = tn_narrow(tp, tn_narrow(tp, B0, 0, 1, K), 1, 3, N);
    tn_tensor *y = with_bias ? tn_addmm(tp, bias, a, b) : tn_matmul(tp, a, b);
    CHECK(y && tn_backward_from(tp, y, dy) == TN_OK);

    double *av = check_values(a), *bv = check_values(b), *dyv = check_values(dy);
    double *bT = malloc(sizeof(double) * (size_t)(K * N)),
           *aT = malloc(sizeof(double) * (size_t)(K * M));
    transpose_naive(bv, bT, K, N);
    transpose_naive(av, aT, M, K);
    double *da = malloc(sizeof(double) * (size_t)(M * K)),
           *dam = malloc(sizeof(double) * (size_t)(M * K));
    double *db = malloc(sizeof(double) * (size_t)(K * N)),
           *dbm = malloc(sizeof(double) * (size_t)(K * N));
    matmul_naive(dyv, bT, da, dam, M, N, K); /* da [M, K] = dy [M, N] @ b^T [N, K] */
    matmul_naive(aT, dyv, db, dbm, K, M, N); /* db [K, N] = a^T [K, M] @ dy [M, N] */

    /* gradient of A0 [K, M] is da^T; of B0 the view's part is db, rest 0 */
    size_t cap = (size_t)(M * N + K * M + (K + 3) * (N + 4)); /* >= every use below */
    double *g = malloc(sizeof(double) * cap), *want = malloc(sizeof(double) * cap);
    double *mag = malloc(sizeof(double) * cap);
    for (int64_t i = 0; i < K * M; i++)
        g[i] = tn_tensor_grad_get(A0, i);
    transpose_naive(da, want, M, K);
    transpose_naive(dam, mag, M, K);
    char what[96];
    snprintf(what, sizeof what, "%s backward %s: dA", with_bias ? "addmm" : "matmul",
             tn_dtype_name(dt));
    check_close(g, want, mag, K * M, tol_of(dt, N), what);
    for (int64_t r = 0; r < K + 3; r++)
        for (int64_t c = 0; c < N + 4; c++) {
            int64_t i = r * (N + 4) + c;
            bool in = r >= 1 && r < K + 1 && c >= 3 && c < N + 3;
            g[i] = tn_tensor_grad_get(B0, i);
            want[i] = in ? db[(r - 1) * N + (c - 3)] : 0;
            mag[i] = in ? dbm[(r - 1) * N + (c - 3)] : 0;
        }
    snprintf(what, sizeof what, "%s backward %s: dB", with_bias ? "addmm" : "matmul",
             tn_dtype_name(dt));
    check_close(g, want, mag, (K + 3) * (N + 4), tol_of(dt, M), what);
    if (with_bias) {
        /* dbias = dy ([M, N] bias) or its column sums ([N] bias) */
        int64_t nb = bias_2d ? M * N : N;
        for (int64_t i = 0; i < nb; i++) {
            g[i] = tn_tensor_grad_get(bias, i);
            want[i] = mag[i] = 0;
        }
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) {
                int64_t o = bias_2d ? i * N + j : j;
                want[o] += dyv[i * N + j];
                mag[o] += fabs(dyv[i * N + j]);
            }
        snprintf(what, sizeof what, "addmm backward %s: dbias %s", tn_dtype_name(dt),
                 bias_2d ? "[M, N]" : "[N]");
        check_close(g, want, mag, nb, tol_of(dt, M), what);
    }
    free(av), free(bv), free(dyv), free(aT), free(bT), free(da), free(dam), free(db), free(dbm);
    free(g), free(want), free(mag);
    tn_tape_free(tp);
    tn_tensor_free(A0), tn_tensor_free(B0), tn_tensor_free(bias), tn_tensor_free(dy);
}

/* beta = 0 must not read the result's memory: reuse an arena that held NaN
 * (a product of NaN inputs) and check the next product is finite. */
static void test_no_stale_read(tn_dtype dt)
{
    tn_tape *tp = tn_tape_new();
    tn_tensor *a = rand_t(dt, 2, 9, 8, 1), *b = rand_t(dt, 2, 8, 7, 1);
    tn_tensor *nan_a = tn_tensor_full(dt, 2, (int64_t[]){9, 8}, NAN);
    tn_tensor *y1 = tn_matmul(tp, nan_a, b);
    CHECK(y1 && isnan(tn_tensor_get(y1, 0)));
    void *old = y1 ? y1->data : NULL;
    tn_tape_reset(tp);
    tn_tensor *y2 = tn_matmul(tp, a, b);
    CHECK(y2 != NULL);
    if (y2) {
        if (y2->data != old)
            printf("note: arena did not reuse the NaN buffer; stale-read test is weaker\n");
        for (int64_t i = 0; i < tn_numel(y2); i++)
            CHECK(isfinite(tn_tensor_get(y2, i)));
    }
    tn_tape_free(tp);
    tn_tensor_free(a), tn_tensor_free(b), tn_tensor_free(nan_a);
}

/* ---- products against a weight (the packed path of src/ops/matmul.c) ----
 *
 * A right operand that is a parameter (a heap tensor requiring grad, or a
 * view of one) is packed once per recording. Checked: the values in every
 * layout and size against the naive product (same tolerances as above);
 * 1 and 2 threads give bitwise the same result (the rows are split at
 * multiples of 8, or the columns at panel edges); a weight changed after a
 * backward (an optimizer step) or a tape reset is packed again, not read
 * from the cache. Beyond the common sizes, left operands of more than 256
 * rows (taken by the packed path with the kernel path's step_mul, in
 * chunks of 64 rows per thread, on float AVX2 and AVX-512). */
static void test_weight_forward(tn_dtype dt)
{
    static const int64_t more[][3] = {{300, 64, 65}, {517, 40, 100}};
    for (size_t s = 0; s < N_SIZES + 2; s++) {
        const int64_t *sz = s < N_SIZES ? sizes[s] : more[s - N_SIZES];
        int64_t M = sz[0], K = sz[1], N = sz[2];
        for (int lb = 0; lb < 4; lb++) {
            tn_tape *tp = tn_tape_new();
            tn_tensor *a0 = rand_t(dt, 2, M, K, 1), *b0;
            operand(tp, dt, lb, K, N, &b0);
            tn_tensor_set_requires_grad(b0, true);
            tn_tensor *b = operand_again(tp, b0, lb, K, N);
            double *av = check_values(a0), *bv = check_values(b);
            double *want = malloc(sizeof(double) * (size_t)(M * N));
            double *mag = malloc(sizeof(double) * (size_t)(M * N));
            matmul_naive(av, bv, want, mag, M, K, N);
            tn_set_num_threads(2);
            tn_tensor *y2 = tn_matmul(tp, a0, b);
            tn_set_num_threads(1);
            tn_tensor *y1 = tn_matmul(tp, a0, b); /* the cached packing, one thread */
            char what[96];
            snprintf(what, sizeof what, "matmul %s weight %s [%lld,%lld]x[%lld,%lld]",
                     tn_dtype_name(dt), layout_name[lb], (long long)M, (long long)K, (long long)K,
                     (long long)N);
            check_tensor(y2, want, mag, tol_of(dt, K), what);
            CHECK(y1 && y2 && memcmp(y1->data, y2->data, (size_t)(M * N) * tn_dtype_size(dt)) == 0);
            /* addmm: the packed product accumulates onto the bias */
            tn_tensor *bias = rand_t(dt, 1, N, 1, 1);
            for (int64_t i = 0; i < M * N; i++)
                want[i] += tn_tensor_get(bias, i % N);
            strncat(what, " (addmm)", sizeof what - strlen(what) - 1);
            check_tensor(tn_addmm(tp, bias, a0, b), want, mag, tol_of(dt, K), what);
            tn_tensor_free(bias);
            free(av), free(bv), free(want), free(mag);
            tn_tape_free(tp);
            tn_tensor_free(a0), tn_tensor_free(b0);
        }
    }
    tn_set_num_threads(2);
}

static void test_weight_changes(tn_dtype dt)
{
    tn_tape *tp = tn_tape_new();
    tn_tensor *a = rand_t(dt, 2, 32, 40, 1), *w = rand_t(dt, 2, 40, 64, 1);
    tn_tensor_set_requires_grad(w, true);
    tn_tensor *y = tn_matmul(tp, a, w);
    CHECK(y && tn_backward(tp, tn_sum(tp, y)) == TN_OK);
    for (int64_t i = 0; i < tn_numel(w); i++) /* as an optimizer step would */
        tn_tensor_set(w, i, tn_tensor_get(w, i) + 1);
    double *av = check_values(a), *wv = check_values(w);
    double *want = malloc(sizeof(double) * 32 * 64), *mag = malloc(sizeof(double) * 32 * 64);
    matmul_naive(av, wv, want, mag, 32, 40, 64);
    check_tensor(tn_matmul(tp, a, w), want, mag, tol_of(dt, 40), "weight changed after backward");
    for (int64_t i = 0; i < tn_numel(w); i++)
        tn_tensor_set(w, i, tn_tensor_get(w, i) - 2);
    tn_tape_reset(tp);
    free(wv);
    wv = check_values(w);
    matmul_naive(av, wv, want, mag, 32, 40, 64);
    check_tensor(tn_matmul(tp, a, w), want, mag, tol_of(dt, 40), "weight changed after reset");
    free(av), free(wv), free(want), free(mag);
    tn_tape_free(tp);
    tn_tensor_free(a), tn_tensor_free(w);
}

/* ---- errors ---- */

static tn_tensor *new2(tn_dtype dt, int64_t r, int64_t c)
{
    return tn_tensor_new(dt, 2, (int64_t[]){r, c});
}

#define EXPECT_FAIL(expr, sub)              \
    do {                                    \
        tn_tape *tp_ = tn_tape_new();       \
        tn_tape *tp = tp_;                  \
        CHECK((expr) == NULL);              \
        CHECK_MSG(tn_tape_error(tp_), sub); \
        tn_tape_free(tp_);                  \
    } while (0)

static void test_errors(void)
{
    tn_tensor *a23 = new2(TN_F32, 2, 3), *b45 = new2(TN_F32, 4, 5), *b34 = new2(TN_F32, 3, 4);
    tn_tensor *d34 = new2(TN_F64, 3, 4), *i34 = tn_tensor_new(TN_I32, 2, (int64_t[]){3, 4});
    tn_tensor *v3 = tn_tensor_new(TN_F32, 1, (int64_t[]){3});
    tn_tensor *t234 = tn_tensor_new(TN_F32, 3, (int64_t[]){2, 3, 4});
    tn_tensor *t245 = tn_tensor_new(TN_F32, 3, (int64_t[]){2, 4, 5});
    tn_tensor *t345 = tn_tensor_new(TN_F32, 3, (int64_t[]){3, 4, 5});
    tn_tensor *t256 = tn_tensor_new(TN_F32, 3, (int64_t[]){2, 5, 6});
    tn_tensor *v4 = tn_tensor_new(TN_F32, 1, (int64_t[]){4}),
              *v5 = tn_tensor_new(TN_F32, 1, (int64_t[]){5});
    tn_tensor *m24 = new2(TN_F32, 2, 4), *m34 = new2(TN_F32, 3, 4);

    /* matmul */
    {
        tn_tape *tp = tn_tape_new();
        CHECK(tn_matmul(tp, a23, b45) == NULL);
        const char *m = tn_tape_error(tp);
        CHECK(m && strcmp(m, "matmul: inner dims differ: a [2, 3] @ b [4, 5]") == 0);
        /* sticky: a valid product on a failed tape returns NULL */
        CHECK(tn_matmul(tp, a23, b34) == NULL);
        tn_tape_free(tp);
    }
    EXPECT_FAIL(tn_matmul(tp, a23, v3), "matmul: operands must be 2-D, got a [2, 3] @ b [3]");
    EXPECT_FAIL(tn_matmul(tp, t234, b45), "matmul");
    EXPECT_FAIL(tn_matmul(tp, a23, i34), "matmul");
    EXPECT_FAIL(tn_matmul(tp, a23, i34), "int32");
    EXPECT_FAIL(tn_matmul(tp, a23, d34), "matmul: mixed dtypes");
    EXPECT_FAIL(tn_matmul(tp, NULL, b34), "matmul");
    {
        tn_tape *tp = tn_tape_new();
        CHECK(tn_matmul(tp, a23, b34) != NULL);
        tn_tape_free(tp);
    }
    /* a layout BLIS rejects (stride 0 across a dim of size > 1): fails with
     * a message rather than aborting inside BLIS */
    {
        int64_t saved = b34->stride[0];
        b34->stride[0] = 0;
        EXPECT_FAIL(tn_matmul(tp, a23, b34), "matmul: b [3, 4] has strides (0, 1)");
        b34->stride[0] = saved;
    }

    /* bmm */
    EXPECT_FAIL(tn_bmm(tp, a23, b34), "bmm: operands must be 3-D, got a [2, 3] @ b [3, 4]");
    EXPECT_FAIL(tn_bmm(tp, t234, t345), "bmm: batch sizes differ: a [2, 3, 4] @ b [3, 4, 5]");
    EXPECT_FAIL(tn_bmm(tp, t234, t256), "bmm: inner dims differ: a [2, 3, 4] @ b [2, 5, 6]");
    EXPECT_FAIL(tn_bmm(tp, t234, i34), "bmm");
    {
        tn_tape *tp = tn_tape_new();
        CHECK(tn_bmm(tp, t234, t245) != NULL);
        tn_tape_free(tp);
    }

    /* addmm: a [2, 3] @ b [3, 4] -> [2, 4] */
    EXPECT_FAIL(tn_addmm(tp, v5, a23, b34), "addmm: bias [5] does not fit a [2, 3] @ b [3, 4]");
    EXPECT_FAIL(tn_addmm(tp, m34, a23, b34), "addmm: bias [3, 4]");
    EXPECT_FAIL(tn_addmm(tp, t234, a23, b34), "addmm: bias [2, 3, 4]");
    EXPECT_FAIL(tn_addmm(tp, v4, a23, b45), "addmm: inner dims differ: a [2, 3] @ b [4, 5]");
    EXPECT_FAIL(tn_addmm(tp, v4, v3, b34), "addmm: operands must be 2-D");
    EXPECT_FAIL(tn_addmm(tp, d34, a23, b34), "addmm: mixed dtypes");
    EXPECT_FAIL(tn_addmm(tp, NULL, a23, b34), "addmm");
    {
        tn_tape *tp = tn_tape_new();
        CHECK(tn_addmm(tp, v4, a23, b34) != NULL);
        CHECK(tn_addmm(tp, m24, a23, b34) != NULL);
        tn_tape_free(tp);
    }
    tn_tensor *all[] = {a23, b45, b34, d34, i34, v3, t234, t245, t345, t256, v4, v5, m24, m34};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        tn_tensor_free(all[i]);
}

int main(void)
{
    tn_rng_seed(&rng, 12345);
    for (int d = 0; d < 2; d++) {
        tn_dtype dt = d ? TN_F64 : TN_F32;
        test_matmul_forward(dt);
        test_addmm_forward(dt);
        test_bmm_forward(dt);
        test_backward(dt, false, 0);
        test_backward(dt, true, 0);
        test_backward(dt, true, 1);
        test_no_stale_read(dt);
        test_weight_forward(dt);
        test_weight_changes(dt);
    }
    test_errors();
    return check_report("test_matmul");
}
