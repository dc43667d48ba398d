/* src/nn/io.c - safetensors checkpoints (contracts in tensor/io.h); the
 * metadata map is in meta.c.
 *
 * Uses only the public API. The JSON header is parsed and built with
 * jansson; without it (no TN_HAVE_JANSSON) the metadata map still works and
 * the file functions fail with TN_ERR_IO "built without jansson". */
#define _GNU_SOURCE /* O_TMPFILE (Linux), guarded by #ifdef where used */
#include "tensor/io.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef TN_HAVE_JANSSON
#include <jansson.h>
#endif

void tn_ckpt_entries_free(tn_ckpt_entry *entries, int n)
{
    if (!entries)
        return;
    for (int i = 0; i < n; i++)
        tn_free(entries[i].name);
    tn_free(entries);
}

#ifdef TN_HAVE_JANSSON

/* ---- jansson through the library's allocator ----------------------------- */

/* jansson allocates through tn_alloc (json_set_alloc_funcs, installed once),
 * so allocator hooks and injected failures reach it. jansson does not
 * report every failed allocation (2.14's json_dumps drops object keys and
 * carries on), so a failure inside it is remembered here and the whole
 * jansson call counts as out of memory. json_begin() before each call. */
static _Thread_local bool json_oom;

static void *json_alloc(size_t n)
{
    void *p = tn_alloc(n);
    if (!p)
        json_oom = true;
    return p;
}

static pthread_once_t json_once = PTHREAD_ONCE_INIT;
static void json_setup(void) { json_set_alloc_funcs(json_alloc, tn_free); }

static void json_begin(void)
{
    pthread_once(&json_once, json_setup);
    json_oom = false;
}

/* Record "fn: path: out of memory (what)" and return TN_ERR_MEMORY. */
static tn_status oom(const char *fn, const char *path, const char *what)
{
    return tn_set_error(TN_ERR_MEMORY, "%s: %s: out of memory %s", fn, path, what);
}

/* ---- byte order, shapes, parameter lists ---------------------------------- */

#define HEADER_MAX 100000000ull /* same limit as the reference implementation */

static bool host_little_endian(void)
{
    uint16_t x = 1;
    unsigned char c;
    memcpy(&c, &x, 1);
    return c == 1;
}

static uint64_t get_le64(const unsigned char *b)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | b[i];
    return v;
}

static void put_le(unsigned char *b, uint64_t v, int nbytes)
{
    for (int i = 0; i < nbytes; i++, v >>= 8)
        b[i] = (unsigned char)(v & 0xff);
}

/* ---- the dtypes of a file ---------------------------------------------------- */

/* A tensor's dtype as stored in a file: the library's F32 and F64, and the
 * half-precision F16 and BF16, which are only read (every value of theirs
 * is a float, converted exactly by f16_to_f32_bits / bf16_to_f32_bits). */
typedef enum file_dtype { FD_F32, FD_F64, FD_F16, FD_BF16, FD_COUNT } file_dtype;

static const struct {
    const char *name; /* as in the header's "dtype" */
    unsigned size;    /* bytes per element */
    tn_dtype lib;     /* the narrowest library dtype holding every value exactly */
} file_dtypes[FD_COUNT] = {
    [FD_F32] = {"F32", 4, TN_F32},
    [FD_F64] = {"F64", 8, TN_F64},
    [FD_F16] = {"F16", 2, TN_F32},
    [FD_BF16] = {"BF16", 2, TN_F32},
};

/* IEEE 754 binary16 bits h (1 sign, 5 exponent bits biased by 15, 10
 * fraction bits) -> the binary32 bits of the same value. Exact: every
 * binary16 value is a float. Signed zeros keep their sign; subnormals
 * (exponent 0: fraction x 2^-24) become normal floats; +-inf stays +-inf; a
 * NaN keeps its sign and its 10-bit payload as the top fraction bits, so a
 * quiet NaN stays quiet and a signalling one signalling (bits are moved,
 * nothing is computed). */
static uint32_t f16_to_f32_bits(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t bexp = (uint32_t)(h >> 10) & 0x1fu, frac = h & 0x3ffu;
    if (bexp == 0x1f) /* inf or NaN */
        return sign | 0x7f800000u | frac << 13;
    if (bexp != 0) /* normal: rebias 15 -> 127 */
        return sign | (bexp + 127 - 15) << 23 | frac << 13;
    if (frac == 0) /* +-0 */
        return sign;
    /* subnormal frac x 2^-24 = (frac / 2^10) x 2^-14: shift the leading 1
     * up to the implicit bit (bit 10), one binade down per shift */
    uint32_t e = 127 - 14;
    while (!(frac & 0x400u)) {
        frac <<= 1;
        e--;
    }
    return sign | e << 23 | (frac & 0x3ffu) << 13;
}

/* bfloat16 bits b (the top half of a binary32: 1 sign, 8 exponent bits, 7
 * fraction bits) -> the binary32 bits of the same value. Exact, and every
 * case (signed zeros, subnormals, +-inf, NaN with its payload, quiet or
 * signalling) is the float whose low 16 bits are zero. */
