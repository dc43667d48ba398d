/* src/nn/layers.c - Linear and Embedding, from the public ops. */
#include "tensor/nn.h"

#include "../core/internal.h"

#include <math.h>

tn_status tn_linear_init(tn_linear *l, tn_params *ps, const char *prefix, int64_t in, int64_t out,
                         bool bias, tn_dtype dt, tn_rng *r)
{
    if (!l || !ps || !r || in < 1 || out < 1)
        return tn_set_error(TN_ERR_ARG, "tn_linear_init: bad arguments (in %lld, out %lld)",
                            (long long)in, (long long)out);
    l->in = in;
    l->out = out;
    l->weight = tn_params_new(ps, prefix, "weight", dt, 2, (int64_t[]){out, in});
    l->bias = bias ? tn_params_new(ps, prefix, "bias", dt, 1, (int64_t[]){out}) : NULL;
    if (!l->weight || (bias && !l->bias))
        return tn_last_status();
    /* PyTorch: kaiming_uniform(a=sqrt(5)) on the weight = U(+-1/sqrt(in)),
     * bias U(+-1/sqrt(in)). */
    double k = 1.0 / sqrt((double)in);
    tn_tensor_uniform(l->weight, r, -k, k);
    if (l->bias)
        tn_tensor_uniform(l->bias, r, -k, k);
    return TN_OK;
}

tn_status tn_linear_init_tied(tn_linear *l, tn_params *ps, const char *prefix,
                              const char *weight_name, bool bias, tn_dtype dt, tn_rng *r)
{
    const char *fn = "tn_linear_init_tied";
    if (!l || !ps || !r || !weight_name)
        return tn_set_error(TN_ERR_ARG, "%s: NULL argument", fn);
    tn_tensor *w = tn_params_get(ps, weight_name);
    if (!w)
        return tn_set_error(TN_ERR_ARG, "%s: no parameter named %s", fn, weight_name);
    if (w->ndim != 2 || w->dtype != dt) {
        char buf[64];
        return tn_set_error(TN_ERR_ARG, "%s: %s is %s %s; a Linear weight is 2-D %s", fn,
                            weight_name, tn_dtype_name(w->dtype), tn_shape_str(w, buf, sizeof buf),
                            tn_dtype_name(dt));
    }
    int64_t out = w->shape[0], in = w->shape[1];
    tn_tensor *b = bias ? tn_params_new(ps, prefix, "bias", dt, 1, (int64_t[]){out}) : NULL;
    if (bias && !b)
        return tn_last_status();
    if (!tn_params_tie(ps, prefix, "weight", weight_name))
        return tn_last_status(); /* the new bias stays in the set, zero */
    double k = 1.0 / sqrt((double)in);
    if (b)
        tn_tensor_uniform(b, r, -k, k);
    *l = (tn_linear){.in = in, .out = out, .weight = w, .bias = b};
    return TN_OK;
}

tn_tensor *tn_linear_forward(tn_tape *tp, const tn_linear *l, tn_tensor *x)
{
    if (!x || !tp || tn_tape_error(tp))
        return NULL;
    if (x->shape[x->ndim - 1] != l->in || x->ndim > 3) {
        char buf[64];
        tn_tape_fail(tp, TN_ERR_SHAPE,
                     "tn_linear_forward: input %s, expected [N, %lld] or [B, T, %lld]",
                     tn_shape_str(x, buf, sizeof buf), (long long)l->in, (long long)l->in);
        return NULL;
    }
    tn_tensor *x2 = x->ndim == 2 ? x : tn_reshape(tp, x, 2, (int64_t[]){-1, l->in});
    tn_tensor *wt = tn_transpose(tp, l->weight, 0, 1);
    tn_tensor *y = l->bias ? tn_addmm(tp, l->bias, x2, wt) : tn_matmul(tp, x2, wt);
    if (x->ndim == 2 || !y)
        return y;
    return tn_reshape(tp, y, x->ndim, (int64_t[]){x->shape[0], x->shape[1], l->out});
}

tn_status tn_layer_norm_init(tn_layernorm *l, tn_params *ps, const char *prefix, int64_t dim,
                             double eps, bool affine, tn_dtype dt)
{
    if (!l || !ps || dim < 1 || !(eps > 0) || !isfinite(eps))
        return tn_set_error(TN_ERR_ARG, "tn_layer_norm_init: bad arguments (dim %lld, eps %g)",
                            (long long)dim, eps);
    l->dim = dim;
    l->eps = eps;
    l->weight = l->bias = NULL;
    if (!affine)
        return TN_OK;
    l->weight = tn_params_new(ps, prefix, "weight", dt, 1, (int64_t[]){dim});
    l->bias = tn_params_new(ps, prefix, "bias", dt, 1, (int64_t[]){dim});
    if (!l->weight || !l->bias)
        return tn_last_status();
    tn_tensor_fill(l->weight, 1); /* PyTorch: ones and zeros */
    tn_tensor_fill(l->bias, 0);
    return TN_OK;
}

