"""Epochs, and where a resuming client's replay starts: one rule for every history and the session.

A topic's numbering is an (epoch, seq) pair. The epoch changes whenever the numbering starts
again (an embedded server restarted, a Redis wiped while no subscriber remembered the seqs),
so a client's `since` means something only in the epoch it was given in: a `since` of
another epoch never replays messages of the new numbering as if they were the old.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import NamedTuple

EPOCH_MAX = 64  # characters of an `epoch` a client may send back


class Numbering(NamedTuple):
    """Where a topic's numbering stands: its epoch, and the seq of its latest message."""

    epoch: str
    seq: int


def new_epoch() -> str:
    """A fresh epoch: 12 hex digits (no ``:``, which separates epoch and seq in SSE ids)."""
    return secrets.token_hex(6)


@dataclass(frozen=True)
class Kept:
    """One topic's part of a routed batch, as a history keeps it."""

    epoch: str
    first: int  # seq of envelopes[0]; with no envelopes, the numbering is at first - 1
    envelopes: list[bytes]
    ts: float  # when the gateway received the batch (the age limit's clock)
    history: int | None = None  # the topic's `history`: None for the server's HISTORY_SIZE

    @property
    def last(self) -> int:
        return self.first + len(self.envelopes) - 1


@dataclass(frozen=True)
class Replay:
    """What a history has of a topic after a client's ``since``."""

    latest: int  # the topic's latest seq
    envelopes: list[bytes]  # messages after the start (see :func:`start`), oldest first
    first: int  # seq of envelopes[0] (latest + 1 when there are none)
    epoch: str = ""  # the numbering's epoch ("": the history knows no numbering yet)


def start(since: int | None, epoch: str | None, current: str, latest: int, last: int = 0) -> int:
    """The seq after which a replay starts, for a subscribe with ``since`` and ``epoch``.

    No ``since``: the latest ``last`` messages (a topic's last values), or none. A ``since``
    of another epoch, or ahead of the numbering (which can only have started again): all
    that is kept of this epoch. Otherwise ``since`` itself.
    """
    if since is None:
        return max(0, latest - last)
    if (epoch is not None and epoch != current) or since > latest:
        return 0
    return since


def recovered(since: int | None, epoch: str | None, replay: Replay) -> bool | None:
    """Whether every message after ``since`` follows with no hole (None: no ``since``)."""
    if since is None:
        return None
    if epoch is not None and epoch != replay.epoch:
        return False
    return since <= replay.latest and replay.first <= since + 1


def capped(history: int | None, size: int) -> int:
    """Messages to keep of a topic: its ``history``, at most the server's ``size``."""
    return size if history is None else min(history, size)
