"""The training loop: seeded shuffling, evaluation, early stopping, divergence, checkpoints.

Conventions:
- Epochs are 0-based internally; ``history[i]["epoch"] == i + 1`` (1-based, as papers count).
- The training set is shuffled each epoch by ``np.random.default_rng([seed, epoch])``, so epoch
  ``e`` sees the same order whether or not the run was resumed.
- ``train_loss`` / ``train_error`` are running means over the epoch's mini-batches in training
  mode (dropout on, before each update), as most papers report them.
- Model selection: the epoch with the lowest validation metric (error for classification, loss
  for regression; ties keep the earlier epoch); ``test_error`` / ``test_loss`` of the result are
  those of that epoch. Without a validation set the last epoch is selected.
- Divergence: a non-finite loss at any step, or non-finite parameters after an epoch, ends the
  run with ``diverged=True``; nothing raises.
- Checkpoints (``checkpoint_dir``): written after every completed epoch; ``fit(resume=True)``
  continues from the last one and reproduces the uninterrupted run bit for bit. They hold host
  (numpy) arrays, so a run checkpointed on a GPU resumes on either device.
- Devices: training runs where the network's parameters are (``net.to_device("cuda")``); ``fit``
  copies the data sets there once. The shuffling order is drawn on the host, so both devices
  see the same mini-batches.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from quantsim import checkpoint
from quantsim.backend import CPU, Device, get_array_module, is_device_array, to_numpy
from quantsim.precision import iter_layers, iter_points

Dataset = tuple[np.ndarray, np.ndarray | None] | np.ndarray | None


@dataclass
class FitResult:
    """What a run produced. ``history`` holds one dict per completed epoch."""

    test_error: float | None
    test_loss: float | None
    best_epoch: int | None  # 1-based; None if no epoch completed
    diverged: bool
    epochs: int  # completed epochs
    history: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    stopped_early: bool = False
    diverged_at: dict[str, int] | None = None  # {"epoch": 1-based, "step": global step}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)


class Callback:
    """Base class of trainer callbacks (all hooks optional)."""

    def on_step_end(self, trainer: Trainer, step: int, loss: float) -> None:
        """After every optimizer step; ``step`` counts mini-batches from 1 over the run."""

    def on_epoch_end(self, trainer: Trainer, epoch: int, metrics: dict[str, Any]) -> None:
        """After every completed epoch (1-based ``epoch``) with its history record."""


def _split(data: Dataset, what: str) -> tuple[np.ndarray, np.ndarray] | None:
    """``(X, target)``; an autoencoder's ``(X, None)`` or bare ``X`` reconstructs ``X``."""
    if data is None:
        return None
    if isinstance(data, np.ndarray) or is_device_array(data):
        return data, data
    if not (isinstance(data, (tuple, list)) and len(data) == 2):
        raise ValueError(f"{what} must be (X, y), (X, None) or X, got {type(data).__name__}")
    X, y = data
    X = get_array_module(X).asarray(X)
    y = X if y is None else get_array_module(y).asarray(y)
    if len(X) != len(y):
        raise ValueError(f"{what}: X has {len(X)} samples but y has {len(y)}; they must match")
    if len(X) == 0:
        raise ValueError(f"{what} is empty")
    return X, y


def n_errors(Y: np.ndarray, target: np.ndarray) -> int:
    """Misclassified samples: argmax of ``Y`` vs integer labels or argmax of one-hot / ±1
    targets (a single output column is thresholded at 0 against a 0/1 or ±1 target)."""
    xp = get_array_module(Y)
    Y = Y.reshape(len(Y), -1)
    t = xp.asarray(target)  # onto Y's device
    if Y.shape[1] == 1:
        pred = Y[:, 0] > 0
        truth = t.reshape(len(Y)) > (0 if t.min() < 0 else 0.5)
        return int(xp.sum(pred != truth))
    pred = xp.argmax(Y, axis=1)
    truth = t.reshape(len(t)) if t.ndim == 1 or t.size == len(t) else xp.argmax(
        t.reshape(len(t), -1), axis=1)
    return int(xp.sum(pred != truth))


def _host_copy(a: Any) -> np.ndarray:
    """A numpy copy of ``a`` (a download for device arrays)."""
    return np.array(a, copy=True) if isinstance(a, np.ndarray) else to_numpy(a)


