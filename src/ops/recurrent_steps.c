/* src/ops/recurrent_steps.c - the time loops of the recurrent op
 * (recurrent.c), forward and backward, for both dtypes.
 *
 * They run r->nt parts, part k being the hidden units [j0, j0 + n) of
 * the batch rows [b0, b1) (rec_part), on a team of r->nt threads, one part
 * each. A smaller team (inside the caller's own parallel region a nested
 * one has one thread) runs every part all the same, thread i the parts i,
 * i + team, ...: the results do not depend on the team. Per step a part
 * makes its recurrent product (tn__packed_mul: the kernel path's step_mul,
 * or BLIS's micro-kernel; its right operand, from W_hh, packed at the
 * start) and applies the gate row kernels of the active kernel path
 * (rows.h) to it. Split by units (every row), the next step reads the
 * whole state: one barrier per step. Split by rows (every unit), a part's
 * rows depend on nothing the others make: no barrier at all.
 *
 * A row of the [B*T, ...] buffers is (b, t), batch-major like x: step t's
 * rows are T rows apart, so they are prefetched while the product runs.
 */
#include "recurrent_internal.h"

#include <omp.h>

/* Ask for the cache lines of [p, p + bytes) ahead of use. */
static inline void prefetch_span(const void *p, int64_t bytes)
{
    for (int64_t o = 0; o < bytes; o += 64)
        __builtin_prefetch((const char *)p + o);
}

/* Split by rows, every part multiplies by the whole of W_hh: the parts
 * share one packed operand (r->pf[0], r->pb[0]), thread i of a team of ni
 * packing its share of the panels (the caller waits at a barrier before
 * using it). The packed columns are src's columns cs apart, rs between
 * values of k. */
static void pack_shared(tn__packed *p, int i, int ni, const void *src, int64_t rs, int64_t cs,
                        size_t es)
{
    int64_t panels = (p->N + p->pw - 1) / p->pw, pb = tn__packed_panel_bytes(p);
    int64_t q0 = panels * i / ni, q1 = panels * (i + 1) / ni;
    int64_t c0 = q0 * p->pw, c1 = q1 * p->pw < p->N ? q1 * p->pw : p->N;
    int64_t end = q1 == panels ? tn__packed_bytes(p) : q1 * pb; /* the last: the slack too */
    memset((char *)p->w + q0 * pb, 0, (size_t)(end - q0 * pb));
    if (c1 > c0)
        tn__packed_set(p, c0, c1 - c0, (const char *)src + (size_t)(c0 * cs) * es, rs, cs);
}

/* The operands of the per-step products, made by thread i of a team of ni:
 * forward, part k's W_hh^T's columns of its units gate by gate ([H,
 * gates*n], column g*n + j is gate g of unit j0 + j); backward, W_hh's
 * columns j0 .. j0 + n ([G, n]). Split by rows that is all of W_hh^T (W_hh)
 * for every part, packed once between the threads. */
static void pack_forward(rec *r, int i, int ni)
{
    if (r->by_rows) {
        pack_shared(&r->pf[0], i, ni, r->whh.p, r->whh.cs, r->whh.rs, rec_es(r));
        return;
    }
    for (int k = i; k < r->nt; k += ni) {
        int64_t j0, n, b0, b1, H = r->H;
        rec_part(r, k, &j0, &n, &b0, &b1);
        tn__packed *p = &r->pf[k];
        tn__packed_zero(p);
        for (int64_t g = 0; g < r->G / H; g++)
            tn__packed_set(p, g * n, n, rec_at(r, r->whh.p, (g * H + j0) * r->whh.rs), r->whh.cs,
                           r->whh.rs);
    }
}

static void pack_backward(rec *r, int i, int ni)
{
    if (r->by_rows) {
        pack_shared(&r->pb[0], i, ni, r->whh.p, r->whh.rs, r->whh.cs, rec_es(r));
        return;
    }
    for (int k = i; k < r->nt; k += ni) {
        int64_t j0, n, b0, b1;
        rec_part(r, k, &j0, &n, &b0, &b1);
        tn__packed *p = &r->pb[k];
        tn__packed_zero(p);
        tn__packed_set(p, 0, n, rec_at(r, r->whh.p, j0 * r->whh.cs), r->whh.rs, r->whh.cs);
    }
}

/* Sequences that stopped output zeros. A step's state is the output of
 * the step before it (prev_row): the gates read it there, and so does the
 * product, T rows apart (h0 at the first step), unless r->hcopy (see
 * rec), where the state is also kept in hcur for the product. */
