"""Server-Sent Events: the WebSocket's frames for clients behind proxies that block WebSockets.

One stream is one :class:`~zmqfeed.core.session.ClientSession`, as a WebSocket is, and this
module is only its shell: the same access rules, tokens, joins, replays, gaps and slow-client
bound, carried out by :class:`~zmqfeed.connection.SessionShell`; the session's texts go out as
SSE events of a streaming response instead of WebSocket frames. A one-topic stream sends
each live frame as the bytes :attr:`Frame.sse` built once for every client of the topic.
The topics to subscribe, and where to resume them, come from the URL and the browser's
``Last-Event-ID`` (docs/protocol.md, "Server-Sent Events").
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.views.decorators.http import require_safe

from . import conf, embedded, identity, metrics, node, tokens
from .connection import REFUSED, SessionShell, reader_of
from .core import protocol, sse
from .core.protocol import Frame
from .core.session import OVER_TOTAL, At, ClientSession, Send
from .core.sse import Position, Topic
from .daphne import backlog
from .fanout import get_fanout
from .watch import get_watcher

log = logging.getLogger("zmqfeed.sse")

KEEPALIVE = 15.0  # seconds between `: ping` comments on a stream with nothing else to send
RETRY_AFTER = "5"  # seconds, on a 503 when this process holds as many connections as it may
SEND_KEY = "zmqfeed.send"  # the server's ASGI send, kept in the scope by http_application


def http_application(inner: Any) -> Callable:
    """``inner`` (Django's ASGI application) with the server's ``send`` kept in the scope:
    under daphne a stream reads from it how many bytes its client holds unsent, the
    measure of ``MAX_CLIENT_BACKLOG``. Without it only the stream's own queue counts."""

    async def application(scope: dict, receive: Callable, send: Callable) -> None:
        if scope.get("type") == "http":
            scope = {**scope, SEND_KEY: send}
        await inner(scope, receive, send)

    return application


def _refuse(status: int, reason: str, **headers: str) -> HttpResponse:
    response = HttpResponse(reason + "\n", status=status, content_type="text/plain; charset=utf-8")
    response["Cache-Control"] = "no-store"
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


@require_safe
async def stream(request: HttpRequest, feed: str | None = None, topic: str | None = None):
    """``sse/<feed>/<topic>/`` (one topic) and ``sse/?topic=<feed>/<topic>&…`` (several).

    Every refusal comes before the stream starts, as an HTTP status: EventSource does not
    retry those, while a stream that ends is reconnected (with Last-Event-ID).
    """
    settings = conf.get()
    single = feed is not None and topic is not None
    topics: list[Topic] | None
    if feed is not None and topic is not None:
        topics = [(feed, topic)]
    else:
        topics = sse.parse_topics(request.GET.getlist("topic"))
    if not topics:
        return _refuse(400, "give one or more ?topic=<feed>/<topic>")
    if len(topics) > settings["MAX_SUBSCRIPTIONS"]:
        return _refuse(400, f"at most {settings['MAX_SUBSCRIPTIONS']} topics (MAX_SUBSCRIPTIONS)")
    resume = _positions(request, topics, single)

    embedded.ensure_started()
    token = tokens.from_scope(request.scope)
    try:
        if token is not None:
            who = identity.of_token(token)
        else:
            auser = getattr(request, "auser", None)
            user = await auser() if auser is not None else None
            who = identity.of_user(user, getattr(request, "session", None))
        reader = await reader_of(who, token=token is not None)
    except tokens.TokenError as exc:
        metrics.CLIENT_ERRORS.labels("forbidden").inc()
        return _refuse(401, str(exc), WWW_Authenticate="Bearer")

    catalog = await get_watcher().get()
    session = ClientSession(reader, conf.limits())
    for key in topics:
        code = session.check(catalog, *key)
        if code == "not_found":
            return _refuse(404, f"no topic {key[1]!r} in feed {key[0]!r}")
        if code:
            return _refuse(403, f"you may not read {key[0]}/{key[1]}")

    client = request.scope.get("client") or (None,)
    refused = node.admission().admit(who.user_id, client[0])
    if refused is not None:
        metrics.REFUSED.labels(refused).inc()
        return _refuse(503, REFUSED[refused], Retry_After=RETRY_AFTER)
    events = Stream(session, who, reader, topics, resume, single, (who.user_id, client[0]))
    events.meter = backlog.meter(request.scope[SEND_KEY]) if SEND_KEY in request.scope else None
    response = StreamingHttpResponse(events.events(), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: pass each event on at once
    return response


def _positions(request: HttpRequest, topics: list[Topic], single: bool) -> dict[Topic, Position]:
    """Where to resume each topic: the browser's Last-Event-ID, else (several topics only)
    the ``last_event_id`` parameter that zmqfeed.js sends when it re-opens a stream."""
    header = request.headers.get("Last-Event-ID")
    if single:
        position = sse.parse_one(header)
        return {topics[0]: position} if position is not None else {}
    found = sse.parse_many(header or request.GET.get("last_event_id"))
    return {key: found[key] for key in topics if key in found}


class Stream(SessionShell):
    """One SSE stream: a Fanout member that owns a session and queues its events as bytes.

    The response's iterator (:meth:`events`) sends what is queued; what it has not taken
    yet, with what the server holds unsent for the client (daphne), is the ``queued`` the
    session weighs against ``MAX_CLIENT_BACKLOG``.
    """

    over_cap = False  # set by the process's backlog supervisor: shed this client's frames
    held = 0  # bytes it held unsent when last seen, in the supervisor's running total
    meter: Callable[[], int] | None = None

    def __init__(
        self,
        session: ClientSession,
        who: identity.Identity,
        reader: Any,
        topics: list[Topic],
        resume: dict[Topic, Position],
        single: bool,
        admitted: tuple[int | None, str | None],
    ) -> None:
        self.session = session
        self.who, self.reader, self.topics, self.resume = who, reader, topics, resume
        self.single = single
        self.fanout = get_fanout()
        self.watcher = get_watcher()
        self.identities = identity.get_identity_watcher()
        self.backlogs = node.supervisor()
        self._revalidations: set[asyncio.Task] = set()
        self._chunks: deque[bytes] = deque()
        self._unsent = 0
        self._wake = asyncio.Event()
        self._ended = False
        # Several topics: the id, each topic's part kept from Last-Event-ID until it moves.
        self._ids = sse.Ids({} if single else resume)
        # Released by :meth:`_stop`; also should the response never be iterated at all.
        self._release = weakref.finalize(self, node.admission().release, *admitted)

    def queued(self) -> int:
        """Bytes made for this client and not yet sent: the stream's and the server's."""
        return self._unsent + (self.meter() if self.meter is not None else 0)

    async def events(self) -> AsyncIterator[bytes]:
        """The response body; it ends when the session closes or holds no topic any more,
        and a client that goes away cancels it: either way :meth:`_stop` frees everything."""
        assert self.session is not None
        session = self.session
        self.watcher.listen(self._on_catalog)
        self.identities.watch(self.who, self.reader, self._on_reader)
        self.backlogs.add(self)
        metrics.SSE_STREAMS.inc()
        try:
            yield sse.RETRY
            catalog = await self.watcher.get()
            for feed, topic in self.topics:
                position = self.resume.get((feed, topic))
                since = position.seq if position is not None else None
                epoch = position.since_epoch if position is not None else None
                code = session.subscribe(catalog, feed, topic, since, epoch)
                if code is not None:  # the catalog changed since the checks of the view
                    self._push(protocol.error(code, "cannot subscribe", feed=feed, topic=topic))
            try:
                await self.act()
            except Exception:
                log.exception("subscribing an SSE stream failed")
            while True:
                if self._chunks:
                    data = b"".join(self._chunks)
                    self._chunks.clear()
                    self._unsent = 0
                    yield data
                    continue
                if self._ended or session.closed or not session.subs:
                    return
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), KEEPALIVE)
                except asyncio.TimeoutError:
                    yield sse.PING
        finally:
            await self._stop()

    async def _stop(self) -> None:
        self._ended = True
        self.watcher.unlisten(self._on_catalog)
        self.identities.unwatch(self._on_reader)
        self.backlogs.discard(self)
        metrics.SSE_STREAMS.dec()
        self._release()
        assert self.session is not None
        for leave in self.session.closing():
            try:
                await self.fanout.leave(leave.group, self)
            except (Exception, asyncio.CancelledError):
                log.warning("leaving %s after an SSE stream failed", leave.group, exc_info=True)

    # Output

    def _push(self, chunk: bytes | str) -> None:
        if isinstance(chunk, str):
            chunk = sse.event(chunk.encode())
        self._chunks.append(chunk)
        self._unsent += len(chunk)
        self._wake.set()

    def _event(self, data: bytes, at: At | None) -> bytes:
        """A text that is not a frame's own (a reply, a gap, a replay, a trimmed frame), or
        any frame of a several-topic stream, whose id is this client's own."""
        id = None
        if at is not None:
            if self.single:
                id = sse.one_id(at.epoch, at.seq)
            else:
                assert self.session is not None
                self._ids.keep(self.session.subs.keys())
                self._ids.move(at.feed, at.topic, Position(at.epoch, at.seq))
                id = self._ids.id
        return sse.event(data, id)

    async def _transmit(self, send: Send) -> None:
        self._push(self._event(send.text.encode(), send.at))

    async def _end(self, code: int) -> None:
        self._ended = True
        self._wake.set()

    async def close_slow(self) -> None:
        """The backlog supervisor's last resort for a client that holds the most for long."""
        metrics.SLOW_CLOSED.inc()
        await self._end(0)

    # Frames from the subscriber, through the Fanout: the hot path.

    async def deliver(self, frame: Frame) -> None:
        session = self.session
        if session is None or self._ended:
            return
        queued = self.queued()
        if self.backlogs.shed(self, queued):  # the process holds too much unsent
            queued = OVER_TOTAL
        text = session.deliver(frame, queued)
        if session.outbox:
            await self.act()
        if text is None:
            return
        own = text is frame.text  # else trimmed for this client: rare
        if own and self.single:
            self._push(frame.sse)  # the common case: the bytes every such stream shares
            return
        at = At(frame.feed, frame.topic, frame.epoch, frame.last)
        self._push(self._event(frame.data if own else text.encode(), at))
