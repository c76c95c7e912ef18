"""One member of each topic group per server process, handing frames to local consumers.

Channels' usual pattern, a group member per WebSocket, costs a channel-layer queue, a
receive task and a dispatch for every client and every frame (and, with Redis, one Redis
message per client). Here each process joins a topic's group once, with one channel of its
own; a frame arriving on it is handed to every local subscriber by a direct call. The group
is still a Channels group: the subscriber, or anything else, sends to it as usual.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable
from typing import Any, Protocol, cast

from channels.layers import get_channel_layer

from . import conf, metrics, status
from .core.catalog import group_topic
from .core.protocol import Frame, FrameEvent, coalesce
from .core.rates import LogThrottle
from .core.status import topic_key

log = logging.getLogger("zmqfeed.fanout")

# Channels drops group members after the layer's group_expiry (a day by default).
REJOIN_INTERVAL = 600.0


class Member(Protocol):
    def deliver(self, frame: Frame) -> Awaitable[None] | None:
        """Hand over ``frame``: None when that is all (sent, or nothing to send), else what
        is left to await (actions, a send that takes the ordinary path). A coroutine
        function fits too: it always leaves something to await."""


class Fanout:
    def __init__(self, layer) -> None:
        self.layer = layer
        self.channel: str | None = None
        self.members: dict[str, set[Member]] = {}
        self._task: asyncio.Task | None = None
        self._ready: asyncio.Lock = asyncio.Lock()
        self._pending: list[tuple[str, Frame]] = []
        self._wakeup = asyncio.Event()
        self.max_frame = conf.get()["MAX_FRAME_SIZE"]
        self._throttle = LogThrottle(conf.get()["LOG_INTERVAL"])
        self._counters: dict[str, tuple[Any, Any, Any]] = {}  # group → its series' children

    async def _start(self) -> None:
        async with self._ready:
            if self._task is None:
                self.channel = await self.layer.new_channel()
                self._task = asyncio.ensure_future(self._run())
                status.reporter().add(self, feeds=False)

    async def join(self, group: str, member: Member) -> None:
        """After this returns, every frame sent to the group reaches ``member``."""
        if self._task is None:
            await self._start()
        members = self.members.get(group)
        if members is None:
            await self.layer.group_add(group, self.channel)  # may fail: then nothing changed
            members = self.members.setdefault(group, set())
        members.add(member)
        _count_subscriptions(group, len(members))

    async def leave(self, group: str, member: Member) -> None:
        members = self.members.get(group)
        if members is None:
            return
        members.discard(member)
        _count_subscriptions(group, len(members))
        if not members:
            del self.members[group]
            await self.layer.group_discard(group, self.channel)

    def subscription_counts(self) -> dict[str, int]:
        """This process's subscriptions per topic key (the status snapshot's)."""
        counts = {}
        for group, members in self.members.items():
            topic = group_topic(group)
            if topic is not None and members:
                counts[topic_key(*topic)] = len(members)
        return counts

    async def _run(self) -> None:
        receiver = asyncio.ensure_future(self._receive())
        try:
            await self._deliver()
        finally:
            receiver.cancel()

    async def _receive(self) -> None:
        loop = asyncio.get_running_loop()
        rejoin = loop.time() + REJOIN_INTERVAL
        while True:
            try:
                if loop.time() >= rejoin:
                    for group in list(self.members):
                        await self.layer.group_add(group, self.channel)
                    rejoin = loop.time() + REJOIN_INTERVAL
                event = await self.layer.receive(self.channel)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # e.g. Redis restarting: keep the process serving
                log.warning("channel layer receive or group join failed: %s; retrying", exc)
                await asyncio.sleep(1.0)
                # A Redis that comes back empty has forgotten the groups (RedisChannelLayer
                # keeps them there): join them again before reading on.
                rejoin = 0.0
                continue
            try:
                self._pending.append((event["group"], Frame.from_event(cast(FrameEvent, event))))
            except (KeyError, TypeError, ValueError) as exc:
                # Something else sent to a zmqfeed group: a Frame's shape is protocol's.
                count = self._throttle.ready("foreign")
                if count is not None:
                    log.warning("ignored %d message(s) that are not zmqfeed frames: %r", count, exc)
                continue
            self._wakeup.set()

    async def _deliver(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._pending:
                events, self._pending = self._pending, []
                for group, frame in coalesce(events, self.max_frame):
                    members = list(self.members.get(group) or ())
                    if not members:
                        continue
                    self._count(group, frame, len(members))
                    for member in members:
                        try:
                            pending = member.deliver(frame)
                            if pending is not None:
                                await pending
                        except Exception:
                            log.exception("delivery to a consumer failed")
                # Let the receiver take in what arrived meanwhile: merged next time round.
                await asyncio.sleep(0)

    def _count(self, group: str, frame: Frame, recipients: int) -> None:
        """Per frame, not per client: messages and bytes times recipients, and the lag."""
        counters = self._counters.get(group)
        if counters is None:
            counters = self._counters[group] = (
                metrics.DELIVERED.labels(frame.feed, frame.topic),
                metrics.SENT_BYTES.labels(frame.feed, frame.topic),
                metrics.LAG.labels(frame.feed),
            )
        delivered, sent, lag = counters
        delivered.inc(len(frame.starts) * recipients)
        sent.inc(frame.size * recipients)
        arrived = frame.arrived()
        if arrived is not None:
            lag.observe(max(0.0, time.time() - arrived))


def _count_subscriptions(group: str, members: int) -> None:
    """``zmqfeed_subscriptions{feed,topic}``: a topic nobody here holds leaves the gauge."""
    topic = group_topic(group)
    if topic is None:
        return
    if members:
        metrics.SUBSCRIPTIONS.labels(*topic).set(members)
    else:
        with contextlib.suppress(KeyError):
            metrics.SUBSCRIPTIONS.remove(*topic)


_fanouts: dict[asyncio.AbstractEventLoop, Fanout] = {}


def get_fanout() -> Fanout:
    loop = asyncio.get_running_loop()
    fanout = _fanouts.get(loop)
    if fanout is None:
        fanout = _fanouts[loop] = Fanout(get_channel_layer())
    return fanout
