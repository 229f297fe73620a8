"""The ``ray`` executor: each run is a Ray task; results flow back to the driver, which alone
writes the store.

Inside the task, :func:`quantsim.study.worker.execute` sends what it would write (run started,
each finished epoch, notes) through a ``ray.util.queue.Queue``; the driver drains the queue
into the store as the epochs finish, then writes the task's returned outcome. Per-run
checkpoints live in the store's ``<stem>.runs/`` directory, so on a multi-node cluster that
directory must be on a file system every node sees (otherwise a resumed run restarts from
scratch on another node — still correct, only slower).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from quantsim.errors import StudyError
from quantsim.study import _child
from quantsim.study.store import Store


class QueueSink:
    """The worker side: forwards every store write to the driver through a Ray queue."""

    def __init__(self, queue: Any) -> None:
        self.queue = queue

    def start(self, run_id: str, info: Mapping[str, Any]) -> None:
        self.queue.put(("start", run_id, dict(info)))

    def epochs(self, run_id: str, records: list[dict[str, Any]]) -> None:
        from quantsim.study.store import _plain

        self.queue.put(("epochs", run_id, _plain(records)))

    def truncate(self, run_id: str, keep_upto: int) -> None:
        self.queue.put(("truncate", run_id, int(keep_upto)))

    def note(self, run_id: str, text: str) -> None:
        self.queue.put(("note", run_id, text))

    def interrupted(self, run_id: str) -> None:
        self.queue.put(("interrupted", run_id, None))

    def finish(self, run_id: str, outcome: Mapping[str, Any]) -> None:
        """The outcome is the task's return value; the driver writes it."""


def _task(item: dict[str, Any], ckpt_dir: str, runner: str, queue: Any, git: str | None
          ) -> dict[str, Any]:
    import ray

    from quantsim.study.worker import execute

    ctx = ray.get_runtime_context()
    worker = f"ray:{ctx.get_node_id()[:8]}"
    return execute(item, ckpt_dir, runner, QueueSink(queue), worker=worker, git=git)


def _apply(st: Store, msg: tuple[str, str, Any]) -> None:
    kind, run_id, payload = msg
    if kind == "start":
        st.start(run_id, **payload)
    elif kind == "epochs":
        st.upsert_epochs(run_id, payload)
    elif kind == "truncate":
        st.truncate_epochs(run_id, payload)
    elif kind == "note":
        st.add_note(run_id, payload)
    elif kind == "interrupted":
        st.set_status(run_id, "interrupted", only_from=("running",))


def run_ray(st: Store, todo: list[Any], *, workers: int | None, runner: str, git: str | None,
            prog: Any, poll: float, address: str | None, resources: Mapping[str, float]) -> bool:
    """Returns True if interrupted."""
    try:
        import ray
        from ray.util.queue import Empty, Queue
    except ImportError:
        raise StudyError("the ray executor needs Ray: pip install 'quantsim[ray]' (or use "
                         "--executor local)") from None
    started_here = not ray.is_initialized()
    if started_here:
        kwargs: dict[str, Any] = {"address": address, "log_to_driver": True}
        if address is None:
            kwargs["include_dashboard"] = False
        try:
            ray.init(**kwargs)
        except Exception as exc:  # noqa: BLE001 - connection problems are user errors here
            raise StudyError(f"cannot start or reach Ray (address={address!r}): {exc}") from None
    cpus = float(resources.get("cpus", 1))
    gpus = float(resources.get("gpus", 0))
    threads = max(1, int(cpus))
    task = ray.remote(_task).options(
        num_cpus=cpus, num_gpus=gpus, max_retries=0,
        runtime_env={"env_vars": _child.thread_env(threads)})
    queue = Queue()
    pending = list(todo)
    inflight: dict[Any, Any] = {}
    limit = workers or len(todo)
    prog.say(f"ray executor: {len(todo)} task(s), {cpus:g} CPU / {gpus:g} GPU each, at most "
             f"{limit} at a time; cluster {ray.cluster_resources()}")

    def drain() -> None:
        while True:
            try:
                msgs = queue.get_nowait_batch(queue.qsize())
            except Empty:
                return
            if not msgs:
                return
            for m in msgs:
                _apply(st, m)
                row = st.run(m[1])
                if row is not None:
                    prog.update(row)

    try:
        while pending or inflight:
            while pending and len(inflight) < limit:
                run = pending.pop(0)
                ref = task.remote(run.to_item(), str(st.run_dir(run.id)), runner, queue, git)
                inflight[ref] = run
            ready, _ = ray.wait(list(inflight), num_returns=1, timeout=poll)
            drain()
            for ref in ready:
                run = inflight.pop(ref)
                try:
                    outcome = ray.get(ref)
                except Exception as exc:  # noqa: BLE001 - a lost worker fails only its run
                    outcome = {"status": "failed", "result": None, "stats": [],
                               "error": f"Ray task failed: {type(exc).__name__}: {exc}"[-8000:]}
                drain()
                st.finish(run.id, outcome)
                row = st.run(run.id)
                if row is not None:
                    prog.update(row)
        return False
    except KeyboardInterrupt:
        for ref in inflight:
            ray.cancel(ref, force=True)
        time.sleep(0.5)
        try:
            drain()
        except Exception:  # noqa: BLE001 - the queue actor may be gone
            pass
        for run in inflight.values():
            st.set_status(run.id, "interrupted", only_from=("running",))
        return True
    finally:
        if started_here:
            ray.shutdown()
