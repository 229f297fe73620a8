"""The Ray executor on a local Ray instance (skipped when ray is not installed)."""

from __future__ import annotations

import json
import sqlite3

import pytest

ray = pytest.importorskip("ray")

from quantsim.study import load_results, run_study  # noqa: E402

STUDY = """
name = "ray2"
seeds = [0, 1]
[base]
network = "mlp"
dataset = "digits"
epochs = 2
batch_size = 32
network_options = { hidden = [16] }
[resources]
cpus = 1
"""


@pytest.mark.slow
def test_ray_two_runs(tmp_path, write):
    path = write(STUDY)
    store = tmp_path / "r.sqlite"
    summary = run_study(path, store, executor="ray", workers=2, progress=None, poll=0.2)
    assert summary.counts == {"done": 2}, summary
    df = load_results(store)
    assert list(df["epochs_done"]) == [2, 2] and df["test_error"].notna().all()
    con = sqlite3.connect(store)
    rows = con.execute("SELECT worker, versions FROM runs").fetchall()
    assert all(w.startswith("ray:") and json.loads(v)["numpy"] for w, v in rows)
    # rerun: nothing to do
    again = run_study(path, store, executor="ray", progress=None)
    assert again.skipped == 2
