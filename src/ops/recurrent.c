/* src/ops/recurrent.c - one direction of a recurrent layer (RNN, LSTM, GRU)
 * over a whole sequence as one op, structured as the fastest RNN
 * implementations are (docs/design.md section 3):
 *
 *   forward   A [B*T, G] = X [B*T, I] @ W_ih^T       one GEMM for all steps
 *             per step t, on every thread k for its hidden units:
 *                P_k [B, gates*n] = h_prev @ (W_hh^T's columns of the units),
 *                on a micro-kernel with the columns packed once
 *                gates of those units from A_t + P_k + bias in one pass,
 *                activations kept in A_t (GRU also q = p_n + b_hn in Q)
 *                one barrier
 *             (or, for small H and enough rows, every thread for its
 *             batch rows and all units, with no barrier: rec_part)
 *   backward  per step, in reverse, every thread for its units: gate
 *             gradients replace A_t; one barrier; the carried state
 *             gradient of its units gets dA_t @ W_hh[:, units]
 *             then one GEMM each: dX += dA @ W_ih, dW_ih += dA^T @ X,
 *             dW_hh += dA^T @ Hprev, and column sums for the biases.
 *
 * The time loops are in recurrent_steps.c, the per-step products (the
 * kernel path's step_mul, or BLIS's micro-kernel) in matmul_packed.c, the
 * gate row kernels in rows_impl.h. A row of the [B*T, ...] buffers is
 * (b, t), batch-major like x: step t's rows are T rows apart. The biases
 * are added inside the gate kernels, not by a separate pass. Memory kept
 * for backward: A (G*H per row), the result (S*H per row) and for GRU Q
 * (H per row): about half of what the same layer built from per-step ops
 * keeps, and no per-step tensors or gradients.
 */
#include "recurrent_internal.h"

const char *tn_cell_name(tn_cell c)
{
    switch (c) {
    case TN_CELL_RNN_TANH: return "rnn_tanh";
    case TN_CELL_RNN_RELU: return "rnn_relu";
    case TN_CELL_LSTM: return "lstm";
    case TN_CELL_GRU: return "gru";
    }
    return "?";
}

tn_status tn_cell_from_name(const char *name, tn_cell *out)
{
    static const struct {
        const char *name;
        tn_cell cell;
    } known[] = {{"rnn", TN_CELL_RNN_TANH},
                 {"rnn_tanh", TN_CELL_RNN_TANH},
                 {"rnn_relu", TN_CELL_RNN_RELU},
                 {"lstm", TN_CELL_LSTM},
                 {"gru", TN_CELL_GRU}};
    if (!out)
        return tn_set_error(TN_ERR_ARG, "tn_cell_from_name: out is NULL");
    for (size_t i = 0; name && i < sizeof known / sizeof known[0]; i++)
        if (strcmp(name, known[i].name) == 0) {
            *out = known[i].cell;
            return TN_OK;
        }
    return tn_set_error(TN_ERR_ARG,
                        "tn_cell_from_name: unknown cell '%s' (rnn, rnn_tanh, rnn_relu, lstm, gru)",
                        name ? name : "(null)");
}

int tn_cell_gates(tn_cell c)
{
    switch (c) {
    case TN_CELL_RNN_TANH:
    case TN_CELL_RNN_RELU: return 1;
    case TN_CELL_LSTM: return 4;
    case TN_CELL_GRU: return 3;
    }
    return 0;
}

/* x's data or gradient (base) [B, T, I] as the matrix [B*T, I], when its
 * rows have one stride. */
static bool x_rows(const tn_tensor *x, void *base, tn__mat *m)
{
    int64_t B = x->shape[0], T = x->shape[1], In = x->shape[2];
    int64_t rs = T == 1 ? x->stride[0] : x->stride[1];
    if (x->stride[2] != 1 || (B > 1 && T > 1 && x->stride[0] != T * x->stride[1]) || rs < In)
        return false;
    *m = (tn__mat){base, B * T, In, rs, 1};
    return true;
}

