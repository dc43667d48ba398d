/* src/core/isa.c - which kernel path (instruction-set level) the library's
 * own hot loops run on, and the TN_ISA override.
 *
 * Three paths exist: avx512 (x86-64-v4: AVX-512 F/CD/BW/DQ/VL), avx2
 * (x86-64-v3: AVX2, FMA, BMI1/2, F16C) and generic (whatever the compiler
 * targets by default: SSE2 on x86-64, NEON on aarch64). The CPU decides
 * the highest path; TN_ISA=avx512|avx2|generic forces a lower one (never a
 * higher), so that the AVX2 and generic paths can be measured and tested
 * on an AVX-512 machine. The choice is made once, in tn_runtime_init,
 * before the first BLIS call (runtime.c also lets it pick BLIS's
 * configuration).
 */
#define _POSIX_C_SOURCE 200809L
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>

static tn_isa isa_active = TN_ISA_GENERIC;
static bool isa_forced = false;

const char *tn_isa_name(tn_isa isa)
{
    switch (isa) {
    case TN_ISA_GENERIC: return "generic";
    case TN_ISA_AVX2: return "avx2";
    case TN_ISA_AVX512: return "avx512";
    }
    return "?";
}

tn_isa tn_isa_cpu(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx2") &&
        __builtin_cpu_supports("fma") && __builtin_cpu_supports("bmi") &&
        __builtin_cpu_supports("bmi2"))
        return TN_ISA_AVX512;
    /* x86-64-v3 also has F16C, LZCNT and MOVBE, which every AVX2 + FMA CPU
     * has too (and the row kernels do not use); clang's builtin cannot test
     * F16C */
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
        __builtin_cpu_supports("bmi") && __builtin_cpu_supports("bmi2"))
        return TN_ISA_AVX2;
#endif
    return TN_ISA_GENERIC;
}

tn_status tn__isa_choose(char *msg, size_t cap)
{
    tn_isa cpu = tn_isa_cpu();
    const char *env = getenv("TN_ISA");
    isa_active = cpu;
    isa_forced = false;
    if (!env || !*env)
        return TN_OK;
    tn_isa want;
    if (strcmp(env, "avx512") == 0)
        want = TN_ISA_AVX512;
    else if (strcmp(env, "avx2") == 0)
        want = TN_ISA_AVX2;
    else if (strcmp(env, "generic") == 0)
        want = TN_ISA_GENERIC;
    else {
        snprintf(msg, cap, "TN_ISA=%s: unknown kernel path; expected avx512, avx2 or generic", env);
        isa_active = TN_ISA_GENERIC;
        return TN_ERR_ARG;
    }
    if (want > cpu) {
        snprintf(msg, cap, "TN_ISA=%s: this CPU supports the %s path at most", env,
                 tn_isa_name(cpu));
        isa_active = TN_ISA_GENERIC;
        return TN_ERR_ARG;
    }
    isa_active = want;
    isa_forced = true;
    return TN_OK;
}

bool tn__isa_forced(void) { return isa_forced; }

tn_isa tn__isa_value(void) { return isa_active; }

tn_isa tn_isa_active(void)
{
    tn_runtime_init();
    return isa_active;
}
