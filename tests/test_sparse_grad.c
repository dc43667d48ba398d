/* tests/test_sparse_grad.c - sparse embedding gradients
 * (tn_tensor_set_sparse_grad):
 *  - PyTorch parity (tests/fixtures/sparse_grad.bin from
 *    tests/gen_sparse_fixtures.py): nn.Embedding(sparse=True) + Linear +
 *    cross-entropy, 4 steps with SparseAdam + Adam, sparse Adagrad and SGD:
 *    losses and final parameters within 1e-12 relative (float64 on both
 *    sides, a few hundred operations: rounding is ~1e-15; a wrong row or
 *    moment is off by 1e-3 or more). The same run without the option (our
 *    dense Adam, whose moments of unused rows decay) must differ from
 *    SparseAdam's by more than 1e-6, so the comparison can fail.
 *  - the row list: after a backward it holds the distinct ids other than
 *    padding, the gradient equals the dense run's bit for bit and is 0
 *    elsewhere; zero_grad leaves it all 0 and the list empty; any other op
 *    reading the table (a tied product) makes every row count; the
 *    gradient norm equals the dense one; bad tensors are refused.
 */
#include "check.h"
#include "fixture_check.h"
#include "tensor/tensor.h"

enum { V = 12, E = 4, C = 3, N = 10, STEPS = 4 };

static const fixture *fx;

static const fixture_tensor *need(const char *name)
{
    const fixture_tensor *t = fixture_get(fx, name);
    if (!t)
        fprintf(stderr, "test_sparse_grad: fixture entry %s missing\n", name);
    CHECK(t != NULL);
    return t;
}

typedef struct model {
    tn_params ps;
    tn_tensor *emb;
    tn_linear head;
} model;

static void model_init(model *m, bool sparse)
{
    tn_params_init(&m->ps);
    m->emb = tn_params_new(&m->ps, "emb", "weight", TN_F64, 2, (int64_t[]){V, E});
    tn_rng r;
    tn_rng_seed(&r, 1);
    CHECK(m->emb && tn_linear_init(&m->head, &m->ps, "head", E, C, true, TN_F64, &r) == TN_OK);
    const char *names[3] = {"emb0", "w0", "b0"};
    tn_tensor *ts[3] = {m->emb, m->head.weight, m->head.bias};
    for (int k = 0; k < 3; k++) {
        const fixture_tensor *f = need(names[k]);
        for (int64_t i = 0; f && i < f->numel; i++)
            tn_tensor_set(ts[k], i, f->data[i]);
    }
    if (sparse)
        CHECK(tn_tensor_set_sparse_grad(m->emb, true) == TN_OK);
}

/* Loss of step s (its forward and backward on tp). */
static double step_loss(model *m, tn_tape *tp, int s, bool tied)
{
    const fixture_tensor *ids = need("ids"), *tg = need("targets");
    tn_tape_reset(tp);
    tn_tensor *x = tn_tape_tensor(tp, TN_I32, 1, (int64_t[]){N});
    tn_tensor *t = tn_tape_tensor(tp, TN_I32, 1, (int64_t[]){N});
    for (int i = 0; i < N; i++) {
        tn_tensor_set(x, i, ids->data[s * N + i]);
        tn_tensor_set(t, i, tg->data[s * N + i]);
    }
    tn_tensor *h = tn_gather_rows(tp, m->emb, x, 0);
    tn_tensor *loss =
        tn_cross_entropy(tp, tn_linear_forward(tp, &m->head, h), t, -100, TN_REDUCE_MEAN);
    if (tied) /* a second, dense use of the table: h E^T summed */
        loss = tn_add(tp, loss, tn_sum(tp, tn_matmul(tp, h, tn_transpose(tp, m->emb, 0, 1))));
    CHECK(loss && tn_backward(tp, loss) == TN_OK);
    return loss ? tn_tensor_get(loss, 0) : NAN;
}

static double rel(double got, double want)
{
    return fabs(got - want) / (1e-300 + fmax(1, fabs(want)));
}

/* 4 steps with optimizer kind name; the worst relative difference from
 * PyTorch's parameters and losses. */
static double run_parity(const char *name, bool sparse)
{
    model m;
    model_init(&m, sparse);
    tn_optim *o;
    if (strcmp(name, "sparse_adam") == 0) {
        tn_adam_opts a = tn_adam_defaults();
        a.lr = 0.05;
        o = tn_optim_adam(&m.ps, &a);
    } else if (strcmp(name, "adagrad") == 0) {
        tn_adagrad_opts a = tn_adagrad_defaults();
        a.lr = 0.3;
        o = tn_optim_adagrad(&m.ps, &a);
    } else {
        tn_sgd_opts a = tn_sgd_defaults();
        a.lr = 0.5;
        o = tn_optim_sgd(&m.ps, &a);
    }
    CHECK(o != NULL);
    tn_tape *tp = tn_tape_new();
    char key[64];
    snprintf(key, sizeof key, "%s.loss", name);
    const fixture_tensor *fl = need(key);
    double worst = 0;
    for (int s = 0; o && fl && s < STEPS; s++) {
        tn_optim_zero_grad(o);
        worst = fmax(worst, rel(step_loss(&m, tp, s, false), fl->data[s]));
        CHECK(tn_optim_step(o) == TN_OK);
    }
    const char *sfx[3] = {"emb", "w", "b"};
    tn_tensor *ts[3] = {m.emb, m.head.weight, m.head.bias};
    for (int k = 0; k < 3; k++) {
        snprintf(key, sizeof key, "%s.%s", name, sfx[k]);
        const fixture_tensor *f = need(key);
        for (int64_t i = 0; f && i < f->numel; i++)
            worst = fmax(worst, rel(tn_tensor_get(ts[k], i), f->data[i]));
    }
    tn_tape_free(tp);
    tn_optim_free(o);
    tn_params_free(&m.ps);
    return worst;
}

