/* src/ops/matmul_packed.c - small products with a right operand packed
 * once and reused, on BLIS's native micro-kernel.
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
 */
#include "ops_internal.h"

#include <blis.h>

typedef void (*ukr_s)(dim_t m, dim_t n, dim_t k, float *alpha, float *a, float *b, float *beta,
                      float *c, inc_t rs_c, inc_t cs_c, auxinfo_t *aux, cntx_t *cntx);
typedef void (*ukr_d)(dim_t m, dim_t n, dim_t k, double *alpha, double *a, double *b,
                      double *beta, double *c, inc_t rs_c, inc_t cs_c, auxinfo_t *aux,
                      cntx_t *cntx);

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
    p->w = NULL;
}

int64_t tn__packed_bytes(const tn__packed *p)
{
    return (p->N + p->pw - 1) / p->pw * panel_bytes(p->K, p->pw, tn_dtype_size(p->dt)) + 64;
}

int64_t tn__packed_scratch_bytes(const tn__packed *p, int64_t M)
{
    return (M + p->pa - 1) / p->pa * panel_bytes(p->K, p->pa, tn_dtype_size(p->dt)) + 64;
}

/* Copy `cols` columns of the strided S [K, cols] (element (i, c) at
 * S[i*rs + c*cs]) into the packed columns c0 .. c0 + cols of p->w; packed
 * columns beyond N are zero (tn__packed_zero). */
void tn__packed_set(tn__packed *p, int64_t c0, int64_t cols, const void *S, int64_t rs,
                    int64_t cs)
{
    size_t es = tn_dtype_size(p->dt);
    int64_t pb = panel_bytes(p->K, p->pw, es);
    for (int64_t c = 0; c < cols; c++) {
        int64_t col = c0 + c;
        char *dst = (char *)p->w + (col / p->pw) * pb + (size_t)(col % p->pw) * es;
        if (p->dt == TN_F32) {
            const float *s = (const float *)S + c * cs;
            for (int64_t i = 0; i < p->K; i++)
                ((float *)dst)[i * p->pw] = s[i * rs];
        } else {
            const double *s = (const double *)S + c * cs;
            for (int64_t i = 0; i < p->K; i++)
                ((double *)dst)[i * p->pw] = s[i * rs];
        }
    }
}

void tn__packed_zero(tn__packed *p)
{
    memset(p->w, 0, (size_t)tn__packed_bytes(p));
}

/* A [M, K] (lda) into pa-row panels at dst, rows beyond M zero. Row by
 * row: the reads run along A's rows (which may be far apart: a step's rows
 * of a [B*T, G] buffer), the strided writes stay in the panel, which fits
 * in L1. */
static void pack_left(const tn__packed *p, int64_t M, const void *A, int64_t lda, void *dst)
{
    int64_t K = p->K, pa = p->pa;
    size_t es = tn_dtype_size(p->dt);
    int64_t pb = panel_bytes(K, p->pa, es);
    for (int64_t r0 = 0; r0 < M; r0 += pa) {
        int64_t m = M - r0 < pa ? M - r0 : pa;
        char *panel = (char *)dst + (r0 / pa) * pb;
        if (p->dt == TN_F32) {
            float *d = (float *)panel;
            const float *a = (const float *)A + r0 * lda;
            for (int64_t i = 0; i < pa; i++) {
                if (i < m)
                    for (int64_t k = 0; k < K; k++)
                        d[k * pa + i] = a[i * lda + k];
                else
                    for (int64_t k = 0; k < K; k++)
                        d[k * pa + i] = 0;
            }
        } else {
            double *d = (double *)panel;
            const double *a = (const double *)A + r0 * lda;
            for (int64_t i = 0; i < pa; i++) {
                if (i < m)
                    for (int64_t k = 0; k < K; k++)
                        d[k * pa + i] = a[i * lda + k];
                else
                    for (int64_t k = 0; k < K; k++)
                        d[k * pa + i] = 0;
            }
        }
    }
}

void tn__packed_mul(const tn__packed *p, int64_t M, const void *A, int64_t lda, void *C,
                    int64_t ldc, bool acc, void *scratch)
{
    size_t es = tn_dtype_size(p->dt);
    int64_t K = p->K, pa = p->pa, pw = p->pw;
    int64_t pba = panel_bytes(K, pa, es), pbw = panel_bytes(K, pw, es);
    pack_left(p, M, A, lda, scratch);
    auxinfo_t aux;
    memset(&aux, 0, sizeof aux);
    float one_s = 1, beta_s = acc ? 1 : 0;
    double one_d = 1, beta_d = acc ? 1 : 0;
    for (int64_t c0 = 0; c0 < p->N; c0 += pw) {
        int64_t n = p->N - c0 < pw ? p->N - c0 : pw;
        char *w = (char *)p->w + (c0 / pw) * pbw;
        for (int64_t r0 = 0; r0 < M; r0 += pa) {
            int64_t m = M - r0 < pa ? M - r0 : pa;
            char *a = (char *)scratch + (r0 / pa) * pba;
            char *c = (char *)C + (size_t)(r0 * ldc + c0) * es;
            /* prefetch hints: the next A panel, or the next W panel */
            bool last = r0 + pa >= M;
            bli_auxinfo_set_next_a(last ? scratch : a + pba, &aux);
            bli_auxinfo_set_next_b(last ? w + pbw : w, &aux);
            if (p->dt == TN_F32) {
                ukr_s u = (ukr_s)p->ukr;
                if (p->rows)
                    u(m, n, K, &one_s, (float *)a, (float *)w, &beta_s, (float *)c, ldc, 1, &aux,
                      p->cntx);
                else
                    u(n, m, K, &one_s, (float *)w, (float *)a, &beta_s, (float *)c, 1, ldc, &aux,
                      p->cntx);
            } else {
                ukr_d u = (ukr_d)p->ukr;
                if (p->rows)
                    u(m, n, K, &one_d, (double *)a, (double *)w, &beta_d, (double *)c, ldc, 1,
                      &aux, p->cntx);
                else
                    u(n, m, K, &one_d, (double *)w, (double *)a, &beta_d, (double *)c, 1, ldc,
                      &aux, p->cntx);
            }
        }
    }
}

void tn__gemm_naive(tn_dtype dt, int64_t M, int64_t N, int64_t K, const void *A, int64_t lda,
                    const void *W, int64_t rs, int64_t cs, void *C, int64_t ldc, bool acc)
{
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double s = 0;
            for (int64_t k = 0; k < K; k++)
                s += dt == TN_F32 ? (double)((const float *)A)[i * lda + k] *
                                        ((const float *)W)[k * rs + j * cs]
                                  : ((const double *)A)[i * lda + k] *
                                        ((const double *)W)[k * rs + j * cs];
            if (dt == TN_F32) {
                float *c = (float *)C + i * ldc + j;
                *c = (float)((acc ? *c : 0) + s);
            } else {
                double *c = (double *)C + i * ldc + j;
                *c = (acc ? *c : 0) + s;
            }
        }
}
