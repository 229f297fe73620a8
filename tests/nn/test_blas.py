"""The engine's choice of BLAS (quantsim/nn/_blas.py): QUANTSIM_BLAS, errors, the products."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from quantsim.errors import QuantsimError
from quantsim.nn import Linear, ReLU, Sequential, _blas, _mkl, softmax_cross_entropy
from quantsim.optim import SGD
from quantsim.precision import Precision

HAS_MKL = _mkl.load() is not None


@pytest.fixture
def restore_choice():
    before = _blas._engine_mkl
    yield
    _blas._engine_mkl = before


def _operands():
    rng = np.random.default_rng(4)
    return (rng.standard_normal((40, 300)).astype(np.float32),
            rng.standard_normal((300, 30)).astype(np.float32))


def test_numpy_choice_is_numpys_product(restore_choice):
    assert _blas.use("numpy") == "numpy" == _blas.backend()
    A, B = _operands()
    np.testing.assert_array_equal(_blas.matmul(A, B), A @ B)
    assert _blas.describe().startswith("numpy's BLAS")


@pytest.mark.skipif(not HAS_MKL, reason="the mkl wheel is not installed")
def test_mkl_choice_runs_mkl(restore_choice):
    assert _blas.use("MKL") == "mkl" == _blas.backend()
    assert _blas.use("auto") == "mkl"  # installed: auto takes it
    A, B = _operands()
    np.testing.assert_array_equal(_blas.matmul(A, B), _blas._engine_mkl.gemm(A, B))
    np.testing.assert_array_equal(_blas.matmul(A[:, ::2], B[::2]), A[:, ::2] @ B[::2])
    assert "Math Kernel Library" in _blas.describe()


def test_bad_choices_say_what_to_do(restore_choice, monkeypatch):
    with pytest.raises(QuantsimError, match=r"QUANTSIM_BLAS='openblas'.*auto, mkl, numpy"):
        _blas.use("openblas")
    monkeypatch.setattr(_mkl, "load", lambda: None)
    with pytest.raises(QuantsimError, match=r"pip install 'quantsim\[mkl\]'.*QUANTSIM_BLAS=numpy"):
        _blas.use("mkl")
    assert _blas.use("auto") == "numpy"  # not installed: numpy's BLAS, no error
    assert _blas.use("") == "numpy"  # set but empty: auto


@pytest.mark.parametrize("choice", ["numpy", "auto"])
def test_environment_variable_chooses(choice):
    code = "from quantsim.nn import _blas; print(_blas.backend())"
    env = dict(os.environ, QUANTSIM_BLAS=choice)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == ("mkl" if choice == "auto" and HAS_MKL else "numpy")


def test_environment_variable_error_names_the_value():
    code = "import numpy as np; from quantsim.nn import _blas; _blas.matmul(np.ones((2, 2)), " \
           "np.ones((2, 2)))"
    env = dict(os.environ, QUANTSIM_BLAS="fast")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert proc.returncode != 0 and "QUANTSIM_BLAS='fast'" in proc.stderr


def _train(steps: int = 5) -> list[float]:
    rng = np.random.default_rng(0)
    net = Sequential(Linear(20, 32, rng=rng), ReLU(), Linear(32, 4, rng=rng))
    net.bind(Precision.float32(), 0)
    opt = SGD(net, 0.1, momentum=0.9)
    X = rng.standard_normal((64, 20)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int) + 2 * (X[:, 1] > 0)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        Y, backprop = net.forward(X, train=True)
        loss, dY = softmax_cross_entropy(Y, y)
        backprop(dY)
        opt.step()
        losses.append(float(loss))
    return losses


@pytest.mark.parametrize("choice", ["numpy"] + (["mkl"] if HAS_MKL else []))
def test_training_runs_and_repeats_with_either_library(choice, restore_choice):
    _blas.use(choice)
    first = _train()
    assert first[-1] < first[0]
    assert _train() == first  # same library, same bits
