"""Inverted dropout with reproducible, resumable masks."""

from __future__ import annotations

import zlib

import numpy as np

from quantsim.nn._xp import array_module
from quantsim.nn.base import Array, Backprop, Layer

__all__ = ["Dropout"]


class Dropout(Layer):
    """Drop each element with probability ``p`` in training and scale the kept ones by 1/(1−p);
    identity at evaluation.

    The mask of the k-th training call is drawn from ``default_rng([seed, crc32(name), k])``:
    independent of any global RNG, different between layers, and reproducible after a resume
    because the call counter ``k`` is saved in ``state_dict`` (buffer ``calls``) and exposed by
    :meth:`rng_state` / :meth:`set_rng_state`.
    """

    prefix = "dropout"

    def __init__(self, p: float = 0.5, *, seed: int = 0, name: str | None = None) -> None:
        super().__init__(name)
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p < 1.0:
            raise ValueError(f"Dropout p={p!r}: the drop probability must be in [0, 1)")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"Dropout seed={seed!r}: expected an int >= 0")
        self.p = float(p)
        self.seed = int(seed)
        self._buffers["calls"] = np.zeros((), dtype=np.int64)
        #: elements masked so far and how many of them were dropped (for sparsity statistics)
        self.mask_seen = 0
        self.mask_dropped = 0

    def rng_state(self) -> dict[str, int]:
        return {"seed": self.seed, "calls": int(self._buffers["calls"])}

    def set_rng_state(self, state: dict[str, int]) -> None:
        self.seed = int(state["seed"])
        self._buffers["calls"] = np.asarray(int(state["calls"]), dtype=np.int64)

    def _mask(self, shape: tuple[int, ...], dtype: np.dtype) -> Array:
        calls = int(self._buffers["calls"])
        self._buffers["calls"] = np.asarray(calls + 1, dtype=np.int64)
        rng = np.random.default_rng([self.seed, zlib.crc32(self.name.encode()), calls])
        keep = rng.random(shape) >= self.p
        self.mask_seen += keep.size
        self.mask_dropped += int(keep.size - np.count_nonzero(keep))
        return keep.astype(dtype) * dtype.type(1.0 / (1.0 - self.p))

    def forward(self, X: Array, train: bool) -> tuple[Array, Backprop]:
        q = self.q
        if not train or self.p == 0.0:
            def backprop_eval(dY: Array) -> Array:
                return q.errors(dY)

            return q.activations(X), backprop_eval
        # Drawn on the host, so both devices drop the same elements.
        mask = array_module(X).asarray(self._mask(X.shape, X.dtype))
        Y = q.activations(X * mask)

        def backprop(dY: Array) -> Array:
            return q.errors(dY) * mask

        return Y, backprop