static bool is_bh(const tn_tensor *t, int64_t B, int64_t H)
{
    return t->ndim == 2 && t->shape[0] == B && t->shape[1] == H;
}

static void *arena(tn_tape *tp, int64_t n, size_t es) { return tn_tape_alloc(tp, (size_t)n * es); }

/* The biases in the op's layout: bias [G] added to A's rows (b_ih + b_hh;
 * for GRU's n gate b_ih only), bhn [H] (GRU: b_hn). */
static void biases(rec *r, const tn_tensor *b_ih, const tn_tensor *b_hh)
{
    int64_t G = r->G, H = r->H, gru_n = r->cell == TN_CELL_GRU ? 2 * H : G;
    TN_FOR_DTYPE(r->dt, RT, {
        RT *bias = r->bias, *bhn = r->bhn;
        const RT *bi = b_ih ? b_ih->data : NULL, *bh = b_hh ? b_hh->data : NULL;
        int64_t si = b_ih ? b_ih->stride[0] : 0, sh = b_hh ? b_hh->stride[0] : 0;
        for (int64_t g = 0; g < G; g++)
            bias[g] = (bi ? bi[g * si] : 0) + (bh && g < gru_n ? bh[g * sh] : 0);
        if (bhn)
            for (int64_t j = 0; j < H; j++)
                bhn[j] = bh ? bh[(2 * H + j) * sh] : 0;
    });
}

/* The per-step products' geometry (each part's packed operand, forward
 * [H, gates*n] and backward [G, n]; split by rows the parts share one) and
 * the memory of the forward operands and of the threads' scratch; the
 * backward operands get theirs in backward. */
static bool pack_plan(tn_tape *tp, rec *r)
{
    r->pf = tn_tape_alloc(tp, (size_t)r->nt * sizeof *r->pf);
    r->pb = tn_tape_alloc(tp, (size_t)r->nt * sizeof *r->pb);
    if (!r->pf || !r->pb)
        return false;
    r->scratch_bytes = 0;
    for (int k = 0; k < r->nt; k++) {
        int64_t j0, n, b0, b1;
        rec_part(r, k, &j0, &n, &b0, &b1);
        tn__packed_geometry_step(&r->pf[k], r->dt, r->H, r->G / r->H * n);
        tn__packed_geometry_step(&r->pb[k], r->dt, r->G, n);
        int64_t sf = tn__packed_scratch_bytes(&r->pf[k], r->B);
        int64_t sb = tn__packed_scratch_bytes(&r->pb[k], r->B);
        r->scratch_bytes = sf > r->scratch_bytes ? sf : r->scratch_bytes;
        r->scratch_bytes = sb > r->scratch_bytes ? sb : r->scratch_bytes;
        r->pf[k].w = k > 0 && r->by_rows ? r->pf[0].w /* shared (recurrent_steps.c) */
                                         : arena(tp, tn__packed_bytes(&r->pf[k]), 1);
        if (!r->pf[k].w)
            return false;
    }
    return (r->scratch = arena(tp, r->nt * r->scratch_bytes, 1)) != NULL;
}

/* The checks of tn_recurrent: every shape, the cell, lengths. False with
 * the tape failed (a message naming the cell and the shapes). */
