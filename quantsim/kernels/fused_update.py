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

from quantsim.kernels import scalar
from quantsim.kernels.cpu import CHUNK, RANDOM_BLOCK, draw_buffer, launch, random_words
from quantsim.kernels.float32_fast import _bits_of_float, _float_of_bits, quantize_f32
from quantsim.kernels.vector_width import prefer_512_bit_vectors

#: A rounding plan: (fast-core constants, rounding code, two's complement, stream key).
Plan = tuple


@numba.njit(inline="always")
def _momentum_rounded_range(w, v, g, lr, mu, fs, ks, fu, ku, mode, twos, i0, i1, draws):
    """Elements i0..i1-1; both points round with the compile-time `mode` / `twos`. Two loops
    per block of `RANDOM_BLOCK` (the new v, then w from it while v is in cache): one loop
    holding both roundings spilled more vector registers (1M elements, one thread: 3.3 ->
    2.9 ms)."""
    stochastic = mode == scalar.STOCHASTIC
    for s0 in range(i0, i1, RANDOM_BLOCK):
        s1 = min(s0 + RANDOM_BLOCK, i1)
        ws, vs, gs = w[s0:s1], v[s0:s1], g[s0:s1]
        words = random_words(draws, ks, s0, s1 - s0) if stochastic else draws.view(np.uint32)
        for k in range(s1 - s0):
            vb, _ = quantize_f32(_bits_of_float(mu * vs[k] - lr * gs[k]), fs, mode, twos,
                                 words[k] if stochastic else np.uint32(0))
            vs[k] = _float_of_bits(vb)
        if stochastic:
            words = random_words(draws, ku, s0, s1 - s0)
        for k in range(s1 - s0):
            wb, _ = quantize_f32(_bits_of_float(ws[k] + vs[k]), fu, mode, twos,
                                 words[k] if stochastic else np.uint32(0))
            ws[k] = _float_of_bits(wb)


@numba.njit(parallel=True, cache=True)
def _momentum_rounded(w, v, g, lr, mu, fs, ks, fu, ku, mode, twos):
    n = w.size
    for c in numba.prange((n + CHUNK - 1) // CHUNK):
        prefer_512_bit_vectors()
        i0 = c * CHUNK
        i1 = min(i0 + CHUNK, n)
        draws = draw_buffer(mode)
        if mode == scalar.NEAREST:
            _momentum_rounded_range(w, v, g, lr, mu, fs, ks, fu, ku, scalar.NEAREST, False,
                                    i0, i1, draws)
        elif twos:
            _momentum_rounded_range(w, v, g, lr, mu, fs, ks, fu, ku, scalar.STOCHASTIC, True,
                                    i0, i1, draws)
        else:
            _momentum_rounded_range(w, v, g, lr, mu, fs, ks, fu, ku, scalar.STOCHASTIC, False,
                                    i0, i1, draws)


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
