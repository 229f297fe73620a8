"""Study files: a TOML description of a grid of training runs, validated before anything runs.

A study is ``variants x grid axes x seeds`` applied to a ``[base]`` run config (the keys of
:class:`quantsim.runner.RunConfig`). Keys of variants and grid axes are dotted paths into the
config (``"optimizer.lr"``, ``"network_options.hidden"``); a table value merges into a table of
the base, except that a table naming another ``name`` (e.g. another optimizer) replaces it.
Every expanded run goes through ``RunConfig.from_dict`` (and the precision parser) here, so a
bad study fails with a :class:`~quantsim.errors.StudyError` naming the file, the key path and
the fix before a single run starts. See ``docs/studies.md`` for the format.
"""

from __future__ import annotations

import copy
import hashlib
import importlib
import itertools
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from quantsim.errors import QuantsimError, StudyError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DEFAULT_RUNNER = "quantsim.runner"
TOP_KEYS = ("name", "description", "seeds", "reference", "base", "grid", "variants", "resources")
RESOURCE_KEYS = ("cpus", "gpus")
_RESERVED = ("seed",)  # set per run from `seeds`


@dataclass(frozen=True)
class StudyRun:
    """One expanded run: its label, seed, normalised config and identity."""

    id: str  # store key: hash of (study name, config hash)
    label: str
    seed: int
    config: dict[str, Any]  # RunConfig.to_dict(): JSON-safe, normalised
    config_hash: str
    variant: str | None
    axes: dict[str, Any]  # grid axis -> value for this run
    position: int  # order in the study

    def to_item(self) -> dict[str, Any]:
        """Plain data handed to a worker process / Ray task."""
        return {"id": self.id, "label": self.label, "seed": self.seed, "config": self.config,
                "config_hash": self.config_hash}


@dataclass
class Study:
    """A parsed, validated study file."""

    name: str
    description: str
    path: Path | None
    text: str
    seeds: list[int]
    base: dict[str, Any]
    grid: dict[str, list[Any]]
    variants: list[dict[str, Any]]
    runs: list[StudyRun] = field(default_factory=list)
    reference: Path | None = None
    resources: dict[str, float] = field(default_factory=lambda: {"cpus": 1, "gpus": 0})

    @property
    def where(self) -> str:
        return str(self.path) if self.path is not None else "<study>"


# -- helpers ------------------------------------------------------------------------------------


def _runner_module(runner: str | ModuleType | None) -> ModuleType:
    if isinstance(runner, ModuleType):
        return runner
    name = runner or DEFAULT_RUNNER
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise StudyError(f"cannot import the runner module {name!r}: {exc}") from exc


def runner_name(runner: str | ModuleType | None) -> str:
    if isinstance(runner, ModuleType):
        return runner.__name__
    return runner or DEFAULT_RUNNER


def _err(where: str, key: str, msg: str) -> StudyError:
    return StudyError(f"{where}: {key}: {msg}")


def flatten(d: Mapping[str, Any], prefix: str = "", stop_at_lists: bool = False
            ) -> dict[str, Any]:
    """``{"optimizer": {"lr": 1}}`` -> ``{"optimizer.lr": 1}`` (one level per table)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        path = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, Mapping) and v and (stop_at_lists or path.split(".")[0] != "precision"):
            out.update(flatten(v, path, stop_at_lists))
        else:
            out[path] = v
    return out


def set_path(config: dict[str, Any], path: str, value: Any, where: str) -> None:
    """Set the dotted ``path`` of ``config`` to ``value`` (tables merge, see the module doc)."""
    parts = path.split(".")
    if any(not p for p in parts):
        raise _err(where, path, "empty component in a dotted key; write e.g. 'optimizer.lr'")
    node = config
    for i, p in enumerate(parts[:-1]):
        child = node.get(p)
        if child is None:
            child = node[p] = {}
        elif not isinstance(child, dict):
            prefix = ".".join(parts[: i + 1])
            raise _err(where, path, f"cannot set a key inside {prefix!r}: the base gives it as "
                       f"{child!r}, not a table; give the whole value of {prefix!r} instead")
        node = child
    last = parts[-1]
    old = node.get(last)
    if isinstance(value, Mapping) and isinstance(old, dict) and (
            "name" not in value or value.get("name") == old.get("name")):
        merged = copy.deepcopy(old)
        for k, v in value.items():
            set_path(merged, str(k), copy.deepcopy(v), where)
        node[last] = merged
    else:
        node[last] = copy.deepcopy(value)


def _label_value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, (str, int, bool)) or v is None:
        return str(v)
    return json.dumps(v, sort_keys=True, separators=(",", ":"))


def _config_hash(cfg: Any, normalised: dict[str, Any]) -> str:
    h = getattr(cfg, "hash", None)
    if callable(h):
        return str(h())
    text = json.dumps(normalised, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def run_id(study_name: str, config_hash: str) -> str:
    return hashlib.blake2b(f"{study_name}\0{config_hash}".encode(), digest_size=8).hexdigest()


def _check_precision(value: Any, where: str, key: str) -> None:
    """The precision parser's own message, placed at ``key`` of the study file."""
    from quantsim.precision import Precision

    try:
        if isinstance(value, str):  # a bare spec ("bfloat16") is the default format
            text = value if "=" in value or not value.strip() else f"default={value.strip()}"
            Precision.from_string(text)
        elif isinstance(value, Mapping):
            Precision.from_dict(value)
        else:
            raise StudyError(f"expected a spec string such as 'default=float32,activations="
                             f"fp8_e4m3' or a table, got {value!r}")
    except QuantsimError as exc:
        raise _err(where, key, f"{exc}") from None


