"""The parts of ``zmq_publish`` that decide what to send and when, kept apart from the socket.

Frames per framing (the inverse of :func:`zmqfeed.core.framing.split_frames`), line checks, the
synthetic data generator, the pacer for ``--rate`` and the ``tail -F`` style file follower are
all driven by their callers (clock values, explicit polls), so tests need neither sockets nor
sleeps.
"""

from __future__ import annotations

import math
import os
import random
from collections.abc import Callable
from typing import BinaryIO

import orjson
from zmq import SNDMORE

from .core.framing import FRAGMENTS, FRAMINGS, Dropped


def framer(framing: str, send: Callable[[bytes, int], object]) -> Callable[[bytes, bytes], None]:
    """A function that sends (topic, payload) as this framing's frames, as a feed reads them.

    ``send(frame, flags)`` is a socket's ``send``; every frame but the last goes with
    ``zmq.SNDMORE``. Two plain sends are about twice as fast as pyzmq's ``send_multipart``.
    """
    if framing not in FRAMINGS:
        raise ValueError(f"unknown framing {framing!r}; expected one of {', '.join(FRAMINGS)}")

    def multipart(topic: bytes, payload: bytes) -> None:
        send(topic, SNDMORE)
        send(payload, 0)

    def prefix(topic: bytes, payload: bytes) -> None:
        send(topic + b" " + payload, 0)

    def raw(topic: bytes, payload: bytes) -> None:
        send(payload, 0)

    return {"multipart": multipart, "prefix": prefix, "raw": raw}[framing]


def topic_problem(framing: str, topic: str) -> str | None:
    """Why this topic cannot be sent with this framing, or None."""
    if framing == "prefix" and " " in topic:
        return f"topic {topic!r} has a space, which prefix framing uses to end the topic"
    return None


def join_topic(prefix: str, name: str) -> str:
    """``prefix.name``, or ``name`` alone when there is no prefix."""
    return f"{prefix}.{name}" if prefix else name


def check_line(line: bytes, *, json: bool) -> bytes | None:
    """The payload of one input line: end of line stripped, None when blank.

    With ``json`` the line must be a JSON document (the same check the subscriber makes for
    ``json`` feeds), else :class:`ValueError`.
    """
    line = line.rstrip(b"\r\n")
    if not line.strip():
        return None
    if json:
        try:
            FRAGMENTS["json"](line)
        except Dropped as exc:
            raise ValueError(str(exc)) from None
    return line


class Synthetic:
    """Demo data: topics ``<prefix>.sine``, ``.counter`` and ``.random`` in turn.

    Each payload carries ``n`` (per topic, from 0, so a subscriber of one topic can count
    losses), ``value`` and ``ts`` (the publish time, so a receiver can measure latency). With
    ``size`` the payload is padded to that many bytes (a ``pad`` field for JSON).
    """

    NAMES = ("sine", "counter", "random")
    SINE_PERIOD = 10.0  # seconds: slow enough to read on a live chart

    def __init__(
        self, prefix: str = "", *, json: bool = False, size: int = 0, seed: int | None = None
    ) -> None:
        self.topics = [join_topic(prefix, name).encode() for name in self.NAMES]
        self.json = json
        self.size = size
        self.counts = [0] * len(self.NAMES)
        self._turn = 0
        self._random = random.Random(seed)

    def _value(self, index: int, n: int, ts: float) -> float:
        if index == 0:
            return math.sin(2 * math.pi * ts / self.SINE_PERIOD)
        if index == 1:
            return float(n)
        return self._random.random()

    def message(self, ts: float) -> tuple[bytes, bytes]:
        """The next (topic, payload), stamped with ``ts``."""
        index = self._turn
        self._turn = (index + 1) % len(self.topics)
        n = self.counts[index]
        self.counts[index] = n + 1
        value = self._value(index, n, ts)
        if self.json:
            payload = orjson.dumps({"n": n, "value": value, "ts": ts})
            missing = self.size - len(payload) - len(b',"pad":""')
            if missing >= 0:
                payload = payload[:-1] + b',"pad":"' + b"x" * missing + b'"}'
        else:
            payload = f"n={n} value={value:.6g} ts={ts:.6f}".encode()
            if self.size > len(payload):
                payload += b" " + b"x" * (self.size - len(payload) - 1)
        return self.topics[index], payload