void tn__rec_forward_steps(rec *r, void *O)
{
    int64_t B = r->B, T = r->T, H = r->H, G = r->G, ng = G / H;
    size_t es = rec_es(r);
    void *Oh = O, *Oc = rec_at(r, O, B * T * H);
    void *hc[2] = {r->hcur, r->hcur ? rec_at(r, r->hcur, B * H) : NULL};
    const tn__rows *kr = r->rows;
    bool relu = r->cell == TN_CELL_RNN_RELU;
#pragma omp parallel num_threads(r->nt) if (r->nt > 1)
    {
        int k0 = omp_get_thread_num(), nk = omp_get_num_threads();
        pack_forward(r, k0, nk);
        if (r->by_rows) { /* the shared operand is complete */
#pragma omp barrier
        }
        for (int64_t s = 0; s < T; s++) {
            int64_t t = r->reverse ? T - 1 - s : s, tp = r->reverse ? t + 1 : t - 1;
            for (int k = k0; k < r->nt; k += nk) { /* the parts of this thread */
                int64_t j0, n, b0, b1;
                rec_part(r, k, &j0, &n, &b0, &b1);
                void *Pk = rec_at(r, r->P, ng * j0);
                void *scratch = (char *)r->scratch + k * r->scratch_bytes;
                for (int64_t b = b0; b < b1; b++) {
                    int64_t row = b * T + t;
                    for (int64_t g = 0; g < ng; g++)
                        prefetch_span(rec_at(r, r->A, row * G + g * H + j0), n * (int64_t)es);
                    prefetch_span(rec_at(r, Oh, row * H + j0), n * (int64_t)es);
                    if (r->cell == TN_CELL_LSTM)
                        prefetch_span(rec_at(r, Oc, row * H + j0), n * (int64_t)es);
                }
                void *hn = hc[(s + 1) & 1];
                if (s == 0 && !r->h0) { /* zero state: no product */
                    for (int64_t b = b0; b < b1; b++)
                        memset(rec_at(r, Pk, b * G), 0, (size_t)(ng * n) * es);
                } else { /* the state: h0, hcur or the output rows of step tp */
                    bool in_o = s > 0 && !r->hcopy;
                    const void *hp = s == 0     ? rec_at(r, r->h0, b0 * H)
                                     : r->hcopy ? rec_at(r, hc[s & 1], b0 * H)
                                                : rec_at(r, Oh, (b0 * T + tp) * H);
                    tn__packed_mul(&r->pf[k], b1 - b0, hp, in_o ? T * H : H, rec_at(r, Pk, b0 * G),
                                   G, false, scratch);
                }
                for (int64_t b = b0; b < b1; b++) {
                    int64_t row = b * T + t, u = b * H + j0;
                    void *a = rec_at(r, r->A, row * G + j0), *h = rec_at(r, Oh, row * H + j0);
                    const void *p = rec_at(r, Pk, b * G);
                    if (!rec_active(r, b, t)) { /* output 0, hcopy's state kept */
                        memset(h, 0, (size_t)n * es);
                        if (r->cell == TN_CELL_LSTM)
                            memset(rec_at(r, Oc, row * H + j0), 0, (size_t)n * es);
                        if (r->hcopy)
                            memcpy(rec_at(r, hn, u), rec_at(r, hc[s & 1], u), (size_t)n * es);
                        continue;
                    }
                    switch (r->cell) {
                    case TN_CELL_LSTM:
                        kr->lstm_fw(n, H, a, rec_at(r, r->bias, j0), p, n,
                                    rec_at(r, prev_row(r, Oc, r->c0, b, t), j0), h,
                                    rec_at(r, Oc, row * H + j0));
                        break;
                    case TN_CELL_GRU:
                        kr->gru_fw(n, H, a, rec_at(r, r->bias, j0), p, n, rec_at(r, r->bhn, j0),
                                   rec_at(r, prev_row(r, Oh, r->h0, b, t), j0),
                                   rec_at(r, r->Q, row * H + j0), h);
                        break;
                    default: kr->rnn_fw(n, a, rec_at(r, r->bias, j0), p, relu, h);
                    }
                    if (r->hcopy)
                        memcpy(rec_at(r, hn, u), h, (size_t)n * es);
                }
            }
            if (!r->by_rows) { /* the next product reads every unit */
#pragma omp barrier
            }
        }
    }
}

