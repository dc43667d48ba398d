/* examples/common/vocab.h - the programs' two vocabularies: words (a hash
 * table of strings, ids in the order of first addition) and characters
 * (the sorted distinct code points of a text). Part of the programs'
 * helper library tn_examples; not libtensor's API. */
#ifndef TN_EXAMPLES_VOCAB_H
#define TN_EXAMPLES_VOCAB_H

#include <stddef.h>
#include <stdint.h>

/* ---- words ---- */

typedef struct ex_words {
    char **words;   /* id -> word (owned, NUL-terminated) */
    int64_t *count; /* id -> a count the caller keeps (0 when added) */
    int32_t n, cap;
    int32_t *slots; /* open addressing by FNV-1a: id + 1, 0 = empty */
    int64_t nslots; /* a power of two, at least 4 * cap */
} ex_words;

/* The id of word s[0..n), or -1. v may be zeroed (empty). */
int32_t ex_words_find(const ex_words *v, const char *s, size_t n);
/* The id of s[0..n), added (count 0) when new; -1 when out of memory (v is
 * unchanged then). */
int32_t ex_words_add(ex_words *v, const char *s, size_t n);
/* Free everything v owns; v is zeroed (empty) after. */
void ex_words_free(ex_words *v);
/* The words joined by '\n', no newline after the last, for a checkpoint's
 * metadata (malloc'd; NULL when out of memory). */
char *ex_words_join(const ex_words *v);
/* The words of s (joined by '\n' as ex_words_join writes them; one newline
 * at the end is allowed) into the zeroed v. Refused (-1, v freed) when a
 * word is empty or repeated, there are more than max, the first n_special
 * are not special[0..n_special), or out of memory; 0 otherwise. */
int ex_words_split(ex_words *v, const char *s, int32_t max, const char *const *special,
                   int n_special);

/* ---- characters ---- */

/* Sort cp[0..n) and drop repeats in place; the number left. */
int64_t ex_chars_sort(uint32_t *cp, int64_t n);
/* The index of c in the sorted distinct cp[0..n), or -1. */
int64_t ex_chars_index(const uint32_t *cp, int64_t n, uint32_t c);

#endif
