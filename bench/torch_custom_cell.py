#!/usr/bin/env python3
"""custom_cell's composed cell (peephole LSTM or MGU) trained in PyTorch,
timed as `custom_cell bench` times ours:

    ids [B, T] over V = 65 -> Embedding(65, E) -> cell (H) -> Linear(H, 65)
    -> cross-entropy (mean) -> backward -> clip_grad_norm_(1.0) -> Adam(1e-3)

float32, fixed random ids, every step from a zero state; --warmup untimed
steps, then as many as fit in --seconds. The cell's time loop runs either
eagerly (--mode eager) or compiled by torch.jit.script (--mode script; the
same function, tests/torch_custom_cell.py's peephole_seq / mgu_seq). The
last stdout line is key=value pairs as bench/torch_bench.py prints them.

    /usr/bin/python3 bench/torch_custom_cell.py --hidden 128 --mode script

For PyTorch's BLIS at its best run with BLIS_ARCH_TYPE (the blis_arch=
that custom_cell bench prints) and BLIS_NUM_THREADS=N, as bench/compare does.
"""
import argparse
import importlib.util
import os
import sys

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from torch_bench import sgemm_peak, time_steps  # noqa: E402

# The model of tests/torch_custom_cell.py (a file of the same name as this
# one, so loaded by path).
_spec = importlib.util.spec_from_file_location(
    "custom_cell_model", os.path.join(os.path.dirname(HERE), "tests", "torch_custom_cell.py"))
_cells = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_cells)
GATES, Model = _cells.GATES, _cells.Model

V = 65


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cell", choices=sorted(GATES), default="peephole")
    ap.add_argument("--mode", choices=["eager", "script"], default="eager")
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--embed", type=int, default=64)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--warmup", type=int,
                    help="untimed steps first (default 3; 6 with --mode script, whose second "
                         "step compiles the loop: steps 2-4 were seen 2-5 times slower)")
    a = ap.parse_args()
    if a.warmup is None:
        a.warmup = 6 if a.mode == "script" else 3
    if min(a.hidden, a.embed, a.batch, a.seq, a.threads) < 1 or a.seconds < 0 or a.warmup < 0:
        ap.error("sizes and --threads must be >= 1, --seconds and --warmup >= 0")
    B, T, H, E = a.batch, a.seq, a.hidden, a.embed
    name = f"{a.cell}-h{H}-b{B}-t{T}"

    torch.set_num_threads(a.threads)
    torch.manual_seed(1234)
    model = Model(a.cell, V, E, H, script=a.mode == "script")
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(1234)
    ids = torch.randint(0, V, (T, B), generator=g)  # time-major, as the model reads them
    targets = torch.randint(0, V, (T * B,), generator=g)
    zero = torch.zeros(B, H)
    print(f"torch_custom_cell: {name} ({a.mode}): E={E} V={V} "
          f"params={sum(p.numel() for p in model.parameters())}; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads", file=sys.stderr)

    def step():
        opt.zero_grad(set_to_none=False)
        logits, _, _ = model(ids, zero, zero)
        loss = F.cross_entropy(logits, targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss.item()

    el, steps, rss_mb = time_steps("torch_custom_cell", step, a.warmup, a.seconds)
    sec = el / steps
    # Counted as custom_cell bench and rnn_bench count them.
    flops = 6 * GATES[a.cell] * B * T * H * (E + H) + 6 * B * T * H * V
    gflops = flops / sec / 1e9
    peak = sgemm_peak()
    print(f"config={name} mode={a.mode} threads={a.threads} ms_per_step={1e3 * sec:.3f} "
          f"tokens_per_s={B * T / sec:.0f} gflops={gflops:.2f} sgemm_peak_gflops={peak:.1f} "
          f"peak_pct={100 * gflops / peak:.1f} rss_mb={rss_mb:.1f} steps={steps} "
          f"cell={a.cell} H={H} B={B} T={T} L=1", flush=True)


if __name__ == "__main__":
    main()
