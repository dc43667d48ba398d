/* examples/exercises/repeat_ones.c - the hand-built RNN of the lecture notes:
 * a vanilla RNN whose weights are set by hand so that it detects two 1s in
 * a row in a binary sequence, then the same architecture trained from a
 * random start by BPTT.
 *
 *   h_t = relu(W_xh x_t + W_hh h_{t-1} + b_h)      (2 hidden units)
 *   y_t = W_hy h_t + b_y                            (2 logits: no, yes)
 *
 * By hand: unit 0 copies the current bit, unit 1 copies unit 0 of the step
 * before (the previous bit); "yes" outweighs "no" only when both are 1:
 *   W_xh = [1; 0], W_hh = [0 0; 1 0], b_h = 0,
 *   W_hy = [0 0; 10 10], b_y = [0, -15]    (logit_yes - logit_no = 10a + 10b - 15)
 *
 *   repeat_ones [--seed S] [--steps N] [--length T] [--threads N]
 * prints the hand-set weights, the hidden states and outputs along a sample
 * sequence, the accuracy on 10,000 random sequences, then trains (Adam,
 * cross-entropy over every step) until the trained network is right on
 * every step of 10,000 new sequences (a start that stalls in a local
 * minimum is replaced by a new random one), and prints its weights beside
 * the hand-set ones. Exit status 0 when the trained network is 100% right.
 */
#include <tensor/tensor.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

enum { H = 2, EVAL_SEQS = 10000 };

typedef struct net {
    tn_params ps;
    tn_rnn_cell cell; /* weight_ih [2, 1], weight_hh [2, 2], bias_ih, bias_hh [2] */
    tn_linear out;    /* weight [2, 2], bias [2] */
} net;

static int net_init(net *n, tn_rng *r)
{
    tn_params_init(&n->ps);
    if (tn_rnn_cell_init(&n->cell, &n->ps, "rnn", TN_CELL_RNN_RELU, 1, H, TN_F32, r) ||
        tn_linear_init(&n->out, &n->ps, "out", H, 2, true, TN_F32, r)) {
        fprintf(stderr, "repeat_ones: %s\n", tn_last_error());
        return -1;
    }
    return 0;
}

static void set(tn_tensor *t, const float *v)
{
    for (int64_t i = 0; i < tn_numel(t); i++)
        tn_tensor_set(t, i, v[i]);
}

static void hand_set(net *n)
{
    set(n->cell.w_ih, (float[]){1, 0});
    set(n->cell.w_hh, (float[]){0, 0, 1, 0});
    set(n->cell.b_ih, (float[]){0, 0});
    set(n->cell.b_hh, (float[]){0, 0});
    set(n->out.weight, (float[]){0, 0, 10, 10});
    set(n->out.bias, (float[]){0, -15});
}

/* Logits [B*T, 2] (row b*T + t) of bits [B, T] (0/1 floats) on tape tp;
 * the hidden states into hs [T, B, H] when hs is not NULL. */
static tn_tensor *run(tn_tape *tp, net *n, const float *bits, int64_t B, int64_t T, float *hs)
{
    tn_tensor *h = NULL, **logits = tn_tape_alloc(tp, sizeof *logits * (size_t)T);
    if (!logits)
        return NULL;
    for (int64_t t = 0; t < T; t++) {
        tn_tensor *x = tn_tape_tensor(tp, TN_F32, 2, (int64_t[]){B, 1});
        if (!x)
            return NULL;
        for (int64_t b = 0; b < B; b++)
            ((float *)x->data)[b] = bits[b * T + t];
        h = tn_rnn_cell_forward(tp, &n->cell, x, h, NULL, NULL);
        if (!h)
            return NULL;
        if (hs)
            for (int64_t b = 0; b < B; b++)
                for (int j = 0; j < H; j++)
                    hs[(t * B + b) * H + j] = (float)tn_tensor_get(h, b * H + j);
        logits[t] = tn_linear_forward(tp, &n->out, h); /* [B, 2] */
    }
    /* [B, T, 2] -> [B*T, 2] */
    return tn_reshape(tp, tn_stack(tp, (int)T, logits, 1), 2, (int64_t[]){B * T, 2});
}