# -- parsing ------------------------------------------------------------------------------------


def parse_study(text: str, path: str | Path | None = None, *,
                runner: str | ModuleType | None = None, name: str | None = None) -> Study:
    """Parse and validate study TOML ``text`` (``path`` is used in messages and for
    relative references). Raises :class:`StudyError`."""
    where = str(path) if path is not None else "<study>"
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:  # keeps "(at line L, column C)"
        raise StudyError(f"{where}: TOML syntax error: {exc}") from None

    for key in doc:
        if key not in TOP_KEYS:
            raise _err(where, key, f"unknown top-level key; valid keys are {', '.join(TOP_KEYS)}"
                       " (run options go under [base], [grid] or [[variants]])")

    def typed(key: str, types: type | tuple[type, ...], what: str, default: Any) -> Any:
        v = doc.get(key, default)
        if not isinstance(v, types):
            raise _err(where, key, f"expected {what}, got {v!r}")
        return v

    stem = Path(path).stem if path is not None else "study"
    sname = typed("name", str, "a string", name or stem).strip()
    if not sname:
        raise _err(where, "name", "must not be empty")
    description = typed("description", str, "a string", "")
    base = typed("base", dict, "a table [base] of run options", {})
    grid_in = typed("grid", dict, "a table [grid] of axis = [values]", {})
    variants = typed("variants", list, "an array of tables [[variants]]", [])
    resources_in = typed("resources", dict, "a table [resources] with cpus / gpus", {})

    seeds_in = doc.get("seeds", [0])
    if isinstance(seeds_in, int) and not isinstance(seeds_in, bool):
        if seeds_in < 1:
            raise _err(where, "seeds", f"a count must be >= 1, got {seeds_in}; or give a list")
        seeds = list(range(seeds_in))
    elif isinstance(seeds_in, list):
        seeds = seeds_in
        for i, s in enumerate(seeds):
            if isinstance(s, bool) or not isinstance(s, int) or s < 0:
                raise _err(where, f"seeds[{i}]", f"expected a non-negative integer, got {s!r}")
        if not seeds:
            raise _err(where, "seeds", "is empty: the study would have no runs; give e.g. "
                       "seeds = [0] or seeds = 3")
        if len(set(seeds)) != len(seeds):
            raise _err(where, "seeds", f"repeats a seed: {seeds}")
    else:
        raise _err(where, "seeds", f"expected a list of integers or a count, got {seeds_in!r}")

    resources = {"cpus": 1, "gpus": 0}
    for k, v in resources_in.items():
        if k not in RESOURCE_KEYS:
            raise _err(where, f"resources.{k}", f"unknown key; valid keys are "
                       f"{', '.join(RESOURCE_KEYS)}")
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
            raise _err(where, f"resources.{k}", f"expected a non-negative number, got {v!r}")
        resources[k] = v

    reference = None
    if "reference" in doc:
        ref = typed("reference", str, "a path string", "")
        reference = Path(ref)
        if not reference.is_absolute() and path is not None:
            reference = Path(path).parent / reference
        if not reference.exists():
            raise _err(where, "reference", f"file {str(reference)!r} does not exist; give a "
                       "path relative to the study file, e.g. 'references/courbariaux2015.csv'")

    for key in base:
        if key in TOP_KEYS:
            raise _err(where, f"base.{key}", f"{key!r} is a top-level key; in TOML, keys after "
                       "a [table] header belong to that table: move it above [base]")
    for key in flatten(base, "base", stop_at_lists=True):
        if key.split(".")[1] in _RESERVED:
            raise _err(where, key, "the seed is set per run: use the top-level seeds = [...]")
    if "precision" in base:
        _check_precision(base["precision"], where, "base.precision")

    grid: dict[str, list[Any]] = {}
    for axis, values in flatten(grid_in).items():
        key = f"grid.{axis}"
        if axis.split(".")[0] in _RESERVED:
            raise _err(where, key, "the seed is set per run: use the top-level seeds = [...]")
        if not isinstance(values, list):
            raise _err(where, key, f"a grid axis is a list of values, got {values!r}; write "
                       f"{axis} = [{_label_value(values)}] or move it to [base]")
        if not values:
            raise _err(where, key, "is an empty list: the grid would have no runs; give at "
                       "least one value or remove the axis")
        if axis == "precision":
            for i, v in enumerate(values):
                _check_precision(v, where, f"{key}[{i}]")
        grid[axis] = values

    labels: set[str] = set()
    vlist: list[dict[str, Any]] = []
    for i, var in enumerate(variants):
        vkey = f"variants[{i}]"
        if not isinstance(var, dict):
            raise _err(where, vkey, f"expected a table, got {var!r}")
        label = var.get("label")
        if not isinstance(label, str) or not label.strip():
            raise _err(where, f"{vkey}.label", "every variant needs a non-empty string label, "
                       'e.g. label = "fp8"')
        if label in labels:
            raise _err(where, f"{vkey}.label", f"duplicate label {label!r}; labels must be "
                       "unique")
        labels.add(label)
        overrides = {k: v for k, v in var.items() if k != "label"}
        for key in flatten(overrides):
            if key.split(".")[0] in _RESERVED:
                raise _err(where, f"{vkey}.{key}", "the seed is set per run: use the "
                           "top-level seeds = [...]")
        if "precision" in overrides:
            _check_precision(overrides["precision"], where, f"{vkey}.precision ({label})")
        vlist.append({"label": label, "overrides": overrides, "key": vkey})

    study = Study(name=sname, description=description, path=Path(path) if path else None,
                  text=text, seeds=list(seeds), base=base, grid=grid, variants=vlist,
                  reference=reference, resources=resources)
    study.runs = _expand(study, _runner_module(runner))
    return study


