/* tests/gc.h - gradient-check cases, one table per op family (gc_*.c).
 *
 * test_gradcheck walks the op table and fails when an op has no case. For
 * each case it builds float64 inputs from a fixed seed, runs tn_gradcheck
 * (central differences, eps 1e-6) and requires max relative error <= tol;
 * then it runs the same function on float32 copies of the inputs and
 * requires |y32 - y64| <= tol32 * (1 + |y64|) element-wise.
 */
#ifndef TN_TEST_GC_H
#define TN_TEST_GC_H

#include "tensor/gradcheck.h"

typedef struct gc_input {
    tn_dtype dtype; /* TN_F64 (converted to F32 for the f32 check) or TN_I32 */
    int ndim;
    int64_t shape[4];
    bool grad;     /* checked (requires_grad) */
    double lo, hi; /* uniform values in [lo, hi); I32: integers in [lo, hi) */
} gc_input;

typedef struct gc_case {
    int op;           /* the op this case covers */
    const char *name; /* what is special about it */
    tn_gradcheck_fn fn;
    int n_inputs;
    gc_input in[7];
    double tol;   /* max relative error of the float64 gradient check */
    double tol32; /* float32 vs float64 forward, relative */
} gc_case;

/* Each family file defines one of these (weak here, so a missing family is
 * reported as uncovered ops rather than a link error). */
#define GC_FAMILY(name) const gc_case *gc_family_##name(int *n)
GC_FAMILY(binary) __attribute__((weak));
GC_FAMILY(unary) __attribute__((weak));
GC_FAMILY(shape) __attribute__((weak));
GC_FAMILY(matmul) __attribute__((weak));
GC_FAMILY(reduce) __attribute__((weak));
GC_FAMILY(softmax) __attribute__((weak));
GC_FAMILY(select) __attribute__((weak));
GC_FAMILY(index) __attribute__((weak));
GC_FAMILY(loss) __attribute__((weak));
GC_FAMILY(fused) __attribute__((weak));
GC_FAMILY(recurrent) __attribute__((weak));
GC_FAMILY(custom) __attribute__((weak));
GC_FAMILY(scan) __attribute__((weak));
GC_FAMILY(linear_loss) __attribute__((weak));
GC_FAMILY(norm) __attribute__((weak));
GC_FAMILY(conv) __attribute__((weak));

#endif
