"""``load_dataset``: the one entry point from a data-set name to a ready :class:`Dataset`.

Pipeline (images): read -> validation split (the *last* examples of the official training set,
deterministic) -> ``limit`` (the first N of what remains for training) -> flatten to float ->
preprocessing fitted on the training split only, applied to all splits -> view.

Default validation sizes: ``mnist``, ``fashion-mnist``, ``cifar10``: the last 10,000 training
examples (as Goodfellow et al. 2013 and Courbariaux et al. 2015 do); ``svhn``, ``digits``,
``mnist-5k``: the last 10%; ``text:PATH``: 5% of the characters (and 5% for test).
``digits`` and ``mnist-5k`` have no official test split: a 20% test split is drawn with ``seed``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import numpy as np

from quantsim.data.cifar import load_cifar10
from quantsim.data.dataset import Dataset
from quantsim.data.mnist import load_fashion_mnist, load_mnist
from quantsim.data.preprocess import Transform, make_pipeline
from quantsim.data.raw import RawData
from quantsim.data.small import load_digits, load_mnist_5k
from quantsim.data.svhn import load_svhn
from quantsim.data.text import load_text, make_sequences
from quantsim.data.views import VIEWS, apply_view, view_shape
from quantsim.errors import DataError

__all__ = ["DATASETS", "load_dataset", "load_raw", "resolve_validation"]

Preprocess = str | Transform | Sequence[str | Transform] | None

_LOADERS: dict[str, Callable[[str | os.PathLike[str] | None, int], RawData]] = {
    "fashion-mnist": lambda d, seed: load_fashion_mnist(d),
    "mnist": lambda d, seed: load_mnist(d),
    "mnist-5k": lambda d, seed: load_mnist_5k(seed),
    "digits": lambda d, seed: load_digits(seed),
    "cifar10": lambda d, seed: load_cifar10(d),
    "svhn": lambda d, seed: load_svhn(d),
}
#: Known names; ``text:PATH`` names a text file.
DATASETS = (*_LOADERS, "text:PATH")
_ALIASES = {"fashion_mnist": "fashion-mnist", "fmnist": "fashion-mnist", "mnist5k": "mnist-5k",
            "mnist_5k": "mnist-5k", "cifar-10": "cifar10", "cifar_10": "cifar10"}


def resolve_validation(validation: int | float | None, n: int, default: int | float) -> int:
    """Number of validation examples out of ``n``: None -> ``default``; an int is a count, a
    float in [0, 1) a fraction (rounded)."""
    v = default if validation is None else validation
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise DataError(f"validation must be None, an int count or a float fraction, got {v!r}.")
    if isinstance(v, (float, np.floating)):
        if not 0.0 <= v < 1.0:
            raise DataError(f"validation fraction must be in [0, 1), got {v}.")
        count = int(round(v * n))
    else:
        count = int(v)
    if count < 0 or count >= n:
        raise DataError(f"validation={v} asks for {count} of {n} training examples; it must "
                        f"leave at least one for training (0 <= count < {n}).")
    return count


def _check_limit(limit: int | None) -> None:
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, np.integer))
                              or limit < 1):
        raise DataError(f"limit must be None or a positive int, got {limit!r}.")


def _canonical(name: str) -> str:
    key = name.strip().lower()
    return _ALIASES.get(key, key)


def load_raw(name: str, *, data_dir: str | os.PathLike[str] | None = None, seed: int = 0
             ) -> RawData:
    """The data set ``name`` as stored (no split, preprocessing or view); images only."""
    key = _canonical(name)
    if key not in _LOADERS:
        raise DataError(f"unknown data set {name!r}; known: {', '.join(DATASETS)}.")
    return _LOADERS[key](data_dir, seed)


def _load_text(path: str, validation: int | float | None, limit: int | None, view: str,
               preprocess: Preprocess, seq_len: int) -> Dataset:
    if preprocess not in (None, "none", "default"):
        raise DataError(f"text data sets take no preprocessing, got preprocess={preprocess!r}.")
    if view != "flat":
        raise DataError(f"text data sets are (N, seq_len) character ids; view={view!r} does not "
                        "apply (leave the default).")
    corpus = load_text(path, validation=0.05 if validation is None else validation)
    train = make_sequences(corpus.train, seq_len)
    if limit is not None:
        train = (train[0][:limit], train[1][:limit])
    if len(train[0]) == 0:
        raise DataError(f"{corpus.path}: {len(corpus.train)} training characters make no "
                        f"sequence of length {seq_len}; use a smaller seq_len or a longer file.")
    vocab = corpus.vocabulary
    return Dataset(
        name=f"text:{corpus.path}", train=train,
        val=make_sequences(corpus.val, seq_len), test=make_sequences(corpus.test, seq_len),
        description=f"characters of {corpus.path} ({len(vocab)} symbols, "
                    f"{len(corpus.train)}/{len(corpus.val)}/{len(corpus.test)} train/val/test)",
        num_classes=len(vocab), input_shape=(seq_len,), view="flat", vocabulary=vocab,
    )


def load_dataset(
    name: str,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    validation: int | float | None = None,
    limit: int | None = None,
    view: str = "flat",
    preprocess: Preprocess = "default",
    seed: int = 0,
    seq_len: int = 100,
) -> Dataset:
    """Load ``name`` (see ``DATASETS``) as train / val / test splits.

    - ``data_dir``: the directory to read from (else ``$QUANTSIM_DATA``, else package folders);
    - ``validation``: None (the data set's default, see module doc), an int count, or a float
      fraction of the training set; taken from its end; 0 gives an empty validation split;
    - ``limit``: keep only the first ``limit`` training examples (after the validation split);
    - ``view``: ``"flat"`` ``(N, D)``, ``"image"`` ``(N, C, H, W)``, ``"rows"`` ``(N, H, W*C)``;
    - ``preprocess``: ``"default"`` (= ``"scale"`` to [0, 1] for images, nothing for text), a name
      or ``+``-joined names from ``PREPROCESS_NAMES``, Transform objects, or a sequence of them;
    - ``seed``: the random test split of ``digits`` and ``mnist-5k``;
    - ``seq_len``: sequence length for ``text:PATH``.
    """
    _check_limit(limit)
    if isinstance(name, str) and name.startswith("text:"):
        return _load_text(name[5:], validation, limit, view, preprocess, seq_len)
    if view not in VIEWS:
        raise DataError(f"unknown view {view!r}; known: {', '.join(VIEWS)}.")
    raw = load_raw(name, data_dir=data_dir, seed=seed)
    n = len(raw.x_train)
    n_val = resolve_validation(validation, n, raw.default_validation)
    image_shape = tuple(int(s) for s in raw.x_train.shape[1:])
    x_train, y_train = raw.x_train[: n - n_val], raw.y_train[: n - n_val]
    x_val, y_val = raw.x_train[n - n_val:], raw.y_train[n - n_val:]
    if limit is not None:
        x_train, y_train = x_train[:limit], y_train[:limit]

    pipeline = make_pipeline("scale" if preprocess == "default" else preprocess, raw.max_value)

    dim = int(np.prod(image_shape))

    def prepared(x: np.ndarray) -> np.ndarray:
        return apply_view(pipeline(x.reshape(len(x), dim)), view, image_shape)

    flat_train = pipeline.fit_apply(x_train.reshape(len(x_train), dim))
    return Dataset(
        name=raw.name, description=raw.description,
        train=(apply_view(flat_train, view, image_shape), y_train),
        val=(prepared(x_val), y_val), test=(prepared(raw.x_test), raw.y_test),
        num_classes=raw.num_classes, input_shape=view_shape(view, image_shape), view=view,
        classes=raw.classes, image_shape=image_shape, preprocessing=pipeline,
    )
