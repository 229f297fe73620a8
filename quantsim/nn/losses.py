"""Losses: ``loss(Y, target) -> (float loss, dY)``, numerically stable, dY in Y's dtype.

The loss is a mean (over the batch for cross-entropy, over all elements otherwise), so dY
already carries the 1/M factor; it is *not* quantized here (the last layer quantizes it as its
errors).
"""

from __future__ import annotations

from collections.abc import Callable

from quantsim.nn._xp import array_module
from quantsim.nn.activations import sigmoid
from quantsim.nn.base import Array

Loss = Callable[[Array, Array], tuple[float, Array]]

__all__ = [
    "LOSSES",
    "Loss",
    "binary_cross_entropy_with_logits",
    "get_loss",
    "mse",
    "softmax_cross_entropy",
]


def _check_float(Y: Array, what: str) -> None:
    if not hasattr(Y, "dtype") or Y.dtype.kind != "f":
        raise TypeError(f"{what}: expected a float array, got {getattr(Y, 'dtype', type(Y))}")


def softmax_cross_entropy(logits: Array, labels: Array) -> tuple[float, Array]:
    """Mean over positions of −log softmax(logits)[label].

    Shapes: logits ``(N, C)`` (or ``(N, T, C)`` for sequences), integer labels ``(N,)`` (or
    ``(N, T)``) with values in [0, C). Returns ``(loss, dLogits)`` with
    ``dLogits = (softmax − onehot) / M``, M = number of labels.
    """
    _check_float(logits, "softmax_cross_entropy logits")
    xp = array_module(logits)
    labels = xp.asarray(labels)  # onto the logits' device
    if labels.dtype.kind not in "iu":
        raise TypeError(f"softmax_cross_entropy: labels must be integers, got {labels.dtype}")
    if logits.ndim < 2 or labels.shape != logits.shape[:-1]:
        raise ValueError(
            f"softmax_cross_entropy: labels {tuple(labels.shape)} must have the shape of logits "
            f"{tuple(logits.shape)} without the class axis"
        )
    C = logits.shape[-1]
    if labels.size and (int(labels.min()) < 0 or int(labels.max()) >= C):
        raise ValueError(
            f"softmax_cross_entropy: labels must be in [0, {C}), got values in "
            f"[{int(labels.min())}, {int(labels.max())}]"
        )
    Z = logits.reshape(-1, C)
    lab = labels.reshape(-1)
    M = Z.shape[0]
    shifted = Z - Z.max(axis=1, keepdims=True)
    logsumexp = xp.log(xp.exp(shifted).sum(axis=1))
    rows = xp.arange(M)
    loss = float((logsumexp - shifted[rows, lab]).sum() / M)
    dZ = xp.exp(shifted - logsumexp[:, None])
    dZ[rows, lab] -= 1
    dZ /= M
    return loss, dZ.reshape(logits.shape)


def _check_same_shape(name: str, Y: Array, target: Array) -> Array:
    _check_float(Y, f"{name} prediction")
    target = array_module(Y).asarray(target)  # onto the prediction's device
    if target.shape != Y.shape:
        raise ValueError(
            f"{name}: target shape {tuple(target.shape)} must equal prediction shape "
            f"{tuple(Y.shape)}"
        )
    return target.astype(Y.dtype, copy=False)


def mse(Y: Array, target: Array) -> tuple[float, Array]:
    """Mean over all elements of (Y − target)²; ``dY = 2(Y − target) / Y.size``."""
    T = _check_same_shape("mse", Y, target)
    diff = Y - T
    return float((diff * diff).sum() / diff.size), diff * (2.0 / diff.size)


def binary_cross_entropy_with_logits(Y: Array, target: Array) -> tuple[float, Array]:
    """Mean over all elements of BCE(σ(Y), target) for targets in [0, 1], computed stably as
    ``max(y, 0) − y·t + log1p(e^−|y|)``; ``dY = (σ(Y) − target) / Y.size``."""
    T = _check_same_shape("binary_cross_entropy_with_logits", Y, target)
    xp = array_module(Y)
    per = xp.maximum(Y, 0) - Y * T + xp.log1p(xp.exp(-xp.abs(Y)))
    return float(per.sum() / Y.size), (sigmoid(Y) - T) / Y.size


LOSSES: dict[str, Loss] = {
    "softmax_cross_entropy": softmax_cross_entropy,
    "cross_entropy": softmax_cross_entropy,
    "mse": mse,
    "bce_with_logits": binary_cross_entropy_with_logits,
    "binary_cross_entropy_with_logits": binary_cross_entropy_with_logits,
}


def get_loss(name: str) -> Loss:
    """The loss function registered under ``name`` (see :data:`LOSSES`)."""
    try:
        return LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; choose one of {sorted(LOSSES)}") from None
