"""The scalar rounding core shared by every kernel (CPU via numba.njit, GPU via numba.cuda).

Plain Python on integers only, so that one source compiles for both devices. A value is decoded
from the carrier's IEEE bits into an integer significand `s` and the exponent of its last bit,
rounded on the integer grid of the target quantum `2**qe`, and re-encoded as carrier bits.
Integer arithmetic makes ties, directed modes and stochastic decisions exact; the result is
exact because the format's values are representable in the carrier (checked by the formats).

Conventions:
- rounding codes: 0 nearest (ties to even), 1 stochastic, 2 toward zero, 3 down, 4 up;
- magnitude modes: 0 nearest, 1 truncate, 2 away from zero, 3 stochastic;
- overflow policies: 0 inf (IEEE: truncating modes give +-max), 1 saturate, 2 NaN;
- quantum kinds: 0 floating (qe from the exponent of x), 1 fixed (qe given);
- flags returned: 0 in range, 1 overflowed, 2 NaN input, 3 infinite input.
"""

from __future__ import annotations

import types

import numpy as np

from quantsim.kernels import rng
from quantsim.kernels.rng import random32

NEAREST, STOCHASTIC, TOWARD_ZERO, DOWN, UP = 0, 1, 2, 3, 4
MAG_NEAREST, MAG_TRUNC, MAG_AWAY, MAG_STOCH = 0, 1, 2, 3
OVERFLOW_INF, OVERFLOW_SAT, OVERFLOW_NAN = 0, 1, 2
KIND_FLOAT, KIND_FIXED = 0, 1
FLAG_OK, FLAG_OVERFLOW, FLAG_NAN, FLAG_INF = 0, 1, 2, 3


def magnitude_mode(mode, negative):
    """The rounding applied to |x| for a signed rounding `mode`."""
    if mode == NEAREST:
        return MAG_NEAREST
    if mode == STOCHASTIC:
        return MAG_STOCH
    if mode == TOWARD_ZERO:
        return MAG_TRUNC
    if mode == DOWN:
        return MAG_AWAY if negative else MAG_TRUNC
    return MAG_TRUNC if negative else MAG_AWAY


