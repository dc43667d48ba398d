/* tests/test_scan.c - tn_scan: a recurrent step written with tape ops,
 * captured once and replayed as one op, against the same step called at
 * every time step (the eager reference written out here):
 *
 *  - a peephole LSTM (products against a transposed weight with the step's
 *    input as addmm's bias; narrowed gates; peephole vectors broadcast over
 *    the rows; two states) and a minimal gated unit (a second product whose
 *    left operand is computed in the step): the outputs and the gradients
 *    of every input, state and parameter, float64 and float32;
 *  - the capture happened (one tape op), and 1 and 2 threads give bitwise
 *    the same values and gradients, with 6 rows (every op split over the
 *    threads) and 37 (each thread its rows through all steps);
 *  - a step outside the captured subset (softmax) runs eagerly with the
 *    same result;
 *  - the gradient through tn_scan in float64 by central differences;
 *  - bad arguments fail the tape naming tn_scan.
 *
 * Tolerances: float64 1e-12 relative to max(1, |value|) (the two paths sum
 * the same terms in another order: a few hundred roundings of 1e-16 at
 * most); float32 2e-5 (the same over float: T = 5 steps of sums of up to
 * 24 terms of size <= a few units, measured below 3e-6); gradient check
 * 1e-6 as tn_gradcheck's float64 cases.
 */
#include "check.h"
#include "tensor/gradcheck.h"
#include "tensor/nn.h"

#include <math.h>
#include <omp.h>

enum { T = 5, G = 7, H = 4 };
/* Rows: 6, or 37 (at least 16 per thread on 2 threads: the captured
 * program then runs each thread's rows through all steps, no barrier). */
static int64_t B = 6;

typedef struct cell {
    bool mgu, softmax; /* which step */
    tn_tensor *w_ih, *b, *U, *pi, *pf, *po, *Un;
} cell;

/* peephole LSTM: g = x W_ih^T + b + h U^T; i = s(g_i + c pi), f = s(g_f + c
 * pf), c' = f c + i tanh(g_g), o = s(g_o + c' po), h' = o tanh(c').
 * mgu: f = s(x W_f + h U_f^T), n = tanh(x W_n + (f h) U_n^T), h' = h + f (n - h).
 * softmax: an RNN with a softmax over the hidden units (not captured). */
static tn_status step(tn_tape *tp, void *ctx, tn_tensor *const *x, tn_tensor *const *st,
                      tn_tensor **next)
{
    cell *c = ctx;
    tn_tensor *xw = tn_addmm(tp, c->b, x[0], tn_transpose(tp, c->w_ih, 0, 1));
    if (c->softmax) {
        next[0] = tn_softmax(tp, tn_addmm(tp, xw, st[0], tn_transpose(tp, c->U, 0, 1)), 1);
        return TN_OK;
    }
    if (c->mgu) {
        tn_tensor *h = st[0];
        tn_tensor *f = tn_sigmoid(
            tp, tn_addmm(tp, tn_narrow(tp, xw, 1, 0, H), h, tn_transpose(tp, c->U, 0, 1)));
        tn_tensor *n = tn_tanh(tp, tn_addmm(tp, tn_narrow(tp, xw, 1, H, H), tn_mul(tp, f, h),
                                            tn_transpose(tp, c->Un, 0, 1)));
        next[0] = tn_add(tp, h, tn_mul(tp, f, tn_sub(tp, n, h)));
        return TN_OK;
    }
    tn_tensor *h = st[0], *cs = st[1];
    tn_tensor *g = tn_addmm(tp, xw, h, tn_transpose(tp, c->U, 0, 1));
    tn_tensor *i = tn_sigmoid(tp, tn_add(tp, tn_narrow(tp, g, 1, 0, H), tn_mul(tp, cs, c->pi)));
    tn_tensor *f = tn_sigmoid(tp, tn_add(tp, tn_narrow(tp, g, 1, H, H), tn_mul(tp, cs, c->pf)));
    tn_tensor *cn =
        tn_add(tp, tn_mul(tp, f, cs), tn_mul(tp, i, tn_tanh(tp, tn_narrow(tp, g, 1, 2 * H, H))));
    tn_tensor *o = tn_sigmoid(tp, tn_add(tp, tn_narrow(tp, g, 1, 3 * H, H), tn_mul(tp, cn, c->po)));
    next[0] = tn_mul(tp, o, tn_tanh(tp, cn));
    next[1] = cn;
    return TN_OK;
}

