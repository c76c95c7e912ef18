"""Each process's status snapshot, written every second; read by the status page and admin.

A :class:`Reporter` per event loop asks what this process holds (its subscriber's feeds,
its Fanout's subscriptions) once a second, sets the ``zmqfeed_feed_state`` gauges, and
keeps the snapshot where pages can read it: in memory (one process: embedded mode), and,
when the channel layer is Redis (scaled mode), in Redis too, as
``<prefix>:status:<process>`` with a TTL, listed in the sorted set ``<prefix>:statuses`` by
time. A process that stops deletes its own; one that dies is gone within ``TTL``.

Pages read synchronously (:func:`snapshots`, :func:`overview`): the admin and the views
are sync Django, run off the event loop. The loop only ever writes, with redis.asyncio.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
import uuid
from typing import Any, Protocol

from . import conf, metrics
from .core import feedstate
from .core.catalog import Catalog
from .core.rates import LogThrottle
from .core.status import overview as build_overview

log = logging.getLogger("zmqfeed.status")

INTERVAL = 1.0  # seconds between snapshots
TTL = 5.0  # seconds a snapshot stays in Redis without being written again
PREFIX = "zmqfeed"  # of the keys, as the history's and the leases'


class FeedSource(Protocol):
    """A subscriber: the report of each feed it reads (:func:`feed_report`'s shape)."""

    def feed_status(self, now: float) -> dict[str, dict[str, Any]]: ...


class SubscriptionSource(Protocol):
    """A Fanout: subscriptions of this process's clients, per topic key (feed/topic)."""

    def subscription_counts(self) -> dict[str, int]: ...


def feed_report(
    machine: feedstate.FeedState | None, role: str, now: float, problem: str = ""
) -> dict[str, Any]:
    """One feed's entry in a snapshot: its machine's snapshot, or (no socket) the problem."""
    if machine is not None:
        report = machine.snapshot(now)
    else:
        report = feedstate.idle_snapshot(
            feedstate.ERROR if problem else feedstate.SILENT,
            problem or "standing by: a bound feed binds once it holds the lease",
        )
    report["role"] = role
    return report


def _key(prefix: str, name: str) -> str:
    return f"{prefix}:{name}"


def shared_url() -> str | None:
    """The Redis that holds every process's snapshot, or None: one process (embedded)."""
    from .history import redis_url
    from .layers import layer_is_in_memory

    return None if layer_is_in_memory() else redis_url()


_local: dict[str, dict[str, Any]] = {}  # this process's snapshots, by reporter


class Reporter:
    def __init__(self, url: str | None, prefix: str = PREFIX) -> None:
        host, pid = socket.gethostname(), os.getpid()
        self.process = f"{host}:{pid}"
        self.id = f"{self.process}:{uuid.uuid4().hex[:6]}"
        self.feeds: set[FeedSource] = set()
        self.fanouts: set[SubscriptionSource] = set()
        self.url, self.prefix = url, prefix
        self._redis: Any = None
        self._task: asyncio.Task | None = None
        self._gauged: set[str] = set()
        self._throttle = LogThrottle(conf.get()["LOG_INTERVAL"])

    def add(self, source: FeedSource | SubscriptionSource, feeds: bool) -> None:
        (self.feeds if feeds else self.fanouts).add(source)  # type: ignore[arg-type]
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._run())

    def discard(self, source: Any) -> None:
        self.feeds.discard(source)
        self.fanouts.discard(source)

    def snapshot(self) -> dict[str, Any]:
        now = time.monotonic()
        feeds: dict[str, dict[str, Any]] = {}
        for source in list(self.feeds):
            feeds.update(source.feed_status(now))
        subscriptions: dict[str, int] = {}
        for fanout in list(self.fanouts):
            for key, count in fanout.subscription_counts().items():
                subscriptions[key] = subscriptions.get(key, 0) + count
        kind = ", ".join(
            k for k, has in (("server", self.fanouts), ("subscriber", self.feeds)) if has
        )
        return {
            "process": self.process,
            "kind": kind or "idle",
            "at": time.time(),
            "feeds": feeds,
            "subscriptions": subscriptions,
        }

    def gauge(self, feeds: dict[str, dict[str, Any]]) -> None:
        """``zmqfeed_feed_state``: 1 for each feed's state, 0 for the others; feeds this
        process no longer reads leave the gauge."""
        for slug, report in feeds.items():
            for state, value in feedstate.gauge_values(report["state"]):
                metrics.FEED_STATE.labels(slug, state).set(value)
        for slug in self._gauged - set(feeds):
            for state in feedstate.STATES:
                with contextlib.suppress(KeyError):
                    metrics.FEED_STATE.remove(slug, state)
        self._gauged = set(feeds)

    async def tick(self) -> None:
        snap = self.snapshot()
        self.gauge(snap["feeds"])
        _local[self.id] = snap
        if self.url:
            try:
                await self._write(snap)
            except Exception as exc:  # Redis away: the page says so; this process goes on
                if self._throttle.ready("redis") is not None:
                    log.warning("cannot write this process's status to Redis: %s", exc)

    async def _write(self, snap: dict[str, Any]) -> None:
        if self._redis is None:
            import redis.asyncio as redis

            assert self.url is not None
            self._redis = redis.Redis.from_url(self.url)
        key = _key(self.prefix, f"status:{self.id}")
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(key, json.dumps(snap), px=int(TTL * 1000))
            pipe.zadd(_key(self.prefix, "statuses"), {key: snap["at"]})
            await pipe.execute()

    async def _run(self) -> None:
        try:
            while self.feeds or self.fanouts:
                await self.tick()
                await asyncio.sleep(INTERVAL)
        finally:
            _local.pop(self.id, None)
            self.gauge({})
            if self._redis is not None:
                with contextlib.suppress(Exception):
                    key = _key(self.prefix, f"status:{self.id}")
                    await self._redis.delete(key)
                    await self._redis.zrem(_key(self.prefix, "statuses"), key)
                with contextlib.suppress(Exception):
                    await self._redis.aclose()
                self._redis = None


