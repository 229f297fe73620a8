"""Counter-based random numbers: 32 random bits per element, from SplitMix64 on a counter.

Draw j of the stream keyed by `key` is the 64-bit word ``mix64(key + (j + 1) * GOLDEN)``
(SplitMix64's output function on the counter). Element i takes half of draw i // 2: the low
32 bits when i is even, the high 32 bits when i is odd, i.e. word i of the draws laid out in
little-endian order. So the bits of an element depend only on (key, element index): results are
identical for any thread count, on CPU and GPU, and reproducible after a resume; and one 64-bit
mix serves two elements (a CPU loop fills a buffer of draws and reads it as 32-bit words).
The functions are plain Python on integers so that numba can compile them for the CPU (njit)
and the GPU (cuda.jit device functions) from the same source.
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


def random32(key, index):
    """The 32 random bits (uint64 < 2**32) of element `index` (int >= 0) of the stream `key`."""
    i = np.uint64(index)
    draw = mix64(key + ((i >> np.uint64(1)) + np.uint64(1)) * GOLDEN)
    return (draw >> ((i & np.uint64(1)) * np.uint64(32))) & np.uint64(0xFFFFFFFF)


def fill_draws(draws, key, first_draw):
    """draws[j] = draw ``first_draw + j`` of the stream `key` (a uint64 buffer): viewed as
    uint32, word 2*j + h of the buffer is element 2*(first_draw + j) + h's random bits."""
    counter = key + np.uint64(first_draw) * GOLDEN
    for j in range(draws.size):
        counter += GOLDEN
        draws[j] = mix64(counter)


def random32_numpy(key: int, index: np.ndarray) -> np.ndarray:
    """Vectorised `random32` (as uint32) for the numpy reference implementation."""
    index = index.astype(np.uint64)
    with np.errstate(over="ignore"):
        z = mix64(np.uint64(key) + ((index >> np.uint64(1)) + np.uint64(1)) * GOLDEN)
    return ((z >> ((index & np.uint64(1)) * np.uint64(32))) & np.uint64(0xFFFFFFFF)).astype(
        np.uint32)
