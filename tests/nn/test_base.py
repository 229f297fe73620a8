from __future__ import annotations

import numpy as np
import pytest

from quantsim import nn
from quantsim.nn._util import as_rng, init_weights
from quantsim.nn.base import IdentityPoints, Layer, Param


def test_param_grad_matches_value_and_zero_grad_resets_in_place() -> None:
    p = Param(np.ones((2, 3), dtype=np.float32))
    assert p.grad.shape == (2, 3) and p.grad.dtype == np.float32 and not p.grad.any()
    grad = p.grad
    grad += 1
    p.zero_grad()
    assert p.grad is grad and not grad.any()
    p.astype(np.float64)
    assert p.value.dtype == np.float64 and p.grad.dtype == np.float64


def test_add_grad_takes_the_first_gradient_after_zero_grad_without_a_copy() -> None:
    p = Param(np.zeros((2, 3), dtype=np.float32))
    g1 = np.full((2, 3), -0.0, dtype=np.float32)
    g1[0, 0] = 1.5
    p.zero_grad()
    p.add_grad(g1)
    assert p.grad is g1  # taken over: no clearing pass, no addition pass
    assert np.signbit(p.grad[1]).all()  # the gradient as the layer made it, -0.0 included
    g2 = np.ones((2, 3), dtype=np.float32)
    p.add_grad(g2)  # a second gradient in the same step accumulates
    assert p.grad is g1 and p.grad[0, 0] == 2.5 and (p.grad.ravel()[1:] == 1).all()
    assert (g2 == 1).all()


@pytest.mark.parametrize("make", [
    lambda: np.ones((3, 2), dtype=np.float32).T,  # not C-contiguous
    lambda: np.ones((2, 3), dtype=np.float64),  # another dtype
    lambda: np.ones((3,), dtype=np.float32),  # broadcast
])
def test_add_grad_adds_into_the_cleared_buffer_when_it_cannot_take_the_array(make) -> None:
    p = Param(np.zeros((2, 3), dtype=np.float32))
    buf = p.grad
    buf += 7
    p.zero_grad()
    g = make()
    p.add_grad(g)
    assert p.grad is buf and p.grad.dtype == np.float32
    np.testing.assert_array_equal(p.grad, np.ones((2, 3), dtype=np.float32))


def test_zero_grad_is_seen_by_every_reader_and_a_gradient_can_be_unset() -> None:
    p = Param(np.zeros(4, dtype=np.float32))
    p.grad += 3
    p.zero_grad()
    assert not p.grad.any()
    p.grad = None
    p.zero_grad()  # a parameter that takes no gradient
    assert p.grad is None


def test_identity_points_return_their_argument() -> None:
    q = IdentityPoints()
    x = np.arange(6.0).reshape(2, 3)
    for role in ("inputs", "weights", "activations", "errors", "gradients", "updates",
                 "optimizer_state"):
        assert getattr(q, role)(x) is x
    np.testing.assert_array_equal(q.matmul(x, x.T), x @ x.T)


def test_unbound_layer_has_identity_points_and_default_name() -> None:
    layer = nn.Linear(2, 3, rng=0)
    assert isinstance(layer.q, IdentityPoints)
    assert layer.name == "linear0" and layer.auto_named
    assert list(layer.layers()) == [layer]
    assert nn.Linear(2, 3, rng=0, name="fc").name == "fc"


@pytest.mark.parametrize("bad", ["", "a.b", " x", 3])
def test_bad_names_are_rejected(bad) -> None:
    with pytest.raises(ValueError, match="layer name"):
        nn.ReLU(name=bad)


def test_layer_bind_and_unbind(fake_precision) -> None:
    layer = nn.Tanh(name="t")
    sentinel = IdentityPoints()
    fake_precision.factory = lambda lay: sentinel
    assert layer.bind("prec", 11) is layer
    assert layer.q is sentinel and fake_precision.calls == [("t", "prec", 11)]
    layer.unbind()
    assert isinstance(layer.q, IdentityPoints) and layer.q is not sentinel


def test_set_buffer_checks_key_and_shape() -> None:
    bn = nn.BatchNorm1d(3)
    with pytest.raises(ValueError, match="unknown buffer 'nope'"):
        bn.set_buffer("nope", np.zeros(3))
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        bn.set_buffer("running_mean", np.zeros(2))
    bn.set_buffer("running_mean", np.arange(3))
    assert bn.buffers()["running_mean"].dtype == np.float32


def test_astype_rejects_non_float() -> None:
    with pytest.raises(ValueError, match="float32 or float64"):
        nn.Linear(2, 2, rng=0).astype(np.int32)
    with pytest.raises(ValueError, match="dtype=float16"):
        nn.Linear(2, 2, rng=0, dtype=np.float16)


def test_forward_is_abstract() -> None:
    with pytest.raises(NotImplementedError):
        Layer().forward(np.zeros(1), True)


def test_rng_must_be_explicit_and_valid() -> None:
    with pytest.raises(ValueError, match="numpy Generator"):
        as_rng(None)
    with pytest.raises(ValueError, match="numpy Generator"):
        as_rng(-1)
    gen = np.random.default_rng(0)
    assert as_rng(gen) is gen
    a = nn.Linear(3, 4, rng=5).params["W"].value
    b = nn.Linear(3, 4, rng=5).params["W"].value
    np.testing.assert_array_equal(a, b)
    shared = np.random.default_rng(5)
    c = nn.Linear(3, 4, rng=shared).params["W"].value
    d = nn.Linear(3, 4, rng=shared).params["W"].value
    assert not np.array_equal(c, d)


def test_initialisers_have_the_documented_limits() -> None:
    rng = np.random.default_rng(0)
    W = init_weights(rng, "glorot", 30, 20, (30, 20), np.float32)
    assert np.abs(W).max() <= np.sqrt(6 / 50) and np.abs(W).max() > 0.9 * np.sqrt(6 / 50)
    H = init_weights(rng, "he", 30, 20, (30, 20), np.float64)
    assert H.dtype == np.float64 and np.abs(H).max() <= np.sqrt(6 / 30)
    with pytest.raises(ValueError, match="init='lecun'"):
        init_weights(rng, "lecun", 1, 1, (1, 1), np.float32)
