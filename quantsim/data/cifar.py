"""CIFAR-10 from the python batches (``cifar-10-batches-py/data_batch_1..5``, ``test_batch``).

Each batch is a pickled dict with ``b"data"`` (10000, 3072) uint8 rows (1024 red, 1024 green,
1024 blue values, each plane row-major 32x32) and ``b"labels"`` (a list of ints in [0, 10)).
Batches are read with :func:`~quantsim.data.safe_pickle.load_restricted_pickle`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from quantsim.data.locate import DATA_ENV, candidate_dirs, describe_search, find_dir
from quantsim.data.raw import RawData, check_labels
from quantsim.data.safe_pickle import load_restricted_pickle
from quantsim.errors import DataError

__all__ = ["CIFAR10_CLASSES", "CIFAR10_DIR", "CIFAR10_FILES", "load_cifar10", "read_cifar_batch"]

CIFAR10_DIR = "cifar-10-batches-py"
CIFAR10_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_FILES = (*CIFAR10_TRAIN, "test_batch")
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")


def _get(batch: dict[Any, Any], key: str) -> Any:
    for k in (key.encode(), key):
        if k in batch:
            return batch[k]
    return None


def read_cifar_batch(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """One batch: images ``(N, 3, 32, 32)`` uint8 and labels ``(N,)`` int64."""
    p = Path(path)
    batch = load_restricted_pickle(p)
    if not isinstance(batch, dict):
        raise DataError(
            f"{p}: expected a pickled dict (a CIFAR-10 batch), got {type(batch).__name__}."
        )
    data, labels = _get(batch, "data"), _get(batch, "labels")
    if data is None or labels is None:
        raise DataError(f"{p}: CIFAR-10 batch lacks b'data' or b'labels' (keys: {list(batch)}).")
    if not isinstance(data, np.ndarray) or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        shape = getattr(data, "shape", type(data).__name__)
        raise DataError(f"{p}: b'data' must be an (N, 3072) array, got {shape}.")
    if data.dtype != np.uint8:
        raise DataError(f"{p}: b'data' must hold uint8 pixels, got {data.dtype}.")
    y = check_labels(np.asarray(labels), 10, data.shape[0], f"{p} b'labels'")
    return data.reshape(-1, 3, 32, 32), y


def load_cifar10(data_dir: str | os.PathLike[str] | None = None) -> RawData:
    """CIFAR-10: 50,000 train + 10,000 test 32x32 RGB images, 10 classes."""
    dirs = candidate_dirs(CIFAR10_DIR, data_dir)
    found = find_dir(dirs, CIFAR10_FILES, gzip_ok=False)
    if found is None:
        where = describe_search(dirs)
        raise DataError(
            f"CIFAR-10 not found: looked for {', '.join(CIFAR10_FILES)} in {where}. Download "
            "cifar-10-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html, unpack it "
            f"in ${DATA_ENV} (giving ${DATA_ENV}/{CIFAR10_DIR}/), or pass data_dir= naming "
            f"the {CIFAR10_DIR} directory."
        )
    train = [read_cifar_batch(found / f) for f in CIFAR10_TRAIN]
    x_test, y_test = read_cifar_batch(found / "test_batch")
    return RawData(
        "cifar10",
        np.concatenate([x for x, _ in train]), np.concatenate([y for _, y in train]),
        x_test, y_test, num_classes=10, max_value=255.0,
        description=f"CIFAR-10 (Krizhevsky 2009) (from {found})",
        default_validation=10_000, classes=CIFAR10_CLASSES,
    )
