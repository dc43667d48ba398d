/* src/ops/fused.c - fused point-wise cell ops: the gate math of an LSTM or
 * GRU step in one pass over memory instead of ten. General ops with their
 * own gradient checks; the layers in src/nn call them through ops.h.
 *
 * The gate math is the recurrent op's (rows.h, one row kernel per cell and
 * direction, on the active kernel path): a row of the inputs is copied
 * into contiguous tape memory (they may be strided views, e.g. one
 * timestep of an input projection), the kernel runs on it with zero bias
 * and zero recurrent part where the op has none, and backward runs the
 * kernel on a copy of the saved activations so that the op can be
 * differentiated more than once. Results are contiguous.
 */
#include "ops_internal.h"
#include "rows.h"

/* 2-D strided access: element (b, j) of t at b*rs + j*cs. */
typedef struct mat2 {
    int64_t rs, cs;
} mat2;

static mat2 mat2_of(const tn_tensor *t)
{
    return (mat2){t->ndim == 2 ? t->stride[0] : 0, t->stride[t->ndim - 1]};
}

static bool is_mat(const tn_tensor *t, int64_t B, int64_t n)
{
    return t->ndim == 2 && t->shape[0] == B && t->shape[1] == n;
}

/* dst [n] := row b of src (strided, m), or zeros when src is NULL. */
static void row_get(void *dst, const void *src, mat2 m, int64_t b, int64_t n, tn_dtype dt)
{
    TN_FOR_DTYPE(dt, T, {
        T *d = dst;
        const T *s = src;
        for (int64_t j = 0; j < n; j++)
            d[j] = s ? s[b * m.rs + j * m.cs] : 0;
    });
}

/* Row b of dst (strided, m) += src [n]. */
static void row_add(void *dst, mat2 m, int64_t b, const void *src, int64_t n, tn_dtype dt)
{
    TN_FOR_DTYPE(dt, T, {
        T *d = dst;
        const T *s = src;
        for (int64_t j = 0; j < n; j++)
            d[b * m.rs + j * m.cs] += s[j];
    });
}

/* Tape scratch of n elements of dt, zero-filled (NULL on OOM: the tape has
 * the error). */
static void *scratch(tn_tape *tp, int64_t n, tn_dtype dt)
{
    void *p = tn_tape_alloc(tp, (size_t)n * tn_dtype_size(dt));
    if (p)
        memset(p, 0, (size_t)n * tn_dtype_size(dt));
    return p;
}

/* ---- LSTM ---- */

/* gates [B, 4H] (i, f, g, o pre-activations), c [B, H] or NULL (zeros) ->
 * y [B, 2H] = [h' | c'] with c' = f c + i g, h' = o tanh(c').
 * aux: act [B, 4H] activated gates. */
tn_tensor *tn_lstm_cell(tn_tape *tp, tn_tensor *gates, tn_tensor *c)
{
    tn_tensor *in[2] = {gates, c};
    if (!tn__check(tp, "lstm_cell", c ? 2 : 1, in))
        return NULL;
    int64_t B = gates->shape[0], H = gates->shape[1] / 4;
    if (gates->ndim != 2 || gates->shape[1] % 4 != 0 || (c && !is_mat(c, B, H))) {
        tn_tape_fail(tp, TN_ERR_SHAPE, "lstm_cell: gates %s, c %s; expected [B, 4H] and [B, H]",
                     TN_SHP(gates), c ? TN_SHP(c) : "none");
        return NULL;
    }
    tn_dtype dt = gates->dtype;
    size_t es = tn_dtype_size(dt);
    void *act = tn_tape_alloc(tp, (size_t)(B * 4 * H) * es);
    void *zero = scratch(tp, 4 * H, dt), *cps = scratch(tp, B * H, dt);
    tn_tensor *y = act && zero && cps ? tn__result(tp, TN_OP_LSTM_CELL, dt, 2,
                                                   (int64_t[]){B, 2 * H}, false, gates, c, NULL)
                                      : NULL;
    if (!y)
        return NULL;
    tn__node(y)->aux = act;
    const tn__rows *kr = tn__rows_get(dt);
    mat2 mg = mat2_of(gates), mc = c ? mat2_of(c) : (mat2){0, 0};
    TN_PAR_FOR(B * H > TN_PAR_MIN / 8, b, 0, B, {
        char *a = (char *)act + (size_t)(b * 4 * H) * es, *cp = (char *)cps + (size_t)(b * H) * es;
        char *h = (char *)y->data + (size_t)(b * 2 * H) * es;
        row_get(a, gates->data, mg, b, 4 * H, dt);
        if (c)
            row_get(cp, c->data, mc, b, H, dt);
        kr->lstm_fw(H, H, a, zero, zero, 0, cp, h, h + (size_t)H * es);
    });
    return tn__finish(tp, y);
}

