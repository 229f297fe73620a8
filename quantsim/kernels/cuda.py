"""GPU kernels (numba.cuda): the fused quantization pass of every built-in format on device arrays.

The rounding itself is `scalar.quantize_bits`, compiled for the GPU from the very source the CPU
kernels use (`scalar.compile_core(cuda.jit(device=True))`), with the same counter-based random
stream: for the same seed, stochastic rounding gives the same bits on both devices.

Arrays are anything numba.cuda accepts: CuPy arrays (through ``__cuda_array_interface__``),
numba device arrays, and, under numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``), plain numpy
arrays, which is how the test suite checks these kernels bit for bit against the CPU ones.

Statistics mirror the CPU kernel's counters (`cpu._count`, `formats.stats.QuantStats`) exactly.
They are gathered over fixed-size chunks of ``THREADS * ITEMS_PER_THREAD`` elements (blocks for
`block<M,k>`), whatever the grid size: every CUDA block reduces its chunk's per-thread counters
in a fixed order into one row of ``rows``, so the sums do not depend on the device or the launch
configuration. Integer counters are exact and equal the CPU's; the floating sums (``sum_abs``,
``sum_rel_err``) are summed in another order than on the CPU and agree to rounding. The log2
histogram is integer, accumulated with atomics (exact).

Entry points mirror the CPU path: `run_elementwise` has the signature of
`quantsim.formats.base.run_elementwise`, `run_blocks` that of `BlockFormat._run` (plus the
format as first argument), `observe` that of `quantsim.stats.observe`, and `scatter_add_rows`
is ``numpy.add.at`` on rows (the embedding gradient).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numba import cuda

from quantsim import backend
from quantsim.kernels import scalar
from quantsim.kernels.cpu import (
    LOG2_HIST_BINS,
    LOG2_HIST_MIN,
    N_STATS,
    S_ABOVE,
    S_COUNT,
    S_INF,
    S_MAX_ABS,
    S_NAN,
    S_OVERFLOW,
    S_SUM_ABS,
    S_SUM_REL_ERR,
    S_UNDERFLOW,
    S_ZERO_IN,
    S_ZERO_OUT,
)

#: Threads per CUDA block (a compile-time constant: it sizes the shared reduction buffers).
THREADS = 128
#: Elements (format blocks for `block<M,k>`) per thread per statistics chunk; a chunk is
#: THREADS * ITEMS_PER_THREAD of them. Changing it changes only the order of the float sums.
ITEMS_PER_THREAD = 32
#: Upper bound on the grid size; larger tensors are covered by grid-stride loops.
MAX_BLOCKS = 4096

_quantize_bits = scalar.compile_core(cuda.jit(device=True))

_FLAG_NAN = scalar.FLAG_NAN
_FLAG_INF = scalar.FLAG_INF
_FLAG_OVERFLOW = scalar.FLAG_OVERFLOW
_KIND_FIXED = scalar.KIND_FIXED
_OVERFLOW_SAT = scalar.OVERFLOW_SAT


# -- device functions -------------------------------------------------------------------------
@cuda.jit(device=True)
def _value(bits, mant_bits, bias):
    """The float64 value of finite carrier bits (exact: carriers embed in float64)."""
    sign_shift = 31 if mant_bits == 23 else 63
    one = np.int64(1)
    mag = bits & ((one << np.int64(sign_shift)) - one)
    biased = mag >> np.int64(mant_bits)
    frac = mag & ((one << np.int64(mant_bits)) - one)
    if biased == 0:
        v = math.ldexp(np.float64(frac), int(1 - bias - mant_bits))
    else:
        v = math.ldexp(
            np.float64(frac | (one << np.int64(mant_bits))), int(biased - bias - mant_bits)
        )
    if (bits >> np.int64(sign_shift)) & one:
        return -v
    return v


@cuda.jit(device=True)
def _count(st, u, rb, flag, mant_bits, bias, thresh, hist):
    """`cpu._count` for one element, from its input bits `u` and result bits `rb`; the
    histogram goes to the block's shared `hist` through atomics."""
    st[S_COUNT] += 1.0
    if flag == _FLAG_NAN:
        st[S_NAN] += 1.0
        return
    if flag == _FLAG_INF:
        st[S_INF] += 1.0
        return
    sign_shift = 31 if mant_bits == 23 else 63
    magmask = (np.int64(1) << np.int64(sign_shift)) - np.int64(1)
    x = _value(u, mant_bits, bias)
    ax = abs(x)
    r_zero = (rb & magmask) == 0
    if r_zero:
        st[S_ZERO_OUT] += 1.0
    if ax == 0.0:
        st[S_ZERO_IN] += 1.0
        return
    if flag == _FLAG_OVERFLOW:
        st[S_OVERFLOW] += 1.0
    else:
        if r_zero:
            st[S_UNDERFLOW] += 1.0
        st[S_SUM_REL_ERR] += abs(_value(rb, mant_bits, bias) - x) / ax
    st[S_SUM_ABS] += ax
    if ax > st[S_MAX_ABS]:
        st[S_MAX_ABS] = ax
    if ax > thresh:
        st[S_ABOVE] += 1.0
    e = ((u >> np.int64(mant_bits)) & np.int64(2 * bias + 1)) - bias
    b = min(max(e - LOG2_HIST_MIN, 0), LOG2_HIST_BINS - 1)
    cuda.atomic.add(hist, b, 1)


