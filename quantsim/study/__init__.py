"""Precision studies: study files (TOML), a resumable SQLite results store, executors.

Importing this package is cheap (no numpy, pandas or numba): worker processes import
:mod:`quantsim.study._child` first and must set their thread counts before numpy loads.

    from quantsim.study import load_study, run_study, load_results
    study = load_study("studies/smoke.toml")
    summary = run_study(study, store="smoke.sqlite", workers=2)
    df = load_results("smoke.sqlite")
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Study": "spec",
    "StudyRun": "spec",
    "load_study": "spec",
    "parse_study": "spec",
    "list_studies": "spec",
    "Store": "store",
    "STATUSES": "store",
    "default_store_path": "store",
    "load_results": "store",
    "load_history": "store",
    "load_stats": "store",
    "export": "store",
    "run_study": "executors",
    "RunSummary": "executors",
    "study_status": "executors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'quantsim.study' has no attribute {name!r}")
    return getattr(importlib.import_module(f"quantsim.study.{module}"), name)
