"""How many bytes a WebSocket connection has queued and not yet sent: a slow client's measure.

ASGI gives an application no back-pressure on WebSocket sends. Daphne keeps whatever is
sent in Twisted's write buffer, so a client that reads slower than its topics arrive would
grow the server's memory without limit. Under daphne the ASGI ``send`` is the server's
``handle_reply`` bound to the connection's protocol, whose transport holds that buffer;
other servers offer no such handle, and there no measure is available.

Supported: daphne >=4.0,<5 and Twisted >=22.10,<27 (written and tested with daphne 4.2.3,
Twisted 26.10.0, autobahn 26.11.1). Outside that range, or when ``tcp.Connection`` lacks
``dataBuffer``, ``offset`` or ``_tempDataLen``, :func:`meter` returns None with one
warning, and ``MAX_CLIENT_BACKLOG`` is not applied: no frame is dropped for a slow client.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from .. import conf
from . import guard, lean, send_limit

SUPPORTED: guard.Ranges = {"daphne": ("4.0", "5"), "Twisted": ("22.10", "27")}
# Twisted's FileDescriptor: dataBuffer (from offset on) and _tempDataLen are unsent.
ATTRIBUTES = ("dataBuffer", "offset", "_tempDataLen")
FALLBACK = "no slow-client measure: MAX_CLIENT_BACKLOG is not applied"

_supported: bool | None = None  # None: not checked yet in this process


def active() -> bool:
    return bool(_supported)


def problems() -> list[str]:
    """What keeps :func:`meter` from reading this daphne's buffers, if anything."""
    found = guard.version_problems(SUPPORTED)
    if found:
        return found
    probe, failed = guard.tcp_connection()
    return failed if probe is None else guard.missing(probe, ATTRIBUTES, "a tcp.Connection")


def check() -> bool:
    """Whether this daphne's buffers can be read; decided once, with one warning if not."""
    global _supported
    if _supported is None:
        found = problems()
        _supported = not found
        if found:
            guard.warn_once("backlog", found, FALLBACK)
    return _supported


def meter(send: Callable) -> Callable[[], int] | None:
    """A function that gives the bytes queued for the connection behind ``send``, or None."""
    if not isinstance(send, functools.partial) or not send.args:
        return None
    transport = getattr(send.args[0], "transport", None)
    if transport is None:
        return None
    # A daphne connection, so the server runs: installs the adapters if ready() came before
    # the reactor and nothing else did (a site's own stack and launcher); else a flag test.
    from . import install

    install()
    # Where this daphne's own limit is known: report a connection that cannot send MAX_FRAME_SIZE.
    send_limit.observe(send.args[0], conf.get()["MAX_FRAME_SIZE"])
    if conf.get()["LEAN_CONNECTIONS"]:  # what an idle connection need not hold
        lean.observe(send.args[0])
    if not check():
        return None
    if not all(hasattr(transport, a) for a in ATTRIBUTES):  # e.g. TLS: the buffer is elsewhere
        gone = guard.missing(transport, ATTRIBUTES, f"a {type(transport).__name__} transport")
        guard.warn_once("backlog", gone, FALLBACK + " on such connections")
        return None

    def queued() -> int:
        return len(transport.dataBuffer) - transport.offset + transport._tempDataLen

    return queued
