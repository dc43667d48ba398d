#!/usr/bin/python3
"""Write the PyTorch parity fixtures of tn_rnn's residual and LayerNorm options.

    /usr/bin/python3 tests/gen_resid_fixtures.py [outdir]   (default tests/fixtures)

Needs PyTorch (Debian's python3-torch); the committed fixtures make CI
independent of it. PyTorch has no such option, so the reference model is
built here from single-layer modules: layer l is an nn.LSTM / nn.GRU with
num_layers=1 (bidirectional as configured), then

    y_l = r_l(x_l) + x_l        for l >= 1 with residual
    y_l = LayerNorm_l(y_l)      with layer_norm (eps 1e-5, affine)
    x_{l+1} = y_l               (dropout 0)

and, with layer_norm and lengths, the last y is multiplied by the length
mask (tn_rnn keeps the output zero past each sequence's length; LayerNorm
would turn a padded zero row into its bias). h_n / c_n stack each layer's
final states ([L*D, B, H], layer-major as nn.LSTM's). Everything runs in
float64. The weights are drawn here (the modules' default init from a
per-fixture seed; LayerNorm weight 1 + 0.2 N(0,1) and bias 0.2 N(0,1), so
the affine part is not the identity) and stored under tn_rnn's names:
weight_ih_l{l}[_reverse] etc. and norm_l{l}.weight / norm_l{l}.bias.

The layer-norm LSTM (tn_rnn_opts.ln_gates, Ba et al. 2016) has no PyTorch
module either; ln_lstm_forward writes it out step by step with
F.layer_norm (eps 1e-5), per layer and direction:

    gates = LN_ih(x W_ih^T) + LN_hh(h W_hh^T) + b_ih + b_hh     (i, f, g, o)
    c' = s(f) c + s(i) tanh(g),   h' = s(o) tanh(LN_c(c'))

with lengths: a finished sequence keeps its state and outputs 0, and the
reverse direction reads each sequence backwards from its own last step.
Its gains and biases (1 + 0.2 N(0,1), 0.2 N(0,1)) are stored as
ln_ih_l{l}[_reverse].weight / .bias etc., meta.ln_gates = 1.

Each fixture tests/fixtures/layer_resid_<name>.bin (format:
tests/fixture_io.py) is read by tests/test_layer_parity.c like the plain
layer fixtures of tests/gen_layer_fixtures.py (same entries: meta.*, x,
h0/c0, lengths, parameters, output, h_n, c_n, loss weights wo/wh/wc and
grad.<name> of L = sum(output * wo) + sum(h_n * wh) [+ sum(c_n * wc)]),
plus meta.residual and meta.layer_norm.
"""

import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_layer_fixtures import (CELLS, KIND_SEQ, run_seq_module, seed_for,  # noqa: E402
                                seq_record, write_fixtures)

torch.set_default_dtype(torch.float64)


def build(cell, I, H, L, bi, layer_norm):
    """Per-layer single-layer modules and LayerNorms (or None)."""
    D = 2 if bi else 1
    mod = torch.nn.LSTM if cell == "lstm" else torch.nn.GRU
    layers = [mod(input_size=I if l == 0 else D * H, hidden_size=H, num_layers=1,
                  bidirectional=bi, batch_first=True, bias=True) for l in range(L)]
    norms = []
    for _ in range(L):
        if not layer_norm:
            norms.append(None)
            continue
        n = torch.nn.LayerNorm(D * H, eps=1e-5, elementwise_affine=True)
        with torch.no_grad():
            n.weight.copy_(1 + 0.2 * torch.randn(D * H))
            n.bias.copy_(0.2 * torch.randn(D * H))
        norms.append(n)
    return layers, norms


def named_params(layers, norms):
    """(tn_rnn name, parameter) in tn_rnn_init_ex's order."""
    out = []
    for l, (m, n) in enumerate(zip(layers, norms)):
        for pname, p in m.named_parameters():  # weight_ih_l0[_reverse], ...
            out.append((pname.replace("_l0", "_l%d" % l), p))
        if n is not None:
            out.append(("norm_l%d.weight" % l, n.weight))
            out.append(("norm_l%d.bias" % l, n.bias))
    return out


