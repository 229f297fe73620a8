"""The local executor and the CLI: isolation of failures, thread splitting, Ctrl-C, kill -9
and resume, and the smoke study end to end."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time

import pytest

from quantsim.study import load_results, parse_study, run_study
from quantsim.study.executors import cpu_count
from tests.study.conftest import PY, REPO, TOY, cli

FAKE = "tests.study.fake_runner"


def test_failures_are_isolated_and_threads_split(tmp_path, write):
    path = write(TOY + """
[[variants]]
label = "ok"
[[variants]]
label = "fail"
mode = "fail"
[[variants]]
label = "diverge"
mode = "diverge"
""")
    store = tmp_path / "s.sqlite"
    summary = run_study(path, store, workers=2, runner=FAKE, progress=None, poll=0.1)
    assert summary.counts == {"done": 2, "failed": 2, "diverged": 2}
    assert not summary.ok and not summary.interrupted
    df = load_results(store)
    failed = df[df["status"] == "failed"]
    assert all("fails on purpose" in e for e in failed["error"])
    ok = df[df["label"] == "ok"]
    assert list(ok["epochs_done"]) == [3, 3] and ok["test_error"].notna().all()
    assert list(df[df["label"] == "diverge"]["epochs_done"]) == [1, 1]
    # BLAS / numba threads: workers x threads <= cores, set before numpy / numba import
    con = sqlite3.connect(store)
    env = json.loads(con.execute("SELECT result FROM runs WHERE status = 'done'").fetchone()[0]
                     )["env"]
    threads = max(1, cpu_count() // 2)
    assert env == {"OMP_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": str(threads),
                   "NUMBA_NUM_THREADS": str(threads), "numba": threads,
                   "OPENBLAS_THREAD_TIMEOUT": os.environ["OPENBLAS_THREAD_TIMEOUT"],
                   "OMP_WAIT_POLICY": os.environ["OMP_WAIT_POLICY"]}
    # a second run skips final runs; failed ones only with retry_failed
    again = run_study(path, store, workers=2, runner=FAKE, progress=None, poll=0.1)
    assert again.skipped == 6
    again = run_study(path, store, workers=2, runner=FAKE, progress=None, poll=0.1,
                      retry_failed=True)
    assert again.skipped == 4
    assert load_results(store)["attempts"].tolist() == [1, 1, 2, 2, 1, 1]


def _wait_for(store, sql, timeout=120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            con = sqlite3.connect(store, timeout=10)
            row = con.execute(sql).fetchone()
            con.close()
            if row and row[0]:
                return row[0]
        except sqlite3.OperationalError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {sql}")


def _default_sigint() -> None:
    # A background job of a non-interactive shell (`make test &`, CI runners) inherits SIGINT
    # ignored, and Python then installs no Ctrl-C handler: restore what a terminal gives.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _driver(*args, **kw):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.Popen([PY, "-m", "quantsim.cli", "study", "run", *args], cwd=REPO,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, preexec_fn=_default_sigint, **kw)


def _gone(pid, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_ctrl_c_keeps_epochs_and_resumes(tmp_path, write):
    # 20 epochs x 0.3 s: the run is still going when a loaded machine notices epoch 2
    path = write(TOY.replace("epochs = 3", "epochs = 20\nsleep = 0.3"))
    store = tmp_path / "s.sqlite"
    proc = _driver(str(path), "--store", str(store), "--workers", "1", "--runner", FAKE)
    _wait_for(store, "SELECT MAX(epochs_done) FROM runs WHERE epochs_done >= 2")
    os.killpg(proc.pid, signal.SIGINT)  # as a terminal's Ctrl-C: driver and workers
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Run the same command again to resume" in err
    con = sqlite3.connect(store)
    rows = con.execute("SELECT status, epochs_done FROM runs ORDER BY position").fetchall()
    assert rows[0][0] == "interrupted" and rows[0][1] >= 2
    assert rows[1] == ("queued", 0)
    kept = rows[0][1]
    proc = _driver(str(path), "--store", str(store), "--runner", FAKE)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    rows = con.execute("SELECT status, epochs_done, attempts FROM runs ORDER BY position"
                       ).fetchall()
    assert rows == [("done", 20, 2), ("done", 20, 1)]
    assert "(1 to resume)" in err and kept >= 2
    n = con.execute("SELECT COUNT(*), COUNT(DISTINCT run_id || '/' || epoch) FROM epochs"
                    ).fetchone()
    assert n == (40, 40)


KILL = """
name = "kill"
seeds = [0]
[base]
network = "mlp"
dataset = "digits"
epochs = 6
batch_size = 16
network_options = { hidden = [64] }
optimizer = { name = "sgd", lr = 0.05, momentum = 0.9 }
[[variants]]
label = "fp32"
[[variants]]
label = "fp8"
precision = "default=float32,activations=fp8_e4m3@stochastic,errors=bfloat16"
"""


def test_sigkill_loses_nothing_duplicates_nothing(tmp_path, write):
    from quantsim.runner import RunConfig, run

    path = write(KILL)
    store = tmp_path / "k.sqlite"
    proc = _driver(str(path), "--store", str(store), "--workers", "1")
    # kill -9 the driver in the middle of the first run (its worker dies with it)
    _wait_for(store, "SELECT 1 FROM runs WHERE epochs_done >= 2 AND status = 'running'")
    worker_pid = _wait_for(store, "SELECT pid FROM runs WHERE status = 'running'")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    assert _gone(worker_pid), "the worker outlived the driver"
    con = sqlite3.connect(store)
    before = dict(con.execute("SELECT run_id, COUNT(*) FROM epochs GROUP BY run_id"))
    assert max(before.values()) >= 2
    res = cli("study", "run", str(path), "--store", str(store), check=True)
    assert "to resume" in res.stderr
    st = parse_study(KILL, path)
    for r in st.runs:
        ref = run(RunConfig.from_dict(r.config), progress=False)
        got = con.execute("SELECT metrics FROM epochs WHERE run_id = ? ORDER BY epoch",
                          (r.id,)).fetchall()
        hist = [json.loads(m) for (m,) in got]
        runs = con.execute("SELECT label, status, epochs_done, attempts, notes FROM runs"
                           ).fetchall()
        # nothing lost, nothing duplicated
        assert [h["epoch"] for h in hist] == list(range(1, 7)), (r.label, before, runs,
                                                                 res.stderr)
        for h, e in zip(hist, ref.history, strict=True):
            for k in ("train_loss", "val_error", "test_error"):
                assert h[k] == e[k], (r.label, h["epoch"], k)
        row = con.execute("SELECT status, test_error, best_epoch, notes FROM runs WHERE id = ?",
                          (r.id,)).fetchone()
        assert row[:3] == ("done", ref.test_error, ref.best_epoch)
        assert row[3] is None  # resumed from its checkpoint, not restarted
        assert before.get(r.id, 0) <= 6
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_smoke_study_end_to_end(tmp_path):
    store = tmp_path / "smoke.sqlite"
    t0 = time.monotonic()
    res = cli("study", "run", "studies/smoke.toml", "--store", str(store), "--workers", "2",
              check=True)
    assert time.monotonic() - t0 < 120  # < 1 min on an idle laptop; CI machines are shared
    assert "finished: 4 done" in res.stderr
    st = json.loads(cli("study", "status", "studies/smoke.toml", "--store", str(store),
                        "--json", check=True).stdout)
    assert len(st["runs"]) == 4
    for r in st["runs"]:
        assert set(r) >= {"label", "seed", "status", "test_error", "epochs_done"}
        assert r["status"] == "done" and r["epochs_done"] == 3 and 0 <= r["test_error"] < 0.5
    text = cli("study", "status", "studies/smoke.toml", "--store", str(store), check=True).stdout
    assert "4 runs: 4 done" in text
    again = cli("study", "run", "studies/smoke.toml", "--store", str(store), check=True)
    assert "0 runs to do" in again.stderr
    out = tmp_path / "r.csv"
    cli("study", "export", "studies/smoke.toml", "--store", str(store), "--out", str(out),
        check=True)
    assert len(out.read_text().splitlines()) == 5


def test_cli_list_and_errors(tmp_path, write):
    res = cli("study", "list", check=True)
    assert "smoke" in res.stdout and "4 runs" in res.stdout
    bad = write('name = "x"\n[base]\nnetwork = "mlp\n', "bad.toml")
    res = cli("study", "run", str(bad))
    assert res.returncode == 2 and "TOML syntax error" in res.stderr and "line 3" in res.stderr
    res = cli("study", "list", "--dir", str(tmp_path))
    assert "INVALID" in res.stdout


def test_rerun_replaces_only_the_matching_runs(tmp_path):
    store = tmp_path / "smoke.sqlite"
    cli("study", "run", "studies/smoke.toml", "--store", str(store), check=True)
    before = {r["id"]: r for r in json.loads(cli(
        "study", "status", "studies/smoke.toml", "--store", str(store), "--json",
        check=True).stdout)["runs"]}
    again = cli("study", "run", "studies/smoke.toml", "--store", str(store), "--rerun", "fp8",
                check=True)
    assert "2 runs to do (0 to resume), 2 already finished" in again.stderr
    after = json.loads(cli("study", "status", "studies/smoke.toml", "--store", str(store),
                           "--json", check=True).stdout)["runs"]
    assert all(r["status"] == "done" and r["epochs_done"] == 3 for r in after)
    for r in after:  # the same seed and config: the same result; fp32 runs were not touched
        assert r["test_error"] == before[r["id"]]["test_error"]
    bad = cli("study", "run", "studies/smoke.toml", "--store", str(store), "--rerun", "nope*")
    assert bad.returncode == 2 and "matches no run label" in bad.stderr and "fp8" in bad.stderr


@pytest.mark.parametrize("executor", ["nope"])
def test_bad_executor(tmp_path, write, executor):
    from quantsim.errors import StudyError

    with pytest.raises(StudyError, match="executor"):
        run_study(write(TOY), tmp_path / "s.sqlite", executor=executor, runner=FAKE)


def test_unavailable_device_fails_before_any_run(tmp_path, write):
    from quantsim import backend
    from quantsim.errors import StudyError

    if backend.cuda_available():
        pytest.skip("this machine has a usable CUDA GPU")
    path = write(TOY + """
[[variants]]
label = "gpu"
device = "cuda"
""")
    store = tmp_path / "s.sqlite"
    with pytest.raises(StudyError, match=r"2 run\(s\) ask for device 'cuda' .*nothing was run"):
        run_study(path, store, workers=1, runner=FAKE, progress=None, poll=0.1)
    df = load_results(store)
    assert set(df["status"]) == {"queued"} and (df["epochs_done"] == 0).all()


def test_worker_environment_carries_the_thread_wait_settings(monkeypatch):
    """Workers whose interpreter loads numpy before quantsim (Ray's) still get quantsim's
    OpenBLAS / OpenMP wait settings; values the user chose are passed on unchanged."""
    from quantsim.study import _child

    monkeypatch.delenv("OPENBLAS_THREAD_TIMEOUT", raising=False)
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    env = _child.thread_env(3)
    assert env["OPENBLAS_NUM_THREADS"] == env["NUMBA_NUM_THREADS"] == "3"
    assert env["OPENBLAS_THREAD_TIMEOUT"] == "4" and env["OMP_WAIT_POLICY"] == "ACTIVE"
