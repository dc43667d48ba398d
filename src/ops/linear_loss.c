/* src/ops/linear_loss.c - linear_cross_entropy: an output layer
 * (x = h W^T + b) and cross-entropy with class weights, ignore_index and
 * label smoothing in one op that never holds the whole [N, V] logits.
 *
 * Row i (t = t_i, w the class weights, all 1 without, S = sum_c w[c], e the
 * smoothing, lse = logsumexp(x_i), m = max_c x_i[c]), as PyTorch:
 *   loss_i = (1 - e) w[t] (lse - x[t]) + (e / V) sum_c w[c] (lse - x[c])
 * The smoothing sum is formed as sum_c w[c] (m - x[c]) + S (lse - m), two
 * sums of terms >= 0, so nothing cancels. Its gradient is
 *   d loss_i / d x[c] = a p[c] - (e / V) w[c] - (1 - e) w[t] [c == t],
 *   a = (1 - e) w[t] + (e / V) S,   p = softmax(x_i);
 * ignored rows have loss and gradient 0, and 'mean' divides by
 * sum_i w[t_i] over the rows not ignored.
 *
 * Rows go in blocks of R (block_rows): one GEMM makes the block's logits
 * [R, V] (after the bias is copied in), a row loop (threaded when large)
 * its losses, and for a gradient the block is overwritten with
 * G = c_i d loss_i / d x_i, after which
 *   dh_blk [R, H] += G [R, V] @ W [V, H],   dW [V, H] += G^T [V, R] @ h_blk [R, H],
 *   db [V] += column sums of G.
 * For 'mean' and 'sum' the forward (when recording gradients) does this
 * with c_i = 1 / divisor into buffers of its own, since the upstream
 * gradient g is one scalar: backward adds g times them. This costs one
 * logits GEMM fewer than recomputing the logits in backward (the path
 * 'none' takes, whose c_i = dy[i] are only known there), at the price of
 * doing the gradient work in a forward that may not be followed by a
 * backward (no-grad mode skips it). When G [N, V] is no larger than dh and
 * dW together (a small vocabulary: N V <= (N + V) H) the forward keeps G
 * whole instead, as one block, and backward scales it and makes the
 * products.
 *
 * Ignored rows are dropped before any of this: when some targets are
 * ignore_index, the other rows of h are copied into a compact [N', H]
 * matrix that the passes read, and their gradient rows are added back to
 * h's rows afterwards; padded batches (translate's targets) then spend
 * no GEMM work on padding.
 *
 * Per-row losses are summed in double in row order, so results do not
 * depend on the thread count; lse and the losses are computed in double
 * from the logits of h's dtype (float32 exps by the vectorised kernel).
 * Node: src = {h, weight, bias or NULL}; aux = the lce record below.
 */
#include "ops_internal.h"
#include "fastmath.h"
#include "rows.h"

#define NAME "linear_cross_entropy"

/* The op's record (tape memory). */
typedef struct lce {
    tn_dtype dt;
    int64_t n, hd, v, r; /* rows the passes read, features, classes, rows per block */
    int64_t n_all;       /* h's rows */
    const int64_t *rows; /* [n] h's row of each row read, or NULL: all, in order */
    tn__mat hm;          /* [n, H] the rows read: h, or the compact copy of the kept rows */
    tn_reduction red;
    int64_t ignore;
    double eps, sw, div; /* smoothing; sum of the class weights; the mean's divisor (else 1) */
    int32_t *tg;         /* [n] targets of the rows read (copied) */
    double *cw;          /* [V] class weights, or NULL (all 1) */
    void *blk;           /* [R, V] logits of one block; with keep, G [n, V] */
    void *dh, *dw, *db;  /* forward's d loss / d h [n, H] (rows read), W [V, H], b [V], or NULL */
    bool keep;           /* blk holds the whole G (small V), scaled by gk so far */
    double gk;
} lce;

