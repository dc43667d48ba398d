/* examples/exercises/gradient_flow.c - vanishing and exploding gradients, measured
 * (the lecture notes' account of the gradient flow of a vanilla RNN).
 *
 * A recurrent cell runs over one long random input sequence x_1..x_T; the
 * loss looks at the last step only, L = v . h_T (v a fixed random readout),
 * so dL/dh_t = dL/dh_T * J_T * ... * J_{t+1} (J_s = dh_s/dh_{s-1}) says how
 * much of the signal at step T reaches back to step t. After one backward
 * pass the tape holds every h_t's gradient (tn_backward gives every
 * recorded tensor one), read with tn_tensor_grad_get.
 *
 * Models: rnn-tanh, rnn-relu, lstm, gru (hidden H), each with W_hh
 * initialised uniform(+-1/sqrt(H)) (PyTorch's default, as tn_rnn_cell_init
 * does) and orthogonal (each gate's [H, H] block of W_hh an orthogonal
 * matrix, tn_init_orthogonal); the LSTM's forget-gate bias gets +1 (the
 * usual practice, --forget-bias; 0 is PyTorch's plain default). Then an
 * exploding start: rnn-relu with orthogonal W_hh times --gain (1.5).
 * Every model shares the input sequence and the readout v; everything is
 * float64, so that norms of 1e-30 are numbers, not rounding noise.
 *
 * Clipping. Clipping the gradient norm (tn_clip_grad_norm) multiplies the
 * whole gradient by one factor, so it cannot change the profile's shape:
 * it cannot help a vanishing gradient, it bounds an exploding one. The CSV
 * shows the exploding start's profile as is and times the factor that
 * clipping its parameters' gradient to --clip applies (a parallel line).
 * What clipping changes is training: the exploding start is trained on a
 * long-range task (at step T, output the first input's first component;
 * MSE; plain SGD) from the same weights and batches without and with
 * clipping; the loss and gradient norm are printed along the way, and a
 * run diverged when the loss or the gradient became non-finite or the
 * loss passed 1e6.
 *
 *   gradient_flow [--length T] [--hidden H] [--input I] [--seed S]
 *                 [--forget-bias B] [--gain G] [--steps N] [--lr X]
 *                 [--clip C] [--csv FILE] [--png FILE] [--width PX]
 *                 [--height PX] [--threads N]
 * writes the norms (t, one column per model) to the CSV, plots them on a
 * log scale into the PNG (gnuplot; without it the CSV and the script stay
 * and the message says how to plot them), and prints per model the ratio
 * ||dL/dh_1|| / ||dL/dh_T|| (first step over last: 1 means the signal
 * reaches back undiminished, 1e-20 that it is gone).
 */
#include <tensor/tensor.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "plot.h"

/* The models of the profile: 4 cells x 2 initialisations, then the
 * exploding start of the clipping comparison (its profile as is, and
 * scaled by the clipping factor: N_COLUMNS columns in the CSV). */
enum { N_CELLS = 4, N_MODELS = 2 * N_CELLS + 1, N_COLUMNS = N_MODELS + 1, TRAIN_BATCH = 32 };

static const tn_cell CELLS[N_CELLS] = {TN_CELL_RNN_TANH, TN_CELL_RNN_RELU, TN_CELL_LSTM,
                                       TN_CELL_GRU};
/* Their names in the output (no '_': gnuplot's key would read it as a subscript). */
static const char *const CELL_NAMES[N_CELLS] = {"rnn-tanh", "rnn-relu", "lstm", "gru"};

typedef struct model {
    tn_params ps;
    tn_rnn_cell cell;
    tn_linear readout; /* [1, H], no bias: L = v . h_T */
} model;

/* How a model starts: its cell, W_hh uniform (PyTorch's default) or
 * orthogonal times gain. */
typedef struct model_spec {
    tn_cell cell;
    bool orthogonal;
    double gain;
} model_spec;

