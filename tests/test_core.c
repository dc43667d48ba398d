/* tests/test_core.c - tensors, views, tape, backward engine, modes, errors,
 * RNG, and the no-allocation property of a steady-state training step. */
#include "check.h"

#include "tensor/tensor.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void test_create(void)
{
    tn_tensor *t = tn_tensor_from(TN_F32, 2, (int64_t[]){2, 3}, (float[]){1, 2, 3, 4, 5, 6});
    CHECK(t && t->ndim == 2 && tn_numel(t) == 6 && tn_is_contiguous(t));
    CHECK_NEAR(tn_tensor_get(t, 4), 5.0, 0);
    tn_tensor *f = tn_tensor_full(TN_F64, 3, (int64_t[]){2, 1, 2}, 2.5);
    CHECK_NEAR(tn_tensor_get(f, 3), 2.5, 0);
    tn_tensor *z = tn_tensor_new(TN_F64, 1, (int64_t[]){3});
    CHECK_NEAR(tn_tensor_get(z, 2), 0.0, 0);
    /* bad shapes: NULL with a message naming the function */
    CHECK(tn_tensor_new(TN_F32, 5, (int64_t[]){1, 1, 1, 1, 1}) == NULL);
    CHECK_MSG(tn_last_error(), "tn_tensor_new");
    CHECK(tn_last_status() == TN_ERR_SHAPE);
    CHECK(tn_tensor_new(TN_F32, 2, (int64_t[]){2, 0}) == NULL);
    tn_tensor *ids = tn_tensor_new(TN_I32, 1, (int64_t[]){1});
    CHECK(tn_tensor_set_requires_grad(ids, true) == TN_ERR_DTYPE);
    tn_tensor_free(ids);
    tn_tensor_free(t);
    tn_tensor_free(f);
    tn_tensor_free(z);
    tn_tensor_free(NULL); /* no-op */
}

static void test_rng(void)
{
    /* Expected values computed by tests/rng_reference.py, an independent
     * Python implementation of splitmix64 + xoshiro256**. */
    static const uint64_t want[4] = {0x15780b2e0c2ec716ULL, 0x6104d9866d113a7eULL,
                                     0xae17533239e499a1ULL, 0xecb8ad4703b360a1ULL};
    tn_rng r;
    tn_rng_seed(&r, 42);
    for (int i = 0; i < 4; i++)
        CHECK(tn_rng_next(&r) == want[i]);
    tn_rng_seed(&r, 42);
    CHECK_NEAR(tn_rng_uniform(&r), 0.08386297105988216, 0);
    /* normal: mean ~0, var ~1 over 20000 draws (5 sigma bounds: 0.035, 0.05) */
    double s = 0, s2 = 0;
    for (int i = 0; i < 20000; i++) {
        double v = tn_rng_normal(&r);
        s += v;
        s2 += v * v;
    }
    CHECK_NEAR(s / 20000, 0.0, 0.035);
    CHECK_NEAR(s2 / 20000, 1.0, 0.05);
}

/* Views share memory: writing through the base is seen by the view. */
static void test_views(void)
{
    tn_tape *tp = tn_tape_new();
    tn_tensor *x = tn_tape_tensor(tp, TN_F64, 2, (int64_t[]){3, 4});
    for (int i = 0; i < 12; i++)
        tn_tensor_set(x, i, i);
    tn_tensor *g = tn_narrow(tp, x, 1, 2, 2); /* columns 2, 3 */
    CHECK(g && g->shape[0] == 3 && g->shape[1] == 2 && g->stride[0] == 4);
    CHECK_NEAR(tn_tensor_get(g, 3), 7.0, 0); /* row 1, col 3 */
    tn_tensor *t = tn_transpose(tp, x, 0, 1);
    CHECK(t && t->shape[0] == 4 && !tn_is_contiguous(t));
    CHECK_NEAR(tn_tensor_get(t, 1), 4.0, 0); /* x[1][0] */
    tn_tensor *r = tn_reshape(tp, t, 1, (int64_t[]){12});
    CHECK(r && tn_is_contiguous(r));
    CHECK_NEAR(tn_tensor_get(r, 2), 8.0, 0);
    tn_tensor *c = tn_concat(tp, 2, (tn_tensor *[]){g, g}, 0);
    CHECK(c && c->shape[0] == 6 && c->shape[1] == 2);
    CHECK_NEAR(tn_tensor_get(c, 7), 3.0, 0); /* row 3 = g row 0, col 1 = x[0][3] */
    tn_tensor *st = tn_stack(tp, 2, (tn_tensor *[]){g, g}, 2);
    CHECK(st && st->ndim == 3 && st->shape[2] == 2);
    CHECK_NEAR(tn_tensor_get(st, 2 * 1 * 2 + 2 + 1), 7.0, 0); /* [1][1][1] = x[1][3] */
    tn_tape_set_grad(tp, false);
    tn_tape_free(tp);
}

