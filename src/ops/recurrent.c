/* src/ops/recurrent.c - one direction of a recurrent layer (RNN, LSTM, GRU)
 * over a whole sequence as one op, structured as the fastest RNN
 * implementations are (DESIGN.md section 5):
 *
 *   forward   A [B*T, G] = X [B*T, I] @ W_ih^T       one GEMM for all steps
 *             per step t, on every thread k for its hidden units:
 *                P_k [B, gates*n] = h_prev @ (W_hh^T's columns of the units)
 *                gates of those units from A_t + P_k + bias in one pass,
 *                activations kept in A_t (GRU also q = p_n + b_hn in Q)
 *                one barrier
 *   backward  per step, in reverse, every thread for its units: gate
 *             gradients replace A_t; one barrier; the carried state
 *             gradient of its units gets dA_t @ W_hh[:, units]
 *             then one GEMM each: dX += dA @ W_ih, dW_ih += dA^T @ X,
 *             dW_hh += dA^T @ Hprev, and column sums for the biases.
 *
 * A row of the [B*T, ...] buffers is (b, t), batch-major like x: step t's
 * rows are T rows apart. The biases are added inside the gate kernels, not
 * by a separate pass. Memory kept for backward: A (G*H per row), the result
 * (S*H per row) and for GRU Q (H per row): about half of what the same
 * layer built from per-step ops keeps, and no per-step tensors or
 * gradients.
 */
#include "ops_internal.h"
#include "fastmath.h"

#include <omp.h>

/* The op's state, in tape memory (y->aux). */
typedef struct rec {
    tn_cell cell;
    bool reverse;
    bool used; /* backward ran: A holds gradients, not activations */
    tn_dtype dt;
    int64_t B, T, In, H, G;
    const int32_t *len; /* [B], or NULL: every sequence has T steps */
    void *A;            /* [B*T, G] gates, then their gradients */
    void *Q;            /* GRU: [B*T, H] q = p_n + b_hn, then its gradient */
    void *P;            /* [B, G] one step's h W_hh^T (thread-blocked columns,
                           see prepare); GRU backward: 2 x [B, G] its gradient */
    void *bias, *bhn;   /* [G] bias of A's rows; GRU: [H] b_hn */
    void *wf, *wb;      /* float: the packed operands of the per-step
                           products, forward and backward (see rec_product) */
    tn__mat whh;        /* W_hh [G, H] as it is (backward) */
    void *zero;         /* [H] zeros: a missing initial state */
    void *hcur, *ccur;  /* 2 x [B, H]: the state before and after a step */
    int nt;             /* threads of the time loops */
    int64_t per;        /* hidden units per thread */
    const void *h0, *c0; /* [B, H] contiguous initial states, or NULL */
} rec;

static size_t rec_es(const rec *r) { return tn_dtype_size(r->dt); }

/* Whether step t of sequence b runs. */
static inline bool rec_active(const rec *r, int64_t b, int64_t t)
{
    return !r->len || t < r->len[b];
}

/* The state row [H] before step t of sequence b, in seq ([B, T, H]: h or c
 * of every step): the one after the previously processed step (t - 1, or
 * t + 1 in reverse) when that step ran, else the initial state init (NULL:
 * zeros). */
static inline const void *prev_row(const rec *r, const void *seq, const void *init, int64_t b,
                                   int64_t t)
{
    int64_t L = r->len ? r->len[b] : r->T, tp = r->reverse ? t + 1 : t - 1;
    size_t es = rec_es(r);
    if (r->reverse ? tp < L : tp >= 0)
        return (const char *)seq + (size_t)((b * r->T + tp) * r->H) * es;
    return init ? (const char *)init + (size_t)(b * r->H) * es : r->zero;
}

/* Ask for the cache lines of [p, p + bytes) ahead of use. */
static inline void prefetch_span(const void *p, int64_t bytes)
{
    for (int64_t o = 0; o < bytes; o += 64)
        __builtin_prefetch((const char *)p + o);
}

/* First unit of thread k of r->nt (k = nt gives H): whole 16-float
 * vectors per thread, the last one takes the rest. */
static inline int64_t rec_units(const rec *r, int k)
{
    int64_t j = k * r->per;
    return j < r->H ? j : r->H;
}


