"""Training-step speed: quantsim vs PyTorch CPU, and the cost of quantizing every role.

Not a timed test: run it by hand (``python benchmarks/bench_train.py``; ``--json`` prints the
same numbers as one JSON document). In one process, batch 128, float32:

* MLP 784-1000-1000-10 (ReLU), LeNet-5 (conv 6@5x5 pad 2, max pool, conv 16@5x5, max pool,
  120, 84, 10; ReLU), LSTM(128) over 28 rows of 28 pixels + a linear classifier;
* QPyTorch (``pip install qtorch``, when installed): the MLP with its quantizers on every
  activation/error and its optimizer wrapper (``qpytorch-allq``, see `_torch_peer.py`), as the
  peer of quantsim's ``allq``;
* quantsim (all roles float32) vs PyTorch CPU with the same thread count as numpy's BLAS
  (PyTorch in a child process with the user's OpenMP settings, its steps timed in blocks
  between quantsim's rounds: see `_torch_peer.py` for why);
* the same quantsim steps with every role quantized (``--allq``), with fp16 chunked accumulation
  on top, and with statistics collection on (the overhead of ``configure_stats``): counting
  every quantizing call (``allq+stats``) and every K-th call (``allq+stats/K``, the runner's
  default sampling interval ``stats_every``; timed as blocks of K consecutive steps against
  ``allq/K``, the same blocks without statistics, and reported per step).

A step is forward + softmax cross-entropy + backward + SGD-momentum update on one fixed random
batch, exactly as ``quantsim.train.Trainer`` runs it (no gradient w.r.t. the data, as in
PyTorch, where the input does not require grad). Every configuration is warmed up, then the
quantsim configurations are timed *interleaved*, round after round, so that load changes on a
shared machine hit all of them alike: in each round every configuration runs one untimed step
and then ``--block`` (default 10) timed steps back to back, as a training loop runs them, its
arrays in cache (``--block 1``: single steps, each after another configuration's, which made
the float32 MLP step 7.5 -> 9.5 ms). PyTorch's steps run in a few blocks of consecutive steps
spread over the same rounds. The tables give the median ms/step and ratios of medians measured
in this run.

Targets (issue 3): quantsim/PyTorch <= 1.0 (MLP), <= 1.5 (LeNet-5), <= 1.3 (LSTM); all roles
quantized / float32 <= 1.25 (MLP); statistics on / off <= 1.10 (at the default sampling
interval; counting every call is reported next to it).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# As quantsim sets them on import (quantsim/__init__.py), before numpy loads OpenBLAS and numba
# its OpenMP layer: BLAS threads that spin for ~2**28 cycles after each product, and numba
# threads that spin after each kernel, slow the other pool's threads. PyTorch runs in its own
# process (TorchPeer) with the environment the user gave, since it is fastest with OpenMP's
# default (spinning) wait policy.
USER_OMP_WAIT_POLICY = os.environ.get("OMP_WAIT_POLICY")
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _torch_peer import BATCH, LR, MOMENTUM, data  # noqa: E402

from quantsim.nn import (  # noqa: E402
    LSTM,
    Conv2d,
    Flatten,
    Linear,
    MaxPool2d,
    ReLU,
    Sequential,
    _blas,
    softmax_cross_entropy,
)
from quantsim.optim import SGD  # noqa: E402
from quantsim.precision import Precision, configure_stats  # noqa: E402

MODELS = ("mlp", "lenet5", "lstm")
# Every role quantized (the accumulator is added by the "+acc fp16" configuration).
ALLQ = ("default=float32,inputs=fp8_e4m3,weights=fp8_e4m3,activations=fp8_e4m3@stochastic,"
        "errors=fp8_e4m3@stochastic,gradients=fp8_e4m3@stochastic,"
        "updates=fixed<4,12>@stochastic,optimizer_state=fixed<4,12>@stochastic")
ACC = "accumulator=float16"
TARGETS = {  # ratio name -> limit
    "mlp: quantsim/pytorch": 1.0,
    "lenet5: quantsim/pytorch": 1.5,
    "lstm: quantsim/pytorch": 1.3,
    "mlp: allq/float32": 1.25,
    "mlp: stats/K on/off": 1.10,
    "lenet5: stats/K on/off": 1.10,
    "lstm: stats/K on/off": 1.10,
}


# -- environment ------------------------------------------------------------------------------


def blas_info() -> dict[str, Any]:
    """Which BLAS numpy itself runs (threadpoolctl), with its kernel (architecture) and
    threads."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:  # pragma: no cover
        return {"blas": "unknown (pip install threadpoolctl)", "threads": None}
    for lib in threadpool_info():  # numpy's own (MKL, when loaded, serves the engine: --blas)
        if lib.get("user_api") == "blas" and lib.get("internal_api") != "mkl":
            return {
                "blas": lib.get("internal_api"),
                "version": lib.get("version"),
                "architecture": lib.get("architecture"),
                "threads": lib.get("num_threads"),
                "library": os.path.basename(lib.get("filepath", "")),
            }
    return {"blas": "none found", "threads": None}


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover
        return None


