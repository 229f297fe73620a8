"""Statistics of every quantization point, per epoch (and optionally every N steps).

The counters themselves are filled inside the quantization kernels' single pass
(:class:`quantsim.formats.QuantStats`); this module only *snapshots* them: a snapshot copies each
point's small counter arrays and resets them, which costs O(number of points), never O(data).

:class:`StatsCollector` is a trainer callback; :meth:`StatsCollector.frame` returns a tidy
``pandas.DataFrame`` with columns ``run, epoch, step, layer, role, statistic, value``. The exact
meaning of every statistic (numerator / denominator) is in ``docs/statistics.md``; in short, with
``n = count`` (elements seen) and ``finite = count - nan - inf``:

=====================  ========================================================================
``count``              elements seen by the point in the period
``zero_fraction``      inputs exactly zero before quantization / n  (the sparsity)
``zero_out_fraction``  results exactly zero after quantization / n  (= zero + underflow)
``underflow_fraction`` finite nonzero inputs rounded to zero / n
``overflow_fraction``  finite inputs that saturated or became inf/NaN by range / n
``nan_count``          NaN inputs (a count)
``inf_count``          infinite inputs (a count)
``mean_abs``           sum |x| over finite inputs / finite
``max_abs``            max |x| over finite inputs
``mean_rel_error``     sum |q(x)-x|/|x| / (finite nonzero inputs that did not overflow)
``log2_hist_<k>``      inputs with floor(log2|x|) == k (only nonzero bins are listed)
``dfxp_il``            dynamic fixed point: integer bits (radix position) at the snapshot
``dfxp_il_changes``    dynamic fixed point: radix moves since the previous snapshot
=====================  ========================================================================

Sparsity aliases (same numbers, named as the issue tracker asks): ``activation_sparsity``
(role ``activations``, every layer but Dropout), ``error_sparsity`` (role ``errors``),
``gradient_sparsity`` (role ``gradients``), ``weight_sparsity`` (role ``weights``). A Dropout
layer's activations include the zeros its mask made, so it gets no ``activation_sparsity`` row;
its mask is reported separately as ``dropout_fraction`` (dropped / masked elements, counted
exactly when the Dropout layer exposes ``mask_dropped``/``mask_seen``) or, without that hook,
``dropout_fraction_estimated`` = (z_drop - z_in) / (1 - z_in) from the zero fractions of the
Dropout layer's output (z_drop) and of its input's producer (z_in).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import numba
import numpy as np

from quantsim.formats.stats import QuantStats
from quantsim.kernels import cpu, scalar
from quantsim.precision import iter_layers, iter_points
from quantsim.train import Callback

__all__ = [
    "COLUMNS",
    "StatsCollector",
    "observe",
    "snapshot_rows",
    "stats_paused",
    "zero_fractions",
]

COLUMNS = ("run", "epoch", "step", "layer", "role", "statistic", "value")

_C = {
    "count": cpu.S_COUNT, "zero_in": cpu.S_ZERO_IN, "zero_out": cpu.S_ZERO_OUT,
    "underflow": cpu.S_UNDERFLOW, "overflow": cpu.S_OVERFLOW, "nan": cpu.S_NAN,
    "inf": cpu.S_INF, "sum_abs": cpu.S_SUM_ABS, "max_abs": cpu.S_MAX_ABS,
    "sum_rel_err": cpu.S_SUM_REL_ERR,
}
_SPARSITY_ALIAS = {
    "activations": "activation_sparsity",
    "errors": "error_sparsity",
    "gradients": "gradient_sparsity",
    "weights": "weight_sparsity",
}
# Layers that pass their input through without a quantization point of their own.
PASS_THROUGH = ("Flatten", "Reshape")


# -- counters -> statistics -------------------------------------------------------------------

def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den > 0 else float("nan")


def derived(values: np.ndarray) -> dict[str, float]:
    """The named statistics of one raw counter vector (``QuantStats.values``)."""
    v = {k: float(values[i]) for k, i in _C.items()}
    n = v["count"]
    finite = n - v["nan"] - v["inf"]
    regular = finite - v["zero_in"] - v["overflow"]  # finite, nonzero, not overflowed
    return {
        "count": n,
        "zero_fraction": _ratio(v["zero_in"], n),
        "zero_out_fraction": _ratio(v["zero_out"], n),
        "underflow_fraction": _ratio(v["underflow"], n),
        "overflow_fraction": _ratio(v["overflow"], n),
        "nan_count": v["nan"],
        "inf_count": v["inf"],
        "mean_abs": _ratio(v["sum_abs"], finite),
        "max_abs": v["max_abs"] if finite > 0 else float("nan"),
        "mean_rel_error": _ratio(v["sum_rel_err"], regular),
    }


def snapshot_rows(stats: QuantStats, histogram: bool = True) -> list[tuple[str, float]]:
    """``(statistic, value)`` pairs of one :class:`QuantStats` (empty when nothing was seen)."""
    if stats.values[cpu.S_COUNT] == 0:
        return []
    rows = list(derived(stats.values).items())
    if histogram:
        for b in np.flatnonzero(stats.log2_hist):
            rows.append((f"log2_hist_{int(b) + cpu.LOG2_HIST_MIN}", float(stats.log2_hist[b])))
    return rows


# -- a stats-only pass for identity points (used by the optional QuantPoint hook) ---------------

@numba.njit(parallel=True, cache=True)
def _observe_kernel(x, xbits, mant_bits, bias, stats, hist):  # pragma: no cover - numba
    n = x.size
    nchunks = (n + cpu.CHUNK - 1) // cpu.CHUNK
    for c in numba.prange(nchunks):
        st = np.zeros(cpu.N_STATS)
        for i in range(c * cpu.CHUNK, min((c + 1) * cpu.CHUNK, n)):
            v = x[i]
            flag = scalar.FLAG_OK
            if v != v:
                flag = scalar.FLAG_NAN
            elif np.isinf(v):
                flag = scalar.FLAG_INF
            cpu._count(st, v, v, flag, np.int64(xbits[i]), mant_bits, bias, np.inf, hist, c)
        for j in range(cpu.N_STATS):
            stats[c, j] = st[j]


def observe(x: np.ndarray, stats: QuantStats) -> None:
    """Count ``x`` into ``stats`` as an exact (identity) quantization would: one parallel pass,
    no output array. ``zero_out == zero_in``; underflow, overflow and errors stay zero.

    Meant for points whose format is exact on the carrier (float32 on float32), which the engine
    skips: without it their statistics (e.g. sparsity in an all-float32 baseline) are empty.
    """
    from quantsim.formats.carrier import carrier_for

    carrier = carrier_for(x.dtype)
    flat = np.ascontiguousarray(x).reshape(-1)
    chunks = (flat.size + cpu.CHUNK - 1) // cpu.CHUNK
    rows = np.zeros((chunks, cpu.N_STATS), dtype=np.float64)
    hist = np.zeros((chunks, cpu.LOG2_HIST_BINS), dtype=np.int64)
    cpu.launch(_observe_kernel, flat.size,
               flat, flat.view(carrier.bits_dtype), carrier.mant_bits, carrier.bias, rows, hist)
    stats.add_rows(rows, hist)


# -- the collector ----------------------------------------------------------------------------

@contextmanager
def stats_paused(net: Any) -> Iterator[None]:
    """Stop counting at every point of ``net`` inside the block (restores each point's flag).

    Only the counters are affected: rounding, seeds and dynamic fixed point ranges are the same.
    """
    points = [p for _, p in iter_points(net)]
    saved = [p.collect_stats for p in points]
    for p in points:
        p.collect_stats = False
    try:
        yield
    finally:
        for p, flag in zip(points, saved, strict=True):
            p.collect_stats = flag


def _producers(net: Any) -> dict[str, tuple[str, str] | None]:
    """layer name -> (layer, role) of the point that rounded its input (None if unknown)."""
    out: dict[str, tuple[str, str] | None] = {}
    prev: tuple[str, str] | None = None
    first = True
    for layer in iter_layers(net):
        if first:
            prev = (layer.name, "inputs")
            first = False
        out[layer.name] = prev
        if type(layer).__name__ not in PASS_THROUGH:
            prev = (layer.name, "activations")
    return out


class StatsCollector(Callback):
    """Trainer callback: snapshot every QuantPoint's counters per epoch (and every ``steps``).

    - ``every``: count every k-th quantizing call of each point (1 = all; a sampling knob passed
      to ``precision.configure_stats``; it changes no result, only how much is counted).
    - ``steps``: also snapshot every that many optimizer steps (None: per epoch only). Every
      snapshot resets the counters, so rows of one epoch cover disjoint periods.
    - ``include_eval``: count the evaluation passes too (default False: only training steps;
      the collector pauses counting while ``trainer.evaluate`` runs).
    - ``identity``: also count points whose format is exact (float32), when the engine offers the
      ``QuantPoint.observe_identity`` hook; ignored otherwise.
    - ``run``: the value of the ``run`` column.

    Snapshots are O(number of points). ``frame()`` builds the DataFrame on demand.
    """

    def __init__(
        self,
        net: Any,
        every: int = 1,
        *,
        steps: int | None = None,
        include_eval: bool = False,
        identity: bool = True,
        histogram: bool = True,
        run: Any = 0,
    ) -> None:
        from quantsim.precision import configure_stats

        if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int)
                                  or steps < 1):
            raise ValueError(f"steps={steps!r}: snapshot interval must be a positive int or None")
        self.net = net
        self.every = every
        self.steps = steps
        self.include_eval = include_eval
        self.histogram = histogram
        self.run = run
        configure_stats(net, True, every)
        for _, point in iter_points(net):
            if hasattr(point, "observe_identity"):
                point.observe_identity = bool(identity)
        self.kinds = {layer.name: type(layer).__name__ for layer in iter_layers(net)}
        self.producers = _producers(net)
        self._records: list[tuple[Any, ...]] = []
        self._radix: list[tuple[Any, ...]] = []
        self._il_seen: dict[str, int] = {}
        self._mask_seen: dict[str, tuple[int, int]] = {}
        self._trainer_id: int | None = None
        self.snapshots = 0

    # -- callback hooks -------------------------------------------------------------------------
    def _attach(self, trainer: Any) -> None:
        if self.include_eval or self._trainer_id == id(trainer):
            return
        self._trainer_id = id(trainer)
        if getattr(trainer, "evaluate_pauses_stats", False):
            return  # the trainer already excludes evaluation from the counters
        original = trainer.evaluate
        net = self.net

        def evaluate(*args: Any, **kwargs: Any) -> Any:
            with stats_paused(net):
                return original(*args, **kwargs)

        trainer.evaluate = evaluate

    def on_step_end(self, trainer: Any, step: int, loss: float) -> None:
        self._attach(trainer)
        if self.steps is not None and step % self.steps == 0:
            self.snapshot(epoch=trainer.epoch + 1, step=step)

    def on_epoch_end(self, trainer: Any, epoch: int, metrics: dict[str, Any]) -> None:
        self._attach(trainer)
        self.snapshot(epoch=epoch, step=trainer.step)

    # -- snapshots ------------------------------------------------------------------------------
    def snapshot(self, epoch: int, step: int | None = None) -> None:
        """Record every point's statistics for the period since the previous snapshot, then
        reset the counters. O(number of points)."""
        run = self.run
        zero_in: dict[tuple[str, str], float] = {}
        for _, point in iter_points(self.net):
            layer, role = point.layer, point.role
            rows = snapshot_rows(point.stats, self.histogram)
            if rows:
                z = dict(rows)["zero_fraction"]
                zero_in[(layer, role)] = z
                alias = _SPARSITY_ALIAS.get(role)
                if alias and not (role == "activations" and self.kinds.get(layer) == "Dropout"):
                    rows.append((alias, z))
            for stat, value in rows:
                self._records.append((run, epoch, step, layer, role, stat, value))
            self._radix_rows(point, run, epoch, step)
            point.stats.reset()
            point.sample_next = True  # every period gets at least one counted call
        self._dropout_rows(run, epoch, step, zero_in)
        self.snapshots += 1

    def _radix_rows(self, point: Any, run: Any, epoch: int, step: int | None) -> None:
        """``dfxp_il`` / ``dfxp_il_changes`` of every tensor state of a dynamic fixed point
        point; a tagged state (one per parameter) is reported as layer ``"<layer>.<tag>"``."""
        for tag, state in point.states():
            il = getattr(state, "il", None)
            history = getattr(state, "history", None)
            if il is None or history is None:
                continue
            layer = point.layer if tag is None else f"{point.layer}.{tag}"
            key = f"{layer}/{point.role}"
            seen = self._il_seen.get(key, 0)
            new = history[seen:]
            # a run-time calibration (format without a fixed il) is the first entry, no move
            calibrated = getattr(point.fmt, "il", 0) is None and seen == 0 and len(new) > 0
            for stat, value in (("dfxp_il", float(il)),
                                ("dfxp_il_changes", float(len(new) - int(calibrated)))):
                self._records.append((run, epoch, step, layer, point.role, stat, value))
            for call, value in new:
                self._radix.append((run, epoch, step, layer, point.role, int(call), int(value)))
            self._il_seen[key] = len(history)

    def _dropout_rows(self, run: Any, epoch: int, step: int | None,
                      zero_in: dict[tuple[str, str], float]) -> None:
        for layer in iter_layers(self.net):
            if type(layer).__name__ != "Dropout":
                continue
            name = layer.name
            if hasattr(layer, "mask_dropped") and hasattr(layer, "mask_seen"):
                dropped, seen = int(layer.mask_dropped), int(layer.mask_seen)
                d0, s0 = self._mask_seen.get(name, (0, 0))
                self._mask_seen[name] = (dropped, seen)
                if seen - s0 > 0:
                    self._records.append((run, epoch, step, name, "activations",
                                          "dropout_fraction", (dropped - d0) / (seen - s0)))
                continue
            z_drop = zero_in.get((name, "activations"))
            producer = self.producers.get(name)
            z_in = zero_in.get(producer) if producer else None
            if z_drop is None or z_in is None or not z_in < 1.0:
                continue
            self._records.append((run, epoch, step, name, "activations",
                                  "dropout_fraction_estimated", (z_drop - z_in) / (1.0 - z_in)))

    # -- results --------------------------------------------------------------------------------
    def frame(self) -> Any:
        """Tidy DataFrame ``run, epoch, step, layer, role, statistic, value``."""
        import pandas as pd

        df = pd.DataFrame(self._records, columns=list(COLUMNS))
        df["value"] = df["value"].astype(float)
        return df

    def radix_history(self) -> Any:
        """Dynamic fixed point radix moves: ``run, epoch, step, layer, role, call, il``; ``call``
        counts the point's quantizing calls (the first row of a point is its calibration)."""
        import pandas as pd

        return pd.DataFrame(self._radix,
                            columns=["run", "epoch", "step", "layer", "role", "call", "il"])

    def histograms(self) -> Any:
        """Wide log2 histograms: one row per (run, epoch, step, layer, role), one column per
        binade exponent k (counts of inputs with floor(log2|x|) == k)."""
        df = self.frame()
        h = df[df["statistic"].str.startswith("log2_hist_")].copy()
        h["k"] = h["statistic"].str.slice(len("log2_hist_")).astype(int)
        keys = ["run", "epoch", "step", "layer", "role"]
        wide = h.pivot_table(index=keys, columns="k", values="value", fill_value=0.0,
                             dropna=False)
        return wide.reset_index()

    def sparsity(self) -> Any:
        """Per layer and epoch: ``activation_sparsity``, ``error_sparsity``,
        ``gradient_sparsity``, ``weight_sparsity`` and the dropout fraction, one column each
        (count-weighted over the epoch's snapshots)."""
        return sparsity_table(self.frame())


def _weighted(df: Any, statistic: str, keys: list[str]) -> Any:
    """Count-weighted mean of ``statistic`` over the snapshots of each ``keys`` group."""
    import pandas as pd

    s = df[df["statistic"] == statistic]
    c = df[df["statistic"] == "count"]
    m = s.merge(c, on=["run", "epoch", "step", "layer", "role"], suffixes=("", "_n"))
    if m.empty:
        return pd.Series(dtype=float, name=statistic)
    m["w"] = m["value"] * m["value_n"]
    g = m.groupby(keys)
    return (g["w"].sum() / g["value_n"].sum()).rename(statistic)


def sparsity_table(frame: Any) -> Any:
    """Sparsity per (run, epoch, layer) from a collector frame (as StatsCollector.sparsity)."""
    import pandas as pd

    keys = ["run", "epoch", "layer"]
    parts = [_weighted(frame, name, keys) for name in _SPARSITY_ALIAS.values()]
    for name in ("dropout_fraction", "dropout_fraction_estimated"):
        s = frame[frame["statistic"] == name]
        if not s.empty:
            parts.append(s.groupby(keys)["value"].mean().rename(name))
    parts = [p for p in parts if len(p)]
    if not parts:
        return pd.DataFrame(columns=keys)
    return pd.concat(parts, axis=1).reset_index()


def zero_fractions(
    source: Any, epoch: int | None = None, statistic: str = "zero_out_fraction",
) -> dict[tuple[str, str], float]:
    """``{(layer, role): fraction}`` from a collector, its frame, or a bound network.

    From a frame: the count-weighted mean of ``statistic`` over the snapshots of ``epoch``
    (default: the last epoch present). From a network: the points' current counters.
    ``zero_out_fraction`` (zeros *after* rounding) is what a zero-skipping multiplier sees.
    """
    if isinstance(source, StatsCollector):
        source = source.frame()
    if hasattr(source, "columns") and "statistic" in getattr(source, "columns", ()):
        df = source
        if df.empty:
            return {}
        if epoch is None:
            epoch = df["epoch"].max()
        df = df[df["epoch"] == epoch]
        series = _weighted(df, statistic, ["layer", "role"])
        return {(str(k[0]), str(k[1])): float(v) for k, v in series.items() if v == v}
    key = {"zero_out_fraction": "zero_out", "zero_fraction": "zero_in"}[statistic]
    out = {}
    for _, point in iter_points(source):
        n = point.stats.values[cpu.S_COUNT]
        if n > 0:
            out[(point.layer, point.role)] = float(point.stats.values[_C[key]] / n)
    return out


def frames_concat(collectors: Iterable[StatsCollector]) -> Any:
    """One frame from several collectors (e.g. the runs of a study)."""
    import pandas as pd

    return pd.concat([c.frame() for c in collectors], ignore_index=True)