/* Rows per block: as many as 32 MiB of logits hold (tn__lce_block_bytes),
 * at least 16. Each block streams W [V, H] through the logits GEMM and
 * dh's and reads and writes dW [V, H] in dW's: about 4 V H element moves
 * per block against 6 R V H flops, so longer blocks move less memory and
 * give BLIS longer operands (dW's inner size is R), while the row pass
 * works on one row (V es bytes, 44 KB at V 11099) at a time, which L2
 * holds. Measured with bench/lce_bench (float, 2 threads, AMD EPYC Zen 5,
 * ms per forward + backward of 'mean', two runs; up to 256 rows per block
 * -> as many as fit): word_lm's N 700 H 200 V 9984 39.2-40.5 -> 32.1-33.8
 * (AVX-512), 57.9-59.2 -> 54.5-54.7 (AVX2); translate's N 640 H 256
 * V 11099 43.5-58.3 -> 41.4-41.9 (AVX-512), 80.9-83.2 -> 69.9-75.2
 * (AVX2); N 4096 H 256 V 2000 47.9-48.7 -> 42.2-43.3; N 2048 H 512 V 8000
 * 184.1-194.5 -> 158.5-182.7 (two blocks of 1024). The block costs tape
 * memory (word_lm's op: 35 -> 44 MB, the unfused ops 71 MB). */
int64_t tn__lce_block_bytes = (int64_t)32 << 20;

static int64_t block_rows(int64_t n, int64_t v, size_t es)
{
    int64_t r = tn__lce_block_bytes / (v * (int64_t)es);
    r = r < 16 ? 16 : r;
    return r < n ? r : n;
}

/* Where a pass puts the gradients (p NULL: not wanted). dh and dW are
 * added to (beta 1) unless the flag says the target is uninitialised. */
typedef struct lce_out {
    tn__mat dh; /* [N, H] */
    tn__mat dw; /* [V, H] */
    void *db;   /* [V] at stride dbs */
    int64_t dbs;
    bool dh_fresh, dw_fresh; /* dh: each block written once (beta 0); dW: first block beta 0 */
} lce_out;

/* One row: x [V] (contiguous, the logits of row i) -> its loss (not yet
 * divided by the mean's divisor); with grad, x := coef * d loss_i / d x.
 * Written once per element type (lce_row_f32, lce_row_f64); the float
 * maximum and exps go through the vectorised kernels row_max and exp_sum. */
#define LCE_ROW_FN(T, SUF)                                                             \
    static double lce_row_##SUF(const lce *s, T *x, int64_t i, bool grad, double coef, \
                                const tn__rows *kern)                                  \
    {                                                                                  \
        int64_t t = s->tg[i], v = s->v;                                                \
        if (t == s->ignore) {                                                          \
            if (grad)                                                                  \
                memset(x, 0, (size_t)v * sizeof(T));                                   \
            return 0;                                                                  \
        }                                                                              \
        const double *cw = s->cw;                                                      \
        double e = s->eps, ev = e / (double)v;                                         \
        double wt = cw ? cw[t] : 1.0, xt = (double)x[t];                               \
        T m = x[0];                                                                    \
        if (sizeof(T) == sizeof(float))                                                \
            m = (T)kern->row_max(v, (const float *)x);                                 \
        else                                                                           \
            for (int64_t k = 1; k < v; k++)                                            \
                m = x[k] > m ? x[k] : m;                                               \
        double z = 0, sm = 0; /* sum exp(x - m); sum w (m - x) */                      \
        for (int64_t k0 = 0; k0 < v; k0 += 64) {                                       \
            T ex[64];                                                                  \
            int64_t nk = v - k0 < 64 ? v - k0 : 64;                                    \
            if (sizeof(T) == sizeof(float)) /* vectorised, in lanes */                 \
                z += kern->exp_sum(nk, (const float *)x + k0, (float)m, (float *)ex);  \
            else                                                                       \
                for (int64_t k = 0; k < nk; k++) {                                     \
                    ex[k] = TN_EXP(x[k0 + k] - m);                                     \
                    z += (double)ex[k];                                                \
                }                                                                      \
            if (e > 0)                                                                 \
                for (int64_t k = 0; k < nk; k++)                                       \
                    sm += (cw ? cw[k0 + k] : 1.0) * ((double)m - (double)x[k0 + k]);   \
            if (grad)                                                                  \
                memcpy(x + k0, ex, (size_t)nk * sizeof(T));                            \
        }                                                                              \
        double lse = (double)m + log(z);                                               \
        double loss = (1 - e) * wt * (lse - xt);                                       \
        if (e > 0)                                                                     \
            loss += ev * (sm + s->sw * (lse - (double)m));                             \
        if (grad) { /* x holds exp(x - m), so p = x / z */                             \
            T pa = (T)(coef * ((1 - e) * wt + ev * s->sw) / z), sc = (T)(coef * ev);   \
            if (e > 0)                                                                 \
                for (int64_t k = 0; k < v; k++)                                        \
                    x[k] = pa * x[k] - sc * (T)(cw ? cw[k] : 1.0);                     \
            else                                                                       \
                for (int64_t k = 0; k < v; k++)                                        \
                    x[k] *= pa;                                                        \
            x[t] -= (T)(coef * (1 - e) * wt);                                          \
        }                                                                              \
        return loss;                                                                   \
    }
