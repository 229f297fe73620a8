from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PY = sys.executable


def cli(*args: str, cwd: Path | None = None, timeout: float = 240,
        check: bool = False) -> subprocess.CompletedProcess:
    """Run ``python -m quantsim.cli ARGS`` with the repo on the path."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([PY, "-m", "quantsim.cli", *args], cwd=cwd or REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\nstdout:\n{proc.stdout}\n"
                             f"stderr:\n{proc.stderr}")
    return proc


@pytest.fixture
def write(tmp_path: Path):
    def _write(text: str, name: str = "study.toml") -> Path:
        p = tmp_path / name
        p.write_text(text, encoding="utf-8")
        return p
    return _write


TOY = """
name = "toy"
seeds = [0, 1]
[base]
network = "toy"
dataset = "none"
epochs = 3
"""
