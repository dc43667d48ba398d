/* A tiny model, a loss, backward, a gradient: the README's API example.
 * (The README shows this file verbatim; a test keeps the two in step.) */
#include <stdio.h>
#include <tensor/tensor.h>

int main(void)
{
    tn_rng rng;
    tn_rng_seed(&rng, 42);
    tn_params ps; /* owns the parameters */
    tn_params_init(&ps);
    tn_linear fc;
    tn_linear_init(&fc, &ps, "fc", 3, 2, true, TN_F32, &rng); /* fc.weight [2,3], fc.bias [2] */

    float xs[4 * 3] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    int32_t ys[4] = {0, 1, 1, 0};
    tn_tensor *x = tn_tensor_from(TN_F32, 2, (int64_t[]){4, 3}, xs);
    tn_tensor *y = tn_tensor_from(TN_I32, 1, (int64_t[]){4}, ys);

    tn_tape *tp = tn_tape_new(); /* records ops; owns intermediates */
    tn_tensor *logits = tn_tanh(tp, tn_linear_forward(tp, &fc, x));
    tn_tensor *loss = tn_cross_entropy(tp, logits, y, -1, TN_REDUCE_MEAN);
    if (tn_tape_error(tp) || tn_backward(tp, loss) != TN_OK) {
        fprintf(stderr, "error: %s\n", tn_last_error());
        return 1;
    }
    printf("loss %.6f\n", tn_tensor_get(loss, 0));
    printf("d loss / d fc.weight[0][0] = %.6f\n", tn_tensor_grad_get(fc.weight, 0));

    tn_tape_free(tp);
    tn_tensor_free(x);
    tn_tensor_free(y);
    tn_params_free(&ps);
    return 0;
}
