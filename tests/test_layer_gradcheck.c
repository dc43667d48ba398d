/* tests/test_layer_gradcheck.c - float64 gradient checks of the layers
 * (central differences through the whole tape: BPTT included; tn_rnn also
 * with its residual and LayerNorm options), and truncated BPTT.
 *
 * Tolerance: max relative error 1e-6. Each check differentiates a
 * composition of a few hundred smooth ops; with eps = 1e-6 the central
 * difference error is O(eps^2 * f''') ~ 1e-10 plus rounding
 * ~ 1e-16 / 1e-6 = 1e-10 relative per element, so 1e-6 is a wide margin
 * that still catches any wrong term (those give errors of order 1). ReLU
 * cells are checked with inputs whose pre-activations stay away from 0
 * (asserted by the seed; a kink would show as a large error).
 *
 * With tn_rnn's LayerNorm option the tolerance is 1e-5: the normalised
 * outputs are O(1) (not squashed into (-1, 1)), so the checked scalar is
 * larger and the rounding part of the central difference, ~1e-16 |L| / eps,
 * reaches ~5e-9 absolute, 5e-7 relative to the gradient floor 1e-2
 * (measured <= 3.7e-7, too close to 1e-6 to be robust across kernel paths);
 * a wrong term still gives errors of order one. */
#include "check.h"

#include "tensor/tensor.h"

#include <stdlib.h>

typedef struct cfg {
    tn_cell cell;
    int layers;
    bool bidir, with_h0, with_len;
    bool residual, layer_norm; /* tn_rnn_opts */
    bool ln_gates;             /* tn_rnn_opts: the layer-norm LSTM */
} cfg;

typedef struct ctx {
    const cfg *c;
    tn_rnn m;
    int32_t lengths[3];
} ctx;

enum { B = 3, T = 4, I = 3, H = 3 };
#define TOL      1e-6 /* max relative error of the check */
#define TOL_NORM 1e-5 /* with LayerNorm between the layers (see above) */

/* Flatten output, h_n (and c_n) into one vector. */
static tn_tensor *f_rnn(tn_tape *tp, tn_tensor *const *in, void *p)
{
    ctx *cx = p;
    tn_rnn_out o;
    tn_tensor *h0 = cx->c->with_h0 ? in[1] : NULL;
    tn_tensor *c0 = cx->c->with_h0 && cx->c->cell == TN_CELL_LSTM ? in[2] : NULL;
    if (tn_rnn_forward(tp, &cx->m, in[0], h0, c0, cx->c->with_len ? cx->lengths : NULL, &o))
        return NULL;
    tn_tensor *parts[3] = {tn_reshape(tp, o.output, 1, (int64_t[]){-1}),
                           tn_reshape(tp, o.h_n, 1, (int64_t[]){-1}),
                           o.c_n ? tn_reshape(tp, o.c_n, 1, (int64_t[]){-1}) : NULL};
    return tn_concat(tp, o.c_n ? 3 : 2, parts, 0);
}

