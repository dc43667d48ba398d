/* tests/test_io.c - safetensors checkpoints: round trips, strict loading,
 * corrupt files, atomic saves, and a file written by Python
 * (tests/gen_io_fixture.py -> tests/fixtures/io_python.safetensors).
 *
 * Values are compared exactly: a checkpoint stores the bits, so a round trip
 * in the same dtype, F32 -> F64 widening and F64 -> F32 rounding (compared
 * with the C cast) have no tolerance. */
#define _GNU_SOURCE /* O_TMPFILE, to probe for it */
#include "check.h"
#include "tensor/tensor.h"

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[64];

static const char *in_dir(char *buf, const char *name)
{
    snprintf(buf, 512, "%s/%s", dir, name);
    return buf;
}

static void spit(const char *p, const void *b, size_t n)
{
    FILE *f = fopen(p, "wb");
    fwrite(b, 1, n, f);
    fclose(f);
}

/* A safetensors file with the given header text (unpadded) and the ndata
 * bytes of data (NULL: ndata bytes of value 0x3f). */
static void write_st(const char *p, const char *json, const void *data, size_t ndata)
{
    size_t n = strlen(json);
    unsigned char *b = malloc(8 + n + ndata + 1);
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)((uint64_t)n >> (8 * i));
    memcpy(b + 8, json, n);
    if (data)
        memcpy(b + 8 + n, data, ndata);
    else
        memset(b + 8 + n, 0x3f, ndata);
    spit(p, b, 8 + n + ndata);
    free(b);
}

static void write_raw(const char *p, const char *json, size_t ndata)
{
    write_st(p, json, NULL, ndata);
}

static bool same_file(const unsigned char *want, size_t n, const char *p)
{
    size_t m;
    unsigned char *got = check_read_file(p, &m);
    bool same = got && m == n && memcmp(got, want, n) == 0;
    free(got);
    return same;
}

static int count_tmp_files(void)
{
    int n = 0;
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d));)
        n += strstr(e->d_name, ".tmp.") != NULL;
    if (d)
        closedir(d);
    return n;
}

/* ---- the parameter sets used throughout ------------------------------------ */

enum { SET_A = 1, SET_B = 2, BAD_SHAPE = 4 };

/* Set A "model": embed.weight F32 [5, 3], head.bias F64 [4].
 * Set B "optimizer": state.m F32 [2, 3, 2], state.v F64 [2, 1, 3, 2],
 * state.step F64 [1]. dt >= 0 forces one dtype; seed 0 fills with 7,
 * otherwise normal values. BAD_SHAPE makes embed.weight [3, 5]. */
static void build(tn_params *a, tn_params *b, int flags, int dt, uint64_t seed)
{
    static const int64_t s53[] = {5, 3}, s35[] = {3, 5}, s4[] = {4}, s232[] = {2, 3, 2},
                         s2132[] = {2, 1, 3, 2}, s1[] = {1};
    tn_dtype f = dt >= 0 ? (tn_dtype)dt : TN_F32, d = dt >= 0 ? (tn_dtype)dt : TN_F64;
    tn_rng r;
    tn_rng_seed(&r, seed);
    tn_params_init(a);
    tn_params_init(b);
    if (flags & SET_A) {
        tn_params_new(a, "embed", "weight", f, 2, flags & BAD_SHAPE ? s35 : s53);
        tn_params_new(a, "head", "bias", d, 1, s4);
    }
    if (flags & SET_B) {
        tn_params_new(b, "state", "m", f, 3, s232);
        tn_params_new(b, "state", "v", d, 4, s2132);
        tn_params_new(b, "state", "step", d, 1, s1);
    }
    tn_params *sets[] = {a, b};
    for (int s = 0; s < 2; s++)
        for (int i = 0; i < sets[s]->n; i++) {
            if (seed)
                tn_tensor_normal(sets[s]->items[i].t, &r, 0.0, 1.0);
            else
                tn_tensor_fill(sets[s]->items[i].t, 7.0);
        }
}

static void free2(tn_params *a, tn_params *b)
{
    tn_params_free(a);
    tn_params_free(b);
}

/* Every parameter of dst equals the one of the same name in src after
 * conversion to dst's dtype (exactly). */
static bool sets_equal(tn_params *dst, tn_params *src)
{
    bool ok = dst->n == src->n;
    for (int i = 0; ok && i < dst->n; i++) {
        tn_tensor *d = dst->items[i].t, *s = tn_params_get(src, dst->items[i].name);
        ok = s && tn_numel(s) == tn_numel(d);
        for (int64_t k = 0; ok && k < tn_numel(d); k++) {
            double want = tn_tensor_get(s, k);
            if (d->dtype == TN_F32)
                want = (float)want;
            ok = tn_tensor_get(d, k) == want;
        }
    }
    return ok;
}

static bool all_seven(tn_params *ps)
{
    for (int i = 0; i < ps->n; i++)
        for (int64_t k = 0; k < tn_numel(ps->items[i].t); k++)
            if (tn_tensor_get(ps->items[i].t, k) != 7.0)
                return false;
    return true;
}

/* ---- tests -------------------------------------------------------------------- */

