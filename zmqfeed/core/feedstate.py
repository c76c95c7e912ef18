"""What one feed's SUB socket is doing, from its monitor events and the messages it reads.

Pure: the subscriber feeds it ZeroMQ socket monitor events (under the names below, so that
this module needs no ZeroMQ), the messages and drops it counts, and a clock; it answers with
the feed's state for the status page, the admin and the ``zmqfeed_feed_state`` gauge:

- ``error``: the socket is not set up as configured: an endpoint that could not be bound or
  connected (an address the host lacks, a port taken, a transport libzmq lacks, no CURVE
  key), or a publisher the feed connects to that has not been reached for ``silent_after``
  seconds (refused, unreachable, gone; libzmq keeps retrying, and the state follows).
- ``receiving``: a message arrived within the last ``silent_after`` seconds.
- ``connected``: a publisher is connected and nothing has arrived yet, for less than
  ``silent_after`` seconds since it connected.
- ``bound``: a bound feed listens, no publisher has connected, for less than
  ``silent_after`` seconds since it bound.
- ``silent``: nothing arrives and no fault is known: no message for ``silent_after``
  seconds while the socket was up, or a connect still on its way to its publisher (it
  becomes an ``error`` once ``silent_after`` seconds have passed).
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

CONNECTED = "connected"
BOUND = "bound"
RECEIVING = "receiving"
SILENT = "silent"
ERROR = "error"
STATES = (CONNECTED, BOUND, RECEIVING, SILENT, ERROR)

# Socket monitor events, by the name of their ZMQ_EVENT_* constant (lowercase); the shell
# maps libzmq's numbers onto these. Others (connect_delayed, closed...) change nothing.
LISTENING = "listening"
BIND_FAILED = "bind_failed"
ACCEPTED = "accepted"
ACCEPT_FAILED = "accept_failed"
EVENT_CONNECTED = "connected"
CONNECT_RETRIED = "connect_retried"
DISCONNECTED = "disconnected"
CLOSED = "closed"
HANDSHAKE_SUCCEEDED = "handshake_succeeded"
HANDSHAKE_FAILED_NO_DETAIL = "handshake_failed_no_detail"
HANDSHAKE_FAILED_PROTOCOL = "handshake_failed_protocol"
HANDSHAKE_FAILED_AUTH = "handshake_failed_auth"
HANDSHAKE_FAILURES = {
    HANDSHAKE_FAILED_NO_DETAIL: "handshake failed",
    HANDSHAKE_FAILED_PROTOCOL: "handshake failed (protocol error)",
    HANDSHAKE_FAILED_AUTH: "handshake failed (authentication: CURVE keys)",
}

SPAN = 60  # seconds of per-second counts kept for sparklines
WINDOW = 5  # completed seconds a rate is the mean of


class Series:
    """Counts per whole second of a clock, the last ``span`` of them: a rate and a sparkline."""

    __slots__ = ("_counts", "_second", "span", "total")

    def __init__(self, now: float, span: int = SPAN) -> None:
        self.span = span
        self.total = 0
        self._second = int(now)  # the second _counts[-1] counts (still running)
        self._counts: deque[int] = deque([0] * (span + 1), maxlen=span + 1)

    def _advance(self, now: float) -> None:
        second = int(now)
        if second <= self._second:
            return
        for _ in range(min(second - self._second, self.span + 1)):
            self._counts.append(0)
        self._second = second

    def add(self, count: int, now: float) -> None:
        self._advance(now)
        self._counts[-1] += count
        self.total += count

    def counts(self, now: float) -> list[int]:
        """The completed seconds before ``now``'s, oldest first (``span`` of them)."""
        self._advance(now)
        return list(self._counts)[:-1]

    def rate(self, now: float, window: int = WINDOW) -> float:
        """Per second, over the last ``window`` completed seconds."""
        return sum(self.counts(now)[-window:]) / window


