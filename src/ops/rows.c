/* src/ops/rows.c - the row-kernel table of the active kernel path. */
#include "rows.h"
#include "tensor/ops.h"

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

tn__map tn__map_of(int op)
{
    switch (op) {
    case TN_OP_SCALE: return TN__MAP_SCALE;
    case TN_OP_NEG: return TN__MAP_NEG;
    case TN_OP_EXP: return TN__MAP_EXP;
    case TN_OP_LOG: return TN__MAP_LOG;
    case TN_OP_SIGMOID: return TN__MAP_SIGMOID;
    case TN_OP_TANH: return TN__MAP_TANH;
    case TN_OP_RELU: return TN__MAP_RELU;
    case TN_OP_LEAKY_RELU: return TN__MAP_LEAKY_RELU;
    case TN_OP_GELU: return TN__MAP_GELU;
    case TN_OP_SILU: return TN__MAP_SILU;
    case TN_OP_DROPOUT: return TN__MAP_DROPOUT;
    default: return TN__MAP_COUNT;
    }
}

tn__zip tn__zip_of(int op)
{
    switch (op) {
    case TN_OP_ADD: return TN__ZIP_ADD;
    case TN_OP_SUB: return TN__ZIP_SUB;
    case TN_OP_MUL: return TN__ZIP_MUL;
    case TN_OP_DIV: return TN__ZIP_DIV;
    default: return TN__ZIP_COUNT;
    }
}
