import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "othersite.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.urls import path  # noqa: E402
from othersite.consumers import EchoConsumer  # noqa: E402

from zmqfeed.routing import http_application, websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": http_application(django_asgi_app),
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(
                URLRouter([path("ws/echo/", EchoConsumer.as_asgi()), *websocket_urlpatterns])
            )
        ),
    }
)
