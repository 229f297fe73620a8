"""Optimizers, schedules, constraints and loss scaling, with the quantized update path.

Every parameter is identified by ``"<layer name>.<param name>"``. One :meth:`Optimizer.step`:

1. loss scaling: gradients are divided by the loss scale; with dynamic scaling a non-finite
   gradient skips the step (nothing changes but the scaler) and halves the scale;
2. gradient clipping by global L2 norm (over all parameters, computed in float64). The norm,
   ``last_grad_norm``, is computed only when clipping or with ``track_grad_norm=True`` (it is
   a pass over every gradient: 8 % of a float32 MLP step); otherwise it stays NaN;
3. weight decay (coupled L2: ``g += weight_decay * w``) on parameters matching ``decay``;
4. the update rule (SGD / Adam) with the learning rate and momentum of the current epoch;
   moments are rounded through the layer's ``optimizer_state`` point;
5. constraints (max column norm) on the new value;
6. the new master copy is rounded through the layer's ``updates`` point and written in place:
   ``param.value[...] = layer.q.updates(new_value)``.

Schedules are functions of the 0-based epoch (``set_epoch`` is called by the Trainer).

Devices: the rules take their array module from the parameter (``xp``: numpy or cupy), so they
run where the network is; the in-place fast path (no temporaries) is numpy only. ``state_dict``
returns host (numpy) arrays and ``load_state_dict`` puts them back on each parameter's device,
so a checkpoint made on one device resumes on the other.
"""

from __future__ import annotations

import fnmatch
import functools
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from quantsim.backend import get_array_module, to_numpy
from quantsim.kernels import fused_update
from quantsim.nn import _fused
from quantsim.nn.base import IdentityPoints
from quantsim.precision import QuantPoint, iter_layers

# -- schedules --------------------------------------------------------------------------------


class Schedule:
    """A value as a function of the 0-based epoch."""

    def __call__(self, epoch: int) -> float:
        raise NotImplementedError


@dataclass(frozen=True)
class Constant(Schedule):
    value: float

    def __call__(self, epoch: int) -> float:
        return float(self.value)


