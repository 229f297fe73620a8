"""Lookup table from integer indices to vectors."""

from __future__ import annotations

from typing import Any

import numpy as np

from quantsim.nn._util import RngLike, as_rng, float_dtype, positive_int, uniform
from quantsim.nn._xp import array_module
from quantsim.nn.base import Array, Backprop, Layer, Param

__all__ = ["Embedding"]


class Embedding(Layer):
    """``Y = Wq[X]``: indices ``X`` (any shape, integer dtype, values in [0, num_embeddings)) ->
    ``(*X.shape, dim)``; ``W (num_embeddings, dim)`` initialised U(−0.05, 0.05).

    The weight gradient is a scatter-add of dY rows in index order (no GEMM; on a GPU a kernel
    with numpy's summation order); ``backprop`` returns None since indices have no gradient,
    so an Embedding must be the first layer of a network.
    """

    prefix = "embedding"

    def __init__(
        self,
        num_embeddings: int,
        dim: int,
        *,
        rng: RngLike,
        dtype: Any = np.float32,
        name: str | None = None,
    ) -> None:
        super().__init__(name)
        self.num_embeddings = positive_int(num_embeddings, "num_embeddings")
        self.dim = positive_int(dim, "dim")
        dt = float_dtype(dtype)
        self.params["W"] = Param(uniform(as_rng(rng), 0.05, (self.num_embeddings, dim), dt))

    def forward(self, X: Array, train: bool) -> tuple[Array, Backprop]:
        W = self.params["W"]
        xp = array_module(W.value)
        X = xp.asarray(X)  # indices onto the table's device
        if X.dtype.kind not in "iu":
            raise TypeError(f"{self.name}: expected integer indices, got dtype {X.dtype}")
        if X.size and (int(X.min()) < 0 or int(X.max()) >= self.num_embeddings):
            raise ValueError(
                f"{self.name}: indices must be in [0, {self.num_embeddings}), got values in "
                f"[{int(X.min())}, {int(X.max())}]"
            )
        q = self.q
        Y = q.activations(q.weights(W.value, tag="W")[X])

        def backprop(dY: Array) -> None:
            dY = q.errors(dY)
            dW = xp.zeros_like(W.value)
            if isinstance(dW, np.ndarray):
                np.add.at(dW, X.reshape(-1), dY.reshape(-1, self.dim))
            else:  # the same sums in the same order on the GPU (no atomics)
                from quantsim.kernels.cuda import scatter_add_rows

                scatter_add_rows(dW, X.reshape(-1), dY.reshape(-1, self.dim))
            W.add_grad(q.gradients(dW, tag="W"))
            return None

        return Y, backprop
