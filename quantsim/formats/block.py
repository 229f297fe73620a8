"""Block floating point `block<M,k>`: M-bit integer mantissas sharing one exponent per k values."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from quantsim.errors import FormatError
from quantsim.formats.base import NumberFormat
from quantsim.formats.carrier import Carrier, unrepresentable
from quantsim.formats.rounding import Rounding
from quantsim.formats.stats import QuantStats
from quantsim.kernels import block_fast, cpu


@dataclass(frozen=True, eq=False)
class BlockFormat(NumberFormat):
    """block<M,k>: blocks of k consecutive elements along the last axis (the last block of a
    row may be shorter) share the exponent E = floor(log2(max finite |x| in the block)).

    Elements are M-bit two's complement integers n in [-2**(M-1), 2**(M-1) - 1] scaled by
    2**(E - (M-2)), like MX INT blocks: rounded by the mode, then saturated. Infinite elements
    saturate to the block's bounds, NaN stays NaN, an all-zero block stays zero. The shared
    exponent is stored in 8 bits (bits_per_element = M + 8/k) but not range-limited here.
    The properties are relative to a block scale of 2**0: max = 2 - 2**-(M-2).
    """

    twos_complement = True

    mbits: int
    block: int
    rounding: Rounding = field(default_factory=Rounding)

    def __post_init__(self) -> None:
        if not 2 <= self.mbits <= 25:
            raise FormatError(
                f"block<{self.mbits},{self.block}>: mantissa bits M must be between 2 and 25 "
                "(sign included), e.g. block<8,32>"
            )
        if self.block < 1:
            raise FormatError(f"block<{self.mbits},{self.block}>: block size must be >= 1")

    @property
    def spec_body(self) -> str:
        return f"block<{self.mbits},{self.block}>"

    @property
    def bits(self) -> int:
        return self.mbits

    @property
    def bits_per_element(self) -> float:
        return self.mbits + 8 / self.block

    @property
    def max(self) -> float:
        return 2.0 - math.ldexp(1.0, -(self.mbits - 2))

    @property
    def min_normal(self) -> float:
        return math.ldexp(1.0, -(self.mbits - 2))

    min_subnormal = min_normal
    eps = min_normal

    def check_carrier(self, carrier: Carrier) -> None:
        if self.mbits - 2 > carrier.mant_bits:
            raise unrepresentable(self.spec, carrier, f"{self.mbits}-bit mantissas")

    def _run(
        self, x: np.ndarray, out: np.ndarray, carrier: Carrier, rnd: Rounding, key: int,
        stats: QuantStats | None, state: Any,
    ) -> None:
        if not isinstance(x, np.ndarray):  # a device (CuPy) array
            from quantsim.kernels import cuda as cuda_kernels

            cuda_kernels.run_blocks(self, x, out, carrier, rnd, key, stats, state)
            return
        length = x.shape[-1] if x.ndim else 1
        x2, out2 = x.reshape(-1, length), out.reshape(-1, length)
        if x2.size == 0:
            return
        nblocks = x2.shape[0] * -(-length // self.block)
        only = np.empty(0, dtype=np.uint8)  # every block
        if (stats is None and carrier.mant_bits == 23 and self.mbits <= 23
                and self.block >= block_fast.LANES):
            only = np.empty(nblocks, dtype=np.uint8)
            cpu.launch(
                block_fast.quantize_blocks_fast, x2.size, x2.view(carrier.bits_dtype),
                out2.view(carrier.bits_dtype), self.mbits, self.block, rnd.code,
                rnd.random_bits or 0, np.uint64(key), 0, only,
            )
            if not only.any():
                return
        chunks = -(-nblocks // max(1, cpu.CHUNK // self.block)) if stats is not None else 1
        rows = np.zeros((chunks, cpu.N_STATS))
        hist = np.zeros((chunks, cpu.LOG2_HIST_BINS), dtype=np.int64)
        cpu.launch(
            cpu.quantize_blocks, x2.size, x2, x2.view(carrier.bits_dtype), out2,
            out2.view(carrier.bits_dtype),
            carrier.mant_bits, carrier.bias, self.mbits, self.block, rnd.code,
            rnd.random_bits or 0, np.uint64(key), 0, stats is not None, np.inf, rows, hist,
            only,
        )
        if stats is not None:
            stats.add_rows(rows, hist)
