"""The CUDA kernels (quantsim.kernels.cuda) against the CPU kernels, bit for bit.

Every format family x every rounding x float32/float64 carriers, with NaN, +-inf, +-0, carrier
and format subnormals, overflow boundaries and exact ties in the inputs; outputs compared bit
for bit, statistics counters compared exactly (the float sums to rounding: they are summed in
another order), dynamic fixed point state compared after the call.

The GPU side runs under numba's CUDA simulator (`cudasim` tests, in the default run). The
simulator must be switched on (NUMBA_ENABLE_CUDASIM=1) before numba.cuda is first imported and
stays on for the whole process, which would turn the real-hardware tests and the backend's CUDA
probe into simulator runs. So the simulator side runs in one subprocess per session (this file
run as a script); if the pytest process itself already runs under the simulator, in-process.
The dispatch that the subprocess installs (`_install_gpu_dispatch`) is the one the formats use
for device arrays. `gpu` tests repeat the comparison on a real GPU with CuPy arrays and skip
cleanly without one.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest

from quantsim.backend import to_numpy
from quantsim.formats import DfxpState, QuantStats, parse

N_ELEMENTS = 320
ROUNDINGS = ("nearest", "stochastic", "stochastic<4>", "toward_zero", "down", "up")
DTYPES = ("float32", "float64")
SEED = 20260517
SHARDS = 2

# (case id, spec, dfxp il or None, shape). Families: IEEE-like float, OCP fn, sat, nosub,
# fixed, dynamic fixed point at a given state, block floating point.
FORMATS = [
    ("float16", "float16", None, None),
    ("bfloat16", "bfloat16", None, None),
    ("fp8_e5m2", "fp8_e5m2", None, None),
    ("e4m3_ieee", "float<e4m3>", None, None),
    ("float32", "float32", None, None),  # identity copy on float32, a real rounding on float64
    ("e4m3fn", "fp8_e4m3", None, None),
    ("e2m1fn", "float<e2m1,fn,sat>", None, None),
    ("e4m3_sat", "float<e4m3,sat>", None, None),
    ("e5m2_nosub", "float<e5m2,nosub>", None, None),
    ("e4m3_nosub_sat", "float<e4m3,nosub,sat>", None, None),
    ("fixed_4_12", "fixed<4,12>", None, None),
    ("fixed_1_7", "fixed<1,7>", None, None),
    ("dfxp8_il3", "dfxp<8,interval=1>", 3, None),
    ("dfxp12_calibrate", "dfxp<12>", None, None),
    ("block_8_32", "block<8,32>", None, (6, 70)),
    ("block_4_3", "block<4,3>", None, (40, 25)),
]
CASES = [
    (fid, rnd, dt) for fid, *_ in FORMATS for rnd in ROUNDINGS for dt in DTYPES
]
_FORMATS = {fid: (spec, il, shape) for fid, spec, il, shape in FORMATS}


def case_name(fid: str, rnd: str, dt: str) -> str:
    return f"{fid}-{rnd}-{dt}"


# -- inputs -----------------------------------------------------------------------------------
def _ties(fmt, v: np.ndarray, dtype, state) -> np.ndarray:
    """Exact midpoints between the format's neighbours of `v` (those the carrier holds)."""
    lo = fmt.quantize(v, rounding="down", state=copy.deepcopy(state)).astype(np.float64)
    hi = fmt.quantize(v, rounding="up", state=copy.deepcopy(state)).astype(np.float64)
    ok = np.isfinite(lo) & np.isfinite(hi) & (lo != hi)
    mid = (lo[ok] + hi[ok]) / 2
    return mid[mid.astype(dtype).astype(np.float64) == mid].astype(dtype)


