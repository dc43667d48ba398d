/* examples/exercises/worked_example.c - the worked example of the lecture notes
 * (a forward pass done by hand): a character-level RNN reading "hell" and
 * predicting "ello", with the notes' weights, computed by the library:
 *
 *   h_t = tanh(W_x x_t + W_h h_{t-1} + b_h),  y_t = softmax(W_y h_t + b_y)
 *
 * alphabet h, e, l, o (one-hot x_t, D_x = 4), D_h = 3, D_y = 4, h_0 = 0.
 * It prints every h_t and y_t with the notes' own figures beside them (the
 * notes work out h_1 and the first entries of W_x x_2, W_h h_1 and W_y h_1;
 * their y_1 = [0.1, 0.6, 0.2, 0.1] is an assumption, not a result), the
 * cross-entropy loss, the BPTT gradients from the tape checked against
 * central differences, and one SGD step (the loss must go down).
 *
 *   worked_example [--lr X]
 */
#include <tensor/tensor.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

enum { DX = 4, DH = 3, DY = 4, T = 4 };

static const double W_x[DH * DX] = {0.1, -0.2, 0.3, 0.4, -0.5, 0.6, 0.7, -0.8, 0.9, -1.0, 0.2, 0.3};
static const double W_h[DH * DH] = {0.5, -0.1, 0.2, 0.3, 0.4, -0.6, -0.2, 0.7, 0.1};
static const double W_y[DY * DH] = {0.2, -0.3, 0.1, -0.4, 0.5, 0.2, 0.3, 0.1, -0.5, 0.6, -0.2, 0.4};
static const double b_h[DH] = {0.1, -0.2, 0.3};
static const double b_y[DY] = {0.1, 0.2, -0.3, 0.4};
static const char ALPHABET[] = "helo";
static const int INPUT[T] = {0, 1, 2, 2};  /* h e l l */
static const int TARGET[T] = {1, 2, 2, 3}; /* e l l o */

typedef struct model {
    tn_params ps;
    tn_rnn_cell cell; /* weight_ih = W_x, weight_hh = W_h, bias_ih = b_h, bias_hh = 0 */
    tn_linear out;    /* weight = W_y, bias = b_y */
} model;

static void set(tn_tensor *t, const double *v)
{
    for (int64_t i = 0; i < tn_numel(t); i++)
        tn_tensor_set(t, i, v ? v[i] : 0.0);
}

/* The loss over the 4 steps; the h_t and y_t into h[T][DH], y[T][DY]
 * when they are not NULL. */
static tn_tensor *forward(tn_tape *tp, model *m, double (*h)[DH], double (*y)[DY])
{
    tn_tensor *state = NULL, *logits[T];
    for (int t = 0; t < T; t++) {
        tn_tensor *x = tn_tape_tensor(tp, TN_F64, 2, (int64_t[]){1, DX});
        if (!x)
            return NULL;
        ((double *)x->data)[INPUT[t]] = 1.0;
        state = tn_rnn_cell_forward(tp, &m->cell, x, state, NULL, NULL);
        logits[t] = tn_linear_forward(tp, &m->out, state);
        tn_tensor *p = tn_softmax(tp, logits[t], 1);
        if (!p)
            return NULL;
        for (int j = 0; h && j < DH; j++)
            h[t][j] = tn_tensor_get(state, j);
        for (int j = 0; y && j < DY; j++)
            y[t][j] = tn_tensor_get(p, j);
    }
    tn_tensor *targets = tn_tape_tensor(tp, TN_I32, 1, (int64_t[]){T});
    if (!targets)
        return NULL;
    memcpy(targets->data, (int32_t[]){TARGET[0], TARGET[1], TARGET[2], TARGET[3]},
           sizeof(int32_t) * T);
    tn_tensor *all = tn_concat(tp, T, logits, 0); /* [T, DY] */
    return tn_cross_entropy(tp, all, targets, -1, TN_REDUCE_MEAN);
}

static tn_tensor *f_loss(tn_tape *tp, tn_tensor *const *in, void *ctx)
{
    (void)in; /* the inputs are the model's own parameters */
    return forward(tp, ctx, NULL, NULL);
}

