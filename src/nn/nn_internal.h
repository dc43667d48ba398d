/* src/nn/nn_internal.h - helpers shared by the nn modules that write and
 * read their configuration in checkpoint metadata (lm.c, seq2seq.c). Not
 * installed. */
#ifndef TN_NN_INTERNAL_H
#define TN_NN_INTERNAL_H

#include "tensor/io.h"

/* TN_ERR_FORMAT "<fn>: <path>: metadata <key> "<value>": <want>", or for
 * a missing key "... <key>: missing (not a file of <saver>?)". */
tn_status tn__meta_error(const char *fn, const char *saver, const char *path, const char *key,
                         const char *value, const char *want);
/* Key `key` of meta as an integer in lo..hi into *out, else the error. */
tn_status tn__meta_int(const char *fn, const char *saver, const char *path, const tn_meta *meta,
                       const char *key, int64_t lo, int64_t hi, int64_t *out);
/* Key `key` of meta as a number in [0, 1) into *out, else the error. */
tn_status tn__meta_fraction(const char *fn, const char *saver, const char *path,
                            const tn_meta *meta, const char *key, double *out);
/* meta[key] = v with 17 significant digits (read back exactly). */
tn_status tn__meta_set_double(tn_meta *meta, const char *key, double v);
/* The entry named name of ents [n], or NULL. */
const tn_ckpt_entry *tn__ckpt_find(const tn_ckpt_entry *ents, int n, const char *name);

#endif
