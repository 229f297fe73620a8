"""Counter-based random numbers: element i of a tensor keyed by `seed` gets `mix64(key + i*G)`.

This is SplitMix64's output function applied to the counter, so the value for an element depends
only on (seed, element index): results are identical for any thread count, on CPU and GPU, and
reproducible after a resume. The functions are plain Python on integers so that numba can compile
them for the CPU (njit) and the GPU (cuda.jit device functions) from the same source.
"""

from __future__ import annotations

import numpy as np

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_MASK64 = (1 << 64) - 1


def mix64(z):
    """SplitMix64 finaliser: a bijective 64-bit mixer (uint64 in, uint64 out)."""
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


def mix64_int(z: int) -> int:
    """`mix64` on Python ints (host side), same result."""
    z &= _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def stream_key(seed: int) -> int:
    """The per-tensor key derived from a user seed in [0, 2**64)."""
    return mix64_int(int(seed) + 0x9E3779B97F4A7C15)


def combine_seed(*parts: int) -> int:
    """A 64-bit seed from several integers (run seed, point id, call counter), order-sensitive."""
    acc = 0x243F6A8885A308D3
    for part in parts:
        acc = mix64_int(acc ^ (int(part) & _MASK64)) + 0x9E3779B97F4A7C15
    return acc & _MASK64


def random63(key, index):
    """63 uniform random bits (as int64 >= 0) for element `index` of the stream `key`."""
    return np.int64(mix64(key + (np.uint64(index) + np.uint64(1)) * GOLDEN) >> np.uint64(1))


def random63_at(counter):
    """`random63` from the element's counter `key + (index + 1) * GOLDEN` (uint64): loops over
    consecutive elements step the counter by GOLDEN instead of multiplying."""
    return np.int64(mix64(counter) >> np.uint64(1))


def random63_numpy(key: int, index: np.ndarray) -> np.ndarray:
    """Vectorised `random63` for the numpy reference implementation."""
    with np.errstate(over="ignore"):
        z = np.uint64(key) + (index.astype(np.uint64) + np.uint64(1)) * GOLDEN
        z = (z ^ (z >> _S30)) * _M1
        z = (z ^ (z >> _S27)) * _M2
        z = z ^ (z >> _S31)
    return (z >> np.uint64(1)).astype(np.int64)
