"""One training run from a plain config: the engine behind ``quantsim train`` and studies.

::

    from quantsim.runner import RunConfig, run
    cfg = RunConfig.from_dict({"network": "mlp", "dataset": "digits", "epochs": 2})
    result = run(cfg, progress=False)
    result.test_error, result.to_dict()

A config is plain data (JSON/TOML-safe). Keys left ``None`` take the workload's defaults
(``networks.defaults(name)``): ``epochs``, ``batch_size``, ``optimizer`` (a given optimizer dict
is merged over the default one when it names the same optimizer or no optimizer, and replaces
it otherwise), ``schedule`` (the learning-rate schedule; ``"constant"`` turns the default one
off). :meth:`RunConfig.resolved` shows the merged values; :meth:`RunConfig.hash` hashes them.

Optimizer dict keys: ``name`` (``"sgd"`` / ``"adam"``), ``lr``, ``momentum`` (a number or a
schedule dict), ``nesterov``, ``betas``, ``eps``, ``weight_decay``, ``clip_norm``,
``max_col_norm`` (the max-column-norm constraint of maxout nets; ``None`` turns it off),
``loss_scale`` (a number for static loss scaling, ``"dynamic"`` or a dict of
``quantsim.optim.LossScaler`` arguments). Schedule dicts: ``{"name": "constant"}``,
``{"name": "step", "gamma": g, "every": k}``, ``{"name": "exponential", "gamma": g}``,
``{"name": "linear", "end": v, "epochs": n}`` (``linear`` also takes ``start``; the others start
from the optimizer's ``lr``).
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import hashlib
import json
import math
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from quantsim.errors import QuantsimError

__all__ = ["ConfigError", "ProgressPrinter", "RunConfig", "RunResult", "run"]

_LN2 = math.log(2.0)


class ConfigError(QuantsimError, ValueError):
    """A run config with an unknown key, a bad value or an impossible combination."""


# -- validation helpers -----------------------------------------------------------------------


def _type_name(v: Any) -> str:
    return type(v).__name__


def _unknown_key(key: str, valid: Iterable[str], where: str) -> ConfigError:
    valid = list(valid)
    close = difflib.get_close_matches(str(key), valid, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return ConfigError(f"unknown {where} key {key!r}; {hint}valid keys: {', '.join(valid)}")


def _pos_int(v: Any, key: str, allow_none: bool = True) -> int | None:
    if v is None and allow_none:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
        none = " or null" if allow_none else ""
        raise ConfigError(f"{key}: expected a positive integer{none}, got {v!r} "
                          f"({_type_name(v)}); e.g. \"{key.split('.')[-1]}\": 10")
    return int(v)


def _number(v: Any, key: str, *, positive: bool = False, nonneg: bool = False) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) \
            or not math.isfinite(float(v)):
        raise ConfigError(f"{key}: expected a number, got {v!r} ({_type_name(v)})")
    if positive and not v > 0:
        raise ConfigError(f"{key}: must be > 0, got {v!r}")
    if nonneg and v < 0:
        raise ConfigError(f"{key}: must be >= 0, got {v!r}")
    return float(v)


def _bool(v: Any, key: str) -> bool:
    if not isinstance(v, (bool, np.bool_)):
        raise ConfigError(f"{key}: expected true or false, got {v!r} ({_type_name(v)})")
    return bool(v)


_SCHEDULE_KEYS = {
    "constant": ("name", "value"),
    "step": ("name", "gamma", "every", "initial"),
    "exponential": ("name", "gamma", "initial"),
    "linear": ("name", "start", "end", "epochs"),
}


def _check_schedule(s: Any, key: str) -> Any:
    """A schedule: None, a number (constant; only where a value is expected), a name
    (``"constant"``) or a dict with ``name`` (see the module docstring)."""
    if s is None:
        return None
    if isinstance(s, str):
        s = {"name": s}
    if not isinstance(s, Mapping):
        raise ConfigError(f"{key}: expected a schedule dict such as "
                          f"{{\"name\": \"exponential\", \"gamma\": 0.95}}, got {s!r}")
    name = s.get("name")
    if name not in _SCHEDULE_KEYS:
        raise ConfigError(f"{key}.name: unknown schedule {name!r}; use one of "
                          f"{', '.join(_SCHEDULE_KEYS)}")
    for k in s:
        if k not in _SCHEDULE_KEYS[name]:
            raise _unknown_key(k, _SCHEDULE_KEYS[name], f"{key} ({name} schedule)")
    out: dict[str, Any] = {"name": name}
    for k, v in s.items():
        if k == "name":
            continue
        if k in ("every", "epochs"):
            out[k] = _pos_int(v, f"{key}.{k}", allow_none=False)
        else:
            out[k] = _number(v, f"{key}.{k}", positive=k == "gamma")
    required = {"step": ("gamma", "every"), "exponential": ("gamma",),
                "linear": ("end", "epochs")}.get(name, ())
    for k in required:
        if k not in out:
            raise ConfigError(f"{key}: the {name} schedule needs {k!r}, e.g. "
                              f"{{\"name\": \"{name}\", \"{k}\": ...}}")
    return out


def make_schedule(s: Mapping[str, Any] | None, initial: float) -> Any:
    """A ``quantsim.optim`` schedule from a checked schedule dict (None: constant ``initial``)."""
    from quantsim.optim import Constant, ExponentialDecay, LinearSchedule, StepDecay

    if s is None:
        return Constant(initial)
    name = s["name"]
    if name == "constant":
        return Constant(s.get("value", initial))
    if name == "step":
        return StepDecay(s.get("initial", initial), s["gamma"], s["every"])
    if name == "exponential":
        return ExponentialDecay(s.get("initial", initial), s["gamma"])
    return LinearSchedule(s.get("start", initial), s["end"], s["epochs"])


_OPTIMIZERS = ("sgd", "adam")
_OPT_KEYS = {
    "sgd": ("name", "lr", "momentum", "nesterov", "weight_decay", "clip_norm", "max_col_norm",
            "loss_scale"),
    "adam": ("name", "lr", "betas", "eps", "weight_decay", "clip_norm", "max_col_norm",
             "loss_scale"),
}
_DEFAULT_LR = {"sgd": 0.01, "adam": 1e-3}


def _check_optimizer(o: Any, key: str = "optimizer") -> dict[str, Any] | None:
    if o is None:
        return None
    if isinstance(o, str):
        o = {"name": o}
    if not isinstance(o, Mapping):
        raise ConfigError(f"{key}: expected a dict such as {{\"name\": \"sgd\", \"lr\": 0.1, "
                          f"\"momentum\": 0.9}}, got {o!r}")
    name = o.get("name")
    if name is not None and name not in _OPTIMIZERS:
        raise ConfigError(f"{key}.name: unknown optimizer {name!r}; use one of "
                          f"{', '.join(_OPTIMIZERS)}")
    allowed = _OPT_KEYS[name] if name else tuple(dict.fromkeys(_OPT_KEYS["sgd"]
                                                               + _OPT_KEYS["adam"]))
    out: dict[str, Any] = {}
    for k, v in o.items():
        if k not in allowed:
            raise _unknown_key(k, allowed, f"{key} ({name or 'any'} optimizer)")
        where = f"{key}.{k}"
        if k == "name":
            out[k] = v
        elif k == "lr":
            out[k] = _number(v, where, positive=True)
        elif k == "momentum":
            if isinstance(v, (Mapping, str)):
                out[k] = _check_schedule(v, where)
            else:
                m = _number(v, where, nonneg=True)
                if m >= 1:
                    raise ConfigError(f"{where}: must be in [0, 1), got {v!r}")
                out[k] = m
        elif k == "nesterov":
            out[k] = _bool(v, where)
        elif k == "betas":
            if not (isinstance(v, (list, tuple)) and len(v) == 2):
                raise ConfigError(f"{where}: expected two numbers [b1, b2], got {v!r}")
            out[k] = [_number(b, where, nonneg=True) for b in v]
        elif k in ("eps", "weight_decay"):
            out[k] = _number(v, where, nonneg=True)
        elif k in ("clip_norm", "max_col_norm"):
            out[k] = None if v is None else _number(v, where, positive=True)
        elif k == "loss_scale":
            if v is None or v == "dynamic":
                out[k] = v
            elif isinstance(v, Mapping):
                out[k] = dict(v)
            else:
                out[k] = _number(v, where, positive=True)
    return out


# -- the config -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunConfig:
    """One training run as plain data; see the module docstring and docs/architecture.md."""

    network: str
    dataset: str
    epochs: int | None = None
    batch_size: int | None = None
    precision: str | dict[str, Any] | None = "float32"
    seed: int = 0
    optimizer: dict[str, Any] | None = None
    schedule: dict[str, Any] | None = None
    limit: int | None = None
    validation: int | float | None = None
    device: str = "cpu"
    network_options: dict[str, Any] = field(default_factory=dict)
    data_dir: str | None = None
    patience: int | None = None
    stats: bool = False
    stats_every: int = 25  # sample ~1 in 25 quantizing calls per point (docs/statistics.md)
    cost: bool = False

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RunConfig:
        """Validate ``d`` strictly: unknown keys, bad types and unknown names are ConfigErrors
        naming the key and the fix."""
        if not isinstance(d, Mapping):
            raise ConfigError(f"a run config must be a mapping, got {_type_name(d)}")
        valid = cls.keys()
        for k in d:
            if k not in valid:
                raise _unknown_key(k, valid, "run config")
        for k in ("network", "dataset"):
            if k not in d:
                raise ConfigError(f"run config needs {k!r}, e.g. "
                                  f"{{\"network\": \"mlp\", \"dataset\": \"fashion-mnist\"}}")
        d = dict(d)
        if d.get("network_options") is None:
            d.pop("network_options", None)
        return cls(**d)

    def __post_init__(self) -> None:
        import networks

        if not isinstance(self.network, str) or self.network not in networks.available():
            raise ConfigError(f"network: unknown network {self.network!r}; available: "
                              f"{', '.join(networks.available())}")
        _check_dataset(self.dataset)
        _pos_int(self.epochs, "epochs")
        _pos_int(self.batch_size, "batch_size")
        precision = self.precision if self.precision is not None else "float32"
        _parse_precision(precision)
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)) \
                or self.seed < 0:
            raise ConfigError(f"seed: expected an integer >= 0, got {self.seed!r}")
        optimizer = _check_optimizer(self.optimizer)
        schedule = _check_schedule(self.schedule, "schedule")
        _pos_int(self.limit, "limit")
        v = self.validation
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))
                              or v < 0 or (isinstance(v, float) and v >= 1)):
            raise ConfigError(f"validation: expected null (the data set's default), a count "
                              f">= 0 or a fraction in [0, 1), got {v!r}")
        if not _device_name(self.device):
            raise ConfigError(f"device: expected 'cpu' or 'cuda' (or 'cuda:N' for GPU N), got "
                              f"{self.device!r}")
        if not isinstance(self.network_options, Mapping):
            raise ConfigError(f"network_options: expected a dict of options of "
                              f"{self.network!r}, got {self.network_options!r}")
        try:
            networks.get(self.network).check_options(self.network_options)
        except networks.NetworkError as exc:
            raise ConfigError(f"network_options: {exc}") from None
        if self.data_dir is not None and not isinstance(self.data_dir, str):
            raise ConfigError(f"data_dir: expected a directory path string or null, got "
                              f"{self.data_dir!r}")
        _pos_int(self.patience, "patience")
        _bool(self.stats, "stats")
        _pos_int(self.stats_every, "stats_every", allow_none=False)
        _bool(self.cost, "cost")
        # normalised, plain-data copies (frozen dataclass: assign through object.__setattr__)
        set_ = object.__setattr__
        set_(self, "precision", copy.deepcopy(dict(precision)) if isinstance(precision, Mapping)
             else precision)
        set_(self, "seed", int(self.seed))
        set_(self, "optimizer", optimizer)
        set_(self, "schedule", schedule)
        set_(self, "network_options", copy.deepcopy(dict(self.network_options)))

    def __hash__(self) -> int:
        return int(self.hash(), 16)

    def to_dict(self) -> dict[str, Any]:
        """Plain data; ``RunConfig.from_dict(cfg.to_dict()) == cfg``."""
        return {k: copy.deepcopy(getattr(self, k)) for k in self.keys()}

    def workload(self) -> Any:
        import networks

        return networks.get(self.network)

    def defaults(self) -> Any:
        """The workload's :class:`networks.Defaults` for this config's network options."""
        return self.workload().defaults_for(self.network_options)

    def resolved(self) -> RunConfig:
        """This config with the workload defaults filled in (epochs, batch size, optimizer,
        schedule) and the precision in canonical form."""
        d = self.defaults()
        return dataclasses.replace(
            self,
            epochs=self.epochs or d.epochs,
            batch_size=self.batch_size or d.batch_size,
            optimizer=_merge_optimizer(dict(d.optimizer), self.optimizer, d.max_col_norm),
            schedule=(self.schedule if self.schedule is not None
                      else _check_schedule(copy.deepcopy(d.schedule), "schedule")),
            precision=_parse_precision(self.precision or "float32").to_dict(),
        )

    def hash(self) -> str:
        """Stable hex digest (sha256, 16 hex digits) of the resolved, normalised config."""
        text = json.dumps(self.resolved().to_dict(), sort_keys=True, separators=(",", ":"),
                          default=str)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _device_name(device: Any) -> bool:
    """'cpu', 'cuda' or 'cuda:N' (whether the device exists is checked when the run starts)."""
    if not isinstance(device, str):
        return False
    kind, sep, index = device.partition(":")
    return device in ("cpu", "cuda") or (kind == "cuda" and bool(sep) and index.isdigit())


def _check_dataset(name: Any) -> None:
    from quantsim.data import registry

    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"dataset: expected a data-set name, got {name!r}; known: "
                          f"{', '.join(registry.DATASETS)}")
    if name.startswith("text:"):
        if not name[5:]:
            raise ConfigError("dataset: 'text:' needs a file path, e.g. 'text:corpus.txt'")
        return
    key = name.strip().lower()
    aliases = getattr(registry, "_ALIASES", {})
    if key not in registry.DATASETS and key not in aliases:
        raise ConfigError(f"dataset: unknown data set {name!r}; known: "
                          f"{', '.join(registry.DATASETS)}")


def _parse_precision(p: Any) -> Any:
    from quantsim.precision import Precision

    try:
        if isinstance(p, str):
            # a bare spec ("float32", "fixed<4,12>@stochastic") is the default format
            text = p if "=" in p or not p.strip() else f"default={p.strip()}"
            return Precision.from_string(text)
        if isinstance(p, Mapping):
            return Precision.from_dict(p)
    except QuantsimError as exc:
        raise ConfigError(f"precision: {exc}") from None
    raise ConfigError(f"precision: expected a spec string such as "
                      f"'default=float32,activations=fp8_e4m3' or a dict, got {p!r}")


def _merge_optimizer(default: dict[str, Any], given: Mapping[str, Any] | None,
                     max_col_norm: float | None) -> dict[str, Any]:
    base = _check_optimizer(default, "workload default optimizer") or {}
    base.setdefault("max_col_norm", max_col_norm)
    if not given:
        return base
    given = dict(given)
    name = given.get("name", base.get("name"))
    if name == base.get("name"):
        merged = {**base, **given}
    else:  # another optimizer: only the constraint carries over
        merged = {"name": name, "lr": _DEFAULT_LR[name], "max_col_norm": base["max_col_norm"],
                  **given}
    return _check_optimizer(merged) or {}


# -- the result -------------------------------------------------------------------------------


def _plain(v: Any) -> Any:
    """JSON-safe copy: numpy scalars to Python, non-finite floats to None."""
    if isinstance(v, Mapping):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, np.ndarray):
        return _plain(v.tolist())
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return float(v) if math.isfinite(float(v)) else None
    if v is None or isinstance(v, str):
        return v
    return str(v)


@dataclass
class RunResult:
    """What :func:`run` produced. ``test_error`` / ``test_loss`` are those of ``best_epoch``
    (lowest validation metric; the last epoch without a validation set). ``metric`` names the
    workload's score and ``test_metric`` its value: ``error`` (= test_error), ``mse``
    (= test_loss, the reconstruction MSE) or ``bpc`` (= test_loss / ln 2)."""

    network: str
    dataset: str
    precision: str
    epochs: int
    test_error: float | None
    test_loss: float | None
    best_epoch: int | None
    diverged: bool
    seconds: float
    history: list[dict[str, Any]]
    metric: str
    test_metric: float | None
    config: dict[str, Any]
    config_hash: str
    num_params: int
    train_examples: int
    stopped_early: bool = False
    diverged_at: dict[str, int] | None = None
    #: pandas.DataFrame (run, epoch, step, layer, role, statistic, value; ``run`` is the config
    #: hash) or None
    stats: Any = None
    cost: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict of everything but ``stats`` (non-finite floats become None)."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "stats"}
        return _plain(d)


# -- progress ---------------------------------------------------------------------------------


class ProgressPrinter:
    """A trainer callback printing one line per epoch (loss, errors, examples/s) to ``stream``."""

    def __init__(self, n_train: int, epochs: int, metric: str, stream: TextIO | None = None):
        self.n_train = n_train
        self.epochs = epochs
        self.metric = metric
        self.stream = stream
        self._epoch_t0 = time.perf_counter()
        self._last_step = self._epoch_t0

    def on_step_end(self, trainer: Any, step: int, loss: float) -> None:
        self._last_step = time.perf_counter()

    def on_epoch_end(self, trainer: Any, epoch: int, metrics: Mapping[str, Any]) -> None:
        train_s = max(self._last_step - self._epoch_t0, 1e-9)
        parts = [f"epoch {epoch:>3}/{self.epochs}", f"loss {metrics.get('train_loss', 0):.4f}"]
        for split in ("train", "val", "test"):
            if self.metric == "error" and f"{split}_error" in metrics:
                parts.append(f"{split}_err {100 * metrics[f'{split}_error']:6.2f}%")
            elif self.metric == "bpc" and f"{split}_loss" in metrics and split != "train":
                parts.append(f"{split}_bpc {metrics[f'{split}_loss'] / _LN2:.4f}")
            elif self.metric == "mse" and f"{split}_loss" in metrics and split != "train":
                parts.append(f"{split}_mse {metrics[f'{split}_loss']:.5f}")
        if "lr" in metrics:
            parts.append(f"lr {metrics['lr']:.3g}")
        parts.append(f"{self.n_train / train_s:,.0f} ex/s")
        parts.append(f"{metrics.get('seconds', 0.0):.1f} s")
        print("  ".join(parts), file=self.stream or sys.stderr, flush=True)
        self._epoch_t0 = self._last_step = time.perf_counter()


# -- running ----------------------------------------------------------------------------------


def _select_device(device: str) -> Any:
    """The checked ``backend.Device``: a DeviceError naming what is missing (CuPy, the driver,
    a GPU, numba-cuda) when CUDA is asked for and cannot work; never a CPU fallback."""
    from quantsim import backend

    return backend.select_device(device)


def _make_optimizer(net: Any, o: Mapping[str, Any]) -> Any:
    from quantsim.optim import SGD, Adam, LossScaler, MaxColNorm

    constraints = []
    if o.get("max_col_norm"):
        from quantsim.nn import Conv2d
        from quantsim.precision import iter_layers

        for layer in iter_layers(net):
            for pname, p in getattr(layer, "params", {}).items():
                if p.value.ndim >= 2 and pname != "U":  # not recurrent matrices
                    axis = 0 if isinstance(layer, Conv2d) else -1  # (out, ...) vs (in, out)
                    constraints.append(MaxColNorm(o["max_col_norm"], f"{layer.name}.{pname}",
                                                  unit_axis=axis))
    scaler = None
    ls = o.get("loss_scale")
    if ls == "dynamic":
        scaler = LossScaler()
    elif isinstance(ls, Mapping):
        try:
            scaler = LossScaler(**ls)
        except TypeError as exc:
            raise ConfigError(f"optimizer.loss_scale: {exc}") from None
    elif ls is not None:
        scaler = LossScaler(ls, dynamic=False)
    common = {"weight_decay": o.get("weight_decay", 0.0), "clip_norm": o.get("clip_norm"),
              "constraints": constraints, "loss_scaler": scaler}
    lr = o.get("lr", _DEFAULT_LR[o["name"]])
    if o["name"] == "sgd":
        m = o.get("momentum", 0.0)
        momentum = make_schedule(m, 0.0) if isinstance(m, Mapping) else m
        return SGD(net, lr, momentum=momentum, nesterov=o.get("nesterov", False), **common)
    return Adam(net, lr, betas=tuple(o.get("betas", (0.9, 0.999))), eps=o.get("eps", 1e-8),
                **common)


def _load_data(cfg: RunConfig, d: Any) -> Any:
    from quantsim.data import load_dataset

    text = cfg.dataset.startswith("text:")
    if d.metric == "bpc" and not text:
        raise ConfigError(f"network {cfg.network!r} is a character language model; use a text "
                          f"data set: --data text:PATH (got {cfg.dataset!r})")
    if text and d.metric != "bpc":
        raise ConfigError(f"data set {cfg.dataset!r} is text; network {cfg.network!r} needs "
                          "images (use char-lstm for text)")
    kw: dict[str, Any] = {"data_dir": cfg.data_dir, "validation": cfg.validation,
                          "limit": cfg.limit, "seed": cfg.seed}
    if text:
        kw["seq_len"] = d.data_options.get("seq_len", 100)
    else:
        kw["view"] = d.view
        kw["preprocess"] = d.preprocess
    return load_dataset(cfg.dataset, **kw)


#: keys a resumed run may change (more epochs, other bookkeeping)
_RESUMABLE_CHANGES = ("epochs", "patience", "stats", "stats_every", "cost")


def _resume_key(cfg: RunConfig) -> str:
    d = cfg.resolved().to_dict()
    for k in _RESUMABLE_CHANGES:
        d.pop(k)
    # Checkpoints hold host arrays: a run may resume on the other device. (Normalised rather
    # than dropped, so keys written before this rule still match for CPU runs.)
    d["device"] = "cpu"
    text = json.dumps(d, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _check_checkpoint_config(checkpoint_dir: Path, cfg: RunConfig, resume: bool) -> None:
    """Keep the config next to the checkpoints; a resume must use the same run (only
    ``epochs``, ``patience``, the stats/cost switches and the device may change)."""
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    path = checkpoint_dir / "run_config.json"
    key = _resume_key(cfg)
    if resume and path.exists():
        saved = json.loads(path.read_text(encoding="utf-8"))
        if saved.get("resume_key") != key:
            raise ConfigError(
                f"{checkpoint_dir} holds checkpoints of another run config; resume with the "
                f"same config (only {', '.join(_RESUMABLE_CHANGES)} and device may change) or "
                "use another checkpoint directory"
            )
    path.write_text(json.dumps({"hash": cfg.hash(), "resume_key": key,
                                "config": _plain(cfg.to_dict())}, indent=2, sort_keys=True),
                    encoding="utf-8")


def run(
    cfg: RunConfig | Mapping[str, Any],
    *,
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    callbacks: Iterable[Any] = (),
    progress: bool | TextIO = True,
) -> RunResult:
    """Train ``cfg`` once and return its :class:`RunResult`.

    ``progress``: True prints a line per epoch to stderr; a stream prints there; False is
    silent. ``callbacks``: extra ``quantsim.train.Callback`` objects (e.g. a study store).
    A diverging run returns ``diverged=True``; it does not raise.
    """
    import networks
    from quantsim.nn import get_loss
    from quantsim.precision import configure_stats
    from quantsim.train import Trainer

    if not isinstance(cfg, RunConfig):
        cfg = RunConfig.from_dict(cfg)
    t0 = time.perf_counter()
    device = _select_device(cfg.device)
    full = cfg.resolved()
    d = cfg.defaults()
    ds = _load_data(cfg, d)
    rng = np.random.default_rng(cfg.seed)
    net = networks.build(cfg.network, ds.input_shape, ds.num_classes, rng, **cfg.network_options)
    precision = _parse_precision(full.precision)
    layer_names = [layer.name for layer in net.layers()]
    try:
        precision.check(layer_names)
    except QuantsimError as exc:
        raise ConfigError(f"precision: {exc}") from None
    net.bind(precision, cfg.seed)
    configure_stats(net, enabled=cfg.stats, every=cfg.stats_every)
    if device.is_cuda:  # built on the host (same initial weights), trained on the GPU
        device.use()
        net.to_device(device)

    optimizer = _make_optimizer(net, full.optimizer)
    optimizer.lr_schedule = make_schedule(full.schedule, full.optimizer.get(
        "lr", _DEFAULT_LR[full.optimizer["name"]]))

    cbs: list[Any] = []
    collector = None
    if cfg.stats or cfg.cost:  # cost needs measured zero fractions too
        try:
            from quantsim.stats import StatsCollector
        except ModuleNotFoundError as exc:
            if exc.name != "quantsim.stats":
                raise
            raise ConfigError("stats/cost: quantsim.stats is not available in this "
                              "installation; run without stats and cost") from None
        collector = StatsCollector(net, every=cfg.stats_every, run=cfg.hash())
        cbs.append(collector)
    n_train = len(ds.train[0])
    stream = None if progress is True or not progress else progress
    if progress:
        print(f"quantsim: {cfg.network} on {ds.name} ({n_train} train / {len(ds.val[0])} val / "
              f"{len(ds.test[0])} test), {net.num_params():,} parameters, precision "
              f"{precision}", file=stream or sys.stderr, flush=True)
        cbs.append(ProgressPrinter(n_train, full.epochs, d.metric, stream))
    cbs.extend(callbacks)

    def split(s: tuple[np.ndarray, np.ndarray]) -> Any:
        if len(s[0]) == 0:
            return None
        return (s[0], None) if d.target == "input" else s

    trainer = Trainer(
        net, get_loss(d.loss), optimizer, batch_size=full.batch_size, epochs=full.epochs,
        seed=cfg.seed, metric="error" if d.metric == "error" else "loss",
        patience=cfg.patience, callbacks=cbs,
        checkpoint_dir=checkpoint_dir, eval_batch_size=max(full.batch_size, 256),
    )
    if checkpoint_dir is not None:
        _check_checkpoint_config(Path(checkpoint_dir), cfg, resume)
    fit = trainer.fit(split(ds.train), split(ds.val), split(ds.test), resume=resume)

    if progress and fit.diverged:
        at = fit.diverged_at or {}
        print(f"diverged at epoch {at.get('epoch')}, step {at.get('step')}: non-finite loss or "
              "weights; the run stops here", file=stream or sys.stderr, flush=True)
    history = [dict(h) for h in fit.history]
    if d.metric == "bpc":
        for h in history:
            for s in ("train", "val", "test"):
                if f"{s}_loss" in h:
                    h[f"{s}_bpc"] = h[f"{s}_loss"] / _LN2
    test_metric = {"error": fit.test_error, "mse": fit.test_loss,
                   "bpc": None if fit.test_loss is None else fit.test_loss / _LN2}[d.metric]

    stats_frame = collector.frame() if collector is not None and cfg.stats else None
    cost = None
    if cfg.cost:
        try:
            from quantsim.hardware import cost_summary
        except ModuleNotFoundError as exc:
            if exc.name != "quantsim.hardware":
                raise
            raise ConfigError("cost: quantsim.hardware is not available in this installation; "
                              "run without cost") from None
        o = full.optimizer
        moments = 2 if o["name"] == "adam" else int(bool(o.get("momentum", 0.0)))
        cost = cost_summary(net, precision, full.batch_size, tuple(ds.input_shape),
                            zero_fractions=collector if fit.epochs else None,
                            optimizer_moments=moments, input_dtype=ds.train[0].dtype)

    return RunResult(
        network=cfg.network, dataset=ds.name, precision=str(precision), epochs=fit.epochs,
        test_error=fit.test_error, test_loss=fit.test_loss, best_epoch=fit.best_epoch,
        diverged=fit.diverged, seconds=time.perf_counter() - t0, history=history,
        metric=d.metric, test_metric=test_metric, config=full.to_dict(),
        config_hash=cfg.hash(), num_params=net.num_params(), train_examples=n_train,
        stopped_early=fit.stopped_early, diverged_at=fit.diverged_at, stats=stats_frame,
        cost=cost,
    )
