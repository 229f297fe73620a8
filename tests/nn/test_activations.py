from __future__ import annotations

import warnings

import numpy as np
import pytest

from quantsim import nn

from .helpers import sgd_losses


def test_values() -> None:
    X = np.array([[-2.0, 0.0, 3.0]], np.float32)
    np.testing.assert_array_equal(nn.ReLU().predict(X), [[0, 0, 3]])
    np.testing.assert_allclose(nn.Tanh().predict(X), np.tanh(X), rtol=1e-6)
    np.testing.assert_allclose(nn.Sigmoid().predict(X), 1 / (1 + np.exp(-X)), rtol=1e-6)


def test_relu_derivative_at_zero_is_zero() -> None:
    Y, backprop = nn.ReLU().forward(np.zeros((1, 2), np.float32), True)
    assert not backprop(np.ones_like(Y)).any()


def test_sigmoid_is_stable_for_large_inputs() -> None:
    X = np.array([-1e4, -100.0, 100.0, 1e4], np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Y = nn.Sigmoid().predict(X)
    assert Y.dtype == np.float32 and np.isfinite(Y).all()
    np.testing.assert_array_equal(Y[[0, 3]], [0, 1])


@pytest.mark.parametrize("act", [nn.ReLU, nn.Tanh, nn.Sigmoid])
def test_mlp_with_each_nonlinearity_learns(act) -> None:
    rng = np.random.default_rng(0)
    X = rng.uniform(-2, 2, (64, 1)).astype(np.float32)
    T = np.sin(X)
    net = nn.Sequential(nn.Linear(1, 16, rng=1), act(), nn.Linear(16, 1, rng=2))
    losses = sgd_losses(net, X, T, nn.mse, lr=0.1, steps=60)
    assert losses[-1] < 0.5 * losses[0]
