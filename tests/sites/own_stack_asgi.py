"""A site that builds its own ASGI stack around zmqfeed's routes, not websocket_application().

Nothing here calls into zmqfeed's daphne adapters: under daphne they must come from
``ZmqfeedConfig.ready()`` alone.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
django_asgi_app = get_asgi_application()  # before anything that imports models

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from zmqfeed.routing import websocket_urlpatterns  # noqa: E402
from zmqfeed.sessions import SessionAuthStack  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(
            SessionAuthStack(URLRouter(websocket_urlpatterns))
        ),
    }
)
