"""The `quantsim train` command."""

from __future__ import annotations

import importlib.util
import json

import pytest

from quantsim.cli import main

SMALL = ["--limit", "300", "--batch-size", "20", "-o", "hidden=[32]", "--epochs", "1",
         "--quiet"]


def last_json(capsys):
    out = capsys.readouterr().out.strip().splitlines()
    return json.loads(out[-1]), out


def test_train_mlp_digits_json(capsys):
    assert main(["train", "mlp", "--data", "digits", "--epochs", "2", "--json"]) == 0
    doc, lines = last_json(capsys)
    for key in ("network", "dataset", "precision", "epochs", "test_error", "test_loss",
                "best_epoch", "diverged", "seconds"):
        assert key in doc
    assert doc["network"] == "mlp" and doc["dataset"] == "digits" and doc["epochs"] == 2
    assert doc["diverged"] is False and doc["test_error"] < 0.15
    assert "test error" in lines[0]


def test_progress_goes_to_stderr(capsys):
    assert main(["train", "mlp", "--data", "digits", *SMALL[:-1]]) == 0
    captured = capsys.readouterr()
    assert "epoch   1/1" in captured.err and "ex/s" in captured.err
    assert "epoch   1/1" not in captured.out and "test error" in captured.out


def test_quantized_precision(capsys):
    assert main(["train", "mlp", "--data", "digits", *SMALL, "--json", "--precision",
                 "default=float32,activations=fp8_e4m3@stochastic,updates=fixed<4,12>"]) == 0
    doc, _ = last_json(capsys)
    assert doc["diverged"] is False and "fp8_e4m3@stochastic" in doc["precision"]


def test_divergence_is_reported(capsys):
    assert main(["train", "mlp", "--data", "digits", *SMALL, "--lr", "1e30", "--json"]) == 0
    doc, lines = last_json(capsys)
    assert doc["diverged"] is True and doc["test_error"] is None
    assert "DIVERGED" in lines[0]


@pytest.mark.parametrize("argv, match", [
    (["train", "nope", "--data", "digits"], "unknown network 'nope'"),
    (["train", "mlp", "--data", "imagenet"], "unknown data set 'imagenet'"),
    (["train", "mlp", "--data", "digits", "--precision", "activations=float<e4m3"],
     "precision"),
    (["train", "mlp", "--data", "digits", "-o", "widht=3"], "no option 'widht'"),
    (["train", "mlp", "--data", "digits", "--resume"], "--resume needs --checkpoint-dir"),
])
def test_errors_are_one_line_exit_2(capsys, argv, match):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and match in err and err.startswith("quantsim train: error")


@pytest.mark.skipif(importlib.util.find_spec("quantsim.stats") is None,
                    reason="quantsim.stats is not in this tree")
def test_stats_csv(capsys, tmp_path):
    import pandas as pd

    path = tmp_path / "s.csv"
    assert main(["train", "mlp", "--data", "digits", *SMALL, "--precision",
                 "activations=fixed<4,8>", "--stats", str(path), "--json"]) == 0
    doc, _ = last_json(capsys)
    df = pd.read_csv(path)
    assert {"run", "epoch", "layer", "role", "statistic", "value"} <= set(df.columns)
    assert doc["stats_file"] == str(path)


@pytest.mark.skipif(importlib.util.find_spec("quantsim.hardware") is None,
                    reason="quantsim.hardware is not in this tree")
def test_cost_flag(capsys):
    assert main(["train", "mlp", "--data", "digits", *SMALL, "--cost"]) == 0
    assert "float32" in capsys.readouterr().out


def test_lr_decay_sets_an_exponential_schedule(capsys):
    assert main(["train", "mlp", "--data", "digits", *SMALL, "--lr-decay", "0.5", "--lr",
                 "0.2", "--json"]) == 0
    doc, _ = last_json(capsys)
    assert doc["config"]["schedule"] == {"name": "exponential", "gamma": 0.5}
    assert doc["config"]["optimizer"]["lr"] == 0.2 and doc["history"][0]["lr"] == 0.2


def test_device_cuda_without_cupy_is_a_clear_error(capsys):
    """No CuPy here: `--device cuda` stops before loading data, naming what is missing and how
    to install it; never a silent CPU run."""
    from quantsim import backend

    status = backend.cuda_status()
    if status.missing != "cupy":
        pytest.skip(f"CuPy is importable here ({status.describe()})")
    assert main(["train", "mlp", "--data", "digits", *SMALL, "--device", "cuda"]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert err.startswith("quantsim train: error: CUDA was requested but CuPy cannot be "
                          "imported")
    assert "pip install 'quantsim[cuda]'" in err and len(err.splitlines()) == 1
    assert captured.out == ""
