"""Pure functions from the results frame to the report's table: one row per precision policy,
one column per workload (data set and network), test error at the best validation epoch as
mean ± std over seeds, bits per role, published numbers side by side."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

#: Roles shown in "bits per role" (``inputs`` is off unless set and is reported only then).
BIT_ROLES = ("weights", "activations", "errors", "gradients", "updates", "optimizer_state",
             "accumulator")
#: Courbariaux et al. 2015 names for groups of roles.
ROLE_GROUPS = {
    frozenset(("weights", "activations", "errors", "gradients")): "propagations",
    frozenset(("updates",)): "parameter updates",
    frozenset(("updates", "optimizer_state")): "parameter updates",
}
_WORKLOAD_AXES = re.compile(r"^(dataset|network|network_options(\.\S+)?)=\S*$")


# -- per-run columns ----------------------------------------------------------------------------


def parse_precision(value: Any) -> Any:
    """A :class:`quantsim.precision.Precision` from a stored precision (spec string, JSON text
    of a table, or a dict); None when it cannot be parsed."""
    from quantsim.errors import QuantsimError
    from quantsim.precision import Precision

    if value is None or (isinstance(value, float) and math.isnan(value)):
        return Precision.float32()
    try:
        if isinstance(value, Mapping):
            return Precision.from_dict(value)
        text = str(value).strip()
        if text.startswith("{"):
            return Precision.from_dict(json.loads(text))
        if text and "=" not in text:
            text = f"default={text}"
        return Precision.from_string(text) if text else Precision.float32()
    except (QuantsimError, ValueError, TypeError):
        return None


def _fmt_bits(fmt: Any) -> float:
    b = getattr(fmt, "bits_per_element", None)
    if b is None:
        b = getattr(fmt, "bits", None)
    return float(b) if b is not None else float("nan")


def _family(fmt: Any) -> str:
    return str(fmt).split("@", 1)[0].split("<", 1)[0]


def _integer_bits(fmt: Any) -> float:
    """IL (integer bits, sign included) of a static fixed point format; NaN for the others."""
    il = getattr(fmt, "il", None)
    return float(il) if isinstance(il, int) else float("nan")


def _rounding(fmt: Any) -> str:
    r = getattr(fmt, "rounding", None)
    mode = getattr(r, "mode", None)
    return str(mode) if mode else "nearest"


def precision_columns(value: Any) -> dict[str, Any]:
    """``bits.<role>``, ``family.<role>``, ``rounding.<role>``, ``il.<role>`` (integer bits of
    fixed point formats) of a stored precision, plus
    ``precision_key`` (the policy with roundings stripped, to pair stochastic vs nearest)."""
    p = parse_precision(value)
    out: dict[str, Any] = {}
    if p is None:
        return out
    roles = list(BIT_ROLES)
    if "inputs" in getattr(p, "roles", {}):
        roles.insert(0, "inputs")
    for role in roles:
        fmt = p.format_for("\0", role)
        out[f"bits.{role}"] = _fmt_bits(fmt)
        out[f"family.{role}"] = _family(fmt)
        out[f"rounding.{role}"] = _rounding(fmt)
        out[f"il.{role}"] = _integer_bits(fmt)
    out["bits.default"] = _fmt_bits(p.default)
    out["precision_key"] = re.sub(r"@[a-z_]+(<\d+>)?", "", str(p))
    return out


def policy_name(label: Any, variant: Any = None) -> str:
    """The table row of a run: its label without grid axes that pick the workload."""
    text = "" if label is None or (isinstance(label, float) and math.isnan(label)) else str(label)
    kept = [t for t in text.split(" ") if not _WORKLOAD_AXES.match(t)]
    name = " ".join(kept).strip()
    if not name and isinstance(variant, str) and variant:
        name = variant
    return name or text or "(unnamed)"


def _col(df: pd.DataFrame, name: str, default: Any = None) -> pd.Series:
    if name in df.columns:
        return df[name]
    return pd.Series([default] * len(df), index=df.index, dtype=object)


def prepare(results: pd.DataFrame) -> pd.DataFrame:
    """The results frame with the columns every part of the report uses: ``run_id``,
    ``policy``, ``workload``, ``dataset``, ``network``, ``test_error_percent``, ``bits.<role>``,
    ``rounding.<role>``, ``family.<role>``, ``precision_key`` and ``precision``."""
    df = results.copy().reset_index(drop=True)
    if "id" not in df.columns:
        df["id"] = [f"run{i}" for i in range(len(df))]
    df["run_id"] = df["id"].astype(str)
    if "policy" not in df.columns:
        variants = _col(df, "variant")
        df["policy"] = [policy_name(lab, var)
                        for lab, var in zip(df["label"], variants, strict=True)]
    df["policy"] = df["policy"].astype(str)
    df["dataset"] = _col(df, "config.dataset", "").fillna("").astype(str)
    df["network"] = _col(df, "config.network", "").fillna("").astype(str)
    df["workload"] = [f"{d} ({n})" if d and n else (d or n or "(workload)")
                      for d, n in zip(df["dataset"], df["network"], strict=True)]
    df["precision"] = [p if isinstance(p, str) else (json.dumps(p, sort_keys=True)
                                                     if isinstance(p, Mapping) else "float32")
                       for p in _col(df, "config.precision", "default=float32")]
    err = pd.to_numeric(_col(df, "test_error"), errors="coerce")
    df["test_error_percent"] = err * 100.0
    pcols = pd.DataFrame([precision_columns(v) for v in df["precision"]], index=df.index)
    for c in pcols.columns:
        df[c] = pcols[c]
    if "seed" not in df.columns:
        df["seed"] = 0
    df["setup"] = _setup_keys(df)
    return df


#: Run options that do not make two runs different experiments (or are shown elsewhere).
_NOT_SETUP = {"config.precision", "config.seed", "config.dataset", "config.network",
              "config.stats", "config.stats_every", "config.cost", "config.device",
              "config.data_dir"}


def _setup_keys(df: pd.DataFrame) -> list[str]:
    """Per run, the text of every other config option (optimizer, epochs, ...): figures that
    average or connect runs only do so among runs with the same setup."""
    cols = sorted(c for c in df.columns if c.startswith("config.") and c not in _NOT_SETUP)
    keys = []
    for _, row in df[cols].iterrows():
        parts = [f"{c[7:]}={row[c]}" for c in cols
                 if not (isinstance(row[c], float) and math.isnan(row[c]))]
        keys.append(";".join(parts))
    return keys


def ordered_unique(values: Any) -> list[Any]:
    seen: dict[Any, None] = {}
    for v in values:
        seen.setdefault(v, None)
    return list(seen)


# -- bits per role ------------------------------------------------------------------------------


def _group_name(roles: list[str]) -> str:
    return ROLE_GROUPS.get(frozenset(roles), "/".join(roles))


def bits_text(row: Mapping[str, Any]) -> str:
    """E.g. ``propagations 10, parameter updates 12, others 32`` (bits include the sign)."""
    bits = {r: row.get(f"bits.{r}") for r in ("inputs", *BIT_ROLES)}
    bits = {r: b for r, b in bits.items() if b is not None and not
            (isinstance(b, float) and math.isnan(b))}
    if not bits:
        return "?"
    common = row.get("bits.default")
    if common is None or (isinstance(common, float) and math.isnan(common)):
        common = pd.Series(list(bits.values())).value_counts().index[0]
    if all(b == common for b in bits.values()):
        return f"all {_num(common)}"
    by_bits: dict[float, list[str]] = {}
    for r, b in bits.items():
        if b != common:
            by_bits.setdefault(b, []).append(r)
    parts = [f"{_group_name(roles)} {_num(b)}" for b, roles in by_bits.items()]
    return ", ".join(parts + [f"others {_num(common)}"])


def _num(x: float) -> str:
    return f"{x:g}"


# -- the paper-style table ----------------------------------------------------------------------


@dataclass
class Cell:
    """One (policy, workload) cell: the finished runs' statistics and the other runs' fates."""

    n: int = 0
    mean: float = float("nan")
    std: float = float("nan")
    values: list[float] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    reference: float | None = None
    reference_policy: str | None = None

    @property
    def text(self) -> str:
        parts = []
        if self.n:
            parts.append(f"{self.mean:.2f} ± {self.std:.2f} (n={self.n})" if self.n > 1
                         else f"{self.mean:.2f} (n=1)")
        parts += self.problems
        return "; ".join(parts) if parts else "—"


@dataclass
class Table:
    policies: list[str]
    workloads: list[str]
    cells: dict[tuple[str, str], Cell]
    bits: dict[str, str]
    precision: dict[str, str]
    has_reference: bool
    citations: list[str]


def first_line(text: Any, limit: int = 120) -> str:
    """The line of an error text that says what went wrong, shortened: the exception line of
    a Python traceback (without the module path), else the first non-empty line."""
    if text is None or (isinstance(text, float) and math.isnan(text)):
        return "unknown error"
    lines = [ln.rstrip() for ln in str(text).splitlines() if ln.strip()]
    if lines and lines[0].startswith("Traceback"):
        tail = [ln for ln in lines[1:] if not ln[:1].isspace()]
        lines = tail[-1:] or lines
    line = lines[0].strip() if lines else "unknown error"
    line = re.sub(r"^(?:[A-Za-z_][\w]*\.)+(?=[A-Za-z_]\w*(?:Error|Exception|Warning)\b)", "",
                  line)
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _int(v: Any) -> int | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else int(f)


def run_problem(row: Mapping[str, Any]) -> str | None:
    """How a run that did not finish normally is shown ('diverged (epoch 3)', 'failed: ...');
    None for a finished run."""
    status = str(row.get("status") or "")
    err = row.get("test_error_percent")
    finished = status == "done" and err is not None and not (isinstance(err, float)
                                                            and math.isnan(err))
    if finished:
        return None
    if status == "diverged" or row.get("diverged") is True:
        epoch = _int(row.get("diverged_epoch"))
        if epoch is None:
            done = _int(row.get("epochs_done"))
            epoch = done + 1 if done is not None else None
        return f"diverged (epoch {epoch})" if epoch is not None else "diverged"
    if status == "failed":
        return f"failed: {first_line(row.get('error'))}"
    if status == "done":
        return "done, no test error"
    done, total = _int(row.get("epochs_done")), _int(row.get("epochs"))
    progress = f" ({done}/{total} epochs)" if done is not None and total else ""
    return f"{status or 'unknown status'}{progress}"


def _norm(s: Any) -> str:
    return re.sub(r"[^a-z0-9]", "", str(s).lower())


def match_reference(ref: pd.DataFrame, policy: str, dataset: str, network: str
                    ) -> pd.Series | None:
    """The published row for a policy on a workload: same policy name (case, spaces and
    punctuation ignored) and data set (``PI-<X>`` — permutation invariant — matches ``X`` on a
    network that is not convolutional)."""
    if ref is None or ref.empty:
        return None
    pol, ds, net = _norm(policy), _norm(dataset), _norm(network)
    cand = ref[(ref["policy"].map(_norm) == pol)
               & ref["dataset"].map(_norm).isin([ds, f"pi{ds}"])]
    if cand.empty:
        return None
    if "network" in cand.columns and len(cand) > 1:
        same = cand[cand["network"].map(_norm) == net]
        if not same.empty:
            cand = same
        else:
            pi = cand["dataset"].map(_norm).str.startswith("pi")
            cand = cand[pi] if "conv" not in net and pi.any() else cand[~pi] if (~pi).any() \
                else cand
    return cand.iloc[0]


def build_table(prep: pd.DataFrame, reference: pd.DataFrame | None = None) -> Table:
    """The paper-style table from :func:`prepare`'s frame."""
    policies = ordered_unique(prep["policy"])
    workloads = ordered_unique(prep["workload"])
    cells: dict[tuple[str, str], Cell] = {}
    bits: dict[str, str] = {}
    precision: dict[str, str] = {}
    for (pol, wl), g in prep.groupby(["policy", "workload"], sort=False):
        cell = Cell()
        ok = g[(g["status"] == "done") & g["test_error_percent"].notna()]
        vals = [float(v) for v in ok["test_error_percent"]]
        cell.values = vals
        cell.n = len(vals)
        if vals:
            cell.mean = float(np.mean(vals))
            cell.std = float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0
        for _, row in g.iterrows():
            prob = run_problem(row.to_dict())
            if prob is not None:
                seed = _int(row.get("seed"))
                cell.problems.append(prob if seed is None else f"seed {seed} {prob}")
        cell.problems = _merge_problems(cell.problems)
        if reference is not None:
            first = g.iloc[0]
            hit = match_reference(reference, pol, first["dataset"], first["network"])
            if hit is None and "variant" in g.columns and isinstance(first.get("variant"), str):
                hit = match_reference(reference, first["variant"], first["dataset"],
                                      first["network"])
            if hit is not None:
                cell.reference = float(hit["test_error_percent"])
                cell.reference_policy = str(hit["policy"])
        cells[(pol, wl)] = cell
        bits.setdefault(pol, bits_text(g.iloc[0].to_dict()))
        precision.setdefault(pol, str(g.iloc[0]["precision"]))
    citations = []
    if reference is not None and "citation" in reference.columns:
        citations = [str(c) for c in ordered_unique(reference["citation"].dropna())]
    return Table(policies, workloads, cells, bits, precision,
                 has_reference=any(c.reference is not None for c in cells.values()),
                 citations=citations)


