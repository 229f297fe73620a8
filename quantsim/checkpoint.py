"""Checkpoints: arrays in ``.npz`` (read with ``allow_pickle=False``), everything else in JSON.

A checkpoint is a tree of dicts / lists holding numpy arrays, ints, floats (NaN and inf
allowed), strings, bools and None; CuPy arrays are saved as numpy arrays (and load as such).
:func:`save` writes the arrays to ``state-<tag>.npz`` and the tree, with each array replaced by
``{"__array__": key}``, to ``checkpoint.json``. Both are written to a temporary file first and
moved with ``os.replace``; the JSON file goes last and names its npz file, so it is the commit
record: a crash at any moment leaves the previous checkpoint complete. Nothing read back
executes code.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

INDEX = "checkpoint.json"
VERSION = 1
_ARRAY = "__array__"


def _split(tree: Any, path: str, arrays: dict[str, np.ndarray]) -> Any:
    """The JSON-able skeleton of ``tree``; arrays go into ``arrays`` under their path."""
    if isinstance(tree, np.ndarray):
        key = f"a{len(arrays)}"  # npz member names stay simple whatever the tree's keys are
        arrays[key] = tree
        return {_ARRAY: key}
    if isinstance(tree, np.generic):
        return tree.item()
    if tree is None or isinstance(tree, (bool, int, float, str)):
        return tree
    if isinstance(tree, Mapping):
        out = {}
        for k, v in tree.items():
            if not isinstance(k, str) or k == _ARRAY:
                raise ValueError(f"checkpoint keys must be strings other than {_ARRAY!r}: {k!r}")
            out[k] = _split(v, f"{path}/{k}" if path else k, arrays)
        return out
    if isinstance(tree, (list, tuple)):
        return [_split(v, f"{path}/{i}", arrays) for i, v in enumerate(tree)]
    from quantsim.backend import is_device_array, to_numpy

    if is_device_array(tree):  # a CuPy array: saved as numpy, so either device can resume
        return _split(to_numpy(tree), path, arrays)
    raise TypeError(f"cannot checkpoint a {type(tree).__name__} at {path!r}; use arrays or scalars")


def _join(tree: Any, arrays: Mapping[str, np.ndarray]) -> Any:
    if isinstance(tree, dict):
        if set(tree) == {_ARRAY}:
            return arrays[tree[_ARRAY]]
        return {k: _join(v, arrays) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_join(v, arrays) for v in tree]
    return tree


def _atomic_write(path: Path, write: Any) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save(directory: str | Path, tree: Mapping[str, Any], tag: str) -> Path:
    """Write ``tree`` as the current checkpoint of ``directory``; returns the JSON path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {}
    skeleton = _split(dict(tree), "", arrays)
    npz_name = f"state-{tag}.npz"
    old = _current_npz(directory)
    _atomic_write(directory / npz_name, lambda f: np.savez(f, **arrays))
    doc = {"version": VERSION, "arrays": npz_name, "state": skeleton}
    text = json.dumps(doc, indent=1, sort_keys=True).encode("utf-8")
    _atomic_write(directory / INDEX, lambda f: f.write(text))
    if old is not None and old != npz_name:
        (directory / old).unlink(missing_ok=True)
    return directory / INDEX


def _current_npz(directory: Path) -> str | None:
    try:
        return json.loads((directory / INDEX).read_text(encoding="utf-8"))["arrays"]
    except (OSError, ValueError, KeyError):
        return None


def load(directory: str | Path) -> dict[str, Any] | None:
    """The checkpoint tree of ``directory``, or None when it holds no checkpoint."""
    directory = Path(directory)
    index = directory / INDEX
    if not index.exists():
        return None
    doc = json.loads(index.read_text(encoding="utf-8"))
    if doc.get("version") != VERSION:
        raise ValueError(
            f"{index}: checkpoint version {doc.get('version')!r}, this quantsim reads {VERSION}"
        )
    npz = directory / doc["arrays"]
    if Path(doc["arrays"]).name != doc["arrays"]:
        raise ValueError(f"{index}: array file {doc['arrays']!r} must be in the same directory")
    with np.load(npz, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    return _join(doc["state"], arrays)
