from __future__ import annotations

import numpy as np
import pytest

from quantsim import nn

from .helpers import sgd_losses


def test_lookup_and_scatter_add_with_repeated_indices() -> None:
    emb = nn.Embedding(4, 2, rng=0, dtype=np.float64)
    W = emb.params["W"].value
    X = np.array([[1, 3, 1]])
    Y, backprop = emb.forward(X, True)
    np.testing.assert_array_equal(Y, W[X])
    assert backprop(np.ones((1, 3, 2))) is None
    np.testing.assert_array_equal(emb.params["W"].grad, [[0, 0], [2, 2], [0, 0], [1, 1]])


def test_lookup_reads_the_quantized_weights() -> None:
    from .helpers import ScaledWeightsPoints

    emb = nn.Embedding(4, 2, rng=0)
    emb.q = ScaledWeightsPoints()
    X = np.array([0, 2, 3])
    np.testing.assert_array_equal(emb.predict(X), 2 * emb.params["W"].value[X])


def test_bad_indices() -> None:
    emb = nn.Embedding(4, 2, rng=0, name="tok")
    with pytest.raises(TypeError, match="tok: expected integer indices"):
        emb.forward(np.zeros((2, 3)), True)
    with pytest.raises(ValueError, match=r"tok: indices must be in \[0, 4\)"):
        emb.forward(np.array([[0, 4]]), True)


def test_embedding_learns_token_classes() -> None:
    X = np.arange(8).reshape(8, 1) % 8
    labels = np.array([0, 1, 1, 0, 1, 0, 0, 1])
    net = nn.Sequential(nn.Embedding(8, 3, rng=0), nn.Flatten(), nn.Linear(3, 2, rng=1))
    losses = sgd_losses(net, X, labels, nn.softmax_cross_entropy, lr=2.0, steps=60)
    assert losses[-1] < 0.5 * losses[0]
