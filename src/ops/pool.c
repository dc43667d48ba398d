/* src/ops/pool.c - max_pool2d, avg_pool2d, adaptive_avg_pool2d over the
 * last two dims of x [B, C, H, W] (and the 1-D pools as the 2-D ones on
 * [B, C, 1, L] views with 1 x K windows), as PyTorch's CPU kernels.
 *
 * Every op works plane by plane (one (b, c) of x [H, W] -> y [OH, OW]),
 * the B C planes split over the threads; backward writes each plane of dx
 * from its own plane of dy only, so the split is race-free. Output (i, j)
 * reads the window
 *   max / avg:  rows i sh - ph .. i sh - ph + kh - 1 (columns likewise),
 *               cut to the input (the padding is -inf for max, 0 for avg)
 *   adaptive:   rows floor(i H / OH) .. ceil((i + 1) H / OH) - 1.
 * max_pool2d keeps, per output, the position (h W + w in its plane, int64)
 * of its window's first maximum for backward; avg divides by the window's
 * size with the padding (cut at H + ph, as PyTorch) or without.
 * Node: src = {x} (contiguous; the builder copies a strided one), aux = the
 * pool record below.
 */
#include "ops_internal.h"

/* Geometry values above this are refused (no size computation overflows). */
#define POOL_MAX ((int64_t)1 << 30)

typedef struct pool {
    int64_t planes, H, W, OH, OW;
    int64_t kh, kw, sh, sw, ph, pw; /* max, avg */
    bool count_pad;                 /* avg: divide by the padded window's size */
    int64_t *arg;                   /* max: [planes, OH, OW] positions of the maxima */
} pool;

/* Output (i, j)'s window of a max or avg pool: rows [*h0, *h1), columns
 * [*w0, *w1) of the input; *padded: its size counting the padding (cut at
 * H + ph, W + pw). */
static void window(const pool *p, int64_t i, int64_t j, int64_t *h0, int64_t *h1, int64_t *w0,
                   int64_t *w1, int64_t *padded)
{
    int64_t hs = i * p->sh - p->ph, ws = j * p->sw - p->pw;
    int64_t he = hs + p->kh < p->H + p->ph ? hs + p->kh : p->H + p->ph;
    int64_t we = ws + p->kw < p->W + p->pw ? ws + p->kw : p->W + p->pw;
    *padded = (he - hs) * (we - ws);
    *h0 = hs < 0 ? 0 : hs, *w0 = ws < 0 ? 0 : ws;
    *h1 = he < p->H ? he : p->H, *w1 = we < p->W ? we : p->W;
}

/* Adaptive pooling's window along one dim: [*a, *b) of n inputs for output
 * o of on. */
static void adaptive_range(int64_t o, int64_t on, int64_t n, int64_t *a, int64_t *b)
{
    /* in 128 bits: o n may pass 2^63 for a huge plane */
    *a = (int64_t)((__int128)o * n / on);
    *b = (int64_t)(((__int128)(o + 1) * n + on - 1) / on);
}

/* Output (i, j)'s window and divisor for avg (adaptive when ad). */
static void avg_window(const pool *p, bool ad, int64_t i, int64_t j, int64_t *h0, int64_t *h1,
                       int64_t *w0, int64_t *w1, double *div)
{
    if (ad) {
        adaptive_range(i, p->OH, p->H, h0, h1);
        adaptive_range(j, p->OW, p->W, w0, w1);
        *div = (double)((*h1 - *h0) * (*w1 - *w0));
        return;
    }
    int64_t padded;
    window(p, i, j, h0, h1, w0, w1, &padded);
    *div = (double)(p->count_pad ? padded : (*h1 - *h0) * (*w1 - *w0));
}

/* Whether a plane loop is worth the threads. */
static bool pool_par(const pool *p)
{
    return p->planes > 1 && p->planes * p->H * p->W > TN_PAR_MIN;
}

/* y [planes, OH, OW] := max over each window of x [planes, H, W]; the
 * positions into p->arg. The first maximum in row-major order wins; a NaN
 * is taken as the maximum (PyTorch's val > max || isnan(val)). */
static void max_forward(const pool *p, tn_dtype dt, const void *x, void *y)
{
    TN_FOR_DTYPE(dt, T, {
        const T *X = x;
        T *Y = y;
        TN_PAR_FOR(pool_par(p), pl, 0, p->planes, {
            const T *xp = X + pl * p->H * p->W;
            for (int64_t i = 0; i < p->OH; i++)
                for (int64_t j = 0; j < p->OW; j++) {
                    int64_t h0, h1, w0, w1, padded, o = (pl * p->OH + i) * p->OW + j;
                    window(p, i, j, &h0, &h1, &w0, &w1, &padded);
                    /* the first maximum, or the last NaN (as PyTorch: it takes
                     * v > best || isnan(v)), without branches: a branch per
                     * element mispredicted about every other one */
                    T best = -INFINITY;
                    int64_t at = h0 * p->W + w0, nan_at = -1;
                    for (int64_t h = h0; h < h1; h++)
                        for (int64_t w = w0; w < w1; w++) {
                            int64_t k = h * p->W + w;
                            T v = xp[k];
                            int64_t gt = v > best, nan = v != v;
                            at += gt * (k - at);
                            nan_at += nan * (k - nan_at);
                            best = v > best ? v : best;
                        }
                    if (nan_at >= 0)
                        best = xp[nan_at], at = nan_at;
                    Y[o] = best;
                    p->arg[o] = at;
                }
        });
    });
}

