"""quantsim.runner: RunConfig validation, hashing, and small real runs."""

from __future__ import annotations

import importlib.util
import io
import json
import math

import pytest

from quantsim.errors import DeviceError, QuantsimError
from quantsim.runner import ConfigError, RunConfig, run

SMALL = {"network": "mlp", "dataset": "digits", "epochs": 1, "limit": 300, "batch_size": 20,
         "network_options": {"hidden": [32]}}


def has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


# -- validation -----------------------------------------------------------------------------


@pytest.mark.parametrize("bad, match", [
    ({"epoch": 3}, r"unknown run config key 'epoch'; did you mean 'epochs'"),
    ({"epochs": "5"}, r"epochs: expected a positive integer"),
    ({"epochs": 0}, r"epochs: expected a positive integer"),
    ({"batch_size": 2.5}, r"batch_size: expected a positive integer"),
    ({"network": "mlpp"}, r"network: unknown network 'mlpp'; available: .*lenet5"),
    ({"dataset": "imagenet"}, r"dataset: unknown data set 'imagenet'; known: .*fashion-mnist"),
    ({"precision": "activations=float<e9m99>"}, r"precision: "),
    ({"precision": "activationz=fp8_e4m3"}, r"precision: .*activationz"),
    ({"optimizer": {"name": "sgd", "momentun": 0.9}}, r"optimizer \(sgd optimizer\) key "
                                                       r"'momentun'; did you mean 'momentum'"),
    ({"optimizer": {"name": "rmsprop"}}, r"optimizer.name: unknown optimizer 'rmsprop'"),
    ({"optimizer": {"lr": -1}}, r"optimizer.lr: must be > 0"),
    ({"schedule": {"name": "cosine"}}, r"schedule.name: unknown schedule 'cosine'"),
    ({"schedule": {"name": "step", "gamma": 0.5}}, r"schedule: the step schedule needs 'every'"),
    ({"schedule": {"name": "exponential", "gamma": 0.9, "evry": 2}}, r"key 'evry'"),
    ({"device": "tpu"}, r"device: expected 'cpu' or 'cuda'"),
    ({"network_options": {"hiden": [3]}}, r"network_options: .*no option 'hiden'"),
    ({"seed": -1}, r"seed: expected an integer >= 0"),
    ({"validation": 1.5}, r"validation: "),
    ({"stats": "yes"}, r"stats: expected true or false"),
    ({"stats_every": 0}, r"stats_every: expected a positive integer"),
])
def test_from_dict_errors_name_the_key(bad, match):
    with pytest.raises(ConfigError, match=match):
        RunConfig.from_dict({"network": "mlp", "dataset": "digits", **bad})


def test_config_error_is_a_quantsim_error_and_network_is_required():
    with pytest.raises(QuantsimError, match="needs 'network'"):
        RunConfig.from_dict({"dataset": "digits"})
    with pytest.raises(ConfigError, match="must be a mapping"):
        RunConfig.from_dict(["mlp"])


def test_to_dict_round_trips_and_hash_is_stable():
    d = {"network": "maxout-mlp", "dataset": "fashion-mnist", "epochs": 3,
         "precision": {"default": "float32", "activations": "fixed<4,12>@stochastic"},
         "optimizer": {"lr": 0.2}, "schedule": {"name": "step", "gamma": 0.5, "every": 2},
         "network_options": {"units": 8}}
    cfg = RunConfig.from_dict(d)
    again = RunConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg and again.hash() == cfg.hash()
    assert RunConfig.from_dict(dict(reversed(list(d.items())))).hash() == cfg.hash()
    assert len(cfg.hash()) == 16 and int(cfg.hash(), 16) >= 0
    assert RunConfig.from_dict({**d, "seed": 1}).hash() != cfg.hash()
    # a spelled-out default hashes like the default itself
    a = RunConfig.from_dict({"network": "mlp", "dataset": "digits"})
    b = RunConfig.from_dict({"network": "mlp", "dataset": "digits", "precision": "float32",
                             "epochs": a.resolved().epochs})
    assert a.hash() == b.hash()


