/* src/core/tensor.c - errors, allocator hooks, heap tensors, RNG. */
#include "internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

/* ---- errors ---- */

static _Thread_local tn_status last_status = TN_OK;
static _Thread_local char last_msg[512];

const char *tn_last_error(void) { return last_msg; }
tn_status tn_last_status(void) { return last_status; }

void tn_clear_error(void)
{
    last_status = TN_OK;
    last_msg[0] = '\0';
}

tn_status tn_set_error(tn_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_msg, sizeof last_msg, fmt, ap);
    va_end(ap);
    last_status = st;
    return st;
}

const char *tn_status_name(tn_status st)
{
    switch (st) {
    case TN_OK: return "ok";
    case TN_ERR_SHAPE: return "shape error";
    case TN_ERR_DTYPE: return "dtype error";
    case TN_ERR_INDEX: return "index error";
    case TN_ERR_ARG: return "invalid argument";
    case TN_ERR_MEMORY: return "out of memory";
    case TN_ERR_IO: return "i/o error";
    case TN_ERR_FORMAT: return "format error";
    case TN_ERR_NUMERIC: return "non-finite value";
    case TN_ERR_STATE: return "invalid state";
    }
    return "unknown error";
}

/* ---- allocator hooks ---- */

static void *(*hook_alloc)(size_t) = NULL;
static void (*hook_free)(void *) = NULL;

void tn_set_allocator(void *(*alloc_fn)(size_t), void (*free_fn)(void *))
{
    hook_alloc = alloc_fn;
    hook_free = free_fn;
}

/* Every block carries its 64-byte aligned start; the raw pointer sits just
 * before it so tn_free works with any hook. */
void *tn_alloc(size_t nbytes)
{
    size_t total;
    if (__builtin_add_overflow(nbytes, 64 + sizeof(void *), &total)) {
        tn_set_error(TN_ERR_MEMORY, "tn_alloc: %zu bytes is beyond the address space", nbytes);
        return NULL;
    }
    void *raw = hook_alloc ? hook_alloc(total) : malloc(total);
    if (!raw) {
        tn_set_error(TN_ERR_MEMORY, "tn_alloc: out of memory allocating %zu bytes", nbytes);
        return NULL;
    }
    uintptr_t p = ((uintptr_t)raw + sizeof(void *) + 63) & ~(uintptr_t)63;
    ((void **)p)[-1] = raw;
    return (void *)p;
}

char *tn_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = tn_alloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

void *tn__alloc_array(size_t n, size_t size)
{
    size_t bytes;
    if (__builtin_mul_overflow(n, size, &bytes)) {
        tn_set_error(TN_ERR_MEMORY,
                     "tn_alloc: %zu elements of %zu bytes is beyond the address "
                     "space",
                     n, size);
        return NULL;
    }
    void *p = tn_alloc(bytes);
    if (p)
        memset(p, 0, bytes);
    return p;
}

void tn_free(void *p)
{
    if (!p)
        return;
    void *raw = ((void **)p)[-1];
    if (hook_free)
        hook_free(raw);
    else
        free(raw);
}

/* ---- dtype and shape helpers ---- */

size_t tn_dtype_size(tn_dtype dt) { return dt == TN_F64 ? 8 : 4; }

const char *tn_dtype_name(tn_dtype dt)
{
    switch (dt) {
    case TN_F32: return "float32";
    case TN_F64: return "float64";
    case TN_I32: return "int32";
    }
    return "?";
}

int64_t tn_numel(const tn_tensor *t)
{
    int64_t n = 1;
    for (int d = 0; d < t->ndim; d++)
        n *= t->shape[d];
    return n;
}

bool tn_is_contiguous(const tn_tensor *t)
{
    int64_t s = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        if (t->shape[d] != 1 && t->stride[d] != s)
            return false;
        s *= t->shape[d];
    }
    return true;
}

char *tn_shape_str(const tn_tensor *t, char *buf, size_t n)
{
    if (n == 0)
        return buf;
    if (!t) {
        snprintf(buf, n, "(null)");
        return buf;
    }
    size_t k = (size_t)snprintf(buf, n, "[");
    for (int d = 0; d < t->ndim && k < n; d++)
        k += (size_t)snprintf(buf + k, n - k, d ? ", %lld" : "%lld", (long long)t->shape[d]);
    if (k < n)
        snprintf(buf + k, n - k, "]");
    return buf;
}

