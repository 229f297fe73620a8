"""`NumberFormat.quantize`'s ``out=``: in place and into overlapping memory it computes what it
computes into separate memory (the kernels then read a copy of the input)."""

from __future__ import annotations

import numpy as np
import pytest

from quantsim.formats import QuantStats, parse
from quantsim.kernels.cpu import CHUNK

SPECS = ["fp8_e4m3@stochastic", "float16@up", "fixed<4,12>@stochastic", "block<8,32>@stochastic",
         "float<e5m10>@stochastic<8>", "dfxp<12>"]


def _bits(a: np.ndarray) -> np.ndarray:
    return a.view(np.uint32 if a.dtype == np.float32 else np.uint64)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("spec", SPECS)
def test_in_place_and_overlapping_out_equal_separate_out(spec, dtype):
    fmt = parse(spec)
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((3 * CHUNK + 64) // 32 * 32) * 50).astype(dtype).reshape(-1, 32)
    want_stats, want = QuantStats(), None
    want = fmt.quantize(x, seed=9, stats=want_stats)

    inplace, stats = x.copy(), QuantStats()
    got = fmt.quantize(inplace, seed=9, out=inplace, stats=stats)
    assert got is inplace
    np.testing.assert_array_equal(_bits(inplace), _bits(want))
    assert stats.count == want_stats.count and stats.overflow == want_stats.overflow

    # out overlapping x shifted by one row: the result is still that of x's original values
    buf = np.concatenate([x, np.zeros((1, 32), dtype)])
    shifted = fmt.quantize(buf[:-1], seed=9, out=buf[1:])
    np.testing.assert_array_equal(_bits(shifted), _bits(want))
