/* tests/test_tied.c - tied parameters (tn_params_tie, tn_linear_init_tied):
 * one tensor under two names, gradients of both uses accumulated in it,
 * seen once by optimizers and checkpoints, loadable from files that hold
 * either name or both (as a PyTorch state_dict of a tied model does).
 * Tolerances: float64 throughout; the tied gradient is compared with the
 * sum of the two untied gradients, which differ only by summation order:
 * 1e-12. Values read back from checkpoints are exact. */
#include "check.h"
#include "tensor/tensor.h"

#include <unistd.h>

enum { V = 7, E = 5, N = 6 };

/* loss = sum(linear(embedding(ids)) * c) with fixed coefficients c, so
 * every output element has its own weight in the gradient. */
static double run(const tn_embedding *emb, const tn_linear *dec)
{
    tn_tape *tp = tn_tape_new();
    int32_t idv[N] = {0, 3, 3, 6, 1, 2};
    tn_tensor *ids = tn_tape_tensor(tp, TN_I32, 1, (int64_t[]){N});
    memcpy(ids->data, idv, sizeof idv);
    tn_tensor *c = tn_tape_tensor(tp, TN_F64, 2, (int64_t[]){N, V});
    for (int i = 0; i < N * V; i++)
        ((double *)c->data)[i] = 0.1 * (i % 11) - 0.4;
    tn_tensor *y = tn_linear_forward(tp, dec, tn_embedding_forward(tp, emb, ids));
    tn_tensor *loss = tn_sum(tp, tn_mul(tp, y, c));
    double l = NAN;
    if (loss && tn_backward(tp, loss) == TN_OK)
        l = tn_tensor_get(loss, 0);
    tn_tape_free(tp);
    return l;
}

/* encoder.weight [V, E] and a decoder Linear(E, V): tied when tie. */
static void build(tn_params *ps, tn_embedding *emb, tn_linear *dec, bool tie)
{
    tn_rng r;
    tn_rng_seed(&r, 5);
    tn_params_init(ps);
    CHECK(tn_embedding_init(emb, ps, "encoder", V, E, -1, TN_F64, &r) == TN_OK);
    if (tie)
        CHECK(tn_linear_init_tied(dec, ps, "decoder", "encoder.weight", true, TN_F64, &r) == TN_OK);
    else
        CHECK(tn_linear_init(dec, ps, "decoder", E, V, true, TN_F64, &r) == TN_OK);
}

