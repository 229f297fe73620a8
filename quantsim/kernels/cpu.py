"""Fast CPU kernels (numba, parallel): one fused pass per tensor that rounds and optionally counts.

The rounding works on the carrier's bits (`scalar.quantize_bits`), so the plain loop vectorises.
The counting variant runs over fixed-size chunks, independent of the thread count, and every
chunk writes its own row of counters: the statistics (sums included) do not depend on threads.
"""

from __future__ import annotations

import numba
import numpy as np

from quantsim.kernels import scalar

CHUNK = 1 << 16
N_STATS = 11
(S_COUNT, S_ZERO_IN, S_UNDERFLOW, S_OVERFLOW, S_NAN, S_INF, S_SUM_ABS, S_MAX_ABS,
 S_SUM_REL_ERR, S_ABOVE, S_ZERO_OUT) = range(N_STATS)
LOG2_HIST_MIN = -160
LOG2_HIST_BINS = 320

_quantize_bits = scalar.compile_core(numba.njit(inline="always"))


@numba.njit(inline="always")
def _count(st, x, r, flag, u, mant_bits, bias, thresh, hist, c):
    st[S_COUNT] += 1.0
    if flag == scalar.FLAG_NAN:
        st[S_NAN] += 1.0
        return
    if flag == scalar.FLAG_INF:
        st[S_INF] += 1.0
        return
    ax = abs(np.float64(x))
    if r == 0.0:
        st[S_ZERO_OUT] += 1.0
    if ax == 0.0:
        st[S_ZERO_IN] += 1.0
        return
    if flag == scalar.FLAG_OVERFLOW:
        st[S_OVERFLOW] += 1.0
    else:
        if r == 0.0:
            st[S_UNDERFLOW] += 1.0
        st[S_SUM_REL_ERR] += abs(np.float64(r) - np.float64(x)) / ax
    st[S_SUM_ABS] += ax
    if ax > st[S_MAX_ABS]:
        st[S_MAX_ABS] = ax
    if ax > thresh:
        st[S_ABOVE] += 1.0
    e = ((u >> np.int64(mant_bits)) & np.int64(2 * bias + 1)) - bias
    b = min(max(e - LOG2_HIST_MIN, 0), LOG2_HIST_BINS - 1)
    hist[c, b] += 1


@numba.njit(parallel=True, cache=True)
def quantize_elementwise(
    xbits, outbits, mant_bits, bias, kind, m, emin, subnormals, qfix,
    maxpos_bits, maxneg_bits, policy, mode, rbits, key, offset,
):
    """Float and fixed formats on flat contiguous bit views (uint32 or int64)."""
    ukey = np.uint64(key)
    for i in numba.prange(xbits.size):
        rb, _ = _quantize_bits(
            np.int64(xbits[i]), mant_bits, bias, kind, m, emin, subnormals, qfix,
            maxpos_bits, maxneg_bits, policy, mode, rbits, ukey, np.uint64(offset + i),
        )
        outbits[i] = rb


@numba.njit(parallel=True, cache=True)
def quantize_elementwise_stats(
    x, xbits, out, outbits, mant_bits, bias, kind, m, emin, subnormals, qfix,
    maxpos_bits, maxneg_bits, policy, mode, rbits, key, offset, thresh, stats, hist,
):
    """`quantize_elementwise` that also fills one row of `stats` / `hist` per chunk."""
    n = xbits.size
    nchunks = (n + CHUNK - 1) // CHUNK
    ukey = np.uint64(key)
    for c in numba.prange(nchunks):
        st = np.zeros(N_STATS)
        for i in range(c * CHUNK, min((c + 1) * CHUNK, n)):
            u = np.int64(xbits[i])
            rb, flag = _quantize_bits(
                u, mant_bits, bias, kind, m, emin, subnormals, qfix,
                maxpos_bits, maxneg_bits, policy, mode, rbits, ukey, np.uint64(offset + i),
            )
            outbits[i] = rb
            _count(st, x[i], out[i], flag, u, mant_bits, bias, thresh, hist, c)
        for j in range(N_STATS):
            stats[c, j] = st[j]


@numba.njit(inline="always")
def _encode(n, msb, qe, mant_bits, bias):
    """Carrier bits of n * 2**qe where n has its top bit at position `msb` (msb <= mant_bits)."""
    exp = qe + msb
    if exp >= 1 - bias:
        mant = (n << np.int64(mant_bits - msb)) & ((np.int64(1) << np.int64(mant_bits)) - 1)
        return (np.int64(exp + bias) << np.int64(mant_bits)) | mant
    return n << np.int64(qe - (1 - bias - mant_bits))


@numba.njit(parallel=True, cache=True)
def quantize_blocks(
    x, xbits, out, outbits, mant_bits, bias, mbits, block, mode, rbits, key, offset,
    want_stats, thresh, stats, hist,
):
    """Block floating point on (rows, length) arrays. Blocks of `block` elements along the last
    axis share qe = floor(log2(max finite |x|)) - (mbits - 2); elements are mbits-bit two's
    complement integers times 2**qe, rounded then saturated. qe never goes below the carrier's
    smallest quantum."""
    rows, length = xbits.shape
    per_row = (length + block - 1) // block
    nblocks = rows * per_row
    blocks_per_chunk = max(1, CHUNK // block)
    nchunks = (nblocks + blocks_per_chunk - 1) // blocks_per_chunk
    ukey = np.uint64(key)
    sign_shift = 31 if mant_bits == 23 else 63
    inf_bits = np.int64(2 * bias + 1) << np.int64(mant_bits)
    lowest_qe = 1 - bias - mant_bits
    top = np.int64(1) << np.int64(mbits - 1)
    for c in numba.prange(nchunks):
        st = np.zeros(N_STATS)
        for b in range(c * blocks_per_chunk, min((c + 1) * blocks_per_chunk, nblocks)):
            row = b // per_row
            j0 = (b % per_row) * block
            j1 = min(j0 + block, length)
            amax = np.int64(0)
            for j in range(j0, j1):
                mag = np.int64(xbits[row, j]) & ((np.int64(1) << np.int64(sign_shift)) - 1)
                if mag < inf_bits and mag > amax:
                    amax = mag
            biased = amax >> np.int64(mant_bits)
            if biased > 0:
                e = biased - bias
            else:
                e = np.int64(1 - bias - mant_bits)
                while amax > 1:
                    amax >>= 1
                    e += 1
            qe = max(e - (mbits - 2), np.int64(lowest_qe))
            maxpos = _encode(top - 1, mbits - 2, qe, mant_bits, bias)
            maxneg = _encode(top, mbits - 1, qe, mant_bits, bias)
            for j in range(j0, j1):
                u = np.int64(xbits[row, j])
                rb, flag = _quantize_bits(
                    u, mant_bits, bias, scalar.KIND_FIXED, 0, 0, True, qe,
                    maxpos, maxneg, scalar.OVERFLOW_SAT, mode, rbits, ukey,
                    np.uint64(offset + row * length + j),
                )
                outbits[row, j] = rb
                if want_stats:
                    _count(st, x[row, j], out[row, j], flag, u, mant_bits, bias, thresh, hist, c)
        if want_stats:
            for j in range(N_STATS):
                stats[c, j] = st[j]
