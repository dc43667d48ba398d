/* src/ops/scan.c - a recurrence captured from a step function (tn_scan).
 *
 * The user writes one step of a cell as a function of tape ops. tn_scan
 * records that function once, on a private tape with placeholder inputs,
 * and reads the recorded graph as a small program over rows:
 *
 *   - products y [B, N] = (bias +) a [B, K] @ w with w a parameter (or a
 *     view of one): run on the packed weight (tn__packed_product);
 *   - element-wise ops (add, sub, mul, div; the one-input maps) whose
 *     operands are step values of width n or parameters of width n
 *     broadcast over the rows; narrow views along the last dim.
 *
 * It then runs the program for T steps as ONE tape node. Runs of
 * element-wise ops between products execute row by row (a row's chain
 * stays in L1) with the rows split over the threads in one parallel
 * region; the backward walks the same program in reverse per step, with
 * the step's gradients in small reused buffers, and the weight gradients
 * of the products summed as one GEMM over all T*B rows at the end.
 *
 * A step outside that subset (another op, a product whose right operand
 * is not a parameter, more than TN__SCAN_MAX_ROWS rows) is run eagerly
 * instead: the function is called at every step on the caller's tape.
 * Both give the same values within float rounding (tests/test_scan.c).
 *
 * Layout. x_j [T, B, G_j] (any strides with unit last stride), states
 * [B, H_k]. The result y [T, B, S], S = sum H_k, holds the states after
 * every step side by side; the final states are its last step. A value is
 * addressed by (kind, id, column offset): inputs and outputs by step and
 * row, node values in [T, B, n] buffers (the output nodes' buffers are
 * y's columns), parameters by column only.
 */
#include "ops_internal.h"
#include "rows.h"

#include <omp.h>

#define TN__SCAN_MAX_ROWS   256
#define SCAN_MAX_NODES      256
#define TN__SCAN_MAX_STATES 8
#define TN__SCAN_MAX_X      8

enum { V_X, V_STATE, V_NODE, V_PARAM };

typedef struct sval {
    int kind, id;       /* V_*; index of the input, state or node */
    int64_t off, width; /* columns */
} sval;

enum { S_MM, S_MAP, S_ZIP };

typedef struct snode {
    int kind;            /* S_MM, S_MAP, S_ZIP */
    tn__map f;           /* S_MAP */
    tn__zip z;           /* S_ZIP */
    double a;            /* S_MAP scalar */
    sval in[2];          /* MAP: x; ZIP: a, b; MM: a, bias (bias.kind -1: none) */
    int64_t n;           /* width */
    char *w, *wg;        /* MM: the weight operand's data and gradient (the view's) */
    tn_tensor *wroot;    /* MM: the parameter it is (a view of) */
    int64_t wrs, wcs, K; /* its strides and inner size */
    char *buf;           /* values [T][B] rows of row stride rs, step stride ts */
    int64_t rs, ts;
    char *g;     /* a step's gradient [B, n], reused (none with dsave: node_g) */
    char *dsave; /* MM: dY of every step [T][B][n] (the merged weight gradient) */
    /* MM in rows mode (scan_by_rows): the packed w (forward) or w^T
     * (backward) and each thread's scratch for its rows */
    const tn__packed *pk;
    void *const *pscr;
} snode;

typedef struct scan {
    tn_dtype dt;
    int64_t T, B, S;
    int n_x, n_state, n_node, n_param;
    tn_tensor **x;     /* [n_x] */
    tn_tensor **init;  /* [n_state] */
    tn_tensor **param; /* [n_param]: broadcast parameters (roots) */
    int64_t *h, *soff; /* state widths and their columns in y */
    int *out;          /* [n_state]: the node giving each state */
    snode *node;
    tn_tensor **inputs; /* every tensor the backward adds into: x, init, parameters */
    int n_inputs;
} scan;

/* ---- addressing ---- */

static size_t esz(const scan *s) { return tn_dtype_size(s->dt); }

/* Row r of value v at step t (its first column), or NULL for a zero row. */
static char *vrow(const scan *s, const sval *v, int64_t t, int64_t r)
{
    size_t es = esz(s);
    switch (v->kind) {
    case V_X: {
        const tn_tensor *x = s->x[v->id];
        return (char *)x->data + (size_t)(t * x->stride[0] + r * x->stride[1] + v->off) * es;
    }
    case V_STATE:
        if (t == 0) {
            const tn_tensor *h0 = s->init[v->id];
            return (char *)h0->data + (size_t)(r * h0->stride[0] + v->off) * es;
        }
        return vrow(s, &(sval){V_NODE, s->out[v->id], v->off, v->width}, t - 1, r);
    case V_NODE: {
        const snode *nd = &s->node[v->id];
        return nd->buf + (size_t)(t * nd->ts + r * nd->rs + v->off) * es;
    }
    default: return (char *)s->param[v->id]->data + (size_t)v->off * es;
    }
}

