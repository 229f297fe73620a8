"""quantsim.hardware and quantsim.energy_tables: MACs, bits, energy rule, summaries."""

from __future__ import annotations

import json

import numpy as np
import pytest

from quantsim.energy_tables import HOROWITZ_2014, load_energy_table, scale_energy
from quantsim.formats import parse
from quantsim.hardware import (
    cost_summary,
    count_macs,
    format_cost,
    layer_macs,
    mac_energy,
    operand_class,
    skippable_macs,
)
from quantsim.nn import GRU, LSTM, Conv2d, Flatten, Linear, ReLU, Sequential
from quantsim.precision import Precision, iter_points

F32 = Precision.float32()


def summary_layer(s, name):
    return next(r for r in s["layers"] if r["layer"] == name)


# -- MACs and bits by hand -------------------------------------------------------------------

def test_linear_macs_and_bits_by_hand():
    net = Sequential(Linear(3, 2, rng=0, name="fc"))
    s = cost_summary(net, F32, 4, (3,))
    fc = summary_layer(s, "fc")
    assert fc["macs"] == {"forward": 24, "backward_data": 24, "backward_weight": 24}
    # 8 params (6 W + 2 b), 12 input elements, 8 output elements, one momentum
    assert fc["bits_moved"] == {
        "inputs": 2 * 12 * 32, "activations": 3 * 8 * 32, "errors": 3 * 8 * 32,
        "weights": (8 + 6) * 32, "gradients": 2 * 8 * 32, "updates": 2 * 8 * 32,
        "optimizer_state": 2 * 8 * 32,
    }
    p = Precision.from_string("default=float32,weights=bfloat16,activations=fp8_e4m3,"
                              "errors=fixed<2,6>,optimizer_state=float16")
    fc = summary_layer(cost_summary(net, p, 4, (3,), optimizer_moments=2), "fc")
    assert fc["bits_moved"]["weights"] == 14 * 16
    assert fc["bits_moved"]["activations"] == 24 * 8
    assert fc["bits_moved"]["errors"] == 24 * 8
    assert fc["bits_moved"]["optimizer_state"] == 2 * 2 * 8 * 16
    assert fc["bits_moved"]["inputs"] == 24 * 32
    # energy: MACs at the operands' widths, accumulated in float32
    table = load_energy_table()
    fp8, bf16, f32 = parse("fp8_e4m3"), parse("bfloat16"), parse("float32")
    e = 24 * (mac_energy(table, f32, bf16, f32) + mac_energy(table, parse("fixed<2,6>"), bf16, f32)
              + mac_energy(table, f32, parse("fixed<2,6>"), f32))
    assert fc["energy_pj"]["compute"] == pytest.approx(e)
    assert fp8.bits == 8


def test_conv2d_macs_by_hand_and_by_count():
    net = Sequential(Conv2d(2, 3, 3, rng=0, padding=1, name="c1"), ReLU(name="r"),
                     Conv2d(3, 4, 3, rng=1, stride=2, name="c2"), Flatten(name="flat"),
                     Linear(16, 5, rng=2, name="fc"))
    s = cost_summary(net, F32, 2, (2, 5, 5))
    assert summary_layer(s, "c1")["macs"]["forward"] == 2 * 25 * (2 * 9) * 3  # 2700
    assert summary_layer(s, "c2")["macs"]["forward"] == 2 * 4 * (3 * 9) * 4  # Ho = Wo = 2
    assert summary_layer(s, "fc")["macs"]["backward_weight"] == 2 * 16 * 5
    assert summary_layer(s, "r")["macs"]["forward"] == 0
    # the engine's own products add up to the model's three products per layer
    net.bind(F32, seed=0)
    X = np.random.default_rng(0).normal(size=(2, 2, 5, 5)).astype(np.float32)
    with count_macs(net) as counter:
        Y, bp = net.forward(X, train=True)
        bp(np.ones_like(Y))
    for name in ("c1", "c2", "fc"):
        assert counter.macs[name] == sum(summary_layer(s, name)["macs"].values())


@pytest.mark.parametrize("cls,g", [(LSTM, 4), (GRU, 3)])
def test_recurrent_macs_by_hand_and_by_count(cls, g):
    N, T, F, H = 2, 4, 3, 2
    net = Sequential(cls(F, H, rng=0, name="rnn"))
    s = cost_summary(net, F32, N, (T, F))
    m = summary_layer(s, "rnn")["macs"]
    inp, rec = N * T * F * g * H, N * (T - 1) * H * g * H
    assert m == {"forward": inp + rec, "backward_data": inp + rec, "backward_weight": inp + rec}
    net.bind(F32, seed=0)
    X = np.random.default_rng(1).normal(size=(N, T, F)).astype(np.float32)
    with count_macs(net) as counter:
        Y, bp = net.forward(X, train=True)
        bp(np.ones_like(Y))
    assert counter.macs["rnn"] == sum(m.values())
    rnn = summary_layer(s, "rnn")
    internal = N * T * H * (5 if cls is LSTM else 4)
    assert rnn["bits_moved"]["activations"] == (3 * N * T * H + 2 * internal) * 32
    n_gemm = F * g * H + H * g * H
    n_params = sum(p.value.size for p in net["rnn"].params.values())
    assert rnn["bits_moved"]["weights"] == (n_params + n_gemm) * 32


