"""Stochastic rounding: neighbours only, unbiased, P(up) equal to the distance, limited random
bits, counter-based reproducibility (seed, flat index)."""

from __future__ import annotations

import numpy as np
import pytest

from quantsim import quantize
from quantsim.formats import parse

from .exact import FloatSpec, neighbours, same_value

# inputs beyond a carrier's range are intentional (overflow cases)
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

SR_FORMATS = ["fixed<4,12>", "bfloat16", "float16", "float<e5m2>", "float<e3m2>",
              "fp8_e4m3", "float<e4m3,nosub>", "fixed<8,0>"]


def z(n):
    return 5.0 * np.sqrt(n)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("spec", SR_FORMATS)
def test_lands_on_a_neighbour(spec, dtype, rng):
    fmt = parse(spec)
    scale = min(fmt.max, 1e4) / 4
    small = 2.0**-20 if spec.startswith("fixed") else fmt.min_normal * 4
    x = np.concatenate([rng.standard_normal(100_000) * scale,
                        rng.standard_normal(20_000) * small]).astype(dtype)
    lo = quantize(x, spec, rounding="down")
    hi = quantize(x, spec, rounding="up")
    for r in ("stochastic", "stochastic<3>"):
        y = quantize(x, spec, rounding=r, seed=11)
        assert y.dtype == dtype and y.shape == x.shape
        ok = same_value(y, lo) | same_value(y, hi)
        assert ok.all(), (r, x[~ok][:5], y[~ok][:5], lo[~ok][:5], hi[~ok][:5])
        exact = lo == hi  # representable (or saturated): no randomness
        assert (y[exact] == lo[exact]).all()
        rep = exact & (lo == x)
        assert (y[rep] == x[rep]).all()
        # both neighbours actually occur
        strict = lo < hi
        assert (y[strict] == lo[strict]).any() and (y[strict] == hi[strict]).any()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("spec", ["fixed<4,12>", "bfloat16", "float<e5m2>", "fixed<2,3>"])
def test_unbiased(spec, dtype, rng):
    fmt = parse(spec)
    n = 1_000_000
    x = (rng.uniform(-1, 1, n) * min(fmt.max, 100) / 2).astype(dtype)
    lo = quantize(x, spec, rounding="down").astype(np.float64)
    hi = quantize(x, spec, rounding="up").astype(np.float64)
    y = quantize(x, spec, rounding="stochastic", seed=2024).astype(np.float64)
    xd = x.astype(np.float64)
    p = np.where(hi > lo, (xd - lo) / np.where(hi > lo, hi - lo, 1), 0)
    var = (hi - lo) ** 2 * p * (1 - p)
    err = (y - xd).sum()
    assert abs(err) < 5 * np.sqrt(var.sum()), (err, np.sqrt(var.sum()))
    # and the bias of toward_zero on the same data is far larger (the test has power)
    tz = quantize(x, spec, rounding="down").astype(np.float64)
    assert abs((tz - xd).sum()) > 50 * np.sqrt(var.sum())


def frequency_case(spec, x0, r, n=200_000, dtype=np.float64, seed=7):
    x = np.full(n, x0, dtype=dtype)
    rounding = "stochastic" if r is None else f"stochastic<{r}>"
    y = quantize(x, spec, rounding=rounding, seed=seed)
    lo, hi = neighbours(float(x[0]), _ref_spec(spec))
    assert lo < hi
    assert np.isin(y, [lo, hi]).all(), np.unique(y)
    return float((y == hi).mean()), n


def _ref_spec(spec):
    from .exact import FixedSpec

    if spec.startswith("fixed"):
        a, b = spec[6:-1].split(",")
        return FixedSpec(int(a), int(b))
    table = {"bfloat16": FloatSpec(8, 7), "float16": FloatSpec(5, 10),
             "float<e5m2>": FloatSpec(5, 2), "float<e4m3,nosub>": FloatSpec(4, 3, sub=False)}
    return table[spec]


def assert_prob(phat, p, n):
    se = np.sqrt(max(p * (1 - p), 1e-12) / n)
    if p in (0.0, 1.0):
        assert phat == p, (phat, p)
    else:
        assert abs(phat - p) < 5 * se, (phat, p, se)