tn_tensor *tn_layer_norm_forward(tn_tape *tp, const tn_layernorm *l, tn_tensor *x)
{
    if (!x || !tp || tn_tape_error(tp))
        return NULL;
    if (x->ndim < 1 || x->shape[x->ndim - 1] != l->dim) {
        char buf[64];
        tn_tape_fail(tp, TN_ERR_SHAPE,
                     "tn_layer_norm_forward: input %s, expected a last dim of %lld",
                     tn_shape_str(x, buf, sizeof buf), (long long)l->dim);
        return NULL;
    }
    return tn_layer_norm(tp, x, l->weight, l->bias, l->eps);
}

tn_status tn_batch_norm_init(tn_batchnorm *b, tn_params *ps, const char *prefix, int64_t channels,
                             double eps, double momentum, bool affine, bool track, tn_dtype dt)
{
    if (!b || !ps || channels < 1 || !(eps > 0) || !isfinite(eps) ||
        !(momentum >= 0 && momentum <= 1))
        return tn_set_error(
            TN_ERR_ARG, "tn_batch_norm_init: bad arguments (channels %lld, eps %g, momentum %g)",
            (long long)channels, eps, momentum);
    *b = (tn_batchnorm){.channels = channels, .eps = eps, .momentum = momentum};
    int64_t shape[1] = {channels};
    if (affine) {
        b->weight = tn_params_new(ps, prefix, "weight", dt, 1, shape);
        b->bias = tn_params_new(ps, prefix, "bias", dt, 1, shape);
        if (!b->weight || !b->bias)
            return tn_last_status();
        tn_tensor_fill(b->weight, 1); /* PyTorch: ones and zeros */
        tn_tensor_fill(b->bias, 0);
    }
    if (track) {
        b->running_mean = tn_params_new(ps, prefix, "running_mean", dt, 1, shape);
        b->running_var = tn_params_new(ps, prefix, "running_var", dt, 1, shape);
        if (!b->running_mean || !b->running_var ||
            tn_tensor_set_requires_grad(b->running_mean, false) != TN_OK ||
            tn_tensor_set_requires_grad(b->running_var, false) != TN_OK)
            return tn_last_status();
        tn_tensor_fill(b->running_mean, 0);
        tn_tensor_fill(b->running_var, 1);
    }
    return TN_OK;
}

tn_tensor *tn_batch_norm_forward(tn_tape *tp, const tn_batchnorm *b, tn_tensor *x)
{
    if (!x || !tp || tn_tape_error(tp))
        return NULL;
    if (x->ndim < 2 || x->ndim > 4 || x->shape[1] != b->channels) {
        char buf[64];
        tn_tape_fail(tp, TN_ERR_SHAPE,
                     "tn_batch_norm_forward: input %s, expected [N, %lld], [N, %lld, L] or "
                     "[N, %lld, H, W]",
                     tn_shape_str(x, buf, sizeof buf), (long long)b->channels,
                     (long long)b->channels, (long long)b->channels);
        return NULL;
    }
    return tn_batch_norm(tp, x, b->weight, b->bias, b->running_mean, b->running_var,
                         tn_tape_training(tp), b->momentum, b->eps);
}

/* The checks and parameters shared by the convolution layers: weight
 * [out, in / groups, k...] (nk kernel sizes) and bias [out], uniform in
 * +-1/sqrt(fan_in) with fan_in = in / groups times the kernel sizes. */
