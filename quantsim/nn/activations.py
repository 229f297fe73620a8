"""Element-wise nonlinearities: separate layers so pre- (z) and post-nonlinearity (y) values are
both quantized (Courbariaux et al. 2015). They compute in the dtype of their input."""

from __future__ import annotations

from quantsim.nn import _fused
from quantsim.nn._xp import array_module
from quantsim.nn.base import Array, Backprop, Layer

__all__ = ["ReLU", "Sigmoid", "Tanh", "sigmoid"]


def sigmoid(x: Array) -> Array:
    """Numerically stable logistic function (no overflow warnings for large |x|)."""
    xp = array_module(x)
    e = xp.exp(-xp.abs(x))
    if not (isinstance(e, xp.ndarray) and e.ndim and e.dtype == x.dtype):
        return xp.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(x.dtype, copy=False)
    # The same operations as above with fewer temporaries: d = 1 + e is formed once.
    d = 1.0 + e
    xp.divide(e, d, out=e)  # e / (1 + e) where x < 0
    xp.divide(1.0, d, out=d)  # 1 / (1 + e) where x >= 0
    xp.copyto(e, d, where=x >= 0)
    return e


class ReLU(Layer):
    """``y = max(x, 0)``; the derivative at 0 is taken as 0."""

    prefix = "relu"

    def forward(self, X: Array, train: bool) -> tuple[Array, Backprop]:
        q = self.q
        xp = array_module(X)
        if _fused.applies(X):
            Z, mask = _fused.relu(X)
        else:
            mask = X > 0
            Z = xp.where(mask, X, xp.zeros((), dtype=X.dtype))
        Y = q.activations(Z)

        def backprop(dY: Array) -> Array:
            dY = q.errors(dY)
            if _fused.applies(dY) and dY.shape == mask.shape:
                return _fused.select(mask, dY)
            return xp.where(mask, dY, xp.zeros((), dtype=dY.dtype))

        return Y, backprop


class Tanh(Layer):
    """``y = tanh(x)``; the backward pass uses the (quantized) output: dx = dy·(1 − y²)."""

    prefix = "tanh"

    def forward(self, X: Array, train: bool) -> tuple[Array, Backprop]:
        q = self.q
        Y = q.activations(array_module(X).tanh(X))

        def backprop(dY: Array) -> Array:
            return q.errors(dY) * (1 - Y * Y)

        return Y, backprop


class Sigmoid(Layer):
    """``y = 1 / (1 + e^-x)``; the backward pass uses the (quantized) output: dx = dy·y(1 − y)."""

    prefix = "sigmoid"

    def forward(self, X: Array, train: bool) -> tuple[Array, Backprop]:
        q = self.q
        Y = q.activations(sigmoid(X))

        def backprop(dY: Array) -> Array:
            return q.errors(dY) * (Y * (1 - Y))

        return Y, backprop
