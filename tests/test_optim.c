/* tests/test_optim.c - optimizers, schedules and clipping against PyTorch
 * (tests/fixtures/optim.bin, written by tests/gen_optim_fixtures.py), and
 * initializers by their statistical and structural properties.
 *
 * Tolerances:
 *  - float64 runs use the same formulas in the same order as PyTorch's
 *    single-tensor code path, so they differ only by rounding: PyTorch's
 *    vectorised kernels fuse some multiply-adds (FMA) that C does not, a few
 *    ulps per operation over 5 steps. Bound: 1e-12 relative (parameters:
 *    to max(|want|, 1); state: to the largest |value| of its tensor, since
 *    moment averages of mixed-sign gradients pass near zero). Measured worst
 *    is printed (~5e-15).
 *  - float32 runs start from the same float64 data rounded to float: each
 *    operation adds ~6e-8 relative error and Adam/RMSprop divide by square
 *    roots of small averages; 5 steps stay below 2e-6 with the same
 *    normalisation (measured worst is printed).
 *  - initializer statistics are checked within 5 standard errors on 10^5
 *    samples (a fixed seed, so the test is deterministic; a fresh seed would
 *    fail with probability ~6e-7 per check).
 */
#include "check.h"
#include "fixture.h"
#include "tensor/tensor.h"

#include <math.h>
#include <stdlib.h>

#define TOL64 1e-12
#define TOL32 2e-6
#define STEPS 5

static const fixture *fx;
static double worst64, worst32;

/* Fixture tensor that must exist (a missing one is a failed check). */
static const fixture_tensor *need(const char *name)
{
    const fixture_tensor *t = fixture_get(fx, name);
    CHECK_MSG(t ? name : "(missing)", name);
    return t;
}

/* Compare got against want with the dtype's relative tolerance; floor keeps
 * the relative error meaningful near zero. Records the worst error. */
static void near_rel(const char *what, double got, double want, tn_dtype dt, double floor)
{
    double den = fabs(want) > floor ? fabs(want) : floor;
    double rel = fabs(got - want) / den;
    double tol = dt == TN_F64 ? TOL64 : TOL32;
    double *worst = dt == TN_F64 ? &worst64 : &worst32;
    if (rel > *worst)
        *worst = rel;
    check_count++;
    if (!(rel <= tol)) {
        check_failures++;
        fprintf(stderr, "%s (%s): got %.17g want %.17g rel %.3g > %g\n", what, tn_dtype_name(dt),
                got, want, rel, tol);
    }
}

/* ---- optimizer parity ---- */

typedef struct cfg {
    const char *name;
    tn_optim_kind kind;
} cfg;

static const cfg configs[] = {
    {"sgd_plain", TN_OPTIM_SGD},
    {"sgd_nesterov", TN_OPTIM_SGD},
    {"sgd_dampening", TN_OPTIM_SGD},
    {"adagrad", TN_OPTIM_ADAGRAD},
    {"rmsprop_plain", TN_OPTIM_RMSPROP},
    {"rmsprop_centered", TN_OPTIM_RMSPROP},
    {"adam", TN_OPTIM_ADAM},
    {"adam_amsgrad", TN_OPTIM_ADAM},
    {"adamw", TN_OPTIM_ADAMW},
};

static const char *const pnames[2] = {"w", "b"};

/* Parameters "w" [2, 3] and "b" [4] holding p0 from the fixture. */
static void make_params(tn_params *ps, tn_dtype dt)
{
    static const int64_t sw[2] = {2, 3}, sb[1] = {4};
    tn_params_init(ps);
    tn_tensor *w = tn_params_new(ps, NULL, "w", dt, 2, sw);
    tn_tensor *b = tn_params_new(ps, NULL, "b", dt, 1, sb);
    const fixture_tensor *w0 = need("p0.w"), *b0 = need("p0.b");
    for (int i = 0; i < 6; i++)
        tn_tensor_set(w, i, w0 ? w0->data[i] : 0);
    for (int i = 0; i < 4; i++)
        tn_tensor_set(b, i, b0 ? b0->data[i] : 0);
}

/* Write gradient row s of fixture tensor g into t->grad (contiguous). */
static void set_grad(tn_tensor *t, const fixture_tensor *g, int s)
{
    int64_t n = tn_numel(t);
    for (int64_t i = 0; i < n; i++) {
        double v = g ? g->data[s * n + i] : 0;
        if (t->dtype == TN_F32)
            ((float *)t->grad)[i] = (float)v;
        else
            ((double *)t->grad)[i] = v;
    }
}

