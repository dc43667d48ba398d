/* src/ops/norm.c - layer normalisation over the last dim, and batch
 * normalisation over the channels (below).
 *
 * x (1 to 4 dims, any strides) is seen as rows of D = x.shape[-1] elements
 * (tn__split_dim at the last dim). For each row, in double:
 *   mean = sum(x) / D,  var = sum((x - mean)^2) / D (biased, two passes),
 *   rstd = 1 / sqrt(var + eps),  xhat = (x - mean) * rstd,
 *   y = xhat * w + b   (w, b: [D], each optional).
 * mean and rstd of every row are kept (double) in y->aux for backward,
 * which recomputes xhat from x and, with g = dy * w (dy without w):
 *   dx += rstd * (g - mean(g) - xhat * mean(g * xhat))
 *   dw += sum over rows of dy * xhat,  db += sum over rows of dy.
 * Rows run in parallel for forward and dx; dw and db are summed over rows
 * in double by blocks of columns, the blocks in parallel, so every result
 * is the same for any thread count.
 * Node parameters: src = {x, w, b} (w, b maybe NULL), fparam[0] = eps.
 */
#include "ops_internal.h"

/* Columns of dw and db per parallel block in backward. */
#define LN_COLS 64

static void ln_forward(tn_tensor *y, const tn_tensor *x, const tn_tensor *w, const tn_tensor *b,
                       double eps, double *stats)
{
    int64_t s[4], sx[4], sy[4], n, snx, sny;
    tn__split_dim(x, x->ndim - 1, s, sx, &n, &snx);
    tn__split_dim(y, y->ndim - 1, s, sy, &n, &sny);
    int64_t rows = tn_numel(x) / n;
    int64_t sw = w ? w->stride[0] : 0, sb = b ? b->stride[0] : 0;
    TN_FOR_DTYPE(x->dtype, T, {
        const T *X = TN_DATA(T, x);
        const T *W = w ? TN_DATA(T, w) : NULL;
        const T *B = b ? TN_DATA(T, b) : NULL;
        T *Y = TN_DATA(T, y);
        TN_PAR_FOR(rows > 1 && rows * n > TN_PAR_MIN, r, 0, rows, {
            const T *px = X + tn__row_off(r, s, sx);
            T *py = Y + tn__row_off(r, s, sy);
            double sum = 0;
            for (int64_t k = 0; k < n; k++)
                sum += (double)px[k * snx];
            double mean = sum / (double)n, ss = 0;
            for (int64_t k = 0; k < n; k++) {
                double d = (double)px[k * snx] - mean;
                ss += d * d;
            }
            double rstd = 1.0 / sqrt(ss / (double)n + eps);
            stats[2 * r] = mean;
            stats[2 * r + 1] = rstd;
            for (int64_t k = 0; k < n; k++) {
                double v = ((double)px[k * snx] - mean) * rstd;
                if (W)
                    v *= (double)W[k * sw];
                if (B)
                    v += (double)B[k * sb];
                py[k * sny] = (T)v;
            }
        });
    });
}

