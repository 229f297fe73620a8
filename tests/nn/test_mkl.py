"""MKL's gemm through ctypes (quantsim/nn/_mkl.py): layouts, numerics, settings."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

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
    big_b = np.zeros((N + 4, K + 1), dtype=dtype)  # B stored transposed, padded
    big_b[:N, 1:] = B.T
    yield A, B
    yield np.asfortranarray(A), np.asfortranarray(B)
    yield big_a[1 : M + 1, 2 : K + 2], big_b[:N, 1:].T
    yield big_a.T[2 : K + 2, 1 : M + 1].T, B


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
    assert _mkl.library_path() is None and _mkl.load() is None
