from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from quantsim.data import locate
from quantsim.data.idx import write_idx
from quantsim.data.mnist import (
    MNIST_FILES,
    find_fashion_mnist,
    load_fashion_mnist,
    load_mnist,
)
from quantsim.errors import DataError

from .conftest import write_mnist_dir


@pytest.fixture
def no_debian(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Point the Debian search paths at empty folders (the package may be installed here)."""
    fake = tmp_path / "fake-system"
    monkeypatch.setattr(locate, "DPKG_INFO", fake / "dpkg")
    monkeypatch.setattr(locate, "DEBIAN_DATA_ROOTS", (fake / "datasets",))
    return fake


@pytest.mark.parametrize("gz", [True, False])
def test_load_mnist_values(tmp_path: Path, gz: bool) -> None:
    written = write_mnist_dir(tmp_path / "m", gz=gz)
    raw = load_mnist(tmp_path / "m")
    assert raw.x_train.shape == (60, 1, 28, 28) and raw.x_train.dtype == np.uint8
    assert raw.y_train.shape == (60,) and raw.y_train.dtype == np.int64
    np.testing.assert_array_equal(raw.x_train[:, 0], written[MNIST_FILES[0]])
    np.testing.assert_array_equal(raw.y_test, written[MNIST_FILES[3]])
    assert raw.max_value == 255.0 and raw.num_classes == 10


def test_mnist_from_env_subdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_mnist_dir(tmp_path / "mnist", n_train=5, n_test=2)
    monkeypatch.setenv("QUANTSIM_DATA", str(tmp_path))
    assert load_mnist().x_test.shape == (2, 1, 28, 28)


def test_mnist_missing_message(tmp_path: Path) -> None:
    with pytest.raises(DataError) as info:
        load_mnist(tmp_path)
    msg = str(info.value)
    assert all(name in msg for name in MNIST_FILES)
    assert str(tmp_path / "mnist") in msg and "QUANTSIM_DATA" in msg


def test_mnist_missing_without_any_dir() -> None:
    with pytest.raises(DataError, match="neither data_dir nor .QUANTSIM_DATA"):
        load_mnist()


def test_label_count_mismatch(tmp_path: Path) -> None:
    d = tmp_path / "m"
    write_mnist_dir(d, gz=False)
    write_idx(d / MNIST_FILES[1], np.zeros(59, np.uint8))
    with pytest.raises(DataError, match="59 labels for 60 images"):
        load_mnist(d)


def test_label_out_of_range(tmp_path: Path) -> None:
    d = tmp_path / "m"
    write_mnist_dir(d, gz=False)
    write_idx(d / MNIST_FILES[3], np.full(20, 12, np.uint8))
    with pytest.raises(DataError, match=r"\[0, 10\)"):
        load_mnist(d)


def test_swapped_files_wrong_dims(tmp_path: Path) -> None:
    d = tmp_path / "m"
    write_mnist_dir(d, gz=False)
    (d / MNIST_FILES[0]).rename(d / "tmp")
    (d / MNIST_FILES[1]).rename(d / MNIST_FILES[0])
    (d / "tmp").rename(d / MNIST_FILES[1])
    with pytest.raises(DataError, match="1 dimensions, expected 3"):
        load_mnist(d)


def test_truncated_real_layout(tmp_path: Path) -> None:
    d = tmp_path / "m"
    write_mnist_dir(d, gz=False)
    p = d / MNIST_FILES[2]
    p.write_bytes(p.read_bytes()[:-100])
    with pytest.raises(DataError, match="truncated"):
        load_mnist(d)


def test_fashion_found_through_dpkg_list(tmp_path: Path, no_debian: Path) -> None:
    pkg_dir = tmp_path / "somewhere" / "fashion-mnist"
    write_mnist_dir(pkg_dir, n_train=4, n_test=3)
    (no_debian / "dpkg").mkdir(parents=True)
    listing = ["/.", "/usr", str(pkg_dir)] + [str(pkg_dir / f"{n}.gz") for n in MNIST_FILES]
    (no_debian / "dpkg" / "dataset-fashion-mnist.list").write_text("\n".join(listing) + "\n")
    assert find_fashion_mnist() == pkg_dir
    raw = load_fashion_mnist()
    assert raw.x_train.shape == (4, 1, 28, 28) and raw.classes[9] == "Ankle boot"


def test_fashion_found_in_package_folder(no_debian: Path) -> None:
    write_mnist_dir(no_debian / "datasets" / "fashion-mnist", n_train=4, n_test=3)
    assert find_fashion_mnist() == no_debian / "datasets" / "fashion-mnist"


def test_fashion_env_takes_precedence(
    tmp_path: Path, no_debian: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_mnist_dir(no_debian / "datasets" / "fashion-mnist", n_train=4, n_test=3)
    write_mnist_dir(tmp_path / "mine" / "fashion-mnist", n_train=6, n_test=3)
    monkeypatch.setenv("QUANTSIM_DATA", str(tmp_path / "mine"))
    assert load_fashion_mnist().x_train.shape[0] == 6


def test_fashion_explicit_dir_never_falls_back(tmp_path: Path, no_debian: Path) -> None:
    write_mnist_dir(no_debian / "datasets" / "fashion-mnist", n_train=4, n_test=3)
    with pytest.raises(DataError, match="Fashion-MNIST not found"):
        load_fashion_mnist(tmp_path / "empty")


def test_fashion_missing_message(no_debian: Path) -> None:
    with pytest.raises(DataError) as info:
        load_fashion_mnist()
    msg = str(info.value)
    assert "sudo apt-get install dataset-fashion-mnist" in msg and "QUANTSIM_DATA" in msg
    assert "train-images-idx3-ubyte" in msg


def _real_fashion_dir() -> Path | None:
    """Where the Debian package put Fashion-MNIST (ignoring $QUANTSIM_DATA), if installed."""
    dirs = locate.debian_package_dirs("dataset-fashion-mnist", MNIST_FILES[0], "fashion-mnist")
    return locate.find_dir(dirs, MNIST_FILES)


@pytest.mark.skipif(_real_fashion_dir() is None,
                    reason="Debian package dataset-fashion-mnist not installed")
def test_real_fashion_mnist() -> None:
    raw = load_fashion_mnist()
    assert raw.x_train.shape == (60000, 1, 28, 28) and raw.x_test.shape == (10000, 1, 28, 28)
    assert raw.y_train.shape == (60000,) and raw.y_test.shape == (10000,)
    assert raw.y_train.min() == 0 and raw.y_train.max() == 9
    assert np.bincount(raw.y_test).tolist() == [1000] * 10
