"""Reports rendered from hand-made frames and from a small store built here (no training)."""

from __future__ import annotations

import base64
import io
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from quantsim.cli import main
from quantsim.report import ReportData, ReportError, load_report_data, read_reference, write_report
from quantsim.report.tables import build_table, first_line, prepare

ROOT = Path(__file__).resolve().parents[2]
COURBARIAUX = ROOT / "studies" / "references" / "courbariaux2015.csv"
EVIL = "<script>alert(1)</script>"

PROP = "default=float32,weights=dfxp<{p}>,activations=dfxp<{p}>,errors=dfxp<{p}>,"\
       "gradients=dfxp<{p}>,updates=dfxp<{u}>"
POLICIES = {
    "float32": "default=float32",
    "prop 8": PROP.format(p=8, u=12),
    "dynamic fixed": PROP.format(p=10, u=12),
    "prop 12": PROP.format(p=12, u=12),
    "upd 8": PROP.format(p=10, u=8),
    "upd 8 stoch": PROP.format(p=10, u=8) + "@stochastic",
    "fixed IL 3": "default=fixed<3,13>",
    "fixed IL 6": "default=fixed<6,10>",
    f"{EVIL} | x": "default=float32,activations=fp8_e4m3",
    "broken": "default=float16",
}
WORKLOADS = [("mnist", "maxout-mlp"), ("digits", "mlp")]
SEEDS = [0, 1, 2]
LAYERS = ["fc<1>", "out"]


def _frames() -> ReportData:
    rows, hist, stats = [], [], []
    rng = np.random.default_rng(0)
    for pi, (pol, spec) in enumerate(POLICIES.items()):
        for wi, (ds, net) in enumerate(WORKLOADS):
            for seed in SEEDS:
                rid = f"r{pi}{wi}{seed}"
                err = round(0.01 + 0.01 * pi + 0.02 * wi + 0.001 * seed, 6)
                status, error, div = "done", None, None
                if pol.startswith(EVIL):
                    status, div, err = "diverged", 3, None
                if pol == "broken":
                    status, err = "failed", None
                    error = ("Traceback (most recent call last):\n  File \"x.py\"\n"
                             "quantsim.errors.DataError: no <b>data</b> | here")
                rows.append({
                    "id": rid, "label": f"{pol} dataset={ds}", "seed": seed, "status": status,
                    "test_error": err, "best_epoch": 2, "epochs": 3,
                    "epochs_done": 3 if status == "done" else (2 if div else 0),
                    "error": error, "diverged_epoch": div, "config.dataset": ds,
                    "config.network": net, "config.precision": spec,
                    "cost.relative_to_float32.energy": 1.0 if pol == "float32" else 0.5,
                    "cost.relative_to_float32.energy_with_skipping": 1.0 if pol == "float32"
                    else 0.4,
                    "cost.relative_to_float32.memory_footprint": 1.0 if pol == "float32"
                    else 0.6,
                    "cost.relative_to_float32.bits_moved": 1.0 if pol == "float32" else 0.45,
                })
                if status == "failed":
                    continue
                for epoch in (1, 2, 3):
                    hist.append({"run_id": rid, "epoch": epoch, "train_loss": 1.0 / epoch,
                                 "test_error": 0.3 / epoch, "val_error": 0.3 / epoch})
                    if pol == "float32":
                        continue
                    for layer in LAYERS:
                        for role in ("weights", "activations", "errors", "gradients",
                                     "updates"):
                            for stat, v in (("count", 1000.0),
                                            ("overflow_fraction", rng.uniform(0, 0.01)),
                                            ("underflow_fraction", rng.uniform(0, 0.02)),
                                            ("dfxp_il", float(epoch % 3))):
                                stats.append((rid, epoch, layer, role, stat, v))
                        for stat, role in (("activation_sparsity", "activations"),
                                           ("error_sparsity", "errors"),
                                           ("gradient_sparsity", "gradients")):
                            stats.append((rid, epoch, layer, role, stat, 0.5 - 0.1 * epoch))
    return ReportData(
        results=pd.DataFrame(rows), history=pd.DataFrame(hist),
        stats=pd.DataFrame(stats, columns=["run_id", "epoch", "layer", "role", "statistic",
                                           "value"]),
        reference=read_reference(COURBARIAUX), title=f"Test {EVIL}",
        description="a <i>study</i> | with pipes", store_path="/tmp/store.sqlite",
        reference_path=str(COURBARIAUX))


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "full"
    data = _frames()
    report = write_report(data, out, command="quantsim report /tmp/store.sqlite -o full",
                          commit="abc123")
    return data, report