/* Options of a config from its ".hyper" vector (layouts in the generator). */
static tn_optim *make_optim(const cfg *c, const tn_params *ps)
{
    char key[128];
    snprintf(key, sizeof key, "%s.hyper", c->name);
    const fixture_tensor *h = need(key);
    if (!h)
        return NULL;
    const double *v = h->data;
    switch (c->kind) {
    case TN_OPTIM_SGD: {
        tn_sgd_opts o = {.lr = v[0],
                         .momentum = v[1],
                         .dampening = v[2],
                         .weight_decay = v[3],
                         .nesterov = v[4] != 0};
        return tn_optim_sgd(ps, &o);
    }
    case TN_OPTIM_ADAGRAD: {
        tn_adagrad_opts o = {.lr = v[0],
                             .lr_decay = v[1],
                             .weight_decay = v[2],
                             .initial_accumulator_value = v[3],
                             .eps = v[4]};
        return tn_optim_adagrad(ps, &o);
    }
    case TN_OPTIM_RMSPROP: {
        tn_rmsprop_opts o = {.lr = v[0],
                             .alpha = v[1],
                             .eps = v[2],
                             .weight_decay = v[3],
                             .momentum = v[4],
                             .centered = v[5] != 0};
        return tn_optim_rmsprop(ps, &o);
    }
    case TN_OPTIM_ADAM:
    case TN_OPTIM_ADAMW: {
        tn_adam_opts o = {.lr = v[0],
                          .beta1 = v[1],
                          .beta2 = v[2],
                          .eps = v[3],
                          .weight_decay = v[4],
                          .amsgrad = v[5] != 0};
        return c->kind == TN_OPTIM_ADAM ? tn_optim_adam(ps, &o) : tn_optim_adamw(ps, &o);
    }
    }
    return NULL;
}

/* Run STEPS steps of config c in dtype dt, comparing the parameters after
 * each step and the state (by name) after the last. */
static void test_config(const cfg *c, tn_dtype dt)
{
    tn_params ps;
    make_params(&ps, dt);
    tn_optim *o = make_optim(c, &ps);
    CHECK(o != NULL);
    if (!o) {
        fprintf(stderr, "%s: %s\n", c->name, tn_last_error());
        tn_params_free(&ps);
        return;
    }
    char key[128], what[160];
    for (int s = 0; s < STEPS; s++) {
        for (int k = 0; k < 2; k++) {
            snprintf(key, sizeof key, "grads.%s", pnames[k]);
            set_grad(ps.items[k].t, need(key), s);
        }
        CHECK(tn_optim_step(o) == TN_OK);
        for (int k = 0; k < 2; k++) {
            snprintf(key, sizeof key, "%s.%s", c->name, pnames[k]);
            const fixture_tensor *want = need(key);
            tn_tensor *t = ps.items[k].t;
            for (int64_t i = 0; want && i < tn_numel(t); i++) {
                snprintf(what, sizeof what, "%s step %d %s[%lld]", c->name, s + 1, pnames[k],
                         (long long)i);
                near_rel(what, tn_tensor_get(t, i), want->data[s * tn_numel(t) + i], dt, 1.0);
            }
        }
    }
    CHECK(tn_optim_get_step(o) == STEPS);
    /* State: every fixture entry "<cfg>.state.<name>" is state "<name>", and
     * the optimizer has no other state tensors. */
    const tn_params *st = tn_optim_state(o);
    snprintf(key, sizeof key, "%s.state.", c->name);
    size_t plen = strlen(key);
    int nfix = 0;
    for (int i = 0; i < fx->count; i++) {
        if (strncmp(fx->items[i].name, key, plen) != 0)
            continue;
        nfix++;
        const char *sname = fx->items[i].name + plen;
        tn_tensor *t = tn_params_get(st, sname);
        CHECK_MSG(t ? sname : "(no such state)", sname);
        double scale = 0; /* state relative to its tensor's largest value */
        for (int64_t j = 0; j < fx->items[i].numel; j++)
            scale = fmax(scale, fabs(fx->items[i].data[j]));
        for (int64_t j = 0; t && j < tn_numel(t); j++) {
            snprintf(what, sizeof what, "%s state %s[%lld]", c->name, sname, (long long)j);
            near_rel(what, tn_tensor_get(t, j), fx->items[i].data[j], dt, scale);
        }
    }
    CHECK(st->n == nfix);
    tn_optim_free(o);
    tn_params_free(&ps);
}

/* Resuming from copied state (what a checkpoint does) is bitwise identical
 * to running straight through. */