static uint32_t bf16_to_f32_bits(uint16_t b) { return (uint32_t)b << 16; }

/* Element i of the little-endian buffer b of dtype fd, one of the 2- and
 * 4-byte ones (F16, BF16, F32), as the bits of the float of its value. */
static uint32_t get_f32_bits(const unsigned char *b, file_dtype fd, int64_t i)
{
    if (fd == FD_F16 || fd == FD_BF16) {
        const unsigned char *p = b + 2 * i;
        uint16_t u = (uint16_t)(p[0] | p[1] << 8);
        return fd == FD_F16 ? f16_to_f32_bits(u) : bf16_to_f32_bits(u);
    }
    const unsigned char *p = b + 4 * i;
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Element i of the little-endian buffer b of dtype fd, as double. */
static double get_elem(const unsigned char *b, file_dtype fd, int64_t i)
{
    if (fd != FD_F64) {
        uint32_t u = get_f32_bits(b, fd, i);
        float f;
        memcpy(&f, &u, 4);
        return f;
    }
    uint64_t u = get_le64(b + 8 * i);
    double d;
    memcpy(&d, &u, 8);
    return d;
}

static char *shape_str(int ndim, const int64_t *shape, char *buf, size_t n)
{
    size_t k = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < ndim && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, "%s%" PRId64, i ? ", " : "", shape[i]);
    if (k < n)
        snprintf(buf + k, n - k, "]");
    return buf;
}

static const char *st_dtype(tn_dtype dt) { return dt == TN_F32 ? "F32" : "F64"; }

/* Every parameter of the sets, one array, sorted by name. */
typedef struct pref {
    const char *name;
    tn_tensor *t;
    int order; /* position in the sets; tn_load marks a matched one by -1 - order */
    bool tie;  /* the second name of a parameter (tn_params_tie) */
} pref;

static int pref_by_name(const void *a, const void *b)
{
    return strcmp(((const pref *)a)->name, ((const pref *)b)->name);
}

/* The parameters of the sets (with their ties when with_ties) sorted by
 * name into a new array *out of *n; names must be unique. */
static tn_status flatten(const char *fn, const char *path, tn_params *const *sets, int nsets,
                         bool with_ties, pref **out, int *n)
{
    if (nsets < 0 || (nsets > 0 && !sets))
        return tn_set_error(TN_ERR_ARG, "%s: %s: bad parameter sets (nsets %d)", fn, path, nsets);
    int total = 0;
    for (int s = 0; s < nsets; s++) {
        if (!sets[s])
            return tn_set_error(TN_ERR_ARG, "%s: %s: parameter set %d is NULL", fn, path, s);
        total += sets[s]->n + (with_ties ? sets[s]->nties : 0);
    }
    pref *p = tn_alloc((size_t)(total ? total : 1) * sizeof *p);
    if (!p)
        return oom(fn, path, "listing the parameters");
    int k = 0;
    for (int s = 0; s < nsets; s++) {
        for (int i = 0; i < sets[s]->n; i++, k++)
            p[k] = (pref){sets[s]->items[i].name, sets[s]->items[i].t, k, false};
        for (int i = 0; with_ties && i < sets[s]->nties; i++, k++)
            p[k] = (pref){sets[s]->ties[i].name, sets[s]->ties[i].t, k, true};
    }
    qsort(p, (size_t)total, sizeof *p, pref_by_name);
    for (int i = 0; i < total; i++) {
        if (!p[i].t || (i > 0 && strcmp(p[i].name, p[i - 1].name) == 0)) {
            tn_status st = tn_set_error(TN_ERR_ARG, "%s: %s: parameter '%s' %s", fn, path,
                                        p[i].name, p[i].t ? "appears twice" : "is NULL");
            tn_free(p);
            return st;
        }
    }
    *out = p;
    *n = total;
    return TN_OK;
}

/* ---- reading and validating a file's header ------------------------------- */

typedef struct entry {
    const char *name; /* key in the parsed header (lives as long as root) */
    file_dtype fd;
    int ndim;
    int64_t shape[TN_MAX_DIMS];
    uint64_t begin, end;
} entry;

typedef struct header {
    FILE *f;      /* positioned at the data buffer */
    json_t *root; /* the parsed header */
    json_t *meta; /* "__metadata__" object or NULL (borrowed from root) */
    entry *e;     /* tensors sorted by data offset */
    int n;
    uint64_t data_size;
} header;

static void header_free(header *h)
{
    if (h->f)
        fclose(h->f);
    json_decref(h->root);
    tn_free(h->e);
    memset(h, 0, sizeof *h);
}