int main(int argc, char **argv)
{
    double lr = 0.1;
    const ex_opt table[] = {
        {"--lr", EX_REAL, &lr, "X", "learning rate of the SGD step", .dmin = 0, .dmin_open = true,
         .dmax = 10},
    };
    const ex_spec spec = {.prog = "worked_example",
                          .summary = "the lecture notes' 'hell' RNN: forward pass, loss, BPTT "
                                     "gradients checked numerically, one SGD step",
                          .opts = table,
                          .n_opts = (int)(sizeof table / sizeof table[0])};
    int rc = ex_parse(&spec, argc, argv, NULL);
    if (rc != EX_OK)
        return rc == EX_DONE ? 0 : 2;
    if (ex_runtime("worked_example", 0))
        return 1;
    model m;
    tn_rng r;
    tn_rng_seed(&r, 0);
    tn_params_init(&m.ps);
    if (tn_rnn_cell_init(&m.cell, &m.ps, "rnn", TN_CELL_RNN_TANH, DX, DH, TN_F64, &r) ||
        tn_linear_init(&m.out, &m.ps, "out", DH, DY, true, TN_F64, &r)) {
        fprintf(stderr, "worked_example: %s\n", tn_last_error());
        return 1;
    }
    set(m.cell.w_ih, W_x);
    set(m.cell.w_hh, W_h);
    set(m.cell.b_ih, b_h);
    set(m.cell.b_hh, NULL);
    set(m.out.weight, W_y);
    set(m.out.bias, b_y);

    double h[T][DH], y[T][DY];
    tn_tape *tp = tn_tape_new();
    tn_tensor *loss = forward(tp, &m, h, y);
    if (!loss || tn_backward(tp, loss) != TN_OK) {
        fprintf(stderr, "worked_example: %s\n", tn_last_error());
        return 1;
    }
    printf("reading \"hell\", predicting \"ello\" (alphabet h e l o), h_0 = 0\n\n");
    for (int t = 0; t < T; t++) {
        printf("t=%d x=%c  h_%d = [%8.5f %8.5f %8.5f]", t + 1, ALPHABET[INPUT[t]], t + 1, h[t][0],
               h[t][1], h[t][2]);
        if (t == 0)
            printf("   notes: [0.197 -0.604 0.833] = tanh([0.2 -0.7 1.2])");
        printf("\n       y_%d = [%6.4f %6.4f %6.4f %6.4f]  target %c (p = %.4f)", t + 1, y[t][0],
               y[t][1], y[t][2], y[t][3], ALPHABET[TARGET[t]], y[t][TARGET[t]]);
        if (t == 0)
            printf("   notes assume [0.1 0.6 0.2 0.1]");
        printf("\n");
    }
    /* the notes' other worked entries, from their 3-decimal h_1 */
    const double nh[DH] = {0.197, -0.604, 0.833};
    printf("\nnotes' partial sums from their h_1: (W_y h_1)[0] = 0.2*0.197 + 0.3*0.604 + "
           "0.1*0.833 = %.4f; library %.4f\n",
           W_y[0] * nh[0] + W_y[1] * nh[1] + W_y[2] * nh[2],
           W_y[0] * h[0][0] + W_y[1] * h[0][1] + W_y[2] * h[0][2]);
    printf("                                   (W_h h_1)[0] = 0.5*0.197 + 0.1*0.604 + "
           "0.2*0.833 = %.4f; library %.4f\n",
           W_h[0] * nh[0] + W_h[1] * nh[1] + W_h[2] * nh[2],
           W_h[0] * h[0][0] + W_h[1] * h[0][1] + W_h[2] * h[0][2]);
    double L0 = tn_tensor_get(loss, 0);
    printf("\ncross-entropy, mean over the 4 predictions: %.6f nats (perplexity %.4f)\n", L0,
           exp(L0));

    printf("\nBPTT gradients from the tape:\n");
    const char *names[6] = {"W_x", "W_h", "b_h", "b_hh", "W_y", "b_y"};
    tn_tensor *ps[6] = {m.cell.w_ih, m.cell.w_hh,  m.cell.b_ih,
                        m.cell.b_hh, m.out.weight, m.out.bias};
    for (int k = 0; k < 6; k++) {
        if (k == 3)
            continue; /* b_hh = 0 here: its gradient equals b_h's */
        printf("  dL/d%-4s", names[k]);
        for (int64_t i = 0; i < tn_numel(ps[k]); i++)
            printf(" %8.5f", tn_tensor_grad_get(ps[k], i));
        printf("\n");
    }
    tn_gradcheck_result res;
    tn_tensor *in[6] = {ps[0], ps[1], ps[2], ps[3], ps[4], ps[5]};
    tn_tape_reset(tp);
    if (tn_gradcheck(f_loss, &m, 6, in, 1e-6, &res) != TN_OK) {
        fprintf(stderr, "worked_example: %s\n", tn_last_error());
        return 1;
    }
    printf("checked against central differences (eps 1e-6) on all %lld weights: max relative "
           "error %.2e %s\n",
           (long long)res.n_checked, res.max_rel_err, res.max_rel_err <= 1e-6 ? "(ok)" : "(BAD)");

    /* one SGD step: w -= lr dL/dw (gradients again, the check zeroed them) */
    tn_tape_reset(tp);
    tn_params_zero_grad(&m.ps);
    loss = forward(tp, &m, NULL, NULL);
    if (!loss || tn_backward(tp, loss) != TN_OK)
        return 1;
    for (int k = 0; k < 6; k++)
        for (int64_t i = 0; i < tn_numel(ps[k]); i++)
            tn_tensor_set(ps[k], i, tn_tensor_get(ps[k], i) - lr * tn_tensor_grad_get(ps[k], i));
    tn_tape_reset(tp);
    tn_tensor *after = forward(tp, &m, h, y);
    double L1 = after ? tn_tensor_get(after, 0) : NAN;
    printf("\none SGD step (lr %g): loss %.6f -> %.6f %s\n", lr, L0, L1,
           L1 < L0 ? "(lower)" : "(NOT lower)");
    bool ok = res.max_rel_err <= 1e-6 && L1 < L0;
    tn_tape_free(tp);
    tn_params_free(&m.ps);
    return ok ? 0 : 1;
}
