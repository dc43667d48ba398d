/* examples/tools/lm_complete.c - the library embedded for inference only:
 * load a word language model trained by word_lm (tn_lm_load builds it from
 * the checkpoint's lm.* metadata alone; the words are its "vocab" key),
 * read lines from standard input and write each line completed: its words,
 * then up to --words more, one at a time through tn_lm_step (no tape, no
 * allocation per word), greedy or sampled, ending at the model's line end.
 *
 *   lm_complete --checkpoint PATH [--words N] [--temperature X] [--seed S]
 *
 * A line's words are looked up in the vocabulary (an unknown word reads as
 * <unk>, as word_lm's training did). With the same checkpoint, a line's
 * output is the first line `word_lm sample --prime LINE --words N
 * --temperature 0` prints (tests/test_word_lm.sh checks it).
 */
#include <tensor/tensor.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "vocab.h"

#define PROG "lm_complete"
enum { UNK = 0, EOS = 1, LINE_MAX_BYTES = 1 << 16 };

typedef struct opts {
    const char *checkpoint;
    int64_t words, threads;
    double temperature;
    int64_t seed;
} opts;

/* Feed the words of line through the state, print them, then the
 * continuation; the line ends with '\n'. Returns 0 or -1 (message
 * printed). */
static int complete(const tn_lm *m, tn_lm_state *st, const ex_words *v, char *line, const opts *o,
                    const tn_sample_opts *so, tn_rng *r, tn_tensor *logits)
{
    tn_lm_state_reset(st);
    int32_t cur = EOS; /* a line starts after a line end when empty */
    bool any = false;
    for (char *w = strtok(line, " \t\r\n"); w; w = strtok(NULL, " \t\r\n")) {
        if (any && tn_lm_step(m, st, &cur, tn_tensor_data_f32(logits)) != TN_OK)
            goto fail;
        int32_t id = ex_words_find(v, w, strlen(w));
        cur = id < 0 ? UNK : id;
        printf("%s%s", any ? " " : "", v->words[cur]);
        any = true;
    }
    for (int64_t i = 0; i < o->words; i++) {
        int32_t next;
        if (tn_lm_step(m, st, &cur, tn_tensor_data_f32(logits)) != TN_OK ||
            tn_sample(logits, so, r, &next) != TN_OK)
            goto fail;
        if (next == EOS)
            break;
        printf("%s%s", any ? " " : "", v->words[next]);
        any = true;
        cur = next;
    }
    printf("\n");
    return 0;
fail:
    fprintf(stderr, PROG ": %s: %s\n", o->checkpoint, tn_last_error());
    return -1;
}

int main(int argc, char **argv)
{
    opts o = {.words = 20, .temperature = 0, .seed = 1, .threads = 1};
    const ex_opt table[] = {
        {"--checkpoint", EX_STRING, &o.checkpoint, "PATH", "a checkpoint of word_lm train",
         .def = "required"},
        {"--words", EX_INT, &o.words, "N", "words to add to each line at most", .imin = 0,
         .imax = 100000},
        {"--temperature", EX_REAL, &o.temperature, "X",
         "sampling temperature (0: greedy, the likeliest word)", .dmin = 0, .dmax = 100},
        {"--seed", EX_INT, &o.seed, "S", "random seed of the sampling", .imin = 0,
         .imax = INT64_MAX},
        {"--threads", EX_INT, &o.threads, "N", "threads for OpenMP loops and BLIS", .imin = 1,
         .imax = 1024},
    };
    const ex_spec spec = {
        .prog = PROG,
        .summary = "complete lines of text with a word language model (inference only)",
        .opts = table,
        .n_opts = (int)(sizeof table / sizeof table[0]),
        .notes = "Reads lines from standard input and writes each completed on standard\n"
                 "output. Example:\n"
                 "  word_lm train --data data/tinyshakespeare.txt --steps 500 -c wlm.st\n"
                 "  echo 'KING HENRY' | lm_complete --checkpoint wlm.st --words 12\n",
    };
    int pr = ex_parse(&spec, argc, argv, NULL);
    if (pr != EX_OK)
        return pr == EX_DONE ? 0 : 2;
    if (!o.checkpoint) {
        fprintf(stderr, PROG ": --checkpoint PATH is required\n");
        return 2;
    }
    if (tn_set_num_threads((int)o.threads) != TN_OK) {
        fprintf(stderr, PROG ": %s\n", tn_last_error());
        return 1;
    }
    tn_lm m;
    tn_meta meta;
    tn_meta_init(&meta);
    ex_words v = {0};
    tn_lm_state *st = NULL;
    tn_tensor *logits = NULL;
    char *line = NULL;
    int rc = 1;
    static const char *const special[2] = {"<unk>", "<eos>"};
    if (tn_lm_load(o.checkpoint, &m, NULL, &meta) != TN_OK) {
        fprintf(stderr, PROG ": %s\n", tn_last_error());
        tn_meta_free(&meta);
        return 1;
    }
    if (ex_words_split(&v, tn_meta_get(&meta, "vocab"), (int32_t)m.o.vocab, special, 2) ||
        v.n != m.o.vocab) {
        fprintf(stderr, PROG ": %s: no vocabulary of %lld words (metadata \"vocab\")\n",
                o.checkpoint, (long long)m.o.vocab);
        goto done;
    }
    st = tn_lm_state_new(&m, 1);
    logits = tn_tensor_new(TN_F32, 1, (int64_t[]){m.o.vocab});
    line = malloc(LINE_MAX_BYTES);
    if (!st || !logits || !line) {
        fprintf(stderr, PROG ": out of memory\n");
        goto done;
    }
    tn_sample_opts so = tn_sample_defaults();
    so.temperature = o.temperature;
    tn_rng r;
    tn_rng_seed(&r, (uint64_t)o.seed);
    rc = 0;
    while (rc == 0 && fgets(line, LINE_MAX_BYTES, stdin))
        rc = complete(&m, st, &v, line, &o, &so, &r, logits) ? 1 : 0;
done:
    free(line);
    tn_tensor_free(logits);
    tn_lm_state_free(st);
    ex_words_free(&v);
    tn_lm_free(&m);
    tn_meta_free(&meta);
    return rc;
}
