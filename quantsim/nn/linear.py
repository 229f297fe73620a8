"""Fully connected layer."""

from __future__ import annotations

from typing import Any

import numpy as np

from quantsim.nn._util import RngLike, as_compute, as_rng, float_dtype, init_weights, positive_int
from quantsim.nn.base import Array, Backprop, Layer, Param, plain_matmul


class Linear(Layer):
    """``Y = X @ W + b`` over the last axis.

    Shapes: X ``(..., in_features)`` -> Y ``(..., out_features)``; ``W`` is
    ``(in_features, out_features)``, ``b`` is ``(out_features,)``. Three GEMMs, all through
    ``q.matmul``: forward ``X·Wq``, backward-data ``dY·Wqᵀ``, backward-weight ``Xᵀ·dY``.
    """

    prefix = "linear"

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        rng: RngLike,
        bias: bool = True,
        init: str = "glorot",
        dtype: Any = np.float32,
        name: str | None = None,
    ) -> None:
        super().__init__(name)
        self.in_features = positive_int(in_features, "in_features")
        self.out_features = positive_int(out_features, "out_features")
        dt = float_dtype(dtype)
        self.params["W"] = Param(
            init_weights(as_rng(rng), init, self.in_features, self.out_features,
                         (self.in_features, self.out_features), dt)
        )
        if bias:
            self.params["b"] = Param(np.zeros((self.out_features,), dtype=dt))

    def forward(self, X: Array, train: bool) -> tuple[Array, Backprop]:
        W = self.params["W"]
        b = self.params.get("b")
        X = as_compute(X, W.value.dtype)
        if X.ndim < 2 or X.shape[-1] != self.in_features:
            raise ValueError(
                f"{self.name}: expected input of shape (N, ..., {self.in_features}), "
                f"got {tuple(X.shape)}"
            )
        lead = X.shape[:-1]
        X2 = X.reshape(-1, self.in_features)
        q = self.q
        Wq = q.weights(W.value, tag="W")
        Z = q.matmul(X2, Wq)
        if b is not None:
            Z += q.weights(b.value, tag="b")  # Z is a fresh product: add in place
        Y = q.activations(Z.reshape(*lead, self.out_features))

        def backprop(dY: Array, input_grad: bool = True) -> Array | None:
            dY2 = q.errors(dY).reshape(-1, self.out_features)
            W.add_grad(q.gradients(q.matmul(X2.T, dY2), tag="W"))
            if b is not None:
                b.add_grad(q.gradients(dY2.sum(axis=0), tag="b"))
            if not input_grad and plain_matmul(q, dY2.dtype):
                return None  # the caller does not need dX (the network's input)
            return q.matmul(dY2, Wq.T).reshape(X.shape)

        backprop.input_grad_optional = True  # type: ignore[attr-defined]
        return Y, backprop
