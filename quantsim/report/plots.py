"""The report's figures. Each ``plot_*`` function takes the prepared frames and returns a
:class:`Plot` (a matplotlib Figure with its title and caption) or a :class:`Skip` saying in one
line why the data for it is missing. Figures are made with the object-oriented API on the Agg
canvas (no pyplot, no global backend switch), in one style (:data:`STYLE`)."""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import rc_context
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, LogLocator

from quantsim.report.tables import ROLE_GROUPS, ordered_unique

STYLE = {
    "font.size": 10, "axes.titlesize": 11, "axes.titleweight": "bold", "axes.labelsize": 10,
    "legend.fontsize": 8, "xtick.labelsize": 9, "ytick.labelsize": 9,
    "axes.grid": True, "grid.alpha": 0.3, "grid.linestyle": "-",
    "axes.spines.top": False, "axes.spines.right": False,
    "figure.dpi": 100, "savefig.dpi": 110, "savefig.bbox": "tight",
    "lines.linewidth": 1.8, "lines.markersize": 5,
}
WIDTH = 9.0  # inches
MAX_PANELS = 4
SPARSITY_STATS = (("activation_sparsity", "activations"), ("error_sparsity", "errors"),
                  ("gradient_sparsity", "gradients"))
SPARSITY_ROLES = {"activations": "activations", "errors": "errors", "gradients": "gradients"}
ROLE_ORDER = ("inputs", "weights", "activations", "errors", "gradients", "updates",
              "optimizer_state", "accumulator")


@dataclass
class Plot:
    key: str
    title: str
    caption: str
    figure: Figure


@dataclass
class Skip:
    key: str
    title: str
    reason: str


def new_figure(rows: int = 1, cols: int = 1, height: float = 3.6, **kw: Any
               ) -> tuple[Figure, np.ndarray]:
    with rc_context(STYLE):
        fig = Figure(figsize=(WIDTH, height * rows), layout="constrained")
        FigureCanvasAgg(fig)
        axes = fig.subplots(rows, cols, squeeze=False, **kw)
    return fig, axes


def palette(policies: list[str]) -> dict[str, Any]:
    """One colour per policy, the same in every figure."""
    import matplotlib

    cmap = matplotlib.colormaps["tab10" if len(policies) <= 10 else "tab20"]
    return {p: cmap(i % cmap.N) for i, p in enumerate(policies)}


def _plain(v: float, _pos: Any = None) -> str:
    return f"{v:g}"


def _log_if_wide(ax: Any, values: Any, ratio: float = 8.0) -> None:
    """Log y axis (with plain tick labels: 0.3, 1, 2, 5, ...) when the values span more than
    ``ratio``."""
    v = np.asarray([x for x in np.ravel(values) if np.isfinite(x) and x > 0], dtype=float)
    if v.size and v.max() / v.min() > ratio:
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FuncFormatter(_plain))
        ax.yaxis.set_minor_locator(LogLocator(subs=(2.0, 5.0)))
        ax.yaxis.set_minor_formatter(FuncFormatter(_plain))


def _done(prep: pd.DataFrame) -> pd.DataFrame:
    return prep[(prep["status"] == "done") & prep["test_error_percent"].notna()]


def _multi_workload(prep: pd.DataFrame) -> bool:
    return prep["workload"].nunique() > 1


# -- test error against bit width -----------------------------------------------------------------


def _at_mode(runs: pd.DataFrame, column: str) -> pd.DataFrame:
    """The rows of ``runs`` whose ``column`` equals its most common value (all rows when the
    column is absent or empty)."""
    if column not in runs.columns:
        return runs
    mode = runs[column].mode(dropna=True)
    return runs if mode.empty else runs[runs[column] == mode.iloc[0]]


