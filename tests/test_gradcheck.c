/* tests/test_gradcheck.c - every op in the table has a float64 gradient
 * check (central differences) and a float32-vs-float64 forward check. */
#include "check.h"
#include "gc.h"

#include <stdlib.h>

static tn_tensor *make_input(const gc_input *in, tn_dtype dt, uint64_t seed)
{
    tn_dtype d = in->dtype == TN_I32 ? TN_I32 : dt;
    tn_tensor *t = tn_tensor_new(d, in->ndim, in->shape);
    tn_rng r;
    tn_rng_seed(&r, seed);
    for (int64_t i = 0; i < tn_numel(t); i++) {
        double u = in->lo + (in->hi - in->lo) * tn_rng_uniform(&r);
        tn_tensor_set(t, i, in->dtype == TN_I32 ? floor(u) : u);
    }
    if (in->grad && d != TN_I32)
        tn_tensor_set_requires_grad(t, true);
    return t;
}

static double worst[TN_OP_COUNT];
static int covered[TN_OP_COUNT];

static void run_case(const gc_case *c)
{
    tn_tensor *x64[7] = {0}, *x32[7] = {0};
    for (int k = 0; k < c->n_inputs; k++) {
        x64[k] = make_input(&c->in[k], TN_F64, 1000 + k);
        x32[k] = make_input(&c->in[k], TN_F32, 1000 + k);
    }
    tn_gradcheck_result res;
    tn_status st = tn_gradcheck(c->fn, NULL, c->n_inputs, x64, 1e-6, &res);
    check_count++;
    if (st != TN_OK || !(res.max_rel_err <= c->tol)) {
        check_failures++;
        fprintf(stderr,
                "FAIL gradcheck %s (%s): status %d %s, max rel %.3g (tol %.3g), max abs %.3g, "
                "worst input %d index %lld analytic %.10g numeric %.10g\n",
                tn_op_name(c->op), c->name, (int)st, st ? tn_last_error() : "", res.max_rel_err,
                c->tol, res.max_abs_err, res.worst_input, (long long)res.worst_index,
                res.worst_analytic, res.worst_numeric);
    }
    if (res.max_rel_err > worst[c->op])
        worst[c->op] = res.max_rel_err;
    covered[c->op]++;

    /* float32 forward vs float64 forward */
    tn_tape *t64 = tn_tape_new(), *t32 = tn_tape_new();
    tn_rng_seed(tn_tape_rng(t64), 7);
    tn_rng_seed(tn_tape_rng(t32), 7);
    tn_tensor *y64 = c->fn(t64, x64, NULL), *y32 = c->fn(t32, x32, NULL);
    CHECK(y64 && y32 && y32->dtype == TN_F32 && y64->dtype == TN_F64);
    if (y64 && y32) {
        double maxerr = 0;
        for (int64_t i = 0; i < tn_numel(y64); i++) {
            double a = tn_tensor_get(y64, i), b = tn_tensor_get(y32, i);
            double e = fabs(a - b) / (1 + fabs(a));
            if (e > maxerr)
                maxerr = e;
        }
        check_count++;
        if (!(maxerr <= c->tol32)) {
            check_failures++;
            fprintf(stderr, "FAIL f32 forward %s (%s): max rel err %.3g > %.3g\n",
                    tn_op_name(c->op), c->name, maxerr, c->tol32);
        }
    }
    tn_tape_free(t64);
    tn_tape_free(t32);
    for (int k = 0; k < c->n_inputs; k++) {
        tn_tensor_free(x64[k]);
        tn_tensor_free(x32[k]);
    }
}

int main(void)
{
    typedef const gc_case *(*family_fn)(int *n);
    family_fn families[] = {
        gc_family_binary, gc_family_unary,       gc_family_shape,  gc_family_matmul,
        gc_family_reduce, gc_family_softmax,     gc_family_index,  gc_family_loss,
        gc_family_fused,  gc_family_recurrent,   gc_family_select, gc_family_custom,
        gc_family_scan,   gc_family_linear_loss, gc_family_norm,   gc_family_conv};
    for (size_t f = 0; f < sizeof families / sizeof families[0]; f++) {
        if (!families[f])
            continue;
        int n = 0;
        const gc_case *cases = families[f](&n);
        for (int i = 0; i < n; i++)
            run_case(&cases[i]);
    }
    printf("%-16s %6s %12s\n", "op", "cases", "worst rel");
    for (int op = 1; op < TN_OP_COUNT; op++) {
        printf("%-16s %6d %12.3g\n", tn_op_name(op), covered[op], worst[op]);
        check_count++;
        if (!covered[op]) {
            check_failures++;
            fprintf(stderr, "FAIL op %s has no gradient-check case\n", tn_op_name(op));
        }
        CHECK(strcmp(tn_op_name(op), "?") != 0);
    }
    return check_report("test_gradcheck");
}