def test_layer_macs_hook():
    class Custom(ReLU):
        def macs(self, x_shape, y_shape):
            return {"forward": 7}

    assert layer_macs(Custom(), (1,), (1,)) == {"forward": 7, "backward_data": 0,
                                                "backward_weight": 0}


# -- skippable MACs --------------------------------------------------------------------------

def test_exact_skippable_macs_by_hand_and_brute_force():
    A = np.array([[0.0, 1.0], [2.0, 0.0]])
    B = np.array([[1.0, 0.0], [0.0, 3.0]])
    assert skippable_macs(A, B) == (8, 6)
    rng = np.random.default_rng(0)
    A = rng.normal(size=(5, 7)) * (rng.random((5, 7)) < 0.6)
    B = rng.normal(size=(7, 3)) * (rng.random((7, 3)) < 0.5)
    brute = sum(1 for i in range(5) for k in range(7) for j in range(3)
                if A[i, k] == 0 or B[k, j] == 0)
    assert skippable_macs(A, B) == (105, brute)


def test_skippable_estimate_from_zero_fractions():
    net = Sequential(Linear(4, 5, rng=0, name="fc1"), ReLU(name="relu"),
                     Linear(5, 2, rng=1, name="fc2"))
    z = {("relu", "activations"): 0.5, "fc2/weights": 0.2, ("fc2", "errors"): 0.1}
    s = cost_summary(net, F32, 10, (4,), z)
    fc2 = summary_layer(s, "fc2")
    macs = 10 * 5 * 2
    assert fc2["zero_fraction"] == {"input": 0.5, "weights": 0.2, "errors": 0.1}
    assert fc2["skippable_macs"] == {
        "forward": round(macs * (1 - 0.5 * 0.8)),
        "backward_data": round(macs * (1 - 0.9 * 0.8)),
        "backward_weight": round(macs * (1 - 0.5 * 0.9)),
    }
    fc1 = summary_layer(s, "fc1")
    assert fc1["zero_fraction"]["input"] is None and sum(fc1["skippable_macs"].values()) == 0
    e = fc2["energy_pj"]
    assert e["compute_with_skipping"] == pytest.approx(
        e["compute"] * (1 - sum(fc2["skippable_macs"].values()) / (3 * macs)))
    assert s["zero_skipping"]["measured"]
    rel = s["relative_to_float32"]
    assert rel["energy"] == pytest.approx(1.0) and rel["energy_with_skipping"] < 1.0


def test_exact_counter_replaces_the_estimate():
    net = Sequential(Linear(4, 5, rng=0, name="fc1"), ReLU(name="relu"),
                     Linear(5, 2, rng=1, name="fc2")).bind(F32, seed=0)
    X = np.random.default_rng(0).normal(size=(10, 4)).astype(np.float32)
    with count_macs(net) as counter:
        Y, bp = net.forward(X, train=True)
        bp(np.ones_like(Y))
    assert "matmul" not in vars(net["fc1"].q)  # the wrapper is gone
    s = cost_summary(net, F32, 10, (4,), exact=counter)
    fc2 = summary_layer(s, "fc2")
    assert fc2["exact_skippable_fraction"] == counter.skippable["fc2"] / counter.macs["fc2"]
    assert 0 < sum(fc2["skippable_macs"].values()) == pytest.approx(counter.skippable["fc2"], abs=3)


# -- energy table and width rule ------------------------------------------------------------

def test_published_numbers_come_back_exactly():
    t = load_energy_table()
    assert "Horowitz" in t.source and "ISSCC 2014" in t.source
    assert t.op("int_add", 8) == 0.03 and t.op("int_add", 32) == 0.1
    assert t.op("int_mult", 8) == 0.2 and t.op("int_mult", 32) == 3.1
    assert t.op("float_add", 16) == 0.4 and t.op("float_add", 32) == 0.9
    assert t.op("float_mult", 11) == 1.1 and t.op("float_mult", 24) == 3.7
    assert t.memory_per_bit("sram_8kb") == 10 / 64 and t.memory_per_bit("dram") == 1300 / 64
    f32 = parse("float32")
    assert mac_energy(t, f32, f32, f32) == pytest.approx(3.7 + 0.9)
    assert mac_energy(t, parse("float16"), parse("float16"), parse("float16")) \
        == pytest.approx(1.1 + 0.4)


