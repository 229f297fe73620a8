"""RawData: a data set as read from disk, before splitting, preprocessing and views."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from quantsim.errors import DataError

__all__ = ["RawData", "check_labels"]


@dataclass(frozen=True)
class RawData:
    """Images in their stored value range, before any preprocessing.

    ``x_*`` are ``(N, C, H, W)`` arrays (uint8 or float, values in ``[0, max_value]``), ``y_*``
    int64 labels in ``[0, num_classes)``. ``default_validation`` is the size of the validation
    split carved from the end of the training set when the caller does not choose one: an
    ``int`` count or a ``float`` fraction.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    max_value: float
    description: str
    default_validation: int | float = 0.1
    classes: tuple[str, ...] | None = None


def check_labels(y: np.ndarray, num_classes: int, n: int, source: str) -> np.ndarray:
    """Labels as a 1-D int64 array of length ``n`` with values in ``[0, num_classes)``."""
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != n:
        raise DataError(f"{source}: expected {n} labels (one per example), got shape {y.shape}.")
    if y.size and not np.issubdtype(y.dtype, np.integer):
        if not np.all(np.mod(y, 1) == 0):
            raise DataError(f"{source}: labels must be integers, got dtype {y.dtype}.")
    y = y.astype(np.int64)
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise DataError(
            f"{source}: labels must lie in [0, {num_classes}), found range "
            f"[{y.min()}, {y.max()}]; the file is corrupt or not this data set."
        )
    return y
