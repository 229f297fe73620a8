from __future__ import annotations

import numpy as np
import pytest

from quantsim import nn

from .helpers import sgd_losses


def test_training_output_is_normalised_and_running_stats_move() -> None:
    rng = np.random.default_rng(0)
    X = (3 + 2 * rng.standard_normal((64, 4))).astype(np.float32)
    bn = nn.BatchNorm1d(4, momentum=0.5)
    Y = bn.forward(X, True)[0]
    np.testing.assert_allclose(Y.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(Y.std(0), 1, atol=1e-3)
    buf = bn.buffers()
    np.testing.assert_allclose(buf["running_mean"], 0.5 * X.mean(0), rtol=1e-5)
    np.testing.assert_allclose(buf["running_var"], 0.5 + 0.5 * X.var(0, ddof=1), rtol=1e-5)


def test_eval_uses_running_statistics() -> None:
    bn = nn.BatchNorm2d(2, eps=1e-5)
    bn.set_buffer("running_mean", np.array([1.0, -1.0]))
    bn.set_buffer("running_var", np.array([4.0, 0.25]))
    X = np.ones((1, 2, 2, 2), np.float32)
    before = bn.buffers()
    Y = bn.predict(X)
    np.testing.assert_allclose(Y[0, 0], 0, atol=1e-6)
    np.testing.assert_allclose(Y[0, 1], 2 / np.sqrt(0.25 + 1e-5), rtol=1e-6)
    for k, v in bn.buffers().items():
        np.testing.assert_array_equal(v, before[k])


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match=r"expected input of shape \(N, C, H, W\)"):
        nn.BatchNorm2d(3).forward(np.zeros((2, 3)), True)
    with pytest.raises(ValueError, match="more than one value per feature"):
        nn.BatchNorm1d(3).forward(np.zeros((1, 3)), True)
    with pytest.raises(ValueError, match="momentum"):
        nn.BatchNorm1d(3, momentum=0.0)


def test_batchnorm_net_learns() -> None:
    rng = np.random.default_rng(0)
    X = (5 + 3 * rng.standard_normal((32, 3))).astype(np.float32)
    T = np.tanh(X - 5) @ rng.standard_normal((3, 1)).astype(np.float32)
    net = nn.Sequential(nn.Linear(3, 8, rng=1), nn.BatchNorm1d(8), nn.ReLU(),
                        nn.Linear(8, 1, rng=2))
    losses = sgd_losses(net, X, T, nn.mse, lr=0.05, steps=40)
    assert losses[-1] < 0.3 * losses[0]


def test_batchnorm2d_learns_a_scale_and_shift() -> None:
    rng = np.random.default_rng(1)
    X = rng.standard_normal((8, 2, 3, 3)).astype(np.float32)
    Xn = (X - X.mean((0, 2, 3), keepdims=True)) / X.std((0, 2, 3), keepdims=True)
    T = 2 * Xn + 1
    losses = sgd_losses(nn.BatchNorm2d(2), X, T, nn.mse, lr=0.5, steps=20)
    assert losses[-1] < 0.05 * losses[0]
