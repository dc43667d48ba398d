/* src/ops/fused.c - fused point-wise cell ops: the gate math of an LSTM or
 * GRU step in one pass over memory instead of ten. General ops with their
 * own gradient checks; the layers in src/nn call them through ops.h.
 *
 * Inputs are 2-D and may be strided views (rs = row stride, cs = column
 * stride), e.g. one timestep of an input projection; results are
 * contiguous. Activated gates are kept in tape memory (y->aux) for backward.
 */
#include "ops_internal.h"
#include "fastmath.h"

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

/* Hot rows in float with unit column strides get their own loops, which
 * the compiler vectorises (and clones for AVX2 / AVX-512 with runtime
 * dispatch, so the default build still runs on any x86-64). */

/* One row. g [4H] gate pre-activations, cp [H] previous c (NULL: zeros) ->
 * a [4H] activated gates, tc [H] tanh(c'), h [H], cn [H] = c'. */
TN_CLONES static void lstm_row_f32(int64_t H, const float *restrict g, const float *restrict cp,
                                   float *restrict a, float *restrict tc, float *restrict h,
                                   float *restrict cn)
{
    for (int64_t j = 0; j < H; j++) {
        float i = tn__sigmoidf(g[j]), gg = tn__tanhf(g[2 * H + j]);
        a[j] = i, a[H + j] = tn__sigmoidf(g[H + j]), a[2 * H + j] = gg;
        a[3 * H + j] = tn__sigmoidf(g[3 * H + j]);
        cn[j] = i * gg;
    }
    if (cp) /* kept out of the loop above so that every build vectorises it */
        for (int64_t j = 0; j < H; j++)
            cn[j] += a[H + j] * cp[j];
    for (int64_t j = 0; j < H; j++) {
        float t = tn__tanhf(cn[j]);
        tc[j] = t, h[j] = a[3 * H + j] * t;
    }
}

/* Backward of one row: a [4H], tc [H], dh [H], dcn [H], cp [H] (NULL:
 * zeros) -> dg [4H] (+=, may be NULL), dc [H] (+=, may be NULL). dct [H] is
 * scratch for the total gradient of c'. */
TN_CLONES static void lstm_row_bw_f32(int64_t H, const float *restrict a, const float *restrict tc,
                                      const float *restrict dh, const float *restrict dcn,
                                      const float *restrict cp, float *restrict dg,
                                      float *restrict dc, float *restrict dct)
{
    for (int64_t j = 0; j < H; j++) {
        float t = tc[j];
        dct[j] = dcn[j] + dh[j] * a[3 * H + j] * (1 - t * t);
    }
    if (dg) {
        for (int64_t j = 0; j < H; j++) {
            float i = a[j], g = a[2 * H + j], o = a[3 * H + j];
            dg[j] += dct[j] * g * i * (1 - i);
            dg[2 * H + j] += dct[j] * i * (1 - g * g);
            dg[3 * H + j] += dh[j] * tc[j] * o * (1 - o);
        }
        if (cp)
            for (int64_t j = 0; j < H; j++) {
                float f = a[H + j];
                dg[H + j] += dct[j] * cp[j] * f * (1 - f);
            }
    }
    if (dc)
        for (int64_t j = 0; j < H; j++)
            dc[j] += dct[j] * a[H + j];
}

/* One GRU row. x [3H], hh [3H] input and recurrent parts, hp [H] previous
 * h (NULL: zeros) -> a [3H] = r, z, n, y [H] = h'. */
TN_CLONES static void gru_row_f32(int64_t H, const float *restrict x, const float *restrict hh,
                                  const float *restrict hp, float *restrict a, float *restrict y)
{
    for (int64_t j = 0; j < H; j++) {
        float r = tn__sigmoidf(x[j] + hh[j]);
        float z = tn__sigmoidf(x[H + j] + hh[H + j]);
        float n = tn__tanhf(x[2 * H + j] + r * hh[2 * H + j]);
        a[j] = r, a[H + j] = z, a[2 * H + j] = n;
        y[j] = n - z * n;
    }
    if (hp)
        for (int64_t j = 0; j < H; j++)
            y[j] += a[H + j] * hp[j];
}

