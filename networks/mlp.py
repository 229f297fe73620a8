"""Fully connected workloads: ``mlp``, ``maxout-mlp``, ``relu-mlp-n1``, ``relu-mlp-n2``."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from networks import Defaults, NetworkError, register
from networks._layers import seed_from
from quantsim.nn import Dropout, Flatten, Linear, Maxout, ReLU, Sequential


def _flat_size(input_shape: tuple[int, ...]) -> int:
    return int(math.prod(input_shape))


def _relu_mlp(input_shape: tuple[int, ...], num_classes: int, rng: np.random.Generator,
              hidden: tuple[int, ...], dropout: float, input_dropout: float) -> Sequential:
    layers: list[Any] = []
    if len(input_shape) > 1:
        layers.append(Flatten(name="flatten"))
    if input_dropout:
        layers.append(Dropout(input_dropout, seed=seed_from(rng), name="drop0"))
    width = _flat_size(input_shape)
    for k, h in enumerate(hidden, start=1):
        layers += [Linear(width, h, rng=rng, init="he", name=f"fc{k}"), ReLU(name=f"relu{k}")]
        if dropout:
            layers.append(Dropout(dropout, seed=seed_from(rng), name=f"drop{k}"))
        width = h
    layers.append(Linear(width, num_classes, rng=rng, init="glorot", name="out"))
    return Sequential(*layers, name="mlp")


def _check_p(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise NetworkError(f"{what}={value!r}: a drop probability in [0, 1) (0 = no dropout)")
    return float(value)


def _hidden(value: Any) -> tuple[int, ...]:
    if not isinstance(value, (list, tuple)) or not value or any(
            isinstance(h, bool) or not isinstance(h, int) or h < 1 for h in value):
        raise NetworkError(f"hidden={value!r}: a non-empty list of positive layer widths")
    return tuple(value)


@register(
    "mlp",
    defaults=Defaults(
        epochs=10, batch_size=100,
        optimizer={"name": "sgd", "lr": 0.05, "momentum": 0.9},
        schedule={"name": "exponential", "gamma": 0.8},
    ),
    description="784-1000-1000-10 ReLU MLP, softmax output",
    source="Gupta et al. 2015, 'Deep learning with limited numerical precision' (MNIST MLP)",
    options={"hidden": (1000, 1000), "dropout": 0.0},
)
def mlp(input_shape: tuple[int, ...], num_classes: int, rng: np.random.Generator, *,
        hidden: tuple[int, ...] = (1000, 1000), dropout: float = 0.0) -> Sequential:
    """``in-1000-1000-out`` with ReLU hidden layers (He-uniform init) and a linear output."""
    return _relu_mlp(input_shape, num_classes, rng, _hidden(hidden),
                     _check_p(dropout, "dropout"), 0.0)


def _relu_mlp_factory(hidden: tuple[int, ...]):
    def factory(input_shape: tuple[int, ...], num_classes: int, rng: np.random.Generator, *,
                dropout: float = 0.0, input_dropout: float = 0.0,
                width: float = 1.0) -> Sequential:
        if isinstance(width, bool) or not isinstance(width, (int, float)) or not width > 0:
            raise NetworkError(f"width={width!r}: a positive scale factor of the layer widths")
        sizes = tuple(max(1, round(h * width)) for h in hidden)
        return _relu_mlp(input_shape, num_classes, rng, sizes, _check_p(dropout, "dropout"),
                         _check_p(input_dropout, "input_dropout"))

    factory.__doc__ = f"ReLU MLP in-{'-'.join(map(str, hidden))}-out; ``dropout`` on hidden " \
                      "layers, ``input_dropout`` on the inputs (drop probabilities); ``width`` " \
                      "scales the hidden sizes (1.0 = as published)."
    return factory


_RELU_DEFAULTS = Defaults(
    epochs=20, batch_size=100,
    optimizer={"name": "sgd", "lr": 0.05, "momentum": 0.9},
    schedule={"name": "exponential", "gamma": 0.95},
)
_RELU_SOURCE = ("activation-sparsity workload sizes named in issue 4 (N1 = 1000-2000-3000, "
                "N2 = 2000-2000-2000); training defaults as for 'mlp'")
register("relu-mlp-n1", defaults=_RELU_DEFAULTS, source=_RELU_SOURCE,
         description="ReLU MLP 1000-2000-3000 (option dropout)",
         options={"dropout": 0.0, "input_dropout": 0.0, "width": 1.0},
         )(_relu_mlp_factory((1000, 2000, 3000)))
register("relu-mlp-n2", defaults=_RELU_DEFAULTS, source=_RELU_SOURCE,
         description="ReLU MLP 2000-2000-2000 (option dropout)",
         options={"dropout": 0.0, "input_dropout": 0.0, "width": 1.0},
         )(_relu_mlp_factory((2000, 2000, 2000)))


@register(
    "maxout-mlp",
    defaults=Defaults(
        epochs=50, batch_size=100,
        optimizer={"name": "sgd", "lr": 0.1,
                   "momentum": {"name": "linear", "start": 0.5, "end": 0.7, "epochs": 250}},
        schedule={"name": "exponential", "gamma": 0.98},
        max_col_norm=1.9365,
    ),
    description="permutation-invariant maxout MLP: 2 x maxout(240 units x 5 pieces), dropout "
                "0.2 on inputs / 0.5 on hidden, max column norm 1.9365",
    source="Courbariaux et al. 2015 (after Goodfellow et al. 2013's pylearn2 mnist_pi.yaml)",
    options={"units": 240, "pieces": 5, "input_dropout": 0.2, "dropout": 0.5},
)
def maxout_mlp(input_shape: tuple[int, ...], num_classes: int, rng: np.random.Generator, *,
               units: int = 240, pieces: int = 5, input_dropout: float = 0.2,
               dropout: float = 0.5) -> Sequential:
    """Dropout(p_in) -> Maxout -> Dropout(p) -> Maxout -> Dropout(p) -> Linear (softmax)."""
    p_in, p = _check_p(input_dropout, "input_dropout"), _check_p(dropout, "dropout")
    layers: list[Any] = []
    if len(input_shape) > 1:
        layers.append(Flatten(name="flatten"))
    width = _flat_size(input_shape)
    layers.append(Dropout(p_in, seed=seed_from(rng), name="drop0"))
    for k in (1, 2):
        layers += [Maxout(width, units, pieces, rng=rng, name=f"maxout{k}"),
                   Dropout(p, seed=seed_from(rng), name=f"drop{k}")]
        width = units
    layers.append(Linear(width, num_classes, rng=rng, name="out"))
    return Sequential(*layers, name="maxout_mlp")
