"""Channels' in-memory layer, with a group send whose cost does not grow with the groups.

The stock layer scans every channel and every group for expired entries on each send to a
group and on each receive, starts a task per member for each group send, and deep-copies
every message. With a hundred topics (a hundred groups) that scan was a fifth of an
embedded server's CPU. This layer behaves the same, but cleans at most once per
``CLEAN_INTERVAL``, sends to members in turn, and copies a message whose values are all
immutable with ``dict()``. Use it as ``BACKEND`` wherever the stock one would do.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from copy import deepcopy

from channels.exceptions import ChannelFull
from channels.layers import InMemoryChannelLayer as StockInMemoryChannelLayer
from django.conf import settings
from django.utils.module_loading import import_string

CLEAN_INTERVAL = 1.0  # seconds: entries live at most this much past their expiry
_IMMUTABLE = (str, bytes, int, float, bool, type(None))


def copy_message(message: dict) -> dict:
    """A copy the receiver may change freely: shallow when every value is immutable."""
    for value in message.values():
        if not isinstance(value, _IMMUTABLE):
            return deepcopy(message)
    return dict(message)


class InMemoryChannelLayer(StockInMemoryChannelLayer):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._next_clean = 0.0

    def _clean_expired(self) -> None:
        now = time.monotonic()
        if now >= self._next_clean:
            self._next_clean = now + CLEAN_INTERVAL
            super()._clean_expired()

    async def send(self, channel: str, message: dict) -> None:
        # The stock send, with copy_message in place of deepcopy.
        assert isinstance(message, dict), "message is not a dict"
        self.require_valid_channel_name(channel)
        assert "__asgi_channel__" not in message
        queue = self.channels.get(channel)
        if queue is None:
            queue = self.channels[channel] = asyncio.Queue(maxsize=self.get_capacity(channel))
        try:
            queue.put_nowait((time.time() + self.expiry, copy_message(message)))
        except asyncio.QueueFull:
            raise ChannelFull(channel) from None

    async def group_send(self, group: str, message: dict) -> None:
        assert isinstance(message, dict), "Message is not a dict"
        self.require_valid_group_name(group)
        self._clean_expired()
        for channel in list(self.groups.get(group, ())):
            with contextlib.suppress(ChannelFull):  # as the stock layer: a full member misses it
                await self.send(channel, message)


def layer_is_in_memory() -> bool:
    """Whether CHANNEL_LAYERS['default'] is Channels' InMemoryChannelLayer or a subclass.

    Read from the setting, like Channels' own BACKEND, so nothing is built to find out.
    """
    layer = (getattr(settings, "CHANNEL_LAYERS", None) or {}).get("default") or {}
    backend = layer.get("BACKEND")
    if not backend:
        return True  # no layer to scale over (and checks report the missing layer: E004)
    try:
        cls = import_string(backend) if isinstance(backend, str) else backend
    except ImportError:
        return False  # Channels reports it when it builds the layer
    return isinstance(cls, type) and issubclass(cls, StockInMemoryChannelLayer)
