/* src/ops/recurrent_rows.h - the per-row gate kernels and the time loops of
 * src/ops/recurrent.c, included there once per element type with
 *   RT    the element type (float, double)
 *   RS    the name suffix (f32, f64)
 *   RATTR attributes of the row kernels (target_clones for float)
 * TN_SIGMOID / TN_TANH pick fastmath.h's float functions or libm's double.
 *
 * A row kernel handles one sequence b at one step t; H hidden units. Gate
 * buffers hold, per row, G = gates * H values in PyTorch's gate order. */

#define RJOIN2(a, b) a##_##b
#define RJOIN(a, b) RJOIN2(a, b)

/* LSTM. a [4H]: in, gate pre-activations without bias; out, the activated
 * gates i, f, g, o. bias [4H], cp [H] previous c -> h [H], c [H]:
 *   c = f cp + i g, h = o tanh(c). */
RATTR static void RJOIN(lstm_fw, RS)(int64_t H, RT *restrict a, const RT *restrict bias,
                                      const RT *restrict cp, RT *restrict h, RT *restrict c)
{
    for (int64_t j = 0; j < H; j++) {
        RT i = TN_SIGMOID(a[j] + bias[j]), f = TN_SIGMOID(a[H + j] + bias[H + j]);
        RT g = TN_TANH(a[2 * H + j] + bias[2 * H + j]);
        RT o = TN_SIGMOID(a[3 * H + j] + bias[3 * H + j]);
        a[j] = i, a[H + j] = f, a[2 * H + j] = g, a[3 * H + j] = o;
        c[j] = f * cp[j] + i * g;
    }
    for (int64_t j = 0; j < H; j++)
        h[j] = a[3 * H + j] * TN_TANH(c[j]);
}

/* LSTM backward. a [4H]: in, activated gates; out, gradients of the gate
 * pre-activations. c [H] this step's c, cp [H] the previous; doh, doc [H]
 * gradients of this step's outputs h and c. gh, gc [H]: in, gradients
 * reaching this step's state from later steps; out, gh = 0 (the caller adds
 * the recurrent product) and gc = the gradient of cp. */
RATTR static void RJOIN(lstm_bw, RS)(int64_t H, RT *restrict a, const RT *restrict c,
                                      const RT *restrict cp, const RT *restrict doh,
                                      const RT *restrict doc, RT *restrict gh,
                                      RT *restrict gc)
{
    for (int64_t j = 0; j < H; j++) {
        RT i = a[j], f = a[H + j], g = a[2 * H + j], o = a[3 * H + j];
        RT tc = TN_TANH(c[j]);
        RT dh = doh[j] + gh[j];
        RT dc = doc[j] + gc[j] + dh * o * (1 - tc * tc);
        a[j] = dc * g * i * (1 - i);
        a[H + j] = dc * cp[j] * f * (1 - f);
        a[2 * H + j] = dc * i * (1 - g * g);
        a[3 * H + j] = dh * tc * o * (1 - o);
        gh[j] = 0;
        gc[j] = dc * f;
    }
}

/* GRU. a [3H]: in, the input parts without bias; out, r, z, n. bx [3H] the
 * bias of a (b_ih, plus b_hh for r and z), p [3H] = hp W_hh^T (no bias),
 * bn [H] = b_hn, hp [H] previous h -> q [H] = p_n + b_hn (kept for
 * backward), h [H]:
 *   r = s(a_r + p_r), z = s(a_z + p_z), n = tanh(a_n + r q),
 *   h = (1 - z) n + z hp. */
RATTR static void RJOIN(gru_fw, RS)(int64_t H, RT *restrict a, const RT *restrict bx,
                                     const RT *restrict p, const RT *restrict bn,
                                     const RT *restrict hp, RT *restrict q, RT *restrict h)
{
    for (int64_t j = 0; j < H; j++) {
        RT r = TN_SIGMOID(a[j] + bx[j] + p[j]);
        RT z = TN_SIGMOID(a[H + j] + bx[H + j] + p[H + j]);
        RT qj = p[2 * H + j] + bn[j];
        RT n = TN_TANH(a[2 * H + j] + bx[2 * H + j] + r * qj);
        a[j] = r, a[H + j] = z, a[2 * H + j] = n;
        q[j] = qj;
        h[j] = n + z * (hp[j] - n);
    }
}

