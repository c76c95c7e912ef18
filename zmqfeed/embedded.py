"""Embedded mode: the subscriber inside the ASGI server process, from the server's start.

Daphne has no ASGI lifespan, but it runs Twisted's asyncio reactor, and both
`daphne project.asgi:application` and `runserver` import the ASGI application after the
reactor is installed and before it runs: :func:`start_with_server` schedules the start
on the reactor (``zmqfeed.daphne.call_soon``), which runs it as soon as its asyncio loop
turns. Under other servers the first WebSocket connection starts it (:func:`ensure_started`).
"""

from __future__ import annotations

import asyncio
import logging

from channels.layers import get_channel_layer

from . import conf, daphne
from .layers import layer_is_in_memory

log = logging.getLogger("zmqfeed.embedded")

_task: asyncio.Task | None = None


def enabled() -> bool:
    setting = conf.get()["EMBEDDED"]
    return layer_is_in_memory() if setting is None else bool(setting)


def ensure_started() -> None:
    """Start the embedded subscriber on the running loop, once per process."""
    global _task
    if _task is not None and not _task.done():
        return
    if not enabled():
        return
    from .history import get_history
    from .subscriber import Subscriber
    from .watch import get_watcher

    subscriber = Subscriber(get_channel_layer(), get_history(), get_watcher())
    _task = asyncio.ensure_future(subscriber.run())
    _task.add_done_callback(_report)
    log.info("embedded subscriber started")


def _report(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("embedded subscriber stopped", exc_info=task.exception())


def running() -> bool:
    return _task is not None and not _task.done()


def start_with_server() -> None:
    """Under daphne (and runserver), start with the server rather than the first client.

    The server is known to run here, so the daphne adapters are installed too (once).
    """
    if not daphne.server_is_twisted():
        return
    daphne.install()
    if enabled():
        daphne.call_soon(ensure_started)
