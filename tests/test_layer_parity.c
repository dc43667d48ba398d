/* tests/test_layer_parity.c - the sequence layers against PyTorch.
 *
 * Every fixture tests/fixtures/layer_<name>.bin (written by
 * tests/gen_layer_fixtures.py with torch in float64; format in
 * tests/fixture.h) describes one configuration in its meta.* scalars and
 * holds the inputs, every parameter under its PyTorch name, the outputs and
 * the gradients of L = sum(output * wo) + sum(h_n * wh) [+ sum(c_n * wc)]
 * (cells: h_out/c_out; Linear, Embedding: sum(y * wy)). The fixtures
 * layer_resid_<name>.bin (tests/gen_resid_fixtures.py) do the same for
 * tn_rnn's residual and LayerNorm options (meta.residual, meta.layer_norm)
 * against a model of single-layer PyTorch modules, residual adds and
 * nn.LayerNorm (its norm_l{l}.weight/bias among the parameters, their
 * gradients compared too); same tolerances: a LayerNorm adds a few dozen
 * roundings per row (mean, variance, rsqrt, affine) to each layer, forward
 * and backward, of the same order as a gate's (measured f32: <= 1.7e-6
 * scaled for the 3-layer LSTM with both options). For each fixture
 * and each dtype the test builds the layer under the prefix "m", overwrites
 * the parameters by name, runs forward on a tape, forms the same loss with
 * ops, calls tn_backward and compares outputs and all gradients.
 *
 * Error measure, per tensor: max_i |got_i - want_i| / max(1, max_i |want_i|)
 * (absolute for values of order one, relative for larger ones; the fixture
 * values reach ~20 in the T=50 gradients).
 *
 * Tolerances:
 *   float64 1e-10: both sides evaluate the same formulas in double; they
 *     differ only in summation order (BLIS vs MKL/OpenBLAS blocking) and in
 *     libm's last bit of tanh/exp, ~1e-16 per operation, amplified by at
 *     most the few hundred dependent operations of a T=50 forward+backward:
 *     ~1e-13 expected (measured: <= 1.2e-15). 1e-10 keeps a wide margin,
 *     while any formula or layout error (gate order, b_hn, reverse
 *     direction, lengths) gives errors of 1e-3 or more.
 *   float32 1e-5 for T <= 7, 5e-5 for T = 50: the run rounds inputs and
 *     parameters to float (unit roundoff u = 6e-8) and every GEMM dot
 *     product (length <= I + H) and gate function adds a few u per step. Over
 *     <= 2 layers x 2 directions x 7 steps forward and backward with O(1)
 *     values that is ~1e-6 expected (measured: <= 6.5e-7); 1e-5 leaves a
 *     15x margin. At T = 50 the per-step errors add up over 50 steps
 *     through the recurrence in both passes (~10x the short runs' bound in
 *     the worst case of no contraction; measured: <= 4.4e-7, as the
 *     recurrences here contract), so 5e-5.
 * A real formula error in float32 (wrong gate, missing bias) shows as 1e-3
 * or more, far above both.
 */
#include <stdlib.h>

#include "check.h"
#include "fixture.h"
#include "tensor/nn.h"

#define PREFIX      "m"
#define TOL64       1e-10
#define TOL32_SHORT 1e-5
#define TOL32_LONG  5e-5

enum { KIND_SEQ = 0, KIND_CELL = 1, KIND_LINEAR = 2, KIND_EMBEDDING = 3 };

/* The fixture matrix of issue 3: listed so that a missing file fails. */
static const char *const CELLS[] = {"rnn_tanh", "rnn_relu", "lstm", "gru"};
static const char *const SEQ_CONFIGS[] = {"l1",  "l2",     "bi",          "l2bi_h0",
                                          "len", "bi_len", "l2bi_h0_len", "t1",
                                          "b1",  "b7",     "b7_bi_len",   "t50"};
/* tn_rnn's residual / LayerNorm options against per-layer PyTorch modules,
 * and the layer-norm LSTM (ln_gates) against a step-by-step PyTorch one
 * (layer_resid_<name>.bin from tests/gen_resid_fixtures.py). */
