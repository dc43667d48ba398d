/* tensor/io.h - safetensors checkpoints.
 * (Contract sketch by the lead; the implementer completes it.) */
#ifndef TENSOR_IO_H
#define TENSOR_IO_H

#include "tensor/nn.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifdef __cplusplus
}
#endif
#endif
