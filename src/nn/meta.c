/* src/nn/meta.c - the string map of checkpoint metadata (tensor/io.h). */
#include "tensor/io.h"
#include "nn_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- metadata map --------------------------------------------------------- */

void tn_meta_init(tn_meta *m)
{
    m->n = m->cap = 0;
    m->keys = m->values = NULL;
}

void tn_meta_free(tn_meta *m)
{
    if (!m)
        return;
    for (int i = 0; i < m->n; i++) {
        tn_free(m->keys[i]);
        tn_free(m->values[i]);
    }
    tn_free(m->keys);
    tn_free(m->values);
    tn_meta_init(m);
}

static int meta_find(const tn_meta *m, const char *key)
{
    for (int i = 0; i < m->n; i++)
        if (strcmp(m->keys[i], key) == 0)
            return i;
    return -1;
}

tn_status tn_meta_set(tn_meta *m, const char *key, const char *value)
{
    if (!m || !key || !value)
        return tn_set_error(TN_ERR_ARG, "tn_meta_set: NULL argument");
    int i = meta_find(m, key);
    char *v = tn_strdup(value);
    char *k = i < 0 ? tn_strdup(key) : NULL;
    if (!v || (i < 0 && !k)) {
        tn_free(v);
        tn_free(k);
        return tn_set_error(TN_ERR_MEMORY, "tn_meta_set: out of memory copying '%s'", key);
    }
    if (i >= 0) {
        tn_free(m->values[i]);
        m->values[i] = v;
        return TN_OK;
    }
    if (m->n == m->cap) {
        int cap = m->cap ? 2 * m->cap : 8;
        char **ks = tn_alloc((size_t)cap * sizeof *ks), **vs = tn_alloc((size_t)cap * sizeof *vs);
        if (!ks || !vs) {
            tn_free(ks);
            tn_free(vs);
            tn_free(v);
            tn_free(k);
            return tn_set_error(TN_ERR_MEMORY, "tn_meta_set: out of memory growing the map");
        }
        if (m->n) {
            memcpy(ks, m->keys, (size_t)m->n * sizeof *ks);
            memcpy(vs, m->values, (size_t)m->n * sizeof *vs);
        }
        tn_free(m->keys);
        tn_free(m->values);
        m->keys = ks;
        m->values = vs;
        m->cap = cap;
    }
    m->keys[m->n] = k;
    m->values[m->n] = v;
    m->n++;
    return TN_OK;
}

const char *tn_meta_get(const tn_meta *m, const char *key)
{
    int i = m && key ? meta_find(m, key) : -1;
    return i < 0 ? NULL : m->values[i];
}

tn_status tn_meta_set_int(tn_meta *m, const char *key, int64_t value)
{
    char buf[24];
    snprintf(buf, sizeof buf, "%" PRId64, value);
    return tn_meta_set(m, key, buf);
}

tn_status tn_meta_get_int(const tn_meta *m, const char *key, int64_t *out)
{
    const char *s = tn_meta_get(m, key);
    if (!s)
        return tn_set_error(TN_ERR_FORMAT, "tn_meta_get_int: no metadata key '%s'",
                            key ? key : "(null)");
    const char *d = s[0] == '-' ? s + 1 : s;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*d < '0' || *d > '9' || *end != '\0' || errno == ERANGE)
        return tn_set_error(TN_ERR_FORMAT,
                            "tn_meta_get_int: metadata '%s' = \"%s\" is not a decimal int64", key,
                            s);
    *out = v;
    return TN_OK;
}

tn_status tn_meta_set_rng(tn_meta *m, const char *key, const tn_rng *r)
{
    if (!r)
        return tn_set_error(TN_ERR_ARG, "tn_meta_set_rng: NULL generator");
    char buf[4 * 17];
    snprintf(buf, sizeof buf, "%016" PRIx64 " %016" PRIx64 " %016" PRIx64 " %016" PRIx64, r->s[0],
             r->s[1], r->s[2], r->s[3]);
    return tn_meta_set(m, key, buf);
}

tn_status tn_meta_get_rng(const tn_meta *m, const char *key, tn_rng *r)
{
    const char *s = tn_meta_get(m, key);
    uint64_t w[4] = {0};
    bool ok = s && r && strlen(s) == 4 * 17 - 1;
    for (int i = 0; ok && i < 4 * 17 - 1; i++) {
        char c = s[i];
        if (i % 17 == 16) {
            ok = c == ' ';
            continue;
        }
        int h = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        ok = h >= 0;
        w[i / 17] = w[i / 17] << 4 | (uint64_t)(h & 15);
    }
    if (!ok)
        return tn_set_error(TN_ERR_FORMAT,
                            "tn_meta_get_rng: metadata '%s' is %s, not four 16-digit hex words",
                            key ? key : "(null)", s ? "malformed" : "absent");
    memcpy(r->s, w, sizeof w);
    return TN_OK;
}

/* ---- metadata checks shared by lm.c and seq2seq.c (nn_internal.h) ---- */

tn_status tn__meta_error(const char *fn, const char *saver, const char *path, const char *key,
                         const char *value, const char *want)
{
    if (!value)
        return tn_set_error(TN_ERR_FORMAT, "%s: %s: metadata %s: missing (not a file of %s?)", fn,
                            path, key, saver);
    return tn_set_error(TN_ERR_FORMAT, "%s: %s: metadata %s \"%s\": %s", fn, path, key, value,
                        want);
}

tn_status tn__meta_int(const char *fn, const char *saver, const char *path, const tn_meta *meta,
                       const char *key, int64_t lo, int64_t hi, int64_t *out)
{
    const char *v = tn_meta_get(meta, key);
    char want[64];
    snprintf(want, sizeof want, "not an integer in %" PRId64 "..%" PRId64, lo, hi);
    if (!v || tn_meta_get_int(meta, key, out) != TN_OK || *out < lo || *out > hi)
        return tn__meta_error(fn, saver, path, key, v, want);
    return TN_OK;
}

tn_status tn__meta_fraction(const char *fn, const char *saver, const char *path,
                            const tn_meta *meta, const char *key, double *out)
{
    const char *v = tn_meta_get(meta, key);
    char *end = NULL;
    double d = v ? strtod(v, &end) : NAN;
    if (!v || end == v || *end || !(d >= 0 && d < 1))
        return tn__meta_error(fn, saver, path, key, v, "not a number in [0, 1)");
    *out = d;
    return TN_OK;
}

tn_status tn__meta_set_double(tn_meta *meta, const char *key, double v)
{
    char buf[40];
    snprintf(buf, sizeof buf, "%.17g", v);
    return tn_meta_set(meta, key, buf);
}

const tn_ckpt_entry *tn__ckpt_find(const tn_ckpt_entry *ents, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(ents[i].name, name) == 0)
            return &ents[i];
    return NULL;
}
