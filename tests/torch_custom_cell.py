#!/usr/bin/env python3
"""examples/custom_cell's model in PyTorch: the peephole LSTM (Gers &
Schmidhuber) and the minimal gated unit (Zhou et al. 2016), neither in
torch.nn, written from torch ops the way custom_cell composes them (the
input projections of all steps in one product, one recurrent product per
step), and trained the same way: Embedding -> cell -> Linear, cross-entropy
(mean), clip_grad_norm_(1.0), Adam; windows of truncated BPTT over B streams
of the first 90% of the text (char_rnn's layout, examples/common/lm_model.c's
lm_window), the state carried and detached between windows.

    /usr/bin/python3 tests/torch_custom_cell.py check   [--bin build/examples/custom_cell]
    /usr/bin/python3 tests/torch_custom_cell.py fixture [--bin ...]

Both run custom_cell train with --steps 0 to get its initial weights (a
safetensors file, read here with numpy and json), train the same model from
them in PyTorch for STEPS steps, and print PyTorch's loss at every step.
`check` also runs custom_cell train for STEPS steps and prints both columns
and the largest difference (exit 1 beyond the tolerance of
tests/test_custom_cell.sh); `fixture` writes PyTorch's losses to
tests/fixtures/custom_cell_torch_losses.txt, which tests/test_custom_cell.sh
compares custom_cell's against without PyTorch (custom_cell's initial
weights come from its own seeded generator, the same on every machine).

bench/torch_custom_cell.py imports the cells from here.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
from typing import List, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURE = os.path.join(ROOT, "tests", "fixtures", "custom_cell_torch_losses.txt")
TEXT = os.path.join(ROOT, "tests", "fixtures", "char_rnn_torch_eval.txt")
# The run both sides make (tests/test_custom_cell.sh uses the same flags).
STEPS = 8
FLAGS = ["--data", TEXT, "--hidden", "16", "--embed", "8", "--batch", "4", "--seq", "16",
         "--lr", "0.01", "--seed", "5", "--eval-every", "0", "--threads", "1"]
GATES = {"peephole": 4, "mgu": 2}
TOLERANCE = 2e-5  # tests/test_custom_cell.sh says why


def peephole_seq(xp: Tensor, h: Tensor, c: Tensor, w_hh: Tensor, p_i: Tensor, p_f: Tensor,
                 p_o: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    """xp [T, B, 4H]: x W_ih^T + b of every step (gates i, f, g, o); h, c
    [B, H]. Returns the h of every step [T, B, H] and the final h, c."""
    u = w_hh.t()
    hs: List[Tensor] = []
    for t in range(xp.size(0)):
        z = torch.addmm(xp[t], h, u)
        zi, zf, zg, zo = z.chunk(4, 1)
        i = torch.sigmoid(zi + c * p_i)
        f = torch.sigmoid(zf + c * p_f)
        c = f * c + i * torch.tanh(zg)
        o = torch.sigmoid(zo + c * p_o)
        h = o * torch.tanh(c)
        hs.append(h)
    return torch.stack(hs), h, c


def mgu_seq(xp: Tensor, h: Tensor, w_hh: Tensor) -> Tuple[Tensor, Tensor]:
    """xp [T, B, 2H] (gates f, n); h [B, H]. (1 - f) h + f n as h + f (n - h)."""
    u_f, u_n = w_hh.t().chunk(2, 1)
    hs: List[Tensor] = []
    for t in range(xp.size(0)):
        x_f, x_n = xp[t].chunk(2, 1)
        f = torch.sigmoid(torch.addmm(x_f, h, u_f))
        n = torch.tanh(torch.addmm(x_n, f * h, u_n))
        h = h + f * (n - h)
        hs.append(h)
    return torch.stack(hs), h


class Model(torch.nn.Module):
    """custom_cell's parameters under its names (embed.weight, cell.weight_ih,
    cell.weight_hh, cell.bias, cell.weight_ci/cf/co, head.weight, head.bias),
    initialised as custom_cell does (uniform(+-1/sqrt(H)) for the cell)."""

    def __init__(self, cell, V, E, H, script=False):
        super().__init__()
        self.cell, self.H = cell, H
        G = GATES[cell]
        k = H ** -0.5
        self.embed = torch.nn.Embedding(V, E)
        self.weight_ih = torch.nn.Parameter(torch.empty(G * H, E).uniform_(-k, k))
        self.weight_hh = torch.nn.Parameter(torch.empty(G * H, H).uniform_(-k, k))
        self.bias = torch.nn.Parameter(torch.empty(G * H).uniform_(-k, k))
        if cell == "peephole":
            self.weight_ci = torch.nn.Parameter(torch.empty(H).uniform_(-k, k))
            self.weight_cf = torch.nn.Parameter(torch.empty(H).uniform_(-k, k))
            self.weight_co = torch.nn.Parameter(torch.empty(H).uniform_(-k, k))
        self.head = torch.nn.Linear(H, V)
        seq = peephole_seq if cell == "peephole" else mgu_seq
        self.seq = torch.jit.script(seq) if script else seq

    def named(self):
        """custom_cell's name -> parameter."""
        out = {"embed.weight": self.embed.weight, "head.weight": self.head.weight,
               "head.bias": self.head.bias}
        for n in ["weight_ih", "weight_hh", "bias", "weight_ci", "weight_cf", "weight_co"]:
            if hasattr(self, n):
                out["cell." + n] = getattr(self, n)
        return out

    def forward(self, ids, h, c):
        """ids [T, B] (time-major) -> logits [T*B, V], final h, c."""
        T, B = ids.shape
        x = self.embed(ids).reshape(T * B, -1)
        xp = torch.addmm(self.bias, x, self.weight_ih.t()).reshape(T, B, -1)
        if self.cell == "peephole":
            hs, h, c = self.seq(xp, h, c, self.weight_hh, self.weight_ci, self.weight_cf,
                                self.weight_co)
        else:
            hs, h = self.seq(xp, h, self.weight_hh)
        return self.head(hs.reshape(T * B, self.H)), h, c


