/* src/ops/loss.c - cross-entropy (fused log-softmax + NLL), NLL and MSE.
 *
 * Semantics follow torch.nn.functional: a target equal to ignore_index
 * contributes 0 (and 0 gradient); 'mean' divides by the number of targets
 * that are not ignored, so when every target is ignored the mean is 0/0 =
 * NaN, as in PyTorch (the gradient is then zero everywhere, as in PyTorch);
 * 'sum' is then 0 and 'none' all zeros.
 *
 * Class weights (cross_entropy with a weight [C], torch's weight=): row i
 * counts w[t_i] times, loss_i = w[t_i] (lse_i - x_i[t_i]); 'mean' divides
 * by the sum of w[t_i] over the rows not ignored (0/0 = NaN when that sum
 * is 0, as in PyTorch). Without weights every w is 1 and the sum is the
 * count, so both forms are one code path with the same results.
 *
 * Per-row losses are summed in double, in row order, so reduced losses do
 * not depend on the thread count.
 * Node parameters (cross_entropy, nll): iparam[0] = ignore_index,
 * iparam[1] = reduction, iparam[2] = number of counted targets; cross
 * entropy keeps in y->aux 2N doubles: the log-sum-exp of each row, in
 * double for both dtypes (a float lse near 1000 would be off by 3e-5, and
 * so would every probability exp(x - lse) of the backward), then each row's
 * weight w[t_i] (0 for ignored rows); fparam[0] is the mean's divisor (the
 * sum of the weights). mse: iparam[1] = reduction.
 */
#include "ops_internal.h"
#include "fastmath.h"
#include "rows.h"

static bool red_ok(tn_reduction red)
{
    return red == TN_REDUCE_MEAN || red == TN_REDUCE_SUM || red == TN_REDUCE_NONE;
}

/* Validate x [N, C] and targets (I32 [N], each in [0, C) or ignore_index)
 * for op `name`; *count gets the number of targets not ignored. */
static bool check_class_loss(tn_tape *tp, const char *name, const char *xname, tn_tensor *x,
                             tn_tensor *targets, int64_t ignore_index, tn_reduction red,
                             int64_t *count)
{
    if (!tn__check(tp, name, 1, &x))
        return false;
    if (!targets) {
        tn_tape_fail(tp, TN_ERR_ARG, "%s: targets is NULL", name);
        return false;
    }
    if (targets->dtype != TN_I32) {
        tn_tape_fail(tp, TN_ERR_DTYPE, "%s: targets %s must be int32, got %s", name,
                     TN_SHP(targets), tn_dtype_name(targets->dtype));
        return false;
    }
    if (x->ndim != 2) {
        tn_tape_fail(tp, TN_ERR_SHAPE, "%s: %s must be 2-D [N, C], got %s", name, xname, TN_SHP(x));
        return false;
    }
    if (targets->ndim != 1 || targets->shape[0] != x->shape[0]) {
        tn_tape_fail(tp, TN_ERR_SHAPE, "%s: targets %s do not match %s %s (want [%lld])", name,
                     TN_SHP(targets), xname, TN_SHP(x), (long long)x->shape[0]);
        return false;
    }
    if (!red_ok(red)) {
        tn_tape_fail(tp, TN_ERR_ARG, "%s: unknown reduction %d", name, (int)red);
        return false;
    }
    int64_t n = x->shape[0], c = x->shape[1], ts = targets->stride[0], cnt = 0;
    const int32_t *tg = TN_DATA(int32_t, targets);
    for (int64_t i = 0; i < n; i++) {
        int64_t t = tg[i * ts];
        if (t == ignore_index)
            continue;
        if (t < 0 || t >= c) {
            tn_tape_fail(tp, TN_ERR_INDEX,
                         "%s: target %lld at position %lld is out of range [0, %lld) for %s %s "
                         "(ignore_index %lld)",
                         name, (long long)t, (long long)i, (long long)c, xname, TN_SHP(x),
                         (long long)ignore_index);
            return false;
        }
        cnt++;
    }
    *count = cnt;
    return true;
}