static void test_resume(const cfg *c)
{
    tn_params a, b;
    make_params(&a, TN_F64);
    make_params(&b, TN_F64);
    tn_optim *oa = make_optim(c, &a), *ob = make_optim(c, &b), *ob2 = NULL;
    CHECK(oa && ob);
    if (!oa || !ob)
        goto done;
    for (int s = 0; s < STEPS; s++) {
        for (int k = 0; k < 2; k++) {
            char key[32];
            snprintf(key, sizeof key, "grads.%s", pnames[k]);
            set_grad(a.items[k].t, need(key), s);
            set_grad(b.items[k].t, need(key), s);
        }
        if (s == 2) { /* "restart": a fresh optimizer restored from ob */
            ob2 = make_optim(c, &b);
            const tn_params *from = tn_optim_state(ob), *to = tn_optim_state(ob2);
            CHECK(from->n == to->n);
            for (int i = 0; i < to->n && i < from->n; i++)
                CHECK(tn_tensor_copy(tn_params_get(to, from->items[i].name), from->items[i].t) ==
                      TN_OK);
            tn_optim_set_step(ob2, tn_optim_get_step(ob));
            tn_optim_free(ob);
            ob = ob2;
        }
        CHECK(tn_optim_step(oa) == TN_OK && tn_optim_step(ob) == TN_OK);
    }
    for (int k = 0; k < 2; k++)
        CHECK(memcmp(a.items[k].t->data, b.items[k].t->data,
                     (size_t)tn_numel(a.items[k].t) * sizeof(double)) == 0);
done:
    tn_optim_free(oa);
    tn_optim_free(ob);
    tn_params_free(&a);
    tn_params_free(&b);
}

static void check_vec(const char *name, const double *got, int n)
{
    const fixture_tensor *t = need(name);
    CHECK(!t || t->numel == n);
    for (int i = 0; t && i < n && i < t->numel; i++)
        CHECK_NEAR(got[i], t->data[i], 0);
}

/* Our defaults are PyTorch's (SGD: lr has no default in 1.13). */
static void test_defaults(void)
{
    tn_sgd_opts s = tn_sgd_defaults();
    CHECK(s.lr == 1e-3);
    double vs[5] = {-1, s.momentum, s.dampening, s.weight_decay, s.nesterov};
    check_vec("defaults.sgd", vs, 5);
    tn_adagrad_opts g = tn_adagrad_defaults();
    double vg[5] = {g.lr, g.lr_decay, g.weight_decay, g.initial_accumulator_value, g.eps};
    check_vec("defaults.adagrad", vg, 5);
    tn_rmsprop_opts r = tn_rmsprop_defaults();
    double vr[6] = {r.lr, r.alpha, r.eps, r.weight_decay, r.momentum, r.centered};
    check_vec("defaults.rmsprop", vr, 6);
    tn_adam_opts a = tn_adam_defaults(), w = tn_adamw_defaults();
    double va[6] = {a.lr, a.beta1, a.beta2, a.eps, a.weight_decay, a.amsgrad};
    double vw[6] = {w.lr, w.beta1, w.beta2, w.eps, w.weight_decay, w.amsgrad};
    check_vec("defaults.adam", va, 6);
    check_vec("defaults.adamw", vw, 6);
}

/* ---- clipping and schedules ---- */

static void test_clip(void)
{
    const fixture_tensor *mn = need("clip.max_norm");
    for (int k = 0; mn && k < 3; k++) {
        tn_params ps;
        make_params(&ps, TN_F64);
        set_grad(ps.items[0].t, need("clip.g.w"), 0);
        set_grad(ps.items[1].t, need("clip.g.b"), 0);
        double norm = NAN;
        CHECK(tn_clip_grad_norm(&ps, mn->data[k], &norm) == TN_OK);
        char key[64];
        snprintf(key, sizeof key, "clip.%d.norm", k);
        const fixture_tensor *wn = need(key);
        if (wn)
            near_rel(key, norm, wn->data[0], TN_F64, 1.0);
        for (int j = 0; j < 2; j++) {
            snprintf(key, sizeof key, "clip.%d.%s", k, pnames[j]);
            const fixture_tensor *want = need(key);
            for (int64_t i = 0; want && i < want->numel; i++)
                near_rel(key, tn_tensor_grad_get(ps.items[j].t, i), want->data[i], TN_F64, 1.0);
        }
        tn_params_free(&ps);
    }
    tn_params ps;
    make_params(&ps, TN_F64);
    set_grad(ps.items[0].t, need("clip.g.w"), 0);
    set_grad(ps.items[1].t, need("clip.g.b"), 0);
    const fixture_tensor *v = need("clipv.value");
    CHECK(tn_clip_grad_value(&ps, v ? v->data[0] : 0) == TN_OK);
    for (int j = 0; j < 2; j++) {
        char key[32];
        snprintf(key, sizeof key, "clipv.%s", pnames[j]);
        const fixture_tensor *want = need(key);
        for (int64_t i = 0; want && i < want->numel; i++)
            CHECK_NEAR(tn_tensor_grad_get(ps.items[j].t, i), want->data[i], 0);
    }
    /* a non-finite norm is returned and leaves the gradients alone */
    ((double *)ps.items[1].t->grad)[2] = INFINITY;
    double before = tn_tensor_grad_get(ps.items[0].t, 0);
    double norm = 0;
    CHECK(tn_clip_grad_norm(&ps, 1.0, &norm) == TN_ERR_NUMERIC && isinf(norm));
    CHECK(tn_tensor_grad_get(ps.items[0].t, 0) == before);
    /* a bad argument: an error, and *norm_out untouched */
    norm = 7.0;
    CHECK(tn_clip_grad_norm(&ps, -1.0, &norm) == TN_ERR_ARG && norm == 7.0);
    CHECK_MSG(tn_last_error(), "tn_clip_grad_norm");
    CHECK(tn_clip_grad_norm(NULL, 1.0, &norm) == TN_ERR_ARG && norm == 7.0);
    CHECK(tn_clip_grad_value(&ps, NAN) == TN_ERR_ARG);
    CHECK_MSG(tn_last_error(), "tn_clip_grad_value");
    tn_params_free(&ps);
}

