"""The results store: schema, upserts, concurrent writers, exports."""

from __future__ import annotations

import multiprocessing as mp
import sqlite3

import pytest

from quantsim.errors import StudyError
from quantsim.study import Store, export, load_history, load_results, load_stats, parse_study
from tests.study.conftest import TOY

RUNNER = "tests.study.fake_runner"


def _study():
    return parse_study(TOY, "toy.toml", runner=RUNNER)


def test_register_is_idempotent_and_wal(tmp_path):
    st = _study()
    path = tmp_path / "s.sqlite"
    with Store(path) as store:
        store.register(st)
        store.register(st)
        rows = store.runs("toy")
        assert [r["status"] for r in rows] == ["queued", "queued"]
        assert store.query("PRAGMA journal_mode")[0][0] == "wal"
    df = load_results(path)
    assert list(df["label"]) == ["toy", "toy"] and list(df["seed"]) == [0, 1]
    assert "config.epochs" in df.columns


def test_upsert_never_duplicates(tmp_path):
    st = _study()
    rid = st.runs[0].id
    with Store(tmp_path / "s.sqlite") as store:
        store.register(st)
        for _ in range(3):
            store.upsert_epochs(rid, [{"epoch": 1, "train_loss": 1.0},
                                      {"epoch": 2, "train_loss": float("nan")}])
        store.upsert_epochs(rid, [{"epoch": 2, "train_loss": 0.5, "extra": "x"}])
        rows = store.query("SELECT epoch, train_loss FROM epochs ORDER BY epoch")
        assert [tuple(r) for r in rows] == [(1, 1.0), (2, 0.5)]
        assert store.run(rid)["epochs_done"] == 2
        store.truncate_epochs(rid, 1)
        assert store.run(rid)["epochs_done"] == 1
        h = load_history(store)
        assert list(h["epoch"]) == [1]


def test_finish_records_everything(tmp_path):
    st = _study()
    rid = st.runs[1].id
    path = tmp_path / "s.sqlite"
    with Store(path) as store:
        store.register(st)
        store.start(rid, pid=1, worker="w0", versions={"numpy": "x"}, git_commit="abc")
        store.finish(rid, {"status": "done", "error": None,
                           "result": {"test_error": 0.25, "best_epoch": 2, "diverged": False,
                                      "seconds": 1.0, "cost": {"energy_pj": 2.0},
                                      "history": [{"epoch": 1, "test_error": 0.5},
                                                  {"epoch": 2, "test_error": 0.25}]},
                           "stats": [{"epoch": 1, "layer": "fc0", "role": "weights",
                                      "statistic": "max_abs", "value": 3.0}]})
    df = load_results(path)
    row = df[df["id"] == rid].iloc[0]
    assert row["status"] == "done" and row["test_error"] == 0.25 and row["epochs_done"] == 2
    assert row["cost.energy_pj"] == 2.0 and row["git_commit"] == "abc"
    s = load_stats(path)
    assert list(s["statistic"]) == ["max_abs"] and s["value"].iloc[0] == 3.0
    out = export(path, tmp_path / "r.csv")
    assert out.read_text().startswith("id,")
    export(path, tmp_path / "h.csv", what="history")
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        with pytest.raises(StudyError, match="pip install pyarrow"):
            export(path, tmp_path / "r.parquet")


def test_missing_or_garbage_store(tmp_path):
    with pytest.raises(StudyError, match="no results store"):
        load_results(tmp_path / "none.sqlite")
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StudyError, match="not a usable results store"):
        Store(bad)


def _writer(path: str, rid: str, offset: int) -> None:
    store = Store(path)
    for e in range(1, 41):
        store.upsert_epochs(rid, [{"epoch": e, "train_loss": float(offset + e)}])
        store.upsert_epochs("shared", [{"epoch": e, "train_loss": float(offset)}])
    store.close()


def test_concurrent_writers(tmp_path):
    st = _study()
    path = tmp_path / "s.sqlite"
    with Store(path) as store:
        store.register(st)
        with store.transaction() as c:
            c.execute("INSERT INTO runs (id, study, label, seed, config, config_hash) "
                      "VALUES ('shared', 'toy', 'x', 9, '{}', 'h')")
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(path), r.id, 1000 * i))
             for i, r in enumerate(st.runs)]
    procs.append(ctx.Process(target=_writer, args=(str(path), "shared", 5000)))
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    con = sqlite3.connect(path)
    counts = dict(con.execute("SELECT run_id, COUNT(*) FROM epochs GROUP BY run_id"))
    assert counts == {st.runs[0].id: 40, st.runs[1].id: 40, "shared": 40}
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
