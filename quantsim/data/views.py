"""Views: how an image batch is laid out for a network.

- ``flat``: ``(N, C*H*W)``, channel-major (C, H, W) order; permutation-invariant models.
- ``image``: ``(N, C, H, W)``; convolutional models.
- ``rows``: ``(N, H, W*C)``, the image as a sequence of H rows, each row's pixels interleaved
  by channel (pixel-major); sequence models such as LSTMs read one row per step.
"""

from __future__ import annotations

import numpy as np

from quantsim.errors import DataError

__all__ = ["VIEWS", "apply_view", "view_shape"]

VIEWS = ("flat", "image", "rows")


def view_shape(view: str, image_shape: tuple[int, int, int]) -> tuple[int, ...]:
    """Per-example shape of ``view`` for images of shape ``(C, H, W)``."""
    c, h, w = image_shape
    if view == "flat":
        return (c * h * w,)
    if view == "image":
        return (c, h, w)
    if view == "rows":
        return (h, w * c)
    raise DataError(f"unknown view {view!r}; known: {', '.join(VIEWS)}.")


def apply_view(x_flat: np.ndarray, view: str, image_shape: tuple[int, int, int]) -> np.ndarray:
    """Reshape flat ``(N, C*H*W)`` data (channel-major) to ``view`` (a C-contiguous array)."""
    shape = view_shape(view, image_shape)
    if view == "flat":
        return x_flat
    images = x_flat.reshape(-1, *image_shape)
    if view == "image":
        return images
    return np.ascontiguousarray(images.transpose(0, 2, 3, 1)).reshape(-1, *shape)
