"""A tiny stand-in for ``quantsim.runner`` (same contract, no data, no sklearn): fast worker
processes for the executor tests. Config keys: network ("toy"), dataset ("none"), epochs, lr,
seed, mode ("ok" | "fail" | "diverge"), sleep (seconds per epoch), precision, device."""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np

from quantsim import checkpoint
from quantsim.errors import QuantsimError

KEYS = {"network", "dataset", "epochs", "lr", "seed", "mode", "sleep", "precision", "device"}


class ConfigError(QuantsimError, ValueError):
    pass


@dataclass(frozen=True)
class RunConfig:
    d: dict

    @classmethod
    def from_dict(cls, d: dict) -> RunConfig:
        for k in d:
            if k not in KEYS:
                raise ConfigError(f"unknown key {k!r}; valid keys are {', '.join(sorted(KEYS))}")
        if d.get("network") != "toy":
            raise ConfigError(f"network: unknown network {d.get('network')!r}; available: toy")
        e = d.get("epochs", 3)
        if isinstance(e, bool) or not isinstance(e, int) or e < 1:
            raise ConfigError(f"epochs: expected a positive integer, got {e!r}")
        return cls(dict(d))

    def to_dict(self) -> dict:
        return dict(self.d)

    def hash(self) -> str:
        return hashlib.sha256(json.dumps(self.d, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class Result:
    d: dict
    stats: Any = None

    def to_dict(self) -> dict:
        return dict(self.d)


def run(cfg: RunConfig, checkpoint_dir=None, resume=False, callbacks=(), progress=False):
    d = cfg.d
    if d.get("mode") == "fail":
        raise RuntimeError("this run fails on purpose")
    seed, lr, epochs = int(d.get("seed", 0)), float(d.get("lr", 0.1)), int(d.get("epochs", 3))
    trainer = SimpleNamespace(history=[], epoch=0)
    x = np.array([float(seed + 1)])
    if resume and checkpoint_dir is not None:
        tree = checkpoint.load(checkpoint_dir)
        if tree is not None:
            trainer.epoch = tree["trainer"]["epoch"]
            trainer.history = tree["trainer"]["history"]
            x = tree["x"]
    diverged = False
    while trainer.epoch < epochs:
        time.sleep(float(d.get("sleep", 0)))
        x = x * 0.5 + lr
        e = trainer.epoch + 1
        if d.get("mode") == "diverge" and e == 2:
            diverged = True
            break
        rec = {"epoch": e, "train_loss": float(x[0]), "test_error": float(1 / (1 + x[0])),
               "lr": lr, "seconds": 0.0}
        trainer.history.append(rec)
        trainer.epoch = e
        if checkpoint_dir is not None:
            checkpoint.save(checkpoint_dir, {"trainer": {"epoch": e, "seed": seed,
                                                         "history": trainer.history},
                                             "x": x}, tag=f"{e:05d}")
        for cb in callbacks:
            cb.on_epoch_end(trainer, e, rec)
    import numba
    import pandas as pd

    stats = pd.DataFrame([{"epoch": 1, "layer": "fc0", "role": "weights",
                           "statistic": "overflow_fraction", "value": 0.0}])
    env = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                          "NUMBA_NUM_THREADS", "OPENBLAS_THREAD_TIMEOUT",
                                          "OMP_WAIT_POLICY")}
    env["numba"] = int(numba.config.NUMBA_NUM_THREADS)
    last = trainer.history[-1] if trainer.history else {}
    return Result({"test_error": last.get("test_error"), "best_epoch": trainer.epoch or None,
                   "diverged": diverged, "epochs": trainer.epoch, "seconds": 0.0,
                   "history": trainer.history, "env": env, "cost": {"energy_pj": 1.5}}, stats)
