"""Adapters to daphne and Twisted internals, each guarded, each with a plain fallback.

| module | adapter |
|---|---|
| ``eager_writes`` | sends a write at once when a TCP connection has nothing queued |
| ``preframed`` | a frame's wire bytes, built once, written straight to each connection |
| ``backlog`` | bytes a connection has queued unsent: the measure of a slow client |
| ``send_limit`` | frames up to MAX_FRAME_SIZE go out, whatever daphne's incoming message limit |
| ``lean`` | an idle WebSocket holds neither a copy of autobahn's options nor its HTTP request |
| ``guard`` | the version ranges and attribute probes, and the one warning each |

:func:`install` is the one entry point, and ``ZmqfeedConfig.ready()`` calls it: under
``daphne project.asgi:application`` daphne installs its reactor before it imports the
application, and daphne's ``runserver`` needs ``"daphne"`` in INSTALLED_APPS, whose app
module installs the reactor before any ``ready()`` runs. So it works whatever ASGI stack the
site builds. Where Django is set up before the reactor is imported (a launcher of one's own),
``embedded.start_with_server()`` (from ``websocket_application()``) and the first
connection (:func:`backlog.meter`) call it again; past the first time it is a flag test.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from .. import conf
from . import backlog, eager_writes, lean, preframed, send_limit

_result: bool | None = None  # None: not yet run under a Twisted reactor


def server_is_twisted() -> bool:
    """Whether this process serves with Twisted's reactor (daphne, daphne's runserver)."""
    return "twisted.internet.reactor" in sys.modules


def install() -> bool:
    """Install every adapter once when the server is daphne; True if all that apply are on.

    Not under daphne (yet) it does nothing and returns False, so that a later call retries.
    ``ZMQFEED["EAGER_WRITES"]``, ``["PREFRAMED_SENDS"]``, ``["LIFT_SEND_LIMIT"]`` and
    ``["MAX_FRAME_SIZE"]`` are read
    at the first call under daphne.
    """
    global _result
    if _result is not None:
        return _result
    if not server_is_twisted():
        return False
    settings = conf.get()
    ok = backlog.check()
    if settings["EAGER_WRITES"]:
        ok = eager_writes.install() and ok
    if settings["PREFRAMED_SENDS"]:
        ok = preframed.install() and ok
    if settings["LEAN_CONNECTIONS"]:
        ok = lean.check() and ok
    if settings["LIFT_SEND_LIMIT"]:
        ok = send_limit.install(settings["MAX_FRAME_SIZE"]) and ok
    _result = ok
    return ok


def active() -> dict[str, bool]:
    """Each adapter, and whether it is working in this process (for /metrics)."""
    return {
        "eager_writes": eager_writes.active(),
        "preframed": preframed.active(),
        "backlog": backlog.active(),
        "lean": lean.active(),
    }


def call_soon(callback: Callable[[], object]) -> bool:
    """Run ``callback`` on the reactor's first turn, in its asyncio loop; False: no reactor.

    Not ``callWhenRunning``: startup triggers fire before the asyncio loop runs.
    """
    reactor = sys.modules.get("twisted.internet.reactor")
    if reactor is None:
        return False
    reactor.callLater(0, callback)
    return True