def _net_state(net: Any) -> dict[str, Any]:
    """Parameters and buffers as host (numpy) copies."""
    if hasattr(net, "state_dict"):
        return {k: _host_copy(v) for k, v in net.state_dict().items()}
    state = {}
    for layer in iter_layers(net):
        for k, p in getattr(layer, "params", {}).items():
            state[f"{layer.name}.{k}"] = _host_copy(p.value)
        for k, b in getattr(layer, "buffers", dict)().items():
            state[f"{layer.name}.{k}"] = _host_copy(b)
    return state


def _load_net_state(net: Any, state: Mapping[str, np.ndarray]) -> None:
    if hasattr(net, "load_state_dict"):
        net.load_state_dict(dict(state))
        return
    for layer in iter_layers(net):
        for k, p in getattr(layer, "params", {}).items():
            p.value[...] = get_array_module(p.value).asarray(state[f"{layer.name}.{k}"])
        for k in getattr(layer, "buffers", dict)():
            layer.set_buffer(k, state[f"{layer.name}.{k}"])


def _params_finite(net: Any) -> bool:
    return all(
        bool(get_array_module(p.value).isfinite(p.value).all())
        for layer in iter_layers(net)
        for p in getattr(layer, "params", {}).values()
    )


def _net_device(net: Any) -> Device:
    """Where the network's parameters are: its ``device``, else that of its first parameter."""
    device = getattr(net, "device", None)
    if isinstance(device, Device):
        return device
    for layer in iter_layers(net):
        for p in getattr(layer, "params", {}).values():
            if is_device_array(p.value):
                return Device("cuda", int(p.value.device.id))
            return CPU
    return CPU


def _on_device(device: Device, data: tuple[Any, Any] | None) -> tuple[Any, Any] | None:
    """A data set's arrays on ``device`` (one copy to a GPU; unchanged on the CPU)."""
    if data is None or not device.is_cuda:
        return data
    X, y = data
    Xd = device.asarray(X)
    return Xd, (Xd if y is X else device.asarray(y))