static const char *const RESID[] = {
    "lstm_l3_res",          "gru_l3_res",    "lstm_l2_ln",           "gru_l2_ln",
    "lstm_l3_res_ln",       "gru_l3_res_ln", "lstm_l2bi_res_ln_h0",  "gru_l3_res_ln_len",
    "lstm_l2bi_res_ln_len", "lstm_lngates",  "lstm_l2bi_lngates_h0", "lstm_l2bi_lngates_len"};
static const char *const OTHER[] = {"cell_rnn_tanh", "cell_rnn_relu", "cell_lstm",    "cell_gru",
                                    "linear_bias",   "linear_nobias", "embedding_pad"};

#define NELEM(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* Largest errors over the whole run, per dtype (0 = f32, 1 = f64). */
static double worst_norm[2], worst_abs[2];
static char worst_where[2][160];

typedef struct run {
    const char *fixture;
    const fixture *fx;
    tn_dtype dt;
    double tol;
    double max_norm, max_abs; /* over this run */
    tn_tensor *heap[16];      /* inputs and loss weights to free */
    int n_heap;
} run;

static double meta(const fixture *fx, const char *name)
{
    const fixture_tensor *t = fixture_get(fx, name);
    return t && t->numel == 1 ? t->data[0] : -1;
}

/* Fixture entry name; a missing one fails a check. */
static const fixture_tensor *need(const run *r, const char *name)
{
    const fixture_tensor *f = fixture_get(r->fx, name);
    if (!f)
        fprintf(stderr, "%s: fixture has no \"%s\"\n", r->fixture, name);
    CHECK(f != NULL);
    return f;
}

/* Heap tensor of dtype r->dt from fixture entry name (I32 for ids), with
 * requires_grad when grad is set; NULL (and a failed check) if absent. */
static tn_tensor *input(run *r, const char *name, tn_dtype dt, bool grad)
{
    const fixture_tensor *f = need(r, name);
    if (!f || f->ndim < 1 || f->ndim > TN_MAX_DIMS || r->n_heap == NELEM(r->heap))
        return NULL;
    tn_tensor *t = tn_tensor_new(dt, f->ndim, f->shape);
    if (!t)
        return NULL;
    r->heap[r->n_heap++] = t;
    for (int64_t i = 0; i < f->numel; i++)
        tn_tensor_set(t, i, f->data[i]);
    if (grad)
        tn_tensor_set_requires_grad(t, true);
    return t;
}

/* Compare t's values (or gradient) with fixture entry name. */
static void compare(run *r, const tn_tensor *t, bool grad, const char *name)
{
    const fixture_tensor *f = need(r, name);
    CHECK(t != NULL);
    if (!f || !t)
        return;
    if (!fixture_shape_is(f, t->ndim, t->shape)) {
        char buf[64];
        fprintf(stderr, "%s %s: %s has shape %s, fixture differs\n", r->fixture,
                tn_dtype_name(r->dt), name, tn_shape_str(t, buf, sizeof buf));
        CHECK(0);
        return;
    }
    double scale = 1, diff = 0;
    for (int64_t i = 0; i < f->numel; i++)
        scale = fmax(scale, fabs(f->data[i]));
    for (int64_t i = 0; i < f->numel; i++) {
        double got = grad ? tn_tensor_grad_get(t, i) : tn_tensor_get(t, i);
        double d = fabs(got - f->data[i]);
        diff = d > diff || isnan(d) ? d : diff;
    }
    double norm = diff / scale;
    if (!(norm <= r->tol))
        fprintf(stderr, "%s %s: %s max error %.3g (scaled %.3g) > tol %g\n", r->fixture,
                tn_dtype_name(r->dt), name, diff, norm, r->tol);
    CHECK(norm <= r->tol);
    r->max_abs = fmax(r->max_abs, diff);
    r->max_norm = fmax(r->max_norm, norm);
    int k = r->dt == TN_F64;
    if (norm > worst_norm[k]) {
        worst_norm[k] = norm;
        snprintf(worst_where[k], sizeof worst_where[k], "%s: %s", r->fixture, name);
    }
    worst_abs[k] = fmax(worst_abs[k], diff);
}

static bool is_input_grad(const char *name)
{
    static const char *const in[] = {"x", "h0", "c0", "h", "c"};
    for (int i = 0; i < NELEM(in); i++)
        if (strcmp(name, in[i]) == 0)
            return true;
    return false;
}

