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
from typing import Protocol

from channels.layers import get_channel_layer

log = logging.getLogger("zmqfeed.fanout")

# Channels drops group members after the layer's group_expiry (a day by default).
REJOIN_INTERVAL = 600.0


class Member(Protocol):
    async def deliver(self, event: dict) -> None: ...


class Fanout:
    def __init__(self, layer) -> None:
        self.layer = layer
        self.channel: str | None = None
        self.members: dict[str, set[Member]] = {}
        self._task: asyncio.Task | None = None
        self._ready: asyncio.Lock = asyncio.Lock()

    async def _start(self) -> None:
        async with self._ready:
            if self._task is None:
                self.channel = await self.layer.new_channel()
                self._task = asyncio.ensure_future(self._run())

    async def join(self, group: str, member: Member) -> None:
        """After this returns, every frame sent to the group reaches ``member``."""
        if self._task is None:
            await self._start()
        members = self.members.get(group)
        if members is None:
            members = self.members[group] = set()
            await self.layer.group_add(group, self.channel)
        members.add(member)

    async def leave(self, group: str, member: Member) -> None:
        members = self.members.get(group)
        if members is None:
            return
        members.discard(member)
        if not members:
            del self.members[group]
            await self.layer.group_discard(group, self.channel)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        rejoin = loop.time() + REJOIN_INTERVAL
        while True:
            try:
                event = await self.layer.receive(self.channel)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # e.g. Redis restarting: keep the process serving
                log.warning("channel layer receive failed: %s; retrying", exc)
                await asyncio.sleep(1.0)
                continue
            members = self.members.get(event.get("group", ""))
            if members:
                for member in list(members):
                    try:
                        await member.deliver(event)
                    except Exception:
                        log.exception("delivery to a consumer failed")
            if loop.time() > rejoin:
                rejoin = loop.time() + REJOIN_INTERVAL
                for group in list(self.members):
                    with contextlib.suppress(Exception):
                        await self.layer.group_add(group, self.channel)


_fanouts: dict[asyncio.AbstractEventLoop, Fanout] = {}


def get_fanout() -> Fanout:
    loop = asyncio.get_running_loop()
    fanout = _fanouts.get(loop)
    if fanout is None:
        fanout = _fanouts[loop] = Fanout(get_channel_layer())
    return fanout
