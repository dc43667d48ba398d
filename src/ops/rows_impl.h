/* src/ops/rows_impl.h - the row kernels of rows.h, written once. Included
 * by rows_f32_*.c and rows_f64.c, each compiled for one kernel path, with
 *   RT        the element type (float or double)
 *   RT_FLOAT  defined for float (adds the float-only exp loops)
 * defined; it defines the static kernels and ROWS_TABLE, an initialiser of
 * tn__rows naming them. TN_SIGMOID / TN_TANH / TN_EXP pick fastmath.h's
 * float functions or libm's double ones. Shapes: see rows.h. */
#include "rows.h"
#include "fastmath.h"
#include "../core/loops.h"

#include <string.h>

static void lstm_fw(int64_t n, int64_t ga, void *restrict a_, const void *restrict bias_,
                    const void *restrict p_, int64_t gp, const void *restrict cp_,
                    void *restrict h_, void *restrict c_)
{
    RT *a = a_, *h = h_, *c = c_;
    const RT *bias = bias_, *p = p_, *cp = cp_;
    for (int64_t j = 0; j < n; j++) {
        RT i = TN_SIGMOID(a[j] + p[j] + bias[j]);
        RT f = TN_SIGMOID(a[ga + j] + p[gp + j] + bias[ga + j]);
        RT g = TN_TANH(a[2 * ga + j] + p[2 * gp + j] + bias[2 * ga + j]);
        RT o = TN_SIGMOID(a[3 * ga + j] + p[3 * gp + j] + bias[3 * ga + j]);
        a[j] = i, a[ga + j] = f, a[2 * ga + j] = g, a[3 * ga + j] = o;
        c[j] = f * cp[j] + i * g;
    }
    for (int64_t j = 0; j < n; j++)
        h[j] = a[3 * ga + j] * TN_TANH(c[j]);
}

static void lstm_bw(int64_t n, int64_t ga, void *restrict a_, const void *restrict c_,
                    const void *restrict cp_, const void *restrict doh_, const void *restrict doc_,
                    void *restrict gh_, void *restrict gc_)
{
    RT *a = a_, *gh = gh_, *gc = gc_;
    const RT *c = c_, *cp = cp_, *doh = doh_, *doc = doc_;
    for (int64_t j = 0; j < n; j++) {
        RT i = a[j], f = a[ga + j], g = a[2 * ga + j], o = a[3 * ga + j];
        RT tc = TN_TANH(c[j]);
        RT dh = doh[j] + gh[j];
        RT dc = doc[j] + gc[j] + dh * o * (1 - tc * tc);
        a[j] = dc * g * i * (1 - i);
        a[ga + j] = dc * cp[j] * f * (1 - f);
        a[2 * ga + j] = dc * i * (1 - g * g);
        a[3 * ga + j] = dh * tc * o * (1 - o);
        gh[j] = 0;
        gc[j] = dc * f;
    }
}

static void gru_fw(int64_t n, int64_t ga, void *restrict a_, const void *restrict bx_,
                   const void *restrict p_, int64_t gp, const void *restrict bn_,
                   const void *restrict hp_, void *restrict q_, void *restrict h_)
{
    RT *a = a_, *q = q_, *h = h_;
    const RT *bx = bx_, *p = p_, *bn = bn_, *hp = hp_;
    for (int64_t j = 0; j < n; j++) {
        RT r = TN_SIGMOID(a[j] + bx[j] + p[j]);
        RT z = TN_SIGMOID(a[ga + j] + bx[ga + j] + p[gp + j]);
        RT qj = p[2 * gp + j] + bn[j];
        RT nn = TN_TANH(a[2 * ga + j] + bx[2 * ga + j] + r * qj);
        a[j] = r, a[ga + j] = z, a[2 * ga + j] = nn;
        q[j] = qj;
        h[j] = nn + z * (hp[j] - nn);
    }
}

static void gru_bw(int64_t n, int64_t ga, void *restrict a_, void *restrict q_,
                   const void *restrict hp_, const void *restrict doh_, void *restrict gh_,
                   void *restrict dp_)
{
    RT *a = a_, *q = q_, *gh = gh_, *dp = dp_;
    const RT *hp = hp_, *doh = doh_;
    for (int64_t j = 0; j < n; j++) {
        RT r = a[j], z = a[ga + j], nn = a[2 * ga + j];
        RT dh = doh[j] + gh[j];
        RT dn = dh * (1 - z) * (1 - nn * nn);
        RT dr = dn * q[j] * r * (1 - r);
        RT dz = dh * (hp[j] - nn) * z * (1 - z);
        a[j] = dr, a[ga + j] = dz, a[2 * ga + j] = dn;
        q[j] = dn * r;
        dp[j] = dr, dp[ga + j] = dz, dp[2 * ga + j] = dn * r;
        gh[j] = dh * z;
    }
}

static void rnn_fw(int64_t n, const void *restrict a_, const void *restrict bias_,
                   const void *restrict p_, bool relu, void *restrict h_)
{
    const RT *a = a_, *bias = bias_, *p = p_;
    RT *h = h_;
    if (relu)
        for (int64_t j = 0; j < n; j++) {
            RT v = a[j] + p[j] + bias[j];
            h[j] = v < 0 ? 0 : v; /* NaN passes through, as in tn_relu */
        }
    else
        for (int64_t j = 0; j < n; j++)
            h[j] = TN_TANH(a[j] + p[j] + bias[j]);
}

