/* tensor/optim.h - optimizers, learning-rate schedules, gradient clipping,
 * initializers. Everything iterates a tn_params set (tensor/nn.h).
 * (Contract sketch by the lead; the implementer completes the comments.) */
#ifndef TENSOR_OPTIM_H
#define TENSOR_OPTIM_H

#include "tensor/nn.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifdef __cplusplus
}
#endif
#endif