/* Row stride of value v (0 for a broadcast parameter). */
static int64_t vstride(const scan *s, const sval *v, int64_t t)
{
    switch (v->kind) {
    case V_X: return s->x[v->id]->stride[1];
    case V_STATE: return t == 0 ? s->init[v->id]->stride[0] : s->node[s->out[v->id]].rs;
    case V_NODE: return s->node[v->id].rs;
    default: return 0;
    }
}

/* Backward buffers of one step: where row r of value v's gradient goes.
 * gx: the inputs' gradients (NULL when not wanted); carry: the gradient
 * of each state input [B, H_k]; pgrad: per-row parameter sums [B][P]. */
typedef struct sgrad {
    char **carry;
    char *pgrad;
    int64_t P, *poff;
} sgrad;

/* Node nd's gradient at step t [B, n]: its slice of dsave, or the reused
 * step buffer. */
static char *node_g(const scan *s, const snode *nd, int64_t t)
{
    return nd->dsave ? nd->dsave + (size_t)(t * s->B * nd->n) * esz(s) : nd->g;
}

static char *grow(const scan *s, const sgrad *gb, const sval *v, int64_t t, int64_t r)
{
    size_t es = esz(s);
    switch (v->kind) {
    case V_X: {
        const tn_tensor *x = s->x[v->id];
        if (!x->grad || !x->requires_grad)
            return NULL;
        return (char *)x->grad + (size_t)(t * x->stride[0] + r * x->stride[1] + v->off) * es;
    }
    case V_STATE: return gb->carry[v->id] + (size_t)(r * s->h[v->id] + v->off) * es;
    case V_NODE:
        return node_g(s, &s->node[v->id], t) + (size_t)(r * s->node[v->id].n + v->off) * es;
    default: return gb->pgrad + (size_t)(r * gb->P + gb->poff[v->id] + v->off) * es;
    }
}

static int64_t gstride(const scan *s, const sgrad *gb, const sval *v, int64_t t)
{
    switch (v->kind) {
    case V_X: return s->x[v->id]->stride[1];
    case V_STATE: return s->h[v->id];
    case V_NODE: return s->node[v->id].n;
    default: (void)t; return gb->P;
    }
}

/* ---- capture: the step's graph as a program ---- */

typedef struct capture {
    tn_tape *priv;
    tn_tensor **xph, **sph;           /* placeholders */
    tn_tensor *nodes[SCAN_MAX_NODES]; /* private tensor of each program node */
} capture;

/* The value that private tensor t is, or false when it is outside the
 * subset. Views (narrow along the last dim of a 2-D value) add offsets. */
static bool value_of(scan *s, capture *c, const tn_tensor *t, sval *v)
{
    int64_t off = 0;
    while (tn__node(t)->is_view && tn__node(t)->tape == c->priv) {
        if (tn__node(t)->op != TN_OP_NARROW || t->ndim != 2 || tn__node(t)->src[0]->ndim != 2 ||
            t->shape[0] != tn__node(t)->src[0]->shape[0] ||
            t->stride[0] != tn__node(t)->src[0]->stride[0])
            return false;
        off += tn__node(t)->view_offset; /* within the row: the row stride is unchanged */
        t = tn__node(t)->src[0];
    }
    v->off = off;
    v->width = 0;
    for (int j = 0; j < s->n_x; j++)
        if (t == c->xph[j])
            return *v = (sval){V_X, j, off, 0}, true;
    for (int k = 0; k < s->n_state; k++)
        if (t == c->sph[k])
            return *v = (sval){V_STATE, k, off, 0}, true;
    for (int i = 0; i < s->n_node; i++)
        if (t == c->nodes[i])
            return *v = (sval){V_NODE, i, off, 0}, true;
    if (tn__node(t)->on_heap && (t->ndim == 1 || (t->ndim == 2 && t->shape[0] == 1)) && off == 0 &&
        t->stride[t->ndim - 1] == 1) {
        for (int p = 0; p < s->n_param; p++)
            if (s->param[p] == t)
                return *v = (sval){V_PARAM, p, 0, 0}, true;
        s->param[s->n_param] = (tn_tensor *)t;
        return *v = (sval){V_PARAM, s->n_param++, 0, 0}, true;
    }
    return false;
}

/* Width of a value (the node's columns beyond its offset are not known
 * here: the user of the value gives it). */
