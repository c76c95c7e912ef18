"""Server-Sent Events: event bytes, and the ids a browser's ``Last-Event-ID`` echoes back.

An SSE stream carries the WebSocket's frames unchanged, one event each, as its ``data:``
line. Events with messages carry an ``id:`` naming where the stream stands, so that the
browser's own reconnect (``EventSource`` sends the last id it saw as ``Last-Event-ID``)
resumes each topic with ``since`` and ``epoch`` like a WebSocket client would:

- a one-topic stream: ``<epoch>:<seq>``;
- a several-topic stream: every topic's position, ``<feed>/<topic>@<epoch>:<seq>`` joined
  by commas.

Parsing is total: any header value gives a defined result (unreadable parts are left out,
and a topic without a position is subscribed as new), never an exception.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from typing import NamedTuple

from .continuity import EPOCH_MAX

RETRY = b"retry: 1000\n\n"  # ms before EventSource reconnects
PING = b": ping\n\n"  # a comment: keeps proxies from closing an idle stream
MAX_ID = 16 * 1024  # characters of a Last-Event-ID read; the rest is ignored
MAX_SEQ_DIGITS = 19

_SLUG = r"[-a-zA-Z0-9_]{1,100}"
# An epoch in an id: what our histories make (hex), and anything else without the characters
# that separate the parts of an id or end an SSE line.
_EPOCH = rf"[^\s,:@\x00]{{0,{EPOCH_MAX}}}"
_ONE = re.compile(rf"({_EPOCH}):([0-9]{{1,{MAX_SEQ_DIGITS}}})")
_MANY_ITEM = re.compile(rf"({_SLUG})/({_SLUG})@({_EPOCH}):([0-9]{{1,{MAX_SEQ_DIGITS}}})")
_SAFE_EPOCH = re.compile(_EPOCH)


class Position(NamedTuple):
    """Where a client stands in one topic: its last seq, in the numbering ``epoch``."""

    epoch: str
    seq: int

    @property
    def since_epoch(self) -> str | None:
        """The epoch to subscribe with: None for "" (a history that knew no numbering)."""
        return self.epoch or None


Topic = tuple[str, str]  # (feed, topic)


def one_id(epoch: str, seq: int) -> str | None:
    """The id of a one-topic stream at ``seq`` (None: an epoch that cannot go in an id)."""
    if not _SAFE_EPOCH.fullmatch(epoch):
        return None
    return f"{epoch}:{seq}"


def many_part(feed: str, topic: str, position: Position) -> str | None:
    """One topic's part of a several-topic id (None: an epoch that cannot go in an id)."""
    if not _SAFE_EPOCH.fullmatch(position.epoch):
        return None
    return f"{feed}/{topic}@{position.epoch}:{position.seq}"


class Ids:
    """A several-topic stream's id as its topics move: a topic's part is made when it moves,
    so an event formats one part, not every topic's."""

    def __init__(self, positions: Mapping[Topic, Position] | None = None) -> None:
        self._parts: dict[Topic, str] = {}
        for (feed, topic), position in (positions or {}).items():
            self.move(feed, topic, position)

    def move(self, feed: str, topic: str, position: Position) -> None:
        part = many_part(feed, topic, position)
        if part is not None:
            self._parts[(feed, topic)] = part

    def keep(self, topics: Collection[Topic]) -> None:
        """Forget the topics the stream no longer has (taken away: access, catalog)."""
        if len(self._parts) > len(topics):
            self._parts = {key: part for key, part in self._parts.items() if key in topics}

    @property
    def id(self) -> str | None:
        """Every known topic's position (None: none known)."""
        return ",".join(self._parts.values()) or None


def parse_one(value: str | None) -> Position | None:
    """A one-topic id back to its position; None for anything else (a fresh subscribe)."""
    if not value:
        return None
    match = _ONE.fullmatch(value.strip()[:MAX_ID])
    if match is None:
        return None
    return Position(match[1], int(match[2]))


def parse_many(value: str | None) -> dict[Topic, Position]:
    """A several-topic id back to its positions; items that cannot be read are left out, and
    the first of a topic named twice wins."""
    out: dict[Topic, Position] = {}
    if not value:
        return out
    for item in value[:MAX_ID].split(","):
        match = _MANY_ITEM.fullmatch(item.strip())
        if match is not None:
            out.setdefault((match[1], match[2]), Position(match[3], int(match[4])))
    return out


def parse_topics(values: Iterable[str]) -> list[Topic] | None:
    """``?topic=<feed>/<topic>`` values to topics, in order and once each; None if one is
    not two slugs."""
    topics: list[Topic] = []
    for value in values:
        feed, slash, topic = value.partition("/")
        if not slash or not re.fullmatch(_SLUG, feed) or not re.fullmatch(_SLUG, topic):
            return None
        if (feed, topic) not in topics:
            topics.append((feed, topic))
    return topics


_LINE_BREAK = re.compile(rb"\r\n|\r|\n")


def event(data: bytes, id: str | None = None) -> bytes:
    """One SSE event: ``data`` (one frame's JSON) as its ``data:`` line, and its id.

    The frames zmqfeed builds hold no line break (orjson escapes them in strings), but a
    JSON payload is passed through as its producer wrote it, and may have line breaks as
    whitespace: such a frame goes as several ``data:`` lines, which the browser joins with
    line feeds, the same JSON.
    """
    if b"\n" in data or b"\r" in data:
        data = _LINE_BREAK.sub(b"\ndata: ", data)
    if id is None:
        return b"data: " + data + b"\n\n"
    return b"id: " + id.encode() + b"\ndata: " + data + b"\n\n"
