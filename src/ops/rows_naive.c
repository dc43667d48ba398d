/* src/ops/rows_naive.c - plain references of the row kernels (rows.h) on
 * double data: one unit at a time, libm, the formulas as the cells define
 * them. Tests compare every table of rows.h with these. */
#include "rows.h"

#include <math.h>

static double sig(double x) { return 1.0 / (1.0 + exp(-x)); }

static void lstm_fw_naive(int64_t n, int64_t ga, void *a_, const void *bias_, const void *p_,
                          int64_t gp, const void *cp_, void *h_, void *c_)
{
    double *a = a_, *h = h_, *c = c_;
    const double *bias = bias_, *p = p_, *cp = cp_;
    for (int64_t j = 0; j < n; j++) {
        double pre[4];
        for (int g = 0; g < 4; g++)
            pre[g] = a[g * ga + j] + p[g * gp + j] + bias[g * ga + j];
        double i = sig(pre[0]), f = sig(pre[1]), gg = tanh(pre[2]), o = sig(pre[3]);
        c[j] = f * cp[j] + i * gg;
        h[j] = o * tanh(c[j]);
        a[j] = i, a[ga + j] = f, a[2 * ga + j] = gg, a[3 * ga + j] = o;
    }
}

static void lstm_bw_naive(int64_t n, int64_t ga, void *a_, const void *c_, const void *cp_,
                          const void *doh_, const void *doc_, void *gh_, void *gc_)
{
    double *a = a_, *gh = gh_, *gc = gc_;
    const double *c = c_, *cp = cp_, *doh = doh_, *doc = doc_;
    for (int64_t j = 0; j < n; j++) {
        double i = a[j], f = a[ga + j], g = a[2 * ga + j], o = a[3 * ga + j];
        double dh = doh[j] + gh[j];
        double dc = doc[j] + gc[j] + dh * o * (1 - tanh(c[j]) * tanh(c[j]));
        a[j] = dc * g * i * (1 - i);                   /* d(pre_i) */
        a[ga + j] = dc * cp[j] * f * (1 - f);          /* d(pre_f) */
        a[2 * ga + j] = dc * i * (1 - g * g);          /* d(pre_g) */
        a[3 * ga + j] = dh * tanh(c[j]) * o * (1 - o); /* d(pre_o) */
        gh[j] = 0;
        gc[j] = dc * f;
    }
}

static void gru_fw_naive(int64_t n, int64_t ga, void *a_, const void *bx_, const void *p_,
                         int64_t gp, const void *bn_, const void *hp_, void *q_, void *h_)
{
    double *a = a_, *q = q_, *h = h_;
    const double *bx = bx_, *p = p_, *bn = bn_, *hp = hp_;
    for (int64_t j = 0; j < n; j++) {
        double r = sig(a[j] + bx[j] + p[j]);
        double z = sig(a[ga + j] + bx[ga + j] + p[gp + j]);
        q[j] = p[2 * gp + j] + bn[j];
        double nn = tanh(a[2 * ga + j] + bx[2 * ga + j] + r * q[j]);
        h[j] = (1 - z) * nn + z * hp[j];
        a[j] = r, a[ga + j] = z, a[2 * ga + j] = nn;
    }
}

static void gru_bw_naive(int64_t n, int64_t ga, void *a_, void *q_, const void *hp_,
                         const void *doh_, void *gh_, void *dp_)
{
    double *a = a_, *q = q_, *gh = gh_, *dp = dp_;
    const double *hp = hp_, *doh = doh_;
    for (int64_t j = 0; j < n; j++) {
        double r = a[j], z = a[ga + j], nn = a[2 * ga + j];
        double dh = doh[j] + gh[j];
        double dn = dh * (1 - z) * (1 - nn * nn); /* d(pre_n) */
        double dr = dn * q[j] * r * (1 - r);      /* d(pre_r) */
        double dz = dh * (hp[j] - nn) * z * (1 - z);
        a[j] = dr, a[ga + j] = dz, a[2 * ga + j] = dn;
        q[j] = dn * r;
        dp[j] = dr, dp[ga + j] = dz, dp[2 * ga + j] = dn * r;
        gh[j] = dh * z;
    }
}

