from __future__ import annotations

import numpy as np
import pytest

from quantsim import nn

from .helpers import sgd_losses


def naive_pool(X, k, s, p, op, pad_value):
    Xp = np.pad(X, ((0, 0), (0, 0), (p, p), (p, p)), constant_values=pad_value)
    N, C, H, W = Xp.shape
    Ho, Wo = (H - k) // s + 1, (W - k) // s + 1
    Y = np.zeros((N, C, Ho, Wo))
    for i in range(Ho):
        for j in range(Wo):
            Y[:, :, i, j] = op(Xp[:, :, i * s : i * s + k, j * s : j * s + k], axis=(2, 3))
    return Y


@pytest.mark.parametrize("k,s,p", [(2, 2, 0), (3, 2, 1), (3, 1, 0), (2, 1, 1)])
def test_pools_match_naive_loops(k, s, p) -> None:
    X = np.random.default_rng(0).standard_normal((2, 3, 7, 6))
    np.testing.assert_allclose(nn.MaxPool2d(k, s, p).predict(X),
                               naive_pool(X, k, s, p, np.max, -np.inf))
    np.testing.assert_allclose(nn.AvgPool2d(k, s, p).predict(X),
                               naive_pool(X, k, s, p, np.mean, 0.0), rtol=1e-12)


def test_maxpool_error_goes_to_the_first_maximum_only() -> None:
    X = np.zeros((1, 1, 2, 2), np.float32)  # all tied
    Y, backprop = nn.MaxPool2d(2).forward(X, True)
    dX = backprop(np.ones_like(Y))
    np.testing.assert_array_equal(dX[0, 0], [[1, 0], [0, 0]])


def test_stride_defaults_to_kernel_and_bad_arguments_raise() -> None:
    assert nn.MaxPool2d(3).stride == (3, 3)
    with pytest.raises(ValueError, match="kernel_size=0"):
        nn.AvgPool2d(0)
    with pytest.raises(ValueError, match="at most half the kernel"):
        nn.MaxPool2d(2, padding=2)
    with pytest.raises(ValueError, match="smaller than the kernel"):
        nn.MaxPool2d(4).forward(np.zeros((1, 1, 3, 3), np.float32), True)


@pytest.mark.parametrize("pool", [nn.MaxPool2d, nn.AvgPool2d])
def test_conv_pool_net_learns_bar_orientation(pool) -> None:
    rng = np.random.default_rng(0)
    N = 32
    labels = rng.integers(0, 2, N)
    X = 0.1 * rng.standard_normal((N, 1, 6, 6)).astype(np.float32)
    for n in range(N):
        pos = rng.integers(0, 6)
        if labels[n]:
            X[n, 0, :, pos] += 1
        else:
            X[n, 0, pos, :] += 1
    net = nn.Sequential(nn.Conv2d(1, 4, 3, rng=1, padding=1), nn.ReLU(), pool(2), nn.Flatten(),
                        nn.Linear(36, 2, rng=2))
    losses = sgd_losses(net, X, labels, nn.softmax_cross_entropy, lr=0.3, steps=80)
    assert losses[-1] < 0.5 * losses[0]
