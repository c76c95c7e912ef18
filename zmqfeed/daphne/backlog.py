"""How many bytes a WebSocket connection has queued and not yet sent: a slow client's measure.

ASGI gives an application no back-pressure on WebSocket sends. Daphne keeps whatever is
sent in Twisted's write buffer, so a client that reads slower than its topics arrive would
grow the server's memory without limit. Under daphne the ASGI ``send`` is the server's
``handle_reply`` bound to the connection's protocol, whose transport holds that buffer;
other servers offer no such handle, and there no measure is available.
"""

from __future__ import annotations

import functools
from collections.abc import Callable


def meter(send: Callable) -> Callable[[], int] | None:
    """A function that gives the bytes queued for the connection behind ``send``, or None."""
    if not isinstance(send, functools.partial) or not send.args:
        return None
    transport = getattr(send.args[0], "transport", None)
    # Twisted's FileDescriptor: dataBuffer (from offset on) and _tempDataLen are unsent.
    if not all(hasattr(transport, a) for a in ("dataBuffer", "offset", "_tempDataLen")):
        return None

    def queued() -> int:
        return len(transport.dataBuffer) - transport.offset + transport._tempDataLen

    return queued