/* A cell as s says and its readout, from seed: every model gets the same
 * readout v (from seed + 1) and, with the same kind, the same W_ih and
 * biases. orthogonal: each gate block of W_hh is gain times an orthogonal
 * matrix. forget_bias is added to the LSTM's forget-gate bias_ih. */
static int model_init(model *m, const model_spec *s, double forget_bias, int64_t I, int64_t H,
                      uint64_t seed)
{
    tn_cell cell = s->cell;
    tn_rng r;
    tn_rng_seed(&r, seed);
    tn_params_init(&m->ps);
    if (tn_rnn_cell_init(&m->cell, &m->ps, "cell", cell, I, H, TN_F64, &r))
        return -1;
    tn_rng_seed(&r, seed + 1);
    if (tn_linear_init(&m->readout, &m->ps, "readout", H, 1, false, TN_F64, &r))
        return -1;
    if (cell == TN_CELL_LSTM) /* gates i, f, g, o: f is rows H..2H */
        for (int64_t i = H; i < 2 * H; i++)
            tn_tensor_set(m->cell.b_ih, i, tn_tensor_get(m->cell.b_ih, i) + forget_bias);
    if (!s->orthogonal)
        return 0;
    double gain = s->gain;
    tn_rng_seed(&r, seed + 2);
    tn_tensor *q = tn_tensor_new(TN_F64, 2, (int64_t[]){H, H});
    if (!q)
        return -1;
    for (int g = 0; g < tn_cell_gates(cell); g++) {
        if (tn_init_orthogonal(q, &r, gain) != TN_OK) {
            tn_tensor_free(q);
            return -1;
        }
        for (int64_t i = 0; i < H * H; i++)
            tn_tensor_set(m->cell.w_hh, g * H * H + i, tn_tensor_get(q, i));
    }
    tn_tensor_free(q);
    return 0;
}

/* Run m over x [T, B, I] (row-major doubles) from zero states; the
 * states h_1..h_T into hs[0..T) when hs is not NULL. Returns the readout
 * of the last step, [B, 1]. */
static tn_tensor *model_run(tn_tape *tp, const model *m, const double *x, int64_t T, int64_t B,
                            tn_tensor **hs)
{
    int64_t I = m->cell.input_size;
    tn_tensor *h = NULL, *c = NULL;
    for (int64_t t = 0; t < T; t++) {
        tn_tensor *xt = tn_tape_tensor(tp, TN_F64, 2, (int64_t[]){B, I});
        if (!xt)
            return NULL;
        memcpy(xt->data, x + t * B * I, sizeof(double) * (size_t)(B * I));
        h = tn_rnn_cell_forward(tp, &m->cell, xt, h, c, &c);
        if (!h)
            return NULL;
        if (hs)
            hs[t] = h;
    }
    return tn_linear_forward(tp, &m->readout, h);
}

/* ||dL/dh_t|| for t = 1..T into norms[0..T), L = v . h_T on input x
 * [T, 1, I]. Returns 0 or -1 (message printed). */
static int profile(const model *m, const double *x, int64_t T, double *norms)
{
    tn_tape *tp = tn_tape_new();
    tn_tensor **hs = malloc(sizeof *hs * (size_t)T);
    int rc = -1;
    tn_tensor *y = tp && hs ? model_run(tp, m, x, T, 1, hs) : NULL;
    if (y && tn_backward(tp, tn_sum(tp, y)) == TN_OK) {
        for (int64_t t = 0; t < T; t++) {
            double s = 0;
            for (int64_t j = 0; j < m->cell.hidden; j++) {
                double g = tn_tensor_grad_get(hs[t], j);
                s += g * g;
            }
            norms[t] = sqrt(s);
        }
        rc = 0;
    } else {
        fprintf(stderr, "gradient_flow: %s\n", tp ? tn_last_error() : "out of memory");
    }
    free(hs);
    tn_tape_free(tp);
    return rc;
}