static int entry_by_offset(const void *a, const void *b)
{
    const entry *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

#define FAIL(st, ...)                                            \
    do {                                                         \
        char msg_[400];                                          \
        snprintf(msg_, sizeof msg_, __VA_ARGS__);                \
        return tn_set_error((st), "%s: %s: %s", fn, path, msg_); \
    } while (0)

static tn_status parse_entry(const char *fn, const char *path, const char *name, json_t *v,
                             uint64_t data_size, entry *e)
{
    json_t *dt = json_object_get(v, "dtype"), *sh = json_object_get(v, "shape");
    json_t *off = json_object_get(v, "data_offsets");
    if (!json_is_object(v) || json_object_size(v) != 3 || !dt || !sh || !off)
        FAIL(TN_ERR_FORMAT, "tensor '%s' must have exactly \"dtype\", \"shape\", \"data_offsets\"",
             name);
    e->name = name;
    if (!json_is_string(dt))
        FAIL(TN_ERR_FORMAT, "tensor '%s': dtype is not a string", name);
    const char *d = json_string_value(dt);
    e->fd = FD_COUNT;
    for (int k = 0; k < FD_COUNT; k++)
        if (strcmp(d, file_dtypes[k].name) == 0)
            e->fd = (file_dtype)k;
    if (e->fd == FD_COUNT)
        FAIL(TN_ERR_DTYPE,
             "tensor '%s' has dtype \"%s\"; only F32, F64, F16 and BF16 are supported", name, d);
    if (!json_is_array(sh) || json_array_size(sh) > TN_MAX_DIMS)
        FAIL(TN_ERR_FORMAT, "tensor '%s': shape must be an array of at most %d sizes", name,
             TN_MAX_DIMS);
    e->ndim = (int)json_array_size(sh);
    uint64_t nbytes = file_dtypes[e->fd].size;
    for (int i = 0; i < TN_MAX_DIMS; i++) {
        json_t *s = json_array_get(sh, (size_t)i);
        if (i >= e->ndim) {
            e->shape[i] = 1;
            continue;
        }
        if (!json_is_integer(s) || json_integer_value(s) < 0)
            FAIL(TN_ERR_FORMAT, "tensor '%s': shape entry %d is not a size >= 0", name, i);
        e->shape[i] = json_integer_value(s);
        if (__builtin_mul_overflow(nbytes, (uint64_t)e->shape[i], &nbytes))
            FAIL(TN_ERR_FORMAT, "tensor '%s': shape too large", name);
    }
    json_t *b = json_array_get(off, 0), *en = json_array_get(off, 1);
    if (!json_is_array(off) || json_array_size(off) != 2 || !json_is_integer(b) ||
        !json_is_integer(en) || json_integer_value(b) < 0 ||
        json_integer_value(en) < json_integer_value(b))
        FAIL(TN_ERR_FORMAT, "tensor '%s': data_offsets must be [begin, end] with 0 <= begin <= end",
             name);
    e->begin = (uint64_t)json_integer_value(b);
    e->end = (uint64_t)json_integer_value(en);
    if (e->end > data_size)
        FAIL(TN_ERR_FORMAT,
             "tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64 "] beyond the data buffer (%" PRIu64
             " bytes): file truncated or corrupt",
             name, e->begin, e->end, data_size);
    if (e->end - e->begin != nbytes) {
        char s[96];
        FAIL(TN_ERR_FORMAT,
             "tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64 "] hold %" PRIu64
             " bytes but shape %s of %s needs %" PRIu64,
             name, e->begin, e->end, e->end - e->begin, shape_str(e->ndim, e->shape, s, sizeof s),
             d, nbytes);
    }
    return TN_OK;
}

