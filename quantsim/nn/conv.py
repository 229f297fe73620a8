"""2-D convolution (NCHW) as im2col + one GEMM."""

from __future__ import annotations

from typing import Any

import numpy as np

from quantsim.nn import _fused
from quantsim.nn._im2col import col2im, im2col, out_size, pad2d, unpad2d
from quantsim.nn._util import (
    RngLike,
    as_compute,
    as_rng,
    check_input,
    float_dtype,
    init_weights,
    pair,
    positive_int,
)
from quantsim.nn._xp import array_module
from quantsim.nn.base import Array, Backprop, Layer, Param, plain_matmul

__all__ = ["Conv2d"]


class Conv2d(Layer):
    """Cross-correlation of ``(N, C_in, H, W)`` with ``W (C_out, C_in, kh, kw)`` plus ``b (C_out,)``
    -> ``(N, C_out, Ho, Wo)``, ``Ho = (H + 2·ph − kh) // sh + 1`` (zero padding).

    The three GEMMs go through ``q.matmul`` on the im2col matrix ``cols (N·Ho·Wo, C_in·kh·kw)``:
    forward ``cols·Wmᵀ``, backward-weight ``dYmᵀ·cols``, backward-data ``dYm·Wm``.
    """

    prefix = "conv"

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        *,
        rng: RngLike,
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        bias: bool = True,
        init: str = "glorot",
        dtype: Any = np.float32,
        name: str | None = None,
    ) -> None:
        super().__init__(name)
        self.in_channels = positive_int(in_channels, "in_channels")
        self.out_channels = positive_int(out_channels, "out_channels")
        self.kernel_size = pair(kernel_size, "kernel_size")
        self.stride = pair(stride, "stride")
        self.padding = pair(padding, "padding", minimum=0)
        dt = float_dtype(dtype)
        kh, kw = self.kernel_size
        shape = (self.out_channels, self.in_channels, kh, kw)
        self.params["W"] = Param(
            init_weights(as_rng(rng), init, self.in_channels * kh * kw,
                         self.out_channels * kh * kw, shape, dt)
        )
        if bias:
            self.params["b"] = Param(np.zeros((self.out_channels,), dtype=dt))

    def forward(self, X: Array, train: bool) -> tuple[Array, Backprop]:
        W = self.params["W"]
        b = self.params.get("b")
        X = as_compute(X, W.value.dtype)
        check_input(self.name, X, 4, f"(N, {self.in_channels}, H, W)")
        N, C, H, Wd = X.shape
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        if C != self.in_channels:
            raise ValueError(f"{self.name}: expected {self.in_channels} input channels, got {C}")
        Ho, Wo = out_size(H, kh, sh, ph), out_size(Wd, kw, sw, pw)
        if Ho < 1 or Wo < 1:
            raise ValueError(
                f"{self.name}: input {H}x{Wd} is smaller than the kernel {kh}x{kw} "
                f"(padding {ph},{pw}); use a larger input or more padding"
            )
        Xp = pad2d(X, ph, pw)
        cols = im2col(Xp, kh, kw, sh, sw)
        q = self.q
        Wm = q.weights(W.value, tag="W").reshape(self.out_channels, -1)
        Z = q.matmul(cols, Wm.T)
        bq = None if b is None else q.weights(b.value, tag="b")
        if bq is not None and _fused.applies(Z, bq):
            Y = q.activations(_fused.channels_first_plus(Z, bq, (N, self.out_channels, Ho, Wo)))
        else:
            if bq is not None:
                Z += bq  # Z is a fresh product: add in place
            Zt = Z.reshape(N, Ho, Wo, self.out_channels).transpose(0, 3, 1, 2)
            Y = q.activations(array_module(Z).ascontiguousarray(Zt))

        def backprop(dY: Array, input_grad: bool = True) -> Array | None:
            dY = q.errors(dY)
            dYm = dY.transpose(0, 2, 3, 1).reshape(-1, self.out_channels)
            W.add_grad(q.gradients(q.matmul(dYm.T, cols).reshape(W.value.shape), tag="W"))
            if b is not None:
                db = (_fused.channel_sums(dY) if _fused.applies(dY) and dY.size
                      else dYm.sum(axis=0))
                b.add_grad(q.gradients(db, tag="b"))
            if not input_grad and plain_matmul(q, dYm.dtype):
                return None  # the caller does not need dX (the network's input)
            dcols = q.matmul(dYm, Wm)
            dwin = dcols.reshape(N, Ho, Wo, C, kh, kw).transpose(0, 3, 1, 2, 4, 5)
            return unpad2d(col2im(dwin, Xp.shape, sh, sw), ph, pw)

        backprop.input_grad_optional = True  # type: ignore[attr-defined]
        return Y, backprop
