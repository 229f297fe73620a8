"""The fast CPU kernels (quantsim.kernels.cpu) against the numpy reference, bit for bit.

Every format family x every rounding x float32/float64 carriers, on adversarial values (NaN with
payloads, +-inf, +-0, carrier and format subnormals, grid points, exact ties and their carrier
neighbours, the overflow boundaries) plus random bit patterns and random values over many
binades. The statistics filled by the kernels are checked against the same counters computed
with numpy from their definitions.
"""

from __future__ import annotations

import numpy as np
import pytest

from quantsim.formats import BlockFormat, DynamicFixedFormat, QuantStats, parse
from quantsim.formats.carrier import carrier_for
from quantsim.formats.fixed import calibrate_il, clamp_il, fixed_grid
from quantsim.kernels import cpu
from quantsim.kernels.reference import quantize_grid

SEED = 20260611
ROUNDINGS = ("nearest", "stochastic", "stochastic<1>", "stochastic<9>", "stochastic<24>",
             "stochastic<31>", "toward_zero", "down", "up")
FORMATS = {
    "float32": [
        "float16", "bfloat16", "tf32", "fp8_e4m3", "fp8_e5m2", "float<e4m3>", "float<e3m0>",
        "float<e5m2,nosub>", "float<e4m3,nosub,sat>", "float<e2m1,fn,sat>", "float<e8m22>",
        "float32", "fixed<4,12>", "fixed<1,7>", "fixed<10,15>", "fixed<8,0>", "fixed<1,24>",
        "dfxp<16>", "dfxp<8>", "block<8,32>", "block<4,3>", "block<25,5>",
    ],
    "float64": [
        "float16", "bfloat16", "fp8_e4m3", "float<e5m2,nosub>", "float<e2m1,fn,sat>",
        "float<e8m23>", "float32", "float<e10m51>", "float<e10m40,nosub>", "fixed<4,12>",
        "fixed<20,34>", "fixed<1,53>", "dfxp<16>", "block<8,32>", "block<25,7>",
    ],
}
BITS = {"float32": np.uint32, "float64": np.uint64}