/* Parameters accumulate over backward calls; tape grads restart. */
static void test_backward(void)
{
    tn_tensor *w = tn_tensor_from(TN_F64, 1, (int64_t[]){3}, (double[]){1, 2, 3});
    tn_tensor_set_requires_grad(w, true);
    tn_tensor *x = tn_tensor_from(TN_F64, 1, (int64_t[]){3}, (double[]){4, 5, 6});
    tn_tensor *ones = tn_tensor_full(TN_F64, 1, (int64_t[]){3}, 1.0);
    tn_tape *tp = tn_tape_new();
    for (int step = 0; step < 2; step++) {
        tn_tape_reset(tp);
        tn_tensor *y = tn_mul(tp, w, x); /* dy/dw = x */
        tn_tensor *z = tn_mul(tp, y, w); /* z = w^2 x, dz/dw = 2 w x */
        CHECK(tn_backward_from(tp, z, ones) == TN_OK);
    }
    /* two accumulated backward passes: 2 * (2 w x) */
    CHECK_NEAR(tn_tensor_grad_get(w, 0), 2 * 2 * 1 * 4, 1e-12);
    CHECK_NEAR(tn_tensor_grad_get(w, 2), 2 * 2 * 3 * 6, 1e-12);
    tn_tensor_zero_grad(w);
    CHECK_NEAR(tn_tensor_grad_get(w, 2), 0, 0);

    /* gradient flowing through a narrow view into a concat */
    tn_tape_reset(tp);
    tn_tensor *v = tn_narrow(tp, w, 0, 1, 2);
    tn_tensor *c = tn_concat(tp, 2, (tn_tensor *[]){v, v}, 0);
    tn_tensor *d = tn_tensor_full(TN_F64, 1, (int64_t[]){4}, 1.0);
    CHECK(tn_backward_from(tp, c, d) == TN_OK);
    CHECK_NEAR(tn_tensor_grad_get(w, 0), 0, 0);
    CHECK_NEAR(tn_tensor_grad_get(w, 1), 2, 0);
    CHECK_NEAR(tn_tensor_grad_get(w, 2), 2, 0);
    tn_tensor_zero_grad(w);

    /* no-grad mode records nothing; backward refuses */
    tn_tape_reset(tp);
    tn_tape_set_grad(tp, false);
    tn_tensor *ng = tn_mul(tp, w, x);
    CHECK(ng && !ng->requires_grad && tn_tape_size(tp) == 0);
    CHECK(tn_backward_from(tp, ng, x) == TN_ERR_STATE);
    CHECK_MSG(tn_last_error(), "does not depend");
    tn_tape_set_grad(tp, true);

    /* detach cuts the history: only the direct path gets a gradient */
    tn_tape_reset(tp);
    tn_tensor *h = tn_mul(tp, w, x);
    tn_tensor *hd = tn_detach(tp, h);
    CHECK(hd && !hd->requires_grad && hd->data == h->data);
    tn_tensor *out = tn_mul(tp, hd, w); /* d/dw = hd = w x (constant) */
    CHECK(tn_backward_from(tp, out, ones) == TN_OK);
    CHECK_NEAR(tn_tensor_grad_get(w, 1), 2 * 5, 1e-12);
    tn_tensor_free(d);
    tn_tensor_free(ones);
    tn_tensor_free(w);
    tn_tensor_free(x);
    tn_tape_free(tp);
}

/* Tape gradients are cleared when first needed (src/ops/backward.c), not
 * all at the start: after backward every recorded tensor's gradient is
 * still exact, a tensor with no path to the loss has gradient 0 (also in an
 * arena that held other values), and a second backward on the same tape
 * clears again instead of adding to the first one's intermediate sums.
 * Exact comparisons: small integers in double. */
