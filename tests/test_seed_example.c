/* tests/test_seed_example.c - the worked example of the lecture notes
 * (a forward pass worked out by hand there): a character-level RNN
 * over "hell" (alphabet h, e, l, o; one-hot inputs; D_x = 4, D_h = 3,
 * D_y = 4) with the notes' W_x, W_h, W_y, b_h, b_y and h0 = 0:
 *
 *     h_t = tanh(W_x x_t + W_h h_{t-1} + b_h),  y_t = softmax(W_y h_t + b_y)
 *
 * The library runs it as an RNN tanh cell (weight_ih = W_x, weight_hh = W_h,
 * bias_ih = b_h, bias_hh = 0) and logits = h W_y^T + b_y with ops. Checks:
 *   - h1 against the notes' 3-decimal values [0.197, -0.604, 0.833]: the
 *     notes cut tanh(1.2) = 0.83365 to 0.833 instead of rounding, so the
 *     tolerance is 1e-3 (one unit of the last printed decimal);
 *   - h1 = tanh([0.2, -0.7, 1.2]) exactly as the notes derive it, and every
 *     h_t and y_t against the plain-C double computation below, tol 1e-12:
 *     same formulas, only summation order and libm's last bit may differ
 *     (values are O(1), a few operations deep: ~1e-16 expected);
 *   - the cross-entropy of the four predictions against the targets
 *     e, l, l, o, the same way;
 *   - a float64 gradient check of that loss w.r.t. W_x, W_h and W_y.
 * (The notes' y1 = [0.1, 0.6, 0.2, 0.1] is stated as an assumption there,
 * not computed, so it is not a check.)
 */
#include <math.h>

#include "check.h"
#include "tensor/gradcheck.h"
#include "tensor/nn.h"

#define DX 4
#define DH 3
#define DY 4
#define T  4

static const double W_x[DH][DX] = {
    {0.1, -0.2, 0.3, 0.4}, {-0.5, 0.6, 0.7, -0.8}, {0.9, -1.0, 0.2, 0.3}};
static const double W_h[DH][DH] = {{0.5, -0.1, 0.2}, {0.3, 0.4, -0.6}, {-0.2, 0.7, 0.1}};
static const double W_y[DY][DH] = {
    {0.2, -0.3, 0.1}, {-0.4, 0.5, 0.2}, {0.3, 0.1, -0.5}, {0.6, -0.2, 0.4}};
static const double b_h[DH] = {0.1, -0.2, 0.3};
static const double b_y[DY] = {0.1, 0.2, -0.3, 0.4};

/* "hell" -> "ello" over the alphabet h=0, e=1, l=2, o=3. */
static const int32_t input_ids[T] = {0, 1, 2, 2};
static const int32_t target_ids[T] = {1, 2, 2, 3};
static const char alphabet[] = "helo";

/* Independent reference: plain double loops. h [T][DH], y [T][DY];
 * returns the mean cross-entropy against target_ids. */
static double reference(double h[T][DH], double y[T][DY])
{
    double prev[DH] = {0, 0, 0}, loss = 0;
    for (int t = 0; t < T; t++) {
        for (int i = 0; i < DH; i++) {
            double s = W_x[i][input_ids[t]] + b_h[i]; /* W_x x_t for one-hot x_t */
            for (int j = 0; j < DH; j++)
                s += W_h[i][j] * prev[j];
            h[t][i] = tanh(s);
        }
        double z[DY], zmax = -INFINITY, sum = 0;
        for (int k = 0; k < DY; k++) {
            z[k] = b_y[k];
            for (int j = 0; j < DH; j++)
                z[k] += W_y[k][j] * h[t][j];
            zmax = fmax(zmax, z[k]);
        }
        for (int k = 0; k < DY; k++)
            sum += exp(z[k] - zmax);
        for (int k = 0; k < DY; k++)
            y[t][k] = exp(z[k] - zmax) / sum;
        loss -= log(y[t][target_ids[t]]);
        for (int i = 0; i < DH; i++)
            prev[i] = h[t][i];
    }
    return loss / T;
}

typedef struct model {
    tn_rnn_cell cell;
    tn_tensor *w_y, *b_y; /* [DY, DH], [DY] */
    tn_tensor *x[T];      /* one-hot [1, DX] per step */
    tn_tensor *targets;   /* I32 [T] */
} model;

/* Run the four steps: hs[t] [1, DH] and the stacked logits [T, DY]. */
static tn_tensor *forward(tn_tape *tp, const model *m, tn_tensor **hs)
{
    tn_tensor *h = NULL, *logits[T];
    tn_tensor *w_yT = tn_transpose(tp, m->w_y, 0, 1);
    for (int t = 0; t < T; t++) {
        h = tn_rnn_cell_forward(tp, &m->cell, m->x[t], h, NULL, NULL);
        hs[t] = h;
        logits[t] = tn_add(tp, tn_matmul(tp, h, w_yT), m->b_y);
    }
    return tn_concat(tp, T, logits, 0);
}

/* Gradient-check function: inputs are W_x, W_h, W_y as held by the model. */
static tn_tensor *loss_fn(tn_tape *tp, tn_tensor *const *inputs, void *ctx)
{
    (void)inputs; /* the model already points at them */
    const model *m = ctx;
    tn_tensor *hs[T];
    return tn_cross_entropy(tp, forward(tp, m, hs), m->targets, -100, TN_REDUCE_MEAN);
}

