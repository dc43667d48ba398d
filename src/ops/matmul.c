/* src/ops/matmul.c - matmul, bmm, addmm through BLIS's typed GEMM.
 *
 * Every product is one call (per batch) of bli_sgemm / bli_dgemm,
 *   C := beta*C + alpha*A*B,
 * with general row and column strides for each operand, so transposed views
 * (a stride swap) and narrowed views (a row stride larger than the row) go
 * to BLIS without copies. Backward accumulates straight into the gradients
 * with beta = 1:
 *   dA += dC @ B^T,   dB += A^T @ dC
 * where B^T and A^T are the same memory with m/n and rs/cs swapped.
 *
 * BLIS is only ever called from serial code (never inside an OpenMP
 * region): it runs its own threads, set by the runtime (src/core/runtime.c).
 */
#include "ops_internal.h"
#include "rows.h"

#include <blis.h>
#include <omp.h>
#include <pthread.h>
#include <stdlib.h>

/* Dims d, d+1 of t's data (or grad, when grad is true) at element offset
 * off, as an m x n matrix. */
static tn__mat mat_of(const tn_tensor *t, int d, int64_t off, bool grad)
{
    char *base = grad ? t->grad : t->data;
    tn__mat x = {base + off * (int64_t)tn_dtype_size(t->dtype), t->shape[d], t->shape[d + 1],
                 t->stride[d], t->stride[d + 1]};
    return x;
}

/* The stride of a size-1 dim is arbitrary in a tensor (it is never used to
 * step), but BLIS checks it: replace it with one that passes. */
static void mat_canon(tn__mat *x)
{
    if (x->m == 1 && x->n == 1) {
        x->rs = x->cs = 1;
    } else if (x->m == 1) {
        x->rs = x->n * x->cs;
    } else if (x->n == 1) {
        x->cs = x->m * x->rs;
    }
}

/* BLIS's stride rule (bli_check_matrix_strides): no zero strides, and one
 * stride must step over the whole extent of the other dim. Views made by
 * transpose and narrow of contiguous tensors always satisfy it. */
static bool mat_ok(tn__mat x)
{
    mat_canon(&x);
    if (x.rs <= 0 || x.cs <= 0)
        return false;
    if (x.m == 1 || x.n == 1)
        return true;
    return x.rs >= x.n * x.cs || x.cs >= x.m * x.rs;
}

bool tn__mat_ok(tn__mat x) { return mat_ok(x); }

/* Products below this many multiply-adds run on one thread: BLIS's
 * per-call thread start-up costs more than it saves on them (and stalls
 * badly when the machine is loaded), and an RNN makes many such calls. */
#define TN_GEMM_PAR_MIN ((int64_t)1 << 22)

/* C [m, n] := beta*C + A [m, k] @ B [k, n]; all strided, dtype dt. */
void tn__gemm_on(tn_dtype dt, tn__mat A, tn__mat B, double beta, tn__mat C, int nthreads)
{
    TN_FTZ_SCOPE;
    mat_canon(&A);
    mat_canon(&B);
    mat_canon(&C);
    rntm_t rntm;
    bli_rntm_init(&rntm);
    if (nthreads < 1)
        nthreads = C.m * C.n * A.n < TN_GEMM_PAR_MIN ? 1 : tn__threads_now();
    bli_rntm_set_num_threads(nthreads, &rntm);
    if (dt == TN_F32) {
        float one = 1.0f, be = (float)beta;
        bli_sgemm_ex(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, (dim_t)C.m, (dim_t)C.n, (dim_t)A.n, &one,
                     A.p, (inc_t)A.rs, (inc_t)A.cs, B.p, (inc_t)B.rs, (inc_t)B.cs, &be, C.p,
                     (inc_t)C.rs, (inc_t)C.cs, NULL, &rntm);
    } else {
        double one = 1.0, be = beta;
        bli_dgemm_ex(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, (dim_t)C.m, (dim_t)C.n, (dim_t)A.n, &one,
                     A.p, (inc_t)A.rs, (inc_t)A.cs, B.p, (inc_t)B.rs, (inc_t)B.cs, &be, C.p,
                     (inc_t)C.rs, (inc_t)C.cs, NULL, &rntm);
    }
}

