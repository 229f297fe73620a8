"""Bit-for-bit agreement with the external CPFloat and MATLAB chop vectors (shared/oracles)."""

from __future__ import annotations

import numpy as np
import pytest

from quantsim import quantize

from .exact import FloatSpec, mismatch_report, ref_quantize, same_bits

# inputs beyond a carrier's range are intentional (overflow cases)
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

# oracle target -> (exponent bits, mantissa bits)
TARGETS = dict(
    binary16=(5, 10), half=(5, 10), bfloat16=(8, 7), tf32=(8, 10),
    e4m3=(4, 3), q43=(4, 3), e5m2=(5, 2), q52=(5, 2), e3m4=(3, 4), e2m5=(2, 5),
)
NAMED = dict(binary16="float16", bfloat16="bfloat16", tf32="tf32", e5m2="fp8_e5m2")
CP_MODE = dict(rne="nearest", up="up", down="down", zero="toward_zero")
CHOP_MODE = dict(rmode1="nearest", rmode2="up", rmode3="down", rmode4="toward_zero")

CP_KEYS = [
    f"y__{t}__{m}__sub{s}"
    for t in ("binary16", "bfloat16", "tf32", "e4m3", "e5m2", "e3m4", "e2m5")
    for m in CP_MODE
    for s in (0, 1)
]
CHOP_KEYS = [
    f"y__{f}__rmode{r}__sub{s}" for f in ("q43", "q52", "half", "bfloat16")
    for r in (1, 2, 3, 4) for s in (0, 1)
]


def generic_spec(target: str, sub: bool) -> str:
    e, m = TARGETS[target]
    return f"float<e{e}m{m}>" if sub else f"float<e{e}m{m},nosub>"


def cp_case(cpfloat, key):
    _, t, m, s = key.split("__")
    x = cpfloat["x__" + t]
    want = np.where(cpfloat[key] == 0, np.copysign(np.float32(0), x), cpfloat[key])
    return t, CP_MODE[m], s == "sub1", x, want


@pytest.mark.parametrize("key", CP_KEYS)
def test_cpfloat_generic_spec(cpfloat, key):
    t, mode, sub, x, want = cp_case(cpfloat, key)
    got = quantize(x, generic_spec(t, sub), rounding=mode)
    assert got.dtype == np.float32 and got.shape == x.shape
    ok = same_bits(got, want)
    assert ok.all(), f"{key} {generic_spec(t, sub)}@{mode}\n" + mismatch_report(x, got, want, ok)


NAMED_KEYS = [k for k in CP_KEYS if k.endswith("sub1") and k.split("__")[1] in NAMED]


@pytest.mark.parametrize("key", NAMED_KEYS)
def test_cpfloat_named_spec(cpfloat, key):
    t, mode, _, x, want = cp_case(cpfloat, key)
    got = quantize(x, NAMED[t], rounding=mode)
    ok = same_bits(got, want)
    assert ok.all(), f"{key} {NAMED[t]}@{mode}\n" + mismatch_report(x, got, want, ok)


@pytest.mark.parametrize("key", [k for k in CP_KEYS if k.split("__")[2] in ("rne", "down")])
def test_cpfloat_float64_carrier(cpfloat, key):
    """The float32 oracle inputs are exact in float64: a float64 carrier gives the same values."""
    t, mode, sub, x, want = cp_case(cpfloat, key)
    x64 = x.astype(np.float64)
    got = quantize(x64, generic_spec(t, sub), rounding=mode)
    assert got.dtype == np.float64
    ok = same_bits(got, want.astype(np.float64))
    assert ok.all(), f"{key} float64\n" + mismatch_report(x64, got, want, ok)


@pytest.mark.parametrize("key", CP_KEYS)
def test_cpfloat_via_format_default_rounding(cpfloat, key):
    """The same through parse(spec@mode).quantize(x) and an `out=` buffer."""
    from quantsim.formats import parse

    t, mode, sub, x, want = cp_case(cpfloat, key)
    fmt = parse(f"{generic_spec(t, sub)}@{mode}")
    out = np.full_like(x, 7.0)
    res = fmt.quantize(x, out=out)
    assert res is out or res is None or np.shares_memory(res, out)
    ok = same_bits(out, want)
    assert ok.all(), f"{key} via out=\n" + mismatch_report(x, out, want, ok)


@pytest.mark.parametrize("key", CHOP_KEYS)
def test_chop(chop, key):
    _, f, r, s = key.split("__")
    ok_in = ~(chop["nonieee" + key[1:]] | chop["f32cast" + key[1:]])
    x = chop["x__" + s][ok_in].astype(np.float32)
    want = chop[key][ok_in].astype(np.float32)
    got = quantize(x, generic_spec(f, s == "sub1"), rounding=CHOP_MODE[r])
    ok = same_bits(got, want) | ((got == 0) & (want == 0))
    assert ok.all(), f"{key}\n" + mismatch_report(x, got, want, ok)


@pytest.mark.parametrize("key", CHOP_KEYS)
def test_chop_float64_inputs_non_flagged(chop, key):
    """chop works on float64 inputs; away from its double-rounding artefacts a float64 carrier
    must reproduce it (the f32cast entries included: those are float32-input effects)."""
    _, f, r, s = key.split("__")
    ok_in = ~chop["nonieee" + key[1:]]
    x = chop["x__" + s][ok_in]
    want = chop[key][ok_in]
    got = quantize(x, generic_spec(f, s == "sub1"), rounding=CHOP_MODE[r])
    ok = same_bits(got, want) | ((got == 0) & (want == 0))
    assert ok.all(), f"{key}\n" + mismatch_report(x, got, want, ok)


@pytest.mark.parametrize("key", CP_KEYS)
def test_exact_reference_agrees_with_cpfloat_sample(cpfloat, key):
    """Validates the test suite's own Fraction reference (every 13th entry plus the specials)."""
    t, mode, sub, x, want = cp_case(cpfloat, key)
    idx = np.r_[np.arange(0, x.size, 13), np.arange(x.size - 40, x.size)]
    got = ref_quantize(x[idx], FloatSpec(*TARGETS[t], sub=sub), mode)
    ok = same_bits(got, want[idx])
    assert ok.all(), mismatch_report(x[idx], got, want[idx], ok)


@pytest.mark.slow
@pytest.mark.parametrize("key", CP_KEYS)
def test_exact_reference_agrees_with_cpfloat_full(cpfloat, key):
    t, mode, sub, x, want = cp_case(cpfloat, key)
    got = ref_quantize(x, FloatSpec(*TARGETS[t], sub=sub), mode)
    ok = same_bits(got, want)
    assert ok.all(), mismatch_report(x, got, want, ok)
