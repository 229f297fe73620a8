"""The optimizers' in-place update path gives the bits of the generic path (issue 3)."""

from __future__ import annotations

import numpy as np
import pytest

from quantsim.nn import Linear, ReLU, Sequential
from quantsim.optim import SGD, Optimizer
from quantsim.precision import Precision

POLICIES = [None, "default=float32",
            "default=float32,updates=fixed<4,12>@stochastic,optimizer_state=bfloat16@stochastic",
            "default=float32,updates=bfloat16,optimizer_state=fp8_e4m3@stochastic"]


def _run(policy, momentum, generic, dtype=np.float32):
    rng = np.random.default_rng(0)
    net = Sequential(Linear(6, 5, rng=rng), ReLU(), Linear(5, 3, rng=rng)).astype(dtype)
    if policy is not None:
        net.bind(Precision.from_string(policy), 1)
    opt = SGD(net, 0.05, momentum=momentum)
    if generic:
        opt._update_in_place = lambda *a: Optimizer._update_in_place(opt, *a)
    g = np.random.default_rng(5)
    for _ in range(4):
        for _, _, p in net.params():
            p.grad[...] = g.standard_normal(p.grad.shape)
        opt.step()
    return [p.value.copy() for _, _, p in net.params()], opt.state_dict()["moments"]


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("momentum", [0.0, 0.9])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_in_place_equals_generic(policy, momentum, dtype):
    fast, fast_m = _run(policy, momentum, False, dtype)
    slow, slow_m = _run(policy, momentum, True, dtype)
    for a, b in zip(fast, slow, strict=True):
        np.testing.assert_array_equal(a, b)
        assert np.signbit(a).tolist() == np.signbit(b).tolist()
    assert fast_m.keys() == slow_m.keys()
    for n in fast_m:
        assert fast_m[n].keys() == slow_m[n].keys() == ({"v"} if momentum else set())
        for k in fast_m[n]:
            np.testing.assert_array_equal(fast_m[n][k], slow_m[n][k])


ROUNDED_POLICIES = [
    "default=float32,updates=fixed<4,12>@stochastic,optimizer_state=fixed<4,12>@stochastic",
    "default=float32,updates=bfloat16@stochastic,optimizer_state=bfloat16@stochastic",
    "default=float32,updates=float16,optimizer_state=fp8_e4m3",
    # a pair the one-pass kernel does not take: the regular path
    "default=float32,updates=fixed<4,12>@stochastic,optimizer_state=bfloat16@stochastic",
]


def _run_rounded(policy: str, stats_every: int | None, one_pass: bool):
    """Four SGD-momentum steps with the one-pass rounding kernel allowed or not; statistics
    off (None) or counted on every ``stats_every``-th call."""
    from quantsim import optim
    from quantsim.precision import configure_stats, iter_points

    rng = np.random.default_rng(0)
    net = Sequential(Linear(6, 5, rng=rng), ReLU(), Linear(5, 3, rng=rng))
    net.bind(Precision.from_string(policy), 1)
    configure_stats(net, stats_every is not None, stats_every or 1)
    opt = SGD(net, 0.05, momentum=0.9)
    g = np.random.default_rng(5)
    original = optim._momentum_rounded
    for _ in range(4):
        for _, _, p in net.params():
            p.grad[...] = g.standard_normal(p.grad.shape)
        if not one_pass:
            optim._momentum_rounded = lambda *a: False
        try:
            opt.step()
        finally:
            optim._momentum_rounded = original
    points = {name: (pt.calls, pt.stats, pt.state_dict()["tag_states"])
              for name, pt in iter_points(net)}
    return [p.value.copy() for _, _, p in net.params()], opt.state_dict()["moments"], points


@pytest.mark.parametrize("policy", ROUNDED_POLICIES)
@pytest.mark.parametrize("stats_every", [None, 3])
def test_one_pass_rounding_equals_the_regular_path(policy, stats_every, monkeypatch):
    """Weights, momentum, every point's call counter and statistics: the same bits."""
    from quantsim.kernels import fused_update

    used = []
    kernel = fused_update.momentum_rounded_
    monkeypatch.setattr(fused_update, "momentum_rounded_",
                        lambda *a: used.append(1) or kernel(*a))
    fast_w, fast_m, fast_p = _run_rounded(policy, stats_every, True)
    assert bool(used) == (policy != ROUNDED_POLICIES[-1])  # the kernel ran where it applies
    used.clear()
    slow_w, slow_m, slow_p = _run_rounded(policy, stats_every, False)
    assert not used
    for a, b in zip(fast_w, slow_w, strict=True):
        np.testing.assert_array_equal(a.view(np.uint32), b.view(np.uint32))
    for n in fast_m:
        np.testing.assert_array_equal(fast_m[n]["v"].view(np.uint32),
                                      slow_m[n]["v"].view(np.uint32))
    assert fast_p.keys() == slow_p.keys()
    for name in fast_p:
        assert fast_p[name][0] == slow_p[name][0], name
        assert fast_p[name][1].as_dict() == slow_p[name][1].as_dict(), name
        assert fast_p[name][2] == slow_p[name][2], name  # the tags' state entries
