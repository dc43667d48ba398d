/* tests/test_recurrent.c - the recurrent op beyond its gradient checks
 * (tests/gc_recurrent.c) and the layer parity tests: the threaded time
 * loop agrees with one thread exactly, a second backward through one
 * result fails cleanly, and bad arguments name the op and the problem. */
#include "check.h"

#include "tensor/tensor.h"

#include <math.h>
#include <omp.h>
#include <string.h>

enum { T = 7, H = 40, BMAX = 40 }; /* H >= 32: the time loop uses 2 threads */
/* Batch size of the nets below: 5 (2 threads split the units) or 37 (at
 * least 16 rows per thread with H <= 256: they split the rows). */
static int64_t B = 5;

typedef struct net {
    tn_tensor *x, *w_ih, *w_hh, *b_ih, *b_hh, *h0, *c0;
} net;

static tn_tensor *param(tn_rng *r, int nd, const int64_t *shape)
{
    tn_tensor *t = tn_tensor_new(TN_F32, nd, shape);
    tn_tensor_uniform(t, r, -0.5, 0.5);
    tn_tensor_set_requires_grad(t, true);
    return t;
}

/* in: input size (20 makes dX + dW_ih and dW_hh a balanced pair, which
 * backward runs side by side on 2 threads; 3 does not). */
static void net_init(net *n, int gates, int64_t in)
{
    tn_rng r;
    tn_rng_seed(&r, 11);
    n->x = param(&r, 3, (int64_t[]){B, T, in});
    n->w_ih = param(&r, 2, (int64_t[]){gates * H, in});
    n->w_hh = param(&r, 2, (int64_t[]){gates * H, H});
    n->b_ih = param(&r, 1, (int64_t[]){gates * H});
    n->b_hh = param(&r, 1, (int64_t[]){gates * H});
    n->h0 = param(&r, 2, (int64_t[]){B, H});
    n->c0 = param(&r, 2, (int64_t[]){B, H});
}

static void net_free(net *n)
{
    tn_tensor *all[7] = {n->x, n->w_ih, n->w_hh, n->b_ih, n->b_hh, n->h0, n->c0};
    for (int i = 0; i < 7; i++)
        tn_tensor_free(all[i]);
}

/* Forward (reverse, with lengths) and backward of sum(o * o); copies the
 * result and every gradient into out (in a fixed order). Returns the count. */
static int64_t run(net *n, tn_cell cell, int threads, float *out)
{
    int32_t len[BMAX];
    for (int64_t b = 0; b < B; b++) /* 7, 3, 1, 7, 5, ...: every length, full ones too */
        len[b] = (int32_t)(b % 5 == 0 || b % 5 == 3 ? T : b % 5 == 1 ? 3 : b % 5 == 2 ? 1 : 5);
    tn_set_num_threads(threads);
    tn_tensor *all[7] = {n->x, n->w_ih, n->w_hh, n->b_ih, n->b_hh, n->h0, n->c0};
    for (int i = 0; i < 7; i++)
        tn_tensor_zero_grad(all[i]);
    tn_tape *tp = tn_tape_new();
    tn_rnn_weights w = {n->w_ih, n->w_hh, n->b_ih, n->b_hh};
    tn_tensor *o =
        tn_recurrent(tp, cell, &w, n->x, n->h0, cell == TN_CELL_LSTM ? n->c0 : NULL, len, true);
    tn_tensor *loss = tn_sum(tp, tn_mul(tp, o, o));
    CHECK(loss && tn_backward(tp, loss) == TN_OK);
    int64_t k = 0;
    for (int64_t i = 0; o && i < tn_numel(o); i++)
        out[k++] = (float)tn_tensor_get(o, i);
    for (int i = 0; i < 7; i++)
        if (all[i]->grad)
            for (int64_t j = 0; j < tn_numel(all[i]); j++)
                out[k++] = ((float *)all[i]->grad)[j];
    tn_tape_free(tp);
    return k;
}

/* Checks that a [na] and b [nb] are the same values bit for bit. */
static void check_same(const char *what, const float *a, int64_t na, const float *b, int64_t nb)
{
    CHECK(na == nb && na > 0);
    int64_t diff = 0;
    for (int64_t i = 0; i < na && i < nb; i++)
        diff += memcmp(&a[i], &b[i], sizeof a[i]) != 0;
    CHECK(diff == 0);
    if (diff)
        fprintf(stderr, "%s: %lld of %lld values differ\n", what, (long long)diff, (long long)na);
}

/* The time loop splits the hidden units (B 5) or the batch rows (B 37)
 * between threads; every value must come out bit for bit the same as on
 * one thread. */
