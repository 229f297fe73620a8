"""MNIST and Fashion-MNIST from their IDX files (``*-idx3-ubyte[.gz]``, ``*-idx1-ubyte[.gz]``)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from quantsim.data.idx import read_idx
from quantsim.data.locate import (
    DATA_ENV,
    candidate_dirs,
    debian_package_dirs,
    describe_search,
    find_dir,
    find_file,
)
from quantsim.data.raw import RawData, check_labels
from quantsim.errors import DataError

__all__ = [
    "FASHION_CLASSES",
    "FASHION_PACKAGE",
    "MNIST_FILES",
    "find_fashion_mnist",
    "load_fashion_mnist",
    "load_mnist",
    "read_idx_pair",
]

#: Standard file names (each may also end in ``.gz``): train images, train labels, test ...
MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
FASHION_PACKAGE = "dataset-fashion-mnist"
FASHION_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)


def read_idx_pair(images: Path, labels: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(N, 1, H, W)`` uint8 and labels ``(N,)`` int64 in [0, 10) from two IDX files."""
    x = read_idx(images, expect_ndim=3)
    if x.dtype != np.uint8:
        raise DataError(f"{images}: image IDX file holds {x.dtype}, expected unsigned bytes.")
    y = read_idx(labels, expect_ndim=1)
    if y.shape[0] != x.shape[0]:
        raise DataError(
            f"{labels}: {y.shape[0]} labels for {x.shape[0]} images in {images}; "
            "the two files do not belong together."
        )
    return x[:, None, :, :], check_labels(y, 10, x.shape[0], str(labels))


def _load_dir(directory: Path, name: str, description: str,
              classes: tuple[str, ...] | None) -> RawData:
    paths = [find_file(directory, f) for f in MNIST_FILES]
    if any(p is None for p in paths):
        raise DataError(f"{directory}: missing one of {', '.join(MNIST_FILES)} (or .gz).")
    x_train, y_train = read_idx_pair(paths[0], paths[1])
    x_test, y_test = read_idx_pair(paths[2], paths[3])
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DataError(f"{directory}: train images {x_train.shape[2:]} and test images "
                        f"{x_test.shape[2:]} differ in size.")
    return RawData(name, x_train, y_train, x_test, y_test, num_classes=10, max_value=255.0,
                   description=f"{description} (from {directory})",
                   default_validation=10_000 if len(x_train) > 20_000 else 0.1, classes=classes)


def find_fashion_mnist(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The directory holding the four Fashion-MNIST IDX files (see :mod:`quantsim.data.locate`)."""
    extra = debian_package_dirs(FASHION_PACKAGE, MNIST_FILES[0], "fashion-mnist")
    dirs = candidate_dirs("fashion-mnist", data_dir, extra if data_dir is None else ())
    found = find_dir(dirs, MNIST_FILES)
    if found is None:
        raise DataError(
            "Fashion-MNIST not found: looked for "
            f"{', '.join(MNIST_FILES)} (plain or .gz) in {describe_search(dirs)}. "
            f"Install it with `sudo apt-get install {FASHION_PACKAGE}`, or put the four files in "
            f"a directory and set {DATA_ENV} to it (or to its parent, as "
            f"${DATA_ENV}/fashion-mnist), or pass data_dir=."
        )
    return found


def load_fashion_mnist(data_dir: str | os.PathLike[str] | None = None) -> RawData:
    """Fashion-MNIST: 60,000 train + 10,000 test 28x28 grey images, 10 clothing classes."""
    d = find_fashion_mnist(data_dir)
    return _load_dir(d, "fashion-mnist", "Fashion-MNIST (Xiao et al. 2017)", FASHION_CLASSES)


def load_mnist(data_dir: str | os.PathLike[str] | None = None) -> RawData:
    """MNIST from ``data_dir`` (or ``data_dir/mnist``) or ``$QUANTSIM_DATA/mnist``."""
    dirs = candidate_dirs("mnist", data_dir)
    found = find_dir(dirs, MNIST_FILES)
    if found is None:
        where = describe_search(dirs)
        raise DataError(
            f"MNIST not found: looked for {', '.join(MNIST_FILES)} (plain or .gz) in {where}. "
            "Download the four files from http://yann.lecun.com/exdb/mnist/ (or a mirror), put "
            f"them in ${DATA_ENV}/mnist, or pass data_dir= naming their directory."
        )
    return _load_dir(found, "mnist", "MNIST handwritten digits (LeCun et al. 1998)",
                     tuple(str(i) for i in range(10)))