@dataclass
class FeedState:
    """One feed's socket, from the moment it is opened with these endpoints."""

    endpoints: tuple[str, ...]
    bind: bool
    silent_after: float
    opened: float  # the clock when the socket was opened
    failures: dict[str, str] = field(default_factory=dict)  # endpoint -> why it is not attached
    _bind_failed: dict[str, str] = field(default_factory=dict)  # from events, until listening
    _listening: set[str] = field(default_factory=set)
    _peers: dict[int, str] = field(default_factory=dict)  # connection (fd) -> endpoint
    _down_since: dict[str, float] = field(default_factory=dict)  # connect endpoint -> since
    _retries: dict[str, int] = field(default_factory=dict)  # since it was last connected
    _handshake: dict[str, str] = field(default_factory=dict)  # endpoint -> last failure
    _reached: set[str] = field(default_factory=set)  # connect endpoints ever connected
    _up_since: float | None = None  # the last bind or connection: a fresh chance of messages
    _last_message: float | None = None
    _received: Series | None = None
    _drops: dict[str, Series] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._received = Series(self.opened)
        if not self.bind:
            self._down_since = dict.fromkeys(self.endpoints, self.opened)

    # What the shell tells it

    def failed(self, endpoint: str, text: str) -> None:
        """An endpoint that could not be attached at all (the bind or connect raised, or
        the shell would not try it): an error for as long as this socket lives."""
        self.failures[endpoint] = text
        self._down_since.pop(endpoint, None)

    def event(self, kind: str, endpoint: str, value: int, now: float) -> None:
        """A socket monitor event: ``value`` is the connection's fd where there is one, or
        the errno of a failure."""
        if kind == LISTENING:
            self._listening.add(endpoint)
            self._bind_failed.clear()  # a bind retried until it succeeded
            self._up_since = now
        elif kind == BIND_FAILED:
            self._bind_failed[endpoint] = f"bind failed: {os.strerror(value)}"
        elif kind in (ACCEPTED, EVENT_CONNECTED):
            self._peers[value] = endpoint
            self._down_since.pop(endpoint, None)
            self._retries.pop(endpoint, None)
            self._reached.add(endpoint)
            self._up_since = now
        elif kind == DISCONNECTED:
            gone = self._peers.pop(value, endpoint)
            if not self.bind and gone in self.endpoints and gone not in self._peers.values():
                self._down_since.setdefault(gone, now)
        elif kind == CONNECT_RETRIED:
            self._retries[endpoint] = self._retries.get(endpoint, 0) + 1
        elif kind == CLOSED:
            self._listening.discard(endpoint)
        elif kind == HANDSHAKE_SUCCEEDED:
            self._handshake.pop(endpoint, None)
        elif kind in HANDSHAKE_FAILURES:
            self._handshake[endpoint] = HANDSHAKE_FAILURES[kind]

    def received(self, count: int, now: float) -> None:
        assert self._received is not None
        self._received.add(count, now)
        self._last_message = now

    def dropped(self, reason: str, count: int, now: float) -> None:
        series = self._drops.get(reason)
        if series is None:
            series = self._drops[reason] = Series(now)
        series.add(count, now)

    # What it answers

    def state(self, now: float) -> tuple[str, str]:
        """The state and a line that says why (the error's text for ``error``)."""
        problems = [f"{endpoint}: {text}" for endpoint, text in self.failures.items()]
        if not self.failures:  # else the same bind, as the shell saw it (with the endpoint)
            problems += [f"{where}: {text}" for where, text in self._bind_failed.items()]
        if not self.endpoints:
            problems.append("no endpoint")
        for endpoint, since in self._down_since.items():
            if now - since >= self.silent_after:
                problems.append(f"{endpoint}: {self._unreached(endpoint, now - since)}")
        if problems:
            return ERROR, "; ".join(problems)
        last = self._last_message
        if last is not None and now - last < self.silent_after:
            return RECEIVING, ""
        quiet = now - max(self.opened, self._up_since or self.opened, last or self.opened)
        if quiet >= self.silent_after:
            what = "no message" if last is not None else "no message yet"
            return SILENT, f"{what} for {quiet:.0f} s"
        if self._peers:
            count = len(self._peers)
            return CONNECTED, f"{count} publisher{'s' * (count != 1)} connected"
        if self.bind and self._listening:
            return BOUND, "no publisher connected yet"
        waiting = ", ".join(self._down_since) or ", ".join(self.endpoints)
        return SILENT, f"connecting to {waiting}"

    def _unreached(self, endpoint: str, seconds: float) -> str:
        was = "lost" if endpoint in self._reached else "not reached"
        text = f"publisher {was} for {seconds:.0f} s"
        retries = self._retries.get(endpoint, 0)
        if retries:
            text += f" (connection retried {retries} time{'s' * (retries != 1)})"
        if endpoint in self._handshake:
            text += f"; last {self._handshake[endpoint]}"
        return text

    def snapshot(self, now: float) -> dict[str, Any]:
        """What the status page shows of the feed: JSON values only."""
        assert self._received is not None
        state, detail = self.state(now)
        return {
            "state": state,
            "detail": detail,
            "rate": self._received.rate(now),
            "received": self._received.total,
            "series": self._received.counts(now),
            "age": None if self._last_message is None else max(0.0, now - self._last_message),
            "peers": len(self._peers),
            "drops": {
                reason: {
                    "total": series.total,
                    "rate": series.rate(now),
                    "series": series.counts(now),
                }
                for reason, series in sorted(self._drops.items())
            },
        }


def idle_snapshot(state: str, detail: str) -> dict[str, Any]:
    """A snapshot's fields for a feed no machine watches (a standby's, or one nobody reports)."""
    return {
        "state": state,
        "detail": detail,
        "rate": 0.0,
        "received": 0,
        "series": [],
        "age": None,
        "peers": 0,
        "drops": {},
    }


def gauge_values(state: str) -> Iterable[tuple[str, int]]:
    """``zmqfeed_feed_state``: 1 for the current state, 0 for the others."""
    return ((name, int(name == state)) for name in STATES)
