/* src/ops/conv.c - conv2d, and conv1d as conv2d on [B, C, 1, L] views:
 * PyTorch's F.conv2d / F.conv1d with nn.Conv2d's weight layout.
 *
 * Shapes (tn__conv_geom): x [B, C, H, W], weight [O, Cg, KH, KW] with
 * Cg = C / G input and Og = O / G output channels per group g, y [B, O,
 * OH, OW]; per group the columns have Kc = Cg KH KW rows and P = OH OW
 * columns. Forward, for each image b and group g:
 *   col [Kc, P] = im2col(x[b, g Cg .. (g+1) Cg - 1])
 *       (row (c, p, q), column (i, j): x[c, i sh - ph + p dh, j sw - pw + q dw], 0 outside)
 *   y_bg [Og, P] = W_g [Og, Kc] @ col [Kc, P]     (+ the bias, copied in first: beta 1)
 * Backward, for each image and group, the columns recomputed (a layer's
 * columns for a whole batch would be KH KW times its input):
 *   dcol [Kc, P] = W_g^T [Kc, Og] @ dy_bg [Og, P],   dx_bg [Cg, H, W] += col2im(dcol)
 *   dW_g [Og, Kc] += dy_bg [Og, P] @ col^T [P, Kc]
 *   db [O] += the sums of dy over images and positions (in double).
 * A 1x1 kernel with stride 1 and no padding needs no columns: col is x_bg
 * itself, [Cg, H W], and dx_bg += W_g^T @ dy_bg directly.
 *
 * Threads: with two images or more and enough work, the images are split
 * over the threads (static split), each thread with its own columns and
 * one-thread GEMMs (tn__gemm_on(.., 1) may run inside a parallel region);
 * each thread adds its weight gradient into a buffer of its own, and the
 * buffers go into weight's gradient in thread order afterwards. Otherwise
 * the images go one after another, the GEMMs on BLIS's threads and the
 * im2col / col2im loops split over channels.
 *
 * Node: src = {x, weight, bias or NULL}, x and weight contiguous (the
 * builder copies strided ones); aux = the geometry (tn__conv_geom).
 */
#include "ops_internal.h"

#include <omp.h>
#include <stdio.h>

/* Below this many multiply-adds (forward) the images are not split over
 * threads (the GEMMs then decide their own threads: one when small). */
#define CONV_PAR_MIN ((int64_t)1 << 22)
/* Geometry values above this are refused (keeps every size computation far
 * from overflowing). */
#define CONV_MAX     ((int64_t)1 << 30)

/* The derived sizes of a geometry. */
typedef struct cv {
    const tn__conv_geom *g;
    tn_dtype dt;
    size_t es;
    int64_t Cg, Og, Kc, P, HW;
    bool direct; /* 1x1, stride 1, no padding: the columns are x itself */
} cv;

static cv cv_of(const tn__conv_geom *g, tn_dtype dt)
{
    cv s = {g,           dt,   tn_dtype_size(dt), g->C / g->G, g->O / g->G, 0, g->OH * g->OW,
            g->H * g->W, false};
    s.Kc = s.Cg * g->KH * g->KW;
    s.direct = g->KH == 1 && g->KW == 1 && g->sh == 1 && g->sw == 1 && g->ph == 0 && g->pw == 0;
    return s;
}

/* The outputs j in [*j0, *j1) (of 0 .. on - 1) whose input j s + off lies
 * in 0 .. n - 1. */
static void valid_range(int64_t off, int64_t s, int64_t n, int64_t on, int64_t *j0, int64_t *j1)
{
    int64_t a = off < 0 ? (-off + s - 1) / s : 0;
    int64_t b = n - 1 - off < 0 ? 0 : (n - 1 - off) / s + 1;
    b = b < on ? b : on;
    *j0 = a < b ? a : b;
    *j1 = b;
}