static void test_threads_exact(void)
{
    tn_cell cells[4] = {TN_CELL_RNN_TANH, TN_CELL_RNN_RELU, TN_CELL_LSTM, TN_CELL_GRU};
    static float a[400000], b[400000];
    for (int c = 0; c < 16; c++) {
        B = c < 8 ? 5 : 37;
        int64_t in = c % 8 < 4 ? 3 : 20; /* the weight gradients' serial and paired paths */
        net n;
        net_init(&n, tn_cell_gates(cells[c % 4]), in);
        int64_t na = run(&n, cells[c % 4], 1, a), nb = run(&n, cells[c % 4], 2, b);
        char what[80];
        snprintf(what, sizeof what, "%s, I = %lld, B = %lld, 1 vs 2 threads",
                 tn_cell_name(cells[c % 4]), (long long)in, (long long)B);
        check_same(what, a, na, b, nb);
        net_free(&n);
    }
    B = 5;
}

static void test_second_backward(void)
{
    net n;
    net_init(&n, 4, 3);
    tn_tape *tp = tn_tape_new();
    tn_rnn_weights w = {n.w_ih, n.w_hh, n.b_ih, n.b_hh};
    tn_tensor *o = tn_recurrent(tp, TN_CELL_LSTM, &w, n.x, NULL, NULL, NULL, false);
    tn_tensor *loss = tn_sum(tp, o);
    CHECK(tn_backward(tp, loss) == TN_OK);
    CHECK(tn_backward(tp, loss) == TN_ERR_STATE);
    CHECK_MSG(tn_last_error(), "recurrent: a second backward through the same result");
    tn_tape_free(tp);
    net_free(&n);
}

static void test_bad_args(void)
{
    net n;
    net_init(&n, 4, 3); /* the messages below spell the shapes out */
    tn_rnn_weights w = {n.w_ih, n.w_hh, n.b_ih, n.b_hh};
    tn_tape *tp = tn_tape_new();

    CHECK(!tn_recurrent(tp, TN_CELL_GRU, &w, n.x, NULL, NULL, NULL, false));
    CHECK_MSG(tn_tape_error(tp), "recurrent (gru): w_ih [160, 3], w_hh [160, 40] for x [5, 7, 3]");
    CHECK_MSG(tn_tape_error(tp), "expected w_ih [120, 3]");
    tn_tape_reset(tp);

    CHECK(!tn_recurrent(tp, TN_CELL_LSTM, &w, n.h0, NULL, NULL, NULL, false));
    CHECK_MSG(tn_tape_error(tp), "expected x [B, T, I]");
    tn_tape_reset(tp);

    int32_t bad[5] = {7, 0, 1, 7, 5}; /* B is 5 here */
    CHECK(!tn_recurrent(tp, TN_CELL_LSTM, &w, n.x, NULL, NULL, bad, false));
    CHECK_MSG(tn_tape_error(tp), "recurrent (lstm): lengths[1] = 0 outside 1..T = 7");
    tn_tape_reset(tp);

    tn_rnn_weights w3 = {n.w_ih, n.w_hh, n.b_ih, NULL};
    CHECK(!tn_recurrent(tp, TN_CELL_RNN_TANH, &w3, n.x, NULL, n.c0, NULL, false));
    tn_tape_reset(tp);

    CHECK(!tn_recurrent(tp, TN_CELL_LSTM, &w, n.x, n.w_ih, NULL, NULL, false));
    CHECK_MSG(tn_tape_error(tp), "recurrent (lstm): h0 [160, 3], expected [5, 40]");
    tn_tape_reset(tp);

    CHECK(!tn_recurrent(tp, TN_CELL_LSTM, NULL, n.x, NULL, NULL, NULL, false));
    CHECK_MSG(tn_tape_error(tp), "recurrent: weights are NULL");
    tn_tape_reset(tp);

    CHECK(!tn_recurrent(tp, (tn_cell)9, &w, n.x, NULL, NULL, NULL, false));
    CHECK_MSG(tn_tape_error(tp), "recurrent: unknown cell 9");
    tn_tape_free(tp);
    net_free(&n);
}

/* Called from inside the user's own OpenMP parallel region (a thread per
 * model, say), the op's time loops get a team of one thread (nested regions
 * are inactive) where they asked for two: every row and unit must still be
 * computed, bitwise as on one thread. */
static void test_nested_team(void)
{
    static float a[400000], b[400000];
    tn_cell cells[2] = {TN_CELL_LSTM, TN_CELL_GRU};
    for (int c = 0; c < 4; c++) {
        B = c < 2 ? 5 : 37; /* units split, rows split */
        net n;
        net_init(&n, tn_cell_gates(cells[c % 2]), 20);
        int64_t na = run(&n, cells[c % 2], 1, a), nb = 0;
        tn_set_num_threads(2);
#pragma omp parallel num_threads(2)
        if (omp_get_thread_num() == 0)
            nb = run(&n, cells[c % 2], 2, b);
        char what[80];
        snprintf(what, sizeof what, "%s, B = %lld, in a parallel region",
                 tn_cell_name(cells[c % 2]), (long long)B);
        check_same(what, a, na, b, nb);
        net_free(&n);
    }
    B = 5;
}

int main(void)
{
    test_threads_exact();
    test_nested_team();
    test_second_backward();
    test_bad_args();
    return check_report("test_recurrent");
}
