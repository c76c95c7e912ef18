"""What one server process holds up: its admission caps and its memory for slow clients.

Each connection may keep ``MAX_CLIENT_BACKLOG`` bytes unsent before its frames are shed, but
a thousand slow clients at 4 MiB each would be 4 GB. A supervisor sums what all of them
hold, four times a second, and past ``MAX_BACKLOG_TOTAL`` sheds the clients that hold the
most (they get a ``gap``) and closes those that stay over it for ``SLOW_CLIENT_GRACE``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from . import conf, metrics
from .core.admission import Admission, Caps, over_cap
from .core.rates import LogThrottle

log = logging.getLogger("zmqfeed.node")

TICK = 0.25  # seconds between sums of what slow clients hold

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
    def __init__(self, cap: int, grace: float) -> None:
        self.cap, self.grace = cap, grace
        self.holders: dict[Any, float] = {}  # connection -> seconds it has been over the cap
        self._task: asyncio.Task | None = None
        self._throttle = LogThrottle(conf.get()["LOG_INTERVAL"])

    def add(self, holder: Any) -> None:
        if not self.cap or getattr(holder, "queued", None) is None:
            return  # no cap, or a server that gives no measure
        self.holders[holder] = 0.0
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._run())

    def discard(self, holder: Any) -> None:
        self.holders.pop(holder, None)

    def tick(self) -> list[Any]:
        """Mark the holders to shed; the ones to close (over the cap for the grace time)."""
        queued = {h: h.queued() for h in self.holders}
        shed = over_cap(queued, self.cap)
        closing = []
        for holder in self.holders:
            holder.over_cap = holder in shed
            self.holders[holder] = self.holders[holder] + TICK if holder.over_cap else 0.0
            if self.holders[holder] >= self.grace:
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
            await asyncio.sleep(TICK)
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
