/* src/nn/init.c - parameter initializers (torch.nn.init equivalents).
 *
 * Values are drawn from a tn_rng in row-major logical order and stored with
 * tn_tensor_set, so any F32/F64 tensor (views included) can be filled. */
#include "tensor/optim.h"

#include <math.h>
#include <string.h>

/* t is a fillable tensor and r (when needed) exists. */
static tn_status check(const char *fn, const tn_tensor *t, const tn_rng *r, bool need_rng)
{
    if (!t)
        return tn_set_error(TN_ERR_ARG, "%s: tensor is NULL", fn);
    if (t->dtype != TN_F32 && t->dtype != TN_F64)
        return tn_set_error(TN_ERR_DTYPE, "%s: tensor is %s, need f32 or f64", fn,
                            tn_dtype_name(t->dtype));
    if (need_rng && !r)
        return tn_set_error(TN_ERR_ARG, "%s: rng is NULL", fn);
    return TN_OK;
}

static tn_status fans(const char *fn, const tn_tensor *t, int64_t *fan_in, int64_t *fan_out)
{
    if (t->ndim < 2) {
        char sh[64];
        return tn_set_error(TN_ERR_SHAPE,
                            "%s: fan in and fan out need at least 2 dimensions, got %s", fn,
                            tn_shape_str(t, sh, sizeof sh));
    }
    int64_t recept = 1;
    for (int d = 2; d < t->ndim; d++)
        recept *= t->shape[d];
    *fan_in = t->shape[1] * recept;
    *fan_out = t->shape[0] * recept;
    return TN_OK;
}

tn_status tn_init_fans(const tn_tensor *t, int64_t *fan_in, int64_t *fan_out)
{
    tn_status st = check("tn_init_fans", t, NULL, false);
    if (st != TN_OK)
        return st;
    if (!fan_in || !fan_out)
        return tn_set_error(TN_ERR_ARG, "tn_init_fans: output pointer is NULL");
    return fans("tn_init_fans", t, fan_in, fan_out);
}

/* The gain of nonlinearity nl, or 0 when nl is unknown. */
static double gain_of(const char *nl, double param)
{
    if (!strcmp(nl, "linear") || !strcmp(nl, "conv1d") || !strcmp(nl, "conv2d") ||
        !strcmp(nl, "conv3d") || !strcmp(nl, "sigmoid"))
        return 1.0;
    if (!strcmp(nl, "tanh"))
        return 5.0 / 3;
    if (!strcmp(nl, "relu"))
        return sqrt(2.0);
    if (!strcmp(nl, "leaky_relu")) {
        double slope = param < 0 ? 0.01 : param;
        return sqrt(2.0 / (1 + slope * slope));
    }
    if (!strcmp(nl, "selu"))
        return 3.0 / 4;
    return 0.0;
}

tn_status tn_init_gain(const char *nl, double param, double *gain_out)
{
    if (!nl || !gain_out)
        return tn_set_error(TN_ERR_ARG, "tn_init_gain: %s is NULL",
                            nl ? "gain_out" : "nonlinearity");
    double g = gain_of(nl, param);
    if (g == 0.0)
        return tn_set_error(TN_ERR_ARG, "tn_init_gain: unknown nonlinearity \"%s\"", nl);
    *gain_out = g;
    return TN_OK;
}

tn_status tn_init_zeros(tn_tensor *t)
{
    tn_status st = check("tn_init_zeros", t, NULL, false);
    if (st == TN_OK)
        tn_tensor_fill(t, 0.0);
    return st;
}

static tn_status uniform(const char *fn, tn_tensor *t, tn_rng *r, double lo, double hi)
{
    tn_status st = check(fn, t, r, true);
    if (st != TN_OK)
        return st;
    if (!(lo <= hi) || !isfinite(lo) || !isfinite(hi))
        return tn_set_error(TN_ERR_ARG, "%s: bad range [%g, %g)", fn, lo, hi);
    tn_tensor_uniform(t, r, lo, hi);
    return TN_OK;
}

static tn_status normal(const char *fn, tn_tensor *t, tn_rng *r, double mean, double std)
{
    tn_status st = check(fn, t, r, true);
    if (st != TN_OK)
        return st;
    if (!(std >= 0) || !isfinite(std) || !isfinite(mean))
        return tn_set_error(TN_ERR_ARG, "%s: bad mean %g or std %g", fn, mean, std);
    tn_tensor_normal(t, r, mean, std);
    return TN_OK;
}

tn_status tn_init_uniform(tn_tensor *t, tn_rng *r, double lo, double hi)
{
    return uniform("tn_init_uniform", t, r, lo, hi);
}

