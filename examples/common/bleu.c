/* examples/common/bleu.c - corpus BLEU-4 (bleu.h). Part of the programs'
 * helper library tn_examples; not libtensor's API. */
#include "bleu.h"

#include <math.h>
#include <stdlib.h>

/* The length of the n-grams ngram_cmp compares (qsort passes no context;
 * one per thread, so threads may score at once). */
static _Thread_local int ngram_len;

/* qsort order of n-grams given as pointers to their first id: by their
 * ngram_len ids (any total order does: only runs of equal ones matter). */
static int ngram_cmp(const void *a, const void *b)
{
    const int32_t *x = *(const int32_t *const *)a, *y = *(const int32_t *const *)b;
    for (int k = 0; k < ngram_len; k++)
        if (x[k] != y[k])
            return x[k] < y[k] ? -1 : 1;
    return 0;
}

/* The clipped matches of the g-grams of hyp (nh tokens) in ref (nr): the
 * sum over distinct g-grams of min(count in hyp, count in ref). Both lists
 * of g-grams are sorted, then merged: O(n log n) in the tokens of the line
 * (comparing every pair was quadratic: 15-19 s for 100 lines of 4,096
 * tokens). hs, rs: room for nh and nr pointers. */
static int64_t clipped_matches(const int32_t *hyp, int64_t nh, const int32_t *ref, int64_t nr,
                               int g, const int32_t **hs, const int32_t **rs)
{
    int64_t mh = nh - g + 1, mr = nr - g + 1, match = 0;
    for (int64_t i = 0; i < mh; i++)
        hs[i] = hyp + i;
    for (int64_t i = 0; i < mr; i++)
        rs[i] = ref + i;
    if (mh <= 0 || mr <= 0)
        return 0;
    ngram_len = g;
    qsort(hs, (size_t)mh, sizeof *hs, ngram_cmp);
    qsort(rs, (size_t)mr, sizeof *rs, ngram_cmp);
    for (int64_t i = 0, j = 0; i < mh;) {
        int64_t e = i + 1, inref = 0;
        while (e < mh && ngram_cmp(&hs[e], &hs[i]) == 0)
            e++;
        while (j < mr && ngram_cmp(&rs[j], &hs[i]) < 0)
            j++;
        while (j < mr && ngram_cmp(&rs[j], &hs[i]) == 0)
            j++, inref++;
        match += e - i < inref ? e - i : inref;
        i = e;
    }
    return match;
}

double ex_bleu(int64_t n, const int32_t *const *hyp, const int32_t *hn, const int32_t *const *ref,
               const int32_t *rn)
{
    double match[4] = {0}, total[4] = {0};
    int64_t c = 0, r = 0, hmax = 1, rmax = 1;
    for (int64_t i = 0; i < n; i++) {
        hmax = hn[i] > hmax ? hn[i] : hmax;
        rmax = rn[i] > rmax ? rn[i] : rmax;
    }
    const int32_t **hs = malloc(sizeof *hs * (size_t)hmax),
                  **rs = malloc(sizeof *rs * (size_t)rmax);
    if (!hs || !rs) {
        free(hs), free(rs);
        return NAN;
    }
    for (int64_t i = 0; i < n; i++) {
        c += hn[i];
        r += rn[i];
        for (int g = 1; g <= 4; g++) {
            match[g - 1] += (double)clipped_matches(hyp[i], hn[i], ref[i], rn[i], g, hs, rs);
            total[g - 1] += hn[i] >= g ? hn[i] - g + 1 : 0;
        }
    }
    free(hs), free(rs);
    double logp = 0;
    for (int g = 0; g < 4; g++) {
        if (match[g] == 0 || total[g] == 0)
            return 0;
        logp += log(match[g] / total[g]) / 4;
    }
    double bp = c >= r ? 1 : (c ? exp(1 - (double)r / (double)c) : 0);
    return bp * exp(logp);
}
