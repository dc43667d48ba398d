#!/usr/bin/env python3
"""The benchmark-contract training step (docs/design.md section 4) in PyTorch.

    ids [B, T] over V = 65 -> nn.Embedding(65, 64) -> nn.LSTM/GRU/RNN
    (hidden H, L layers, batch_first) -> nn.Linear(H, 65) -> F.cross_entropy
    (mean over B*T) -> backward -> clip_grad_norm_(1.0) -> Adam(lr 1e-3)

float32, fixed random ids (drawn once from a fixed seed), warm-up steps,
then as many steps as fit in --seconds. Same options and the same last line
as bench/rnn_bench:

    config=... threads=... ms_per_step=... tokens_per_s=... gflops=...
    sgemm_peak_gflops=... peak_pct=... rss_mb=...

The SGEMM peak is torch.mm of two 1024x1024 float32 matrices (best of a
few), measured after the training loop; the RSS is ru_maxrss of the process
read before it. For PyTorch at its best on Debian (BLIS through
libblas.so.3), run with BLIS_ARCH_TYPE=0 BLIS_NUM_THREADS=N in the
environment (bench/compare does).
"""
import argparse
import resource
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

V, E = 65, 64
NAMED = {
    "lstm-s": ("lstm", 128, 32, 64, 1),
    "lstm-m": ("lstm", 512, 64, 128, 2),
    "gru-s": ("gru", 256, 32, 64, 1),
    "rnn-s": ("rnn", 128, 32, 64, 1),
}


class Model(nn.Module):
    def __init__(self, cell, hidden, layers):
        super().__init__()
        self.embed = nn.Embedding(V, E)
        kind = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[cell]
        self.rnn = kind(E, hidden, num_layers=layers, batch_first=True)
        self.head = nn.Linear(hidden, V)

    def forward(self, ids):
        out, _ = self.rnn(self.embed(ids))
        return self.head(out).reshape(-1, V)


def sgemm_peak(reps=5):
    n = 1024
    a = torch.rand(n, n, dtype=torch.float32)
    b = torch.rand(n, n, dtype=torch.float32)
    best = float("inf")
    for r in range(reps + 1):
        t0 = time.perf_counter()
        torch.mm(a, b)
        dt = time.perf_counter() - t0
        if r > 0:
            best = min(best, dt)
    return 2.0 * n ** 3 / best / 1e9


def time_steps(prog, step, warmup, seconds):
    """warmup untimed calls of step() (a training step returning its loss),
    then as many as fit in seconds (at least 2). Prints the first and last
    loss on stderr; returns (elapsed seconds, timed steps, peak RSS in MB)."""
    first = loss = float("nan")
    for w in range(warmup):
        loss = step()
        first = loss if w == 0 else first
    steps = 0
    t0 = time.perf_counter()
    while True:
        loss = step()
        steps += 1
        el = time.perf_counter() - t0
        if el >= seconds and steps >= 2:
            break
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(f"{prog}: loss {first:.4f} (first warm-up step) -> {loss:.4f} after "
          f"{warmup + steps} steps", file=sys.stderr)
    return el, steps, rss_mb


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", choices=sorted(NAMED), default="lstm-s")
    ap.add_argument("--cell", choices=["lstm", "gru", "rnn"])
    ap.add_argument("--hidden", type=int)
    ap.add_argument("--batch", type=int)
    ap.add_argument("--seq", type=int)
    ap.add_argument("--layers", type=int)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--warmup", type=int, default=3)
    a = ap.parse_args()

    cell, H, B, T, L = NAMED[a.config]
    given = (a.cell, a.hidden, a.batch, a.seq, a.layers)
    base = (cell, H, B, T, L)
    custom = any(g is not None and g != d for g, d in zip(given, base))
    cell, H, B, T, L = (g if g is not None else d for g, d in zip(given, base))
    name = f"{cell}-h{H}-b{B}-t{T}-l{L}" if custom else a.config

    torch.set_num_threads(a.threads)
    torch.manual_seed(1234)
    model = Model(cell, H, L)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(1234)
    ids = torch.randint(0, V, (B, T), generator=g)
    targets = torch.randint(0, V, (B * T,), generator=g)
    print(f"torch_bench: {name}: {cell} H={H} B={B} T={T} L={L} E={E} V={V} "
          f"params={sum(p.numel() for p in model.parameters())}; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads", file=sys.stderr)

    def step():
        opt.zero_grad(set_to_none=False)
        loss = F.cross_entropy(model(ids), targets)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss.item()

    el, steps, rss_mb = time_steps("torch_bench", step, a.warmup, a.seconds)

    sec = el / steps
    per = {"lstm": 24, "gru": 18, "rnn": 6}[cell]
    flops = sum(per * B * H * ((E if l == 0 else H) + H) * T for l in range(L))
    flops += 6 * B * H * V * T
    gflops = flops / sec / 1e9
    peak = sgemm_peak()
    print(f"config={name} threads={a.threads} ms_per_step={1e3 * sec:.3f} "
          f"tokens_per_s={B * T / sec:.0f} gflops={gflops:.2f} sgemm_peak_gflops={peak:.1f} "
          f"peak_pct={100 * gflops / peak:.1f} rss_mb={rss_mb:.1f} steps={steps} "
          f"cell={cell} H={H} B={B} T={T} L={L}", flush=True)


if __name__ == "__main__":
    main()
