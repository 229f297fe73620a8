"""Batch normalisation (Ioffe & Szegedy 2015) with running statistics for evaluation."""

from __future__ import annotations

from typing import Any

import numpy as np

from quantsim.nn._util import as_compute, float_dtype, positive_int
from quantsim.nn._xp import array_module
from quantsim.nn.base import Array, Backprop, Layer, Param

__all__ = ["BatchNorm1d", "BatchNorm2d"]


class _BatchNorm(Layer):
    _axes: tuple[int, ...]
    _ndim: int
    _layout: str

    def __init__(
        self,
        num_features: int,
        *,
        eps: float = 1e-5,
        momentum: float = 0.1,
        dtype: Any = np.float32,
        name: str | None = None,
    ) -> None:
        super().__init__(name)
        self.num_features = positive_int(num_features, "num_features")
        if not 0.0 < momentum <= 1.0:
            raise ValueError(f"momentum={momentum!r}: expected a value in (0, 1]")
        if not eps > 0.0:
            raise ValueError(f"eps={eps!r}: expected a positive value")
        self.eps = float(eps)
        self.momentum = float(momentum)
        dt = float_dtype(dtype)
        self.params["gamma"] = Param(np.ones((self.num_features,), dtype=dt))
        self.params["beta"] = Param(np.zeros((self.num_features,), dtype=dt))
        self._buffers["running_mean"] = np.zeros((self.num_features,), dtype=dt)
        self._buffers["running_var"] = np.ones((self.num_features,), dtype=dt)

    def _bshape(self) -> tuple[int, ...]:
        return (1, self.num_features) + (1,) * (self._ndim - 2)

    def forward(self, X: Array, train: bool) -> tuple[Array, Backprop]:
        gamma, beta = self.params["gamma"], self.params["beta"]
        X = as_compute(X, gamma.value.dtype)
        if X.ndim != self._ndim or X.shape[1] != self.num_features:
            raise ValueError(
                f"{self.name}: expected input of shape {self._layout}, got {tuple(X.shape)}"
            )
        axes, bshape = self._axes, self._bshape()
        M = X.size // self.num_features
        if train:
            if M < 2:
                raise ValueError(
                    f"{self.name}: training needs more than one value per feature to estimate "
                    f"a variance, got input {tuple(X.shape)}; use a larger batch"
                )
            mean = X.mean(axis=axes)
            var = X.var(axis=axes)
            m = self.momentum
            rm, rv = self._buffers["running_mean"], self._buffers["running_var"]
            self._buffers["running_mean"] = ((1 - m) * rm + m * mean).astype(rm.dtype)
            # The running variance is the unbiased estimate (as PyTorch and Keras keep it).
            self._buffers["running_var"] = ((1 - m) * rv + m * var * (M / (M - 1))).astype(
                rv.dtype
            )
        else:
            mean = self._buffers["running_mean"]
            var = self._buffers["running_var"]
        inv_std = (1.0 / array_module(X).sqrt(var + self.eps)).astype(X.dtype).reshape(bshape)
        xhat = (X - mean.reshape(bshape)) * inv_std
        q = self.q
        gq = q.weights(gamma.value, tag="gamma").reshape(bshape)
        Y = q.activations(gq * xhat + q.weights(beta.value, tag="beta").reshape(bshape))

        def backprop(dY: Array) -> Array:
            dY = q.errors(dY)
            gamma.add_grad(q.gradients((dY * xhat).sum(axis=axes), tag="gamma"))
            beta.add_grad(q.gradients(dY.sum(axis=axes), tag="beta"))
            dxhat = dY * gq
            if not train:
                return dxhat * inv_std
            return inv_std * (
                dxhat
                - dxhat.mean(axis=axes, keepdims=True)
                - xhat * (dxhat * xhat).mean(axis=axes, keepdims=True)
            )

        return Y, backprop


class BatchNorm1d(_BatchNorm):
    """Normalise each feature of ``(N, F)`` over the batch; ``gamma, beta (F,)``; buffers
    ``running_mean, running_var (F,)`` used at evaluation."""

    prefix = "batchnorm"
    _axes = (0,)
    _ndim = 2
    _layout = "(N, F)"


class BatchNorm2d(_BatchNorm):
    """Normalise each channel of ``(N, C, H, W)`` over batch and pixels; ``gamma, beta (C,)``;
    buffers ``running_mean, running_var (C,)`` used at evaluation."""

    prefix = "batchnorm"
    _axes = (0, 2, 3)
    _ndim = 4
    _layout = "(N, C, H, W)"
