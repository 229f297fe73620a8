"""`quantsim demo`: the main job of `make demo` — a small precision study ending in a report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from quantsim.errors import DataError
from quantsim.formats import QuantStats, parse

STUDIES = Path(__file__).resolve().parents[2] / "studies"
TOUR = ["float32", "bfloat16", "float16", "fp8_e5m2", "fp8_e4m3", "fixed<4,12>", "dfxp<10>",
        "block<8,32>"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the demonstration job of `make demo`: a small "
                       "precision study on Fashion-MNIST that ends in a report")
    p.add_argument("--workers", type=int, default=None, help="parallel runs (default: cores)")
    p.add_argument("--out", default=None, help="report directory (default reports/<study>)")
    p.add_argument("--tour", action="store_true", help="only the quick tour of the formats")
    p.add_argument("--seed", type=int, default=0, help="seed of the formats tour")
    p.set_defaults(func=run)


def formats_tour(seed: int) -> None:
    """Round one Gaussian tensor with wide dynamic range into several formats and report
    what each format does to it: error, flushes to zero, overflows."""
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(1 << 20) * np.exp2(rng.uniform(-20, 12, 1 << 20))).astype(np.float32)
    print(f"1,048,576 float32 values, |x| from {np.abs(x).min():.2g} to {np.abs(x).max():.2g}\n")
    print(f"{'format':<26} {'bits':>4} {'mean rel. error':>16} {'flushed to 0':>13} "
          f"{'overflowed':>11}")
    for spec in TOUR:
        for rounding in ("nearest", "stochastic"):
            fmt = parse(spec).with_rounding(rounding)
            stats = QuantStats()
            fmt.quantize(x, seed=seed, stats=stats)
            finite = stats.count - stats.nan - stats.inf - stats.zero_in
            rel = stats.sum_rel_err / max(1, finite - stats.overflow)
            print(f"{str(fmt):<26} {fmt.bits:>4} {rel:>16.3e} "
                  f"{stats.underflow / stats.count:>12.2%} {stats.overflow / stats.count:>10.2%}")
    print("\nStochastic rounding is unbiased: mean of 100,000 roundings of 0.1 into fixed<4,12>")
    fmt = parse("fixed<4,12>@stochastic")
    mean = fmt.quantize(np.full(100_000, 0.1, dtype=np.float64), seed=seed).mean()
    nearest = parse("fixed<4,12>").quantize(np.array([0.1]))[0]
    print(f"  stochastic mean {mean:.7f}   nearest {nearest:.7f}   exact 0.1")


def choose_study() -> Path:
    """studies/quick.toml when Fashion-MNIST is installed, else the digits fallback."""
    from quantsim.data import load_dataset

    try:
        load_dataset("fashion-mnist", limit=1)
    except DataError as exc:
        print(f"quantsim demo: {exc}\nquantsim demo: running the fallback study on "
              "scikit-learn's digits instead.", file=sys.stderr)
        return STUDIES / "quick-digits.toml"
    return STUDIES / "quick.toml"


def _shown(path: Path) -> Path:
    """`path` relative to the project root when it lies inside it."""
    try:
        return path.resolve().relative_to(STUDIES.parent)
    except ValueError:
        return path


def run(args: argparse.Namespace) -> int:
    if args.tour:
        formats_tour(args.seed)
        return 0
    from quantsim.report import load_report_data, write_report
    from quantsim.study import load_study, run_study

    study_path = choose_study()
    study = load_study(study_path)
    out = Path(args.out or STUDIES.parent / "reports" / study.name)
    print(f"quantsim demo: study {study_path} ({len(study.runs)} runs); finished runs in its "
          "store are kept, so a second `make demo` only redoes the report", file=sys.stderr)
    summary = run_study(study, workers=args.workers)
    command = f"quantsim study run {_shown(study_path)} && quantsim report " \
              f"{_shown(study_path)} -o {_shown(out)}"
    report = write_report(load_report_data(study_path), out, command=command)
    print(f"\nquantsim demo: {summary.counts} — report written to {out / 'index.html'} "
          f"(and index.md, results.csv); sections: {', '.join(report.sections)}")
    return 0 if summary.ok else 1
