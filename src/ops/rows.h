/* src/ops/rows.h - the point-wise row kernels of the recurrent cells (gate
 * math of LSTM, GRU and vanilla RNN, forward and backward), bias column
 * sums and the float max and exp loops of cross-entropy: written once, in
 * rows_impl.h, and compiled once per element type and kernel path:
 *
 *   rows_f32_avx512.c   float, x86-64-v4 (AVX-512, FMA)
 *   rows_f32_avx2.c     float, x86-64-v3 (AVX2, FMA)
 *   rows_f32_generic.c  float, the compiler's default target
 *   rows_f64.c          double (gradient checks), default target, libm
 *
 * tn__rows_get picks the table of the active kernel path (tn_isa_active).
 * Data pointers are void * of the table's element type. Within a row,
 * gate g of unit j of a gate buffer is at g*ga + j (ga: the gate stride);
 * the kernels handle units j < n. rows_naive.c holds plain double
 * references that the tests compare every table with.
 */
#ifndef TN_OPS_ROWS_H
#define TN_OPS_ROWS_H

#include "tensor/core.h"

/* The element-wise functions of the one-input ops (src/ops/unary.c). */
typedef enum tn__map {
    TN__MAP_SCALE,      /* a x */
    TN__MAP_NEG,        /* -x */
    TN__MAP_EXP,        /* e^x */
    TN__MAP_LOG,        /* ln x */
    TN__MAP_SIGMOID,    /* 1 / (1 + e^-x) */
    TN__MAP_TANH,       /* tanh x */
    TN__MAP_RELU,       /* max(x, 0), NaN passes */
    TN__MAP_LEAKY_RELU, /* x > 0 ? x : a x */
    TN__MAP_GELU,       /* x Phi(x), the exact (erf) form */
    TN__MAP_SILU,       /* x sigmoid(x) */
    TN__MAP_DROPOUT,    /* keep ? a x : 0 */
    TN__MAP_COUNT
} tn__map;

/* The two-input element-wise ops (src/ops/binary.c). */
typedef enum tn__zip { TN__ZIP_ADD, TN__ZIP_SUB, TN__ZIP_MUL, TN__ZIP_DIV, TN__ZIP_COUNT } tn__zip;