/* Between an image's group xg [Cg, H, W] and its columns col [Kc, P]:
 * col := im2col(xg) (back false), or xg += col2im(col), im2col's transpose
 * (back true). Channels split over the threads when par (each owns its
 * rows of col and planes of xg). */
static void im2col(const cv *s, void *xg, void *col, bool par, bool back)
{
    const tn__conv_geom *g = s->g;
    int64_t H = g->H, W = g->W, OH = g->OH, OW = g->OW, KH = g->KH, KW = g->KW, sw = g->sw;
    TN_FOR_DTYPE(s->dt, T, {
        T *X = xg, *CL = col;
        TN_PAR_FOR(par, c, 0, s->Cg, {
            for (int64_t p = 0; p < KH; p++)
                for (int64_t q = 0; q < KW; q++) {
                    T *row = CL + ((c * KH + p) * KW + q) * s->P;
                    int64_t off = q * g->dw - g->pw, j0, j1;
                    valid_range(off, sw, W, OW, &j0, &j1);
                    for (int64_t i = 0; i < OH; i++) {
                        T *r = row + i * OW;
                        int64_t ih = i * g->sh - g->ph + p * g->dh;
                        bool in = ih >= 0 && ih < H;
                        /* x's row ih, its column j sw + off for output j */
                        int64_t a = in ? j0 : OW, e = in ? j1 : OW, x0 = (c * H + ih) * W + off;
                        if (back) {
                            for (int64_t j = a; j < e; j++)
                                X[x0 + j * sw] += r[j];
                            continue;
                        }
                        for (int64_t j = 0; j < a; j++)
                            r[j] = 0;
                        for (int64_t j = a; j < e; j++)
                            r[j] = X[x0 + j * sw];
                        for (int64_t j = e; j < OW; j++)
                            r[j] = 0;
                    }
                }
        });
    });
}

/* The matrix [Kc, P] of group gi's columns of image xb [C, H, W]: x itself
 * when direct, else made in col. */
static tn__mat columns(const cv *s, const char *xb, int64_t gi, void *col, bool par)
{
    const char *xg = xb + (size_t)(gi * s->Cg * s->HW) * s->es;
    if (s->direct)
        return (tn__mat){(void *)xg, s->Kc, s->P, s->P, 1};
    im2col(s, (void *)xg, col, par, false);
    return (tn__mat){col, s->Kc, s->P, s->P, 1};
}

/* Group gi's weights W_g [Og, Kc] in w (or its gradient) [O, Kc]. */
static tn__mat wmat(const cv *s, const void *w, int64_t gi)
{
    return (tn__mat){(char *)w + (size_t)(gi * s->Og * s->Kc) * s->es, s->Og, s->Kc, s->Kc, 1};
}

/* Group gi's rows [Og, P] of an image's output (or its gradient) yb [O, P]. */
static tn__mat ymat(const cv *s, const void *yb, int64_t gi)
{
    return (tn__mat){(char *)yb + (size_t)(gi * s->Og * s->P) * s->es, s->Og, s->P, s->P, 1};
}

/* One image: yb [O, P] := W (*) xb [C, H, W] + bias; col [Kc, P] scratch;
 * GEMMs on gt threads (0: as tn__gemm chooses). */
static void fwd_image(const cv *s, const char *xb, const void *w, const tn_tensor *bias, void *yb,
                      void *col, int gt, bool par)
{
    if (bias)
        TN_FOR_DTYPE(s->dt, T, {
            const T *BS = TN_DATA(T, bias);
            T *Y = yb;
            for (int64_t o = 0; o < s->g->O; o++)
                for (int64_t k = 0; k < s->P; k++)
                    Y[o * s->P + k] = BS[o * bias->stride[0]];
        });
    for (int64_t gi = 0; gi < s->g->G; gi++)
        tn__gemm_on(s->dt, wmat(s, w, gi), columns(s, xb, gi, col, par), bias ? 1.0 : 0.0,
                    ymat(s, yb, gi), gt);
}

