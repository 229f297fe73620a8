"""Precision policy (role -> number format, per-layer overrides) and quantization points.

A :class:`Precision` says which number format each *role* (see :data:`ROLES`) uses, with a
default and per-layer overrides by exact name or ``fnmatch`` glob. Binding a network to a policy
(``net.bind(precision, seed)``) gives every layer a :class:`LayerPoints`: one
:class:`QuantPoint` per role plus ``matmul`` with the accumulator policy.

Resolution order of ``format_for(layer, role)``:
  1. the layer override's entry for ``role``, then its ``default`` entry (``inputs`` excepted);
  2. the policy's entry for ``role``;
  3. the policy's ``default`` (``inputs`` excepted: it stays float32, i.e. off, unless set).
When several override patterns match a layer, an exact name beats a glob and among globs the
one listed last wins.

Compact string grammar (CLI; top-level commas only, so ``fixed<4,12>`` is one spec)::

    default=float32,activations=fp8_e4m3@stochastic,updates=fixed<4,12>,
    layer:fc1.weights=bf16,layer:conv*.default=float16,accumulator_chunk=16
"""

from __future__ import annotations

import fnmatch
import hashlib
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from quantsim.errors import PrecisionError
from quantsim.formats.base import NumberFormat, run_float32_fast
from quantsim.formats.carrier import carrier_for
from quantsim.kernels import float32_fast, scalar
from quantsim.kernels.rng import stream_key
from quantsim.nn._blas import matmul as _plain_matmul

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROLES: tuple[str, ...] = (
    "inputs",
    "weights",
    "activations",
    "errors",
    "gradients",
    "updates",
    "optimizer_state",
    "accumulator",
)
DEFAULT_CHUNK = 32  # Wang et al. 2018 use chunks of 64; 32 is a common hardware MAC-tree width.
_OFF = "float32"
_LAYER_KEYS = ROLES + ("default",)
_TOP_KEYS = ("default", "roles", "layers", "accumulator_chunk")


def _parse(spec: Any, where: str) -> Any:
    """Parse a spec string (or pass a format object through), naming ``where`` on failure."""
    from quantsim.formats import parse

    if not isinstance(spec, str):
        if hasattr(spec, "quantize") and hasattr(spec, "is_identity"):
            return spec
        raise PrecisionError(
            f"{where}: expected a format spec string such as 'bfloat16' or 'fixed<4,12>', "
            f"got {spec!r}"
        )
    try:
        return parse(spec.strip())
    except Exception as exc:  # the formats parser's message says what is wrong with the spec
        raise PrecisionError(f"{where}: bad format spec {spec!r}: {exc}") from exc


def _check_role(role: str, where: str, allowed: tuple[str, ...] = ROLES) -> None:
    if role not in allowed:
        raise PrecisionError(
            f"{where}: unknown role {role!r}; valid roles are {', '.join(allowed)}"
        )


