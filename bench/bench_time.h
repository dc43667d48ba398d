/* bench/bench_time.h - the timing helpers of the small benchmarks
 * (lce_bench, conv_bench): a monotonic clock in milliseconds and the
 * qsort order of doubles (for medians). */
#ifndef TN_BENCH_TIME_H
#define TN_BENCH_TIME_H

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

#endif
