"""Training on a GPU (CuPy arrays, cuBLAS, the CUDA quantization kernels) against the CPU.

Cross-cutting (nn, optim, train, runner, checkpoint), hence one file. `gpu` tests need a CUDA
GPU with ``quantsim[cuda]`` and skip cleanly without one; this project has no GPU, so they
have not been run on real hardware here (docs/gpu.md). The CPU tests check the premises.

How results are compared:

* **bit for bit** for the exact workloads (an MLP and a small LeNet with ReLU, max pooling, MSE,
  SGD with momentum, stochastic rounding in three roles, float16 chunked accumulators, all on
  float32 carriers). Element-wise operations are correctly rounded IEEE operations on both
  devices and the quantization kernels are bit-identical (tests/kernels/test_cuda.py); what
  could differ is the order in which cuBLAS and OpenBLAS add a product's terms (and numpy and
  CuPy a sum's). Every product operand passes a fixed-point point first (weights on a 2**-6
  grid below 2, activations 2**-3 below 16, errors 2**-6 below 8), which bounds the sum of
  the absolute terms of every product and sum by 2**20 quanta: each partial sum is exact in
  float32 in any order. `test_exact_workloads_are_exact` checks that bound on the products of
  a CPU run, and that float32 and float64 carriers give the same numbers.
* **to a tolerance** where exp/tanh enter (an LSTM with softmax cross-entropy, float32 roles):
  CUDA's and numpy's tanh/exp differ by a few ulp and the sums are inexact, so parameters after
  the steps agree to rtol 1e-4, atol 1e-5.
"""

from __future__ import annotations

import copy
import os

import numpy as np
import pytest

from quantsim import backend, checkpoint, nn
from quantsim.optim import SGD
from quantsim.precision import Precision, iter_points
from quantsim.train import Trainer


def _cuda_ready() -> bool:
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":  # the simulator cannot take CuPy arrays
        return False
    return backend.cuda_available()


gpu = pytest.mark.skipif(
    not _cuda_ready(), reason="needs a CUDA GPU with CuPy and numba-cuda (quantsim[cuda])"
)

EXACT = (
    "default=float32,weights=fixed<2,6>,activations=fixed<5,3>@stochastic,"
    "errors=fixed<4,6>@stochastic<4>,gradients=fixed<6,8>,optimizer_state=fixed<6,10>,"
    "updates=fixed<4,12>@stochastic,accumulator=float16,accumulator_chunk=4"
)


# -- workloads --------------------------------------------------------------------------------
def _on_grid(net: nn.Sequential, seed: int) -> nn.Sequential:
    """Initial parameters on the 2**-8 grid in [-1, 1), the same in float32 and float64."""
    rng = np.random.default_rng(seed)
    for layer in net.layers():
        for p in layer.params.values():
            p.value[...] = rng.integers(-256, 256, size=p.value.shape) / 256
    return net


def exact_mlp(dtype=np.float32) -> nn.Sequential:
    return _on_grid(nn.Sequential(
        nn.Linear(16, 16, rng=0, dtype=dtype, name="fc1"), nn.ReLU(name="relu1"),
        nn.Linear(16, 4, rng=1, dtype=dtype, name="out"),
    ), 2)


def exact_lenet(dtype=np.float32) -> nn.Sequential:
    return _on_grid(nn.Sequential(
        nn.Conv2d(1, 2, 3, padding=1, rng=0, dtype=dtype, name="conv1"), nn.ReLU(name="relu1"),
        nn.MaxPool2d(2, name="pool1"), nn.Flatten(name="flat"),
        nn.Linear(32, 4, rng=1, dtype=dtype, name="out"),
    ), 3)


def exact_data(shape: tuple[int, ...], dtype=np.float32) -> tuple[np.ndarray, np.ndarray]:
    """Integer inputs in [-2, 2] and regression targets on the 2**-4 grid in [-2, 2)."""
    rng = np.random.default_rng(4)
    X = rng.integers(-2, 3, size=(24, *shape)).astype(dtype)
    T = (rng.integers(-32, 32, size=(24, 4)) / 16).astype(dtype)
    return X, T


WORKLOADS = {"mlp": (exact_mlp, (16,)), "lenet": (exact_lenet, (1, 8, 8))}


