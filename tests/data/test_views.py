from __future__ import annotations

import numpy as np
import pytest

from quantsim.data.views import apply_view, view_shape
from quantsim.errors import DataError


def test_views_of_rgb_images() -> None:
    images = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)  # N, C, H, W
    flat = images.reshape(2, -1)
    np.testing.assert_array_equal(apply_view(flat, "flat", (3, 4, 5)), flat)
    np.testing.assert_array_equal(apply_view(flat, "image", (3, 4, 5)), images)
    rows = apply_view(flat, "rows", (3, 4, 5))
    assert rows.shape == (2, 4, 15) and rows.flags.c_contiguous
    # row i of example n: pixel j's channels are adjacent
    np.testing.assert_array_equal(rows[1, 2, 3 * 3:3 * 3 + 3], images[1, :, 2, 3])
    assert view_shape("rows", (3, 4, 5)) == (4, 15)
    assert view_shape("image", (1, 28, 28)) == (1, 28, 28)


def test_unknown_view() -> None:
    with pytest.raises(DataError, match="flat, image, rows"):
        view_shape("columns", (1, 2, 2))
