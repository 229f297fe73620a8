"""Sequential composition of layers: naming, binding, parameters and state."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from quantsim.backend import CPU, Device, select_device
from quantsim.nn._xp import array_module
from quantsim.nn.base import Array, Backprop, IdentityPoints, Layer, Param, check_name

__all__ = ["Sequential"]


def assign_names(layers: list[Layer]) -> None:
    """Give auto-named layers ``<prefix><k>`` (k counted per prefix, skipping taken names);
    raise a ValueError on duplicate explicit names or a layer object used twice."""
    seen_ids: set[int] = set()
    taken: set[str] = set()
    for layer in layers:
        if id(layer) in seen_ids:
            raise ValueError(
                f"layer {layer.name!r} appears twice in the network; create a separate layer "
                "object for each position (weight sharing is not supported)"
            )
        seen_ids.add(id(layer))
        if not layer.auto_named:
            if layer.name in taken:
                raise ValueError(
                    f"duplicate layer name {layer.name!r}: names must be unique within a network"
                )
            taken.add(layer.name)
    counters: dict[str, int] = {}
    for layer in layers:
        if layer.auto_named:
            k = counters.get(layer.prefix, 0)
            while f"{layer.prefix}{k}" in taken:
                k += 1
            layer.name = f"{layer.prefix}{k}"
            taken.add(layer.name)
            counters[layer.prefix] = k + 1


class Sequential:
    """Layers (or nested Sequentials) applied in order.

    ``forward(X, train) -> (Y, backprop)``: X first goes through the ``inputs`` point of the
    first layer (skipped for integer inputs such as token indices), then through every layer;
    ``backprop(dY)`` runs the closures in reverse and returns dX.

    Names are made unique over the whole tree when the network is built: nesting an encoder
    and a decoder (``Sequential(encoder, decoder)``) renumbers their auto-named layers, and the
    encoder can still be run on its own afterwards.

    ``device`` is where the parameters live (the CPU until :meth:`to_device`); ``forward``
    moves host inputs there.
    """

    def __init__(self, *layers: Layer | Sequential, name: str | None = None) -> None:
        if not layers:
            raise ValueError("Sequential() needs at least one layer")
        for child in layers:
            if not isinstance(child, (Layer, Sequential)):
                raise TypeError(
                    f"Sequential takes Layer or Sequential objects, got {type(child).__name__}"
                )
        self.name = "sequential" if name is None else check_name(name)
        self.children: list[Layer | Sequential] = list(layers)
        self.device: Device = CPU
        assign_names(list(self.layers()))

    # -- structure -------------------------------------------------------------------------
    def layers(self) -> Iterator[Layer]:
        """Every layer of the network in forward order (nested Sequentials flattened)."""
        for child in self.children:
            yield from child.layers()

    def __getitem__(self, key: int | str) -> Layer | Sequential:
        """A direct child by position, or any layer by name."""
        if isinstance(key, str):
            for layer in self.layers():
                if layer.name == key:
                    return layer
            raise KeyError(f"no layer named {key!r}; layers: {[lay.name for lay in self.layers()]}")
        return self.children[key]

    def __len__(self) -> int:
        return len(self.children)

    def __iter__(self) -> Iterator[Layer | Sequential]:
        return iter(self.children)

    def __repr__(self) -> str:
        inner = ",\n  ".join(repr(c).replace("\n", "\n  ") for c in self.children)
        return f"Sequential(name={self.name!r},\n  {inner}\n)"

    # -- computation -----------------------------------------------------------------------
    def forward(self, X: Array, train: bool) -> tuple[Array, Backprop]:
        X = self.device.asarray(X) if self.device.is_cuda else np.asarray(X)
        if X.dtype.kind == "f":
            X = next(self.layers()).q.inputs(X)
        return self.forward_layers(X, train)

    def forward_layers(self, X: Array, train: bool) -> tuple[Array, Backprop]:
        """The forward pass without the ``inputs`` point (used for nested networks).

        The returned ``backprop(dY, input_grad=True)`` returns dX; with ``input_grad=False``
        (the Trainer's call: nothing uses the gradient w.r.t. the data) the first layer may
        leave out its backward-data product and return None instead, where that changes
        nothing else (a plain float product: no accumulator point is skipped)."""
        backprops: list[Backprop] = []
        for child in self.children:
            if isinstance(child, Sequential):
                X, bp = child.forward_layers(X, train)
            else:
                X, bp = child.forward(X, train)
            backprops.append(bp)

        def backprop(dY: Array, input_grad: bool = True) -> Array | None:
            if input_grad:
                for bp in reversed(backprops):
                    dY = bp(dY)
                return dY
            # Leading pure reshapes (no points, no state) need not run at all.
            k = 0
            while k < len(backprops) - 1 and getattr(backprops[k], "backward_is_pure", False):
                k += 1
            for bp in backprops[:k:-1]:
                dY = bp(dY)
            first = backprops[k]
            if getattr(first, "input_grad_optional", False):
                return first(dY, input_grad=False)
            first(dY)
            return None

        backprop.input_grad_optional = True  # type: ignore[attr-defined]
        return X, backprop

    def predict(self, X: Array) -> Array:
        """Forward pass in evaluation mode, output only."""
        return self.forward(X, train=False)[0]

    # -- precision -------------------------------------------------------------------------
    def bind(self, precision: Any, seed: int) -> Sequential:
        """Set ``layer.q = make_layer_points(layer, precision, seed)`` on every layer.

        A per-layer override that names no layer of this network is an error (a typo would
        otherwise silently leave that layer unquantized)."""
        from quantsim.precision import make_layer_points

        if hasattr(precision, "check"):
            precision.check([layer.name for layer in self.layers()])
        for layer in self.layers():
            layer.q = make_layer_points(layer, precision, seed)
        return self

    def unbind(self) -> Sequential:
        """Back to identity points (the plain float engine)."""
        for layer in self.layers():
            layer.q = IdentityPoints()
        return self

    # -- parameters and state --------------------------------------------------------------
    def params(self) -> list[tuple[Layer, str, Param]]:
        """``(layer, param_name, Param)`` for every parameter, in forward order."""
        return [(layer, k, p) for layer in self.layers() for k, p in layer.params.items()]

    def zero_grad(self) -> None:
        for _, _, p in self.params():
            p.zero_grad()

    def to_device(self, device: str | Device = "cpu") -> Sequential:
        """Move every parameter and floating buffer to ``device`` ('cpu', 'cuda', 'cuda:N' or a
        ``backend.Device``; a DeviceError saying what is missing when it is not usable), and
        make ``forward`` move its inputs there. Returns self."""
        dev = select_device(device)
        for child in self.children:
            child.to_device(dev)
        self.device = dev
        return self

    def astype(self, dtype: Any) -> Sequential:
        """Convert every parameter and floating buffer to ``dtype``; returns self."""
        for child in self.children:
            child.astype(dtype)
        return self

    def num_params(self) -> int:
        return sum(int(p.value.size) for _, _, p in self.params())

    def state_dict(self) -> dict[str, Array]:
        """Copies of every parameter and buffer, keyed ``"{layer}.{name}"`` (on the network's
        device; the Trainer's checkpoints download them)."""
        state: dict[str, Array] = {}
        for layer in self.layers():
            for k, p in layer.params.items():
                state[f"{layer.name}.{k}"] = p.value.copy()
            for k, buf in layer.buffers().items():
                state[f"{layer.name}.{k}"] = buf.copy()
        return state

    def load_state_dict(self, state: dict[str, Array]) -> None:
        """Load a :meth:`state_dict` strictly: every key present, no unknown keys, same shapes.

        Parameter values are copied into the existing arrays (cast to their dtype, on their
        device: numpy arrays load into a GPU network), so references held by an optimizer stay
        valid. Nothing is modified when a check fails.
        """
        expected: dict[str, tuple[Layer, str, bool]] = {}
        for layer in self.layers():
            for k in layer.params:
                expected[f"{layer.name}.{k}"] = (layer, k, True)
            for k in layer.buffers():
                expected[f"{layer.name}.{k}"] = (layer, k, False)
        missing = [k for k in expected if k not in state]
        unknown = [k for k in state if k not in expected]
        if missing or unknown:
            raise ValueError(
                "state_dict does not match the network: "
                + (f"missing keys {missing}" if missing else "")
                + ("; " if missing and unknown else "")
                + (f"unknown keys {unknown}" if unknown else "")
                + "; build the network with the same layers and names as the saved one"
            )
        for key, (layer, k, is_param) in expected.items():
            target = layer.params[k].value if is_param else layer.buffers()[k]
            value = state[key]
            shape = tuple(value.shape if hasattr(value, "shape") else np.shape(value))
            if shape != tuple(target.shape):
                raise ValueError(
                    f"state_dict[{key!r}] has shape {shape}, the network "
                    f"expects {tuple(target.shape)}"
                )
        for key, (layer, k, is_param) in expected.items():
            if is_param:
                target = layer.params[k].value
                target[...] = array_module(target).asarray(state[key])
            else:
                layer.set_buffer(k, state[key])
