"""Small rate tools: a token bucket for client frames, a throttle for log lines."""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable


class TokenBucket:
    __slots__ = ("burst", "clock", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic):
        self.rate, self.burst, self.clock = rate, burst, clock
        self.tokens = float(burst)
        self.stamp = clock()

    def take(self) -> bool:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class LogThrottle:
    """Says whether to log an event of a kind now, and how many were held back since."""

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval, self.clock = interval, clock
        self._last: dict[Hashable, float] = {}
        self._held: dict[Hashable, int] = {}

    def ready(self, key: Hashable, count: int = 1) -> int | None:
        """None: stay quiet. Otherwise the number of events to report (this one included)."""
        now = self.clock()
        last = self._last.get(key)
        held = self._held.get(key, 0) + count
        if last is not None and now - last < self.interval:
            self._held[key] = held
            return None
        self._last[key] = now
        self._held[key] = 0
        return held
