"""Number formats: parse a spec, quantize arrays, register your own.

>>> from quantsim.formats import parse
>>> fmt = parse("fixed<4,12>@stochastic")
>>> fmt.quantize(x, seed=0)            # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import numpy as np

from quantsim.formats.base import GridParams, NumberFormat
from quantsim.formats.block import BlockFormat
from quantsim.formats.custom import CustomFormat
from quantsim.formats.fixed import DfxpState, DynamicFixedFormat, FixedFormat
from quantsim.formats.floating import FloatFormat
from quantsim.formats.rounding import MODES, Rounding, parse_rounding
from quantsim.formats.spec import parse, register, registered_formats
from quantsim.formats.stats import QuantStats

__all__ = [
    "MODES", "BlockFormat", "CustomFormat", "DfxpState", "DynamicFixedFormat", "FixedFormat",
    "FloatFormat", "GridParams", "NumberFormat", "QuantStats", "Rounding", "parse",
    "parse_rounding", "quantize", "register", "registered_formats",
]


def quantize(
    x: np.ndarray,
    fmt: str | NumberFormat,
    *,
    rounding: str | Rounding | None = None,
    seed: int | None = None,
    out: np.ndarray | None = None,
    stats: QuantStats | None = None,
    state: Any = None,
) -> np.ndarray:
    """Round `x` into the format `fmt` (a spec string or a NumberFormat)."""
    return parse(fmt).quantize(x, rounding=rounding, seed=seed, out=out, stats=stats, state=state)