static void set_all(tn_tensor *t, const double *v)
{
    for (int64_t i = 0; i < tn_numel(t); i++)
        tn_tensor_set(t, i, v[i]);
}

int main(void)
{
    tn_params ps;
    tn_params_init(&ps);
    tn_rng rng;
    tn_rng_seed(&rng, 4);
    model m = {0};
    CHECK(tn_rnn_cell_init(&m.cell, &ps, "rnn", TN_CELL_RNN_TANH, DX, DH, TN_F64, &rng) == TN_OK);
    CHECK(tn_linear_init(&(tn_linear){0}, &ps, "out", DH, DY, true, TN_F64, &rng) == TN_OK);
    m.w_y = tn_params_get(&ps, "out.weight");
    m.b_y = tn_params_get(&ps, "out.bias");
    if (!m.cell.w_ih || !m.w_y || !m.b_y) {
        fprintf(stderr, "parameters not created: %s\n", tn_last_error());
        return 1;
    }
    CHECK(tn_params_get(&ps, "rnn.weight_ih") == m.cell.w_ih);
    set_all(m.cell.w_ih, &W_x[0][0]);
    set_all(m.cell.w_hh, &W_h[0][0]);
    set_all(m.cell.b_ih, b_h);
    tn_tensor_fill(m.cell.b_hh, 0);
    set_all(m.w_y, &W_y[0][0]);
    set_all(m.b_y, b_y);
    for (int t = 0; t < T; t++) {
        m.x[t] = tn_tensor_new(TN_F64, 2, (int64_t[]){1, DX});
        tn_tensor_set(m.x[t], input_ids[t], 1.0);
    }
    m.targets = tn_tensor_from(TN_I32, 1, (int64_t[]){T}, target_ids);

    double h_ref[T][DH], y_ref[T][DY];
    double loss_ref = reference(h_ref, y_ref);

    tn_tape *tp = tn_tape_new();
    tn_tensor *hs[T];
    tn_tensor *logits = forward(tp, &m, hs);
    tn_tensor *y = tn_softmax(tp, logits, 1);
    tn_tensor *loss = tn_cross_entropy(tp, logits, m.targets, -100, TN_REDUCE_MEAN);
    CHECK(y != NULL && loss != NULL);
    if (!y || !loss) {
        fprintf(stderr, "forward failed: %s\n", tn_tape_error(tp));
        return 1;
    }

    /* Step 1 as the notes derive it. */
    const double notes_h1[DH] = {0.197, -0.604, 0.833};
    const double pre1[DH] = {0.2, -0.7, 1.2};
    for (int i = 0; i < DH; i++) {
        CHECK_NEAR(tn_tensor_get(hs[0], i), notes_h1[i], 1e-3);
        CHECK_NEAR(tn_tensor_get(hs[0], i), tanh(pre1[i]), 1e-15);
    }
    for (int t = 0; t < T; t++) {
        printf("t=%d input %c  h = [", t + 1, alphabet[input_ids[t]]);
        for (int i = 0; i < DH; i++) {
            printf(" %+.6f", tn_tensor_get(hs[t], i));
            CHECK_NEAR(tn_tensor_get(hs[t], i), h_ref[t][i], 1e-12);
        }
        printf(" ]  y = [");
        int best = 0;
        for (int k = 0; k < DY; k++) {
            double v = tn_tensor_get(y, t * DY + k);
            printf(" %.6f", v);
            CHECK_NEAR(v, y_ref[t][k], 1e-12);
            if (v > tn_tensor_get(y, t * DY + best))
                best = k;
        }
        printf(" ]  predicts %c (target %c)\n", alphabet[best], alphabet[target_ids[t]]);
    }
    printf("cross-entropy (mean over 4 steps) = %.12f\n", tn_tensor_get(loss, 0));
    CHECK_NEAR(tn_tensor_get(loss, 0), loss_ref, 1e-12);

    /* Gradients of the loss w.r.t. W_x, W_h, W_y by central differences.
     * Smooth (tanh, softmax, log) and O(1) values: eps = 1e-6 gives
     * truncation ~1e-12 and rounding ~1e-10 relative; 1e-7 is the bound. */
    tn_tensor *inputs[3] = {m.cell.w_ih, m.cell.w_hh, m.w_y};
    tn_gradcheck_result res;
    tn_status st = tn_gradcheck(loss_fn, &m, 3, inputs, 1e-6, &res);
    CHECK(st == TN_OK);
    printf("gradcheck W_x, W_h, W_y: %lld elements, max rel error %.3e, max abs error %.3e\n",
           (long long)res.n_checked, res.max_rel_err, res.max_abs_err);
    CHECK(res.n_checked == DH * DX + DH * DH + DY * DH);
    CHECK(res.max_rel_err <= 1e-7);

    tn_tape_free(tp);
    for (int t = 0; t < T; t++)
        tn_tensor_free(m.x[t]);
    tn_tensor_free(m.targets);
    tn_params_free(&ps);
    return check_report("test_seed_example");
}