def bit_sweeps(prep: pd.DataFrame) -> list[dict[str, Any]]:
    """Curves of a bit-width sweep among the finished runs, found separately for each format
    family (of the weights) and workload: roles whose bits vary together form a group
    (``propagations`` = weights, activations, errors, gradients; ``parameter updates``); a
    group's curve holds every other varying role at its most common width and every fixed
    point radix (``il.<role>``) at its most common position, so one study can sweep several
    families, widths and radix positions at once. One curve per (group, family, rounding,
    workload)."""
    done = _done(prep)
    roles = [c[5:] for c in done.columns if c.startswith("bits.") and c != "bits.default"]
    curves = []
    for (family, workload, _), fam in done.groupby(["family.weights", "workload", "setup"],
                                                   sort=False):
        varying = [r for r in roles if fam[f"bits.{r}"].nunique(dropna=True) > 1]
        groups: dict[tuple, list[str]] = {}
        for r in varying:
            groups.setdefault(tuple(fam[f"bits.{r}"].tolist()), []).append(r)
        for members in groups.values():
            lead = members[0]
            sel = fam
            for r in varying:
                if r not in members:
                    sel = _at_mode(sel, f"bits.{r}")
                sel = _at_mode(sel, f"il.{r}")
            if sel[f"bits.{lead}"].nunique() < 2:
                continue
            name = ROLE_GROUPS.get(frozenset(members), "/".join(members))
            for rounding, g in sel.groupby(f"rounding.{lead}", sort=False):
                stats = g.groupby(f"bits.{lead}")["test_error_percent"].agg(
                    ["mean", "std", "count"]).reset_index().sort_values(f"bits.{lead}")
                curves.append({"group": name, "family": family, "rounding": rounding,
                               "workload": workload, "bits": stats.iloc[:, 0].to_numpy(),
                               "mean": stats["mean"].to_numpy(),
                               "std": stats["std"].fillna(0).to_numpy(),
                               "n": stats["count"].to_numpy(),
                               "policies": ordered_unique(g["policy"])})
    return curves


def radix_sweeps(prep: pd.DataFrame) -> list[dict[str, Any]]:
    """Curves of a fixed point radix sweep: finished runs whose weights are fixed point with
    the same width in every role but different integer bits IL (the same IL in every fixed
    point role); one curve per (widths, rounding, workload)."""
    done = _done(prep)
    if "il.weights" not in done.columns:
        return []
    fixed = done[done["family.weights"] == "fixed"]
    il_cols = [c for c in fixed.columns if c.startswith("il.")]
    same_il = fixed[il_cols].apply(lambda row: row.dropna().nunique() == 1, axis=1)
    fixed = fixed[same_il] if len(fixed) else fixed
    bit_cols = [c for c in fixed.columns if c.startswith("bits.") and c != "bits.default"]
    curves = []
    keys = bit_cols + ["rounding.weights", "workload", "setup"]
    for key, g in fixed.groupby(keys, sort=False):
        if g["il.weights"].nunique() < 2:
            continue
        stats = g.groupby("il.weights")["test_error_percent"].agg(
            ["mean", "std", "count"]).reset_index().sort_values("il.weights")
        widths = sorted({int(b) for b in key[:len(bit_cols)] if not math.isnan(b)})
        curves.append({"bits": "/".join(str(b) for b in widths), "rounding": key[-3],
                       "workload": key[-2], "il": stats["il.weights"].to_numpy(),
                       "mean": stats["mean"].to_numpy(),
                       "std": stats["std"].fillna(0).to_numpy(),
                       "policies": ordered_unique(g["policy"])})
    return curves


def plot_radix_position(prep: pd.DataFrame, colors: dict[str, Any]) -> Plot | Skip:
    title = "Test error against the fixed point radix position"
    curves = radix_sweeps(prep)
    if not curves:
        return Skip("radixpos", title, "the finished runs do not sweep the radix position of a "
                    "fixed point format (same widths, at least two integer-bit counts IL)")
    fig, axes = new_figure(height=3.8)
    ax = axes[0, 0]
    multi = _multi_workload(prep)
    for i, c in enumerate(curves):
        label = f"{c['bits']} bits, {c['rounding']} rounding"
        if multi:
            label += f", {c['workload']}"
        ax.errorbar(c["il"], c["mean"], yerr=c["std"], marker="osD^v"[i % 5], capsize=3,
                    label=label)
    ax.set_title(title)
    ax.set_xlabel("integer bits IL, sign included (range ±2^(IL-1))")
    ax.set_ylabel("test error (%) at best val. epoch")
    ax.xaxis.get_major_locator().set_params(integer=True)
    _log_if_wide(ax, np.concatenate([c["mean"] for c in curves]))
    ax.legend(loc="best")
    caption = ("Fixed point with the same width in every role and the radix moved: fewer "
               "integer bits give finer steps and a smaller range. Runs: "
               + "; ".join(", ".join(c["policies"]) for c in curves) + ".")
    return Plot("radixpos", title, caption, fig)


