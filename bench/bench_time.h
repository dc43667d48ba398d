/* bench/bench_time.h - the timing helpers of the benchmarks: a monotonic
 * clock in milliseconds, the qsort order of doubles (for medians) and,
 * with TN_BENCH_PEAK defined before the include (the program then links
 * BLIS), the SGEMM peak to state speeds against. */
#ifndef TN_BENCH_TIME_H
#define TN_BENCH_TIME_H

#include <stdlib.h>
#include <time.h>

static inline double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static inline int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

#ifdef TN_BENCH_PEAK
#include <blis.h>

/* Best of `reps` 1024^3 single-precision GEMMs, GFLOP/s, with BLIS's
 * global thread setting (tn_set_num_threads sets it; call the library
 * once first so that it has chosen BLIS's configuration); 0 when out of
 * memory. */
static inline double sgemm_peak(int reps)
{
    const dim_t n = 1024;
    float *a = malloc((size_t)(n * n) * sizeof(float));
    float *b = malloc((size_t)(n * n) * sizeof(float));
    float *c = malloc((size_t)(n * n) * sizeof(float));
    if (!a || !b || !c) {
        free(a), free(b), free(c);
        return 0;
    }
    for (dim_t i = 0; i < n * n; i++) {
        a[i] = (float)((i * 7) % 13) * 0.01f;
        b[i] = (float)((i * 5) % 11) * 0.01f;
        c[i] = 0;
    }
    float one = 1.0f, zero = 0.0f;
    double best = 1e30;
    for (int r = 0; r < reps + 1; r++) { /* first call is a warm-up */
        double t0 = now_ms();
        bli_sgemm(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, n, n, n, &one, a, n, 1, b, n, 1, &zero, c,
                  n, 1);
        double dt = now_ms() - t0;
        if (r > 0 && dt < best)
            best = dt;
    }
    free(a), free(b), free(c);
    return 2.0 * (double)n * n * n / best / 1e6;
}
#endif

#endif
