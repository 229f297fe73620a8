from __future__ import annotations

import numpy as np
import pytest

from quantsim import nn

from .helpers import RecordingPoints, sgd_losses


def sig(x):
    return 1 / (1 + np.exp(-x))


def lstm_reference(X, W, U, b):
    N, T, _ = X.shape
    H = U.shape[0]
    h, c, out = np.zeros((N, H)), np.zeros((N, H)), []
    for t in range(T):
        z = X[:, t] @ W + h @ U + b
        i, f, o = sig(z[:, :H]), sig(z[:, H : 2 * H]), sig(z[:, 2 * H : 3 * H])
        g = np.tanh(z[:, 3 * H :])
        c = f * c + i * g
        h = o * np.tanh(c)
        out.append(h)
    return np.stack(out, axis=1)


def gru_reference(X, W, U, b, bh):
    N, T, _ = X.shape
    H = U.shape[0]
    h, out = np.zeros((N, H)), []
    for t in range(T):
        gx, gh = X[:, t] @ W + b, h @ U + bh
        r = sig(gx[:, :H] + gh[:, :H])
        z = sig(gx[:, H:2 * H] + gh[:, H:2 * H])
        n = np.tanh(gx[:, 2 * H:] + r * gh[:, 2 * H:])
        h = (1 - z) * n + z * h
        out.append(h)
    return np.stack(out, axis=1)


