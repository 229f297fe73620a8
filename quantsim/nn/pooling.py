"""Max and average pooling over NCHW images."""

from __future__ import annotations

import numpy as np

from quantsim.nn import _window_kernels
from quantsim.nn._im2col import col2im, out_size, pad2d, unpad2d, windows
from quantsim.nn._util import check_input, pair
from quantsim.nn._xp import array_module
from quantsim.nn.base import Array, Backprop, Layer

__all__ = ["AvgPool2d", "MaxPool2d"]


class _Pool2d(Layer):
    def __init__(
        self,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] | None = None,
        padding: int | tuple[int, int] = 0,
        *,
        name: str | None = None,
    ) -> None:
        super().__init__(name)
        self.kernel_size = pair(kernel_size, "kernel_size")
        self.stride = self.kernel_size if stride is None else pair(stride, "stride")
        self.padding = pair(padding, "padding", minimum=0)
        if any(2 * p > k for p, k in zip(self.padding, self.kernel_size, strict=True)):
            raise ValueError(
                f"padding={padding!r}: must be at most half the kernel {self.kernel_size}"
            )

    def _windows(self, X: Array, pad_value: float) -> tuple[Array, Array]:
        check_input(self.name, X, 4, "(N, C, H, W)")
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        if out_size(X.shape[2], kh, sh, ph) < 1 or out_size(X.shape[3], kw, sw, pw) < 1:
            raise ValueError(
                f"{self.name}: input {X.shape[2]}x{X.shape[3]} is smaller than the kernel {kh}x{kw}"
            )
        Xp = pad2d(X, ph, pw, pad_value)
        return Xp, windows(Xp, kh, kw, sh, sw)


class MaxPool2d(_Pool2d):
    """Maximum over ``kernel_size`` windows (``stride`` defaults to the kernel; padding is −inf).

    The output size is floored (trailing rows/columns that do not fill a window are dropped).
    The error goes to the first maximum of each window (row-major), as a hardware argmax would.
    """

    prefix = "maxpool"

    def forward(self, X: Array, train: bool) -> tuple[Array, Backprop]:
        xp = array_module(X)
        Xp, win = self._windows(X, -float("inf"))
        N, C, Ho, Wo, kh, kw = win.shape
        q = self.q
        fast = isinstance(X, np.ndarray) and X.dtype in (np.float32, np.float64)
        if fast:
            idx, Y = _window_kernels.max_windows(Xp, (kh, kw), self.stride)
            Y = q.activations(Y)
        else:
            flat = win.reshape(N, C, Ho, Wo, kh * kw)
            idx = flat.argmax(axis=-1)
            Y = q.activations(xp.take_along_axis(flat, idx[..., None], axis=-1)[..., 0])

        def backprop(dY: Array) -> Array:
            dY = q.errors(dY)
            if fast and isinstance(dY, np.ndarray) and dY.dtype == X.dtype:
                dXp = _window_kernels.max_backprop(idx, dY, (kh, kw), self.stride, Xp.shape)
                return unpad2d(dXp, *self.padding)
            onehot = xp.arange(kh * kw) == idx[..., None]
            dwin = (onehot * dY[..., None]).reshape(N, C, Ho, Wo, kh, kw)
            return unpad2d(col2im(dwin, Xp.shape, *self.stride), *self.padding)

        return Y, backprop


class AvgPool2d(_Pool2d):
    """Mean over ``kernel_size`` windows (``stride`` defaults to the kernel; zero padding counts
    in the mean). The output size is floored."""

    prefix = "avgpool"

    def forward(self, X: Array, train: bool) -> tuple[Array, Backprop]:
        xp = array_module(X)
        Xp, win = self._windows(X, 0.0)
        N, C, Ho, Wo, kh, kw = win.shape
        q = self.q
        Y = q.activations(win.mean(axis=(-2, -1)))

        def backprop(dY: Array) -> Array:
            dY = q.errors(dY)
            share = (dY / (kh * kw)).astype(dY.dtype, copy=False)
            dwin = xp.broadcast_to(share[..., None, None], (N, C, Ho, Wo, kh, kw))
            return unpad2d(col2im(dwin, Xp.shape, *self.stride), *self.padding)

        return Y, backprop
