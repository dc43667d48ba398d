#!/usr/bin/env python3
"""Write tests/fixtures/conv.bin: PyTorch reference values for tn_conv2d,
tn_conv1d and the pools, read by tests/test_conv.c.

Needs PyTorch (1.13 from Debian wrote the committed file); CI only reads the
committed file. Run from anywhere:

    /usr/bin/python3 tests/gen_conv_fixtures.py

Everything is stored as float64 (TNFX format, see tests/fixture_io.py). The
inputs are drawn in float32 and widened, so they are exact in both dtypes
the test runs; the references are PyTorch's float64 results from them. For
each case <c> (see CONV and POOL below), with y the op's output and the
gradients those of the weighted sum sum(dy * y):

  <c>.x, <c>.dy, <c>.y, <c>.dx
  <c>.weight, <c>.dweight    conv cases
  <c>.bias, <c>.dbias        conv cases with a bias
  <c>.geom                   conv: [stride_h, stride_w, padding_h, padding_w,
                             dilation_h, dilation_w, groups] (1-D: the w ones;
                             the h ones 1, 0, 1)
                             pool: [kernel, stride, padding, count_include_pad]
                             (adaptive: [out_h, out_w])

The generator also prints how far PyTorch's own float32 results are from
its float64 ones, the scale behind test_conv's float32 tolerance.
"""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixture_io import write_fixture  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "conv.bin")

g = torch.Generator().manual_seed(2026)


def rand(*shape):
    """Normal values drawn in float32, returned as float64 (exact)."""
    return torch.randn(*shape, generator=g, dtype=torch.float32).double()


# name: (x shape, weight shape, bias?, stride, padding, dilation, groups);
# 3-D x is conv1d (stride, padding, dilation are ints then)
CONV = {
    "basic": ((2, 3, 8, 8), (4, 3, 3, 3), True, (1, 1), (0, 0), (1, 1), 1),
    "s2p1": ((2, 4, 9, 7), (6, 4, 3, 3), True, (2, 2), (1, 1), (1, 1), 1),
    "dilated": ((1, 3, 10, 9), (4, 3, 3, 2), True, (1, 2), (2, 1), (2, 3), 1),
    "groups": ((2, 4, 6, 6), (6, 2, 3, 3), True, (1, 1), (1, 1), (1, 1), 2),
    "depthwise": ((2, 4, 7, 7), (4, 1, 3, 3), False, (1, 1), (1, 1), (1, 1), 4),
    "k1": ((2, 5, 6, 4), (3, 5, 1, 1), True, (1, 1), (0, 0), (1, 1), 1),
    "k1_s2": ((2, 5, 7, 6), (3, 5, 1, 1), True, (2, 2), (0, 0), (1, 1), 1),
    "nonsquare": ((3, 2, 5, 11), (5, 2, 2, 4), True, (2, 1), (0, 2), (1, 1), 1),
    "wide": ((2, 8, 8, 8), (16, 8, 3, 3), True, (1, 1), (1, 1), (1, 1), 1),
    "conv1d": ((2, 4, 11), (6, 2, 3), True, 2, 1, 2, 2),
    "conv1d_k1": ((3, 3, 5), (2, 3, 1), False, 1, 0, 1, 1),
}

# name: (kind, x shape, args); "ties" draws small integers (many equal maxima)
POOL = {
    "max_k2": ("max", (2, 3, 8, 7), (2, 2, 0)),
    "max_k3s2p1": ("max", (2, 3, 9, 8), (3, 2, 1)),
    "max_ties": ("max", (2, 2, 6, 6), (3, 1, 1)),
    "max1d": ("max", (2, 3, 10), (3, 2, 1)),
    "avg_incl": ("avg", (2, 3, 9, 8), (3, 2, 1, True)),
    "avg_excl": ("avg", (2, 3, 9, 8), (3, 2, 1, False)),
    "avg_k2s1": ("avg", (1, 3, 5, 6), (2, 1, 0, True)),
    "avg1d": ("avg", (2, 3, 10), (4, 3, 2, False)),
    "adaptive_32": ("adaptive", (2, 3, 7, 5), (3, 2)),
    "adaptive_11": ("adaptive", (2, 4, 5, 6), (1, 1)),
    "adaptive_up": ("adaptive", (1, 2, 3, 3), (5, 4)),
}

fx = {}
worst32 = 0.0


def run(fn, inputs, dy):
    """y and the gradients of sum(dy * y) of fn at inputs (a list, None kept)."""
    ts = [None if t is None else t.clone().requires_grad_(True) for t in inputs]
    y = fn(*ts)
    y.backward(dy)
    return y.detach(), [None if t is None else t.grad for t in ts]


def f32_gap(fn, inputs, dy, y64, grads64):
    """max |f32 - f64| / (1 + |f64|) of PyTorch's own float32 run."""
    y32, g32 = run(fn, [None if t is None else t.float() for t in inputs], dy.float())
    gap = ((y32.double() - y64).abs() / (1 + y64.abs())).max().item()
    for a, b in zip(g32, grads64):
        if a is not None:
            gap = max(gap, ((a.double() - b).abs() / (1 + b.abs())).max().item())
    return gap


for name, (xs, ws, has_b, st, pd, dl, groups) in CONV.items():
    x, w = rand(*xs), rand(*ws)
    b = rand(ws[0]) if has_b else None
    one_d = len(xs) == 3
    conv = F.conv1d if one_d else F.conv2d

    def fn(x_, w_, b_, conv=conv, st=st, pd=pd, dl=dl, groups=groups):
        return conv(x_, w_, b_, st, pd, dl, groups)

    y = fn(x, w, b)
    dy = rand(*y.shape)
    y, (dx, dw, db) = run(fn, [x, w, b], dy)
    gap = f32_gap(fn, [x, w, b], dy, y, [dx, dw, db])
    print("  %-12s PyTorch float32 vs float64: %.3g" % (name, gap))
    worst32 = max(worst32, gap)
    geom = [1, st, 0, pd, 1, dl, groups] if one_d else [st[0], st[1], pd[0], pd[1], dl[0], dl[1], groups]
    fx.update({name + ".x": x, name + ".weight": w, name + ".dy": dy, name + ".y": y,
               name + ".dx": dx, name + ".dweight": dw, name + ".geom": torch.tensor(geom)})
    if has_b:
        fx.update({name + ".bias": b, name + ".dbias": db})

for name, (kind, xs, args) in POOL.items():
    if name == "max_ties":
        x = torch.randint(0, 3, xs, generator=g).double()
    else:
        x = rand(*xs)
    one_d = len(xs) == 3
    if kind == "max":
        def fn(x_, a=args, one_d=one_d):
            return (F.max_pool1d if one_d else F.max_pool2d)(x_, a[0], a[1], a[2])
    elif kind == "avg":
        def fn(x_, a=args, one_d=one_d):
            return (F.avg_pool1d if one_d else F.avg_pool2d)(x_, a[0], a[1], a[2],
                                                             count_include_pad=a[3])
    else:
        def fn(x_, a=args):
            return F.adaptive_avg_pool2d(x_, a)
    y = fn(x)
    dy = rand(*y.shape)
    y, (dx,) = run(fn, [x], dy)
    worst32 = max(worst32, f32_gap(fn, [x], dy, y, [dx]))
    geom = [float(v) for v in args]
    fx.update({name + ".x": x, name + ".dy": dy, name + ".y": y, name + ".dx": dx,
               name + ".geom": torch.tensor(geom)})

write_fixture(OUT, fx)
print("wrote %s (%d tensors); PyTorch float32 vs float64: max rel %.3g" % (OUT, len(fx), worst32))