def test_resolved_merges_over_workload_defaults():
    cfg = RunConfig.from_dict({"network": "maxout-mlp", "dataset": "digits",
                               "optimizer": {"lr": 0.01}})
    o = cfg.resolved().optimizer
    assert o["name"] == "sgd" and o["lr"] == 0.01 and o["max_col_norm"] == pytest.approx(1.9365)
    assert o["momentum"]["name"] == "linear"  # the momentum ramp stays
    adam = RunConfig.from_dict({"network": "maxout-mlp", "dataset": "digits",
                                "optimizer": {"name": "adam"}}).resolved().optimizer
    assert adam == {"name": "adam", "lr": 1e-3, "max_col_norm": pytest.approx(1.9365)}
    off = RunConfig.from_dict({"network": "mlp", "dataset": "digits", "schedule": "constant"})
    assert off.resolved().schedule == {"name": "constant"}


# -- runs -----------------------------------------------------------------------------------


def test_small_run_result():
    out = io.StringIO()
    res = run(RunConfig.from_dict({**SMALL, "epochs": 2}), progress=out)
    assert not res.diverged and res.epochs == 2 and len(res.history) == 2
    assert 0 <= res.test_error < 0.5 and res.test_loss > 0 and res.best_epoch in (1, 2)
    assert res.metric == "error" and res.test_metric == res.test_error
    assert res.train_examples == 300 and res.stats is None and res.cost is None
    d = json.loads(json.dumps(res.to_dict(), allow_nan=False))
    for key in ("network", "dataset", "precision", "epochs", "test_error", "test_loss",
                "best_epoch", "diverged", "seconds", "history"):
        assert key in d
    assert {"epoch", "train_loss", "val_error", "val_loss", "test_error", "test_loss", "lr",
            "seconds"} <= set(d["history"][0])
    text = out.getvalue()
    assert "epoch   1/2" in text and "ex/s" in text and "val_err" in text


def test_run_is_reproducible():
    a = run(SMALL, progress=False)
    b = run(SMALL, progress=False)
    assert a.test_loss == b.test_loss and a.history[0]["train_loss"] == b.history[0]["train_loss"]


def test_quantized_precision_runs():
    res = run({**SMALL, "precision": "default=float32,weights=bfloat16,"
               "activations=fixed<4,8>@stochastic,errors=float16,updates=fixed<4,12>@stochastic"},
              progress=False)
    assert not res.diverged and math.isfinite(res.test_loss)
    assert "fixed<4,8>@stochastic" in res.precision


def test_unmatched_layer_override_is_an_error():
    with pytest.raises(ConfigError, match="precision: .*'conv\\*' matches no layer"):
        run({**SMALL, "precision": "layer:conv*.weights=bf16"}, progress=False)


def test_divergence_is_reported_not_raised():
    res = run({**SMALL, "optimizer": {"lr": 1e30}, "epochs": 2}, progress=False)
    assert res.diverged and res.diverged_at is not None
    d = json.loads(json.dumps(res.to_dict(), allow_nan=False))
    assert d["diverged"] is True


def test_autoencoder_scores_reconstruction_mse():
    res = run({"network": "autoencoder", "dataset": "digits", "epochs": 1, "limit": 200,
               "network_options": {"hidden": 16}}, progress=False)
    assert res.metric == "mse" and res.test_error is None
    assert res.test_metric == res.test_loss and 0 < res.test_loss < 0.5