def split_top_level(text: str, sep: str = ",") -> list[str]:
    """Split ``text`` on ``sep`` outside ``<...>`` brackets (``fixed<4,12>`` stays whole)."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth -= 1
            if depth < 0:
                raise PrecisionError(f"unbalanced '>' at position {i} in {text!r}")
        elif ch == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    if depth != 0:
        raise PrecisionError(f"unbalanced '<' in {text!r}: close every '<' with '>'")
    parts.append(text[start:])
    return parts


def _check_chunk(chunk: Any) -> int:
    if isinstance(chunk, bool) or not isinstance(chunk, (int, np.integer)) or chunk < 1:
        raise PrecisionError(
            f"accumulator_chunk must be a positive integer (1 = round after every addition), "
            f"got {chunk!r}"
        )
    return int(chunk)


@dataclass(frozen=True)
class Precision:
    """Which number format each role uses, with per-layer overrides.

    ``roles`` maps role -> format; ``layers`` is an ordered tuple of ``(pattern, {key: format})``
    where ``key`` is a role or ``"default"``. ``accumulator_chunk`` is the number of products
    summed in the carrier precision before rounding into the accumulator format.
    """

    default: Any
    roles: Mapping[str, Any] = field(default_factory=dict)
    layers: tuple[tuple[str, Mapping[str, Any]], ...] = ()
    accumulator_chunk: int = DEFAULT_CHUNK

    # -- constructors -------------------------------------------------------------------------

    @classmethod
    def float32(cls) -> Precision:
        """Every role in float32: on float32 carriers the engine is the plain float engine."""
        return cls(default=_parse(_OFF, "default"))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Precision:
        """Build from ``{"default", "roles", "layers", "accumulator_chunk"}``.

        Role names may also appear at the top level (``{"activations": "fp8_e4m3"}``), the
        flat form used in TOML files; a role given both ways is an error.
        """
        if not isinstance(d, Mapping):
            raise PrecisionError(f"precision must be a mapping, got {type(d).__name__}: {d!r}")
        for key in d:
            if key not in _TOP_KEYS and key not in ROLES:
                raise PrecisionError(
                    f"unknown precision key {key!r}; valid keys are "
                    f"{', '.join(_TOP_KEYS + ROLES)}"
                )
        default = _parse(d.get("default", _OFF), "default")
        roles_in = d.get("roles", {})
        if not isinstance(roles_in, Mapping):
            raise PrecisionError(f"'roles' must be a mapping role -> spec, got {roles_in!r}")
        roles: dict[str, Any] = {}
        for role, spec in roles_in.items():
            _check_role(role, "roles")
            roles[role] = _parse(spec, f"role {role!r}")
        for role in ROLES:
            if role in d:
                if role in roles:
                    raise PrecisionError(
                        f"role {role!r} is given both at the top level and under 'roles'; "
                        "keep one"
                    )
                roles[role] = _parse(d[role], f"role {role!r}")
        layers_in = d.get("layers", {})
        if isinstance(layers_in, Mapping):
            layer_items = list(layers_in.items())
        elif isinstance(layers_in, (list, tuple)):
            layer_items = list(layers_in)
        else:
            raise PrecisionError(
                f"'layers' must map a layer name or glob to roles, got {layers_in!r}"
            )
        layers = []
        for item in layer_items:
            if not (isinstance(item, (tuple, list)) and len(item) == 2):
                raise PrecisionError(
                    f"'layers' entries must be (pattern, {{role: spec}}), got {item!r}"
                )
            pattern, entries = item
            if not isinstance(pattern, str) or not pattern:
                raise PrecisionError(f"layer pattern must be a non-empty string, got {pattern!r}")
            if not isinstance(entries, Mapping):
                raise PrecisionError(
                    f"layer {pattern!r}: expected a mapping role -> spec, got {entries!r}"
                )
            parsed = {}
            for role, spec in entries.items():
                _check_role(role, f"layer {pattern!r}", _LAYER_KEYS)
                parsed[role] = _parse(spec, f"layer {pattern!r} role {role!r}")
            layers.append((pattern, parsed))
        chunk = _check_chunk(d.get("accumulator_chunk", DEFAULT_CHUNK))
        return cls(default=default, roles=roles, layers=tuple(layers), accumulator_chunk=chunk)

    @classmethod
    def from_toml(cls, source: str | Path) -> Precision:
        """Build from a TOML file path or TOML text (a top-level ``[precision]`` table is used
        when present)."""
        text = None
        if isinstance(source, Path) or ("\n" not in source and "=" not in source):
            path = Path(source)
            try:
                text = path.read_text(encoding="utf-8")
            except OSError as exc:
                raise PrecisionError(f"cannot read precision file {str(path)!r}: {exc}") from exc
        else:
            text = source
        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise PrecisionError(f"precision TOML does not parse: {exc}") from exc
        if set(doc) == {"precision"}:
            doc = doc["precision"]
        return cls.from_dict(doc)

    @classmethod
    def from_string(cls, text: str) -> Precision:
        """Build from the compact ``key=spec,...`` string (see the module docstring)."""
        if not isinstance(text, str):
            raise PrecisionError(f"precision string expected, got {text!r}")
        d: dict[str, Any] = {"roles": {}, "layers": {}}
        for raw in split_top_level(text):
            item = raw.strip()
            if not item:
                continue
            key, eq, value = item.partition("=")
            key, value = key.strip(), value.strip()
            if not eq or not key or not value:
                raise PrecisionError(
                    f"bad precision item {item!r}: write key=spec, e.g. 'weights=bfloat16' "
                    "or 'layer:fc1.weights=bfloat16'"
                )
            if key == "default":
                d["default"] = value
            elif key == "accumulator_chunk":
                try:
                    d["accumulator_chunk"] = int(value)
                except ValueError:
                    raise PrecisionError(
                        f"accumulator_chunk must be a positive integer, got {value!r}"
                    ) from None
            elif key.startswith("layer:"):
                pattern, dot, role = key[len("layer:"):].rpartition(".")
                if not dot or not pattern:
                    raise PrecisionError(
                        f"bad layer override {key!r}: write layer:NAME_OR_GLOB.ROLE=spec, "
                        "e.g. 'layer:fc*.weights=bf16'"
                    )
                d["layers"].setdefault(pattern, {})[role] = value
            else:
                _check_role(key, f"precision item {item!r}", ROLES + ("default",))
                d["roles"][key] = value
        return cls.from_dict(d)

    # -- queries ------------------------------------------------------------------------------

    def format_for(self, layer_name: str, role: str) -> Any:
        """The format of ``role`` in layer ``layer_name`` (resolution order: module docstring)."""
        _check_role(role, f"format_for({layer_name!r}, ...)")
        for entries in self._matching(layer_name):
            if role in entries:
                return entries[role]
            if role != "inputs" and "default" in entries:
                return entries["default"]
        if role in self.roles:
            return self.roles[role]
        if role == "inputs":
            return _parse(_OFF, "inputs")
        return self.default

    def _matching(self, layer_name: str) -> list[Mapping[str, Any]]:
        """Override entries matching ``layer_name``, most specific first."""
        exact = [e for p, e in self.layers if p == layer_name]
        globs = [e for p, e in reversed(self.layers) if p != layer_name
                 and fnmatch.fnmatchcase(layer_name, p)]
        return exact + globs

    def check(self, layer_names: Iterable[str]) -> None:
        """Raise :class:`PrecisionError` if an override pattern matches none of ``layer_names``."""
        names = list(layer_names)
        for pattern, _ in self.layers:
            if not any(fnmatch.fnmatchcase(n, pattern) for n in names):
                raise PrecisionError(
                    f"layer override {pattern!r} matches no layer; the network's layers are "
                    f"{', '.join(names) or '(none)'}"
                )

    # -- serialisation ------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form; ``Precision.from_dict(p.to_dict()) == p``."""
        return {
            "default": str(self.default),
            "roles": {r: str(f) for r, f in self.roles.items()},
            "layers": {p: {r: str(f) for r, f in e.items()} for p, e in self.layers},
            "accumulator_chunk": self.accumulator_chunk,
        }

    def __str__(self) -> str:
        items = [f"default={self.default}"]
        items += [f"{r}={f}" for r, f in self.roles.items()]
        items += [f"layer:{p}.{r}={f}" for p, e in self.layers for r, f in e.items()]
        if self.accumulator_chunk != DEFAULT_CHUNK:
            items.append(f"accumulator_chunk={self.accumulator_chunk}")
        return ",".join(items)

    def __hash__(self) -> int:
        return hash(str(self))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Precision):
            return NotImplemented
        return self.to_dict() == other.to_dict()


