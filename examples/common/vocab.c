/* examples/common/vocab.c - word and character vocabularies (vocab.h). */
#include "vocab.h"

#include <stdlib.h>
#include <string.h>

static uint64_t hash_word(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return h;
}

/* The slot of word s[0..n): where it is, or the empty slot it would take. */
static int64_t words_slot(const ex_words *v, const char *s, size_t n)
{
    int64_t i = (int64_t)(hash_word(s, n) & (uint64_t)(v->nslots - 1));
    while (v->slots[i]) {
        const char *w = v->words[v->slots[i] - 1];
        if (strlen(w) == n && memcmp(w, s, n) == 0)
            break;
        i = (i + 1) & (v->nslots - 1);
    }
    return i;
}

int32_t ex_words_find(const ex_words *v, const char *s, size_t n)
{
    if (!v->nslots)
        return -1;
    int32_t id = v->slots[words_slot(v, s, n)];
    return id ? id - 1 : -1;
}

/* Room for one more word: the arrays and the table grown together. */
static int words_grow(ex_words *v)
{
    int32_t cap = v->cap ? 2 * v->cap : 1024;
    int64_t nslots = 4 * (int64_t)cap;
    char **w = realloc(v->words, sizeof *w * (size_t)cap);
    if (w)
        v->words = w;
    int64_t *c = realloc(v->count, sizeof *c * (size_t)cap);
    if (c)
        v->count = c;
    int32_t *slots = calloc((size_t)nslots, sizeof *slots);
    if (!w || !c || !slots) {
        free(slots);
        return -1;
    }
    free(v->slots);
    v->slots = slots;
    v->nslots = nslots;
    v->cap = cap;
    for (int32_t k = 0; k < v->n; k++)
        v->slots[words_slot(v, v->words[k], strlen(v->words[k]))] = k + 1;
    return 0;
}

int32_t ex_words_add(ex_words *v, const char *s, size_t n)
{
    int32_t id = ex_words_find(v, s, n);
    if (id >= 0)
        return id;
    if (v->n == v->cap && words_grow(v))
        return -1;
    char *copy = malloc(n + 1);
    if (!copy)
        return -1;
    memcpy(copy, s, n);
    copy[n] = '\0';
    v->words[v->n] = copy;
    v->count[v->n] = 0;
    v->slots[words_slot(v, s, n)] = v->n + 1;
    return v->n++;
}

void ex_words_free(ex_words *v)
{
    for (int32_t i = 0; i < v->n; i++)
        free(v->words[i]);
    free(v->words);
    free(v->count);
    free(v->slots);
    memset(v, 0, sizeof *v);
}

char *ex_words_join(const ex_words *v)
{
    size_t len = 1;
    for (int32_t i = 0; i < v->n; i++)
        len += strlen(v->words[i]) + 1;
    char *s = malloc(len), *p = s;
    if (!s)
        return NULL;
    for (int32_t i = 0; i < v->n; i++) {
        size_t k = strlen(v->words[i]);
        memcpy(p, v->words[i], k);
        p += k;
        if (i + 1 < v->n)
            *p++ = '\n';
    }
    *p = '\0';
    return s;
}

int ex_words_split(ex_words *v, const char *s, int32_t max, const char *const *special,
                   int n_special)
{
    memset(v, 0, sizeof *v);
    for (const char *p = s ? s : ""; *p;) {
        size_t k = strcspn(p, "\n");
        if (k == 0 || v->n >= max || ex_words_find(v, p, k) >= 0 || ex_words_add(v, p, k) < 0) {
            ex_words_free(v);
            return -1;
        }
        p += k + (p[k] == '\n');
    }
    for (int i = 0; i < n_special; i++)
        if (i >= v->n || strcmp(v->words[i], special[i]) != 0) {
            ex_words_free(v);
            return -1;
        }
    return 0;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

int64_t ex_chars_sort(uint32_t *cp, int64_t n)
{
    if (n <= 0)
        return 0;
    qsort(cp, (size_t)n, sizeof *cp, cmp_u32);
    int64_t m = 1;
    for (int64_t i = 1; i < n; i++)
        if (cp[i] != cp[m - 1])
            cp[m++] = cp[i];
    return m;
}

int64_t ex_chars_index(const uint32_t *cp, int64_t n, uint32_t c)
{
    int64_t lo = 0, hi = n - 1;
    while (lo <= hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (cp[mid] == c)
            return mid;
        if (cp[mid] < c)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -1;
}