static bool read_node(scan *s, capture *c, const tn_tensor *t, snode *nd)
{
    if (t->ndim != 2 || t->shape[0] != s->B || t->dtype != s->dt)
        return false;
    memset(nd, 0, sizeof *nd);
    nd->n = t->shape[1];
    tn__map f = tn__node(t)->op == TN_OP_DROPOUT ? TN__MAP_COUNT : tn__map_of(tn__node(t)->op);
    if (f != TN__MAP_COUNT) { /* dropout needs its mask: not captured */
        nd->kind = S_MAP, nd->f = f, nd->a = tn__node(t)->fparam[0];
        return value_of(s, c, tn__node(t)->src[0], &nd->in[0]) &&
               tn__node(t)->src[0]->shape[0] == s->B && tn__node(t)->src[0]->ndim == 2 &&
               nd->in[0].kind != V_PARAM;
    }
    if (tn__zip_of(tn__node(t)->op) != TN__ZIP_COUNT) {
        nd->kind = S_ZIP;
        nd->z = tn__zip_of(tn__node(t)->op);
        for (int k = 0; k < 2; k++) {
            const tn_tensor *o = tn__node(t)->src[k];
            int64_t ow = o->shape[o->ndim - 1];
            bool rows_ok = (o->ndim == 2 && o->shape[0] == s->B) || o->ndim == 1 ||
                           (o->ndim == 2 && o->shape[0] == 1);
            if (ow != nd->n || !rows_ok || !value_of(s, c, o, &nd->in[k]))
                return false;
            if ((nd->in[k].kind == V_PARAM) != (o->ndim == 1 || o->shape[0] != s->B))
                return false;
        }
        return nd->in[0].kind != V_PARAM || nd->in[1].kind != V_PARAM;
    }
    if (tn__node(t)->op == TN_OP_MATMUL || tn__node(t)->op == TN_OP_ADDMM) {
        const tn_tensor *a = tn__node(t)->src[tn__node(t)->op == TN_OP_ADDMM ? 1 : 0];
        const tn_tensor *w = tn__node(t)->src[tn__node(t)->op == TN_OP_ADDMM ? 2 : 1];
        nd->kind = S_MM;
        nd->in[1].kind = -1;
        if (!tn__is_weight(w) || (w->stride[0] != 1 && w->stride[1] != 1) || a->ndim != 2 ||
            a->shape[0] != s->B || !value_of(s, c, a, &nd->in[0]) || nd->in[0].kind == V_PARAM)
            return false;
        const tn_tensor *root = w;
        while (tn__node(root)->is_view)
            root = tn__node(root)->src[0];
        if (!root->grad && root->requires_grad)
            return false;
        nd->wroot = (tn_tensor *)root;
        nd->w = w->data;
        nd->wg = root->grad ? (char *)root->grad + ((char *)w->data - (char *)root->data) : NULL;
        nd->wrs = w->stride[0], nd->wcs = w->stride[1], nd->K = w->shape[0];
        if (tn__node(t)->op == TN_OP_ADDMM) {
            const tn_tensor *b = tn__node(t)->src[0];
            bool row = b->ndim == 1 || (b->ndim == 2 && b->shape[0] == 1);
            if (!(row || (b->ndim == 2 && b->shape[0] == s->B)) || !value_of(s, c, b, &nd->in[1]))
                return false;
            if ((nd->in[1].kind == V_PARAM) != row)
                return false;
        }
        return true;
    }
    return false;
}

/* Record the step on a private tape (the caller's tape's sub-tape, kept
 * across resets, so a training loop allocates nothing once warm) and read
 * it. Returns 1 when captured, 0 when the step is outside the subset (run
 * it eagerly), -1 on error. */
static int capture_step(scan *s, tn_step_fn step, void *ctx, tn_tape *tp)
{
    capture c = {0};
    int rc = 0;
    if (!tp->sub)
        tp->sub = tn_tape_new();
    c.priv = tp->sub;
    if (c.priv)
        tn_tape_reset(c.priv);
    tn_tensor *xph[TN__SCAN_MAX_X], *sph[TN__SCAN_MAX_STATES], *next[TN__SCAN_MAX_STATES];
    if (!c.priv)
        return -1;
    c.xph = xph, c.sph = sph;
    for (int j = 0; j < s->n_x; j++) {
        xph[j] = tn_tape_tensor(c.priv, s->dt, 2, (int64_t[]){s->B, s->x[j]->shape[2]});
        if (!xph[j])
            goto done;
        xph[j]->requires_grad = true;
    }
    for (int k = 0; k < s->n_state; k++) {
        sph[k] = tn_tape_tensor(c.priv, s->dt, 2, (int64_t[]){s->B, s->h[k]});
        if (!sph[k])
            goto done;
        sph[k]->requires_grad = true;
        next[k] = NULL;
    }
    if (step(c.priv, ctx, xph, sph, next) != TN_OK || tn_tape_error(c.priv))
        goto done; /* the eager run reports the error */
    size_t nn = tn_tape_size(c.priv);
    s->node = tn_tape_alloc(tp, sizeof *s->node * (nn + 1));
    s->param = tn_tape_alloc(tp, sizeof *s->param * (3 * nn + 1));
    if (!s->node || !s->param) {
        rc = -1;
        goto done;
    }
    for (size_t i = 0; i < nn; i++) {
        tn_tensor *t = tn_tape_node(c.priv, i);
        if (tn__node(t)->is_view)
            continue;
        if (s->n_node == SCAN_MAX_NODES || !read_node(s, &c, t, &s->node[s->n_node]))
            goto done;
        c.nodes[s->n_node++] = t;
    }
    for (int k = 0; k < s->n_state; k++) {
        s->out[k] = -1;
        for (int i = 0; i < s->n_node && next[k]; i++)
            if (c.nodes[i] == next[k])
                s->out[k] = i;
        if (s->out[k] < 0 || next[k]->shape[1] != s->h[k])
            goto done;
        for (int j = 0; j < k; j++)
            if (s->out[j] == s->out[k])
                goto done; /* one node cannot be two states */
    }
    rc = 1;
done:
    tn_tape_reset(c.priv); /* keeps its memory for the next call */
    return rc;
}

