/* A downstream program on the installed library alone: load a checkpoint
 * written by `tn-word-lm train` (tn_lm_load reads the model from its lm.*
 * metadata; the words are its "vocab" key, '\n'-joined, <unk> id 0 and
 * <eos> id 1) and generate N words one at a time through tn_lm_step (the
 * state advances in place; no tape of ours), drawn with tn_sample
 * (temperature 1, all ids) from an rng seeded with S. The text is printed
 * as `tn-word-lm sample --checkpoint PATH --words N --seed S` prints it
 * with no --prime: the stream starts after a line end (<eos>), words are
 * joined by a space, <eos> ends a line, and a newline ends the text; so
 * tests/downstream/run.sh requires the two outputs to be equal.
 *
 *   lm_generate CHECKPOINT N S
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tensor/tensor.h>

enum { EOS = 1 };

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: lm_generate CHECKPOINT N SEED\n");
        return 2;
    }
    long n = strtol(argv[2], NULL, 10);
    unsigned long long seed = strtoull(argv[3], NULL, 10);
    tn_lm m;
    tn_meta meta;
    tn_meta_init(&meta);
    if (tn_lm_load(argv[1], &m, NULL, &meta) != TN_OK) {
        fprintf(stderr, "lm_generate: %s\n", tn_last_error());
        tn_meta_free(&meta);
        return 1;
    }
    /* the words: vocab split at its newlines, in place */
    const char *joined = tn_meta_get(&meta, "vocab");
    char *vocab = joined ? malloc(strlen(joined) + 1) : NULL;
    if (vocab)
        strcpy(vocab, joined);
    char **words = malloc(sizeof *words * (size_t)m.o.vocab);
    int64_t nw = 0;
    for (char *p = vocab; p && words && nw < m.o.vocab; nw++) {
        words[nw] = p;
        p = strchr(p, '\n');
        if (p)
            *p++ = '\0';
    }
    tn_lm_state *st = tn_lm_state_new(&m, 1);
    tn_tensor *logits = tn_tensor_new(TN_F32, 1, (int64_t[]){m.o.vocab});
    int rc = 0;
    if (nw != m.o.vocab || !st || !logits) {
        fprintf(stderr, "lm_generate: %s: %s\n", argv[1],
                nw != m.o.vocab ? "no vocab of lm.vocab words" : tn_last_error());
        rc = 1;
    }
    tn_sample_opts so = tn_sample_defaults();
    tn_rng r;
    tn_rng_seed(&r, seed);
    int32_t cur = EOS, next;
    int line_start = 1;
    for (long i = 0; rc == 0 && i < n; i++, cur = next) {
        if (tn_lm_step(&m, st, &cur, tn_tensor_data_f32(logits)) != TN_OK ||
            tn_sample(logits, &so, &r, &next) != TN_OK) {
            fprintf(stderr, "lm_generate: %s\n", tn_last_error());
            rc = 1;
        } else if (next == EOS) {
            printf("\n");
            line_start = 1;
        } else {
            printf("%s%s", line_start ? "" : " ", words[next]);
            line_start = 0;
        }
    }
    if (rc == 0)
        printf("\n");
    tn_tensor_free(logits);
    tn_lm_state_free(st);
    free(words);
    free(vocab);
    tn_lm_free(&m);
    tn_meta_free(&meta);
    return rc;
}
