"""Standard workloads: named network factories with the training defaults of their papers.

::

    import networks
    networks.available()                      # ('autoencoder', 'char-lstm', ...)
    net = networks.build("mlp", (784,), 10, rng=np.random.default_rng(0))
    spec = networks.get("maxout-mlp")         # Workload: factory + defaults + provenance
    spec.defaults.epochs, spec.defaults.optimizer, spec.defaults.view

Every factory has the signature ``factory(input_shape, num_classes, rng, **options)`` and
returns a :class:`quantsim.nn.Sequential` with explicitly named layers (``fc1``, ``conv1``,
``lstm``, ``out``...) so precision overrides can target them. ``input_shape`` is the
per-example shape of the data view the workload asks for (``defaults.view``); for autoencoders
``num_classes`` is ignored (the output has the input's size). See ``networks/README.md`` for the
table of workloads, their sources, defaults and measured reference numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

# quantsim first: it tunes OpenBLAS's threads before numpy loads them.
import quantsim  # noqa: F401

# isort: split
import numpy as np

from quantsim.errors import QuantsimError

__all__ = [
    "Defaults",
    "NetworkError",
    "Workload",
    "available",
    "build",
    "defaults",
    "get",
    "register",
]


class NetworkError(QuantsimError, ValueError):
    """An unknown workload name or a bad workload option."""


@dataclass(frozen=True)
class Defaults:
    """Training defaults of a workload (the runner merges a run config over these).

    - ``epochs``, ``batch_size``: as in the source paper unless ``README.md`` says otherwise
      (several are cut down so a CPU run finishes in minutes);
    - ``optimizer``: a runner optimizer dict, e.g. ``{"name": "sgd", "lr": 0.1, "momentum": 0.9}``
      (``momentum`` may be a schedule dict such as ``{"name": "linear", "start": 0.5,
      "end": 0.7, "epochs": 250}``);
    - ``schedule``: the learning-rate schedule dict (``None``: constant);
    - ``max_col_norm``: the max-column-norm constraint (Goodfellow et al. 2013) or None;
    - ``view``: the data view (``flat`` / ``image`` / ``rows``; text data sets are always flat);
    - ``preprocess``: data preprocessing name (``"default"``: scale pixels to [0, 1]);
    - ``loss``: a name from ``quantsim.nn.LOSSES``;
    - ``metric``: ``"error"`` (classification error), ``"mse"`` (reconstruction mean squared
      error, the trainer's loss) or ``"bpc"`` (bits per character = cross-entropy / ln 2);
    - ``target``: ``"labels"`` (supervised) or ``"input"`` (autoencoders reconstruct X);
    - ``data_options``: extra keyword arguments of ``load_dataset`` (e.g. ``seq_len``).
    """

    epochs: int
    batch_size: int
    optimizer: Mapping[str, Any]
    schedule: Mapping[str, Any] | None = None
    max_col_norm: float | None = None
    view: str = "flat"
    preprocess: str = "default"
    loss: str = "softmax_cross_entropy"
    metric: str = "error"
    target: str = "labels"
    data_options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Workload:
    """A registered workload: its factory, defaults, one-line description and source."""

    name: str
    factory: Callable[..., Any]
    defaults: Defaults
    description: str
    source: str
    options: Mapping[str, Any] = field(default_factory=dict)  # option -> default value
    #: per-option overrides of the defaults, e.g. conv-maxout's CIFAR variant
    variant_defaults: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None

    def defaults_for(self, options: Mapping[str, Any] | None = None) -> Defaults:
        """The defaults, adjusted for ``options`` (e.g. ``variant="cifar"``)."""
        opts = self.check_options(options or {})
        if self.variant_defaults is None:
            return self.defaults
        return replace(self.defaults, **dict(self.variant_defaults(opts)))

    def check_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """``options`` merged over the declared option defaults; unknown names are an error."""
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            known = ", ".join(sorted(self.options)) or "(none)"
            raise NetworkError(
                f"network {self.name!r} has no option {unknown[0]!r}; its options are {known}"
            )
        return {**self.options, **options}


_REGISTRY: dict[str, Workload] = {}


def register(
    name: str,
    *,
    defaults: Defaults,
    description: str,
    source: str,
    options: Mapping[str, Any] | None = None,
    variant_defaults: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator registering ``factory(input_shape, num_classes, rng, **options)`` as ``name``."""

    def deco(factory: Callable[..., Any]) -> Callable[..., Any]:
        if name in _REGISTRY:
            raise ValueError(f"workload {name!r} is registered twice")
        _REGISTRY[name] = Workload(name, factory, defaults, description, source,
                                   dict(options or {}), variant_defaults)
        return factory

    return deco


def available() -> tuple[str, ...]:
    """Names of the registered workloads, sorted."""
    return tuple(sorted(_REGISTRY))


def get(name: str) -> Workload:
    """The :class:`Workload` registered as ``name`` (a NetworkError naming the choices if none)."""
    if not isinstance(name, str) or name not in _REGISTRY:
        raise NetworkError(
            f"unknown network {name!r}; available: {', '.join(available())}"
        )
    return _REGISTRY[name]


def defaults(name: str, **options: Any) -> Defaults:
    """The training defaults of workload ``name`` (for the given options)."""
    return get(name).defaults_for(options)


def build(
    name: str,
    input_shape: tuple[int, ...] | list[int],
    num_classes: int,
    rng: np.random.Generator | int,
    **options: Any,
) -> Any:
    """Build workload ``name`` for per-example ``input_shape`` and ``num_classes`` outputs."""
    w = get(name)
    opts = w.check_options(options)
    shape = tuple(int(s) for s in input_shape)
    if not shape or any(s < 1 for s in shape):
        raise NetworkError(f"input_shape={tuple(input_shape)!r}: expected positive sizes")
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) \
            or num_classes < 1:
        raise NetworkError(f"num_classes={num_classes!r}: expected a positive integer")
    if not isinstance(rng, np.random.Generator):
        rng = np.random.default_rng(rng)
    return w.factory(shape, int(num_classes), rng, **opts)


# Registration happens on import of the workload modules.
from networks import autoencoders, conv, mlp, recurrent  # noqa: E402,F401