/* Result of a loss with per-row (or per-element) values: [1] or shape. */
static tn_tensor *loss_result(tn_tape *tp, int op, tn_tensor *x, tn_tensor *other, tn_reduction red,
                              int ndim, const int64_t *shape)
{
    int64_t one = 1;
    if (red == TN_REDUCE_NONE)
        return tn__result(tp, op, x->dtype, ndim, shape, false, x, other, NULL);
    return tn__result(tp, op, x->dtype, 1, &one, false, x, other, NULL);
}

/* y [1] = sum of li [n] (in order), divided by count for mean (NaN when
 * count is 0, as PyTorch). */
static void reduce_rows(tn_tensor *y, const double *li, int64_t n, tn_reduction red, int64_t count)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++)
        s += li[i];
    if (red == TN_REDUCE_MEAN)
        s = count > 0 ? s / (double)count : NAN;
    TN_FOR_DTYPE(y->dtype, T, { TN_DATA(T, y)[0] = (T)s; });
}

/* Gradient scale of row i: dy[i] for none; dy[0] (/ count for mean). */
static double row_grad(const tn_tensor *y, int64_t i)
{
    tn_reduction red = (tn_reduction)tn__node(y)->iparam[1];
    int64_t count = tn__node(y)->iparam[2];
    double g = 0;
    TN_FOR_DTYPE(y->dtype, T, { g = TN_GRAD(T, y)[red == TN_REDUCE_NONE ? i : 0]; });
    if (red == TN_REDUCE_MEAN)
        g = count > 0 ? g / (double)count : 0.0;
    return g;
}

/* ---- cross_entropy ---- */

/* x [N, C] strided, targets [N] (stride ts); lse [N] and li [N] out: li =
 * lse - x[t] for counted rows, 0 for ignored ones (their lse is 0). */
static void ce_forward(const tn_tensor *x, const int32_t *tg, int64_t ts, int64_t ignore,
                       double *lse, double *li)
{
    int64_t n = x->shape[0], c = x->shape[1], s0 = x->stride[0], s1 = x->stride[1];
    const tn__rows *kern = tn__rows_get(TN_F32);
    TN_FOR_DTYPE(x->dtype, T, {
        const T *X = TN_DATA(T, x);
        TN_PAR_FOR(n > 1 && n * c > TN_PAR_MIN, i, 0, n, {
            int64_t t = tg[i * ts];
            if (t == ignore) {
                lse[i] = 0;
                li[i] = 0;
                continue;
            }
            const T *px = X + i * s0;
            bool vec = s1 == 1 && sizeof(T) == sizeof(float); /* the vectorised kernels */
            T m = px[0];
            if (vec)
                m = (T)kern->row_max(c, (const float *)px);
            else
                for (int64_t k = 1; k < c; k++)
                    if (px[k * s1] > m)
                        m = px[k * s1];
            double z = 0;
            for (int64_t k0 = 0; k0 < c; k0 += 64) {
                T e[64];
                int64_t w = c - k0 < 64 ? c - k0 : 64;
                if (vec)
                    z += kern->exp_sum(w, (const float *)px + k0, (float)m, (float *)e);
                else
                    for (int64_t k = 0; k < w; k++)
                        z += TN_EXP(px[(k0 + k) * s1] - m);
            }
            double l = (double)m + log(z);
            lse[i] = l;
            li[i] = l - (double)px[t * s1];
        });
    });
}

/* Check weight (NULL, or [C] of logits' dtype, finite, >= 0, no gradient)
 * of cross_entropy over logits [N, C]. */
static bool check_class_weight(tn_tape *tp, const tn_tensor *logits, const tn_tensor *weight)
{
    if (!weight)
        return true;
    int64_t c = logits->shape[1];
    if (weight->dtype != logits->dtype) {
        tn_tape_fail(tp, TN_ERR_DTYPE, "cross_entropy: weight %s is %s, logits %s are %s",
                     TN_SHP(weight), tn_dtype_name(weight->dtype), TN_SHP(logits),
                     tn_dtype_name(logits->dtype));
        return false;
    }
    if (weight->ndim != 1 || weight->shape[0] != c) {
        tn_tape_fail(tp, TN_ERR_SHAPE,
                     "cross_entropy: weight %s must be [C] = [%lld] for logits %s", TN_SHP(weight),
                     (long long)c, TN_SHP(logits));
        return false;
    }
    if (weight->requires_grad) {
        tn_tape_fail(tp, TN_ERR_ARG,
                     "cross_entropy: weight %s requires grad; class weights are constants "
                     "(no gradient flows to them)",
                     TN_SHP(weight));
        return false;
    }
    for (int64_t k = 0; k < c; k++) {
        double w = tn_tensor_get(weight, k);
        if (!(w >= 0) || !isfinite(w)) {
            tn_tape_fail(tp, TN_ERR_ARG,
                         "cross_entropy: weight[%lld] = %g; class weights must be finite and "
                         ">= 0",
                         (long long)k, w);
            return false;
        }
    }
    return true;
}

