"""The code in docs/plugins.md runs and does what it says."""

import re
from pathlib import Path

import numpy as np

from quantsim.formats import parse

DOC = Path(__file__).resolve().parents[1] / "docs" / "plugins.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)


def test_log_format_example_runs_and_rounds_onto_its_grid(capsys):
    namespace: dict = {}
    exec(compile(_python_blocks()[0], str(DOC), "exec"), namespace)
    fmt = parse("lns<2,8>")
    assert str(parse("lns<2,8>@stochastic")) == "lns<2,8>@stochastic"
    x = np.array([0.3, -5.0, 1000.0, 0.0, 2.0, -1e-9, np.nan], dtype=np.float32)
    q = fmt.quantize(x)
    grid = np.exp2(np.arange(-32, 33) / 4).astype(np.float32)
    finite = np.isfinite(q) & (q != 0)
    assert np.isin(np.abs(q[finite]), grid).all()
    assert q[2] == 256.0 and q[3] == 0 and q[4] == 2.0 and np.isnan(q[6])
    down, up = fmt.quantize(x, rounding="down"), fmt.quantize(x, rounding="up")
    inside = [0, 1, 3, 4, 5]  # x[2] = 1000 saturates at 256
    assert (down[inside] <= x[inside]).all() and (up[inside] >= x[inside]).all()
    draws = np.stack([fmt.quantize(np.full(4000, 0.3, np.float32), rounding="stochastic",
                                   seed=s) for s in range(3)])
    assert set(np.unique(draws)) == {down[0], up[0]}
    assert abs(draws.astype(float).mean() - 0.3) < 0.002
    assert "256." in capsys.readouterr().out
