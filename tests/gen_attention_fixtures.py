#!/usr/bin/python3
"""Write the PyTorch parity fixtures of the attention layers.

    /usr/bin/python3 tests/gen_attention_fixtures.py [outdir]   (default tests/fixtures)

Needs PyTorch (Debian's python3-torch); the committed fixtures make CI
independent of it. Everything runs in float64. Each fixture
tests/fixtures/attn_<kind>.bin (format: tests/fixture_io.py) holds

  meta.kind, meta.query_size, meta.key_size, meta.attn_size
  query [B, Hq], keys [B, S, Hk], lengths [B]
  the parameters under the module's state_dict names (below)
  context [B, Hk], weights [B, S]
  wc [B, Hk], ww [B, S]: the loss L = sum(context * wc) + sum(weights * ww)
  grad.<name> of L for every parameter, query and keys

The reference modules are the textbook score functions written with
nn.Linear, masked_fill(-inf) and softmax, as PyTorch users write them:
  bahdanau  v(tanh(key(k) + query(q)))      key: Linear(Hk, A), query:
            Linear(Hq, A, bias=False), v: Linear(A, 1, bias=False)
  luong     q . k
  general   q . linear(k)                    linear: Linear(Hk, Hq, bias=False)
"""

import os
import sys
import zlib

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixture_io import write_fixture  # noqa: E402
from torch_translate import Attention  # noqa: E402 (the library's scores)

torch.set_default_dtype(torch.float64)
KINDS = {"bahdanau": 0, "luong": 1, "general": 2}  # tn_attn_kind


def fixture(kind, outdir, B=3, S=5, Hq=4, Hk=6, A=7):
    torch.manual_seed(zlib.crc32(kind.encode()))
    if kind == "luong":
        Hq = Hk
    m = Attention(kind, Hq, Hk, A)
    q = torch.randn(B, Hq, requires_grad=True)
    k = torch.randn(B, S, Hk, requires_grad=True)
    lengths = torch.tensor([5, 2, 4])
    ctx, w = m(q, k, lengths)
    wc, ww = torch.randn(B, Hk), torch.randn(B, S)
    loss = (ctx * wc).sum() + (w * ww).sum()
    params = dict(m.named_parameters())
    grads = torch.autograd.grad(loss, [q, k] + list(params.values()))
    d = {"meta.kind": KINDS[kind], "meta.query_size": Hq, "meta.key_size": Hk,
         "meta.attn_size": A, "query": q, "keys": k, "lengths": lengths}
    d.update(params)
    d.update({"context": ctx, "weights": w, "wc": wc, "ww": ww,
              "grad.query": grads[0], "grad.keys": grads[1]})
    for name, g in zip(params, grads[2:]):
        d["grad." + name] = g
    path = os.path.join(outdir, f"attn_{kind}.bin")
    write_fixture(path, d)
    print("wrote", path)


if __name__ == "__main__":
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "fixtures")
    for kind in KINDS:
        fixture(kind, out)
