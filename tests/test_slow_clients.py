"""A client that reads slower than its topic arrives: its frames are dropped and reported as a
gap, the server's memory stays bounded, and the other clients get everything."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import urllib.request

import zmq.asyncio

from tests.conftest import Site
from tests.support import (
    Publisher,
    connect,
    feed_doc,
    messages,
    recv,
    subscribe,
    unpack,
    until_flowing,
)

COUNT = 3000
PAYLOAD = json.dumps("x" * 10_000)  # 30 MB in all: far past the kernel's socket buffers


def _shed(server) -> float:
    with urllib.request.urlopen(server.http + "/zmqfeed/metrics", timeout=5) as resp:
        found = re.search(
            r'^zmqfeed_shed_messages_total\{feed="sl",reason="client_backlog",topic="all"\} (\S+)$',
            resp.read().decode(),
            re.M,
        )
    return float(found.group(1)) if found else 0.0


async def _everything(ws, quiet: float) -> list[dict]:
    frames = []
    with contextlib.suppress(asyncio.TimeoutError):
        while True:
            frames.append(await recv(ws, quiet))
    return frames


def test_a_slow_reader_gets_a_gap_and_the_others_everything(tmp_path):
    site = Site(tmp_path)
    server = site.daphne()
    ctx = zmq.asyncio.Context()

    async def main():
        pub = Publisher(ctx)
        site.configure({"feeds": [feed_doc("sl", pub.endpoint, [{"slug": "all"}])]})
        fast = await connect(server)
        await subscribe(fast, "sl", "all")
        probe = await until_flowing(pub, fast, "t", "0")
        # websockets stops reading the socket once this many frames wait for recv().
        slow = await connect(server, max_queue=1)
        assert (await subscribe(slow, "sl", "all"))["seq"] == probe["seq"]

        reading = asyncio.ensure_future(messages(fast, COUNT, timeout=60))
        for i in range(COUNT):
            await pub.send("t", PAYLOAD)
            if i % 50 == 0:
                await asyncio.sleep(0.01)  # a steady feed, not one burst
        got = await reading
        first = probe["seq"] + 1
        assert [m["seq"] for m in got] == list(range(first, first + COUNT))

        frames = await _everything(slow, 2.0)  # the slow client catches up
        await pub.send("t", '"after"')
        assert (await messages(fast, 1))[0]["data"] == "after"
        frames += await _everything(slow, 2.0)

        gaps = [f for f in frames if f["type"] == "gap"]
        assert gaps, "the slow client lost nothing: it was not slow"
        assert all(g["reason"] == "slow_consumer" for g in gaps)
        seqs = [m["seq"] for f in frames if f["type"] != "gap" for m in unpack(f)]
        dropped = [s for g in gaps for s in range(g["from_seq"], g["to_seq"] + 1)]
        # Everything up to the message after the flood, each once: sent, or in a gap.
        assert sorted(seqs + dropped) == list(range(first, first + COUNT + 1))
        assert seqs[-1] == first + COUNT
        for i, frame in enumerate(frames):  # a gap comes right before the next message sent
            if frame["type"] == "gap":
                assert unpack(frames[i + 1])[0]["seq"] == frame["to_seq"] + 1
        assert _shed(server) == len(dropped)
        logged = [line for line in server.log().splitlines() if "MAX_CLIENT_BACKLOG" in line]
        assert 1 <= len(logged) <= 10  # once per second, not once per frame
        await fast.close()
        await slow.close()
        pub.close()

    try:
        asyncio.run(asyncio.wait_for(main(), 120))
    finally:
        ctx.destroy(linger=0)
        site.close()
