"""Per-topic sequence numbers and recent messages, for `subscribed` replies and replay.

Embedded mode keeps them in the process (the subscriber and the consumers share it);
scaled mode keeps them in Redis, where every server process can read what the one
subscriber process wrote, and where a restarted subscriber continues the numbering.
"""

from __future__ import annotations

from collections import deque
from typing import Protocol

from .core.session import Replay


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


_histories: dict[object, History] = {}


def get_history() -> History:
    """This process's history: in memory when embedded, else in Redis (a client per loop)."""
    import asyncio

    from . import conf, embedded

    url = None if embedded.layer_is_local() else redis_url()
    owner = asyncio.get_running_loop() if url else None
    history = _histories.get(owner)
    if history is None:
        size = conf.get()["HISTORY_SIZE"]
        history = RedisHistory(url, size) if url else MemoryHistory(size)
        _histories[owner] = history
    return history


def redis_url() -> str | None:
    """ZMQFEED['REDIS_URL'], else the first host of a channels_redis layer given as a URL."""
    from django.conf import settings

    from . import conf

    url = conf.get()["REDIS_URL"]
    if url:
        return url
    layer = (getattr(settings, "CHANNEL_LAYERS", {}) or {}).get("default", {})
    hosts = (layer.get("CONFIG") or {}).get("hosts") or []
    if hosts and isinstance(hosts[0], str):
        return hosts[0]
    if hosts and isinstance(hosts[0], dict) and "address" in hosts[0]:
        return hosts[0]["address"]
    return None