def plot_bitwidth(prep: pd.DataFrame, colors: dict[str, Any]) -> Plot | Skip:
    title = "Test error against bit width"
    curves = [c for c in bit_sweeps(prep) if len(c["bits"]) >= 2]
    if not curves:
        return Skip("bitwidth", title, "the finished runs do not sweep the bit width of any "
                    "role (at least two widths with the other roles fixed)")
    fig, axes = new_figure(height=4.0)
    ax = axes[0, 0]
    multi = _multi_workload(prep)
    markers = "osD^v<>p*h"
    all_means = []
    for i, c in enumerate(curves):
        label = f"{c['group']} ({c['family']}, {c['rounding']} rounding)"
        if multi:
            label += f", {c['workload']}"
        ax.errorbar(c["bits"], c["mean"], yerr=c["std"], marker=markers[i % len(markers)],
                    capsize=3, label=label)
        all_means.extend(c["mean"])
    ax.set_title(title)
    ax.set_xlabel("bit width of the swept roles (bits, sign included)")
    ax.set_ylabel("test error (%) at best val. epoch")
    ax.xaxis.get_major_locator().set_params(integer=True)
    _log_if_wide(ax, all_means)
    ax.legend(loc="best")
    caption = ("Mean ± std over seeds of the finished runs; each curve sweeps one group of roles "
               "with the others held at their most common width. Groups: "
               + "; ".join(sorted({f"{c['group']}: {', '.join(c['policies'])}" for c in curves}))
               + ".")
    return Plot("bitwidth", title, caption, fig)


# -- learning curves ------------------------------------------------------------------------------


def plot_learning_curves(prep: pd.DataFrame, history: pd.DataFrame | None,
                         colors: dict[str, Any]) -> Plot | Skip:
    title = "Learning curves"
    if history is None or history.empty or "epoch" not in history.columns:
        return Skip("learning", title, "no per-epoch history is stored")
    h = history.merge(prep[["run_id", "policy", "workload"]], on="run_id", how="inner")
    metrics = [m for m in ("train_loss", "test_error", "val_error") if m in h.columns
               and h[m].notna().any()]
    if h.empty or not metrics:
        return Skip("learning", title, "the stored history has no training loss or error")
    err_metric = "test_error" if "test_error" in metrics else (
        "val_error" if "val_error" in metrics else None)
    panels = [m for m in ("train_loss", err_metric) if m]
    workloads = ordered_unique(h["workload"])[:MAX_PANELS]
    fig, axes = new_figure(len(workloads), len(panels), height=3.4)
    for i, wl in enumerate(workloads):
        hw = h[h["workload"] == wl]
        for j, m in enumerate(panels):
            ax = axes[i, j]
            scale = 100.0 if m.endswith("error") else 1.0
            vals = []
            for pol in ordered_unique(hw["policy"]):
                g = hw[hw["policy"] == pol].groupby("epoch")[m].mean().dropna() * scale
                if g.empty:
                    continue
                ax.plot(g.index, g.to_numpy(), marker="o", color=colors.get(pol), label=pol)
                vals.extend(g.to_numpy())
            name = {"train_loss": "training loss", "test_error": "test error (%)",
                    "val_error": "validation error (%)"}[m]
            ax.set_title(f"{name.split(' (')[0].capitalize()}" + (f" — {wl}" if len(workloads)
                                                                   > 1 else ""))
            ax.set_xlabel("epoch")
            ax.set_ylabel(name if m != "train_loss" else "training loss (cross-entropy)")
            ax.xaxis.get_major_locator().set_params(integer=True)
            _log_if_wide(ax, vals, ratio=3.0)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncols=min(4, len(labels)))
    more = len(ordered_unique(h["workload"])) - len(workloads)
    caption = ("Mean over seeds per epoch (diverged runs contribute their epochs before "
               "divergence)." + (f" {more} more workload(s) in results.csv." if more else ""))
    return Plot("learning", title, caption, fig)


