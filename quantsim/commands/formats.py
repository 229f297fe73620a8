"""`quantsim formats`: list every registered number format with its range and precision."""

from __future__ import annotations

import argparse
import json
import math

from quantsim.errors import FormatError
from quantsim.formats import parse, registered_formats

EXAMPLES = ["float<e4m3>", "float<e4m3,nosub>", "float<e3m2>", "fixed<4,12>", "fixed<1,15>",
            "dfxp<10>", "block<8,32>"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("formats", help="list number formats with bits, range and precision")
    p.add_argument("specs", nargs="*", help="specs to describe (default: every registered name "
                   "plus generic examples)")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(func=run)


def describe(spec: str) -> dict:
    fmt = parse(spec)
    return {"spec": spec, "canonical": str(fmt), "bits": fmt.bits, "max": fmt.max,
            "min_normal": fmt.min_normal, "min_subnormal": fmt.min_subnormal, "eps": fmt.eps,
            "kind": type(fmt).__name__}


def _names() -> list[str]:
    names = []
    for name in registered_formats():
        try:
            parse(name)
        except FormatError:
            continue  # parametric families (float, fixed, ...) need arguments
        names.append(name)
    return names + EXAMPLES


def _num(v: float) -> str:
    return "dynamic" if isinstance(v, float) and math.isnan(v) else f"{v:.6g}"


def run(args: argparse.Namespace) -> int:
    rows = [describe(s) for s in (args.specs or _names())]
    if args.json:
        print(json.dumps({"formats": rows}, indent=2))
        return 0
    header = f"{'spec':<20} {'canonical':<20} {'bits':>4} {'max':>13} {'min normal':>13} " \
             f"{'min subnormal':>13} {'eps':>11}"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['spec']:<20} {r['canonical']:<20} {r['bits']:>4} {_num(r['max']):>13} "
              f"{_num(r['min_normal']):>13} {_num(r['min_subnormal']):>13} {_num(r['eps']):>11}")
    print("\nbits include the sign; fixed<IL,FL>: IL integer bits incl. sign, FL fraction bits;"
          " block<M,k> values are relative to the block scale.")
    return 0