static void rnn_fw_naive(int64_t n, const void *a_, const void *bias_, const void *p_, bool relu,
                         void *h_)
{
    const double *a = a_, *bias = bias_, *p = p_;
    double *h = h_;
    for (int64_t j = 0; j < n; j++) {
        double v = a[j] + p[j] + bias[j];
        h[j] = relu ? (v < 0 ? 0 : v) : tanh(v);
    }
}

static void rnn_bw_naive(int64_t n, void *a_, const void *h_, const void *doh_, bool relu,
                         void *gh_)
{
    double *a = a_, *gh = gh_;
    const double *h = h_, *doh = doh_;
    for (int64_t j = 0; j < n; j++) {
        double d = doh[j] + gh[j];
        a[j] = relu ? (h[j] > 0 ? d : 0) : d * (1 - h[j] * h[j]);
        gh[j] = 0;
    }
}

/* f(x) and f'(x) of the one-input functions, a the op's scalar. */
static double map_value(tn__map f, double v, double a)
{
    switch (f) {
    case TN__MAP_SCALE: return a * v;
    case TN__MAP_NEG: return -v;
    case TN__MAP_EXP: return exp(v);
    case TN__MAP_LOG: return log(v);
    case TN__MAP_SIGMOID: return sig(v);
    case TN__MAP_TANH: return tanh(v);
    case TN__MAP_RELU: return v < 0 ? 0 : v;
    case TN__MAP_LEAKY_RELU: return v > 0 ? v : a * v;
    case TN__MAP_GELU: return 0.5 * v * (1 + erf(v / sqrt(2.0)));
    case TN__MAP_SILU: return v * sig(v);
    case TN__MAP_DROPOUT: return a * v; /* where kept */
    default: return NAN;
    }
}

static double map_slope(tn__map f, double v, double a)
{
    const double pi = 3.14159265358979323846;
    switch (f) {
    case TN__MAP_SCALE: return a;
    case TN__MAP_NEG: return -1;
    case TN__MAP_EXP: return exp(v);
    case TN__MAP_LOG: return 1 / v;
    case TN__MAP_SIGMOID: return sig(v) * (1 - sig(v));
    case TN__MAP_TANH: return 1 - tanh(v) * tanh(v);
    case TN__MAP_RELU: return v > 0;
    case TN__MAP_LEAKY_RELU: return v > 0 ? 1 : a;
    case TN__MAP_GELU: return 0.5 * (1 + erf(v / sqrt(2.0))) + v * exp(-v * v / 2) / sqrt(2 * pi);
    case TN__MAP_SILU: return sig(v) * (1 + v * (1 - sig(v)));
    case TN__MAP_DROPOUT: return a;
    default: return NAN;
    }
}

static void map_fw_naive(tn__map f, int64_t n, const void *x_, int64_t ix, double a,
                         const uint8_t *keep, void *y_)
{
    const double *x = x_;
    double *y = y_;
    for (int64_t j = 0; j < n; j++)
        y[j] = f == TN__MAP_DROPOUT && !keep[j] ? 0 : map_value(f, x[j * ix], a);
}

/* From x alone (the optimised kernels use y where it is cheaper). */
static void map_bw_naive(tn__map f, int64_t n, const void *x_, int64_t ix, const void *y_,
                         const void *dy_, double a, const uint8_t *keep, void *dx_)
{
    const double *x = x_, *dy = dy_;
    double *dx = dx_;
    (void)y_;
    for (int64_t j = 0; j < n; j++)
        if (f != TN__MAP_DROPOUT || keep[j])
            dx[j * ix] += dy[j] * map_slope(f, x[j * ix], a);
}

static void zip_fw_naive(tn__zip op, int64_t n, const void *a_, int64_t ia, const void *b_,
                         int64_t ib, void *y_)
{
    const double *a = a_, *b = b_;
    double *y = y_;
    for (int64_t j = 0; j < n; j++) {
        double u = a[j * ia], v = b[j * ib];
        y[j] = op == TN__ZIP_ADD   ? u + v
               : op == TN__ZIP_SUB ? u - v
               : op == TN__ZIP_MUL ? u * v
                                   : u / v;
    }
}

