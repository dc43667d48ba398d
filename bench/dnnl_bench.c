/* bench/dnnl_bench.c - oneDNN's recurrent layers alone, timed on the shapes
 * of bench/rnn_bench (bench/configs.h), for bench/compare's oneDNN column.
 *
 *   x [T, B, E] -> L stacked layers (vanilla RNN tanh, LSTM, or GRU as
 *   oneDNN's linear-before-reset GRU, lbr_gru, the variant PyTorch's GRU
 *   computes: r multiplies (W_hn h + b_hn)) -> y [T, B, H];
 *   then backward (data and weights) from a fixed gradient dy.
 *
 * float32, unidirectional, zero initial states, biases on, oneDNN's C API
 * (2.x: the *_desc_init functions). Layer 0 takes the embedding width E = 64
 * and the layers after it H; a oneDNN RNN primitive's stacked layers share
 * one input size, so layer 0 is one primitive and layers 1..L-1 another.
 *
 * What one timed step holds: the reorders of the weights (kept in the
 * layout the forward primitive chose, format_tag_any) into the layouts the
 * backward primitive chose, where those differ (every step: training
 * changes the weights); clearing the weight gradients; forward
 * (forward_training, workspace kept) of each layer group; backward of each
 * group in reverse. Not timed, because this program does not have them:
 * the embedding, the output layer, the loss, the clipping and Adam that
 * rnn_bench times in its step. Primitives and memory are created once,
 * before the warm-up steps.
 *
 * Threads: OpenMP's (oneDNN's Debian build uses OpenMP): $OMP_NUM_THREADS,
 * or --threads N (omp_set_num_threads). The CPU path: oneDNN's own
 * choice, limited by $ONEDNN_MAX_CPU_ISA (e.g. AVX2).
 *
 * The last stdout line is key=value pairs like rnn_bench's:
 *   config=... threads=... ms_per_step=... tokens_per_s=... gflops=...
 *   layers_only=1 ... isa=... (the level oneDNN's kernels run on: the CPU's,
 *   within $ONEDNN_MAX_CPU_ISA) isa_env=... impl_fwd=... impl_bwd=...
 *
 * --gemm times, instead of the recurrent primitives, the GEMMs beneath the
 * two libraries on the config's large products: BLIS's bli_sgemm as the
 * library calls it (the configuration tn_runtime_init chose, transposed
 * operands as strides) against oneDNN's dnnl_sgemm, same operands, same
 * threads, alternating calls, best of --reps calls each:
 *   proj  [B*T, I] @ W_ih^T [I, G]   the input projection (W_ih [G, I])
 *   dx    [B*T, G] @ W_ih [G, I]     the input gradient
 *   dw    dG^T [G, B*T] @ [B*T, I]   the weight gradients (dG [B*T, G])
 * for I = E (layer 0) and I = H (W_hh, and the layers after the first),
 * G = gates * H, and the 1024^3 product of the SGEMM peak; each product in
 * two layouts of W: [G, I] (this library's and PyTorch's) and [I, G]
 * (oneDNN's ldigo, which its RNN primitives use), so that each library is
 * also timed in the orientation it computes in. The two results must agree
 * (else the program fails: a wrong stride). Its last line:
 *   gemm=1 config=... threads=... blis=... isa=... peak_blis=...
 *   peak_onednn=... step_blis_ms=... step_onednn_ms=...
 *   step_blis_ldigo_ms=... step_onednn_ldigo_ms=... blis_over_onednn=...
 * where step_*_ms add up one training step's calls of these products
 * (per step: proj and dx once for I = E and L - 1 times for I = H, dw once
 * for I = E and 2L - 1 times for I = H; each line prints its count) and
 * blis_over_onednn is oneDNN's faster layout's sum over BLIS's sum in this
 * library's layout (below 1: BLIS slower on the step's products).
 */
#include <tensor/tensor.h>

#include <blis.h>
#include <oneapi/dnnl/dnnl.h>
#include <oneapi/dnnl/dnnl_debug.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "cli.h"
#include "configs.h"

/* Every oneDNN call goes through DN: a failure prints the call and
 * oneDNN's status, with what the program was doing (`doing`), and makes
 * the enclosing function return -1. */
static const char *doing = "setup";

#define DN(call)                                                             \
    do {                                                                     \
        dnnl_status_t st_ = (call);                                          \
        if (st_ != dnnl_success) {                                           \
            fprintf(stderr, "dnnl_bench: %s: %s failed: %s\n", doing, #call, \
                    dnnl_status2str(st_));                                   \
            return -1;                                                       \
        }                                                                    \
    } while (0)

typedef enum cell_kind { CELL_RNN, CELL_LSTM, CELL_GRU } cell_kind;

/* A reorder executed every step: src into dst. */
typedef struct reorder {
    dnnl_primitive_t prim;
    dnnl_memory_t src, dst;
} reorder;