static void test_meta(void)
{
    tn_meta m = {0};
    CHECK(tn_meta_set(&m, "a", "1") == TN_OK);
    CHECK(tn_meta_set(&m, "b", "two") == TN_OK);
    CHECK(tn_meta_set(&m, "a", "one") == TN_OK); /* replaced in place */
    CHECK(m.n == 2 && strcmp(m.keys[0], "a") == 0 && strcmp(tn_meta_get(&m, "a"), "one") == 0);
    CHECK(tn_meta_get(&m, "zzz") == NULL);
    for (int i = 0; i < 20; i++) { /* growth */
        char k[16];
        snprintf(k, sizeof k, "k%d", i);
        CHECK(tn_meta_set_int(&m, k, -1234567890123LL * i) == TN_OK);
    }
    int64_t v = 5;
    CHECK(tn_meta_get_int(&m, "k19", &v) == TN_OK && v == -1234567890123LL * 19);
    const char *bad[] = {"", "12x", " 5", "+5", "1e3", "99999999999999999999", "-"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        tn_meta_set(&m, "bad", bad[i]);
        v = 5;
        CHECK(tn_meta_get_int(&m, "bad", &v) == TN_ERR_FORMAT && v == 5);
        CHECK_MSG(tn_last_error(), "'bad'");
    }
    CHECK(tn_meta_get_int(&m, "absent", &v) == TN_ERR_FORMAT);
    CHECK_MSG(tn_last_error(), "absent");

    tn_rng r, r2;
    tn_rng_seed(&r, 42);
    tn_rng_next(&r);
    CHECK(tn_meta_set_rng(&m, "rng", &r) == TN_OK);
    CHECK(strlen(tn_meta_get(&m, "rng")) == 67);
    CHECK(tn_meta_get_rng(&m, "rng", &r2) == TN_OK);
    CHECK(tn_rng_next(&r) == tn_rng_next(&r2) && tn_rng_next(&r) == tn_rng_next(&r2));
    tn_meta_set(&m, "rng", "0123456789abcdef 0123456789abcdef 0123456789abcdef 0123456789abcdeX");
    CHECK(tn_meta_get_rng(&m, "rng", &r2) == TN_ERR_FORMAT);
    CHECK(tn_meta_set(&m, NULL, "x") == TN_ERR_ARG);
    tn_meta_free(&m);
    CHECK(m.n == 0 && tn_meta_get(&m, "a") == NULL);
    tn_meta_free(&m);
    tn_meta_free(NULL);
}

/* UTF-8 and characters JSON must escape. */
static const char *VOCAB = "h\xc3\xa9llo w\xc3\xb6rld \xe2\x9c\x93 \xe4\xb8\xad\xe6\x96\x87 "
                           "q\"b\\s\nt\t/\x01";

static void test_round_trip(void)
{
    char p[512];
    in_dir(p, "rt.safetensors");
    tn_params a, b, a2, b2;
    build(&a, &b, SET_A | SET_B, -1, 11);
    tn_meta meta = {0}, got = {0};
    tn_meta_set(&meta, "cell", "lstm");
    tn_meta_set(&meta, "vocab", VOCAB);
    tn_meta_set_int(&meta, "step", 123456789012LL);
    CHECK(tn_save(p, (tn_params *[]){&a, &b}, 2, &meta) == TN_OK);
    CHECK(count_tmp_files() == 0);

    /* layout: length, '{', 8-byte aligned data, size = header + 4*(15+12) + 8*(4+12+1) */
    size_t n;
    unsigned char *f = check_read_file(p, &n);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | f[i];
    CHECK(f[8] == '{' && (8 + hlen) % 8 == 0);
    CHECK(n == 8 + hlen + 4 * (15 + 12) + 8 * (4 + 12 + 1));
    free(f);

    /* same dtypes: bitwise; metadata replaced (old keys gone) */
    build(&a2, &b2, SET_A | SET_B, -1, 0);
    tn_meta_set(&got, "stale", "x");
    CHECK(tn_load(p, (tn_params *[]){&a2, &b2}, 2, &got) == TN_OK);
    CHECK(sets_equal(&a2, &a) && sets_equal(&b2, &b));
    CHECK(got.n == 3 && tn_meta_get(&got, "stale") == NULL);
    CHECK(tn_meta_get(&got, "vocab") && strcmp(tn_meta_get(&got, "vocab"), VOCAB) == 0);
    int64_t step = 0;
    CHECK(tn_meta_get_int(&got, "step", &step) == TN_OK && step == 123456789012LL);
    free2(&a2, &b2);

    /* one set per call works too, and the grouping into sets is free */
    build(&a2, &b2, SET_A | SET_B, -1, 0);
    CHECK(tn_load(p, (tn_params *[]){&b2, &a2}, 2, NULL) == TN_OK);
    CHECK(sets_equal(&a2, &a) && sets_equal(&b2, &b));
    free2(&a2, &b2);

    /* dtype conversion: everything F64 (exact widening), everything F32 (rounding) */
    for (int dt = TN_F32; dt <= TN_F64; dt++) {
        build(&a2, &b2, SET_A | SET_B, dt, 0);
        CHECK(tn_load(p, (tn_params *[]){&a2, &b2}, 2, NULL) == TN_OK);
        CHECK(sets_equal(&a2, &a) && sets_equal(&b2, &b));
        free2(&a2, &b2);
    }

    /* metadata only, and the list of tensors (F64 first, in set order) */
    tn_meta_set(&got, "stale", "x");
    CHECK(tn_load_meta(p, &got) == TN_OK && got.n == 3 && !tn_meta_get(&got, "stale"));
    CHECK(strcmp(tn_meta_get(&got, "cell"), "lstm") == 0);
    tn_ckpt_entry *e = NULL;
    int ne = 0;
    CHECK(tn_load_list(p, &e, &ne) == TN_OK && ne == 5);
    const char *order[] = {"head.bias", "state.v", "state.step", "embed.weight", "state.m"};
    for (int i = 0; e && i < ne && i < 5; i++)
        CHECK(strcmp(e[i].name, order[i]) == 0 && e[i].dtype == (i < 3 ? TN_F64 : TN_F32) &&
              strcmp(e[i].file_dtype, i < 3 ? "F64" : "F32") == 0);
    CHECK(e && e[1].ndim == 4 && e[1].shape[0] == 2 && e[1].shape[1] == 1 && e[1].shape[3] == 2);
    tn_ckpt_entries_free(e, ne);

    /* no metadata, and an empty checkpoint */
    CHECK(tn_save(p, (tn_params *[]){&a}, 1, NULL) == TN_OK);
    CHECK(tn_load_meta(p, &got) == TN_OK && got.n == 0);
    CHECK(tn_save(p, NULL, 0, &meta) == TN_OK);
    CHECK(tn_load(p, NULL, 0, &got) == TN_OK && got.n == 3);
    CHECK(tn_load_list(p, &e, &ne) == TN_OK && ne == 0 && e == NULL);
    tn_meta_free(&got);
    tn_meta_free(&meta);
    free2(&a, &b);
}

