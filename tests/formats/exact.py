"""Exact rational reference for quantsim's number formats (independent of the implementation).

Every value is handled as a ``fractions.Fraction``; the rounding of a rational ``t`` to an integer
is done in integer arithmetic, so the reference is exact for any float32/float64 input. It is slow
(pure Python, a few microseconds per element), so tests feed it thousands of values, not millions.

Semantics implemented (the specification of the test suite, not read from the implementation):

* ``float<eXmY>``: bias ``2^(X-1)-1``, ``emax = bias``, ``emin = 1-emax``, subnormals on unless
  ``sub=False`` (then the *exact* input is rounded into normals U {+-0} by the mode); IEEE overflow
  (nearest -> +-inf, toward_zero -> +-max, up: x>max -> +inf, x<-max -> -max, down mirrored);
  ``sat`` clamps to +-max in every mode; ``fn`` (OCP finite) has ``emax = bias+1``, no inf, the
  all-ones mantissa of the top exponent is NaN, so ``max = 2^emax (2 - 2^(1-Y))``; overflow (the
  value rounded on the unbounded grid exceeds max) gives NaN in every mode, as the spec says.
* ``fixed<IL,FL>``: values ``k 2^-FL``, ``k`` in ``[-2^(IL+FL-1), 2^(IL+FL-1)-1]``; round, then
  saturate.
* ``block<M,k>``: blocks of ``k`` along the last axis share ``E = floor(log2 max|x|)``; elements are
  ``n 2^(E-M+2)`` with ``n`` an M-bit two's complement integer, rounded then saturated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

MODES = ("nearest", "toward_zero", "down", "up")


def pow2(e: int) -> Fraction:
    return Fraction(1 << e) if e >= 0 else Fraction(1, 1 << -e)


def floor_log2(a: Fraction) -> int:
    """floor(log2(a)) for a rational a > 0, exactly."""
    e = a.numerator.bit_length() - a.denominator.bit_length()
    if pow2(e) > a:
        e -= 1
    elif pow2(e + 1) <= a:
        e += 1
    return e


def round_int(t: Fraction, mode: str) -> int:
    """Round the rational t to an integer with one of the four deterministic modes."""
    fl = t.numerator // t.denominator  # floor
    if fl == t:
        return fl
    if mode == "down":
        return fl
    if mode == "up":
        return fl + 1
    if mode == "toward_zero":
        return fl if t > 0 else fl + 1
    if mode == "nearest":
        rem = t - fl
        if rem > Fraction(1, 2):
            return fl + 1
        if rem < Fraction(1, 2):
            return fl
        return fl if fl % 2 == 0 else fl + 1
    raise ValueError(f"not a deterministic mode: {mode}")


@dataclass(frozen=True)
class FloatSpec:
    e: int
    m: int
    sub: bool = True
    sat: bool = False
    fn: bool = False

    @property
    def bias(self) -> int:
        return 2 ** (self.e - 1) - 1

    @property
    def emax(self) -> int:
        return self.bias + 1 if self.fn else self.bias

    @property
    def emin(self) -> int:
        return 1 - self.bias

    @property
    def max(self) -> Fraction:
        if self.fn:
            return pow2(self.emax) * (2 - pow2(1 - self.m))
        return pow2(self.emax) * (2 - pow2(-self.m))

    @property
    def min_normal(self) -> Fraction:
        return pow2(self.emin)

    @property
    def min_subnormal(self) -> Fraction:
        return pow2(self.emin - self.m) if self.sub else pow2(self.emin)

    @property
    def overflow_threshold(self) -> Fraction:
        """Smallest |x| that nearest rounding sends past max."""
        if self.fn:
            return pow2(self.emax) * (2 - pow2(1 - self.m) + pow2(-self.m - 1))
        return pow2(self.emax) * (2 - pow2(-self.m - 1))

    def spec(self) -> str:
        opts = [f"e{self.e}m{self.m}"]
        if not self.sub:
            opts.append("nosub")
        if self.fn:
            opts.append("fn")
        if self.sat:
            opts.append("sat")
        return "float<" + ",".join(opts) + ">"


@dataclass(frozen=True)
class FixedSpec:
    il: int
    fl: int

    @property
    def kmin(self) -> int:
        return -(1 << (self.il + self.fl - 1))

    @property
    def kmax(self) -> int:
        return (1 << (self.il + self.fl - 1)) - 1

    @property
    def max(self) -> Fraction:
        return self.kmax * pow2(-self.fl)

    @property
    def lowest(self) -> Fraction:
        return self.kmin * pow2(-self.fl)

    def spec(self) -> str:
        return f"fixed<{self.il},{self.fl}>"


NAN = float("nan")
INF = float("inf")


def _overflow_float(neg: bool, spec: FloatSpec, mode: str) -> float:
    mx = float(spec.max)
    if spec.sat:
        return -mx if neg else mx
    if spec.fn:
        return NAN
    # IEEE: where is the result infinite?
    if mode == "nearest":
        to_inf = True
    elif mode == "toward_zero":
        to_inf = False
    elif mode == "up":
        to_inf = not neg
    elif mode == "down":
        to_inf = neg
    else:
        raise ValueError(mode)
    if to_inf:
        return -INF if neg else INF
    return -mx if neg else mx


def round_float_scalar(x: float, spec: FloatSpec, mode: str) -> float:
    """Exact rounding of the python float x (float32/64 value) to the float format, as a float."""
    if math.isnan(x):
        return NAN
    neg = math.copysign(1.0, x) < 0
    if math.isinf(x):
        if spec.sat:
            return -float(spec.max) if neg else float(spec.max)
        if spec.fn:
            return NAN
        return x
    if x == 0:
        return x
    v = Fraction(x)
    a = abs(v)
    if not spec.sub and a < spec.min_normal:
        k = round_int(v / spec.min_normal, mode)  # in {-1, 0, 1}; a tie goes to 0 (even)
        r = k * spec.min_normal
    else:
        qe = max(floor_log2(a), spec.emin) - spec.m
        r = round_int(v / pow2(qe), mode) * pow2(qe)
    if abs(r) > spec.max:
        return _overflow_float(neg, spec, mode)
    if r == 0:
        return -0.0 if neg else 0.0
    return float(r)


def round_fixed_scalar(x: float, spec: FixedSpec, mode: str) -> float:
    if math.isnan(x):
        return NAN
    if math.isinf(x):
        return float(spec.lowest) if x < 0 else float(spec.max)
    k = round_int(Fraction(x) * pow2(spec.fl), mode)
    k = min(max(k, spec.kmin), spec.kmax)
    return float(k * pow2(-spec.fl))


def ref_quantize(x: np.ndarray, spec, mode: str) -> np.ndarray:
    """Elementwise exact reference; result in x's dtype (the reference values must fit in it)."""
    x = np.asarray(x)
    f = round_float_scalar if isinstance(spec, FloatSpec) else round_fixed_scalar
    out = np.array([f(float(v), spec, mode) for v in x.ravel()], dtype=np.float64)
    res = out.astype(x.dtype)
    fin = np.isfinite(out)
    # the reference value must be exactly representable in the carrier
    assert np.array_equal(res[fin].astype(np.float64), out[fin]), "reference not representable"
    return res.reshape(x.shape)