/* Overwrite every parameter of ps from the fixture (PyTorch name without the
 * prefix) and check that the fixture has no parameter gradient that the
 * layer lacks: the two name sets are equal. */
static void load_params(run *r, tn_params *ps)
{
    for (int i = 0; i < ps->n; i++) {
        const char *full = ps->items[i].name;
        CHECK(strncmp(full, PREFIX ".", 2) == 0);
        const fixture_tensor *f = fixture_get(r->fx, full + 2);
        tn_tensor *t = ps->items[i].t;
        if (!f || !fixture_shape_is(f, t->ndim, t->shape)) {
            fprintf(stderr, "%s: parameter %s missing from the fixture or shaped differently\n",
                    r->fixture, full);
            CHECK(0);
            continue;
        }
        for (int64_t j = 0; j < f->numel; j++)
            tn_tensor_set(t, j, f->data[j]);
    }
    for (int i = 0; i < r->fx->count; i++) {
        const char *name = r->fx->items[i].name;
        if (strncmp(name, "grad.", 5) != 0 || is_input_grad(name + 5))
            continue;
        char full[TN_NAME_MAX];
        snprintf(full, sizeof full, PREFIX ".%s", name + 5);
        if (!tn_params_get(ps, full)) {
            fprintf(stderr, "%s: fixture parameter %s not created by the layer\n", r->fixture,
                    name + 5);
            CHECK(0);
        }
    }
}

/* loss + sum(y * w), w from the fixture entry wname (loss NULL: start). */
static tn_tensor *add_term(tn_tape *tp, run *r, tn_tensor *loss, tn_tensor *y, const char *wname)
{
    tn_tensor *w = input(r, wname, r->dt, false);
    tn_tensor *s = tn_sum(tp, tn_mul(tp, y, w));
    return loss ? tn_add(tp, loss, s) : s;
}

static void compare_param_grads(run *r, const tn_params *ps)
{
    char name[TN_NAME_MAX + 8];
    for (int i = 0; i < ps->n; i++) {
        snprintf(name, sizeof name, "grad.%s", ps->items[i].name + 2);
        compare(r, ps->items[i].t, true, name);
    }
}

static void run_seq(run *r, tn_tape *tp, tn_params *ps, tn_rng *rng)
{
    const fixture *fx = r->fx;
    tn_cell cell = (tn_cell)meta(fx, "meta.cell");
    tn_rnn m;
    tn_rnn_opts o = tn_rnn_defaults();
    o.cell = cell;
    o.input_size = (int64_t)meta(fx, "meta.input_size");
    o.hidden = (int64_t)meta(fx, "meta.hidden");
    o.layers = (int)meta(fx, "meta.layers");
    o.bidirectional = meta(fx, "meta.bidirectional") == 1;
    o.residual = meta(fx, "meta.residual") == 1; /* absent (-1) in the plain fixtures */
    o.layer_norm = meta(fx, "meta.layer_norm") == 1;
    o.ln_gates = meta(fx, "meta.ln_gates") == 1;
    tn_status st = tn_rnn_init_ex(&m, ps, PREFIX, &o, r->dt, rng);
    CHECK(st == TN_OK);
    if (st != TN_OK)
        return;
    load_params(r, ps);
    tn_tensor *x = input(r, "x", r->dt, true);
    tn_tensor *h0 = fixture_get(fx, "h0") ? input(r, "h0", r->dt, true) : NULL;
    tn_tensor *c0 = fixture_get(fx, "c0") ? input(r, "c0", r->dt, true) : NULL;
    const fixture_tensor *lf = fixture_get(fx, "lengths");
    int32_t lengths[64];
    if (lf) {
        CHECK(lf->numel <= 64);
        for (int64_t b = 0; b < lf->numel && b < 64; b++)
            lengths[b] = (int32_t)lf->data[b];
    }
    tn_rnn_out out;
    st = tn_rnn_forward(tp, &m, x, h0, c0, lf ? lengths : NULL, &out);
    CHECK(st == TN_OK);
    if (st != TN_OK) {
        fprintf(stderr, "%s: %s\n", r->fixture, tn_tape_error(tp));
        return;
    }
    tn_tensor *loss = add_term(tp, r, NULL, out.output, "wo");
    loss = add_term(tp, r, loss, out.h_n, "wh");
    if (cell == TN_CELL_LSTM)
        loss = add_term(tp, r, loss, out.c_n, "wc");
    CHECK(tn_backward(tp, loss) == TN_OK);

    compare(r, out.output, false, "output");
    compare(r, out.h_n, false, "h_n");
    if (cell == TN_CELL_LSTM)
        compare(r, out.c_n, false, "c_n");
    else
        CHECK(out.c_n == NULL);
    compare(r, x, true, "grad.x");
    if (h0)
        compare(r, h0, true, "grad.h0");
    if (c0)
        compare(r, c0, true, "grad.c0");
    compare_param_grads(r, ps);

    /* Past a sequence's end the output is exactly zero, not merely small. */
    if (lf && out.output) {
        int64_t B = out.output->shape[0], T = out.output->shape[1], DH = out.output->shape[2];
        int nonzero = 0;
        for (int64_t b = 0; b < B && b < 64; b++)
            for (int64_t t = lengths[b]; t < T; t++)
                for (int64_t j = 0; j < DH; j++)
                    nonzero += tn_tensor_get(out.output, (b * T + t) * DH + j) != 0;
        CHECK(nonzero == 0);
    }
}

