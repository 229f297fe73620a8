"""Fixed point `fixed<IL,FL>` and dynamic fixed point `dfxp<WL>` (Courbariaux et al. 2015)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from quantsim.backend import get_array_module
from quantsim.errors import FormatError
from quantsim.formats.base import GridParams, NumberFormat, run_elementwise
from quantsim.formats.carrier import Carrier, unrepresentable
from quantsim.formats.rounding import Rounding
from quantsim.formats.stats import QuantStats
from quantsim.kernels.scalar import KIND_FIXED, OVERFLOW_SAT


def fixed_grid(il: int, fl: int) -> GridParams:
    """Two's complement with `il` integer bits (sign included) and `fl` fraction bits."""
    return GridParams(
        KIND_FIXED, qfix=-fl,
        maxpos=math.ldexp(1.0, il - 1) - math.ldexp(1.0, -fl),
        maxneg=math.ldexp(1.0, il - 1), policy=OVERFLOW_SAT,
    )


def check_fixed_carrier(spec: str, word: int, fl: int, carrier: Carrier) -> None:
    if word - 1 > carrier.mant_bits + 1:
        raise unrepresentable(spec, carrier, f"{word - 1} magnitude bits > {carrier.mant_bits + 1}")
    if -fl < carrier.lowest_quantum_exp or word - fl - 1 > carrier.emax:
        raise unrepresentable(spec, carrier, "radix point out of the carrier's range")


@dataclass(frozen=True, eq=False)
class FixedFormat(NumberFormat):
    """fixed<IL,FL>: values k * 2**-FL for integers k in [-2**(IL+FL-1), 2**(IL+FL-1) - 1].

    IL counts the integer bits including the sign (Gupta et al. 2015), so bits = IL + FL,
    max = 2**(IL-1) - 2**-FL and the most negative value is -2**(IL-1). Every rounding
    saturates; +-inf saturate too; NaN stays NaN. A zero result keeps the input's sign
    (-0.0 == 0.0 on the carrier).
    """

    twos_complement = True

    il: int
    fl: int
    rounding: Rounding = field(default_factory=Rounding)

    def __post_init__(self) -> None:
        if self.il < 1:
            raise FormatError(
                f"fixed<{self.il},{self.fl}>: IL counts the integer bits including the sign, "
                "so it must be at least 1 (e.g. fixed<4,12>)"
            )
        if self.fl < 0 or self.il + self.fl < 2:
            raise FormatError(
                f"fixed<{self.il},{self.fl}>: need FL >= 0 and IL + FL >= 2 bits in all"
            )
        if self.il + self.fl > 64:
            raise FormatError(f"fixed<{self.il},{self.fl}>: at most 64 bits")

    @property
    def spec_body(self) -> str:
        return f"fixed<{self.il},{self.fl}>"

    @property
    def bits(self) -> int:
        return self.il + self.fl

    @property
    def max(self) -> float:
        return math.ldexp(1.0, self.il - 1) - math.ldexp(1.0, -self.fl)

    @property
    def min_normal(self) -> float:
        return math.ldexp(1.0, -self.fl)

    min_subnormal = min_normal
    eps = min_normal

    def check_carrier(self, carrier: Carrier) -> None:
        check_fixed_carrier(self.spec, self.bits, self.fl, carrier)

    def grid_params(self, carrier: Carrier, state: Any) -> GridParams:
        return fixed_grid(self.il, self.fl)


@dataclass
class DfxpState:
    """The radix position of one dynamic fixed point quantization point and its counters.

    `il` is the current number of integer bits (None until calibrated from the first tensor);
    `history` holds (call, il) whenever il changes.
    """

    il: int | None
    calls: int = 0
    seen: int = 0
    overflows: int = 0
    overflows_fewer: int = 0
    history: list[tuple[int, int]] = field(default_factory=list)

    def state_dict(self) -> dict[str, Any]:
        return {"il": self.il, "calls": self.calls, "seen": self.seen,
                "overflows": self.overflows, "overflows_fewer": self.overflows_fewer,
                "history": [list(h) for h in self.history]}

    def load_state_dict(self, d: dict[str, Any]) -> None:
        self.il = d["il"]
        self.calls, self.seen = int(d["calls"]), int(d["seen"])
        self.overflows, self.overflows_fewer = int(d["overflows"]), int(d["overflows_fewer"])
        self.history = [(int(a), int(b)) for a, b in d["history"]]


DFXP_DEFAULT_INTERVAL = 1


