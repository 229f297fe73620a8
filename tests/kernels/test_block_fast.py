"""The float32 fast kernel of block formats (`quantsim.kernels.block_fast`) against the
reference, with its hand-offs to the general kernel (`cpu.quantize_blocks`)."""

from __future__ import annotations

import numpy as np
import pytest

from quantsim.formats import parse
from quantsim.kernels import block_fast

from .test_cpu_vs_reference import ROUNDINGS, SEED, adversarial, same_bits


@pytest.mark.parametrize("spec,length", [
    ("block<8,32>", 64),     # power-of-two blocks tiling the rows: maxima by the pairwise tree
    ("block<8,16>", 4160),   # several groups (block_fast.GROUP elements) in a row
    ("block<6,24>", 48),     # a block that is not a multiple of the lanes: overlapping steps
    ("block<8,32>", 40),     # a row tail of 8 elements, left to the general kernel
    ("block<8,4096>", 8192),  # a block longer than a group of random draws
])
def test_fast_kernel_equals_reference(spec, length):
    """The float32 fast block kernel (`block_fast`), with its hand-offs to the general one:
    specials, huge blocks (quantum above 2**104) and row tails, in every rounding."""
    fmt = parse(spec)
    x = adversarial(fmt, np.float32)
    x = np.resize(x, max(x.size // length, 3) * length).reshape(-1, length)
    bad = []
    for rounding in ROUNDINGS:
        got = fmt.quantize(x, rounding=rounding, seed=SEED)
        want = fmt.reference(x, rounding=rounding, seed=SEED)
        inplace = x.copy()
        fmt.quantize(inplace, rounding=rounding, seed=SEED, out=inplace)
        for name, result in (("out", got), ("in place", inplace)):
            ok = same_bits(result, want)
            if not ok.all():
                bad.append(f"{rounding} ({name}): {(~ok).sum()} of {ok.size} differ")
    assert not bad, f"{spec}, rows of {length}:\n" + "\n".join(bad)


def test_skipped_blocks_are_marked_and_left_alone():
    """Huge blocks (quantum above 2**MAX_QE) and a short row tail are marked, untouched."""
    x = np.ones((2, 40), dtype=np.float32)
    x[1, :32] = 2.0 ** 120  # qe = 120 - 6 > MAX_QE
    out = np.full_like(x, 7.0)
    skipped = np.empty(4, dtype=np.uint8)
    block_fast.quantize_blocks_fast(x.view(np.uint32), out.view(np.uint32), 8, 32, 0, 0,
                                    np.uint64(1), 0, skipped)
    assert skipped.tolist() == [0, 1, 1, 1]
    assert (out[0, :32] == 1.0).all() and (out[0, 32:] == 7.0).all() and (out[1] == 7.0).all()
