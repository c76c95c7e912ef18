"""Per-topic sequence numbers and recent messages, for `subscribed` replies and replay.

With an in-memory channel layer they stay in the process (the subscriber and the consumers
share them); with channels_redis they live in Redis, where every server process can read
what the one subscriber process wrote, and where a restarted subscriber continues the
numbering. ZMQFEED["HISTORY_BACKEND"] chooses otherwise (:func:`get_history`).
"""

from __future__ import annotations

import asyncio
import inspect
from collections import deque
from typing import Protocol

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from . import conf
from .core.session import Replay
from .layers import layer_is_in_memory


class History(Protocol):
    async def latest(self, key: str) -> int: ...

    async def append(self, batches: dict[str, tuple[int, list[bytes]]]) -> None:
        """``batches``: topic key → (seq of the first envelope, envelopes)."""

    async def replay(self, key: str, since: int | None) -> Replay: ...


class MemoryHistory:
    def __init__(self, size: int) -> None:
        self.size = size
        self._latest: dict[str, int] = {}
        self._recent: dict[str, deque[bytes]] = {}

    async def latest(self, key: str) -> int:
        return self._latest.get(key, 0)

    async def append(self, batches: dict[str, tuple[int, list[bytes]]]) -> None:
        for key, (first, envelopes) in batches.items():
            self._latest[key] = first + len(envelopes) - 1
            if self.size:
                recent = self._recent.get(key)
                if recent is None:
                    recent = self._recent[key] = deque(maxlen=self.size)
                recent.extend(envelopes)

    async def replay(self, key: str, since: int | None) -> Replay:
        latest = self._latest.get(key, 0)
        if since is None or since >= latest:
            return Replay(latest, [], latest + 1)
        recent = self._recent.get(key, ())
        count = min(latest - since, len(recent))
        envelopes = list(recent)[len(recent) - count :] if count else []
        return Replay(latest, envelopes, latest - count + 1)


_REPLAY = """
local latest = tonumber(redis.call('GET', KEYS[1]) or '0')
local n = latest - tonumber(ARGV[1])
if n <= 0 then return {latest, {}} end
local len = redis.call('LLEN', KEYS[2])
if n > len then n = len end
if n == 0 then return {latest, {}} end
return {latest, redis.call('LRANGE', KEYS[2], -n, -1)}
"""


class RedisHistory:
    def __init__(self, url: str, size: int, prefix: str = "zmqfeed") -> None:
        import redis.asyncio as redis

        self.size = size
        self.prefix = prefix
        self._redis = redis.Redis.from_url(url)
        self._replay = self._redis.register_script(_REPLAY)

    def _keys(self, key: str) -> tuple[str, str]:
        return f"{self.prefix}:seq:{key}", f"{self.prefix}:recent:{key}"

    async def latest(self, key: str) -> int:
        value = await self._redis.get(self._keys(key)[0])
        return int(value or 0)

    async def append(self, batches: dict[str, tuple[int, list[bytes]]]) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            for key, (first, envelopes) in batches.items():
                if not envelopes:
                    continue
                seq_key, recent_key = self._keys(key)
                pipe.set(seq_key, first + len(envelopes) - 1)
                if self.size:
                    pipe.rpush(recent_key, *envelopes[-self.size :])
                    pipe.ltrim(recent_key, -self.size, -1)
            await pipe.execute()

    async def replay(self, key: str, since: int | None) -> Replay:
        if since is None:
            latest = await self.latest(key)
            return Replay(latest, [], latest + 1)
        latest, envelopes = await self._replay(keys=list(self._keys(key)), args=[since])
        latest = int(latest)
        return Replay(latest, list(envelopes), latest - len(envelopes) + 1)

    async def close(self) -> None:
        await self._redis.aclose()


MEMORY = "zmqfeed.history.MemoryHistory"
REDIS = "zmqfeed.history.RedisHistory"
_histories: dict[tuple[object, ...], History] = {}


