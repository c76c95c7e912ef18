"""Which Origin headers may open a WebSocket: Channels' own matching, our defaults."""

from __future__ import annotations

from urllib.parse import urlparse

from channels.security.websocket import OriginValidator
from django.conf import settings

from . import conf


def allowed_origins() -> list[str]:
    origins = conf.get()["ALLOWED_ORIGINS"]
    if origins is not None:
        return list(origins)
    hosts = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not hosts:
        hosts = [".localhost", "127.0.0.1", "[::1]"]
    return hosts


def origin_allowed(headers: list[tuple[bytes, bytes]], allowed: list[str]) -> bool:
    """A browser always sends Origin; a request without one is not a browser's (allowed)."""
    origin = next((v for k, v in headers if k == b"origin"), None)
    if origin is None:
        return True
    try:  # a malformed port raises inside Channels' matching too
        return OriginValidator(None, allowed).valid_origin(urlparse(origin.decode("latin1")))
    except ValueError:
        return False