/* A table cell: x, or "nan" (printf's may say "-nan"). */
static void print_value(double x)
{
    if (isnan(x))
        printf(" %14s", "nan");
    else
        printf(" %14.4g", x);
}

/* The long-range task's loss: the target at step T is x_1[0] of each
 * sequence x [T, B, I]; MSE over the batch. */
static tn_tensor *task_loss(tn_tape *tp, const model *m, const double *x, int64_t T, int64_t B,
                            tn_tensor *target)
{
    int64_t I = m->cell.input_size;
    for (int64_t b = 0; b < B; b++)
        tn_tensor_set(target, b, x[b * I]);
    return tn_mse(tp, model_run(tp, m, x, T, B, NULL), target, TN_REDUCE_MEAN);
}

/* Plain SGD on the long-range task for `steps` steps, batches from r;
 * clip <= 0: no clipping. loss[s] and norm[s] (the gradient norm before
 * clipping) for each step s run; returns the number of steps run (fewer
 * than `steps` when the loss or the gradient became non-finite or the
 * loss passed 1e6: diverged), or -1 (message printed). */
static int64_t train(model *m, tn_rng *r, int64_t T, int64_t steps, double lr, double clip,
                     double *loss, double *norm)
{
    int64_t I = m->cell.input_size, B = TRAIN_BATCH, done = -1;
    double *x = malloc(sizeof *x * (size_t)(T * B * I));
    tn_tensor *target = tn_tensor_new(TN_F64, 2, (int64_t[]){B, 1});
    tn_sgd_opts so = tn_sgd_defaults();
    so.lr = lr;
    tn_optim *opt = tn_optim_sgd(&m->ps, &so);
    tn_tape *tp = tn_tape_new();
    if (!x || !target || !opt || !tp) {
        fprintf(stderr, "gradient_flow: out of memory\n");
        goto out;
    }
    for (done = 0; done < steps; done++) {
        for (int64_t i = 0; i < T * B * I; i++)
            x[i] = tn_rng_normal(r);
        tn_tape_reset(tp);
        tn_optim_zero_grad(opt);
        tn_tensor *l = task_loss(tp, m, x, T, B, target);
        if (!l || tn_backward(tp, l) != TN_OK) {
            fprintf(stderr, "gradient_flow: %s\n", tn_last_error());
            done = -1;
            goto out;
        }
        loss[done] = tn_tensor_get(l, 0);
        tn_status st = tn_clip_grad_norm(&m->ps, clip > 0 ? clip : INFINITY, &norm[done]);
        if (st != TN_OK || !isfinite(loss[done]) || loss[done] > 1e6)
            break;
        tn_optim_step(opt);
    }
out:
    tn_tape_free(tp);
    tn_optim_free(opt);
    tn_tensor_free(target);
    free(x);
    return done;
}