# -- networks ---------------------------------------------------------------------------------


def quantsim_net(model: str, seed: int = 0) -> Sequential:
    rng = np.random.default_rng(seed)
    if model == "mlp":
        return Sequential(
            Linear(784, 1000, rng=rng, init="he"), ReLU(),
            Linear(1000, 1000, rng=rng, init="he"), ReLU(),
            Linear(1000, 10, rng=rng),
        )
    if model == "lenet5":
        return Sequential(
            Conv2d(1, 6, 5, padding=2, rng=rng, init="he"), ReLU(), MaxPool2d(2),
            Conv2d(6, 16, 5, rng=rng, init="he"), ReLU(), MaxPool2d(2),
            Flatten(),
            Linear(400, 120, rng=rng, init="he"), ReLU(),
            Linear(120, 84, rng=rng, init="he"), ReLU(),
            Linear(84, 10, rng=rng),
        )
    if model == "lstm":
        return Sequential(
            LSTM(28, 128, rng=rng, return_sequences=False),
            Linear(128, 10, rng=rng),
        )
    raise ValueError(f"unknown model {model!r}; choose from {MODELS}")


def quantsim_step(model: str, precision: str | None, stats: bool, every: int = 1
                  ) -> Callable[[], float]:
    net = quantsim_net(model)
    net.bind(Precision.float32() if precision is None else Precision.from_string(precision), 0)
    configure_stats(net, stats, every)
    opt = SGD(net, LR, momentum=MOMENTUM)
    X, y = data(model)

    def step() -> float:
        opt.zero_grad()
        Y, backprop = net.forward(X, train=True)
        loss, dY = softmax_cross_entropy(Y, y)
        if getattr(backprop, "input_grad_optional", False):
            backprop(dY, input_grad=False)  # as the Trainer calls it (and as PyTorch does)
        else:
            backprop(dY)
        opt.step()
        return loss

    return step


#: PyTorch's timed steps run in this many blocks spread over the quantsim rounds, each followed
#: by a pause of PEER_SETTLE seconds (its OpenMP threads spin for a while after a step).
PEER_BLOCKS = 5
PEER_SETTLE = 0.3


def qpytorch_available() -> bool:
    """Whether QPyTorch (``pip install qtorch``) can be imported beside torch."""
    return (importlib.util.find_spec("qtorch") is not None
            and importlib.util.find_spec("torch") is not None)


class TorchPeer:
    """PyTorch training steps run in a child process (`_torch_peer.py`) with the user's OpenMP
    environment; `run(n)` runs n consecutive steps there and returns their times (ms)."""

    def __init__(self, model: str, threads: int) -> None:
        env = dict(os.environ)
        env.pop("OMP_WAIT_POLICY", None)
        if USER_OMP_WAIT_POLICY is not None:
            env["OMP_WAIT_POLICY"] = USER_OMP_WAIT_POLICY
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("_torch_peer.py")), model,
             str(threads)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
        )
        if self._read() != "ready":
            raise RuntimeError("the PyTorch peer process did not start (is torch installed?)")

    def _read(self) -> str:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the PyTorch peer process exited ({self.proc.wait()})")
        return line.strip()

    def run(self, n: int) -> list[float]:
        self.proc.stdin.write(f"run {n}\n")
        self.proc.stdin.flush()
        return [float(v) for v in self._read().split()[:-1]]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.close()
            self.proc.wait()


# -- timing -----------------------------------------------------------------------------------