/* ---- LSTM ---- */

/* gates [B, 4H] (i, f, g, o pre-activations), c [B, H] or NULL (zeros) ->
 * y [B, 2H] = [h' | c'] with c' = f c + i g, h' = o tanh(c').
 * aux: act [B, 4H] activated gates, then tc [B, H] = tanh(c'). */
static void lstm_forward(tn_tensor *y, const tn_tensor *gates, const tn_tensor *c, void *aux)
{
    int64_t B = y->shape[0], H = y->shape[1] / 2;
    mat2 mg = mat2_of(gates), mc = c ? mat2_of(c) : (mat2){0, 0};
    if (y->dtype == TN_F32 && mg.cs == 1 && (!c || mc.cs == 1)) {
        const float *G = gates->data, *C = c ? c->data : NULL;
        float *Y = y->data, *A = aux, *TC = A + B * 4 * H;
#pragma omp parallel for if (B * H > TN_PAR_MIN / 8)
        for (int64_t b = 0; b < B; b++)
            lstm_row_f32(H, G + b * mg.rs, C ? C + b * mc.rs : NULL, A + b * 4 * H, TC + b * H,
                         Y + b * 2 * H, Y + b * 2 * H + H);
        return;
    }
    TN_FOR_DTYPE(y->dtype, T, {
        const T *G = TN_DATA(T, gates), *C = c ? TN_DATA(T, c) : NULL;
        T *Y = TN_DATA(T, y), *A = aux, *TC = A + B * 4 * H;
        TN_OMP_FOR(B * H > TN_PAR_MIN / 8)
        for (int64_t b = 0; b < B; b++) {
            const T *g = G + b * mg.rs;
            T *a = A + b * 4 * H, *tc = TC + b * H, *h = Y + b * 2 * H, *cn = h + H;
            for (int64_t j = 0; j < H; j++) {
                T i = TN_SIGMOID(g[j * mg.cs]);
                T f = TN_SIGMOID(g[(H + j) * mg.cs]);
                T gg = TN_TANH(g[(2 * H + j) * mg.cs]);
                T o = TN_SIGMOID(g[(3 * H + j) * mg.cs]);
                T cp = C ? C[b * mc.rs + j * mc.cs] : (T)0;
                T cv = f * cp + i * gg;
                T t = TN_TANH(cv);
                a[j] = i, a[H + j] = f, a[2 * H + j] = gg, a[3 * H + j] = o;
                tc[j] = t;
                cn[j] = cv;
                h[j] = o * t;
            }
        }
    });
}

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
    size_t es = tn_dtype_size(gates->dtype);
    void *aux = tn_tape_alloc(tp, (size_t)(B * 5 * H) * es);
    tn_tensor *y = aux ? tn__result(tp, TN_OP_LSTM_CELL, gates->dtype, 2,
                                    (int64_t[]){B, 2 * H}, false, gates, c, NULL)
                       : NULL;
    if (!y)
        return NULL;
    y->aux = aux;
    lstm_forward(y, gates, c, aux);
    return tn__finish(tp, y);
}

/* dy [B, 2H] = [dh' | dc'] -> dgates [B, 4H] (+=), dc [B, H] (+=):
 *   dc_total = dc' + dh' o (1 - tc^2); do = dh' tc; di = dc_total g;
 *   dg = dc_total i; df = dc_total c; dc_prev = dc_total f;
 *   pre-activation grads: sigmoid' = a (1 - a), tanh' = 1 - a^2. */