/* ---- the per-step product, float: a small GEMM with a packed operand ----
 *
 * Per step the recurrent product is small (e.g. [32, 128] @ [128, 256] per
 * thread) and its right operand, from W_hh, is the same at every step.
 * BLIS repacks both operands at each call, which held it near 50 GFLOP/s
 * here; the operand is packed once instead, into panels of 32 columns
 * (panel p holds columns 32p.. as [K][32], zero padded), and multiplied by
 * an 8 x 32 register-blocked kernel written with GCC vector types (AVX-512
 * registers on the avx512f clone, split on the others). */

#define PNR 32 /* columns per panel */
typedef float v16f __attribute__((vector_size(64), aligned(4)));

/* C rows [mr, nc] (ldc) (+)= A [mr, K] (lda) @ one panel w [K][32]. */
static inline __attribute__((always_inline)) void panel_rows(int mr, int64_t K, const float *A,
                                                             int64_t lda, const float *w,
                                                             float *C, int64_t ldc, int64_t nc,
                                                             bool acc)
{
    v16f c[8][2];
    for (int i = 0; i < mr; i++)
        c[i][0] = c[i][1] = (v16f){0};
    for (int64_t k = 0; k < K; k++) {
        v16f b0 = *(const v16f *)(w + k * PNR), b1 = *(const v16f *)(w + k * PNR + 16);
        for (int i = 0; i < mr; i++) {
            float a = A[i * lda + k];
            c[i][0] += a * b0;
            c[i][1] += a * b1;
        }
    }
    for (int i = 0; i < mr; i++) {
        float out[PNR];
        memcpy(out, c[i], sizeof out);
        float *ci = C + i * ldc;
        if (acc)
            for (int64_t j = 0; j < nc; j++) ci[j] += out[j];
        else
            memcpy(ci, out, (size_t)nc * sizeof *ci);
    }
}

TN_CLONES static void panel_8(int64_t K, const float *A, int64_t lda, const float *w, float *C,
                              int64_t ldc, int64_t nc, bool acc)
{
    panel_rows(8, K, A, lda, w, C, ldc, nc, acc);
}

TN_CLONES static void panel_tail(int mr, int64_t K, const float *A, int64_t lda, const float *w,
                                 float *C, int64_t ldc, int64_t nc, bool acc)
{
    panel_rows(mr, K, A, lda, w, C, ldc, nc, acc);
}

/* C [m, n] (ldc) (+)= A [m, K] (lda) @ W [K, n] packed in panels at wp. */
static void sgemm_packed(int64_t m, int64_t n, int64_t K, const float *A, int64_t lda,
                         const float *wp, float *C, int64_t ldc, bool acc)
{
    for (int64_t p = 0; p * PNR < n; p++) {
        int64_t nc = n - p * PNR < PNR ? n - p * PNR : PNR;
        const float *w = wp + p * K * PNR;
        int64_t i = 0;
        for (; i + 8 <= m; i += 8)
            panel_8(K, A + i * lda, lda, w, C + i * ldc + p * PNR, ldc, nc, acc);
        if (i < m)
            panel_tail((int)(m - i), K, A + i * lda, lda, w, C + i * ldc + p * PNR, ldc, nc,
                       acc);
    }
}

/* Thread k's right operand of the forward (bw false) or backward product:
 *   forward   [H, gates*n]: W_hh^T's columns of the thread's units, gate by
 *             gate (g*n + j is gate g of unit j0 + j);
 *   backward  [G, n]: W_hh's columns j0 .. j0 + n.
 * K (rows) and width, and the offset of its panels in the packed buffer. */
static void operand_of(const rec *r, bool bw, int k, int64_t *K, int64_t *width, int64_t *off)
{
    int64_t ng = bw ? 1 : r->G / r->H, rows = bw ? r->G : r->H, o = 0;
    for (int q = 0; q < k; q++) {
        int64_t w = ng * (rec_units(r, q + 1) - rec_units(r, q));
        o += rows * ((w + PNR - 1) / PNR * PNR);
    }
    *K = rows;
    *width = ng * (rec_units(r, k + 1) - rec_units(r, k));
    *off = o;
}

/* Floats of the packed operands of all threads. */
static int64_t packed_size(const rec *r, bool bw)
{
    int64_t K, w, off;
    operand_of(r, bw, r->nt - 1, &K, &w, &off);
    return off + K * ((w + PNR - 1) / PNR * PNR);
}

