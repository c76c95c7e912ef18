"""Scaled mode: one zmq_subscribe process, two daphne processes, real Redis in between."""

from __future__ import annotations

import asyncio

import pytest
import zmq.asyncio

from tests.conftest import PrivateRedis, Site, stop
from tests.support import (
    Publisher,
    connect,
    drain,
    eventually,
    feed_doc,
    messages,
    recv,
    request,
    unpack,
    until_flowing,
)

pytestmark = pytest.mark.redis


@pytest.fixture(params=["core", "pubsub"])
def scaled(request, tmp_path, redis_url):
    site = Site(tmp_path, {"REDIS_URL": redis_url, "ZMQFEED_REDIS_LAYER": request.param})
    yield site
    site.close()


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 90))


async def _subscribed(server, path):
    ws = await connect(server, f"/ws/zmqfeed/{path}/")
    reply = await recv(ws)
    assert reply["type"] == "subscribed", reply
    return ws


def test_two_servers_receive_everything_in_order(scaled):
    ctx = zmq.asyncio.Context()

    async def main():
        pub = Publisher(ctx)
        scaled.configure({"feeds": [feed_doc("sc", pub.endpoint, [{"slug": "all"}])]})
        subscriber = scaled.subscriber()
        servers = [scaled.daphne(), scaled.daphne()]
        clients = [await _subscribed(s, "sc/all") for s in servers]
        for ws in clients:
            await until_flowing(pub, ws, "t", "0")
        for ws in clients:
            await drain(ws)
        for i in range(2000):
            await pub.send("t", str(i))
            if i % 200 == 0:
                await asyncio.sleep(0.01)
        for ws in clients:
            got = await messages(ws, 2000, timeout=30)
            assert [m["data"] for m in got] == list(range(2000))
            seqs = [m["seq"] for m in got]
            assert seqs == list(range(seqs[0], seqs[0] + 2000))

        # The embedded subscriber stays off in scaled mode: only zmq_subscribe routes.
        for server in servers:
            assert "embedded subscriber started" not in server.log()

        # The history lives in Redis: a client of either server can catch up with `since`.
        last = seqs[-1]
        ws = await connect(servers[1])
        reply = await request(ws, type="subscribe", feed="sc", topic="all", since=last - 5)
        assert reply["seq"] == last
        assert [m["data"] for m in await messages(ws, 5)] == list(range(1995, 2000))

        # A restarted subscriber continues the numbering where the last one stopped.
        stop(subscriber)
        assert subscriber.returncode == 0  # SIGTERM is a clean shutdown
        assert "zmq_subscribe: stopped" in scaled.log("subscriber.log")
        scaled.subscriber()
        await until_flowing(pub, clients[0], "t", '"after restart"')
        await pub.send("t", '"next"')
        [after] = await messages(clients[0], 1)
        assert after["seq"] > last
        pub.close()

    try:
        run(main())
    finally:
        ctx.destroy(linger=0)


def test_subscriber_follows_configuration_and_feed_filter(scaled):
    ctx = zmq.asyncio.Context()

    async def main():
        pub_a, pub_b = Publisher(ctx), Publisher(ctx)
        doc = {"feeds": [feed_doc("fa", pub_a.endpoint, [{"slug": "all"}])]}
        scaled.configure(doc)
        scaled.subscriber("--feed", "fa", "--feed", "fb")
        server = scaled.daphne()
        ws_a = await _subscribed(server, "fa/all")
        await until_flowing(pub_a, ws_a, "t", "1")

        # A feed added later is started by the running subscriber.
        doc["feeds"].append(feed_doc("fb", pub_b.endpoint, [{"slug": "all"}]))
        doc["feeds"].append(feed_doc("fc", pub_b.endpoint, [{"slug": "all"}]))
        scaled.configure(doc)
        ws_b = await eventually(lambda: _try(server, "fb/all"))
        await until_flowing(pub_b, ws_b, "t", "2")

        # --feed leaves other feeds alone: fc has no subscriber.
        ws_c = await _subscribed(server, "fc/all")
        await pub_b.send("t", "3")
        with pytest.raises(asyncio.TimeoutError):
            await recv(ws_c, 1.0)
        pub_a.close()
        pub_b.close()

    try:
        run(main())
    finally:
        ctx.destroy(linger=0)


async def _try(server, path):
    try:
        return await _subscribed(server, path)
    except Exception:
        return None


@pytest.mark.parametrize("layer", ["pubsub", "core"])
def test_a_redis_restart_is_survived(tmp_path, layer):
    """Redis goes away and comes back (empty): subscriber and server recover by themselves."""
    redis = PrivateRedis()
    site = Site(tmp_path, {"REDIS_URL": f"{redis.url}/0", "ZMQFEED_REDIS_LAYER": layer})
    ctx = zmq.asyncio.Context()

    async def main():
        pub = Publisher(ctx)
        site.configure({"feeds": [feed_doc("ro", pub.endpoint, [{"slug": "all"}])]})
        subscriber = site.subscriber()
        server = site.daphne()
        before = await eventually(lambda: _try(server, "ro/all"))
        await until_flowing(pub, before, "t", "0")
        # Far more messages than the probes that can follow the restart, so that a numbering
        # that started over at 1 could not reach past them.
        for _ in range(500):
            await pub.send("t", "0")
        last_before = (await messages(before, 500))[-1]["seq"]

        redis.stop()
        for _ in range(20):  # published while Redis is away: lost, and nothing else
            await pub.send("t", "1")
            await asyncio.sleep(0.05)
        redis.start()

        after = await eventually(lambda: _try(server, "ro/all"), timeout=30)
        again = await until_flowing(pub, after, "t", "2", timeout=30)
        # Redis came back empty, but the numbering goes on: `since` stays meaningful.
        assert again["seq"] > last_before
        # The connection that was open throughout receives again too, and learns of what it
        # missed meanwhile from a gap.
        await pub.send("t", "3")
        assert [m["data"] for m in await messages(after, 1)] == [3]
        kinds = []
        while not kinds or kinds[-1] != 3:
            frame = await recv(before)
            if frame["type"] == "gap":
                assert frame["reason"] == "lost"  # before it reached this server
                kinds.append("gap")
            else:
                kinds.extend(m["data"] for m in unpack(frame))
        assert "gap" in kinds
        assert subscriber.poll() is None, site.log("subscriber.log")[-3000:]
        assert server.proc.poll() is None
        pub.close()

    try:
        run(main())
    finally:
        ctx.destroy(linger=0)
        site.close()
        redis.close()
