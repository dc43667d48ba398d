/* src/ops/unary.c - element-wise ops: scale, neg, exp, log, sigmoid, tanh,
 * relu, leaky_relu, gelu, silu, mask, dropout.
 *
 * x may be a strided view (a gate narrowed out of a [B, 4H] buffer, a
 * transpose); the result is contiguous with x's shape. Kernels walk x in the
 * 4-D frame of its shape: rows (dims 0..2) in parallel, the last dim inner
 * at x's own stride. The gradient of x has x's layout, so backward writes
 * dx at the same offsets it reads x from. Derivatives use the output y where
 * that is cheaper than recomputing from x: exp' = y, sigmoid' = y (1 - y),
 * tanh' = 1 - y^2, relu' = [y > 0].
 */
#include "ops_internal.h"
#include "rows.h"

/* The 4-D frame of x: sizes s, strides sx, rows = s0 s1 s2, n = s3. */
typedef struct frame {
    int64_t s[4], sx[4], rows, n;
} frame;

static frame frame_of(const tn_tensor *x)
{
    frame f;
    tn__frame(x->ndim, x->shape, f.s);
    tn__bstrides(x, x->ndim, x->shape, f.sx);
    f.rows = f.s[0] * f.s[1] * f.s[2];
    f.n = f.s[3];
    return f;
}

/* Forward of the one-input ops, a row at a time through the row kernels
 * of the active kernel path (rows.h: map_fw).
 * x [rows, n] strided (frame of x), y [rows, n] contiguous;
 * a: alpha (scale), negative_slope (leaky_relu), 1/(1-p) (dropout) or 1
 * (mask); keep [rows * n] contiguous (dropout and mask, which run as
 * TN__MAP_DROPOUT): 1 where the element survives. */
static void unary_forward(tn__map fn, tn_tensor *y, const tn_tensor *x, double a,
                          const uint8_t *keep)
{
    frame f = frame_of(x);
    int64_t rows = f.rows, n = f.n, ix = f.sx[3];
    const tn__rows *kr = tn__rows_get(y->dtype);
    size_t es = tn_dtype_size(y->dtype);
    TN_FTZ_SCOPE;
    TN_PAR_FOR(rows > 1 && rows * n > TN_PAR_MIN, r, 0, rows, {
        kr->map_fw(fn, n, (const char *)x->data + tn__row_off(r, f.s, f.sx) * (int64_t)es, ix, a,
                   keep ? keep + r * n : NULL, (char *)y->data + r * n * (int64_t)es);
    });
}

/* Backward of the one-input ops: dx += dy * dy/dx (rows.h: map_bw).
 * x, dx [rows, n] strided (frame of x); y, dy [rows, n] contiguous. When
 * dx is not cleared yet (tn_node.fresh; x is then contiguous), each block
 * of rows of dx is cleared right before its sums. */
static void unary_backward(tn_tensor *y)
{
    tn_tensor *x = tn__node(y)->src[0];
    if (!tn__wants(x))
        return;
    int op = tn__node(y)->op;
    double a = op == TN_OP_DROPOUT ? tn__node(y)->fparam[1] : tn__node(y)->fparam[0];
    const uint8_t *keep = tn__node(y)->aux;
    tn__map fn = op == TN_OP_MASK ? TN__MAP_DROPOUT : tn__map_of(op);
    frame f = frame_of(x);
    int64_t rows = f.rows, n = f.n, ix = f.sx[3];
    const tn__rows *kr = tn__rows_get(y->dtype);
    int64_t es = (int64_t)tn_dtype_size(y->dtype);
    bool clear = tn__fresh(y, 0);
    int64_t blk = TN_BW_BLOCK_BYTES / (n * es) + 1; /* rows per block */
    TN_FTZ_SCOPE;
    TN_PAR_FOR(rows > blk && rows * n > TN_PAR_MIN, q, 0, (rows + blk - 1) / blk, {
        int64_t r0 = q * blk, r1 = r0 + blk < rows ? r0 + blk : rows;
        if (clear) /* x contiguous: rows r0 .. r1 - 1 are one run */
            memset((char *)x->grad + r0 * n * es, 0, (size_t)((r1 - r0) * n * es));
        for (int64_t r = r0; r < r1; r++) {
            int64_t o = tn__row_off(r, f.s, f.sx) * es;
            kr->map_bw(fn, n, (const char *)x->data + o, ix, (const char *)y->data + r * n * es,
                       (const char *)y->grad + r * n * es, a, keep ? keep + r * n : NULL,
                       (char *)x->grad + o);
        }
    });
}