/* One image's backward: dxb [C, H, W] += d/dx (dxb NULL: not wanted),
 * dw [O, Kc] += d/dW (NULL: not wanted), from dyb [O, P]; col and dcol
 * [Kc, P] scratch. */
static void bwd_image(const cv *s, const char *xb, const void *w, const void *dyb, char *dxb,
                      void *dw, void *col, void *dcol, int gt, bool par)
{
    for (int64_t gi = 0; gi < s->g->G; gi++) {
        tn__mat dY = ymat(s, dyb, gi), Wt = tn__mat_t(wmat(s, w, gi));
        if (dxb) {
            char *dxg = dxb + (size_t)(gi * s->Cg * s->HW) * s->es;
            if (s->direct) {
                tn__gemm_on(s->dt, Wt, dY, 1.0, (tn__mat){dxg, s->Kc, s->P, s->P, 1}, gt);
            } else {
                tn__gemm_on(s->dt, Wt, dY, 0.0, (tn__mat){dcol, s->Kc, s->P, s->P, 1}, gt);
                im2col(s, dxg, dcol, par, true);
            }
        }
        if (dw)
            tn__gemm_on(s->dt, dY, tn__mat_t(columns(s, xb, gi, col, par)), 1.0, wmat(s, dw, gi),
                        gt);
    }
}

/* Threads to split the images over: 1 (the images one after another) for
 * a single image, one thread or little work. */
static int image_threads(const cv *s)
{
    int nt = tn__threads_now();
    if (nt < 2 || s->g->B < 2 ||
        (double)s->g->B * (double)s->g->O * (double)s->Kc * (double)s->P < (double)CONV_PAR_MIN)
        return 1;
    return s->g->B < nt ? (int)s->g->B : nt;
}

/* Scratch of n values for each of nt threads (NULL when n is 0). */
static void *scratch(tn_tape *tp, const cv *s, int nt, int64_t n)
{
    return n ? tn_tape_alloc(tp, (size_t)(nt * n) * s->es) : NULL;
}

static bool conv_forward(tn_tape *tp, const tn__conv_geom *g, const tn_tensor *x,
                         const tn_tensor *w, const tn_tensor *bias, tn_tensor *y)
{
    cv s = cv_of(g, x->dtype);
    int nt = image_threads(&s);
    int64_t ncol = s.direct ? 0 : s.Kc * s.P;
    char *col = scratch(tp, &s, nt, ncol);
    if (ncol && !col)
        return false;
    const char *X = x->data;
    char *Y = y->data;
    size_t xs = (size_t)(g->C * s.HW) * s.es, ys = (size_t)(g->O * s.P) * s.es;
    if (nt == 1) {
        bool par = s.Kc * s.P > TN_PAR_MIN && s.Cg > 1;
        for (int64_t b = 0; b < g->B; b++)
            fwd_image(&s, X + b * xs, w->data, bias, Y + b * ys, col, 0, par);
        return true;
    }
    TN_FTZ_SCOPE;
#pragma omp parallel num_threads(nt)
    {
        int k = omp_get_thread_num();
        int64_t b0 = g->B * k / nt, b1 = g->B * (k + 1) / nt;
        for (int64_t b = b0; b < b1; b++)
            fwd_image(&s, X + b * xs, w->data, bias, Y + b * ys,
                      col ? col + (size_t)(k * ncol) * s.es : NULL, 1, false);
    }
    return true;
}