static tn_status conv_params(const char *fn, tn_params *ps, const char *prefix, int64_t in,
                             int64_t out, int nk, const int64_t *k, const int64_t *geom,
                             int64_t groups, bool bias, tn_dtype dt, tn_rng *r, tn_tensor **weight,
                             tn_tensor **b)
{
    /* geom: nk strides, nk paddings, nk dilations */
    if (!ps || !r)
        return tn_set_error(TN_ERR_ARG, "%s: NULL parameter set or generator", fn);
    if (in < 1 || out < 1 || groups < 1 || in % groups || out % groups)
        return tn_set_error(TN_ERR_ARG,
                            "%s: channels in %lld and out %lld must be >= 1 and divisible by "
                            "groups %lld",
                            fn, (long long)in, (long long)out, (long long)groups);
    int64_t fan_in = in / groups;
    for (int i = 0; i < nk; i++) {
        if (k[i] < 1 || geom[i] < 1 || geom[nk + i] < 0 || geom[2 * nk + i] < 1)
            return tn_set_error(TN_ERR_ARG,
                                "%s: kernel %lld, stride %lld, padding %lld, dilation %lld "
                                "(kernel, stride and dilation must be >= 1, padding >= 0)",
                                fn, (long long)k[i], (long long)geom[i], (long long)geom[nk + i],
                                (long long)geom[2 * nk + i]);
        fan_in *= k[i];
    }
    int64_t shape[4] = {out, in / groups, k[0], nk > 1 ? k[1] : 1};
    *weight = tn_params_new(ps, prefix, "weight", dt, 2 + nk, shape);
    *b = bias ? tn_params_new(ps, prefix, "bias", dt, 1, &out) : NULL;
    if (!*weight || (bias && !*b))
        return tn_last_status();
    double bound = 1.0 / sqrt((double)fan_in); /* PyTorch: kaiming_uniform(a = sqrt(5)) */
    tn_tensor_uniform(*weight, r, -bound, bound);
    if (*b)
        tn_tensor_uniform(*b, r, -bound, bound);
    return TN_OK;
}

tn_status tn_conv2d_init(tn_conv2d_layer *l, tn_params *ps, const char *prefix, int64_t in,
                         int64_t out, int64_t kh, int64_t kw, const tn_conv2d_opts *o, bool bias,
                         tn_dtype dt, tn_rng *r)
{
    if (!l)
        return tn_set_error(TN_ERR_ARG, "tn_conv2d_init: NULL layer");
    tn_conv2d_opts d = o ? *o : tn_conv2d_defaults();
    *l = (tn_conv2d_layer){.in = in, .out = out, .kh = kh, .kw = kw, .opts = d};
    return conv_params(
        "tn_conv2d_init", ps, prefix, in, out, 2, (int64_t[]){kh, kw},
        (int64_t[]){d.stride_h, d.stride_w, d.padding_h, d.padding_w, d.dilation_h, d.dilation_w},
        d.groups, bias, dt, r, &l->weight, &l->bias);
}

tn_tensor *tn_conv2d_forward(tn_tape *tp, const tn_conv2d_layer *l, tn_tensor *x)
{
    return tn_conv2d(tp, x, l->weight, l->bias, &l->opts);
}

tn_status tn_conv1d_init(tn_conv1d_layer *l, tn_params *ps, const char *prefix, int64_t in,
                         int64_t out, int64_t kernel, int64_t stride, int64_t padding,
                         int64_t dilation, int64_t groups, bool bias, tn_dtype dt, tn_rng *r)
{
    if (!l)
        return tn_set_error(TN_ERR_ARG, "tn_conv1d_init: NULL layer");
    *l = (tn_conv1d_layer){.in = in,
                           .out = out,
                           .kernel = kernel,
                           .stride = stride,
                           .padding = padding,
                           .dilation = dilation,
                           .groups = groups};
    return conv_params("tn_conv1d_init", ps, prefix, in, out, 1, &kernel,
                       (int64_t[]){stride, padding, dilation}, groups, bias, dt, r, &l->weight,
                       &l->bias);
}

tn_tensor *tn_conv1d_forward(tn_tape *tp, const tn_conv1d_layer *l, tn_tensor *x)
{
    return tn_conv1d(tp, x, l->weight, l->bias, l->stride, l->padding, l->dilation, l->groups);
}

tn_status tn_embedding_init(tn_embedding *e, tn_params *ps, const char *prefix, int64_t num,
                            int64_t dim, int64_t padding_idx, tn_dtype dt, tn_rng *r)
{
    if (!e || !ps || !r || num < 1 || dim < 1 || padding_idx < -1 || padding_idx >= num)
        return tn_set_error(TN_ERR_ARG,
                            "tn_embedding_init: bad arguments (num %lld, dim %lld, padding_idx "
                            "%lld)",
                            (long long)num, (long long)dim, (long long)padding_idx);
    e->num = num;
    e->dim = dim;
    e->padding_idx = padding_idx;
    e->weight = tn_params_new(ps, prefix, "weight", dt, 2, (int64_t[]){num, dim});
    if (!e->weight)
        return tn_last_status();
    tn_tensor_normal(e->weight, r, 0.0, 1.0);
    if (padding_idx >= 0)
        for (int64_t j = 0; j < dim; j++)
            tn_tensor_set(e->weight, padding_idx * dim + j, 0.0);
    return TN_OK;
}

tn_tensor *tn_embedding_forward(tn_tape *tp, const tn_embedding *e, tn_tensor *ids)
{
    return tn_gather_rows(tp, e->weight, ids, e->padding_idx);
}
