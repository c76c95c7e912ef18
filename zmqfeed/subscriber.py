"""The subscriber: ZeroMQ SUB sockets in, one frame per topic and batch out to Channels groups.

A thin I/O shell: framing, matching and encoding are the pure modules'. Each feed has its
own task and socket; each time it is readable the socket is drained without waiting, so
the batch grows with the load and is flushed the moment the socket is empty.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable

import orjson
import zmq
import zmq.asyncio

from . import conf, metrics
from .core.catalog import Catalog, FeedConfig, TopicConfig, group_name
from .core.framing import Decoder, Dropped, decode_topic
from .core.matching import Matcher
from .core.protocol import batch_frame, batch_runs, message_head, message_tail
from .core.rates import LogThrottle
from .endpoints import MULTICAST, MULTICAST_REMEDY, parse_endpoint, transport_available
from .history import History
from .preflight import start_problem
from .watch import CatalogWatcher

log = logging.getLogger("zmqfeed.subscriber")

ROUTE_CACHE_LIMIT = 50_000
SEQ_DIGITS = 20  # room for any seq in an envelope
WAKE_INTERVAL_MS = 100
MESSAGE_TYPE = "zmqfeed.frame"


class Route:
    """One configured topic as the hot path sees it; keeps its seq across reconfiguration."""

    __slots__ = ("feed", "topic", "key", "group", "head", "seq", "routed")

    def __init__(self, feed: str, topic: TopicConfig, seq: int) -> None:
        self.feed, self.topic = feed, topic.slug
        self.key = f"{feed}/{topic.slug}"
        self.group = group_name(feed, topic.slug)
        self.head = message_head(feed, topic.slug)
        self.seq = seq
        self.routed = metrics.ROUTED.labels(feed, topic.slug)


def subscriptions(feed: FeedConfig) -> set[bytes]:
    """The SUB socket filters: the topic prefixes (everything for raw framing)."""
    if feed.framing == "raw" or any(t.prefix == "" for t in feed.topics):
        return {b""} if feed.topics else set()
    return {t.prefix_bytes for t in feed.topics}


class FeedReader:
    def __init__(
        self,
        feed: FeedConfig,
        layer,
        history: History,
        ctx: zmq.asyncio.Context,
        throttle: LogThrottle,
        known_seqs: dict[str, int] | None = None,
    ) -> None:
        self.feed = feed
        self.known_seqs = known_seqs if known_seqs is not None else {}
        self.layer = layer
        self.history = history
        self.ctx = ctx
        self.throttle = throttle
        self.max_batch = conf.get()["MAX_BATCH"]
        self.max_frame = conf.get()["MAX_FRAME_SIZE"]
        self.max_tail = self.max_frame
        self.routes: dict[str, Route] = {}
        self.matcher = Matcher(())
        self.cache: dict[bytes, tuple[bytes, tuple[Route, ...]]] = {}
        self.decoder = Decoder(feed.framing, feed.payload, feed.max_message_size)
        self.sock: zmq.asyncio.Socket | None = None
        self.filters: set[bytes] = set()
        self.task: asyncio.Task | None = None
        self.received = metrics.RECEIVED.labels(feed.slug)
        self.batches = metrics.BATCHES.labels(feed.slug)

    # Configuration

    async def configure(self, feed: FeedConfig) -> None:
        """Apply topic changes in place (the socket stays; filters and routes follow).

        If the history cannot be read (Redis away), nothing changes and this raises.
        """
        routes = {}
        for topic in feed.topics:
            key = f"{feed.slug}/{topic.slug}"
            old = self.routes.get(key)
            if old is not None:
                seq = old.seq
            else:  # a Redis that came back empty must not restart the numbering
                seq = max(await self.history.latest(key), self.known_seqs.get(key, 0))
            routes[key] = Route(feed.slug, topic, seq)
        self.feed = feed
        self.decoder = Decoder(feed.framing, feed.payload, feed.max_message_size)
        self.routes = routes
        # A message's tail longer than this makes an envelope no frame can carry.
        self.max_tail = self.max_frame - max((len(r.head) for r in routes.values()), default=0)
        self.max_tail -= SEQ_DIGITS
        self.matcher = Matcher(
            (t.prefix_bytes, routes[f"{feed.slug}/{t.slug}"]) for t in feed.topics
        )
        self.cache = {}
        if self.sock is not None:
            self._apply_filters()

    def _apply_filters(self) -> None:
        wanted = subscriptions(self.feed)
        for prefix in self.filters - wanted:
            self.sock.unsubscribe(prefix)
        for prefix in wanted - self.filters:
            self.sock.subscribe(prefix)
        self.filters = wanted

    def open(self) -> int:
        """Create the socket (on the running loop) and attach every usable endpoint."""
        settings = conf.get()
        sock = self.ctx.socket(zmq.SUB)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RCVHWM, settings["RCVHWM"])
        # PGM sizes its receive window from the receiver's own rate: match the publisher's.
        sock.setsockopt(zmq.RATE, settings["MULTICAST_RATE"])
        self.sock = sock
        attached = 0
        for endpoint in self.feed.endpoints:
            try:
                scheme = parse_endpoint(endpoint).scheme
            except ValueError as exc:
                log.error("feed %s: %s", self.feed.slug, exc)
                continue
            if not transport_available(scheme):
                log.error(
                    "feed %s: %s is not available: %s", self.feed.slug, endpoint, MULTICAST_REMEDY
                )
                continue
            problem = start_problem(endpoint) if scheme in MULTICAST else None
            if problem:
                log.error("feed %s: skipping %s: %s", self.feed.slug, endpoint, problem)
                continue
            try:
                (sock.bind if self.feed.bind else sock.connect)(endpoint)
                attached += 1
            except zmq.ZMQError as exc:
                verb = "bind" if self.feed.bind else "connect"
                log.error("feed %s: cannot %s %s: %s", self.feed.slug, verb, endpoint, exc)
        self._apply_filters()
        return attached

    # The hot path

    def _lookup(self, ztopic: bytes) -> tuple[bytes, tuple[Route, ...]]:
        found = self.cache.get(ztopic)
        if found is None:
            found = (orjson.dumps(decode_topic(ztopic)), self.matcher.match(ztopic))
            if len(self.cache) >= ROUTE_CACHE_LIMIT:
                self.cache.clear()
            self.cache[ztopic] = found
        return found

    async def run(self) -> None:
        attached = self.open()
        metrics.FEEDS.inc()
        log.info(
            "feed %s: %s %d of %d endpoint(s), %s/%s",
            self.feed.slug,
            "bound" if self.feed.bind else "connected",
            attached,
            len(self.feed.endpoints),
            self.feed.framing,
            self.feed.payload,
        )
        sock = self.sock
        drain = zmq.Socket.shadow(sock.underlying)
        # Frame.more is cheaper than recv_multipart's RCVMORE getsockopt per frame.
        recv, noblock, max_batch = drain.recv, int(zmq.NOBLOCK), self.max_batch
        try:
            while True:
                # A bounded wait, then a drain: a wake-up that libzmq's edge-triggered FD
                # misses costs at most WAKE_INTERVAL, not a queue that overflows RCVHWM.
                if not await sock.poll(WAKE_INTERVAL_MS):
                    continue
                batch = []
                append = batch.append
                try:
                    while len(batch) < max_batch:
                        frame = recv(noblock, False)
                        frames = [frame.bytes]
                        while frame.more:
                            frame = recv(noblock, False)
                            frames.append(frame.bytes)
                        append(frames)
                except zmq.Again:
                    if not batch:
                        continue
                await self.deliver(batch)
                # A socket that is never empty and a layer that never suspends (in memory)
                # would keep this loop from ever yielding: let the clients' writes run.
                await asyncio.sleep(0)
        finally:
            metrics.FEEDS.dec()
            sock.close(linger=0)
            self.sock = None

    async def deliver(self, batch: list[list[bytes]]) -> None:
        ts = b"%.3f" % time.time()
        decode, lookup, max_tail = self.decoder, self._lookup, self.max_tail
        out: dict[Route, list[bytes]] = {}
        dropped: dict[str, int] = {}
        last_error = ""
        for frames in batch:
            try:
                ztopic, fragment = decode(frames)
            except Dropped as exc:
                dropped[exc.kind] = dropped.get(exc.kind, 0) + 1
                last_error = str(exc)
                continue
            ztopic_json, routes = lookup(ztopic)
            if not routes:
                continue
            tail = message_tail(ztopic_json, ts, fragment)
            if len(tail) > max_tail:
                dropped["too_large"] = dropped.get("too_large", 0) + 1
                last_error = f"its envelope is over MAX_FRAME_SIZE ({self.max_frame} bytes)"
                continue
            for route in routes:
                route.seq += 1
                envelopes = out.get(route)
                if envelopes is None:
                    envelopes = out[route] = []
                envelopes.append(route.head + b"%d" % route.seq + tail)
        self.received.inc(len(batch))
        if dropped:
            self._count_drops(dropped, last_error)
        if out:
            await self._send(out)

    async def _send(self, out: dict[Route, list[bytes]]) -> None:
        # History first, then the groups: a client that subscribes meanwhile either finds a
        # message in the history or receives it from the group, never neither.
        await self.history.append({r.key: (r.seq - len(envs) + 1, envs) for r, envs in out.items()})
        sends = []
        frames = 0
        for route, envelopes in out.items():
            route.routed.inc(len(envelopes))
            events = self._events(route, envelopes)
            frames += len(events)
            if len(events) == 1:
                sends.append(self.layer.group_send(route.group, events[0]))
            else:
                sends.append(self._send_in_order(route.group, events))
        self.batches.inc(frames)
        if len(sends) == 1:
            await sends[0]
        else:
            await asyncio.gather(*sends)

    def _events(self, route: Route, envelopes: list[bytes]) -> list[dict]:
        """The group messages of one topic's envelopes: one, unless over MAX_FRAME_SIZE."""
        events = []
        first = route.seq - len(envelopes) + 1
        for run in batch_runs(envelopes, self.max_frame):
            frame = batch_frame(run)
            events.append(
                {
                    "type": MESSAGE_TYPE,
                    "group": route.group,
                    "text": frame.decode(),
                    "size": len(frame),
                    "feed": route.feed,
                    "topic": route.topic,
                    "first": first,
                    "last": first + len(run) - 1,
                }
            )
            first += len(run)
        return events

    async def _send_in_order(self, group: str, events: list[dict]) -> None:
        for event in events:
            await self.layer.group_send(group, event)

    def _count_drops(self, dropped: dict[str, int], example: str) -> None:
        for kind, count in dropped.items():
            metrics.DROPPED.labels(self.feed.slug, kind).inc(count)
            total = self.throttle.ready((self.feed.slug, kind), count)
            if total is not None:
                log.warning(
                    "feed %s: dropped %d message(s) (%s), e.g. %s",
                    self.feed.slug,
                    total,
                    kind,
                    example,
                )


