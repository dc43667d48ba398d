/* src/core/loops.h - the dtype dispatch and threaded-loop macros of the
 * library's element loops, shared by core, ops and nn (no tape or tensor
 * internals, so nn code that only uses the public API can include it). */
#ifndef TN_CORE_LOOPS_H
#define TN_CORE_LOOPS_H

/* Apply the process-wide thread count to the calling thread's OpenMP
 * default and flush-to-zero to its team's workers, once per change
 * (src/core/runtime.c); a no-op inside a parallel region. */
void tn__thread_sync(void);

/* The rest of the enclosing block computes with flush-to-zero and
 * denormals-are-zero on in the calling thread (denormals in RNN gates slow
 * kernels many times), after tn__thread_sync; at the end of the block the
 * thread's own two mode bits come back (exception flags raised meanwhile
 * stay raised), so the caller's floating-point environment is left as it
 * was. Costs two MXCSR reads, and two writes when the modes differ. */
#if defined(__SSE__)
#include <xmmintrin.h>
#define TN__FTZ_DAZ 0x8040u /* MXCSR flush-to-zero (bit 15), denormals-are-zero (bit 6) */
static inline unsigned tn__ftz_enter(void)
{
    tn__thread_sync();
    unsigned old = _mm_getcsr();
    if ((old & TN__FTZ_DAZ) != TN__FTZ_DAZ)
        _mm_setcsr(old | TN__FTZ_DAZ);
    return old;
}
static inline void tn__ftz_leave(const unsigned *old)
{
    unsigned now = _mm_getcsr();
    if ((now & TN__FTZ_DAZ) != (*old & TN__FTZ_DAZ))
        _mm_setcsr((now & ~TN__FTZ_DAZ) | (*old & TN__FTZ_DAZ));
}
#define TN_FTZ_SCOPE \
    const unsigned tn__csr __attribute__((cleanup(tn__ftz_leave), unused)) = tn__ftz_enter()
#else
#define TN_FTZ_SCOPE \
    const int tn__csr __attribute__((unused)) = (tn__thread_sync(), 0)
#endif

/* Run a statement block with T typedef'd to the element type of a float
 * dtype (float for TN_F32, double otherwise), in a TN_FTZ_SCOPE. With
 * <tgmath.h>, math calls on T values pick the float or double function. */
#define TN_FOR_DTYPE(dt, T, ...)      \
    do {                              \
        TN_FTZ_SCOPE;                 \
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