/* Body of header_read: fills h as it goes (the caller frees it on error). */
static tn_status header_parse(const char *fn, const char *path, header *h)
{
    h->f = fopen(path, "rb");
    if (!h->f)
        FAIL(TN_ERR_IO, "cannot open: %s", strerror(errno));
    struct stat sb;
    if (fstat(fileno(h->f), &sb) != 0)
        FAIL(TN_ERR_IO, "cannot stat: %s", strerror(errno));
    if (!S_ISREG(sb.st_mode))
        FAIL(TN_ERR_IO, "not a regular file");
    uint64_t size = (uint64_t)sb.st_size;
    unsigned char b8[8];
    if (size < 8)
        FAIL(TN_ERR_FORMAT, "truncated file: %" PRIu64 " bytes, less than the 8-byte header length",
             size);
    if (fread(b8, 1, 8, h->f) != 8)
        FAIL(TN_ERR_IO, "read error: %s", strerror(errno));
    uint64_t hlen = get_le64(b8);
    if (hlen > size - 8)
        FAIL(TN_ERR_FORMAT,
             "header length %" PRIu64 " is larger than the rest of the file (%" PRIu64
             " bytes): truncated or not a safetensors file",
             hlen, size - 8);
    if (hlen > HEADER_MAX)
        FAIL(TN_ERR_FORMAT, "header length %" PRIu64 " exceeds the limit of %llu bytes", hlen,
             HEADER_MAX);
    char *text = tn_alloc(hlen ? (size_t)hlen : 1);
    if (!text)
        return oom(fn, path, "reading the header");
    if (fread(text, 1, (size_t)hlen, h->f) != hlen) {
        tn_free(text);
        FAIL(TN_ERR_IO, "read error in the header: %s", strerror(errno));
    }
    json_error_t jerr;
    json_begin();
    h->root = json_loadb(text, (size_t)hlen, JSON_REJECT_DUPLICATES, &jerr);
    tn_free(text);
    if (json_oom || (!h->root && json_error_code(&jerr) == json_error_out_of_memory))
        return oom(fn, path, "parsing the header");
    if (!h->root)
        FAIL(TN_ERR_FORMAT, "header is not valid JSON: %s (byte %d of %" PRIu64 ")", jerr.text,
             jerr.position, hlen);
    if (!json_is_object(h->root))
        FAIL(TN_ERR_FORMAT, "header is not a JSON object");
    h->data_size = size - 8 - hlen;

    size_t cap = json_object_size(h->root);
    h->e = tn_alloc((cap ? cap : 1) * sizeof *h->e);
    if (!h->e)
        return oom(fn, path, "listing the header's tensors");
    const char *key;
    json_t *v;
    json_object_foreach(h->root, key, v)
    {
        if (strcmp(key, "__metadata__") == 0) {
            const char *mk;
            json_t *mv;
            if (!json_is_object(v))
                FAIL(TN_ERR_FORMAT, "\"__metadata__\" is not a JSON object");
            json_object_foreach(v, mk, mv)
            {
                if (!json_is_string(mv))
                    FAIL(TN_ERR_FORMAT, "metadata value of '%s' is not a string", mk);
            }
            h->meta = v;
            continue;
        }
        tn_status st = parse_entry(fn, path, key, v, h->data_size, &h->e[h->n]);
        if (st != TN_OK)
            return st;
        h->n++;
    }

    /* The tensors must tile the data buffer exactly: no overlap, no gap. */
    qsort(h->e, (size_t)h->n, sizeof *h->e, entry_by_offset);
    uint64_t pos = 0;
    for (int i = 0; i < h->n; i++) {
        const entry *e = &h->e[i];
        if (e->begin < pos)
            FAIL(TN_ERR_FORMAT,
                 "data of tensors '%s' and '%s' overlap ([%" PRIu64 ", %" PRIu64 "] and [%" PRIu64
                 ", %" PRIu64 "])",
                 h->e[i - 1].name, e->name, h->e[i - 1].begin, h->e[i - 1].end, e->begin, e->end);
        if (e->begin > pos)
            FAIL(TN_ERR_FORMAT, "gap of %" PRIu64 " unused bytes in the data buffer before '%s'",
                 e->begin - pos, e->name);
        pos = e->end;
    }
    if (pos != h->data_size)
        FAIL(TN_ERR_FORMAT,
             "data buffer has %" PRIu64 " bytes but the tensors use %" PRIu64
             " (trailing bytes: corrupt file)",
             h->data_size, pos);
    return TN_OK;
}

/* Open path, read and validate the whole header and the layout of the data
 * buffer (sizes only). On success h owns the open file, positioned at the
 * data buffer; on failure h is empty. */
static tn_status header_read(const char *fn, const char *path, header *h)
{
    memset(h, 0, sizeof *h);
    if (!path)
        return tn_set_error(TN_ERR_ARG, "%s: path is NULL", fn);
    tn_status st = header_parse(fn, path, h);
    if (st != TN_OK)
        header_free(h);
    return st;
}

/* The header's metadata as a new map in *out (empty when there is none). */
static tn_status meta_from_header(const char *fn, const char *path, const header *h, tn_meta *out)
{
    tn_meta_init(out);
    const char *k;
    json_t *v;
    json_object_foreach(h->meta, k, v)
    {
        if (tn_meta_set(out, k, json_string_value(v)) != TN_OK) {
            tn_meta_free(out);
            return oom(fn, path, "copying the metadata");
        }
    }
    return TN_OK;
}

tn_status tn_load_meta(const char *path, tn_meta *meta_out)
{
    if (!meta_out)
        return tn_set_error(TN_ERR_ARG, "tn_load_meta: meta_out is NULL");
    header h;
    tn_meta m;
    tn_status st = header_read("tn_load_meta", path, &h);
    if (st == TN_OK)
        st = meta_from_header("tn_load_meta", path, &h, &m);
    header_free(&h);
    if (st == TN_OK) {
        tn_meta_free(meta_out);
        *meta_out = m;
    }
    return st;
}

tn_status tn_load_list(const char *path, tn_ckpt_entry **entries, int *n)
{
    if (!entries || !n)
        return tn_set_error(TN_ERR_ARG, "tn_load_list: NULL output");
    header h;
    tn_status st = header_read("tn_load_list", path, &h);
    if (st != TN_OK)
        return st;
    tn_ckpt_entry *out = NULL;
    if (h.n) {
        out = tn_alloc((size_t)h.n * sizeof *out);
        for (int i = 0; out && i < h.n; i++) {
            out[i].name = tn_strdup(h.e[i].name);
            out[i].dtype = file_dtypes[h.e[i].fd].lib;
            out[i].file_dtype = file_dtypes[h.e[i].fd].name;
            out[i].ndim = h.e[i].ndim;
            memcpy(out[i].shape, h.e[i].shape, sizeof out[i].shape);
            if (!out[i].name) {
                tn_ckpt_entries_free(out, i);
                out = NULL;
            }
        }
        if (!out)
            st = oom("tn_load_list", path, "listing the tensors");
    }
    if (st == TN_OK) {
        *entries = out;
        *n = h.n;
    }
    header_free(&h);
    return st;
}

