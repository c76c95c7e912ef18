"""Version ranges and attribute probes shared by the adapters, and their one warning each.

An adapter reaches into private attributes of Twisted or daphne. Outside the versions it
was tested with, or when an attribute it uses is gone, it must not patch anything: it logs
once what is off and the app goes on along the plain path.
"""

from __future__ import annotations

import importlib.metadata
import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any

log = logging.getLogger("zmqfeed.daphne")

# distribution name -> (lowest supported, first unsupported), as ">=low,<high".
Ranges = Mapping[str, tuple[str, str]]

_warned: set[str] = set()


def version_of(dist: str) -> str | None:
    """The installed version of a distribution, or None when it is not installed."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _release(version: str) -> tuple[int, ...]:
    """The leading numeric release of a version: '26.10.0rc1' -> (26, 10, 0)."""
    found = re.match(r"\d+(?:\.\d+)*", version.strip())
    return tuple(int(p) for p in found.group(0).split(".")) if found else ()


def in_range(version: str, low: str, high: str) -> bool:
    """Whether ``low <= version < high``; pre-releases of ``high`` are outside."""
    try:  # packaging comes with Twisted (through incremental), but is not ours to require
        from packaging.specifiers import SpecifierSet
        from packaging.version import InvalidVersion, Version
    except ImportError:
        return _release(low) <= _release(version) < _release(high)
    try:
        return SpecifierSet(f">={low},<{high}").contains(Version(version), prereleases=True)
    except InvalidVersion:
        return False


def version_problems(ranges: Ranges) -> list[str]:
    problems = []
    for dist, (low, high) in ranges.items():
        version = version_of(dist)
        if version is None:
            problems.append(f"{dist} is not installed")
        elif not in_range(version, low, high):
            problems.append(f"{dist} {version} is outside the tested range >={low},<{high}")
    return problems


def missing(obj: object, names: Iterable[str], what: str) -> list[str]:
    """One problem naming every attribute of ``names`` that ``obj`` lacks."""
    gone = [n for n in names if not hasattr(obj, n)]
    return [f"{what} has no {', '.join(gone)}"] if gone else []


def tcp_connection() -> tuple[Any, list[str]]:
    """A ``tcp.Connection`` on a stand-in socket, to probe attributes that only instances have.

    Returns it, or None and the problem when its constructor no longer takes these arguments.
    """
    from twisted.internet import tcp

    try:
        return tcp.Connection(_ProbeSocket(), None, reactor=_NO_REACTOR), []  # type: ignore[arg-type]
    except Exception as exc:  # a constructor that changed: as unsupported as a missing name
        return None, [f"tcp.Connection(socket, protocol, reactor) failed: {exc!r}"]


class _ProbeSocket:
    """Just enough of a socket for ``tcp.Connection.__init__``; never sent on."""

    def setblocking(self, flag: bool) -> None:
        pass

    def fileno(self) -> int:
        return -1


class _NoReactor:
    """Passed so that the probe does not import (and so install) Twisted's default reactor."""


_NO_REACTOR = _NoReactor()


def warn_once(adapter: str, problems: list[str], fallback: str) -> None:
    """Log one warning per adapter and process: what is off, and what is used instead."""
    if adapter in _warned:
        return
    _warned.add(adapter)
    log.warning("daphne adapter %s off: %s; %s", adapter, "; ".join(problems), fallback)