/* GRU backward. a [3H]: in r, z, n; out, gradients of the input parts.
 * q [H]: in, p_n + b_hn; out, its gradient. hp [H] previous h, doh [H]
 * gradient of this step's output. gh [H]: in, the gradient reaching h from
 * later steps; out, dh z (the direct part of hp's gradient; the caller adds
 * dp W_hh). dp [3H] out: the gradient of p. */
RATTR static void RJOIN(gru_bw, RS)(int64_t H, RT *restrict a, RT *restrict q,
                                     const RT *restrict hp, const RT *restrict doh,
                                     RT *restrict gh, RT *restrict dp)
{
    for (int64_t j = 0; j < H; j++) {
        RT r = a[j], z = a[H + j], n = a[2 * H + j];
        RT dh = doh[j] + gh[j];
        RT dn = dh * (1 - z) * (1 - n * n);
        RT dr = dn * q[j] * r * (1 - r);
        RT dz = dh * (hp[j] - n) * z * (1 - z);
        a[j] = dr, a[H + j] = dz, a[2 * H + j] = dn;
        q[j] = dn * r;
        dp[j] = dr, dp[H + j] = dz, dp[2 * H + j] = dn * r;
        gh[j] = dh * z;
    }
}

/* Vanilla RNN: h = act(a + bias), act tanh or relu (a is left as is). */
RATTR static void RJOIN(rnn_fw, RS)(int64_t H, const RT *restrict a, const RT *restrict bias,
                                     bool relu, RT *restrict h)
{
    if (relu)
        for (int64_t j = 0; j < H; j++) {
            RT v = a[j] + bias[j];
            h[j] = v > 0 ? v : 0;
        }
    else
        for (int64_t j = 0; j < H; j++)
            h[j] = TN_TANH(a[j] + bias[j]);
}

/* Vanilla RNN backward: a [H] := (doh + gh) act'(h); gh := 0. */
RATTR static void RJOIN(rnn_bw, RS)(int64_t H, RT *restrict a, const RT *restrict h,
                                     const RT *restrict doh, bool relu, RT *restrict gh)
{
    if (relu)
        for (int64_t j = 0; j < H; j++) {
            a[j] = h[j] > 0 ? doh[j] + gh[j] : 0;
            gh[j] = 0;
        }
    else
        for (int64_t j = 0; j < H; j++) {
            a[j] = (doh[j] + gh[j]) * (1 - h[j] * h[j]);
            gh[j] = 0;
        }
}

/* The time loop of the forward pass. O [S, B, T, H] the result (h, then c
 * for LSTM). Step by step: the recurrent product (step_gemm), then the
 * gates of every row. Sequences past their length get zero outputs. */
static void RJOIN(forward_steps, RS)(rec *r, RT *O)
{
    int64_t B = r->B, T = r->T, H = r->H, G = r->G;
    RT *A = r->A, *Oh = O, *Oc = O + B * T * H;
    const RT *bias = r->bias, *bn = r->bhn;
    bool relu = r->cell == TN_CELL_RNN_RELU;
    for (int64_t s = 0; s < T; s++) {
        int64_t t = r->reverse ? T - 1 - s : s;
        step_gemm(r, O, s, t);
#pragma omp parallel for if (B * H > TN_PAR_MIN / 8)
        for (int64_t b = 0; b < B; b++) {
            int64_t row = b * T + t;
            RT *a = A + row * G, *h = Oh + row * H;
            if (!rec_active(r, b, t)) {
                memset(h, 0, (size_t)H * sizeof *h);
                if (r->cell == TN_CELL_LSTM)
                    memset(Oc + row * H, 0, (size_t)H * sizeof *h);
                continue;
            }
            switch (r->cell) {
            case TN_CELL_LSTM:
                RJOIN(lstm_fw, RS)(H, a, bias, prev_row(r, Oc, r->c0, b, t), h, Oc + row * H);
                break;
            case TN_CELL_GRU:
                RJOIN(gru_fw, RS)(H, a, bias, (RT *)r->P + b * G, bn,
                                  prev_row(r, Oh, r->h0, b, t), (RT *)r->Q + row * H, h);
                break;
            default:
                RJOIN(rnn_fw, RS)(H, a, bias, relu, h);
            }
        }
    }
}

/* The time loop of backward, in the reverse order of forward's: the gates'
 * gradients replace the activations in A (and q in Q for GRU), and
 * gh (gc) carry the gradient of the state between steps; at the end they
 * hold the initial state's. need_h0: whether that is wanted (else the last
 * recurrent product is skipped). */
