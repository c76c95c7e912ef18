"""Nothing missed, nothing repeated: resuming with `since` and `epoch`, end to end.

Real PUB sockets, real daphne processes (embedded mode, and scaled mode with a real Redis
and zmq_subscribe), real WebSocket clients. A resume is `recovered: true` only when every
message after `since` follows; a numbering that started again (a restarted embedded
server, a Redis that lost it) is a new epoch, and its seqs are never taken for the old.
"""

from __future__ import annotations

import asyncio
import contextlib

import pytest
import redis

from tests.conftest import Site, stop
from tests.support import (
    Publisher,
    connect,
    drain,
    feed_doc,
    messages,
    recv,
    request,
    subscribe,
    unpack,
    until_flowing,
)


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 90))


async def replayed(ws, count: int) -> list[dict]:
    """The next `count` messages, all from `batch` frames marked replayed."""
    got: list[dict] = []
    while len(got) < count:
        frame = await recv(ws)
        assert frame["type"] == "batch" and frame.get("replayed") is True, frame
        got.extend(frame["messages"])
    assert len(got) == count
    return got


async def resume_round(server, pub, feed: str, topic: str, live) -> tuple[str, int]:
    """Subscribe, see messages, disconnect, miss 7, resume with since and epoch: exactly the
    7 (replayed), `recovered: true`, then live. Returns (epoch, last seq)."""
    ws = await connect(server)
    first = await subscribe(ws, feed, topic)
    epoch = first["epoch"]
    assert isinstance(epoch, str) and epoch
    probe = await until_flowing(pub, ws, "t", '"probe"')
    await drain(ws)
    await ws.close()
    for i in range(7):
        await pub.send("t", str(i))
    await asyncio.sleep(0.5)  # routed into the history while nobody listens
    ws = await connect(server)
    reply = await request(
        ws, type="subscribe", feed=feed, topic=topic, since=probe["seq"], epoch=epoch
    )
    assert (reply["type"], reply["recovered"], reply["epoch"]) == ("subscribed", True, epoch)
    assert reply["seq"] >= probe["seq"] + 7
    got = await replayed(ws, reply["seq"] - probe["seq"])
    assert [m["seq"] for m in got] == list(range(probe["seq"] + 1, reply["seq"] + 1))
    assert [m["data"] for m in got][-7:] == list(range(7))
    await live(ws)
    await pub.send("t", '"live"')
    [after] = await messages(ws, 1)
    assert (after["seq"], after["data"]) == (reply["seq"] + 1, "live")
    await ws.close()
    return epoch, after["seq"]


def test_embedded_resume_gap_last_values_and_a_restart_is_a_new_epoch(tmp_path, ctx):
    site = Site(tmp_path)
    try:

        async def main():
            pub = Publisher(ctx)
            site.configure(
                {
                    "feeds": [
                        feed_doc(
                            "ct",
                            pub.endpoint,
                            [
                                {"slug": "all"},
                                {"slug": "short", "history": 3},
                                {"slug": "state", "last_values": 2},
                            ],
                        )
                    ]
                }
            )
            server = site.daphne()

            async def nothing_more(ws):
                return None

            epoch, last = await resume_round(server, pub, "ct", "all", nothing_more)

            # A `since` older than what the topic keeps: a gap, what is kept, not recovered.
            ws = await connect(server)
            short = (await subscribe(ws, "ct", "short"))["epoch"]  # each topic has its own
            reply = await request(
                ws, type="subscribe", feed="ct", topic="short", since=1, epoch=short
            )
            assert (reply["recovered"], reply["epoch"]) == (False, short)
            gap = await recv(ws)
            assert (gap["type"], gap["reason"], gap["from_seq"]) == ("gap", "history", 2)
            kept = await replayed(ws, 3)
            assert gap["to_seq"] == kept[0]["seq"] - 1
            assert kept[-1]["seq"] == reply["seq"]

            # Last values: a subscribe without `since` gets the latest two, marked replayed.
            state = await subscribe(ws, "ct", "state")
            assert "recovered" not in state
            latest = await replayed(ws, 2)
            assert [m["seq"] for m in latest] == [state["seq"] - 1, state["seq"]]
            await ws.close()

            # The server restarts: a new numbering, in a new epoch.
            stop(server.proc)
            server = site.daphne()
            ws = await connect(server)
            fresh = await subscribe(ws, "ct", "all")
            assert fresh["epoch"] != epoch
            await until_flowing(pub, ws, "t", '"probe"')
            # The new numbering passes the old `last`: its seqs after `last` exist, and
            # must not be replayed as if they followed the old ones.
            for i in range(last + 5):
                await pub.send("t", str(i))
            await messages(ws, last + 5)
            await ws.close()
            ws = await connect(server)
            reply = await request(
                ws, type="subscribe", feed="ct", topic="all", since=last, epoch=epoch
            )
            # Not recovered, and what follows is the new numbering from its start, never
            # its seqs after `last` as if they followed the old ones.
            assert (reply["recovered"], reply["epoch"]) == (False, fresh["epoch"])
            assert reply["seq"] > last
            got = await replayed(ws, reply["seq"])
            assert [m["seq"] for m in got] == list(range(1, reply["seq"] + 1))
            await ws.close()
            pub.close()

        run(main())
    finally:
        site.close()