def test_every_section_is_drawn_when_its_data_exists(full):
    _, report = full
    assert report.sections == ["bitwidth", "radixpos", "learning", "rounding", "sparsity",
                               "range", "radix", "cost"]
    assert report.omitted == []
    for f in report.figures:
        assert f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = report.markdown.read_text()
    for f in report.figures:
        assert f"]({f.name})" in md
    html = report.html.read_text()
    uris = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(uris) == len(report.figures)
    import matplotlib.image as mpimg
    for u in uris:
        img = mpimg.imread(io.BytesIO(base64.b64decode(u)), format="png")
        assert img.shape[0] > 100 and img.shape[1] > 300


def test_table_numbers_equal_the_stored_ones(full, tmp_path):
    data, report = full
    res = data.results
    ok = res[(res["status"] == "done") & res["config.dataset"].eq("mnist")
             & res["label"].str.startswith("dynamic fixed")]
    vals = ok["test_error"].to_numpy() * 100
    table = report.table
    cell = table.cells[("dynamic fixed", "mnist (maxout-mlp)")]
    assert cell.n == 3
    assert cell.mean == pytest.approx(vals.mean()) and cell.std == pytest.approx(vals.std(ddof=1))
    text = f"{vals.mean():.2f} ± {vals.std(ddof=1):.2f} (n=3)"
    assert text in report.markdown.read_text() and text in report.html.read_text()
    # published numbers side by side: PI-MNIST for the MLP on MNIST, nothing for digits
    assert table.cells[("float32", "mnist (maxout-mlp)")].reference == 1.05
    assert table.cells[("dynamic fixed", "mnist (maxout-mlp)")].reference == 1.28
    assert table.cells[("float32", "digits (mlp)")].reference is None
    assert "1.28" in report.html.read_text()
    assert table.bits["dynamic fixed"] == "propagations 10, parameter updates 12, others 32"
    # results.csv: every run, with the stored test error
    csv = pd.read_csv(report.csv)
    assert len(csv) == len(res)
    merged = csv.merge(res[["id", "test_error"]], left_on="run_id", right_on="id")
    np.testing.assert_allclose(merged["test_error_percent"], merged["test_error"] * 100)


def test_diverged_and_failed_runs_are_shown(full):
    _, report = full
    md, html = report.markdown.read_text(), report.html.read_text()
    assert "3 runs diverged (epoch 3)" in md and "3 runs diverged (epoch 3)" in html
    assert "3 runs failed: DataError: no \\<b\\>data\\</b\\> \\| here" in md
    assert "3 runs failed: DataError: no &lt;b&gt;data&lt;/b&gt; | here" in html
    csv = pd.read_csv(report.csv)
    assert set(csv["status"]) == {"done", "diverged", "failed"}
    assert (csv[csv["status"] == "diverged"]["shown_as"] == "diverged (epoch 3)").all()


def test_user_strings_are_escaped(full):
    _, report = full
    html = report.html.read_text()
    assert "<script>" not in html and "<i>study</i>" not in html and "<b>data" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; | x" in html
    assert "Content-Security-Policy" in html and "http://" not in html \
        and "https://" not in html
    md = report.markdown.read_text()
    assert "<script>" not in md
    row = next(ln for ln in md.splitlines() if "alert(1)" in ln and ln.startswith("| "))
    assert "\\<script\\>alert(1)\\</script\\> \\| x" in row
    # the pipe inside the label does not add a column
    assert len(re.split(r"(?<!\\)\|", row)) == len(re.split(r"(?<!\\)\|", md.splitlines()[
        md.splitlines().index(row) - 1]))


def test_provenance_is_stated(full):
    _, report = full
    for text in (report.markdown.read_text(), report.html.read_text()):
        assert "quantsim report /tmp/store.sqlite -o full" in text
        assert "/tmp/store.sqlite" in text and "abc123" in text
        assert re.search(r"quantsim \d+\.\d+", text)
        assert re.search(r"Date: \d{4}-\d\d-\d\d", text)


def test_sections_without_data_are_omitted_with_a_reason(tmp_path):
    data = _frames()
    res = data.results[[c for c in data.results.columns if not c.startswith("cost.")]]
    res = res[res["label"].str.startswith(("float32", "dynamic fixed"))]
    bare = ReportData(results=res)
    report = write_report(bare, tmp_path / "bare", commit="x")
    assert report.sections == []
    omitted = dict(report.omitted)
    assert set(omitted) == {"Test error against bit width", "Learning curves",
                            "Test error against the fixed point radix position",
                            "Stochastic vs nearest rounding", "Sparsity per layer over epochs",
                            "Overflow and underflow rates per role",
                            "Dynamic fixed point radix over time",
                            "Memory and energy relative to float32", "Published numbers"}
    md = report.markdown.read_text()
    assert "## Omitted sections" in md and "cost = true" in md
    assert not list((tmp_path / "bare").glob("*.png"))