def train_exact(name: str, device: str = "cpu", dtype=np.float32, epochs: int = 2):
    """Bind EXACT, move to `device`, train `epochs` epochs of 3 steps; returns (net, result)."""
    build, shape = WORKLOADS[name]
    net = build(dtype).bind(Precision.from_string(EXACT), seed=7)
    for _, point in iter_points(net):
        point.observe_identity = True  # exact points count too (the inputs point)
    net.to_device(device)
    trainer = Trainer(net, nn.get_loss("mse"), SGD(net, 2.0**-3, momentum=0.5),
                      batch_size=8, epochs=epochs, seed=0, metric="loss")
    result = trainer.fit(exact_data(shape, dtype))
    return net, result


def host_state(net: nn.Sequential) -> dict[str, np.ndarray]:
    return {k: backend.to_numpy(v) for k, v in net.state_dict().items()}


def lstm_net() -> nn.Sequential:
    return nn.Sequential(
        nn.LSTM(4, 8, rng=0, return_sequences=False, name="lstm"), nn.Linear(8, 3, rng=1),
    )


def lstm_data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    return rng.standard_normal((16, 5, 4)).astype(np.float32), rng.integers(0, 3, size=16)


# -- premises, on the CPU ---------------------------------------------------------------------
def _grid_exponent(a: np.ndarray) -> int:
    """The smallest k with every element of `a` a multiple of 2**-k."""
    a = np.asarray(a, dtype=np.float64)
    return next(k for k in range(80) if np.array_equal(a * 2.0**k, np.round(a * 2.0**k)))


@pytest.mark.parametrize("name", sorted(WORKLOADS))
def test_exact_workloads_are_exact(name, monkeypatch):
    """Every product's absolute terms sum to fewer than 2**20 quanta of its terms' grid (so
    any order of addition is exact in float32), and float32 and float64 carriers give the
    same numbers."""
    from quantsim.precision import LayerPoints

    worst = []
    plain = LayerPoints.matmul

    def matmul(self, A, B):
        A2, B2 = A.reshape(-1, A.shape[-1]), B.reshape(B.shape[0], -1)
        terms = np.abs(A2).astype(np.float64) @ np.abs(B2).astype(np.float64)
        worst.append(terms.max() * 2.0 ** (_grid_exponent(A2) + _grid_exponent(B2)))
        return plain(self, A, B)

    monkeypatch.setattr(LayerPoints, "matmul", matmul)
    net32, res32 = train_exact(name, dtype=np.float32)
    assert len(worst) > 10 and max(worst) < 2.0**20
    monkeypatch.setattr(LayerPoints, "matmul", plain)
    net64, res64 = train_exact(name, dtype=np.float64)
    s32, s64 = host_state(net32), host_state(net64)
    for k in s32:
        np.testing.assert_array_equal(s32[k].astype(np.float64), s64[k], err_msg=k)
    assert [h["train_loss"] for h in res32.history] == [h["train_loss"] for h in res64.history]
    rounding = {p.role for _, p in iter_points(net32) if p.calls}
    assert rounding == {"weights", "activations", "errors", "gradients", "updates",
                        "optimizer_state", "accumulator"}
    initial = host_state(WORKLOADS[name][0]())
    assert all(not np.array_equal(s32[k], initial[k]) for k in initial)  # all trained


# -- real hardware ----------------------------------------------------------------------------
def _assert_points_equal(gpu_net, cpu_net) -> None:
    from quantsim.kernels.cpu import N_STATS, S_SUM_ABS, S_SUM_REL_ERR

    gpu_points, cpu_points = dict(iter_points(gpu_net)), dict(iter_points(cpu_net))
    exact = np.ones(N_STATS, bool)  # the float sums are added in another order on the GPU
    exact[[S_SUM_ABS, S_SUM_REL_ERR]] = False
    for name, cp in cpu_points.items():
        gp = gpu_points[name]
        assert gp.calls == cp.calls, name
        np.testing.assert_array_equal(gp.stats.values[exact], cp.stats.values[exact], name)
        np.testing.assert_allclose(gp.stats.values[~exact], cp.stats.values[~exact],
                                   rtol=1e-12, err_msg=name)
        np.testing.assert_array_equal(gp.stats.log2_hist, cp.stats.log2_hist, name)


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("name", sorted(WORKLOADS))
def test_exact_training_is_bit_identical_on_gpu(name):
    import cupy

    gpu_net, gpu_res = train_exact(name, "cuda")
    cpu_net, cpu_res = train_exact(name, "cpu")
    assert all(isinstance(p.value, cupy.ndarray) for _, _, p in gpu_net.params())
    gpu_state, cpu_state = host_state(gpu_net), host_state(cpu_net)
    for k, v in cpu_state.items():
        assert gpu_state[k].dtype == v.dtype
        np.testing.assert_array_equal(gpu_state[k].view(np.uint32), v.view(np.uint32), k)
    assert [h["train_loss"] for h in gpu_res.history] == \
        [h["train_loss"] for h in cpu_res.history]
    _assert_points_equal(gpu_net, cpu_net)


