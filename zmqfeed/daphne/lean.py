"""Less for an idle WebSocket to hold under daphne: three things each connection kept for nothing.

- autobahn's ``_connectionMade`` copies every one of ``CONFIG_ATTRS`` (29 for a server) from
  the factory onto each protocol instance, unless the protocol has it already: a dict of
  99 entries (3.3 KB) per connection where 70 (1.6 KB) do. :func:`share_config` gives daphne's
  factory a protocol subclass holding the factory's values as class attributes (the same
  objects each instance would have copied), so that later connections copy none.
- Daphne upgrades a WebSocket from a ``twisted.web`` HTTP request and leaves that
  ``HTTPChannel`` registered as the TCP transport's producer, so the channel, its
  ``WebRequest``, both header sets and the request body's ``BytesIO`` live as long as the
  WebSocket. :func:`release_http` unregisters it once the WebSocket is open. The channel
  did one more thing there: pause reading from a client whose send buffer is full. zmqfeed
  bounds what a client may hold unsent itself (``MAX_CLIENT_BACKLOG``, ``backlog.py``).
- Daphne hands each application an ``asyncio.Queue`` of its own for ``receive``: four
  deques (items, getters, putters, and its ``Event``'s waiters), each with a 64-slot block,
  about 3 KB for a queue that holds nothing or one message. :func:`trim_queue` puts short
  lists in their place; an unbounded queue never fills, so its putters stay empty.

Supported: daphne >=4.0,<5, autobahn >=22.4,<27 and Twisted >=22.10,<27 (written and
tested with daphne 4.2.3, autobahn 26.11.1, Twisted 26.10.0), and for the queue CPython
>=3.10,<3.14 (written with 3.11). It relies on autobahn copying only the ``CONFIG_ATTRS`` a
protocol lacks (``hasattr``), on Twisted's ``Factory`` building ``factory.protocol()``, on
``FileDescriptor.producer`` / ``unregisterProducer``, and on ``asyncio.Queue`` using its
deques only through ``append``, ``popleft``, ``remove``, ``len`` and iteration. Outside
that range, or with any of those gone, nothing is changed, with one warning: each connection
then holds its copy of the options, its HTTP request and its deques, as before. Measured
with ``python -m bench.memory`` (about 6 KB of RSS per idle connection together).
"""

from __future__ import annotations

import asyncio
import collections
import importlib
import sys
from typing import Any

from . import guard

SUPPORTED: guard.Ranges = {
    "daphne": ("4.0", "5"),
    "autobahn": ("22.4", "27"),
    "Twisted": ("22.10", "27"),
}
FALLBACK = "each WebSocket keeps its own copy of autobahn's options and its HTTP request"
SHARED = "_zmqfeed_shared_config"  # on a protocol subclass: the factory it was made for

_enabled: bool | None = None  # None: not checked yet in this process
released = 0  # HTTP channels let go (a plain int, for tests and /metrics)


def active() -> bool:
    return bool(_enabled)


def problems() -> list[str]:
    """What keeps these from applying to this daphne, if anything (empty: supported)."""
    found = guard.version_problems(SUPPORTED)
    if found:
        return found
    from twisted.internet import abstract
    from twisted.web import http

    protocol = importlib.import_module("daphne.ws_protocol").WebSocketProtocol  # no types
    found += guard.missing(protocol, ("CONFIG_ATTRS", "factory"), "daphne's WebSocketProtocol")
    found += guard.missing(
        abstract.FileDescriptor, ("producer", "unregisterProducer"), "a FileDescriptor"
    )
    found += guard.missing(http.HTTPChannel, ("registerProducer",), "twisted.web's HTTPChannel")
    return found


def check() -> bool:
    """Whether this daphne is one these were written for; decided once, one warning if not."""
    global _enabled
    if _enabled is None:
        found = problems()
        _enabled = not found
        if found:
            guard.warn_once("lean", found, FALLBACK)
    return _enabled


def uninstall() -> None:
    """Change no more connections (tests)."""
    global _enabled
    _enabled = False


