"""Rounding modes: how a value between two neighbours on a format's grid is resolved."""

from __future__ import annotations

import re
from dataclasses import dataclass

from quantsim.errors import FormatError

MODES = ("nearest", "stochastic", "toward_zero", "down", "up")
MODE_CODES = {name: code for code, name in enumerate(MODES)}
#: Random bits per element (`quantsim.kernels.rng`): plain `stochastic` uses all of them.
RANDOM_BITS = 32
MAX_RANDOM_BITS = RANDOM_BITS - 1

_STOCHASTIC_BITS = re.compile(r"stochastic<\s*(\d+)\s*>$")


@dataclass(frozen=True)
class Rounding:
    """A rounding mode.

    `nearest` rounds to the nearest grid value, ties to the even one; `toward_zero` truncates;
    `down` rounds toward -inf; `up` toward +inf; `stochastic` rounds up with probability equal
    to the distance from the lower neighbour divided by the gap. `random_bits=r` (stochastic
    only) uses r random bits as hardware does, which adds them where the format keeps its
    sign: floating-point formats are sign-magnitude, so |x| moves away from zero with
    P = floor(frac_mag * 2**r) / 2**r (frac_mag measured from the neighbour nearer zero);
    two's complement formats (fixed, dfxp, block) round toward +inf with
    P = floor(frac * 2**r) / 2**r (frac measured from the lower neighbour).
    `random_bits=None` uses all 32 random bits of the element: P(up) is the distance fraction
    floored to a multiple of 2**-32.
    """

    mode: str = "nearest"
    random_bits: int | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODE_CODES:
            raise FormatError(
                f"unknown rounding mode {self.mode!r}; use one of {', '.join(MODES)} "
                "or stochastic<r> with r random bits"
            )
        if self.random_bits is not None:
            if self.mode != "stochastic":
                raise FormatError(
                    f"random_bits={self.random_bits} only applies to stochastic rounding, "
                    f"not {self.mode!r}"
                )
            if not 1 <= self.random_bits <= MAX_RANDOM_BITS:
                raise FormatError(
                    f"stochastic<{self.random_bits}>: the number of random bits must be "
                    f"between 1 and {MAX_RANDOM_BITS}; plain 'stochastic' uses all "
                    f"{RANDOM_BITS} random bits of each element"
                )

    @property
    def code(self) -> int:
        return MODE_CODES[self.mode]

    @property
    def is_stochastic(self) -> bool:
        return self.mode == "stochastic"

    def __str__(self) -> str:
        if self.random_bits is not None:
            return f"stochastic<{self.random_bits}>"
        return self.mode


def parse_rounding(value: str | Rounding | None, default: Rounding | None = None) -> Rounding:
    """Turn a rounding name (`nearest`, `stochastic<8>`, ...) or Rounding into a Rounding."""
    if value is None:
        return default if default is not None else Rounding()
    if isinstance(value, Rounding):
        return value
    if not isinstance(value, str):
        raise FormatError(f"rounding must be a name such as 'nearest', not {value!r}")
    text = value.strip().lower()
    match = _STOCHASTIC_BITS.match(text)
    if match:
        return Rounding("stochastic", int(match.group(1)))
    if text in MODE_CODES:
        return Rounding(text)
    from difflib import get_close_matches

    close = get_close_matches(text, [*MODES, "stochastic<8>"], n=3)
    hint = f"; did you mean {' or '.join(close)}?" if close else ""
    raise FormatError(
        f"unknown rounding {value!r}{hint} Valid: {', '.join(MODES)}, stochastic<r>."
    )
