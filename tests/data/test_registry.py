from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from quantsim.data import load_dataset
from quantsim.data.preprocess import GCN, ZCA
from quantsim.errors import DataError

from .conftest import MNIST_NAMES, write_cifar_dir, write_mnist_dir


def test_unknown_name_lists_known() -> None:
    with pytest.raises(DataError) as info:
        load_dataset("imagenet")
    msg = str(info.value)
    for name in ("fashion-mnist", "mnist", "mnist-5k", "digits", "cifar10", "svhn", "text:PATH"):
        assert name in msg


def test_mnist_default_split_and_types(tmp_path: Path) -> None:
    written = write_mnist_dir(tmp_path / "mnist", n_train=30, n_test=7, size=5)
    ds = load_dataset("mnist", data_dir=tmp_path)
    x, y = ds.train
    assert x.dtype == np.float32 and y.dtype == np.int64
    # small sets: the last 10% of the training images are the validation split
    assert (len(x), len(ds.val[0]), len(ds.test[0])) == (27, 3, 7)
    np.testing.assert_allclose(x, written[MNIST_NAMES[0]][:27].reshape(27, -1) / 255.0,
                               rtol=1e-6)
    np.testing.assert_array_equal(ds.val[1], written[MNIST_NAMES[1]][27:])
    assert ds.input_shape == (25,) and ds.num_classes == 10 and ds.name == "mnist"
    assert "MNIST" in ds.description and ds.image_shape == (1, 5, 5)


def test_mnist_full_size_default_is_last_10000(tmp_path: Path) -> None:
    write_mnist_dir(tmp_path / "mnist", n_train=25_000, n_test=2, size=2)
    ds = load_dataset("mnist", data_dir=tmp_path, preprocess="none")
    assert (len(ds.train[0]), len(ds.val[0])) == (15_000, 10_000)


@pytest.mark.parametrize(("validation", "n_val"), [(0, 0), (5, 5), (0.5, 15), (0.0, 0)])
def test_validation_and_limit(tmp_path: Path, validation: int | float, n_val: int) -> None:
    write_mnist_dir(tmp_path / "mnist", n_train=30, n_test=7, size=4)
    ds = load_dataset("mnist", data_dir=tmp_path, validation=validation)
    assert len(ds.val[0]) == n_val and len(ds.train[0]) == 30 - n_val
    assert ds.val[0].shape[1:] == (16,)
    limited = load_dataset("mnist", data_dir=tmp_path, validation=validation, limit=4)
    np.testing.assert_array_equal(limited.train[0], ds.train[0][:4])
    np.testing.assert_array_equal(limited.val[0], ds.val[0])  # limit touches training only


@pytest.mark.parametrize("validation", [30, 31, -1, 1.0, "10%", True])
def test_bad_validation(tmp_path: Path, validation: object) -> None:
    write_mnist_dir(tmp_path / "mnist", n_train=30, n_test=7, size=4)
    with pytest.raises(DataError, match="validation"):
        load_dataset("mnist", data_dir=tmp_path, validation=validation)


@pytest.mark.parametrize("limit", [0, -3, 2.5])
def test_bad_limit(limit: object) -> None:
    with pytest.raises(DataError, match="limit"):
        load_dataset("digits", limit=limit)


def test_views(tmp_path: Path) -> None:
    write_cifar_dir(tmp_path / "cifar-10-batches-py", per_batch=4)
    flat = load_dataset("cifar10", data_dir=tmp_path, validation=2)
    image = load_dataset("cifar10", data_dir=tmp_path, validation=2, view="image")
    rows = load_dataset("cifar10", data_dir=tmp_path, validation=2, view="rows")
    assert flat.train[0].shape == (18, 3072) and flat.input_shape == (3072,)
    assert image.train[0].shape == (18, 3, 32, 32) and image.input_shape == (3, 32, 32)
    assert rows.test[0].shape == (4, 32, 96) and rows.input_shape == (32, 96)
    np.testing.assert_array_equal(image.train[0].reshape(18, -1), flat.train[0])
    np.testing.assert_array_equal(rows.val[0][:, 5, 3 * 7:3 * 7 + 3], image.val[0][:, :, 5, 7])
    with pytest.raises(DataError, match="unknown view"):
        load_dataset("cifar10", data_dir=tmp_path, view="columns")


def test_preprocessing_statistics_from_train_only(tmp_path: Path) -> None:
    write_cifar_dir(tmp_path / "cifar-10-batches-py", per_batch=6)
    ds = load_dataset("cifar10", data_dir=tmp_path, validation=10, preprocess="standardize")
    std = ds.preprocessing.steps[0]
    x_all = load_dataset("cifar10", data_dir=tmp_path, validation=10, preprocess="none")
    np.testing.assert_allclose(std.mean, x_all.train[0].mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(ds.train[0].mean(axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(ds.test[0], (x_all.test[0] - std.mean) / std.std, rtol=1e-4,
                               atol=1e-4)
    assert x_all.train[0].max() > 1  # "none" keeps raw pixel values


def test_zca_through_registry(tmp_path: Path) -> None:
    ds = load_dataset("digits", preprocess=[GCN(scale=55.0), ZCA(bias=1e-6)], validation=0.2)
    x = ds.train[0]
    np.testing.assert_allclose(x.mean(axis=0), 0, atol=1e-4)
    cov = np.cov(x, rowvar=False, bias=True)
    # digits has constant-zero pixels and GCN removes one more dimension: the other 61 are white
    eig = np.sort(np.linalg.eigvalsh(cov))
    np.testing.assert_allclose(eig[-61:], 1.0, atol=0.01)
    assert np.all(eig[:-61] < 1e-3)


def test_gcn_per_example_through_registry() -> None:
    ds = load_dataset("digits", preprocess="gcn")
    np.testing.assert_allclose(ds.val[0].mean(axis=1), 0, atol=1e-5)


def test_missing_dataset_messages(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="cifar-10-python.tar.gz"):
        load_dataset("cifar10", data_dir=tmp_path)
    with pytest.raises(DataError, match="train_32x32.mat"):
        load_dataset("svhn", data_dir=tmp_path)
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte"):
        load_dataset("mnist", data_dir=tmp_path)


def test_text_dataset(tmp_path: Path) -> None:
    p = tmp_path / "corpus.txt"
    text = "the quick brown fox jumps over the lazy dog. " * 50
    p.write_text(text)
    ds = load_dataset(f"text:{p}", seq_len=20)
    x, y = ds.train
    assert x.dtype == np.int64 and x.shape[1] == 20 and ds.input_shape == (20,)
    np.testing.assert_array_equal(x[:, 1:], y[:, :-1])
    assert ds.num_classes == len(set(text)) == len(ds.vocabulary)
    assert ds.vocabulary.decode(x[0]) == text[:20]
    assert len(ds.val[0]) == (round(0.05 * len(text)) - 1) // 20
    assert len(load_dataset(f"text:{p}", seq_len=20, limit=3).train[0]) == 3
    with pytest.raises(DataError, match="no preprocessing"):
        load_dataset(f"text:{p}", preprocess="zca")
    with pytest.raises(DataError, match="smaller seq_len"):
        load_dataset(f"text:{p}", seq_len=10_000)
    with pytest.raises(DataError, match="not found"):
        load_dataset(f"text:{tmp_path / 'missing.txt'}")
