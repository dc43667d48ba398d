/* src/core/internal.h - library-internal helpers shared by core and ops.
 * Not installed; never included by users. */
#ifndef TN_CORE_INTERNAL_H
#define TN_CORE_INTERNAL_H

#include "tensor/core.h"
#include "loops.h"

#include <string.h>

/* A tensor as the library allocates it: the public fields (tensor/core.h,
 * a stable prefix) first, then the tape's bookkeeping, which is not part
 * of the ABI. Every tn_tensor is the pub of a tn_node (tn_tensor_new and
 * the tape's tensors allocate sizeof(tn_node)), so tn__node reaches the
 * rest from any tn_tensor pointer the library handed out. */
typedef struct tn_node {
    tn_tensor pub;
    bool is_view;               /* data and grad alias src[0] at view_offset */
    bool on_heap;               /* heap tensor (caller owns) vs tape tensor */
    tn_op_id op;                /* 0 (TN_OP_NONE) for leaves */
    tn_tensor *src[TN_MAX_SRC]; /* inputs of op */
    int64_t view_offset;        /* element offset of data in src[0] (views) */
    int64_t iparam[4];          /* op parameters (dims, flags, indices) */
    double fparam[2];           /* op parameters (scalars) */
    void *aux;                  /* op scratch kept for backward (arena) */
    tn_tape *tape;              /* tape that owns this tensor, or NULL */
    struct tn_rowset *rows;     /* tn_tensor_set_sparse_grad, or NULL */
    uint8_t fresh;              /* during its backward: bit k set when src[k]'s gradient is
                                   not cleared yet and the kernel must clear it itself
                                   (src/ops/backward.c: zero_for) */
} tn_node;

/* The rows of a [V, E] parameter whose gradient may be nonzero since its
 * last zero_grad (tn_tensor_set_sparse_grad): row i is listed once (seen[i]
 * set) by gather_rows' backward; dense, set when another op read the
 * parameter in a backward (or tn_tensor_mark_grad_dense), means every
 * row. */
typedef struct tn_rowset {
    int64_t n;     /* rows listed in idx */
    bool dense;    /* every row counts */
    int64_t *idx;  /* [V] */
    uint8_t *seen; /* [V] */
} tn_rowset;

/* Row r of t's sparse-gradient set joins it (t a sparse parameter). */
static inline void tn__rowset_add(tn_rowset *rs, int64_t r)
{
    if (!rs->seen[r]) {
        rs->seen[r] = 1;
        rs->idx[rs->n++] = r;
    }
}

/* The node of t (pub is its first member: the same address). NULL for
 * NULL. */
static inline tn_node *tn__node(const tn_tensor *t) { return (tn_node *)t; }

/* The tape. Tape tensors and scratch come from a chunked bump arena; the
 * list of recorded nodes is a heap array whose capacity survives resets. */
typedef struct tn_chunk {
    struct tn_chunk *next;
    size_t cap, used;
    unsigned char *mem;
} tn_chunk;

struct tn_tape {
    tn_chunk *chunks;  /* first chunk */
    tn_chunk *cur;     /* chunk being filled */
    size_t high_water; /* bytes used in the largest step so far */
    tn_tensor **nodes; /* recorded ops in creation order */
    size_t n_nodes, cap_nodes;
    /* The op families' per-recording cache (matmul's packed weights and
     * postponed weight-gradient products, src/ops/matmul.c): arena memory,
     * forgotten by tn_tape_reset and at the start and end of every
     * backward. */
    void *op_cache;
    /* Set during a backward by an op family that postponed work into
     * gradients (matmul's merged weight products): the engine calls it
     * before a node's backward reads that node's gradient, and with NULL
     * at the end, so every gradient is complete when it is used. */
    void (*flush)(struct tn_tape *tp, tn_tensor *t);
    int64_t probe_node, probe_index; /* tn_tape_set_probe (node -1: off) */
    /* tn_tape_set_grad_ready: called by the backward engine for each
     * parameter whose gradient is final (NULL: none). */
    void (*grad_ready)(void *ctx, tn_tensor *param);
    void *grad_ready_ctx;
    /* A tape the op families record a sub-graph on (tn_scan's step): made
     * on first use, kept across resets, freed with this one. */
    struct tn_tape *sub;
    double probe_delta;
    tn_status err;
    char errmsg[512];
    bool grad_enabled;
    bool training;
    bool watch;
    tn_rng rng;
};

/* The largest byte count a tensor's data may have: numel x element size
 * and every allocation header added to it stay far from overflowing
 * int64_t and size_t. */
#define TN_MAX_BYTES ((int64_t)1 << 60)

/* Fill shape/stride of a contiguous tensor of dtype dt; returns numel, -1
 * when the shape is invalid (ndim outside 1..4 or a size < 1), or -2 when
 * it is too large (the product of the sizes times the element size
 * overflows or exceeds TN_MAX_BYTES). */
int64_t tn__set_contiguous(tn_tensor *t, int ndim, const int64_t *shape, tn_dtype dt);

/* A message for a -1 / -2 result of tn__set_contiguous: "invalid shape
 * [..] (need 1..4 dims of size >= 1)" or "shape [..] of float32 is too
 * large", written into buf (n bytes); returns buf. */
char *tn__shape_problem(int64_t code, int ndim, const int64_t *shape, tn_dtype dt, char *buf,
                        size_t n);

/* A zeroed array of n elements of `size` bytes from tn_alloc (so through
 * the allocator hooks; free it with tn_free), calloc's contract: NULL with
 * TN_ERR_MEMORY set when n * size overflows or the allocation fails. */
void *tn__alloc_array(size_t n, size_t size);

/* Offset (in elements) of the row-major logical index i. */
int64_t tn__offset_of(const tn_tensor *t, int64_t i);

/* Record an error on the tape: sticky (later ops refuse, backward
 * refuses) and the thread's last error; returns st. For the op builders
 * and the layers (users fail a tape by returning the error of their own
 * call, see tensor/core.h). */
tn_status tn_tape_fail(tn_tape *tp, tn_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Append a tensor to the tape's node list. Returns false (sticky error) when
 * out of memory. */
bool tn__tape_record(tn_tape *tp, tn_tensor *t);

/* Choose the kernel path from the CPU and TN_ISA (src/core/isa.c); on a bad
 * TN_ISA returns TN_ERR_ARG with the message in msg. Called once by
 * tn_runtime_init. tn__isa_forced: whether TN_ISA chose it. */
tn_status tn__isa_choose(char *msg, size_t cap);
bool tn__isa_forced(void);
/* The chosen path without initialising (for the initialisation itself). */
tn_isa tn__isa_value(void);

#endif