int main(void)
{
    char path[64], both[64], only_tie[64];
    snprintf(path, sizeof path, "/tmp/tn_tied_%d.st", (int)getpid());
    snprintf(both, sizeof both, "/tmp/tn_tied_both_%d.st", (int)getpid());
    snprintf(only_tie, sizeof only_tie, "/tmp/tn_tied_dec_%d.st", (int)getpid());

    /* one tensor under two names */
    tn_params ps, un;
    tn_embedding emb, emb_u;
    tn_linear dec, dec_u;
    build(&ps, &emb, &dec, true);
    CHECK(dec.weight == emb.weight && dec.in == E && dec.out == V);
    CHECK(tn_params_get(&ps, "decoder.weight") == emb.weight);
    CHECK(ps.n == 2 && tn_params_numel(&ps) == V * E + V); /* encoder.weight, decoder.bias */

    /* the tied gradient is the sum of the gradients of the two uses */
    build(&un, &emb_u, &dec_u, false);
    tn_tensor_copy(dec_u.weight, emb_u.weight);
    tn_tensor_copy(dec_u.bias, dec.bias);
    CHECK_NEAR(run(&emb, &dec), run(&emb_u, &dec_u), 1e-12);
    double worst = 0;
    for (int i = 0; i < V * E; i++) {
        double want = tn_tensor_grad_get(emb_u.weight, i) + tn_tensor_grad_get(dec_u.weight, i);
        worst = fmax(worst, fabs(tn_tensor_grad_get(emb.weight, i) - want));
    }
    CHECK(worst <= 1e-12);
    CHECK(tn_tensor_grad_get(dec_u.weight, 0) != 0); /* both uses contribute */

    /* optimizers see it once: Adam keeps 2 state tensors per parameter */
    tn_optim *o = tn_optim_adam(&ps, NULL);
    CHECK(o && tn_optim_state(o)->n == 2 * 2);
    CHECK(tn_optim_step(o) == TN_OK);
    tn_optim_free(o);

    /* saved once, under the parameter's own name; loads back exactly */
    tn_params *sets[1] = {&ps};
    CHECK(tn_save(path, sets, 1, NULL) == TN_OK);
    tn_ckpt_entry *ents = NULL;
    int ne = 0;
    CHECK(tn_load_list(path, &ents, &ne) == TN_OK && ne == 2);
    for (int i = 0; i < ne; i++)
        CHECK(strcmp(ents[i].name, "decoder.weight") != 0);
    tn_ckpt_entries_free(ents, ne);
    tn_params back;
    tn_embedding emb_b;
    tn_linear dec_b;
    build(&back, &emb_b, &dec_b, true);
    tn_tensor_fill(emb_b.weight, 0);
    tn_params *bsets[1] = {&back};
    CHECK(tn_load(path, bsets, 1, NULL) == TN_OK);
    for (int i = 0; i < V * E; i++)
        CHECK(tn_tensor_get(emb_b.weight, i) == tn_tensor_get(emb.weight, i));

    /* a file with both names (PyTorch's state_dict): the parameter's own
     * entry wins; a file with only the tie's name fills the parameter */
    tn_tensor_fill(dec_u.weight, 9.0);
    tn_params *usets[1] = {&un};
    CHECK(tn_save(both, usets, 1, NULL) == TN_OK);
    tn_tensor_fill(emb_b.weight, 0);
    CHECK(tn_load(both, bsets, 1, NULL) == TN_OK);
    CHECK(tn_tensor_get(emb_b.weight, 3) == tn_tensor_get(emb_u.weight, 3));
    tn_params dec_only;
    tn_params_init(&dec_only);
    tn_tensor *w = tn_params_new(&dec_only, "decoder", "weight", TN_F64, 2, (int64_t[]){V, E});
    tn_tensor *b = tn_params_new(&dec_only, "decoder", "bias", TN_F64, 1, (int64_t[]){V});
    tn_tensor_fill(w, 2.5);
    tn_tensor_copy(b, dec.bias);
    tn_params *dsets[1] = {&dec_only};
    CHECK(tn_save(only_tie, dsets, 1, NULL) == TN_OK);
    CHECK(tn_load(only_tie, bsets, 1, NULL) == TN_OK);
    CHECK(tn_tensor_get(emb_b.weight, 0) == 2.5 && tn_tensor_get(emb_b.weight, V * E - 1) == 2.5);
    /* the untied model cannot load a tied file: decoder.weight is missing */
    CHECK(tn_load(path, usets, 1, NULL) == TN_ERR_FORMAT);
    CHECK_MSG(tn_last_error(), "missing tensor 'decoder.weight'");

    /* errors: unknown target, name in use, bad shape for a Linear */
    CHECK(tn_params_tie(&ps, "x", "weight", "nothing.weight") == NULL);
    CHECK_MSG(tn_last_error(), "no parameter named nothing.weight");
    CHECK(tn_params_tie(&ps, "decoder", "weight", "encoder.weight") == NULL);
    CHECK_MSG(tn_last_error(), "duplicate parameter name decoder.weight");
    tn_linear bad;
    tn_rng r;
    tn_rng_seed(&r, 1);
    CHECK(tn_linear_init_tied(&bad, &ps, "head", "decoder.bias", true, TN_F64, &r) == TN_ERR_ARG);
    CHECK_MSG(tn_last_error(), "a Linear weight is 2-D");

    unlink(path), unlink(both), unlink(only_tie);
    tn_params_free(&ps), tn_params_free(&un), tn_params_free(&back), tn_params_free(&dec_only);
    printf("test_tied: %d checks, %d failed\n", check_count, check_failures);
    return check_failures != 0;
}
