/* src/nn/gradcheck.c - central-difference gradient checking. */
#include "tensor/gradcheck.h"

#include "../core/internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GC_SEED  0x5eedULL
#define GC_FLOOR 1e-2

/* Weight i of the fixed projection w (1 for a scalar output). */
static double weight(tn_rng *wr, int64_t n)
{
    return n == 1 ? 1.0 : 2.0 * tn_rng_uniform(wr) - 1.0;
}

/* Run f on a reset tape; *loss = sum(w * y). */
static tn_status eval(tn_gradcheck_fn f, void *ctx, tn_tape *tp, tn_tensor *const *in, double *loss,
                      tn_tensor **y_out)
{
    tn_tape_reset(tp);
    tn_rng_seed(tn_tape_rng(tp), GC_SEED);
    tn_tensor *y = f(tp, in, ctx);
    if (!y || tn_tape_error(tp))
        return tn_set_error(TN_ERR_STATE, "tn_gradcheck: the function failed: %s",
                            tn_tape_error(tp) ? tn_tape_error(tp) : "it returned NULL");
    int64_t n = tn_numel(y);
    tn_rng wr;
    tn_rng_seed(&wr, GC_SEED + 1);
    double s = 0;
    for (int64_t i = 0; i < n; i++)
        s += weight(&wr, n) * tn_tensor_get(y, i);
    *loss = s;
    if (y_out)
        *y_out = y;
    return TN_OK;
}

/* Record f on tp and back-propagate dL/dy = w: every recorded tensor and
 * every input that requires grad then holds dL/d itself. */
static tn_status analytic(tn_gradcheck_fn f, void *ctx, tn_tape *tp, tn_tensor *const *inputs)
{
    double loss;
    tn_tensor *y = NULL;
    tn_status st = eval(f, ctx, tp, inputs, &loss, &y);
    if (st != TN_OK)
        return st;
    tn_tensor *dy = tn_tensor_new(TN_F64, y->ndim, y->shape);
    if (!dy)
        return TN_ERR_MEMORY;
    tn_rng wr;
    tn_rng_seed(&wr, GC_SEED + 1);
    for (int64_t i = 0, n = tn_numel(y); i < n; i++)
        tn_tensor_set(dy, i, weight(&wr, n));
    st = tn_backward_from(tp, y, dy);
    tn_tensor_free(dy);
    return st;
}

tn_status tn_gradcheck(tn_gradcheck_fn f, void *ctx, int n_inputs, tn_tensor *const *inputs,
                       double eps, tn_gradcheck_result *res)
{
    if (!f || !inputs || !res || n_inputs < 1 || !(eps > 0))
        return tn_set_error(TN_ERR_ARG, "tn_gradcheck: bad arguments");
    memset(res, 0, sizeof *res);
    res->worst_input = -1;
    tn_tape *tp = tn_tape_new();
    if (!tp)
        return TN_ERR_MEMORY;
    tn_status st = TN_OK;
    for (int k = 0; k < n_inputs; k++)
        tn_tensor_zero_grad(inputs[k]);

    /* Analytic gradients: one backward with dy = w. */
    if ((st = analytic(f, ctx, tp, inputs)) != TN_OK)
        goto done;

    for (int k = 0; k < n_inputs; k++) {
        tn_tensor *x = inputs[k];
        if (!x || !x->requires_grad)
            continue;
        int64_t n = tn_numel(x);
        for (int64_t i = 0; i < n; i++) {
            double x0 = tn_tensor_get(x, i), lp, lm;
            tn_tensor_set(x, i, x0 + eps);
            st = eval(f, ctx, tp, inputs, &lp, NULL);
            tn_tensor_set(x, i, x0 - eps);
            if (st == TN_OK)
                st = eval(f, ctx, tp, inputs, &lm, NULL);
            tn_tensor_set(x, i, x0);
            if (st != TN_OK)
                goto done;
            double num = (lp - lm) / (2 * eps);
            double ana = tn_tensor_grad_get(x, i);
            double abs_err = fabs(ana - num);
            double den = fmax(fmax(fabs(ana), fabs(num)), GC_FLOOR);
            double rel = abs_err / den;
            if (abs_err > res->max_abs_err)
                res->max_abs_err = abs_err;
            if (rel > res->max_rel_err || res->worst_input < 0) {
                res->max_rel_err = fmax(rel, res->max_rel_err);
                res->worst_input = k;
                res->worst_index = i;
                res->worst_analytic = ana;
                res->worst_numeric = num;
            }
            res->n_checked++;
        }
        tn_tensor_zero_grad(x);
    }
done:
    tn_tape_free(tp);
    return st;
}

/* ---- op blame ---- */

#define BLAME_SAMPLES 8

/* What the blame keeps of one checked tensor: a recorded node (pos >= 0)
 * or an input (pos -1), its sample elements and their analytic gradients
 * from the first backward (the tape is re-recorded by every probe). */
typedef struct probe_t {
    tn_tensor *t; /* node of the first recording, or the input */
    int64_t pos;  /* tape position, -1 for an input */
    int n;        /* samples */
    int64_t idx[BLAME_SAMPLES];
    double ana[BLAME_SAMPLES];
} probe_t;

static void probe_take(probe_t *p, tn_tensor *t, int64_t pos)
{
    int64_t numel = tn_numel(t);
    p->t = t, p->pos = pos;
    p->n = numel < BLAME_SAMPLES ? (int)numel : BLAME_SAMPLES;
    for (int k = 0; k < p->n; k++) {
        p->idx[k] = numel <= BLAME_SAMPLES
                        ? k
                        : (int64_t)k * numel / BLAME_SAMPLES + numel / (2 * BLAME_SAMPLES);
        p->ana[k] = tn_tensor_grad_get(t, p->idx[k]);
    }
}

