"""Binary floating-point formats float<eXmY> (IEEE-like, OCP 'fn', saturating, no subnormals)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from quantsim.errors import FormatError
from quantsim.formats.base import GridParams, NumberFormat
from quantsim.formats.carrier import Carrier, carrier_for, unrepresentable
from quantsim.formats.rounding import Rounding
from quantsim.kernels.scalar import KIND_FLOAT, OVERFLOW_INF, OVERFLOW_NAN, OVERFLOW_SAT

OVERFLOW_POLICIES = {"inf": OVERFLOW_INF, "sat": OVERFLOW_SAT, "nan": OVERFLOW_NAN}

# Canonical names of well-known parameter sets: (ebits, mbits, subnormals, finite, overflow).
NAMED_FLOATS = {
    "float32": (8, 23, True, False, "inf"),
    "float16": (5, 10, True, False, "inf"),
    "bfloat16": (8, 7, True, False, "inf"),
    "tf32": (8, 10, True, False, "inf"),
    "fp8_e4m3": (4, 3, True, True, "nan"),
    "fp8_e5m2": (5, 2, True, False, "inf"),
}
FLOAT_ALIASES = {"half": "float16", "bf16": "bfloat16", "single": "float32", "fp32": "float32",
                 "fp16": "float16"}

@dataclass(frozen=True, eq=False)
class FloatFormat(NumberFormat):
    """A binary floating-point format with `ebits` exponent and `mbits` stored mantissa bits.

    IEEE-like (default): bias 2**(ebits-1) - 1, the top exponent holds inf/NaN, subnormals on,
    overflow to inf (nearest overflows at 2**emax * (2 - 2**-(mbits+1)); toward-zero style
    roundings give +-max). `finite=True` is the OCP 'fn' variant (e.g. E4M3FN): no inf, the
    top exponent holds values except the all-ones mantissa (NaN), so emax is one larger and
    max = 2**emax * (2 - 2**-(mbits-1)); overflow and inf inputs give NaN. `overflow='sat'`
    saturates to +-max (inf inputs too). `subnormals=False` rounds the exact input into the
    normal numbers and +-0 by the rounding mode (no flush before rounding).
    """

    ebits: int
    mbits: int
    subnormals: bool = True
    finite: bool = False
    overflow: str = "inf"
    rounding: Rounding = field(default_factory=Rounding)

    def __post_init__(self) -> None:
        body = self._generic_body()
        if not 2 <= self.ebits <= 11:
            raise FormatError(
                f"{body}: exponent bits must be between 2 and 11 (got {self.ebits}); "
                "e.g. float<e5m10>"
            )
        if not 0 <= self.mbits <= 52:
            raise FormatError(f"{body}: mantissa bits must be between 0 and 52 (got {self.mbits})")
        if self.overflow not in OVERFLOW_POLICIES:
            raise FormatError(
                f"{body}: overflow must be one of inf, sat, nan (got {self.overflow!r})"
            )
        if self.finite and self.mbits < 1:
            raise FormatError(f"{body}: the fn variant needs at least 1 mantissa bit")
        if self.finite and self.overflow == "inf":
            raise FormatError(f"{body}: an fn format has no inf; use overflow 'nan' or 'sat'")
        if not self.finite and self.overflow == "nan":
            raise FormatError(f"{body}: overflow to NaN is only for fn formats; add ',fn'")

    # -- spec ------------------------------------------------------------------------------
    def _generic_body(self) -> str:
        options = []
        if self.finite:
            options.append("fn")
        if not self.subnormals:
            options.append("nosub")
        if self.overflow == "sat":
            options.append("sat")
        return f"float<e{self.ebits}m{self.mbits}{''.join(',' + o for o in options)}>"

    @property
    def spec_body(self) -> str:
        params = (self.ebits, self.mbits, self.subnormals, self.finite, self.overflow)
        for name, named in NAMED_FLOATS.items():
            if named == params:
                return name
        return self._generic_body()

    def _key(self) -> tuple:
        return ("float", self.ebits, self.mbits, self.subnormals, self.finite, self.overflow,
                self.rounding)

    # -- properties ------------------------------------------------------------------------
    @property
    def bias(self) -> int:
        return 2 ** (self.ebits - 1) - 1

    @property
    def emax(self) -> int:
        return self.bias + 1 if self.finite else self.bias

    @property
    def emin(self) -> int:
        return 1 - self.bias

    @property
    def bits(self) -> int:
        return 1 + self.ebits + self.mbits

    @property
    def max(self) -> float:
        top_mantissa = 2.0 - 2.0 ** -(self.mbits - 1) if self.finite else 2.0 - 2.0**-self.mbits
        return float(np.ldexp(top_mantissa, self.emax))

    @property
    def min_normal(self) -> float:
        return float(np.ldexp(1.0, self.emin))

    @property
    def min_subnormal(self) -> float:
        if not self.subnormals:
            return self.min_normal
        return float(np.ldexp(1.0, self.emin - self.mbits))

    @property
    def eps(self) -> float:
        return float(np.ldexp(1.0, -self.mbits))

    # -- behaviour -------------------------------------------------------------------------
    def is_identity(self, dtype: Any) -> bool:
        """True when the format's grid is the carrier's own (float32 on float32 carriers)."""
        try:
            carrier = carrier_for(dtype)
        except TypeError:
            return False
        return (
            self.mbits == carrier.mant_bits
            and self.emin == carrier.emin
            and self.emax == carrier.emax
            and self.subnormals
            and not self.finite
            and self.overflow == "inf"
        )

    def check_carrier(self, carrier: Carrier) -> None:
        """A format wider than the carrier cannot be simulated on it: the engine's arithmetic
        would silently run at the carrier's precision."""
        if self.is_identity(carrier.dtype):
            return
        if self.mbits > carrier.mant_bits:
            raise unrepresentable(
                self.spec, carrier, f"{self.mbits} mantissa bits > {carrier.mant_bits}"
            )
        if self.emax > carrier.emax or self.emin - (self.mbits if self.subnormals else 0) < (
            carrier.lowest_quantum_exp
        ):
            raise unrepresentable(self.spec, carrier, "exponent range too wide")

    def grid_params(self, carrier: Carrier, state: Any) -> GridParams:
        if self.is_identity(carrier.dtype):
            # Same grid as the carrier: a kernel run is a copy (NaN payloads kept).
            return GridParams(KIND_FLOAT, carrier.mant_bits, carrier.emin, True, 0,
                              np.inf, np.inf, OVERFLOW_INF)
        return GridParams(
            KIND_FLOAT, self.mbits, self.emin, self.subnormals, 0,
            self.max, self.max, OVERFLOW_POLICIES[self.overflow],
        )

def named_float(name: str) -> FloatFormat:
    ebits, mbits, subnormals, finite, overflow = NAMED_FLOATS[name]
    return FloatFormat(ebits, mbits, subnormals, finite, overflow)