def same_bits(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Equal bit patterns (NaN payloads and the sign of zero included)."""
    ubits = BITS[a.dtype.name]
    return a.view(ubits) == b.view(ubits)


def _grid_points(fmt, dtype, rng) -> np.ndarray:
    """Format values, their midpoints (ties) and the carrier neighbours of both."""
    f64 = rng.standard_normal(4000) * np.exp2(rng.integers(-40, 40, 4000))
    f64 = np.concatenate([f64, [fmt.max, -fmt.max, fmt.min_normal, fmt.min_subnormal,
                                fmt.max * 2, fmt.min_subnormal / 2, 1.0, -1.0]])
    x = f64.astype(dtype)
    x = x[np.isfinite(x)]
    lo = fmt.reference(x, rounding="down")
    hi = fmt.reference(x, rounding="up")
    ok = np.isfinite(lo) & np.isfinite(hi)
    lo, hi = lo[ok], hi[ok]
    mid = (lo.astype(np.float64) + hi.astype(np.float64)) / 2
    pts = np.concatenate([lo, hi, mid.astype(dtype)])
    inf = np.array(np.inf, dtype)
    return np.concatenate([pts, np.nextafter(pts, inf), np.nextafter(pts, -inf)])


def _specials(dtype) -> np.ndarray:
    fi = np.finfo(dtype)
    ubits = BITS[np.dtype(dtype).name]
    vals = [0.0, -0.0, np.inf, -np.inf, fi.max, -fi.max, fi.tiny, -fi.tiny,
            fi.smallest_subnormal, -fi.smallest_subnormal, fi.tiny - fi.smallest_subnormal,
            2.0 ** 15, 65504.0, 65520.0, 65519.99, 448.0, 464.0, 480.0, 240.0, 248.0, 8.0,
            7.99987, -8.0, -8.0001, 2.0 ** -24, 2.0 ** -25, 3 * 2.0 ** -26]
    x = np.array(vals, dtype=np.float64).astype(dtype)
    width = 32 if np.dtype(dtype) == np.float32 else 64
    one = ubits(1)
    mant = 23 if width == 32 else 52
    exp_all = ((one << ubits(width - 1)) - one) ^ ((one << ubits(mant)) - one)
    nans = np.array([exp_all | one, exp_all | (one << ubits(mant - 1)),
                     exp_all | ((one << ubits(mant)) - one)], dtype=ubits)
    nans = np.concatenate([nans, nans | (one << ubits(width - 1))])
    return np.concatenate([x, nans.view(dtype)])


def adversarial(fmt, dtype, n_random=20000) -> np.ndarray:
    rng = np.random.default_rng(SEED)
    ubits = BITS[np.dtype(dtype).name]
    raw = rng.integers(0, 2 ** 63, n_random, dtype=np.uint64)
    raw = raw ^ (raw << np.uint64(1))  # all 64 bits random
    random_bits = raw.astype(ubits).view(dtype)
    spread = (rng.standard_normal(n_random) * np.exp2(rng.integers(-30, 30, n_random)))
    x = np.concatenate([_specials(dtype), _grid_points(fmt, dtype, rng), random_bits,
                        spread.astype(dtype)])
    if np.dtype(dtype) == np.float64 and isinstance(fmt, (BlockFormat, DynamicFixedFormat)):
        # The float64 reference divides x by the shared quantum: keep x / quantum and the
        # rounded block maxima inside float64's range (the kernel itself is exact anywhere).
        a = np.abs(x)
        x = x[~np.isfinite(x) | (a == 0) | ((a > 2.0 ** -400) & (a < 2.0 ** 400))]
    return x


CASES = [(dt, spec) for dt, specs in FORMATS.items() for spec in specs]


@pytest.mark.parametrize("dtype,spec", CASES, ids=[f"{d}-{s}" for d, s in CASES])
def test_kernel_equals_reference(dtype, spec):
    fmt = parse(spec)
    x = adversarial(fmt, dtype)
    if isinstance(fmt, BlockFormat):
        x = x[: x.size // 60 * 60].reshape(-1, 60)
    bad = []
    for rounding in ROUNDINGS:
        got = fmt.quantize(x, rounding=rounding, seed=SEED)
        want = fmt.reference(x, rounding=rounding, seed=SEED)
        ok = same_bits(got, want)
        if not ok.all():
            i = np.flatnonzero(~ok.reshape(-1))[:5]
            bad.append(f"{rounding}: {(~ok).sum()} of {ok.size} differ, e.g. x={x.reshape(-1)[i]}"
                       f" got={got.reshape(-1)[i]} want={want.reshape(-1)[i]}")
    assert not bad, f"{spec} on {dtype}:\n" + "\n".join(bad)


def test_offsets_and_chunks_do_not_change_results():
    """Chunk boundaries and array size: element i always uses (seed, i)."""
    fmt = parse("bfloat16@stochastic")
    x = np.random.default_rng(1).standard_normal(3 * cpu.CHUNK + 17).astype(np.float32)
    full = fmt.quantize(x, seed=5)
    head = fmt.quantize(x[: cpu.CHUNK + 3], seed=5)
    assert same_bits(full[: cpu.CHUNK + 3], head).all()


# -- statistics ----------------------------------------------------------------------------------

def _bounds_and_unbounded(fmt, x, rounding, seed):
    """The unbounded rounding of x (no overflow policy) and the overflow bounds per element."""
    carrier = carrier_for(x.dtype)
    rnd_fmt = fmt.with_rounding(rounding)
    rnd = rnd_fmt.rounding
    from quantsim.kernels.rng import stream_key

    key = stream_key(seed) if rnd.is_stochastic else 0
    thresh = np.inf
    if isinstance(fmt, BlockFormat):
        length = x.shape[-1]
        rows = x.astype(np.float64).reshape(-1, length)
        qe = np.zeros(rows.shape, dtype=np.int64)
        for j0 in range(0, length, fmt.block):
            part = rows[:, j0:j0 + fmt.block]
            amax = np.max(np.where(np.isfinite(part), np.abs(part), 0.0), axis=1)
            e = np.where(amax > 0, np.frexp(np.where(amax > 0, amax, 1.0))[1] - 1, -10 ** 6)
            qe[:, j0:j0 + fmt.block] = np.maximum(e - (fmt.mbits - 2),
                                                  carrier.lowest_quantum_exp)[:, None]
        scale = np.ldexp(1.0, qe).reshape(-1)
        top = 2.0 ** (fmt.mbits - 1)
        maxpos, maxneg = (top - 1) * scale, top * scale
        unb = quantize_grid(rows.reshape(-1), kind=1, m=0, emin=0, subnormals=True,
                            qe_fixed=qe.reshape(-1), maxpos=np.inf, maxneg=np.inf, policy=0,
                            rnd=rnd, key=key)
        return unb, maxpos, maxneg, thresh
    if isinstance(fmt, DynamicFixedFormat):
        il = clamp_il(calibrate_il(x, fmt.wl), fmt.wl, carrier)
        p = fixed_grid(il, fmt.wl - il)
        thresh = fixed_grid(il - 1, fmt.wl - il + 1).maxpos
    else:
        p = fmt.grid_params(carrier, None)
    unb = quantize_grid(x.astype(np.float64).reshape(-1), kind=p.kind, m=p.m, emin=p.emin,
                        subnormals=p.subnormals, qe_fixed=p.qfix, maxpos=np.inf, maxneg=np.inf,
                        policy=0, rnd=rnd, key=key)
    return unb, p.maxpos, p.maxneg, thresh


def numpy_stats(fmt, x, q, rounding, seed):
    """QuantStats fields from their definitions (docs/architecture.md), with numpy."""
    carrier = carrier_for(x.dtype)
    xf = x.reshape(-1).astype(np.float64)
    qf = q.reshape(-1).astype(np.float64)
    unb, maxpos, maxneg, thresh = _bounds_and_unbounded(fmt, x, rounding, seed)
    bound = np.where(np.signbit(xf), maxneg, maxpos)
    fin = np.isfinite(xf)
    nz = fin & (xf != 0)
    over = nz & (np.abs(unb) > bound)
    ok = nz & ~over
    ax = np.abs(xf)
    bits = x.reshape(-1).view(carrier.bits_dtype).astype(np.int64)
    e = ((bits >> carrier.mant_bits) & (2 * carrier.bias + 1)) - carrier.bias
    b = np.clip(e - cpu.LOG2_HIST_MIN, 0, cpu.LOG2_HIST_BINS - 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = np.abs(qf - xf) / ax
    return dict(
        count=xf.size, nan=int(np.isnan(xf).sum()), inf=int(np.isinf(xf).sum()),
        zero_in=int((fin & (xf == 0)).sum()), zero_out=int((fin & (qf == 0)).sum()),
        overflow=int(over.sum()), underflow=int((ok & (qf == 0)).sum()),
        above=int((nz & (ax > thresh)).sum()), sum_abs=float(ax[nz].sum()),
        max_abs=float(ax[nz].max()) if nz.any() else 0.0, sum_rel_err=float(rel[ok].sum()),
        hist=np.bincount(b[nz], minlength=cpu.LOG2_HIST_BINS),
    )


STAT_CASES = [
    ("float32", "float16"), ("float32", "fp8_e4m3"), ("float32", "float<e4m3,nosub,sat>"),
    ("float32", "fixed<4,12>"), ("float32", "dfxp<8>"), ("float32", "block<8,32>"),
    ("float32", "block<4,3>"), ("float64", "bfloat16"), ("float64", "fixed<4,12>"),
    ("float64", "block<8,32>"), ("float64", "float<e5m2,nosub>"),
]


@pytest.mark.parametrize("rounding", ["nearest", "stochastic", "down"])
@pytest.mark.parametrize("dtype,spec", STAT_CASES, ids=[f"{d}-{s}" for d, s in STAT_CASES])
def test_kernel_stats_equal_numpy(dtype, spec, rounding):
    fmt = parse(spec)
    x = adversarial(fmt, dtype, n_random=cpu.CHUNK + 1000)  # more than one chunk
    if isinstance(fmt, BlockFormat):
        x = x[: x.size // 60 * 60].reshape(-1, 60)
    st = QuantStats()
    q = fmt.quantize(x, rounding=rounding, seed=SEED, stats=st)
    assert same_bits(q, fmt.quantize(x, rounding=rounding, seed=SEED)).all()
    want = numpy_stats(fmt, x, q, rounding, SEED)
    for name in ("count", "nan", "inf", "zero_in", "zero_out", "overflow", "underflow", "above"):
        assert getattr(st, name) == want[name], name
    assert st.max_abs == want["max_abs"]
    assert st.sum_abs == pytest.approx(want["sum_abs"], rel=1e-12, abs=0)
    assert st.sum_rel_err == pytest.approx(want["sum_rel_err"], rel=1e-12, abs=1e-300)
    np.testing.assert_array_equal(st.log2_hist, want["hist"])


def test_stats_accumulate_and_ignore_threads():
    """Counters add up over calls; chunked partial sums make them thread-count independent."""
    import numba

    fmt = parse("fixed<4,12>@stochastic")
    x = np.random.default_rng(2).standard_normal(5 * cpu.CHUNK + 3).astype(np.float32)
    results = []
    for threads in sorted({1, numba.config.NUMBA_NUM_THREADS}):
        numba.set_num_threads(threads)
        try:
            st = QuantStats()
            fmt.quantize(x, seed=1, stats=st)
            fmt.quantize(x, seed=1, stats=st)
            results.append(st.values.copy())
        finally:
            numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    for r in results[1:]:
        assert (r == results[0]).all()
    assert results[0][cpu.S_COUNT] == 2 * x.size


@pytest.mark.parametrize("rounding", ["nearest", "stochastic", "up"])
@pytest.mark.parametrize("dtype,spec", [("float32", "fixed<4,12>"), ("float32", "fixed<1,7>"),
                                        ("float64", "fixed<20,34>")])
def test_counts_only_pass_equals_the_full_statistics(dtype, spec, rounding):
    """The lighter pass dynamic fixed point uses between sampled calls: the same rounding and
    the same count / nan / inf / overflow / above counters as the full statistics pass."""
    from quantsim.formats.base import run_elementwise
    from quantsim.formats.rounding import parse_rounding

    fmt = parse(spec)
    x = adversarial(fmt, dtype, n_random=2 * cpu.CHUNK + 77)
    carrier = carrier_for(x.dtype)
    grid = fixed_grid(fmt.il, fmt.fl)
    rnd = parse_rounding(rounding)
    # 1/3 and 0.1 are not float32 values: the fast pass compares bits with the float32 below.
    for threshold in (np.inf, fmt.max / 2, 0.0, 1 / 3, 0.1):
        full, light = QuantStats(), QuantStats()
        out_full, out_light = np.empty_like(x), np.empty_like(x)
        run_elementwise(x, out_full, carrier, grid, rnd, SEED, full, threshold=threshold)
        run_elementwise(x, out_light, carrier, grid, rnd, SEED, light, threshold=threshold,
                        counts_only=True)
        assert same_bits(out_full, out_light).all()
        for name in ("count", "nan", "inf", "overflow", "above"):
            assert getattr(light, name) == getattr(full, name), (name, threshold)
        assert light.above > 0 or threshold == np.inf
