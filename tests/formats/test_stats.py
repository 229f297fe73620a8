"""QuantStats counters on small hand-made arrays."""

from __future__ import annotations

import math

import numpy as np
import pytest

from quantsim import quantize
from quantsim.formats import QuantStats, parse


def run(x, spec, rounding=None, dtype=np.float32):
    st = QuantStats()
    quantize(np.asarray(x, dtype), spec, rounding=rounding, stats=st, seed=1)
    return st


def test_fresh_stats_are_zero():
    st = QuantStats()
    for f in ("count", "zero_in", "underflow", "overflow", "nan", "inf"):
        assert getattr(st, f) == 0, f
    assert st.sum_abs == 0 and st.max_abs == 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float16_all_counters(dtype):
    x = [0.0, -0.0, 1e-10, -1e-9, 1e6, -7e4, np.nan, np.inf, -np.inf, 1.5, 3e-8, 65519.0]
    st = run(x, "float16", dtype=dtype)
    assert st.count == 12
    assert st.zero_in == 2
    assert st.underflow == 2          # 1e-10 and -1e-9 flush; 3e-8 rounds to 2^-24
    assert st.overflow == 2           # 1e6 and -7e4 become inf; 65519 rounds to 65504
    assert st.nan == 1
    assert st.inf == 2
    fin = [abs(float(np.asarray(v, dtype))) for v in x if math.isfinite(v)]
    assert st.sum_abs == pytest.approx(sum(fin), rel=1e-6)
    assert st.max_abs == pytest.approx(1e6, rel=1e-7)


def test_accumulates_over_calls():
    st = QuantStats()
    x = np.array([0.0, 1e-10, 1e6, np.nan, 2.0], np.float32)
    quantize(x, "float16", stats=st)
    quantize(x, "float16", stats=st)
    assert (st.count, st.zero_in, st.underflow, st.overflow, st.nan) == (10, 2, 2, 2, 2)
    assert st.sum_abs == pytest.approx(2 * (1e-10 + 1e6 + 2.0), rel=1e-6)
    assert st.max_abs == pytest.approx(1e6, rel=1e-7)
    fmt = parse("float16")
    fmt.quantize(x, stats=st)
    assert st.count == 15


def test_directed_up_does_not_underflow():
    st = run([1e-10, -1e-10, 2.0**-30], "float16", rounding="up")
    assert st.underflow == 1  # -1e-10 rounds up to -0; the positive ones to 2^-24
    st = run([1e-10, -1e-10], "float16", rounding="toward_zero")
    assert st.underflow == 2


def test_nosub_underflow():
    xmin = 2.0**-14
    st = run([xmin * 0.4, xmin * 0.6, xmin, -xmin * 0.5], "float<e5m2,nosub>")
    assert st.underflow == 2   # 0.4 xmin -> 0, -0.5 xmin -> -0 (tie to 0); 0.6 xmin -> xmin
    st = run([xmin * 0.4], "float<e5m2>")  # subnormals on: 0.4 xmin rounds to 2 subnormal quanta
    assert st.underflow == 0


def test_fixed_saturation_counts_as_overflow():
    st = run([100.0, -100.0, 7.9375, -8.0, 1.0, 0.01, 0.0, np.inf], "fixed<4,4>")
    assert st.overflow == 2      # +-100 saturate; 7.9375 and -8 are representable
    assert st.underflow == 1     # 0.01 < 2^-5 rounds to 0
    assert st.zero_in == 1 and st.inf == 1 and st.count == 8
    assert st.max_abs == 100.0
    assert st.sum_abs == pytest.approx(100 + 100 + 7.9375 + 8 + 1 + 0.01, rel=1e-6)


def test_sat_and_fn_overflow():
    st = run([1e6, -1e6, 448.0, 500.0], "fp8_e4m3")
    assert st.overflow == 3 and st.nan == 0   # NaN produced by overflow is not a NaN input
    st = run([1e6, -1e6, 57344.0, np.inf], "float<e5m2,sat>")
    assert st.overflow == 2 and st.inf == 1
    st = run([1e6, -1e6, 240.0], "float<e4m3>", rounding="toward_zero")
    assert st.overflow == 2   # saturated to +-max by the rounding mode


def test_stochastic_counts():
    st = run(np.full(1000, 2.0**-26), "float16", rounding="stochastic")
    # 2^-26 lies between 0 and 2^-24: flushed to zero with probability 3/4
    assert st.count == 1000
    assert 650 < st.underflow < 850


def test_stats_with_out_and_shapes():
    st = QuantStats()
    x = np.array([[0.0, 1e6], [np.nan, -1e-10]], np.float32)
    out = np.empty_like(x)
    parse("float16").quantize(x, out=out, stats=st)
    assert (st.count, st.zero_in, st.overflow, st.nan, st.underflow) == (4, 1, 1, 1, 1)


def test_merge_reset_as_dict():
    a = run([0.0, 1e6], "float16")
    b = run([np.nan, 3.0], "float16")
    a.merge(b)
    assert (a.count, a.zero_in, a.overflow, a.nan) == (4, 1, 1, 1)
    assert a.max_abs == pytest.approx(1e6)
    d = a.as_dict()
    assert d["count"] == 4 and d["nan"] == 1
    a.reset()
    assert a.count == 0 and a.overflow == 0 and a.max_abs == 0
