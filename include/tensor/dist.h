/** @file
 * tensor/dist.h - data-parallel training over MPI (optional module,
 * library tensor_dist, built when CMake finds MPI: -DTN_MPI=AUTO|ON|OFF).
 *
 * Every process (rank) holds the whole model and trains on its share of
 * the global batch; after backward the gradients are averaged over the
 * ranks, so every rank takes the same optimizer step:
 *
 *     tn_dist *d;
 *     tn_dist_init(&d, &argc, &argv, &ps);     // or tn_dist_init_comm
 *     tn_dist_broadcast(d, &ps);               // rank 0's parameters
 *     for each step:
 *         forward on this rank's rows; tn_backward(...)
 *         tn_dist_allreduce(d);                // average the gradients
 *         tn_clip_grad_norm(&ps, 1.0, NULL); tn_optim_step(opt);
 *
 * Gradients travel in a few large buckets (packed once per step into
 * buffers made at init: no allocation per step), started with
 * non-blocking all-reduces and waited together; with tn_dist_watch each
 * bucket starts during backward, as soon as its gradients are final. The deterministic mode
 * sums the ranks' buckets in rank order on every rank (an all-gather), so
 * results are bitwise identical run to run for the same number of ranks
 * (MPI's own reductions may change their order with the algorithm MPI
 * picks). tn_dist_agree turns a failure on any rank into the same error on
 * every rank, naming the rank, instead of a hang.
 *
 * Threads: MPI is used from the calling thread only (MPI_THREAD_FUNNELED);
 * the library's OpenMP and BLIS threads never call MPI.
 */
#ifndef TENSOR_DIST_H
#define TENSOR_DIST_H

#include "tensor/nn.h"

#include <mpi.h>

#ifdef __cplusplus
extern "C" {
#endif

/** A handle of data-parallel training on one communicator (opaque). */
typedef struct tn_dist tn_dist;

/** Start on MPI_COMM_WORLD, initialising MPI (MPI_Init_thread, FUNNELED)
 * unless the caller did; ps is the parameter set whose gradients
 * tn_dist_allreduce averages (it must outlive d and keep its parameters).
 * argc/argv may be NULL. *d gets the handle (free with tn_dist_free, which
 * finalises MPI only if tn_dist_init initialised it). */
TN_API tn_status tn_dist_init(tn_dist **d, int *argc, char ***argv, const tn_params *ps);
/** The same on a communicator the caller made (MPI already initialised);
 * the communicator is duplicated, so the caller keeps its own. */
TN_API tn_status tn_dist_init_comm(tn_dist **d, MPI_Comm comm, const tn_params *ps);
/** Free d (NULL: no-op); finalises MPI if tn_dist_init initialised it. */
TN_API void tn_dist_free(tn_dist *d);

/** @{ */
/** This process's rank and the number of ranks (0 and 1 for NULL). */
TN_API int tn_dist_rank(const tn_dist *d);
TN_API int tn_dist_size(const tn_dist *d);
/** @} */
/** Bucket size in bytes (default 8 MiB; set before the first all-reduce). */
TN_API tn_status tn_dist_set_bucket_bytes(tn_dist *d, size_t bytes);
/** Fixed-order sums (see above); off by default. TN_ERR_ARG when d is
 * NULL. */
TN_API tn_status tn_dist_set_deterministic(tn_dist *d, bool on);
/** @{ */
/** Number of buckets and seconds spent in the last tn_dist_allreduce. */
TN_API int tn_dist_buckets(const tn_dist *d);
/** Of those, how many started during the last backward (tn_dist_watch). */
TN_API int tn_dist_buckets_early(const tn_dist *d);
TN_API double tn_dist_last_seconds(const tn_dist *d);
/** @} */

/** Copy rank 0's parameter values to every rank (at start, and after rank
 * 0 loaded a checkpoint). */
TN_API tn_status tn_dist_broadcast(tn_dist *d, const tn_params *ps);
/** Replace every parameter gradient by its mean over the ranks (collective:
 * every rank must call it, after every tn_backward). With a tape watched
 * (tn_dist_watch) the buckets whose gradients were all final during
 * backward are already under way; this starts the rest and waits for all.
 * A failed backward must still be followed by this call (or by the end of
 * the run) on every rank. */
TN_API tn_status tn_dist_allreduce(tn_dist *d);
/** Overlap communication with backward, as PyTorch's DDP does: set tp's
 * gradient-ready function (tn_tape_set_grad_ready) so that each bucket's
 * all-reduce starts as soon as the last of its gradients is final, while
 * backward goes on with the rest. Buckets hold the parameters from the
 * last registered to the first (backward's usual order) and start in the
 * same order on every rank, each once all before it have started; the
 * deterministic mode keeps its bitwise guarantee (the same sums, started
 * earlier). d must outlive the watch (tn_tape_set_grad_ready(tp, NULL,
 * NULL) ends it). */
TN_API tn_status tn_dist_watch(tn_dist *d, tn_tape *tp);
/** Collective: returns TN_OK when local is TN_OK on every rank; otherwise
 * every rank returns the status of the lowest failing rank, with the
 * message "rank R: <its tn_last_error()>" in tn_last_error(). */
TN_API tn_status tn_dist_agree(tn_dist *d, tn_status local);
/** Collective: whether v is the same on every rank (for checks such as the
 * data size or the number of ranks a checkpoint was made with). */
TN_API bool tn_dist_same(tn_dist *d, int64_t v);

#ifdef __cplusplus
}
#endif
#endif
