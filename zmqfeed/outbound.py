"""Two-way: what clients publish, from the server process that took it to the feed's
outbound socket, through the channel layer.

Each feed's outbound socket has one owner: the subscriber that numbers the feed (the
embedded server process, or in scaled mode the ``zmq_subscribe`` holding the feed's
lease). It takes publishes from the feed's channel (:func:`channel_of`) and answers each on
the channel the sending process gave, so outbound ZeroMQ connections do not grow with the
web tier. A publish nobody takes in time is refused (``unavailable``), never left to go out
later: every request carries a deadline, half the sender's wait, past which the owner
refuses it too.

A `pub` socket is an XPUB underneath: it learns what its ZeroMQ subscribers subscribe to,
so a publish that no subscriber would receive is refused rather than dropped unseen, and
a subscriber slower than the high-water mark refuses publishes (``XPUB_NODROP``) rather
than losing them.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from typing import Any, NamedTuple, TypedDict

import zmq
import zmq.asyncio
from channels.exceptions import ChannelFull

from . import curve, metrics
from .core.catalog import FeedConfig
from .core.rates import LogThrottle
from .core.vocabulary import PUBLISH_PUB
from .endpoints import parse_endpoint, transport_available

log = logging.getLogger("zmqfeed.outbound")

PUBLISH = "zmqfeed.publish"
PUBLISHED = "zmqfeed.published"


def channel_of(feed: str) -> str:
    """The channel a feed's publishes go to; only the feed's owner receives on it."""
    return f"zmqfeed.publish.{feed}"


class PublishEvent(TypedDict):
    type: str  # PUBLISH
    frames: list[bytes]
    reply: str  # the sender's channel
    ref: int  # the sender's number for it
    deadline: float  # Unix time: taken later, it is refused (the sender stopped waiting)


class PublishedEvent(TypedDict):
    type: str  # PUBLISHED
    ref: int
    code: str | None  # None: the socket took it; else the client's error code
    detail: str


class Outcome(NamedTuple):
    code: str | None  # None: published
    detail: str = ""


# The sending side: every server process.


class Sender:
    """This process's way to every feed's owner: one reply channel, one waiter per publish."""

    def __init__(self, layer: Any, timeout: float) -> None:
        self.layer = layer
        self.timeout = timeout
        self.channel: str | None = None
        self.waiting: dict[int, asyncio.Future[Outcome]] = {}
        self._refs = itertools.count(1)
        self._task: asyncio.Task | None = None
        self._ready = asyncio.Lock()

    async def send(self, feed: str, frames: tuple[bytes, ...]) -> Outcome:
        """Hand ``frames`` to the feed's owner and wait for its answer (PUBLISH_TIMEOUT)."""
        if self._task is None:
            await self._start()
        assert self.channel is not None
        ref = next(self._refs)
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self.waiting[ref] = future
        event: PublishEvent = {
            "type": PUBLISH,
            "frames": list(frames),
            "reply": self.channel,
            "ref": ref,
            "deadline": time.time() + self.timeout / 2,
        }
        try:
            try:
                await self.layer.send(channel_of(feed), event)
            except ChannelFull:
                return Outcome(
                    "unavailable", "the feed's publish queue is full: nothing is taking it"
                )
            except Exception as exc:  # Redis away
                return Outcome("unavailable", f"the channel layer failed: {type(exc).__name__}")
            try:
                return await asyncio.wait_for(future, self.timeout)
            except asyncio.TimeoutError:
                return Outcome(
                    "unavailable",
                    f"no subscriber process took it within {self.timeout:g} s; try again",
                )
        finally:
            self.waiting.pop(ref, None)

    async def _start(self) -> None:
        async with self._ready:
            if self._task is None:
                self.channel = await self.layer.new_channel()
                self._task = asyncio.ensure_future(self._receive())

    async def _receive(self) -> None:
        assert self.channel is not None
        while True:
            try:
                event = await self.layer.receive(self.channel)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis restarting: the waiters time out meanwhile
                log.warning("channel layer receive failed: %s; retrying", exc)
                await asyncio.sleep(1.0)
                continue
            future = self.waiting.get(event.get("ref"))
            if future is not None and not future.done():
                future.set_result(Outcome(event.get("code"), event.get("detail", "")))


_senders: dict[asyncio.AbstractEventLoop, Sender] = {}


def get_sender() -> Sender:
    from channels.layers import get_channel_layer

    from . import conf

    loop = asyncio.get_running_loop()
    found = _senders.get(loop)
    if found is None:
        found = _senders[loop] = Sender(get_channel_layer(), conf.get()["PUBLISH_TIMEOUT"])
    return found


# The owning side: the subscriber that numbers the feed.