@cuda.jit(device=True)
def _begin_block_stats(shist):
    tid = cuda.threadIdx.x
    for b in range(tid, LOG2_HIST_BINS, THREADS):
        shist[b] = 0
    cuda.syncthreads()


@cuda.jit(device=True)
def _reduce_chunk(part, st, rows, c):
    """Write this thread's counters to `part`, then reduce the block's into row `c` of `rows`
    (thread j sums column j over the threads in a fixed order)."""
    tid = cuda.threadIdx.x
    for j in range(N_STATS):
        part[tid, j] = st[j]
    cuda.syncthreads()
    if tid < N_STATS:
        acc = 0.0
        for t in range(THREADS):
            v = part[t, tid]
            if tid == S_MAX_ABS:
                if v > acc:
                    acc = v
            else:
                acc += v
        rows[c, tid] = acc
    cuda.syncthreads()


@cuda.jit(device=True)
def _end_block_stats(shist, hist):
    cuda.syncthreads()
    tid = cuda.threadIdx.x
    for b in range(tid, LOG2_HIST_BINS, THREADS):
        if shist[b] != 0:
            cuda.atomic.add(hist, b, shist[b])


_encode = cuda.jit(device=True)(scalar.encode_scaled)
_block_quantum = cuda.jit(device=True)(scalar.block_quantum)


@cuda.jit(device=True)
def _quantize_block(
    xbits, outbits, row, j0, j1, length, mant_bits, bias, mbits, mode, rbits, key, offset,
    want_stats, thresh, st, shist,
):
    """One block of `block<M,k>` (elements j0..j1-1 of `row`), as `cpu.quantize_blocks`."""
    sign_shift = 31 if mant_bits == 23 else 63
    inf_bits = np.int64(2 * bias + 1) << np.int64(mant_bits)
    top = np.int64(1) << np.int64(mbits - 1)
    magmask = (np.int64(1) << np.int64(sign_shift)) - 1
    amax = np.int64(0)
    for j in range(j0, j1):
        mag = np.int64(xbits[row, j]) & magmask
        if mag < inf_bits and mag > amax:
            amax = mag
    qe = _block_quantum(amax, mant_bits, bias, mbits)
    maxpos = _encode(top - 1, mbits - 2, qe, mant_bits, bias)
    maxneg = _encode(top, mbits - 1, qe, mant_bits, bias)
    for j in range(j0, j1):
        u = np.int64(xbits[row, j])
        rb, flag = _quantize_bits(
            u, mant_bits, bias, _KIND_FIXED, 0, 0, True, qe, maxpos, maxneg, _OVERFLOW_SAT,
            mode, rbits, key, np.uint64(offset + row * length + j),
        )
        outbits[row, j] = rb
        if want_stats:
            _count(st, u, rb, flag, mant_bits, bias, thresh, shist)


# -- kernels ----------------------------------------------------------------------------------
@cuda.jit
def quantize_elementwise(
    xbits, outbits, mant_bits, bias, kind, m, emin, subnormals, qfix,
    maxpos_bits, maxneg_bits, policy, mode, rbits, key, offset,
):
    """Float and fixed formats on flat contiguous bit views (uint32 or int64); grid-stride."""
    for i in range(cuda.grid(1), xbits.size, cuda.gridsize(1)):
        rb, _ = _quantize_bits(
            np.int64(xbits[i]), mant_bits, bias, kind, m, emin, subnormals, qfix,
            maxpos_bits, maxneg_bits, policy, mode, rbits, key, np.uint64(offset + i),
        )
        outbits[i] = rb