@dataclass(frozen=True, eq=False)
class DynamicFixedFormat(NumberFormat):
    """dfxp<WL>: WL-bit fixed point whose integer bits IL change during training.

    The controller is Courbariaux et al.'s (2015): every `interval` calls, if the fraction of
    values that overflowed at the current IL exceeds `limit`, IL grows by one; else if the
    fraction that would overflow with one integer bit fewer stays within `limit`, IL shrinks
    by one. 'Would overflow with one fewer' counts |x| above that format's max before rounding.
    `il=None` calibrates IL from the first tensor (the smallest IL that holds its max |x|).
    A call without a state (plain `quantize`) calibrates on that tensor alone.
    The default interval is 1 call (the radix point may move one bit per batch). Measured on the
    784-1000-1000-10 MLP (dfxp<10> propagations, dfxp<12> updates, SGD lr 0.05 momentum 0.9):
    with interval 100 (digits) and 10 (Fashion-MNIST) the logits, calibrated on the first batch,
    saturated and the straight-through gradient grew the weights faster than the controller
    followed, and training diverged; with interval 1 it trains (Fashion-MNIST, 20k examples,
    2 epochs: 15.9 % test error; digits: 1.9 % against 1.7 % in float32).
    IL may exceed WL (negative fraction bits) or be negative: the radix point moves freely
    within the carrier.
    """

    twos_complement = True

    wl: int
    il: int | None = None
    limit: float = 1e-4
    interval: int = DFXP_DEFAULT_INTERVAL
    rounding: Rounding = field(default_factory=Rounding)

    def __post_init__(self) -> None:
        if not 2 <= self.wl <= 64:
            raise FormatError(f"dfxp<{self.wl}>: word length must be between 2 and 64 bits")
        if self.il is not None and not -126 <= self.il <= 128:
            raise FormatError(f"dfxp<{self.wl},il={self.il}>: il must be in [-126, 128]")
        if not 0.0 <= self.limit < 1.0:
            raise FormatError(f"dfxp<{self.wl}>: limit must be in [0, 1), got {self.limit}")
        if self.interval < 1:
            raise FormatError(f"dfxp<{self.wl}>: interval must be >= 1, got {self.interval}")

    @property
    def spec_body(self) -> str:
        options = []
        if self.il is not None:
            options.append(f"il={self.il}")
        if self.limit != 1e-4:
            options.append(f"limit={self.limit:g}")
        if self.interval != DFXP_DEFAULT_INTERVAL:
            options.append(f"interval={self.interval}")
        return f"dfxp<{self.wl}{''.join(',' + o for o in options)}>"

    @property
    def bits(self) -> int:
        return self.wl

    def _reference_il(self) -> int:
        return self.il if self.il is not None else 1

    @property
    def max(self) -> float:
        """Largest value at the initial IL (IL = 1 when calibrated at run time)."""
        return FixedFormat(self._reference_il(), self.wl - self._reference_il()).max

    @property
    def min_normal(self) -> float:
        return math.ldexp(1.0, self._reference_il() - self.wl)

    min_subnormal = min_normal
    eps = min_normal

    def new_state(self) -> DfxpState:
        return DfxpState(self.il)

    def check_carrier(self, carrier: Carrier) -> None:
        if self.wl - 1 > carrier.mant_bits + 1:
            raise unrepresentable(self.spec, carrier, f"{self.wl - 1} magnitude bits")

    def _run(
        self, x: np.ndarray, out: np.ndarray, carrier: Carrier, rnd: Rounding, key: int,
        stats: QuantStats | None, state: DfxpState,
    ) -> None:
        if state.il is None:
            state.il = calibrate_il(x, self.wl)
            state.history.append((state.calls, state.il))
        il = clamp_il(state.il, self.wl, carrier)
        local = QuantStats()
        threshold = fixed_grid(il - 1, self.wl - il + 1).maxpos
        # Unsampled calls need only the controller's counters: the lighter counting pass.
        run_elementwise(x, out, carrier, fixed_grid(il, self.wl - il), rnd, key, local,
                        threshold=threshold, counts_only=stats is None)
        if stats is not None:
            stats.merge(local)
        self._observe(state, local)

    def _observe(self, state: DfxpState, local: QuantStats) -> None:
        state.calls += 1
        state.seen += local.count - local.nan - local.inf
        state.overflows += local.overflow
        state.overflows_fewer += local.above
        if state.calls % self.interval:
            return
        if state.seen:
            if state.overflows / state.seen > self.limit:
                state.il += 1
            elif state.overflows_fewer / state.seen <= self.limit:
                state.il -= 1
            if not state.history or state.history[-1][1] != state.il:
                state.history.append((state.calls, state.il))
        state.seen = state.overflows = state.overflows_fewer = 0


def calibrate_il(x: np.ndarray, wl: int) -> int:
    """An IL for which fixed<IL, WL-IL> holds max |x|: 2**(IL-2) <= max|x| < 2**(IL-1)
    (the value may still saturate by less than one quantum)."""
    xp = get_array_module(x)  # numpy or cupy (dynamic fixed point on a GPU)
    finite = xp.abs(x[xp.isfinite(x)])
    amax = float(finite.max()) if finite.size else 0.0
    if amax == 0.0:
        return 1
    il = math.frexp(amax)[1] + 1  # amax < 2**(il - 1)
    return il


def clamp_il(il: int, wl: int, carrier: Carrier) -> int:
    """Keep the radix point inside what the carrier can hold."""
    lowest = carrier.lowest_quantum_exp + wl  # -(wl - il) >= lowest quantum exponent
    return int(min(max(il, lowest), carrier.emax))
