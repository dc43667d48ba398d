/* tests/test_rnn_opts.c - tn_rnn_init_ex's options besides the numerics
 * (those are in test_layer_gradcheck and test_layer_parity):
 *   - the Xavier / orthogonal initialisation: every gate block of every
 *     weight_hh has W W^T = I (max |W W^T - I| <= 1e-5 in float32, whose
 *     storage rounding is ~6e-8 per element, summed over H = 16 products),
 *     weight_ih inside the Xavier bound and filling it, zero biases;
 *   - the defaults: tn_rnn_init and tn_rnn_init_ex(tn_rnn_defaults()) make
 *     the same parameters bit for bit, and residual with one layer changes
 *     no output bit;
 *   - LayerNorm parameters: names, shapes, ones and zeros;
 *   - bad options: TN_ERR_ARG naming the function and the option. */
#include "check.h"

#include "tensor/tensor.h"

enum { I = 5, H = 16, B = 2, T = 3 };

static tn_rnn_opts opts(tn_cell cell, int layers, bool bidir)
{
    tn_rnn_opts o = tn_rnn_defaults();
    o.cell = cell;
    o.input_size = I;
    o.hidden = H;
    o.layers = layers;
    o.bidirectional = bidir;
    return o;
}

/* max |W W^T - I| over the [H, H] gate block g of w ([G*H, H]). */
static double block_orthogonality(const tn_tensor *w, int64_t g)
{
    double worst = 0;
    for (int64_t i = 0; i < H; i++)
        for (int64_t j = 0; j < H; j++) {
            double dot = 0;
            for (int64_t k = 0; k < H; k++)
                dot +=
                    tn_tensor_get(w, (g * H + i) * H + k) * tn_tensor_get(w, (g * H + j) * H + k);
            worst = fmax(worst, fabs(dot - (i == j)));
        }
    return worst;
}

static void check_xavier_orthogonal(tn_cell cell, int layers, bool bidir)
{
    tn_params ps;
    tn_params_init(&ps);
    tn_rng r;
    tn_rng_seed(&r, 3);
    tn_rnn m;
    tn_rnn_opts o = opts(cell, layers, bidir);
    o.init = TN_RNN_INIT_XAVIER_ORTHOGONAL;
    CHECK(tn_rnn_init_ex(&m, &ps, "rnn", &o, TN_F32, &r) == TN_OK);
    int D = bidir ? 2 : 1, G = tn_cell_gates(cell);
    double orth = 0, ih_max = 0, ih_ratio = 1e9, bias_max = 0;
    for (int k = 0; k < layers * D; k++) {
        for (int g = 0; g < G; g++)
            orth = fmax(orth, block_orthogonality(m.w_hh[k], g));
        const tn_tensor *w = m.w_ih[k];
        double bound = sqrt(6.0 / (double)(w->shape[1] + w->shape[0])), top = 0;
        for (int64_t i = 0; i < tn_numel(w); i++)
            top = fmax(top, fabs(tn_tensor_get(w, i)));
        ih_max = fmax(ih_max, top / bound);
        ih_ratio = fmin(ih_ratio, top / bound);
        for (int64_t i = 0; i < G * H; i++)
            bias_max = fmax(bias_max, fmax(fabs(tn_tensor_get(m.b_ih[k], i)),
                                           fabs(tn_tensor_get(m.b_hh[k], i))));
    }
    printf("%-5s layers=%d D=%d: max |W_g W_g^T - I| %.2e, max |w_ih| / xavier bound %.3f..%.3f, "
           "max |bias| %g\n",
           tn_cell_name(cell), layers, D, orth, ih_ratio, ih_max, bias_max);
    CHECK(orth <= 1e-5);
    CHECK(ih_max <= 1.0);   /* inside U(-b, b) */
    CHECK(ih_ratio >= 0.9); /* filling it: the largest of >= 80 draws is near b */
    CHECK(bias_max == 0.0);
    tn_params_free(&ps);
}

