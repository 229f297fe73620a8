"""Precision policy parsing and resolution, QuantPoint seeds/stats/state, LayerPoints."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from quantsim import precision as precision_module
from quantsim.errors import PrecisionError
from quantsim.formats import parse
from quantsim.formats.base import run_float32_fast
from quantsim.kernels.accumulate import chunked_matmul
from quantsim.kernels.cpu import PARALLEL_MIN
from quantsim.nn import Linear, ReLU, Sequential
from quantsim.nn import _blas as blas
from quantsim.precision import (
    ROLES,
    LayerPoints,
    Precision,
    QuantPoint,
    configure_stats,
    iter_points,
    make_layer_points,
    split_top_level,
    stable_hash64,
)

POLICY = ("default=float32, activations=fp8_e4m3@stochastic, updates=fixed<4,12>,"
          "layer:fc*.weights=bfloat16, layer:fc1.default=float16, accumulator_chunk=8")


def f(spec: str):
    return parse(spec)


def make_net() -> Sequential:
    return Sequential(Linear(4, 5, rng=0, name="fc1"), ReLU(name="act"),
                      Linear(5, 2, rng=1, name="fc2"), Linear(2, 2, rng=2, name="out"))


# -- parsing ------------------------------------------------------------------------------------


def test_split_top_level_keeps_bracketed_commas():
    assert split_top_level("a=fixed<4,12>,b=float<e4m3,nosub,sat>@up") == [
        "a=fixed<4,12>", "b=float<e4m3,nosub,sat>@up"]
    with pytest.raises(PrecisionError, match="unbalanced"):
        split_top_level("a=fixed<4,12")


def test_from_string_dict_toml_agree_and_round_trip():
    p = Precision.from_string(POLICY)
    d = {
        "default": "float32",
        "roles": {"activations": "fp8_e4m3@stochastic", "updates": "fixed<4,12>"},
        "layers": {"fc*": {"weights": "bfloat16"}, "fc1": {"default": "float16"}},
        "accumulator_chunk": 8,
    }
    toml = """
    default = "float32"
    accumulator_chunk = 8
    activations = "fp8_e4m3@stochastic"
    updates = "fixed<4,12>"
    [layers."fc*"]
    weights = "bfloat16"
    [layers.fc1]
    default = "float16"
    """
    assert Precision.from_dict(d) == p
    assert Precision.from_toml(toml) == p
    assert Precision.from_toml("[precision]\n" + toml.replace("[layers", "[precision.layers")) == p
    assert Precision.from_dict(p.to_dict()) == p
    assert Precision.from_string(str(p)) == p
    assert p.accumulator_chunk == 8
    assert hash(Precision.from_string(str(p))) == hash(p)


def test_from_toml_path(tmp_path: Path):
    path = tmp_path / "p.toml"
    path.write_text('default = "bfloat16"\n')
    assert Precision.from_toml(path).default == f("bfloat16")
    assert Precision.from_toml(str(path)).default == f("bfloat16")
    with pytest.raises(PrecisionError, match="missing.toml"):
        Precision.from_toml(str(tmp_path / "missing.toml"))


def test_float32_policy():
    p = Precision.float32()
    assert all(p.format_for("x", r) == f("float32") for r in ROLES)
    assert str(p) == "default=float32"


# -- resolution ---------------------------------------------------------------------------------


def test_format_for_precedence():
    p = Precision.from_string(POLICY)
    # fc1: exact-name override (its default) beats the glob's weights entry.
    assert p.format_for("fc1", "weights") == f("float16")
    assert p.format_for("fc1", "activations") == f("float16")
    assert p.format_for("fc2", "weights") == f("bfloat16")
    assert p.format_for("fc2", "activations") == f("fp8_e4m3@stochastic")
    assert p.format_for("fc2", "errors") == f("float32")
    assert p.format_for("out", "updates") == f("fixed<4,12>")
    assert p.format_for("out", "weights") == f("float32")


def test_last_matching_glob_wins():
    p = Precision.from_string("layer:f*.weights=bfloat16,layer:fc*.weights=float16")
    assert p.format_for("fc1", "weights") == f("float16")
    assert p.format_for("f1", "weights") == f("bfloat16")


def test_inputs_stay_off_unless_set():
    p = Precision.from_string("default=bfloat16,layer:fc1.default=float16")
    assert p.format_for("fc1", "inputs") == f("float32")
    assert p.format_for("fc1", "weights") == f("float16")
    assert p.format_for("fc2", "accumulator") == f("bfloat16")
    assert Precision.from_string("inputs=fixed<1,7>").format_for("fc1", "inputs") == f("fixed<1,7>")
    assert Precision.from_string("layer:fc1.inputs=float16").format_for("fc1", "inputs") == \
        f("float16")


# -- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, needle", [
    ("weight=bfloat16", "'weight'"),
    ("layer:fc1.activation=bfloat16", "'activation'"),
    ("activations=bf17", "'bf17'"),
    ("activations", "'activations'"),
    ("layer:weights=bfloat16", "layer:"),
    ("accumulator_chunk=0", "accumulator_chunk"),
    ("accumulator_chunk=many", "'many'"),
])
def test_bad_strings_name_the_value(text: str, needle: str):
    with pytest.raises(PrecisionError, match=needle):
        Precision.from_string(text)


def test_unknown_role_lists_valid_roles():
    with pytest.raises(PrecisionError, match="optimizer_state") as info:
        Precision.from_dict({"roles": {"momentum": "float16"}})
    assert "'momentum'" in str(info.value)


def test_unknown_format_keeps_parser_message():
    with pytest.raises(PrecisionError) as info:
        Precision.from_dict({"layers": {"fc1": {"weights": "flaot16"}}})
    msg = str(info.value)
    assert "'fc1'" in msg and "'weights'" in msg and "'flaot16'" in msg
    assert info.value.__cause__ is not None


@pytest.mark.parametrize("d, needle", [
    ({"defualt": "float32"}, "'defualt'"),
    ({"roles": "float16"}, "roles"),
    ({"layers": {"fc1": "float16"}}, "'fc1'"),
    ({"default": 16}, "16"),
    ({"weights": "float16", "roles": {"weights": "bfloat16"}}, "'weights'"),
    ({"accumulator_chunk": 2.5}, "2.5"),
])
def test_bad_dicts_name_the_value(d, needle):
    with pytest.raises(PrecisionError, match=needle):
        Precision.from_dict(d)


def test_bad_toml():
    with pytest.raises(PrecisionError, match="TOML"):
        Precision.from_toml("default = = 3\n")
    with pytest.raises(PrecisionError, match="'nope'"):
        Precision.from_toml('default = "nope"\n')


def test_check_unmatched_override_lists_layers():
    p = Precision.from_string("layer:conv*.weights=bfloat16,layer:fc1.errors=float16")
    with pytest.raises(PrecisionError, match="'conv\\*'.*fc1, act, fc2, out"):
        p.check([layer.name for layer in make_net().layers()])
    Precision.from_string("layer:fc*.weights=bfloat16").check(["fc1", "act"])


# -- QuantPoint ---------------------------------------------------------------------------------


def test_identity_point_returns_its_argument():
    x = np.arange(4, dtype=np.float32)
    point = QuantPoint("fc1", "weights", f("float32"), seed=0)
    assert point(x) is x and point.calls == 0
    x64 = np.array([1 / 3])
    assert point(x64)[0] == np.float32(1 / 3)  # float32 on a float64 carrier rounds
    assert point.calls == 1


def test_stochastic_seeds_differ_per_point_and_call_but_reproduce():
    x = np.full(256, 1 / 3, dtype=np.float32)
    fmt = f("fixed<2,3>@stochastic")

    def draws(layer: str, role: str, seed: int, n: int = 2):
        point = QuantPoint(layer, role, fmt, seed)
        return [point(x).copy() for _ in range(n)]

    a1, a2 = draws("fc1", "activations", 7)
    assert not np.array_equal(a1, a2)  # per call
    b1, _ = draws("fc2", "activations", 7)
    c1, _ = draws("fc1", "errors", 7)
    d1, _ = draws("fc1", "activations", 8)
    for other in (b1, c1, d1):
        assert not np.array_equal(a1, other)
    r1, r2 = draws("fc1", "activations", 7)
    np.testing.assert_array_equal(a1, r1)
    np.testing.assert_array_equal(a2, r2)


def test_stable_hash_is_fixed():
    # A changed value here breaks reproducibility of every stochastic run: keep it stable.
    assert stable_hash64(0, "fc1", "weights", 0) == stable_hash64(0, "fc1", "weights", 0)
    assert stable_hash64(1, "a") != stable_hash64(1, "a", "")
    assert stable_hash64("ab", "c") != stable_hash64("a", "bc")


def test_stats_collection_and_sampling():
    x = np.array([0.0, 1e-9, 100.0, 0.3], dtype=np.float32)
    point = QuantPoint("fc1", "activations", f("fixed<4,4>"), 0)
    point(x)
    point(x)
    assert point.stats.count == 8
    # stats_every = k: a call is counted when its hash is 0 mod k (pseudo-random, reproducible)
    k = 4
    point.stats_every = k
    picked = [n for n in range(2, 402) if point.call_seed(n) % k == 0]
    for _ in range(400):
        point(x)
    assert point.stats.count == 8 + 4 * len(picked)
    assert 60 <= len(picked) <= 140  # ~100 of 400 (binomial, 400 x 1/4: sd 8.7)
    # no aliasing with short periods: the picked calls are not all even (or all odd)
    assert 0 < sum(n % 2 for n in picked) < len(picked)
    off = QuantPoint("fc1", "activations", f("fixed<4,4>"), 0, collect_stats=False)
    off(x)
    assert off.stats.count == 0 and off.calls == 1


@pytest.mark.parametrize("spec", ["fp8_e4m3", "fp8_e4m3@stochastic", "fixed<4,12>@stochastic",
                                  "bfloat16@toward_zero", "float16@up", "fp8_e5m2@stochastic<8>"])
def test_direct_float32_calls_equal_format_quantize(spec, monkeypatch):
    """Calls on plain float32 arrays without statistics skip ``fmt.quantize``'s checks; they
    give its bits for the point's call seed (out of place, into ``out``, in place; 0-d, small
    and parallel sizes) and keep the point's bookkeeping."""
    direct = []
    monkeypatch.setattr(precision_module, "run_float32_fast",
                        lambda *a: (direct.append(a[0].size), run_float32_fast(*a)))
    fmt = f(spec)
    point = QuantPoint("fc1", "activations", fmt, 3, collect_stats=False)
    rng = np.random.default_rng(0)
    for n in ((), (7,), (3, PARALLEL_MIN // 2 + 5)):
        x = np.array(rng.standard_normal(n) * 300, dtype=np.float32)
        for how in ("new", "out", "in place"):
            want = fmt.quantize(x, seed=point.call_seed(point.calls))
            src = x.copy()
            out = {"new": None, "out": np.empty_like(x), "in place": src}[how]
            got = point(src, out, tag="W")
            assert out is None or got is out
            np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))
    assert len(direct) == 9 and point.calls == 9 and set(point.tag_states) == {"W"}


