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

/* LSTM, units j < n of one row. a: in, the gate pre-activations from the
 * input (gate g of unit j at a[g*ga + j], as bias); out, the activated
 * gates i, f, g, o. p: the recurrent parts (at p[g*n + j]); cp [n]
 * previous c -> h [n], c [n]: c = f cp + i g, h = o tanh(c). */
RATTR static void RJOIN(lstm_fw, RS)(int64_t n, int64_t ga, RT *restrict a,
                                      const RT *restrict bias, const RT *restrict p,
                                      const RT *restrict cp, RT *restrict h, RT *restrict c)
{
    for (int64_t j = 0; j < n; j++) {
        RT i = TN_SIGMOID(a[j] + p[j] + bias[j]);
        RT f = TN_SIGMOID(a[ga + j] + p[n + j] + bias[ga + j]);
        RT g = TN_TANH(a[2 * ga + j] + p[2 * n + j] + bias[2 * ga + j]);
        RT o = TN_SIGMOID(a[3 * ga + j] + p[3 * n + j] + bias[3 * ga + j]);
        a[j] = i, a[ga + j] = f, a[2 * ga + j] = g, a[3 * ga + j] = o;
        c[j] = f * cp[j] + i * g;
    }
    for (int64_t j = 0; j < n; j++)
        h[j] = a[3 * ga + j] * TN_TANH(c[j]);
}

/* LSTM backward, units j < n. a (gate stride ga): in, activated gates;
 * out, gradients of the gate pre-activations. c [n] this step's c, cp [n]
 * the previous; doh, doc [n] gradients of this step's outputs h and c.
 * gh, gc [n]: in, gradients reaching this step's state from later steps;
 * out, gh = 0 (the caller adds the recurrent product) and gc = the
 * gradient of cp. */
RATTR static void RJOIN(lstm_bw, RS)(int64_t n, int64_t ga, RT *restrict a,
                                      const RT *restrict c, const RT *restrict cp,
                                      const RT *restrict doh, const RT *restrict doc,
                                      RT *restrict gh, RT *restrict gc)
{
    for (int64_t j = 0; j < n; j++) {
        RT i = a[j], f = a[ga + j], g = a[2 * ga + j], o = a[3 * ga + j];
        RT tc = TN_TANH(c[j]);
        RT dh = doh[j] + gh[j];
        RT dc = doc[j] + gc[j] + dh * o * (1 - tc * tc);
        a[j] = dc * g * i * (1 - i);
        a[ga + j] = dc * cp[j] * f * (1 - f);
        a[2 * ga + j] = dc * i * (1 - g * g);
        a[3 * ga + j] = dh * tc * o * (1 - o);
        gh[j] = 0;
        gc[j] = dc * f;
    }
}

/* GRU, units j < n. a (gate stride ga, as bx): in, the input parts
 * without bias; out, r, z, n. bx: the bias of a (b_ih, plus b_hh for r and
 * z); p (gate stride n): hp W_hh^T without bias; bn [n] = b_hn; hp [n]
 * previous h -> q [n] = p_n + b_hn (kept for backward), h [n]:
 *   r = s(a_r + p_r), z = s(a_z + p_z), n = tanh(a_n + r q),
 *   h = (1 - z) n + z hp. */
RATTR static void RJOIN(gru_fw, RS)(int64_t n, int64_t ga, RT *restrict a, const RT *restrict bx,
                                     const RT *restrict p, const RT *restrict bn,
                                     const RT *restrict hp, RT *restrict q, RT *restrict h)
{
    for (int64_t j = 0; j < n; j++) {
        RT r = TN_SIGMOID(a[j] + bx[j] + p[j]);
        RT z = TN_SIGMOID(a[ga + j] + bx[ga + j] + p[n + j]);
        RT qj = p[2 * n + j] + bn[j];
        RT nn = TN_TANH(a[2 * ga + j] + bx[2 * ga + j] + r * qj);
        a[j] = r, a[ga + j] = z, a[2 * ga + j] = nn;
        q[j] = qj;
        h[j] = nn + z * (hp[j] - nn);
    }
}

