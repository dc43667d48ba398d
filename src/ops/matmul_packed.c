/* src/ops/matmul_packed.c - small products with a right operand packed
 * once and reused, on BLIS's native micro-kernel or, for the products of
 * the time loops on the AVX2 and AVX-512 paths, the kernel table's
 * step_mul (tn__packed_geometry_step; see the end of this comment).
 *
 * The recurrent per-step products are small (e.g. [32, 128] @ [128, 256]
 * per thread per step) and their right operand, from W_hh, is the same at
 * every step. A GEMM call would repack both operands each time; here the
 * right operand is packed once per sequence into the micro-panels of the
 * active BLIS configuration's micro-kernel, the left one (the state) at
 * each call, and the micro-kernel runs over the tiles. So the product gets
 * BLIS's tuned kernel for whatever CPU it runs on (haswell and zen 6x16,
 * skx 32x12, generic, the ARM ones), with no ISA-specific code here.
 *
 * Micro-kernels prefer row- or column-stored C (haswell/zen rows, skx
 * columns). A row-preferring one computes C = A W with A in MR-row
 * micro-panels and W in NR-column ones; a column-preferring one computes
 * C^T = W^T A^T, so W is packed in MR-wide panels and A in NR-row panels.
 * Either way W's panels are "pw columns, per k contiguous" and A's are "pa
 * rows, per k contiguous"; only the kernel's arguments are swapped.
 *
 * BLIS's micro-kernels are tiles of the left operand's rows: 6 on haswell,
 * 12 on skx, so a thread's 16 batch rows cost skx's kernel 24 (measured:
 * a [16, 128] @ [128, 512] product takes as long as [24, ...], at 70-100
 * GFLOP/s on one core where the kernel reaches 150). The step kernels
 * (rows.h step_mul) tile the rows by 8 (AVX-512) or 4 and read the left
 * operand in place, so nothing is packed per call; their W panels have the
 * same "pw columns, per k contiguous" layout with pw their own width.
 */
#include "ops_internal.h"
#include "rows.h"

#include <blis.h>

static int64_t round64(int64_t bytes) { return (bytes + 63) / 64 * 64; }

/* Bytes of one panel of `width` rows or columns over K (64-byte aligned,
 * so that every panel starts aligned as BLIS's own packing does). */
static int64_t panel_bytes(int64_t K, int width, size_t es)
{
    return round64(K * width * (int64_t)es);
}

void tn__packed_geometry(tn__packed *p, tn_dtype dt, int64_t K, int64_t N)
{
    tn_runtime_init();
    cntx_t *cx = bli_gks_query_cntx();
    num_t bt = dt == TN_F32 ? BLIS_FLOAT : BLIS_DOUBLE;
    int mr = (int)bli_cntx_get_blksz_def_dt(bt, BLIS_MR, cx);
    int nr = (int)bli_cntx_get_blksz_def_dt(bt, BLIS_NR, cx);
    p->dt = dt;
    p->K = K;
    p->N = N;
    p->rows = bli_cntx_l3_nat_ukr_prefers_rows_dt(bt, BLIS_GEMM_UKR, cx);
    p->pw = p->rows ? nr : mr;
    p->pa = p->rows ? mr : nr;
    p->ukr = (void (*)(void))bli_cntx_get_l3_nat_ukr_dt(bt, BLIS_GEMM_UKR, cx);
    p->cntx = cx;
    p->step = NULL;
    p->w = NULL;
}

void tn__packed_geometry_step(tn__packed *p, tn_dtype dt, int64_t K, int64_t N)
{
    tn__packed_geometry(p, dt, K, N);
    const tn__rows *kr = tn__rows_get(dt);
    if (kr->step_mul) {
        p->step = kr;
        p->pw = kr->step_nb;
        p->pa = 1; /* the left operand is read in place */
    }
}

int64_t tn__packed_bytes(const tn__packed *p)
{
    return (p->N + p->pw - 1) / p->pw * panel_bytes(p->K, p->pw, tn_dtype_size(p->dt)) + 64;
}

int64_t tn__packed_scratch_bytes(const tn__packed *p, int64_t M)
{
    if (p->step)
        return 64;
    return (M + p->pa - 1) / p->pa * panel_bytes(p->K, p->pa, tn_dtype_size(p->dt)) + 64;
}

/* Copy `cols` columns of the strided S [K, cols] (element (i, c) at
 * S[i*rs + c*cs]) into the packed columns c0 .. c0 + cols of p->w; packed
 * columns beyond N are zero (tn__packed_zero). In tiles of KT values of k
 * per column: reads along a column of S (contiguous when rs is 1), the
 * strided writes within KT rows of one panel, in L1. */
void tn__packed_set(tn__packed *p, int64_t c0, int64_t cols, const void *S, int64_t rs, int64_t cs)
{
    enum { KT = 16 };
    int64_t pb = panel_bytes(p->K, p->pw, tn_dtype_size(p->dt));
    TN_FOR_DTYPE(p->dt, T, {
        for (int64_t a = 0; a < cols;) { /* the columns a .. b - 1 share a panel */
            int64_t col = c0 + a, b = a + p->pw - col % p->pw;
            b = b < cols ? b : cols;
            T *d = (T *)((char *)p->w + (col / p->pw) * pb) + col % p->pw;
            const T *s = (const T *)S + a * cs;
            for (int64_t i0 = 0; i0 < p->K; i0 += KT) {
                int64_t i1 = i0 + KT < p->K ? i0 + KT : p->K;
                for (int64_t c = 0; c < b - a; c++)
                    for (int64_t i = i0; i < i1; i++)
                        d[i * p->pw + c] = s[i * rs + c * cs];
            }
            a = b;
        }
    });
}

