"""The fast CPU kernel of `block<M,k>` on float32 carriers, without statistics.

A block is fixed point with quantum 2**qe, so the float32 fast core rounds it (`float32_fast`).
Two things keep short blocks (MX uses k = 32) at memory speed:

- block maxima come from a tree of pairwise maxima over a group of blocks, which vectorises
  (when k is a power of two and the blocks tile the rows); a loop per 32-element block ran at
  1,050 Melem/s, the tree at 5,380 (16M elements, 2 threads);
- blocks are rounded LANES elements at a time by a loop with a constant trip count, which
  vectorises, where a loop over 32 elements with a run-time count did not (in one process:
  block<8,32> stochastic 1,663 -> 1,730-1,800 Melem/s, block<8,16> 747 -> 1,300-1,420);
- one array of random words per group, the same view in every mode: choosing between two
  arrays by the mode (a phi of two arrays), like choosing a per-step source array, stopped
  the rounding loops from vectorising.

This kernel holds no copy of the general core: with one inlined beside the fast loops, the
same stochastic kernel ran at half the speed (and `cpu.quantize_blocks`, holding a copy of the
fast core per mode beside its general one, took 59-62 s to compile; 8 s without). Blocks it
does not take (fewer than LANES elements at the end of a row; a quantum above 2**104) are
marked for `cpu.quantize_blocks`. Results are those of `cpu.quantize_blocks`, bit for bit
(the random word of an element depends only on (key, element index)).
"""

from __future__ import annotations

import numba
import numpy as np

from quantsim.kernels import float32_fast, scalar
from quantsim.kernels.cpu import block_chunks, block_span, random_words
from quantsim.kernels.vector_width import prefer_512_bit_vectors

#: Elements per group of blocks: one loop of random draws and one tree of block maxima each
#: (1,024 and 4,096 ran alike).
GROUP = 2048

#: Largest block quantum exponent for the fast core: its constant 2**(qe + 23) must be a float32.
MAX_QE = 104


@numba.njit(inline="always")
def _group_params(maxima, mbits, qe, c, q, scale_a, scale_b, maxpos, maxneg):
    """For each block i of a group (its largest finite magnitude maxima[i], float32 bits, as
    many as qe.size): qe[i], `scalar.block_quantum` of it, and the per-block constants of the
    fast core's tuple (see `float32_fast.fast_params`) for a saturating fixed-point grid
    with quantum 2**qe[i]; meaningful where qe[i] <= MAX_QE. One loop over the blocks, which
    vectorises, instead of scalar work per block."""
    u32 = np.uint32
    top = np.float32(np.int64(1) << np.int64(mbits - 1))
    for i in range(qe.size):
        amax = maxima[i]
        # floor(log2(amax)) below 2**23 from the exponent of float32(amax) (exact there);
        # amax = 0 gives a smaller e than the clamp below.
        sub = np.int64(float32_fast._bits_of_float(np.float32(amax)) >> u32(23)) - 276
        e = np.int64(amax >> u32(23)) - 127 if amax >= u32(1 << 23) else sub
        k = max(e - (mbits - 2), np.int64(-149))
        qe[i] = k
        c[i] = float32_fast._float_of_bits((k + 150) << 23)
        quantum = float32_fast._float_of_bits(
            (k + 127) << 23 if k >= -126 else np.int64(1) << (k + 149))
        q[i] = quantum
        # scale_a * scale_b = 2**(32 - qe), each factor a normal float32 (32 - qe <= 181).
        first = min(32 - k, np.int64(127))
        scale_a[i] = float32_fast._float_of_bits((first + 127) << 23)
        scale_b[i] = float32_fast._float_of_bits((32 - k - first + 127) << 23)
        # (2**(M-1) - 1) * 2**qe and 2**(M-1) * 2**qe are float32 values: exact products.
        maxpos[i] = float32_fast._bits_of_float((top - np.float32(1)) * quantum)
        maxneg[i] = float32_fast._bits_of_float(top * quantum)


#: float32 lanes of a 512-bit vector: blocks are rounded this many elements at a time.
LANES = 16


