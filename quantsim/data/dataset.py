"""Dataset: train / validation / test splits ready for a network."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from quantsim.data.preprocess import Pipeline
from quantsim.data.text import CharVocabulary

__all__ = ["Dataset", "Split"]

#: ``(X, y)``: X float32 (int64 ids for text) in the data set's view, y int64 labels / targets.
Split = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class Dataset:
    """A loaded data set.

    ``train``, ``val``, ``test`` are ``(X, y)`` pairs; ``X`` has shape ``(N, *input_shape)``.
    Images: X float32 after preprocessing, y int64 class labels in ``[0, num_classes)``.
    Text: X and y int64 ``(N, seq_len)`` character ids, y the next characters, and
    ``num_classes`` the vocabulary size. ``val`` may hold zero examples (``validation=0``).
    ``preprocessing`` is the pipeline fitted on the training split (apply it to new data
    before the view); ``image_shape`` is ``(C, H, W)`` for image data sets.
    """

    name: str
    description: str
    train: Split
    val: Split
    test: Split
    num_classes: int
    input_shape: tuple[int, ...]
    view: str = "flat"
    classes: tuple[str, ...] | None = None
    image_shape: tuple[int, int, int] | None = None
    preprocessing: Pipeline | None = None
    vocabulary: CharVocabulary | None = None

    def __repr__(self) -> str:
        sizes = ", ".join(f"{k}={len(getattr(self, k)[0])}" for k in ("train", "val", "test"))
        return (f"Dataset({self.name!r}, {sizes}, input_shape={self.input_shape}, "
                f"num_classes={self.num_classes})")
