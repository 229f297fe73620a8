"""`cpu.launch` and the serial twins it runs small tensors on: same bits as the parallel kernel."""

from __future__ import annotations

import numpy as np
import pytest

from quantsim.formats import parse
from quantsim.formats.base import run_float32_fast
from quantsim.formats.carrier import carrier_for
from quantsim.formats.rounding import parse_rounding
from quantsim.kernels import cpu, float32_fast, scalar
from quantsim.kernels.rng import stream_key

from .test_cpu_vs_reference import ROUNDINGS, SEED, adversarial, same_bits


@pytest.mark.parametrize("spec", ["fp8_e4m3", "bfloat16", "float<e5m2,nosub>", "fixed<4,12>"])
def test_serial_twin_equals_parallel_kernel(spec):
    """Over three chunks and a tail, in every rounding: the twin that `launch` picks for small
    tensors computes what the parallel kernel does."""
    fmt = parse(spec)
    x = np.resize(adversarial(fmt, np.float32), 3 * cpu.CHUNK + 123)
    carrier = carrier_for(x.dtype)
    params = fmt.grid_params(carrier, None)
    bad = []
    for rounding in ROUNDINGS:
        rnd = parse_rounding(rounding, fmt.rounding)
        fast = float32_fast.fast_params(carrier, params, rnd)
        args = (fast, rnd.code, params.kind == scalar.KIND_FIXED, np.uint64(stream_key(SEED)), 0)
        parallel, serial = np.empty_like(x), np.empty_like(x)
        cpu.quantize_elementwise_fast(x.view(np.uint32), parallel.view(np.uint32), *args)
        cpu.quantize_elementwise_fast_serial(x.view(np.uint32), serial.view(np.uint32), *args)
        if not same_bits(parallel, serial).all():
            bad.append(rounding)
    assert not bad, f"{spec}: the serial twin differs in {bad}"


def test_launch_runs_small_tensors_on_the_twin(monkeypatch):
    seen = []

    def twin(*args):
        seen.append(args[0].size)
        cpu.quantize_elementwise_fast_serial(*args)

    monkeypatch.setitem(cpu.SERIAL_TWINS, cpu.quantize_elementwise_fast, twin)
    fmt = parse("fp8_e4m3@stochastic")
    fast = float32_fast.fast_params(carrier_for(np.float32),
                                    fmt.grid_params(carrier_for(np.float32), None), fmt.rounding)
    for n in (5, cpu.PARALLEL_MIN - 1, cpu.PARALLEL_MIN):
        x = np.linspace(-3, 3, n, dtype=np.float32)
        out = np.empty_like(x)
        run_float32_fast(x, out, fast, fmt.rounding.code, False, stream_key(SEED))
        np.testing.assert_array_equal(out.view(np.uint32),
                                      fmt.reference(x, seed=SEED).view(np.uint32))
    assert seen == [5, cpu.PARALLEL_MIN - 1]
