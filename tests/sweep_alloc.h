/* tests/sweep_alloc.h - allocator hooks for allocation-failure sweeps
 * (test_alloc_sweep, test_conv): tn_set_allocator(sweep_alloc, sweep_free)
 * makes allocation number fail_at (1-based, counted in n_alloc; 0: none)
 * fail and keeps n_live, the allocations not freed yet. */
#ifndef TN_TEST_SWEEP_ALLOC_H
#define TN_TEST_SWEEP_ALLOC_H

#include <stdlib.h>

static long n_alloc, fail_at; /* fail allocation number fail_at (1-based); 0: none */
static long n_live;           /* allocations not freed yet */

static inline void *sweep_alloc(size_t n)
{
    if (++n_alloc == fail_at)
        return NULL;
    void *p = malloc(n);
    n_live += p != NULL;
    return p;
}

static inline void sweep_free(void *p)
{
    n_live -= p != NULL;
    free(p);
}

#endif
