/* src/ops/conv.c - conv2d, and conv1d as conv2d on [B, C, 1, L] views:
 * PyTorch's F.conv2d / F.conv1d with nn.Conv2d's weight layout.
 *
 * Shapes (tn__conv_geom): x [B, C, H, W], weight [O, Cg, KH, KW] with
 * Cg = C / G input and Og = O / G output channels per group g, y [B, O,
 * OH, OW]; per group the columns have Kc = Cg KH KW rows and P = OH OW
 * columns (the output positions, row-major):
 *   col [Kc, P] = im2col(x_bg)
 *       (row (c, p, q), column (i, j): x[c, i sh - ph + p dh, j sw - pw + q dw], 0 outside)
 * Forward, for each image b and group g:
 *   y_bg [Og, P] = W_g [Og, Kc] @ col [Kc, P]     (+ the bias, added per panel)
 * Backward:
 *   dx_bg [Cg, H, W] += col2im(W_g^T [Kc, Og] @ dy_bg [Og, P])
 *   dWr_g [Og, Kc] += dy_bg [Og, P] @ rows [P, Kc],   rows = im2row(xt),  xt [H W, Cg] = x_bg^T
 *       (row (i, j), column (p, q, c): xt[(i sh - ph + p dh) W + j sw - pw + q dw, c])
 *   db [O] += the sums of dy over images and positions (in double: each
 *       image's after its dx and dW, while dy_b is in cache, then added in
 *       image order).
 *
 * Panel products (where the direct ones below do not apply): all three
 * run on BLIS's micro-kernel directly (tn__packed_*,
 * src/ops/matmul_packed.c), and neither col nor rows is ever made whole:
 * the left operand is packed into the kernel's panels once (W_g and W_g^T
 * per call, dy_bg per image), and the right one is packed one panel of pw
 * columns at a time straight from x (im2col, or im2row from xt, and
 * packing in one copy of contiguous runs); the panel stays in cache while
 * every block of the left operand multiplies it, and for dx the panel's
 * [Kc, pw] product is added into dx (col2im) before the next panel.
 * Through BLIS's GEMM, a whole image's columns (KH KW times its input)
 * would go through memory twice, made and then packed: measured 20% of a
 * small CNN's step.
 *
 * The weight gradient reduces over positions, which are contiguous in both
 * dy and col: as col^T, both operands would reach the packing with the
 * reduction dimension contiguous (BLIS's generic packing then copies one
 * value at a time: another 20% of that step). rows has it strided, and its
 * panels are runs of Cg channels of xt; its columns are in (p, q, c)
 * order, so dWr is permuted into weight's [Og, Cg, KH, KW] order once, at
 * the end.
 *
 * Direct products. In float with stride 1 and dilation 1, an output
 * position (i, j) and tap (p, q) read the zero-padded input xp [Cg, Hp,
 * Wp] at (i + p) Wp + j + q: with the output rows padded to Wp positions
 * (flat index m = i Wp + j), every tap is a fixed offset into xp, and the
 * products need no columns at all. The kernel table's conv_fw and conv_dw
 * (rows.h: one loop per kernel path, channels along the vectors, the
 * taps' input values broadcast) compute
 *   y_bg^T [m, Og] = correlations of xp with W_g^T (fwd_image_direct),
 *   dx_bg^T = the same of dy's planes (behind a margin of zeros) with the
 *       flipped weights (dx_image_direct),
 *   dW_g^T [Kc, Og] += correlations of dy_bg^T with xp (dw_image_direct),
 * and the table's transpose turns y^T, dx^T and dy back and forth (16 x 16
 * tiles in registers). Used when the channels that run along the vectors
 * fill 3/4 of them (Og for the forward and dW, Cg for dx: wide()); a
 * first layer's 3 input channels keep dx on the panels.
 *
 * Threads: with two images or more and enough work, the images are split
 * over the threads (static split), each thread with its own panels and
 * weight-gradient buffer; the buffers go into weight's gradient in thread
 * order (and permuted) afterwards. Otherwise the images go one after
 * another, the forward's and the weight gradient's panels split over the
 * threads, dx's on one (their col2im would overlap).
 *
 * Node: src = {x, weight, bias or NULL}, x and weight contiguous (the
 * builder copies strided ones); aux = the geometry (tn__conv_geom).
 */
#include "ops_internal.h"
#include "rows.h"

#include <omp.h>
#include <stdio.h>

/* Below this many multiply-adds (forward) the images are not split over
 * threads, nor the panels of one image. */
#define CONV_PAR_MIN ((int64_t)1 << 22)
/* Output positions per block of the weight gradient's product (its K). */
#define CONV_KC      256
/* Geometry values above this are refused (keeps every size computation far
 * from overflowing). */
#define CONV_MAX     ((int64_t)1 << 30)

/* The derived sizes of a geometry, and the micro-kernel's shapes of the
 * three products: the forward's (K = Kc), dx's (K = Og) and dW's (K: a
 * block of at most CONV_KC positions). */
