"""Shared fixtures for the independent number-format tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

ORACLE_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "oracles"


@pytest.fixture(scope="session")
def cpfloat():
    path = ORACLE_DIR / "cpfloat_vectors.npz"
    if not path.exists():
        pytest.skip(f"oracle vectors not found at {path}")
    with np.load(path) as d:
        return {k: d[k] for k in d.files}


@pytest.fixture(scope="session")
def chop():
    path = ORACLE_DIR / "chop_vectors.npz"
    if not path.exists():
        pytest.skip(f"oracle vectors not found at {path}")
    with np.load(path) as d:
        return {k: d[k] for k in d.files}


@pytest.fixture
def rng():
    return np.random.default_rng(20240611)
