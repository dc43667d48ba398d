#!/usr/bin/python3
"""Write tests/fixtures/io_half.safetensors: half-precision tensors as most
published checkpoints store them, with PyTorch's float32 conversion of each
beside it, so test_io checks that tn_load converts F16 and BF16 exactly as
torch does. Needs PyTorch (1.13 here); the file is committed because CI has
none. The bytes are written by hand with struct and json
(tests/safetensors_io.py, as for gen_io_fixture.py; no safetensors
package).

Contents (the bit patterns below, row-major, [2, 8] each):
  "h16"      F16  0, -0, smallest subnormal 2^-24, largest subnormal,
                  smallest normal 2^-14, max finite 65504, 1/3 rounded,
                  -1/3 rounded, -2.5, 1, -2^-24, -65504, inf, -inf, NaN,
                  -NaN with a payload
  "h16.f32"  F32  h16.to(torch.float32)
  "b16"      BF16 0, -0, smallest subnormal 2^-133, largest subnormal,
                  smallest normal 2^-126, max finite, 1/3 rounded, -1/3
                  rounded, -2.5, 1, -2^-133, -max finite, inf, -inf, NaN,
                  -NaN with a payload
  "b16.f32"  F32  b16.to(torch.float32)
Infinities and NaN are in the same file: the loader keeps non-finite values
as they are (tensor/io.h), for F16/BF16 as for F32. Only quiet NaNs are
here: torch 1.13 sets the quiet bit of a signalling F16 NaN where tn_load
keeps the payload as it is (test_io checks that case on its own).

Usage: /usr/bin/python3 tests/gen_io_half_fixture.py [OUT]
"""
import os
import struct
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_io import write_safetensors  # noqa: E402

here = os.path.dirname(os.path.abspath(__file__))
out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "fixtures", "io_half.safetensors")

one_third = torch.tensor(1.0 / 3.0, dtype=torch.float64)
H16_BITS = [0x0000, 0x8000, 0x0001, 0x03FF, 0x0400, 0x7BFF,
            None, None,  # +-1/3, rounded by torch below
            0xC100, 0x3C00, 0x8001, 0xFBFF, 0x7C00, 0xFC00, 0x7E00, 0xFF55]
B16_BITS = [0x0000, 0x8000, 0x0001, 0x007F, 0x0080, 0x7F7F,
            None, None,
            0xC020, 0x3F80, 0x8001, 0xFF7F, 0x7F80, 0xFF80, 0x7FC0, 0xFFC1]


def from_bits(bits, dtype):
    """A [2, 8] tensor of dtype from 16-bit patterns (None: +-1/3 rounded)."""
    third = one_third.to(dtype)
    t = torch.zeros(16, dtype=dtype)
    raw = t.view(torch.int16)
    for i, b in enumerate(bits):
        if b is None:
            t[i] = third if i == 6 else -third
        else:
            raw[i] = b - 0x10000 if b >= 0x8000 else b
    return t.reshape(2, 8)


def le_bytes(t):
    """Row-major little-endian bytes of t (2- or 4-byte elements)."""
    ints = t.contiguous().view(torch.int16 if t.element_size() == 2 else torch.int32)
    fmt = "<%d%s" % (ints.numel(), "h" if t.element_size() == 2 else "i")
    return struct.pack(fmt, *ints.flatten().tolist())


h16 = from_bits(H16_BITS, torch.float16)
b16 = from_bits(B16_BITS, torch.bfloat16)
# 4-byte tensors first, so every tensor is aligned to its element size
tensors = [("h16.f32", h16.to(torch.float32), "F32"), ("b16.f32", b16.to(torch.float32), "F32"),
           ("h16", h16, "F16"), ("b16", b16, "BF16")]
size = write_safetensors(out, [(name, dtype, t.shape, le_bytes(t)) for name, t, dtype in tensors],
                         {"source": "gen_io_half_fixture.py", "torch": torch.__version__})

print(f"wrote {out} ({size} bytes)")
for name, t, dtype in tensors:
    ints = t.contiguous().view(torch.int16 if t.element_size() == 2 else torch.int32)
    width = 2 * t.element_size()
    print(name, dtype, list(t.shape),
          " ".join("%0*x" % (width, v & (1 << 4 * width) - 1) for v in ints.flatten().tolist()))
