/* src/ops/recurrent_internal.h - the state of the recurrent op shared by
 * its builder and backward (recurrent.c) and its time loops
 * (recurrent_steps.c). See recurrent.c for the structure. */
#ifndef TN_OPS_RECURRENT_INTERNAL_H
#define TN_OPS_RECURRENT_INTERNAL_H

#include "ops_internal.h"
#include "rows.h"

/* The op's state, in tape memory (y->aux). Buffers are of the op's dtype. */
typedef struct rec {
    tn_cell cell;
    bool reverse;
    bool used; /* backward ran: A holds gradients, not activations */
    tn_dtype dt;
    int64_t B, T, In, H, G;
    const int32_t *len;  /* [B], or NULL: every sequence has T steps */
    void *A;             /* [B*T, G] gates, then their gradients */
    void *Q;             /* GRU: [B*T, H] q = p_n + b_hn, then its gradient */
    void *P;             /* [B, G] one step's products, thread k's at columns
                           gates*j0 (gate g of its unit j at g*n + j); GRU
                           backward: 2 x [B, G] the gradient of p */
    void *bias, *bhn;    /* [G] bias of A's rows; GRU: [H] b_hn */
    tn__mat whh;         /* W_hh [G, H] as it is */
    tn__packed *pf, *pb; /* [nt] each thread's packed right operand of the
                            per-step product, forward and backward */
    void *scratch;       /* nt x scratch_bytes: each thread's packed state */
    int64_t scratch_bytes;
    const tn__rows *rows; /* the row kernels of dt on the active path */
    void *zero;           /* [H] zeros: a missing initial state */
    bool hcopy;           /* the product's state is not always the output
                             of the step before (reversed sequences with
                             lengths and h0 start from h0 after their zero
                             outputs): it is kept in hcur */
    void *hcur;           /* with hcopy, 2 x [B, H]: the state before and
                             after a step (the first from h0); else NULL */
    int nt;               /* threads of the time loops */
    bool by_rows;         /* they split the batch rows, each running all
                             units with no barrier between steps; else
                             the units, with one barrier per step */
    int64_t per;          /* hidden units per thread (split by units) */
    const void *h0, *c0;  /* [B, H] contiguous initial states, or NULL */
} rec;

static inline size_t rec_es(const rec *r) { return tn_dtype_size(r->dt); }

/* Element i of a buffer of r's dtype. */
static inline void *rec_at(const rec *r, const void *base, int64_t i)
{
    return (char *)base + (size_t)i * rec_es(r);
}

/* Whether step t of sequence b runs. */
static inline bool rec_active(const rec *r, int64_t b, int64_t t)
{
    return !r->len || t < r->len[b];
}

/* The state row [H] before step t of sequence b, in seq ([B, T, H]: h or c
 * of every step): the one after the previously processed step (t - 1, or
 * t + 1 in reverse) when that step ran, else the initial state init (NULL:
 * zeros). */
static inline const void *prev_row(const rec *r, const void *seq, const void *init, int64_t b,
                                   int64_t t)
{
    int64_t L = r->len ? r->len[b] : r->T, tp = r->reverse ? t + 1 : t - 1;
    if (r->reverse ? tp < L : tp >= 0)
        return rec_at(r, seq, (b * r->T + tp) * r->H);
    return init ? rec_at(r, init, b * r->H) : r->zero;
}

/* Thread k's part of the time loops: hidden units [*j0, *j0 + *n) of the
 * batch rows [*b0, *b1). Split by units (whole 16-float vectors per
 * thread, the last one takes the rest; every row), or with by_rows by
 * rows (every unit). */
static inline void rec_part(const rec *r, int k, int64_t *j0, int64_t *n, int64_t *b0, int64_t *b1)
{
    if (r->by_rows) {
        *j0 = 0, *n = r->H;
        *b0 = r->B * k / r->nt, *b1 = r->B * (k + 1) / r->nt;
        return;
    }
    int64_t a = k * r->per, e = (k + 1) * r->per;
    *j0 = a < r->H ? a : r->H;
    *n = (e < r->H ? e : r->H) - *j0;
    *b0 = 0, *b1 = r->B;
}

/* The time loops (recurrent_steps.c). Forward: O [S, B, T, H] gets h (and
 * c for LSTM) of every step; A the activated gates. Backward: dO the
 * result's gradient; A (and Q) get the gates' gradients; gh (gc) [B, H]
 * end as the initial state's gradient (need_h0: whether it is wanted). */
void tn__rec_forward_steps(rec *r, void *O);
void tn__rec_backward_steps(rec *r, const void *O, const void *dO, void *gh, void *gc,
                            bool need_h0);

#endif
