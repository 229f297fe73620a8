"""`quantsim report STORE_OR_STUDY -o reports/NAME`: a comparison report (Markdown with PNG
figures, self-contained HTML, results.csv) from a study's results store. See docs/reports.md."""

from __future__ import annotations

import argparse
import shlex
import sys


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report", help="render a comparison report (table, figures) from a study's results",
        description="Render a comparison report from a results store (or a study file, whose "
                    "store is found next to it): index.md with PNG figures, a self-contained "
                    "index.html and results.csv in the output directory.")
    p.add_argument("source", metavar="STORE_OR_STUDY",
                   help="results store (*.sqlite) or study file (*.toml)")
    p.add_argument("-o", "--out", required=True, metavar="DIR",
                   help="output directory, e.g. reports/smoke (created; an earlier report "
                        "there is replaced)")
    p.add_argument("--store", metavar="PATH",
                   help="with a study file: its results store (default: FILE's name with "
                        ".results.sqlite)")
    p.add_argument("--study", metavar="NAME",
                   help="the study to report when the store holds several")
    ref = p.add_mutually_exclusive_group()
    ref.add_argument("--reference", metavar="CSV",
                     help="published numbers to compare with (default: the study's "
                          "`reference` file)")
    ref.add_argument("--no-reference", action="store_true",
                     help="do not compare with published numbers")
    p.add_argument("--findings", metavar="FILE.md",
                   help="hand-written analysis (Markdown) to show under 'Findings', e.g. "
                        "reports/NAME/FINDINGS.md")
    p.set_defaults(func=cmd_report)


def command_line(args: argparse.Namespace) -> str:
    parts = ["quantsim", "report", args.source, "-o", args.out]
    if args.store:
        parts += ["--store", args.store]
    if args.study:
        parts += ["--study", args.study]
    if args.reference:
        parts += ["--reference", args.reference]
    if args.no_reference:
        parts.append("--no-reference")
    if args.findings:
        parts += ["--findings", args.findings]
    return shlex.join(parts)


def cmd_report(args: argparse.Namespace) -> int:
    from quantsim.report import load_report_data, read_findings, write_report

    reference = False if args.no_reference else args.reference
    data = load_report_data(args.source, store=args.store, study=args.study,
                            reference=reference)
    if args.findings:
        data.findings = read_findings(args.findings)
    report = write_report(data, args.out, command=command_line(args))
    print(f"wrote {report.html}, {report.markdown} ({len(report.figures)} figures) and "
          f"{report.csv}", file=sys.stderr)
    for title, reason in report.omitted:
        print(f"  omitted: {title}: {reason}", file=sys.stderr)
    return 0