# -- stochastic vs nearest ------------------------------------------------------------------------


def rounding_pairs(prep: pd.DataFrame) -> list[dict[str, Any]]:
    """Policies that differ only in rounding (nearest vs stochastic), per workload and setup
    (runs with other optimizer or training options are not paired)."""
    rcols = [c for c in prep.columns if c.startswith("rounding.")]
    if not rcols or "precision_key" not in prep.columns:
        return []
    df = prep.copy()
    df["_mode"] = ["stochastic" if any(str(r.get(c)) == "stochastic" for c in rcols)
                   else "nearest" for r in df[rcols].to_dict("records")]
    pairs = []
    groups = ["precision_key", "workload"] + (["setup"] if "setup" in df.columns else [])
    for (_key, wl, *_), g in df.groupby(groups, sort=False):
        modes = ordered_unique(g["_mode"])
        if {"nearest", "stochastic"} <= set(modes):
            entry: dict[str, Any] = {"workload": wl}
            for mode in ("nearest", "stochastic"):
                gm = g[g["_mode"] == mode]
                ok = _done(gm)
                entry[mode] = {"policy": ordered_unique(gm["policy"])[0],
                               "values": ok["test_error_percent"].to_numpy(),
                               "failed": int(len(gm) - len(ok))}
            pairs.append(entry)
    return pairs


def plot_rounding(prep: pd.DataFrame, colors: dict[str, Any]) -> Plot | Skip:
    title = "Stochastic vs nearest rounding"
    pairs = rounding_pairs(prep)
    if not pairs:
        return Skip("rounding", title, "no two policies differ only in rounding "
                    "(nearest vs stochastic)")
    fig, axes = new_figure(height=3.8)
    ax = axes[0, 0]
    x = np.arange(len(pairs))
    width = 0.38
    tick = []
    for k, (mode, color) in enumerate((("nearest", "#1f77b4"), ("stochastic", "#ff7f0e"))):
        means, stds = [], []
        for i, p in enumerate(pairs):
            v = p[mode]["values"]
            means.append(float(np.mean(v)) if len(v) else np.nan)
            stds.append(float(np.std(v, ddof=1)) if len(v) > 1 else 0.0)
            ax.scatter(np.full(len(v), i + (k - 0.5) * width), v, color="black", s=10, zorder=3)
            if p[mode]["failed"]:
                ax.annotate(f"{p[mode]['failed']} not finished", (i + (k - 0.5) * width, 0),
                            ha="center", va="bottom", fontsize=7, rotation=90)
        ax.bar(x + (k - 0.5) * width, means, width, yerr=stds, capsize=3, color=color,
               label=f"{mode} rounding", alpha=0.85)
    for p in pairs:
        label = f"{p['nearest']['policy']}\nvs {p['stochastic']['policy']}"
        if _multi_workload(prep):
            label += f"\n{p['workload']}"
        tick.append(label)
    crowded = len(pairs) > 3
    ax.set_xticks(x, tick, rotation=35 if crowded else 0, ha="right" if crowded else "center",
                  fontsize=7 if crowded else None)
    ax.set_xlim(-0.5 - 0.5 * (len(pairs) < 3), len(pairs) - 0.5 + 0.5 * (len(pairs) < 3))
    ax.set_title(title)
    ax.set_ylabel("test error (%) at best val. epoch")
    ax.legend(loc="best")
    return Plot("rounding", title, "Bars: mean ± std over seeds; dots: single seeds. Each pair of "
                "policies is identical apart from the rounding mode.", fig)


# -- statistics -----------------------------------------------------------------------------------