enum { MAX_REORDERS = 16 };

/* One oneDNN RNN primitive: `layers` stacked layers of input size slc. */
typedef struct group {
    int layers;
    long slc;
    dnnl_primitive_desc_t fwd_pd, bwd_pd;
    dnnl_primitive_t fwd, bwd;
    dnnl_memory_t src, dst, ws;          /* src: x or the group before's dst */
    dnnl_memory_t w_layer, w_iter, bias; /* the weights, as the forward wants them */
    dnnl_memory_t bw_layer, bw_iter;     /* as the backward wants them */
    dnnl_memory_t diff_src, diff_dst;    /* diff_dst: the group after's diff_src */
    dnnl_memory_t dw_layer, dw_iter, dbias;
} group;

typedef struct bench {
    dnnl_engine_t eng;
    dnnl_stream_t stream;
    cell_kind cell;
    long B, T, H;
    int n_groups;
    group g[2];
    reorder re[MAX_REORDERS]; /* the weights into the backward's layouts */
    int n_re;
    unsigned long long rng;
} bench;

/* ---- memory ---- */

static float next_uniform(bench *b, float a) /* in [-a, a) */
{
    b->rng = b->rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return a * (2.0f * (float)(b->rng >> 40) / 16777216.0f - 1.0f);
}

/* A new memory of descriptor md, its floats uniform in [-a, a) (a = 0:
 * zeros). */
static int mem_new(bench *b, dnnl_memory_t *m, const dnnl_memory_desc_t *md, float a)
{
    DN(dnnl_memory_create(m, md, b->eng, DNNL_MEMORY_ALLOCATE));
    void *p = NULL;
    DN(dnnl_memory_get_data_handle(*m, &p));
    size_t n = dnnl_memory_desc_get_size(md) / sizeof(float);
    float *f = p;
    for (size_t i = 0; i < n; i++)
        f[i] = a > 0 ? next_uniform(b, a) : 0.0f;
    return 0;
}

static int plain_md(dnnl_memory_desc_t *md, int ndims, const dnnl_dims_t dims,
                    dnnl_format_tag_t tag)
{
    DN(dnnl_memory_desc_init_by_tag(md, ndims, dims, dnnl_f32, tag));
    return 0;
}

/* The descriptor the primitive desc pd chose for its argument arg. */
static const dnnl_memory_desc_t *arg_md(const_dnnl_primitive_desc_t pd, int arg)
{
    const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, dnnl_query_exec_arg_md, arg);
    if (!md)
        fprintf(stderr, "dnnl_bench: %s: dnnl_primitive_desc_query_md(exec_arg %d) failed\n", doing,
                arg);
    return md;
}

/* *out: the weights w themselves when pd takes argument arg in their
 * layout, otherwise a new memory in pd's layout that a reorder from w fills
 * every step. */
static int weights_for(bench *b, const_dnnl_primitive_desc_t pd, int arg, dnnl_memory_t w,
                       dnnl_memory_t *out)
{
    const dnnl_memory_desc_t *want = arg_md(pd, arg), *have = NULL;
    if (!want)
        return -1;
    DN(dnnl_memory_get_memory_desc(w, &have));
    if (dnnl_memory_desc_equal(want, have)) {
        *out = w;
        return 0;
    }
    if (b->n_re == MAX_REORDERS) {
        fprintf(stderr, "dnnl_bench: %s: more than %d reorders\n", doing, MAX_REORDERS);
        return -1;
    }
    reorder *r = &b->re[b->n_re];
    dnnl_primitive_desc_t rpd;
    if (mem_new(b, out, want, 0))
        return -1;
    DN(dnnl_reorder_primitive_desc_create(&rpd, have, b->eng, want, b->eng, NULL));
    dnnl_status_t st = dnnl_primitive_create(&r->prim, rpd);
    dnnl_primitive_desc_destroy(rpd);
    DN(st);
    r->src = w, r->dst = *out;
    b->n_re++;
    return 0;
}

/* ---- the primitives ---- */

/* The forward (fwd != 0) or backward descriptor of group g's cell. The
 * diff_* descriptors are used by the backward only. */
typedef struct descs {
    dnnl_memory_desc_t src, wl, wi, bias, dst, dsrc, dwl, dwi, dbias, ddst;
} descs;

