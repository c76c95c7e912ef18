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
from .continuity import Kept, Numbering, new_epoch
from .framing import Decoder, Dropped, decode_topic
from .matching import Matcher
from .protocol import Frame, frames, message_head, message_tail
from .vocabulary import FRAMING_PREFIX, FRAMING_RAW, MATCH_EXACT

ROUTE_CACHE_LIMIT = 50_000  # distinct ZeroMQ topics remembered before the cache starts over
SEQ_DIGITS = 20  # room for any seq in an envelope
UNROUTED = "unrouted"  # the drop reason of a message no topic takes (not a malformed one)


class Route:
    """One configured topic as the hot path sees it; keeps its numbering across
    reconfiguration."""

    __slots__ = ("epoch", "feed", "group", "head", "history", "key", "seq", "topic")

    def __init__(self, feed: str, topic: TopicConfig, numbering: Numbering) -> None:
        self.feed, self.topic = feed, topic.slug
        self.key = topic_key(feed, topic.slug)
        self.group = group_name(feed, topic.slug)
        self.head = message_head(feed, topic.slug)
        self.epoch, self.seq = numbering
        self.history = topic.history

    @property
    def numbering(self) -> Numbering:
        return Numbering(self.epoch, self.seq)


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
    """The outcome of one batch: per topic, what was dropped by reason (with an example of
    each reason, for the log), and how many messages the publishers' own numbers skipped."""

    topics: list[TopicBatch] = field(default_factory=list)
    dropped: dict[str, int] = field(default_factory=dict)
    examples: dict[str, str] = field(default_factory=dict)
    upstream_lost: int = 0
    ts: float = 0.0  # when the batch was received

    def history(self) -> dict[str, Kept]:
        """Topic key → what the history keeps of this batch."""
        return {
            t.route.key: Kept(t.route.epoch, t.first, t.envelopes, self.ts, t.route.history)
            for t in self.topics
        }


def match_entries(feed: FeedConfig) -> list[tuple[bytes, TopicConfig, bool]]:
    """(bytes, topic, exact) per topic: what the topic frame's raw bytes are compared with.

    With prefix framing the topic frame is the whole frame, so an exact topic is the prefix
    followed by the separator, as a ZeroMQ SUB filter would have it ("1 " takes topic 1).
    """
    separator = feed.separator.encode()
    entries = []
    for topic in feed.topics:
        exact = topic.match == MATCH_EXACT
        if feed.framing == FRAMING_PREFIX and exact:
            entries.append((topic.prefix_bytes + separator, topic, False))
        else:
            entries.append((topic.prefix_bytes, topic, exact))
    return entries


def subscriptions(feed: FeedConfig) -> set[bytes]:
    """The SUB socket filters, from the same rule as the matching (everything for raw)."""
    if not feed.topics:
        return set()
    if feed.framing == FRAMING_RAW:
        return {b""}
    filters = {prefix for prefix, _, _ in match_entries(feed)}
    return {b""} if b"" in filters else filters


