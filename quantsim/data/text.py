"""Plain-text corpora for character-level models.

A UTF-8 file is integer-encoded one character at a time with a vocabulary (the sorted set of
characters in the whole file), split into contiguous train / validation / test ranges, and each
range cut into non-overlapping sequences: inputs ``X[i] = ids[k : k+L]`` and next-character
targets ``y[i] = ids[k+1 : k+L+1]``, both ``(n, L)`` int64.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from quantsim.errors import DataError

__all__ = ["CharVocabulary", "TextCorpus", "load_text", "make_sequences"]


@dataclass(frozen=True)
class CharVocabulary:
    """Characters in id order; id ``i`` is ``chars[i]``."""

    chars: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> np.ndarray:
        """Character ids of ``text`` as int64; an unknown character is a DataError."""
        index = {c: i for i, c in enumerate(self.chars)}
        try:
            return np.fromiter((index[c] for c in text), dtype=np.int64, count=len(text))
        except KeyError as e:
            raise DataError(f"character {e.args[0]!r} is not in the vocabulary.") from None

    def decode(self, ids: np.ndarray) -> str:
        """Text for a sequence of ids."""
        return "".join(self.chars[int(i)] for i in np.asarray(ids).reshape(-1))


@dataclass(frozen=True)
class TextCorpus:
    """An encoded corpus split into contiguous ranges (1-D int64 id arrays)."""

    vocabulary: CharVocabulary
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    path: Path


def _count(value: int | float, n: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise DataError(f"{what} must be an int (characters) or a float fraction, got {value!r}.")
    if isinstance(value, (float, np.floating)):
        if not 0.0 <= value < 1.0:
            raise DataError(f"{what} fraction must be in [0, 1), got {value}.")
        return int(round(value * n))
    if value < 0:
        raise DataError(f"{what} must be >= 0, got {value}.")
    return int(value)


def load_text(
    path: str | os.PathLike[str], *, validation: int | float = 0.05, test: int | float = 0.05
) -> TextCorpus:
    """Read and encode a UTF-8 text file; ``validation`` / ``test`` are fractions or character
    counts taken from the end (train first, then validation, then test)."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise DataError(f"text corpus {p} not found; use text:PATH with the path of a UTF-8 file.")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{p}: not valid UTF-8 ({e}); re-save the file as UTF-8.") from e
    n = len(text)
    n_val, n_test = _count(validation, n, "validation"), _count(test, n, "test")
    n_train = n - n_val - n_test
    if n_train < 2:
        raise DataError(f"{p}: {n} characters leave {n_train} for training after {n_val} "
                        f"validation and {n_test} test characters; use a longer file.")
    vocab = CharVocabulary(tuple(sorted(set(text))))
    ids = vocab.encode(text)
    return TextCorpus(vocab, ids[:n_train], ids[n_train:n_train + n_val],
                      ids[n_train + n_val:], p)


def make_sequences(ids: np.ndarray, seq_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Non-overlapping ``(X, y)`` windows of length ``seq_len``, ``y`` shifted by one character.

    A range of ``n`` ids gives ``(n - 1) // seq_len`` sequences; the remainder is dropped.
    """
    if isinstance(seq_len, bool) or not isinstance(seq_len, (int, np.integer)) or seq_len < 1:
        raise DataError(f"seq_len must be a positive int, got {seq_len!r}.")
    ids = np.asarray(ids, dtype=np.int64)
    n = max((len(ids) - 1) // seq_len, 0)
    x = ids[: n * seq_len].reshape(n, seq_len)
    y = ids[1: n * seq_len + 1].reshape(n, seq_len)
    return x, y