/* The non-view tensor whose memory t is. */
static const tn_tensor *root_of(const tn_tensor *t)
{
    while (t && tn__node(t)->is_view)
        t = tn__node(t)->src[0];
    return t;
}

/* Consumers of t on the first recording: the ops (not views) that take t,
 * or a view of it, as an input. Writes their positions' names into buf
 * and returns the last position (-1 if none). */
static int64_t consumers(tn_tape *tp, size_t n_nodes, const tn_tensor *t, char *buf, size_t cap)
{
    int64_t last = -1;
    size_t used = 0;
    buf[0] = '\0';
    for (size_t j = 0; j < n_nodes; j++) {
        tn_tensor *c = tn_tape_node(tp, j);
        if (tn__node(c)->is_view)
            continue;
        bool uses = false;
        for (int k = 0; k < TN_MAX_SRC && !uses; k++)
            uses = tn__node(c)->src[k] && root_of(tn__node(c)->src[k]) == t;
        if (!uses)
            continue;
        int w = snprintf(buf + used, cap - used, "%s'%s' (position %zu)", last < 0 ? "" : ", ",
                         tn_tensor_op_name(c), j);
        used = w > 0 && (size_t)w < cap - used ? used + (size_t)w : used;
        last = (int64_t)j;
    }
    return last;
}

tn_status tn_gradcheck_blame(tn_gradcheck_fn f, void *ctx, int n_inputs, tn_tensor *const *inputs,
                             double eps, double tol, tn_gradcheck_report *res)
{
    if (!f || !inputs || !res || n_inputs < 1 || !(eps > 0) || !(tol > 0))
        return tn_set_error(TN_ERR_ARG, "tn_gradcheck_blame: bad arguments");
    memset(res, 0, sizeof *res);
    res->position = res->tensor = -1;
    res->input = -1;
    tn_tape *tp = tn_tape_new(), *first = tn_tape_new();
    probe_t *ps = NULL;
    tn_status st = TN_OK;
    if (!tp || !first) {
        st = TN_ERR_MEMORY;
        goto done;
    }
    for (int k = 0; k < n_inputs; k++)
        tn_tensor_zero_grad(inputs[k]);

    /* The analytic gradients of every recorded tensor, on a tape kept for
     * the consumers' names. */
    if ((st = analytic(f, ctx, first, inputs)) != TN_OK)
        goto done;
    size_t n_nodes = tn_tape_size(first);
    ps = malloc(sizeof *ps * (n_nodes + (size_t)n_inputs));
    if (!ps) {
        st = tn_set_error(TN_ERR_MEMORY, "tn_gradcheck_blame: out of memory");
        goto done;
    }
    size_t np = 0;
    for (size_t j = n_nodes; j-- > 0;) /* from the output towards the inputs */
        if (!tn__node(tn_tape_node(first, j))->is_view)
            probe_take(&ps[np++], tn_tape_node(first, j), (int64_t)j);
    for (int k = 0; k < n_inputs; k++)
        if (inputs[k] && inputs[k]->requires_grad)
            probe_take(&ps[np++], inputs[k], -1 - k);

    for (size_t q = 0; q < np && !res->found; q++) {
        probe_t *p = &ps[q];
        for (int s = 0; s < p->n && !res->found; s++) {
            double lp, lm, x0 = 0;
            for (int sign = 1; sign >= -1 && st == TN_OK; sign -= 2) {
                if (p->pos >= 0) {
                    tn_tape_set_probe(tp, p->pos, p->idx[s], sign * eps);
                } else {
                    x0 = tn_tensor_get(p->t, p->idx[s]);
                    tn_tensor_set(p->t, p->idx[s], x0 + sign * eps);
                }
                st = eval(f, ctx, tp, inputs, sign > 0 ? &lp : &lm, NULL);
                tn_tape_set_probe(tp, -1, 0, 0);
                if (p->pos < 0)
                    tn_tensor_set(p->t, p->idx[s], x0);
            }
            if (st != TN_OK)
                goto done;
            double num = (lp - lm) / (2 * eps), ana = p->ana[s];
            double rel = fabs(ana - num) / fmax(fmax(fabs(ana), fabs(num)), GC_FLOOR);
            res->n_checked++;
            if (!(rel <= tol)) {
                char who[256];
                const tn_tensor *t = p->pos >= 0 ? p->t : inputs[-1 - p->pos];
                int64_t c = consumers(first, n_nodes, t, who, sizeof who);
                res->found = true;
                res->position = c;
                snprintf(res->op, sizeof res->op, "%s",
                         c >= 0 ? tn_tensor_op_name(tn_tape_node(first, (size_t)c)) : "?");
                res->tensor = p->pos >= 0 ? p->pos : -1;
                res->input = p->pos >= 0 ? -1 : (int)(-1 - p->pos);
                res->index = p->idx[s];
                res->analytic = ana;
                res->numeric = num;
                char what[96];
                if (p->pos >= 0)
                    snprintf(what, sizeof what, "the result of '%s' (position %lld)",
                             tn_tensor_op_name(t), (long long)p->pos);
                else
                    snprintf(what, sizeof what, "input %d", res->input);
                snprintf(res->message, sizeof res->message,
                         "the backward of %s is wrong: the gradient it gives %s, element %lld, "
                         "is %.10g, central differences give %.10g",
                         c >= 0 ? who : "the op that made the output", what, (long long)res->index,
                         ana, num);
            }
        }
    }
done:
    for (int k = 0; k < n_inputs; k++)
        if (inputs[k])
            tn_tensor_zero_grad(inputs[k]);
    free(ps);
    tn_tape_free(tp);
    tn_tape_free(first);
    return st;
}