void tn__bw_conv2d(tn_tensor *y)
{
    tn_tensor *x = tn__node(y)->src[0], *w = tn__node(y)->src[1], *bias = tn__node(y)->src[2];
    const tn__conv_geom *g = tn__node(y)->aux;
    tn_tape *tp = tn__node(y)->tape;
    cv s = cv_of(g, y->dtype);
    bool wx = tn__wants(x), ww = tn__wants(w);
    if (tn__wants(bias)) /* db[o] += sum over b, k of dy[b, o, k] */
        TN_FOR_DTYPE(y->dtype, T, {
            const T *DY = TN_GRAD(T, y);
            T *DB = TN_GRAD(T, bias);
            TN_PAR_FOR(g->O > 1 && tn_numel(y) > TN_PAR_MIN, o, 0, g->O, {
                double acc = 0;
                for (int64_t b = 0; b < g->B; b++)
                    for (int64_t k = 0; k < s.P; k++)
                        acc += (double)DY[(b * g->O + o) * s.P + k];
                DB[o * bias->stride[0]] += (T)acc;
            });
        });
    if (!wx && !ww)
        return;
    int nt = image_threads(&s);
    int64_t ncol = s.direct ? 0 : s.Kc * s.P, nw = g->O * s.Kc;
    char *col = scratch(tp, &s, nt, ww ? ncol : 0);
    char *dcol = scratch(tp, &s, nt, wx ? ncol : 0);
    char *dwp = nt > 1 && ww ? scratch(tp, &s, nt, nw) : NULL; /* per-thread dW */
    if ((ww && ncol && !col) || (wx && ncol && !dcol) || (nt > 1 && ww && !dwp))
        return; /* out of arena memory: the tape has the error */
    const char *X = x->data, *DY = y->grad;
    char *DX = wx ? x->grad : NULL;
    size_t xs = (size_t)(g->C * s.HW) * s.es, ys = (size_t)(g->O * s.P) * s.es;
    if (nt == 1) {
        bool par = s.Kc * s.P > TN_PAR_MIN && s.Cg > 1;
        for (int64_t b = 0; b < g->B; b++)
            bwd_image(&s, X + b * xs, w->data, DY + b * ys, DX ? DX + b * xs : NULL,
                      ww ? w->grad : NULL, col, dcol, 0, par);
        return;
    }
    if (dwp)
        memset(dwp, 0, (size_t)(nt * nw) * s.es);
    {
        TN_FTZ_SCOPE;
#pragma omp parallel num_threads(nt)
        {
            int k = omp_get_thread_num();
            int64_t b0 = g->B * k / nt, b1 = g->B * (k + 1) / nt;
            size_t ko = (size_t)(k * ncol) * s.es;
            for (int64_t b = b0; b < b1; b++)
                bwd_image(&s, X + b * xs, w->data, DY + b * ys, DX ? DX + b * xs : NULL,
                          dwp ? dwp + (size_t)(k * nw) * s.es : NULL, col ? col + ko : NULL,
                          dcol ? dcol + ko : NULL, 1, false);
        }
    }
    if (dwp) /* weight's gradient [O, Kc] += the threads' sums [nt, O, Kc], in thread order */
        TN_FOR_DTYPE(y->dtype, T, {
            const T *P = (const T *)dwp;
            T *GW = TN_GRAD(T, w);
            TN_PAR_FOR(nw > TN_PAR_MIN, i, 0, nw, {
                T acc = GW[i];
                for (int k = 0; k < nt; k++)
                    acc += P[k * nw + i];
                GW[i] = acc;
            });
        });
}

/* ---- the naive twins (tests) ---- */

/* Element offsets in x [B, C, H, W] and weight [O, Cg, KH, KW]. */
#define XI(g, b, c, h, w)     ((((b) * (g)->C + (c)) * (g)->H + (h)) * (g)->W + (w))
#define WI(g, cg, o, c, p, q) ((((o) * (cg) + (c)) * (g)->KH + (p)) * (g)->KW + (q))

/* Calls body for every (b, o, i, j) of y and every (c, p, q) of o's window
 * that falls inside x, with ix = XI of the input, iw = WI of the weight
 * and iy the output's offset. */
