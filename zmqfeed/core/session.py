"""One client connection as a state machine: requests and frames in, actions out (sans I/O)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Replay:
    """What the history has of a topic after a client's ``since``."""

    latest: int  # the topic's latest seq
    envelopes: list[bytes]  # messages after `since`, oldest first
    first: int  # seq of envelopes[0] (latest + 1 when there are none)
