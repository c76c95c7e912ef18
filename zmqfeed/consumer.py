"""One WebSocket connection: the I/O shell around :class:`zmqfeed.core.session.ClientSession`.

The session decides (limits, access, order of replies, gaps); this consumer carries out
its actions with Channels, the Fanout and the history, and never touches the ORM in the
hot path. Frames of topics reach it from the process's Fanout, ready to send.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from typing import Any

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from . import conf, embedded, identity, metrics, node, tokens
from .core import protocol
from .core.access import ANONYMOUS, Reader
from .core.admission import CLOSE_TRY_AGAIN
from .core.catalog import Catalog
from .core.protocol import Frame
from .core.rates import LogThrottle
from .core.session import (
    CLOSE_FLOOD,
    CLOSE_FORBIDDEN,
    CLOSE_NOT_FOUND,
    CLOSE_TOO_LARGE,
    CLOSE_UNAUTHORIZED,
    Action,
    Authenticate,
    ClientSession,
    Close,
    Join,
    Leave,
    Limits,
    Send,
    Shed,
)
from .daphne import backlog
from .fanout import get_fanout
from .history import get_history
from .origins import allowed_origins, origin_allowed
from .watch import get_watcher

__all__ = [
    "CLOSE_FLOOD",
    "CLOSE_FORBIDDEN",
    "CLOSE_NOT_FOUND",
    "CLOSE_TOO_LARGE",
    "CLOSE_TRY_AGAIN",
    "CLOSE_UNAUTHORIZED",
    "REFUSED",
    "FeedConsumer",
    "SessionShell",
    "reader_of",
]

log = logging.getLogger("zmqfeed.consumer")

REFUSED = {  # why node.admission() refused a connection, by its reason
    "node": "this server holds as many connections as it may (MAX_CONNECTIONS); try again later",
    "user": "this user holds as many connections as one may (MAX_CONNECTIONS_PER_USER)",
    "ip": "this address holds as many connections as one may (MAX_CONNECTIONS_PER_IP)",
    "rate": "too many connection attempts (CONNECT_RATE); try again later",
}

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


async def reader_of(who: identity.Identity, token: bool) -> Reader:
    """What ``who`` may read now; TokenError for a token whose user may read nothing (the
    token was revoked, or its user is inactive)."""
    reader = (await database_sync_to_async(identity.readers)([who]))[who]
    if token and reader is ANONYMOUS:
        raise tokens.TokenError("the token was revoked, or its user is inactive")
    return reader


class SessionShell:
    """What every transport of a :class:`ClientSession` does alike: carry out its actions
    (join the Fanout, fetch replays, count), and follow catalog and access changes.

    A transport (the WebSocket consumer, an SSE stream) sets the attributes below and says
    how a text goes out (:meth:`_transmit`) and how the connection ends (:meth:`_end`).
    """

    session: ClientSession | None = None
    _acting = False
    fanout: Any
    watcher: Any
    identities: Any
    who: identity.Identity
    _revalidations: set[asyncio.Task]

    async def _transmit(self, send: Send) -> None:
        raise NotImplementedError

    async def _end(self, code: int) -> None:
        raise NotImplementedError

    # What the session says to do

    async def act(self) -> None:
        """Carry out the session's actions in order, one drainer at a time (the idle sweeper
        calls it too, after the session decided to close)."""
        session = self.session
        if session is None or self._acting:
            return  # the running drainer takes what was queued
        self._acting = True
        try:
            while (action := session.next_action()) is not None:
                await self._do(action)
        finally:
            self._acting = False

    async def _do(self, action: Action) -> None:
        if isinstance(action, Send):
            if action.error:
                metrics.CLIENT_ERRORS.labels(action.error).inc()
            if action.gap:
                metrics.GAPS.labels(action.gap).inc()
            await self._transmit(action)
        elif isinstance(action, Join):
            await self._join(action)
        elif isinstance(action, Authenticate):
            await self._authenticate(action)
        elif isinstance(action, Leave):
            await self.fanout.leave(action.group, self)
        elif isinstance(action, Shed):
            metrics.SHED.labels(action.feed, action.topic).inc(action.count)
            _log_shed(action.count)
        elif isinstance(action, Close):
            await self._end(action.code)

    async def _join(self, join: Join) -> None:
        assert self.session is not None
        try:
            await self.fanout.join(join.group, self)
            # After joining: whatever the history does not have yet comes from the group.
            replay = await get_history().replay(
                f"{join.feed}/{join.topic}", join.since, join.epoch, join.last, join.max_age
            )
        except Exception:
            # E.g. Redis unreachable: drop the half-made subscription, not its held frames.
            self.session.join_failed(join.feed, join.topic)
            while (leave := self.session.next_action()) is not None:
                with contextlib.suppress(Exception):
                    await self._do(leave)
            raise
        self.session.joined(join.feed, join.topic, replay)

    async def _authenticate(self, auth: Authenticate) -> None:
        """An ``auth`` frame: the token's user, from now on (and followed like any other)."""
        assert self.session is not None
        try:
            who = identity.of_token(auth.token)
            reader = await reader_of(who, token=True)
        except tokens.TokenError as exc:
            self.session.auth_failed(str(exc), auth.id)
            return
        assert who.token is not None
        self.who = who
        self.identities.watch(who, reader, self._on_reader)
        self.session.authenticated(reader, who.token.expires, auth.id)

    def _on_reader(self, reader: Reader) -> None:
        """The user's access changed (the identity watcher's tick): drop what is not theirs."""
        self._spawn(self._reader_changed(reader))

    async def _reader_changed(self, reader: Reader) -> None:
        if self.session is not None:
            self.session.set_reader(reader, await self.watcher.get())
            await self.act()

    # Configuration changes

    def _on_catalog(self, catalog: Catalog) -> None:
        self._spawn(self._revalidate(catalog))

    def _spawn(self, check: Coroutine[Any, Any, None]) -> None:
        # Keep a reference: a task nobody holds may be collected, and its errors are lost.
        task = asyncio.ensure_future(check)
        self._revalidations.add(task)
        task.add_done_callback(self._revalidated)

    def _revalidated(self, task: asyncio.Task) -> None:
        self._revalidations.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("re-checking a connection's access failed", exc_info=task.exception())

    async def _revalidate(self, catalog: Catalog) -> None:
        if self.session is not None:
            self.session.revalidate(catalog)
            await self.act()


