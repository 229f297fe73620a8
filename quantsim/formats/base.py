"""NumberFormat: the interface every number format implements, and the shared quantize path."""

from __future__ import annotations

import secrets
from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from quantsim.backend import get_array_module
from quantsim.formats.carrier import Carrier, carrier_for, check_array
from quantsim.formats.rounding import Rounding, parse_rounding
from quantsim.formats.stats import QuantStats
from quantsim.kernels import cpu, float32_fast, scalar
from quantsim.kernels.rng import stream_key


@dataclass(frozen=True)
class GridParams:
    """Parameters of the element-wise kernel (see kernels/scalar.py for their meaning).

    kind 0 floating: quantum 2**(max(e, emin) - m) (or the grid {0, 2**emin} below emin
    without subnormals); kind 1 fixed: quantum 2**qfix. maxpos / maxneg: largest magnitudes
    of positive / negative results; policy: 0 overflow to inf, 1 saturate, 2 NaN.
    """

    kind: int
    m: int = 0
    emin: int = 0
    subnormals: bool = True
    qfix: int = 0
    maxpos: float = np.inf
    maxneg: float = np.inf
    policy: int = 1


class NumberFormat(ABC):
    """An immutable number format with a default rounding.

    `quantize` returns carrier arrays (float32 / float64) whose elements are exactly
    representable in the format. Subclasses define `spec_body`, the properties, and either
    `grid_params` (element-wise formats) or `_run` (formats with their own kernel).
    """

    rounding: Rounding

    # -- identity ---------------------------------------------------------------------------
    @property
    @abstractmethod
    def spec_body(self) -> str:
        """The spec without the rounding suffix, e.g. 'fixed<4,12>'."""

    @property
    def spec(self) -> str:
        if self.rounding == Rounding():
            return self.spec_body
        return f"{self.spec_body}@{self.rounding}"

    def __str__(self) -> str:
        return self.spec

    def __repr__(self) -> str:
        return f"parse({self.spec!r})"

    def _key(self) -> tuple:
        return (type(self).__name__, self.spec_body, self.rounding)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NumberFormat) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def with_rounding(self, rounding: str | Rounding) -> NumberFormat:
        """A copy of this format with another default rounding."""
        return replace(self, rounding=parse_rounding(rounding))  # type: ignore[type-var]

    # -- properties (python numbers) --------------------------------------------------------
    @property
    @abstractmethod
    def bits(self) -> int:
        """Storage bits per element, sign included."""

    @property
    @abstractmethod
    def max(self) -> float:
        """Largest finite value."""

    @property
    @abstractmethod
    def min_normal(self) -> float:
        """Smallest positive normal value (for fixed point: the quantum)."""

    @property
    @abstractmethod
    def min_subnormal(self) -> float:
        """Smallest positive value."""

    @property
    @abstractmethod
    def eps(self) -> float:
        """Distance from 1 to the next larger value (for fixed point: the quantum)."""

    # -- behaviour --------------------------------------------------------------------------
    #: Two's complement formats (fixed, dfxp, block) take limited-bit stochastic decisions on
    #: the signed value; sign-magnitude formats (floats) on the magnitude.
    twos_complement: bool = False

    def is_identity(self, dtype: Any) -> bool:
        """True when quantizing arrays of `dtype` changes nothing (the engine skips the call)."""
        return False

    def new_state(self) -> Any:
        """Fresh mutable state for stateful formats (dynamic fixed point); None otherwise."""
        return None

    def check_carrier(self, carrier: Carrier) -> None:
        """Raise FormatError when the format's values are not all exact in `carrier`."""
        return None

    def grid_params(self, carrier: Carrier, state: Any) -> GridParams:
        raise NotImplementedError(f"{type(self).__name__} must define grid_params or _run")

    def quantize(
        self,
        x: np.ndarray,
        *,
        rounding: str | Rounding | None = None,
        seed: int | None = None,
        out: np.ndarray | None = None,
        stats: QuantStats | None = None,
        state: Any = None,
    ) -> np.ndarray:
        """Round `x` into this format; see docs/architecture.md for the arguments."""
        x = check_array(x)
        carrier = carrier_for(x.dtype)
        self.check_carrier(carrier)
        rnd = parse_rounding(rounding, self.rounding)
        key = _stream_key(seed, rnd)
        # (ascontiguousarray would turn a 0-d array into shape (1,))
        xc = x if x.flags.c_contiguous else get_array_module(x).ascontiguousarray(x)
        out = _output_for(xc, out)
        xc = separate_input(xc, out)
        if state is None:
            state = self.new_state()
        self._run(xc, out, carrier, rnd, key, stats, state)
        return out

    def reference(
        self,
        x: np.ndarray,
        *,
        rounding: str | Rounding | None = None,
        seed: int | None = None,
        state: Any = None,
    ) -> np.ndarray:
        """The same result as `quantize`, computed by the slow, readable numpy reference."""
        from quantsim.kernels import reference

        x = check_array(x)
        carrier = carrier_for(x.dtype)
        self.check_carrier(carrier)
        rnd = parse_rounding(rounding, self.rounding)
        if state is None:
            state = self.new_state()
        return reference.quantize_format(self, x, carrier, rnd, _stream_key(seed, rnd), state)

    def _run(
        self, x: np.ndarray, out: np.ndarray, carrier: Carrier, rnd: Rounding, key: int,
        stats: QuantStats | None, state: Any,
    ) -> None:
        params = self.grid_params(carrier, state)
        run_elementwise(x, out, carrier, params, rnd, key, stats)


