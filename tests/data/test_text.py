from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from quantsim.data.text import CharVocabulary, load_text, make_sequences
from quantsim.errors import DataError


def test_encode_split_and_vocabulary(tmp_path: Path) -> None:
    text = "hello world, héllo wörld!\n" * 40
    p = tmp_path / "c.txt"
    p.write_text(text, encoding="utf-8")
    corpus = load_text(p, validation=0.1, test=0.05)
    vocab = corpus.vocabulary
    assert vocab.chars == tuple(sorted(set(text)))
    n = len(text)
    assert len(corpus.val) == round(0.1 * n) and len(corpus.test) == round(0.05 * n)
    joined = np.concatenate([corpus.train, corpus.val, corpus.test])
    assert vocab.decode(joined) == text  # contiguous ranges, in order
    assert corpus.train.dtype == np.int64


def test_counts_in_characters(tmp_path: Path) -> None:
    p = tmp_path / "c.txt"
    p.write_text("abcdefghij" * 10)
    corpus = load_text(p, validation=7, test=3)
    assert (len(corpus.train), len(corpus.val), len(corpus.test)) == (90, 7, 3)


def test_make_sequences_targets_shifted() -> None:
    ids = np.arange(11)
    x, y = make_sequences(ids, 3)
    np.testing.assert_array_equal(x, [[0, 1, 2], [3, 4, 5], [6, 7, 8]])
    np.testing.assert_array_equal(y, [[1, 2, 3], [4, 5, 6], [7, 8, 9]])
    assert make_sequences(np.arange(3), 5)[0].shape == (0, 5)
    with pytest.raises(DataError, match="seq_len"):
        make_sequences(ids, 0)


def test_vocabulary_unknown_char() -> None:
    with pytest.raises(DataError, match="'z'"):
        CharVocabulary(("a", "b")).encode("abz")


def test_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        load_text(tmp_path / "none.txt")
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\xff\xfe\x00abc")
    with pytest.raises(DataError, match="UTF-8"):
        load_text(bad)
    short = tmp_path / "short.txt"
    short.write_text("ab")
    with pytest.raises(DataError, match="longer file"):
        load_text(short, validation=1, test=1)
    with pytest.raises(DataError, match=r"\[0, 1\)"):
        load_text(short, validation=1.5)