class Subscriber:
    """Runs one FeedReader per enabled feed and follows the catalog as it changes."""

    def __init__(
        self, layer, history: History, watcher: CatalogWatcher, only: Iterable[str] | None = None
    ) -> None:
        self.layer = layer
        self.history = history
        self.watcher = watcher
        self.only = set(only) if only else None
        self.ctx = zmq.asyncio.Context()
        self.readers: dict[str, FeedReader] = {}
        self.known_seqs: dict[str, int] = {}  # of readers gone, so that new ones go on from there
        self.throttle = LogThrottle(conf.get()["LOG_INTERVAL"])
        self._changed = asyncio.Event()

    def wanted(self, catalog: Catalog) -> dict[str, FeedConfig]:
        return {
            f.slug: f
            for f in catalog.feeds
            if f.enabled and f.topics and (self.only is None or f.slug in self.only)
        }

    async def apply(self, catalog: Catalog) -> None:
        wanted = self.wanted(catalog)
        for slug in list(self.readers):
            reader = self.readers[slug]
            feed = wanted.get(slug)
            if feed is None or feed.socket_settings() != reader.feed.socket_settings():
                await self._stop(slug, "removed or disabled" if feed is None else "reconfigured")
        for slug, feed in wanted.items():
            try:
                await self._start_or_update(slug, feed)
            except Exception as exc:  # e.g. Redis away: try again at the next reload
                if self.throttle.ready(("apply", slug)) is not None:
                    log.warning("feed %s: cannot start or update it yet: %s", slug, exc)

    async def _start_or_update(self, slug: str, feed: FeedConfig) -> None:
        reader = self.readers.get(slug)
        if reader is None:
            reader = FeedReader(
                feed, self.layer, self.history, self.ctx, self.throttle, self.known_seqs
            )
            await reader.configure(feed)
            reader.task = asyncio.ensure_future(self._guard(reader))
            self.readers[slug] = reader
        elif feed != reader.feed:
            await reader.configure(feed)
            log.info("feed %s: topics updated", slug)

    def _remember(self, reader: FeedReader) -> None:
        self.known_seqs.update({key: route.seq for key, route in reader.routes.items()})

    async def _guard(self, reader: FeedReader) -> None:
        try:
            await reader.run()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception(
                "feed %s: reader failed; it restarts at the next reload", reader.feed.slug
            )
            self._remember(reader)
            self.readers.pop(reader.feed.slug, None)

    async def _stop(self, slug: str, why: str) -> None:
        reader = self.readers.pop(slug)
        if reader.task is not None:
            reader.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader.task
        self._remember(reader)
        log.info("feed %s: stopped (%s)", slug, why)

    def _on_change(self, catalog: Catalog) -> None:
        self._changed.set()

    async def run(self) -> None:
        catalog = await self.watcher.get()
        self.watcher.listen(self._on_change)
        try:
            await self.apply(catalog)
            if self.only:
                missing = self.only - {f.slug for f in catalog.feeds}
                if missing:
                    log.warning("no feed named %s (yet)", ", ".join(sorted(missing)))
            interval = self.watcher.interval
            while True:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), interval)
                self._changed.clear()
                # A reader that failed comes back here, as does a changed catalog.
                await self.apply(self.watcher.catalog)
        finally:
            self.watcher.unlisten(self._on_change)
            for slug in list(self.readers):
                await self._stop(slug, "shutting down")
            self.ctx.term()