/* dy [B, 2H] = [dh' | dc'] -> dgates [B, 4H] (+=), dc [B, H] (+=), by the
 * row kernel on a copy of the activations (see rows.h for its maths). */
void tn__bw_lstm_cell(tn_tensor *y)
{
    tn_tensor *gates = tn__node(y)->src[0], *c = tn__node(y)->src[1];
    bool wg = tn__wants(gates), wc = tn__wants(c);
    if (!wg && !wc)
        return;
    int64_t B = y->shape[0], H = y->shape[1] / 2;
    tn_dtype dt = y->dtype;
    size_t es = tn_dtype_size(dt);
    /* per row: 4H gate gradients, H previous c, H gh, H gc */
    void *work = scratch(tn__node(y)->tape, B * 7 * H, dt);
    if (!work)
        return; /* out of memory: the tape has the error */
    const tn__rows *kr = tn__rows_get(dt);
    mat2 mg = mat2_of(gates), mc = c ? mat2_of(c) : (mat2){0, 0};
    TN_PAR_FOR(B * H > TN_PAR_MIN / 8, b, 0, B, {
        char *d = (char *)work + (size_t)(b * 7 * H) * es;
        char *cp = d + (size_t)(4 * H) * es, *gh = cp + (size_t)H * es, *gc = gh + (size_t)H * es;
        const char *yrow = (const char *)y->data + (size_t)(b * 2 * H) * es;
        const char *dy = (const char *)y->grad + (size_t)(b * 2 * H) * es;
        memcpy(d, (const char *)tn__node(y)->aux + (size_t)(b * 4 * H) * es, (size_t)(4 * H) * es);
        if (c)
            row_get(cp, c->data, mc, b, H, dt);
        kr->lstm_bw(H, H, d, yrow + (size_t)H * es, cp, dy, dy + (size_t)H * es, gh, gc);
        if (wg)
            row_add(gates->grad, mg, b, d, 4 * H, dt);
        if (wc)
            row_add(c->grad, mc, b, gc, H, dt);
    });
}

/* ---- GRU ---- */

/* xg [B, 3H] (r, z, n input parts, with b_ih), hg [B, 3H] or [3H]
 * (recurrent parts with b_hh; 1-D when h is zeros), h [B, H] or NULL ->
 * y [B, H]: r = s(xr + hr), z = s(xz + hz), n = tanh(xn + r hn),
 * h' = (1 - z) n + z h. aux: act [B, 3H] = r, z, n, then q [B, H] = hn. */
