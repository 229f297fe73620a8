"""One-pass numba kernels for the engine's element-wise work on numpy arrays.

numpy's masked operations (``where`` with a mask, ``copyto(..., where=)``) run at a few ns per
element and every numpy expression makes a temporary; these kernels do the same float
operations, in the same order and precision, in one vectorised pass (the tests compare bits).
Each takes C-contiguous arrays of one float dtype; `applies` says whether they do.
"""

from __future__ import annotations

import numba
import numpy as np

from quantsim.kernels.cpu import launch

#: Elements per partial sum in `sum_squares` (fixed, so the result does not depend on threads).
SUM_CHUNK = 1 << 14
_WAYS = 8


def applies(*arrays: object) -> bool:
    """True when every argument is a C-contiguous numpy float32/float64 array of one dtype."""
    first = arrays[0]
    if not isinstance(first, np.ndarray) or first.dtype not in (np.float32, np.float64):
        return False
    return all(isinstance(a, np.ndarray) and a.dtype == first.dtype and a.flags.c_contiguous
               for a in arrays)


@numba.njit(parallel=True, cache=True)
def _relu(x, y, mask):
    zero = x.dtype.type(0)
    for i in numba.prange(x.size):
        pos = x[i] > zero
        mask[i] = pos
        y[i] = x[i] if pos else zero


@numba.njit(parallel=True, cache=True)
def _select(mask, d, out):
    zero = d.dtype.type(0)
    for i in numba.prange(d.size):
        out[i] = d[i] if mask[i] else zero


@numba.njit(parallel=True, cache=True)
def _momentum(w, v, g, lr, mu):
    for i in numba.prange(w.size):
        vi = mu * v[i] - lr * g[i]
        v[i] = vi
        w[i] = w[i] + vi


@numba.njit(parallel=True, cache=True)
def _momentum_state(v, g, lr, mu, out):
    for i in numba.prange(v.size):
        out[i] = mu * v[i] - lr * g[i]


@numba.njit(parallel=True, cache=True)
def _sum_squares(x, partial):
    n = x.size
    for c in numba.prange(partial.size):
        # _WAYS independent sums (element i into sum i % _WAYS), added in order at the end.
        acc = np.zeros(_WAYS)
        i0 = c * SUM_CHUNK
        i1 = min(n, i0 + SUM_CHUNK)
        full = i0 + (i1 - i0) // _WAYS * _WAYS
        for i in range(i0, full, _WAYS):
            for k in range(_WAYS):
                v = np.float64(x[i + k])
                acc[k] += v * v
        for i in range(full, i1):
            v = np.float64(x[i])
            acc[0] += v * v
        total = 0.0
        for k in range(_WAYS):
            total += acc[k]
        partial[c] = total


def relu(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(where(x > 0, x, 0), x > 0)`` in one pass (NaN and -0.0 give +0.0)."""
    y = np.empty_like(x)
    mask = np.empty(x.shape, dtype=np.bool_)
    launch(_relu, x.size, x.reshape(-1), y.reshape(-1), mask.reshape(-1))
    return y, mask


def select(mask: np.ndarray, d: np.ndarray) -> np.ndarray:
    """``where(mask, d, 0)`` in one pass."""
    out = np.empty_like(d)
    launch(_select, d.size, mask.reshape(-1), d.reshape(-1), out.reshape(-1))
    return out


def momentum_(w: np.ndarray, v: np.ndarray, g: np.ndarray, lr: float, mu: float) -> None:
    """In place: ``v = mu*v - lr*g; w = w + v`` with lr, mu rounded to the arrays' dtype."""
    t = w.dtype.type
    launch(_momentum, w.size, w.reshape(-1), v.reshape(-1), g.reshape(-1), t(lr), t(mu))


def momentum_state(v: np.ndarray, g: np.ndarray, lr: float, mu: float,
                   out: np.ndarray) -> np.ndarray:
    """``out = mu*v - lr*g`` (lr, mu rounded to the arrays' dtype); returns `out`."""
    t = v.dtype.type
    launch(_momentum_state, v.size, v.reshape(-1), g.reshape(-1), t(lr), t(mu), out.reshape(-1))
    return out


def sum_squares(x: np.ndarray) -> float:
    """The float64 sum of x**2: partial sums over fixed chunks of SUM_CHUNK elements, added in
    order (the same value for any thread count)."""
    partial = np.empty(max(1, -(-x.size // SUM_CHUNK)), dtype=np.float64)
    launch(_sum_squares, x.size, x.reshape(-1), partial)
    return float(np.add.reduce(partial, dtype=np.float64)) if x.size else 0.0


@numba.njit(parallel=True, cache=True)
def _channel_sums(x, out):
    N, C, P = x.shape
    zero = x.dtype.type(0)
    for c in numba.prange(C):
        acc = zero
        for n in range(N):
            for p in range(P):
                acc += x[n, c, p]
        out[c] = acc


@numba.njit(parallel=True, cache=True)
def _channels_first_plus(z, b, y):
    N, C, P = y.shape
    for n in numba.prange(N):
        for c in range(C):
            bc = b[c]
            row = y[n, c]
            for p in range(P):
                row[p] = z[n * P + p, c] + bc


def channels_first_plus(z: np.ndarray, b: np.ndarray, shape: tuple[int, int, int, int]
                        ) -> np.ndarray:
    """``(z + b)`` with ``z`` the ``(N·H·W, C)`` output of a convolution's product (rows in
    (n, h, w) order) and ``b`` its ``(C,)`` bias, returned as a new ``(N, C, H, W)`` array: the
    bias addition and the transposed copy in one pass (the same additions)."""
    N, C, H, W = shape
    y = np.empty(shape, dtype=z.dtype)
    launch(_channels_first_plus, z.size, z, b, y.reshape(N, C, H * W))
    return y


def channel_sums(x: np.ndarray) -> np.ndarray:
    """Per-channel sums of an ``(N, C, H, W)`` array as numpy computes
    ``x.transpose(0, 2, 3, 1).reshape(-1, C).sum(axis=0)``: from +0.0, adding in (n, h, w)
    order — without the transposed copy (a convolution's bias gradient)."""
    N, C = x.shape[:2]
    out = np.empty(C, dtype=x.dtype)
    launch(_channel_sums, x.size, x.reshape(N, C, -1), out)
    return out