void tn__gemm(tn_dtype dt, tn__mat A, tn__mat B, double beta, tn__mat C)
{
    tn__gemm_on(dt, A, B, beta, C, 0);
}

/* ---- products against a reused weight ----
 *
 * A recurrent model multiplies by the same weight at every step (h U^T for
 * a per-step h). BLIS would pack U again at each of those calls; here the
 * right operand, when it is a parameter (or a view of one), is packed once
 * per recording into the micro-panels of BLIS's own micro-kernel
 * (matmul_packed.c) and kept in the tape's op cache, which is forgotten
 * when the parameters may change (tn_tape_reset, the start and end of a
 * backward). The columns are split over the threads at panel edges, so
 * every element is computed the same way whatever the thread count. */

/* Left operands up to this many rows take the packed path (a step's
 * batch); larger ones amortise BLIS's own packing. Inner sizes up to
 * TN_PACKED_MAX_K (the left operand's panel is K values per row and is
 * not blocked over K). */
#define TN_PACKED_MAX_M   256
#define TN_PACKED_MAX_K   2048
/* Products below this many multiply-adds stay on one thread. */
#define TN_PACKED_PAR_MIN ((int64_t)1 << 18)

typedef struct wpack {
    struct wpack *next;
    const void *src; /* the operand's first element */
    int64_t rs, cs;  /* and its strides */
    tn__packed p;    /* dtype, K, N and the panels */
    void **scratch;  /* per thread: space to pack a left operand of up to m rows */
    int64_t scratch_m;
    int nt;
} wpack;

/* A postponed accumulating product C [m, n] += L [m, k] @ R [k, n]
 * (strided element pointers) into owner's gradient (see defer_push). */
typedef struct tn_defer {
    tn_tensor *owner; /* whose gradient C is in (its root tensor) */
    void *c, *l, *r;
    int64_t m, n, k;
    int64_t crs, ccs, lrs, lcs, rrs, rcs;
    tn_dtype dtype;
} tn_defer;

/* What matmul keeps on a tape (its op cache, arena memory): the packed
 * weights of this recording, and during a backward the postponed weight
 * products. */
typedef struct mm_cache {
    wpack *packs;
    tn_defer *q;
    size_t n, cap;
} mm_cache;

static mm_cache *mm_of(tn_tape *tp)
{
    if (!tp->op_cache && (tp->op_cache = tn_tape_alloc(tp, sizeof(mm_cache))))
        memset(tp->op_cache, 0, sizeof(mm_cache));
    return tp->op_cache;
}

/* Whether t is, or is a view of, a parameter: a heap tensor that requires
 * grad, whose data only an optimizer step or the user changes between
 * recordings. */
bool tn__is_weight(const tn_tensor *t)
{
    while (tn__node(t)->is_view)
        t = tn__node(t)->src[0];
    return tn__node(t)->on_heap && t->requires_grad;
}

/* The packing of B (K x N at p with strides rs, cs) in tp's cache, made on
 * first use, with scratch for a left operand of M rows on nt threads; NULL
 * when out of arena memory (the tape has the error). */
static wpack *wpack_get(tn_tape *tp, tn_dtype dt, tn__mat B, int64_t M, int nt)
{
    mm_cache *mc = mm_of(tp);
    if (!mc)
        return NULL;
    wpack *w = mc->packs;
    while (w && !(w->src == B.p && w->rs == B.rs && w->cs == B.cs && w->p.K == B.m &&
                  w->p.N == B.n && w->p.dt == dt))
        w = w->next;
    if (!w) {
        if (!(w = tn_tape_alloc(tp, sizeof *w)))
            return NULL;
        memset(w, 0, sizeof *w);
        tn__packed_geometry_step(&w->p, dt, B.m, B.n);
        if (!(w->p.w = tn_tape_alloc(tp, (size_t)tn__packed_bytes(&w->p))))
            return NULL;
        tn__packed_zero(&w->p);
        tn__packed_set(&w->p, 0, B.n, B.p, B.rs, B.cs);
        w->src = B.p, w->rs = B.rs, w->cs = B.cs;
        w->next = mc->packs;
        mc->packs = w;
    }
    if (M > w->scratch_m || nt > w->nt) {
        int n = nt > w->nt ? nt : w->nt;
        int64_t m = M > w->scratch_m ? M : w->scratch_m;
        void **sc = tn_tape_alloc(tp, sizeof *sc * (size_t)n);
        if (!sc)
            return NULL;
        for (int k = 0; k < n; k++)
            if (!(sc[k] = tn_tape_alloc(tp, (size_t)tn__packed_scratch_bytes(&w->p, m))))
                return NULL;
        w->scratch = sc, w->scratch_m = m, w->nt = n;
    }
    return w;
}