/* Copy the little-endian data src (dtype fd, row-major) into t. An F16 or
 * BF16 value becomes the float of the same value (bit for bit into an F32
 * parameter), then goes where the F32 file's float would: so half-precision
 * files follow the F32 files' policy in every case (non-finite values
 * included). */
static void decode_into(tn_tensor *t, const unsigned char *src, file_dtype fd)
{
    int64_t n = tn_numel(t);
    if (!tn_is_contiguous(t)) {
        for (int64_t i = 0; i < n; i++)
            tn_tensor_set(t, i, get_elem(src, fd, i));
    } else if (file_dtypes[fd].lib == t->dtype && file_dtypes[fd].size == tn_dtype_size(t->dtype) &&
               host_little_endian()) {
        memcpy(t->data, src, (size_t)n * file_dtypes[fd].size);
    } else if (t->dtype == TN_F32 && fd != FD_F64) {
        float *d = t->data;
        for (int64_t i = 0; i < n; i++) {
            uint32_t u = get_f32_bits(src, fd, i);
            memcpy(d + i, &u, 4);
        }
    } else if (t->dtype == TN_F32) {
        float *d = t->data;
        for (int64_t i = 0; i < n; i++)
            d[i] = (float)get_elem(src, fd, i);
    } else {
        double *d = t->data;
        for (int64_t i = 0; i < n; i++)
            d[i] = get_elem(src, fd, i);
    }
}

/* Match the file's tensors to the parameters (sorted by name) one to one;
 * match[i] receives the parameter of entry i. */
static tn_status match_params(const char *fn, const char *path, const header *h, pref *p, int np,
                              tn_tensor **match)
{
    for (int i = 0; i < h->n; i++) {
        const entry *e = &h->e[i];
        pref key = {.name = e->name};
        pref *q = bsearch(&key, p, (size_t)np, sizeof *p, pref_by_name);
        if (!q)
            FAIL(TN_ERR_FORMAT, "unexpected tensor '%s' (no parameter of that name)", e->name);
        bool same = q->t->ndim == e->ndim;
        for (int d = 0; same && d < e->ndim; d++)
            same = q->t->shape[d] == e->shape[d];
        if (!same) {
            char a[96], b[96];
            FAIL(TN_ERR_FORMAT, "tensor '%s' has shape %s in the file but the parameter is %s",
                 e->name, shape_str(e->ndim, e->shape, a, sizeof a),
                 shape_str(q->t->ndim, q->t->shape, b, sizeof b));
        }
        if (q->t->dtype != TN_F32 && q->t->dtype != TN_F64)
            FAIL(TN_ERR_DTYPE, "parameter '%s' has dtype %s; only float32/float64 can be loaded",
                 q->name, tn_dtype_name(q->t->dtype));
        match[i] = q->t;
        q->order = -1 - q->order; /* mark as used (names are unique in the file) */
    }
    /* A tie's entry fills its parameter only when the file lacks the
     * parameter's own entry; every parameter needs one of the two. */
    int nparams = 0, missing = 0;
    const char *first_missing = NULL;
    for (int i = 0; i < np; i++) {
        if (p[i].tie)
            continue;
        nparams++;
        bool found = p[i].order < 0;
        for (int j = 0; j < np; j++) {
            if (!p[j].tie || p[j].t != p[i].t || p[j].order >= 0)
                continue;
            for (int e = 0; e < h->n; e++)
                if (found && strcmp(h->e[e].name, p[j].name) == 0)
                    match[e] = NULL;
            found = true;
        }
        if (!found && !missing++)
            first_missing = p[i].name;
    }
    if (missing)
        FAIL(TN_ERR_FORMAT, "missing tensor '%s' (%d of %d parameters not in the file)",
             first_missing, missing, nparams);
    return TN_OK;
}

tn_status tn_load(const char *path, tn_params *const *sets, int nsets, tn_meta *meta_out)
{
    const char *fn = "tn_load";
    header h;
    pref *p = NULL;
    int np = 0;
    tn_tensor **match = NULL;
    unsigned char *data = NULL;
    tn_meta m = {0};
    tn_status st = header_read(fn, path, &h);
    if (st == TN_OK)
        st = flatten(fn, path, sets, nsets, true, &p, &np);
    if (st == TN_OK && !(match = tn_alloc((size_t)(h.n ? h.n : 1) * sizeof *match)))
        st = oom(fn, path, "matching the tensors");
    if (st == TN_OK)
        st = match_params(fn, path, &h, p, np, match);
    if (st == TN_OK && meta_out)
        st = meta_from_header(fn, path, &h, &m);
    if (st == TN_OK && h.data_size && !(data = tn_alloc((size_t)h.data_size)))
        st = oom(fn, path, "reading the data buffer");
    if (st == TN_OK && h.data_size && fread(data, 1, (size_t)h.data_size, h.f) != h.data_size)
        st = tn_set_error(TN_ERR_IO, "%s: %s: read error in the data buffer: %s", fn, path,
                          ferror(h.f) ? strerror(errno) : "file shrank while reading");
    /* Everything is validated and in memory: nothing below can fail. */
    if (st == TN_OK) {
        for (int i = 0; i < h.n; i++)
            if (match[i]) /* NULL: a tie's entry beside its parameter's own */
                decode_into(match[i], data + h.e[i].begin, h.e[i].fd);
        if (meta_out) {
            tn_meta_free(meta_out);
            *meta_out = m;
        }
    } else {
        tn_meta_free(&m);
    }
    tn_free(data);
    tn_free(match);
    tn_free(p);
    header_free(&h);
    return st;
}

