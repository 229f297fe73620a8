"""Convolutional workloads: ``lenet5`` and ``conv-maxout`` (MNIST and CIFAR-10/SVHN variants)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from networks import Defaults, NetworkError, register
from networks._layers import seed_from
from quantsim.nn import (
    AvgPool2d,
    Conv2d,
    Dropout,
    Flatten,
    Linear,
    Maxout,
    MaxoutPool,
    MaxPool2d,
    ReLU,
    Sequential,
    Tanh,
)


def _image_shape(input_shape: tuple[int, ...], name: str) -> tuple[int, int, int]:
    if len(input_shape) != 3:
        raise NetworkError(
            f"{name} needs image input (C, H, W), got per-example shape {input_shape}; load the "
            "data with view='image' (the runner does this for you)"
        )
    return input_shape  # type: ignore[return-value]


def _after(size: int, kernel: int, stride: int, pad: int, what: str, name: str) -> int:
    out = (size + 2 * pad - kernel) // stride + 1
    if out < 1:
        raise NetworkError(
            f"{name}: the input is too small for {what} (size {size}, kernel {kernel}, "
            f"padding {pad}); use larger images"
        )
    return out


@register(
    "lenet5",
    defaults=Defaults(
        epochs=15, batch_size=64,
        optimizer={"name": "sgd", "lr": 0.05, "momentum": 0.9},
        schedule={"name": "exponential", "gamma": 0.85},
        view="image",
    ),
    description="LeNet-5: conv 6@5x5 pad 2, pool, conv 16@5x5, pool, 120, 84, 10 "
                "(ReLU + max pooling by default)",
    source="LeCun et al. 1998 (modernised: ReLU and max pooling; option activation='tanh', "
           "pool='avg' for the original's squashing units and subsampling)",
    options={"activation": "relu", "pool": "max"},
)
def lenet5(input_shape: tuple[int, ...], num_classes: int, rng: np.random.Generator, *,
           activation: str = "relu", pool: str = "max") -> Sequential:
    c, h, w = _image_shape(input_shape, "lenet5")
    acts = {"relu": (ReLU, "he"), "tanh": (Tanh, "glorot")}
    pools = {"max": MaxPool2d, "avg": AvgPool2d}
    if activation not in acts:
        raise NetworkError(f"lenet5 activation={activation!r}: use 'relu' or 'tanh'")
    if pool not in pools:
        raise NetworkError(f"lenet5 pool={pool!r}: use 'max' or 'avg'")
    Act, init = acts[activation]
    Pool = pools[pool]
    for what, k, s, p in (("conv1", 5, 1, 2), ("pool1", 2, 2, 0), ("conv2", 5, 1, 0),
                          ("pool2", 2, 2, 0)):
        h = _after(h, k, s, p, what, "lenet5")
        w = _after(w, k, s, p, what, "lenet5")
    return Sequential(
        Conv2d(c, 6, 5, padding=2, rng=rng, init=init, name="conv1"), Act(name="act1"),
        Pool(2, name="pool1"),
        Conv2d(6, 16, 5, rng=rng, init=init, name="conv2"), Act(name="act2"),
        Pool(2, name="pool2"),
        Flatten(name="flatten"),
        Linear(16 * h * w, 120, rng=rng, init=init, name="fc1"), Act(name="act3"),
        Linear(120, 84, rng=rng, init=init, name="fc2"), Act(name="act4"),
        Linear(84, num_classes, rng=rng, name="out"),
        name="lenet5",
    )


# (units, pieces, kernel, pad, pool, pool stride) per conv-maxout layer.
_MNIST_LAYERS = ((48, 2, 8, 0, 4, 2), (48, 2, 8, 3, 4, 2), (24, 4, 5, 3, 2, 2))
_CIFAR_LAYERS = ((64, 2, 8, 4, 4, 2), (128, 2, 8, 3, 4, 2), (128, 2, 5, 3, 2, 2))


def _conv_maxout_defaults(options: Mapping[str, Any]) -> dict[str, Any]:
    if options.get("variant") == "cifar":
        return {"batch_size": 128, "preprocess": "maxout", "epochs": 50,
                "optimizer": {"name": "sgd", "lr": 0.05,
                              "momentum": {"name": "linear", "start": 0.5, "end": 0.65,
                                           "epochs": 50}}}
    return {}


@register(
    "conv-maxout",
    defaults=Defaults(
        epochs=20, batch_size=128,
        optimizer={"name": "sgd", "lr": 0.05,
                   "momentum": {"name": "linear", "start": 0.5, "end": 0.7, "epochs": 50}},
        schedule={"name": "exponential", "gamma": 0.95},
        max_col_norm=1.9365, view="image",
    ),
    description="convolutional maxout net: variant='mnist' 3 conv-maxout layers (48x2, 48x2, "
                "24x4) + softmax; variant='cifar' 3 conv-maxout layers (64x2, 128x2, 128x2) + "
                "maxout 400x5 + softmax (CIFAR-10 / SVHN)",
    source="Courbariaux et al. 2015 (after Goodfellow et al. 2013's pylearn2 conv maxout nets)",
    options={"variant": "mnist", "width": 1.0, "dropout": None, "input_dropout": None},
    variant_defaults=_conv_maxout_defaults,
)
def conv_maxout(input_shape: tuple[int, ...], num_classes: int, rng: np.random.Generator, *,
                variant: str = "mnist", width: float = 1.0, dropout: float | None = None,
                input_dropout: float | None = None) -> Sequential:
    """Each conv-maxout layer: Conv2d(units x pieces) -> MaxoutPool(pieces) -> MaxPool2d ->
    Dropout. ``width`` scales every unit count (e.g. 0.5 for a quicker CPU run)."""
    if variant not in ("mnist", "cifar"):
        raise NetworkError(f"conv-maxout variant={variant!r}: use 'mnist' or 'cifar'")
    if isinstance(width, bool) or not isinstance(width, (int, float)) or not width > 0:
        raise NetworkError(f"conv-maxout width={width!r}: a positive scale factor")
    specs = _MNIST_LAYERS if variant == "mnist" else _CIFAR_LAYERS
    p_in = 0.2 if input_dropout is None else input_dropout
    p = 0.5 if dropout is None else dropout
    for v, what in ((p_in, "input_dropout"), (p, "dropout")):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v < 1:
            raise NetworkError(f"conv-maxout {what}={v!r}: a drop probability in [0, 1)")
    c, h, w = _image_shape(input_shape, "conv-maxout")
    layers: list[Any] = [Dropout(float(p_in), seed=seed_from(rng), name="drop0")]
    for k, (units, pieces, kernel, pad, pool, stride) in enumerate(specs, start=1):
        units = max(1, round(units * width))
        h = _after(h, kernel, 1, pad, f"conv{k}", "conv-maxout")
        w = _after(w, kernel, 1, pad, f"conv{k}", "conv-maxout")
        h = _after(h, pool, stride, 0, f"pool{k}", "conv-maxout")
        w = _after(w, pool, stride, 0, f"pool{k}", "conv-maxout")
        layers += [
            Conv2d(c, units * pieces, kernel, padding=pad, rng=rng, name=f"conv{k}"),
            MaxoutPool(pieces, name=f"maxout{k}"),
            MaxPool2d(pool, stride, name=f"pool{k}"),
            Dropout(float(p), seed=seed_from(rng), name=f"drop{k}"),
        ]
        c = units
    layers.append(Flatten(name="flatten"))
    features = c * h * w
    if variant == "cifar":
        units = max(1, round(400 * width))
        layers += [Maxout(features, units, 5, rng=rng, name="fc_maxout"),
                   Dropout(float(p), seed=seed_from(rng), name="drop_fc")]
        features = units
    layers.append(Linear(features, num_classes, rng=rng, name="out"))
    return Sequential(*layers, name=f"conv_maxout_{variant}")
