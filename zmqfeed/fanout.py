"""One member of each topic group per server process, handing frames to local consumers.

Channels' usual pattern, a group member per WebSocket, costs a channel-layer queue, a
receive task and a dispatch for every client and every frame (and, with Redis, one Redis
message per client). Here each process joins a topic's group once, with one channel of its
own; a frame arriving on it is handed to every local subscriber by a direct call. The group
is still a Channels group: the subscriber, or anything else, sends to it as usual.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from channels.layers import get_channel_layer

from . import conf
from .core.protocol import BATCH_HEAD, BATCH_OVERHEAD

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
        self._pending: list[dict] = []
        self._wakeup = asyncio.Event()
        self.max_frame = conf.get()["MAX_FRAME_SIZE"]

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
            await self.layer.group_add(group, self.channel)  # may fail: then nothing changed
            members = self.members.setdefault(group, set())
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
            self._pending.append(event)
            self._wakeup.set()

    async def _deliver(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._pending:
                events, self._pending = self._pending, []
                for event in coalesce(events, self.max_frame):
                    members = self.members.get(event.get("group", ""))
                    for member in list(members or ()):
                        try:
                            await member.deliver(event)
                        except Exception:
                            log.exception("delivery to a consumer failed")
                # Let the receiver take in what arrived meanwhile: merged next time round.
                await asyncio.sleep(0)


_BATCH_HEAD = BATCH_HEAD.decode()


def _inner_size(event: dict) -> int:
    """Bytes of the event's envelopes joined by commas, as they are inside a batch."""
    size = event["size"]
    return size - BATCH_OVERHEAD if event["text"].startswith(_BATCH_HEAD) else size


def _envelopes(text: str) -> str:
    return text[len(_BATCH_HEAD) : -2] if text.startswith(_BATCH_HEAD) else text


def coalesce(events: list[dict], limit: int) -> list[dict]:
    """Merge the frames of each group whose seqs follow on into one frame of at most ``limit``.

    Frames queue up here when a server process is busier than the subscriber (which, in
    its own process, cannot feel that): merging them is the process's adaptive batching,
    one frame per client instead of one per queued frame. Each group keeps its order and
    its gaps; frames of different groups may change places, as they may on the wire. Only
    frames that say their ``size`` in bytes are merged, and never past ``limit`` bytes.
    """
    if len(events) < 2:
        return events
    runs: dict[object, list[tuple[list[dict], int]]] = {}
    for event in events:
        group_runs = runs.setdefault(event.get("group"), [])
        mergeable = isinstance(event.get("first"), int) and isinstance(event.get("size"), int)
        inner = _inner_size(event) if mergeable else 0
        if group_runs:
            run, size = group_runs[-1]
            last = run[-1]
            if (
                mergeable
                and event.get("type") == last.get("type")
                and event["first"] == last.get("last", 0) + 1
                and size + 1 + inner + BATCH_OVERHEAD <= limit
            ):
                run.append(event)
                group_runs[-1] = (run, size + 1 + inner)
                continue
        group_runs.append(([event], inner if mergeable else limit))
    out = []
    for group_runs in runs.values():
        for run, size in group_runs:
            if len(run) == 1:
                out.append(run[0])
            else:
                text = _BATCH_HEAD + ",".join(_envelopes(e["text"]) for e in run) + "]}"
                out.append(
                    {**run[0], "text": text, "size": size + BATCH_OVERHEAD, "last": run[-1]["last"]}
                )
    return out


_fanouts: dict[asyncio.AbstractEventLoop, Fanout] = {}


def get_fanout() -> Fanout:
    loop = asyncio.get_running_loop()
    fanout = _fanouts.get(loop)
    if fanout is None:
        fanout = _fanouts[loop] = Fanout(get_channel_layer())
    return fanout