LCE_ROW_FN(float, f32)
LCE_ROW_FN(double, f64)

/* The gradient products of rows r0 .. r0 + G.m of G [rows, V] (contiguous:
 * c_i d loss_i / d x_i), h_blk [rows, H] their rows of h and W [V, H]:
 *   dh [rows, H] (+)= G @ W,   dW [V, H] (+)= G^T @ h_blk,   db [V] += column sums of G. */
static void lce_products(const lce *s, tn__mat G, tn__mat hb, tn__mat W, int64_t r0,
                         const lce_out *out)
{
    tn_dtype dt = s->dt;
    size_t es = tn_dtype_size(dt);
    if (out->dh.p) {
        tn__mat dhb = out->dh;
        dhb.p = (char *)dhb.p + (size_t)(r0 * dhb.rs) * es;
        dhb.m = G.m;
        tn__gemm(dt, G, W, out->dh_fresh ? 0.0 : 1.0, dhb);
    }
    if (out->dw.p)
        tn__gemm(dt, tn__mat_t(G), hb, out->dw_fresh && r0 == 0 ? 0.0 : 1.0, out->dw);
    if (out->db)
        tn__rows_get(dt)->colsum(G.p, G.m, s->v, s->v, out->db, out->dbs);
}

/* One pass over the rows read, s->hm [n, H], in blocks: logits = h W^T +
 * b, li [n] (or NULL) gets each row's loss; with out != NULL, row i's gradient
 * scaled by coef[i] goes into out's targets (with none, it stays in the
 * block: the kept G when the block is all N rows). Serial code (the GEMMs start
 * their own threads; the row loop its OpenMP team). */
static void lce_pass(tn_tape *tp, const lce *s, const tn_tensor *w, const tn_tensor *b, double *li,
                     const double *coef, const lce_out *out)
{
    tn_dtype dt = s->dt;
    int64_t n = s->n, hd = s->hd, v = s->v;
    size_t es = tn_dtype_size(dt);
    bool grad = out != NULL;
    const tn__rows *kern = tn__rows_get(TN_F32);
    /* W^T [H, V] (the logits GEMM's right operand) and W [V, H] */
    tn__mat W = {w->data, v, hd, w->stride[0], w->stride[1]}, Wt = tn__mat_t(W);
    for (int64_t r0 = 0; r0 < n; r0 += s->r) {
        int64_t rr = n - r0 < s->r ? n - r0 : s->r;
        tn__mat hb = {(char *)s->hm.p + (size_t)(r0 * s->hm.rs) * es, rr, hd, s->hm.rs, s->hm.cs};
        tn__mat X = {s->blk, rr, v, v, 1};
        /* X [rr, V] := b (each row), then X += h_blk [rr, H] @ W^T [H, V] */
        TN_FOR_DTYPE(dt, T, {
            T *XB = s->blk;
            if (b) {
                const T *B = TN_DATA(T, b);
                int64_t bs = b->stride[0];
                TN_PAR_FOR(rr * v > TN_PAR_MIN, i, 0, rr, {
                    for (int64_t k = 0; k < v; k++)
                        XB[i * v + k] = B[k * bs];
                });
            }
        });
        /* W^T packed once per recording when W is a parameter (its
         * transposed layout would make BLIS pack it one value at a time in
         * every block) */
        if (!tn__is_weight(w) || !tn__packed_product(tp, dt, hb, Wt, X, b != NULL))
            tn__gemm(dt, hb, Wt, b ? 1.0 : 0.0, X);
        /* per row: X [rr, V] -> li [rr] and, with grad, X := G */
        TN_FOR_DTYPE(dt, T, {
            T *XB = s->blk;
            TN_PAR_FOR(rr > 1 && rr * v > TN_PAR_MIN, q, 0, rr, {
                int64_t i = r0 + q;
                double c = grad ? coef[i] : 0.0, l;
                if (sizeof(T) == sizeof(float))
                    l = lce_row_f32(s, (float *)(XB + q * v), i, grad, c, kern);
                else
                    l = lce_row_f64(s, (double *)(XB + q * v), i, grad, c, kern);
                if (li)
                    li[i] = l;
            });
        });
        if (grad)
            lce_products(s, X, hb, W, r0, out);
    }
}

