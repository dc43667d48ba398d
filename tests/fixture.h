/* tests/fixture.h - header-only reader of the TNFX reference fixtures that
 * tests/fixture_io.py writes (PyTorch parity data). Plain C11, no library
 * dependency.
 *
 * Format (little-endian): "TNFX", u32 version (1), u32 count, then per
 * tensor: u32 name length, name bytes, u32 ndim (0..8), ndim x i64 shape,
 * numel x float64 data in row-major order. Integer tensors are stored as
 * float64. Nothing may follow the last tensor.
 *
 *     fixture fx;
 *     if (fixture_load(&fx, path) != 0) { puts(fx.error); return 1; }
 *     const fixture_tensor *x = fixture_get(&fx, "x");  // NULL if absent
 *     ... x->ndim, x->shape[], x->numel, x->data ...
 *     fixture_free(&fx);
 *
 * fixture_load never crashes on a bad file: a missing file, wrong magic or
 * version, a truncated tensor, a negative or overflowing shape, a duplicate
 * name or trailing bytes all give -1 with a message in fx.error.
 */
#ifndef TN_TEST_FIXTURE_H
#define TN_TEST_FIXTURE_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define FIXTURE_MAX_DIMS  8
#define FIXTURE_MAX_NAME  4096
#define FIXTURE_MAX_BYTES ((long)1 << 30)

typedef struct fixture_tensor {
    char *name;                      /* NUL-terminated */
    int ndim;                        /* 0 (scalar) .. FIXTURE_MAX_DIMS */
    int64_t shape[FIXTURE_MAX_DIMS]; /* unused dims are 1 */
    int64_t numel;                   /* product of shape (1 for ndim 0) */
    double *data;                    /* numel values, row-major */
} fixture_tensor;

typedef struct fixture {
    int count;
    fixture_tensor *items;
    char error[512]; /* message of the last failure, "" if none */
} fixture;

