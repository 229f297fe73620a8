from __future__ import annotations

import warnings

import numpy as np
import pytest

from quantsim import nn

from .helpers import check_loss_gradient, sgd_losses


def test_softmax_cross_entropy_value_and_gradient() -> None:
    rng = np.random.default_rng(0)
    Z = rng.standard_normal((5, 4))
    y = rng.integers(0, 4, 5)
    loss, dZ = nn.softmax_cross_entropy(Z, y)
    P = np.exp(Z) / np.exp(Z).sum(1, keepdims=True)
    assert loss == pytest.approx(-np.log(P[np.arange(5), y]).mean(), rel=1e-12)
    np.testing.assert_allclose(dZ.sum(1), 0, atol=1e-15)
    check_loss_gradient(nn.softmax_cross_entropy, Z, y)


def test_softmax_cross_entropy_over_sequences_averages_all_positions() -> None:
    rng = np.random.default_rng(1)
    Z, y = rng.standard_normal((2, 3, 4)), rng.integers(0, 4, (2, 3))
    flat, _ = nn.softmax_cross_entropy(Z.reshape(6, 4), y.reshape(6))
    assert nn.softmax_cross_entropy(Z, y)[0] == pytest.approx(flat)
    check_loss_gradient(nn.softmax_cross_entropy, Z, y)


def test_mse_and_bce_values_and_gradients() -> None:
    rng = np.random.default_rng(2)
    Y, T = rng.standard_normal((3, 4)), rng.uniform(0, 1, (3, 4))
    assert nn.mse(Y, T)[0] == pytest.approx(((Y - T) ** 2).mean())
    p = 1 / (1 + np.exp(-Y))
    bce = -(T * np.log(p) + (1 - T) * np.log(1 - p)).mean()
    assert nn.binary_cross_entropy_with_logits(Y, T)[0] == pytest.approx(bce)
    check_loss_gradient(nn.mse, Y, T)
    check_loss_gradient(nn.binary_cross_entropy_with_logits, Y, T)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_losses_are_stable_for_huge_logits(dtype) -> None:
    Z = np.array([[1e4, -1e4, 0.0], [-3e4, 3e4, 1.0]], dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss, dZ = nn.softmax_cross_entropy(Z, np.array([1, 1]))
        bl, dB = nn.binary_cross_entropy_with_logits(Z, np.array([[0, 1, 1], [1, 0, 0]], dtype))
    assert loss == pytest.approx(2e4 / 2, rel=1e-6)
    assert np.isfinite(bl) and dZ.dtype == dtype and dB.dtype == dtype
    assert np.isfinite(dZ).all() and np.isfinite(dB).all()


def test_bad_arguments() -> None:
    Z = np.zeros((2, 3), np.float32)
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\)"):
        nn.softmax_cross_entropy(Z, np.array([0, 3]))
    with pytest.raises(TypeError, match="labels must be integers"):
        nn.softmax_cross_entropy(Z, np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"labels \(3,\) must have the shape"):
        nn.softmax_cross_entropy(Z, np.array([0, 1, 2]))
    with pytest.raises(ValueError, match=r"target shape \(3, 2\)"):
        nn.mse(Z, np.zeros((3, 2)))
    with pytest.raises(ValueError, match="unknown loss 'hinge'"):
        nn.get_loss("hinge")
    assert nn.get_loss("cross_entropy") is nn.softmax_cross_entropy


def test_logistic_regression_with_bce_learns() -> None:
    rng = np.random.default_rng(3)
    X = rng.standard_normal((64, 3)).astype(np.float32)
    T = (X @ np.array([[1.0], [-2.0], [0.5]], np.float32) > 0).astype(np.float32)
    losses = sgd_losses(nn.Linear(3, 1, rng=0), X, T, nn.binary_cross_entropy_with_logits,
                        lr=1.0, steps=40)
    assert losses[-1] < 0.5 * losses[0]
