"""Entry point of a local worker process (spawned). Sets the BLAS / OpenMP / numba thread
counts *before* numpy or numba are imported, dies with its parent, then runs one study run.

Kept free of heavy imports: the spawned interpreter imports this module first.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

from quantsim import THREAD_WAIT_DEFAULTS  # the package is imported with this module anyway

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
               "NUMBA_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")
EXIT_INTERRUPTED = 130
EXIT_LOCKED = 75


#: The thread-pool wait settings `import quantsim` makes, passed on so that a worker whose
#: interpreter loads numpy before quantsim (a Ray worker) has them too.
WAIT_VARS = THREAD_WAIT_DEFAULTS


def thread_env(threads: int) -> dict[str, str]:
    """The environment of a worker: ``threads`` for every pool, the driver's wait settings."""
    env = {v: str(int(threads)) for v in THREAD_VARS}
    env.update({k: os.environ.get(k, default) for k, default in WAIT_VARS.items()})
    return env


def _die_with_parent(parent_pid: int) -> None:
    """SIGKILL this worker when the driver dies (``kill -9`` of the study), so no orphan keeps
    training a run that the next ``study run`` resumes."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except OSError:  # pragma: no cover
            pass
    if os.getppid() != parent_pid:  # the driver died before prctl took effect
        os._exit(EXIT_INTERRUPTED)


def _sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(item: dict[str, Any], store_path: str, ckpt_dir: str, runner: str, threads: int,
         worker: str, git: str | None, parent_pid: int) -> None:
    os.environ.update(thread_env(threads))
    _die_with_parent(parent_pid)
    signal.signal(signal.SIGTERM, _sigterm)
    from quantsim.study.store import Store
    from quantsim.study.worker import StoreSink, execute

    store = Store(store_path)
    try:
        execute(item, ckpt_dir, runner, StoreSink(store), worker=worker, git=git)
    except KeyboardInterrupt:
        store.close()
        os._exit(EXIT_INTERRUPTED)
    except RuntimeError as exc:
        if "locked" in str(exc):
            print(f"quantsim study: {exc}", file=sys.stderr)
            store.close()
            os._exit(EXIT_LOCKED)
        raise
    store.close()