static bool recurrent_check(tn_tape *tp, tn_cell cell, const tn_rnn_weights *w, tn_tensor *x,
                            tn_tensor *h0, tn_tensor *c0, const int32_t *lengths)
{
    if (!w) {
        tn_tape_fail(tp, TN_ERR_ARG, "recurrent: weights are NULL");
        return false;
    }
    tn_tensor *in[7] = {x, w->w_ih, w->w_hh, w->b_ih, w->b_hh, h0, c0}, *chk[7];
    int n = 0;
    for (int i = 0; i < 7; i++)
        if (i < 3 || in[i])
            chk[n++] = in[i];
    if (!tn__check(tp, "recurrent", n, chk))
        return false;
    if (tn_cell_gates(cell) == 0) {
        tn_tape_fail(tp, TN_ERR_ARG, "recurrent: unknown cell %d", (int)cell);
        return false;
    }
    const char *name = tn_cell_name(cell);
    int gates = tn_cell_gates(cell);
    tn_tensor *w_ih = w->w_ih, *w_hh = w->w_hh;
    if (x->ndim != 3 || w_ih->ndim != 2 || w_hh->ndim != 2) {
        tn_tape_fail(tp, TN_ERR_SHAPE,
                     "recurrent (%s): x %s, w_ih %s, w_hh %s; expected x [B, T, I], w_ih "
                     "[%d*H, I], w_hh [%d*H, H]",
                     name, TN_SHP(x), TN_SHP(w_ih), TN_SHP(w_hh), gates, gates);
        return false;
    }
    int64_t B = x->shape[0], T = x->shape[1], In = x->shape[2], H = w_hh->shape[1];
    int64_t G = gates * H;
    if (w_hh->shape[0] != G || w_ih->shape[0] != G || w_ih->shape[1] != In) {
        tn_tape_fail(tp, TN_ERR_SHAPE,
                     "recurrent (%s): w_ih %s, w_hh %s for x %s; expected w_ih [%lld, %lld] and "
                     "w_hh [%lld, %lld] (%d gates of H = w_hh's columns)",
                     name, TN_SHP(w_ih), TN_SHP(w_hh), TN_SHP(x), (long long)G, (long long)In,
                     (long long)G, (long long)H, gates);
        return false;
    }
    tn_tensor *bs[2] = {w->b_ih, w->b_hh};
    for (int i = 0; i < 2; i++)
        if (bs[i] && (bs[i]->ndim != 1 || bs[i]->shape[0] != G)) {
            tn_tape_fail(tp, TN_ERR_SHAPE, "recurrent (%s): %s %s, expected [%lld]", name,
                         i ? "b_hh" : "b_ih", TN_SHP(bs[i]), (long long)G);
            return false;
        }
    if (c0 && cell != TN_CELL_LSTM) {
        tn_tape_fail(tp, TN_ERR_ARG, "recurrent (%s): c0 given, but only LSTM has a cell state",
                     name);
        return false;
    }
    tn_tensor *st[2] = {h0, c0};
    for (int i = 0; i < 2; i++)
        if (st[i] && !is_bh(st[i], B, H)) {
            tn_tape_fail(tp, TN_ERR_SHAPE, "recurrent (%s): %s %s, expected [%lld, %lld]", name,
                         i ? "c0" : "h0", TN_SHP(st[i]), (long long)B, (long long)H);
            return false;
        }
    if (lengths)
        for (int64_t b = 0; b < B; b++)
            if (lengths[b] < 1 || lengths[b] > T) {
                tn_tape_fail(tp, TN_ERR_INDEX,
                             "recurrent (%s): lengths[%lld] = %d outside 1..T = %lld", name,
                             (long long)b, (int)lengths[b], (long long)T);
                return false;
            }
    return true;
}

/* The plan of one layer direction in r: sizes, the arena buffers of the
 * time loops, the initial states, the threads' shares of the units and
 * the packed recurrent weight. False when out of memory (tape failed). */
