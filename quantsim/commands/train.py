"""`quantsim train NETWORK --data DATASET`: one training run with progress and final metrics."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from quantsim.errors import QuantsimError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train", help="train a standard workload once and print its test metrics",
        description="Train a workload from networks/ (see `networks/README.md`) on a data set. "
                    "Options left out take the workload's defaults.",
    )
    p.add_argument("network", metavar="NETWORK",
                   help="workload name, e.g. mlp, lenet5, lstm-rows, maxout-mlp, char-lstm")
    p.add_argument("--data", required=True, metavar="DATASET",
                   help="data set: fashion-mnist, mnist, digits, mnist-5k, cifar10, svhn or "
                        "text:PATH")
    p.add_argument("--epochs", type=int, metavar="N", help="epochs (default: the workload's)")
    p.add_argument("--batch-size", type=int, metavar="B", help="mini-batch size")
    p.add_argument("--limit", type=int, metavar="N", help="use only the first N training "
                   "examples (validation and test sets are kept whole)")
    p.add_argument("--precision", default="float32", metavar="SPEC",
                   help="precision policy, e.g. 'default=float32,activations=fp8_e4m3"
                        "@stochastic,updates=fixed<4,12>' (default float32)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="seed (default 0)")
    p.add_argument("--lr", type=float, metavar="LR", help="learning rate (the default "
                   "optimizer and schedule stay)")
    p.add_argument("--lr-decay", type=float, metavar="GAMMA",
                   help="multiply the learning rate by GAMMA every epoch (exponential "
                        "schedule; 1 = constant); default: the workload's schedule")
    p.add_argument("--optimizer", choices=["sgd", "adam"],
                   help="optimizer (default: the workload's)")
    p.add_argument("--device", default="cpu", metavar="DEVICE",
                   help="cpu (default), cuda or cuda:N (GPU N; needs quantsim[cuda], see "
                        "docs/gpu.md); an unusable device is an error, never a CPU fallback")
    p.add_argument("--validation", type=float, metavar="V",
                   help="validation examples: a count (>= 1) or a fraction (< 1); 0 for none")
    p.add_argument("--data-dir", metavar="DIR", help="directory holding the data set files")
    p.add_argument("--patience", type=int, metavar="N", help="stop after N epochs without a "
                   "better validation metric")
    p.add_argument("-o", "--option", action="append", default=[], metavar="KEY=VALUE",
                   help="network option (repeatable), e.g. -o variant=cifar -o dropout=0.5; "
                        "VALUE is read as JSON when it parses, else as a string")
    p.add_argument("--stats", metavar="FILE.csv", help="collect quantization statistics and "
                   "write them as a tidy CSV (run, epoch, layer, role, statistic, value)")
    p.add_argument("--stats-every", type=int, default=25, metavar="K",
                   help="count statistics on a pseudo-random 1 in K of each point's quantizing "
                        "calls, plus the first of each epoch (default 25; 1 = every call, exact "
                        "counts)")
    p.add_argument("--cost", action="store_true", help="print the hardware cost summary")
    p.add_argument("--checkpoint-dir", metavar="DIR", help="save a checkpoint every epoch")
    p.add_argument("--resume", action="store_true", help="continue from --checkpoint-dir")
    p.add_argument("--quiet", action="store_true", help="no per-epoch progress on stderr")
    p.add_argument("--json", action="store_true",
                   help="make the last line of stdout one JSON object with the result")
    p.set_defaults(func=run)


def _option(text: str) -> tuple[str, Any]:
    from quantsim.runner import ConfigError

    key, eq, value = text.partition("=")
    if not eq or not key.strip():
        raise ConfigError(f"--option {text!r}: write KEY=VALUE, e.g. -o variant=cifar")
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        parsed = value
    return key.strip(), parsed


def config_from_args(args: argparse.Namespace) -> Any:
    from quantsim.runner import RunConfig

    optimizer: dict[str, Any] | None = None
    if args.optimizer or args.lr is not None:
        optimizer = {}
        if args.optimizer:
            optimizer["name"] = args.optimizer
        if args.lr is not None:
            optimizer["lr"] = args.lr
    validation: int | float | None = args.validation
    if validation is not None and (validation >= 1 or validation == 0):
        validation = int(validation)
    schedule = None
    if args.lr_decay is not None:
        schedule = {"name": "exponential", "gamma": args.lr_decay}
    return RunConfig.from_dict({
        "network": args.network, "dataset": args.data, "epochs": args.epochs, "schedule": schedule,
        "batch_size": args.batch_size, "limit": args.limit, "precision": args.precision,
        "seed": args.seed, "optimizer": optimizer, "device": args.device,
        "validation": validation, "data_dir": args.data_dir, "patience": args.patience,
        "network_options": dict(_option(o) for o in args.option),
        "stats": bool(args.stats), "stats_every": args.stats_every, "cost": args.cost,
    })


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.2f}%"


def run(args: argparse.Namespace) -> int:
    from quantsim.runner import ConfigError
    from quantsim.runner import run as run_config

    if args.resume and not args.checkpoint_dir:
        raise ConfigError("--resume needs --checkpoint-dir DIR")
    cfg = config_from_args(args)
    result = run_config(cfg, checkpoint_dir=args.checkpoint_dir, resume=args.resume,
                        progress=not args.quiet)
    stats_file = None
    if args.stats and result.stats is not None:
        frame = result.stats.copy()
        if "run" not in frame.columns:
            frame.insert(0, "run", result.config_hash)
        stats_file = Path(args.stats)
        try:
            stats_file.parent.mkdir(parents=True, exist_ok=True)
            frame.to_csv(stats_file, index=False)
        except OSError as exc:
            raise QuantsimError(f"--stats {args.stats}: cannot write the CSV ({exc})") from None

    if result.diverged:
        at = result.diverged_at or {}
        print(f"{result.network} on {result.dataset}: DIVERGED (non-finite loss or weights at "
              f"epoch {at.get('epoch')}, step {at.get('step')}) with precision "
              f"{result.precision}")
    else:
        if result.metric == "error":
            score = f"test error {_pct(result.test_error)} (accuracy " \
                    f"{_pct(None if result.test_error is None else 1 - result.test_error)})"
        elif result.metric == "bpc":
            score = f"test {result.test_metric:.4f} bits per character"
        else:
            score = f"test reconstruction MSE {result.test_metric:.5f}"
        print(f"{result.network} on {result.dataset}: {score}, test loss "
              f"{result.test_loss:.4f}, best epoch {result.best_epoch} of {result.epochs}, "
              f"{result.seconds:.1f} s")
    if stats_file is not None:
        print(f"statistics: {len(result.stats)} rows written to {stats_file}")
    if result.cost is not None and not args.json:
        from quantsim.hardware import format_cost

        print(format_cost(result.cost))
    if args.json:
        out = result.to_dict()
        if stats_file is not None:
            out["stats_file"] = str(stats_file)
        sys.stdout.flush()
        print(json.dumps(out, sort_keys=False, allow_nan=False))
    return 0