/* tn_rnn_init == tn_rnn_init_ex with the defaults: names, order, values. */
static void check_defaults_same(void)
{
    tn_params a, b;
    tn_params_init(&a);
    tn_params_init(&b);
    tn_rng ra, rb;
    tn_rng_seed(&ra, 5);
    tn_rng_seed(&rb, 5);
    tn_rnn ma, mb;
    CHECK(tn_rnn_init(&ma, &a, "rnn", TN_CELL_GRU, I, H, 2, true, 0.25, TN_F32, &ra) == TN_OK);
    tn_rnn_opts o = opts(TN_CELL_GRU, 2, true);
    o.dropout = 0.25;
    CHECK(tn_rnn_init_ex(&mb, &b, "rnn", &o, TN_F32, &rb) == TN_OK);
    CHECK(a.n == b.n && a.n == 2 * 2 * 4);
    int differ = 0;
    for (int i = 0; i < a.n && i < b.n; i++) {
        differ += strcmp(a.items[i].name, b.items[i].name) != 0;
        for (int64_t j = 0; j < tn_numel(a.items[i].t); j++)
            differ += tn_tensor_get(a.items[i].t, j) != tn_tensor_get(b.items[i].t, j);
    }
    CHECK(differ == 0);
    CHECK(!mb.residual && !mb.layer_norm && mb.dropout == 0.25);
    tn_params_free(&a);
    tn_params_free(&b);
}

/* One layer: residual is a no-op (bit for bit); layer_norm adds
 * norm_l0.weight (ones) and norm_l0.bias (zeros) of D*H. */
static void check_one_layer(void)
{
    tn_params ps;
    tn_params_init(&ps);
    tn_rng r;
    tn_rng_seed(&r, 8);
    tn_rnn plain, res, ln;
    tn_rnn_opts o = opts(TN_CELL_LSTM, 1, true);
    CHECK(tn_rnn_init_ex(&plain, &ps, "a", &o, TN_F32, &r) == TN_OK);
    res = plain;
    res.residual = true;
    o.layer_norm = true;
    CHECK(tn_rnn_init_ex(&ln, &ps, "b", &o, TN_F32, &r) == TN_OK);
    const tn_tensor *w = tn_params_get(&ps, "b.norm_l0.weight");
    const tn_tensor *bias = tn_params_get(&ps, "b.norm_l0.bias");
    CHECK(w && bias && w == ln.norm[0].weight && bias == ln.norm[0].bias);
    CHECK(w && w->ndim == 1 && w->shape[0] == 2 * H);
    CHECK(tn_params_get(&ps, "a.norm_l0.weight") == NULL);
    int off = 0;
    for (int64_t i = 0; w && bias && i < 2 * H; i++)
        off += tn_tensor_get(w, i) != 1.0 || tn_tensor_get(bias, i) != 0.0;
    CHECK(off == 0);

    tn_tensor *x = tn_tensor_new(TN_F32, 3, (int64_t[]){B, T, I});
    tn_tensor_uniform(x, &r, -1, 1);
    tn_tape *tp = tn_tape_new();
    tn_rnn_out a, b;
    CHECK(tn_rnn_forward(tp, &plain, x, NULL, NULL, NULL, &a) == TN_OK);
    CHECK(tn_rnn_forward(tp, &res, x, NULL, NULL, NULL, &b) == TN_OK);
    int differ = 0;
    for (int64_t i = 0; i < B * T * 2 * H; i++)
        differ += tn_tensor_get(a.output, i) != tn_tensor_get(b.output, i);
    CHECK(differ == 0);
    tn_tape_free(tp);
    tn_tensor_free(x);
    tn_params_free(&ps);
}

/* o with one field changed must fail with TN_ERR_ARG naming fn and what. */
static void expect_refused(const tn_rnn_opts *o, const char *what)
{
    tn_params ps;
    tn_params_init(&ps);
    tn_rng r;
    tn_rng_seed(&r, 1);
    tn_rnn m;
    tn_clear_error();
    CHECK(tn_rnn_init_ex(&m, &ps, "rnn", o, TN_F32, &r) == TN_ERR_ARG);
    CHECK_MSG(tn_last_error(), "tn_rnn_init_ex");
    CHECK_MSG(tn_last_error(), what);
    CHECK(ps.n == 0);
    tn_params_free(&ps);
}