static bool recurrent_plan(tn_tape *tp, rec *r, tn_cell cell, bool reverse, tn_tensor *x,
                           tn_tensor *w_hh, tn_tensor *h0, tn_tensor *c0, const int32_t *lengths)
{
    tn_dtype dt = x->dtype;
    size_t es = tn_dtype_size(dt);
    int64_t B = x->shape[0], T = x->shape[1], In = x->shape[2], H = w_hh->shape[1];
    int64_t G = tn_cell_gates(cell) * H;
    bool gru = cell == TN_CELL_GRU;
    *r =
        (rec){.cell = cell, .reverse = reverse, .dt = dt, .B = B, .T = T, .In = In, .H = H, .G = G};
    int32_t *len = lengths ? tn_tape_alloc(tp, (size_t)B * sizeof *len) : NULL;
    r->A = arena(tp, B * T * G, es);
    r->P = arena(tp, (gru ? 2 : 1) * B * G, es);
    r->bias = arena(tp, G, es);
    r->zero = arena(tp, H, es);
    r->hcopy = reverse && lengths && h0;
    r->hcur = r->hcopy ? arena(tp, 2 * B * H, es) : NULL;
    if ((lengths && !len) || !r->A || !r->P || !r->bias || !r->zero || (r->hcopy && !r->hcur))
        return false;
    if (gru && (!(r->Q = arena(tp, B * T * H, es)) || !(r->bhn = arena(tp, H, es))))
        return false;
    if (lengths)
        memcpy(len, lengths, (size_t)B * sizeof *len);
    r->len = len;
    memset(r->zero, 0, (size_t)H * es);
    r->h0 = h0 ? h0->data : NULL;
    r->c0 = c0 ? c0->data : NULL;
    if (r->hcopy)
        memcpy(r->hcur, r->h0, (size_t)(B * H) * es);
    /* Threads of the time loops. With at least 16 batch rows per thread
     * and H <= 256 they split the rows: each runs its rows through every
     * step with no barrier (a step's product there is a few microseconds,
     * about what a barrier and reading the other thread's half of the
     * state cost); measured 2-28% more tokens/s on lstm-s, rnn-s and gru-s
     * (docs/performance.md). Else they split the units, at least 16 each
     * (below that the barriers cost more than they save): at H 512 both
     * ran at the same speed, and the units split packs each thread only
     * its part of W_hh. */
    int nt = tn__threads_now();
    r->by_rows = nt > 1 && B >= 16 * (int64_t)nt && H <= 256;
    if (r->by_rows) {
        r->nt = nt;
    } else {
        nt = H >= 32 ? nt : 1;
        r->per = ((H + nt - 1) / nt + 15) / 16 * 16;
        r->nt = (int)((H + r->per - 1) / r->per);
    }
    r->whh = (tn__mat){w_hh->data, G, H, w_hh->stride[0], w_hh->stride[1]};
    r->rows = tn__rows_get(dt);
    return pack_plan(tp, r);
}

tn_tensor *tn_recurrent(tn_tape *tp, tn_cell cell, const tn_rnn_weights *w, tn_tensor *x,
                        tn_tensor *h0, tn_tensor *c0, const int32_t *lengths, bool reverse)
{
    TN_FTZ_SCOPE; /* the time loop's thread 0 is the caller */
    if (!tp) {
        tn_set_error(TN_ERR_ARG, "recurrent: tape is NULL");
        return NULL;
    }
    if (tp->err != TN_OK || !recurrent_check(tp, cell, w, x, h0, c0, lengths))
        return NULL;

    /* Layouts the kernels take: contiguous states and weights, x rows with
     * one stride. Copies (recorded ops) only where an input is otherwise. */
    tn_tensor *w_ih = w->w_ih, *w_hh = w->w_hh;
    tn__mat xm;
    if (!x_rows(x, x->data, &xm)) {
        x = tn_contiguous(tp, x);
        if (!x || !x_rows(x, x->data, &xm))
            return NULL;
    }
    if (h0 && !(h0 = tn_contiguous(tp, h0)))
        return NULL;
    if (c0 && !(c0 = tn_contiguous(tp, c0)))
        return NULL;
    if (!(w_ih = tn_contiguous(tp, w_ih)))
        return NULL;

    rec *r = tn_tape_alloc(tp, sizeof *r);
    if (!r || !recurrent_plan(tp, r, cell, reverse, x, w_hh, h0, c0, lengths))
        return NULL;

    /* Record: y [S, B, T, H] holds h (and, for LSTM, c) of every step. */
    int S = cell == TN_CELL_LSTM ? 2 : 1;
    tn_tensor *src[7] = {x, w_ih, w_hh, w->b_ih, w->b_hh, h0, c0};
    tn_tensor *y = tn__result_n(tp, TN_OP_RECURRENT, r->dt, 4, (int64_t[]){S, r->B, r->T, r->H},
                                false, 7, src);
    if (!y)
        return NULL;
    tn__node(y)->aux = r;

    /* The input projection of every step in one product (on the packed
     * path when W_ih is a parameter whose packing stays small: the rows
     * split between the threads on the step kernel), then the loop. */
    biases(r, w->b_ih, w->b_hh);
    tn__mat wt = tn__mat_t((tn__mat){w_ih->data, r->G, r->In, r->In, 1});
    tn__mat am = {r->A, r->B * r->T, r->G, r->G, 1};
    if (!tn__is_weight(w_ih) || !tn__packed_product(tp, r->dt, xm, wt, am, false))
        tn__gemm(r->dt, xm, wt, 0.0, am);
    tn__rec_forward_steps(r, y->data);
    return tn__finish(tp, y);
}

