/* src/dist/dist.c - data-parallel gradient averaging over MPI
 * (tensor/dist.h). Buckets: the gradients of consecutive parameters of one
 * dtype, up to bucket_bytes each (a parameter larger than that gets a
 * bucket of its own), packed into one buffer per bucket. */
#include "tensor/dist.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct bucket {
    tn_dtype dt;
    int first, count; /* parameters ps->items[first .. first + count) */
    int64_t numel;
    void *buf;    /* numel elements: the packed gradients, then their mean */
    void *gather; /* deterministic mode: size * numel, made on first use */
    MPI_Request req;
    int pending;  /* with a tape: parameters whose gradient is not final yet */
    bool started; /* its reduction is under way (this step) */
} bucket;

struct tn_dist {
    MPI_Comm comm;
    int rank, size;
    bool own_mpi, deterministic;
    size_t bucket_bytes;
    const tn_params *ps;
    int n_params; /* ps->n when the buckets were made */
    bucket *b;
    int nb;
    int *bucket_of; /* [n_params]: the bucket of ps->items[i] */
    int next;       /* buckets [0, next) are started this step */
    bool watching;  /* a tape reports gradients as they become final */
    int err;        /* MPI errors of buckets started during backward */
    int early;      /* buckets started during the last step's backward */
    double last_seconds;
};

static MPI_Datatype mpi_type(tn_dtype dt) { return dt == TN_F32 ? MPI_FLOAT : MPI_DOUBLE; }

static void buckets_free(tn_dist *d)
{
    for (int i = 0; i < d->nb; i++) {
        tn_free(d->b[i].buf);
        tn_free(d->b[i].gather);
    }
    tn_free(d->b);
    tn_free(d->bucket_of);
    d->b = NULL;
    d->bucket_of = NULL;
    d->nb = 0;
}

/* Group the parameters into buckets and allocate their buffers. The
 * buckets take the parameters from the last to the first, the order in
 * which backward usually finishes their gradients (a model registers its
 * input layers first), so that with a tape watched the first bucket is
 * the first to be ready. */
static tn_status buckets_make(tn_dist *d)
{
    buckets_free(d);
    const tn_params *ps = d->ps;
    d->b = tn_alloc(sizeof *d->b * (size_t)(ps->n > 0 ? ps->n : 1));
    d->bucket_of = tn_alloc(sizeof *d->bucket_of * (size_t)(ps->n > 0 ? ps->n : 1));
    if (!d->b || !d->bucket_of) {
        buckets_free(d);
        return tn_set_error(TN_ERR_MEMORY, "tn_dist: out of memory for %d buckets", ps->n);
    }
    for (int i = ps->n - 1; i >= 0; i--) {
        tn_tensor *t = ps->items[i].t;
        if (t->dtype != TN_F32 && t->dtype != TN_F64)
            return tn_set_error(TN_ERR_DTYPE, "tn_dist: parameter %s is not float",
                                ps->items[i].name);
        size_t es = tn_dtype_size(t->dtype);
        bucket *cur = d->nb ? &d->b[d->nb - 1] : NULL;
        if (!cur || cur->dt != t->dtype ||
            (size_t)(cur->numel + tn_numel(t)) * es > d->bucket_bytes) {
            cur = &d->b[d->nb++];
            memset(cur, 0, sizeof *cur);
            cur->dt = t->dtype;
        }
        cur->first = i; /* the bucket holds items [first, first + count) */
        cur->count++;
        cur->numel += tn_numel(t);
        d->bucket_of[i] = d->nb - 1;
    }
    for (int k = 0; k < d->nb; k++) {
        size_t bytes = (size_t)d->b[k].numel * tn_dtype_size(d->b[k].dt);
        if (!(d->b[k].buf = tn_alloc(bytes)))
            return tn_set_error(TN_ERR_MEMORY, "tn_dist: out of memory for a %zu-byte bucket",
                                bytes);
    }
    d->n_params = ps->n;
    return TN_OK;
}

