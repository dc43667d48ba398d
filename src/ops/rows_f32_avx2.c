/* src/ops/rows_f32_avx2.c - the float row kernels (rows_impl.h) for the
 * avx2 kernel path. CMake compiles this file with -march=x86-64-v3 on x86-64
 * (FMA included); elsewhere the path is never chosen and the file holds a
 * copy of the generic kernels. */
#if (defined(__x86_64__) || defined(__i386__)) && !defined(__FMA__)
#error "rows_f32_avx2.c must be compiled with -march=x86-64-v3 (see CMakeLists.txt)"
#endif
#define RT       float
#define RT_FLOAT 1
#include "rows_impl.h"

const tn__rows tn__rows_f32_avx2 = ROWS_TABLE;