static int desc_init(const bench *b, dnnl_rnn_desc_t *d, bool fwd, const descs *m)
{
    const dnnl_rnn_direction_t dir = dnnl_unidirectional_left2right;
    switch (b->cell) {
    case CELL_RNN:
        if (fwd)
            DN(dnnl_vanilla_rnn_forward_desc_init(d, dnnl_forward_training, dnnl_eltwise_tanh, dir,
                                                  &m->src, NULL, &m->wl, &m->wi, &m->bias, &m->dst,
                                                  NULL, 0, 0.0f, 0.0f));
        else
            DN(dnnl_vanilla_rnn_backward_desc_init(d, dnnl_backward, dnnl_eltwise_tanh, dir,
                                                   &m->src, NULL, &m->wl, &m->wi, &m->bias, &m->dst,
                                                   NULL, &m->dsrc, NULL, &m->dwl, &m->dwi,
                                                   &m->dbias, &m->ddst, NULL, 0, 0.0f, 0.0f));
        break;
    case CELL_LSTM:
        if (fwd)
            DN(dnnl_lstm_forward_desc_init(d, dnnl_forward_training, dir, &m->src, NULL, NULL,
                                           &m->wl, &m->wi, &m->bias, &m->dst, NULL, NULL, 0));
        else
            DN(dnnl_lstm_backward_desc_init(
                d, dnnl_backward, dir, &m->src, NULL, NULL, &m->wl, &m->wi, &m->bias, &m->dst, NULL,
                NULL, &m->dsrc, NULL, NULL, &m->dwl, &m->dwi, &m->dbias, &m->ddst, NULL, NULL, 0));
        break;
    case CELL_GRU:
        if (fwd)
            DN(dnnl_lbr_gru_forward_desc_init(d, dnnl_forward_training, dir, &m->src, NULL, &m->wl,
                                              &m->wi, &m->bias, &m->dst, NULL, 0));
        else
            DN(dnnl_lbr_gru_backward_desc_init(d, dnnl_backward, dir, &m->src, NULL, &m->wl, &m->wi,
                                               &m->bias, &m->dst, NULL, &m->dsrc, NULL, &m->dwl,
                                               &m->dwi, &m->dbias, &m->ddst, NULL, 0));
        break;
    }
    return 0;
}

/* Group g: its primitives and memory. src is its input (x or the output of
 * the group before). */
static int group_init(bench *b, group *g, dnnl_memory_t src)
{
    const int gates = b->cell == CELL_LSTM ? 4 : b->cell == CELL_GRU ? 3 : 1;
    const int bias_gates = b->cell == CELL_GRU ? 4 : gates; /* lbr_gru: b_hn apart */
    const long B = b->B, T = b->T, H = b->H, nl = g->layers;
    descs m;
    if (plain_md(&m.src, 3, (dnnl_dims_t){T, B, g->slc}, dnnl_tnc) ||
        plain_md(&m.dst, 3, (dnnl_dims_t){T, B, H}, dnnl_tnc) ||
        plain_md(&m.wl, 5, (dnnl_dims_t){nl, 1, g->slc, gates, H}, dnnl_format_tag_any) ||
        plain_md(&m.wi, 5, (dnnl_dims_t){nl, 1, H, gates, H}, dnnl_format_tag_any) ||
        plain_md(&m.bias, 4, (dnnl_dims_t){nl, 1, bias_gates, H}, dnnl_ldgo))
        return -1;
    m.dsrc = m.src, m.ddst = m.dst, m.dwl = m.wl, m.dwi = m.wi, m.dbias = m.bias;

    dnnl_rnn_desc_t fd, bd;
    if (desc_init(b, &fd, true, &m))
        return -1;
    DN(dnnl_primitive_desc_create(&g->fwd_pd, &fd, NULL, b->eng, NULL));
    if (desc_init(b, &bd, false, &m))
        return -1;
    DN(dnnl_primitive_desc_create(&g->bwd_pd, &bd, NULL, b->eng, g->fwd_pd));
    DN(dnnl_primitive_create(&g->fwd, g->fwd_pd));
    DN(dnnl_primitive_create(&g->bwd, g->bwd_pd));

    /* The weights, in the layout the forward chose, initialised as
     * PyTorch's: U(-1/sqrt(H), 1/sqrt(H)). */
    const float a = 1.0f / sqrtf((float)H);
    const dnnl_memory_desc_t *wl = arg_md(g->fwd_pd, DNNL_ARG_WEIGHTS_LAYER),
                             *wi = arg_md(g->fwd_pd, DNNL_ARG_WEIGHTS_ITER),
                             *ws = arg_md(g->fwd_pd, DNNL_ARG_WORKSPACE),
                             *dwl = arg_md(g->bwd_pd, DNNL_ARG_DIFF_WEIGHTS_LAYER),
                             *dwi = arg_md(g->bwd_pd, DNNL_ARG_DIFF_WEIGHTS_ITER),
                             *dsrc = arg_md(g->bwd_pd, DNNL_ARG_DIFF_SRC_LAYER);
    if (!wl || !wi || !ws || !dwl || !dwi || !dsrc || mem_new(b, &g->w_layer, wl, a) ||
        mem_new(b, &g->w_iter, wi, a) || mem_new(b, &g->bias, &m.bias, a))
        return -1;
    g->src = src;
    if (mem_new(b, &g->dst, &m.dst, 0) || mem_new(b, &g->ws, ws, 0) ||
        mem_new(b, &g->diff_src, dsrc, 0) || mem_new(b, &g->dw_layer, dwl, 0) ||
        mem_new(b, &g->dw_iter, dwi, 0) || mem_new(b, &g->dbias, &m.bias, 0))
        return -1;
    return 0;
}

