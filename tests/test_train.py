"""Trainer: float32 policy == float engine, reproducibility, resume, divergence, stopping."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from quantsim import checkpoint
from quantsim.nn import Dropout, Linear, ReLU, Sequential, mse, softmax_cross_entropy
from quantsim.optim import SGD, Adam, LinearSchedule, LossScaler
from quantsim.precision import Precision, iter_points
from quantsim.train import Callback, Trainer, n_errors

QUANTIZED = "default=float32,activations=fixed<4,10>@stochastic,errors=bfloat16," \
    "gradients=dfxp<12,interval=2>," \
    "updates=fixed<4,14>,optimizer_state=float16,accumulator=float16,accumulator_chunk=4"


def make_data(n: int = 96, d: int = 6, classes: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    y = np.argmax(X @ rng.normal(size=(d, classes)), axis=1).astype(np.int64)
    return X, y


def make_net(dropout: float = 0.0, d_in: int = 6, d_out: int = 3) -> Sequential:
    return Sequential(
        Linear(d_in, 12, rng=1, name="fc1"),
        ReLU(),
        Dropout(dropout, seed=3),
        Linear(12, d_out, rng=2, name="fc2"),
    )


def strip_times(history):
    return [{k: v for k, v in rec.items() if k != "seconds"} for rec in history]


def params_of(net: Sequential) -> dict[str, np.ndarray]:
    return net.state_dict()


def assert_same_state(a: Sequential, b: Sequential) -> None:
    sa, sb = params_of(a), params_of(b)
    assert sa.keys() == sb.keys()
    for k in sa:
        np.testing.assert_array_equal(sa[k], sb[k], err_msg=k)


def classification_run(precision: str | None, *, seed: int = 0, epochs: int = 3,
                       checkpoint_dir=None, resume: bool = False, dropout: float = 0.0,
                       adam: bool = False):
    X, y = make_data()
    net = make_net(dropout)
    if precision is not None:
        net.bind(Precision.from_string(precision), seed=seed)
    if adam:
        opt = Adam(net, lr=0.01, loss_scaler=LossScaler(2.0**10, growth_interval=5))
    else:
        opt = SGD(net, lr=0.1, momentum=LinearSchedule(0.5, 0.7, epochs=2), nesterov=True)
    trainer = Trainer(net, softmax_cross_entropy, opt, batch_size=16, epochs=epochs, seed=seed,
                      checkpoint_dir=checkpoint_dir)
    result = trainer.fit((X[:64], y[:64]), val=(X[64:80], y[64:80]), test=(X[80:], y[80:]),
                         resume=resume)
    return net, result


def test_float32_policy_equals_unbound_engine():
    net_a, res_a = classification_run(None)
    net_b, res_b = classification_run("default=float32")
    assert_same_state(net_a, net_b)
    assert strip_times(res_a.history) == strip_times(res_b.history)
    assert res_a.test_error == res_b.test_error


def test_training_learns_and_reports_best_epoch():
    _, res = classification_run(None, epochs=6)
    assert not res.diverged and res.epochs == 6
    assert res.history[-1]["train_loss"] < res.history[0]["train_loss"]
    best = min(res.history, key=lambda r: r["val_error"])
    assert res.best_epoch == best["epoch"]
    assert res.test_error == best["test_error"]
    assert {"train_error", "val_loss", "test_loss", "lr", "momentum"} <= set(res.history[0])


def test_same_seed_identical_and_other_seed_differs():
    net_a, res_a = classification_run(QUANTIZED, seed=5, epochs=2, dropout=0.2)
    net_b, res_b = classification_run(QUANTIZED, seed=5, epochs=2, dropout=0.2)
    assert_same_state(net_a, net_b)
    assert strip_times(res_a.history) == strip_times(res_b.history)
    net_c, _ = classification_run(QUANTIZED, seed=6, epochs=2, dropout=0.2)
    assert not np.array_equal(net_a["fc1"].params["W"].value, net_c["fc1"].params["W"].value)


@pytest.mark.parametrize("adam", [False, True])
def test_kill_and_resume_is_bit_identical(tmp_path: Path, adam: bool):
    full_net, full = classification_run(QUANTIZED, epochs=4, dropout=0.2, adam=adam,
                                        checkpoint_dir=tmp_path / "full")
    _, first = classification_run(QUANTIZED, epochs=2, dropout=0.2, adam=adam,
                                  checkpoint_dir=tmp_path / "split")
    assert first.epochs == 2
    resumed_net, resumed = classification_run(QUANTIZED, epochs=4, dropout=0.2, adam=adam,
                                              checkpoint_dir=tmp_path / "split", resume=True)
    assert resumed.epochs == 4
    assert_same_state(full_net, resumed_net)
    assert strip_times(full.history) == strip_times(resumed.history)
    assert (full.best_epoch, full.test_error) == (resumed.best_epoch, resumed.test_error)
    full_points = dict(iter_points(full_net))
    for name, point in iter_points(resumed_net):
        assert point.calls == full_points[name].calls, name


def test_resume_without_checkpoint_starts_fresh(tmp_path: Path):
    net_a, res_a = classification_run(None, epochs=2)
    net_b, res_b = classification_run(None, epochs=2, checkpoint_dir=tmp_path, resume=True)
    assert_same_state(net_a, net_b)


def test_checkpoint_files_are_npz_and_json(tmp_path: Path):
    classification_run(QUANTIZED, epochs=2, checkpoint_dir=tmp_path)
    doc = json.loads((tmp_path / checkpoint.INDEX).read_text())
    assert doc["state"]["trainer"]["epoch"] == 2
    assert sorted(p.name for p in tmp_path.glob("*.npz")) == [doc["arrays"]]  # old one removed
    with np.load(tmp_path / doc["arrays"], allow_pickle=False) as data:
        assert len(data.files) > 0
    assert not list(tmp_path.glob("*.tmp"))


def test_checkpoint_round_trip(tmp_path: Path):
    tree = {"a": np.arange(3.0), "b": {"c": [1, 2.5, float("nan")], "d/e": np.zeros((2, 0))},
            "s": "x", "n": None}
    checkpoint.save(tmp_path, tree, tag="1")
    back = checkpoint.load(tmp_path)
    np.testing.assert_array_equal(back["a"], tree["a"])
    assert back["b"]["d/e"].shape == (2, 0) and back["s"] == "x" and back["n"] is None
    assert back["b"]["c"][:2] == [1, 2.5] and np.isnan(back["b"]["c"][2])
    assert checkpoint.load(tmp_path / "missing") is None


def test_divergence_is_reported_not_raised():
    X, y = make_data()
    net = make_net()
    trainer = Trainer(net, softmax_cross_entropy, SGD(net, lr=1e30), batch_size=16, epochs=5)
    res = trainer.fit((X, y), val=(X, y))
    assert res.diverged and res.diverged_at is not None
    assert res.epochs < 5


def test_early_stopping_with_patience():
    X, y = make_data()
    net = make_net()
    trainer = Trainer(net, softmax_cross_entropy, SGD(net, lr=0.0), batch_size=32, epochs=10,
                      patience=2)
    res = trainer.fit((X, y), val=(X, y), test=(X, y))
    assert res.stopped_early and res.epochs == 3 and res.best_epoch == 1
    assert res.test_error == res.history[0]["test_error"]


def test_autoencoder_regression_uses_loss():
    X, _ = make_data()
    net = make_net(d_out=6)
    trainer = Trainer(net, mse, SGD(net, lr=0.05, momentum=0.9), batch_size=16, epochs=3)
    res = trainer.fit((X, None), val=X, test=X)
    assert "val_error" not in res.history[0] and "train_error" not in res.history[0]
    assert res.test_error is None
    assert res.test_loss == res.history[res.best_epoch - 1]["test_loss"]
    assert res.history[-1]["train_loss"] < res.history[0]["train_loss"]


def test_callbacks_are_called():
    X, y = make_data()
    net = make_net()

    class Log(Callback):
        def __init__(self):
            self.steps, self.epochs = [], []

        def on_step_end(self, trainer, step, loss):
            self.steps.append(step)

        def on_epoch_end(self, trainer, epoch, metrics):
            self.epochs.append((epoch, metrics["epoch"]))

    log = Log()
    Trainer(net, softmax_cross_entropy, SGD(net, lr=0.1), batch_size=40, epochs=2,
            callbacks=[log]).fit((X, y))
    assert log.steps == list(range(1, 7)) and log.epochs == [(1, 1), (2, 2)]


def test_n_errors_label_conventions():
    Y = np.array([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0]])
    assert n_errors(Y, np.array([0, 1, 1])) == 1
    assert n_errors(Y, np.array([[1, 0], [0, 1], [0, 1]])) == 1
    assert n_errors(np.array([[0.5], [-0.5]]), np.array([1.0, 1.0])) == 1
    assert n_errors(np.array([[0.5], [-0.5]]), np.array([1.0, -1.0])) == 0


def test_bad_arguments_named():
    net = make_net()
    with pytest.raises(ValueError, match="batch_size"):
        Trainer(net, mse, SGD(net, lr=0.1), batch_size=0, epochs=1)
    with pytest.raises(ValueError, match="metric"):
        Trainer(net, mse, SGD(net, lr=0.1), batch_size=1, epochs=1, metric="acc")
    trainer = Trainer(net, mse, SGD(net, lr=0.1), batch_size=1, epochs=1)
    with pytest.raises(ValueError, match="checkpoint_dir"):
        trainer.fit(make_data(), resume=True)
