"""Fast CPU kernels (numba, parallel): one fused pass per tensor that rounds and optionally counts.

The rounding works on the carrier's bits (`scalar.quantize_bits`), so the plain loop vectorises.
Each rounding mode gets its own copy of the loop (the mode is a compile-time constant there),
so the per-element work is only what that mode needs.

Work is split into fixed-size chunks of CHUNK elements (whole blocks for `block<M,k>`),
independent of the thread count. With statistics, a chunk is first rounded (also writing one
flag byte per element into a chunk-local buffer), then counted by `_count_range` while it is
still in cache; every chunk writes its own row of counters, so the statistics (sums included)
do not depend on the number of threads.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numba
import numpy as np

from quantsim.kernels import float32_fast, rng, scalar
from quantsim.kernels.vector_width import prefer_512_bit_vectors

#: Tensors with fewer elements run on the calling thread (`launch`). Where two threads start to
#: pay (one fp8 stochastic call right after a BLAS product, 2-core VM): 65,536 elements 104 us
#: serial, 100 us on two threads; 131,072 elements 146 and 106 us. A parallel launch costs more
#: on a busy machine (a study running jobs side by side), so the bound sits at the break-even.
PARALLEL_MIN = 1 << 16

CHUNK = 1 << 16
N_STATS = 11
(S_COUNT, S_ZERO_IN, S_UNDERFLOW, S_OVERFLOW, S_NAN, S_INF, S_SUM_ABS, S_MAX_ABS,
 S_SUM_REL_ERR, S_ABOVE, S_ZERO_OUT) = range(N_STATS)
LOG2_HIST_MIN = -160
LOG2_HIST_BINS = 320
#: Sub-histograms per chunk: consecutive elements of one binade increment different copies.
_HIST_WAYS = 8
#: Independent partial sums per chunk for the floating statistics (fixed order, any machine).
_SUM_WAYS = 8

_quantize_bits = scalar.compile_core(numba.njit(inline="always"))
_quantize_f32 = float32_fast.quantize_f32
_fill_draws = scalar.compile_random(numba.njit(inline="always"), rng.fill_draws)


@numba.njit(inline="always")
def _count(st, x, r, flag, u, mant_bits, bias, thresh, hist, c):
    """Count one element (value `x`, result `r`, kernel flag, input bits `u`) into `st` and row
    `c` of `hist`: the per-element definition of the statistics (`_count_range` is the fast,
    equivalent pass over a range; other modules count single values with this)."""
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


@numba.njit(inline="always")
def _round_range(
    xbits, outbits, flags, want_flags, i0, i1, mant_bits, bias, kind, m, emin, subnormals,
    qfix, maxpos_bits, maxneg_bits, policy, mode, rbits, ukey, offset,
):
    """Round elements i0..i1-1 of the flat bit views; flags[i - i0] gets each flag if asked."""
    # Indexed from 0 through views: with the loop running from a run-time i0, this loop did
    # not vectorise (10x slower).
    xs, outs = xbits[i0:i1], outbits[i0:i1]
    for k in range(i1 - i0):
        rb, flag = _quantize_bits(
            np.int64(xs[k]), mant_bits, bias, kind, m, emin, subnormals, qfix,
            maxpos_bits, maxneg_bits, policy, mode, rbits, ukey, np.uint64(offset + i0 + k),
        )
        outs[k] = rb
        if want_flags:
            flags[k] = flag


#: Elements per buffer of random draws in the fast stochastic loops: the draws for a block are
#: made in one loop (two elements per 64-bit draw), then read as 32-bit words by the rounding
#: loop while they are in L1.
RANDOM_BLOCK = 2048
#: Elements rounded, then counted, at a time by the counting fast kernel.
COUNT_BLOCK = 4096


@numba.njit(inline="always")
def draw_buffer(mode):
    """A scratch buffer of random draws for `_round_range_fast` (empty unless stochastic)."""
    return np.empty(RANDOM_BLOCK // 2 + 1 if mode == scalar.STOCHASTIC else 0, dtype=np.uint64)


@numba.njit(inline="always")
def random_words(draws, key, first, count):
    """The random words (uint32) of elements first..first+count-1 of the stream `key`, made in
    `draws` (uint64, at least count // 2 + 1 of them). The uint32 view puts each draw's low
    half first, as `rng` defines, on little-endian hosts (x86-64, AArch64, ppc64le)."""
    parity = first & 1
    _fill_draws(draws[:(parity + count + 1) >> 1], key, first >> 1)
    return draws.view(np.uint32)[parity:parity + count]


@numba.njit(inline="always")
def _round_words(xs, outs, flags, want_flags, fp, mode, twos, words):
    """Round xs into outs (float32 bit arrays of one length) with the fast core; element k
    takes random word words[k] (stochastic only) and writes flags[k] if `want_flags` (a
    compile-time constant), counted by `_count_flags_above`. Counting in this loop (one
    packed int64 sum) stopped the 32-bit core from vectorising well: flags written here and
    counted in a second pass over the chunk ran 2-3x faster."""
    for k in range(xs.size):
        rb, flag = _quantize_f32(np.uint32(xs[k]), fp, mode, twos,
                                 words[k] if mode == scalar.STOCHASTIC else np.uint32(0))
        outs[k] = rb
        if want_flags:
            flags[k] = flag


@numba.njit(inline="always")
def _round_range_fast(xbits, outbits, flags, want_flags, i0, i1, fp, mode, twos, ukey, offset,
                      draws):
    """`_round_range` with the float32 fast core (`float32_fast`), `draws` from `draw_buffer`;
    flags[k] gets element i0 + k's flag if `want_flags`."""
    xs, outs = xbits[i0:i1], outbits[i0:i1]
    stochastic = mode == scalar.STOCHASTIC
    # One call site of the loop: with a second one for the other modes, every mode's copy
    # held both loops (a stochastic bfloat16 call compiled in 81 s instead of 31 s).
    step = RANDOM_BLOCK if stochastic else max(i1 - i0, 1)
    for s0 in range(0, i1 - i0, step):
        s1 = min(s0 + step, i1 - i0)
        words = (random_words(draws, ukey, offset + i0 + s0, s1 - s0) if stochastic
                 else draws.view(np.uint32))
        _round_words(xs[s0:s1], outs[s0:s1], flags[s0:s1] if want_flags else flags,
                     want_flags, fp, mode, twos, words)


#: `_count_flags_above` sums the flags of a chunk in one int64, FLAG_FIELD bits per flag.
FLAG_FIELD = 21
_FIELD_MASK = (1 << FLAG_FIELD) - 1


@numba.njit(inline="always")
def _count_flags_above(flags, xbits, i0, i1, above_bits):
    """(overflowed, NaN, infinite, above) for elements i0..i1-1 (fewer than 2**21): the first
    three from flags[:i1 - i0] (flag f adds 2**(21 (f - 1)), FLAG_OK nothing, so one sum
    counts all three); `above` counts the finite float32 elements whose magnitude bits exceed
    `above_bits`."""
    xs = xbits[i0:i1]
    above = np.uint32(above_bits)
    field = np.uint64(FLAG_FIELD)
    packed = np.uint64(0)
    n_above = 0
    for k in range(i1 - i0):
        packed += (np.uint64(1) << (field * np.uint64(flags[k]))) >> field
        mag = np.uint32(xs[k] & np.uint32(0x7FFFFFFF))  # 32-bit lanes, as in the fast core
        n_above += mag > above and mag < np.uint32(float32_fast.EXP_ALL)
    return (np.int64(packed & np.uint64(_FIELD_MASK)),
            np.int64((packed >> field) & np.uint64(_FIELD_MASK)),
            np.int64(packed >> np.uint64(2 * FLAG_FIELD)), n_above)


@numba.njit(inline="always")
def _round_range_fast_mode(xbits, outbits, flags, want_flags, i0, i1, fp, mode, twos, ukey,
                           offset, draws):
    """`_round_range_fast` with the rounding mode (and `twos`) made compile-time constants."""
    if mode == scalar.NEAREST:
        _round_range_fast(xbits, outbits, flags, want_flags, i0, i1, fp, scalar.NEAREST, False,
                          ukey, offset, draws)
    elif mode == scalar.STOCHASTIC and twos:
        _round_range_fast(xbits, outbits, flags, want_flags, i0, i1, fp, scalar.STOCHASTIC,
                          True, ukey, offset, draws)
    elif mode == scalar.STOCHASTIC:
        _round_range_fast(xbits, outbits, flags, want_flags, i0, i1, fp, scalar.STOCHASTIC,
                          False, ukey, offset, draws)
    elif mode == scalar.TOWARD_ZERO:
        _round_range_fast(xbits, outbits, flags, want_flags, i0, i1, fp, scalar.TOWARD_ZERO,
                          False, ukey, offset, draws)
    elif mode == scalar.DOWN:
        _round_range_fast(xbits, outbits, flags, want_flags, i0, i1, fp, scalar.DOWN, False,
                          ukey, offset, draws)
    else:
        _round_range_fast(xbits, outbits, flags, want_flags, i0, i1, fp, scalar.UP, False,
                          ukey, offset, draws)


@numba.njit(inline="always")
def _round_range_mode(
    xbits, outbits, flags, want_flags, i0, i1, mant_bits, bias, kind, m, emin, subnormals,
    qfix, maxpos_bits, maxneg_bits, policy, mode, rbits, ukey, offset,
):
    """`_round_range` with the rounding mode turned into a compile-time constant."""
    if mode == scalar.NEAREST:
        _round_range(xbits, outbits, flags, want_flags, i0, i1, mant_bits, bias, kind, m, emin,
                     subnormals, qfix, maxpos_bits, maxneg_bits, policy, scalar.NEAREST, rbits,
                     ukey, offset)
    elif mode == scalar.STOCHASTIC:
        _round_range(xbits, outbits, flags, want_flags, i0, i1, mant_bits, bias, kind, m, emin,
                     subnormals, qfix, maxpos_bits, maxneg_bits, policy, scalar.STOCHASTIC,
                     rbits, ukey, offset)
    elif mode == scalar.TOWARD_ZERO:
        _round_range(xbits, outbits, flags, want_flags, i0, i1, mant_bits, bias, kind, m, emin,
                     subnormals, qfix, maxpos_bits, maxneg_bits, policy, scalar.TOWARD_ZERO,
                     rbits, ukey, offset)
    elif mode == scalar.DOWN:
        _round_range(xbits, outbits, flags, want_flags, i0, i1, mant_bits, bias, kind, m, emin,
                     subnormals, qfix, maxpos_bits, maxneg_bits, policy, scalar.DOWN, rbits,
                     ukey, offset)
    else:
        _round_range(xbits, outbits, flags, want_flags, i0, i1, mant_bits, bias, kind, m, emin,
                     subnormals, qfix, maxpos_bits, maxneg_bits, policy, scalar.UP, rbits,
                     ukey, offset)


@numba.njit(inline="always")
def _carrier_value(mag, mant_bits, bias):
    """The float64 value of non-negative finite carrier magnitude bits `mag`."""
    hidden = np.int64(1) << np.int64(mant_bits)
    biased = mag >> np.int64(mant_bits)
    s = (mag & (hidden - 1)) | (hidden if biased > 0 else np.int64(0))
    return math.ldexp(np.float64(s), int(max(biased, np.int64(1)) - bias - mant_bits))


@numba.njit(inline="always")
def _count_range(x, xbits, out, outbits, flags, i0, i1, mant_bits, bias, thresh, stats, hist,
                 c):
    """Fill row `c` of `stats` / `hist` for elements i0..i1-1 (flags[i - i0] from the rounding
    pass): the same numbers as `_count` element by element, in three passes over the range
    that the compiler vectorises (integer counters; partial float sums; sub-histograms)."""
    sign_shift = 31 if mant_bits == 23 else 63
    magmask = (np.int64(1) << np.int64(sign_shift)) - np.int64(1)
    emask = np.int64(2 * bias + 1)
    # Views indexed from 0: loops from a run-time i0 did not vectorise.
    n = i1 - i0
    xs, xbs, outs, outbs = x[i0:i1], xbits[i0:i1], out[i0:i1], outbits[i0:i1]
    n_nan = n_inf = n_zero_in = n_zero_out = n_over = n_under = n_above = 0
    max_mag = np.int64(0)
    for k in range(n):
        f = flags[k]
        fin = f < scalar.FLAG_NAN
        xm = np.int64(xbs[k]) & magmask
        rz = (np.int64(outbs[k]) & magmask) == 0
        nz = fin and xm != 0
        n_nan += f == scalar.FLAG_NAN
        n_inf += f == scalar.FLAG_INF
        n_zero_in += fin and xm == 0
        n_zero_out += fin and rz
        n_over += nz and f == scalar.FLAG_OVERFLOW
        n_under += nz and f == scalar.FLAG_OK and rz
        n_above += nz and abs(np.float64(xs[k])) > thresh
        max_mag = max(max_mag, xm if nz else np.int64(0))
    # Floating sums: element k goes to partial sum k % _SUM_WAYS, summed in order.
    sa = np.zeros(_SUM_WAYS)
    sr = np.zeros(_SUM_WAYS)
    nfull = n // _SUM_WAYS * _SUM_WAYS
    for k0 in range(0, nfull, _SUM_WAYS):
        for w in range(_SUM_WAYS):
            k = k0 + w
            f = flags[k]
            xv = np.float64(xs[k])
            ax = abs(xv)
            nz = f < scalar.FLAG_NAN and ax != 0.0
            sa[w] += ax if nz else 0.0
            ok = nz and f == scalar.FLAG_OK
            sr[w] += abs(np.float64(outs[k]) - xv) / (ax if ok else 1.0) if ok else 0.0
    for k in range(nfull, n):
        f = flags[k]
        xv = np.float64(xs[k])
        ax = abs(xv)
        nz = f < scalar.FLAG_NAN and ax != 0.0
        sa[0] += ax if nz else 0.0
        if nz and f == scalar.FLAG_OK:
            sr[0] += abs(np.float64(outs[k]) - xv) / ax
    sum_abs = 0.0
    sum_rel = 0.0
    for w in range(_SUM_WAYS):
        sum_abs += sa[w]
        sum_rel += sr[w]
    # log2 histogram of the finite nonzero inputs, by binade.
    hl = np.zeros((_HIST_WAYS, LOG2_HIST_BINS), dtype=np.int64)
    for k in range(n):
        xm = np.int64(xbs[k]) & magmask
        e = (xm >> np.int64(mant_bits)) - bias
        b = min(max(e - LOG2_HIST_MIN, 0), LOG2_HIST_BINS - 1)
        if xm != 0 and (xm >> np.int64(mant_bits)) != emask:
            hl[k % _HIST_WAYS, b] += 1
    for b in range(LOG2_HIST_BINS):
        t = np.int64(0)
        for k in range(_HIST_WAYS):
            t += hl[k, b]
        hist[c, b] += t
    stats[c, S_COUNT] += i1 - i0
    stats[c, S_ZERO_IN] += n_zero_in
    stats[c, S_UNDERFLOW] += n_under
    stats[c, S_OVERFLOW] += n_over
    stats[c, S_NAN] += n_nan
    stats[c, S_INF] += n_inf
    stats[c, S_SUM_ABS] += sum_abs
    stats[c, S_MAX_ABS] = max(stats[c, S_MAX_ABS], _carrier_value(max_mag, mant_bits, bias))
    stats[c, S_SUM_REL_ERR] += sum_rel
    stats[c, S_ABOVE] += n_above
    stats[c, S_ZERO_OUT] += n_zero_out


@numba.njit(parallel=True, cache=True)
def quantize_elementwise(
    xbits, outbits, mant_bits, bias, kind, m, emin, subnormals, qfix,
    maxpos_bits, maxneg_bits, policy, mode, rbits, key, offset,
):
    """Float and fixed formats on flat contiguous bit views (uint32 or int64). One flat
    parallel loop per rounding mode (the mode is a constant inside each: they vectorise)."""
    ukey = np.uint64(key)
    n = xbits.size
    if mode == scalar.NEAREST:
        for i in numba.prange(n):
            rb, _ = _quantize_bits(
                np.int64(xbits[i]), mant_bits, bias, kind, m, emin, subnormals, qfix,
                maxpos_bits, maxneg_bits, policy, scalar.NEAREST, rbits, ukey,
                np.uint64(offset + i),
            )
            outbits[i] = rb
    elif mode == scalar.STOCHASTIC:
        for i in numba.prange(n):
            rb, _ = _quantize_bits(
                np.int64(xbits[i]), mant_bits, bias, kind, m, emin, subnormals, qfix,
                maxpos_bits, maxneg_bits, policy, scalar.STOCHASTIC, rbits, ukey,
                np.uint64(offset + i),
            )
            outbits[i] = rb
    elif mode == scalar.TOWARD_ZERO:
        for i in numba.prange(n):
            rb, _ = _quantize_bits(
                np.int64(xbits[i]), mant_bits, bias, kind, m, emin, subnormals, qfix,
                maxpos_bits, maxneg_bits, policy, scalar.TOWARD_ZERO, rbits, ukey,
                np.uint64(offset + i),
            )
            outbits[i] = rb
    elif mode == scalar.DOWN:
        for i in numba.prange(n):
            rb, _ = _quantize_bits(
                np.int64(xbits[i]), mant_bits, bias, kind, m, emin, subnormals, qfix,
                maxpos_bits, maxneg_bits, policy, scalar.DOWN, rbits, ukey,
                np.uint64(offset + i),
            )
            outbits[i] = rb
    else:
        for i in numba.prange(n):
            rb, _ = _quantize_bits(
                np.int64(xbits[i]), mant_bits, bias, kind, m, emin, subnormals, qfix,
                maxpos_bits, maxneg_bits, policy, scalar.UP, rbits, ukey,
                np.uint64(offset + i),
            )
            outbits[i] = rb


@numba.njit(parallel=True, cache=True)
def quantize_elementwise_fast(xbits, outbits, fp, mode, twos, key, offset):
    """`quantize_elementwise` on float32 bit views with the fast core; `fp` from
    `float32_fast.fast_params`, `twos` true for fixed-point formats."""
    n = xbits.size
    nchunks = (n + CHUNK - 1) // CHUNK
    ukey = np.uint64(key)
    no_flags = np.empty(0, dtype=np.uint8)
    for c in numba.prange(nchunks):
        prefer_512_bit_vectors()
        i0 = c * CHUNK
        _round_range_fast_mode(xbits, outbits, no_flags, False, i0, min(i0 + CHUNK, n), fp,
                               mode, twos, ukey, offset, draw_buffer(mode))


@numba.njit(cache=True)
def quantize_elementwise_fast_serial(xbits, outbits, fp, mode, twos, key, offset):
    """`quantize_elementwise_fast` on the calling thread, the same bits: `launch` runs it
    for small tensors, where entering the OpenMP region costs more than the rounding."""
    prefer_512_bit_vectors()
    n = xbits.size
    ukey = np.uint64(key)
    no_flags = np.empty(0, dtype=np.uint8)
    draws = draw_buffer(mode)
    for i0 in range(0, n, CHUNK):
        _round_range_fast_mode(xbits, outbits, no_flags, False, i0, min(i0 + CHUNK, n), fp,
                               mode, twos, ukey, offset, draws)


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
        i0 = c * CHUNK
        i1 = min(i0 + CHUNK, n)
        flags = np.empty(i1 - i0, dtype=np.uint8)
        _round_range_mode(
            xbits, outbits, flags, True, i0, i1, mant_bits, bias, kind, m, emin, subnormals,
            qfix, maxpos_bits, maxneg_bits, policy, mode, rbits, ukey, offset,
        )
        _count_range(x, xbits, out, outbits, flags, i0, i1, mant_bits, bias, thresh, stats, hist,
                     c)


@numba.njit(parallel=True, cache=True)
def quantize_elementwise_stats_fast(x, xbits, out, outbits, fp, mode, twos, key, offset, thresh,
                                    stats, hist):
    """`quantize_elementwise_stats` on float32 bit views with the fast core (`fp` from
    `float32_fast.fast_params`, `twos` for fixed point), for nearest and stochastic rounding
    (the directed modes keep the general kernel, so this kernel compiles three copies of the
    core, not six). The rounding pass writes the flags `_count_range` reads, as the general
    core's does."""
    n = xbits.size
    nchunks = (n + CHUNK - 1) // CHUNK
    ukey = np.uint64(key)
    for c in numba.prange(nchunks):
        prefer_512_bit_vectors()
        i0 = c * CHUNK
        i1 = min(i0 + CHUNK, n)
        flags = np.empty(i1 - i0, dtype=np.uint8)
        draws = draw_buffer(mode)
        if mode == scalar.NEAREST:
            _round_range_fast(xbits, outbits, flags, True, i0, i1, fp, scalar.NEAREST, False,
                              ukey, offset, draws)
        elif twos:
            _round_range_fast(xbits, outbits, flags, True, i0, i1, fp, scalar.STOCHASTIC,
                              True, ukey, offset, draws)
        else:
            _round_range_fast(xbits, outbits, flags, True, i0, i1, fp, scalar.STOCHASTIC,
                              False, ukey, offset, draws)
        _count_range(x, xbits, out, outbits, flags, i0, i1, 23, 127, thresh, stats, hist, c)


@numba.njit(inline="always")
def _count_controller(x, flags, i0, i1, thresh, stats, c):
    """Row c of `stats`: S_COUNT, S_NAN, S_INF, S_OVERFLOW and S_ABOVE of elements i0..i1-1."""
    n_nan = n_inf = n_over = n_above = 0
    xs = x[i0:i1]
    for k in range(i1 - i0):
        f = flags[k]
        n_nan += f == scalar.FLAG_NAN
        n_inf += f == scalar.FLAG_INF
        n_over += f == scalar.FLAG_OVERFLOW  # zeros never overflow
        n_above += f < scalar.FLAG_NAN and abs(np.float64(xs[k])) > thresh
    stats[c, S_COUNT] += i1 - i0
    stats[c, S_NAN] += n_nan
    stats[c, S_INF] += n_inf
    stats[c, S_OVERFLOW] += n_over
    stats[c, S_ABOVE] += n_above


@numba.njit(parallel=True, cache=True)
def quantize_elementwise_counts(
    x, xbits, outbits, mant_bits, bias, kind, m, emin, subnormals, qfix,
    maxpos_bits, maxneg_bits, policy, mode, rbits, key, offset, thresh, stats,
):
    """`quantize_elementwise` that counts only what a dynamic fixed point controller needs
    into row c of `stats` for chunk c: S_COUNT, S_NAN, S_INF, S_OVERFLOW and S_ABOVE, equal
    to those of `quantize_elementwise_stats` (the other columns stay zero)."""
    n = xbits.size
    nchunks = (n + CHUNK - 1) // CHUNK
    ukey = np.uint64(key)
    for c in numba.prange(nchunks):
        i0 = c * CHUNK
        i1 = min(i0 + CHUNK, n)
        flags = np.empty(i1 - i0, dtype=np.uint8)
        _round_range_mode(
            xbits, outbits, flags, True, i0, i1, mant_bits, bias, kind, m, emin, subnormals,
            qfix, maxpos_bits, maxneg_bits, policy, mode, rbits, ukey, offset,
        )
        _count_controller(x, flags, i0, i1, thresh, stats, c)


@numba.njit(parallel=True, cache=True)
def quantize_elementwise_counts_fast(xbits, outbits, fp, mode, twos, key, offset, above_bits,
                                     stats):
    """`quantize_elementwise_counts` on float32 bit views with the fast core; `above_bits`:
    the float32 bits of the threshold rounded down (for finite |x|, |x| > threshold exactly
    when its bits exceed these)."""
    n = xbits.size
    nchunks = (n + CHUNK - 1) // CHUNK
    ukey = np.uint64(key)
    for c in numba.prange(nchunks):
        prefer_512_bit_vectors()
        i0 = c * CHUNK
        i1 = min(i0 + CHUNK, n)
        flags = np.empty(COUNT_BLOCK, dtype=np.uint8)
        draws = draw_buffer(mode)
        # Counted in a second pass over each block while it is in L1 (see _round_words).
        for s0 in range(i0, i1, COUNT_BLOCK):
            s1 = min(s0 + COUNT_BLOCK, i1)
            _round_range_fast_mode(xbits, outbits, flags, True, s0, s1, fp, mode, twos, ukey,
                                   offset, draws)
            n_over, n_nan, n_inf, n_above = _count_flags_above(flags, xbits, s0, s1, above_bits)
            stats[c, S_NAN] += n_nan
            stats[c, S_INF] += n_inf
            stats[c, S_OVERFLOW] += n_over
            stats[c, S_ABOVE] += n_above
        stats[c, S_COUNT] += i1 - i0


encode_scaled = numba.njit(inline="always")(scalar.encode_scaled)
block_quantum = numba.njit(inline="always")(scalar.block_quantum)


@numba.njit(inline="always")
def block_chunks(rows, length, block):
    """(per_row, nblocks, blocks_per_chunk, nchunks) of blocks of `block` elements tiling
    `rows` rows of `length` (a row's last block may be shorter), CHUNK // block blocks (at
    least one) per chunk. Blocks tile the rows, so a run of blocks is a contiguous flat range."""
    per_row = (length + block - 1) // block
    nblocks = rows * per_row
    blocks_per_chunk = max(1, CHUNK // block)
    return per_row, nblocks, blocks_per_chunk, (nblocks + blocks_per_chunk - 1) // blocks_per_chunk


@numba.njit(inline="always")
def block_span(b, per_row, length, block):
    """The flat element range (j0, j1) of block b (see `block_chunks`)."""
    row = b // per_row
    j0 = row * length + (b % per_row) * block
    return j0, row * length + min((b % per_row) * block + block, length)


@numba.njit(parallel=True, cache=True)
def quantize_blocks(
    x, xbits, out, outbits, mant_bits, bias, mbits, block, mode, rbits, key, offset,
    want_stats, thresh, stats, hist, only,
):
    """Block floating point on (rows, length) arrays. Blocks of `block` elements along the last
    axis share qe = floor(log2(max finite |x|)) - (mbits - 2); elements are mbits-bit two's
    complement integers times 2**qe, rounded then saturated. qe never goes below the carrier's
    smallest quantum (blocks laid out as `block_chunks` says). With a non-empty `only` (one
    uint8 per block), blocks b with only[b] == 0 are left alone."""
    rows, length = xbits.shape
    xf = x.reshape(x.size)
    of = out.reshape(out.size)
    xb = xbits.reshape(xbits.size)
    ob = outbits.reshape(outbits.size)
    per_row, nblocks, blocks_per_chunk, nchunks = block_chunks(rows, length, block)
    ukey = np.uint64(key)
    sign_shift = 31 if mant_bits == 23 else 63
    magmask = (np.int64(1) << np.int64(sign_shift)) - 1
    inf_bits = np.int64(2 * bias + 1) << np.int64(mant_bits)
    top = np.int64(1) << np.int64(mbits - 1)
    for c in numba.prange(nchunks):
        prefer_512_bit_vectors()
        b0 = c * blocks_per_chunk
        b1 = min(b0 + blocks_per_chunk, nblocks)
        f0 = block_span(b0, per_row, length, block)[0]
        f1 = block_span(b1 - 1, per_row, length, block)[1]
        flags = np.empty(f1 - f0 if want_stats else 0, dtype=np.uint8)
        for b in range(b0, b1):
            if only.size and not only[b]:
                continue
            j0, j1 = block_span(b, per_row, length, block)
            amax = np.int64(0)
            xs = xb[j0:j1]  # indexed from 0: a loop from a run-time j0 did not vectorise
            for k in range(j1 - j0):
                mag = np.int64(xs[k]) & magmask
                amax = max(amax, mag if mag < inf_bits else np.int64(0))
            qe = block_quantum(amax, mant_bits, bias, mbits)
            maxpos = encode_scaled(top - 1, mbits - 2, qe, mant_bits, bias)
            maxneg = encode_scaled(top, mbits - 1, qe, mant_bits, bias)
            # One inlined copy of the general core with a run-time mode (a copy per mode
            # made this kernel take minutes to compile).
            _round_range(
                xb, ob, flags[j0 - f0:] if want_stats else flags, want_stats, j0, j1,
                mant_bits, bias, scalar.KIND_FIXED, 0, 0, True, qe, maxpos, maxneg,
                scalar.OVERFLOW_SAT, mode, rbits, ukey, offset,
            )
        if want_stats:
            _count_range(xf, xb, of, ob, flags, f0, f1, mant_bits, bias, thresh, stats, hist, c)


def launch(kernel, n: int, *args) -> None:
    """Run `kernel(*args)` on `n` elements; below PARALLEL_MIN (or with one thread configured)
    on the calling thread: its serial twin when it has one (`SERIAL_TWINS`), else the kernel
    itself on one thread, which skips the thread-pool barrier (set_num_threads is per calling
    thread) but still enters an OpenMP region."""
    threads = numba.get_num_threads()
    if n >= PARALLEL_MIN and threads > 1:
        kernel(*args)
        return
    twin = SERIAL_TWINS.get(kernel)
    if twin is not None:
        twin(*args)
        return
    if threads == 1:
        kernel(*args)
        return
    numba.set_num_threads(1)
    try:
        kernel(*args)
    finally:
        numba.set_num_threads(threads)


#: parallel kernel -> a serial kernel with the same arguments and results, for `launch`. Only the
#: kernels of frequent small calls have one (each twin is one more compiled copy of its core):
#: after a BLAS product, a parallel region of one thread measured 13.7 us against 2.4 us serial.
SERIAL_TWINS = {quantize_elementwise_fast: quantize_elementwise_fast_serial}


def _drop_stale_cache() -> None:
    """numba's on-disk cache notices edits to this file only, not to the kernels' sources in
    scalar.py / rng.py that it inlines: remove this module's cached kernels when any of them
    changed since the cache was written."""
    here = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for name in ("cpu.py", "scalar.py", "rng.py", "float32_fast.py", "vector_width.py"):
        digest.update((here / name).read_bytes())
    stamp_text = digest.hexdigest()
    # Modules whose cached kernels inline code from these files.
    dependants = ("cpu.*.nb[ic]", "block_fast.*.nb[ic]", "fused_update.*.nb[ic]",
                  "stats.*.nb[ic]")
    roots = [here / "__pycache__", here.parent / "__pycache__"]
    if numba.config.CACHE_DIR:
        roots.append(Path(numba.config.CACHE_DIR))
    for root in roots:
        stamp = root / "quantsim-kernels.sha256"
        try:
            if stamp.is_file() and stamp.read_text() == stamp_text:
                continue
            for pattern in dependants:
                for cached in root.rglob(pattern):
                    cached.unlink(missing_ok=True)
            if root.is_dir() or root.name == "__pycache__":
                root.mkdir(parents=True, exist_ok=True)
                stamp.write_text(stamp_text)
        except OSError:
            pass  # a read-only install: numba falls back to its user-wide cache directory


_drop_stale_cache()
