"""Helpers shared by the benchmark scripts: machine facts, timing, tables and --json output.

Benchmarks compare ratios measured in one run (absolute numbers drift on shared machines):
every script measures its baseline (e.g. `np.copyto`) in the same process, next to the code
under test, warms up first (numba compiles on the first call) and keeps the best of several
repeats.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any


def cpu_model() -> str:
    """The processor's model name (from /proc/cpuinfo where available)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_facts() -> dict[str, Any]:
    """BLAS and threading facts that explain a run's numbers."""
    import numba
    import numpy as np

    facts: dict[str, Any] = {
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "numba": numba.__version__,
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "numba_threads": numba.get_num_threads(),
        "numba_threading_layer": _numba_layer(),
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
        "OPENBLAS_THREAD_TIMEOUT": os.environ.get("OPENBLAS_THREAD_TIMEOUT"),
        "OPENBLAS_L2_SIZE": os.environ.get("OPENBLAS_L2_SIZE"),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }
    try:
        from threadpoolctl import threadpool_info

        facts["threadpools"] = [
            {k: v for k, v in info.items() if k in (
                "user_api", "internal_api", "num_threads", "version", "architecture",
                "threading_layer", "filepath")}
            for info in threadpool_info()
        ]
    except ImportError:  # pragma: no cover - threadpoolctl is a dev dependency
        facts["threadpools"] = "threadpoolctl not installed"
    return facts


def _numba_layer() -> str:
    import numba

    try:
        return str(numba.threading_layer())
    except ValueError:  # no parallel function has run yet
        return "not initialised yet"


def print_facts(facts: dict[str, Any], file=sys.stdout) -> None:
    print("Machine and threading facts", file=file)
    for key, value in facts.items():
        if key == "threadpools":
            continue
        print(f"  {key:22s} {value}", file=file)
    pools = facts.get("threadpools")
    if isinstance(pools, list):
        if not pools:
            print("  threadpools            none loaded", file=file)
        for p in pools:
            print(f"  threadpool             {p.get('internal_api')} {p.get('version')} "
                  f"threads={p.get('num_threads')} arch={p.get('architecture')} "
                  f"({p.get('user_api')})", file=file)
    else:
        print(f"  threadpools            {pools}", file=file)
    if facts.get("OPENBLAS_CORETYPE"):
        print("  note: OPENBLAS_CORETYPE is set; it slows BLAS (not these kernels). "
              "Unset it together with OPENBLAS_L2_SIZE for BLAS timings.", file=file)


def time_best(fn: Callable[[], Any], repeats: int = 7, warmup: int = 1,
              budget_s: float = 20.0) -> dict[str, float]:
    """Best and median wall time of `fn()` over `repeats` calls after `warmup` calls.

    Stops early (after at least 2 timed calls) once `budget_s` seconds have been spent, so that
    slow peers do not dominate a run.
    """
    for _ in range(warmup):
        fn()
    times: list[float] = []
    start = time.perf_counter()
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        if len(times) >= 2 and time.perf_counter() - start > budget_s:
            break
    return {"best_s": min(times), "median_s": statistics.median(times), "calls": len(times)}


def time_paired(fn: Callable[[], Any], ref: Callable[[], Any], repeats: int = 7,
                warmup: int = 1) -> tuple[dict[str, float], dict[str, float]]:
    """`time_best` of `fn` and of `ref`, their calls alternating (ref, fn, ref, fn, ...): both
    get the same number of samples under the same conditions, so the ratio of their best
    times is not biased by a reference timed many more times than the case (a best of 84
    copies against a best of 7 calls put the cases 5-15 % lower relative to the copy)."""
    for _ in range(warmup):
        ref()
        fn()
    fn_times: list[float] = []
    ref_times: list[float] = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        ref()
        t1 = time.perf_counter()
        fn()
        t2 = time.perf_counter()
        ref_times.append(t1 - t0)
        fn_times.append(t2 - t1)
    return ({"best_s": min(fn_times), "median_s": statistics.median(fn_times),
             "calls": len(fn_times)},
            {"best_s": min(ref_times), "median_s": statistics.median(ref_times),
             "calls": len(ref_times)})


def base_parser(description: str, default_size: int) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--size", type=float, default=default_size,
                        help=f"elements per array (default {default_size:,}; 1e6 for a quick run)")
    parser.add_argument("--repeats", type=int, default=7, help="timed calls per case (best kept)")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON document instead of the tables")
    return parser


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain-text table with right-aligned numeric columns."""
    cells = [[str(h) for h in headers]] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for n, row in enumerate(cells):
        parts = []
        for i, v in enumerate(row):
            numeric = n > 0 and not isinstance(rows[n - 1][i], str)
            parts.append(v.rjust(widths[i]) if numeric else v.ljust(widths[i]))
        lines.append("  ".join(parts).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.2f}"
    return str(v)


def emit_json(doc: dict[str, Any]) -> None:
    json.dump(doc, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")
