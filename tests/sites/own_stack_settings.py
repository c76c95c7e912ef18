"""The demo's settings with the own-stack site as ASGI_APPLICATION (for runserver)."""

from project.settings import *  # noqa: F403

ASGI_APPLICATION = "tests.sites.own_stack_asgi.application"
