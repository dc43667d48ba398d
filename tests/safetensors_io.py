"""Write a safetensors file by hand, with struct and json only (no
safetensors package), the way any Python program can; shared by the
fixture generators of test_io (gen_io_fixture.py, gen_io_half_fixture.py).

    from safetensors_io import write_safetensors
    write_safetensors(path, [(name, "F32", shape, raw_le_bytes), ...], metadata)

Tensors go into the data buffer in the order given (put the wider dtypes
first to keep each one aligned to its element size); the header is compact
JSON padded with spaces so the buffer starts on an 8-byte boundary. Returns
the file's size.
"""
import json
import struct


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