FRACS = [0.3, 0.5, 0.7, 0.05, 0.9375, 0.99]


@pytest.mark.parametrize("frac", FRACS)
@pytest.mark.parametrize("spec,base,q", [
    ("fixed<4,12>", 1.25, 2.0**-12),
    ("fixed<4,12>", -3.0, 2.0**-12),
    ("bfloat16", 1.0, 2.0**-7),
    ("bfloat16", -24.0, 16 * 2.0**-7),
    ("float16", 2.0**-20, 2.0**-24),  # subnormal range
    ("float<e4m3,nosub>", 0.0, 2.0**-6),  # between 0 and xmin with subnormals off
])
def test_probability_equals_distance(spec, base, q, frac):
    x0 = base + frac * q
    phat, n = frequency_case(spec, x0, None)
    assert_prob(phat, frac, n)


# (frac, r, P(up) = floor(frac 2^r) / 2^r)
LIMITED = [(0.3, 2, 0.25), (0.2, 2, 0.0), (0.25, 2, 0.25), (0.99, 2, 0.75), (0.3, 4, 0.25),
           (0.7, 4, 11 / 16), (0.7, 3, 5 / 8), (0.01, 8, 2 / 256), (0.5, 1, 0.5), (0.49, 1, 0.0),
           (0.3, 1, 0.0), (0.9, 1, 0.5)]


@pytest.mark.parametrize("frac,r,p", LIMITED)
@pytest.mark.parametrize("spec,base,q", [
    ("fixed<4,12>", 1.25, 2.0**-12),
    ("fixed<4,12>", -3.0, 2.0**-12),
    ("bfloat16", 1.0, 2.0**-7),
    ("float<e5m2>", 3.0, 0.5),
])
def test_limited_random_bits(spec, base, q, frac, r, p):
    assert p == np.floor(frac * 2**r) / 2**r
    phat, n = frequency_case(spec, base + frac * q, r)
    assert_prob(phat, p, n)


@pytest.mark.parametrize("frac,r,p", LIMITED)
def test_limited_random_bits_negative_float_decides_on_the_magnitude(frac, r, p):
    """Floats are sign-magnitude: hardware adds its r random bits to the magnitude, so for
    negative x the magnitude moves away from zero with P = floor(frac_mag 2^r)/2^r, where
    frac_mag = (|x| - 1)/q. Here x = -(1 + q) + (1 - frac) q, so frac_mag = frac and the
    result lands on lo = -(1 + q) (away from zero) with probability p."""
    q = 2.0**-7
    x0 = -(1 + q) + (1 - frac) * q
    phat_hi, n = frequency_case("bfloat16", x0, r)
    assert_prob(1 - phat_hi, p, n)