/* ---- writing ---------------------------------------------------------------- */

static int write_all(int fd, const void *buf, size_t n)
{
    const char *b = buf;
    while (n) {
        ssize_t k = write(fd, b, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            if (k == 0)
                errno = EIO;
            return -1;
        }
        b += k;
        n -= (size_t)k;
    }
    return 0;
}

/* Write t's values row-major, little-endian, in its own dtype. */
static int write_tensor(int fd, const tn_tensor *t)
{
    int64_t n = tn_numel(t);
    size_t es = tn_dtype_size(t->dtype);
    if (tn_is_contiguous(t) && host_little_endian())
        return write_all(fd, t->data, (size_t)n * es);
    unsigned char buf[8192];
    int64_t per = (int64_t)(sizeof buf / es);
    for (int64_t i0 = 0; i0 < n; i0 += per) {
        int64_t m = n - i0 < per ? n - i0 : per;
        for (int64_t i = 0; i < m; i++) {
            double v = tn_tensor_get(t, i0 + i);
            if (es == 4) {
                float f = (float)v;
                uint32_t u;
                memcpy(&u, &f, 4);
                put_le(buf + 4 * i, u, 4);
            } else {
                uint64_t u;
                memcpy(&u, &v, 8);
                put_le(buf + 8 * i, u, 8);
            }
        }
        if (write_all(fd, buf, (size_t)m * es))
            return -1;
    }
    return 0;
}

/* Data order: 8-byte elements first, then 4-byte ones (every tensor stays
 * aligned to its element size), each group in the order of the sets. */
static int pref_by_write_order(const void *a, const void *b)
{
    const pref *x = a, *y = b;
    size_t sx = tn_dtype_size(x->t->dtype), sy = tn_dtype_size(y->t->dtype);
    if (sx != sy)
        return sx > sy ? -1 : 1;
    return (x->order > y->order) - (x->order < y->order);
}

/* The JSON header (compact, unpadded) for the parameters p in write order,
 * in *out (free with tn_free). It is read back and compared with what was
 * built before anything touches the destination: a header that jansson
 * serialised wrongly (e.g. a key dropped under memory pressure) never
 * reaches the file. */
static tn_status header_build(const char *path, const pref *p, int np, const tn_meta *meta,
                              char **out)
{
    const char *fn = "tn_save";
    json_begin();
    json_t *root = json_object(), *back = NULL;
    tn_status st = root ? TN_OK : TN_ERR_MEMORY;
    if (st == TN_OK && meta && meta->n) {
        json_t *md = json_object();
        if (json_object_set_new(root, "__metadata__", md))
            st = TN_ERR_MEMORY;
        for (int i = 0; st == TN_OK && i < meta->n; i++) {
            json_t *s = json_string(meta->values[i]);
            if (!s)
                st = json_oom ? TN_ERR_MEMORY
                              : tn_set_error(TN_ERR_ARG,
                                             "%s: %s: metadata value of '%s' is not valid UTF-8",
                                             fn, path, meta->keys[i]);
            else if (json_object_set_new(md, meta->keys[i], s))
                st = json_oom
                         ? TN_ERR_MEMORY
                         : tn_set_error(TN_ERR_ARG, "%s: %s: metadata key '%s' is not valid UTF-8",
                                        fn, path, meta->keys[i]);
        }
    }
    uint64_t off = 0;
    for (int i = 0; st == TN_OK && i < np; i++) {
        const tn_tensor *t = p[i].t;
        uint64_t nb = (uint64_t)tn_numel(t) * tn_dtype_size(t->dtype);
        json_t *e = json_object(), *shape = json_array();
        int bad = 0;
        for (int d = 0; d < t->ndim; d++)
            bad |= json_array_append_new(shape, json_integer(t->shape[d]));
        /* the *_new calls take ownership of their value even when they fail */
        bad |= json_object_set_new(e, "dtype", json_string(st_dtype(t->dtype)));
        bad |= json_object_set_new(e, "shape", shape);
        bad |= json_object_set_new(e, "data_offsets",
                                   json_pack("[II]", (json_int_t)off, (json_int_t)(off + nb)));
        if (bad) {
            json_decref(e);
            st = TN_ERR_MEMORY;
        } else if (json_object_set_new(root, p[i].name, e)) {
            st = json_oom
                     ? TN_ERR_MEMORY
                     : tn_set_error(TN_ERR_ARG, "%s: %s: parameter name '%s' is not valid UTF-8",
                                    fn, path, p[i].name);
        }
        off += nb;
    }
    if (st == TN_OK && !(*out = json_dumps(root, JSON_COMPACT)))
        st = TN_ERR_MEMORY;
    if (st == TN_OK) { /* the self-check: parse what will be written */
        json_error_t jerr;
        back = json_loads(*out, JSON_REJECT_DUPLICATES, &jerr);
        if (json_oom)
            st = TN_ERR_MEMORY;
        else if (!back || !json_equal(root, back))
            st = tn_set_error(TN_ERR_IO,
                              "%s: %s: the serialised header does not read back as built "
                              "(jansson: %s); nothing was written",
                              fn, path, back ? "different content" : jerr.text);
    }
    if (st == TN_OK && json_oom) /* a failure jansson did not report */
        st = TN_ERR_MEMORY;
    json_decref(back);
    json_decref(root);
    if (st != TN_OK && *out) {
        tn_free(*out);
        *out = NULL;
    }
    if (st == TN_ERR_MEMORY)
        oom(fn, path, "building the header");
    return st;
}