static void check_config(const cfg *c)
{
    tn_params ps;
    tn_params_init(&ps);
    tn_rng r;
    tn_rng_seed(&r, 11 + (uint64_t)c->cell * 7 + (uint64_t)c->layers);
    ctx cx = {.c = c, .lengths = {4, 2, 3}};
    tn_rnn_opts o = tn_rnn_defaults();
    o.cell = c->cell;
    o.input_size = I;
    o.hidden = H;
    o.layers = c->layers;
    o.bidirectional = c->bidir;
    o.residual = c->residual;
    o.layer_norm = c->layer_norm;
    o.ln_gates = c->ln_gates;
    CHECK(tn_rnn_init_ex(&cx.m, &ps, "rnn", &o, TN_F64, &r) == TN_OK);
    /* LayerNorm weights off their ones and zeros, so the affine terms count */
    for (int l = 0; c->layer_norm && l < c->layers; l++) {
        tn_tensor_uniform(cx.m.norm[l].weight, &r, 0.5, 1.5);
        tn_tensor_uniform(cx.m.norm[l].bias, &r, -0.3, 0.3);
    }
    for (int k = 0; c->ln_gates && k < c->layers * (c->bidir ? 2 : 1); k++) {
        tn_layernorm *ln[3] = {&cx.m.ln_ih[k], &cx.m.ln_hh[k], &cx.m.ln_c[k]};
        for (int j = 0; j < 3; j++) {
            tn_tensor_uniform(ln[j]->weight, &r, 0.5, 1.5);
            tn_tensor_uniform(ln[j]->bias, &r, -0.3, 0.3);
        }
    }
    int D = c->bidir ? 2 : 1;
    tn_tensor *x = tn_tensor_new(TN_F64, 3, (int64_t[]){B, T, I});
    tn_tensor *h0 = tn_tensor_new(TN_F64, 3, (int64_t[]){c->layers * D, B, H});
    tn_tensor *c0 = tn_tensor_new(TN_F64, 3, (int64_t[]){c->layers * D, B, H});
    tn_tensor_uniform(x, &r, -1, 1);
    tn_tensor_uniform(h0, &r, -0.5, 0.5);
    tn_tensor_uniform(c0, &r, -0.5, 0.5);
    tn_tensor_set_requires_grad(x, true);
    tn_tensor_set_requires_grad(h0, c->with_h0);
    tn_tensor_set_requires_grad(c0, c->with_h0 && c->cell == TN_CELL_LSTM);
    int n = 3 + ps.n;
    tn_tensor **in = malloc((size_t)n * sizeof *in);
    in[0] = x, in[1] = h0, in[2] = c0;
    for (int i = 0; i < ps.n; i++)
        in[3 + i] = ps.items[i].t;
    tn_gradcheck_result res;
    tn_status st = tn_gradcheck(f_rnn, &cx, n, in, 1e-6, &res);
    char name[128];
    snprintf(name, sizeof name, "%s layers=%d %s%s%s%s%s%s", tn_cell_name(c->cell), c->layers,
             c->bidir ? "bidirectional" : "unidirectional", c->with_h0 ? " h0" : "",
             c->with_len ? " lengths" : "", c->residual ? " residual" : "",
             c->layer_norm ? " layer_norm" : "", c->ln_gates ? " ln_gates" : "");
    printf("%-60s checked %5lld  max rel %.3g  max abs %.3g\n", name, (long long)res.n_checked,
           res.max_rel_err, res.max_abs_err);
    double tol = c->layer_norm || c->ln_gates ? TOL_NORM : TOL;
    CHECK(st == TN_OK);
    CHECK(res.max_rel_err <= tol);
    if (res.max_rel_err > tol)
        fprintf(stderr, "  worst: input %d index %lld analytic %.12g numeric %.12g\n",
                res.worst_input, (long long)res.worst_index, res.worst_analytic, res.worst_numeric);
    free(in);
    tn_tensor_free(x);
    tn_tensor_free(h0);
    tn_tensor_free(c0);
    tn_params_free(&ps);
}

/* Single-step cells: h' (and c') from x, h, c. */
typedef struct cell_ctx {
    tn_rnn_cell cell;
} cell_ctx;

static tn_tensor *f_cell(tn_tape *tp, tn_tensor *const *in, void *p)
{
    cell_ctx *cx = p;
    tn_tensor *c2 = NULL;
    tn_tensor *h2 = tn_rnn_cell_forward(tp, &cx->cell, in[0], in[1],
                                        cx->cell.cell == TN_CELL_LSTM ? in[2] : NULL, &c2);
    return c2 ? tn_concat(tp, 2, (tn_tensor *[]){h2, c2}, 1) : h2;
}

static void check_cell(tn_cell kind)
{
    tn_params ps;
    tn_params_init(&ps);
    tn_rng r;
    tn_rng_seed(&r, 5);
    cell_ctx cx;
    CHECK(tn_rnn_cell_init(&cx.cell, &ps, "", kind, I, H, TN_F64, &r) == TN_OK);
    tn_tensor *x = tn_tensor_new(TN_F64, 2, (int64_t[]){B, I});
    tn_tensor *h = tn_tensor_new(TN_F64, 2, (int64_t[]){B, H});
    tn_tensor *c = tn_tensor_new(TN_F64, 2, (int64_t[]){B, H});
    tn_tensor *in[7] = {x, h, c};
    for (int i = 0; i < 3; i++) {
        tn_tensor_uniform(in[i], &r, -1, 1);
        tn_tensor_set_requires_grad(in[i], i < 2 || kind == TN_CELL_LSTM);
    }
    for (int i = 0; i < ps.n; i++)
        in[3 + i] = ps.items[i].t;
    tn_gradcheck_result res;
    CHECK(tn_gradcheck(f_cell, &cx, 3 + ps.n, in, 1e-6, &res) == TN_OK);
    printf("%-44s checked %5lld  max rel %.3g\n", tn_cell_name(kind), (long long)res.n_checked,
           res.max_rel_err);
    CHECK(res.max_rel_err <= 1e-6);
    for (int i = 0; i < 3; i++)
        tn_tensor_free(in[i]);
    tn_params_free(&ps);
}

/* Truncated BPTT: two chunks; the second starts from the first's final
 * state detached. Gradients w.r.t. the first chunk's input are zero (the
 * cut), and w.r.t. the second chunk's input equal full BPTT's for a loss on
 * the second chunk only (inside the window nothing differs). */