static inline void fixture__fail(fixture *fx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static inline void fixture__fail(fixture *fx, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(fx->error, sizeof fx->error, fmt, ap);
    va_end(ap);
}

static inline uint64_t fixture__le(const unsigned char *p, int nbytes)
{
    uint64_t v = 0;
    for (int i = nbytes - 1; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* Free every tensor; the struct is left empty (count 0). NULL-safe. */
static inline void fixture_free(fixture *fx)
{
    if (!fx)
        return;
    for (int i = 0; i < fx->count; i++) {
        free(fx->items[i].name);
        free(fx->items[i].data);
    }
    free(fx->items);
    fx->items = NULL;
    fx->count = 0;
}

/* Parse the n bytes at buf into fx (which is empty). 0 or -1. */
static inline int fixture__parse(fixture *fx, const unsigned char *buf, size_t n, const char *path)
{
    size_t pos = 12;
    if (n < 12 || memcmp(buf, "TNFX", 4) != 0) {
        fixture__fail(fx, "%s: not a TNFX fixture (bad magic)", path);
        return -1;
    }
    uint32_t version = (uint32_t)fixture__le(buf + 4, 4);
    uint32_t count = (uint32_t)fixture__le(buf + 8, 4);
    if (version != 1) {
        fixture__fail(fx, "%s: version %u, expected 1", path, version);
        return -1;
    }
    /* each tensor takes at least 9 bytes: a bound on count before allocating */
    if (count > (n - 12) / 9) {
        fixture__fail(fx, "%s: count %u does not fit in %zu bytes", path, count, n);
        return -1;
    }
    fx->items = (fixture_tensor *)calloc(count ? count : 1, sizeof *fx->items);
    if (!fx->items) {
        fixture__fail(fx, "%s: out of memory", path);
        return -1;
    }
    for (uint32_t k = 0; k < count; k++) {
        fixture_tensor *t = &fx->items[k];
        if (n - pos < 4)
            goto truncated;
        uint32_t len = (uint32_t)fixture__le(buf + pos, 4);
        pos += 4;
        if (len == 0 || len > FIXTURE_MAX_NAME) {
            fixture__fail(fx, "%s: tensor %u: name length %u out of range", path, k, len);
            return -1;
        }
        if (n - pos < len)
            goto truncated;
        t->name = (char *)malloc(len + 1);
        if (!t->name)
            goto oom;
        fx->count = (int)k + 1; /* from here on fixture_free releases t */
        memcpy(t->name, buf + pos, len);
        t->name[len] = '\0';
        pos += len;
        if (strlen(t->name) != len) {
            fixture__fail(fx, "%s: tensor %u: name contains NUL", path, k);
            return -1;
        }
        for (uint32_t j = 0; j < k; j++)
            if (strcmp(fx->items[j].name, t->name) == 0) {
                fixture__fail(fx, "%s: duplicate tensor name \"%s\"", path, t->name);
                return -1;
            }
        if (n - pos < 4)
            goto truncated;
        uint32_t ndim = (uint32_t)fixture__le(buf + pos, 4);
        pos += 4;
        if (ndim > FIXTURE_MAX_DIMS) {
            fixture__fail(fx, "%s: \"%s\": ndim %u > %d", path, t->name, ndim, FIXTURE_MAX_DIMS);
            return -1;
        }
        if ((n - pos) / 8 < ndim)
            goto truncated;
        t->ndim = (int)ndim;
        t->numel = 1;
        for (int d = 0; d < FIXTURE_MAX_DIMS; d++)
            t->shape[d] = 1;
        for (uint32_t d = 0; d < ndim; d++) {
            int64_t s = (int64_t)fixture__le(buf + pos, 8);
            pos += 8;
            if (s < 0) {
                fixture__fail(fx, "%s: \"%s\": negative size %lld", path, t->name, (long long)s);
                return -1;
            }
            if (s > 0 && t->numel > (int64_t)(n / 8) / s)
                goto truncated; /* also overflow */
            t->shape[d] = s;
            t->numel *= s;
        }
        if ((uint64_t)(n - pos) / 8 < (uint64_t)t->numel)
            goto truncated;
        t->data = (double *)malloc(t->numel ? (size_t)t->numel * sizeof(double) : 1);
        if (!t->data)
            goto oom;
        for (int64_t i = 0; i < t->numel; i++, pos += 8) {
            uint64_t bits = fixture__le(buf + pos, 8);
            memcpy(&t->data[i], &bits, sizeof bits);
        }
        continue;
    truncated:
        fixture__fail(fx, "%s: truncated at tensor %u (byte %zu of %zu)", path, k, pos, n);
        return -1;
    oom:
        fixture__fail(fx, "%s: out of memory", path);
        return -1;
    }
    fx->count = (int)count;
    if (pos != n) {
        fixture__fail(fx, "%s: %zu trailing bytes after %u tensors", path, n - pos, count);
        return -1;
    }
    return 0;
}

/* Load the fixture at path into fx. Returns 0, or -1 with fx->error set and
 * fx left empty (fixture_free is still safe to call). */
static inline int fixture_load(fixture *fx, const char *path)
{
    memset(fx, 0, sizeof *fx);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fixture__fail(fx, "%s: cannot open", path);
        return -1;
    }
    long size = -1;
    if (fseek(f, 0, SEEK_END) == 0)
        size = ftell(f);
    if (size < 0 || size > FIXTURE_MAX_BYTES || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        fixture__fail(fx, "%s: cannot determine size (or over %ld bytes)", path, FIXTURE_MAX_BYTES);
        return -1;
    }
    unsigned char *buf = (unsigned char *)malloc(size ? (size_t)size : 1);
    if (!buf) {
        fclose(f);
        fixture__fail(fx, "%s: out of memory", path);
        return -1;
    }
    size_t got = fread(buf, 1, (size_t)size, f);
    fclose(f);
    int rc = -1;
    if (got != (size_t)size)
        fixture__fail(fx, "%s: read %zu of %ld bytes", path, got, size);
    else
        rc = fixture__parse(fx, buf, (size_t)size, path);
    free(buf);
    if (rc != 0) {
        char keep[sizeof fx->error];
        memcpy(keep, fx->error, sizeof keep);
        fixture_free(fx);
        memcpy(fx->error, keep, sizeof keep);
    }
    return rc;
}

/* Tensor by name, or NULL. */
static inline const fixture_tensor *fixture_get(const fixture *fx, const char *name)
{
    for (int i = 0; i < fx->count; i++)
        if (strcmp(fx->items[i].name, name) == 0)
            return &fx->items[i];
    return NULL;
}

/* Data of tensor name with its shape through *ndim and *shape (either may
 * be NULL), or NULL when absent. */
static inline const double *fixture_lookup(const fixture *fx, const char *name, int *ndim,
                                           const int64_t **shape)
{
    const fixture_tensor *t = fixture_get(fx, name);
    if (!t)
        return NULL;
    if (ndim)
        *ndim = t->ndim;
    if (shape)
        *shape = t->shape;
    return t->data;
}

/* True when t has exactly the given shape. */
static inline int fixture_shape_is(const fixture_tensor *t, int ndim, const int64_t *shape)
{
    if (!t || t->ndim != ndim)
        return 0;
    for (int d = 0; d < ndim; d++)
        if (t->shape[d] != shape[d])
            return 0;
    return 1;
}

/* The fixture directory from the environment variable TN_FIXTURES when it
 * names an existing directory, else NULL (tests then skip with code 77). */
static inline const char *fixture_dir(void)
{
    const char *d = getenv("TN_FIXTURES");
    struct stat st;
    if (!d || !*d || stat(d, &st) != 0 || !S_ISDIR(st.st_mode))
        return NULL;
    return d;
}

/* Writes dir + "/" + file into buf; returns buf, or NULL if it does not fit. */
static inline char *fixture_path(char *buf, size_t n, const char *dir, const char *file)
{
    int w = snprintf(buf, n, "%s/%s", dir, file);
    return (w < 0 || (size_t)w >= n) ? NULL : buf;
}

#endif