static tn_status dist_new(tn_dist **out, MPI_Comm comm, const tn_params *ps, bool own)
{
    tn_dist *d = tn_alloc(sizeof *d);
    if (!d)
        return tn_set_error(TN_ERR_MEMORY, "tn_dist_init: out of memory");
    memset(d, 0, sizeof *d);
    d->own_mpi = own;
    d->ps = ps;
    d->bucket_bytes = (size_t)8 << 20;
    if (MPI_Comm_dup(comm, &d->comm) != MPI_SUCCESS) {
        tn_free(d);
        return tn_set_error(TN_ERR_STATE, "tn_dist_init: MPI_Comm_dup failed");
    }
    MPI_Comm_set_errhandler(d->comm, MPI_ERRORS_RETURN);
    MPI_Comm_rank(d->comm, &d->rank);
    MPI_Comm_size(d->comm, &d->size);
    *out = d;
    return TN_OK;
}

tn_status tn_dist_init(tn_dist **d, int *argc, char ***argv, const tn_params *ps)
{
    if (!d || !ps)
        return tn_set_error(TN_ERR_ARG, "tn_dist_init: NULL argument");
    *d = NULL;
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited) {
        int provided;
        if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
            return tn_set_error(TN_ERR_STATE, "tn_dist_init: MPI_Init_thread failed");
    }
    tn_status s = dist_new(d, MPI_COMM_WORLD, ps, !inited);
    if (s && !inited)
        MPI_Finalize();
    return s;
}

tn_status tn_dist_init_comm(tn_dist **d, MPI_Comm comm, const tn_params *ps)
{
    if (!d || !ps)
        return tn_set_error(TN_ERR_ARG, "tn_dist_init_comm: NULL argument");
    *d = NULL;
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited)
        return tn_set_error(TN_ERR_STATE, "tn_dist_init_comm: MPI is not initialised");
    return dist_new(d, comm, ps, false);
}

void tn_dist_free(tn_dist *d)
{
    if (!d)
        return;
    buckets_free(d);
    MPI_Comm_free(&d->comm);
    bool own = d->own_mpi;
    tn_free(d);
    if (own)
        MPI_Finalize();
}

int tn_dist_rank(const tn_dist *d) { return d ? d->rank : 0; }
int tn_dist_size(const tn_dist *d) { return d ? d->size : 1; }
int tn_dist_buckets(const tn_dist *d) { return d ? d->nb : 0; }
int tn_dist_buckets_early(const tn_dist *d) { return d ? d->early : 0; }
double tn_dist_last_seconds(const tn_dist *d) { return d ? d->last_seconds : 0; }

tn_status tn_dist_set_bucket_bytes(tn_dist *d, size_t bytes)
{
    if (!d || bytes < 1024)
        return tn_set_error(TN_ERR_ARG, "tn_dist_set_bucket_bytes: %zu bytes, need >= 1024", bytes);
    d->bucket_bytes = bytes;
    buckets_free(d); /* made again at the next all-reduce */
    return TN_OK;
}

tn_status tn_dist_set_deterministic(tn_dist *d, bool on)
{
    if (!d)
        return tn_set_error(TN_ERR_ARG, "tn_dist_set_deterministic: d is NULL");
    d->deterministic = on;
    return TN_OK;
}

tn_status tn_dist_broadcast(tn_dist *d, const tn_params *ps)
{
    if (!d || !ps)
        return tn_set_error(TN_ERR_ARG, "tn_dist_broadcast: NULL argument");
    if (!tn_dist_same(d, ps->n))
        return tn_set_error(TN_ERR_ARG, "tn_dist_broadcast: the ranks have different numbers of "
                                        "parameters");
    for (int i = 0; i < ps->n; i++) {
        tn_tensor *t = ps->items[i].t;
        if (!tn_dist_same(d, tn_numel(t)))
            return tn_set_error(TN_ERR_SHAPE,
                                "tn_dist_broadcast: parameter %s differs in size "
                                "between ranks",
                                ps->items[i].name);
        if (MPI_Bcast(t->data, (int)tn_numel(t), mpi_type(t->dtype), 0, d->comm) != MPI_SUCCESS)
            return tn_set_error(TN_ERR_STATE, "tn_dist_broadcast: MPI_Bcast of %s failed",
                                ps->items[i].name);
    }
    return TN_OK;
}