def test_char_lstm_reports_bits_per_character(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("the quick brown fox jumps over the lazy dog. " * 40, encoding="utf-8")
    res = run({"network": "char-lstm", "dataset": f"text:{path}", "epochs": 1,
               "network_options": {"hidden": 16, "embed": 8, "seq_len": 20}}, progress=False)
    assert res.metric == "bpc" and res.test_metric == pytest.approx(res.test_loss / math.log(2))
    assert "test_bpc" in res.history[0]


def test_text_and_image_workloads_do_not_mix(tmp_path):
    with pytest.raises(ConfigError, match="text data set"):
        run({"network": "char-lstm", "dataset": "digits"}, progress=False)
    path = tmp_path / "t.txt"
    path.write_text("abc" * 100, encoding="utf-8")
    with pytest.raises(ConfigError, match="is text"):
        run({"network": "mlp", "dataset": f"text:{path}"}, progress=False)


def test_checkpoint_resume_matches_uninterrupted(tmp_path):
    full = run({**SMALL, "epochs": 2}, progress=False)
    run({**SMALL, "epochs": 1}, checkpoint_dir=tmp_path, progress=False)
    resumed = run({**SMALL, "epochs": 2}, checkpoint_dir=tmp_path, resume=True, progress=False)
    assert resumed.test_loss == full.test_loss and resumed.epochs == 2
    with pytest.raises(ConfigError, match="another run config"):
        run({**SMALL, "epochs": 2, "seed": 3}, checkpoint_dir=tmp_path, resume=True,
            progress=False)


def test_cuda_device_goes_through_the_backend():
    if has("quantsim.backend"):
        from quantsim.backend import cuda_status

        if cuda_status().available:
            pytest.skip("a CUDA device is available here")
    with pytest.raises(DeviceError):
        run({**SMALL, "device": "cuda"}, progress=False)


def test_device_names():
    for name in ("cpu", "cuda", "cuda:1"):
        assert RunConfig.from_dict({**SMALL, "device": name}).device == name
    for name in ("cuda:", "cuda:x", "gpu", 1):
        with pytest.raises(ConfigError, match="device: expected 'cpu' or 'cuda'"):
            RunConfig.from_dict({**SMALL, "device": name})


def test_checkpoints_resume_on_either_device():
    """Checkpoints hold host arrays: the resume key ignores the device, and CPU keys are those
    written before the device was taken into account (existing checkpoints still resume)."""
    import hashlib

    from quantsim.runner import _resume_key

    cpu, cuda = RunConfig.from_dict(SMALL), RunConfig.from_dict({**SMALL, "device": "cuda"})
    assert _resume_key(cpu) == _resume_key(cuda)
    d = cpu.resolved().to_dict()
    for k in ("epochs", "patience", "stats", "stats_every", "cost"):
        d.pop(k)
    text = json.dumps(d, sort_keys=True, separators=(",", ":"), default=str)
    assert _resume_key(cpu) == hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
    assert cpu.hash() != cuda.hash()  # the device is still part of the run's identity


@pytest.mark.skipif(not has("quantsim.stats"), reason="quantsim.stats is not in this tree")
def test_stats_frame_is_tidy():
    res = run({**SMALL, "precision": "activations=fixed<4,8>", "stats": True},
              progress=False)
    df = res.stats
    assert {"run", "epoch", "layer", "role", "statistic", "value"} <= set(df.columns)
    assert set(df["epoch"]) == {1} and (df["run"] == res.config_hash).all()
    assert {"fc1", "out"} <= set(df["layer"]) and "zero_fraction" in set(df["statistic"])


@pytest.mark.skipif(not has("quantsim.hardware"), reason="quantsim.hardware is not in this tree")
def test_cost_summary_is_attached():
    res = run({**SMALL, "precision": "activations=float16", "cost": True}, progress=False)
    assert res.stats is None and isinstance(res.cost, dict)
    assert res.cost["batch_size"] == 20 and "relative_to_float32" in res.cost
    json.dumps(res.to_dict())


def test_dynamic_fixed_point_mlp_trains_with_the_default_controller():
    """Regression: with a controller interval of 100 (or 10) calls the logits saturated and the
    MLP diverged; the default (1) follows the growing range."""
    from quantsim.runner import RunConfig, run

    cfg = RunConfig.from_dict({
        "network": "mlp", "dataset": "digits", "epochs": 2, "batch_size": 32,
        "optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.9},
        "precision": "default=dfxp<10>,updates=dfxp<12>,optimizer_state=dfxp<12>,"
                     "accumulator=float32",
    })
    result = run(cfg, progress=False)
    assert not result.diverged and result.test_error < 0.08
