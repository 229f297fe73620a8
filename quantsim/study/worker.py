"""Executing one run of a study, wherever it runs (a local worker process or a Ray task).

:func:`execute` prepares the run's checkpoint directory (resume from the last good checkpoint,
or from scratch if it is unreadable), calls the runner with a trainer callback that hands each
finished epoch to a *sink*, and returns the outcome. The sink is the store itself in local
workers (:class:`StoreSink`) and a queue to the driver for Ray (``quantsim.study.ray_exec``).

Order of writes, which makes ``kill -9`` at any moment safe: the trainer writes its checkpoint
(atomically) *before* the epoch callback stores the epoch; on restart, the history held in the
checkpoint is written to the store again (an upsert) and any stored epoch after the checkpoint
is dropped, so the store never holds an epoch the checkpoint cannot reproduce and never misses
one it holds.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import platform
import shutil
import socket
import subprocess
import time
import traceback
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

MAX_ERROR_CHARS = 8000


class Sink(Protocol):
    def start(self, run_id: str, info: Mapping[str, Any]) -> None: ...
    def epochs(self, run_id: str, records: list[dict[str, Any]]) -> None: ...
    def truncate(self, run_id: str, keep_upto: int) -> None: ...
    def note(self, run_id: str, text: str) -> None: ...
    def interrupted(self, run_id: str) -> None: ...
    def finish(self, run_id: str, outcome: Mapping[str, Any]) -> None: ...


class StoreSink:
    """Writes straight into the store (local workers)."""

    def __init__(self, store: Any) -> None:
        self.store = store

    def start(self, run_id: str, info: Mapping[str, Any]) -> None:
        self.store.start(run_id, **info)

    def epochs(self, run_id: str, records: list[dict[str, Any]]) -> None:
        self.store.upsert_epochs(run_id, records)

    def truncate(self, run_id: str, keep_upto: int) -> None:
        self.store.truncate_epochs(run_id, keep_upto)

    def note(self, run_id: str, text: str) -> None:
        self.store.add_note(run_id, text)

    def interrupted(self, run_id: str) -> None:
        self.store.set_status(run_id, "interrupted", only_from=("running",))

    def finish(self, run_id: str, outcome: Mapping[str, Any]) -> None:
        self.store.finish(run_id, outcome)


# -- provenance -----------------------------------------------------------------------------------


def versions() -> dict[str, str]:
    """Versions of python, quantsim and the numeric packages (from the installed metadata,
    without importing them), the platform, and the BLAS the engine's products run in."""
    from importlib import metadata

    from quantsim.errors import QuantsimError
    from quantsim.nn import _blas

    out = {"python": platform.python_version(), "platform": platform.platform()}
    try:
        out["engine_blas"] = _blas.describe()
    except QuantsimError as e:  # a bad QUANTSIM_BLAS: the run fails at its first product
        out["engine_blas"] = f"error: {e}"
    for name in ("quantsim", "numpy", "numba", "pandas", "scipy", "scikit-learn", "cupy", "mkl"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def git_commit() -> str | None:
    """The commit of the quantsim checkout (``+dirty`` if tracked files changed), or None."""
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        return None
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain",
                                "--untracked-files=no"], capture_output=True, text=True,
                               timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}+dirty" if dirty else head


# -- the run --------------------------------------------------------------------------------------


