"""Deterministic roundings against the exact Fraction reference (tests/formats/exact.py).

Fixed point for several (IL, FL), float formats in the directed modes on float32 and float64
carriers (float64 inputs are where a float32-only reference would be wrong).
"""

from __future__ import annotations

import numpy as np
import pytest

from quantsim import quantize
from quantsim.formats import parse

from .exact import (
    MODES,
    FixedSpec,
    FloatSpec,
    mismatch_report,
    pow2,
    ref_quantize,
    same_bits,
    same_value,
)

# inputs beyond a carrier's range are intentional (overflow cases)
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

FIXED = [(4, 12), (1, 15), (16, 16), (8, 0), (3, 5), (2, 0), (5, 3), (12, 20), (24, 0)]


def fixed_inputs(spec: FixedSpec, rng, dtype) -> np.ndarray:
    """Random plus adversarial inputs: grid points, ties, just above/below ties, bounds."""
    q = float(pow2(-spec.fl))
    mx, lo = float(spec.max), float(spec.lowest)
    k = rng.integers(spec.kmin - 4, spec.kmax + 5, size=600, dtype=np.int64)
    grid = k * q
    ties = grid + q / 2
    pts = np.concatenate([
        grid, ties, rng.uniform(lo * 1.1, mx * 1.1, 800), rng.standard_normal(300) * q * 8,
        [mx, lo, mx + q / 2, lo - q / 2, mx + q, lo - q, mx - q / 2, lo + q / 2, 2 * mx, 4 * lo,
         q / 2, -q / 2, q / 4, -q / 4, 3 * q / 2, -3 * q / 2, 0.0, -0.0, 1e30, -1e30],
    ])
    x = pts.astype(dtype)
    inf = dtype(np.inf)
    x = np.concatenate([x, np.nextafter(x, inf), np.nextafter(x, -inf)])
    return np.concatenate([x, np.array([np.inf, -np.inf, np.nan], dtype)])


def fixed_fits(spec: FixedSpec, dtype) -> bool:
    return spec.il + spec.fl - 1 <= np.finfo(dtype).nmant + 1


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("il,fl", FIXED, ids=[f"fixed<{a},{b}>" for a, b in FIXED])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fixed_against_fraction_reference(il, fl, mode, dtype, rng):
    spec = FixedSpec(il, fl)
    if not fixed_fits(spec, dtype):
        pytest.skip("the format's max is not representable in this carrier (see saturation test)")
    x = fixed_inputs(spec, rng, dtype)
    want = ref_quantize(x, spec, mode)
    got = quantize(x, spec.spec(), rounding=mode)
    assert got.dtype == x.dtype and got.shape == x.shape
    ok = same_value(got, want)
    assert ok.all(), f"{spec.spec()}@{mode}\n" + mismatch_report(x, got, want, ok)


def test_fixed_wide_on_float32_within_range(rng):
    """fixed<16,16> on float32 carriers, away from the saturation bound (exact results fit).
    Rejecting the combination outright with a clear FormatError is also acceptable."""
    from quantsim.errors import FormatError

    try:
        quantize(np.zeros(1, np.float32), "fixed<16,16>")
    except FormatError as e:
        assert "float32" in str(e) and "fixed<16,16>" in str(e)
        return
    spec = FixedSpec(16, 16)
    x = np.concatenate([
        rng.uniform(-30000, 30000, 3000), rng.standard_normal(3000),
        (rng.integers(-2**20, 2**20, 2000) + 0.5) * 2.0**-16, [-32768.0],
    ]).astype(np.float32)
    for mode in MODES:
        want = ref_quantize(x, spec, mode)
        got = quantize(x, "fixed<16,16>", rounding=mode)
        ok = same_value(got, want)
        assert ok.all(), mode + "\n" + mismatch_report(x, got, want, ok)


@pytest.mark.parametrize("mode", MODES)
def test_fixed_wide_on_float32_saturation_stays_in_range(mode):
    """fixed<16,16>'s max 2^15-2^-16 has no float32 representation: saturating on a float32
    carrier must not produce 32768 (outside the format); a clear FormatError is acceptable."""
    from quantsim.errors import FormatError

    x = np.array([1e6, 32768.0, np.inf, -1e6, -np.inf], np.float32)
    try:
        got = quantize(x, "fixed<16,16>", rounding=mode)
    except FormatError:
        return
    assert (got[:3] < 32768).all() and (got[:3] >= 32767.99).all(), got
    assert (got[3:] == -32768).all(), got


def test_fixed_properties():
    for il, fl in FIXED:
        f = parse(f"fixed<{il},{fl}>")
        s = FixedSpec(il, fl)
        assert f.bits == il + fl
        assert f.max == float(s.max)
        assert f.eps == float(pow2(-fl))


def test_fixed_handpicked():
    x = np.array([0.5 / 4096, 1.5 / 4096, 2.5 / 4096, -0.5 / 4096, -1.5 / 4096, 8.0, -8.0,
                  -8.0001, 7.99, 7.9998779296875, 100.0, -100.0], np.float64)
    got = quantize(x, "fixed<4,12>")
    want = np.array([0, 2 / 4096, 2 / 4096, 0, -2 / 4096, 8 - 2**-12, -8, -8, 7.98999023437500,
                     8 - 2**-12, 8 - 2**-12, -8])
    assert same_value(got, want).all(), got
    assert quantize(np.array([0.3, -0.3]), "fixed<1,15>", rounding="down")[1] < -0.3


# ---- float formats in every deterministic mode on float32 and float64 carriers ----------------

