"""Maxout (Goodfellow et al. 2013): the maximum over groups of ``pieces`` linear units.

Grouping convention: unit ``u`` owns the contiguous features/channels ``u·k … u·k + k − 1``.
Dense maxout is :class:`Maxout`; convolutional maxout composes ``Conv2d(c_in, units·k, ...)``
with :class:`MaxoutPool`, which reduces the channel axis.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from quantsim.nn._util import RngLike, as_compute, as_rng, float_dtype, init_weights, positive_int
from quantsim.nn._xp import array_module
from quantsim.nn.base import Array, Backprop, Layer, Param

__all__ = ["Maxout", "MaxoutPool"]


def _group_max(Z: Array, pieces: int) -> tuple[Array, Array]:
    """``Z (N, U·k, ...)`` -> (max ``(N, U, ...)``, argmax over the k pieces ``(N, U, ...)``)."""
    G = Z.reshape(Z.shape[0], Z.shape[1] // pieces, pieces, *Z.shape[2:])
    idx = G.argmax(axis=2)
    return array_module(Z).take_along_axis(G, idx[:, :, None], axis=2)[:, :, 0], idx


def _group_scatter(dY: Array, idx: Array, pieces: int) -> Array:
    """Adjoint of :func:`_group_max`: dY ``(N, U, ...)`` to the winning piece, ``(N, U·k, ...)``."""
    shape = (1, 1, pieces) + (1,) * (dY.ndim - 2)
    onehot = array_module(dY).arange(pieces).reshape(shape) == idx[:, :, None]
    dG = onehot * dY[:, :, None]
    return dG.reshape(dY.shape[0], dY.shape[1] * pieces, *dY.shape[2:])


class MaxoutPool(Layer):
    """Max over groups of ``pieces`` along axis 1: ``(N, U·k, ...) -> (N, U, ...)``.

    After a Conv2d this is convolutional maxout; after a Linear it is dense maxout with a
    separately named linear layer. The error goes to the first maximum of each group.
    """

    prefix = "maxoutpool"

    def __init__(self, pieces: int, *, name: str | None = None) -> None:
        super().__init__(name)
        self.pieces = positive_int(pieces, "pieces")

    def forward(self, X: Array, train: bool) -> tuple[Array, Backprop]:
        if X.ndim < 2 or X.shape[1] % self.pieces:
            raise ValueError(
                f"{self.name}: axis 1 of input {tuple(X.shape)} must be a multiple of "
                f"pieces={self.pieces}"
            )
        q = self.q
        Ym, idx = _group_max(X, self.pieces)
        Y = q.activations(Ym)

        def backprop(dY: Array) -> Array:
            return _group_scatter(q.errors(dY), idx, self.pieces)

        return Y, backprop


class Maxout(Layer):
    """Dense maxout: ``z = X @ W + b`` with ``units·pieces`` outputs, ``y = max over pieces``.

    Shapes: X ``(N, in_features)`` -> Y ``(N, units)``; ``W (in_features, units·pieces)``,
    ``b (units·pieces,)``. Both z and y go through ``activations``; both dE/dy and dE/dz
    through ``errors`` (they are separate tensors on hardware).
    """

    prefix = "maxout"

    def __init__(
        self,
        in_features: int,
        units: int,
        pieces: int,
        *,
        rng: RngLike,
        init: str = "glorot",
        dtype: Any = np.float32,
        name: str | None = None,
    ) -> None:
        super().__init__(name)
        self.in_features = positive_int(in_features, "in_features")
        self.units = positive_int(units, "units")
        self.pieces = positive_int(pieces, "pieces")
        dt = float_dtype(dtype)
        width = self.units * self.pieces
        self.params["W"] = Param(
            init_weights(as_rng(rng), init, self.in_features, width,
                         (self.in_features, width), dt)
        )
        self.params["b"] = Param(np.zeros((width,), dtype=dt))

    def forward(self, X: Array, train: bool) -> tuple[Array, Backprop]:
        W, b = self.params["W"], self.params["b"]
        X = as_compute(X, W.value.dtype)
        if X.ndim != 2 or X.shape[1] != self.in_features:
            raise ValueError(
                f"{self.name}: expected input of shape (N, {self.in_features}), "
                f"got {tuple(X.shape)}"
            )
        q = self.q
        Wq = q.weights(W.value, tag="W")
        Z = q.activations(q.matmul(X, Wq) + q.weights(b.value, tag="b"))
        Ym, idx = _group_max(Z, self.pieces)
        Y = q.activations(Ym)

        def backprop(dY: Array) -> Array:
            dZ = q.errors(_group_scatter(q.errors(dY), idx, self.pieces))
            W.add_grad(q.gradients(q.matmul(X.T, dZ), tag="W"))
            b.add_grad(q.gradients(dZ.sum(axis=0), tag="b"))
            return q.matmul(dZ, Wq.T)

        return Y, backprop