/* A strided parameter (a transposed view of a heap buffer) saves and loads
 * in logical row-major order. */
static void test_strided(void)
{
    char p[512];
    in_dir(p, "strided.safetensors");
    double v[12];
    for (int i = 0; i < 12; i++)
        v[i] = i + 0.25;
    tn_tensor *t = tn_tensor_from(TN_F64, 2, (int64_t[]){3, 4}, v);
    t->shape[0] = 4, t->shape[1] = 3, t->stride[0] = 1, t->stride[1] = 4; /* t := t^T */
    CHECK(!tn_is_contiguous(t));
    tn_param item = {.name = "w", .t = t};
    tn_params ps = {.items = &item, .n = 1, .cap = 1};
    CHECK(tn_save(p, (tn_params *[]){&ps}, 1, NULL) == TN_OK);
    tn_params dst;
    tn_params_init(&dst);
    tn_tensor *d = tn_params_new(&dst, NULL, "w", TN_F32, 2, (int64_t[]){4, 3});
    CHECK(tn_load(p, (tn_params *[]){&dst}, 1, NULL) == TN_OK);
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 3; j++)
            CHECK(tn_tensor_get(d, i * 3 + j) == (float)v[j * 4 + i]);
    tn_tensor_fill(t, 0.0);
    CHECK(tn_load(p, (tn_params *[]){&ps}, 1, NULL) == TN_OK); /* into the strided one */
    for (int k = 0; k < 12; k++)
        CHECK(((double *)t->data)[k] == v[k]);
    tn_params_free(&dst);
    tn_tensor_free(t);
}

/* Load file into fresh sets (flags) filled with 7 and a meta holding
 * keep=me; the load must fail with want, name the file and sub, and leave
 * parameters and metadata untouched. tn_load_meta must agree unless the
 * file is fine and only the parameters mismatch (meta_ok). */
static void expect_fail(const char *what, const char *file, int flags, tn_status want,
                        const char *sub, bool meta_ok)
{
    int before = check_failures;
    tn_params a, b;
    build(&a, &b, flags, -1, 0);
    tn_meta m = {0};
    tn_meta_set(&m, "keep", "me");
    tn_params *sets[] = {&a, &b};
    tn_status st = tn_load(file, sets, 2, &m);
    CHECK(st == want);
    char msg[512];
    snprintf(msg, sizeof msg, "%s", tn_last_error());
    CHECK_MSG(tn_last_error(), file);
    CHECK_MSG(tn_last_error(), sub);
    CHECK(all_seven(&a) && all_seven(&b));
    CHECK(m.n == 1 && strcmp(tn_meta_get(&m, "keep"), "me") == 0);
    st = tn_load_meta(file, &m);
    CHECK(meta_ok ? st == TN_OK : st == want);
    if (!meta_ok)
        CHECK(m.n == 1 && strcmp(tn_meta_get(&m, "keep"), "me") == 0);
    tn_meta_free(&m);
    free2(&a, &b);
    if (getenv("TN_IO_VERBOSE"))
        printf("%-24.24s -> %s\n", what, msg);
    if (check_failures != before)
        fprintf(stderr, "  in case: %s (message: %s)\n", what, msg);
}