def make_input(fid: str, dtype: str) -> np.ndarray:
    spec, il, shape = _FORMATS[fid]
    dt = np.dtype(dtype)
    rng = np.random.default_rng(_stable(fid, dtype))
    fmt = parse(spec)
    finfo = np.finfo(dt)
    if fid.startswith("block"):
        return _block_input(fmt, dt, shape, rng)
    state = DfxpState(il) if il is not None else None
    top = fmt.max if il is None else 2.0 ** (il - 1)
    low = max(fmt.min_subnormal if il is None else 2.0 ** (il - fmt.bits), float(finfo.tiny))
    specials = [
        np.nan, np.inf, -np.inf, 0.0, -0.0, float(finfo.smallest_subnormal),
        -float(finfo.smallest_subnormal), float(finfo.max), -float(finfo.max),
        top, -top, top * 1.5, -top * 1.5, top * (1 + fmt.eps / 4), low, -low, low / 2, -low / 2,
        low * 0.75, low / 4, 1.0, -1.0,
    ]
    mags = np.exp2(rng.uniform(np.log2(low) - 3, np.log2(top) + 2, N_ELEMENTS))
    with np.errstate(over="ignore"):  # beyond the carrier's range: inf, on purpose
        rand = (mags * rng.choice([-1.0, 1.0], N_ELEMENTS)).astype(dt)
        special = np.asarray(specials).astype(dt)
    ties = _ties(fmt, rand[:120], dt, state)
    x = np.concatenate([special, ties, rand])[:N_ELEMENTS]
    return rng.permutation(x)


def _block_input(fmt, dt, shape, rng) -> np.ndarray:
    rows, length = shape
    k, m = fmt.block, fmt.mbits
    scale = np.exp2(rng.integers(-20, 20, size=(rows, 1)).astype(np.float64))
    x = rng.normal(size=shape) * scale
    # Ties: odd multiples of half the quantum of a block whose max is pinned to 1.0.
    ties = rng.integers(-(2 ** (m - 1)), 2 ** (m - 1), size=length) * 2.0 + 1.0
    x[0] = ties * 2.0 ** -(m - 1)
    x[0, ::k] = 1.0
    x[1, :k] = 0.0  # an all-zero block
    x[1, k] = -0.0
    x[2, 3] = np.nan
    x[3, 1] = np.inf
    x[3, 2] = -np.inf
    x[4, 5] = float(np.finfo(dt).smallest_subnormal)
    x[4, 6] = 2.0 ** -(m - 1) * scale[4, 0]  # a tie at the block's quantum
    return x.astype(dt)


def _stable(*parts: str) -> int:
    import zlib

    return zlib.crc32("/".join(parts).encode())


# -- the GPU side: runs under the simulator ---------------------------------------------------
def _install_gpu_dispatch() -> None:
    """Route the formats' kernels to quantsim.kernels.cuda (what the formats do for device
    arrays), and use small chunks and grids so multi-chunk reductions and grid-stride loops
    are exercised at these sizes."""
    import quantsim.formats.base as base
    import quantsim.formats.block as block
    import quantsim.formats.fixed as fixed
    from quantsim.kernels import cuda as ck

    base.run_elementwise = ck.run_elementwise
    fixed.run_elementwise = ck.run_elementwise

    def _run(self, x, out, carrier, rnd, key, stats, state):
        ck.run_blocks(self, x, out, carrier, rnd, key, stats, state)

    block.BlockFormat._run = _run
    ck.THREADS = 32  # read at run time by the simulator (a compile-time constant on GPUs)
    ck.ITEMS_PER_THREAD = 4
    ck.MAX_BLOCKS = 2


