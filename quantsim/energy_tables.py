"""Per-operation energy tables for the hardware cost model, and the rule for other widths.

Built-in table: ``HOROWITZ_2014``, the 45 nm (0.9 V) numbers of
M. Horowitz, "Computing's energy problem (and what we can do about it)", IEEE ISSCC 2014,
Digest of Technical Papers, pp. 10-14 (the energy table of Fig. 1.1.9):

==========================  ======  ==========================  ======
integer add, 8 bit          0.03 pJ  float add, 16 bit           0.4 pJ
integer add, 32 bit         0.1 pJ   float add, 32 bit           0.9 pJ
integer multiply, 8 bit     0.2 pJ   float multiply, 16 bit      1.1 pJ
integer multiply, 32 bit    3.1 pJ   float multiply, 32 bit      3.7 pJ
SRAM (cache) 8 KB, 64 bit   10 pJ    SRAM 32 KB, 64 bit          20 pJ
SRAM 1 MB, 64 bit           100 pJ   DRAM, 64 bit                1.3-2.6 nJ
==========================  ======  ==========================  ======

Only these numbers are published; 16-bit integer operations are *not* in the table and come
from the width rule below like every other width. DRAM is quoted as a range; the table uses its
low end (1300 pJ per 64 bits), so DRAM energy is a lower bound.

Width rule (documented in docs/statistics.md, tested in tests/test_hardware.py): an operation of
width ``w`` takes the energy of the published entry of the same kind (integer / float, add /
multiply) whose width ``a`` is nearest to ``w`` on a log scale (ties: the wider entry), scaled as

- adders: ``E(w) = E(a) * (w / a)``, ``w`` = total bits (energy grows linearly with the width);
- multipliers: ``E(w) = E(a) * (w / a) ** 2``, ``w`` = significand bits (array multiplier area
  grows with the square of the significand): integer ``bits``, float ``mbits + 1`` (hidden bit
  included; float16 has 11, float32 24).

Published widths give back exactly the published numbers. The rule is a first-order model: the
exponent logic of float multipliers is ignored (so it under-estimates narrow float multipliers
relative to the 32-bit entry), and energies are those of 45 nm.

User tables: a dict with the same keys (any subset overrides the built-in entries) or a TOML file
/ text such as::

    source = "my 7 nm numbers"
    [int_mult]
    8 = 0.05
    [memory_per_64bit]
    sram_32kb = 5.0
"""

from __future__ import annotations

import copy
import math
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["HOROWITZ_2014", "KINDS", "EnergyTable", "load_energy_table", "scale_energy"]

HOROWITZ_2014: dict[str, Any] = {
    "source": (
        "M. Horowitz, 'Computing's energy problem (and what we can do about it)', "
        "ISSCC 2014, pp. 10-14, Fig. 1.1.9; 45 nm, 0.9 V; DRAM at the low end of 1.3-2.6 nJ"
    ),
    "units": "pJ",
    # width (bits) -> pJ per operation. Multiplier widths are significand bits: integer bits,
    # float mbits + 1 (float16: 11, float32: 24); adder widths are total bits.
    "int_add": {8: 0.03, 32: 0.1},
    "int_mult": {8: 0.2, 32: 3.1},
    "float_add": {16: 0.4, 32: 0.9},
    "float_mult": {11: 1.1, 24: 3.7},
    # pJ per 64-bit access
    "memory_per_64bit": {"sram_8kb": 10.0, "sram_32kb": 20.0, "sram_1mb": 100.0, "dram": 1300.0},
}

KINDS = ("int_add", "int_mult", "float_add", "float_mult")
_EXPONENT = {"int_add": 1, "float_add": 1, "int_mult": 2, "float_mult": 2}