static void test_strict(void)
{
    char good[512], onlya[512], p[512];
    in_dir(good, "good.safetensors");
    in_dir(onlya, "onlya.safetensors");
    in_dir(p, "bad.safetensors");
    tn_params a, b;
    build(&a, &b, SET_A | SET_B, -1, 3);
    tn_meta meta = {0};
    tn_meta_set(&meta, "vocab", VOCAB);
    CHECK(tn_save(good, (tn_params *[]){&a, &b}, 2, &meta) == TN_OK);
    CHECK(tn_save(onlya, (tn_params *[]){&a}, 1, &meta) == TN_OK);
    tn_meta_free(&meta);

    /* the file does not match the parameters */
    expect_fail("missing", onlya, SET_A | SET_B, TN_ERR_FORMAT, "missing tensor 'state.", true);
    expect_fail("unexpected", good, SET_A, TN_ERR_FORMAT, "unexpected tensor 'state.", true);
    expect_fail("mis-shaped", good, SET_A | SET_B | BAD_SHAPE, TN_ERR_FORMAT,
                "'embed.weight' has shape [5, 3] in the file but the parameter is [3, 5]", true);
    in_dir(p, "no-such-file");
    expect_fail("cannot open", p, SET_A, TN_ERR_IO, "cannot open", false);
    in_dir(p, "bad.safetensors");

    /* duplicate names across the sets */
    tn_params a2, b2;
    build(&a2, &b2, SET_A, -1, 0);
    CHECK(tn_load(good, (tn_params *[]){&a2, &a2}, 2, NULL) == TN_ERR_ARG);
    CHECK_MSG(tn_last_error(), "'embed.weight' appears twice");
    CHECK(all_seven(&a2));
    free2(&a2, &b2);

    /* truncated at several lengths: in the length field, in the header, in
     * the data */
    size_t n;
    unsigned char *f = check_read_file(good, &n);
    size_t hlen = f[0] | (size_t)f[1] << 8;
    size_t cuts[] = {0,     3,    7, 8, 9, 8 + hlen / 2, 8 + hlen - 1, 8 + hlen, 8 + hlen + 1,
                     n - 9, n - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
        char what[64];
        snprintf(what, sizeof what, "truncated to %zu of %zu bytes", cuts[i], n);
        spit(p, f, cuts[i]);
        expect_fail(what, p, SET_A | SET_B, TN_ERR_FORMAT, "truncated", false);
    }
    /* one byte too many */
    unsigned char *g = malloc(n + 1);
    memcpy(g, f, n);
    g[n] = 0;
    spit(p, g, n + 1);
    expect_fail("trailing byte", p, SET_A | SET_B, TN_ERR_FORMAT, "trailing bytes", false);

    /* corrupt header bytes */
    struct {
        size_t at;
        unsigned char byte;
        const char *sub;
    } flips[] = {
        {8, 'x', "not valid JSON"},             /* '{' */
        {8 + hlen / 2, 0xff, "not valid JSON"}, /* invalid UTF-8 or syntax */
        {8 + hlen / 3, '"', "not valid JSON"},
        {8 + 14, 0, "not valid JSON"}, /* a NUL inside the header */
        {7, 0x40, "header length"},    /* huge header length */
        {4, 0x01, "header length"},
    };
    for (size_t i = 0; i < sizeof flips / sizeof *flips; i++) {
        char what[64];
        snprintf(what, sizeof what, "byte %zu set to 0x%02x", flips[i].at, flips[i].byte);
        memcpy(g, f, n);
        g[flips[i].at] = flips[i].byte;
        spit(p, g, n);
        expect_fail(what, p, SET_A | SET_B, TN_ERR_FORMAT, flips[i].sub, false);
    }
    /* header length one short: the data buffer seems to start one byte early */
    memcpy(g, f, n);
    for (int i = 0; i < 8; i++)
        g[i] = (unsigned char)((uint64_t)(hlen - 1) >> (8 * i));
    spit(p, g, n);
    expect_fail("header length - 1", p, SET_A | SET_B, TN_ERR_FORMAT, "", false);
    free(g);
    free(f);

    /* hand-made headers: each is checked before any name matching */
    struct {
        const char *json;
        size_t ndata;
        tn_status st;
        const char *sub;
    } hdrs[] = {
        {"not json at all", 0, TN_ERR_FORMAT, "not valid JSON"},
        {"", 0, TN_ERR_FORMAT, "not valid JSON"},
        {"[1, 2, 3]", 0, TN_ERR_FORMAT, "not a JSON object"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
         8, TN_ERR_FORMAT, "duplicate"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,12]}}", 8, TN_ERR_FORMAT,
         "beyond the data buffer"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,12]}}", 12, TN_ERR_FORMAT,
         "hold 12 bytes but shape [2] of F32 needs 8"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
         12, TN_ERR_FORMAT, "overlap"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]}}",
         20, TN_ERR_FORMAT, "gap of 4 unused bytes"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 12, TN_ERR_FORMAT,
         "trailing bytes"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, TN_ERR_FORMAT,
         "data_offsets must be"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0.0,8.0]}}", 8, TN_ERR_FORMAT,
         "data_offsets must be"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 8, TN_ERR_FORMAT,
         "data_offsets must be"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, TN_ERR_FORMAT,
         "shape entry 0"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,2,1],\"data_offsets\":[0,8]}}", 8,
         TN_ERR_FORMAT, "at most 4"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,16],\"data_offsets\":[0,8]}}", 8,
         TN_ERR_FORMAT, "shape too large"},
        {"{\"a\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8, TN_ERR_DTYPE,
         "dtype \"I64\""},
        /* half precision: 2 bytes per element, not 4; other dtypes still refused */
        {"{\"a\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, TN_ERR_FORMAT,
         "tensor 'a': data_offsets [0, 8] hold 8 bytes but shape [2] of F16 needs 4"},
        {"{\"a\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[0,4]}}", 4, TN_ERR_FORMAT,
         "tensor 'a': data_offsets [0, 4] hold 4 bytes but shape [3] of BF16 needs 6"},
        {"{\"a\":{\"dtype\":\"F8_E4M3\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2, TN_ERR_DTYPE,
         "tensor 'a' has dtype \"F8_E4M3\""},
        {"{\"a\":{\"dtype\":\"f16\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4, TN_ERR_DTYPE,
         "tensor 'a' has dtype \"f16\""},
        {"{\"a\":{\"dtype\":5,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, TN_ERR_FORMAT,
         "dtype is not a string"},
        {"{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, TN_ERR_FORMAT,
         "must have exactly"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":1}}", 4,
         TN_ERR_FORMAT, "must have exactly"},
        {"{\"a\":[1]}", 0, TN_ERR_FORMAT, "must have exactly"},
        {"{\"__metadata__\":{\"k\":1}}", 0, TN_ERR_FORMAT, "metadata value of 'k'"},
        {"{\"__metadata__\":\"v\"}", 0, TN_ERR_FORMAT, "\"__metadata__\" is not a JSON object"},
    };
    for (size_t i = 0; i < sizeof hdrs / sizeof *hdrs; i++) {
        write_raw(p, hdrs[i].json, hdrs[i].ndata);
        expect_fail(hdrs[i].json, p, SET_A, hdrs[i].st, hdrs[i].sub, false);
        tn_ckpt_entry *e = NULL;
        int ne = -1;
        CHECK(tn_load_list(p, &e, &ne) == hdrs[i].st && e == NULL && ne == -1);
    }
    /* a valid hand-made file (scalar shape [] and metadata) lists and loads */
    write_raw(p,
              "{\"__metadata__\":{\"k\":\"v\"},\"s\":{\"dtype\":\"F64\",\"shape\":[],"
              "\"data_offsets\":[0,8]}}",
              8);
    tn_ckpt_entry *e = NULL;
    int ne = 0;
    CHECK(tn_load_list(p, &e, &ne) == TN_OK && ne == 1 && e[0].ndim == 0);
    tn_ckpt_entries_free(e, ne);
    expect_fail("scalar vs [1]", p, SET_B, TN_ERR_FORMAT, "unexpected tensor 's'", true);
    free2(&a, &b);
}