def load_study(path: str | Path, *, runner: str | ModuleType | None = None) -> Study:
    """Read, parse and validate the study file at ``path``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise StudyError(f"cannot read study file {str(path)!r}: {exc.strerror or exc}") from None
    return parse_study(text, path, runner=runner)


def _expand(study: Study, runner: ModuleType) -> list[StudyRun]:
    where = study.where
    variants = study.variants or [{"label": None, "overrides": {}, "key": None}]
    axes = list(study.grid.items())
    combos = list(itertools.product(*[v for _, v in axes])) if axes else [()]
    runs: list[StudyRun] = []
    seen: dict[str, str] = {}
    checked: set[str] = set()
    for var in variants:
        for combo in combos:
            for seed in study.seeds:
                # each source as (key path for messages, dotted key, value)
                sources: list[tuple[str, list[tuple[str, Any]]]] = [
                    ("base", [(k, v) for k, v in study.base.items()])]
                if var["key"] is not None:
                    sources.append((f"{var['key']} ({var['label']})",
                                    list(var["overrides"].items())))
                for (axis, _), value in zip(axes, combo, strict=True):
                    sources.append((f"grid.{axis} = {_label_value(value)}", [(axis, value)]))
                cfg = _build(runner, sources, seed, where)
                _check_layers(cfg, sources, where, checked)
                normal = cfg.to_dict()
                chash = _config_hash(cfg, normal)
                parts = [var["label"]] if var["label"] else []
                named = dict(zip([a for a, _ in axes], combo, strict=True))
                parts += [f"{axis}={_label_value(v)}" for axis, v in named.items()]
                label = " ".join(parts) or study.name
                ident = f"{label} seed={seed}"
                if chash in seen:
                    raise _err(where, var["key"] or "grid", f"runs {seen[chash]!r} and {ident!r} "
                               "have the same config; make the variants differ or drop one")
                seen[chash] = ident
                runs.append(StudyRun(
                    id=run_id(study.name, chash), label=label, seed=seed,
                    config=json.loads(json.dumps(normal, default=str)), config_hash=chash,
                    variant=var["label"], axes=named,
                    position=len(runs)))
    if not runs:
        raise StudyError(f"{where}: the study expands to no runs; add [base], variants or seeds")
    return runs


def _compose(sources: list[tuple[str, list[tuple[str, Any]]]], seed: int, where: str
             ) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for origin, items in sources:
        for key, value in items:
            set_path(config, key, value, f"{where}: {origin}")
    config["seed"] = seed
    return config


def _build(runner: ModuleType, sources: list[tuple[str, list[tuple[str, Any]]]], seed: int,
           where: str) -> Any:
    """``RunConfig.from_dict`` of the composed config; on failure, blame the first source whose
    addition produces the error (base, then the variant, then each grid axis)."""
    try:
        return runner.RunConfig.from_dict(_compose(sources, seed, where))
    except StudyError:
        raise
    except (QuantsimError, ValueError, TypeError, KeyError) as exc:
        message = str(exc)
        culprit = sources[-1][0]
        for n in range(1, len(sources) + 1):
            try:
                runner.RunConfig.from_dict(_compose(sources[:n], seed, where))
            except (QuantsimError, ValueError, TypeError, KeyError) as sub:
                if str(sub) == message:
                    culprit = sources[n - 1][0]
                    break
        raise StudyError(f"{where}: {culprit}: {message}") from None


#: (C, H, W) of the image data sets, to name a network's layers without loading the data.
_IMAGE_SHAPES = {"digits": (1, 8, 8), "mnist": (1, 28, 28), "fashion-mnist": (1, 28, 28),
                 "mnist-5k": (1, 28, 28), "cifar10": (3, 32, 32), "svhn": (3, 32, 32)}


def _check_layers(cfg: Any, sources: list[tuple[str, list[tuple[str, Any]]]], where: str,
                  checked: set[str]) -> None:
    """Per-layer precision overrides must match layers of the network (built, untrained,
    from the data set's known shape; skipped when the shape is not known in advance)."""
    from quantsim.precision import Precision

    precision = getattr(cfg, "precision", None)
    try:
        if isinstance(precision, str):
            text = precision if "=" in precision or not precision.strip() \
                else f"default={precision.strip()}"
            p = Precision.from_string(text)
        else:
            p = Precision.from_dict(precision or {})
    except QuantsimError:
        return  # RunConfig accepted it: not ours to judge
    if not p.layers:
        return
    network, dataset = getattr(cfg, "network", None), getattr(cfg, "dataset", None)
    options = dict(getattr(cfg, "network_options", {}) or {})
    key = json.dumps([network, dataset, options, str(p)], sort_keys=True, default=str)
    if key in checked:
        return
    checked.add(key)
    try:
        import networks
        from quantsim.data.views import view_shape

        image = _IMAGE_SHAPES[str(dataset).strip().lower().replace("_", "-")]
        view = cfg.defaults().view
        net = networks.build(network, view_shape(view, image), 10, 0, **options)
        names = [layer.name for layer in net.layers()]
    except Exception:  # noqa: BLE001 - unknown shape or no builder: the runner checks later
        return
    try:
        p.check(names)
    except QuantsimError as exc:
        origin = "base"
        for name, items in sources:
            if any(k == "precision" or k.startswith("precision.") for k, _ in items):
                origin = name
        raise StudyError(f"{where}: {origin}: precision: {exc}") from None


def list_studies(directory: str | Path = "studies", *, runner: str | ModuleType | None = None
                 ) -> list[dict[str, Any]]:
    """Every ``*.toml`` in ``directory``: name, description, runs (or the error)."""
    out = []
    for path in sorted(Path(directory).glob("*.toml")):
        try:
            st = load_study(path, runner=runner)
            out.append({"path": str(path), "name": st.name, "description": st.description,
                        "runs": len(st.runs), "error": None})
        except QuantsimError as exc:
            out.append({"path": str(path), "name": path.stem, "description": "",
                        "runs": None, "error": str(exc)})
    return out
