"""One client connection as a state machine: requests and frames in, actions out (sans I/O).

In the manner of the websockets library's ``Protocol``: the consumer hands the session what
happened (a client frame, a frame of a topic, a new catalog, the end of a join) and then
carries out what :meth:`ClientSession.actions_to_do` says (send this text, join that group,
fetch a replay, close). Every rule of docs/protocol.md that concerns one connection lives
here: limits, access, `subscribed` before the replay and the replay before live frames,
each seq given once or reported in a `gap`, and access that follows catalog changes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from . import protocol
from .access import Reader, can_publish, can_read
from .catalog import Catalog, FeedConfig, TopicConfig, group_name
from .continuity import Replay, recovered, start
from .encoding import Unencodable, encoder
from .protocol import Frame, ProtocolError, Request
from .rates import TokenBucket
from .vocabulary import MATCH_PREFIX

CLOSE_NOT_FOUND = 4404
CLOSE_FORBIDDEN = 4403
# Daphne may only close with 1000 or 3000-4999: 4009 and 4008 stand for 1009 and 1008.
CLOSE_TOO_LARGE = 4009
CLOSE_FLOOD = 4008
CLOSE_UNAUTHORIZED = 4401  # a handshake's token is bad, expired or revoked
CLOSE_IDLE = 4408  # sent nothing and held no subscription for IDLE_TIMEOUT (stands for 408)
# The ``queued`` a shell gives :meth:`ClientSession.deliver` for a client its process's
# backlog supervisor sheds (the process holds over MAX_BACKLOG_TOTAL unsent).
OVER_TOTAL = 1 << 62
SHED_CLIENT = "client_backlog"  # why a frame was shed: the client's own MAX_CLIENT_BACKLOG
SHED_PROCESS = "process_backlog"  # or the process's MAX_BACKLOG_TOTAL


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-connection limits: ZMQFEED's MAX_CLIENT_FRAME, MAX_SUBSCRIPTIONS, MAX_CLIENT_BACKLOG,
    MAX_FRAME_SIZE, CLIENT_RATE, CLIENT_BURST and IDLE_TIMEOUT, whose defaults are these.
    Immutable, so one instance serves every connection of a process (``conf.limits()``)."""

    max_client_frame: int = 64 * 1024
    max_subscriptions: int = 100
    max_backlog: int = 4 * 1024 * 1024
    max_frame: int = 1024 * 1024
    rate: float = 50.0
    burst: int = 200
    idle_timeout: float = 60.0  # seconds; 0: never closed for idling
    publish_rate: float = 10.0  # publishes per second, sustained
    publish_burst: int = 20

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> Limits:
        return cls(
            max_client_frame=settings["MAX_CLIENT_FRAME"],
            max_subscriptions=settings["MAX_SUBSCRIPTIONS"],
            max_backlog=settings["MAX_CLIENT_BACKLOG"],
            max_frame=settings["MAX_FRAME_SIZE"],
            rate=settings["CLIENT_RATE"],
            burst=settings["CLIENT_BURST"],
            idle_timeout=settings["IDLE_TIMEOUT"],
            publish_rate=settings["PUBLISH_RATE"],
            publish_burst=settings["PUBLISH_BURST"],
        )


# Actions: what the shell is to do, in order.


class At(NamedTuple):
    """Where a topic stands for the client once a text is sent: what SSE ids are made of."""

    feed: str
    topic: str
    epoch: str
    seq: int


@dataclass(frozen=True)
class Send:
    """Send ``text`` to the client; ``error`` / ``gap`` name what it reports, for counting;
    ``at``, for a text with messages (or a `subscribed`), the topic's position after it."""

    text: str
    error: str | None = None
    gap: str | None = None
    at: At | None = None


@dataclass(frozen=True)
class Join:
    """Join the topic's group, then fetch its replay (the history's ``replay`` with these
    arguments) and call ``joined``."""

    feed: str
    topic: str
    group: str
    since: int | None
    epoch: str | None = None  # of `since`
    last: int = 0  # the topic's last values, for a subscribe without `since`
    max_age: float = 0  # the topic's history age limit, in seconds (0: none)


@dataclass(frozen=True)
class Authenticate:
    """Check ``token`` and call ``authenticated`` or ``auth_failed`` with the request's id."""

    token: str
    id: Any = None


