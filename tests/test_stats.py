"""quantsim.stats: statistics by hand, the collector in a training run, bit-identical results."""

from __future__ import annotations

import math

import numpy as np
import pytest

from quantsim.formats import QuantStats, parse
from quantsim.nn import Dropout, Linear, ReLU, Sequential, softmax_cross_entropy
from quantsim.optim import SGD
from quantsim.precision import Precision, QuantPoint, iter_points
from quantsim.stats import (
    COLUMNS,
    StatsCollector,
    derived,
    observe,
    snapshot_rows,
    stats_paused,
    zero_fractions,
)
from quantsim.train import Trainer

POLICY = ("default=float32,activations=fixed<4,10>@stochastic,errors=bfloat16,"
          "gradients=dfxp<12,interval=2>,weights=float16")


def hand_values() -> np.ndarray:
    # fixed<4,4>: quantum 1/16, saturating at 7.9375
    return np.array([0.0, -0.0, 0.01, 100.0, np.nan, np.inf, 0.5, -3.3], dtype=np.float32)


def test_every_statistic_by_hand():
    x = hand_values()
    st = QuantStats()
    point = QuantPoint("fc", "activations", parse("fixed<4,4>"))
    point.stats = st
    y = point(x)
    assert y[2] == 0.0 and y[3] == 7.9375 and y[7] == np.float32(-3.3125)
    s = dict(snapshot_rows(st))
    x3 = float(np.float32(3.3))
    finite_abs = [float(np.float32(0.01)), 100.0, 0.5, x3]
    assert s["count"] == 8
    assert s["zero_fraction"] == 2 / 8
    assert s["underflow_fraction"] == 1 / 8  # 0.01 flushed
    assert s["zero_out_fraction"] == 3 / 8  # = zero + underflow
    assert s["overflow_fraction"] == 1 / 8  # 100 saturated; inf is counted as inf
    assert s["nan_count"] == 1 and s["inf_count"] == 1
    assert s["mean_abs"] == pytest.approx(sum(finite_abs) / 6)  # over the 6 finite inputs
    assert s["max_abs"] == 100.0
    # relative error over finite, nonzero, non-overflowed inputs: 0.01 (1.0), 0.5 (0), 3.3
    rel = 1.0 + 0.0 + abs(3.3125 - x3) / x3
    assert s["mean_rel_error"] == pytest.approx(rel / 3)
    hist = {k: v for k, v in s.items() if k.startswith("log2_hist_")}
    assert hist == {"log2_hist_-7": 1, "log2_hist_6": 1, "log2_hist_-1": 1, "log2_hist_1": 1}


def test_empty_point_gives_no_rows_and_nan_ratios():
    assert snapshot_rows(QuantStats()) == []
    d = derived(np.zeros(11))
    assert d["count"] == 0 and math.isnan(d["zero_fraction"]) and math.isnan(d["mean_abs"])


def test_observe_counts_like_an_exact_quantization():
    rng = np.random.default_rng(0)
    x = rng.normal(size=70_000).astype(np.float64) * 2.0 ** rng.integers(-20, 20, 70_000)
    x = x.astype(np.float32).astype(np.float64)  # exactly representable in float32
    x[::7] = 0.0
    x[5], x[9] = np.nan, -np.inf
    a, b = QuantStats(), QuantStats()
    observe(x, a)
    parse("float32").quantize(x, stats=b)  # float32 on a float64 carrier: exact, counted
    for name in ("count", "zero_in", "zero_out", "underflow", "overflow", "nan", "inf",
                 "max_abs", "sum_rel_err"):
        assert getattr(a, name) == getattr(b, name), name
    # the kernel may sum in another (fixed) order: equal up to rounding
    assert a.sum_abs == pytest.approx(b.sum_abs, rel=1e-12)
    np.testing.assert_array_equal(a.log2_hist, b.log2_hist)
    assert a.zero_out == a.zero_in == int(np.sum(x == 0))
    c = QuantStats()
    observe(np.array([[0.0, 2.0], [-4.0, 0.0]], dtype=np.float32).T, c)  # non-contiguous
    assert (c.count, c.zero_in, c.max_abs, c.sum_abs) == (4, 2, 4.0, 6.0)


def make_data(n=96, d=6, classes=3):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, d)).astype(np.float32)
    y = np.argmax(X @ rng.normal(size=(d, classes)), axis=1).astype(np.int64)
    return X, y


def train(stats: bool, *, steps=None, dropout=0.25, epochs=3, policy=POLICY, every=1):
    X, y = make_data()
    net = Sequential(Linear(6, 12, rng=1, name="fc1"), ReLU(name="relu1"),
                     Dropout(dropout, seed=3, name="drop1"), Linear(12, 3, rng=2, name="fc2"))
    net.bind(Precision.from_string(policy), seed=5)
    cbs = [StatsCollector(net, every, steps=steps, run="r1")] if stats else []
    trainer = Trainer(net, softmax_cross_entropy, SGD(net, 0.1, momentum=0.9), batch_size=16,
                      epochs=epochs, callbacks=cbs)
    result = trainer.fit((X, y), (X[:32], y[:32]), (X[:40], y[:40]))
    return net, (cbs[0] if cbs else None), result


