#!/usr/bin/python3
"""Write tests/fixtures/io_python.safetensors with Python's struct, json and
numpy only (no safetensors package: tests/safetensors_io.py), the way any
Python program can, so test_io checks that our loader reads a file written
by another hand.

Contents (printed below; test_io states the same values):
  __metadata__  {"format": "pt", "source": "gen_io_fixture.py",
                 "vocab": "héllo wörld ✓ 中文"}
  "lin.weight"  F32 [2, 3] = arange(6) * 0.5 - 1     -> -1.0 -0.5 0.0 0.5 1.0 1.5
  "lin.bias"    F64 [3]    = arange(3) / 3            -> 0.0 0.333... 0.666... (float64 of i/3)

Usage: /usr/bin/python3 tests/gen_io_fixture.py [OUT]
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_io import write_safetensors  # noqa: E402

here = os.path.dirname(os.path.abspath(__file__))
out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "fixtures", "io_python.safetensors")

weight = (np.arange(6, dtype=np.float32) * np.float32(0.5) - np.float32(1)).reshape(2, 3)
bias = np.arange(3, dtype=np.float64) / 3.0

tensors = [("lin.weight", weight, "F32"), ("lin.bias", bias, "F64")]
# row-major, little-endian bytes
size = write_safetensors(
    out, [(name, dtype, arr.shape, arr.astype(arr.dtype.newbyteorder("<")).tobytes())
          for name, arr, dtype in tensors],
    {"format": "pt", "source": "gen_io_fixture.py", "vocab": "héllo wörld ✓ 中文"})

print(f"wrote {out} ({size} bytes)")
for name, arr, dtype in tensors:
    print(name, dtype, list(arr.shape), " ".join(repr(float(v)) for v in arr.ravel()))
