/* tests/check.h - minimal test macros: count failures, print each with its
 * location, and make main return non-zero when any check failed. */
#ifndef TN_TEST_CHECK_H
#define TN_TEST_CHECK_H

#include "tensor/core.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check_failures = 0;
static int check_count = 0;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        check_count++;                                                               \
        if (!(cond)) {                                                               \
            check_failures++;                                                        \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                            \
    } while (0)

/* |got - want| <= tol, printing both on failure. */
#define CHECK_NEAR(got, want, tol)                                                                \
    do {                                                                                          \
        double g_ = (got), w_ = (want), t_ = (tol);                                               \
        check_count++;                                                                            \
        if (!(fabs(g_ - w_) <= t_)) {                                                             \
            check_failures++;                                                                     \
            fprintf(stderr, "%s:%d: %s = %.17g, want %.17g (tol %g)\n", __FILE__, __LINE__, #got, \
                    g_, w_, t_);                                                                  \
        }                                                                                         \
    } while (0)

/* The error message contains every one of the given substrings. */
#define CHECK_MSG(msg, sub)                                                             \
    do {                                                                                \
        const char *m_ = (msg);                                                         \
        check_count++;                                                                  \
        if (!m_ || !strstr(m_, (sub))) {                                                \
            check_failures++;                                                           \
            fprintf(stderr, "%s:%d: message \"%s\" lacks \"%s\"\n", __FILE__, __LINE__, \
                    m_ ? m_ : "(null)", (sub));                                         \
        }                                                                               \
    } while (0)

/* log(sum_k exp(x[k])) of x[0..n), the naive reference (max shifted). */
static inline double check_logsumexp(const double *x, int64_t n)
{
    double m = -INFINITY, z = 0;
    for (int64_t k = 0; k < n; k++)
        m = fmax(m, x[k]);
    for (int64_t k = 0; k < n; k++)
        z += exp(x[k] - m);
    return m + log(z);
}

/* t's values in row-major order as a malloc'd array of doubles (free it). */
static inline double *check_values(const tn_tensor *t)
{
    double *v = malloc(sizeof(double) * (size_t)tn_numel(t));
    tn_tensor_to_double(t, v);
    return v;
}

/* The whole file p as a malloc'd buffer (free it) of *n bytes; NULL when it
 * cannot be opened. */
static inline unsigned char *check_read_file(const char *p, size_t *n)
{
    FILE *f = fopen(p, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)len + 1);
    *n = fread(b, 1, (size_t)len, f);
    fclose(f);
    return b;
}

/* Print a summary and give main's return value. */
static inline int check_report(const char *name)
{
    printf("%s: %d checks, %d failed\n", name, check_count, check_failures);
    return check_failures ? 1 : 0;
}

#endif
