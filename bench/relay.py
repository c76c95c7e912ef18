"""The ceiling baseline: ZeroMQ SUB straight into a ``websockets`` server, no Django.

It frames messages on the wire exactly as zmqfeed does, with zmqfeed's own router
(:class:`zmqfeed.core.router.Router`: decode, match, number, one frame per topic per batch)
and the same loop: wait until readable, drain the socket without blocking up to MAX_BATCH,
route, then write each topic's frames to every client of the topic. So the ratio
zmqfeed/relay measures the cost of Django, Channels and daphne and nothing else.

Run: ``python -m bench.relay --endpoint tcp://127.0.0.1:5556 --port 8001 --topics 100``;
prints ``{"port": ...}`` when it listens; JSON-line commands ``stats`` and ``quit``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from urllib.parse import unquote

import orjson
import zmq
import zmq.asyncio
from websockets.asyncio.server import ServerConnection, broadcast, serve

from zmqfeed.core.catalog import FeedConfig, TopicConfig
from zmqfeed.core.router import Router
from zmqfeed.core.session import Limits
from zmqfeed.subscriber import WAKE_INTERVAL_MS

from .procs import reply
from .publisher import topic_names

MAX_BATCH = 1000  # zmqfeed's ZMQFEED["MAX_BATCH"] default
MAX_FRAME = Limits().max_frame  # zmqfeed's ZMQFEED["MAX_FRAME_SIZE"] default
RCVHWM = 100_000  # zmqfeed's ZMQFEED["RCVHWM"] default


class Relay:
    def __init__(self, feed: str, topics: list[str]) -> None:
        self.feed = feed
        config = FeedConfig(
            feed, feed, ("tcp://127.0.0.1:1",), topics=tuple(TopicConfig(t, t, t) for t in topics)
        )
        self.router = Router(config, MAX_FRAME)
        self.router.configure(config, {})
        self.clients: dict[str, set[ServerConnection]] = {t: set() for t in topics}
        self.received = 0
        self.dropped = 0

    async def handler(self, ws: ServerConnection) -> None:
        parts = unquote(ws.request.path).strip("/").split("/")
        if len(parts) != 4 or parts[:2] != ["ws", "zmqfeed"] or parts[2] != self.feed:
            await ws.close(4404, "not found")
            return
        clients = self.clients.get(parts[3])
        if clients is None:
            await ws.close(4404, "not found")
            return
        clients.add(ws)
        try:
            await ws.wait_closed()
        finally:
            clients.discard(ws)

    async def pump(self, sock: zmq.asyncio.Socket) -> None:
        drain = zmq.Socket.shadow(sock.underlying)
        route, clients = self.router.route, self.clients
        while True:
            if not await sock.poll(WAKE_INTERVAL_MS):  # as zmqfeed's subscriber waits
                continue
            batch = []
            try:
                while len(batch) < MAX_BATCH:
                    batch.append(drain.recv_multipart(zmq.NOBLOCK))
            except zmq.Again:
                if not batch:
                    continue
            self.received += len(batch)
            routed = route(batch, time.time())
            self.dropped += sum(routed.dropped.values())
            for topic in routed.topics:
                conns = clients[topic.route.topic]
                if conns:
                    for frame in topic.frames:
                        broadcast(conns, frame.text, text=True)
            # A recv that finds a message ready does not yield: let the writes go out.
            await asyncio.sleep(0)


async def run(endpoint: str, port: int, topics: int, origin: str | None) -> None:
    relay = Relay("bench", topic_names(topics))
    ctx = zmq.asyncio.Context()
    sock = ctx.socket(zmq.SUB)
    sock.setsockopt(zmq.RCVHWM, RCVHWM)
    sock.setsockopt(zmq.LINGER, 0)
    sock.subscribe(b"")
    sock.connect(endpoint)
    pump = asyncio.create_task(relay.pump(sock))
    origins = [origin] if origin else None
    async with serve(
        relay.handler, "127.0.0.1", port, compression=None, ping_interval=None, origins=origins
    ) as server:
        port = server.sockets[0].getsockname()[1]
        reply({"port": port})
        loop = asyncio.get_running_loop()
        stdin = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
        while line := await stdin.readline():
            if orjson.loads(line)["cmd"] == "quit":
                break
            reply({"received": relay.received, "dropped": relay.dropped})
    pump.cancel()
    sock.close(0)
    ctx.term()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--topics", type=int, default=100)
    parser.add_argument("--origin", default=None, help="the one Origin allowed (None: any)")
    args = parser.parse_args()
    asyncio.run(run(args.endpoint, args.port, args.topics, args.origin))


if __name__ == "__main__":
    main()
