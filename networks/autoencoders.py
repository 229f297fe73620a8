"""Autoencoders: ``autoencoder``, ``denoising-autoencoder``, ``sparse-autoencoder``.

All reconstruct the flat input (target = input) through sigmoid outputs and are scored by the
reconstruction mean squared error (the trainer's loss, ``metric="mse"``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from networks import Defaults, NetworkError, register
from networks._layers import ActivityL1, MaskingNoise, ThresholdReLU, seed_from
from quantsim.nn import Flatten, Linear, ReLU, Sequential, Sigmoid

_DEFAULTS = Defaults(
    epochs=20, batch_size=100,
    optimizer={"name": "adam", "lr": 2e-3},
    loss="mse", metric="mse", target="input",
)


def _check_hidden(hidden: Any, name: str) -> int:
    if isinstance(hidden, bool) or not isinstance(hidden, int) or hidden < 1:
        raise NetworkError(f"{name} hidden={hidden!r}: expected a positive integer")
    return hidden


def _autoencoder(input_shape: tuple[int, ...], rng: np.random.Generator, hidden: int,
                 front: list[Any], code: list[Any], name: str) -> Sequential:
    if len(input_shape) != 1:
        raise NetworkError(
            f"{name} reconstructs flat inputs, got per-example shape {input_shape}; load the "
            "data with view='flat' (the runner does this for you)"
        )
    d = int(math.prod(input_shape))
    layers = [*front, Linear(d, hidden, rng=rng, init="he", name="encoder"), *code,
              Linear(hidden, d, rng=rng, name="decoder"), Sigmoid(name="reconstruction")]
    return Sequential(*layers, name=name.replace("-", "_"))


@register(
    "autoencoder", defaults=_DEFAULTS,
    description="one-hidden-layer autoencoder: in-256 (ReLU)-in (sigmoid), MSE reconstruction",
    source="classic single-hidden-layer autoencoder (Bengio et al. 2007)",
    options={"hidden": 256},
)
def autoencoder(input_shape: tuple[int, ...], num_classes: int, rng: np.random.Generator, *,
                hidden: int = 256) -> Sequential:
    hidden = _check_hidden(hidden, "autoencoder")
    return _autoencoder(input_shape, rng, hidden, [], [ReLU(name="code")], "autoencoder")


@register(
    "denoising-autoencoder", defaults=_DEFAULTS,
    description="denoising autoencoder: masking noise (25% of inputs zeroed in training), "
                "in-256 (ReLU)-in (sigmoid), MSE against the clean input",
    source="Vincent et al. 2008, 'Extracting and composing robust features with denoising "
           "autoencoders' (masking noise)",
    options={"hidden": 256, "noise": 0.25},
)
def denoising_autoencoder(input_shape: tuple[int, ...], num_classes: int,
                          rng: np.random.Generator, *, hidden: int = 256,
                          noise: float = 0.25) -> Sequential:
    hidden = _check_hidden(hidden, "denoising-autoencoder")
    if isinstance(noise, bool) or not isinstance(noise, (int, float)) or not 0 <= noise < 1:
        raise NetworkError(f"denoising-autoencoder noise={noise!r}: a fraction in [0, 1)")
    front = [MaskingNoise(float(noise), seed=seed_from(rng), name="noise")]
    if len(input_shape) > 1:
        front.insert(0, Flatten(name="flatten"))
    return _autoencoder(input_shape, rng, hidden, front, [ReLU(name="code")],
                        "denoising-autoencoder")


@register(
    "sparse-autoencoder", defaults=_DEFAULTS,
    description="sparse autoencoder: in-256-in with sparsity='l1' (ReLU code + L1 activity "
                "penalty, weight l1=1e-5) or sparsity='threshold' (thresholded ReLU, "
                "theta=0.5)",
    source="L1: Ng's sparse autoencoder notes / Lee et al. 2008; threshold: Konda et al. 2015 "
           "zero-bias autoencoders (thresholded rectifier)",
    options={"hidden": 256, "sparsity": "l1", "l1": 1e-5, "theta": 0.5},
)
def sparse_autoencoder(input_shape: tuple[int, ...], num_classes: int,
                       rng: np.random.Generator, *, hidden: int = 256, sparsity: str = "l1",
                       l1: float = 1e-5, theta: float = 0.5) -> Sequential:
    hidden = _check_hidden(hidden, "sparse-autoencoder")
    if sparsity == "l1":
        if isinstance(l1, bool) or not isinstance(l1, (int, float)) or l1 < 0:
            raise NetworkError(f"sparse-autoencoder l1={l1!r}: a penalty weight >= 0")
        code = [ReLU(name="code"), ActivityL1(float(l1), name="sparsity")]
    elif sparsity == "threshold":
        if isinstance(theta, bool) or not isinstance(theta, (int, float)):
            raise NetworkError(f"sparse-autoencoder theta={theta!r}: a threshold number")
        code = [ThresholdReLU(float(theta), name="code")]
    else:
        raise NetworkError(f"sparse-autoencoder sparsity={sparsity!r}: use 'l1' or 'threshold'")
    return _autoencoder(input_shape, rng, hidden, [], code, "sparse-autoencoder")