@cuda.jit
def quantize_elementwise_stats(
    xbits, outbits, mant_bits, bias, kind, m, emin, subnormals, qfix,
    maxpos_bits, maxneg_bits, policy, mode, rbits, key, offset, items, thresh, rows, hist,
):
    """`quantize_elementwise` that also fills row c of `rows` for chunk c (THREADS * items
    elements, element base + k * THREADS + thread) and adds into the 1-D histogram `hist`."""
    part = cuda.shared.array((THREADS, N_STATS), np.float64)
    shist = cuda.shared.array(LOG2_HIST_BINS, np.int64)
    st = cuda.local.array(N_STATS, np.float64)
    _begin_block_stats(shist)
    n = xbits.size
    tid = cuda.threadIdx.x
    chunk = THREADS * items
    nchunks = (n + chunk - 1) // chunk
    for c in range(cuda.blockIdx.x, nchunks, cuda.gridDim.x):
        for j in range(N_STATS):
            st[j] = 0.0
        for k in range(items):
            i = c * chunk + k * THREADS + tid
            if i < n:
                u = np.int64(xbits[i])
                rb, flag = _quantize_bits(
                    u, mant_bits, bias, kind, m, emin, subnormals, qfix,
                    maxpos_bits, maxneg_bits, policy, mode, rbits, key, np.uint64(offset + i),
                )
                outbits[i] = rb
                _count(st, u, rb, flag, mant_bits, bias, thresh, shist)
        _reduce_chunk(part, st, rows, c)
    _end_block_stats(shist, hist)


@cuda.jit
def quantize_blocks(
    xbits, outbits, mant_bits, bias, mbits, block, mode, rbits, key, offset,
    items, want_stats, thresh, rows, hist,
):
    """Block floating point on (rows, length) bit arrays, one thread per format block; chunk c
    holds format blocks c * THREADS * items + k * THREADS + thread (see `cpu.quantize_blocks`)."""
    part = cuda.shared.array((THREADS, N_STATS), np.float64)
    shist = cuda.shared.array(LOG2_HIST_BINS, np.int64)
    st = cuda.local.array(N_STATS, np.float64)
    if want_stats:
        _begin_block_stats(shist)
    nrows = xbits.shape[0]
    length = xbits.shape[1]
    per_row = (length + block - 1) // block
    nblocks = nrows * per_row
    tid = cuda.threadIdx.x
    chunk = THREADS * items
    nchunks = (nblocks + chunk - 1) // chunk
    for c in range(cuda.blockIdx.x, nchunks, cuda.gridDim.x):
        for j in range(N_STATS):
            st[j] = 0.0
        for k in range(items):
            b = c * chunk + k * THREADS + tid
            if b < nblocks:
                row = b // per_row
                j0 = (b % per_row) * block
                j1 = min(j0 + block, length)
                _quantize_block(
                    xbits, outbits, row, j0, j1, length, mant_bits, bias, mbits, mode, rbits,
                    key, offset, want_stats, thresh, st, shist,
                )
        if want_stats:
            _reduce_chunk(part, st, rows, c)
    if want_stats:
        _end_block_stats(shist, hist)


# -- host entry points ------------------------------------------------------------------------
def _launch(kernel, nwork: int, like: Any, *args: Any) -> None:
    """Launch `kernel` over `nwork` units (chunks or elements) on the stream CuPy is using."""
    blocks = max(1, min(nwork, MAX_BLOCKS))
    stream = _current_stream(like)
    if stream is None:
        kernel[blocks, THREADS](*args)
    else:
        kernel[blocks, THREADS, stream](*args)


def _current_stream(like: Any):
    """numba's handle on CuPy's current stream (None: the legacy default stream)."""
    cupy = backend.cupy_module()
    if cupy is None or not isinstance(like, cupy.ndarray):
        return None
    ptr = cupy.cuda.get_current_stream().ptr
    return cuda.external_stream(ptr) if ptr else None


def _fold_stats(stats, xp, rows, hist) -> None:
    """Reduce the per-chunk rows on the device and add the totals to `stats` on the host."""
    total = xp.zeros((1, N_STATS), dtype=np.float64)
    total[0] = rows.sum(axis=0)
    total[0, S_MAX_ABS] = rows[:, S_MAX_ABS].max()
    stats.add_rows(backend.to_numpy(total), backend.to_numpy(hist).reshape(1, LOG2_HIST_BINS))


def _rounding_args(rnd, key: int) -> tuple:
    return np.int64(rnd.code), np.int64(rnd.random_bits or 0), np.uint64(key)