/* ---- checks ---- */

/* h [N, H], weight [V, H], bias [V] / NULL, targets I32 [N] in [0, V) or
 * ignore_index, class_weight [V] / NULL (finite, >= 0, no grad), the
 * smoothing in [0, 1], a known reduction. Every message names the op and
 * the shapes. */
static bool lce_check(tn_tape *tp, tn_tensor *h, tn_tensor *weight, tn_tensor *bias,
                      tn_tensor *targets, tn_tensor *cw, int64_t ignore, double eps,
                      tn_reduction red)
{
    tn_tensor *in[4] = {h, weight};
    int nin = 2;
    if (bias)
        in[nin++] = bias;
    if (cw)
        in[nin++] = cw;
    if (!tn__check(tp, NAME, nin, in))
        return false;
    if (!targets) {
        tn_tape_fail(tp, TN_ERR_ARG, NAME ": targets is NULL (h %s, weight %s)", TN_SHP(h),
                     TN_SHP(weight));
        return false;
    }
    if (h->ndim != 2 || weight->ndim != 2 || h->shape[1] != weight->shape[1]) {
        tn_tape_fail(tp, TN_ERR_SHAPE,
                     NAME ": h %s must be [N, H] and weight %s [V, H] (nn.Linear's layout)",
                     TN_SHP(h), TN_SHP(weight));
        return false;
    }
    int64_t n = h->shape[0], v = weight->shape[0];
    if (bias && (bias->ndim != 1 || bias->shape[0] != v)) {
        tn_tape_fail(tp, TN_ERR_SHAPE, NAME ": bias %s must be [V] = [%lld] for weight %s",
                     TN_SHP(bias), (long long)v, TN_SHP(weight));
        return false;
    }
    if (targets->dtype != TN_I32) {
        tn_tape_fail(tp, TN_ERR_DTYPE, NAME ": targets %s must be int32, got %s", TN_SHP(targets),
                     tn_dtype_name(targets->dtype));
        return false;
    }
    if (targets->ndim != 1 || targets->shape[0] != n) {
        tn_tape_fail(tp, TN_ERR_SHAPE, NAME ": targets %s must be [N] = [%lld] for h %s",
                     TN_SHP(targets), (long long)n, TN_SHP(h));
        return false;
    }
    if (cw && (cw->ndim != 1 || cw->shape[0] != v)) {
        tn_tape_fail(tp, TN_ERR_SHAPE, NAME ": class_weight %s must be [V] = [%lld] for weight %s",
                     TN_SHP(cw), (long long)v, TN_SHP(weight));
        return false;
    }
    if (cw && cw->requires_grad) {
        tn_tape_fail(tp, TN_ERR_ARG,
                     NAME ": class_weight %s requires grad; class weights are constants",
                     TN_SHP(cw));
        return false;
    }
    if (!(eps >= 0 && eps <= 1)) {
        tn_tape_fail(tp, TN_ERR_ARG, NAME ": label_smoothing %g is outside [0, 1] (h %s)", eps,
                     TN_SHP(h));
        return false;
    }
    if (red != TN_REDUCE_MEAN && red != TN_REDUCE_SUM && red != TN_REDUCE_NONE) {
        tn_tape_fail(tp, TN_ERR_ARG, NAME ": unknown reduction %d", (int)red);
        return false;
    }
    tn__mat hm = {h->data, n, h->shape[1], h->stride[0], h->stride[1]};
    tn__mat wm = {weight->data, v, weight->shape[1], weight->stride[0], weight->stride[1]};
    if (!tn__mat_ok(hm) || !tn__mat_ok(wm)) {
        tn_tape_fail(tp, TN_ERR_ARG,
                     NAME ": h %s (strides %lld, %lld) or weight %s (strides %lld, %lld) has a "
                          "layout BLIS cannot take; make it contiguous first (tn_contiguous)",
                     TN_SHP(h), (long long)h->stride[0], (long long)h->stride[1], TN_SHP(weight),
                     (long long)weight->stride[0], (long long)weight->stride[1]);
        return false;
    }
    for (int64_t k = 0; cw && k < v; k++) {
        double x = tn_tensor_get(cw, k);
        if (!(x >= 0) || !isfinite(x)) {
            tn_tape_fail(tp, TN_ERR_ARG,
                         NAME ": class_weight[%lld] = %g (class_weight %s); class weights must "
                              "be finite and >= 0",
                         (long long)k, x, TN_SHP(cw));
            return false;
        }
    }
    const int32_t *tg = TN_DATA(int32_t, targets);
    for (int64_t i = 0; i < n; i++) {
        int64_t t = tg[i * targets->stride[0]];
        if (t != ignore && (t < 0 || t >= v)) {
            tn_tape_fail(tp, TN_ERR_INDEX,
                         NAME ": target %lld at position %lld is out of range [0, %lld) for "
                              "weight %s (ignore_index %lld)",
                         (long long)t, (long long)i, (long long)v, TN_SHP(weight),
                         (long long)ignore);
            return false;
        }
    }
    return true;
}