@pytest.mark.parametrize("r", [None, 3])
def test_float_stochastic_rounding_is_sign_symmetric(r, rng):
    x = rng.standard_normal(20_000)
    rounding = "stochastic" if r is None else f"stochastic<{r}>"
    a = quantize(x, "bfloat16", rounding=rounding, seed=11)
    b = quantize(-x, "bfloat16", rounding=rounding, seed=11)
    assert np.array_equal(a, -b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_format_default_rounding_and_r_suffix(dtype, rng):
    x = rng.standard_normal(10_000).astype(dtype)
    a = parse("fixed<4,12>@stochastic").quantize(x, seed=5)
    b = quantize(x, "fixed<4,12>", rounding="stochastic", seed=5)
    assert np.array_equal(a, b)
    c = parse("bfloat16@stochastic<4>").quantize(x, seed=5)
    d = quantize(x, "bfloat16", rounding="stochastic<4>", seed=5)
    assert np.array_equal(c, d)
    # an explicit rounding overrides the format's default
    e = parse("bfloat16@stochastic").quantize(x, rounding="nearest", seed=5)
    assert np.array_equal(e, quantize(x, "bfloat16"))


# ---- reproducibility ------------------------------------------------------------------------

@pytest.mark.parametrize("spec", ["fixed<4,12>", "bfloat16", "float<e4m3,nosub>"])
@pytest.mark.parametrize("rounding", ["stochastic", "stochastic<4>"])
def test_seed_reproducible_and_independent(spec, rounding, rng):
    x = (rng.standard_normal(200_000) * 3).astype(np.float32)
    a = quantize(x, spec, rounding=rounding, seed=123)
    b = quantize(x, spec, rounding=rounding, seed=123)
    c = quantize(x, spec, rounding=rounding, seed=124)
    assert np.array_equal(a, b)
    lo, hi = quantize(x, spec, rounding="down"), quantize(x, spec, rounding="up")
    inexact = lo != hi
    diff = (a != c)[inexact].mean()
    # two independent seeds disagree on roughly 2 p (1-p) of the inexact elements
    assert diff > 0.2, diff
    # the same seed in different elements draws different numbers (no reuse of one draw)
    same = np.full(100_000, 1.0 + 0.5 * 2.0**-7, np.float32)
    y = quantize(same, "bfloat16", rounding=rounding, seed=123)
    assert 0.45 < (y > 1).mean() < 0.55


def test_seed_extremes():
    x = np.full(1000, 1.0 + 0.5 * 2.0**-7, np.float32)
    for seed in (0, 1, 2**63, 2**64 - 1):
        y = quantize(x, "bfloat16", rounding="stochastic", seed=seed)
        assert 0.35 < (y > 1).mean() < 0.65, seed


def test_seed_none_is_fresh():
    x = np.full(10_000, 1.0 + 0.5 * 2.0**-7, np.float32)
    a = quantize(x, "bfloat16", rounding="stochastic")
    b = quantize(x, "bfloat16", rounding="stochastic")
    assert not np.array_equal(a, b)


@pytest.mark.parametrize("spec", ["fixed<4,12>", "bfloat16"])
def test_shape_and_prefix_consistency(spec, rng):
    x = (rng.standard_normal(6 * 5 * 4000)).astype(np.float32)
    full = quantize(x, spec, rounding="stochastic", seed=99)
    shaped = quantize(x.reshape(6, 5, 4000), spec, rounding="stochastic", seed=99)
    assert np.array_equal(shaped.ravel(), full)
    for n in (1, 7, 1000, 33_333):
        pre = quantize(x[:n].copy(), spec, rounding="stochastic", seed=99)
        assert np.array_equal(pre, full[:n]), n
    # element i depends on the flat C-order index, so a Fortran-ordered copy of the same
    # logical array gives the same logical result
    xf = np.asfortranarray(x.reshape(600, 200))
    yf = quantize(xf, spec, rounding="stochastic", seed=99)
    assert np.array_equal(np.ascontiguousarray(yf).ravel(), full)


def test_thread_count_independent(rng):
    numba = pytest.importorskip("numba")
    x = (rng.standard_normal(2_000_000)).astype(np.float32)
    old = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        a = quantize(x, "bfloat16", rounding="stochastic", seed=42)
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        b = quantize(x, "bfloat16", rounding="stochastic", seed=42)
    finally:
        numba.set_num_threads(old)
    assert np.array_equal(a, b)


# ---- overflow policies under stochastic rounding ---------------------------------------------

@pytest.mark.parametrize("spec,want", [
    ("float16", np.inf), ("float<e5m10,sat>", 65504.0), ("fp8_e4m3", np.nan),
    ("fp8_e4m3,sat", 448.0), ("fixed<4,12>", 8 - 2.0**-12),
])
def test_stochastic_overflow(spec, want):
    if spec == "fp8_e4m3,sat":
        spec = "float<e4m3,fn,sat>"
    x = np.full(1000, 1e6, np.float32)
    for r in ("stochastic", "stochastic<2>"):
        y = quantize(x, spec, rounding=r, seed=1)
        yn = quantize(-x, spec, rounding=r, seed=1)
        if np.isnan(want):
            assert np.isnan(y).all() and np.isnan(yn).all()
        else:
            assert (y == want).all(), (spec, np.unique(y))
            neg = -want if spec != "fixed<4,12>" else -8.0
            assert (yn == neg).all(), (spec, np.unique(yn))


def test_stochastic_specials():
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0], np.float32)
    y = quantize(x, "bfloat16", rounding="stochastic", seed=3)
    assert np.isnan(y[0]) and y[1] == np.inf and y[2] == -np.inf
    assert y[3] == 0 and not np.signbit(y[3]) and y[4] == 0 and np.signbit(y[4]) and y[5] == 1
