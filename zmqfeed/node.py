"""What one server process holds up: its admission caps and its memory for slow clients.

Each connection may keep ``MAX_CLIENT_BACKLOG`` bytes unsent before its frames are shed, but
a thousand slow clients at 4 MiB each would be 4 GB. The supervisor keeps a running total
of what all of them hold, updated at every delivery (one subtraction, no scan): past
``MAX_BACKLOG_TOTAL`` a client holding more than its fair share (the cap over the number
of clients) is shed at once, before its frame is written. Four times a second it sums the
real figures again, marks the clients that hold the most until the total is under the cap,
and closes those that have stayed over it for ``SLOW_CLIENT_GRACE`` seconds.

The idle sweeper closes connections that send nothing and subscribe to nothing: one task
per process looks at them a few times per ``IDLE_TIMEOUT``, not a timer per connection.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from . import conf, metrics
from .core.admission import Admission, Caps, over_cap
from .core.rates import LogThrottle

log = logging.getLogger("zmqfeed.node")

TICK = 0.25  # seconds between sums of what slow clients hold, once they hold a quarter of the cap
# Below that, a sum a second: each reads every connection's buffer (at 10,000 connections,
# 4 per second cost about 6% of a core), and deliveries keep the running total meanwhile.
CALM_TICK = 1.0

_admission: Admission | None = None


def admission() -> Admission:
    """This process's admission, with the caps of the settings when it was first asked."""
    global _admission
    if _admission is None:
        settings = conf.get()
        _admission = Admission(
            Caps(
                connections=settings["MAX_CONNECTIONS"],
                per_user=settings["MAX_CONNECTIONS_PER_USER"],
                per_ip=settings["MAX_CONNECTIONS_PER_IP"],
                rate=settings["CONNECT_RATE"],
                burst=settings["CONNECT_BURST"],
            )
        )
    return _admission


def reset() -> None:
    """Forget the caps and counts (tests that change the settings)."""
    global _admission
    _admission = None


class BacklogSupervisor:
    def __init__(self, cap: int, grace: float, clock: Callable[[], float] = time.monotonic):
        self.cap, self.grace, self.clock = cap, grace, clock
        self.holders: dict[Any, float] = {}  # connection -> when it went over the cap (or 0)
        self._task: asyncio.Task | None = None
        self._throttle = LogThrottle(conf.get()["LOG_INTERVAL"])

    total = 0  # bytes the holders held unsent when last seen

    def add(self, holder: Any) -> None:
        if not self.cap or getattr(holder, "queued", None) is None:
            return  # no cap, or a server that gives no measure
        self.holders[holder] = 0.0
        holder.held = 0
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._run())

    def discard(self, holder: Any) -> None:
        if self.holders.pop(holder, None) is not None:
            self.total -= holder.held
            holder.held = 0

    def shed(self, holder: Any, queued: int) -> bool:
        """At a delivery: note what ``holder`` holds; True if its frame is to be shed."""
        if not self.cap or not (queued or holder.held or holder.over_cap):
            return False  # no cap, or nothing held now or when last seen: nothing changes
        self.total += queued - holder.held
        holder.held = queued
        if holder.over_cap:
            return True
        return self.total > self.cap and queued * len(self.holders) > self.cap

    def interval(self) -> float:
        """Seconds to the next sum: TICK once the holders near the cap, else CALM_TICK."""
        return TICK if self.total * 4 >= self.cap else CALM_TICK

    def tick(self) -> list[Any]:
        """Mark the holders to shed; the ones to close (over the cap for the grace time)."""
        queued = {h: h.queued() for h in self.holders}
        for holder, size in queued.items():
            holder.held = size
        self.total = sum(queued.values())
        shed = over_cap(queued, self.cap)
        now = self.clock()
        closing = []
        for holder in self.holders:
            holder.over_cap = holder in shed
            if not holder.over_cap:
                self.holders[holder] = 0.0
            elif not self.holders[holder]:
                self.holders[holder] = now  # over the cap since
            elif now - self.holders[holder] >= self.grace:
                closing.append(holder)
        if shed:
            metrics.OVER_CAP.inc(len(shed))
            total = self._throttle.ready("over", len(shed))
            if total is not None:
                log.warning(
                    "slow clients hold %d bytes unsent, over MAX_BACKLOG_TOTAL (%d): shedding "
                    "the %d that hold the most",
                    sum(queued.values()),
                    self.cap,
                    len(shed),
                )
        return closing

    async def _run(self) -> None:
        while self.holders:
            await asyncio.sleep(self.interval())
            for holder in self.tick():
                self.discard(holder)
                try:
                    await holder.close_slow()
                except Exception:
                    log.exception("closing a slow client failed")


_supervisors: dict[asyncio.AbstractEventLoop, BacklogSupervisor] = {}


def supervisor() -> BacklogSupervisor:
    loop = asyncio.get_running_loop()
    found = _supervisors.get(loop)
    if found is None:
        settings = conf.get()
        found = _supervisors[loop] = BacklogSupervisor(
            settings["MAX_BACKLOG_TOTAL"], settings["SLOW_CLIENT_GRACE"]
        )
    return found


class IdleSweeper:
    """Asks each connection's session, a few times per IDLE_TIMEOUT, whether it idled out."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.connections: set[Any] = set()
        self._task: asyncio.Task | None = None

    def add(self, connection: Any) -> None:
        if not self.timeout:
            return
        self.connections.add(connection)
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._run())

    def discard(self, connection: Any) -> None:
        self.connections.discard(connection)

    def sweep(self) -> list[Any]:
        """The connections whose sessions have just been told to close."""
        return [c for c in self.connections if c.session is not None and c.session.expire()]

    async def _run(self) -> None:
        while self.connections:
            await asyncio.sleep(max(0.25, self.timeout / 4))
            for connection in self.sweep():
                self.discard(connection)
                metrics.IDLE_CLOSED.inc()
                try:
                    await connection.act()
                except Exception:
                    log.exception("closing an idle client failed")


_sweepers: dict[asyncio.AbstractEventLoop, IdleSweeper] = {}


def sweeper() -> IdleSweeper:
    loop = asyncio.get_running_loop()
    found = _sweepers.get(loop)
    if found is None:
        found = _sweepers[loop] = IdleSweeper(conf.get()["IDLE_TIMEOUT"])
    return found
