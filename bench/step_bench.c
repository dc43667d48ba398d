/* bench/step_bench.c - the recurrent time loops' per-step product on one
 * thread, BLIS's micro-kernel against the kernel path's step_mul.
 *
 *   step_bench [K N [M ...]]     default: the products of lstm-s, rnn-s,
 *                                gru-s and lstm-m (forward and backward)
 *
 * C [M, N] = A [M, K] @ W with W packed once, as the time loops do
 * (tn__packed_mul): once with BLIS's geometry (tn__packed_geometry: the
 * left operand packed per call, BLIS's native micro-kernel of the active
 * configuration) and once with the time loops' (tn__packed_geometry_step:
 * the active kernel path's step_mul where it has one). The two run in
 * alternation, 40 rounds of 200 products each, and the best round of each
 * is reported, as microseconds per product and GFLOP/s, next to the
 * one-thread SGEMM peak measured in the same process before and after
 * (1024^3, best of 5 each; this VM's speed moves between runs).
 * M is a thread's batch rows: 16 on 2 threads splitting 32 rows.
 * TN_ISA selects the kernel path (and BLIS's configuration with it). Uses
 * the library's internal headers: a benchmark of an internal kernel.
 */
#define TN_BENCH_PEAK
#include "../src/ops/ops_internal.h"
#include "../src/ops/rows.h"
#include "tensor/core.h"

#include <stdio.h>
#include <stdlib.h>

#include "bench_time.h"

static float *filled(int64_t n, float scale)
{
    float *p = aligned_alloc(64, (size_t)((n * 4 + 63) / 64 * 64));
    for (int64_t i = 0; p && i < n; i++)
        p[i] = scale * (float)(i % 13 - 6);
    return p;
}

/* W packed with BLIS's geometry (step false) or the time loops'. */
static bool pack(tn__packed *p, bool step, int64_t K, int64_t N, const float *W)
{
    if (step)
        tn__packed_geometry_step(p, TN_F32, K, N);
    else
        tn__packed_geometry(p, TN_F32, K, N);
    if (!(p->w = aligned_alloc(64, (size_t)((tn__packed_bytes(p) + 63) / 64 * 64))))
        return false;
    tn__packed_zero(p);
    tn__packed_set(p, 0, N, W, N, 1);
    return true;
}

static int run(int64_t K, int64_t N, int64_t M)
{
    float *W = filled(K * N, 0.01f), *A = filled(M * K, 0.02f), *C = filled(M * N, 0);
    tn__packed p[2];
    void *scratch[2] = {NULL, NULL};
    int ok = W && A && C;
    for (int v = 0; ok && v < 2; v++)
        ok = pack(&p[v], v == 1, K, N, W) &&
             (scratch[v] = aligned_alloc(
                  64, (size_t)((tn__packed_scratch_bytes(&p[v], M) + 63) / 64 * 64))) != NULL;
    if (!ok) {
        fprintf(stderr, "step_bench: out of memory\n");
        return 1;
    }
    double best[2] = {1e30, 1e30};
    enum { ROUNDS = 40, REPS = 200 };
    for (int r = 0; r < ROUNDS; r++)
        for (int v = 0; v < 2; v++) {
            double t0 = now_ms();
            for (int i = 0; i < REPS; i++)
                tn__packed_mul(&p[v], M, A, K, C, N, false, scratch[v]);
            double t = (now_ms() - t0) / REPS;
            best[v] = t < best[v] ? t : best[v];
        }
    double flop = 2.0 * (double)(M * N * K);
    printf("K %5lld N %5lld M %3lld: BLIS %8.2f us %6.1f GFLOP/s | step kernel (%s) %8.2f us %6.1f "
           "GFLOP/s | %.2fx\n",
           (long long)K, (long long)N, (long long)M, 1e3 * best[0], flop / best[0] * 1e-6,
           p[1].step ? tn_isa_name(tn_isa_active()) : "none: BLIS", 1e3 * best[1],
           flop / best[1] * 1e-6, best[0] / best[1]);
    for (int v = 0; v < 2; v++)
        free(p[v].w), free(scratch[v]);
    free(W), free(A), free(C);
    return 0;
}

int main(int argc, char **argv)
{
    if (tn_runtime_init() != TN_OK || tn_set_num_threads(1) != TN_OK) {
        fprintf(stderr, "step_bench: %s\n", tn_last_error());
        return 1;
    }
    if (argc == 2 || argc == 3 || (argc > 1 && atoll(argv[1]) <= 0)) {
        fprintf(stderr, "usage: step_bench [K N [M ...]]\n");
        return 1;
    }
    printf("kernel path %s, BLIS %s, 1 thread; SGEMM 1024^3 peak before %.1f GFLOP/s\n",
           tn_isa_name(tn_isa_active()), tn_blis_config(), sgemm_peak(5));
    if (argc > 3) {
        for (int i = 3; i < argc; i++)
            if (atoll(argv[1]) <= 0 || atoll(argv[2]) <= 0 || atoll(argv[i]) <= 0 ||
                run(atoll(argv[1]), atoll(argv[2]), atoll(argv[i])))
                return 1;
        printf("SGEMM 1024^3 peak after %.1f GFLOP/s\n", sgemm_peak(5));
        return 0;
    }
    /* forward [M, H] @ [H, G], backward [M, G] @ [G, H] (units split: n of H) */
    static const int64_t shapes[][3] = {{128, 512, 16}, {512, 128, 16}, {128, 128, 16},
                                        {256, 768, 16}, {768, 256, 16}, {512, 1024, 64},
                                        {2048, 256, 64}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        if (run(shapes[i][0], shapes[i][1], shapes[i][2]))
            return 1;
    printf("SGEMM 1024^3 peak after %.1f GFLOP/s\n", sgemm_peak(5));
    return 0;
}
