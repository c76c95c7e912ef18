from django.apps import AppConfig


class ZmqfeedConfig(AppConfig):
    name = "zmqfeed"
    verbose_name = "ZeroMQ feeds"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the system checks)
        from .daphne import install

        # Under `daphne project.asgi:application` and daphne's runserver the reactor is already
        # installed, whatever ASGI stack the site builds; elsewhere a no-op (zmqfeed.daphne).
        install()