def read_safetensors(path):
    """name -> float32 numpy array (the tensors of a safetensors file)."""
    with open(path, "rb") as f:
        buf = f.read()
    n = int.from_bytes(buf[:8], "little")
    header = json.loads(buf[8:8 + n])
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        assert e["dtype"] == "F32", (name, e["dtype"])
        a, b = e["data_offsets"]
        out[name] = np.frombuffer(buf[8 + n + a:8 + n + b], dtype="<f4").reshape(e["shape"])
    return out, header.get("__metadata__", {})


def torch_losses(cell, init_path, steps):
    """PyTorch's training losses of `steps` steps from custom_cell's initial
    weights in init_path, on FLAGS's text and sizes."""
    opt = {FLAGS[i]: FLAGS[i + 1] for i in range(0, len(FLAGS), 2)}
    B, T, H, E = (int(opt[k]) for k in ("--batch", "--seq", "--hidden", "--embed"))
    text = open(opt["--data"], encoding="utf-8").read()
    vocab = sorted(set(text))
    ids = np.array([vocab.index(ch) for ch in text], dtype=np.int64)
    tensors, meta = read_safetensors(init_path)
    assert meta["vocab"] == "".join(vocab), "vocabulary differs from custom_cell's"
    torch.manual_seed(0)
    m = Model(cell, len(vocab), E, H)
    with torch.no_grad():
        named = m.named()
        assert set(named) == set(tensors), (sorted(named), sorted(tensors))
        for k, p in named.items():
            p.copy_(torch.from_numpy(tensors[k].copy()))
    adam = torch.optim.Adam(m.parameters(), lr=float(opt["--lr"]))
    n_train = len(ids) * 9 // 10
    stream = n_train // B
    h = torch.zeros(B, H)
    c = torch.zeros(B, H)
    pos, losses = 0, []
    for _ in range(steps):
        if pos + T + 1 > stream:  # lm_window: start over from a zero state
            pos, h, c = 0, torch.zeros(B, H), torch.zeros(B, H)
        rows = np.stack([ids[b * stream + pos:b * stream + pos + T + 1] for b in range(B)])
        x = torch.from_numpy(rows[:, :T].T.copy())          # [T, B]
        y = torch.from_numpy(rows[:, 1:].T.copy()).reshape(-1)
        adam.zero_grad()
        logits, h, c = m(x, h, c)
        loss = F.cross_entropy(logits, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        adam.step()
        h, c = h.detach(), c.detach()
        pos += T
        losses.append(loss.item())
    return losses


def ours(binary, cell, steps, tmp):
    """custom_cell's initial weights (a file) and its losses of `steps` steps."""
    init = os.path.join(tmp, f"{cell}_init.safetensors")
    log = os.path.join(tmp, f"{cell}.csv")
    for n, extra in ((0, ["--checkpoint", init]), (steps, ["--loss-log", log])):
        subprocess.run([binary, "train", "--cell", cell, "--steps", str(n)] + FLAGS + extra,
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(log) as f:
        rows = [line.strip().split(",") for line in f][1:]
    return init, [float(r[1]) for r in rows]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("mode", choices=["check", "fixture"])
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "examples", "custom_cell"))
    a = ap.parse_args()
    torch.set_num_threads(1)
    lines, worst = [], 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for cell in GATES:
            init, mine = ours(a.bin, cell, STEPS, tmp)
            theirs = torch_losses(cell, init, STEPS)
            for s, (o, t) in enumerate(zip(mine, theirs), 1):
                worst = max(worst, abs(o - t))
                print(f"{cell} step {s}: custom_cell {o:.7f} torch {t:.7f} diff {o - t:+.2e}")
                lines.append(f"{cell} {s} {t:.9f}")
    print(f"largest difference {worst:.2e} (tolerance {TOLERANCE:g})")
    if a.mode == "fixture":
        with open(FIXTURE, "w") as f:
            f.write(f"# PyTorch {torch.__version__}, float32: the training loss of each step of\n"
                    f"# custom_cell's model from its initial weights (tests/torch_custom_cell.py"
                    f" fixture);\n# custom_cell train --cell CELL --steps {STEPS} "
                    + " ".join(FLAGS).replace(ROOT + "/tests/", "") + "\n")
            f.write("\n".join(lines) + "\n")
        print(f"wrote {FIXTURE}")
    return 0 if worst <= TOLERANCE else 1


if __name__ == "__main__":
    sys.exit(main())