/* dX [B*T, In] += dA @ W_ih and dW_ih += dA^T @ X (as wanted), on nt
 * BLIS threads (0: tn__gemm's choice). */
static void grads_input(const rec *r, tn_tensor *x, tn_tensor *w_ih, int nt)
{
    int64_t BT = r->B * r->T, G = r->G, In = r->In;
    tn__mat dA = {r->A, BT, G, G, 1}, m;
    if (tn__wants(x) && x_rows(x, x->grad, &m))
        tn__gemm_on(r->dt, dA, (tn__mat){w_ih->data, G, In, In, 1}, 1.0, m, nt);
    if (tn__wants(w_ih) && x_rows(x, x->data, &m))
        tn__gemm_on(r->dt, tn__mat_t(dA), m, 1.0, (tn__mat){w_ih->grad, G, In, In, 1}, nt);
}

/* dW_hh += dA^T @ Hprev, Hprev [B*T, H] the state before every step built
 * in hp (rows of steps that did not run are whatever prev_row gives: their
 * gate gradients are zero). GRU: the n rows take Q, the gradient of q. */
static void grads_recurrent(const rec *r, const void *O, tn_tensor *w_hh, void *hp, int nt)
{
    int64_t BT = r->B * r->T, T = r->T, H = r->H, G = r->G;
    size_t es = rec_es(r);
    for (int64_t i = 0; i < BT; i++)
        memcpy((char *)hp + (size_t)(i * H) * es, prev_row(r, O, r->h0, i / T, i % T),
               (size_t)H * es);
    tn__mat hm = {hp, BT, H, H, 1};
    tn__mat dW = {w_hh->grad, G, H, w_hh->stride[0], w_hh->stride[1]};
    if (r->cell == TN_CELL_GRU) {
        tn__gemm_on(r->dt, tn__mat_t((tn__mat){r->A, BT, 2 * H, G, 1}), hm, 1.0,
                    (tn__mat){dW.p, 2 * H, H, dW.rs, dW.cs}, nt);
        tn__gemm_on(r->dt, tn__mat_t((tn__mat){r->Q, BT, H, H, 1}), hm, 1.0,
                    (tn__mat){(char *)dW.p + (size_t)(2 * H * dW.rs) * es, H, H, dW.rs, dW.cs}, nt);
    } else {
        tn__gemm_on(r->dt, tn__mat_t((tn__mat){r->A, BT, G, G, 1}), hm, 1.0, dW, nt);
    }
}