/* ---- builder ---- */

/* Read only the `kept` rows whose targets are not ignored: s->rows their
 * rows of h, s->hm a contiguous copy of them, s->tg compacted, s->n =
 * kept. False when the arena is out of memory. */
static bool compact_rows(tn_tape *tp, lce *s, const tn_tensor *h, int64_t kept)
{
    size_t es = tn_dtype_size(s->dt);
    int64_t *rows = tn_tape_alloc(tp, (size_t)kept * sizeof *rows);
    void *hc = tn_tape_alloc(tp, (size_t)(kept * s->hd) * es);
    if (!rows || !hc)
        return false;
    int64_t k = 0;
    for (int64_t i = 0; i < s->n_all; i++)
        if (s->tg[i] != s->ignore)
            s->tg[k] = s->tg[i], rows[k++] = i;
    TN_FOR_DTYPE(s->dt, T, {
        T *d = hc;
        const T *H = TN_DATA(T, h);
        for (int64_t r = 0; r < kept; r++)
            for (int64_t j = 0; j < s->hd; j++)
                d[r * s->hd + j] = H[rows[r] * h->stride[0] + j * h->stride[1]];
    });
    s->rows = rows;
    s->n = kept;
    s->hm = (tn__mat){hc, kept, s->hd, s->hd, 1};
    return true;
}