def _merge_problems(problems: list[str]) -> list[str]:
    """'seed 0 diverged (epoch 1)', 'seed 1 diverged (epoch 1)' -> '2 runs diverged (epoch 1)'
    when every problem is the same apart from the seed."""
    if len(problems) < 2:
        return problems
    bodies = [p.split(" ", 2)[2] if p.startswith("seed ") else p for p in problems]
    if len(set(bodies)) == 1:
        return [f"{len(problems)} runs {bodies[0]}"]
    return problems


def reference_table(ref: pd.DataFrame) -> pd.DataFrame:
    """Published numbers as policy (rows, with bits) × data set (network) (columns), in %."""
    df = ref.copy()
    df["workload"] = [f"{d} ({n})" if isinstance(n, str) and n else str(d)
                      for d, n in zip(df["dataset"], _col(df, "network", ""), strict=True)]
    bits = []
    for _, r in df.iterrows():
        pb, ub = r.get("propagation_bits"), r.get("update_bits")
        if pd.notna(pb) and pd.notna(ub):
            bits.append(f"propagations {_num(float(pb))}, updates {_num(float(ub))}")
        else:
            bits.append("")
    df["bits"] = bits
    table = df.pivot_table(index=["policy", "bits"], columns="workload",
                           values="test_error_percent", aggfunc="first", sort=False)
    table = table.reindex(columns=ordered_unique(df["workload"]))
    return table.reset_index()


# -- results.csv --------------------------------------------------------------------------------


def results_csv_frame(prep: pd.DataFrame, table: Table) -> pd.DataFrame:
    """One row per run (every run, whatever its status): what the table is computed from."""
    cols = ["run_id", "policy", "workload", "dataset", "network", "label", "seed", "status",
            "test_error_percent", "best_epoch", "epochs_done", "epochs", "diverged_epoch",
            "error", "precision"]
    out = pd.DataFrame({c: _col(prep, c) for c in cols})
    out["shown_as"] = [run_problem(r) or "finished" for r in prep.to_dict("records")]
    out["bits"] = [table.bits.get(p, "") for p in prep["policy"]]
    for r in BIT_ROLES:
        if f"bits.{r}" in prep.columns:
            out[f"bits.{r}"] = prep[f"bits.{r}"]
    out["published_test_error_percent"] = [
        table.cells[(p, w)].reference if (p, w) in table.cells else None
        for p, w in zip(prep["policy"], prep["workload"], strict=True)]
    for c in prep.columns:
        if c.startswith("cost.relative_to_float32."):
            out[c] = prep[c]
    return out
