"""The gateway end to end in embedded mode: real PUB sockets, a real daphne, real clients."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import urllib.request

import pytest
import websockets

from tests.conftest import Site
from tests.support import (
    Publisher,
    closed_code,
    connect,
    drain,
    eventually,
    feed_doc,
    messages,
    recv,
    request,
    subscribe,
    unpack,
    until_flowing,
)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    s = Site(tmp_path_factory.mktemp("gateway"))
    yield s
    s.close()


@pytest.fixture(scope="module")
def server(site):
    return site.daphne()


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


def test_envelopes_for_each_framing_and_payload(site, server, ctx):
    async def main():
        pubs = {name: Publisher(ctx) for name in ("mj", "pt", "rb")}
        site.configure(
            {
                "feeds": [
                    feed_doc("mj", pubs["mj"].endpoint, [{"slug": "eur", "prefix": "EUR"}]),
                    feed_doc(
                        "pt",
                        pubs["pt"].endpoint,
                        [{"slug": "all"}],
                        framing="prefix",
                        payload="text",
                    ),
                    feed_doc(
                        "rb",
                        pubs["rb"].endpoint,
                        [{"slug": "all"}],
                        framing="raw",
                        payload="binary",
                    ),
                ]
            }
        )
        ws = await connect(server)
        for feed, topic in (("mj", "eur"), ("pt", "all"), ("rb", "all")):
            reply = await subscribe(ws, feed, topic, id=f"{feed}-1")
            assert reply == {
                "type": "subscribed",
                "feed": feed,
                "topic": topic,
                "seq": 0,
                "epoch": reply["epoch"],
                "id": f"{feed}-1",
            }
            assert isinstance(reply["epoch"], str) and len(reply["epoch"]) == 12
        probe = await until_flowing(pubs["mj"], ws, "EUR.probe", "{}")
        await pubs["mj"].send("EUR.USD", json.dumps({"bid": 1.05, "n": [1, 2]}))
        [msg] = await messages(ws, 1)
        assert msg["type"] == "message" and msg["feed"] == "mj" and msg["topic"] == "eur"
        assert msg["zmq_topic"] == "EUR.USD" and msg["data"] == {"bid": 1.05, "n": [1, 2]}
        assert msg["seq"] == probe["seq"] + 1
        assert abs(msg["ts"] - time.time()) < 5

        await until_flowing(pubs["pt"], ws, "probe x")
        await pubs["pt"].send("sensor.1 21.5 degrees, ünïcode")
        [msg] = await messages(ws, 1)
        assert (msg["zmq_topic"], msg["data"]) == ("sensor.1", "21.5 degrees, ünïcode")

        await until_flowing(pubs["rb"], ws, b"probe")
        await pubs["rb"].send(b"\x00\xff\x10binary")
        [msg] = await messages(ws, 1)
        assert msg["zmq_topic"] == "" and msg["encoding"] == "base64"
        assert base64.b64decode(msg["data"]) == b"\x00\xff\x10binary"
        await ws.close()
        for p in pubs.values():
            p.close()

    run(main())


def test_message_goes_to_every_matching_topic_with_its_own_seq(site, server, ctx):
    async def main():
        pub = Publisher(ctx)
        site.configure(
            {
                "feeds": [
                    feed_doc(
                        "fx",
                        pub.endpoint,
                        [
                            {"slug": "all", "prefix": ""},
                            {"slug": "eur", "prefix": "EUR"},
                            {"slug": "eurusd", "prefix": "EUR.USD"},
                        ],
                    )
                ]
            }
        )
        clients = {}
        for topic in ("all", "eur", "eurusd"):
            clients[topic] = await eventually(lambda t=topic: _path(server, f"fx/{t}"))
        for ws in clients.values():
            await until_flowing(pub, ws, "EUR.USD.probe", "{}")
        for ws in clients.values():
            await drain(ws)
        await pub.send("EUR.USD", "1")
        await pub.send("EUR.GBP", "2")
        await pub.send("USD.JPY", "3")
        assert [m["data"] for m in await messages(clients["all"], 3)] == [1, 2, 3]
        assert [m["data"] for m in await messages(clients["eur"], 2)] == [1, 2]
        [only] = await messages(clients["eurusd"], 1)
        assert only["data"] == 1 and only["topic"] == "eurusd"
        with pytest.raises(asyncio.TimeoutError):
            await recv(clients["eurusd"], 0.5)
        for ws in clients.values():
            await ws.close()
        pub.close()

    run(main())


async def _path(server, path: str):
    """Connect to /ws/zmqfeed/<feed>/<topic>/ once the topic exists (config reloads)."""
    ws = await connect(server, f"/ws/zmqfeed/{path}/")
    try:
        reply = await recv(ws)
    except websockets.ConnectionClosed:
        return None
    assert reply["type"] == "subscribed"
    return ws


def test_path_endpoint_close_codes_and_access(site, server, ctx):
    site.configure(
        {
            "feeds": [
                feed_doc(
                    "acl",
                    "tcp://127.0.0.1:9",
                    [
                        {"slug": "pub"},
                        {"slug": "auth", "access": "authenticated"},
                        {"slug": "staff", "access": "staff"},
                        {"slug": "grp", "access": "group", "groups": ["traders"]},
                    ],
                )
            ]
        }
    )
    site.create_user("alice", groups=("traders",))
    site.create_user("bob")
    site.create_user("sam", staff=True)
    cookies = {name: site.session_cookie(name) for name in ("alice", "bob", "sam")}

    async def code(path: str, who: str | None = None) -> int | str:
        headers = {"Cookie": cookies[who]} if who else {}
        ws = await connect(server, f"/ws/zmqfeed/{path}/", additional_headers=headers)
        try:
            return (await recv(ws))["type"]
        except websockets.ConnectionClosed:
            return ws.close_code
        finally:
            await ws.close()

    async def main():
        await eventually(lambda: _is(code("acl/pub"), "subscribed"))
        expected = {
            (None, "pub"): "subscribed",
            (None, "auth"): 4403,
            (None, "staff"): 4403,
            (None, "grp"): 4403,
            ("bob", "auth"): "subscribed",
            ("bob", "staff"): 4403,
            ("bob", "grp"): 4403,
            ("alice", "grp"): "subscribed",
            ("sam", "staff"): "subscribed",
            ("sam", "grp"): 4403,
            (None, "nope"): 4404,
        }
        got = {(who, topic): await code(f"acl/{topic}", who) for who, topic in expected}
        assert got == expected
        assert await code("nofeed/pub") == 4404

    run(main())


async def _is(awaitable, value) -> bool:
    return (await awaitable) == value


def test_origin_is_checked(server):
    async def main():
        ws = await connect(server)  # our own origin
        assert (await request(ws, type="ping", id=7)) == {"type": "pong", "id": 7}
        await ws.close()
        ws = await connect(server, origin=None)  # not a browser: allowed
        await ws.close()
        with pytest.raises(websockets.InvalidStatus) as refused:
            await connect(server, origin="http://evil.example")
        assert refused.value.response.status_code == 403

    run(main())


def test_bad_client_frames_get_errors_and_the_connection_stays(site, server, ctx):
    async def main():
        pub = Publisher(ctx)
        site.configure({"feeds": [feed_doc("bc", pub.endpoint, [{"slug": "all"}])]})
        ws = await connect(server)
        await ws.send("not json")
        assert (await recv(ws))["code"] == "bad_request"
        for frame, code in [
            ({"type": "dance"}, "bad_request"),
            ({"type": "subscribe", "feed": "bc"}, "bad_request"),
            ({"type": "subscribe", "feed": "bc", "topic": "all", "since": -1}, "bad_request"),
            ({"type": "subscribe", "feed": "bc", "topic": "nope"}, "not_found"),
        ]:
            reply = await request(ws, id="x", **frame)
            assert (reply["type"], reply["code"], reply["id"]) == ("error", code, "x"), reply
        await ws.send(b"binary")
        assert (await recv(ws))["code"] == "bad_request"
        assert (await subscribe(ws, "bc", "all"))["type"] == "subscribed"
        # Known to the server now: a topic closed to publishing refuses it.
        reply = await request(ws, type="publish", feed="bc", topic="all", data=1, id="x")
        assert (reply["type"], reply["code"], reply["id"]) == ("error", "forbidden", "x"), reply
        await until_flowing(pub, ws, "t", "{}")
        await pub.send("t", '"still here"')
        assert (await messages(ws, 1))[0]["data"] == "still here"
        reply = await request(ws, type="unsubscribe", feed="bc", topic="all", id=3)
        assert reply == {"type": "unsubscribed", "feed": "bc", "topic": "all", "id": 3}
        await pub.send("t", "1")
        with pytest.raises(asyncio.TimeoutError):
            await recv(ws, 0.5)
        await ws.close()
        pub.close()

    run(main())


def test_oversize_and_flooding_clients_are_closed_others_keep_receiving(site, server, ctx):
    async def main():
        pub = Publisher(ctx)
        site.configure({"feeds": [feed_doc("ab", pub.endpoint, [{"slug": "all"}])]})
        good = await eventually(lambda: _path(server, "ab/all"))
        await until_flowing(pub, good, "t", "0")

        big = await connect(server)
        await big.send(json.dumps({"type": "ping", "pad": "x" * 70_000}))
        assert (await recv(big))["code"] == "too_large"
        assert await closed_code(big) == 4009

        flood = await connect(server)
        codes = []
        for _ in range(1000):
            try:
                await flood.send('{"type":"ping"}')
            except websockets.ConnectionClosed:
                break
        try:
            while True:
                frame = await recv(flood, 5)
                codes.append(frame.get("code", frame["type"]))
        except websockets.ConnectionClosed:
            pass
        assert flood.close_code == 4008
        assert "rate_limited" in codes and "pong" in codes

        await pub.send("t", "42")
        assert (await messages(good, 1))[0]["data"] == 42
        await good.close()
        pub.close()

    run(main())


def _metrics(server) -> str:
    with urllib.request.urlopen(server.http + "/zmqfeed/metrics", timeout=5) as resp:
        return resp.read().decode()


def test_bad_zmq_messages_are_dropped_counted_and_logged_once_per_burst(site, server, ctx):
    async def main():
        pub = Publisher(ctx)
        site.configure(
            {
                "feeds": [
                    feed_doc(
                        "bz",
                        pub.endpoint,
                        [{"slug": "all"}],
                        max_message_size=1000,
                        frames=["payload", "seq_le32"],
                    )
                ]
            }
        )
        ws = await eventually(lambda: _path(server, "bz/all"))
        probe = await until_flowing(pub, ws, "t", "0")
        for i in range(50):
            await pub.send("t", "{not json")
            await pub.send("t", b"\xff")
            await pub.send("t", "1", b"\x01\x02")  # a sequence frame of 2 bytes, not 4
            await pub.send("t", "1", b"\x01\x02\x03\x04\x05")
            await pub.send("t", json.dumps("x" * 2000))
            await pub.send("t", str(i))
        got = await messages(ws, 50)
        assert [m["data"] for m in got] == list(range(50))
        assert [m["seq"] for m in got] == list(range(probe["seq"] + 1, probe["seq"] + 51))
        text = _metrics(server)
        for reason, count in (("invalid_json", 100), ("bad_frames", 100), ("too_large", 50)):
            line = f'zmqfeed_dropped_messages_total{{feed="bz",reason="{reason}"}} {count}.0'
            assert line in text, reason
        logged = [
            line
            for line in server.log().splitlines()
            if "feed bz: dropped" in line and "invalid_json" in line
        ]
        assert 1 <= len(logged) <= 3  # one per second per kind, not one per message
        await ws.close()
        pub.close()

    run(main())


def test_configuration_changes_apply_without_restart(site, server, ctx):
    async def main():
        pub, pub2 = Publisher(ctx), Publisher(ctx)
        doc = {"feeds": [feed_doc("cc", pub.endpoint, [{"slug": "a", "prefix": "A"}])]}
        site.configure(doc)
        ws = await eventually(lambda: _path(server, "cc/a"))
        await until_flowing(pub, ws, "A1", "{}")

        # A new topic becomes subscribable, a changed prefix re-routes.
        doc["feeds"][0]["topics"].append(
            {"slug": "b", "name": "B", "prefix": "B", "access": "public", "groups": []}
        )
        doc["feeds"][0]["topics"][0]["prefix"] = "C"
        started = time.monotonic()
        site.configure(doc)
        ws_b = await eventually(lambda: _path(server, "cc/b"))
        assert ws_b is not None and time.monotonic() - started < 5
        await until_flowing(pub, ws_b, "B1", "{}")
        await until_flowing(pub, ws, "C1", "{}")
        await pub.send("A1", '"old prefix"')
        await pub.send("C1", '"new prefix"')
        assert (await messages(ws, 1))[0]["data"] == "new prefix"

        # A changed endpoint is re-applied: the feed now reads the second publisher.
        doc["feeds"][0]["endpoints"] = [pub2.endpoint]
        site.configure(doc)
        await until_flowing(pub2, ws_b, "B2", "{}")

        # Disabling the feed closes path subscriptions (4404) and ends the socket.
        doc["feeds"][0]["enabled"] = False
        site.configure(doc)
        assert await closed_code(ws_b, 8) == 4404
        assert await closed_code(ws, 8) == 4404
        pub.close()
        pub2.close()

    run(main())


def test_access_change_unsubscribes_a_reader_who_lost_it(site, server, ctx):
    async def main():
        pub = Publisher(ctx)
        doc = {"feeds": [feed_doc("ac", pub.endpoint, [{"slug": "x"}])]}
        site.configure(doc)
        ws = await connect(server)
        reply = await subscribe(ws, "ac", "x")
        assert reply["type"] == "subscribed"
        doc["feeds"][0]["topics"][0]["access"] = "staff"
        site.configure(doc)
        error = await recv(ws, 8)
        assert (error["type"], error["code"], error["topic"]) == ("error", "forbidden", "x")
        assert (await recv(ws))["type"] == "unsubscribed"
        await ws.close()
        pub.close()

    run(main())


def test_resubscribe_with_since_replays_what_was_missed(site, server, ctx):
    async def main():
        pub = Publisher(ctx)
        site.configure({"feeds": [feed_doc("rp", pub.endpoint, [{"slug": "all"}])]})
        ws = await eventually(lambda: _path(server, "rp/all"))
        probe = await until_flowing(pub, ws, "t", "0")
        for i in range(1, 11):
            await pub.send("t", str(i))
        got = await messages(ws, 10)
        await ws.close()
        last_seen = got[3]["seq"]  # the client saw four of them, then lost its connection
        ws = await connect(server)
        reply = await request(ws, type="subscribe", feed="rp", topic="all", since=last_seen)
        assert reply["seq"] == probe["seq"] + 10
        replayed = await messages(ws, 6)
        assert [m["data"] for m in replayed] == list(range(5, 11))
        await pub.send("t", "11")
        assert [m["data"] for m in await messages(ws, 1)] == [11]
        await ws.close()
        pub.close()

    run(main())


def test_big_messages_reach_clients_in_frames_daphne_can_send(site, server, ctx):
    """Daphne refuses to send a frame over 1 MiB: batches and replays are cut to fit."""
    big = 300_000

    async def frames_until(ws, count: int) -> list[str]:
        raw, seen = [], 0
        while seen < count:
            text = await asyncio.wait_for(ws.recv(), 10)
            raw.append(text)
            seen += len(unpack(json.loads(text)))
        return raw

    async def main():
        pub = Publisher(ctx)
        site.configure(
            {"feeds": [feed_doc("bg", pub.endpoint, [{"slug": "all"}], max_message_size=2**21)]}
        )
        ws = await eventually(lambda: _path(server, "bg/all"))
        probe = await until_flowing(pub, ws, "t", "0")
        await pub.send("t", json.dumps("y" * 1_100_000))  # its envelope fits no frame
        for i in range(8):  # about 2.4 MB, read by the subscriber in one or a few batches
            await pub.send("t", json.dumps([i, "x" * big]))
        raw = await frames_until(ws, 8)
        got = [m for text in raw for m in unpack(json.loads(text))]
        assert [m["data"][0] for m in got] == list(range(8))
        assert [m["seq"] for m in got] == list(range(probe["seq"] + 1, probe["seq"] + 9))
        assert all(len(text.encode()) <= 1024 * 1024 for text in raw)
        line = 'zmqfeed_dropped_messages_total{feed="bg",reason="too_large"} 1.0'
        assert line in _metrics(server)

        late = await connect(server)
        reply = await request(late, type="subscribe", feed="bg", topic="all", since=probe["seq"])
        assert reply["type"] == "subscribed"
        raw = await frames_until(late, 8)
        assert len(raw) >= 3 and all(len(text.encode()) <= 1024 * 1024 for text in raw)
        replayed = [m for text in raw for m in unpack(json.loads(text))]
        assert [m["seq"] for m in replayed] == [m["seq"] for m in got]
        await ws.close()
        await late.close()
        pub.close()

    run(main())


def test_zmq_subscribe_refuses_the_in_memory_layer(site):
    result = site.manage("zmq_subscribe", check=False)
    assert result.returncode != 0
    assert "in-memory layer" in result.stderr and "REDIS_URL" in result.stderr


def test_runserver_runs_the_embedded_subscriber(tmp_path, ctx):
    site = Site(tmp_path)
    try:

        async def main():
            pub = Publisher(ctx)
            site.configure({"feeds": [feed_doc("rs", pub.endpoint, [{"slug": "all"}])]})
            from tests.conftest import PYTHON, Server, free_port, wait_for_port

            port = free_port()
            proc = site.spawn(
                [PYTHON, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
                "runserver.log",
            )
            wait_for_port(port, proc)
            server = Server(port, proc, tmp_path / "runserver.log")
            ws = await eventually(lambda: _path(server, "rs/all"))
            await until_flowing(pub, ws, "t", '"via runserver"')
            assert "embedded subscriber started" in server.log()
            await ws.close()
            pub.close()

        run(main())
    finally:
        site.close()