def test_frames_need_label_and_status():
    with pytest.raises(ReportError, match="label"):
        ReportData(results=pd.DataFrame({"status": ["done"]}))


def test_first_line_of_errors():
    assert first_line("Traceback (most recent call last):\n  File 'x'\n    y()\n"
                      "quantsim.errors.StudyError: bad\n") == "StudyError: bad"
    assert first_line("plain message\nmore") == "plain message"
    assert first_line(None) == "unknown error"


def test_policy_row_ignores_workload_axes():
    df = prepare(pd.DataFrame({"label": ["fp8 dataset=mnist", "fp8 dataset=digits"],
                               "status": ["done", "done"], "test_error": [0.1, 0.2],
                               "config.dataset": ["mnist", "digits"],
                               "config.network": ["mlp", "mlp"],
                               "config.precision": ["activations=fp8_e4m3"] * 2}))
    t = build_table(df)
    assert t.policies == ["fp8"] and t.workloads == ["mnist (mlp)", "digits (mlp)"]
    assert t.bits["fp8"] == "activations 8, others 32"


# -- the store adapter and the command ------------------------------------------------------


STUDY = """
name = "tiny"
description = "a <b>tiny</b> study"
seeds = [0, 1]
reference = "{ref}"
[base]
network = "mlp"
dataset = "digits"
epochs = 2
[[variants]]
label = "float32"
precision = "default=float32"
[[variants]]
label = "{evil}"
precision = "default=float32,activations=fp8_e4m3@stochastic"
"""


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    from quantsim.study import Store, parse_study

    d = tmp_path_factory.mktemp("store")
    path = d / "tiny.toml"
    path.write_text(STUDY.format(ref=COURBARIAUX, evil=EVIL))
    study = parse_study(path.read_text(), path)
    st = Store(d / "tiny.results.sqlite")
    st.register(study)
    for i, run in enumerate(study.runs):
        hist = [{"epoch": e, "train_loss": 1.0 / e, "test_error": 0.2 / e, "val_error": 0.2 / e}
                for e in (1, 2)]
        if run.variant == "float32":
            outcome = {"status": "done", "result": {
                "test_error": 0.05 + 0.01 * i, "best_epoch": 2, "diverged": False,
                "history": hist, "cost": {"relative_to_float32": {
                    "energy": 1.0, "energy_with_skipping": 0.9}}}}
        elif run.seed == 0:
            outcome = {"status": "diverged", "result": {
                "test_error": None, "best_epoch": 1, "diverged": True, "history": hist[:1],
                "diverged_at": {"epoch": 2, "step": 30}}}
        else:
            outcome = {"status": "failed", "error": "ValueError: <boom>"}
        st.start(run.id)
        st.finish(run.id, outcome)
    st.close()
    return path


def test_store_adapter_reads_results_history_cost_and_reference(store):
    data = load_report_data(store)
    assert data.title == "Study tiny" and data.description == "a <b>tiny</b> study"
    assert data.reference is not None and data.reference_path == str(COURBARIAUX)
    res = data.results.set_index("seed")
    f32 = data.results[data.results["variant"] == "float32"]
    assert list(f32["cost.relative_to_float32.energy"]) == [1.0, 1.0]
    div = data.results[data.results["status"] == "diverged"]
    assert list(div["diverged_epoch"]) == [2]
    assert len(res) == 4 and len(data.history) == 5
    assert load_report_data(store.with_name("tiny.results.sqlite")).results.shape == \
        data.results.shape


def test_cli_writes_the_report(store, tmp_path, capsys):
    out = tmp_path / "rep"
    assert main(["report", str(store), "-o", str(out)]) == 0
    md = (out / "index.md").read_text()
    assert f"quantsim report {store} -o {out}" in md
    assert "diverged (epoch 2)" in md and "failed: ValueError: \\<boom\\>" in md
    assert (out / "results.csv").exists() and (out / "fig-learning.png").exists()
    html = (out / "index.html").read_text()
    assert "<script>" not in html and "&lt;boom&gt;" in html
    assert "wrote" in capsys.readouterr().err