/* GRU backward, units j < n. a (gate stride ga): in r, z, n; out,
 * gradients of the input parts. q [n]: in, p_n + b_hn; out, its gradient.
 * hp [n] previous h, doh [n] gradient of this step's output. gh [n]: in,
 * the gradient reaching h from later steps; out, dh z (the direct part of
 * hp's gradient; the caller adds dp W_hh). dp (gate stride ga) out: the
 * gradient of p. */
RATTR static void RJOIN(gru_bw, RS)(int64_t n, int64_t ga, RT *restrict a, RT *restrict q,
                                     const RT *restrict hp, const RT *restrict doh,
                                     RT *restrict gh, RT *restrict dp)
{
    for (int64_t j = 0; j < n; j++) {
        RT r = a[j], z = a[ga + j], nn = a[2 * ga + j];
        RT dh = doh[j] + gh[j];
        RT dn = dh * (1 - z) * (1 - nn * nn);
        RT dr = dn * q[j] * r * (1 - r);
        RT dz = dh * (hp[j] - nn) * z * (1 - z);
        a[j] = dr, a[ga + j] = dz, a[2 * ga + j] = dn;
        q[j] = dn * r;
        dp[j] = dr, dp[ga + j] = dz, dp[2 * ga + j] = dn * r;
        gh[j] = dh * z;
    }
}

/* Vanilla RNN, units j < n: h = act(a + p + bias), act tanh or relu. */
RATTR static void RJOIN(rnn_fw, RS)(int64_t n, const RT *restrict a, const RT *restrict bias,
                                     const RT *restrict p, bool relu, RT *restrict h)
{
    if (relu)
        for (int64_t j = 0; j < n; j++) {
            RT v = a[j] + p[j] + bias[j];
            h[j] = v < 0 ? 0 : v; /* NaN passes through, as in tn_relu */
        }
    else
        for (int64_t j = 0; j < n; j++)
            h[j] = TN_TANH(a[j] + p[j] + bias[j]);
}

/* Vanilla RNN backward: a [n] := (doh + gh) act'(h); gh := 0. */
RATTR static void RJOIN(rnn_bw, RS)(int64_t n, RT *restrict a, const RT *restrict h,
                                     const RT *restrict doh, bool relu, RT *restrict gh)
{
    if (relu)
        for (int64_t j = 0; j < n; j++) {
            a[j] = h[j] > 0 ? doh[j] + gh[j] : 0;
            gh[j] = 0;
        }
    else
        for (int64_t j = 0; j < n; j++) {
            a[j] = (doh[j] + gh[j]) * (1 - h[j] * h[j]);
            gh[j] = 0;
        }
}

/* The time loop of the forward pass, on r->nt threads, thread k owning
 * the hidden units [j0, j1) (see rec_units). O [S, B, T, H]: the result
 * (h, then c for LSTM). Per step, each thread makes the recurrent product
 * of its units' gates, P_k [B, gates*n] = hcur [B, H] @ W_hh^T's columns of
 * those units (rec_product), and applies
 * the gates to them; one barrier per step, before the next step reads the
 * whole state. The state is double-buffered in hcur/ccur so that
 * sequences that stopped keep theirs; their outputs are zero. */
