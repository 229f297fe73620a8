from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from quantsim.data.cifar import load_cifar10, read_cifar_batch
from quantsim.errors import DataError

from .conftest import write_cifar_dir


def test_reads_batches(cifar_dir) -> None:
    d, written = cifar_dir
    raw = load_cifar10(d)
    assert raw.x_train.shape == (40, 3, 32, 32) and raw.x_train.dtype == np.uint8
    assert raw.x_test.shape == (8, 3, 32, 32)
    assert raw.y_train.dtype == np.int64 and raw.y_train.shape == (40,)
    expected = np.concatenate([written[f"data_batch_{i}"][0] for i in range(1, 6)])
    np.testing.assert_array_equal(raw.x_train.reshape(40, -1), expected)
    np.testing.assert_array_equal(raw.y_test, written["test_batch"][1])
    # channel-major layout: the first 1024 values of a row are the red plane
    np.testing.assert_array_equal(raw.x_train[0, 0].ravel(), expected[0, :1024])
    assert raw.default_validation == 10_000 and raw.classes[0] == "airplane"


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_any_protocol(tmp_path: Path, protocol: int) -> None:
    d = tmp_path / "c"
    written = write_cifar_dir(d, per_batch=3, protocol=protocol)
    x, y = read_cifar_batch(d / "data_batch_3")
    np.testing.assert_array_equal(x.reshape(3, -1), written["data_batch_3"][0])


def test_found_via_env_parent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_cifar_dir(tmp_path / "cifar-10-batches-py", per_batch=2)
    monkeypatch.setenv("QUANTSIM_DATA", str(tmp_path))
    assert load_cifar10().x_test.shape == (2, 3, 32, 32)


def test_missing_names_files_and_directory(tmp_path: Path) -> None:
    with pytest.raises(DataError) as info:
        load_cifar10(tmp_path)
    msg = str(info.value)
    assert "data_batch_1" in msg and "test_batch" in msg and str(tmp_path) in msg
    assert "cifar-10-batches-py" in msg


def _write(path: Path, obj: object) -> None:
    path.write_bytes(pickle.dumps(obj, protocol=2))


@pytest.mark.parametrize(
    ("obj", "match"),
    [
        ([1, 2], "expected a pickled dict"),
        ({b"data": np.zeros((2, 3072), np.uint8)}, "lacks"),
        ({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, r"\(N, 3072\)"),
        ({b"data": np.zeros((2, 3072), np.float32), b"labels": [0, 1]}, "uint8"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}, "expected 2 labels"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]}, r"\[0, 10\)"),
    ],
)
def test_malformed_batches(tmp_path: Path, obj: object, match: str) -> None:
    path = tmp_path / "data_batch_1"
    _write(path, obj)
    with pytest.raises(DataError, match=match):
        read_cifar_batch(path)