@pytest.mark.redis
def test_scaled_resume_across_servers_and_a_lost_numbering_is_a_new_epoch(tmp_path, redis_url, ctx):
    site = Site(tmp_path, {"REDIS_URL": redis_url})
    try:

        async def main():
            pub = Publisher(ctx)
            site.configure({"feeds": [feed_doc("cs", pub.endpoint, [{"slug": "all"}])]})
            subscriber = site.subscriber()
            servers = [site.daphne(), site.daphne()]
            # A client on the second server, subscribed throughout.
            watcher = await connect(servers[1])
            await subscribe(watcher, "cs", "all")

            async def nothing_more(ws):
                await drain(watcher)

            epoch, last = await resume_round(servers[0], pub, "cs", "all", nothing_more)
            # And a client of the other server resumes from the same numbering.
            ws = await connect(servers[1])
            reply = await request(
                ws, type="subscribe", feed="cs", topic="all", since=last - 3, epoch=epoch
            )
            assert (reply["recovered"], reply["epoch"], reply["seq"]) == (True, epoch, last)
            assert [m["seq"] for m in await replayed(ws, 3)] == [last - 2, last - 1, last]
            await ws.close()
            await drain(watcher)

            # The numbering is lost (Redis keeps the groups, loses the history) and the
            # subscriber restarts without it: a new epoch, which the subscribed client is told.
            stop(subscriber)
            client = redis.Redis.from_url(redis_url)
            for key in client.scan_iter("zmqfeed:*"):
                if key.startswith((b"zmqfeed:head:", b"zmqfeed:batches:")):
                    client.delete(key)
            client.close()
            site.subscriber()
            seen: list[dict] = []
            while not any(f["type"] in ("message", "batch") for f in seen):
                await pub.send("t", '"after"')
                with contextlib.suppress(asyncio.TimeoutError):
                    seen.append(await recv(watcher, 0.3))
            notice = seen[0]
            assert (notice["type"], notice["recovered"]) == ("subscribed", False), seen
            assert notice["epoch"] != epoch and "id" not in notice
            first = unpack(seen[1])[0]
            assert first["seq"] == notice["seq"] + 1 < last
            for i in range(last + 5):
                await pub.send("t", str(i))
            await drain(watcher)
            # A client that reconnects with the old epoch is told too.
            ws = await connect(servers[0])
            reply = await request(
                ws, type="subscribe", feed="cs", topic="all", since=last, epoch=epoch
            )
            assert reply["recovered"] is False and reply["epoch"] == notice["epoch"]
            frames = await replayed(ws, reply["seq"])
            assert [m["seq"] for m in frames] == list(range(1, reply["seq"] + 1))
            await ws.close()
            pub.close()

        run(main())
    finally:
        site.close()