def forward(cell, layers, norms, residual, x, h0, c0, lengths):
    D = 2 if layers[0].bidirectional else 1
    T = x.shape[1]
    inp, hs, cs = x, [], []
    for l, (m, n) in enumerate(zip(layers, norms)):
        state = None
        if h0 is not None:
            hl = h0[l * D:(l + 1) * D]
            state = (hl, c0[l * D:(l + 1) * D]) if cell == "lstm" else hl
        y, st = run_seq_module(m, inp, state, lengths)
        h, c = st if cell == "lstm" else (st, None)
        hs.append(h)
        if c is not None:
            cs.append(c)
        if residual and l > 0:
            y = y + inp
        if n is not None:
            y = n(y)
        inp = y
    if norms[0] is not None and lengths is not None:
        mask = (torch.arange(T)[None, :] < torch.tensor(lengths)[:, None]).double()
        inp = inp * mask[:, :, None]
    return inp, torch.cat(hs, 0), (torch.cat(cs, 0) if cs else None)


def ln_lstm_params(I, H, L, bi):
    """(tn_rnn name, parameter) of a layer-norm LSTM in tn_rnn_init_ex's
    order: per layer and direction the four LSTM tensors (nn.LSTM's init)
    and the three LayerNorms' gains and biases."""
    D = 2 if bi else 1
    k = 1.0 / H ** 0.5
    out = []
    for l in range(L):
        for d in range(D):
            sfx = "_l%d%s" % (l, "_reverse" if d else "")
            inp = I if l == 0 else D * H
            for name, shape in (("weight_ih", (4 * H, inp)), ("weight_hh", (4 * H, H)),
                                ("bias_ih", (4 * H,)), ("bias_hh", (4 * H,))):
                out.append((name + sfx, torch.empty(shape).uniform_(-k, k).requires_grad_()))
            for ln, n in (("ln_ih", 4 * H), ("ln_hh", 4 * H), ("ln_c", H)):
                out.append(("%s%s.weight" % (ln, sfx), (1 + 0.2 * torch.randn(n)).requires_grad_()))
                out.append(("%s%s.bias" % (ln, sfx), (0.2 * torch.randn(n)).requires_grad_()))
    return out


def ln_lstm_forward(params, H, L, bi, x, h0, c0, lengths):
    """The layer-norm LSTM over x [B, T, I]: (output, h_n, c_n)."""
    P = dict(params)
    D = 2 if bi else 1
    B, T, _ = x.shape
    lens = lengths if lengths is not None else [T] * B
    F = torch.nn.functional

    def ln(v, name):
        return F.layer_norm(v, (v.shape[-1],), P[name + ".weight"], P[name + ".bias"], 1e-5)

    inp, hs, cs = x, [], []
    for l in range(L):
        outs = []
        for d in range(D):
            sfx = "_l%d%s" % (l, "_reverse" if d else "")
            kk = l * D + d
            h = h0[kk] if h0 is not None else torch.zeros(B, H)
            c = c0[kk] if c0 is not None else torch.zeros(B, H)
            gx = ln(inp @ P["weight_ih" + sfx].t(), "ln_ih" + sfx) + P["bias_ih" + sfx] + \
                P["bias_hh" + sfx]
            ys = []
            for step in range(T):
                src = [lens[b] - 1 - step if d and step < lens[b] else step for b in range(B)]
                g = gx[torch.arange(B), src] + ln(h @ P["weight_hh" + sfx].t(), "ln_hh" + sfx)
                i, f, u, o = g.chunk(4, 1)
                c2 = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(u)
                h2 = torch.sigmoid(o) * torch.tanh(ln(c2, "ln_c" + sfx))
                m = torch.tensor([[1.0 if step < lens[b] else 0.0] for b in range(B)])
                h = h + m * (h2 - h)
                c = c + m * (c2 - c)
                ys.append(h * m)
            hs.append(h)
            cs.append(c)
            outs.append(torch.stack([torch.stack(
                [ys[lens[b] - 1 - t if d and t < lens[b] else t][b] for t in range(T)])
                for b in range(B)]))
        inp = torch.cat(outs, 2)
    return inp, torch.stack(hs), torch.stack(cs)