static tn_tensor *param(tn_rng *r, tn_dtype dt, int nd, int64_t a, int64_t b)
{
    tn_tensor *t = tn_tensor_new(dt, nd, (int64_t[]){a, b});
    tn_tensor_uniform(t, r, -0.8, 0.8);
    tn_tensor_set_requires_grad(t, true);
    return t;
}

typedef struct model {
    cell c;
    tn_tensor *x, *h0, *c0; /* x [T, B, G] */
    int n_state;
} model;

static void model_init(model *m, tn_dtype dt, bool mgu, bool softmax)
{
    tn_rng r;
    tn_rng_seed(&r, 11);
    memset(m, 0, sizeof *m);
    int gates = mgu ? 2 : softmax ? 1 : 4;
    m->c.mgu = mgu, m->c.softmax = softmax;
    m->c.w_ih = param(&r, dt, 2, gates * H, G);
    m->c.b = param(&r, dt, 1, gates * H, 1);
    m->c.U = param(&r, dt, 2, (mgu ? 1 : gates) * H, H);
    m->c.pi = param(&r, dt, 1, H, 1);
    m->c.pf = param(&r, dt, 1, H, 1);
    m->c.po = param(&r, dt, 1, H, 1);
    m->c.Un = param(&r, dt, 2, H, H);
    m->x = tn_tensor_new(dt, 3, (int64_t[]){T, B, G});
    tn_tensor_uniform(m->x, &r, -1, 1);
    tn_tensor_set_requires_grad(m->x, true);
    m->h0 = param(&r, dt, 2, B, H);
    m->c0 = param(&r, dt, 2, B, H);
    m->n_state = mgu || softmax ? 1 : 2;
}

static void model_free(model *m)
{
    tn_tensor *all[] = {m->c.w_ih, m->c.b,  m->c.U, m->c.pi, m->c.pf,
                        m->c.po,   m->c.Un, m->x,   m->h0,   m->c0};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        tn_tensor_free(all[i]);
}

/* The sum of w * y with fixed weights, as a scalar loss. */
static tn_tensor *loss_of(tn_tape *tp, tn_tensor *y)
{
    tn_tensor *w = tn_tape_tensor(tp, y->dtype, 3, y->shape);
    for (int64_t i = 0; i < tn_numel(w); i++)
        tn_tensor_set(w, i, sin(0.7 * (double)i));
    return tn_sum(tp, tn_mul(tp, y, w));
}

/* y by tn_scan (eager = false) or by calling step per t here. */
static tn_tensor *run(tn_tape *tp, model *m, bool eager)
{
    tn_tensor *init[2] = {m->h0, m->c0};
    if (!eager)
        return tn_scan(tp, step, &m->c, 1, &m->x, m->n_state, init);
    tn_tensor *ys[T], *st[2] = {m->h0, m->c0}, *next[2];
    for (int t = 0; t < T; t++) {
        tn_tensor *xt = tn_reshape(tp, tn_narrow(tp, m->x, 0, t, 1), 2, (int64_t[]){B, G});
        if (step(tp, &m->c, &xt, st, next) != TN_OK)
            return NULL;
        st[0] = next[0], st[1] = next[1];
        ys[t] = m->n_state == 1 ? st[0] : tn_concat(tp, 2, st, 1);
    }
    return tn_stack(tp, T, ys, 0);
}