int64_t tn__set_contiguous(tn_tensor *t, int ndim, const int64_t *shape, tn_dtype dt)
{
    if (ndim < 1 || ndim > TN_MAX_DIMS || !shape)
        return -1;
    for (int d = 0; d < TN_MAX_DIMS; d++) {
        t->shape[d] = d < ndim ? shape[d] : 1;
        if (t->shape[d] < 1)
            return -1;
    }
    int64_t n = 1, bytes;
    for (int d = TN_MAX_DIMS - 1; d >= 0; d--) {
        t->stride[d] = d < ndim ? n : 1;
        if (d < ndim && __builtin_mul_overflow(n, t->shape[d], &n))
            return -2;
    }
    if (__builtin_mul_overflow(n, (int64_t)tn_dtype_size(dt), &bytes) || bytes > TN_MAX_BYTES)
        return -2;
    t->ndim = ndim;
    return n;
}

char *tn__shape_problem(int64_t code, int ndim, const int64_t *shape, tn_dtype dt, char *buf,
                        size_t n)
{
    char s[128] = "(none)";
    if (shape && ndim >= 1 && ndim <= TN_MAX_DIMS) {
        tn_tensor tmp = {.ndim = ndim};
        memcpy(tmp.shape, shape, (size_t)ndim * sizeof *shape);
        tn_shape_str(&tmp, s, sizeof s);
    }
    if (code == -2)
        snprintf(buf, n, "shape %s of %s is too large (more than 2^60 bytes)", s,
                 tn_dtype_name(dt));
    else
        snprintf(buf, n, "invalid shape %s (ndim %d; need 1..4 dims of size >= 1)", s, ndim);
    return buf;
}

int64_t tn__offset_of(const tn_tensor *t, int64_t i)
{
    int64_t off = 0;
    for (int d = t->ndim - 1; d >= 0; d--) {
        off += (i % t->shape[d]) * t->stride[d];
        i /= t->shape[d];
    }
    return off;
}

/* ---- heap tensors ---- */

static tn_tensor *heap_new(const char *fn, tn_dtype dt, int ndim, const int64_t *shape)
{
    if (dt != TN_F32 && dt != TN_F64 && dt != TN_I32) {
        tn_set_error(TN_ERR_DTYPE, "%s: unknown dtype %d", fn, (int)dt);
        return NULL;
    }
    tn_node tmp = {0};
    int64_t n = tn__set_contiguous(&tmp.pub, ndim, shape, dt);
    if (n < 0) {
        char msg[200];
        tn_set_error(TN_ERR_SHAPE, "%s: %s", fn,
                     tn__shape_problem(n, ndim, shape, dt, msg, sizeof msg));
        return NULL;
    }
    tn_node *nd = tn_alloc(sizeof *nd);
    if (!nd)
        return NULL;
    *nd = tmp;
    nd->on_heap = true;
    tn_tensor *t = &nd->pub;
    t->dtype = dt;
    t->data = tn_alloc((size_t)n * tn_dtype_size(dt));
    if (!t->data) {
        tn_free(nd);
        char s[64];
        tn_set_error(TN_ERR_MEMORY, "%s: out of memory for a %s tensor of shape %s (%lld bytes)",
                     fn, tn_dtype_name(dt), tn_shape_str(&tmp.pub, s, sizeof s),
                     (long long)(n * (int64_t)tn_dtype_size(dt)));
        return NULL;
    }
    memset(t->data, 0, (size_t)n * tn_dtype_size(dt));
    return t;
}

tn_tensor *tn_tensor_new(tn_dtype dt, int ndim, const int64_t *shape)
{
    return heap_new("tn_tensor_new", dt, ndim, shape);
}

tn_tensor *tn_tensor_from(tn_dtype dt, int ndim, const int64_t *shape, const void *data)
{
    if (!data) {
        tn_set_error(TN_ERR_ARG, "tn_tensor_from: data is NULL");
        return NULL;
    }
    tn_tensor *t = heap_new("tn_tensor_from", dt, ndim, shape);
    if (t)
        memcpy(t->data, data, (size_t)tn_numel(t) * tn_dtype_size(dt));
    return t;
}

tn_tensor *tn_tensor_full(tn_dtype dt, int ndim, const int64_t *shape, double value)
{
    tn_tensor *t = heap_new("tn_tensor_full", dt, ndim, shape);
    if (t)
        tn_tensor_fill(t, value);
    return t;
}

void tn_tensor_free(tn_tensor *t)
{
    if (!t || !tn__node(t)->on_heap)
        return;
    tn_free(t->grad);
    tn_free(t->data);
    tn_free(t);
}