@pytest.mark.parametrize("T", [1, 4])
def test_lstm_matches_reference(T) -> None:
    rng = np.random.default_rng(0)
    lstm = nn.LSTM(3, 5, rng=1, dtype=np.float64)
    lstm.params["b"].value[...] += rng.standard_normal(20)
    X = rng.standard_normal((2, T, 3))
    ref = lstm_reference(X, *(lstm.params[k].value for k in ("W", "U", "b")))
    np.testing.assert_allclose(lstm.predict(X), ref, rtol=1e-12, atol=1e-14)
    lstm.return_sequences = False
    np.testing.assert_allclose(lstm.predict(X), ref[:, -1], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("T", [1, 4])
def test_gru_matches_reference(T) -> None:
    rng = np.random.default_rng(0)
    gru = nn.GRU(3, 5, rng=1, dtype=np.float64)
    for k in ("b", "bh"):
        gru.params[k].value[...] = rng.standard_normal(15)
    X = rng.standard_normal((2, T, 3))
    ref = gru_reference(X, *(gru.params[k].value for k in ("W", "U", "b", "bh")))
    np.testing.assert_allclose(gru.predict(X), ref, rtol=1e-12, atol=1e-14)


def test_lstm_forget_bias_starts_at_one() -> None:
    b = nn.LSTM(2, 3, rng=0).params["b"].value
    np.testing.assert_array_equal(b, [0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0])


@pytest.mark.parametrize("cell", [nn.LSTM, nn.GRU])
def test_gemm_count_per_sequence(cell) -> None:
    """Input GEMM once, recurrent GEMM per step after the first (h0 = 0), in both directions."""
    layer = cell(3, 2, rng=0)
    q = layer.q = RecordingPoints()
    T = 5
    Y, backprop = layer.forward(np.ones((2, T, 3), np.float32), True)
    assert q.roles().count("matmul") == 1 + (T - 1)
    q.calls.clear()
    backprop(np.ones_like(Y))
    assert q.roles().count("matmul") == (T - 1) + 3  # recurrent data + dW, dU, dX


@pytest.mark.parametrize("cell", [nn.LSTM, nn.GRU])
def test_bad_input_shape(cell) -> None:
    with pytest.raises(ValueError, match=r"batch-first input \(N, T, 3\)"):
        cell(3, 2, rng=0).forward(np.zeros((2, 3)), True)
    with pytest.raises(ValueError, match=r"batch-first input \(N, T, 3\)"):
        cell(3, 2, rng=0).forward(np.zeros((2, 4, 2)), True)


@pytest.mark.parametrize("cell", [nn.LSTM, nn.GRU])
def test_recurrent_net_learns_running_mean(cell) -> None:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((32, 5, 2)).astype(np.float32)
    T = X[:, :, :1].mean(axis=1)
    net = nn.Sequential(cell(2, 8, rng=1, return_sequences=False), nn.Linear(8, 1, rng=2))
    losses = sgd_losses(net, X, T, nn.mse, lr=0.5, steps=60)
    assert losses[-1] < 0.3 * losses[0]


def test_sequence_to_sequence_with_time_distributed_linear() -> None:
    rng = np.random.default_rng(1)
    X = rng.integers(0, 4, (16, 6))
    T = np.roll(X, 1, axis=1)  # predict the previous token
    net = nn.Sequential(nn.Embedding(4, 4, rng=1), nn.LSTM(4, 8, rng=2), nn.Linear(8, 4, rng=3))
    losses = sgd_losses(net, X, T, nn.softmax_cross_entropy, lr=3.0, steps=60)
    assert losses[-1] < 0.4 * losses[0]  # position 0 is unpredictable: floor ~ ln(4)/6


class _PlainPoints(nn.base.IdentityPoints):
    """Identity points of another type: the LSTM takes its array version, not the kernels."""


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("return_sequences", [True, False])
def test_lstm_step_kernels_equal_the_array_version_bit_for_bit(dtype, return_sequences) -> None:
    rng = np.random.default_rng(11)
    X = rng.standard_normal((9, 6, 5)).astype(dtype) * 3  # H = 37: SIMD loops with remainders
    runs = []
    for points in (None, _PlainPoints()):
        layer = nn.LSTM(5, 37, rng=3, return_sequences=return_sequences, dtype=dtype)
        if points is not None:
            layer.q = points
        Y, backprop = layer.forward(X, True)
        dY = rng.standard_normal(Y.shape).astype(dtype) if not runs else runs[0][3]
        dX = backprop(dY)
        runs.append((Y, dX, {k: p.grad.copy() for k, p in layer.params.items()}, dY))
    (Y0, dX0, g0, _), (Y1, dX1, g1, _) = runs
    np.testing.assert_array_equal(Y0, Y1)
    np.testing.assert_array_equal(dX0, dX1)
    for k in g0:
        np.testing.assert_array_equal(g0[k], g1[k])


class _NotAQuantPoint:
    """A point that forwards to a QuantPoint but is not one: the LSTM takes its array version."""

    def __init__(self, point):
        self.point = point

    def __call__(self, x, out=None, *, tag=None):
        return self.point(x, out, tag=tag)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("return_sequences", [True, False])
@pytest.mark.parametrize("policy", [
    "activations=fp8_e4m3@stochastic,errors=bfloat16@stochastic",
    "activations=fixed<4,8>,errors=float32",  # errors exact: still not the fused kernels
    "activations=float32,errors=dfxp<10>@stochastic",  # stateful errors
])
def test_lstm_split_kernels_equal_the_array_version_bit_for_bit(dtype, return_sequences,
                                                                policy, monkeypatch) -> None:
    """With quantizing points the LSTM runs its kernels split around the points' calls: the
    outputs, gradients, point counters and statistics are the array version's, bit for bit."""
    from quantsim.nn import _lstm_kernels
    from quantsim.precision import Precision

    split_steps = []
    for name in ("gates", "gate_errors"):
        kernel = getattr(_lstm_kernels, name)
        monkeypatch.setattr(_lstm_kernels, name,
                            lambda *a, _k=kernel, _n=name: (split_steps.append(_n), _k(*a)))
    rng = np.random.default_rng(5)
    X = rng.standard_normal((9, 6, 5)).astype(dtype) * 3  # H = 37: SIMD loops with remainders
    dY = None
    runs = []
    for wrap in (False, True):
        net = nn.Sequential(nn.LSTM(5, 37, rng=3, return_sequences=return_sequences,
                                    dtype=dtype, name="rnn"))
        net.bind(Precision.from_string("default=float32," + policy), 7)
        layer = net["rnn"]
        points = (layer.q.activations, layer.q.errors)
        if wrap:
            layer.q.activations, layer.q.errors = map(_NotAQuantPoint, points)
        Y, backprop = layer.forward(X, True)
        if dY is None:
            dY = rng.standard_normal(Y.shape).astype(dtype)
        dX = backprop(dY)
        runs.append((Y, dX, {k: p.grad.copy() for k, p in layer.params.items()},
                     [(p.calls, p.stats.count, p.stats.overflow) for p in points]))
    (Y0, dX0, g0, c0), (Y1, dX1, g1, c1) = runs
    assert split_steps == ["gates"] * 6 + ["gate_errors"] * 6  # the first run only
    assert c0 == c1 and any(calls > 0 for calls, _, _ in c0)
    np.testing.assert_array_equal(Y0, Y1)
    np.testing.assert_array_equal(dX0, dX1)
    for k in g0:
        np.testing.assert_array_equal(g0[k], g1[k])


@pytest.mark.parametrize("cell", [nn.LSTM, nn.GRU])
@pytest.mark.parametrize("return_sequences", [True, False])
def test_error_of_another_shape_is_refused(cell, return_sequences) -> None:
    layer = cell(3, 4, rng=0, return_sequences=return_sequences)
    Y, backprop = layer.forward(np.ones((5, 2, 3), np.float32), True)
    bad = np.ones((1,) + Y.shape[1:], np.float32)  # broadcastable, but not the output's shape
    with pytest.raises(ValueError, match=r"dY has shape \(1, .*expected the output's"):
        backprop(bad)
