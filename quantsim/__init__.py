"""quantsim: a low-precision, hardware-aware deep-learning simulator."""

from __future__ import annotations

import os as _os
import sys as _sys

# Whether numpy (so its OpenBLAS, with the default spin) was loaded before the setting below.
_BLAS_LOADED_SPINNING = "numpy" in _sys.modules and "OPENBLAS_THREAD_TIMEOUT" not in _os.environ
#: The thread-pool wait settings made below unless the environment has them (study workers
#: inherit the driver's values: quantsim/study/_child.py).
THREAD_WAIT_DEFAULTS = {"OPENBLAS_THREAD_TIMEOUT": "4", "OMP_WAIT_POLICY": "PASSIVE"}
# OpenBLAS worker threads spin for ~2**28 cycles after every product before they sleep, so on a
# machine whose cores numba's quantization kernels also use, each kernel runs against spinning
# BLAS threads: measured here (2 cores, benchmarks/bench_train.py) an all-roles-quantized MLP
# step took 53 ms with the default and 33 ms with a 2**4-cycle spin, float32 steps unchanged.
# Effective only when numpy's OpenBLAS is not loaded yet (import quantsim first, or set it in
# the environment); a value already in the environment wins.
_os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", THREAD_WAIT_DEFAULTS["OPENBLAS_THREAD_TIMEOUT"])
# The same the other way round: numba's OpenMP threads spin after every parallel kernel and then
# slow the next BLAS product. Measured here: a float32 MLP step (ReLU and SGD-momentum kernels in
# numba) took 15.3 ms with OpenMP's default and 9.0 ms with PASSIVE. (PyTorch, whose many short
# parallel regions prefer spinning, is slower with PASSIVE: set OMP_WAIT_POLICY yourself when
# you mix the two in one process.) Effective only before numba's OpenMP layer loads.
_os.environ.setdefault("OMP_WAIT_POLICY", THREAD_WAIT_DEFAULTS["OMP_WAIT_POLICY"])

from quantsim._allocator import tune_malloc as _tune_malloc  # noqa: E402
from quantsim._blas_env import warn_if_blas_spins as _warn_if_blas_spins  # noqa: E402
from quantsim._openmp import share_intel_openmp as _share_intel_openmp  # noqa: E402

if _BLAS_LOADED_SPINNING:
    _warn_if_blas_spins()

# Large per-step buffers stay in the heap instead of being page-faulted in every step.
MALLOC_TUNED = _tune_malloc()
# With MKL for the engine's products: numba's kernels and MKL on one OpenMP runtime.
INTEL_OPENMP_SHARED = _share_intel_openmp()

__version__ = "0.1.0"

__all__ = ["__version__", "quantize"]


def __getattr__(name: str):
    # Lazy: importing quantsim must not compile numba kernels.
    if name == "quantize":
        from quantsim.formats import quantize

        return quantize
    raise AttributeError(f"module 'quantsim' has no attribute {name!r}")