static void rnn_bw(int64_t n, void *restrict a_, const void *restrict h_, const void *restrict doh_,
                   bool relu, void *restrict gh_)
{
    RT *a = a_, *gh = gh_;
    const RT *h = h_, *doh = doh_;
    if (relu)
        for (int64_t j = 0; j < n; j++) {
            a[j] = h[j] > 0 ? doh[j] + gh[j] : 0;
            gh[j] = 0;
        }
    else
        for (int64_t j = 0; j < n; j++) {
            a[j] = (doh[j] + gh[j]) * (1 - h[j] * h[j]);
            gh[j] = 0;
        }
}

/* ---- element-wise rows (unary.c, binary.c) ---- */

#define RT_LOG(v)      _Generic((v), float : logf, default : log)(v)
#define RT_ERF(v)      _Generic((v), float : erff, default : erf)(v)
#define RT_INV_SQRT2   0.70710678118654752440 /* 1 / sqrt(2) */
#define RT_INV_SQRT2PI 0.39894228040143267794 /* 1 / sqrt(2 pi) */

/* The block once with the strides SA, SB, SC the constant 1 (all three
 * operands contiguous: the loops vectorise), and once with the strides
 * given. */
#define EW_STRIDES(sa, sb, sc, ...)                        \
    do {                                                   \
        if ((sa) == 1 && (sb) == 1 && (sc) == 1) {         \
            const int64_t SA = 1, SB = 1, SC = 1;          \
            (void)SA, (void)SB, (void)SC;                  \
            __VA_ARGS__                                    \
        } else {                                           \
            const int64_t SA = (sa), SB = (sb), SC = (sc); \
            (void)SA, (void)SB, (void)SC;                  \
            __VA_ARGS__                                    \
        }                                                  \
    } while (0)

static void map_fw(tn__map f, int64_t n, const void *restrict x_, int64_t ix, double a_,
                   const uint8_t *restrict keep, void *restrict y_)
{
    const RT *x = x_;
    RT *y = y_;
    const RT a = (RT)a_;
    EW_STRIDES(ix, 1, 1, {
        switch (f) {
        case TN__MAP_SCALE:
            for (int64_t j = 0; j < n; j++)
                y[j] = a * x[j * SA];
            break;
        case TN__MAP_NEG:
            for (int64_t j = 0; j < n; j++)
                y[j] = -x[j * SA];
            break;
        case TN__MAP_EXP:
            for (int64_t j = 0; j < n; j++)
                y[j] = TN_EXP(x[j * SA]);
            break;
        case TN__MAP_LOG:
            for (int64_t j = 0; j < n; j++)
                y[j] = RT_LOG(x[j * SA]);
            break;
        case TN__MAP_SIGMOID:
            for (int64_t j = 0; j < n; j++)
                y[j] = TN_SIGMOID(x[j * SA]);
            break;
        case TN__MAP_TANH:
            for (int64_t j = 0; j < n; j++)
                y[j] = TN_TANH(x[j * SA]);
            break;
        case TN__MAP_RELU: /* NaN passes through */
            for (int64_t j = 0; j < n; j++)
                y[j] = x[j * SA] < 0 ? (RT)0 : x[j * SA];
            break;
        case TN__MAP_LEAKY_RELU:
            for (int64_t j = 0; j < n; j++)
                y[j] = x[j * SA] > 0 ? x[j * SA] : a * x[j * SA];
            break;
        case TN__MAP_GELU:
            for (int64_t j = 0; j < n; j++) {
                RT v = x[j * SA];
                y[j] = (RT)0.5 * v * (1 + RT_ERF(v * (RT)RT_INV_SQRT2));
            }
            break;
        case TN__MAP_SILU:
            for (int64_t j = 0; j < n; j++)
                y[j] = x[j * SA] * TN_SIGMOID(x[j * SA]);
            break;
        case TN__MAP_DROPOUT:
            for (int64_t j = 0; j < n; j++)
                y[j] = keep[j] ? a * x[j * SA] : (RT)0;
            break;
        case TN__MAP_COUNT: break;
        }
    });
}

/* Derivatives from the output where that is cheaper: exp' = y, sigmoid' =
 * y (1 - y), tanh' = 1 - y^2, relu' = [y > 0]. */
