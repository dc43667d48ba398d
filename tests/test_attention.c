/* tests/test_attention.c - the attention layers (tensor/nn.h): PyTorch
 * parity from tests/fixtures/attn_*.bin (tests/gen_attention_fixtures.py),
 * float64 gradient checks, float32 against float64, exact zero weights on
 * padded positions, and argument errors.
 *
 * Tolerances. Parity in float64: 1e-12 absolute on values and gradients
 * of order 1 (the same formulas in another operation order: ~1e-15 seen).
 * Gradient check: max relative error 1e-6 (central differences through a
 * few dozen smooth ops: ~1e-9 expected; a wrong term is of order 1).
 * float32 forward against float64: 1e-5 (float rounding of inputs and
 * parameters, through tanh/exp and sums of a few terms: ~1e-6). */
#include "check.h"
#include "fixture.h"

#include "tensor/tensor.h"

static const char *const KIND_NAMES[] = {"bahdanau", "luong", "general"};

typedef struct setup {
    tn_params ps;
    tn_attention a;
    tn_tensor *query, *keys;
    int32_t lengths[8];
    int64_t B, S;
} setup;

/* A heap tensor of dtype dt from a fixture entry. */
static tn_tensor *from_fx(const fixture_tensor *f, tn_dtype dt)
{
    tn_tensor *t = tn_tensor_new(dt, f->ndim, f->shape);
    for (int64_t i = 0; t && i < f->numel; i++)
        tn_tensor_set(t, i, f->data[i]);
    return t;
}

static double fx_scalar(const fixture *fx, const char *name)
{
    const fixture_tensor *t = fixture_get(fx, name);
    return t ? t->data[0] : -1;
}

/* The layer of the fixture with its parameters, query and keys in dt. */
static int setup_from(setup *s, const fixture *fx, tn_dtype dt)
{
    tn_rng r;
    tn_rng_seed(&r, 1);
    tn_params_init(&s->ps);
    if (tn_attention_init(&s->a, &s->ps, NULL, (tn_attn_kind)fx_scalar(fx, "meta.kind"),
                          (int64_t)fx_scalar(fx, "meta.query_size"),
                          (int64_t)fx_scalar(fx, "meta.key_size"),
                          (int64_t)fx_scalar(fx, "meta.attn_size"), dt, &r) != TN_OK)
        return -1;
    for (int i = 0; i < s->ps.n; i++) {
        const fixture_tensor *f = fixture_get(fx, s->ps.items[i].name);
        CHECK(f && f->numel == tn_numel(s->ps.items[i].t));
        if (!f)
            return -1;
        for (int64_t k = 0; k < f->numel; k++)
            tn_tensor_set(s->ps.items[i].t, k, f->data[k]);
    }
    s->query = from_fx(fixture_get(fx, "query"), dt);
    s->keys = from_fx(fixture_get(fx, "keys"), dt);
    tn_tensor_set_requires_grad(s->query, true);
    tn_tensor_set_requires_grad(s->keys, true);
    const fixture_tensor *len = fixture_get(fx, "lengths");
    s->B = s->keys->shape[0];
    s->S = s->keys->shape[1];
    for (int64_t b = 0; b < s->B; b++)
        s->lengths[b] = (int32_t)len->data[b];
    return 0;
}

static void setup_free(setup *s)
{
    tn_tensor_free(s->query);
    tn_tensor_free(s->keys);
    tn_params_free(&s->ps);
}

static double maxdiff_fx(const tn_tensor *t, bool grad, const fixture_tensor *f)
{
    if (!t || !f || tn_numel(t) != f->numel)
        return INFINITY;
    double m = 0;
    for (int64_t i = 0; i < f->numel; i++)
        m = fmax(m, fabs((grad ? tn_tensor_grad_get(t, i) : tn_tensor_get(t, i)) - f->data[i]));
    return m;
}

/* L = sum(context * wc) + sum(weights * ww) */
static tn_tensor *loss_of(tn_tape *tp, tn_tensor *ctx, tn_tensor *w, tn_tensor *wc, tn_tensor *ww)
{
    return tn_add(tp, tn_sum(tp, tn_mul(tp, ctx, wc)), tn_sum(tp, tn_mul(tp, w, ww)));
}

