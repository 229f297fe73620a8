"""SGD momentum with its two rounding points in one pass over float32 arrays.

``v = q_state(mu*v - lr*g); w = q_update(w + v)``: the float operations of the momentum kernel
(`quantsim.nn._fused.momentum_state`) and of the optimizer's ``w + v``, each rounding made by
the float32 fast core with the stream key and element counters that the point's own call would
use (`quantsim.precision.QuantPoint.fused_call_plan`). The results are those of the momentum
kernel followed by the two quantizing calls, bit for bit, without the two intermediate arrays
(1M float32 weights, fixed<4,12>@stochastic for both points, two threads, three runs:
the regular path 2.8-3.3 ms, this kernel 1.6-2.2 ms).
"""

from __future__ import annotations

import numba
import numpy as np

from quantsim.kernels import rng, scalar
from quantsim.kernels.cpu import CHUNK, launch
from quantsim.kernels.float32_fast import _bits_of_float, _float_of_bits, quantize_f32
from quantsim.kernels.vector_width import prefer_512_bit_vectors

#: A rounding plan: (fast-core constants, rounding code, two's complement, stream key).
Plan = tuple


@numba.njit(inline="always")
def _momentum_rounded_range(w, v, g, lr, mu, fs, ks, fu, ku, mode, twos, i0, i1):
    """Elements i0..i1-1; both points round with the compile-time `mode` / `twos`. Two loops
    over the chunk (the new v, then w from it while v is in cache): one loop holding both
    roundings spilled more vector registers (1M elements, one thread: 3.3 -> 2.9 ms)."""
    ws, vs, gs = w[i0:i1], v[i0:i1], g[i0:i1]
    counter = ks + np.uint64(i0) * rng.GOLDEN
    for k in range(i1 - i0):
        counter += rng.GOLDEN
        vb, _ = quantize_f32(_bits_of_float(mu * vs[k] - lr * gs[k]), fs, mode, twos, counter)
        vs[k] = _float_of_bits(vb)
    counter = ku + np.uint64(i0) * rng.GOLDEN
    for k in range(i1 - i0):
        counter += rng.GOLDEN
        wb, _ = quantize_f32(_bits_of_float(ws[k] + vs[k]), fu, mode, twos, counter)
        ws[k] = _float_of_bits(wb)


@numba.njit(parallel=True, cache=True)
def _momentum_rounded(w, v, g, lr, mu, fs, ks, fu, ku, mode, twos):
    n = w.size
    for c in numba.prange((n + CHUNK - 1) // CHUNK):
        prefer_512_bit_vectors()
        i0 = c * CHUNK
        i1 = min(i0 + CHUNK, n)
        if mode == scalar.NEAREST:
            _momentum_rounded_range(w, v, g, lr, mu, fs, ks, fu, ku, scalar.NEAREST, False,
                                    i0, i1)
        elif twos:
            _momentum_rounded_range(w, v, g, lr, mu, fs, ks, fu, ku, scalar.STOCHASTIC, True,
                                    i0, i1)
        else:
            _momentum_rounded_range(w, v, g, lr, mu, fs, ks, fu, ku, scalar.STOCHASTIC, False,
                                    i0, i1)


def momentum_rounded_applies(state_plan: Plan, update_plan: Plan) -> bool:
    """Whether `momentum_rounded_` takes these two plans: both nearest, or both stochastic on
    the same kind of value (sign-magnitude or two's complement). Other pairs (and the directed
    roundings) take the optimizer's regular path, which compiles no extra variants."""
    _, mode_s, twos_s, _ = state_plan
    _, mode_u, twos_u, _ = update_plan
    if mode_s != mode_u:
        return False
    # `twos` changes only the stochastic decisions (see float32_fast.quantize_f32).
    return mode_s == scalar.NEAREST or (mode_s == scalar.STOCHASTIC and twos_s == twos_u)


def momentum_rounded_(w: np.ndarray, v: np.ndarray, g: np.ndarray, lr: float, mu: float,
                      state_plan: Plan, update_plan: Plan) -> None:
    """In place, on C-contiguous float32 arrays of one shape: ``v = q_state(mu*v - lr*g);
    w = q_update(w + v)`` with lr and mu rounded to float32, the roundings given by the two
    plans (see `momentum_rounded_applies`)."""
    fs, mode, twos, ks = state_plan
    fu, _, _, ku = update_plan
    t = np.float32
    launch(_momentum_rounded, w.size, w.reshape(-1), v.reshape(-1), g.reshape(-1), t(lr), t(mu),
           fs, np.uint64(ks), fu, np.uint64(ku), mode, bool(twos))
