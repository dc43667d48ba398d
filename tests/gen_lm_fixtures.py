"""PyTorch parity fixtures of the stream language model (tensor/lm.h),
read by tests/test_lm.c:

    /usr/bin/python3 tests/gen_lm_fixtures.py        # writes tests/fixtures/lm_*
    /usr/bin/python3 tests/gen_lm_fixtures.py --check FILE.safetensors
        # FILE written by tn_lm_save (model only): load_state_dict(strict=True)
        # into the equivalent nn.Module and print its logits for the tokens of
        # the first case (test_lm writes such a file where TN_LM_TORCH_OUT says)

For each case the module below (Embedding -> LSTM/GRU/RNN -> Linear, the
parameter names of the case) gets fixed weights from a seeded generator and
its state_dict is written with safetensors_io (both names of a tied weight,
as PyTorch's state_dict holds them) plus the lm.* metadata tn_lm_save
writes, to fixtures/lm_<case>.safetensors. fixtures/lm_<case>_expected.bin
(fixture_io) holds the token ids [B, T] and the module's logits [B, T, V]
in eval mode from a zero state, computed in float64 from the float32
weights (so the reference carries no float32 rounding of its own).
"""
import os
import struct
import sys

import numpy as np
import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixture_io import write_fixture  # noqa: E402
from safetensors_io import read_safetensors_f32, write_safetensors  # noqa: E402

FIX = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")

CELLS = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn_tanh": nn.RNN}


class LM(nn.Module):
    def __init__(self, cell, V, E, H, L, tie, embed_name, head_name):
        super().__init__()
        self.names = (embed_name, head_name)
        setattr(self, embed_name, nn.Embedding(V, E))
        self.rnn = CELLS[cell](E, H, L, batch_first=True)
        setattr(self, head_name, nn.Linear(H, V))
        if tie:
            getattr(self, head_name).weight = getattr(self, embed_name).weight

    def forward(self, ids):
        out, _ = self.rnn(getattr(self, self.names[0])(ids))
        return getattr(self, self.names[1])(out)


# name: cell, V, E, H, L, tie, embed_name, head_name, B, T
CASES = {
    "char_lstm": ("lstm", 13, 6, 8, 2, False, "embed", "head", 2, 9),
    "word_gru_tied": ("gru", 11, 7, 7, 2, True, "encoder", "decoder", 3, 6),
    "rnn_tanh": ("rnn_tanh", 5, 4, 6, 1, False, "embed", "head", 1, 12),
}


def meta(cell, V, E, H, L, tie, en, hn):
    return {"lm.format": "1", "lm.cell": cell, "lm.vocab": str(V), "lm.embed": str(E),
            "lm.hidden": str(H), "lm.layers": str(L), "lm.dropout": "0",
            "lm.io_dropout": "0", "lm.tie": "1" if tie else "0", "lm.embed_name": en,
            "lm.head_name": hn}


def build(case, seed):
    cell, V, E, H, L, tie, en, hn, B, T = CASES[case]
    torch.manual_seed(seed)
    m = LM(cell, V, E, H, L, tie, en, hn)
    with torch.no_grad():  # larger than the default init, so the states matter
        for p in m.parameters():
            p.uniform_(-0.6, 0.6)
    return m.eval()


def write(case, seed):
    cell, V, E, H, L, tie, en, hn, B, T = CASES[case]
    m = build(case, seed)
    tensors = []
    for name, t in m.state_dict().items():
        a = t.detach().numpy().astype("<f4")
        tensors.append((name, "F32", a.shape, a.tobytes()))
    write_safetensors(os.path.join(FIX, f"lm_{case}.safetensors"), tensors,
                      meta(cell, V, E, H, L, tie, en, hn))
    g = torch.Generator().manual_seed(seed + 1)
    ids = torch.randint(0, V, (B, T), generator=g)
    with torch.no_grad():
        logits = m.double()(ids)
    write_fixture(os.path.join(FIX, f"lm_{case}_expected.bin"),
                  {"ids": ids.double().numpy(), "logits": logits.numpy()})
    print(f"lm_{case}: {cell} V={V} E={E} H={H} L={L} tie={tie} {en}/{hn} ids [{B}, {T}]")


def read_safetensors(path):
    arrays, metadata = read_safetensors_f32(path)
    return {k: torch.from_numpy(a) for k, a in arrays.items()}, metadata


def check(path):
    sd, md = read_safetensors(path)
    V, E, H, L = (int(md["lm." + k]) for k in ("vocab", "embed", "hidden", "layers"))
    m = LM(md["lm.cell"], V, E, H, L, md["lm.tie"] == "1", md["lm.embed_name"],
           md["lm.head_name"])
    m.load_state_dict(sd, strict=True)
    ids = torch.arange(6).remainder(V).reshape(1, 6)
    with torch.no_grad():
        print(m.eval()(ids)[0, -1, :4].tolist())
    print(f"{path}: load_state_dict(strict=True) ok: {sorted(sd)}")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--check":
        check(sys.argv[2])
    else:
        for i, c in enumerate(CASES):
            write(c, 100 + i)
