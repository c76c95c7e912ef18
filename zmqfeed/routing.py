"""WebSocket URL patterns, and the ready-made application for a site's asgi.py."""

from channels.auth import AuthMiddlewareStack
from django.urls import path

from . import embedded
from .consumer import FeedConsumer

websocket_urlpatterns = [
    path("ws/zmqfeed/", FeedConsumer.as_asgi()),
    path("ws/zmqfeed/<slug:feed>/<slug:topic>/", FeedConsumer.as_asgi()),
]


def websocket_application():
    """Session auth + zmqfeed's routes; in embedded mode also starts the subscriber."""
    from channels.routing import URLRouter

    embedded.start_with_server()
    return AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