def quantize_case(fid: str, rnd: str, dt: str, x: np.ndarray) -> dict[str, np.ndarray]:
    """Run one case through `fmt.quantize` (on whichever kernels are installed; `x` may be a
    CuPy array); the results as numpy arrays."""
    spec, il, _ = _FORMATS[fid]
    fmt = parse(spec)
    st = QuantStats()
    state = DfxpState(il) if il is not None else fmt.new_state()
    y_stats = fmt.quantize(x, rounding=rnd, seed=SEED, stats=st, state=state)
    y_plain = fmt.quantize(x, rounding=rnd, seed=SEED, state=copy.deepcopy(state))
    inplace = x.copy()
    fmt.quantize(inplace, rounding=rnd, seed=SEED, out=inplace)
    result = {
        "y_stats": to_numpy(y_stats), "y_plain": to_numpy(y_plain),
        "y_inplace": to_numpy(inplace), "stats": st.values.copy(), "hist": st.log2_hist.copy(),
    }
    if state is not None:
        result["state"] = np.array([state.il, state.calls, state.seen, state.overflows,
                                    state.overflows_fewer])
    return result


def run_all_cases(
    inputs: dict[str, np.ndarray], shard: int = 0, shards: int = 1
) -> dict[str, np.ndarray]:
    _install_gpu_dispatch()
    # numpy warns on the uint64 wrap-around the hash relies on (the compiled code does not).
    warnings.filterwarnings("ignore", message="overflow encountered", category=RuntimeWarning)
    # The simulator runs each CUDA thread as a Python thread; a short GIL switch interval
    # makes its barriers (syncthreads) about twice as fast.
    sys.setswitchinterval(0.0005)
    results = {}
    for fid, rnd, dt in CASES[shard::shards]:
        name = case_name(fid, rnd, dt)
        for key, value in quantize_case(fid, rnd, dt, inputs[f"{fid}-{dt}"]).items():
            results[f"{name}/{key}"] = value
    if shard == 0:
        from quantsim.kernels import cuda as ck

        results.update(engine_cases(inputs, ck.observe, ck.scatter_add_rows))
    return results


# -- engine kernels: statistics of exact points, embedding gradients ----------------------------
def observe_input(inputs: dict[str, np.ndarray], dt: str) -> np.ndarray:
    """Special values, subnormals and ties, in a strided (non-contiguous) view."""
    x = np.concatenate([inputs[f"float16-{dt}"], inputs[f"fp8_e5m2-{dt}"]])
    return x.reshape(-1, 2)[:, 0]


