"""Pure reshapes: no arithmetic, hence no quantization."""

from __future__ import annotations

from quantsim.nn.base import Array, Backprop, Layer

__all__ = ["Flatten", "Reshape"]


class Flatten(Layer):
    """``(N, d1, d2, ...) -> (N, d1·d2·...)``."""

    prefix = "flatten"

    def forward(self, X: Array, train: bool) -> tuple[Array, Backprop]:
        if X.ndim < 1:
            raise ValueError(f"{self.name}: expected a batch (N, ...), got a 0-d array")
        shape = X.shape

        def backprop(dY: Array) -> Array:
            return dY.reshape(shape)

        backprop.backward_is_pure = True  # type: ignore[attr-defined]  # no points, no state
        return X.reshape(shape[0], -1), backprop


class Reshape(Layer):
    """``(N, ...) -> (N, *shape)``; one entry of ``shape`` may be -1.

    E.g. ``Reshape(28, 28)`` turns flat MNIST images into row sequences ``(N, T=28, F=28)``
    for an LSTM.
    """

    prefix = "reshape"

    def __init__(self, *shape: int, name: str | None = None) -> None:
        super().__init__(name)
        if not shape or any(
            not isinstance(s, int) or isinstance(s, bool) or (s < 1 and s != -1) for s in shape
        ) or list(shape).count(-1) > 1:
            raise ValueError(
                f"Reshape{shape}: give the per-sample shape as positive ints (one may be -1)"
            )
        self.shape = tuple(shape)

    def forward(self, X: Array, train: bool) -> tuple[Array, Backprop]:
        in_shape = X.shape
        try:
            Y = X.reshape(in_shape[0], *self.shape)
        except (ValueError, IndexError) as exc:
            raise ValueError(
                f"{self.name}: cannot reshape input {tuple(in_shape)} to (N, *{self.shape})"
            ) from exc

        def backprop(dY: Array) -> Array:
            return dY.reshape(in_shape)

        backprop.backward_is_pure = True  # type: ignore[attr-defined]  # no points, no state
        return Y, backprop