/* Pack every thread's operand (float) from W_hh (r->whh) into dst. */
static void pack_operands(const rec *r, bool bw, float *dst)
{
    const float *W = r->whh.p;
    int64_t H = r->H, rs = r->whh.rs, cs = r->whh.cs;
    for (int k = 0; k < r->nt; k++) {
        int64_t K, width, off, j0 = rec_units(r, k), n = rec_units(r, k + 1) - j0;
        operand_of(r, bw, k, &K, &width, &off);
        float *d = dst + off;
        for (int64_t c = 0; c < (width + PNR - 1) / PNR * PNR; c++) {
            float *col = d + (c / PNR) * K * PNR + c % PNR;
            int64_t g = c / n, j = c % n;
            for (int64_t i = 0; i < K; i++)
                col[i * PNR] = c >= width ? 0.0f
                               : bw       ? W[i * rs + (j0 + c) * cs]
                                          : W[(g * H + j0 + j) * rs + i * cs];
        }
    }
}

/* Thread k's per-step product: C [B, width] (ldc) (+= when acc) A [B, K]
 * (lda) @ its operand (see operand_of). float: the packed kernel; double
 * (the gradient checks): BLIS on one thread straight from W_hh, one
 * product per gate forward (W_hh's rows of the gate's units, transposed). */
static void rec_product(const rec *r, bool bw, int k, const void *A, int64_t lda, void *C,
                        int64_t ldc, bool acc)
{
    int64_t K, width, off;
    operand_of(r, bw, k, &K, &width, &off);
    if (r->dt == TN_F32) {
        sgemm_packed(r->B, width, K, A, lda, (const float *)(bw ? r->wb : r->wf) + off, C, ldc,
                     acc);
        return;
    }
    tn__mat a = {(void *)A, r->B, K, lda, 1}, w = r->whh;
    int64_t j0 = rec_units(r, k), H = r->H;
    if (bw) { /* W_hh[:, j0 : j0 + n] */
        w.p = (double *)w.p + j0 * w.cs;
        w.n = width;
        tn__gemm_on(r->dt, a, w, acc ? 1.0 : 0.0, (tn__mat){C, r->B, width, ldc, 1}, 1);
        return;
    }
    int64_t n = width / (r->G / H);
    for (int64_t g = 0; g < r->G / H; g++) { /* (W_hh[g*H + j0 .., :])^T */
        tn__mat wg = {(double *)w.p + (g * H + j0) * w.rs, n, H, w.rs, w.cs};
        tn__gemm_on(r->dt, a, tn__mat_t(wg), acc ? 1.0 : 0.0,
                    (tn__mat){(double *)C + g * n, r->B, n, ldc, 1}, 1);
    }
}

#define RT float
#define RS f32
#define RATTR TN_CLONES
#include "recurrent_rows.h"
#undef RT
#undef RS
#undef RATTR

#define RT double
#define RS f64
#define RATTR
#include "recurrent_rows.h"
#undef RT
#undef RS
#undef RATTR

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

