from __future__ import annotations

import numpy as np
import pytest

from quantsim import nn
from quantsim.nn.base import IdentityPoints

from .helpers import sgd_losses


class ValuePoints(IdentityPoints):
    """Distinct, recognisable transforms per role, to check where each one is applied."""

    def weights(self, W, out=None, *, tag=None):
        return W * 2

    def activations(self, Y, out=None, *, tag=None):
        return Y + 1

    def errors(self, dY, out=None, *, tag=None):
        return dY * 3

    def gradients(self, dW, out=None, *, tag=None):
        return dW * 5


def test_forward_and_backward_values_with_points() -> None:
    rng = np.random.default_rng(0)
    layer = nn.Linear(4, 3, rng=0, dtype=np.float64)
    W, b = layer.params["W"], layer.params["b"]
    b.value[...] = rng.standard_normal(3)
    layer.q = ValuePoints()
    X, dY = rng.standard_normal((5, 4)), rng.standard_normal((5, 3))
    Y, backprop = layer.forward(X, True)
    np.testing.assert_allclose(Y, X @ (2 * W.value) + 2 * b.value + 1)
    dX = backprop(dY)
    np.testing.assert_allclose(dX, (3 * dY) @ (2 * W.value).T)  # not quantized as errors
    np.testing.assert_allclose(W.grad, 5 * (X.T @ (3 * dY)))
    np.testing.assert_allclose(b.grad, 5 * (3 * dY).sum(0))


def test_leading_axes_are_batch_axes() -> None:
    layer = nn.Linear(4, 2, rng=1)
    X = np.random.default_rng(0).standard_normal((2, 3, 4)).astype(np.float32)
    Y, backprop = layer.forward(X, False)
    assert Y.shape == (2, 3, 2)
    np.testing.assert_allclose(Y[1, 2], layer.forward(X[1, 2:3], False)[0][0], rtol=1e-6)
    assert backprop(np.ones_like(Y)).shape == X.shape


def test_bad_input_shape_names_layer_and_expected_shape() -> None:
    layer = nn.Linear(4, 2, rng=1, name="fc")
    with pytest.raises(ValueError, match=r"fc: expected input of shape \(N, \.\.\., 4\)"):
        layer.forward(np.zeros((3, 5), dtype=np.float32), True)
    with pytest.raises(ValueError, match="in_features=0"):
        nn.Linear(0, 2, rng=0)


def test_linear_learns_a_regression() -> None:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((32, 5)).astype(np.float32)
    T = X @ rng.standard_normal((5, 2)).astype(np.float32)
    losses = sgd_losses(nn.Linear(5, 2, rng=1), X, T, nn.mse, lr=0.1, steps=30)
    assert losses[-1] < 0.1 * losses[0]