static void test_backward_clears(void)
{
    tn_tensor *w = tn_tensor_from(TN_F64, 1, (int64_t[]){3}, (double[]){1, 2, 3});
    tn_tensor_set_requires_grad(w, true);
    tn_tensor *ones = tn_tensor_full(TN_F64, 1, (int64_t[]){3}, 1.0);
    tn_tape *tp = tn_tape_new();
    for (int round = 0; round < 2; round++) { /* round 1 reuses round 0's arena */
        tn_tape_reset(tp);
        tn_tensor *a = tn_scale(tp, w, 3);    /* a = 3w, da = 2 */
        tn_tensor *dead = tn_scale(tp, a, 5); /* not on the loss path */
        tn_tensor *b = tn_add(tp, a, a);      /* b = 6w */
        CHECK(dead && b && tn_backward_from(tp, b, ones) == TN_OK);
        CHECK(tn_backward_from(tp, b, ones) == TN_OK); /* again on the same tape */
        for (int i = 0; i < 3; i++) {
            CHECK_NEAR(tn_tensor_grad_get(a, i), 2, 0);
            CHECK_NEAR(tn_tensor_grad_get(dead, i), 0, 0);
            CHECK_NEAR(tn_tensor_grad_get(b, i), 1, 0);
            CHECK_NEAR(tn_tensor_grad_get(w, i), 2 * 6, 0); /* parameters accumulate */
        }
        tn_tensor_zero_grad(w);
    }
    tn_tape_free(tp);
    tn_tensor_free(w);
    tn_tensor_free(ones);
}

/* An element-wise op (one or two inputs, broadcast or not), a reduction
 * or conv2d that is the first consumer of an input's gradient clears (or
 * writes) it itself, a block at a time (src/ops/backward.c:
 * clears_inputs); later consumers add. a is read by tanh (visited first:
 * it clears a's gradient) and relu (adds); over three rounds on one arena
 * and two backwards on one tape, a missing clear would add to the
 * previous round's values. Large enough for many blocks on 2 threads.
 * conv2d: x's gradient through a tape tensor (cleared by the kernel) is
 * bitwise the one of a leaf (cleared by zero_grad). */
