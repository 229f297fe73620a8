"""The `quantsim` command. Each subcommand lives in `quantsim/commands/<name>.py` and defines
`add_parser(subparsers)` (which sets `func`) — this module only discovers and dispatches."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from quantsim.errors import QuantsimError


def build_parser() -> argparse.ArgumentParser:
    import quantsim.commands as commands

    parser = argparse.ArgumentParser(
        prog="quantsim", description="Low-precision, hardware-aware deep-learning simulator."
    )
    from quantsim import __version__

    parser.add_argument("--version", action="version", version=f"quantsim {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"quantsim.commands.{info.name}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except QuantsimError as exc:
        print(f"quantsim {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"quantsim {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
