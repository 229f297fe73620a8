"""Intel MKL's ``sgemm``/``dgemm`` for the engine's plain products, when the ``mkl`` wheel is
installed (``pip install 'quantsim[mkl]'``).

Why: the engine's float products are small or skinny (an LSTM's 128x128·128x512 step product,
LeNet-5's convolutions as 6x100352·100352x25), where MKL, the BLAS PyTorch's CPU build runs,
is 1.5-2.5x faster than the OpenBLAS numpy ships with (measured here: 57 vs 88-136 µs for the
LSTM step product on two threads). Loaded with ctypes (no compiled extension); numpy keeps its
own BLAS for everything else.

Settings made once, when MKL is loaded:

* the LP64 interface, always (32-bit integers, as the ctypes signatures below pass them; an
  ``MKL_INTERFACE_LAYER`` in the environment would make MKL read them as 64-bit or exit);
* threading layer Intel OpenMP, or the user's ``MKL_THREADING_LAYER`` if it is ``SEQUENTIAL``
  or ``GNU`` (others, e.g. ``TBB``, need libraries the wheel does not put on the loader path,
  and MKL exits the process when it cannot load them: quantsim then uses numpy's BLAS).
  With the Intel layer, numba's OpenMP kernels run on the same Intel OpenMP runtime
  (`quantsim._openmp`: loaded when quantsim is imported);
* with the Intel layer, unless ``KMP_BLOCKTIME`` is set, worker threads spin for 1 ms after
  a product before they sleep (quantsim's ``OMP_WAIT_POLICY=PASSIVE`` would make it 0): a
  recurrent layer's products come every ~0.1 ms and waking sleeping threads doubled their
  cost; 1 ms returns the cores soon after the products stop. Set for the thread that makes
  the first product (products from other threads keep the default);
* unless ``MKL_CBWR`` is set, conditional numerical reproducibility ``AUTO``: the same result
  for the same inputs on the same CPU and thread count, whatever the arrays' alignment (no
  cost measured here).

Numerics: a correctly computed float product, as OpenBLAS's is, but the two libraries add the
terms in different orders, so float32 results (and training runs) differ in the last bits
between them. `quantsim.nn._blas` chooses the library (``QUANTSIM_BLAS``) and reports it.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

import numpy as np

from quantsim._openmp import intel_openmp_path, mkl_library_path, mkl_threading_layer

#: cblas enums
_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112
#: MKL_INTERFACE_LP64, MKL_CBWR_AUTO, MKL_CBWR_SUCCESS (mkl_service.h, mkl_cbwr.h)
_INTERFACE_LP64, _CBWR_AUTO, _CBWR_SUCCESS = 0, 2, 0
#: MKL_THREADING_* codes of the layers the wheel can load as installed
THREADING_LAYERS = {"INTEL": 0, "SEQUENTIAL": 1, "GNU": 3}
#: Intel OpenMP's spin time after a parallel region (ms), unless KMP_BLOCKTIME is set.
BLOCKTIME_MS = 1
_INT_MAX = 2**31 - 1


class Mkl:
    """The loaded ``libmkl_rt`` with its gemm entry points typed for ctypes."""

    def __init__(self, path: Path, layer: str = "INTEL") -> None:
        self.path = path
        self.layer = layer
        self.lib = ctypes.CDLL(str(path))
        lib = self.lib
        lib.MKL_Set_Interface_Layer.argtypes = [ctypes.c_int]
        lib.MKL_Set_Interface_Layer(_INTERFACE_LP64)
        lib.MKL_Set_Threading_Layer.argtypes = [ctypes.c_int]
        lib.MKL_Set_Threading_Layer(THREADING_LAYERS[layer])
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
        # Only Intel OpenMP has the setting; another threading layer keeps its own.
        self._blocktime_set = "KMP_BLOCKTIME" in os.environ or layer != "INTEL"

    def threads(self) -> int:
        """MKL's current thread count (``MKL_NUM_THREADS``, threadpoolctl and the like set it)."""
        return int(self.lib.MKL_Get_Max_Threads())

    def _set_blocktime(self) -> None:
        self._blocktime_set = True
        try:
            iomp = ctypes.CDLL(str(intel_openmp_path(self.path)))
            iomp.kmp_set_blocktime.argtypes = [ctypes.c_int]
            iomp.kmp_set_blocktime(BLOCKTIME_MS)
        except (OSError, AttributeError):  # another OpenMP runtime: its own default
            pass

    def gemm(self, A: np.ndarray, B: np.ndarray) -> np.ndarray | None:
        """``A @ B`` for 2-D float32/float64 arrays of one dtype into a new C-contiguous array,
        or None when MKL cannot take them as they lie (strides that are not a row- or
        column-major matrix, empty or over-large dimensions): the caller then uses numpy."""
        fn = self._gemm.get(A.dtype)
        if fn is None or B.dtype != A.dtype or B.shape[0] != A.shape[1]:
            return None  # numpy gives the result, or the error for mismatched shapes
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


#: Why the last `load` returned None ("" after a successful load).
load_error = ""


def load() -> Mkl | None:
    """The MKL wrapper, or None (the reason in `load_error`) when the ``mkl`` wheel is not
    installed, will not load, or the environment asks for a threading layer it cannot use."""
    global load_error
    path = mkl_library_path()
    if path is None:
        load_error = "the mkl wheel is not installed"
        return None
    layer = mkl_threading_layer()
    if layer not in THREADING_LAYERS:
        load_error = (f"MKL_THREADING_LAYER={layer} is not one quantsim can load; use one of "
                      f"{', '.join(THREADING_LAYERS)} or unset it")
        return None
    try:
        mkl = Mkl(path, layer)
    except (OSError, AttributeError) as e:
        load_error = f"{path}: {e}"
        return None
    load_error = ""
    return mkl
