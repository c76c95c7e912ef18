"""Two-way, end to end: WebSocket clients publish through a real daphne into real ZeroMQ
sockets, and what a ZeroMQ service sends back reaches every subscriber once, in order."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time

import pytest
import zmq
import zmq.asyncio

from tests.conftest import Site, free_port, stop
from tests.support import (
    Publisher,
    connect,
    drain,
    feed_doc,
    recv,
    request,
    subscribe,
)


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 90))


def endpoint() -> str:
    return f"tcp://127.0.0.1:{free_port()}"


class Service:
    """A user's ZeroMQ service: takes commands on a bound SUB (or PULL) socket and, when it
    echoes, publishes each one back unchanged on a bound PUB socket that a feed reads."""

    def __init__(self, ctx: zmq.asyncio.Context, kind: int = zmq.SUB, echo: bool = False):
        self.commands = endpoint()
        self.sock = ctx.socket(kind)
        self.sock.setsockopt(zmq.LINGER, 0)
        if kind == zmq.SUB:
            self.sock.subscribe(b"")
        self.sock.bind(self.commands)
        self.out = Publisher(ctx) if echo else None
        self.got: list[list[bytes]] = []
        self.task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        while True:
            frames = await self.sock.recv_multipart()
            self.got.append(frames)
            if self.out is not None:
                await self.out.send(*frames)

    async def close(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        self.sock.close(0)
        if self.out is not None:
            self.out.close()


async def publish(ws, timeout: float = 15.0, seen: list | None = None, **frame) -> dict:
    """Publish until the gateway's socket has a peer that takes it (ZeroMQ connects late);
    messages that arrive before the reply go to ``seen``."""
    deadline = time.monotonic() + timeout
    while True:
        await ws.send(json.dumps({"type": "publish", **frame}))
        reply = await recv(ws)
        while reply["type"] in ("message", "batch"):
            assert seen is not None, reply
            seen.extend(reply["messages"] if reply["type"] == "batch" else [reply])
            reply = await recv(ws)
        if reply.get("code") != "unavailable" or time.monotonic() > deadline:
            return reply
        await asyncio.sleep(0.1)


def test_a_publish_reaches_the_service_framed_as_the_feed_reads_and_comes_back_once(site, ctx):
    async def main():
        service = Service(ctx, echo=True)
        assert service.out is not None
        topics = [
            {"slug": "cmd", "prefix": "cmd.", "publish_access": "public"},
            {"slug": "all", "prefix": ""},
        ]
        doc = feed_doc("two", service.out.endpoint, topics, publish_endpoints=[service.commands])
        site.configure({"feeds": [doc]})
        server = site.daphne()
        listeners = [await connect(server) for _ in range(3)]
        for ws in listeners:
            assert (await subscribe(ws, "two", "cmd"))["type"] == "subscribed"
        ws = listeners[0]

        reply = await publish(ws, feed="two", topic="cmd", subtopic="go", data={"n": 0}, id="p0")
        assert reply == {"type": "published", "feed": "two", "topic": "cmd", "id": "p0"}
        assert service.got[-1] == [b"cmd.go", b'{"n":0}']
        for other in listeners:
            await drain(other)

        # 50 in a row, from two clients at once: each service frame is one publish, and
        # every subscriber sees the echoes once, in one order, numbered without a hole.
        async def send(client, first):
            for n in range(first, first + 25):
                await client.send(
                    json.dumps({"type": "publish", "feed": "two", "topic": "cmd", "data": {"n": n}})
                )
                await asyncio.sleep(0.05)  # within PUBLISH_RATE (10/s) and its burst (20)

        await asyncio.gather(send(listeners[1], 100), send(listeners[2], 200))
        seen = []
        for client in listeners:
            got: list[dict] = []
            while len(got) < 50:
                frame = await recv(client, 10)
                if frame["type"] in ("message", "batch"):
                    got.extend(frame["messages"] if frame["type"] == "batch" else [frame])
                else:
                    assert frame["type"] == "published", frame
            assert [m["zmq_topic"] for m in got] == ["cmd."] * 50
            seqs = [m["seq"] for m in got]
            assert seqs == list(range(seqs[0], seqs[0] + 50))
            seen.append([m["data"]["n"] for m in got])
        assert seen[0] == seen[1] == seen[2]  # one order for everyone
        assert sorted(seen[0]) == [*range(100, 125), *range(200, 225)]
        assert len(service.got) == 51  # nothing sent twice

        log = server.log()
        assert "publish user=anonymous feed=two topic=cmd zmq_topic=b'cmd.go' bytes=13 " in log
        await service.close()

    run(main())


def test_refusals_get_their_error_and_the_connection_stays(site, ctx):
    async def main():
        service = Service(ctx)
        pub = Publisher(ctx)
        topics = [
            {"slug": "open", "publish_access": "public"},
            {"slug": "members", "publish_access": "authenticated"},
            {"slug": "readonly"},
        ]
        doc = feed_doc(
            "rf", pub.endpoint, topics, publish_endpoints=[service.commands], max_message_size=64
        )
        text = feed_doc(
            "tx",
            pub.endpoint,
            [{"slug": "line", "prefix": "log", "publish_access": "public"}],
            payload="text",
            framing="prefix",
            publish_endpoints=[service.commands],
        )
        site.configure({"feeds": [doc, text]})
        site.create_user("ann")
        server = site.daphne(env={"DJANGO_SETTINGS_MODULE": "tests.sites.publish_settings"})
        anonymous = await connect(server)
        ann = await connect(server, additional_headers={"Cookie": site.session_cookie("ann")})
        await subscribe(anonymous, "rf", "open")  # the topics have reached the server

        async def code(ws, **frame):
            reply = await request(ws, type="publish", id=1, **frame)
            assert reply["id"] == 1
            return reply.get("code", reply["type"])

        assert await code(anonymous, feed="rf", topic="members", data=1) == "forbidden"
        assert await code(anonymous, feed="rf", topic="readonly", data=1) == "forbidden"
        assert await code(anonymous, feed="rf", topic="nope", data=1) == "not_found"
        assert await code(anonymous, feed="rf", topic="open", data="x" * 100) == "too_large"
        assert await code(anonymous, feed="tx", topic="line", data={"a": 1}) == "bad_request"
        assert (await publish(ann, feed="rf", topic="members", data=1))["type"] == "published"
        # Too fast: a burst of 3 at 2/s, then rate_limited, on this connection only.
        outcomes = []
        for n in range(6):
            outcomes.append(await code(ann, feed="rf", topic="open", data=n))
        assert "rate_limited" in outcomes
        assert outcomes[0] == "published"
        assert await code(anonymous, feed="rf", topic="open", data=1) == "published"
        for ws in (anonymous, ann):  # still open and answering
            assert (await request(ws, type="ping", id=2))["type"] == "pong"
        async with server_http(server) as metrics:
            assert 'outcome="forbidden"' in metrics and 'outcome="rate_limited"' in metrics
        await service.close()
        pub.close()

    run(main())


@contextlib.asynccontextmanager
async def server_http(server):
    import urllib.request

    def get() -> str:
        with urllib.request.urlopen(server.http + "/zmqfeed/metrics", timeout=5) as response:
            return response.read().decode()

    yield await asyncio.to_thread(get)


def test_a_push_socket_is_refused_with_no_peer_and_delivers_to_one(site, ctx):
    async def main():
        pub = Publisher(ctx)
        commands = endpoint()
        topics = [{"slug": "jobs", "prefix": "job", "publish_access": "public"}]
        doc = feed_doc(
            "pu",
            pub.endpoint,
            topics,
            publish_endpoints=[commands],
            publish_socket="push",
            publish_bind=True,  # the workers connect to the gateway
        )
        site.configure({"feeds": [doc]})
        server = site.daphne()
        ws = await connect(server)
        await subscribe(ws, "pu", "jobs")
        reply = await request(ws, type="publish", feed="pu", topic="jobs", data=1, id=1)
        assert reply["code"] == "unavailable", reply  # no worker yet: refused, not queued
        worker = ctx.socket(zmq.PULL)
        worker.connect(commands)
        reply = await publish(ws, feed="pu", topic="jobs", data=2, id=2)
        assert reply["type"] == "published", reply
        assert await asyncio.wait_for(worker.recv_multipart(), 5) == [b"job", b"2"]
        worker.close(0)
        pub.close()

    run(main())


@pytest.mark.redis
def test_scaled_publishes_from_two_servers_go_through_the_one_subscriber(tmp_path, redis_url):
    site = Site(tmp_path, {"REDIS_URL": redis_url})
    ctx = zmq.asyncio.Context()

    async def main():
        service = Service(ctx, echo=True)
        assert service.out is not None
        topics = [{"slug": "cmd", "publish_access": "public"}]
        doc = feed_doc("sp", service.out.endpoint, topics, publish_endpoints=[service.commands])
        site.configure({"feeds": [doc]})
        subscriber = site.subscriber()
        servers = [site.daphne(), site.daphne()]
        clients = [await connect(s) for s in servers]
        for ws in clients:
            await subscribe(ws, "sp", "cmd")
        seen: list[list[dict]] = [[], []]
        for n, ws in enumerate(clients):
            reply = await publish(ws, feed="sp", topic="cmd", data=n, id=n, seen=seen[n])
            assert reply["type"] == "published", reply
        for ws, got in zip(clients, seen, strict=True):  # the echoes reach both servers' clients
            got.extend(await messages_skipping_replies(ws, 2 - len(got)))
            assert [m["data"] for m in got] == [0, 1]
        assert [frames[1] for frames in service.got] == [b"0", b"1"]
        # Only the subscriber process holds an outbound socket: the servers hold none.
        assert "publish socket (pub)" in site.log("subscriber.log")
        for server in servers:
            assert "publish socket" not in server.log()

        stop(subscriber)
        started = time.monotonic()
        await drain(clients[0])
        reply = await request(clients[0], type="publish", feed="sp", topic="cmd", data=9, id=9)
        assert reply["code"] == "unavailable" and reply["id"] == 9, reply
        assert time.monotonic() - started < 5
        assert "try again" in reply["detail"]
        await asyncio.sleep(1.0)
        assert len(service.got) == 2  # refused is not sent later either
        async with server_http(servers[0]) as metrics:
            line = 'zmqfeed_publishes_total{feed="sp",outcome="unavailable",topic="cmd"} 1.0'
            assert line in metrics

        # A subscriber that comes back takes publishes again.
        site.subscriber()
        # The echo of what is published may reach this subscribed client before the reply.
        echoed: list[dict] = []
        reply = await publish(
            clients[1], feed="sp", topic="cmd", data=4, id=4, timeout=30, seen=echoed
        )
        assert reply["type"] == "published", reply
        await service.close()

    try:
        run(main())
    finally:
        ctx.destroy(linger=0)
        site.close()


async def messages_skipping_replies(ws, count: int) -> list[dict]:
    got: list[dict] = []
    while len(got) < count:
        frame = await recv(ws, 10)
        if frame["type"] == "batch":
            got.extend(frame["messages"])
        elif frame["type"] == "message":
            got.append(frame)
    return got