#define CONV_NAIVE_LOOP(g, before, body, after)                                         \
    do {                                                                                \
        int64_t cg_ = (g)->C / (g)->G, og_ = (g)->O / (g)->G;                           \
        for (int64_t b = 0; b < (g)->B; b++)                                            \
            for (int64_t o = 0; o < (g)->O; o++)                                        \
                for (int64_t i = 0; i < (g)->OH; i++)                                   \
                    for (int64_t j = 0; j < (g)->OW; j++) {                             \
                        int64_t iy = ((b * (g)->O + o) * (g)->OH + i) * (g)->OW + j;    \
                        before;                                                         \
                        for (int64_t c = 0; c < cg_; c++)                               \
                            for (int64_t p = 0; p < (g)->KH; p++)                       \
                                for (int64_t q = 0; q < (g)->KW; q++) {                 \
                                    int64_t h = i * (g)->sh - (g)->ph + p * (g)->dh;    \
                                    int64_t w_ = j * (g)->sw - (g)->pw + q * (g)->dw;   \
                                    if (h < 0 || h >= (g)->H || w_ < 0 || w_ >= (g)->W) \
                                        continue;                                       \
                                    int64_t ix = XI(g, b, o / og_ * cg_ + c, h, w_);    \
                                    int64_t iw = WI(g, cg_, o, c, p, q);                \
                                    body;                                               \
                                }                                                       \
                        after;                                                          \
                    }                                                                   \
    } while (0)

/* y [B, O, OH, OW] := conv(x [B, C, H, W], w [O, Cg, KH, KW]) + bias [O]
 * (or none), one output at a time, summed in double. */
void tn__conv2d_naive(tn_dtype dt, const tn__conv_geom *g, const void *x, const void *w,
                      const void *bias, void *y)
{
    TN_FOR_DTYPE(dt, T, {
        const T *X = x, *WT = w, *BS = bias;
        T *Y = y;
        double acc = 0;
        CONV_NAIVE_LOOP(g, acc = BS ? (double)BS[o] : 0.0, acc += (double)X[ix] * (double)WT[iw],
                        Y[iy] = (T)acc);
    });
}

/* dx [B, C, H, W], dw [O, Cg, KH, KW], db [O] += the gradients of
 * sum(dy [B, O, OH, OW] * y), scattered from each output's window into
 * double accumulators, then added (each target may be NULL). */
void tn__conv2d_backward_naive(tn_dtype dt, const tn__conv_geom *g, const void *x, const void *w,
                               const void *dy, void *dx, void *dw, void *db)
{
    int64_t nx = g->B * g->C * g->H * g->W, nw = g->O * (g->C / g->G) * g->KH * g->KW;
    double *ax = tn__alloc_array((size_t)nx, sizeof(double));
    double *aw = tn__alloc_array((size_t)nw, sizeof(double));
    double *ab = tn__alloc_array((size_t)g->O, sizeof(double));
    if (ax && aw && ab)
        TN_FOR_DTYPE(dt, T, {
            const T *X = x, *WT = w, *DY = dy;
            T *DX = dx, *DW = dw, *DB = db;
            double d = 0;
            CONV_NAIVE_LOOP(g, (d = (double)DY[iy], ab[o] += d),
                            (ax[ix] += d * (double)WT[iw], aw[iw] += d * (double)X[ix]), (void)0);
            for (int64_t i = 0; DX && i < nx; i++)
                DX[i] += (T)ax[i];
            for (int64_t i = 0; DW && i < nw; i++)
                DW[i] += (T)aw[i];
            for (int64_t i = 0; DB && i < g->O; i++)
                DB[i] += (T)ab[i];
        });
    tn_free(ax), tn_free(aw), tn_free(ab);
}

/* ---- builders ---- */