@contextlib.contextmanager
def run_lock(path: Path, timeout: float = 30.0) -> Iterator[None]:
    """An exclusive lock on a run (``flock``; released when the process dies)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"run is locked by another process ({path}); is another "
                                       "`quantsim study run` using this store?") from None
                time.sleep(0.2)
        yield
    finally:
        os.close(fd)


def _move_aside(ckpt_dir: Path, reason: str) -> str:
    bad = ckpt_dir.with_name(f"{ckpt_dir.name}.corrupt-{int(time.time())}")
    try:
        if bad.exists():
            shutil.rmtree(bad, ignore_errors=True)
        ckpt_dir.rename(bad)
        where = f"moved to {bad.name}"
    except OSError:
        shutil.rmtree(ckpt_dir, ignore_errors=True)
        where = "deleted"
    return f"checkpoint unusable ({reason}); {where}; restarted from scratch"


def prepare_checkpoint(ckpt_dir: Path, seed: int, run_id: str, sink: Sink) -> tuple[bool, int]:
    """Decide how the run starts: ``(resume, epochs already done)``. A readable checkpoint is
    resumed and its history re-stored; an unreadable one is moved aside (the run restarts)."""
    from quantsim import checkpoint

    if not (ckpt_dir / checkpoint.INDEX).exists():
        sink.truncate(run_id, 0)
        return False, 0
    try:
        tree = checkpoint.load(ckpt_dir)
        if tree is None:
            raise ValueError("no checkpoint index")
        trainer = tree["trainer"]
        if int(trainer["seed"]) != int(seed):
            raise ValueError(f"made with seed {trainer['seed']}, the run has seed {seed}")
        done = int(trainer["epoch"])
        history = [dict(r) for r in trainer.get("history", [])]
    except Exception as exc:  # noqa: BLE001 - any damage means: start again
        sink.note(run_id, _move_aside(ckpt_dir, f"{type(exc).__name__}: {exc}"))
        sink.truncate(run_id, 0)
        return False, 0
    sink.truncate(run_id, done)
    if history:
        sink.epochs(run_id, history)
    return True, done


def _make_callback(sink: Sink, run_id: str, done: int, on_epoch: Any = None) -> Any:
    from quantsim.train import Callback

    class EpochToStore(Callback):
        """Stores every finished epoch (the trainer has checkpointed it already)."""

        def __init__(self) -> None:
            self.last = done

        def on_epoch_end(self, trainer: Any, epoch: int, metrics: dict[str, Any]) -> None:
            history = getattr(trainer, "history", None) or [metrics]
            records = [dict(r) for r in history if int(r["epoch"]) > self.last]
            if not records:
                records = [dict(metrics)]
            sink.epochs(run_id, records)
            self.last = int(epoch)
            if on_epoch is not None:
                on_epoch(run_id, int(epoch), dict(metrics))

    return EpochToStore()


def _frame_records(stats: Any) -> list[dict[str, Any]]:
    if stats is None:
        return []
    if hasattr(stats, "to_dict") and hasattr(stats, "columns"):
        return [dict(r) for r in stats.to_dict(orient="records")]
    return [dict(r) for r in stats]


def execute(item: Mapping[str, Any], ckpt_dir: str | Path, runner: str, sink: Sink, *,
            worker: str | None = None, git: str | None = None, on_epoch: Any = None
            ) -> dict[str, Any]:
    """Run one study run to its end; returns ``{"status", "result", "stats", "error"}``
    (already handed to ``sink.finish``). KeyboardInterrupt marks the run ``interrupted``
    and propagates."""
    run_id = item["id"]
    ckpt_dir = Path(ckpt_dir)
    with run_lock(ckpt_dir.with_name(f"{ckpt_dir.name}.lock")):
        sink.start(run_id, {"pid": os.getpid(), "worker": worker, "host": socket.gethostname(),
                            "versions": versions(), "git_commit": git})
        try:
            outcome = _execute(item, ckpt_dir, runner, sink, on_epoch)
        except KeyboardInterrupt:
            sink.interrupted(run_id)
            raise
        except Exception:  # noqa: BLE001 - one run's failure must not stop the study
            text = traceback.format_exc()
            outcome = {"status": "failed", "result": None, "stats": [],
                       "error": text[-MAX_ERROR_CHARS:]}
        sink.finish(run_id, outcome)
        if outcome["status"] in ("done", "diverged"):
            shutil.rmtree(ckpt_dir, ignore_errors=True)  # the store holds everything now
        return outcome


def _execute(item: Mapping[str, Any], ckpt_dir: Path, runner: str, sink: Sink, on_epoch: Any
             ) -> dict[str, Any]:
    mod = importlib.import_module(runner)
    run_id, seed = item["id"], int(item["seed"])
    cfg = mod.RunConfig.from_dict(dict(item["config"]))
    resume, done = prepare_checkpoint(ckpt_dir, seed, run_id, sink)
    callback = _make_callback(sink, run_id, done, on_epoch)
    try:
        result = mod.run(cfg, checkpoint_dir=str(ckpt_dir), resume=resume,
                         callbacks=[callback], progress=False)
    except Exception as exc:
        if not resume:
            raise
        # The checkpoint looked sound but the runner could not resume from it.
        sink.note(run_id, _move_aside(ckpt_dir, f"resume failed: {type(exc).__name__}: {exc}"))
        sink.truncate(run_id, 0)
        callback = _make_callback(sink, run_id, 0, on_epoch)
        result = mod.run(cfg, checkpoint_dir=str(ckpt_dir), resume=False,
                         callbacks=[callback], progress=False)
    d = dict(result.to_dict())
    stats = getattr(result, "stats", None)
    if stats is None:
        stats = d.get("stats")
    d.pop("stats", None)
    if d.get("cost") is None:
        d["cost"] = getattr(result, "cost", None)
    from quantsim.study.store import _plain

    return {"status": "diverged" if d.get("diverged") else "done", "result": _plain(d),
            "stats": _plain(_frame_records(stats)), "error": None}
