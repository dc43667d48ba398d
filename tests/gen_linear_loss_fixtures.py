#!/usr/bin/env python3
"""Write tests/fixtures/linear_loss.bin: PyTorch reference values for the
fused output layer + cross-entropy (tn_linear_cross_entropy), above all
label smoothing with class weights, which no other op of the library has;
read by tests/test_linear_loss.c.

Needs PyTorch (Debian's python3-torch wrote the committed file); CI only
reads the committed file. Run from anywhere:

    /usr/bin/python3 tests/gen_linear_loss_fixtures.py

Everything is float64 (TNFX format, see tests/fixture_io.py). Cases <c>:
  "wls"  N 50, H 16, V 37: bias, class weights (one of them 0), eight rows
         ignored with ignore_index -100, label_smoothing 0.1;
  "cls"  N 40, H 8, V 11: no bias, no class weights, ignore_index 3 (a
         class), label_smoothing 0.25;
  "full" N 9, H 5, V 6: bias, class weights, label_smoothing 1.0.
Tensors:
  <c>.h [N, H], <c>.weight [V, H], <c>.bias [V] (absent: no bias),
  <c>.targets [N], <c>.class_weight [V] (absent: none), <c>.ignore [],
  <c>.smoothing [], <c>.dy [N]
  <c>.<red>            F.cross_entropy(h @ weight.T + bias, targets,
                       weight=class_weight, ignore_index, label_smoothing,
                       reduction=red), red in mean, sum, none
  <c>.<red>.dh, .dweight, .dbias   gradients of the loss (mean, sum) or
                       of sum(dy * loss) (none)
"""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixture_io import write_fixture  # noqa: E402

torch.set_default_dtype(torch.float64)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "linear_loss.bin")

g = torch.Generator().manual_seed(22)


def case(n, hd, v, bias, cw, ignore, smoothing, ignored_rows):
    h = torch.randn(n, hd, generator=g)
    w = torch.randn(v, hd, generator=g) / hd ** 0.5 * 2
    b = torch.randn(v, generator=g) if bias else None
    t = torch.randint(0, v, (n,), generator=g)
    for i in ignored_rows:
        t[i] = ignore
    c = torch.rand(v, generator=g) * 2 + 0.1 if cw else None
    if c is not None:
        c[1] = 0.0
    return dict(h=h, weight=w, bias=b, targets=t, class_weight=c, ignore=ignore,
                smoothing=smoothing)


cases = {
    "wls": case(50, 16, 37, True, True, -100, 0.1, range(3, 50, 6)),
    "cls": case(40, 8, 11, False, False, 3, 0.25, []),
    "full": case(9, 5, 6, True, True, -100, 1.0, [4]),
}

fx = {}
for name, c in cases.items():
    for key in ("h", "weight", "bias", "targets", "class_weight"):
        if c[key] is not None:
            fx["%s.%s" % (name, key)] = c[key]
    fx[name + ".ignore"] = torch.tensor(float(c["ignore"]))
    fx[name + ".smoothing"] = torch.tensor(c["smoothing"])
    dy = torch.randn(len(c["targets"]), generator=g)
    fx[name + ".dy"] = dy
    for red in ("mean", "sum", "none"):
        h = c["h"].clone().requires_grad_(True)
        w = c["weight"].clone().requires_grad_(True)
        b = c["bias"].clone().requires_grad_(True) if c["bias"] is not None else None
        logits = F.linear(h, w, b)
        y = F.cross_entropy(logits, c["targets"], weight=c["class_weight"],
                            ignore_index=c["ignore"], label_smoothing=c["smoothing"],
                            reduction=red)
        (y * dy).sum().backward() if red == "none" else y.backward()
        fx["%s.%s" % (name, red)] = y.detach()
        fx["%s.%s.dh" % (name, red)] = h.grad
        fx["%s.%s.dweight" % (name, red)] = w.grad
        if b is not None:
            fx["%s.%s.dbias" % (name, red)] = b.grad
write_fixture(OUT, fx)
print("wrote", OUT)
