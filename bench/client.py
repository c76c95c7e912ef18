"""The client process: N WebSocket connections that count what arrives and when.

The client is measuring equipment and must cost far less than what it measures, so it is a
lean RFC 6455 client on an asyncio Protocol: frames are parsed in place as the bytes arrive,
with no task switch per frame and no JSON parsing. A frame's messages are counted by their
``"seq":`` keys; the first and last ``seq`` show holes (losses); the publisher's stamps ``"t":``
of the first and last message give their latencies, and those of the messages in between are
spread evenly between the two (the publisher sends at a constant rate, so stamps are linear
in seq within a frame). The maximum is exact. Other frames (``subscribed``, ``gap``,
``error``) are parsed in full.

Commands (JSON lines): ``connect``, ``ready``, ``mark``, ``collect``, ``close``, ``quit``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import struct
import sys
import time
from array import array
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import orjson

from .procs import reply

SEQ = b'"seq":'
# Frames that carry messages (zmqfeed and the relay write compact JSON; the naive gateway
# writes json.dumps' default ", " and ": ").
MESSAGE_FRAMES = (b'{"type":"message"', b'{"type":"batch"', b'{"type": "message"')
STAMP = b'"t":'
# Latency histogram: log buckets 2% wide from 1 µs to about 100 s (the harness merges them).
BUCKET_RATIO = 1.02
BUCKET_FIRST_S = 1e-6
BUCKETS = 931
EDGES = BUCKET_FIRST_S * BUCKET_RATIO ** np.arange(BUCKETS + 1)
SPREAD = 8  # points per frame for the latencies between its first and last message


class Stats:
    """What all connections of this process received since the last ``mark``."""

    def __init__(self) -> None:
        # Per frame: latency of its first message, of its last message, its message count.
        self.lat_first = array("d")
        self.lat_last = array("d")
        self.counts = array("d")
        self.first_recv = 0.0
        self.last_recv = 0.0


def _number(buf: bytearray, at: int, end: int) -> bytes:
    """The JSON number after the key at ``at`` (up to the next ``,`` or ``}``)."""
    start = buf.find(b":", at, end) + 1
    stop = buf.find(b",", start, end)
    if stop < 0:
        stop = buf.find(b"}", start, end)
    return bytes(buf[start:stop])


class Connection(asyncio.Protocol):
    """One client WebSocket: handshake, then frames parsed in place as they arrive."""

    def __init__(self, host: str, path: str, origin: str, stats: Stats, topic: str) -> None:
        self.stats = stats
        self.topic = topic
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.opened: asyncio.Future = asyncio.get_running_loop().create_future()
        self.closed = asyncio.get_running_loop().create_future()
        self.close_reason = ""
        self.fragments = bytearray()
        self.last = -1
        # Until the first message after a `mark`: a hole or gap then is the previous step's.
        self.fresh = False
        self.received = 0
        self.missing = 0
        self.gaps = 0
        self.errors: list[str] = []
        key = base64.b64encode(os.urandom(16)).decode()
        self.request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\nOrigin: {origin}\r\n\r\n"
        ).encode()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(ConnectionError(f"closed in handshake: {exc!r}"))
        if not self.closed.done():
            self.closed.set_result(None)

    def data_received(self, data: bytes) -> None:
        if self.buf or not self.opened.done():
            buf = self.buf
            buf += data
        else:  # the usual case, whole frames: parse them where they are, no copy
            buf = data  # type: ignore[assignment]
        if not self.opened.done():
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(buf[: buf.find(b"\r\n")])
            del buf[: end + 4]
            if b" 101 " not in status:
                self.opened.set_exception(ConnectionError(status.decode(errors="replace")))
                self.transport.close()
                return
            self.opened.set_result(None)
        now = time.time()
        pos, size = 0, len(buf)
        while size - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            length, head = b1 & 0x7F, 2
            if length == 126:
                if size - pos < 4:
                    break
                (length,) = struct.unpack_from("!H", buf, pos + 2)
                head = 4
            elif length == 127:
                if size - pos < 10:
                    break
                (length,) = struct.unpack_from("!Q", buf, pos + 2)
                head = 10
            start = pos + head
            end = start + length
            if end > size:
                break
            opcode = b0 & 0x0F
            if opcode in (1, 2, 0):
                if b0 & 0x80 and not self.fragments:
                    self.message(buf, start, end, now)
                else:  # fragmented: gather, then handle as one message
                    self.fragments += buf[start:end]
                    if b0 & 0x80:
                        whole = self.fragments
                        self.fragments = bytearray()
                        self.message(whole, 0, len(whole), now)
            elif opcode == 9:
                self.send_frame(10, bytes(buf[start:end]))
            elif opcode == 8:
                code = struct.unpack_from("!H", buf, start)[0] if length >= 2 else 1005
                self.close_reason = f"{code} {bytes(buf[start + 2 : end]).decode(errors='replace')}"
                self.send_frame(8, bytes(buf[start : start + 2]))
                self.transport.close()
            pos = end
        if buf is data:
            if pos < size:
                self.buf = bytearray(data[pos:])
        elif pos:
            del buf[:pos]

    def message(self, buf: bytearray, start: int, end: int, now: float) -> None:
        if not buf.startswith(MESSAGE_FRAMES, start, end):
            self.other(bytes(buf[start:end]))
            return
        n = buf.count(SEQ, start, end)
        i = buf.find(SEQ, start, end)
        first = int(_number(buf, i, end))
        lat_first = now - float(_number(buf, buf.find(STAMP, i, end), end))
        if n > 1:
            last = int(_number(buf, buf.rfind(SEQ, start, end), end))
            lat_last = now - float(_number(buf, buf.rfind(STAMP, start, end), end))
            if last - first + 1 != n:
                self.missing += last - first + 1 - n
        else:
            last, lat_last = first, lat_first
        if self.fresh:
            self.fresh = False
        elif first != self.last + 1 and self.last >= 0:
            self.missing += first - self.last - 1
        self.last = last
        self.received += n
        stats = self.stats
        stats.lat_first.append(lat_first)
        stats.lat_last.append(lat_last)
        stats.counts.append(n)
        if not stats.first_recv:
            stats.first_recv = now
        stats.last_recv = now

    def other(self, frame: bytes) -> None:
        msg = orjson.loads(frame)
        if msg.get("type") == "gap" and not self.fresh:
            self.gaps += msg["to_seq"] - msg["from_seq"] + 1
        elif msg.get("type") == "error":
            self.errors.append(frame.decode(errors="replace")[:200])

    def send_frame(self, opcode: int, payload: bytes) -> None:
        """Client frames are masked (RFC 6455 5.3); only control frames are sent here."""
        if self.transport is None or self.transport.is_closing():
            return
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.transport.write(bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked)

    async def close(self) -> None:
        if self.transport and not self.transport.is_closing():
            self.send_frame(8, struct.pack("!H", 1000))
            try:
                await asyncio.wait_for(asyncio.shield(self.closed), 2)
            except TimeoutError:
                self.transport.close()


class Clients:
    def __init__(self) -> None:
        self.conns: list[Connection] = []
        self.errors: list[str] = []
        self.stats = Stats()

    async def connect(self, urls: list[list[str]], origin: str, concurrency: int = 50) -> dict:
        """``urls``: [url, topic] pairs; topic is the key the harness counts expectations by."""
        loop = asyncio.get_running_loop()
        limit = asyncio.Semaphore(concurrency)

        async def one(url: str, topic: str) -> None:
            parts = urlsplit(url)
            async with limit:
                conn = Connection(parts.netloc, parts.path, origin, self.stats, topic)
                try:
                    await loop.create_connection(lambda: conn, parts.hostname, parts.port)
                    await asyncio.wait_for(conn.opened, 30)
                except Exception as exc:
                    self.errors.append(f"{url}: {exc!r}")
                    return
            self.conns.append(conn)

        await asyncio.gather(*(one(url, topic) for url, topic in urls))
        return {"connected": len(self.conns), "errors": self.errors[:5]}

    async def ready(self, timeout: float) -> dict:
        """Until every connection has had a message (the path is open end to end)."""
        deadline = time.monotonic() + timeout
        # A bounded poll rather than an Event: setting one per frame in data_received would
        # cost the client process, which is the limit in the top rows.
        while time.monotonic() < deadline and not all(c.last >= 0 for c in self.conns):  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        return {"ready": sum(c.last >= 0 for c in self.conns), "of": len(self.conns)}

    async def mark(self, quiet: float, timeout: float = 30.0) -> dict:
        """Once nothing has arrived for ``quiet`` s, start counting afresh."""
        deadline = time.monotonic() + timeout
        # Waits for the absence of frames, which no Event can signal: a poll is the intent.
        while time.monotonic() < deadline and time.time() - self.stats.last_recv < quiet:  # noqa: ASYNC110
            await asyncio.sleep(quiet / 4)
        self.stats = Stats()
        for c in self.conns:
            c.stats = self.stats
            c.received = c.missing = c.gaps = 0
            c.fresh = True
        return {"marked": True}

    async def collect(self, expected: dict[str, int], quiet: float, timeout: float) -> dict:
        """Wait until every message is in, or nothing arrives for ``quiet`` s; then report."""
        want = sum(expected.get(c.topic, 0) for c in self.conns)
        deadline = time.monotonic() + timeout
        stats = self.stats
        while time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            if sum(c.received for c in self.conns) >= want:
                break
            if stats.last_recv and time.time() - stats.last_recv > quiet:
                break
        counts = np.frombuffer(stats.counts, dtype=float)
        first = np.frombuffer(stats.lat_first, dtype=float)
        last = np.frombuffer(stats.lat_last, dtype=float)
        hist = np.zeros(BUCKETS)
        if len(counts):
            frac = np.linspace(0.0, 1.0, SPREAD)
            points = last[:, None] + (first - last)[:, None] * frac[None, :]
            weights = np.repeat(counts / SPREAD, SPREAD)
            hist, _ = np.histogram(
                np.clip(points.ravel(), EDGES[0], EDGES[-1]), bins=EDGES, weights=weights
            )
        errors = self.errors + [e for c in self.conns for e in c.errors]
        return {
            "received": sum(c.received for c in self.conns),
            "lost": sum(max(0, expected.get(c.topic, 0) - c.received) for c in self.conns),
            "missing": sum(c.missing for c in self.conns),
            "gaps": sum(c.gaps for c in self.conns),
            "frames": len(counts),
            "first_recv": stats.first_recv,
            "last_recv": stats.last_recv,
            "max_s": float(first.max()) if len(first) else 0.0,
            "hist": hist.tolist(),
            "closed": [c.close_reason for c in self.conns if c.close_reason][:5],
            "errors": errors[:5],
        }

    async def close(self) -> dict:
        await asyncio.gather(*(c.close() for c in self.conns), return_exceptions=True)
        self.conns = []
        return {"closed": True}


async def serve() -> None:
    clients = Clients()
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader(limit=1 << 24)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    handlers: dict[str, Any] = {
        "connect": clients.connect,
        "ready": clients.ready,
        "mark": clients.mark,
        "collect": clients.collect,
        "close": clients.close,
    }
    try:
        while line := await stdin.readline():
            msg = orjson.loads(line)
            cmd = msg.pop("cmd")
            if cmd == "quit":
                break
            reply(await handlers[cmd](**msg))
    finally:
        await clients.close()


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    asyncio.run(serve())


if __name__ == "__main__":
    main()
