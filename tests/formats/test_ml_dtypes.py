"""Nearest rounding against numpy's float16 cast and ml_dtypes casts from float32, bit for bit.

Exhaustive for the 16- and 8-bit formats: every representable value, every midpoint between
neighbours (the ties), and the float32 neighbours of both, with both signs, plus specials and
random float32 bit patterns over all binades.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

from quantsim import quantize

from .exact import mismatch_report, same_bits

# inputs beyond a carrier's range are intentional (overflow cases)
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

F32 = np.float32
CASES = [
    ("float16", np.float16),
    ("half", np.float16),
    ("float<e5m10>", np.float16),
    ("bfloat16", ml_dtypes.bfloat16),
    ("bf16", ml_dtypes.bfloat16),
    ("float<e8m7>", ml_dtypes.bfloat16),
    ("fp8_e4m3", ml_dtypes.float8_e4m3fn),
    ("float<e4m3,fn>", ml_dtypes.float8_e4m3fn),
    ("fp8_e5m2", ml_dtypes.float8_e5m2),
    ("float<e5m2>", ml_dtypes.float8_e5m2),
    ("float<e4m3>", ml_dtypes.float8_e4m3),
    ("float<e3m4>", ml_dtypes.float8_e3m4),
]


def all_values(dt) -> np.ndarray:
    """Every finite value of the ml_dtype/float16, as sorted unique float64 (both zeros kept)."""
    nbits = np.dtype(dt).itemsize * 8
    raw = np.arange(2**nbits, dtype=np.uint16 if nbits == 16 else np.uint8).view(dt)
    v = raw.astype(np.float64)
    return np.unique(v[np.isfinite(v)])


def exhaustive_inputs(dt) -> np.ndarray:
    v = all_values(dt)
    mids = (v[:-1] + v[1:]) / 2  # exact in float64 and (for these formats) in float32
    mx = v.max()
    finfo = ml_dtypes.finfo(dt)
    extra = [
        0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan,
        float(finfo.tiny), float(finfo.smallest_subnormal), float(finfo.smallest_subnormal) / 2,
        mx, 2 * mx, float(np.finfo(F32).max), float(np.finfo(F32).tiny), 1e-45,
    ]
    base = np.concatenate([v, mids, -v, -mids, extra]).astype(F32)
    assert np.array_equal(base[: v.size].astype(np.float64), v)  # values are exact in float32
    up = np.nextafter(base, F32(np.inf))
    dn = np.nextafter(base, F32(-np.inf))
    return np.concatenate([base, up, dn])


def check(spec, dt, x):
    want = x.astype(dt).astype(F32)
    got = quantize(x, spec)
    assert got.dtype == F32 and got.shape == x.shape
    ok = same_bits(got, want)
    assert ok.all(), f"{spec} vs {np.dtype(dt).name}\n" + mismatch_report(x, got, want, ok)


@pytest.mark.parametrize("spec,dt", CASES, ids=[c[0] for c in CASES])
def test_exhaustive_values_midpoints_neighbours(spec, dt):
    check(spec, dt, exhaustive_inputs(dt))


@pytest.mark.parametrize("spec,dt", CASES, ids=[c[0] for c in CASES])
def test_random_float32_bit_patterns(spec, dt, rng):
    x = rng.integers(0, 2**32, size=400_000, dtype=np.uint32).view(F32)
    check(spec, dt, x)


@pytest.mark.parametrize("spec,dt", CASES, ids=[c[0] for c in CASES])
def test_random_in_format_range(spec, dt, rng):
    """Log-uniform magnitudes from below the smallest subnormal to beyond max, both signs."""
    fi = ml_dtypes.finfo(dt)
    lo = np.log2(float(fi.smallest_subnormal)) - 3
    hi = min(np.log2(float(fi.max)) + 3, 127.9)
    mag = np.exp2(rng.uniform(lo, hi, size=300_000))
    x = (mag * rng.choice([-1.0, 1.0], size=mag.size)).astype(F32)
    check(spec, dt, x)


@pytest.mark.parametrize("spec,dt", CASES, ids=[c[0] for c in CASES])
def test_boundaries(spec, dt):
    """max, the overflow threshold +-1 float32 ulp, subnormal boundaries, specials."""
    fi = ml_dtypes.finfo(dt)
    mx = float(fi.max)
    nm = int(fi.nmant)
    # nearest overflow threshold: halfway between max and the next (unrepresentable) grid point
    thr = mx + 2.0 ** (np.floor(np.log2(mx)) - nm) / 2
    pts = np.array(
        [mx, thr, float(fi.tiny), float(fi.tiny) / 2, float(fi.smallest_subnormal),
         float(fi.smallest_subnormal) / 2, float(fi.smallest_subnormal) * 1.5, 0.0],
        dtype=F32,
    )
    x = np.concatenate([pts, np.nextafter(pts, F32(np.inf)), np.nextafter(pts, F32(-np.inf))])
    x = np.concatenate([x, -x, np.array([np.nan, np.inf, -np.inf, -0.0], F32)])
    check(spec, dt, x)


@pytest.mark.parametrize("spec,dt", CASES, ids=[c[0] for c in CASES])
def test_representable_values_are_fixed_points(spec, dt):
    v = all_values(dt).astype(F32)
    v = np.concatenate([v, -v])
    got = quantize(v, spec)
    assert same_bits(got, v).all()


def test_fp8_e4m3_is_ocp_fn():
    x = np.array([448, 464, 464.5, 480, 1e4, np.inf, -np.inf, -448, -465], F32)
    got = quantize(x, "fp8_e4m3")
    want = np.array([448, 448, np.nan, np.nan, np.nan, np.nan, np.nan, -448, np.nan], F32)
    assert same_bits(got, want).all(), got


def test_float_e4m3_is_ieee_like():
    x = np.array([240, 247.9, 248, 1e4, np.inf, -np.inf, -240, -248], F32)
    got = quantize(x, "float<e4m3>")
    want = np.array([240, 240, np.inf, np.inf, np.inf, -np.inf, -240, -np.inf], F32)
    assert same_bits(got, want).all(), got


# ---- float32 format and float64 carriers ----------------------------------------------------

def random_float64_bits(rng, n):
    return rng.integers(0, 2**64, size=n, dtype=np.uint64).view(np.float64)


def float64_near_float32(rng, n):
    """float64 values near float32 values, ties and float32's subnormal range included."""
    f = rng.integers(0, 2**32, size=n, dtype=np.uint32).view(F32).astype(np.float64)
    f = f[np.isfinite(f)]
    nxt = np.nextafter(f.astype(F32), F32(np.inf)).astype(np.float64)
    mids = (f + nxt) / 2
    return np.concatenate([
        f, mids, np.nextafter(mids, np.inf), np.nextafter(mids, -np.inf),
        np.exp2(rng.uniform(-160, -120, n)), -np.exp2(rng.uniform(120, 130, n)),
    ])


