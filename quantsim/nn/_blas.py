"""The engine's plain float matrix product: ``A @ B`` through MKL or numpy's BLAS.

Which library: ``QUANTSIM_BLAS`` in the environment, read at the first product. ``auto`` (the
default): Intel MKL when the ``mkl`` wheel is installed (``pip install 'quantsim[mkl]'``; see
`quantsim.nn._mkl` for why and its settings), else numpy's BLAS; ``mkl``: MKL or an error
saying how to install it; ``numpy``: numpy's BLAS. The two give correctly computed float
products that may differ in the last bits (they add in different orders), so a run records
which one it used (`describe`). `use` switches in a running process (tests, benchmarks).

With numpy's OpenBLAS, a thread policy for small products:

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

from quantsim.errors import QuantsimError
from quantsim.nn import _mkl

#: QUANTSIM_BLAS values
CHOICES = ("auto", "mkl", "numpy")
INSTALL_HINT = "pip install 'quantsim[mkl]' (Intel MKL from PyPI; x86-64)"

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


# None: not chosen yet; False: numpy's BLAS; else the loaded MKL
_engine_mkl: Any = None


def use(choice: str) -> str:
    """Choose the library for the engine's products (a `CHOICES` value, as ``QUANTSIM_BLAS``);
    returns the one in use, ``"mkl"`` or ``"numpy"``. Raises QuantsimError for an unknown
    choice, or for ``"mkl"`` when MKL is not installed."""
    global _engine_mkl
    choice = str(choice).strip().lower() or "auto"
    if choice not in CHOICES:
        raise QuantsimError(f"QUANTSIM_BLAS={choice!r} is not a BLAS choice; use one of "
                            f"{', '.join(CHOICES)}")
    mkl = _mkl.load() if choice != "numpy" else None
    if choice == "mkl" and mkl is None:
        raise QuantsimError(f"QUANTSIM_BLAS=mkl but Intel MKL could not be loaded "
                            f"({_mkl.load_error}): {INSTALL_HINT}, or set QUANTSIM_BLAS=numpy")
    _engine_mkl = mkl if mkl is not None else False
    return backend()


def _chosen() -> Any:
    if _engine_mkl is None:
        use(os.environ.get("QUANTSIM_BLAS", "auto"))
    return _engine_mkl


def backend() -> str:
    """``"mkl"`` or ``"numpy"``: the library the engine's float products run in."""
    return "mkl" if _chosen() else "numpy"


def describe() -> str:
    """The engine's BLAS with its version and thread count, for run records and benchmarks."""
    mkl = _chosen()
    if mkl:
        return f"{mkl.version} ({mkl.threads()} threads)"
    from quantsim._blas_env import numpy_blas_name

    funcs = _funcs if _funcs is not None else _blas()
    threads = f" ({funcs[0]()} threads)" if funcs else ""
    return f"numpy's BLAS ({numpy_blas_name() or 'unknown'}){threads}"


def matmul(A: Any, B: Any) -> Any:
    """``A @ B``: 2-D float numpy products through MKL when chosen, else with numpy, small or
    skinny ones on one BLAS thread (module docstring). CuPy products (cuBLAS) are left alone."""
    if isinstance(A, np.ndarray) and A.ndim == 2 and getattr(B, "ndim", 0) == 2:
        mkl = _engine_mkl if _engine_mkl is not None else _chosen()
        if mkl and isinstance(B, np.ndarray):
            C = mkl.gemm(A, B)
            if C is not None:
                return C
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
