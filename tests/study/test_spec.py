"""Study files: expansion, and every kind of bad input -> StudyError naming file, key, fix."""

from __future__ import annotations

import pytest

from quantsim.errors import StudyError
from quantsim.study import load_study, parse_study
from tests.study.conftest import REPO

BASE = """
name = "t"
[base]
network = "mlp"
dataset = "digits"
epochs = 2
network_options = { hidden = [16] }
optimizer = { name = "sgd", lr = 0.1, momentum = 0.9 }
"""


def test_smoke_study_expands():
    st = load_study(REPO / "studies" / "smoke.toml")
    assert st.name == "smoke" and st.description
    assert 2 <= len(st.runs) <= 4
    assert {r.label for r in st.runs} == {"fp32", "fp8"}
    assert len({r.id for r in st.runs}) == len(st.runs)
    assert all(r.config["dataset"] == "digits" for r in st.runs)


def test_grid_variants_seeds_cartesian():
    st = parse_study("seeds = 2\n" + BASE + """
[grid]
"optimizer.lr" = [0.1, 0.05]
batch_size = [16, 32, 64]
[[variants]]
label = "fp32"
precision = "float32"
[[variants]]
label = "bf16"
precision = "default=bfloat16"
optimizer.momentum = 0.5
""")
    assert len(st.runs) == 2 * 2 * 3 * 2
    r = [r for r in st.runs if r.variant == "bf16"][0]
    assert r.config["optimizer"] == {"name": "sgd", "lr": 0.1, "momentum": 0.5}
    assert r.label == "bf16 optimizer.lr=0.1 batch_size=16"
    assert r.axes == {"optimizer.lr": 0.1, "batch_size": 16}
    assert sorted({r.seed for r in st.runs}) == [0, 1]


def test_table_naming_another_optimizer_replaces():
    st = parse_study(BASE + """
[[variants]]
label = "adam"
optimizer = { name = "adam", lr = 0.001 }
""")
    assert st.runs[0].config["optimizer"]["name"] == "adam"
    assert "momentum" not in st.runs[0].config["optimizer"]


def test_same_file_parses_to_same_ids():
    a, b = parse_study(BASE), parse_study(BASE)
    assert [r.id for r in a.runs] == [r.id for r in b.runs]


def err(text: str, path: str = "studies/x.toml") -> str:
    with pytest.raises(StudyError) as ei:
        parse_study(text, path)
    msg = str(ei.value)
    assert msg.startswith(path), msg
    return msg


def test_toml_syntax_error_keeps_line_and_column():
    msg = err('name = "x"\n[base]\nnetwork = "mlp\n')
    assert "TOML syntax error" in msg and "line 3" in msg and "column" in msg


@pytest.mark.parametrize("extra, where, words", [
    ('[[variants]]\nlabel = "a"\nnetwork = "nope"\n', "variants[0] (a)", ["nope", "mlp"]),
    ('[[variants]]\nlabel = "a"\ndataset = "imagenet"\n', "variants[0] (a)", ["imagenet"]),
    ('[[variants]]\nlabel = "a"\nprecision = "activations=fp7_e9m9"\n', "variants[0].precision",
     ["fp7_e9m9"]),
    ('[[variants]]\nlabel = "a"\nprecision = "activashuns=bf16"\n', "variants[0].precision",
     ["activashuns", "valid roles"]),
    ('[[variants]]\nlabel = "a"\nprecision = "layer:nosuch*.weights=bf16"\n',
     "variants[0] (a)", ["nosuch*", "matches no layer"]),
    ('[[variants]]\nlabel = "a"\nepochs = "three"\n', "variants[0] (a)", ["epochs", "three"]),
    ('[[variants]]\nlabel = "a"\nepoch = 3\n', "variants[0] (a)", ["epoch"]),
    ('[[variants]]\nlabel = "a"\noptimizer.lrr = 3\n', "variants[0] (a)", ["lrr"]),
    ('[grid]\nbatch_size = []\n', "grid.batch_size", ["empty"]),
    ('[grid]\nbatch_size = 32\n', "grid.batch_size", ["list"]),
    ('[grid]\n"optimizer.lr" = [0.1, -1.0]\n', "grid.optimizer.lr = -1", ["lr"]),
    ('[grid]\nprecision = ["float32", "weights=nope"]\n', "grid.precision[1]", ["nope"]),
    ('seeds = []\n', "seeds", ["empty"]),
    ('seeds = ["a"]\n', "seeds[0]", ["integer"]),
    ('seeds = [1, 1]\n', "seeds", ["repeats"]),
    ('[grid]\nseed = [1, 2]\n', "grid.seed", ["seeds"]),
    ('bogus = 1\n', "bogus", ["unknown top-level key"]),
    ('reference = "references/nope.csv"\n', "reference", ["does not exist"]),
    ('[[variants]]\nprecision = "bf16"\n', "variants[0].label", ["label"]),
    ('[[variants]]\nlabel = "a"\n[[variants]]\nlabel = "a"\nepochs = 1\n', "variants[1].label",
     ["duplicate"]),
    ('[[variants]]\nlabel = "a"\n[[variants]]\nlabel = "b"\n', "variants[1]", ["same config"]),
    ('[resources]\ngpu = 1\n', "resources.gpu", ["unknown key"]),
])
def test_bad_keys_are_named(extra, where, words):
    # TOML: top-level keys must come before the first table.
    top = [ln for ln in extra.splitlines(keepends=True)
           if extra.startswith(("seeds", "bogus", "reference"))]
    text = ("".join(top) + BASE) if top else (BASE + extra)
    msg = err(text)
    assert f": {where}" in msg, msg
    for w in words:
        assert w in msg, msg


def test_top_level_key_under_a_table():
    msg = err(BASE + "seeds = 2\n")
    assert "base.seeds" in msg and "move it above [base]" in msg


def test_bad_base_is_blamed_on_base():
    msg = err(BASE.replace('"mlp"', '"resnet"'))
    assert ": base: " in msg and "resnet" in msg


def test_missing_file():
    with pytest.raises(StudyError, match="cannot read study file"):
        load_study("/nonexistent/study.toml")
