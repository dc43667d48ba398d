/* src/ops/norm.c - layer normalisation over the last dim.
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
    tn_tensor *x = y->src[0], *w = y->src[1], *b = y->src[2];
    const double *stats = y->aux;
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
        tn_tape_fail(tp, TN_ERR_SHAPE, "layer_norm: %s %s must be [D] = [%lld] (the last dim of x %s)",
                     what, TN_SHP(p), (long long)d, TN_SHP(x));
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
    y->aux = stats;
    y->fparam[0] = eps;
    ln_forward(y, x, weight, bias, eps, stats);
    return tn__finish(tp, y);
}