static void test_rows(void)
{
    model sp, dn;
    model_init(&sp, true);
    model_init(&dn, false);
    tn_tape *tp = tn_tape_new();
    tn_params_zero_grad(&sp.ps);
    tn_params_zero_grad(&dn.ps);
    step_loss(&sp, tp, 0, false);
    const int64_t *rows;
    int64_t nr = tn_tensor_grad_rows(sp.emb, &rows);
    /* batch 0: ids 1 3 3 0 5 2 1 0 0 7 -> rows {1, 2, 3, 5, 7} */
    bool want[V] = {false, true, true, true, false, true, false, true};
    CHECK(nr == 5);
    bool seen[V] = {false};
    for (int64_t k = 0; k < nr; k++) {
        CHECK(rows[k] >= 0 && rows[k] < V && want[rows[k]] && !seen[rows[k]]);
        if (rows[k] >= 0 && rows[k] < V)
            seen[rows[k]] = true;
    }
    tn_tape *tp2 = tn_tape_new();
    step_loss(&dn, tp2, 0, false);
    CHECK(tn_tensor_grad_rows(dn.emb, &rows) == -1 && rows == NULL);
    CHECK(memcmp(sp.emb->grad, dn.emb->grad, sizeof(double) * V * E) == 0);
    int nonzero_out = 0;
    for (int i = 0; i < V * E; i++)
        nonzero_out += !want[i / E] && ((double *)sp.emb->grad)[i] != 0;
    CHECK(nonzero_out == 0);
    /* the norm over the listed rows is the dense one */
    double n_sp, n_dn;
    CHECK(tn_clip_grad_norm(&sp.ps, 1e9, &n_sp) == TN_OK);
    CHECK(tn_clip_grad_norm(&dn.ps, 1e9, &n_dn) == TN_OK);
    CHECK(rel(n_sp, n_dn) <= 1e-14);
    /* zero_grad: all zero, list empty */
    tn_params_zero_grad(&sp.ps);
    CHECK(tn_tensor_grad_rows(sp.emb, &rows) == 0);
    int nonzero = 0;
    for (int i = 0; i < V * E; i++)
        nonzero += ((double *)sp.emb->grad)[i] != 0;
    CHECK(nonzero == 0);
    /* a dense use of the table: every row counts, zero_grad clears all */
    step_loss(&sp, tp, 1, true);
    CHECK(tn_tensor_grad_rows(sp.emb, &rows) == -1);
    tn_params_zero_grad(&sp.ps);
    CHECK(tn_tensor_grad_rows(sp.emb, &rows) == 0);
    nonzero = 0;
    for (int i = 0; i < V * E; i++)
        nonzero += ((double *)sp.emb->grad)[i] != 0;
    CHECK(nonzero == 0);
    /* refused: NULL, a 1-D parameter, a tensor without gradient */
    CHECK(tn_tensor_set_sparse_grad(NULL, true) == TN_ERR_ARG);
    CHECK(tn_tensor_set_sparse_grad(sp.head.bias, true) == TN_ERR_ARG &&
          strstr(tn_last_error(), "tn_tensor_set_sparse_grad"));
    tn_tensor *plain = tn_tensor_new(TN_F64, 2, (int64_t[]){3, 2});
    CHECK(tn_tensor_set_sparse_grad(plain, true) == TN_ERR_ARG);
    CHECK(tn_tensor_set_sparse_grad(sp.emb, false) == TN_OK &&
          tn_tensor_grad_rows(sp.emb, &rows) == -1);
    tn_tensor_free(plain);
    tn_tape_free(tp);
    tn_tape_free(tp2);
    tn_params_free(&sp.ps);
    tn_params_free(&dn.ps);
}

int main(void)
{
    fixture f;
    int rc = fixture_open(&f, "sparse_grad.bin", "test_sparse_grad");
    if (rc)
        return rc;
    fx = &f;
    const char *names[3] = {"sparse_adam", "adagrad", "sgd"};
    for (int k = 0; k < 3; k++) {
        double w = run_parity(names[k], true);
        printf("%-12s sparse vs PyTorch: worst relative difference %.3g\n", names[k], w);
        CHECK(w <= 1e-12);
    }
    double dense = run_parity("sparse_adam", false);
    printf("dense Adam vs PyTorch's SparseAdam: %.3g (must differ)\n", dense);
    CHECK(dense > 1e-6);
    test_rows();
    fixture_free(&f);
    return check_report("test_sparse_grad");
}
