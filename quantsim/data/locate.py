"""Where data sets live: an explicit directory, ``$QUANTSIM_DATA``, or a Debian package.

Search order for a data set with sub-directory ``sub`` (e.g. ``"mnist"``):
1. ``data_dir`` passed by the caller: ``data_dir/sub`` then ``data_dir`` itself, and nothing else
   (an explicit directory never silently falls back to another copy);
2. otherwise ``$QUANTSIM_DATA/sub`` then ``$QUANTSIM_DATA``;
3. then, for packaged data sets, the directories where the Debian package put the files (read from
   dpkg's file list, ``/var/lib/dpkg/info/<package>.list``, then the package's data folder
   ``/usr/share/datasets/<name>`` and its ``/usr/local`` twin).

A directory matches when every required file is present (each may be ``.gz`` or not).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

__all__ = [
    "DATA_ENV",
    "candidate_dirs",
    "debian_package_dirs",
    "describe_search",
    "find_dir",
    "find_file",
]

DATA_ENV = "QUANTSIM_DATA"
DPKG_INFO = Path("/var/lib/dpkg/info")
DEBIAN_DATA_ROOTS = (Path("/usr/share/datasets"), Path("/usr/local/share/datasets"))


def find_file(directory: Path, name: str) -> Path | None:
    """``directory/name`` or ``directory/name.gz`` (the first that exists), else None."""
    for candidate in (directory / name, directory / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def debian_package_dirs(package: str, marker: str, folder: str) -> list[Path]:
    """Directories holding ``marker`` (or ``marker.gz``) according to dpkg, then the defaults.

    ``package`` is the Debian package name, ``folder`` its sub-directory of ``/usr/share/datasets``.
    """
    dirs: list[Path] = []
    listing = DPKG_INFO / f"{package}.list"
    try:
        lines = listing.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        lines = []
    for line in lines:
        p = Path(line.strip())
        if p.name in (marker, f"{marker}.gz") and p.parent not in dirs:
            dirs.append(p.parent)
    for root in DEBIAN_DATA_ROOTS:
        if root / folder not in dirs:
            dirs.append(root / folder)
    return dirs


def candidate_dirs(
    sub: str, data_dir: str | os.PathLike[str] | None, extra: Sequence[Path] = ()
) -> list[Path]:
    """The directories searched, in order (see module doc); ``extra`` goes last."""
    if data_dir is not None:
        root = Path(data_dir).expanduser()
        return [root / sub, root]
    out: list[Path] = []
    env = os.environ.get(DATA_ENV)
    if env:
        root = Path(env).expanduser()
        out += [root / sub, root]
    out += list(extra)
    seen: set[Path] = set()
    return [d for d in out if not (d in seen or seen.add(d))]


def find_dir(
    candidates: Sequence[Path], required: Sequence[str], *, gzip_ok: bool = True
) -> Path | None:
    """The first candidate directory containing every required file (also as ``.gz`` if
    ``gzip_ok``)."""
    for d in candidates:
        if not d.is_dir():
            continue
        if gzip_ok and all(find_file(d, name) is not None for name in required):
            return d
        if not gzip_ok and all((d / name).is_file() for name in required):
            return d
    return None


def describe_search(dirs: Sequence[Path]) -> str:
    """The searched directories for an error message."""
    if not dirs:
        return f"nowhere (neither data_dir nor ${DATA_ENV} is set)"
    return ", ".join(map(str, dirs))
