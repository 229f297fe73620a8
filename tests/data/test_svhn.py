from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io

from quantsim.data.svhn import load_svhn, read_svhn_mat
from quantsim.errors import DataError


def _write(path: Path, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(32, 32, 3, n), dtype=np.uint8)
    y = rng.integers(1, 11, size=(n, 1)).astype(np.uint8)
    y[0] = 10
    scipy.io.savemat(path, {"X": x, "y": y})
    return x, y


def test_reads_mat_files(tmp_path: Path) -> None:
    x, y = _write(tmp_path / "train_32x32.mat", 12, 0)
    _write(tmp_path / "test_32x32.mat", 5, 1)
    raw = load_svhn(tmp_path)
    assert raw.x_train.shape == (12, 3, 32, 32) and raw.x_train.dtype == np.uint8
    assert raw.x_test.shape == (5, 3, 32, 32)
    assert raw.y_train.dtype == np.int64 and raw.y_train[0] == 0  # label 10 means digit 0
    np.testing.assert_array_equal(raw.y_train, np.where(y.ravel() == 10, 0, y.ravel()))
    # image n, channel c, row i, column j is X[i, j, c, n]
    assert raw.x_train[3, 2, 5, 7] == x[5, 7, 2, 3]
    assert raw.y_train.min() >= 0 and raw.y_train.max() <= 9


def test_found_in_svhn_subdir(tmp_path: Path) -> None:
    (tmp_path / "svhn").mkdir()
    _write(tmp_path / "svhn" / "train_32x32.mat", 2, 0)
    _write(tmp_path / "svhn" / "test_32x32.mat", 2, 1)
    assert load_svhn(tmp_path).x_train.shape[0] == 2


def test_missing(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"train_32x32\.mat, test_32x32\.mat in .*svhn"):
        load_svhn(tmp_path)


def test_bad_shape_and_labels(tmp_path: Path) -> None:
    p = tmp_path / "a.mat"
    scipy.io.savemat(p, {"X": np.zeros((28, 28, 1, 2), np.uint8), "y": np.ones((2, 1))})
    with pytest.raises(DataError, match=r"\(32, 32, 3, N\)"):
        read_svhn_mat(p)
    scipy.io.savemat(p, {"X": np.zeros((32, 32, 3, 2), np.uint8), "y": np.zeros((2, 1))})
    with pytest.raises(DataError, match="1..10"):
        read_svhn_mat(p)
    scipy.io.savemat(p, {"images": np.zeros(3)})
    with pytest.raises(DataError, match="X and y"):
        read_svhn_mat(p)


def test_not_a_mat_file(tmp_path: Path) -> None:
    p = tmp_path / "train_32x32.mat"
    p.write_bytes(b"this is not matlab" * 20)
    with pytest.raises(DataError, match="cannot read as a MATLAB file"):
        read_svhn_mat(p)