/* ---- forward ---- */

/* Node i's row r at step t from its inputs' rows. */
static void node_row_fw(const scan *s, const tn__rows *kr, const snode *nd, int64_t t, int64_t r)
{
    char *y = nd->buf + (size_t)(t * nd->ts + r * nd->rs) * esz(s);
    if (nd->kind == S_MAP) {
        kr->map_fw(nd->f, nd->n, vrow(s, &nd->in[0], t, r), 1, nd->a, NULL, y);
    } else {
        kr->zip_fw(nd->z, nd->n, vrow(s, &nd->in[0], t, r), 1, vrow(s, &nd->in[1], t, r), 1, y);
    }
}

static int scan_threads(const scan *s)
{
    int nt = tn__threads_now();
    return nt > s->B ? (int)s->B : nt;
}

/* The products of node nd at step t, rows r0 .. r1 - 1: y := bias; y +=
 * a @ w, through the packed w: the product's own threads (k < 0), or
 * nd->pk on thread k with its scratch (rows mode). */
static void node_mm_fw(tn_tape *tp, const scan *s, const snode *nd, int64_t t, int64_t r0,
                       int64_t r1, int k)
{
    size_t es = esz(s);
    char *y = nd->buf + (size_t)(t * nd->ts + r0 * nd->rs) * es;
    char *a = vrow(s, &nd->in[0], t, r0);
    int64_t lda = vstride(s, &nd->in[0], t);
    bool acc = nd->in[1].kind >= 0;
    if (acc)
        for (int64_t r = r0; r < r1; r++)
            memcpy(y + (size_t)((r - r0) * nd->rs) * es, vrow(s, &nd->in[1], t, r),
                   (size_t)nd->n * es);
    if (k >= 0) {
        tn__packed_mul(nd->pk, r1 - r0, a, lda, y, nd->rs, acc, nd->pscr[k]);
        return;
    }
    tn__mat A = {a, r1 - r0, nd->K, lda, 1};
    tn__mat W = {nd->w, nd->K, nd->n, nd->wrs, nd->wcs};
    tn__mat Y = {y, r1 - r0, nd->n, nd->rs, 1};
    if (!tn__packed_product(tp, s->dt, A, W, Y, acc))
        tn__gemm(s->dt, A, W, acc ? 1.0 : 0.0, Y);
}

/* Step t. Rows mode (k >= 0): thread k's rows r0 .. r1 - 1 through every
 * node. Else (k < 0, all rows): the products on their own threads, runs of
 * element-wise nodes row by row (a row's chain stays in L1) with the rows
 * split over the threads. */
static void run_fw(tn_tape *tp, const scan *s, int64_t t, int64_t r0, int64_t r1, int k)
{
    const tn__rows *kr = tn__rows_get(s->dt);
    int nt = k >= 0 ? 1 : scan_threads(s);
    for (int i0 = 0; i0 < s->n_node;) {
        if (s->node[i0].kind == S_MM) {
            node_mm_fw(tp, s, &s->node[i0++], t, r0, r1, k);
            continue;
        }
        int i1 = i0;
        while (i1 < s->n_node && s->node[i1].kind != S_MM)
            i1++;
        TN_FTZ_SCOPE;
#pragma omp parallel num_threads(nt) if (nt > 1)
        {
            int q = omp_get_thread_num(), nq = omp_get_num_threads(); /* the team's own size */
            int64_t a = r0 + (r1 - r0) * q / nq, b = r0 + (r1 - r0) * (q + 1) / nq;
            for (int64_t r = a; r < b; r++)
                for (int i = i0; i < i1; i++)
                    node_row_fw(s, kr, &s->node[i], t, r);
        }
        i0 = i1;
    }
}

/* Rows mode: with at least 16 rows per thread and every product's packed
 * weight at most SCAN_ROWS_MAX_PACKED bytes (it stays in each core's L2),
 * each thread runs its rows through all T steps, forward and backward,
 * with no barrier: a step's values of row r depend on row r only. Else
 * every op of a step splits over the threads on its own (several
 * barriers per step). Sets each product's packed operand (w forward, w^T
 * backward) and the threads' scratch; false for the other mode. */
#define SCAN_ROWS_MAX_PACKED ((int64_t)3 << 19)
static bool scan_by_rows(tn_tape *tp, scan *s, bool back, int nt)
{
    if (nt < 2 || s->B < 16 * (int64_t)nt)
        return false;
    for (int i = 0; i < s->n_node; i++) {
        snode *nd = &s->node[i];
        if (nd->kind != S_MM)
            continue;
        tn__mat W = {nd->w, nd->K, nd->n, nd->wrs, nd->wcs};
        nd->pk = tn__packed_weight(tp, s->dt, back ? tn__mat_t(W) : W, s->B, nt, &nd->pscr);
        if (!nd->pk || tn__packed_bytes(nd->pk) > SCAN_ROWS_MAX_PACKED)
            return false;
    }
    return true;
}