/* The directory holding path ("." for a bare name), from tn_alloc. */
static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    size_t n = !slash ? 1 : slash == path ? 1 : (size_t)(slash - path);
    char *dir = tn_alloc(n + 1);
    if (dir) {
        memcpy(dir, slash ? path : ".", n);
        dir[n] = '\0';
    }
    return dir;
}

/* fsync the directory dir holding path, so the rename is durable. */
static tn_status sync_dir(const char *path, const char *dir)
{
    tn_status st = TN_OK;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || (fsync(fd) != 0 && errno != EINVAL && errno != EROFS))
        st = tn_set_error(TN_ERR_IO, "tn_save: %s: written, but syncing directory %s failed: %s",
                          path, dir, strerror(errno));
    if (fd >= 0)
        close(fd);
    return st;
}

/* Remove "<base>.tmp.<pid>.<n>" files of path in dir whose process is gone
 * (a save killed mid-write leaves one). Files of live processes, this one
 * included, and anything not of exactly that form are left alone; errors
 * are ignored (this is tidying, the save does not depend on it). */
static void remove_stale_tmp(const char *path, const char *dir)
{
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    size_t blen = strlen(base);
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        const char *nm = de->d_name;
        if (strncmp(nm, base, blen) != 0 || strncmp(nm + blen, ".tmp.", 5) != 0)
            continue;
        char *end;
        errno = 0;
        long pid = strtol(nm + blen + 5, &end, 10);
        if (errno || pid <= 0 || *end != '.' || end[1] < '0' || end[1] > '9')
            continue;
        strtoul(end + 1, &end, 10);
        if (*end != '\0' || pid == (long)getpid())
            continue;
        if (kill((pid_t)pid, 0) != 0 && errno == ESRCH)
            unlinkat(dirfd(d), nm, 0);
    }
    closedir(d);
}

static atomic_uint tmp_counter;

/* Write header + tensors to fd and sync it. Returns 0, or 1 with *what
 * saying which step failed (errno set). */
static int write_contents(int fd, const char *hdr, const pref *p, int np, const char **what)
{
    size_t hlen = strlen(hdr), pad = (8 - hlen % 8) % 8;
    unsigned char b8[8];
    put_le(b8, hlen + pad, 8);
    *what = "writing";
    int bad = write_all(fd, b8, 8) || write_all(fd, hdr, hlen) || write_all(fd, "        ", pad);
    for (int i = 0; !bad && i < np; i++)
        bad = write_tensor(fd, p[i].t);
    if (!bad && fsync(fd) != 0) {
        bad = 1;
        *what = "syncing";
    }
    return bad;
}

/* Create (O_EXCL) or, with fd_unnamed >= 0, link that unnamed file to a
 * new "<path>.tmp.<pid>.<n>" name in tmp (cap bytes). The open fd, or 0
 * after a link; -1 on failure (errno set). */
static int name_tmp(const char *path, char *tmp, size_t cap, int fd_unnamed)
{
    for (int tries = 0; tries < 100; tries++) {
        snprintf(tmp, cap, "%s.tmp.%ld.%u", path, (long)getpid(),
                 atomic_fetch_add(&tmp_counter, 1u));
        int r;
        if (fd_unnamed >= 0) {
            char proc[48];
            snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd_unnamed);
            r = linkat(AT_FDCWD, proc, AT_FDCWD, tmp, AT_SYMLINK_FOLLOW);
        } else {
            r = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        }
        if (r >= 0 || errno != EEXIST)
            return r;
    }
    return -1;
}