static void test_schedules(void)
{
    const fixture_tensor *a, *w;
    if ((a = need("lr.step.args")) && (w = need("lr.step")))
        for (int s = 0; s < w->numel; s++) {
            near_rel("lr.step", tn_lr_step_decay(a->data[0], s, (int64_t)a->data[1], a->data[2]),
                     w->data[s], TN_F64, 1e-3);
            tn_lr_schedule sc = {.kind = TN_LR_STEP,
                                 .base_lr = a->data[0],
                                 .step_size = (int64_t)a->data[1],
                                 .gamma = a->data[2]};
            near_rel("lr_at step", tn_lr_at(&sc, s), w->data[s], TN_F64, 1e-3);
        }
    if ((a = need("lr.cosine.args")) && (w = need("lr.cosine")))
        for (int s = 0; s < w->numel; s++)
            near_rel("lr.cosine", tn_lr_cosine(a->data[0], s, (int64_t)a->data[1], a->data[2]),
                     w->data[s], TN_F64, 1e-3);
    if ((a = need("lr.warmup.args")) && (w = need("lr.warmup")))
        for (int s = 0; s < w->numel; s++) {
            near_rel("lr.warmup", tn_lr_warmup(a->data[0], s, (int64_t)a->data[1]), w->data[s],
                     TN_F64, 1e-3);
            tn_lr_schedule sc = {
                .kind = TN_LR_CONSTANT, .base_lr = a->data[0], .warmup = (int64_t)a->data[1]};
            near_rel("lr_at warmup", tn_lr_at(&sc, s), w->data[s], TN_F64, 1e-3);
        }
    if ((a = need("lr.warmup_cosine.args")) && (w = need("lr.warmup_cosine"))) {
        tn_lr_schedule sc = {.kind = TN_LR_COSINE,
                             .base_lr = a->data[0],
                             .warmup = (int64_t)a->data[1],
                             .total = (int64_t)a->data[2],
                             .eta_min = a->data[3]};
        for (int s = 0; s < w->numel; s++) {
            near_rel("lr.warmup_cosine",
                     tn_lr_warmup_cosine(a->data[0], s, sc.warmup, sc.total, sc.eta_min),
                     w->data[s], TN_F64, 1e-3);
            near_rel("lr_at cosine", tn_lr_at(&sc, s), w->data[s], TN_F64, 1e-3);
        }
        CHECK(tn_lr_at(&sc, sc.total + 5) == sc.eta_min); /* clamped after total */
    }
}

/* ---- fixture-free tests ---- */

static long n_allocs;
static void *count_alloc(size_t n)
{
    n_allocs++;
    return malloc(n);
}

