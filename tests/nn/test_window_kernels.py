"""The numba window kernels (quantsim.nn._window_kernels) give the numpy definitions' bits."""

from __future__ import annotations

import numpy as np
import pytest

from quantsim.nn import _window_kernels
from quantsim.nn._im2col import col2im_xp, pad2d, windows

GEOMETRIES = [  # (N, C, H, W, kh, kw, sh, sw, ph, pw)
    (2, 1, 7, 6, 5, 5, 1, 1, 2, 2),
    (3, 2, 8, 9, 3, 2, 2, 1, 1, 0),
    (2, 3, 6, 6, 2, 2, 2, 2, 0, 0),
    (1, 2, 7, 7, 3, 3, 2, 2, 1, 1),
    (2, 2, 7, 9, 2, 2, 2, 2, 1, 0),  # the 2x2 stride-2 kernel: odd sizes, padding
]


def _images(shape, dtype, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    flat = x.reshape(-1)
    flat[::7] = 0.0
    flat[3::11] = -0.0
    flat[5::13] = np.round(flat[5::13])  # ties inside windows
    return x


def _bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a).view(np.uint32 if a.dtype == np.float32 else np.uint64)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("geo", GEOMETRIES)
def test_im2col_and_col2im_match_numpy(geo, dtype):
    N, C, H, W, kh, kw, sh, sw, ph, pw = geo
    Xp = pad2d(_images((N, C, H, W), dtype), ph, pw)
    win = windows(Xp, kh, kw, sh, sw)
    _, _, Ho, Wo, _, _ = win.shape
    want = win.transpose(0, 2, 3, 1, 4, 5).reshape(N * Ho * Wo, -1)
    np.testing.assert_array_equal(_bits(_window_kernels.im2col(Xp, kh, kw, sh, sw)), _bits(want))
    dcols = _images(want.shape, dtype, seed=1)
    dwin = dcols.reshape(N, Ho, Wo, C, kh, kw).transpose(0, 3, 1, 2, 4, 5)
    got = _window_kernels.col2im(dwin, Xp.shape, sh, sw)
    np.testing.assert_array_equal(_bits(got), _bits(col2im_xp(dwin, Xp.shape, sh, sw)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("geo", GEOMETRIES)
def test_max_pooling_kernels_match_argmax_and_onehot(geo, dtype):
    N, C, H, W, kh, kw, sh, sw, ph, pw = geo
    X = _images((N, C, H, W), dtype)
    X.reshape(-1)[2::17] = np.nan
    Xp = pad2d(X, ph, pw, -np.inf)
    win = windows(Xp, kh, kw, sh, sw)
    shape = win.shape
    flat = win.reshape(*shape[:4], kh * kw)
    idx_want = flat.argmax(axis=-1)
    idx, y = _window_kernels.max_windows(Xp, (kh, kw), (sh, sw))
    np.testing.assert_array_equal(idx, idx_want)
    y_want = np.take_along_axis(flat, idx_want[..., None], axis=-1)[..., 0]
    np.testing.assert_array_equal(_bits(y), _bits(y_want))
    dY = _images(shape[:4], dtype, seed=2)
    dY.reshape(-1)[1::9] = np.nan
    onehot = np.arange(kh * kw) == idx_want[..., None]
    dwin = (onehot * dY[..., None]).reshape(shape)
    want = col2im_xp(dwin, Xp.shape, sh, sw)
    got = _window_kernels.max_backprop(idx, dY, (kh, kw), (sh, sw), Xp.shape)
    np.testing.assert_array_equal(_bits(got), _bits(want))
