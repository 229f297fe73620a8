"""The results store: one SQLite file (WAL mode) holding every run of a study.

Tables (see ``docs/studies.md`` for every column):

- ``studies``: name, description, path and full text of each study run into this store;
- ``runs``: one row per run (key ``id`` = hash of study name and config hash): label, seed,
  config (JSON) and its hash, status, error text, attempts, timings, versions, git commit,
  result summary (test error, best epoch, epochs done, divergence), cost summary;
- ``epochs``: one row per (run, epoch), upserted as each epoch finishes;
- ``stats``: the tidy statistics frame of a run (epoch, layer, role, statistic, value);
- ``meta``: schema version.

Every write is one ``BEGIN IMMEDIATE`` transaction with bound parameters; readers never block
writers (WAL). Several processes may write at once: SQLite serialises them (``busy_timeout``).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from quantsim.errors import StudyError

SCHEMA_VERSION = 1
#: Run statuses. ``queued``: not started (or never resumed); ``running``: a worker has it (or
#: had it when the study was killed: resumed on the next run); ``interrupted``: stopped by
#: Ctrl-C, resumed on the next run; ``done`` / ``diverged``: final; ``failed``: error text in
#: ``error``, retried with ``--retry-failed``.
STATUSES = ("queued", "running", "interrupted", "done", "diverged", "failed")
FINAL = ("done", "diverged")
EPOCH_COLUMNS = ("train_loss", "train_error", "val_error", "val_loss", "test_error", "test_loss",
                 "lr", "seconds")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS studies (
    name TEXT PRIMARY KEY, description TEXT, path TEXT, text TEXT, updated_at REAL);
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    study TEXT NOT NULL,
    position INTEGER,
    label TEXT NOT NULL,
    seed INTEGER NOT NULL,
    variant TEXT,
    axes TEXT,
    config TEXT NOT NULL,
    config_hash TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'queued',
    error TEXT,
    notes TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    epochs INTEGER,
    epochs_done INTEGER NOT NULL DEFAULT 0,
    test_error REAL,
    test_loss REAL,
    best_epoch INTEGER,
    diverged INTEGER,
    seconds REAL,
    result TEXT,
    cost TEXT,
    versions TEXT,
    git_commit TEXT,
    host TEXT,
    pid INTEGER,
    worker TEXT,
    created_at REAL,
    started_at REAL,
    finished_at REAL,
    updated_at REAL);
CREATE INDEX IF NOT EXISTS runs_study ON runs (study, position);
CREATE TABLE IF NOT EXISTS epochs (
    run_id TEXT NOT NULL REFERENCES runs (id),
    epoch INTEGER NOT NULL,
    train_loss REAL, train_error REAL, val_error REAL, val_loss REAL,
    test_error REAL, test_loss REAL, lr REAL, seconds REAL,
    metrics TEXT NOT NULL,
    written_at REAL,
    PRIMARY KEY (run_id, epoch));
CREATE TABLE IF NOT EXISTS stats (
    run_id TEXT NOT NULL REFERENCES runs (id),
    epoch INTEGER, layer TEXT, role TEXT, statistic TEXT NOT NULL, value REAL);
CREATE INDEX IF NOT EXISTS stats_run ON stats (run_id, epoch);
"""


def default_store_path(study_path: str | Path) -> Path:
    """``studies/smoke.toml`` -> ``studies/smoke.results.sqlite``."""
    p = Path(study_path)
    return p.with_name(f"{p.stem}.results.sqlite")


def _json(obj: Any) -> str:
    return json.dumps(_plain(obj), sort_keys=True, allow_nan=True)


def _plain(obj: Any) -> Any:
    """JSON-safe copy (numpy scalars -> python, arrays -> lists, DataFrames dropped)."""
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, float):
        return obj
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    item = getattr(obj, "item", None)
    if callable(item) and getattr(obj, "ndim", 1) == 0:
        return item()
    tolist = getattr(obj, "tolist", None)
    if callable(tolist) and not hasattr(obj, "columns"):
        return tolist()
    return str(obj)