def test_sweeps_hold_other_roles_and_radix_per_family():
    from quantsim.report.plots import bit_sweeps, radix_sweeps

    fx = ("default=fixed<{il},{fp}>,updates=fixed<{il},{fu}>,optimizer_state=fixed<{il},{fu}>,"
          "accumulator=float32")
    specs = {
        "dfxp": PROP.format(p=10, u=12), "dfxp p8": PROP.format(p=8, u=12),
        "dfxp u8": PROP.format(p=10, u=8), "dfxp u16": PROP.format(p=10, u=16),
        "fx": fx.format(il=5, fp=15, fu=15), "fx p12": fx.format(il=5, fp=7, fu=15),
        "fx u12": fx.format(il=5, fp=15, fu=7), "fx IL3": fx.format(il=3, fp=17, fu=17),
        "fx IL8": fx.format(il=8, fp=12, fu=12),
    }
    errors = {"dfxp": 1, "dfxp p8": 2, "dfxp u8": 3, "dfxp u16": 4, "fx": 5, "fx p12": 6,
              "fx u12": 7, "fx IL3": 8, "fx IL8": 9}
    prep = prepare(pd.DataFrame([
        {"id": k, "label": k, "status": "done", "test_error": errors[k] / 128,
         "config.dataset": "mnist", "config.network": "mlp", "config.precision": v}
        for k, v in specs.items()]))
    prep["test_error_percent"] = prep["test_error"] * 128  # exact small integers
    curves = {(c["group"], c["family"]): c for c in bit_sweeps(prep)}
    prop, upd = curves[("propagations", "dfxp")], curves[("parameter updates", "dfxp")]
    assert list(prop["bits"]) == [8, 10] and list(prop["mean"]) == [2, 1]
    assert list(upd["bits"]) == [8, 12, 16] and list(upd["mean"]) == [3, 1, 4]
    fprop, fupd = curves[("propagations", "fixed")], curves[("parameter updates", "fixed")]
    assert list(fprop["bits"]) == [12, 20] and list(fprop["mean"]) == [6, 5]
    assert list(fupd["bits"]) == [12, 20] and list(fupd["mean"]) == [7, 5]
    (radix,) = radix_sweeps(prep)
    assert list(radix["il"]) == [3, 5, 8] and list(radix["mean"]) == [8, 5, 9]
    assert radix["bits"] == "20/32"


def test_findings_are_shown_in_markdown_and_html(full, tmp_path):
    data, _ = full
    text = ("Half matched float32.\n\n- fixed<4,12> **saturated** in `fc1`\n- see "
            "[the table](#table)\n\n| a | b |\n| 1 | 2 |\n\n### Why\nthe <range>")
    d = ReportData(results=data.results, history=data.history, stats=data.stats,
                   title="t", findings=text)
    report = write_report(d, tmp_path / "f", commit="x")
    md = report.markdown.read_text()
    assert "## Findings" in md and text.strip() in md
    html = report.html.read_text()
    assert "<h2 id=\"findings\">Findings</h2>" in html
    assert "<li>fixed&lt;4,12&gt; <b>saturated</b> in <code>fc1</code></li>" in html
    assert '<a href="#table">the table</a>' in html and "<pre>| a | b |" in html
    assert "<h3>Why</h3>" in html and "the &lt;range&gt;" in html


def test_cli_findings_file(store, tmp_path, capsys):
    notes = tmp_path / "FINDINGS.md"
    notes.write_text("Stochastic rounding trains.\n")
    out = tmp_path / "rep"
    assert main(["report", str(store), "-o", str(out), "--findings", str(notes)]) == 0
    md = (out / "index.md").read_text()
    assert "Stochastic rounding trains." in md and f"--findings {notes}" in md
    assert main(["report", str(store), "-o", str(out), "--findings",
                 str(tmp_path / "missing.md")]) == 2
    assert "missing.md" in capsys.readouterr().err


def test_cli_missing_store_is_a_clear_error(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nope.sqlite"), "-o", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "nope.sqlite" in err and "does not exist" in err
    study = tmp_path / "s.toml"
    study.write_text('name = "s"\n')
    assert main(["report", str(study), "-o", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "no results store" in err and "quantsim study run" in err
    assert not (tmp_path / "r").exists()
    bad = tmp_path / "bad.sqlite"
    bad.write_text("not a database")
    assert main(["report", str(bad), "-o", str(tmp_path / "r")]) == 2
    assert "not a usable results store" in capsys.readouterr().err


# -- the HTML in a real browser -------------------------------------------------------------------


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") \
        or shutil.which("google-chrome")


@pytest.mark.skipif(_chromium() is None, reason="Chromium is not installed")
def test_html_loads_in_headless_chromium_without_console_errors(full, tmp_path):
    _, report = full
    shot = tmp_path / "shot.png"
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.run(
            [_chromium(), "--headless", "--no-sandbox", "--disable-gpu",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--no-first-run", f"--user-data-dir={profile}", "--enable-logging=stderr",
             "--v=0", "--hide-scrollbars", "--window-size=1280,2400",
             f"--screenshot={shot}", report.html.resolve().as_uri()],
            capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    console = [ln for ln in proc.stderr.splitlines() if ":CONSOLE" in ln]
    assert console == [], console
    import matplotlib.image as mpimg
    img = mpimg.imread(str(shot))
    assert img.shape[:2] == (2400, 1280)
    # not a blank page: text, table lines and plots give many distinct colours
    colours = np.unique((img[..., :3] * 255).astype(np.uint8).reshape(-1, 3), axis=0)
    assert len(colours) > 200