typedef struct cv {
    const tn__conv_geom *g;
    tn_dtype dt;
    size_t es;
    int64_t Cg, Og, Kc, P, HW;
    tn__packed fwd, bdx, bdw;    /* W_g @ col, W_g^T @ dy_bg, dy_bg @ rows (K <= CONV_KC) */
    int64_t fpan, dpan, wpan;    /* bytes of one right-operand panel of each */
    int64_t fleft, dleft, wleft; /* bytes of one group's packed left operand of each */
    int64_t dgrp;                /* dx's panels per col2im (dcol [Kc, dgrp pw]) */
    /* The weight gradient straight from the zero-padded input xp [Cg, Hp,
     * Wp] through the kernel table's conv_dw: float, stride 1, dilation 1,
     * wide enough (cv_of). */
    bool direct_dw;
    int64_t Hp, Wp; /* the padded input's rows and columns */
    int64_t nd;     /* the correlations' length: (OH - 1) Wp + OW */
    int64_t ldd;    /* Og rounded up to 16: dy^T's, dW^T's, W^T's and y^T's row length */
    /* The forward as correlations of the zero-padded input with W^T through
     * the kernel table's conv_fw: float, stride 1, dilation 1, wide enough. */
    bool direct_fw;
    bool direct_dx; /* dx through conv_fw too */
    int64_t nf;     /* nd rounded up to conv_fw's blocks of 6 positions */
    /* dx as the same correlations, of dy (each channel's plane dyq, Lq
     * long: a margin of mq zeros, then its rows at stride Wp) with the
     * flipped weights: ldc Cg rounded up to 16, nx the positions (from the
     * first interior one of the padded input: (H - 1) Wp + W, rounded up
     * to 6). */
    int64_t ldc, mq, Lq, nx;
} cv;

/* Whether n channels fill at least 3/4 of their vectors of 16. */
static bool wide(int64_t n) { return n >= 12 && 4 * n >= 3 * ((n + 15) / 16 * 16); }

