/* tests/test_threads.c - the library from several threads (issue 10, D5).
 *
 * 1. Two threads train two separate models (embedding, LSTM, linear,
 *    cross-entropy, backward, clipping, Adam) on separate tapes, starting
 *    at the same time in a fresh process, so they also race to initialise
 *    the runtime, then save their checkpoints (to separate files, at the
 *    same time) and load them back. Their parameters must be bitwise equal
 *    to the same two trainings run one after the other (no tolerance: the
 *    same operations in the same order on the same data give the same
 *    bits), and the loaded ones to the trained ones.
 * 2. tn_set_num_threads reaches the OpenMP teams of every thread that
 *    calls the library, not only the caller's.
 * 3. Flush-to-zero applies to the library's computations in every thread
 *    (1e-20f * 1e-20f = 1e-40f, a denormal, comes out 0 everywhere), and
 *    the caller's own floating-point mode is left as it was.
 *
 * In the normal builds this is a plain test. CI also builds it with
 * ThreadSanitizer (.ci/run, -DTN_TSAN=ON) and runs it with TN_NUM_THREADS=1:
 * Debian's libgomp is not built with TSan, so its barriers look like races
 * to TSan; one OpenMP thread per training thread keeps OpenMP out of the
 * picture while the library's own state (initialisation, settings, tapes,
 * errors) is checked under concurrency. */
#include "check.h"
#include "tensor/tensor.h"

#include <omp.h>
#include <pthread.h>
#include <unistd.h>
#if defined(__SSE__)
#include <xmmintrin.h>
#endif

enum { V = 11, E = 6, H = 16, B = 3, T = 7, STEPS = 6 };

typedef struct job {
    uint64_t seed;
    char path[64]; /* checkpoint written and read back ("" = none) */
    float *out;    /* every parameter value after training, in set order */
    int64_t n;
    tn_status st;
} job;

static void *train(void *arg)
{
    job *j = arg;
    tn_rng r;
    tn_rng_seed(&r, j->seed);
    tn_params ps;
    tn_params_init(&ps);
    tn_embedding emb;
    tn_rnn rnn;
    tn_linear head;
    j->st = tn_embedding_init(&emb, &ps, "embed", V, E, -1, TN_F32, &r);
    if (j->st == TN_OK)
        j->st = tn_rnn_init(&rnn, &ps, "rnn", TN_CELL_LSTM, E, H, 1, false, 0.0, TN_F32, &r);
    if (j->st == TN_OK)
        j->st = tn_linear_init(&head, &ps, "head", H, V, true, TN_F32, &r);
    tn_optim *opt = j->st == TN_OK ? tn_optim_adam(&ps, NULL) : NULL;
    tn_tape *tp = tn_tape_new();
    for (int step = 0; opt && step < STEPS && j->st == TN_OK; step++) {
        tn_tape_reset(tp);
        tn_optim_zero_grad(opt);
        tn_tensor *ids = tn_tape_tensor(tp, TN_I32, 2, (int64_t[]){B, T});
        tn_tensor *tg = tn_tape_tensor(tp, TN_I32, 1, (int64_t[]){B * T});
        for (int i = 0; i < B * T; i++) {
            ((int32_t *)ids->data)[i] = (int32_t)(tn_rng_next(&r) % V);
            ((int32_t *)tg->data)[i] = (int32_t)(tn_rng_next(&r) % V);
        }
        tn_rnn_out out;
        j->st =
            tn_rnn_forward(tp, &rnn, tn_embedding_forward(tp, &emb, ids), NULL, NULL, NULL, &out);
        tn_tensor *lg = tn_linear_forward(tp, &head, out.output);
        tn_tensor *loss = tn_cross_entropy(tp, tn_reshape(tp, lg, 2, (int64_t[]){B * T, V}), tg, -1,
                                           TN_REDUCE_MEAN);
        if (j->st == TN_OK)
            j->st = tn_backward(tp, loss);
        if (j->st == TN_OK)
            j->st = tn_clip_grad_norm(&ps, 1.0, NULL);
        if (j->st == TN_OK)
            j->st = tn_optim_step(opt);
    }
    if (j->st == TN_OK && j->path[0]) { /* save, then load into the same set */
        j->st = tn_save(j->path, (tn_params *[]){&ps}, 1, NULL);
        float first = (float)tn_tensor_get(ps.items[0].t, 0);
        tn_tensor_fill(ps.items[0].t, 0.0);
        if (j->st == TN_OK)
            j->st = tn_load(j->path, (tn_params *[]){&ps}, 1, NULL);
        if (j->st == TN_OK && (float)tn_tensor_get(ps.items[0].t, 0) != first)
            j->st = TN_ERR_FORMAT;
        unlink(j->path);
    }
    j->n = tn_params_numel(&ps);
    j->out = malloc((size_t)j->n * sizeof *j->out);
    int64_t k = 0;
    for (int i = 0; i < ps.n; i++)
        for (int64_t e = 0; e < tn_numel(ps.items[i].t); e++)
            j->out[k++] = (float)tn_tensor_get(ps.items[i].t, e);
    tn_tape_free(tp);
    tn_optim_free(opt);
    tn_params_free(&ps);
    return NULL;
}

