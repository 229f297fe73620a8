"""Shared test machinery: numerical gradient checks, fake points objects, a layer zoo, SGD."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from quantsim import nn
from quantsim.nn import _blas as blas
from quantsim.nn.base import IdentityPoints, Layer

Net = Layer | nn.Sequential


# -- numerical gradients ------------------------------------------------------------------
def _snapshot(obj: Net) -> Callable[[], None]:
    """A function restoring every buffer (BatchNorm stats, Dropout counters) as it is now."""
    saved = [(layer, layer.buffers()) for layer in obj.layers()]

    def restore() -> None:
        for layer, bufs in saved:
            for k, v in bufs.items():
                layer.set_buffer(k, v)

    return restore


def numerical_grad(f: Callable[[], float], x: np.ndarray, eps: float) -> np.ndarray:
    """Central differences of scalar ``f()`` w.r.t. each element of ``x`` (perturbed in place)."""
    g = np.zeros_like(x)
    flat, gflat = x.reshape(-1), g.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        fp = f()
        flat[i] = old - eps
        fm = f()
        flat[i] = old
        gflat[i] = (fp - fm) / (2 * eps)
    return g


def check_gradients(
    obj: Net, X: np.ndarray, *, train: bool = True, seed: int = 0, eps: float = 1e-6,
    rtol: float = 1e-5, atol: float = 1e-8,
) -> None:
    """Compare dX and every dParam of ``obj`` (float64) with central differences of
    ``sum(Y * R)`` for a fixed random R."""
    for layer in obj.layers():
        for p in layer.params.values():
            if p.value.dtype != np.float64:
                raise ValueError("check_gradients needs float64 parameters: call astype first")
    restore = _snapshot(obj)
    Y, backprop = obj.forward(X, train)
    R = np.random.default_rng([seed, 7919]).standard_normal(Y.shape)
    obj.zero_grad()
    dX = backprop(R.copy())

    def f() -> float:
        restore()
        return float((obj.forward(X, train)[0] * R).sum())

    if X.dtype.kind == "f":
        np.testing.assert_allclose(dX, numerical_grad(f, X, eps), rtol=rtol, atol=atol,
                                   err_msg="dX")
    else:
        assert dX is None
    for layer in obj.layers():
        for name, p in layer.params.items():
            num = numerical_grad(f, p.value, eps)
            np.testing.assert_allclose(p.grad, num, rtol=rtol, atol=atol,
                                       err_msg=f"d{layer.name}.{name}")
    restore()


def check_loss_gradient(loss: Callable, Y: np.ndarray, target: np.ndarray,
                        eps: float = 1e-6) -> None:
    _, dY = loss(Y, target)
    num = numerical_grad(lambda: loss(Y, target)[0], Y, eps)
    np.testing.assert_allclose(dY, num, rtol=1e-5, atol=1e-9)


# -- fake points --------------------------------------------------------------------------
@dataclass
class RecordingPoints(IdentityPoints):
    """Identity points that log every call as (role, argument shape) and keep matmul outputs."""

    calls: list[tuple[str, tuple[int, ...]]] = field(default_factory=list)
    matmul_outputs: list[np.ndarray] = field(default_factory=list)
    gradient_inputs: list[np.ndarray] = field(default_factory=list)

    def _log(self, role: str, x: Any) -> Any:
        self.calls.append((role, tuple(np.shape(x))))
        return x

    def inputs(self, X, out=None, *, tag=None):
        return self._log("inputs", X)

    def weights(self, W, out=None, *, tag=None):
        return self._log("weights", W)

    def activations(self, Y, out=None, *, tag=None):
        return self._log("activations", Y)

    def errors(self, dY, out=None, *, tag=None):
        return self._log("errors", dY)

    def gradients(self, dW, out=None, *, tag=None):
        self.gradient_inputs.append(dW)
        return self._log("gradients", dW)

    def updates(self, W, out=None, *, tag=None):
        return self._log("updates", W)

    def optimizer_state(self, m, out=None, *, tag=None):
        return self._log("optimizer_state", m)

    def matmul(self, A, B):
        self.calls.append(("matmul", (tuple(A.shape), tuple(B.shape))))
        out = blas.matmul(A, B)  # the engine's product (MKL or numpy's BLAS)
        self.matmul_outputs.append(out)
        return out

    def roles(self) -> list[str]:
        return [c[0] for c in self.calls]


class ScaledWeightsPoints(IdentityPoints):
    """``weights(W) = 2·W``: a layer using it must behave like one whose parameters are doubled."""

    def weights(self, W, out=None, *, tag=None):
        return W * 2


class ZeroGradientsPoints(IdentityPoints):
    """``gradients(dW) = 0``: every accumulated gradient must then stay zero."""

    def gradients(self, dW, out=None, *, tag=None):
        return dW * 0


# -- the layer zoo ------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    """One layer configuration with a small input; ``gemm`` = number of GEMM families (1 or 0)."""

    id: str
    make: Callable[[Any], Layer]
    input: Callable[[np.random.Generator], np.ndarray]
    gemm: bool = False
    train_only_grad: bool = False


def _normal(*shape: int) -> Callable[[np.random.Generator], np.ndarray]:
    return lambda rng: rng.standard_normal(shape)


CASES = [
    Case("linear", lambda dt: nn.Linear(4, 3, rng=1, dtype=dt), _normal(5, 4), gemm=True),
    Case("linear_3d_nobias", lambda dt: nn.Linear(4, 3, rng=2, bias=False, dtype=dt),
         _normal(2, 3, 4), gemm=True),
    Case("conv", lambda dt: nn.Conv2d(2, 3, 3, rng=3, padding=1, dtype=dt), _normal(2, 2, 5, 5),
         gemm=True),
    Case("conv_stride_rect", lambda dt: nn.Conv2d(2, 2, (3, 2), rng=4, stride=2,
                                                  padding=(1, 0), dtype=dt),
         _normal(2, 2, 6, 5), gemm=True),
    Case("maxpool", lambda dt: nn.MaxPool2d(2), _normal(2, 2, 4, 5)),
    Case("maxpool_overlap_pad", lambda dt: nn.MaxPool2d(3, stride=2, padding=1),
         _normal(2, 2, 5, 5)),
    Case("avgpool", lambda dt: nn.AvgPool2d(2), _normal(2, 2, 4, 4)),
    Case("avgpool_overlap_pad", lambda dt: nn.AvgPool2d(3, stride=2, padding=1),
         _normal(1, 2, 5, 6)),
    Case("maxout", lambda dt: nn.Maxout(4, 3, 2, rng=5, dtype=dt), _normal(5, 4), gemm=True),
    Case("maxoutpool_conv", lambda dt: nn.MaxoutPool(3), _normal(2, 6, 2, 3)),
    Case("dropout", lambda dt: nn.Dropout(0.4, seed=7), _normal(4, 6)),
    Case("relu", lambda dt: nn.ReLU(), _normal(4, 5)),
    Case("tanh", lambda dt: nn.Tanh(), _normal(4, 5)),
    Case("sigmoid", lambda dt: nn.Sigmoid(), _normal(4, 5)),
    Case("flatten", lambda dt: nn.Flatten(), _normal(2, 3, 2, 2)),
    Case("reshape", lambda dt: nn.Reshape(3, -1), _normal(2, 12)),
    Case("batchnorm1d", lambda dt: nn.BatchNorm1d(3, dtype=dt), _normal(6, 3)),
    Case("batchnorm2d", lambda dt: nn.BatchNorm2d(2, dtype=dt), _normal(3, 2, 3, 3)),
    Case("lstm_seq", lambda dt: nn.LSTM(3, 2, rng=6, dtype=dt), _normal(2, 4, 3), gemm=True),
    Case("lstm_last", lambda dt: nn.LSTM(3, 2, rng=7, return_sequences=False, dtype=dt),
         _normal(2, 3, 3), gemm=True),
    Case("gru_seq", lambda dt: nn.GRU(3, 2, rng=8, dtype=dt), _normal(2, 4, 3), gemm=True),
    Case("gru_last", lambda dt: nn.GRU(3, 2, rng=9, return_sequences=False, dtype=dt),
         _normal(2, 3, 3), gemm=True),
    Case("lstm_one_step", lambda dt: nn.LSTM(3, 2, rng=11, dtype=dt), _normal(2, 1, 3),
         gemm=True),
    Case("gru_one_step", lambda dt: nn.GRU(3, 2, rng=12, return_sequences=False, dtype=dt),
         _normal(2, 1, 3), gemm=True),
    Case("embedding", lambda dt: nn.Embedding(5, 3, rng=10, dtype=dt),
         lambda rng: rng.integers(0, 5, size=(3, 4))),
]
CASE_IDS = [c.id for c in CASES]


def randomize_params(layer: Layer, seed: int = 123) -> Layer:
    """Move parameters away from their initial values (e.g. BatchNorm's gamma=1, beta=0)."""
    rng = np.random.default_rng(seed)
    for p in layer.params.values():
        p.value[...] = p.value + 0.3 * rng.standard_normal(p.value.shape)
    return layer


def twin(obj: Net) -> Net:
    return copy.deepcopy(obj)


# -- training -----------------------------------------------------------------------------
def sgd_losses(net: Net, X: np.ndarray, target: np.ndarray, loss: Callable, *, lr: float,
               steps: int) -> list[float]:
    """Plain full-batch SGD; returns the loss before each step and after the last one."""
    losses = []
    for _ in range(steps):
        Y, backprop = net.forward(X, True)
        value, dY = loss(Y, target)
        losses.append(value)
        net.zero_grad()
        backprop(dY)
        for layer in net.layers():
            for p in layer.params.values():
                p.value -= lr * p.grad
    losses.append(loss(net.forward(X, True)[0], target)[0])
    return losses
