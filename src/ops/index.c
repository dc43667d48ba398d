/* src/ops/index.c - gather_rows: embedding lookup and its scatter-add
 * backward.
 *
 * The builder checks every id and keeps a contiguous copy of them in tape
 * memory (y->aux), so forward and backward read ids [M] directly whatever
 * the ids tensor's strides. The table may be any 2-D view (row stride st0,
 * column stride st1). Backward runs in parallel over blocks of columns: each
 * column of the table gradient is owned by one thread, so repeated ids
 * accumulate without races and in the same order for any thread count.
 * Node parameters: iparam[0] = padding_idx (-1: none).
 */
#include "ops_internal.h"

#include <stdio.h>

#define COL_BLOCK 16 /* the backward's blocks of columns are multiples of this */

/* "[i0, i1, ...]": the multi-index of row-major element i of t. */
static char *index_str(const tn_tensor *t, int64_t i, char *buf, size_t cap)
{
    int64_t idx[TN_MAX_DIMS];
    for (int d = t->ndim - 1; d >= 0; d--) {
        idx[d] = i % t->shape[d];
        i /= t->shape[d];
    }
    size_t len = (size_t)snprintf(buf, cap, "[");
    for (int d = 0; d < t->ndim && len < cap; d++)
        len += (size_t)snprintf(buf + len, cap - len, d ? ", %lld" : "%lld", (long long)idx[d]);
    if (len < cap)
        snprintf(buf + len, cap - len, "]");
    return buf;
}

/* y [M, E] contiguous = rows ids [M] of table [V, E] (strides st0, st1). */
static void gather_forward(tn_tensor *y, const tn_tensor *table, const int32_t *ids, int64_t m)
{
    int64_t e = table->shape[1], st0 = table->stride[0], st1 = table->stride[1];
    TN_FOR_DTYPE(table->dtype, T, {
        const T *W = TN_DATA(T, table);
        T *Y = TN_DATA(T, y);
        TN_PAR_FOR(m * e > TN_PAR_MIN, i, 0, m, {
            const T *row = W + ids[i] * st0;
            T *py = Y + i * e;
            if (st1 == 1) {
                memcpy(py, row, (size_t)e * sizeof(T));
            } else {
                for (int64_t j = 0; j < e; j++)
                    py[j] = row[j * st1];
            }
        });
    });
}

/* dtable [V, E] (table's strides) += dy [M, E] scattered by ids [M], except
 * rows whose id is padding_idx. */
void tn__bw_gather_rows(tn_tensor *y)
{
    tn_tensor *table = tn__node(y)->src[0];
    if (!tn__wants(table))
        return;
    const int32_t *ids = tn__node(y)->aux;
    int64_t pad = tn__node(y)->iparam[0];
    int64_t e = table->shape[1], st0 = table->stride[0], st1 = table->stride[1];
    int64_t m = tn_numel(y) / e;
    tn_rowset *rs = tn__node(table)->rows; /* sparse gradient: list the rows written */
    for (int64_t i = 0; rs && i < m; i++)
        if (ids[i] != pad)
            tn__rowset_add(rs, ids[i]);
    /* one block of columns per thread (whole vectors of COL_BLOCK), so that
     * each thread reads its part of every dy row in one pass */
    int nt = tn__threads_now();
    int64_t blk = ((e + nt - 1) / nt + COL_BLOCK - 1) / COL_BLOCK * COL_BLOCK;
    int64_t nblk = (e + blk - 1) / blk;
    TN_FOR_DTYPE(table->dtype, T, {
        const T *DY = TN_GRAD(T, y);
        T *DW = TN_GRAD(T, table);
        TN_PAR_FOR(nblk > 1 && m * e > TN_PAR_MIN, b, 0, nblk, {
            int64_t j0 = b * blk, j1 = j0 + blk < e ? j0 + blk : e;
            for (int64_t i = 0; i < m; i++) {
                if (ids[i] == pad)
                    continue;
                T *dw = DW + ids[i] * st0;
                const T *dy = DY + i * e;
                if (st1 == 1) /* vectorises */
                    for (int64_t j = j0; j < j1; j++)
                        dw[j] += dy[j];
                else
                    for (int64_t j = j0; j < j1; j++)
                        dw[j * st1] += dy[j];
            }
        });
    });
}

tn_tensor *tn_gather_rows(tn_tape *tp, tn_tensor *table, tn_tensor *ids, int64_t padding_idx)
{
    /* tn__check refuses int32, so it sees the float table only */
    if (!tn__check(tp, "gather_rows", 1, &table))
        return NULL;
    if (!ids) {
        tn_tape_fail(tp, TN_ERR_ARG, "gather_rows: ids is NULL");
        return NULL;
    }
    if (ids->dtype != TN_I32) {
        tn_tape_fail(tp, TN_ERR_DTYPE, "gather_rows: ids %s must be int32, got %s", TN_SHP(ids),
                     tn_dtype_name(ids->dtype));
        return NULL;
    }
    if (table->ndim != 2) {
        tn_tape_fail(tp, TN_ERR_SHAPE, "gather_rows: table must be 2-D [V, E], got %s",
                     TN_SHP(table));
        return NULL;
    }
    if (ids->ndim > TN_MAX_DIMS - 1) {
        tn_tape_fail(tp, TN_ERR_SHAPE,
                     "gather_rows: ids %s have %d dims; at most %d (the result adds one)",
                     TN_SHP(ids), ids->ndim, TN_MAX_DIMS - 1);
        return NULL;
    }
    int64_t v = table->shape[0], m = tn_numel(ids);
    if (padding_idx < -1 || padding_idx >= v) {
        tn_tape_fail(tp, TN_ERR_ARG,
                     "gather_rows: padding_idx %lld is out of range for table %s (use -1 for none)",
                     (long long)padding_idx, TN_SHP(table));
        return NULL;
    }
    int32_t *idv = tn_tape_alloc(tp, (size_t)m * sizeof(int32_t));
    if (!idv)
        return NULL;
    const int32_t *src = TN_DATA(int32_t, ids);
    bool contig = tn_is_contiguous(ids);
    for (int64_t i = 0; i < m; i++) {
        int32_t id = src[contig ? i : tn__offset_of(ids, i)];
        if (id < 0 || id >= v) {
            char pos[64];
            tn_tape_fail(tp, TN_ERR_INDEX,
                         "gather_rows: id %d at position %s of ids %s is out of range [0, %lld) "
                         "for table %s",
                         (int)id, index_str(ids, i, pos, sizeof pos), TN_SHP(ids), (long long)v,
                         TN_SHP(table));
            return NULL;
        }
        idv[i] = id;
    }
    int64_t shape[TN_MAX_DIMS];
    for (int d = 0; d < ids->ndim; d++)
        shape[d] = ids->shape[d];
    shape[ids->ndim] = table->shape[1];
    tn_tensor *y = tn__result(tp, TN_OP_GATHER_ROWS, table->dtype, ids->ndim + 1, shape, false,
                              table, ids, NULL);
    if (!y)
        return NULL;
    tn__node(y)->iparam[0] = padding_idx;
    tn__node(y)->aux = idv;
    gather_forward(y, table, idv, m);
    return tn__finish(tp, y);
}
