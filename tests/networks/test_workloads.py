"""Every registered workload builds, runs forward/backward with the right shapes and learns a
tiny problem; registry and option errors are clear."""

from __future__ import annotations

import numpy as np
import pytest

import networks
from networks import NetworkError
from quantsim.nn import get_loss
from quantsim.optim import Adam

# name -> (per-example input shape, options for a small/fast build)
SMALL = {
    "mlp": ((64,), {"hidden": [32, 32]}),
    "maxout-mlp": ((64,), {"units": 16, "pieces": 3}),
    "relu-mlp-n1": ((16,), {"dropout": 0.5, "width": 0.02}),
    "relu-mlp-n2": ((16,), {"width": 0.02}),
    "lenet5": ((1, 16, 16), {}),
    "conv-maxout": ((1, 20, 20), {"width": 0.1, "dropout": 0.0, "input_dropout": 0.0}),
    "lstm-rows": ((8, 8), {"hidden": 16}),
    "char-lstm": ((12,), {"hidden": 16, "embed": 8}),
    "autoencoder": ((64,), {"hidden": 16}),
    "denoising-autoencoder": ((64,), {"hidden": 16}),
    "sparse-autoencoder": ((64,), {"hidden": 16}),
}
NUM_CLASSES = 5


def test_every_workload_is_covered_and_documented():
    assert set(networks.available()) == set(SMALL)
    for name in networks.available():
        w = networks.get(name)
        d = w.defaults
        assert w.description and w.source
        assert d.epochs >= 1 and d.batch_size >= 1 and d.optimizer["name"] in ("sgd", "adam")
        assert d.metric in ("error", "mse", "bpc") and d.view in ("flat", "image", "rows")


def _data(name, shape, n=24, seed=0):
    rng = np.random.default_rng(seed)
    if name == "char-lstm":
        # counting sequences: the next character is always (current + 1) mod C
        X = (rng.integers(0, NUM_CLASSES, size=(n, 1)) + np.arange(shape[0])) % NUM_CLASSES
        return X, (X + 1) % NUM_CLASSES
    X = rng.random((n, *shape), dtype=np.float32)
    if networks.defaults(name).target == "input":
        return X, X
    return X, rng.integers(0, NUM_CLASSES, size=n)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_forward_backward_shapes(name):
    shape, opts = SMALL[name]
    net = networks.build(name, shape, NUM_CLASSES, np.random.default_rng(0), **opts)
    X, y = _data(name, shape, n=3)
    Y, backprop = net.forward(X, train=True)
    d = networks.defaults(name, **opts)
    if d.target == "input":
        assert Y.shape == X.shape
    elif name == "char-lstm":
        assert Y.shape == (3, shape[0], NUM_CLASSES)
    else:
        assert Y.shape == (3, NUM_CLASSES)
    assert Y.dtype == np.float32 and np.isfinite(Y).all()
    dX = backprop(np.ones_like(Y))
    if name != "char-lstm":  # integer inputs have no gradient
        assert dX.shape == X.shape
    grads = [p.grad for _, _, p in net.params()]
    assert grads and all(np.isfinite(g).all() for g in grads)
    assert any(np.abs(g).sum() > 0 for g in grads)
    # layer names are explicit and unique (precision overrides target them)
    names = [layer.name for layer in net.layers()]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("name", sorted(SMALL))
def test_learns_a_tiny_problem(name):
    shape, opts = SMALL[name]
    net = networks.build(name, shape, NUM_CLASSES, np.random.default_rng(1), **opts)
    loss_fn = get_loss(networks.defaults(name, **opts).loss)
    X, y = _data(name, shape, n=16, seed=2)
    opt = Adam(net, 1e-2)
    before = loss_fn(net.forward(X, train=False)[0], y)[0]
    for _ in range(25):
        opt.zero_grad()
        Y, backprop = net.forward(X, train=True)
        _, dY = loss_fn(Y, y)
        backprop(dY)
        opt.step()
    after = loss_fn(net.forward(X, train=False)[0], y)[0]
    assert after < 0.9 * before, (before, after)


