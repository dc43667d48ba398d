#!/usr/bin/env python3
"""Write tests/fixtures/layer_norm.bin: PyTorch reference values for
tn_layer_norm, read by tests/test_norm.c.

Needs PyTorch (1.13 from Debian wrote the committed file); CI only reads the
committed file. Run from anywhere:

    /usr/bin/python3 tests/gen_norm_fixtures.py

Everything is float64 (TNFX format, see tests/fixture_io.py). For each case
<c> (see CASES below) y = F.layer_norm(x, (D,), weight, bias, eps) with
D = x.shape[-1], and the gradients of sum(dy * y):

  <c>.x, <c>.eps [], <c>.dy (y's shape), <c>.y, <c>.dx
  <c>.weight, <c>.dweight  [D]  (absent when the case has no weight)
  <c>.bias, <c>.dbias      [D]  (absent when the case has no bias)

Case "transposed" stores x as its [D, N] base: the op is applied to
x.t() ([N, D], last-dim stride N), and y, dy, dx have x.t()'s shape
[N, D] (dx row-major in that shape).
"""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixture_io import write_fixture  # noqa: E402

torch.set_default_dtype(torch.float64)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "layer_norm.bin")

g = torch.Generator().manual_seed(2025)

# name: (shape of x, weight?, bias?, eps, offset, scale, transposed)
CASES = {
    "small": ((3, 5), True, True, 1e-5, 0.0, 1.0, False),
    "seq": ((2, 4, 6), True, True, 1e-5, 0.0, 2.0, False),
    "plain": ((4, 8), False, False, 1e-5, 0.0, 1.0, False),
    "weight_only": ((2, 2, 3, 7), True, False, 0.1, 0.0, 1.0, False),
    "bias_only": ((5,), False, True, 1e-3, 0.0, 1.0, False),
    # rows offset far from 0 with a small spread: sums in double matter
    "offset": ((6, 16), True, True, 1e-5, 100.0, 0.01, False),
    # D = 140: three blocks of columns in the weight and bias gradients
    # (the parallel path, > 32768 elements, is checked in test_norm.c against
    # a naive loop, to keep this file small)
    "wide": ((16, 140), True, True, 1e-5, 1.0, 3.0, False),
    "transposed": ((6, 5), True, True, 1e-5, 0.0, 1.0, True),
}

fx = {}
for name, (shape, has_w, has_b, eps, offset, scale, transposed) in CASES.items():
    base = offset + scale * torch.randn(*shape, generator=g)
    x = base.t() if transposed else base
    x = x.detach().requires_grad_(True)
    D = x.shape[-1]
    w = (1 + 0.5 * torch.randn(D, generator=g)).requires_grad_(True) if has_w else None
    b = (0.5 * torch.randn(D, generator=g)).requires_grad_(True) if has_b else None
    y = F.layer_norm(x, (D,), w, b, eps)
    dy = torch.randn(*y.shape, generator=g)
    y.backward(dy)
    fx[name + ".x"] = base
    fx[name + ".eps"] = torch.tensor(eps)
    fx[name + ".dy"] = dy
    fx[name + ".y"] = y
    fx[name + ".dx"] = x.grad.contiguous()
    if has_w:
        fx[name + ".weight"] = w
        fx[name + ".dweight"] = w.grad
    if has_b:
        fx[name + ".bias"] = b
        fx[name + ".dbias"] = b.grad

write_fixture(OUT, fx)
print("wrote %s (%d tensors)" % (OUT, len(fx)))
