"""Who is behind each open connection, checked again on every reload tick.

A connection is anonymous, a session (a logged-in browser) or a token (a program). What it
may read follows the user: deactivated, removed from a group, no longer staff, logged out
(the session is gone) or the token revoked or expired, and the next tick gives it the Reader
it now deserves, so open connections lose what they may no longer read within a reload
interval. One tick costs a few queries for all the connections of the process together,
never a query per message.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import import_module

from channels.db import database_sync_to_async
from django.conf import settings

from . import conf, tokens
from .core.access import ANONYMOUS, Reader

log = logging.getLogger("zmqfeed.identity")


@dataclass(frozen=True)
class Identity:
    user_id: int | None = None
    session_key: str | None = None  # a session connection: valid while the session lasts
    token: tokens.Claims | None = None  # a token connection: valid while the token is


NOBODY = Identity()


def of_scope(scope: dict) -> Identity:
    """The identity of a session-authenticated handshake (sync: reads the session)."""
    return of_user(scope.get("user"), scope.get("session"))


def of_user(user: object, session: object) -> Identity:
    """The identity of a loaded user and the session it came with (a request's, a scope's)."""
    if user is None or not getattr(user, "is_authenticated", False):
        return NOBODY
    return Identity(getattr(user, "pk", None), getattr(session, "session_key", None))


def of_token(token: str) -> Identity:
    """The identity a token claims; TokenError when it is bad or expired."""
    claims = tokens.read(token)
    return Identity(claims.user_id, token=claims)


def readers(identities: Iterable[Identity]) -> dict[Identity, Reader]:
    """The Reader of each identity now (sync: a few queries for all of them together)."""
    from django.contrib.auth import get_user_model

    from .models import TokenGeneration

    wanted = {i for i in identities if i.user_id is not None}
    if not wanted:
        return dict.fromkeys(identities, ANONYMOUS)
    ids = {i.user_id for i in wanted}
    users = {
        u.pk: u
        for u in get_user_model()
        .objects.filter(pk__in=ids, is_active=True)
        .prefetch_related("groups")
    }
    token_users = {i.user_id for i in wanted if i.token is not None}
    generations = dict(
        TokenGeneration.objects.filter(user_id__in=token_users).values_list("user_id", "generation")
    )
    sessions = _live_sessions({i.session_key for i in wanted if i.session_key})
    now = time.time()
    out: dict[Identity, Reader] = {}
    for identity in identities:
        user = users.get(identity.user_id) if identity.user_id is not None else None
        valid = user is not None
        if valid and identity.token is not None:
            claims = identity.token
            valid = claims.expires > now and generations.get(claims.user_id, 0) == claims.generation
        elif valid and identity.session_key is not None and sessions is not None:
            valid = identity.session_key in sessions
        out[identity] = _reader(user) if valid else ANONYMOUS
    return out


def _reader(user) -> Reader:
    return Reader(
        authenticated=True,
        staff=user.is_staff,
        superuser=user.is_superuser,
        groups=frozenset(g.name for g in user.groups.all()),
    )


DATABASE_SESSIONS = (
    "django.contrib.sessions.backends.db",
    "django.contrib.sessions.backends.cached_db",
)


def _live_sessions(keys: set[str]) -> set[str] | None:
    """Which of the session keys still exist; None where the session engine cannot say
    (signed cookies live in the browser: logging out there cannot be seen here)."""
    if not keys:
        return set()
    engine = settings.SESSION_ENGINE
    if engine.endswith("signed_cookies"):
        return None
    if engine in (
        "django.contrib.sessions.backends.db",
        "django.contrib.sessions.backends.cached_db",
    ):
        from django.contrib.sessions.models import Session
        from django.utils import timezone

        return set(
            Session.objects.filter(
                session_key__in=keys, expire_date__gt=timezone.now()
            ).values_list("session_key", flat=True)
        )
    store = import_module(engine).SessionStore
    return {key for key in keys if store().exists(key)}


Listener = Callable[[Reader], None]


class IdentityWatcher:
    """Re-reads every open connection's Reader each reload interval, in one batch."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._watched: dict[Listener, tuple[Identity, Reader]] = {}
        self._task: asyncio.Task | None = None
        self._failing = False

    def watch(self, identity: Identity, reader: Reader, listener: Listener) -> None:
        """Call ``listener`` with the new Reader whenever it changes (until ``unwatch``)."""
        self._watched[listener] = (identity, reader)
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._run())

    def unwatch(self, listener: Listener) -> None:
        self._watched.pop(listener, None)

    async def check(self) -> None:
        """One tick: every watched identity's Reader now, and tell those that changed."""
        watched = dict(self._watched)
        if not watched:
            return
        now = await database_sync_to_async(readers)({i for i, _ in watched.values()})
        for listener, (identity, before) in watched.items():
            reader = now.get(identity, ANONYMOUS)
            if reader != before and listener in self._watched:
                self._watched[listener] = (identity, reader)
                try:
                    listener(reader)
                except Exception:
                    log.exception("a connection's access check failed")

    async def _run(self) -> None:
        while self._watched:
            await asyncio.sleep(self.interval)
            try:
                await self.check()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # e.g. the database away: keep what each one had
                if not self._failing:
                    log.warning("cannot check connections' access now (keeping it): %s", exc)
                self._failing = True
            else:
                if self._failing:
                    log.info("connections' access is checked again")
                self._failing = False


_watchers: dict[asyncio.AbstractEventLoop, IdentityWatcher] = {}


def get_identity_watcher() -> IdentityWatcher:
    loop = asyncio.get_running_loop()
    watcher = _watchers.get(loop)
    if watcher is None:
        watcher = _watchers[loop] = IdentityWatcher(conf.get()["RELOAD_INTERVAL"])
    return watcher
