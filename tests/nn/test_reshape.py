from __future__ import annotations

import numpy as np
import pytest

from quantsim import nn


def test_flatten_round_trip() -> None:
    X = np.arange(24, dtype=np.float32).reshape(2, 3, 2, 2)
    Y, backprop = nn.Flatten().forward(X, True)
    assert Y.shape == (2, 12)
    np.testing.assert_array_equal(backprop(Y), X)


def test_reshape_rows_as_sequence() -> None:
    X = np.arange(2 * 784, dtype=np.float32).reshape(2, 1, 28, 28)
    Y, backprop = nn.Reshape(28, -1).forward(X, True)
    assert Y.shape == (2, 28, 28)
    np.testing.assert_array_equal(Y[1, 3], X[1, 0, 3])
    assert backprop(Y).shape == X.shape


def test_bad_reshape_arguments() -> None:
    with pytest.raises(ValueError, match="per-sample shape"):
        nn.Reshape(-1, -1)
    with pytest.raises(ValueError, match="per-sample shape"):
        nn.Reshape()
    with pytest.raises(ValueError, match=r"cannot reshape input \(2, 5\)"):
        nn.Reshape(3).forward(np.zeros((2, 5)), True)


def test_flattened_pipeline_learns() -> None:
    from .helpers import sgd_losses

    rng = np.random.default_rng(0)
    X = rng.standard_normal((16, 2, 2, 2)).astype(np.float32)
    T = X.reshape(16, -1).sum(1, keepdims=True)
    net = nn.Sequential(nn.Flatten(), nn.Reshape(2, 4), nn.Flatten(), nn.Linear(8, 1, rng=1))
    losses = sgd_losses(net, X, T, nn.mse, lr=0.05, steps=30)
    assert losses[-1] < 0.1 * losses[0]
