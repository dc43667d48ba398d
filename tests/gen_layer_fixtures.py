#!/usr/bin/python3
"""Write the PyTorch parity fixtures of the sequence layers.

    /usr/bin/python3 tests/gen_layer_fixtures.py [outdir]   (default tests/fixtures)

Needs PyTorch (Debian's python3-torch); the committed fixtures make CI
independent of it. Everything runs in float64 with dropout 0. Each fixture
tests/fixtures/layer_<name>.bin (format: tests/fixture_io.py) holds:

  meta.*          scalars describing the configuration (see META below)
  inputs          x, h0 / c0 (when given), lengths (when given), for cells
                  x, h, c; for Embedding ids
  parameters      under their PyTorch state_dict names (weight_ih_l0,
                  bias_hh_l1_reverse, weight, bias, ...)
  outputs         output, h_n, c_n (layers); h_out, c_out (cells); y
  loss weights    wo, wh, wc (wy): the scalar loss is
                  L = sum(output * wo) + sum(h_n * wh) [+ sum(c_n * wc)]
                  (cells: sum(h_out * wh) [+ sum(c_out * wc)];
                  Linear and Embedding: sum(y * wy))
  gradients       grad.<name> of L for every parameter and every float input

Sequence layers are batch-first: x [B, T, I], output [B, T, D*H],
h_n/c_n [L*D, B, H]. Variable lengths go through pack_padded_sequence
(enforce_sorted=False) and pad_packed_sequence(total_length=T), so outputs
past a sequence's end are zero and h_n is each sequence's own last state.
"""

import os
import sys
import zlib

import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixture_io import write_fixture  # noqa: E402

# meta.kind values
KIND_SEQ, KIND_CELL, KIND_LINEAR, KIND_EMBEDDING = 0, 1, 2, 3
# tn_cell enum values (include/tensor/nn.h)
CELLS = {"rnn_tanh": 0, "rnn_relu": 1, "lstm": 2, "gru": 3}

torch.set_default_dtype(torch.float64)


def seed_for(name):
    """A fixed seed per fixture, so adding a configuration changes no other."""
    torch.manual_seed(zlib.crc32(name.encode()))


def make_seq_module(cell, I, H, L, bi):
    kw = dict(input_size=I, hidden_size=H, num_layers=L, bidirectional=bi, batch_first=True,
              dropout=0.0, bias=True)
    if cell == "lstm":
        return torch.nn.LSTM(**kw)
    if cell == "gru":
        return torch.nn.GRU(**kw)
    return torch.nn.RNN(nonlinearity=cell[4:], **kw)


def run_seq_module(m, x, state, lengths):
    """(output, state) of the batch-first module m over x [B, T, I]; with
    lengths through pack_padded_sequence (enforce_sorted=False) and
    pad_packed_sequence(total_length=T)."""
    if lengths is None:
        return m(x, state)
    packed = pack_padded_sequence(x, torch.tensor(lengths), batch_first=True,
                                  enforce_sorted=False)
    out_p, st = m(packed, state)
    output, _ = pad_packed_sequence(out_p, batch_first=True, total_length=x.shape[1])
    return output, st


def seq_fixture(name, cell, I, H, L=1, bi=False, T=5, B=3, h0=False, lengths=None):
    seed_for(name)
    D = 2 if bi else 1
    m = make_seq_module(cell, I, H, L, bi).double()
    x = torch.randn(B, T, I, requires_grad=True)
    hx = torch.randn(L * D, B, H).mul(0.5).requires_grad_() if h0 else None
    cx = torch.randn(L * D, B, H).mul(0.5).requires_grad_() if h0 and cell == "lstm" else None
    state = None
    if h0:
        state = (hx, cx) if cell == "lstm" else hx
    if lengths is not None:
        assert len(lengths) == B and max(lengths) == T
    output, st = run_seq_module(m, x, state, lengths)
    h_n, c_n = st if cell == "lstm" else (st, None)

    meta = {"meta.kind": KIND_SEQ, "meta.cell": CELLS[cell], "meta.input_size": I,
            "meta.hidden": H, "meta.layers": L, "meta.bidirectional": int(bi),
            "meta.batch": B, "meta.seq_len": T}
    return seq_record(meta, x, hx, cx, lengths, list(m.named_parameters()), output, h_n, c_n)


