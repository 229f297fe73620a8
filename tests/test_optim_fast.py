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