/* Every group's primitives, then the weight reorders. */
static int bench_init(bench *b, const bench_config *cfg)
{
    b->cell = strcmp(cfg->cell, "lstm") == 0  ? CELL_LSTM
              : strcmp(cfg->cell, "gru") == 0 ? CELL_GRU
                                              : CELL_RNN;
    b->B = cfg->batch, b->T = cfg->seq, b->H = cfg->hidden;
    b->rng = 1234;
    DN(dnnl_engine_create(&b->eng, dnnl_cpu, 0));
    DN(dnnl_stream_create(&b->stream, b->eng, dnnl_stream_default_flags));
    b->n_groups = cfg->layers > 1 ? 2 : 1;
    b->g[0].layers = 1, b->g[0].slc = BENCH_E;
    b->g[1].layers = (int)cfg->layers - 1, b->g[1].slc = cfg->hidden;

    dnnl_memory_desc_t x;
    dnnl_memory_t src = NULL;
    if (plain_md(&x, 3, (dnnl_dims_t){b->T, b->B, BENCH_E}, dnnl_tnc) || mem_new(b, &src, &x, 1.0f))
        return -1;
    static char what[2][64];
    for (int k = 0; k < b->n_groups; k++) {
        group *g = &b->g[k];
        snprintf(what[k], sizeof what[k], "layer%s %d%s", g->layers > 1 ? "s" : "", k,
                 g->layers > 1 ? "..L-1" : "");
        doing = what[k];
        if (group_init(b, g, src))
            return -1;
        src = g->dst;
    }
    /* the gradient of the last layer's output: fixed, as from a loss */
    group *last = &b->g[b->n_groups - 1];
    const dnnl_memory_desc_t *dy = arg_md(last->bwd_pd, DNNL_ARG_DIFF_DST_LAYER);
    if (!dy || mem_new(b, &last->diff_dst, dy, 1e-3f))
        return -1;
    if (b->n_groups == 2)
        b->g[0].diff_dst = b->g[1].diff_src;
    for (int k = 0; k < b->n_groups; k++) {
        group *g = &b->g[k];
        doing = what[k];
        if (weights_for(b, g->bwd_pd, DNNL_ARG_WEIGHTS_LAYER, g->w_layer, &g->bw_layer) ||
            weights_for(b, g->bwd_pd, DNNL_ARG_WEIGHTS_ITER, g->w_iter, &g->bw_iter))
            return -1;
    }
    doing = "setup";
    return 0;
}

/* Mean |value| of memory m into *mean; -1 (message printed) when a value
 * is not finite. */
static int mean_abs(dnnl_memory_t m, const char *what, double *mean)
{
    void *p = NULL;
    const dnnl_memory_desc_t *md = NULL;
    DN(dnnl_memory_get_data_handle(m, &p));
    DN(dnnl_memory_get_memory_desc(m, &md));
    const size_t n = dnnl_memory_desc_get_size(md) / sizeof(float);
    const float *f = p;
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(f[i])) {
            fprintf(stderr, "dnnl_bench: %s[%zu] = %g is not finite\n", what, i, (double)f[i]);
            return -1;
        }
        sum += fabs((double)f[i]);
    }
    *mean = n ? sum / (double)n : 0;
    return 0;
}

static void bench_free(bench *b)
{
    for (int k = 0; k < b->n_re; k++) {
        dnnl_primitive_destroy(b->re[k].prim);
        dnnl_memory_destroy(b->re[k].dst);
    }
    for (int k = 0; k < b->n_groups; k++) {
        group *g = &b->g[k];
        dnnl_primitive_destroy(g->fwd);
        dnnl_primitive_destroy(g->bwd);
        dnnl_primitive_desc_destroy(g->fwd_pd);
        dnnl_primitive_desc_destroy(g->bwd_pd);
        if (k == 0)
            dnnl_memory_destroy(g->src); /* x; the others are the outputs before */
        if (k == b->n_groups - 1)
            dnnl_memory_destroy(g->diff_dst); /* dy; the others are diff_src after */
        dnnl_memory_t own[] = {g->dst,      g->ws,       g->w_layer, g->w_iter, g->bias,
                               g->diff_src, g->dw_layer, g->dw_iter, g->dbias};
        for (size_t i = 0; i < sizeof own / sizeof own[0]; i++)
            dnnl_memory_destroy(own[i]);
    }
    dnnl_stream_destroy(b->stream);
    dnnl_engine_destroy(b->eng);
}

static int run(bench *b, dnnl_primitive_t p, int n, const dnnl_exec_arg_t *args)
{
    DN(dnnl_primitive_execute(p, b->stream, n, args));
    return 0;
}