/* y [planes, OH, OW] := the mean of each window (adaptive when ad), summed
 * in double. */
static void avg_forward(const pool *p, bool ad, tn_dtype dt, const void *x, void *y)
{
    TN_FOR_DTYPE(dt, T, {
        const T *X = x;
        T *Y = y;
        TN_PAR_FOR(pool_par(p), pl, 0, p->planes, {
            const T *xp = X + pl * p->H * p->W;
            for (int64_t i = 0; i < p->OH; i++)
                for (int64_t j = 0; j < p->OW; j++) {
                    int64_t h0, h1, w0, w1;
                    double div, acc = 0;
                    avg_window(p, ad, i, j, &h0, &h1, &w0, &w1, &div);
                    for (int64_t h = h0; h < h1; h++)
                        for (int64_t w = w0; w < w1; w++)
                            acc += (double)xp[h * p->W + w];
                    Y[(pl * p->OH + i) * p->OW + j] = (T)(acc / div);
                }
        });
    });
}

void tn__bw_max_pool2d(tn_tensor *y)
{
    tn_tensor *x = tn__node(y)->src[0];
    const pool *p = tn__node(y)->aux;
    if (!tn__wants(x))
        return;
    /* dx [planes, H, W] += dy [planes, OH, OW] at the kept positions */
    TN_FOR_DTYPE(y->dtype, T, {
        const T *DY = TN_GRAD(T, y);
        T *DX = TN_GRAD(T, x);
        TN_PAR_FOR(pool_par(p), pl, 0, p->planes, {
            T *dxp = DX + pl * p->H * p->W;
            for (int64_t o = pl * p->OH * p->OW; o < (pl + 1) * p->OH * p->OW; o++)
                dxp[p->arg[o]] += DY[o];
        });
    });
}

/* dx [planes, H, W] += dy [planes, OH, OW] / divisor over each window. */
static void avg_backward(tn_tensor *y, bool ad)
{
    tn_tensor *x = tn__node(y)->src[0];
    const pool *p = tn__node(y)->aux;
    if (!tn__wants(x))
        return;
    TN_FOR_DTYPE(y->dtype, T, {
        const T *DY = TN_GRAD(T, y);
        T *DX = TN_GRAD(T, x);
        TN_PAR_FOR(pool_par(p), pl, 0, p->planes, {
            T *dxp = DX + pl * p->H * p->W;
            for (int64_t i = 0; i < p->OH; i++)
                for (int64_t j = 0; j < p->OW; j++) {
                    int64_t h0, h1, w0, w1;
                    double div;
                    avg_window(p, ad, i, j, &h0, &h1, &w0, &w1, &div);
                    T g = (T)((double)DY[(pl * p->OH + i) * p->OW + j] / div);
                    for (int64_t h = h0; h < h1; h++)
                        for (int64_t w = w0; w < w1; w++)
                            dxp[h * p->W + w] += g;
                }
        });
    });
}

void tn__bw_avg_pool2d(tn_tensor *y) { avg_backward(y, false); }
void tn__bw_adaptive_avg_pool2d(tn_tensor *y) { avg_backward(y, true); }

/* ---- builders ---- */

/* Check op name's x (nsp spatial dims: [B, C, (H,) W]) and the window
 * kernel, stride, padding (square in 2-D, 1 x K in 1-D), and fill p's
 * geometry. False with the tape failed naming the op and x's shape. */
static bool pool_check(tn_tape *tp, const char *name, int nsp, tn_tensor *x, int64_t kernel,
                       int64_t stride, int64_t padding, pool *p)
{
    if (!tn__check(tp, name, 1, &x))
        return false;
    if (x->ndim != nsp + 2) {
        tn_tape_fail(tp, TN_ERR_SHAPE, "%s: x %s must be %s", name, TN_SHP(x),
                     nsp == 2 ? "[B, C, H, W]" : "[B, C, L]");
        return false;
    }
    if (kernel < 1 || kernel > POOL_MAX || stride < 1 || stride > POOL_MAX || padding < 0 ||
        padding > kernel / 2) {
        tn_tape_fail(tp, TN_ERR_ARG,
                     "%s: kernel %lld and stride %lld must be 1 to 2^30, padding %lld 0 to "
                     "kernel / 2 (x %s)",
                     name, (long long)kernel, (long long)stride, (long long)padding, TN_SHP(x));
        return false;
    }
    int64_t H = nsp == 2 ? x->shape[2] : 1, W = x->shape[nsp + 1];
    *p = (pool){x->shape[0] * x->shape[1],
                H,
                W,
                0,
                0,
                nsp == 2 ? kernel : 1,
                kernel,
                nsp == 2 ? stride : 1,
                stride,
                nsp == 2 ? padding : 0,
                padding,
                false,
                NULL};
    if (H + 2 * p->ph < p->kh || W + 2 * p->pw < p->kw) {
        tn_tape_fail(tp, TN_ERR_SHAPE,
                     "%s: the output would be empty: x %s with kernel %lld, padding %lld", name,
                     TN_SHP(x), (long long)kernel, (long long)padding);
        return false;
    }
    p->OH = (H + 2 * p->ph - p->kh) / p->sh + 1;
    p->OW = (W + 2 * p->pw - p->kw) / p->sw + 1;
    return true;
}