/* ---- backward ---- */

static void node_row_bw(const scan *s, const sgrad *gb, const tn__rows *kr, const snode *nd,
                        int64_t t, int64_t r)
{
    const char *dy = node_g(s, nd, t) + (size_t)(r * nd->n) * esz(s);
    if (nd->kind == S_MAP) {
        char *dx = grow(s, gb, &nd->in[0], t, r);
        if (dx)
            kr->map_bw(nd->f, nd->n, vrow(s, &nd->in[0], t, r), 1,
                       nd->buf + (size_t)(t * nd->ts + r * nd->rs) * esz(s), dy, nd->a, NULL, dx);
        return;
    }
    for (int which = 0; which < 2; which++) {
        char *dx = grow(s, gb, &nd->in[which], t, r);
        if (dx)
            kr->zip_bw(nd->z, which, nd->n, vrow(s, &nd->in[0], t, r), 1, vrow(s, &nd->in[1], t, r),
                       1, dy, dx, 1);
    }
}

/* dbias and da of a product at step t, rows r0 .. r1 - 1; dY is saved
 * for the merged dW. da through the packed w^T: the product's own threads
 * (wt NULL, all rows), or wt on the calling thread with scratch scr. */
static void node_mm_bw(tn_tape *tp, const scan *s, const sgrad *gb, const snode *nd, int64_t t,
                       int64_t r0, int64_t r1, const tn__packed *wt, void *scr)
{
    size_t es = esz(s);
    int64_t n = nd->n;
    char *g = node_g(s, nd, t) + (size_t)(r0 * n) * es;
    if (nd->in[1].kind >= 0) /* dbias += dY, row by row */
        TN_FOR_DTYPE(s->dt, T, {
            for (int64_t r = r0; r < r1; r++) {
                T *db = (T *)grow(s, gb, &nd->in[1], t, r);
                const T *d = (const T *)g + (r - r0) * n;
                if (db)
                    for (int64_t j = 0; j < n; j++)
                        db[j] += d[j];
            }
        });
    char *da = grow(s, gb, &nd->in[0], t, r0);
    if (!da)
        return;
    int64_t lda = gstride(s, gb, &nd->in[0], t);
    if (wt) {
        tn__packed_mul(wt, r1 - r0, g, n, da, lda, true, scr);
        return;
    }
    tn__mat dY = {g, r1 - r0, n, n, 1}, dA = {da, r1 - r0, nd->K, lda, 1};
    tn__mat Wt = {nd->w, n, nd->K, nd->wcs, nd->wrs}; /* w^T */
    if (!tn__packed_product(tp, s->dt, dY, Wt, dA, true))
        tn__gemm(s->dt, dY, Wt, 1.0, dA);
}

/* dW += A_all^T @ dY_all over every step, by as few GEMMs as the layout
 * of A allows (one, or two when A is a state: the initial rows apart). */
static void node_mm_dw(const scan *s, const snode *nd)
{
    if (!nd->wg || !nd->dsave)
        return;
    size_t es = esz(s);
    int64_t B = s->B, n = nd->n;
    tn__mat dW = {nd->wg, nd->K, n, nd->wrs, nd->wcs};
    const sval *a = &nd->in[0];
    int64_t t0 = 0;
    if (a->kind == V_STATE) { /* step 0 reads the initial state */
        tn__mat A0 = {vrow(s, a, 0, 0), B, nd->K, vstride(s, a, 0), 1};
        tn__gemm(s->dt, tn__mat_t(A0), (tn__mat){nd->dsave, B, n, n, 1}, 1.0, dW);
        t0 = 1;
    }
    if (t0 >= s->T)
        return;
    int64_t rs = vstride(s, a, t0);
    bool one = a->kind != V_X || s->x[a->id]->stride[0] == B * rs;
    for (int64_t t = t0; t < s->T; t += one ? s->T : 1) {
        int64_t steps = one ? s->T - t0 : 1;
        tn__mat A = {vrow(s, a, t, 0), steps * B, nd->K, rs, 1};
        tn__mat D = {nd->dsave + (size_t)(t * B * n) * es, steps * B, n, n, 1};
        tn__gemm(s->dt, tn__mat_t(A), D, 1.0, dW);
    }
}

/* Backward of step t for rows r0 .. r1 - 1: the outputs' gradients (dL/dy
 * at step t plus what step t + 1 sent back to its state inputs, in from),
 * then the program in reverse, sending the states' gradients into to.
 * Rows mode (k >= 0): thread k's rows, every node on it. Else (all rows,
 * k < 0): products on their own threads, element-wise runs with the rows
 * split over the threads. */