/* Every value and gradient of one run, in order, for comparisons. */
static double *snapshot(model *m, tn_tensor *y, int64_t *n)
{
    tn_tensor *g[] = {m->c.w_ih, m->c.b,  m->c.U, m->c.pi, m->c.pf,
                      m->c.po,   m->c.Un, m->x,   m->h0,   m->c0};
    int64_t cnt = tn_numel(y);
    for (size_t k = 0; k < sizeof g / sizeof g[0]; k++)
        cnt += tn_numel(g[k]);
    double *v = malloc(sizeof(double) * (size_t)cnt);
    int64_t at = 0;
    for (int64_t i = 0; i < tn_numel(y); i++)
        v[at++] = tn_tensor_get(y, i);
    for (size_t k = 0; k < sizeof g / sizeof g[0]; k++)
        for (int64_t i = 0; i < tn_numel(g[k]); i++)
            v[at++] = tn_tensor_grad_get(g[k], i);
    *n = cnt;
    return v;
}

static void zero_all(model *m)
{
    tn_tensor *g[] = {m->c.w_ih, m->c.b,  m->c.U, m->c.pi, m->c.pf,
                      m->c.po,   m->c.Un, m->x,   m->h0,   m->c0};
    for (size_t k = 0; k < sizeof g / sizeof g[0]; k++)
        tn_tensor_zero_grad(g[k]);
}

static double *forward_backward(model *m, bool eager, int threads, int64_t *n, size_t *ops)
{
    tn_set_num_threads(threads);
    zero_all(m);
    tn_tape *tp = tn_tape_new();
    tn_tensor *y = run(tp, m, eager);
    CHECK(y != NULL);
    if (!y) {
        fprintf(stderr, "run: %s\n", tn_tape_error(tp));
        tn_tape_free(tp);
        return NULL;
    }
    *ops = tn_tape_size(tp);
    CHECK(tn_backward(tp, loss_of(tp, y)) == TN_OK);
    double *v = snapshot(m, y, n);
    tn_tape_free(tp);
    return v;
}

static void compare(const char *what, const double *a, const double *b, int64_t n, double tol)
{
    double worst = 0;
    for (int64_t i = 0; i < n; i++)
        worst = fmax(worst, fabs(a[i] - b[i]) / fmax(1, fabs(b[i])));
    printf("%s: worst relative difference %.3g over %lld values (tol %.3g)\n", what, worst,
           (long long)n, tol);
    CHECK(worst <= tol);
}

static void test_cell(tn_dtype dt, bool mgu, bool softmax)
{
    model m;
    model_init(&m, dt, mgu, softmax);
    int64_t n, n2, n1;
    size_t ops_scan, ops_eager, ops1;
    double *ref = forward_backward(&m, true, 2, &n, &ops_eager);
    double *got = forward_backward(&m, false, 2, &n2, &ops_scan);
    double *one = forward_backward(&m, false, 1, &n1, &ops1);
    const char *name = mgu ? "mgu" : softmax ? "softmax rnn" : "peephole lstm";
    char what[96];
    snprintf(what, sizeof what, "%s %s: tn_scan vs the eager loop", name, tn_dtype_name(dt));
    if (ref && got && one && n == n2 && n == n1) {
        compare(what, got, ref, n, dt == TN_F64 ? 1e-12 : 2e-5);
        CHECK(memcmp(got, one, sizeof(double) * (size_t)n) == 0); /* 1 vs 2 threads */
        /* from inside the caller's own parallel region (nested teams of one
         * thread where two were asked for): the same values */
        double *nested = NULL;
        int64_t nn = 0;
        size_t ops_n;
#pragma omp parallel num_threads(2)
        if (omp_get_thread_num() == 0)
            nested = forward_backward(&m, false, 2, &nn, &ops_n);
        CHECK(nested && nn == n && memcmp(nested, one, sizeof(double) * (size_t)n) == 0);
        free(nested);
    } else {
        CHECK(false);
    }
    /* captured: one op (plus the loss's mul and sum); not captured: the loop */
    printf("%s %s: %zu tape ops with tn_scan, %zu eager\n", name, tn_dtype_name(dt), ops_scan,
           ops_eager);
    if (softmax)
        CHECK(ops_scan > 10);
    else
        CHECK(ops_scan <= 3);
    free(ref), free(got), free(one);
    model_free(&m);
    tn_set_num_threads(2);
}

