"""Running a study: the driver, the ``local`` executor (one spawned process per run, at most
``workers`` at a time) and the ``ray`` executor (``quantsim.study.ray_exec``).

The driver owns the study: it takes an exclusive lock on the store (``<store>.lock``), records
the study and its runs, picks the runs to do (everything but ``done`` / ``diverged``, and
``failed`` only with ``retry_failed``), hands them to the executor and reports progress.
Local workers write their own epochs and outcome to the store; the driver only watches it
(progress is read back from the store, so nothing is lost if a worker dies).
"""

from __future__ import annotations

import fnmatch
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import IO, Any

from quantsim.errors import StudyError
from quantsim.study import _child
from quantsim.study.spec import Study, load_study, runner_name
from quantsim.study.store import FINAL, Store, default_store_path, store_lock_path

EXECUTORS = ("local", "ray")


@dataclass
class RunSummary:
    """What ``run_study`` did."""

    study: str
    store: Path
    total: int
    skipped: int  # already final (or failed, without retry_failed) when the study started
    counts: dict[str, int] = field(default_factory=dict)  # status -> runs, at the end
    interrupted: bool = False

    @property
    def ok(self) -> bool:
        return not self.interrupted and self.counts.get("failed", 0) == 0


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


class Progress:
    """Line-based progress on a stream: runs finished / total, and each worker's run/epoch."""

    def __init__(self, stream: IO[str] | None, total: int, study: str) -> None:
        self.stream = stream
        self.total = total
        self.study = study
        self.finished = 0
        self.seen: dict[str, tuple[str, int]] = {}

    def say(self, text: str) -> None:
        if self.stream is not None:
            print(f"[{self.study} {self.finished}/{self.total}] {text}", file=self.stream,
                  flush=True)

    def update(self, run: dict[str, Any], worker: str | None = None,
               last: dict[str, Any] | None = None) -> None:
        key = (run["status"], int(run["epochs_done"] or 0))
        if self.seen.get(run["id"]) == key:
            return
        self.seen[run["id"]] = key
        name = f"{run['label']} seed={run['seed']}"
        who = f"{worker}: " if worker else ""
        epochs = f"{run['epochs_done']}/{run['epochs']}" if run.get("epochs") else \
            f"{run['epochs_done']}"
        if run["status"] == "running":
            detail = ""
            if last:
                detail = " ".join(f"{k}={last[k]:.4g}" for k in ("train_loss", "val_error",
                                                                  "test_error")
                                  if isinstance(last.get(k), (int, float)))
            self.say(f"{who}{name}: epoch {epochs} {detail}".rstrip())
        elif run["status"] in FINAL or run["status"] == "failed":
            self.finished += 1
            te = run.get("test_error")
            extra = f" test_error={te:.4g}" if isinstance(te, (int, float)) else ""
            if run["status"] == "failed" and run.get("error"):
                extra += " error: " + run["error"].strip().splitlines()[-1][:200]
            self.say(f"{who}{name}: {run['status']} after {epochs} epochs{extra}")


def _git() -> str | None:
    from quantsim.study.worker import git_commit

    return git_commit()