def test_float32_identity_on_float32(rng):
    x = rng.integers(0, 2**32, size=200_000, dtype=np.uint32).view(F32)
    for spec in ("float32", "float<e8m23>"):
        got = quantize(x, spec)
        assert got.dtype == F32
        assert same_bits(got, x).all(), spec


@pytest.mark.parametrize("spec", ["float32", "float<e8m23>"])
def test_float32_on_float64_equals_numpy_cast(spec, rng):
    x = np.concatenate([random_float64_bits(rng, 100_000), float64_near_float32(rng, 50_000)])
    want = x.astype(F32).astype(np.float64)
    got = quantize(x, spec)
    assert got.dtype == np.float64
    ok = same_bits(got, want)
    assert ok.all(), mismatch_report(x, got, want, ok)


def test_float16_on_float64_equals_numpy_cast(rng):
    v = all_values(np.float16)
    mids = (v[:-1] + v[1:]) / 2
    base = np.concatenate([v, mids, -v, -mids])
    x = np.concatenate([
        base, np.nextafter(base, np.inf), np.nextafter(base, -np.inf),
        random_float64_bits(rng, 50_000), np.exp2(rng.uniform(-30, 20, 50_000)),
    ])
    want = x.astype(np.float16).astype(np.float64)
    got = quantize(x, "float16")
    ok = same_bits(got, want)
    assert ok.all(), mismatch_report(x, got, want, ok)


@pytest.mark.parametrize("shape", [(), (1,), (3, 0), (2, 3, 4), (5, 1, 7)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_shapes_and_dtypes_preserved(shape, dtype, rng):
    x = np.asarray((rng.standard_normal(shape) * 100).astype(F32).astype(dtype))
    got = quantize(x, "bfloat16")
    assert got.shape == x.shape and got.dtype == x.dtype
    want = x.astype(np.float32).astype(ml_dtypes.bfloat16).astype(dtype)
    assert same_bits(np.asarray(got), np.asarray(want)).all()


def test_non_contiguous_input(rng):
    x = rng.standard_normal((64, 64)).astype(F32)[::3, 1::2].T
    got = quantize(x, "float16")
    assert same_bits(got, x.astype(np.float16).astype(F32)).all()
