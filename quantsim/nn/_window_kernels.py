"""numba kernels for sliding windows over numpy NCHW images: im2col, col2im and max pooling.

numpy runs these as strided 6-D copies and masked products at a few ns per element; the loops
here run once per image in parallel. They do the same float operations as the numpy versions in
`_im2col` and `pooling` (col2im adds the kernel offsets' contributions in the same order), so
results are identical bit for bit (tests/nn/test_window_kernels.py).
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(parallel=True, cache=True)
def _im2col(Xp, kh, kw, sh, sw, cols):
    N, C = Xp.shape[0], Xp.shape[1]
    Ho, Wo = cols.shape[1], cols.shape[2]
    for n in numba.prange(N):
        for ho in range(Ho):
            for wo in range(Wo):
                for c in range(C):
                    for i in range(kh):
                        for j in range(kw):
                            cols[n, ho, wo, c, i, j] = Xp[n, c, ho * sh + i, wo * sw + j]


def im2col(Xp: np.ndarray, kh: int, kw: int, sh: int, sw: int) -> np.ndarray:
    """The windows of a padded ``(N, C, H, W)`` image as a C-contiguous
    ``(N·Ho·Wo, C·kh·kw)`` matrix (rows: output pixels, columns: (channel, offset))."""
    N, C, H, W = Xp.shape
    Ho, Wo = (H - kh) // sh + 1, (W - kw) // sw + 1
    cols = np.empty((N, Ho, Wo, C, kh, kw), dtype=Xp.dtype)
    _im2col(Xp, kh, kw, sh, sw, cols)
    return cols.reshape(N * Ho * Wo, C * kh * kw)


@numba.njit(parallel=True, cache=True)
def _col2im(dwin, sh, sw, out):
    N, C, Ho, Wo, kh, kw = dwin.shape
    for n in numba.prange(N):
        for i in range(kh):
            for j in range(kw):
                for c in range(C):
                    for ho in range(Ho):
                        for wo in range(Wo):
                            out[n, c, ho * sh + i, wo * sw + j] += dwin[n, c, ho, wo, i, j]


def col2im(dwin: np.ndarray, padded_shape: tuple[int, ...], sh: int, sw: int) -> np.ndarray:
    """`_im2col.col2im` for numpy arrays: window gradients ``(N, C, Ho, Wo, kh, kw)`` (any
    strides) summed into zeros of ``padded_shape``, offsets added in row-major order."""
    out = np.zeros(padded_shape, dtype=dwin.dtype)
    _col2im(dwin, sh, sw, out)
    return out


@numba.njit(inline="always")
def _replaces(v, best):
    """Whether window value `v` replaces the running maximum `best` (numpy's argmax: a larger
    value, or the first NaN), without branches."""
    return (v > best) | ((v != v) & (best == best))


@numba.njit(parallel=True, cache=True)
def _max_windows(Xp, kh, kw, sh, sw, idx, y):
    N, C, Ho, Wo = y.shape
    for n in numba.prange(N):
        for c in range(C):
            for ho in range(Ho):
                # One output row at a time with the window offsets outermost, so the inner
                # loop runs along the row (with reading Xp directly: LeNet-5's first pooling
                # 2.0 -> 1.2-1.3 ms, from window by window over a strided view).
                # numpy's argmax: the first maximum, and the first NaN if there is one (once
                # the best value is NaN nothing replaces it).
                best, k_best = y[n, c, ho], idx[n, c, ho]
                row0 = Xp[n, c, ho * sh]
                for wo in range(Wo):
                    best[wo] = row0[wo * sw]
                    k_best[wo] = 0
                for i in range(kh):
                    row = Xp[n, c, ho * sh + i]
                    for j in range(kw):
                        k = i * kw + j
                        for wo in range(Wo):
                            v = row[wo * sw + j]
                            b = best[wo]
                            take = _replaces(v, b)
                            best[wo] = v if take else b
                            k_best[wo] = k if take else k_best[wo]


@numba.njit(parallel=True, cache=True)
def _max_windows_2x2(Xp, idx, y):
    """`_max_windows` for 2x2 windows at stride 2 (most networks' pooling), the four offsets
    written out: LeNet-5's first pooling 1.19 -> 0.63 ms, the same results."""
    N, C, Ho, Wo = y.shape
    for nc in numba.prange(N * C):
        n, c = nc // C, nc % C
        img, ys, ks = Xp[n, c], y[n, c], idx[n, c]
        for ho in range(Ho):
            r0, r1 = img[2 * ho], img[2 * ho + 1]
            yr, kr = ys[ho], ks[ho]
            for wo in range(Wo):
                best, k = r0[2 * wo], 0
                v = r0[2 * wo + 1]
                take = _replaces(v, best)
                best, k = (v, 1) if take else (best, k)
                v = r1[2 * wo]
                take = _replaces(v, best)
                best, k = (v, 2) if take else (best, k)
                v = r1[2 * wo + 1]
                take = _replaces(v, best)
                best, k = (v, 3) if take else (best, k)
                yr[wo] = best
                kr[wo] = k


def max_windows(Xp: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int]
                ) -> tuple[np.ndarray, np.ndarray]:
    """Index (row-major offset) and value of the first maximum of each window of a padded
    ``(N, C, H, W)`` image, as numpy's ``argmax`` over the windows picks it."""
    (kh, kw), (sh, sw) = kernel, stride
    N, C, H, W = Xp.shape
    shape = (N, C, (H - kh) // sh + 1, (W - kw) // sw + 1)
    idx = np.empty(shape, dtype=np.int64)
    y = np.empty(shape, dtype=Xp.dtype)
    if (kh, kw, sh, sw) == (2, 2, 2, 2):
        _max_windows_2x2(Xp, idx, y)
    else:
        _max_windows(Xp, kh, kw, sh, sw, idx, y)
    return idx, y


@numba.njit(parallel=True, cache=True)
def _max_backprop(idx, dY, kh, kw, sh, sw, out):
    N, C, Ho, Wo = dY.shape
    zero = dY.dtype.type(0)
    for n in numba.prange(N):
        for i in range(kh):
            for j in range(kw):
                k = i * kw + j
                for c in range(C):
                    for ho in range(Ho):
                        for wo in range(Wo):
                            d = dY[n, c, ho, wo]
                            # onehot * dY with a boolean onehot: dY where hit, else 0 * dY.
                            out[n, c, ho * sh + i, wo * sw + j] += (
                                d if idx[n, c, ho, wo] == k else zero * d)


def max_backprop(idx: np.ndarray, dY: np.ndarray, kernel: tuple[int, int],
                 stride: tuple[int, int], padded_shape: tuple[int, ...]) -> np.ndarray:
    """The max-pooling error: each window's dY added at its first maximum (and ``0·dY``
    elsewhere, as the one-hot product gives), into zeros of ``padded_shape``."""
    out = np.zeros(padded_shape, dtype=dY.dtype)
    _max_backprop(idx, dY, kernel[0], kernel[1], stride[0], stride[1], out)
    return out
