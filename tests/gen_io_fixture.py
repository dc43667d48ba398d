#!/usr/bin/python3
"""Write tests/fixtures/io_python.safetensors with Python's struct, json and
numpy only (no safetensors package), the way any Python program can, so
test_io checks that our loader reads a file written by another hand.

Contents (printed below; test_io states the same values):
  __metadata__  {"format": "pt", "source": "gen_io_fixture.py",
                 "vocab": "héllo wörld ✓ 中文"}
  "lin.weight"  F32 [2, 3] = arange(6) * 0.5 - 1     -> -1.0 -0.5 0.0 0.5 1.0 1.5
  "lin.bias"    F64 [3]    = arange(3) / 3            -> 0.0 0.333... 0.666... (float64 of i/3)

Usage: /usr/bin/python3 tests/gen_io_fixture.py [OUT]
"""
import json
import os
import struct
import sys

import numpy as np

here = os.path.dirname(os.path.abspath(__file__))
out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "fixtures", "io_python.safetensors")

weight = (np.arange(6, dtype=np.float32) * np.float32(0.5) - np.float32(1)).reshape(2, 3)
bias = np.arange(3, dtype=np.float64) / 3.0

tensors = [("lin.weight", weight, "F32"), ("lin.bias", bias, "F64")]
header = {"__metadata__": {"format": "pt", "source": "gen_io_fixture.py",
                           "vocab": "héllo wörld ✓ 中文"}}
buf = b""
for name, arr, dtype in tensors:
    raw = arr.astype(arr.dtype.newbyteorder("<")).tobytes()  # row-major, little-endian
    header[name] = {"dtype": dtype, "shape": list(arr.shape),
                    "data_offsets": [len(buf), len(buf) + len(raw)]}
    buf += raw

text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
text += b" " * (-(8 + len(text)) % 8)  # pad so the data starts 8-byte aligned
with open(out, "wb") as f:
    f.write(struct.pack("<Q", len(text)))
    f.write(text)
    f.write(buf)

print(f"wrote {out} ({8 + len(text) + len(buf)} bytes)")
for name, arr, dtype in tensors:
    print(name, dtype, list(arr.shape), " ".join(repr(float(v)) for v in arr.ravel()))
