#!/usr/bin/env python3
"""Writes the seed corpus of tests/fuzz (committed; rerun to regenerate):
valid checkpoints of the fuzz target's parameter set ("lin.weight" F32
[2, 3], "lin.bias" F64 [3]), also with both tensors stored as F16 or as
BF16 (converted on loading), and broken ones (truncated, not JSON,
overlapping offsets, a shape whose size overflows, an unknown dtype, a
duplicate key, a header length of 2^63, non-string metadata), and one
with integer and generator-state metadata for tn_meta_get_int/_rng."""
import json
import os
import struct

os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus"))


def ck(name, hdr, data=b"", raw=False):
    h = hdr if raw else json.dumps(hdr, separators=(",", ":")).encode()
    if not raw:
        h += b" " * ((8 - len(h) % 8) % 8)
    with open(name, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + data)


def variant(change):
    h = json.loads(json.dumps(GOOD))
    change(h)
    return h


W_VALUES, B_VALUES = [i * 0.5 - 1 for i in range(6)], [0, 1 / 3, 2 / 3]
W = struct.pack("<6f", *W_VALUES)
B = struct.pack("<3d", *B_VALUES)
GOOD = {"__metadata__": {"format": "pt", "vocab": "h\u00e9llo"},
        "lin.bias": {"dtype": "F64", "shape": [3], "data_offsets": [0, 24]},
        "lin.weight": {"dtype": "F32", "shape": [2, 3], "data_offsets": [24, 48]}}
ck("valid", GOOD, B + W)


def f32_bias(h):
    h["lin.bias"].update(dtype="F32", data_offsets=[24, 36])
    h["lin.weight"]["data_offsets"] = [0, 24]


ck("valid_f32", variant(f32_bias), W + struct.pack("<3f", *B_VALUES))


def half(dtype):
    def change(h):
        h["lin.weight"].update(dtype=dtype, data_offsets=[0, 12])
        h["lin.bias"].update(dtype=dtype, data_offsets=[12, 18])
    return change


def bf16(values):
    """bfloat16 bits of values: the top half of each float32 (truncated; any
    bits make a seed)."""
    return b"".join(struct.pack("<f", v)[2:] for v in values)


ck("valid_f16", variant(half("F16")), struct.pack("<6e", *W_VALUES) + struct.pack("<3e", *B_VALUES))
ck("valid_bf16", variant(half("BF16")), bf16(W_VALUES) + bf16(B_VALUES))
ck("truncated", GOOD, (B + W)[:30])
ck("bad_json", b'{"lin.bias": {"dtype": "F64", "shape": [3', raw=True)
ck("overlap", variant(lambda h: h["lin.weight"].update(data_offsets=[16, 40])), B + W)
ck("shape_overflow", variant(lambda h: h["lin.weight"].update(shape=[2**62, 4])), B + W)
ck("bad_dtype", variant(lambda h: h["lin.weight"].update(dtype="I64")), B + W)
ck("duplicate_key", b'{"lin.bias":{"dtype":"F64","shape":[3],"data_offsets":[0,24]},'
   b'"lin.bias":{"dtype":"F64","shape":[3],"data_offsets":[0,24]}}', B, raw=True)
with open("huge_header_len", "wb") as f:
    f.write(struct.pack("<Q", 2**63 + 5) + b"{}")
ck("meta_not_string", {"__metadata__": {"a": 1}})
ck("meta_int_rng", {"__metadata__": {"step": "-9223372036854775808", "hidden": "64",
                                     "rng": "0123456789abcdef fedcba9876543210 "
                                            "0000000000000001 ffffffffffffffff"}})
ck("empty_object", {})
