/* examples/common/train_dist.h - data-parallel training for the example programs
 * (not part of libtensor's API; built with them as the static library
 * tn_examples). With MPI (tensor_dist, tensor/dist.h) and a launch by
 * mpirun, the ranks split each global batch and average their gradients;
 * otherwise (no MPI in the build, or a plain launch) everything here is
 * the one-process case: rank 0 of 1, and the collective calls do nothing.
 *
 * Rules the programs follow: every rank reads the same data and the same
 * checkpoint (a shared file system), takes rows [rank*B/N, (rank+1)*B/N)
 * of each global batch of B (B divisible by N), and calls ex_dist_step_end
 * after backward; only rank 0 prints, evaluates and writes checkpoints;
 * any failure goes through ex_dist_agree so that every rank stops (no hang). */
#ifndef TN_EXAMPLES_TRAIN_DIST_H
#define TN_EXAMPLES_TRAIN_DIST_H

#include <tensor/tensor.h>

/* Start: MPI is initialised only when the process was launched by an MPI
 * launcher (OMPI_COMM_WORLD_SIZE or PMI_SIZE in the environment). Returns
 * 0, or -1 with a message printed. */
int ex_dist_start(int *argc, char ***argv);
/* Stop (finalises MPI when ex_dist_start initialised it). */
void ex_dist_stop(void);
int ex_dist_rank(void);
int ex_dist_size(void);
/* Attach the parameter set whose gradients are averaged and make every
 * rank start from rank 0's values. Returns 0 or -1 (message printed). */
int ex_dist_attach(tn_params *ps);
/* Start averaging each bucket of the attached gradients during tn_backward
 * on tp, as soon as its gradients are final (tn_dist_watch), unless
 * $TN_DIST_NO_OVERLAP is set (for measuring what the overlap gains).
 * Returns 0 or -1 (message printed). */
int ex_dist_watch(tn_tape *tp);
/* Average the attached gradients over the ranks (after backward, before
 * clipping). Adds the seconds it took to *seconds (may be NULL). */
tn_status ex_dist_allreduce(double *seconds);
/* The same status on every rank: the lowest failing rank's, its message
 * prefixed "rank R: " in tn_last_error(). */
tn_status ex_dist_agree(tn_status local);
/* The mean of v over the ranks (NaN if any rank's v is NaN). */
double ex_dist_mean(double v);
/* Whether v is the same on every rank. */
bool ex_dist_same(int64_t v);
/* Rank 0 gets every rank's `bytes` bytes at all[r * bytes] (others: all
 * may be NULL). Returns 0 or -1. */
int ex_dist_gather(const void *mine, void *all, int64_t bytes);

#endif
