"""Chunked accumulation against the slow pure-Python reference, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from quantsim.formats import parse
from quantsim.kernels.accumulate import chunked_matmul, reference_matmul


def dyadic(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Multiples of 1/8 in [-2, 2): float32 sums of their products are exact, so BLAS's
    summation order inside a chunk cannot matter."""
    return (rng.integers(-16, 16, size=shape) / 8).astype(np.float32)


@pytest.mark.parametrize("spec", ["fixed<3,2>", "float<e3m2>", "bfloat16@toward_zero"])
@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 16, 40])
def test_matches_reference_on_exact_chunks(spec: str, chunk: int):
    rng = np.random.default_rng(chunk)
    A, B = dyadic(rng, (3, 16)), dyadic(rng, (16, 4))
    q = parse(spec).quantize
    np.testing.assert_array_equal(chunked_matmul(A, B, q, chunk), reference_matmul(A, B, q, chunk))


@pytest.mark.parametrize("spec", ["float16", "bfloat16", "float<e4m3>@up"])
def test_chunk_one_matches_reference_on_random_data(spec: str):
    rng = np.random.default_rng(3)
    A = rng.normal(size=(4, 9)).astype(np.float32)
    B = rng.normal(size=(9, 3)).astype(np.float32)
    q = parse(spec).quantize
    C = chunked_matmul(A, B, q, 1)
    np.testing.assert_array_equal(C, reference_matmul(A, B, q, 1))
    assert not np.array_equal(C, A @ B)


def test_small_accumulator_loses_small_addends():
    # 1 + 1/64 in float<e3m2> (3 significant bits) stays 1: swamping, the effect chunking fights.
    A = np.array([[1.0] + [1 / 64] * 16], dtype=np.float32)
    B = np.ones((17, 1), dtype=np.float32)
    q = parse("float<e3m2>").quantize
    assert chunked_matmul(A, B, q, 1)[0, 0] == 1.0
    assert chunked_matmul(A, B, q, 17)[0, 0] == 1.25


def test_call_count_and_shapes():
    calls = []

    def q(x):
        calls.append(x.shape)
        return x

    A = np.ones((2, 3, 10), dtype=np.float32)
    B = np.ones(10, dtype=np.float32)
    C = chunked_matmul(A, B, q, 4)  # chunks of 4, 4, 2
    assert C.shape == (2, 3) and C.dtype == np.float32 and np.all(C == 10)
    assert len(calls) == 2 * 3 - 1 and calls[0] == (6, 1)
    assert chunked_matmul(np.ones((2, 0)), np.ones((0, 3)), q, 4).shape == (2, 3)


def test_float64_carriers_stay_float64():
    A = np.full((1, 3), 1 / 3)
    C = chunked_matmul(A, A.T, lambda x: x, 1)
    assert C.dtype == np.float64


def test_bad_arguments():
    A = np.ones((2, 3), dtype=np.float32)
    with pytest.raises(ValueError, match="chunk"):
        chunked_matmul(A, A.T, lambda x: x, 0)
    with pytest.raises(ValueError, match="inner dimensions"):
        chunked_matmul(A, A, lambda x: x, 2)
