/* A 2-layer LSTM sequence classifier: the layer example of docs/library.md.
 * (docs/library.md shows this file verbatim; a test keeps the two in step.) */
#include <stdio.h>
#include <tensor/tensor.h>

enum { B = 4, T = 10, V = 30, E = 16, H = 32, C = 5 };

int main(void)
{
    tn_rng rng;
    tn_rng_seed(&rng, 1);
    tn_params ps;
    tn_params_init(&ps);
    tn_embedding emb;
    tn_rnn lstm;
    tn_linear head;
    tn_embedding_init(&emb, &ps, "embed", V, E, 0, TN_F32, &rng); /* id 0 = padding */
    tn_rnn_init(&lstm, &ps, "rnn", TN_CELL_LSTM, E, H, 2, false, 0.1, TN_F32, &rng);
    tn_linear_init(&head, &ps, "head", H, C, true, TN_F32, &rng);
    tn_optim *opt = tn_optim_adam(&ps, NULL);

    int32_t ids[B * T], labels[B] = {0, 3, 1, 4}, lengths[B] = {10, 7, 3, 9};
    for (int i = 0; i < B * T; i++)
        ids[i] = i % T < lengths[i / T] ? 1 + (i * 7) % (V - 1) : 0;
    tn_tensor *x = tn_tensor_from(TN_I32, 2, (int64_t[]){B, T}, ids);
    tn_tensor *y = tn_tensor_from(TN_I32, 1, (int64_t[]){B}, labels);

    tn_tape *tp = tn_tape_new();
    for (int step = 0; step < 50; step++) {
        tn_tape_reset(tp);
        tn_optim_zero_grad(opt);
        tn_rnn_out out;
        tn_rnn_forward(tp, &lstm, tn_embedding_forward(tp, &emb, x), NULL, NULL, lengths, &out);
        /* h_n [L, B, H]: the last layer's state at each sequence's own end */
        tn_tensor *last = tn_reshape(tp, tn_narrow(tp, out.h_n, 0, 1, 1), 2, (int64_t[]){B, H});
        tn_tensor *loss =
            tn_cross_entropy(tp, tn_linear_forward(tp, &head, last), y, -1, TN_REDUCE_MEAN);
        if (tn_tape_error(tp) || tn_backward(tp, loss) != TN_OK) {
            fprintf(stderr, "error: %s\n", tn_last_error());
            return 1;
        }
        /* a NaN/Inf gradient norm: stop before it reaches the parameters */
        if (tn_clip_grad_norm(&ps, 1.0, NULL) != TN_OK || tn_optim_step(opt) != TN_OK) {
            fprintf(stderr, "step %d: training diverged: %s\n", step, tn_last_error());
            return 1;
        }
        if (step % 10 == 0 || step == 49)
            printf("step %2d loss %.4f\n", step, tn_tensor_get(loss, 0));
    }
    tn_tape_free(tp);
    tn_optim_free(opt);
    tn_tensor_free(x);
    tn_tensor_free(y);
    tn_params_free(&ps);
    return 0;
}
