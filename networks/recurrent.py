"""Recurrent workloads: ``lstm-rows`` (image rows as a sequence) and ``char-lstm``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from networks import Defaults, NetworkError, register
from quantsim.nn import LSTM, Embedding, Linear, Sequential


def _positive(value: Any, what: str, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise NetworkError(f"{name} {what}={value!r}: expected a positive integer")
    return value


@register(
    "lstm-rows",
    defaults=Defaults(
        epochs=7, batch_size=128,
        optimizer={"name": "adam", "lr": 2e-3, "clip_norm": 5.0},
        schedule={"name": "exponential", "gamma": 0.75},
        view="rows",
    ),
    description="LSTM(128) reading an image row by row (28 steps of 28 pixels for MNIST-like "
                "data), linear classifier on the last hidden state",
    source="the row-by-row sequential-MNIST LSTM classifier (e.g. Keras' mnist_irnn/LSTM "
           "examples); hidden size 128 as in issue 4",
    options={"hidden": 128},
)
def lstm_rows(input_shape: tuple[int, ...], num_classes: int, rng: np.random.Generator, *,
              hidden: int = 128) -> Sequential:
    if len(input_shape) != 2:
        raise NetworkError(
            f"lstm-rows needs sequences (T, F), got per-example shape {input_shape}; load the "
            "data with view='rows' (the runner does this for you)"
        )
    _positive(hidden, "hidden", "lstm-rows")
    _, features = input_shape
    return Sequential(
        LSTM(features, hidden, rng=rng, return_sequences=False, name="lstm"),
        Linear(hidden, num_classes, rng=rng, name="out"),
        name="lstm_rows",
    )


def _char_defaults(options: Mapping[str, Any]) -> dict[str, Any]:
    return {"data_options": {"seq_len": _positive(options["seq_len"], "seq_len", "char-lstm")}}


@register(
    "char-lstm",
    defaults=Defaults(
        epochs=10, batch_size=32,
        optimizer={"name": "adam", "lr": 3e-3, "clip_norm": 5.0},
        schedule={"name": "exponential", "gamma": 0.9},
        metric="bpc",
    ),
    description="character-level LSTM language model: embedding(32) -> LSTM(128) -> linear "
                "over the vocabulary at every step; metric bits per character (data text:PATH)",
    source="Karpathy et al. 2015 char-rnn / Graves 2013 style character LM, scaled down",
    options={"hidden": 128, "embed": 32, "seq_len": 100},
    variant_defaults=_char_defaults,
)
def char_lstm(input_shape: tuple[int, ...], num_classes: int, rng: np.random.Generator, *,
              hidden: int = 128, embed: int = 32, seq_len: int = 100) -> Sequential:
    """Input: ``(N, T)`` int64 character ids; output ``(N, T, vocabulary)`` logits.
    ``seq_len`` is the training sequence length (a data option; the net takes any T)."""
    if len(input_shape) != 1:
        raise NetworkError(
            f"char-lstm needs character-id sequences (T,), got per-example shape {input_shape}; "
            "use a text:PATH data set"
        )
    _positive(hidden, "hidden", "char-lstm")
    _positive(embed, "embed", "char-lstm")
    return Sequential(
        Embedding(num_classes, embed, rng=rng, name="embed"),
        LSTM(embed, hidden, rng=rng, return_sequences=True, name="lstm"),
        Linear(hidden, num_classes, rng=rng, name="out"),
        name="char_lstm",
    )