static void map_bw(tn__map f, int64_t n, const void *restrict x_, int64_t ix,
                   const void *restrict y_, const void *restrict dy_, double a_,
                   const uint8_t *restrict keep, void *restrict dx_)
{
    const RT *x = x_, *y = y_, *dy = dy_;
    RT *dx = dx_;
    const RT a = (RT)a_;
    EW_STRIDES(ix, 1, 1, {
        switch (f) {
        case TN__MAP_SCALE:
            for (int64_t j = 0; j < n; j++)
                dx[j * SA] += a * dy[j];
            break;
        case TN__MAP_NEG:
            for (int64_t j = 0; j < n; j++)
                dx[j * SA] -= dy[j];
            break;
        case TN__MAP_EXP:
            for (int64_t j = 0; j < n; j++)
                dx[j * SA] += dy[j] * y[j];
            break;
        case TN__MAP_LOG:
            for (int64_t j = 0; j < n; j++)
                dx[j * SA] += dy[j] / x[j * SA];
            break;
        case TN__MAP_SIGMOID:
            for (int64_t j = 0; j < n; j++)
                dx[j * SA] += dy[j] * y[j] * (1 - y[j]);
            break;
        case TN__MAP_TANH:
            for (int64_t j = 0; j < n; j++)
                dx[j * SA] += dy[j] * (1 - y[j] * y[j]);
            break;
        case TN__MAP_RELU:
            for (int64_t j = 0; j < n; j++)
                dx[j * SA] += y[j] > 0 ? dy[j] : (RT)0;
            break;
        case TN__MAP_LEAKY_RELU:
            for (int64_t j = 0; j < n; j++)
                dx[j * SA] += x[j * SA] > 0 ? dy[j] : a * dy[j];
            break;
        case TN__MAP_GELU: /* Phi(x) + x phi(x) */
            for (int64_t j = 0; j < n; j++) {
                RT v = x[j * SA];
                RT cdf = (RT)0.5 * (1 + RT_ERF(v * (RT)RT_INV_SQRT2));
                RT pdf = (RT)RT_INV_SQRT2PI * TN_EXP((RT)-0.5 * v * v);
                dx[j * SA] += dy[j] * (cdf + v * pdf);
            }
            break;
        case TN__MAP_SILU: /* s (1 + x (1 - s)), s = sigmoid(x) */
            for (int64_t j = 0; j < n; j++) {
                RT v = x[j * SA], sg = TN_SIGMOID(v);
                dx[j * SA] += dy[j] * sg * (1 + v * (1 - sg));
            }
            break;
        case TN__MAP_DROPOUT:
            for (int64_t j = 0; j < n; j++)
                dx[j * SA] += keep[j] ? a * dy[j] : (RT)0;
            break;
        case TN__MAP_COUNT: break;
        }
    });
}

static void zip_fw(tn__zip op, int64_t n, const void *restrict a_, int64_t ia,
                   const void *restrict b_, int64_t ib, void *restrict y_)
{
    const RT *a = a_, *b = b_;
    RT *y = y_;
    EW_STRIDES(ia, ib, 1, {
        switch (op) {
        case TN__ZIP_ADD:
            for (int64_t j = 0; j < n; j++)
                y[j] = a[j * SA] + b[j * SB];
            break;
        case TN__ZIP_SUB:
            for (int64_t j = 0; j < n; j++)
                y[j] = a[j * SA] - b[j * SB];
            break;
        case TN__ZIP_MUL:
            for (int64_t j = 0; j < n; j++)
                y[j] = a[j * SA] * b[j * SB];
            break;
        case TN__ZIP_DIV:
            for (int64_t j = 0; j < n; j++)
                y[j] = a[j * SA] / b[j * SB];
            break;
        case TN__ZIP_COUNT: break;
        }
    });
}

/* add: da += dy, db += dy; sub: db -= dy; mul: da += dy b, db += dy a;
 * div: da += dy / b, db -= dy a / b^2. dx may be a's or b's own gradient
 * (x * x adds each term in its own call), so it is not restrict. */
static void zip_bw(tn__zip op, int which, int64_t n, const void *a_, int64_t ia, const void *b_,
                   int64_t ib, const void *restrict dy_, void *dx_, int64_t ix)
{
    const RT *a = a_, *b = b_, *dy = dy_;
    RT *dx = dx_;
    EW_STRIDES(ia, ib, ix, {
        if (op == TN__ZIP_ADD || (op == TN__ZIP_SUB && which == 0)) {
            for (int64_t j = 0; j < n; j++)
                dx[j * SC] += dy[j];
        } else if (op == TN__ZIP_SUB) {
            for (int64_t j = 0; j < n; j++)
                dx[j * SC] -= dy[j];
        } else if (op == TN__ZIP_MUL && which == 0) {
            for (int64_t j = 0; j < n; j++)
                dx[j * SC] += dy[j] * b[j * SB];
        } else if (op == TN__ZIP_MUL) {
            for (int64_t j = 0; j < n; j++)
                dx[j * SC] += dy[j] * a[j * SA];
        } else if (which == 0) {
            for (int64_t j = 0; j < n; j++)
                dx[j * SC] += dy[j] / b[j * SB];
        } else {
            for (int64_t j = 0; j < n; j++) {
                RT bv = b[j * SB];
                dx[j * SC] -= dy[j] * a[j * SA] / (bv * bv);
            }
        }
    });
}

static void softmax_fw(int64_t n, const void *restrict x_, int64_t ix, bool log_out,
                       void *restrict y_, int64_t iy)
{
    const RT *x = x_;
    RT *y = y_;
    EW_STRIDES(ix, iy, 1, {
        RT m = x[0];
        for (int64_t k = 1; k < n; k++)
            m = x[k * SA] > m ? x[k * SA] : m;
        for (int64_t k = 0; k < n; k++) /* vectorises: exp of the shifted row */
            y[k * SB] = TN_EXP(x[k * SA] - m);
        double z = 0;
        for (int64_t k = 0; k < n; k++)
            z += y[k * SB];
        if (log_out) {
            RT lz = (RT)log(z);
            for (int64_t k = 0; k < n; k++)
                y[k * SB] = (x[k * SA] - m) - lz;
        } else {
            RT inv = (RT)(1.0 / z);
            for (int64_t k = 0; k < n; k++)
                y[k * SB] *= inv;
        }
    });
}

