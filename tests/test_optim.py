"""Optimizer math against hand-computed steps, schedules, constraints, loss scaling."""

from __future__ import annotations

import math

import numpy as np
import pytest

from quantsim.nn.base import Param
from quantsim.optim import (
    SGD,
    Adam,
    Constant,
    ExponentialDecay,
    LinearSchedule,
    LossScaler,
    MaxColNorm,
    StepDecay,
)


class FakeLayer:
    def __init__(self, name: str, **values: list) -> None:
        self.name = name
        self.params = {k: Param(np.array(v, dtype=np.float64)) for k, v in values.items()}


class RecordingPoints:
    """A ``layer.q`` whose updates / optimizer_state points round to a 1/4 grid and log calls."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def updates(self, x: np.ndarray) -> np.ndarray:
        self.calls.append("updates")
        return np.round(x * 4) / 4

    def optimizer_state(self, x: np.ndarray) -> np.ndarray:
        self.calls.append("optimizer_state")
        return np.round(x * 4) / 4


def set_grads(layer: FakeLayer, **grads: list) -> None:
    for k, g in grads.items():
        layer.params[k].grad[...] = np.array(g, dtype=np.float64)


def value(layer: FakeLayer, k: str = "w") -> np.ndarray:
    return layer.params[k].value


def test_plain_sgd():
    layer = FakeLayer("fc", w=[1.0, -2.0])
    opt = SGD([layer], lr=0.1)
    set_grads(layer, w=[0.5, -1.0])
    assert opt.step()
    np.testing.assert_array_equal(value(layer), [1.0 - 0.05, -2.0 + 0.1])


def test_sgd_momentum_two_steps():
    layer = FakeLayer("fc", w=[1.0])
    opt = SGD([layer], lr=0.1, momentum=0.9)
    set_grads(layer, w=[1.0])
    opt.step()  # v = -0.1; w = 0.9
    set_grads(layer, w=[2.0])
    opt.step()  # v = 0.9 * -0.1 - 0.2 = -0.29; w = 0.61
    np.testing.assert_allclose(value(layer), [0.61], rtol=0, atol=1e-15)
    np.testing.assert_allclose(opt.state["fc.w"]["v"], [-0.29], atol=1e-15)


def test_sgd_nesterov_two_steps():
    layer = FakeLayer("fc", w=[1.0])
    opt = SGD([layer], lr=0.1, momentum=0.9, nesterov=True)
    set_grads(layer, w=[1.0])
    opt.step()  # v = -0.1; w = 1 + 0.9 * -0.1 - 0.1 = 0.81
    np.testing.assert_allclose(value(layer), [0.81], atol=1e-15)
    set_grads(layer, w=[2.0])
    opt.step()  # v = -0.29; w = 0.81 + 0.9 * -0.29 - 0.2 = 0.349
    np.testing.assert_allclose(value(layer), [0.349], atol=1e-15)


def test_adam_two_steps():
    layer = FakeLayer("fc", w=[1.0, 1.0])
    opt = Adam([layer], lr=0.01, betas=(0.9, 0.999), eps=1e-8)
    g1, g2 = np.array([0.5, -2.0]), np.array([1.0, 1.0])
    set_grads(layer, w=g1)
    opt.step()
    m = 0.1 * g1
    v = 0.001 * g1**2
    w = 1.0 - 0.01 * (m / 0.1) / (np.sqrt(v / 0.001) + 1e-8)
    np.testing.assert_allclose(value(layer), w, rtol=1e-12)
    set_grads(layer, w=g2)
    opt.step()
    m = 0.9 * m + 0.1 * g2
    v = 0.999 * v + 0.001 * g2**2
    w = w - 0.01 * (m / (1 - 0.9**2)) / (np.sqrt(v / (1 - 0.999**2)) + 1e-8)
    np.testing.assert_allclose(value(layer), w, rtol=1e-12)


def test_weight_decay_only_on_matching_params():
    layer = FakeLayer("fc", W=[2.0], b=[2.0])
    opt = SGD([layer], lr=0.1, weight_decay=0.5, decay="*.W")
    set_grads(layer, W=[1.0], b=[1.0])
    opt.step()
    np.testing.assert_allclose(value(layer, "W"), [2.0 - 0.1 * (1.0 + 0.5 * 2.0)], atol=1e-15)
    np.testing.assert_allclose(value(layer, "b"), [2.0 - 0.1 * 1.0], atol=1e-15)


def test_clip_by_global_norm():
    a, b = FakeLayer("a", w=[0.0]), FakeLayer("b", w=[0.0])
    opt = SGD([a, b], lr=1.0, clip_norm=1.0)
    set_grads(a, w=[3.0])
    set_grads(b, w=[4.0])
    opt.step()
    assert opt.last_grad_norm == 5.0
    np.testing.assert_allclose([value(a)[0], value(b)[0]], [-0.6, -0.8], atol=1e-15)


def test_grad_norm_is_tracked_on_request_only():
    """Without clipping the norm costs a pass over every gradient: computed only when asked."""
    for track, want in ((True, 5.0), (False, None)):
        a, b = FakeLayer("a", w=[0.0]), FakeLayer("b", w=[0.0])
        opt = SGD([a, b], lr=1.0, track_grad_norm=track)
        set_grads(a, w=[3.0])
        set_grads(b, w=[4.0])
        opt.step()
        assert opt.last_grad_norm == want if want else math.isnan(opt.last_grad_norm)
        np.testing.assert_allclose([value(a)[0], value(b)[0]], [-3.0, -4.0], atol=1e-15)


def test_clip_leaves_small_gradients_alone():
    a = FakeLayer("a", w=[0.0])
    opt = SGD([a], lr=1.0, clip_norm=10.0)
    set_grads(a, w=[3.0])
    opt.step()
    assert value(a)[0] == -3.0


def test_max_col_norm():
    layer = FakeLayer("fc", W=[[3.0, 0.1], [4.0, 0.1]])
    opt = SGD([layer], lr=0.0, constraints=[MaxColNorm(1.9365, params="fc.W")])
    opt.step()
    W = value(layer, "W")
    np.testing.assert_allclose(np.linalg.norm(W[:, 0]), 1.9365, rtol=1e-12)
    np.testing.assert_allclose(W[:, 0] / W[1, 0], [0.75, 1.0], rtol=1e-12)
    np.testing.assert_array_equal(W[:, 1], [0.1, 0.1])


def test_max_col_norm_unit_axis_for_conv_layout():
    w = np.ones((2, 1, 2, 2))  # (out, in, kh, kw): each kernel has norm 2
    capped = MaxColNorm(1.0, unit_axis=0)(w)
    np.testing.assert_allclose(np.sqrt((capped**2).sum(axis=(1, 2, 3))), [1.0, 1.0])


def test_schedules():
    assert Constant(0.1)(7) == 0.1
    assert StepDecay(1.0, 0.5, every=3)(5) == 0.5
    assert StepDecay(1.0, 0.5, every=3)(6) == 0.25
    assert ExponentialDecay(2.0, 0.5)(3) == 0.25
    ramp = LinearSchedule(0.5, 0.7, epochs=4)
    assert [ramp(e) for e in (0, 2, 4, 10)] == [0.5, 0.6, 0.7, 0.7]


def test_momentum_schedule_follows_epoch():
    layer = FakeLayer("fc", w=[0.0])
    opt = SGD([layer], lr=ExponentialDecay(1.0, 0.5), momentum=LinearSchedule(0.5, 0.7, epochs=2))
    opt.set_epoch(1)
    assert (opt.lr, opt.momentum) == (0.5, 0.6)
    set_grads(layer, w=[1.0])
    opt.step()  # v = -0.5
    set_grads(layer, w=[0.0])
    opt.step()  # v = 0.6 * -0.5 = -0.3
    np.testing.assert_allclose(value(layer), [-0.8], atol=1e-15)


def test_dynamic_loss_scaling_skip_halve_double():
    layer = FakeLayer("fc", w=[1.0])
    scaler = LossScaler(8.0, growth_interval=2)
    opt = SGD([layer], lr=1.0, loss_scaler=scaler)
    set_grads(layer, w=[np.inf])
    assert not opt.step()  # skipped, scale halved
    assert (value(layer)[0], scaler.scale, opt.steps) == (1.0, 4.0, 0)
    set_grads(layer, w=[4.0])  # unscaled: 1.0
    assert opt.step()
    assert value(layer)[0] == 0.0 and scaler.scale == 4.0
    set_grads(layer, w=[np.nan])
    assert not opt.step()
    assert scaler.scale == 2.0 and scaler.good_steps == 0
    for _ in range(2):
        set_grads(layer, w=[2.0])
        assert opt.step()
    assert scaler.scale == 4.0  # doubled after 2 good steps
    np.testing.assert_array_equal(value(layer), [-2.0])


def test_static_loss_scaling_unscales_and_never_skips():
    layer = FakeLayer("fc", w=[1.0])
    opt = SGD([layer], lr=1.0, loss_scaler=LossScaler(128.0, dynamic=False))
    set_grads(layer, w=[64.0])
    assert opt.step() and value(layer)[0] == 0.5
    set_grads(layer, w=[np.inf])
    assert opt.step() and value(layer)[0] == -np.inf
    assert opt.loss_scale == 128.0


def test_quantized_update_path_rounds_master_copy_and_moments():
    layer = FakeLayer("fc", w=[1.0])
    layer.q = RecordingPoints()
    opt = SGD([layer], lr=0.1, momentum=0.5)
    set_grads(layer, w=[1.0])
    opt.step()  # v = q(-0.1) = 0; w = q(1.0) = 1.0
    assert layer.q.calls == ["optimizer_state", "updates"]
    assert value(layer)[0] == 1.0 and opt.state["fc.w"]["v"][0] == 0.0
    set_grads(layer, w=[2.0])
    opt.step()  # v = q(-0.2) = -0.25; w = q(0.75)
    assert value(layer)[0] == 0.75


def test_state_dict_round_trip_continues_identically():
    def run(split: bool) -> np.ndarray:
        layer = FakeLayer("fc", w=[1.0, -1.0])
        opt = Adam([layer], lr=0.1, loss_scaler=LossScaler(4.0, growth_interval=3))
        grads = [[0.3, 0.2], [-1.0, 0.5], [0.7, 0.1], [0.2, -0.4]]
        for i, g in enumerate(grads):
            if split and i == 2:
                saved = opt.state_dict()
                opt = Adam([layer], lr=0.1, loss_scaler=LossScaler(1.0, growth_interval=3))
                opt.load_state_dict(saved)
            set_grads(layer, w=g)
            opt.step()
        return value(layer).copy()

    np.testing.assert_array_equal(run(False), run(True))


def test_duplicate_param_names_rejected():
    with pytest.raises(ValueError, match="fc.w"):
        SGD([FakeLayer("fc", w=[1.0]), FakeLayer("fc", w=[1.0])], lr=0.1)


def test_bad_hyperparameters_named():
    with pytest.raises(ValueError, match="clip_norm"):
        SGD([FakeLayer("fc", w=[1.0])], lr=0.1, clip_norm=-1)
    with pytest.raises(ValueError, match="lr"):
        SGD([FakeLayer("fc", w=[1.0])], lr="fast")
    with pytest.raises(ValueError, match="loss scale"):
        LossScaler(0.0)
    assert math.isnan(SGD([FakeLayer("fc", w=[1.0])], lr=0.1).last_grad_norm)