/* The library's threads and modes, seen from one thread. */
typedef struct probe {
    int max_threads;                /* omp_get_max_threads() after a library call */
    uint32_t product;               /* bits of tn_mul of 1e-20f by 1e-20f (bits: comparing
                       * floats in a thread with denormals-are-zero on would
                       * see a denormal as 0) */
    unsigned ftz_before, ftz_after; /* this thread's FTZ/DAZ bits around it */
} probe;

static unsigned ftz_bits(void)
{
#if defined(__SSE__)
    return _mm_getcsr() & 0x8040u;
#else
    return 0;
#endif
}

static pthread_barrier_t go; /* the early probe thread waits for main's calls */

static void *run_probe(void *arg)
{
    probe *p = arg;
    p->ftz_before = ftz_bits();
    tn_tape *tp = tn_tape_new();
    tn_tensor *a = tn_tape_tensor(tp, TN_F32, 1, (int64_t[]){1});
    ((float *)a->data)[0] = 1e-20f;
    tn_tensor *y = tn_mul(tp, a, a);
    p->product = 0xffffffffu;
    if (y)
        memcpy(&p->product, y->data, sizeof p->product);
    p->max_threads = omp_get_max_threads();
    p->ftz_after = ftz_bits();
    tn_tape_free(tp);
    return NULL;
}

static void *run_probe_later(void *arg)
{
    pthread_barrier_wait(&go);
    return run_probe(arg);
}

int main(void)
{
    unsigned ftz_main = ftz_bits();
    /* a thread that exists before the library is first used (it inherits
     * nothing the library sets up later), probed at the end */
    probe there;
    pthread_t t;
    pthread_barrier_init(&go, NULL, 2);
    CHECK(pthread_create(&t, NULL, run_probe_later, &there) == 0);

    /* 1. concurrent training in a fresh process, then the same sequentially */
    job par[2] = {{.seed = 11}, {.seed = 22}}, seq[2] = {{.seed = 11}, {.seed = 22}};
    for (int i = 0; i < 2; i++)
        snprintf(par[i].path, sizeof par[i].path, "/tmp/tn_test_threads.%ld.%d", (long)getpid(), i);
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        CHECK(pthread_create(&th[i], NULL, train, &par[i]) == 0);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < 2; i++)
        train(&seq[i]);
    /* the two runs differ from each other, so equality below means something */
    CHECK(seq[0].n == seq[1].n &&
          memcmp(seq[0].out, seq[1].out, (size_t)seq[0].n * sizeof(float)) != 0);
    for (int i = 0; i < 2; i++) {
        CHECK(par[i].st == TN_OK && seq[i].st == TN_OK);
        CHECK(par[i].n == seq[i].n && par[i].n > 0);
        CHECK(memcmp(par[i].out, seq[i].out, (size_t)seq[i].n * sizeof(float)) == 0);
        free(par[i].out);
        free(seq[i].out);
    }

    /* 2 and 3: a thread count set here reaches another thread's teams; the
     * denormal product is flushed in both; neither thread's mode changes */
    int n0 = tn_num_threads();
    int want = n0 > 1 ? 1 : 2;
    tn_set_num_threads(want);
    probe here;
    run_probe(&here);
    pthread_barrier_wait(&go);
    pthread_join(t, NULL);
    pthread_barrier_destroy(&go);
    printf("threads: set %d; main sees %d, other thread %d; 1e-20f^2 bits %08x / %08x\n", want,
           here.max_threads, there.max_threads, (unsigned)here.product, (unsigned)there.product);
    CHECK(here.max_threads == want && there.max_threads == want);
    CHECK(here.product == there.product);
#if defined(__SSE__)
    CHECK(here.product == 0); /* +0.0f: flushed, the library computes with FTZ on x86 */
#endif
    CHECK(here.ftz_before == here.ftz_after && there.ftz_before == there.ftz_after);
    CHECK(ftz_bits() == ftz_main); /* the caller's own mode, untouched by everything above */
    tn_set_num_threads(n0);
    return check_report("test_threads");
}