@dataclass(frozen=True)
class Leave:
    group: str


@dataclass(frozen=True)
class Close:
    code: int


@dataclass(frozen=True)
class Shed:
    """Messages not sent to a client reading too slowly (they will be reported in a gap)."""

    feed: str
    topic: str
    count: int
    reason: str = SHED_CLIENT


@dataclass(frozen=True)
class Publish:
    """Hand ``frames`` to the feed's outbound socket, then call ``published`` with this and
    the outcome; or, ``refused``, only count and log it. ``size``: the bytes sent."""

    feed: str
    topic: str
    zmq_topic: bytes
    frames: tuple[bytes, ...]
    id: Any = None
    refused: str | None = None  # the error code the session answered with: nothing to send

    @property
    def size(self) -> int:
        return sum(map(len, self.frames))


Action = Send | Join | Authenticate | Leave | Close | Shed | Publish


@dataclass(slots=True)
class Subscription:
    feed: str
    topic: str
    group: str
    last: int = 0  # the last seq this client has been given
    epoch: str = ""  # the numbering `last` belongs to
    shed: bool = False  # frames were shed for this client since the last one sent
    # While a `subscribe` is answered (join, replay), frames of the topic wait here, so
    # that `subscribed` and the replay come first; None once the subscription is live.
    held: list[Frame] | None = field(default_factory=list)
    request: Request | None = None  # the subscribe being answered


