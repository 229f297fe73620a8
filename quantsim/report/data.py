"""What a report is built from (:class:`ReportData`: plain pandas frames) and the adapter that
reads it from a results store or a study file (:func:`load_report_data`).

The frames (only ``results`` is required; every column but ``label`` and ``status`` optional):

- ``results``: one row per run — ``id``, ``label``, ``seed``, ``status`` (``done``,
  ``diverged``, ``failed``, ``queued``, ``running``, ``interrupted``), ``test_error`` (a
  fraction, at the best validation epoch), ``best_epoch``, ``epochs``, ``epochs_done``,
  ``error`` (failure text), ``diverged_epoch``, ``variant``, ``config.dataset``,
  ``config.network``, ``config.precision`` (spec string or JSON of a precision table), an
  optional ``policy`` (the table row; derived from the label otherwise), and cost columns
  ``cost.relative_to_float32.<key>`` (``energy``, ``energy_with_skipping``,
  ``memory_footprint``, ``bits_moved``, ...).
- ``history``: one row per (run, epoch) — ``run_id``, ``epoch`` and the metrics
  (``train_loss``, ``train_error``, ``val_error``, ``test_error``, ...).
- ``stats``: the tidy statistics — ``run_id``, ``epoch``, ``layer``, ``role``, ``statistic``,
  ``value`` (see docs/statistics.md for the statistic names).
- ``reference``: published numbers (``studies/references/*.csv``: ``citation``, ``policy``,
  ``propagation_bits``, ``update_bits``, ``dataset``, ``network``, ``test_error_percent``).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from quantsim.errors import QuantsimError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

REFERENCE_COLUMNS = ("citation", "policy", "dataset", "test_error_percent")


class ReportError(QuantsimError):
    """A report cannot be built: no store, no runs, an unreadable reference file."""


@dataclass
class ReportData:
    """Everything a report shows, as pandas frames plus a little provenance."""

    results: pd.DataFrame
    history: pd.DataFrame | None = None
    stats: pd.DataFrame | None = None
    reference: pd.DataFrame | None = None
    title: str = "quantsim report"
    description: str = ""
    store_path: str | None = None
    study_path: str | None = None
    reference_path: str | None = None
    notes: list[str] = field(default_factory=list)
    #: Hand-written analysis (Markdown) shown under "Findings"; empty for none.
    findings: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.results, pd.DataFrame):
            raise ReportError("ReportData.results must be a pandas DataFrame (one row per run)")
        missing = [c for c in ("label", "status") if c not in self.results.columns]
        if missing:
            raise ReportError(f"the results frame lacks the column(s) {', '.join(missing)}; "
                              "it needs one row per run with at least label and status")


def read_reference(path: str | Path) -> pd.DataFrame:
    """A published-numbers CSV (see studies/references/README.md)."""
    p = Path(path)
    try:
        df = pd.read_csv(p)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ReportError(f"cannot read the reference file {str(p)!r}: {exc}") from None
    missing = [c for c in REFERENCE_COLUMNS if c not in df.columns]
    if missing:
        raise ReportError(f"reference file {str(p)!r} lacks the column(s) {', '.join(missing)}; "
                          "see studies/references/README.md for the format")
    return df


# -- the store adapter --------------------------------------------------------------------------


def resolve_store(source: str | Path, store: str | Path | None = None) -> tuple[Path, Path | None]:
    """``(store path, study path or None)`` for a store or a study file (``*.toml``: its
    default store, ``<stem>.results.sqlite`` beside it, unless ``store`` is given)."""
    src = Path(source)
    if not src.exists():
        raise ReportError(f"{str(src)!r} does not exist; give a results store (*.sqlite) or a "
                          "study file (*.toml) whose study has been run "
                          "(quantsim study run FILE)")
    if src.is_dir():
        raise ReportError(f"{str(src)!r} is a directory; give a results store (*.sqlite) or a "
                          "study file (*.toml)")
    if src.suffix.lower() == ".toml":
        from quantsim.study import default_store_path

        st = Path(store) if store is not None else default_store_path(src)
        if not st.exists():
            raise ReportError(f"no results store for {str(src)!r} at {str(st)!r}; run the study "
                              f"first (quantsim study run {src}) or give --store PATH")
        return st, src
    if store is not None:
        raise ReportError("--store is only for a study file argument; the argument "
                          f"{str(src)!r} already names a store")
    return src, None


def _reference_from_text(text: str | None, study_path: str | None) -> Path | None:
    if not text:
        return None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return None
    ref = doc.get("reference")
    if not isinstance(ref, str) or not ref:
        return None
    p = Path(ref)
    if not p.is_absolute() and study_path:
        p = Path(study_path).parent / p
    return p


def _cost_columns(cost_json: str | None) -> dict[str, Any]:
    if not cost_json:
        return {}
    try:
        cost = json.loads(cost_json)
    except (TypeError, ValueError):
        return {}
    out: dict[str, Any] = {}
    rel = cost.get("relative_to_float32") if isinstance(cost, dict) else None
    if isinstance(rel, dict):
        for k, v in rel.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                out[f"cost.relative_to_float32.{k}"] = float(v)
    totals = cost.get("totals") if isinstance(cost, dict) else None
    if isinstance(totals, dict):
        for k in ("macs_total", "skippable_fraction", "bits_moved_total", "memory_bytes_total"):
            v = totals.get(k)
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                out[f"cost.totals.{k}"] = float(v)
    return out


def read_findings(path: str | Path) -> str:
    """The text of a findings file (Markdown), or a :class:`ReportError` naming it."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ReportError(f"findings file {str(path)!r} cannot be read ({exc.strerror}); "
                          "write the analysis there or leave out --findings") from None


