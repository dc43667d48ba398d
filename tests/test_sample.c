/* tests/test_sample.c - tn_sample / tn_sample_probs: greedy, temperature,
 * top-k and top-p against distributions worked out by hand from logits
 * log(p), then draws with a fixed seed against those distributions.
 * Tolerances: the distributions are exact up to exp/log rounding in double
 * (1e-12). The draws are 200,000 per case; their chi-square statistic
 * against the expected distribution must stay below 30 (for 1 to 3
 * degrees of freedom the chance of a correct sampler exceeding 30 is below
 * 1e-5, so the check is both meaningful and, with the fixed seed, stable),
 * and ids of probability 0 must never be drawn. The scratch of both comes
 * through the allocator hooks: a hook that refuses makes them fail with
 * TN_ERR_MEMORY. */
#include "check.h"
#include "tensor/tensor.h"

enum { V = 5, DRAWS = 200000 };

/* An allocator hook that counts, and refuses while `refuse` is set. */
static bool refuse;
static int64_t n_hooked;
static void *hook_alloc(size_t n)
{
    n_hooked++;
    return refuse ? NULL : malloc(n);
}

static const double P[V] = {0.1, 0.2, 0.3, 0.4, 0.0};

static tn_tensor *logits_of(const double *p, int n)
{
    tn_tensor *t = tn_tensor_new(TN_F64, 1, (int64_t[]){n});
    for (int v = 0; v < n; v++)
        tn_tensor_set(t, v, log(p[v])); /* log(0) = -inf: never drawn */
    return t;
}

static tn_sample_opts opts(double temp, int64_t k, double p)
{
    return (tn_sample_opts){.temperature = temp, .top_k = k, .top_p = p};
}

/* tn_sample_probs equals want; DRAWS draws follow it. */
static void check_case(const char *name, const tn_tensor *x, tn_sample_opts o, const double *want)
{
    double got[V];
    CHECK(tn_sample_probs(x, 0, &o, got) == TN_OK);
    for (int v = 0; v < V; v++)
        CHECK_NEAR(got[v], want[v], 1e-12);
    tn_rng r;
    tn_rng_seed(&r, 42);
    long count[V] = {0};
    for (int i = 0; i < DRAWS; i++) {
        int32_t id = -1;
        CHECK(tn_sample(x, &o, &r, &id) == TN_OK);
        if (id >= 0 && id < V)
            count[id]++;
    }
    double chi2 = 0;
    for (int v = 0; v < V; v++) {
        if (want[v] == 0) {
            CHECK(count[v] == 0);
            continue;
        }
        double e = want[v] * DRAWS;
        chi2 += (count[v] - e) * (count[v] - e) / e;
    }
    printf("%-28s chi2 %.2f\n", name, chi2);
    CHECK(chi2 < 30);
}

