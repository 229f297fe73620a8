"""The readable numpy reference: every format rounded with float64 arithmetic on whole arrays.

Slow and simple on purpose; tests require the fast kernels to agree with it bit for bit.
A value x between grid neighbours lo <= x <= hi is resolved by `choose` for every format,
the built-in grids and plug-in formats alike.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from quantsim.formats.carrier import Carrier
from quantsim.formats.rounding import Rounding
from quantsim.kernels.rng import random32_numpy
from quantsim.kernels.scalar import KIND_FLOAT, OVERFLOW_INF, OVERFLOW_SAT


def choose(
    x: np.ndarray, lo: np.ndarray, hi: np.ndarray, tie_hi: np.ndarray, rnd: Rounding, key: int,
    *, twos_complement: bool = False,
) -> np.ndarray:
    """Pick lo or hi for each x in [lo, hi] (float64, flat) by the rounding mode.

    Decisions are taken on magnitudes, so q(-x) = -q(x) for the same random stream:
    `tie_hi` says where, for x exactly halfway, `nearest` takes hi (the 'even' neighbour).
    Stochastic: the magnitude rounds away from zero when the element's 32 random bits
    (`rng.random32`), shifted right by 32 - r, are below floor(frac * 2**32) shifted likewise,
    where frac = (|x| - |inner|) / (|outer| - |inner|). With `twos_complement` (fixed point,
    block mantissas) negative x decide on the signed value instead: toward +inf when the draw
    is below 2**32 - floor(frac * 2**32), shifted likewise.
    """
    neg = np.signbit(x)
    inner = np.where(neg, hi, lo)  # the neighbour nearer to zero
    outer = np.where(neg, lo, hi)
    gap = np.abs(outer - inner)
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(gap > 0, np.abs(x - inner) / np.where(gap > 0, gap, 1.0), 0.0)
    if rnd.mode == "nearest":
        tie_outer = np.where(neg, ~tie_hi, tie_hi)
        away = (frac > 0.5) | ((frac == 0.5) & tie_outer)
    elif rnd.mode == "toward_zero":
        away = np.zeros(x.shape, dtype=bool)
    elif rnd.mode == "up":
        away = (frac > 0) & ~neg
    elif rnd.mode == "down":
        away = (frac > 0) & neg
    else:
        frac32 = np.floor(np.ldexp(frac, 32)).astype(np.int64)
        shift = 32 - rnd.random_bits if rnd.random_bits else 0
        draw = random32_numpy(key, np.arange(x.size, dtype=np.int64)).astype(np.int64) >> shift
        away = draw < (frac32 >> shift)
        if twos_complement:
            toward_plus = (frac32 == 0) | (draw < ((2**32 - frac32) >> shift))
            away = np.where(neg, (frac > 0) & ~toward_plus, away)
    return np.where(away, outer, inner)


def quantize_grid(
    x: np.ndarray, *, kind: int, m: int, emin: int, subnormals: bool, qe_fixed: Any,
    maxpos: Any, maxneg: Any, policy: int, rnd: Rounding, key: int,
) -> np.ndarray:
    """Round float64 `x` (flat) onto a floating or fixed grid, then apply the overflow policy."""
    a = np.abs(x)
    finite = np.isfinite(x)
    safe = np.where(finite & (a > 0), a, 1.0)
    e = np.frexp(safe)[1] - 1  # floor(log2|x|)
    if kind == KIND_FLOAT:
        below = e < emin
        qe = np.where(below, emin - m if subnormals else emin, e - m)
    else:
        qe = np.broadcast_to(np.asarray(qe_fixed, dtype=np.int64), x.shape)
    quantum = np.ldexp(1.0, qe)
    lo_n = np.floor(np.where(finite, x, 0.0) / quantum)  # exact: a power-of-two division
    lo, hi = lo_n * quantum, (lo_n + 1) * quantum
    hi = np.where(lo == x, lo, hi)
    tie_hi = np.mod(lo_n, 2) == 1
    r = choose(np.where(finite, x, 0.0), lo, hi, tie_hi, rnd, key,
               twos_complement=kind != KIND_FLOAT)
    neg = np.signbit(x)
    bound = np.where(neg, maxneg, maxpos)
    over = finite & (np.abs(r) > bound)
    truncating = (rnd.mode == "toward_zero") | ((rnd.mode == "down") & ~neg) | (
        (rnd.mode == "up") & neg)
    if policy == OVERFLOW_SAT:
        big = bound
    elif policy == OVERFLOW_INF:
        big = np.where(truncating, bound, np.inf)
    else:
        big = np.full(x.shape, np.nan)
    r = np.where(over, big, np.abs(r))
    r = np.where(neg, -r, r)  # a zero result keeps the sign of x
    if policy == OVERFLOW_INF:
        inf_out = x
    elif policy == OVERFLOW_SAT:
        inf_out = np.where(neg, -bound, bound)
    else:
        inf_out = np.full(x.shape, np.nan)
    r = np.where(np.isinf(x), inf_out, r)
    return np.where(np.isnan(x), x, r)


def quantize_format(fmt, x: np.ndarray, carrier: Carrier, rnd: Rounding, key: int,
                    state: Any) -> np.ndarray:
    """Reference result of `fmt.quantize(x)` (same dtype and shape as x)."""
    from quantsim.formats.block import BlockFormat
    from quantsim.formats.fixed import DynamicFixedFormat, calibrate_il, clamp_il, fixed_grid

    xd = np.ascontiguousarray(x, dtype=np.float64).reshape(-1)
    if isinstance(fmt, BlockFormat):
        r = _blocks(fmt, np.ascontiguousarray(x, dtype=np.float64), carrier, rnd, key)
        return r.astype(x.dtype).reshape(x.shape)
    if isinstance(fmt, DynamicFixedFormat):
        il = state.il if state.il is not None else calibrate_il(x, fmt.wl)
        il = clamp_il(il, fmt.wl, carrier)
        p = fixed_grid(il, fmt.wl - il)
    else:
        p = fmt.grid_params(carrier, state)
    r = quantize_grid(xd, kind=p.kind, m=p.m, emin=p.emin, subnormals=p.subnormals,
                      qe_fixed=p.qfix, maxpos=p.maxpos, maxneg=p.maxneg, policy=p.policy,
                      rnd=rnd, key=key)
    return r.astype(x.dtype).reshape(x.shape)


def _blocks(fmt, x: np.ndarray, carrier: Carrier, rnd: Rounding, key: int) -> np.ndarray:
    length = x.shape[-1] if x.ndim else 1
    rows = x.reshape(-1, length)
    qe = np.zeros(rows.shape, dtype=np.int64)
    for j0 in range(0, length, fmt.block):
        part = rows[:, j0:j0 + fmt.block]
        amax = np.max(np.where(np.isfinite(part), np.abs(part), 0.0), axis=1)
        e = np.array([math.frexp(a)[1] - 1 if a > 0 else -10**6 for a in amax])
        qe[:, j0:j0 + fmt.block] = np.maximum(e - (fmt.mbits - 2), carrier.lowest_quantum_exp)[
            :, None]
    top = 2.0 ** (fmt.mbits - 1)
    scale = np.ldexp(1.0, qe).reshape(-1)
    return quantize_grid(
        rows.reshape(-1), kind=1, m=0, emin=0, subnormals=True, qe_fixed=qe.reshape(-1),
        maxpos=(top - 1) * scale, maxneg=top * scale, policy=OVERFLOW_SAT, rnd=rnd, key=key,
    )