static void test_atomic(void)
{
    char p[512], q[256];
    in_dir(p, "ckpt.safetensors");
    tn_params a, b;
    build(&a, &b, SET_A | SET_B, -1, 5);
    CHECK(tn_save(p, (tn_params *[]){&b}, 1, NULL) == TN_OK);
    size_t n;
    unsigned char *old = check_read_file(p, &n);

    /* failures before any writing */
    CHECK(tn_save(p, (tn_params *[]){&a, &a}, 2, NULL) == TN_ERR_ARG);
    CHECK_MSG(tn_last_error(), "appears twice");
    tn_meta m = {0};
    tn_meta_set(&m, "bad", "\xff\xfe");
    CHECK(tn_save(p, (tn_params *[]){&a}, 1, &m) == TN_ERR_ARG);
    CHECK_MSG(tn_last_error(), "not valid UTF-8");
    tn_meta_free(&m);
    tn_params r;
    tn_params_init(&r);
    tn_params_new(&r, NULL, "__metadata__", TN_F32, 1, (int64_t[]){1});
    CHECK(tn_save(p, (tn_params *[]){&r}, 1, NULL) == TN_ERR_ARG);
    CHECK_MSG(tn_last_error(), "reserved");
    tn_params_free(&r);
    tn_params_new(&r, NULL, "bad\xc3", TN_F32, 1, (int64_t[]){1});
    CHECK(tn_save(p, (tn_params *[]){&r}, 1, NULL) == TN_ERR_ARG);
    CHECK_MSG(tn_last_error(), "not valid UTF-8");
    tn_params_free(&r);
    CHECK(same_file(old, n, p));

    /* no such directory */
    CHECK(tn_save("/nonexistent-dir-tn/x.safetensors", (tn_params *[]){&a}, 1, NULL) == TN_ERR_IO);
    CHECK_MSG(tn_last_error(), "/nonexistent-dir-tn/x.safetensors");
    CHECK_MSG(tn_last_error(), "cannot create temporary file");

    /* the destination is a directory: the rename fails after a full write */
    in_dir(q, "adir");
    mkdir(q, 0755);
    CHECK(tn_save(q, (tn_params *[]){&a}, 1, NULL) == TN_ERR_IO);
    CHECK_MSG(tn_last_error(), "renaming");
    CHECK(count_tmp_files() == 0);
    rmdir(q);

    /* disk full in the middle of the data: a 4 KiB file-size limit (works as
     * root too), with SIGXFSZ ignored so write() reports EFBIG */
    tn_params big;
    tn_params_init(&big);
    tn_tensor *w = tn_params_new(&big, NULL, "big", TN_F64, 2, (int64_t[]){64, 64});
    tn_tensor_fill(w, 1.5);
    struct rlimit lim, small;
    getrlimit(RLIMIT_FSIZE, &lim);
    small = lim;
    small.rlim_cur = 4096;
    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
    CHECK(setrlimit(RLIMIT_FSIZE, &small) == 0);
    tn_status st = tn_save(p, (tn_params *[]){&big}, 1, NULL);
    setrlimit(RLIMIT_FSIZE, &lim);
    signal(SIGXFSZ, old_handler);
    CHECK(st == TN_ERR_IO);
    CHECK_MSG(tn_last_error(), "writing temporary file");
    CHECK_MSG(tn_last_error(), p);
    CHECK(same_file(old, n, p));
    CHECK(count_tmp_files() == 0);

    /* a good save replaces the file */
    CHECK(tn_save(p, (tn_params *[]){&big}, 1, NULL) == TN_OK);
    tn_tensor_fill(w, 0.0);
    CHECK(tn_load(p, (tn_params *[]){&big}, 1, NULL) == TN_OK && tn_tensor_get(w, 4095) == 1.5);
    CHECK(count_tmp_files() == 0);
    free(old);
    tn_params_free(&big);
    free2(&a, &b);
}

/* Issue 10, D8: a save killed mid-write leaves "<path>.tmp.<pid>.<n>"; the
 * next save of the same path removes those of processes that no longer
 * exist, and nothing else: temporary files of live processes (the parent
 * here, and this process), other destinations' and other names stay. */
