"""Frames of up to MAX_FRAME_SIZE go out, whatever daphne's limit on incoming messages.

Daphne hands its ``--websocket-max-message-size`` (1 MiB by default; daphne's runserver
takes the same option, or ``settings.DAPHNE_WEBSOCKET_MAX_MESSAGE_SIZE``) to autobahn as
``maxMessagePayloadSize``. Both document it as the largest message a client may send, but
autobahn's ``sendMessage`` checks what the server sends against it too, and raises
``PayloadExceededError``: a larger frame was lost. Raising the option to let big frames out
also lets every client, before any login, make daphne buffer that much. With this installed
daphne's WebSocket protocol checks its sends against MAX_FRAME_SIZE when that is larger, and
what it receives against the option as before. It applies to every WebSocket of the process
(the site's own consumers too): their sends may reach MAX_FRAME_SIZE, no further.

Supported: daphne >=4.0,<5 and autobahn >=22.4,<27 (written and tested with daphne 4.2.3,
autobahn 26.11.1). Outside that range, or when daphne's protocol no longer takes
``maxMessagePayloadSize`` per connection, nothing is patched, with one warning; frames over
the server's limit are then lost, and :func:`observe` reports it as an error once per
process and counts each such connection (``ZMQFEED["LIFT_SEND_LIMIT"] = False`` too, minus
the warning).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from . import guard

SUPPORTED: guard.Ranges = {"daphne": ("4.0", "5"), "autobahn": ("22.4", "27")}
LIMIT = "maxMessagePayloadSize"  # copied from the factory to each connection (CONFIG_ATTRS)
FALLBACK = (
    "autobahn applies daphne's --websocket-max-message-size to what daphne sends: "
    "frames over it are lost, so keep MAX_FRAME_SIZE at most that"
)

# WebSocket connections whose sends stop short of MAX_FRAME_SIZE (a plain int, for /metrics).
short_connections = 0
_own_send: Callable[..., Any] | None = None  # autobahn's sendMessage, while patched
_own_in_class = False  # whether daphne's class defined sendMessage itself (put back as found)
_refused = False
_reported = False


def active() -> bool:
    return _own_send is not None


def _protocol() -> Any:
    """daphne's WebSocket protocol class (by name: daphne ships no type information)."""
    return importlib.import_module("daphne.ws_protocol").WebSocketProtocol


def problems() -> list[str]:
    """What keeps daphne's sends from being lifted, if anything (empty: supported)."""
    found = guard.version_problems(SUPPORTED)
    if found:
        return found
    protocol = _protocol()
    found = guard.missing(protocol, ("sendMessage", "CONFIG_ATTRS"), "daphne's WebSocketProtocol")
    if not found and LIMIT not in protocol.CONFIG_ATTRS:
        found = [f"daphne's WebSocketProtocol takes no {LIMIT} per connection"]
    return found


def install(max_frame: object) -> bool:
    """Check daphne's WebSocket sends against ``max_frame`` where that is over its limit.

    Once per process; True if patched. Not a whole number of at least 1 (zmqfeed.E003):
    nothing to lift to, nothing patched.
    """
    global _own_send, _own_in_class, _refused
    if _own_send is not None:
        return True
    if _refused or not isinstance(max_frame, int) or isinstance(max_frame, bool) or max_frame < 1:
        return False
    found = problems()
    if found:
        _refused = True
        guard.warn_once("send_limit", found, FALLBACK)
        return False
    protocol = _protocol()
    own_send = protocol.sendMessage
    lifted = max_frame

    def sendMessage(self: Any, payload: bytes, *args: Any, **kwargs: Any) -> Any:
        limit = getattr(self, LIMIT, 0)
        if not 0 < limit < lifted:  # 0: no limit; at least MAX_FRAME_SIZE: nothing to lift
            return own_send(self, payload, *args, **kwargs)
        # Only for this call, which receives nothing: the reactor reads between calls.
        setattr(self, LIMIT, lifted)
        try:
            return own_send(self, payload, *args, **kwargs)
        finally:
            setattr(self, LIMIT, limit)

    _own_in_class = "sendMessage" in vars(protocol)
    protocol.sendMessage = sendMessage
    _own_send = own_send
    return True


def uninstall() -> None:
    """Put autobahn's own check back (tests; a process that wants the plain path again)."""
    global _own_send
    if _own_send is not None:
        protocol = _protocol()
        if _own_in_class:
            protocol.sendMessage = _own_send
        else:
            del protocol.sendMessage
        _own_send = None


def observe(protocol: object, max_frame: object) -> None:
    """At a daphne WebSocket: count it, and say so once, if it cannot send MAX_FRAME_SIZE."""
    global short_connections, _reported
    if _own_send is not None or not isinstance(max_frame, int):
        return
    limit = getattr(protocol, LIMIT, None)
    if not isinstance(limit, int) or not 0 < limit < max_frame:
        return
    short_connections += 1
    if not _reported:
        _reported = True
        guard.log.error(
            "MAX_FRAME_SIZE (%d bytes) is over this daphne's --websocket-max-message-size "
            "(%d bytes), which autobahn applies to what daphne sends: frames over %d bytes "
            "are lost. Run daphne with --websocket-max-message-size %d (runserver: the same "
            "option, or DAPHNE_WEBSOCKET_MAX_MESSAGE_SIZE), lower MAX_FRAME_SIZE, or leave "
            "LIFT_SEND_LIMIT on (send_limit: %s)",
            max_frame,
            limit,
            limit,
            max_frame,
            "; ".join(problems()) or "off by LIFT_SEND_LIMIT",
        )