/* Steady-state steps allocate nothing; errors name the function. */
static void test_api(void)
{
    tn_params ps;
    tn_params_init(&ps);
    int64_t big[2] = {300, 400}; /* above the threading threshold */
    tn_tensor *w = tn_params_new(&ps, "layer", "weight", TN_F32, 2, big);
    tn_tensor_fill(w, 1.0);
    for (int64_t i = 0; i < tn_numel(w); i++)
        ((float *)w->grad)[i] = 0.5f;
    tn_adam_opts ao = tn_adam_defaults();
    ao.amsgrad = true;
    tn_optim *o = tn_optim_adam(&ps, &ao);
    CHECK(o != NULL);
    CHECK(strcmp(tn_optim_name(o), "adam") == 0 && tn_optim_get_kind(o) == TN_OPTIM_ADAM);
    const tn_params *st = tn_optim_state(o);
    CHECK(st->n == 3);
    CHECK(tn_params_get(st, "layer.weight.exp_avg") != NULL);
    CHECK(tn_params_get(st, "layer.weight.max_exp_avg_sq") != NULL);
    CHECK(st->items[0].t->grad == NULL);
    long before = n_allocs;
    for (int s = 0; s < 3; s++)
        CHECK(tn_optim_step(o) == TN_OK);
    /* the norm does not depend on the thread count (fixed blocks) */
    int threads = tn_num_threads();
    tn_set_num_threads(1);
    double n1 = 0, n2 = 1;
    CHECK(tn_clip_grad_norm(&ps, 1e9, &n1) == TN_OK);
    tn_set_num_threads(2);
    CHECK(tn_clip_grad_norm(&ps, 1e9, &n2) == TN_OK);
    tn_set_num_threads(threads);
    CHECK(n1 == n2 && n1 > 0);
    CHECK(n_allocs == before);
    /* Adam's first step moves every weight by lr (m/sqrt(v) = 1) */
    CHECK_NEAR(tn_tensor_get(w, 7), 1.0 - 3 * 1e-3, 1e-6);
    tn_optim_set_lr(o, 0.5);
    CHECK(tn_optim_get_lr(o) == 0.5);
    tn_optim_set_step(o, 10);
    CHECK(tn_optim_get_step(o) == 10);
    tn_optim_zero_grad(o);
    CHECK(tn_tensor_grad_get(w, 5) == 0);
    int64_t one[1] = {3};
    tn_params_new(&ps, NULL, "late", TN_F32, 1, one);
    CHECK(tn_optim_step(o) == TN_ERR_STATE);
    CHECK_MSG(tn_last_error(), "tn_optim_step");
    tn_optim_free(o);
    tn_optim_free(NULL);

    /* bad options */
    ao.beta1 = 1.0;
    CHECK(tn_optim_adam(&ps, &ao) == NULL);
    CHECK_MSG(tn_last_error(), "tn_optim_adam");
    tn_sgd_opts so = tn_sgd_defaults();
    so.nesterov = true;
    CHECK(tn_optim_sgd(&ps, &so) == NULL);
    CHECK_MSG(tn_last_error(), "Nesterov");
    so = tn_sgd_defaults();
    so.lr = -1;
    CHECK(tn_optim_sgd(&ps, &so) == NULL);
    CHECK_MSG(tn_last_error(), "tn_optim_sgd");
    tn_rmsprop_opts ro = tn_rmsprop_defaults();
    ro.alpha = NAN;
    CHECK(tn_optim_rmsprop(&ps, &ro) == NULL);
    CHECK_MSG(tn_last_error(), "tn_optim_rmsprop");
    tn_adagrad_opts go = tn_adagrad_defaults();
    go.eps = -1;
    CHECK(tn_optim_adagrad(&ps, &go) == NULL);
    CHECK_MSG(tn_last_error(), "tn_optim_adagrad");
    CHECK(tn_optim_adamw(NULL, NULL) == NULL);
    CHECK_MSG(tn_last_error(), "tn_optim_adamw");
    CHECK(tn_optim_step(NULL) == TN_ERR_ARG);
    /* plain SGD keeps no state */
    o = tn_optim_sgd(&ps, NULL);
    CHECK(o && tn_optim_state(o)->n == 0);
    tn_optim_free(o);
    tn_params_free(&ps);
}

/* Mean and variance of t within 5 standard errors of (mu, var); kurt is
 * E[(x - mu)^4] / var^2 of the distribution (3 normal, 1.8 uniform). */
static void check_stats(const char *what, const tn_tensor *t, double mu, double var, double kurt)
{
    int64_t n = tn_numel(t);
    double s = 0, s2 = 0;
    for (int64_t i = 0; i < n; i++)
        s += tn_tensor_get(t, i);
    double mean = s / (double)n;
    for (int64_t i = 0; i < n; i++)
        s2 += (tn_tensor_get(t, i) - mean) * (tn_tensor_get(t, i) - mean);
    double v = s2 / (double)(n - 1);
    double se_mean = sqrt(var / (double)n), se_var = var * sqrt((kurt - 1) / (double)n);
    if (!(fabs(mean - mu) <= 5 * se_mean) || !(fabs(v - var) <= 5 * se_var))
        fprintf(stderr, "%s: mean %g (want %g +- %g) var %g (want %g +- %g)\n", what, mean, mu,
                5 * se_mean, v, var, 5 * se_var);
    CHECK(fabs(mean - mu) <= 5 * se_mean);
    CHECK(fabs(v - var) <= 5 * se_var);
}

/* max |x| over t. */
static double max_abs(const tn_tensor *t)
{
    double m = 0;
    for (int64_t i = 0; i < tn_numel(t); i++)
        m = fmax(m, fabs(tn_tensor_get(t, i)));
    return m;
}

/* W = gain Q from the QR of the normal matrix A that seed draws, with R
 * upper triangular and positive on the diagonal: checks Q's orthonormality
 * (1e-12 in f64; f32 storage rounds each entry, 1e-6) and that
 * R = Q^T A (tall) or Q^T A^T (wide) is upper triangular, positive. */