static void run_cell(run *r, tn_tape *tp, tn_params *ps, tn_rng *rng)
{
    const fixture *fx = r->fx;
    tn_cell cell = (tn_cell)meta(fx, "meta.cell");
    tn_rnn_cell c;
    tn_status st = tn_rnn_cell_init(&c, ps, PREFIX, cell, (int64_t)meta(fx, "meta.input_size"),
                                    (int64_t)meta(fx, "meta.hidden"), r->dt, rng);
    CHECK(st == TN_OK);
    if (st != TN_OK)
        return;
    load_params(r, ps);
    tn_tensor *x = input(r, "x", r->dt, true);
    tn_tensor *h = input(r, "h", r->dt, true);
    tn_tensor *cs = cell == TN_CELL_LSTM ? input(r, "c", r->dt, true) : NULL;
    tn_tensor *c_out = NULL;
    tn_tensor *h_out = tn_rnn_cell_forward(tp, &c, x, h, cs, &c_out);
    CHECK(h_out != NULL);
    if (!h_out) {
        fprintf(stderr, "%s: %s\n", r->fixture, tn_tape_error(tp));
        return;
    }
    tn_tensor *loss = add_term(tp, r, NULL, h_out, "wh");
    if (cell == TN_CELL_LSTM)
        loss = add_term(tp, r, loss, c_out, "wc");
    CHECK(tn_backward(tp, loss) == TN_OK);
    compare(r, h_out, false, "h_out");
    if (cell == TN_CELL_LSTM)
        compare(r, c_out, false, "c_out");
    compare(r, x, true, "grad.x");
    compare(r, h, true, "grad.h");
    if (cs)
        compare(r, cs, true, "grad.c");
    compare_param_grads(r, ps);
}

static void run_linear(run *r, tn_tape *tp, tn_params *ps, tn_rng *rng)
{
    const fixture *fx = r->fx;
    tn_linear l;
    tn_status st =
        tn_linear_init(&l, ps, PREFIX, (int64_t)meta(fx, "meta.in"), (int64_t)meta(fx, "meta.out"),
                       meta(fx, "meta.bias") == 1, r->dt, rng);
    CHECK(st == TN_OK);
    if (st != TN_OK)
        return;
    load_params(r, ps);
    tn_tensor *x = input(r, "x", r->dt, true);
    tn_tensor *y = tn_linear_forward(tp, &l, x);
    tn_tensor *loss = add_term(tp, r, NULL, y, "wy");
    CHECK(tn_backward(tp, loss) == TN_OK);
    compare(r, y, false, "y");
    compare(r, x, true, "grad.x");
    compare_param_grads(r, ps);
}