void tn__bw_layer_norm(tn_tensor *y)
{
    tn_tensor *x = tn__node(y)->src[0], *w = tn__node(y)->src[1], *b = tn__node(y)->src[2];
    const double *stats = tn__node(y)->aux;
    int64_t s[4], sx[4], sy[4], n, snx, sny;
    tn__split_dim(x, x->ndim - 1, s, sx, &n, &snx);
    tn__split_dim(y, y->ndim - 1, s, sy, &n, &sny);
    int64_t rows = tn_numel(x) / n;
    int64_t sw = w ? w->stride[0] : 0, sb = b ? b->stride[0] : 0;
    bool par = rows > 1 && rows * n > TN_PAR_MIN;
    TN_FOR_DTYPE(x->dtype, T, {
        const T *X = TN_DATA(T, x), *DY = TN_GRAD(T, y);
        const T *W = w ? TN_DATA(T, w) : NULL;
        if (tn__wants(x)) {
            T *DX = TN_GRAD(T, x);
            TN_PAR_FOR(par, r, 0, rows, {
                const T *px = X + tn__row_off(r, s, sx);
                const T *pd = DY + tn__row_off(r, s, sy);
                T *pg = DX + tn__row_off(r, s, sx);
                double mean = stats[2 * r], rstd = stats[2 * r + 1], sg = 0, sgx = 0;
                for (int64_t k = 0; k < n; k++) {
                    double g = (double)pd[k * sny] * (W ? (double)W[k * sw] : 1.0);
                    sg += g;
                    sgx += g * ((double)px[k * snx] - mean) * rstd;
                }
                double mg = sg / (double)n, mgx = sgx / (double)n;
                for (int64_t k = 0; k < n; k++) {
                    double g = (double)pd[k * sny] * (W ? (double)W[k * sw] : 1.0);
                    double xh = ((double)px[k * snx] - mean) * rstd;
                    pg[k * snx] += (T)(rstd * (g - mg - xh * mgx));
                }
            });
        }
        bool dw = tn__wants(w), db = tn__wants(b);
        if (dw || db) {
            T *GW = dw ? TN_GRAD(T, w) : NULL, *GB = db ? TN_GRAD(T, b) : NULL;
            int64_t blocks = (n + LN_COLS - 1) / LN_COLS;
            TN_PAR_FOR(par && blocks > 1, q, 0, blocks, {
                int64_t k0 = q * LN_COLS, kn = n - k0 < LN_COLS ? n - k0 : LN_COLS;
                double aw[LN_COLS] = {0}, ab[LN_COLS] = {0};
                for (int64_t r = 0; r < rows; r++) {
                    const T *px = X + tn__row_off(r, s, sx) + k0 * snx;
                    const T *pd = DY + tn__row_off(r, s, sy) + k0 * sny;
                    double mean = stats[2 * r], rstd = stats[2 * r + 1];
                    for (int64_t k = 0; k < kn; k++) {
                        double d = (double)pd[k * sny];
                        aw[k] += d * ((double)px[k * snx] - mean) * rstd;
                        ab[k] += d;
                    }
                }
                for (int64_t k = 0; k < kn; k++) {
                    if (GW)
                        GW[(k0 + k) * sw] += (T)aw[k];
                    if (GB)
                        GB[(k0 + k) * sb] += (T)ab[k];
                }
            });
        }
    });
}

/* w or b (what names it) must be a [D] tensor of x's dtype. */
static bool ln_param_ok(tn_tape *tp, const tn_tensor *p, const char *what, const tn_tensor *x)
{
    if (!p)
        return true;
    if (p->dtype != x->dtype) {
        tn_tape_fail(tp, TN_ERR_DTYPE, "layer_norm: %s %s is %s, x %s is %s", what, TN_SHP(p),
                     tn_dtype_name(p->dtype), TN_SHP(x), tn_dtype_name(x->dtype));
        return false;
    }
    int64_t d = x->shape[x->ndim - 1];
    if (p->ndim != 1 || p->shape[0] != d) {
        tn_tape_fail(tp, TN_ERR_SHAPE,
                     "layer_norm: %s %s must be [D] = [%lld] (the last dim of x %s)", what,
                     TN_SHP(p), (long long)d, TN_SHP(x));
        return false;
    }
    return true;
}