def _stream_key(seed: int | None, rnd: Rounding) -> int:
    if not rnd.is_stochastic:
        return 0
    if seed is None:
        seed = secrets.randbits(64)
    return stream_key(int(seed))


def separate_input(x: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``x``, or a copy of it when ``out`` shares its memory (in place). The CPU kernels read
    one array and write another; given the same memory, LLVM's run-time overlap check sends
    their loops to the scalar version: 16M float32, fp8_e4m3 stochastic, 46 ms in place and
    7.7 ms into another array. A copy first costs one pass over memory, no more."""
    if isinstance(x, np.ndarray) and np.may_share_memory(x, out):
        return x.copy()
    return x


def _output_for(x: np.ndarray, out: np.ndarray | None) -> np.ndarray:
    if out is None:
        return get_array_module(x).empty_like(x)
    if (isinstance(out, np.generic) or out.shape != x.shape or out.dtype != x.dtype
            or not out.flags.c_contiguous):
        got = ("a numpy scalar" if isinstance(out, np.generic)
               else f"{out.dtype} {out.shape}")
        raise ValueError(f"out must be a C-contiguous {x.dtype} array of shape {x.shape}, "
                         f"got {got}")
    return out


def run_elementwise(
    x: np.ndarray, out: np.ndarray, carrier: Carrier, p: GridParams, rnd: Rounding,
    key: int, stats: QuantStats | None, threshold: float = np.inf, *, counts_only: bool = False,
) -> None:
    """Run the element-wise kernel on contiguous `x` into `out`, counting into `stats`.
    ``counts_only``: fill only count, nan, inf, overflow and above-threshold (what a dynamic
    fixed point controller reads) with a lighter pass; the other statistics stay zero."""
    if not isinstance(x, np.ndarray):  # a device (CuPy) array
        from quantsim.kernels import cuda as cuda_kernels

        cuda_kernels.run_elementwise(x, out, carrier, p, rnd, key, stats, threshold)
        return
    flat_x, flat_out = x.reshape(-1), out.reshape(-1)
    xbits, outbits = flat_x.view(carrier.bits_dtype), flat_out.view(carrier.bits_dtype)
    n = flat_x.size
    # The float32 fast core where it applies.
    fast = float32_fast.fast_params(carrier, p, rnd)
    twos = p.kind == scalar.KIND_FIXED
    if stats is None:
        if fast is not None:
            run_float32_fast(flat_x, flat_out, fast, rnd.code, twos, key)
        else:
            cpu.launch(cpu.quantize_elementwise, n, xbits, outbits,
                       *_general_args(carrier, p, rnd, key))
        return
    if counts_only:
        rows = np.zeros(((n + cpu.CHUNK - 1) // cpu.CHUNK, cpu.N_STATS), dtype=np.float64)
        if fast is not None:
            cpu.launch(cpu.quantize_elementwise_counts_fast, n, xbits, outbits, fast,
                       rnd.code, twos, np.uint64(key), 0,
                       float32_fast.bits_at_or_below(threshold), rows)
        else:
            cpu.launch(cpu.quantize_elementwise_counts, n, flat_x, xbits, outbits,
                       *_general_args(carrier, p, rnd, key), threshold, rows)
        stats.add_rows(rows, np.zeros((1, cpu.LOG2_HIST_BINS), dtype=np.int64))
        return
    rows, hist = _stat_rows(n)
    if fast is not None and rnd.code in (scalar.NEAREST, scalar.STOCHASTIC):
        cpu.launch(cpu.quantize_elementwise_stats_fast, n, flat_x, xbits, flat_out, outbits,
                   fast, rnd.code, twos, np.uint64(key), 0, threshold, rows, hist)
    else:
        cpu.launch(cpu.quantize_elementwise_stats, n, flat_x, xbits, flat_out, outbits,
                   *_general_args(carrier, p, rnd, key), threshold, rows, hist)
    stats.add_rows(rows, hist)


def run_float32_fast(x: np.ndarray, out: np.ndarray, fast: tuple, code: int, twos: bool,
                     key: int) -> None:
    """Round C-contiguous float32 `x` into `out` (same shape; may overlap `x`, see
    `separate_input`) with the float32 fast core: `fast` from `float32_fast.fast_params`,
    `code` the rounding code, `twos` for fixed-point formats, `key` the stream key (unused
    unless stochastic). No statistics."""
    x = separate_input(x, out)
    cpu.launch(cpu.quantize_elementwise_fast, x.size, x.reshape(-1).view(np.uint32),
               out.reshape(-1).view(np.uint32), fast, code, twos, np.uint64(key), 0)


def _general_args(carrier: Carrier, p: GridParams, rnd: Rounding, key: int) -> tuple:
    """The grid and rounding arguments of the general element-wise kernels."""
    return (
        carrier.mant_bits, carrier.bias, p.kind, p.m, p.emin, p.subnormals, p.qfix,
        carrier.bits_of(p.maxpos), carrier.bits_of(p.maxneg), p.policy,
        rnd.code, rnd.random_bits or 0, np.uint64(key), 0,
    )


def _stat_rows(n: int) -> tuple[np.ndarray, np.ndarray]:
    chunks = (n + cpu.CHUNK - 1) // cpu.CHUNK
    return (
        np.zeros((chunks, cpu.N_STATS), dtype=np.float64),
        np.zeros((chunks, cpu.LOG2_HIST_BINS), dtype=np.int64),
    )
