/* tests/test_grad_ready.c - tn_tape_set_grad_ready: tn_backward reports
 * every parameter once, when its gradient is final.
 *
 * The model reads its parameters in every way the engine knows: an
 * embedding (its weight also the tied output layer's, so it is read first
 * and last), a fused recurrent layer (tn_rnn), a tn_scan step with a
 * product against a parameter and a broadcast parameter vector, a
 * parameter read through narrow views, and matmul's postponed
 * weight-gradient products (TN_DEFER_MIN=1 makes every weight gradient
 * take that path). At each report the test copies the gradient; after
 * tn_backward every copy must equal the final gradient bit for bit
 * (tolerance 0: "final" means nothing is added afterwards), every
 * parameter must be reported exactly once, and the reports come latest
 * reader first (the tied embedding last). Without a function set nothing
 * changes: the gradients are bitwise those of the run with reports.
 */
#include "check.h"
#include "tensor/nn.h"
#include "tensor/optim.h"

enum { V = 11, E = 8, H = 8, B = 3, T = 4, MAXP = 32 };

typedef struct model {
    tn_params ps;
    tn_embedding emb;
    tn_rnn rnn;
    tn_tensor *U, *u; /* the scan step's weight [H, H] and vector [H] */
    tn_tensor *gates; /* [2H, H]: read through two narrow views */
    tn_linear head;   /* tied to emb.weight */
} model;

typedef struct reports {
    tn_tensor *param[MAXP];
    float *copy[MAXP];
    int n;
} reports;

static void on_ready(void *ctx, tn_tensor *p)
{
    reports *r = ctx;
    if (r->n == MAXP)
        return;
    size_t bytes = (size_t)tn_numel(p) * sizeof(float);
    r->param[r->n] = p;
    r->copy[r->n] = malloc(bytes);
    memcpy(r->copy[r->n], p->grad, bytes);
    r->n++;
}

static tn_status step(tn_tape *tp, void *ctx, tn_tensor *const *x, tn_tensor *const *st,
                      tn_tensor **next)
{
    model *m = ctx;
    tn_tensor *a = tn_addmm(tp, x[0], st[0], tn_transpose(tp, m->U, 0, 1));
    next[0] = tn_tanh(tp, tn_mul(tp, a, m->u));
    return TN_OK;
}

static tn_tensor *forward(tn_tape *tp, model *m, tn_tensor *ids, tn_tensor *tgt)
{
    tn_tensor *x = tn_embedding_forward(tp, &m->emb, ids); /* [B, T, E] */
    tn_rnn_out o;
    if (tn_rnn_forward(tp, &m->rnn, x, NULL, NULL, NULL, &o) != TN_OK)
        return NULL;
    tn_tensor *seq = tn_transpose(tp, o.output, 0, 1); /* [T, B, H] */
    tn_tensor *h0 = tn_tape_tensor(tp, TN_F32, 2, (int64_t[]){B, H});
    if (h0)
        memset(h0->data, 0, sizeof(float) * B * H);
    tn_tensor *y = tn_scan(tp, step, m, 1, (tn_tensor *[]){tn_contiguous(tp, seq)}, 1,
                           (tn_tensor *[]){h0}); /* [T, B, H] */
    tn_tensor *flat = tn_reshape(tp, y, 2, (int64_t[]){T * B, H});
    tn_tensor *g1 = tn_narrow(tp, m->gates, 0, 0, H), *g2 = tn_narrow(tp, m->gates, 0, H, H);
    tn_tensor *z = tn_add(tp, tn_matmul(tp, flat, g1), tn_sigmoid(tp, tn_matmul(tp, flat, g2)));
    tn_tensor *logits = tn_linear_forward(tp, &m->head, z); /* [T*B, V] */
    return tn_cross_entropy(tp, logits, tgt, -1, TN_REDUCE_MEAN);
}

static void run(model *m, tn_tape *tp, tn_tensor *ids, tn_tensor *tgt, reports *r)
{
    tn_params_zero_grad(&m->ps);
    tn_tape_reset(tp);
    tn_tape_set_grad_ready(tp, r ? on_ready : NULL, r);
    tn_tensor *loss = forward(tp, m, ids, tgt);
    CHECK(loss && tn_backward(tp, loss) == TN_OK);
}

