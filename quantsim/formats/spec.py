"""The spec grammar and the format registry.

    spec     := body ['@' rounding]
    body     := name | name '<' arg (',' arg)* '>'
    arg      := int | float | word | key '=' value        (float<eXmY,...> takes 'eXmY' first)
    rounding := nearest | stochastic | stochastic<r> | toward_zero | down | up

Formats register a factory under a name; `factory(*positional, **options)` builds the format
(bare words become `word=True`). Third-party formats register with `register(...)` or through
the entry-point group `quantsim.formats` (the entry point loads the factory).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from difflib import get_close_matches
from importlib.metadata import entry_points

from quantsim.errors import FormatError
from quantsim.formats.base import NumberFormat
from quantsim.formats.block import BlockFormat
from quantsim.formats.fixed import DFXP_DEFAULT_INTERVAL, DynamicFixedFormat, FixedFormat
from quantsim.formats.floating import FLOAT_ALIASES, NAMED_FLOATS, FloatFormat, named_float
from quantsim.formats.rounding import parse_rounding

Factory = Callable[..., NumberFormat]
_REGISTRY: dict[str, Factory] = {}
_ENTRY_POINTS_LOADED = False
_BODY = re.compile(r"^\s*([A-Za-z_][\w.\-]*)\s*(?:<(.*)>)?\s*$")
_EXPONENT_MANTISSA = re.compile(r"^e(\d+)m(\d+)$")


def register(name: str, factory: Factory, *, replace: bool = False) -> None:
    """Make `parse` build formats named `name` with `factory(*args, **options)`."""
    key = name.lower()
    if key in _REGISTRY and not replace:
        raise FormatError(f"a format named {name!r} is already registered; pass replace=True")
    _REGISTRY[key] = factory


def registered_formats() -> list[str]:
    """Names of all registered formats (aliases included)."""
    _load_entry_points()
    return sorted(_REGISTRY)


def parse(spec: str | NumberFormat) -> NumberFormat:
    """Build a NumberFormat from a spec string such as 'fixed<4,12>@stochastic'."""
    if isinstance(spec, NumberFormat):
        return spec
    if not isinstance(spec, str):
        raise FormatError(f"a format spec must be a string such as 'float16', not {spec!r}")
    body, _, rounding_text = spec.partition("@")
    if _ and not rounding_text.strip():
        raise FormatError(f"{spec!r}: nothing after '@'; e.g. {body.strip()}@stochastic")
    match = _BODY.match(body)
    if not match:
        raise FormatError(
            f"cannot parse format spec {spec!r}; expected e.g. 'float16', 'float<e4m3>', "
            "'fixed<4,12>@stochastic'"
        )
    name, arg_text = match.group(1).lower(), match.group(2)
    factory = _lookup(name, spec)
    positional, options = _parse_args(arg_text, spec) if arg_text is not None else ([], {})
    try:
        fmt = factory(*positional, **options)
    except TypeError as exc:
        raise FormatError(f"{spec!r}: wrong arguments for {name!r} ({exc})") from None
    if rounding_text:
        try:
            fmt = fmt.with_rounding(parse_rounding(rounding_text))
        except FormatError as exc:
            raise FormatError(f"{spec!r}: {exc}") from None
    return fmt


def _lookup(name: str, spec: str) -> Factory:
    if name not in _REGISTRY:
        _load_entry_points()
    if name in _REGISTRY:
        return _REGISTRY[name]
    close = get_close_matches(name, list(_REGISTRY), n=3, cutoff=0.6)
    hint = f" Did you mean {' or '.join(close)}?" if close else ""
    raise FormatError(
        f"unknown number format {spec!r}.{hint} Run `quantsim formats` for the list; "
        "generic forms: float<eXmY>, fixed<IL,FL>, dfxp<WL>, block<M,k>."
    )


def _parse_args(text: str, spec: str) -> tuple[list, dict]:
    positional: list = []
    options: dict = {}
    for raw in text.split(","):
        token = raw.strip()
        if not token:
            raise FormatError(f"{spec!r}: empty argument inside <...>")
        key, eq, value = token.partition("=")
        if eq:
            options[key.strip().lower()] = _scalar(value.strip())
        elif re.fullmatch(r"[A-Za-z_]\w*", token) and not _EXPONENT_MANTISSA.match(token):
            options[token.lower()] = True
        else:
            positional.append(_scalar(token))
    return positional, options


def _scalar(text: str) -> int | float | str:
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text


def _load_entry_points() -> None:
    global _ENTRY_POINTS_LOADED
    if _ENTRY_POINTS_LOADED:
        return
    _ENTRY_POINTS_LOADED = True
    for ep in entry_points(group="quantsim.formats"):
        if ep.name.lower() not in _REGISTRY:
            register(ep.name, ep.load())


# -- built-in factories ----------------------------------------------------------------------
def _float_factory(layout: str | None = None, *, nosub: bool = False, sat: bool = False,
                   fn: bool = False) -> FloatFormat:
    match = _EXPONENT_MANTISSA.match(str(layout)) if layout is not None else None
    if not match:
        raise FormatError(
            f"float<{layout}>: expected float<eXmY> with X exponent and Y mantissa bits, "
            "e.g. float<e5m2>, options nosub, sat, fn"
        )
    overflow = "sat" if sat else ("nan" if fn else "inf")
    return FloatFormat(int(match.group(1)), int(match.group(2)), not nosub, fn, overflow)


def _int_args(name: str, count: int, args: tuple, example: str) -> list[int]:
    if len(args) != count or not all(isinstance(a, int) for a in args):
        shown = ",".join(str(a) for a in args)
        raise FormatError(f"{name}<{shown}>: expected {count} integer(s), e.g. {example}")
    return list(args)


def _fixed_factory(*args) -> FixedFormat:
    il, fl = _int_args("fixed", 2, args, "fixed<4,12> (IL integer bits incl. sign, FL fraction)")
    return FixedFormat(il, fl)


def _dfxp_factory(*args, il: int | None = None, limit: float = 1e-4,
                  interval: int = DFXP_DEFAULT_INTERVAL) -> DynamicFixedFormat:
    (wl,) = _int_args("dfxp", 1, args, "dfxp<10> or dfxp<10,il=3,limit=1e-4,interval=1>")
    return DynamicFixedFormat(wl, il, float(limit), int(interval))


def _block_factory(*args) -> BlockFormat:
    mbits, block = _int_args("block", 2, args, "block<8,32> (M-bit mantissas, k per block)")
    return BlockFormat(mbits, block)


def _named(name: str) -> Factory:
    def factory() -> FloatFormat:
        return named_float(name)

    return factory


register("float", _float_factory)
register("fixed", _fixed_factory)
register("dfxp", _dfxp_factory)
register("block", _block_factory)
for _name in NAMED_FLOATS:
    register(_name, _named(_name))
for _alias, _target in FLOAT_ALIASES.items():
    register(_alias, _named(_target))
