"""`quantsim study run|status|list|export`: precision studies (grids of training runs) with a
resumable SQLite results store. See docs/studies.md."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("study", help="run, resume and inspect precision studies (grids of runs)",
                       description="Precision studies: a TOML file describes a grid of training "
                                   "runs; results go to a SQLite store (default: next to the "
                                   "study file). Running a study again resumes it.")
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])
    ss = p.add_subparsers(dest="study_command", metavar="SUBCOMMAND")

    r = ss.add_parser("run", help="run (or resume) every unfinished run of a study")
    r.add_argument("file", metavar="FILE", help="study file, e.g. studies/smoke.toml")
    _store_arg(r)
    r.add_argument("--workers", type=int, metavar="N",
                   help="parallel runs (default: one per core, at most the runs to do)")
    r.add_argument("--executor", choices=["local", "ray"], default="local",
                   help="local process pool (default) or Ray tasks")
    r.add_argument("--address", metavar="ADDR",
                   help="Ray cluster address (e.g. ray://head:10001 or auto); default: start a "
                        "local Ray instance")
    r.add_argument("--retry-failed", action="store_true",
                   help="also rerun runs that failed (from their last checkpoint)")
    r.add_argument("--rerun", metavar="GLOB",
                   help="run again from scratch the runs whose label matches GLOB (e.g. "
                        "'dfxp*'), replacing their stored results")
    r.add_argument("--quiet", action="store_true", help="no progress lines")
    _runner_arg(r)
    r.set_defaults(func=cmd_run)

    s = ss.add_parser("status", help="per-run status, best test error and epochs done")
    s.add_argument("file", metavar="FILE")
    _store_arg(s)
    s.add_argument("--json", action="store_true", help="print one JSON document")
    _runner_arg(s)
    s.set_defaults(func=cmd_status)

    ls = ss.add_parser("list", help="studies in a directory with their descriptions and sizes")
    ls.add_argument("--dir", default="studies", metavar="DIR", help="default: studies/")
    ls.add_argument("--json", action="store_true", help="print one JSON document")
    ls.set_defaults(func=cmd_list)

    e = ss.add_parser("export", help="write results, history or statistics to CSV / Parquet")
    e.add_argument("file", metavar="FILE")
    _store_arg(e)
    e.add_argument("--out", required=True, metavar="PATH",
                   help="output file; .csv or .parquet (Parquet needs pyarrow)")
    e.add_argument("--what", choices=["results", "history", "stats"], default="results",
                   help="one row per run (default), per epoch, or the statistics")
    e.set_defaults(func=cmd_export)


def _runner_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--runner", default="quantsim.runner", metavar="MODULE",
                   help="module providing RunConfig and run (default quantsim.runner)")


def _store_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", metavar="PATH",
                   help="results store (default: FILE's name with .results.sqlite)")


def cmd_run(args: argparse.Namespace) -> int:
    from quantsim.study import load_study, run_study

    study = load_study(args.file, runner=args.runner)
    summary = run_study(study, args.store, workers=args.workers, executor=args.executor,
                        address=args.address, retry_failed=args.retry_failed,
                        rerun=args.rerun, runner=args.runner,
                        progress=None if args.quiet else sys.stderr)
    if summary.interrupted:
        print(f"quantsim study: interrupted; finished epochs are kept in {summary.store}. "
              f"Run the same command again to resume.", file=sys.stderr)
        return 130
    return 0 if summary.ok else 1


def _fmt(v: Any, spec: str = ".4f") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return format(v, spec)


def cmd_status(args: argparse.Namespace) -> int:
    from quantsim.study import load_study, study_status

    study = load_study(args.file, runner=args.runner)
    st = study_status(study, args.store)
    if args.json:
        print(json.dumps(st, indent=2))
        return 0
    print(f"study {st['study']}: {st['description']}")
    print(f"store {st['store']}")
    width = max([5] + [len(r["label"]) for r in st["runs"]])
    header = (f"{'label':<{width}} {'seed':>4} {'status':<11} {'epochs':>7} "
              f"{'test_error':>10} {'best':>4} {'seconds':>8}")
    print(header)
    print("-" * len(header))
    for r in st["runs"]:
        epochs = f"{r['epochs_done']}/{r['epochs'] or '?'}"
        print(f"{r['label']:<{width}} {r['seed']:>4} {r['status']:<11} {epochs:>7} "
              f"{_fmt(r['test_error']):>10} {_fmt(r['best_epoch'], 'd'):>4} "
              f"{_fmt(r['seconds'], '.1f'):>8}")
        if r["status"] == "failed" and r["error"]:
            print(f"    error: {r['error'].strip().splitlines()[-1][:160]}")
        if r["notes"]:
            for line in r["notes"].splitlines():
                print(f"    note: {line[:160]}")
    print(f"{len(st['runs'])} runs: " + ", ".join(f"{n} {s}"
                                                  for s, n in sorted(st["counts"].items())))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from quantsim.study import list_studies

    rows = list_studies(args.dir)
    if args.json:
        print(json.dumps({"studies": rows}, indent=2))
        return 0
    if not rows:
        print(f"no study files (*.toml) in {Path(args.dir)}")
        return 0
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        if r["error"]:
            print(f"{r['name']:<{width}}  INVALID  {r['error']}")
        else:
            print(f"{r['name']:<{width}}  {r['runs']:>4} runs  {r['description']}  "
                  f"({r['path']})")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from quantsim.study import default_store_path, export, load_study

    store = args.store or default_store_path(load_study(args.file).path)
    out = export(store, args.out, what=args.what)
    print(f"wrote {out}")
    return 0