static void bw_step(tn_tape *tp, const scan *s, const tn_tensor *y, sgrad *gb, char **from,
                    char **to, int64_t t, int64_t r0, int64_t r1, int k)
{
    size_t es = esz(s);
    int64_t B = s->B, m = r1 - r0;
    const tn__rows *kr = tn__rows_get(s->dt);
    int nt = k >= 0 ? 1 : scan_threads(s);
    for (int i = 0; i < s->n_node; i++) {
        const snode *nd = &s->node[i];
        memset(node_g(s, nd, t) + (size_t)(r0 * nd->n) * es, 0, (size_t)(m * nd->n) * es);
    }
    for (int q = 0; q < s->n_state; q++) {
        int64_t h = s->h[q];
        TN_FOR_DTYPE(s->dt, T, {
            T *g = (T *)node_g(s, &s->node[s->out[q]], t);
            const T *c = (const T *)from[q];
            const T *dy = (const T *)y->grad + t * B * s->S + s->soff[q];
            for (int64_t r = r0; r < r1; r++)
                for (int64_t j = 0; j < h; j++)
                    g[r * h + j] += dy[r * s->S + j] + c[r * h + j];
        });
        memset(to[q] + (size_t)(r0 * h) * es, 0, (size_t)(m * h) * es);
    }
    gb->carry = to;
    for (int i1 = s->n_node; i1 > 0;) {
        if (s->node[i1 - 1].kind == S_MM) {
            const snode *nd = &s->node[--i1];
            node_mm_bw(tp, s, gb, nd, t, r0, r1, k >= 0 ? nd->pk : NULL,
                       k >= 0 ? nd->pscr[k] : NULL);
            continue;
        }
        int i0 = i1;
        while (i0 > 0 && s->node[i0 - 1].kind != S_MM)
            i0--;
#pragma omp parallel num_threads(nt) if (nt > 1)
        {
            int q = omp_get_thread_num(), nq = omp_get_num_threads(); /* the team's own size */
            int64_t a = r0 + m * q / nq, b = r0 + m * (q + 1) / nq;
            for (int64_t r = a; r < b; r++)
                for (int i = i1; i-- > i0;)
                    node_row_bw(s, gb, kr, &s->node[i], t, r);
        }
        i1 = i0;
    }
}

void tn__bw_scan(tn_tensor *y)
{
    scan *s = tn__node(y)->aux;
    tn_tape *tp = tn__node(y)->tape;
    size_t es = esz(s);
    int64_t B = s->B;
    int nt = scan_threads(s);
    /* buffers: two sets of carries (the gradient reaching each state from
     * the step after, and the one this step sends to the step before),
     * the per-row parameter sums */
    sgrad gb = {0};
    char *cbuf[2][TN__SCAN_MAX_STATES], **from = cbuf[0], **to = cbuf[1];
    for (int k = 0; k < s->n_state; k++) {
        from[k] = tn_tape_alloc(tp, (size_t)(B * s->h[k]) * es);
        to[k] = tn_tape_alloc(tp, (size_t)(B * s->h[k]) * es);
        if (!from[k] || !to[k])
            return;
        memset(from[k], 0, (size_t)(B * s->h[k]) * es); /* nothing from after the end */
    }
    int64_t P = 0, *poff = tn_tape_alloc(tp, sizeof *poff * (size_t)(s->n_param + 1));
    if (!poff)
        return;
    for (int p = 0; p < s->n_param; p++)
        poff[p] = P, P += tn_numel(s->param[p]);
    gb.P = P, gb.poff = poff;
    gb.pgrad = P ? tn_tape_alloc(tp, (size_t)(B * P) * es) : NULL;
    if (P && !gb.pgrad)
        return;
    if (P)
        memset(gb.pgrad, 0, (size_t)(B * P) * es);
    for (int i = 0; i < s->n_node; i++) {
        snode *nd = &s->node[i];
        /* a product's dY of every step is kept for its weight gradient:
         * there its step gradient lives, step by step */
        nd->dsave =
            nd->kind == S_MM && nd->wg ? tn_tape_alloc(tp, (size_t)(s->T * B * nd->n) * es) : NULL;
        nd->g = nd->dsave ? NULL : tn_tape_alloc(tp, (size_t)(B * nd->n) * es);
        if (!nd->dsave && !nd->g)
            return;
    }
    if (scan_by_rows(tp, s, true, nt)) {
        TN_FTZ_SCOPE;
#pragma omp parallel num_threads(nt)
        {
            int k = omp_get_thread_num(), n = omp_get_num_threads();
            sgrad mine = gb; /* its own carry pointer */
            char **f = cbuf[0], **c = cbuf[1];
            for (int64_t t = s->T; t-- > 0;) {
                bw_step(tp, s, y, &mine, f, c, t, B * k / n, B * (k + 1) / n, k);
                char **sw = f;
                f = c, c = sw;
            }
        }
    } else {
        TN_FTZ_SCOPE;
        char **f = cbuf[0], **c = cbuf[1];
        for (int64_t t = s->T; t-- > 0;) {
            bw_step(tp, s, y, &gb, f, c, t, 0, B, -1);
            char **sw = f;
            f = c, c = sw;
        }
    }
    from = cbuf[s->T & 1];
    /* from: the gradients of the initial states */
    for (int k = 0; k < s->n_state; k++) {
        tn_tensor *h0 = s->init[k];
        if (!tn__wants(h0))
            continue;
        TN_FOR_DTYPE(s->dt, T, {
            const T *c = (const T *)from[k];
            for (int64_t r = 0; r < B; r++)
                for (int64_t j = 0; j < s->h[k]; j++)
                    ((T *)h0->grad)[r * h0->stride[0] + j * h0->stride[1]] += c[r * s->h[k] + j];
        });
    }
    for (int i = 0; i < s->n_node; i++)
        if (s->node[i].kind == S_MM)
            node_mm_dw(s, &s->node[i]);
    /* parameter sums: rows in order, whatever the thread count */
    for (int p = 0; p < s->n_param; p++) {
        tn_tensor *w = s->param[p];
        if (!tn__wants(w))
            continue;
        TN_FOR_DTYPE(s->dt, T, {
            T *g = w->grad;
            const T *pg = (const T *)gb.pgrad + poff[p];
            for (int64_t r = 0; r < B; r++)
                for (int64_t j = 0; j < tn_numel(w); j++)
                    g[j * w->stride[w->ndim - 1]] += pg[r * P + j];
        });
    }
}