/* run(b, p, the arguments given as {arg, memory} pairs, counted) */
#define RUN(b, p, ...)                                                                   \
    run(b, p, (int)(sizeof((dnnl_exec_arg_t[]){__VA_ARGS__}) / sizeof(dnnl_exec_arg_t)), \
        (dnnl_exec_arg_t[]){__VA_ARGS__})

static int clear(dnnl_memory_t m)
{
    void *p = NULL;
    const dnnl_memory_desc_t *md = NULL;
    DN(dnnl_memory_get_data_handle(m, &p));
    DN(dnnl_memory_get_memory_desc(m, &md));
    memset(p, 0, dnnl_memory_desc_get_size(md));
    return 0;
}

/* One step: forward through the groups, backward through them in reverse. */
static int step(bench *b)
{
    for (int k = 0; k < b->n_re; k++) {
        doing = "weights reorder";
        const reorder *r = &b->re[k];
        if (RUN(b, r->prim, {DNNL_ARG_FROM, r->src}, {DNNL_ARG_TO, r->dst}))
            return -1;
    }
    for (int k = 0; k < b->n_groups; k++) {
        group *g = &b->g[k];
        doing = "forward";
        if (RUN(b, g->fwd, {DNNL_ARG_SRC_LAYER, g->src}, {DNNL_ARG_WEIGHTS_LAYER, g->w_layer},
                {DNNL_ARG_WEIGHTS_ITER, g->w_iter}, {DNNL_ARG_BIAS, g->bias},
                {DNNL_ARG_DST_LAYER, g->dst}, {DNNL_ARG_WORKSPACE, g->ws}))
            return -1;
    }
    for (int k = b->n_groups - 1; k >= 0; k--) {
        group *g = &b->g[k];
        doing = "backward";
        if (clear(g->dw_layer) || clear(g->dw_iter) || clear(g->dbias))
            return -1;
        if (RUN(b, g->bwd, {DNNL_ARG_SRC_LAYER, g->src}, {DNNL_ARG_WEIGHTS_LAYER, g->bw_layer},
                {DNNL_ARG_WEIGHTS_ITER, g->bw_iter}, {DNNL_ARG_BIAS, g->bias},
                {DNNL_ARG_DST_LAYER, g->dst}, {DNNL_ARG_WORKSPACE, g->ws},
                {DNNL_ARG_DIFF_DST_LAYER, g->diff_dst}, {DNNL_ARG_DIFF_SRC_LAYER, g->diff_src},
                {DNNL_ARG_DIFF_WEIGHTS_LAYER, g->dw_layer},
                {DNNL_ARG_DIFF_WEIGHTS_ITER, g->dw_iter}, {DNNL_ARG_DIFF_BIAS, g->dbias}))
            return -1;
    }
    doing = "stream wait";
    DN(dnnl_stream_wait(b->stream));
    return 0;
}

/* ---- reporting ---- */

static const char *isa_name(dnnl_cpu_isa_t isa)
{
    switch (isa) {
    case dnnl_cpu_isa_all: return "all";
    case dnnl_cpu_isa_sse41: return "sse41";
    case dnnl_cpu_isa_avx: return "avx";
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
    case dnnl_cpu_isa_avx512_mic: return "avx512_mic";
    case dnnl_cpu_isa_avx512_mic_4ops: return "avx512_mic_4ops";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    }
    return "unknown";
}

/* The instruction set oneDNN's kernels run on: the highest of its x86
 * levels that both this CPU has and the limit allows
 * (dnnl_get_effective_cpu_isa reports the limit alone: $ONEDNN_MAX_CPU_ISA,
 * or everything the library knows). A level's bits contain those of the
 * levels below it. */
static dnnl_cpu_isa_t isa_used(void)
{
    dnnl_cpu_isa_t limit = dnnl_get_effective_cpu_isa(), used = dnnl_cpu_isa_all;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
    const struct {
        dnnl_cpu_isa_t isa;
        bool has;
    } levels[] = {
        {dnnl_cpu_isa_sse41, __builtin_cpu_supports("sse4.1")},
        {dnnl_cpu_isa_avx, __builtin_cpu_supports("avx")},
        {dnnl_cpu_isa_avx2, __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")},
        {dnnl_cpu_isa_avx512_core, avx512},
        {dnnl_cpu_isa_avx512_core_vnni, avx512 && __builtin_cpu_supports("avx512vnni")},
        {dnnl_cpu_isa_avx512_core_bf16, avx512 && __builtin_cpu_supports("avx512bf16")},
        {dnnl_cpu_isa_avx512_core_amx, avx512 && __builtin_cpu_supports("amx-tile")},
    };
    for (size_t k = 0; k < sizeof levels / sizeof levels[0]; k++)
        if (levels[k].has &&
            (limit == dnnl_cpu_isa_all ||
             ((unsigned)levels[k].isa & (unsigned)limit) == (unsigned)levels[k].isa))
            used = levels[k].isa;
#endif
    return used;
}

/* The implementation oneDNN chose for pd (e.g. "ref:any"), spaces made
 * underscores so that it stays one key=value pair; into buf. */
static const char *impl_name(const_dnnl_primitive_desc_t pd, char *buf, size_t n)
{
    const char *s = NULL;
    if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, (void *)&s) != dnnl_success ||
        !s)
        s = "?";
    snprintf(buf, n, "%s", s);
    for (char *c = buf; *c; c++)
        if (*c == ' ' || *c == '=')
            *c = '_';
    return buf;
}