static void check_tbptt(tn_cell kind)
{
    tn_params ps;
    tn_params_init(&ps);
    tn_rng r;
    tn_rng_seed(&r, 9);
    tn_rnn m;
    tn_rnn_init(&m, &ps, "rnn", kind, I, H, 2, false, 0.0, TN_F64, &r);
    tn_tensor *x1 = tn_tensor_new(TN_F64, 3, (int64_t[]){B, T, I});
    tn_tensor *x2 = tn_tensor_new(TN_F64, 3, (int64_t[]){B, T, I});
    tn_tensor_uniform(x1, &r, -1, 1);
    tn_tensor_uniform(x2, &r, -1, 1);
    tn_tensor_set_requires_grad(x1, true);
    tn_tensor_set_requires_grad(x2, true);
    tn_tensor *w = tn_tensor_new(TN_F64, 3, (int64_t[]){B, T, H});
    tn_tensor_uniform(w, &r, -1, 1);
    double full_dx2[B * T * I], full_dx1_norm = 0;
    for (int pass = 0; pass < 2; pass++) { /* 0: full BPTT, 1: truncated */
        tn_tape *tp = tn_tape_new();
        tn_rnn_out o1, o2;
        tn_rnn_forward(tp, &m, x1, NULL, NULL, NULL, &o1);
        tn_tensor *h = o1.h_n, *c = o1.c_n;
        if (pass == 1) {
            h = tn_detach(tp, h);
            c = c ? tn_detach(tp, c) : NULL;
        }
        tn_rnn_forward(tp, &m, x2, h, c, NULL, &o2);
        tn_tensor *loss = tn_sum(tp, tn_mul(tp, o2.output, w));
        CHECK(tn_backward(tp, loss) == TN_OK);
        if (pass == 0) {
            for (int i = 0; i < B * T * I; i++) {
                full_dx2[i] = tn_tensor_grad_get(x2, i);
                full_dx1_norm += fabs(tn_tensor_grad_get(x1, i));
            }
        } else {
            double cut = 0, maxdiff = 0;
            for (int i = 0; i < B * T * I; i++) {
                cut += fabs(tn_tensor_grad_get(x1, i));
                maxdiff = fmax(maxdiff, fabs(tn_tensor_grad_get(x2, i) - full_dx2[i]));
            }
            CHECK(full_dx1_norm > 1e-3); /* full BPTT does reach chunk 1 */
            CHECK(cut == 0.0);           /* truncated does not */
            /* identical op sequence inside the window: equal to the last bit */
            CHECK(maxdiff == 0.0);
            printf("tbptt %-8s full |dx1| %.4g, truncated |dx1| %g, max |dx2 diff| %g\n",
                   tn_cell_name(kind), full_dx1_norm, cut, maxdiff);
        }
        tn_tensor_zero_grad(x1);
        tn_tensor_zero_grad(x2);
        tn_params_zero_grad(&ps);
        tn_tape_free(tp);
    }
    tn_tensor_free(x1);
    tn_tensor_free(x2);
    tn_tensor_free(w);
    tn_params_free(&ps);
}

int main(void)
{
    tn_set_num_threads(1);
    const tn_cell cells[4] = {TN_CELL_RNN_TANH, TN_CELL_RNN_RELU, TN_CELL_LSTM, TN_CELL_GRU};
    /* per cell: every axis varied at least once */
    const cfg shapes[4] = {
        {0, 1, false, false, false, false, false, false},
        {0, 2, true, true, false, false, false, false},
        {0, 1, true, false, true, false, false, false},
        {0, 2, false, true, true, false, false, false},
    };
    for (int ci = 0; ci < 4; ci++)
        for (int s = 0; s < 4; s++) {
            cfg c = shapes[s];
            c.cell = cells[ci];
            check_config(&c);
        }
    /* residual connections and LayerNorm between the layers (tn_rnn_opts):
     * each option alone and both, LSTM and GRU, 2-3 layers, bidirectional,
     * initial states and lengths (the output mask after the last norm) once */
    const cfg opts[6] = {
        {TN_CELL_LSTM, 3, false, false, false, true, false, false},
        {TN_CELL_GRU, 3, false, false, false, true, false, false},
        {TN_CELL_LSTM, 2, false, false, true, false, true, false},
        {TN_CELL_GRU, 2, false, true, false, false, true, false},
        {TN_CELL_LSTM, 2, true, true, true, true, true, false},
        {TN_CELL_GRU, 3, false, false, true, true, true, false},
    };
    for (int k = 0; k < 6; k++)
        check_config(&opts[k]);
    /* the layer-norm LSTM: one layer; two bidirectional layers with initial
     * states, lengths and the other two options */
    const cfg ln[2] = {
        {TN_CELL_LSTM, 1, false, false, false, false, false, true},
        {TN_CELL_LSTM, 2, true, true, true, true, true, true},
    };
    for (int k = 0; k < 2; k++)
        check_config(&ln[k]);
    for (int ci = 0; ci < 4; ci++)
        check_cell(cells[ci]);
    for (int ci = 0; ci < 4; ci++)
        check_tbptt(cells[ci]);
    return check_report("test_layer_gradcheck");
}