def scatter_input(dt: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(zeros (V, D), indices with repeats and an unused row, rows whose sums depend on the
    order they are added in)."""
    rng = np.random.default_rng(_stable("scatter", dt))
    n, V, D = 300, 9, 7
    index = rng.integers(0, V - 1, size=n)  # row V - 1 never used
    rows = rng.normal(size=(n, D)) * np.exp2(rng.integers(-30, 30, size=(n, 1)))
    return np.zeros((V, D), dtype=dt), index, rows.astype(dt)


def engine_cases(inputs: dict[str, np.ndarray], observe, scatter_add_rows) -> dict:
    """`observe` and `scatter_add_rows` (CUDA or CPU versions) on the engine-kernel inputs."""
    out = {}
    for dt in DTYPES:
        st = QuantStats()
        observe(observe_input(inputs, dt), st)
        out[f"observe-{dt}/stats"], out[f"observe-{dt}/hist"] = st.values, st.log2_hist
        dW, index, rows = scatter_input(dt)
        scatter_add_rows(dW, index, rows)
        out[f"scatter-{dt}/dW"] = dW
    return out


def _simulator_in_process() -> bool:
    return os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"


@pytest.fixture(scope="session")
def gpu_results():
    pytest.importorskip("numba.cuda", reason="numba-cuda is not installed")
    inputs = {f"{fid}-{dt}": make_input(fid, dt) for fid, *_ in FORMATS for dt in DTYPES}
    if _simulator_in_process():
        return inputs, run_all_cases(inputs)
    results: dict[str, np.ndarray] = {}
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in.npz"
        np.savez(src, **inputs)
        env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
        procs = []
        for shard in range(SHARDS):  # the simulator is GIL-bound: one process per core
            dst = Path(tmp) / f"out{shard}.npz"
            cmd = [sys.executable, __file__, str(src), str(dst), str(shard), str(SHARDS)]
            procs.append((dst, subprocess.Popen(
                cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )))
        for dst, proc in procs:
            stdout, stderr = proc.communicate(timeout=600)
            if proc.returncode != 0:
                pytest.fail(f"CUDA simulator subprocess failed:\n{stdout}\n{stderr}")
            with np.load(dst) as d:
                results.update({k: d[k] for k in d.files})
    return inputs, results


# -- comparisons ------------------------------------------------------------------------------
def _bits(a: np.ndarray) -> np.ndarray:
    return a.view(np.uint32 if a.dtype == np.float32 else np.uint64)


def _assert_same_bits(gpu: np.ndarray, cpu: np.ndarray, x: np.ndarray, what: str) -> None:
    assert gpu.shape == cpu.shape and gpu.dtype == cpu.dtype, what
    diff = np.flatnonzero(_bits(gpu).ravel() != _bits(cpu).ravel())
    if diff.size:
        i = diff[0]
        pytest.fail(
            f"{what}: {diff.size} elements differ, first at {i}: x={x.ravel()[i]!r} "
            f"gpu={gpu.ravel()[i]!r} cpu={cpu.ravel()[i]!r}"
        )


def assert_case_matches(gpu: dict[str, np.ndarray], cpu: dict[str, np.ndarray], x) -> None:
    from quantsim.kernels.cpu import S_SUM_ABS, S_SUM_REL_ERR

    for key in ("y_stats", "y_plain", "y_inplace"):
        _assert_same_bits(gpu[key], cpu[key], x, key)
    exact = np.ones(gpu["stats"].size, bool)
    exact[[S_SUM_ABS, S_SUM_REL_ERR]] = False
    np.testing.assert_array_equal(gpu["stats"][exact], cpu["stats"][exact])
    np.testing.assert_allclose(gpu["stats"][~exact], cpu["stats"][~exact], rtol=1e-12, atol=0)
    np.testing.assert_array_equal(gpu["hist"], cpu["hist"])
    if "state" in cpu:
        np.testing.assert_array_equal(gpu["state"], cpu["state"])


@pytest.mark.cudasim
@pytest.mark.parametrize(("fid", "rnd", "dt"), CASES, ids=[case_name(*c) for c in CASES])
def test_simulator_matches_cpu(gpu_results, fid, rnd, dt):
    inputs, results = gpu_results
    x = inputs[f"{fid}-{dt}"]
    prefix = case_name(fid, rnd, dt) + "/"
    gpu = {k[len(prefix):]: v for k, v in results.items() if k.startswith(prefix)}
    cpu = quantize_case(fid, rnd, dt, x)
    assert set(gpu) == set(cpu)
    assert_case_matches(gpu, cpu, x)


@pytest.mark.cudasim
def test_inputs_cover_the_special_values(gpu_results):
    inputs, _ = gpu_results
    for name, x in inputs.items():
        assert np.isnan(x).any() and np.isposinf(x).any() and np.isneginf(x).any(), name
        assert (x == 0).any(), name
        assert (np.abs(x) < np.finfo(x.dtype).tiny).any(), name  # carrier subnormals / zeros
    # Ties exist: some inputs sit exactly between two neighbours of the format.
    fmt = parse("float16")
    x = inputs["float16-float32"]
    lo, hi = fmt.quantize(x, rounding="down"), fmt.quantize(x, rounding="up")
    fin = np.isfinite(lo) & np.isfinite(hi) & (lo != hi)
    assert (x[fin].astype(np.float64) * 2 == lo[fin].astype(np.float64) + hi[fin]).sum() >= 20


@pytest.mark.cudasim
def test_stochastic_depends_on_the_seed(gpu_results):
    inputs, results = gpu_results
    x = inputs["fixed_4_12-float32"]
    fmt = parse("fixed<4,12>")
    other = fmt.quantize(x, rounding="stochastic", seed=SEED + 1)
    same = results[case_name("fixed_4_12", "stochastic", "float32") + "/y_plain"]
    assert not np.array_equal(_bits(other), _bits(same))


def _cpu_engine_cases(inputs: dict[str, np.ndarray]) -> dict:
    from quantsim.stats import observe

    return engine_cases(inputs, observe, np.add.at)


@pytest.mark.cudasim
@pytest.mark.parametrize("dt", DTYPES)
def test_simulator_observe_matches_cpu(gpu_results, dt):
    """Statistics of exact (identity) points on device arrays = `quantsim.stats.observe`."""
    from quantsim.kernels.cpu import S_SUM_ABS, S_SUM_REL_ERR

    inputs, results = gpu_results
    cpu = _cpu_engine_cases(inputs)
    gpu_stats, cpu_stats = results[f"observe-{dt}/stats"], cpu[f"observe-{dt}/stats"]
    exact = np.ones(gpu_stats.size, bool)
    exact[[S_SUM_ABS, S_SUM_REL_ERR]] = False
    np.testing.assert_array_equal(gpu_stats[exact], cpu_stats[exact])
    np.testing.assert_allclose(gpu_stats[~exact], cpu_stats[~exact], rtol=1e-12, atol=0)
    np.testing.assert_array_equal(results[f"observe-{dt}/hist"], cpu[f"observe-{dt}/hist"])
    st = QuantStats()
    st.values[:] = cpu_stats
    assert st.nan and st.inf and st.zero_in and st.zero_out == st.zero_in
    assert st.underflow == st.overflow == 0 and st.sum_rel_err == 0.0


@pytest.mark.cudasim
@pytest.mark.parametrize("dt", DTYPES)
def test_simulator_scatter_add_rows_matches_numpy(gpu_results, dt):
    """The embedding gradient kernel adds in numpy.add.at's order: the same bits."""
    inputs, results = gpu_results
    cpu = _cpu_engine_cases(inputs)[f"scatter-{dt}/dW"]
    _assert_same_bits(results[f"scatter-{dt}/dW"], cpu, cpu, "scatter_add_rows")
    # The data is order-sensitive, so the comparison is not vacuous.
    dW, index, rows = scatter_input(dt)
    np.add.at(dW, index[::-1], rows[::-1])
    assert not np.array_equal(_bits(dW), _bits(cpu))
    assert not cpu[-1].any() and cpu[:-1].all()


# -- compilation for real GPUs, without one -------------------------------------------------
def compile_kernels_to_ptx() -> list[str]:
    """Compile every kernel, for both carriers, to PTX (sm_75) with the argument types the
    host entry points launch it with. Needs NVVM, not a GPU. Returns "kernel/dtype" names."""
    import types as pytypes

    import numba
    import numba.cuda.dispatcher as dispatcher
    from numba import cuda

    from quantsim.formats import QuantStats as Stats
    from quantsim.kernels import cuda as ck

    # Device functions ask the current device for its compute capability; there is none.
    dispatcher.get_current_device = lambda: pytypes.SimpleNamespace(compute_capability=(7, 5))
    launches = []
    ck._launch = lambda kernel, nwork, like, *args: launches.append((kernel, args))
    compiled = []
    _install_gpu_dispatch()
    for dt in DTYPES:
        for spec in ("float16", "block<8,4>"):
            x = np.ones((3, 8), dt)
            parse(spec).quantize(x, rounding="stochastic", seed=1)
            parse(spec).quantize(x, stats=Stats())
        ck.observe(np.ones(5, dt), Stats())
        ck.scatter_add_rows(np.zeros((3, 2), dt), np.array([0, 2, 0]), np.ones((3, 2), dt))
    seen = set()
    for kernel, args in launches:
        sig = tuple(numba.typeof(a) for a in args)
        if (kernel, sig) in seen:
            continue
        seen.add((kernel, sig))
        cuda.compile_ptx(kernel.py_func, sig, cc=(7, 5))
        compiled.append(f"{kernel.py_func.__name__}/{args[0].dtype}")
    return compiled


def test_kernels_compile_for_real_gpus():
    """The simulator runs the kernels as Python; this checks numba.cuda can type and compile
    them (PTX through NVVM, no GPU needed). Skips when numba-cuda's NVVM is not installed."""
    pytest.importorskip("numba.cuda", reason="numba-cuda is not installed")
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    proc = subprocess.run(
        [sys.executable, __file__, "--ptx"], env=env, capture_output=True, text=True,
        timeout=600,
    )
    if proc.returncode == 3:
        pytest.skip(proc.stdout.strip().splitlines()[-1])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    compiled = proc.stdout.split()
    assert len(compiled) >= 8 and "scatter_add_rows_kernel/float64" in compiled, compiled


# -- real hardware ----------------------------------------------------------------------------
def _cuda_ready() -> bool:
    if _simulator_in_process():
        return False
    from quantsim import backend

    return backend.cuda_available()


gpu = pytest.mark.skipif(
    not _cuda_ready(), reason="needs a CUDA GPU with CuPy and numba-cuda (quantsim[cuda])"
)


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("fid", [f[0] for f in FORMATS])
def test_gpu_matches_cpu(fid):
    """End to end on a real GPU: `fmt.quantize` on CuPy arrays (the formats' dispatch to
    quantsim.kernels.cuda) equals the CPU, every rounding and carrier."""
    import cupy

    for rnd in ROUNDINGS:
        for dt in DTYPES:
            x = make_input(fid, dt)
            cpu = quantize_case(fid, rnd, dt, x)
            gpu_case = quantize_case(fid, rnd, dt, cupy.asarray(x))
            assert_case_matches(gpu_case, cpu, x)


@pytest.mark.gpu
@gpu
def test_gpu_large_tensor_stats_deterministic():
    import cupy

    from quantsim.formats.carrier import FLOAT32
    from quantsim.formats.rounding import Rounding
    from quantsim.kernels import cuda as ck

    x = cupy.asarray(np.random.default_rng(0).normal(size=3_000_001).astype(np.float32))
    fmt = parse("fp8_e4m3")
    runs = []
    for _ in range(2):
        st = QuantStats()
        out = cupy.empty_like(x)
        ck.run_elementwise(x, out, FLOAT32, fmt.grid_params(FLOAT32, None), Rounding(), 0, st)
        runs.append(st.values.copy())
    np.testing.assert_array_equal(runs[0], runs[1])  # sums too: a fixed reduction order
    cpu = QuantStats()
    host = cupy.asnumpy(x)
    _assert_same_bits(cupy.asnumpy(out), fmt.quantize(host, stats=cpu), host, "large")
    np.testing.assert_allclose(runs[0], cpu.values, rtol=1e-9)


if __name__ == "__main__":
    if sys.argv[1:] == ["--ptx"]:
        try:
            names = compile_kernels_to_ptx()
        except Exception as exc:
            text = f"{type(exc).__name__}: {exc}"
            if any(word in text for word in ("NVVM", "nvvm", "nvrtc", "NVRTC", "Failure finding")):
                print(f"NVVM/NVRTC not installed, cannot compile to PTX: {text.splitlines()[0]}")
                sys.exit(3)
            raise
        print(" ".join(names))
        sys.exit(0)
    # Simulator worker, run by the `gpu_results` fixture:
    #   NUMBA_ENABLE_CUDASIM=1 python test_cuda.py IN.npz OUT.npz SHARD SHARDS
    if os.environ.get("NUMBA_ENABLE_CUDASIM") != "1":
        sys.exit("run with NUMBA_ENABLE_CUDASIM=1")
    with np.load(sys.argv[1]) as data:
        case_inputs = {k: data[k] for k in data.files}
    shard_index, shard_count = int(sys.argv[3]), int(sys.argv[4])
    np.savez(sys.argv[2], **run_all_cases(case_inputs, shard_index, shard_count))
