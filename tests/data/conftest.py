"""Small files in the real on-disk formats, generated in tmp_path."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from quantsim.data.idx import write_idx

MNIST_NAMES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def make_images(n: int, shape: tuple[int, ...], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, *shape), dtype=np.uint8)


def make_labels(n: int, seed: int, classes: int = 10) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, classes, size=n).astype(np.uint8)


def write_mnist_dir(directory: Path, n_train: int = 60, n_test: int = 20, *, gz: bool = True,
                    size: int = 28) -> dict[str, np.ndarray]:
    """Four MNIST-style IDX files; returns the arrays written."""
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {
        MNIST_NAMES[0]: make_images(n_train, (size, size), 1),
        MNIST_NAMES[1]: make_labels(n_train, 2),
        MNIST_NAMES[2]: make_images(n_test, (size, size), 3),
        MNIST_NAMES[3]: make_labels(n_test, 4),
    }
    for name, arr in arrays.items():
        write_idx(directory / (name + (".gz" if gz else "")), arr)
    return arrays


def write_cifar_dir(directory: Path, per_batch: int = 8, protocol: int = 2
                    ) -> dict[str, tuple[np.ndarray, list[int]]]:
    """CIFAR-10 python batches as the real files are: dicts with bytes keys, labels a list."""
    directory.mkdir(parents=True, exist_ok=True)
    out = {}
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for k, name in enumerate(names):
        data = make_images(per_batch, (3072,), 10 + k)
        labels = [int(v) for v in make_labels(per_batch, 20 + k)]
        batch = {b"batch_label": f"{name} of 6".encode(), b"data": data, b"labels": labels,
                 b"filenames": [f"img_{k}_{i}.png".encode() for i in range(per_batch)]}
        with open(directory / name, "wb") as f:
            pickle.dump(batch, f, protocol=protocol)
        out[name] = (data, labels)
    return out


@pytest.fixture
def mnist_dir(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    d = tmp_path / "mnist"
    return d, write_mnist_dir(d)


@pytest.fixture
def cifar_dir(tmp_path: Path) -> tuple[Path, dict[str, tuple[np.ndarray, list[int]]]]:
    d = tmp_path / "cifar-10-batches-py"
    return d, write_cifar_dir(d)


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never see the developer's $QUANTSIM_DATA."""
    monkeypatch.delenv("QUANTSIM_DATA", raising=False)
