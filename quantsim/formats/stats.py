"""QuantStats: counters accumulated inside the quantization pass."""

from __future__ import annotations

import numpy as np

from quantsim.kernels.cpu import (
    LOG2_HIST_BINS,
    LOG2_HIST_MIN,
    N_STATS,
    S_ABOVE,
    S_COUNT,
    S_INF,
    S_MAX_ABS,
    S_NAN,
    S_OVERFLOW,
    S_SUM_ABS,
    S_SUM_REL_ERR,
    S_UNDERFLOW,
    S_ZERO_IN,
    S_ZERO_OUT,
)

_FIELDS = {
    "count": S_COUNT,
    "zero_in": S_ZERO_IN,
    "zero_out": S_ZERO_OUT,
    "underflow": S_UNDERFLOW,
    "overflow": S_OVERFLOW,
    "nan": S_NAN,
    "inf": S_INF,
    "sum_abs": S_SUM_ABS,
    "max_abs": S_MAX_ABS,
    "sum_rel_err": S_SUM_REL_ERR,
    "above": S_ABOVE,
}


class QuantStats:
    """Counters of what passed through a quantizer, accumulated over calls.

    count: elements seen; zero_in: exactly zero before quantization; zero_out: zero after;
    underflow: finite nonzero inputs that became zero (flushed); overflow: finite inputs that
    saturated or became inf/NaN through range; nan / inf: NaN / infinite inputs; sum_abs and
    max_abs: of the finite inputs; sum_rel_err: sum of |q(x) - x| / |x| over finite nonzero
    inputs that did not overflow; above: finite inputs with |x| above the caller's threshold
    (used by dynamic fixed point); log2_hist[k]: inputs with floor(log2|x|) == k + LOG2_HIST_MIN
    (clipped at both ends; carrier subnormals land in the lowest bins).
    """

    LOG2_HIST_MIN = LOG2_HIST_MIN

    def __init__(self) -> None:
        self.values = np.zeros(N_STATS, dtype=np.float64)
        self.log2_hist = np.zeros(LOG2_HIST_BINS, dtype=np.int64)

    def __getattr__(self, name: str):
        index = _FIELDS.get(name)
        if index is None:
            raise AttributeError(f"QuantStats has no field {name!r}; fields: {', '.join(_FIELDS)}")
        value = self.values[index]
        return value if name in ("sum_abs", "max_abs", "sum_rel_err") else int(value)

    def add_rows(self, rows: np.ndarray, hist_rows: np.ndarray) -> None:
        """Fold per-chunk kernel rows into the totals."""
        if rows.shape[0] == 0:
            return
        maxima = rows[:, S_MAX_ABS].max()
        totals = rows.sum(axis=0)
        totals[S_MAX_ABS] = 0.0
        self.values += totals
        self.values[S_MAX_ABS] = max(self.values[S_MAX_ABS], maxima)
        self.log2_hist += hist_rows.sum(axis=0)

    def merge(self, other: QuantStats) -> None:
        maxima = max(self.values[S_MAX_ABS], other.values[S_MAX_ABS])
        self.values += other.values
        self.values[S_MAX_ABS] = maxima
        self.log2_hist += other.log2_hist

    def reset(self) -> None:
        self.values[:] = 0.0
        self.log2_hist[:] = 0

    def as_dict(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in _FIELDS}

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v:g}" for k, v in self.as_dict().items())
        return f"QuantStats({shown})"
