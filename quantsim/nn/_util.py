"""Small helpers shared by the layers: argument checks, dtype handling, initialisers."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from quantsim.nn._xp import array_module
from quantsim.nn.base import Array

RngLike = np.random.Generator | int


def as_rng(rng: RngLike) -> np.random.Generator:
    """An explicit Generator, or a seed turned into one (no global RNG anywhere)."""
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool) and rng >= 0:
        return np.random.default_rng(int(rng))
    raise ValueError(
        f"rng={rng!r}: pass a numpy Generator (np.random.default_rng(seed)) or a seed int >= 0"
    )


def float_dtype(dtype: Any) -> np.dtype:
    dt = np.dtype(dtype)
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"dtype={dt}: layers compute in float32 (default) or float64")
    return dt


def positive_int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{what}={value!r}: expected a positive integer")
    return int(value)


def pair(value: object, what: str, minimum: int = 1) -> tuple[int, int]:
    """Accept ``k`` or ``(kh, kw)``; every entry an int >= minimum."""
    items = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(items) != 2 or any(
        isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < minimum for v in items
    ):
        raise ValueError(f"{what}={value!r}: expected an int >= {minimum} or a pair of them")
    return int(items[0]), int(items[1])


def uniform(rng: np.random.Generator, limit: float, shape: tuple[int, ...], dtype: Any) -> Array:
    """U(-limit, limit) on the host (``Layer.to_device`` moves parameters)."""
    return np.asarray(rng.uniform(-limit, limit, size=shape).astype(dtype))


def init_weights(
    rng: np.random.Generator, init: str, fan_in: int, fan_out: int, shape: tuple[int, ...],
    dtype: Any,
) -> Array:
    """Glorot/Xavier uniform (``"glorot"``, for tanh/sigmoid/linear) or He uniform (``"he"``,
    for ReLU): U(-a, a) with a = sqrt(6 / (fan_in + fan_out)) or sqrt(6 / fan_in)."""
    if init == "glorot":
        limit = math.sqrt(6.0 / (fan_in + fan_out))
    elif init == "he":
        limit = math.sqrt(6.0 / fan_in)
    else:
        raise ValueError(f"init={init!r}: use 'glorot' or 'he'")
    return uniform(rng, limit, shape, dtype)


def check_input(layer_name: str, X: Array, ndim: int, layout: str) -> None:
    """Raise a ValueError naming the layer when X does not have ``ndim`` dimensions."""
    if not hasattr(X, "ndim") or X.ndim != ndim:
        got = getattr(X, "shape", type(X).__name__)
        raise ValueError(f"{layer_name}: expected input of shape {layout}, got {got}")


def as_compute(X: Array, dtype: np.dtype) -> Array:
    """X in the layer's compute dtype (no copy when it already is), on X's device."""
    return array_module(X).asarray(X).astype(dtype, copy=False)
