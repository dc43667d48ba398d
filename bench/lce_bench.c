/* bench/lce_bench.c - the fused output layer + cross-entropy
 * (tn_linear_cross_entropy) against the unfused tn_addmm +
 * tn_cross_entropy_weighted, forward + backward, float32.
 *
 *   lce_bench [N H V [reps]]     (default 640 256 11099 10: translate's
 *                                 output layer)
 *
 * Prints the median milliseconds per step of: unfused, fused 'mean'
 * (gradient parts made in the forward), fused 'none' seeded with ones
 * (the recomputing backward: what 'mean' would cost with recomputation),
 * and the forward alone of fused 'mean' in no-grad mode. The loss uses
 * ignore_index rows (every 10th) and class weights of 1. */
#include "tensor/ops.h"

#include <stdio.h>
#include <stdlib.h>

#include "bench_time.h"

int main(int argc, char **argv)
{
    int64_t n = 640, hd = 256, v = 11099;
    int reps = 10;
    if (argc >= 4)
        n = atoll(argv[1]), hd = atoll(argv[2]), v = atoll(argv[3]);
    if (argc >= 5)
        reps = atoi(argv[4]);
    if (n < 1 || hd < 1 || v < 2 || reps < 1) {
        fprintf(stderr, "usage: lce_bench [N H V [reps]]\n");
        return 2;
    }
    tn_rng rng;
    tn_rng_seed(&rng, 1);
    tn_tensor *h = tn_tensor_new(TN_F32, 2, (int64_t[]){n, hd});
    tn_tensor *w = tn_tensor_new(TN_F32, 2, (int64_t[]){v, hd});
    tn_tensor *b = tn_tensor_new(TN_F32, 1, (int64_t[]){v});
    tn_tensor *ones = tn_tensor_new(TN_F32, 1, (int64_t[]){n});
    tn_tensor *tg = tn_tensor_new(TN_I32, 1, (int64_t[]){n});
    tn_tensor_uniform(h, &rng, -1, 1);
    tn_tensor_uniform(w, &rng, -0.1, 0.1);
    tn_tensor_uniform(b, &rng, -0.1, 0.1);
    tn_tensor_fill(ones, 1);
    for (int64_t i = 0; i < n; i++)
        tn_tensor_set(tg, i, i % 10 == 9 ? -100 : (double)(tn_rng_next(&rng) % (uint64_t)v));
    tn_tensor_set_requires_grad(h, true);
    tn_tensor_set_requires_grad(w, true);
    tn_tensor_set_requires_grad(b, true);
    /* one tape per mode (its arena is the mode's memory); the modes take
     * turns within each repetition, so a load that comes and goes on the
     * machine falls on all of them alike */
    tn_tape *tps[4];
    for (int mode = 0; mode < 4; mode++) {
        tps[mode] = tn_tape_new();
        tn_tape_set_grad(tps[mode], mode != 3);
    }
    const char *names[4] = {"unfused addmm + cross_entropy", "fused mean (forward-made grads)",
                            "fused none + ones (recomputed)", "fused mean, no-grad forward"};
    double *t = malloc(sizeof(double) * 4 * (size_t)reps);
    printf("N %lld H %lld V %lld, float32, %d threads, median of %d steps (after 1 warm-up)\n",
           (long long)n, (long long)hd, (long long)v, tn_num_threads(), reps);
    for (int r = -1; r < reps; r++) {
        for (int mode = 0; mode < 4; mode++) {
            tn_tape *tp = tps[mode];
            tn_tape_reset(tp);
            tn_tensor_zero_grad(h), tn_tensor_zero_grad(w), tn_tensor_zero_grad(b);
            double t0 = now_ms();
            tn_tensor *y;
            tn_status st = TN_OK;
            if (mode == 0) {
                y = tn_cross_entropy(tp, tn_addmm(tp, b, h, tn_transpose(tp, w, 0, 1)), tg, -100,
                                     TN_REDUCE_MEAN);
                st = y ? tn_backward(tp, y) : TN_ERR_ARG;
            } else if (mode == 1 || mode == 3) {
                y = tn_linear_cross_entropy(tp, h, w, b, tg, NULL, -100, 0, TN_REDUCE_MEAN);
                st = y && mode == 1 ? tn_backward(tp, y) : TN_OK;
            } else {
                y = tn_linear_cross_entropy(tp, h, w, b, tg, NULL, -100, 0, TN_REDUCE_NONE);
                st = y ? tn_backward_from(tp, y, ones) : TN_ERR_ARG;
            }
            if (!y || st != TN_OK) {
                fprintf(stderr, "lce_bench: %s: %s\n", names[mode],
                        tn_tape_error(tp) ? tn_tape_error(tp) : tn_last_error());
                return 1;
            }
            if (r >= 0)
                t[mode * reps + r] = now_ms() - t0;
        }
    }
    for (int mode = 0; mode < 4; mode++) {
        qsort(t + mode * reps, (size_t)reps, sizeof *t, cmp);
        printf("%-34s %9.1f ms   (tape arena %.1f MB)\n", names[mode], t[mode * reps + reps / 2],
               (double)tn_tape_arena_capacity(tps[mode]) / 1e6);
        tn_tape_free(tps[mode]);
    }
    free(t);
    tn_tensor_free(h), tn_tensor_free(w), tn_tensor_free(b), tn_tensor_free(ones);
    tn_tensor_free(tg);
    return 0;
}