/* In the reverse order of forward's, threads and units as there. The
 * gates' gradients replace the activations in A (and q in Q for GRU); gh
 * (gc) [B, H] carry the gradient of the state between steps. After its
 * units' gates, each thread adds its units of the recurrent product,
 * gh[:, j0:j1] += dA_t [B, G] @ W_hh[:, j0:j1] (GRU: dP), which needs every
 * unit's dA_t: one barrier per step. GRU's dP is double-buffered. Without
 * need_h0 the last product is skipped. */
void tn__rec_backward_steps(rec *r, const void *O, const void *dO, void *gh, void *gc, bool need_h0)
{
    int64_t B = r->B, T = r->T, H = r->H, G = r->G, ng = G / H;
    size_t es = rec_es(r);
    void *dP[2] = {r->P, rec_at(r, r->P, B * G)};
    const void *Oh = O, *Oc = rec_at(r, O, B * T * H), *dOh = dO, *dOc = rec_at(r, dO, B * T * H);
    const tn__rows *kr = r->rows;
    bool relu = r->cell == TN_CELL_RNN_RELU, gru = r->cell == TN_CELL_GRU;
    bool lstm = r->cell == TN_CELL_LSTM;
#pragma omp parallel num_threads(r->nt) if (r->nt > 1)
    {
        int k0 = omp_get_thread_num(), nk = omp_get_num_threads();
        pack_backward(r, k0, nk);
        if (r->by_rows) { /* the shared operand is complete */
#pragma omp barrier
        }
        for (int64_t s = T; s-- > 0;) {
            int64_t t = r->reverse ? T - 1 - s : s;
            void *dp = dP[s & 1];
            for (int k = k0; k < r->nt; k += nk) { /* the gates of this thread's parts */
                int64_t j0, n, b0, b1;
                rec_part(r, k, &j0, &n, &b0, &b1);
                for (int64_t b = b0; b < b1; b++) { /* as in forward */
                    int64_t row = b * T + t;
                    for (int64_t g = 0; g < ng; g++)
                        prefetch_span(rec_at(r, r->A, row * G + g * H + j0), n * (int64_t)es);
                    prefetch_span(rec_at(r, dOh, row * H + j0), n * (int64_t)es);
                    prefetch_span(rec_at(r, lstm ? Oc : Oh, row * H + j0), n * (int64_t)es);
                    if (lstm)
                        prefetch_span(rec_at(r, dOc, row * H + j0), n * (int64_t)es);
                }
                for (int64_t b = b0; b < b1; b++) {
                    int64_t row = b * T + t, u = b * H + j0;
                    void *a = rec_at(r, r->A, row * G + j0);
                    const void *doh = rec_at(r, dOh, row * H + j0);
                    if (!rec_active(r, b, t)) { /* no gradient; the carry passes */
                        for (int64_t g = 0; g < ng; g++)
                            memset(rec_at(r, a, g * H), 0, (size_t)n * es);
                        if (gru) {
                            memset(rec_at(r, r->Q, row * H + j0), 0, (size_t)n * es);
                            for (int64_t g = 0; g < 3; g++)
                                memset(rec_at(r, dp, b * G + g * H + j0), 0, (size_t)n * es);
                        }
                        continue;
                    }
                    switch (r->cell) {
                    case TN_CELL_LSTM:
                        kr->lstm_bw(n, H, a, rec_at(r, Oc, row * H + j0),
                                    rec_at(r, prev_row(r, Oc, r->c0, b, t), j0), doh,
                                    rec_at(r, dOc, row * H + j0), rec_at(r, gh, u),
                                    rec_at(r, gc, u));
                        break;
                    case TN_CELL_GRU:
                        kr->gru_bw(n, H, a, rec_at(r, r->Q, row * H + j0),
                                   rec_at(r, prev_row(r, Oh, r->h0, b, t), j0), doh,
                                   rec_at(r, gh, u), rec_at(r, dp, b * G + j0));
                        break;
                    default:
                        kr->rnn_bw(n, a, rec_at(r, Oh, row * H + j0), doh, relu, rec_at(r, gh, u));
                    }
                }
            }
            if (!r->by_rows) { /* the product reads every unit's dA_t */
#pragma omp barrier
            }
            for (int k = k0; k < r->nt && (s > 0 || need_h0); k += nk) { /* their products */
                int64_t j0, n, b0, b1;
                rec_part(r, k, &j0, &n, &b0, &b1);
                tn__packed_mul(&r->pb[k], b1 - b0,
                               gru ? rec_at(r, dp, b0 * G) : rec_at(r, r->A, (b0 * T + t) * G),
                               gru ? G : T * G, rec_at(r, gh, b0 * H + j0), H, true,
                               (char *)r->scratch + k * r->scratch_bytes);
            }
        }
    }
}
