"""The one-pass momentum update with two rounding points (quantsim.kernels.fused_update) gives
the bits of the momentum kernel followed by the two points' own quantizing calls."""

from __future__ import annotations

import numpy as np
import pytest

from quantsim.formats import parse
from quantsim.kernels import fused_update
from quantsim.kernels.cpu import CHUNK
from quantsim.nn import _fused
from quantsim.precision import QuantPoint

SPECS = [
    ("fixed<4,12>@stochastic", "fixed<4,12>@stochastic"),
    ("fixed<2,6>@stochastic<4>", "fixed<5,15>@stochastic"),
    ("bfloat16@stochastic", "float16@stochastic"),
    ("fp8_e4m3@stochastic", "bfloat16@stochastic"),
    ("float16", "bfloat16"),
    ("fixed<4,12>", "fp8_e5m2"),
]


def _values(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(n) * np.exp2(rng.integers(-30, 12, n))).astype(np.float32)
    special = np.array([0.0, -0.0, np.nan, -np.nan, np.inf, -np.inf, 1e-45, -1e-45, 3e38,
                        -3e38, 1e4, -1e4], dtype=np.float32)
    x[: min(n, special.size)] = special[: min(n, special.size)]
    return x


def _points(state_spec: str, update_spec: str) -> tuple[QuantPoint, QuantPoint]:
    return (QuantPoint("fc", "optimizer_state", parse(state_spec), 7, collect_stats=False),
            QuantPoint("fc", "updates", parse(update_spec), 7, collect_stats=False))


@pytest.mark.parametrize("state_spec, update_spec", SPECS)
@pytest.mark.parametrize("n", [1, 37, CHUNK + 3])
def test_one_pass_equals_the_kernel_then_the_two_calls(state_spec, update_spec, n):
    w, v, g = _values(n, 0), _values(n, 1), _values(n, 2)
    lr, mu = 0.05, 0.9
    ps, pu = _points(state_spec, update_spec)  # the regular path
    qs, qu = _points(state_spec, update_spec)  # the fused path, from plans
    for _ in range(3):  # call number 3 on both sides: the plans follow the call counter
        ps(v)
        pu(v)
        qs.count_fused_call()
        qu.count_fused_call()
    # momentum kernel, the state point, w + v, the update point
    v_want = ps(_fused.momentum_state(v, g, lr, mu, out=np.empty_like(v)))
    with np.errstate(over="ignore"):
        w_want = pu(w + v_want)
    plan_s, plan_u = qs.fused_call_plan(np.float32), qu.fused_call_plan(np.float32)
    assert plan_s is not None and plan_u is not None
    assert qs.calls == qu.calls == 3  # planning changes nothing
    w_got, v_got = w.copy(), v.copy()
    if not fused_update.momentum_rounded_applies(plan_s, plan_u):
        pytest.skip("a pair the optimizer's regular path takes")
    fused_update.momentum_rounded_(w_got, v_got, g, lr, mu, plan_s, plan_u)
    np.testing.assert_array_equal(v_got.view(np.uint32), v_want.view(np.uint32))
    np.testing.assert_array_equal(w_got.view(np.uint32), w_want.view(np.uint32))


def test_pairs_of_different_roundings_are_left_to_the_regular_path():
    plans = {spec: QuantPoint("l", "updates", parse(spec), 1,
                              collect_stats=False).fused_call_plan(np.float32)
             for spec in ("float16", "float16@stochastic", "fixed<4,12>@stochastic",
                          "fixed<4,12>")}
    applies = fused_update.momentum_rounded_applies
    assert applies(plans["float16"], plans["fixed<4,12>"])
    assert applies(plans["fixed<4,12>@stochastic"], plans["fixed<4,12>@stochastic"])
    assert not applies(plans["float16"], plans["float16@stochastic"])
    assert not applies(plans["float16@stochastic"], plans["fixed<4,12>@stochastic"])


@pytest.mark.parametrize("spec", ["dfxp<12>", "block<8,32>", "float32", "float16@toward_zero"])
def test_plans_only_for_stateless_elementwise_formats_on_float32(spec):
    point = QuantPoint("l", "updates", parse(spec), 1, collect_stats=False)
    plan = point.fused_call_plan(np.float32)
    if spec == "float16@toward_zero":
        assert plan is not None and not fused_update.momentum_rounded_applies(plan, plan)
    else:
        assert plan is None
    assert QuantPoint("l", "updates", parse("float16"), 1,
                      collect_stats=False).fused_call_plan(np.float64) is None


def test_no_plan_for_a_call_whose_statistics_are_counted():
    point = QuantPoint("l", "updates", parse("float16"), 1, collect_stats=True, stats_every=1)
    assert point.fused_call_plan(np.float32) is None
    point.stats_every = 1 << 40  # sampled: only the first call (sample_next) is counted
    assert point.fused_call_plan(np.float32) is None and point.sample_next
    point(np.ones(4, dtype=np.float32))
    assert not point.sample_next and point.fused_call_plan(np.float32) is not None



class _OwnCallPoint(QuantPoint):
    def __call__(self, x, out=None, *, tag=None):  # a subclass with its own behaviour
        return super().__call__(x, out, tag=tag)


class _OwnQuantizeFormat(type(parse("float16"))):
    def quantize(self, x, **kwargs):  # a format subclass with its own behaviour
        return super().quantize(x, **kwargs)


class _DuckFormat:
    """Not a NumberFormat: what Precision accepts by duck typing."""

    def quantize(self, x, **kwargs):
        return x.copy()

    def is_identity(self, dtype):
        return False

    def new_state(self):
        return None


def test_no_plan_where_the_regular_call_runs_code_of_its_own():
    fp16 = parse("float16")
    assert _OwnCallPoint("l", "updates", fp16, 1, collect_stats=False).fused_call_plan(
        np.float32) is None
    own = _OwnQuantizeFormat(**{f: getattr(fp16, f) for f in fp16.__dataclass_fields__})
    assert QuantPoint("l", "updates", own, 1, collect_stats=False).fused_call_plan(
        np.float32) is None
    assert QuantPoint("l", "updates", _DuckFormat(), 1, collect_stats=False).fused_call_plan(
        np.float32) is None


def test_a_fused_call_leaves_the_point_as_the_regular_call_would():
    a = QuantPoint("l", "updates", parse("float16"), 1, collect_stats=False)
    b = QuantPoint("l", "updates", parse("float16"), 1, collect_stats=False)
    a(np.ones(3, dtype=np.float32), tag="W")
    b.count_fused_call("W")
    da, db = a.state_dict(), b.state_dict()
    assert da.keys() == db.keys()
    for key in da:
        if key != "stats":  # arrays; no statistics were collected on either side
            assert da[key] == db[key], key
    assert a.stats.as_dict() == b.stats.as_dict()