/* Random bits [B, T] and their labels: 1 where bit t and bit t-1 are 1. */
static void make_data(tn_rng *r, int64_t B, int64_t T, float *bits, int32_t *labels)
{
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < T; t++) {
            bits[b * T + t] = tn_rng_uniform(r) < 0.5 ? 1.0f : 0.0f;
            labels[b * T + t] = t > 0 && bits[b * T + t] == 1 && bits[b * T + t - 1] == 1;
        }
}

/* Fraction of steps right, and of sequences right at every step, over
 * EVAL_SEQS random sequences of length T. */
static void accuracy(net *n, tn_rng *r, int64_t T, double *steps_ok, double *seqs_ok)
{
    float *bits = malloc(sizeof *bits * (size_t)(EVAL_SEQS * T));
    int32_t *lab = malloc(sizeof *lab * (size_t)(EVAL_SEQS * T));
    make_data(r, EVAL_SEQS, T, bits, lab);
    tn_tape *tp = tn_tape_new();
    tn_tape_set_grad(tp, false);
    tn_tensor *lg = run(tp, n, bits, EVAL_SEQS, T, NULL);
    int64_t ok = 0, seq_ok = 0;
    for (int64_t b = 0; lg && b < EVAL_SEQS; b++) {
        bool all = true;
        for (int64_t t = 0; t < T; t++) {
            int64_t i = b * T + t;
            int pred = tn_tensor_get(lg, i * 2 + 1) > tn_tensor_get(lg, i * 2);
            ok += pred == lab[i];
            all = all && pred == lab[i];
        }
        seq_ok += all;
    }
    *steps_ok = lg ? (double)ok / (double)(EVAL_SEQS * T) : 0;
    *seqs_ok = lg ? (double)seq_ok / EVAL_SEQS : 0;
    tn_tape_free(tp);
    free(bits), free(lab);
}

static void print_weights(const char *title, net *n)
{
    printf("%s\n", title);
    const struct {
        const char *name;
        tn_tensor *t;
    } w[] = {{"W_xh", n->cell.w_ih}, {"W_hh", n->cell.w_hh},  {"b_ih", n->cell.b_ih},
             {"b_hh", n->cell.b_hh}, {"W_hy", n->out.weight}, {"b_y", n->out.bias}};
    for (size_t k = 0; k < sizeof w / sizeof w[0]; k++) {
        printf("  %-5s", w[k].name);
        for (int64_t i = 0; i < tn_numel(w[k].t); i++)
            printf(" %8.3f", tn_tensor_get(w[k].t, i));
        printf("\n");
    }
}

