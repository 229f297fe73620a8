"""The warning for a process whose OpenBLAS started before ``import quantsim`` could tune it.

OpenBLAS reads ``OPENBLAS_THREAD_TIMEOUT`` once, when numpy loads it; with the default its
worker threads spin for ~2**28 cycles (~0.1 s) after every matrix product and keep the cores
that numba's quantization kernels run on. Measured here (2 cores, an all-roles-quantized MLP
step, batch 128): 16.3 ms when quantsim is imported first, 20.4 ms when numpy is; LeNet-5
20.0 and 23.9 ms. Nothing can change the setting once OpenBLAS runs, so the user is told.
"""

from __future__ import annotations

import os
import warnings

from quantsim.errors import PerformanceWarning


def numpy_blas_name() -> str:
    """The name of the BLAS numpy was built with ("" when numpy does not say)."""
    try:
        import numpy

        config = numpy.show_config(mode="dicts")
        return str(config["Build Dependencies"]["blas"]["name"])
    except Exception:  # an old numpy, or numpy not loaded: nothing to warn about
        return ""


def _usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _openblas_has_worker_threads() -> bool:
    """Whether numpy's BLAS is OpenBLAS with more than one thread (OpenBLAS reads
    OPENBLAS_NUM_THREADS, then OMP_NUM_THREADS; its default is one per usable CPU)."""
    configured = os.environ.get("OPENBLAS_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS")
    if configured is not None and configured.strip() == "1":
        return False
    return _usable_cpus() > 1 and "openblas" in numpy_blas_name().lower()


def warn_if_blas_spins() -> bool:
    """Warn (once) that numpy's OpenBLAS was loaded with its default thread spin; True if so."""
    if not _openblas_has_worker_threads():
        return False
    warnings.warn(
        "numpy was imported before quantsim, so its OpenBLAS threads spin ~0.1 s after every "
        "matrix product and slow quantsim's parallel quantization kernels (measured: an "
        "all-roles-quantized MLP step 25% slower). Import quantsim before numpy, or set "
        "OPENBLAS_THREAD_TIMEOUT=4 in the environment before Python starts (setting it "
        "yourself, to any value, also silences this warning).",
        PerformanceWarning,
        stacklevel=3,
    )
    return True