static void check_orthogonal(tn_dtype dt, int ndim, const int64_t *shape, double gain)
{
    tn_tensor *t = tn_tensor_new(dt, ndim, shape);
    tn_rng r;
    tn_rng_seed(&r, 99);
    CHECK(tn_init_orthogonal(t, &r, gain) == TN_OK);
    int64_t rows = shape[0], cols = tn_numel(t) / rows;
    bool tall = rows >= cols;
    int64_t m = tall ? rows : cols, k = tall ? cols : rows;
    double *q = malloc((size_t)(m * k) * sizeof *q), *a = malloc((size_t)(m * k) * sizeof *a);
    tn_rng_seed(&r, 99);
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < cols; j++) { /* column c of the tall matrix at c*m */
            double w = tn_tensor_get(t, i * cols + j) / gain, x = tn_rng_normal(&r);
            q[tall ? j * m + i : i * m + j] = w;
            a[tall ? j * m + i : i * m + j] = x;
        }
    double tol = dt == TN_F64 ? 1e-12 : 1e-6, worst = 0, worst_lower = 0;
    bool pos = true;
    for (int64_t c1 = 0; c1 < k; c1++)
        for (int64_t c2 = 0; c2 < k; c2++) {
            double d = 0, rr = 0;
            for (int64_t i = 0; i < m; i++) {
                d += q[c1 * m + i] * q[c2 * m + i];
                rr += q[c1 * m + i] * a[c2 * m + i]; /* R[c1][c2] */
            }
            worst = fmax(worst, fabs(d - (c1 == c2)));
            if (c1 > c2)
                worst_lower = fmax(worst_lower, fabs(rr));
            if (c1 == c2 && !(rr > 0))
                pos = false;
        }
    if (worst > tol || worst_lower > 1e-5 || !pos)
        fprintf(stderr, "orthogonal %lldx%lld %s: |QtQ - I| %g, |lower(R)| %g, diag>0 %d\n",
                (long long)rows, (long long)cols, tn_dtype_name(dt), worst, worst_lower, pos);
    CHECK(worst <= tol);
    CHECK(worst_lower <= 1e-5); /* f32: entries rounded at 6e-8 times |A| ~ sqrt(m) */
    CHECK(pos);
    free(q);
    free(a);
    tn_tensor_free(t);
}