class Outlet:
    """One feed's outbound socket, and the loop that takes the feed's publishes."""

    def __init__(
        self, feed: FeedConfig, layer: Any, ctx: zmq.asyncio.Context, throttle: LogThrottle
    ) -> None:
        self.feed = feed
        self.layer = layer
        self.ctx = ctx
        self.throttle = throttle
        self.sock: zmq.asyncio.Socket | None = None
        self.sender: zmq.Socket | None = None
        self.subscribed: set[bytes] = set()  # what the XPUB's subscribers subscribe to
        self.task: asyncio.Task | None = None

    def start(self) -> None:
        self.task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task
            self.task = None

    def open(self) -> int:
        """Create the socket and attach its endpoints; how many are attached."""
        feed = self.feed
        pub = feed.publish_socket == PUBLISH_PUB
        sock = self.ctx.socket(zmq.XPUB if pub else zmq.PUSH)
        sock.setsockopt(zmq.LINGER, 0)
        if pub:
            sock.setsockopt(zmq.XPUB_NODROP, 1)  # at the high-water mark: refused, not lost
        self.sock = sock
        # The same socket, sync: a send that would block raises at once (zmq.Again).
        self.sender = zmq.Socket.shadow(sock.underlying)
        if feed.curve_publishers and not curve.gate(self.ctx).secure(
            sock, feed.slug, feed.curve_publishers
        ):
            return 0  # logged; never attached without CURVE
        attached = 0
        for endpoint in feed.publish_endpoints:
            verb = "bind" if feed.publish_bind else "connect"
            try:
                if not transport_available(parse_endpoint(endpoint).scheme):
                    raise ValueError(f"{endpoint} is not available in this libzmq")
                (sock.bind if feed.publish_bind else sock.connect)(endpoint)
                attached += 1
            except (ValueError, zmq.ZMQError) as exc:
                log.error(
                    "feed %s: cannot %s publish endpoint %s: %s", feed.slug, verb, endpoint, exc
                )
        return attached

    async def _run(self) -> None:
        attached = self.open()
        assert self.sock is not None
        tracking = asyncio.ensure_future(self._track()) if self.sock.type == zmq.XPUB else None
        channel = channel_of(self.feed.slug)
        log.info(
            "feed %s: publish socket (%s) on %d endpoint(s), taking publishes",
            self.feed.slug,
            self.feed.publish_socket,
            attached,
        )
        try:
            while True:
                try:
                    event = await self.layer.receive(channel)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # Redis restarting
                    if self.throttle.ready(("outbound", self.feed.slug)) is not None:
                        log.warning("feed %s: cannot take publishes: %s", self.feed.slug, exc)
                    await asyncio.sleep(1.0)
                    continue
                outcome = self.take(event)
                reply: PublishedEvent = {
                    "type": PUBLISHED,
                    "ref": event.get("ref", 0),
                    "code": outcome.code,
                    "detail": outcome.detail,
                }
                with contextlib.suppress(Exception):  # the sender is gone: it timed out
                    await self.layer.send(event["reply"], reply)
        finally:
            if tracking is not None:
                tracking.cancel()
            self.sock.close(linger=0)
            self.sock = None

    def take(self, event: PublishEvent) -> Outcome:
        """Send one publish, or say why not."""
        assert self.sock is not None and self.sender is not None
        frames = event.get("frames")
        if not isinstance(frames, list) or not frames:
            return Outcome("bad_request", "not a zmqfeed publish")
        if time.time() > event.get("deadline", 0):
            metrics.PUBLISH_EXPIRED.labels(self.feed.slug).inc()
            return Outcome("unavailable", "it waited too long for the subscriber process")
        if self.sock.type == zmq.XPUB and not any(
            frames[0].startswith(prefix) for prefix in self.subscribed
        ):
            return Outcome("unavailable", "no ZeroMQ subscriber takes this topic")
        try:
            self.sender.send_multipart(frames, flags=zmq.NOBLOCK)
        except zmq.Again:
            if self.sock.type == zmq.XPUB:
                why = "a ZeroMQ subscriber of it reads too slowly (its high-water mark)"
            else:
                why = "no ZeroMQ peer is connected to take it, or every peer is full"
            return Outcome("unavailable", why)
        except zmq.ZMQError as exc:
            return Outcome("unavailable", f"the publish socket failed: {exc}")
        return Outcome(None)

    async def _track(self) -> None:
        """What the XPUB's subscribers subscribe to: b'\\x01' + prefix, b'\\x00' + prefix
        (each prefix once for all of them; libzmq unsubscribes a peer that goes away)."""
        assert self.sock is not None
        while True:
            message = await self.sock.recv()
            if message[:1] == b"\x01":
                self.subscribed.add(message[1:])
            elif message[:1] == b"\x00":
                self.subscribed.discard(message[1:])