/* Write header + tensors to a new temporary file next to path, sync it and
 * rename it over path; on failure remove it and leave path alone. Where the
 * filesystem allows (Linux O_TMPFILE) the file is unnamed while it is
 * written and gets its temporary name only once synced, just before the
 * rename: a process killed mid-write (SIGKILL) then leaves nothing behind;
 * otherwise it leaves "<path>.tmp.<pid>.<n>" until the next save of path
 * (remove_stale_tmp). */
static tn_status write_atomic(const char *path, const char *hdr, const pref *p, int np)
{
    /* everything is allocated before the destination can change */
    size_t cap = strlen(path) + 48;
    char *tmp = tn_alloc(cap), *dir = dir_of(path);
    if (!tmp || !dir) {
        tn_free(tmp);
        tn_free(dir);
        return oom("tn_save", path, "naming the temporary file");
    }
    remove_stale_tmp(path, dir);
    const char *what = "writing";
    int bad = 0, err = 0;
    bool named = false; /* tmp names the file (to unlink on failure) */
#ifdef O_TMPFILE
    int ufd = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0666);
    if (ufd >= 0) {
        snprintf(tmp, cap, "(unnamed, in %s)", dir);
        bad = write_contents(ufd, hdr, p, np, &what);
        err = errno;
        /* a link that fails (e.g. no /proc) falls back to a named file */
        named = !bad && name_tmp(path, tmp, cap, ufd) == 0;
        if (close(ufd) != 0 && !bad) {
            bad = 1;
            what = "closing";
            err = errno;
        }
    }
#endif
    if (!bad && !named) {
        int fd = name_tmp(path, tmp, cap, -1);
        if (fd < 0) {
            tn_status st =
                tn_set_error(TN_ERR_IO, "tn_save: %s: cannot create temporary file %s: %s", path,
                             tmp, strerror(errno));
            tn_free(tmp);
            tn_free(dir);
            return st;
        }
        named = true;
        bad = write_contents(fd, hdr, p, np, &what);
        err = errno;
        if (close(fd) != 0 && !bad) {
            bad = 1;
            what = "closing";
            err = errno;
        }
    }
    if (!bad && rename(tmp, path) != 0) {
        bad = 1;
        what = "renaming";
        err = errno;
    }
    tn_status st = TN_OK;
    if (bad) {
        if (named)
            unlink(tmp);
        st = tn_set_error(TN_ERR_IO, "tn_save: %s: %s temporary file %s failed: %s", path, what,
                          tmp, strerror(err));
    } else {
        st = sync_dir(path, dir);
    }
    tn_free(tmp);
    tn_free(dir);
    return st;
}

tn_status tn_save(const char *path, tn_params *const *sets, int nsets, const tn_meta *meta)
{
    const char *fn = "tn_save";
    if (!path)
        return tn_set_error(TN_ERR_ARG, "tn_save: path is NULL");
    pref *p;
    int np;
    tn_status st = flatten(fn, path, sets, nsets, false, &p, &np);
    if (st != TN_OK)
        return st;
    for (int i = 0; st == TN_OK && i < np; i++) {
        if (!p[i].name[0] || strcmp(p[i].name, "__metadata__") == 0)
            st = tn_set_error(TN_ERR_ARG, "%s: %s: parameter name '%s' is reserved or empty", fn,
                              path, p[i].name);
        else if (p[i].t->dtype != TN_F32 && p[i].t->dtype != TN_F64)
            st = tn_set_error(TN_ERR_DTYPE,
                              "%s: %s: parameter '%s' has dtype %s; only float32/float64 can be "
                              "saved",
                              fn, path, p[i].name, tn_dtype_name(p[i].t->dtype));
    }
    char *hdr = NULL;
    if (st == TN_OK) {
        qsort(p, (size_t)np, sizeof *p, pref_by_write_order);
        st = header_build(path, p, np, meta, &hdr);
    }
    if (st == TN_OK)
        st = write_atomic(path, hdr, p, np);
    tn_free(hdr); /* from json_dumps: jansson allocates with tn_alloc */
    tn_free(p);
    return st;
}

#else /* !TN_HAVE_JANSSON */

static tn_status no_jansson(const char *fn, const char *path)
{
    return tn_set_error(TN_ERR_IO,
                        "%s: %s: built without jansson: safetensors checkpoints are unavailable "
                        "(install libjansson-dev and rebuild)",
                        fn, path ? path : "(null)");
}

tn_status tn_save(const char *path, tn_params *const *sets, int nsets, const tn_meta *meta)
{
    (void)sets, (void)nsets, (void)meta;
    return no_jansson("tn_save", path);
}

tn_status tn_load(const char *path, tn_params *const *sets, int nsets, tn_meta *meta_out)
{
    (void)sets, (void)nsets, (void)meta_out;
    return no_jansson("tn_load", path);
}

tn_status tn_load_meta(const char *path, tn_meta *meta_out)
{
    (void)meta_out;
    return no_jansson("tn_load_meta", path);
}

tn_status tn_load_list(const char *path, tn_ckpt_entry **entries, int *n)
{
    (void)entries, (void)n;
    return no_jansson("tn_load_list", path);
}

#endif /* TN_HAVE_JANSSON */
