"""The status page's body: every process's snapshot merged, feed by feed, with the catalog.

Each process that reads feeds or serves clients reports a snapshot (``zmqfeed.status``):
its feeds' states (:mod:`zmqfeed.core.feedstate`) and its clients' subscriptions per topic.
In embedded mode that is one process; in scaled mode every ``zmq_subscribe`` and every
server writes its own to Redis. Here they become one answer: per feed the report of the
process that numbers it (a standby's only when no other reports it), subscriptions summed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .catalog import Catalog
from .feedstate import ERROR, idle_snapshot

ACTIVE = "active"  # the process numbers and sends the feed (the lease holder, or the only one)
STANDBY = "standby"  # reads (a connect feed) or waits (a bound one), ready to take over
DISABLED = "disabled"  # not a socket state: the feed is switched off, so nothing reads it


def topic_key(feed: str, topic: str) -> str:
    return f"{feed}/{topic}"


def _better(new: Mapping[str, Any], old: Mapping[str, Any] | None) -> bool:
    """Whether ``new`` says more about its feed than ``old``: active over standby, then the
    more recent."""
    if old is None:
        return True
    if (new["role"] == ACTIVE) != (old["role"] == ACTIVE):
        return new["role"] == ACTIVE
    return bool(new["at"] >= old["at"])


def combine(
    snapshots: Iterable[Mapping[str, Any]],
) -> tuple[dict[str, dict[str, Any]], dict[str, int], list[dict[str, Any]]]:
    """(feed -> the report to show, with its process and ``at``; topic key -> subscriptions
    in every process; the processes)."""
    feeds: dict[str, dict[str, Any]] = {}
    standbys: dict[str, int] = {}
    subscriptions: dict[str, int] = {}
    processes = []
    for snap in snapshots:
        for slug, report in snap.get("feeds", {}).items():
            entry = {**report, "process": snap["process"], "at": snap["at"]}
            if report["role"] == STANDBY:
                standbys[slug] = standbys.get(slug, 0) + 1
            if _better(entry, feeds.get(slug)):
                feeds[slug] = entry
        for key, count in snap.get("subscriptions", {}).items():
            subscriptions[key] = subscriptions.get(key, 0) + count
        processes.append(
            {
                "process": snap["process"],
                "kind": snap["kind"],
                "at": snap["at"],
                "feeds": len(snap.get("feeds", {})),
                "subscriptions": sum(snap.get("subscriptions", {}).values()),
            }
        )
    for slug, entry in feeds.items():
        entry["standbys"] = standbys.get(slug, 0) - (entry["role"] == STANDBY)
    processes.sort(key=lambda p: (p["kind"], p["process"]))
    return feeds, subscriptions, processes


def overview(
    catalog: Catalog,
    snapshots: Iterable[Mapping[str, Any]],
    now: float,
    holders: Mapping[str, Mapping[str, Any] | None] | None = None,
    unread: str = "no process reads this feed",
) -> dict[str, Any]:
    """The status of every feed of the catalog, at wall-clock time ``now``.

    ``holders``: each feed's lease holder (None: this site runs no leases). ``unread``: what
    an enabled feed with topics that no process reports is told (where to look).
    """
    reports, subscriptions, processes = combine(snapshots)
    feeds = []
    for feed in catalog.feeds:
        topics = [
            {
                "slug": t.slug,
                "name": t.name,
                "subscribers": subscriptions.get(topic_key(feed.slug, t.slug), 0),
            }
            for t in feed.topics
        ]
        row: dict[str, Any] = {
            "slug": feed.slug,
            "name": feed.name,
            "enabled": feed.enabled,
            "bind": feed.bind,
            "endpoints": list(feed.endpoints),
            "topics": topics,
            "subscribers": sum(t["subscribers"] for t in topics),
            "holder": None if holders is None else holders.get(feed.slug),
            **_blank(),
        }
        report = reports.get(feed.slug)
        if not feed.enabled:
            row.update(state=DISABLED, detail="disabled: nothing reads it")
        elif not feed.topics:
            row.update(state=ERROR, detail="no topics: the feed is not read")
        elif report is None:
            row.update(state=ERROR, detail=unread)
        else:
            row.update({k: report[k] for k in _blank() if k in report})
            if row["age"] is not None:
                row["age"] += max(0.0, now - report["at"])
            row["role"] = report["role"]
        feeds.append(row)
    for process in processes:
        process["age"] = max(0.0, now - process.pop("at"))
    return {"at": now, "feeds": feeds, "processes": processes}


def _blank() -> dict[str, Any]:
    """The report's fields a feed shows, as they are when no process reports it."""
    return {**idle_snapshot(ERROR, ""), "process": None, "role": None, "standbys": 0}
