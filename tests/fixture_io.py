"""Reference-fixture files shared by every parity test of the project.

Format (all integers little-endian; read by tests/fixture.h):

    magic    4 bytes  b"TNFX"
    version  u32      1
    count    u32      number of tensors
    count times:
        name_len  u32          1..4096
        name      name_len bytes (UTF-8, no NUL), unique in the file
        ndim      u32          0..8 (0: a scalar, one element)
        shape     ndim x i64   each >= 0
        data      prod(shape) x float64, row-major (C order)

Integer tensors (token ids, lengths, targets) are stored as float64 too;
every int32 value is exact in a double. Nothing follows the last tensor.

    from fixture_io import write_fixture, read_fixture
    write_fixture("tests/fixtures/x.bin", {"x": torch_tensor, "ids": np_array})
"""

import os
import struct

import numpy as np

MAGIC = b"TNFX"
VERSION = 1
MAX_NAME = 4096
MAX_DIMS = 8


def _as_array(value):
    """numpy float64 C-order array from a numpy array, torch tensor or scalar/list."""
    if hasattr(value, "detach"):  # torch.Tensor, without importing torch here
        value = value.detach().cpu().double().numpy()
    return np.asarray(value, dtype=np.float64)  # 0-d stays 0-d (a scalar)


def write_fixture(path, tensors):
    """Write tensors (a dict name -> array-like, kept in its order) to path.

    The file is written to a temporary name and renamed, so a failed run
    never leaves a truncated fixture behind.
    """
    chunks = [MAGIC, struct.pack("<II", VERSION, len(tensors))]
    for name, value in tensors.items():
        raw = name.encode("utf-8")
        if not 1 <= len(raw) <= MAX_NAME:
            raise ValueError("fixture name length %d out of range: %r" % (len(raw), name))
        arr = _as_array(value)
        if arr.ndim > MAX_DIMS:
            raise ValueError("%s: %d dims, at most %d" % (name, arr.ndim, MAX_DIMS))
        if not np.all(np.isfinite(arr)):
            raise ValueError("%s: non-finite values" % name)
        chunks.append(struct.pack("<I", len(raw)))
        chunks.append(raw)
        chunks.append(struct.pack("<I", arr.ndim))
        chunks.append(struct.pack("<%dq" % arr.ndim, *arr.shape))
        chunks.append(arr.astype("<f8").tobytes(order="C"))
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(b"".join(chunks))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_fixture(path):
    """Read a fixture back as a dict name -> float64 numpy array (for checks)."""
    with open(path, "rb") as f:
        buf = f.read()
    if buf[:4] != MAGIC:
        raise ValueError("%s: not a TNFX fixture" % path)
    version, count = struct.unpack_from("<II", buf, 4)
    if version != VERSION:
        raise ValueError("%s: version %d, expected %d" % (path, version, VERSION))
    pos, out = 12, {}
    for _ in range(count):
        (n,) = struct.unpack_from("<I", buf, pos)
        pos += 4
        name = buf[pos:pos + n].decode("utf-8")
        pos += n
        (ndim,) = struct.unpack_from("<I", buf, pos)
        pos += 4
        shape = struct.unpack_from("<%dq" % ndim, buf, pos)
        pos += 8 * ndim
        numel = int(np.prod(shape, dtype=np.int64)) if ndim else 1
        out[name] = np.frombuffer(buf, dtype="<f8", count=numel, offset=pos).reshape(shape).copy()
        pos += 8 * numel
    if pos != len(buf):
        raise ValueError("%s: %d trailing bytes" % (path, len(buf) - pos))
    return out
