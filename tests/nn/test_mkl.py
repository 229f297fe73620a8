"""MKL's gemm through ctypes (quantsim/nn/_mkl.py): layouts, numerics, settings."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from quantsim import _openmp
from quantsim.nn import _mkl

MKL = _mkl.load()
needs_mkl = pytest.mark.skipif(MKL is None, reason="the mkl wheel is not installed")


def _views(M: int, K: int, N: int, dtype, rng):
    """(A, B) pairs of one product in every layout MKL takes: contiguous, transposed, and
    sub-matrices of larger arrays (a leading dimension larger than the row)."""
    A = rng.standard_normal((M, K)).astype(dtype)
    B = rng.standard_normal((K, N)).astype(dtype)
    big_a = np.zeros((M + 3, K + 5), dtype=dtype)
    big_a[1 : M + 1, 2 : K + 2] = A
    big_at = np.zeros((K + 2, M + 6), dtype=dtype)  # A stored transposed, padded
    big_at[1 : K + 1, 3 : M + 3] = A.T
    big_b = np.zeros((N + 4, K + 1), dtype=dtype)  # B stored transposed, padded
    big_b[:N, 1:] = B.T
    yield A, B
    yield np.asfortranarray(A), np.asfortranarray(B)
    yield big_a[1 : M + 1, 2 : K + 2], big_b[:N, 1:].T
    yield big_at[1 : K + 1, 3 : M + 3].T, B


@needs_mkl
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 1, 1), (1, 7, 5), (6, 1, 4), (5, 9, 1), (7, 33, 5),
                                   (128, 128, 512), (6, 4000, 25)])
def test_gemm_is_the_product_in_every_layout(shape, dtype):
    M, K, N = shape
    rng = np.random.default_rng(sum(shape))
    eps = np.finfo(dtype).eps
    for A, B in _views(M, K, N, dtype, rng):
        C = MKL.gemm(A, B)
        assert C is not None and C.dtype == dtype and C.shape == (M, N)
        assert C.flags.c_contiguous
        want = A.astype(np.longdouble) @ B.astype(np.longdouble)
        bound = K * eps * (np.abs(A).astype(np.longdouble) @ np.abs(B).astype(np.longdouble))
        assert np.all(np.abs(C - want) <= bound)


@needs_mkl
def test_gemm_declines_what_it_cannot_take():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((6, 8)).astype(np.float32)
    B = rng.standard_normal((8, 4)).astype(np.float32)
    assert MKL.gemm(A[:, ::2], B[::2]) is None  # no unit stride
    assert MKL.gemm(A, B.astype(np.float64)) is None  # mixed dtypes
    assert MKL.gemm(A.astype(np.float16), B.astype(np.float16)) is None
    assert MKL.gemm(A[:0], B) is None and MKL.gemm(A[:, :0], B[:0]) is None  # empty
    assert MKL.gemm(A, B[:5]) is None  # mismatched: numpy raises its error


def test_engine_product_of_mismatched_shapes_raises_as_numpy():
    from quantsim.nn import _blas

    with pytest.raises(ValueError, match="mismatch"):
        _blas.matmul(np.ones((2, 2**20), np.float32), np.ones((2, 2), np.float32))


@needs_mkl
def test_gemm_does_not_depend_on_alignment():
    # MKL_CBWR=AUTO: the same bits whatever the operands' addresses.
    rng = np.random.default_rng(3)
    A = rng.standard_normal((37, 300)).astype(np.float32)
    B = rng.standard_normal((300, 29)).astype(np.float32)
    want = MKL.gemm(A, B)
    for shift in range(1, 16):
        buf = np.empty(A.size + 16, np.float32)
        A2 = buf[shift : shift + A.size].reshape(A.shape)
        A2[...] = A
        np.testing.assert_array_equal(MKL.gemm(A2, B).view(np.uint32), want.view(np.uint32))


@needs_mkl
def test_settings_made_unless_the_environment_has_them():
    code = (
        "import ctypes, json\n"
        "import numpy as np\n"
        "from quantsim.nn import _mkl\n"
        "m = _mkl.load()\n"
        "m.gemm(np.ones((64, 64), np.float32), np.ones((64, 64), np.float32))\n"
        "iomp = ctypes.CDLL(str(m.path.with_name('libiomp5.so')))\n"
        "print(json.dumps({'blocktime': iomp.kmp_get_blocktime(),\n"
        "                  'cbwr': m.lib.MKL_CBWR_Get(1)}))\n"
    )
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MKL_", "KMP_"))}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout
    assert json.loads(out) == {"blocktime": _mkl.BLOCKTIME_MS, "cbwr": 2}
    env["KMP_BLOCKTIME"] = "7"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout
    assert json.loads(out)["blocktime"] == 7
    # another threading layer: Intel OpenMP (loaded here only to ask) keeps its default
    del env["KMP_BLOCKTIME"]
    env["MKL_THREADING_LAYER"] = "SEQUENTIAL"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout
    assert json.loads(out)["blocktime"] != _mkl.BLOCKTIME_MS


def test_load_without_the_wheel_is_none(monkeypatch):
    from importlib import metadata

    def missing(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "files", missing)
    assert _openmp.mkl_library_path() is None and _mkl.load() is None
    assert "not installed" in _mkl.load_error


@needs_mkl
@pytest.mark.parametrize("choice", ["auto", "numpy"])
def test_numba_and_mkl_share_one_openmp_runtime(choice, tmp_path):
    # numba's OpenMP pool started before any MKL product binds to the Intel runtime that
    # `import quantsim` loaded, unless QUANTSIM_BLAS=numpy (then GNU OpenMP, as without MKL).
    code = (
        "import quantsim, numba, numpy as np\n"
        "@numba.njit(parallel=True)\n"
        "def f(x):\n"
        "    s = 0.0\n"
        "    for i in numba.prange(x.size):\n"
        "        s += x[i]\n"
        "    return s\n"
        "f(np.ones(1000))\n"
        "print(numba.threading_layer())\n"
    )
    env = dict(os.environ, QUANTSIM_BLAS=choice, LD_DEBUG="bindings",
               LD_DEBUG_OUTPUT=str(tmp_path / "ld"), NUMBA_THREADING_LAYER="omp")
    env.pop("MKL_THREADING_LAYER", None)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "omp"
    bound = {line.rsplit(" to ", 1)[1].split()[0].rsplit("/", 1)[-1]
             for f in tmp_path.glob("ld*") for line in f.read_text().splitlines()
             if "omppool" in line and "normal symbol `omp_get_thread_num'" in line}
    want = "libiomp5.so" if choice == "auto" else "libgomp"
    assert bound and all(b.startswith(want) for b in bound), bound


@needs_mkl
@pytest.mark.parametrize("layer", ["ILP64", "GNU", "GNU,ILP64"])
def test_interface_layer_in_the_environment_is_overridden(layer):
    code = ("import numpy as np\n"
            "from quantsim.nn import _blas\n"
            "A = np.arange(35, dtype=np.float32).reshape(7, 5)\n"
            "B = np.arange(30, dtype=np.float32).reshape(5, 6)\n"
            "print(_blas.backend(), bool((_blas.matmul(A, B) == A @ B).all()))\n")
    env = dict(os.environ, MKL_INTERFACE_LAYER=layer)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout
    assert out.split() == ["mkl", "True"]


@needs_mkl
def test_threading_layer_mkl_cannot_load_falls_back_with_the_reason():
    code = ("from quantsim.nn import _blas, _mkl\n"
            "print(_blas.use('auto'))\n"
            "print(_mkl.load_error)\n"
            "_blas.use('mkl')\n")
    env = dict(os.environ, MKL_THREADING_LAYER="tbb")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert proc.stdout.splitlines()[0] == "numpy"
    assert "MKL_THREADING_LAYER=TBB" in proc.stdout
    assert proc.returncode != 0 and "MKL_THREADING_LAYER=TBB" in proc.stderr
    assert "QUANTSIM_BLAS=numpy" in proc.stderr