def _stats_with_policy(prep: pd.DataFrame, stats: pd.DataFrame | None) -> pd.DataFrame:
    if stats is None or stats.empty or "statistic" not in stats.columns:
        return pd.DataFrame()
    return stats.merge(prep[["run_id", "policy", "workload"]], on="run_id", how="inner")


def _policy_panels(policies: list[str]) -> tuple[list[str], str]:
    shown = policies[:MAX_PANELS]
    more = len(policies) - len(shown)
    return shown, (f" {more} more polic{'y' if more == 1 else 'ies'} not drawn: "
                   f"{', '.join(policies[len(shown):])}." if more else "")


def plot_sparsity(prep: pd.DataFrame, stats: pd.DataFrame | None,
                  colors: dict[str, Any]) -> Plot | Skip:
    title = "Sparsity per layer over epochs"
    s = _stats_with_policy(prep, stats)
    if s.empty:
        return Skip("sparsity", title, "no statistics are stored (run the study with "
                    "stats = true)")
    s = s[s["statistic"].isin([n for n, _ in SPARSITY_STATS]) & s["epoch"].notna()]
    if s.empty:
        return Skip("sparsity", title, "the stored statistics have no sparsity "
                    "(activation/error/gradient_sparsity)")
    names = [n for n, _ in SPARSITY_STATS if n in set(s["statistic"])]
    policies, more = _policy_panels(ordered_unique(s["policy"]))
    fig, axes = new_figure(len(policies), len(names), height=2.8, sharey=True)
    for i, pol in enumerate(policies):
        sp = s[s["policy"] == pol]
        for j, name in enumerate(names):
            ax = axes[i, j]
            g = sp[sp["statistic"] == name].groupby(["layer", "epoch"], sort=False)["value"]\
                .mean().reset_index()
            for layer in ordered_unique(g["layer"]):
                gl = g[g["layer"] == layer]
                ax.plot(gl["epoch"], gl["value"] * 100, marker="o", label=str(layer))
            ax.set_title(textwrap.fill(f"{name.replace('_', ' ')} — {pol}", 34), fontsize=9)
            ax.set_ylim(-2, 102)
            ax.set_xlabel("epoch")
            ax.xaxis.get_major_locator().set_params(integer=True)
            if j == 0:
                ax.set_ylabel("exact zeros (%)")
            if len(g):
                ax.legend(loc="best", title="layer", title_fontsize=8)
    return Plot("sparsity", title, "Share of exactly-zero elements entering each layer's "
                "point, mean over seeds and snapshots." + more, fig)


def role_rates(prep: pd.DataFrame, stats: pd.DataFrame | None, statistic: str) -> pd.DataFrame:
    """Count-weighted mean of a fraction statistic per policy (rows) × role (columns), in %."""
    s = _stats_with_policy(prep, stats)
    if s.empty:
        return pd.DataFrame()
    keys = ["run_id", "epoch", "layer", "role"]
    vals = s[s["statistic"] == statistic]
    if vals.empty:
        return pd.DataFrame()
    counts = s[s["statistic"] == "count"][keys + ["value"]].rename(columns={"value": "count"})
    counts = counts.groupby(keys, dropna=False)["count"].sum().reset_index()
    v = vals.groupby(keys + ["policy"], dropna=False)["value"].mean().reset_index()
    v = v.merge(counts, on=keys, how="left")
    v["count"] = v["count"].fillna(1.0)
    v["w"] = v["value"] * v["count"]
    agg = v.groupby(["policy", "role"], sort=False)[["w", "count"]].sum()
    agg["rate"] = agg["w"] / agg["count"] * 100.0
    table = agg["rate"].unstack("role")
    table = table.reindex(index=[p for p in ordered_unique(prep["policy"]) if p in table.index],
                          columns=[r for r in ROLE_ORDER if r in table.columns])
    return table