tn_status tn_tensor_set_requires_grad(tn_tensor *t, bool on)
{
    if (!t)
        return tn_set_error(TN_ERR_ARG, "tn_tensor_set_requires_grad: tensor is NULL");
    if (!tn__node(t)->on_heap)
        return tn_set_error(TN_ERR_ARG,
                            "tn_tensor_set_requires_grad: only heap tensors can be parameters");
    if (t->dtype == TN_I32)
        return tn_set_error(TN_ERR_DTYPE,
                            "tn_tensor_set_requires_grad: int32 tensors have no gradient");
    if (on && !t->grad) {
        size_t nb = (size_t)tn_numel(t) * tn_dtype_size(t->dtype);
        t->grad = tn_alloc(nb);
        if (!t->grad)
            return tn_set_error(TN_ERR_MEMORY,
                                "tn_tensor_set_requires_grad: out of memory for the gradient "
                                "(%zu bytes)",
                                nb);
        memset(t->grad, 0, nb);
    }
    t->requires_grad = on;
    return TN_OK;
}

static void fill_region(void *base, const tn_tensor *t, double v)
{
    int64_t n = tn_numel(t);
    if (v == 0.0 && tn_is_contiguous(t)) { /* all-zero bits in every dtype */
        memset(base, 0, (size_t)n * tn_dtype_size(t->dtype));
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        int64_t o = tn__offset_of(t, i);
        switch (t->dtype) {
        case TN_F32: ((float *)base)[o] = (float)v; break;
        case TN_F64: ((double *)base)[o] = v; break;
        case TN_I32: ((int32_t *)base)[o] = (int32_t)v; break;
        }
    }
}

void tn_tensor_zero_grad(tn_tensor *t)
{
    if (t && t->grad)
        fill_region(t->grad, t, 0.0);
}

static double load(const void *base, tn_dtype dt, int64_t o)
{
    switch (dt) {
    case TN_F32: return ((const float *)base)[o];
    case TN_F64: return ((const double *)base)[o];
    case TN_I32: return ((const int32_t *)base)[o];
    }
    return 0;
}

/* Whether i indexes an element of t; else the error, naming fn. */
static bool index_ok(const tn_tensor *t, int64_t i, const char *fn)
{
    if (!t) {
        tn_set_error(TN_ERR_ARG, "%s: tensor is NULL", fn);
        return false;
    }
    int64_t n = tn_numel(t);
    if (i < 0 || i >= n) {
        tn_set_error(TN_ERR_ARG, "%s: index %lld outside 0..%lld of a tensor of %lld elements", fn,
                     (long long)i, (long long)n - 1, (long long)n);
        return false;
    }
    return true;
}

double tn_tensor_get(const tn_tensor *t, int64_t i)
{
    if (!index_ok(t, i, "tn_tensor_get"))
        return NAN;
    return load(t->data, t->dtype, tn__offset_of(t, i));
}

/* TN_OK when v can be stored in an int32 tensor (an integer in its range),
 * else TN_ERR_ARG naming fn. */
static tn_status int32_value_ok(double v, const char *fn)
{
    if (v >= INT32_MIN && v <= INT32_MAX && v == (double)(int64_t)v)
        return TN_OK;
    return tn_set_error(TN_ERR_ARG, "%s: %g is not an int32 value", fn, v);
}

tn_status tn_tensor_set(tn_tensor *t, int64_t i, double v)
{
    if (!index_ok(t, i, "tn_tensor_set"))
        return tn_last_status();
    int64_t o = tn__offset_of(t, i);
    switch (t->dtype) {
    case TN_F32: ((float *)t->data)[o] = (float)v; break;
    case TN_F64: ((double *)t->data)[o] = v; break;
    case TN_I32:
        if (int32_value_ok(v, "tn_tensor_set"))
            return tn_last_status();
        ((int32_t *)t->data)[o] = (int32_t)v;
        break;
    }
    return TN_OK;
}

/* t's data when it is contiguous and of dtype dt; else the error. */
static void *data_of(tn_tensor *t, tn_dtype dt, const char *fn)
{
    if (!t) {
        tn_set_error(TN_ERR_ARG, "%s: tensor is NULL", fn);
        return NULL;
    }
    if (t->dtype != dt) {
        tn_set_error(TN_ERR_DTYPE, "%s: the tensor is %s", fn, tn_dtype_name(t->dtype));
        return NULL;
    }
    if (!tn_is_contiguous(t)) {
        tn_set_error(TN_ERR_ARG, "%s: the tensor is a strided view; make it contiguous first", fn);
        return NULL;
    }
    return t->data;
}