static void softmax_bw(int64_t n, const void *restrict y_, const void *restrict dy_, int64_t iy,
                       bool log_out, void *restrict dx_, int64_t ix)
{
    const RT *y = y_, *dy = dy_;
    RT *dx = dx_;
    EW_STRIDES(iy, ix, 1, {
        double acc = 0;
        if (log_out) {
            for (int64_t k = 0; k < n; k++)
                acc += dy[k * SA];
            RT sum = (RT)acc;
            for (int64_t k = 0; k < n; k++)
                dx[k * SB] += dy[k * SA] - TN_EXP(y[k * SA]) * sum;
        } else {
            for (int64_t k = 0; k < n; k++)
                acc += (double)dy[k * SA] * y[k * SA];
            RT dot = (RT)acc;
            for (int64_t k = 0; k < n; k++)
                dx[k * SB] += y[k * SA] * (dy[k * SA] - dot);
        }
    });
}

static void softmax_masked_fw(int64_t n, const void *restrict x_, int64_t ix,
                              const int32_t *restrict keep, void *restrict y_, int64_t iy)
{
    const RT *x = x_;
    RT *y = y_;
    EW_STRIDES(ix, iy, 1, {
        bool any = false;
        RT m = 0;
        for (int64_t k = 0; k < n; k++)
            if (keep[k * SB] && (!any || x[k * SA] > m))
                m = x[k * SA], any = true;
        for (int64_t k = 0; k < n; k++) /* vectorises: exp of the shifted row, masked */
            y[k * SB] = keep[k * SB] ? TN_EXP(x[k * SA] - m) : (RT)0;
        double z = 0;
        for (int64_t k = 0; k < n; k++)
            z += y[k * SB];
        RT inv = any ? (RT)(1.0 / z) : (RT)0;
        for (int64_t k = 0; k < n; k++)
            y[k * SB] *= inv;
    });
}

static double sqdiff_fw(int64_t n, const void *restrict a_, int64_t ia, const void *restrict b_,
                        int64_t ib, void *restrict y_)
{
    const RT *a = a_, *b = b_;
    RT *y = y_;
    double acc = 0;
    EW_STRIDES(ia, ib, 1, {
        if (y)
            for (int64_t j = 0; j < n; j++) {
                RT d = a[j * SA] - b[j * SB];
                y[j] = d * d;
            }
        else
            for (int64_t j = 0; j < n; j++) {
                double d = (double)a[j * SA] - (double)b[j * SB];
                acc += d * d;
            }
    });
    return acc;
}

static void sqdiff_bw(int64_t n, double g_, const void *restrict dy_, const void *restrict a_,
                      int64_t ia, const void *restrict b_, int64_t ib, void *restrict dx_,
                      int64_t ix)
{
    const RT *a = a_, *b = b_, *dy = dy_;
    RT *dx = dx_, g = (RT)g_; /* dx is a gradient, a and b data: no aliasing */
    EW_STRIDES(ia, ib, ix, {
        if (dy)
            for (int64_t j = 0; j < n; j++)
                dx[j * SC] += g * dy[j] * (a[j * SA] - b[j * SB]);
        else
            for (int64_t j = 0; j < n; j++)
                dx[j * SC] += g * (a[j * SA] - b[j * SB]);
    });
}

/* Blocks of 64 columns, one per thread at a time; whole blocks by a
 * fixed-width loop, which vectorises. */
static void colsum(const void *restrict M_, int64_t rows, int64_t n, int64_t rs,
                   void *restrict out_, int64_t os)
{
    const RT *M = M_;
    RT *out = out_;
    TN_PAR_FOR_STEP(rows * n > TN_PAR_MIN, j0, 0, n, 64, {
        RT acc[64] = {0};
        if (n - j0 >= 64)
            for (int64_t i = 0; i < rows; i++)
                for (int64_t j = 0; j < 64; j++)
                    acc[j] += M[i * rs + j0 + j];
        else
            for (int64_t i = 0; i < rows; i++)
                for (int64_t j = 0; j < n - j0; j++)
                    acc[j] += M[i * rs + j0 + j];
        for (int64_t j = 0; j < 64 && j0 + j < n; j++)
            out[(j0 + j) * os] += acc[j];
    });
}

#ifdef RT_FLOAT
/* In lanes of ROW_LANES: lane l takes the elements k = l mod ROW_LANES,
 * so the loops vectorise and the result does not depend on the path's
 * vector width. */
enum { ROW_LANES = 16 };

static float row_max(int64_t n, const float *restrict x)
{
    float lane[ROW_LANES], m = x[0];
    for (int l = 0; l < ROW_LANES; l++)
        lane[l] = x[0];
    int64_t k = 0;
    for (; k + ROW_LANES <= n; k += ROW_LANES)
        for (int l = 0; l < ROW_LANES; l++)
            lane[l] = x[k + l] > lane[l] ? x[k + l] : lane[l];
    for (; k < n; k++)
        m = x[k] > m ? x[k] : m;
    for (int l = 0; l < ROW_LANES; l++)
        m = lane[l] > m ? lane[l] : m;
    return m;
}