int main(void)
{
    tn_tensor *x = logits_of(P, V);
    double s = sqrt(0.1) + sqrt(0.2) + sqrt(0.3) + sqrt(0.4);
    check_case("softmax", x, tn_sample_defaults(), P);
    check_case("temperature 2 (sqrt p)", x, opts(2, 0, 1),
               (double[]){sqrt(0.1) / s, sqrt(0.2) / s, sqrt(0.3) / s, sqrt(0.4) / s, 0});
    check_case("top-k 2", x, opts(1, 2, 1), (double[]){0, 0, 0.3 / 0.7, 0.4 / 0.7, 0});
    check_case("top-p 0.35", x, opts(1, 0, 0.35), (double[]){0, 0, 0, 1, 0});
    check_case("top-p 0.5", x, opts(1, 0, 0.5), (double[]){0, 0, 0.3 / 0.7, 0.4 / 0.7, 0});
    check_case("top-p 0.75", x, opts(1, 0, 0.75),
               (double[]){0, 0.2 / 0.9, 0.3 / 0.9, 0.4 / 0.9, 0});
    /* top-k 3 keeps .2 .3 .4; of those .4/.9 < .6, .7/.9 >= .6 */
    check_case("top-k 3, top-p 0.6", x, opts(1, 3, 0.6), (double[]){0, 0, 0.3 / 0.7, 0.4 / 0.7, 0});
    check_case("greedy", x, opts(0, 0, 1), (double[]){0, 0, 0, 1, 0});

    /* ties: greedy and top-k take the lower ids of equal logits */
    tn_tensor *t = logits_of((double[]){0.3, 0.1, 0.3, 0.3, 0.0}, V);
    check_case("greedy, ties", t, opts(0, 0, 1), (double[]){1, 0, 0, 0, 0});
    check_case("top-k 1, ties", t, opts(1, 1, 1), (double[]){1, 0, 0, 0, 0});
    check_case("top-k 2, ties", t, opts(1, 2, 1), (double[]){0.5, 0, 0.5, 0, 0});

    /* rows of a float32 [N, V]: row b's likeliest id is b under greedy */
    tn_tensor *m = tn_tensor_new(TN_F32, 2, (int64_t[]){3, V});
    for (int b = 0; b < 3; b++)
        for (int v = 0; v < V; v++)
            tn_tensor_set(m, b * V + v, v == b ? 2.0 : 0.5);
    int32_t ids[3] = {-1, -1, -1};
    tn_rng r;
    tn_rng_seed(&r, 1);
    tn_sample_opts g = opts(0, 0, 1);
    CHECK(tn_sample(m, &g, &r, ids) == TN_OK && ids[0] == 0 && ids[1] == 1 && ids[2] == 2);

    /* errors name the function and the problem */
    tn_sample_opts bad = opts(-1, 0, 1);
    CHECK(tn_sample(x, &bad, &r, ids) == TN_ERR_ARG);
    CHECK_MSG(tn_last_error(), "temperature");
    bad = opts(1, -2, 1);
    CHECK(tn_sample(x, &bad, &r, ids) == TN_ERR_ARG);
    CHECK_MSG(tn_last_error(), "top_k");
    bad = opts(1, 0, 0);
    CHECK(tn_sample(x, &bad, &r, ids) == TN_ERR_ARG);
    CHECK_MSG(tn_last_error(), "top_p");
    tn_sample_opts d = tn_sample_defaults();
    tn_tensor_set(m, 1 * V + 2, NAN);
    CHECK(tn_sample(m, &d, &r, ids) == TN_ERR_NUMERIC);
    CHECK_MSG(tn_last_error(), "logit 2 of row 1 is nan");
    for (int v = 0; v < V; v++)
        tn_tensor_set(x, v, -INFINITY);
    CHECK(tn_sample(x, &d, &r, ids) == TN_ERR_NUMERIC);
    CHECK_MSG(tn_last_error(), "every logit of row 0 is -inf");
    tn_tensor *i32 = tn_tensor_new(TN_I32, 1, (int64_t[]){V});
    CHECK(tn_sample(i32, &d, &r, ids) == TN_ERR_ARG);
    CHECK_MSG(tn_last_error(), "expected float [V] or [N, V]");

    /* the scratch comes from the allocator hooks (issue 19: it came from
     * malloc, so a refusing hook changed nothing) */
    tn_set_allocator(hook_alloc, NULL);
    tn_tensor_set(m, 1 * V + 2, 0.5);
    CHECK(tn_sample(m, &d, &r, ids) == TN_OK && n_hooked >= 2);
    double probs[V];
    refuse = true;
    CHECK(tn_sample(m, &d, &r, ids) == TN_ERR_MEMORY);
    CHECK_MSG(tn_last_error(), "tn_sample: ");
    CHECK(tn_sample_probs(m, 0, &d, probs) == TN_ERR_MEMORY);
    CHECK_MSG(tn_last_error(), "tn_sample_probs: ");
    refuse = false;
    tn_set_allocator(NULL, NULL);

    tn_tensor_free(x), tn_tensor_free(t), tn_tensor_free(m), tn_tensor_free(i32);
    printf("test_sample: %d checks, %d failed\n", check_count, check_failures);
    return check_failures != 0;
}