def test_sparse_sampling_still_counts_every_epoch():
    """With a sampling interval far above the calls per epoch, each epoch still counts the
    first call of every point (and only a few more)."""
    _, col, _ = train(True, every=10**9)
    df = col.frame()
    counts = df[(df.statistic == "count") & (df.role == "activations") & (df.layer == "fc1")]
    assert list(counts["value"]) == [16 * 12] * 3  # one batch of 16 x 12 units per epoch
    _, full, _ = train(True)
    dfull = full.frame()
    def names(d):
        return {n for n in d["statistic"] if not n.startswith("log2_hist_")}

    assert names(dfull) == names(df)


def test_stats_on_gives_the_same_weights_bit_for_bit():
    net_off, _, r_off = train(False)
    net_on, col, r_on = train(True)
    a, b = net_off.state_dict(), net_on.state_dict()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert r_off.test_error == r_on.test_error
    # ... and the dynamic fixed point radix moved the same way
    pa = {k: p.state for k, p in iter_points(net_off) if k.endswith("/gradients")}
    pb = {k: p.state for k, p in iter_points(net_on) if k.endswith("/gradients")}
    assert all(pa[k].history == pb[k].history for k in pa)
    assert col.snapshots == 3


def test_frame_layout_counts_and_dfxp_history():
    _, col, _ = train(True)
    df = col.frame()
    assert tuple(df.columns) == COLUMNS
    assert set(df["epoch"]) == {1, 2, 3} and set(df["run"]) == {"r1"}
    names = set(df["statistic"])
    for name in ("count", "zero_fraction", "underflow_fraction", "overflow_fraction",
                 "nan_count", "inf_count", "mean_abs", "max_abs", "mean_rel_error",
                 "dfxp_il", "dfxp_il_changes", "activation_sparsity", "error_sparsity",
                 "gradient_sparsity", "dropout_fraction"):
        assert name in names, name
    assert any(n.startswith("log2_hist_") for n in names)
    # training passes only: fc1's activations see 96 samples x 12 units per epoch
    q = df[(df.layer == "fc1") & (df.role == "activations") & (df.statistic == "count")]
    assert list(q["value"]) == [96 * 12] * 3
    # float32 roles are exact, and still observed (QuantPoint.observe_identity)
    pts = dict(iter_points(col.net))
    inputs = df[(df.layer == "fc1") & (df.role == "inputs") & (df.statistic == "count")]
    assert list(inputs["value"]) == [96 * 6] * 3
    # one radix state per parameter: reported as layer "fc2.W", "fc2.b"
    il = df[(df.statistic == "dfxp_il") & (df.layer == "fc2.W") & (df.role == "gradients")]
    state = pts["fc2/gradients"].state_for("W")
    assert il["value"].iloc[-1] == state.il
    assert set(df[(df.statistic == "dfxp_il") & (df.role == "gradients")]["layer"]) >= {
        "fc2.W", "fc2.b"}
    hist = col.radix_history()
    mine = hist[(hist.layer == "fc2.W") & (hist.role == "gradients")]
    assert [(c, v) for c, v in zip(mine["call"], mine["il"], strict=True)] == state.history
    changes = df[(df.statistic == "dfxp_il_changes") & (df.layer == "fc2.W")
                 & (df.role == "gradients")]["value"].sum()
    assert changes == len(state.history) - 1  # the first entry is the calibration


def test_sparsity_relu_and_dropout():
    _, col, _ = train(True, dropout=0.5)
    sp = col.sparsity()
    relu = sp[sp.layer == "relu1"]
    assert (relu["activation_sparsity"] > 0.2).all() and (relu["activation_sparsity"] < 0.8).all()
    drop = sp[sp.layer == "drop1"]
    assert drop["activation_sparsity"].isna().all()  # mask zeros are not activation sparsity
    assert np.allclose(drop["dropout_fraction"], 0.5, atol=0.08)  # counted from the masks
    assert (sp[sp.layer == "fc1"]["gradient_sparsity"] >= 0).all()


def test_step_snapshots_partition_the_epoch():
    _, col, _ = train(True, steps=2, epochs=1)
    df = col.frame()
    counts = df[(df.layer == "fc1") & (df.role == "activations") & (df.statistic == "count")]
    # 6 steps of 16: snapshots after steps 2, 4, 6; the epoch-end one has nothing left
    assert list(counts["step"]) == [2, 4, 6] and counts["value"].sum() == 96 * 12
    assert set(counts["epoch"]) == {1}


def test_zero_fractions_from_frame_and_net():
    net, col, _ = train(True, epochs=1)
    z = zero_fractions(col)
    assert 0.0 < z[("relu1", "activations")] < 1.0
    assert z == zero_fractions(col.frame(), epoch=1)
    assert zero_fractions(net) == {}  # counters were reset by the last snapshot


def test_stats_paused_restores_flags():
    net, _, _ = train(False, epochs=1)
    before = {k: p.collect_stats for k, p in iter_points(net)}
    with stats_paused(net):
        assert not any(p.collect_stats for _, p in iter_points(net))
    assert before == {k: p.collect_stats for k, p in iter_points(net)}