def seq_record(meta, x, hx, cx, lengths, params, output, h_n, c_n):
    """The fixture dict of a sequence layer's run: draws the loss weights,
    runs backward of L and lists meta, inputs, params ((name, tensor)
    pairs), outputs, loss weights and gradients in the fixtures' order."""
    wo = torch.randn(output.shape)
    wh = torch.randn(h_n.shape)
    wc = torch.randn(c_n.shape) if c_n is not None else None
    loss = (output * wo).sum() + (h_n * wh).sum()
    if c_n is not None:
        loss = loss + (c_n * wc).sum()
    loss.backward()

    d = dict(meta)
    d["x"] = x
    if hx is not None:
        d["h0"] = hx
    if cx is not None:
        d["c0"] = cx
    if lengths is not None:
        d["lengths"] = torch.tensor(lengths, dtype=torch.float64)
    for pname, p in params:
        d[pname] = p
    d.update({"output": output, "h_n": h_n})
    if c_n is not None:
        d["c_n"] = c_n
    d.update({"wo": wo, "wh": wh})
    if wc is not None:
        d["wc"] = wc
    d["grad.x"] = x.grad
    if hx is not None:
        d["grad.h0"] = hx.grad
    if cx is not None:
        d["grad.c0"] = cx.grad
    for pname, p in params:
        d["grad." + pname] = p.grad
    return d


def cell_fixture(name, cell, I, H, B=3):
    seed_for(name)
    if cell == "lstm":
        m = torch.nn.LSTMCell(I, H)
    elif cell == "gru":
        m = torch.nn.GRUCell(I, H)
    else:
        m = torch.nn.RNNCell(I, H, nonlinearity=cell[4:])
    m = m.double()
    x = torch.randn(B, I, requires_grad=True)
    h = torch.randn(B, H).mul(0.5).requires_grad_()
    c = torch.randn(B, H).mul(0.5).requires_grad_() if cell == "lstm" else None
    if cell == "lstm":
        h_out, c_out = m(x, (h, c))
    else:
        h_out, c_out = m(x, h), None
    wh = torch.randn(h_out.shape)
    wc = torch.randn(c_out.shape) if c_out is not None else None
    loss = (h_out * wh).sum()
    if c_out is not None:
        loss = loss + (c_out * wc).sum()
    loss.backward()
    d = {"meta.kind": KIND_CELL, "meta.cell": CELLS[cell], "meta.input_size": I,
         "meta.hidden": H, "meta.batch": B, "x": x, "h": h}
    if c is not None:
        d["c"] = c
    for pname, p in m.named_parameters():
        d[pname] = p
    d["h_out"] = h_out
    if c_out is not None:
        d["c_out"] = c_out
    d["wh"] = wh
    if wc is not None:
        d["wc"] = wc
    d["grad.x"] = x.grad
    d["grad.h"] = h.grad
    if c is not None:
        d["grad.c"] = c.grad
    for pname, p in m.named_parameters():
        d["grad." + pname] = p.grad
    return d


def linear_fixture(name, n_in, n_out, bias, xshape):
    seed_for(name)
    m = torch.nn.Linear(n_in, n_out, bias=bias).double()
    x = torch.randn(*xshape, n_in, requires_grad=True)
    y = m(x)
    wy = torch.randn(y.shape)
    (y * wy).sum().backward()
    d = {"meta.kind": KIND_LINEAR, "meta.in": n_in, "meta.out": n_out, "meta.bias": int(bias),
         "x": x}
    for pname, p in m.named_parameters():
        d[pname] = p
    d.update({"y": y, "wy": wy, "grad.x": x.grad})
    for pname, p in m.named_parameters():
        d["grad." + pname] = p.grad
    return d