/* ---- --gemm: BLIS's SGEMM against oneDNN's on the config's products ---- */

/* One product C [m, n] := A [m, k] @ B [k, n], row-major, A or B given
 * transposed (stored [k, m] or [n, k]) when ta or tb. */
typedef struct gemm_shape {
    const char *name;
    long m, n, k, count; /* count: calls per training step */
    bool ta, tb;
    bool dw; /* C is a weight gradient (else W is the operand B) */
} gemm_shape;

/* Shape g with W stored [I, G] (oneDNN's ldigo) instead of [G, I]: W as
 * the operand B is read transposed the other way; a weight gradient is
 * computed transposed (dW^T = X^T dG: m and n swap, both operands still
 * stored [B*T, ...], so A stays transposed). */
static gemm_shape gemm_ldigo(gemm_shape g)
{
    if (g.dw) {
        long m = g.m;
        g.m = g.n, g.n = m;
    } else {
        g.tb = !g.tb;
    }
    return g;
}

/* Best of reps calls of each library (alternating, after one untimed call
 * of each), in ms. Returns 0, or -1 (the reason printed) when out of
 * memory, when oneDNN fails or when the two results differ. */
static int gemm_time(const gemm_shape *g, int reps, int threads, double *ms_blis, double *ms_dnnl)
{
    const long m = g->m, n = g->n, k = g->k;
    float *a = malloc(sizeof(float) * (size_t)(m * k)),
          *b = malloc(sizeof(float) * (size_t)(k * n));
    float *c = malloc(sizeof(float) * (size_t)(m * n)),
          *c2 = malloc(sizeof(float) * (size_t)(m * n));
    if (!a || !b || !c || !c2) {
        free(a), free(b), free(c), free(c2);
        fprintf(stderr, "dnnl_bench: --gemm %s: out of memory\n", g->name);
        return -1;
    }
    for (long i = 0; i < m * k; i++)
        a[i] = (float)((i * 7) % 13) * 0.01f;
    for (long i = 0; i < k * n; i++)
        b[i] = (float)((i * 5) % 11) * 0.01f;
    /* BLIS: row and column strides of the stored matrices */
    const inc_t ars = g->ta ? 1 : k, acs = g->ta ? m : 1, brs = g->tb ? 1 : n, bcs = g->tb ? k : 1;
    rntm_t rntm; /* the library's rule (matmul.c): BLIS threads from 2^22 multiply-adds */
    bli_rntm_init(&rntm);
    bli_rntm_set_num_threads((double)m * n * k < (double)(1 << 22) ? 1 : threads, &rntm);
    float one = 1.0f, zero = 0.0f;
    *ms_blis = *ms_dnnl = 1e30;
    int rc = 0;
    for (int r = 0; r <= reps && rc == 0; r++) {
        double t0 = ex_seconds();
        bli_sgemm_ex(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, m, n, k, &one, a, ars, acs, b, brs, bcs,
                     &zero, c, n, 1, NULL, &rntm);
        double t1 = ex_seconds();
        dnnl_status_t st = dnnl_sgemm(g->ta ? 'T' : 'N', g->tb ? 'T' : 'N', m, n, k, 1.0f, a,
                                      g->ta ? m : k, b, g->tb ? k : n, 0.0f, c2, n);
        double t2 = ex_seconds();
        if (st != dnnl_success) {
            fprintf(stderr, "dnnl_bench: --gemm %s: dnnl_sgemm failed: %s\n", g->name,
                    dnnl_status2str(st));
            rc = -1;
        }
        if (r > 0) { /* the first of each is a warm-up */
            *ms_blis = fmin(*ms_blis, 1e3 * (t1 - t0));
            *ms_dnnl = fmin(*ms_dnnl, 1e3 * (t2 - t1));
        }
    }
    /* Both computed the same product: the largest difference within 1e-4
     * of the largest |C| (float sums of up to k = B*T products of values in
     * [0, 0.12] and [0, 0.1], the libraries summing in different orders:
     * about k * 2^-24 relative at worst, 5e-4 at k 8192, typically far
     * less as the rounding errors cancel; a wrong stride is off by O(1)). */
    double dmax = 0, cmax = 0;
    for (long i = 0; i < m * n; i++) {
        dmax = fmax(dmax, fabs((double)c[i] - (double)c2[i]));
        cmax = fmax(cmax, fabs((double)c[i]));
    }
    if (rc == 0 && !(dmax <= 1e-4 * cmax)) {
        fprintf(stderr, "dnnl_bench: --gemm %s: BLIS and oneDNN differ by %g (largest |C| %g)\n",
                g->name, dmax, cmax);
        rc = -1;
    }
    free(a), free(b), free(c), free(c2);
    return rc;
}

