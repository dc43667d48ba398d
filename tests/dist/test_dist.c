/* tests/dist/test_dist.c - data-parallel training (tensor/dist.h), run by
 * ctest as `mpirun -np 2 test_dist`.
 *
 * Every rank builds the same small model (rank 1's initial values are
 * perturbed first, so that the broadcast is tested) and trains STEPS steps
 * on its half of a global batch, averaging gradients with
 * tn_dist_allreduce; every rank also trains a copy on the whole batch in
 * one process. The parameters must agree:
 *   - distributed vs one process: max relative difference 1e-5 in float32
 *     and 1e-12 in float64 (the required bounds: the mean of the two
 *     halves' mean losses is the global mean loss, so the gradients are
 *     equal up to rounding of the sums in another order);
 *   - the same with the buckets started during backward (tn_dist_watch),
 *     which must happen for some bucket in every step after the first;
 *   - deterministic mode: two runs bitwise identical, and every rank
 *     bitwise identical to rank 0; a watched run bitwise identical too;
 * and a failure on one rank becomes the same error on every rank, naming
 * it (tn_dist_agree). */
#include "../check.h"

#include "tensor/dist.h"
#include "tensor/tensor.h"

#include <stdbool.h>

enum { B = 8, T = 6, V = 11, E = 5, H = 7, STEPS = 4 };

typedef struct model {
    tn_params ps;
    tn_embedding emb;
    tn_rnn rnn;
    tn_linear head;
    tn_optim *opt;
} model;

static void model_init(model *m, tn_dtype dt, int perturb)
{
    tn_rng r;
    tn_rng_seed(&r, 99);
    tn_params_init(&m->ps);
    tn_embedding_init(&m->emb, &m->ps, "embed", V, E, -1, dt, &r);
    tn_rnn_init(&m->rnn, &m->ps, "rnn", TN_CELL_LSTM, E, H, 1, false, 0.0, dt, &r);
    tn_linear_init(&m->head, &m->ps, "head", H, V, true, dt, &r);
    for (int i = 0; perturb && i < m->ps.n; i++)
        tn_tensor_set(m->ps.items[i].t, 0, 0.5 + perturb);
    m->opt = tn_optim_adam(&m->ps, NULL);
}

static void model_free(model *m)
{
    tn_optim_free(m->opt);
    tn_params_free(&m->ps);
}

/* One step on rows [r0, r0 + n) of the batch: mean cross-entropy. */
static tn_status step(model *m, tn_tape *tp, const int32_t *x, const int32_t *y, int r0, int n,
                      tn_dist *d)
{
    tn_tensor *ids = tn_tensor_from(TN_I32, 2, (int64_t[]){n, T}, x + r0 * T);
    tn_tensor *tg = tn_tensor_from(TN_I32, 1, (int64_t[]){n * T}, y + r0 * T);
    tn_tape_reset(tp);
    tn_optim_zero_grad(m->opt);
    tn_rnn_out o;
    tn_status s =
        tn_rnn_forward(tp, &m->rnn, tn_embedding_forward(tp, &m->emb, ids), NULL, NULL, NULL, &o);
    tn_tensor *loss = s ? NULL
                        : tn_cross_entropy(tp,
                                           tn_reshape(tp, tn_linear_forward(tp, &m->head, o.output),
                                                      2, (int64_t[]){n * T, V}),
                                           tg, -1, TN_REDUCE_MEAN);
    s = loss ? tn_backward(tp, loss) : TN_ERR_STATE;
    if (!s && d)
        s = tn_dist_allreduce(d);
    if (!s) {
        tn_clip_grad_norm(&m->ps, 1.0, NULL);
        s = tn_optim_step(m->opt);
    }
    tn_tensor_free(ids);
    tn_tensor_free(tg);
    return s;
}

static double max_rel(const model *a, const model *b)
{
    double worst = 0;
    for (int i = 0; i < a->ps.n; i++)
        for (int64_t k = 0; k < tn_numel(a->ps.items[i].t); k++) {
            double x = tn_tensor_get(a->ps.items[i].t, k), y = tn_tensor_get(b->ps.items[i].t, k);
            worst = fmax(worst, fabs(x - y) / fmax(fabs(y), 1e-3));
        }
    return worst;
}

/* Train dist (this rank's half) and, when ref, one process (whole batch);
 * with watch, the buckets start during backward (tn_dist_watch), and every
 * step must start some of them early. */
static void train(tn_dist *d, model *dm, model *ref, const int32_t *x, const int32_t *y, bool watch)
{
    int rank = tn_dist_rank(d), size = tn_dist_size(d), n = B / size;
    tn_tape *tp = tn_tape_new();
    if (watch)
        CHECK(tn_dist_watch(d, tp) == TN_OK);
    for (int s = 0; s < STEPS; s++) {
        if (step(dm, tp, x, y, rank * n, n, d) != TN_OK) {
            fprintf(stderr, "step: %s\n", tn_last_error());
            CHECK(!"distributed step");
        }
        CHECK(!watch || tn_dist_buckets_early(d) > 0);
        if (ref) { /* one process on a tape of its own: no reports */
            tn_tape *rt = tn_tape_new();
            CHECK(step(ref, rt, x, y, 0, B, NULL) == TN_OK);
            tn_tape_free(rt);
        }
    }
    tn_tape_free(tp);
}

