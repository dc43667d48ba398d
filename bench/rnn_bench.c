/* bench/rnn_bench.c - the training step of the benchmark contract
 * (docs/design.md section 4), timed.
 *
 *   ids [B, T] over V = 65 -> Embedding(65, 64) -> RNN/LSTM/GRU (hidden H,
 *   L layers, unidirectional, batch first) -> Linear(H, 65) ->
 *   cross-entropy (mean over B*T) -> backward -> clip global grad norm 1.0
 *   -> Adam (lr 1e-3)
 *
 * float32. The token ids and targets are drawn once from a fixed seed and
 * reused every step (the cost of a step does not depend on the values).
 * Warm-up steps first, then as many steps as fit in --seconds. The SGEMM
 * peak (1024^3 bli_sgemm, best of 5) is measured with the same thread
 * count before (in a child process, so that its buffers do not count in
 * the peak RSS) and after the training loop (in this process, after the
 * RSS is read); the higher of the two is reported.
 *
 * Heap allocations in the timed steps are counted two ways: the library's
 * own (tn_set_allocator hooks: steady_allocs, the target is 0) and every
 * malloc/calloc/realloc of the process including BLIS and libgomp
 * (steady_mallocs, informational; interposed below).
 *
 * The last line of stdout is one line of key=value pairs:
 *   config=... threads=... ms_per_step=... tokens_per_s=... gflops=...
 *   sgemm_peak_gflops=... peak_pct=... rss_mb=... steady_allocs=... ...
 *   threads_active_min=... (the fewest threads the library ran on during
 *   the timed steps: below threads when its back-off saw other processes
 *   on the cores, tn_num_threads_active; such a run measured a busy
 *   machine)
 */
#define _GNU_SOURCE
#include <tensor/tensor.h>

#include <blis.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TN_BENCH_PEAK
#include "bench_time.h"
#include "cli.h"
#include "configs.h"
#include "train_dist.h"

/* ---- counting every heap allocation of the process ---- */

/* Under AddressSanitizer (which owns malloc) the interposition is left
 * out and steady_mallocs prints -1. */
#if defined(__SANITIZE_ADDRESS__)
#define COUNT_MALLOCS 0
#else
#define COUNT_MALLOCS 1
#endif

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);

static atomic_int counting;     /* set during the timed steps */
static atomic_long n_mallocs;   /* every malloc/calloc/realloc meanwhile */
static atomic_long n_tn_allocs; /* the library's allocations (hooks) */

#if COUNT_MALLOCS
void *malloc(size_t n)
{
    if (atomic_load_explicit(&counting, memory_order_relaxed))
        atomic_fetch_add_explicit(&n_mallocs, 1, memory_order_relaxed);
    return __libc_malloc(n);
}

void *calloc(size_t n, size_t sz)
{
    if (atomic_load_explicit(&counting, memory_order_relaxed))
        atomic_fetch_add_explicit(&n_mallocs, 1, memory_order_relaxed);
    return __libc_calloc(n, sz);
}

void *realloc(void *p, size_t n)
{
    if (atomic_load_explicit(&counting, memory_order_relaxed))
        atomic_fetch_add_explicit(&n_mallocs, 1, memory_order_relaxed);
    return __libc_realloc(p, n);
}

void free(void *p) { __libc_free(p); }
#endif

static void *hook_alloc(size_t n)
{
    if (atomic_load_explicit(&counting, memory_order_relaxed))
        atomic_fetch_add_explicit(&n_tn_allocs, 1, memory_order_relaxed);
    return malloc(n);
}

static void hook_free(void *p) { free(p); }

/* ---- options ---- */

enum { V = BENCH_V, E = BENCH_E };

/* The SGEMM peak (sgemm_peak(5)) on `threads` threads, measured in a
 * child process before this one starts any thread: its BLIS packing
 * buffers and 12 MB of operands then stay out of this process's peak RSS.
 * 0 when the child could not run. */