int main(void)
{
    setenv("TN_DEFER_MIN", "1", 1); /* every weight gradient postponed */
    tn_runtime_init();
    tn_rng rng;
    tn_rng_seed(&rng, 3);
    model m;
    tn_params_init(&m.ps);
    CHECK(tn_embedding_init(&m.emb, &m.ps, "emb", V, E, -1, TN_F32, &rng) == TN_OK);
    CHECK(tn_rnn_init(&m.rnn, &m.ps, "rnn", TN_CELL_LSTM, E, H, 1, false, 0, TN_F32, &rng) ==
          TN_OK);
    m.U = tn_params_new(&m.ps, NULL, "U", TN_F32, 2, (int64_t[]){H, H});
    m.u = tn_params_new(&m.ps, NULL, "u", TN_F32, 1, (int64_t[]){H});
    m.gates = tn_params_new(&m.ps, NULL, "gates", TN_F32, 2, (int64_t[]){2 * H, H});
    CHECK(m.U && m.u && m.gates);
    CHECK(tn_init_uniform(m.U, &rng, -0.5, 0.5) == TN_OK);
    CHECK(tn_init_uniform(m.u, &rng, 0.5, 1.5) == TN_OK);
    CHECK(tn_init_uniform(m.gates, &rng, -0.5, 0.5) == TN_OK);
    CHECK(tn_linear_init_tied(&m.head, &m.ps, "head", "emb.weight", true, TN_F32, &rng) == TN_OK);
    tn_tensor *ids = tn_tensor_new(TN_I32, 2, (int64_t[]){B, T});
    tn_tensor *tgt = tn_tensor_new(TN_I32, 1, (int64_t[]){T * B});
    for (int i = 0; i < B * T; i++) {
        ((int32_t *)ids->data)[i] = (int32_t)(tn_rng_next(&rng) % V);
        ((int32_t *)tgt->data)[i] = (int32_t)(tn_rng_next(&rng) % V);
    }
    tn_tape *tp = tn_tape_new();
    reports r = {0};
    run(&m, tp, ids, tgt, &r);
    /* every parameter once; each copy is the final gradient */
    CHECK(r.n == m.ps.n);
    for (int k = 0; k < r.n; k++) {
        int seen = 0;
        for (int j = 0; j < r.n; j++)
            seen += r.param[j] == r.param[k];
        CHECK(seen == 1);
        size_t bytes = (size_t)tn_numel(r.param[k]) * sizeof(float);
        if (memcmp(r.copy[k], r.param[k]->grad, bytes) != 0) {
            fprintf(stderr, "parameter %d reported before its gradient was final\n", k);
            CHECK(0);
        }
    }
    /* the tied embedding is read first (embedding) and last (head): last */
    CHECK(r.n > 0 && r.param[r.n - 1] == m.emb.weight);
    /* the head's bias, read by the last op, comes first */
    CHECK(r.n > 0 && r.param[0] == m.head.bias);
    /* the same gradients without reports */
    float *with[MAXP];
    for (int k = 0; k < m.ps.n; k++) {
        tn_tensor *p = m.ps.items[k].t;
        with[k] = malloc((size_t)tn_numel(p) * sizeof(float));
        memcpy(with[k], p->grad, (size_t)tn_numel(p) * sizeof(float));
    }
    run(&m, tp, ids, tgt, NULL);
    for (int k = 0; k < m.ps.n; k++) {
        tn_tensor *p = m.ps.items[k].t;
        CHECK(memcmp(with[k], p->grad, (size_t)tn_numel(p) * sizeof(float)) == 0);
        free(with[k]);
    }
    for (int k = 0; k < r.n; k++)
        free(r.copy[k]);
    tn_tape_free(tp);
    tn_tensor_free(ids);
    tn_tensor_free(tgt);
    tn_params_free(&m.ps);
    printf("%d checks, %d failed\n", check_count, check_failures);
    return check_failures != 0;
}
