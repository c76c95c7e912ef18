"""Which WebSocket connections a server process lets in: caps that hold the node up.

Pure: the consumer asks :meth:`Admission.admit` before it accepts a connection and calls
:meth:`Admission.release` when it goes. Past a cap the connection is refused with a reason
(counted, and sent to the client as close code 4013, "try again later").
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from .rates import TokenBucket

CLOSE_TRY_AGAIN = 4013  # stands for 1013 (try again later), which ASGI servers may not send


@dataclass(frozen=True)
class Caps:
    """0 or None: no cap."""

    connections: int = 10_000  # per server process
    per_user: int = 100  # per logged-in user or token user, per process
    per_ip: int = 0  # per client address, per process (off: proxies share addresses)
    rate: float = 0.0  # connection attempts per second, sustained (off by default)
    burst: int = 0  # attempts allowed in a burst


class Admission:
    def __init__(self, caps: Caps, clock: Callable[[], float] = time.monotonic) -> None:
        self.caps = caps
        self.total = 0
        self.users: dict[Hashable, int] = {}
        self.ips: dict[Hashable, int] = {}
        self._bucket = TokenBucket(caps.rate, max(caps.burst, 1), clock) if caps.rate else None

    def admit(self, user: Hashable | None, ip: Hashable | None) -> str | None:
        """None: in (and counted until release); else why not."""
        caps = self.caps
        if self._bucket is not None and not self._bucket.take():
            return "rate"
        if caps.connections and self.total >= caps.connections:
            return "node"
        if user is not None and caps.per_user and self.users.get(user, 0) >= caps.per_user:
            return "user"
        if ip is not None and caps.per_ip and self.ips.get(ip, 0) >= caps.per_ip:
            return "ip"
        self.total += 1
        if user is not None:
            self.users[user] = self.users.get(user, 0) + 1
        if ip is not None:
            self.ips[ip] = self.ips.get(ip, 0) + 1
        return None

    def release(self, user: Hashable | None, ip: Hashable | None) -> None:
        self.total -= 1
        for counts, key in ((self.users, user), (self.ips, ip)):
            if key is not None:
                left = counts.get(key, 0) - 1
                if left > 0:
                    counts[key] = left
                else:
                    counts.pop(key, None)


def over_cap(queued: dict[Hashable, int], cap: int) -> set[Hashable]:
    """The connections to shed so that what all of them hold unsent is back under ``cap``:
    the ones holding the most, first (a slow client costs the most memory)."""
    total = sum(queued.values())
    shed: set[Hashable] = set()
    if not cap or total <= cap:
        return shed
    for key, size in sorted(queued.items(), key=lambda item: item[1], reverse=True):
        if total <= cap or size <= 0:
            break
        shed.add(key)
        total -= size
    return shed