static void check_errors(void)
{
    tn_rnn_opts o = opts(TN_CELL_LSTM, 2, false);
    tn_rnn_opts bad = o;
    bad.layers = 0;
    expect_refused(&bad, "layers");
    bad.layers = TN_RNN_MAX_LAYERS + 1;
    expect_refused(&bad, "layers");
    bad = o;
    bad.hidden = 0;
    expect_refused(&bad, "hidden");
    bad = o;
    bad.input_size = -3;
    expect_refused(&bad, "input_size");
    bad = o;
    bad.dropout = 1.0;
    expect_refused(&bad, "dropout");
    bad.dropout = NAN;
    expect_refused(&bad, "dropout");
    bad = o;
    bad.cell = (tn_cell)17;
    expect_refused(&bad, "cell");
    bad = o;
    bad.init = (tn_rnn_init_kind)2;
    expect_refused(&bad, "init");
    bad = o;
    bad.set_forget_bias = true, bad.forget_bias = INFINITY;
    expect_refused(&bad, "forget_bias");
    bad.cell = TN_CELL_GRU, bad.forget_bias = 1;
    expect_refused(&bad, "forget_bias 1 needs an LSTM");
    bad = o;
    bad.cell = TN_CELL_GRU, bad.ln_gates = true;
    expect_refused(&bad, "ln_gates (the layer-norm LSTM) needs the LSTM cell, not gru");
    expect_refused(NULL, "NULL");

    /* the old entry point names itself */
    tn_params ps;
    tn_params_init(&ps);
    tn_rng r;
    tn_rng_seed(&r, 1);
    tn_rnn m;
    CHECK(tn_rnn_init(&m, &ps, "rnn", TN_CELL_GRU, 3, 4, 0, false, 0.0, TN_F32, &r) == TN_ERR_ARG);
    CHECK_MSG(tn_last_error(), "tn_rnn_init:");
    CHECK_MSG(tn_last_error(), "layers 0");

    /* a prefix too long for the norm's names: an error, not an abort */
    char prefix[TN_NAME_MAX + 8];
    memset(prefix, 'p', sizeof prefix - 1);
    prefix[sizeof prefix - 1] = '\0';
    o.layer_norm = true;
    CHECK(tn_rnn_init_ex(&m, &ps, prefix, &o, TN_F32, &r) != TN_OK);
    CHECK(strlen(tn_last_error()) > 0);
    tn_params_free(&ps);
}

/* forget_bias: rows H..2H of every b_ih hold it, of b_hh 0, the other
 * rows as init made them (the same draws as without the option). */
static void check_forget_bias(void)
{
    tn_params a, b;
    tn_params_init(&a), tn_params_init(&b);
    tn_rng r1, r2;
    tn_rng_seed(&r1, 4), tn_rng_seed(&r2, 4);
    tn_rnn ma, mb;
    tn_rnn_opts o = opts(TN_CELL_LSTM, 2, true);
    CHECK(tn_rnn_init_ex(&ma, &a, "rnn", &o, TN_F32, &r1) == TN_OK);
    o.set_forget_bias = true, o.forget_bias = 1.0;
    CHECK(tn_rnn_init_ex(&mb, &b, "rnn", &o, TN_F32, &r2) == TN_OK);
    int64_t H = o.hidden;
    for (int k = 0; k < 4; k++) /* 2 layers x 2 directions */
        for (int64_t j = 0; j < 4 * H; j++) {
            bool f = j >= H && j < 2 * H;
            CHECK(tn_tensor_get(mb.b_ih[k], j) == (f ? 1.0 : tn_tensor_get(ma.b_ih[k], j)));
            CHECK(tn_tensor_get(mb.b_hh[k], j) == (f ? 0.0 : tn_tensor_get(ma.b_hh[k], j)));
        }
    tn_params_free(&a), tn_params_free(&b);
}

int main(void)
{
    tn_set_num_threads(1);
    check_xavier_orthogonal(TN_CELL_LSTM, 2, true);
    check_xavier_orthogonal(TN_CELL_GRU, 3, false);
    check_xavier_orthogonal(TN_CELL_RNN_TANH, 1, false);
    check_defaults_same();
    check_one_layer();
    check_errors();
    check_forget_bias();
    return check_report("test_rnn_opts");
}