static void run_embedding(run *r, tn_tape *tp, tn_params *ps, tn_rng *rng)
{
    const fixture *fx = r->fx;
    tn_embedding e;
    int64_t pad = (int64_t)meta(fx, "meta.padding_idx");
    tn_status st = tn_embedding_init(&e, ps, PREFIX, (int64_t)meta(fx, "meta.num"),
                                     (int64_t)meta(fx, "meta.dim"), pad, r->dt, rng);
    CHECK(st == TN_OK);
    if (st != TN_OK)
        return;
    /* The padding row starts at zero, as PyTorch's. */
    for (int64_t j = 0; j < e.dim; j++)
        CHECK(tn_tensor_get(e.weight, pad * e.dim + j) == 0);
    load_params(r, ps);
    tn_tensor *ids = input(r, "ids", TN_I32, false);
    tn_tensor *y = tn_embedding_forward(tp, &e, ids);
    tn_tensor *loss = add_term(tp, r, NULL, y, "wy");
    CHECK(tn_backward(tp, loss) == TN_OK);
    compare(r, y, false, "y");
    compare_param_grads(r, ps);
    for (int64_t j = 0; j < e.dim; j++)
        CHECK(tn_tensor_grad_get(e.weight, pad * e.dim + j) == 0);
}

/* One fixture in one dtype; returns false if the file could not be read. */
static bool run_fixture(const char *dir, const char *name, tn_dtype dt, double *norm, double *abs_)
{
    char file[256], path[1024];
    snprintf(file, sizeof file, "layer_%s.bin", name);
    fixture fx;
    if (!fixture_path(path, sizeof path, dir, file)) {
        fprintf(stderr, "%s/%s: path too long\n", dir, file);
        CHECK(0);
        return false;
    }
    if (fixture_load(&fx, path) != 0) {
        fprintf(stderr, "%s\n", fx.error);
        CHECK(0);
        return false;
    }
    run r = {.fixture = name, .fx = &fx, .dt = dt};
    r.tol = dt == TN_F64 ? TOL64 : meta(&fx, "meta.seq_len") > 7 ? TOL32_LONG : TOL32_SHORT;
    tn_params ps;
    tn_params_init(&ps);
    tn_tape *tp = tn_tape_new();
    tn_rng rng;
    tn_rng_seed(&rng, 7);
    switch ((int)meta(&fx, "meta.kind")) {
    case KIND_SEQ: run_seq(&r, tp, &ps, &rng); break;
    case KIND_CELL: run_cell(&r, tp, &ps, &rng); break;
    case KIND_LINEAR: run_linear(&r, tp, &ps, &rng); break;
    case KIND_EMBEDDING: run_embedding(&r, tp, &ps, &rng); break;
    default: fprintf(stderr, "%s: unknown meta.kind\n", name); CHECK(0);
    }
    tn_tape_free(tp);
    for (int i = 0; i < r.n_heap; i++)
        tn_tensor_free(r.heap[i]);
    tn_params_free(&ps);
    fixture_free(&fx);
    *norm = r.max_norm;
    *abs_ = r.max_abs;
    return true;
}

static void run_one(const char *dir, const char *name)
{
    double n64 = 0, a64 = 0, n32 = 0, a32 = 0;
    if (!run_fixture(dir, name, TN_F64, &n64, &a64))
        return;
    run_fixture(dir, name, TN_F32, &n32, &a32);
    printf("%-28s f64 max abs %.2e (scaled %.2e)   f32 max abs %.2e (scaled %.2e)\n", name, a64,
           n64, a32, n32);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* keep the report in order with stderr */
    const char *dir = fixture_dir();
    if (!dir) {
        printf("test_layer_parity: TN_FIXTURES is not an existing directory, skipping\n");
        return 77;
    }
    char name[64];
    for (int c = 0; c < NELEM(CELLS); c++)
        for (int k = 0; k < NELEM(SEQ_CONFIGS); k++) {
            snprintf(name, sizeof name, "%s_%s", CELLS[c], SEQ_CONFIGS[k]);
            run_one(dir, name);
        }
    for (int k = 0; k < NELEM(OTHER); k++)
        run_one(dir, OTHER[k]);
    for (int k = 0; k < NELEM(RESID); k++) {
        snprintf(name, sizeof name, "resid_%s", RESID[k]);
        run_one(dir, name);
    }
    printf("largest error f64: %.3e abs, %.3e scaled (%s), tol %g\n", worst_abs[1], worst_norm[1],
           worst_where[1], TOL64);
    printf("largest error f32: %.3e abs, %.3e scaled (%s), tol %g / %g (T=50)\n", worst_abs[0],
           worst_norm[0], worst_where[0], TOL32_SHORT, TOL32_LONG);
    return check_report("test_layer_parity");
}