static void test_backward_kernel_clears(void)
{
    enum { R = 500, C = 100 };
    tn_tensor *w = tn_tensor_new(TN_F64, 2, (int64_t[]){R, C});
    tn_rng rng;
    tn_rng_seed(&rng, 3);
    tn_tensor_uniform(w, &rng, -2, 2);
    tn_tensor_set_requires_grad(w, true);
    tn_tensor *wv = tn_tensor_new(TN_F64, 1, (int64_t[]){C}); /* a broadcast row */
    tn_tensor_uniform(wv, &rng, -1, 1);
    tn_tensor_set_requires_grad(wv, true);
    tn_tensor *ones = tn_tensor_full(TN_F64, 2, (int64_t[]){R, C}, 1.0);
    tn_tape *tp = tn_tape_new();
    for (int round = 0; round < 3; round++) { /* rounds 1 and 2: one arena chunk, same layout */
        tn_tape_reset(tp);
        tn_tensor *a = tn_scale(tp, w, 1);
        tn_tensor *b = tn_add(tp, tn_relu(tp, a), tn_tanh(tp, a));
        CHECK(b && tn_backward_from(tp, b, ones) == TN_OK);
        CHECK(tn_backward_from(tp, b, ones) == TN_OK);
        double worst = 0;
        for (int64_t i = 0; b && i < R * C; i++) {
            double v = tn_tensor_get(w, i), t = tanh(v);
            double want = (v > 0 ? 1 : 0) + (1 - t * t);
            worst = fmax(worst, fabs(tn_tensor_grad_get(a, i) - want));
        }
        CHECK(worst < 1e-12); /* the library's tanh against libm's, in double */
        /* sum and mean write their input's gradient when first: either
         * reduction first (the other adds); d/da = 1 + 1/C everywhere */
        for (int order = 0; order < 2; order++) {
            a = tn_scale(tp, w, 1);
            tn_tensor *u = order ? tn_mean_dim(tp, a, 1, false) : NULL, *v = tn_sum(tp, a);
            if (!order)
                u = tn_mean_dim(tp, a, 1, false);
            tn_tensor *l = tn_add(tp, v, tn_sum(tp, u));
            CHECK(l && tn_backward(tp, l) == TN_OK);
            worst = 0;
            for (int64_t i = 0; l && i < R * C; i++)
                worst = fmax(worst, fabs(tn_tensor_grad_get(a, i) - (1 + 1.0 / C)));
            CHECK(worst < 1e-15); /* 1 + 0.01 either way round: one rounding */
        }
        /* two-input ops: a * v (v = 2 wv a broadcast row) is the first to
         * reach a and v, then a + w and relu(a) add: d/da = 2 wv[j] + 1 +
         * (a > 0); d/dv[j] = the sum of column j of a, d/dwv twice that */
        a = tn_scale(tp, w, 1);
        tn_tensor *v = tn_scale(tp, wv, 2);
        tn_tensor *r = tn_relu(tp, a), *s1 = tn_add(tp, a, w), *s2 = tn_mul(tp, a, v);
        tn_tensor *l = tn_add(tp, tn_add(tp, tn_sum(tp, r), tn_sum(tp, s1)), tn_sum(tp, s2));
        CHECK(l && tn_backward(tp, l) == TN_OK);
        worst = 0;
        for (int64_t i = 0; l && i < R * C; i++) {
            double x = tn_tensor_get(w, i),
                   want = 1 + (x > 0 ? 1 : 0) + 2 * tn_tensor_get(wv, i % C);
            worst = fmax(worst, fabs(tn_tensor_grad_get(a, i) - want));
        }
        CHECK(worst < 1e-14); /* three terms of 1-4 added in another order */
        worst = 0;
        for (int64_t j = 0; l && j < C; j++) {
            double col = 0;
            for (int64_t i = 0; i < R; i++)
                col += tn_tensor_get(w, i * C + j);
            worst = fmax(worst, fabs(tn_tensor_grad_get(wv, j) - 2 * col));
        }
        CHECK(worst < 1e-12); /* 500-term sums in another order */
        tn_tensor_zero_grad(w), tn_tensor_zero_grad(wv);
    }
    tn_tensor *x0 = tn_tensor_new(TN_F64, 4, (int64_t[]){3, 4, 6, 5});
    tn_tensor *x1 = tn_tensor_new(TN_F64, 4, (int64_t[]){3, 4, 6, 5});
    tn_tensor *k = tn_tensor_new(TN_F64, 4, (int64_t[]){2, 4, 3, 3});
    tn_tensor_uniform(x0, &rng, -1, 1);
    tn_tensor_copy(x1, x0);
    tn_tensor_uniform(k, &rng, -1, 1);
    tn_tensor_set_requires_grad(x0, true);
    tn_tensor_set_requires_grad(x1, true);
    tn_conv2d_opts o = tn_conv2d_defaults();
    o.padding_h = o.padding_w = 1;
    for (int round = 0; round < 2; round++) {
        tn_tape_reset(tp);
        tn_tensor_zero_grad(x0), tn_tensor_zero_grad(x1);
        tn_tensor *a = tn_scale(tp, x0, 1);
        tn_tensor *y0 = tn_conv2d(tp, a, k, NULL, &o), *y1 = tn_conv2d(tp, x1, k, NULL, &o);
        CHECK(y0 && y1 && tn_backward(tp, tn_sum(tp, y0)) == TN_OK);
        CHECK(tn_backward(tp, tn_sum(tp, y1)) == TN_OK);
        CHECK(memcmp(x0->grad, x1->grad, (size_t)tn_numel(x0) * sizeof(double)) == 0);
    }
    tn_tape_free(tp);
    tn_tensor_free(w), tn_tensor_free(wv), tn_tensor_free(ones);
    tn_tensor_free(x0), tn_tensor_free(x1), tn_tensor_free(k);
}

/* Element accessors are checked: NULL, an index outside the tensor, or an
 * int32 value that is not one are refused with a message, nothing written
 * (a plain cast of 1e20 to int32 would be undefined behaviour). */