def run_elementwise(
    x: Any, out: Any, carrier: Any, p: Any, rnd: Any, key: int, stats: Any,
    threshold: float = np.inf, *, counts_only: bool = False,
) -> None:
    """Run the element-wise kernel on contiguous device array `x` into `out`, counting into
    `stats` (same contract as `quantsim.formats.base.run_elementwise`; ``counts_only`` is
    accepted and ignored: the full statistics pass fills the same counters)."""
    xp = backend.get_array_module(x)
    flat_x, flat_out = x.reshape(-1), out.reshape(-1)
    n = flat_x.size
    if n == 0:
        return
    xbits, outbits = flat_x.view(carrier.bits_dtype), flat_out.view(carrier.bits_dtype)
    args = (
        np.int64(carrier.mant_bits), np.int64(carrier.bias), np.int64(p.kind), np.int64(p.m),
        np.int64(p.emin), bool(p.subnormals), np.int64(p.qfix),
        np.int64(carrier.bits_of(p.maxpos)), np.int64(carrier.bits_of(p.maxneg)),
        np.int64(p.policy), *_rounding_args(rnd, key), np.int64(0),
    )
    if stats is None:
        _launch(quantize_elementwise, -(-n // THREADS), x, xbits, outbits, *args)
        return
    items = int(ITEMS_PER_THREAD)
    nchunks = -(-n // (THREADS * items))
    rows = xp.zeros((nchunks, N_STATS), dtype=np.float64)
    hist = xp.zeros(LOG2_HIST_BINS, dtype=np.int64)
    _launch(
        quantize_elementwise_stats, nchunks, x, xbits, outbits, *args,
        np.int64(items), np.float64(threshold), rows, hist,
    )
    _fold_stats(stats, xp, rows, hist)


def run_blocks(
    fmt: Any, x: Any, out: Any, carrier: Any, rnd: Any, key: int, stats: Any, state: Any,
) -> None:
    """`block<M,k>` on device arrays (same contract as `BlockFormat._run`)."""
    xp = backend.get_array_module(x)
    length = x.shape[-1] if x.ndim else 1
    x2, out2 = x.reshape(-1, length), out.reshape(-1, length)
    if x2.size == 0:
        return
    nblocks = x2.shape[0] * -(-length // fmt.block)
    items = int(ITEMS_PER_THREAD)
    nchunks = -(-nblocks // (THREADS * items))
    want = stats is not None
    rows = xp.zeros((nchunks if want else 1, N_STATS), dtype=np.float64)
    hist = xp.zeros(LOG2_HIST_BINS, dtype=np.int64)
    _launch(
        quantize_blocks, nchunks, x, x2.view(carrier.bits_dtype), out2.view(carrier.bits_dtype),
        np.int64(carrier.mant_bits), np.int64(carrier.bias), np.int64(fmt.mbits),
        np.int64(fmt.block), *_rounding_args(rnd, key), np.int64(0), np.int64(items), want,
        np.float64(np.inf), rows, hist,
    )
    if want:
        _fold_stats(stats, xp, rows, hist)


# -- statistics of exact points ---------------------------------------------------------------
def observe(x: Any, stats: Any) -> None:
    """Count device array `x` into `stats` as an exact (identity) quantization would: the fused
    pass with the carrier's own grid, into a scratch output (`quantsim.stats.observe` on the
    CPU: the same integer counters, ``zero_out == zero_in``, no underflow, overflow or error)."""
    from quantsim.formats.base import GridParams
    from quantsim.formats.carrier import carrier_for
    from quantsim.formats.rounding import Rounding

    carrier = carrier_for(x.dtype)
    xp = backend.get_array_module(x)
    xc = x if x.flags.c_contiguous else xp.ascontiguousarray(x)
    exact = GridParams(
        scalar.KIND_FLOAT, m=carrier.mant_bits, emin=carrier.emin, subnormals=True,
        policy=scalar.OVERFLOW_INF,
    )
    run_elementwise(xc, xp.empty_like(xc), carrier, exact, Rounding(), 0, stats)


# -- embedding gradients ----------------------------------------------------------------------
@cuda.jit
def scatter_add_rows_kernel(out, rows, order, starts):
    """out[v, j] += rows[order[p], j] for p in starts[v] .. starts[v+1]-1, in that order: one
    thread per (v, j), sequential sums in the carrier dtype (numpy's ``add.at`` order)."""
    width = out.shape[1]
    for t in range(cuda.grid(1), out.shape[0] * width, cuda.gridsize(1)):
        v = t // width
        j = t - v * width
        acc = out[v, j]
        for p in range(starts[v], starts[v + 1]):
            acc += rows[order[p], j]
        out[v, j] = acc


def scatter_add_rows(out: Any, index: Any, rows: Any) -> None:
    """``numpy.add.at(out, index, rows)`` for a C-contiguous 2-D device array `out`, 1-D
    integer `index` (values in range) and `rows` of shape ``(index.size, out.shape[1])``, bit
    for bit: every row of `out` adds its rows in index order (no atomics, so no run-to-run
    differences)."""
    xp = backend.get_array_module(out)
    n = int(index.size)
    if n == 0 or out.size == 0:
        return
    index = index.astype(np.int64)
    # Unique keys (index, position): any sort gives the stable order.
    order = xp.argsort(index * n + xp.arange(n, dtype=np.int64))
    starts = xp.zeros(out.shape[0] + 1, dtype=np.int64)
    starts[1:] = xp.cumsum(xp.bincount(index, minlength=out.shape[0]))
    _launch(
        scatter_add_rows_kernel, -(-out.size // THREADS), out,
        out, xp.ascontiguousarray(rows), order, starts,
    )
