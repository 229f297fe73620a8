"""The one-pass numba kernels (quantsim.nn._fused) give numpy's bits."""

from __future__ import annotations

import math

import numba
import numpy as np
import pytest

from quantsim.kernels.cpu import PARALLEL_MIN
from quantsim.nn import _fused

SIZES = (0, 1, 37, PARALLEL_MIN + 5)


def _values(n: int, dtype, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(n) * np.exp2(rng.integers(-20, 20, n))).astype(dtype)
    special = np.array([0.0, -0.0, np.nan, -np.nan, np.inf, -np.inf, 1e-45, -1e-45], dtype)
    x[: min(n, special.size)] = special[: min(n, special.size)]
    return x


def _bits(a: np.ndarray) -> np.ndarray:
    return a.view(np.uint32 if a.dtype == np.float32 else np.uint64)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", SIZES)
def test_relu_and_select_match_numpy_where(n, dtype):
    x = _values(n, dtype).reshape(-1, 1) if n else np.empty((0, 3), dtype)
    y, mask = _fused.relu(x)
    zero = np.zeros((), dtype)
    np.testing.assert_array_equal(mask, x > 0)
    np.testing.assert_array_equal(_bits(y), _bits(np.where(x > 0, x, zero)))
    d = _values(x.size, dtype, seed=1).reshape(x.shape)
    np.testing.assert_array_equal(_bits(_fused.select(mask, d)), _bits(np.where(mask, d, zero)))
    assert y.shape == x.shape and y.dtype == x.dtype


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", SIZES[1:])
def test_momentum_kernels_match_the_numpy_sequence(n, dtype):
    rng = np.random.default_rng(2)
    w, v, g = (rng.standard_normal(n).astype(dtype) for _ in range(3))
    lr, mu = 0.013, 0.9
    t = np.dtype(dtype).type
    lrg = g * t(lr)
    v_want = v * t(mu) - lrg
    w_want = w + v_want
    state = _fused.momentum_state(v, g, lr, mu, out=np.empty_like(v))
    np.testing.assert_array_equal(_bits(state), _bits(v_want))
    _fused.momentum_(w, v, g, lr, mu)
    np.testing.assert_array_equal(_bits(v), _bits(v_want))
    np.testing.assert_array_equal(_bits(w), _bits(w_want))


@pytest.mark.parametrize("n", [0, 5, _fused.SUM_CHUNK * 3 + 11])
def test_sum_squares_is_accurate_and_thread_independent(n):
    x = np.random.default_rng(3).standard_normal(n).astype(np.float32)
    exact = math.fsum(float(v) ** 2 for v in x)
    got = _fused.sum_squares(x)
    assert got == pytest.approx(exact, rel=1e-13, abs=0.0)
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        assert _fused.sum_squares(x) == got
    finally:
        numba.set_num_threads(threads)


def test_applies_only_to_contiguous_float_arrays_of_one_dtype():
    a = np.zeros((4, 4), np.float32)
    assert _fused.applies(a, a)
    assert not _fused.applies(a.T[:, :3])
    assert not _fused.applies(a, a.astype(np.float64))
    assert not _fused.applies(a.astype(np.int32))
    assert not _fused.applies([1.0, 2.0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (3, 5, 2, 7), (2, 4, 1, 1), (128, 6, 28, 28)])
def test_channel_sums_match_numpy_sum_over_the_transposed_rows(shape, dtype):
    """A convolution's bias gradient: numpy's order ((n, h, w) in turn from +0.0), the sign
    of a zero sum and NaN / inf included."""
    for seed in (0, 1):
        x = _values(math.prod(shape), dtype, seed=seed).reshape(shape)
        if seed:  # finite values, some channels all -0.0 (their sum is +0.0)
            x = np.where(np.isfinite(x), x, dtype(-0.0))
            x[0, :, 0, 0] = -0.0
            x[:, ::2] = -0.0
        want = x.transpose(0, 2, 3, 1).reshape(-1, shape[1]).sum(axis=0)
        np.testing.assert_array_equal(_bits(_fused.channel_sums(x)), _bits(want))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (3, 5, 2, 7), (2, 4, 1, 1), (128, 6, 28, 28)])
def test_channels_first_plus_is_the_bias_add_then_the_transposed_copy(shape, dtype):
    """A convolution's output: ``Z += b`` then the (N, H, W, C) -> (N, C, H, W) copy, bit for
    bit (signed zeros, NaN payloads, inf)."""
    N, C, H, W = shape
    z = _values(math.prod(shape), dtype).reshape(N * H * W, C)
    b = _values(C, dtype, seed=3)
    b[:1] = -0.0
    want = np.ascontiguousarray((z + b).reshape(N, H, W, C).transpose(0, 3, 1, 2))
    got = _fused.channels_first_plus(z, b, shape)
    assert got.shape == shape and got.flags.c_contiguous
    np.testing.assert_array_equal(_bits(got), _bits(want))