def plot_range(prep: pd.DataFrame, stats: pd.DataFrame | None,
               colors: dict[str, Any]) -> Plot | Skip:
    title = "Overflow and underflow rates per role"
    over = role_rates(prep, stats, "overflow_fraction")
    under = role_rates(prep, stats, "underflow_fraction")
    if over.empty and under.empty:
        return Skip("range", title, "no overflow/underflow statistics are stored (run the "
                    "study with stats = true; float32 points are not counted)")
    frames = [(n, t) for n, t in (("overflow", over), ("underflow", under)) if not t.empty]
    rows = max(len(t) for _, t in frames)
    fig, axes = new_figure(len(frames), 1, height=max(2.2, 0.32 * rows + 1.2))
    positive = np.concatenate([t.to_numpy().ravel() for _, t in frames])
    positive = positive[np.isfinite(positive) & (positive > 0)]
    norm = LogNorm(vmin=max(positive.min(), 1e-6), vmax=max(positive.max(), 1e-5)) \
        if positive.size else None
    for j, (name, t) in enumerate(frames):
        ax = axes[j, 0]
        data = t.to_numpy(dtype=float)
        masked = np.ma.masked_where(~np.isfinite(data) | (data <= 0), data)
        ax.set_facecolor("#f2f2f2")
        im = ax.imshow(masked, aspect="auto", cmap="magma_r", norm=norm)
        ax.grid(False)
        ax.set_xticks(range(t.shape[1]),
                      [c.replace("optimizer_state", "opt. state") for c in t.columns])
        ax.set_yticks(range(t.shape[0]), list(t.index))
        for (a, b), val in np.ndenumerate(data):
            text = "–" if not np.isfinite(val) else ("0" if val == 0 else f"{val:.2g}")
            dark = norm is not None and np.isfinite(val) and val > 0 and \
                norm(val) > 0.6
            ax.text(b, a, text, ha="center", va="center", fontsize=7,
                    color="white" if dark else "black")
        ax.set_title(f"{name.capitalize()} rate (% of elements)")
        ax.set_xlabel("role" if j == len(frames) - 1 else "")
    if norm is not None:
        fig.colorbar(im, ax=axes[:, 0].tolist(), label="% of elements (log scale)", shrink=0.9)
    return Plot("range", title, "Share of the elements passing each role's points that "
                "overflowed (saturated or became inf/NaN) or underflowed (nonzero flushed to "
                "zero), count-weighted over layers, epochs and seeds. '0': none; '–': the role "
                "is not counted (exact in the carrier).", fig)


