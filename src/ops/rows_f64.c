/* src/ops/rows_f64.c - the double row kernels (rows_impl.h), for gradient
 * checks: default target, libm's exp and tanh. One path for every CPU. */
#define RT double
#include "rows_impl.h"

const tn__rows tn__rows_f64 = ROWS_TABLE;
