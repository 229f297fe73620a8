"""A faster rounding core for float32 carriers, equal bit for bit to `scalar.quantize_bits`.

The general core finds each element's quantum from its exponent and rounds with variable shifts
and 64-bit integers. On float32 carriers most of that work is uniform over a tensor:

- in a floating format's normal range the quantum is always 2**(23 - m) carrier ulps, so the
  rounding is a shift by a constant (`d0` bits);
- below its smallest normal and everywhere in a fixed-point format the quantum is one
  constant Q = 2**qc, and adding then subtracting C = 2**(qc + 23) rounds |x| < C to a
  multiple of Q with the FPU's ties-to-even; truncation and rounding away follow by comparing
  the result with |x|, and the stochastic fraction is the exact remainder scaled to 63 bits.

Both answers are computed for every element and one is selected, so the loop stays branch-free
and vectorises. `fast_params` returns None when a format is outside what this core handles
(float64 carriers, m > 22, fixed point wider than 23 bits, quanta outside float32's range);
callers then use the general core. Same conventions and flags as `scalar.quantize_bits`.
"""

from __future__ import annotations

import functools

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from quantsim.kernels import rng, scalar

SIGN = 0x80000000
EXP_ALL = 0x7F800000
QUIET = 0x400000
NAN_BITS = EXP_ALL | QUIET


def _bits(value: float) -> int:
    return int(np.float32(value).view(np.uint32))


@functools.lru_cache(maxsize=1024)
def fast_params(carrier, p, rnd) -> tuple | None:
    """Per-call constants of the fast core for grid `p` and rounding `rnd`, or None.

    The tuple: (d0, minnorm_bits, c, q, scale63, maxpos_bits, maxneg_bits, over_pos, over_neg,
    inf_pos, inf_neg, shift) with c, q float32, scale63 float64, the rest int64; over_* / inf_*
    are the signed results for an overflowed / infinite input of each sign. Below a floating
    format's smallest normal the grid has the constant quantum 2**(emin - m) with subnormals
    and 2**emin without (the grid {0, 2**emin}); a fixed-point format has it everywhere."""
    if carrier.mant_bits != 23:
        return None
    if p.kind == scalar.KIND_FLOAT:
        if not 0 <= p.m <= 22 or p.emin < -126:
            return None
        qc = p.emin - p.m if p.subnormals else p.emin
        d0 = 23 - p.m
        minnorm_bits = _bits(2.0 ** p.emin)
    else:
        qc = p.qfix
        d0 = 1  # unused: no value is in a normal range
        minnorm_bits = EXP_ALL
    if not -149 <= qc <= 104:
        return None
    if p.kind == scalar.KIND_FIXED and carrier.bits_of(p.maxneg) >= _bits(2.0 ** (qc + 23)):
        return None  # wider than 23 bits: |x| near 2**(qc + 23) would not round exactly
    maxpos, maxneg = carrier.bits_of(p.maxpos), carrier.bits_of(p.maxneg)
    mode = rnd.code
    over, inf = [], []
    for negative, maxb in ((False, maxpos), (True, maxneg)):
        sign = SIGN if negative else 0
        truncating = mode == scalar.TOWARD_ZERO or (mode == scalar.DOWN and not negative) or (
            mode == scalar.UP and negative)
        if p.policy == scalar.OVERFLOW_SAT or (p.policy == scalar.OVERFLOW_INF and truncating):
            over.append(maxb | sign)
        elif p.policy == scalar.OVERFLOW_INF:
            over.append(EXP_ALL | sign)
        else:
            over.append(NAN_BITS | sign)
        if p.policy == scalar.OVERFLOW_INF:
            inf.append(EXP_ALL | sign)
        elif p.policy == scalar.OVERFLOW_SAT:
            inf.append(maxb | sign)
        else:
            inf.append(NAN_BITS)  # an infinite input of a format without inf gives +NaN
    rbits = rnd.random_bits or 0
    return (
        d0, minnorm_bits, np.float32(2.0 ** (qc + 23)), np.float32(2.0 ** qc),
        float(2.0 ** (63 - qc)), maxpos, maxneg, over[0], over[1], inf[0], inf[1],
        63 - rbits if rbits > 0 else 0,
    )


