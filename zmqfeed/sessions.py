"""Session authentication for feed WebSockets, without a wrapper around every send.

Channels' SessionMiddleware wraps the ASGI `send` so that it can save a changed session:
on every frame it inspects the session and reads settings, which cost about a tenth of a
frame's delivery to a client. A feed connection reads the session once, at connect, and
never changes it, so here the session is loaded read-only and `send` is left alone.
"""

from __future__ import annotations

from importlib import import_module

from channels.auth import AuthMiddleware
from channels.sessions import CookieMiddleware
from django.conf import settings


class ReadOnlySessionMiddleware:
    def __init__(self, inner) -> None:
        self.inner = inner

    async def __call__(self, scope, receive, send):
        if "session" not in scope:
            store = import_module(settings.SESSION_ENGINE).SessionStore
            key = scope["cookies"].get(settings.SESSION_COOKIE_NAME)
            scope = dict(scope, session=store(key))  # loads lazily, on first access
        return await self.inner(scope, receive, send)


def SessionAuthStack(inner):
    """Cookies → read-only session → `scope["user"]`, as AuthMiddlewareStack but for reading."""
    return CookieMiddleware(ReadOnlySessionMiddleware(AuthMiddleware(inner)))