tn_tensor *tn_cross_entropy_weighted(tn_tape *tp, tn_tensor *logits, tn_tensor *targets,
                                     tn_tensor *weight, int64_t ignore_index, tn_reduction red)
{
    int64_t count;
    if (!check_class_loss(tp, "cross_entropy", "logits", logits, targets, ignore_index, red,
                          &count) ||
        !check_class_weight(tp, logits, weight))
        return NULL;
    int64_t n = logits->shape[0];
    double *lse = tn_tape_alloc(tp, 2 * (size_t)n * sizeof(double));
    double *li = tn_tape_alloc(tp, (size_t)n * sizeof(double));
    if (!lse || !li)
        return NULL;
    double *wrow = lse + n, wsum = 0;
    /* the weights are copied into aux: the node needs weight no longer */
    tn_tensor *y = loss_result(tp, TN_OP_CROSS_ENTROPY, logits, targets, red, 1, &n);
    if (!y)
        return NULL;
    tn__node(y)->iparam[0] = ignore_index;
    tn__node(y)->iparam[1] = red;
    tn__node(y)->iparam[2] = count;
    tn__node(y)->aux = lse;
    const int32_t *tg = TN_DATA(int32_t, targets);
    int64_t ts = targets->stride[0];
    ce_forward(logits, tg, ts, ignore_index, lse, li);
    /* wrow [N] = w[t_i] (1 without weights, 0 for ignored rows), in order */
    for (int64_t i = 0; i < n; i++) {
        int64_t t = tg[i * ts];
        wrow[i] = t == ignore_index ? 0.0 : weight ? tn_tensor_get(weight, t) : 1.0;
        li[i] *= wrow[i];
        wsum += wrow[i];
    }
    tn__node(y)->fparam[0] = wsum;
    if (red == TN_REDUCE_NONE) {
        TN_FOR_DTYPE(y->dtype, T, {
            for (int64_t i = 0; i < n; i++)
                TN_DATA(T, y)[i] = (T)li[i];
        });
    } else {
        double s = 0;
        for (int64_t i = 0; i < n; i++)
            s += li[i];
        if (red == TN_REDUCE_MEAN)
            s = s / wsum; /* 0/0 = NaN when nothing counts, as PyTorch */
        TN_FOR_DTYPE(y->dtype, T, { TN_DATA(T, y)[0] = (T)s; });
    }
    return tn__finish(tp, y);
}

tn_tensor *tn_cross_entropy(tn_tape *tp, tn_tensor *logits, tn_tensor *targets,
                            int64_t ignore_index, tn_reduction red)
{
    return tn_cross_entropy_weighted(tp, logits, targets, NULL, ignore_index, red);
}

/* dx [N, C] (logits' strides) += g_i w_i (softmax(x_i) - onehot(t_i)) for
 * counted rows, g_i = dy[i] (none) or dy[0] (/ sum of weights for mean);
 * softmax = exp(x - lse) and w_i from the forward's aux. */