class FeedConsumer(SessionShell, AsyncWebsocketConsumer):
    """`/ws/zmqfeed/` (subscribe by message) and `/ws/zmqfeed/<feed>/<topic>/` (on connect).

    Topic frames do not come through a channel of this consumer's own: the process's
    Fanout is the group member and calls :meth:`deliver` directly.
    """

    # No channel per connection: it would cost a layer receive loop per client (with
    # Redis, contending for the process's one blocking read) and nothing is sent to it.
    channel_layer_alias = "zmqfeed.no-channel-per-connection"
    over_cap = False  # set by the process's backlog supervisor: shed this client's frames
    held = 0  # bytes it held unsent when last seen, in the supervisor's running total
    admitted: tuple[int | None, str | None] | None = None

    async def dispatch(self, message: dict) -> None:
        # Channels 4.2+ hops to a thread before every handler to close stale database
        # connections; this consumer uses the database only through database_sync_to_async,
        # which does that itself, so the per-frame hop is pure cost.
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def connect(self) -> None:
        if not origin_allowed(self.scope.get("headers", []), allowed_origins()):
            log.info("refused WebSocket from origin not in ALLOWED_ORIGINS/ALLOWED_HOSTS")
            await self.close()
            return
        settings = conf.get()
        embedded.ensure_started()
        self.fanout = get_fanout()
        self.watcher = get_watcher()
        self.identities = identity.get_identity_watcher()
        self.queued = backlog.meter(self.base_send)
        self.backlogs = node.supervisor()
        self.idlers = node.sweeper()
        offered = self.scope.get("subprotocols") or ()
        subprotocol = tokens.SUBPROTOCOL if tokens.SUBPROTOCOL in offered else None
        token = tokens.from_scope(self.scope)
        try:
            if token is not None:
                who = identity.of_token(token)
            else:
                who = await database_sync_to_async(identity.of_scope)(self.scope)
            reader = await reader_of(who, token=token is not None)
        except tokens.TokenError as exc:
            # Accept first, so that the reason and the close code reach the client.
            await self.accept(subprotocol)
            await self._refuse(str(exc))
            return
        client = self.scope.get("client") or (None,)
        refused = node.admission().admit(who.user_id, client[0])
        if refused is not None:
            metrics.REFUSED.labels(refused).inc()
            await self.accept(subprotocol)
            await self.base_send(
                {
                    "type": "websocket.send",
                    "text": protocol.error("rate_limited", REFUSED[refused]),
                }
            )
            await self.close(CLOSE_TRY_AGAIN)
            return
        self.admitted = (who.user_id, client[0])
        self.who = who
        self.session = ClientSession(reader, Limits.from_settings(settings))
        kwargs = self.scope.get("url_route", {}).get("kwargs", {})
        # Accept first, so that a close code for a per-topic URL reaches the client.
        await self.accept(subprotocol)
        path_topic = (kwargs["feed"], kwargs["topic"]) if "feed" in kwargs else None
        self.session.open(await self.watcher.get(), path_topic)
        await self.act()
        if self.session.closed:
            return
        self._revalidations = set()
        self.watcher.listen(self._on_catalog)
        self.identities.watch(who, reader, self._on_reader)
        self.backlogs.add(self)
        self.idlers.add(self)
        metrics.CONNECTIONS.inc()
        self.counted = True

    async def _refuse(self, detail: str) -> None:
        metrics.CLIENT_ERRORS.labels("forbidden").inc()
        text = protocol.error("forbidden", detail)
        await self.base_send({"type": "websocket.send", "text": text})
        await self.close(CLOSE_UNAUTHORIZED)

    async def close_slow(self) -> None:
        """The backlog supervisor's last resort for a client that holds the most for long."""
        metrics.SLOW_CLOSED.inc()
        await self.close(CLOSE_FLOOD)

    async def disconnect(self, code: int) -> None:
        if self.admitted is not None:
            node.admission().release(*self.admitted)
            self.admitted = None
        if getattr(self, "counted", False):
            metrics.CONNECTIONS.dec()
            self.watcher.unlisten(self._on_catalog)
            self.identities.unwatch(self._on_reader)
            self.backlogs.discard(self)
            self.idlers.discard(self)
        if self.session is not None:
            for leave in self.session.closing():
                await self.fanout.leave(leave.group, self)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        assert self.session is not None
        self.session.receive(await self.watcher.get(), text_data, bytes_data)
        await self.act()

    async def _transmit(self, send: Send) -> None:
        await self.base_send({"type": "websocket.send", "text": send.text})

    async def _end(self, code: int) -> None:
        if code == CLOSE_FLOOD:
            log.warning("closing a flooding client (%s)", self.scope.get("client"))
        await self.close(code)

    # Frames from the subscriber, through the Fanout: the hot path.

    async def deliver(self, frame: Frame) -> None:
        session = self.session
        if session is None:
            return
        queued = 0
        if self.queued is not None:
            queued = self.queued()
            if self.backlogs.shed(self, queued):  # the process holds too much unsent
                queued = 1 << 62
        text = session.deliver(frame, queued)
        if session.outbox:
            await self.act()
        if text is not None:
            await self.base_send({"type": "websocket.send", "text": text})
