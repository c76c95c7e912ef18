"""Preframed sends through a real daphne: the bytes a client gets are those of daphne's own
send path, large frames included; slow clients are still shed and told of a gap; closes
leave no frame after the close frame and no errors; daphne's keepalive pings go on.

A raw WebSocket client (a TCP socket, frames read as they come) sees the server's frames
byte for byte; it is checked against one server with PREFRAMED_SENDS and one without.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import re
import urllib.request
from pathlib import Path

import pytest
import zmq.asyncio
from websockets.frames import Frame as WsFrame
from websockets.frames import Opcode

from tests.conftest import Server, Site
from tests.support import Publisher, feed_doc, unpack

MIB = 1024 * 1024
SETTINGS = "tests.sites.preframed_settings"
# Payloads of the 7-, 16- and 64-bit length forms, the last near MAX_FRAME_SIZE (1 MiB).
SIZES = [1, 100, 200, 70_000, MIB - 1000]


def server(site: Site, on: bool, args: tuple[str, ...] = ()) -> Server:
    env = {"DJANGO_SETTINGS_MODULE": SETTINGS, "ZMQFEED_TEST_PREFRAMED": "1" if on else "0"}
    return site.daphne(env, args)


def scrape(server: Server) -> tuple[float, float]:
    """(preframed adapter active, preframed writes so far) from the server's /metrics."""
    with urllib.request.urlopen(server.http + "/zmqfeed/metrics", timeout=5) as resp:
        text = resp.read().decode()
    active = re.search(r'^zmqfeed_daphne_adapter_active\{adapter="preframed"\} (\S+)$', text, re.M)
    writes = re.search(r"^zmqfeed_preframed_writes_total (\S+)$", text, re.M)
    assert active and writes, "no preframed adapter on /metrics"
    return float(active.group(1)), float(writes.group(1))