_reporters: dict[asyncio.AbstractEventLoop, Reporter] = {}


def reporter() -> Reporter:
    """The running loop's reporter."""
    loop = asyncio.get_running_loop()
    found = _reporters.get(loop)
    if found is None:
        found = _reporters[loop] = Reporter(shared_url())
    return found


# Reading (sync: views, admin)


def snapshots() -> tuple[list[dict[str, Any]], str]:
    """Every process's latest snapshot, and what went wrong reading them ("" if nothing).

    Scaled mode reads Redis (where this process's own snapshot is too); embedded mode,
    this process's memory.
    """
    url = shared_url()
    if url is None:
        return list(_local.values()), ""
    import redis

    client = redis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
    index = _key(PREFIX, "statuses")
    try:
        with client.pipeline(transaction=False) as pipe:
            pipe.zremrangebyscore(index, "-inf", time.time() - TTL)
            pipe.zrange(index, 0, -1)
            _, keys = pipe.execute()
        values = client.mget(keys) if keys else []
    except Exception as exc:  # Redis away: the page says so
        return [], f"Redis: {type(exc).__name__}: {exc}"
    finally:
        client.close()
    found = []
    for raw in values:  # type: ignore[union-attr]
        if raw:
            with contextlib.suppress(ValueError):
                found.append(json.loads(raw))
    return found, ""


def overview(catalog: Catalog | None = None) -> dict[str, Any]:
    """The status page's body (status.json): every feed of the catalog, as reported."""
    from . import lease
    from .models import load_catalog

    catalog = catalog if catalog is not None else load_catalog()
    snaps, problem = snapshots()
    problems = [problem] if problem else []
    holders: dict[str, Any] | None = None
    try:
        held = lease.holders([f.slug for f in catalog.feeds if f.enabled])
    except Exception as exc:  # Redis away
        problems.append(f"leases: Redis: {type(exc).__name__}: {exc}")
    else:
        if held is not None:
            holders = {slug: h.as_dict() if h else None for slug, h in held.items()}
    scaled = shared_url() is not None
    unread = (
        "no zmq_subscribe process reports this feed: is one running (for this feed)?"
        if scaled
        else "this server process does not read it (yet): see the server log"
    )
    body = build_overview(catalog, snaps, time.time(), holders, unread)
    body.update(
        mode="scaled" if scaled else "embedded",
        leases=holders is not None,
        silent_after=conf.get()["SILENT_AFTER"],
        problems=problems,
    )
    return body
