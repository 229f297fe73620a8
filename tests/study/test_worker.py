"""One run in-process with the real runner: divergence, corrupt checkpoints, resume."""

from __future__ import annotations

import json

import pytest

from quantsim.study import Store, parse_study
from quantsim.study.worker import StoreSink, execute

STUDY = """
name = "w"
[base]
network = "mlp"
dataset = "digits"
epochs = 3
batch_size = 64
network_options = { hidden = [16] }
optimizer = { name = "sgd", lr = 0.05, momentum = 0.9 }
schedule = { name = "constant" }
[[variants]]
label = "ok"
[[variants]]
label = "boom"
"optimizer.lr" = 1e12  # 1e6 leaves this small ReLU net alive, but dead
"""


@pytest.fixture
def setup(tmp_path):
    st = parse_study(STUDY, tmp_path / "w.toml")
    store = Store(tmp_path / "w.sqlite")
    store.register(st)
    yield st, store
    store.close()


def _history(store, rid):
    return [json.loads(r["metrics"]) for r in
            store.query("SELECT metrics FROM epochs WHERE run_id = ? ORDER BY epoch", (rid,))]


def test_diverging_run_is_stored_as_diverged(setup):
    st, store = setup
    boom = st.runs[1]
    out = execute(boom.to_item(), store.run_dir(boom.id), "quantsim.runner", StoreSink(store))
    assert out["status"] == "diverged"
    assert store.run(boom.id)["status"] == "diverged"
    assert store.run(boom.id)["diverged"] == 1


def test_corrupt_checkpoint_restarts_from_scratch(setup):
    st, store = setup
    run = st.runs[0]
    ref = execute(run.to_item(), store.run_dir(run.id), "quantsim.runner", StoreSink(store))
    ref_hist = _history(store, run.id)
    # a crash left a checkpoint whose arrays are garbage, and stale epochs in the store
    d = store.run_dir(run.id)
    d.mkdir(parents=True)
    (d / "checkpoint.json").write_text('{"version": 1, "arrays": "state-00002.npz", '
                                       '"state": {}}')
    (d / "state-00002.npz").write_bytes(b"garbage")
    store.set_status(run.id, "running")
    out = execute(run.to_item(), d, "quantsim.runner", StoreSink(store))
    assert out["status"] == "done"
    row = store.run(run.id)
    assert "restarted from scratch" in row["notes"]
    assert row["attempts"] == 2 and row["epochs_done"] == 3
    assert [h["test_error"] for h in _history(store, run.id)] == \
        [h["test_error"] for h in ref_hist]
    assert out["result"]["test_error"] == ref["result"]["test_error"]


def test_resume_from_checkpoint_matches_uninterrupted(setup, tmp_path):
    from quantsim.runner import RunConfig, run

    st, store = setup
    r = st.runs[0]
    full = run(RunConfig.from_dict(r.config), progress=False)
    # an interrupted attempt: 2 epochs checkpointed, only 1 stored
    cfg2 = dict(r.config, epochs=2)
    d = store.run_dir(r.id)
    part = run(RunConfig.from_dict(cfg2), checkpoint_dir=d, progress=False)
    store.upsert_epochs(r.id, part.history[:1])
    # run_config.json records the 2-epoch config: the resume goes through the runner's
    # hash check, so rewrite it as the full config would have written it
    (d / "run_config.json").unlink()
    out = execute(r.to_item(), d, "quantsim.runner", StoreSink(store))
    assert out["status"] == "done"
    hist = _history(store, r.id)
    assert [h["epoch"] for h in hist] == [1, 2, 3]
    assert [h["train_loss"] for h in hist] == [h["train_loss"] for h in full.history]
    assert store.run(r.id)["test_error"] == full.test_error
    assert not d.exists()  # a finished run's checkpoint is dropped