@pytest.mark.gpu
@gpu
def test_lstm_training_agrees_on_gpu():
    """exp/tanh and inexact sums: parameters agree to rtol 1e-4, atol 1e-5 after 4 steps."""
    results = {}
    for device in ("cpu", "cuda"):
        net = lstm_net().bind(Precision.float32(), seed=0).to_device(device)
        trainer = Trainer(net, nn.get_loss("softmax_cross_entropy"), SGD(net, 0.5),
                          batch_size=8, epochs=2, seed=0)
        res = trainer.fit(lstm_data())
        results[device] = (host_state(net), res)
    (cpu_state, cpu_res), (gpu_state, gpu_res) = results["cpu"], results["cuda"]
    initial = host_state(lstm_net())
    for k, v in cpu_state.items():
        assert not np.array_equal(v, initial[k]), k
        np.testing.assert_allclose(gpu_state[k], v, rtol=1e-4, atol=1e-5, err_msg=k)
    np.testing.assert_allclose(gpu_res.history[-1]["train_loss"],
                               cpu_res.history[-1]["train_loss"], rtol=1e-4)


@pytest.mark.gpu
@gpu
def test_gpu_checkpoint_is_numpy_and_resumes_on_the_cpu(tmp_path):
    from quantsim.runner import run

    cfg = {"network": "mlp", "dataset": "digits", "epochs": 1, "limit": 300,
           "batch_size": 20, "network_options": {"hidden": [32]},
           "precision": "default=float32,activations=fp8_e4m3@stochastic,updates=bfloat16"}
    gpu_res = run({**cfg, "device": "cuda"}, checkpoint_dir=tmp_path, progress=False)
    tree = checkpoint.load(tmp_path)
    leaves = [v for v in tree["net"].values()]
    leaves += [a for st in tree["optimizer"]["moments"].values() for a in st.values()]
    assert leaves and all(type(a) is np.ndarray for a in leaves)
    resumed = run({**cfg, "epochs": 2, "device": "cpu"}, checkpoint_dir=tmp_path, resume=True,
                  progress=False)
    assert resumed.epochs == 2 and resumed.history[0] == gpu_res.history[0]
    cpu_res = run({**cfg, "device": "cpu"}, progress=False)
    assert abs(gpu_res.test_error - cpu_res.test_error) <= 0.1  # same run, other last bits


@pytest.mark.gpu
@gpu
def test_cpu_checkpoint_resumes_on_the_gpu(tmp_path):
    from quantsim.runner import run

    cfg = {"network": "lstm-rows", "dataset": "digits", "epochs": 1, "limit": 100,
           "batch_size": 50, "precision": "default=float32,weights=bfloat16"}
    run(cfg, checkpoint_dir=tmp_path, progress=False)
    resumed = run({**cfg, "epochs": 2, "device": "cuda"}, checkpoint_dir=tmp_path,
                  resume=True, progress=False)
    assert resumed.epochs == 2 and not resumed.diverged


@pytest.mark.gpu
@gpu
def test_train_command_on_gpu(capsys):
    from quantsim.cli import main

    assert main(["train", "mlp", "--data", "digits", "--limit", "200", "--epochs", "1",
                 "--batch-size", "20", "-o", "hidden=[16]", "--device", "cuda", "--quiet"]) == 0
    assert "test error" in capsys.readouterr().out


def test_deepcopy_keeps_the_device():
    net = exact_mlp()
    assert copy.deepcopy(net).device == net.device == backend.CPU