int main(int argc, char **argv)
{
    uint64_t seed = 1;
    int64_t T = 100, H = 32, I = 8, steps = 100, threads = 0;
    double lr = 0.01, clip = 1.0, gain = 1.5, forget_bias = 1.0;
    int64_t width = 1000, height = 540;
    const char *csv = "gradient_flow.csv", *png = "gradient_flow.png";
    const ex_opt table[] = {
        {"--length", EX_INT, &T, "T", "sequence length (steps back the gradient travels)",
         .imin = 2, .imax = 100000},
        {"--hidden", EX_INT, &H, "H", "hidden units of every model", .imin = 1, .imax = 4096},
        {"--input", EX_INT, &I, "I", "input size", .imin = 1, .imax = 4096},
        {"--seed", EX_UINT64, &seed, "S", "seed of the weights and the inputs", .def = NULL},
        {"--forget-bias", EX_REAL, &forget_bias, "B",
         "added to the LSTM's forget-gate bias (0: PyTorch's plain default)", .dmin = -100,
         .dmax = 100},
        {"--gain", EX_REAL, &gain, "G",
         "the exploding start: rnn_relu with orthogonal W_hh times G", .dmin = 0, .dmax = 100,
         .dmin_open = true},
        {"--steps", EX_INT, &steps, "N",
         "SGD steps of the exploding start, without and with clipping (0: skip)", .imin = 0,
         .imax = 1000000},
        {"--lr", EX_REAL, &lr, "X", "their learning rate", .dmin = 0, .dmax = 100,
         .dmin_open = true},
        {"--clip", EX_REAL, &clip, "C", "maximum gradient norm when clipping", .dmin = 0,
         .dmax = 1e9, .dmin_open = true},
        {"--csv", EX_STRING, &csv, "FILE", "the norms: t, then one column per model", .def = NULL},
        {"--png", EX_STRING, &png, "FILE", "their plot, log scale (needs gnuplot)", .def = NULL},
        {"--width", EX_INT, &width, "PX", "the plot's width", .imin = 100, .imax = 10000},
        {"--height", EX_INT, &height, "PX", "the plot's height", .imin = 100, .imax = 10000},
        {"--threads", EX_INT, &threads, "N", "threads", .imin = 1, .imax = 1024,
         .def = EX_THREADS_DEFAULT},
    };
    const ex_spec spec = {
        .prog = "gradient_flow",
        .summary = "the norm of dL/dh_t against t for RNN (tanh, relu), LSTM and GRU, uniform "
                   "and orthogonal W_hh, and an exploding start trained with and without "
                   "clipping (the lecture notes' vanishing and exploding gradients)",
        .opts = table,
        .n_opts = (int)(sizeof table / sizeof table[0])};
    int rc = ex_parse(&spec, argc, argv, NULL);
    if (rc != EX_OK)
        return rc == EX_DONE ? 0 : 2;
    if (ex_check_output("gradient_flow", "--csv", csv) ||
        ex_check_output("gradient_flow", "--png", png))
        return 2;
    if (ex_runtime("gradient_flow", threads))
        return 1;

    model_spec specs[N_MODELS];
    char names[N_COLUMNS][48];
    for (int k = 0; k < 2 * N_CELLS; k++) {
        specs[k] = (model_spec){CELLS[k / 2], k % 2 == 1, 1.0};
        snprintf(names[k], sizeof names[k], "%s %s", CELL_NAMES[k / 2],
                 k % 2 ? "orthogonal" : "uniform");
    }
    const int boom = N_MODELS - 1; /* the exploding start */
    specs[boom] = (model_spec){TN_CELL_RNN_RELU, true, gain};
    snprintf(names[boom], sizeof names[boom], "rnn-relu orthogonal x%g", gain);
    snprintf(names[boom + 1], sizeof names[boom + 1], "rnn-relu orthogonal x%g clipped", gain);

    /* the one input sequence, [T, 1, I] */
    double *x = malloc(sizeof *x * (size_t)(T * I));
    double *norms = malloc(sizeof *norms * (size_t)(T * N_COLUMNS));
    double *trace = malloc(sizeof *trace * (size_t)(4 * (steps + 1)));
    if (!x || !norms || !trace) {
        fprintf(stderr, "gradient_flow: out of memory\n");
        return 1;
    }
    tn_rng r;
    tn_rng_seed(&r, seed);
    for (int64_t i = 0; i < T * I; i++)
        x[i] = tn_rng_normal(&r);

    printf("||dL/dh_t|| for L = v . h_T over one random sequence of %lld steps (H = %lld, "
           "I = %lld, float64; LSTM forget-gate bias +%g)\n\n",
           (long long)T, (long long)H, (long long)I, forget_bias);
    printf("%-34s %12s %12s %12s\n", "model", "||dL/dh_T||", "||dL/dh_1||", "first/last");
    double factor = 1; /* the clipping factor of the exploding start's gradient */
    for (int k = 0; k < N_MODELS; k++) {
        model m;
        double *nk = norms + k * T;
        if (model_init(&m, &specs[k], forget_bias, I, H, seed + 100)) {
            fprintf(stderr, "gradient_flow: %s\n", tn_last_error());
            return 1;
        }
        if (profile(&m, x, T, nk))
            return 1;
        if (k == boom) {
            double total;
            tn_clip_grad_norm(&m.ps, clip, &total);
            factor = total > clip ? clip / (total + 1e-6) : 1.0;
            for (int64_t t = 0; t < T; t++)
                norms[(k + 1) * T + t] = factor * nk[t];
        }
        printf("%-34s %12.4e %12.4e %12.4e\n", names[k], nk[T - 1], nk[0], nk[0] / nk[T - 1]);
        tn_params_free(&m.ps);
    }
    printf("%-34s %12.4e %12.4e %12.4e  (all times %.3g: the same shape)\n", names[boom + 1],
           factor * norms[boom * T + T - 1], factor * norms[boom * T],
           norms[boom * T] / norms[boom * T + T - 1], factor);

    FILE *f = fopen(csv, "w");
    if (!f) {
        fprintf(stderr, "gradient_flow: cannot write --csv %s\n", csv);
        return 1;
    }
    fprintf(f, "t");
    for (int k = 0; k < N_COLUMNS; k++)
        fprintf(f, ",%s", names[k]);
    fprintf(f, "\n");
    for (int64_t t = 0; t < T; t++) {
        fprintf(f, "%lld", (long long)t + 1);
        for (int k = 0; k < N_COLUMNS; k++)
            fprintf(f, ",%.6e", norms[k * T + t]);
        fprintf(f, "\n");
    }
    if (fclose(f) != 0) {
        fprintf(stderr, "gradient_flow: cannot write --csv %s\n", csv);
        return 1;
    }
    printf("\nnorms: %s\n", csv);
    char title[128];
    snprintf(title, sizeof title, "||dL/dh_t||, loss at t = %lld only", (long long)T);
    int pr = ex_plot_lines("gradient_flow", png, csv, N_COLUMNS, title, "t", "||dL/dh_t||", true,
                           (int)width, (int)height);
    if (pr == PLOT_ERROR)
        return 1;

    if (steps > 0) {
        printf("\n%s trained on a long-range task (output x_1[0] at step %lld; MSE, SGD lr %g, "
               "batch %d), without and with clipping the gradient norm to %g:\n\n",
               names[boom], (long long)T, lr, TRAIN_BATCH, clip);
        int64_t done[2];
        for (int c = 0; c < 2; c++) {
            model m;
            tn_rng tr;
            tn_rng_seed(&tr, seed + 200); /* the same batches for both */
            if (model_init(&m, &specs[boom], forget_bias, I, H, seed + 100)) {
                fprintf(stderr, "gradient_flow: %s\n", tn_last_error());
                return 1;
            }
            done[c] = train(&m, &tr, T, steps, lr, c ? clip : 0, trace + 2 * c * (steps + 1),
                            trace + (2 * c + 1) * (steps + 1));
            tn_params_free(&m.ps);
            if (done[c] < 0)
                return 1;
        }
        printf("%6s %14s %14s %14s %14s\n", "step", "loss", "||g||", "loss (clip)", "||g|| (clip)");
        int64_t every = steps >= 10 ? steps / 10 : 1;
        for (int64_t s = 0; s < steps; s++) {
            bool last = s == done[0] || s == done[1] || s == steps - 1;
            if ((s % every && !last) || (s > done[0] && s > done[1]))
                continue;
            printf("%6lld", (long long)s + 1);
            for (int c = 0; c < 2; c++) {
                const double *l = trace + 2 * c * (steps + 1), *g = l + steps + 1;
                if (s < done[c] || (s == done[c] && done[c] < steps))
                    print_value(l[s]), print_value(g[s]);
                else
                    printf(" %14s %14s", "", "");
            }
            printf("\n");
        }
        for (int c = 0; c < 2; c++)
            printf("%s: %s\n", c ? "with clipping" : "without clipping",
                   done[c] < steps ? "diverged" : "trained to the end");
    }
    free(x);
    free(norms);
    free(trace);
    return 0;
}