def backend_path() -> str:
    """ZMQFEED['HISTORY_BACKEND'], or for None the store that suits the default layer.

    An in-memory layer means one process, so the history lives there too; any other layer
    (channels_redis) means several processes, which must share seqs and history in Redis.
    """
    setting = conf.get()["HISTORY_BACKEND"]
    if setting is not None:
        return setting
    return MEMORY if layer_is_in_memory() else REDIS


def backend_class(path: str) -> type:
    """The history class a dotted path names; ImproperlyConfigured saying what is wrong."""
    if not isinstance(path, str):
        raise ImproperlyConfigured(f"must be a dotted path (a string), not {path!r}")
    try:
        cls = import_string(path)
    except ImportError as exc:
        raise ImproperlyConfigured(f"{path!r} does not import: {exc}") from None
    if not isinstance(cls, type):
        raise ImproperlyConfigured(f"{path!r} is not a class but {type(cls).__name__} {cls!r}")
    missing = [
        name for name in ("latest", "append", "replay") if not callable(getattr(cls, name, None))
    ]
    if missing:
        raise ImproperlyConfigured(
            f"{path!r} is not a history: it has no {', '.join(missing)} "
            "(see zmqfeed.history.History)"
        )
    return cls


def backend_arguments(cls: type) -> dict[str, object]:
    """What a history class is built with: ``size=``, and ``url=`` when it takes one."""
    arguments: dict[str, object] = {"size": conf.get()["HISTORY_SIZE"]}
    if "url" in inspect.signature(cls).parameters:
        url = redis_url()
        if not url:
            raise ImproperlyConfigured(
                f"{cls.__module__}.{cls.__qualname__} needs a Redis URL, and neither "
                "ZMQFEED['REDIS_URL'] nor CHANNEL_LAYERS['default']['CONFIG']['hosts'] gives one"
            )
        arguments["url"] = url
    return arguments


_chosen: tuple[dict, type, dict[str, object]] | None = None


def _backend() -> tuple[type, dict[str, object]]:
    """The class and its arguments, chosen again only when the settings change.

    conf.get() returns a new dict after every change to ZMQFEED or CHANNEL_LAYERS, so the
    dict it was chosen from tells whether the choice still holds (get_history runs per
    subscribe; choosing costs an import lookup and a signature).
    """
    global _chosen
    values = conf.get()
    if _chosen is None or _chosen[0] is not values:
        cls = backend_class(backend_path())
        _chosen = (values, cls, backend_arguments(cls))
    return _chosen[1], _chosen[2]


def get_history() -> History:
    """This process's history, of the class ZMQFEED['HISTORY_BACKEND'] names (README).

    Built with ``size=ZMQFEED['HISTORY_SIZE']`` and, if its constructor has a ``url``
    parameter, ``url=`` :func:`redis_url`. MemoryHistory (and subclasses) is one per process,
    shared by the subscriber and the consumers; any other class is one per event loop,
    because a network client such as redis.asyncio's belongs to the loop it was made on.
    """
    cls, arguments = _backend()
    owner = None if issubclass(cls, MemoryHistory) else asyncio.get_running_loop()
    key = (cls, tuple(sorted(arguments.items())), owner)
    history = _histories.get(key)
    if history is None:
        history = _histories[key] = cls(**arguments)
    return history


def redis_url() -> str | None:
    """ZMQFEED['REDIS_URL'], else the first host of a channels_redis layer.

    A host may be given as a URL, as ``{"address": URL}`` or as a ``(host, port)`` pair.
    """
    url = conf.get()["REDIS_URL"]
    if url:
        return url
    layer = (getattr(settings, "CHANNEL_LAYERS", {}) or {}).get("default", {})
    hosts = (layer.get("CONFIG") or {}).get("hosts") or []
    if not hosts:
        return None
    host = hosts[0]
    if isinstance(host, str):
        return host
    if isinstance(host, dict) and isinstance(host.get("address"), str):
        return host["address"]
    if isinstance(host, (tuple, list)) and len(host) == 2:
        return f"redis://{host[0]}:{host[1]}"
    return None
