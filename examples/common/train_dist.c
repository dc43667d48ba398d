/* examples/common/train_dist.c - see train_dist.h. Compiled with TN_WITH_MPI when
 * CMake found MPI (then it uses tensor_dist), without it otherwise. */
#include "train_dist.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef TN_WITH_MPI
#include <tensor/dist.h>

static bool mpi_on = false, mpi_ours = false;
static tn_dist *dist = NULL;

int ex_dist_start(int *argc, char ***argv)
{
    if (!getenv("OMPI_COMM_WORLD_SIZE") && !getenv("PMI_SIZE"))
        return 0; /* a plain launch: one process, no MPI */
    int inited = 0, provided;
    MPI_Initialized(&inited);
    if (!inited && MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
        fprintf(stderr, "MPI_Init_thread failed\n");
        return -1;
    }
    mpi_on = true;
    mpi_ours = !inited;
    return 0;
}

void ex_dist_stop(void)
{
    tn_dist_free(dist);
    dist = NULL;
    if (mpi_on && mpi_ours)
        MPI_Finalize();
    mpi_on = false;
}

int ex_dist_rank(void)
{
    int r = 0;
    if (mpi_on)
        MPI_Comm_rank(MPI_COMM_WORLD, &r);
    return r;
}

int ex_dist_size(void)
{
    int n = 1;
    if (mpi_on)
        MPI_Comm_size(MPI_COMM_WORLD, &n);
    return n;
}

int ex_dist_attach(tn_params *ps)
{
    if (!mpi_on)
        return 0;
    if (tn_dist_init_comm(&dist, MPI_COMM_WORLD, ps) != TN_OK ||
        tn_dist_broadcast(dist, ps) != TN_OK) {
        fprintf(stderr, "rank %d: %s\n", ex_dist_rank(), tn_last_error());
        return -1;
    }
    return 0;
}

int ex_dist_watch(tn_tape *tp)
{
    if (!dist || getenv("TN_DIST_NO_OVERLAP"))
        return 0;
    if (tn_dist_watch(dist, tp) != TN_OK) {
        fprintf(stderr, "rank %d: %s\n", ex_dist_rank(), tn_last_error());
        return -1;
    }
    return 0;
}

tn_status ex_dist_allreduce(double *seconds)
{
    if (!dist)
        return TN_OK;
    tn_status s = tn_dist_allreduce(dist);
    if (seconds)
        *seconds += tn_dist_last_seconds(dist);
    return s;
}

tn_status ex_dist_agree(tn_status local)
{
    if (!mpi_on)
        return local;
    if (dist)
        return tn_dist_agree(dist, local);
    int mine = local == TN_OK ? ex_dist_size() : ex_dist_rank(), first;
    MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (first == ex_dist_size())
        return TN_OK;
    return local != TN_OK ? local : tn_set_error(TN_ERR_STATE, "rank %d failed", first);
}

double ex_dist_mean(double v)
{
    if (!mpi_on)
        return v;
    double sum;
    MPI_Allreduce(&v, &sum, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    return sum / ex_dist_size();
}

bool ex_dist_same(int64_t v)
{
    if (!mpi_on)
        return true;
    long long lo = v, mn, mx;
    MPI_Allreduce(&lo, &mn, 1, MPI_LONG_LONG, MPI_MIN, MPI_COMM_WORLD);
    MPI_Allreduce(&lo, &mx, 1, MPI_LONG_LONG, MPI_MAX, MPI_COMM_WORLD);
    return mn == mx;
}

int ex_dist_gather(const void *mine, void *all, int64_t bytes)
{
    if (!mpi_on) {
        memcpy(all, mine, (size_t)bytes);
        return 0;
    }
    return MPI_Gather(mine, (int)bytes, MPI_BYTE, all, (int)bytes, MPI_BYTE, 0, MPI_COMM_WORLD) ==
                   MPI_SUCCESS
               ? 0
               : -1;
}

#else /* one process */

int ex_dist_start(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    if (getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE")) {
        const char *n = getenv("OMPI_COMM_WORLD_SIZE");
        if (!n)
            n = getenv("PMI_SIZE");
        if (atoi(n) > 1) {
            fprintf(stderr,
                    "launched as %s ranks, but this build has no MPI "
                    "(install libopenmpi-dev and rebuild)\n",
                    n);
            return -1;
        }
    }
    return 0;
}
void ex_dist_stop(void) {}
int ex_dist_rank(void) { return 0; }
int ex_dist_size(void) { return 1; }
int ex_dist_attach(tn_params *ps)
{
    (void)ps;
    return 0;
}
int ex_dist_watch(tn_tape *tp)
{
    (void)tp;
    return 0;
}
tn_status ex_dist_allreduce(double *seconds)
{
    (void)seconds;
    return TN_OK;
}
tn_status ex_dist_agree(tn_status local) { return local; }
double ex_dist_mean(double v) { return v; }
bool ex_dist_same(int64_t v)
{
    (void)v;
    return true;
}
int ex_dist_gather(const void *mine, void *all, int64_t bytes)
{
    memcpy(all, mine, (size_t)bytes);
    return 0;
}
#endif