/* With the kernel path's step_mul (float, AVX2 and AVX-512), which reads
 * the left operand in place, the packed path also takes left operands of
 * more rows when the packed weight is at most this many bytes (it stays
 * in L2 while step_mul runs each thread's rows through it, a chunk at a
 * time): an output layer's [B*T, H] @ [H, V] for a small V, an input
 * projection. */
#define TN_PACKED_ROWS_MAX_W (512 * 1024)

/* C [M, N] (row stride ldc, unit columns) := (or += when acc) A [M, K]
 * (row stride lda, unit columns) @ B, B a weight operand, on the packed
 * path when the shapes suit it. Returns false when they do not (the caller
 * uses BLIS) or the arena is out of memory. The threads split the rows
 * (step_mul, at least 8 each, at multiples of 8) or else the columns (at
 * panel edges); either way an element's sum is the same whatever the
 * thread count. */
bool tn__packed_product(tn_tape *tp, tn_dtype dt, tn__mat A, tn__mat B, tn__mat C, bool acc)
{
    int64_t M = C.m, N = C.n, K = A.n;
    bool step = tn__rows_get(dt)->step_mul != NULL;
    if (K > TN_PACKED_MAX_K || (A.cs != 1 && K > 1) || (C.cs != 1 && N > 1))
        return false;
    if (M > TN_PACKED_MAX_M && (!step || K * N * (int64_t)tn_dtype_size(dt) > TN_PACKED_ROWS_MAX_W))
        return false;
    /* inside a parallel region (the recurrent op's paired products), on
     * the calling thread */
    int nt = M * N * K >= TN_PACKED_PAR_MIN && !omp_in_parallel() ? tn__threads_now() : 1;
    wpack *w = wpack_get(tp, dt, B, M, nt);        /* step_mul's scratch is 64 bytes */
    if (!w || (M > TN_PACKED_MAX_M && !w->p.step)) /* packed before on another path */
        return false;
    bool by_rows = w->p.step && M >= 8 * (int64_t)nt;
    int64_t panels = (N + w->p.pw - 1) / w->p.pw;
    if (!by_rows && nt > panels)
        nt = (int)panels;
    int64_t lda = M > 1 ? A.rs : K, ldc = M > 1 ? C.rs : N;
    size_t es = tn_dtype_size(dt);
    TN_FTZ_SCOPE;
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        /* the team's own size: fewer threads than asked (nested in a
         * parallel region, a thread limit) still cover every row/column */
        int k = nt > 1 ? omp_get_thread_num() : 0, nk = nt > 1 ? omp_get_num_threads() : 1;
        if (by_rows) { /* thread k: rows [r0, r1) */
            int64_t r0 = M / 8 * k / nk * 8, r1 = k == nk - 1 ? M : M / 8 * (k + 1) / nk * 8;
            tn__packed_mul(&w->p, r1 - r0, (const char *)A.p + (size_t)(r0 * lda) * es, lda,
                           (char *)C.p + (size_t)(r0 * ldc) * es, ldc, acc, w->scratch[k]);
        } else { /* thread k: panels [q0, q1), a contiguous run of w's panels */
            int64_t q0 = panels * k / nk, q1 = panels * (k + 1) / nk;
            tn__packed part = tn__packed_part(&w->p, q0, q1);
            if (part.N > 0)
                tn__packed_mul(&part, M, A.p, lda, (char *)C.p + (size_t)(q0 * w->p.pw) * es, ldc,
                               acc, w->scratch[k]);
        }
    }
    return true;
}

const tn__packed *tn__packed_weight(tn_tape *tp, tn_dtype dt, tn__mat B, int64_t M, int nt,
                                    void *const **scratch)
{
    if (M > TN_PACKED_MAX_M || B.m > TN_PACKED_MAX_K)
        return NULL;
    wpack *w = wpack_get(tp, dt, B, M, nt);
    if (!w)
        return NULL;
    *scratch = w->scratch;
    return &w->p;
}