def quantize_bits(
    u, mant_bits, bias, kind, m, emin, subnormals, qfix,
    maxpos_bits, maxneg_bits, policy, mode, rbits, key, index,
):
    """Round one carrier value given by its IEEE bits `u` (int64). Returns (bits, flag).

    mant_bits / bias describe the carrier (23 / 127 for float32, 52 / 1023 for float64).
    Floating kind: the quantum is 2**qe with qe = max(e, emin) - m (subnormals on), and for
    |x| < 2**emin without subnormals qe = emin (the grid {0, 2**emin}). Fixed kind: qe = qfix.
    maxpos_bits / maxneg_bits: carrier bits of the largest positive / negative magnitude.
    `rbits` = 0: stochastic rounding with all 32 random bits of element `index` of the
    counter-based stream `key` (`rng.random32`); else with their top `rbits` bits. Floating
    formats are sign-magnitude: the draw decides on |x| (q(-x) = -q(x) for the same stream).
    Fixed kinds are two's complement: the draw decides on the signed value (toward +inf with
    P = floor(frac * 2**r) / 2**r, frac measured from the lower neighbour).

    The magnitude is rounded on its own bits: with `drop` = qe - (exponent of the input's last
    bit) in [0, mant_bits], clearing the low `drop` bits truncates and adding 2**drop rounds
    away from zero (a carry flows into the exponent, as it should). Beyond, |x| is below one
    quantum and the result is 0 or 2**qe. Data-dependent choices are written as selects so
    that the loop vectorises; `mode` should be a compile-time constant in hot loops.
    """
    one = np.int64(1)
    zero = np.int64(0)
    sign_shift = 31 if mant_bits == 23 else 63
    emask = 2 * bias + 1
    hidden = one << np.int64(mant_bits)
    inf_bits = np.int64(emask) << np.int64(mant_bits)
    signbit = (u >> np.int64(sign_shift)) & one
    negative = signbit == 1
    mag_bits = u & ((one << np.int64(sign_shift)) - one)
    biased = mag_bits >> np.int64(mant_bits)
    frac = mag_bits & (hidden - one)
    s = frac | (hidden if biased > 0 else zero)
    eb = max(biased, one)
    if kind == KIND_FLOAT:
        e = biased - bias
        if subnormals:
            qe = max(e, np.int64(emin)) - m
        else:
            qe = e - m if e >= emin else np.int64(emin)
    else:
        qe = np.int64(qfix)
    drop = qe - (eb - bias - mant_bits)
    # Bits below the quantum: s < 2**(mant_bits + 1), so clamping at mant_bits + 2 loses none.
    d = min(max(drop, zero), np.int64(mant_bits + 2))
    low = (one << d) - one
    rem = s & low
    if mode == NEAREST:
        # Above half, or exactly half with an odd kept part (ties to even); rem = 0 never.
        half = (low >> one) + one
        up = rem != 0 and rem + ((s >> d) & one) > half
    elif mode == STOCHASTIC:
        # rem / 2**drop as a 32-bit fixed-point fraction (floored when drop > 32).
        frac32 = (rem << min(max(32 - drop, zero), np.int64(32))) >> min(
            max(drop - 32, zero), np.int64(63)
        )
        shift = np.int64(32 - rbits if rbits > 0 else 0)
        draw = np.int64(random32(key, index)) >> shift
        if kind == KIND_FIXED and negative:
            # Two's complement hardware adds its random bits to the signed value: x moves
            # toward +inf (toward zero here) with P = floor((1 - frac) * 2**r) / 2**r.
            toward_plus = frac32 == 0 or draw < ((np.int64(1 << 32) - frac32) >> shift)
            up = rem != 0 and not toward_plus
        else:
            up = draw < (frac32 >> shift)
    elif mode == TOWARD_ZERO:
        up = False
    else:
        up = rem != 0 and negative == (mode == DOWN)
    if drop > mant_bits:
        # |x| is below one quantum: the result is 0 or 2**qe.
        pow2_normal = (qe + bias) << np.int64(mant_bits)
        pow2_sub = one << min(max(qe - (1 - bias - mant_bits), zero), np.int64(62))
        pow2_bits = pow2_normal if qe >= 1 - bias else pow2_sub
        rb = pow2_bits if up else zero
    else:
        rb = (mag_bits & ~low) + ((one << d) if up else zero)
    maxb = maxneg_bits if negative else maxpos_bits
    flag = FLAG_OK
    if rb > maxb:
        flag = FLAG_OVERFLOW
        truncating = mode == TOWARD_ZERO or (mode == DOWN and not negative) or (
            mode == UP and negative)
        if policy == OVERFLOW_SAT or (policy == OVERFLOW_INF and truncating):
            rb = maxb
        elif policy == OVERFLOW_INF:
            rb = inf_bits
        else:
            rb = inf_bits | (hidden >> one)
    if biased == emask:
        if frac != 0:
            # NaN keeps its sign and payload; a float32 NaN comes out quiet, as from a round
            # trip through float64 (the reference computes in float64).
            rb = mag_bits | (hidden >> one) if mant_bits == 23 else mag_bits
            flag = FLAG_NAN
        else:
            flag = FLAG_INF
            if policy == OVERFLOW_INF:
                rb = inf_bits
            elif policy == OVERFLOW_SAT:
                rb = maxb
            else:
                rb = inf_bits | (hidden >> one)
                signbit = zero  # an infinite input of a format without inf gives +NaN
    return rb | (signbit << np.int64(sign_shift)), flag


def encode_scaled(n, msb, qe, mant_bits, bias):
    """Carrier bits of n * 2**qe where n has its top bit at position `msb` (msb <= mant_bits):
    the bounds of a `block<M,k>` block with quantum 2**qe."""
    exp = qe + msb
    if exp >= 1 - bias:
        mant = (n << np.int64(mant_bits - msb)) & ((np.int64(1) << np.int64(mant_bits)) - 1)
        return (np.int64(exp + bias) << np.int64(mant_bits)) | mant
    return n << np.int64(qe - (1 - bias - mant_bits))


def block_quantum(amax, mant_bits, bias, mbits):
    """qe of a `block<M,k>` block whose largest finite magnitude has carrier bits `amax`
    (int64): the quantum 2**qe puts that magnitude's leading bit on the top bit of an M-bit
    two's complement mantissa, and qe is never below the carrier's smallest quantum."""
    biased = amax >> np.int64(mant_bits)
    if biased > 0:
        e = biased - bias
    else:
        e = np.int64(1 - bias - mant_bits)
        while amax > 1:
            amax >>= 1
            e += 1
    return max(e - (mbits - 2), np.int64(1 - bias - mant_bits))


def _rebind(func, namespace):
    """A copy of `func` whose global names resolve in `namespace` (to swap in jitted helpers)."""
    return types.FunctionType(func.__code__, namespace, func.__name__, func.__defaults__)


def compile_random(jit, function=rng.random32):
    """`rng.random32` (or another function of `rng` calling `mix64`) compiled with `jit`, its
    helper included."""
    rng_ns = dict(vars(rng))
    rng_ns["mix64"] = jit(rng.mix64)
    return jit(_rebind(function, rng_ns))


def compile_core(jit):
    """Compile `quantize_bits` and its helpers with `jit` (numba.njit or a cuda.jit device
    decorator) and return the compiled `quantize_bits`."""
    ns = dict(globals())
    ns["random32"] = compile_random(jit)
    return jit(_rebind(quantize_bits, ns))
