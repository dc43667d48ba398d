/* tests/downstream/dist_example.c - a program using the installed
 * tensor_dist (tensor/dist.h), built by tests/downstream/run.sh through
 * find_package(tensor COMPONENTS dist) and pkg-config tensor-dist, and run
 * as `mpirun -np 2`. One float64 parameter: the broadcast gives every rank
 * rank 0's value, and the all-reduce replaces the gradient rank + 1 by its
 * mean over the ranks, (size + 1) / 2. Prints
 * "rank R of S: value V, mean gradient G"; exits 1 on any mismatch. */
#include <stdio.h>

#include "tensor/dist.h"
#include "tensor/tensor.h"

int main(int argc, char **argv)
{
    tn_params ps;
    tn_params_init(&ps);
    tn_tensor *w = tn_params_new(&ps, NULL, "w", TN_F64, 1, (int64_t[]){1});
    tn_dist *d = NULL;
    if (!w || tn_dist_init(&d, &argc, &argv, &ps) != TN_OK) {
        fprintf(stderr, "dist_example: %s\n", tn_last_error());
        tn_params_free(&ps);
        return 1;
    }
    int rank = tn_dist_rank(d), size = tn_dist_size(d);
    tn_tensor_set(w, 0, 3.0 + 10.0 * rank);
    ((double *)w->grad)[0] = rank + 1.0;
    int ok = tn_dist_broadcast(d, &ps) == TN_OK && tn_dist_allreduce(d) == TN_OK;
    double value = tn_tensor_get(w, 0), grad = tn_tensor_grad_get(w, 0);
    ok = ok && value == 3.0 && grad == (size + 1) / 2.0 && rank >= 0 && rank < size;
    printf("rank %d of %d: value %g, mean gradient %g\n", rank, size, value, grad);
    if (!ok)
        fprintf(stderr, "dist_example: rank %d: wrong result (%s)\n", rank, tn_last_error());
    tn_dist_free(d);
    tn_params_free(&ps);
    return ok ? 0 : 1;
}