class ClientSession:
    """The protocol state of one WebSocket connection (slots: thousands are idle at once)."""

    __slots__ = (
        "_bucket",
        "_clock",
        "_max_backlog",
        "_publishes",
        "_strikes",
        "active",
        "closed",
        "limits",
        "outbox",
        "path_topic",
        "reader",
        "subs",
    )

    def __init__(
        self,
        reader: Reader,
        limits: Limits,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.reader = reader
        self.limits = limits
        self.subs: dict[tuple[str, str], Subscription] = {}
        self.path_topic: tuple[str, str] | None = None
        self.closed = False
        self._bucket = TokenBucket(limits.rate, limits.burst, clock)
        # Frames over the rate are answered with `rate_limited` until these run out too.
        self._strikes = TokenBucket(limits.rate, limits.burst, clock)
        self._publishes = TokenBucket(limits.publish_rate, limits.publish_burst, clock)
        # What the shell is to do, in order; an empty outbox is the hot path's one test. A
        # list: it is short and mostly empty, and an empty deque costs a 64-slot block.
        self.outbox: list[Action] = []
        self._max_backlog = limits.max_backlog
        self._clock = clock
        self.active = clock()  # last client frame, open, or loss of a subscription

    def actions_to_do(self) -> list[Action]:
        """Everything there is to do, in order."""
        actions, self.outbox = self.outbox, []
        return actions

    def next_action(self) -> Action | None:
        """The first thing to do, or None. A shell that awaits each action takes them so:
        what is still queued keeps later frames behind it (see :meth:`deliver`)."""
        return self.outbox.pop(0) if self.outbox else None

    # Events from the connection

    def open(self, catalog: Catalog, path_topic: tuple[str, str] | None = None) -> None:
        """The connection is accepted; on a per-topic URL, subscribe or close."""
        if path_topic is None:
            return
        code = self.check(catalog, *path_topic)
        if code:
            self._close(CLOSE_NOT_FOUND if code == "not_found" else CLOSE_FORBIDDEN)
            return
        self.path_topic = path_topic
        self._subscribe(Request("subscribe", feed=path_topic[0], topic=path_topic[1]), catalog)

    def subscribe(
        self, catalog: Catalog, feed: str, topic: str, since: int | None, epoch: str | None
    ) -> str | None:
        """Subscribe as a client's `subscribe` would, for a shell that takes its topics from
        elsewhere (an SSE stream's URL and Last-Event-ID); the error code if refused."""
        try:
            self._subscribe(Request("subscribe", None, feed, topic, since, epoch=epoch), catalog)
        except ProtocolError as exc:
            return exc.code
        return None

    def receive(self, catalog: Catalog, text: str | None, data: bytes | None = None) -> None:
        """One frame from the client (text, or bytes for a binary frame)."""
        if self.closed:
            return
        self.active = self._clock()
        size = len(text.encode("utf-8", "surrogatepass")) if text is not None else len(data or b"")
        if size > self.limits.max_client_frame:
            limit = self.limits.max_client_frame
            self._error(
                ProtocolError("too_large", f"frame of {size} bytes is over the limit of {limit}")
            )
            self._close(CLOSE_TOO_LARGE)
            return
        if not self._bucket.take():
            if self._strikes.take():
                self._error(ProtocolError("rate_limited", "too many frames; slow down"))
            else:
                self._close(CLOSE_FLOOD)
            return
        if text is None:
            self._error(ProtocolError("bad_request", "frames must be JSON text"))
            return
        try:
            request = protocol.parse_request(text)
            if request.type == "ping":
                self._send(protocol.reply("pong", request.id))
            elif request.type == "subscribe":
                self._subscribe(request, catalog)
            elif request.type == "unsubscribe":
                self._unsubscribe(request)
            elif request.type == "auth":
                self.outbox.append(Authenticate(request.data, request.id))
            else:
                self._publish(request, catalog)
        except ProtocolError as exc:
            self._error(exc)

    def joined(self, feed: str, topic: str, replay: Replay) -> None:
        """The shell joined the group of a :class:`Join` and fetched the topic's replay."""
        sub = self.subs.get((feed, topic))
        if sub is None or sub.request is None:
            return  # unsubscribed meanwhile
        request, sub.request = sub.request, None
        since, epoch = request.since, request.epoch
        fields: dict[str, Any] = {"seq": replay.latest, "epoch": replay.epoch}
        ok = recovered(since, epoch, replay)
        if ok is not None:
            fields["recovered"] = ok
        # Where the replay takes up: what is before it was given, or is gone.
        at = At(feed, topic, replay.epoch, replay.first - 1)
        text = protocol.reply("subscribed", request.id, feed=feed, topic=topic, **fields)
        self._send(text, at)
        if since is not None:
            begin = start(since, epoch, replay.epoch, replay.latest)
            if replay.first > begin + 1:
                self._gap(sub, begin + 1, replay.first - 1, "history")
        seq = replay.first - 1
        for text, count in protocol.replayed(replay.envelopes, self.limits.max_frame):
            seq += count
            self._send(text, At(feed, topic, replay.epoch, seq))
        sub.last, sub.epoch = replay.latest, replay.epoch
        held, sub.held = sub.held or [], None
        for frame in held:
            forwarded = self._forward(sub, frame, 0)
            if forwarded is not None:
                self._send(forwarded, At(feed, topic, frame.epoch, frame.last))

    def published(self, publish: Publish, code: str | None = None, detail: str = "") -> None:
        """The outcome of a :class:`Publish`: None, the socket took it; else the error code
        (``unavailable``: no subscriber process took it)."""
        where = {"feed": publish.feed, "topic": publish.topic}
        if code is None:
            self._send(protocol.reply("published", publish.id, **where))
        else:
            self._error(ProtocolError(code, detail, publish.id), **where)

    def join_failed(self, feed: str, topic: str) -> None:
        """Joining or the replay failed (e.g. Redis away): forget the half-made subscription."""
        sub = self.subs.pop((feed, topic), None)
        if sub is not None:
            self.active = self._clock()
            self.outbox.append(Leave(sub.group))

    def authenticated(self, reader: Reader, expires: float, id: Any = None) -> None:
        """The token of an ``auth`` request let ``reader`` in, until ``expires``."""
        self.reader = reader
        self._send(protocol.reply("authenticated", id, expires=expires))

    def auth_failed(self, detail: str, id: Any = None) -> None:
        """The token of an ``auth`` request let nobody in: the connection stays as it was."""
        self._error(ProtocolError("forbidden", detail, id))

    def set_reader(self, reader: Reader, catalog: Catalog) -> None:
        """What the user may read changed (groups, staff, logout, token revoked): re-check."""
        self.reader = reader
        self.revalidate(catalog)

    def revalidate(self, catalog: Catalog) -> None:
        """The catalog changed: drop the subscriptions this user may no longer read."""
        for key, sub in list(self.subs.items()):
            code = self.check(catalog, sub.feed, sub.topic)
            if not code:
                continue
            if self.path_topic == key:
                self._close(CLOSE_NOT_FOUND if code == "not_found" else CLOSE_FORBIDDEN)
                return
            del self.subs[key]
            self.active = self._clock()
            self.outbox.append(Leave(sub.group))
            detail = "topic removed" if code == "not_found" else "access changed"
            self._error(ProtocolError(code, detail), feed=sub.feed, topic=sub.topic)
            self._send(protocol.reply("unsubscribed", feed=sub.feed, topic=sub.topic))

    def expire(self) -> bool:
        """The idle check (a few times per IDLE_TIMEOUT): a client that has sent nothing and
        held no subscription for that long is closed with 4408; True if it was."""
        timeout = self.limits.idle_timeout
        if self.closed or self.subs or not timeout or self._clock() - self.active < timeout:
            return False
        self._error(ProtocolError("idle", f"nothing sent and nothing subscribed for {timeout:g} s"))
        self._close(CLOSE_IDLE)
        return True

    def closing(self) -> list[Leave]:
        """The connection is gone: the groups to leave."""
        leaves = [Leave(sub.group) for sub in self.subs.values()]
        self.subs = {}
        self.closed = True
        return leaves

    # The hot path: a frame of a topic, for every client of it in this process

    def deliver(self, frame: Frame, queued: int = 0) -> str | None:
        """The text to send for ``frame`` now (None: nothing, or it was queued as an action).

        While actions are pending, the text joins them, so that it goes out after them.
        ``queued``: bytes the connection has not sent yet; over ``max_backlog`` the frame is
        shed, and the next frame sent opens with a gap for what was shed.
        """
        sub = self.subs.get((frame.feed, frame.topic))
        if sub is None:
            return None
        if (
            frame.first == sub.last + 1
            and frame.epoch == sub.epoch
            and sub.held is None
            and queued <= self._max_backlog
            and not self.outbox
        ):
            sub.last = frame.last  # the common case: the next frame, nothing in the way
            return frame.text
        if sub.held is not None:
            sub.held.append(frame)
            return None
        text = self._forward(sub, frame, queued)
        if text is not None and self.outbox:
            self._send(text, At(sub.feed, sub.topic, frame.epoch, frame.last))
            return None
        return text

    def _forward(self, sub: Subscription, frame: Frame, queued: int) -> str | None:
        if frame.epoch != sub.epoch:
            self._renumbered(sub, frame)
        if frame.last <= sub.last:
            return None  # already replayed
        if queued > self.limits.max_backlog:
            # sub.last stays, so the next frame sent opens with a gap for what is shed.
            count = frame.last - max(frame.first, sub.last + 1) + 1
            reason = SHED_PROCESS if queued >= OVER_TOTAL else SHED_CLIENT
            self.outbox.append(Shed(sub.feed, sub.topic, count, reason))
            sub.shed = True
            return None
        if frame.first <= sub.last:
            trimmed = frame.after(sub.last)  # overlaps the replay: rare, only at subscribe
            assert trimmed is not None
            frame = trimmed
        elif frame.first > sub.last + 1:
            # Shed here for reading slowly, or lost before they reached this process (its
            # channel-layer queue overflowed, Redis restarted, a subscriber switch-over).
            reason = "slow_consumer" if sub.shed else "lost"
            self._gap(sub, sub.last + 1, frame.first - 1, reason)
        sub.shed = False
        sub.last = frame.last
        return frame.text

    # Helpers

    def check(self, catalog: Catalog, feed: str, topic: str) -> str | None:
        """None when this user may read the topic, else the error code."""
        feed_config = catalog.feed(feed)
        config = feed_config.topic(topic) if feed_config and feed_config.enabled else None
        if config is None:
            return "not_found"
        if not can_read(config, self.reader):
            return "forbidden"
        return None

    def _subscribe(self, request: Request, catalog: Catalog) -> None:
        feed, topic, key = request.feed, request.topic, (request.feed, request.topic)
        code = self.check(catalog, feed, topic)
        if code == "not_found":
            raise ProtocolError(code, f"no topic {topic!r} in feed {feed!r}", request.id)
        if code:
            raise ProtocolError(code, f"you may not read {feed}/{topic}", request.id)
        sub = self.subs.get(key)
        if sub is None:
            if len(self.subs) >= self.limits.max_subscriptions:
                limit = self.limits.max_subscriptions
                raise ProtocolError(
                    "too_many_subscriptions", f"at most {limit} subscriptions", request.id
                )
            sub = self.subs[key] = Subscription(feed, topic, group_name(feed, topic))
        elif sub.held is None:
            sub.held = []
        sub.request = request
        config = catalog.topic(feed, topic)
        assert config is not None  # check() found it
        self.outbox.append(
            Join(
                feed,
                topic,
                sub.group,
                request.since,
                request.epoch,
                config.last_values,
                config.history_age,
            )
        )

    def _publish(self, request: Request, catalog: Catalog) -> None:
        """Access, rate and what the feed can carry; the frames go out as a Publish. A
        refusal of a topic that exists is a Publish too (``refused``), for the audit."""
        feed, topic, id = request.feed, request.topic, request.id
        feed_config = catalog.feed(feed)
        config = feed_config.topic(topic) if feed_config and feed_config.enabled else None
        if feed_config is None or config is None:
            raise ProtocolError("not_found", f"no topic {topic!r} in feed {feed!r}", id)
        zmq_topic = config.prefix_bytes + request.subtopic.encode()
        try:
            frames = self._frames(request, feed_config, config, zmq_topic)
        except ProtocolError as exc:
            self.outbox.append(Publish(feed, topic, zmq_topic, (), id, refused=exc.code))
            raise
        self.outbox.append(Publish(feed, topic, zmq_topic, frames, id))

    def _frames(
        self, request: Request, feed: FeedConfig, topic: TopicConfig, zmq_topic: bytes
    ) -> tuple[bytes, ...]:
        id = request.id
        # Independent of reading: a command topic may take publishes from users who read
        # nothing of it.
        if not can_publish(topic, self.reader):
            raise ProtocolError("forbidden", f"you may not publish to {feed.slug}/{topic.slug}", id)
        if not feed.publish_endpoints:
            raise ProtocolError("forbidden", f"feed {feed.slug!r} has no publish endpoints", id)
        if not self._publishes.take():
            rate = self.limits.publish_rate
            raise ProtocolError("rate_limited", f"at most {rate:g} publishes per second", id)
        if request.subtopic and topic.match != MATCH_PREFIX:
            raise ProtocolError("bad_request", "an exact topic takes no 'subtopic'", id)
        try:
            return tuple(encoder(feed)(zmq_topic, request.data))
        except Unencodable as exc:
            raise ProtocolError(exc.code, exc.detail, id) from None

    def _unsubscribe(self, request: Request) -> None:
        sub = self.subs.pop((request.feed, request.topic), None)
        if sub is not None:
            self.outbox.append(Leave(sub.group))
        self._send(
            protocol.reply("unsubscribed", request.id, feed=request.feed, topic=request.topic)
        )

    def _renumbered(self, sub: Subscription, frame: Frame) -> None:
        """The topic's numbering started again while subscribed (a wiped Redis, a new
        subscriber with no history): a `subscribed` with ``recovered: false`` and the new
        epoch says so, and the frame goes on from there. A history that knew no numbering
        yet ("") just learns the epoch."""
        if sub.epoch:
            self._send(
                protocol.reply(
                    "subscribed",
                    feed=sub.feed,
                    topic=sub.topic,
                    seq=frame.first - 1,
                    epoch=frame.epoch,
                    recovered=False,
                ),
                At(sub.feed, sub.topic, frame.epoch, frame.first - 1),
            )
            sub.last = frame.first - 1
        sub.epoch = frame.epoch

    def _send(self, text: str, at: At | None = None) -> None:
        self.outbox.append(Send(text, at=at))

    def _error(self, exc: ProtocolError, **fields: Any) -> None:
        self.outbox.append(
            Send(protocol.error(exc.code, exc.detail, exc.id, **fields), error=exc.code)
        )

    def _gap(self, sub: Subscription, first: int, last: int, reason: str) -> None:
        self.outbox.append(Send(protocol.gap(sub.feed, sub.topic, first, last, reason), gap=reason))

    def _close(self, code: int) -> None:
        self.closed = True
        self.outbox.append(Close(code))
