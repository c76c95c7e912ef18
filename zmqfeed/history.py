"""Per-topic sequence numbers and recent messages, for `subscribed` replies and replay.

With an in-memory channel layer they stay in the process (the subscriber and the consumers
share them); with channels_redis they live in Redis, where every server process can read
what the one subscriber process wrote, and where a restarted subscriber continues the
numbering. ZMQFEED["HISTORY_BACKEND"] chooses otherwise (:func:`get_history`).
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections import deque
from itertools import islice, repeat
from typing import Protocol

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from . import conf
from .core.continuity import Kept, Numbering, Replay, capped, start
from .layers import layer_is_in_memory


class Fenced(Exception):
    """An append refused because the writer no longer holds its feed's lease."""


# (lease key, fencing token): an append is made only while the key still holds the token.
Fence = tuple[str, int]


class History(Protocol):
    async def latest(self, key: str) -> Numbering | None:
        """The topic's numbering, or None if this history has never heard of it."""

    async def append(self, batches: dict[str, Kept], fence: Fence | None = None) -> None:
        """Keep each topic's envelopes (none: only record where its numbering stands).

        A batch of another epoch than the one kept, or one that does not follow on from the
        latest seq (a switch-over skipped some), starts the topic's kept messages again. With
        a ``fence``, nothing is written (and :class:`Fenced` is raised) unless the lease
        still holds its token.
        """

    async def stamps(self, keys: list[str]) -> dict[str, float]:
        """When each topic's last batch was received (topics never written: absent): where a
        standby that takes over starts counting what nobody numbered."""

    async def replay(
        self,
        key: str,
        since: int | None,
        epoch: str | None = None,
        last: int = 0,
        max_age: float = 0,
    ) -> Replay:
        """What follows :func:`zmqfeed.core.continuity.start`, no older than ``max_age``
        seconds (0: any age)."""


def _fresh(entries: list[tuple[float, bytes]], max_age: float) -> list[tuple[float, bytes]]:
    if not max_age:
        return entries
    cutoff = time.time() - max_age
    for index, (ts, _) in enumerate(entries):
        if ts >= cutoff:
            return entries[index:]
    return []


class MemoryHistory:
    def __init__(self, size: int) -> None:
        self.size = size
        self._heads: dict[str, Numbering] = {}
        # Per topic, the kept envelopes and, beside them, their receive times: two deques of
        # one length, filled by C-level extends (a tuple per message cost 20 times more).
        self._recent: dict[str, tuple[deque[bytes], deque[float]]] = {}
        self._stamps: dict[str, float] = {}

    async def latest(self, key: str) -> Numbering | None:
        return self._heads.get(key)

    async def append(self, batches: dict[str, Kept], fence: Fence | None = None) -> None:
        # One process: no lease, nothing to fence.
        for key, kept in batches.items():
            head = self._heads.get(key)
            self._heads[key] = Numbering(kept.epoch, kept.last)
            keep = capped(kept.history, self.size)
            recent = self._recent.get(key)
            self._stamps[key] = kept.ts
            same = head is not None and head.epoch == kept.epoch and kept.first == head.seq + 1
            if recent is None or recent[0].maxlen != keep or not same:
                old = recent if same and recent else ((), ())
                recent = self._recent[key] = (deque(old[0], keep), deque(old[1], keep))
            if keep and kept.envelopes:
                envelopes = kept.envelopes[-keep:] if len(kept.envelopes) > keep else kept.envelopes
                recent[0].extend(envelopes)
                recent[1].extend(repeat(kept.ts, len(envelopes)))

    async def stamps(self, keys: list[str]) -> dict[str, float]:
        return {key: self._stamps[key] for key in keys if key in self._stamps}

    async def replay(
        self,
        key: str,
        since: int | None,
        epoch: str | None = None,
        last: int = 0,
        max_age: float = 0,
    ) -> Replay:
        head = self._heads.get(key) or Numbering("", 0)
        count = head.seq - start(since, epoch, head.epoch, head.seq, last)
        envelopes_kept, stamps = self._recent.get(key) or ((), ())
        count = min(count, len(envelopes_kept))
        entries: list[tuple[float, bytes]] = []
        if count > 0:
            skip = len(envelopes_kept) - count
            tail = zip(islice(stamps, skip, None), islice(envelopes_kept, skip, None), strict=True)
            entries = list(tail)
        envelopes = [envelope for _, envelope in _fresh(entries, max_age)]
        return Replay(head.seq, envelopes, head.seq - len(envelopes) + 1, head.epoch)