void tn__bw_cross_entropy(tn_tensor *y)
{
    tn_tensor *x = tn__node(y)->src[0], *targets = tn__node(y)->src[1];
    if (!tn__wants(x))
        return;
    int64_t n = x->shape[0], c = x->shape[1], s0 = x->stride[0], s1 = x->stride[1];
    const int32_t *tg = TN_DATA(int32_t, targets);
    int64_t ts = targets->stride[0], ignore = tn__node(y)->iparam[0];
    tn_reduction red = (tn_reduction)tn__node(y)->iparam[1];
    double wsum = tn__node(y)->fparam[0];
    const tn__rows *kern = tn__rows_get(TN_F32);
    TN_FOR_DTYPE(x->dtype, T, {
        const T *X = TN_DATA(T, x), *DY = TN_GRAD(T, y);
        const double *lse = tn__node(y)->aux, *wrow = lse + n;
        T *DX = TN_GRAD(T, x);
        TN_PAR_FOR(n > 1 && n * c > TN_PAR_MIN, i, 0, n, {
            int64_t t = tg[i * ts];
            if (t == ignore || wrow[i] == 0)
                continue;
            double gd = (double)DY[red == TN_REDUCE_NONE ? i : 0] * wrow[i];
            if (red == TN_REDUCE_MEAN)
                gd /= wsum;
            T g = (T)gd;
            double l = lse[i];
            const T *px = X + i * s0;
            T *dx = DX + i * s0;
            if (s1 == 1 && sizeof(T) == sizeof(float)) /* the common case, vectorised */
                kern->softmax_axpy(c, (float)g, (const float *)px, l, (float *)dx);
            else
                for (int64_t k = 0; k < c; k++)
                    dx[k * s1] += g * TN_EXP((T)(px[k * s1] - l));
            dx[t * s1] -= g;
        });
    });
}

/* ---- nll ---- */

tn_tensor *tn_nll(tn_tape *tp, tn_tensor *logp, tn_tensor *targets, int64_t ignore_index,
                  tn_reduction red)
{
    int64_t count;
    if (!check_class_loss(tp, "nll", "logp", logp, targets, ignore_index, red, &count))
        return NULL;
    int64_t n = logp->shape[0], s0 = logp->stride[0], s1 = logp->stride[1];
    double *li = tn_tape_alloc(tp, (size_t)n * sizeof(double));
    if (!li)
        return NULL;
    tn_tensor *y = loss_result(tp, TN_OP_NLL, logp, targets, red, 1, &n);
    if (!y)
        return NULL;
    tn__node(y)->iparam[0] = ignore_index;
    tn__node(y)->iparam[1] = red;
    tn__node(y)->iparam[2] = count;
    /* logp [N, C] strided -> li [N] */
    const int32_t *tg = TN_DATA(int32_t, targets);
    int64_t ts = targets->stride[0];
    TN_FOR_DTYPE(logp->dtype, T, {
        const T *X = TN_DATA(T, logp);
        for (int64_t i = 0; i < n; i++) {
            int64_t t = tg[i * ts];
            li[i] = t == ignore_index ? 0.0 : -(double)X[i * s0 + t * s1];
        }
        if (red == TN_REDUCE_NONE)
            for (int64_t i = 0; i < n; i++)
                TN_DATA(T, y)[i] = (T)li[i];
    });
    if (red != TN_REDUCE_NONE)
        reduce_rows(y, li, n, red, count);
    return tn__finish(tp, y);
}

/* dlogp [N, C] (logp's strides): dlogp[i, t_i] -= g_i for counted rows. */
void tn__bw_nll(tn_tensor *y)
{
    tn_tensor *x = tn__node(y)->src[0], *targets = tn__node(y)->src[1];
    if (!tn__wants(x))
        return;
    int64_t n = x->shape[0], s0 = x->stride[0], s1 = x->stride[1];
    const int32_t *tg = TN_DATA(int32_t, targets);
    int64_t ts = targets->stride[0], ignore = tn__node(y)->iparam[0];
    TN_FOR_DTYPE(x->dtype, T, {
        T *DX = TN_GRAD(T, x);
        for (int64_t i = 0; i < n; i++) {
            int64_t t = tg[i * ts];
            if (t != ignore)
                DX[i * s0 + t * s1] -= (T)row_grad(y, i);
        }
    });
}

/* ---- mse ---- */

