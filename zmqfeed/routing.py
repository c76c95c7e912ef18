"""WebSocket URL patterns, and the ready-made application for a site's asgi.py."""

from django.urls import path

from . import conf, embedded
from .consumer import FeedConsumer
from .daphne import eager_writes
from .sessions import SessionAuthStack

websocket_urlpatterns = [
    path("ws/zmqfeed/", FeedConsumer.as_asgi()),
    path("ws/zmqfeed/<slug:feed>/<slug:topic>/", FeedConsumer.as_asgi()),
]


def websocket_application():
    """Session auth + zmqfeed's routes; in embedded mode also starts the subscriber."""
    from channels.routing import URLRouter

    if conf.get()["EAGER_WRITES"]:
        eager_writes.install()
    embedded.start_with_server()
    return SessionAuthStack(URLRouter(websocket_urlpatterns))