/* ---- the builder ---- */

void tn__scan_inputs(const tn_tensor *y, tn_tensor *const **list, int *n)
{
    const scan *s = tn__node(y)->aux;
    *list = s ? s->inputs : NULL;
    *n = s ? s->n_inputs : 0;
}

/* Add t to s's inputs once. */
static void input_add(scan *s, tn_tensor *t)
{
    for (int i = 0; i < s->n_inputs; i++)
        if (s->inputs[i] == t)
            return;
    s->inputs[s->n_inputs++] = t;
}

/* The eager path: call step T times on tp; y = stack over t of the
 * states side by side. */
static tn_tensor *scan_eager(tn_tape *tp, tn_step_fn step, void *ctx, const scan *s)
{
    tn_tensor **ys = tn_tape_alloc(tp, sizeof *ys * (size_t)s->T);
    tn_tensor *state[TN__SCAN_MAX_STATES], *next[TN__SCAN_MAX_STATES], *xt[TN__SCAN_MAX_X];
    if (!ys)
        return NULL;
    for (int k = 0; k < s->n_state; k++)
        state[k] = s->init[k];
    for (int64_t t = 0; t < s->T; t++) {
        for (int j = 0; j < s->n_x; j++) {
            tn_tensor *v = tn_narrow(tp, s->x[j], 0, t, 1);
            if (v && !tn_is_contiguous(v))
                v = tn_contiguous(tp, v);
            xt[j] = v ? tn_reshape(tp, v, 2, (int64_t[]){s->B, s->x[j]->shape[2]}) : NULL;
            if (!xt[j])
                return NULL;
        }
        for (int k = 0; k < s->n_state; k++)
            next[k] = NULL;
        tn_status st = step(tp, ctx, xt, state, next);
        if (st != TN_OK || tn_tape_error(tp)) {
            if (!tn_tape_error(tp))
                tn_tape_fail(tp, st, "tn_scan: the step function failed at step %lld: %s",
                             (long long)t, tn_last_error());
            return NULL;
        }
        for (int k = 0; k < s->n_state; k++) {
            if (!next[k] || next[k]->ndim != 2 || next[k]->shape[0] != s->B ||
                next[k]->shape[1] != s->h[k]) {
                tn_tape_fail(tp, TN_ERR_SHAPE,
                             "tn_scan: the step function's state %d is %s, not [%lld, %lld] as "
                             "its initial value",
                             k, next[k] ? TN_SHP(next[k]) : "missing", (long long)s->B,
                             (long long)s->h[k]);
                return NULL;
            }
            state[k] = next[k];
        }
        ys[t] = s->n_state == 1 ? state[0] : tn_concat(tp, s->n_state, state, 1);
        if (!ys[t])
            return NULL;
    }
    return tn_stack(tp, (int)s->T, ys, 0);
}