static cv cv_of(const tn__conv_geom *g, tn_dtype dt)
{
    cv s = {.g = g,
            .dt = dt,
            .es = tn_dtype_size(dt),
            .Cg = g->C / g->G,
            .Og = g->O / g->G,
            .P = g->OH * g->OW,
            .HW = g->H * g->W};
    s.Kc = s.Cg * g->KH * g->KW;
    tn__packed_geometry(&s.fwd, dt, s.Kc, s.P);
    tn__packed_geometry(&s.bdx, dt, s.Og, s.P);
    tn__packed_geometry(&s.bdw, dt, s.P < CONV_KC ? s.P : CONV_KC, s.Kc);
    s.fpan = tn__packed_panel_bytes(&s.fwd);
    s.dpan = tn__packed_panel_bytes(&s.bdx);
    s.wpan = tn__packed_panel_bytes(&s.bdw);
    s.fleft = tn__packed_scratch_bytes(&s.fwd, s.Og);
    s.dleft = tn__packed_scratch_bytes(&s.bdx, s.Kc);
    s.wleft = tn__packed_scratch_bytes(&s.bdw, s.Og);
    /* col2im in runs of up to an output row: on 16-wide panels (haswell)
     * one panel is half of a 32-wide row, and a run's setup then costs
     * about as much as its adds */
    int64_t pw = s.bdx.pw, rowp = (g->OW + pw - 1) / pw;
    s.dgrp = rowp < 1 ? 1 : rowp > 4 ? 4 : rowp;
    if (dt == TN_F32 && g->sh == 1 && g->sw == 1 && g->dh == 1 && g->dw == 1) {
        /* the direct kernels run the channels of their output along
         * vectors of up to 16: with fewer than 3/4 of the lanes used (a
         * first layer's 3 input channels for dx: 2.3-5.1 against 0.7-0.9
         * ms) the panels are faster */
        s.direct_fw = s.direct_dw = wide(s.Og);
        s.direct_dx = wide(s.Cg);
    }
    s.Hp = g->H + 2 * g->ph, s.Wp = g->W + 2 * g->pw;
    s.nd = (g->OH - 1) * s.Wp + g->OW, s.ldd = (s.Og + 15) / 16 * 16;
    s.nf = (s.nd + 5) / 6 * 6;
    s.ldc = (s.Cg + 15) / 16 * 16, s.mq = (g->KH - 1) * s.Wp + g->KW - 1;
    s.Lq = s.mq + s.Hp * s.Wp + 6, s.nx = ((g->H - 1) * s.Wp + g->W + 5) / 6 * 6;
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

/* Between an image's group xg [Cg, H, W] and the columns c0 .. c0 + n - 1
 * of its col [Kc, P], held in pan [Kc, ld] (column c0 + t at pan[k ld +
 * t]): pan := those columns, and zero in columns n .. ld - 1 (back
 * false: a panel to multiply), or xg += col2im(pan) (back true). The
 * columns go in runs along one output row; for each kernel tap (p, q) a
 * run is a strided (stride 1: contiguous) run of one input row in every
 * channel. */
static void panel_move(const cv *s, void *xg, void *pan, int64_t c0, int64_t n, int64_t ld,
                       bool back)
{
    const tn__conv_geom *g = s->g;
    int64_t H = g->H, W = g->W, OW = g->OW, KH = g->KH, KW = g->KW, sw = g->sw;
    int64_t kstep = KH * KW * ld; /* from channel c's row of a tap to c + 1's */
    TN_FOR_DTYPE(s->dt, T, {
        T *X = xg;
        for (int64_t p = 0; p < KH; p++)
            for (int64_t q = 0; q < KW; q++) {
                T *row0 = (T *)pan + (p * KW + q) * ld; /* channel 0's row of the tap */
                int64_t off = q * g->dw - g->pw, v0, v1;
                valid_range(off, sw, W, OW, &v0, &v1);
                for (int64_t t = 0; t < n;) { /* the run t .. t + len - 1 */
                    int64_t i = (c0 + t) / OW, j = (c0 + t) % OW;
                    int64_t len = n - t < OW - j ? n - t : OW - j, e = j + len;
                    int64_t ih = i * g->sh - g->ph + p * g->dh;
                    bool in = ih >= 0 && ih < H;
                    /* output columns a .. b - 1 of the run read x's row ih,
                     * its column jj sw + off for output column jj */
                    int64_t a = in ? (v0 > j ? v0 : j) : e, b = in ? (v1 < e ? v1 : e) : e;
                    a = a < e ? a : e, b = b > a ? b : a;
                    for (int64_t c = 0; c < s->Cg; c++) {
                        T *r = row0 + c * kstep + t - j;
                        T *xr = X + (c * H + (in ? ih : 0)) * W + off;
                        if (back && sw == 1) {
                            for (int64_t jj = a; jj < b; jj++)
                                xr[jj] += r[jj];
                        } else if (back) {
                            for (int64_t jj = a; jj < b; jj++)
                                xr[jj * sw] += r[jj];
                        } else { /* plain loops: the runs are short for memcpy's call */
                            for (int64_t jj = j; jj < a; jj++)
                                r[jj] = 0;
                            if (sw == 1)
                                for (int64_t jj = a; jj < b; jj++)
                                    r[jj] = xr[jj];
                            else
                                for (int64_t jj = a; jj < b; jj++)
                                    r[jj] = xr[jj * sw];
                            for (int64_t jj = b; jj < e; jj++)
                                r[jj] = 0;
                        }
                    }
                    t += len;
                }
                if (!back && n < ld)
                    for (int64_t c = 0; c < s->Cg; c++)
                        memset(row0 + c * kstep + n, 0, (size_t)(ld - n) * sizeof(T));
            }
    });
}

/* xt [H W, Cg] := xg [Cg, H, W]^T, in tiles that stay in L1. */
static void transpose_image(const cv *s, const void *xg, void *xt)
{
    int64_t Cg = s->Cg, HW = s->HW;
    enum { TILE = 16 };
    TN_FOR_DTYPE(s->dt, T, {
        const T *X = xg;
        T *XT = xt;
        for (int64_t k0 = 0; k0 < HW; k0 += TILE)
            for (int64_t c0 = 0; c0 < Cg; c0 += TILE)
                for (int64_t k = k0; k < k0 + TILE && k < HW; k++)
                    for (int64_t c = c0; c < c0 + TILE && c < Cg; c++)
                        XT[k * Cg + c] = X[c * HW + k];
    });
}

/* pan [kn, ld] := the rows r0 .. r0 + kn - 1 (output positions) and columns
 * c0 .. c0 + n - 1 of rows [P, Kc] = im2row(xt) (row (i, j), column (p, q,
 * c): xt[(i sh - ph + p dh) W + j sw - pw + q dw, c], 0 outside), and zero
 * in columns n .. ld - 1: a panel of the weight gradient's product, made
 * straight from xt [H W, Cg] in runs of columns within one kernel row p.
 * With dilation 1 a run's taps q are adjacent in xt, so a row whose taps
 * all fall inside is one copy (of KW Cg values for a whole kernel row);
 * otherwise each tap's channels are copied or zeroed on their own. */
static void rows_panel(const cv *s, const void *xt, void *pan, int64_t r0, int64_t kn, int64_t c0,
                       int64_t n, int64_t ld)
{
    const tn__conv_geom *g = s->g;
    int64_t Cg = s->Cg, OW = g->OW, KC = g->KW * Cg; /* columns per kernel row */
    TN_FOR_DTYPE(s->dt, T, {
        const T *XT = xt;
        T *D = pan;
        for (int64_t t = 0; t < n;) { /* columns t .. t + len - 1: kernel row p's */
            int64_t col = c0 + t, p = col / KC, cq = col % KC;
            int64_t len = n - t < KC - cq ? n - t : KC - cq;
            int64_t qa = cq / Cg, qb = (cq + len - 1) / Cg; /* the run's first and last tap */
            for (int64_t k = 0, i = r0 / OW, j = r0 % OW; k < kn; k++) {
                int64_t ih = i * g->sh - g->ph + p * g->dh, j0 = j * g->sw - g->pw;
                T *d = D + k * ld + t;
                bool row_in = ih >= 0 && ih < g->H;
                if (row_in && g->dw == 1 && j0 + qa >= 0 && j0 + qb < g->W) {
                    const T *x = XT + (ih * g->W + j0) * Cg + cq;
                    for (int64_t u = 0; u < len; u++)
                        d[u] = x[u];
                } else {
                    for (int64_t u = 0; u < len;) { /* tap by tap */
                        int64_t q = (cq + u) / Cg, c = (cq + u) % Cg;
                        int64_t m = len - u < Cg - c ? len - u : Cg - c, jw = j0 + q * g->dw;
                        if (!row_in || jw < 0 || jw >= g->W) {
                            for (int64_t v = 0; v < m; v++)
                                d[u + v] = 0;
                        } else {
                            const T *x = XT + (ih * g->W + jw) * Cg + c;
                            for (int64_t v = 0; v < m; v++)
                                d[u + v] = x[v];
                        }
                        u += m;
                    }
                }
                if (++j == OW)
                    j = 0, i++;
            }
            t += len;
        }
        if (n < ld)
            for (int64_t k = 0; k < kn; k++)
                for (int64_t u = n; u < ld; u++)
                    D[k * ld + u] = 0;
    });
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

/* Every group's left operand packed once, at left (G of s->fleft bytes):
 * W_g for the forward (dx false), W_g^T for dx (G of s->dleft bytes). */
static void pack_weights(const cv *s, const void *w, char *left, bool dx)
{
    for (int64_t gi = 0; gi < s->g->G; gi++) {
        tn__mat m = wmat(s, w, gi);
        if (dx)
            tn__packed_pack_left(&s->bdx, s->Kc, m.p, 1, s->Kc, left + gi * s->dleft);
        else
            tn__packed_pack_left(&s->fwd, s->Og, m.p, s->Kc, 1, left + gi * s->fleft);
    }
}

/* Panel k of P / pw (rounded up): its first column and its width. */
static int64_t panel_cols(const tn__packed *pk, int64_t P, int64_t k, int64_t *c0)
{
    *c0 = k * pk->pw;
    return P - *c0 < pk->pw ? P - *c0 : pk->pw;
}

/* Output panels k0 .. k1 - 1 of one image: yb [O, P] := W (*) xb [C, H, W]
 * (+ bias [O], when not NULL, added to each panel while it is in cache),
 * with the packed weights left; pan scratch of s->fpan bytes. */
static void fwd_panels(const cv *s, const char *xb, const char *left, const tn_tensor *bias,
                       char *yb, int64_t k0, int64_t k1, char *pan)
{
    for (int64_t gi = 0; gi < s->g->G; gi++) {
        const char *xg = xb + (size_t)(gi * s->Cg * s->HW) * s->es;
        tn__mat y = ymat(s, yb, gi);
        for (int64_t k = k0; k < k1; k++) {
            int64_t c0, n = panel_cols(&s->fwd, s->P, k, &c0);
            panel_move(s, (void *)xg, pan, c0, n, s->fwd.pw, false);
            tn__packed_panel_mul(&s->fwd, s->Og, left + gi * s->fleft, pan, n,
                                 (char *)y.p + (size_t)c0 * s->es, s->P, false, pan);
            if (bias)
                TN_FOR_DTYPE(s->dt, T, {
                    const T *BS = TN_DATA(T, bias);
                    for (int64_t o = 0; o < s->Og; o++) {
                        T bo = BS[(gi * s->Og + o) * bias->stride[0]],
                          *r = (T *)y.p + o * s->P + c0;
                        for (int64_t t = 0; t < n; t++)
                            r[t] += bo;
                    }
                });
        }
    }
}

/* One image's output, its panels split over nthreads threads (1: on the
 * calling thread, as inside a parallel region); pan: nthreads panels of
 * s->fpan bytes. */
static void fwd_image(const cv *s, const char *xb, const char *left, const tn_tensor *bias,
                      char *yb, char *pan, int nthreads)
{
    int64_t np = (s->P + s->fwd.pw - 1) / s->fwd.pw;
#pragma omp parallel num_threads(nthreads) if (nthreads > 1)
    {
        int k = omp_get_thread_num(), n = omp_get_num_threads();
        fwd_panels(s, xb, left, bias, yb, np * k / n, np * (k + 1) / n, pan + k * s->fpan);
    }
}

/* One image's dx: dxb [C, H, W] += col2im(W^T @ dyb [O, P]), s->dgrp
 * panels at a time (their products side by side in dcol, then one col2im),
 * with the packed W^T left; pan (s->dpan bytes) and dcol ([Kc, dgrp pw])
 * scratch. */
static void dx_image(const cv *s, const char *dyb, const char *left, char *dxb, char *pan,
                     char *dcol)
{
    int64_t pw = s->bdx.pw, np = (s->P + pw - 1) / pw, gw = s->dgrp * pw;
    for (int64_t gi = 0; gi < s->g->G; gi++) {
        tn__mat dy = ymat(s, dyb, gi);
        char *dxg = dxb + (size_t)(gi * s->Cg * s->HW) * s->es;
        for (int64_t k0 = 0; k0 < np; k0 += s->dgrp) {
            int64_t k1 = k0 + s->dgrp < np ? k0 + s->dgrp : np, cols = 0;
            for (int64_t k = k0; k < k1; k++) {
                int64_t c0, n = panel_cols(&s->bdx, s->P, k, &c0);
                /* the panel of dy_bg's columns c0 .. c0 + n - 1: per channel o, n values */
                TN_FOR_DTYPE(s->dt, T, {
                    const T *D = (const T *)dy.p + c0;
                    T *d = (T *)pan;
                    for (int64_t o = 0; o < s->Og; o++) {
                        memcpy(d + o * pw, D + o * s->P, (size_t)n * sizeof(T));
                        for (int64_t t = n; t < pw; t++)
                            d[o * pw + t] = 0;
                    }
                });
                tn__packed_panel_mul(&s->bdx, s->Kc, left + gi * s->dleft, pan, n,
                                     dcol + (size_t)((k - k0) * pw) * s->es, gw, false, pan);
                cols += n;
            }
            panel_move(s, dxg, dcol, k0 * pw, cols, gw, true);
        }
    }
}

/* One image's weight gradient: dwr [O, Kc] += dyb [O, P] @ rows [P, Kc],
 * in rows' (p, q, c) column order, with xb's rows made panel by panel, in
 * blocks of CONV_KC positions (each block's product added to dwr: shorter
 * sums in the micro-kernel's registers, and panels that stay in L1/L2);
 * scratch: xt [HW, Cg], left (s->wleft bytes), nthreads panels of s->wpan
 * bytes; the panels split over nthreads threads (1 inside a parallel
 * region). */
static void dw_image(const cv *s, const char *xb, const char *dyb, char *dwr, char *xt, char *left,
                     char *pan, int nthreads)
{
    int64_t np = (s->Kc + s->bdw.pw - 1) / s->bdw.pw;
    for (int64_t gi = 0; gi < s->g->G; gi++) {
        transpose_image(s, xb + (size_t)(gi * s->Cg * s->HW) * s->es, xt);
        tn__mat dw = wmat(s, dwr, gi), dy = ymat(s, dyb, gi);
        for (int64_t r0 = 0; r0 < s->P; r0 += CONV_KC) {
            tn__packed pk = s->bdw; /* this block's K */
            pk.K = s->P - r0 < CONV_KC ? s->P - r0 : CONV_KC;
            tn__packed_pack_left(&pk, s->Og, (const char *)dy.p + (size_t)r0 * s->es, s->P, 1,
                                 left);
#pragma omp parallel num_threads(nthreads) if (nthreads > 1)
            {
                int k = omp_get_thread_num(), nk = omp_get_num_threads();
                char *mine = pan + k * s->wpan;
                for (int64_t q = np * k / nk; q < np * (k + 1) / nk; q++) {
                    int64_t c0, n = panel_cols(&pk, s->Kc, q, &c0);
                    rows_panel(s, xt, mine, r0, pk.K, c0, n, pk.pw);
                    tn__packed_panel_mul(&pk, s->Og, left, mine, n,
                                         (char *)dw.p + (size_t)c0 * s->es, s->Kc, true, mine);
                }
            }
        }
    }
}

/* xp [Cg, Hp, Wp] := image group xg [Cg, H, W] inside its zero padding
 * (which xp already holds: cleared once per call). */
static void pad_image(const cv *s, const float *xg, float *xp)
{
    const tn__conv_geom *g = s->g;
    for (int64_t c = 0; c < s->Cg; c++)
        for (int64_t i = 0; i < g->H; i++)
            memcpy(xp + (c * s->Hp + i + g->ph) * s->Wp + g->pw, xg + (c * g->H + i) * g->W,
                   (size_t)g->W * sizeof(float));
}

/* One image's weight gradient, straight from its input (float, stride 1,
 * dilation 1: s->direct_dw), for each group: xp [Cg, Hp, Wp] := the
 * group's input zero-padded, dyt [nd, ldd] := dy_bg^T with each output row
 * i padded to Wp (output (i, j) at row i Wp + j), then dwt [Kc, ldd]
 * (dW_g^T, rows in (p, q, c) order) += the table's conv_dw over m < nd.
 * With stride 1, output (i, j) and tap (p, q) read xp[c, i + p, j + q], at
 * (i Wp + j) + p Wp + q in a plane, so each of the Og Cg KH KW sums is one
 * correlation along a plane of xp, and dyt's zero rows drop the terms that
 * run past an output row (an infinite input value there makes NaN instead
 * of an infinite gradient). xp and dyt: the thread's scratch
 * (dw_direct_bytes), zero where this does not write (cleared once per
 * backward). */
static void dw_image_direct(const cv *s, const char *xb, const char *dyb, float *dwt, float *xp)
{
    const tn__rows *kr = tn__rows_get(TN_F32);
    const tn__conv_geom *g = s->g;
    int64_t plane = s->Hp * s->Wp, ldd = s->ldd;
    float *dyt = xp + s->Cg * plane;
    for (int64_t gi = 0; gi < g->G; gi++) {
        const float *X = (const float *)xb + gi * s->Cg * s->HW;
        const float *DY = (const float *)dyb + gi * s->Og * s->P;
        pad_image(s, X, xp);
        for (int64_t i = 0; i < g->OH; i++) /* dyt[i Wp + j, o] := DY[o, i, j] */
            kr->transpose(DY + i * g->OW, s->P, dyt + i * s->Wp * ldd, ldd, g->OW, s->Og, false);
        kr->conv_dw(s->Og, s->Cg, g->KH, g->KW, s->nd, dyt, ldd, xp, plane, s->Wp,
                    dwt + gi * s->Kc * ldd, ldd);
    }
}

/* Bytes of dw_image_direct's scratch: xp, dyt. */
static int64_t dw_direct_bytes(const cv *s)
{
    return (s->Cg * s->Hp * s->Wp + s->nd * s->ldd) * (int64_t)sizeof(float);
}

/* The direct dx's operands, made once per backward: wd [G, Og KH KW, ldc]
 * := each group's weights with row k = (o KH + p) KW + q, column c
 * (zero columns Cg .. ldc - 1); off [Og KH KW] := tap k's offset o Lq +
 * (KH - 1 - p) Wp + KW - 1 - q in dyq (the kernel flipped). */
static void pack_direct_dx(const cv *s, const float *w, float *wd, int64_t *off)
{
    const tn__conv_geom *g = s->g;
    int64_t KK = g->KH * g->KW, Kd = s->Og * KK;
    memset(wd, 0, (size_t)(g->G * Kd * s->ldc) * sizeof(float));
    for (int64_t o = 0; o < g->O; o++)
        for (int64_t c = 0; c < s->Cg; c++)
            for (int64_t pq = 0; pq < KK; pq++)
                wd[(o / s->Og * Kd + o % s->Og * KK + pq) * s->ldc + c] =
                    w[(o * s->Cg + c) * KK + pq];
    for (int64_t k = 0; k < Kd; k++) {
        int64_t o = k / KK, p = k / g->KW % g->KH, q = k % g->KW;
        off[k] = o * s->Lq + (g->KH - 1 - p) * s->Wp + g->KW - 1 - q;
    }
}

/* Bytes of dx_image_direct's scratch: dyq [Og, Lq], dxt [nx, ldc]. */
static int64_t dx_direct_bytes(const cv *s)
{
    return (s->Og * s->Lq + s->nx * s->ldc) * (int64_t)sizeof(float);
}

/* One image's dx, directly (float, stride 1, dilation 1: s->direct_dx),
 * for each group: dyq := dy_bg's planes, each row i at mq + i Wp (zeros
 * elsewhere: cleared once per backward); dxt [nx, ldc] := the correlations
 * with the flipped weights (the table's conv_fw) at the padded input's
 * interior positions, from ph Wp + pw on: output (i, j) reaches padded
 * position (i + p) Wp + j + q through tap (p, q), so that position reads
 * dyq at mq + its offset - p Wp - q; then dx_bg [Cg, H, W] += dxt's rows
 * of W positions, transposed. */
static void dx_image_direct(const cv *s, const char *dyb, const float *wd, const int64_t *off,
                            char *dxb, float *dyq)
{
    const tn__rows *kr = tn__rows_get(TN_F32);
    const tn__conv_geom *g = s->g;
    int64_t Kd = s->Og * g->KH * g->KW;
    float *dxt = dyq + s->Og * s->Lq;
    for (int64_t gi = 0; gi < g->G; gi++) {
        const float *DY = (const float *)dyb + gi * s->Og * s->P;
        for (int64_t o = 0; o < s->Og; o++)
            for (int64_t i = 0; i < g->OH; i++)
                memcpy(dyq + o * s->Lq + s->mq + i * s->Wp, DY + (o * g->OH + i) * g->OW,
                       (size_t)g->OW * sizeof(float));
        kr->conv_fw(s->Cg, Kd, off, s->nx, dyq + g->ph * s->Wp + g->pw, wd + gi * Kd * s->ldc,
                    s->ldc, dxt, s->ldc);
        float *DX = (float *)dxb + gi * s->Cg * s->HW;
        for (int64_t i = 0; i < g->H; i++) /* DX[c, i, j] += dxt[i Wp + j, c] */
            kr->transpose(dxt + i * s->Wp * s->ldc, s->ldc, DX + i * g->W, s->HW, s->Cg, g->W,
                          true);
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

/* Scratch of n bytes for each of nt threads (NULL when n is 0). */
static char *scratch(tn_tape *tp, int nt, int64_t n)
{
    return n ? tn_tape_alloc(tp, (size_t)(nt * n)) : NULL;
}

/* Threads to split one image's product over, by the `panels` panels of
 * its right operand (the forward's output columns, or the weight
 * gradient's): when the images are not split (nt 1), all threads for two
 * panels or more and enough work; else 1. */
static int panel_threads(const cv *s, int nt, int64_t panels)
{
    return nt == 1 && panels > 1 && (double)s->Og * (double)s->Kc * (double)s->P >= CONV_PAR_MIN
               ? tn__threads_now()
               : 1;
}

/* The direct forward's operands, made once per call: wt [G, Kc, ldd] :=
 * each group's W_g^T (row k = (c KH + p) KW + q, weight's own order; zero
 * columns Og .. ldd - 1), off [Kc] := tap k's offset c Hp Wp + p Wp + q in
 * xp. */
static void pack_direct_fw(const cv *s, const float *w, float *wt, int64_t *off)
{
    const tn__conv_geom *g = s->g;
    memset(wt, 0, (size_t)(g->G * s->Kc * s->ldd) * sizeof(float));
    for (int64_t o = 0; o < g->O; o++)
        for (int64_t k = 0; k < s->Kc; k++)
            wt[(o / s->Og * s->Kc + k) * s->ldd + o % s->Og] = w[o * s->Kc + k];
    for (int64_t k = 0; k < s->Kc; k++) {
        int64_t c = k / (g->KH * g->KW), p = k / g->KW % g->KH, q = k % g->KW;
        off[k] = (c * s->Hp + p) * s->Wp + q;
    }
}

/* Bytes of fwd_image_direct's scratch: xp (and conv_fw's overrun of up to
 * 6 positions), yt [nf, ldd]. */
static int64_t fw_direct_bytes(const cv *s)
{
    return (s->Cg * s->Hp * s->Wp + 6 + s->nf * s->ldd) * (int64_t)sizeof(float);
}

/* One image's output, directly (float, stride 1, dilation 1:
 * s->direct_fw), for each group: xp := the group's input zero-padded, yt
 * [nf, ldd] := y_bg^T with output rows of Wp positions (the table's
 * conv_fw, wt and off from pack_direct_fw), then y_bg [Og, OH, OW] := its
 * rows' first OW positions, plus the bias. xp, yt: the thread's scratch
 * (fw_direct_bytes), xp's padding zero. */
static void fwd_image_direct(const cv *s, const char *xb, const float *wt, const int64_t *off,
                             const tn_tensor *bias, char *yb, float *xp)
{
    const tn__rows *kr = tn__rows_get(TN_F32);
    const tn__conv_geom *g = s->g;
    int64_t ldd = s->ldd;
    float *yt = xp + s->Cg * s->Hp * s->Wp + 6;
    for (int64_t gi = 0; gi < g->G; gi++) {
        pad_image(s, (const float *)xb + gi * s->Cg * s->HW, xp);
        kr->conv_fw(s->Og, s->Kc, off, s->nf, xp, wt + gi * s->Kc * ldd, ldd, yt, ldd);
        float *Y = (float *)yb + gi * s->Og * s->P;
        for (int64_t i = 0; i < g->OH; i++) /* Y[o, i, j] := yt[i Wp + j, o] */
            kr->transpose(yt + i * s->Wp * ldd, ldd, Y + i * g->OW, s->P, s->Og, g->OW, false);
        for (int64_t o = 0; bias && o < s->Og; o++) {
            float bo = TN_DATA(float, bias)[(gi * s->Og + o) * bias->stride[0]], *r = Y + o * s->P;
            for (int64_t t = 0; t < s->P; t++)
                r[t] += bo;
        }
    }
}

static bool conv_forward(tn_tape *tp, const tn__conv_geom *g, const tn_tensor *x,
                         const tn_tensor *w, const tn_tensor *bias, tn_tensor *y)
{
    cv s = cv_of(g, x->dtype);
    int nt = image_threads(&s), pt = panel_threads(&s, nt, (s.P + s.fwd.pw - 1) / s.fwd.pw);
    const char *X = x->data;
    char *Y = y->data;
    size_t xs = (size_t)(g->C * s.HW) * s.es, ys = (size_t)(g->O * s.P) * s.es;
    if (s.direct_fw && !(nt == 1 && pt > 1)) { /* not: one image on every thread */
        int64_t sb = fw_direct_bytes(&s);
        float *wt = tn_tape_alloc(tp, (size_t)(g->G * s.Kc * s.ldd) * sizeof(float));
        int64_t *off = tn_tape_alloc(tp, (size_t)s.Kc * sizeof(int64_t));
        char *scr = scratch(tp, nt, sb);
        if (!wt || !off || !scr)
            return false;
        pack_direct_fw(&s, w->data, wt, off);
        memset(scr, 0, (size_t)(nt * sb));
        TN_FTZ_SCOPE;
#pragma omp parallel num_threads(nt) if (nt > 1)
        {
            /* part k: images [B k / nt, B (k + 1) / nt), on any team size */
            for (int k = omp_get_thread_num(); k < nt; k += omp_get_num_threads())
                for (int64_t b = g->B * k / nt; b < g->B * (k + 1) / nt; b++)
                    fwd_image_direct(&s, X + b * xs, wt, off, bias, Y + b * ys,
                                     (float *)(scr + k * sb));
        }
        return true;
    }
    char *left = scratch(tp, 1, g->G * s.fleft), *pan = scratch(tp, nt > pt ? nt : pt, s.fpan);
    if (!left || !pan)
        return false;
    pack_weights(&s, w->data, left, false);
    TN_FTZ_SCOPE;
    if (nt == 1) {
        for (int64_t b = 0; b < g->B; b++)
            fwd_image(&s, X + b * xs, left, bias, Y + b * ys, pan, pt);
        return true;
    }
#pragma omp parallel num_threads(nt)
    {
        for (int k = omp_get_thread_num(); k < nt; k += omp_get_num_threads()) /* as above */
            for (int64_t b = g->B * k / nt; b < g->B * (k + 1) / nt; b++)
                fwd_image(&s, X + b * xs, left, bias, Y + b * ys, pan + k * s.fpan, 1);
    }
    return true;
}

/* bsum [O] := the sums of one image's dy_b [O, P] over its positions, in
 * double (LANES sums per channel, each of every LANES-th value, so that
 * the loop vectorises without reordering a sum; then added in lane order).
 * Called right after the image's dx and dW, which leave dy_b in cache. */
static void bias_image(const cv *s, const char *dyb, double *bsum)
{
    enum { LANES = 8 };
    TN_FOR_DTYPE(s->dt, T, {
        for (int64_t o = 0; o < s->g->O; o++) {
            const T *d = (const T *)dyb + o * s->P;
            double lane[LANES] = {0}, acc = 0;
            int64_t k = 0;
            for (; k + LANES <= s->P; k += LANES)
                for (int l = 0; l < LANES; l++)
                    lane[l] += (double)d[k + l];
            for (; k < s->P; k++)
                acc += (double)d[k];
            for (int l = 0; l < LANES; l++)
                acc += lane[l];
            bsum[o] = acc;
        }
    });
}

/* db [O] += the images' sums bsum [B, O], added in image order (so the
 * result does not depend on how the images were split over threads). */
static void bias_reduce(const cv *s, const double *bsum, tn_tensor *bias)
{
    TN_FOR_DTYPE(s->dt, T, {
        T *DB = TN_GRAD(T, bias);
        for (int64_t o = 0; o < s->g->O; o++) {
            double acc = 0;
            for (int64_t b = 0; b < s->g->B; b++)
                acc += bsum[b * s->g->O + o];
            DB[o * bias->stride[0]] += (T)acc;
        }
    });
}

/* weight's gradient [O, Cg, KH, KW] += the nt threads' sums dwr, in
 * thread order: [nt, O, KH, KW, Cg], or with s->direct_dw [nt, G, KH, KW,
 * Cg, ldd] (each group's dW_g^T). */
static void dw_reduce(const cv *s, const char *dwr, int nt, tn_tensor *w)
{
    int64_t KK = s->g->KH * s->g->KW, nw = s->g->O * s->Kc;
    int64_t per = s->direct_dw ? s->g->G * s->Kc * s->ldd : nw; /* each thread's */
    TN_FOR_DTYPE(s->dt, T, {
        const T *P = (const T *)dwr;
        T *GW = TN_GRAD(T, w);
        TN_PAR_FOR(nw > TN_PAR_MIN, i, 0, nw, {
            int64_t o = i / s->Kc, c = i % s->Kc / KK, pq = i % KK, og = o % s->Og;
            int64_t r = s->direct_dw ? ((o / s->Og * s->Kc) + pq * s->Cg + c) * s->ldd + og
                                     : o * s->Kc + pq * s->Cg + c;
            T acc = GW[i];
            for (int k = 0; k < nt; k++)
                acc += P[k * per + r];
            GW[i] = acc;
        });
    });
}

/* The backward's buffers: x, dy, dx (NULL: not wanted; clear: not
 * cleared yet, tn_node.fresh) and the scratch of tn__bw_conv2d, per thread
 * where it says so; dwr NULL when dW is not wanted, bsum when db is not. */
typedef struct bw_work {
    const char *X, *DY;
    char *DX;
    bool clear;
    const char *left; /* the packed W^T of every group (dx) */
    const float *wd;  /* or pack_direct_dx's, with offd (s->direct_dx) */
    const int64_t *offd;
    char *pan, *dcol, *xt, *wleft; /* per thread (direct: pan dyq and dxt, xt xp and dyt) */
    char *wpan;                    /* per thread, or one image's panel threads' */
    char *dwr;                     /* per thread [O, Kc] sums (direct: [G, Kc, ldd]) */
    double *bsum;                  /* [B, O] the images' bias sums */
} bw_work;

/* Image b's share of the backward on thread k (its scratch), the weight
 * gradient's panels on nthreads threads (1 inside a parallel region): dx
 * (cleared first when c->clear), dW, then db's sums while dy_b is in
 * cache. */
static void bw_image(const cv *s, const bw_work *c, int64_t b, int k, int nthreads)
{
    const tn__conv_geom *g = s->g;
    size_t xs = (size_t)(g->C * s->HW) * s->es, ys = (size_t)(g->O * s->P) * s->es;
    const char *dyb = c->DY + b * ys;
    if (c->DX) {
        if (c->clear)
            memset(c->DX + b * xs, 0, xs);
        if (s->direct_dx)
            dx_image_direct(s, dyb, c->wd, c->offd, c->DX + b * xs,
                            (float *)(c->pan + k * dx_direct_bytes(s)));
        else
            dx_image(s, dyb, c->left, c->DX + b * xs, c->pan + k * s->dpan,
                     c->dcol + (size_t)(k * s->Kc * s->dgrp * s->bdx.pw) * s->es);
    }
    if (c->dwr && s->direct_dw)
        dw_image_direct(s, c->X + b * xs, dyb, (float *)c->dwr + k * g->G * s->Kc * s->ldd,
                        (float *)(c->xt + k * dw_direct_bytes(s)));
    else if (c->dwr)
        dw_image(s, c->X + b * xs, dyb, c->dwr + (size_t)(k * g->O * s->Kc) * s->es,
                 c->xt + (size_t)(k * s->HW * s->Cg) * s->es, c->wleft + k * s->wleft,
                 c->wpan + k * s->wpan, nthreads);
    if (c->bsum)
        bias_image(s, dyb, c->bsum + b * g->O);
}

void tn__bw_conv2d(tn_tensor *y)
{
    tn_tensor *x = tn__node(y)->src[0], *w = tn__node(y)->src[1], *bias = tn__node(y)->src[2];
    const tn__conv_geom *g = tn__node(y)->aux;
    tn_tape *tp = tn__node(y)->tape;
    cv s = cv_of(g, y->dtype);
    bool wx = tn__wants(x), ww = tn__wants(w), wb = tn__wants(bias);
    if (!wx && !ww && !wb)
        return;
    int nt = image_threads(&s);
    int pt = panel_threads(&s, nt, (s.Kc + s.bdw.pw - 1) / s.bdw.pw); /* dW's panels */
    if (nt == 1 && pt > 1)
        s.direct_dw = false; /* one image on every thread: its panels split */
    /* direct dx (s.direct_dx) and dW (s.direct_dw), or through panels */
    bool ddx = wx && s.direct_dx, ddw = ww && s.direct_dw;
    int64_t nw = ddw ? g->G * s.Kc * s.ldd : g->O * s.Kc; /* per thread dwr */
    int64_t Kd = s.Og * g->KH * g->KW;
    char *left = wx && !ddx ? scratch(tp, 1, g->G * s.dleft) : NULL;
    float *wd = ddx ? tn_tape_alloc(tp, (size_t)(g->G * Kd * s.ldc) * sizeof(float)) : NULL;
    int64_t *offd = ddx ? tn_tape_alloc(tp, (size_t)Kd * sizeof(int64_t)) : NULL;
    char *pan = wx ? scratch(tp, nt, ddx ? dx_direct_bytes(&s) : s.dpan) : NULL;
    char *dcol = wx && !ddx ? scratch(tp, nt, s.Kc * s.dgrp * s.bdx.pw * (int64_t)s.es) : NULL;
    char *xt = ww ? scratch(tp, nt, ddw ? dw_direct_bytes(&s) : s.HW * s.Cg * (int64_t)s.es) : NULL;
    char *wleft = ww && !ddw ? scratch(tp, nt, s.wleft) : NULL;
    char *wpan = ww && !ddw ? scratch(tp, nt > pt ? nt : pt, s.wpan) : NULL;
    char *dwr = ww ? scratch(tp, nt, nw * (int64_t)s.es) : NULL; /* (p, q, c) order, or dW^T */
    double *bsum = wb ? tn_tape_alloc(tp, (size_t)(g->B * g->O) * sizeof(double)) : NULL;
    if ((wx && !pan) || (wx && !ddx && (!left || !dcol)) || (ddx && (!wd || !offd)) ||
        (ww && (!xt || !dwr)) || (ww && !ddw && (!wleft || !wpan)) || (wb && !bsum))
        return; /* out of arena memory: the tape has the error */
    if (ddx) {
        pack_direct_dx(&s, w->data, wd, offd);
        memset(pan, 0, (size_t)(nt * dx_direct_bytes(&s)));
    } else if (wx) {
        pack_weights(&s, w->data, left, true);
    }
    if (dwr)
        memset(dwr, 0, (size_t)(nt * nw) * s.es);
    if (ddw)
        memset(xt, 0, (size_t)(nt * dw_direct_bytes(&s)));
    bw_work c = {.X = x->data,
                 .DY = y->grad,
                 .DX = wx ? x->grad : NULL,
                 .clear = tn__fresh(y, 0),
                 .left = left,
                 .wd = wd,
                 .offd = offd,
                 .pan = pan,
                 .dcol = dcol,
                 .xt = xt,
                 .wleft = wleft,
                 .wpan = wpan,
                 .dwr = dwr,
                 .bsum = bsum};
    TN_FTZ_SCOPE;
    if (nt == 1) {
        for (int64_t b = 0; b < g->B; b++)
            bw_image(&s, &c, b, 0, pt);
    } else {
#pragma omp parallel num_threads(nt)
        {
            /* part k: its images, its own dW sums (dw_reduce adds the nt
             * of them in order), on any team size */
            for (int k = omp_get_thread_num(); k < nt; k += omp_get_num_threads())
                for (int64_t b = g->B * k / nt; b < g->B * (k + 1) / nt; b++)
                    bw_image(&s, &c, b, k, 1);
        }
    }
    if (dwr)
        dw_reduce(&s, dwr, nt, w);
    if (bsum)
        bias_reduce(&s, bsum, bias);
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
