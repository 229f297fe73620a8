from __future__ import annotations

import numpy as np
import pytest

from quantsim.data import preprocess as pp
from quantsim.data.preprocess import GCN, ZCA, Scale, Standardize, make_pipeline
from quantsim.errors import DataError


def _data(n: int = 400, d: int = 6, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(d, d))
    return (rng.normal(size=(n, d)) @ mix + rng.normal(size=d) * 5).astype(np.float32)


def test_scale() -> None:
    out = Scale(255.0)(np.array([[0, 51, 255]], dtype=np.uint8))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[0, 0.2, 1.0]])


def test_standardize_uses_train_statistics_only() -> None:
    train, test = _data(), _data(seed=1) + 100.0
    t = Standardize().fit(train)
    z = t(train)
    np.testing.assert_allclose(z.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(z.std(axis=0), 1, atol=1e-4)
    np.testing.assert_allclose(t.mean, train.mean(axis=0, dtype=np.float64), rtol=1e-6)
    # applying to other data does not refit: shifted test data stays shifted
    assert t(test).mean() > 10


def test_standardize_constant_feature() -> None:
    x = np.ones((5, 2), np.float32)
    x[:, 1] = np.arange(5)
    z = Standardize().fit(x)(x)
    assert np.isfinite(z).all() and np.all(z[:, 0] == 0)


def test_gcn_per_example_mean_zero_and_norm() -> None:
    x = _data()
    z = GCN(scale=55.0)(x)
    np.testing.assert_allclose(z.mean(axis=1), 0, atol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(z, axis=1), 55.0, rtol=1e-5)
    z = GCN(use_std=True)(x)
    np.testing.assert_allclose(z.std(axis=1), 1.0, rtol=1e-5)
    # a constant example does not divide by zero
    assert np.all(GCN()(np.full((1, 4), 3.0, np.float32)) == 0)


def test_zca_whitens_train(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pp, "_CHUNK", 64)  # exercise the blockwise path
    train, test = _data(n=2000, d=8), _data(n=50, d=8, seed=2)
    zca = ZCA(bias=1e-6).fit(train)
    w = zca(train)
    cov = np.cov(w, rowvar=False, bias=True)
    np.testing.assert_allclose(cov, np.eye(8), atol=1e-3)
    np.testing.assert_allclose(zca.mean, train.mean(axis=0), rtol=1e-5, atol=1e-5)
    # zero-phase: the whitening matrix is symmetric
    np.testing.assert_allclose(zca.matrix, zca.matrix.T, atol=1e-10)
    assert zca(test).shape == (50, 8) and zca(test).dtype == np.float32


def test_unfitted_and_degenerate() -> None:
    with pytest.raises(DataError, match="fit"):
        ZCA()(np.zeros((2, 2)))
    with pytest.raises(DataError, match="fit"):
        Standardize()(np.zeros((2, 2)))
    with pytest.raises(DataError, match="at least 2"):
        ZCA().fit(np.zeros((1, 3)))
    with pytest.raises(DataError, match="singular"):
        ZCA(bias=0.0).fit(np.zeros((5, 3)))
    with pytest.raises(DataError, match=r"\(N, D\)"):
        GCN()(np.zeros((2, 2, 2)))


def test_pipeline_fits_on_train_only() -> None:
    train, other = _data(), _data(seed=5) * 3
    pipe = make_pipeline("scale+standardize", max_value=2.0)
    out = pipe.fit_apply(train)
    np.testing.assert_allclose(out.mean(axis=0), 0, atol=1e-5)
    std = pipe.steps[1]
    np.testing.assert_allclose(std.mean, (train / 2.0).mean(axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(pipe(other), ((other / 2.0) - std.mean) / std.std, rtol=1e-4,
                               atol=1e-4)


def test_make_pipeline_names_and_objects() -> None:
    assert make_pipeline(None).steps == ()
    assert make_pipeline("none").steps == ()
    steps = make_pipeline("maxout").steps
    assert isinstance(steps[0], GCN) and steps[0].scale == 55.0 and isinstance(steps[1], ZCA)
    z = ZCA(bias=0.5)
    assert make_pipeline(["scale", z]).steps[1] is z
    assert isinstance(make_pipeline("Standardise").steps[0], Standardize)
    with pytest.raises(DataError, match="known: none, scale"):
        make_pipeline("whiten")
    with pytest.raises(DataError, match="neither a name"):
        make_pipeline([3])