tn_tensor *tn_gru_cell(tn_tape *tp, tn_tensor *xg, tn_tensor *hg, tn_tensor *h)
{
    tn_tensor *in[3] = {xg, hg, h};
    if (!tn__check(tp, "gru_cell", h ? 3 : 2, in))
        return NULL;
    int64_t B = xg->shape[0], H = xg->shape[1] / 3;
    bool hg_ok = is_mat(hg, B, 3 * H) || (hg->ndim == 1 && hg->shape[0] == 3 * H);
    if (xg->ndim != 2 || xg->shape[1] % 3 != 0 || !hg_ok || (h && !is_mat(h, B, H))) {
        tn_tape_fail(tp, TN_ERR_SHAPE,
                     "gru_cell: xg %s, hg %s, h %s; expected [B, 3H], [B, 3H] or [3H], [B, H]",
                     TN_SHP(xg), TN_SHP(hg), h ? TN_SHP(h) : "none");
        return NULL;
    }
    tn_dtype dt = xg->dtype;
    size_t es = tn_dtype_size(dt);
    void *aux = tn_tape_alloc(tp, (size_t)(B * 4 * H) * es);
    void *zero = scratch(tp, 3 * H, dt), *work = scratch(tp, B * 4 * H, dt);
    tn_tensor *y = aux && zero && work
                       ? tn__result(tp, TN_OP_GRU_CELL, dt, 2, (int64_t[]){B, H}, false, xg, hg, h)
                       : NULL;
    if (!y)
        return NULL;
    tn__node(y)->aux = aux;
    const tn__rows *kr = tn__rows_get(dt);
    mat2 mx = mat2_of(xg), mh = mat2_of(hg), mp = h ? mat2_of(h) : (mat2){0, 0};
    TN_PAR_FOR(B * H > TN_PAR_MIN / 8, b, 0, B, {
        char *a = (char *)aux + (size_t)(b * 3 * H) * es;
        char *q = (char *)aux + (size_t)(B * 3 * H + b * H) * es;
        char *p = (char *)work + (size_t)(b * 4 * H) * es, *hp = p + (size_t)(3 * H) * es;
        row_get(a, xg->data, mx, b, 3 * H, dt);
        row_get(p, hg->data, mh, b, 3 * H, dt);
        if (h)
            row_get(hp, h->data, mp, b, H, dt);
        kr->gru_fw(H, H, a, zero, p, H, zero, hp, q, (char *)y->data + (size_t)(b * H) * es);
    });
    return tn__finish(tp, y);
}

/* dy [B, H] -> dxg [B, 3H], dhg [B, 3H] or [3H] (summed over rows), dh
 * (all +=), by the row kernel on a copy of the activations. */
void tn__bw_gru_cell(tn_tensor *y)
{
    tn_tensor *xg = tn__node(y)->src[0], *hg = tn__node(y)->src[1], *h = tn__node(y)->src[2];
    bool wx = tn__wants(xg), wg = tn__wants(hg), wh = tn__wants(h);
    if (!wx && !wg && !wh)
        return;
    int64_t B = y->shape[0], H = y->shape[1];
    tn_dtype dt = y->dtype;
    size_t es = tn_dtype_size(dt);
    /* per row: 3H gate gradients, H q, H previous h, H gh, 3H dp */
    void *work = scratch(tn__node(y)->tape, B * 9 * H, dt);
    if (!work)
        return; /* out of memory: the tape has the error */
    const tn__rows *kr = tn__rows_get(dt);
    mat2 mx = mat2_of(xg), mh = mat2_of(hg), mp = h ? mat2_of(h) : (mat2){0, 0};
    bool hg_rows = hg->ndim == 2; /* 1-D hg: every row adds into one vector */
    TN_PAR_FOR(hg_rows && B * H > TN_PAR_MIN / 8, b, 0, B, {
        char *d = (char *)work + (size_t)(b * 9 * H) * es;
        char *q = d + (size_t)(3 * H) * es, *hp = q + (size_t)H * es;
        char *gh = hp + (size_t)H * es, *dp = gh + (size_t)H * es;
        memcpy(d, (const char *)tn__node(y)->aux + (size_t)(b * 3 * H) * es, (size_t)(3 * H) * es);
        memcpy(q, (const char *)tn__node(y)->aux + (size_t)(B * 3 * H + b * H) * es,
               (size_t)H * es);
        if (h)
            row_get(hp, h->data, mp, b, H, dt);
        kr->gru_bw(H, H, d, q, hp, (const char *)y->grad + (size_t)(b * H) * es, gh, dp);
        if (wx)
            row_add(xg->grad, mx, b, d, 3 * H, dt);
        if (wg)
            row_add(hg->grad, mh, b, dp, 3 * H, dt);
        if (wh)
            row_add(h->grad, mp, b, gh, H, dt);
    });
}