def load_report_data(source: str | Path, *, store: str | Path | None = None,
                     study: str | None = None, reference: str | Path | None | bool = None
                     ) -> ReportData:
    """Read a results store (or a study file's store) into :class:`ReportData`.

    Uses ``quantsim.study.load_results`` / ``load_history`` / ``load_stats`` and, for what
    those do not return (the nested cost summary, the divergence epoch, the study's
    description and reference file), the store's ``runs`` and ``studies`` tables.
    ``reference``: None (the study file's ``reference``), False (none), or a CSV path.
    """
    from quantsim.study import Store, load_history, load_results, load_stats

    store_path, study_path = resolve_store(source, store)
    try:
        st = Store(store_path, create=False)
    except QuantsimError as exc:
        raise ReportError(str(exc)) from None
    try:
        studies = [dict(r) for r in st.query("SELECT name, description, path, text FROM studies "
                                             "ORDER BY name")]
        names = [s["name"] for s in studies]
        if study is None:
            if len(names) > 1:
                raise ReportError(f"{store_path} holds the studies {', '.join(names)}; choose one "
                                  "with --study NAME")
            study = names[0] if names else None
        elif study not in names:
            raise ReportError(f"{store_path} has no study {study!r}; it holds "
                              f"{', '.join(names) or 'no study'}")
        info = next((s for s in studies if s["name"] == study), {})
        results = load_results(st, study)
        history = load_history(st, study)
        stats = load_stats(st, study)
        extra = {r["id"]: r for r in st.runs(study)}
    finally:
        st.close()
    if results.empty:
        raise ReportError(f"{store_path}: no runs stored yet; run the study first "
                          "(quantsim study run FILE)")

    rows = []
    for rid in results["id"]:
        r = extra.get(rid, {})
        rec: dict[str, Any] = _cost_columns(r.get("cost"))
        try:
            res = json.loads(r["result"]) if r.get("result") else {}
        except ValueError:
            res = {}
        at = res.get("diverged_at") if isinstance(res, dict) else None
        rec["diverged_epoch"] = at.get("epoch") if isinstance(at, dict) else None
        rec["metric"] = res.get("metric") if isinstance(res, dict) else None
        rows.append(rec)
    extra_df = pd.DataFrame(rows, index=results.index)
    results = pd.concat([results, extra_df[[c for c in extra_df.columns
                                            if c not in results.columns]]], axis=1)

    ref_path: Path | None = None
    if reference is None:
        ref_path = _reference_from_text(info.get("text"), info.get("path"))
    elif reference is not False:
        ref_path = Path(reference)  # type: ignore[arg-type]
    notes: list[str] = []
    ref_df = None
    if ref_path is not None:
        if ref_path.exists():
            ref_df = read_reference(ref_path)
        elif reference is None:
            notes.append(f"the study names the reference file {ref_path}, which is missing here")
        else:
            raise ReportError(f"reference file {str(ref_path)!r} does not exist")

    return ReportData(
        results=results, history=history, stats=stats, reference=ref_df,
        title=f"Study {study}" if study else f"Results in {store_path.name}",
        description=info.get("description") or "",
        store_path=str(store_path),
        study_path=str(study_path) if study_path else info.get("path"),
        reference_path=str(ref_path) if ref_df is not None else None,
        notes=notes)
