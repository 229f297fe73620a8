"""Small layers the workloads need beyond ``quantsim.nn``: masking noise (denoising
autoencoders), an L1 activity penalty and a thresholded ReLU (sparse autoencoders).

They follow the ``quantsim.nn`` layer contract: ``forward(X, train) -> (Y, backprop)``, outputs
through ``q.activations`` and incoming errors through ``q.errors``, and compute with the array
module of their input (numpy or cupy).
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np

from quantsim.nn import Layer
from quantsim.nn._xp import array_module

__all__ = ["ActivityL1", "MaskingNoise", "ThresholdReLU", "seed_from"]


def seed_from(rng: np.random.Generator) -> int:
    """A non-negative int seed drawn from the builder's generator (for Dropout-like layers)."""
    return int(rng.integers(0, 2**31 - 1))


class MaskingNoise(Layer):
    """Denoising-autoencoder corruption (Vincent et al. 2008): in training, each input element is
    set to 0 with probability ``p`` (no rescaling); identity at evaluation.

    The k-th training call draws its mask from ``default_rng([seed, crc32(name), k])``; the call
    counter is a buffer, so resumed runs draw the same masks.
    """

    prefix = "noise"

    def __init__(self, p: float, *, seed: int, name: str | None = None) -> None:
        super().__init__(name)
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p < 1.0:
            raise ValueError(f"MaskingNoise p={p!r}: the corruption level must be in [0, 1)")
        self.p = float(p)
        self.seed = int(seed)
        self._buffers["calls"] = np.zeros((), dtype=np.int64)

    def forward(self, X: Any, train: bool) -> tuple[Any, Any]:
        q = self.q
        if not train or self.p == 0.0:
            return X, q.errors
        calls = int(self._buffers["calls"])
        self._buffers["calls"] = np.asarray(calls + 1, dtype=np.int64)
        rng = np.random.default_rng([self.seed, zlib.crc32(self.name.encode()), calls])
        keep = (rng.random(X.shape) >= self.p).astype(X.dtype)
        keep = array_module(X).asarray(keep)  # drawn on the host: the same mask on any device
        Y = q.activations(X * keep)

        def backprop(dY: Any) -> Any:
            return q.errors(dY) * keep

        return Y, backprop


class ActivityL1(Layer):
    """Identity forward; adds the gradient of ``weight * mean_n sum_j |h_nj|`` in backward
    (an L1 sparsity penalty on the activations that pass through, Ng's sparse coding style).

    The penalty is not part of the loss the trainer reports (that stays the reconstruction MSE).
    """

    prefix = "l1"

    def __init__(self, weight: float, *, name: str | None = None) -> None:
        super().__init__(name)
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight < 0:
            raise ValueError(f"ActivityL1 weight={weight!r}: expected a number >= 0")
        self.weight = float(weight)

    def forward(self, X: Any, train: bool) -> tuple[Any, Any]:
        q = self.q
        sign = array_module(X).sign(X).astype(X.dtype, copy=False)
        scale = X.dtype.type(self.weight / max(len(X), 1))

        def backprop(dY: Any) -> Any:
            return q.errors(dY + scale * sign)

        return X, backprop


class ThresholdReLU(Layer):
    """``y = x if x > theta else 0`` (the thresholded rectifier of Konda et al. 2015's
    zero-bias autoencoders); the derivative is 1 where ``x > theta`` and 0 elsewhere."""

    prefix = "trelu"

    def __init__(self, theta: float = 1.0, *, name: str | None = None) -> None:
        super().__init__(name)
        if isinstance(theta, bool) or not isinstance(theta, (int, float)):
            raise ValueError(f"ThresholdReLU theta={theta!r}: expected a number")
        self.theta = float(theta)

    def forward(self, X: Any, train: bool) -> tuple[Any, Any]:
        q = self.q
        xp = array_module(X)
        mask = X > X.dtype.type(self.theta)
        Y = q.activations(xp.where(mask, X, xp.zeros((), dtype=X.dtype)))

        def backprop(dY: Any) -> Any:
            dY = q.errors(dY)
            return xp.where(mask, dY, xp.zeros((), dtype=dY.dtype))

        return Y, backprop
