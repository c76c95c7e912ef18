"""Send on the spot when a Twisted TCP connection has nothing queued.

Twisted buffers every write and sends it on the reactor's next turn, registering the socket
for writability and unregistering it afterwards: two epoll calls and a reactor round per
frame per client. Under daphne that was about half of the cost of delivering a frame to
100 clients. asyncio's transports, by contrast, try to send at once and only buffer what
the socket does not take. With this installed, so do daphne's: when nothing is queued the
data goes to the socket now, and only a remainder is left to Twisted's usual buffering.

Supported: Twisted >=22.10,<27, the releases of daphne 4's time. Written and tested with
Twisted 26.10.0 under daphne 4.2.3 and autobahn 26.11.1; it relies on ``FileDescriptor``'s
private buffer (``dataBuffer`` from ``offset`` on, then ``_tempDataBuffer``), which Twisted
has kept for many years. A release outside the range, or a ``tcp.Connection`` missing any
attribute used here, leaves Twisted's own ``write`` in place, with one warning. Widen the
range only after running tests/test_daphne_adapters.py against the new release.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import guard

SUPPORTED: guard.Ranges = {"Twisted": ("22.10", "27")}
CLASS_ATTRIBUTES = (
    "write",
    "writeSomeData",
    "TLS",
    "connected",
    "_writeDisconnected",
    "offset",
    "dataBuffer",
)
INSTANCE_ATTRIBUTES = ("_tempDataBuffer",)  # set by FileDescriptor.__init__
FALLBACK = "Twisted's buffered writes are used (sent on the reactor's next turn)"

# Writes sent whole at once, without the reactor: a plain int, no metric call per write.
writes = 0
_buffered_write: Callable[[Any, bytes], None] | None = None  # Twisted's own, while patched
_refused = False


def active() -> bool:
    return _buffered_write is not None


def problems() -> list[str]:
    """What keeps this Twisted from being patched, if anything (empty: supported)."""
    found = guard.version_problems(SUPPORTED)
    if found:
        return found
    from twisted.internet import tcp

    found = guard.missing(tcp.Connection, CLASS_ATTRIBUTES, "tcp.Connection")
    probe, failed = guard.tcp_connection()
    if probe is None:
        return found + failed
    return found + guard.missing(probe, INSTANCE_ATTRIBUTES, "a tcp.Connection")


def install() -> bool:
    """Patch Twisted's TCP connections in this process, once; True if patched.

    Call it only where Twisted is the server (``zmqfeed.daphne.install`` checks).
    """
    global _buffered_write, _refused
    if _buffered_write is not None:
        return True
    if _refused:
        return False
    found = problems()
    if found:
        _refused = True
        guard.warn_once("eager_writes", found, FALLBACK)
        return False
    from twisted.internet import tcp

    buffered_write = tcp.Connection.write

    def write(self: Any, data: bytes) -> None:
        global writes
        if (
            data
            and not self.TLS
            and self.connected
            and not self._writeDisconnected
            and not self._tempDataBuffer
            and self.offset == len(self.dataBuffer)
        ):
            written = self.writeSomeData(data)
            if written == len(data):
                writes += 1
                return
            if isinstance(written, int) and written > 0:  # else an error: let Twisted see it
                data = data[written:]
        buffered_write(self, data)

    tcp.Connection.write = write  # type: ignore[method-assign]
    _buffered_write = buffered_write
    return True


def uninstall() -> None:
    """Put Twisted's own write back (tests; a process that wants the plain path again)."""
    global _buffered_write
    if _buffered_write is not None:
        from twisted.internet import tcp

        tcp.Connection.write = _buffered_write  # type: ignore[method-assign]
        _buffered_write = None