/* ---- checks shared by the builders ---- */

/* Both operands' matrices (dims d, d+1) must be passable to BLIS. Gradients
 * share the data layout, so this also covers backward. */
static bool layout_ok(tn_tape *tp, const char *op, const char *which, const tn_tensor *t, int d)
{
    if (mat_ok(mat_of(t, d, 0, false)))
        return true;
    tn_tape_fail(tp, TN_ERR_ARG,
                 "%s: %s %s has strides (%lld, %lld) that BLIS cannot take; make it contiguous "
                 "first (tn_contiguous)",
                 op, which, TN_SHP(t), (long long)t->stride[d], (long long)t->stride[d + 1]);
    return false;
}

/* a [M, K] @ b [K, N] shape check for op (matmul, addmm). */
static bool check_2d(tn_tape *tp, const char *op, const tn_tensor *a, const tn_tensor *b)
{
    if (a->ndim != 2 || b->ndim != 2) {
        tn_tape_fail(tp, TN_ERR_SHAPE, "%s: operands must be 2-D, got a %s @ b %s", op, TN_SHP(a),
                     TN_SHP(b));
        return false;
    }
    if (a->shape[1] != b->shape[0]) {
        tn_tape_fail(tp, TN_ERR_SHAPE, "%s: inner dims differ: a %s @ b %s", op, TN_SHP(a),
                     TN_SHP(b));
        return false;
    }
    return layout_ok(tp, op, "a", a, 0) && layout_ok(tp, op, "b", b, 0);
}

/* ---- matmul ---- */

tn_tensor *tn_matmul(tn_tape *tp, tn_tensor *a, tn_tensor *b)
{
    tn_tensor *in[2] = {a, b};
    if (!tn__check(tp, "matmul", 2, in) || !check_2d(tp, "matmul", a, b))
        return NULL;
    int64_t shape[2] = {a->shape[0], b->shape[1]};
    tn_tensor *y = tn__result(tp, TN_OP_MATMUL, a->dtype, 2, shape, false, a, b, NULL);
    if (!y)
        return NULL;
    /* y [M, N] := a [M, K] @ b [K, N]; beta = 0 never reads y's memory */
    tn__mat A = mat_of(a, 0, 0, false), B = mat_of(b, 0, 0, false), Y = mat_of(y, 0, 0, false);
    if (!(tn__is_weight(b) && tn__packed_product(tp, y->dtype, A, B, Y, false)))
        tn__gemm(y->dtype, A, B, 0.0, Y);
    return tn__finish(tp, y);
}

/* Weight gradients are deferred: a recurrent layer multiplies by the same
 * weight at every timestep, so backward would make T small products
 * dW += h_t^T dpre_t of inner size B. Large contributions are collected
 * instead and run as one product of inner size T*B (oneDNN's merged weight
 * GEMM), near peak speed. This is safe because a tensor's gradient is only
 * read by its own backward: the engine flushes a tensor's pending products
 * right before that runs (and a parameter's at the end). */
static void matmul_flush(tn_tape *tp, tn_tensor *owner);

static bool defer_push(tn_tape *tp, tn_tensor *owner, tn_dtype dt, tn__mat l, tn__mat r, tn__mat c)
{
    mm_cache *mc = mm_of(tp);
    if (!mc)
        return false;
    if (mc->n == mc->cap) { /* grows in the arena, which settles after warm-up */
        size_t cap = mc->cap ? 2 * mc->cap : 64;
        tn_defer *d = tn_tape_alloc(tp, cap * sizeof *d);
        if (!d)
            return false;
        if (mc->n)
            memcpy(d, mc->q, mc->n * sizeof *d);
        mc->q = d;
        mc->cap = cap;
    }
    mc->q[mc->n++] =
        (tn_defer){owner, c.p, l.p, r.p, c.m, c.n, l.n, c.rs, c.cs, l.rs, l.cs, r.rs, r.cs, dt};
    tp->flush = matmul_flush; /* the engine calls it before owner's gradient is read */
    return true;
}

/* Below this many gradient elements stacking the operands costs more than
 * the separate small products (measured: lstm-s, a 128 x 512 W_hh, got
 * slower; lstm-m, 512 x 2048, faster). */
