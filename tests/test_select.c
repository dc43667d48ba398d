/* tests/test_select.c - forward checks of topk, argmax and softmax_masked
 * against plain loops written here, their orders and edge cases (ties,
 * NaN, rows with nothing kept), and their argument errors.
 *
 * Tolerances: topk and argmax copy values and indices, compared exactly.
 * softmax_masked (float64) against a double loop: 1e-15 absolute on values
 * in [0, 1] (same formula, other summation order); masked elements must be
 * exactly 0. */
#include "check.h"

#include "tensor/tensor.h"

static tn_rng rng;

static tn_tensor *rand_tensor(tn_dtype dt, int nd, const int64_t *shape)
{
    tn_tensor *t = tn_tensor_new(dt, nd, shape);
    tn_tensor_uniform(t, &rng, -1, 1);
    return t;
}

/* topk of x [R, N] along dim 1 against selection by repeated scans. */
static void test_topk_values(void)
{
    int64_t R = 5, N = 23;
    tn_tensor *x = rand_tensor(TN_F64, 2, (int64_t[]){R, N});
    tn_tape *tp = tn_tape_new();
    for (int64_t k = 1; k <= N; k += 5) {
        tn_tensor *v, *ix;
        CHECK(tn_topk(tp, x, k, 1, &v, &ix) == TN_OK);
        int bad = 0;
        for (int64_t r = 0; r < R; r++) {
            bool used[23] = {false};
            for (int64_t q = 0; q < k; q++) {
                int64_t best = -1;
                for (int64_t j = 0; j < N; j++)
                    if (!used[j] &&
                        (best < 0 || tn_tensor_get(x, r * N + j) > tn_tensor_get(x, r * N + best)))
                        best = j;
                used[best] = true;
                bad += tn_tensor_get(ix, r * k + q) != (double)best;
                bad += tn_tensor_get(v, r * k + q) != tn_tensor_get(x, r * N + best);
            }
        }
        CHECK(bad == 0);
    }
    /* along dim 0 of the transpose: the same answer as dim 1 of x */
    tn_tensor *v0, *i0, *v1, *i1;
    CHECK(tn_topk(tp, tn_transpose(tp, x, 0, 1), 4, 0, &v0, &i0) == TN_OK);
    CHECK(tn_topk(tp, x, 4, 1, &v1, &i1) == TN_OK);
    int bad = 0;
    for (int64_t r = 0; r < R; r++)
        for (int64_t q = 0; q < 4; q++)
            bad += tn_tensor_get(i0, q * R + r) != tn_tensor_get(i1, r * 4 + q);
    CHECK(bad == 0);
    tn_tape_free(tp);
    tn_tensor_free(x);
}

static void test_order(void)
{
    /* ties by lower index; NaN first */
    double xs[8] = {1, 3, 3, NAN, 2, 3, -1, NAN};
    tn_tensor *x = tn_tensor_from(TN_F64, 1, (int64_t[]){8}, xs);
    tn_tape *tp = tn_tape_new();
    tn_tensor *v, *ix;
    CHECK(tn_topk(tp, x, 6, 0, &v, &ix) == TN_OK);
    int want[6] = {3, 7, 1, 2, 5, 4};
    for (int q = 0; q < 6; q++)
        CHECK(tn_tensor_get(ix, q) == want[q]);
    tn_tensor *am = tn_argmax(tp, x, 0, false);
    CHECK(am && am->ndim == 1 && am->shape[0] == 1 && tn_tensor_get(am, 0) == 3);
    /* argmax of [2, 3] along 1, dims kept or not */
    tn_tensor *m = tn_tensor_from(TN_F32, 2, (int64_t[]){2, 3}, (float[]){0, 5, 5, 9, -1, 2});
    tn_tensor *a1 = tn_argmax(tp, m, 1, false), *a2 = tn_argmax(tp, m, -1, true);
    CHECK(a1 && a1->ndim == 1 && a1->shape[0] == 2);
    CHECK(a2 && a2->ndim == 2 && a2->shape[1] == 1);
    CHECK(a1 && tn_tensor_get(a1, 0) == 1 && tn_tensor_get(a1, 1) == 0);
    tn_tensor *a0 = tn_argmax(tp, m, 0, false);
    CHECK(a0 && tn_tensor_get(a0, 0) == 1 && tn_tensor_get(a0, 1) == 0 &&
          tn_tensor_get(a0, 2) == 0);
    tn_tape_free(tp);
    tn_tensor_free(x);
    tn_tensor_free(m);
}