tn_tensor *tn_layer_norm(tn_tape *tp, tn_tensor *x, tn_tensor *weight, tn_tensor *bias, double eps)
{
    if (!tn__check(tp, "layer_norm", 1, &x))
        return NULL;
    if (x->ndim < 1 || x->ndim > 4 || x->shape[x->ndim - 1] < 1) {
        tn_tape_fail(tp, TN_ERR_SHAPE,
                     "layer_norm: x %s must have 1 to 4 dims and a last dim of at least 1",
                     TN_SHP(x));
        return NULL;
    }
    if (!(eps > 0) || !isfinite(eps)) {
        tn_tape_fail(tp, TN_ERR_ARG, "layer_norm: eps = %g must be finite and > 0 (x %s)", eps,
                     TN_SHP(x));
        return NULL;
    }
    if (!ln_param_ok(tp, weight, "weight", x) || !ln_param_ok(tp, bias, "bias", x))
        return NULL;
    int64_t rows = tn_numel(x) / x->shape[x->ndim - 1];
    double *stats = tn_tape_alloc(tp, (size_t)(rows > 0 ? rows : 1) * 2 * sizeof *stats);
    tn_tensor *y = stats ? tn__result(tp, TN_OP_LAYER_NORM, x->dtype, x->ndim, x->shape, false, x,
                                      weight, bias)
                         : NULL;
    if (!y)
        return NULL;
    tn__node(y)->aux = stats;
    tn__node(y)->fparam[0] = eps;
    ln_forward(y, x, weight, bias, eps, stats);
    return tn__finish(tp, y);
}

/* ---- batch normalisation ----
 *
 * x [N, C, S1, S2] (missing trailing dims of size 1) is seen per channel c
 * as n = N * S1 * S2 elements. Per channel, in double:
 *   batch statistics: mean = sum(x) / n, var = sum((x - mean)^2) / n;
 *   or the running ones (evaluation mode);
 *   rstd = 1 / sqrt(var + eps), xhat = (x - mean) * rstd, y = xhat w + b.
 * mean and rstd of every channel are kept (double) in y->aux; iparam[0]
 * says whether they were the batch's. Backward, with g = dy * w:
 *   batch statistics: dx += rstd * (g - mean(g) - xhat * mean(g * xhat));
 *   running ones:     dx += rstd * g;
 *   dw += sum(dy * xhat), db += sum(dy), over the channel's elements.
 * Channels run in parallel; every sum of a channel is in one thread, in a
 * fixed order, so results are the same for any thread count.
 * Node parameters: src = {x, w, b} (w, b maybe NULL), iparam[0]. */

/* x's 4 dims and strides with the missing trailing ones of size 1. */
static void bn_dims(const tn_tensor *t, int64_t d[4], int64_t st[4])
{
    for (int k = 0; k < 4; k++) {
        d[k] = k < t->ndim ? t->shape[k] : 1;
        st[k] = k < t->ndim ? t->stride[k] : 0;
    }
}

/* Visit the elements of channel c of a tensor of dims d and strides st:
 * `body` runs with `o` the element's offset. */
#define BN_EACH(d, st, c, o, body)                                                         \
    for (int64_t i0_ = 0; i0_ < (d)[0]; i0_++)                                             \
        for (int64_t i2_ = 0; i2_ < (d)[2]; i2_++)                                         \
            for (int64_t i3_ = 0; i3_ < (d)[3]; i3_++) {                                   \
                int64_t o = i0_ * (st)[0] + (c) * (st)[1] + i2_ * (st)[2] + i3_ * (st)[3]; \
                body;                                                                      \
            }

