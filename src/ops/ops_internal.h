/* src/ops/ops_internal.h - what every op family file uses: the op table
 * entry type, builder helpers, and strided/broadcast iteration. */
#ifndef TN_OPS_INTERNAL_H
#define TN_OPS_INTERNAL_H

#include "../core/internal.h"
#include "tensor/ops.h"

#include <tgmath.h>

/* Backward of an op: y->grad holds dL/dy; add (+=) dL/dsrc into the grad of
 * every src that has requires_grad set (its grad is allocated). */
typedef void (*tn_backward_fn)(tn_tensor *y);

typedef struct tn_op_def {
    const char *name;
    tn_backward_fn backward; /* NULL for views: their grad aliases the base's */
} tn_op_def;

extern const tn_op_def tn__op_table[TN_OP_COUNT];

/* linear_cross_entropy's largest block of logits, in bytes (32 MiB; see
 * linear_loss.c). Tests lower it, before recording, to get several blocks
 * from small shapes; nothing else writes it. */
extern int64_t tn__lce_block_bytes;

/* The backward of every op that has one, tn__bw_<name> in its family file
 * (tensor/op_list.h). */
#define TN__OP_BACKWARD(id, name, backward) void backward(tn_tensor *y);
#define TN__OP_NO_BACKWARD(id, name, backward)
TN_OP_LIST(TN__OP_BACKWARD, TN__OP_NO_BACKWARD)
#undef TN__OP_BACKWARD
#undef TN__OP_NO_BACKWARD

/* Validate the tape and n inputs of op `name`: false (quietly) if the tape
 * already failed or an input is NULL after a failure; false with an error if
 * an input is NULL otherwise, or the float inputs' dtypes differ or are not
 * float. Inputs given as NULL in xs positions >= n are not checked. */
bool tn__check(tn_tape *tp, const char *name, int n, tn_tensor *const *xs);

/* New contiguous result of op with the given shape (uninitialised data;
 * zeroed when zero is true). requires_grad is set and the node recorded
 * when gradients are enabled and a float src requires grad. NULL on OOM. */
tn_tensor *tn__result(tn_tape *tp, int op, tn_dtype dt, int ndim, const int64_t *shape, bool zero,
                      tn_tensor *a, tn_tensor *b, tn_tensor *c);

/* The same with n (<= TN_MAX_SRC) inputs srcs[0..n-1], some maybe NULL. */
tn_tensor *tn__result_n(tn_tape *tp, int op, tn_dtype dt, int ndim, const int64_t *shape, bool zero,
                        int n, tn_tensor *const *srcs);

/* New view of base (shares data; grad aliases base's at backward). */
tn_tensor *tn__view(tn_tape *tp, int op, tn_tensor *base, int ndim, const int64_t *shape,
                    const int64_t *stride, int64_t offset);

/* A GEMM operand: an m x n matrix at p with element strides rs, cs. */
typedef struct tn__mat {
    void *p;
    int64_t m, n, rs, cs;
} tn__mat;

/* The transpose of x: the same memory with dims and strides swapped. */
static inline tn__mat tn__mat_t(tn__mat x) { return (tn__mat){x.p, x.n, x.m, x.cs, x.rs}; }

/* Whether BLIS takes x's strides (positive, one of them spanning the
 * other dim; size-1 dims are free), as tn__gemm needs of every operand. */
bool tn__mat_ok(tn__mat x);

/* C [m, n] := beta*C + A [m, k] @ B [k, n] through BLIS, all strided, dtype
 * dt; on one thread when small (src/ops/matmul.c). Serial code only. */
void tn__gemm(tn_dtype dt, tn__mat A, tn__mat B, double beta, tn__mat C);
/* The same on nthreads BLIS threads (0: as tn__gemm chooses). With 1 it may
 * be called inside an OpenMP parallel region, one GEMM per thread. */
void tn__gemm_on(tn_dtype dt, tn__mat A, tn__mat B, double beta, tn__mat C, int nthreads);

/* A right operand W [K, N] packed once for many small products
 * C [M, N] (+)= A [M, K] @ W on BLIS's native micro-kernel of the active
 * configuration (src/ops/matmul_packed.c). Use: tn__packed_geometry, then
 * point w at tn__packed_bytes (64-byte aligned), tn__packed_zero,
 * tn__packed_set the columns; tn__packed_mul may then run on any thread
 * (one product per thread; it does not start threads), each with its own
 * scratch of tn__packed_scratch_bytes(p, M) (64-byte aligned). */