@numba.njit(inline="always")
def _round_block(xb, ob, j0, j1, fp, mode, words):
    """Round block xb[j0:j1] (at least LANES elements) into ob with the fast core (fixed point:
    `twos`), LANES at a time; element j0 + k takes words[k] (stochastic; read but unused in
    other modes: a read made conditional on the mode, in this loop's copy per mode, halved the
    stochastic speed). A partial last step redoes the block's last LANES elements: a result
    depends only on the input and its word, and in place a rounded value rounds to itself.
    Unsigned indices, not slices: numba wraps negative indices and slice bounds, scalar work
    per step that cost as much as the rounding (one thread, in cache, block<8,32>
    stochastic: 2.23 -> 1.91 cycles per element)."""
    n = j1 - j0
    u = np.uint64
    for s in range(0, n, LANES):
        s = min(s, n - LANES)
        base, wbase = u(j0 + s), u(s)
        for k in range(LANES):
            rb, _ = float32_fast.quantize_f32(np.uint32(xb[base + u(k)]), fp, mode, True,
                                              words[wbase + u(k)])
            ob[base + u(k)] = rb


@numba.njit(inline="always")
def _first_span(b, per_row, length, block):
    """(j0, j1, row_end): block b's flat range (`cpu.block_span`) and the end of its row."""
    j0, j1 = block_span(b, per_row, length, block)
    return j0, j1, (j0 // length + 1) * length


@numba.njit(inline="always")
def _next_span(j1, row_end, length, block):
    """`_first_span` of the block after the one ending at j1 (blocks tile contiguous rows),
    without the divisions of `cpu.block_span` (one thread, in cache, block<8,32>: nearest
    1.26 -> 1.02 cycles per element, stochastic 1.91 -> 1.76)."""
    if j1 == row_end:
        row_end += length
    return j1, min(j1 + block, row_end), row_end


@numba.njit(inline="always")
def _round_group(xb, ob, g0, g1, w0, per_row, length, block, qe, c, q, scale_a, scale_b,
                 maxpos, maxneg, low_draw, words, skipped, mode):
    """Round blocks g0..g1-1 (a group starting at element w0; constants from `_group_params`
    at b - g0; words from element w0 on), or mark them in `skipped`. The mode is a constant
    here (`_round_group_mode`): a branch on it per block cost ~5% of the stochastic speed."""
    sign = np.uint32(float32_fast.SIGN)
    j0, j1, row_end = _first_span(g0, per_row, length, block)
    for b in range(g0, g1):
        if b > g0:
            j0, j1, row_end = _next_span(j1, row_end, length, block)
        i = b - g0
        skip = qe[i] > MAX_QE or j1 - j0 < LANES
        skipped[b] = skip
        if not skip:
            fp = (np.uint32(1), np.uint32(float32_fast.EXP_ALL), c[i], q[i], scale_a[i],
                  maxpos[i], maxneg[i], maxpos[i], maxneg[i] | sign, maxpos[i],
                  maxneg[i] | sign, low_draw, scale_b[i])
            _round_block(xb, ob, j0, j1, fp, mode, words[j0 - w0:j1 - w0])


@numba.njit(inline="always")
def _round_group_mode(xb, ob, g0, g1, w0, per_row, length, block, qe, c, q, scale_a, scale_b,
                      maxpos, maxneg, low_draw, words, skipped, mode):
    """`_round_group` with the rounding mode made a compile-time constant."""
    if mode == scalar.NEAREST:
        _round_group(xb, ob, g0, g1, w0, per_row, length, block, qe, c, q, scale_a, scale_b,
                     maxpos, maxneg, low_draw, words, skipped, scalar.NEAREST)
    elif mode == scalar.STOCHASTIC:
        _round_group(xb, ob, g0, g1, w0, per_row, length, block, qe, c, q, scale_a, scale_b,
                     maxpos, maxneg, low_draw, words, skipped, scalar.STOCHASTIC)
    elif mode == scalar.TOWARD_ZERO:
        _round_group(xb, ob, g0, g1, w0, per_row, length, block, qe, c, q, scale_a, scale_b,
                     maxpos, maxneg, low_draw, words, skipped, scalar.TOWARD_ZERO)
    elif mode == scalar.DOWN:
        _round_group(xb, ob, g0, g1, w0, per_row, length, block, qe, c, q, scale_a, scale_b,
                     maxpos, maxneg, low_draw, words, skipped, scalar.DOWN)
    else:
        _round_group(xb, ob, g0, g1, w0, per_row, length, block, qe, c, q, scale_a, scale_b,
                     maxpos, maxneg, low_draw, words, skipped, scalar.UP)


@numba.njit(inline="always")
def _finite_mag(bits):
    """|x| as float32 bits, 0 for NaN and inf."""
    mag = np.uint32(bits & np.uint32(0x7FFFFFFF))
    return mag if mag < np.uint32(float32_fast.EXP_ALL) else np.uint32(0)


@numba.njit(inline="always")
def _block_maxima(xs, block, half, quarter):
    """half[i] = the largest finite magnitude (float32 bits) in block i of xs, for a block
    length that is a power of two (>= 2) dividing xs.size: a tree of pairwise maxima, which
    vectorises; `half` and `quarter` hold xs.size / 2 and / 4 elements."""
    n = xs.size // 2
    for i in range(n):
        half[i] = max(_finite_mag(xs[2 * i]), _finite_mag(xs[2 * i + 1]))
    width = block // 2
    while width > 1:
        n //= 2
        for i in range(n):
            quarter[i] = max(half[2 * i], half[2 * i + 1])
        for i in range(n):
            half[i] = quarter[i]
        width //= 2


@numba.njit(inline="always")
def _block_max(xs):
    """The largest finite magnitude (float32 bits) in xs."""
    amax = np.uint32(0)
    for k in range(xs.size):
        amax = max(amax, _finite_mag(xs[k]))
    return amax


@numba.njit(parallel=True, cache=True)
def quantize_blocks_fast(xbits, outbits, mbits, block, mode, rbits, key, offset, skipped):
    """`cpu.quantize_blocks` on float32 bits (rows, length), mbits <= 23, block >= LANES,
    without statistics. Sets skipped[b] (uint8, one per block) to 1 for the blocks it leaves
    to `cpu.quantize_blocks` (see the module docstring), 0 for the others."""
    rows, length = xbits.shape
    xb = xbits.reshape(xbits.size)
    ob = outbits.reshape(outbits.size)
    per_row, nblocks, blocks_per_chunk, nchunks = block_chunks(rows, length, block)
    ukey = np.uint64(key)
    tree = block <= GROUP and block & (block - 1) == 0 and length % block == 0
    group = max(1, GROUP // block)  # blocks sharing one loop of random draws
    words_per_group = max(GROUP, block)
    low_draw = np.uint32((np.int64(1) << np.int64(32 - rbits)) - 1 if rbits > 0 else 0)
    for c in numba.prange(nchunks):
        prefer_512_bit_vectors()
        b0 = c * blocks_per_chunk
        b1 = min(b0 + blocks_per_chunk, nblocks)
        draws = np.zeros(words_per_group // 2 + 1, dtype=np.uint64)
        half = np.empty(max(GROUP // 2, group), dtype=np.uint32)
        quarter = np.empty(GROUP // 4, dtype=np.uint32)
        qe = np.empty(group, dtype=np.int64)
        cs = np.empty(group, dtype=np.float32)
        qs = np.empty(group, dtype=np.float32)
        scale_a = np.empty(group, dtype=np.float32)
        scale_b = np.empty(group, dtype=np.float32)
        maxpos = np.empty(group, dtype=np.uint32)
        maxneg = np.empty(group, dtype=np.uint32)
        for g0 in range(b0, b1, group):
            g1 = min(g0 + group, b1)
            w0 = block_span(g0, per_row, length, block)[0]
            w1 = block_span(g1 - 1, per_row, length, block)[1]
            if tree:
                _block_maxima(xb[w0:w1], block, half, quarter)
            else:
                j0, j1, row_end = _first_span(g0, per_row, length, block)
                for b in range(g0, g1):
                    if b > g0:
                        j0, j1, row_end = _next_span(j1, row_end, length, block)
                    half[b - g0] = _block_max(xb[j0:j1])
            m = g1 - g0
            _group_params(half, mbits, qe[:m], cs, qs, scale_a, scale_b, maxpos, maxneg)
            if mode == scalar.STOCHASTIC:
                random_words(draws, ukey, offset + w0, w1 - w0)
            # The same view in every mode (see the module docstring).
            parity = (offset + w0) & 1
            words = draws.view(np.uint32)[parity:parity + w1 - w0]
            _round_group_mode(xb, ob, g0, g1, w0, per_row, length, block, qe, cs, qs, scale_a,
                              scale_b, maxpos, maxneg, low_draw, words, skipped, mode)