FLOATS = [
    FloatSpec(5, 10), FloatSpec(8, 7), FloatSpec(8, 10), FloatSpec(4, 3), FloatSpec(5, 2),
    FloatSpec(3, 2), FloatSpec(3, 4), FloatSpec(2, 5), FloatSpec(4, 3, fn=True),
    FloatSpec(5, 2, sub=False), FloatSpec(4, 3, sub=False), FloatSpec(3, 2, sat=True),
    FloatSpec(5, 2, sat=True), FloatSpec(4, 3, sub=False, sat=True), FloatSpec(8, 23),
    FloatSpec(4, 3, fn=True, sat=True), FloatSpec(6, 9), FloatSpec(8, 23, sub=False),
]


def float_inputs(spec: FloatSpec, rng, dtype, n=3000) -> np.ndarray:
    lo = np.log2(float(spec.min_subnormal)) - 3
    hi = np.log2(float(spec.max)) + 2
    if dtype == np.float32:
        lo, hi = max(lo, -149), min(hi, 127.9)
    mag = np.exp2(rng.uniform(lo, hi, n))
    if dtype == np.float64:
        mag = mag * (1 + rng.uniform(0, 2.0**-20, n))  # full float64 mantissas
    x = np.concatenate([mag, -mag])
    mx, xmin = float(spec.max), float(spec.min_normal)
    thr = float(spec.overflow_threshold)
    specials = [mx, thr, xmin, xmin / 2, float(spec.min_subnormal),
                float(spec.min_subnormal) / 2, 0.0, 1.0, 1.0 + 2.0 ** -(spec.m + 1)]
    x = np.concatenate([x, specials, np.negative(specials)]).astype(dtype)
    inf = dtype(np.inf)
    x = np.concatenate([x, np.nextafter(x, inf), np.nextafter(x, -inf)])
    return np.concatenate([x, np.array([np.inf, -np.inf, np.nan, -0.0], dtype)])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("spec", FLOATS, ids=[s.spec() for s in FLOATS])
def test_float_against_fraction_reference(spec, mode, dtype, rng):
    if spec.m > np.finfo(dtype).nmant:
        pytest.skip("wider than the carrier")
    x = float_inputs(spec, rng, dtype, n=1500 if spec.e >= 8 else 800)
    want = ref_quantize(x, spec, mode)
    got = quantize(x, spec.spec(), rounding=mode)
    assert got.dtype == x.dtype and got.shape == x.shape
    ok = same_bits(got, want)
    assert ok.all(), f"{spec.spec()}@{mode} {np.dtype(dtype).name}\n" + mismatch_report(
        x, got, want, ok)


@pytest.mark.parametrize("mode", ["toward_zero", "down", "up"])
def test_fn_directed_overflow(mode):
    """fp8_e4m3 (no inf) in directed modes: a value that rounds (on the unbounded grid) past max
    gives NaN in every mode ("overflow -> NaN"); one that rounds to max stays max."""
    x = np.array([448.0, 449.0, 470.0, 1e4, -449.0, -1e4, np.inf, -np.inf, 479.0, 480.0, -479.0],
                 np.float32)
    spec = FloatSpec(4, 3, fn=True)
    want = ref_quantize(x, spec, mode)
    got = quantize(x, "fp8_e4m3", rounding=mode)
    ok = same_bits(got, want)
    assert ok.all(), mode + "\n" + mismatch_report(x, got, want, ok)


def test_nosub_boundaries():
    """Subnormals off: the exact input is rounded into normals U {0} (no flush before rounding)."""
    xmin = 2.0**-14
    above = np.nextafter(np.float32(xmin / 2), np.float32(1))
    x = np.array([xmin / 2, above, xmin * 0.75, xmin * 0.25, 2.0**-30,
                  -xmin / 2, -above, 2.0**-149], np.float32)
    cases = {
        "nearest": [0, xmin, xmin, 0, 0, -0.0, -xmin, 0],
        "up": [xmin] * 5 + [-0.0, -0.0, xmin],
        "down": [0] * 5 + [-xmin, -xmin, 0],
        "toward_zero": [0] * 5 + [-0.0, -0.0, 0],
    }
    for mode, want in cases.items():
        got = quantize(x, "float<e5m2,nosub>", rounding=mode)
        want = np.array(want, np.float32)
        assert same_bits(got, np.copysign(want, x)).all(), (mode, got)


def test_float_properties():
    cases = {
        "float16": (16, 65504.0, 2.0**-14, 2.0**-24, 2.0**-10),
        "bfloat16": (16, float(FloatSpec(8, 7).max), 2.0**-126, 2.0**-133, 2.0**-7),
        "tf32": (19, float(FloatSpec(8, 10).max), 2.0**-126, 2.0**-136, 2.0**-10),
        "fp8_e4m3": (8, 448.0, 2.0**-6, 2.0**-9, 2.0**-3),
        "fp8_e5m2": (8, 57344.0, 2.0**-14, 2.0**-16, 2.0**-2),
        "float<e4m3>": (8, 240.0, 2.0**-6, 2.0**-9, 2.0**-3),
        "float<e3m4>": (8, 15.5, 0.25, 2.0**-6, 2.0**-4),
        "float32": (32, float(np.finfo(np.float32).max), 2.0**-126, 2.0**-149, 2.0**-23),
    }
    for spec, (bits, mx, mn, ms, eps) in cases.items():
        f = parse(spec)
        got = (f.bits, f.max, f.min_normal, f.min_subnormal, f.eps)
        assert got == (bits, mx, mn, ms, eps), spec
    f = parse("float<e5m2,nosub>")
    assert f.min_normal == 2.0**-14
