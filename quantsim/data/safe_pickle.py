"""A restricted unpickler for CIFAR-10's python batches.

The batches are pickled dicts of numpy arrays, lists, ints and byte strings. Unpickling an
arbitrary pickle runs arbitrary code, so :class:`RestrictedUnpickler` resolves only the globals
that numpy array reconstruction needs and rejects every other global with a
:class:`~quantsim.errors.DataError` *before* anything is called.

Admitted globals (old and new numpy module paths):
- ``numpy.core.multiarray._reconstruct`` / ``numpy._core.multiarray._reconstruct``,
  ``numpy.ndarray``, ``numpy.dtype`` (protocol 2 to 4, as the original Python 2 files are);
- ``numpy.core.numeric._frombuffer`` / ``numpy._core.numeric._frombuffer`` (protocol 5);
- ``numpy.core.multiarray.scalar`` / ``numpy._core.multiarray.scalar`` (numpy scalar labels);
- ``_codecs.encode`` limited to latin-1 (how Python 3 writes ``bytes`` at protocol 2).
"""

from __future__ import annotations

import codecs
import io
import os
import pickle
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from quantsim.errors import DataError

__all__ = ["RestrictedUnpickler", "load_restricted_pickle"]


def _np_core(module: str, name: str) -> Any:
    # numpy >= 2 moved numpy.core to numpy._core; resolve without importing the deprecated alias.
    try:
        from numpy import _core as core  # type: ignore[attr-defined]
    except ImportError:  # numpy < 2
        from numpy import core  # type: ignore[no-redef]
    return getattr(getattr(core, module), name)


def _latin1_encode(obj: str, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    if codecs.lookup(encoding).name != "iso8859-1":
        raise DataError(f"pickle asks _codecs.encode for encoding {encoding!r}; only latin-1 "
                        "is admitted (CIFAR batches never need another).")
    return codecs.encode(obj, "latin-1", errors)


_ALLOWED: dict[tuple[str, str], Callable[[], Any]] = {
    ("numpy", "ndarray"): lambda: np.ndarray,
    ("numpy", "dtype"): lambda: np.dtype,
    ("_codecs", "encode"): lambda: _latin1_encode,
}
for _pkg in ("numpy.core", "numpy._core"):
    for _mod, _name in (("multiarray", "_reconstruct"), ("multiarray", "scalar"),
                        ("numeric", "_frombuffer")):
        _ALLOWED[(f"{_pkg}.{_mod}", _name)] = partial(_np_core, _mod, _name)


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler whose ``find_class`` admits only numpy array reconstruction (see module doc)."""

    def __init__(self, file: io.BufferedIOBase, *, source: str = "<pickle>") -> None:
        super().__init__(file, encoding="bytes")
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        factory = _ALLOWED.get((module, name))
        if factory is None:
            raise DataError(
                f"{self._source}: refusing to unpickle global {module}.{name}: CIFAR-10 batches "
                "hold only numpy arrays, lists and strings. The file is not a genuine CIFAR-10 "
                "batch (possibly malicious); re-download it from the official source."
            )
        return factory()

    def persistent_load(self, pid: Any) -> Any:
        raise DataError(f"{self._source}: refusing persistent id {pid!r} in pickle.")


def load_restricted_pickle(path: str | os.PathLike[str]) -> Any:
    """Unpickle ``path`` with :class:`RestrictedUnpickler`; any malformed input is a DataError.

    Byte strings from Python 2 pickles stay ``bytes`` (``encoding="bytes"``), so dict keys are
    ``b"data"``, ``b"labels"`` as in the official CIFAR-10 loading recipe.
    """
    p = Path(path)
    try:
        with open(p, "rb") as f:
            return RestrictedUnpickler(f, source=str(p)).load()
    except DataError:
        raise
    except FileNotFoundError as e:
        raise DataError(f"{p}: file not found.") from e
    except Exception as e:  # any other unpickling failure means a corrupt file
        raise DataError(
            f"{p}: corrupt or truncated pickle ({type(e).__name__}: {e}). Re-download the file."
        ) from e