def share_config(protocol: Any) -> bool:
    """Make the factory behind ``protocol`` build connections that share its options; True
    once it does (from the next connection on)."""
    factory: Any = getattr(protocol, "factory", None)
    built = getattr(factory, "protocol", None)
    if not isinstance(built, type) or not hasattr(built, "CONFIG_ATTRS"):
        return False
    if built.__dict__.get(SHARED) is factory:
        return True
    # Once per factory, after daphne's setProtocolOptions: what each instance would copy.
    # staticmethod: a function among them (perMessageCompressionAccept) stays unbound.
    names = {name: _as_class_attribute(getattr(factory, name)) for name in built.CONFIG_ATTRS}
    own = {"__module__": built.__module__, "__qualname__": built.__qualname__, SHARED: factory}
    factory.protocol = type(built.__name__, (built,), {**names, **own})
    return True


def _as_class_attribute(value: Any) -> Any:
    """``value`` as a class attribute that reads back as itself from an instance."""
    return staticmethod(value) if hasattr(type(value), "__get__") else value


def release_http(protocol: Any) -> bool:
    """Let the HTTP channel ``protocol`` was upgraded from go; True if it did."""
    from twisted.web.http import HTTPChannel

    global released
    transport: Any = getattr(protocol, "transport", None)
    channel = getattr(transport, "producer", None)
    if not isinstance(channel, HTTPChannel) or getattr(transport, "protocol", None) is not protocol:
        # Not handed over to ``protocol``: an HTTP request (an SSE stream: the transport's
        # protocol is Twisted's HTTP channel wrapper), or TLS, which wraps the transport.
        return False
    transport.unregisterProducer()
    requests = getattr(channel, "requests", None)
    if isinstance(requests, list):
        requests.clear()  # the request and the channel refer to each other
    released += 1
    return True


PYTHONS = ((3, 10), (3, 14))  # the asyncio.Queue internals trim_queue was checked against
QUEUE_DEQUES = ("_queue", "_getters", "_putters")


class Short(list):
    """A list that serves an asyncio.Queue as its deques: they hold a few items at most."""

    __slots__ = ()

    def popleft(self) -> Any:
        return self.pop(0)


def queue_problems() -> list[str]:
    """What keeps :func:`trim_queue` from this Python's asyncio.Queue, if anything."""
    low, high = PYTHONS
    if not low <= sys.version_info[:2] < high:
        tested = f">={'.'.join(map(str, low))},<{'.'.join(map(str, high))}"
        return [f"Python {sys.version.split()[0]} is outside the tested range {tested}"]
    probe: Any = asyncio.Queue()
    kinds = [type(getattr(probe, n, None)) for n in QUEUE_DEQUES]
    kinds.append(type(getattr(getattr(probe, "_finished", None), "_waiters", None)))
    if any(kind is not collections.deque for kind in kinds):
        return ["asyncio.Queue no longer keeps its items and waiters in deques"]
    return []


_queues_ok: bool | None = None


def _plain_queue(queue: object) -> bool:
    """An unbounded asyncio.Queue itself (no subclass: its deques may be used otherwise)."""
    return type(queue) is asyncio.Queue and not queue.maxsize


def trim_queue(receive: Any) -> bool:
    """Put short lists in place of the deques of the queue behind ``receive`` (daphne's
    ``input_queue.get``); True if it did. A queue someone waits on is left alone."""
    global _queues_ok
    queue: Any = getattr(receive, "__self__", None)
    if not _plain_queue(queue) or not check():
        return False
    if _queues_ok is None:
        found = queue_problems()
        _queues_ok = not found
        if found:
            guard.warn_once("lean-queue", found, "each connection's receive queue keeps deques")
    if not _queues_ok or queue._getters or queue._putters or queue._finished._waiters:
        return False
    queue._queue = Short(queue._queue)  # the websocket.connect not yet taken, if any
    queue._getters = Short()
    queue._putters = Short()
    queue._finished._waiters = Short()
    return True


def observe(protocol: Any) -> None:
    """At a zmqfeed WebSocket under daphne, once it is open."""
    if check():
        share_config(protocol)
        release_http(protocol)