def ln_fixture(name, I, H, L, bi=False, T=5, B=3, h0=False, lengths=None):
    seed_for(name)
    D = 2 if bi else 1
    params = ln_lstm_params(I, H, L, bi)
    x = torch.randn(B, T, I, requires_grad=True)
    hx = torch.randn(L * D, B, H).mul(0.5).requires_grad_() if h0 else None
    cx = torch.randn(L * D, B, H).mul(0.5).requires_grad_() if h0 else None
    output, h_n, c_n = ln_lstm_forward(params, H, L, bi, x, hx, cx, lengths)
    meta = {"meta.kind": KIND_SEQ, "meta.cell": CELLS["lstm"], "meta.input_size": I,
            "meta.hidden": H, "meta.layers": L, "meta.bidirectional": int(bi),
            "meta.ln_gates": 1, "meta.batch": B, "meta.seq_len": T}
    return seq_record(meta, x, hx, cx, lengths, params, output, h_n, c_n)


def resid_fixture(name, cell, I, H, L, bi=False, residual=True, layer_norm=True, T=5, B=3,
                  h0=False, lengths=None):
    seed_for(name)
    D = 2 if bi else 1
    layers, norms = build(cell, I, H, L, bi, layer_norm)
    x = torch.randn(B, T, I, requires_grad=True)
    hx = torch.randn(L * D, B, H).mul(0.5).requires_grad_() if h0 else None
    cx = torch.randn(L * D, B, H).mul(0.5).requires_grad_() if h0 and cell == "lstm" else None
    output, h_n, c_n = forward(cell, layers, norms, residual, x, hx, cx, lengths)
    meta = {"meta.kind": KIND_SEQ, "meta.cell": CELLS[cell], "meta.input_size": I,
            "meta.hidden": H, "meta.layers": L, "meta.bidirectional": int(bi),
            "meta.residual": int(residual), "meta.layer_norm": int(layer_norm),
            "meta.batch": B, "meta.seq_len": T}
    return seq_record(meta, x, hx, cx, lengths, named_params(layers, norms), output, h_n, c_n)


def self_check():
    """Without the options the per-layer model is PyTorch's stacked module."""
    torch.manual_seed(1)
    for cell, bi in (("lstm", True), ("gru", False)):
        layers, norms = build(cell, 3, 4, 2, bi, False)
        mod = torch.nn.LSTM if cell == "lstm" else torch.nn.GRU
        ref = mod(3, 4, num_layers=2, bidirectional=bi, batch_first=True)
        own = dict(named_params(layers, norms))
        with torch.no_grad():
            for pname, p in ref.named_parameters():
                p.copy_(own[pname])
        x = torch.randn(2, 5, 3)
        y, h, _ = forward(cell, layers, norms, False, x, None, None, [5, 3])
        y_ref, st = run_seq_module(ref, x, None, [5, 3])
        h_ref = st[0] if cell == "lstm" else st
        assert torch.allclose(y, y_ref, atol=1e-14) and torch.allclose(h, h_ref, atol=1e-14)


def all_fixtures():
    """name -> fixture dict; the list in tests/test_layer_parity.c matches."""
    specs = {
        "lstm_l3_res": dict(cell="lstm", I=3, H=4, L=3, layer_norm=False),
        "gru_l3_res": dict(cell="gru", I=4, H=3, L=3, layer_norm=False),
        "lstm_l2_ln": dict(cell="lstm", I=3, H=4, L=2, residual=False),
        "gru_l2_ln": dict(cell="gru", I=3, H=4, L=2, residual=False),
        "lstm_l3_res_ln": dict(cell="lstm", I=4, H=4, L=3),
        "gru_l3_res_ln": dict(cell="gru", I=3, H=5, L=3),
        "lstm_l2bi_res_ln_h0": dict(cell="lstm", I=3, H=4, L=2, bi=True, h0=True),
        "gru_l3_res_ln_len": dict(cell="gru", I=3, H=4, L=3, lengths=[5, 2, 4]),
        "lstm_l2bi_res_ln_len": dict(cell="lstm", I=4, H=3, L=2, bi=True, h0=True,
                                     lengths=[3, 5, 1]),
    }
    out = {name: resid_fixture(name, **kw) for name, kw in specs.items()}
    ln_specs = {
        "lstm_lngates": dict(I=3, H=4, L=1),
        "lstm_l2bi_lngates_h0": dict(I=3, H=4, L=2, bi=True, h0=True),
        "lstm_l2bi_lngates_len": dict(I=4, H=3, L=2, bi=True, h0=True, lengths=[3, 5, 1]),
    }
    out.update({name: ln_fixture(name, **kw) for name, kw in ln_specs.items()})
    return out


def main():
    self_check()
    write_fixtures(all_fixtures(), "layer_resid_%s.bin")


if __name__ == "__main__":
    main()
