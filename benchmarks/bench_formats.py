"""Quantization throughput of quantsim's CPU kernels next to np.copyto and peer casts.

Run: .venv/bin/python benchmarks/bench_formats.py [--size 1e6] [--repeats 7] [--json]

For each format x rounding (nearest, stochastic; and each again with statistics counted) it
reports million elements per second and the ratio to `np.copyto` of the same float32 array,
measured in the same run: to the copies timed in turn with the case (as many calls, same
conditions; the memory-speed target: >= 0.8x copy) and to the best copy of the whole run.
Peers: numpy's float16 cast, ml_dtypes casts, and QPyTorch's float_quantize /
fixed_point_quantize when importable. Casts write 1- or 2-byte outputs (less memory traffic
than a float32 carrier round trip); QPyTorch, like quantsim, writes float32. Numba compilation
is excluded (one warm-up call per case).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

# As quantsim sets it on import (quantsim/__init__.py), before numpy loads OpenBLAS: BLAS threads
# that spin for ~2**28 cycles after each product slow numba's and PyTorch's threads in this
# process; both sides of every comparison run with the same setting.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))

from _common import (  # noqa: E402
    base_parser,
    emit_json,
    format_table,
    machine_facts,
    print_facts,
    time_best,
    time_paired,
)

from quantsim.formats import QuantStats, parse  # noqa: E402

FORMATS = ["float16", "bfloat16", "fp8_e4m3", "fixed<4,12>", "dfxp<16>", "block<8,32>"]
ROUNDINGS = ["nearest", "stochastic"]
TARGET = 0.8


def make_data(n: int, seed: int = 0) -> np.ndarray:
    """Normal data spread over 16 binades (x * 2**k, k uniform in [-8, 8))."""
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(n) * np.exp2(rng.integers(-8, 8, n))).astype(np.float32)


def bench_quantsim(x, out, repeats, copy_s) -> list[dict[str, Any]]:
    n = x.size
    rows = []
    for spec in FORMATS:
        fmt = parse(spec)
        for rounding in ROUNDINGS:
            state = fmt.new_state()  # dynamic fixed point: calibrated once, as a QuantPoint does
            row: dict[str, Any] = {"format": spec, "rounding": rounding}
            def run(stats=None, fmt=fmt, rounding=rounding, state=state):
                return fmt.quantize(x, rounding=rounding, seed=1, out=out, stats=stats,
                                    state=state)

            t, paired = time_paired(run, lambda: np.copyto(out, x), repeats)
            ts = time_best(lambda run=run: run(QuantStats()), repeats)
            copy_s = min(copy_s, paired["best_s"])
            row.update(
                melem_s=n / t["best_s"] / 1e6, best_s=t["best_s"], median_s=t["median_s"],
                stats_melem_s=n / ts["best_s"] / 1e6, stats_best_s=ts["best_s"],
                stats_slowdown=ts["best_s"] / t["best_s"],
                paired_copy_s=paired["best_s"],
                ratio_to_paired_copy=paired["best_s"] / t["best_s"],
            )
            rows.append(row)
    for row in rows:
        row["ratio_to_copy"] = copy_s / row["best_s"]
        row["stats_ratio_to_copy"] = copy_s / row["stats_best_s"]
        row["meets_target"] = row["ratio_to_paired_copy"] >= TARGET
    return rows, copy_s


def bench_casts(x, repeats) -> list[dict[str, Any]]:
    n = x.size
    peers = [("numpy", "astype(float16)", lambda: x.astype(np.float16))]
    try:
        import ml_dtypes

        for name in ("bfloat16", "float8_e4m3fn", "float8_e5m2"):
            dt = getattr(ml_dtypes, name)
            peers.append(("ml_dtypes", f"astype({name})", lambda dt=dt: x.astype(dt)))
    except ImportError:
        peers.append(("ml_dtypes", "not installed", None))
    rows = []
    for lib, what, fn in peers:
        if fn is None:
            rows.append({"library": lib, "operation": what, "melem_s": None})
            continue
        t = time_best(fn, repeats)
        rows.append({"library": lib, "operation": what, "rounding": "nearest",
                     "melem_s": n / t["best_s"] / 1e6, "best_s": t["best_s"]})
    return rows


def bench_qpytorch(x, repeats) -> tuple[list[dict[str, Any]], str]:
    try:
        import torch
        from qtorch.quant import fixed_point_quantize, float_quantize
    except Exception as exc:  # ImportError, or the C++ extension failing to build
        return [], f"QPyTorch: not installed ({type(exc).__name__})"
    n = x.size
    xt = torch.from_numpy(x)
    cases = [
        ("float_quantize(exp=5, man=10)", "float16",
         lambda r: float_quantize(xt, exp=5, man=10, rounding=r)),
        ("float_quantize(exp=8, man=7)", "bfloat16",
         lambda r: float_quantize(xt, exp=8, man=7, rounding=r)),
        ("float_quantize(exp=4, man=3)", "float<e4m3>",
         lambda r: float_quantize(xt, exp=4, man=3, rounding=r)),
        ("fixed_point_quantize(wl=16, fl=12)", "fixed<4,12>",
         lambda r: fixed_point_quantize(xt, wl=16, fl=12, rounding=r)),
    ]
    rows = []
    for what, like, fn in cases:
        for rounding in ROUNDINGS:
            t = time_best(lambda fn=fn, rounding=rounding: fn(rounding), repeats, budget_s=10.0)
            rows.append({"library": "QPyTorch", "operation": what, "like": like,
                         "rounding": rounding, "melem_s": n / t["best_s"] / 1e6,
                         "best_s": t["best_s"]})
    try:  # qtorch has no __version__
        from importlib.metadata import version as dist_version

        version = dist_version("qtorch")
    except Exception:  # noqa: BLE001 - a version string is all we want
        version = "?"
    threads = torch.get_num_threads()
    return rows, f"QPyTorch {version} (torch {torch.__version__}, {threads} threads)"


def main(argv=None) -> int:
    args = base_parser(__doc__.splitlines()[0], 1 << 24).parse_args(argv)
    n = int(args.size)
    x = make_data(n)
    out = np.empty_like(x)
    copy = time_best(lambda: np.copyto(out, x), args.repeats)
    rows, copy_s = bench_quantsim(x, out, args.repeats, copy["best_s"])
    casts = bench_casts(x, args.repeats)
    qrows, qnote = bench_qpytorch(x, args.repeats)
    for r in casts + qrows:
        if r.get("best_s"):
            r["ratio_to_copy"] = copy_s / r["best_s"]
    facts = machine_facts()
    doc = {"benchmark": "bench_formats", "elements": n, "dtype": "float32",
           "copy": {"best_s": copy_s, "melem_s": n / copy_s / 1e6}, "target_ratio": TARGET,
           "quantsim": rows, "peers": casts + qrows, "qpytorch": qnote, "facts": facts,
           "command": " ".join([os.path.basename(sys.executable)] + sys.argv)}
    if args.json:
        emit_json(doc)
        return 0
    print_facts(facts)
    print(f"\n{n:,} float32 elements; np.copyto: {n / copy_s / 1e6:,.0f} Melem/s "
          f"(best of the run). 'x paired copy': to the copies timed in turn with the case "
          f"(same number of calls; the target, >= {TARGET}x); 'x best copy': to the best copy "
          "of the run.\n")
    table = [
        [r["format"], r["rounding"], r["melem_s"], r["ratio_to_paired_copy"],
         r["ratio_to_copy"], "yes" if r["meets_target"] else "NO", r["stats_melem_s"],
         r["stats_ratio_to_copy"], r["stats_slowdown"]]
        for r in rows
    ]
    print(format_table(["quantsim format", "rounding", "Melem/s", "x paired copy",
                        "x best copy", ">=0.8", "stats Melem/s", "x best copy",
                        "stats/off time"], table))
    print()
    peer_table = [[r["library"], r["operation"], r.get("rounding", "-"), r["melem_s"],
                   r.get("ratio_to_copy")] for r in casts + qrows]
    print(format_table(["peer", "operation", "rounding", "Melem/s", "x copy"], peer_table))
    print(f"\n{qnote}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
