"""Array-module dispatch (quantsim.nn._xp) and device moves of layers and networks.

On numpy arrays every layer computes with numpy (no CuPy involved, results unchanged); `gpu`
tests run every layer of the zoo on CuPy arrays against numpy and skip cleanly without a GPU.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from quantsim import backend, nn
from quantsim.errors import DeviceError
from quantsim.nn._xp import array_module

from .helpers import CASE_IDS, CASES, Case, randomize_params, twin

cases = pytest.mark.parametrize("case", CASES, ids=CASE_IDS)


def _cuda_ready() -> bool:
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":  # the simulator cannot take CuPy arrays
        return False
    return backend.cuda_available()


gpu = pytest.mark.skipif(
    not _cuda_ready(), reason="needs a CUDA GPU with CuPy and numba-cuda (quantsim[cuda])"
)


def _input(case: Case, dtype=np.float64, seed: int = 0) -> np.ndarray:
    X = case.input(np.random.default_rng(seed))
    return X.astype(dtype) if X.dtype.kind == "f" else X


def _run(layer, X, seed: int = 1):
    Y, backprop = layer.forward(X, True)
    xp = array_module(Y)
    dY = xp.asarray(np.random.default_rng(seed).standard_normal(Y.shape).astype(Y.dtype))
    layer.zero_grad()
    dX = backprop(dY)
    return Y, dX, {k: p.grad for k, p in layer.params.items()}


# -- numpy arrays pick numpy ------------------------------------------------------------------
def test_array_module_of_host_data_is_numpy():
    assert array_module(np.zeros(3, np.float32)) is np
    assert array_module(np.float32(1.0), 2.0, [1, 2], None) is np
    assert array_module(np.zeros((2, 2)), np.zeros(2)) is np
    assert array_module() is np


@cases
def test_layers_compute_with_numpy_on_numpy_arrays(case):
    layer = case.make(np.float64)
    Y, dX, grads = _run(layer, _input(case))
    assert type(Y) is np.ndarray
    assert dX is None or type(dX) is np.ndarray
    assert all(type(g) is np.ndarray for g in grads.values())
    assert all(type(p.value) is np.ndarray for p in layer.params.values())


@cases
def test_to_device_cpu_changes_nothing(case):
    layer = case.make(np.float64)
    if layer.params:
        layer = randomize_params(layer)
    moved = twin(layer).to_device("cpu")
    X = _input(case)
    Y0, dX0, g0 = _run(twin(layer), X)
    Y1, dX1, g1 = _run(moved, X)
    np.testing.assert_array_equal(Y1, Y0)
    if dX0 is not None:
        np.testing.assert_array_equal(dX1, dX0)
    for k in g0:
        np.testing.assert_array_equal(g1[k], g0[k])


def test_sequential_lives_on_the_cpu_by_default():
    net = nn.Sequential(nn.Linear(3, 2, rng=0), nn.ReLU())
    assert net.device == backend.CPU
    assert net.to_device("cpu") is net and net.device == backend.CPU
    Y = net.predict([[1.0, 2.0, 3.0]])  # host data stays numpy
    assert type(Y) is np.ndarray


@pytest.mark.skipif(_cuda_ready(), reason="a CUDA device is available here")
def test_to_device_cuda_without_cuda_says_what_is_missing():
    net = nn.Sequential(nn.Linear(3, 2, rng=0), nn.ReLU())
    before = net.state_dict()
    with pytest.raises(DeviceError, match="CUDA was requested") as info:
        net.to_device("cuda")
    assert backend.cuda_status().reason in str(info.value)
    assert net.device == backend.CPU  # nothing moved
    for k, v in net.state_dict().items():
        assert type(v) is np.ndarray
        np.testing.assert_array_equal(v, before[k])


# -- real hardware ----------------------------------------------------------------------------
@pytest.mark.gpu
@gpu
@cases
def test_layer_on_gpu_matches_cpu(case):
    """Forward and backward of every layer on CuPy arrays (float64) equal numpy's to 1e-12
    (cuBLAS and CUDA's exp/tanh differ from OpenBLAS and numpy by a few ulp); the embedding's
    weight gradient bit for bit (kernels.cuda.scatter_add_rows adds in numpy's order)."""
    import cupy

    layer = case.make(np.float64)
    if layer.params:
        layer = randomize_params(layer)
    gpu_layer = twin(layer).to_device("cuda")
    X = _input(case)
    Y0, dX0, g0 = _run(layer, X)
    Y1, dX1, g1 = _run(gpu_layer, cupy.asarray(X))
    assert isinstance(Y1, cupy.ndarray)
    np.testing.assert_allclose(backend.to_numpy(Y1), Y0, rtol=1e-12, atol=1e-12)
    if dX0 is None:
        assert dX1 is None
    else:
        assert isinstance(dX1, cupy.ndarray)
        np.testing.assert_allclose(backend.to_numpy(dX1), dX0, rtol=1e-12, atol=1e-12)
    for k in g0:
        assert isinstance(g1[k], cupy.ndarray)
        if case.id == "embedding":
            np.testing.assert_array_equal(backend.to_numpy(g1[k]), g0[k])
        else:
            np.testing.assert_allclose(backend.to_numpy(g1[k]), g0[k], rtol=1e-12, atol=1e-12)
    for k, buf in gpu_layer.buffers().items():
        np.testing.assert_allclose(backend.to_numpy(buf), layer.buffers()[k], rtol=1e-12)


@pytest.mark.gpu
@gpu
def test_sequential_on_gpu_takes_host_inputs_and_loads_host_state():
    import cupy

    net = nn.Sequential(nn.Linear(3, 2, rng=0), nn.BatchNorm1d(2), nn.ReLU())
    state = net.state_dict()
    net.to_device("cuda")
    assert net.device.is_cuda
    assert isinstance(net.predict(np.ones((4, 3), np.float32)), cupy.ndarray)
    net.load_state_dict(state)  # numpy arrays into device parameters
    for k, v in net.state_dict().items():
        assert isinstance(v, cupy.ndarray)
        np.testing.assert_array_equal(backend.to_numpy(v), state[k])