static void parity(const fixture *fx, const char *kind)
{
    setup s;
    if (setup_from(&s, fx, TN_F64) != 0) {
        CHECK(!"setup");
        return;
    }
    tn_tensor *wc = from_fx(fixture_get(fx, "wc"), TN_F64),
              *ww = from_fx(fixture_get(fx, "ww"), TN_F64);
    tn_tape *tp = tn_tape_new();
    tn_attn_memory m;
    tn_tensor *ctx, *w;
    CHECK(tn_attention_prepare(tp, &s.a, s.keys, s.lengths, &m) == TN_OK);
    CHECK(tn_attention_forward(tp, &s.a, &m, s.query, &ctx, &w) == TN_OK);
    CHECK(tn_backward(tp, loss_of(tp, ctx, w, wc, ww)) == TN_OK);
    double worst = fmax(maxdiff_fx(ctx, false, fixture_get(fx, "context")),
                        maxdiff_fx(w, false, fixture_get(fx, "weights")));
    double gworst = fmax(maxdiff_fx(s.query, true, fixture_get(fx, "grad.query")),
                         maxdiff_fx(s.keys, true, fixture_get(fx, "grad.keys")));
    char name[TN_NAME_MAX + 8];
    for (int i = 0; i < s.ps.n; i++) {
        snprintf(name, sizeof name, "grad.%s", s.ps.items[i].name);
        gworst = fmax(gworst, maxdiff_fx(s.ps.items[i].t, true, fixture_get(fx, name)));
    }
    int padded_nonzero = 0;
    for (int64_t b = 0; w && b < s.B; b++)
        for (int64_t j = s.lengths[b]; j < s.S; j++)
            padded_nonzero += tn_tensor_get(w, b * s.S + j) != 0.0;
    printf("%s: parity values %.3g, gradients %.3g; padded weights nonzero: %d\n", kind, worst,
           gworst, padded_nonzero);
    CHECK(worst <= 1e-12 && gworst <= 1e-12 && padded_nonzero == 0);
    tn_tape_free(tp);
    tn_tensor_free(wc);
    tn_tensor_free(ww);
    setup_free(&s);
}

typedef struct gc_ctx {
    setup *s;
} gc_ctx;

/* context and weights in one vector, from inputs query, keys and the
 * parameters (the gradient check perturbs them all). */
static tn_tensor *f_attn(tn_tape *tp, tn_tensor *const *in, void *p)
{
    gc_ctx *g = p;
    tn_attn_memory m;
    tn_tensor *ctx, *w;
    if (tn_attention_prepare(tp, &g->s->a, in[1], g->s->lengths, &m) ||
        tn_attention_forward(tp, &g->s->a, &m, in[0], &ctx, &w))
        return NULL;
    tn_tensor *parts[2] = {tn_reshape(tp, ctx, 1, (int64_t[]){-1}),
                           tn_reshape(tp, w, 1, (int64_t[]){-1})};
    return tn_concat(tp, 2, parts, 0);
}

static void gradcheck(const fixture *fx, const char *kind)
{
    setup s;
    if (setup_from(&s, fx, TN_F64) != 0) {
        CHECK(!"setup");
        return;
    }
    tn_tensor *in[8] = {s.query, s.keys};
    int n = 2;
    for (int i = 0; i < s.ps.n && n < 8; i++)
        in[n++] = s.ps.items[i].t;
    gc_ctx g = {&s};
    tn_gradcheck_result res;
    CHECK(tn_gradcheck(f_attn, &g, n, in, 1e-6, &res) == TN_OK);
    printf("%s: gradient check of %lld elements, max rel err %.3g\n", kind,
           (long long)res.n_checked, res.max_rel_err);
    CHECK(res.max_rel_err <= 1e-6);
    setup_free(&s);
}

static void float32(const fixture *fx, const char *kind)
{
    setup s;
    if (setup_from(&s, fx, TN_F32) != 0) {
        CHECK(!"setup");
        return;
    }
    tn_tape *tp = tn_tape_new();
    tn_attn_memory m;
    tn_tensor *ctx, *w;
    CHECK(tn_attention_prepare(tp, &s.a, s.keys, s.lengths, &m) == TN_OK);
    CHECK(tn_attention_forward(tp, &s.a, &m, s.query, &ctx, &w) == TN_OK);
    double worst = fmax(maxdiff_fx(ctx, false, fixture_get(fx, "context")),
                        maxdiff_fx(w, false, fixture_get(fx, "weights")));
    printf("%s: float32 forward vs PyTorch float64 %.3g\n", kind, worst);
    CHECK(worst <= 1e-5);
    tn_tape_free(tp);
    setup_free(&s);
}

