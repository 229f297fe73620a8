"""The PyTorch side of bench_train.py, run in its own process.

OpenMP's wait policy is process-wide and read when a runtime loads: quantsim asks for
``OMP_WAIT_POLICY=PASSIVE`` (numba's idle threads must not spin while OpenBLAS works), while
PyTorch's many short parallel regions run fastest with its default (spinning) policy. So that
each side runs as its users would run it, bench_train.py starts this script with the
environment the user gave (quantsim is never imported here) and drives it over stdin/stdout:

    ready                           (printed once the network is built)
    run N  ->  "<ms> <ms> ... <loss>"  (N consecutive training steps, each timed here)
    quit

The steps run as one block, not interleaved with quantsim's: OpenMP threads that spin in one
process after its step slow the other process's next step (measured: interleaving them made
PyTorch's LeNet-5 step 15.5 ms instead of 8.8 and quantsim's MLP step 13.7 instead of 9.0).
"""

from __future__ import annotations

import sys
import time

import numpy as np

BATCH = 128
LR, MOMENTUM = 0.01, 0.9


def data(model: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The fixed random batch of `model` (the same arrays on both sides)."""
    rng = np.random.default_rng(seed)
    shape = {"mlp": (BATCH, 784), "lenet5": (BATCH, 1, 28, 28), "lstm": (BATCH, 28, 28)}[model]
    X = rng.random(shape, dtype=np.float32)
    y = rng.integers(0, 10, size=BATCH)
    return X, y


def qpytorch_mlp():
    """The MLP with QPyTorch quantizers mirroring bench_train's ``allq`` policy as far as
    QPyTorch can express it: 8-bit floats (exp 4, man 3; QPyTorch's own format, not OCP E4M3)
    for activations/errors (stochastic) after every layer, weights (nearest) and gradients
    (stochastic) in the optimizer wrapper, momentum and the weight accumulator in 16-bit fixed
    point with 12 fraction bits (stochastic). Returns (net, wrap) with wrap(optimizer)."""
    from qtorch import FixedPoint, FloatingPoint
    from qtorch.optim import OptimLP
    from qtorch.quant import Quantizer, quantizer
    from torch import nn

    fp8 = FloatingPoint(exp=4, man=3)
    fixed = FixedPoint(wl=16, fl=12)

    def act():
        return Quantizer(forward_number=fp8, backward_number=fp8,
                         forward_rounding="stochastic", backward_rounding="stochastic")

    net = nn.Sequential(nn.Linear(784, 1000), act(), nn.ReLU(), act(), nn.Linear(1000, 1000),
                        act(), nn.ReLU(), act(), nn.Linear(1000, 10), act())

    def wrap(opt):
        return OptimLP(
            opt,
            weight_quant=quantizer(forward_number=fp8, forward_rounding="nearest"),
            grad_quant=quantizer(forward_number=fp8, forward_rounding="stochastic"),
            momentum_quant=quantizer(forward_number=fixed, forward_rounding="stochastic"),
            acc_quant=quantizer(forward_number=fixed, forward_rounding="stochastic"),
        )

    return net, wrap


def torch_step(model: str, threads: int):
    import torch
    from torch import nn

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    wrap = None
    if model == "mlp-qpytorch":
        net, wrap = qpytorch_mlp()
        model = "mlp"
    elif model == "mlp":
        net = nn.Sequential(nn.Linear(784, 1000), nn.ReLU(), nn.Linear(1000, 1000), nn.ReLU(),
                            nn.Linear(1000, 10))
    elif model == "lenet5":
        net = nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
        )
    else:
        class RowLSTM(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.lstm = nn.LSTM(28, 128, batch_first=True)
                self.out = nn.Linear(128, 10)

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                h, _ = self.lstm(x)
                return self.out(h[:, -1])

        net = RowLSTM()
    opt = torch.optim.SGD(net.parameters(), lr=LR, momentum=MOMENTUM)
    if wrap is not None:
        opt = wrap(opt)
    Xn, yn = data(model)
    X, y = torch.from_numpy(Xn), torch.from_numpy(yn)
    loss_fn = nn.CrossEntropyLoss()

    # QPyTorch's OptimLP.zero_grad has no set_to_none; plain PyTorch keeps its buffers.
    zero_grad = opt.zero_grad if wrap is not None else (
        lambda: opt.zero_grad(set_to_none=False))

    def step() -> float:
        zero_grad()
        loss = loss_fn(net(X), y)
        loss.backward()
        opt.step()
        return float(loss.detach())

    return step


def serve(model: str, threads: int) -> None:
    step = torch_step(model, threads)
    print("ready", flush=True)
    for line in sys.stdin:
        words = line.split()
        if len(words) != 2 or words[0] != "run":
            break
        times, loss = [], float("nan")
        for _ in range(int(words[1])):
            t0 = time.perf_counter()
            loss = step()
            times.append((time.perf_counter() - t0) * 1e3)
        print(" ".join(repr(v) for v in [*times, loss]), flush=True)


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]))