tn_tensor *tn_linear_cross_entropy(tn_tape *tp, tn_tensor *h, tn_tensor *weight, tn_tensor *bias,
                                   tn_tensor *targets, tn_tensor *class_weight,
                                   int64_t ignore_index, double label_smoothing, tn_reduction red)
{
    if (!lce_check(tp, h, weight, bias, targets, class_weight, ignore_index, label_smoothing, red))
        return NULL;
    tn_dtype dt = h->dtype;
    size_t es = tn_dtype_size(dt);
    int64_t n = h->shape[0], hd = h->shape[1], v = weight->shape[0];
    lce *s = tn_tape_alloc(tp, sizeof *s);
    double *li = tn_tape_alloc(tp, (size_t)n * sizeof(double));
    double *coef = tn_tape_alloc(tp, (size_t)n * sizeof(double));
    if (!s || !li || !coef)
        return NULL;
    memset(s, 0, sizeof *s);
    s->dt = dt, s->n = n, s->hd = hd, s->v = v, s->red = red, s->ignore = ignore_index;
    s->eps = label_smoothing;
    s->tg = tn_tape_alloc(tp, (size_t)n * sizeof(int32_t));
    if (class_weight)
        s->cw = tn_tape_alloc(tp, (size_t)v * sizeof(double));
    if (!s->tg || (class_weight && !s->cw))
        return NULL;
    /* targets and weights copied; sw = sum of w, div = sum of w[t_i] */
    s->sw = class_weight ? 0.0 : (double)v;
    for (int64_t k = 0; class_weight && k < v; k++)
        s->sw += (s->cw[k] = tn_tensor_get(class_weight, k));
    double wsum = 0;
    int64_t kept = 0;
    for (int64_t i = 0; i < n; i++) {
        s->tg[i] = TN_DATA(int32_t, targets)[i * targets->stride[0]];
        if (s->tg[i] != ignore_index)
            wsum += s->cw ? s->cw[s->tg[i]] : 1.0, kept++;
    }
    s->div = red == TN_REDUCE_MEAN ? wsum : 1.0;
    s->n_all = n;
    s->hm = (tn__mat){h->data, n, hd, h->stride[0], h->stride[1]};
    if (kept > 0 && kept < n && !compact_rows(tp, s, h, kept))
        return NULL;
    n = s->n;
    int64_t one = 1;
    tn_tensor *y = tn__result(tp, TN_OP_LINEAR_CROSS_ENTROPY, dt, 1,
                              red == TN_REDUCE_NONE ? &s->n_all : &one, false, h, weight, bias);
    if (!y)
        return NULL;
    tn__node(y)->aux = s;
    /* With a scalar loss and gradients recorded, the forward makes the
     * gradient: d loss / d x_i scaled by 1 / div (0 when div is 0: every
     * row is then ignored and the mean NaN, its gradient zero as PyTorch).
     * When G [N, V] has fewer elements than dh [N, H] and dW [V, H] (a small
     * vocabulary) it is kept whole, one block, for backward's products;
     * else each block's products go into dh, dW and db buffers. */
    bool scalar = y->requires_grad && red != TN_REDUCE_NONE;
    s->keep = scalar && n * v <= (n + v) * hd;
    s->gk = 1.0;
    s->r = s->keep ? n : block_rows(n, v, es);
    if (!(s->blk = tn_tape_alloc(tp, (size_t)(s->r * v) * es)))
        return NULL;
    lce_out out = {0}, *po = NULL;
    if (scalar) {
        if (!s->keep) {
            if (h->requires_grad && !(s->dh = tn_tape_alloc(tp, (size_t)(n * hd) * es)))
                return NULL;
            if (weight->requires_grad && !(s->dw = tn_tape_alloc(tp, (size_t)(v * hd) * es)))
                return NULL;
            if (bias && bias->requires_grad && !(s->db = tn_tape_alloc(tp, (size_t)v * es)))
                return NULL;
            if (s->db)
                memset(s->db, 0, (size_t)v * es);
            out = (lce_out){{s->dh, n, hd, hd, 1}, {s->dw, v, hd, hd, 1}, s->db, 1, true, true};
        }
        po = &out; /* with keep: no products, G stays in blk */
        for (int64_t i = 0; i < n; i++)
            coef[i] = s->div > 0 ? 1.0 / s->div : 0.0;
    }
    lce_pass(tp, s, weight, bias, li, coef, po);
    double tot = 0;
    for (int64_t i = 0; i < n; i++)
        tot += li[i];
    TN_FOR_DTYPE(dt, T, {
        T *Y = TN_DATA(T, y);
        if (red == TN_REDUCE_NONE) {
            for (int64_t i = 0; i < s->n_all; i++)
                Y[i] = 0; /* the ignored rows' */
            for (int64_t i = 0; i < n; i++)
                Y[s->rows ? s->rows[i] : i] = (T)li[i];
        } else
            Y[0] = (T)(tot / s->div); /* 0/0 = NaN when nothing counts, as PyTorch */
    });
    return tn__finish(tp, y);
}

/* G [m, n] (element (i, j) at G[i*rs + j*cs], a gradient of dtype dt) +=
 * g D [m, n] (contiguous). */
static void add_scaled(tn_dtype dt, double g, const void *D, int64_t m, int64_t n, void *G,
                       int64_t rs, int64_t cs)
{
    TN_FOR_DTYPE(dt, T, {
        const T *d = D;
        T *o = G, gg = (T)g;
        TN_PAR_FOR(m * n > TN_PAR_MIN, i, 0, m, {
            for (int64_t j = 0; j < n; j++)
                o[i * rs + j * cs] += gg * d[i * n + j];
        });
    });
}

/* h's gradient (h's strides) += g D [s->n, H] (contiguous), row i of D
 * into h's row s->rows[i] (or i). */