def test_build_is_deterministic_in_the_rng():
    a = networks.build("mlp", (20,), 3, np.random.default_rng(5), hidden=[8])
    b = networks.build("mlp", (20,), 3, 5, hidden=[8])
    for (_, _, pa), (_, _, pb) in zip(a.params(), b.params(), strict=True):
        np.testing.assert_array_equal(pa.value, pb.value)


def test_published_sizes():
    mlp = networks.build("mlp", (784,), 10, 0)
    assert [lay.params["W"].shape for lay in mlp.layers() if "W" in lay.params] == [
        (784, 1000), (1000, 1000), (1000, 10)]
    mx = networks.build("maxout-mlp", (784,), 10, 0)
    assert mx["maxout1"].units == 240 and mx["maxout1"].pieces == 5
    assert mx["drop0"].p == pytest.approx(0.2) and mx["drop1"].p == pytest.approx(0.5)
    assert networks.defaults("maxout-mlp").max_col_norm == pytest.approx(1.9365)
    lenet = networks.build("lenet5", (1, 28, 28), 10, 0)
    shapes = [lay.params["W"].shape for lay in lenet.layers() if "W" in lay.params]
    assert shapes == [(6, 1, 5, 5), (16, 6, 5, 5), (400, 120), (120, 84), (84, 10)]
    cifar = networks.build("conv-maxout", (3, 32, 32), 10, 0, variant="cifar")
    assert [cifar[f"conv{k}"].out_channels for k in (1, 2, 3)] == [128, 256, 256]
    assert cifar["fc_maxout"].units == 400 and cifar["fc_maxout"].pieces == 5
    assert networks.defaults("conv-maxout", variant="cifar").preprocess == "maxout"
    n1 = networks.build("relu-mlp-n1", (784,), 10, 0, dropout=0.5)
    assert [n1[f"fc{k}"].out_features for k in (1, 2, 3)] == [1000, 2000, 3000]
    n2 = networks.build("relu-mlp-n2", (784,), 10, 0)
    assert [n2[f"fc{k}"].out_features for k in (1, 2, 3)] == [2000, 2000, 2000]
    rows = networks.build("lstm-rows", (28, 28), 10, 0)
    assert rows["lstm"].hidden_size == 128 and rows["lstm"].input_size == 28


def test_sparse_autoencoder_threshold_variant_is_sparse():
    net = networks.build("sparse-autoencoder", (64,), 1, 0, hidden=32, sparsity="threshold",
                         theta=0.5)
    X = np.random.default_rng(0).random((10, 64), dtype=np.float32)
    h = net.forward_layers(X, False)  # whole net runs
    assert h[0].shape == (10, 64)
    code = net["code"].forward(net["encoder"].forward(X, False)[0], False)[0]
    assert (code == 0).mean() > 0.3


def test_denoising_autoencoder_corrupts_only_in_training():
    net = networks.build("denoising-autoencoder", (50,), 1, 0, noise=0.5)
    X = np.ones((4, 50), dtype=np.float32)
    noisy, _ = net["noise"].forward(X, train=True)
    clean, _ = net["noise"].forward(X, train=False)
    assert 0.3 < (noisy == 0).mean() < 0.7
    np.testing.assert_array_equal(clean, X)


def test_errors_are_clear():
    with pytest.raises(NetworkError, match="unknown network 'mlpp'.*available: .*mlp"):
        networks.build("mlpp", (10,), 2, 0)
    with pytest.raises(NetworkError, match="no option 'widht'.*width"):
        networks.build("conv-maxout", (1, 28, 28), 10, 0, widht=2)
    with pytest.raises(NetworkError, match="view='image'"):
        networks.build("lenet5", (784,), 10, 0)
    with pytest.raises(NetworkError, match="too small"):
        networks.build("lenet5", (1, 8, 8), 10, 0)
    with pytest.raises(NetworkError, match="variant='gpu'"):
        networks.build("conv-maxout", (1, 28, 28), 10, 0, variant="gpu")
    with pytest.raises(NetworkError, match="dropout=1.5"):
        networks.build("relu-mlp-n2", (8,), 2, 0, dropout=1.5)