static void test_accessors(void)
{
    tn_tensor *f = tn_tensor_full(TN_F32, 2, (int64_t[]){2, 3}, 1.0);
    tn_tensor *ids = tn_tensor_new(TN_I32, 1, (int64_t[]){4});
    CHECK(tn_tensor_set(f, 5, 2.5) == TN_OK && tn_tensor_get(f, 5) == 2.5);
    CHECK(tn_tensor_set(f, 6, 9) == TN_ERR_ARG);
    CHECK_MSG(tn_last_error(), "tn_tensor_set: index 6 outside 0..5");
    CHECK(tn_tensor_set(f, -1, 9) == TN_ERR_ARG);
    CHECK(isnan(tn_tensor_get(f, 6)));
    CHECK_MSG(tn_last_error(), "tn_tensor_get: index 6 outside 0..5");
    CHECK(isnan(tn_tensor_get(NULL, 0)));
    CHECK_MSG(tn_last_error(), "tn_tensor_get: tensor is NULL");
    CHECK(tn_tensor_set(NULL, 0, 1) == TN_ERR_ARG);
    CHECK(isnan(tn_tensor_grad_get(f, 99)));
    CHECK(tn_tensor_set(ids, 3, -7) == TN_OK && tn_tensor_get(ids, 3) == -7);
    const double bad[] = {1e20, -3e9, 0.5, NAN, INFINITY};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        CHECK(tn_tensor_set(ids, 3, bad[k]) == TN_ERR_ARG);
        CHECK_MSG(tn_last_error(), "is not an int32 value");
        CHECK(tn_tensor_get(ids, 3) == -7); /* unchanged */
        CHECK(tn_tensor_fill(ids, bad[k]) == TN_ERR_ARG);
        CHECK_MSG(tn_last_error(), "tn_tensor_fill");
        CHECK(tn_tensor_get(ids, 3) == -7); /* nothing written */
    }
    /* the other fallible calls on tensors, tapes and optimizers return a
     * status (they were void and did nothing, or crashed, before) */
    CHECK(tn_tensor_fill(ids, 5) == TN_OK && tn_tensor_get(ids, 0) == 5);
    CHECK(tn_tensor_fill(NULL, 0) == TN_ERR_ARG);
    double out[6] = {0};
    CHECK(tn_tensor_to_double(f, out) == TN_OK && out[5] == 2.5);
    CHECK(tn_tensor_to_double(f, NULL) == TN_ERR_ARG &&
          tn_tensor_to_double(NULL, out) == TN_ERR_ARG);
    tn_rng rng;
    tn_rng_seed(&rng, 1);
    CHECK(tn_tensor_uniform(ids, &rng, 0, 1) == TN_ERR_DTYPE);
    CHECK_MSG(tn_last_error(), "tn_tensor_uniform: the tensor is int32");
    CHECK(tn_tensor_get(ids, 0) == 5);
    CHECK(tn_tensor_normal(f, NULL, 0, 1) == TN_ERR_ARG && tn_tensor_normal(NULL, &rng, 0, 1));
    CHECK(tn_tape_set_training(NULL, true) == TN_ERR_ARG && tn_tape_set_watch(NULL, true));
    CHECK(tn_tape_set_probe(NULL, 0, 0, 1.0) == TN_ERR_ARG);
    CHECK(!tn_tape_training(NULL) && !tn_tape_grad_enabled(NULL) && tn_tape_size(NULL) == 0);
    CHECK(tn_optim_set_step(NULL, 1) == TN_ERR_ARG && tn_optim_set_skip_nonfinite(NULL, true));
    /* typed access to a contiguous tensor's elements; other dtypes and
     * strided views refused */
    CHECK(tn_tensor_data_f32(f) == f->data && tn_tensor_data_i32(ids) == ids->data);
    CHECK(tn_tensor_data_f64(f) == NULL);
    CHECK_MSG(tn_last_error(), "tn_tensor_data_f64: the tensor is float32");
    tn_tape *tp = tn_tape_new();
    CHECK(tn_tensor_data_f32(tn_transpose(tp, f, 0, 1)) == NULL);
    CHECK_MSG(tn_last_error(), "strided view");
    CHECK(tn_tensor_data_i32(NULL) == NULL);
    tn_tape_free(tp);
    tn_tensor_free(f);
    tn_tensor_free(ids);
}

/* One mechanism for errors: NULL + message naming op and shapes, sticky on
 * the tape, later ops return NULL quietly, backward refuses. */
