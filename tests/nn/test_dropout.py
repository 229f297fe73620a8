from __future__ import annotations

import numpy as np
import pytest

from quantsim import nn

from .helpers import sgd_losses


def test_eval_is_identity_and_train_is_inverted_dropout() -> None:
    X = np.ones((200, 50), np.float32)
    layer = nn.Dropout(0.25, seed=1)
    np.testing.assert_array_equal(layer.predict(X), X)
    Y, backprop = layer.forward(X, True)
    kept = Y != 0
    assert Y.dtype == np.float32
    np.testing.assert_allclose(Y[kept], 1 / 0.75, rtol=1e-6)
    assert abs(kept.mean() - 0.75) < 0.02
    np.testing.assert_array_equal(backprop(X) != 0, kept)


def test_masks_are_reproducible_and_resume_from_the_call_counter() -> None:
    X = np.ones((4, 8), np.float32)
    a, b = nn.Dropout(0.5, seed=3), nn.Dropout(0.5, seed=3)
    first, second = a.forward(X, True)[0], a.forward(X, True)[0]
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(b.forward(X, True)[0], first)
    state = a.rng_state()
    third = a.forward(X, True)[0]
    b.set_rng_state(state)
    np.testing.assert_array_equal(b.forward(X, True)[0], third)
    assert not np.array_equal(nn.Dropout(0.5, seed=4).forward(X, True)[0], first)


def test_counter_is_saved_in_state_dict_and_layers_differ() -> None:
    X = np.ones((4, 16), np.float32)
    net = nn.Sequential(nn.Dropout(0.5), nn.Dropout(0.5))
    Y1 = net[0].forward(X, True)[0]
    Y2 = net[1].forward(X, True)[0]
    assert not np.array_equal(Y1, Y2), "two layers with the same seed must not share masks"
    state = net.state_dict()
    assert int(state["dropout0.calls"]) == 1
    expected = net.forward(X, True)[0]
    net.load_state_dict(state)
    np.testing.assert_array_equal(net.forward(X, True)[0], expected)


@pytest.mark.parametrize("p", [-0.1, 1.0, "0.5", True])
def test_bad_probability(p) -> None:
    with pytest.raises(ValueError, match="drop probability"):
        nn.Dropout(p)


def test_net_with_dropout_learns() -> None:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((32, 4)).astype(np.float32)
    T = X @ rng.standard_normal((4, 1)).astype(np.float32)
    net = nn.Sequential(nn.Linear(4, 16, rng=1), nn.Dropout(0.2), nn.Linear(16, 1, rng=2))
    losses = sgd_losses(net, X, T, nn.mse, lr=0.05, steps=40)
    assert losses[-1] < 0.3 * losses[0]