static double peak_in_child(int64_t threads)
{
    int fd[2];
    if (pipe(fd) != 0)
        return 0;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(fd[0]), close(fd[1]);
        return 0;
    }
    if (pid == 0) {
        close(fd[0]);
        double p = 0;
        if (tn_runtime_init() == TN_OK && tn_set_num_threads((int)threads) == TN_OK)
            p = sgemm_peak(5);
        ssize_t w = write(fd[1], &p, sizeof p);
        _exit(w == (ssize_t)sizeof p ? 0 : 1);
    }
    close(fd[1]);
    double p = 0;
    if (read(fd[0], &p, sizeof p) != (ssize_t)sizeof p)
        p = 0;
    close(fd[0]);
    waitpid(pid, NULL, 0);
    return p;
}

/* ---- the model and one training step ---- */

typedef struct model {
    tn_params ps;
    tn_embedding emb;
    tn_rnn rnn;
    tn_linear head;
    tn_optim *opt;
} model;

/* Seconds spent in each phase of the timed steps (printed on stderr). */
enum { PH_RESET, PH_FORWARD, PH_BACKWARD, PH_ALLREDUCE, PH_CLIP, PH_ADAM, PH_N };
static const char *phase_name[PH_N] = {"reset+zero_grad", "forward", "backward",
                                       "allreduce",       "clip",    "adam"};
static double phase_s[PH_N];

/* One full training step; returns the loss, or NAN (message printed). */
static double train_step(model *m, tn_tape *tp, tn_tensor *ids, tn_tensor *targets)
{
    double t[PH_N + 1];
    t[0] = ex_seconds();
    tn_tape_reset(tp);
    tn_optim_zero_grad(m->opt);
    t[1] = ex_seconds();
    tn_tensor *x = tn_embedding_forward(tp, &m->emb, ids); /* [B, T, E] */
    tn_rnn_out out;
    if (tn_rnn_forward(tp, &m->rnn, x, NULL, NULL, NULL, &out) != TN_OK) {
        fprintf(stderr, "rnn_bench: rnn: %s\n", tn_last_error());
        return NAN;
    }
    tn_tensor *logits = tn_linear_forward(tp, &m->head, out.output); /* [B, T, V] */
    logits = tn_reshape(tp, logits, 2, (int64_t[]){-1, V});          /* [B*T, V] */
    tn_tensor *loss = tn_cross_entropy(tp, logits, targets, -1, TN_REDUCE_MEAN);
    t[2] = ex_seconds();
    if (!loss || tn_backward(tp, loss) != TN_OK) {
        fprintf(stderr, "rnn_bench: %s\n", tn_last_error());
        return NAN;
    }
    t[3] = ex_seconds();
    if (ex_dist_allreduce(NULL) != TN_OK) { /* several ranks: the mean gradient */
        fprintf(stderr, "rnn_bench: allreduce: %s\n", tn_last_error());
        return NAN;
    }
    t[4] = ex_seconds();
    tn_clip_grad_norm(&m->ps, 1.0, NULL);
    t[5] = ex_seconds();
    if (tn_optim_step(m->opt) != TN_OK) {
        fprintf(stderr, "rnn_bench: adam: %s\n", tn_last_error());
        return NAN;
    }
    t[6] = ex_seconds();
    for (int k = 0; k < PH_N; k++)
        phase_s[k] += t[k + 1] - t[k];
    return tn_tensor_get(loss, 0);
}

