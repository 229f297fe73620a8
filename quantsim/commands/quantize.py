"""`quantsim quantize SPEC VALUE...`: round values and show how (both neighbours if stochastic)."""

from __future__ import annotations

import argparse
import json

import numpy as np

from quantsim.errors import FormatError
from quantsim.formats import QuantStats, parse
from quantsim.formats.rounding import RANDOM_BITS


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("quantize", help="round values into a format")
    p.add_argument("spec", help="format spec, e.g. 'fixed<4,12>@stochastic'")
    p.add_argument("values", nargs="+", help="numbers (decimal, hex float 0x1p-3, inf, nan)")
    p.add_argument("--carrier", choices=["float32", "float64"], default="float32",
                   help="carrier dtype of the input (default float32)")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(func=run)


def _value(text: str) -> float:
    try:
        return float.fromhex(text) if "0x" in text.lower() else float(text)
    except ValueError:
        raise FormatError(f"cannot read {text!r} as a number; e.g. 0.1, -3e-5, 0x1p-3, inf") \
            from None


def stochastic_rows(fmt, x: np.ndarray) -> list[dict]:
    """Both neighbours of each x and their probabilities, as the kernel decides them:
    P(away from zero) = frac floored to r bits (32 for plain stochastic) on the magnitude
    (floats) or on the signed value (two's complement formats)."""
    inner = fmt.quantize(x, rounding="toward_zero").astype(float)
    outer = np.where(np.signbit(x), fmt.quantize(x, rounding="down"),
                     fmt.quantize(x, rounding="up")).astype(float)
    ax, gap = np.abs(x.astype(float)), np.abs(outer - inner)
    with np.errstate(invalid="ignore", divide="ignore"):
        p_away = np.where(gap > 0, (ax - np.abs(inner)) / np.where(gap > 0, gap, 1), 0.0)
    bits = fmt.rounding.random_bits or RANDOM_BITS
    floor_bits = lambda p: np.floor(p * 2.0**bits) / 2.0**bits  # noqa: E731
    # two's complement hardware draws on the signed value: P(toward +inf) is floored
    signed = fmt.twos_complement & (x < 0)
    p_away = np.where(signed, 1 - floor_bits(1 - p_away), floor_bits(p_away))
    rows = []
    for xi, a, b, p in zip(x.astype(float), inner, outer, p_away, strict=True):
        lo, hi, p_hi = (a, b, p) if xi >= 0 else (b, a, 1 - p)
        rows.append({"x": float(xi), "down": float(lo), "p_down": float(1 - p_hi),
                     "up": float(hi), "p_up": float(p_hi)})
    return rows


def _note(fmt, x: np.ndarray, result: float) -> str:
    """What happened to the single value `x`, as the kernel's own counters report it."""
    stats = QuantStats()
    fmt.with_rounding("nearest").quantize(x, stats=stats)
    if stats.nan or stats.inf:
        return "non-finite input"
    if stats.overflow:
        return "overflow"
    if stats.underflow:
        return "flushed to zero"
    xi = float(x[0])
    return "exact" if result == xi else f"error {result - xi:+.3g}"


def run(args: argparse.Namespace) -> int:
    fmt = parse(args.spec)
    x = np.array([_value(v) for v in args.values], dtype=args.carrier)
    if fmt.rounding.is_stochastic:
        rows = stochastic_rows(fmt, x)
    else:
        q = fmt.quantize(x).astype(float)
        rows = [{"x": float(x[i]), "result": float(q[i]), "note": _note(fmt, x[i:i + 1], q[i])}
                for i in range(x.size)]
    if args.json:
        print(json.dumps({"format": str(fmt), "values": rows}))
        return 0
    print(f"format {fmt}  (bits={fmt.bits}, max={fmt.max:.6g}, eps={fmt.eps:.6g})")
    for r in rows:
        if "result" in r:
            print(f"  {r['x']:>.9g} -> {r['result']:.9g}   ({r['note']})")
        elif r["down"] == r["up"] or np.isnan(r["x"]):
            note = _note(fmt, np.array([r["x"]], dtype=args.carrier), r["down"])
            print(f"  {r['x']:>.9g} -> {r['down']:.9g}   ({note})")
        else:
            print(f"  {r['x']:>.9g} -> {r['down']:.9g} with p={r['p_down']:.6g}, "
                  f"{r['up']:.9g} with p={r['p_up']:.6g}")
    return 0
