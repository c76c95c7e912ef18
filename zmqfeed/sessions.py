"""Session authentication for feed WebSockets, without a wrapper around every send.

Channels' SessionMiddleware wraps the ASGI `send` so that it can save a changed session:
on every frame it inspects the session and reads settings, which cost about a tenth of a
frame's delivery to a client. A feed connection reads the session once, at connect, and
never changes it, so here the session is loaded read-only and `send` is left alone.
"""

from __future__ import annotations

from importlib import import_module

from channels.auth import AuthMiddleware
from channels.routing import URLRouter
from channels.sessions import CookieMiddleware
from django.conf import settings
from django.http.cookie import parse_cookie
from django.urls import Resolver404


def _session(scope):
    store = import_module(settings.SESSION_ENGINE).SessionStore
    return store(scope["cookies"].get(settings.SESSION_COOKIE_NAME))  # loads lazily


class ReadOnlySessionMiddleware:
    def __init__(self, inner) -> None:
        self.inner = inner

    async def __call__(self, scope, receive, send):
        if "session" not in scope:
            scope = dict(scope, session=_session(scope))
        return await self.inner(scope, receive, send)


def SessionAuthStack(inner):
    """Cookies → read-only session → `scope["user"]`, as AuthMiddlewareStack but for reading."""
    return CookieMiddleware(ReadOnlySessionMiddleware(AuthMiddleware(inner)))


class SessionAuthRouter:
    """``SessionAuthStack(URLRouter(routes))`` in one coroutine, for websocket_application().

    Each layer of that stack stays suspended, awaiting the next, for as long as the
    connection lasts, each with a copy of the scope: six coroutines and five dicts per idle
    connection. This fills in the same scope (cookies, the read-only session, the user,
    ``url_route``, ``path_remaining``) and awaits the route's consumer itself.
    """

    def __init__(self, routes) -> None:
        self.inner = URLRouter(routes)  # its patterns, made non-endpoint where nested
        self.auth = AuthMiddleware(None)

    async def __call__(self, scope, receive, send):
        scope = dict(scope)
        for name, value in scope.get("headers", ()):
            if name == b"cookie":
                scope["cookies"] = parse_cookie(value.decode("latin1"))
                break
        else:
            scope["cookies"] = {}
        if "session" not in scope:
            scope["session"] = _session(scope)
        self.auth.populate_scope(scope)
        await self.auth.resolve_scope(scope)
        path = scope["path"]
        root_path = scope.get("root_path", "")
        if root_path and not path.startswith(root_path):
            raise ValueError(f"No route found for path {path!r}.")
        path = path[len(root_path) :].lstrip("/")
        for route in self.inner.routes:
            try:
                match = route.pattern.match(path)
            except Resolver404:
                continue
            if match:
                remaining, args, kwargs = match
                scope["path_remaining"] = remaining
                scope["url_route"] = {"args": args, "kwargs": {**kwargs, **route.default_args}}
                app = route.callback
                consumer = getattr(app, "consumer_class", None)
                if consumer is not None:  # as_asgi()'s: one coroutine fewer
                    app = consumer(**app.consumer_initkwargs)
                return await app(scope, receive, send)
        raise ValueError(f"No route found for path {path!r}.")