static void bn_forward(tn_tensor *y, const tn_tensor *x, const tn_tensor *w, const tn_tensor *b,
                       tn_tensor *rm, tn_tensor *rv, bool batch, bool update, double momentum,
                       double eps, double *stats)
{
    int64_t d[4], sx[4], dy_[4], sy[4];
    bn_dims(x, d, sx);
    bn_dims(y, dy_, sy);
    int64_t C = d[1], n = d[0] * d[2] * d[3];
    int64_t sw = w ? w->stride[0] : 0, sb = b ? b->stride[0] : 0;
    TN_FOR_DTYPE(x->dtype, T, {
        const T *X = TN_DATA(T, x);
        const T *W = w ? TN_DATA(T, w) : NULL, *B = b ? TN_DATA(T, b) : NULL;
        T *Y = TN_DATA(T, y);
        T *RM = rm ? TN_DATA(T, rm) : NULL, *RV = rv ? TN_DATA(T, rv) : NULL;
        TN_PAR_FOR(C > 1 && C * n > TN_PAR_MIN, c, 0, C, {
            double mean, var;
            if (batch) {
                double sum = 0, ss = 0;
                BN_EACH(d, sx, c, o, sum += (double)X[o]);
                mean = sum / (double)n;
                BN_EACH(d, sx, c, o, {
                    double e = (double)X[o] - mean;
                    ss += e * e;
                });
                var = ss / (double)n;
                if (update) {
                    RM[c] = (T)((1 - momentum) * (double)RM[c] + momentum * mean);
                    RV[c] = (T)((1 - momentum) * (double)RV[c] + momentum * ss / (double)(n - 1));
                }
            } else {
                mean = (double)RM[c], var = (double)RV[c];
            }
            double rstd = 1.0 / sqrt(var + eps), wc = W ? (double)W[c * sw] : 1.0;
            double bc = B ? (double)B[c * sb] : 0.0;
            stats[2 * c] = mean;
            stats[2 * c + 1] = rstd;
            for (int64_t i0 = 0; i0 < d[0]; i0++)
                for (int64_t i2 = 0; i2 < d[2]; i2++)
                    for (int64_t i3 = 0; i3 < d[3]; i3++) {
                        int64_t ox = i0 * sx[0] + c * sx[1] + i2 * sx[2] + i3 * sx[3];
                        int64_t oy = i0 * sy[0] + c * sy[1] + i2 * sy[2] + i3 * sy[3];
                        Y[oy] = (T)(((double)X[ox] - mean) * rstd * wc + bc);
                    }
        });
    });
}

void tn__bw_batch_norm(tn_tensor *y)
{
    tn_tensor *x = tn__node(y)->src[0], *w = tn__node(y)->src[1], *b = tn__node(y)->src[2];
    const double *stats = tn__node(y)->aux;
    bool batch = tn__node(y)->iparam[0] != 0;
    int64_t d[4], sx[4], dd[4], sy[4];
    bn_dims(x, d, sx);
    bn_dims(y, dd, sy);
    int64_t C = d[1], n = d[0] * d[2] * d[3];
    int64_t sw = w ? w->stride[0] : 0, sb = b ? b->stride[0] : 0;
    bool wx = tn__wants(x), ww = tn__wants(w), wb = tn__wants(b);
    TN_FOR_DTYPE(x->dtype, T, {
        const T *X = TN_DATA(T, x), *DY = TN_GRAD(T, y);
        const T *W = w ? TN_DATA(T, w) : NULL;
        T *DX = wx ? TN_GRAD(T, x) : NULL;
        T *GW = ww ? TN_GRAD(T, w) : NULL, *GB = wb ? TN_GRAD(T, b) : NULL;
        TN_PAR_FOR(C > 1 && C * n > TN_PAR_MIN, c, 0, C, {
            double mean = stats[2 * c], rstd = stats[2 * c + 1];
            double wc = W ? (double)W[c * sw] : 1.0, sd = 0, sdx = 0;
            for (int64_t i0 = 0; i0 < d[0]; i0++)
                for (int64_t i2 = 0; i2 < d[2]; i2++)
                    for (int64_t i3 = 0; i3 < d[3]; i3++) {
                        int64_t ox = i0 * sx[0] + c * sx[1] + i2 * sx[2] + i3 * sx[3];
                        int64_t oy = i0 * sy[0] + c * sy[1] + i2 * sy[2] + i3 * sy[3];
                        double g = (double)DY[oy];
                        sd += g;
                        sdx += g * ((double)X[ox] - mean) * rstd;
                    }
            if (GW)
                GW[c * sw] += (T)sdx;
            if (GB)
                GB[c * sb] += (T)sd;
            if (DX) {
                /* g = dy * w: mean(g) = w sd / n, mean(g xhat) = w sdx / n */
                double mg = batch ? wc * sd / (double)n : 0, mgx = batch ? wc * sdx / (double)n : 0;
                for (int64_t i0 = 0; i0 < d[0]; i0++)
                    for (int64_t i2 = 0; i2 < d[2]; i2++)
                        for (int64_t i3 = 0; i3 < d[3]; i3++) {
                            int64_t ox = i0 * sx[0] + c * sx[1] + i2 * sx[2] + i3 * sx[3];
                            int64_t oy = i0 * sy[0] + c * sy[1] + i2 * sy[2] + i3 * sy[3];
                            double xh = ((double)X[ox] - mean) * rstd;
                            DX[ox] += (T)(rstd * ((double)DY[oy] * wc - mg - xh * mgx));
                        }
            }
        });
    });
}

