"""Write a safetensors file by hand, with struct and json only (no
safetensors package), the way any Python program can; shared by the
fixture generators of test_io (gen_io_fixture.py, gen_io_half_fixture.py).
Read one of float32 tensors back (gen_lm_fixtures.py, torch_translate_same.py).

    from safetensors_io import write_safetensors, read_safetensors_f32
    write_safetensors(path, [(name, "F32", shape, raw_le_bytes), ...], metadata)
    arrays, metadata = read_safetensors_f32(path)  # {name: numpy float32 array}

Tensors go into the data buffer in the order given (put the wider dtypes
first to keep each one aligned to its element size); the header is compact
JSON padded with spaces so the buffer starts on an 8-byte boundary. Returns
the file's size.
"""
import json
import struct

import numpy as np


def write_safetensors(path, tensors, metadata=None):
    header = {"__metadata__": metadata} if metadata else {}
    buf = b""
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": list(shape),
                        "data_offsets": [len(buf), len(buf) + len(raw)]}
        buf += raw
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (-(8 + len(text)) % 8)  # pad so the data starts 8-byte aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        f.write(buf)
    return 8 + len(text) + len(buf)


def read_safetensors_f32(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        buf = f.read()
    metadata = header.pop("__metadata__", {})
    arrays = {}
    for name, v in header.items():
        assert v["dtype"] == "F32", f"{path}: {name} is {v['dtype']}, not F32"
        b, e = v["data_offsets"]
        arrays[name] = np.frombuffer(buf[b:e], "<f4").reshape(v["shape"]).copy()
    return arrays, metadata