class RawClient:
    """A WebSocket client on a plain TCP stream: every server frame as its bytes on the wire."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.pings = 0

    @classmethod
    async def connect(cls, server: Server, path: str = "/ws/zmqfeed/") -> RawClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
            f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\nOrigin: {server.origin}\r\n\r\n".encode()
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"HTTP/1.1 101"), head
        return cls(reader, writer)

    def send(self, opcode: Opcode, data: bytes) -> None:
        self.writer.write(WsFrame(opcode, data).serialize(mask=True, extensions=[]))

    def request(self, **fields) -> None:
        self.send(Opcode.TEXT, json.dumps(fields).encode())

    async def wire(self, timeout: float = 5.0) -> bytes:
        """The next server frame as it came, header and payload; pings are answered."""
        while True:
            head = await asyncio.wait_for(self.reader.readexactly(2), timeout)
            assert not head[1] & 0x80, "a server frame is masked"
            length, extended = head[1] & 0x7F, b""
            if length >= 126:
                extended = await self.reader.readexactly(2 if length == 126 else 8)
                length = int.from_bytes(extended, "big")
            payload = await asyncio.wait_for(self.reader.readexactly(length), timeout)
            if head[0] & 0x0F == Opcode.PING:
                self.pings += 1
                self.send(Opcode.PONG, payload)
                continue
            return head + extended + payload

    async def recv(self, timeout: float = 5.0) -> dict:
        frame = await self.wire(timeout)
        assert frame[0] == 0x81, f"not a whole text frame: {frame[:2]!r}"
        return json.loads(frame[len(frame) - payload_length(frame) :])

    def close(self) -> None:
        self.writer.close()


def payload_length(frame: bytes) -> int:
    length = frame[1] & 0x7F
    return int.from_bytes(frame[2 : 4 if length == 126 else 10], "big") if length >= 126 else length


async def subscribed(client: RawClient, feed: str, topic: str) -> dict:
    """Subscribe, retrying while a just-imported topic reaches the server."""
    for _ in range(40):
        client.request(type="subscribe", feed=feed, topic=topic)
        reply = await client.recv()
        if reply["type"] == "subscribed":
            return reply
        assert reply.get("code") == "not_found", reply
        await asyncio.sleep(0.2)
    raise AssertionError(f"{feed}/{topic} never became subscribable")


async def flowing(pub: Publisher, client: RawClient) -> None:
    """Probe the "probe" topic until a probe arrives (SUB sockets join late), then drain."""
    await subscribed(client, "pf", "probe")
    for _ in range(75):
        await pub.send("p", "0")
        with contextlib.suppress(asyncio.TimeoutError):
            await client.wire(0.2)
            with contextlib.suppress(asyncio.TimeoutError):
                while True:
                    await client.wire(0.3)
            return
    raise AssertionError("no probe arrived")


def feed(pub: Publisher) -> dict:
    topics = [{"slug": "probe", "prefix": "p"}, {"slug": "data", "prefix": "d"}]
    return {"feeds": [feed_doc("pf", pub.endpoint, topics, max_message_size=MIB)]}


NUMBERING = re.compile(rb'("ts":)(\d+\.\d{3})|("epoch":")([0-9a-f]*)')


def normal(frame: bytes) -> bytes:
    """The frame with its receive times and epoch as zeros of the same length."""
    return NUMBERING.sub(
        lambda m: (m.group(1) or m.group(3)) + re.sub(rb"[0-9a-f]", b"0", m.group(2) or m.group(4)),
        frame,
    )


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 90))


def frames_of(tmp: Path, on: bool) -> tuple[list[bytes], float, float]:
    """The frames a client gets for SIZES, one message each, and (active, writes moved)."""
    tmp.mkdir()
    site = Site(tmp)
    ctx = zmq.asyncio.Context()
    try:
        srv = server(site, on)

        async def main() -> list[bytes]:
            pub = Publisher(ctx)
            site.configure(feed(pub))
            client = await RawClient.connect(srv)
            await flowing(pub, client)
            client.request(type="subscribe", feed="pf", topic="data")
            got = [await client.wire()]
            for size in SIZES:
                await pub.send(
                    "d", json.dumps("é" * (size // 2) + "x" * (size % 2), ensure_ascii=False)
                )
                got.append(await client.wire())
            client.close()
            pub.close()
            return got

        _, before = scrape(srv)
        got = run(main())
        active, after = scrape(srv)
        assert "Traceback" not in srv.log(), srv.log()
        return got, active, after - before
    finally:
        ctx.destroy(linger=0)
        site.close()


def test_frames_are_the_bytes_of_daphnes_own_path(tmp_path):
    on, active, writes = frames_of(tmp_path / "on", True)
    off, inactive, none = frames_of(tmp_path / "off", False)
    assert (active, inactive, none) == (1.0, 0.0, 0.0)
    assert writes >= len(SIZES)  # the frames of messages went out preframed
    assert [normal(f) for f in on] == [normal(f) for f in off]
    assert {f[1] & 0x7F for f in on} >= {126, 127}  # 16- and 64-bit lengths among them
    messages = [json.loads(f[len(f) - payload_length(f) :]) for f in on[1:]]
    assert [m["seq"] for m in messages] == list(range(1, len(SIZES) + 1))
    assert len(on[-1]) > MIB - 1000


@pytest.mark.xfail(
    strict=False,
    reason="flaky: under the full suite's load the kernel sometimes takes the whole flood "
    "(tcp_rmem autotuning) and nothing has to be shed; test_slow_clients covers shedding",
)
def test_a_slow_reader_is_shed_and_told_of_a_gap(tmp_path):
    site = Site(tmp_path)
    ctx = zmq.asyncio.Context()
    srv = server(site, True)
    # 40 MB: past the socket buffers (loopback autotunes a receive buffer up to tcp_rmem's
    # maximum, 32 MB here) and MAX_CLIENT_BACKLOG's 4 MiB
    count, payload = 4000, json.dumps("x" * 10_000)

    async def main() -> list[dict]:
        pub = Publisher(ctx)
        site.configure(feed(pub))
        client = await RawClient.connect(srv)
        await flowing(pub, client)
        await subscribed(client, "pf", "data")
        for i in range(count):  # the client reads nothing meanwhile
            await pub.send("d", payload)
            if i % 50 == 0:
                await asyncio.sleep(0.01)
        await asyncio.sleep(1.0)
        await pub.send("d", '"after"')
        got = []
        with contextlib.suppress(asyncio.TimeoutError):
            while True:
                got.append(await client.recv(3.0))
        client.close()
        pub.close()
        return got

    try:
        frames = run(main())
        gaps = [f for f in frames if f["type"] == "gap"]
        assert gaps and all(g["reason"] == "slow_consumer" for g in gaps)
        seqs = [m["seq"] for f in frames if f["type"] != "gap" for m in unpack(f)]
        dropped = [s for g in gaps for s in range(g["from_seq"], g["to_seq"] + 1)]
        assert sorted(seqs + dropped) == list(range(1, count + 2))
        for i, frame in enumerate(frames):  # a gap comes right before the next message sent
            if frame["type"] == "gap":
                assert unpack(frames[i + 1])[0]["seq"] == frame["to_seq"] + 1
        assert scrape(srv)[1] > 0
    finally:
        ctx.destroy(linger=0)
        site.close()


def test_closes_mid_stream_leave_nothing_after_the_close_and_no_errors(tmp_path):
    """A client that goes away, one the server closes (a flood of pings, 4008), and one that
    reads on, while the topic streams."""
    site = Site(tmp_path)
    ctx = zmq.asyncio.Context()
    srv = server(site, True)

    async def main() -> tuple[list[bytes], int]:
        pub = Publisher(ctx)
        site.configure(feed(pub))
        clients = [await RawClient.connect(srv) for _ in range(3)]
        await flowing(pub, clients[0])
        for client in clients:
            await subscribed(client, "pf", "data")
        leaving, flooding, staying = clients
        streaming = True

        async def stream() -> None:
            while streaming:
                await pub.send("d", '"tick"')
                await asyncio.sleep(0.002)

        task = asyncio.ensure_future(stream())
        await staying.recv()
        leaving.writer.transport.abort()  # gone, no closing handshake
        for _ in range(450):  # past CLIENT_BURST and as many strikes: closed with 4008
            flooding.request(type="ping")
        after: list[bytes] = []
        code = 0
        ended = (asyncio.TimeoutError, asyncio.IncompleteReadError, ConnectionResetError)
        with contextlib.suppress(*ended):
            while (frame := await flooding.wire(3.0))[0] != 0x88:
                pass
            code = int.from_bytes(frame[2:4], "big")
            flooding.send(Opcode.CLOSE, frame[2:4])
            while True:
                after.append(await flooding.wire(3.0))
        for _ in range(20):  # the one that stays still gets the stream
            assert (await staying.recv())["type"] in ("message", "batch")
        streaming = False
        await task
        staying.close()
        pub.close()
        return after, code

    try:
        after, code = run(main())
        assert code == 4008 and after == []
        log = srv.log()
        assert "Traceback" not in log and "delivery to a consumer failed" not in log, log
    finally:
        ctx.destroy(linger=0)
        site.close()


def test_daphnes_pings_go_on_between_preframed_frames(tmp_path):
    site = Site(tmp_path)
    ctx = zmq.asyncio.Context()
    srv = server(site, True, ("--ping-interval", "1", "--ping-timeout", "3"))

    async def main() -> tuple[int, int]:
        pub = Publisher(ctx)
        site.configure(feed(pub))
        client = await RawClient.connect(srv)
        await flowing(pub, client)
        await subscribed(client, "pf", "data")
        received = 0
        for _ in range(40):  # 4 s and more: pings are due every second, answered within 3
            await pub.send("d", '"tick"')
            received += len(unpack(await client.recv()))
            await asyncio.sleep(0.1)
        client.close()
        pub.close()
        return received, client.pings

    try:
        received, pings = run(main())
        assert received == 40 and pings >= 2
        assert scrape(srv)[1] >= 40
    finally:
        ctx.destroy(linger=0)
        site.close()