def plot_radix(prep: pd.DataFrame, stats: pd.DataFrame | None,
               colors: dict[str, Any]) -> Plot | Skip:
    title = "Dynamic fixed point radix over time"
    s = _stats_with_policy(prep, stats)
    if s.empty:
        return Skip("radix", title, "no statistics are stored (run the study with stats = true)")
    s = s[(s["statistic"] == "dfxp_il") & s["epoch"].notna()]
    if s.empty:
        return Skip("radix", title, "no dynamic fixed point format in the stored statistics")
    policies, more = _policy_panels(ordered_unique(s["policy"]))
    cols = 2 if len(policies) > 1 else 1
    rows = math.ceil(len(policies) / cols)
    fig, axes = new_figure(rows, cols, height=3.0)
    import matplotlib

    cmap = matplotlib.colormaps["tab20"]
    series = ordered_unique(zip(s["layer"], s["role"], strict=True))
    color = {key: cmap(i % cmap.N) for i, key in enumerate(series)}
    handles: dict[str, Any] = {}
    for k, pol in enumerate(policies):
        ax = axes[k // cols, k % cols]
        sp = s[s["policy"] == pol]
        seed_run = ordered_unique(sp["run_id"])[0]
        sp = sp[sp["run_id"] == seed_run]
        g = sp.groupby(["layer", "role", "epoch"], sort=False)["value"].last().reset_index()
        for (layer, role), gl in g.groupby(["layer", "role"], sort=False):
            (line,) = ax.step(gl["epoch"], gl["value"], where="post", marker="o",
                              color=color[(layer, role)], label=f"{layer}/{role}")
            handles.setdefault(f"{layer}/{role}", line)
        ax.set_title(pol, fontsize=9)
        ax.set_xlabel("epoch")
        ax.set_ylabel("integer bits IL (radix position)")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.yaxis.get_major_locator().set_params(integer=True)
    for k in range(len(policies), rows * cols):
        axes[k // cols, k % cols].set_visible(False)
    fig.suptitle(title, fontweight="bold")
    fig.legend(list(handles.values()), list(handles), loc="outside lower center",
               ncols=min(5, len(handles)), title="layer/role")
    return Plot("radix", title, "Integer bits IL of each dynamic fixed point point at the end "
                "of each epoch (first seed of each policy; layer/role)." + more, fig)


# -- cost -----------------------------------------------------------------------------------------


COST_KEYS = {
    "energy": "energy, dense",
    "energy_with_skipping": "energy, zero-skipping",
    "memory_footprint": "memory footprint",
    "bits_moved": "memory traffic (bits moved)",
}


def cost_table(prep: pd.DataFrame) -> pd.DataFrame:
    """Mean over seeds of the cost relative to float32, per policy (and workload)."""
    cols = {f"cost.relative_to_float32.{k}": k for k in COST_KEYS
            if f"cost.relative_to_float32.{k}" in prep.columns}
    if not cols:
        return pd.DataFrame()
    df = prep[["policy", "workload", *cols]].rename(columns=cols)
    df = df.dropna(subset=list(cols.values()), how="all")
    if df.empty:
        return df
    g = df.groupby(["policy", "workload"], sort=False).mean(numeric_only=True).reset_index()
    if g["workload"].nunique() > 1:
        g["name"] = g["policy"] + " — " + g["workload"]
    else:
        g["name"] = g["policy"]
    return g


def plot_cost(prep: pd.DataFrame, colors: dict[str, Any]) -> Plot | Skip:
    title = "Memory and energy relative to float32"
    t = cost_table(prep)
    if t.empty:
        return Skip("cost", title, "no cost summaries are stored (run the study with "
                    "cost = true)")
    panels = [("Energy per training step", ["energy", "energy_with_skipping"]),
              ("Memory", ["memory_footprint", "bits_moved"])]
    panels = [(n, [k for k in ks if k in t.columns]) for n, ks in panels]
    panels = [(n, ks) for n, ks in panels if ks]
    fig, axes = new_figure(1, len(panels), height=max(2.6, 0.42 * len(t) + 1.4), sharey=True)
    y = np.arange(len(t))
    hatches = ["", "//"]
    for j, (name, keys) in enumerate(panels):
        ax = axes[0, j]
        h = 0.8 / len(keys)
        for k, key in enumerate(keys):
            vals = t[key].to_numpy(dtype=float)
            ax.barh(y + (k - (len(keys) - 1) / 2) * h, vals, h, label=COST_KEYS[key],
                    color=[colors.get(p, "#888888") for p in t["policy"]],
                    hatch=hatches[k % 2], edgecolor="white" if not k else "black",
                    linewidth=0.5)
            for yy, v in zip(y + (k - (len(keys) - 1) / 2) * h, vals, strict=True):
                if np.isfinite(v):
                    ax.text(v, yy, f" {v:.2f}×", va="center", fontsize=7)
        ax.axvline(1.0, color="black", linewidth=1, linestyle="--")
        ax.set_title(name)
        ax.set_xlabel("relative to float32 (× float32, dense)")
        ax.set_yticks(y, list(t["name"]))
        if j == 0:
            ax.invert_yaxis()
        ax.grid(axis="y", visible=False)
        xmax = np.nanmax(t[keys].to_numpy(dtype=float))
        ax.set_xlim(0, max(1.15, xmax * 1.25))
        proxies = [Patch(facecolor="#bbbbbb", hatch=hatches[k % 2], edgecolor="black",
                         linewidth=0.5, label=COST_KEYS[key]) for k, key in enumerate(keys)]
        ax.legend(handles=proxies, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncols=2,
                  frameon=False)
    return Plot("cost", title, "Per training step, mean over seeds, from the hardware cost "
                "model (docs/statistics.md); dashed line = float32. Zero-skipping (hatched, "
                "left) saves MAC energy only; memory traffic (hatched, right) stays dense.", fig)
