from __future__ import annotations

import numpy as np
import pytest

from quantsim import nn

from .helpers import sgd_losses


def test_maxout_equals_linear_followed_by_maxoutpool() -> None:
    rng = np.random.default_rng(0)
    fused = nn.Maxout(4, 3, 2, rng=1)
    linear = nn.Linear(4, 6, rng=2)
    linear.params["W"].value[...] = fused.params["W"].value
    fused.params["b"].value[...] = rng.standard_normal(6)
    linear.params["b"].value[...] = fused.params["b"].value
    net = nn.Sequential(linear, nn.MaxoutPool(2))
    X = rng.standard_normal((5, 4)).astype(np.float32)
    Y0, bp0 = fused.forward(X, True)
    Y1, bp1 = net.forward(X, True)
    np.testing.assert_array_equal(Y0, Y1)
    dY = rng.standard_normal(Y0.shape).astype(np.float32)
    np.testing.assert_array_equal(bp0(dY), bp1(dY))
    np.testing.assert_array_equal(fused.params["W"].grad, linear.params["W"].grad)


def test_groups_are_contiguous_channels() -> None:
    X = np.arange(12, dtype=np.float32).reshape(1, 6, 1, 2)
    X[0, 1] = 100  # channel 1 belongs to unit 0 (channels 0..2 with pieces=3)
    Y = nn.MaxoutPool(3).predict(X)
    assert Y.shape == (1, 2, 1, 2)
    np.testing.assert_array_equal(Y[0, :, 0], [[100, 100], [10, 11]])


def test_bad_channel_count() -> None:
    with pytest.raises(ValueError, match="multiple of pieces=4"):
        nn.MaxoutPool(4).forward(np.zeros((2, 6), np.float32), True)
    with pytest.raises(ValueError, match=r"expected input of shape \(N, 3\)"):
        nn.Maxout(3, 2, 2, rng=0).forward(np.zeros((2, 4), np.float32), True)


def test_maxout_learns_absolute_value() -> None:
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (64, 1)).astype(np.float32)
    net = nn.Sequential(nn.Maxout(1, 4, 2, rng=3), nn.Linear(4, 1, rng=4))
    losses = sgd_losses(net, X, np.abs(X), nn.mse, lr=0.1, steps=60)
    assert losses[-1] < 0.2 * losses[0]


def test_conv_maxout_learns() -> None:
    rng = np.random.default_rng(1)
    X = rng.standard_normal((8, 1, 5, 5)).astype(np.float32)
    T = np.abs(X[:, :, 1:-1, 1:-1])
    net = nn.Sequential(nn.Conv2d(1, 2, 3, rng=5), nn.MaxoutPool(2))
    losses = sgd_losses(net, X, T, nn.mse, lr=0.1, steps=40)
    assert losses[-1] < 0.5 * losses[0]
