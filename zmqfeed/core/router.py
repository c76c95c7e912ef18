"""One feed's routing as a state machine: ZeroMQ messages in, numbered frames per topic out.

Sans I/O: the subscriber reads the socket and hands each drained batch to
:meth:`Router.route`, then stores and sends what comes back; the benchmark's relay uses the
same router, so that it frames messages exactly as zmqfeed does. Per message: decode, look
the ZeroMQ topic up (cached), build the envelope's tail once, and append head + seq + tail
for every topic it belongs to. Per topic and batch: one frame, cut to ``max_frame``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import orjson

from .catalog import FeedConfig, TopicConfig, group_name
from .framing import Decoder, Dropped, decode_topic
from .matching import Matcher
from .protocol import Frame, frames, message_head, message_tail

ROUTE_CACHE_LIMIT = 50_000  # distinct ZeroMQ topics remembered before the cache starts over
SEQ_DIGITS = 20  # room for any seq in an envelope


class Route:
    """One configured topic as the hot path sees it; keeps its seq across reconfiguration."""

    __slots__ = ("feed", "group", "head", "key", "seq", "topic")

    def __init__(self, feed: str, topic: TopicConfig, seq: int) -> None:
        self.feed, self.topic = feed, topic.slug
        self.key = topic_key(feed, topic.slug)
        self.group = group_name(feed, topic.slug)
        self.head = message_head(feed, topic.slug)
        self.seq = seq


def topic_key(feed: str, topic: str) -> str:
    """A topic's key in the history."""
    return f"{feed}/{topic}"


@dataclass
class TopicBatch:
    """What one batch routed to one topic: envelopes ``first`` … and their frames."""

    route: Route
    first: int
    envelopes: list[bytes]
    frames: list[Frame]


@dataclass
class Routed:
    """The outcome of one batch: per topic, and what was dropped by reason."""

    topics: list[TopicBatch] = field(default_factory=list)
    dropped: dict[str, int] = field(default_factory=dict)
    example: str = ""  # one dropped message's reason, for the log

    def history(self) -> dict[str, tuple[int, list[bytes]]]:
        """Topic key → (seq of the first envelope, envelopes): what the history appends."""
        return {t.route.key: (t.first, t.envelopes) for t in self.topics}


def subscriptions(feed: FeedConfig) -> set[bytes]:
    """The SUB socket filters: the topic prefixes (everything for raw framing)."""
    if feed.framing == "raw" or any(t.prefix == "" for t in feed.topics):
        return {b""} if feed.topics else set()
    return {t.prefix_bytes for t in feed.topics}


class Router:
    def __init__(self, feed: FeedConfig, max_frame: int) -> None:
        self.feed = feed
        self.max_frame = max_frame
        self.routes: dict[str, Route] = {}
        self.decoder = Decoder(feed.framing, feed.payload, feed.max_message_size)
        self._matcher = Matcher(())
        self._cache: dict[bytes, tuple[bytes, tuple[Route, ...]]] = {}
        self._max_tail = max_frame

    # Configuration

    def unnumbered(self, feed: FeedConfig) -> list[str]:
        """Keys of the feed's topics this router has no seq for: give them to configure()."""
        return [
            key for t in feed.topics if (key := topic_key(feed.slug, t.slug)) not in self.routes
        ]

    def configure(self, feed: FeedConfig, seqs: Mapping[str, int]) -> None:
        """Follow the feed's topics; a new topic's numbering goes on from ``seqs[key]``."""
        routes = {}
        for topic in feed.topics:
            key = topic_key(feed.slug, topic.slug)
            old = self.routes.get(key)
            routes[key] = Route(feed.slug, topic, old.seq if old else seqs.get(key, 0))
        self.feed = feed
        self.decoder = Decoder(feed.framing, feed.payload, feed.max_message_size)
        self.routes = routes
        # A message's tail longer than this makes an envelope no frame can carry.
        longest_head = max((len(r.head) for r in routes.values()), default=0)
        self._max_tail = self.max_frame - longest_head - SEQ_DIGITS
        self._matcher = Matcher(
            (t.prefix_bytes, routes[topic_key(feed.slug, t.slug)]) for t in feed.topics
        )
        self._cache = {}

    @property
    def filters(self) -> set[bytes]:
        return subscriptions(self.feed)

    @property
    def seqs(self) -> dict[str, int]:
        return {key: route.seq for key, route in self.routes.items()}

    # The hot path

    def _lookup(self, ztopic: bytes) -> tuple[bytes, tuple[Route, ...]]:
        found = self._cache.get(ztopic)
        if found is None:
            found = (orjson.dumps(decode_topic(ztopic)), self._matcher.match(ztopic))
            if len(self._cache) >= ROUTE_CACHE_LIMIT:
                self._cache.clear()
            self._cache[ztopic] = found
        return found

    def route(self, batch: Sequence[Sequence[bytes]], ts: float) -> Routed:
        """Number and frame one batch of ZeroMQ messages (each a list of frames)."""
        ts_json = b"%.3f" % ts
        decode, lookup, max_tail = self.decoder, self._lookup, self._max_tail
        out: dict[Route, list[bytes]] = {}
        routed = Routed()
        dropped = routed.dropped
        for message in batch:
            try:
                ztopic, fragment = decode(message)
            except Dropped as exc:
                dropped[exc.kind] = dropped.get(exc.kind, 0) + 1
                routed.example = str(exc)
                continue
            ztopic_json, routes = lookup(ztopic)
            if not routes:
                continue
            tail = message_tail(ztopic_json, ts_json, fragment)
            if len(tail) > max_tail:
                dropped["too_large"] = dropped.get("too_large", 0) + 1
                routed.example = f"its envelope is over MAX_FRAME_SIZE ({self.max_frame} bytes)"
                continue
            for route in routes:
                route.seq += 1
                envelopes = out.get(route)
                if envelopes is None:
                    envelopes = out[route] = []
                envelopes.append(route.head + b"%d" % route.seq + tail)
        for route, envelopes in out.items():
            first = route.seq - len(envelopes) + 1
            routed.topics.append(
                TopicBatch(
                    route,
                    first,
                    envelopes,
                    frames(route.feed, route.topic, first, envelopes, self.max_frame),
                )
            )
        return routed