def test_other_calls_take_the_format_path(monkeypatch):
    """float64, strided or subclassed arrays, a mismatched ``out`` and counted statistics go
    through ``fmt.quantize`` (which converts, counts or raises)."""
    direct = []
    monkeypatch.setattr(precision_module, "run_float32_fast", lambda *a: direct.append(a))
    fmt = f("fp8_e4m3@stochastic")
    point = QuantPoint("fc1", "activations", fmt, 3, collect_stats=False)
    x = np.linspace(-2, 2, 64, dtype=np.float32)
    for arg in (x.astype(np.float64), x[::2], x.view(np.recarray)):
        want = fmt.quantize(arg, seed=point.call_seed(point.calls))
        np.testing.assert_array_equal(point(arg), want)
    with pytest.raises(ValueError, match="out must be"):
        point(x, np.empty(64, np.float64))
    with pytest.raises(ValueError, match="out must be"):
        point(x, np.empty(63, np.float32))
    with pytest.raises(ValueError, match="out must be"):
        point(x[0], np.float32(0))  # a numpy scalar cannot be written
    counting = QuantPoint("fc1", "activations", fmt, 3)
    counting(x)
    assert counting.stats.count == 64
    assert not direct


def test_tagged_tensors_keep_their_own_radix():
    """A weight matrix and its bias through one dfxp point: each keeps its own radix position,
    so neither overflows because of the other (a shared one would swing every call)."""
    W = np.linspace(-0.05, 0.05, 400, dtype=np.float32)
    b = np.linspace(-3.0, 3.0, 20, dtype=np.float32)
    point = QuantPoint("fc1", "weights", f("dfxp<8>"), 0)
    for _ in range(6):
        point(W, tag="W")
        point(b, tag="b")
    assert point.state_for("W").il < point.state_for("b").il
    point.stats.reset()
    for _ in range(4):
        point(W, tag="W")
        point(b, tag="b")
    assert point.stats.overflow == 0
    assert point.state.il is None  # untagged state unused
    saved = point.state_dict()
    again = QuantPoint("fc1", "weights", f("dfxp<8>"), 0)
    again.load_state_dict(saved)
    assert {t: s.il for t, s in again.tag_states.items()} == {"W": point.state_for("W").il,
                                                             "b": point.state_for("b").il}
    shared = QuantPoint("fc1", "weights", f("dfxp<8>"), 0)
    for _ in range(10):
        shared(W)
        shared(b)
    assert shared.stats.overflow > 0  # the behaviour tags avoid


