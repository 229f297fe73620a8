"""CustomFormat: the plug-in base class for formats defined by their set of values."""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

import numpy as np

from quantsim.backend import get_array_module
from quantsim.formats.base import NumberFormat
from quantsim.formats.carrier import Carrier
from quantsim.formats.rounding import Rounding
from quantsim.formats.stats import QuantStats


class CustomFormat(NumberFormat):
    """Subclass this to plug in a format (posit, logarithmic, ...) in a few lines.

    Implement `neighbours(x)`: for finite float64 `x`, the largest representable `lo <= x` and
    the smallest representable `hi >= x` (equal when x is representable; +-inf or NaN beyond the
    range, as the format wants), and `tie_to_hi(lo, hi)`: where x is exactly halfway, whether
    round-to-nearest picks hi (the 'even' neighbour). Every rounding mode, the counter-based
    stochastic rounding, NaN/inf pass-through and the statistics then come for free. The
    pass is vectorised numpy rather than a fused kernel.
    """

    @abstractmethod
    def neighbours(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(lo, hi) arrays bracketing finite float64 x."""

    def tie_to_hi(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """Default tie rule: toward the neighbour of smaller magnitude."""
        return np.abs(hi) < np.abs(lo)

    def _run(
        self, x: np.ndarray, out: np.ndarray, carrier: Carrier, rnd: Rounding, key: int,
        stats: QuantStats | None, state: Any,
    ) -> None:
        from quantsim.backend import to_numpy
        from quantsim.kernels.reference import choose

        on_device = not isinstance(x, np.ndarray)
        xd = to_numpy(x).astype(np.float64).reshape(-1)
        finite = np.isfinite(xd)
        xf = np.where(finite, xd, 0.0)
        lo, hi = self.neighbours(xf)
        lo = np.broadcast_to(np.asarray(lo, dtype=np.float64), xf.shape)
        hi = np.broadcast_to(np.asarray(hi, dtype=np.float64), xf.shape)
        r = choose(xf, lo, hi, self.tie_to_hi(lo, hi), rnd, key)
        r = np.where(finite, r, xd)
        r = np.where(r == 0, np.copysign(0.0, xd), r)
        result = r.astype(out.dtype)
        if on_device:  # plug-in formats run on the host: one round trip
            out.reshape(-1)[:] = get_array_module(out).asarray(result)
        else:
            out.reshape(-1)[:] = result
        if stats is not None:
            stats.add_rows(*_numpy_stats(xd, result.astype(np.float64), finite))


def _numpy_stats(x: np.ndarray, r: np.ndarray, finite: np.ndarray):
    """QuantStats rows computed with numpy (for formats without a fused kernel)."""
    from quantsim.kernels import cpu

    row = np.zeros((1, cpu.N_STATS))
    hist = np.zeros((1, cpu.LOG2_HIST_BINS), dtype=np.int64)
    a = np.abs(x)
    nonzero = finite & (a > 0)
    over = nonzero & ~np.isfinite(r)
    row[0, cpu.S_COUNT] = x.size
    row[0, cpu.S_NAN] = np.isnan(x).sum()
    row[0, cpu.S_INF] = np.isinf(x).sum()
    row[0, cpu.S_ZERO_IN] = (finite & (a == 0)).sum()
    row[0, cpu.S_ZERO_OUT] = (finite & (r == 0)).sum()
    row[0, cpu.S_UNDERFLOW] = (nonzero & (r == 0)).sum()
    row[0, cpu.S_OVERFLOW] = over.sum()
    row[0, cpu.S_SUM_ABS] = a[nonzero].sum()
    row[0, cpu.S_MAX_ABS] = a[nonzero].max() if nonzero.any() else 0.0
    ok = nonzero & ~over
    row[0, cpu.S_SUM_REL_ERR] = (np.abs(r[ok] - x[ok]) / a[ok]).sum()
    e = np.frexp(a[nonzero])[1] - 1
    np.add.at(hist[0], np.clip(e - cpu.LOG2_HIST_MIN, 0, cpu.LOG2_HIST_BINS - 1), 1)
    return row, hist
