"""`quantsim demo`: the main job of `make demo`."""

from __future__ import annotations

import argparse

import numpy as np

from quantsim.formats import QuantStats, parse

TOUR = ["float32", "bfloat16", "float16", "fp8_e5m2", "fp8_e4m3", "fixed<4,12>", "dfxp<10>",
        "block<8,32>"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the demonstration job of `make demo`")
    p.add_argument("--seed", type=int, default=0)
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


def run(args: argparse.Namespace) -> int:
    print("quantsim demo: a tour of the number formats\n")
    formats_tour(args.seed)
    return 0