static int gemm_main(const bench_config *cfg, const char *name, int threads, int reps)
{
    if (tn_runtime_init() != TN_OK || tn_set_num_threads(threads) != TN_OK) {
        fprintf(stderr, "dnnl_bench: --gemm: %s\n", tn_runtime_error());
        return 1;
    }
    const long gates = strcmp(cfg->cell, "lstm") == 0 ? 4 : strcmp(cfg->cell, "gru") == 0 ? 3 : 1;
    const long M = cfg->batch * cfg->seq, G = gates * cfg->hidden, H = cfg->hidden, E = BENCH_E;
    const long L = cfg->layers;
    /* W [G, I] (this library's and PyTorch's); gemm_ldigo gives each in
     * oneDNN's layout, the one its RNN primitives asked for here */
    const gemm_shape shapes[] = {
        {"proj_E", M, G, E, 1, false, true, false}, {"proj_H", M, G, H, L - 1, false, true, false},
        {"dx_E", M, E, G, 1, false, false, false},  {"dx_H", M, H, G, L - 1, false, false, false},
        {"dw_E", G, E, M, 1, true, false, true},    {"dw_H", G, H, M, 2 * L - 1, true, false, true},
    };
    const int n_shapes = (int)(sizeof shapes / sizeof shapes[0]);
    fprintf(stderr,
            "dnnl_bench --gemm: %s, %d threads, BLIS %s (%s), oneDNN isa %s; best of %d calls "
            "each, alternating\n",
            name, threads, tn_blis_config(), tn_blis_config_reason(), isa_name(isa_used()), reps);
    double step_b[2] = {0, 0}, step_d[2] = {0, 0}, peak_b = 0, peak_d = 0;
    for (int lay = 0; lay < 2; lay++) {
        printf("W as %s:\n", lay == 0 ? "[G, I] (this library, PyTorch)" : "[I, G] (oneDNN ldigo)");
        for (int s = lay == 0 ? -1 : 0; s < n_shapes; s++) { /* -1: the peak product, once */
            const gemm_shape g =
                s < 0      ? (gemm_shape){"peak", 1024, 1024, 1024, 0, false, false, false}
                : lay == 0 ? shapes[s]
                           : gemm_ldigo(shapes[s]);
            if (s >= 0 && g.count == 0)
                continue;
            double tb, td;
            if (gemm_time(&g, reps, threads, &tb, &td))
                return 1;
            const double gf = 2.0 * (double)g.m * g.n * g.k / 1e6;
            printf(
                "  %-7s m %5ld n %5ld k %5ld %-3s %-3s x%ld  BLIS %7.2f ms %6.1f GFLOP/s  oneDNN "
                "%7.2f ms %6.1f GFLOP/s  BLIS/oneDNN %.3f\n",
                g.name, g.m, g.n, g.k, g.ta ? "A^T" : "", g.tb ? "B^T" : "", g.count, tb, gf / tb,
                td, gf / td, td / tb);
            if (s < 0)
                peak_b = gf / tb, peak_d = gf / td;
            step_b[lay] += (double)g.count * tb;
            step_d[lay] += (double)g.count * td;
        }
    }
    const double best_d = fmin(step_d[0], step_d[1]);
    printf("gemm=1 config=%s threads=%d blis=%s isa=%s peak_blis=%.1f peak_onednn=%.1f "
           "step_blis_ms=%.2f step_onednn_ms=%.2f step_blis_ldigo_ms=%.2f "
           "step_onednn_ldigo_ms=%.2f blis_over_onednn=%.3f\n",
           name, threads, tn_blis_config(), isa_name(isa_used()), peak_b, peak_d, step_b[0],
           step_d[0], step_b[1], step_d[1], best_d / step_b[0]);
    return 0;
}