static void test_init(void)
{
    tn_rng r;
    tn_rng_seed(&r, 7);
    int64_t sh[2] = {250, 400}; /* 10^5 samples; fan_in 400, fan_out 250 */
    tn_tensor *t = tn_tensor_new(TN_F64, 2, sh);
    CHECK(tn_init_uniform(t, &r, -0.5, 1.5) == TN_OK);
    check_stats("uniform", t, 0.5, 4.0 / 12, 1.8);
    CHECK(max_abs(t) <= 1.5);
    CHECK(tn_init_normal(t, &r, 2.0, 0.5) == TN_OK);
    check_stats("normal", t, 2.0, 0.25, 3.0);
    double b = 1.7 * sqrt(6.0 / 650);
    CHECK(tn_init_xavier_uniform(t, &r, 1.7) == TN_OK);
    check_stats("xavier_uniform", t, 0, b * b / 3, 1.8);
    CHECK(max_abs(t) <= b && max_abs(t) > 0.999 * b);
    CHECK(tn_init_xavier_normal(t, &r, 1.7) == TN_OK);
    check_stats("xavier_normal", t, 0, 1.7 * 1.7 * 2.0 / 650, 3.0);
    CHECK(tn_init_kaiming_uniform(t, &r, sqrt(5.0)) == TN_OK); /* nn.Linear: 1/sqrt(in) */
    CHECK(max_abs(t) <= 1 / sqrt(400.0) && max_abs(t) > 0.999 / sqrt(400.0));
    check_stats("kaiming_uniform(sqrt 5)", t, 0, 1.0 / 400 / 3, 1.8);
    CHECK(tn_init_kaiming_uniform(t, &r, 0) == TN_OK); /* ReLU: sqrt(6 / fan_in) */
    CHECK(max_abs(t) <= sqrt(6.0 / 400) && max_abs(t) > 0.999 * sqrt(6.0 / 400));
    CHECK(tn_init_kaiming_normal(t, &r, 0) == TN_OK);
    check_stats("kaiming_normal", t, 0, 2.0 / 400, 3.0);
    CHECK(tn_init_zeros(t) == TN_OK && max_abs(t) == 0);
    tn_tensor_free(t);

    /* fans and gains */
    int64_t s3[3] = {6, 4, 5}, fi = 0, fo = 0;
    tn_tensor *c = tn_tensor_new(TN_F32, 3, s3);
    CHECK(tn_init_fans(c, &fi, &fo) == TN_OK && fi == 20 && fo == 30);
    /* the gains (1e-15: one rounding of the closed forms) */
    double g[4] = {0};
    CHECK(tn_init_gain("tanh", 0, &g[0]) == TN_OK && tn_init_gain("relu", 0, &g[1]) == TN_OK);
    CHECK(tn_init_gain("leaky_relu", -1, &g[2]) == TN_OK &&
          tn_init_gain("selu", 0, &g[3]) == TN_OK);
    CHECK_NEAR(g[0], 5.0 / 3, 1e-15);
    CHECK_NEAR(g[1], sqrt(2.0), 1e-15);
    CHECK_NEAR(g[2], sqrt(2.0 / (1 + 1e-4)), 1e-15);
    CHECK_NEAR(g[3], 0.75, 0);
    CHECK(tn_init_gain("swish", 0, &g[0]) == TN_ERR_ARG && g[0] == 5.0 / 3); /* untouched */
    CHECK_MSG(tn_last_error(), "swish");
    CHECK(tn_init_gain(NULL, 0, &g[0]) == TN_ERR_ARG &&
          tn_init_gain("relu", 0, NULL) == TN_ERR_ARG);

    /* orthogonal: tall, wide, square, 3-D (viewed [6, 20]), both dtypes */
    int64_t tall[2] = {50, 20}, wide[2] = {20, 50}, sq[2] = {30, 30};
    check_orthogonal(TN_F64, 2, tall, 1.0);
    check_orthogonal(TN_F64, 2, wide, 1.5);
    check_orthogonal(TN_F64, 2, sq, 1.0);
    check_orthogonal(TN_F64, 3, s3, 2.0);
    check_orthogonal(TN_F32, 2, tall, 1.0);
    check_orthogonal(TN_F32, 2, wide, 1.0);
    /* same seed, same values */
    tn_tensor *c2 = tn_tensor_new(TN_F32, 3, s3);
    tn_rng_seed(&r, 5);
    tn_init_orthogonal(c, &r, 1.0);
    tn_rng_seed(&r, 5);
    tn_init_orthogonal(c2, &r, 1.0);
    CHECK(memcmp(c->data, c2->data, (size_t)tn_numel(c) * sizeof(float)) == 0);

    /* errors name the function and leave the tensor alone */
    int64_t s1[1] = {8};
    tn_tensor *v = tn_tensor_full(TN_F64, 1, s1, 3.0);
    CHECK(tn_init_xavier_uniform(v, &r, 1.0) == TN_ERR_SHAPE);
    CHECK_MSG(tn_last_error(), "tn_init_xavier_uniform");
    CHECK(tn_init_orthogonal(v, &r, 1.0) == TN_ERR_SHAPE);
    CHECK_MSG(tn_last_error(), "tn_init_orthogonal");
    CHECK(tn_init_kaiming_normal(v, &r, 0) == TN_ERR_SHAPE);
    CHECK(tn_init_uniform(v, &r, 1.0, 0.0) == TN_ERR_ARG);
    CHECK_MSG(tn_last_error(), "tn_init_uniform");
    CHECK(tn_init_normal(v, NULL, 0, 1) == TN_ERR_ARG);
    CHECK_MSG(tn_last_error(), "rng");
    CHECK(tn_tensor_get(v, 3) == 3.0);
    tn_tensor *ids = tn_tensor_new(TN_I32, 2, sq);
    CHECK(tn_init_normal(ids, &r, 0, 1) == TN_ERR_DTYPE);
    CHECK_MSG(tn_last_error(), "tn_init_normal");
    CHECK(tn_init_zeros(NULL) == TN_ERR_ARG);
    tn_tensor_free(ids);
    tn_tensor_free(v);
    tn_tensor_free(c);
    tn_tensor_free(c2);
}

/* A frozen parameter (requires_grad off) keeps its values and state under
 * every optimizer, AdamW's decoupled weight decay included, and its
 * gradient is left out of clipping; unfreezing resumes its updates. Exact
 * comparisons: a skipped parameter is not touched at all. */
static void test_frozen(void)
{
    for (int kind = 0; kind < 5; kind++) {
        tn_params ps;
        tn_params_init(&ps);
        int64_t sh[1] = {4};
        tn_tensor *w = tn_params_new(&ps, NULL, "frozen", TN_F64, 1, sh);
        tn_tensor *v = tn_params_new(&ps, NULL, "trained", TN_F64, 1, sh);
        for (int i = 0; i < 4; i++) {
            tn_tensor_set(w, i, 1.0 + i);
            tn_tensor_set(v, i, 1.0 + i);
            ((double *)w->grad)[i] = 100.0; /* stale gradient of a frozen parameter */
            ((double *)v->grad)[i] = 0.5;
        }
        CHECK(tn_tensor_set_requires_grad(w, false) == TN_OK);
        tn_optim *o = NULL;
        tn_sgd_opts so = tn_sgd_defaults();
        so.momentum = 0.9, so.weight_decay = 0.1;
        tn_adam_opts ao = tn_adamw_defaults();
        ao.weight_decay = 0.1;
        switch (kind) {
        case 0: o = tn_optim_sgd(&ps, &so); break;
        case 1: o = tn_optim_adagrad(&ps, NULL); break;
        case 2: o = tn_optim_rmsprop(&ps, NULL); break;
        case 3: o = tn_optim_adam(&ps, NULL); break;
        case 4: o = tn_optim_adamw(&ps, &ao); break;
        }
        CHECK(o != NULL);
        double norm = -1;
        /* only v's gradient counts: sqrt(4 * 0.25) = 1 */
        CHECK(tn_clip_grad_norm(&ps, 1e9, &norm) == TN_OK && fabs(norm - 1.0) < 1e-15);
        CHECK(tn_optim_step(o) == TN_OK && tn_optim_step(o) == TN_OK);
        for (int i = 0; i < 4; i++) {
            CHECK(tn_tensor_get(w, i) == 1.0 + i);
            CHECK(tn_tensor_get(v, i) != 1.0 + i);
        }
        const tn_params *st = tn_optim_state(o);
        for (int k = 0; k < st->n; k++)
            if (strncmp(st->items[k].name, "frozen.", 7) == 0 && kind != 1)
                for (int i = 0; i < 4; i++)
                    CHECK(tn_tensor_get(st->items[k].t, i) == 0.0);
        CHECK(tn_tensor_set_requires_grad(w, true) == TN_OK);
        CHECK(tn_optim_step(o) == TN_OK);
        CHECK(tn_tensor_get(w, 0) != 1.0);
        tn_optim_free(o);
        tn_params_free(&ps);
    }
}