struct tn__rows; /* rows.h: the kernel tables */
typedef struct tn__packed {
    tn_dtype dt;
    int64_t K, N;
    int pw, pa; /* W panel width, A panel height */
    bool rows;  /* the micro-kernel prefers row-stored C */
    void (*ukr)(void);
    void *cntx;
    /* not NULL: tn__packed_mul runs this kernel table's step_mul (rows.h)
     * instead of BLIS's micro-kernel, with panels of pw = its step_nb */
    const struct tn__rows *step;
    void *w; /* the packed panels */
} tn__packed;
void tn__packed_geometry(tn__packed *p, tn_dtype dt, int64_t K, int64_t N);
/* The same for an operand used only through tn__packed_mul (the recurrent
 * time loops, matmul's packed weights): on a path whose kernel table has
 * step_mul (float, AVX2 and AVX-512) the products run on it, else on
 * BLIS's micro-kernel. The table is the one active now; the operand keeps
 * its kernel. */
void tn__packed_geometry_step(tn__packed *p, tn_dtype dt, int64_t K, int64_t N);
int64_t tn__packed_bytes(const tn__packed *p);
int64_t tn__packed_scratch_bytes(const tn__packed *p, int64_t M);
void tn__packed_zero(tn__packed *p);
/* Columns c0 .. c0 + cols of W from S [K, cols], element (i, c) at
 * S[i*rs + c*cs]. */
void tn__packed_set(tn__packed *p, int64_t c0, int64_t cols, const void *S, int64_t rs, int64_t cs);
/* The panels q0 .. q1 - 1 of p (its columns q0*pw up to min(q1*pw, N)) as
 * a packed operand of their own that shares p's memory: one thread's part
 * of a product split by columns. */
tn__packed tn__packed_part(const tn__packed *p, int64_t q0, int64_t q1);
/* Bytes of one of p's pw-column panels (K values per column). */
int64_t tn__packed_panel_bytes(const tn__packed *p);
/* A [M, K] (element (i, k) at A[i*rs + k*cs]) into p's pa-row panels at
 * dst (tn__packed_scratch_bytes(p, M), 64-byte aligned), rows beyond M
 * zero. */
void tn__packed_pack_left(const tn__packed *p, int64_t M, const void *A, int64_t rs, int64_t cs,
                          void *dst);
/* C [M, n] (ldc) := (or += when acc) the packed left operand a (M rows,
 * tn__packed_pack_left) @ one pw-column panel w holding n <= pw columns
 * (K values per column, columns beyond n zero); next_w: the panel the
 * caller multiplies next (a prefetch hint). */
void tn__packed_panel_mul(const tn__packed *p, int64_t M, const void *a, const void *w, int64_t n,
                          void *C, int64_t ldc, bool acc, const void *next_w);
/* C [M, N] (ldc) := A [M, K] (lda) @ W, or += when acc. */
void tn__packed_mul(const tn__packed *p, int64_t M, const void *A, int64_t lda, void *C,
                    int64_t ldc, bool acc, void *scratch);
/* Its plain reference (tests): C [M, N] (+)= A [M, K] @ W [K, N] with W's
 * element (k, j) at W[k*rs + j*cs], in double. */
void tn__gemm_naive(tn_dtype dt, int64_t M, int64_t N, int64_t K, const void *A, int64_t lda,
                    const void *W, int64_t rs, int64_t cs, void *C, int64_t ldc, bool acc);

/* Whether t is, or is a view of, a parameter (a heap tensor requiring
 * grad): a right operand that matmul packs once per recording. */
bool tn__is_weight(const tn_tensor *t);
/* C [M, N] (row stride, unit columns) := (or += when acc) A [M, K] (row
 * stride, unit columns) @ B with B a weight operand packed once per
 * recording in tp's op cache, rows (step_mul) or columns split over the
 * threads; false when the shapes do not suit the packed path (use
 * tn__gemm) or the arena is out of memory. Called inside a parallel region
 * it runs on the calling thread; it allocates from tp, so one thread at a
 * time (src/ops/matmul.c). */
bool tn__packed_product(tn_tape *tp, tn_dtype dt, tn__mat A, tn__mat B, tn__mat C, bool acc);

/* The packed operand of B [K, N], a weight operand, from tp's op cache
 * (packed on first use in this recording), and in *scratch nt buffers for
 * a left operand of up to M rows each, one per thread; NULL when the
 * shapes do not suit the packed path or the arena is out of memory.
 * Serial code; threads then call tn__packed_mul on it, each with its own
 * rows and scratch (src/ops/matmul.c). */
const tn__packed *tn__packed_weight(tn_tape *tp, tn_dtype dt, tn__mat B, int64_t M, int nt,
                                    void *const **scratch);