int main(int argc, char **argv)
{
    uint64_t seed = 3;
    int64_t steps = 3000, T = 20, threads = 0;
    const ex_opt table[] = {
        {"--seed", EX_UINT64, &seed, "S", "seed of the random start and the data", .def = NULL},
        {"--steps", EX_INT, &steps, "N", "most training steps", .imin = 1, .imax = 10000000},
        {"--length", EX_INT, &T, "T", "sequence length", .imin = 2, .imax = 1000},
        {"--threads", EX_INT, &threads, "N", "threads", .imin = 1, .imax = 1024,
         .def = EX_THREADS_DEFAULT},
    };
    const ex_spec spec = {.prog = "repeat_ones",
                          .summary = "a hand-built RNN that detects two 1s in a row, and the "
                                     "same RNN trained by BPTT (an exercise of the lecture notes)",
                          .opts = table,
                          .n_opts = (int)(sizeof table / sizeof table[0])};
    int rc = ex_parse(&spec, argc, argv, NULL);
    if (rc != EX_OK)
        return rc == EX_DONE ? 0 : 2;
    if (ex_runtime("repeat_ones", threads))
        return 1;
    tn_rng r;
    tn_rng_seed(&r, seed);
    net hand, learnt;
    if (net_init(&hand, &r) || net_init(&learnt, &r))
        return 1;
    hand_set(&hand);
    print_weights("hand-set weights:", &hand);

    /* a sample sequence, step by step */
    const float sample[12] = {0, 1, 1, 0, 1, 1, 1, 0, 0, 1, 0, 1};
    float hs[12 * H];
    tn_tape *tp = tn_tape_new();
    tn_tensor *lg = run(tp, &hand, sample, 1, 12, hs);
    printf("\n t  x   h0     h1    logit_no logit_yes  output (1: two 1s in a row)\n");
    for (int t = 0; lg && t < 12; t++)
        printf("%2d  %d  %5.2f  %5.2f  %8.2f %9.2f   %d\n", t, (int)sample[t], hs[t * H],
               hs[t * H + 1], tn_tensor_get(lg, t * 2), tn_tensor_get(lg, t * 2 + 1),
               tn_tensor_get(lg, t * 2 + 1) > tn_tensor_get(lg, t * 2));
    double acc_steps, acc_seqs;
    accuracy(&hand, &r, T, &acc_steps, &acc_seqs);
    printf("\nhand-set network on %d random sequences of %lld bits: %.2f%% of steps, %.2f%% of "
           "sequences right\n",
           EVAL_SEQS, (long long)T, 100 * acc_steps, 100 * acc_seqs);

    /* training from a random start; a start that stalls (no gain in
     * sequence accuracy over 1,000 steps: two units this small often end
     * in a local minimum, e.g. a dead ReLU) is abandoned for a new one */
    enum { B = 64, STARTS = 10 };
    float *bits = malloc(sizeof *bits * (size_t)(B * T));
    int32_t *lab = malloc(sizeof *lab * (size_t)(B * T));
    tn_tensor *y = tn_tensor_new(TN_I32, 1, (int64_t[]){B * T});
    tn_optim *opt = NULL;
    double learnt_acc = 0; /* sequence accuracy at the last evaluation */
    printf("\ntraining the same architecture from a random start (Adam lr 0.05, batch %d, "
           "cross-entropy at every step):\n",
           B);
    for (int start = 1; start <= STARTS && learnt_acc < 1.0; start++) {
        if (start > 1) {
            tn_params_free(&learnt.ps);
            if (net_init(&learnt, &r))
                return 1;
            printf("  stalled: a new random start (%d of at most %d)\n", start, STARTS);
        }
        tn_optim_free(opt);
        tn_adam_opts ao = tn_adam_defaults();
        ao.lr = 0.05;
        opt = tn_optim_adam(&learnt.ps, &ao);
        double best = -1;
        int64_t best_step = 0;
        for (int64_t step = 1; step <= steps; step++) {
            make_data(&r, B, T, bits, lab);
            memcpy(y->data, lab, sizeof *lab * (size_t)(B * T));
            tn_tape_reset(tp);
            tn_optim_zero_grad(opt);
            tn_tensor *loss =
                tn_cross_entropy(tp, run(tp, &learnt, bits, B, T, NULL), y, -1, TN_REDUCE_MEAN);
            if (!loss || tn_backward(tp, loss) != TN_OK) {
                fprintf(stderr, "repeat_ones: %s\n", tn_last_error());
                return 1;
            }
            tn_clip_grad_norm(&learnt.ps, 5.0, NULL);
            tn_optim_step(opt);
            if (step % 250 == 0) {
                accuracy(&learnt, &r, T, &acc_steps, &acc_seqs);
                printf("  step %5lld loss %.5f  accuracy %.2f%% of steps, %.2f%% of sequences\n",
                       (long long)step, tn_tensor_get(loss, 0), 100 * acc_steps, 100 * acc_seqs);
                learnt_acc = acc_seqs;
                if (acc_seqs == 1.0)
                    break;
                if (acc_seqs > best + 1e-3)
                    best = acc_seqs, best_step = step;
                else if (step - best_step >= 1000)
                    break;
            }
        }
    }
    accuracy(&learnt, &r, T, &acc_steps, &acc_seqs);
    printf("\ntrained network on %d new random sequences: %.2f%% of steps, %.2f%% of sequences "
           "right%s\n",
           EVAL_SEQS, 100 * acc_steps, 100 * acc_seqs,
           acc_seqs == 1.0 ? "" : " (not 100%: more --steps or another --seed)");
    print_weights("\nlearnt weights (hand-set ones above):", &learnt);
    free(bits), free(lab);
    tn_tensor_free(y);
    tn_optim_free(opt);
    tn_tape_free(tp);
    tn_params_free(&hand.ps);
    tn_params_free(&learnt.ps);
    return acc_seqs == 1.0 ? 0 : 1;
}