#define TN_DEFER_MIN ((int64_t)1 << 18)

/* Bytes of staging for the stacked operands of one merged product; larger
 * stacks are multiplied in pieces of this size (inner size ~2.5k rows for a
 * 512 x 2048 weight: still near-peak GEMMs, at a fifth of the memory). */
#define TN_DEFER_STAGE ((int64_t)24 << 20)

/* The two limits above, unless the environment overrides them: the tests
 * run the layer checks again with TN_DEFER_MIN=1 and a tiny
 * TN_DEFER_STAGE, so that small layers take the merged and the piecewise
 * paths too. */
static int64_t defer_limit(const char *env, int64_t dflt)
{
    const char *v = getenv(env);
    return v && *v ? strtoll(v, NULL, 10) : dflt;
}

/* Read once for the process (any thread may be first), then read-only. */
static int64_t defer_min, defer_stage;
static pthread_once_t defer_once = PTHREAD_ONCE_INIT;
static void defer_read_env(void)
{
    defer_min = defer_limit("TN_DEFER_MIN", TN_DEFER_MIN);
    defer_stage = defer_limit("TN_DEFER_STAGE", TN_DEFER_STAGE);
}

/* C += L @ R into the gradient of `into`: deferred when C is large (see
 * defer_push), else now. */
static void grad_gemm(const tn_tensor *y, tn_tensor *into, tn__mat l, tn__mat r, tn__mat c)
{
    tn_tensor *root = into; /* the tensor whose memory the gradient is */
    while (tn__node(root)->is_view)
        root = tn__node(root)->src[0];
    pthread_once(&defer_once, defer_read_env);
    if (!(c.m * c.n >= defer_min && defer_push(tn__node(y)->tape, root, y->dtype, l, r, c)))
        tn__gemm(y->dtype, l, r, 1.0, c);
}

/* Backward of y = a @ b over the matrices at dims d, d+1 and element
 * offsets (oa, ob, oy) of one batch:
 *   da [M, K] += dy [M, N] @ b^T [N, K],   db [K, N] += a^T [K, M] @ dy [M, N]. */
static void product_backward(tn_tensor *y, tn_tensor *a, tn_tensor *b, int d, int64_t oa,
                             int64_t ob, int64_t oy)
{
    tn__mat dy = mat_of(y, d, oy, true);
    if (tn__wants(a)) {
        tn__mat bt = tn__mat_t(mat_of(b, d, ob, false)), da = mat_of(a, d, oa, true);
        if (!(tn__is_weight(b) &&
              tn__packed_product(tn__node(y)->tape, y->dtype, dy, bt, da, true)))
            grad_gemm(y, a, dy, bt, da);
    }
    if (tn__wants(b))
        grad_gemm(y, b, tn__mat_t(mat_of(a, d, oa, false)), dy, mat_of(b, d, ob, true));
}

static bool same_target(const tn_defer *x, const tn_defer *y)
{
    return x->owner == y->owner && x->c == y->c && x->m == y->m && x->n == y->n &&
           x->crs == y->crs && x->ccs == y->ccs && x->dtype == y->dtype;
}

/* Run the deferred products into owner's gradient (all when owner is
 * NULL), grouped by target: the L's are stacked into Lt [K, m] (L^T,
 * contiguous) and the R's into R [K, n], then C += L_all [m, K] @ R [K, n],
 * K up to the staging size at a time. The backward engine's flush hook
 * (tp->flush). */
