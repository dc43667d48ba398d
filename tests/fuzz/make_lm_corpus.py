#!/usr/bin/env python3
"""Writes the seed corpus of tests/fuzz/fuzz_lm (tn_lm_load) into
tests/fuzz/corpus_lm (committed; rerun to regenerate, no arguments).

valid_*: small checkpoints in tn_lm_save's layout (include/tensor/lm.h),
written here from the format's description rather than by the library:
an LSTM, a 2-layer tied GRU with a carried state, an LSTM with state.h and
state.c, an rnn_relu with PyTorch's word_language_model names
(encoder/decoder). The ctest fuzz_lm_valid_seeds checks that each of them
loads.

The others: one valid checkpoint with crafted metadata or tensors, each
of which tn_lm_load must refuse (or load consistently): missing, unknown
or malformed lm.* keys, sizes out of range or larger than the tensors,
layers the file does not have, dropouts of 1 or NaN, tie with embed !=
hidden, names empty, too long or equal, a carried state of the wrong
shape or missing its c, a tensor of a deeper layer than the model."""
import json
import math
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus_lm")
GATES = {"lstm": 4, "gru": 3, "rnn_tanh": 1, "rnn_relu": 1}


def model(cell, V, E, H, L, tie=False, names=("embed", "head"), state_b=0):
    """(metadata, [(name, shape)]) of a model of these options, and its
    carried state of batch state_b (0: none)."""
    meta = {"lm.format": "1", "lm.cell": cell, "lm.vocab": str(V), "lm.embed": str(E),
            "lm.hidden": str(H), "lm.layers": str(L), "lm.dropout": "0",
            "lm.io_dropout": "0", "lm.tie": "1" if tie else "0",
            "lm.embed_name": names[0], "lm.head_name": names[1]}
    G = GATES[cell]
    t = [(names[0] + ".weight", [V, E])]
    for k in range(L):
        t += [("rnn.weight_ih_l%d" % k, [G * H, E if k == 0 else H]),
              ("rnn.weight_hh_l%d" % k, [G * H, H]),
              ("rnn.bias_ih_l%d" % k, [G * H]), ("rnn.bias_hh_l%d" % k, [G * H])]
    if not tie:
        t.append((names[1] + ".weight", [V, H]))
    t.append((names[1] + ".bias", [V]))
    if state_b:
        t.append(("state.h", [L, state_b, H]))
        if cell == "lstm":
            t.append(("state.c", [L, state_b, H]))
    return meta, t


def write(name, meta, tensors):
    """A safetensors file: F32 tensors filled with small distinct values."""
    hdr, data = {"__metadata__": meta}, b""
    for k, (tname, shape) in enumerate(tensors):
        n = math.prod(shape)
        vals = [((i * 7 + k * 3) % 11 - 5) / 10 for i in range(n)]
        hdr[tname] = {"dtype": "F32", "shape": shape,
                      "data_offsets": [len(data), len(data) + 4 * n]}
        data += struct.pack("<%df" % n, *vals)
    h = json.dumps(hdr, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + data)


def crafted(name, base, meta=None, drop=None, add=None, reshape=None):
    """base with metadata keys set (None: removed), a tensor dropped, one
    added, or one's shape replaced."""
    m, t = dict(base[0]), list(base[1])
    for k, v in (meta or {}).items():
        if v is None:
            m.pop(k, None)
        else:
            m[k] = v
    if drop:
        t = [x for x in t if x[0] != drop]
    if add:
        t.append(add)
    if reshape:
        t = [(n, reshape[1] if n == reshape[0] else s) for n, s in t]
    write(name, m, t)


os.makedirs(OUT, exist_ok=True)
for f in os.listdir(OUT):
    os.remove(os.path.join(OUT, f))

LSTM = model("lstm", 5, 3, 4, 1)
write("valid_lstm", *LSTM)
GRU = model("gru", 6, 4, 4, 2, tie=True, state_b=2)
write("valid_gru_tied_state", *GRU)
write("valid_lstm_state", *model("lstm", 4, 2, 3, 2, state_b=1))
write("valid_rnn_relu_names", *model("rnn_relu", 3, 2, 2, 1, names=("encoder", "decoder")))

for key in ("lm.format", "lm.cell", "lm.vocab", "lm.layers", "lm.tie", "lm.dropout",
            "lm.embed_name"):
    crafted("missing_" + key[3:], LSTM, meta={key: None})
for key, value in [("lm.format", "2"), ("lm.cell", "transformer"), ("lm.vocab", "0"),
                   ("lm.vocab", "-1"), ("lm.vocab", "5x"), ("lm.vocab", "99999999999999999999"),
                   ("lm.vocab", "1099511627776"), ("lm.embed", "1099511627776"),
                   ("lm.hidden", "2"), ("lm.hidden", "0"), ("lm.layers", "0"),
                   ("lm.layers", "2"), ("lm.layers", "99"), ("lm.dropout", "1"),
                   ("lm.dropout", "nan"), ("lm.io_dropout", "-0.5"), ("lm.tie", "2"),
                   ("lm.tie", "1"), ("lm.embed_name", ""), ("lm.embed_name", "e" * 60),
                   ("lm.head_name", "embed"), ("lm.cell", "gru")]:
    crafted("meta_%s_%s" % (key[3:], value[:12]), LSTM, meta={key: value})
crafted("tensor_missing_bias", LSTM, drop="rnn.bias_hh_l0")
crafted("tensor_deeper_layer", LSTM, add=("rnn.weight_ih_l1", [16, 4]))
crafted("tensor_head_shape", LSTM, reshape=("head.weight", [5, 3]))
crafted("state_shape", GRU, reshape=("state.h", [2, 2, 3]))
crafted("state_batch_0", GRU, reshape=("state.h", [2, 0, 4]))
crafted("state_c_in_gru", GRU, add=("state.c", [2, 2, 4]))
crafted("state_c_missing", model("lstm", 4, 2, 3, 2, state_b=1), drop="state.c")
crafted("tied_head_weight_too", GRU, add=("head.weight", [6, 4]))
