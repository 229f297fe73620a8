from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from quantsim.data.safe_pickle import load_restricted_pickle
from quantsim.errors import DataError


class _CallsSystem:
    def __reduce__(self):  # a classic malicious pickle: os.system(...) on load
        return (os.system, ("echo pwned > pwned.txt",))


class _CallsEval:
    def __reduce__(self):
        return (eval, ("__import__('os').getcwd()",))


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_numpy_arrays_and_builtins_load(tmp_path: Path, protocol: int) -> None:
    obj = {b"data": np.arange(12, dtype=np.uint8).reshape(3, 4), b"labels": [1, 2, 3],
           b"f": np.float32(1.5), b"name": b"batch", "s": "text", b"i64": np.arange(3)}
    path = tmp_path / "p"
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    out = load_restricted_pickle(path)
    np.testing.assert_array_equal(out[b"data"], obj[b"data"])
    assert out[b"data"].dtype == np.uint8
    assert out[b"labels"] == [1, 2, 3] and out[b"name"] == b"batch" and out["s"] == "text"
    assert out[b"f"] == np.float32(1.5)


def test_python2_style_global_names(tmp_path: Path) -> None:
    # The official files (Python 2, numpy 1.x) name numpy.core.multiarray._reconstruct.
    data = pickle.dumps(np.arange(4, dtype=np.uint8), protocol=2)
    data = data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    path = tmp_path / "p"
    path.write_bytes(data)
    np.testing.assert_array_equal(load_restricted_pickle(path), np.arange(4))


@pytest.mark.parametrize("payload", [_CallsSystem(), _CallsEval()])
def test_malicious_pickle_is_rejected_without_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, payload: object
) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": payload}, protocol=2))
    calls: list[object] = []
    for module in (os, __import__(os.name)):  # os.system and the posix / nt original
        monkeypatch.setattr(module, "system", lambda *a: calls.append(a) or 0)
    with pytest.raises(DataError, match=r"refusing to unpickle global (posix|nt|__builtin__)\."):
        load_restricted_pickle(path)
    assert calls == []
    assert not (tmp_path / "pwned.txt").exists()


def test_codecs_encode_only_latin1(tmp_path: Path) -> None:
    # _codecs.encode is admitted (Python 3 writes bytes this way at protocol 2), latin-1 only.
    evil = b"\x80\x02c_codecs\nencode\nq\x00X\x03\x00\x00\x00abcX\x04\x00\x00\x00zlibq\x01\x86R."
    path = tmp_path / "p"
    path.write_bytes(evil)
    with pytest.raises(DataError, match="only latin-1"):
        load_restricted_pickle(path)


@pytest.mark.parametrize("cut", [1, 10, 40])
def test_truncated_pickle(tmp_path: Path, cut: int) -> None:
    data = pickle.dumps({b"data": np.zeros(100, np.uint8)}, protocol=2)
    path = tmp_path / "p"
    path.write_bytes(data[:cut])
    with pytest.raises(DataError, match="corrupt or truncated pickle"):
        load_restricted_pickle(path)


def test_missing(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        load_restricted_pickle(tmp_path / "nothing")


@pytest.mark.parametrize(("module", "name"), [("numpy", "load"), ("numpy.core.multiarray", "eval"),
                                              ("builtins", "getattr"), ("subprocess", "Popen")])
def test_only_listed_globals(tmp_path: Path, module: str, name: str) -> None:
    path = tmp_path / "p"
    path.write_bytes(b"\x80\x02c" + f"{module}\n{name}\n".encode() + b"q\x00.")
    with pytest.raises(DataError, match=f"refusing to unpickle global {module}.{name}"):
        load_restricted_pickle(path)