/* The geometry of a 2-D convolution (src/ops/conv.c): x [B, C, H, W],
 * weight [O, C / G, KH, KW], y [B, O, OH, OW]; strides, paddings,
 * dilations, groups. A conv2d node keeps it in aux. */
typedef struct tn__conv_geom {
    int64_t B, C, H, W, O, KH, KW, OH, OW;
    int64_t sh, sw, ph, pw, dh, dw, G;
} tn__conv_geom;
/* The plain direct-loop twins of conv2d's kernels (tests), all buffers
 * contiguous in the layouts above, sums in double:
 *   y := conv(x, w) + b (b [O] or NULL);
 *   dx += d/dx, dw += d/dw, db += d/db of sum(dy * y) (each may be NULL). */
void tn__conv2d_naive(tn_dtype dt, const tn__conv_geom *g, const void *x, const void *w,
                      const void *b, void *y);
void tn__conv2d_backward_naive(tn_dtype dt, const tn__conv_geom *g, const void *x, const void *w,
                               const void *dy, void *dx, void *dw, void *db);

/* The tensors a scan node's backward adds into (src/ops/scan.c). */
void tn__scan_inputs(const tn_tensor *y, tn_tensor *const **list, int *n);

/* Watch mode: fail the tape if y has a non-finite value. Returns y or NULL. */
tn_tensor *tn__finish(tn_tape *tp, tn_tensor *y);

/* Normalise dim (negative counts from the end) against ndim; -1 if out of
 * range. */
int tn__dim(int dim, int ndim);
/* Same for a dim of x in op `name`; out of range fails the tape with a
 * message naming the op, the dim and x's shape, and returns -1. */
int tn__dim_of(tn_tape *tp, const char *name, int dim, const tn_tensor *x);

/* Broadcast a and b (numpy rules); false when they do not broadcast. */
bool tn__broadcast_shape(const tn_tensor *a, const tn_tensor *b, int *nd, int64_t shape[4]);

/* Right-align shape (nd dims) into a 4-D frame s (leading 1s). */
void tn__frame(int nd, const int64_t *shape, int64_t s[4]);
/* Strides of t in the 4-D frame of an output of nd dims and shape (right
 * aligned); 0 where t is broadcast (its size is 1 or it lacks the dim). */
void tn__bstrides(const tn_tensor *t, int nd, const int64_t *shape, int64_t st[4]);
/* True when st broadcasts along some dim of frame s with size > 1. */
bool tn__is_broadcast(const int64_t st[4], const int64_t s[4]);

/* Split x at dim d: the other dims right-aligned into a 3-D frame s[0..2]
 * (leading 1s) with x's strides st[0..2]; s[3] = 1, st[3] = 0; *n and *sn
 * get the size and stride of dim d. Row r of the frame (row-major over the
 * kept dims, which is also a contiguous result's order) starts at
 * tn__row_off(r, s, st). Used by reductions and softmax along a dim. */
void tn__split_dim(const tn_tensor *x, int d, int64_t s[4], int64_t st[4], int64_t *n, int64_t *sn);

/* Element offset of row r (over dims 0..2 of frame s) for strides st. */
static inline int64_t tn__row_off(int64_t r, const int64_t s[4], const int64_t st[4])
{
    int64_t i2 = r % s[2], q = r / s[2];
    int64_t i1 = q % s[1], i0 = q / s[1];
    return i0 * st[0] + i1 * st[1] + i2 * st[2];
}

/* A float tensor's data or gradient as T * (T from TN_FOR_DTYPE). */
#define TN_DATA(T, t) ((T *)(t)->data)
#define TN_GRAD(T, t) ((T *)(t)->grad)

/* Whether a src wants a gradient (grad buffer allocated by the engine). */
static inline bool tn__wants(const tn_tensor *x) { return x && x->requires_grad && x->grad; }

/* Whether y's backward must clear (or wholly write) src[k]'s gradient
 * itself: the engine left it uncleared (tn_node.fresh, set only for the
 * ops of backward.c's clears_inputs). */
static inline bool tn__fresh(const tn_tensor *y, int k) { return (tn__node(y)->fresh >> k) & 1; }

/* Bytes per block of rows of an element-wise backward: a block of an
 * input's gradient is cleared (when the engine left that to the kernel,
 * tn_node.fresh) and then added into while it is in L1. */
#define TN_BW_BLOCK_BYTES 16384

/* Format a shape for messages: SHP(t) expands to a temporary buffer. */
#define TN_SHP(t) tn_shape_str((t), (char[64]){0}, 64)

#endif