static void test_stale_tmp(void)
{
    char p[512], q[512];
    in_dir(p, "stale.safetensors");
    pid_t dead = fork();
    if (dead == 0)
        _exit(0);
    waitpid(dead, NULL, 0); /* reaped: no process has this pid now */
    const char *names[] = {"stale.safetensors.tmp.%ld.0", "stale.safetensors.tmp.%ld.17",
                           "stale.safetensors.tmp.%ld.3", "stale.safetensors.tmp.%ld.4",
                           "other.safetensors.tmp.%ld.0", "stale.safetensors.tmp.%ld.x"};
    long pids[] = {(long)dead, (long)dead, (long)getppid(), (long)getpid(), (long)dead, (long)dead};
    bool removed[] = {true, true, false, false, false, false};
    for (int i = 0; i < 6; i++) {
        char nm[128];
        snprintf(nm, sizeof nm, names[i], pids[i]);
        spit(in_dir(q, nm), "junk", 4);
    }
    tn_params a, b;
    build(&a, &b, SET_A, -1, 3);
    CHECK(tn_save(p, (tn_params *[]){&a}, 1, NULL) == TN_OK);
    for (int i = 0; i < 6; i++) {
        char nm[128];
        snprintf(nm, sizeof nm, names[i], pids[i]);
        CHECK((access(in_dir(q, nm), F_OK) != 0) == removed[i]);
        unlink(q);
    }
    unlink(p);
    free2(&a, &b);
}

/* Issue 10, D8 end to end: a child process saves a 1 MiB checkpoint over
 * and over and is killed with SIGKILL at a varying moment, 12 times. After
 * each kill the checkpoint is whole (it loads: one of the child's saves or
 * the parent's first), and the parent's next save removes the temporary
 * file the child left, if any. Before, about half the kills left one
 * behind for good. */
static void test_killed_saves(void)
{
    char p[512];
    in_dir(p, "killed.safetensors");
    tn_params big;
    tn_params_init(&big);
    tn_tensor *w = tn_params_new(&big, NULL, "w", TN_F32, 2, (int64_t[]){512, 512});
    tn_tensor_fill(w, 2.0);
    CHECK(tn_save(p, (tn_params *[]){&big}, 1, NULL) == TN_OK);
    int left = 0;
    for (int k = 0; k < 12; k++) {
        pid_t child = fork();
        if (child == 0) {
            for (;;)
                tn_save(p, (tn_params *[]){&big}, 1, NULL);
        }
        usleep(2000 + 1500 * (useconds_t)k); /* 2 .. 18.5 ms into the saves */
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
        left += count_tmp_files();
        tn_tensor_fill(w, 0.0);
        CHECK(tn_load(p, (tn_params *[]){&big}, 1, NULL) == TN_OK);
        CHECK(tn_tensor_get(w, 512 * 512 - 1) == 2.0);
        CHECK(tn_save(p, (tn_params *[]){&big}, 1, NULL) == TN_OK);
        CHECK(count_tmp_files() == 0);
    }
    printf("test_io: 12 saves killed mid-way left %d temporary files, all removed\n", left);
    unlink(p);
    tn_params_free(&big);
}

/* Issue 19: a save killed while it writes leaves no file at all. The data
 * goes to an unnamed file (O_TMPFILE) that gets its temporary name only
 * once written and synced, just before the rename. The child here is
 * stopped by the kernel in the middle of writing 1 MiB, at the same point
 * every run (a file-size limit of 64 KiB: SIGXFSZ, which like SIGKILL runs
 * no handler); before, its named temporary file stayed until the next save
 * of that path (test_killed_saves: about half of its kills). Skipped where
 * the directory's filesystem has no O_TMPFILE (the save then names its
 * file from the start). */
static void test_killed_mid_write(void)
{
    int probe = -1;
#ifdef O_TMPFILE
    probe = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
#endif
    if (probe < 0) {
        printf("test_io: no O_TMPFILE in %s: skipping the mid-write kill\n", dir);
        return;
    }
    close(probe);
    char p[512];
    in_dir(p, "mid.safetensors");
    tn_params big;
    tn_params_init(&big);
    tn_params_new(&big, NULL, "w", TN_F32, 2, (int64_t[]){512, 512});
    pid_t child = fork();
    if (child == 0) {
        struct rlimit rl = {65536, 65536};
        setrlimit(RLIMIT_FSIZE, &rl);
        tn_save(p, (tn_params *[]){&big}, 1, NULL);
        _exit(0); /* not reached: SIGXFSZ ends the write */
    }
    int status = 0;
    waitpid(child, &status, 0);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGXFSZ);
    CHECK(count_tmp_files() == 0);
    CHECK(access(p, F_OK) != 0); /* nothing was renamed into place */
    tn_params_free(&big);
}

/* The path of the fixture file name in p (512 bytes); false, saying that
 * what is skipped, when TN_FIXTURES is not set or not a directory. */