static void test_errors(void)
{
    tn_tape *tp = tn_tape_new();
    tn_tensor *a = tn_tape_tensor(tp, TN_F32, 2, (int64_t[]){2, 3});
    tn_tensor *b = tn_tape_tensor(tp, TN_F32, 2, (int64_t[]){4, 5});
    tn_tensor *d = tn_tape_tensor(tp, TN_F64, 2, (int64_t[]){2, 3});
    CHECK(tn_add(tp, a, b) == NULL);
    CHECK_MSG(tn_tape_error(tp), "add");
    CHECK_MSG(tn_tape_error(tp), "[2, 3]");
    CHECK_MSG(tn_tape_error(tp), "[4, 5]");
    CHECK(tn_last_status() == TN_ERR_SHAPE);
    /* sticky: a valid op after the failure returns NULL, message unchanged */
    CHECK(tn_add(tp, a, a) == NULL);
    CHECK_MSG(tn_tape_error(tp), "[4, 5]");
    CHECK(tn_backward(tp, a) != TN_OK);
    CHECK_MSG(tn_last_error(), "earlier op");
    tn_tape_reset(tp);
    CHECK(tn_tape_error(tp) == NULL);
    a = tn_tape_tensor(tp, TN_F32, 2, (int64_t[]){2, 3});
    d = tn_tape_tensor(tp, TN_F64, 2, (int64_t[]){2, 3});
    CHECK(tn_mul(tp, a, d) == NULL); /* wrong dtype */
    CHECK_MSG(tn_tape_error(tp), "mul: mixed dtypes float32 and float64");
    tn_tape_reset(tp);
    a = tn_tape_tensor(tp, TN_F32, 2, (int64_t[]){2, 3});
    CHECK(tn_narrow(tp, a, 1, 2, 5) == NULL); /* out of range */
    CHECK_MSG(tn_tape_error(tp), "narrow");
    CHECK(tn_last_status() == TN_ERR_INDEX);
    tn_tape_reset(tp);
    a = tn_tape_tensor(tp, TN_F32, 2, (int64_t[]){2, 3});
    CHECK(tn_transpose(tp, a, 0, 7) == NULL); /* invalid argument */
    CHECK_MSG(tn_tape_error(tp), "transpose: dims 0, 7 out of range for [2, 3]");
    tn_tape_reset(tp);
    CHECK(tn_add(tp, NULL, NULL) == NULL); /* NULL input, not after a failure */
    CHECK_MSG(tn_tape_error(tp), "add: input 0 is NULL");
    tn_tape_reset(tp);
    a = tn_tape_tensor(tp, TN_F32, 2, (int64_t[]){2, 3});
    CHECK(tn_reshape(tp, a, 2, (int64_t[]){4, -1}) == NULL);
    CHECK_MSG(tn_tape_error(tp), "reshape: cannot view [2, 3]");
    CHECK(tn_add(NULL, a, a) == NULL);
    CHECK_MSG(tn_last_error(), "tape is NULL");
    tn_tape_free(tp);
}

/* Watch mode names the first op that produced a NaN/Inf. */
static void test_watch(void)
{
    tn_tape *tp = tn_tape_new();
    tn_tape_set_watch(tp, true);
    tn_tensor *a = tn_tape_tensor(tp, TN_F64, 1, (int64_t[]){2}); /* zeros */
    tn_tensor *q = tn_div(tp, a, a);                              /* 0/0 */
    CHECK(q == NULL);
    CHECK_MSG(tn_tape_error(tp), "div: produced a non-finite value");
    CHECK(tn_last_status() == TN_ERR_NUMERIC);
    tn_tape_free(tp);
}

/* ---- no heap allocation in a steady-state step ---- */

static long n_allocs = 0;
static void *count_alloc(size_t n)
{
    n_allocs++;
    return malloc(n);
}

/* A small recurrent training step in ops: embedding, 8 tanh-RNN steps with
 * narrow views of a gate-like buffer, concat, cross-entropy, backward. */
static double rnn_step(tn_tape *tp, tn_tensor *emb, tn_tensor *wx, tn_tensor *wh, tn_tensor *b,
                       tn_tensor *ids, tn_tensor *tgt)
{
    const int T = 8;
    tn_tensor *x = tn_gather_rows(tp, emb, ids, -1); /* [T*B, E] */
    tn_tensor *xp = tn_addmm(tp, b, x, wx);          /* [T*B, 2H] */
    tn_tensor *h = NULL, *hs[8];
    for (int t = 0; t < T; t++) {
        tn_tensor *g = tn_narrow(tp, xp, 0, t * 4, 4); /* [B=4, 2H] */
        tn_tensor *pre = tn_narrow(tp, g, 1, 0, 6);    /* first half */
        if (h)
            pre = tn_add(tp, pre, tn_matmul(tp, h, wh));
        h = tn_tanh(tp, pre);
        hs[t] = h;
    }
    tn_tensor *all = tn_concat(tp, T, hs, 0); /* [T*B, H] */
    tn_tensor *loss = tn_cross_entropy(tp, all, tgt, -1, TN_REDUCE_MEAN);
    CHECK(tn_backward(tp, loss) == TN_OK);
    return tn_tensor_get(loss, 0);
}

