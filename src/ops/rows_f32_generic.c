/* src/ops/rows_f32_generic.c - the float row kernels (rows_impl.h) for
 * the generic kernel path: the compiler's default target. */
#define RT       float
#define RT_FLOAT 1
#include "rows_impl.h"

const tn__rows tn__rows_f32_generic = ROWS_TABLE;
