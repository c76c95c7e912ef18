"""One WebSocket connection: the protocol of docs/protocol.md over Channels groups.

Frames from the subscriber arrive ready to send; the consumer only checks their sequence
numbers (to report gaps) and forwards them. It never touches the ORM in the hot path.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass, field

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from . import conf, embedded, metrics
from .core import protocol
from .core.access import Reader, can_read
from .core.catalog import Catalog, group_name
from .core.protocol import ProtocolError, Request
from .core.rates import LogThrottle, TokenBucket
from .daphne import backlog
from .fanout import get_fanout
from .history import get_history
from .origins import allowed_origins, origin_allowed
from .watch import get_watcher

log = logging.getLogger("zmqfeed.consumer")

CLOSE_NOT_FOUND = 4404
CLOSE_FORBIDDEN = 4403
# Daphne may only close with 1000 or 3000-4999: 4009 and 4008 stand for 1009 and 1008.
CLOSE_TOO_LARGE = 4009
CLOSE_FLOOD = 4008

_shed_log: LogThrottle | None = None


def _log_shed(count: int) -> None:
    global _shed_log
    if _shed_log is None:
        _shed_log = LogThrottle(conf.get()["LOG_INTERVAL"])
    total = _shed_log.ready("shed", count)
    if total is not None:
        log.warning(
            "dropped %d message(s) for clients reading slower than their topics arrive "
            "(unsent data over MAX_CLIENT_BACKLOG); they get a gap",
            total,
        )


@dataclass
class Subscription:
    feed: str
    topic: str
    group: str
    last: int = 0  # the last seq this client has been given
    # Frames that arrive while `subscribe` is answered wait here, so that `subscribed` and
    # the replay come first; None once the subscription is live.
    held: list[dict] | None = field(default_factory=list)


class FeedConsumer(AsyncWebsocketConsumer):
    """`/ws/zmqfeed/` (subscribe by message) and `/ws/zmqfeed/<feed>/<topic>/` (on connect).

    Topic frames do not come through a channel of this consumer's own: the process's
    Fanout is the group member and calls :meth:`deliver` directly.
    """

    # No channel per connection: it would cost a layer receive loop per client (with
    # Redis, contending for the process's one blocking read) and nothing is sent to it.
    channel_layer_alias = "zmqfeed.no-channel-per-connection"

    async def dispatch(self, message: dict) -> None:
        # Channels 4.2+ hops to a thread before every handler to close stale database
        # connections; this consumer uses the database only through database_sync_to_async,
        # which does that itself, so the per-frame hop is pure cost.
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def connect(self) -> None:
        self.subs: dict[tuple[str, str], Subscription] = {}
        self.path_topic: tuple[str, str] | None = None
        if not origin_allowed(self.scope.get("headers", []), allowed_origins()):
            log.info("refused WebSocket from origin not in ALLOWED_ORIGINS/ALLOWED_HOSTS")
            await self.close()
            return
        settings = conf.get()
        self.max_client_frame = settings["MAX_CLIENT_FRAME"]
        self.max_subs = settings["MAX_SUBSCRIPTIONS"]
        self.max_backlog = settings["MAX_CLIENT_BACKLOG"]
        self.max_frame = settings["MAX_FRAME_SIZE"]
        self.backlog = backlog.meter(self.base_send)
        self.bucket = TokenBucket(settings["CLIENT_RATE"], settings["CLIENT_BURST"])
        # Frames over the rate are answered with `rate_limited` until these run out too.
        self.strikes = TokenBucket(settings["CLIENT_RATE"], settings["CLIENT_BURST"])
        embedded.ensure_started()
        self.fanout = get_fanout()
        self.watcher = get_watcher()
        self.reader = await database_sync_to_async(Reader.load)(self.scope.get("user"))
        catalog = await self.watcher.get()
        kwargs = self.scope.get("url_route", {}).get("kwargs", {})
        if "feed" in kwargs:
            feed, topic = kwargs["feed"], kwargs["topic"]
            code = self._check(catalog, feed, topic)
            if code:
                # Accept first so that the close code reaches the client.
                await self.accept()
                await self.close(CLOSE_NOT_FOUND if code == "not_found" else CLOSE_FORBIDDEN)
                return
            await self.accept()
            self.path_topic = (feed, topic)
            await self._subscribe(Request("subscribe", feed=feed, topic=topic))
        else:
            await self.accept()
        self.watcher.listen(self._on_catalog)
        metrics.CONNECTIONS.inc()
        self.counted = True

    async def disconnect(self, code: int) -> None:
        if getattr(self, "counted", False):
            metrics.CONNECTIONS.dec()
            self.watcher.unlisten(self._on_catalog)
        for sub in list(getattr(self, "subs", {}).values()):
            await self.fanout.leave(sub.group, self)
        self.subs = {}

    # Client frames

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data is not None:
            size = len(text_data.encode("utf-8", "surrogatepass"))
        else:
            size = len(bytes_data or b"")
        if size > self.max_client_frame:
            await self._error(
                ProtocolError(
                    "too_large",
                    f"frame of {size} bytes is over the limit of {self.max_client_frame}",
                )
            )
            await self.close(CLOSE_TOO_LARGE)
            return
        if not self.bucket.take():
            if self.strikes.take():
                await self._error(ProtocolError("rate_limited", "too many frames; slow down"))
            else:
                log.warning("closing a flooding client (%s)", self.scope.get("client"))
                await self.close(CLOSE_FLOOD)
            return
        if text_data is None:
            await self._error(ProtocolError("bad_request", "frames must be JSON text"))
            return
        try:
            request = protocol.parse_request(text_data)
            if request.type == "ping":
                await self.send(protocol.reply("pong", request.id))
            elif request.type == "subscribe":
                await self._subscribe(request)
            elif request.type == "unsubscribe":
                await self._unsubscribe(request)
            else:
                raise ProtocolError(
                    "forbidden", "this topic does not accept publishing", request.id
                )
        except ProtocolError as exc:
            await self._error(exc)

    async def _error(self, exc: ProtocolError, **fields) -> None:
        metrics.CLIENT_ERRORS.labels(exc.code).inc()
        await self.send(protocol.error(exc.code, exc.detail, exc.id, **fields))

    def _check(self, catalog: Catalog, feed: str, topic: str) -> str | None:
        """None when this user may read the topic, else the error code."""
        feed_config = catalog.feed(feed)
        config = feed_config.topic(topic) if feed_config and feed_config.enabled else None
        if config is None:
            return "not_found"
        if not can_read(config, self.reader):
            return "forbidden"
        return None

    async def _subscribe(self, request: Request) -> None:
        feed, topic, key = request.feed, request.topic, (request.feed, request.topic)
        code = self._check(await self.watcher.get(), feed, topic)
        if code == "not_found":
            raise ProtocolError(code, f"no topic {topic!r} in feed {feed!r}", request.id)
        if code:
            raise ProtocolError(code, f"you may not read {feed}/{topic}", request.id)
        sub = self.subs.get(key)
        if sub is None:
            if len(self.subs) >= self.max_subs:
                raise ProtocolError(
                    "too_many_subscriptions", f"at most {self.max_subs} subscriptions", request.id
                )
            sub = self.subs[key] = Subscription(feed, topic, group_name(feed, topic))
        elif sub.held is None:
            sub.held = []
        try:
            await self.fanout.join(sub.group, self)
            # After joining: whatever the history does not have yet comes from the group.
            replay = await get_history().replay(f"{feed}/{topic}", request.since)
        except Exception:
            # E.g. Redis unreachable: drop the half-made subscription, not its held frames.
            if self.subs.pop(key, None) is not None:
                with contextlib.suppress(Exception):
                    await self.fanout.leave(sub.group, self)
            raise
        await self.send(
            protocol.reply("subscribed", request.id, feed=feed, topic=topic, seq=replay.latest)
        )
        since = request.since
        if since is not None and since < replay.latest:
            if replay.first > since + 1:
                await self._gap(sub, since + 1, replay.first - 1, "history")
            if replay.envelopes:
                for run in protocol.batch_runs(replay.envelopes, self.max_frame):
                    await self.send(protocol.batch_frame(run).decode())
        sub.last = replay.latest
        held, sub.held = sub.held or [], None
        for event in held:
            await self._forward(sub, event)

    async def _unsubscribe(self, request: Request) -> None:
        sub = self.subs.pop((request.feed, request.topic), None)
        if sub is not None:
            await self.fanout.leave(sub.group, self)
        await self.send(
            protocol.reply("unsubscribed", request.id, feed=request.feed, topic=request.topic)
        )

    async def _gap(self, sub: Subscription, first: int, last: int, reason: str) -> None:
        metrics.GAPS.labels(reason).inc()
        await self.send(protocol.gap(sub.feed, sub.topic, first, last, reason))

    # Frames from the subscriber, through the Fanout: the hot path.

    async def deliver(self, event: dict) -> None:
        sub = self.subs.get((event["feed"], event["topic"]))
        if sub is None:
            return
        if sub.held is not None:
            sub.held.append(event)
            return
        await self._forward(sub, event)

    async def _forward(self, sub: Subscription, event: dict) -> None:
        first, last = event["first"], event["last"]
        if last <= sub.last:
            return  # already replayed
        if self.backlog is not None and self.backlog() > self.max_backlog:
            # A slow reader: drop the frame. sub.last stays, so the next frame sent to this
            # connection opens with a gap for everything dropped meanwhile.
            count = last - max(first, sub.last + 1) + 1
            metrics.SHED.labels(sub.feed, sub.topic).inc(count)
            _log_shed(count)
            return
        text = event["text"]
        if first <= sub.last:
            text = _after(text, sub.last)  # overlaps the replay: rare, only at subscribe
        elif first > sub.last + 1:
            await self._gap(sub, sub.last + 1, first - 1, "slow_consumer")
        sub.last = last
        await self.base_send({"type": "websocket.send", "text": text})

    # Configuration changes

    def _on_catalog(self, catalog: Catalog) -> None:
        asyncio.ensure_future(self._revalidate(catalog))

    async def _revalidate(self, catalog: Catalog) -> None:
        for key, sub in list(self.subs.items()):
            code = self._check(catalog, sub.feed, sub.topic)
            if not code:
                continue
            if self.path_topic == key:
                await self.close(CLOSE_NOT_FOUND if code == "not_found" else CLOSE_FORBIDDEN)
                return
            del self.subs[key]
            await self.fanout.leave(sub.group, self)
            detail = "topic removed" if code == "not_found" else "access changed"
            await self._error(ProtocolError(code, detail), feed=sub.feed, topic=sub.topic)
            await self.send(protocol.reply("unsubscribed", feed=sub.feed, topic=sub.topic))


def _after(text: str, seq: int) -> str:
    """The part of a frame with messages after ``seq`` (the stdlib keeps big integers exact)."""
    obj = json.loads(text)
    messages = obj["messages"] if obj["type"] == "batch" else [obj]
    keep = [
        json.dumps(m, ensure_ascii=False, separators=(",", ":")).encode()
        for m in messages
        if m["seq"] > seq
    ]
    return protocol.batch_frame(keep).decode()
