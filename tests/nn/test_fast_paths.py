"""Speed paths of the engine give the same bits as the plain ones (issue 3)."""

from __future__ import annotations

import numpy as np
import pytest

from quantsim.nn import (
    LSTM,
    Conv2d,
    Flatten,
    Linear,
    MaxPool2d,
    ReLU,
    Sequential,
    softmax_cross_entropy,
)
from quantsim.nn._blas import matmul
from quantsim.nn.activations import sigmoid
from quantsim.precision import Precision


def _nets():
    rng = np.random.default_rng(0)
    yield Sequential(Flatten(), Linear(12, 7, rng=rng), ReLU(), Linear(7, 3, rng=rng)), (5, 3, 4)
    yield Sequential(Conv2d(1, 2, 3, padding=1, rng=rng), ReLU(), MaxPool2d(2), Flatten(),
                     Linear(2 * 3 * 3, 3, rng=rng)), (5, 1, 6, 6)
    yield Sequential(LSTM(4, 5, rng=rng, return_sequences=False), Linear(5, 3, rng=rng)), (5, 6, 4)


@pytest.mark.parametrize("precision", [None, "default=float32",
                                       "default=float32,errors=bfloat16@stochastic",
                                       "default=float32,accumulator=float16"])
@pytest.mark.parametrize("k", range(3))
def test_input_grad_false_leaves_parameter_gradients_unchanged(k, precision):
    net, shape = list(_nets())[k]
    if precision is not None:
        net.bind(Precision.from_string(precision), 3)
    X = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    y = np.arange(shape[0]) % 3
    grads = []
    for input_grad in (True, False):
        if precision is not None:
            net.bind(Precision.from_string(precision), 3)  # same seeds / counters both times
        net.zero_grad()
        Y, backprop = net.forward(X, train=True)
        _, dY = softmax_cross_entropy(Y, y)
        dX = backprop(dY, input_grad=input_grad)
        if input_grad:
            assert dX.shape == X.shape
        grads.append([p.grad.copy() for _, _, p in net.params()])
    for a, b in zip(*grads, strict=True):
        np.testing.assert_array_equal(a.view(np.uint32), b.view(np.uint32))


@pytest.mark.parametrize("shape", [(3, 4, 5), (1568, 25, 6), (64, 300, 40), (512, 512, 512)])
def test_blas_matmul_is_a_float32_product(shape):
    # One BLAS thread may round differently from several, so compare with a float64 product
    # within float32 accuracy (bit equality is not promised).
    M, K, N = shape
    rng = np.random.default_rng(2)
    A = rng.standard_normal((M, K)).astype(np.float32)
    B = rng.standard_normal((K, N)).astype(np.float32)
    want = A.astype(np.float64) @ B.astype(np.float64)
    for got, ref in ((matmul(A, B), want), (matmul(B.T, A.T), want.T)):
        assert got.dtype == np.float32 and got.shape == ref.shape
        np.testing.assert_allclose(got, ref, rtol=0, atol=K * 1e-6 * np.abs(ref).max())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_matches_formula(dtype):
    x = np.array([-1e4, -30, -1.5, -0.0, 0.0, 1e-8, 2.5, 30, 1e4, np.nan, -np.inf, np.inf],
                 dtype=dtype)
    e = np.exp(-np.abs(x))
    want = np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(dtype)
    got = sigmoid(x)
    assert got.dtype == dtype
    np.testing.assert_array_equal(got, want)
    assert sigmoid(np.float32(0.5).reshape(())).shape == ()