/* "(a, b)" for two spatial dims, "b" for one, into buf. */
static const char *pair_str(int nsp, const int64_t v[2], char *buf, size_t n)
{
    if (nsp == 2)
        snprintf(buf, n, "(%lld, %lld)", (long long)v[0], (long long)v[1]);
    else
        snprintf(buf, n, "%lld", (long long)v[1]);
    return buf;
}
#define PAIR(nsp, v) pair_str(nsp, v, (char[48]){0}, 48)

/* Check op name's arguments (nsp spatial dims: x [B, C, (H,) W], weight
 * [O, C / G, (KH,) KW]; st, pd, dl the strides, paddings, dilations with
 * [0] the height's, fixed 1, 0, 1 for one dim) and fill g. False with the
 * tape failed naming the op and the shapes. */
static bool conv_check(tn_tape *tp, const char *name, int nsp, tn_tensor *x, tn_tensor *w,
                       tn_tensor *b, const int64_t st[2], const int64_t pd[2], const int64_t dl[2],
                       int64_t G, tn__conv_geom *g)
{
    tn_tensor *in[3] = {x, w, b};
    if (!tn__check(tp, name, b ? 3 : 2, in))
        return false;
    const char *xs = nsp == 2 ? "[B, C_in, H, W]" : "[B, C_in, L]";
    const char *ws = nsp == 2 ? "[C_out, C_in / groups, KH, KW]" : "[C_out, C_in / groups, K]";
    if (x->ndim != nsp + 2 || w->ndim != nsp + 2) {
        tn_tape_fail(tp, TN_ERR_SHAPE, "%s: x %s must be %s and weight %s %s", name, TN_SHP(x), xs,
                     TN_SHP(w), ws);
        return false;
    }
    bool ok = G >= 1 && G <= CONV_MAX;
    for (int k = 0; k < 2; k++)
        ok = ok && st[k] >= 1 && st[k] <= CONV_MAX && dl[k] >= 1 && dl[k] <= CONV_MAX &&
             pd[k] >= 0 && pd[k] <= CONV_MAX;
    if (!ok) {
        tn_tape_fail(tp, TN_ERR_ARG,
                     "%s: stride %s and dilation %s must be >= 1, padding %s >= 0, groups %lld "
                     ">= 1 (each at most 2^30); x %s, weight %s",
                     name, PAIR(nsp, st), PAIR(nsp, dl), PAIR(nsp, pd), (long long)G, TN_SHP(x),
                     TN_SHP(w));
        return false;
    }
    int64_t C = x->shape[1], O = w->shape[0];
    if (C % G || O % G) {
        tn_tape_fail(tp, TN_ERR_SHAPE,
                     "%s: groups %lld must divide C_in %lld and C_out %lld: x %s, weight %s", name,
                     (long long)G, (long long)C, (long long)O, TN_SHP(x), TN_SHP(w));
        return false;
    }
    if (w->shape[1] * G != C) {
        tn_tape_fail(tp, TN_ERR_SHAPE,
                     "%s: x %s has C_in = %lld channels, weight %s with groups %lld takes %lld x "
                     "%lld = %lld",
                     name, TN_SHP(x), (long long)C, TN_SHP(w), (long long)G, (long long)w->shape[1],
                     (long long)G, (long long)(w->shape[1] * G));
        return false;
    }
    if (b && (b->ndim != 1 || b->shape[0] != O)) {
        tn_tape_fail(tp, TN_ERR_SHAPE, "%s: bias %s must be [C_out] = [%lld] (weight %s)", name,
                     TN_SHP(b), (long long)O, TN_SHP(w));
        return false;
    }
    int64_t in2[2] = {nsp == 2 ? x->shape[2] : 1, x->shape[nsp + 1]};
    int64_t k2[2] = {nsp == 2 ? w->shape[2] : 1, w->shape[nsp + 1]}, out[2];
    for (int k = 0; k < 2; k++) {
        /* the dilated kernel dl (k - 1) + 1 must fit the padded input; asked
         * as a division so that nothing overflows */
        int64_t span = in2[k] + 2 * pd[k] - 1;
        if (k2[k] - 1 > span / dl[k]) {
            tn_tape_fail(tp, TN_ERR_SHAPE,
                         "%s: the output would be empty: x %s, weight %s, stride %s, padding %s, "
                         "dilation %s (the dilated kernel is larger than the padded input)",
                         name, TN_SHP(x), TN_SHP(w), PAIR(nsp, st), PAIR(nsp, pd), PAIR(nsp, dl));
            return false;
        }
        out[k] = (span - dl[k] * (k2[k] - 1)) / st[k] + 1;
    }
    *g = (tn__conv_geom){x->shape[0], C,     in2[0], in2[1], O,     k2[0], k2[1], out[0],
                         out[1],      st[0], st[1],  pd[0],  pd[1], dl[0], dl[1], G};
    return true;
}