void tn__bw_recurrent(tn_tensor *y)
{
    rec *r = tn__node(y)->aux;
    tn_tape *tp = tn__node(y)->tape;
    tn_tensor *x = tn__node(y)->src[0], *w_ih = tn__node(y)->src[1], *w_hh = tn__node(y)->src[2],
              *b_ih = tn__node(y)->src[3];
    tn_tensor *b_hh = tn__node(y)->src[4], *h0 = tn__node(y)->src[5], *c0 = tn__node(y)->src[6];
    if (r->used) {
        tn_tape_fail(tp, TN_ERR_STATE,
                     "recurrent: a second backward through the same result; the first "
                     "consumed its saved activations (run the forward again)");
        return;
    }
    r->used = true;
    int64_t B = r->B, T = r->T, H = r->H, G = r->G, BT = B * T;
    size_t es = rec_es(r);
    bool gru = r->cell == TN_CELL_GRU, lstm = r->cell == TN_CELL_LSTM;
    void *gh = arena(tp, B * H, es), *gc = lstm ? arena(tp, B * H, es) : NULL;
    if (!gh || (lstm && !gc))
        return; /* out of memory: the tape has the error */
    memset(gh, 0, (size_t)(B * H) * es);
    if (gc)
        memset(gc, 0, (size_t)(B * H) * es);
    bool need_h0 = tn__wants(h0) || tn__wants(c0);
    for (int k = 0; k < r->nt; k++)
        if (!(r->pb[k].w = k > 0 && r->by_rows ? r->pb[0].w /* as forward's */
                                               : arena(tp, tn__packed_bytes(&r->pb[k]), 1)))
            return;
    tn__rec_backward_steps(r, y->data, y->grad, gh, gc, need_h0);

    /* dA [B*T, G] now holds the gradients of the gates' pre-activations.
     * Three independent products follow. With two threads they run side
     * by side on one BLIS thread each (dX and dW_ih | dW_hh): at these
     * shapes (a side of 64-128 on the small configurations) two 1-thread
     * GEMMs beat each GEMM on 2 BLIS threads, which spend much of their
     * time at BLIS's barriers. Only when the two sides are balanced
     * (neither above 60% of the multiply-adds); else each GEMM gets both. */
    void *hp = tn__wants(w_hh) ? arena(tp, BT * H, es) : NULL;
    if (tn__wants(w_hh) && !hp)
        return;
    double mac_in = (double)BT * G * r->In * ((tn__wants(x) ? 1 : 0) + (tn__wants(w_ih) ? 1 : 0));
    double mac_hh = hp ? (double)BT * G * H : 0;
    bool pair = tn__threads_now() == 2 && mac_in <= 1.5 * mac_hh && mac_hh <= 1.5 * mac_in;
    if (pair) {
#pragma omp parallel sections num_threads(2)
        {
#pragma omp section
            grads_input(r, x, w_ih, 1);
#pragma omp section
            if (hp)
                grads_recurrent(r, y->data, w_hh, hp, 1);
        }
    } else { /* not inside a parallel region: BLIS's own threads */
        grads_input(r, x, w_ih, 0);
        if (hp)
            grads_recurrent(r, y->data, w_hh, hp, 0);
    }
    tn_tensor *bs[2] = {b_ih, b_hh};
    for (int i = 0; i < 2; i++) {
        if (!tn__wants(bs[i]))
            continue;
        int64_t n0 = gru && i == 1 ? 2 * H : G, os = bs[i]->stride[0];
        r->rows->colsum(r->A, BT, n0, G, bs[i]->grad, os);
        if (n0 < G) /* GRU b_hn: the gradient of q */
            r->rows->colsum(r->Q, BT, H, H, rec_at(r, bs[i]->grad, n0 * os), os);
    }
    tn_tensor *s0[2] = {h0, c0};
    void *g0[2] = {gh, gc};
    for (int i = 0; i < 2; i++)
        if (tn__wants(s0[i]))
            TN_FOR_DTYPE(r->dt, RT, {
                RT *d = s0[i]->grad;
                const RT *g = g0[i];
                for (int64_t k = 0; k < B * H; k++)
                    d[k] += g[k];
            });
}