def _real(v: Any) -> float | None:
    """A float for a REAL column; None for missing values (NaN is stored in the JSON)."""
    if v is None or isinstance(v, bool):
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


class Store:
    """A study's results store at ``path`` (created on first use)."""

    def __init__(self, path: str | Path, *, timeout: float = 60.0, create: bool = True) -> None:
        self.path = Path(path)
        if not create and not self.path.exists():
            raise StudyError(f"no results store at {str(self.path)!r}; run the study first "
                             "(quantsim study run FILE) or give --store PATH")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.timeout = timeout
        try:
            self._conn = sqlite3.connect(str(self.path), timeout=timeout, isolation_level=None)
            self._conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA synchronous = NORMAL")
            self._conn.execute("PRAGMA foreign_keys = ON")
            with self.transaction() as c:
                for stmt in _SCHEMA.split(";"):
                    if stmt.strip():
                        c.execute(stmt)
                row = c.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
                if row is None:
                    c.execute("INSERT INTO meta (key, value) VALUES ('schema_version', ?)",
                              (str(SCHEMA_VERSION),))
                elif int(row[0]) != SCHEMA_VERSION:
                    raise StudyError(f"{self.path}: store schema version {row[0]}, this "
                                     f"quantsim reads {SCHEMA_VERSION}; use another --store")
        except sqlite3.DatabaseError as exc:
            raise StudyError(f"{self.path}: not a usable results store ({exc}); move it away "
                             "or give another --store") from None

    # -- plumbing ---------------------------------------------------------------------------

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE``): all or nothing, even on Ctrl-C."""
        c = self._conn
        c.execute("BEGIN IMMEDIATE")
        try:
            yield c
        except BaseException:
            c.execute("ROLLBACK")
            raise
        c.execute("COMMIT")

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        self._conn.row_factory = sqlite3.Row
        try:
            return list(self._conn.execute(sql, params))
        finally:
            self._conn.row_factory = None

    def run_dir(self, run_id: str) -> Path:
        """Checkpoint directory of a run: ``<store stem>.runs/<run id>`` next to the store."""
        return self.path.with_name(f"{self.path.stem}.runs") / run_id

    # -- studies and runs -------------------------------------------------------------------

    def register(self, study: Any) -> None:
        """Record the study and add its runs as ``queued`` (existing rows keep their status
        and results; their label and position follow the study file)."""
        now = time.time()
        with self.transaction() as c:
            c.execute(
                "INSERT INTO studies (name, description, path, text, updated_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET "
                "description = excluded.description, path = excluded.path, "
                "text = excluded.text, updated_at = excluded.updated_at",
                (study.name, study.description, str(study.path) if study.path else None,
                 study.text, now))
            for r in study.runs:
                c.execute(
                    "INSERT INTO runs (id, study, position, label, seed, variant, axes, config, "
                    "config_hash, status, epochs, created_at, updated_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?) "
                    "ON CONFLICT (id) DO UPDATE SET position = excluded.position, "
                    "label = excluded.label, variant = excluded.variant, axes = excluded.axes",
                    (r.id, study.name, r.position, r.label, r.seed, r.variant, _json(r.axes),
                     _json(r.config), r.config_hash, r.config.get("epochs"), now, now))

    def runs(self, study: str | None = None, ids: Iterable[str] | None = None
             ) -> list[dict[str, Any]]:
        sql = "SELECT * FROM runs"
        params: list[Any] = []
        if study is not None:
            sql += " WHERE study = ?"
            params.append(study)
        sql += " ORDER BY study, position"
        rows = [dict(r) for r in self.query(sql, params)]
        if ids is not None:
            wanted = set(ids)
            rows = [r for r in rows if r["id"] in wanted]
        return rows

    def run(self, run_id: str) -> dict[str, Any] | None:
        rows = self.query("SELECT * FROM runs WHERE id = ?", (run_id,))
        return dict(rows[0]) if rows else None

    def start(self, run_id: str, *, pid: int | None = None, worker: str | None = None,
              host: str | None = None, versions: Mapping[str, Any] | None = None,
              git_commit: str | None = None) -> None:
        now = time.time()
        with self.transaction() as c:
            c.execute(
                "UPDATE runs SET status = 'running', error = NULL, attempts = attempts + 1, "
                "pid = ?, worker = ?, host = ?, versions = ?, git_commit = ?, started_at = ?, "
                "finished_at = NULL, updated_at = ? WHERE id = ?",
                (pid, worker, host, _json(versions or {}), git_commit, now, now, run_id))

    def set_status(self, run_id: str, status: str, *, error: str | None = None,
                   only_from: Sequence[str] | None = None) -> bool:
        """Set a run's status (only if it currently is one of ``only_from`` when given)."""
        if status not in STATUSES:
            raise ValueError(f"status {status!r}: expected one of {STATUSES}")
        now = time.time()
        sql = "UPDATE runs SET status = ?, error = COALESCE(?, error), updated_at = ?"
        params: list[Any] = [status, error, now]
        if status in FINAL or status == "failed":
            sql += ", finished_at = ?"
            params.append(now)
        sql += " WHERE id = ?"
        params.append(run_id)
        if only_from:
            sql += f" AND status IN ({', '.join('?' * len(only_from))})"
            params.extend(only_from)
        with self.transaction() as c:
            return c.execute(sql, params).rowcount > 0

    def add_note(self, run_id: str, note: str) -> None:
        with self.transaction() as c:
            c.execute("UPDATE runs SET notes = COALESCE(notes || char(10), '') || ? "
                      "WHERE id = ?", (note, run_id))

    # -- per-epoch metrics ------------------------------------------------------------------

    def upsert_epochs(self, run_id: str, records: Iterable[Mapping[str, Any]]) -> None:
        """Insert or replace the given history records (one per epoch) of a run."""
        rows = []
        now = time.time()
        for rec in records:
            epoch = int(rec["epoch"])
            rows.append((run_id, epoch, *(_real(rec.get(k)) for k in EPOCH_COLUMNS),
                         _json(rec), now))
        if not rows:
            return
        cols = ", ".join(EPOCH_COLUMNS)
        updates = ", ".join(f"{k} = excluded.{k}" for k in (*EPOCH_COLUMNS, "metrics",
                                                              "written_at"))
        with self.transaction() as c:
            c.executemany(
                f"INSERT INTO epochs (run_id, epoch, {cols}, metrics, written_at) "
                f"VALUES (?, ?, {', '.join('?' * len(EPOCH_COLUMNS))}, ?, ?) "
                f"ON CONFLICT (run_id, epoch) DO UPDATE SET {updates}", rows)
            self._sync_epochs_done(c, run_id)

    def truncate_epochs(self, run_id: str, keep_upto: int) -> None:
        """Delete a run's epochs after ``keep_upto`` (0: all) — used when a run restarts."""
        with self.transaction() as c:
            c.execute("DELETE FROM epochs WHERE run_id = ? AND epoch > ?", (run_id, keep_upto))
            if keep_upto == 0:
                c.execute("DELETE FROM stats WHERE run_id = ?", (run_id,))
            self._sync_epochs_done(c, run_id)

    def reset_run(self, run_id: str) -> None:
        """Forget a run's results (epochs, statistics, outcome, checkpoints) so that it runs
        again from scratch; its identity (label, seed, config) stays. For ``--rerun``."""
        with self.transaction() as c:
            c.execute("DELETE FROM epochs WHERE run_id = ?", (run_id,))
            c.execute("DELETE FROM stats WHERE run_id = ?", (run_id,))
            c.execute(
                "UPDATE runs SET status = 'queued', error = NULL, attempts = 0, epochs_done = 0, "
                "test_error = NULL, test_loss = NULL, best_epoch = NULL, diverged = NULL, "
                "seconds = NULL, result = NULL, cost = NULL, versions = NULL, git_commit = NULL, "
                "host = NULL, pid = NULL, worker = NULL, started_at = NULL, finished_at = NULL, "
                "updated_at = ? WHERE id = ?", (time.time(), run_id))
        shutil.rmtree(self.run_dir(run_id), ignore_errors=True)

    @staticmethod
    def _sync_epochs_done(c: sqlite3.Connection, run_id: str) -> None:
        c.execute("UPDATE runs SET epochs_done = (SELECT COALESCE(MAX(epoch), 0) FROM epochs "
                  "WHERE run_id = ?), updated_at = ? WHERE id = ?", (run_id, time.time(), run_id))

    # -- completion -------------------------------------------------------------------------

    def finish(self, run_id: str, outcome: Mapping[str, Any]) -> None:
        """Record a run's outcome (see ``quantsim.study.worker.execute``) in one transaction:
        status, summary, every history record, statistics and cost."""
        status = outcome["status"]
        result = outcome.get("result") or {}
        history = result.get("history") or []
        stats = outcome.get("stats") or []
        now = time.time()
        summary = {k: v for k, v in result.items() if k not in ("history", "stats", "cost")}
        cost = result.get("cost")
        with self.transaction() as c:
            if history:
                cols = ", ".join(EPOCH_COLUMNS)
                updates = ", ".join(f"{k} = excluded.{k}" for k in (*EPOCH_COLUMNS, "metrics"))
                c.executemany(
                    f"INSERT INTO epochs (run_id, epoch, {cols}, metrics, written_at) "
                    f"VALUES (?, ?, {', '.join('?' * len(EPOCH_COLUMNS))}, ?, ?) "
                    f"ON CONFLICT (run_id, epoch) DO UPDATE SET {updates}",
                    [(run_id, int(r["epoch"]), *(_real(r.get(k)) for k in EPOCH_COLUMNS),
                      _json(r), now) for r in history])
            if stats:
                c.execute("DELETE FROM stats WHERE run_id = ?", (run_id,))
                c.executemany(
                    "INSERT INTO stats (run_id, epoch, layer, role, statistic, value) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    [(run_id, None if s.get("epoch") is None else int(s["epoch"]),
                      s.get("layer"), s.get("role"), str(s["statistic"]),
                      None if s.get("value") is None else float(s["value"])) for s in stats])
            self._sync_epochs_done(c, run_id)
            c.execute(
                "UPDATE runs SET status = ?, error = ?, test_error = ?, test_loss = ?, "
                "best_epoch = ?, diverged = ?, seconds = ?, result = ?, cost = ?, "
                "finished_at = ?, updated_at = ? WHERE id = ?",
                (status, outcome.get("error"), _real(result.get("test_error")),
                 _real(result.get("test_loss")), result.get("best_epoch"),
                 None if "diverged" not in result else int(bool(result["diverged"])),
                 _real(result.get("seconds")), _json(summary) if result else None,
                 None if cost is None else _json(cost), now, now, run_id))