def scale_energy(anchors: Mapping[int, float], width: float, exponent: int) -> float:
    """Energy at ``width`` from the nearest published ``anchors`` (log distance, ties to the
    wider one), scaled by ``(width / anchor) ** exponent``."""
    if not anchors:
        raise ValueError("energy table has no entries for this operation")
    if not width > 0:
        raise ValueError(f"operation width must be positive, got {width!r}")
    best = min(anchors, key=lambda a: (abs(math.log2(width / a)), -a))
    return float(anchors[best]) * (width / best) ** exponent


class EnergyTable:
    """Energies in pJ: ``op(kind, width)`` for arithmetic, ``memory_per_bit(level)``."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.data = data
        self.source = str(data.get("source", "user table"))

    def op(self, kind: str, width: float) -> float:
        """pJ of one ``kind`` operation (``int_add``, ``int_mult``, ``float_add``,
        ``float_mult``) at ``width`` bits (see the module docstring for which width)."""
        if kind not in KINDS:
            raise ValueError(f"unknown operation {kind!r}; known: {', '.join(KINDS)}")
        return scale_energy(self.data[kind], width, _EXPONENT[kind])

    def memory_per_bit(self, level: str) -> float:
        """pJ per bit read or written at memory ``level`` (the 64-bit access energy / 64)."""
        mem = self.data["memory_per_64bit"]
        if level not in mem:
            raise ValueError(f"unknown memory level {level!r}; known: {', '.join(mem)}")
        return float(mem[level]) / 64.0

    @property
    def memory_levels(self) -> tuple[str, ...]:
        return tuple(self.data["memory_per_64bit"])

    def __repr__(self) -> str:
        return f"EnergyTable(source={self.source!r})"


def _normalise(d: Mapping[str, Any], where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in d.items():
        if key in ("source", "units"):
            out[key] = str(value)
        elif key in KINDS:
            if not isinstance(value, Mapping):
                raise ValueError(f"{where}: [{key}] must map widths to pJ, got {value!r}")
            entries = {}
            for w, e in value.items():
                try:
                    width, energy = int(w), float(e)
                except (TypeError, ValueError):
                    raise ValueError(
                        f"{where}: [{key}] entry {w!r} = {e!r}: use an integer width and a "
                        "number of pJ"
                    ) from None
                if width < 1 or energy < 0:
                    raise ValueError(f"{where}: [{key}] {w} = {e}: width >= 1, energy >= 0")
                entries[width] = energy
            out[key] = entries
        elif key == "memory_per_64bit":
            if not isinstance(value, Mapping):
                raise ValueError(f"{where}: [memory_per_64bit] must map levels to pJ")
            out[key] = {str(k): float(v) for k, v in value.items()}
        else:
            raise ValueError(
                f"{where}: unknown key {key!r}; known: source, units, "
                f"{', '.join(KINDS)}, memory_per_64bit"
            )
    return out


def load_energy_table(source: Any = None) -> EnergyTable:
    """The built-in table (``None``), an :class:`EnergyTable`, or a user table: a dict, a TOML
    file path, or TOML text. User entries override the built-in ones key by key (an operation
    table given by the user replaces that operation's built-in entries entirely)."""
    if source is None:
        return EnergyTable(copy.deepcopy(HOROWITZ_2014))
    if isinstance(source, EnergyTable):
        return source
    where = "energy table"
    if isinstance(source, (str, Path)):
        text = None
        if isinstance(source, Path) or ("\n" not in source and "=" not in source):
            where = f"energy table {str(source)!r}"
            try:
                text = Path(source).read_text(encoding="utf-8")
            except OSError as exc:
                raise ValueError(f"cannot read {where}: {exc}") from exc
        else:
            text = source
        try:
            source = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{where} is not valid TOML: {exc}") from exc
    if not isinstance(source, Mapping):
        raise ValueError(f"{where}: expected a dict, a TOML path or TOML text, got {source!r}")
    user = _normalise(source, where)
    data = copy.deepcopy(HOROWITZ_2014)
    data["source"] = "user table"
    for key, value in user.items():
        if key == "memory_per_64bit":
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return EnergyTable(data)
