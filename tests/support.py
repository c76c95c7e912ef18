"""Helpers for tests that talk to a real gateway: ZeroMQ publishers and WebSocket clients."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

import websockets
import zmq
import zmq.asyncio

from tests.conftest import free_port


def feed_doc(slug: str, endpoint: str, topics: list[dict], **fields: Any) -> dict:
    feed = {
        "slug": slug,
        "name": slug.title(),
        "endpoints": [endpoint],
        "bind": False,
        "framing": "multipart",
        "payload": "json",
        "enabled": True,
        "topics": [],
    }
    feed.update(fields)
    for topic in topics:
        feed["topics"].append(
            {"name": topic["slug"].title(), "prefix": "", "access": "public", "groups": [], **topic}
        )
    return feed


class Publisher:
    """A PUB socket bound on a free loopback port, as a user's producer would be."""

    def __init__(self, ctx: zmq.asyncio.Context) -> None:
        self.port = free_port()
        self.endpoint = f"tcp://127.0.0.1:{self.port}"
        self.sock = ctx.socket(zmq.PUB)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.SNDHWM, 0)
        self.sock.bind(self.endpoint)

    async def send(self, *frames: bytes | str) -> None:
        await self.sock.send_multipart([f.encode() if isinstance(f, str) else f for f in frames])

    def close(self) -> None:
        self.sock.close(0)


async def connect(server, path: str = "/ws/zmqfeed/", **kwargs: Any):
    kwargs.setdefault("origin", server.origin)
    return await websockets.connect(server.ws + path, max_size=None, open_timeout=10, **kwargs)


async def recv(ws, timeout: float = 5.0) -> dict:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def request(ws, **frame: Any) -> dict:
    await ws.send(json.dumps(frame))
    return await recv(ws)


def unpack(frame: dict) -> list[dict]:
    return frame["messages"] if frame["type"] == "batch" else [frame]


async def messages(ws, count: int, timeout: float = 10.0) -> list[dict]:
    """The next `count` messages, batches unpacked; fails on anything else."""
    got: list[dict] = []
    deadline = time.monotonic() + timeout
    while len(got) < count:
        frame = await recv(ws, max(0.05, deadline - time.monotonic()))
        assert frame["type"] in ("message", "batch"), frame
        got.extend(unpack(frame))
    return got


async def until_flowing(pub: Publisher, ws, *frames: bytes | str, timeout: float = 15.0) -> dict:
    """Publish a probe until the client receives one (SUB sockets join late), drain, return it.

    The probe's frames must route to a topic `ws` is subscribed to.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await pub.send(*frames)
        with contextlib.suppress(asyncio.TimeoutError):
            frame = await recv(ws, 0.2)
            last = unpack(frame)[-1]
            while True:  # drain the probes still on their way
                try:
                    last = unpack(await recv(ws, 0.3))[-1]
                except asyncio.TimeoutError:
                    return last
    raise AssertionError(f"nothing arrived within {timeout} s")


async def closed_code(ws, timeout: float = 5.0) -> int:
    with contextlib.suppress(websockets.ConnectionClosed):
        while True:
            await asyncio.wait_for(ws.recv(), timeout)
    return ws.close_code


async def eventually(check, timeout: float = 8.0, interval: float = 0.2):
    """Retry an async check until it returns a truthy value (config reloads are periodic)."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result or time.monotonic() > deadline:
            return result
        await asyncio.sleep(interval)


async def drain(ws, quiet: float = 0.3) -> None:
    """Discard frames until none arrives for `quiet` seconds."""
    with contextlib.suppress(asyncio.TimeoutError):
        while True:
            await recv(ws, quiet)


async def subscribe(ws, feed: str, topic: str, timeout: float = 8.0, **fields: Any) -> dict:
    """Subscribe, retrying `not_found` while a just-imported topic reaches the server."""

    async def attempt():
        reply = await request(ws, type="subscribe", feed=feed, topic=topic, **fields)
        if reply["type"] == "error" and reply["code"] == "not_found":
            return None
        return reply

    reply = await eventually(attempt, timeout)
    assert reply is not None, f"{feed}/{topic} never became subscribable"
    return reply