static void test_no_alloc(void)
{
    tn_runtime_init();
    tn_set_allocator(count_alloc, NULL);
    tn_rng r;
    tn_rng_seed(&r, 3);
    tn_tensor *emb = tn_tensor_new(TN_F32, 2, (int64_t[]){10, 5});
    tn_tensor *wx = tn_tensor_new(TN_F32, 2, (int64_t[]){5, 12});
    tn_tensor *wh = tn_tensor_new(TN_F32, 2, (int64_t[]){6, 6});
    tn_tensor *b = tn_tensor_new(TN_F32, 1, (int64_t[]){12});
    tn_tensor *ps[4] = {emb, wx, wh, b};
    for (int i = 0; i < 4; i++) {
        tn_tensor_uniform(ps[i], &r, -0.5, 0.5);
        tn_tensor_set_requires_grad(ps[i], true);
    }
    tn_tensor *ids = tn_tensor_new(TN_I32, 1, (int64_t[]){32});
    tn_tensor *tgt = tn_tensor_new(TN_I32, 1, (int64_t[]){32});
    for (int i = 0; i < 32; i++) {
        tn_tensor_set(ids, i, i % 10);
        tn_tensor_set(tgt, i, (i * 7) % 6);
    }
    tn_tape *tp = tn_tape_new();
    double first = 0, last = 0;
    long before = 0;
    for (int step = 0; step < 5; step++) {
        if (step == 2)
            before = n_allocs; /* steps 0-1 warm the arena up */
        tn_tape_reset(tp);
        for (int i = 0; i < 4; i++)
            tn_tensor_zero_grad(ps[i]);
        last = rnn_step(tp, emb, wx, wh, b, ids, tgt);
        if (step == 0)
            first = last;
    }
    CHECK(n_allocs - before == 0);
    if (n_allocs != before)
        fprintf(stderr, "steady-state steps made %ld allocations\n", n_allocs - before);
    CHECK(n_allocs > 0);  /* the hook was really in use */
    CHECK(first == last); /* same inputs, same parameters: same loss */
    tn_tape_free(tp);
    for (int i = 0; i < 4; i++)
        tn_tensor_free(ps[i]);
    tn_tensor_free(ids);
    tn_tensor_free(tgt);
    tn_set_allocator(NULL, NULL);
}

static void test_runtime(void)
{
    CHECK(tn_set_num_threads(2) == TN_OK);
    CHECK(tn_num_threads() == 2);
    /* refused, not clamped: the setting stays */
    CHECK(tn_set_num_threads(0) == TN_ERR_ARG);
    CHECK_MSG(tn_last_error(), "tn_set_num_threads: 0 threads, need 1 to 1024");
    CHECK(tn_set_num_threads(5000) == TN_ERR_ARG);
    CHECK(tn_num_threads() == 2);
    CHECK(strcmp(tn_blis_config(), "uninitialised") != 0);
    CHECK(strlen(tn_blis_config_reason()) > 0);
}

/* tn_strdup: an equal, separate copy from the library's allocator. */
static void test_strdup(void)
{
    const char *s = "weight_ih_l0_reverse";
    char *d = tn_strdup(s);
    CHECK(d && d != s && strcmp(d, s) == 0);
    CHECK(((uintptr_t)d & 63) == 0); /* it came from tn_alloc */
    tn_free(d);
    char *e = tn_strdup("");
    CHECK(e && e[0] == '\0');
    tn_free(e);
}

int main(void)
{
    test_create();
    test_strdup();
    test_rng();
    test_views();
    test_backward();
    test_backward_clears();
    test_backward_kernel_clears();
    test_accessors();
    test_errors();
    test_watch();
    test_no_alloc();
    test_runtime();
    return check_report("test_core");
}