float *tn_tensor_data_f32(tn_tensor *t) { return data_of(t, TN_F32, "tn_tensor_data_f32"); }
double *tn_tensor_data_f64(tn_tensor *t) { return data_of(t, TN_F64, "tn_tensor_data_f64"); }
int32_t *tn_tensor_data_i32(tn_tensor *t) { return data_of(t, TN_I32, "tn_tensor_data_i32"); }

double tn_tensor_grad_get(const tn_tensor *t, int64_t i)
{
    if (!index_ok(t, i, "tn_tensor_grad_get"))
        return NAN;
    return t->grad ? load(t->grad, t->dtype, tn__offset_of(t, i)) : 0.0;
}

tn_status tn_tensor_fill(tn_tensor *t, double value)
{
    if (!t)
        return tn_set_error(TN_ERR_ARG, "tn_tensor_fill: tensor is NULL");
    if (t->dtype == TN_I32 && int32_value_ok(value, "tn_tensor_fill"))
        return tn_last_status();
    fill_region(t->data, t, value);
    return TN_OK;
}

tn_status tn_tensor_copy(tn_tensor *dst, const tn_tensor *src)
{
    if (!dst || !src)
        return tn_set_error(TN_ERR_ARG, "tn_tensor_copy: NULL tensor");
    char a[64], b[64];
    if (dst->ndim != src->ndim || memcmp(dst->shape, src->shape, sizeof dst->shape) != 0)
        return tn_set_error(TN_ERR_SHAPE, "tn_tensor_copy: shapes differ: dst %s, src %s",
                            tn_shape_str(dst, a, sizeof a), tn_shape_str(src, b, sizeof b));
    int64_t n = tn_numel(src);
    if (dst->dtype == src->dtype && tn_is_contiguous(dst) && tn_is_contiguous(src)) {
        memmove(dst->data, src->data, (size_t)n * tn_dtype_size(src->dtype));
        return TN_OK;
    }
    for (int64_t i = 0; i < n; i++)
        tn_tensor_set(dst, i, tn_tensor_get(src, i));
    return TN_OK;
}

tn_status tn_tensor_to_double(const tn_tensor *t, double *out)
{
    if (!t || !out)
        return tn_set_error(TN_ERR_ARG, "tn_tensor_to_double: %s is NULL", t ? "out" : "tensor");
    int64_t n = tn_numel(t);
    for (int64_t i = 0; i < n; i++)
        out[i] = tn_tensor_get(t, i);
    return TN_OK;
}

/* ---- random numbers: xoshiro256** seeded by splitmix64 ---- */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void tn_rng_seed(tn_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t tn_rng_next(tn_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double tn_rng_uniform(tn_rng *r) { return (double)(tn_rng_next(r) >> 11) * 0x1.0p-53; }

double tn_rng_normal(tn_rng *r)
{
    double u1 = 1.0 - tn_rng_uniform(r); /* (0, 1] so log is finite */
    double u2 = tn_rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* TN_OK when t and r are given and t holds floating-point values (random
 * values are not int32 ones), else the error naming fn. */
static tn_status random_fill_ok(const tn_tensor *t, const tn_rng *r, const char *fn)
{
    if (!t || !r)
        return tn_set_error(TN_ERR_ARG, "%s: %s is NULL", fn, t ? "rng" : "tensor");
    if (t->dtype == TN_I32)
        return tn_set_error(TN_ERR_DTYPE, "%s: the tensor is int32 (need float32 or float64)", fn);
    return TN_OK;
}

tn_status tn_tensor_uniform(tn_tensor *t, tn_rng *r, double lo, double hi)
{
    if (random_fill_ok(t, r, "tn_tensor_uniform"))
        return tn_last_status();
    int64_t n = tn_numel(t);
    for (int64_t i = 0; i < n; i++)
        tn_tensor_set(t, i, lo + (hi - lo) * tn_rng_uniform(r));
    return TN_OK;
}

tn_status tn_tensor_normal(tn_tensor *t, tn_rng *r, double mean, double std)
{
    if (random_fill_ok(t, r, "tn_tensor_normal"))
        return tn_last_status();
    int64_t n = tn_numel(t);
    for (int64_t i = 0; i < n; i++)
        tn_tensor_set(t, i, mean + std * tn_rng_normal(r));
    return TN_OK;
}