int tn_cell_from_name(const char *name)
{
    if (!name)
        return -1;
    if (strcmp(name, "rnn") == 0 || strcmp(name, "rnn_tanh") == 0)
        return TN_CELL_RNN_TANH;
    if (strcmp(name, "rnn_relu") == 0)
        return TN_CELL_RNN_RELU;
    if (strcmp(name, "lstm") == 0)
        return TN_CELL_LSTM;
    if (strcmp(name, "gru") == 0)
        return TN_CELL_GRU;
    return -1;
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

static void *arena(tn_tape *tp, int64_t n, size_t es)
{
    return tn_tape_alloc(tp, (size_t)n * es);
}

tn_tensor *tn_recurrent(tn_tape *tp, tn_cell cell, const tn_rnn_weights *w, tn_tensor *x,
                        tn_tensor *h0, tn_tensor *c0, const int32_t *lengths, bool reverse)
{
    TN_FTZ_SCOPE; /* the time loop's thread 0 is the caller */
    if (!tp) {
        tn_set_error(TN_ERR_ARG, "recurrent: tape is NULL");
        return NULL;
    }
    if (tp->err != TN_OK)
        return NULL;
    if (!w) {
        tn_tape_fail(tp, TN_ERR_ARG, "recurrent: weights are NULL");
        return NULL;
    }
    tn_tensor *in[7] = {x, w->w_ih, w->w_hh, w->b_ih, w->b_hh, h0, c0}, *chk[7];
    int n = 0;
    for (int i = 0; i < 7; i++)
        if (i < 3 || in[i])
            chk[n++] = in[i];
    if (!tn__check(tp, "recurrent", n, chk))
        return NULL;
    if (tn_cell_gates(cell) == 0) {
        tn_tape_fail(tp, TN_ERR_ARG, "recurrent: unknown cell %d", (int)cell);
        return NULL;
    }
    const char *name = tn_cell_name(cell);
    int gates = tn_cell_gates(cell);
    tn_tensor *w_ih = w->w_ih, *w_hh = w->w_hh, *b_ih = w->b_ih, *b_hh = w->b_hh;
    if (x->ndim != 3 || w_ih->ndim != 2 || w_hh->ndim != 2) {
        tn_tape_fail(tp, TN_ERR_SHAPE,
                     "recurrent (%s): x %s, w_ih %s, w_hh %s; expected x [B, T, I], w_ih "
                     "[%d*H, I], w_hh [%d*H, H]",
                     name, TN_SHP(x), TN_SHP(w_ih), TN_SHP(w_hh), gates, gates);
        return NULL;
    }
    int64_t B = x->shape[0], T = x->shape[1], In = x->shape[2], H = w_hh->shape[1];
    int64_t G = gates * H;
    if (w_hh->shape[0] != G || w_ih->shape[0] != G || w_ih->shape[1] != In) {
        tn_tape_fail(tp, TN_ERR_SHAPE,
                     "recurrent (%s): w_ih %s, w_hh %s for x %s; expected w_ih [%lld, %lld] and "
                     "w_hh [%lld, %lld] (%d gates of H = w_hh's columns)",
                     name, TN_SHP(w_ih), TN_SHP(w_hh), TN_SHP(x), (long long)G, (long long)In,
                     (long long)G, (long long)H, gates);
        return NULL;
    }
    tn_tensor *bs[2] = {b_ih, b_hh};
    for (int i = 0; i < 2; i++)
        if (bs[i] && (bs[i]->ndim != 1 || bs[i]->shape[0] != G)) {
            tn_tape_fail(tp, TN_ERR_SHAPE, "recurrent (%s): %s %s, expected [%lld]", name,
                         i ? "b_hh" : "b_ih", TN_SHP(bs[i]), (long long)G);
            return NULL;
        }
    if (c0 && cell != TN_CELL_LSTM) {
        tn_tape_fail(tp, TN_ERR_ARG, "recurrent (%s): c0 given, but only LSTM has a cell state",
                     name);
        return NULL;
    }
    tn_tensor *st[2] = {h0, c0};
    for (int i = 0; i < 2; i++)
        if (st[i] && !is_bh(st[i], B, H)) {
            tn_tape_fail(tp, TN_ERR_SHAPE, "recurrent (%s): %s %s, expected [%lld, %lld]", name,
                         i ? "c0" : "h0", TN_SHP(st[i]), (long long)B, (long long)H);
            return NULL;
        }
    if (lengths)
        for (int64_t b = 0; b < B; b++)
            if (lengths[b] < 1 || lengths[b] > T) {
                tn_tape_fail(tp, TN_ERR_INDEX,
                             "recurrent (%s): lengths[%lld] = %d outside 1..T = %lld", name,
                             (long long)b, (int)lengths[b], (long long)T);
                return NULL;
            }

    /* Layouts the kernels take: contiguous states and weights, x rows with
     * one stride. Copies (recorded ops) only where an input is otherwise. */
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

    tn_dtype dt = x->dtype;
    size_t es = tn_dtype_size(dt);
    bool gru = cell == TN_CELL_GRU;
    rec *r = tn_tape_alloc(tp, sizeof *r);
    if (!r)
        return NULL;
    *r = (rec){.cell = cell, .reverse = reverse, .dt = dt, .B = B, .T = T, .In = In, .H = H, .G = G};
    int32_t *len = lengths ? tn_tape_alloc(tp, (size_t)B * sizeof *len) : NULL;
    r->A = arena(tp, B * T * G, es);
    r->P = arena(tp, (gru ? 2 : 1) * B * G, es);
    r->bias = arena(tp, G, es);
    r->zero = arena(tp, H, es);
    r->hcur = arena(tp, 2 * B * H, es);
    if ((lengths && !len) || !r->A || !r->P || !r->bias || !r->zero || !r->hcur)
        return NULL;
    if (gru && (!(r->Q = arena(tp, B * T * H, es)) || !(r->bhn = arena(tp, H, es))))
        return NULL;
    if (cell == TN_CELL_LSTM && !(r->ccur = arena(tp, 2 * B * H, es)))
        return NULL;
    if (lengths)
        memcpy(len, lengths, (size_t)B * sizeof *len);
    r->len = len;
    memset(r->zero, 0, (size_t)H * es);
    r->h0 = h0 ? h0->data : NULL;
    r->c0 = c0 ? c0->data : NULL;
    void *s0[2] = {r->hcur, r->ccur};
    const void *init[2] = {r->h0, r->c0};
    for (int i = 0; i < 2; i++)
        if (s0[i] && init[i])
            memcpy(s0[i], init[i], (size_t)(B * H) * es);
        else if (s0[i])
            memset(s0[i], 0, (size_t)(B * H) * es);
    /* Threads of the time loops: each owns whole vectors of units, at
     * least 16 (below that the barriers cost more than they save). */
    int nt = H >= 32 ? tn_num_threads() : 1;
    r->per = ((H + nt - 1) / nt + 15) / 16 * 16;
    r->nt = (int)((H + r->per - 1) / r->per);
    r->whh = (tn__mat){w_hh->data, G, H, w_hh->stride[0], w_hh->stride[1]};
    if (dt == TN_F32 && !(r->wf = arena(tp, packed_size(r, false), es)))
        return NULL;

    int S = cell == TN_CELL_LSTM ? 2 : 1;
    tn_tensor *src[7] = {x, w_ih, w_hh, b_ih, b_hh, h0, c0};
    tn_tensor *y = tn__result_n(tp, TN_OP_RECURRENT, dt, 4, (int64_t[]){S, B, T, H}, false, 7,
                                src);
    if (!y)
        return NULL;
    y->aux = r;

    if (dt == TN_F32) {
        biases_f32(r, b_ih, b_hh);
        pack_operands(r, false, r->wf);
    } else {
        biases_f64(r, b_ih, b_hh);
    }
    tn__gemm(dt, xm, tn__mat_t((tn__mat){w_ih->data, G, In, In, 1}), 0.0,
             (tn__mat){r->A, B * T, G, G, 1});
    if (dt == TN_F32)
        forward_steps_f32(r, y->data);
    else
        forward_steps_f64(r, y->data);
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
                    (tn__mat){(char *)dW.p + (size_t)(2 * H * dW.rs) * es, H, H, dW.rs, dW.cs},
                    nt);
    } else {
        tn__gemm_on(r->dt, tn__mat_t((tn__mat){r->A, BT, G, G, 1}), hm, 1.0, dW, nt);
    }
}