int main(int argc, char **argv)
{
    bench_shape_opts so = {.config = "lstm-s"};
    int64_t threads = 2, warmup = 3;
    double seconds = 5.0;
    const ex_opt table[] = {
        BENCH_SHAPE_OPTS(&so),
        {"--threads", EX_INT, &threads, "N", "threads for OpenMP loops and BLIS", .imin = 1,
         .imax = 1024},
        BENCH_TIME_OPTS(&seconds, &warmup),
    };
    const ex_spec spec = {
        .prog = "rnn_bench",
        .summary = "the training step of the benchmark contract, timed",
        .opts = table,
        .n_opts = (int)(sizeof table / sizeof table[0]),
        .notes = "The step of docs/design.md: Embedding(65, 64) -> cell -> Linear(H, 65)\n"
                 "-> cross-entropy -> backward -> clip 1.0 -> Adam 1e-3, float32, fixed random\n"
                 "ids. Explicit sizes override the named config. The last stdout line is\n"
                 "key=value pairs (config=... tokens_per_s=...). Under mpirun -np N the\n"
                 "ranks split the batch B and average gradients (only rank 0 prints;\n"
                 "tokens_per_s counts the global batch, allreduce_pct the share of the\n"
                 "step in the all-reduce, the SGEMM peak is the sum of the ranks').\n",
    };
    int rc = ex_parse(&spec, argc, argv, NULL);
    if (rc != EX_OK)
        return rc == EX_DONE ? 0 : 2;
    double peak_before = peak_in_child(threads); /* no threads or MPI yet: fork is safe */
    if (ex_dist_start(&argc, &argv))
        return 1;
    char name[96];
    const bench_config cfg = bench_config_pick(&so, name, sizeof name);
    const long B = cfg.batch, T = cfg.seq, H = cfg.hidden, L = cfg.layers;
    const int ranks = ex_dist_size(), rank = ex_dist_rank();
    const long Bl = B / ranks; /* this rank's rows of the batch */
    if (B % ranks) {
        fprintf(stderr, "rnn_bench: batch %ld does not split over %d ranks\n", B, ranks);
        return 1;
    }
    tn_cell cell = ex_cell(cfg.cell);

    /* Hooks before any library object exists; then the runtime (BLIS
     * sub-configuration, threads, flush-to-zero) before any BLIS call. */
    tn_set_allocator(hook_alloc, hook_free);
    if (tn_runtime_init() != TN_OK) {
        fprintf(stderr, "rnn_bench: %s\n", tn_last_error());
        return 1;
    }
    tn_set_num_threads((int)threads);

    model m;
    memset(&m, 0, sizeof m);
    tn_params_init(&m.ps);
    tn_rng rng;
    tn_rng_seed(&rng, 1234);
    if (tn_embedding_init(&m.emb, &m.ps, "embed", V, E, -1, TN_F32, &rng) != TN_OK ||
        tn_rnn_init(&m.rnn, &m.ps, "rnn", cell, E, H, (int)L, false, 0.0, TN_F32, &rng) != TN_OK ||
        tn_linear_init(&m.head, &m.ps, "head", H, V, true, TN_F32, &rng) != TN_OK) {
        fprintf(stderr, "rnn_bench: model: %s\n", tn_last_error());
        return 1;
    }
    tn_adam_opts ao = tn_adam_defaults();
    ao.lr = 1e-3;
    m.opt = tn_optim_adam(&m.ps, &ao);
    tn_tape *tp = tn_tape_new();
    tn_tensor *ids = tn_tensor_new(TN_I32, 2, (int64_t[]){Bl, T});
    tn_tensor *targets = tn_tensor_new(TN_I32, 1, (int64_t[]){Bl * T});
    if (!m.opt || !tp || !ids || !targets) {
        fprintf(stderr, "rnn_bench: setup: %s\n", tn_last_error());
        return 1;
    }
    int32_t *xd = ids->data, *yd = targets->data;
    for (long i = 0; i < B * T; i++) { /* the global batch; this rank keeps its rows */
        int32_t x = (int32_t)(tn_rng_next(&rng) % V), y = (int32_t)(tn_rng_next(&rng) % V);
        if (i / T >= rank * Bl && i / T < (rank + 1) * Bl)
            xd[i - rank * Bl * T] = x, yd[i - rank * Bl * T] = y;
    }
    if (ex_dist_attach(&m.ps) || ex_dist_watch(tp))
        return 1;
    fprintf(stderr,
            "rnn_bench: %s: %s H=%ld B=%ld T=%ld L=%ld E=%d V=%d params=%lld; %ld threads, "
            "BLIS %s (%s)\n",
            name, tn_cell_name(cell), H, B, T, L, (int)E, (int)V, (long long)tn_params_numel(&m.ps),
            threads, tn_blis_config(), tn_blis_config_reason());

    double first = NAN, loss = NAN;
    for (long w = 0; w < warmup; w++) {
        loss = train_step(&m, tp, ids, targets);
        if (w == 0)
            first = loss;
        if (loss != loss)
            return 1;
    }

    long steps = 0;
    memset(phase_s, 0, sizeof phase_s);
    atomic_store(&counting, 1);
    double t0 = ex_seconds(), el = 0;
    int active_min = tn_num_threads_active();
    do {
        loss = train_step(&m, tp, ids, targets);
        steps++;
        int active = tn_num_threads_active(); /* fewer when other processes took cores */
        active_min = active < active_min ? active : active_min;
        el = ex_dist_mean(ex_seconds() - t0); /* every rank decides alike */
    } while (loss == loss && (el < seconds || steps < 2));
    atomic_store(&counting, 0);
    if (loss != loss)
        return 1;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double rss_mb = (double)ru.ru_maxrss / 1024.0; /* Linux: kilobytes */
    fprintf(stderr,
            "rnn_bench: loss %.4f (first warm-up step) -> %.4f after %ld steps; arena %.1f MB\n",
            first, loss, warmup + steps, (double)tn_tape_arena_capacity(tp) / 1048576.0);

    double ms = 1e3 * el / (double)steps;
    fprintf(stderr, "rnn_bench: ms/step by phase:");
    for (int k = 0; k < PH_N; k++)
        fprintf(stderr, " %s %.3f", phase_name[k], 1e3 * phase_s[k] / (double)steps);
    fprintf(stderr, "\n");
    double tok = (double)(B * T) / (el / (double)steps);
    /* per step: forward + backward, all timesteps */
    double flops = bench_rnn_flops(&cfg) + 6.0 * B * H * V * T;
    double gflops = flops / (el / (double)steps) / 1e9;
    /* the ranks measure at once; the higher of before and after (a single
     * measurement swung by 1.7x between runs of one configuration) */
    double peak_after = ex_dist_mean(sgemm_peak(5));
    peak_before = ex_dist_mean(peak_before);
    double peak = (peak_after > peak_before ? peak_after : peak_before) * ranks;
    if (rank != 0) {
        ex_dist_stop();
        return 0;
    }

    printf("config=%s threads=%ld ms_per_step=%.3f tokens_per_s=%.0f gflops=%.2f "
           "sgemm_peak_gflops=%.1f peak_pct=%.1f rss_mb=%.1f steady_allocs=%ld "
           "steady_mallocs=%ld steps=%ld cell=%s H=%ld B=%ld T=%ld L=%ld blis=%s blis_arch=%d "
           "isa=%s ranks=%d allreduce_pct=%.1f params=%lld threads_active_min=%d\n",
           name, threads, ms, tok, gflops, peak, peak > 0 ? 100.0 * gflops / peak : 0.0, rss_mb,
           atomic_load(&n_tn_allocs), COUNT_MALLOCS ? atomic_load(&n_mallocs) : -1L, steps,
           cfg.cell, H, B, T, L, tn_blis_config(), (int)bli_arch_query_id(),
           tn_isa_name(tn_isa_active()), ranks, 100.0 * phase_s[PH_ALLREDUCE] / el,
           (long long)tn_params_numel(&m.ps), active_min);

    tn_tensor_free(ids);
    tn_tensor_free(targets);
    tn_tape_free(tp);
    tn_optim_free(m.opt);
    tn_params_free(&m.ps);
    ex_dist_stop();
    return 0;
}
