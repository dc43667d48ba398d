/* bench/conv_bench.c - a small CNN's forward + backward, float32: three
 * 3x3 convolutions (padding 1) with ReLUs, C_in -> 32 -> 64 -> 64
 * channels, on [B, 3, 32, 32] images, the loss the mean of the last
 * activations; gradients for the weights and biases (not the images).
 * bench/torch_conv.py runs the same model in PyTorch and this program, one
 * after the other, in one run.
 *
 *   conv_bench [B [steps]]      (default 64 10)
 *   conv_bench layers [B [steps]]
 *
 * Prints the median milliseconds per step over the steps (after one
 * warm-up step), images per second and GFLOP/s (forward 2 B C_out C_in 9
 * H W per layer; backward twice that, less the first layer's input
 * gradient, which is not made), and that as a percentage of the SGEMM peak
 * measured in the same process (bench_time.h: best of 5 1024^3 products
 * on the same threads, before and after the steps; the higher one).
 * With `layers`, each convolution of the model alone instead (no ReLU, the
 * loss the sum of its output): the best of the steps' milliseconds of its
 * forward, forward + weight and bias gradients, and forward + all three
 * gradients, with the GFLOP/s of each product they add (dW = the second
 * minus the first, dx = the third minus the second): where a gap to
 * PyTorch sits (bench/torch_conv.py --layers). Benchmark only on an idle machine: BLIS
 * and OpenMP threads spin at barriers, so a loaded one gives numbers that
 * mean little (docs/design.md). */
#include "tensor/ops.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TN_BENCH_PEAK
#include "bench_time.h"

enum { NL = 3, HW = 32 };
static const int64_t chans[NL + 1] = {3, 32, 64, 64};

/* Best milliseconds of `steps` runs (after one warm-up) of one 3x3
 * convolution (padding 1) cin -> cout on x [B, cin, HW, HW]: its forward,
 * then the backward of the sum of its output when any of x, weight or bias
 * requires grad. */
static double conv_ms(tn_tape *tp, tn_tensor *x, tn_tensor *w, tn_tensor *b, int steps)
{
    tn_conv2d_opts o = tn_conv2d_defaults();
    o.padding_h = o.padding_w = 1;
    bool grad = w->requires_grad || x->requires_grad;
    double best = 1e30;
    for (int s = -1; s < steps; s++) {
        tn_tape_reset(tp);
        tn_tensor_zero_grad(x), tn_tensor_zero_grad(w), tn_tensor_zero_grad(b);
        double t0 = now_ms();
        tn_tensor *y = tn_conv2d(tp, x, w, b, &o);
        if (!y || (grad && tn_backward(tp, tn_sum(tp, y)) != TN_OK)) {
            fprintf(stderr, "conv_bench: %s\n", tn_last_error());
            exit(1);
        }
        double ms = now_ms() - t0;
        if (s >= 0 && ms < best)
            best = ms;
    }
    return best;
}

/* The `layers` mode: each layer's forward, dW and dx on their own. */
static int layers(int64_t B, int steps)
{
    tn_rng rng;
    tn_rng_seed(&rng, 1);
    tn_tape *tp = tn_tape_new();
    for (int l = 0; l < NL; l++) {
        int64_t cin = chans[l], cout = chans[l + 1];
        tn_tensor *x = tn_tensor_new(TN_F32, 4, (int64_t[]){B, cin, HW, HW});
        tn_tensor *w = tn_tensor_new(TN_F32, 4, (int64_t[]){cout, cin, 3, 3});
        tn_tensor *b = tn_tensor_new(TN_F32, 1, (int64_t[]){cout});
        tn_tensor_uniform(x, &rng, -1, 1);
        tn_tensor_uniform(w, &rng, -0.1, 0.1);
        tn_tensor_uniform(b, &rng, -0.1, 0.1);
        double ms[3], gf = 2.0 * (double)(B * cout * cin * 9) * HW * HW / 1e6;
        for (int m = 0; m < 3; m++) { /* forward; + dW, db; + dx */
            tn_tensor_set_requires_grad(w, m >= 1);
            tn_tensor_set_requires_grad(b, m >= 1);
            tn_tensor_set_requires_grad(x, m == 2);
            ms[m] = conv_ms(tp, x, w, b, steps);
        }
        printf("ours:    conv %lld->%lld: forward %.2f ms (%.0f GFLOP/s), +dW %.2f ms (%.0f), "
               "+dx %.2f ms (%.0f)\n",
               (long long)cin, (long long)cout, ms[0], gf / ms[0], ms[1] - ms[0],
               gf / (ms[1] - ms[0]), ms[2] - ms[1], gf / (ms[2] - ms[1]));
        tn_tensor_free(x), tn_tensor_free(w), tn_tensor_free(b);
    }
    tn_tape_free(tp);
    return 0;
}

