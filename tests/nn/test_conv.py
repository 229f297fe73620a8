from __future__ import annotations

import numpy as np
import pytest

from quantsim import nn

from .helpers import sgd_losses


def naive_conv(X, W, b, stride, padding):
    (sh, sw), (ph, pw) = stride, padding
    Xp = np.pad(X, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    N, _, H, Wd = Xp.shape
    Co, _, kh, kw = W.shape
    Ho, Wo = (H - kh) // sh + 1, (Wd - kw) // sw + 1
    Y = np.zeros((N, Co, Ho, Wo))
    for n in range(N):
        for o in range(Co):
            for i in range(Ho):
                for j in range(Wo):
                    patch = Xp[n, :, i * sh : i * sh + kh, j * sw : j * sw + kw]
                    Y[n, o, i, j] = (patch * W[o]).sum() + b[o]
    return Y


@pytest.mark.parametrize("kernel,stride,padding", [(3, 1, 0), (3, 1, 1), ((2, 3), (2, 1), (1, 0)),
                                                   (1, 2, 0), (5, 3, 2)])
def test_matches_naive_convolution(kernel, stride, padding) -> None:
    rng = np.random.default_rng(0)
    conv = nn.Conv2d(3, 4, kernel, rng=1, stride=stride, padding=padding, dtype=np.float64)
    conv.params["b"].value[...] = rng.standard_normal(4)
    X = rng.standard_normal((2, 3, 7, 6))
    Y = conv.predict(X)
    ref = naive_conv(X, conv.params["W"].value, conv.params["b"].value, conv.stride, conv.padding)
    assert Y.shape == ref.shape and Y.flags.c_contiguous
    np.testing.assert_allclose(Y, ref, rtol=1e-12, atol=1e-12)


def test_bad_inputs_are_reported() -> None:
    conv = nn.Conv2d(3, 4, 3, rng=0, name="c1")
    with pytest.raises(ValueError, match="c1: expected 3 input channels, got 2"):
        conv.forward(np.zeros((1, 2, 5, 5), np.float32), True)
    with pytest.raises(ValueError, match=r"c1: expected input of shape \(N, 3, H, W\)"):
        conv.forward(np.zeros((3, 5, 5), np.float32), True)
    with pytest.raises(ValueError, match="smaller than the kernel"):
        conv.forward(np.zeros((1, 3, 2, 2), np.float32), True)
    with pytest.raises(ValueError, match="stride=0"):
        nn.Conv2d(1, 1, 3, rng=0, stride=0)


def test_conv_learns_a_teacher_filter() -> None:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((8, 2, 6, 6)).astype(np.float32)
    teacher = nn.Conv2d(2, 3, 3, rng=9, padding=1)
    T = teacher.predict(X)
    losses = sgd_losses(nn.Conv2d(2, 3, 3, rng=1, padding=1), X, T, nn.mse, lr=0.3, steps=30)
    assert losses[-1] < 0.2 * losses[0]