/* A [C] tensor p (what names it) of x's dtype: weight and bias any stride,
 * the running statistics contiguous heap tensors (updated in place). */
static bool bn_param_ok(tn_tape *tp, const tn_tensor *p, const char *what, const tn_tensor *x,
                        bool running)
{
    if (!p)
        return true;
    int64_t C = x->shape[1];
    if (p->dtype != x->dtype || p->ndim != 1 || p->shape[0] != C ||
        (running && (!tn__node(p)->on_heap || p->stride[0] != 1))) {
        tn_tape_fail(tp, p->dtype != x->dtype ? TN_ERR_DTYPE : TN_ERR_SHAPE,
                     "batch_norm: %s %s (%s) must be [C] = [%lld] of x's dtype %s (x %s)%s", what,
                     TN_SHP(p), tn_dtype_name(p->dtype), (long long)C, tn_dtype_name(x->dtype),
                     TN_SHP(x), running ? ", contiguous and not on a tape" : "");
        return false;
    }
    return true;
}

tn_tensor *tn_batch_norm(tn_tape *tp, tn_tensor *x, tn_tensor *weight, tn_tensor *bias,
                         tn_tensor *running_mean, tn_tensor *running_var, bool training,
                         double momentum, double eps)
{
    if (!tn__check(tp, "batch_norm", 1, &x))
        return NULL;
    if (x->ndim < 2 || x->ndim > 4) {
        tn_tape_fail(tp, TN_ERR_SHAPE, "batch_norm: x %s must be [N, C], [N, C, L] or [N, C, H, W]",
                     TN_SHP(x));
        return NULL;
    }
    if (!(eps > 0) || !isfinite(eps) || !(momentum >= 0 && momentum <= 1)) {
        tn_tape_fail(tp, TN_ERR_ARG,
                     "batch_norm: eps = %g must be finite and > 0, momentum = %g in [0, 1] (x %s)",
                     eps, momentum, TN_SHP(x));
        return NULL;
    }
    if (!running_mean != !running_var) {
        tn_tape_fail(tp, TN_ERR_ARG,
                     "batch_norm: running_mean and running_var must be given both or neither");
        return NULL;
    }
    if (!bn_param_ok(tp, weight, "weight", x, false) || !bn_param_ok(tp, bias, "bias", x, false) ||
        !bn_param_ok(tp, running_mean, "running_mean", x, true) ||
        !bn_param_ok(tp, running_var, "running_var", x, true))
        return NULL;
    int64_t C = x->shape[1], n = tn_numel(x) / C;
    bool batch = training || !running_mean;
    if (batch && n < 2 && training) {
        tn_tape_fail(tp, TN_ERR_SHAPE,
                     "batch_norm: x %s has %lld value per channel; training needs at least 2",
                     TN_SHP(x), (long long)n);
        return NULL;
    }
    double *stats = tn_tape_alloc(tp, (size_t)C * 2 * sizeof *stats);
    tn_tensor *y = stats ? tn__result(tp, TN_OP_BATCH_NORM, x->dtype, x->ndim, x->shape, false, x,
                                      weight, bias)
                         : NULL;
    if (!y)
        return NULL;
    tn__node(y)->aux = stats;
    tn__node(y)->iparam[0] = batch;
    bn_forward(y, x, weight, bias, running_mean, running_var, batch, training && running_mean,
               momentum, eps, stats);
    return tn__finish(tp, y);
}
