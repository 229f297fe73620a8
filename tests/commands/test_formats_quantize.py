"""The `quantsim formats`, `quantsim quantize` and `quantsim demo` commands."""

import json

import pytest

from quantsim.cli import main


def run_json(capsys, *argv):
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def test_formats_lists_named_and_generic_formats(capsys):
    doc = run_json(capsys, "formats", "--json")
    by_spec = {row["spec"]: row for row in doc["formats"]}
    assert by_spec["float16"]["max"] == 65504 and by_spec["float16"]["bits"] == 16
    assert by_spec["fp8_e4m3"]["max"] == 448
    assert by_spec["float<e4m3>"]["max"] == 240
    assert by_spec["fixed<4,12>"]["eps"] == 2.0**-12
    assert by_spec["half"]["canonical"] == "float16"


def test_formats_table_prints(capsys):
    assert main(["formats"]) == 0
    out = capsys.readouterr().out
    assert "bfloat16" in out and "fixed<4,12>" in out and "min subnormal" in out


def test_quantize_nearest_reports_error_overflow_and_flush(capsys):
    doc = run_json(capsys, "quantize", "float16", "65519", "65520", "1e-8", "0x1p-24", "--json")
    notes = [(v["result"], v["note"]) for v in doc["values"]]
    assert notes[0] == (65504.0, "error -15")
    assert notes[1] == (float("inf"), "overflow")
    assert notes[2] == (0.0, "flushed to zero")
    assert notes[3] == (2.0**-24, "exact")


def test_quantize_stochastic_shows_both_neighbours_and_probabilities(capsys):
    doc = run_json(capsys, "quantize", "fixed<4,12>@stochastic", "--json", "--",
                   "0.25", "-0x1.8p-12")
    exact, between = doc["values"]
    assert exact["down"] == exact["up"] == 0.25
    # -1.5 quanta: neighbours -2q (p 0.5) and -1q (p 0.5)
    q = 2.0**-12
    assert between["down"] == -2 * q and between["up"] == -q
    assert between["p_down"] == pytest.approx(0.5) and between["p_up"] == pytest.approx(0.5)


def test_quantize_limited_random_bits_probability_is_floored(capsys):
    # 0.3 in fp8_e4m3 lies between 0.28125 and 0.3125: frac 0.6, two bits -> P(up) = 0.5
    doc = run_json(capsys, "quantize", "fp8_e4m3@stochastic<2>", "0.3", "-0.3", "--json")
    pos, neg = doc["values"]
    assert pos["p_up"] == 0.5 and pos["up"] == 0.3125
    assert neg["p_down"] == 0.5 and neg["down"] == -0.3125


@pytest.mark.parametrize("argv, text", [
    (["quantize", "flaot16", "1"], "did you mean float16"),
    (["quantize", "fixed<0,4>", "1"], "fixed<0,4>"),
    (["quantize", "float16", "abc"], "'abc'"),
    (["quantize", "float16@rounder", "1"], "rounder"),
])
def test_bad_input_is_a_clear_error(capsys, argv, text):
    assert main(argv) == 2
    assert text.lower() in capsys.readouterr().err.lower()


def test_demo_tour_runs(capsys):
    assert main(["demo", "--tour"]) == 0
    out = capsys.readouterr().out
    assert "fp8_e4m3@stochastic" in out and "stochastic mean" in out


def test_quantize_limited_bits_in_twos_complement_decide_on_the_signed_value(capsys):
    # -3 + 0.2 q in fixed<4,12>: frac from the lower neighbour -3 is 0.2; two random bits give
    # P(toward +inf) = floor(0.8)/4 = 0; in a float (sign-magnitude) it would be the magnitude.
    q = 2.0**-12
    doc = run_json(capsys, "quantize", "fixed<4,12>@stochastic<2>", "--json", "--",
                   str(-3 + 0.2 * q))
    (row,) = doc["values"]
    assert row["down"] == -3 and row["up"] == -3 + q
    assert row["p_up"] == 0.0 and row["p_down"] == 1.0
