"""Preprocessing transforms on flat ``(N, D)`` arrays: fit on the training split, apply to all.

Every transform has ``fit(x_train) -> self`` and ``__call__(x) -> float32 array``. Statistics are
computed in float64 from the array passed to ``fit`` only (the training split), never from the
validation or test splits. Names accepted by :func:`make_pipeline`:

- ``"none"``: nothing; ``"scale"``: divide by the data set's maximum value (to ``[0, 1]``);
- ``"standardize"``: per-feature zero mean, unit variance (constant features are left centred);
- ``"gcn"``: global contrast normalisation, per example (see :class:`GCN`);
- ``"zca"``: ZCA whitening (see :class:`ZCA`);
- ``"maxout"``: ``GCN(scale=55)`` then ``ZCA()``, the CIFAR-10 preprocessing of Goodfellow et
  al. 2013 (pylearn2's ``make_cifar10_gcn_whitened``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from quantsim.errors import DataError

__all__ = [
    "GCN",
    "PREPROCESS_NAMES",
    "ZCA",
    "Identity",
    "Pipeline",
    "Scale",
    "Standardize",
    "Transform",
    "make_pipeline",
]


_CHUNK = 4096  # rows per block: float64 temporaries stay small for 50,000 x 3072 CIFAR-10


def _flat(x: np.ndarray, who: str) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 2:
        raise DataError(f"{who}: expects a flat (N, D) array, got shape {x.shape}.")
    return x


def _blockwise(fn: Callable[[np.ndarray], np.ndarray], x: np.ndarray) -> np.ndarray:
    """``fn`` (float64 rows -> rows) applied block by block into a float32 result."""
    out = np.empty(x.shape, dtype=np.float32)
    for i in range(0, x.shape[0], _CHUNK):
        out[i:i + _CHUNK] = fn(np.asarray(x[i:i + _CHUNK], dtype=np.float64))
    return out


class Transform:
    """Base class: ``fit`` learns statistics from training data, ``__call__`` applies them."""

    def fit(self, x: np.ndarray) -> Transform:
        return self

    def __call__(self, x: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError


@dataclass
class Identity(Transform):
    """No change (values cast to float32)."""

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x, dtype=np.float32)


@dataclass
class Scale(Transform):
    """``x / max_value``: stored pixel values ``[0, max_value]`` -> ``[0, 1]``."""

    max_value: float = 255.0

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return (np.asarray(x, dtype=np.float32) * np.float32(1.0 / self.max_value)).astype(
            np.float32, copy=False)


@dataclass
class Standardize(Transform):
    """Per-feature ``(x - mean) / std`` with mean and std of the training split.

    Features whose training std is below ``eps`` are only centred (divided by 1)."""

    eps: float = 1e-8
    mean: np.ndarray | None = field(default=None, repr=False)
    std: np.ndarray | None = field(default=None, repr=False)

    def fit(self, x: np.ndarray) -> Standardize:
        x = _flat(x, "standardize")
        self.mean = mean = x.mean(axis=0, dtype=np.float64)
        sq = np.zeros(x.shape[1])
        for i in range(0, x.shape[0], _CHUNK):
            sq += ((np.asarray(x[i:i + _CHUNK], dtype=np.float64) - mean) ** 2).sum(axis=0)
        std = np.sqrt(sq / max(x.shape[0], 1))
        self.std = np.where(std < self.eps, 1.0, std)
        return self

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if self.mean is None or self.std is None:
            raise DataError("standardize: call fit(x_train) before applying it.")
        mean, std = self.mean, self.std
        return _blockwise(lambda b: (b - mean) / std, _flat(x, "standardize"))


@dataclass
class GCN(Transform):
    """Global contrast normalisation, per example (pylearn2's ``global_contrast_normalize``).

    Each row is centred to mean 0, then divided by ``sqrt(sqrt_bias + sum(x**2)) / scale``
    (or by ``sqrt(sqrt_bias + var(x)) / scale`` if ``use_std``); divisors below ``min_divisor``
    are replaced by 1. Stateless: ``fit`` learns nothing.
    """

    scale: float = 1.0
    sqrt_bias: float = 0.0
    use_std: bool = False
    min_divisor: float = 1e-8

    def _rows(self, x: np.ndarray) -> np.ndarray:
        x = x - x.mean(axis=1, keepdims=True)
        energy = x.var(axis=1, keepdims=True) if self.use_std else (x * x).sum(1, keepdims=True)
        div = np.sqrt(self.sqrt_bias + energy) / self.scale
        div[div < self.min_divisor] = 1.0
        return x / div

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return _blockwise(self._rows, _flat(x, "gcn"))


@dataclass
class ZCA(Transform):
    """ZCA whitening: ``(x - mean) @ W`` with ``W = U diag(1/sqrt(lambda + bias)) U^T``.

    ``mean`` and the covariance ``C = U diag(lambda) U^T`` (divided by N) come from the training
    split. With ``bias`` small against the eigenvalues, whitened training data has covariance
    close to the identity; ``bias`` regularises directions of tiny variance.
    """

    bias: float = 0.1
    mean: np.ndarray | None = field(default=None, repr=False)
    matrix: np.ndarray | None = field(default=None, repr=False)

    def fit(self, x: np.ndarray) -> ZCA:
        x = _flat(x, "zca")
        if x.shape[0] < 2:
            raise DataError(f"zca: need at least 2 training examples to fit, got {x.shape[0]}.")
        if self.bias < 0:
            raise DataError(f"zca: bias must be >= 0, got {self.bias}.")
        self.mean = mean = x.mean(axis=0, dtype=np.float64)
        cov = np.zeros((x.shape[1], x.shape[1]))
        for i in range(0, x.shape[0], _CHUNK):
            b = np.asarray(x[i:i + _CHUNK], dtype=np.float64) - mean
            cov += b.T @ b
        evals, evecs = np.linalg.eigh(cov / x.shape[0])
        evals = np.clip(evals, 0.0, None)
        if self.bias == 0 and evals.min() <= 0:
            raise DataError("zca: covariance is singular and bias=0; use ZCA(bias=...) > 0.")
        self.matrix = (evecs / np.sqrt(evals + self.bias)) @ evecs.T
        return self

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if self.mean is None or self.matrix is None:
            raise DataError("zca: call fit(x_train) before applying it.")
        mean, matrix = self.mean, self.matrix
        return _blockwise(lambda b: (b - mean) @ matrix, _flat(x, "zca"))


@dataclass
class Pipeline(Transform):
    """Transforms applied in order; ``fit`` fits each on the output of the previous ones."""

    steps: tuple[Transform, ...] = ()

    def fit(self, x: np.ndarray) -> Pipeline:
        for step in self.steps:
            x = step.fit(x)(x)
        return self

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        for step in self.steps:
            x = step(x)
        return x

    def fit_apply(self, x: np.ndarray) -> np.ndarray:
        """Fit on ``x`` and return the transformed ``x`` (one pass through each step)."""
        x = np.asarray(x, dtype=np.float32)
        for step in self.steps:
            x = step.fit(x)(x)
        return x


PREPROCESS_NAMES = ("none", "scale", "standardize", "gcn", "zca", "maxout")


def _named(name: str, max_value: float) -> list[Transform]:
    table: dict[str, list[Transform]] = {
        "none": [],
        "scale": [Scale(max_value)],
        "standardize": [Standardize()],
        "gcn": [GCN()],
        "zca": [ZCA()],
        "maxout": [GCN(scale=55.0), ZCA()],
    }
    key = name.strip().lower().replace("standardise", "standardize")
    if key not in table:
        raise DataError(f"unknown preprocessing {name!r}; known: {', '.join(PREPROCESS_NAMES)} "
                        "(or pass Transform objects, e.g. ZCA(bias=0.01)).")
    return table[key]


def make_pipeline(
    spec: str | Transform | Sequence[str | Transform] | None, max_value: float = 255.0
) -> Pipeline:
    """A pipeline from a name, a transform, or a sequence of them (applied left to right).

    ``"scale+zca"`` is the same as ``("scale", "zca")``; ``max_value`` is what ``"scale"``
    divides by. ``None`` means no preprocessing.
    """
    if spec is None:
        return Pipeline(())
    if isinstance(spec, (str, Transform)):
        spec = spec.split("+") if isinstance(spec, str) else [spec]
    steps: list[Transform] = []
    for item in spec:
        if isinstance(item, Transform):
            steps.append(item)
        elif isinstance(item, str):
            steps += _named(item, max_value)
        else:
            raise DataError(f"preprocessing step {item!r} is neither a name nor a Transform.")
    return Pipeline(tuple(steps))