static void errors(void)
{
    tn_params ps;
    tn_params_init(&ps);
    tn_rng r;
    tn_rng_seed(&r, 3);
    tn_attention a;
    CHECK(tn_attention_init(&a, &ps, "attn", TN_ATTN_LUONG_DOT, 4, 5, 0, TN_F32, &r) == TN_ERR_ARG);
    CHECK_MSG(tn_last_error(), "dot attention needs query size 4 == key size 5");
    CHECK(tn_attention_init(&a, &ps, "attn", TN_ATTN_BAHDANAU, 4, 5, 3, TN_F32, &r) == TN_OK);
    CHECK(tn_params_get(&ps, "attn.key.weight") && tn_params_get(&ps, "attn.v.weight"));
    tn_attn_kind kind = TN_ATTN_BAHDANAU;
    CHECK(tn_attn_kind_from_name("general", &kind) == TN_OK && kind == TN_ATTN_LUONG_GENERAL);
    CHECK(tn_attn_kind_from_name("nope", &kind) == TN_ERR_ARG && kind == TN_ATTN_LUONG_GENERAL);
    CHECK_MSG(tn_last_error(), "tn_attn_kind_from_name: unknown attention 'nope'");
    tn_tensor *keys = tn_tensor_new(TN_F32, 3, (int64_t[]){2, 3, 4});
    tn_tensor *q = tn_tensor_new(TN_F32, 2, (int64_t[]){2, 4});
    tn_tape *tp = tn_tape_new();
    tn_attn_memory m;
    CHECK(tn_attention_prepare(tp, &a, keys, NULL, &m) == TN_ERR_SHAPE);
    CHECK_MSG(tn_last_error(), "tn_attention_prepare: keys [2, 3, 4], expected [B, S, 5]");
    tn_tape_free(tp);
    tn_tensor_free(keys);
    keys = tn_tensor_new(TN_F32, 3, (int64_t[]){2, 3, 5});
    tp = tn_tape_new();
    CHECK(tn_attention_prepare(tp, &a, keys, (int32_t[]){3, 4}, &m) == TN_ERR_INDEX);
    CHECK_MSG(tn_last_error(), "lengths[1] = 4 outside 1..S = 3");
    tn_tape_free(tp);
    tp = tn_tape_new();
    tn_tensor *ctx, *w;
    CHECK(tn_attention_prepare(tp, &a, keys, NULL, &m) == TN_OK);
    tn_tensor *badq = tn_tensor_new(TN_F32, 2, (int64_t[]){3, 4});
    CHECK(tn_attention_forward(tp, &a, &m, badq, &ctx, &w) == TN_ERR_SHAPE && !ctx && !w);
    CHECK_MSG(tn_last_error(), "tn_attention_forward: query [3, 4], expected [2, 4]");
    tn_tape_free(tp);
    tn_tensor_free(badq);
    tn_tensor_free(keys);
    tn_tensor_free(q);
    tn_params_free(&ps);
}

int main(void)
{
    errors();
    const char *dir = fixture_dir();
    if (!dir) {
        printf("test_attention: TN_FIXTURES not set: parity skipped\n");
        check_report("test_attention");
        return check_failures ? 1 : 77;
    }
    for (int k = 0; k < 3; k++) {
        char file[64], path[1024];
        snprintf(file, sizeof file, "attn_%s.bin", KIND_NAMES[k]);
        fixture fx;
        if (!fixture_path(path, sizeof path, dir, file)) {
            CHECK(!"fixture path");
            continue;
        }
        if (fixture_load(&fx, path) != 0) {
            fprintf(stderr, "test_attention: %s: %s\n", file, fx.error);
            CHECK(!"fixture");
            continue;
        }
        parity(&fx, KIND_NAMES[k]);
        gradcheck(&fx, KIND_NAMES[k]);
        float32(&fx, KIND_NAMES[k]);
        fixture_free(&fx);
    }
    return check_report("test_attention");
}
