"""Parameters, the layer base class and the identity quantization points.

A layer is explicit like hardware: ``forward(X, train) -> (Y, backprop)`` computes the output and
returns a closure; ``backprop(dY) -> dX`` returns the error for the layer below and *adds* the
parameter gradients into ``Param.grad`` (with :meth:`Param.add_grad`). Every tensor a layer
produces goes through its points object ``layer.q`` (see :class:`IdentityPoints`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from quantsim.nn._xp import array_module

Array = Any  # numpy.ndarray on the CPU, cupy.ndarray on a GPU
Backprop = Callable[[Array], Array]

__all__ = ["Array", "Backprop", "IdentityPoints", "Layer", "Param", "check_name", "plain_matmul"]


class Param:
    """A trainable tensor: ``value`` is the master copy, ``grad`` (same shape/dtype) accumulates.

    :meth:`zero_grad` only marks the gradient as zero; the buffer is cleared when ``grad`` is
    next read, or replaced by the first gradient :meth:`add_grad` receives, so a step that
    computes each gradient once neither clears nor adds into it."""

    __slots__ = ("value", "_grad", "_grad_is_zero")

    def __init__(self, value: Array) -> None:
        self.value = value
        self._grad: Array | None = array_module(value).zeros_like(value)
        self._grad_is_zero = False

    @property
    def grad(self) -> Array | None:
        """The accumulated gradient (None for a parameter that takes none)."""
        if self._grad_is_zero:
            self._grad[...] = 0
            self._grad_is_zero = False
        return self._grad

    @grad.setter
    def grad(self, g: Array | None) -> None:
        self._grad = g
        self._grad_is_zero = False

    def add_grad(self, g: Array) -> None:
        """``grad += g`` for a gradient ``g`` that the caller has just made and holds no other
        reference to. After :meth:`zero_grad`, a C-contiguous ``g`` of the parameter's shape
        and dtype becomes the gradient itself, as a product written into a gradient buffer
        is in hardware: no clearing pass, no addition pass, and a -0.0 in ``g`` stays -0.0
        (an addition into a cleared buffer would give +0.0; nothing else can differ). So
        ``grad`` may be a new array after a backward pass: read it again instead of keeping a
        reference across steps."""
        if (self._grad_is_zero and g.shape == self._grad.shape and g.dtype == self._grad.dtype
                and g.flags.c_contiguous and type(g) is type(self._grad)):
            self._grad = g
            self._grad_is_zero = False
            return
        grad = self.grad
        grad += g

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.value.shape)

    @property
    def dtype(self) -> np.dtype:
        return self.value.dtype

    def zero_grad(self) -> None:
        """Reset the accumulated gradient to zero (lazily: see the class docstring)."""
        if self._grad is not None:
            self._grad_is_zero = True

    def astype(self, dtype: Any) -> None:
        """Convert the value to ``dtype`` and reset the gradient (a fresh zero array)."""
        self.value = self.value.astype(dtype)
        self.grad = array_module(self.value).zeros_like(self.value)

    def to_device(self, device: Any) -> None:
        """Move the value to ``device`` (a ``backend.Device``) and reset the gradient there."""
        self.value = device.asarray(self.value)
        self.grad = array_module(self.value).zeros_like(self.value)

    def __repr__(self) -> str:
        return f"Param(shape={self.shape}, dtype={self.dtype})"


def _identity(x: Array, out: Array | None) -> Array:
    if out is not None and out is not x:
        out[...] = x
        return out
    return x


class IdentityPoints:
    """The points of an unbound layer: every role returns its argument unchanged.

    This is also the interface a bound layer's ``LayerPoints`` provides (quantsim.precision).
    """

    # ``tag`` names the tensor (a parameter's name) for stateful formats; ignored here.
    def inputs(self, X: Array, out: Array | None = None, *, tag: str | None = None) -> Array:
        return _identity(X, out)

    def weights(self, W: Array, out: Array | None = None, *, tag: str | None = None) -> Array:
        return _identity(W, out)

    def activations(self, Y: Array, out: Array | None = None, *, tag: str | None = None
                    ) -> Array:
        return _identity(Y, out)

    def errors(self, dY: Array, out: Array | None = None, *, tag: str | None = None) -> Array:
        return _identity(dY, out)

    def gradients(self, dW: Array, out: Array | None = None, *, tag: str | None = None
                  ) -> Array:
        return _identity(dW, out)

    def updates(self, W: Array, out: Array | None = None, *, tag: str | None = None) -> Array:
        return _identity(W, out)

    def optimizer_state(self, m: Array, out: Array | None = None, *, tag: str | None = None
                        ) -> Array:
        return _identity(m, out)

    def matmul(self, A: Array, B: Array) -> Array:
        from quantsim.nn._blas import matmul

        return matmul(A, B)

    def __repr__(self) -> str:
        return "IdentityPoints()"


def plain_matmul(q: Any, dtype: Any) -> bool:
    """True when ``q.matmul`` on ``dtype`` operands is a plain BLAS product (no accumulator
    point that counts, draws random numbers or keeps statistics), so leaving out a product
    whose result is unused changes nothing observable."""
    if isinstance(q, IdentityPoints):
        return True
    acc = getattr(q, "accumulator", None)
    return acc is not None and hasattr(acc, "is_identity") and bool(acc.is_identity(dtype))


def passes_through(q: Any, role: str, dtype: Any) -> bool:
    """True when calling ``q.<role>`` on ``dtype`` arrays has no effect at all (the value is
    unchanged and nothing is counted or observed), so a fused kernel may skip the call."""
    if type(q) is IdentityPoints:  # subclasses (e.g. recorders) may do something
        return True
    point = getattr(q, role, None)
    if point is None or not hasattr(point, "is_identity") or not point.is_identity(dtype):
        return False
    return not (getattr(point, "observe_identity", True) and getattr(point, "collect_stats", True))


def writes_out(point: Any) -> bool:
    """Whether ``point`` declares (class attribute ``writes_out = True``) that it writes its
    result into ``out=`` when given one and keeps no reference to its argument, so that a
    layer may pass it work arrays that it reuses."""
    return getattr(point, "writes_out", False) is True


def check_name(name: object) -> str:
    """Validate a user-given layer name (non-empty str without '.', used in state_dict keys)."""
    if not isinstance(name, str) or not name or "." in name or name != name.strip():
        raise ValueError(
            f"invalid layer name {name!r}: use a non-empty string without '.' or surrounding "
            "whitespace, e.g. 'fc1'"
        )
    return name


class Layer:
    """Base class of all layers.

    Attributes:
        name: unique within a network; auto-generated (``linear0``, ``conv1``...) by the network
            unless given with ``name=``.
        params: ``dict[str, Param]`` of trainable tensors (empty for parameter-free layers).
        q: the layer's points object; :class:`IdentityPoints` until bound.
    """

    #: prefix of auto-generated names, ``<prefix><k>``
    prefix = "layer"

    def __init__(self, name: str | None = None) -> None:
        self.auto_named = name is None
        self.name = f"{self.prefix}0" if name is None else check_name(name)
        self.params: dict[str, Param] = {}
        self.q: Any = IdentityPoints()
        # Non-trainable state saved in state_dict (running statistics, RNG counters).
        self._buffers: dict[str, Array] = {}

    # -- structure -------------------------------------------------------------------------
    def sublayers(self) -> list[Layer]:
        """Direct sublayers (none for the built-in layers, which are all leaves)."""
        return []

    def layers(self) -> Iterator[Layer]:
        """This layer followed by all its sublayers, depth first."""
        yield self
        for sub in self.sublayers():
            yield from sub.layers()

    # -- computation -----------------------------------------------------------------------
    def forward(self, X: Array, train: bool) -> tuple[Array, Backprop]:
        """Return ``(Y, backprop)``; ``backprop(dY)`` returns dX and accumulates Param.grad."""
        raise NotImplementedError(f"{type(self).__name__} must implement forward(X, train)")

    def predict(self, X: Array) -> Array:
        """Forward pass in evaluation mode, output only."""
        return self.forward(X, train=False)[0]

    # -- precision -------------------------------------------------------------------------
    def bind(self, precision: Any, seed: int) -> Layer:
        """Give this layer (and its sublayers) the points of ``precision``; returns self."""
        from quantsim.precision import make_layer_points

        for layer in self.layers():
            layer.q = make_layer_points(layer, precision, seed)
        return self

    def unbind(self) -> Layer:
        """Back to identity points (the plain float engine); returns self."""
        for layer in self.layers():
            layer.q = IdentityPoints()
        return self

    # -- state -----------------------------------------------------------------------------
    @property
    def dtype(self) -> np.dtype | None:
        """The compute dtype: that of the parameters (None for parameter-free layers)."""
        for p in self.params.values():
            return p.value.dtype
        return None

    def buffers(self) -> dict[str, Array]:
        """Non-trainable state saved with the parameters (name -> array)."""
        return dict(self._buffers)

    def set_buffer(self, key: str, value: Array) -> None:
        """Replace a buffer by a copy of ``value`` (same shape; cast to the buffer's dtype)."""
        if key not in self._buffers:
            raise ValueError(
                f"{self.name}: unknown buffer {key!r}; known buffers: {sorted(self._buffers)}"
            )
        old = self._buffers[key]
        value = array_module(old).asarray(value)  # onto the buffer's device
        if tuple(value.shape) != tuple(old.shape):
            raise ValueError(
                f"{self.name}.{key}: shape {tuple(value.shape)} does not match "
                f"{tuple(old.shape)}"
            )
        self._buffers[key] = value.astype(old.dtype, copy=True)

    def zero_grad(self) -> None:
        for layer in self.layers():
            for p in layer.params.values():
                p.zero_grad()

    def to_device(self, device: Any = "cpu") -> Layer:
        """Move parameters and floating buffers (of this layer and its sublayers) to ``device``
        ('cpu', 'cuda', 'cuda:N' or a ``backend.Device``; a DeviceError when it is not usable).
        Integer buffers (call counters) stay on the host. Returns self."""
        from quantsim.backend import select_device

        dev = select_device(device)
        for layer in self.layers():
            for p in layer.params.values():
                p.to_device(dev)
            for key, buf in layer._buffers.items():
                if buf.dtype.kind == "f":
                    layer._buffers[key] = dev.asarray(buf)
        return self

    def astype(self, dtype: Any) -> Layer:
        """Convert parameters and floating buffers to ``dtype`` (e.g. float64 for grad checks)."""
        dtype = np.dtype(dtype)
        if dtype.kind != "f":
            raise ValueError(f"astype({dtype}): layers compute in float32 or float64")
        for layer in self.layers():
            for p in layer.params.values():
                p.astype(dtype)
            for key, buf in layer._buffers.items():
                if buf.dtype.kind == "f":
                    layer._buffers[key] = buf.astype(dtype)
        return self

    def __repr__(self) -> str:
        shapes = ", ".join(f"{k}={p.shape}" for k, p in self.params.items())
        return f"{type(self).__name__}(name={self.name!r}{', ' if shapes else ''}{shapes})"
