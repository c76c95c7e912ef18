"""Frames of up to MAX_FRAME_SIZE go out, whatever daphne's limit on incoming messages.

Daphne hands its ``--websocket-max-message-size`` (1 MiB by default; daphne's runserver
takes the same option, or ``settings.DAPHNE_WEBSOCKET_MAX_MESSAGE_SIZE``) to autobahn as
``maxMessagePayloadSize``. Both document it as the largest message a client may send, but
autobahn's ``sendMessage`` checks what the server sends against it too, and raises
``PayloadExceededError``: a larger frame was lost. Raising the option to let big frames out
also lets every client, before any login, make daphne buffer that much. With this on, a
zmqfeed connection whose limit is under MAX_FRAME_SIZE checks its sends against
MAX_FRAME_SIZE, and what it receives against the option as before. Only zmqfeed's own
connections, and only those that need it: with the limits in agreement (the defaults) no
send is touched.

Supported: daphne >=4.0,<5 and autobahn >=22.4,<27 (written and tested with daphne 4.2.3,
autobahn 26.11.1). Outside that range, or when daphne's protocol no longer takes
``maxMessagePayloadSize`` per connection, nothing is lifted, with one warning; frames over
the server's limit are then lost, and :func:`observe` reports it as an error once per
process and counts each such connection (``ZMQFEED["LIFT_SEND_LIMIT"] = False`` too, minus
the warning).
"""

from __future__ import annotations

import importlib
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
lifted_connections = 0  # and those whose sends were lifted to it
_enabled = False
_refused = False
_reported = False


def active() -> bool:
    return _enabled


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
    """Lift the sends of zmqfeed's connections that need it (see :func:`observe`), once per
    process; True if supported. Not a whole number of at least 1 (zmqfeed.E003): nothing to
    lift to, nothing done.
    """
    global _enabled, _refused
    if _enabled:
        return True
    if _refused or not isinstance(max_frame, int) or isinstance(max_frame, bool) or max_frame < 1:
        return False
    found = problems()
    if found:
        _refused = True
        guard.warn_once("send_limit", found, FALLBACK)
        return False
    _enabled = True
    return True


def uninstall() -> None:
    """Lift no more connections (tests; a process that wants the plain path again)."""
    global _enabled
    _enabled = False


def _lift(protocol: Any, max_frame: int) -> None:
    """This connection's sends are checked against ``max_frame``, its receives as before."""
    own_send = protocol.sendMessage  # autobahn's, bound
    limit = getattr(protocol, LIMIT)

    def sendMessage(payload: bytes, *args: Any, **kwargs: Any) -> Any:
        # Only for this call, which receives nothing: the reactor reads between calls.
        setattr(protocol, LIMIT, max_frame)
        try:
            return own_send(payload, *args, **kwargs)
        finally:
            setattr(protocol, LIMIT, limit)

    protocol.sendMessage = sendMessage


def observe(protocol: object, max_frame: object) -> None:
    """At a zmqfeed WebSocket under daphne: lift it if its limit is under MAX_FRAME_SIZE, or,
    where that is off, count it and say so once."""
    global short_connections, lifted_connections, _reported
    if not isinstance(max_frame, int):
        return
    limit = getattr(protocol, LIMIT, None)
    if not isinstance(limit, int) or not 0 < limit < max_frame:
        return  # 0: no limit; at least MAX_FRAME_SIZE: nothing to lift
    if _enabled:
        _lift(protocol, max_frame)
        lifted_connections += 1
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