class Trainer:
    """Mini-batch training of ``net`` with ``loss_fn`` and ``optimizer``.

    ``loss_fn(Y, target) -> (loss, dY)``: mean loss over the batch (a float) and its gradient
    w.r.t. ``Y``. ``metric``: ``"error"`` (classification error rate, a fraction in [0, 1]) or
    ``"loss"`` (regression, e.g. autoencoders); ``None`` picks ``"error"`` for integer targets
    and ``"loss"`` otherwise. ``patience``: stop after that many epochs without a better
    validation metric (None: never). ``lr_schedule`` / ``momentum_schedule`` replace the
    optimizer's.
    """

    def __init__(
        self,
        net: Any,
        loss_fn: Callable[[np.ndarray, np.ndarray], tuple[float, np.ndarray]],
        optimizer: Any,
        *,
        batch_size: int,
        epochs: int,
        seed: int = 0,
        metric: str | None = None,
        patience: int | None = None,
        lr_schedule: Callable[[int], float] | None = None,
        momentum_schedule: Callable[[int], float] | None = None,
        callbacks: Iterable[Callback] = (),
        checkpoint_dir: str | Path | None = None,
        eval_batch_size: int | None = None,
    ) -> None:
        for what, v in (("batch_size", batch_size), ("epochs", epochs)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{what}={v!r}: expected a positive integer")
        if metric not in (None, "error", "loss"):
            raise ValueError(f"metric={metric!r}: use 'error' (classification) or 'loss'")
        if patience is not None and (not isinstance(patience, int) or patience < 1):
            raise ValueError(f"patience={patience!r}: expected a positive integer or None")
        self.net = net
        self.loss_fn = loss_fn
        self.optimizer = optimizer
        self.batch_size = batch_size
        self.epochs = epochs
        self.seed = int(seed)
        self.metric = metric
        self.patience = patience
        if lr_schedule is not None:
            optimizer.lr_schedule = lr_schedule
        if momentum_schedule is not None:
            if not hasattr(optimizer, "momentum_schedule"):
                raise ValueError(
                    f"momentum_schedule given but {type(optimizer).__name__} has no momentum; "
                    "use SGD(momentum=...) or drop momentum_schedule"
                )
            optimizer.momentum_schedule = momentum_schedule
        self.callbacks = list(callbacks)
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
        self.eval_batch_size = eval_batch_size or batch_size
        #: where ``fit`` trains: the network's device (set by ``fit``)
        self.device: Device = CPU
        self._reset_progress()

    def _reset_progress(self) -> None:
        self.epoch = 0  # completed epochs
        self.step = 0  # mini-batches over the run
        self.history: list[dict[str, Any]] = []
        self.best: dict[str, Any] = {"epoch": None, "value": None, "test_error": None,
                                     "test_loss": None}
        self.bad_epochs = 0

    # -- evaluation ---------------------------------------------------------------------------

    def _metric(self, target: np.ndarray) -> str:
        if self.metric is not None:
            return self.metric
        return "error" if np.issubdtype(target.dtype, np.integer) else "loss"

    def evaluate(self, X: np.ndarray, target: np.ndarray) -> dict[str, float]:
        """Mean loss (sample-weighted) and, for classification, error rate, in eval mode."""
        total, errors = 0.0, 0
        classify = self._metric(target) == "error"
        for start in range(0, len(X), self.eval_batch_size):
            stop = start + self.eval_batch_size
            xb, tb = X[start:stop], target[start:stop]
            Y, _ = self.net.forward(xb, train=False)
            loss, _ = self.loss_fn(Y, tb)
            total += float(loss) * len(xb)
            if classify:
                errors += n_errors(Y, tb)
        out = {"loss": total / len(X)}
        if classify:
            out["error"] = errors / len(X)
        return out

    # -- the loop -----------------------------------------------------------------------------

    def fit(
        self,
        train: Dataset,
        val: Dataset = None,
        test: Dataset = None,
        *,
        resume: bool = False,
    ) -> FitResult:
        """Train up to ``self.epochs`` epochs, counting those of a resumed checkpoint.

        Without ``resume`` every call starts a new run (epoch 0, empty history) from the
        network's current parameters.
        """
        train_s = _split(train, "train")
        if train_s is None:
            raise ValueError("fit needs a training set: train=(X, y)")
        val_s, test_s = _split(val, "val"), _split(test, "test")
        self.device = _net_device(self.net)
        train_s, val_s, test_s = (_on_device(self.device, s) for s in (train_s, val_s, test_s))
        X, y = train_s
        metric = self._metric(y)
        t0 = time.perf_counter()
        self._reset_progress()
        if resume:
            if self.checkpoint_dir is None:
                raise ValueError("fit(resume=True) needs Trainer(checkpoint_dir=...)")
            self._restore()
        # A diverging run overflows on purpose; it is detected and reported, not warned about.
        with np.errstate(over="ignore", invalid="ignore"):
            diverged_at, stopped_early = self._loop(X, y, val_s, test_s, metric)
        return FitResult(
            test_error=self.best["test_error"],
            test_loss=self.best["test_loss"],
            best_epoch=self.best["epoch"],
            diverged=diverged_at is not None,
            epochs=self.epoch,
            history=list(self.history),
            seconds=time.perf_counter() - t0,
            stopped_early=stopped_early,
            diverged_at=diverged_at,
        )

    def _loop(
        self,
        X: np.ndarray,
        y: np.ndarray,
        val_s: tuple[np.ndarray, np.ndarray] | None,
        test_s: tuple[np.ndarray, np.ndarray] | None,
        metric: str,
    ) -> tuple[dict[str, int] | None, bool]:
        """Run the remaining epochs; returns ``(diverged_at, stopped_early)``."""
        diverged_at = None
        stopped_early = False
        n = len(X)
        while self.epoch < self.epochs:
            if self.patience is not None and self.bad_epochs >= self.patience:
                stopped_early = True
                break
            e = self.epoch
            t_epoch = time.perf_counter()
            self.optimizer.set_epoch(e)
            order = np.random.default_rng([self.seed, e]).permutation(n)
            if self.device.is_cuda:
                order = self.device.asarray(order)  # index on the device
            loss_sum, err_sum, skipped = 0.0, 0, 0
            for start in range(0, n, self.batch_size):
                idx = order[start:start + self.batch_size]
                xb, tb = X[idx], y[idx]
                self.optimizer.zero_grad()
                Y, backprop = self.net.forward(xb, train=True)
                loss, dY = self.loss_fn(Y, tb)
                loss = float(loss)
                self.step += 1
                if not math.isfinite(loss):
                    diverged_at = {"epoch": e + 1, "step": self.step}
                    break
                scale = self.optimizer.loss_scale
                if scale != 1.0:
                    dY = dY * dY.dtype.type(scale)
                if getattr(backprop, "input_grad_optional", False):
                    backprop(dY, input_grad=False)  # dL/dX of the data is never used
                else:
                    backprop(dY)
                if not self.optimizer.step():
                    skipped += 1
                loss_sum += loss * len(idx)
                if metric == "error":
                    err_sum += n_errors(Y, tb)
                for cb in self.callbacks:
                    cb.on_step_end(self, self.step, loss)
            if diverged_at is None and not _params_finite(self.net):
                diverged_at = {"epoch": e + 1, "step": self.step}
            if diverged_at is not None:
                break
            record: dict[str, Any] = {"epoch": e + 1, "train_loss": loss_sum / n}
            if metric == "error":
                record["train_error"] = err_sum / n
            for name, data in (("val", val_s), ("test", test_s)):
                if data is not None:
                    for k, v in self.evaluate(*data).items():
                        record[f"{name}_{k}"] = v
            record.update(self.optimizer.hyperparams())
            record["loss_scale"] = self.optimizer.loss_scale
            record["skipped_steps"] = skipped
            if val_s is not None and not math.isfinite(record[f"val_{metric}"]):
                diverged_at = {"epoch": e + 1, "step": self.step}
                break
            record["seconds"] = time.perf_counter() - t_epoch
            self._select(record, metric, has_val=val_s is not None)
            self.history.append(record)
            self.epoch = e + 1
            if self.checkpoint_dir is not None:
                self._save()
            for cb in self.callbacks:
                cb.on_epoch_end(self, e + 1, record)
        return diverged_at, stopped_early

    def _select(self, record: Mapping[str, Any], metric: str, has_val: bool) -> None:
        value = record[f"val_{metric}"] if has_val else None
        better = not has_val or self.best["value"] is None or value < self.best["value"]
        if better:
            self.best = {
                "epoch": record["epoch"],
                "value": value,
                "test_error": record.get("test_error"),
                "test_loss": record.get("test_loss"),
            }
            self.bad_epochs = 0
        else:
            self.bad_epochs += 1

    # -- checkpoints --------------------------------------------------------------------------

    def _save(self) -> None:
        tree = {
            "trainer": {
                "epoch": self.epoch,
                "step": self.step,
                "seed": self.seed,
                "best": dict(self.best),
                "bad_epochs": self.bad_epochs,
                "history": self.history,
            },
            "net": _net_state(self.net),
            "optimizer": self.optimizer.state_dict(),
            "points": {name: p.state_dict() for name, p in iter_points(self.net)},
        }
        checkpoint.save(self.checkpoint_dir, tree, tag=f"{self.epoch:05d}")

    def _restore(self) -> None:
        tree = checkpoint.load(self.checkpoint_dir)
        if tree is None:
            return  # nothing saved yet: start from scratch
        t = tree["trainer"]
        if t["seed"] != self.seed:
            raise ValueError(
                f"checkpoint in {self.checkpoint_dir} was made with seed {t['seed']}, this "
                f"Trainer has seed {self.seed}; use the same seed or another directory"
            )
        _load_net_state(self.net, tree["net"])
        self.optimizer.load_state_dict(tree["optimizer"])
        points = dict(iter_points(self.net))
        missing = sorted(set(tree["points"]) ^ set(points))
        if missing:
            raise ValueError(
                f"checkpoint quantization points differ from this network's: {missing}; "
                "resume with the same network and precision policy"
            )
        for name, state in tree["points"].items():
            points[name].load_state_dict(state)
        self.epoch = int(t["epoch"])
        self.step = int(t["step"])
        self.best = dict(t["best"])
        self.bad_epochs = int(t["bad_epochs"])
        self.history = list(t["history"])

