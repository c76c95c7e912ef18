"""The ceiling baseline: ZeroMQ SUB straight into a ``websockets`` server, no Django.

It frames messages on the wire exactly as zmqfeed does, with zmqfeed's own pure parts
(Decoder, Matcher, message_head/message_tail/batch_frame) and the same loop: await one
message, drain the socket without blocking up to MAX_BATCH, then one frame per topic per
batch, written to every client of the topic. So the ratio zmqfeed/relay measures the cost of
Django, Channels and daphne and nothing else.

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

from zmqfeed.core.framing import Decoder, Dropped, decode_topic
from zmqfeed.core.matching import Matcher
from zmqfeed.core.protocol import batch_frame, message_head, message_tail
from zmqfeed.subscriber import WAKE_INTERVAL_MS

from .procs import reply
from .publisher import topic_names

MAX_BATCH = 1000  # zmqfeed's ZMQFEED["MAX_BATCH"] default
MAX_MESSAGE = 1024 * 1024  # zmqfeed's default Feed.max_message_size
RCVHWM = 100_000  # zmqfeed's ZMQFEED["RCVHWM"] default


class Relay:
    def __init__(self, feed: str, topics: list[str]) -> None:
        self.feed = feed
        self.matcher = Matcher((t.encode(), t) for t in topics)
        self.heads = {t: message_head(feed, t) for t in topics}
        self.seq = dict.fromkeys(topics, 0)
        self.clients: dict[str, set[ServerConnection]] = {t: set() for t in topics}
        self.zmq_topics: dict[bytes, bytes] = {}
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

    def zmq_topic_json(self, topic: bytes) -> bytes:
        cached = self.zmq_topics.get(topic)
        if cached is None:
            cached = self.zmq_topics[topic] = orjson.dumps(decode_topic(topic))
        return cached

    async def pump(self, sock: zmq.asyncio.Socket) -> None:
        drain = zmq.Socket.shadow(sock.underlying)
        decode = Decoder("multipart", "json", MAX_MESSAGE)
        match = self.matcher.match
        heads, seqs, clients = self.heads, self.seq, self.clients
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
            ts = orjson.dumps(time.time())
            envelopes: dict[str, list[bytes]] = {}
            for frames in batch:
                try:
                    topic, data = decode(frames)
                except Dropped:
                    self.dropped += 1
                    continue
                targets = match(topic)
                if not targets:
                    continue
                tail = message_tail(self.zmq_topic_json(topic), ts, data)
                for slug in targets:
                    seq = seqs[slug] = seqs[slug] + 1
                    envelopes.setdefault(slug, []).append(heads[slug] + b"%d" % seq + tail)
            for slug, items in envelopes.items():
                conns = clients[slug]
                if conns:
                    broadcast(conns, batch_frame(items), text=True)
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