class Pacer:
    """How many messages are due at each tick, so that the average rate is exact.

    Message ``k`` (from 0) is due at ``start + k / rate``. The sender asks :meth:`due` at each
    tick and sends that many, so at high rates one tick sends a burst instead of one sleep per
    message. After a stall (a paused process, a starved CPU) at most ``max_lag`` seconds of
    backlog are sent at once; the rest is skipped rather than flooding the subscribers.
    """

    def __init__(self, rate: float, start: float, *, max_lag: float = 1.0) -> None:
        if not rate > 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.start = start
        self.issued = 0  # messages of the schedule sent or skipped
        self.skipped = 0
        self.max_burst = max(1, int(rate * max_lag))

    def due(self, now: float) -> int:
        """Messages to send now; the caller sends them all before asking again."""
        # The epsilon keeps a tick at exactly next_at() from rounding down to nothing.
        target = math.floor((now - self.start) * self.rate + 1e-6) + 1
        count = target - self.issued
        if count <= 0:
            return 0
        self.issued = target
        if count > self.max_burst:
            self.skipped += count - self.max_burst
            count = self.max_burst
        return count

    def next_at(self) -> float:
        """When the next message falls due."""
        return self.start + self.issued / self.rate


class FileFollower:
    """Lines appended to one file, like ``tail -F``, one :meth:`poll` at a time.

    - The first poll starts at the end of the file; a file that does not exist yet is waited
      for and read from its start once it appears.
    - Rotation (the name now points at another inode): the old file is read to its end,
      then the new one from its start.
    - Truncation (the size fell below the read position): reading restarts at 0. A
      truncation followed by more writes than were there before, between two polls, cannot
      be told from appends (``tail -F`` has the same blind spot).
    - A line longer than ``max_line`` is cut into pieces of that size rather than held.
    - One poll reads about ``max_read`` bytes at most; :attr:`behind` says there is more.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, max_line: int = 1 << 20, max_read: int = 1 << 22
    ) -> None:
        self.path = os.fspath(path)
        self.max_line = max_line
        self.max_read = max_read
        self.behind = False  # the last poll stopped at max_read, not at the end of the file
        self.error: str | None = None  # why the file cannot be read now, if it cannot
        self._file: BinaryIO | None = None
        self._ident: tuple[int, int] | None = None
        self._partial = b""
        self._started = False

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
            self._ident = None

    def poll(self) -> list[bytes]:
        """The complete lines (without their end of line) written since the last poll."""
        lines: list[bytes] = []
        try:
            st = os.stat(self.path)
        except OSError:
            st = None
        if self._file is not None:
            if st is None or (st.st_dev, st.st_ino) != self._ident:
                self._read(lines, limit=None)  # rotated or removed: what the old file holds
                self._flush(lines)
                self.close()
            elif st.st_size < self._file.tell():
                self._flush(lines)
                self._file.seek(0)
        if self._file is None and st is not None:
            self._open(at_end=not self._started)
        self._started = True
        self.behind = False
        if self._file is not None:
            self.behind = self._read(lines, limit=self.max_read)
        return lines

    def _open(self, *, at_end: bool) -> None:
        try:
            handle = open(self.path, "rb")  # noqa: SIM115 -- kept open across polls
        except OSError as exc:
            self.error = f"{self.path}: {exc.strerror or exc}"
            return
        st = os.fstat(handle.fileno())
        if at_end:
            handle.seek(st.st_size)
        self._file = handle
        self._ident = (st.st_dev, st.st_ino)
        self.error = None

    def _read(self, lines: list[bytes], *, limit: int | None) -> bool:
        """Read complete lines into ``lines``; True if it stopped at ``limit`` bytes."""
        assert self._file is not None
        total = 0
        while chunk := self._file.read(1 << 16):
            total += len(chunk)
            data = self._partial + chunk
            *complete, self._partial = data.split(b"\n")
            for line in complete:
                lines.extend(self._pieces(line.removesuffix(b"\r")))
            if len(self._partial) >= self.max_line:
                *cut, self._partial = self._pieces(self._partial)
                lines.extend(cut)
            if limit is not None and total >= limit:
                return True
        return False

    def _pieces(self, line: bytes) -> list[bytes]:
        if len(line) <= self.max_line:
            return [line]
        return [line[i : i + self.max_line] for i in range(0, len(line), self.max_line)]

    def _flush(self, lines: list[bytes]) -> None:
        """The unfinished last line of a file that will get no more."""
        if self._partial:
            lines.append(self._partial)
            self._partial = b""
