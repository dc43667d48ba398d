/* src/core/loops.h - the dtype dispatch and threaded-loop macros of the
 * library's element loops, shared by core, ops and nn (no tape or tensor
 * internals, so nn code that only uses the public API can include it). */
#ifndef TN_CORE_LOOPS_H
#define TN_CORE_LOOPS_H

/* Run a statement block with T typedef'd to the element type of a float
 * dtype (float for TN_F32, double otherwise). With <tgmath.h>, math calls on
 * T values pick the float or double function. */
#define TN_FOR_DTYPE(dt, T, ...)      \
    do {                              \
        if ((dt) == TN_F32) {         \
            typedef float T;          \
            __VA_ARGS__               \
        } else {                      \
            typedef double T;         \
            __VA_ARGS__               \
        }                             \
    } while (0)

/* An OpenMP parallel-for that runs only when cond holds; usable inside
 * TN_FOR_DTYPE bodies (a #pragma line is not allowed in a macro argument). */
#define TN_PRAGMA(x) _Pragma(#x)
#define TN_OMP_FOR(cond) TN_PRAGMA(omp parallel for if (cond))

/* OpenMP loops only pay off above this many elements. */
#define TN_PAR_MIN 32768

#endif