def test_width_rule():
    t = load_energy_table()
    # nearest published width on a log scale, ties to the wider; add ~ bits, mult ~ bits^2
    assert t.op("int_add", 16) == pytest.approx(0.1 / 2)  # tie between 8 and 32 -> 32
    assert t.op("int_mult", 16) == pytest.approx(3.1 / 4)
    assert t.op("int_mult", 4) == pytest.approx(0.2 / 4)
    assert t.op("int_add", 12) == pytest.approx(0.03 * 12 / 8)
    assert t.op("float_mult", 8) == pytest.approx(1.1 * (8 / 11) ** 2)  # bfloat16
    assert t.op("float_add", 8) == pytest.approx(0.2)
    assert t.op("float_mult", 53) == pytest.approx(3.7 * (53 / 24) ** 2)  # float64
    assert scale_energy({10: 1.0}, 20, 2) == 4.0
    assert operand_class(parse("fp8_e4m3")) == ("float", 4)
    assert operand_class(parse("bfloat16")) == ("float", 8)
    assert operand_class(parse("fixed<4,12>")) == ("int", 16)
    assert operand_class(parse("dfxp<8>")) == ("int", 8)
    # mixed operands: a float multiplier at the wider significand
    assert mac_energy(t, parse("fixed<4,4>"), parse("fp8_e4m3"), parse("fixed<8,8>")) \
        == pytest.approx(t.op("float_mult", 8) + t.op("int_add", 16))
    with pytest.raises(ValueError, match="unknown operation"):
        t.op("int_div", 8)
    with pytest.raises(ValueError, match="unknown memory level"):
        t.memory_per_bit("l7")


def test_user_tables_dict_and_toml(tmp_path):
    t = load_energy_table({"int_mult": {8: 0.5}, "memory_per_64bit": {"hbm": 640}})
    assert t.op("int_mult", 16) == pytest.approx(2.0)
    assert t.op("float_add", 32) == 0.9  # untouched entries stay Horowitz's
    assert t.memory_per_bit("hbm") == 10.0 and t.memory_per_bit("dram") == 1300 / 64
    text = 'source = "mine"\n[float_add]\n32 = 0.5\n'
    assert load_energy_table(text).op("float_add", 16) == pytest.approx(0.25)
    path = tmp_path / "energy.toml"
    path.write_text(text)
    tp = load_energy_table(str(path))
    assert tp.source == "mine" and tp.op("float_add", 32) == 0.5
    with pytest.raises(ValueError, match="unknown key"):
        load_energy_table({"int_divide": {8: 1}})
    with pytest.raises(ValueError, match="integer width"):
        load_energy_table({"int_add": {"eight": 1}})
    assert HOROWITZ_2014["int_add"] == {8: 0.03, 32: 0.1}  # never modified


# -- the summary ----------------------------------------------------------------------------

def test_summary_is_json_safe_does_not_touch_the_net_and_prints():
    net = Sequential(Linear(6, 8, rng=0, name="fc1"), ReLU(name="relu1"),
                     Linear(8, 3, rng=1, name="fc2"))
    p = Precision.from_string("default=float32,activations=fp8_e4m3,errors=fp8_e5m2,"
                              "weights=bfloat16,updates=fixed<4,12>")
    net.bind(p, seed=0)
    X = np.abs(np.random.default_rng(0).normal(size=(5, 6))).astype(np.float32)
    Y, bp = net.forward(X, train=True)
    bp(np.ones_like(Y))
    calls = {k: pt.calls for k, pt in iter_points(net)}
    s = cost_summary(net, p, 5, (6,), zero_fractions=net)
    assert calls == {k: pt.calls for k, pt in iter_points(net)}
    json.dumps(s)
    assert summary_layer(s, "fc2")["zero_fraction"]["input"] == pytest.approx(
        float(np.mean(net["relu1"].q.activations.stats.zero_out / 40)))
    rel = s["relative_to_float32"]
    assert rel["memory_footprint"] < 1.0 and rel["bits_moved"] < 1.0 and rel["energy"] < 1.0
    # footprint: the bfloat16 weights copy, the fixed<4,12> master copy (16 bits each)
    n_params = 6 * 8 + 8 + 8 * 3 + 3
    assert s["totals"]["memory_bytes"]["weights"] == n_params * 2
    assert s["totals"]["memory_bytes"]["updates"] == n_params * 2
    assert s["float32"]["memory_bytes"]["weights"] == 0  # same format as the master copy
    text = format_cost(s)
    for needle in ("fc1", "fc2", "relative to float32", "Horowitz", "skippable"):
        assert needle in text
    with pytest.raises(ValueError, match="batch_size"):
        cost_summary(net, p, 0, (6,))
    with pytest.raises(ValueError, match="memory level"):
        cost_summary(net, p, 5, (6,), memory="tape")
