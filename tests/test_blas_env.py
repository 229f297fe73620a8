"""The warning for numpy's OpenBLAS loaded before quantsim (quantsim/_blas_env.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from quantsim._blas_env import numpy_blas_name

ROOT = Path(__file__).resolve().parents[1]

needs_openblas = pytest.mark.skipif(
    "openblas" not in numpy_blas_name().lower() or (os.cpu_count() or 1) < 2,
    reason="the warning concerns numpy built with OpenBLAS on more than one core",
)


def _stderr_of(code: str, **env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    clean.update(env)
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=clean,
                          capture_output=True, text=True, timeout=120, check=True)
    return done.stderr


@needs_openblas
def test_numpy_first_warns_with_the_fix() -> None:
    err = _stderr_of("import numpy\nimport quantsim")
    assert "PerformanceWarning" in err
    assert "Import quantsim before numpy" in err and "OPENBLAS_THREAD_TIMEOUT=4" in err
    assert err.count("PerformanceWarning") == 1


@needs_openblas
@pytest.mark.parametrize("code, env", [
    ("import quantsim\nimport numpy", {}),
    ("import numpy\nimport quantsim", {"OPENBLAS_THREAD_TIMEOUT": "28"}),  # the user's choice
    ("import networks", {}),  # the workloads import quantsim before numpy
    ("import numpy\nimport quantsim", {"OPENBLAS_NUM_THREADS": "1"}),  # no worker threads
])
def test_no_warning_when_openblas_got_the_setting_or_the_user_chose(code, env) -> None:
    assert "PerformanceWarning" not in _stderr_of(code, **env)


def test_numpy_blas_name_is_a_string() -> None:
    assert isinstance(numpy_blas_name(), str)