/* Builder of the one-input ops; when pname is given, the parameter a must
 * be finite. */
static tn_tensor *unary(tn_tape *tp, int op, tn_tensor *x, double a, const char *pname)
{
    if (!tn__check(tp, tn_op_name(op), 1, &x))
        return NULL;
    if (pname && !isfinite(a)) {
        tn_tape_fail(tp, TN_ERR_ARG, "%s: %s must be finite, got %g (input %s)", tn_op_name(op),
                     pname, a, TN_SHP(x));
        return NULL;
    }
    tn_tensor *y = tn__result(tp, op, x->dtype, x->ndim, x->shape, false, x, NULL, NULL);
    if (!y)
        return NULL;
    tn__node(y)->fparam[0] = a;
    unary_forward(tn__map_of(op), y, x, a, NULL);
    return tn__finish(tp, y);
}

tn_tensor *tn_scale(tn_tape *tp, tn_tensor *x, double alpha)
{
    return unary(tp, TN_OP_SCALE, x, alpha, "alpha");
}
tn_tensor *tn_neg(tn_tape *tp, tn_tensor *x) { return unary(tp, TN_OP_NEG, x, 0, NULL); }
tn_tensor *tn_exp(tn_tape *tp, tn_tensor *x) { return unary(tp, TN_OP_EXP, x, 0, NULL); }
tn_tensor *tn_log(tn_tape *tp, tn_tensor *x) { return unary(tp, TN_OP_LOG, x, 0, NULL); }
tn_tensor *tn_sigmoid(tn_tape *tp, tn_tensor *x) { return unary(tp, TN_OP_SIGMOID, x, 0, NULL); }
tn_tensor *tn_tanh(tn_tape *tp, tn_tensor *x) { return unary(tp, TN_OP_TANH, x, 0, NULL); }
tn_tensor *tn_relu(tn_tape *tp, tn_tensor *x) { return unary(tp, TN_OP_RELU, x, 0, NULL); }
tn_tensor *tn_leaky_relu(tn_tape *tp, tn_tensor *x, double negative_slope)
{
    return unary(tp, TN_OP_LEAKY_RELU, x, negative_slope, "negative_slope");
}
tn_tensor *tn_gelu(tn_tape *tp, tn_tensor *x) { return unary(tp, TN_OP_GELU, x, 0, NULL); }
tn_tensor *tn_silu(tn_tape *tp, tn_tensor *x) { return unary(tp, TN_OP_SILU, x, 0, NULL); }

/* Inverted dropout: keep[i] = (u_i >= p) with u_i drawn from the tape RNG in
 * row-major order (so the mask does not depend on x's strides, dtype or the
 * thread count); y = keep * x / (1 - p). The mask stays in the arena
 * (y->aux) for backward; fparam = {p, 1/(1-p)}. */
tn_tensor *tn_dropout(tn_tape *tp, tn_tensor *x, double p)
{
    if (!tn__check(tp, "dropout", 1, &x))
        return NULL;
    if (!(p >= 0 && p < 1)) {
        tn_tape_fail(tp, TN_ERR_ARG, "dropout: p must be in [0, 1), got %g (input %s)", p,
                     TN_SHP(x));
        return NULL;
    }
    if (p == 0 || !tn_tape_training(tp))
        return x;
    tn_tensor *y = tn__result(tp, TN_OP_DROPOUT, x->dtype, x->ndim, x->shape, false, x, NULL, NULL);
    if (!y)
        return NULL;
    int64_t n = tn_numel(x);
    uint8_t *keep = tn_tape_alloc(tp, (size_t)n);
    if (!keep)
        return NULL;
    tn_rng *rng = tn_tape_rng(tp);
    for (int64_t i = 0; i < n; i++)
        keep[i] = tn_rng_uniform(rng) >= p;
    tn__node(y)->aux = keep;
    tn__node(y)->fparam[0] = p;
    tn__node(y)->fparam[1] = 1.0 / (1.0 - p);
    unary_forward(TN__MAP_DROPOUT, y, x, tn__node(y)->fparam[1], keep);
    return tn__finish(tp, y);
}

