"""Layers, networks and losses of the quantsim engine.

Every layer is explicit like hardware: ``Y, backprop = layer.forward(X, train)``; the closure
``backprop(dY) -> dX`` accumulates parameter gradients. All tensors pass through the layer's
points object ``layer.q`` (identity until ``net.bind(precision, seed)``).
"""

from __future__ import annotations

from quantsim.nn.activations import ReLU, Sigmoid, Tanh
from quantsim.nn.base import IdentityPoints, Layer, Param
from quantsim.nn.batchnorm import BatchNorm1d, BatchNorm2d
from quantsim.nn.conv import Conv2d
from quantsim.nn.dropout import Dropout
from quantsim.nn.embedding import Embedding
from quantsim.nn.linear import Linear
from quantsim.nn.losses import (
    LOSSES,
    binary_cross_entropy_with_logits,
    get_loss,
    mse,
    softmax_cross_entropy,
)
from quantsim.nn.maxout import Maxout, MaxoutPool
from quantsim.nn.network import Sequential
from quantsim.nn.pooling import AvgPool2d, MaxPool2d
from quantsim.nn.recurrent import GRU, LSTM
from quantsim.nn.reshape import Flatten, Reshape

__all__ = [
    "GRU",
    "LOSSES",
    "LSTM",
    "AvgPool2d",
    "BatchNorm1d",
    "BatchNorm2d",
    "Conv2d",
    "Dropout",
    "Embedding",
    "Flatten",
    "IdentityPoints",
    "Layer",
    "Linear",
    "MaxPool2d",
    "Maxout",
    "MaxoutPool",
    "Param",
    "ReLU",
    "Reshape",
    "Sequential",
    "Sigmoid",
    "Tanh",
    "binary_cross_entropy_with_logits",
    "get_loss",
    "mse",
    "softmax_cross_entropy",
]