def _lock(path: Path) -> Any:
    """Exclusive, non-blocking lock of the store for this driver; the fd keeps it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except ImportError:  # pragma: no cover - not POSIX
        return fd
    except BlockingIOError:
        os.close(fd)
        raise StudyError(f"another `quantsim study run` is using the store {str(path)[:-5]!r}; "
                         "wait for it to finish or give another --store") from None
    return fd


def run_study(study: Study | str | Path, store: str | Path | None = None, *,
              workers: int | None = None, executor: str = "local", address: str | None = None,
              runner: str | ModuleType | None = None, retry_failed: bool = False,
              rerun: str | None = None,
              progress: IO[str] | None = sys.stderr, poll: float = 0.5,
              resources: dict[str, float] | None = None) -> RunSummary:
    """Run (or resume) every unfinished run of ``study``; results go to ``store`` (default:
    next to the study file). ``rerun``: a glob over run labels (``"dfxp*"``); those runs
    forget their stored results and run again from scratch (e.g. after fixing a bug that
    affected them); a glob that matches no run is an error. ``runner`` names the module
    providing ``RunConfig`` and ``run`` (default ``quantsim.runner``). Returns a
    :class:`RunSummary`; a Ctrl-C stops the workers,
    keeps every finished epoch and returns with ``interrupted=True``."""
    if executor not in EXECUTORS:
        raise StudyError(f"executor {executor!r}: choose one of {', '.join(EXECUTORS)}")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)
                                or workers < 1):
        raise StudyError(f"workers={workers!r}: expected a positive integer")
    rname = runner_name(runner)
    if not isinstance(study, Study):
        study = load_study(study, runner=rname)
    if store is None:
        if study.path is None:
            raise StudyError("this study has no file; give store=PATH")
        store = default_store_path(study.path)
    store_path = Path(store).resolve()
    store_path.parent.mkdir(parents=True, exist_ok=True)
    lock_fd = _lock(store_lock_path(store_path))
    try:
        with Store(store_path) as st:
            st.register(study)
            if rerun is not None:
                chosen = [r for r in study.runs if fnmatch.fnmatchcase(r.label, rerun)]
                if not chosen:
                    raise StudyError(
                        f"--rerun {rerun!r} matches no run label of study {study.name!r}; "
                        f"labels: {', '.join(sorted({r.label for r in study.runs})[:12])}")
                for r in chosen:
                    st.reset_run(r.id)
            rows = {r["id"]: r for r in st.runs(study.name)}
            todo = [r for r in study.runs
                    if rows[r.id]["status"] not in FINAL
                    and (retry_failed or rows[r.id]["status"] != "failed")]
            summary = RunSummary(study=study.name, store=store_path, total=len(study.runs),
                                 skipped=len(study.runs) - len(todo))
            prog = Progress(progress, len(study.runs), study.name)
            prog.finished = summary.skipped
            resuming = [r for r in todo if rows[r.id]["status"] in ("running", "interrupted")
                        or rows[r.id]["epochs_done"]]
            prog.say(f"{len(todo)} runs to do ({len(resuming)} to resume), {summary.skipped} "
                     f"already finished; store {store_path}")
            if todo:
                if executor == "local":
                    _check_devices(todo)
                git = _git()
                if executor == "local":
                    summary.interrupted = _run_local(st, todo, workers=workers, runner=rname,
                                                     git=git, prog=prog, poll=poll)
                else:
                    from quantsim.study.ray_exec import run_ray

                    summary.interrupted = run_ray(
                        st, todo, workers=workers, runner=rname, git=git, prog=prog,
                        poll=poll, address=address, resources=resources or study.resources)
            counts: dict[str, int] = {}
            for r in st.runs(study.name, ids=[r.id for r in study.runs]):
                counts[r["status"]] = counts.get(r["status"], 0) + 1
            summary.counts = counts
            prog.say(("interrupted: " if summary.interrupted else "finished: ")
                     + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
            return summary
    finally:
        os.close(lock_fd)


def _check_devices(todo: list[Any]) -> None:
    """Fail before any run starts when a run asks for a device this machine cannot provide
    (local executor: the runs execute here), naming the runs and the fix."""
    from quantsim import backend
    from quantsim.errors import DeviceError

    wanted: dict[str, list[str]] = {}
    for r in todo:
        device = str(r.config.get("device") or "cpu")
        if device != "cpu":
            wanted.setdefault(device, []).append(r.label)
    for device, labels in wanted.items():
        try:
            backend.select_device(device)
        except DeviceError as e:
            names = sorted(set(labels))
            shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5
                                            else "")
            raise StudyError(
                f"{len(labels)} run(s) ask for device {device!r} (labels {shown}), which this "
                f"machine cannot provide: {e}. Run the study on a machine with that GPU (or with "
                "--executor ray on a cluster that has one), or set device = \"cpu\" in the "
                "study file; nothing was run.") from None


def _run_local(st: Store, todo: list[Any], *, workers: int | None, runner: str,
               git: str | None, prog: Progress, poll: float) -> bool:
    """Returns True if interrupted."""
    import multiprocessing as mp

    cores = cpu_count()
    n = max(1, min(workers or cores, len(todo)))
    threads = max(1, cores // n)
    ctx = mp.get_context("spawn")
    queue = deque(todo)
    active: dict[int, tuple[Any, Any]] = {}  # slot -> (process, StudyRun)
    free = list(range(n))[::-1]
    prog.say(f"local executor: {n} worker(s) x {threads} thread(s) on {cores} core(s)")

    def start(slot: int, run: Any) -> None:
        proc = ctx.Process(
            target=_child.main, name=f"quantsim-study-w{slot}",
            args=(run.to_item(), str(st.path), str(st.run_dir(run.id)), runner, threads,
                  f"w{slot}", git, os.getpid()), daemon=False)
        env = _child.thread_env(threads)
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)  # inherited by the fresh interpreter
        try:
            proc.start()
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        active[slot] = (proc, run)

    def reap(slot: int, interrupted: bool = False) -> None:
        proc, run = active.pop(slot)
        proc.join()
        row = st.run(run.id)
        if row is not None and row["status"] == "running":
            code = proc.exitcode
            if interrupted or code == _child.EXIT_INTERRUPTED:
                st.set_status(run.id, "interrupted", only_from=("running",))
            elif code == _child.EXIT_LOCKED:
                prog.say(f"w{slot}: {run.label} seed={run.seed} is locked by another process")
            else:
                st.set_status(run.id, "failed", only_from=("running",), error=(
                    f"worker process exited with code {code} before recording the end of "
                    "the run (killed, out of memory?); rerun with --retry-failed to resume "
                    "from its last checkpoint"))
        row = st.run(run.id)
        if row is not None:
            prog.update(row, f"w{slot}")
        free.append(slot)

    def watch() -> None:
        for slot, (_, run) in sorted(active.items()):
            row = st.run(run.id)
            if row is None:
                continue
            last = None
            if row["status"] == "running" and row["epochs_done"]:
                rec = st.query("SELECT train_loss, val_error, test_error FROM epochs "
                               "WHERE run_id = ? AND epoch = ?", (run.id, row["epochs_done"]))
                last = dict(rec[0]) if rec else None
            if row["status"] == "running" and not row["epochs_done"] and \
                    prog.seen.get(run.id) is None:
                prog.seen[run.id] = ("running", 0)
                prog.say(f"w{slot}: {run.label} seed={run.seed}: started")
            elif row["status"] == "running":
                prog.update(row, f"w{slot}", last)

    try:
        while queue or active:
            while queue and free:
                start(free.pop(), queue.popleft())
            time.sleep(poll)
            for slot in [s for s, (p, _) in active.items() if not p.is_alive()]:
                reap(slot)
            watch()
    except KeyboardInterrupt:
        _stop(active, reap)
        return True
    return False


def _stop(active: dict[int, tuple[Any, Any]], reap: Callable[..., None]) -> None:
    """Ctrl-C: ask every worker to stop (SIGINT, then SIGTERM, then SIGKILL); each marks its
    run ``interrupted``; finished epochs are in the store already."""
    procs = [p for p, _ in active.values()]
    for sig, wait in ((signal.SIGINT, 20.0), (signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        alive = [p for p in procs if p.is_alive()]
        if not alive:
            break
        for p in alive:
            try:
                os.kill(p.pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait
        try:
            for p in alive:
                p.join(max(0.0, deadline - time.monotonic()))
        except KeyboardInterrupt:  # a second Ctrl-C: escalate at once
            continue
    for slot in list(active):
        reap(slot, interrupted=True)


def study_status(study: Study, store: str | Path | None = None) -> dict[str, Any]:
    """Per-run status of ``study`` in ``store`` (runs never started are ``queued``)."""
    if store is None:
        if study.path is None:
            raise StudyError("this study has no file; give store=PATH")
        store = default_store_path(study.path)
    store = Path(store)
    rows: dict[str, dict[str, Any]] = {}
    if store.exists():
        with Store(store, create=False) as st:
            rows = {r["id"]: r for r in st.runs(study.name)}
    runs = []
    for r in study.runs:
        row = rows.get(r.id, {})
        runs.append({
            "id": r.id, "label": r.label, "seed": r.seed,
            "status": row.get("status", "queued"),
            "test_error": row.get("test_error"),
            "best_epoch": row.get("best_epoch"),
            "epochs_done": row.get("epochs_done", 0) or 0,
            "epochs": r.config.get("epochs"),
            "attempts": row.get("attempts", 0) or 0,
            "seconds": row.get("seconds"),
            "error": row.get("error"),
            "notes": row.get("notes"),
        })
    counts: dict[str, int] = {}
    for r in runs:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    return {"study": study.name, "description": study.description,
            "file": str(study.path) if study.path else None, "store": str(store),
            "counts": counts, "runs": runs}