/* Copy the bucket's gradients into (to_buf) or out of its buffer. */
static void bucket_copy(const tn_dist *d, bucket *b, bool to_buf)
{
    size_t es = tn_dtype_size(b->dt), off = 0;
    for (int i = b->first; i < b->first + b->count; i++) {
        tn_tensor *t = d->ps->items[i].t;
        size_t bytes = (size_t)tn_numel(t) * es;
        char *p = (char *)b->buf + off;
        if (!t->grad) { /* no gradient yet: zeros */
            if (to_buf)
                memset(p, 0, bytes);
        } else if (to_buf) {
            memcpy(p, t->grad, bytes);
        } else {
            memcpy(t->grad, p, bytes);
        }
        off += bytes;
    }
}

/* buf := the sum over ranks of gather [size][numel], in rank order. */
static void sum_in_order(bucket *b, int size)
{
    int64_t n = b->numel;
    if (b->dt == TN_F32) {
        float *out = b->buf;
        const float *g = b->gather;
        for (int64_t i = 0; i < n; i++) {
            float s = g[i];
            for (int r = 1; r < size; r++)
                s += g[(int64_t)r * n + i];
            out[i] = s;
        }
    } else {
        double *out = b->buf;
        const double *g = b->gather;
        for (int64_t i = 0; i < n; i++) {
            double s = g[i];
            for (int r = 1; r < size; r++)
                s += g[(int64_t)r * n + i];
            out[i] = s;
        }
    }
}

static void scale(bucket *b, double f)
{
    if (b->dt == TN_F32)
        for (int64_t i = 0; i < b->numel; i++)
            ((float *)b->buf)[i] *= (float)f;
    else
        for (int64_t i = 0; i < b->numel; i++)
            ((double *)b->buf)[i] *= f;
}

/* Pack bucket b and start its reduction (every rank starts the buckets in
 * the same order: index order). */
static tn_status bucket_start(tn_dist *d, bucket *b)
{
    bucket_copy(d, b, true);
    if (d->deterministic) {
        if (!b->gather &&
            !(b->gather = tn_alloc((size_t)d->size * (size_t)b->numel * tn_dtype_size(b->dt))))
            return tn_set_error(TN_ERR_MEMORY, "tn_dist_allreduce: out of memory");
        d->err |= MPI_Iallgather(b->buf, (int)b->numel, mpi_type(b->dt), b->gather, (int)b->numel,
                                 mpi_type(b->dt), d->comm, &b->req);
    } else {
        d->err |= MPI_Iallreduce(MPI_IN_PLACE, b->buf, (int)b->numel, mpi_type(b->dt), MPI_SUM,
                                 d->comm, &b->req);
    }
    b->started = true;
    return TN_OK;
}

/* Start the buckets that are ready, in index order, up to the first that
 * is not; MPI_Test on the started ones lets MPI progress them meanwhile. */
static void buckets_advance(tn_dist *d)
{
    while (d->next < d->nb && d->b[d->next].pending == 0) {
        if (bucket_start(d, &d->b[d->next]) != TN_OK)
            return; /* tn_dist_allreduce reports it */
        d->next++;
    }
    for (int k = 0; k < d->next; k++) {
        int done;
        if (d->b[k].req != MPI_REQUEST_NULL)
            MPI_Test(&d->b[k].req, &done, MPI_STATUS_IGNORE);
    }
}