static void matmul_flush(tn_tape *tp, tn_tensor *owner)
{
    mm_cache *mc = tp->op_cache;
    size_t n = mc ? mc->n : 0;
    for (size_t i = 0; i < n; i++) {
        tn_defer *e = &mc->q[i];
        if (!e->c || (owner && e->owner != owner))
            continue; /* done with an earlier group, or another tensor's */
        int64_t K = 0, kmax = 0, cnt = 0;
        for (size_t j = i; j < n; j++)
            if (mc->q[j].c && same_target(e, &mc->q[j])) {
                K += mc->q[j].k, cnt++;
                kmax = mc->q[j].k > kmax ? mc->q[j].k : kmax;
            }
        tn__mat C = {e->c, e->m, e->n, e->crs, e->ccs};
        int64_t m = e->m, nn = e->n;
        size_t es = tn_dtype_size(e->dtype);
        /* stack at most TN_DEFER_STAGE bytes at a time (staging reused) */
        pthread_once(&defer_once, defer_read_env);
        int64_t kc = defer_stage / ((m + nn) * (int64_t)es);
        kc = kc < kmax ? kmax : kc > K ? K : kc;
        void *lt = cnt > 1 ? tn_tape_alloc(tp, (size_t)(kc * m) * es) : NULL;
        void *rb = lt ? tn_tape_alloc(tp, (size_t)(kc * nn) * es) : NULL;
        tn_defer first = *e;
        int64_t k0 = 0;
        for (size_t j = i; j < n; j++) {
            tn_defer *f = &mc->q[j];
            if (!f->c || !same_target(&first, f))
                continue;
            f->c = NULL;
            if (!rb) { /* a single product, or no memory to stack */
                tn__gemm(f->dtype, (tn__mat){f->l, f->m, f->k, f->lrs, f->lcs},
                         (tn__mat){f->r, f->k, f->n, f->rrs, f->rcs}, 1.0, C);
                continue;
            }
            if (k0 + f->k > kc) { /* staging full: multiply what it holds */
                tn__gemm(first.dtype, (tn__mat){lt, m, k0, 1, m}, (tn__mat){rb, k0, nn, nn, 1}, 1.0,
                         C);
                k0 = 0;
            }
            /* Lt[k0 + q][p] = L[p][q]; R_all[k0 + q][c] = R[q][c] */
            TN_FOR_DTYPE(f->dtype, T, {
                const T *L = f->l, *R = f->r;
                T *LT = (T *)lt + k0 * m, *RB = (T *)rb + k0 * nn;
                TN_PAR_FOR(f->k * (m + nn) > TN_PAR_MIN, q, 0, f->k, {
                    for (int64_t p = 0; p < m; p++)
                        LT[q * m + p] = L[p * f->lrs + q * f->lcs];
                    for (int64_t c = 0; c < nn; c++)
                        RB[q * nn + c] = R[q * f->rrs + c * f->rcs];
                });
            });
            k0 += f->k;
        }
        if (rb && k0 > 0)
            tn__gemm(first.dtype, (tn__mat){lt, m, k0, 1, m}, (tn__mat){rb, k0, nn, nn, 1}, 1.0, C);
    }
    if (!owner && mc)
        mc->n = 0;
}

void tn__bw_matmul(tn_tensor *y)
{
    product_backward(y, tn__node(y)->src[0], tn__node(y)->src[1], 0, 0, 0, 0);
}

/* ---- bmm ---- */

tn_tensor *tn_bmm(tn_tape *tp, tn_tensor *a, tn_tensor *b)
{
    tn_tensor *in[2] = {a, b};
    if (!tn__check(tp, "bmm", 2, in))
        return NULL;
    if (a->ndim != 3 || b->ndim != 3) {
        tn_tape_fail(tp, TN_ERR_SHAPE, "bmm: operands must be 3-D, got a %s @ b %s", TN_SHP(a),
                     TN_SHP(b));
        return NULL;
    }
    if (a->shape[0] != b->shape[0]) {
        tn_tape_fail(tp, TN_ERR_SHAPE, "bmm: batch sizes differ: a %s @ b %s", TN_SHP(a),
                     TN_SHP(b));
        return NULL;
    }
    if (a->shape[2] != b->shape[1]) {
        tn_tape_fail(tp, TN_ERR_SHAPE, "bmm: inner dims differ: a %s @ b %s", TN_SHP(a), TN_SHP(b));
        return NULL;
    }
    if (!layout_ok(tp, "bmm", "a", a, 1) || !layout_ok(tp, "bmm", "b", b, 1))
        return NULL;
    int64_t shape[3] = {a->shape[0], a->shape[1], b->shape[2]};
    tn_tensor *y = tn__result(tp, TN_OP_BMM, a->dtype, 3, shape, false, a, b, NULL);
    if (!y)
        return NULL;
    /* y[i] [M, N] := a[i] [M, K] @ b[i] [K, N] for each batch i */
    for (int64_t i = 0; i < shape[0]; i++)
        tn__gemm(y->dtype, mat_of(a, 1, i * a->stride[0], false),
                 mat_of(b, 1, i * b->stride[0], false), 0.0, mat_of(y, 1, i * y->stride[0], false));
    return tn__finish(tp, y);
}

