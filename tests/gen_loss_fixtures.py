#!/usr/bin/env python3
"""Write tests/fixtures/loss_weighted.bin: PyTorch reference values for the
class-weighted cross-entropy (tn_cross_entropy_weighted), read by
tests/test_loss_weighted.c.

Needs PyTorch (1.13 from Debian wrote the committed file); CI only reads the
committed file. Run from anywhere:

    /usr/bin/python3 tests/gen_loss_fixtures.py

Everything is float64 (TNFX format, see tests/fixture_io.py). For each case
<c> in "small" (N 7, C 5, two targets ignored with ignore_index -100, one
class of weight 0) and "wide" (N 100, C 18, targets drawn as unbalanced as
the names data, the classifier's sklearn-style 'balanced' weights):

  <c>.logits [N, C], <c>.targets [N], <c>.weight [C], <c>.ignore [] (-100)
  <c>.<red>       F.cross_entropy(logits, targets, weight, ignore_index,
                  reduction=<red>) for red in mean, sum, none
  <c>.<red>.grad  d/dlogits of the loss (mean, sum) or of sum(dy * loss)
                  (none), with <c>.dy [N]
"""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixture_io import write_fixture  # noqa: E402

torch.set_default_dtype(torch.float64)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "loss_weighted.bin")
IGNORE = -100

g = torch.Generator().manual_seed(2024)
cases = {}

# small: ignored rows and a zero-weight class
logits = 3 * torch.randn(7, 5, generator=g)
targets = torch.tensor([0, 4, IGNORE, 2, 3, IGNORE, 1])
weight = torch.rand(5, generator=g) * 2 + 0.1
weight[3] = 0.0
cases["small"] = (logits, targets, weight)

# wide: 18 classes, unbalanced, 'balanced' weights n / (C * count)
counts = torch.tensor([716, 268, 519, 297, 3671, 277, 724, 192, 231, 709, 991, 94, 139, 74,
                       9408, 147, 298, 72], dtype=torch.float64)
targets = torch.multinomial(counts / counts.sum(), 100, replacement=True, generator=g)
weight = counts.sum() / (len(counts) * counts)
cases["wide"] = (2 * torch.randn(100, 18, generator=g), targets, weight)

fx = {}
for name, (logits, targets, weight) in cases.items():
    fx[name + ".logits"] = logits
    fx[name + ".targets"] = targets
    fx[name + ".weight"] = weight
    fx[name + ".ignore"] = torch.tensor(float(IGNORE))
    dy = torch.randn(len(targets), generator=g)
    fx[name + ".dy"] = dy
    for red in ("mean", "sum", "none"):
        x = logits.clone().requires_grad_(True)
        y = F.cross_entropy(x, targets, weight=weight, ignore_index=IGNORE, reduction=red)
        (y * dy).sum().backward() if red == "none" else y.backward()
        fx["%s.%s" % (name, red)] = y.detach()
        fx["%s.%s.grad" % (name, red)] = x.grad
write_fixture(OUT, fx)
print("wrote", OUT)