static bool fixture_path(char *p, const char *name, const char *what)
{
    const char *fx = getenv("TN_FIXTURES");
    struct stat sb;
    if (!fx || stat(fx, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        printf("test_io: TN_FIXTURES not set or missing: skipping %s\n", what);
        return false;
    }
    snprintf(p, 512, "%s/%s", fx, name);
    return true;
}

/* The file tests/gen_io_fixture.py writes with struct + json + numpy:
 * lin.weight F32 [2, 3] = arange(6) * 0.5 - 1, lin.bias F64 [3] = arange(3) / 3,
 * metadata format=pt, source=gen_io_fixture.py, vocab="héllo wörld ✓ 中文". */
static int test_python_fixture(void)
{
    char p[512];
    if (!fixture_path(p, "io_python.safetensors", "the Python fixture"))
        return 77;
    for (int dt = -1; dt <= TN_F64; dt++) { /* as written, then all F32, then all F64 */
        tn_params ps;
        tn_params_init(&ps);
        tn_tensor *w = tn_params_new(&ps, "lin", "weight", dt < 0 ? TN_F32 : (tn_dtype)dt, 2,
                                     (int64_t[]){2, 3});
        tn_tensor *bias =
            tn_params_new(&ps, "lin", "bias", dt < 0 ? TN_F64 : (tn_dtype)dt, 1, (int64_t[]){3});
        tn_meta m = {0};
        CHECK(tn_load(p, (tn_params *[]){&ps}, 1, &m) == TN_OK);
        for (int i = 0; i < 6; i++)
            CHECK(tn_tensor_get(w, i) == i * 0.5 - 1.0);
        for (int i = 0; i < 3; i++) {
            double want = i / 3.0;
            CHECK(tn_tensor_get(bias, i) == (bias->dtype == TN_F32 ? (float)want : want));
        }
        CHECK(m.n == 3 && strcmp(tn_meta_get(&m, "format"), "pt") == 0);
        CHECK(strcmp(tn_meta_get(&m, "source"), "gen_io_fixture.py") == 0);
        CHECK(strcmp(tn_meta_get(&m, "vocab"),
                     "h\xc3\xa9llo w\xc3\xb6rld \xe2\x9c\x93 \xe4\xb8\xad\xe6\x96\x87") == 0);
        tn_meta_free(&m);
        tn_params_free(&ps);
    }
    return 0;
}

/* The float32 bits of the value that the half-precision bits h define, for
 * a format of p fraction bits and ebits exponent bits (F16: 10 and 5, BF16:
 * 7 and 8), computed from the fields with ldexp, independently of the
 * library's bit shuffling: normal numbers are sign x (2^p + fraction) x
 * 2^(exponent - bias - p), subnormals sign x fraction x 2^(1 - bias - p);
 * exponent all ones is +-inf, or NaN with the sign and the payload in the
 * top fraction bits of the float (tensor/io.h: signalling NaNs stay
 * signalling, where torch sets the quiet bit of F16 ones). */
static uint32_t half_reference(uint16_t h, int p, int ebits)
{
    int bias = (1 << (ebits - 1)) - 1, e = (h >> p) & ((1 << ebits) - 1);
    uint32_t sign = (uint32_t)(h >> 15) << 31, f = h & ((1u << p) - 1);
    if (e == (1 << ebits) - 1)
        return sign | 0x7f800000u | f << (23 - p);
    double v = e ? ldexp((double)((1u << p) + f), e - bias - p) : ldexp((double)f, 1 - bias - p);
    float x = (float)(sign ? -v : v); /* exact: every such value is a float */
    uint32_t u;
    memcpy(&u, &x, 4);
    return u;
}

/* All 65536 F16 and all 65536 BF16 bit patterns, in a file written here,
 * load into F32 parameters as half_reference's floats and into F64 ones as
 * the doubles of those floats. The conversion is exact, so the comparison
 * is bit for bit (tolerance 0; -0 and NaN payloads included). */
static void test_half_exhaustive(void)
{
    enum { N = 65536 };
    char p[512];
    in_dir(p, "half_all.safetensors");
    unsigned char *data = malloc(4 * N);
    for (int i = 0; i < N; i++)
        for (int k = 0; k < 2; k++) /* little-endian, the same patterns twice */
            data[2 * i + k] = data[2 * N + 2 * i + k] = (unsigned char)(i >> 8 * k);
    write_st(p,
             "{\"h\":{\"dtype\":\"F16\",\"shape\":[256,256],\"data_offsets\":[0,131072]},"
             "\"b\":{\"dtype\":\"BF16\",\"shape\":[65536],\"data_offsets\":[131072,262144]}}",
             data, 4 * N);
    free(data);

    tn_ckpt_entry *e = NULL;
    int ne = 0;
    CHECK(tn_load_list(p, &e, &ne) == TN_OK && ne == 2);
    CHECK(e && strcmp(e[0].name, "h") == 0 && e[0].dtype == TN_F32 &&
          strcmp(e[0].file_dtype, "F16") == 0 && e[0].ndim == 2 && e[0].shape[1] == 256);
    CHECK(e && strcmp(e[1].name, "b") == 0 && e[1].dtype == TN_F32 &&
          strcmp(e[1].file_dtype, "BF16") == 0 && e[1].ndim == 1 && e[1].shape[0] == N);
    tn_ckpt_entries_free(e, ne);

    for (int dt = TN_F32; dt <= TN_F64; dt++) {
        tn_params ps;
        tn_params_init(&ps);
        tn_tensor *h = tn_params_new(&ps, NULL, "h", (tn_dtype)dt, 2, (int64_t[]){256, 256});
        tn_tensor *b = tn_params_new(&ps, NULL, "b", (tn_dtype)dt, 1, (int64_t[]){N});
        CHECK(tn_load(p, (tn_params *[]){&ps}, 1, NULL) == TN_OK);
        int bad = 0;
        for (int i = 0; i < N; i++) {
            for (int k = 0; k < 2; k++) {
                uint32_t w =
                    k ? half_reference((uint16_t)i, 7, 8) : half_reference((uint16_t)i, 10, 5);
                const unsigned char *got = (const unsigned char *)(k ? b : h)->data;
                float wf;
                memcpy(&wf, &w, 4);
                double wd = wf;
                bool same = dt == TN_F32 ? memcmp(got + 4 * (size_t)i, &w, 4) == 0
                                         : memcmp(got + 8 * (size_t)i, &wd, 8) == 0;
                if (!same && bad++ < 5)
                    fprintf(stderr, "  %s 0x%04x: %s got %.9g, want %.9g (float bits 0x%08x)\n",
                            k ? "BF16" : "F16", i, tn_dtype_name((tn_dtype)dt),
                            tn_tensor_get(k ? b : h, i), wd, (unsigned)w);
            }
        }
        CHECK(bad == 0);
        tn_params_free(&ps);
    }
    unlink(p);
}

/* Tensors a and b (same dtype and shape, contiguous) hold the same bits;
 * otherwise print the first difference. */
static bool same_bits(const tn_tensor *a, const tn_tensor *b, const char *what)
{
    size_t es = tn_dtype_size(a->dtype);
    for (int64_t i = 0; i < tn_numel(a); i++)
        if (memcmp((const char *)a->data + es * (size_t)i, (const char *)b->data + es * (size_t)i,
                   es) != 0) {
            fprintf(stderr, "  %s element %" PRId64 ": %.9g, torch %.9g\n", what, i,
                    tn_tensor_get(a, i), tn_tensor_get(b, i));
            return false;
        }
    return true;
}

/* The file tests/gen_io_half_fixture.py writes with PyTorch 1.13: "h16" F16
 * [2, 8] and "b16" BF16 [2, 8] of edge values (+-0, the smallest and
 * largest subnormals, the smallest normal, +-the largest finite, +-1/3
 * rounded, -2.5, 1, +-inf, NaN, -NaN with a payload) and beside each,
 * "h16.f32" and "b16.f32", torch's .to(torch.float32) of it as F32. Every
 * F16 and BF16 value is a float, so the conversion is exact and tn_load
 * must give torch's floats bit for bit: tolerance 0. Loaded into F64
 * parameters, both are the doubles of those floats. */
static int test_half_fixture(void)
{
    char p[512];
    if (!fixture_path(p, "io_half.safetensors", "the F16/BF16 fixture"))
        return 77;
    for (int dt = TN_F32; dt <= TN_F64; dt++) {
        tn_params ps;
        tn_params_init(&ps);
        const char *names[] = {"h16", "h16.f32", "b16", "b16.f32"};
        tn_tensor *t[4];
        for (int k = 0; k < 4; k++)
            t[k] = tn_params_new(&ps, NULL, names[k], (tn_dtype)dt, 2, (int64_t[]){2, 8});
        tn_meta m = {0};
        CHECK(tn_load(p, (tn_params *[]){&ps}, 1, &m) == TN_OK);
        CHECK(same_bits(t[0], t[1], "F16") && same_bits(t[2], t[3], "BF16"));
        /* and a few values by hand, so one mistake on both sides cannot pass */
        CHECK(tn_tensor_get(t[0], 2) == 0x1p-24 && tn_tensor_get(t[0], 5) == 65504.0);
        CHECK(tn_tensor_get(t[2], 2) == 0x1p-133 && tn_tensor_get(t[2], 4) == 0x1p-126);
        CHECK(tn_tensor_get(t[0], 1) == 0.0 && signbit(tn_tensor_get(t[0], 1)));
        CHECK(isinf(tn_tensor_get(t[2], 13)) && tn_tensor_get(t[2], 13) < 0);
        CHECK(isnan(tn_tensor_get(t[0], 14)) && isnan(tn_tensor_get(t[2], 15)));
        CHECK(tn_tensor_get(t[0], 6) == 0x1.554p-2);
        CHECK(tn_meta_get(&m, "source") &&
              strcmp(tn_meta_get(&m, "source"), "gen_io_half_fixture.py") == 0);
        tn_meta_free(&m);
        tn_params_free(&ps);
    }
    tn_ckpt_entry *e = NULL;
    int ne = 0;
    CHECK(tn_load_list(p, &e, &ne) == TN_OK && ne == 4);
    const char *order[] = {"h16.f32", "b16.f32", "h16", "b16"};
    const char *stored[] = {"F32", "F32", "F16", "BF16"};
    for (int i = 0; e && i < ne && i < 4; i++)
        CHECK(strcmp(e[i].name, order[i]) == 0 && e[i].dtype == TN_F32 &&
              strcmp(e[i].file_dtype, stored[i]) == 0);
    tn_ckpt_entries_free(e, ne);
    return 0;
}

int main(void)
{
    strcpy(dir, "/tmp/tn_test_io.XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    tn_params none = {0};
    char p[512];
    if (tn_save(in_dir(p, "probe"), (tn_params *[]){&none}, 1, NULL) != TN_OK &&
        strstr(tn_last_error(), "built without jansson")) {
        printf("test_io: %s: skipping\n", tn_last_error());
        rmdir(dir);
        return 77;
    }
    unlink(p);
    test_meta();
    test_round_trip();
    test_strided();
    test_strict();
    test_atomic();
    test_stale_tmp();
    test_killed_saves();
    test_killed_mid_write();
    test_half_exhaustive();
    int fixture = test_python_fixture();
    int half = test_half_fixture();

    /* remove the scratch directory */
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d));) {
        if (e->d_name[0] != '.')
            unlink(in_dir(p, e->d_name));
    }
    if (d)
        closedir(d);
    rmdir(dir);
    int rc = check_report("test_io");
    return rc ? rc : fixture ? fixture : half;
}