tn_tensor *tn_scan(tn_tape *tp, tn_step_fn step, void *ctx, int n_x, tn_tensor *const *x,
                   int n_state, tn_tensor *const *init)
{
    if (!tp) {
        tn_set_error(TN_ERR_ARG, "tn_scan: tape is NULL");
        return NULL;
    }
    if (tn_tape_error(tp))
        return NULL;
    if (!step || n_x < 1 || n_x > TN__SCAN_MAX_X || n_state < 1 || n_state > TN__SCAN_MAX_STATES ||
        !x || !init) {
        tn_tape_fail(tp, TN_ERR_ARG,
                     "tn_scan: needs a step function, 1 to %d sequences and 1 to %d states "
                     "(got %d and %d)",
                     TN__SCAN_MAX_X, TN__SCAN_MAX_STATES, n_x, n_state);
        return NULL;
    }
    scan *s = tn_tape_alloc(tp, sizeof *s);
    if (!s)
        return NULL;
    memset(s, 0, sizeof *s);
    s->n_x = n_x, s->n_state = n_state;
    s->x = tn_tape_alloc(tp, sizeof *s->x * (size_t)n_x);
    s->init = tn_tape_alloc(tp, sizeof *s->init * (size_t)n_state);
    s->h = tn_tape_alloc(tp, sizeof *s->h * (size_t)n_state);
    s->soff = tn_tape_alloc(tp, sizeof *s->soff * (size_t)n_state);
    s->out = tn_tape_alloc(tp, sizeof *s->out * (size_t)n_state);
    if (!s->x || !s->init || !s->h || !s->soff || !s->out)
        return NULL;
    for (int j = 0; j < n_x; j++) {
        tn_tensor *v = x[j];
        if (!v || v->ndim != 3) {
            tn_tape_fail(tp, TN_ERR_SHAPE, "tn_scan: sequence %d must be [T, B, G], got %s", j,
                         v ? TN_SHP(v) : "NULL");
            return NULL;
        }
        if (j > 0 && (v->shape[0] != x[0]->shape[0] || v->shape[1] != x[0]->shape[1] ||
                      v->dtype != x[0]->dtype)) {
            tn_tape_fail(tp, TN_ERR_SHAPE, "tn_scan: sequence %d %s does not match sequence 0 %s",
                         j, TN_SHP(v), TN_SHP(x[0]));
            return NULL;
        }
        s->x[j] = v->stride[2] == 1 ? v : tn_contiguous(tp, v);
        if (!s->x[j])
            return NULL;
    }
    s->dt = x[0]->dtype, s->T = x[0]->shape[0], s->B = x[0]->shape[1];
    if (s->dt != TN_F32 && s->dt != TN_F64) {
        tn_tape_fail(tp, TN_ERR_DTYPE, "tn_scan: sequences must be float32 or float64");
        return NULL;
    }
    for (int k = 0; k < n_state; k++) {
        tn_tensor *h0 = init[k];
        if (!h0 || h0->ndim != 2 || h0->shape[0] != s->B || h0->dtype != s->dt ||
            h0->stride[1] != 1) {
            tn_tape_fail(tp, TN_ERR_SHAPE,
                         "tn_scan: initial state %d must be [%lld, H] of the sequences' dtype "
                         "with unit column stride, got %s",
                         k, (long long)s->B, h0 ? TN_SHP(h0) : "NULL");
            return NULL;
        }
        s->init[k] = h0;
        s->h[k] = h0->shape[1];
        s->soff[k] = s->S;
        s->S += s->h[k];
    }
    int rc = s->B <= TN__SCAN_MAX_ROWS ? capture_step(s, step, ctx, tp) : 0;
    if (rc < 0)
        return NULL;
    if (rc == 0)
        return scan_eager(tp, step, ctx, s);

    /* the captured program: inputs, buffers, the node */
    s->inputs =
        tn_tape_alloc(tp, sizeof *s->inputs * (size_t)(n_x + n_state + s->n_param + s->n_node));
    if (!s->inputs)
        return NULL;
    for (int j = 0; j < n_x; j++)
        input_add(s, s->x[j]);
    for (int k = 0; k < n_state; k++)
        input_add(s, s->init[k]);
    for (int p = 0; p < s->n_param; p++)
        input_add(s, s->param[p]);
    for (int i = 0; i < s->n_node; i++)
        if (s->node[i].kind == S_MM)
            input_add(s, s->node[i].wroot);
    tn_tensor *y = tn__result(tp, TN_OP_SCAN, s->dt, 3, (int64_t[]){s->T, s->B, s->S}, false, NULL,
                              NULL, NULL);
    if (!y)
        return NULL;
    tn__node(y)->aux = s;
    bool wants = false;
    for (int i = 0; i < s->n_inputs; i++)
        wants = wants || s->inputs[i]->requires_grad;
    if (wants && tn_tape_grad_enabled(tp)) {
        y->requires_grad = true;
        if (!tn__tape_record(tp, y))
            return NULL;
    }
    size_t es = esz(s);
    for (int i = 0; i < s->n_node; i++) {
        snode *nd = &s->node[i];
        int k = 0;
        while (k < n_state && s->out[k] != i)
            k++;
        if (k < n_state) { /* a state: its values are y's columns */
            nd->buf = (char *)y->data + (size_t)s->soff[k] * es;
            nd->rs = s->S, nd->ts = s->B * s->S;
        } else {
            nd->buf = tn_tape_alloc(tp, (size_t)(s->T * s->B * nd->n) * es);
            if (!nd->buf)
                return NULL;
            nd->rs = nd->n, nd->ts = s->B * nd->n;
        }
    }
    int nt = scan_threads(s);
    if (scan_by_rows(tp, s, false, nt)) {
        TN_FTZ_SCOPE;
#pragma omp parallel num_threads(nt)
        {
            int k = omp_get_thread_num(), n = omp_get_num_threads();
            int64_t r0 = s->B * k / n, r1 = s->B * (k + 1) / n;
            for (int64_t t = 0; t < s->T; t++)
                run_fw(tp, s, t, r0, r1, k);
        }
    } else {
        for (int64_t t = 0; t < s->T; t++)
            run_fw(tp, s, t, 0, s->B, -1);
    }
    return tn__finish(tp, y);
}