static void dh_add(const lce *s, double g, const void *D, tn_tensor *h)
{
    TN_FOR_DTYPE(s->dt, T, {
        const T *d = D;
        T *o = h->grad, gg = (T)g;
        int64_t rs = h->stride[0], cs = h->stride[1];
        TN_PAR_FOR(s->n * s->hd > TN_PAR_MIN, i, 0, s->n, {
            T *r = o + (s->rows ? s->rows[i] : i) * rs;
            for (int64_t j = 0; j < s->hd; j++)
                r[j * cs] += gg * d[i * s->hd + j];
        });
    });
}

/* The gradients a pass adds into directly (their own strides); h's only
 * when every row is read, else a pass writes the compact rows' into dhc
 * [n, H] (fresh), for dh_add. */
static lce_out grads_of(const lce *s, tn_tensor *h, tn_tensor *w, tn_tensor *b, void *dhc)
{
    lce_out out = {0};
    if (tn__wants(h) && s->rows)
        out.dh = (tn__mat){dhc, s->n, s->hd, s->hd, 1}, out.dh_fresh = true;
    else if (tn__wants(h))
        out.dh = (tn__mat){h->grad, s->n, s->hd, h->stride[0], h->stride[1]};
    if (tn__wants(w))
        out.dw = (tn__mat){w->grad, s->v, s->hd, w->stride[0], w->stride[1]};
    if (tn__wants(b))
        out.db = b->grad, out.dbs = b->stride[0];
    return out;
}

/* Backward. Scalar loss, g = dy[0]: with buffers, h->grad [N, H] (h's
 * strides) += g dh, and the same for weight [V, H] and bias [V]; with G
 * kept, G is scaled to g (in place, undoing an earlier backward's scale)
 * and its products added into the gradients. 'none': the rows again with
 * coef_i = dy[i], their products added straight into the gradients. With
 * ignored rows dropped, h's gradient rows come through dh_add. */
void tn__bw_linear_cross_entropy(tn_tensor *y)
{
    lce *s = tn__node(y)->aux;
    tn_tensor *h = tn__node(y)->src[0], *w = tn__node(y)->src[1], *b = tn__node(y)->src[2];
    tn_tape *tp = tn__node(y)->tape;
    bool gh = tn__wants(h), gw = tn__wants(w), gb = tn__wants(b);
    int64_t n = s->n, hd = s->hd, v = s->v;
    if (s->red != TN_REDUCE_NONE && !s->keep) {
        double g = tn_tensor_grad_get(y, 0);
        if (gh && s->dh)
            dh_add(s, g, s->dh, h);
        if (gw && s->dw)
            add_scaled(y->dtype, g, s->dw, v, hd, w->grad, w->stride[0], w->stride[1]);
        if (gb && s->db)
            add_scaled(y->dtype, g, s->db, 1, v, b->grad, 0, b->stride[0]);
        return;
    }
    if (!gh && !gw && !gb)
        return;
    if (s->keep && tn_tensor_grad_get(y, 0) == 0)
        return;
    void *dhc = gh && s->rows ? tn_tape_alloc(tp, (size_t)(n * hd) * tn_dtype_size(s->dt)) : NULL;
    if (gh && s->rows && !dhc)
        return; /* the tape has the error; tn_backward reports it */
    lce_out out = grads_of(s, h, w, b, dhc);
    if (s->keep) {
        double g = tn_tensor_grad_get(y, 0);
        if (g != s->gk) { /* G [n, V] *= g / gk */
            TN_FOR_DTYPE(y->dtype, T, {
                T *G = s->blk, f = (T)(g / s->gk);
                TN_PAR_FOR(n * v > TN_PAR_MIN, i, 0, n, {
                    for (int64_t k = 0; k < v; k++)
                        G[i * v + k] *= f;
                });
            });
            s->gk = g;
        }
        tn__mat W = {w->data, v, hd, w->stride[0], w->stride[1]};
        lce_products(s, (tn__mat){s->blk, n, v, v, 1}, s->hm, W, 0, &out);
    } else {
        double *coef = tn_tape_alloc(tp, (size_t)n * sizeof(double));
        if (!coef)
            return;
        TN_FOR_DTYPE(y->dtype, T, {
            for (int64_t i = 0; i < n; i++)
                coef[i] = (double)TN_GRAD(T, y)[s->rows ? s->rows[i] : i];
        });
        lce_pass(tp, s, w, b, NULL, coef, &out);
    }
    if (dhc)
        dh_add(s, 1.0, dhc, h);
}