static double exp_sum(int64_t n, const float *restrict x, float m, float *restrict e)
{
    double lane[ROW_LANES] = {0}, s = 0;
    int64_t k = 0;
    for (; k + ROW_LANES <= n; k += ROW_LANES)
        for (int l = 0; l < ROW_LANES; l++) {
            e[k + l] = tn__expf(x[k + l] - m);
            lane[l] += (double)e[k + l];
        }
    for (; k < n; k++) {
        e[k] = tn__expf(x[k] - m);
        s += (double)e[k];
    }
    for (int l = 0; l < ROW_LANES; l++)
        s += lane[l];
    return s;
}

/* The double l split into floats l_hi + l_lo: x - l_hi is exact for x
 * near l, so the shift keeps nearly double accuracy when l is large. */
static void softmax_axpy(int64_t n, float g, const float *restrict x, double l, float *restrict dx)
{
    float hi = (float)l, lo = (float)(l - hi);
    for (int64_t k = 0; k < n; k++)
        dx[k] += g * tn__expf((x[k] - hi) - lo);
}

/* conv_dw (rows.h) in the path's own vectors: CONV_VL floats of the
 * output channels (16 with AVX-512, 8 with AVX, else 4) in blocks of up
 * to CONV_OV vectors, by up to CONV_QB taps of a kernel row: each step of
 * m loads the block's dy vectors and one input value per tap (broadcast),
 * and does CONV_OV CONV_QB multiply-adds into as many accumulators (the
 * shape of BLIS's micro-kernels: the loads stay well below the
 * multiply-adds; AVX2 and SSE have 16 registers, so 3 by 3 there, AVX-512
 * 32, so 4 by 3). The sum runs over chunks of m whose dy rows fit in 32 KB
 * (L1), every tap of every channel against a chunk before the next. */
#if defined(__AVX512F__)
#define CONV_VL 16
#define CONV_OV 4
#elif defined(__AVX__)
#define CONV_VL 8
#define CONV_OV 3
#else
#define CONV_VL 4
#define CONV_OV 3
#endif
enum { CONV_QB = 3, CONV_CHUNK_BYTES = 32768 };
typedef float conv_vf __attribute__((vector_size(CONV_VL * sizeof(float))));
/* Keeps a loaded vector in a register: without it GCC 12 folds the load
 * into each of the multiply-adds that use it (three loads instead of one),
 * and the loop waits on loads (measured 74 against 100 GFLOP/s). */
#if defined(__x86_64__) || defined(__i386__)
#define CONV_IN_REGISTER(v) __asm__("" : "+v"(v))
#else
#define CONV_IN_REGISTER(v) ((void)0)
#endif