/* Plain Adam runs a loop of its own (vectorised); AdamW with zero decay
 * takes the general loop with the same arithmetic (w * 1 is exact), so
 * both must give bitwise the same parameters and state, in both dtypes,
 * on a tensor large enough to be threaded and with a ragged tail. */
static void test_adam_paths(void)
{
    for (int dti = 0; dti < 2; dti++) {
        tn_dtype dt = dti ? TN_F32 : TN_F64;
        tn_params pa, pb;
        tn_params_init(&pa);
        tn_params_init(&pb);
        int64_t shape[1] = {40003};
        tn_tensor *a = tn_params_new(&pa, NULL, "w", dt, 1, shape);
        tn_tensor *b = tn_params_new(&pb, NULL, "w", dt, 1, shape);
        tn_rng rng;
        tn_rng_seed(&rng, 7);
        tn_tensor_uniform(a, &rng, -1, 1);
        tn_tensor_copy(b, a);
        tn_adam_opts plain = tn_adam_defaults(), zero_wd = tn_adamw_defaults();
        zero_wd.weight_decay = 0;
        tn_optim *oa = tn_optim_adam(&pa, &plain), *ob = tn_optim_adamw(&pb, &zero_wd);
        CHECK(oa && ob);
        for (int s = 0; oa && ob && s < 4; s++) {
            for (int64_t i = 0; i < shape[0]; i++) {
                double g = sin(0.37 * (double)i + s) * (i % 5 == 0 ? 1e-3 : 1.0);
                if (dt == TN_F32)
                    ((float *)a->grad)[i] = ((float *)b->grad)[i] = (float)g;
                else
                    ((double *)a->grad)[i] = ((double *)b->grad)[i] = g;
            }
            CHECK(tn_optim_step(oa) == TN_OK && tn_optim_step(ob) == TN_OK);
        }
        CHECK(memcmp(a->data, b->data, (size_t)shape[0] * tn_dtype_size(dt)) == 0);
        const tn_params *sa = tn_optim_state(oa), *sb = tn_optim_state(ob);
        for (int k = 0; oa && ob && k < sa->n; k++)
            CHECK(memcmp(sa->items[k].t->data, sb->items[k].t->data,
                         (size_t)shape[0] * tn_dtype_size(dt)) == 0);
        tn_optim_free(oa), tn_optim_free(ob);
        tn_params_free(&pa), tn_params_free(&pb);
    }
}

int main(void)
{
    tn_set_allocator(count_alloc, free); /* before any library object */
    test_api();
    test_adam_paths();
    test_frozen();
    test_init();

    const char *dir = fixture_dir();
    if (!dir) {
        printf("test_optim: TN_FIXTURES is not set to a directory; the PyTorch parity part is "
               "skipped (fixture-free checks ran: %d failed)\n",
               check_failures);
        return check_failures ? 1 : 77;
    }
    char path[4096];
    fixture f = {0};
    if (!fixture_path(path, sizeof path, dir, "optim.bin") || fixture_load(&f, path) != 0) {
        fprintf(stderr, "test_optim: %s\n", f.error);
        return 1;
    }
    fx = &f;
    test_defaults();
    for (size_t i = 0; i < sizeof configs / sizeof configs[0]; i++) {
        test_config(&configs[i], TN_F64);
        test_config(&configs[i], TN_F32);
        test_resume(&configs[i]);
    }
    test_clip();
    test_schedules();
    printf("test_optim: worst relative error vs PyTorch: f64 %.3g (tol %g), f32 %.3g (tol %g)\n",
           worst64, TOL64, worst32, TOL32);
    fixture_free(&f);
    return check_report("test_optim");
}