void tn__bw_recurrent(tn_tensor *y)
{
    rec *r = y->aux;
    tn_tape *tp = y->tape;
    tn_tensor *x = y->src[0], *w_ih = y->src[1], *w_hh = y->src[2], *b_ih = y->src[3];
    tn_tensor *b_hh = y->src[4], *h0 = y->src[5], *c0 = y->src[6];
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
    if (r->dt == TN_F32) {
        if (!(r->wb = arena(tp, packed_size(r, true), es)))
            return;
        pack_operands(r, true, r->wb);
    }
    if (r->dt == TN_F32)
        backward_steps_f32(r, y->data, y->grad, gh, gc, need_h0);
    else
        backward_steps_f64(r, y->data, y->grad, gh, gc, need_h0);

    /* dA [B*T, G] now holds the gradients of the gates' pre-activations. */
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
    bool pair = tn_num_threads() == 2 && mac_in <= 1.5 * mac_hh && mac_hh <= 1.5 * mac_in;
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
        if (r->dt == TN_F32) {
            float *out = bs[i]->grad;
            colsum_f32(r->A, BT, n0, G, out, os);
            if (n0 < G) /* GRU b_hn: the gradient of q */
                colsum_f32(r->Q, BT, H, H, out + n0 * os, os);
        } else {
            double *out = bs[i]->grad;
            colsum_f64(r->A, BT, n0, G, out, os);
            if (n0 < G)
                colsum_f64(r->Q, BT, H, H, out + n0 * os, os);
        }
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