static void RJOIN(forward_steps, RS)(rec *r, RT *O)
{
    int64_t B = r->B, T = r->T, H = r->H, G = r->G, ng = G / H;
    RT *A = r->A, *Oh = O, *Oc = O + B * T * H, *P = r->P;
    RT *hc[2] = {r->hcur, (RT *)r->hcur + B * H}, *cc[2] = {r->ccur, NULL};
    if (cc[0])
        cc[1] = cc[0] + B * H;
    const RT *bias = r->bias, *bn = r->bhn;
    bool relu = r->cell == TN_CELL_RNN_RELU;
#pragma omp parallel num_threads(r->nt) if (r->nt > 1)
    {
        int k = r->nt > 1 ? omp_get_thread_num() : 0;
        int64_t j0 = rec_units(r, k), n = rec_units(r, k + 1) - j0;
        RT *Pk = P + ng * j0;
        for (int64_t s = 0; s < T; s++) {
            int64_t t = r->reverse ? T - 1 - s : s;
            /* This step's rows lie T rows apart in A and O: fetch them
             * while the product runs (they would miss cache one by one). */
            for (int64_t b = 0; b < B; b++) {
                int64_t row = b * T + t;
                for (int64_t g = 0; g < ng; g++)
                    prefetch_span(A + row * G + g * H + j0, n * (int64_t)sizeof *A);
                prefetch_span(Oh + row * H + j0, n * (int64_t)sizeof *A);
                if (r->cell == TN_CELL_LSTM)
                    prefetch_span(Oc + row * H + j0, n * (int64_t)sizeof *A);
            }
            const RT *hp = hc[s & 1], *cp = cc[s & 1];
            RT *hn = hc[(s + 1) & 1], *cn = cc[(s + 1) & 1];
            if (s == 0 && !r->h0) /* zero state: no product */
                for (int64_t b = 0; b < B; b++)
                    memset(Pk + b * G, 0, (size_t)(ng * n) * sizeof *P);
            else
                rec_product(r, false, k, hp, H, Pk, G, false);
            for (int64_t b = 0; b < B; b++) {
                int64_t row = b * T + t;
                RT *a = A + row * G + j0, *h = Oh + row * H + j0, *p = Pk + b * G;
                if (!rec_active(r, b, t)) { /* output 0, state kept */
                    memset(h, 0, (size_t)n * sizeof *h);
                    memcpy(hn + b * H + j0, hp + b * H + j0, (size_t)n * sizeof *h);
                    if (cn) {
                        memset(Oc + row * H + j0, 0, (size_t)n * sizeof *h);
                        memcpy(cn + b * H + j0, cp + b * H + j0, (size_t)n * sizeof *h);
                    }
                    continue;
                }
                switch (r->cell) {
                case TN_CELL_LSTM:
                    RJOIN(lstm_fw, RS)(n, H, a, bias + j0, p, cp + b * H + j0, h,
                                       Oc + row * H + j0);
                    memcpy(cn + b * H + j0, Oc + row * H + j0, (size_t)n * sizeof *h);
                    break;
                case TN_CELL_GRU:
                    RJOIN(gru_fw, RS)(n, H, a, bias + j0, p, bn + j0, hp + b * H + j0,
                                      (RT *)r->Q + row * H + j0, h);
                    break;
                default:
                    RJOIN(rnn_fw, RS)(n, a, bias + j0, p, relu, h);
                }
                memcpy(hn + b * H + j0, h, (size_t)n * sizeof *h);
            }
#pragma omp barrier
        }
    }
}

/* The time loop of backward, in the reverse order of forward's, threads
 * and units as there. The gates' gradients replace the activations in A
 * (and q in Q for GRU); gh (gc) [B, H] carry the gradient of the state
 * between steps and at the end hold the initial state's. After its units'
 * gates, each thread adds its units of the recurrent product,
 * gh[:, j0:j1] += dA_t [B, G] @ W_hh[:, j0:j1] (GRU: dP), which needs every
 * unit's dA_t: one barrier per step. GRU's dP is double-buffered. need_h0:
 * whether the initial state's gradient is wanted (else the last product
 * is skipped). */
