"""The engine's plain float matrix product: ``A @ B`` with a thread policy for small products.

OpenBLAS runs every product on all its threads. For small or skinny products (LeNet's
convolutions, an LSTM's per-step recurrent product, a 10-way classifier) a parallel region
saves little on an idle machine and costs tens of milliseconds on a busy one (a study running
several jobs on two cores: the second thread waits for a time slice at the barrier). Those
products run on one BLAS thread. Numerics: the result is a correctly computed float product
either way, but OpenBLAS may round some shapes differently with one thread than with several
(as any change of the BLAS thread count may); with this policy such products no longer depend
on the configured thread count. ``QUANTSIM_SERIAL_SMALL_GEMM=0`` in the environment turns the
policy off (every product on the configured threads). Larger products use the configured
threads. Without ``threadpoolctl`` (or without OpenBLAS), and for CuPy arrays, this is plain
``A @ B``.
"""

from __future__ import annotations

import ctypes
import os
from typing import Any

import numpy as np

# A product runs on one BLAS thread when 2·M·N·K <= SMALL_FLOPS or min(M, N) <= SKINNY.
SMALL_FLOPS = 1 << 25  # ~33 MFLOP: about a millisecond on one core
SKINNY = 32

# None: not looked up yet; False: none usable (or turned off); else (get, set)
_funcs: Any = None if os.environ.get("QUANTSIM_SERIAL_SMALL_GEMM", "1") != "0" else False


def _blas() -> Any:
    """``(get_num_threads, set_num_threads)`` of numpy's OpenBLAS (ctypes), or False."""
    global _funcs
    if _funcs is None:
        _funcs = False
        try:
            from threadpoolctl import ThreadpoolController

            for lib in ThreadpoolController().lib_controllers:
                if lib.user_api != "blas" or lib.internal_api != "openblas":
                    continue
                for prefix in ("", "scipy_"):
                    for suffix in ("", "64_"):
                        name = f"{prefix}openblas_%s_num_threads{suffix}"
                        get = getattr(lib.dynlib, name % "get", None)
                        set_ = getattr(lib.dynlib, name % "set", None)
                        if get is not None and set_ is not None:
                            get.restype = ctypes.c_int
                            set_.argtypes = [ctypes.c_int]
                            if get() >= 1:
                                _funcs = (get, set_)
                                return _funcs
        except Exception:  # no threadpoolctl, or an unexpected library: plain products
            _funcs = False
    return _funcs


def matmul(A: Any, B: Any) -> Any:
    """``A @ B``; small or skinny 2-D numpy products on one BLAS thread (module docstring).
    CuPy products (cuBLAS) are left alone."""
    if isinstance(A, np.ndarray) and A.ndim == 2 and getattr(B, "ndim", 0) == 2:
        M, K = A.shape
        N = B.shape[1]
        if 2 * M * N * K <= SMALL_FLOPS or min(M, N) <= SKINNY:
            funcs = _funcs if _funcs is not None else _blas()
            if funcs:
                get, set_ = funcs
                n = get()
                if n > 1:
                    set_(1)
                    try:
                        return A @ B
                    finally:
                        set_(n)
    return A @ B