/* A new step: every bucket waits for all of its parameters. */
static void buckets_rearm(tn_dist *d)
{
    for (int k = 0; k < d->nb; k++) {
        d->b[k].pending = d->b[k].count;
        d->b[k].started = false;
    }
    d->next = 0;
    d->err = MPI_SUCCESS;
}

/* The tape's gradient-ready function: p's gradient is final. */
static void dist_grad_ready(void *ctx, tn_tensor *p)
{
    tn_dist *d = ctx;
    if (d->size == 1 || !d->b || d->n_params != d->ps->n)
        return;
    for (int i = 0; i < d->ps->n; i++)
        if (d->ps->items[i].t == p) {
            d->b[d->bucket_of[i]].pending--;
            buckets_advance(d);
            return;
        }
}

tn_status tn_dist_watch(tn_dist *d, tn_tape *tp)
{
    if (!d || !tp)
        return tn_set_error(TN_ERR_ARG, "tn_dist_watch: NULL argument");
    if (!d->b || d->n_params != d->ps->n) {
        tn_status s = buckets_make(d);
        if (s)
            return s;
    }
    buckets_rearm(d);
    tn_tape_set_grad_ready(tp, dist_grad_ready, d);
    d->watching = true;
    return TN_OK;
}

tn_status tn_dist_allreduce(tn_dist *d)
{
    if (!d)
        return tn_set_error(TN_ERR_ARG, "tn_dist_allreduce: NULL handle");
    double t0 = MPI_Wtime();
    if (d->n_params != d->ps->n || !d->b) {
        tn_status s = buckets_make(d);
        if (s)
            return s;
        buckets_rearm(d);
    }
    if (d->size == 1)
        return TN_OK;
    tn_status s = TN_OK;
    d->early = d->next;
    for (; s == TN_OK && d->next < d->nb; d->next++) /* the rest, in order */
        s = bucket_start(d, &d->b[d->next]);
    int err = d->err;
    for (int k = 0; k < d->next; k++) {
        bucket *b = &d->b[k];
        err |= MPI_Wait(&b->req, MPI_STATUS_IGNORE);
        if (d->deterministic)
            sum_in_order(b, d->size);
        scale(b, 1.0 / d->size);
        bucket_copy(d, b, false);
    }
    buckets_rearm(d);
    /* other ranks' rows are in every sparse gradient now */
    for (int i = 0; i < d->ps->n; i++)
        tn_tensor_mark_grad_dense(d->ps->items[i].t);
    d->last_seconds = MPI_Wtime() - t0;
    if (s != TN_OK)
        return s;
    if (err != MPI_SUCCESS)
        return tn_set_error(TN_ERR_STATE, "tn_dist_allreduce: MPI reported an error (rank %d)",
                            d->rank);
    return TN_OK;
}

tn_status tn_dist_agree(tn_dist *d, tn_status local)
{
    if (!d)
        return local;
    int mine = local == TN_OK ? d->size : d->rank, first;
    if (MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, d->comm) != MPI_SUCCESS)
        return tn_set_error(TN_ERR_STATE, "tn_dist_agree: MPI_Allreduce failed (rank %d)", d->rank);
    if (first == d->size)
        return TN_OK;
    struct {
        int status;
        char msg[480];
    } m = {(int)local, ""};
    if (d->rank == first)
        snprintf(m.msg, sizeof m.msg, "%s", tn_last_error());
    MPI_Bcast(&m, (int)sizeof m, MPI_BYTE, first, d->comm);
    return tn_set_error((tn_status)m.status, "rank %d: %s", first, m.msg);
}

bool tn_dist_same(tn_dist *d, int64_t v)
{
    if (!d)
        return true;
    long long lo = v, mn, mx;
    MPI_Allreduce(&lo, &mn, 1, MPI_LONG_LONG, MPI_MIN, d->comm);
    MPI_Allreduce(&lo, &mx, 1, MPI_LONG_LONG, MPI_MAX, d->comm);
    return mn == mx;
}