static void RJOIN(backward_steps, RS)(rec *r, const RT *O, const RT *dO, RT *gh, RT *gc,
                                      bool need_h0)
{
    int64_t B = r->B, T = r->T, H = r->H, G = r->G;
    RT *A = r->A, *Q = r->Q, *dP[2] = {r->P, (RT *)r->P + B * G};
    const RT *Oh = O, *Oc = O + B * T * H, *dOh = dO, *dOc = dO + B * T * H;
    bool relu = r->cell == TN_CELL_RNN_RELU, gru = r->cell == TN_CELL_GRU;
#pragma omp parallel num_threads(r->nt) if (r->nt > 1)
    {
        int k = r->nt > 1 ? omp_get_thread_num() : 0;
        int64_t j0 = rec_units(r, k), n = rec_units(r, k + 1) - j0;
        for (int64_t s = T; s-- > 0;) {
            int64_t t = r->reverse ? T - 1 - s : s;
            RT *dp = dP[s & 1];
            for (int64_t b = 0; b < B; b++) { /* as in forward_steps */
                int64_t row = b * T + t;
                for (int64_t g = 0; g < G / H; g++)
                    prefetch_span(A + row * G + g * H + j0, n * (int64_t)sizeof *A);
                prefetch_span(dOh + row * H + j0, n * (int64_t)sizeof *A);
                prefetch_span((r->cell == TN_CELL_LSTM ? Oc : Oh) + row * H + j0,
                              n * (int64_t)sizeof *A);
                if (r->cell == TN_CELL_LSTM)
                    prefetch_span(dOc + row * H + j0, n * (int64_t)sizeof *A);
            }
            for (int64_t b = 0; b < B; b++) {
                int64_t row = b * T + t;
                RT *a = A + row * G + j0;
                const RT *doh = dOh + row * H + j0;
                if (!rec_active(r, b, t)) { /* no gradient; the carry passes */
                    for (int64_t g = 0; g < G / H; g++)
                        memset(a + g * H, 0, (size_t)n * sizeof *a);
                    if (gru) {
                        memset(Q + row * H + j0, 0, (size_t)n * sizeof *a);
                        for (int64_t g = 0; g < 3; g++)
                            memset(dp + b * G + g * H + j0, 0, (size_t)n * sizeof *a);
                    }
                    continue;
                }
                switch (r->cell) {
                case TN_CELL_LSTM:
                    RJOIN(lstm_bw, RS)(n, H, a, Oc + row * H + j0,
                                       (const RT *)prev_row(r, Oc, r->c0, b, t) + j0, doh,
                                       dOc + row * H + j0, gh + b * H + j0, gc + b * H + j0);
                    break;
                case TN_CELL_GRU:
                    RJOIN(gru_bw, RS)(n, H, a, Q + row * H + j0,
                                      (const RT *)prev_row(r, Oh, r->h0, b, t) + j0, doh,
                                      gh + b * H + j0, dp + b * G + j0);
                    break;
                default:
                    RJOIN(rnn_bw, RS)(n, a, Oh + row * H + j0, doh, relu, gh + b * H + j0);
                }
            }
#pragma omp barrier
            if (s > 0 || need_h0)
                rec_product(r, true, k, gru ? dp : A + t * G, gru ? G : T * G, gh + j0, H,
                            true);
        }
    }
}

/* out[j * os] += sum over rows of M[r * rs + j], j < n: column sums in row
 * order whatever the thread count (so results do not depend on it). */
static void RJOIN(colsum, RS)(const RT *M, int64_t rows, int64_t n, int64_t rs, RT *out,
                              int64_t os)
{
#pragma omp parallel for if (rows * n > TN_PAR_MIN)
    for (int64_t j0 = 0; j0 < n; j0 += 64) {
        RT acc[64] = {0};
        if (n - j0 >= 64) /* a whole block: a fixed-width loop, vectorised */
            for (int64_t i = 0; i < rows; i++)
                for (int64_t j = 0; j < 64; j++)
                    acc[j] += M[i * rs + j0 + j];
        else
            for (int64_t i = 0; i < rows; i++)
                for (int64_t j = 0; j < n - j0; j++)
                    acc[j] += M[i * rs + j0 + j];
        for (int64_t j = 0; j < 64 && j0 + j < n; j++)
            out[(j0 + j) * os] += acc[j];
    }
}

/* The biases in the op's layout: bias [G] added to A's rows (b_ih + b_hh;
 * for GRU's n gate b_ih only), bhn [H] (GRU: b_hn). */
static void RJOIN(biases, RS)(rec *r, const tn_tensor *b_ih, const tn_tensor *b_hh)
{
    int64_t G = r->G, H = r->H, gru_n = r->cell == TN_CELL_GRU ? 2 * H : G;
    RT *bias = r->bias, *bhn = r->bhn;
    const RT *bi = b_ih ? b_ih->data : NULL, *bh = b_hh ? b_hh->data : NULL;
    int64_t si = b_ih ? b_ih->stride[0] : 0, sh = b_hh ? b_hh->stride[0] : 0;
    for (int64_t g = 0; g < G; g++)
        bias[g] = (bi ? bi[g * si] : 0) + (bh && g < gru_n ? bh[g * sh] : 0);
    if (bhn)
        for (int64_t j = 0; j < H; j++)
            bhn[j] = bh ? bh[(2 * H + j) * sh] : 0;
}

#undef RJOIN
#undef RJOIN2
