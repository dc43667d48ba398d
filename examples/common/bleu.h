/* examples/common/bleu.h - corpus BLEU, the score of translate and caption.
 * Part of the programs' helper library tn_examples; not libtensor's API. */
#ifndef TN_EXAMPLES_BLEU_H
#define TN_EXAMPLES_BLEU_H

#include <stdint.h>

/* Corpus BLEU-4 with brevity penalty (Papineni et al. 2002), one reference
 * per sentence: hyp[i] (hn[i] tokens) against ref[i] (rn[i]); tokens are
 * ids. Geometric mean of the modified n-gram precisions n = 1..4 (clipped
 * counts summed over the corpus) times min(1, exp(1 - r/c)); 0 when some
 * precision is 0. In [0, 1]; NAN when out of memory. Thread-safe. */
double ex_bleu(int64_t n, const int32_t *const *hyp, const int32_t *hn, const int32_t *const *ref,
               const int32_t *rn);

#endif
