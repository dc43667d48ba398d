/** @file
 * tensor/tensor.h - umbrella header of libtensor. */
#ifndef TENSOR_TENSOR_H
#define TENSOR_TENSOR_H

#include "tensor/core.h"
#include "tensor/ops.h"
#include "tensor/gradcheck.h"
#include "tensor/nn.h"
#include "tensor/optim.h"
#include "tensor/io.h"
#include "tensor/lm.h"

#endif
