#!/usr/bin/env python3
"""The small CNN of bench/conv_bench.c in PyTorch, then conv_bench itself,
in one run: three 3x3 convolutions (padding 1) with ReLUs, 3 -> 32 -> 64
-> 64 channels, on [B, 3, 32, 32] float32 images, loss = mean of the last
activations, forward + backward (weight and bias gradients).

    /usr/bin/python3 bench/torch_conv.py [--batch 64] [--steps 10]
        [--threads 2] [--ours build/bench/conv_bench] [--layers]

Prints the median ms per step, images/s and GFLOP/s of each (the same FLOP
count as conv_bench; ours also as a percentage of the SGEMM peak measured
in its process), and the ratio of the two rates. Both get the same thread count (torch.set_num_threads
and TN_NUM_THREADS). With --layers, each convolution alone instead (no
ReLU, loss the sum of its output; `conv_bench layers` for ours): the best
milliseconds of its forward and what the weight/bias gradients and then
the input gradient add, with their GFLOP/s. Numbers from a loaded machine are not results: BLIS
and OpenMP threads spin at barriers (docs/design.md).
"""
import argparse
import os
import statistics
import subprocess
import time

import torch
import torch.nn as nn

p = argparse.ArgumentParser()
p.add_argument("--batch", type=int, default=64)
p.add_argument("--steps", type=int, default=10)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--ours", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                              "build", "bench", "conv_bench"))
p.add_argument("--layers", action="store_true", help="each convolution's products on their own")
a = p.parse_args()

torch.set_num_threads(a.threads)
torch.manual_seed(1)
chans = [3, 32, 64, 64]
env = dict(os.environ, TN_NUM_THREADS=str(a.threads))

if a.layers:
    for cin, cout in zip(chans, chans[1:]):
        conv = nn.Conv2d(cin, cout, 3, padding=1)
        x = torch.rand(a.batch, cin, 32, 32) * 2 - 1
        gf = 2.0 * a.batch * cout * cin * 9 * 32 * 32 / 1e6
        ms = []
        for m in range(3):  # forward; + dW, db; + dx (each with the sum, as ours)
            x.requires_grad_(m == 2)
            for q in conv.parameters():
                q.requires_grad_(m >= 1)
            best = 1e30
            for s in range(-1, a.steps):
                conv.zero_grad()
                x.grad = None
                t0 = time.perf_counter()
                if m == 0:
                    conv(x).sum()  # nothing requires grad: the forward alone, as ours
                else:
                    conv(x).sum().backward()
                if s >= 0:
                    best = min(best, (time.perf_counter() - t0) * 1e3)
            ms.append(best)
        print("pytorch: conv %d->%d: forward %.2f ms (%.0f GFLOP/s), +dW %.2f ms (%.0f), "
              "+dx %.2f ms (%.0f)" % (cin, cout, ms[0], gf / ms[0], ms[1] - ms[0],
                                      gf / (ms[1] - ms[0]), ms[2] - ms[1], gf / (ms[2] - ms[1])))
    if os.path.exists(a.ours):
        subprocess.run([a.ours, "layers", str(a.batch), str(a.steps)], env=env, check=True)
    raise SystemExit(0)

layers = []
for cin, cout in zip(chans, chans[1:]):
    layers += [nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU()]
model = nn.Sequential(*layers)
x = torch.rand(a.batch, 3, 32, 32) * 2 - 1
flops = sum(2.0 * a.batch * cout * cin * 9 * 32 * 32 * (2 if i == 0 else 3)
            for i, (cin, cout) in enumerate(zip(chans, chans[1:])))

times = []
for s in range(-1, a.steps):
    model.zero_grad()
    t0 = time.perf_counter()
    model(x).mean().backward()
    if s >= 0:
        times.append((time.perf_counter() - t0) * 1e3)
med = statistics.median(times)
print("pytorch: B %d, %d threads: %.1f ms/step, %.0f images/s, %.1f GFLOP/s (torch %s)"
      % (a.batch, a.threads, med, a.batch * 1e3 / med, flops / med / 1e6, torch.__version__))

if os.path.exists(a.ours):
    out = subprocess.run([a.ours, str(a.batch), str(a.steps)], env=env, check=True,
                         capture_output=True, text=True).stdout
    print(out, end="")
    ours_ms = float(out.split("threads: ")[1].split(" ms/step")[0])
    print("ours / pytorch: %.2fx the images/s" % (med / ours_ms))
else:
    print("ours: %s not found (build the bench target)" % a.ours)