/* Mask element at offset o (any dtype) as a flag. */
static inline bool mask_on(const tn_tensor *m, int64_t o)
{
    switch (m->dtype) {
    case TN_F32: return ((const float *)m->data)[o] != 0;
    case TN_F64: return ((const double *)m->data)[o] != 0;
    default: return ((const int32_t *)m->data)[o] != 0;
    }
}

/* keep [rows, n] (contiguous, x's frame) = m != 0, m broadcast into the
 * frame of x (stride 0 along its size-1 dims). */
static void mask_flags(uint8_t *keep, const tn_tensor *x, const tn_tensor *m)
{
    frame f = frame_of(x);
    int64_t sm[4];
    tn__bstrides(m, x->ndim, x->shape, sm);
    for (int64_t r = 0; r < f.rows; r++) {
        int64_t om = tn__row_off(r, f.s, sm);
        for (int64_t j = 0; j < f.n; j++)
            keep[r * f.n + j] = mask_on(m, om + j * sm[3]);
    }
}

/* The mask is passed to tn__result as no input, so a float mask that
 * happens to require grad neither makes y require grad nor receives a
 * gradient. It is read once into flags (y->aux, like dropout's), and y =
 * keep ? 1 x : 0 and its backward run as dropout's row kernels with scale
 * 1 (fparam[0]), which is exact. */
tn_tensor *tn_mask(tn_tape *tp, tn_tensor *x, tn_tensor *mask)
{
    if (!tn__check(tp, "mask", 1, &x))
        return NULL;
    if (!mask) {
        tn_tape_fail(tp, TN_ERR_ARG, "mask: mask is NULL (x %s)", TN_SHP(x));
        return NULL;
    }
    if (mask->dtype != TN_F32 && mask->dtype != TN_F64 && mask->dtype != TN_I32) {
        tn_tape_fail(tp, TN_ERR_DTYPE, "mask: mask has unknown dtype %d", (int)mask->dtype);
        return NULL;
    }
    bool fits = mask->ndim <= x->ndim;
    for (int k = 0; fits && k < mask->ndim; k++) {
        int64_t ms = mask->shape[mask->ndim - 1 - k], xs = x->shape[x->ndim - 1 - k];
        fits = ms == 1 || ms == xs;
    }
    if (!fits) {
        tn_tape_fail(tp, TN_ERR_SHAPE, "mask: mask %s does not broadcast to x %s", TN_SHP(mask),
                     TN_SHP(x));
        return NULL;
    }
    tn_tensor *y = tn__result(tp, TN_OP_MASK, x->dtype, x->ndim, x->shape, false, x, NULL, NULL);
    uint8_t *keep = y ? tn_tape_alloc(tp, (size_t)tn_numel(x)) : NULL;
    if (!keep)
        return NULL;
    mask_flags(keep, x, mask);
    tn__node(y)->aux = keep;
    tn__node(y)->fparam[0] = 1;
    unary_forward(TN__MAP_DROPOUT, y, x, 1, keep);
    return tn__finish(tp, y);
}

void tn__bw_scale(tn_tensor *y) { unary_backward(y); }
void tn__bw_neg(tn_tensor *y) { unary_backward(y); }
void tn__bw_exp(tn_tensor *y) { unary_backward(y); }
void tn__bw_log(tn_tensor *y) { unary_backward(y); }
void tn__bw_sigmoid(tn_tensor *y) { unary_backward(y); }
void tn__bw_tanh(tn_tensor *y) { unary_backward(y); }
void tn__bw_relu(tn_tensor *y) { unary_backward(y); }
void tn__bw_leaky_relu(tn_tensor *y) { unary_backward(y); }
void tn__bw_gelu(tn_tensor *y) { unary_backward(y); }
void tn__bw_silu(tn_tensor *y) { unary_backward(y); }
void tn__bw_dropout(tn_tensor *y) { unary_backward(y); }

void tn__bw_mask(tn_tensor *y) { unary_backward(y); }