@dataclass(frozen=True)
class StepDecay(Schedule):
    """``initial * gamma ** (epoch // every)``."""

    initial: float
    gamma: float
    every: int

    def __call__(self, epoch: int) -> float:
        return float(self.initial * self.gamma ** (epoch // self.every))


@dataclass(frozen=True)
class ExponentialDecay(Schedule):
    """``initial * gamma ** epoch`` (Courbariaux et al. 2015 decay the learning rate so)."""

    initial: float
    gamma: float

    def __call__(self, epoch: int) -> float:
        return float(self.initial * self.gamma**epoch)


@dataclass(frozen=True)
class LinearSchedule(Schedule):
    """From ``start`` at epoch 0 linearly to ``end`` at epoch ``epochs``, then constant.

    Serves as linear learning-rate decay and as the momentum ramp of Courbariaux et al.
    (``LinearSchedule(0.5, 0.7, epochs=N)``).
    """

    start: float
    end: float
    epochs: int

    def __call__(self, epoch: int) -> float:
        if self.epochs <= 0 or epoch >= self.epochs:
            return float(self.end)
        return float(self.start + (self.end - self.start) * epoch / self.epochs)


def _as_schedule(x: float | Schedule | Callable[[int], float], what: str) -> Schedule | Callable:
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        return Constant(float(x))
    if callable(x):
        return x
    raise ValueError(f"{what} must be a number or a schedule (callable of the epoch), got {x!r}")


# -- constraints and loss scaling -------------------------------------------------------------


@dataclass(frozen=True)
class MaxColNorm:
    """Cap the L2 norm of every weight column at ``limit`` (Goodfellow et al. 2013, maxout).

    Applies to parameters whose ``"layer.param"`` name matches the glob ``params``. A *column* is
    one unit's incoming weights: the norm is taken over all axes except ``unit_axis`` (default
    -1, i.e. axis 0 of an ``(in, out)`` matrix); columns with a larger norm are rescaled to
    exactly ``limit``, the others are unchanged.
    """

    limit: float
    params: str = "*"
    unit_axis: int = -1

    def applies(self, name: str) -> bool:
        return fnmatch.fnmatchcase(name, self.params)

    def __call__(self, w: np.ndarray) -> np.ndarray:
        if w.ndim < 2:
            return w
        xp = get_array_module(w)
        axes = tuple(a for a in range(w.ndim) if a != self.unit_axis % w.ndim)
        norms = xp.sqrt(xp.sum(xp.square(w, dtype=np.float64), axis=axes, keepdims=True))
        factor = xp.where(norms > self.limit, self.limit / xp.maximum(norms, 1e-300), 1.0)
        return (w * factor).astype(w.dtype, copy=False)


class LossScaler:
    """Loss scaling (Micikevicius et al. 2018).

    The Trainer multiplies dL/dY by ``scale``; the optimizer divides gradients by it. Static
    (``dynamic=False``): a fixed scale, non-finite gradients are not skipped (the run diverges
    visibly). Dynamic: a step with a non-finite gradient is skipped and the scale multiplied by
    ``backoff`` (floored at ``min_scale``); after ``growth_interval`` good steps in a row it is
    multiplied by ``growth``.
    """

    def __init__(
        self,
        scale: float = 2.0**15,
        *,
        dynamic: bool = True,
        growth: float = 2.0,
        backoff: float = 0.5,
        growth_interval: int = 2000,
        min_scale: float = 1.0,
        max_scale: float = 2.0**24,
    ) -> None:
        if not scale > 0:
            raise ValueError(f"loss scale must be positive, got {scale!r}")
        self.scale = float(scale)
        self.dynamic = dynamic
        self.growth = growth
        self.backoff = backoff
        self.growth_interval = int(growth_interval)
        self.min_scale = min_scale
        self.max_scale = max_scale
        self.good_steps = 0
        self.skipped = 0

    def update(self, finite: bool) -> bool:
        """Record a step's gradient finiteness; returns True when the step must be skipped."""
        if not self.dynamic:
            return False
        if not finite:
            self.scale = max(self.scale * self.backoff, self.min_scale)
            self.good_steps = 0
            self.skipped += 1
            return True
        self.good_steps += 1
        if self.good_steps >= self.growth_interval:
            self.scale = min(self.scale * self.growth, self.max_scale)
            self.good_steps = 0
        return False

    def state_dict(self) -> dict[str, Any]:
        return {"scale": self.scale, "good_steps": self.good_steps, "skipped": self.skipped}

    def load_state_dict(self, d: Mapping[str, Any]) -> None:
        self.scale = float(d["scale"])
        self.good_steps = int(d["good_steps"])
        self.skipped = int(d["skipped"])


# -- optimizers -------------------------------------------------------------------------------


def _identity(x: np.ndarray, out: np.ndarray | None = None, *, tag: str | None = None
              ) -> np.ndarray:
    if out is not None and out is not x:
        out[...] = x
        return out
    return x


_xp = get_array_module


def _host_copy(a: Any) -> np.ndarray:
    """A numpy copy of ``a`` (a download for device arrays)."""
    return a.copy() if isinstance(a, np.ndarray) else to_numpy(a)


def _sum_squares(g: Any) -> float:
    """sum(g**2) in float64: one pass on numpy arrays, a float64 square and sum elsewhere."""
    if _fused.applies(g):
        return _fused.sum_squares(g)
    xp = _xp(g)
    return float(xp.sum(xp.square(g, dtype=np.float64)))


def _plain(a: Any, dtype: Any = None) -> bool:
    """A C-contiguous float ndarray (of ``dtype`` when given): safe for ``out=`` arguments."""
    return (
        isinstance(a, np.ndarray) and a.dtype.kind == "f" and a.flags.c_contiguous
        and (dtype is None or a.dtype == dtype)
    )


def _unwrap(point: Any) -> Any:
    """The point behind a :meth:`_Slot.point` (a ``functools.partial`` fixing the tag)."""
    return point.func if isinstance(point, functools.partial) else point


def _known_point(point: Any) -> bool:
    """Points the in-place fast paths understand: a ``QuantPoint`` (takes ``out=``) or an
    identity (``IdentityPoints`` method, or no ``q`` at all)."""
    point = _unwrap(point)
    return (
        isinstance(point, QuantPoint) or point is _identity
        or isinstance(getattr(point, "__self__", None), IdentityPoints)
    )


def _point_is_identity(point: Any, dtype: Any) -> bool:
    """For a :func:`_known_point`: True when it returns its argument unchanged."""
    point = _unwrap(point)
    return not isinstance(point, QuantPoint) or point.is_identity(dtype)


def _momentum_rounded(w: np.ndarray, v: np.ndarray, g: np.ndarray, lr: float, mu: float,
                      opt_q: Any, upd: Any) -> bool:
    """The momentum update with both rounding points in one kernel pass
    (`kernels.fused_update`, same bits) when both points allow it; False otherwise."""
    state_point, update_point = _unwrap(opt_q), _unwrap(upd)
    if not (isinstance(state_point, QuantPoint) and isinstance(update_point, QuantPoint)):
        return False
    state_plan = state_point.fused_call_plan(w.dtype)
    update_plan = update_point.fused_call_plan(w.dtype)
    if (state_plan is None or update_plan is None
            or not fused_update.momentum_rounded_applies(state_plan, update_plan)):
        return False
    fused_update.momentum_rounded_(w, v, g, lr, mu, state_plan, update_plan)
    state_point.count_fused_call(_tag(opt_q))
    update_point.count_fused_call(_tag(upd))
    return True


def _tag(point: Any) -> str | None:
    """The tag a :meth:`_Slot.point` passes to its point (None without one)."""
    return point.keywords.get("tag") if isinstance(point, functools.partial) else None


@dataclass
class _Slot:
    name: str
    layer: Any
    param: Any
    pname: str = ""

    def point(self, role: str) -> Callable[..., np.ndarray]:
        """The layer's ``role`` point for this parameter (tagged with its name, so stateful
        formats keep one state per parameter)."""
        q = getattr(self.layer, "q", None)
        if q is None:
            return _identity
        point = getattr(q, role)
        return functools.partial(point, tag=self.pname) if isinstance(point, QuantPoint) else point


def _collect(net: Any) -> list[_Slot]:
    slots, seen = [], set()
    for layer in iter_layers(net):
        for pname, param in getattr(layer, "params", {}).items():
            name = f"{layer.name}.{pname}"
            if name in seen:
                raise ValueError(f"two parameters are named {name!r}; give layers unique names")
            seen.add(name)
            slots.append(_Slot(name, layer, param, pname))
    return slots


class Optimizer:
    """Base class: the step pipeline of the module docstring; subclasses give ``_rule``."""

    def __init__(
        self,
        net: Any,
        lr: float | Schedule | Callable[[int], float],
        *,
        weight_decay: float = 0.0,
        decay: str = "*",
        clip_norm: float | None = None,
        constraints: Iterable[MaxColNorm] = (),
        loss_scaler: LossScaler | None = None,
        track_grad_norm: bool = False,
    ) -> None:
        self.slots = _collect(net)
        self.lr_schedule = _as_schedule(lr, "lr")
        self.weight_decay = float(weight_decay)
        self.decay = decay
        if clip_norm is not None and not clip_norm > 0:
            raise ValueError(f"clip_norm must be positive or None, got {clip_norm!r}")
        self.clip_norm = clip_norm
        self.constraints = tuple(constraints)
        self.loss_scaler = loss_scaler
        self.epoch = 0
        self.steps = 0  # applied (not skipped) steps
        self.state: dict[str, dict[str, np.ndarray]] = {}
        self.track_grad_norm = bool(track_grad_norm)
        self.last_grad_norm = float("nan")
        self._scratch_bufs: dict[tuple[str, int], np.ndarray] = {}

    @property
    def lr(self) -> float:
        return float(self.lr_schedule(self.epoch))

    @property
    def loss_scale(self) -> float:
        """The factor the Trainer multiplies dL/dY by (1 without loss scaling)."""
        return self.loss_scaler.scale if self.loss_scaler is not None else 1.0

    def set_epoch(self, epoch: int) -> None:
        """Select the schedules' values for ``epoch`` (0-based)."""
        self.epoch = int(epoch)

    def zero_grad(self) -> None:
        for s in self.slots:
            s.param.zero_grad()

    def step(self) -> bool:
        """Apply one update from the accumulated gradients; False if it was skipped."""
        live = [s for s in self.slots if s.param.grad is not None]
        grads = {s.name: s.param.grad for s in live}
        scale = self.loss_scale
        if scale != 1.0:
            grads = {n: g / g.dtype.type(scale) for n, g in grads.items()}
        if self.loss_scaler is not None:
            finite = all(bool(_xp(g).isfinite(g).all()) for g in grads.values())
            if self.loss_scaler.update(finite):
                return False
        if self.clip_norm is not None or self.track_grad_norm:
            # Python floats added in order: float64 sums of squares per tensor.
            sq = sum(_sum_squares(g) for g in grads.values())
            self.last_grad_norm = math.sqrt(sq)
        if self.clip_norm is not None and self.last_grad_norm > self.clip_norm:
            factor = self.clip_norm / self.last_grad_norm
            grads = {n: (g * factor).astype(g.dtype, copy=False) for n, g in grads.items()}
        lr = self.lr
        self._begin_step()
        for s in live:
            w = s.param.value
            g = grads[s.name]
            if self.weight_decay and fnmatch.fnmatchcase(s.name, self.decay):
                g = g + w.dtype.type(self.weight_decay) * w
            state = self.state.setdefault(s.name, {})
            constrained = any(c.applies(s.name) for c in self.constraints)
            if not constrained and self._update_in_place(s, w, g, lr, state):
                continue
            new = self._rule(s, w, g, lr, state)
            for c in self.constraints:
                if c.applies(s.name):
                    new = c(new)
            w[...] = s.point("updates")(_xp(w).asarray(new, dtype=w.dtype))
        self.steps += 1
        return True

    def _update_in_place(
        self, s: _Slot, w: np.ndarray, g: np.ndarray, lr: float, state: dict
    ) -> bool:
        """Optional fast path: apply the rule and the ``updates`` point to ``w`` in place,
        bit for bit as ``_rule`` + ``w[...] = updates(new)`` would; return False to fall back
        to that generic path (the default)."""
        return False

    def _scratch(self, s: _Slot, w: np.ndarray, k: int = 0) -> np.ndarray:
        """A reusable work array shaped like ``w`` (not part of the optimizer state)."""
        bufs = self._scratch_bufs
        key = (s.name, k)
        buf = bufs.get(key)
        if buf is None or buf.shape != w.shape or buf.dtype != w.dtype:
            buf = bufs[key] = np.empty_like(w, order="C")
        return buf

    def _begin_step(self) -> None:
        """Hook run once per applied step before the per-parameter rules."""

    def _rule(self, s: _Slot, w: np.ndarray, g: np.ndarray, lr: float, state: dict) -> np.ndarray:
        raise NotImplementedError

    def hyperparams(self) -> dict[str, float]:
        return {"lr": self.lr}

    def state_dict(self) -> dict[str, Any]:
        """Step counters, scaler state and per-parameter moments (host copies: numpy)."""
        return {
            "epoch": self.epoch,
            "steps": self.steps,
            "loss_scaler": self.loss_scaler.state_dict() if self.loss_scaler else None,
            "moments": {n: {k: _host_copy(v) for k, v in st.items()}
                        for n, st in self.state.items()},
        }

    def load_state_dict(self, d: Mapping[str, Any]) -> None:
        names = {s.name for s in self.slots}
        unknown = set(d["moments"]) - names
        if unknown:
            raise ValueError(
                f"optimizer state names parameters {sorted(unknown)} that this network does "
                f"not have ({sorted(names)}); resume with the same network"
            )
        self.epoch = int(d["epoch"])
        self.steps = int(d["steps"])
        if self.loss_scaler is not None and d.get("loss_scaler"):
            self.loss_scaler.load_state_dict(d["loss_scaler"])
        device_xp = {s.name: _xp(s.param.value) for s in self.slots}
        self.state = {n: {k: device_xp[n].array(v) for k, v in st.items()}
                      for n, st in d["moments"].items()}


class SGD(Optimizer):
    """SGD with classical or Nesterov momentum (Sutskever et al. 2013 form).

    ``v = mu * v - lr * g``; ``w = w + v`` (classical) or ``w = w + mu * v - lr * g``
    (Nesterov, with the new ``v``). ``v`` is rounded through ``optimizer_state``. With
    ``momentum=0`` it is plain ``w - lr * g`` and keeps no state.
    """

    def __init__(
        self,
        net: Any,
        lr: float | Schedule | Callable[[int], float],
        *,
        momentum: float | Schedule | Callable[[int], float] = 0.0,
        nesterov: bool = False,
        **kw: Any,
    ) -> None:
        super().__init__(net, lr, **kw)
        self.momentum_schedule = _as_schedule(momentum, "momentum")
        self.nesterov = nesterov

    @property
    def momentum(self) -> float:
        return float(self.momentum_schedule(self.epoch))

    def hyperparams(self) -> dict[str, float]:
        return {"lr": self.lr, "momentum": self.momentum}

    def _rule(self, s: _Slot, w: np.ndarray, g: np.ndarray, lr: float, state: dict) -> np.ndarray:
        t = w.dtype.type
        mu = self.momentum
        if mu == 0.0 and "v" not in state:
            return w - t(lr) * g
        xp = _xp(w)
        v = state.get("v")
        if v is None:
            v = xp.zeros_like(w)
        v = s.point("optimizer_state")(t(mu) * v - t(lr) * g)
        state["v"] = xp.array(v, copy=True)
        if self.nesterov:
            return w + t(mu) * v - t(lr) * g
        return w + v

    def _update_in_place(
        self, s: _Slot, w: np.ndarray, g: np.ndarray, lr: float, state: dict
    ) -> bool:
        """``_rule`` + the ``updates`` point without temporaries (same float operations in the
        same order, so the same bits): classical momentum or plain SGD on C-contiguous
        arrays of one dtype, with ``QuantPoint`` (or identity) points."""
        if self.nesterov or not _plain(w) or not _plain(g, w.dtype):
            return False
        upd = s.point("updates")
        if not _known_point(upd):
            return False
        t = w.dtype.type
        mu = self.momentum
        if mu == 0.0 and "v" not in state:
            lrg = np.multiply(g, t(lr), out=self._scratch(s, w, 0))  # t(lr) * g
            if _point_is_identity(upd, w.dtype):
                np.subtract(w, lrg, out=w)
            else:
                upd(np.subtract(w, lrg, out=lrg), out=w)
            return True
        v = state.get("v")
        if v is None:
            v = state["v"] = np.zeros_like(w, order="C")
        elif not _plain(v, w.dtype) or not v.flags.writeable:
            return False
        opt_q = s.point("optimizer_state")
        if not _known_point(opt_q):
            return False
        fused = _fused.applies(w, v, g)
        if fused and _point_is_identity(opt_q, w.dtype) and _point_is_identity(upd, w.dtype):
            _fused.momentum_(w, v, g, lr, mu)
            return True
        if fused and _momentum_rounded(w, v, g, lr, mu, opt_q, upd):
            return True
        buf = self._scratch(s, w, 0)
        if _point_is_identity(opt_q, w.dtype):
            lrg = np.multiply(g, t(lr), out=buf)  # t(lr) * g
            np.multiply(v, t(mu), out=v)  # t(mu) * v
            np.subtract(v, lrg, out=v)
        elif fused:
            opt_q(_fused.momentum_state(v, g, lr, mu, out=buf), out=v)
        else:
            lrg = np.multiply(g, t(lr), out=buf)
            tmp = np.multiply(v, t(mu), out=self._scratch(s, w, 1))
            opt_q(np.subtract(tmp, lrg, out=tmp), out=v)
        if _point_is_identity(upd, w.dtype):
            np.add(w, v, out=w)
        else:
            upd(np.add(w, v, out=buf), out=w)
        return True


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015) with bias correction.

    ``m = b1 m + (1-b1) g``; ``v = b2 v + (1-b2) g^2`` (both through ``optimizer_state``);
    ``w = w - lr * m_hat / (sqrt(v_hat) + eps)`` with ``m_hat = m / (1 - b1^t)``,
    ``v_hat = v / (1 - b2^t)`` and ``t`` the 1-based count of applied steps.
    """

    def __init__(
        self,
        net: Any,
        lr: float | Schedule | Callable[[int], float] = 1e-3,
        *,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        **kw: Any,
    ) -> None:
        super().__init__(net, lr, **kw)
        self.beta1, self.beta2 = betas
        self.eps = eps

    def _rule(self, s: _Slot, w: np.ndarray, g: np.ndarray, lr: float, state: dict) -> np.ndarray:
        t = w.dtype.type
        b1, b2 = self.beta1, self.beta2
        n = self.steps + 1
        xp = _xp(w)
        m = state.get("m", xp.zeros_like(w))
        v = state.get("v", xp.zeros_like(w))
        q = s.point("optimizer_state")
        m = xp.array(q(t(b1) * m + t(1 - b1) * g), copy=True)
        v = xp.array(q(t(b2) * v + t(1 - b2) * (g * g)), copy=True)
        state["m"], state["v"] = m, v
        m_hat = m / t(1 - b1**n)
        v_hat = v / t(1 - b2**n)
        return w - t(lr) * m_hat / (xp.sqrt(v_hat) + t(self.eps))