def bits_at_or_below(threshold: float) -> int:
    """The bits of the largest float32 <= `threshold` (>= 0, may be inf): a finite float32
    magnitude exceeds `threshold` exactly when its bits exceed these."""
    below = np.float32(threshold)
    if float(below) > threshold:
        below = np.nextafter(below, np.float32(0))
    return int(below.view(np.uint32))


random63_at = scalar.compile_random63(numba.njit(inline="always"), rng.random63_at)


@intrinsic
def _float_of_bits(typingctx, bits):
    """The float32 whose IEEE bits are the low 32 bits of int64 `bits`."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(builder.trunc(args[0], ir.IntType(32)), ir.FloatType())
    return types.float32(types.int64), codegen


@intrinsic
def _bits_of_float(typingctx, value):
    """The IEEE bits of float32 `value` as a non-negative int64."""
    def codegen(context, builder, signature, args):
        return builder.zext(builder.bitcast(args[0], ir.IntType(32)), ir.IntType(64))
    return types.int64(types.float32), codegen


@numba.njit(inline="always")
def quantize_f32(u, fp, mode, twos, counter):
    """Round the float32 with bits `u` (int64); `fp` from `fast_params`; `mode` a rounding
    code and `twos` (fixed point: stochastic rounding of the two's complement value) are
    compile-time constants in hot loops. `counter` is the element's random-stream counter
    (`rng.random63_at`; unused unless stochastic). Returns (bits, flag)."""
    (d0, minnorm_bits, c, q, scale63, maxpos, maxneg, over_pos, over_neg, inf_pos, inf_neg,
     shift) = fp
    one = np.int64(1)
    negative = u >= np.int64(SIGN)
    mag = u & np.int64(0x7FFFFFFF)
    away = negative == (mode == scalar.DOWN)  # directed modes: round |x| away from zero
    draw = np.int64(0)
    if mode == scalar.STOCHASTIC:
        draw = random63_at(counter) >> shift

    # Normal range of a floating format: the quantum is 2**d0 carrier ulps.
    low0 = (one << d0) - one
    if mode == scalar.NEAREST:
        # Ties to even; with m = 0 the kept bit is the hidden bit, which is always 1.
        rn = (mag + (low0 >> one) + (((mag >> d0) | np.int64(d0 == 23)) & one)) & ~low0
    elif mode == scalar.STOCHASTIC:
        up = draw < (((mag & low0) << (np.int64(63) - d0)) >> shift)
        rn = (mag & ~low0) + ((one << d0) if up else np.int64(0))
    elif mode == scalar.TOWARD_ZERO:
        rn = mag & ~low0
    else:
        rn = ((mag + low0) if away else mag) & ~low0

    # Constant quantum q: |x| < c rounds exactly to a multiple of q with the FPU.
    ax = min(_float_of_bits(mag), c)
    t = (ax + c) - c  # nearest, ties to even
    if mode == scalar.NEAREST:
        rf = t
    else:
        tr = t - q if t > ax else t
        if mode == scalar.STOCHASTIC:
            frac63 = np.int64(np.float64(ax - tr) * scale63)  # floor(frac * 2**63)
            if twos and negative:
                # Two's complement: the draw moves x toward +inf (toward zero here).
                toward_plus = frac63 == 0 or draw < (
                    ((np.int64(0x7FFFFFFFFFFFFFFF) - frac63) + one) >> shift)
                up = not toward_plus
            else:
                up = draw < (frac63 >> shift)
            rf = tr + q if up else tr
        elif mode == scalar.TOWARD_ZERO:
            rf = tr
        else:
            rf = tr + q if (away and ax > tr) else tr
    rs = _bits_of_float(rf)

    # Fixed point (`twos`) has no normal range: every value is on the constant quantum.
    rm = rs if twos or mag < minnorm_bits else rn
    rb = rm | (u & np.int64(SIGN))
    flag = scalar.FLAG_OK
    if rm > (maxneg if negative else maxpos):
        rb = over_neg if negative else over_pos
        flag = scalar.FLAG_OVERFLOW
    if mag >= np.int64(EXP_ALL):
        if mag > np.int64(EXP_ALL):
            rb = u | np.int64(QUIET)  # NaN keeps sign and payload, comes out quiet
            flag = scalar.FLAG_NAN
        else:
            rb = inf_neg if negative else inf_pos
            flag = scalar.FLAG_INF
    return rb, flag
