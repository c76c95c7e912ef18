"""One client connection, whatever carries it: what the WebSocket consumer and an SSE
stream do alike around their :class:`~zmqfeed.core.session.ClientSession`.

:class:`SessionShell` carries out the session's actions (join the Fanout, fetch replays,
count) and follows catalog and access changes; a transport says only how a text goes out
and how the connection ends. Neither goes back to the ORM in the hot path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from typing import Any

from channels.db import database_sync_to_async

from . import conf, identity, metrics, tokens
from .core.access import ANONYMOUS, Reader
from .core.catalog import Catalog
from .core.rates import LogThrottle
from .core.session import (
    Action,
    Authenticate,
    ClientSession,
    Close,
    Join,
    Leave,
    Publish,
    Send,
    Shed,
)
from .history import get_history
from .outbound import get_sender

__all__ = ["REFUSED", "SessionShell", "reader_of"]

log = logging.getLogger("zmqfeed.connection")
audit = logging.getLogger("zmqfeed.publish")  # one line per publish (README: Two-way)

REFUSED = {  # why node.admission() refused a connection, by its reason
    "node": "this server holds as many connections as it may (MAX_CONNECTIONS); try again later",
    "user": "this user holds as many connections as one may (MAX_CONNECTIONS_PER_USER)",
    "ip": "this address holds as many connections as one may (MAX_CONNECTIONS_PER_IP)",
    "rate": "too many connection attempts (CONNECT_RATE); try again later",
}

_throttle: LogThrottle | None = None


def _ready(kind: str, count: int = 1) -> int | None:
    """The process's throttle for what connections log in bursts (shedding, publish floods)."""
    global _throttle
    if _throttle is None:
        _throttle = LogThrottle(conf.get()["LOG_INTERVAL"])
    return _throttle.ready(kind, count)


def _log_shed(count: int) -> None:
    total = _ready("shed", count)
    if total is not None:
        log.warning(
            "dropped %d message(s) for clients reading slower than their topics arrive "
            "(unsent data over MAX_CLIENT_BACKLOG); they get a gap",
            total,
        )


def _log_limited() -> None:
    total = _ready("limited")
    if total is not None:
        audit.warning("refused %d publish(es) over PUBLISH_RATE (rate_limited)", total)


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
            metrics.SHED.labels(action.feed, action.topic, action.reason).inc(action.count)
            _log_shed(action.count)
        elif isinstance(action, Close):
            await self._end(action.code)
        elif isinstance(action, Publish):
            if action.refused:
                self.published(action, action.refused)  # the session answered already
            else:  # off the drainer: frames of topics go on while the owner answers
                self._spawn(self._publish(action))

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

    async def _publish(self, publish: Publish) -> None:
        outcome = await get_sender().send(publish.feed, publish.frames)
        self.published(publish, outcome.code, outcome.detail)
        if self.session is not None and not self.session.closed:
            self.session.published(publish, outcome.code, outcome.detail)
            await self.act()

    def published(self, publish: Publish, code: str | None, detail: str = "") -> None:
        """Count and log a publish: sent, refused by the owner, or by the session."""
        outcome = code or "published"
        metrics.PUBLISHES.labels(publish.feed, publish.topic, outcome).inc()
        if code == "rate_limited":  # a flood is counted, not logged line by line
            _log_limited()
            return
        audit.info(
            "publish user=%s feed=%s topic=%s zmq_topic=%r bytes=%d outcome=%s%s",
            self.who.user_id if self.who.user_id is not None else "anonymous",
            publish.feed,
            publish.topic,
            publish.zmq_topic,
            publish.size,
            outcome,
            f" ({detail})" if code else "",
        )

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
