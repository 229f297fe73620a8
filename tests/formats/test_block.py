"""Block floating point (block<M,k>) against the exact reference, and dfxp at a high level."""

from __future__ import annotations

import numpy as np
import pytest

from quantsim import quantize
from quantsim.formats import parse

from .exact import MODES, mismatch_report, ref_block, same_value

# inputs beyond a carrier's range are intentional (overflow cases)
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("M,k,shape", [(8, 16, (5, 40)), (4, 4, (3, 7)), (8, 32, (100,)),
                                       (6, 3, (2, 3, 10)), (12, 8, (4, 8)), (3, 5, (6, 11))])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_block_against_reference(M, k, shape, mode, dtype, rng):
    x = (rng.standard_normal(shape) * np.exp2(rng.integers(-20, 20, shape))).astype(dtype)
    if x.ndim > 1:
        x[0, ...] = 0.0  # a whole row of zero blocks
    x.reshape(-1)[1::17] = 2.0 ** rng.integers(-5, 5)  # exact powers of two set block exponents
    want = ref_block(x, M, k, mode)
    got = quantize(x, f"block<{M},{k}>", rounding=mode)
    assert got.shape == x.shape and got.dtype == x.dtype
    ok = same_value(got, want)
    assert ok.all(), f"block<{M},{k}>@{mode}\n" + mismatch_report(x, got, want, ok)


@pytest.mark.parametrize("mode", MODES)
def test_block_at_the_float32_fast_core_limits(mode, rng):
    """float32 blocks take the fast core while the quantum 2**qe has qe <= 104 and the general
    core above; blocks of subnormals have the smallest quantum. Both sides of each limit."""
    M, k = 8, 4
    exps = [110, 111, 112, 113, -126, -130, -149, 0]  # block max exponent: qe = e - (M - 2)
    x = np.concatenate([
        (rng.uniform(1.0, 2.0, (len(exps), k)) * np.exp2(np.array(exps, dtype=float))[:, None]),
    ]).astype(np.float32)
    x[:, 1:] *= rng.choice([-1.0, 1.0], (len(exps), k - 1)) * rng.uniform(0, 1, (len(exps), k - 1))
    want = ref_block(x, M, k, mode)
    got = quantize(x, f"block<{M},{k}>", rounding=mode, seed=3)
    ok = same_value(got, want)
    assert ok.all(), f"block<{M},{k}>@{mode}\n" + mismatch_report(x, got, want, ok)


@pytest.mark.parametrize("rounding", ["stochastic", "stochastic<5>"])
def test_block_stochastic_at_the_fast_core_limits_equals_the_reference(rounding, rng):
    exps = np.array([110, 111, 112, -126, -130, -149, 0], dtype=float)
    x = (rng.uniform(-2.0, 2.0, (len(exps), 64)) * np.exp2(exps)[:, None]).astype(np.float32)
    fmt = parse("block<8,4>")
    got = fmt.quantize(x, rounding=rounding, seed=9)
    want = fmt.reference(x, rounding=rounding, seed=9)
    assert np.array_equal(got.view(np.uint32), want.view(np.uint32))


def test_block_hand_example():
    # block<4,2>: E = floor(log2 3) = 1, scale 2^(1-2) = 0.5, n in [-8, 7]
    x = np.array([3.0, 0.3, -0.26, 0.24, 0.0, 0.0, 3.9, -4.0], np.float32)
    got = quantize(x, "block<4,2>")
    # block 2: E = floor(log2 .26) = -2, scale 2^-4: -0.26 -> -4/16, 0.24 -> 4/16
    # block 4: E = 2, scale 1, n in [-8,7]: 3.9 -> 4, -4 -> -4
    want = np.array([3.0, 0.5, -0.25, 0.25, 0.0, 0.0, 4.0, -4.0], np.float32)
    assert np.array_equal(got, want), got


def test_block_saturates_top():
    # block<4,1>: x = 1.99: E=0, scale 2^-2, 1.99*4 = 7.96 -> 8 saturates to 7 -> 1.75
    x = np.array([1.99, -1.99], np.float32)
    got = quantize(x, "block<4,1>")
    assert np.array_equal(got, [1.75, -2.0]), got


def test_block_nan_element_stays_nan():
    x = np.array([1.0, np.nan, 0.5, 0.25], np.float32)
    got = quantize(x, "block<8,4>")
    assert np.isnan(got[1])
    assert np.isfinite(np.delete(got, 1)).all()


def test_block_stochastic_neighbours(rng):
    x = rng.standard_normal((50, 64)).astype(np.float32)
    lo = quantize(x, "block<6,16>", rounding="down")
    hi = quantize(x, "block<6,16>", rounding="up")
    y = quantize(x, "block<6,16>", rounding="stochastic", seed=4)
    assert ((y == lo) | (y == hi)).all()
    assert np.array_equal(y, quantize(x, "block<6,16>", rounding="stochastic", seed=4))


# ---- dynamic fixed point ---------------------------------------------------------------------

@pytest.mark.parametrize("wl,il", [(16, 4), (8, 1), (12, 6), (16, 16)])
def test_dfxp_fresh_state_is_fixed(wl, il, rng):
    """With a fresh state, dfxp<WL,il=IL> behaves as fixed<IL, WL-IL> (the lead's docs name the
    initial integer bits `il`)."""
    fmt = parse(f"dfxp<{wl},il={il}>")
    x = (rng.standard_normal(5000) * 2.0 ** (il - 2)).astype(np.float64)
    x[:4] = [1e9, -1e9, 2.0 ** (il - 1), -(2.0 ** (il - 1))]
    for mode in MODES:
        a = fmt.quantize(x, rounding=mode, state=fmt.new_state())
        b = quantize(x, f"fixed<{il},{wl - il}>", rounding=mode)
        assert same_value(a, b).all(), mode


def test_dfxp_gains_integer_bit_after_overflows():
    fmt = parse("dfxp<8,il=2,interval=10>")
    state = fmt.new_state()
    assert state.il == 2
    big = np.full(1000, 10.0, np.float32)  # far above fixed<2,6>'s max 1.984375
    for _ in range(9):
        fmt.quantize(big, state=state)
    assert state.il == 2  # nothing happens before the update interval
    for _ in range(11):
        fmt.quantize(big, state=state)
    assert state.il > 2


def test_dfxp_loses_integer_bit_when_range_unused():
    fmt = parse("dfxp<8,il=6,interval=5>")
    state = fmt.new_state()
    small = np.full(1000, 0.01, np.float32)
    for _ in range(10):
        fmt.quantize(small, state=state)
    assert state.il < 6


def test_dfxp_calibrates_from_first_tensor():
    fmt = parse("dfxp<8>")
    state = fmt.new_state()
    fmt.quantize(np.array([5.0, -1.0, 0.25], np.float32), state=state)
    assert state.il == 4  # fixed<4,4> (max 7.9375) holds 5; fixed<3,5> (max 3.97) does not
