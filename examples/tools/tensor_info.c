/* examples/tools/tensor_info.c - what this build of the tensor library runs on:
 * version, dtypes, the BLIS sub-configuration and why it was chosen, the
 * kernel path of the library's own loops ("isa <name>", see tn_isa_active),
 * thread counts; with --gemm, the SGEMM rate that speed figures are compared with.
 *
 * usage: tensor_info [--threads N] [--gemm] [--help] [--version]
 *   --threads N  use N threads for OpenMP loops and BLIS (tn_set_num_threads)
 *   --gemm       time a 1024^3 float32 GEMM (bli_sgemm, C := A*B) and print
 *                "sgemm 1024 GFLOP/s <rate>" (2*n^3 / seconds / 1e9 of the
 *                fastest of 9 timed calls after one warm-up call: the peak
 *                the machine reaches; on a shared VM single calls are often
 *                slowed by other guests), then the median of the 9, then
 *                the same product through tn_matmul (overhead included)
 */
#include "tensor/tensor.h"

#include <blis.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define GEMM_N    1024
#define GEMM_RUNS 9

/* Median of the sorted timings (also filled: the fastest, in *best). */
static double median_best(double *t, double *best)
{
    *best = t[0];
    return t[GEMM_RUNS / 2];
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median seconds of GEMM_RUNS calls of bli_sgemm on n x n matrices
 * (row-major, contiguous), after one warm-up call. */
static double time_sgemm(int n, double *best)
{
    float *a = malloc(sizeof(float) * (size_t)n * n), *b = malloc(sizeof(float) * (size_t)n * n);
    float *c = malloc(sizeof(float) * (size_t)n * n);
    if (!a || !b || !c) {
        free(a), free(b), free(c);
        return -1;
    }
    tn_rng r;
    tn_rng_seed(&r, 1);
    for (size_t i = 0; i < (size_t)n * n; i++) {
        a[i] = (float)(tn_rng_uniform(&r) - 0.5);
        b[i] = (float)(tn_rng_uniform(&r) - 0.5);
    }
    float one = 1.0f, zero = 0.0f;
    double t[GEMM_RUNS];
    for (int k = -1; k < GEMM_RUNS; k++) {
        double t0 = omp_get_wtime();
        bli_sgemm(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, n, n, n, &one, a, n, 1, b, n, 1, &zero, c,
                  n, 1);
        if (k >= 0)
            t[k] = omp_get_wtime() - t0;
    }
    free(a), free(b), free(c);
    qsort(t, GEMM_RUNS, sizeof t[0], cmp_double);
    return median_best(t, best);
}

/* Same product through tn_matmul on a tape (result allocation included;
 * the arena is reused after the first call). */
static double time_tn_matmul(int n, double *best)
{
    int64_t shape[2] = {n, n};
    tn_tensor *a = tn_tensor_new(TN_F32, 2, shape), *b = tn_tensor_new(TN_F32, 2, shape);
    tn_tape *tp = tn_tape_new();
    if (!a || !b || !tp) {
        tn_tensor_free(a), tn_tensor_free(b), tn_tape_free(tp);
        return -1;
    }
    tn_rng r;
    tn_rng_seed(&r, 2);
    tn_tensor_uniform(a, &r, -0.5, 0.5);
    tn_tensor_uniform(b, &r, -0.5, 0.5);
    double t[GEMM_RUNS];
    bool ok = true;
    for (int k = -1; k < GEMM_RUNS && ok; k++) {
        tn_tape_reset(tp);
        double t0 = omp_get_wtime();
        ok = tn_matmul(tp, a, b) != NULL;
        if (k >= 0)
            t[k] = omp_get_wtime() - t0;
    }
    tn_tape_free(tp);
    tn_tensor_free(a), tn_tensor_free(b);
    if (!ok)
        return -1;
    qsort(t, GEMM_RUNS, sizeof t[0], cmp_double);
    return median_best(t, best);
}

int main(int argc, char **argv)
{
    bool gemm = false;
    int64_t threads = 0;
    const ex_opt table[] = {
        {"--threads", EX_INT, &threads, "N", "threads for OpenMP loops and BLIS", .imin = 1,
         .imax = 1024, .def = EX_THREADS_DEFAULT},
        {"--gemm", EX_FLAG, &gemm, NULL,
         "time a 1024^3 SGEMM (the peak speed figures are compared with)", .commands = 0},
    };
    const ex_spec spec = {.prog = "tensor_info",
                          .summary = "what this build of libtensor runs on",
                          .opts = table,
                          .n_opts = (int)(sizeof table / sizeof table[0])};
    int rc = ex_parse(&spec, argc, argv, NULL);
    if (rc != EX_OK)
        return rc == EX_DONE ? 0 : 2;
    if (tn_runtime_init() != TN_OK) {
        fprintf(stderr, "tensor_info: %s\n", tn_last_error());
        return 1;
    }
    if (threads > 0)
        tn_set_num_threads((int)threads);

    printf("tensor %s (headers %s)\n", tn_version(), TN_VERSION_STRING);
    printf("dtypes: float32, float64 (values and gradients), int32 (indices and targets)\n");
    printf("blis config: %s (%s)\n", tn_blis_config(), tn_blis_config_reason());
    printf("isa %s (cpu supports %s%s)\n", tn_isa_name(tn_isa_active()), tn_isa_name(tn_isa_cpu()),
           getenv("TN_ISA") && *getenv("TN_ISA") ? "; forced by TN_ISA" : "");
    printf("threads: tn_num_threads %d, omp_get_max_threads %d, "
           "bli_thread_get_num_threads %ld\n",
           tn_num_threads(), omp_get_max_threads(), (long)bli_thread_get_num_threads());

    if (gemm) {
        double n3 = 2.0 * GEMM_N * (double)GEMM_N * GEMM_N;
        double best, s = time_sgemm(GEMM_N, &best);
        if (s <= 0) {
            fprintf(stderr, "tensor_info: out of memory for the GEMM test\n");
            return 1;
        }
        printf("sgemm %d GFLOP/s %.1f\n", GEMM_N, n3 / best / 1e9);
        printf("sgemm %d median GFLOP/s %.1f\n", GEMM_N, n3 / s / 1e9);
        double best2, s2 = time_tn_matmul(GEMM_N, &best2);
        if (s2 > 0)
            printf("tn_matmul %d GFLOP/s %.1f (median %.1f)\n", GEMM_N, n3 / best2 / 1e9,
                   n3 / s2 / 1e9);
        else
            fprintf(stderr, "tensor_info: tn_matmul failed: %s\n", tn_last_error());
    }
    return 0;
}
