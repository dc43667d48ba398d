/* tests/test_isa.c - the kernel-path override TN_ISA (src/core/isa.c).
 *
 * Run by ctest several times with different environments (see
 * tests/CMakeLists.txt). With TN_TEST_ISA_EXPECT=error, TN_ISA holds a
 * value the runtime must refuse: initialisation and every op fail with a
 * message naming TN_ISA and the value. Otherwise the active path is the
 * one asked for (or the CPU's best), never above what the CPU has, and
 * BLIS's configuration follows a forced path unless BLIS_ARCH_TYPE is set.
 */
#include "check.h"

#include "tensor/tensor.h"

int main(void)
{
    const char *want = getenv("TN_ISA");
    const char *expect = getenv("TN_TEST_ISA_EXPECT");
    if (expect && strcmp(expect, "error") == 0) {
        CHECK(tn_runtime_init() == TN_ERR_ARG);
        CHECK_MSG(tn_last_error(), "TN_ISA=");
        CHECK_MSG(tn_last_error(), want ? want : "?");
        CHECK_MSG(tn_runtime_error(), "TN_ISA=");
        /* every op refuses, with the same message */
        tn_tensor *x = tn_tensor_full(TN_F32, 1, (int64_t[]){3}, 1.0);
        tn_tape *tp = tn_tape_new();
        CHECK(x && tp);
        if (x && tp) {
            CHECK(tn_exp(tp, x) == NULL);
            CHECK(tn_tape_error(tp) != NULL);
            CHECK_MSG(tn_last_error(), "exp");
            CHECK_MSG(tn_last_error(), "TN_ISA=");
        }
        tn_tape_free(tp);
        tn_tensor_free(x);
        return check_report("test_isa (refused)");
    }
    CHECK(tn_runtime_init() == TN_OK);
    CHECK(strcmp(tn_runtime_error(), "") == 0);
    tn_isa active = tn_isa_active(), cpu = tn_isa_cpu();
    printf("isa %s, cpu %s, BLIS %s (%s)\n", tn_isa_name(active), tn_isa_name(cpu),
           tn_blis_config(), tn_blis_config_reason());
    CHECK(active <= cpu);
    if (want && *want) {
        CHECK(strcmp(tn_isa_name(active), want) == 0);
        const char *user = getenv("BLIS_ARCH_TYPE");
        if (!user || strstr(tn_blis_config_reason(), "TN_ISA")) {
            const char *blis = active == TN_ISA_AVX512 ? "skx"
                               : active == TN_ISA_AVX2 ? "haswell"
                                                       : "generic";
            CHECK(strcmp(tn_blis_config(), blis) == 0);
        }
    } else {
        CHECK(active == cpu);
    }
    CHECK(strcmp(tn_isa_name(TN_ISA_GENERIC), "generic") == 0);
    CHECK(strcmp(tn_isa_name(TN_ISA_AVX2), "avx2") == 0);
    CHECK(strcmp(tn_isa_name(TN_ISA_AVX512), "avx512") == 0);
    return check_report("test_isa");
}