static void zip_bw_naive(tn__zip op, int which, int64_t n, const void *a_, int64_t ia,
                         const void *b_, int64_t ib, const void *dy_, void *dx_, int64_t ix)
{
    const double *a = a_, *b = b_, *dy = dy_;
    double *dx = dx_;
    for (int64_t j = 0; j < n; j++) {
        double u = a[j * ia], v = b[j * ib], d; /* d(a op b) / d(operand) */
        switch (op) {
        case TN__ZIP_ADD: d = 1; break;
        case TN__ZIP_SUB: d = which ? -1 : 1; break;
        case TN__ZIP_MUL: d = which ? u : v; break;
        default: d = which ? -u / (v * v) : 1 / v; break;
        }
        dx[j * ix] += dy[j] * d;
    }
}

static void softmax_fw_naive(int64_t n, const void *x_, int64_t ix, bool log_out, void *y_,
                             int64_t iy)
{
    const double *x = x_;
    double *y = y_, m = x[0], z = 0;
    for (int64_t k = 1; k < n; k++)
        m = fmax(m, x[k * ix]);
    for (int64_t k = 0; k < n; k++)
        z += exp(x[k * ix] - m);
    for (int64_t k = 0; k < n; k++)
        y[k * iy] = log_out ? x[k * ix] - m - log(z) : exp(x[k * ix] - m) / z;
}

static void softmax_bw_naive(int64_t n, const void *y_, const void *dy_, int64_t iy, bool log_out,
                             void *dx_, int64_t ix)
{
    const double *y = y_, *dy = dy_;
    double *dx = dx_, s = 0;
    for (int64_t k = 0; k < n; k++)
        s += log_out ? dy[k * iy] : dy[k * iy] * y[k * iy];
    for (int64_t k = 0; k < n; k++)
        dx[k * ix] += log_out ? dy[k * iy] - exp(y[k * iy]) * s : y[k * iy] * (dy[k * iy] - s);
}

static void softmax_masked_fw_naive(int64_t n, const void *x_, int64_t ix, const int32_t *keep,
                                    void *y_, int64_t iy)
{
    const double *x = x_;
    double *y = y_, m = -INFINITY, z = 0;
    for (int64_t k = 0; k < n; k++)
        if (keep[k * iy])
            m = fmax(m, x[k * ix]);
    for (int64_t k = 0; k < n; k++)
        z += keep[k * iy] ? exp(x[k * ix] - m) : 0;
    for (int64_t k = 0; k < n; k++)
        y[k * iy] = keep[k * iy] ? exp(x[k * ix] - m) / z : 0;
}

static double sqdiff_fw_naive(int64_t n, const void *a_, int64_t ia, const void *b_, int64_t ib,
                              void *y_)
{
    const double *a = a_, *b = b_;
    double *y = y_, s = 0;
    for (int64_t j = 0; j < n; j++) {
        double d = a[j * ia] - b[j * ib];
        if (y)
            y[j] = d * d;
        else
            s += d * d;
    }
    return s;
}

static void sqdiff_bw_naive(int64_t n, double g, const void *dy_, const void *a_, int64_t ia,
                            const void *b_, int64_t ib, void *dx_, int64_t ix)
{
    const double *a = a_, *b = b_, *dy = dy_;
    double *dx = dx_;
    for (int64_t j = 0; j < n; j++)
        dx[j * ix] += (dy ? g * dy[j] : g) * (a[j * ia] - b[j * ib]);
}

static void colsum_naive(const void *M_, int64_t rows, int64_t n, int64_t rs, void *out_,
                         int64_t os)
{
    const double *M = M_;
    double *out = out_;
    for (int64_t j = 0; j < n; j++) {
        double s = 0;
        for (int64_t i = 0; i < rows; i++)
            s += M[i * rs + j];
        out[j * os] += s;
    }
}

const tn__rows tn__rows_naive = {
    .lstm_fw = lstm_fw_naive,
    .lstm_bw = lstm_bw_naive,
    .gru_fw = gru_fw_naive,
    .gru_bw = gru_bw_naive,
    .rnn_fw = rnn_fw_naive,
    .rnn_bw = rnn_bw_naive,
    .map_fw = map_fw_naive,
    .map_bw = map_bw_naive,
    .zip_fw = zip_fw_naive,
    .zip_bw = zip_bw_naive,
    .softmax_fw = softmax_fw_naive,
    .softmax_bw = softmax_bw_naive,
    .softmax_masked_fw = softmax_masked_fw_naive,
    .sqdiff_fw = sqdiff_fw_naive,
    .sqdiff_bw = sqdiff_bw_naive,
    .colsum = colsum_naive,
};
