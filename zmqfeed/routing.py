"""WebSocket URL patterns, and the ready-made applications for a site's asgi.py."""

from django.urls import path

from . import embedded
from .consumer import FeedConsumer
from .sessions import SessionAuthRouter
from .sse import http_application

__all__ = ["http_application", "websocket_application", "websocket_urlpatterns"]

websocket_urlpatterns = [
    path("ws/zmqfeed/", FeedConsumer.as_asgi()),
    path("ws/zmqfeed/<slug:feed>/<slug:topic>/", FeedConsumer.as_asgi()),
]


def websocket_application():
    """Session auth + zmqfeed's routes (``SessionAuthStack(URLRouter(...))`` in one
    coroutine: SessionAuthRouter); in embedded mode also starts the subscriber.

    ``start_with_server`` also installs the daphne adapters, should ``ready()`` have run
    before the reactor was imported (``zmqfeed.daphne``).
    """
    embedded.start_with_server()
    return SessionAuthRouter(websocket_urlpatterns)
