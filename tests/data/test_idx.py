from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from quantsim.data.idx import read_idx, write_idx
from quantsim.errors import DataError


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_round_trip(tmp_path: Path, suffix: str, dtype: type) -> None:
    arr = (np.arange(2 * 3 * 4) - 5).astype(dtype).reshape(2, 3, 4)
    if dtype is np.uint8:
        arr = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    path = tmp_path / f"a-idx3{suffix}"
    write_idx(path, arr)
    out = read_idx(path)
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative
    np.testing.assert_array_equal(out, arr)


def test_header_is_big_endian(tmp_path: Path) -> None:
    path = tmp_path / "labels-idx1-ubyte"
    path.write_bytes(bytes([0, 0, 0x0B, 1]) + struct.pack(">I", 2) + struct.pack(">2h", 258, -1))
    np.testing.assert_array_equal(read_idx(path, expect_ndim=1), [258, -1])


def test_gzip_detected_by_content_not_name(tmp_path: Path) -> None:
    raw = bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 8, 9])
    path = tmp_path / "no-suffix"
    path.write_bytes(gzip.compress(raw))
    np.testing.assert_array_equal(read_idx(path), [7, 8, 9])


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        (bytes([1, 0, 8, 1, 0, 0, 0, 1, 5]), "magic number"),
        (bytes([0, 0, 0x42, 1, 0, 0, 0, 1, 5]), "dtype code 0x42"),
        (bytes([0, 0, 8, 0]), "0 dimensions"),
        (bytes([0, 0, 8, 1, 0, 0]), "truncated.*dimension sizes"),
        (bytes([0, 0, 8, 1, 0, 0, 0, 5, 1, 2, 3]), "truncated.*expected 5 bytes.*found 3"),
        (bytes([0, 0, 8, 1, 0, 0, 0, 2, 1, 2, 3]), "longer than its header"),
        (bytes([0, 0]), "truncated"),
        (bytes([0, 0, 8, 1, 255, 255, 255, 255, 255, 255, 255, 255])[:8], "truncated"),
    ],
)
@pytest.mark.parametrize("gz", [False, True])
def test_corrupt_files_raise(tmp_path: Path, payload: bytes, match: str, gz: bool) -> None:
    path = tmp_path / ("bad.gz" if gz else "bad")
    path.write_bytes(gzip.compress(payload) if gz else payload)
    with pytest.raises(DataError, match=match) as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_wrong_number_of_dims(tmp_path: Path) -> None:
    path = tmp_path / "labels"
    write_idx(path, np.zeros((2, 2), np.uint8))
    with pytest.raises(DataError, match="2 dimensions, expected 1"):
        read_idx(path, expect_ndim=1)


def test_truncated_gzip_stream(tmp_path: Path) -> None:
    path = tmp_path / "x.gz"
    write_idx(path, np.zeros((100, 28, 28), np.uint8) + 7)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="truncated|corrupt"):
        read_idx(path)


def test_damaged_gzip_stream(tmp_path: Path) -> None:
    path = tmp_path / "x.gz"
    write_idx(path, np.arange(1000, dtype=np.int32))
    data = bytearray(path.read_bytes())
    data[20:30] = b"\xff" * 10
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match="x.gz"):
        read_idx(path)


def test_oversized_header(tmp_path: Path) -> None:
    path = tmp_path / "huge"
    path.write_bytes(bytes([0, 0, 0x0E, 3]) + struct.pack(">3I", 2**31, 2**31, 2**31))
    with pytest.raises(DataError, match="corrupt"):
        read_idx(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        read_idx(tmp_path / "nope")