/* The gradient through tn_scan by central differences (float64). */
static tn_tensor *gc_fn(tn_tape *tp, tn_tensor *const *in, void *ctx)
{
    model *m = ctx;
    (void)in;
    tn_tensor *y = run(tp, m, false);
    return y ? loss_of(tp, y) : NULL;
}

static void test_gradcheck(bool mgu)
{
    model m;
    model_init(&m, TN_F64, mgu, false);
    tn_tensor *in[] = {m.c.w_ih, m.c.b, m.c.U, m.c.pi, m.c.pf, m.c.po, m.c.Un, m.x, m.h0, m.c0};
    tn_gradcheck_result res;
    CHECK(tn_gradcheck(gc_fn, &m, 10, in, 1e-6, &res) == TN_OK);
    printf("gradcheck %s through tn_scan: max rel err %.3g over %lld elements\n",
           mgu ? "mgu" : "peephole lstm", res.max_rel_err, (long long)res.n_checked);
    CHECK(res.max_rel_err <= 1e-6);
    model_free(&m);
}

/* A training loop through tn_scan allocates nothing once warm (the
 * library's allocator hook counts). */
static long n_allocs;
static void *count_alloc(size_t n)
{
    n_allocs++;
    return malloc(n);
}

static void test_steady_alloc(void)
{
    tn_set_allocator(count_alloc, NULL); /* while no library object is alive */
    model m;
    model_init(&m, TN_F32, false, false);
    tn_tape *tp = tn_tape_new();
    long before = 0;
    for (int step = 0; step < 6; step++) {
        if (step == 3)
            before = n_allocs; /* steps 0-2 warm the arenas up */
        tn_tape_reset(tp);
        zero_all(&m);
        tn_tensor *y = run(tp, &m, false);
        CHECK(y && tn_backward(tp, loss_of(tp, y)) == TN_OK);
    }
    printf("allocations in steps 3-5 through tn_scan: %ld\n", n_allocs - before);
    CHECK(n_allocs == before);
    tn_tape_free(tp);
    model_free(&m);
    tn_set_allocator(NULL, NULL); /* all freed */
}

static void test_errors(void)
{
    model m;
    model_init(&m, TN_F64, false, false);
    tn_tape *tp = tn_tape_new();
    tn_tensor *init[2] = {m.h0, m.c0};
    CHECK(tn_scan(tp, step, &m.c, 1, &m.h0, 2, init) == NULL); /* 2-D sequence */
    CHECK_MSG(tn_tape_error(tp), "tn_scan: sequence 0 must be [T, B, G]");
    tn_tape_reset(tp);
    tn_tensor *bad[2] = {m.h0, m.x};
    CHECK(tn_scan(tp, step, &m.c, 1, &m.x, 2, bad) == NULL);
    CHECK_MSG(tn_tape_error(tp), "tn_scan: initial state 1 must be");
    tn_tape_reset(tp);
    CHECK(tn_scan(tp, NULL, &m.c, 1, &m.x, 2, init) == NULL);
    CHECK_MSG(tn_tape_error(tp), "tn_scan: needs a step function");
    tn_tape_free(tp);
    model_free(&m);
}

int main(void)
{
    if (tn_runtime_init() != TN_OK)
        return 1;
    for (int d = 0; d < 2; d++) {
        tn_dtype dt = d ? TN_F32 : TN_F64;
        for (B = 6; B <= 37; B += 31) {
            test_cell(dt, false, false);
            test_cell(dt, true, false);
            test_cell(dt, false, true);
        }
    }
    B = 6;
    test_gradcheck(false);
    test_gradcheck(true);
    test_errors();
    test_steady_alloc();
    return check_report("test_scan");
}