/* Record pool op `op` on x (checked, 3-D or 4-D) with the record p: the
 * result [B, C, OH, OW] (or its [B, C, OW] view for 3-D x), computed by
 * the op's forward. */
static tn_tensor *pool_run(tn_tape *tp, int op, tn_tensor *x, const pool *p)
{
    int nd = x->ndim;
    int64_t B = x->shape[0], C = x->shape[1];
    if (!tn_is_contiguous(x) && !(x = tn_contiguous(tp, x)))
        return NULL;
    if (nd == 3 && !(x = tn_reshape(tp, x, 4, (int64_t[]){B, C, 1, p->W})))
        return NULL;
    pool *keep = tn_tape_alloc(tp, sizeof *keep);
    if (!keep)
        return NULL;
    *keep = *p;
    int64_t n = p->planes * p->OH * p->OW;
    if (op == TN_OP_MAX_POOL2D && !(keep->arg = tn_tape_alloc(tp, (size_t)n * sizeof(int64_t))))
        return NULL;
    int64_t shape[4] = {B, C, p->OH, p->OW};
    tn_tensor *y = tn__result(tp, op, x->dtype, 4, shape, false, x, NULL, NULL);
    if (!y)
        return NULL;
    tn__node(y)->aux = keep;
    if (op == TN_OP_MAX_POOL2D)
        max_forward(keep, x->dtype, x->data, y->data);
    else
        avg_forward(keep, op == TN_OP_ADAPTIVE_AVG_POOL2D, x->dtype, x->data, y->data);
    y = tn__finish(tp, y);
    if (y && nd == 3)
        y = tn_reshape(tp, y, 3, (int64_t[]){B, C, p->OW});
    return y;
}

/* A max or avg pool (op) named name over nsp spatial dims: check, record. */
static tn_tensor *pool_op(tn_tape *tp, const char *name, int nsp, int op, tn_tensor *x,
                          int64_t kernel, int64_t stride, int64_t padding, bool count_pad)
{
    pool p;
    if (!pool_check(tp, name, nsp, x, kernel, stride, padding, &p))
        return NULL;
    p.count_pad = count_pad;
    return pool_run(tp, op, x, &p);
}

tn_tensor *tn_max_pool2d(tn_tape *tp, tn_tensor *x, int64_t kernel, int64_t stride, int64_t padding)
{
    return pool_op(tp, "max_pool2d", 2, TN_OP_MAX_POOL2D, x, kernel, stride, padding, false);
}

tn_tensor *tn_max_pool1d(tn_tape *tp, tn_tensor *x, int64_t kernel, int64_t stride, int64_t padding)
{
    return pool_op(tp, "max_pool1d", 1, TN_OP_MAX_POOL2D, x, kernel, stride, padding, false);
}

tn_tensor *tn_avg_pool2d(tn_tape *tp, tn_tensor *x, int64_t kernel, int64_t stride, int64_t padding,
                         bool count_include_pad)
{
    return pool_op(tp, "avg_pool2d", 2, TN_OP_AVG_POOL2D, x, kernel, stride, padding,
                   count_include_pad);
}

tn_tensor *tn_avg_pool1d(tn_tape *tp, tn_tensor *x, int64_t kernel, int64_t stride, int64_t padding,
                         bool count_include_pad)
{
    return pool_op(tp, "avg_pool1d", 1, TN_OP_AVG_POOL2D, x, kernel, stride, padding,
                   count_include_pad);
}

tn_tensor *tn_adaptive_avg_pool2d(tn_tape *tp, tn_tensor *x, int64_t out_h, int64_t out_w)
{
    if (!tn__check(tp, "adaptive_avg_pool2d", 1, &x))
        return NULL;
    if (x->ndim != 4) {
        tn_tape_fail(tp, TN_ERR_SHAPE, "adaptive_avg_pool2d: x %s must be [B, C, H, W]", TN_SHP(x));
        return NULL;
    }
    if (out_h < 1 || out_w < 1 || out_h > POOL_MAX || out_w > POOL_MAX) {
        tn_tape_fail(tp, TN_ERR_ARG,
                     "adaptive_avg_pool2d: output size (%lld, %lld) must be 1 to 2^30 (x %s)",
                     (long long)out_h, (long long)out_w, TN_SHP(x));
        return NULL;
    }
    pool p = {x->shape[0] * x->shape[1],
              x->shape[2],
              x->shape[3],
              out_h,
              out_w,
              0,
              0,
              0,
              0,
              0,
              0,
              false,
              NULL};
    return pool_run(tp, TN_OP_ADAPTIVE_AVG_POOL2D, x, &p);
}
