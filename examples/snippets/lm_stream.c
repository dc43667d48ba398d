/* A language model saved with its configuration, loaded back from the file
 * alone, and run over a stream one token at a time: the example of
 * docs/library.md (shown there verbatim; a test keeps the two in step). */
#include <stdio.h>
#include <tensor/tensor.h>

enum { V = 50 };

int main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : "lm_stream.safetensors";

    /* PyTorch's word_language_model: encoder, rnn (2-layer GRU), decoder tied */
    tn_lm_opts o = tn_lm_defaults();
    o.cell = TN_CELL_GRU;
    o.vocab = V, o.embed = o.hidden = 32, o.layers = 2, o.tie = true;
    snprintf(o.embed_name, sizeof o.embed_name, "encoder");
    snprintf(o.head_name, sizeof o.head_name, "decoder");
    tn_rng rng;
    tn_rng_seed(&rng, 1);
    tn_lm trained;
    if (tn_lm_init(&trained, &o, TN_F32, &rng) != TN_OK ||
        tn_lm_save(path, &trained, NULL, NULL, 0, NULL) != TN_OK) {
        fprintf(stderr, "error: %s\n", tn_last_error());
        return 1;
    }
    tn_lm_free(&trained);

    /* another program: the model from the file's metadata alone */
    tn_lm m;
    if (tn_lm_load(path, &m, NULL, NULL) != TN_OK) {
        fprintf(stderr, "error: %s\n", tn_last_error()); /* names the file and the key */
        return 1;
    }
    tn_lm_state *st = tn_lm_state_new(&m, 1); /* one stream, h [L, 1, H] zeroed */
    float logits[V];
    int32_t stream[12] = {0}; /* greedy decoding: each token is the last one's argmax */
    for (int t = 0; t + 1 < 12; t++) {
        if (tn_lm_step(&m, st, &stream[t], logits) != TN_OK) { /* st advances in place */
            fprintf(stderr, "error: %s\n", tn_last_error());
            return 1;
        }
        for (int32_t v = 1; v < V; v++)
            if (logits[v] > logits[stream[t + 1]])
                stream[t + 1] = v;
    }
    double nll;
    if (tn_lm_eval(&m, NULL, stream, 12, &nll) != TN_OK)
        return 1;
    printf("%s: %s, %d layers; greedy stream:", path, tn_cell_name(m.o.cell), m.o.layers);
    for (int t = 0; t < 12; t++)
        printf(" %d", stream[t]);
    printf("; its mean NLL %.4f\n", nll);
    tn_lm_state_free(st);
    tn_lm_free(&m);
    remove(path);
    return 0;
}