static inline conv_vf conv_load(const float *p)
{
    conv_vf v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* w[t tw + v CONV_VL + l] += sum over m < mn of d[m ldd + v CONV_VL + l] x[m + t],
 * v < ov, t < qb, l < CONV_VL (ov and qb constants once inlined). */
static inline __attribute__((always_inline)) void conv_dw_block(const int ov, const int qb,
                                                                const float *d, int64_t ldd,
                                                                const float *x, int64_t mn,
                                                                float *w, int64_t tw)
{
    conv_vf acc[CONV_QB][CONV_OV] = {{{0}}};
    for (int64_t m = 0; m < mn; m++) {
        conv_vf dv[CONV_OV];
        for (int v = 0; v < ov; v++) {
            dv[v] = conv_load(d + m * ldd + v * CONV_VL);
            CONV_IN_REGISTER(dv[v]);
        }
        for (int t = 0; t < qb; t++) {
            float b = x[m + t];
            for (int v = 0; v < ov; v++)
                acc[t][v] += dv[v] * b;
        }
    }
    for (int t = 0; t < qb; t++)
        for (int v = 0; v < ov; v++) {
            conv_vf r = conv_load(w + t * tw + v * CONV_VL) + acc[t][v];
            memcpy(w + t * tw + v * CONV_VL, &r, sizeof r);
        }
}

/* conv_dw_block for ov vectors (1 .. CONV_OV) and qb taps (1 .. 3). */
static void conv_dw_any(int ov, int qb, const float *d, int64_t ldd, const float *x, int64_t mn,
                        float *w, int64_t tw)
{
    switch (ov * 4 + qb) {
    case 4 + 1: conv_dw_block(1, 1, d, ldd, x, mn, w, tw); break;
    case 4 + 2: conv_dw_block(1, 2, d, ldd, x, mn, w, tw); break;
    case 4 + 3: conv_dw_block(1, 3, d, ldd, x, mn, w, tw); break;
    case 8 + 1: conv_dw_block(2, 1, d, ldd, x, mn, w, tw); break;
    case 8 + 2: conv_dw_block(2, 2, d, ldd, x, mn, w, tw); break;
    case 8 + 3: conv_dw_block(2, 3, d, ldd, x, mn, w, tw); break;
    case 12 + 1: conv_dw_block(3, 1, d, ldd, x, mn, w, tw); break;
    case 12 + 2: conv_dw_block(3, 2, d, ldd, x, mn, w, tw); break;
    case 12 + 3: conv_dw_block(3, 3, d, ldd, x, mn, w, tw); break;
#if CONV_OV >= 4
    case 16 + 1: conv_dw_block(4, 1, d, ldd, x, mn, w, tw); break;
    case 16 + 2: conv_dw_block(4, 2, d, ldd, x, mn, w, tw); break;
    case 16 + 3: conv_dw_block(4, 3, d, ldd, x, mn, w, tw); break;
#endif
    }
}

static void conv_dw(int64_t Og, int64_t Cg, int64_t KH, int64_t KW, int64_t n,
                    const float *restrict dy, int64_t ldd, const float *restrict xp, int64_t ldx,
                    int64_t Wp, float *restrict dw, int64_t ldw)
{
    int64_t nv = (Og + CONV_VL - 1) / CONV_VL, nb = (nv + CONV_OV - 1) / CONV_OV;
    int64_t mc = CONV_CHUNK_BYTES / (ldd * (int64_t)sizeof(float));
    mc = mc < 16 ? 16 : mc;
    for (int64_t m0 = 0; m0 < n; m0 += mc) {
        int64_t mn = n - m0 < mc ? n - m0 : mc;
        for (int64_t bk = 0, v0 = 0; bk < nb; bk++) { /* nv vectors in nb even blocks */
            int ov = (int)(nv / nb + (bk < nv % nb));
            const float *d = dy + m0 * ldd + v0 * CONV_VL;
            for (int64_t c = 0; c < Cg; c++)
                for (int64_t p = 0; p < KH; p++)
                    for (int64_t q0 = 0; q0 < KW; q0 += CONV_QB) {
                        int qb = KW - q0 < CONV_QB ? (int)(KW - q0) : CONV_QB;
                        conv_dw_any(ov, qb, d, ldd, xp + c * ldx + p * Wp + q0 + m0, mn,
                                    dw + ((p * KW + q0) * Cg + c) * ldw + v0 * CONV_VL, Cg * ldw);
                    }
            v0 += ov;
        }
    }
}

/* conv_fw (rows.h): blocks of CONV_FW_MB positions by up to CONV_FW_OV
 * vectors of output channels; per tap, the block's weight vectors are
 * loaded once and each position's input value broadcast (BLIS's
 * micro-kernel shape with the input read in place of a packed panel:
 * 6 x 4 vectors = 24 accumulators with AVX-512's 32 registers, 6 x 2 with
 * 16). The taps go in chunks whose weight rows fit in 32 KB (L1), the
 * partial sums kept in y between chunks. */
#if defined(__AVX512F__)
#define CONV_FW_OV 4
#else
#define CONV_FW_OV 2
#endif
enum { CONV_FW_MB = 6 };

/* y[t ldy + v CONV_VL + l] (+)= sum over k < kn of x[off[k] + t] w[k ldw
 * + v CONV_VL + l], t < CONV_FW_MB, v < ov (a constant once inlined); :=
 * when first. */
static inline __attribute__((always_inline)) void conv_fw_block(const int ov, const int64_t *off,
                                                                int64_t kn, const float *x,
                                                                const float *w, int64_t ldw,
                                                                float *y, int64_t ldy, bool first)
{
    conv_vf acc[CONV_FW_MB][CONV_FW_OV];
    for (int t = 0; t < CONV_FW_MB; t++)
        for (int v = 0; v < ov; v++)
            acc[t][v] = first ? (conv_vf){0} : conv_load(y + t * ldy + v * CONV_VL);
    for (int64_t k = 0; k < kn; k++) {
        conv_vf wv[CONV_FW_OV];
        for (int v = 0; v < ov; v++) {
            wv[v] = conv_load(w + k * ldw + v * CONV_VL);
            CONV_IN_REGISTER(wv[v]);
        }
        const float *xk = x + off[k];
        for (int t = 0; t < CONV_FW_MB; t++) {
            float b = xk[t];
            for (int v = 0; v < ov; v++)
                acc[t][v] += wv[v] * b;
        }
    }
    for (int t = 0; t < CONV_FW_MB; t++)
        for (int v = 0; v < ov; v++)
            memcpy(y + t * ldy + v * CONV_VL, &acc[t][v], sizeof acc[t][v]);
}

static void conv_fw(int64_t Og, int64_t Kc, const int64_t *restrict off, int64_t n,
                    const float *restrict x, const float *restrict w, int64_t ldw,
                    float *restrict y, int64_t ldy)
{
    int64_t nv = (Og + CONV_VL - 1) / CONV_VL, nb = (nv + CONV_FW_OV - 1) / CONV_FW_OV;
    int64_t kc = CONV_CHUNK_BYTES / (ldw * (int64_t)sizeof(float));
    kc = kc < 16 ? 16 : kc;
    for (int64_t k0 = 0; k0 < Kc; k0 += kc) {
        int64_t kn = Kc - k0 < kc ? Kc - k0 : kc;
        for (int64_t bk = 0, v0 = 0; bk < nb; bk++) {
            int ov = (int)(nv / nb + (bk < nv % nb));
            const float *wb = w + k0 * ldw + v0 * CONV_VL;
            for (int64_t m0 = 0; m0 < n; m0 += CONV_FW_MB) {
                float *yb = y + m0 * ldy + v0 * CONV_VL;
                switch (ov) {
                case 1: conv_fw_block(1, off + k0, kn, x + m0, wb, ldw, yb, ldy, k0 == 0); break;
                case 2: conv_fw_block(2, off + k0, kn, x + m0, wb, ldw, yb, ldy, k0 == 0); break;
#if CONV_FW_OV >= 3
                case 3: conv_fw_block(3, off + k0, kn, x + m0, wb, ldw, yb, ldy, k0 == 0); break;
#endif
#if CONV_FW_OV >= 4
                case 4: conv_fw_block(4, off + k0, kn, x + m0, wb, ldw, yb, ldy, k0 == 0); break;
#endif
                }
            }
            v0 += ov;
        }
    }
}

#if defined(__AVX__)
/* step_mul (rows.h): blocks of STEP_MB rows by up to STEP_OV vectors of
 * columns, one panel of W at a time; per k the block's panel vectors are
 * loaded once and each row's A value broadcast (the shape of conv_fw and
 * of BLIS's micro-kernels, but with the rows along the broadcasts, so a
 * block is 8 rows (AVX-512) or 4 and a batch of 16 or 32 rows fills its
 * blocks: BLIS's skx kernel has 12 there, and 16 rows cost it 24). A is
 * read in place, not packed. 8 x 3 vectors = 24 accumulators with
 * AVX-512's 32 registers, 4 x 3 with 16. Rows beyond the last full block
 * go in blocks of 4, 2 and 1. */
#if defined(__AVX512F__)
#define STEP_MB 8
#else
#define STEP_MB 4
#endif
enum { STEP_OV = 3, STEP_NB = STEP_OV * CONV_VL };

/* The first n (<= CONV_VL) floats of v to c, or of c + v when add. */
static inline void step_put(float *c, conv_vf v, int n, bool add)
{
    if (n >= CONV_VL) {
        if (add)
            v += conv_load(c);
        memcpy(c, &v, sizeof v);
        return;
    }
    float t[CONV_VL];
    memcpy(t, &v, sizeof v);
    for (int l = 0; l < n; l++)
        c[l] = (add ? c[l] : 0) + t[l];
}

/* C[i ldc + j] (+)= sum over k < K of A[i lda + k] w[k STEP_NB + j], i <
 * mb, j < n, n <= ov CONV_VL (mb and ov constants once inlined). */
static inline __attribute__((always_inline)) void step_block(const int mb, const int ov, int64_t K,
                                                             const float *A, int64_t lda,
                                                             const float *w, float *C, int64_t ldc,
                                                             int64_t n, bool add)
{
    conv_vf acc[STEP_MB][STEP_OV] = {{{0}}};
    for (int64_t k = 0; k < K; k++) {
        conv_vf wv[STEP_OV];
        for (int v = 0; v < ov; v++) {
            wv[v] = conv_load(w + k * STEP_NB + v * CONV_VL);
            CONV_IN_REGISTER(wv[v]);
        }
        for (int i = 0; i < mb; i++) {
            float b = A[i * lda + k];
            for (int v = 0; v < ov; v++)
                acc[i][v] += wv[v] * b;
        }
    }
    for (int i = 0; i < mb; i++)
        for (int v = 0; v < ov; v++) {
            int64_t left = n - v * CONV_VL;
            step_put(C + i * ldc + v * CONV_VL, acc[i][v], left < CONV_VL ? (int)left : CONV_VL,
                     add);
        }
}

/* step_block for mb rows (STEP_MB, 4, 2 or 1) and ov vectors (1 .. 3). */
static void step_any(int mb, int ov, int64_t K, const float *A, int64_t lda, const float *w,
                     float *C, int64_t ldc, int64_t n, bool add)
{
    switch (mb * 4 + ov) {
#if STEP_MB > 4
    case STEP_MB * 4 + 1: step_block(STEP_MB, 1, K, A, lda, w, C, ldc, n, add); break;
    case STEP_MB * 4 + 2: step_block(STEP_MB, 2, K, A, lda, w, C, ldc, n, add); break;
    case STEP_MB * 4 + 3: step_block(STEP_MB, 3, K, A, lda, w, C, ldc, n, add); break;
#endif
    case 16 + 1: step_block(4, 1, K, A, lda, w, C, ldc, n, add); break;
    case 16 + 2: step_block(4, 2, K, A, lda, w, C, ldc, n, add); break;
    case 16 + 3: step_block(4, 3, K, A, lda, w, C, ldc, n, add); break;
    case 8 + 1: step_block(2, 1, K, A, lda, w, C, ldc, n, add); break;
    case 8 + 2: step_block(2, 2, K, A, lda, w, C, ldc, n, add); break;
    case 8 + 3: step_block(2, 3, K, A, lda, w, C, ldc, n, add); break;
    case 4 + 1: step_block(1, 1, K, A, lda, w, C, ldc, n, add); break;
    case 4 + 2: step_block(1, 2, K, A, lda, w, C, ldc, n, add); break;
    case 4 + 3: step_block(1, 3, K, A, lda, w, C, ldc, n, add); break;
    }
}

/* Rows in chunks of STEP_CHUNK, every panel against a chunk before the
 * next: a chunk's rows of A stay in L1 while the panels stream from L2
 * (a few rows, one chunk: the time loops; thousands: an output layer). */
enum { STEP_CHUNK = 64 };

static void step_mul(int64_t M, int64_t N, int64_t K, const float *restrict A, int64_t lda,
                     const float *restrict w, int64_t pstride, float *restrict C, int64_t ldc,
                     bool add)
{
    for (int64_t r0 = 0; r0 < M; r0 += STEP_CHUNK) {
        int64_t r1 = M - r0 < STEP_CHUNK ? M : r0 + STEP_CHUNK;
        for (int64_t j0 = 0; j0 < N; j0 += STEP_NB) {
            int64_t n = N - j0 < STEP_NB ? N - j0 : STEP_NB;
            int ov = (int)((n + CONV_VL - 1) / CONV_VL);
            const float *wp = w + j0 / STEP_NB * pstride;
            int64_t i = r0;
            for (; i + STEP_MB <= r1; i += STEP_MB)
                step_any(STEP_MB, ov, K, A + i * lda, lda, wp, C + i * ldc + j0, ldc, n, add);
            for (int mb = STEP_MB / 2; mb >= 1; mb /= 2)
                if (r1 - i >= mb) {
                    step_any(mb, ov, K, A + i * lda, lda, wp, C + i * ldc + j0, ldc, n, add);
                    i += mb;
                }
        }
    }
}
#endif

/* transpose (rows.h): CONV_VL x CONV_VL tiles in registers, in log2
 * CONV_VL stages; stage b swaps the off-diagonal b x b blocks of each 2b x
 * 2b block (vectors p and p + b, (p & b) == 0: lo takes x's elements j
 * without bit b and y's before them, hi the rest). Edges one element at a
 * time. */
#define CONV_UNPAREN(...) __VA_ARGS__
#define CONV_TSTAGE(b, lo, hi)                                           \
    for (int p = 0; p < CONV_VL; p++)                                    \
        if (!(p & (b))) {                                                \
            conv_vf x = v[p], y = v[p + (b)];                            \
            v[p] = __builtin_shufflevector(x, y, CONV_UNPAREN lo);       \
            v[p + (b)] = __builtin_shufflevector(x, y, CONV_UNPAREN hi); \
        }

static inline void conv_transpose_tile(conv_vf v[CONV_VL])
{
#if CONV_VL == 16
    CONV_TSTAGE(1, (0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30),
                (1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31));
    CONV_TSTAGE(2, (0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29),
                (2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31));
    CONV_TSTAGE(4, (0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27),
                (4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31));
    CONV_TSTAGE(8, (0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23),
                (8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31));
#elif CONV_VL == 8
    CONV_TSTAGE(1, (0, 8, 2, 10, 4, 12, 6, 14), (1, 9, 3, 11, 5, 13, 7, 15));
    CONV_TSTAGE(2, (0, 1, 8, 9, 4, 5, 12, 13), (2, 3, 10, 11, 6, 7, 14, 15));
    CONV_TSTAGE(4, (0, 1, 2, 3, 8, 9, 10, 11), (4, 5, 6, 7, 12, 13, 14, 15));
#else
    CONV_TSTAGE(1, (0, 4, 2, 6), (1, 5, 3, 7));
    CONV_TSTAGE(2, (0, 1, 4, 5), (2, 3, 6, 7));
#endif
}

static void transpose(const float *restrict src, int64_t sr, float *restrict dst, int64_t dr,
                      int64_t nr, int64_t nc, bool add)
{
    int64_t rv = nr - nr % CONV_VL, cv = nc - nc % CONV_VL;
    for (int64_t r0 = 0; r0 < rv; r0 += CONV_VL)
        for (int64_t c0 = 0; c0 < cv; c0 += CONV_VL) {
            conv_vf v[CONV_VL];
            for (int c = 0; c < CONV_VL; c++)
                v[c] = conv_load(src + (c0 + c) * sr + r0);
            conv_transpose_tile(v);
            for (int r = 0; r < CONV_VL; r++) {
                float *d = dst + (r0 + r) * dr + c0;
                conv_vf o = add ? conv_load(d) + v[r] : v[r];
                memcpy(d, &o, sizeof o);
            }
        }
    for (int64_t r = 0; r < nr; r++) /* the edges: columns from cv, then rows from rv */
        for (int64_t c = r < rv ? cv : 0; c < nc; c++)
            dst[r * dr + c] = (add ? dst[r * dr + c] : 0) + src[c * sr + r];
}

#define ROWS_FLOAT_ONLY                                                                       \
    .row_max = row_max, .exp_sum = exp_sum, .softmax_axpy = softmax_axpy, .conv_dw = conv_dw, \
    .conv_fw = conv_fw, .transpose = transpose, ROWS_STEP_MUL
/* The generic path (any CPU, ARM too) keeps BLIS's micro-kernel for the
 * recurrent products: tuned per CPU, where these blocks are not. */
#if defined(__AVX__)
#define ROWS_STEP_MUL .step_mul = step_mul, .step_nb = STEP_NB
#else
#define ROWS_STEP_MUL .step_mul = NULL, .step_nb = 0
#endif
#else
#define ROWS_FLOAT_ONLY                                                                       \
    .row_max = NULL, .exp_sum = NULL, .softmax_axpy = NULL, .conv_dw = NULL, .conv_fw = NULL, \
    .transpose = NULL, .step_mul = NULL, .step_nb = 0
#endif

#define ROWS_TABLE                                                                                \
    {                                                                                             \
        .lstm_fw = lstm_fw, .lstm_bw = lstm_bw, .gru_fw = gru_fw, .gru_bw = gru_bw,               \
        .rnn_fw = rnn_fw, .rnn_bw = rnn_bw, .map_fw = map_fw, .map_bw = map_bw, .zip_fw = zip_fw, \
        .zip_bw = zip_bw, .softmax_fw = softmax_fw, .softmax_bw = softmax_bw,                     \
        .softmax_masked_fw = softmax_masked_fw, .sqdiff_fw = sqdiff_fw, .sqdiff_bw = sqdiff_bw,   \
        .colsum = colsum, ROWS_FLOAT_ONLY                                                         \
    }