def neighbours(x: float, spec, mode_lo: str = "down", mode_hi: str = "up"):
    """The two grid neighbours (largest representable <= x, smallest >= x), range ignored."""
    if isinstance(spec, FloatSpec):
        wide = FloatSpec(spec.e, spec.m, spec.sub, sat=True, fn=spec.fn)
        return round_float_scalar(x, wide, mode_lo), round_float_scalar(x, wide, mode_hi)
    return round_fixed_scalar(x, spec, mode_lo), round_fixed_scalar(x, spec, mode_hi)


def ref_block(x: np.ndarray, M: int, k: int, mode: str) -> np.ndarray:
    """Block floating point reference along the last axis (finite inputs)."""
    x = np.asarray(x)
    flat = x.reshape(-1, x.shape[-1]) if x.ndim else x.reshape(1, 1)
    out = np.empty(flat.shape, dtype=np.float64)
    nmin, nmax = -(1 << (M - 1)), (1 << (M - 1)) - 1
    for row in range(flat.shape[0]):
        for start in range(0, flat.shape[1], k):
            blk = [Fraction(float(v)) for v in flat[row, start : start + k]]
            amax = max(abs(v) for v in blk)
            if amax == 0:
                out[row, start : start + k] = flat[row, start : start + k]
                continue
            scale = pow2(floor_log2(amax) - M + 2)
            for j, v in enumerate(blk):
                n = min(max(round_int(v / scale, mode), nmin), nmax)
                out[row, start + j] = float(n * scale)
    return out.astype(x.dtype).reshape(x.shape)


def same_bits(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Elementwise: identical bit patterns, or both NaN (any NaN matches any NaN)."""
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype, (a.dtype, b.dtype)
    u = np.uint32 if a.dtype == np.float32 else np.uint64
    return (np.isnan(a) & np.isnan(b)) | (a.view(u) == b.view(u))


def same_value(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Elementwise equal values (-0 == +0), or both NaN."""
    a, b = np.asarray(a), np.asarray(b)
    return (np.isnan(a) & np.isnan(b)) | (a == b)


def mismatch_report(x, got, want, ok, limit: int = 8) -> str:
    bad = np.flatnonzero(~np.asarray(ok).ravel())
    lines = [f"{bad.size} mismatches of {np.asarray(ok).size}"]
    xs, gs, ws = np.asarray(x).ravel(), np.asarray(got).ravel(), np.asarray(want).ravel()
    for i in bad[:limit]:
        lines.append(f"  x={xs[i]!r} ({float(xs[i]).hex()}): got {gs[i]!r}, want {ws[i]!r}")
    return "\n".join(lines)