/* x as a contiguous 4-D tensor: copied when strided, given a height of 1
 * when 3-D (views). */
static tn_tensor *as_4d(tn_tape *tp, tn_tensor *x)
{
    if (!tn_is_contiguous(x))
        x = tn_contiguous(tp, x);
    if (x && x->ndim == 3)
        x = tn_reshape(tp, x, 4, (int64_t[]){x->shape[0], x->shape[1], 1, x->shape[2]});
    return x;
}

/* conv2d of the checked x, weight (3-D or 4-D) and bias with geometry g;
 * y [B, O, OH, OW], or its [B, O, OW] view when x is 3-D. */
static tn_tensor *conv_run(tn_tape *tp, tn_tensor *x, tn_tensor *w, tn_tensor *b,
                           const tn__conv_geom *g)
{
    int nd = x->ndim;
    tn_tensor *x4 = as_4d(tp, x), *w4 = x4 ? as_4d(tp, w) : NULL;
    tn__conv_geom *keep = w4 ? tn_tape_alloc(tp, sizeof *keep) : NULL;
    if (!keep)
        return NULL;
    *keep = *g;
    int64_t shape[4] = {g->B, g->O, g->OH, g->OW};
    tn_tensor *y = tn__result(tp, TN_OP_CONV2D, x->dtype, 4, shape, false, x4, w4, b);
    if (!y)
        return NULL;
    tn__node(y)->aux = keep;
    if (!conv_forward(tp, g, x4, w4, b, y))
        return NULL;
    y = tn__finish(tp, y);
    if (y && nd == 3)
        y = tn_reshape(tp, y, 3, (int64_t[]){g->B, g->O, g->OW});
    return y;
}

tn_conv2d_opts tn_conv2d_defaults(void) { return (tn_conv2d_opts){1, 1, 0, 0, 1, 1, 1}; }

tn_tensor *tn_conv2d(tn_tape *tp, tn_tensor *x, tn_tensor *weight, tn_tensor *bias,
                     const tn_conv2d_opts *o)
{
    tn_conv2d_opts d = o ? *o : tn_conv2d_defaults();
    tn__conv_geom g;
    if (!conv_check(tp, "conv2d", 2, x, weight, bias, (int64_t[]){d.stride_h, d.stride_w},
                    (int64_t[]){d.padding_h, d.padding_w}, (int64_t[]){d.dilation_h, d.dilation_w},
                    d.groups, &g))
        return NULL;
    return conv_run(tp, x, weight, bias, &g);
}

tn_tensor *tn_conv1d(tn_tape *tp, tn_tensor *x, tn_tensor *weight, tn_tensor *bias, int64_t stride,
                     int64_t padding, int64_t dilation, int64_t groups)
{
    tn__conv_geom g;
    if (!conv_check(tp, "conv1d", 1, x, weight, bias, (int64_t[]){1, stride},
                    (int64_t[]){0, padding}, (int64_t[]){1, dilation}, groups, &g))
        return NULL;
    return conv_run(tp, x, weight, bias, &g);
}