void tn__bw_lstm_cell(tn_tensor *y)
{
    tn_tensor *gates = y->src[0], *c = y->src[1];
    bool wg = tn__wants(gates), wc = tn__wants(c);
    if (!wg && !wc)
        return;
    int64_t B = y->shape[0], H = y->shape[1] / 2;
    mat2 mg = mat2_of(gates), mc = c ? mat2_of(c) : (mat2){0, 0};
    if (y->dtype == TN_F32 && mg.cs == 1 && (!c || mc.cs == 1)) {
        const float *A = y->aux, *TC = A + B * 4 * H, *DY = y->grad;
        const float *C = c ? c->data : NULL;
        float *DG = wg ? gates->grad : NULL, *DC = wc ? c->grad : NULL;
        float *scratch = tn_tape_alloc(y->tape, (size_t)(B * H) * sizeof(float));
        if (!scratch)
            return; /* out of memory: the tape has the error */
#pragma omp parallel for if (B * H > TN_PAR_MIN / 8)
        for (int64_t b = 0; b < B; b++)
            lstm_row_bw_f32(H, A + b * 4 * H, TC + b * H, DY + b * 2 * H, DY + b * 2 * H + H,
                            C ? C + b * mc.rs : NULL, DG ? DG + b * mg.rs : NULL,
                            DC ? DC + b * mc.rs : NULL, scratch + b * H);
        return;
    }
    TN_FOR_DTYPE(y->dtype, T, {
        const T *A = y->aux, *TC = A + B * 4 * H, *DY = TN_GRAD(T, y);
        const T *C = c ? TN_DATA(T, c) : NULL;
        T *DG = wg ? TN_GRAD(T, gates) : NULL, *DC = wc ? TN_GRAD(T, c) : NULL;
        TN_OMP_FOR(B * H > TN_PAR_MIN / 8)
        for (int64_t b = 0; b < B; b++) {
            const T *a = A + b * 4 * H, *tc = TC + b * H, *dh = DY + b * 2 * H, *dcn = dh + H;
            for (int64_t j = 0; j < H; j++) {
                T i = a[j], f = a[H + j], g = a[2 * H + j], o = a[3 * H + j], t = tc[j];
                T dct = dcn[j] + dh[j] * o * (1 - t * t);
                T cp = C ? C[b * mc.rs + j * mc.cs] : (T)0;
                if (DG) {
                    T *dg = DG + b * mg.rs;
                    dg[j * mg.cs] += dct * g * i * (1 - i);
                    dg[(H + j) * mg.cs] += dct * cp * f * (1 - f);
                    dg[(2 * H + j) * mg.cs] += dct * i * (1 - g * g);
                    dg[(3 * H + j) * mg.cs] += dh[j] * t * o * (1 - o);
                }
                if (DC)
                    DC[b * mc.rs + j * mc.cs] += dct * f;
            }
        }
    });
}

/* ---- GRU ---- */

/* xg [B, 3H] (r, z, n input parts, with b_ih), hg [B, 3H] or [3H]
 * (recurrent parts with b_hh; 1-D when h is zeros), h [B, H] or NULL ->
 * y [B, H]: r = s(xr + hr), z = s(xz + hz), n = tanh(xn + r hn),
 * h' = (1 - z) n + z h. aux: act [B, 3H] = r, z, n. */
static void gru_forward(tn_tensor *y, const tn_tensor *xg, const tn_tensor *hg,
                        const tn_tensor *h, void *aux)
{
    int64_t B = y->shape[0], H = y->shape[1];
    mat2 mx = mat2_of(xg), mh = mat2_of(hg), mp = h ? mat2_of(h) : (mat2){0, 0};
    if (y->dtype == TN_F32 && mx.cs == 1 && mh.cs == 1 && (!h || mp.cs == 1)) {
        const float *X = xg->data, *HG = hg->data, *HP = h ? h->data : NULL;
#pragma omp parallel for if (B * H > TN_PAR_MIN / 8)
        for (int64_t b = 0; b < B; b++)
            gru_row_f32(H, X + b * mx.rs, HG + b * mh.rs, HP ? HP + b * mp.rs : NULL,
                        (float *)aux + b * 3 * H, (float *)y->data + b * H);
        return;
    }
    TN_FOR_DTYPE(y->dtype, T, {
        const T *X = TN_DATA(T, xg), *HG = TN_DATA(T, hg), *HP = h ? TN_DATA(T, h) : NULL;
        T *Y = TN_DATA(T, y), *A = aux;
        TN_OMP_FOR(B * H > TN_PAR_MIN / 8)
        for (int64_t b = 0; b < B; b++) {
            const T *x = X + b * mx.rs, *hh = HG + b * mh.rs;
            T *a = A + b * 3 * H, *yo = Y + b * H;
            for (int64_t j = 0; j < H; j++) {
                T r = TN_SIGMOID((x[j * mx.cs] + hh[j * mh.cs]));
                T z = TN_SIGMOID((x[(H + j) * mx.cs] + hh[(H + j) * mh.cs]));
                T n = TN_TANH(x[(2 * H + j) * mx.cs] + r * hh[(2 * H + j) * mh.cs]);
                T hp = HP ? HP[b * mp.rs + j * mp.cs] : (T)0;
                a[j] = r, a[H + j] = z, a[2 * H + j] = n;
                yo[j] = n + z * (hp - n);
            }
        }
    });
}

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
    size_t es = tn_dtype_size(xg->dtype);
    void *aux = tn_tape_alloc(tp, (size_t)(B * 3 * H) * es);
    tn_tensor *y = aux ? tn__result(tp, TN_OP_GRU_CELL, xg->dtype, 2, (int64_t[]){B, H}, false,
                                    xg, hg, h)
                       : NULL;
    if (!y)
        return NULL;
    y->aux = aux;
    gru_forward(y, xg, hg, h, aux);
    return tn__finish(tp, y);
}

