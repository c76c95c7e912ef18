"""Write a frame's ready wire bytes straight to a daphne WebSocket's transport.

A server's frames are unmasked, so a frame of a topic is the same bytes for every client
(``Frame.wire``, built once). Through ASGI each client's copy would go ``base_send`` →
daphne's ``Server.handle_reply`` (a coroutine) → ``WebSocketProtocol.handle_reply`` →
``serverSend``, which encodes the text again (a copy per client) → autobahn's
``sendMessage`` → ``sendFrame``, which joins header and payload (another copy) →
``sendData`` → ``transport.write``. With this on, a connection where that path would
only frame and write the payload gets the shared bytes from :func:`write` instead.

:func:`write` sends only when what autobahn would do is exactly that: the connection is
OPEN, no per-message compression was negotiated, autobahn is not part-way through a
message of its own (``send_state``) and has nothing queued (``send_queue``, sync and
chopped sends), and the frame is within ``autoFragmentSize`` and ``maxMessagePayloadSize``
(a bigger one takes the ordinary path, fragmented, lifted by send_limit.py or refused, as
before). Connections that mask server frames, log frames or octets, or track timings are
left to the ordinary path altogether (:func:`target`). ``trafficStats`` is kept as
``sendMessage`` would keep it. Daphne's own check, that the connection is not disconnected,
is implied: daphne marks it so in ``onClose``, which autobahn calls only once the state is
CLOSED, and when it rejects a handshake (CONNECTING). What is skipped is two debug log
lines per send (daphne's "Sent WebSocket packet", autobahn's "sent N bytes"). Under TLS
``transport.write`` is the TLS layer's, which encrypts, as for autobahn's own writes.

A connection past OPEN (closing, closed) takes no frame: :func:`write` drops it, where
``sendMessage`` would raise ``Disconnected`` once per frame until daphne's disconnect
reaches the consumer.

Supported: daphne >=4.0,<5 and autobahn >=22.4,<27 (written and tested with daphne 4.2.3,
autobahn 26.11.1, Twisted 26.10.0). It relies on autobahn's ``state``, ``send_state``,
``send_queue``, ``_perMessageCompress``, ``trafficStats`` and configuration attributes.
Outside that range, or when any of them is gone, frames take the ordinary ``base_send``
path, with one warning; ``ZMQFEED["PREFRAMED_SENDS"] = False`` does the same, minus the
warning. Widen the range only after running tests/test_preframed.py against the release.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from typing import Any

from ..core.protocol import Frame
from . import guard

SUPPORTED: guard.Ranges = {"daphne": ("4.0", "5"), "autobahn": ("22.4", "27")}
CLASS_ATTRIBUTES = ("STATE_OPEN", "STATE_CONNECTING", "SEND_STATE_GROUND", "CONFIG_ATTRS")
# Copied from the factory to each connection: only a connection without them takes write().
CONFIG = ("maskServerFrames", "logFrames", "logOctets", "trackTimings")
SIZES = ("autoFragmentSize", "maxMessagePayloadSize")  # 0: no limit
# Set per connection by autobahn's _connectionMade, before the ASGI connect.
INSTANCE_ATTRIBUTES = ("state", "send_state", "send_queue", "_perMessageCompress", "transport")
STATS = (
    "outgoingWebSocketMessages",
    "outgoingWebSocketFrames",
    "outgoingOctetsAppLevel",
    "outgoingOctetsWebSocketLevel",
    "outgoingOctetsWireLevel",
)
FALLBACK = "frames go through daphne's send path, framed once per client"

# Frames written as shared bytes: a plain int, no metric call per write.
writes = 0
_enabled = False
_refused = False
_OPEN = 1  # autobahn's STATE_OPEN and SEND_STATE_GROUND, read at install()
_GROUND = 0
_CONNECTING = 3


def active() -> bool:
    return _enabled


def _protocol() -> Any:
    """daphne's WebSocket protocol class (by name: daphne ships no type information)."""
    return importlib.import_module("daphne.ws_protocol").WebSocketProtocol


def problems() -> list[str]:
    """What keeps frames from being written as shared bytes here, if anything."""
    found = guard.version_problems(SUPPORTED)
    if found:
        return found
    protocol = _protocol()
    found = guard.missing(protocol, CLASS_ATTRIBUTES, "daphne's WebSocketProtocol")
    if found:
        return found
    gone = [a for a in CONFIG + SIZES if a not in protocol.CONFIG_ATTRS]
    if gone:
        found.append(f"daphne's WebSocketProtocol takes no {', '.join(gone)} per connection")
    stats = importlib.import_module("autobahn.websocket.protocol").TrafficStats()
    return found + guard.missing(stats, STATS, "autobahn's TrafficStats")


def install() -> bool:
    """Let zmqfeed's connections take shared frames, once per process; True if supported."""
    global _enabled, _refused, _OPEN, _GROUND, _CONNECTING
    if _enabled:
        return True
    if _refused:
        return False
    found = problems()
    if found:
        _refused = True
        guard.warn_once("preframed", found, FALLBACK)
        return False
    protocol = _protocol()
    _OPEN, _GROUND = protocol.STATE_OPEN, protocol.SEND_STATE_GROUND
    _CONNECTING = protocol.STATE_CONNECTING
    _enabled = True
    return True


def uninstall() -> None:
    """Frames take the ordinary path again (tests; a process that wants the plain path)."""
    global _enabled
    _enabled = False


def target(send: Callable) -> Any:
    """The daphne protocol behind a connection's ASGI ``send``, for :func:`write`; None where
    frames must take ``send`` (not daphne, adapter off, a connection configured otherwise)."""
    if not _enabled or not isinstance(send, functools.partial) or not send.args:
        return None
    protocol = send.args[0]
    if not isinstance(protocol, _protocol()):
        return None
    if not all(hasattr(protocol, a) for a in INSTANCE_ATTRIBUTES + CONFIG + SIZES):
        gone = INSTANCE_ATTRIBUTES + CONFIG + SIZES
        guard.warn_once("preframed", guard.missing(protocol, gone, "a connection"), FALLBACK)
        return None
    if any(getattr(protocol, a) for a in CONFIG):
        return None
    return protocol


def write(protocol: Any, frame: Frame) -> bool:
    """Send ``frame`` on ``protocol`` as its shared wire bytes; False: take the ordinary path.

    True also when the connection is past OPEN: nothing may follow its close.
    """
    global writes
    size = len(frame.data)
    state = protocol.state
    if state != _OPEN:
        return state != _CONNECTING
    if (
        protocol.send_state != _GROUND
        or protocol.send_queue
        or protocol._perMessageCompress is not None
        or 0 < protocol.autoFragmentSize < size
        or 0 < protocol.maxMessagePayloadSize < size
    ):
        return False
    wire = frame.wire
    protocol.transport.write(wire)
    stats = protocol.trafficStats
    stats.outgoingWebSocketMessages += 1
    stats.outgoingWebSocketFrames += 1
    stats.outgoingOctetsAppLevel += size
    stats.outgoingOctetsWebSocketLevel += size
    stats.outgoingOctetsWireLevel += len(wire)
    writes += 1
    return True
