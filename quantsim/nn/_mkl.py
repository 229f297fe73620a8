"""Intel MKL's ``sgemm``/``dgemm`` for the engine's plain products, when the ``mkl`` wheel is
installed (``pip install 'quantsim[mkl]'``).

Why: the engine's float products are small or skinny (an LSTM's 128x128·128x512 step product,
LeNet-5's convolutions as 6x100352·100352x25), where MKL, the BLAS PyTorch's CPU build runs,
is 1.5-2.5x faster than the OpenBLAS numpy ships with (measured here: 57 vs 92-136 µs for the
LSTM step product on two threads). Loaded with ctypes (no compiled extension); numpy keeps its
own BLAS for everything else.

Settings made once, when first used, each only if the environment does not set it:

* threading layer Intel OpenMP (``MKL_THREADING_LAYER``), whose pool is separate from numba's
  GNU OpenMP pool;
* with that layer, worker threads spin for 1 ms after a product before they sleep
  (``KMP_BLOCKTIME``; quantsim's ``OMP_WAIT_POLICY=PASSIVE`` would make it 0): a recurrent
  layer's products come every ~0.1 ms and waking sleeping threads doubled their cost; 1 ms
  returns the cores to numba's quantization kernels soon after the products stop;
* conditional numerical reproducibility ``MKL_CBWR=AUTO``: the same result for the same inputs
  on the same CPU and thread count, whatever the arrays' alignment (no cost measured here).

Numerics: a correctly computed float product, as OpenBLAS's is, but the two libraries add the
terms in different orders, so float32 results (and training runs) differ in the last bits
between them. `quantsim.nn._blas` chooses the library (``QUANTSIM_BLAS``) and reports it.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

import numpy as np

#: cblas enums
_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112
#: MKL_THREADING_INTEL, MKL_CBWR_AUTO, MKL_CBWR_SUCCESS (mkl_service.h, mkl_cbwr.h)
_THREADING_INTEL, _CBWR_AUTO, _CBWR_SUCCESS = 0, 2, 0
#: Intel OpenMP's spin time after a parallel region (ms), unless KMP_BLOCKTIME is set.
BLOCKTIME_MS = 1
_INT_MAX = 2**31 - 1


class Mkl:
    """The loaded ``libmkl_rt`` with its gemm entry points typed for ctypes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lib = ctypes.CDLL(str(path))
        lib = self.lib
        if "MKL_THREADING_LAYER" not in os.environ:
            lib.MKL_Set_Threading_Layer.argtypes = [ctypes.c_int]
            lib.MKL_Set_Threading_Layer(_THREADING_INTEL)
        if "MKL_CBWR" not in os.environ:
            lib.MKL_CBWR_Set.argtypes = [ctypes.c_int]
            if lib.MKL_CBWR_Set(_CBWR_AUTO) != _CBWR_SUCCESS:  # pragma: no cover - old MKL
                raise OSError(f"{path}: MKL_CBWR_Set(MKL_CBWR_AUTO) failed")
        c_int, ptr = ctypes.c_int, ctypes.c_void_p
        for name, scalar in (("cblas_sgemm", ctypes.c_float), ("cblas_dgemm", ctypes.c_double)):
            fn = getattr(lib, name)
            fn.argtypes = [c_int, c_int, c_int, c_int, c_int, c_int, scalar, ptr, c_int, ptr,
                           c_int, scalar, ptr, c_int]
            fn.restype = None
        self._gemm = {np.dtype(np.float32): lib.cblas_sgemm,
                      np.dtype(np.float64): lib.cblas_dgemm}
        lib.MKL_Get_Max_Threads.restype = c_int
        buf = ctypes.create_string_buffer(256)
        lib.MKL_Get_Version_String(buf, ctypes.c_int(len(buf)))
        self.version = buf.value.decode(errors="replace").strip()
        # Only Intel OpenMP has the setting; a user's other threading layer keeps its own.
        self._blocktime_set = ("KMP_BLOCKTIME" in os.environ
                               or os.environ.get("MKL_THREADING_LAYER", "INTEL").upper() != "INTEL")

    def threads(self) -> int:
        """MKL's current thread count (``MKL_NUM_THREADS``, threadpoolctl and the like set it)."""
        return int(self.lib.MKL_Get_Max_Threads())

    def _set_blocktime(self) -> None:
        # Intel OpenMP is loaded by MKL's first threaded call; it sits beside libmkl_rt.
        self._blocktime_set = True
        try:
            iomp = ctypes.CDLL(str(self.path.with_name("libiomp5.so")))
            iomp.kmp_set_blocktime.argtypes = [ctypes.c_int]
            iomp.kmp_set_blocktime(BLOCKTIME_MS)
        except (OSError, AttributeError):  # another OpenMP runtime: its own default
            pass

    def gemm(self, A: np.ndarray, B: np.ndarray) -> np.ndarray | None:
        """``A @ B`` for 2-D float32/float64 arrays of one dtype into a new C-contiguous array,
        or None when MKL cannot take them as they lie (strides that are not a row- or
        column-major matrix, empty or over-large dimensions): the caller then uses numpy."""
        fn = self._gemm.get(A.dtype)
        if fn is None or B.dtype != A.dtype:
            return None
        (M, K), N = A.shape, B.shape[1]
        if not 0 < max(M, N, K) <= _INT_MAX or min(M, N, K) == 0:
            return None
        a, b = _operand(A), _operand(B)
        if a is None or b is None:
            return None
        C = np.empty((M, N), dtype=A.dtype)
        fn(_ROW_MAJOR, a[0], b[0], M, N, K, 1.0, A.ctypes.data, a[1], B.ctypes.data, b[1], 0.0,
           C.ctypes.data, N)
        if not self._blocktime_set:
            self._set_blocktime()
        return C


def _operand(X: np.ndarray) -> tuple[int, int] | None:
    """(transpose flag, leading dimension) of X as a row-major cblas operand, or None."""
    rows, cols = X.shape
    item = X.itemsize
    # A dimension of length 1 may have any stride: give it the contiguous one.
    s0 = X.strides[0] if rows > 1 else cols * item
    s1 = X.strides[1] if cols > 1 else item
    if s1 == item and s0 % item == 0 and max(1, cols) <= s0 // item <= _INT_MAX:
        return _NO_TRANS, s0 // item
    s0 = X.strides[0] if rows > 1 else item
    s1 = X.strides[1] if cols > 1 else rows * item
    if s0 == item and s1 % item == 0 and max(1, rows) <= s1 // item <= _INT_MAX:
        return _TRANS, s1 // item
    return None


def library_path() -> Path | None:
    """``libmkl_rt`` of the installed ``mkl`` wheel, or None when it is not installed."""
    from importlib import metadata

    try:
        files = metadata.files("mkl") or []
    except metadata.PackageNotFoundError:
        return None
    found = sorted(str(f.locate()) for f in files if Path(str(f)).name.startswith("libmkl_rt.so"))
    return Path(os.path.realpath(found[-1])) if found else None


def load() -> Mkl | None:
    """The MKL wrapper, or None when the ``mkl`` wheel is not installed or will not load."""
    path = library_path()
    if path is None:
        return None
    try:
        return Mkl(path)
    except (OSError, AttributeError):
        return None
