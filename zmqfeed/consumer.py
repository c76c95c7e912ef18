"""One WebSocket connection: the I/O shell around :class:`zmqfeed.core.session.ClientSession`.

The session decides (limits, access, order of replies, gaps); this consumer carries out
its actions with Channels, the Fanout and the history, and never touches the ORM in the
hot path. Frames of topics reach it from the process's Fanout, ready to send.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer

from . import conf, daphne, embedded, identity, metrics, node, tokens
from .connection import REFUSED, SessionShell, reader_of
from .core import protocol
from .core.admission import CLOSE_TRY_AGAIN
from .core.protocol import Frame
from .core.session import (
    CLOSE_FLOOD,
    CLOSE_FORBIDDEN,
    CLOSE_NOT_FOUND,
    CLOSE_TOO_LARGE,
    CLOSE_UNAUTHORIZED,
    OVER_TOTAL,
    ClientSession,
    Send,
)
from .daphne import backlog, lean, preframed
from .fanout import get_fanout
from .origins import allowed_origins, origin_allowed
from .watch import get_watcher

__all__ = [
    "CLOSE_FLOOD",
    "CLOSE_FORBIDDEN",
    "CLOSE_NOT_FOUND",
    "CLOSE_TOO_LARGE",
    "CLOSE_TRY_AGAIN",
    "CLOSE_UNAUTHORIZED",
    "FeedConsumer",
]

log = logging.getLogger("zmqfeed.consumer")


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

    async def __call__(self, scope: dict, receive, send) -> None:
        """Channels' loop, minus what an idle connection would hold for nothing.

        ``AsyncConsumer.__call__`` runs ``receive`` in a task of its own and waits for it with
        ``asyncio.wait`` (a task, two coroutines, a future and a callback per connection, and
        the last message's done task pinned in its frame), because it may also read a
        channel. This consumer has no channel: it awaits ``receive`` in place.
        """
        self.scope = scope
        self.channel_layer = None
        self.base_send = send
        if conf.get()["LEAN_CONNECTIONS"] and daphne.server_is_twisted():
            lean.trim_queue(receive)  # daphne's receive queue, lists for deques
        try:
            while True:
                await self.dispatch(await receive())
        except StopConsumer:
            pass

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
        embedded.ensure_started()
        self.fanout = get_fanout()
        self.watcher = get_watcher()
        self.identities = identity.get_identity_watcher()
        self.queued = backlog.meter(self.base_send)
        self.wire_to = preframed.target(self.base_send)
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
        self.session = ClientSession(reader, conf.limits())
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

    wire_to = None  # daphne's protocol, for frames written as their shared bytes

    def deliver(self, frame: Frame) -> Awaitable[None] | None:
        """The Fanout's call: the frame's shared bytes written at once where nothing else is
        due (None); else what is left to await, in the session's order."""
        session = self.session
        if session is None:
            return None
        queued = 0
        if self.queued is not None:
            queued = self.queued()
            if self.backlogs.shed(self, queued):
                queued = OVER_TOTAL  # the process holds too much unsent
        text = session.deliver(frame, queued)
        if session.outbox:
            return self._act_then(text)
        if text is None:
            return None
        wire_to = self.wire_to
        if wire_to is not None and text is frame.text and preframed.write(wire_to, frame):
            return None
        return self.base_send({"type": "websocket.send", "text": text})

    async def _act_then(self, text: str | None) -> None:
        await self.act()
        if text is not None:
            await self.base_send({"type": "websocket.send", "text": text})