/* dy [B, H] -> dxg [B, 3H], dhg [B, 3H] or [3H] (summed over rows), dh:
 *   dn = dy (1 - z); dz = dy (h - n); dh += dy z;
 *   dpn = dn (1 - n^2): dxn = dpn, dhn = dpn r; dr = dpn hn;
 *   dpr = dr r (1 - r): dxr = dhr = dpr; dpz = dz z (1 - z): dxz = dhz. */
void tn__bw_gru_cell(tn_tensor *y)
{
    tn_tensor *xg = y->src[0], *hg = y->src[1], *h = y->src[2];
    bool wx = tn__wants(xg), wg = tn__wants(hg), wh = tn__wants(h);
    if (!wx && !wg && !wh)
        return;
    int64_t B = y->shape[0], H = y->shape[1];
    mat2 mx = mat2_of(xg), mh = mat2_of(hg), mp = h ? mat2_of(h) : (mat2){0, 0};
    bool hg_rows = hg->ndim == 2; /* 1-D hg: every row adds into one vector */
    TN_FOR_DTYPE(y->dtype, T, {
        const T *A = y->aux, *DY = TN_GRAD(T, y), *HG = TN_DATA(T, hg);
        const T *HP = h ? TN_DATA(T, h) : NULL;
        T *DX = wx ? TN_GRAD(T, xg) : NULL, *DHG = wg ? TN_GRAD(T, hg) : NULL;
        T *DH = wh ? TN_GRAD(T, h) : NULL;
        TN_OMP_FOR(hg_rows && B * H > TN_PAR_MIN / 8)
        for (int64_t b = 0; b < B; b++) {
            const T *a = A + b * 3 * H, *dy = DY + b * H, *hh = HG + b * mh.rs;
            for (int64_t j = 0; j < H; j++) {
                T r = a[j], z = a[H + j], n = a[2 * H + j];
                T hp = HP ? HP[b * mp.rs + j * mp.cs] : (T)0;
                T dpn = dy[j] * (1 - z) * (1 - n * n);
                T dpr = dpn * hh[(2 * H + j) * mh.cs] * r * (1 - r);
                T dpz = dy[j] * (hp - n) * z * (1 - z);
                if (DX) {
                    T *dx = DX + b * mx.rs;
                    dx[j * mx.cs] += dpr;
                    dx[(H + j) * mx.cs] += dpz;
                    dx[(2 * H + j) * mx.cs] += dpn;
                }
                if (DHG) {
                    T *dg = DHG + b * mh.rs;
                    dg[j * mh.cs] += dpr;
                    dg[(H + j) * mh.cs] += dpz;
                    dg[(2 * H + j) * mh.cs] += dpn * r;
                }
                if (DH)
                    DH[b * mp.rs + j * mp.cs] += dy[j] * z;
            }
        }
    });
}