class Router:
    def __init__(self, feed: FeedConfig, max_frame: int) -> None:
        self.feed = feed
        self.max_frame = max_frame
        self.routes: dict[str, Route] = {}
        self.decoder = decoder(feed)
        self._matcher = Matcher(())
        self._cache: dict[bytes, tuple[bytes, tuple[Route, ...]]] = {}
        self._whole_frame = 0  # prefix framing: how many bytes of the frame decide a match
        self._frame_cache: dict[bytes, tuple[Route, ...]] = {}
        self._upstream: dict[bytes, int] = {}  # the last publisher seq seen, per ZeroMQ topic
        self._max_tail = max_frame

    # Configuration

    def unnumbered(self, feed: FeedConfig) -> list[str]:
        """Keys of the feed's topics this router has no numbering for: give them to
        configure()."""
        return [
            key for t in feed.topics if (key := topic_key(feed.slug, t.slug)) not in self.routes
        ]

    def configure(
        self,
        feed: FeedConfig,
        seqs: Mapping[str, Numbering],
        signing_key: bytes = b"",
        scheme: str = "",
    ) -> None:
        """Follow the feed's topics; a new topic's numbering goes on from ``seqs[key]``, or
        starts at 0 in a new epoch.

        ``signing_key`` and ``scheme``: a Jupyter kernel's signing key and signature scheme, which
        the shell reads from the feed's connection file (empty: messages are not verified).
        """
        routes = {}
        for topic in feed.topics:
            key = topic_key(feed.slug, topic.slug)
            old = self.routes.get(key)
            numbering = old.numbering if old else seqs.get(key) or Numbering(new_epoch(), 0)
            routes[key] = Route(feed.slug, topic, numbering)
        self.feed = feed
        self.decoder = decoder(feed, signing_key, scheme)
        self.routes = routes
        # A message's tail longer than this makes an envelope no frame can carry.
        longest_head = max((len(r.head) for r in routes.values()), default=0)
        self._max_tail = self.max_frame - longest_head - SEQ_DIGITS
        self._matcher = Matcher(
            (prefix, routes[topic_key(feed.slug, t.slug)], exact)
            for prefix, t, exact in match_entries(feed)
        )
        self._whole_frame = self._matcher.longest if feed.framing == FRAMING_PREFIX else 0
        self._cache = {}
        self._frame_cache = {}
        self._upstream = {}

    @property
    def filters(self) -> set[bytes]:
        return subscriptions(self.feed)

    @property
    def seqs(self) -> dict[str, Numbering]:
        return {key: route.numbering for key, route in self.routes.items()}

    # The hot path

    def _lookup(self, ztopic: bytes) -> tuple[bytes, tuple[Route, ...]]:
        found = self._cache.get(ztopic)
        if found is None:
            found = (orjson.dumps(decode_topic(ztopic)), self._matcher.match(ztopic))
            if len(self._cache) >= ROUTE_CACHE_LIMIT:
                self._cache.clear()
            self._cache[ztopic] = found
        return found

    def _routes_of_frame(self, frame: bytes) -> tuple[Route, ...]:
        """Prefix framing: the routes that the frame's first bytes decide."""
        head = frame[: self._whole_frame]
        found = self._frame_cache.get(head)
        if found is None:
            found = self._matcher.match(head)
            if len(self._frame_cache) >= ROUTE_CACHE_LIMIT:
                self._frame_cache.clear()
            self._frame_cache[head] = found
        return found

    def _upstream_gap(self, ztopic: bytes, seq: int) -> int:
        """Messages the publisher numbered but this feed never received, before ``seq``."""
        last = self._upstream.get(ztopic)
        if last is None and len(self._upstream) >= ROUTE_CACHE_LIMIT:
            self._upstream.clear()
        self._upstream[ztopic] = seq
        if last is None or seq <= last:  # the first, or the publisher started again
            return 0
        return seq - last - 1

    def route(self, batch: Sequence[Sequence[bytes]], ts: float) -> Routed:
        """Number and frame one batch of ZeroMQ messages (each a list of frames)."""
        ts_json = b"%.3f" % ts
        decode, lookup, max_tail = self.decoder, self._lookup, self._max_tail
        whole_frame = self.feed.framing == FRAMING_PREFIX
        out: dict[Route, list[bytes]] = {}
        routed = Routed(ts=ts)
        dropped, examples = routed.dropped, routed.examples
        for message in batch:
            try:
                ztopic, fragment, upstream = decode(message)
            except Dropped as exc:
                dropped[exc.kind] = dropped.get(exc.kind, 0) + 1
                examples[exc.kind] = str(exc)
                continue
            if upstream is not None:
                routed.upstream_lost += self._upstream_gap(ztopic, upstream)
            if whole_frame:
                ztopic_json = lookup(ztopic)[0]
                routes = self._routes_of_frame(bytes(message[0]))
            else:
                ztopic_json, routes = lookup(ztopic)
            if not routes:
                dropped[UNROUTED] = dropped.get(UNROUTED, 0) + 1
                examples[UNROUTED] = f"no topic takes ZeroMQ topic {decode_topic(ztopic)!r}"
                continue
            tail = message_tail(ztopic_json, ts_json, fragment)
            if len(tail) > max_tail:
                dropped["too_large"] = dropped.get("too_large", 0) + 1
                examples["too_large"] = (
                    f"its envelope is over MAX_FRAME_SIZE ({self.max_frame} bytes)"
                )
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
                    frames(route.feed, route.topic, first, envelopes, self.max_frame, route.epoch),
                )
            )
        return routed


def decoder(feed: FeedConfig, key: bytes = b"", scheme: str = "") -> Decoder:
    """The feed's decoder, as its framing, payload, frames, separator and compression say."""
    return Decoder(
        feed.framing,
        feed.payload,
        feed.max_message_size,
        frames=feed.frames,
        separator=feed.separator.encode(),
        compression=feed.compression,
        key=key,
        signature_scheme=scheme or "hmac-sha256",
    )
