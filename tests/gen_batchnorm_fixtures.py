#!/usr/bin/env python3
"""Write tests/fixtures/batch_norm.bin: PyTorch reference values for
tn_batch_norm, read by tests/test_batchnorm.c.

Needs PyTorch (1.13 from Debian wrote the committed file); CI only reads the
committed file. Run from anywhere:

    /usr/bin/python3 tests/gen_batchnorm_fixtures.py

Everything is float64 (TNFX format, see tests/fixture_io.py). For each case
<c> (CASES below), y = F.batch_norm(x, running_mean, running_var, weight,
bias, training, momentum, eps) and the gradients of sum(dy * y):

  <c>.x, <c>.dy, <c>.y, <c>.dx              x's shape
  <c>.weight, <c>.dweight, <c>.bias, <c>.dbias  [C]
  <c>.eps, <c>.momentum, <c>.training        []
  <c>.running_mean, <c>.running_var         [C] before the call (absent
                                            without running statistics)
  <c>.running_mean_after, <c>.running_var_after  [C] after it
"""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixture_io import write_fixture  # noqa: E402

torch.set_default_dtype(torch.float64)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "batch_norm.bin")

g = torch.Generator().manual_seed(2026)

# name: (shape of x, training, running statistics?, momentum, eps, offset)
CASES = {
    "train_2d": ((8, 3), True, True, 0.1, 1e-5, 0.0),
    "train_3d": ((4, 5, 6), True, True, 0.3, 1e-5, 0.0),
    "train_4d": ((3, 4, 5, 5), True, True, 0.1, 1e-3, 2.0),
    "train_no_running": ((6, 2, 3), True, False, 0.1, 1e-5, 0.0),
    "eval_4d": ((2, 3, 4, 4), False, True, 0.1, 1e-5, 0.0),
    # channels far from 0 with a small spread: sums in double matter
    "train_offset": ((16, 4, 8), True, True, 0.1, 1e-5, 100.0),
}

fx = {}
for name, (shape, training, running, momentum, eps, offset) in CASES.items():
    C = shape[1]
    x = (offset + torch.randn(*shape, generator=g)).requires_grad_(True)
    w = (1 + 0.5 * torch.randn(C, generator=g)).requires_grad_(True)
    b = (0.5 * torch.randn(C, generator=g)).requires_grad_(True)
    rm = 0.5 * torch.randn(C, generator=g) if running else None
    rv = (0.5 + torch.rand(C, generator=g)) if running else None
    fx[name + ".x"] = x.detach().clone()
    if running:
        fx[name + ".running_mean"] = rm.clone()
        fx[name + ".running_var"] = rv.clone()
    y = F.batch_norm(x, rm, rv, w, b, training, momentum, eps)
    dy = torch.randn(*y.shape, generator=g)
    y.backward(dy)
    fx[name + ".weight"] = w.detach()
    fx[name + ".bias"] = b.detach()
    fx[name + ".eps"] = torch.tensor(eps)
    fx[name + ".momentum"] = torch.tensor(momentum)
    fx[name + ".training"] = torch.tensor(1.0 if training else 0.0)
    fx[name + ".dy"] = dy
    fx[name + ".y"] = y.detach()
    fx[name + ".dx"] = x.grad
    fx[name + ".dweight"] = w.grad
    fx[name + ".dbias"] = b.grad
    if running:
        fx[name + ".running_mean_after"] = rm
        fx[name + ".running_var_after"] = rv

write_fixture(OUT, fx)
print("wrote %s (%d tensors)" % (OUT, len(fx)))