tn_status tn_init_normal(tn_tensor *t, tn_rng *r, double mean, double std)
{
    return normal("tn_init_normal", t, r, mean, std);
}

tn_status tn_init_xavier_uniform(tn_tensor *t, tn_rng *r, double gain)
{
    const char *fn = "tn_init_xavier_uniform";
    int64_t fi = 0, fo = 0;
    tn_status st = check(fn, t, r, true);
    if (st != TN_OK || (st = fans(fn, t, &fi, &fo)) != TN_OK)
        return st;
    double b = gain * sqrt(6.0 / (double)(fi + fo));
    return uniform(fn, t, r, -b, b);
}

tn_status tn_init_xavier_normal(tn_tensor *t, tn_rng *r, double gain)
{
    const char *fn = "tn_init_xavier_normal";
    int64_t fi = 0, fo = 0;
    tn_status st = check(fn, t, r, true);
    if (st != TN_OK || (st = fans(fn, t, &fi, &fo)) != TN_OK)
        return st;
    return normal(fn, t, r, 0.0, gain * sqrt(2.0 / (double)(fi + fo)));
}

tn_status tn_init_kaiming_uniform(tn_tensor *t, tn_rng *r, double a)
{
    const char *fn = "tn_init_kaiming_uniform";
    int64_t fi = 0, fo = 0;
    tn_status st = check(fn, t, r, true);
    if (st != TN_OK || (st = fans(fn, t, &fi, &fo)) != TN_OK)
        return st;
    double b = sqrt(2.0 / (1 + a * a)) * sqrt(3.0 / (double)fi);
    return uniform(fn, t, r, -b, b);
}

tn_status tn_init_kaiming_normal(tn_tensor *t, tn_rng *r, double a)
{
    const char *fn = "tn_init_kaiming_normal";
    int64_t fi = 0, fo = 0;
    tn_status st = check(fn, t, r, true);
    if (st != TN_OK || (st = fans(fn, t, &fi, &fo)) != TN_OK)
        return st;
    return normal(fn, t, r, 0.0, sqrt(2.0 / (1 + a * a)) / sqrt((double)fi));
}

/* Orthonormalise the k columns of q [k][m] (column j at q + j*m, m >= k) in
 * place by modified Gram-Schmidt, each projection pass done twice ("twice
 * is enough") so orthogonality holds to rounding. The implied R has a
 * positive diagonal; a column that vanishes becomes zero (PyTorch's sign(0)). */
static void gram_schmidt(double *q, int64_t m, int64_t k)
{
    for (int64_t j = 0; j < k; j++) {
        double *v = q + j * m;
        for (int pass = 0; pass < 2; pass++)
            for (int64_t l = 0; l < j; l++) {
                const double *u = q + l * m;
                double c = 0;
                for (int64_t i = 0; i < m; i++)
                    c += u[i] * v[i];
                for (int64_t i = 0; i < m; i++)
                    v[i] -= c * u[i];
            }
        double nrm = 0;
        for (int64_t i = 0; i < m; i++)
            nrm += v[i] * v[i];
        nrm = sqrt(nrm);
        double inv = nrm > 0 ? 1.0 / nrm : 0.0;
        for (int64_t i = 0; i < m; i++)
            v[i] *= inv;
    }
}

tn_status tn_init_orthogonal(tn_tensor *t, tn_rng *r, double gain)
{
    const char *fn = "tn_init_orthogonal";
    tn_status st = check(fn, t, r, true);
    if (st != TN_OK)
        return st;
    if (t->ndim < 2) {
        char sh[64];
        return tn_set_error(TN_ERR_SHAPE, "%s: needs at least 2 dimensions, got %s", fn,
                            tn_shape_str(t, sh, sizeof sh));
    }
    int64_t rows = t->shape[0], cols = tn_numel(t) / rows;
    /* Work on the tall orientation: m >= k, columns to orthonormalise. */
    bool tall = rows >= cols;
    int64_t m = tall ? rows : cols, k = tall ? cols : rows;
    double *q = tn_alloc((size_t)(m * k) * sizeof *q);
    if (!q)
        return tn_set_error(TN_ERR_MEMORY, "%s: out of memory for %lld x %lld", fn, (long long)rows,
                            (long long)cols);
    /* Draw A [rows, cols] row-major; column j of the tall matrix is column
     * j of A (tall) or row j of A (wide, A transposed as PyTorch does). */
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < cols; j++) {
            double v = tn_rng_normal(r);
            if (tall)
                q[j * m + i] = v;
            else
                q[i * m + j] = v;
        }
    gram_schmidt(q, m, k);
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < cols; j++)
            tn_tensor_set(t, i * cols + j, gain * (tall ? q[j * m + i] : q[i * m + j]));
    tn_free(q);
    return TN_OK;
}