# -- quantization points ----------------------------------------------------------------------

_SEED_MASK = (1 << 64) - 1  # formats take seeds in [0, 2**64)


def _hash_update(h: Any, parts: Iterable[object]) -> Any:
    for p in parts:
        b = str(p).encode("utf-8")
        h.update(len(b).to_bytes(4, "little"))
        h.update(b)
    return h


def stable_hash64(*parts: object) -> int:
    """A 64-bit hash of ``parts`` that is the same in every process (unlike ``hash``)."""
    return int.from_bytes(_hash_update(hashlib.blake2b(digest_size=8), parts).digest(), "little")


def _new_stats() -> Any:
    from quantsim.formats import QuantStats

    return QuantStats()


class QuantPoint:
    """Rounds every tensor of one (layer, role) into ``fmt``, with counters and state.

    Stochastic seeds: call ``n`` uses ``stable_hash64(seed, layer, role, n)``; the counter ``n``
    advances only on calls that quantize (identity calls are free and use no randomness).
    ``stats`` (a ``QuantStats``) accumulates over calls when ``collect_stats`` is on; with
    ``stats_every = k`` a call is counted with probability 1/k, decided by its hash (so the
    choice is reproducible, and a pattern that repeats every few calls, e.g. a layer's weight
    matrix and bias alternating, cannot alias with the sampling as "every k-th call" would),
    and always when ``sample_next`` is set (the first call, and the first after each snapshot
    of ``quantsim.stats.StatsCollector``, so that short epochs still get counted).

    A stateful format (dynamic fixed point) keeps one state per *tensor* the point sees:
    ``point(x, tag="b")`` uses the state of tag ``"b"`` (layers tag their parameters by name,
    so a weight matrix and its bias get radix positions of their own, as in Courbariaux et
    al. 2015); untagged calls share ``state``.
    """

    #: Calls with ``out=`` write into it, and no argument is kept (`quantsim.nn.base.writes_out`).
    writes_out = True

    def __init__(
        self,
        layer: str,
        role: str,
        fmt: Any,
        seed: int = 0,
        *,
        collect_stats: bool = True,
        stats_every: int = 1,
    ) -> None:
        _check_role(role, f"QuantPoint({layer!r})")
        self.layer = layer
        self.role = role
        self.fmt = fmt
        self.seed = int(seed)
        self.calls = 0
        self.state = fmt.new_state()
        #: per-tensor states of a stateful format, by tag (see the class docstring)
        self.tag_states: dict[str, Any] = {}
        #: identity calls seen (they are not quantizing calls: a separate sampling stream)
        self.identity_calls = 0
        #: count the next call whatever the sampling says (set again after every statistics
        #: snapshot, so that each period has at least one counted call per point)
        self.sample_next = True
        self.collect_stats = collect_stats
        self.stats_every = stats_every
        self.stats = _new_stats()
        #: count statistics on identity calls too (set by quantsim.stats.StatsCollector)
        self.observe_identity = False
        # Caches (formats are immutable; each is re-derived if fmt / seed / names change).
        self._identity_of: tuple[Any, dict[Any, bool]] = (None, {})
        self._hash_prefix: tuple[Any, Any] = (None, None)
        self._core_of: tuple[Any, Any] = (None, None)

    def __repr__(self) -> str:
        return f"QuantPoint({self.layer!r}, {self.role!r}, {str(self.fmt)!r}, calls={self.calls})"

    def __getstate__(self) -> dict[str, Any]:
        # The caches hold a hashlib object (not picklable): copies and pickles rebuild them.
        d = dict(self.__dict__)
        d["_identity_of"] = (None, {})
        d["_hash_prefix"] = (None, None)
        d["_core_of"] = (None, None)
        return d

    def call_seed(self, n: int) -> int:
        """The stochastic-rounding seed of call number ``n`` (0-based): equal to
        ``stable_hash64(seed, layer, role, n)``, hashing the fixed prefix only once."""
        key = (self.seed, self.layer, self.role)
        cached_key, prefix = self._hash_prefix
        if cached_key != key:
            prefix = _hash_update(hashlib.blake2b(digest_size=8), key)
            self._hash_prefix = (key, prefix)
        h = _hash_update(prefix.copy(), (n,))
        return int.from_bytes(h.digest(), "little") & _SEED_MASK

    def is_identity(self, dtype: Any) -> bool:
        """True when this point leaves carriers of ``dtype`` unchanged."""
        fmt = self.fmt
        cached_fmt, table = self._identity_of
        if cached_fmt is not fmt:
            table = {}
            self._identity_of = (fmt, table)
        try:
            return table[dtype]
        except (KeyError, TypeError):
            pass
        result = bool(fmt.is_identity(np.dtype(dtype)))
        try:
            table[dtype] = result
        except TypeError:  # an unhashable dtype-like: no caching
            pass
        return result

    def fused_call_plan(self, dtype: Any) -> tuple | None:
        """How a kernel that rounds float32 values itself makes this point's next call exactly
        as ``self(x)`` would: ``(fast-core constants, rounding code, two's complement, stream
        key)``, for `float32_fast.quantize_f32` with element i's random word
        ``rng.random32(key, i)``.
        None when the call must go through ``__call__``: a carrier other than float32, an exact
        format, one with its own kernel or state, statistics to count on this call, or a grid
        outside the fast core. Changes nothing: the caller then calls `count_fused_call`."""
        if type(self).__call__ is not QuantPoint.__call__ or np.dtype(dtype) != np.float32:
            return None  # a subclass's own behaviour
        core = self._float32_core()
        if core is None:
            return None
        seed = self.call_seed(self.calls)
        if self.collect_stats and self._would_count(seed):
            return None
        fast, code, twos, stochastic = core
        return fast, code, twos, stream_key(seed) if stochastic else 0

    def _float32_core(self) -> tuple | None:
        """``(fast-core constants, rounding code, two's complement, stochastic)`` of this
        point's format on float32 carriers, or None when its calls must go through
        ``fmt.quantize`` (an exact format, one with its own kernel or state, a grid outside the
        fast core). Cached per format object (formats are immutable)."""
        fmt = self.fmt
        cached_fmt, core = self._core_of
        if cached_fmt is fmt:
            return core
        core = None
        kind = type(fmt)
        if (isinstance(fmt, NumberFormat) and not self.is_identity(np.float32)
                and kind.quantize is NumberFormat.quantize and kind._run is NumberFormat._run
                and fmt.new_state() is None):
            carrier = carrier_for(np.float32)
            try:
                fmt.check_carrier(carrier)
                params = fmt.grid_params(carrier, None)
            except Exception:  # the regular call raises the user-facing error
                params = None
            rnd = fmt.rounding
            fast = float32_fast.fast_params(carrier, params, rnd) if params is not None else None
            if fast is not None:
                core = (fast, rnd.code, params.kind == scalar.KIND_FIXED, rnd.is_stochastic)
        self._core_of = (fmt, core)
        return core

    def count_fused_call(self, tag: str | None = None) -> None:
        """Record a call made by a kernel from `fused_call_plan` as the call ``self(x,
        tag=tag)`` would (the call counter advances, the tag's state entry exists)."""
        self.state_for(tag)
        self.calls += 1

    def _would_count(self, seed: int) -> bool:
        """`_counted` without its effect: whether a call whose hash is ``seed`` is counted."""
        return self.sample_next or self.stats_every == 1 or seed % self.stats_every == 0

    def _counted(self, seed: int) -> bool:
        """Whether a call whose hash is ``seed`` is counted: always when ``sample_next`` is set
        (then cleared), else with probability 1 / stats_every."""
        if self._would_count(seed):
            self.sample_next = False
            return True
        return False

    def state_for(self, tag: str | None) -> Any:
        """The format state of tensor ``tag`` (``state`` for None), created on first use."""
        if tag is None:
            return self.state
        st = self.tag_states.get(tag)
        if st is None:
            st = self.tag_states[tag] = self.fmt.new_state()
        return st

    def states(self) -> Iterator[tuple[str | None, Any]]:
        """``(tag, state)`` of every tensor state (None: the untagged ``state``)."""
        yield None, self.state
        yield from self.tag_states.items()

    def __call__(self, x: np.ndarray, out: np.ndarray | None = None, *,
                 tag: str | None = None) -> np.ndarray:
        """Quantize ``x`` (returns ``x`` itself when the format is exact on its dtype); ``tag``
        names the tensor for stateful formats (see the class docstring)."""
        if self.is_identity(x.dtype):
            if self.observe_identity and self.collect_stats:
                m = self.identity_calls
                self.identity_calls = m + 1
                if self._counted(self.call_seed(-1 - m)):
                    # Exact formats (float32 roles) still report what passed through them.
                    _observe(x, self.stats)
            if out is not None and out is not x:
                out[...] = x
                return out
            return x
        n = self.calls
        seed = self.call_seed(n)
        stats = None
        if self.collect_stats and self._counted(seed):
            stats = self.stats
        state = self.state_for(tag)
        core = self._float32_core() if stats is None and _plain_float32(x, out) else None
        if core is None:
            y = self.fmt.quantize(x, seed=seed, out=out, stats=stats, state=state)
        else:
            # What fmt.quantize does for this case, without its per-call checks and lookups
            # (tens of microseconds per call after a BLAS product has evicted the caches).
            fast, code, twos, stochastic = core
            y = np.empty_like(x) if out is None else out
            run_float32_fast(x, y, fast, code, twos, stream_key(seed) if stochastic else 0)
        self.calls = n + 1
        return y

    def state_dict(self) -> dict[str, Any]:
        """Counter, dynamic-format state and stats as plain data (arrays, ints, floats, str)."""
        return {
            "calls": self.calls,
            "format": str(self.fmt),
            "state": _to_plain(self.state),
            "tag_states": {t: _to_plain(st) for t, st in self.tag_states.items()},
            "identity_calls": self.identity_calls,
            "stats": _to_plain(self.stats),
        }

    def load_state_dict(self, d: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` saved (the format must be the same)."""
        if d.get("format", str(self.fmt)) != str(self.fmt):
            raise PrecisionError(
                f"point {self.layer}/{self.role}: saved with format {d['format']!r} but this "
                f"run uses {str(self.fmt)!r}; resume with the same precision policy"
            )
        self.calls = int(d["calls"])
        self.state = _from_plain(self.state, d.get("state"))
        self.tag_states = {str(t): _from_plain(self.fmt.new_state(), st)
                           for t, st in (d.get("tag_states") or {}).items()}
        self.identity_calls = int(d.get("identity_calls", 0))
        if d.get("stats") is not None:
            self.stats = _from_plain(self.stats, d["stats"])


def _plain_float32(x: Any, out: Any) -> bool:
    """``x`` a C-contiguous float32 ndarray and ``out`` None or one of its shape: the arrays
    the direct float32 call takes (anything else goes through ``fmt.quantize``, which
    converts or raises)."""
    return (
        type(x) is np.ndarray and x.dtype == np.float32 and x.flags.c_contiguous
        and (out is None or (type(out) is np.ndarray and out.dtype == np.float32
                             and out.shape == x.shape and out.flags.c_contiguous))
    )


def _observe(x: Any, stats: Any) -> None:
    """Count ``x`` into ``stats`` as an exact quantization would, on ``x``'s device."""
    if isinstance(x, np.ndarray):
        from quantsim.stats import observe
    else:  # a CuPy array: the CPU kernel cannot read it
        from quantsim.kernels.cuda import observe
    observe(x, stats)


def _to_plain(obj: Any) -> Any:
    """Plain-data snapshot of a format state / stats object (copies arrays)."""
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.copy()
    if hasattr(obj, "state_dict"):
        return _to_plain(obj.state_dict())
    if isinstance(obj, Mapping):
        return {str(k): _to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_to_plain(v) for v in obj]
    if hasattr(obj, "__dict__"):
        return {k: _to_plain(v) for k, v in vars(obj).items()}
    if hasattr(obj, "__slots__"):
        return {k: _to_plain(getattr(obj, k)) for k in obj.__slots__}
    raise TypeError(f"cannot snapshot {type(obj).__name__}; give it state_dict()/load_state_dict()")


def _from_plain(current: Any, data: Any) -> Any:
    """Restore ``data`` into ``current`` (in place where possible); returns the restored object."""
    if current is None or data is None:
        return data if current is None else current
    if hasattr(current, "load_state_dict"):
        current.load_state_dict(data)
        return current
    if isinstance(current, np.ndarray):
        current[...] = data
        return current
    if isinstance(current, dict):
        for k in current:
            if k in data:
                current[k] = _from_plain(current[k], data[k])
        return current
    if isinstance(current, (bool, int, float, str, np.generic)):
        return type(current)(data)
    if isinstance(current, (list, tuple)):
        return type(current)(_from_plain(c, v) for c, v in zip(current, data, strict=True))
    names = list(vars(current)) if hasattr(current, "__dict__") else list(current.__slots__)
    for k in names:
        if k in data:
            object.__setattr__(current, k, _from_plain(getattr(current, k), data[k]))
    return current


class LayerPoints:
    """The quantization points of one layer, as ``layer.q``.

    Attributes ``inputs, weights, activations, errors, gradients, updates, optimizer_state,
    accumulator`` are :class:`QuantPoint` callables; :meth:`matmul` multiplies with the
    accumulator policy.
    """

    def __init__(
        self, layer: str, points: Mapping[str, QuantPoint], accumulator_chunk: int
    ) -> None:
        missing = [r for r in ROLES if r not in points]
        if missing:
            raise PrecisionError(f"LayerPoints({layer!r}): missing roles {missing}")
        self.layer = layer
        self.points = dict(points)
        self.accumulator_chunk = _check_chunk(accumulator_chunk)
        self.inputs = self.points["inputs"]
        self.weights = self.points["weights"]
        self.activations = self.points["activations"]
        self.errors = self.points["errors"]
        self.gradients = self.points["gradients"]
        self.updates = self.points["updates"]
        self.optimizer_state = self.points["optimizer_state"]
        self.accumulator = self.points["accumulator"]

    def __iter__(self) -> Iterator[QuantPoint]:
        return iter(self.points.values())

    def matmul(self, A: np.ndarray, B: np.ndarray) -> np.ndarray:
        """``A @ B`` with the accumulator policy: plain BLAS when the accumulator format is exact
        on the result dtype, chunked accumulation (``kernels.accumulate``) otherwise. numpy or
        CuPy operands (cuBLAS and the CUDA quantization kernels on the GPU)."""
        dtype = np.result_type(A.dtype, B.dtype)
        if self.accumulator.is_identity(dtype):
            return _plain_matmul(A, B)
        from quantsim.kernels.accumulate import chunked_matmul

        return chunked_matmul(A, B, self.accumulator, self.accumulator_chunk)


def make_layer_points(
    layer: Any, precision: Precision, seed: int, *, collect_stats: bool = True
) -> LayerPoints:
    """The :class:`LayerPoints` of ``layer`` (uses ``layer.name``) under ``precision``."""
    name = layer.name
    points = {
        role: QuantPoint(name, role, precision.format_for(name, role), seed,
                         collect_stats=collect_stats)
        for role in ROLES
    }
    return LayerPoints(name, points, precision.accumulator_chunk)


def configure_stats(net: Any, enabled: bool = True, every: int = 1) -> None:
    """Turn statistics collection on or off for every point of ``net``; with ``every = k`` only
    every k-th quantizing call of a point is counted."""
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise PrecisionError(f"stats sampling interval every={every!r}: use an integer >= 1")
    for _, point in iter_points(net):
        point.collect_stats = enabled
        point.stats_every = every


def iter_layers(net: Any) -> Iterator[Any]:
    """Every layer of ``net`` depth first: ``net.layers()`` for a ``quantsim.nn`` layer or
    network (itself first, then its sublayers), or the items of a list of layers."""
    if isinstance(net, (list, tuple)):
        for child in net:
            yield from iter_layers(child)
        return
    layers = getattr(net, "layers", None)
    if callable(layers):
        yield from layers()
    else:
        yield net


def iter_points(net: Any) -> Iterator[tuple[str, QuantPoint]]:
    """``("layer/role", point)`` for every quantization point of a bound network."""
    for layer in iter_layers(net):
        q = getattr(layer, "q", None)
        if isinstance(q, LayerPoints):
            for role, point in q.points.items():
                yield f"{q.layer}/{role}", point