tn_tensor *tn_mse(tn_tape *tp, tn_tensor *a, tn_tensor *b, tn_reduction red)
{
    tn_tensor *in[2] = {a, b};
    if (!tn__check(tp, "mse", 2, in))
        return NULL;
    if (a->ndim != b->ndim || memcmp(a->shape, b->shape, sizeof a->shape) != 0) {
        tn_tape_fail(tp, TN_ERR_SHAPE, "mse: shapes %s and %s differ", TN_SHP(a), TN_SHP(b));
        return NULL;
    }
    if (!red_ok(red)) {
        tn_tape_fail(tp, TN_ERR_ARG, "mse: unknown reduction %d", (int)red);
        return NULL;
    }
    /* a, b any shape (frame s, strides sa, sb); y contiguous or [1] */
    int64_t s[4], sa[4], sb[4];
    tn__frame(a->ndim, a->shape, s);
    tn__bstrides(a, a->ndim, a->shape, sa);
    tn__bstrides(b, a->ndim, a->shape, sb);
    int64_t rows = s[0] * s[1] * s[2], n = s[3];
    double *part = NULL;
    if (red != TN_REDUCE_NONE && !(part = tn_tape_alloc(tp, (size_t)rows * sizeof(double))))
        return NULL;
    tn_tensor *y = loss_result(tp, TN_OP_MSE, a, b, red, a->ndim, a->shape);
    if (!y)
        return NULL;
    tn__node(y)->iparam[1] = red;
    const tn__rows *kr = tn__rows_get(a->dtype);
    int64_t es = (int64_t)tn_dtype_size(a->dtype);
    TN_PAR_FOR(rows > 1 && rows * n > TN_PAR_MIN, r, 0, rows, {
        double acc = kr->sqdiff_fw(n, (const char *)a->data + tn__row_off(r, s, sa) * es, sa[3],
                                   (const char *)b->data + tn__row_off(r, s, sb) * es, sb[3],
                                   part ? NULL : (char *)y->data + r * n * es);
        if (part)
            part[r] = acc;
    });
    if (part) {
        double tot = 0;
        for (int64_t r = 0; r < rows; r++)
            tot += part[r];
        if (red == TN_REDUCE_MEAN)
            tot /= (double)tn_numel(a);
        TN_FOR_DTYPE(a->dtype, T, { TN_DATA(T, y)[0] = (T)tot; });
    }
    return tn__finish(tp, y);
}

/* Backward into operand `which` (0 = a, 1 = b) of y = mse(a, b):
 * da += g * 2 (a - b), db -= g * 2 (a - b), g = dy (none), dy[0] (sum) or
 * dy[0] / numel (mean). One operand per pass, so two views of one base never
 * race on the same gradient element. */
static void mse_backward(tn_tensor *y, int which)
{
    tn_tensor *a = tn__node(y)->src[0], *b = tn__node(y)->src[1], *x = tn__node(y)->src[which];
    if (!tn__wants(x))
        return;
    tn_reduction red = (tn_reduction)tn__node(y)->iparam[1];
    int64_t s[4], sa[4], sb[4], sx[4];
    tn__frame(a->ndim, a->shape, s);
    tn__bstrides(a, a->ndim, a->shape, sa);
    tn__bstrides(b, a->ndim, a->shape, sb);
    tn__bstrides(x, a->ndim, a->shape, sx);
    int64_t rows = s[0] * s[1] * s[2], n = s[3];
    double scale = (which == 0 ? 2.0 : -2.0) / (red == TN_REDUCE_MEAN ? (double)tn_numel(a) : 1.0);
    const tn__rows *kr = tn__rows_get(a->dtype);
    int64_t es = (int64_t)tn_dtype_size(a->dtype);
    double g = scale;
    if (red != TN_REDUCE_NONE)
        TN_FOR_DTYPE(a->dtype, T, { g = scale * (double)TN_GRAD(T, y)[0]; });
    TN_PAR_FOR(rows * n > TN_PAR_MIN, r, 0, rows, {
        kr->sqdiff_bw(n, g, red == TN_REDUCE_NONE ? (const char *)y->grad + r * n * es : NULL,
                      (const char *)a->data + tn__row_off(r, s, sa) * es, sa[3],
                      (const char *)b->data + tn__row_off(r, s, sb) * es, sb[3],
                      (char *)x->grad + tn__row_off(r, s, sx) * es, sx[3]);
    });
}

void tn__bw_mse(tn_tensor *y)
{
    mse_backward(y, 0);
    mse_backward(y, 1);
}
