"""Where the `mkl` wheel's libraries are, and one OpenMP runtime for MKL and numba.

Kept free of heavy imports: `import quantsim` calls `share_intel_openmp` before anything can
start numba's thread pool.

MKL's Intel threading layer runs on Intel OpenMP (``libiomp5``), numba's ``omp`` threading
layer on whatever runtime provides the GNU OpenMP entry points when numba starts its pool.
``libiomp5`` provides them too. Loaded into the global symbol scope before numba's pool starts,
it serves both: one team of threads, which is what a 2-core machine wants (measured here,
float32 steps with MKL products: with numba on GNU OpenMP beside MKL's Intel OpenMP,
LeNet-5 11.7 ms and the MLP 6.0 ms; on the one runtime 9.4-10.1 and 5.4-5.6 ms). Without
this, which runtime numba used depended on whether an MKL product or a numba kernel ran
first.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path


def mkl_library_path() -> Path | None:
    """``libmkl_rt`` of the installed ``mkl`` wheel, or None when it is not installed."""
    from importlib import metadata

    try:
        files = metadata.files("mkl") or []
    except metadata.PackageNotFoundError:
        return None
    found = sorted(str(f.locate()) for f in files if Path(str(f)).name.startswith("libmkl_rt.so"))
    return Path(os.path.realpath(found[-1])) if found else None


def intel_openmp_path(mkl_path: Path) -> Path:
    """The wheel's Intel OpenMP runtime: it sits beside ``libmkl_rt``."""
    return mkl_path.with_name("libiomp5.so")


def mkl_threading_layer() -> str:
    """The MKL threading layer the environment asks for (``INTEL`` when unset)."""
    return os.environ.get("MKL_THREADING_LAYER", "").strip().upper() or "INTEL"


def share_intel_openmp() -> bool:
    """Load the wheel's Intel OpenMP with RTLD_GLOBAL when the engine's products will run in
    MKL's Intel threading layer (``QUANTSIM_BLAS`` not ``numpy``, the wheel installed); True if
    loaded. Call before numba's first parallel kernel (module docstring)."""
    if (os.environ.get("QUANTSIM_BLAS", "").strip().lower() == "numpy"
            or mkl_threading_layer() != "INTEL"):
        return False
    path = mkl_library_path()
    iomp = intel_openmp_path(path) if path is not None else None
    if iomp is None or not iomp.exists():
        return False
    try:
        ctypes.CDLL(str(iomp), mode=ctypes.RTLD_GLOBAL)
    except OSError:
        return False
    return True