static void RJOIN(backward_steps, RS)(rec *r, const RT *O, const RT *dO, RT *gh, RT *gc,
                                      bool need_h0)
{
    int64_t B = r->B, T = r->T, H = r->H, G = r->G;
    RT *A = r->A, *Q = r->Q, *dP = r->P;
    const RT *Oh = O, *Oc = O + B * T * H, *dOh = dO, *dOc = dO + B * T * H;
    bool relu = r->cell == TN_CELL_RNN_RELU;
    for (int64_t s = T; s-- > 0;) {
        int64_t t = r->reverse ? T - 1 - s : s;
#pragma omp parallel for if (B * H > TN_PAR_MIN / 8)
        for (int64_t b = 0; b < B; b++) {
            int64_t row = b * T + t;
            RT *a = A + row * G;
            if (!rec_active(r, b, t)) { /* no gradient; the carry passes */
                memset(a, 0, (size_t)G * sizeof *a);
                if (r->cell == TN_CELL_GRU) {
                    memset(Q + row * H, 0, (size_t)H * sizeof *a);
                    memset(dP + b * G, 0, (size_t)G * sizeof *a);
                }
                continue;
            }
            switch (r->cell) {
            case TN_CELL_LSTM:
                RJOIN(lstm_bw, RS)(H, a, Oc + row * H, prev_row(r, Oc, r->c0, b, t),
                                   dOh + row * H, dOc + row * H, gh + b * H, gc + b * H);
                break;
            case TN_CELL_GRU:
                RJOIN(gru_bw, RS)(H, a, Q + row * H, prev_row(r, Oh, r->h0, b, t),
                                  dOh + row * H, gh + b * H, dP + b * G);
                break;
            default:
                RJOIN(rnn_bw, RS)(H, a, Oh + row * H, dOh + row * H, relu, gh + b * H);
            }
        }
        if (s > 0 || need_h0)
            step_gemm_bw(r, gh, t);
    }
}

/* out[j * os] += sum over rows of M[r * rs + j], j < n: column sums in row
 * order whatever the thread count (so results do not depend on it). */
static void RJOIN(colsum, RS)(const RT *M, int64_t rows, int64_t n, int64_t rs, RT *out,
                              int64_t os)
{
#pragma omp parallel for if (rows * n > TN_PAR_MIN)
    for (int64_t j0 = 0; j0 < n; j0 += 64) {
        int64_t w = n - j0 < 64 ? n - j0 : 64;
        RT acc[64] = {0};
        for (int64_t i = 0; i < rows; i++)
            for (int64_t j = 0; j < w; j++)
                acc[j] += M[i * rs + j0 + j];
        for (int64_t j = 0; j < w; j++)
            out[(j0 + j) * os] += acc[j];
    }
}

/* The op's constant inputs, in its own layouts: bias [G] added to A's rows
 * (b_ih + b_hh; for GRU's n gate b_ih only), bhn [H] (GRU: b_hn), whT
 * [H, G] = W_hh^T contiguous (BLIS packs it faster than a transposed
 * view, at every step). */
static void RJOIN(prepare, RS)(rec *r, const tn_tensor *b_ih, const tn_tensor *b_hh,
                               const tn_tensor *w_hh)
{
    int64_t G = r->G, H = r->H, gru_n = r->cell == TN_CELL_GRU ? 2 * H : G;
    RT *bias = r->bias, *bhn = r->bhn, *wt = r->whT;
    const RT *bi = b_ih ? b_ih->data : NULL, *bh = b_hh ? b_hh->data : NULL;
    int64_t si = b_ih ? b_ih->stride[0] : 0, sh = b_hh ? b_hh->stride[0] : 0;
    for (int64_t g = 0; g < G; g++)
        bias[g] = (bi ? bi[g * si] : 0) + (bh && g < gru_n ? bh[g * sh] : 0);
    if (bhn)
        for (int64_t j = 0; j < H; j++)
            bhn[j] = bh ? bh[(2 * H + j) * sh] : 0;
    const RT *W = w_hh->data;
    int64_t rs = w_hh->stride[0], cs = w_hh->stride[1];
    for (int64_t k = 0; k < H; k++)
        for (int64_t g = 0; g < G; g++)
            wt[k * G + g] = W[g * rs + k * cs];
}

#undef RJOIN
#undef RJOIN2