# -- reading --------------------------------------------------------------------------------------


def _open(store: str | Path | Store) -> tuple[Store, bool]:
    if isinstance(store, Store):
        return store, False
    return Store(store, create=False), True


def _flatten_config(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in config.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and v and k != "precision":
            out.update(_flatten_config(v, f"{key}."))
        elif isinstance(v, (Mapping, list)):
            out[key] = json.dumps(v, sort_keys=True)
        else:
            out[key] = v
    return out


def load_results(store: str | Path | Store, study: str | None = None) -> Any:
    """One row per run: id, study, label, seed, status, test_error, test_loss, best_epoch,
    epochs, epochs_done, diverged, seconds, attempts, error, git_commit, the flattened config
    (``config.optimizer.lr``, ...) and scalar cost entries (``cost.<key>``)."""
    import pandas as pd

    st, close = _open(store)
    try:
        rows = st.runs(study)
    finally:
        if close:
            st.close()
    records = []
    for r in rows:
        rec = {k: r[k] for k in ("id", "study", "label", "seed", "status", "test_error",
                                 "test_loss", "best_epoch", "epochs", "epochs_done", "diverged",
                                 "seconds", "attempts", "error", "variant", "git_commit",
                                 "config_hash")}
        rec["diverged"] = None if r["diverged"] is None else bool(r["diverged"])
        for k, v in _flatten_config(json.loads(r["config"])).items():
            rec[f"config.{k}"] = v
        if r["cost"]:
            for k, v in json.loads(r["cost"]).items():
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    rec[f"cost.{k}"] = v
        records.append(rec)
    cols = ["id", "study", "label", "seed", "status", "test_error", "test_loss", "best_epoch",
            "epochs", "epochs_done", "diverged", "seconds", "attempts", "error", "variant",
            "git_commit", "config_hash"]
    return pd.DataFrame.from_records(records, columns=None if records else cols)


def _select(store: str | Path | Store, sql: str, order: str, study: str | None) -> list:
    """Rows of `sql` (joined with runs as `r`), restricted to `study` when given."""
    params: list[Any] = []
    if study is not None:
        sql += " WHERE r.study = ?"
        params.append(study)
    st, close = _open(store)
    try:
        return st.query(f"{sql} ORDER BY {order}", params)
    finally:
        if close:
            st.close()


def load_history(store: str | Path | Store, study: str | None = None) -> Any:
    """One row per (run, epoch): run_id, label, seed, epoch and every metric recorded."""
    import pandas as pd

    rows = _select(store, "SELECT e.run_id, r.study, r.label, r.seed, e.metrics FROM epochs e "
                   "JOIN runs r ON r.id = e.run_id", "r.study, r.position, e.epoch", study)
    records = []
    for r in rows:
        rec = {"run_id": r["run_id"], "study": r["study"], "label": r["label"],
               "seed": r["seed"]}
        rec.update(json.loads(r["metrics"]))
        records.append(rec)
    return pd.DataFrame.from_records(
        records, columns=None if records else ["run_id", "study", "label", "seed", "epoch"])


def load_stats(store: str | Path | Store, study: str | None = None) -> Any:
    """The tidy statistics of every run: run_id, label, seed, epoch, layer, role, statistic,
    value."""
    import pandas as pd

    rows = _select(store, "SELECT s.run_id, r.label, r.seed, s.epoch, s.layer, s.role, "
                   "s.statistic, s.value FROM stats s JOIN runs r ON r.id = s.run_id",
                   "r.position, s.rowid", study)
    cols = ["run_id", "label", "seed", "epoch", "layer", "role", "statistic", "value"]
    return pd.DataFrame([tuple(r) for r in rows], columns=cols)


def export(store: str | Path | Store, out: str | Path, *, what: str = "results",
           fmt: str | None = None) -> Path:
    """Write ``load_results`` / ``load_history`` / ``load_stats`` to CSV or Parquet (by the
    suffix of ``out`` unless ``fmt`` is given). Parquet needs pyarrow."""
    loaders = {"results": load_results, "history": load_history, "stats": load_stats}
    if what not in loaders:
        raise StudyError(f"export what={what!r}: choose one of {', '.join(loaders)}")
    out = Path(out)
    fmt = (fmt or out.suffix.lstrip(".") or "csv").lower()
    if fmt not in ("csv", "parquet"):
        raise StudyError(f"export format {fmt!r}: use .csv or .parquet")
    df = loaders[what](store)
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise StudyError("Parquet export needs pyarrow: pip install pyarrow (or export "
                             "to .csv)") from None
        df.to_parquet(out, index=False)
    else:
        df.to_csv(out, index=False)
    return out


def store_lock_path(store_path: str | Path) -> Path:
    p = Path(store_path)
    return p.with_name(p.name + ".lock")


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
