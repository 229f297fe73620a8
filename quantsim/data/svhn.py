"""SVHN cropped digits from ``train_32x32.mat`` and ``test_32x32.mat`` (MATLAB v5 files).

Each file holds ``X`` (32, 32, 3, N) uint8 and ``y`` (N, 1) with labels 1..10, where 10 means
the digit 0; labels are mapped 10 -> 0.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from quantsim.data.locate import DATA_ENV, candidate_dirs, describe_search, find_dir
from quantsim.data.raw import RawData, check_labels
from quantsim.errors import DataError

__all__ = ["SVHN_FILES", "load_svhn", "read_svhn_mat"]

SVHN_FILES = ("train_32x32.mat", "test_32x32.mat")


def read_svhn_mat(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(N, 3, 32, 32)`` uint8 and labels ``(N,)`` int64 in [0, 10) from one .mat file."""
    import scipy.io

    p = Path(path)
    try:
        mat = scipy.io.loadmat(p)
    except Exception as e:  # scipy raises ValueError, TypeError, OSError... for bad files
        raise DataError(f"{p}: cannot read as a MATLAB file ({type(e).__name__}: {e}). "
                        "Re-download it (SVHN format 2, *_32x32.mat).") from e
    if "X" not in mat or "y" not in mat:
        keys = [k for k in mat if not k.startswith("__")]
        raise DataError(f"{p}: SVHN file must hold variables X and y, found {keys}.")
    x, y = mat["X"], np.asarray(mat["y"]).reshape(-1)
    if x.ndim != 4 or x.shape[:3] != (32, 32, 3):
        raise DataError(f"{p}: X must have shape (32, 32, 3, N), got {x.shape}.")
    if x.dtype != np.uint8:
        raise DataError(f"{p}: X must hold uint8 pixels, got {x.dtype}.")
    y = check_labels(y, 11, x.shape[3], f"{p} y")
    if y.size and y.min() < 1:
        raise DataError(f"{p}: SVHN labels run 1..10 (10 = digit 0), found {y.min()}.")
    y = np.where(y == 10, 0, y)
    return np.ascontiguousarray(np.transpose(x, (3, 2, 0, 1))), y


def load_svhn(data_dir: str | os.PathLike[str] | None = None) -> RawData:
    """SVHN: 73,257 train + 26,032 test 32x32 RGB digit crops (the ``extra`` set is not used)."""
    dirs = candidate_dirs("svhn", data_dir)
    found = find_dir(dirs, SVHN_FILES, gzip_ok=False)
    if found is None:
        where = describe_search(dirs)
        raise DataError(
            f"SVHN not found: looked for {', '.join(SVHN_FILES)} in {where}. Download them "
            "from http://ufldl.stanford.edu/housenumbers/ (format 2), put them in "
            f"${DATA_ENV}/svhn, or pass data_dir= naming their directory."
        )
    x_train, y_train = read_svhn_mat(found / SVHN_FILES[0])
    x_test, y_test = read_svhn_mat(found / SVHN_FILES[1])
    return RawData("svhn", x_train, y_train, x_test, y_test, num_classes=10, max_value=255.0,
                   description=f"SVHN cropped digits (Netzer et al. 2011) (from {found})",
                   default_validation=0.1, classes=tuple(str(i) for i in range(10)))