void tn__bw_bmm(tn_tensor *y)
{
    tn_tensor *a = tn__node(y)->src[0], *b = tn__node(y)->src[1];
    for (int64_t i = 0; i < y->shape[0]; i++)
        product_backward(y, a, b, 1, i * a->stride[0], i * b->stride[0], i * y->stride[0]);
}

/* ---- addmm ---- */

/* Row and column strides of bias as seen from the [M, N] output: a bias of
 * shape [N] or [1, N] repeats over rows (row stride 0). */
static void bias_strides(const tn_tensor *bias, int64_t *rs, int64_t *cs)
{
    if (bias->ndim == 1) {
        *rs = 0;
        *cs = bias->stride[0];
    } else {
        *rs = bias->shape[0] == 1 ? 0 : bias->stride[0];
        *cs = bias->stride[1];
    }
}

tn_tensor *tn_addmm(tn_tape *tp, tn_tensor *bias, tn_tensor *a, tn_tensor *b)
{
    tn_tensor *in[3] = {bias, a, b};
    if (!tn__check(tp, "addmm", 3, in) || !check_2d(tp, "addmm", a, b))
        return NULL;
    int64_t M = a->shape[0], N = b->shape[1];
    bool fits =
        (bias->ndim == 1 && bias->shape[0] == N) ||
        (bias->ndim == 2 && (bias->shape[0] == M || bias->shape[0] == 1) && bias->shape[1] == N);
    if (!fits) {
        tn_tape_fail(tp, TN_ERR_SHAPE,
                     "addmm: bias %s does not fit a %s @ b %s -> [%lld, %lld] (need [%lld] or "
                     "[%lld, %lld])",
                     TN_SHP(bias), TN_SHP(a), TN_SHP(b), (long long)M, (long long)N, (long long)N,
                     (long long)M, (long long)N);
        return NULL;
    }
    int64_t shape[2] = {M, N};
    tn_tensor *y = tn__result(tp, TN_OP_ADDMM, a->dtype, 2, shape, false, bias, a, b);
    if (!y)
        return NULL;
    /* y [M, N] := bias (broadcast, strided), then y += a @ b (beta = 1) */
    int64_t rs, cs;
    bias_strides(bias, &rs, &cs);
    TN_FOR_DTYPE(y->dtype, T, {
        const T *B = TN_DATA(T, bias);
        T *Y = TN_DATA(T, y);
        TN_PAR_FOR(M * N > TN_PAR_MIN, i, 0, M, {
            for (int64_t j = 0; j < N; j++)
                Y[i * N + j] = B[i * rs + j * cs];
        });
    });
    tn__mat A = mat_of(a, 0, 0, false), B = mat_of(b, 0, 0, false), Y = mat_of(y, 0, 0, false);
    if (!(tn__is_weight(b) && tn__packed_product(tp, y->dtype, A, B, Y, true)))
        tn__gemm(y->dtype, A, B, 1.0, Y);
    return tn__finish(tp, y);
}

/* dbias += dy [M, N] summed over rows when bias repeats over them (row
 * stride 0: the kernel path's column sums, in row order whatever the
 * thread count), else element-wise, rows split over the threads. */
static void bias_backward(tn_tensor *y, tn_tensor *bias)
{
    int64_t M = y->shape[0], N = y->shape[1], rs, cs;
    bias_strides(bias, &rs, &cs);
    if (rs == 0) {
        tn__rows_get(y->dtype)->colsum(y->grad, M, N, N, bias->grad, cs);
        return;
    }
    TN_FOR_DTYPE(y->dtype, T, {
        const T *DY = TN_GRAD(T, y);
        T *DB = TN_GRAD(T, bias);
        TN_PAR_FOR(M * N > TN_PAR_MIN, i, 0, M, {
            for (int64_t j = 0; j < N; j++)
                DB[i * rs + j * cs] += DY[i * N + j];
        });
    });
}

void tn__bw_addmm(tn_tensor *y)
{
    tn_tensor *bias = tn__node(y)->src[0];
    if (tn__wants(bias))
        bias_backward(y, bias);
    product_backward(y, tn__node(y)->src[1], tn__node(y)->src[2], 0, 0, 0, 0);
}
