"""IDX file reader (the MNIST / Fashion-MNIST container format).

An IDX file is: two zero bytes, a dtype code, the number of dimensions ``n``, ``n`` big-endian
uint32 sizes, then the values in C order, big-endian. Files may be gzip-compressed (``.gz``).
The reader checks every part of the header and that the payload is exactly as long as the header
says, so a corrupt or truncated file is a :class:`~quantsim.errors.DataError`, never a partial load.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from quantsim.errors import DataError

__all__ = ["IDX_DTYPES", "read_idx", "write_idx"]

#: IDX dtype code -> big-endian numpy dtype.
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

_MAX_BYTES = 1 << 34  # 16 GiB: a header claiming more is corrupt, not a data set


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == b"\x1f\x8b"


def _read_exact(f: BinaryIO, n: int, path: Path, what: str) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise DataError(
            f"{path}: truncated IDX file: expected {n} bytes of {what}, found {len(data)}. "
            "Re-download the file (a partial download or a copy that was cut short)."
        )
    return data


def _read(f: BinaryIO, path: Path, expect_ndim: int | None) -> np.ndarray:
    magic = _read_exact(f, 4, path, "magic number")
    if magic[0] != 0 or magic[1] != 0:
        raise DataError(
            f"{path}: not an IDX file (magic number {magic.hex()} does not start with 0000). "
            "Expected an MNIST-style file such as train-images-idx3-ubyte[.gz]."
        )
    code, ndim = magic[2], magic[3]
    if code not in IDX_DTYPES:
        known = ", ".join(f"0x{c:02X}" for c in IDX_DTYPES)
        raise DataError(f"{path}: unknown IDX dtype code 0x{code:02X} (known: {known}).")
    if ndim == 0:
        raise DataError(f"{path}: IDX header declares 0 dimensions; the file is corrupt.")
    if expect_ndim is not None and ndim != expect_ndim:
        raise DataError(
            f"{path}: IDX file has {ndim} dimensions, expected {expect_ndim} "
            "(images are idx3, labels idx1: check that the file names are not swapped)."
        )
    shape = struct.unpack(f">{ndim}I", _read_exact(f, 4 * ndim, path, "dimension sizes"))
    dtype = IDX_DTYPES[code]
    nbytes = math.prod(shape) * dtype.itemsize  # Python ints: no overflow on bogus headers
    if nbytes > _MAX_BYTES:
        raise DataError(f"{path}: IDX header declares shape {shape} ({nbytes} bytes); corrupt.")
    payload = _read_exact(f, nbytes, path, f"data for shape {shape}")
    if f.read(1):
        raise DataError(
            f"{path}: IDX file is longer than its header says (shape {shape}, {nbytes} data "
            "bytes); the file is corrupt or not the file it is named after."
        )
    return np.frombuffer(payload, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))


def read_idx(path: str | os.PathLike[str], *, expect_ndim: int | None = None) -> np.ndarray:
    """Read an IDX file (gzip or raw, detected by content) into a native-endian array.

    ``expect_ndim`` (e.g. 3 for images, 1 for labels) turns a wrong dimension count into an
    error. Raises :class:`DataError` for a missing, corrupt, truncated or oversized file.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: IDX file not found.")
    try:
        if _is_gzip(p):
            with gzip.open(p, "rb") as f:
                return _read(f, p, expect_ndim)
        if p.stat().st_size < 4:
            raise DataError(f"{p}: truncated IDX file ({p.stat().st_size} bytes, no header).")
        with open(p, "rb") as f:
            return _read(f, p, expect_ndim)
    except (EOFError, gzip.BadGzipFile, zlib.error) as e:
        raise DataError(
            f"{p}: corrupt or truncated gzip stream ({e}). Re-download the file."
        ) from e


def write_idx(path: str | os.PathLike[str], array: np.ndarray) -> None:
    """Write ``array`` as an IDX file (gzip if ``path`` ends in ``.gz``); for tests and tools."""
    arr = np.asarray(array)
    codes = {dt.newbyteorder("="): c for c, dt in IDX_DTYPES.items()}
    code = codes.get(arr.dtype.newbyteorder("="))
    if code is None:
        raise DataError(f"write_idx: dtype {arr.dtype} has no IDX code (use uint8, int8, int16, "
                        "int32, float32 or float64).")
    if arr.ndim == 0 or arr.ndim > 255:
        raise DataError(f"write_idx: cannot store a {arr.ndim}-dimensional array in IDX.")
    header = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    body = np.ascontiguousarray(arr, dtype=IDX_DTYPES[code]).tobytes()
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(header + body)