static void batch(int32_t *x, int32_t *y)
{
    tn_rng r;
    tn_rng_seed(&r, 7);
    for (int i = 0; i < B * T; i++) {
        x[i] = (int32_t)(tn_rng_uniform(&r) * V);
        y[i] = (int32_t)(tn_rng_uniform(&r) * V);
    }
}

static int64_t checksum_bits(const model *m)
{
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < m->ps.n; i++) {
        const unsigned char *p = m->ps.items[i].t->data;
        size_t bytes = (size_t)tn_numel(m->ps.items[i].t) * tn_dtype_size(m->ps.items[i].t->dtype);
        for (size_t k = 0; k < bytes; k++)
            h = (h ^ p[k]) * 1099511628211ull;
    }
    return (int64_t)(h >> 1);
}

int main(int argc, char **argv)
{
    int32_t x[B * T], y[B * T];
    batch(x, y);
    int provided;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided); /* ours: d must not finalise */
    model tmp;
    model_init(&tmp, TN_F32, 0);
    tn_dist *d;
    if (tn_dist_init(&d, &argc, &argv, &tmp.ps) != TN_OK) {
        fprintf(stderr, "test_dist: %s\n", tn_last_error());
        return 1;
    }
    model_free(&tmp);
    int rank = tn_dist_rank(d), size = tn_dist_size(d);
    CHECK(size == 2);
    tn_dist_free(d);
    for (int f = 0; f < 4; f++) { /* float32, float64; then both watched */
        tn_dtype dt = f % 2 ? TN_F64 : TN_F32;
        bool watch = f >= 2;
        double bound = f % 2 ? 1e-12 : 1e-5;
        model dm, ref;
        model_init(&dm, dt, rank); /* rank 1 starts different: the broadcast fixes it */
        model_init(&ref, dt, 0);
        CHECK(tn_dist_init_comm(&d, MPI_COMM_WORLD, &dm.ps) == TN_OK);
        tn_dist_set_bucket_bytes(d, 2048); /* several buckets even for this small model */
        CHECK(tn_dist_broadcast(d, &dm.ps) == TN_OK);
        CHECK(max_rel(&dm, &ref) == 0);
        train(d, &dm, &ref, x, y, watch);
        double e = max_rel(&dm, &ref);
        if (rank == 0)
            printf("%s%s: %d ranks x %d rows vs 1 process x %d rows, %d steps, %d buckets (%d "
                   "started during backward): max rel diff %.3g (bound %g)\n",
                   tn_dtype_name(dt), watch ? " watched" : "", size, B / size, B, STEPS,
                   tn_dist_buckets(d), tn_dist_buckets_early(d), e, bound);
        CHECK(e <= bound);
        tn_dist_free(d);
        model_free(&dm);
        model_free(&ref);
    }
    /* deterministic mode: two runs, then one watched, bitwise */
    int64_t sums[3];
    for (int run = 0; run < 3; run++) {
        model dm;
        model_init(&dm, TN_F32, 0);
        CHECK(tn_dist_init_comm(&d, MPI_COMM_WORLD, &dm.ps) == TN_OK);
        tn_dist_set_deterministic(d, true);
        tn_dist_set_bucket_bytes(d, 2048);
        train(d, &dm, NULL, x, y, run == 2);
        sums[run] = checksum_bits(&dm);
        CHECK(tn_dist_same(d, sums[run])); /* every rank holds the same bits */
        tn_dist_free(d);
        model_free(&dm);
    }
    CHECK(sums[0] == sums[1] && sums[0] == sums[2]);
    if (rank == 0)
        printf("deterministic: runs %s, watched %s, ranks identical\n",
               sums[0] == sums[1] ? "bitwise equal" : "DIFFER",
               sums[0] == sums[2] ? "bitwise equal" : "DIFFERS");
    /* a failure on rank 1 reaches every rank */
    model dm;
    model_init(&dm, TN_F32, 0);
    CHECK(tn_dist_init_comm(&d, MPI_COMM_WORLD, &dm.ps) == TN_OK);
    tn_status local = TN_OK;
    if (rank == 1)
        local = tn_set_error(TN_ERR_FORMAT, "data file bad.txt: not valid UTF-8 at byte 12");
    CHECK(tn_dist_agree(d, local) == TN_ERR_FORMAT);
    CHECK_MSG(tn_last_error(), "rank 1: data file bad.txt: not valid UTF-8 at byte 12");
    CHECK(tn_dist_agree(d, TN_OK) == TN_OK);
    CHECK(!tn_dist_same(d, rank));
    tn_dist_free(d);
    model_free(&dm);
    int failures = check_failures, all;
    MPI_Allreduce(&failures, &all, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    int rc = check_report(rank == 0 ? "test_dist (rank 0)" : "test_dist (rank 1)");
    MPI_Finalize();
    return all ? 1 : rc;
}