int main(int argc, char **argv)
{
    bench_shape_opts so = {.config = "lstm-s"};
    int64_t threads = 0, warmup = 3, reps = 11;
    double seconds = 5.0;
    bool gemm = false;
    const ex_opt table[] = {
        BENCH_SHAPE_OPTS(&so),
        {"--threads", EX_INT, &threads, "N", "OpenMP threads (omp_set_num_threads)", .imin = 0,
         .imax = 1024, .def = "$OMP_NUM_THREADS, else the cores"},
        BENCH_TIME_OPTS(&seconds, &warmup),
        {"--gemm", EX_FLAG, &gemm, NULL,
         "time BLIS's and oneDNN's SGEMM on the config's large products instead", .imin = 0},
        {"--reps", EX_INT, &reps, "R", "--gemm: best of R calls per product", .imin = 1,
         .imax = 1000},
    };
    const ex_spec spec = {
        .prog = "dnnl_bench",
        .summary = "oneDNN's recurrent layers alone (forward_training + backward), timed",
        .opts = table,
        .n_opts = (int)(sizeof table / sizeof table[0]),
        .notes = "The recurrent layers of rnn_bench's configurations in oneDNN: x [T, B, 64]\n"
                 "-> L layers (RNN tanh, LSTM, GRU as lbr_gru) -> backward (data and\n"
                 "weights), float32, without rnn_bench's embedding, output layer, loss,\n"
                 "clipping and Adam. $ONEDNN_MAX_CPU_ISA limits oneDNN's CPU path. The last\n"
                 "stdout line is key=value pairs (config=... tokens_per_s=...).\n"
                 "--gemm: BLIS's SGEMM (as the library calls it) against oneDNN's dnnl_sgemm\n"
                 "on the config's input projections, input and weight gradients and the\n"
                 "1024^3 peak product; the last line adds up one step's calls of them.\n",
    };
    int rc = ex_parse(&spec, argc, argv, NULL);
    if (rc != EX_OK)
        return rc == EX_DONE ? 0 : 2;
    char name[96];
    const bench_config cfg = bench_config_pick(&so, name, sizeof name);
    if (threads > 0)
        omp_set_num_threads((int)threads);
    const int nthreads = omp_get_max_threads();
    if (gemm)
        return gemm_main(&cfg, name, nthreads, (int)reps);

    bench b;
    memset(&b, 0, sizeof b);
    if (bench_init(&b, &cfg))
        return 1;
    const dnnl_version_t *v = dnnl_version();
    const char *env = getenv("ONEDNN_MAX_CPU_ISA");
    if (!env || !*env)
        env = getenv("DNNL_MAX_CPU_ISA");
    if (env && !*env)
        env = NULL;
    const char *isa = isa_name(isa_used()), *isa_max = isa_name(dnnl_get_effective_cpu_isa());
    char impl_fwd[64], impl_bwd[64];
    impl_name(b.g[0].fwd_pd, impl_fwd, sizeof impl_fwd);
    impl_name(b.g[0].bwd_pd, impl_bwd, sizeof impl_bwd);
    fprintf(stderr,
            "dnnl_bench: %s: %s H=%ld B=%ld T=%ld L=%ld E=%d; oneDNN %d.%d.%d, %d threads, "
            "isa %s (oneDNN's limit %s, ONEDNN_MAX_CPU_ISA %s), implementations %s / %s, "
            "%d weight reorders per step\n",
            name, b.cell == CELL_GRU ? "lbr_gru" : cfg.cell, cfg.hidden, cfg.batch, cfg.seq,
            cfg.layers, (int)BENCH_E, v->major, v->minor, v->patch, nthreads, isa, isa_max,
            env ? env : "unset", impl_fwd, impl_bwd, b.n_re);

    for (long w = 0; w < warmup; w++)
        if (step(&b))
            return 1;
    long steps = 0;
    double t0 = ex_seconds(), el = 0;
    do {
        if (step(&b))
            return 1;
        steps++;
        el = ex_seconds() - t0;
    } while (el < seconds || steps < 2);

    /* the computation ran: the output and the input gradient are finite */
    double y_abs = 0, dx_abs = 0;
    doing = "check";
    if (mean_abs(b.g[b.n_groups - 1].dst, "y", &y_abs) || mean_abs(b.g[0].diff_src, "dx", &dx_abs))
        return 1;
    fprintf(stderr, "dnnl_bench: %ld steps; mean |y| %.4g, mean |dx| %.4g\n", warmup + steps, y_abs,
            dx_abs);

    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    const long B = cfg.batch, T = cfg.seq, H = cfg.hidden, L = cfg.layers;
    const double flops = bench_rnn_flops(&cfg); /* as rnn_bench's, without its head */
    const double sec = el / (double)steps;
    printf("config=%s threads=%d ms_per_step=%.3f tokens_per_s=%.0f gflops=%.2f layers_only=1 "
           "rss_mb=%.1f steps=%ld cell=%s H=%ld B=%ld T=%ld L=%ld isa=%s isa_max=%s "
           "isa_env=%s impl_fwd=%s impl_bwd=%s reorders_per_step=%d dnnl=%d.%d.%d\n",
           name, nthreads, 1e3 * sec, (double)(B * T) / sec, flops / sec / 1e9,
           (double)ru.ru_maxrss / 1024.0, steps, b.cell == CELL_GRU ? "lbr_gru" : cfg.cell, H, B, T,
           L, isa, isa_max, env ? env : "-", impl_fwd, impl_bwd, b.n_re, v->major, v->minor,
           v->patch);
    bench_free(&b);
    return 0;
}
