"""Leases in Redis: which of several `zmq_subscribe` processes numbers each feed.

Per feed, ``<prefix>:lease:<feed>`` holds the fencing token of the holder, with a TTL it
renews; ``<prefix>:fence:<feed>`` counts acquisitions, so every new holder has a larger
token than any before; ``<prefix>:holder:<feed>`` says who holds it (host, pid, since when),
for the admin and healthz. The history's append checks the token in the same script that
writes (:class:`zmqfeed.history.RedisHistory`), so a holder that lost its lease (paused,
cut off) cannot write a number after its successor took over, and stops when it tries.
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass
from typing import Any

_ACQUIRE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], token, 'PX', ARGV[1])
local holder = {host = ARGV[2], pid = tonumber(ARGV[3]), since = tonumber(ARGV[4]), token = token}
redis.call('SET', KEYS[3], cjson.encode(holder), 'PX', ARGV[1])
return token
"""

_RENEW = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return 1
"""

# Take a lease from a holder known to be dead (its token still in the lease).
_BREAK = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1], KEYS[2])
return 1
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1], KEYS[2])
return 1
"""


@dataclass(frozen=True)
class Holder:
    """Who holds a feed's lease: for people (the admin, healthz), not for fencing."""

    host: str
    pid: int
    since: float
    token: int

    @classmethod
    def parse(cls, raw: bytes | str | None) -> Holder | None:
        if not raw:
            return None
        try:
            obj = json.loads(raw)
            return cls(str(obj["host"]), int(obj["pid"]), float(obj["since"]), int(obj["token"]))
        except (ValueError, KeyError, TypeError):
            return None

    def as_dict(self) -> dict[str, Any]:
        return {"host": self.host, "pid": self.pid, "since": self.since, "token": self.token}


PREFIX = "zmqfeed"  # of the keys, as the history's


class Leases:
    def __init__(self, url: str, ttl: float, prefix: str = PREFIX) -> None:
        import redis.asyncio as redis

        self.ttl_ms = max(1, int(ttl * 1000))
        self.prefix = prefix
        self._redis = redis.Redis.from_url(url)
        self._acquire = self._redis.register_script(_ACQUIRE)
        self._renew = self._redis.register_script(_RENEW)
        self._release = self._redis.register_script(_RELEASE)
        self._break = self._redis.register_script(_BREAK)

    def key(self, feed: str) -> str:
        return _key(self.prefix, "lease", feed)

    def _keys(self, feed: str) -> list[str]:
        return [_key(self.prefix, kind, feed) for kind in ("lease", "fence", "holder")]

    async def acquire(self, feed: str) -> int | None:
        """The new fencing token, or None when another process holds the feed.

        A holder that ran on this host and whose process is gone (a subscriber killed and
        restarted) is not waited for: its lease is broken at once. Anywhere else, or while
        its pid lives, the lease must run out.
        """
        keys = self._keys(feed)
        host, pid = socket.gethostname(), os.getpid()
        args: list[int | float | str] = [self.ttl_ms, host, pid, time.time()]
        token = int(await self._acquire(keys=keys, args=args))
        if token:
            return token
        holder = await self.holder(feed)
        if holder is None or holder.host != host or holder.pid == pid or _alive(holder.pid):
            return None
        if await self._break(keys=[keys[0], keys[2]], args=[holder.token]):
            token = int(await self._acquire(keys=keys, args=args))
        return token or None

    async def renew(self, feed: str, token: int) -> bool:
        """Whether the lease is still ours (and now good for another TTL)."""
        keys = self._keys(feed)
        return bool(await self._renew(keys=[keys[0], keys[2]], args=[token, self.ttl_ms]))

    async def release(self, feed: str, token: int) -> None:
        keys = self._keys(feed)
        await self._release(keys=[keys[0], keys[2]], args=[token])

    async def holder(self, feed: str) -> Holder | None:
        return Holder.parse(await self._redis.get(self._keys(feed)[2]))

    async def close(self) -> None:
        await self._redis.aclose()


def _key(prefix: str, kind: str, feed: str) -> str:
    return f"{prefix}:{kind}:{feed}"


def url() -> str | None:
    """The Redis that holds this site's leases, or None when it runs none: embedded mode
    (the server process numbers every feed itself), another history, or LEASE_TTL 0."""
    from . import conf
    from .history import REDIS, backend_path, redis_url

    if not conf.get()["LEASE_TTL"] or backend_path() != REDIS:
        return None
    return redis_url()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def holders(slugs: list[str]) -> dict[str, Holder | None] | None:
    """Who holds each feed, read synchronously (the admin, healthz); None when this site
    runs no leases (embedded mode: the server process numbers every feed itself).

    Raises what redis raises when Redis cannot be reached.
    """
    where = url()
    if where is None:
        return None
    if not slugs:
        return {}
    import redis

    client = redis.Redis.from_url(where, socket_timeout=1.0, socket_connect_timeout=1.0)
    try:
        keys = [_key(PREFIX, "holder", slug) for slug in slugs]
        values: list[Any] = client.mget(keys)  # type: ignore[assignment]
    finally:
        client.close()
    return {slug: Holder.parse(value) for slug, value in zip(slugs, values, strict=True)}