# KEYS[1]: the writer's lease (ARGV[1] its token, "" for none); then head and list per topic.
# The list holds one element per batch, "<first seq> <count> <receive time> " and the
# envelopes joined by NUL (no envelope holds one: JSON text escapes control characters),
# so that a batch costs Redis one argument and one list node, not one per message. The
# head keeps the numbering (epoch, seq), how many messages the list holds (kept, trimmed
# by whole batches to no fewer than `keep`, with the batches' sizes in "<list>:counts"),
# `keep` itself, and the last batch's receive time, which a standby that takes over
# counts from.
_APPEND = """
if ARGV[1] ~= '' and redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local a = 3
for i = 2, #KEYS, 2 do
  local epoch, keep, n = ARGV[a], tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  local head = redis.call('HMGET', KEYS[i], 'epoch', 'kept', 'seq')
  local kept = tonumber(head[2]) or 0
  local counts = KEYS[i + 1] .. ':counts'
  local follows = not head[3] or tonumber(head[3]) + 1 == tonumber(ARGV[a + 4])
  if head[1] ~= epoch or keep == 0 or not follows then
    redis.call('DEL', KEYS[i + 1], counts)
    kept = 0
  end
  if keep > 0 and n > 0 then
    redis.call('RPUSH', KEYS[i + 1], ARGV[a + 5])
    redis.call('RPUSH', counts, n)
    kept = kept + n
    while true do
      local count = tonumber(redis.call('LINDEX', counts, 0))
      if not count or kept - count < keep then break end
      redis.call('LPOP', KEYS[i + 1])
      redis.call('LPOP', counts)
      kept = kept - count
    end
  end
  redis.call('HSET', KEYS[i], 'epoch', epoch, 'seq', ARGV[a + 1], 'ts', ARGV[2],
             'kept', kept, 'keep', keep)
  a = a + 6
end
return 1
"""

_REPLAY = """
local head = redis.call('HMGET', KEYS[1], 'epoch', 'seq', 'keep')
return {head[1] or '', head[2] or '0', head[3] or '0', redis.call('LRANGE', KEYS[2], 0, -1)}
"""


def _batch_entry(first: int, envelopes: list[bytes], ts: float) -> bytes:
    return b"%d %d %.3f " % (first, len(envelopes), ts) + b"\x00".join(envelopes)


def _batch_entries(raw: bytes) -> list[tuple[int, float, bytes]]:
    """(seq, receive time, envelope) of one stored batch; [] for one that does not parse."""
    try:
        first, count, stamp, body = raw.split(b" ", 3)
        envelopes = body.split(b"\x00")
        if len(envelopes) != int(count):
            return []
        seq, ts = int(first), float(stamp)
    except ValueError:
        return []
    return [(seq + index, ts, envelope) for index, envelope in enumerate(envelopes)]


class RedisHistory:
    """Per topic, a hash ``<prefix>:head:<key>`` (the numbering and what is kept) and a
    list ``<prefix>:batches:<key>`` of its last batches; written by one script per batch,
    which checks the writer's lease too, so that a reader never sees a seq without its
    messages and a writer that lost its lease writes nothing."""

    def __init__(self, url: str, size: int, prefix: str = "zmqfeed") -> None:
        import redis.asyncio as redis

        self.size = size
        self.prefix = prefix
        self._redis = redis.Redis.from_url(url)
        self._append = self._redis.register_script(_APPEND)
        self._replay = self._redis.register_script(_REPLAY)

    def _keys(self, key: str) -> tuple[str, str]:
        return f"{self.prefix}:head:{key}", f"{self.prefix}:batches:{key}"

    async def latest(self, key: str) -> Numbering | None:
        epoch, seq = await self._redis.hmget(self._keys(key)[0], ["epoch", "seq"])  # type: ignore[misc]
        if epoch is None or seq is None:
            return None
        return Numbering(epoch.decode(), int(seq))

    async def append(self, batches: dict[str, Kept], fence: Fence | None = None) -> None:
        if not batches:
            return
        lease, token = fence or (f"{self.prefix}:no-lease", "")
        ts = max(kept.ts for kept in batches.values())
        keys: list[str] = [lease]
        args: list[bytes | str | int] = [token, b"%.6f" % ts]
        for key, kept in batches.items():
            keep = capped(kept.history, self.size)
            envelopes = kept.envelopes[-keep:] if keep else []
            first = kept.last - len(envelopes) + 1
            keys.extend(self._keys(key))
            args += [kept.epoch, kept.last, keep, len(envelopes), kept.first]
            args.append(_batch_entry(first, envelopes, kept.ts) if envelopes else b"")
        if not await self._append(keys=keys, args=args):
            raise Fenced(f"{lease} no longer holds token {token}")

    async def stamps(self, keys: list[str]) -> dict[str, float]:
        """When each topic's last batch was received (topics never written: absent)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.hget(self._keys(key)[0], "ts")
            values = await pipe.execute()
        return {key: float(v) for key, v in zip(keys, values, strict=True) if v is not None}

    async def replay(
        self,
        key: str,
        since: int | None,
        epoch: str | None = None,
        last: int = 0,
        max_age: float = 0,
    ) -> Replay:
        current, latest_raw, keep_raw, raw = await self._replay(keys=list(self._keys(key)))
        current = current.decode() if isinstance(current, bytes) else str(current or "")
        latest, keep = int(latest_raw), int(keep_raw)
        begin = start(since, epoch, current, latest, last)
        # The messages after `begin`, newest first, as long as their seqs follow on to the
        # latest and no more than the topic keeps.
        kept: list[tuple[float, bytes]] = []
        expected = latest
        for batch in reversed(raw):
            for seq, ts, envelope in reversed(_batch_entries(batch)):
                if seq != expected or seq <= begin or len(kept) >= keep:
                    break
                kept.append((ts, envelope))
                expected -= 1
            else:
                continue
            break
        kept.reverse()
        envelopes = [envelope for _, envelope in _fresh(kept, max_age)]
        return Replay(latest, envelopes, latest - len(envelopes) + 1, current)

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
        name
        for name in ("latest", "append", "replay", "stamps")
        if not callable(getattr(cls, name, None))
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
