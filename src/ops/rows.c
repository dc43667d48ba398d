/* src/ops/rows.c - the row-kernel table of the active kernel path. */
#include "rows.h"

const tn__rows *tn__rows_get(tn_dtype dt)
{
    if (dt != TN_F32)
        return &tn__rows_f64;
    switch (tn_isa_active()) {
    case TN_ISA_AVX512: return &tn__rows_f32_avx512;
    case TN_ISA_AVX2: return &tn__rows_f32_avx2;
    case TN_ISA_GENERIC: break;
    }
    return &tn__rows_f32_generic;
}