typedef struct tn__rows {
    /* LSTM step, units j < n. a: in, the gates' input parts (gate stride
     * ga); out, the activated gates i, f, g, o. bias (stride ga) and p
     * (the recurrent parts, gate stride gp) are added; cp [n] the previous
     * c -> c [n] = f cp + i g, h [n] = o tanh(c). */
    void (*lstm_fw)(int64_t n, int64_t ga, void *a, const void *bias, const void *p, int64_t gp,
                    const void *cp, void *h, void *c);
    /* LSTM backward, units j < n. a (stride ga): in, activated gates; out,
     * gradients of the pre-activations. c [n] this step's c, cp [n] the
     * previous; doh, doc [n] gradients of the step's outputs h and c. gh,
     * gc [n]: in, gradients reaching h and c from later steps; out, gh = 0
     * and gc = the gradient of cp. */
    void (*lstm_bw)(int64_t n, int64_t ga, void *a, const void *c, const void *cp, const void *doh,
                    const void *doc, void *gh, void *gc);
    /* GRU step, units j < n. a (stride ga): in, the input parts; out, r, z,
     * n. bx (stride ga): their bias; p (gate stride gp): the recurrent
     * parts without b_hn; bn [n] = b_hn; hp [n] previous h ->
     * q [n] = p_n + b_hn, h [n]: r = s(a_r + bx_r + p_r), z likewise,
     * n = tanh(a_n + bx_n + r q), h = (1 - z) n + z hp. */
    void (*gru_fw)(int64_t n, int64_t ga, void *a, const void *bx, const void *p, int64_t gp,
                   const void *bn, const void *hp, void *q, void *h);
    /* GRU backward, units j < n. a (stride ga): in r, z, n; out, the
     * gradients of the input parts. q [n]: in, p_n + b_hn; out, its
     * gradient. hp [n] previous h; doh [n] gradient of the output. gh [n]:
     * in, the gradient reaching h from later steps; out, dh z. dp (stride
     * ga) out: the gradient of p. */
    void (*gru_bw)(int64_t n, int64_t ga, void *a, void *q, const void *hp, const void *doh,
                   void *gh, void *dp);
    /* Vanilla RNN: h [n] = act(a + bias + p), act relu or tanh. */
    void (*rnn_fw)(int64_t n, const void *a, const void *bias, const void *p, bool relu, void *h);
    /* Its backward: a [n] := (doh + gh) act'(h); gh := 0. */
    void (*rnn_bw)(int64_t n, void *a, const void *h, const void *doh, bool relu, void *gh);
    /* One row of a one-input element-wise op: y [n] (contiguous) = f(x),
     * x [n] at stride ix; a is the op's scalar (scale's alpha,
     * leaky_relu's slope, dropout's 1/(1-p)); keep [n] dropout's mask
     * (NULL for the other functions). */
    void (*map_fw)(tn__map f, int64_t n, const void *x, int64_t ix, double a, const uint8_t *keep,
                   void *y);
    /* Its backward: dx [n] (stride ix, x's layout) += dy [n] f'(x), with x
     * at stride ix and y = f(x), dy contiguous. */
    void (*map_bw)(tn__map f, int64_t n, const void *x, int64_t ix, const void *y, const void *dy,
                   double a, const uint8_t *keep, void *dx);
    /* One row of a two-input op: y [n] (contiguous) = a op b, a and b at
     * strides ia, ib (0 where the operand broadcasts along the row). */
    void (*zip_fw)(tn__zip op, int64_t n, const void *a, int64_t ia, const void *b, int64_t ib,
                   void *y);
    /* Its backward into operand `which` (0: a, 1: b): dx [n] (stride ix)
     * += dy [n] d(a op b)/d(operand), dy contiguous. */
    void (*zip_bw)(tn__zip op, int which, int64_t n, const void *a, int64_t ia, const void *b,
                   int64_t ib, const void *dy, void *dx, int64_t ix);
    /* One row of softmax (log_out false) or log_softmax along it: y [n]
     * (stride iy) from x [n] (stride ix), the row maximum subtracted before
     * exp, the normaliser summed in double. */
    void (*softmax_fw)(int64_t n, const void *x, int64_t ix, bool log_out, void *y, int64_t iy);
    /* Its backward, from the output: dx [n] (stride ix) += y (dy - sum(dy
     * y)) for softmax, dy - exp(y) sum(dy) for log_softmax; y, dy [n] at
     * stride iy; sums in double. */
    void (*softmax_bw)(int64_t n, const void *y, const void *dy, int64_t iy, bool log_out, void *dx,
                       int64_t ix);
    /* One row of the masked softmax: y [n] (stride iy) = the softmax of
     * the x [n] (stride ix) whose keep [n] (stride iy) is nonzero, exactly
     * 0 where keep is 0 (all zeros when nothing is kept); the maximum of
     * the kept elements subtracted before exp, the normaliser in double. */
    void (*softmax_masked_fw)(int64_t n, const void *x, int64_t ix, const int32_t *keep, void *y,
                              int64_t iy);
    /* One row of mse: d = a - b, a and b [n] at strides ia, ib. With y
     * (contiguous [n], NULL for none) y = d^2 in the table's type; returns
     * sum d^2 formed in double from the operands in double (0 when y is
     * given). */
    double (*sqdiff_fw)(int64_t n, const void *a, int64_t ia, const void *b, int64_t ib, void *y);
    /* Its backward: dx [n] (stride ix) += g (a - b), times dy [n]
     * (contiguous) when dy is not NULL. */
    void (*sqdiff_bw)(int64_t n, double g, const void *dy, const void *a, int64_t ia, const void *b,
                      int64_t ib, void *dx, int64_t ix);
    /* out[j * os] += sum over rows i < rows of M[i * rs + j], j < n, summed
     * in row order whatever the thread count. */
    void (*colsum)(const void *M, int64_t rows, int64_t n, int64_t rs, void *out, int64_t os);
    /* float tables only (NULL in the double one), k < n: row_max, the
     * largest x[k] (n >= 1; NaNs after x[0] are passed over, as by
     * m = x[k] > m ? x[k] : m from m = x[0]); exp_sum, e[k] = exp(x[k] -
     * m) and their sum in double (in 16 interleaved partial sums: the same
     * on every path, not the sequential order); softmax_axpy, dx[k] += g
     * exp(x[k] - l). */
    float (*row_max)(int64_t n, const float *x);
    double (*exp_sum)(int64_t n, const float *x, float m, float *e);
    void (*softmax_axpy)(int64_t n, float g, const float *x, double l, float *dx);
    /* float tables only: the weight gradient of a stride-1, dilation-1
     * convolution (one image and group) as correlations, transposed, for
     * output channels o < Og, input channels c < Cg and taps p < KH, q < KW:
     *   dw[((p KW + q) Cg + c) ldw + o] += sum over m < n of
     *       dy[m ldd + o] xp[c ldx + p Wp + q + m]
     * where dy [n, ldd] holds dy^T with its output rows padded to the
     * input's padded row length Wp (so that one run of m covers every
     * output row; conv.c). ldd and ldw are multiples of 16 >= Og: columns
     * up to the next multiple of the path's vector width are read in dy
     * (zeros there) and written in dw (to be ignored). Reads xp up to
     * (Cg - 1) ldx + (KH - 1) Wp + KW - 2 + n. */
    void (*conv_dw)(int64_t Og, int64_t Cg, int64_t KH, int64_t KW, int64_t n, const float *dy,
                    int64_t ldd, const float *xp, int64_t ldx, int64_t Wp, float *dw, int64_t ldw);
    /* float tables only: a convolution's output as correlations,
     * transposed, for output channels o < Og and positions m < n:
     *   y[m ldy + o] = sum over taps k < Kc of x[off[k] + m] w[k ldw + o]
     * (conv.c: x the zero-padded input, off[k] the tap's offset in it, w
     * W^T). ldw and ldy are multiples of 16 >= Og, as for conv_dw
     * (columns up to the vector width written in y, to be ignored); the
     * positions go in blocks of 6, so n is rounded up to a multiple of 6
     * (conv.c leaves room in x and y). */
    void (*conv_fw)(int64_t Og, int64_t Kc, const int64_t *off, int64_t n, const float *x,
                    const float *w, int64_t ldw, float *y, int64_t ldy);
    /* float tables of the AVX2 and AVX-512 paths (NULL in the others,
     * which keep BLIS's micro-kernel): the products against a right
     * operand packed once (matmul_packed.c: the recurrent time loops,
     * matmul's packed weights),
     *   C[i ldc + j] := (+= when add) sum over k < K of A[i lda + k] W[k, j]
     * for i < M, j < N, with W [K, N] packed in panels of step_nb columns:
     * panel q at w + q pstride holds columns q step_nb .. + step_nb - 1 as
     * [K, step_nb] rows (zero beyond N). Writes only j < N. Any M: the
     * rows go in chunks of 64 against every panel. */
    void (*step_mul)(int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const float *w,
                     int64_t pstride, float *C, int64_t ldc, bool add);
    int step_nb;
    /* float tables only: dst[r dr + c] := src[c sr + r] (+= when add), r <
     * nr, c < nc (conv.c's transposes of dy, y and dx). */
    void (*transpose)(const float *src, int64_t sr, float *dst, int64_t dr, int64_t nr, int64_t nc,
                      bool add);
} tn__rows;

extern const tn__rows tn__rows_f32_avx512, tn__rows_f32_avx2, tn__rows_f32_generic, tn__rows_f64;

/* The row function of op (a TN_OP_ id): map_of gives TN__MAP_COUNT and
 * zip_of TN__ZIP_COUNT for an op that is not one of theirs. */
tn__map tn__map_of(int op);
tn__zip tn__zip_of(int op);

/* The table for dtype dt (TN_F32 or TN_F64) on the active kernel path. */
const tn__rows *tn__rows_get(tn_dtype dt);

/* Plain double references of the row kernels (rows_naive.c), for tests:
 * the same contracts on double data, scalar libm math, no restrict. */
extern const tn__rows tn__rows_naive;

#endif
