from django.apps import AppConfig


class ZmqfeedConfig(AppConfig):
    name = "zmqfeed"
    verbose_name = "ZeroMQ feeds"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the system checks)