static void test_errors(void)
{
    tn_tensor *x = rand_tensor(TN_F32, 2, (int64_t[]){3, 4});
    tn_tensor *ids = tn_tensor_new(TN_I32, 1, (int64_t[]){4});
    tn_tape *tp = tn_tape_new();
    tn_tensor *v, *ix;
    CHECK(tn_topk(tp, x, 5, 1, &v, &ix) == TN_ERR_ARG && !v && !ix);
    CHECK_MSG(tn_last_error(), "topk: k = 5 outside 1..4");
    tn_tape_free(tp);
    tp = tn_tape_new();
    CHECK(tn_topk(tp, x, 0, 1, &v, &ix) != TN_OK);
    tn_tape_free(tp);
    tp = tn_tape_new();
    CHECK(tn_topk(tp, x, 1, 2, &v, &ix) != TN_OK);
    CHECK_MSG(tn_last_error(), "topk");
    tn_tape_free(tp);
    tp = tn_tape_new();
    CHECK(tn_topk(tp, x, 1, 1, NULL, &ix) == TN_ERR_ARG);
    tn_tape_free(tp);
    tp = tn_tape_new();
    CHECK(tn_argmax(tp, ids, 0, false) == NULL);
    CHECK_MSG(tn_last_error(), "argmax");
    tn_tape_free(tp);
    tp = tn_tape_new();
    tn_tensor *bad = tn_tensor_new(TN_I32, 2, (int64_t[]){2, 4});
    CHECK(tn_softmax_masked(tp, x, 1, bad) == NULL);
    CHECK_MSG(tn_last_error(), "softmax_masked: mask [2, 4] does not broadcast to x [3, 4]");
    tn_tape_free(tp);
    tp = tn_tape_new();
    CHECK(tn_softmax_masked(tp, x, 1, x) == NULL);
    CHECK_MSG(tn_last_error(), "must be int32");
    tn_tape_free(tp);
    tn_tensor_free(bad);
    tn_tensor_free(x);
    tn_tensor_free(ids);
}

/* softmax_masked of x [B, S] with the mask of lengths [B, 1]-style rows:
 * against a double loop; masked elements exactly 0; a row with nothing
 * kept all 0. */
static void test_softmax_masked(void)
{
    int64_t B = 4, S = 9;
    int32_t len[4] = {9, 3, 1, 0};
    tn_tensor *x = rand_tensor(TN_F64, 2, (int64_t[]){B, S});
    tn_tensor *mask = tn_tensor_new(TN_I32, 2, (int64_t[]){B, S});
    for (int64_t b = 0; b < B; b++)
        for (int64_t s = 0; s < S; s++)
            tn_tensor_set(mask, b * S + s, s < len[b]);
    tn_tape *tp = tn_tape_new();
    tn_tensor *y = tn_softmax_masked(tp, x, 1, mask);
    CHECK(y != NULL);
    double worst = 0;
    int nonzero_masked = 0;
    for (int64_t b = 0; b < B && y; b++) {
        double m = -INFINITY, z = 0;
        for (int64_t s = 0; s < len[b]; s++)
            m = fmax(m, tn_tensor_get(x, b * S + s));
        for (int64_t s = 0; s < len[b]; s++)
            z += exp(tn_tensor_get(x, b * S + s) - m);
        for (int64_t s = 0; s < S; s++) {
            double got = tn_tensor_get(y, b * S + s);
            if (s >= len[b])
                nonzero_masked += got != 0.0;
            else
                worst = fmax(worst, fabs(got - exp(tn_tensor_get(x, b * S + s) - m) / z));
        }
    }
    printf("softmax_masked vs double loop: max diff %.3g\n", worst);
    CHECK(worst <= 1e-15);
    CHECK(nonzero_masked == 0);
    tn_tape_free(tp);
    tn_tensor_free(x);
    tn_tensor_free(mask);
}

int main(void)
{
    tn_rng_seed(&rng, 11);
    test_topk_values();
    test_order();
    test_errors();
    test_softmax_masked();
    return check_report("test_select");
}