def time_interleaved(
    steps: dict[str, Callable[[], float]], warmup: int, n: int, fewer: dict[str, int],
    peers: dict[str, tuple[TorchPeer, int]] | None = None, block: int = 1,
) -> dict[str, list[float]]:
    """Warm every step up, then time them round-robin; returns ms per call for each.

    Each round runs every configuration for ``block`` consecutive timed calls, after one untimed
    call when ``block`` > 1 (the configuration's arrays back in cache, as in a training loop,
    which runs one configuration's steps back to back); ``block`` = 1 times single calls that
    follow another configuration's, caches holding its arrays. ``n`` timed calls in all per
    configuration. A configuration named in ``fewer`` (a slow one) takes part only in that many
    calls, spread evenly over the rounds. Each of the `peers` (name -> (process, steps)) runs
    its steps as PEER_BLOCKS blocks spread over the rounds, each followed by PEER_SETTLE seconds
    in which its threads go idle."""
    peers = peers or {}
    for k, fn in steps.items():
        for _ in range(warmup if k not in fewer else min(warmup, 1)):
            fn()
    times: dict[str, list[float]] = {k: [] for k in steps}
    for name, (peer, _) in peers.items():
        peer.run(warmup)
        times[name] = []
    rounds = max(1, -(-n // block))
    blocks = min(PEER_BLOCKS, rounds)
    for r in range(rounds):
        done = ((r + 1) * blocks) // rounds  # peer blocks due by the end of this round
        if done != (r * blocks) // rounds:
            for name, (peer, total) in peers.items():
                times[name] += peer.run(done * total // blocks - len(times[name]))
                time.sleep(PEER_SETTLE)
        for k, fn in steps.items():
            total = fewer.get(k, n)
            due = min(total, ((r + 1) * total) // rounds) - len(times[k])
            if due <= 0:
                continue
            if block > 1:
                fn()
            for _ in range(due):
                t0 = time.perf_counter()
                fn()
                times[k].append((time.perf_counter() - t0) * 1e3)
    return times


def repeated(fn: Callable[[], float], k: int) -> Callable[[], float]:
    """``fn`` run ``k`` times in a row (one timed unit)."""
    def run() -> float:
        loss = 0.0
        for _ in range(k):
            loss = fn()
        return loss

    return run


def configurations(model: str, args: argparse.Namespace, threads: int) -> dict[str, Callable]:
    cfg: dict[str, Callable] = {}
    cfg["float32"] = quantsim_step(model, None, stats=False)
    cfg["allq"] = quantsim_step(model, ALLQ, stats=False)
    cfg["allq+stats"] = quantsim_step(model, ALLQ, stats=True)
    k = args.stats_every
    # Timed as blocks of k steps, and so is its baseline: the same structure on both sides.
    cfg[f"allq+stats/{k}"] = repeated(quantsim_step(model, ALLQ, stats=True, every=k), k)
    cfg[f"allq/{k}"] = repeated(quantsim_step(model, ALLQ, stats=False), k)
    if not args.no_acc:
        cfg["allq+acc_fp16"] = quantsim_step(model, f"{ALLQ},{ACC}", stats=False)
    return cfg


def ratio_rows(model: str, med: dict[str, float], every: int) -> dict[str, float]:
    pairs = [
        ("quantsim/pytorch", "float32", "pytorch"),
        ("allq/float32", "allq", "float32"),
        ("stats on/off", "allq+stats", "allq"),
        ("stats/K on/off", f"allq+stats/{every}", f"allq/{every}"),
        ("allq+acc_fp16/float32", "allq+acc_fp16", "float32"),
        ("qpytorch-allq/pytorch", "qpytorch-allq", "pytorch"),
    ]
    return {f"{model}: {name}": med[a] / med[b] for name, a, b in pairs if a in med and b in med}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default=",".join(MODELS), help="comma list of mlp,lenet5,lstm")
    ap.add_argument("--steps", type=int, default=30, help="timed steps per configuration")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps per configuration")
    ap.add_argument("--block", type=int, default=10,
                    help="consecutive timed steps of one configuration per round, after one "
                         "untimed step (1: single steps, each after another configuration's)")
    ap.add_argument("--no-torch", action="store_true", help="skip PyTorch")
    ap.add_argument("--no-acc", action="store_true", help="skip fp16 chunked accumulation")
    ap.add_argument("--acc-steps", type=int, default=5,
                    help="timed steps of the (slow) fp16-accumulation configuration")
    ap.add_argument("--qpytorch-steps", type=int, default=20,
                    help="timed steps of QPyTorch's all-roles MLP (when qtorch is installed)")
    ap.add_argument("--stats-every", type=int, default=25, metavar="K",
                    help="sampling interval of the allq+stats/K configuration (default 25, the "
                         "runner's default stats_every)")
    ap.add_argument("--numba-threads", type=int, default=None,
                    help="numba.set_num_threads(N) for the quantization kernels (default: numba's)")
    ap.add_argument("--blas", choices=_blas.CHOICES, default=None,
                    help="the engine's BLAS (default: QUANTSIM_BLAS, else auto: MKL when the mkl "
                         "wheel is installed, else numpy's)")
    ap.add_argument("--json", action="store_true", help="print one JSON document")
    args = ap.parse_args(argv)
    if args.blas is not None:
        _blas.use(args.blas)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    for m in models:
        if m not in MODELS:
            ap.error(f"unknown model {m!r}; choose from {', '.join(MODELS)}")

    import numba

    if args.numba_threads is not None:
        numba.set_num_threads(args.numba_threads)
    blas = blas_info()
    threads = int(blas.get("threads") or 1)
    torch_info: dict[str, Any] = {}
    if not args.no_torch and importlib.util.find_spec("torch") is None:
        print("PyTorch is not installed: timing quantsim alone (pip install torch==2.13.0 for "
              "the side-by-side run)", file=sys.stderr)
        args.no_torch = True
    if not args.no_torch:
        from importlib.metadata import version as dist_version

        torch_info = {"version": dist_version("torch"), "threads": threads,
                      "omp_wait_policy": USER_OMP_WAIT_POLICY or "default",
                      "process": "separate (benchmarks/_torch_peer.py)"}
    load_before = load_average()
    results: dict[str, Any] = {}
    ratios: dict[str, float] = {}
    t_start = time.perf_counter()
    for model in models:
        cfg = configurations(model, args, threads)
        k = args.stats_every
        blocks = max(3, args.steps // k)
        fewer = {"allq+acc_fp16": max(1, min(args.acc_steps, args.steps)),
                 f"allq+stats/{k}": blocks, f"allq/{k}": blocks}
        peers: dict[str, tuple[TorchPeer, int]] = {}
        try:
            if not args.no_torch:
                peers["pytorch"] = (TorchPeer(model, threads), args.steps)
                if model == "mlp" and qpytorch_available():
                    peers["qpytorch-allq"] = (TorchPeer("mlp-qpytorch", threads),
                                              max(1, min(args.qpytorch_steps, args.steps)))
            times = time_interleaved(cfg, args.warmup, args.steps, fewer, peers, args.block)
        finally:
            for peer, _ in peers.values():
                peer.close()
        for name in (f"allq+stats/{k}", f"allq/{k}"):
            times[name] = [t / k for t in times[name]]
        med = {k: statistics.median(v) for k, v in times.items()}
        results[model] = {
            k: {"median_ms": med[k], "min_ms": min(v), "max_ms": max(v), "steps": len(v)}
            for k, v in times.items()
        }
        ratios.update(ratio_rows(model, med, args.stats_every))
        if not args.json:
            print(f"[{model}] " + ", ".join(f"{k} {v:.1f}" for k, v in med.items())
                  + " ms/step", file=sys.stderr, flush=True)
    doc = {
        "batch": BATCH,
        "dtype": "float32",
        "allq_precision": ALLQ,
        "acc_precision": f"{ALLQ},{ACC}",
        "numpy": np.__version__,
        "numpy_blas": blas,
        "engine_blas": _blas.describe(),
        "openblas_thread_timeout": os.environ.get("OPENBLAS_THREAD_TIMEOUT"),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "numba_threads": numba.get_num_threads(),
        "pytorch": torch_info or None,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_average_before": load_before,
        "load_average_after": load_average(),
        "seconds": round(time.perf_counter() - t_start, 1),
        "steps": args.steps,
        "stats_every": args.stats_every,
        "warmup": args.warmup,
        "block": args.block,
        "ms_per_step": results,
        "ratios": ratios,
        "targets": {
            k: {"limit": lim, "ratio": ratios[k], "met": ratios[k] <= lim}
            for k, lim in TARGETS.items() if k in ratios
        },
    }
    if args.json:
        print(json.dumps(doc, indent=2))
        return 0
    print(f"numpy {np.__version__}, BLAS {blas.get('blas')} {blas.get('version')} "
          f"kernel {blas.get('architecture')}, {blas.get('threads')} threads; "
          f"engine products: {_blas.describe()}; "
          + (f"torch {torch_info['version']}, {torch_info['threads']} threads, own process, "
             f"OMP_WAIT_POLICY {torch_info['omp_wait_policy']}; " if torch_info else "")
          + f"numba {numba.get_num_threads()} threads; {os.cpu_count()} cpus; "
          f"OPENBLAS_THREAD_TIMEOUT={os.environ.get('OPENBLAS_THREAD_TIMEOUT')}, "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}; "
          f"load average {load_before} -> {doc['load_average_after']}")
    print(f"batch {BATCH}, float32, median over {args.steps} steps (quantsim interleaved in "
          f"blocks of {args.block} consecutive steps) "
          f"(after {args.warmup} warm-up steps; allq+acc_fp16: {args.acc_steps} steps)")
    print(f"allq = {ALLQ}")
    print(f"allq+acc_fp16 = allq + {ACC} (chunk 32)\n")
    cols = list(dict.fromkeys(c for r in results.values() for c in r))
    head = f"{'ms/step (median)':<18}" + "".join(f"{c:>15}" for c in cols)
    print(head)
    print("-" * len(head))
    for model, r in results.items():
        print(f"{model:<18}" + "".join(f"{r[c]['median_ms']:>15.2f}" if c in r else f"{'-':>15}"
                                       for c in cols))
    print()
    print(f"{'ratio':<36}{'value':>8}{'target':>9}  ")
    print("-" * 58)
    for k, v in ratios.items():
        lim = TARGETS.get(k)
        verdict = "" if lim is None else f"<= {lim:.2f}  {'ok' if v <= lim else 'MISS'}"
        print(f"{k:<36}{v:>8.2f}   {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
