"""ASGI entry point of the naive gateway; the subscriber starts with daphne's reactor."""

import asyncio
import os
import sys

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.naive.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.urls import path  # noqa: E402

from . import subscriber  # noqa: E402
from .consumers import FeedConsumer  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(
            URLRouter([path("ws/zmqfeed/<slug:feed>/<slug:topic>/", FeedConsumer.as_asgi())])
        ),
    }
)

_tasks: set = set()


def _start() -> None:
    task = asyncio.ensure_future(subscriber.run())
    _tasks.add(task)


# Daphne imports this module with its asyncio reactor installed: start once the loop turns.
_reactor = sys.modules.get("twisted.internet.reactor")
if _reactor is not None:
    _reactor.callLater(0, _start)