def test_point_state_dict_round_trip():
    x = np.linspace(-1, 1, 50, dtype=np.float32)
    fmt = f("fixed<2,6>@stochastic")
    a = QuantPoint("fc1", "errors", fmt, 3)
    a(x)
    a(x)
    b = QuantPoint("fc1", "errors", fmt, 3)
    b.load_state_dict(a.state_dict())
    assert b.calls == 2 and b.stats.count == a.stats.count
    np.testing.assert_array_equal(a(x), b(x))
    with pytest.raises(PrecisionError, match="same precision"):
        QuantPoint("fc1", "errors", f("float16"), 3).load_state_dict(a.state_dict())


def test_dynamic_fixed_point_state_survives_a_checkpoint(tmp_path: Path):
    from quantsim import checkpoint

    rng = np.random.default_rng(0)
    xs = [rng.normal(scale=s, size=64).astype(np.float32) for s in (0.1, 5.0, 5.0, 40.0, 0.2)]
    fmt = f("dfxp<8,interval=1>@stochastic")
    a = QuantPoint("fc1", "gradients", fmt, 1)
    for x in xs[:3]:
        a(x)
    checkpoint.save(tmp_path, {"p": a.state_dict()}, tag="0")
    b = QuantPoint("fc1", "gradients", fmt, 1)
    b.load_state_dict(checkpoint.load(tmp_path)["p"])
    assert b.state.state_dict() == a.state.state_dict()
    for x in xs[3:]:
        np.testing.assert_array_equal(a(x), b(x))
    assert b.state.state_dict() == a.state.state_dict()
    assert a.stats.as_dict() == b.stats.as_dict()


