/* src/ops/fastmath.h - float exp, tanh and sigmoid that the compiler can
 * vectorise (glibc's expf/tanhf are scalar calls and were a quarter of an
 * LSTM training step). Branch-free, so loops over them become SIMD (with
 * -fno-trapping-math below AVX-512: see rows.h and CMakeLists.txt).
 *
 * Accuracy (tests/test_fastmath.c sweeps them against double-precision
 * libm): measured max relative error 1.0e-7 for exp on [-87, 88], 1.5e-7
 * for tanh, 1.0e-7 for sigmoid (above 0.5), i.e. within 2 float ulp; the
 * test bounds are 2 ulp and 4e-7 absolute. float64 code keeps using libm. */
#ifndef TN_FASTMATH_H
#define TN_FASTMATH_H

#include <stdint.h>
#include <math.h>
#include <string.h>

/* e^x for float: x = n ln2 + r, |r| <= ln2/2, e^r by a degree-7 Taylor
 * polynomial (truncation < 7e-9 relative there), times 2^n built in the
 * exponent bits. Below -87.3 the result is 0 (e^x is under the smallest
 * normal there), above 88 it stays at e^88 ~ 1.65e38: no inf or denormal
 * from finite input; -inf gives 0, +inf e^88, and NaN gives NaN (the
 * integer conversion sees 0 in its place, a select that stays branch-free:
 * converting NaN to int is undefined behaviour). */
static inline float tn__expf(float x)
{
    float x0 = x;
    x = x < -87.3f ? -87.3f : x > 88.0f ? 88.0f : x;
    /* round to nearest integer by adding and removing 1.5 * 2^23 (exact in
     * float for |v| < 2^22 under the default rounding mode; unlike a call to
     * roundf it vectorises. Needs no -ffast-math, which would break it.) */
    float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = x - n * 0.693145751953125f; /* ln2 split: hi exact in float */
    r = r - n * 1.42860682030941723212e-6f;
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    n = n == n ? n : 0.0f; /* NaN: p is NaN already; keep the conversion defined */
    uint32_t bits = (uint32_t)((int32_t)n + 127) << 23; /* n in [-126, 127] */
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return x0 < -87.3f ? 0.0f : p * scale; /* e^x below the normal range: 0 */
}

/* Logistic sigmoid, stable for large |x|: z = e^-|x| <= 1. */
static inline float tn__sigmoidf(float x)
{
    float z = tn__expf(-__builtin_fabsf(x));
    float s = 1.0f / (1.0f + z);
    return x >= 0 ? s : z * s;
}

/* tanh: 1 - 2 / (e^2|x| + 1) with the sign of x; below |x| = 0.3 the odd
 * Taylor series to x^11 (truncation < 6e-10 relative) avoids the
 * cancellation of 1 - ... */
static inline float tn__tanhf(float x)
{
    float a = __builtin_fabsf(x);
    float big = 1.0f - 2.0f / (tn__expf(2.0f * a) + 1.0f);
    float a2 = a * a;
    float p = -1382.0f / 155925.0f;
    p = p * a2 + 62.0f / 2835.0f;
    p = p * a2 - 17.0f / 315.0f;
    p = p * a2 + 2.0f / 15.0f;
    p = p * a2 - 1.0f / 3.0f;
    float small = a + a * a2 * p;
    float t = a < 0.3f ? small : big;
    return x < 0 ? -t : t;
}

/* Type-generic picks: the fast float versions, libm for double. */
#define TN_EXP(v)     _Generic((v), float : tn__expf, default : exp)(v)
#define TN_TANH(v)    _Generic((v), float : tn__tanhf, default : tanh)(v)
#define TN_SIGMOID(v) _Generic((v), float : tn__sigmoidf, default : tn__sigmoid)(v)

/* Double sigmoid, stable for large |x|. */
static inline double tn__sigmoid(double x)
{
    double z = exp(-__builtin_fabs(x));
    return (x >= 0 ? 1.0 : z) / (1.0 + z);
}

#endif