def embedding_fixture(name, num, dim, padding_idx, ids):
    seed_for(name)
    m = torch.nn.Embedding(num, dim, padding_idx=padding_idx).double()
    ids = torch.tensor(ids)
    y = m(ids)
    wy = torch.randn(y.shape)
    (y * wy).sum().backward()
    assert padding_idx in ids.flatten().tolist()
    assert torch.all(m.weight.grad[padding_idx] == 0)
    return {"meta.kind": KIND_EMBEDDING, "meta.num": num, "meta.dim": dim,
            "meta.padding_idx": padding_idx, "ids": ids.double(), "weight": m.weight, "y": y,
            "wy": wy, "grad.weight": m.weight.grad}


def all_fixtures():
    """name -> fixture dict, the whole matrix of issue 3."""
    fx = {}
    for cell in CELLS:
        c = cell
        fx[c + "_l1"] = seq_fixture(c + "_l1", c, I=3, H=4)
        fx[c + "_l2"] = seq_fixture(c + "_l2", c, I=4, H=5, L=2)
        fx[c + "_bi"] = seq_fixture(c + "_bi", c, I=3, H=5, bi=True)
        fx[c + "_l2bi_h0"] = seq_fixture(c + "_l2bi_h0", c, I=4, H=4, L=2, bi=True, h0=True)
        fx[c + "_len"] = seq_fixture(c + "_len", c, I=3, H=4, lengths=[5, 2, 4])
        fx[c + "_bi_len"] = seq_fixture(c + "_bi_len", c, I=4, H=5, bi=True, lengths=[5, 2, 4])
        fx[c + "_l2bi_h0_len"] = seq_fixture(c + "_l2bi_h0_len", c, I=3, H=4, L=2, bi=True,
                                             h0=True, lengths=[3, 5, 1])
        fx[c + "_t1"] = seq_fixture(c + "_t1", c, I=3, H=4, bi=True, T=1)
        fx[c + "_b1"] = seq_fixture(c + "_b1", c, I=3, H=4, L=2, B=1, h0=True)
        fx[c + "_b7"] = seq_fixture(c + "_b7", c, I=4, H=4, B=7)
        fx[c + "_b7_bi_len"] = seq_fixture(c + "_b7_bi_len", c, I=3, H=4, bi=True, B=7,
                                           lengths=[5, 1, 3, 5, 2, 4, 5])
        fx[c + "_t50"] = seq_fixture(c + "_t50", c, I=3, H=4, T=50, B=2)
        fx["cell_" + c] = cell_fixture("cell_" + c, c, I=3, H=4)
    fx["linear_bias"] = linear_fixture("linear_bias", 4, 3, True, (2, 5))
    fx["linear_nobias"] = linear_fixture("linear_nobias", 3, 5, False, (6,))
    fx["embedding_pad"] = embedding_fixture("embedding_pad", 7, 4, 2,
                                            [[1, 2, 5, 2], [0, 6, 2, 3], [5, 5, 1, 4]])
    return fx


def write_fixtures(fixtures, pattern):
    """Write each fixture dict (name -> dict) to pattern % name in the
    directory sys.argv[1] (default tests/fixtures), printing the sizes."""
    here = os.path.dirname(os.path.abspath(__file__))
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "fixtures")
    os.makedirs(outdir, exist_ok=True)
    total = 0
    for name, d in fixtures.items():
        path = os.path.join(outdir, pattern % name)
        write_fixture(path, d)
        size = os.path.getsize(path)
        total += size
        big = max(float(v.detach().abs().max()) if hasattr(v, "detach") else abs(v)
                  for k, v in d.items() if not k.startswith("meta."))
        print("%-38s %6d bytes  max |value| %.3g" % (os.path.basename(path), size, big))
    print("total %d bytes" % total)


def main():
    write_fixtures(all_fixtures(), "layer_%s.bin")


if __name__ == "__main__":
    main()