tn__packed tn__packed_part(const tn__packed *p, int64_t q0, int64_t q1)
{
    tn__packed part = *p;
    int64_t c0 = q0 * p->pw, c1 = q1 * p->pw < p->N ? q1 * p->pw : p->N;
    part.w = (char *)p->w + q0 * panel_bytes(p->K, p->pw, tn_dtype_size(p->dt));
    part.N = c1 > c0 ? c1 - c0 : 0;
    return part;
}

void tn__packed_zero(tn__packed *p) { memset(p->w, 0, (size_t)tn__packed_bytes(p)); }

int64_t tn__packed_panel_bytes(const tn__packed *p)
{
    return panel_bytes(p->K, p->pw, tn_dtype_size(p->dt));
}

/* In tiles of KT values of k: the reads run along A's rows (which may be
 * far apart: a step's rows of a [B*T, G] buffer), the strided writes stay
 * within KT of the panel's k-rows, in L1. Rows beyond M are zeroed apart,
 * so that the copy has no branch. */
void tn__packed_pack_left(const tn__packed *p, int64_t M, const void *A, int64_t rs, int64_t cs,
                          void *dst)
{
    enum { KT = 16 };
    int64_t K = p->K, pa = p->pa;
    int64_t pb = panel_bytes(K, pa, tn_dtype_size(p->dt));
    TN_FOR_DTYPE(p->dt, T, {
        for (int64_t r0 = 0; r0 < M; r0 += pa) {
            T *d = (T *)((char *)dst + (r0 / pa) * pb);
            const T *a = (const T *)A + r0 * rs;
            int64_t m = M - r0 < pa ? M - r0 : pa;
            for (int64_t k0 = 0; k0 < K; k0 += KT) {
                int64_t k1 = k0 + KT < K ? k0 + KT : K;
                for (int64_t i = 0; i < m; i++)
                    for (int64_t k = k0; k < k1; k++)
                        d[k * pa + i] = a[i * rs + k * cs];
            }
            for (int64_t k = 0; k < K && m < pa; k++)
                for (int64_t i = m; i < pa; i++)
                    d[k * pa + i] = 0;
        }
    });
}

void tn__packed_panel_mul(const tn__packed *p, int64_t M, const void *a, const void *w, int64_t n,
                          void *C, int64_t ldc, bool acc, const void *next_w)
{
    size_t es = tn_dtype_size(p->dt);
    int64_t K = p->K, pa = p->pa, pba = panel_bytes(K, pa, es);
    auxinfo_t aux;
    memset(&aux, 0, sizeof aux);
    TN_FOR_DTYPE(p->dt, T, {
        /* the micro-kernel's type for this dtype (BLIS's gemm ukr signature) */
        typedef void (*ukr_t)(dim_t, dim_t, dim_t, T *, T *, T *, T *, T *, inc_t, inc_t,
                              auxinfo_t *, cntx_t *);
        ukr_t u = (ukr_t)p->ukr;
        T one = 1, beta = acc ? 1 : 0;
        for (int64_t r0 = 0; r0 < M; r0 += pa) {
            int64_t m = M - r0 < pa ? M - r0 : pa;
            T *ap = (T *)((const char *)a + (r0 / pa) * pba), *wp = (T *)w;
            T *c = (T *)C + r0 * ldc;
            /* prefetch hints: the next A panel, or after the last one the next W panel */
            bool last = r0 + pa >= M;
            bli_auxinfo_set_next_a(last ? (void *)a : (char *)ap + pba, &aux);
            bli_auxinfo_set_next_b(last ? (void *)next_w : (void *)w, &aux);
            if (p->rows)
                u(m, n, K, &one, ap, wp, &beta, c, ldc, 1, &aux, p->cntx);
            else /* the transposed product: C^T = W^T A^T */
                u(n, m, K, &one, wp, ap, &beta, c, 1, ldc, &aux, p->cntx);
        }
    });
}

void tn__packed_mul(const tn__packed *p, int64_t M, const void *A, int64_t lda, void *C,
                    int64_t ldc, bool acc, void *scratch)
{
    int64_t pbw = tn__packed_panel_bytes(p);
    if (p->step) {
        p->step->step_mul(M, p->N, p->K, A, lda, p->w, pbw / (int64_t)sizeof(float), C, ldc, acc);
        return;
    }
    tn__packed_pack_left(p, M, A, lda, 1, scratch);
    for (int64_t c0 = 0; c0 < p->N; c0 += p->pw) {
        const char *w = (const char *)p->w + (c0 / p->pw) * pbw;
        tn__packed_panel_mul(p, M, scratch, w, p->N - c0 < p->pw ? p->N - c0 : p->pw,
                             (char *)C + (size_t)c0 * tn_dtype_size(p->dt), ldc, acc,
                             c0 + p->pw < p->N ? w + pbw : w);
    }
}

void tn__gemm_naive(tn_dtype dt, int64_t M, int64_t N, int64_t K, const void *A, int64_t lda,
                    const void *W, int64_t rs, int64_t cs, void *C, int64_t ldc, bool acc)
{
    TN_FOR_DTYPE(dt, T, {
        const T *a = A, *w = W;
        T *c = C;
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) {
                double s = 0;
                for (int64_t k = 0; k < K; k++)
                    s += (double)a[i * lda + k] * (double)w[k * rs + j * cs];
                c[i * ldc + j] = (T)((acc ? (double)c[i * ldc + j] : 0) + s);
            }
    });
}