def test_configure_stats():
    net = make_net().bind(Precision.from_string("activations=float16"), seed=0)
    configure_stats(net, enabled=False)
    net.forward(np.ones((2, 4), dtype=np.float32), train=False)
    assert all(p.stats.count == 0 for _, p in iter_points(net))
    configure_stats(net, every=1)
    net.forward(np.ones((2, 4), dtype=np.float32), train=False)
    assert net["fc1"].q.activations.stats.count == 10
    with pytest.raises(PrecisionError, match="every=0"):
        configure_stats(net, every=0)


def test_unknown_role_in_point():
    with pytest.raises(PrecisionError, match="'bias'"):
        QuantPoint("fc1", "bias", f("float16"), 0)


# -- LayerPoints and binding ------------------------------------------------------------------


def test_overrides_reach_exactly_the_named_points():
    net = make_net().bind(Precision.from_string("layer:fc1.weights=bfloat16,"
                                                "layer:out.errors=float16"), seed=0)
    quantized = {name: str(p.fmt) for name, p in iter_points(net) if str(p.fmt) != "float32"}
    assert quantized == {"fc1/weights": str(f("bfloat16")), "out/errors": str(f("float16"))}
    assert len(list(iter_points(net))) == 4 * len(ROLES)


def test_layer_points_attributes():
    q = make_layer_points(Linear(2, 2, rng=0, name="fc9"), Precision.from_string(POLICY), 1)
    assert isinstance(q, LayerPoints) and q.layer == "fc9"
    assert q.activations.fmt == f("fp8_e4m3@stochastic") and q.weights.fmt == f("bfloat16")
    assert [p.role for p in q] == list(ROLES)


def test_matmul_float32_accumulator_is_blas():
    rng = np.random.default_rng(0)
    A = rng.normal(size=(7, 33)).astype(np.float32)
    B = rng.normal(size=(33, 5)).astype(np.float32)
    q = make_layer_points(Linear(2, 2, rng=0, name="fc"), Precision.float32(), 0)
    np.testing.assert_array_equal(q.matmul(A, B), blas.matmul(A, B))  # the engine's BLAS
    assert q.accumulator.calls == 0


def test_matmul_low_precision_accumulator_is_chunked():
    rng = np.random.default_rng(1)
    A = rng.normal(size=(3, 20)).astype(np.float32)
    B = rng.normal(size=(20, 4)).astype(np.float32)
    p = Precision.from_string("accumulator=bfloat16,accumulator_chunk=4")
    q = make_layer_points(Linear(2, 2, rng=0, name="fc"), p, 0)
    C = q.matmul(A, B)
    assert C.dtype == np.float32 and q.accumulator.calls == 2 * 5 - 1
    np.testing.assert_array_equal(C, chunked_matmul(A, B, f("bfloat16").quantize, 4))
    assert not np.array_equal(C, A @ B)
