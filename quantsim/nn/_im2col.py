"""Sliding windows over NCHW images (im2col as a strided view) and the scatter back (col2im).

No Python loop runs over pixels: the forward side is a zero-copy view, the backward side loops
only over the kh·kw kernel offsets, each a vectorised strided add. Both work on numpy and CuPy
arrays (CuPy's ``as_strided`` has no ``writeable`` flag; nothing writes into the view).
"""

from __future__ import annotations

import numpy as np

from quantsim.nn import _window_kernels
from quantsim.nn._xp import array_module
from quantsim.nn.base import Array


def out_size(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


def pad2d(X: Array, ph: int, pw: int, value: float = 0.0) -> Array:
    if ph == 0 and pw == 0:
        return X
    return array_module(X).pad(X, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=value)


def im2col(Xp: Array, kh: int, kw: int, sh: int, sw: int) -> Array:
    """The windows as a ``(N·Ho·Wo, C·kh·kw)`` matrix (rows: output pixels in (n, ho, wo)
    order; columns: (channel, offset)); a numba copy for numpy arrays."""
    if isinstance(Xp, np.ndarray) and Xp.dtype in (np.float32, np.float64):
        return _window_kernels.im2col(Xp, kh, kw, sh, sw)
    win = windows(Xp, kh, kw, sh, sw)
    N, _, Ho, Wo, _, _ = win.shape
    return win.transpose(0, 2, 3, 1, 4, 5).reshape(N * Ho * Wo, -1)


def windows(Xp: Array, kh: int, kw: int, sh: int, sw: int) -> Array:
    """Read-only view ``(N, C, Ho, Wo, kh, kw)`` of the windows of a (padded) ``(N, C, H, W)``."""
    N, C, H, W = Xp.shape
    Ho = (H - kh) // sh + 1
    Wo = (W - kw) // sw + 1
    s0, s1, s2, s3 = Xp.strides
    shape = (N, C, Ho, Wo, kh, kw)
    strides = (s0, s1, s2 * sh, s3 * sw, s2, s3)
    if isinstance(Xp, np.ndarray):
        return np.lib.stride_tricks.as_strided(Xp, shape=shape, strides=strides, writeable=False)
    return array_module(Xp).lib.stride_tricks.as_strided(Xp, shape=shape, strides=strides)


def col2im(dwin: Array, padded_shape: tuple[int, ...], sh: int, sw: int) -> Array:
    """Adjoint of :func:`windows`: sum window gradients ``(N, C, Ho, Wo, kh, kw)`` into an array
    of ``padded_shape`` (overlapping windows add up)."""
    if isinstance(dwin, np.ndarray) and dwin.dtype in (np.float32, np.float64):
        return _window_kernels.col2im(dwin, padded_shape, sh, sw)  # same sums, one pass
    return col2im_xp(dwin, padded_shape, sh, sw)


def col2im_xp(dwin: Array, padded_shape: tuple[int, ...], sh: int, sw: int) -> Array:
    """:func:`col2im` with array operations only (CuPy; the definition the kernel follows)."""
    _, _, Ho, Wo, kh, kw = dwin.shape
    dXp = array_module(dwin).zeros(padded_shape, dtype=dwin.dtype)
    for i in range(kh):
        for j in range(kw):
            dXp[:, :, i : i + sh * Ho : sh, j : j + sw * Wo : sw] += dwin[:, :, :, :, i, j]
    return dXp


def unpad2d(dXp: Array, ph: int, pw: int) -> Array:
    if ph == 0 and pw == 0:
        return dXp
    H, W = dXp.shape[2], dXp.shape[3]
    return dXp[:, :, ph : H - ph, pw : W - pw]
