/* src/core/loops.h - the dtype dispatch and threaded-loop macros of the
 * library's element loops, shared by core, ops and nn (no tape or tensor
 * internals, so nn code that only uses the public API can include it). */
#ifndef TN_CORE_LOOPS_H
#define TN_CORE_LOOPS_H

/* Apply the process-wide thread count to the calling thread's OpenMP
 * default and flush-to-zero to its team's workers, once per change
 * (src/core/runtime.c); a no-op inside a parallel region. */
void tn__thread_sync(void);

/* The threads the library's own parallel regions and GEMMs use now:
 * tn_num_threads(), or fewer while the back-off sees the cores busy with
 * other processes (src/core/runtime.c). Read it once per op and size
 * per-thread buffers and num_threads clauses from that one value. */
int tn__threads_now(void);

/* Tests: probe replaces the /proc count of other processes' running
 * threads (NULL: back to /proc) and the next kernel entry probes. */
void tn__backoff_test_probe(int (*probe)(void));

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
#define TN_FTZ_SCOPE const int tn__csr __attribute__((unused)) = (tn__thread_sync(), 0)
#endif

/* Run a statement block with T typedef'd to the element type of a float
 * dtype (float for TN_F32, double otherwise), in a TN_FTZ_SCOPE. With
 * <tgmath.h>, math calls on T values pick the float or double function. */
#define TN_FOR_DTYPE(dt, T, ...) \
    do {                         \
        TN_FTZ_SCOPE;            \
        if ((dt) == TN_F32) {    \
            typedef float T;     \
            __VA_ARGS__          \
        } else {                 \
            typedef double T;    \
            __VA_ARGS__          \
        }                        \
    } while (0)

/* for (int64_t i = lo; i < hi; i++) { body }, split over the OpenMP team
 * when par holds, else a plain loop that never enters the OpenMP runtime:
 * an `if (0)` clause would still open a one-thread region, about a
 * microsecond per call, which is what a small op costs in all. The body is
 * a brace block; usable inside TN_FOR_DTYPE bodies (a #pragma line is not
 * allowed in a macro argument, _Pragma is). The split is static, so which
 * thread computes an element never changes a result. */
#define TN_PRAGMA(x)                    _Pragma(#x)
#define TN_PAR_FOR(par, i, lo, hi, ...) TN_PAR_FOR_STEP(par, i, lo, hi, 1, __VA_ARGS__)
/* The same with i += step. */
#define TN_PAR_FOR_STEP(par, i, lo, hi, step, ...)        \
    do {                                                  \
        if (par) {                                        \
            TN_PRAGMA(omp parallel for schedule(static))  \
            for (int64_t i = (lo); i < (hi); i += (step)) \
                __VA_ARGS__                               \
        } else {                                          \
            for (int64_t i = (lo); i < (hi); i += (step)) \
                __VA_ARGS__                               \
        }                                                 \
    } while (0)

/* OpenMP loops only pay off above this many elements. */
#define TN_PAR_MIN 32768

#endif