int main(int argc, char **argv)
{
    bool by_layer = argc >= 2 && strcmp(argv[1], "layers") == 0;
    if (by_layer)
        argc--, argv++;
    int64_t B = argc >= 2 ? atoll(argv[1]) : 64;
    int steps = argc >= 3 ? atoi(argv[2]) : 10;
    if (B < 1 || steps < 1 || steps > 1000) {
        fprintf(stderr, "usage: conv_bench [layers] [B [steps]]\n");
        return 2;
    }
    if (tn_runtime_init() != TN_OK) { /* BLIS's configuration, before sgemm_peak calls BLIS */
        fprintf(stderr, "conv_bench: %s\n", tn_last_error());
        return 1;
    }
    if (by_layer)
        return layers(B, steps);
    tn_rng rng;
    tn_rng_seed(&rng, 1);
    tn_tensor *x = tn_tensor_new(TN_F32, 4, (int64_t[]){B, chans[0], HW, HW});
    tn_tensor_uniform(x, &rng, -1, 1);
    tn_tensor *w[NL], *b[NL];
    double flops = 0;
    for (int l = 0; l < NL; l++) {
        w[l] = tn_tensor_new(TN_F32, 4, (int64_t[]){chans[l + 1], chans[l], 3, 3});
        b[l] = tn_tensor_new(TN_F32, 1, (int64_t[]){chans[l + 1]});
        double bound = 1 / sqrt((double)(chans[l] * 9)); /* PyTorch's default init */
        tn_tensor_uniform(w[l], &rng, -bound, bound);
        tn_tensor_uniform(b[l], &rng, -bound, bound);
        tn_tensor_set_requires_grad(w[l], true);
        tn_tensor_set_requires_grad(b[l], true);
        double f = 2.0 * (double)B * (double)(chans[l + 1] * chans[l] * 9) * HW * HW;
        flops += f * (l == 0 ? 2 : 3); /* forward, dweight, dx (not for the images) */
    }
    tn_conv2d_opts o = tn_conv2d_defaults();
    o.padding_h = o.padding_w = 1;
    tn_tape *tp = tn_tape_new();
    double peak0 = sgemm_peak(5);
    double *ms = malloc(sizeof(double) * (size_t)steps);
    for (int s = -1; s < steps; s++) {
        for (int l = 0; l < NL; l++)
            tn_tensor_zero_grad(w[l]), tn_tensor_zero_grad(b[l]);
        tn_tape_reset(tp);
        double t0 = now_ms();
        tn_tensor *h = x;
        for (int l = 0; l < NL; l++)
            h = tn_relu(tp, tn_conv2d(tp, h, w[l], b[l], &o));
        tn_tensor *loss = tn_mean(tp, h);
        if (!loss || tn_backward(tp, loss) != TN_OK) {
            fprintf(stderr, "conv_bench: %s\n", tn_last_error());
            return 1;
        }
        if (s >= 0)
            ms[s] = now_ms() - t0;
    }
    double peak = sgemm_peak(5);
    peak = peak > peak0 ? peak : peak0;
    qsort(ms, (size_t)steps, sizeof *ms, cmp);
    double med = ms[steps / 2];
    printf("ours:    B %lld, %d threads: %.1f ms/step, %.0f images/s, %.1f GFLOP/s "
           "(%.1f%% of the SGEMM peak %.1f GFLOP/s, %s path, BLIS %s)\n",
           (long long)B, tn_num_threads(), med, (double)B * 1e3 / med, flops / med / 1e6,
           100 * flops / med / 1e6 / peak, peak, tn_isa_name(tn_isa_active()), tn_blis_config());
    free(ms);
    tn_tape_free(tp);
    for (int l = 0; l < NL; l++)
        tn_tensor_free(w[l]), tn_tensor_free(b[l]);
    tn_tensor_free(x);
    return 0;
}
